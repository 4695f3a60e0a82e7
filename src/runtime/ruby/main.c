/*
 * warren-ruby: the Ruby runtime, a worker program on libwarren serving one
 * Rack application. The prototype of a "ruby" application runs it as a
 * zygote (src/runtime/common/zygote.c): Ruby starts and the rackup file
 * loads once, then every worker is forked from that image (as Unicorn and
 * Puma's cluster mode do). A worker runs the hooks' on_worker_boot, says
 * HELLO, and serves with "threads" Ruby threads. Started without a zygote
 * socket it is a worker itself. Only this program links libruby.
 *
 * Environment: WARREN_CHANNEL_FD, WARREN_APP_NAME, WARREN_WORKER_ID (see
 * warren.h) and, from the application's options (src/app/spec.c):
 *   WARREN_RUBY_SCRIPT    "script", the rackup file
 *   WARREN_RUBY_HOOKS     "hooks", a Ruby file of on_worker_boot ... blocks
 *   WARREN_RUBY_THREADS   "threads", default 1
 *
 * A worker whose application does not load exits before HELLO, its last
 * stderr line the cause (the router reports it through the control API):
 *   warren-ruby[blog:812]: script: SyntaxError: /srv/blog/config.ru:3: ...
 *
 * Exit status: 0 when the router closed the channel; 1 when the channel
 * failed; 69 when warren_init failed; 71 when Ruby or the application did
 * not load (or on_worker_boot failed); 78 for a bad WARREN_RUBY_* value;
 * the status of an `exit` the application called.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ruby.h>

#include "runtime/common/options.h"
#include "runtime/common/zygote.h"
#include "runtime/ruby/wrb.h"

#define ENV_SCRIPT   "WARREN_RUBY_SCRIPT"
#define ENV_HOOKS    "WARREN_RUBY_HOOKS"
#define ENV_THREADS  "WARREN_RUBY_THREADS"

/* Ruby's own fork() does this in the child: its thread list holds only
 * the forking thread again, and the random seed is new (else every worker
 * would draw the same numbers). */
static void after_fork_child(void)
{
    rb_thread_atfork();
}

static const wr_zygote_hooks_t zygote_hooks = {
    .zygote_comm = "warren-zygote",
    .worker_comm = WRB_PROGRAM,
    .after_fork_child = after_fork_child,
    .log = wrb_log,
};

/* The configuration was validated before: a bad value means the runtime
 * was started by hand. */
static int options_read(wrb_options_t *o)
{
    const char *hooks = getenv(ENV_HOOKS);

    memset(o, 0, sizeof(*o));
    o->script = getenv(ENV_SCRIPT);
    o->hooks = hooks && hooks[0] ? hooks : NULL;
    if (o->script == NULL || o->script[0] == '\0') {
        wrb_log(ENV_SCRIPT " is not set: no rackup file to run");
        return -1;
    }
    return wr_rt_threads(ENV_THREADS, &o->threads);
}

/* A worker's life once forked (or started alone): on_worker_boot, HELLO,
 * serving until the router closes the channel. Returns the exit status. */
static int work(const wrb_options_t *o, VALUE base_env)
{
    warren_ctx_t *ctx;
    VALUE channel, args[3];
    int rc, status;

    if (wrb_call("on_worker_boot", &status, "worker_boot", 0, NULL) < 0)
        return status >= 0 ? status : WR_RT_EXIT_LANG;
    ctx = o->threads > 1 ? warren_init_threads(o->threads) : warren_init();
    if (ctx == NULL) {
        wrb_log("cannot reach the router: " WARREN_ENV_CHANNEL_FD ": %s", strerror(errno));
        return WR_RT_EXIT_NO_ROUTER;
    }
    channel = wrb_channel_new(ctx);
    args[0] = channel;
    args[1] = UINT2NUM(o->threads);
    args[2] = base_env;
    rc = wrb_call("serving", &status, "run", 3, args);
    if (rc < 0 && o->threads > 1) {
        /* Other serving threads may still wait on the channel: neither
         * warren_done nor Ruby's cleanup (which joins them) may run. */
        fflush(NULL);
        _exit(status >= 0 ? status : WR_RT_EXIT_CHANNEL);
    }
    rc = rc < 0 ? (status >= 0 ? status : WR_RT_EXIT_CHANNEL)
                : wrb_channel_failed(channel) ? WR_RT_EXIT_CHANNEL : WR_RT_EXIT_OK;
    warren_done(ctx);
    RB_GC_GUARD(channel);
    return rc;
}

static int run(void)
{
    const char *name = getenv(WARREN_ENV_APP_NAME);
    wrb_options_t opt;
    VALUE base_env;
    int rc, zfd;

    wr_rt_log_init(WRB_PROGRAM, name);
    if (options_read(&opt) < 0)
        return WR_RT_EXIT_CONFIG;
    zfd = wr_zygote_fd();
    if (zfd == -2) {
        wrb_log("WARREN_ZYGOTE_FD is not a descriptor number");
        return WR_RT_EXIT_CONFIG;
    }
    if (wrb_ruby_start(&opt) < 0) {
        ruby_cleanup(0);
        return WR_RT_EXIT_LANG;
    }
    base_env = wrb_rack_base_env(&opt);
    if (zfd >= 0) {
        rc = wr_zygote_run(zfd, &zygote_hooks);
        if (rc <= 0) {                  /* the zygote itself ends */
            ruby_cleanup(0);
            return rc < 0 ? WR_RT_EXIT_CHANNEL : WR_RT_EXIT_OK;
        }
    }
    rc = work(&opt, base_env);
    /* at_exit blocks and finalizers run, as when a Rack server stops. */
    ruby_cleanup(0);
    return rc;
}

int main(int argc, char **argv)
{
    ruby_sysinit(&argc, &argv);
    {
        RUBY_INIT_STACK;
        return run();
    }
}
