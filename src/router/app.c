/*
 * Requests to applications: a connection takes an idle worker of the app's
 * generation (or waits in its queue), sends the request head and body over
 * the worker's channel within the worker's window, and writes the response
 * back, granting the worker more window only as the client takes the bytes:
 * memory per request stays bounded both ways (src/lib/proto.h).
 *
 * Idle workers belong to their generation, in no epoll. The thread whose
 * connection takes one adds it to its own epoll. A worker freed while
 * connections of the same thread wait goes straight to the next of them,
 * still in that epoll: under load a worker stays with one thread, and a
 * request costs no epoll_ctl and no wake-up of another thread. Otherwise
 * it leaves the epoll and is handed to the first waiter's thread through
 * its inbox (the thread's eventfd wakes it), or goes idle.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <signal.h>
#include <poll.h>
#include <sys/socket.h>

#include "core/log.h"
#include "lib/proto.h"
#include "router/conn.h"
#include "router/proxy.h"
#include "router/worker_proto.h"

#define WR_APP_RESP_FIELDS  128     /* response fields a worker may send */
#define WR_APP_GRANT_MIN    (WR_APP_WINDOW_INIT / 4)  /* batch WINDOW messages */
#define WR_CL_DIGITS_MAX    18      /* a Content-Length that fits a long long */
/* How many times a freed worker may serve a later waiter of its own thread
 * before the head of the queue (another thread's): bounds the wait the
 * preference adds. */
#define WR_APP_SKIPS_MAX    8
#define WR_HTTP_ADDR_WAIT_MS 1000   /* an HTTP worker's address, after its hello */

/* ---- generations (registry: the control thread's) ---- */

wr_appgen_t *wr_appgen_find(wr_router_t *r, uint32_t gen, const char *name, int create)
{
    wr_appgen_t *g;

    for (size_t i = 0; i < r->ngens; i++)
        if (r->gens[i]->gen == gen)
            return r->gens[i];
    if (!create)
        return NULL;
    if (r->ngens == r->capgens) {
        size_t cap = r->capgens ? r->capgens * 2 : 8;
        wr_appgen_t **v = realloc(r->gens, cap * sizeof(*v));
        if (v == NULL)
            return NULL;
        r->gens = v;
        r->capgens = cap;
    }
    g = calloc(1, sizeof(*g));
    if (g == NULL || (g->name = strdup(name)) == NULL) {
        free(g);
        return NULL;
    }
    atomic_init(&g->refs, 1);           /* the registry's */
    g->router = r;
    g->gen = gen;
    pthread_mutex_init(&g->lock, NULL);
    r->gens[r->ngens++] = g;
    return g;
}

static void worker_close(wr_worker_t *w)
{
    wr_app_scale_release(w);              /* main closes the channel */
    free(w->http);
    free(w);
}

void wr_appgen_unref(wr_appgen_t *g)
{
    if (g == NULL || atomic_fetch_sub(&g->refs, 1) != 1)
        return;
    while (g->idle) {
        wr_worker_t *w = g->idle;
        g->idle = w->next;
        worker_close(w);
    }
    pthread_mutex_destroy(&g->lock);
    free(g->name);
    free(g);
}

static void discard(wr_worker_t *w);

/* w NULL: no worker will come (the generation was retired). */
static void post_handoff(wr_thread_t *t, wr_worker_t *w, uint64_t conn_id)
{
    wr_handoff_t *h = malloc(sizeof(*h));
    uint64_t one = 1;

    if (h == NULL) {
        wr_log(WR_LOG_CRIT, "out of memory handing a worker over");
        if (w)
            discard(w);
        return;
    }
    h->w = w;
    h->conn_id = conn_id;
    pthread_mutex_lock(&t->inbox_lock);
    h->next = t->inbox;
    t->inbox = h;
    pthread_mutex_unlock(&t->inbox_lock);
    if (write(t->notify.fd, &one, sizeof(one)) < 0)
        wr_log_sys(WR_LOG_ERR, "write", "router thread eventfd");
}

/* A worker is free: to the first waiter, or to the idle list. Called with
 * g->lock held. */
static void give_locked(wr_appgen_t *g, wr_worker_t *w)
{
    wr_waiter_t *q;

    w->conn = NULL;
    if (g->retired) {
        g->nworkers--;
        worker_close(w);
        return;
    }
    q = g->qhead;
    if (q != NULL) {
        g->qhead = q->next;
        if (g->qhead == NULL)
            g->qtail = NULL;
        g->qlen--;
        post_handoff(q->t, w, q->conn_id);
        free(q);
        return;
    }
    w->idle_since = wr_ev_now();          /* for idle_timeout (app_scale.c) */
    w->next = g->idle;
    g->idle = w;
}

static void give(wr_worker_t *w)
{
    wr_appgen_t *g = w->gen;

    pthread_mutex_lock(&g->lock);
    give_locked(g, w);
    pthread_mutex_unlock(&g->lock);
}

/* A worker whose stream state is unknown (mid-request): never reused. */
static void discard(wr_worker_t *w)
{
    wr_appgen_t *g = w->gen;

    pthread_mutex_lock(&g->lock);
    g->nworkers--;
    pthread_mutex_unlock(&g->lock);
    worker_close(w);
}

/* An idle worker's channel still open? (Stale bytes of its last stream may
 * be waiting: they are ignored when it serves next.) */
static int alive(wr_worker_t *w)
{
    char byte;
    ssize_t n = recv(w->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);

    return n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR));
}

/* Close the channels of idle workers that died (main replaces them). */
void wr_appgen_sweep(wr_router_t *r)
{
    for (size_t i = 0; i < r->ngens; i++) {
        wr_appgen_t *g = r->gens[i];
        wr_worker_t **p;

        pthread_mutex_lock(&g->lock);
        for (p = &g->idle; *p; ) {
            wr_worker_t *w = *p;
            if (alive(w)) {
                p = &w->next;
                continue;
            }
            *p = w->next;
            g->nworkers--;
            worker_close(w);
        }
        pthread_mutex_unlock(&g->lock);
    }
}

/* An HTTP worker's prototype sends where it listens right after its hello
 * (src/lib/proto.h WR_APP_HTTP_ADDR); main may have passed the channel on
 * before that second message was written. wait_ms: how long to wait for
 * it (0: only look); it comes at once unless the prototype died. */
static void http_address(wr_worker_t *w, int wait_ms)
{
    char buf[sizeof(wr_app_hdr_t) + sizeof(struct sockaddr_storage)];
    wr_app_hdr_t h;
    struct pollfd pfd = { .fd = w->fd, .events = POLLIN };
    ssize_t n;

    if (wait_ms > 0 && poll(&pfd, 1, wait_ms) <= 0)
        return;
    n = recv(w->fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_PEEK);
    if (n < (ssize_t) sizeof(h))
        return;
    memcpy(&h, buf, sizeof(h));
    if (h.type != WR_APP_HTTP_ADDR || h.len != (size_t) n - sizeof(h)
        || (w->http = calloc(1, sizeof(*w->http))) == NULL)
        return;
    if (recv(w->fd, buf, sizeof(buf), MSG_DONTWAIT) != n) {
        free(w->http);
        w->http = NULL;
        return;
    }
    memcpy(&w->http->sa, buf + sizeof(h), h.len);
    w->http->len = (socklen_t) h.len;
}

void wr_appgen_add_worker(wr_appgen_t *g, int fd, pid_t pid, uint32_t id,
                          uint32_t streams)
{
    wr_worker_t *w = calloc(1, sizeof(*w));

    if (w == NULL) {
        close(fd);
        return;
    }
    w->gen = g;
    w->fd = fd;
    w->pid = pid;
    w->id = id;
    w->streams = streams;
    http_address(w, 0);
    pthread_mutex_lock(&g->lock);
    g->nworkers++;
    give_locked(g, w);
    pthread_mutex_unlock(&g->lock);
}

void wr_appgen_retire(wr_router_t *r, uint32_t gen)
{
    wr_appgen_t *g = NULL;
    size_t i;

    for (i = 0; i < r->ngens; i++) {
        if (r->gens[i]->gen == gen) {
            g = r->gens[i];
            break;
        }
    }
    if (g == NULL)
        return;
    r->gens[i] = r->gens[--r->ngens];
    /* Idle channels close now (their workers see EOF and exit); busy ones
     * when their request ends (give_locked). Waiters are answered 503 by
     * their threads when the config that dropped the app took effect. */
    pthread_mutex_lock(&g->lock);
    g->retired = 1;
    while (g->qhead) {                    /* not here: a newer generation or 503 */
        wr_waiter_t *q = g->qhead;
        g->qhead = q->next;
        post_handoff(q->t, NULL, q->conn_id);
        free(q);
    }
    g->qtail = NULL;
    g->qlen = 0;
    while (g->idle) {
        wr_worker_t *w = g->idle;
        g->idle = w->next;
        g->nworkers--;
        worker_close(w);
    }
    pthread_mutex_unlock(&g->lock);
    wr_appgen_unref(g);
}

/* Unit's /status/applications/NAME: processes running, starting, idle;
 * requests active (being served or waiting for a worker). */
json_t *wr_appgen_status(wr_appgen_t *g)
{
    int idle = 0, running, queued, starting;

    pthread_mutex_lock(&g->lock);
    for (wr_worker_t *w = g->idle; w; w = w->next)
        idle++;
    running = g->nworkers;
    queued = g->qlen;
    starting = g->starting;
    pthread_mutex_unlock(&g->lock);
    return json_pack("{s:{s:i,s:i,s:i},s:{s:i}}",
                     "processes", "running", running, "starting", starting, "idle", idle,
                     "requests", "active", running - idle + queued);
}

/* ---- one exchange ---- */

static void worker_event(wr_ev_loop_t *loop, wr_ev_t *ev, uint32_t events);
static void fail(wr_hconn_t *c, int status);

static int send_msg_flags(wr_worker_t *w, uint16_t type, uint16_t flags, uint32_t stream,
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

static int send_msg(wr_worker_t *w, uint16_t type, uint32_t stream, const void *p, size_t n)
{
    return send_msg_flags(w, type, 0, stream, p, n);
}

/* A new stream id for each request: a late message of the worker's
 * previous request (an ABORT after its END) can never match the next one. */
static uint32_t stream_of(const wr_hconn_t *c)
{
    return c->stream;
}

/* Take w out of this thread's epoll. An event for it may still wait in
 * the batch: the ev is retired (skipped, freed after the batch); the
 * worker itself may be taken by another thread right away. */
static void unhome(wr_thread_t *t, wr_worker_t *w)
{
    if (w->ev == NULL)
        return;
    wr_ev_retire(&t->loop, w->ev, w->ev);
    w->ev = NULL;
}

/* The first waiter of thread t, out of the queue, if t may go before the
 * head (WR_APP_SKIPS_MAX); NULL otherwise. Called with g->lock held. */
static wr_waiter_t *take_own_waiter(wr_appgen_t *g, wr_thread_t *t)
{
    wr_waiter_t **p, *q;

    if (g->qhead != g->skip_head) {
        g->skip_head = g->qhead;
        g->skips = 0;
    }
    for (p = &g->qhead; (q = *p) != NULL; p = &q->next) {
        if (q->t != t)
            continue;
        if (q != g->qhead && g->skips >= WR_APP_SKIPS_MAX)
            return NULL;
        if (q != g->qhead)
            g->skips++;
        *p = q->next;
        if (g->qtail == q) {
            g->qtail = NULL;
            for (wr_waiter_t *x = g->qhead; x; x = x->next)
                g->qtail = x;
        }
        g->qlen--;
        return q;
    }
    return NULL;
}

static void attach(wr_hconn_t *c, wr_worker_t *w);
static wr_hconn_t *waiting_take(wr_thread_t *t, uint64_t conn_id);

/* A worker this thread is done with: to a waiting connection of the same
 * thread while still in its epoll, else out of it and on (give). */
static void pass_on(wr_thread_t *t, wr_worker_t *w)
{
    wr_appgen_t *g = w->gen;
    wr_waiter_t *q = NULL;
    wr_hconn_t *next = NULL;

    pthread_mutex_lock(&g->lock);
    if (!g->retired)
        q = take_own_waiter(g, t);
    pthread_mutex_unlock(&g->lock);
    if (q != NULL) {
        next = waiting_take(t, q->conn_id);
        free(q);
    }
    if (next != NULL) {
        attach(next, w);
        return;
    }
    unhome(t, w);
    give(w);
}

/* End the exchange: the worker goes back (or away), c continues. */
static void detach(wr_hconn_t *c, int reusable)
{
    wr_worker_t *w = c->worker;

    if (w == NULL)
        return;
    c->worker = NULL;
    w->conn = NULL;
    if (reusable) {
        pass_on(c->t, w);
        return;
    }
    unhome(c->t, w);
    discard(w);
}

/* Answer with an error status (nothing was sent yet), then go on. */
static void fail(wr_hconn_t *c, int status)
{
    detach(c, 0);
    wr_conn_fail(c, status);
}

/* The worker's channel is full (the app is busy): go on when it drains. */
static int worker_blocked(wr_hconn_t *c)
{
    if (!c->worker_out) {
        c->worker_out = 1;
        wr_ev_mod(&c->t->loop, c->worker->ev, EPOLLIN | EPOLLOUT);
    }
    return 0;
}

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

/* The status for a failed pump_body: a broken chunked body is the
 * client's (400, 413), anything else the worker's channel (502). */
static int body_status(const wr_hconn_t *c)
{
    return c->chunked && c->chunk.error < 0 ? -c->chunk.error : 502;
}

/* pump_body failed: answer the error. A broken chunked body is the
 * client's fault, not the worker's: its stream is cut with ABORT (proto.h;
 * its late messages are ignored by stream id) and the worker serves on. */
static void fail_body(wr_hconn_t *c)
{
    int status = body_status(c);

    if (status != 502 && c->worker != NULL && !c->head_out
        && send_msg(c->worker, WR_APP_ABORT, stream_of(c), NULL, 0) == 0) {
        c->req_done = 1;
        detach(c, 1);
    }
    fail(c, status);
}

/* Forward request body bytes waiting in c->in, as the window allows. */
static int pump_body(wr_hconn_t *c)
{
    size_t n;

    while (c->body_left > 0 && c->req_window > 0) {
        if (body_ready(c, &n) < 0)
            return -1;
        if (n == 0)
            break;
        if ((long long) n > c->req_window)
            n = (size_t) c->req_window;
        if (n > WR_APP_MAX_PAYLOAD)
            n = WR_APP_MAX_PAYLOAD;
        if (send_msg(c->worker, WR_APP_REQ_BODY, stream_of(c), c->in + c->consumed, n) < 0)
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
    if (c->body_left == 0 && !c->req_done) {
        if (send_msg(c->worker, WR_APP_REQ_END, stream_of(c), NULL, 0) < 0)
            return errno == EAGAIN ? worker_blocked(c) : -1;
        c->req_done = 1;
    }
    return 0;
}

/* Client input is wanted now: body bytes the worker's window can take. */
static int body_wanted(const wr_hconn_t *c)
{
    return c->body_left > 0 && c->req_window > 0;
}

/* Which client events c needs now. Without a body to forward, EPOLLIN is
 * left as it is: it is only dropped if input actually comes (a pipelining
 * client, wr_app_on_client), so a plain request costs no epoll_ctl. */
static void client_interest(wr_hconn_t *c)
{
    uint32_t ev = EPOLLRDHUP;

    if (body_wanted(c) || (c->body_left == 0 && (c->events & EPOLLIN)))
        ev |= EPOLLIN;
    if (c->out_sent < c->out.n)
        ev |= EPOLLOUT;
    wr_conn_want(c, ev);
}

static int recycle(wr_hconn_t *c);

/* An HTTP worker back from proxy.c. */
static void http_release(wr_hconn_t *c, int how)
{
    wr_worker_t *w = c->worker;

    if (w == NULL)
        return;
    if (how == WR_PROXY_HUNG && kill(w->pid, SIGKILL) < 0)
        wr_log(WR_LOG_WARN, "kill(worker %d of \"%s\") failed: %s", (int) w->pid,
               c->app->name, strerror(errno));
    if (how == WR_PROXY_DONE && !recycle(c)) {
        c->worker = NULL;
        give(w);
        return;
    }
    c->worker = NULL;
    discard(w);                            /* its prototype ends it */
}

/* Start c's exchange on w; w joins this thread's epoll unless it is in it
 * already (passed on from the previous request, pass_on). */
static void attach(wr_hconn_t *c, wr_worker_t *w)
{
    int fresh = w->ev == NULL;

    c->worker = w;
    w->conn = c;
    if (w->gen->http && w->http == NULL)
        http_address(w, WR_HTTP_ADDR_WAIT_MS);
    if (w->gen->http && w->http == NULL) {
        c->worker = NULL;
        discard(w);
        fail(c, 502);
        return;
    }
    if (w->http) {                         /* it speaks HTTP: proxy.c */
        wr_proxy_begin_app(c, w->http, http_release);
        return;
    }
    if (fresh && (w->ev = calloc(1, sizeof(*w->ev))) == NULL) {
        c->worker = NULL;
        discard(w);
        fail(c, 503);
        return;
    }
    w->ev->fd = w->fd;
    w->ev->cb = worker_event;
    w->ev->data = w;
    c->state = WR_HC_APP;
    c->stream = atomic_fetch_add(&c->t->router->next_stream, 1) + 1;
    if (c->stream == 0)
        c->stream = atomic_fetch_add(&c->t->router->next_stream, 1) + 1;
    c->req_window = WR_APP_WINDOW_INIT;
    /* No body: the head closes the router's direction (one message). */
    c->req_done = c->body_left == 0;
    if ((fresh && wr_ev_add(&c->t->loop, w->ev, EPOLLIN) < 0)
        || send_msg_flags(w, WR_APP_REQ_HEAD, c->req_done ? WR_APP_F_END : 0, stream_of(c),
                          c->app_head.p, c->app_head.n) < 0
        || pump_body(c) < 0) {
        fail_body(c);
        return;
    }
    client_interest(c);
}

/* The waiting connection of t with this id, out of the waiting list. */
static wr_hconn_t *waiting_take(wr_thread_t *t, uint64_t conn_id)
{
    for (wr_hconn_t **p = &t->app_waiting; *p; p = &(*p)->app_next) {
        wr_hconn_t *c = *p;
        if (c->id == conn_id) {
            *p = c->app_next;
            return c;
        }
    }
    return NULL;
}

static void waiting_remove(wr_hconn_t *c)
{
    for (wr_hconn_t **p = &c->t->app_waiting; *p; p = &(*p)->app_next) {
        if (*p == c) {
            *p = c->app_next;
            return;
        }
    }
}

void wr_app_begin(wr_hconn_t *c)
{
    wr_appgen_t *g = c->app;
    wr_worker_t *w;
    wr_waiter_t *q;

    /* A chunked body has no length: "more" until its last chunk. */
    if (c->chunked) {
        c->body_left = 1;
        c->dec_len = 0;
        c->chunk_end = 0;
    }
    /* From here the clock is the app's limits.timeout (none: it takes the
     * time it takes), covering the wait for a worker and the answer. */
    if (c->app_timeout > 0)
        wr_conn_arm(c, c->app_timeout);
    else
        wr_timer_cancel(&c->t->loop, &c->timer);
    pthread_mutex_lock(&g->lock);
    while ((w = g->idle) != NULL) {
        g->idle = w->next;
        if (alive(w))
            break;
        g->nworkers--;                    /* it died while idle */
        worker_close(w);
    }
    if (w != NULL) {
        pthread_mutex_unlock(&g->lock);
        attach(c, w);
        return;
    }
    if (g->retired || g->qlen >= WR_APP_QUEUE_MAX || (q = malloc(sizeof(*q))) == NULL) {
        pthread_mutex_unlock(&g->lock);
        fail(c, 503);
        return;
    }
    q->next = NULL;
    q->t = c->t;
    q->conn_id = c->id;
    if (g->qtail)
        g->qtail->next = q;
    else
        g->qhead = q;
    g->qtail = q;
    g->qlen++;
    pthread_mutex_unlock(&g->lock);
    wr_app_scale_poke(c->t->router);      /* more workers, if "processes" allows */
    c->state = WR_HC_APP_WAIT;
    c->app_next = c->t->app_waiting;
    c->t->app_waiting = c;
    /* Only a departure matters now; EPOLLIN goes lazily (wr_app_on_client). */
}

/* Workers other threads handed to this one's waiting connections. */
void wr_thread_take_inbox(wr_thread_t *t)
{
    wr_handoff_t *h;

    pthread_mutex_lock(&t->inbox_lock);
    h = t->inbox;
    t->inbox = NULL;
    pthread_mutex_unlock(&t->inbox_lock);
    while (h) {
        wr_handoff_t *next = h->next;
        wr_hconn_t *c = t->app_waiting;
        while (c && c->id != h->conn_id)
            c = c->app_next;
        if (c == NULL) {
            if (h->w)
                give(h->w);               /* that connection is gone */
        } else {
            waiting_remove(c);
            if (h->w)
                attach(c, h->w);
            else if (wr_app_scale_requeue(c) < 0)
                fail(c, 503);             /* its application is gone */
        }
        free(h);
        h = next;
    }
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
    c->chunked_out = c->resp_length < 0 && !v10 && !c->head_only && status >= 200
                     && status != 204 && status != 304;
    if (c->resp_length < 0 && v10)
        c->close_after = 1;
    wr_buf_printf(b, "HTTP/1.1 %d %s\r\nServer: Warren/%s\r\nDate: %s\r\n", status,
                  wr_http_reason(status), WR_VERSION, wr_thread_date(c->t));
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

static int on_resp_body(wr_hconn_t *c, const char *p, size_t n)
{
    if (!c->head_out)
        return -1;
    if (c->resp_length >= 0) {
        if ((long long) n > c->resp_length)
            return -1;                    /* more than it announced */
        c->resp_length -= (long long) n;
    }
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

/* limits.requests: a worker that answered its share is closed (it exits,
 * main starts a fresh one). Each worker's share differs by up to a tenth,
 * so a pool started together does not recycle all at once. */
static int recycle(wr_hconn_t *c)
{
    wr_worker_t *w = c->worker;
    long max = c->app_max_requests;

    if (w == NULL || max <= 0)
        return 0;
    return ++w->served >= (unsigned long) (max + (long) (w->id % (uint32_t) (max / 10 + 1)));
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
 * finish when the response is complete. Returns -1 if c was closed. */
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
        if (c->app_timeout > 0)
            wr_conn_arm(c, c->app_timeout);
        else
            wr_timer_cancel(&c->t->loop, &c->timer);
    }
    if (c->head_in_out && !c->resp_done)
        save_head(c);
    wr_buf_reset(&c->out);
    c->out_sent = 0;
    c->head_in_out = 0;
    if (c->resp_done) {
        /* An app that answered before taking the whole body: stop it, and
         * the connection cannot carry another request. */
        if (!c->req_done) {
            send_msg(c->worker, WR_APP_ABORT, stream_of(c), NULL, 0);
            c->req_done = 1;
            c->close_after = 1;
        }
        detach(c, !recycle(c));
        c->state = WR_HC_WRITE;
        wr_conn_done(c);
        return -1;                         /* c moved on; callers stop */
    }
    if (c->resp_unacked >= WR_APP_GRANT_MIN) {
        uint32_t n = (uint32_t) c->resp_unacked;
        if (send_msg(c->worker, WR_APP_WINDOW, stream_of(c), &n, sizeof(n)) == 0)
            c->resp_unacked = 0;
        else if (errno == EAGAIN)
            worker_blocked(c);            /* granted once the channel drains */
        else {
            wr_conn_abort(c);
            return -1;
        }
    }
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
        return fail(c, 502), -1;
    if (!c->head_out && on_resp_head(c, "\xc8\0\0\0\0\0\0\0", 8, NULL) < 0)
        return fail(c, 502), -1;
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

    if (on_resp_head(c, p, h->len, (h->flags & WR_APP_F_BODY) ? &used : NULL) < 0
        || ((h->flags & WR_APP_F_BODY) && on_resp_body(c, p + used, h->len - used) < 0))
        return fail(c, 502), -1;
    return (h->flags & WR_APP_F_END) ? on_resp_end(c) : 0;
}

/* One datagram from the worker. Returns -1 when c is finished or closed. */
static int on_worker_msg(wr_hconn_t *c, const wr_app_hdr_t *h, const char *p)
{
    uint32_t n;

    if (h->stream != stream_of(c))
        return 0;                          /* a late message of an old stream */
    if (h->flags & ~allowed_flags(h->type))
        return fail(c, 502), -1;
    switch (h->type) {
    case WR_APP_RESP_HEAD:
        return on_resp_head_msg(c, h, p);
    case WR_APP_RESP_BODY:
        if (on_resp_body(c, p, h->len) < 0)
            return fail(c, 502), -1;
        return (h->flags & WR_APP_F_END) ? on_resp_end(c) : 0;
    case WR_APP_RESP_END:
        return on_resp_end(c);
    case WR_APP_WINDOW:
        if (h->len != sizeof(n))
            return fail(c, 502), -1;
        memcpy(&n, p, sizeof(n));
        c->req_window += n;
        return pump_body(c) < 0 ? (fail_body(c), -1) : 0;
    case WR_APP_ABORT:
        if (!c->req_done)
            send_msg(c->worker, WR_APP_ABORT, stream_of(c), NULL, 0);
        c->req_done = 1;
        if (!c->head_out)
            return fail(c, 502), -1;
        detach(c, 1);
        wr_conn_abort(c);                  /* the head is out: cut it short */
        return -1;
    default:
        return fail(c, 502), -1;
    }
}

/*
 * The worker's channel ended before its END. Nothing out yet: 502. A body
 * that filled its Content-Length is a whole answer (the worker died after
 * its last byte): it still goes out, buffered head included, before the
 * close. Anything else is cut short: the close tells the client.
 */
static void worker_lost(wr_hconn_t *c)
{
    int rc;

    if (!c->head_out) {
        fail(c, 502);
        return;
    }
    if (c->chunked_out || c->resp_length != 0 || c->resp_done) {
        wr_conn_abort(c);
        return;
    }
    detach(c, 0);                          /* gone: never reused */
    c->req_done = 1;
    c->close_after = 1;                    /* its unread body has nowhere to go */
    on_resp_end(c);
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

static void worker_event(wr_ev_loop_t *loop, wr_ev_t *ev, uint32_t events)
{
    wr_worker_t *w = ev->data;
    wr_hconn_t *c = w->conn;
    char buf[sizeof(wr_app_hdr_t) + WR_APP_MAX_PAYLOAD];
    int got = 0;

    if ((events & EPOLLOUT) && c->worker_out) {
        got = 1;
        c->worker_out = 0;
        wr_ev_mod(loop, ev, EPOLLIN);
        if (pump_body(c) < 0) {
            fail_body(c);
            return;
        }
    }

    for (;;) {
        wr_app_hdr_t h;
        ssize_t n = recv(w->fd, buf, sizeof(buf), MSG_DONTWAIT);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            if (!got)
                return;                    /* a stale event: nothing to do */
            break;
        }
        got = 1;
        if (n < (ssize_t) sizeof(h)) {     /* EOF, error or a runt: the worker is gone */
            worker_lost(c);
            return;
        }
        memcpy(&h, buf, sizeof(h));
        if (h.len != (size_t) n - sizeof(h)) {
            fail(c, 502);
            return;
        }
        if (on_worker_msg(c, &h, buf + sizeof(h)) < 0)
            return;
        if (c->resp_done)
            break;
    }
    flush_client(c);
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
    if (c->state != WR_HC_APP)
        return;
    if (events & EPOLLIN) {
        int r = wr_conn_read(c);
        if (r < 0) {
            wr_conn_abort(c);
            return;
        }
        if (pump_body(c) < 0) {
            fail_body(c);
            return;
        }
    }
    flush_client(c);
}

/*
 * limits.timeout: the request gets a 503 (or, if its head is out, is cut
 * short) and main kills the hung worker (the router could not signal one
 * of another user) and replaces it.
 */
void wr_app_timeout(wr_hconn_t *c)
{
    wr_worker_t *w = c->worker;

    wr_log(WR_LOG_WARN, "application \"%s\" did not answer within %d s%s",
           c->app->name, c->app_timeout, w ? "; killing its worker" : " (queued)");
    if (w)
        wr_app_scale_kill(c->t->router, w);
    if (c->head_out) {
        wr_conn_abort(c);
        return;
    }
    if (c->state == WR_HC_APP_WAIT) {
        wr_app_conn_closing(c);           /* out of the queue */
        c->state = WR_HC_APP;
    }
    fail(c, 503);
}

void wr_app_conn_closing(wr_hconn_t *c)
{
    if (c->state == WR_HC_APP_WAIT) {
        wr_appgen_t *g = c->app;
        wr_waiter_t **p;

        pthread_mutex_lock(&g->lock);
        for (p = &g->qhead; *p; p = &(*p)->next) {
            if ((*p)->t == c->t && (*p)->conn_id == c->id) {
                wr_waiter_t *q = *p;
                *p = q->next;
                if (g->qtail == q) {
                    g->qtail = NULL;
                    for (wr_waiter_t *x = g->qhead; x; x = x->next)
                        g->qtail = x;
                }
                g->qlen--;
                free(q);
                break;
            }
        }
        pthread_mutex_unlock(&g->lock);
        waiting_remove(c);
    }
    if (c->worker) {
        /* Mid-stream: tell the worker, and never reuse it (its state is
         * unknown); main replaces it. */
        send_msg(c->worker, WR_APP_ABORT, stream_of(c), NULL, 0);
        detach(c, 0);
    }
}
