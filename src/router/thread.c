/*
 * Router threads: one epoll loop each. Every listen socket sits in every
 * thread's epoll with EPOLLEXCLUSIVE, so one thread wakes per connection.
 * A new configuration is published by the control thread; each worker takes
 * it at its next wake-up (eventfd), re-syncs its listen set, and says so —
 * the control thread acknowledges main only when all have.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "core/log.h"
#include "router/internal.h"

/* ---- helpers the connections use ---- */

const char *wr_thread_date(wr_thread_t *t)
{
    time_t now = time(NULL);

    if (now != t->date_sec) {
        wr_http_date(now, t->date);
        t->date_sec = now;
    }
    return t->date;
}

/* xorshift128+: request ids need to be unique, not secret. */
void wr_thread_request_id(wr_thread_t *t, char out[33])
{
    static const char hex[] = "0123456789abcdef";

    for (int half = 0; half < 2; half++) {
        uint64_t s1 = t->rng[0], s0 = t->rng[1], v;
        t->rng[0] = s0;
        s1 ^= s1 << 23;
        t->rng[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
        v = t->rng[1] + s0;
        for (int i = 0; i < 16; i++)
            out[half * 16 + i] = hex[(v >> (i * 4)) & 0xf];
    }
    out[32] = '\0';
}

/* ---- listen sockets ---- */

static void on_accept(wr_ev_loop_t *loop, wr_ev_t *ev, uint32_t events)
{
    wr_thread_t *t = ev->data;
    wr_listener_t *l = NULL;

    for (size_t i = 0; i < t->nl; i++)
        if (&t->lev[i] == ev)
            l = t->lsock[i];
    if (l == NULL || atomic_load(&t->draining))
        return;
    for (;;) {
        int fd = accept4(ev->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE)
                wr_log_sys(WR_LOG_CRIT, "accept4", l->addr);
            else if (errno != EAGAIN)
                wr_log_sys(WR_LOG_ERR, "accept4", l->addr);
            return;
        }
        wr_conn_accepted(t, l, fd);
    }
}

static void listen_drop_all(wr_thread_t *t)
{
    /* An accept event for these may still wait in the current batch. */
    for (size_t i = 0; i < t->nl; i++) {
        wr_ev_retire(&t->loop, &t->lev[i], NULL);
        wr_listener_unref(t->lsock[i]);
    }
    wr_ev_defer_free(&t->loop, t->lev);
    free(t->lsock);
    t->lev = NULL;
    t->lsock = NULL;
    t->nl = 0;
}

/* Make this thread's epoll hold exactly the sockets of c. The event structs
 * are rebuilt, so every socket is re-added (cheap; configs are rare). */
static void listen_sync(wr_thread_t *t, wr_rconf_t *c)
{
    listen_drop_all(t);
    if (atomic_load(&t->draining) || c == NULL || c->nlisten == 0)
        return;
    t->lev = calloc(c->nlisten, sizeof(*t->lev));
    t->lsock = calloc(c->nlisten, sizeof(*t->lsock));
    if (t->lev == NULL || t->lsock == NULL) {
        wr_log(WR_LOG_ALERT, "out of memory syncing listeners");
        return;
    }
    for (size_t i = 0; i < c->nlisten; i++) {
        wr_listener_t *l = c->listen[i].sock;
        t->lev[t->nl].fd = l->fd;
        t->lev[t->nl].cb = on_accept;
        t->lev[t->nl].data = t;
        if (wr_ev_add(&t->loop, &t->lev[t->nl], EPOLLIN | EPOLLEXCLUSIVE) < 0)
            continue;
        atomic_fetch_add(&l->refs, 1);
        t->lsock[t->nl++] = l;
    }
}

/* ---- taking a new config ---- */

static void take_conf(wr_thread_t *t)
{
    wr_router_t *r = t->router;
    wr_rconf_t *c = atomic_load(&r->conf);

    if (c != t->conf) {
        if (c)
            wr_rconf_ref(c);
        wr_rconf_unref(t->conf);
        t->conf = c;
    }
    listen_sync(t, c);
    pthread_mutex_lock(&r->lock);
    r->synced++;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

static void on_notify(wr_ev_loop_t *loop, wr_ev_t *ev, uint32_t events)
{
    wr_thread_t *t = ev->data;
    uint64_t v;

    if (read(ev->fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        wr_log_sys(WR_LOG_ERR, "read", "router thread eventfd");
    take_conf(t);
    if (atomic_load(&t->draining)) {
        wr_conn_close_idle(t);
        if (t->conns == 0)
            loop->stop = 1;
    }
}

void wr_thread_conn_closed(wr_thread_t *t)
{
    t->conns--;
    if (atomic_load(&t->draining) && t->conns == 0)
        t->loop.stop = 1;
}

static void *thread_main(void *arg)
{
    wr_thread_t *t = arg;
    char name[16];

    snprintf(name, sizeof(name), "router %d", t->index);
    pthread_setname_np(pthread_self(), name);
    take_conf(t);
    wr_ev_run(&t->loop);
    listen_drop_all(t);
    return NULL;
}

static int thread_init(wr_router_t *r, wr_thread_t *t, int index)
{
    memset(t, 0, sizeof(*t));
    t->router = r;
    t->index = index;
    if (getrandom(t->rng, sizeof(t->rng), 0) != sizeof(t->rng))
        t->rng[0] = (uint64_t) time(NULL) ^ ((uint64_t) index << 32), t->rng[1] = 0x9e3779b97f4a7c15ULL;
    if (t->rng[0] == 0 && t->rng[1] == 0)
        t->rng[1] = 1;
    if (wr_ev_init(&t->loop) < 0)
        return -1;
    t->notify.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (t->notify.fd < 0) {
        wr_log_sys(WR_LOG_ALERT, "eventfd", "router thread");
        return -1;
    }
    t->notify.cb = on_notify;
    t->notify.data = t;
    return wr_ev_add(&t->loop, &t->notify, EPOLLIN);
}

static void wait_synced(wr_router_t *r)
{
    pthread_mutex_lock(&r->lock);
    while (r->synced < r->nthreads)
        pthread_cond_wait(&r->cond, &r->lock);
    pthread_mutex_unlock(&r->lock);
}

int wr_threads_start(wr_router_t *r, int n)
{
    r->threads = calloc((size_t) n, sizeof(*r->threads));
    if (r->threads == NULL)
        return -1;
    r->synced = 0;
    for (int i = 0; i < n; i++) {
        if (thread_init(r, &r->threads[i], i) < 0)
            return -1;
        if (pthread_create(&r->threads[i].tid, NULL, thread_main, &r->threads[i]) != 0) {
            wr_log(WR_LOG_ALERT, "pthread_create(router thread %d) failed", i);
            return -1;
        }
        r->nthreads++;
    }
    wait_synced(r);
    return 0;
}

static void notify_all(wr_router_t *r)
{
    uint64_t one = 1;

    for (int i = 0; i < r->nthreads; i++)
        if (write(r->threads[i].notify.fd, &one, sizeof(one)) < 0)
            wr_log_sys(WR_LOG_ALERT, "write", "router thread eventfd");
}

void wr_threads_publish(wr_router_t *r, wr_rconf_t *c)
{
    wr_rconf_t *old = atomic_exchange(&r->conf, c);

    pthread_mutex_lock(&r->lock);
    r->synced = 0;
    pthread_mutex_unlock(&r->lock);
    notify_all(r);
    wait_synced(r);
    wr_rconf_unref(old);
}

/* Graceful stop: stop accepting, close idle connections, let the others
 * finish their request, then the threads end. (A fast stop just exits.) */
void wr_threads_drain(wr_router_t *r)
{
    for (int i = 0; i < r->nthreads; i++)
        atomic_store(&r->threads[i].draining, 1);
    notify_all(r);
    for (int i = 0; i < r->nthreads; i++)
        pthread_join(r->threads[i].tid, NULL);
}

void wr_threads_counters(wr_router_t *r, wr_counters_t *sum)
{
    memset(sum, 0, sizeof(*sum));
    for (int i = 0; i < r->nthreads; i++) {
        wr_counters_t *c = &r->threads[i].count;
        sum->accepted += atomic_load(&c->accepted);
        sum->closed += atomic_load(&c->closed);
        sum->requests += atomic_load(&c->requests);
        sum->active += atomic_load(&c->active);
        sum->idle += atomic_load(&c->idle);
    }
}
