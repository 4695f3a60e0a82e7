/*
 * The config's "upstreams" (as Unit): named groups of HTTP servers, each
 * with a weight; "pass": "upstreams/NAME" proxies a request to one of them,
 * picked by smooth weighted round robin (a server of weight 3 beside one
 * of weight 1 gets 3 of every 4 requests, never 3 in a row when it can be
 * helped). Built with the config; the pick is shared by every router
 * thread (one lock per upstream).
 */
#ifndef WR_ROUTER_UPSTREAM_H
#define WR_ROUTER_UPSTREAM_H

#include <pthread.h>
#include <stddef.h>

#include <jansson.h>

typedef struct wr_upserver {
    char        *url;                /* "http://ADDR", as the proxy action has it */
    double       weight;
    double       current;            /* the round robin's running score */
} wr_upserver_t;

typedef struct wr_upstream {
    char            *name;
    pthread_mutex_t  lock;           /* the scores */
    wr_upserver_t   *servers;
    size_t           n;
} wr_upstream_t;

typedef struct wr_upstreams {
    wr_upstream_t   *v;
    size_t           n;
} wr_upstreams_t;

/* From a validated config. Returns 0, or -1 with reason set. */
int  wr_upstreams_build(json_t *conf, wr_upstreams_t *out, char *reason, size_t len);
void wr_upstreams_free(wr_upstreams_t *u);

/* The server of upstream name for the next request (its URL, valid while
 * the config is), or NULL: no such upstream, or it has no servers. */
const char *wr_upstream_pick(wr_upstreams_t *u, const char *name);

#endif
