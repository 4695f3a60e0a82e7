/*
 * Typed messages between warrend's own processes over SOCK_SEQPACKET
 * socketpairs, with one fd passed by SCM_RIGHTS where a message carries one.
 * A message larger than WR_IPC_FRAGMENT travels as several fragments
 * (WR_MSG_F_MORE on all but the last) and is handed over whole.
 */
#ifndef WR_IPC_H
#define WR_IPC_H

#include <stddef.h>
#include <stdint.h>

#include "core/ev.h"

typedef enum {
    WR_MSG_READY = 1,      /* child -> main: initialized, serving */
    WR_MSG_CONTROL_FD,     /* main -> controller: the control listen socket (fd) */
    WR_MSG_CONF_CURRENT,   /* main -> controller: running config, JSON text */
    WR_MSG_CONF_APPLY,     /* controller -> main -> router: candidate, JSON text */
    WR_MSG_CONF_RESULT,    /* router -> main -> controller: wr_msg_result_t + reason */
    WR_MSG_LISTENER,       /* main -> router: listen socket (fd) + address text */
    WR_MSG_STATUS_REQ,     /* controller -> main -> router: "metrics" or empty */
    WR_MSG_STATUS,         /* router -> main -> controller: /status JSON or
                              /metrics text */
    WR_MSG_LOG_FD,         /* main -> children: the reopened error log (fd) */
    WR_MSG_ACCESS_LOG,     /* main -> router: access log fd (none: logging off) */
    WR_MSG_APP_MAP,        /* main -> router: {"app": generation, ...} of the config
                              that the next WR_MSG_CONF_APPLY carries (JSON text) */
    WR_MSG_APP_WORKER,     /* main -> router: wr_msg_worker_t + app name; fd = the
                              router's end of a worker channel (HELLO already read) */
    WR_MSG_APP_RETIRE,     /* main -> router: uint32 generation: dispatch no more to
                              it; close idle channels now, busy ones after their request */
    WR_MSG_PROTO_SPAWN,    /* main -> prototype: wr_msg_spawn_t: start one worker */
    WR_MSG_PROTO_WORKER,   /* prototype -> main: wr_msg_worker_t; fd = router's end */
    WR_MSG_PROTO_EXIT,     /* prototype -> main: wr_msg_exit_t + reason text */
    WR_MSG_APP_RESTART,    /* controller -> main: app name: a new generation of it
                              (answered with WR_MSG_CONF_RESULT) */
    WR_MSG_PROTO_PIDFD,    /* prototype -> main: uint32 worker; fd = its pidfd (sent
                              before WR_MSG_PROTO_WORKER when the prototype has its
                              own pid namespace: main learns the host pid) */
    WR_MSG_APP_WANT,       /* router -> main: wr_msg_want_t: requests wait, start more
                              workers (answered with WR_MSG_APP_SCALE) */
    WR_MSG_APP_KILL,       /* router -> main: wr_msg_worker_t (pid unused): a worker
                              past limits.timeout; main kills it */
    WR_MSG_APP_SCALE,      /* main -> router: wr_msg_scale_t + app name: a generation's
                              process options and workers starting */
    WR_MSG_APP_RELEASE,    /* router -> main: wr_msg_worker_t (pid unused); fd = the
                              router's end of that worker's channel. The router lets
                              the worker go (limits.requests, idle_timeout, a failed
                              exchange); main closes the channel and so expects the
                              worker's exit: no failure backoff for it */
    WR_MSG_CERT,           /* main -> controller (each stored bundle, at its start),
                              main -> router (each bundle the next WR_MSG_CONF_APPLY
                              names): name, NUL, PEM text */
    WR_MSG_CERT_PUT,       /* controller -> main: name, NUL, PEM text: store it
                              (answered with WR_MSG_CONF_RESULT) */
    WR_MSG_CERT_DELETE,    /* controller -> main: name: remove it from the store
                              (answered with WR_MSG_CONF_RESULT) */
    WR_MSG_JS_MODULE,      /* main -> controller (each stored module, at its start),
                              main -> router (each module the next WR_MSG_CONF_APPLY
                              names): name, NUL, source */
    WR_MSG_JS_MODULE_PUT,  /* controller -> main: name, NUL, source: store it
                              (answered with WR_MSG_CONF_RESULT) */
    WR_MSG_JS_MODULE_DELETE, /* controller -> main: name: remove it from the store
                              (answered with WR_MSG_CONF_RESULT) */
    WR_MSG_TYPE_MAX
} wr_msg_type_t;

#define WR_MSG_F_MORE     1u

/* The one payload byte of WR_MSG_ACCESS_LOG. */
#define WR_ALOG_WITH_CONF 'C'   /* use it from the next applied config on */
#define WR_ALOG_NOW       'R'   /* a reopened file: switch now */
#define WR_IPC_FRAGMENT   (32 * 1024)          /* payload bytes per datagram */
#define WR_IPC_MAX_MSG    (64L * 1024 * 1024)  /* reassembled message cap */

typedef struct {
    uint32_t type;
    uint32_t id;       /* correlates a reply with its request; 0 = none */
    uint32_t len;      /* payload bytes in this fragment */
    uint32_t flags;
} wr_msg_hdr_t;

/* Payload head of WR_MSG_CONF_RESULT; a NUL-free reason text follows. */
typedef struct {
    int32_t ok;        /* 1 applied, 0 refused */
} wr_msg_result_t;

/* WR_MSG_APP_WORKER, WR_MSG_PROTO_WORKER: a worker of a generation. */
typedef struct {
    uint32_t gen;
    uint32_t worker;   /* worker number within the generation */
    int32_t  pid;      /* as main/the prototype sees it */
    uint32_t streams;  /* WR_MSG_APP_WORKER: requests it serves at once (its
                          HELLO); 0 elsewhere */
    uint32_t tunnels;  /* WR_MSG_APP_WORKER: its HELLO's room for tunnels */
} wr_msg_worker_t;

/* WR_MSG_APP_WANT */
typedef struct {
    uint32_t gen;
    uint32_t count;    /* workers wanted beyond those running or starting */
} wr_msg_want_t;

/* WR_MSG_APP_SCALE (src/router/app_scale.c says how the two sides share
 * the work of scaling). */
typedef struct {
    uint32_t gen;
    int32_t  starting; /* spawned, not yet handed over (or waiting on backoff) */
    int32_t  max;
    int32_t  spare;
    int32_t  idle_timeout;   /* seconds; 0: none */
    int32_t  dynamic;  /* 0: "processes" is an integer: main alone keeps them */
    uint32_t failures; /* workers of the generation that ended unasked, so far */
} wr_msg_scale_t;

/* WR_MSG_PROTO_SPAWN */
typedef struct {
    uint32_t worker;
} wr_msg_spawn_t;

/* WR_MSG_PROTO_EXIT: a worker ended (or could not start); a reason text
 * ("execve(/srv/app) failed: No such file or directory") follows. */
typedef struct {
    uint32_t worker;
    int32_t  pid;      /* 0 when fork itself failed */
    int32_t  status;   /* waitpid status, or -1 when it never started */
} wr_msg_exit_t;

/* A received message. fd is -1 or an fd the handler may take (set it to -1);
 * an fd left in place is closed after the handler returns. */
typedef struct {
    uint32_t    type;
    uint32_t    id;
    const char *data;
    size_t      len;
    int         fd;
} wr_msg_t;

typedef struct wr_chan wr_chan_t;
typedef struct wr_chan_out wr_chan_out_t;

struct wr_chan {
    wr_ev_t        ev;
    wr_ev_loop_t  *loop;
    wr_chan_out_t *head, *tail;      /* fragments waiting for EPOLLOUT */
    char          *in;               /* reassembly of a fragmented message */
    size_t         in_len, in_cap;
    int            in_fd;
    int            closed;
    void         (*on_msg)(wr_chan_t *c, wr_msg_t *m);
    void         (*on_close)(wr_chan_t *c);   /* peer gone or protocol error */
    void          *data;
};

/* Create a SOCK_SEQPACKET pair (close-on-exec). */
int  wr_chan_pair(int fds[2]);
/* Start serving fd (taken) on loop; callbacks set by the caller beforehand. */
int  wr_chan_open(wr_chan_t *c, wr_ev_loop_t *loop, int fd);
/* Queue a message; fd (or -1) is duplicated, the caller keeps its own. */
int  wr_chan_send(wr_chan_t *c, uint32_t type, uint32_t id,
                  const void *data, size_t len, int fd);
int  wr_chan_send_result(wr_chan_t *c, uint32_t id, int ok, const char *reason);
/* Hand every message already received to on_msg (the peer is gone, what
 * it sent last is still there), without waiting and without on_close. */
void wr_chan_drain(wr_chan_t *c);
/* Close the fd and drop what is queued; no callback is called. */
void wr_chan_close(wr_chan_t *c);

#endif
