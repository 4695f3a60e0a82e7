/*
 * A request body read whole before the request goes on. An upstream (the
 * "proxy" action, a "protocol": "http" application's worker) gets every
 * request with a Content-Length: a chunked body from the client is read to
 * its end first, de-chunked, then sent with its length, as Unit does. So
 * does an application's worker when settings.http.chunked_transform is on.
 *
 * Where the body waits: in memory while it fits settings.http.
 * body_buffer_size; past that, all of it in a temporary file made with
 * O_TMPFILE (or created and unlinked at once), mode 0600, in settings.http.
 * body_temp_path or else the router's own directory under --tmpdir. A body
 * past max_body_size is a 413, broken framing a 400, a pause longer than
 * body_read_timeout a 408; each closes the connection.
 */
#ifndef WR_ROUTER_SPOOL_H
#define WR_ROUTER_SPOOL_H

#include <sys/types.h>

#include "router/conn.h"

#define WR_SPOOL_DIR         "bodies"  /* the router's directory under --tmpdir */
#define WR_SPOOL_DIR_MODE    0700
#define WR_SPOOL_FILE_MODE   0600
#define WR_SPOOL_READS       16        /* client reads per event (fairness) */
#define WR_SPOOL_CHUNK       65536     /* bytes read from a file per message */

/* Make (or take over) TMPDIR/bodies for the router's user, while still
 * privileged. Returns an open directory fd, or -1 (logged): then only a
 * configured body_temp_path can hold large bodies. */
int  wr_spool_dir_open(const char *tmpdir, uid_t uid, gid_t gid);

/* Read c's chunked body whole (c->body_whole), then hand c on: to
 * wr_app_begin when c->app is set, else to wr_proxy_begin. */
void wr_spool_begin(wr_hconn_t *c, int expect_continue);
void wr_spool_on_client(wr_hconn_t *c, uint32_t events);
void wr_spool_timeout(wr_hconn_t *c);

/* Send the body (after the head) to the upstream socket fd: 1 all sent,
 * 0 it would block, -1 it failed (errno). With no spool: 1. */
int  wr_spool_send(wr_hconn_t *c, int fd);
/* A worker takes the body in messages: the next at most max bytes (*p,
 * *n; from memory, or read from the file), then wr_spool_consumed with
 * what went. -1: the file could not be read (logged). */
int  wr_spool_next(wr_hconn_t *c, size_t max, const char **p, size_t *n);
void wr_spool_consumed(wr_hconn_t *c, size_t n);
/* Body bytes not sent yet (0 with no spool). */
long long wr_spool_unsent(const wr_hconn_t *c);
/* Drop c's spool (the temporary file closes with it). */
void wr_spool_free(wr_hconn_t *c);

#endif
