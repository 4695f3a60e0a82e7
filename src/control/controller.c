/*
 * The controller process: drops privileges, then serves the control socket
 * main hands it and relays changes and status requests to main.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/signalfd.h>

#include "control/internal.h"
#include "core/log.h"
#include "core/process.h"

int wr_ctl_send(wr_ctl_t *ctl, uint32_t type, uint32_t id, const void *data, size_t len)
{
    return wr_chan_send(&ctl->chan, type, id, data, len, -1);
}

static void on_listen(wr_ev_loop_t *loop, wr_ev_t *ev, uint32_t events)
{
    wr_conn_accept(ev->data);
}

static void take_control_fd(wr_ctl_t *ctl, wr_msg_t *m)
{
    if (ctl->listening || m->fd < 0)
        return;
    ctl->listen.fd = m->fd;
    ctl->listen.cb = on_listen;
    ctl->listen.data = ctl;
    m->fd = -1;
    if (wr_ev_add(&ctl->loop, &ctl->listen, EPOLLIN) == 0)
        ctl->listening = 1;
}

static void take_conf(wr_ctl_t *ctl, wr_msg_t *m)
{
    json_error_t jerr;
    json_t *conf = json_loadb(m->data, m->len, 0, &jerr);

    if (conf == NULL) {
        wr_log(WR_LOG_ALERT, "main sent an unreadable configuration: %s", jerr.text);
        return;
    }
    json_decref(ctl->conf);
    ctl->conf = conf;
}

static void take_result(wr_ctl_t *ctl, wr_msg_t *m)
{
    wr_conn_t *c = wr_conn_find(ctl, m->id);
    wr_msg_result_t res;
    char *reason;

    if (c == NULL || c->state != WR_CONN_APPLYING || m->len < sizeof(res))
        return;
    memcpy(&res, m->data, sizeof(res));
    reason = strndup(m->data + sizeof(res), m->len - sizeof(res));
    wr_api_applied(c, res.ok, reason ? reason : "");
    free(reason);
}

static void on_main_msg(wr_chan_t *ch, wr_msg_t *m)
{
    wr_ctl_t *ctl = ch->data;
    wr_conn_t *c;

    switch (m->type) {
    case WR_MSG_CONTROL_FD:
        take_control_fd(ctl, m);
        break;
    case WR_MSG_CONF_CURRENT:
        take_conf(ctl, m);
        break;
    case WR_MSG_CERT:
        wr_ctl_store_take(ctl, &wr_ctl_certs, m->data, m->len);
        break;
    case WR_MSG_JS_MODULE:
        wr_ctl_store_take(ctl, &wr_ctl_js_modules, m->data, m->len);
        break;
    case WR_MSG_CONF_RESULT:
        take_result(ctl, m);
        break;
    case WR_MSG_STATUS:
        c = wr_conn_find(ctl, m->id);
        if (c && c->state == WR_CONN_STATUS)
            wr_api_status(c, m->data, m->len);
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
    wr_log(WR_LOG_NOTICE, "main is gone; controller exiting");
    _exit(0);
}

static void on_signal(wr_ev_loop_t *loop, wr_ev_t *ev, uint32_t events)
{
    struct signalfd_siginfo si;

    if (read(ev->fd, &si, sizeof(si)) == sizeof(si))
        loop->stop = 1;
}

void wr_controller_main(const wr_controller_args_t *a)
{
    wr_ctl_t ctl;

    memset(&ctl, 0, sizeof(ctl));
    ctl.args = a;
    ctl.conf = json_object();
    ctl.certs = json_object();
    ctl.js_modules = json_object();
    ctl.modules = wr_ctl_modules(a->runtimes);
    if (wr_drop_privileges(a->uid, a->gid) < 0 || wr_watch_parent(a->parent) < 0)
        _exit(1);
    if (wr_ev_init(&ctl.loop) < 0
        || wr_child_signals(&ctl.loop, &ctl.sig, on_signal, &ctl) < 0)
        _exit(1);
    ctl.chan.on_msg = on_main_msg;
    ctl.chan.on_close = on_main_gone;
    ctl.chan.data = &ctl;
    if (wr_chan_open(&ctl.chan, &ctl.loop, a->chan_fd) < 0)
        _exit(1);
    wr_ctl_send(&ctl, WR_MSG_READY, 0, NULL, 0);
    wr_ev_run(&ctl.loop);
    _exit(0);
}
