/*
 * The router process. Today it holds the listen sockets main passes it and
 * swaps in each new configuration as a whole; the HTTP engine that serves
 * them (issue 3) plugs into router_apply().
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/signalfd.h>

#include "conf/conf.h"
#include "core/ev.h"
#include "core/ipc.h"
#include "core/log.h"
#include "core/process.h"
#include "router/router.h"

#define WR_ROUTER_REASON_MAX  512

typedef struct {
    char *addr;
    int   fd;
} router_listen_t;

typedef struct {
    const wr_router_args_t *args;
    wr_ev_loop_t        loop;
    wr_chan_t           chan;
    wr_ev_t             sig;
    router_listen_t    *ls;          /* sockets received, by address */
    size_t              nls, cap;
    wr_conf_settings_t  settings;    /* of the running config */
    /* /status counters; the HTTP engine keeps them exact */
    unsigned long long  accepted, active, idle, closed, requests;
} router_t;

static router_listen_t *find_listen(router_t *r, const char *addr)
{
    for (size_t i = 0; i < r->nls; i++)
        if (strcmp(r->ls[i].addr, addr) == 0)
            return &r->ls[i];
    return NULL;
}

static void take_listener(router_t *r, wr_msg_t *m)
{
    router_listen_t *l;
    char *addr = strndup(m->data, m->len);

    if (addr == NULL || m->fd < 0) {
        free(addr);
        return;
    }
    l = find_listen(r, addr);
    if (l) {                 /* a replacement socket for the same address */
        close(l->fd);
        free(addr);
    } else {
        if (r->nls == r->cap) {
            size_t cap = r->cap ? r->cap * 2 : 8;
            router_listen_t *v = realloc(r->ls, cap * sizeof(*v));
            if (v == NULL) {
                free(addr);
                return;
            }
            r->ls = v;
            r->cap = cap;
        }
        l = &r->ls[r->nls++];
        l->addr = addr;
    }
    l->fd = m->fd;
    m->fd = -1;
}

/* Close the sockets of listeners the running config no longer has. */
static void drop_unused(router_t *r, const wr_conf_listeners_t *keep)
{
    size_t j = 0;

    for (size_t i = 0; i < r->nls; i++) {
        int wanted = 0;
        for (size_t k = 0; k < keep->n && !wanted; k++)
            wanted = strcmp(keep->addr[k], r->ls[i].addr) == 0;
        if (wanted) {
            r->ls[j++] = r->ls[i];
        } else {
            close(r->ls[i].fd);
            free(r->ls[i].addr);
        }
    }
    r->nls = j;
}

/* Build everything the new config needs beside the running one, then swap.
 * Returns 0, or -1 with reason and the running config untouched. */
static int router_apply(router_t *r, const char *text, size_t len, char *reason)
{
    wr_conf_error_t err;
    wr_conf_listeners_t ls;
    json_t *conf;
    int rc = -1;

    wr_conf_error_init(&err);
    conf = wr_conf_parse(text, len, &err);
    if (conf == NULL) {
        snprintf(reason, WR_ROUTER_REASON_MAX, "unreadable configuration: %s",
                 err.detail ? err.detail : "");
        wr_conf_error_clear(&err);
        return -1;
    }
    if (wr_conf_listeners(conf, &ls) < 0) {
        snprintf(reason, WR_ROUTER_REASON_MAX, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < ls.n; i++) {
        if (find_listen(r, ls.addr[i]) == NULL) {
            snprintf(reason, WR_ROUTER_REASON_MAX, "no socket for listener \"%s\"", ls.addr[i]);
            goto done_ls;
        }
    }
    /* Nothing can fail from here: swap. */
    wr_conf_settings(conf, &r->settings);
    drop_unused(r, &ls);
    rc = 0;
done_ls:
    wr_conf_listeners_free(&ls);
done:
    json_decref(conf);
    return rc;
}

static void send_status(router_t *r, uint32_t id)
{
    char buf[512];
    int n = snprintf(buf, sizeof(buf),
                     "{\"connections\":{\"accepted\":%llu,\"active\":%llu,\"idle\":%llu,"
                     "\"closed\":%llu},\"requests\":{\"total\":%llu},\"applications\":{}}",
                     r->accepted, r->active, r->idle, r->closed, r->requests);

    wr_chan_send(&r->chan, WR_MSG_STATUS, id, buf, (size_t) n, -1);
}

static void on_main_msg(wr_chan_t *ch, wr_msg_t *m)
{
    router_t *r = ch->data;
    char reason[WR_ROUTER_REASON_MAX];

    switch (m->type) {
    case WR_MSG_LISTENER:
        take_listener(r, m);
        break;
    case WR_MSG_CONF_APPLY:
        if (router_apply(r, m->data, m->len, reason) == 0)
            wr_chan_send_result(&r->chan, m->id, 1, NULL);
        else
            wr_chan_send_result(&r->chan, m->id, 0, reason);
        break;
    case WR_MSG_STATUS_REQ:
        send_status(r, m->id);
        break;
    case WR_MSG_LOG_FD:
        if (m->fd >= 0 && dup3(m->fd, wr_proc.log_fd, O_CLOEXEC) < 0)
            wr_log_sys(WR_LOG_ERR, "dup3", "log fd");
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
    struct signalfd_siginfo si;

    /* SIGQUIT would drain connections first; there are none to drain yet. */
    if (read(ev->fd, &si, sizeof(si)) == sizeof(si))
        loop->stop = 1;
}

static int setup_signals(router_t *r)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGQUIT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGHUP, SIG_IGN);
    signal(SIGUSR1, SIG_IGN);
    r->sig.fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (r->sig.fd < 0) {
        wr_log_sys(WR_LOG_EMERG, "signalfd", "router");
        return -1;
    }
    r->sig.cb = on_signal;
    r->sig.data = r;
    return wr_ev_add(&r->loop, &r->sig, EPOLLIN);
}

void wr_router_main(const wr_router_args_t *a)
{
    router_t r;

    memset(&r, 0, sizeof(r));
    r.args = a;
    if (wr_drop_privileges(a->uid, a->gid) < 0 || wr_watch_parent(a->parent) < 0)
        _exit(1);
    if (wr_ev_init(&r.loop) < 0 || setup_signals(&r) < 0)
        _exit(1);
    r.chan.on_msg = on_main_msg;
    r.chan.on_close = on_main_gone;
    r.chan.data = &r;
    if (wr_chan_open(&r.chan, &r.loop, a->chan_fd) < 0)
        _exit(1);
    wr_chan_send(&r.chan, WR_MSG_READY, 0, NULL, 0, -1);
    wr_ev_run(&r.loop);
    _exit(0);
}
