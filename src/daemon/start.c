/*
 * The main process from start to stop: resolve users, open the log, bind the
 * control socket, daemonize, restore the saved configuration, start the
 * children, then serve signals and child messages until told to stop.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "conf/conf.h"
#include "conf/state.h"
#include "core/log.h"
#include "daemon/internal.h"

#define WR_DIR_MODE  0755

/* ---- set-up steps; each logs its own failure ---- */

static int resolve_ids(wr_main_t *m)
{
    const wr_options_t *o = m->opt;
    struct passwd *pw = getpwnam(o->user);
    struct group *gr;

    if (pw == NULL) {
        wr_log(WR_LOG_EMERG, "user \"%s\" does not exist", o->user);
        return -1;
    }
    m->uid = pw->pw_uid;
    m->gid = pw->pw_gid;
    if (o->group) {
        gr = getgrnam(o->group);
        if (gr == NULL) {
            wr_log(WR_LOG_EMERG, "group \"%s\" does not exist", o->group);
            return -1;
        }
        m->gid = gr->gr_gid;
    }
    m->control_uid = (uid_t) -1;
    m->control_gid = (gid_t) -1;
    if (o->control_user) {
        pw = getpwnam(o->control_user);
        if (pw == NULL) {
            wr_log(WR_LOG_EMERG, "control user \"%s\" does not exist", o->control_user);
            return -1;
        }
        m->control_uid = pw->pw_uid;
    }
    if (o->control_group) {
        gr = getgrnam(o->control_group);
        if (gr == NULL) {
            wr_log(WR_LOG_EMERG, "control group \"%s\" does not exist", o->control_group);
            return -1;
        }
        m->control_gid = gr->gr_gid;
    }
    return 0;
}

/* mkdir -p of path (or of its parent directory when parent_only). */
static int make_dirs(const char *path, int parent_only)
{
    char buf[PATH_MAX];
    size_t n = strlen(path);

    if (n >= sizeof(buf))
        return -1;
    memcpy(buf, path, n + 1);
    if (parent_only) {
        char *slash = strrchr(buf, '/');
        if (slash == NULL || slash == buf)
            return 0;
        *slash = '\0';
    }
    for (char *p = buf + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, WR_DIR_MODE) < 0 && errno != EEXIST) {
                wr_log_sys(WR_LOG_EMERG, "mkdir", buf);
                return -1;
            }
            *p = c;
            if (c == '\0')
                break;
        }
    }
    return 0;
}

static int open_log(const wr_options_t *o)
{
    int fd;

    if (o->log_file == NULL)
        return 0;
    if (make_dirs(o->log_file, 1) < 0)
        return -1;
    fd = wr_log_open(o->log_file);
    if (fd < 0) {
        wr_log_sys(WR_LOG_EMERG, "open", o->log_file);
        return -1;
    }
    wr_proc.log_fd = fd;
    return 0;
}

static int bind_control(wr_main_t *m)
{
    const wr_options_t *o = m->opt;
    const char *why;
    const char *path;

    if (wr_addr_parse(o->control, &m->control_addr, &why) < 0) {
        wr_log(WR_LOG_EMERG, "--control \"%s\": %s", o->control, why);
        return -1;
    }
    if (m->control_addr.sa.ss_family != AF_UNIX) {
        m->control_fd = wr_addr_listen(&m->control_addr, 0, o->control);
        return m->control_fd < 0 ? -1 : 0;
    }
    path = ((struct sockaddr_un *) &m->control_addr.sa)->sun_path;
    if (make_dirs(path, 1) < 0)
        return -1;
    m->control_fd = wr_addr_listen(&m->control_addr, 0, o->control);
    if (m->control_fd < 0)
        return -1;
    if (chmod(path, o->control_mode) < 0) {
        wr_log_sys(WR_LOG_EMERG, "chmod", path);
        return -1;
    }
    if ((m->control_uid != (uid_t) -1 || m->control_gid != (gid_t) -1)
        && chown(path, m->control_uid, m->control_gid) < 0) {
        wr_log_sys(WR_LOG_EMERG, "chown", path);
        return -1;
    }
    return 0;
}

/* Refuse to start twice on the same pid file; replace a stale one. */
static int write_pid(const wr_options_t *o)
{
    char buf[32];
    int fd, n;
    FILE *f = fopen(o->pid_file, "re");

    if (f) {
        long old = 0;
        if (fscanf(f, "%ld", &old) == 1 && old > 0 && old != getpid() && kill((pid_t) old, 0) == 0) {
            fclose(f);
            wr_log(WR_LOG_EMERG, "warrend is already running (pid %ld, %s)", old, o->pid_file);
            return -1;
        }
        fclose(f);
    }
    if (make_dirs(o->pid_file, 1) < 0)
        return -1;
    fd = open(o->pid_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        wr_log_sys(WR_LOG_EMERG, "open", o->pid_file);
        return -1;
    }
    n = snprintf(buf, sizeof(buf), "%d\n", (int) getpid());
    if (write(fd, buf, (size_t) n) != n) {
        wr_log_sys(WR_LOG_EMERG, "write", o->pid_file);
        close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

/*
 * Fork into the background. The parent stays until main says it is ready
 * (or failed), so `warrend` exits 0 only for a daemon that serves.
 */
static int daemonize(wr_main_t *m)
{
    int p[2];
    pid_t pid;
    char status = 1;

    if (pipe2(p, O_CLOEXEC) < 0) {
        wr_log_sys(WR_LOG_EMERG, "pipe2", "daemon readiness");
        return -1;
    }
    pid = fork();
    if (pid < 0) {
        wr_log_sys(WR_LOG_EMERG, "fork", "daemon");
        return -1;
    }
    if (pid > 0) {
        close(p[1]);
        if (read(p[0], &status, 1) != 1)
            status = 1;
        _exit(status);
    }
    close(p[0]);
    m->ready_fd = p[1];
    if (setsid() < 0)
        wr_log_sys(WR_LOG_WARN, "setsid", NULL);
    return 0;
}

static void detach_stdio(void)
{
    int fd = open("/dev/null", O_RDWR);

    if (fd < 0) {
        wr_log_sys(WR_LOG_ALERT, "open", "/dev/null");
        return;
    }
    dup2(fd, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    if (fd > 2)
        close(fd);
}

/* The saved config, or {} when there is none or it is bad (set aside). */
static json_t *restore_state(wr_main_t *m)
{
    const wr_options_t *o = m->opt;
    wr_conf_error_t err;
    char *text = NULL, aside[PATH_MAX];
    size_t len = 0;
    json_t *conf = NULL;
    int rc = wr_state_read(o->statedir, &text, &len);

    if (rc <= 0)
        return json_object();
    wr_conf_error_init(&err);
    conf = wr_conf_parse(text, len, &err);
    if (conf && wr_conf_validate_stored(conf, m->certs.names, m->js_modules.names, &err) < 0) {
        json_decref(conf);
        conf = NULL;
    }
    free(text);
    if (conf)
        return conf;
    if (wr_state_set_aside(o->statedir, aside, sizeof(aside)) == 0)
        wr_log(WR_LOG_ALERT, "the saved configuration is invalid (%s%s%s%s), starting "
               "with an empty one; the bad file was moved to %s",
               err.error ? err.error : "", err.detail ? " " : "", err.detail ? err.detail : "",
               err.path ? err.path : "", aside);
    wr_conf_error_clear(&err);
    return json_object();
}

/* ---- signals ---- */

static void stop_timeout(wr_ev_loop_t *loop, wr_timer_t *t)
{
    wr_main_t *m = t->data;

    wr_log(WR_LOG_WARN, "children did not exit in time; killing them");
    wr_children_signal(m, SIGKILL);
    wr_apps_signal(m, SIGKILL, 1);
}

static void begin_stop(wr_main_t *m, int sig)
{
    if (m->stopping == SIGTERM)
        return;
    m->stopping = sig == SIGQUIT ? SIGQUIT : SIGTERM;
    wr_log(WR_LOG_NOTICE, "%s stop requested", sig == SIGQUIT ? "graceful" : "fast");
    for (int r = WR_ROLE_CONTROLLER; r < WR_ROLE_COUNT; r++)
        wr_timer_cancel(&m->loop, &m->child[r].restart);
    /* Graceful: the router drains its connections; the controller has none
     * worth waiting for. */
    if (m->child[WR_ROLE_ROUTER].pid > 0)
        kill(m->child[WR_ROLE_ROUTER].pid, m->stopping);
    if (m->child[WR_ROLE_CONTROLLER].pid > 0)
        kill(m->child[WR_ROLE_CONTROLLER].pid, SIGTERM);
    /* Fast: workers too, at once. Graceful: the prototypes stop spawning and
     * their workers end when the draining router closes their channels. */
    wr_apps_signal(m, SIGTERM, m->stopping == SIGTERM);
    m->stop_timer.cb = stop_timeout;
    m->stop_timer.data = m;
    wr_timer_set(&m->loop, &m->stop_timer,
                 m->stopping == SIGQUIT ? WR_QUIT_TIMEOUT_MS : WR_STOP_TIMEOUT_MS);
}

static void reopen_log(wr_main_t *m)
{
    int fd;

    if (m->opt->log_file == NULL) {
        wr_access_log_reopen(m);
        return;
    }
    fd = wr_log_open(m->opt->log_file);
    if (fd < 0) {
        wr_log_sys(WR_LOG_ALERT, "open", m->opt->log_file);
        return;
    }
    /* Same fd number: nothing that holds wr_proc.log_fd needs to change. */
    if (dup3(fd, wr_proc.log_fd, O_CLOEXEC) < 0)
        wr_log_sys(WR_LOG_ALERT, "dup3", m->opt->log_file);
    close(fd);
    wr_log(WR_LOG_NOTICE, "log reopened");
    wr_children_send_log(m);
    wr_access_log_reopen(m);
}

static void on_signal(wr_ev_loop_t *loop, wr_ev_t *ev, uint32_t events)
{
    wr_main_t *m = ev->data;
    struct signalfd_siginfo si;

    while (read(ev->fd, &si, sizeof(si)) == sizeof(si)) {
        switch (si.ssi_signo) {
        case SIGCHLD:
            wr_child_reap(m);
            break;
        case SIGTERM:
        case SIGINT:
        case SIGQUIT:
            begin_stop(m, (int) si.ssi_signo);
            break;
        case SIGUSR1:
            reopen_log(m);
            break;
        default:               /* SIGHUP: ignored, as Unit does */
            break;
        }
    }
    if (m->stopping && !wr_children_alive(m))
        loop->stop = 1;
}

static int setup_signals(wr_main_t *m)
{
    sigset_t set;
    int fd;

    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGQUIT);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0) {
        wr_log_sys(WR_LOG_EMERG, "sigprocmask", NULL);
        return -1;
    }
    fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0) {
        wr_log_sys(WR_LOG_EMERG, "signalfd", NULL);
        return -1;
    }
    m->sig.fd = fd;
    m->sig.cb = on_signal;
    m->sig.data = m;
    return wr_ev_add(&m->loop, &m->sig, EPOLLIN);
}

/* ---- run ---- */

/* Language runtimes live in --modulesdir, else beside warrend itself. */
static int find_runtimes(wr_main_t *m)
{
    char self[sizeof(m->runtimes)];
    ssize_t n;
    char *slash;

    if (m->opt->modulesdir) {
        snprintf(m->runtimes, sizeof(m->runtimes), "%s", m->opt->modulesdir);
        return 0;
    }
    n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n < 0) {
        wr_log_sys(WR_LOG_EMERG, "readlink", "/proc/self/exe");
        return -1;
    }
    self[n] = '\0';
    slash = strrchr(self, '/');
    if (slash)
        *slash = '\0';
    snprintf(m->runtimes, sizeof(m->runtimes), "%s", self);
    return 0;
}

static int start(wr_main_t *m)
{
    const wr_options_t *o = m->opt;
    json_t *conf;
    int rc;

    /* Until the daemon detaches, whoever started it sees why it failed. */
    wr_proc.log_echo = 1;
    if (geteuid() != 0)
        wr_log(WR_LOG_WARN, "not started as root: children cannot change user");
    if (resolve_ids(m) < 0 || open_log(o) < 0 || find_runtimes(m) < 0)
        return -1;
    if (!o->no_daemon && daemonize(m) < 0)
        return -1;
    wr_proc.pid = getpid();
    if (write_pid(o) < 0)
        return -1;
    m->pid_written = 1;
    if (make_dirs(o->statedir, 0) < 0 || wr_store_load(m, &m->certs, &wr_store_certs) < 0
        || wr_store_load(m, &m->js_modules, &wr_store_js_modules) < 0 || bind_control(m) < 0)
        return -1;
    if (wr_ev_init(&m->loop) < 0 || setup_signals(m) < 0)
        return -1;
    /* What an application leaves behind comes to main when its prototype
     * is gone, not to init: main kills it (daemon/orphans.c). */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
        wr_log_sys(WR_LOG_EMERG, "prctl", "PR_SET_CHILD_SUBREAPER");
        return -1;
    }
    conf = restore_state(m);
    rc = wr_apply_initial(m, conf);
    json_decref(conf);
    if (rc < 0)
        return -1;
    /* Before the children exist, so none of them inherits the caller's
     * terminal or pipes. */
    wr_proc.log_echo = 0;
    if (!o->no_daemon)
        detach_stdio();
    /* Before the router: its first config comes with their generations. */
    wr_apps_start_running(m);
    if (wr_child_spawn(m, WR_ROLE_ROUTER) < 0 || wr_child_spawn(m, WR_ROLE_CONTROLLER) < 0)
        return -1;
    wr_log(WR_LOG_NOTICE, "warren %s started, control API on %s", WR_VERSION, o->control);
    return 0;
}

static void cleanup(wr_main_t *m)
{
    wr_apps_free(m);
    wr_listens_close(&m->listens);
    if (m->control_fd >= 0) {
        close(m->control_fd);
        wr_addr_unlink(&m->control_addr);
    }
    json_decref(m->running);
    free(m->running_text);
    json_decref(m->certs.names);
    json_decref(m->js_modules.names);
    if (m->alog_fd >= 0)
        close(m->alog_fd);
    free(m->alog_path);
    if (m->loop.epfd > 0)
        wr_ev_free(&m->loop);
}

int wr_daemon_run(const wr_options_t *o)
{
    wr_main_t m;
    int rc = 1;

    memset(&m, 0, sizeof(m));
    m.opt = o;
    m.control_fd = -1;
    m.ready_fd = -1;
    m.alog_fd = -1;
    m.loop.epfd = -1;
    wr_proc.role = WR_ROLE_MAIN;
    wr_proc.pid = getpid();
    wr_title_set("warren: main");

    if (start(&m) == 0) {
        rc = wr_ev_run(&m.loop) < 0 ? 1 : 0;
        wr_log(WR_LOG_NOTICE, "warren stopped");
    } else if (m.child[WR_ROLE_ROUTER].pid || m.child[WR_ROLE_CONTROLLER].pid) {
        wr_children_signal(&m, SIGKILL);
    }
    wr_apps_signal(&m, SIGKILL, 1);
    if (m.pid_written && unlink(o->pid_file) < 0)
        wr_log_sys(WR_LOG_WARN, "unlink", o->pid_file);
    cleanup(&m);
    return rc;
}
