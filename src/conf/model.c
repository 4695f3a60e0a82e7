/*
 * C views of a validated configuration for the parts that don't read JSON.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"

/* Unit's defaults for settings.http (seconds and bytes). */
#define DEF_HEADER_READ_TIMEOUT       30
#define DEF_BODY_READ_TIMEOUT         30
#define DEF_SEND_TIMEOUT              30
#define DEF_IDLE_TIMEOUT              180
#define DEF_BODY_BUFFER_SIZE          8192L
#define DEF_MAX_BODY_SIZE             8388608L
#define DEF_LARGE_HEADER_BUFFER_SIZE  8192L
#define DEF_LARGE_HEADER_BUFFERS      4
#define DEF_LISTEN_THREADS            0     /* one per CPU */
#define DEF_WS_READ_TIMEOUT           60
#define DEF_WS_KEEPALIVE_INTERVAL     30
#define DEF_WS_MAX_FRAME_SIZE         1048576
#define DEF_H2_MAX_STREAMS            128       /* nginx's http2_max_concurrent_streams */

#define BACKLOG_UNSET                 (-1)

void
wr_conf_listeners_free(wr_conf_listeners_t *l)
{
    size_t i;

    for (i = 0; i < l->n; i++) {
        free(l->addr[i]);
    }
    free(l->addr);
    free(l->backlog);
    memset(l, 0, sizeof(*l));
}

const char *
wr_conf_cert_user(json_t *root, const char *name)
{
    json_t     *listener, *cert, *v;
    const char *addr;
    size_t      i;

    json_object_foreach(json_object_get(root, "listeners"), addr, listener) {
        cert = json_object_get(json_object_get(listener, "tls"), "certificate");
        if (json_is_string(cert) && strcmp(json_string_value(cert), name) == 0) {
            return addr;
        }
        json_array_foreach(cert, i, v) {
            if (json_is_string(v) && strcmp(json_string_value(v), name) == 0) {
                return addr;
            }
        }
    }
    return NULL;
}

int
wr_conf_js_module_name_ok(const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n > WR_CONF_JS_NAME_MAX || (name[0] >= '0' && name[0] <= '9')) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char c = name[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == '_' || c == '$')) {
            return 0;
        }
    }
    return 1;
}

const char *
wr_conf_js_module_user(json_t *root, const char *name)
{
    json_t *mods = json_object_get(json_object_get(root, "settings"), "js_module"), *v;
    size_t  i;

    if (json_is_string(mods) && strcmp(json_string_value(mods), name) == 0) {
        return "settings";
    }
    json_array_foreach(mods, i, v) {
        if (json_is_string(v) && strcmp(json_string_value(v), name) == 0) {
            return "settings";
        }
    }
    return NULL;
}

int
wr_conf_listeners(json_t *root, wr_conf_listeners_t *out)
{
    json_t     *listeners, *listener, *backlog;
    const char *addr;
    size_t      n;

    memset(out, 0, sizeof(*out));
    listeners = json_object_get(root, "listeners");
    n = json_object_size(listeners);       /* 0 for NULL or a non-object */
    if (n == 0) {
        return 0;
    }
    out->addr = calloc(n, sizeof(*out->addr));
    out->backlog = calloc(n, sizeof(*out->backlog));
    if (out->addr == NULL || out->backlog == NULL) {
        wr_conf_listeners_free(out);
        return -1;
    }
    /* jansson iterates objects in insertion order, i.e. document order. */
    json_object_foreach(listeners, addr, listener) {
        backlog = json_object_get(listener, "backlog");
        out->addr[out->n] = strdup(addr);
        if (out->addr[out->n] == NULL) {
            wr_conf_listeners_free(out);
            return -1;
        }
        out->backlog[out->n] = BACKLOG_UNSET;
        if (json_is_integer(backlog) && json_integer_value(backlog) >= 1
            && json_integer_value(backlog) <= INT_MAX)
        {
            out->backlog[out->n] = (int) json_integer_value(backlog);
        }
        out->n++;
    }
    return 0;
}

/* Overrides *out with obj[key] when that is an integer in [0, max]. */
static void
get_int(json_t *obj, const char *key, long max, long *out)
{
    json_t *v = json_object_get(obj, key);

    if (json_is_integer(v) && json_integer_value(v) >= 0
        && json_integer_value(v) <= max)
    {
        *out = (long) json_integer_value(v);
    }
}

static void
get_small_int(json_t *obj, const char *key, int *out)
{
    long v = *out;

    get_int(obj, key, INT_MAX, &v);
    *out = (int) v;
}

/* A string that fits (validation refused longer ones). */
static void
get_path(json_t *obj, const char *key, char *out, size_t size)
{
    const char *v = json_string_value(json_object_get(obj, key));

    if (v != NULL && strlen(v) < size) {
        memcpy(out, v, strlen(v) + 1);
    }
}

static void
get_bool(json_t *obj, const char *key, int *out)
{
    json_t *v = json_object_get(obj, key);

    if (json_is_boolean(v)) {
        *out = json_is_true(v);
    }
}

void
wr_conf_settings(json_t *root, wr_conf_settings_t *out)
{
    json_t *settings = json_object_get(root, "settings");
    json_t *http = json_object_get(settings, "http");
    json_t *ws;

    *out = (wr_conf_settings_t) {
        .header_read_timeout = DEF_HEADER_READ_TIMEOUT,
        .body_read_timeout = DEF_BODY_READ_TIMEOUT,
        .send_timeout = DEF_SEND_TIMEOUT,
        .idle_timeout = DEF_IDLE_TIMEOUT,
        .body_buffer_size = DEF_BODY_BUFFER_SIZE,
        .max_body_size = DEF_MAX_BODY_SIZE,
        .large_header_buffer_size = DEF_LARGE_HEADER_BUFFER_SIZE,
        .large_header_buffers = DEF_LARGE_HEADER_BUFFERS,
        .discard_unsafe_fields = 1,
        .log_route = 0,
        .server_version = 1,
        .chunked_transform = 0,
        .http2 = 0,
        .h2_max_streams = DEF_H2_MAX_STREAMS,
        .listen_threads = DEF_LISTEN_THREADS,
        .ws_read_timeout = DEF_WS_READ_TIMEOUT,
        .ws_keepalive_interval = DEF_WS_KEEPALIVE_INTERVAL,
        .ws_max_frame_size = DEF_WS_MAX_FRAME_SIZE,
    };
    get_small_int(http, "header_read_timeout", &out->header_read_timeout);
    get_small_int(http, "body_read_timeout", &out->body_read_timeout);
    get_small_int(http, "send_timeout", &out->send_timeout);
    get_small_int(http, "idle_timeout", &out->idle_timeout);
    get_int(http, "body_buffer_size", LONG_MAX, &out->body_buffer_size);
    get_int(http, "max_body_size", LONG_MAX, &out->max_body_size);
    get_path(http, "body_temp_path", out->body_temp_path, sizeof(out->body_temp_path));
    get_int(http, "large_header_buffer_size", LONG_MAX,
            &out->large_header_buffer_size);
    get_small_int(http, "large_header_buffers", &out->large_header_buffers);
    get_bool(http, "discard_unsafe_fields", &out->discard_unsafe_fields);
    get_bool(http, "log_route", &out->log_route);
    get_bool(http, "server_version", &out->server_version);
    get_bool(http, "chunked_transform", &out->chunked_transform);
    get_small_int(http, "proxy_keepalive", &out->proxy_keepalive);
    get_bool(http, "http2", &out->http2);
    get_small_int(http, "http2_max_concurrent_streams", &out->h2_max_streams);
    get_small_int(settings, "listen_threads", &out->listen_threads);
    ws = json_object_get(http, "websocket");
    get_small_int(ws, "read_timeout", &out->ws_read_timeout);
    get_small_int(ws, "keepalive_interval", &out->ws_keepalive_interval);
    get_int(ws, "max_frame_size", INT_MAX, &out->ws_max_frame_size);
}
