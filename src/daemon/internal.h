/* The main process's own context and the functions its files share. */
#ifndef WR_DAEMON_INTERNAL_H
#define WR_DAEMON_INTERNAL_H

#include <jansson.h>

#include "core/addr.h"
#include "core/ev.h"
#include "core/ipc.h"
#include "core/process.h"
#include "daemon/daemon.h"
#include "sandbox/sandbox.h"

#define WR_RESTART_MIN_MS     100      /* first delay before restarting a child */
#define WR_RESTART_MAX_MS     5000     /* backoff cap */
#define WR_RESTART_STABLE_MS  10000    /* up this long: the backoff resets */
#define WR_APPLY_TIMEOUT_MS   30000    /* router must answer a config by then */
#define WR_STOP_TIMEOUT_MS    5000     /* fast stop: then SIGKILL */
#define WR_QUIT_TIMEOUT_MS    60000    /* graceful stop: then SIGKILL */
#define WR_APP_HELLO_TIMEOUT_MS  10000  /* a spawned worker must say hello by then */
#define WR_APP_DRAIN_GRACE_MS  5000   /* a retired generation whose workers the
                                          router let go: then SIGKILL */

typedef struct wr_main wr_main_t;
typedef struct wr_gen wr_gen_t;

typedef struct {
    wr_main_t  *m;
    wr_role_t   role;
    pid_t       pid;            /* 0 when not running */
    int         ready;          /* sent WR_MSG_READY */
    wr_chan_t   chan;
    uint64_t    started;        /* wr_ev_now() at fork */
    uint64_t    backoff;        /* ms of the next restart delay */
    wr_timer_t  restart;
} wr_child_t;

typedef struct {
    char *addr;                 /* listener key as written in the config */
    int   fd;
} wr_listen_t;

typedef struct {
    size_t       n, cap;
    wr_listen_t *v;
} wr_listens_t;

/* The one change being applied. */
typedef struct {
    int          active;
    char        *alog_path;     /* access log of the new config, or NULL */
    int          alog_fd;       /* opened for it when the path changed, else -1 */
    uint32_t     reply_id;      /* the controller's id, 0 for main's own */
    uint32_t     router_id;
    json_t      *conf;
    char        *text;          /* compact JSON of conf */
    wr_listens_t added;         /* bound for this change, not yet running */
    int          waiting_apps;  /* new generations not ready yet */
    wr_timer_t   timeout;
} wr_apply_t;

/* What differs between the stores of the control API (store.c). */
typedef struct {
    const char *dir;            /* under the state directory */
    const char *what;           /* in messages: "certificate" */
    long        max;            /* bytes of one item */
    int       (*name_ok)(const char *name);
    const char *(*user)(json_t *conf, const char *name);   /* who names it, or NULL */
    int         secret;         /* wiped from memory after use */
    uint32_t    msg;            /* the message that carries one item */
} wr_store_kind_t;

typedef struct {
    const wr_store_kind_t *kind;
    json_t     *names;          /* {"name": true} */
} wr_store_t;

struct wr_main {
    const wr_options_t *opt;
    wr_ev_loop_t  loop;
    wr_ev_t       sig;          /* signalfd */
    uid_t         uid;          /* children drop to */
    gid_t         gid;
    uid_t         control_uid;  /* --control-user, or (uid_t) -1 */
    gid_t         control_gid;  /* --control-group, or (gid_t) -1 */
    wr_addr_t     control_addr;
    int           control_fd;
    wr_child_t    child[WR_ROLE_COUNT];   /* [WR_ROLE_MAIN] unused */
    json_t       *running;      /* the running config */
    wr_store_t    certs;        /* /certificates */
    wr_store_t    js_modules;   /* /js_modules */
    char         *running_text;
    wr_listens_t  listens;      /* sockets of the running config */
    char         *alog_path;    /* access log file of the running config */
    int           alog_fd;      /* open on it (main's copy), or -1 */
    wr_apply_t    apply;
    uint32_t      next_id;
    int           stopping;     /* 0, SIGTERM (fast) or SIGQUIT (graceful) */
    wr_timer_t    stop_timer;
    char          runtimes[4096];   /* where language runtimes are (--modulesdir) */
    int           pid_written;
    int           ready_fd;     /* daemonizing parent waits on it; -1 when told */
    wr_gen_t     *gens;         /* every application generation with a process */
    uint32_t      next_gen;
    wr_sb_filter_t seccomp;     /* the default profile, built on first use */
};

/* children.c */
int   wr_child_spawn(wr_main_t *m, wr_role_t role);
void  wr_child_reap(wr_main_t *m);
void  wr_children_signal(wr_main_t *m, int sig);
int   wr_children_alive(wr_main_t *m);
void  wr_children_send_log(wr_main_t *m);
/* The next restart delay (ms) after a failure of a process up for up ms. */
uint64_t wr_backoff_next(uint64_t cur, uint64_t up);

/* store.c: the certificate and JavaScript module stores */
extern const wr_store_kind_t wr_store_certs, wr_store_js_modules;
int   wr_store_load(wr_main_t *m, wr_store_t *s, const wr_store_kind_t *kind);  /* at start */
void  wr_store_send_all(wr_main_t *m, const wr_store_t *s, wr_chan_t *ch);   /* kind->msg each */
void  wr_store_send_used(wr_main_t *m, const wr_store_t *s, wr_chan_t *ch, json_t *conf);
void  wr_store_put(wr_main_t *m, wr_store_t *s, uint32_t id, const char *data, size_t len);
void  wr_store_delete(wr_main_t *m, wr_store_t *s, uint32_t id, const char *data, size_t len);

/* apply.c */
int   wr_apply_initial(wr_main_t *m, json_t *conf);
void  wr_apply_start(wr_main_t *m, uint32_t reply_id, const char *text, size_t len);
void  wr_apply_restart(wr_main_t *m, uint32_t reply_id, const char *text, size_t len,
                       const char *restart);
void  wr_apply_router_result(wr_main_t *m, uint32_t id, int ok, const char *reason);
void  wr_apply_router_lost(wr_main_t *m);
void  wr_router_prime(wr_main_t *m);
void  wr_listens_close(wr_listens_t *l);
void  wr_access_log_reopen(wr_main_t *m);
void  wr_apply_apps_ready(wr_main_t *m);
void  wr_apply_apps_failed(wr_main_t *m, const char *reason);

/* orphans.c: main's children that are none of its own (an application's
 * orphans, adopted by main, the child subreaper) are killed; how many.
 * wr_proc_parent: the state and parent of pid from /proc/PID/stat, 0, or
 * -1 when it is gone. */
int   wr_orphans_kill(wr_main_t *m);
int   wr_proc_parent(pid_t pid, char *state, pid_t *ppid);

/* apps.c: application generations */
void  wr_apps_start_running(wr_main_t *m);
int   wr_apps_prepare(wr_main_t *m, json_t *conf, const char *restart, char *reason,
                      size_t rlen);
int   wr_apps_pending(wr_main_t *m);
void  wr_apps_commit(wr_main_t *m);
void  wr_apps_abort(wr_main_t *m);
void  wr_apps_send_map(wr_main_t *m, json_t *conf);
int   wr_apps_reaped(wr_main_t *m, pid_t pid, int status);
void  wr_apps_signal(wr_main_t *m, int sig, int group);
int   wr_apps_alive(wr_main_t *m);
/* Is pid one of the generations' prototypes? */
int   wr_apps_owns(wr_main_t *m, pid_t pid);
void  wr_apps_send_log(wr_main_t *m);
void  wr_apps_router_msg(wr_main_t *m, wr_msg_t *msg);   /* WANT, KILL, RELEASE */
void  wr_apps_router_lost(wr_main_t *m);
void  wr_apps_free(wr_main_t *m);

#endif
