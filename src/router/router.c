/*
 * The router process: the control thread talks to main (sockets, configs,
 * status, log fds) and N worker threads serve HTTP (thread.c, conn.c).
 * A configuration is compiled here beside the running one, published to the
 * threads, and acknowledged only once every thread has taken it.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>

#include "core/log.h"
#include "core/process.h"
#include "router/internal.h"
#include "router/spool.h"

static wr_listener_t *find_sock(wr_router_t *r, const char *addr, size_t *at)
{
    for (size_t i = 0; i < r->nsocks; i++) {
        if (strcmp(r->socks[i]->addr, addr) == 0) {
            *at = i;
            return r->socks[i];
        }
    }
    return NULL;
}

/* A socket from main. The router's table holds one reference; each config
 * and each thread epoll that uses it hold theirs. */
static void take_listener(wr_router_t *r, wr_msg_t *m)
{
    wr_listener_t *l;
    size_t at;
    char *addr = strndup(m->data, m->len);

    if (addr == NULL || m->fd < 0) {
        free(addr);
        return;
    }
    if (find_sock(r, addr, &at)) {           /* replaced: the old one goes */
        wr_listener_unref(r->socks[at]);
        r->socks[at] = r->socks[--r->nsocks];
    }
    l = calloc(1, sizeof(*l));
    if (l == NULL) {
        free(addr);
        return;
    }
    if (r->nsocks == r->capsocks) {
        size_t cap = r->capsocks ? r->capsocks * 2 : 8;
        wr_listener_t **v = realloc(r->socks, cap * sizeof(*v));
        if (v == NULL) {
            free(addr);
            free(l);
            return;
        }
        r->socks = v;
        r->capsocks = cap;
    }
    atomic_init(&l->refs, 1);
    l->addr = addr;
    l->fd = m->fd;
    l->unix_sock = strncmp(addr, "unix:", 5) == 0;
    m->fd = -1;
    r->socks[r->nsocks++] = l;
}

/* Sockets the running config no longer names leave the table. */
static void drop_unused(wr_router_t *r, const wr_rconf_t *c)
{
    size_t j = 0;

    for (size_t i = 0; i < r->nsocks; i++) {
        int used = 0;
        for (size_t k = 0; k < c->nlisten && !used; k++)
            used = c->listen[k].sock == r->socks[i];
        if (used)
            r->socks[j++] = r->socks[i];
        else
            wr_listener_unref(r->socks[i]);
    }
    r->nsocks = j;
}

static int thread_count(const wr_rconf_t *c)
{
    long n = c->settings.listen_threads;

    if (n <= 0)
        n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        n = 1;
    return n > WR_ROUTER_MAX_THREADS ? WR_ROUTER_MAX_THREADS : (int) n;
}

static void reap_tick(wr_ev_loop_t *loop, wr_timer_t *t)
{
    wr_router_t *r = t->data;

    wr_threads_reap(r);
    if (r->nretiring > 0)
        wr_timer_set(loop, t, WR_REAP_MS);
}

static void sweep_tick(wr_ev_loop_t *loop, wr_timer_t *t)
{
    wr_router_t *r = t->data;

    wr_appgen_sweep(r);
    wr_appstats_sweep(r);
    wr_upool_age(&r->upool, wr_ev_now(), WR_HTTP_KEEP_IDLE_MS);
    wr_app_scale_tick(r);
    wr_timer_set(loop, t, WR_WORKER_SWEEP_MS);
}

static int router_apply(wr_router_t *r, const char *text, size_t len, char *reason)
{
    wr_rconf_t *c = wr_rconf_build(r, text, len, reason);
    int n;

    if (c == NULL)
        return -1;
    n = thread_count(c);
    if (r->nthreads == 0) {
        /* The first config: threads start on it. */
        atomic_store(&r->conf, c);
        r->pub_gen++;
    } else {
        wr_threads_publish(r, c);
    }
    if (n != r->nthreads) {
        if (wr_threads_resize(r, n) < 0) {
            snprintf(reason, WR_ROUTER_REASON_MAX, "cannot start router threads");
            return -1;
        }
        if (r->nretiring > 0)
            wr_timer_set(&r->loop, &r->reap_timer, WR_REAP_MS);
    }
    if (wr_tel_use(&r->tel, c->tel) < 0)
        wr_log(WR_LOG_ERR, "telemetry: the span exporter cannot start; no spans are sent");
    drop_unused(r, c);
    wr_appstats_drop_unused(r, c);
    atomic_fetch_add(&r->conf_loads, 1);
    return 0;
}

static void send_status(wr_router_t *r, uint32_t id, const char *what, size_t len)
{
    wr_rconf_t *c = atomic_load(&r->conf);
    wr_buf_t text = { 0 };
    json_t *st;
    char *doc;

    wr_threads_reap(r);                 /* their totals move to retired_count */
    if (len == 7 && memcmp(what, "metrics", 7) == 0) {
        if (wr_metrics_text(r, c, &text) == 0)
            wr_chan_send(&r->chan, WR_MSG_STATUS, id, text.p, text.n, -1);
        wr_buf_free(&text);
        return;
    }
    st = wr_metrics_status(r, c);
    doc = st ? json_dumps(st, JSON_COMPACT) : NULL;
    json_decref(st);
    if (doc)
        wr_chan_send(&r->chan, WR_MSG_STATUS, id, doc, strlen(doc), -1);
    free(doc);
}

static void alog_switch(wr_router_t *r, int fd)
{
    if (r->alog == NULL) {
        if (fd < 0)
            return;
        r->alog = wr_alog_writer_start(WR_ALOG_QUEUE_BYTES);
        if (r->alog == NULL) {
            wr_log(WR_LOG_ALERT, "cannot start the access log writer");
            close(fd);
            return;
        }
    }
    wr_alog_writer_set_fd(r->alog, fd);     /* -1: access log off */
}

/* A reopened file switches now; a new config's file waits for that config
 * (if the config is refused, its file is dropped). */
static void take_access_log(wr_router_t *r, wr_msg_t *m)
{
    if (m->len == 1 && m->data[0] == WR_ALOG_NOW) {
        if (m->fd >= 0)
            alog_switch(r, m->fd);
        m->fd = -1;
        return;
    }
    if (r->alog_pending && r->alog_fd >= 0)
        close(r->alog_fd);
    r->alog_pending = 1;
    r->alog_fd = m->fd;
    m->fd = -1;
}

static void alog_settle(wr_router_t *r, int applied)
{
    if (!r->alog_pending)
        return;
    if (applied)
        alog_switch(r, r->alog_fd);
    else if (r->alog_fd >= 0)
        close(r->alog_fd);
    r->alog_pending = 0;
    r->alog_fd = -1;
}

/* A worker main started and checked (HELLO): into its generation's pool. */
static void take_worker(wr_router_t *r, wr_msg_t *m)
{
    wr_msg_worker_t w;
    char *name;
    wr_appgen_t *g;

    if (m->fd < 0 || m->len <= sizeof(w))
        return;
    memcpy(&w, m->data, sizeof(w));
    name = strndup(m->data + sizeof(w), m->len - sizeof(w));
    g = name ? wr_appgen_find(r, w.gen, name, 1) : NULL;
    free(name);
    if (g == NULL)
        return;
    wr_appgen_add_worker(g, m->fd, w.pid, w.worker, w.streams, w.tunnels);
    m->fd = -1;
}

/* An item of a store the next configuration names: name NUL text (a
 * certificate bundle, whose text around its blocks need not be UTF-8, or a
 * JavaScript module). Kept as bytes. */
static void take_item(json_t *into, wr_msg_t *m)
{
    const char *nul = memchr(m->data, '\0', m->len);

    if (nul != NULL && into != NULL)
        json_object_set_new(into, m->data,
                            json_stringn_nocheck(nul + 1,
                                                 m->len - (size_t) (nul + 1 - m->data)));
}

static void on_main_msg(wr_chan_t *ch, wr_msg_t *m)
{
    wr_router_t *r = ch->data;
    char reason[WR_ROUTER_REASON_MAX];
    int rc;

    switch (m->type) {
    case WR_MSG_LISTENER:
        take_listener(r, m);
        break;
    case WR_MSG_CERT:
        take_item(r->certs, m);
        break;
    case WR_MSG_JS_MODULE:
        take_item(r->js_modules, m);
        break;
    case WR_MSG_CONF_APPLY:
        reason[0] = '\0';
        rc = router_apply(r, m->data, m->len, reason);
        json_object_clear(r->certs);    /* the contexts hold what they need */
        json_object_clear(r->js_modules);   /* as does the env */
        if (rc == 0) {
            alog_settle(r, 1);
            wr_chan_send_result(&r->chan, m->id, 1, NULL);
        } else {
            /* Sockets sent for the refused change must not linger here. */
            wr_rconf_t *running = atomic_load(&r->conf);
            if (running)
                drop_unused(r, running);
            alog_settle(r, 0);
            wr_chan_send_result(&r->chan, m->id, 0, reason);
        }
        break;
    case WR_MSG_STATUS_REQ:
        send_status(r, m->id, m->data, m->len);
        break;
    case WR_MSG_ACCESS_LOG:
        take_access_log(r, m);
        break;
    case WR_MSG_LOG_FD:
        if (m->fd >= 0 && dup3(m->fd, wr_proc.log_fd, O_CLOEXEC) < 0)
            wr_log_sys(WR_LOG_ERR, "dup3", "log fd");
        break;
    case WR_MSG_APP_MAP:
        json_decref(r->app_map);
        r->app_map = json_loadb(m->data, m->len, 0, NULL);
        break;
    case WR_MSG_APP_WORKER:
        take_worker(r, m);
        break;
    case WR_MSG_APP_RETIRE:
        if (m->len == sizeof(uint32_t)) {
            uint32_t gen;
            memcpy(&gen, m->data, sizeof(gen));
            wr_appgen_retire(r, gen);
        }
        break;
    case WR_MSG_APP_SCALE:
        wr_app_scale_on_msg(r, m);
        break;
    default:
        wr_log(WR_LOG_WARN, "unexpected message %u from main", m->type);
    }
}

static void on_main_gone(wr_chan_t *ch)
{
    wr_log(WR_LOG_NOTICE, "main is gone; router exiting");
    _exit(0);
}

static void on_signal(wr_ev_loop_t *loop, wr_ev_t *ev, uint32_t events)
{
    wr_router_t *r = ev->data;
    struct signalfd_siginfo si;

    if (read(ev->fd, &si, sizeof(si)) != sizeof(si))
        return;
    if (si.ssi_signo == SIGQUIT) {
        wr_log(WR_LOG_NOTICE, "router draining connections");
        wr_threads_drain(r);
    }
    /* Fast stop: connections just close; either way the access log lines
     * already queued are written. */
    if (r->alog)
        wr_alog_writer_stop(r->alog);
    _exit(0);
}

void wr_router_main(const wr_router_args_t *a)
{
    static wr_router_t r;      /* lives as long as the process; threads point at it */

    memset(&r, 0, sizeof(r));
    r.args = a;
    r.alog_fd = -1;
    r.certs = json_object();
    r.js_modules = json_object();
    pthread_mutex_init(&r.lock, NULL);
    pthread_mutex_init(&r.count_lock, NULL);
    r.started = time(NULL);
    pthread_cond_init(&r.cond, NULL);
    wr_upool_init(&r.upool);
    r.reap_timer.cb = reap_tick;
    r.reap_timer.data = &r;
    r.sweep_timer.cb = sweep_tick;
    r.sweep_timer.data = &r;
    /* Made while privileged: the router's user may not write --tmpdir. */
    r.body_dir = wr_spool_dir_open(a->tmpdir, a->uid, a->gid);
    if (wr_drop_privileges(a->uid, a->gid) < 0 || wr_watch_parent(a->parent) < 0)
        _exit(1);
    /* Before any thread exists, so every thread inherits the signal mask
     * and only this thread's signalfd sees the stop signals. */
    if (wr_ev_init(&r.loop) < 0 || wr_child_signals(&r.loop, &r.sig, on_signal, &r) < 0
        || wr_app_scale_init(&r) < 0)
        _exit(1);
    r.chan.on_msg = on_main_msg;
    r.chan.on_close = on_main_gone;
    r.chan.data = &r;
    if (wr_chan_open(&r.chan, &r.loop, a->chan_fd) < 0)
        _exit(1);
    wr_chan_send(&r.chan, WR_MSG_READY, 0, NULL, 0, -1);
    wr_timer_set(&r.loop, &r.sweep_timer, WR_WORKER_SWEEP_MS);
    wr_ev_run(&r.loop);
    _exit(0);
}
