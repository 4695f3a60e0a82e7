/* An HTTP/1.1 connection of the router, shared by conn.c and respond.c. */
#ifndef WR_ROUTER_CONN_H
#define WR_ROUTER_CONN_H

#include "router/internal.h"

typedef enum {
    WR_HC_IDLE,         /* between requests (or before the first) */
    WR_HC_HEAD,         /* reading a request head */
    WR_HC_BODY,         /* reading (and discarding) a request body */
    WR_HC_WRITE,        /* sending a response */
    WR_HC_LINGER        /* response sent, close pending: drain what arrives */
} wr_hc_state_t;

typedef struct wr_hconn {
    wr_ev_t                 ev;
    wr_thread_t            *t;
    wr_listener_t          *l;
    struct wr_hconn        *prev, *next;
    wr_timer_t              timer;
    wr_hc_state_t           state;
    uint32_t                events;      /* epoll interest now */
    int                     active;      /* counted as active (else idle) */
    struct sockaddr_storage peer, local;
    struct sockaddr_storage client;      /* from "forwarded", when trusted */
    char                   *in;          /* request bytes: the thread's read buffer
                                            while an event is handled, an own copy
                                            only of what must wait for more */
    size_t                  in_len, in_cap;
    int                     in_borrowed; /* in is t->rbuf */
    size_t                  head_len;    /* of the request being served */
    long long               body_left;   /* Content-Length body still to discard */
    int                     chunked;     /* discarding a chunked body */
    wr_http_chunked_t       chunk;
    size_t                  consumed;    /* bytes of in that belong to this request */
    wr_rconf_t             *conf;        /* held from head to end of response */
    /* response */
    wr_buf_t                out;         /* head (+ small body); the thread's
                                            buffer, kept only if it must wait */
    size_t                  out_sent;
    int                     file;        /* body from a file, or -1 */
    off_t                   file_off, file_end;
    int                     keep_alive;
    int                     close_after; /* no keep-alive after this response */
    int                     status;
    int                     deferred;    /* a response waits for the body to be read */
    char                    reqid[33];
    struct timespec         start;
} wr_hconn_t;

/* respond.c: decide and build the response of the request in c->in.
 * Leaves c ready to write (c->out, c->file). */
void wr_respond_request(wr_hconn_t *c, wr_http_request_t *req);
/* An error response for a request that could not be parsed or served. */
void wr_respond_error(wr_hconn_t *c, int status);

#endif
