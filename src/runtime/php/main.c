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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/common/zygote.h"
#include "runtime/php/wphp.h"

enum { WPHP_NAME_SHOWN = 64 };

/* PHP needs nothing around fork(): php-fpm forks its workers after the
 * same start. */
static const wr_zygote_hooks_t zygote_hooks = {
    .zygote_comm = "warren-zygote",
    .worker_comm = WPHP_PROGRAM,
    .log = wphp_log,
};

/* The process's own state: the name its log lines carry. */
static struct {
    char app[WPHP_NAME_SHOWN + 1];
} proc = { "?" };

static void log_line(const char *p, size_t n)
{
    fprintf(stderr, WPHP_PROGRAM "[%s:%d]: %.*s\n", proc.app, (int) getpid(), (int) n, p);
}

void wphp_log(const char *fmt, ...)
{
    char line[WPHP_LINE_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    log_line(line, strlen(line));
}

void wphp_log_text(const char *text, size_t len)
{
    while (len > 0) {
        const char *nl = memchr(text, '\n', len);
        size_t n = nl ? (size_t) (nl - text) : len;
        log_line(text, n);
        if (nl == NULL)
            break;
        text += n + 1;
        len -= n + 1;
    }
}

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

    setvbuf(stderr, NULL, _IONBF, 0);       /* one write(2) per log line */
    if (name && name[0])
        snprintf(proc.app, sizeof(proc.app), "%s", name);
    if (wphp_options_read(&opt) < 0) {
        wphp_options_free(&opt);
        return WPHP_EXIT_CONFIG;
    }
    zfd = wr_zygote_fd();
    if (zfd == -2) {
        wphp_log("WARREN_ZYGOTE_FD is not a descriptor number");
        wphp_options_free(&opt);
        return WPHP_EXIT_CONFIG;
    }
    if (wphp_php_start(&opt) < 0) {
        wphp_options_free(&opt);
        return WPHP_EXIT_PHP;
    }
    if (zfd >= 0) {
        rc = wr_zygote_run(zfd, &zygote_hooks);
        if (rc <= 0) {                  /* the zygote itself ends */
            wphp_php_stop();
            wphp_options_free(&opt);
            return rc < 0 ? WPHP_EXIT_CHANNEL : WPHP_EXIT_OK;
        }
    }
    ctx = warren_init();
    if (ctx == NULL) {
        wphp_log("cannot reach the router: " WARREN_ENV_CHANNEL_FD ": %s", strerror(errno));
        wphp_php_stop();
        wphp_options_free(&opt);
        return WPHP_EXIT_NO_ROUTER;
    }
    rc = serve(ctx, &opt);
    warren_done(ctx);
    wphp_php_stop();
    wphp_options_free(&opt);
    return rc < 0 ? WPHP_EXIT_CHANNEL : WPHP_EXIT_OK;
}
