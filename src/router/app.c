/*
 * Requests to applications, the dispatch half: which worker serves a
 * request, and what becomes of a worker when a request is done with it.
 * One exchange on one stream is app_stream.c's (app.h between the two).
 *
 * A worker serves up to `streams` requests at once (its HELLO), and the
 * router may queue `pipeline` more on it (the application's key), so a
 * single-threaded worker finds its next request in its socket instead of
 * waiting a round trip: its cap is streams + pipeline, at most
 * WR_APP_MAX_STREAMS. Each request is one stream of the worker's channel.
 * A worker that serves each tunnel (a request answered 101) apart from its
 * serving threads says how many it has room for (HELLO's tunnels): those
 * hold streams but count neither against its cap nor as busy (load_of).
 *
 * Idle workers (no stream) belong to their generation, in no epoll. The
 * thread whose connection takes one adds it to its own epoll, its home,
 * and puts it in the generation's busy list: while it has streams, only
 * that thread opens more on it (the slots are that thread's alone, no lock
 * on the hot path). A new request takes, in order: an idle worker; a free
 * stream slot of a worker at home in its thread; a free pipeline slot of
 * one (the least loaded); else it waits in the app's bounded queue. When a
 * stream ends, its worker takes the next waiter of its own thread, still
 * in that epoll (under load a worker stays with one thread and a request
 * costs no epoll_ctl); with none, and no stream left, it leaves the epoll
 * and goes to the first waiter's thread through its inbox (the thread's
 * eventfd wakes it), or idle.
 *
 * Requests of other threads never take slots of a worker at home elsewhere
 * (docs/applications.md): they wait until a worker is idle. Nothing
 * starves: while anyone waits who could take a busy worker's free slot,
 * new requests queue behind them rather than take it, and a worker's own
 * thread may pass the head of the queue only WR_APP_SKIPS_MAX times, so its
 * worker drains and goes to the head. A worker held by long requests or
 * tunnels may never be idle: when it can serve one more at once and its
 * thread has no waiter, the first waiter that can move is told
 * (tell_head_locked) and moves to it. An HTTP/2 stream cannot move (its
 * session is its thread's): it waits for a worker of its thread or an idle
 * one, and holds up nobody who could take a place it cannot.
 *
 * An HTTP worker ("protocol": "http") has no channel to watch: each of its
 * requests is a connection of its own (proxy.c), in the request's thread.
 * So it has no home, and its "concurrency" slots are any thread's, under
 * the lock; a slot that frees up goes straight to the first waiter
 * (http_slot_free).
 */
#include <errno.h>
#include <limits.h>
#include <time.h>
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
#include "router/app.h"
#include "router/proxy.h"

/* How many times a freed worker may serve a later waiter of its own thread
 * before the head of the queue (another thread's): bounds the wait the
 * preference adds. */
#define WR_APP_SKIPS_MAX      8
#define WR_HTTP_ADDR_WAIT_MS  1000   /* an HTTP worker's address, after its hello */
#define WR_MS_PER_S           1000
/* No "pipeline" key: the depth follows how long a request keeps its worker
 * (fast_share). Under ~1 ms the router's round trip between two requests is a
 * large part of a request's cost, and 4 queued keep the worker from ever
 * waiting for it (+20 % on a hello world, bench/README.md); above, that
 * round trip is noise, and a deep queue only makes requests wait behind a
 * slow one while another worker frees up, so 1. */
#define WR_APP_PIPELINE_FAST    4
#define WR_APP_PIPELINE_SLOW    1
#define WR_APP_FAST_US          1000
/* Most requests, not their average: a router thread held up for a few ms
 * makes the responses it finds then look slow, and must not flip the
 * depth. A moving share over ~16 requests, in 1/1024. */
#define WR_APP_SHARE_ONE        1024
#define WR_APP_SHARE_SHIFT      4
/* A worker whose every stream lost its request (the clients left) and that
 * has not closed them this long is stuck in them: main ends it. */
#define WR_APP_ORPHAN_MS      30000
/* Messages that crossed its last stream's end an idle worker may hold
 * (ABORT, WINDOW) read at most when it is taken; more are left for later. */
#define WR_APP_STALE_MAX      16

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
    g->stats = wr_appstats_get(r, name);  /* NULL (no memory): not counted */
    g->router = r;
    g->gen = gen;
    g->pipeline = WR_APP_PIPELINE_AUTO;
    atomic_init(&g->fast_share, WR_APP_SHARE_ONE);
    pthread_mutex_init(&g->lock, NULL);
    r->gens[r->ngens++] = g;
    return g;
}

void wr_app_worker_close(wr_worker_t *w)
{
    wr_app_scale_release(w);              /* main closes the channel */
    wr_upool_free(&w->kept);
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
        wr_app_worker_close(w);
    }
    pthread_mutex_destroy(&g->lock);
    wr_appstats_put(g->stats);
    free(g->name);
    free(g);
}

/* ---- lists (called with g->lock held) ---- */

/* A worker with streams is in the busy list, at home in thread t, and
 * holds its generation (a stream left to close may outlive every request
 * on it). It stays there while it has streams or is being given more.
 * An HTTP worker has no home (t NULL): each of its requests has its own
 * connection to it, in the thread of that request. */
static void busy_add(wr_appgen_t *g, wr_worker_t *w, wr_thread_t *t)
{
    atomic_fetch_add(&g->refs, 1);
    w->bprev = NULL;
    w->bnext = g->busy;
    if (g->busy)
        g->busy->bprev = w;
    g->busy = w;
    w->home = t;
    if (t == NULL)
        return;
    w->tprev = NULL;
    w->tnext = t->homed;
    if (t->homed)
        t->homed->tprev = w;
    t->homed = w;
}

/* The caller drops the reference busy_add took, once unlocked. */
static void busy_remove(wr_appgen_t *g, wr_worker_t *w)
{
    if (w->bprev)
        w->bprev->bnext = w->bnext;
    else
        g->busy = w->bnext;
    if (w->bnext)
        w->bnext->bprev = w->bprev;
    w->bprev = w->bnext = NULL;
    if (w->home == NULL)
        return;                 /* an HTTP worker */
    if (w->tprev)
        w->tprev->tnext = w->tnext;
    else
        w->home->homed = w->tnext;
    if (w->tnext)
        w->tnext->tprev = w->tprev;
    w->tprev = w->tnext = NULL;
    w->home = NULL;
}

/* The pipeline depth now: the key's, or by the requests' speed. */
static int pipeline_now(wr_appgen_t *g)
{
    if (g->pipeline != WR_APP_PIPELINE_AUTO)
        return g->pipeline;
    return atomic_load_explicit(&g->fast_share, memory_order_relaxed) >= WR_APP_SHARE_ONE / 2
           ? WR_APP_PIPELINE_FAST : WR_APP_PIPELINE_SLOW;
}

/* An HTTP worker takes its "concurrency" (its HELLO's streams) and no
 * pipeline: requests beyond wait in its listen backlog, where the router
 * cannot take them back. */
static int cap_of(const wr_appgen_t *g, const wr_worker_t *w, int pipeline)
{
    int cap = (int) w->streams + (g->http ? 0 : pipeline);

    if (w->streams < 1)
        return 1;
    return cap < WR_APP_MAX_STREAMS ? cap : WR_APP_MAX_STREAMS;
}

/* Requests the router has w serve (or queue) at once now. */
static int worker_cap(wr_appgen_t *g, const wr_worker_t *w)
{
    return cap_of(g, w, pipeline_now(g));
}

/* ... and at most, whatever the speed, with its tunnels: the slots w may
 * ever use. */
static int worker_slots(const wr_appgen_t *g, const wr_worker_t *w)
{
    int n = cap_of(g, w, g->pipeline != WR_APP_PIPELINE_AUTO ? g->pipeline
                                                             : WR_APP_PIPELINE_FAST)
            + (int) w->tunnel_room;

    return n < WR_APP_MAX_STREAMS ? n : WR_APP_MAX_STREAMS;
}

/* Tunnels of w in the room its HELLO declared: they hold streams, not its
 * serving threads. Locked. */
static int room_tunnels(const wr_worker_t *w)
{
    return w->tunnels < (int) w->tunnel_room ? w->tunnels : (int) w->tunnel_room;
}

/* Streams of w that take its serving: requests, and tunnels beyond that
 * room. What makes it busy, idle for /status, or a reason to scale up.
 * Locked. */
static int load_of(const wr_worker_t *w)
{
    return w->active - room_tunnels(w);
}

/* Requests queued on w beyond those it serves at once (pipelined):
 * waiting all the same, for /status and for scaling. Locked. */
int wr_worker_queued(const wr_worker_t *w)
{
    int n = w->conns - room_tunnels(w) - (int) w->streams;

    return n > 0 ? n : 0;
}

/* w, at home in a thread, can serve one more request at once (not only
 * queue it): a place for a request another thread holds. Locked. */
static int free_at_once(const wr_worker_t *w)
{
    return w->home != NULL && !w->retiring && !w->http && load_of(w) < (int) w->streams;
}

/* Can w take one more stream now? Locked. */
static int has_room(wr_appgen_t *g, const wr_worker_t *w)
{
    return load_of(w) < worker_cap(g, w) && w->active < worker_slots(g, w);
}

/* A response on w ended: was its request fast? How long it kept w runs
 * from when it went to w, or from the previous response if w was busy with
 * that one. Lost updates between threads only blur the share. */
void wr_app_served(wr_worker_t *w, wr_wstream_t *s)
{
    wr_appgen_t *g = w->gen;
    uint64_t now = wr_app_now_us();
    uint64_t from = s->start_us > w->last_done_us ? s->start_us : w->last_done_us;
    int share = (int) atomic_load_explicit(&g->fast_share, memory_order_relaxed);
    int fast = now - from < WR_APP_FAST_US ? WR_APP_SHARE_ONE : 0;

    w->last_done_us = now;
    if (s->start_us == 0)
        return;
    share += (fast - share) / (1 << WR_APP_SHARE_SHIFT);
    atomic_store_explicit(&g->fast_share, (unsigned) share, memory_order_relaxed);
}

uint64_t wr_app_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

/* w NULL: no worker will come (the generation was retired). claimed: a
 * slot of w is taken for the waiter already (an HTTP worker's). */
static void post_handoff(wr_thread_t *t, wr_worker_t *w, uint64_t conn_id, int claimed);

/* The first waiter, out of the queue (NULL: none). Locked. */
static wr_waiter_t *pop_waiter_locked(wr_appgen_t *g)
{
    wr_waiter_t *q = g->qhead;

    if (q == NULL)
        return NULL;
    g->qhead = q->next;
    if (g->qhead == NULL)
        g->qtail = NULL;
    g->qlen--;
    return q;
}

static int idle_usable(wr_worker_t *w);

/* A worker without streams, out of every epoll: to the first waiter, or to
 * the idle list, or closed (retired generation, recycled worker, one that
 * died or sent what it may not since its last stream). */
static void give_locked(wr_appgen_t *g, wr_worker_t *w)
{
    wr_waiter_t *q;

    /* Checked here only when it goes straight to a waiter: the idle list
     * checks it when it is taken. */
    if (g->retired || w->retiring || (g->qhead != NULL && !idle_usable(w))) {
        g->nworkers--;
        wr_app_worker_close(w);
        return;
    }
    q = pop_waiter_locked(g);
    if (q != NULL) {
        post_handoff(q->t, w, q->conn_id, 0);
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

/* Called with w's generation locked. */
static void post_handoff(wr_thread_t *t, wr_worker_t *w, uint64_t conn_id, int claimed)
{
    wr_handoff_t *h = calloc(1, sizeof(*h));

    if (h == NULL) {
        wr_log(WR_LOG_CRIT, "out of memory handing a worker over");
        if (w && claimed) {               /* it serves others: the slot back */
            w->active--;
            w->conns--;
        } else if (w) {
            w->gen->nworkers--;
            wr_app_worker_close(w);
        }
        return;
    }
    h->w = w;
    h->conn_id = conn_id;
    h->claimed = claimed;
    pthread_mutex_lock(&t->inbox_lock);
    h->next = t->inbox;
    t->inbox = h;
    pthread_mutex_unlock(&t->inbox_lock);
    wr_thread_wake(t);
}

/*
 * Can idle worker w serve? Its channel must be open, and hold nothing but
 * what may cross a stream's end (WINDOW, ABORT: read and dropped here). Any
 * other message came after its last stream ended: a breach of the protocol
 * (logged; the worker is then closed) found now, rather than by the next
 * request given to it. An HTTP worker's channel is only watched for its end
 * (its address may still wait in it).
 */
static int idle_usable(wr_worker_t *w)
{
    for (int i = 0; i < WR_APP_STALE_MAX; i++) {
        wr_app_hdr_t h;
        ssize_t n = recv(w->fd, &h, sizeof(h), MSG_PEEK | MSG_DONTWAIT);

        if (n < 0)
            return errno == EAGAIN || errno == EINTR;
        if (n == 0)
            return 0;                     /* it died */
        if (w->gen->http)
            return 1;
        if (n < (ssize_t) sizeof(h) || (h.type != WR_APP_WINDOW && h.type != WR_APP_ABORT)) {
            wr_app_protocol_error(w, n < (ssize_t) sizeof(h) ? NULL : &h,
                                  "a message after its last stream ended");
            return 0;
        }
        /* A datagram read into less than its size is dropped whole. */
        if (recv(w->fd, &h, sizeof(h), MSG_DONTWAIT) < 0 && errno != EAGAIN && errno != EINTR)
            return 0;
    }
    return 1;
}

/* Close the channels of idle workers that died (main replaces them) and
 * connections to HTTP workers kept too long; have main end busy workers
 * stuck in streams whose clients all left. */
void wr_appgen_sweep(wr_router_t *r)
{
    uint64_t now = wr_ev_now();

    for (size_t i = 0; i < r->ngens; i++) {
        wr_appgen_t *g = r->gens[i];
        wr_worker_t **p;

        pthread_mutex_lock(&g->lock);
        for (p = &g->idle; *p; ) {
            wr_worker_t *w = *p;
            if (idle_usable(w)) {
                if (g->http)
                    wr_upool_age(&w->kept, now, WR_HTTP_KEEP_IDLE_MS);
                p = &w->next;
                continue;
            }
            *p = w->next;
            g->nworkers--;
            wr_app_worker_close(w);
        }
        for (wr_worker_t *w = g->busy; w; w = w->bnext) {
            if (g->http)
                wr_upool_age(&w->kept, now, WR_HTTP_KEEP_IDLE_MS);
            if (w->conns > 0 || w->active == 0 || w->orphan_killed
                || now - w->orphan_since < WR_APP_ORPHAN_MS)
                continue;
            w->orphan_killed = 1;
            wr_log(WR_LOG_WARN, "app \"%s\" worker %u (pid %d) kept streams whose clients "
                   "left for %d s; ending it", g->name, w->id, (int) w->pid,
                   WR_APP_ORPHAN_MS / 1000);
            wr_app_scale_kill(r, w);
        }
        pthread_mutex_unlock(&g->lock);
    }
}

/* An HTTP worker's prototype sends where it listens right after its hello
 * (src/lib/proto.h WR_APP_HTTP_ADDR); main may have passed the channel on
 * before that second message was written. wait_ms: how long to wait for
 * it (0: only look); it comes at once unless the prototype died. Only the
 * thread that holds the worker's one request calls it (busy_slot_locked
 * gives no more requests to a worker without its address); w->http is set
 * under the lock, where other threads look at it. */
static void http_address(wr_worker_t *w, int wait_ms)
{
    char buf[sizeof(wr_app_hdr_t) + sizeof(struct sockaddr_storage)];
    wr_app_hdr_t h;
    struct pollfd pfd = { .fd = w->fd, .events = POLLIN };
    wr_addr_t *a;
    ssize_t n;

    if (wait_ms > 0 && poll(&pfd, 1, wait_ms) <= 0)
        return;
    n = recv(w->fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_PEEK);
    if (n < (ssize_t) sizeof(h))
        return;
    memcpy(&h, buf, sizeof(h));
    if (h.type != WR_APP_HTTP_ADDR || h.len != (size_t) n - sizeof(h)
        || (a = calloc(1, sizeof(*a))) == NULL)
        return;
    if (recv(w->fd, buf, sizeof(buf), MSG_DONTWAIT) != n) {
        free(a);
        return;
    }
    memcpy(&a->sa, buf + sizeof(h), h.len);
    a->len = (socklen_t) h.len;
    pthread_mutex_lock(&w->gen->lock);
    w->http = a;
    pthread_mutex_unlock(&w->gen->lock);
}

void wr_appgen_add_worker(wr_appgen_t *g, int fd, pid_t pid, uint32_t id,
                          uint32_t streams, uint32_t tunnels)
{
    wr_worker_t *w = calloc(1, sizeof(*w));

    if (w == NULL) {
        close(fd);
        return;
    }
    w->gen = g;
    w->fd = fd;
    wr_upool_init(&w->kept);
    w->pid = pid;
    w->id = id;
    w->streams = streams;
    w->tunnel_room = tunnels;
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
     * when their last stream ends (give_locked). Waiters are answered 503
     * by their threads when the config that dropped the app took effect. */
    pthread_mutex_lock(&g->lock);
    g->retired = 1;
    while (g->qhead) {                    /* not here: a newer generation or 503 */
        wr_waiter_t *q = g->qhead;
        g->qhead = q->next;
        post_handoff(q->t, NULL, q->conn_id, 0);
        free(q);
    }
    g->qtail = NULL;
    g->qlen = 0;
    while (g->idle) {
        wr_worker_t *w = g->idle;
        g->idle = w->next;
        g->nworkers--;
        wr_app_worker_close(w);
    }
    pthread_mutex_unlock(&g->lock);
    wr_appgen_unref(g);
}

/* Unit's /status/applications/NAME: processes running, starting, idle (a
 * process is idle while it has a free stream: it would serve one more
 * request at once); requests active (being served, or queued on a worker
 * or waiting for one). */
void wr_appgen_load(wr_appgen_t *g, wr_appgen_load_t *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&g->lock);
    for (wr_worker_t *w = g->idle; w; w = w->next)
        out->idle++;
    out->queued = g->qlen;
    out->active = g->qlen;
    for (wr_worker_t *w = g->busy; w; w = w->bnext) {
        if (!w->retiring && load_of(w) < (int) w->streams)
            out->idle++;
        out->active += w->conns;
        out->queued += wr_worker_queued(w);
    }
    out->running = g->nworkers;
    out->starting = g->starting;
    pthread_mutex_unlock(&g->lock);
}

/* ---- choosing a worker ---- */

/* Take w out of this thread's epoll. An event for it may still wait in
 * the batch: the ev is retired (skipped, freed after the batch); the
 * worker itself may be taken by another thread right away. */
static void unhome(wr_thread_t *t, wr_worker_t *w)
{
    if (w->ev == NULL)
        return;
    wr_ev_retire(&t->loop, w->ev, w->ev);
    w->ev = NULL;
    /* A wait for room that no stream needs any more (the last one ended
     * on a message while the channel was still full): the next home adds
     * the channel for EPOLLIN alone, so a want_out left set would make
     * wr_app_want_out believe EPOLLOUT is watched, and the next stream
     * to find the channel full could wait for ever. */
    w->want_out = 0;
}

/* Could q take a place on a worker at home in thread home? A waiter of
 * another thread moves there, but for an HTTP/2 stream: it stays with its
 * session's thread and waits for a worker of that thread, or an idle one. */
static int can_use(const wr_waiter_t *q, const wr_thread_t *home)
{
    return q->t == home || !q->stays;
}

/* The first waiter that could take a place on a worker at home in home
 * (NULL: none). While there is one, a new request queues behind it rather
 * than take that place; a waiter that cannot move there does not hold
 * anyone up. Locked. */
static wr_waiter_t *first_for_locked(const wr_appgen_t *g, const wr_thread_t *home)
{
    for (wr_waiter_t *q = g->qhead; q; q = q->next)
        if (can_use(q, home))
            return q;
    return NULL;
}

/* *p (a link of the queue) out of it. Locked. */
static void unlink_waiter_locked(wr_appgen_t *g, wr_waiter_t **p)
{
    wr_waiter_t *q = *p;

    *p = q->next;
    if (g->qtail == q) {
        g->qtail = NULL;
        for (wr_waiter_t *x = g->qhead; x; x = x->next)
            g->qtail = x;
    }
    g->qlen--;
}

/* The first waiter of thread t, out of the queue, if t may go before the
 * head (WR_APP_SKIPS_MAX); NULL otherwise. Called with g->lock held. */
static wr_waiter_t *take_own_waiter(wr_appgen_t *g, wr_thread_t *t)
{
    wr_waiter_t **p, *q, *head = first_for_locked(g, t);

    if (head != g->skip_head) {
        g->skip_head = head;
        g->skips = 0;
    }
    for (p = &g->qhead; (q = *p) != NULL; p = &q->next) {
        if (q->t != t)
            continue;
        if (q != head && g->skips >= WR_APP_SKIPS_MAX)
            return NULL;
        if (q != head)
            g->skips++;
        unlink_waiter_locked(g, p);
        return q;
    }
    return NULL;
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

/* limits.requests counts a request given to w, and a worker that reached
 * its share takes no more (it is closed when its streams are done). Each
 * worker's share differs by up to a tenth, so a pool started together does
 * not recycle all at once. Locked. */
static void count_locked(wr_worker_t *w, long max)
{
    if (max > 0 && ++w->served >= (unsigned long) (max + (long) (w->id % (uint32_t) (max / 10 + 1))))
        w->retiring = 1;
}

/* w takes one more stream, for c of thread t (locked): it joins the busy
 * list (and t's side, but for an HTTP worker) if it was not in it. */
static void claim_locked(wr_appgen_t *g, wr_worker_t *w, wr_hconn_t *c)
{
    if (g->http ? w->active == 0 : w->home == NULL) {
        busy_add(g, w, g->http ? NULL : c->t);
        w->cap = worker_slots(g, w);
    }
    w->active++;
    w->conns++;
    count_locked(w, c->app_max_requests);
}

/* A busy worker of thread t with a free slot: one below its streams (it
 * serves at once) before a pipeline one, the least loaded first. Only
 * when no waiter could take the place (one of another thread goes first,
 * but an HTTP/2 stream, which cannot move here), or for the one told to
 * come (front). An HTTP worker's slots are every thread's, once its
 * address is known: any waiter goes first. Locked. */
static wr_worker_t *busy_slot_locked(wr_appgen_t *g, wr_thread_t *t, int front)
{
    wr_worker_t *best = NULL;

    if (!front && (g->http ? g->qhead : first_for_locked(g, t)) != NULL)
        return NULL;
    for (wr_worker_t *w = g->busy; w; w = w->bnext) {
        int at_once = load_of(w) < (int) w->streams;
        if ((g->http ? w->http == NULL : w->home != t) || w->retiring || !has_room(g, w))
            continue;
        if (best == NULL || at_once > (load_of(best) < (int) best->streams)
            || (at_once == (load_of(best) < (int) best->streams) && load_of(w) < load_of(best)))
            best = w;
    }
    return best;
}

/*
 * The home of a busy worker of another thread that can take a request at
 * once (fewer requests than its streams: an ASGI or threaded worker, held
 * by long requests: a WebSocket, a stream of events). A request that would
 * otherwise wait for a worker to be idle moves there instead: such a worker
 * may never be idle. Only when no waiter could take that place, or for the
 * one told to come (front). Locked.
 */

static wr_thread_t *other_home_locked(wr_appgen_t *g, wr_thread_t *t, int front)
{
    for (wr_worker_t *w = g->busy; w; w = w->bnext)
        if (w->home != t && free_at_once(w) && !atomic_load(&w->home->draining)
            && (front || first_for_locked(g, w->home) == NULL))
            return w->home;
    return NULL;
}

/*
 * Waiters of other threads while a worker at home in one can serve one
 * more at once: it may never be idle (tunnels, long requests), so they
 * would wait for nothing. The first that can move (not an HTTP/2 stream)
 * is told (tell_head_locked): out of the queue, it begins again in its
 * thread, first in line, and hops to the worker's. If another took the
 * place meanwhile, it waits there, where that worker's next free slot
 * takes it. Locked.
 */
static void tell_head_locked(wr_appgen_t *g)
{
    wr_waiter_t **p = &g->qhead, *q;
    wr_handoff_t *h;

    while (*p != NULL && (*p)->stays)     /* HTTP/2 streams cannot come */
        p = &(*p)->next;
    if ((q = *p) == NULL || g->retired)
        return;
    h = calloc(1, sizeof(*h));
    if (h == NULL) {
        wr_log(WR_LOG_CRIT, "out of memory telling a waiter of a free worker");
        return;                           /* it waits on, as it would have */
    }
    unlink_waiter_locked(g, p);
    atomic_fetch_add(&g->refs, 1);
    h->again = g;
    h->conn_id = q->conn_id;
    pthread_mutex_lock(&q->t->inbox_lock);
    h->next = q->t->inbox;
    q->t->inbox = h;
    pthread_mutex_unlock(&q->t->inbox_lock);
    wr_thread_wake(q->t);
    free(q);
}

/* The connection told of a place is gone: the next waiter is, if a place
 * is still free. */
static void tell_next(wr_appgen_t *g)
{
    pthread_mutex_lock(&g->lock);
    for (wr_worker_t *w = g->busy; w; w = w->bnext) {
        if (free_at_once(w)) {
            tell_head_locked(g);
            break;
        }
    }
    pthread_mutex_unlock(&g->lock);
}

/* An idle worker, out of the idle list (dead ones are closed). Locked. */
static wr_worker_t *idle_locked(wr_appgen_t *g)
{
    wr_worker_t *w;

    while ((w = g->idle) != NULL) {
        g->idle = w->next;
        if (idle_usable(w))
            return w;
        g->nworkers--;                    /* it died while idle */
        wr_app_worker_close(w);
    }
    return NULL;
}

static void attach(wr_hconn_t *c, wr_worker_t *w);
static void http_release(wr_hconn_t *c, int how, int kept);
static void http_slot_free(wr_worker_t *w, int how, int kept);
static void teardown(wr_worker_t *w);
static int  retry_allowed(const wr_hconn_t *c);

/* Let w (home t) take what its free slots can: waiters of t, in order;
 * with no stream left and none of t waiting, it leaves t for the first
 * waiter's thread, the idle list, or is closed. While w is held (its event
 * or an attach is under way) this waits for the hold's end (unhold). */
static void refill(wr_thread_t *t, wr_worker_t *w)
{
    wr_appgen_t *g = w->gen;

    if (w->held) {
        w->refill = 1;
        return;
    }
    for (;;) {
        if (w->dead)
            return;                       /* out of the lists already */
        wr_waiter_t *q = NULL;
        wr_hconn_t *next = NULL;
        int gone = 0;

        w->refill = 0;
        pthread_mutex_lock(&g->lock);
        if (!g->retired && !w->retiring && has_room(g, w))
            q = take_own_waiter(g, t);
        if (q == NULL && w->active == 0) {
            busy_remove(g, w);
            gone = 1;
        } else if (q == NULL && free_at_once(w)) {
            tell_head_locked(g);          /* another thread's: it comes */
        }
        pthread_mutex_unlock(&g->lock);
        if (gone) {
            unhome(t, w);
            give(w);
            wr_appgen_unref(g);           /* busy_add's */
            return;
        }
        if (q == NULL)
            return;                       /* it waits, at home, for more */
        next = waiting_take(t, q->conn_id);
        free(q);
        if (next == NULL)
            continue;                     /* that connection is gone */
        pthread_mutex_lock(&g->lock);
        claim_locked(g, w, next);
        pthread_mutex_unlock(&g->lock);
        w->held++;
        attach(next, w);
        if (--w->held == 0 && w->dead) {
            teardown(w);
            return;
        }
    }
}

void wr_app_hold(wr_worker_t *w)
{
    w->held++;
}

void wr_app_unhold(wr_worker_t *w)
{
    if (--w->held > 0)
        return;
    if (w->dead)
        teardown(w);
    else if (w->refill)
        refill(w->home, w);
}

/* c starts on w (claimed for it), which is then free to go on. An HTTP
 * worker serves one request, through proxy.c, which may hand it back (or
 * free it) before this returns: it is not held. */
static void start_on(wr_hconn_t *c, wr_worker_t *w)
{
    if (w->gen->http) {
        attach(c, w);
        return;
    }
    wr_app_hold(w);
    attach(c, w);
    wr_app_unhold(w);
}

/* Start c's exchange on w (claimed for it): a slot, a stream id; w joins
 * this thread's epoll unless it is in it already. */
static void attach(wr_hconn_t *c, wr_worker_t *w)
{
    wr_router_t *r = c->t->router;
    wr_wstream_t *s = NULL;

    c->worker = w;
    if (w->gen->http && w->http == NULL)
        http_address(w, WR_HTTP_ADDR_WAIT_MS);
    if (w->gen->http && w->http == NULL) {
        http_release(c, WR_PROXY_BROKEN, -1);
        wr_conn_fail(c, 502);
        return;
    }
    if (w->http) {                         /* it speaks HTTP: proxy.c */
        wr_proxy_begin_app(c, w->http, http_release, wr_upool_take(&w->kept, w->http));
        return;
    }
    for (int i = 0; i < WR_APP_MAX_STREAMS && s == NULL; i++)
        if (!w->slot[i].in_use)
            s = &w->slot[i];
    if (w->ev == NULL && (w->ev = calloc(1, sizeof(*w->ev))) != NULL) {
        w->ev->fd = w->fd;
        w->ev->cb = wr_app_worker_event;
        w->ev->data = w;
        if (wr_ev_add(&c->t->loop, w->ev, EPOLLIN) < 0) {
            free(w->ev);
            w->ev = NULL;
        }
    }
    if (s == NULL || w->ev == NULL) {      /* cannot be, or out of memory */
        wr_log(WR_LOG_CRIT, "no stream for a request to application \"%s\"",
               w->gen->name);
        c->worker = NULL;
        wr_app_worker_gone(w);
        wr_conn_fail(c, 503);
        return;
    }
    memset(s, 0, sizeof(*s));
    s->in_use = 1;
    s->conn = c;
    s->seq = w->next_seq++;
    s->start_us = wr_app_now_us();
    /* A new id for each request: a late message of an earlier stream (an
     * ABORT after its END) can never match the next one. */
    do
        s->id = atomic_fetch_add(&r->next_stream, 1) + 1;
    while (s->id == 0);
    c->wstream = s;
    c->stream = s->id;
    wr_app_stream_start(c);
}

/* An HTTP worker back from proxy.c, for one of its requests, maybe with
 * the connection for another. */
static void http_release(wr_hconn_t *c, int how, int kept)
{
    wr_worker_t *w = c->worker;

    if (w == NULL) {
        if (kept >= 0)
            close(kept);
        return;
    }
    c->worker = NULL;
    /* A worker that failed one request takes no more; its prototype ends
     * it once the others are over (the channel closes). */
    http_slot_free(w, how, kept);
}

/*
 * One request of HTTP worker w is over (how: proxy.h's WR_PROXY_*). With
 * none left, the worker goes as any other (give_locked: the first waiter,
 * idle, or closed). Else its free slot goes to the first waiter, taken at
 * once: any thread may take an HTTP worker's slots, and the last request
 * ending meanwhile must not send the worker idle under the waiter's feet.
 */
static void http_slot_free(wr_worker_t *w, int how, int kept)
{
    wr_appgen_t *g = w->gen;
    wr_waiter_t *q = NULL;
    int last;

    pthread_mutex_lock(&g->lock);
    /* limits.timeout: main kills it (the router could not signal a worker
     * of another user), once for all its requests that time out. */
    if (how == WR_PROXY_HUNG && !w->killed) {
        w->killed = 1;
        wr_app_scale_kill(g->router, w);
    }
    w->active--;
    w->conns--;
    w->retiring |= how != WR_PROXY_DONE;
    /* Kept for its next requests, unless it takes no more. */
    if (kept >= 0 && !w->retiring && !g->retired) {
        wr_upool_give(&w->kept, w->http, kept, (int) w->streams);
        kept = -1;
    }
    last = w->active == 0;
    if (last) {
        busy_remove(g, w);
        give_locked(g, w);
    } else if (!w->retiring && !g->retired && (q = pop_waiter_locked(g)) != NULL) {
        w->active++;
        w->conns++;
        post_handoff(q->t, w, q->conn_id, 1);
        free(q);
    }
    pthread_mutex_unlock(&g->lock);
    if (kept >= 0)
        close(kept);
    if (last)
        wr_appgen_unref(g);                /* busy_add's */
}

static void dispatch(wr_hconn_t *c);

/* From its first begin the clock is the app's limits.timeout (none: it
 * takes the time it takes), covering the wait for a worker and the answer.
 * A request that begins again (moved to another thread, sent to another
 * worker after its own died, moved to a new generation) keeps its
 * deadline: the timeout is the client's wait, not each attempt's. */
static void arm_deadline(wr_hconn_t *c)
{
    uint64_t now = wr_ev_now();

    if (c->app_timeout <= 0) {
        wr_timer_cancel(&c->t->loop, &c->timer);
        return;
    }
    if (c->app_deadline == 0)
        c->app_deadline = now + (uint64_t) c->app_timeout * WR_MS_PER_S;
    wr_timer_set(&c->t->loop, &c->timer, c->app_deadline > now ? c->app_deadline - now : 0);
}

void wr_app_begin(wr_hconn_t *c)
{
    /* A chunked body has no length: "more" until its last chunk. */
    if (c->chunked) {
        c->body_left = 1;
        c->dec_len = 0;
        c->chunk_end = 0;
    }
    if (!c->app_retried)
        c->app_idem = retry_allowed(c);
    arm_deadline(c);
    dispatch(c);
}

/* c takes a worker, or moves to the thread of one that has room, or
 * waits in the queue (at its head if it was told to come: front). */
static void dispatch(wr_hconn_t *c)
{
    wr_appgen_t *g = c->app;
    wr_thread_t *to = NULL;
    wr_worker_t *w;
    wr_waiter_t *q;
    int ask, front = c->app_front;

    c->app_front = 0;
    pthread_mutex_lock(&g->lock);
    w = g->retired ? NULL : idle_locked(g);
    if (w == NULL && !g->retired)
        w = busy_slot_locked(g, c->t, front);
    /* A stream of HTTP/2 stays with its session's thread. */
    if (w == NULL && !g->retired && !c->hopped && !c->h2)
        to = other_home_locked(g, c->t, front);
    if (to != NULL) {
        /* It waits here until this event is done with it; the thread's
         * own wake-up moves it (wr_thread_take_inbox). */
        pthread_mutex_unlock(&g->lock);
        c->app_front = front;
        c->hop_to = to;
        c->state = WR_HC_APP_WAIT;
        c->app_next = c->t->app_waiting;
        c->t->app_waiting = c;
        wr_thread_wake(c->t);
        return;
    }
    if (w != NULL) {
        int queued_on_it;

        claim_locked(g, w, c);
        queued_on_it = g->dynamic && wr_worker_queued(w) > 0;
        pthread_mutex_unlock(&g->lock);
        if (queued_on_it)
            wr_app_scale_poke(c->t->router);   /* waiting: more workers? */
        start_on(c, w);
        return;
    }
    if (g->retired || g->no_workers || g->qlen >= WR_APP_QUEUE_MAX
        || (q = malloc(sizeof(*q))) == NULL) {
        pthread_mutex_unlock(&g->lock);
        wr_conn_fail(c, 503);
        return;
    }
    q->t = c->t;
    q->conn_id = c->id;
    q->stays = c->h2;
    if (front) {                          /* its turn came: it keeps it */
        q->next = g->qhead;
        g->qhead = q;
        if (g->qtail == NULL)
            g->qtail = q;
    } else {
        q->next = NULL;
        if (g->qtail)
            g->qtail->next = q;
        else
            g->qhead = q;
        g->qtail = q;
    }
    g->qlen++;
    /* More workers, if "processes" allows: only a dynamic pool (or one main
     * has not described yet) grows on demand; waking the control thread
     * for a static one would cost two system calls per queued request. */
    ask = g->dynamic || g->max == 0;
    pthread_mutex_unlock(&g->lock);
    if (ask)
        wr_app_scale_poke(c->t->router);
    c->state = WR_HC_APP_WAIT;
    c->app_next = c->t->app_waiting;
    c->t->app_waiting = c;
    /* Only a departure matters now; EPOLLIN goes lazily (wr_app_on_client). */
}

/* Connections of t waiting to move to another thread go now: whatever
 * event chose it is over. */
static void hop_out(wr_thread_t *t)
{
    wr_hconn_t *go = NULL, **p = &t->app_waiting;

    while (*p != NULL) {
        wr_hconn_t *c = *p;
        if (c->hop_to == NULL) {
            p = &c->app_next;
            continue;
        }
        *p = c->app_next;
        c->app_next = go;
        go = c;
    }
    while (go != NULL) {
        wr_hconn_t *c = go;
        go = c->app_next;
        wr_conn_hop(c);
    }
}

/* Workers other threads handed to this one's waiting connections, and
 * connections they moved here. */
/* A worker handed to a connection that is gone: back it goes (its claimed
 * slot freed, or the whole worker given to the next waiter or idle). */
static void handoff_back(const wr_handoff_t *h)
{
    if (h->w != NULL && h->claimed)
        http_slot_free(h->w, WR_PROXY_DONE, -1);
    else if (h->w != NULL)
        give(h->w);
}

void wr_thread_take_inbox(wr_thread_t *t)
{
    wr_handoff_t *h;
    wr_hconn_t *in;

    hop_out(t);
    pthread_mutex_lock(&t->inbox_lock);
    h = t->inbox;
    t->inbox = NULL;
    in = t->hop_in;
    t->hop_in = NULL;
    pthread_mutex_unlock(&t->inbox_lock);
    while (in != NULL) {
        wr_hconn_t *c = in;
        in = c->app_next;
        c->app_next = NULL;
        wr_conn_adopt(t, c);
    }
    while (h) {
        wr_handoff_t *next = h->next;
        wr_hconn_t *c = t->app_waiting;
        wr_worker_t *w = h->w;
        while (c && c->id != h->conn_id)
            c = c->app_next;
        if (h->again != NULL) {           /* told of a place (tell_head_locked) */
            if (c != NULL && c->app == h->again) {
                int retired;

                waiting_remove(c);
                pthread_mutex_lock(&h->again->lock);
                retired = h->again->retired;
                pthread_mutex_unlock(&h->again->lock);
                if (!retired) {
                    c->hopped = 0;        /* a hop for this turn */
                    c->app_front = 1;
                    dispatch(c);
                } else if (wr_app_scale_requeue(c) < 0) {
                    wr_conn_fail(c, 503); /* as the retirement's own notice */
                }
            } else if (c == NULL) {
                tell_next(h->again);
            }
            wr_appgen_unref(h->again);
        } else if (c == NULL) {           /* that connection is gone */
            handoff_back(h);
        } else {
            waiting_remove(c);
            if (w) {
                pthread_mutex_lock(&w->gen->lock);
                if (h->claimed)
                    count_locked(w, c->app_max_requests);
                else
                    claim_locked(w->gen, w, c);
                pthread_mutex_unlock(&w->gen->lock);
                /* Its other slots then go to more of this thread's
                 * waiters (the unhold's refill). */
                w->refill = !w->gen->http;
                start_on(c, w);
            } else if (wr_app_scale_requeue(c) < 0) {
                wr_conn_fail(c, 503);     /* its application is gone */
            }
        }
        free(h);
        h = next;
    }
}

/* ---- when a stream or a worker ends ---- */

/* Slot s of w is free: w goes on (refill). */
static void slot_free(wr_worker_t *w, wr_wstream_t *s)
{
    wr_appgen_t *g = w->gen;

    pthread_mutex_lock(&g->lock);
    w->active--;
    w->tunnels -= s->tunnel;
    pthread_mutex_unlock(&g->lock);
    memset(s, 0, sizeof(*s));
    refill(w->home, w);
}

/* c's stream became a tunnel (its worker answered 101). Within the room
 * the worker declared for tunnels it takes no serving thread any more:
 * its place goes to a waiter, if any. */
void wr_app_tunnel_opened(wr_hconn_t *c)
{
    wr_worker_t *w = c->worker;
    wr_wstream_t *s = c->wstream;
    int freed;

    if (w == NULL || s == NULL || s->tunnel)
        return;
    s->tunnel = 1;
    pthread_mutex_lock(&w->gen->lock);
    freed = ++w->tunnels <= (int) w->tunnel_room;
    pthread_mutex_unlock(&w->gen->lock);
    if (freed)
        refill(w->home, w);
}

void wr_app_stream_end(wr_hconn_t *c)
{
    wr_worker_t *w = c->worker;
    wr_wstream_t *s = c->wstream;
    wr_appgen_t *g;

    if (w == NULL || s == NULL)
        return;
    g = w->gen;
    c->worker = NULL;
    c->wstream = NULL;
    s->conn = NULL;
    pthread_mutex_lock(&g->lock);
    if (--w->conns == 0)
        w->orphan_since = wr_ev_now();
    pthread_mutex_unlock(&g->lock);
    if (!s->head_sent) {                  /* the worker never saw it */
        slot_free(w, s);
        return;
    }
    if (!c->req_done || !s->worker_closed) {
        /* proto.h: ABORT closes the router's direction if it is open, and
         * asks the worker to close its own (it answers with its ABORT). */
        c->req_done = 1;
        if (wr_app_send(w, WR_APP_ABORT, 0, s->id, NULL, 0) < 0) {
            if (errno != EAGAIN) {
                wr_app_worker_gone(w);
                return;
            }
            s->need_abort = 1;
            wr_app_want_out(w);
            return;
        }
    }
    if (s->worker_closed && !s->need_abort)
        slot_free(w, s);
    /* else the slot waits for the worker's RESP_END or ABORT, or for room
     * to send ours */
}

void wr_app_slot_closed(wr_worker_t *w, wr_wstream_t *s)
{
    s->worker_closed = 1;
    if (!s->need_abort)
        slot_free(w, s);
}

/* The request's method, from its encoded head (the method is its first
 * string): GET, HEAD and OPTIONS without a body may be sent again to
 * another worker when the one they were queued on died before answering. */
static int retry_allowed(const wr_hconn_t *c)
{
    uint32_t n;

    if (c->body_left != 0 || c->chunked || c->app->http || c->app_head.n < sizeof(n))
        return 0;
    memcpy(&n, c->app_head.p, sizeof(n));     /* REQ_HEAD: the method first */
    if (n > c->app_head.n - sizeof(n))
        return 0;
    return wr_http_retry_safe(c->app_head.p + sizeof(n), n);
}

/* Out of the lists and of the epoll, channel back to main. */
static void teardown(wr_worker_t *w)
{
    wr_appgen_t *g = w->gen;
    wr_thread_t *t = w->home;

    if (t != NULL)
        unhome(t, w);
    wr_app_worker_close(w);
    wr_appgen_unref(g);                   /* busy_add's */
}

void wr_app_worker_gone(wr_worker_t *w)
{
    wr_appgen_t *g = w->gen;
    wr_thread_t *t = w->home;
    wr_hconn_t *lost[WR_APP_MAX_STREAMS];
    int retry[WR_APP_MAX_STREAMS];
    int n = 0;

    if (w->dead)
        return;
    w->dead = 1;
    pthread_mutex_lock(&g->lock);
    busy_remove(g, w);
    w->home = t;                          /* still in its epoll: teardown */
    g->nworkers--;
    w->retiring = 1;
    pthread_mutex_unlock(&g->lock);
    /* A request queued behind others on it (its rank among the open streams
     * is past what the worker serves at once; tunnels in their own room do
     * not count) was never started: an idempotent one without a body goes
     * to another worker, once. */
    for (int i = 0; i < WR_APP_MAX_STREAMS; i++) {
        wr_wstream_t *s = &w->slot[i];
        wr_hconn_t *c = s->conn;
        uint32_t ahead = 0;

        if (!s->in_use || c == NULL)
            continue;
        for (int j = 0; j < WR_APP_MAX_STREAMS; j++)
            ahead += w->slot[j].in_use && w->slot[j].seq < s->seq
                     && !(w->slot[j].tunnel && w->tunnel_room > 0);
        c->worker = NULL;
        c->wstream = NULL;
        retry[n] = c->app_idem && !c->app_retried && !c->resp_started
                   && ahead >= w->streams;
        lost[n++] = c;
    }
    memset(w->slot, 0, sizeof(w->slot));
    for (int i = 0; i < n; i++) {
        wr_hconn_t *c = lost[i];
        if (retry[i] && c->conf != NULL) {
            wr_log(WR_LOG_NOTICE, "app \"%s\" worker %u (pid %d) ended with a request "
                   "queued on it: sending it to another worker", g->name, w->id,
                   (int) w->pid);
            c->app_retried = 1;
            c->state = WR_HC_APP;
            wr_app_begin(c);
        } else {
            wr_app_stream_lost(c);
        }
    }
    if (!w->held)
        teardown(w);
}

/* The loop of thread t ended (it was let go, or the router stops): its
 * connections are all closed, but a worker may still hold streams of
 * theirs it did not close yet. Nobody would read its channel again: it
 * goes back to main. */
void wr_app_thread_done(wr_thread_t *t)
{
    wr_handoff_t *h;

    /* Workers handed to its waiters as the loop ended go back: those
     * connections are gone (none is handed later: a thread's waiters leave
     * the queue with its connections). */
    pthread_mutex_lock(&t->inbox_lock);
    h = t->inbox;
    t->inbox = NULL;
    pthread_mutex_unlock(&t->inbox_lock);
    while (h != NULL) {
        wr_handoff_t *next = h->next;
        handoff_back(h);
        free(h);
        h = next;
    }
    while (t->homed != NULL)
        wr_app_worker_gone(t->homed);
}

/* ---- the client's side of the dispatch ---- */

/*
 * limits.timeout: the request gets a 503 (or, if its head is out, is cut
 * short) and main kills the hung worker (the router could not signal one
 * of another user) and replaces it. The worker's other requests are
 * answered now as for a worker that died (or retried, if queued on it).
 */
void wr_app_timeout(wr_hconn_t *c)
{
    wr_worker_t *w = c->worker;

    wr_log(WR_LOG_WARN, "application \"%s\" did not answer within %d s%s",
           c->app->name, c->app_timeout, w ? "; killing its worker" : " (queued)");
    if (c->state == WR_HC_APP_WAIT) {
        wr_app_conn_closing(c);           /* out of the queue */
        c->state = WR_HC_APP;
    }
    if (w != NULL) {
        wr_app_scale_kill(c->t->router, w);
        c->worker = NULL;
        c->wstream = NULL;
        /* c leaves its slot to the teardown: it is answered here. */
        for (int i = 0; i < WR_APP_MAX_STREAMS; i++)
            if (w->slot[i].conn == c)
                w->slot[i].conn = NULL;
        pthread_mutex_lock(&w->gen->lock);
        w->conns--;
        pthread_mutex_unlock(&w->gen->lock);
        wr_app_worker_gone(w);
    }
    if (c->head_out) {
        wr_conn_cut(c);
        return;
    }
    wr_conn_fail(c, 503);
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
                unlink_waiter_locked(g, p);
                free(q);
                break;
            }
        }
        pthread_mutex_unlock(&g->lock);
        waiting_remove(c);
    }
    /* Mid-stream: that stream alone ends (ABORT); the worker serves on. */
    if (c->worker && c->wstream)
        wr_app_stream_end(c);
}
