/*
 * Workers of an "external" application with "protocol": "http": any
 * program that serves HTTP on an inherited listen socket, handed over as
 * systemd socket activation does (fd 3, LISTEN_FDS=1, LISTEN_PID,
 * LISTEN_FDNAMES). The router proxies requests to it (src/router/proxy.c).
 *
 * Each worker gets its own AF_UNIX stream listener with a kernel-chosen
 * abstract name (autobind: nothing on disk, gone with the last fd). The
 * prototype keeps only the worker's channel (which goes to the router as a
 * liveness line, src/lib/proto.h WR_APP_HTTP_ADDR) and probes the worker
 * with "OPTIONS * HTTP/1.1" until it answers: only then does it say HELLO
 * for it, so the PUT that started the app answers once it can serve, and a
 * program that dies at once fails the PUT with its exit and last words.
 *
 * Used only by the prototype (src/app/proto.c).
 */
#ifndef WR_APP_HTTP_WORKER_H
#define WR_APP_HTTP_WORKER_H

#include <stddef.h>
#include <sys/types.h>

#include "core/ev.h"

#define WR_HTTPW_FD              3      /* systemd's SD_LISTEN_FDS_START */
#define WR_HTTPW_BACKLOG         511    /* Unit's default listen backlog */
#define WR_HTTPW_PROBE_RETRY_MS  50     /* not answering yet: ask again then */
#define WR_HTTPW_STOP_MS         5000   /* SIGTERM, then SIGKILL after this */

typedef struct wr_httpw wr_httpw_t;

/* Before the fork: the worker's listen socket (close-on-exec). Returns the
 * fd, or -1 with a sentence in msg. */
int  wr_httpw_listen(char *msg, size_t len);

/* In the child, after its stdio is set: the listen socket becomes fd 3
 * (inherited) and LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES go to envp[*n..].
 * *efd (the exec-status pipe) is moved off fd 3 if it was there. Returns
 * 0, or -1 with *call naming what failed (errno set). */
int  wr_httpw_child(int lfd, int *efd, char **envp, size_t *n, const char *name,
                    const char **call);

/* In the prototype, once the worker exec'd: takes lfd (closed: only the
 * worker holds it now) and chan (the worker's channel end main does not
 * get). Returns NULL if it cannot watch the worker (the caller kills it). */
wr_httpw_t *wr_httpw_start(wr_ev_loop_t *loop, int lfd, int chan, pid_t pid,
                           const char *name, int concurrency);

/* The worker was reaped: stop, close its channel (the router sees EOF). */
void wr_httpw_gone(wr_ev_loop_t *loop, wr_httpw_t *h);

#endif
