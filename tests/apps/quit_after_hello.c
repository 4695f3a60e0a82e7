/*
 * quit_after_hello: a worker that says hello (warren_init) and then exits
 * with status 0 at once, without serving anything. Main must take that for
 * a failure and hold its respawns back with a growing delay, instead of
 * replacing it in a tight loop (tests/integration/test_app_scaling.py).
 *
 * Build: cc -std=c17 -Iinclude tests/apps/quit_after_hello.c build/libwarren.a
 */
#include <stdio.h>

#include "warren.h"

int main(void)
{
    warren_ctx_t *ctx = warren_init();

    if (ctx == NULL) {
        perror("quit_after_hello: warren_init");
        return 1;
    }
    warren_done(ctx);
    return 0;
}
