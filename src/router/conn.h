/* An HTTP/1.1 connection of the router, shared by conn.c and respond.c. */
#ifndef WR_ROUTER_CONN_H
#define WR_ROUTER_CONN_H

#include "router/internal.h"

/* The interim answer to "Expect: 100-continue" when the body is wanted. */
#define WR_HTTP_CONTINUE  "HTTP/1.1 100 Continue\r\n\r\n"

typedef enum {
    WR_HC_IDLE,         /* between requests (or before the first) */
    WR_HC_HEAD,         /* reading a request head */
    WR_HC_BODY,         /* reading (and discarding) a request body */
    WR_HC_WRITE,        /* sending a response */
    WR_HC_APP_WAIT,     /* queued for a worker of an application */
    WR_HC_APP,          /* exchanging with a worker (app.c) */
    WR_HC_LINGER,       /* response sent, close pending: drain what arrives */
    WR_HC_PROXY,        /* exchanging with an upstream (proxy.c) */
    WR_HC_SPOOL         /* reading a body whole before it goes on (spool.c) */
} wr_hc_state_t;

typedef struct wr_hconn {
    wr_ev_t                 ev;
    wr_thread_t            *t;
    wr_listener_t          *l;
    struct ssl_st          *ssl;         /* a TLS listener's connection, or NULL */
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
    unsigned char           continue_left; /* bytes of WR_HTTP_CONTINUE not sent yet */
    int                     file;        /* body from a file, or -1 */
    off_t                   file_off, file_end;
    int                     keep_alive;
    int                     close_after; /* no keep-alive after this response */
    int                     status;
    int                     deferred;    /* a response waits for the body to be read */
    char                    reqid[33];
    wr_tel_span_t           span;        /* settings.telemetry's, of this request */
    struct timespec         start;
    uint64_t                took_us;     /* start to the answer's end (respond.c) */
    /* an application request (app.c) */
    uint64_t                id;          /* unique in its thread */
    uint32_t                stream;      /* of the exchange with the worker */
    wr_appgen_t            *app;         /* the generation it goes to */
    wr_worker_t            *worker;      /* the worker serving it */
    wr_wstream_t           *wstream;     /* its slot there (NULL: HTTP worker) */
    struct wr_hconn        *app_next;    /* the thread's waiting list */
    struct wr_h2_stream    *vt;          /* h2: its stream, NULL once that is gone */
    wr_buf_t                app_head;    /* encoded REQ_HEAD */
    long long               req_window;  /* request body bytes the worker takes */
    size_t                  dec_len;     /* decoded chunked body bytes at in + consumed */
    size_t                  resp_unacked;/* response body bytes not yet granted back */
    long long               resp_length; /* the app's Content-Length still to come, or -1 */
    unsigned long long      resp_bytes;  /* body bytes the app sent (access log) */
    int                     app_timeout; /* limits.timeout, seconds; 0: none */
    uint64_t                app_deadline; /* ms (wr_ev_now): when it passes; 0: not begun */
    long                    app_max_requests; /* limits.requests; 0: none */
    int                     out_blocked; /* the timer is send_timeout (client slow) */
    unsigned                req_done:1;  /* REQ_END (or ABORT) sent */
    unsigned                head_out:1;  /* the response head went to c->out */
    unsigned                resp_done:1; /* RESP_END received */
    unsigned                head_only:1; /* HEAD: no body to the client */
    unsigned                chunked_out:1; /* the response body is chunked */
    unsigned                worker_out:1;  /* waiting for the worker's channel to drain */
    unsigned                head_in_out:1; /* c->out still starts with the response head */
    unsigned                head_saved:1;  /* ... or app_head holds a copy (access log) */
    unsigned                chunk_end:1;   /* the chunked body's last chunk was decoded */
    unsigned                v10:1;       /* the request is HTTP/1.0 */
    unsigned                body_whole:1;  /* read the body whole first (spool.c) */
    unsigned                resp_started:1; /* the worker sent something for it */
    unsigned                app_idem:1;    /* may go to another worker (app.c) ... */
    unsigned                app_retried:1; /* ... and did once */
    unsigned                upgrade:1;     /* the client asked to switch protocols */
    unsigned                upgrade_wait:1;/* ... and the worker's answer decides */
    unsigned                tunnel:1;      /* ... which was 101: bytes both ways */
    unsigned                hopped:1;      /* moved to another thread for this request */
    unsigned                app_front:1;   /* told a worker has room: first in line */
    unsigned                handshake:1;   /* TLS: the handshake is not over */
    unsigned                req_counted:1; /* in count.requests already (handed on) */
    unsigned                used:1;        /* a request was read on it */
    unsigned                h2:1;          /* the HTTP/1.1 side of an HTTP/2 stream
                                              (h2.c): not a connection of its own,
                                              no fd, its bytes go through vt */
    unsigned                h2_tls:1;      /* ... whose connection is TLS */
    struct wr_thread       *hop_to;      /* ... is moving there (app.c) */
    struct wr_proxy        *proxy;       /* an upstream exchange (proxy.c), or NULL */
    struct wr_spool        *spool;       /* the body read whole (spool.c), or NULL */
    const struct wr_action *action;      /* an app's or upstream's, with
                                            response_headers to apply, or NULL */
    wr_rconf_t             *action_conf; /* ... its configuration, held (c->conf
                                            may move to a newer one: requeue) */
    char                   *rewritten;   /* an app's or upstream's request
                                            after a rewrite: $uri NUL query,
                                            or NULL (respond.c) */
    size_t                  rw_uri_len, rw_query_len;
} wr_hconn_t;

/* conn.c, for app.c */
int  wr_conn_read(wr_hconn_t *c);         /* 1/2 got bytes, 0 none now, -1 closed */
/* recv()/send() on the client's connection, through TLS when it has it. */
ssize_t wr_conn_recv(wr_hconn_t *c, void *buf, size_t len);
ssize_t wr_conn_send(wr_hconn_t *c, const void *buf, size_t len, int more);
/* "100 Continue" to the client: now if the socket takes it, else before
 * anything else it is sent (a TLS write left half done must be retried
 * with the same bytes). */
void wr_conn_continue(wr_hconn_t *c);
/* Bytes wait to go to the client (a "100 Continue", c->out). */
static inline int wr_conn_out_pending(const wr_hconn_t *c)
{
    return c->continue_left > 0 || c->out_sent < c->out.n;
}
int  wr_conn_flush(wr_hconn_t *c);        /* 1 sent, 0 would block, -1 failed */
void wr_conn_done(wr_hconn_t *c);         /* the response is out: next or close */
void wr_conn_abort(wr_hconn_t *c);        /* close now */
void wr_conn_cut(wr_hconn_t *c);          /* what is buffered, then close */
void wr_conn_want(wr_hconn_t *c, uint32_t events);
/* Answer status (nothing of a response was sent yet) and close after it:
 * what app.c and proxy.c do when their exchange fails early. */
void wr_conn_fail(wr_hconn_t *c, int status);
void wr_conn_arm(wr_hconn_t *c, int seconds);
/* c becomes a tunnel (a 101 to its upgrade, from a worker or an upstream):
 * the client's bytes are a request body without end, the answer's body
 * goes out unframed, the connection closes with it, and the clock is the
 * tunnel's (limits.timeout was for the answer, which came). */
void wr_conn_tunnel(wr_hconn_t *c);
/* settings.http.websocket.read_timeout from now: re-armed whenever the
 * client sends something (a client that answers pings stays). */
void wr_conn_tunnel_clock(wr_hconn_t *c);
/* Move c (waiting for a worker, settled) to thread hop_to: out of this
 * thread's epoll, lists and timers now; adopted there (wr_conn_adopt) when
 * that thread takes its inbox. */
void wr_conn_hop(wr_hconn_t *c);
void wr_conn_adopt(struct wr_thread *t, wr_hconn_t *c);

/* h2.c: a stream's own connection, with the addresses of the HTTP/2
 * connection it belongs to; its bytes come from and go to vt. NULL when
 * out of memory. */
wr_hconn_t *wr_conn_stream(struct wr_thread *t, wr_listener_t *l, struct wr_h2_stream *vt,
                           const struct sockaddr_storage *peer,
                           const struct sockaddr_storage *local, int tls);
/* h2.c: c's socket (and TLS) now belong to an HTTP/2 session: c leaves
 * the thread's lists and epoll and is freed; its fd stays open, and its
 * place in t->conns goes to the session. */
void wr_conn_handed_over(wr_hconn_t *c);

/* app.c */
void wr_app_begin(wr_hconn_t *c);         /* c->app and c->app_head are set */
void wr_app_on_client(wr_hconn_t *c, uint32_t events);
void wr_app_conn_closing(wr_hconn_t *c);
void wr_app_timeout(wr_hconn_t *c);       /* limits.timeout passed */

/* respond.c: decide and build the response of the request in c->in.
 * Leaves c ready to write (c->out, c->file). */
void wr_respond_request(wr_hconn_t *c, wr_http_request_t *req);
/* A response head relayed from an application or an upstream: one of its
 * fields, then the router's own framing (Transfer-Encoding or, when
 * with_length, Content-Length), Connection and the blank line. */
void wr_respond_relay_field(wr_buf_t *b, const char *name, size_t nlen, const char *value,
                            size_t vlen);
void wr_respond_relay_end(wr_hconn_t *c, wr_buf_t *b, int with_length);
/* An error response for a request that could not be parsed or served. */
void wr_respond_error(wr_hconn_t *c, int status);
/* A response built while its request's body was still to be read past
 * (deferred): its access log line, once the body is read ... */
void wr_respond_log_deferred(wr_hconn_t *c);
/* ... or, the body being broken, the error that replaces it (and its line). */
void wr_respond_body_error(wr_hconn_t *c, int status);
/* The access log line of a request an application answered, once its
 * response is complete; head: the response head as sent (for
 * $response_header_*), or NULL. */
void wr_respond_log_app(wr_hconn_t *c, unsigned long long body_bytes, const wr_buf_t *head);

#endif
