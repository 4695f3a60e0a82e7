/*
 * Connections to "proxy" upstreams kept alive between requests
 * (settings.http.proxy_keepalive, Warren), shared by the router's threads.
 * A connection is given back only at a request's start again (proxy.c
 * decides); it waits here, in no epoll, until a request to the same address
 * takes it or it has been unused for WR_HTTP_KEEP_IDLE_MS.
 */
#ifndef WR_ROUTER_UPOOL_H
#define WR_ROUTER_UPOOL_H

#include <pthread.h>
#include <stdint.h>

#include "core/addr.h"

typedef struct wr_upool_conn {
    wr_addr_t         addr;
    int               fd;
    uint64_t          since;         /* wr_ev_now() when it came back */
} wr_upool_conn_t;

typedef struct wr_upool {
    pthread_mutex_t   lock;
    wr_upool_conn_t  *v;             /* oldest first */
    size_t            n, cap;
} wr_upool_t;

void wr_upool_init(wr_upool_t *u);
void wr_upool_free(wr_upool_t *u);       /* closes what it still holds */

/* A kept connection to a (the newest), or -1: open a new one. */
int  wr_upool_take(wr_upool_t *u, const wr_addr_t *a);

/* Keep fd, connected to a, if fewer than max wait for a; else close it. */
void wr_upool_give(wr_upool_t *u, const wr_addr_t *a, int fd, int max);

/* Close the connections unused for idle_ms (the router's sweep). */
void wr_upool_age(wr_upool_t *u, uint64_t now, uint64_t idle_ms);

/* Can kept connection fd carry a request? Not when the upstream closed it
 * meanwhile (EOF waits) or sent bytes nobody asked for. */
int  wr_upool_usable(int fd);

#endif
