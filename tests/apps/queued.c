/*
 * queued: a one-request-at-a-time libwarren application that counts how
 * many requests the router queued on it (the "pipeline"), for the
 * integration tests of the automatic pipeline depth.
 *
 *   GET /?us=N   waits N microseconds, then answers "ok"
 *   GET /max     the most requests seen waiting behind the one being
 *                served (after taking every message already sent), and
 *                starts counting again
 *
 * Build: cc -std=c17 -Iinclude tests/apps/queued.c build/libwarren.a -o queued
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "warren.h"

#define US_PARAM "us="

enum { STATUS_OK = 200, LINE = 32 };

static int answer(warren_req_t *req, const char *text)
{
    if (warren_response_init(req, STATUS_OK, 1) < 0
        || warren_response_add_header(req, "Content-Type", 12, "text/plain", 10) < 0)
        return -1;
    return warren_write_end(req, text, strlen(text));
}

int main(void)
{
    warren_ctx_t *ctx = warren_init();
    warren_req_t *req;
    size_t most = 0;

    if (ctx == NULL) {
        perror("queued: warren_init");
        return 1;
    }
    while ((req = warren_accept(ctx)) != NULL) {
        const char *query = warren_req_query(req, NULL);
        char line[LINE];
        int rc;

        /* What the router sent already, queued behind this one. */
        if (warren_poll(ctx) < 0)
            break;
        if (warren_pending(ctx) > most)
            most = warren_pending(ctx);
        if (strcmp(warren_req_path(req, NULL), "/max") == 0) {
            snprintf(line, sizeof(line), "%zu\n", most);
            most = 0;
            rc = answer(req, line);
        } else {
            if (strncmp(query, US_PARAM, strlen(US_PARAM)) == 0)
                usleep((useconds_t) atoi(query + strlen(US_PARAM)));
            rc = answer(req, "ok\n");
        }
        if (rc < 0)
            warren_abort(req);
        else
            warren_finish(req);
    }
    warren_done(ctx);
    return 0;
}
