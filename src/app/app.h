/*
 * app: application generations (DESIGN §4, without isolation for now).
 *
 * main turns an application's config object into a wr_app_spec_t (names
 * resolved, unsupported features refused) BEFORE it forks, then the child
 * runs wr_proto_main(): the prototype. It drops to the app's user, changes
 * directory and forks a worker on every WR_MSG_PROTO_SPAWN from main.
 *
 * "isolation" (src/sandbox/sandbox.h, docs/isolation.md): main prepares
 * and clone3()s the prototype into its namespaces; the prototype enters its
 * rootfs, drops caps and creds; every worker calls wr_sb_exec_prepare()
 * (no_new_privs, seccomp) right before its exec.
 *
 * A "python" app runs the WSGI runtime RUNTIMES/warren-python (RUNTIMES:
 * --modulesdir, by default the directory warrend itself is in) with the
 * app's options in WARREN_PYTHON_* variables (src/runtime/python/main.c).
 * A "php" app runs RUNTIMES/warren-php, its options in WARREN_PHP_*
 * variables (src/runtime/php/options.c). A "perl" app runs
 * RUNTIMES/warren-perl, its options in WARREN_PERL_* variables
 * (src/runtime/perl/main.c); a "ruby" app RUNTIMES/warren-ruby, its
 * options in WARREN_RUBY_* (src/runtime/ruby/main.c). All run as zygotes:
 * the language and the application loaded once, workers forked from it.
 *
 * Worker process (external type):
 *   argv     executable, then "arguments"
 *   env      PATH (a fixed default), the app's "environment" (may override
 *            PATH), WARREN_CHANNEL_FD, WARREN_APP_NAME, WARREN_WORKER_ID.
 *            warrend's own environment is not passed on.
 *   stdin    /dev/null
 *   stdout   the app's "stdout" file (append, created 0644), else /dev/null
 *   stderr   the app's "stderr" file, else warrend's error log
 *   cwd      "working_directory", else warrend's working directory
 *   creds    "user" (default: warrend --user), "group" (default: the app
 *            user's primary group when "user" is set, else warrend --group);
 *            no supplementary groups; no_new_privs.
 *   sched    SCHED_BATCH unless "scheduling" is "normal" (set in the
 *            prototype, inherited by everything it forks)
 *   dies with its prototype (PR_SET_PDEATHSIG), which dies with main.
 */
#ifndef WR_APP_H
#define WR_APP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>

#include "sandbox/sandbox.h"

#define WR_APP_DEFAULT_PATH  "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define WR_PYTHON_RUNTIME    "warren-python"
#define WR_PHP_RUNTIME       "warren-php"
#define WR_PERL_RUNTIME      "warren-perl"
#define WR_RUBY_RUNTIME      "warren-ruby"
#define WR_JAVA_RUNTIME      "warren-java"
#define WR_APP_DEFAULT_MAX   1      /* Unit's "max" (object form) */
#define WR_APP_DEFAULT_SPARE 0      /* Unit's "spare" */
#define WR_APP_DEFAULT_IDLE  15     /* Unit's "idle_timeout", seconds */
/* "concurrency" of an http worker (Warren): one request at a time suits any
 * server, a sequential one too; concurrent ones are told so. */
#define WR_APP_DEFAULT_CONCURRENCY 1

typedef struct {
    char      *name;
    uint32_t   gen;
    uid_t      uid;
    gid_t      gid;
    char      *executable;
    char     **argv;          /* NULL-terminated; argv[0] = executable */
    char     **env;           /* NULL-terminated "K=V" of "environment" + PATH */
    char      *cwd;           /* NULL: inherited */
    char      *out_path;      /* NULL: /dev/null */
    char      *err_path;      /* NULL: the error log */
    int        runtime;       /* a Warren language runtime (python, php):
                               * opened by main, outside any rootfs */
    uid_t      host_uid;      /* uid/gid outside a credential namespace */
    gid_t      host_gid;      /* (uid/gid: inside it) */
    wr_sb_conf_t sb;          /* "isolation" */
    /* "processes": an integer N is max = spare = N, not dynamic; the object
     * {max, spare, idle_timeout} is dynamic (Unit's defaults: 1, 0, 15 s). */
    int        max;           /* workers never exceed it */
    int        spare;         /* idle workers kept (static: workers kept) */
    int        idle_timeout;  /* seconds an idle worker beyond spare may stay */
    int        dynamic;
    int        http;          /* "protocol": "http": workers serve HTTP on fd 3 */
    int        concurrency;   /* ... each this many requests at once */
    int        zygote;        /* the runtime loads the app once and forks
                               * workers (src/app/zygote.h): python */
    int        sched_batch;   /* "scheduling": "batch" (the default) */
} wr_app_spec_t;

/* An external application with "protocol": "http" (the router proxies to
 * its workers instead of speaking the worker channel). */
int  wr_app_is_http(json_t *app);

/*
 * Build spec from a validated application object. Returns 0, or -1 with a
 * sentence in reason ("Application \"x\": type \"python\" is not supported
 * yet."). def_uid/def_gid: warrend's --user/--group.
 */
int  wr_app_spec_build(wr_app_spec_t *s, const char *name, json_t *app, uint32_t gen,
                       uid_t def_uid, gid_t def_gid, const char *runtimes,
                       char *reason, size_t rlen);
void wr_app_spec_free(wr_app_spec_t *s);
/* "isolation" into s->sb (spec_iso.c): 0, -1 out of memory, -2 why set. */
int  wr_app_spec_isolation(wr_app_spec_t *s, json_t *iso, const char *lang_dirs,
                           char *why, size_t wlen);

/* The prototype process; never returns. chan_fd: its channel to main.
 * sb: its sandbox as main prepared it (NULL without isolation); filter:
 * main's seccomp program. parent 0: do not check (own pid namespace). */
__attribute__((noreturn))
void wr_proto_main(const wr_app_spec_t *s, wr_sb_run_t *sb, int chan_fd, pid_t parent);

#endif
