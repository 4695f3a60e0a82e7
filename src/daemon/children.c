/*
 * The controller and the router: forked from main, dropped to --user, watched.
 * A child that dies is restarted with a growing delay, so a child that cannot
 * start does not turn into a fork storm; main keeps every socket meanwhile.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include "conf/conf.h"
#include "control/control.h"
#include "core/log.h"
#include "daemon/internal.h"
#include "router/router.h"

static void child_restart_cb(wr_ev_loop_t *loop, wr_timer_t *t)
{
    wr_child_t *c = t->data;

    if (!c->m->stopping && c->pid == 0)
        wr_child_spawn(c->m, c->role);
}

/* ---- messages from a child ---- */

static void from_controller(wr_main_t *m, wr_msg_t *msg)
{
    wr_chan_t *router = &m->child[WR_ROLE_ROUTER].chan;

    switch (msg->type) {
    case WR_MSG_CONF_APPLY:
        wr_apply_start(m, msg->id, msg->data, msg->len);
        break;
    case WR_MSG_APP_RESTART: {
        /* The running config again, with a new generation of that app. */
        char *name = strndup(msg->data, msg->len);
        if (name == NULL || json_object_get(json_object_get(m->running, "applications"),
                                            name) == NULL)
            wr_chan_send_result(&m->child[WR_ROLE_CONTROLLER].chan, msg->id, 0,
                                "No such application.");
        else
            wr_apply_restart(m, msg->id, m->running_text, strlen(m->running_text), name);
        free(name);
        break;
    }
    case WR_MSG_CERT_PUT:
        wr_store_put(m, &m->certs, msg->id, msg->data, msg->len);
        break;
    case WR_MSG_CERT_DELETE:
        wr_store_delete(m, &m->certs, msg->id, msg->data, msg->len);
        break;
    case WR_MSG_JS_MODULE_PUT:
        wr_store_put(m, &m->js_modules, msg->id, msg->data, msg->len);
        break;
    case WR_MSG_JS_MODULE_DELETE:
        wr_store_delete(m, &m->js_modules, msg->id, msg->data, msg->len);
        break;
    case WR_MSG_STATUS_REQ:
        /* Without a router there are no counters to report: answer empty. */
        if (m->child[WR_ROLE_ROUTER].pid == 0
            || wr_chan_send(router, WR_MSG_STATUS_REQ, msg->id, msg->data, msg->len, -1) < 0)
            wr_chan_send(&m->child[WR_ROLE_CONTROLLER].chan, WR_MSG_STATUS, msg->id,
                         NULL, 0, -1);
        break;
    default:
        wr_log(WR_LOG_WARN, "unexpected message %u from the controller", msg->type);
    }
}

static void from_router(wr_main_t *m, wr_msg_t *msg)
{
    char reason[1024];
    wr_msg_result_t res;
    size_t rlen;

    switch (msg->type) {
    case WR_MSG_CONF_RESULT:
        if (msg->len < sizeof(res))
            break;
        memcpy(&res, msg->data, sizeof(res));
        rlen = msg->len - sizeof(res);
        if (rlen >= sizeof(reason))
            rlen = sizeof(reason) - 1;
        memcpy(reason, msg->data + sizeof(res), rlen);
        reason[rlen] = '\0';
        wr_apply_router_result(m, msg->id, res.ok, reason);
        break;
    case WR_MSG_STATUS:
        if (m->child[WR_ROLE_CONTROLLER].pid != 0)
            wr_chan_send(&m->child[WR_ROLE_CONTROLLER].chan, WR_MSG_STATUS, msg->id,
                         msg->data, msg->len, -1);
        break;
    case WR_MSG_APP_WANT:
    case WR_MSG_APP_KILL:
    case WR_MSG_APP_RELEASE:
        wr_apps_router_msg(m, msg);
        break;
    default:
        wr_log(WR_LOG_WARN, "unexpected message %u from the router", msg->type);
    }
}

static void tell_ready(wr_main_t *m)
{
    char ok = 0;

    if (m->ready_fd < 0 || !m->child[WR_ROLE_CONTROLLER].ready
        || !m->child[WR_ROLE_ROUTER].ready)
        return;
    if (write(m->ready_fd, &ok, 1) < 0)
        wr_log_sys(WR_LOG_WARN, "write", "daemon readiness pipe");
    close(m->ready_fd);
    m->ready_fd = -1;
}

static void child_msg(wr_chan_t *ch, wr_msg_t *msg)
{
    wr_child_t *c = ch->data;

    if (msg->type == WR_MSG_READY) {
        c->ready = 1;
        wr_log(WR_LOG_INFO, "%s %d started", wr_role_name(c->role), (int) c->pid);
        tell_ready(c->m);
        return;
    }
    if (c->role == WR_ROLE_CONTROLLER)
        from_controller(c->m, msg);
    else
        from_router(c->m, msg);
}

static void child_chan_closed(wr_chan_t *ch)
{
    /* The exit itself is handled when SIGCHLD reaps the process. */
}

/* ---- fork ---- */

__attribute__((noreturn))
static void child_run(wr_main_t *m, wr_role_t role, int chan_fd)
{
    char title[64];
    sigset_t none;
    int keep[] = { chan_fd, wr_proc.log_fd };

    wr_proc.role = role;
    wr_proc.pid = getpid();
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (wr_close_fds_except(keep, 2) < 0) {
        wr_log_sys(WR_LOG_EMERG, "close_range", "inherited fds");
        _exit(1);
    }
    snprintf(title, sizeof(title), "warren: %s", wr_role_name(role));
    wr_title_set(title);

    if (role == WR_ROLE_CONTROLLER) {
        wr_controller_args_t a = {
            .chan_fd = chan_fd, .parent = getppid(), .uid = m->uid, .gid = m->gid,
            .runtimes = m->runtimes,
        };
        a.peer_uid[a.npeer_uid++] = 0;
        a.peer_uid[a.npeer_uid++] = getuid();
        if (m->control_uid != (uid_t) -1)
            a.peer_uid[a.npeer_uid++] = m->control_uid;
        a.peer_gid_set = m->control_gid != (gid_t) -1;
        a.peer_gid = m->control_gid;
        wr_controller_main(&a);
    } else {
        wr_router_args_t a = {
            .chan_fd = chan_fd, .parent = getppid(), .uid = m->uid, .gid = m->gid,
            .tmpdir = m->opt->tmpdir,
        };
        wr_router_main(&a);
    }
}

int wr_child_spawn(wr_main_t *m, wr_role_t role)
{
    wr_child_t *c = &m->child[role];
    int fds[2];
    pid_t pid;

    if (wr_chan_pair(fds) < 0)
        return -1;
    pid = fork();
    if (pid < 0) {
        wr_log_sys(WR_LOG_ALERT, "fork", wr_role_name(role));
        close(fds[0]);
        close(fds[1]);
        c->backoff = c->backoff ? c->backoff : WR_RESTART_MIN_MS;
        wr_timer_set(&m->loop, &c->restart, c->backoff);
        return -1;
    }
    if (pid == 0) {
        close(fds[0]);
        child_run(m, role, fds[1]);
    }
    close(fds[1]);
    c->m = m;
    c->role = role;
    c->pid = pid;
    c->ready = 0;
    c->started = wr_ev_now();
    c->restart.cb = child_restart_cb;
    c->restart.data = c;
    c->chan.on_msg = child_msg;
    c->chan.on_close = child_chan_closed;
    c->chan.data = c;
    if (wr_chan_open(&c->chan, &m->loop, fds[0]) < 0) {
        close(fds[0]);
        kill(pid, SIGKILL);
        return -1;
    }
    if (role == WR_ROLE_CONTROLLER) {
        wr_chan_send(&c->chan, WR_MSG_CONTROL_FD, 0, NULL, 0, m->control_fd);
        wr_store_send_all(m, &m->certs, &c->chan);
        wr_store_send_all(m, &m->js_modules, &c->chan);
        wr_chan_send(&c->chan, WR_MSG_CONF_CURRENT, 0, m->running_text,
                     strlen(m->running_text), -1);
    } else {
        wr_router_prime(m);
    }
    return 0;
}

/* ---- exits ---- */

/* A process that ran for a while is restarted at once (0); one that keeps
 * failing early waits longer each time, from WR_RESTART_MIN_MS doubling up
 * to WR_RESTART_MAX_MS. */
uint64_t wr_backoff_next(uint64_t cur, uint64_t up)
{
    if (up >= WR_RESTART_STABLE_MS)
        return 0;
    if (cur == 0)
        return WR_RESTART_MIN_MS;
    return cur * 2 <= WR_RESTART_MAX_MS ? cur * 2 : WR_RESTART_MAX_MS;
}

static void child_exited(wr_main_t *m, wr_child_t *c, int status)
{
    uint64_t up = wr_ev_now() - c->started;
    int lvl = m->stopping ? WR_LOG_INFO : WR_LOG_ERR;

    if (WIFSIGNALED(status))
        wr_log(lvl, "%s %d exited on signal %d", wr_role_name(c->role), (int) c->pid,
               WTERMSIG(status));
    else
        wr_log(lvl, "%s %d exited with code %d", wr_role_name(c->role), (int) c->pid,
               WEXITSTATUS(status));
    wr_chan_close(&c->chan);
    c->pid = 0;
    c->ready = 0;
    if (c->role == WR_ROLE_ROUTER) {
        wr_apply_router_lost(m);
        wr_apps_router_lost(m);
    }
    if (m->stopping)
        return;

    c->backoff = wr_backoff_next(c->backoff, up);
    if (c->backoff == 0)
        wr_child_spawn(m, c->role);
    else
        wr_timer_set(&m->loop, &c->restart, c->backoff);
}

void wr_child_reap(wr_main_t *m)
{
    int sweep = 0;

    for (;;) {
        int status;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        int known = 0;

        if (pid <= 0)
            break;
        for (int r = WR_ROLE_CONTROLLER; r < WR_ROLE_COUNT; r++) {
            if (m->child[r].pid == pid) {
                child_exited(m, &m->child[r], status);
                known = 1;
            }
        }
        /* A prototype gone: what it had adopted is main's now. An orphan
         * gone: its own children are. Both are killed. */
        sweep |= !known;
        if (!known && wr_apps_reaped(m, pid, status))
            known = 1;
        if (!known)
            wr_log(WR_LOG_DEBUG, "reaped process %d", (int) pid);
    }
    if (sweep)
        wr_orphans_kill(m);
}

void wr_children_signal(wr_main_t *m, int sig)
{
    for (int r = WR_ROLE_CONTROLLER; r < WR_ROLE_COUNT; r++)
        if (m->child[r].pid > 0)
            kill(m->child[r].pid, sig);
}

int wr_children_alive(wr_main_t *m)
{
    int n = 0;

    for (int r = WR_ROLE_CONTROLLER; r < WR_ROLE_COUNT; r++)
        n += m->child[r].pid > 0;
    return n + wr_apps_alive(m);
}

void wr_children_send_log(wr_main_t *m)
{
    for (int r = WR_ROLE_CONTROLLER; r < WR_ROLE_COUNT; r++)
        if (m->child[r].pid > 0)
            wr_chan_send(&m->child[r].chan, WR_MSG_LOG_FD, 0, NULL, 0, wr_proc.log_fd);
    wr_apps_send_log(m);
}
