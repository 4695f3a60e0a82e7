/*
 * The upstream client (proxy.h). One upstream connection per request, in
 * the epoll of the thread that serves the client connection. The state of
 * an exchange:
 *
 *   request   the head (c->app_head) then the body: bytes of c->in as the
 *             client sends them; the client is read only when what it sent
 *             before is with the upstream (bounded both ways);
 *   response  upstream bytes land in p->buf, the head is parsed there, body
 *             bytes are de-framed (Content-Length, chunked, close) and
 *             re-framed into c->out; the upstream is read again only once
 *             c->out went out to the client.
 *
 * Kept connections: an application's worker ("protocol": "http") keeps
 * its connections alive, and so does a "proxy" upstream with
 * settings.http.proxy_keepalive. One whose response ended cleanly, framed
 * by its length, goes back to the worker with the slot (release), or to
 * the router's pool (upool.h), and serves a later request. A kept
 * connection the server closed meanwhile is found before use, or, racing
 * that close, fails before any answer: a GET, HEAD or OPTIONS without a
 * body is then sent again on a new connection (retry_fresh).
 *
 * An upgrade (c->upgrade: WebSocket and the like) goes up with its
 * Upgrade field and "Connection: upgrade"; an upstream that answers 101
 * makes the exchange a tunnel: the client's bytes go up as an endless body,
 * the upstream's come back unframed until it closes (c->tunnel).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/socket.h>

#include "core/log.h"
#include "http/chars.h"
#include "router/proxy.h"
#include "router/spool.h"

#define LIT(s)                 s, sizeof(s) - 1
#define PROXY_SCHEME           "http://"
#define STATUS_SWITCHING       101
#define WR_PROXY_NAME_MAX      128   /* of an upstream's name in log lines */

typedef struct wr_proxy {
    wr_ev_t             ev;          /* the upstream socket; fd -1 when closed */
    wr_hconn_t         *c;
    wr_addr_t           addr;
    wr_proxy_release_t  release;     /* an application's worker, else NULL */
    char                what[WR_PROXY_NAME_MAX]; /* the upstream, for the log */
    uint32_t            up_events;   /* interest now (0: not in epoll) */
    int                 connected;
    int                 pooled;      /* a "proxy" upstream: connections kept
                                        alive, at most this many (upool.h) */
    int                 reused;      /* a kept connection */
    int                 replayable;  /* the whole request is c->app_head */
    int                 keep;        /* may carry a next request (so far) */
    int                 client_v10;  /* the client spoke HTTP/1.0 */
    int                 req_failed;  /* the upstream takes no more of the request */
    size_t              head_sent;   /* bytes of c->app_head sent */
    char               *buf;         /* upstream bytes not handled yet */
    size_t              len;
    int                 head_seen;
    long long           left;        /* body bytes to come (Content-Length) */
    int                 chunked;     /* upstream body is chunked */
    int                 until_close; /* upstream body ends with the connection */
    wr_http_chunked_t   chunk;
    wr_buf_t            logged_head; /* the client's response head, for the
                                        access log (only when there is one) */
    unsigned long long  body_bytes;  /* body bytes to the client */
} wr_proxy_t;

/* ---- the upstream request head ---- */

/* Hop-by-hop fields (RFC 9110 §7.6.1) and the framing the proxy sets; an
 * upgrade keeps its Upgrade field. */
static int dropped_request_field(const wr_http_field_t *f, int upgrade)
{
    if (upgrade && wr_hc_ieq(f->name, f->name_len, LIT("upgrade")))
        return 0;

    static const struct { const char *s; size_t n; } names[] = {
        { LIT("connection") }, { LIT("keep-alive") }, { LIT("proxy-connection") },
        { LIT("te") }, { LIT("trailer") }, { LIT("transfer-encoding") },
        { LIT("upgrade") }, { LIT("expect") }, { LIT("content-length") },
    };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (wr_hc_ieq(f->name, f->name_len, names[i].s, names[i].n))
            return 1;
    return 0;
}

/* The client's address as X-Forwarded-For writes it (no port). */
static void forwarded_for(wr_buf_t *out, const struct sockaddr *sa)
{
    char text[WR_ADDR_TEXT];

    wr_addr_text(sa, text, NULL);
    wr_buf_printf(out, "X-Forwarded-For: %s\r\n", text);
}

int wr_proxy_head(wr_buf_t *out, const wr_http_request_t *req, const char *host,
                  const struct sockaddr *client, const char *traceparent, int keepalive)
{
    wr_buf_reset(out);
    wr_buf_append(out, req->method, req->method_len);
    wr_buf_append(out, " ", 1);
    if (req->target_len > 0 && req->target[0] != '/' && req->path && req->path[0] == '/') {
        /* absolute-form: the upstream gets origin-form */
        wr_buf_append(out, req->path, req->path_len);
        if (req->query) {
            wr_buf_append(out, "?", 1);
            wr_buf_append(out, req->query, req->query_len);
        }
    } else {
        wr_buf_append(out, req->target, req->target_len);
    }
    wr_buf_puts(out, " HTTP/1.1\r\n");
    if (req->host == NULL)
        wr_buf_printf(out, "Host: %s\r\n", host);
    for (size_t i = 0; i < req->nfields; i++) {
        const wr_http_field_t *f = &req->fields[i];
        if (dropped_request_field(f, req->upgrade)
            || (traceparent && wr_hc_ieq(f->name, f->name_len, LIT("traceparent"))))
            continue;
        wr_buf_append(out, f->name, f->name_len);
        wr_buf_append(out, ": ", 2);
        wr_buf_append(out, f->value, f->value_len);
        wr_buf_append(out, "\r\n", 2);
    }
    if (client)
        forwarded_for(out, client);
    if (traceparent)
        wr_buf_printf(out, "traceparent: %s\r\n", traceparent);
    if (req->content_length >= 0)
        wr_buf_printf(out, "Content-Length: %lld\r\n", req->content_length);
    /* HTTP/1.1 keeps the connection without a word. */
    wr_buf_puts(out, req->upgrade ? "Connection: upgrade\r\n\r\n"
                     : keepalive ? "\r\n" : "Connection: close\r\n\r\n");
    return out->p ? 0 : -1;
}

int wr_proxy_head_length(wr_buf_t *head, long long length)
{
    if (head->p == NULL || head->n < 2)
        return -1;
    head->n -= 2;                       /* before the blank line */
    wr_buf_printf(head, "Content-Length: %lld\r\n\r\n", length);
    return head->p ? 0 : -1;
}

/* ---- the exchange ---- */

static void up_event(wr_ev_loop_t *loop, wr_ev_t *ev, uint32_t events);

static void up_want(wr_proxy_t *p, uint32_t events)
{
    wr_ev_loop_t *loop = &p->c->t->loop;

    if (events == p->up_events || p->ev.fd < 0)
        return;
    /* Out of epoll while nothing is wanted: a closed upstream would
     * otherwise report HUP on every wait while the client is slow. */
    if (events == 0)
        wr_ev_del(loop, &p->ev);
    else if (p->up_events == 0 ? wr_ev_add(loop, &p->ev, events) < 0
                               : wr_ev_mod(loop, &p->ev, events) < 0)
        return;
    p->up_events = events;
}

static void up_close(wr_proxy_t *p)
{
    if (p->ev.fd < 0)
        return;
    if (p->up_events)
        wr_ev_del(&p->c->t->loop, &p->ev);
    p->up_events = 0;
    close(p->ev.fd);
    p->ev.fd = -1;
}

/* Let go of c's exchange: the upstream closed, p freed once the batch is
 * done (an event of this upstream may still wait in it: skipped). */
static void forget(wr_hconn_t *c)
{
    wr_proxy_t *p = c->proxy;

    up_close(p);
    wr_ev_retire(&c->t->loop, &p->ev, NULL);
    free(p->buf);
    wr_buf_free(&p->logged_head);
    wr_ev_defer_free(&c->t->loop, p);
    c->proxy = NULL;
}

/* Can the upstream connection take another request? Only once both this
 * request and its whole response went through it (a client that left
 * halfway leaves it out of step). */
static int reusable(const wr_hconn_t *c, int how)
{
    const wr_proxy_t *p = c->proxy;

    return p->keep && how == WR_PROXY_DONE && (p->release || p->pooled) && p->ev.fd >= 0
           && c->resp_done && !p->req_failed && p->head_sent == c->app_head.n
           && c->body_left == 0 && wr_spool_unsent(c) == 0;
}

/* The exchange is over for the upstream side; c goes on. */
static void end(wr_hconn_t *c, int how)
{
    wr_proxy_t *p = c->proxy;
    wr_proxy_release_t release;
    wr_addr_t addr;
    int pooled, kept = -1;

    if (p == NULL)
        return;
    release = p->release;
    addr = p->addr;
    pooled = p->pooled;
    if (reusable(c, how)) {
        if (p->up_events)
            wr_ev_del(&c->t->loop, &p->ev);
        p->up_events = 0;
        kept = p->ev.fd;                /* the worker's or the pool's now */
        p->ev.fd = -1;
    }
    forget(c);
    if (release)
        release(c, how, kept);
    else if (kept >= 0)
        wr_upool_give(&c->t->router->upool, &addr, kept, pooled);
}

/* A kept connection that ended before any answer to a request that may be
 * sent again: the upstream closed it as the request went (its idle time
 * ran out), so the request was not taken. */
static int stale(const wr_proxy_t *p)
{
    return p->reused && p->replayable && p->len == 0 && !p->head_seen;
}

static void start(wr_hconn_t *c, int kept);
static void fail(wr_hconn_t *c, int status, int how);

/* Start c's exchange again on a new connection to the same upstream. */
static void retry_fresh(wr_hconn_t *c)
{
    wr_proxy_t *old = c->proxy, *p = calloc(1, sizeof(*p));

    wr_log(WR_LOG_INFO, "%s closed a kept connection as a request went; "
           "sending it on a new one", old->what);
    if (p == NULL) {
        fail(c, 503, WR_PROXY_DONE);
        return;
    }
    p->ev.fd = -1;
    p->addr = old->addr;
    p->release = old->release;
    p->pooled = old->pooled;
    p->client_v10 = old->client_v10;
    memcpy(p->what, old->what, sizeof(p->what));
    forget(c);
    c->proxy = p;
    start(c, -1);
}

/* Answer with an error status (nothing was sent yet), then go on. */
static void fail(wr_hconn_t *c, int status, int how)
{
    end(c, how);
    wr_conn_fail(c, status);
}

/* Broken after the head went out: the client can only learn it from the
 * connection ending. */
static void cut(wr_hconn_t *c, int how)
{
    end(c, how);
    wr_conn_cut(c);
}

static int is_app(const wr_hconn_t *c)
{
    return c->proxy && c->proxy->release;
}

/* Arm the clock for what the exchange waits for now. */
static void clock_for(wr_hconn_t *c, int seconds)
{
    if (c->out_blocked || c->tunnel)
        return;                         /* send_timeout, or the tunnel's */
    if (is_app(c))
        return;                         /* limits.timeout, armed at the start */
    wr_conn_arm(c, seconds);
}

/* Which events both sides need now. */
static void interest(wr_hconn_t *c)
{
    wr_proxy_t *p = c->proxy;
    uint32_t cev = EPOLLRDHUP, uev = 0;
    int body_waiting = !p->req_failed && ((c->body_left > 0 && c->consumed < c->in_len)
                                          || wr_spool_unsent(c) > 0);
    int out_pending = wr_conn_out_pending(c);

    if (!p->connected || p->head_sent < c->app_head.n || body_waiting)
        uev |= EPOLLOUT;
    if (p->connected && !out_pending && !c->resp_done)
        uev |= EPOLLIN;
    if (p->connected && !p->req_failed && p->head_sent == c->app_head.n
        && c->body_left > 0 && !body_waiting)
        cev |= EPOLLIN;
    if (out_pending)
        cev |= EPOLLOUT;
    up_want(p, uev);
    wr_conn_want(c, cev);
}

/* Send what the upstream can take: head, then body bytes of c->in.
 * Returns -1 when the upstream failed. */
static int pump_request(wr_hconn_t *c)
{
    wr_proxy_t *p = c->proxy;
    ssize_t n;

    while (p->head_sent < c->app_head.n) {
        n = send(p->ev.fd, c->app_head.p + p->head_sent, c->app_head.n - p->head_sent,
                 MSG_NOSIGNAL | (c->body_left > 0 || wr_spool_unsent(c) > 0 ? MSG_MORE : 0));
        if (n < 0)
            return errno == EAGAIN ? 0 : errno == EINTR ? pump_request(c) : -1;
        p->head_sent += (size_t) n;
    }
    if (wr_spool_unsent(c) > 0) {
        long long before = wr_spool_unsent(c);
        int rc = wr_spool_send(c, p->ev.fd);
        if (rc < 0)
            return -1;
        if (wr_spool_unsent(c) < before)
            clock_for(c, WR_PROXY_SEND_TIMEOUT);
    }
    while (c->body_left > 0 && c->consumed < c->in_len) {
        size_t want = c->in_len - c->consumed;
        if ((long long) want > c->body_left)
            want = (size_t) c->body_left;
        n = send(p->ev.fd, c->in + c->consumed, want, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN ? 0 : -1;
        }
        c->consumed += (size_t) n;
        c->body_left -= n;
        clock_for(c, WR_PROXY_SEND_TIMEOUT);
    }
    /* What went up need not stay: the buffer never outgrows one read. */
    if (c->consumed > c->head_len && c->body_left > 0) {
        memmove(c->in + c->head_len, c->in + c->consumed, c->in_len - c->consumed);
        c->in_len -= c->consumed - c->head_len;
        c->consumed = c->head_len;
    }
    return 0;
}

/* ---- the response ---- */

static int dropped_response_field(const wr_http_field_t *f, int tunnel)
{
    static const struct { const char *s; size_t n; } names[] = {
        { LIT("connection") }, { LIT("keep-alive") }, { LIT("proxy-connection") },
        { LIT("te") }, { LIT("trailer") }, { LIT("transfer-encoding") },
        { LIT("upgrade") }, { LIT("content-length") },
    };

    if (tunnel && wr_hc_ieq(f->name, f->name_len, LIT("upgrade")))
        return 0;                       /* the protocol switched to */
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (wr_hc_ieq(f->name, f->name_len, names[i].s, names[i].n))
            return 1;
    return 0;
}

static int no_body(const wr_hconn_t *c, int status)
{
    return c->head_only || status < 200 || status == 204 || status == 304;
}

/* The client's response head from the upstream's, into c->out. */
static int client_head(wr_hconn_t *c, const wr_http_response_t *r)
{
    wr_proxy_t *p = c->proxy;
    wr_buf_t *b = &c->out;
    int has_date = 0;

    if (b->p == NULL) {
        *b = c->t->out;
        memset(&c->t->out, 0, sizeof(c->t->out));
    }
    wr_buf_reset(b);
    c->status = r->status;
    c->resp_length = r->content_length;
    c->chunked_out = 0;
    if (!no_body(c, r->status) && c->resp_length < 0) {
        if (p->client_v10)
            c->close_after = 1;         /* the end of the connection frames it */
        else
            c->chunked_out = 1;
    }
    wr_buf_printf(b, "HTTP/1.1 %d %s\r\n", r->status, wr_http_reason(r->status));
    for (size_t i = 0; i < r->nfields; i++) {
        const wr_http_field_t *f = &r->fields[i];
        if (dropped_response_field(f, c->tunnel))
            continue;
        has_date |= wr_hc_ieq(f->name, f->name_len, LIT("date"));
        wr_respond_relay_field(b, f->name, f->name_len, f->value, f->value_len);
    }
    if (!has_date)
        wr_buf_printf(b, "Date: %s\r\n", wr_thread_date(c->t));
    wr_respond_relay_end(c, b, c->head_only || !no_body(c, r->status));
    /* c->out is sent and reused before the answer ends: the access log's
     * $response_header_* need a copy. */
    if (b->p && c->conf->alog)
        wr_buf_append(&p->logged_head, b->p, b->n);
    return b->p ? 0 : -1;
}

/* Body bytes for the client, framed. */
static void client_body(wr_hconn_t *c, const char *s, size_t n)
{
    if (n == 0 || c->head_only)
        return;
    c->proxy->body_bytes += n;
    if (c->chunked_out)
        wr_buf_printf(&c->out, "%zx\r\n", n);
    wr_buf_append(&c->out, s, n);
    if (c->chunked_out)
        wr_buf_append(&c->out, "\r\n", 2);
}

static void response_complete(wr_hconn_t *c)
{
    if (c->chunked_out)
        wr_buf_puts(&c->out, "0\r\n\r\n");
    c->resp_done = 1;
}

/* Parse the head in p->buf; -status to answer, 0 more needed, 1 done. */
static int take_head(wr_hconn_t *c)
{
    wr_proxy_t *p = c->proxy;
    wr_http_response_t *r = malloc(sizeof(*r));   /* large: not on the stack */
    long n;

    if (r == NULL)
        return -502;
    for (;;) {
        n = wr_http_parse_response(r, p->buf, p->len, WR_PROXY_HEAD_MAX);
        if (n <= 0)
            break;
        if (r->status >= 200 || r->status == STATUS_SWITCHING)
            break;
        /* An interim response (100 Continue...): the final one follows. */
        memmove(p->buf, p->buf + n, p->len - (size_t) n);
        p->len -= (size_t) n;
    }
    if (n == 0) {
        free(r);
        return p->len == WR_PROXY_BUF ? -502 : 0;
    }
    if (n < 0 || (r->status == STATUS_SWITCHING && !c->upgrade)) {
        wr_log(WR_LOG_ERR, "%s sent a %s response head", p->what,
               n == -2 ? "too large" : "malformed or unsupported");
        free(r);
        return -502;
    }
    /* The client's bytes now go up as a body without end, the upstream's
     * come back as they are until it closes (until_close below). */
    if (r->status == STATUS_SWITCHING)
        wr_conn_tunnel(c);
    if (client_head(c, r) < 0) {
        free(r);
        return -502;
    }
    p->head_seen = 1;
    /* Unframed bodies end with the connection; a tunnel is the connection. */
    p->keep = (p->release || p->pooled) && r->keep_alive && !c->tunnel
              && (r->chunked || r->content_length >= 0 || no_body(c, r->status));
    p->chunked = r->chunked && !c->tunnel;
    p->left = r->content_length;
    p->until_close = c->tunnel || (!r->chunked && r->content_length < 0);
    if (p->chunked)
        wr_http_chunked_init(&p->chunk, -1);
    if (no_body(c, r->status) && !c->tunnel) {
        /* No body follows, whatever the fields say (RFC 9112 §6.3). */
        p->chunked = p->until_close = 0;
        p->left = 0;
    }
    free(r);
    memmove(p->buf, p->buf + n, p->len - (size_t) n);
    p->len -= (size_t) n;
    return 1;
}

/* De-frame the body bytes in p->buf into c->out. -1: malformed. */
static int take_body(wr_hconn_t *c)
{
    wr_proxy_t *p = c->proxy;
    size_t used, out;
    int rc;

    if (p->chunked) {
        rc = wr_http_chunked_decode(&p->chunk, p->buf, p->len, &used, &out);
        if (rc < 0)
            return -1;
        client_body(c, p->buf, out);
        if (rc == 1)
            response_complete(c);
        if (rc == 1 && used < p->len)
            p->keep = 0;                /* bytes after the body: out of step */
    } else if (p->until_close) {
        client_body(c, p->buf, p->len);
    } else {
        out = (long long) p->len < p->left ? p->len : (size_t) p->left;
        if (out < p->len)
            p->keep = 0;                /* bytes after the body: out of step */
        client_body(c, p->buf, out);
        p->left -= (long long) out;
        if (p->left == 0)
            response_complete(c);
    }
    p->len = 0;                         /* anything after the body is dropped */
    return c->out.p || c->head_only ? 0 : -1;
}

/* Read the upstream once. Returns -1 when c was answered or closed. */
static int read_upstream(wr_hconn_t *c)
{
    wr_proxy_t *p = c->proxy;
    ssize_t n;
    int rc;

    do
        n = recv(p->ev.fd, p->buf + p->len, WR_PROXY_BUF - p->len, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0 && errno == EAGAIN)
        return 0;
    if (n <= 0 && stale(p)) {
        retry_fresh(c);
        return -1;
    }
    if (n < 0)
        wr_log(WR_LOG_ERR, "recv(%s) failed: %s", p->what, strerror(errno));
    if (n <= 0) {
        /* The end: normal for a close-delimited body, else it was cut. */
        if (p->head_seen && p->until_close) {
            response_complete(c);
            up_close(p);
            return 0;
        }
        if (!p->head_seen) {
            /* A kept connection its worker closed is no fault of the worker. */
            fail(c, 502, p->reused && p->len == 0 ? WR_PROXY_DONE : WR_PROXY_BROKEN);
            return -1;
        }
        cut(c, WR_PROXY_BROKEN);
        return -1;
    }
    p->len += (size_t) n;
    clock_for(c, WR_PROXY_READ_TIMEOUT);
    if (!p->head_seen) {
        rc = take_head(c);
        if (rc < 0) {
            fail(c, -rc, WR_PROXY_BROKEN);
            return -1;
        }
        if (rc == 0)
            return 0;
        if (p->left == 0 && !p->chunked && !p->until_close) {
            response_complete(c);
            if (p->len > 0)
                p->keep = 0;
        }
    }
    if (!c->resp_done && take_body(c) < 0) {
        cut(c, WR_PROXY_BROKEN);
        return -1;
    }
    return 0;
}

/* Send c->out to the client; finish when all is out. Returns -1 if c moved on. */
static int flush_client(wr_hconn_t *c)
{
    int rc = wr_conn_flush(c);

    if (rc < 0) {
        cut(c, WR_PROXY_DONE);          /* the client is gone; the worker is fine */
        return -1;
    }
    if (rc == 0) {
        /* A slow client: its send_timeout counts, and the upstream waits. */
        c->out_blocked = 1;
        wr_conn_arm(c, c->conf->settings.send_timeout);
        return 0;
    }
    if (c->out_blocked) {
        c->out_blocked = 0;
        if (c->tunnel)
            wr_conn_tunnel_clock(c);
        else if (is_app(c) && c->app_timeout > 0)
            wr_conn_arm(c, c->app_timeout);
        else if (!is_app(c))
            wr_conn_arm(c, WR_PROXY_READ_TIMEOUT);
        else
            wr_timer_cancel(&c->t->loop, &c->timer);
    }
    wr_buf_reset(&c->out);
    c->out_sent = 0;
    if (c->resp_done) {
        /* Answered before the whole body came: the rest of it cannot be
         * told from a next request. */
        if (c->body_left > 0 || c->proxy->req_failed)
            c->close_after = 1;
        wr_respond_log_app(c, c->proxy->body_bytes,
                           c->proxy->logged_head.p ? &c->proxy->logged_head : NULL);
        end(c, WR_PROXY_DONE);
        c->state = WR_HC_WRITE;
        wr_conn_done(c);
        return -1;
    }
    return 0;
}

/* Move the exchange as far as it goes. */
static void progress(wr_hconn_t *c)
{
    wr_proxy_t *p = c->proxy;

    if (p->connected && !p->req_failed && pump_request(c) < 0) {
        if (stale(p)) {
            retry_fresh(c);
            return;
        }
        /* It may have answered already (a 413) and closed: read that; the
         * rest of the request body ends the client connection. */
        wr_log(WR_LOG_INFO, "send(%s) failed: %s", p->what, strerror(errno));
        p->req_failed = 1;
        c->close_after = 1;
    }
    if (wr_conn_out_pending(c) && flush_client(c) < 0)
        return;
    while (p->connected && p->ev.fd >= 0 && !c->resp_done && c->out_sent >= c->out.n) {
        size_t before = c->out.n;
        if (read_upstream(c) < 0)
            return;
        if (c->out.n == before && !c->resp_done)
            break;                       /* nothing for the client: wait */
        if (flush_client(c) < 0)
            return;
    }
    if (c->resp_done && c->out_sent >= c->out.n) {
        flush_client(c);
        return;
    }
    interest(c);
}

static void up_event(wr_ev_loop_t *loop, wr_ev_t *ev, uint32_t events)
{
    wr_proxy_t *p = ev->data;
    wr_hconn_t *c = p->c;

    if (!p->connected) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(ev->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err != 0) {
            wr_log(WR_LOG_ERR, "connect(%s) failed: %s", p->what, strerror(err));
            fail(c, 502, WR_PROXY_BROKEN);
            return;
        }
        p->connected = 1;
        clock_for(c, WR_PROXY_READ_TIMEOUT);
    }
    progress(c);
}

/* Could the request go again, whole, on another connection? Its head is
 * all there is (no body) and its method is one of the safe ones. */
static int retry_safe(const wr_hconn_t *c)
{
    const char *sp = c->app_head.p ? memchr(c->app_head.p, ' ', c->app_head.n) : NULL;

    return sp != NULL && c->body_left == 0 && !c->chunked
           && wr_spool_unsent(c) == 0
           && wr_http_retry_safe(c->app_head.p, (size_t) (sp - c->app_head.p));
}

/* kept: a connection to the upstream kept from an earlier request, or -1. */
static void start(wr_hconn_t *c, int kept)
{
    wr_proxy_t *p = c->proxy;
    int fd = kept >= 0 ? kept
             : socket(p->addr.sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    p->c = c;
    p->ev.fd = fd;
    p->ev.cb = up_event;
    p->ev.data = p;
    p->reused = kept >= 0;
    p->replayable = retry_safe(c);
    c->state = WR_HC_PROXY;
    c->resp_length = -1;
    p->buf = malloc(WR_PROXY_BUF);
    if (fd < 0 || p->buf == NULL) {
        wr_log_sys(WR_LOG_ERR, fd < 0 ? "socket" : "malloc", p->what);
        fail(c, 502, WR_PROXY_BROKEN);
        return;
    }
    if (kept >= 0 || connect(fd, (struct sockaddr *) &p->addr.sa, p->addr.len) == 0) {
        p->connected = 1;
    } else if (errno != EINPROGRESS) {
        /* Refused, no such socket, or a unix backlog full (EAGAIN). */
        wr_log(WR_LOG_ERR, "connect(%s) failed: %s", p->what, strerror(errno));
        fail(c, 502, WR_PROXY_BROKEN);
        return;
    }
    if (is_app(c)) {
        if (c->app_timeout > 0)
            wr_conn_arm(c, c->app_timeout);
        else
            wr_timer_cancel(&c->t->loop, &c->timer);
    } else {
        wr_conn_arm(c, p->connected ? WR_PROXY_READ_TIMEOUT : WR_PROXY_TIMEOUT);
    }
    if (p->connected)
        progress(c);
    else
        interest(c);
}

int wr_proxy_prepare(wr_hconn_t *c, const char *url)
{
    wr_proxy_t *p;
    const char *why;

    if (strncmp(url, PROXY_SCHEME, sizeof(PROXY_SCHEME) - 1) != 0)
        return 502;
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return 503;
    if (wr_addr_parse(url + sizeof(PROXY_SCHEME) - 1, &p->addr, &why) < 0) {
        wr_log(WR_LOG_ERR, "proxy address \"%s\": %s", url, why);
        free(p);
        return 502;
    }
    p->ev.fd = -1;
    p->client_v10 = c->v10;
    p->pooled = c->conf->settings.proxy_keepalive;
    snprintf(p->what, sizeof(p->what), "upstream %s", url + sizeof(PROXY_SCHEME) - 1);
    c->proxy = p;
    return 0;
}

void wr_proxy_begin(wr_hconn_t *c)
{
    wr_proxy_t *p = c->proxy;

    start(c, p->pooled ? wr_upool_take(&c->t->router->upool, &p->addr) : -1);
}

void wr_proxy_begin_app(wr_hconn_t *c, const wr_addr_t *a, wr_proxy_release_t release,
                        int kept)
{
    wr_proxy_t *p = calloc(1, sizeof(*p));

    if (p == NULL) {
        release(c, WR_PROXY_DONE, kept);
        fail(c, 503, WR_PROXY_DONE);
        return;
    }
    p->ev.fd = -1;
    p->addr = *a;
    p->release = release;
    p->client_v10 = c->v10;
    snprintf(p->what, sizeof(p->what), "application \"%s\" worker",
             c->app ? c->app->name : "?");
    c->proxy = p;
    start(c, kept);
}

/* ---- the client side ---- */

void wr_proxy_on_client(wr_hconn_t *c, uint32_t events)
{
    if (c->proxy == NULL)
        return;
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        /* Its answer has nowhere to go. */
        cut(c, WR_PROXY_DONE);
        return;
    }
    if (events & EPOLLIN) {
        int r = wr_conn_read(c);
        if (r < 0) {
            cut(c, WR_PROXY_DONE);
            return;
        }
        if (r > 0 && c->tunnel && !c->out_blocked)
            wr_conn_tunnel_clock(c);
    }
    progress(c);
}

void wr_proxy_timeout(wr_hconn_t *c)
{
    int app = is_app(c);

    if (c->out_blocked || c->proxy == NULL || c->tunnel) {
        /* send_timeout (the client is too slow), or a tunnel's read_timeout */
        cut(c, WR_PROXY_DONE);
        return;
    }
    if (app)
        wr_log(WR_LOG_WARN, "application \"%s\" did not answer within %d s; killing "
               "its worker", c->app ? c->app->name : "?", c->app_timeout);
    else
        wr_log(WR_LOG_ERR, "%s did not answer in time", c->proxy->what);
    if (c->head_out)
        cut(c, app ? WR_PROXY_HUNG : WR_PROXY_BROKEN);
    else
        fail(c, app ? 503 : 504, app ? WR_PROXY_HUNG : WR_PROXY_BROKEN);
}

void wr_proxy_conn_closing(wr_hconn_t *c)
{
    end(c, WR_PROXY_DONE);
}
