/*
 * The zygote protocol: between a prototype (src/app/proto.c) and a runtime
 * that loads the application once and forks its workers from that image
 * (the Python runtime: src/runtime/python/zygote.c).
 *
 * The prototype execs the runtime like a worker (same child set-up), but
 * with WR_ZYGOTE_ENV_FD naming a SOCK_SEQPACKET socket instead of a worker
 * channel. Messages are one wr_zygote_msg_t each, in host byte order:
 *   zygote -> prototype  READY once the application is loaded (an import
 *                        error ends the zygote instead: its last stderr
 *                        line is the cause);
 *   prototype -> zygote  SPAWN {worker}, with SCM_RIGHTS: the worker's
 *                        channel fd, then (optionally) its stderr fd;
 *   zygote -> prototype  WORKER {worker, pid}, or FAILED {worker, err}.
 * The zygote double-forks: the worker is re-parented to the prototype, a
 * child subreaper, which reaps it and reports its exit as for any worker.
 * The worker waits until its parent is the prototype, then sets
 * PR_SET_PDEATHSIG. The prototype closing the socket ends the zygote.
 */
#ifndef WR_ZYGOTE_H
#define WR_ZYGOTE_H

#include <stdint.h>

#define WR_ZYGOTE_ENV_FD   "WARREN_ZYGOTE_FD"
#define WR_ZYGOTE_MAX_FDS  2

enum {
    WR_ZYGOTE_READY  = 1,
    WR_ZYGOTE_SPAWN  = 2,
    WR_ZYGOTE_WORKER = 3,
    WR_ZYGOTE_FAILED = 4,
};

typedef struct {
    uint32_t type;
    uint32_t worker;
    int32_t  pid;      /* WORKER: the worker; READY: the zygote */
    int32_t  err;      /* FAILED: errno */
} wr_zygote_msg_t;

#endif
