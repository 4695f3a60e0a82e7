/*
 * HTTP/2 (RFC 9113) on the router's client connections, framed by nghttp2.
 *
 * A session owns the client's socket (and TLS). Each stream it accepts
 * becomes one HTTP/1.1 request to a connection of the thread (conn.c) that
 * has no fd: it reads the request from the stream and writes its response
 * to it (wr_h2_vt_*), and comes back as HEADERS and DATA. So a stream does
 * everything a request on HTTP/1.1 does (routes, static files, proxy,
 * applications, limits, access log, counters) and the session only
 * translates fields and frames, with flow control both ways: a stream holds
 * at most WR_H2_STREAM_BUF response bytes, and request bodies are given
 * back to the client's window only once its connection read them.
 */
#ifndef WR_ROUTER_H2_H
#define WR_ROUTER_H2_H

#include "router/conn.h"

#define WR_H2_PREFACE      "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define WR_H2_PREFACE_LEN  24
#define WR_H2_CONN_WINDOW  (1 << 20)  /* request body bytes in flight per connection */
#define WR_H2_STREAM_BUF   65536      /* response bytes a stream holds for the client */
#define WR_H2_OUT_MAX      65536      /* framed bytes held while the client is slow */
#define WR_H2_GOAWAY_GRACE_MS 1000    /* draining: from the shutdown notice to the last
                                         GOAWAY (RFC 9113 §6.8: at least a round trip) */

struct wr_h2;

/* c speaks HTTP/2 (TLS chose "h2", or c->in starts with the preface): a
 * session takes c's socket, TLS and unread bytes, and c is gone. */
void wr_h2_start(wr_hconn_t *c);

/* The stream side of a stream's connection (conn.c, for a c with c->h2):
 * recv and send as on a non-blocking socket (-1 with errno EAGAIN; recv
 * 0 and send EPIPE once the stream is gone), want as epoll's interest
 * (level-triggered: posted while it holds), shutdown of the sending side,
 * and close. */
ssize_t wr_h2_vt_recv(wr_hconn_t *c, void *buf, size_t len);
ssize_t wr_h2_vt_send(wr_hconn_t *c, const void *buf, size_t len);
void    wr_h2_vt_want(wr_hconn_t *c, uint32_t events);
void    wr_h2_vt_shutdown(wr_hconn_t *c);
void    wr_h2_vt_close(wr_hconn_t *c);

/* The thread stops taking requests: each session says so (a GOAWAY
 * shutdown notice), takes the streams already on their way for
 * WR_H2_GOAWAY_GRACE_MS, sends the last GOAWAY, finishes its streams and
 * closes. */
void wr_h2_drain(struct wr_thread *t);

#endif
