/*
 * HTTP/2 (RFC 9113) on the router's client connections, framed by nghttp2.
 *
 * A session owns the client's socket (and TLS). Each stream it accepts
 * becomes one HTTP/1.1 request to an ordinary connection of the thread
 * (conn.c) over a socketpair, whose response comes back as HEADERS and DATA.
 * So a stream does everything a request on HTTP/1.1 does (routes, static
 * files, proxy, applications, limits, access log, counters) and the session
 * only translates fields and frames, with flow control both ways: a stream
 * holds at most WR_H2_STREAM_BUF response bytes, and request bodies are
 * given back to the client's window only once they went on.
 */
#ifndef WR_ROUTER_H2_H
#define WR_ROUTER_H2_H

#include "router/conn.h"

#define WR_H2_PREFACE      "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define WR_H2_PREFACE_LEN  24
#define WR_H2_CONN_WINDOW  (1 << 20)  /* request body bytes in flight per connection */
#define WR_H2_STREAM_BUF   65536      /* response bytes a stream holds for the client */
#define WR_H2_OUT_MAX      65536      /* framed bytes held while the client is slow */

struct wr_h2;

/* c speaks HTTP/2 (TLS chose "h2", or c->in starts with the preface): a
 * session takes c's socket, TLS and unread bytes, and c is gone. */
void wr_h2_start(wr_hconn_t *c);

/* The thread stops taking requests: each session says GOAWAY, finishes the
 * streams it has, then closes. */
void wr_h2_drain(struct wr_thread *t);

#endif
