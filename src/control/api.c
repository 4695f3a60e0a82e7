/*
 * The control API endpoints, in Unit's shape:
 *   GET /                      {"certificates", "js_modules", "config", "status"}
 *   GET|PUT|POST|DELETE /config[/pointer]
 *   GET /status[/pointer]
 *   GET /certificates[/pointer], GET /js_modules[/pointer]
 *   PUT|DELETE /certificates/NAME, /js_modules/NAME (control/store.c)
 * Changes are queued and applied one at a time, each against the config that
 * is running when its turn comes.
 */
#include <stdlib.h>
#include <string.h>

#include "control/internal.h"
#include "core/log.h"
#include "router/router.h"

#define MSG_DONE         "Reconfiguration done."
#define MSG_RESTARTED    "Ok"
#define MSG_NO_VALUE     "Value doesn't exist."
#define MSG_BAD_METHOD   "Invalid method."
#define MSG_APPLY_FAILED "Failed to apply new configuration."
#define WR_COMPILE_ERR_MAX  1024

typedef enum {
    EP_NONE, EP_ROOT, EP_CONFIG, EP_STATUS, EP_METRICS, EP_STORE, EP_CONTROL
} endpoint_t;

/* GET /metrics: the router's counters as Prometheus text (metrics.c). */
#define METRICS_ASK      "metrics"
#define METRICS_TYPE     "text/plain; version=0.0.4; charset=utf-8"

#define CONTROL_APPS     "/control/applications/"
#define CONTROL_RESTART  "/restart"

/* Which endpoint, and the pointer part after its prefix. */
static endpoint_t endpoint(const char *path, const char **rest)
{
    static const struct { const char *prefix; endpoint_t ep; } eps[] = {
        { "/config", EP_CONFIG }, { "/status", EP_STATUS }, { "/certificates", EP_STORE },
        { "/js_modules", EP_STORE },
        { "/control", EP_CONTROL }, { "/metrics", EP_METRICS },
    };

    if (strcmp(path, "/") == 0 || path[0] == '\0') {
        *rest = "";
        return EP_ROOT;
    }
    for (size_t i = 0; i < sizeof(eps) / sizeof(eps[0]); i++) {
        size_t n = strlen(eps[i].prefix);
        if (strncmp(path, eps[i].prefix, n) == 0 && (path[n] == '\0' || path[n] == '/')) {
            *rest = path + n;
            return eps[i].ep;
        }
    }
    return EP_NONE;
}

static char *restart_name(const char *path);

static void respond_simple(wr_conn_t *c, int status, const char *key, const char *msg)
{
    wr_conn_respond(c, status, json_pack("{s:s}", key, msg));
}

/* Answer the value at pointer `rest` inside doc (borrowed). */
static void respond_value(wr_conn_t *c, json_t *doc, const char *rest)
{
    wr_conf_error_t err;
    wr_ptr_t p;
    json_t *v;

    wr_conf_error_init(&err);
    if (wr_ptr_parse(rest, strlen(rest), &p, &err) < 0) {
        wr_conn_respond_error(c, &err);
        wr_conf_error_clear(&err);
        return;
    }
    v = wr_ptr_get(doc, &p);
    wr_ptr_free(&p);
    if (v == NULL)
        respond_simple(c, 404, "error", MSG_NO_VALUE);
    else
        wr_conn_respond(c, 200, json_incref(v));
}

/* The router's counters arrived (or an empty payload: no router now),
 * after the runtimes ("modules" first, as Unit has it). */
static json_t *status_doc(const wr_ctl_t *ctl, const char *json, size_t len)
{
    json_t *s = NULL, *doc;

    if (len > 0)
        s = json_loadb(json, len, 0, NULL);
    if (s == NULL)
        s = json_pack("{s:{s:i,s:i,s:i,s:i},s:{s:i},s:{}}",
                      "connections", "accepted", 0, "active", 0, "idle", 0, "closed", 0,
                      "requests", "total", 0, "applications");
    doc = json_pack("{s:O}", "modules", ctl->modules ? ctl->modules : json_object());
    if (doc == NULL || s == NULL || json_object_update(doc, s) < 0) {
        json_decref(doc);
        return s;
    }
    json_decref(s);
    return doc;
}

void wr_api_status(wr_conn_t *c, const char *json, size_t len)
{
    json_t *status = status_doc(c->ctl, json, len);
    const char *rest;
    endpoint_t ep = endpoint(c->path, &rest);

    if (ep == EP_METRICS) {
        json_decref(status);
        /* Empty: no router now, so no counters (its start is logged). */
        wr_conn_respond_text(c, 200, METRICS_TYPE, json ? json : "", len);
        return;
    }
    if (ep == EP_ROOT) {
        json_t *root = json_pack("{s:O,s:O,s:O,s:o}", "certificates", c->ctl->certs,
                                 "js_modules", c->ctl->js_modules, "config", c->ctl->conf,
                                 "status", status);
        wr_conn_respond(c, 200, root);
        return;
    }
    respond_value(c, status, rest);
    json_decref(status);
}

static void ask_status(wr_conn_t *c, int metrics)
{
    wr_ctl_t *ctl = c->ctl;

    c->state = WR_CONN_STATUS;
    c->id = ++ctl->next_id;
    if (wr_ctl_send(ctl, WR_MSG_STATUS_REQ, c->id, metrics ? METRICS_ASK : NULL,
                    metrics ? strlen(METRICS_ASK) : 0) < 0)
        wr_api_status(c, NULL, 0);
}

static void queue_change(wr_conn_t *c)
{
    wr_ctl_t *ctl = c->ctl;

    c->state = WR_CONN_QUEUED;
    c->qnext = NULL;
    if (ctl->qtail)
        ctl->qtail->qnext = c;
    else
        ctl->qhead = c;
    ctl->qtail = c;
    if (ctl->qhead == c)
        wr_api_queue_next(ctl);
}

void wr_api_handle(wr_conn_t *c)
{
    const char *rest;
    endpoint_t ep = endpoint(c->path, &rest);
    int get = strcmp(c->method, "GET") == 0;
    int change = strcmp(c->method, "PUT") == 0 || strcmp(c->method, "POST") == 0
                 || strcmp(c->method, "DELETE") == 0;

    switch (ep) {
    case EP_ROOT:
    case EP_STATUS:
        if (!get)
            break;
        ask_status(c, 0);
        return;
    case EP_METRICS:
        if (!get || rest[0] != '\0')
            break;
        ask_status(c, 1);
        return;
    case EP_STORE:
        if (get) {
            respond_value(c, *wr_ctl_store_items(c->ctl, wr_ctl_store_of(c->path)), rest);
            return;
        }
        if (strcmp(c->method, "PUT") != 0 && strcmp(c->method, "DELETE") != 0)
            break;
        queue_change(c);
        return;
    case EP_CONFIG:
        if (get) {
            respond_value(c, c->ctl->conf, rest);
            return;
        }
        if (!change)
            break;
        queue_change(c);
        return;
    case EP_CONTROL: {
        char *name = restart_name(c->path);
        int known = name != NULL;

        free(name);
        if (!known) {
            respond_simple(c, 404, "error", MSG_NO_VALUE);
            return;
        }
        if (!get)
            break;
        queue_change(c);                  /* a restart is a change, in turn */
        return;
    }
    case EP_NONE:
        respond_simple(c, 404, "error", MSG_NO_VALUE);
        return;
    }
    respond_simple(c, 405, "error", MSG_BAD_METHOD);
}

/* ---- changes ---- */

/* NAME of "/control/applications/NAME/restart" (percent-decoded, malloc'ed),
 * or NULL for any other path. */
static char *restart_name(const char *path)
{
    size_t pre = strlen(CONTROL_APPS), post = strlen(CONTROL_RESTART), n = strlen(path);

    if (n <= pre + post || strncmp(path, CONTROL_APPS, pre) != 0
        || strcmp(path + n - post, CONTROL_RESTART) != 0)
        return NULL;
    return wr_api_segment(path + pre - 1, n - pre - post + 1);
}

char *wr_api_segment(const char *p, size_t len)
{
    wr_conf_error_t err;
    wr_ptr_t ptr;
    char *seg = NULL;

    wr_conf_error_init(&err);
    if (wr_ptr_parse(p, len, &ptr, &err) == 0) {
        if (ptr.n == 1)
            seg = strdup(ptr.seg[0]);
        wr_ptr_free(&ptr);
    }
    wr_conf_error_clear(&err);
    return seg;
}

/* A queued restart: main starts a new generation of the app. */
static int send_restart(wr_conn_t *c)
{
    char *name = restart_name(c->path);
    int rc;

    if (name == NULL)
        return -1;
    c->candidate = json_incref(c->ctl->conf);   /* the config stays as it is */
    rc = wr_ctl_send(c->ctl, WR_MSG_APP_RESTART, c->id, name, strlen(name));
    free(name);
    return rc;
}

/*
 * What only compiling shows (a regex PCRE2 refuses, an unknown variable) is
 * still a bad configuration: 400, with the pointer the message names.
 */
static int compile_check(json_t *doc, json_t *js_modules, wr_conf_error_t *err)
{
    static const char at[] = "The value at \"";
    char msg[WR_COMPILE_ERR_MAX], path[WR_COMPILE_ERR_MAX];
    const char *p = NULL;

    if (wr_router_check(doc, js_modules, msg, sizeof(msg)) == 0)
        return 0;
    if (strncmp(msg, at, sizeof(at) - 1) == 0) {
        const char *start = msg + sizeof(at) - 1, *end = strchr(start, '"');
        if (end) {
            snprintf(path, sizeof(path), "%.*s", (int) (end - start), start);
            p = path;
        }
    }
    return wr_conf_error_set(err, 400, "Invalid configuration.", p, "%s", msg);
}

/* Build the candidate document for c's change, or answer c with why not. */
static json_t *build_candidate(wr_conn_t *c)
{
    wr_ctl_t *ctl = c->ctl;
    const char *rest;
    wr_conf_error_t err;
    wr_ptr_t p;
    json_t *value = NULL, *doc = NULL;

    endpoint(c->path, &rest);
    wr_conf_error_init(&err);
    if (wr_ptr_parse(rest, strlen(rest), &p, &err) < 0)
        goto fail;
    if (c->method[0] != 'D') {
        value = wr_conf_parse(c->buf + c->head_len, c->body_len, &err);
        if (value == NULL)
            goto fail_ptr;
    }
    if (c->method[0] == 'D')
        doc = wr_conf_delete(ctl->conf, &p, &err);
    else if (c->method[1] == 'U')
        doc = wr_conf_put(ctl->conf, &p, value, &err);
    else
        doc = wr_conf_post(ctl->conf, &p, value, &err);
    json_decref(value);
    if (doc == NULL)
        goto fail_ptr;
    if (wr_conf_validate_stored(doc, ctl->certs, ctl->js_modules, &err) < 0
        || compile_check(doc, ctl->js_modules, &err) < 0) {
        json_decref(doc);
        goto fail_ptr;
    }
    wr_ptr_free(&p);
    return doc;

fail_ptr:
    wr_ptr_free(&p);
fail:
    wr_conn_respond_error(c, &err);
    wr_conf_error_clear(&err);
    return NULL;
}

/* Take changes off the queue until one goes to main (or the queue is empty). */
void wr_api_queue_next(wr_ctl_t *ctl)
{
    while (ctl->qhead && ctl->qhead->state == WR_CONN_QUEUED) {
        wr_conn_t *c = ctl->qhead, *next = c->qnext;
        json_t *candidate;
        char *text;

        if (wr_ctl_store_of(c->path) != NULL) {
            c->id = ++ctl->next_id;
            c->state = WR_CONN_APPLYING;
            if (wr_ctl_store_start(c) == 0)
                return;
            ctl->qhead = next;              /* c was answered and may be gone */
            if (ctl->qhead == NULL)
                ctl->qtail = NULL;
            continue;
        }
        if (strncmp(c->path, "/control/", 9) == 0) {
            c->id = ++ctl->next_id;
            c->state = WR_CONN_APPLYING;
            if (send_restart(c) < 0)
                wr_api_applied(c, 0, "The main process is unreachable.");
            return;
        }
        candidate = build_candidate(c);

        if (candidate == NULL) {
            ctl->qhead = next;              /* c was answered and may be gone */
            if (ctl->qhead == NULL)
                ctl->qtail = NULL;
            continue;
        }
        c->candidate = candidate;
        text = json_dumps(c->candidate, JSON_COMPACT);
        c->id = ++ctl->next_id;
        c->state = WR_CONN_APPLYING;
        if (text == NULL || wr_ctl_send(ctl, WR_MSG_CONF_APPLY, c->id, text, strlen(text)) < 0)
            wr_api_applied(c, 0, "The main process is unreachable.");
        free(text);
        return;
    }
}

void wr_api_applied(wr_conn_t *c, int ok, const char *reason)
{
    wr_ctl_t *ctl = c->ctl;

    ctl->qhead = c->qnext;
    if (ctl->qhead == NULL)
        ctl->qtail = NULL;
    if (c->item != NULL) {
        wr_ctl_store_applied(c, ok, reason);
    } else if (ok) {
        int restart = strncmp(c->path, "/control/", 9) == 0;
        json_decref(ctl->conf);
        ctl->conf = c->candidate;
        c->candidate = NULL;
        respond_simple(c, 200, "success", restart ? MSG_RESTARTED : MSG_DONE);
    } else if (strcmp(reason, "No such application.") == 0) {
        respond_simple(c, 404, "error", MSG_NO_VALUE);
    } else {
        wr_conn_respond(c, 500, json_pack("{s:s,s:s}", "error", MSG_APPLY_FAILED,
                                          "detail", reason));
    }
    wr_api_queue_next(ctl);
}
