/*
 * Requests to applications, the exchange half: one request on one stream
 * of a worker's channel (src/lib/proto.h). The head goes out, then the
 * body within the stream's window (the worker grants more as it reads);
 * the response head and body come back and are written to the client, and
 * the worker gets more of the stream's window only as the client takes the
 * bytes. Memory per request stays bounded both ways, and backpressure is
 * per stream: a slow client holds back its own stream only, while the
 * channel is read on for the worker's other streams.
 *
 * Which worker and slot a request gets, and what a failed worker means for
 * its requests, is app.c's (app.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "core/log.h"
#include "lib/proto.h"
#include "router/app.h"
#include "router/spool.h"
#include "router/worker_proto.h"

#define WR_APP_RESP_FIELDS  128     /* response fields a worker may send */
#define WR_APP_GRANT_MIN    (WR_APP_WINDOW_INIT / 4)  /* batch WINDOW messages */
#define WR_CL_DIGITS_MAX    18      /* a Content-Length that fits a long long */
/* Messages taken from one channel per event before the clients get what
 * came: a worker busy on many streams cannot hold its thread (epoll is
 * level-triggered: the rest comes with the next round). */
#define WR_APP_EVENT_MSGS   64
/* on_resp_head: the worker answered a 1xx other than an upgrade's 101 */
#define WR_APP_INTERIM      (-2)

/* ---- sending ---- */

int wr_app_send(wr_worker_t *w, uint16_t type, uint16_t flags, uint32_t stream,
                const void *p, size_t n)
{
    wr_app_hdr_t h = { .type = type, .flags = flags, .stream = stream, .len = (uint32_t) n };
    struct iovec iov[2] = { { &h, sizeof(h) }, { (void *) p, n } };
    struct msghdr mh = { .msg_iov = iov, .msg_iovlen = n ? 2 : 1 };
    ssize_t r;

    do
        r = sendmsg(w->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (r < 0 && errno == EINTR);
    return r < 0 ? -1 : 0;
}

static int send_msg(wr_hconn_t *c, uint16_t type, const void *p, size_t n)
{
    return wr_app_send(c->worker, type, 0, c->stream, p, n);
}

void wr_app_want_out(wr_worker_t *w)
{
    if (w->want_out || w->ev == NULL)
        return;
    w->want_out = 1;
    wr_ev_mod(&w->home->loop, w->ev, EPOLLIN | EPOLLOUT);
}

/* The worker's channel is full (the app is busy): c goes on when it
 * drains. */
static int worker_blocked(wr_hconn_t *c)
{
    c->worker_out = 1;
    wr_app_want_out(c->worker);
    return 0;
}

/* The worker broke the protocol or its channel failed: every request on
 * it is answered (c too), and it is never used again. */
static int broken(wr_hconn_t *c)
{
    wr_app_worker_gone(c->worker);
    return -1;
}

/* The caller ends the worker: it is not trusted (it runs whatever its app
 * was made to run), and nothing more it sends can be. */
void wr_app_protocol_error(const wr_worker_t *w, const wr_app_hdr_t *h, const char *why)
{
    if (h == NULL)
        wr_log(WR_LOG_ERR, "application \"%s\" worker %u (pid %d) broke the channel "
               "protocol: %s; ending it", w->gen->name, w->id, (int) w->pid, why);
    else
        wr_log(WR_LOG_ERR, "application \"%s\" worker %u (pid %d) broke the channel "
               "protocol: %s (type %u, flags 0x%x, stream %u, %u bytes); ending it",
               w->gen->name, w->id, (int) w->pid, why, h->type, h->flags, h->stream,
               h->len);
}

/* The worker of c broke the protocol: said, then as broken. */
static int violation(wr_hconn_t *c, const wr_app_hdr_t *h, const char *why)
{
    wr_app_protocol_error(c->worker, h, why);
    return broken(c);
}

/* The stream failed but the worker is fine: the stream ends (ABORT) and c
 * is answered status, or cut if its answer began. */
static void stream_fail(wr_hconn_t *c, int status)
{
    wr_app_stream_end(c);
    if (c->head_out)
        wr_conn_cut(c);
    else
        wr_conn_fail(c, status);
}

/* Close the router's direction of c's stream with ABORT (proto.h), if it is
 * still open: the worker wants no more of the body. The client's unread
 * body then cannot be read past: its connection closes after the answer. */
static int close_req(wr_hconn_t *c)
{
    wr_wstream_t *s = c->wstream;

    if (c->req_done)
        return 0;
    c->req_done = 1;
    if (c->body_left > 0)
        c->close_after = 1;
    if (send_msg(c, WR_APP_ABORT, NULL, 0) == 0)
        return 0;
    if (errno != EAGAIN)
        return -1;
    s->need_abort = 1;
    wr_app_want_out(c->worker);
    return 0;
}

/* ---- the request body ---- */

/*
 * Request body bytes ready to forward at c->in + c->consumed. A chunked
 * body is decoded in place as it comes (the raw bytes after the decoded
 * ones move up): the worker gets the payload only, and c->body_left stays
 * 1 until the last chunk. -1 for a broken chunked body (c->chunk.error).
 */
static int body_ready(wr_hconn_t *c, size_t *ready)
{
    size_t at = c->consumed + c->dec_len, used, out;
    int rc;

    if (!c->chunked) {
        size_t n = c->in_len - c->consumed;
        *ready = (long long) n > c->body_left ? (size_t) c->body_left : n;
        return 0;
    }
    if (c->dec_len == 0 && !c->chunk_end && at < c->in_len) {
        rc = wr_http_chunked_decode(&c->chunk, c->in + at, c->in_len - at, &used, &out);
        if (rc < 0)
            return -1;
        memmove(c->in + at + out, c->in + at + used, c->in_len - at - used);
        c->in_len -= used - out;
        c->dec_len = out;
        c->chunk_end = rc == 1;
    }
    if (c->chunk_end && c->dec_len == 0)
        c->body_left = 0;                 /* what follows is the next request */
    *ready = c->dec_len;
    return 0;
}

/* pump_body failed: a broken chunked body is the client's fault (400,
 * 413), not the worker's, nor is a body read whole that cannot be read
 * back (500): its stream alone ends and the worker serves on. Anything
 * else is the worker's channel failing. */
static void fail_body(wr_hconn_t *c)
{
    if ((c->chunked || c->spool) && c->chunk.error < 0) {
        stream_fail(c, -c->chunk.error);
        return;
    }
    if (c->worker != NULL)
        broken(c);
    else
        wr_conn_fail(c, 502);
}

/* The body was read whole first (chunked_transform, spool.h): from
 * there, as the window allows, then its end. */
static int pump_spool(wr_hconn_t *c)
{
    const char *p;
    size_t n, max;

    while (wr_spool_unsent(c) > 0 && c->req_window > 0) {
        max = (long long) WR_APP_MAX_PAYLOAD < c->req_window ? WR_APP_MAX_PAYLOAD
                                                             : (size_t) c->req_window;
        if (wr_spool_next(c, max, &p, &n) < 0) {
            c->chunk.error = -500;         /* ours, not the worker's (fail_body) */
            return -1;
        }
        if (send_msg(c, WR_APP_REQ_BODY, p, n) < 0)
            return errno == EAGAIN ? worker_blocked(c) : -1;
        wr_spool_consumed(c, n);
        c->req_window -= (long long) n;
    }
    if (wr_spool_unsent(c) == 0 && !c->req_done) {
        if (send_msg(c, WR_APP_REQ_END, NULL, 0) < 0)
            return errno == EAGAIN ? worker_blocked(c) : -1;
        c->req_done = 1;
    }
    return 0;
}

/* Forward request body bytes waiting in c->in, as the window allows. */
static int pump_body(wr_hconn_t *c)
{
    size_t n;

    if (c->worker_out)
        return 0;                          /* the channel is full: later */
    if (c->spool)
        return pump_spool(c);
    while (c->body_left > 0 && c->req_window > 0) {
        if (body_ready(c, &n) < 0)
            return -1;
        if (n == 0)
            break;
        if ((long long) n > c->req_window)
            n = (size_t) c->req_window;
        if (n > WR_APP_MAX_PAYLOAD)
            n = WR_APP_MAX_PAYLOAD;
        if (send_msg(c, WR_APP_REQ_BODY, c->in + c->consumed, n) < 0)
            return errno == EAGAIN ? worker_blocked(c) : -1;
        c->consumed += n;
        if (c->chunked)
            c->dec_len -= n;
        else
            c->body_left -= (long long) n;
        c->req_window -= (long long) n;
    }
    if (c->chunked && body_ready(c, &n) < 0)
        return -1;                         /* notices the end after the last bytes */
    /* What was forwarded need not stay in the buffer. */
    if (c->consumed > c->head_len && c->body_left > 0) {
        memmove(c->in + c->head_len, c->in + c->consumed, c->in_len - c->consumed);
        c->in_len -= c->consumed - c->head_len;
        c->consumed = c->head_len;
    }
    /* An upgrade's direction stays open until the worker answers. */
    if (c->body_left == 0 && !c->req_done && !c->upgrade_wait) {
        if (send_msg(c, WR_APP_REQ_END, NULL, 0) < 0)
            return errno == EAGAIN ? worker_blocked(c) : -1;
        c->req_done = 1;
    }
    return 0;
}

/* Client input is wanted now: body bytes the worker's window can take. */
static int body_wanted(const wr_hconn_t *c)
{
    return c->body_left > 0 && c->req_window > 0 && !c->req_done;
}

/* Which client events c needs now. Without a body to forward, EPOLLIN is
 * left as it is: it is only dropped if input actually comes (a pipelining
 * client, wr_app_on_client), so a plain request costs no epoll_ctl. */
static void client_interest(wr_hconn_t *c)
{
    uint32_t ev = EPOLLRDHUP;

    if (body_wanted(c) || (c->body_left == 0 && (c->events & EPOLLIN)))
        ev |= EPOLLIN;
    if (wr_conn_out_pending(c))
        ev |= EPOLLOUT;
    wr_conn_want(c, ev);
}

/* Give the worker back the window of what the client took, in batches. */
static int grant(wr_hconn_t *c)
{
    uint32_t n = (uint32_t) c->resp_unacked;

    if (c->resp_unacked < WR_APP_GRANT_MIN || c->worker_out)
        return 0;
    if (send_msg(c, WR_APP_WINDOW, &n, sizeof(n)) == 0) {
        c->resp_unacked = 0;
        return 0;
    }
    return errno == EAGAIN ? worker_blocked(c) : -1;
}

/* Everything of c that waits for the channel, in order: the head, the
 * body, its end, a grant. 0 (sent, or waiting for room), -1 failed. */
static int stream_send(wr_hconn_t *c)
{
    wr_wstream_t *s = c->wstream;
    uint16_t flags = c->req_done ? WR_APP_F_END : c->upgrade_wait ? WR_APP_F_UPGRADE : 0;

    c->worker_out = 0;
    if (!s->head_sent) {
        /* No body: the head closes the router's direction (one message). */
        if (wr_app_send(c->worker, WR_APP_REQ_HEAD, flags, c->stream,
                        c->app_head.p, c->app_head.n) < 0)
            return errno == EAGAIN ? worker_blocked(c) : -1;
        s->head_sent = 1;
    }
    if (pump_body(c) < 0)
        return -1;
    if (c->out.n == 0 && grant(c) < 0)
        return -1;
    return 0;
}

void wr_app_stream_start(wr_hconn_t *c)
{
    c->state = WR_HC_APP;
    c->req_window = WR_APP_WINDOW_INIT;
    c->upgrade_wait = c->upgrade && c->wstream != NULL;
    c->req_done = c->body_left == 0 && wr_spool_unsent(c) == 0 && !c->upgrade_wait;
    c->worker_out = 0;
    if (stream_send(c) < 0) {
        fail_body(c);
        return;
    }
    client_interest(c);
}

/* ---- the response ---- */

static int framing_field(const wr_http_field_t *f)
{
    return (f->name_len == 14 && strncasecmp(f->name, "Content-Length", 14) == 0)
        || (f->name_len == 17 && strncasecmp(f->name, "Transfer-Encoding", 17) == 0)
        || (f->name_len == 10 && strncasecmp(f->name, "Connection", 10) == 0);
}

static long long content_length(const wr_http_field_t *f)
{
    long long v = 0;

    if (f->value_len == 0 || f->value_len > WR_CL_DIGITS_MAX)
        return -1;
    for (size_t i = 0; i < f->value_len; i++) {
        if (f->value[i] < '0' || f->value[i] > '9')
            return -1;
        v = v * 10 + (f->value[i] - '0');
    }
    return v;
}

/* The connection's timer while the client keeps up: limits.timeout until
 * the answer came, a tunnel's own clock after a 101, else none. */
static void rearm(wr_hconn_t *c)
{
    if (c->tunnel)
        wr_conn_tunnel_clock(c);
    else if (c->app_timeout > 0)
        wr_conn_arm(c, c->app_timeout);
    else
        wr_timer_cancel(&c->t->loop, &c->timer);
}

/* A response head; with used, only a prefix of p (body bytes follow, and
 * *used says where). */
static int on_resp_head(wr_hconn_t *c, const char *p, size_t n, size_t *used)
{
    wr_http_field_t f[WR_APP_RESP_FIELDS];
    int status, nf = used ? wr_worker_decode_resp_head_prefix(p, n, &status, f,
                                                              WR_APP_RESP_FIELDS, used)
                          : wr_worker_decode_resp_head(p, n, &status, f, WR_APP_RESP_FIELDS);
    wr_buf_t *b = &c->out;
    int v10 = c->v10;     /* t->req may be another request's by now */

    if (nf < 0 || c->head_out)
        return -1;
    if (status < 200 && (status != WR_APP_STATUS_SWITCHING || !c->upgrade_wait))
        return WR_APP_INTERIM;
    if (c->upgrade_wait) {
        c->upgrade_wait = 0;
        /* The stream becomes a tunnel: the client's bytes are request
         * body without end (pump_body forwards them within the window),
         * the response body goes out unframed. */
        if (status == WR_APP_STATUS_SWITCHING) {
            wr_conn_tunnel(c);
            wr_app_tunnel_opened(c);
        }
    }
    c->resp_length = -1;
    for (int i = 0; i < nf; i++)
        if (f[i].name_len == 14 && strncasecmp(f[i].name, "Content-Length", 14) == 0)
            c->resp_length = content_length(&f[i]);
    if (b->p == NULL) {
        *b = c->t->out;
        memset(&c->t->out, 0, sizeof(c->t->out));
    }
    wr_buf_reset(b);
    c->status = status;
    /* The app's Content-Length frames the body when it gave one (and the
     * router holds it to it); otherwise HTTP/1.1 bodies are chunked and an
     * HTTP/1.0 body ends with the connection. */
    c->chunked_out = c->resp_length < 0 && !v10 && !c->head_only && !c->tunnel
                     && status != 204 && status != 304;
    if (c->resp_length < 0 && v10)
        c->close_after = 1;
    /* Appends, not printf: this runs once per relayed response. */
    wr_buf_puts(b, "HTTP/1.1 ");
    wr_buf_put_dec(b, (unsigned) status);
    wr_buf_append(b, " ", 1);
    wr_buf_puts(b, wr_http_reason(status));
    wr_buf_puts(b, "\r\nServer: Warren/" WR_VERSION "\r\nDate: ");
    wr_buf_puts(b, wr_thread_date(c->t));
    wr_buf_append(b, "\r\n", 2);
    for (int i = 0; i < nf; i++) {
        if (framing_field(&f[i]))
            continue;
        wr_respond_relay_field(b, f[i].name, f[i].name_len, f[i].value, f[i].value_len);
    }
    wr_respond_relay_end(c, b, 1);
    c->head_in_out = 1;
    c->resp_bytes = 0;
    return b->p ? 0 : -1;
}

/* Why a response body of n bytes may not come now, or NULL. The worker's
 * credit is the window less what it sent that was not granted back yet
 * (grant): one that ignored it would make the router hold a slow client's
 * whole response. */
static const char *body_refused(const wr_hconn_t *c, size_t n)
{
    if (!c->head_out)
        return "response body before its head";
    if (c->resp_done)
        return "response body after its end";
    if (n > WR_APP_WINDOW_INIT - c->resp_unacked)
        return "response body beyond the window granted";
    if (c->resp_length >= 0 && (long long) n > c->resp_length)
        return "more response body than its Content-Length";
    return NULL;
}

/* n bytes of body (body_refused said yes). */
static int on_resp_body(wr_hconn_t *c, const char *p, size_t n)
{
    if (c->resp_length >= 0)
        c->resp_length -= (long long) n;
    c->resp_unacked += n;
    c->resp_bytes += n;
    if (c->head_only || n == 0)
        return 0;
    if (c->chunked_out)
        wr_buf_printf(&c->out, "%zx\r\n", n);
    wr_buf_append(&c->out, p, n);
    if (c->chunked_out)
        wr_buf_append(&c->out, "\r\n", 2);
    return 0;
}

/* The response head leaves c->out before the response ends: the access
 * log still needs its fields. The request head's buffer is free by now
 * (it went to the worker) and keeps a copy, only when logging is on. */
static void save_head(wr_hconn_t *c)
{
    const char *end = memmem(c->out.p, c->out.n, "\r\n\r\n", 4);

    if (end == NULL || c->conf == NULL || c->conf->alog == NULL)
        return;
    wr_buf_reset(&c->app_head);
    if (wr_buf_append(&c->app_head, c->out.p, (size_t) (end - c->out.p) + 4) == 0)
        c->head_saved = 1;
}

/* Write what is pending to the client; grant the worker what went out;
 * finish when the response is complete. Returns -1 if c was closed or
 * moved on. */
static int flush_client(wr_hconn_t *c)
{
    int rc = wr_conn_flush(c);

    if (rc < 0) {
        wr_conn_abort(c);
        return -1;
    }
    if (rc == 0) {
        /* A slow client: its send_timeout, not the app's timeout, counts. */
        client_interest(c);
        c->out_blocked = 1;
        wr_conn_arm(c, c->conf->settings.send_timeout);
        return 0;
    }
    if (c->out_blocked) {
        c->out_blocked = 0;
        rearm(c);
    }
    if (c->head_in_out && !c->resp_done)
        save_head(c);
    wr_buf_reset(&c->out);
    c->out_sent = 0;
    c->head_in_out = 0;
    if (c->resp_done) {
        /* An app that answered before taking the whole body: its stream
         * is stopped (wr_app_stream_end), and the connection cannot carry
         * another request. */
        if (!c->req_done && c->body_left > 0)
            c->close_after = 1;
        wr_app_stream_end(c);
        c->state = WR_HC_WRITE;
        wr_conn_done(c);
        return -1;                         /* c moved on; callers stop */
    }
    if (grant(c) < 0)
        return broken(c);
    client_interest(c);
    return 0;
}

/* The flags a worker's message of this type may carry (proto.h). */
static uint16_t allowed_flags(uint16_t type)
{
    switch (type) {
    case WR_APP_RESP_HEAD:
        return WR_APP_F_END | WR_APP_F_BODY;
    case WR_APP_RESP_BODY:
        return WR_APP_F_END;
    default:
        return 0;
    }
}

/* The response is complete (RESP_END, or a message with WR_APP_F_END). */
static int on_resp_end(wr_hconn_t *c)
{
    if (c->resp_done)
        return -1;
    if (!c->head_out && on_resp_head(c, "\xc8\0\0\0\0\0\0\0", 8, NULL) < 0)
        return -1;
    if (c->wstream != NULL) {
        c->wstream->worker_closed = 1;
        if (!c->tunnel)                 /* a tunnel's life says nothing of speed */
            wr_app_served(c->worker, c->wstream);
    }
    if (c->chunked_out)
        wr_buf_puts(&c->out, "0\r\n\r\n");
    /* Fewer bytes than announced: the client can only learn it from
     * the connection ending. */
    if (c->resp_length > 0 && !c->head_only)
        c->close_after = 1;
    c->resp_done = 1;
    wr_respond_log_app(c, c->head_only ? 0 : c->resp_bytes,
                       c->head_in_out ? &c->out : c->head_saved ? &c->app_head : NULL);
    return 0;
}

/* RESP_HEAD, with body bytes (WR_APP_F_BODY) and the end (WR_APP_F_END)
 * folded in when the worker could. */
static int on_resp_head_msg(wr_hconn_t *c, const wr_app_hdr_t *h, const char *p)
{
    size_t used = h->len;
    int rc = on_resp_head(c, p, h->len, (h->flags & WR_APP_F_BODY) ? &used : NULL);

    if (rc == WR_APP_INTERIM) {
        /* The application's mistake, not the channel's: only its stream
         * fails (libwarren refuses such a status; another library may not). */
        wr_log(WR_LOG_ERR, "application \"%s\" answered an interim status "
               "(1xx) as its response; answered 502", c->app->name);
        if (h->flags & WR_APP_F_END)
            c->wstream->worker_closed = 1;    /* no ABORT in reply will come */
        stream_fail(c, 502);
        return -1;
    }
    if (rc < 0)
        return violation(c, h, c->head_out ? "a second response head"
                                           : "a malformed response head");
    if (h->flags & WR_APP_F_BODY) {
        const char *why = body_refused(c, h->len - used);
        if (why != NULL)
            return violation(c, h, why);
        on_resp_body(c, p + used, h->len - used);
    }
    if ((h->flags & WR_APP_F_END) && on_resp_end(c) < 0)
        return broken(c);
    /* An upgrade refused: the request had no body, its direction ends now.
     * One accepted: what the client sent after its head may go already. */
    if (c->upgrade && !c->resp_done && pump_body(c) < 0) {
        fail_body(c);
        return -1;
    }
    return 0;
}

/* The worker ended the stream with ABORT. The answer stands if it was
 * complete; else nothing sent yet is a 502, and a cut answer cuts the
 * connection. The worker itself serves on. */
static int on_abort(wr_hconn_t *c)
{
    c->wstream->worker_closed = 1;
    if (close_req(c) < 0)
        return broken(c);
    if (c->resp_done)
        return 0;
    stream_fail(c, 502);
    return -1;
}

/* One message from the worker for c's stream. Returns -1 when c is
 * finished or closed. */
static int on_worker_msg(wr_hconn_t *c, const wr_app_hdr_t *h, const char *p)
{
    uint32_t n;
    const char *why;

    if (h->type != WR_APP_WINDOW)
        c->resp_started = 1;
    if (h->flags & ~allowed_flags(h->type))
        return violation(c, h, "flags this type may not carry");
    switch (h->type) {
    case WR_APP_RESP_HEAD:
        return on_resp_head_msg(c, h, p);
    case WR_APP_RESP_BODY:
        if ((why = body_refused(c, h->len)) != NULL)
            return violation(c, h, why);
        on_resp_body(c, p, h->len);
        return (h->flags & WR_APP_F_END) && on_resp_end(c) < 0 ? broken(c) : 0;
    case WR_APP_RESP_END:
        if (c->resp_done)
            return violation(c, h, "a second response end");
        return on_resp_end(c) < 0 ? broken(c) : 0;
    case WR_APP_WINDOW:
        if (h->len != sizeof(n))
            return violation(c, h, "a WINDOW whose payload is not one uint32");
        memcpy(&n, p, sizeof(n));
        if (n == 0)
            return violation(c, h, "a WINDOW of 0");
        c->req_window += n;
        return pump_body(c) < 0 ? (fail_body(c), -1) : 0;
    case WR_APP_ABORT:
        if (h->len != 0)
            return violation(c, h, "an ABORT with a payload");
        return on_abort(c);
    default:
        return violation(c, h, "a type a worker does not send");
    }
}

/* A message for a slot whose request let go: only its closing matters. */
static void orphan_msg(wr_worker_t *w, wr_wstream_t *s, const wr_app_hdr_t *h)
{
    if (h->type == WR_APP_RESP_END || h->type == WR_APP_ABORT
        || ((h->type == WR_APP_RESP_HEAD || h->type == WR_APP_RESP_BODY)
            && (h->flags & WR_APP_F_END)))
        wr_app_slot_closed(w, s);
}

/*
 * The worker died under c. Nothing out yet: 502. A complete answer (or a
 * body that filled its Content-Length: the worker died after its last
 * byte) still goes out, buffered head included, before the close.
 * Anything else is cut short: the close tells the client.
 */
void wr_app_stream_lost(wr_hconn_t *c)
{
    int rc;

    if (!c->head_out) {
        wr_conn_fail(c, 502);
        return;
    }
    if (!c->resp_done) {
        if (c->chunked_out || c->resp_length != 0) {
            wr_conn_cut(c);
            return;
        }
        on_resp_end(c);
    }
    if (!c->req_done)
        c->close_after = 1;                /* its unread body has nowhere to go */
    c->req_done = 1;
    c->state = WR_HC_WRITE;
    rc = wr_conn_flush(c);
    if (rc < 0)
        wr_conn_abort(c);
    else if (rc > 0)
        wr_conn_done(c);
    else {
        wr_conn_arm(c, c->conf->settings.send_timeout);
        wr_conn_want(c, EPOLLOUT);
    }
}

/* ---- the channel ---- */

/* Slots of w that can be in use: a stream takes the lowest free slot and
 * w never has more than cap, so none above cap is ever used (a worker
 * serving one request at a time scans 2 slots, not the channel's 64). */
static int slots(const wr_worker_t *w)
{
    return w->cap > 0 && w->cap <= WR_APP_MAX_STREAMS ? w->cap : WR_APP_MAX_STREAMS;
}

static wr_wstream_t *slot_of(wr_worker_t *w, uint32_t id)
{
    for (int i = 0; i < slots(w); i++)
        if (w->slot[i].in_use && w->slot[i].id == id)
            return &w->slot[i];
    return NULL;
}

/* Room in the channel again: the ABORTs and the streams that waited. */
static void channel_writable(wr_worker_t *w)
{
    w->want_out = 0;
    wr_ev_mod(&w->home->loop, w->ev, EPOLLIN);
    for (int i = 0; i < slots(w) && !w->dead && !w->want_out; i++) {
        wr_wstream_t *s = &w->slot[i];

        if (s->in_use && s->need_abort) {
            if (wr_app_send(w, WR_APP_ABORT, 0, s->id, NULL, 0) < 0) {
                if (errno == EAGAIN)
                    wr_app_want_out(w);
                else
                    wr_app_worker_gone(w);
                return;
            }
            s->need_abort = 0;
            if (s->conn == NULL && s->worker_closed) {
                wr_app_slot_closed(w, s);
                continue;
            }
        }
        if (s->in_use && s->conn != NULL && s->conn->worker_out) {
            wr_hconn_t *c = s->conn;
            if (stream_send(c) < 0)
                fail_body(c);
        }
    }
}

void wr_app_worker_event(wr_ev_loop_t *loop, wr_ev_t *ev, uint32_t events)
{
    wr_worker_t *w = ev->data;
    char buf[sizeof(wr_app_hdr_t) + WR_APP_MAX_PAYLOAD];

    wr_app_hold(w);
    if ((events & EPOLLOUT) && w->want_out)
        channel_writable(w);
    for (int msgs = 0; !w->dead && msgs < WR_APP_EVENT_MSGS; msgs++) {
        wr_app_hdr_t h;
        wr_wstream_t *s;
        ssize_t n = recv(w->fd, buf, sizeof(buf), MSG_DONTWAIT);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        if (n < (ssize_t) sizeof(h)) {     /* EOF, error or a runt: the worker is gone */
            if (n > 0)
                wr_app_protocol_error(w, NULL, "a message shorter than its header");
            wr_app_worker_gone(w);
            break;
        }
        memcpy(&h, buf, sizeof(h));
        if (h.len != (size_t) n - sizeof(h)) {
            wr_app_protocol_error(w, &h, "a header whose length is not the message's");
            wr_app_worker_gone(w);
            break;
        }
        s = slot_of(w, h.stream);
        if (s == NULL && (h.type == WR_APP_WINDOW || h.type == WR_APP_ABORT))
            continue;                      /* it crossed the stream's end */
        if (s == NULL) {
            /* A slot is free only once the worker closed its direction. */
            wr_app_protocol_error(w, &h, "a message for a stream that is not open");
            wr_app_worker_gone(w);
            break;
        }
        if (s->conn == NULL) {
            orphan_msg(w, s, &h);
            continue;
        }
        s->dirty = 1;
        /* A response complete: to its client now. What else waits in the
         * channel comes with the next round of the (level-triggered) loop,
         * which saves the recv() that would only say EAGAIN. */
        if (on_worker_msg(s->conn, &h, buf + sizeof(h)) == 0 && s->conn != NULL
            && s->conn->resp_done)
            break;
    }
    /* What came goes to the clients, each stream on its own: a client that
     * cannot take more holds back only its own stream's window. */
    for (int i = 0; i < slots(w) && !w->dead; i++) {
        wr_wstream_t *s = &w->slot[i];

        if (!s->dirty)
            continue;
        s->dirty = 0;
        if (s->conn != NULL)
            flush_client(s->conn);
    }
    wr_app_unhold(w);
}

/* ---- the client side ---- */

void wr_app_on_client(wr_hconn_t *c, uint32_t events)
{
    if (c->state == WR_HC_APP_WAIT || (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
        /* Waiting, only a departure is of interest; during an exchange a
         * client that hung up ends it (its answer has nowhere to go). */
        if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
            wr_conn_abort(c);
            return;
        }
    }
    if ((events & EPOLLIN) && (c->state != WR_HC_APP || !body_wanted(c))) {
        /* Input nobody asked for (pipelined requests, or a body beyond
         * the window): it waits in the socket until it is wanted. */
        wr_conn_want(c, c->events & ~EPOLLIN);
        events &= ~EPOLLIN;
    }
    if (c->state != WR_HC_APP || c->worker == NULL)
        return;
    if (events & EPOLLIN) {
        int r = wr_conn_read(c);
        if (r < 0) {
            wr_conn_abort(c);
            return;
        }
        if (r > 0 && c->tunnel && !c->out_blocked)
            rearm(c);
        if (pump_body(c) < 0) {
            fail_body(c);
            return;
        }
    }
    flush_client(c);
}
