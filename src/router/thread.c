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
#include "router/h2.h"

#define WR_RNG_FALLBACK  0x9e3779b97f4a7c15ULL   /* any odd constant */

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
    wr_rconf_t *c;
    unsigned gen;

    pthread_mutex_lock(&r->lock);
    gen = r->pub_gen;
    c = atomic_load(&r->conf);
    pthread_mutex_unlock(&r->lock);
    if (c != t->conf) {
        wr_rconf_ref(c);
        wr_rconf_unref(t->conf);
        t->conf = c;
    }
    listen_sync(t, c);
    pthread_mutex_lock(&r->lock);
    t->seen_gen = gen;
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
    wr_thread_take_inbox(t);
    if (atomic_load(&t->draining)) {
        /* Stopping: idle keep-alive connections go now. A thread merely let
         * go answers their next request (with Connection: close) instead,
         * so no client races a close. */
        if (atomic_load(&t->close_idle))
            wr_conn_close_idle(t);
        wr_h2_drain(t);
        if (t->conns == 0)
            loop->stop = 1;
    }
}

void wr_thread_wake(wr_thread_t *t)
{
    uint64_t one = 1;

    if (write(t->notify.fd, &one, sizeof(one)) < 0)
        wr_log_sys(WR_LOG_ERR, "write", "router thread eventfd");
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
    wr_conn_drop_moved(t);
    wr_app_thread_done(t);
    listen_drop_all(t);
    return NULL;
}

/* ---- the set of threads (the control thread's business only) ---- */

static void thread_free(wr_thread_t *t)
{
    close(t->notify.fd);
    wr_ev_free(&t->loop);
    wr_rconf_unref(t->conf);
    free(t->rbuf);
    free(t->fbuf);
    wr_buf_free(&t->out);
    wr_buf_free(&t->scratch);
    wr_buf_free(&t->uri);
    free(t);
}

static wr_thread_t *thread_new(wr_router_t *r, int index)
{
    wr_thread_t *t = calloc(1, sizeof(*t));

    if (t == NULL)
        return NULL;
    t->router = r;
    t->index = index;
    t->notify.fd = -1;
    if (getrandom(t->rng, sizeof(t->rng), 0) != sizeof(t->rng)) {
        t->rng[0] = (uint64_t) time(NULL) ^ ((uint64_t) index << 32);
        t->rng[1] = WR_RNG_FALLBACK;
    }
    if (t->rng[0] == 0 && t->rng[1] == 0)
        t->rng[1] = 1;
    if (wr_ev_init(&t->loop) < 0)
        goto fail;
    t->notify.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (t->notify.fd < 0) {
        wr_log_sys(WR_LOG_ALERT, "eventfd", "router thread");
        goto fail;
    }
    t->notify.cb = on_notify;
    t->notify.data = t;
    pthread_mutex_init(&t->inbox_lock, NULL);
    if (wr_ev_add(&t->loop, &t->notify, EPOLLIN) < 0)
        goto fail;
    /* Started as of the current publication: it takes that config first. */
    t->seen_gen = r->pub_gen - 1;
    if (pthread_create(&t->tid, NULL, thread_main, t) != 0) {
        wr_log(WR_LOG_ALERT, "pthread_create(router thread %d) failed", index);
        goto fail;
    }
    return t;
fail:
    thread_free(t);
    return NULL;
}

/* Every serving thread has taken publication pub_gen. */
static void wait_synced(wr_router_t *r)
{
    pthread_mutex_lock(&r->lock);
    for (int i = 0; i < r->nthreads; i++)
        while (r->threads[i]->seen_gen != r->pub_gen)
            pthread_cond_wait(&r->cond, &r->lock);
    pthread_mutex_unlock(&r->lock);
}

static void notify(wr_thread_t *t)
{
    uint64_t one = 1;

    if (write(t->notify.fd, &one, sizeof(one)) < 0)
        wr_log_sys(WR_LOG_ALERT, "write", "router thread eventfd");
}

static void add_counters(wr_counters_t *sum, wr_counters_t *c)
{
    sum->accepted += atomic_load(&c->accepted);
    sum->closed += atomic_load(&c->closed);
    sum->requests += atomic_load(&c->requests);
    sum->active += atomic_load(&c->active);
    sum->idle += atomic_load(&c->idle);
    sum->tls_failed += atomic_load(&c->tls_failed);
    wr_stats_add(&sum->stats, &c->stats);
}

/* Threads let go by a smaller listen_threads end once their connections
 * have; join those that did, keeping their totals for /status. */
void wr_threads_reap(wr_router_t *r)
{
    int j = 0;

    pthread_mutex_lock(&r->count_lock);
    for (int i = 0; i < r->nretiring; i++) {
        wr_thread_t *t = r->retiring[i];
        if (pthread_tryjoin_np(t->tid, NULL) != 0) {
            r->retiring[j++] = t;
            continue;
        }
        add_counters(&r->retired_count, &t->count);
        thread_free(t);
    }
    r->nretiring = j;
    pthread_mutex_unlock(&r->count_lock);
}

/* Grow or shrink to n serving threads. A thread let go stops accepting,
 * finishes the requests it has, then ends (wr_threads_reap joins it). */
int wr_threads_resize(wr_router_t *r, int n)
{
    while (r->nthreads < n) {
        wr_thread_t *t = thread_new(r, r->nthreads);
        if (t == NULL)
            return -1;
        pthread_mutex_lock(&r->count_lock);
        r->threads[r->nthreads++] = t;
        pthread_mutex_unlock(&r->count_lock);
    }
    while (r->nthreads > n) {
        pthread_mutex_lock(&r->count_lock);
        wr_thread_t *t = r->threads[--r->nthreads];
        r->retiring[r->nretiring++] = t;
        pthread_mutex_unlock(&r->count_lock);
        atomic_store(&t->draining, 1);
        notify(t);
    }
    wait_synced(r);
    return 0;
}

void wr_threads_publish(wr_router_t *r, wr_rconf_t *c)
{
    wr_rconf_t *old;

    pthread_mutex_lock(&r->lock);
    old = atomic_exchange(&r->conf, c);
    r->pub_gen++;
    pthread_mutex_unlock(&r->lock);
    for (int i = 0; i < r->nthreads; i++)
        notify(r->threads[i]);
    for (int i = 0; i < r->nretiring; i++)
        notify(r->retiring[i]);
    wait_synced(r);
    wr_rconf_unref(old);
}

/* Graceful stop: stop accepting, close idle connections, let the others
 * finish their request, then the threads end. (A fast stop just exits.) */
void wr_threads_drain(wr_router_t *r)
{
    for (int i = 0; i < r->nthreads; i++)
        atomic_store(&r->threads[i]->close_idle, 1);
    for (int i = 0; i < r->nretiring; i++) {
        atomic_store(&r->retiring[i]->close_idle, 1);
        notify(r->retiring[i]);
    }
    wr_threads_resize(r, 0);
    for (int i = 0; i < r->nretiring; i++)
        pthread_join(r->retiring[i]->tid, NULL);
}

/* Any thread: the control thread reaps (joins) apart, before. */
void wr_threads_counters(wr_router_t *r, wr_counters_t *sum)
{
    memset(sum, 0, sizeof(*sum));
    pthread_mutex_lock(&r->count_lock);
    add_counters(sum, &r->retired_count);
    for (int i = 0; i < r->nthreads; i++)
        add_counters(sum, &r->threads[i]->count);
    for (int i = 0; i < r->nretiring; i++)
        add_counters(sum, &r->retiring[i]->count);
    pthread_mutex_unlock(&r->count_lock);
}
