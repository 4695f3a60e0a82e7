/*
 * Requests to applications, between its two halves: app.c chooses the
 * worker (idle list, queue, streams and pipeline slots, hand-off between
 * threads, what a worker's failure means for each of its requests);
 * app_stream.c runs one exchange on one stream of a worker's channel.
 * Only these two files include it.
 */
#ifndef WR_ROUTER_APP_H
#define WR_ROUTER_APP_H

#include "router/conn.h"

/* ---- app.c, for app_stream.c ---- */

/* c's exchange is over (answered, failed, or its client left): its slot is
 * freed, or, while the worker's direction is still open, left to close
 * (the router's direction is closed with ABORT if it was not). The worker
 * goes on to its home thread's next waiter, or idle. c continues alone. */
void wr_app_stream_end(wr_hconn_t *c);

/* The worker's channel failed (closed, broken message): every request on
 * it is answered (or retried), the channel goes back to main. While the
 * worker's event is being handled, the worker itself is freed after it. */
void wr_app_worker_gone(wr_worker_t *w);

/* The worker's direction of slot s closed while no request held it (its
 * client went away): the slot is free once the router's is too. */
void wr_app_slot_closed(wr_worker_t *w, wr_wstream_t *s);
/* A response on w (stream s) is complete: its time feeds the automatic
 * pipeline depth. */
void wr_app_served(wr_worker_t *w, wr_wstream_t *s);
/* c's stream on its worker became a tunnel (a 101 came). */
void wr_app_tunnel_opened(wr_hconn_t *c);
uint64_t wr_app_now_us(void);               /* CLOCK_MONOTONIC, µs */

/* While w is held (its event is being handled), a failure does not free it
 * and freed slots do not send it on: the last unhold does (w must not be
 * used after it). */
void wr_app_hold(wr_worker_t *w);
void wr_app_unhold(wr_worker_t *w);

/* ---- app_stream.c, for app.c ---- */

/* Send one message on w's channel without blocking: 0, or -1 with errno
 * (EAGAIN: the channel is full). */
int  wr_app_send(wr_worker_t *w, uint16_t type, uint16_t flags, uint32_t stream,
                 const void *p, size_t n);

/* c was given slot c->wstream of c->worker: send its head and what of its
 * body the window allows, and wait for the answer. */
void wr_app_stream_start(wr_hconn_t *c);

/* c's worker died under it (c->worker already NULL): 502 if nothing was
 * sent yet, else the connection is cut (or a whole answer finished). */
void wr_app_stream_lost(wr_hconn_t *c);

/* What worker w sent breaks the protocol (src/lib/proto.h), for why; h:
 * the message, NULL when it had no whole header. Logged; the caller ends
 * the worker. */
void wr_app_protocol_error(const wr_worker_t *w, const wr_app_hdr_t *h, const char *why);

/* The channel's event callback (w->ev). */
void wr_app_worker_event(wr_ev_loop_t *loop, wr_ev_t *ev, uint32_t events);

/* Ask for EPOLLOUT on w's channel: something waits for room in it. */
void wr_app_want_out(wr_worker_t *w);

#endif
