/*
 * Applying a configuration in main: validate again (main trusts no child),
 * bind the listeners it adds, prepare the state file, hand sockets and config
 * to the router, and on its answer commit or undo. One change at a time.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "conf/conf.h"
#include "conf/state.h"
#include "core/log.h"
#include "daemon/internal.h"

#define WR_REASON_MAX  1024

/* ---- the listen socket table ---- */

static wr_listen_t *listens_find(wr_listens_t *l, const char *addr)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i].addr, addr) == 0)
            return &l->v[i];
    return NULL;
}

static int listens_add(wr_listens_t *l, const char *addr, int fd)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        wr_listen_t *v = realloc(l->v, cap * sizeof(*v));
        if (v == NULL)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n].addr = strdup(addr);
    if (l->v[l->n].addr == NULL)
        return -1;
    l->v[l->n++].fd = fd;
    return 0;
}

static void listen_close(wr_listen_t *s)
{
    wr_addr_t a;
    const char *why;

    close(s->fd);
    /* Our socket file; a later bind of the same path would find it stale. */
    if (wr_addr_parse(s->addr, &a, &why) == 0)
        wr_addr_unlink(&a);
    free(s->addr);
}

void wr_listens_close(wr_listens_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        listen_close(&l->v[i]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

/* Keep only the sockets whose address the config still has. */
static void listens_retain(wr_listens_t *l, const wr_conf_listeners_t *keep)
{
    size_t j = 0;

    for (size_t i = 0; i < l->n; i++) {
        int wanted = 0;
        for (size_t k = 0; k < keep->n && !wanted; k++)
            wanted = strcmp(keep->addr[k], l->v[i].addr) == 0;
        if (wanted)
            l->v[j++] = l->v[i];
        else
            listen_close(&l->v[i]);
    }
    l->n = j;
}

/* A changed "backlog" of a kept listener: listen() again sets it. */
static void relisten(wr_main_t *m, const wr_conf_listeners_t *ls)
{
    for (size_t i = 0; i < ls->n; i++) {
        wr_listen_t *s = listens_find(&m->listens, ls->addr[i]);
        int backlog = ls->backlog[i] > 0 ? ls->backlog[i] : WR_LISTEN_BACKLOG;
        if (s && listen(s->fd, backlog) < 0)
            wr_log_sys(WR_LOG_ERR, "listen", s->addr);
    }
}

/* Bind what conf has and `have` lacks, into `added`. */
static int bind_new(wr_main_t *m, const wr_conf_listeners_t *ls, wr_listens_t *added,
                    char *reason)
{
    for (size_t i = 0; i < ls->n; i++) {
        wr_addr_t a;
        const char *why;
        int fd;

        if (listens_find(&m->listens, ls->addr[i]) || listens_find(added, ls->addr[i]))
            continue;
        if (wr_addr_parse(ls->addr[i], &a, &why) < 0) {
            snprintf(reason, WR_REASON_MAX, "Listener \"%s\": %s.", ls->addr[i], why);
            return -1;
        }
        fd = wr_addr_listen(&a, ls->backlog[i], ls->addr[i]);
        if (fd < 0) {
            snprintf(reason, WR_REASON_MAX, "Failed to listen on \"%s\": %s.",
                     ls->addr[i], strerror(errno));
            return -1;
        }
        if (listens_add(added, ls->addr[i], fd) < 0) {
            close(fd);
            snprintf(reason, WR_REASON_MAX, "Out of memory.");
            return -1;
        }
    }
    return 0;
}

static void send_listeners(wr_main_t *m, const wr_listens_t *l)
{
    wr_chan_t *c = &m->child[WR_ROLE_ROUTER].chan;

    for (size_t i = 0; i < l->n; i++)
        wr_chan_send(c, WR_MSG_LISTENER, 0, l->v[i].addr, strlen(l->v[i].addr), l->v[i].fd);
}

/* ---- the access log: main opens it (the router cannot), the router writes ---- */

static const char *access_log_path(json_t *conf)
{
    json_t *al = json_object_get(conf, "access_log");

    if (json_is_object(al))
        al = json_object_get(al, "path");
    return json_string_value(al);
}

static int same_path(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

static int open_access_log(const char *path, char *reason)
{
    int fd = wr_log_open(path);

    if (fd < 0) {
        wr_log_sys(WR_LOG_ERR, "open", path);
        snprintf(reason, WR_REASON_MAX, "Failed to open the access log \"%s\": %s.",
                 path, strerror(errno));
    }
    return fd;
}

/* when: WR_ALOG_WITH_CONF (takes effect with the next config) or
 * WR_ALOG_NOW (a reopened file). fd -1 means: no access log. */
static void send_access_log(wr_main_t *m, char when, int fd)
{
    wr_chan_send(&m->child[WR_ROLE_ROUTER].chan, WR_MSG_ACCESS_LOG, 0, &when, 1, fd);
}

void wr_access_log_reopen(wr_main_t *m)
{
    char reason[WR_REASON_MAX];
    int fd;

    if (m->alog_path == NULL)
        return;
    fd = open_access_log(m->alog_path, reason);
    if (fd < 0)
        return;
    if (m->alog_fd >= 0)
        close(m->alog_fd);
    m->alog_fd = fd;
    if (m->child[WR_ROLE_ROUTER].pid > 0)
        send_access_log(m, WR_ALOG_NOW, fd);
}

static void set_running(wr_main_t *m, json_t *conf, char *text)
{
    json_decref(m->running);
    free(m->running_text);
    m->running = conf;
    m->running_text = text;
}

/* ---- start-up ---- */

int wr_apply_initial(wr_main_t *m, json_t *conf)
{
    wr_conf_listeners_t ls;
    char reason[WR_REASON_MAX];
    char *text = json_dumps(conf, JSON_COMPACT);
    int rc = 0;

    if (text == NULL || wr_conf_listeners(conf, &ls) < 0) {
        free(text);
        return -1;
    }
    if (bind_new(m, &ls, &m->listens, reason) < 0) {
        wr_log(WR_LOG_EMERG, "cannot restore the saved configuration: %s", reason);
        rc = -1;
    }
    if (rc == 0 && access_log_path(conf)) {
        m->alog_path = strdup(access_log_path(conf));
        m->alog_fd = open_access_log(m->alog_path, reason);
        if (m->alog_fd < 0) {
            wr_log(WR_LOG_EMERG, "cannot restore the saved configuration: %s", reason);
            rc = -1;
        }
    }
    wr_conf_listeners_free(&ls);
    if (rc == 0)
        set_running(m, json_incref(conf), text);
    else
        free(text);
    return rc;
}

/* A new router knows nothing: give it every socket and the running config. */
void wr_router_prime(wr_main_t *m)
{
    send_listeners(m, &m->listens);
    send_access_log(m, WR_ALOG_WITH_CONF, m->alog_fd);
    wr_apps_send_map(m, m->running);
    wr_store_send_used(m, &m->certs, &m->child[WR_ROLE_ROUTER].chan, m->running);
    wr_store_send_used(m, &m->js_modules, &m->child[WR_ROLE_ROUTER].chan, m->running);
    wr_chan_send(&m->child[WR_ROLE_ROUTER].chan, WR_MSG_CONF_APPLY, ++m->next_id,
                 m->running_text, strlen(m->running_text), -1);
}

/* ---- one change ---- */

static void apply_reply(wr_main_t *m, uint32_t reply_id, int ok, const char *reason)
{
    wr_child_t *ctl = &m->child[WR_ROLE_CONTROLLER];

    if (!ok)
        wr_log(WR_LOG_ERR, "reconfiguration refused: %s", reason);
    if (reply_id != 0 && ctl->pid != 0)
        wr_chan_send_result(&ctl->chan, reply_id, ok, reason);
}

static void apply_end(wr_main_t *m, int ok, const char *reason)
{
    wr_apply_t *a = &m->apply;

    wr_timer_cancel(&m->loop, &a->timeout);
    if (ok) {
        wr_conf_listeners_t ls;

        wr_state_commit(m->opt->statedir);
        for (size_t i = 0; i < a->added.n; i++)
            listens_add(&m->listens, a->added.v[i].addr, a->added.v[i].fd);
        for (size_t i = 0; i < a->added.n; i++)
            free(a->added.v[i].addr);
        free(a->added.v);
        if (wr_conf_listeners(a->conf, &ls) == 0) {
            listens_retain(&m->listens, &ls);
            relisten(m, &ls);
            wr_conf_listeners_free(&ls);
        }
        set_running(m, a->conf, a->text);
        wr_apps_commit(m);
        if (!same_path(a->alog_path, m->alog_path)) {
            if (m->alog_fd >= 0)
                close(m->alog_fd);
            free(m->alog_path);
            m->alog_path = a->alog_path;
            m->alog_fd = a->alog_fd;
            a->alog_path = NULL;
            a->alog_fd = -1;
        }
        wr_log(WR_LOG_INFO, "reconfiguration done");
    } else {
        wr_state_abort(m->opt->statedir);
        wr_apps_abort(m);
        wr_listens_close(&a->added);
        json_decref(a->conf);
        free(a->text);
    }
    if (a->alog_fd >= 0)
        close(a->alog_fd);
    free(a->alog_path);
    a->alog_path = NULL;
    a->alog_fd = -1;
    apply_reply(m, a->reply_id, ok, reason);
    memset(&a->added, 0, sizeof(a->added));
    a->conf = NULL;
    a->text = NULL;
    a->active = 0;
    a->waiting_apps = 0;
}

static void apply_timeout(wr_ev_loop_t *loop, wr_timer_t *t)
{
    wr_main_t *m = t->data;
    wr_child_t *r = &m->child[WR_ROLE_ROUTER];

    wr_log(WR_LOG_ERR, "router %d did not answer a reconfiguration in %d ms; replacing it",
           (int) r->pid, WR_APPLY_TIMEOUT_MS);
    apply_end(m, 0, "The router did not answer in time; it is being restarted.");
    if (r->pid > 0)
        kill(r->pid, SIGKILL);
}

static int apply_prepare(wr_main_t *m, const char *text, size_t len, char *reason)
{
    wr_apply_t *a = &m->apply;
    wr_conf_error_t err;
    wr_conf_listeners_t ls;
    int rc;

    wr_conf_error_init(&err);
    a->conf = wr_conf_parse(text, len, &err);
    if (a->conf == NULL || wr_conf_validate_stored(a->conf, m->certs.names, m->js_modules.names, &err) < 0) {
        snprintf(reason, WR_REASON_MAX, "%s %s", err.error ? err.error : "Invalid configuration.",
                 err.detail ? err.detail : "");
        wr_conf_error_clear(&err);
        return -1;
    }
    a->text = json_dumps(a->conf, JSON_COMPACT);
    if (a->text == NULL || wr_conf_listeners(a->conf, &ls) < 0) {
        snprintf(reason, WR_REASON_MAX, "Out of memory.");
        return -1;
    }
    rc = bind_new(m, &ls, &a->added, reason);
    wr_conf_listeners_free(&ls);
    if (rc < 0)
        return -1;
    if (access_log_path(a->conf) && !same_path(access_log_path(a->conf), m->alog_path)) {
        a->alog_path = strdup(access_log_path(a->conf));
        a->alog_fd = open_access_log(a->alog_path, reason);
        if (a->alog_fd < 0)
            return -1;
    }
    if (wr_state_prepare(m->opt->statedir, a->text, strlen(a->text)) < 0) {
        snprintf(reason, WR_REASON_MAX, "Failed to write the state file in \"%s\": %s.",
                 m->opt->statedir, strerror(errno));
        return -1;
    }
    return 0;
}

/* Hand the prepared change to the router. */
static void apply_send(wr_main_t *m)
{
    wr_apply_t *a = &m->apply;
    wr_child_t *r = &m->child[WR_ROLE_ROUTER];

    a->router_id = ++m->next_id;
    send_listeners(m, &a->added);
    if (!same_path(access_log_path(a->conf), m->alog_path))
        send_access_log(m, WR_ALOG_WITH_CONF, a->alog_fd);
    wr_apps_send_map(m, a->conf);
    wr_store_send_used(m, &m->certs, &r->chan, a->conf);
    wr_store_send_used(m, &m->js_modules, &r->chan, a->conf);
    wr_chan_send(&r->chan, WR_MSG_CONF_APPLY, a->router_id, a->text, strlen(a->text), -1);
    wr_timer_set(&m->loop, &a->timeout, WR_APPLY_TIMEOUT_MS);
}

void wr_apply_start(wr_main_t *m, uint32_t reply_id, const char *text, size_t len)
{
    wr_apply_restart(m, reply_id, text, len, NULL);
}

/* An apply; restart names an application whose generation is replaced even
 * though its configuration did not change (GET .../restart). */
void wr_apply_restart(wr_main_t *m, uint32_t reply_id, const char *text, size_t len,
                      const char *restart)
{
    wr_apply_t *a = &m->apply;
    wr_child_t *r = &m->child[WR_ROLE_ROUTER];
    char reason[WR_REASON_MAX];

    if (a->active) {
        apply_reply(m, reply_id, 0, "Another reconfiguration is in progress.");
        return;
    }
    if (r->pid == 0 || !r->ready || m->stopping) {
        apply_reply(m, reply_id, 0, "The router is not running; try again shortly.");
        return;
    }
    memset(a, 0, sizeof(*a));
    a->alog_fd = -1;
    a->active = 1;
    a->reply_id = reply_id;
    a->timeout.cb = apply_timeout;
    a->timeout.data = m;
    if (apply_prepare(m, text, len, reason) < 0) {
        apply_end(m, 0, reason);
        return;
    }
    if (wr_apps_prepare(m, a->conf, restart, reason, sizeof(reason)) < 0) {
        apply_end(m, 0, reason);
        return;
    }
    /* New generations first: the router gets the config once each has a
     * worker that said hello (or the change fails with the reason). */
    if (wr_apps_pending(m) > 0 && a->active) {
        a->waiting_apps = 1;
        return;
    }
    if (a->active)
        apply_send(m);
}

void wr_apply_apps_ready(wr_main_t *m)
{
    if (m->apply.active && m->apply.waiting_apps) {
        m->apply.waiting_apps = 0;
        apply_send(m);
    }
}

void wr_apply_apps_failed(wr_main_t *m, const char *reason)
{
    if (m->apply.active && m->apply.waiting_apps)
        apply_end(m, 0, reason);
}

void wr_apply_router_result(wr_main_t *m, uint32_t id, int ok, const char *reason)
{
    if (!m->apply.active || id != m->apply.router_id) {
        /* The answer to a prime after a router (re)start. */
        if (!ok)
            wr_log(WR_LOG_ALERT, "router refused the running configuration: %s", reason);
        return;
    }
    if (ok) {
        apply_end(m, 1, NULL);
    } else {
        char msg[WR_REASON_MAX];
        snprintf(msg, sizeof(msg), "The router refused it: %s", reason);
        apply_end(m, 0, msg);
    }
}

void wr_apply_router_lost(wr_main_t *m)
{
    if (m->apply.active)
        apply_end(m, 0, "The router exited during the reconfiguration.");
}
