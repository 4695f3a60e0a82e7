/*
 * warren-perl: the Perl runtime, a worker program on libwarren serving one
 * PSGI application. The prototype of a "perl" application runs it as a
 * zygote (src/runtime/common/zygote.c): Perl starts and the script loads
 * once, then every worker is forked from that image. A worker serves with
 * "threads" threads, each on an interpreter of its own (the first is the
 * loaded one, the others clones of it). Started without a zygote socket
 * it is a worker itself. Only this program links libperl.
 *
 * Environment: WARREN_CHANNEL_FD, WARREN_APP_NAME, WARREN_WORKER_ID (see
 * warren.h) and, from the application's options (src/app/spec.c):
 *   WARREN_PERL_SCRIPT             "script", the PSGI file
 *   WARREN_PERL_THREADS            "threads", default 1
 *   WARREN_PERL_THREAD_STACK_SIZE  "thread_stack_size", bytes
 *
 * A worker whose script does not load exits before HELLO, its last stderr
 * line the cause (the router reports it through the control API):
 *   warren-perl[blog:812]: script: syntax error at /srv/app.psgi line 3, ...
 *
 * Exit status: 0 when the router closed the channel; 1 when the channel
 * failed; 69 when warren_init failed; 71 when Perl or the script did not
 * load; 78 for a bad WARREN_PERL_* value.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/common/options.h"
#include "runtime/common/zygote.h"
#include "runtime/perl/wpl.h"

#define ENV_SCRIPT      "WARREN_PERL_SCRIPT"
#define ENV_THREADS     "WARREN_PERL_THREADS"
#define ENV_STACK_SIZE  "WARREN_PERL_THREAD_STACK_SIZE"

static void worker_env(const char *worker_id)
{
    wpl_interp_after_fork();
    wpl_interp_env(WARREN_ENV_CHANNEL_FD);
    wpl_interp_env(WARREN_ENV_WORKER_ID);
}

/* Perl needs nothing around fork() itself: a forking PSGI server (Starman,
 * uWSGI's psgi plugin) forks after the same start. */
static const wr_zygote_hooks_t zygote_hooks = {
    .zygote_comm = "warren-zygote",
    .worker_comm = WPL_PROGRAM,
    .worker_env = worker_env,
    .log = wpl_log,
};

/* The configuration was validated before: a bad value means the runtime
 * was started by hand. */
static int options_read(wpl_options_t *o)
{
    memset(o, 0, sizeof(*o));
    o->script = getenv(ENV_SCRIPT);
    if (o->script == NULL || o->script[0] == '\0') {
        wpl_log(ENV_SCRIPT " is not set: no PSGI script to run");
        return -1;
    }
    if (wr_rt_threads(ENV_THREADS, &o->threads) < 0
        || wr_rt_stack_size(ENV_STACK_SIZE, &o->stack_size) < 0)
        return -1;
    return 0;
}

typedef struct {
    warren_ctx_t *ctx;
    wpl_interp_t *interp;
    pthread_t     th;
    int           failed;       /* the channel failed under this thread */
} server_t;

static void *serve(void *arg)
{
    server_t *s = arg;
    warren_req_t *req;

    if (wpl_interp_enter(s->interp) < 0) {
        s->failed = 1;
        return NULL;
    }
    while ((req = warren_accept(s->ctx)) != NULL)
        wpl_serve_one(s->interp, req);
    if (errno != 0) {
        wpl_log("channel: %s", warren_error(s->ctx));
        s->failed = 1;
    }
    return NULL;
}

/* The extra threads' interpreters are all cloned from the first before
 * any thread runs Perl; each thread frees its own. A thread that cannot
 * be started leaves the others serving (the router's requests wait for
 * a free one). */
static int serve_threads(warren_ctx_t *ctx, wpl_interp_t *first, const wpl_options_t *o)
{
    server_t *srv = calloc(o->threads, sizeof(*srv));
    pthread_attr_t attr;
    unsigned cloned = 1;
    int rc, failed = 0;

    if (srv == NULL) {
        wpl_log("out of memory for %u serving threads", o->threads);
        return -1;
    }
    srv[0] = (server_t) { .ctx = ctx, .interp = first };
    for (; cloned < o->threads; cloned++) {
        srv[cloned] = (server_t) { .ctx = ctx, .interp = wpl_interp_clone(first) };
        if (srv[cloned].interp == NULL)
            goto out;
    }
    rc = pthread_attr_init(&attr);
    if (rc == 0 && o->stack_size > 0)
        rc = pthread_attr_setstacksize(&attr, o->stack_size);
    if (rc != 0) {
        wpl_log("pthread_attr_setstacksize(%zu) failed: %s", o->stack_size, strerror(rc));
        goto out;
    }
    for (unsigned i = 1; i < o->threads; i++) {
        rc = pthread_create(&srv[i].th, &attr, serve, &srv[i]);
        if (rc != 0) {
            wpl_log("pthread_create(serving thread %u of %u) failed: %s", i + 1,
                    o->threads, strerror(rc));
            wpl_interp_free(srv[i].interp);
            srv[i].interp = NULL;
        }
    }
    pthread_attr_destroy(&attr);
    serve(&srv[0]);
    for (unsigned i = 1; i < o->threads; i++) {
        if (srv[i].interp == NULL)
            continue;
        pthread_join(srv[i].th, NULL);
        failed |= srv[i].failed;
        wpl_interp_free(srv[i].interp);
        srv[i].interp = NULL;
    }
    failed |= srv[0].failed;
    free(srv);
    return failed ? -1 : 0;
out:                                /* before any thread started */
    for (unsigned i = 1; i < cloned; i++)
        wpl_interp_free(srv[i].interp);
    free(srv);
    return -1;
}

int main(int argc, char **argv, char **envp)
{
    const char *name = getenv(WARREN_ENV_APP_NAME);
    wpl_options_t opt;
    wpl_interp_t *pi;
    warren_ctx_t *ctx;
    int rc, zfd;

    wr_rt_log_init(WPL_PROGRAM, name);
    if (options_read(&opt) < 0)
        return WR_RT_EXIT_CONFIG;
    zfd = wr_zygote_fd();
    if (zfd == -2) {
        wpl_log("WARREN_ZYGOTE_FD is not a descriptor number");
        return WR_RT_EXIT_CONFIG;
    }
    wpl_perl_init(&argc, &argv, &envp);
    pi = wpl_interp_start(&opt);
    if (pi == NULL) {
        wpl_perl_term();
        return WR_RT_EXIT_LANG;
    }
    if (zfd >= 0) {
        rc = wr_zygote_run(zfd, &zygote_hooks);
        if (rc <= 0) {                  /* the zygote itself ends */
            wpl_interp_free(pi);
            wpl_perl_term();
            return rc < 0 ? WR_RT_EXIT_CHANNEL : WR_RT_EXIT_OK;
        }
    }
    ctx = opt.threads > 1 ? warren_init_threads(opt.threads) : warren_init();
    if (ctx == NULL) {
        wpl_log("cannot reach the router: " WARREN_ENV_CHANNEL_FD ": %s", strerror(errno));
        wpl_interp_free(pi);
        wpl_perl_term();
        return WR_RT_EXIT_NO_ROUTER;
    }
    rc = serve_threads(ctx, pi, &opt);
    warren_done(ctx);
    wpl_interp_free(pi);
    wpl_perl_term();
    return rc < 0 ? WR_RT_EXIT_CHANNEL : WR_RT_EXIT_OK;
}
