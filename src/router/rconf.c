/*
 * Compiled configurations. Everything a new configuration needs is built
 * beside the running one; if any part fails, it is thrown away and the
 * running one stays. Published configs are reference counted: each thread
 * holds the current one and each request the one it started on.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "router/internal.h"
#include "script/script.h"
#include "tls/tls.h"

void wr_listener_unref(wr_listener_t *l)
{
    if (l && atomic_fetch_sub(&l->refs, 1) == 1) {
        close(l->fd);
        free(l->addr);
        free(l);
    }
}

void wr_rconf_ref(wr_rconf_t *c)
{
    atomic_fetch_add(&c->refs, 1);
}

static void rconf_free(wr_rconf_t *c)
{
    wr_routes_free(c->routes);
    wr_mime_free(c->mime);
    wr_alog_format_free(c->alog);
    for (size_t i = 0; i < c->nlisten; i++) {
        wr_listener_unref(c->listen[i].sock);
        free(c->listen[i].pass);
        wr_forwarded_free(c->listen[i].forwarded);
        wr_tls_server_unref(c->listen[i].tls);
    }
    free(c->listen);
    for (size_t i = 0; i < c->napps; i++) {
        free(c->apps[i].name);
        wr_appgen_unref(c->apps[i].gen);
    }
    free(c->apps);
    wr_upstreams_free(&c->upstreams);
    wr_script_env_free(c->js);
    wr_tel_conf_free(c->tel);
    free(c);
}

void wr_rconf_unref(wr_rconf_t *c)
{
    if (c && atomic_fetch_sub(&c->refs, 1) == 1)
        rconf_free(c);
}

static wr_listener_t *find_sock(wr_router_t *r, const char *addr)
{
    for (size_t i = 0; i < r->nsocks; i++)
        if (strcmp(r->socks[i]->addr, addr) == 0)
            return r->socks[i];
    return NULL;
}

static int build_listeners(wr_router_t *r, wr_rconf_t *c, json_t *conf, char *reason)
{
    json_t *ls = json_object_get(conf, "listeners"), *l;
    const char *addr;

    c->listen = calloc(json_object_size(ls) + 1, sizeof(*c->listen));
    if (c->listen == NULL)
        return -1;
    json_object_foreach(ls, addr, l) {
        wr_listener_t *s = find_sock(r, addr);
        const char *pass = json_string_value(json_object_get(l, "pass"));

        if (s == NULL) {
            snprintf(reason, WR_ROUTER_REASON_MAX, "no socket for listener \"%s\"", addr);
            return -1;
        }
        atomic_fetch_add(&s->refs, 1);
        c->listen[c->nlisten].sock = s;
        c->listen[c->nlisten].pass = strdup(pass ? pass : "");
        c->nlisten++;
        if (json_object_get(l, "forwarded")) {
            char why[WR_ROUTER_REASON_MAX / 2];
            c->listen[c->nlisten - 1].forwarded =
                wr_forwarded_compile(json_object_get(l, "forwarded"), why, sizeof(why));
            if (c->listen[c->nlisten - 1].forwarded == NULL) {
                snprintf(reason, WR_ROUTER_REASON_MAX, "listener \"%s\" forwarded: %s",
                         addr, why);
                return -1;
            }
        }
        if (json_object_get(l, "tls")) {
            c->listen[c->nlisten - 1].tls = wr_tls_server_new(json_object_get(l, "tls"),
                                                              r->certs, addr,
                                                              c->settings.http2, reason,
                                                              WR_ROUTER_REASON_MAX);
            if (c->listen[c->nlisten - 1].tls == NULL)
                return -1;
        }
    }
    return 0;
}

/* Each application of the config, with the generation main started for it
 * (from the map main sent just before the config). */
static int build_apps(wr_router_t *r, wr_rconf_t *c, json_t *conf)
{
    json_t *apps = json_object_get(conf, "applications"), *v;
    const char *name, *proto;

    c->apps = calloc(json_object_size(apps) + 1, sizeof(*c->apps));
    if (c->apps == NULL)
        return -1;
    json_object_foreach(apps, name, v) {
        json_t *gen = json_object_get(r->app_map, name);
        wr_appgen_t *g = json_is_integer(gen)
            ? wr_appgen_find(r, (uint32_t) json_integer_value(gen), name, 1) : NULL;
        c->apps[c->napps].name = strdup(name);
        if (c->apps[c->napps].name == NULL)
            return -1;
        if (g)
            atomic_fetch_add(&g->refs, 1);
        c->apps[c->napps].timeout = (int) json_integer_value(
            json_object_get(json_object_get(v, "limits"), "timeout"));
        c->apps[c->napps].max_requests = (long) json_integer_value(
            json_object_get(json_object_get(v, "limits"), "requests"));
        proto = json_string_value(json_object_get(v, "protocol"));
        c->apps[c->napps].http = proto != NULL && strcmp(proto, "http") == 0;
        if (g) {
            json_t *pl = json_object_get(v, "pipeline");
            json_t *procs = json_object_get(v, "processes");
            pthread_mutex_lock(&g->lock);
            g->http = c->apps[c->napps].http;
            g->no_workers = json_is_integer(procs) && json_integer_value(procs) == 0;
            if (json_is_integer(pl))
                g->pipeline = (int) json_integer_value(pl);
            pthread_mutex_unlock(&g->lock);
        }
        c->apps[c->napps++].gen = g;
    }
    return 0;
}

wr_rconf_t *wr_rconf_build(wr_router_t *r, const char *text, size_t len, char *reason)
{
    wr_conf_error_t err;
    json_t *conf;
    wr_rconf_t *c = NULL;

    wr_conf_error_init(&err);
    conf = wr_conf_parse(text, len, &err);
    if (conf == NULL) {
        snprintf(reason, WR_ROUTER_REASON_MAX, "unreadable configuration: %s",
                 err.detail ? err.detail : "");
        wr_conf_error_clear(&err);
        return NULL;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        goto nomem;
    atomic_init(&c->refs, 1);
    wr_conf_settings(conf, &c->settings);
    wr_http_limits_default(&c->limits);
    c->limits.header_buffer_size = (size_t) c->settings.large_header_buffer_size;
    c->limits.header_buffers = (size_t) c->settings.large_header_buffers;
    c->limits.discard_unsafe_fields = c->settings.discard_unsafe_fields;

    c->routes = wr_routes_compile(conf, reason, WR_ROUTER_REASON_MAX);
    if (c->routes == NULL)
        goto fail;
    reason[0] = '\0';
    c->js = wr_router_js_env(conf, r->js_modules, reason, WR_ROUTER_REASON_MAX);
    if (c->js == NULL && reason[0] != '\0')
        goto fail;
    c->tel = wr_tel_conf_new(json_object_get(conf, "settings"), reason, WR_ROUTER_REASON_MAX);
    if (c->tel == NULL && reason[0] != '\0')
        goto fail;
    c->mime = wr_mime_compile(conf, reason, WR_ROUTER_REASON_MAX);
    if (c->mime == NULL)
        goto fail;
    reason[0] = '\0';
    c->alog = wr_alog_format_compile(json_object_get(conf, "access_log"), reason,
                                     WR_ROUTER_REASON_MAX);
    if (c->alog == NULL && reason[0] != '\0')
        goto fail;
    if (build_listeners(r, c, conf, reason) < 0)
        goto fail;
    if (build_apps(r, c, conf) < 0)
        goto nomem;
    if (wr_upstreams_build(conf, &c->upstreams, reason, WR_ROUTER_REASON_MAX) < 0)
        goto fail;
    json_decref(conf);
    return c;

nomem:
    snprintf(reason, WR_ROUTER_REASON_MAX, "out of memory");
fail:
    json_decref(conf);
    if (c)
        rconf_free(c);
    return NULL;
}

wr_script_env_t *wr_router_js_env(json_t *conf, json_t *js_modules, char *err, size_t errlen)
{
    json_t *names = json_object_get(json_object_get(conf, "settings"), "js_module"), *one, *src;
    wr_script_env_t *env;
    size_t i;

    if (names == NULL)
        return NULL;
    if ((env = wr_script_env_new()) == NULL)
        goto nomem;
    if (json_is_string(names)) {
        one = json_array();
        if (one == NULL || json_array_append(one, names) < 0) {
            json_decref(one);
            goto nomem;
        }
        names = one;
    } else {
        json_incref(names);
    }
    json_array_foreach(names, i, one) {
        const char *name = json_string_value(one);

        src = json_object_get(js_modules, name);
        if (!json_is_string(src)) {
            snprintf(err, errlen, "The JS module \"%s\" that \"settings/js_module\" names "
                     "is not stored.", name);
            break;
        }
        if (wr_script_env_add(env, name, json_string_value(src), json_string_length(src)) < 0) {
            snprintf(err, errlen, "out of memory");
            break;
        }
    }
    if (i < json_array_size(names)) {
        wr_script_env_free(env);
        env = NULL;
    }
    json_decref(names);
    return env;

nomem:
    wr_script_env_free(env);
    snprintf(err, errlen, "out of memory");
    return NULL;
}

int wr_router_check(json_t *conf, json_t *js_modules, char *err, size_t errlen)
{
    wr_routes_t *routes;
    wr_mime_t *mime;
    wr_alog_format_t *alog;
    wr_script_env_t *env;
    wr_tel_conf_t *tel;
    char why[WR_ROUTER_REASON_MAX];

    routes = wr_routes_compile(conf, err, errlen);
    if (routes == NULL)
        return -1;
    wr_routes_free(routes);
    err[0] = '\0';
    env = wr_router_js_env(conf, js_modules, err, errlen);
    if (env == NULL && err[0] != '\0')
        return -1;
    if (env != NULL && wr_script_env_check(env, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "The value at \"/settings/js_module\" cannot be loaded: %s", why);
        wr_script_env_free(env);
        return -1;
    }
    wr_script_env_free(env);
    tel = wr_tel_conf_new(json_object_get(conf, "settings"), err, errlen);
    if (tel == NULL && err[0] != '\0')
        return -1;
    wr_tel_conf_free(tel);
    mime = wr_mime_compile(conf, err, errlen);
    if (mime == NULL)
        return -1;
    wr_mime_free(mime);
    err[0] = '\0';
    alog = wr_alog_format_compile(json_object_get(conf, "access_log"), err, errlen);
    if (alog == NULL && err[0] != '\0')
        return -1;
    wr_alog_format_free(alog);
    return wr_tls_check(conf, err, errlen);
}
