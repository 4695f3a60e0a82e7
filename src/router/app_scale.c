/*
 * The router's side of application scaling and of hung-worker kills.
 *
 * Who decides what ("processes": {max, spare, idle_timeout}):
 *   - main keeps a floor by itself: "spare" workers (an integer "processes"
 *     is max = spare = N, and then main alone keeps the N), and it never
 *     lets a generation have more than "max" processes, starting and dying
 *     ones included (src/daemon/apps.c). It holds back every spawn while
 *     workers keep failing (backoff): no respawn storm, whoever asks.
 *   - the router knows the demand. When requests wait (in the queue, or
 *     pipelined on a busy worker behind what it serves at once), or fewer
 *     than "spare" workers are idle, it asks main for the difference:
 *       WR_MSG_APP_WANT {gen, count}
 *       count = waiting + spare - idle - starting, at most
 *               max - running - starting
 *     One WANT per generation is in flight at a time; main answers every
 *     one with WR_MSG_APP_SCALE {gen, starting, max, spare, idle_timeout},
 *     which it also sends whenever its starting count changes. Threads
 *     that queue a request poke the control thread (an eventfd), so the
 *     ask goes out at once; the sweep tick (WR_WORKER_SWEEP_MS) asks again
 *     for what is still missing, e.g. spare workers after a busy spell.
 *   - the router lets idle workers go: on each tick, an idle worker idle
 *     for idle_timeout seconds or more is closed while more than "spare"
 *     are idle (the least recently used go first). It sees EOF and exits
 *     cleanly (released to main, below); main, above its floor, does not
 *     replace it.
 *   - every worker channel the router is done with (recycled after
 *     limits.requests, let go while idle, dropped after a failed exchange,
 *     or of a retired generation) goes back to main with
 *     WR_MSG_APP_RELEASE instead of being closed here: main closes it, so
 *     it knows which worker exits it caused. Any other exit, status 0
 *     included, is a failure that holds the generation's spawns back.
 *   - limits.timeout: a thread whose request timed out queues the worker
 *     here; the control thread sends WR_MSG_APP_KILL {gen, worker} and main
 *     (root, it knows the pid) kills it: the router could only signal
 *     workers of its own user.
 *   - a request still waiting when its generation is retired (the app was
 *     changed) moves to the app's generation in the thread's current
 *     configuration instead of getting a 503 (wr_app_scale_requeue).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include "core/log.h"
#include "router/conn.h"
#include "router/internal.h"

#define WR_APP_WANT_RETRY_MS  2000   /* a WANT unanswered this long is sent again */
#define WR_MS_PER_S           1000

/* Kills, then channels handed back: main learns of a hung worker before
 * the release that follows its timeout, so it still counts as a failure. */
static void send_kills(wr_router_t *r)
{
    wr_app_kill_t *lists[2];

    pthread_mutex_lock(&r->scale.lock);
    lists[0] = r->scale.kills;
    lists[1] = r->scale.releases;
    r->scale.kills = NULL;
    r->scale.releases = NULL;
    pthread_mutex_unlock(&r->scale.lock);
    for (int i = 0; i < 2; i++) {
        wr_app_kill_t *k = lists[i];
        while (k) {
            wr_app_kill_t *next = k->next;
            wr_msg_worker_t w = { .gen = k->gen, .worker = k->worker };
            wr_chan_send(&r->chan, k->fd < 0 ? WR_MSG_APP_KILL : WR_MSG_APP_RELEASE, 0,
                         &w, sizeof(w), k->fd);
            if (k->fd >= 0)
                close(k->fd);     /* main has its own copy now (or never will) */
            free(k);
            k = next;
        }
    }
}

static int count_idle(const wr_appgen_t *g)
{
    int n = 0;

    for (const wr_worker_t *w = g->idle; w; w = w->next)
        n++;
    return n;
}

/* Requests waiting for a worker: in the queue, and queued on busy workers
 * beyond what they serve at once ("pipeline"): both are demand. */
static int waiting(const wr_appgen_t *g)
{
    int n = g->qlen;

    for (const wr_worker_t *w = g->busy; w; w = w->bnext)
        n += wr_worker_queued(w);
    return n;
}

/* Workers g should get beyond those running and starting (locked). */
static int wanted_locked(const wr_appgen_t *g)
{
    int need, room, wait = waiting(g);

    if (g->retired)
        return 0;
    if (g->max == 0)              /* main has not told us (a new router): ask */
        return wait > 0 && g->idle == NULL ? wait : 0;
    if (!g->dynamic)
        return 0;                 /* main keeps a static pool by itself */
    need = wait + g->spare - count_idle(g) - g->starting;
    room = g->max - g->nworkers - g->starting;
    return need < room ? need : room;
}

static void ask(wr_router_t *r, wr_appgen_t *g)
{
    uint64_t now = wr_ev_now();
    wr_msg_want_t want;
    int n;

    if (g->asked != 0 && now - g->asked < WR_APP_WANT_RETRY_MS)
        return;
    pthread_mutex_lock(&g->lock);
    n = wanted_locked(g);
    pthread_mutex_unlock(&g->lock);
    if (n <= 0)
        return;
    want.gen = g->gen;
    want.count = (uint32_t) n;
    if (wr_chan_send(&r->chan, WR_MSG_APP_WANT, 0, &want, sizeof(want), -1) == 0)
        g->asked = now;
}

/* Close what stayed idle too long beyond spare (the idle list is most
 * recently used first). */
static void let_idle_go(wr_appgen_t *g, uint64_t now)
{
    wr_worker_t **p, *gone = NULL;
    int i = 0;

    pthread_mutex_lock(&g->lock);
    if (!g->dynamic || g->max == 0 || g->retired) {
        pthread_mutex_unlock(&g->lock);
        return;
    }
    for (p = &g->idle; *p; ) {
        wr_worker_t *w = *p;
        if (i < g->spare
            || now - w->idle_since < (uint64_t) g->idle_timeout * WR_MS_PER_S) {
            p = &w->next;
            i++;
            continue;
        }
        *p = w->next;
        g->nworkers--;
        w->next = gone;
        gone = w;
    }
    pthread_mutex_unlock(&g->lock);
    while (gone) {
        wr_worker_t *w = gone;
        gone = w->next;
        wr_log(WR_LOG_INFO, "app \"%s\" generation %u worker %u (pid %d) idle for %d s; "
               "letting it go", g->name, g->gen, w->id, (int) w->pid, g->idle_timeout);
        wr_app_worker_close(w);   /* it sees EOF and exits, as main expects */
    }
}

static void scale_all(wr_router_t *r, int idle_down)
{
    uint64_t now = wr_ev_now();

    send_kills(r);
    for (size_t i = 0; i < r->ngens; i++) {
        if (idle_down)
            let_idle_go(r->gens[i], now);
        ask(r, r->gens[i]);
    }
}

static void on_poke(wr_ev_loop_t *loop, wr_ev_t *ev, uint32_t events)
{
    wr_router_t *r = ev->data;
    uint64_t n;

    if (read(ev->fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
        wr_log_sys(WR_LOG_ERR, "read", "router scaling eventfd");
    atomic_store(&r->scale.poked, 0);
    scale_all(r, 0);
}

int wr_app_scale_init(wr_router_t *r)
{
    pthread_mutex_init(&r->scale.lock, NULL);
    atomic_init(&r->scale.poked, 0);
    r->scale.ev.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (r->scale.ev.fd < 0) {
        wr_log_sys(WR_LOG_ALERT, "eventfd", "router scaling");
        return -1;
    }
    r->scale.ev.cb = on_poke;
    r->scale.ev.data = r;
    if (wr_ev_add(&r->loop, &r->scale.ev, EPOLLIN) < 0) {
        wr_log_sys(WR_LOG_ALERT, "epoll_ctl", "router scaling eventfd");
        return -1;
    }
    return 0;
}

static void wake(wr_router_t *r)
{
    uint64_t one = 1;

    if (write(r->scale.ev.fd, &one, sizeof(one)) < 0)
        wr_log_sys(WR_LOG_ERR, "write", "router scaling eventfd");
}

void wr_app_scale_poke(wr_router_t *r)
{
    if (!atomic_exchange(&r->scale.poked, 1))
        wake(r);                  /* else the control thread will look anyway */
}

/* Queue k for the control thread (kills or releases) and wake it. */
static void queue(wr_router_t *r, wr_app_kill_t **list, wr_app_kill_t *k,
                  const wr_worker_t *w)
{
    k->gen = w->gen->gen;
    k->worker = w->id;
    pthread_mutex_lock(&r->scale.lock);
    k->next = *list;
    *list = k;
    pthread_mutex_unlock(&r->scale.lock);
    wr_app_scale_poke(r);
}

void wr_app_scale_kill(wr_router_t *r, const wr_worker_t *w)
{
    wr_app_kill_t *k = malloc(sizeof(*k));

    if (k == NULL) {
        wr_log(WR_LOG_CRIT, "out of memory asking main to kill worker %d", (int) w->pid);
        return;
    }
    k->fd = -1;
    queue(r, &r->scale.kills, k, w);
}

void wr_app_scale_release(wr_worker_t *w)
{
    wr_router_t *r = w->gen->router;
    wr_app_kill_t *k = malloc(sizeof(*k));

    if (k == NULL) {
        /* Closed here: main will take its exit for a failure. */
        wr_log(WR_LOG_CRIT, "out of memory handing worker %d back to main", (int) w->pid);
        close(w->fd);
        w->fd = -1;
        return;
    }
    k->fd = w->fd;
    w->fd = -1;
    queue(r, &r->scale.releases, k, w);
}

void wr_app_scale_tick(wr_router_t *r)
{
    scale_all(r, 1);
}

void wr_app_scale_on_msg(wr_router_t *r, const wr_msg_t *m)
{
    wr_msg_scale_t sc;
    wr_appgen_t *g;
    char *name;

    if (m->len <= sizeof(sc))
        return;
    memcpy(&sc, m->data, sizeof(sc));
    name = strndup(m->data + sizeof(sc), m->len - sizeof(sc));
    g = name ? wr_appgen_find(r, sc.gen, name, 1) : NULL;
    free(name);
    if (g == NULL)
        return;
    /* Failures count per generation in main, per name here. */
    if (g->stats && sc.failures > g->failures)
        atomic_fetch_add(&g->stats->worker_failures, sc.failures - g->failures);
    g->failures = sc.failures;
    pthread_mutex_lock(&g->lock);
    g->starting = sc.starting;
    g->max = sc.max;
    g->spare = sc.spare;
    g->idle_timeout = sc.idle_timeout;
    g->dynamic = sc.dynamic;
    pthread_mutex_unlock(&g->lock);
    g->asked = 0;
}

int wr_app_scale_requeue(wr_hconn_t *c)
{
    wr_rconf_t *cur = c->t->conf;
    const wr_rapp_t *ra = NULL;

    for (size_t i = 0; i < cur->napps && ra == NULL; i++)
        if (strcmp(cur->apps[i].name, c->app->name) == 0)
            ra = &cur->apps[i];
    if (ra == NULL || ra->gen == NULL || ra->gen == c->app)
        return -1;                /* the app is gone (or nothing newer) */
    /* The request now belongs to the configuration that holds the new
     * generation (c->conf keeps it alive until the response is out). */
    wr_rconf_ref(cur);
    wr_rconf_unref(c->conf);
    c->conf = cur;
    c->app = ra->gen;
    c->app_timeout = ra->timeout;
    c->app_max_requests = ra->max_requests;
    wr_app_begin(c);
    return 0;
}
