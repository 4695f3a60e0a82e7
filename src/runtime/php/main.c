/*
 * warren-php: the PHP runtime, a worker program on libwarren. The prototype
 * of a "php" application runs it as a zygote (src/runtime/common/zygote.c):
 * it starts PHP once (php.ini, extensions, opcache's shared memory, the
 * application's "options"), then forks every worker from that image, as
 * php-fpm's master does; a worker says HELLO, then runs one script per
 * request until the router closes the channel. Started without a zygote
 * socket it is a worker itself. Only this program links libphp: warrend
 * never does.
 *
 * Environment: WARREN_CHANNEL_FD, WARREN_APP_NAME, WARREN_WORKER_ID (see
 * warren.h) and the WARREN_PHP_* options (options.c).
 *
 * A worker that cannot start PHP exits before HELLO, its last stderr line
 * the cause (the router reports it through the control API):
 *   warren-php[blog:812]: options.file: cannot read "/etc/x.ini": No such file or directory
 *
 * Exit status: 0 when the router closed the channel; 1 when the channel
 * failed; 69 when warren_init failed; 71 when PHP did not start; 78 for a
 * bad WARREN_PHP_* value.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/common/zygote.h"
#include "runtime/php/wphp.h"

/* PHP needs nothing around fork(): php-fpm forks its workers after the
 * same start. */
static const wr_zygote_hooks_t zygote_hooks = {
    .zygote_comm = "warren-zygote",
    .worker_comm = WPHP_PROGRAM,
    .log = wphp_log,
};

static int serve(warren_ctx_t *ctx, const wphp_options_t *o)
{
    warren_req_t *req;

    while ((req = warren_accept(ctx)) != NULL) {
        const char *name = warren_req_target_name(req, NULL);
        const wphp_target_t *t = wphp_target_find(o, name);
        if (t == NULL) {
            wphp_log("the router named target \"%s\", which this application has not", name);
            warren_abort(req);
            continue;
        }
        wphp_serve_one(req, t);
    }
    if (errno != 0) {
        wphp_log("channel: %s", warren_error(ctx));
        return -1;
    }
    return 0;
}

int main(void)
{
    const char *name = getenv(WARREN_ENV_APP_NAME);
    wphp_options_t opt;
    warren_ctx_t *ctx;
    int rc, zfd;

    wr_rt_log_init(WPHP_PROGRAM, name);
    if (wphp_options_read(&opt) < 0) {
        wphp_options_free(&opt);
        return WR_RT_EXIT_CONFIG;
    }
    zfd = wr_zygote_fd();
    if (zfd == -2) {
        wphp_log("WARREN_ZYGOTE_FD is not a descriptor number");
        wphp_options_free(&opt);
        return WR_RT_EXIT_CONFIG;
    }
    if (wphp_php_start(&opt) < 0) {
        wphp_options_free(&opt);
        return WR_RT_EXIT_LANG;
    }
    if (zfd >= 0) {
        rc = wr_zygote_run(zfd, &zygote_hooks);
        if (rc <= 0) {                  /* the zygote itself ends */
            wphp_php_stop();
            wphp_options_free(&opt);
            return rc < 0 ? WR_RT_EXIT_CHANNEL : WR_RT_EXIT_OK;
        }
    }
    ctx = warren_init();
    if (ctx == NULL) {
        wphp_log("cannot reach the router: " WARREN_ENV_CHANNEL_FD ": %s", strerror(errno));
        wphp_php_stop();
        wphp_options_free(&opt);
        return WR_RT_EXIT_NO_ROUTER;
    }
    rc = serve(ctx, &opt);
    warren_done(ctx);
    wphp_php_stop();
    wphp_options_free(&opt);
    return rc < 0 ? WR_RT_EXIT_CHANNEL : WR_RT_EXIT_OK;
}
