/*
 * The pool of kept upstream connections (upool.h): one array under one
 * lock. It holds few entries (proxy_keepalive per address the config
 * proxies to), and a request takes one or gives one back once: a scan is
 * cheaper than the connect it saves.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "core/ev.h"
#include "router/upool.h"

void wr_upool_init(wr_upool_t *u)
{
    memset(u, 0, sizeof(*u));
    pthread_mutex_init(&u->lock, NULL);
}

void wr_upool_free(wr_upool_t *u)
{
    for (size_t i = 0; i < u->n; i++)
        close(u->v[i].fd);
    free(u->v);
    pthread_mutex_destroy(&u->lock);
    memset(u, 0, sizeof(*u));
}

static int same(const wr_addr_t *x, const wr_addr_t *y)
{
    return x->len == y->len && memcmp(&x->sa, &y->sa, x->len) == 0;
}

int wr_upool_usable(int fd)
{
    char byte;

    return recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) < 0 && errno == EAGAIN;
}

/* Out of the array, order kept. Locked. */
static int pop_locked(wr_upool_t *u, size_t i)
{
    int fd = u->v[i].fd;

    memmove(&u->v[i], &u->v[i + 1], (u->n - i - 1) * sizeof(u->v[0]));
    u->n--;
    return fd;
}

int wr_upool_take(wr_upool_t *u, const wr_addr_t *a)
{
    for (;;) {
        int fd = -1;

        pthread_mutex_lock(&u->lock);
        for (size_t i = u->n; i-- > 0; )
            if (same(&u->v[i].addr, a)) {
                fd = pop_locked(u, i);
                break;
            }
        pthread_mutex_unlock(&u->lock);
        if (fd < 0 || wr_upool_usable(fd))
            return fd;
        close(fd);
    }
}

void wr_upool_give(wr_upool_t *u, const wr_addr_t *a, int fd, int max)
{
    int waiting = 0;

    pthread_mutex_lock(&u->lock);
    for (size_t i = 0; i < u->n; i++)
        waiting += same(&u->v[i].addr, a);
    if (waiting < max && u->n == u->cap) {
        size_t cap = u->cap ? u->cap * 2 : 16;
        wr_upool_conn_t *v = realloc(u->v, cap * sizeof(*v));
        if (v != NULL) {
            u->v = v;
            u->cap = cap;
        }
    }
    if (waiting < max && u->n < u->cap) {
        u->v[u->n].addr = *a;
        u->v[u->n].fd = fd;
        u->v[u->n].since = wr_ev_now();
        u->n++;
        fd = -1;
    }
    pthread_mutex_unlock(&u->lock);
    if (fd >= 0)
        close(fd);
}

void wr_upool_age(wr_upool_t *u, uint64_t now, uint64_t idle_ms)
{
    size_t n = 0;

    pthread_mutex_lock(&u->lock);
    for (size_t i = 0; i < u->n; i++) {
        /* Not now - since: a connection given after the caller read its
         * clock is younger than none, not as old as the clock. */
        if (u->v[i].since + idle_ms <= now)
            close(u->v[i].fd);
        else
            u->v[n++] = u->v[i];
    }
    u->n = n;
    pthread_mutex_unlock(&u->lock);
}
