/*
 * Upstreams (upstream.h). The pick is nginx's smooth weighted round robin,
 * a fact of its documentation: every server's score grows by its weight,
 * the highest score wins and loses the sum of all weights. Over any run of
 * picks the counts follow the weights, and picks of one server are spread
 * out rather than bunched.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/upstream.h"

#define URL_SCHEME        "http://"
#define DEFAULT_WEIGHT    1.0

static int build_one(wr_upstream_t *up, const char *name, json_t *servers)
{
    const char *addr;
    json_t *s;

    up->name = strdup(name);
    up->servers = calloc(json_object_size(servers) + 1, sizeof(*up->servers));
    pthread_mutex_init(&up->lock, NULL);
    if (up->name == NULL || up->servers == NULL)
        return -1;
    json_object_foreach(servers, addr, s) {
        wr_upserver_t *sv = &up->servers[up->n];
        json_t *w = json_object_get(s, "weight");
        size_t len = sizeof(URL_SCHEME) + strlen(addr);

        sv->url = malloc(len);
        if (sv->url == NULL)
            return -1;
        snprintf(sv->url, len, URL_SCHEME "%s", addr);
        sv->weight = json_is_number(w) ? json_number_value(w) : DEFAULT_WEIGHT;
        up->n++;
    }
    return 0;
}

int wr_upstreams_build(json_t *conf, wr_upstreams_t *out, char *reason, size_t len)
{
    json_t *ups = json_object_get(conf, "upstreams"), *u;
    const char *name;

    memset(out, 0, sizeof(*out));
    out->v = calloc(json_object_size(ups) + 1, sizeof(*out->v));
    if (out->v == NULL)
        goto nomem;
    json_object_foreach(ups, name, u) {
        /* counted before it is filled: a half-built one is freed too */
        if (build_one(&out->v[out->n++], name, json_object_get(u, "servers")) < 0)
            goto nomem;
    }
    return 0;

nomem:
    snprintf(reason, len, "out of memory");
    wr_upstreams_free(out);
    return -1;
}

void wr_upstreams_free(wr_upstreams_t *u)
{
    for (size_t i = 0; i < u->n; i++) {
        wr_upstream_t *up = &u->v[i];
        for (size_t j = 0; j < up->n; j++)
            free(up->servers[j].url);
        free(up->servers);
        free(up->name);
        pthread_mutex_destroy(&up->lock);
    }
    free(u->v);
    memset(u, 0, sizeof(*u));
}

const char *wr_upstream_pick(wr_upstreams_t *u, const char *name)
{
    wr_upstream_t *up = NULL;
    wr_upserver_t *best = NULL;
    double total = 0;

    for (size_t i = 0; i < u->n && up == NULL; i++)
        if (strcmp(u->v[i].name, name) == 0)
            up = &u->v[i];
    if (up == NULL || up->n == 0)
        return NULL;
    pthread_mutex_lock(&up->lock);
    for (size_t j = 0; j < up->n; j++) {
        wr_upserver_t *s = &up->servers[j];
        s->current += s->weight;
        total += s->weight;
        if (best == NULL || s->current > best->current)
            best = s;
    }
    best->current -= total;
    pthread_mutex_unlock(&up->lock);
    return best->url;
}
