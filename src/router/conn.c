/*
 * The router's HTTP/1.1 connections: read a head, discard a body the action
 * does not need, write the response (send, then sendfile), keep alive and
 * pipeline, time out per settings.http. Counters for /status move on every
 * transition, so they stay exact on every close path. A TLS listener's
 * connection shakes hands first (under header_read_timeout), then reads and
 * writes through OpenSSL: the same state machine, files read into a buffer
 * instead of sendfile.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "core/log.h"
#include "router/conn.h"
#include "router/h2.h"
#include "router/proxy.h"
#include "router/spool.h"
#include "tls/tls.h"

#define MS(sec)  ((uint64_t) (sec) * 1000)

static void conn_event(wr_ev_loop_t *loop, wr_ev_t *ev, uint32_t events);
static int conn_process(wr_hconn_t *c);
static void in_settle(wr_hconn_t *c);

/* ---- bookkeeping ---- */

static void set_active(wr_hconn_t *c, int active)
{
    wr_counters_t *k = &c->t->count;

    if (c->active == active)
        return;
    c->active = active;
    if (c->h2)
        return;               /* its HTTP/2 connection is what counts */
    atomic_fetch_add(&k->active, active ? 1 : -1);
    atomic_fetch_add(&k->idle, active ? -1 : 1);
}

static void want(wr_hconn_t *c, uint32_t events)
{
    if (c->h2) {
        c->events = events;
        wr_h2_vt_want(c, events);
        return;
    }
    if (c->events != events && wr_ev_mod(&c->t->loop, &c->ev, events) == 0)
        c->events = events;
}

static void release_request(wr_hconn_t *c)
{
    if (c->file >= 0)
        close(c->file);
    c->file = -1;
    wr_spool_free(c);
    c->body_whole = 0;
    c->action = NULL;
    free(c->rewritten);
    c->rewritten = NULL;
    wr_rconf_unref(c->action_conf);
    c->action_conf = NULL;
    wr_rconf_unref(c->conf);
    c->conf = NULL;
    wr_buf_free(&c->app_head);
    c->app = NULL;
    c->req_counted = 0;
    c->req_done = c->head_out = c->resp_done = c->head_only = c->chunked_out = 0;
    c->head_in_out = c->head_saved = 0;
    c->worker_out = 0;
    c->resp_started = c->app_idem = c->app_retried = 0;
    c->upgrade = c->upgrade_wait = c->tunnel = c->hopped = c->app_front = 0;
    c->app_timeout = 0;
    c->app_deadline = 0;
    c->app_max_requests = 0;
    c->out_blocked = 0;
    c->resp_unacked = 0;
    /* The response buffer goes back to the thread for the next one. */
    if (c->t->out.p == NULL) {
        c->t->out = c->out;
        wr_buf_reset(&c->t->out);
    } else {
        wr_buf_free(&c->out);
    }
    memset(&c->out, 0, sizeof(c->out));
    c->out_sent = 0;
    c->continue_left = 0;
    c->deferred = 0;
}

/* c joins t's connections (and its active or idle count). */
static void list_add(wr_thread_t *t, wr_hconn_t *c)
{
    c->prev = NULL;
    c->next = t->conn_list;
    if (t->conn_list)
        t->conn_list->prev = c;
    t->conn_list = c;
    t->conns++;
    if (!c->h2)
        atomic_fetch_add(c->active ? &t->count.active : &t->count.idle, 1);
}

static void list_remove(wr_thread_t *t, wr_hconn_t *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        t->conn_list = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static void conn_close(wr_hconn_t *c)
{
    wr_thread_t *t = c->t;

    wr_timer_cancel(&t->loop, &c->timer);
    wr_proxy_conn_closing(c);
    wr_app_conn_closing(c);
    wr_ev_retire(&t->loop, &c->ev, c);      /* freed after this batch */
    wr_tls_close(c->ssl);
    c->ssl = NULL;
    if (c->h2)
        wr_h2_vt_close(c);
    else
        close(c->ev.fd);
    release_request(c);
    if (!c->h2) {
        atomic_fetch_sub(c->active ? &t->count.active : &t->count.idle, 1);
        atomic_fetch_add(&t->count.closed, 1);
    }
    list_remove(t, c);
    if (!c->in_borrowed)
        free(c->in);
    wr_thread_conn_closed(t);
}

void wr_conn_handed_over(wr_hconn_t *c)
{
    wr_thread_t *t = c->t;

    wr_timer_cancel(&t->loop, &c->timer);
    wr_ev_retire(&t->loop, &c->ev, c);
    release_request(c);
    atomic_fetch_sub(c->active ? &t->count.active : &t->count.idle, 1);
    list_remove(t, c);
    if (!c->in_borrowed)
        free(c->in);
}

/* ---- tunnels (app_stream.c, proxy.c) ---- */

void wr_conn_tunnel(wr_hconn_t *c)
{
    c->tunnel = 1;
    c->body_left = LLONG_MAX;
    c->close_after = 1;
    c->app_timeout = 0;
    wr_conn_tunnel_clock(c);
}

void wr_conn_tunnel_clock(wr_hconn_t *c)
{
    int seconds = c->conf->settings.ws_read_timeout;

    if (seconds > 0)
        wr_conn_arm(c, seconds);
    else
        wr_timer_cancel(&c->t->loop, &c->timer);
}

/* ---- moving a connection to another thread (app.c) ---- */

/*
 * The struct itself does not move: an event for it may still wait in this
 * thread's current batch, so the old one is retired (such an event is
 * skipped, the memory freed after the batch) and a copy goes over. Nothing
 * else points at c while it waits to hop: it is in no worker's slot and in
 * no generation's queue.
 */
void wr_conn_hop(wr_hconn_t *c)
{
    wr_thread_t *from = c->t, *to = c->hop_to;
    wr_hconn_t *n = malloc(sizeof(*n));

    c->hop_to = NULL;
    c->hopped = 1;
    if (n == NULL) {                        /* stay, and wait here */
        wr_log(WR_LOG_CRIT, "out of memory moving a connection to another thread");
        c->state = WR_HC_APP;
        wr_app_begin(c);
        return;
    }
    in_settle(c);
    wr_timer_cancel(&from->loop, &c->timer);
    *n = *c;
    wr_ev_retire(&from->loop, &c->ev, c);   /* out of this epoll */
    list_remove(from, c);
    if (!c->h2)
        atomic_fetch_sub(c->active ? &from->count.active : &from->count.idle, 1);
    n->ev.data = n;
    n->timer.data = n;
    n->timer.slot = 0;
    n->prev = n->next = NULL;
    pthread_mutex_lock(&to->inbox_lock);
    n->app_next = to->hop_in;
    to->hop_in = n;
    pthread_mutex_unlock(&to->inbox_lock);
    wr_thread_wake(to);
    wr_thread_conn_closed(from);            /* one connection fewer here */
}

/* c, moved here by another thread: into this epoll and lists, then on to a
 * worker of this thread (it hops once per request). */
void wr_conn_adopt(wr_thread_t *t, wr_hconn_t *c)
{
    c->t = t;
    c->id = ++t->next_conn_id;
    list_add(t, c);
    if (wr_ev_add(&t->loop, &c->ev, c->events) < 0) {
        conn_close(c);
        return;
    }
    c->state = WR_HC_APP;
    wr_app_begin(c);
}

/* Connections moved to t after its loop ended (it was let go meanwhile):
 * closed, as its own were. */
void wr_conn_drop_moved(wr_thread_t *t)
{
    wr_hconn_t *c;

    pthread_mutex_lock(&t->inbox_lock);
    c = t->hop_in;
    t->hop_in = NULL;
    pthread_mutex_unlock(&t->inbox_lock);
    while (c != NULL) {
        wr_hconn_t *next = c->app_next;

        c->t = t;
        wr_tls_close(c->ssl);
        close(c->ev.fd);
        release_request(c);
        free(c->in);
        if (!c->h2)
            atomic_fetch_add(&t->count.closed, 1);
        free(c);
        c = next;
    }
}

void wr_conn_close_idle(wr_thread_t *t)
{
    wr_hconn_t *c = t->conn_list, *next;

    for (; c; c = next) {
        next = c->next;
        if (c->state == WR_HC_IDLE && c->in_len == 0 && !c->h2)
            conn_close(c);
        else
            c->close_after = 1;
    }
}

static void on_timeout(wr_ev_loop_t *loop, wr_timer_t *tm)
{
    wr_hconn_t *c = tm->data;

    /* A request that started but did not finish in time gets a 408. */
    if (c->state == WR_HC_HEAD && c->in_len > 0) {
        c->close_after = 1;
        wr_respond_error(c, 408);
        conn_process(c);
        return;
    }
    if (c->state == WR_HC_PROXY) {
        wr_proxy_timeout(c);
        return;
    }
    if (c->state == WR_HC_SPOOL) {
        wr_spool_timeout(c);
        return;
    }
    /* An application that took longer than its limits.timeout. */
    if ((c->state == WR_HC_APP || c->state == WR_HC_APP_WAIT) && c->app_timeout > 0
        && !c->out_blocked) {
        wr_app_timeout(c);
        return;
    }
    conn_close(c);
}

static void arm(wr_hconn_t *c, int seconds)
{
    wr_timer_set(&c->t->loop, &c->timer, MS(seconds));
}

/* The TLS side of listener l in the thread's configuration, or NULL. */
static struct wr_tls_server *listener_tls(wr_thread_t *t, wr_listener_t *l)
{
    for (size_t i = 0; i < t->conf->nlisten; i++)
        if (t->conf->listen[i].sock == l)
            return t->conf->listen[i].tls;
    return NULL;
}

/* A connection on fd, not yet in the loop. */
static wr_hconn_t *conn_new(wr_thread_t *t, wr_listener_t *l, int fd)
{
    wr_hconn_t *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        wr_log(WR_LOG_CRIT, "out of memory accepting a connection on %s", l->addr);
        return NULL;
    }
    c->t = t;
    c->l = l;
    c->id = ++t->next_conn_id;
    c->file = -1;
    c->ev.fd = fd;
    c->ev.cb = conn_event;
    c->ev.data = c;
    c->timer.cb = on_timeout;
    c->timer.data = c;
    c->state = WR_HC_IDLE;
    return c;
}

/* c into the loop and the thread's connections: 0, or -1 (c is not). A
 * stream's connection has no fd: h2.c posts its events. */
static int conn_join(wr_thread_t *t, wr_hconn_t *c)
{
    if (!c->h2 && wr_ev_add(&t->loop, &c->ev, EPOLLIN | EPOLLRDHUP) < 0)
        return -1;
    c->events = EPOLLIN | EPOLLRDHUP;
    list_add(t, c);
    arm(c, t->conf->settings.header_read_timeout);
    return 0;
}

wr_hconn_t *wr_conn_stream(wr_thread_t *t, wr_listener_t *l, struct wr_h2_stream *vt,
                           const struct sockaddr_storage *peer,
                           const struct sockaddr_storage *local, int tls)
{
    wr_hconn_t *c = conn_new(t, l, -1);

    if (c == NULL)
        return NULL;
    c->h2 = 1;
    c->h2_tls = tls != 0;
    c->vt = vt;
    c->peer = *peer;
    c->local = *local;
    conn_join(t, c);
    return c;
}

void wr_conn_accepted(wr_thread_t *t, wr_listener_t *l, int fd)
{
    wr_hconn_t *c = conn_new(t, l, fd);
    struct wr_tls_server *tls = listener_tls(t, l);
    socklen_t len;

    if (c == NULL) {
        close(fd);
        return;
    }
    if (tls != NULL) {
        /* A response is a train of records, each its own write: without
         * NODELAY the last short one waits for the client's delayed ACK. */
        int one = 1;
        if (!l->unix_sock && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
            wr_log_sys(WR_LOG_WARN, "setsockopt(TCP_NODELAY)", l->addr);
        c->ssl = wr_tls_accept(tls, fd);
        if (c->ssl == NULL) {
            close(fd);
            free(c);
            return;
        }
        c->handshake = 1;
    }
    len = sizeof(c->peer);
    getpeername(fd, (struct sockaddr *) &c->peer, &len);
    len = sizeof(c->local);
    getsockname(fd, (struct sockaddr *) &c->local, &len);
    if (conn_join(t, c) < 0) {
        wr_tls_close(c->ssl);
        close(fd);
        free(c);
        return;
    }
    atomic_fetch_add(&t->count.accepted, 1);
}

/* ---- reading ---- */

/*
 * Room to read into, at least `need` bytes. A connection with nothing
 * pending reads into its thread's buffer; only bytes that must wait for
 * more (a partial head, a pipelined rest) are copied into a buffer of its
 * own, by in_settle(). The parser bounds a head, and a body is read only
 * while it is wanted, so an own buffer grows only as far as that.
 */
static int in_reserve(wr_hconn_t *c, size_t need)
{
    wr_thread_t *t = c->t;
    size_t cap;
    char *p;

    if (c->in == NULL) {
        if (t->rbuf == NULL) {
            t->rbuf = malloc(WR_THREAD_RBUF);
            if (t->rbuf == NULL)
                return -1;
            t->rbuf_cap = WR_THREAD_RBUF;
        }
        c->in = t->rbuf;
        c->in_cap = t->rbuf_cap;
        c->in_len = 0;
        c->in_borrowed = 1;
    }
    if (c->in_cap - c->in_len >= need)
        return 0;
    cap = c->in_cap * 2;
    while (cap - c->in_len < need)
        cap *= 2;
    if (c->in_borrowed) {
        p = malloc(cap);
        if (p != NULL)
            memcpy(p, c->in, c->in_len);
    } else {
        p = realloc(c->in, cap);
    }
    if (p == NULL)
        return -1;
    c->in = p;
    c->in_cap = cap;
    c->in_borrowed = 0;
    return 0;
}

/* Before the thread moves on: keep (a copy of) what is still pending. */
static void in_settle(wr_hconn_t *c)
{
    size_t cap;
    char *p;

    if (!c->in_borrowed)
        return;
    c->in_borrowed = 0;
    if (c->in_len == 0) {
        c->in = NULL;
        c->in_cap = 0;
        return;
    }
    cap = c->in_len > WR_CONN_READ_MIN ? c->in_len : WR_CONN_READ_MIN;
    p = malloc(cap);
    if (p == NULL) {
        wr_log(WR_LOG_CRIT, "out of memory keeping a partial request");
        c->in = NULL;
        c->in_len = c->in_cap = 0;
        c->close_after = 1;
        return;
    }
    memcpy(p, c->in, c->in_len);
    c->in = p;
    c->in_cap = cap;
}

/* A request body is going on, as it comes, to an app or an upstream. */
static int streaming_body(const wr_hconn_t *c)
{
    return (c->state == WR_HC_APP || c->state == WR_HC_PROXY) && c->body_left > 0;
}

/* Read what is there: 1 got bytes, 2 got bytes and the socket is likely
 * drained (a short read), 0 nothing now, -1 closed or failed. */
static int conn_read(wr_hconn_t *c)
{
    size_t room;
    ssize_t n;

    /* TLS: room for a whole record, so none stays half read inside OpenSSL,
     * where no epoll event would announce it. A body going on to an app or
     * an upstream: room for a piece worth a message, not the rest of a
     * head-sized buffer (about 1 KB read, and sent on, at a time). */
    if (in_reserve(c, c->ssl ? WR_TLS_RECORD_MAX
                             : streaming_body(c) ? WR_CONN_BODY_READ : 1) < 0)
        return -1;
    room = c->in_cap - c->in_len;
    n = wr_conn_recv(c, c->in + c->in_len, room);
    if (n > 0) {
        c->in_len += (size_t) n;
        return (size_t) n < room ? 2 : 1;
    }
    if (n < 0 && errno == EAGAIN)
        return 0;
    return -1;
}

/* Drop bytes of the body being discarded: 1 when the body is all gone,
 * 0 for more, -1 for a broken chunked body (the connection must close).
 * The response is already built, so the head bytes go too: the buffer
 * never grows while a large body streams through. */
static int discard_body(wr_hconn_t *c)
{
    size_t avail = c->in_len - c->consumed, used, out;
    int rc;

    if (!c->chunked) {
        used = (long long) avail < c->body_left ? avail : (size_t) c->body_left;
        c->body_left -= (long long) used;
        rc = c->body_left == 0;
    } else {
        rc = wr_http_chunked_decode(&c->chunk, c->in + c->consumed, avail, &used, &out);
    }
    c->consumed += used;
    memmove(c->in, c->in + c->consumed, c->in_len - c->consumed);
    c->in_len -= c->consumed;
    c->consumed = 0;
    return rc < 0 ? -1 : rc;
}

/* A head is complete: set up the body and produce the response. */
static void start_request(wr_hconn_t *c, long head_len)
{
    wr_http_request_t *req = &c->t->req;
    wr_rconf_t *conf = c->t->conf;
    int closing = c->close_after;

    c->used = 1;
    c->head_len = (size_t) head_len;
    c->consumed = (size_t) head_len;
    c->keep_alive = req->keep_alive && !c->close_after && !atomic_load(&c->t->draining);
    c->conf = conf;
    wr_rconf_ref(conf);
    c->body_left = req->content_length > 0 ? req->content_length : 0;
    c->chunked = req->chunked;
    c->v10 = req->version == WR_HTTP_10;
    c->upgrade = req->upgrade;

    if (req->content_length > conf->settings.max_body_size) {
        c->close_after = 1;
        wr_respond_error(c, 413);
        return;
    }
    if (c->chunked)
        wr_http_chunked_init(&c->chunk, conf->settings.max_body_size);
    /* The client waits for "100 Continue" before sending a body we do not
     * need: answer now and close, so nothing is left half-sent. */
    if ((c->body_left > 0 || c->chunked) && req->expect_continue)
        c->close_after = 1;
    /* A body to read past first: the answer waits, and its log line too
     * (respond.c), so a broken body is logged once, as what was sent. */
    c->deferred = (c->body_left > 0 || c->chunked) && !c->close_after;
    wr_respond_request(c, req);
    if (c->body_whole || c->app != NULL || c->proxy != NULL) {
        /* The body is wanted after all: nothing to discard, and the
         * connection may stay open. */
        c->deferred = 0;
        c->close_after = closing;
        c->head_only = req->method_len == 4 && memcmp(req->method, "HEAD", 4) == 0;
    }
    if (c->body_whole) {
        /* An upstream gets a Content-Length: the body is read first. */
        wr_spool_begin(c, req->expect_continue);
        return;
    }
    /* A worker or an upstream reads the body: the client may send it now. */
    if ((c->app != NULL || c->proxy != NULL) && (c->body_left > 0 || c->chunked)
        && req->expect_continue && !c->v10)
        wr_conn_continue(c);
    if (c->app != NULL) {
        wr_app_begin(c);      /* the body goes to the worker, not away */
        return;
    }
    if (c->proxy != NULL) {
        wr_proxy_begin(c);    /* the body goes upstream */
        return;
    }
    if (c->close_after)
        c->deferred = 0;      /* logged already: the body is not read */
}

static void parse_head(wr_hconn_t *c)
{
    wr_http_limits_t lim = c->t->conf->limits;
    long n;

    lim.h2 = c->h2;
    n = wr_http_parse_request(&c->t->req, c->in, c->in_len, &lim);

    if (n == 0)
        return;
    if (n < 0) {
        c->close_after = 1;
        wr_respond_error(c, (int) -n);
        return;
    }
    start_request(c, n);
}

/* ---- writing ---- */

ssize_t wr_conn_recv(wr_hconn_t *c, void *buf, size_t len)
{
    ssize_t n;

    if (c->ssl != NULL)
        return wr_tls_read(c->ssl, buf, len);
    if (c->h2)
        return wr_h2_vt_recv(c, buf, len);
    do
        n = recv(c->ev.fd, buf, len, 0);
    while (n < 0 && errno == EINTR);
    return n;
}

ssize_t wr_conn_send(wr_hconn_t *c, const void *buf, size_t len, int more)
{
    ssize_t n;

    if (c->ssl != NULL)
        return wr_tls_write(c->ssl, buf, len);
    if (c->h2)
        return wr_h2_vt_send(c, buf, len);
    do
        n = send(c->ev.fd, buf, len, MSG_NOSIGNAL | (more ? MSG_MORE : 0));
    while (n < 0 && errno == EINTR);
    return n;
}

/* Part of the file through a buffer (TLS, an HTTP/2 stream: no sendfile).
 * Read at file_off each time, so a write retried after EAGAIN gets the same
 * bytes again. */
static ssize_t file_copy(wr_hconn_t *c)
{
    wr_thread_t *t = c->t;
    off_t left = c->file_end - c->file_off;
    size_t want = left < WR_TLS_FILE_CHUNK ? (size_t) left : WR_TLS_FILE_CHUNK;
    ssize_t n;

    if (t->fbuf == NULL && (t->fbuf = malloc(WR_TLS_FILE_CHUNK)) == NULL)
        return -1;
    do
        n = pread(c->file, t->fbuf, want, c->file_off);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return n < 0 ? -1 : 0;
    n = wr_conn_send(c, t->fbuf, (size_t) n, 0);
    if (n > 0)
        c->file_off += n;
    return n;
}

/* The rest of a "100 Continue": 1 sent, 0 would block, -1 failed. */
static int continue_flush(wr_hconn_t *c)
{
    static const char text[] = WR_HTTP_CONTINUE;

    while (c->continue_left > 0) {
        ssize_t n = wr_conn_send(c, text + sizeof(text) - 1 - c->continue_left,
                                 c->continue_left, 0);
        if (n < 0)
            return errno == EAGAIN ? 0 : -1;
        c->continue_left -= (unsigned char) n;
    }
    return 1;
}

void wr_conn_continue(wr_hconn_t *c)
{
    c->continue_left = sizeof(WR_HTTP_CONTINUE) - 1;
    (void) continue_flush(c);          /* what is left goes first, in conn_write */
}

/* 1 all sent, 0 would block, -1 failed. */
static int conn_write(wr_hconn_t *c)
{
    int rc = continue_flush(c);

    if (rc <= 0)
        return rc;
    while (c->out_sent < c->out.n) {
        ssize_t n = wr_conn_send(c, c->out.p + c->out_sent, c->out.n - c->out_sent,
                                 c->file >= 0);
        if (n < 0)
            return errno == EAGAIN ? 0 : -1;
        c->out_sent += (size_t) n;
    }
    while (c->file >= 0 && c->file_off < c->file_end) {
        ssize_t n = c->ssl || c->h2 ? file_copy(c)
                           : sendfile(c->ev.fd, c->file, &c->file_off,
                                      (size_t) (c->file_end - c->file_off));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return errno == EAGAIN ? 0 : -1;
        }
        if (n == 0)
            return -1;         /* the file shrank under us */
    }
    return 1;
}

/* The response is out: next request, idle, or close. */
static void finish_response(wr_hconn_t *c)
{
    wr_thread_t *t = c->t;
    size_t rest = c->in_len - c->consumed;

    release_request(c);
    if (c->close_after || !c->keep_alive || atomic_load(&t->draining)) {
        if (c->ssl != NULL)
            wr_tls_shutdown(c->ssl);
        if (c->h2)
            wr_h2_vt_shutdown(c);
        else
            shutdown(c->ev.fd, SHUT_WR);
        c->state = WR_HC_LINGER;
        c->in_len = 0;
        want(c, EPOLLIN | EPOLLRDHUP);
        wr_timer_set(&t->loop, &c->timer, WR_LINGER_MS);
        return;
    }
    /* Pipelined bytes move to the front; an empty buffer is freed so idle
     * connections cost only their struct. */
    if (rest > 0) {
        memmove(c->in, c->in + c->consumed, rest);
    } else {
        if (!c->in_borrowed)
            free(c->in);
        c->in = NULL;
        c->in_cap = 0;
        c->in_borrowed = 0;
    }
    c->in_len = rest;
    c->consumed = 0;
    c->state = WR_HC_IDLE;
    set_active(c, 0);
    want(c, EPOLLIN | EPOLLRDHUP);
    arm(c, t->conf->settings.idle_timeout);
}

/* ---- what app.c uses ---- */

int wr_conn_read(wr_hconn_t *c)
{
    return conn_read(c);
}

int wr_conn_flush(wr_hconn_t *c)
{
    return conn_write(c);
}

void wr_conn_done(wr_hconn_t *c)
{
    finish_response(c);
    if (c->state == WR_HC_IDLE && c->in_len > 0)
        conn_process(c);
}

void wr_conn_abort(wr_hconn_t *c)
{
    conn_close(c);
}

/*
 * An answer cut short by its source (the app gave up, died or timed out;
 * the upstream broke). What it sent before is the client's: the buffered
 * bytes go out as far as the socket takes them now, never waiting, and
 * the connection ends, which tells the client the answer is incomplete
 * (no last chunk, or fewer bytes than its Content-Length).
 */
void wr_conn_cut(wr_hconn_t *c)
{
    if (!c->h2 && c->out_sent < c->out.n)
        (void) conn_write(c);
    conn_close(c);
}

void wr_conn_fail(wr_hconn_t *c, int status)
{
    c->close_after = 1;
    c->state = WR_HC_WRITE;
    wr_respond_error(c, status);
    if (wr_conn_flush(c) != 0)
        wr_conn_done(c);
    else
        wr_conn_want(c, EPOLLOUT);
}

void wr_conn_want(wr_hconn_t *c, uint32_t events)
{
    want(c, events);
}

void wr_conn_arm(wr_hconn_t *c, int seconds)
{
    arm(c, seconds);
}

/* ---- the state machine ---- */

/* Move c as far as its bytes allow. Returns -1 when c was closed (freed). */
static int conn_process(wr_hconn_t *c)
{
    wr_rconf_t *conf;

    for (;;) {
        conf = c->conf ? c->conf : c->t->conf;
        switch (c->state) {
        case WR_HC_IDLE:
            if (c->in_len == 0)
                return 0;
            if (!c->used && c->ssl == NULL && !c->h2 && conf->settings.http2) {
                /* HTTP/2 with prior knowledge: the preface, or the start of it. */
                size_t n = c->in_len < WR_H2_PREFACE_LEN ? c->in_len : WR_H2_PREFACE_LEN;
                if (memcmp(c->in, WR_H2_PREFACE, n) == 0) {
                    if (n < WR_H2_PREFACE_LEN)
                        return 0;
                    wr_h2_start(c);
                    return -1;
                }
            }
            c->state = WR_HC_HEAD;
            set_active(c, 1);
            /* A request's time ($request_time, metrics) runs from its first byte. */
            clock_gettime(CLOCK_REALTIME, &c->start);
            arm(c, conf->settings.header_read_timeout);
            /* fall through */
        case WR_HC_HEAD:
            if (c->out.n == 0)
                parse_head(c);
            if (c->state == WR_HC_APP || c->state == WR_HC_APP_WAIT
                || c->state == WR_HC_PROXY || c->state == WR_HC_SPOOL)
                return 0;                     /* app.c / proxy.c has it now */
            if (c->state == WR_HC_LINGER)
                return 0;
            if (c->out.n == 0)
                return 0;                     /* need more bytes */
            if (c->deferred) {
                c->state = WR_HC_BODY;
                arm(c, conf->settings.body_read_timeout);
                continue;
            }
            c->state = WR_HC_WRITE;
            arm(c, conf->settings.send_timeout);
            continue;
        case WR_HC_BODY: {
            int rc = discard_body(c);
            if (rc == 0) {
                /* body_read_timeout is the longest pause between reads. */
                arm(c, conf->settings.body_read_timeout);
                return 0;
            }
            if (rc < 0) {
                /* A broken or oversized chunked body replaces the answer. */
                if (c->file >= 0)
                    close(c->file);
                c->file = -1;
                c->close_after = 1;
                wr_respond_body_error(c, c->chunk.error < 0 ? -c->chunk.error : 400);
            } else {
                wr_respond_log_deferred(c);
            }
            c->state = WR_HC_WRITE;
            arm(c, conf->settings.send_timeout);
            continue;
        }
        case WR_HC_WRITE: {
            int rc = conn_write(c);
            if (rc < 0) {
                conn_close(c);
                return -1;
            }
            if (rc == 0) {
                /* send_timeout is the longest pause between writes. */
                arm(c, conf->settings.send_timeout);
                want(c, EPOLLOUT);
                return 0;
            }
            finish_response(c);
            if (c->state == WR_HC_LINGER)
                return 0;
            continue;
        }
        case WR_HC_LINGER:
        case WR_HC_PROXY:
        case WR_HC_SPOOL:
        case WR_HC_APP_WAIT:
        case WR_HC_APP:
            return 0;
        }
    }
}

/* TLS: 1 the handshake is over, 0 it goes on, -1 c was closed. */
static int handshake(wr_hconn_t *c)
{
    char why[WR_TLS_WHY_MAX], host[WR_ADDR_TEXT], port[WR_PORT_TEXT];
    int want_write = 0;
    int rc = wr_tls_handshake(c->ssl, &want_write, why, sizeof(why));

    if (rc < 0) {
        atomic_fetch_add(&c->t->count.tls_failed, 1);
        wr_addr_text((const struct sockaddr *) &c->peer, host, port);
        wr_log(WR_LOG_INFO, "client %s%s%s on %s: %s", host, port[0] ? ":" : "", port,
               c->l->addr, why);
        conn_close(c);
        return -1;
    }
    if (rc == 0) {
        want(c, want_write ? EPOLLOUT : EPOLLIN | EPOLLRDHUP);
        return 0;
    }
    c->handshake = 0;
    if (wr_tls_alpn_h2(c->ssl)) {
        wr_h2_start(c);
        return -1;
    }
    want(c, EPOLLIN | EPOLLRDHUP);
    return 1;
}

/* Handle one readiness event. Returns -1 when c was closed. */
static int conn_handle(wr_hconn_t *c, uint32_t events)
{
    int r;

    if (c->handshake && (r = handshake(c)) <= 0)
        return r;
    if (c->state == WR_HC_APP || c->state == WR_HC_APP_WAIT) {
        wr_app_on_client(c, events);
        return 0;            /* app.c settles c itself (it may be closed) */
    }
    if (c->state == WR_HC_PROXY) {
        wr_proxy_on_client(c, events);
        return 1;            /* settled only if still open */
    }
    if (c->state == WR_HC_SPOOL) {
        wr_spool_on_client(c, events);
        return 1;            /* it may have gone on to proxy.c, or closed */
    }
    if (c->state == WR_HC_WRITE) {
        if (events & (EPOLLERR | EPOLLHUP)) {
            conn_close(c);
            return -1;
        }
        return conn_process(c);
    }
    if (c->state == WR_HC_LINGER) {
        /* Read and drop until the client closes or the linger timer ends. */
        while ((r = conn_read(c)) > 0)
            c->in_len = 0;
        if (r < 0) {
            conn_close(c);
            return -1;
        }
        return 0;
    }
    /* The head limit is enforced by the parser (414/431 before the buffer
     * outgrows header_buffers * size); a body is discarded as it comes. */
    while ((r = conn_read(c)) > 0) {
        if (conn_process(c) < 0)
            return -1;
        if (c->state == WR_HC_WRITE || c->state == WR_HC_LINGER)
            return 0;
        if (c->state == WR_HC_APP || c->state == WR_HC_APP_WAIT
            || c->state == WR_HC_PROXY || c->state == WR_HC_SPOOL)
            return 1;        /* app.c / proxy.c took it: maybe closed already */
        /* Epoll is level-triggered: after a short read, waiting for the
         * next event costs nothing and saves a recv() that would say EAGAIN. */
        if (r == 2)
            return 0;
    }
    if (r < 0) {
        conn_close(c);      /* closed mid-request or between requests */
        return -1;
    }
    return 0;
}

static void conn_event(wr_ev_loop_t *loop, wr_ev_t *ev, uint32_t events)
{
    wr_hconn_t *c = ev->data;
    uint64_t id = c->id;
    int rc = conn_handle(c, events);

    /* app.c may have closed c: its memory stays until the batch ends, but
     * its ev is retired (cb NULL) then. */
    if (rc == 0 || (rc == 1 && c->ev.cb != NULL && c->id == id))
        in_settle(c);
}
