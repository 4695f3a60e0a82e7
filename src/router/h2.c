/*
 * HTTP/2 sessions of the router (see h2.h for the shape).
 *
 * nghttp2 does the framing, HPACK, stream states, SETTINGS and flow control;
 * this file moves bytes between the client's socket and nghttp2, and
 * between nghttp2 and each stream's connection, which reads and writes
 * through wr_h2_vt_* instead of a socket and is woken by posted events. A
 * stream's request is written as HTTP/1.1 with the version "HTTP/2.0"
 * (which only a stream's connection accepts), its body as is when the
 * client gave a content-length, else chunked; the response is parsed as it
 * is sent (the proxy's parser), relayed without its connection-specific
 * fields, the body unframed.
 *
 * Nothing here calls into a stream's connection, nor that into nghttp2
 * from inside a callback: each side posts the other's event.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/socket.h>

#include <nghttp2/nghttp2.h>

#include "core/log.h"
#include "http/http.h"
#include "router/h2.h"
#include "tls/tls.h"

#define MS(sec)  ((uint64_t) (sec) * 1000)

typedef enum {
    BODY_NONE,          /* HEAD, 204, 304, or Content-Length: 0 */
    BODY_LENGTH,        /* Content-Length */
    BODY_CHUNKED,       /* Transfer-Encoding: chunked */
    BODY_CLOSE          /* until the stream's connection closes */
} body_framing_t;

typedef struct wr_h2_stream {
    struct wr_h2       *s;
    struct wr_h2_stream *prev, *next;
    int32_t             id;
    wr_hconn_t         *c;           /* its connection (conn.c), NULL once closed */
    /* the request, while its HEADERS come */
    wr_buf_t            head;        /* field lines */
    wr_buf_t            cookie;      /* cookie crumbs joined with "; " */
    char               *method, *path, *authority;
    unsigned            has_host:1, has_length:1, head_only:1;
    unsigned            in_head:1;   /* its HEADERS are not all in */
    unsigned            started:1;   /* handed to its connection */
    unsigned            chunked:1;   /* the body goes as chunks */
    unsigned            req_end:1;   /* the client's END_STREAM came */
    unsigned            req_dead:1;  /* its connection takes no more */
    /* request bytes for its connection to read */
    wr_buf_t            req;
    size_t              req_off;
    size_t              unconsumed;  /* DATA bytes not yet given back to the window */
    /* the response */
    wr_buf_t            raw;         /* head bytes, until the head is complete */
    unsigned            head_done:1;
    unsigned            body_end:1;  /* the whole body is in body */
    unsigned            deferred:1;  /* nghttp2 waits for body bytes */
    unsigned            resp_dead:1; /* reset: its connection may send no more */
    body_framing_t      framing;
    long long           left;        /* BODY_LENGTH: bytes still to come */
    wr_http_chunked_t   chunk;
    wr_buf_t            body;        /* unframed body bytes for DATA frames */
    size_t              body_off;
} h2_stream_t;

typedef struct wr_h2 {
    wr_ev_t             ev;          /* the client's socket */
    wr_thread_t        *t;
    wr_listener_t      *l;
    struct ssl_st      *ssl;
    struct sockaddr_storage peer, local;
    nghttp2_session    *ng;
    wr_timer_t          timer;
    uint32_t            events;
    struct wr_h2       *prev, *next; /* the thread's sessions */
    h2_stream_t        *streams;
    int                 nstreams;
    int                 nheads;      /* streams whose HEADERS are not all in (0 or
                                        1: CONTINUATION frames come in a row) */
    uint64_t            head_since;  /* ... since when (header_read_timeout) */
    int                 active;      /* counted active (has streams), else idle */
    int                 goaway;      /* draining: 1 the shutdown notice went,
                                        2 the last GOAWAY too */
    uint64_t            goaway_at;   /* ... when the last one goes */
    int                 lingering;   /* over: dropping what still comes */
    int                 closed;
    wr_buf_t            out;         /* framed bytes for the client */
    size_t              out_sent;
} wr_h2_t;

static void session_event(wr_ev_loop_t *loop, wr_ev_t *ev, uint32_t events);
static int session_flush(wr_h2_t *s);
static void session_settle(wr_h2_t *s);

/* ---- the thread's list, counters ---- */

static void set_active(wr_h2_t *s, int active)
{
    if (s->active == active)
        return;
    s->active = active;
    atomic_fetch_add(&s->t->count.active, active ? 1 : -1);
    atomic_fetch_add(&s->t->count.idle, active ? -1 : 1);
}

static void list_add(wr_h2_t *s)
{
    wr_thread_t *t = s->t;

    s->next = t->h2_list;
    if (t->h2_list)
        t->h2_list->prev = s;
    t->h2_list = s;
    atomic_fetch_add(&t->count.idle, 1);
}

static void list_remove(wr_h2_t *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        s->t->h2_list = s->next;
    if (s->next)
        s->next->prev = s->prev;
}

/* Frames wait to go out: the session's event will send them (a stream's
 * connection is never inside nghttp2 when it gets here). */
static void session_kick(wr_h2_t *s)
{
    wr_ev_post(&s->t->loop, &s->ev, EPOLLOUT);
}

/* ---- streams: what their connection sees ---- */

static size_t body_pending(const h2_stream_t *st)
{
    return st->body.n - st->body_off;
}

/* The events c would have from epoll now, of those it wants. */
static uint32_t vt_ready(const wr_hconn_t *c, uint32_t want)
{
    const h2_stream_t *st = c->vt;
    uint32_t ready = 0;

    if (st == NULL)
        return EPOLLIN | EPOLLRDHUP | EPOLLHUP;   /* gone: a hang-up, always told */
    if (st->req.n > st->req_off)
        ready |= EPOLLIN;
    if (!st->head_done || body_pending(st) < WR_H2_STREAM_BUF)
        ready |= EPOLLOUT;
    return ready & want;
}

/* State changed on the stream's side: wake its connection if that matters. */
static void stream_kick(h2_stream_t *st)
{
    if (st->c != NULL)
        wr_ev_post(&st->s->t->loop, &st->c->ev, vt_ready(st->c, st->c->events));
}

void wr_h2_vt_want(wr_hconn_t *c, uint32_t events)
{
    wr_ev_post(&c->t->loop, &c->ev, vt_ready(c, events | EPOLLHUP));
}

/* The connection read all there is of the request: its DATA goes back to
 * the client's window. */
static void req_drained(h2_stream_t *st)
{
    wr_buf_reset(&st->req);
    st->req_off = 0;
    if (st->unconsumed > 0) {
        nghttp2_session_consume(st->s->ng, st->id, st->unconsumed);
        st->unconsumed = 0;
        session_kick(st->s);
    }
}

ssize_t wr_h2_vt_recv(wr_hconn_t *c, void *buf, size_t len)
{
    h2_stream_t *st = c->vt;
    size_t avail, n;

    if (st == NULL)
        return 0;
    avail = st->req.n - st->req_off;
    if (avail == 0) {
        errno = EAGAIN;
        return -1;
    }
    n = avail < len ? avail : len;
    memcpy(buf, st->req.p + st->req_off, n);
    st->req_off += n;
    if (st->req_off == st->req.n)
        req_drained(st);
    else
        stream_kick(st);                   /* more: level-triggered, as epoll */
    return (ssize_t) n;
}

static void stream_reset(h2_stream_t *st, uint32_t code)
{
    nghttp2_submit_rst_stream(st->s->ng, NGHTTP2_FLAG_NONE, st->id, code);
    session_kick(st->s);
}

/* Its connection is gone, or can take no more of the body: the rest is
 * dropped as it comes, and what waits is given back to the window. */
static void req_stop(h2_stream_t *st)
{
    st->req_dead = 1;
    st->req_off = st->req.n;
    req_drained(st);
}

static void stream_free(h2_stream_t *st)
{
    wr_h2_t *s = st->s;

    if (st->prev)
        st->prev->next = st->next;
    else
        s->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    s->nstreams--;
    if (st->in_head)
        s->nheads--;
    /* Its connection sees the client gone, as on HTTP/1.1: one still busy
     * with the request ends it, an idle one closes. */
    if (st->c != NULL) {
        st->c->vt = NULL;
        wr_ev_post(&s->t->loop, &st->c->ev, EPOLLIN | EPOLLRDHUP | EPOLLHUP);
        st->c = NULL;
    }
    /* Body bytes counted against the connection's window but never passed
     * on: given back, or the window shrinks for good. */
    if (st->unconsumed > 0 && !s->closed)
        nghttp2_session_consume_connection(s->ng, st->unconsumed);
    free(st->method);
    free(st->path);
    free(st->authority);
    wr_buf_free(&st->head);
    wr_buf_free(&st->cookie);
    wr_buf_free(&st->req);
    wr_buf_free(&st->raw);
    wr_buf_free(&st->body);
    wr_ev_defer_free(&s->t->loop, st);
}

static int put_field(wr_buf_t *b, const char *name, size_t nlen, const char *value,
                     size_t vlen)
{
    if (wr_buf_append(b, name, nlen) < 0 || wr_buf_append(b, ": ", 2) < 0
        || wr_buf_append(b, value, vlen) < 0 || wr_buf_append(b, "\r\n", 2) < 0)
        return -1;
    return 0;
}

/* The HEADERS are in: write the request, and give it its connection. */
static int stream_start(h2_stream_t *st, int end_stream)
{
    wr_h2_t *s = st->s;
    wr_buf_t *b = &st->req;
    const char *target = st->path ? st->path : st->authority;

    if (st->method == NULL || target == NULL)
        return -1;                         /* nghttp2 lets none such through */
    st->head_only = strcmp(st->method, "HEAD") == 0;
    st->chunked = !end_stream && !st->has_length;
    if (wr_buf_printf(b, "%s %s HTTP/2.0\r\n", st->method, target) < 0
        || (!st->has_host && st->authority
            && put_field(b, "Host", 4, st->authority, strlen(st->authority)) < 0)
        || wr_buf_append(b, st->head.p, st->head.n) < 0
        || (st->cookie.n > 0 && put_field(b, "Cookie", 6, st->cookie.p, st->cookie.n) < 0)
        || (st->chunked && wr_buf_puts(b, "Transfer-Encoding: chunked\r\n") < 0)
        || wr_buf_puts(b, "\r\n") < 0)
        return -1;
    wr_buf_free(&st->head);
    wr_buf_free(&st->cookie);
    st->req_end = end_stream != 0;
    st->c = wr_conn_stream(s->t, s->l, st, &s->peer, &s->local, s->ssl != NULL);
    if (st->c == NULL)
        return -1;
    st->started = 1;
    stream_kick(st);
    return 0;
}

static void stream_req_end(h2_stream_t *st)
{
    st->req_end = 1;
    if (st->chunked && !st->req_dead && wr_buf_puts(&st->req, "0\r\n\r\n") < 0)
        req_stop(st);
    stream_kick(st);
}

/* ---- the response, as its connection sends it ---- */

static int is_hop_field(const char *name, size_t len)
{
    static const char *const hop[] = {
        "connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection",
    };

    for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
        if (strlen(hop[i]) == len && strncasecmp(hop[i], name, len) == 0)
            return 1;
    return 0;
}

/* How much of the body the next DATA frame carries: the bytes themselves
 * go straight from the stream to the client's buffer (body_send). */
static ssize_t body_read(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *src, void *user)
{
    h2_stream_t *st = src->ptr;
    size_t avail = body_pending(st);
    size_t n = avail < length ? avail : length;

    (void) ng;
    (void) id;
    (void) buf;
    (void) user;
    if (avail == 0 && !st->body_end) {
        st->deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (st->body_end && n == avail)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t) n;
}

/* A DATA frame of the stream (body_read said how long) into the client's
 * buffer: its header, then the body bytes (no padding is ever chosen). */
static int body_send(nghttp2_session *ng, nghttp2_frame *frame, const uint8_t *framehd,
                     size_t length, nghttp2_data_source *src, void *user)
{
    h2_stream_t *st = src->ptr;
    wr_h2_t *s = user;

    (void) ng;
    if (frame->data.padlen > 0 || length > body_pending(st))
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    if (wr_buf_append(&s->out, framehd, 9) < 0
        || wr_buf_append(&s->out, st->body.p + st->body_off, length) < 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    st->body_off += length;
    if (st->body_off == st->body.n) {
        wr_buf_reset(&st->body);
        st->body_off = 0;
    } else if (st->body_off >= WR_H2_STREAM_BUF) {
        memmove(st->body.p, st->body.p + st->body_off, st->body.n - st->body_off);
        st->body.n -= st->body_off;
        st->body_off = 0;
    }
    stream_kick(st);                       /* room again: it may send on */
    return 0;
}

/* The response head as HEADERS; 0, or -1 when it cannot be relayed. */
static int submit_head(h2_stream_t *st, const wr_http_response_t *r)
{
    nghttp2_nv nv[WR_HTTP_MAX_FIELDS + 1];
    nghttp2_data_provider dp = { .source.ptr = st, .read_callback = body_read };
    char status[8], names[WR_HTTP_MAX_FIELDS][64], *big[WR_HTTP_MAX_FIELDS];
    size_t n = 0, nbig = 0;
    int rc;

    snprintf(status, sizeof(status), "%03d", r->status % 1000);
    nv[n++] = (nghttp2_nv) { (uint8_t *) ":status", (uint8_t *) status, 7, 3,
                             NGHTTP2_NV_FLAG_NONE };
    for (size_t i = 0; i < r->nfields; i++) {
        const wr_http_field_t *f = &r->fields[i];
        char *name;

        if (is_hop_field(f->name, f->name_len))
            continue;
        /* HTTP/2 field names are lowercase (RFC 9113 §8.2.1). */
        name = f->name_len < sizeof(names[0]) ? names[i] : (big[nbig++] = malloc(f->name_len));
        if (name == NULL)
            break;
        for (size_t k = 0; k < f->name_len; k++)
            name[k] = (char) (f->name[k] >= 'A' && f->name[k] <= 'Z' ? f->name[k] + 32
                                                                    : f->name[k]);
        nv[n++] = (nghttp2_nv) { (uint8_t *) name, (uint8_t *) f->value, f->name_len,
                                 f->value_len, NGHTTP2_NV_FLAG_NONE };
    }
    if (st->head_only || r->status == 204 || r->status == 304)
        st->framing = BODY_NONE;
    else if (r->chunked)
        st->framing = BODY_CHUNKED;
    else if (r->content_length >= 0)
        st->framing = r->content_length > 0 ? BODY_LENGTH : BODY_NONE;
    else
        st->framing = BODY_CLOSE;
    st->left = r->content_length;
    if (st->framing == BODY_CHUNKED)
        wr_http_chunked_init(&st->chunk, -1);
    st->body_end = st->framing == BODY_NONE;
    rc = nghttp2_submit_response(st->s->ng, st->id, nv, n,
                                 st->framing == BODY_NONE ? NULL : &dp);
    for (size_t i = 0; i < nbig; i++)
        free(big[i]);
    return rc == 0 ? 0 : -1;
}

/* Body bytes as the connection frames them, into body unframed: 0, or -1
 * for a body that breaks its own framing. */
static int body_bytes(h2_stream_t *st, const char *buf, size_t len)
{
    size_t used, out = len;
    char *at;
    int rc;

    if (st->body_end || len == 0 || st->framing == BODY_NONE)
        return 0;
    if (st->framing == BODY_LENGTH && (long long) len > st->left)
        len = out = (size_t) st->left;
    if (wr_buf_reserve(&st->body, len) < 0)
        return -1;
    at = st->body.p + st->body.n;
    memcpy(at, buf, len);
    switch (st->framing) {
    case BODY_LENGTH:
        st->left -= (long long) len;
        st->body_end = st->left == 0;
        break;
    case BODY_CHUNKED:
        /* Decoded where it landed: the payload moves to the front of it. */
        rc = wr_http_chunked_decode(&st->chunk, at, len, &used, &out);
        if (rc < 0)
            return -1;
        st->body_end = rc == 1;
        break;
    default:
        break;
    }
    st->body.n += out;
    if (st->deferred) {
        st->deferred = 0;
        nghttp2_session_resume_data(st->s->ng, st->id);
    }
    return 0;
}

/* Response bytes: 0, or -1 when they cannot be relayed. */
static int response_bytes(h2_stream_t *st, const char *buf, size_t len)
{
    wr_thread_t *t = st->s->t;
    size_t max = t->conf->limits.header_buffer_size * t->conf->limits.header_buffers;
    wr_http_response_t r;
    long n;

    if (st->head_done)
        return body_bytes(st, buf, len);
    if (wr_buf_append(&st->raw, buf, len) < 0)
        return -1;
    for (;;) {
        n = wr_http_parse_response(&r, st->raw.p, st->raw.n, max);
        if (n == 0)
            return 0;
        if (n < 0)
            return -1;
        if (r.status >= 200)
            break;
        /* An interim answer: "100 Continue" goes on (a client may wait for
         * it before its body), the others are dropped. */
        if (r.status == 100) {
            nghttp2_nv nv = { (uint8_t *) ":status", (uint8_t *) "100", 7, 3,
                              NGHTTP2_NV_FLAG_NONE };
            nghttp2_submit_headers(st->s->ng, NGHTTP2_FLAG_NONE, st->id, NULL, &nv, 1, NULL);
        }
        memmove(st->raw.p, st->raw.p + n, st->raw.n - (size_t) n);
        st->raw.n -= (size_t) n;
    }
    st->head_done = 1;
    if (submit_head(st, &r) < 0)
        return -1;
    n = body_bytes(st, st->raw.p + n, st->raw.n - (size_t) n);
    wr_buf_free(&st->raw);
    return (int) n;
}

ssize_t wr_h2_vt_send(wr_hconn_t *c, const void *buf, size_t len)
{
    h2_stream_t *st = c->vt;
    size_t n = len;

    if (st == NULL || st->resp_dead) {
        errno = EPIPE;
        return -1;
    }
    if (st->head_done) {
        size_t pending = body_pending(st);
        if (pending >= WR_H2_STREAM_BUF) {
            errno = EAGAIN;                /* the client has not taken it yet */
            return -1;
        }
        if (n > WR_H2_STREAM_BUF - pending)
            n = WR_H2_STREAM_BUF - pending;
    }
    if (response_bytes(st, buf, n) < 0) {
        st->resp_dead = 1;
        stream_reset(st, NGHTTP2_INTERNAL_ERROR);
        errno = EPIPE;
        return -1;
    }
    session_kick(st->s);
    return (ssize_t) n;
}

/* The response ends where its connection stops sending. */
static void response_eof(h2_stream_t *st)
{
    if (st->head_done && st->framing == BODY_CLOSE && !st->body_end) {
        st->body_end = 1;
        if (st->deferred) {
            st->deferred = 0;
            nghttp2_session_resume_data(st->s->ng, st->id);
        }
    } else if (!st->body_end && !st->resp_dead) {
        st->resp_dead = 1;
        stream_reset(st, NGHTTP2_INTERNAL_ERROR);   /* no answer, or cut short */
    }
    session_kick(st->s);
}

void wr_h2_vt_shutdown(wr_hconn_t *c)
{
    if (c->vt != NULL)
        response_eof(c->vt);
}

void wr_h2_vt_close(wr_hconn_t *c)
{
    h2_stream_t *st = c->vt;

    if (st == NULL)
        return;
    c->vt = NULL;
    st->c = NULL;
    response_eof(st);
    if (!st->req_dead)
        req_stop(st);
}

/* ---- nghttp2 callbacks ---- */

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *frame, void *user)
{
    wr_h2_t *s = user;
    h2_stream_t *st;

    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    st = calloc(1, sizeof(*st));
    if (st == NULL)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;   /* this stream is reset */
    st->s = s;
    st->id = frame->hd.stream_id;
    st->next = s->streams;
    if (s->streams)
        s->streams->prev = st;
    s->streams = st;
    s->nstreams++;
    st->in_head = 1;
    s->nheads++;
    s->head_since = wr_ev_now();
    set_active(s, 1);
    nghttp2_session_set_stream_user_data(ng, st->id, st);
    return 0;
}

static int set_pseudo(char **to, const uint8_t *value, size_t len)
{
    free(*to);
    *to = strndup((const char *) value, len);
    return *to ? 0 : -1;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name,
                     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *user)
{
    h2_stream_t *st = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
    const wr_http_limits_t *lim = &((wr_h2_t *) user)->t->conf->limits;
    const char *n = (const char *) name, *v = (const char *) value;
    int rc = 0;

    (void) flags;
    if (st == NULL || st->started)
        return 0;                                   /* trailers: dropped */
    /* Past the head limit nothing more is kept: the request that goes on is
     * over it already, and its connection answers 431. */
    if (st->head.n + st->cookie.n > lim->header_buffer_size * lim->header_buffers)
        return 0;
    if (nlen > 0 && n[0] == ':') {
        if (nlen == 7 && memcmp(n, ":method", 7) == 0)
            rc = set_pseudo(&st->method, value, vlen);
        else if (nlen == 5 && memcmp(n, ":path", 5) == 0)
            rc = set_pseudo(&st->path, value, vlen);
        else if (nlen == 10 && memcmp(n, ":authority", 10) == 0)
            rc = set_pseudo(&st->authority, value, vlen);
        /* :scheme says nothing the connection does not. */
    } else if (nlen == 6 && memcmp(n, "cookie", 6) == 0) {
        /* Crumbs of one Cookie field (RFC 9113 §8.2.3). */
        rc = (st->cookie.n > 0 ? wr_buf_append(&st->cookie, "; ", 2) : 0) < 0
             || wr_buf_append(&st->cookie, v, vlen) < 0 ? -1 : 0;
    } else if (!(nlen == 2 && memcmp(n, "te", 2) == 0)) {
        st->has_host |= nlen == 4 && memcmp(n, "host", 4) == 0;
        st->has_length |= nlen == 14 && memcmp(n, "content-length", 14) == 0;
        rc = put_field(&st->head, n, nlen, v, vlen);
    }
    return rc < 0 ? NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE : 0;
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame, void *user)
{
    h2_stream_t *st = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
    int end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    wr_h2_t *s = user;

    if (st == NULL)
        return 0;
    if (frame->hd.type == NGHTTP2_HEADERS && st->in_head) {
        st->in_head = 0;
        s->nheads--;
        if (stream_start(st, end) < 0)
            stream_reset(st, NGHTTP2_INTERNAL_ERROR);
        return 0;
    }
    if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) && end
        && st->started && !st->req_end)
        stream_req_end(st);
    return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *user)
{
    h2_stream_t *st = nghttp2_session_get_stream_user_data(ng, id);
    char size[32];

    (void) flags;
    (void) user;
    if (st == NULL || !st->started || st->req_dead) {
        nghttp2_session_consume(ng, id, len);      /* dropped: the window goes on */
        return 0;
    }
    if (st->chunked) {
        int k = snprintf(size, sizeof(size), "%zx\r\n", len);
        if (wr_buf_append(&st->req, size, (size_t) k) < 0
            || wr_buf_append(&st->req, data, len) < 0 || wr_buf_append(&st->req, "\r\n", 2) < 0)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    } else if (wr_buf_append(&st->req, data, len) < 0) {
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    st->unconsumed += len;
    stream_kick(st);
    return 0;
}

/* The answer is out while the client still sends: tell it to stop (RFC 9113
 * §8.1), the rest of its body would only be dropped. */
static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *frame, void *user)
{
    h2_stream_t *st;

    (void) user;
    if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
        || !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    st = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
    if (st != NULL && !st->req_end)
        stream_reset(st, NGHTTP2_NO_ERROR);
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t code, void *user)
{
    h2_stream_t *st = nghttp2_session_get_stream_user_data(ng, id);

    (void) code;
    (void) user;
    if (st != NULL) {
        nghttp2_session_set_stream_user_data(ng, id, NULL);
        stream_free(st);
    }
    return 0;
}

/* ---- the session ---- */

static void session_close(wr_h2_t *s)
{
    wr_thread_t *t = s->t;

    s->closed = 1;
    while (s->streams) {
        nghttp2_session_set_stream_user_data(s->ng, s->streams->id, NULL);
        stream_free(s->streams);
    }
    nghttp2_session_del(s->ng);
    wr_timer_cancel(&t->loop, &s->timer);
    wr_ev_retire(&t->loop, &s->ev, s);
    wr_tls_close(s->ssl);
    close(s->ev.fd);
    wr_buf_free(&s->out);
    atomic_fetch_sub(s->active ? &t->count.active : &t->count.idle, 1);
    atomic_fetch_add(&t->count.closed, 1);
    list_remove(s);
    wr_thread_conn_closed(t);
}

static void session_want(wr_h2_t *s, uint32_t events)
{
    if (s->events != events && wr_ev_mod(&s->t->loop, &s->ev, events) == 0)
        s->events = events;
}

static ssize_t client_send(wr_h2_t *s, const void *buf, size_t len)
{
    ssize_t n;

    if (s->ssl != NULL)
        return wr_tls_write(s->ssl, buf, len);
    do
        n = send(s->ev.fd, buf, len, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n;
}

/* Frames to the client as far as it takes them: 1 all out, 0 it waits
 * (EPOLLOUT), -1 failed. */
static int session_flush(wr_h2_t *s)
{
    if (s->closed)
        return -1;
    for (;;) {
        while (s->out_sent < s->out.n) {
            ssize_t n = client_send(s, s->out.p + s->out_sent, s->out.n - s->out_sent);
            if (n < 0 && errno == EAGAIN) {
                session_want(s, EPOLLIN | EPOLLOUT | EPOLLRDHUP);
                return 0;
            }
            if (n <= 0)
                return -1;
            s->out_sent += (size_t) n;
        }
        wr_buf_reset(&s->out);
        s->out_sent = 0;
        while (s->out.n < WR_H2_OUT_MAX) {
            const uint8_t *data;
            ssize_t n = nghttp2_session_mem_send(s->ng, &data);
            if (n < 0)
                return -1;
            if (n == 0)
                break;
            if (wr_buf_append(&s->out, data, (size_t) n) < 0)
                return -1;
        }
        if (s->out.n == 0)
            break;
    }
    session_want(s, EPOLLIN | EPOLLRDHUP);
    return 1;
}

static uint64_t deadline_left(uint64_t deadline)
{
    uint64_t now = wr_ev_now();

    return deadline > now ? deadline - now : 0;
}

/*
 * The session is over and its last frames are out (or cannot go): stop
 * sending, and read and drop what the client still sends for a moment. A
 * close with its bytes unread would reset the connection, and the reset
 * can overtake the GOAWAY that says why (as HTTP/1.1's linger, conn.c).
 */
static void session_linger(wr_h2_t *s)
{
    while (s->streams) {
        nghttp2_session_set_stream_user_data(s->ng, s->streams->id, NULL);
        stream_free(s->streams);
    }
    set_active(s, 0);
    s->lingering = 1;
    if (s->ssl != NULL)
        wr_tls_shutdown(s->ssl);
    shutdown(s->ev.fd, SHUT_WR);
    session_want(s, EPOLLIN | EPOLLRDHUP);
    wr_timer_set(&s->t->loop, &s->timer, WR_LINGER_MS);
}

/* nghttp2 gave up on the client's bytes (a flood, a bad preface): say so
 * if it can be said, then linger. */
static void session_fail(wr_h2_t *s, int rv)
{
    uint32_t code = rv == NGHTTP2_ERR_FLOODED ? NGHTTP2_ENHANCE_YOUR_CALM
                                               : NGHTTP2_PROTOCOL_ERROR;

    if (rv != NGHTTP2_ERR_BAD_CLIENT_MAGIC
        && nghttp2_session_terminate_session(s->ng, code) == 0)
        (void) session_flush(s);
    session_linger(s);
}

/* After an event: close a session that is over, else set its clock. */
static void session_settle(wr_h2_t *s)
{
    wr_rconf_t *conf = s->t->conf;

    if (s->closed)
        return;
    if (s->lingering)
        return;
    if (!nghttp2_session_want_read(s->ng) && !nghttp2_session_want_write(s->ng)
        && s->out_sent == s->out.n) {
        session_linger(s);
        return;
    }
    if (s->nstreams == 0)
        set_active(s, 0);
    if (s->out_sent < s->out.n)
        wr_timer_set(&s->t->loop, &s->timer, MS(conf->settings.send_timeout));
    else if (s->goaway == 1)
        wr_timer_set(&s->t->loop, &s->timer, deadline_left(s->goaway_at));
    else if (s->nstreams == 0)
        wr_timer_set(&s->t->loop, &s->timer, MS(conf->settings.idle_timeout));
    else if (s->nheads > 0)
        /* A head has header_read_timeout from its first frame, as on
         * HTTP/1.1 (and nothing else moves on the connection meanwhile). */
        wr_timer_set(&s->t->loop, &s->timer,
                     deadline_left(s->head_since + MS(conf->settings.header_read_timeout)));
    else
        wr_timer_cancel(&s->t->loop, &s->timer);
}

/* Client bytes into nghttp2: 0, or nghttp2's fatal error (logged). */
static int session_input(wr_h2_t *s, const char *buf, size_t len)
{
    ssize_t rv = nghttp2_session_mem_recv(s->ng, (const uint8_t *) buf, len);

    if (rv < 0) {
        char host[WR_ADDR_TEXT], port[WR_PORT_TEXT];
        wr_addr_text((const struct sockaddr *) &s->peer, host, port);
        wr_log(WR_LOG_INFO, "client %s%s%s on %s: HTTP/2: %s", host, port[0] ? ":" : "",
               port, s->l->addr, nghttp2_strerror((int) rv));
        return (int) rv;
    }
    return 0;
}

/* Read what the client sent (into nghttp2, or away when lingering): 0 all
 * there is, -1 the client closed or failed, or nghttp2's fatal error. */
static int session_read(wr_h2_t *s)
{
    wr_thread_t *t = s->t;
    int rv;

    if (t->rbuf == NULL) {
        if ((t->rbuf = malloc(WR_THREAD_RBUF)) == NULL)
            return -1;
        t->rbuf_cap = WR_THREAD_RBUF;
    }
    for (;;) {
        ssize_t n = s->ssl ? wr_tls_read(s->ssl, t->rbuf, t->rbuf_cap)
                           : recv(s->ev.fd, t->rbuf, t->rbuf_cap, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return 0;
        if (n <= 0)
            return -1;                     /* the client closed, or failed */
        if (!s->lingering && (rv = session_input(s, t->rbuf, (size_t) n)) < 0)
            return rv;
        if ((size_t) n < t->rbuf_cap && s->ssl == NULL)
            return 0;                      /* drained: epoll says when there is more */
    }
}

static void session_event(wr_ev_loop_t *loop, wr_ev_t *ev, uint32_t events)
{
    wr_h2_t *s = ev->data;

    (void) loop;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        int rv = session_read(s);
        if (rv == -1) {
            session_close(s);
            return;
        }
        if (rv < 0) {
            session_fail(s, rv);
            return;
        }
    }
    if (s->lingering)
        return;
    if (session_flush(s) < 0) {
        session_close(s);
        return;
    }
    session_settle(s);
}

static void on_timeout(wr_ev_loop_t *loop, wr_timer_t *tm)
{
    wr_h2_t *s = tm->data;

    (void) loop;
    if (s->lingering || s->out_sent < s->out.n) {
        session_close(s);                  /* lingered, or send_timeout: the
                                              client reads nothing */
        return;
    }
    if (s->goaway == 1) {
        /* Draining: streams the client sent before it heard are in. */
        s->goaway = 2;
        nghttp2_submit_goaway(s->ng, NGHTTP2_FLAG_NONE,
                              nghttp2_session_get_last_proc_stream_id(s->ng),
                              NGHTTP2_NO_ERROR, NULL, 0);
    } else {
        /* idle_timeout, or header_read_timeout: say so, then close once
         * that is out. */
        nghttp2_session_terminate_session(s->ng, NGHTTP2_NO_ERROR);
    }
    if (session_flush(s) < 0) {
        session_close(s);
        return;
    }
    session_settle(s);
}

static nghttp2_session *session_new(wr_h2_t *s)
{
    const wr_rconf_t *conf = s->t->conf;
    nghttp2_session_callbacks *cb;
    nghttp2_option *opt;
    nghttp2_session *ng = NULL;
    nghttp2_settings_entry iv[] = {
        { NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, (uint32_t) conf->settings.h2_max_streams },
        { NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
          (uint32_t) (conf->limits.header_buffer_size * conf->limits.header_buffers) },
    };

    if (nghttp2_session_callbacks_new(&cb) != 0)
        return NULL;
    if (nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cb);
        return NULL;
    }
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_session_callbacks_set_send_data_callback(cb, body_send);
    /* The window opens as request bodies go on (wr_h2_vt_recv), not as
     * they arrive: a stream's connection that reads slowly slows its client. */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    if (nghttp2_session_server_new2(&ng, cb, s, opt) != 0)
        ng = NULL;
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    if (ng == NULL)
        return NULL;
    if (nghttp2_submit_settings(ng, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) != 0
        || nghttp2_session_set_local_window_size(ng, NGHTTP2_FLAG_NONE, 0,
                                                 WR_H2_CONN_WINDOW) != 0) {
        nghttp2_session_del(ng);
        return NULL;
    }
    return ng;
}

void wr_h2_start(wr_hconn_t *c)
{
    wr_thread_t *t = c->t;
    wr_h2_t *s = calloc(1, sizeof(*s));
    int rv;

    if (s == NULL || (s->t = t, s->ng = session_new(s)) == NULL) {
        wr_log(WR_LOG_CRIT, "out of memory starting an HTTP/2 session on %s", c->l->addr);
        free(s);
        wr_conn_abort(c);
        return;
    }
    s->l = c->l;
    s->ssl = c->ssl;
    s->peer = c->peer;
    s->local = c->local;
    s->ev.fd = c->ev.fd;
    s->ev.cb = session_event;
    s->ev.data = s;
    s->timer.cb = on_timeout;
    s->timer.data = s;
    list_add(s);                           /* c's place in t->conns is ours */
    /* What c read already (a cleartext preface and more) goes first. */
    rv = c->in_len > 0 ? session_input(s, c->in, c->in_len) : 0;
    wr_conn_handed_over(c);
    if (wr_ev_add(&t->loop, &s->ev, EPOLLIN | EPOLLRDHUP) < 0) {
        session_close(s);
        return;
    }
    s->events = EPOLLIN | EPOLLRDHUP;
    if (rv < 0) {
        session_fail(s, rv);
        return;
    }
    /* TLS may hold the client's first records already: no epoll event
     * would tell of them. */
    session_event(&t->loop, &s->ev, EPOLLIN);
}

void wr_h2_drain(wr_thread_t *t)
{
    wr_h2_t *s = t->h2_list, *next;

    for (; s; s = next) {
        next = s->next;
        if (s->goaway || s->lingering)
            continue;
        /* A GOAWAY naming the last stream at once would refuse the ones
         * already on their way: first a notice, the last one after a
         * round trip (on_timeout). */
        s->goaway = 1;
        s->goaway_at = wr_ev_now() + WR_H2_GOAWAY_GRACE_MS;
        nghttp2_submit_shutdown_notice(s->ng);
        if (session_flush(s) < 0)
            session_close(s);
        else
            session_settle(s);
    }
}
