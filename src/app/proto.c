/*
 * The prototype of one application generation. Forked from main (root),
 * it drops to the app's credentials, then serves main's channel: every
 * WR_MSG_PROTO_SPAWN forks one worker and execs the application; the
 * router's end of the worker's channel goes back to main
 * (WR_MSG_PROTO_WORKER), every worker exit too (WR_MSG_PROTO_EXIT).
 * SIGTERM: spawn no more, exit once the last worker has.
 *
 * With "isolation", main clone3()s it into its namespaces; it enters the
 * sandbox (wr_sb_enter: mounts, pivot_root or chroot, hostname, rlimits,
 * bounding set) before dropping creds, and each worker calls
 * wr_sb_exec_prepare() right before exec. In its own pid namespace it is
 * pid 1: it reaps every orphan, and tells main each worker's pidfd.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sched.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <linux/openat2.h>

#include "app/app.h"
#include "app/http_worker.h"
#include "app/relay.h"
#include "app/zygote.h"
#include "core/ipc.h"
#include "core/log.h"
#include "core/process.h"
#include "warren.h"

#define WR_PROTO_REASON_MAX 640

#define WR_LOG_FILE_MODE 0644    /* the app's stdout/stderr files, when created */
#define WR_WORKER_ENV_ADDED  5    /* variables a worker gets beyond the app's */

typedef struct {
    uint32_t    worker;
    pid_t       pid;
    wr_relay_t *relay;              /* NULL: stderr goes to a file */
    wr_httpw_t *http;               /* "protocol": "http" only */
} wr_pworker_t;

typedef struct {
    const wr_app_spec_t *s;
    wr_sb_run_t  *sb;               /* NULL: no isolation */
    int           stdio[3];         /* opened before entering a rootfs; -1 */
    wr_ev_loop_t  loop;
    wr_chan_t     chan;
    wr_ev_t       sig;
    int           stopping;
    wr_pworker_t *w;
    size_t        n, cap;
    pid_t         zpid;             /* the zygote (spec->zygote), 0: none */
    int           zfd;              /* its socket */
    wr_relay_t   *zrelay;           /* its stderr */
} wr_proto_t;

static void send_exit(wr_proto_t *p, uint32_t worker, pid_t pid, int status,
                      const char *reason)
{
    char buf[sizeof(wr_msg_exit_t) + WR_PROTO_REASON_MAX];
    wr_msg_exit_t e = { .worker = worker, .pid = (int32_t) pid, .status = status };
    size_t rl = strlen(reason);

    if (rl > WR_PROTO_REASON_MAX)
        rl = WR_PROTO_REASON_MAX;
    memcpy(buf, &e, sizeof(e));
    memcpy(buf + sizeof(e), reason, rl);
    wr_chan_send(&p->chan, WR_MSG_PROTO_EXIT, 0, buf, sizeof(e) + rl, -1);
}

/* A set-up step failed: tell main (worker 0 = the prototype itself), exit. */
__attribute__((noreturn))
static void setup_failed(wr_proto_t *p, const char *call, const char *object)
{
    char reason[WR_PROTO_REASON_MAX];
    int err = errno;

    snprintf(reason, sizeof(reason), "%s(%s) failed: %s", call, object, strerror(err));
    wr_log(WR_LOG_ERR, "app \"%s\" prototype: %s", p->s->name, reason);
    send_exit(p, 0, getpid(), -1, reason);
    _exit(1);
}

/* A sandbox step failed: err has the whole "call(object) failed: text". */
__attribute__((noreturn))
static void sandbox_failed(wr_proto_t *p, const wr_sb_err_t *err)
{
    wr_log(WR_LOG_ERR, "app \"%s\" prototype: %s", p->s->name, err->text);
    send_exit(p, 0, getpid(), -1, err->text);
    _exit(1);
}

/* A log file inside the rootfs is resolved beneath it with no symlink at
 * all: an earlier generation of the app, writing there as its user, could
 * have replaced any part of that path with a link to a host file. */
static int open_log(wr_proto_t *p, const char *path, int flags)
{
    const char *root = p->s->sb.rootfs;
    size_t rl = strlen(root);
    struct open_how how = {
        .flags = (uint64_t) (flags | O_CLOEXEC), .mode = WR_LOG_FILE_MODE,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    };

    while (rl > 1 && root[rl - 1] == '/')
        rl--;
    if (p->sb->rootfs_fd < 0 || strncmp(path, root, rl) != 0 || path[rl] != '/')
        return open(path, flags | O_CLOEXEC, WR_LOG_FILE_MODE);
    while (path[rl] == '/')
        rl++;
    return (int) syscall(SYS_openat2, p->sb->rootfs_fd, path[rl] ? path + rl : ".", &how,
                         sizeof(how));
}

/* A rootfs hides the host's /dev/null and the app's log files: they are
 * opened before entering it, by the prototype still root, but with the
 * app's file-system ids and groups, as a worker without a rootfs opens
 * them: root's rights never follow a link the app planted. */
static void stdio_open(wr_proto_t *p)
{
    const wr_app_spec_t *s = p->s;
    const char *paths[3] = { "/dev/null", s->out_path, s->err_path };
    int flags[3] = { O_RDWR, O_WRONLY | O_APPEND | O_CREAT, O_WRONLY | O_APPEND | O_CREAT };
    char obj[32];
    int fsuid, fsgid;

    snprintf(obj, sizeof(obj), "%u", (unsigned) s->gid);
    if (setgroups(1, &s->gid) < 0)
        setup_failed(p, "setgroups", obj);
    fsgid = setfsgid(s->gid);
    fsuid = setfsuid(s->uid);
    /* setfsuid() tells no error: the ids in force say whether it worked. */
    if ((gid_t) setfsgid((gid_t) -1) != s->gid || (uid_t) setfsuid((uid_t) -1) != s->uid) {
        errno = EPERM;
        snprintf(obj, sizeof(obj), "%u", (unsigned) s->uid);
        setup_failed(p, "setfsuid", obj);
    }
    for (int i = 0; i < 3; i++) {
        if (paths[i] == NULL)
            continue;
        p->stdio[i] = open_log(p, paths[i], flags[i]);
        if (p->stdio[i] < 0)
            setup_failed(p, "open", paths[i]);
    }
    setfsuid((uid_t) fsuid);
    setfsgid((gid_t) fsgid);
}

/* App workers are throughput work: as SCHED_BATCH a worker the router
 * wakes does not preempt the router (nor another worker) mid-batch, which
 * on a busy machine saves a context switch per request. Everything the
 * prototype forks inherits it; no privilege is needed, before or after. */
static void set_scheduling(wr_proto_t *p)
{
    struct sched_param sp = { .sched_priority = 0 };

    if (p->s->sched_batch && sched_setscheduler(0, SCHED_BATCH, &sp) < 0)
        setup_failed(p, "sched_setscheduler", "SCHED_BATCH");
}

static void drop_creds(wr_proto_t *p)
{
    const wr_app_spec_t *s = p->s;
    wr_sb_err_t err;
    char obj[32];

    snprintf(obj, sizeof(obj), "%u", (unsigned) s->gid);
    if (setgroups(1, &s->gid) < 0)
        setup_failed(p, "setgroups", obj);
    if (setresgid(s->gid, s->gid, s->gid) < 0)
        setup_failed(p, "setresgid", obj);
    snprintf(obj, sizeof(obj), "%u", (unsigned) s->uid);
    if (setresuid(s->uid, s->uid, s->uid) < 0)
        setup_failed(p, "setresuid", obj);
    if (p->sb && wr_sb_creds_done(&s->sb, &err) < 0)
        sandbox_failed(p, &err);
    if ((p->sb == NULL || !s->sb.new_privs) && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        setup_failed(p, "prctl", "PR_SET_NO_NEW_PRIVS");
    if (s->cwd && chdir(s->cwd) < 0)
        setup_failed(p, "chdir", s->cwd);
}

/* ---- a worker ---- */

/* In the worker child: report why it could not start on the error pipe. */
__attribute__((noreturn))
static void child_fail(int efd, const char *call, const char *object)
{
    char msg[WR_PROTO_REASON_MAX];
    int n = snprintf(msg, sizeof(msg), "%s(%s) failed: %s", call, object, strerror(errno));

    if (n > 0 && write(efd, msg, (size_t) n) < 0)
        _exit(126);
    _exit(127);
}

static void child_stdio(int efd, int pre, const char *path, int target, int flags)
{
    int fd;

    if (pre >= 0) {
        if (dup2(pre, target) < 0)
            child_fail(efd, "dup2", path);
        return;
    }
    fd = open(path, flags | O_CLOEXEC, 0644);

    if (fd < 0)
        child_fail(efd, "open", path);
    if (dup2(fd, target) < 0)
        child_fail(efd, "dup2", path);
    close(fd);
}

/* The child set-up of a worker, and of a zygote (fd_var names the one
 * inherited fd for the program: the channel, or the zygote socket). */
__attribute__((noreturn))
static void worker_exec(wr_proto_t *p, int chan_fd, int efd, int errw, pid_t proto,
                        uint32_t worker, const char *fd_var, int lfd)
{
    const wr_app_spec_t *s = p->s;
    sigset_t none;
    size_t n = 0;
    char **envp;
    char num[32];

    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
        child_fail(efd, "prctl", "PR_SET_PDEATHSIG");
    if (getppid() != proto)
        _exit(1);
    /* Dispositions set to ignore and the blocked mask survive execve. */
    signal(SIGPIPE, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    signal(SIGUSR1, SIG_DFL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);

    child_stdio(efd, p->stdio[0], "/dev/null", STDIN_FILENO, O_RDONLY);
    child_stdio(efd, s->out_path ? p->stdio[1] : p->stdio[0],
                s->out_path ? s->out_path : "/dev/null", STDOUT_FILENO,
                O_WRONLY | O_APPEND | O_CREAT);
    if (s->err_path)
        child_stdio(efd, p->stdio[2], s->err_path, STDERR_FILENO,
                    O_WRONLY | O_APPEND | O_CREAT);
    else if (dup2(errw, STDERR_FILENO) < 0)
        child_fail(efd, "dup2", "stderr relay");
    while (s->env[n])
        n++;
    envp = calloc(n + WR_WORKER_ENV_ADDED + 1, sizeof(char *));
    if (envp == NULL)
        child_fail(efd, "calloc", "environment");
    memcpy(envp, s->env, n * sizeof(char *));
    /* The one fd the worker inherits beyond stdio: the channel, or for an
     * HTTP app its listen socket as fd 3 (socket activation). */
    if (lfd >= 0) {
        const char *call;
        if (wr_httpw_child(lfd, &efd, envp, &n, s->name, &call) < 0)
            child_fail(efd, call, s->name);
    } else {
        if (fcntl(chan_fd, F_SETFD, 0) < 0)
            child_fail(efd, "fcntl", "channel");
        snprintf(num, sizeof(num), "%d", chan_fd);
        if (asprintf(&envp[n++], "%s=%s", fd_var, num) < 0)
            child_fail(efd, "asprintf", "environment");
    }
    if (asprintf(&envp[n++], "%s=%s", WARREN_ENV_APP_NAME, s->name) < 0
        || asprintf(&envp[n++], "%s=%u", WARREN_ENV_WORKER_ID, (unsigned) worker) < 0)
        child_fail(efd, "asprintf", "environment");
    envp[n] = NULL;
    if (p->sb) {
        wr_sb_err_t err;
        if (wr_sb_exec_prepare(&s->sb, p->sb->filter, &err) < 0) {
            if (write(efd, err.text, strlen(err.text)) < 0)
                _exit(126);
            _exit(127);
        }
        if (p->sb->exec_fd >= 0) {
            /* The runtime lives outside the rootfs: main opened it. */
            syscall(SYS_execveat, p->sb->exec_fd, "", s->argv, envp, AT_EMPTY_PATH);
            child_fail(efd, "execveat", s->executable);
        }
    }
    execve(s->executable, s->argv, envp);
    child_fail(efd, "execve", s->executable);
}

static void workers_add(wr_proto_t *p, uint32_t worker, pid_t pid, wr_relay_t *relay,
                        wr_httpw_t *http)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        wr_pworker_t *v = realloc(p->w, cap * sizeof(*v));
        if (v == NULL) {
            /* Untracked, it would outlive a retire: do not keep it. */
            wr_log(WR_LOG_ERR, "app \"%s\": out of memory tracking worker %d",
                   p->s->name, (int) pid);
            kill(pid, SIGKILL);
            wr_relay_free(&p->loop, relay);
            wr_httpw_gone(&p->loop, http);
            return;
        }
        p->w = v;
        p->cap = cap;
    }
    p->w[p->n].worker = worker;
    p->w[p->n].relay = relay;
    p->w[p->n].http = http;
    p->w[p->n++].pid = pid;
}

/* In our own pid namespace, pid means nothing to main: a pidfd does (main
 * reads the host pid from its fdinfo). */
static void send_pidfd(wr_proto_t *p, uint32_t worker, pid_t pid)
{
    int fd = (int) syscall(SYS_pidfd_open, pid, 0);

    if (fd < 0) {
        wr_log_sys(WR_LOG_WARN, "pidfd_open", p->s->name);
        return;
    }
    wr_chan_send(&p->chan, WR_MSG_PROTO_PIDFD, 0, &worker, sizeof(worker), fd);
    close(fd);
}

/* An HTTP worker's own fds in the prototype, after the fork: the listen
 * socket goes to the worker alone, the channel end stays here (watched by
 * http_worker.c); started only once the worker exec'd. */
static wr_httpw_t *http_after_fork(wr_proto_t *p, int lfd, int chan, pid_t pid)
{
    wr_httpw_t *h;

    if (lfd < 0)
        return NULL;
    if (pid <= 0) {                       /* fork or exec failed */
        close(lfd);
        close(chan);
        return NULL;
    }
    h = wr_httpw_start(&p->loop, lfd, chan, pid, p->s->name, p->s->concurrency);
    if (h == NULL)
        kill(pid, SIGKILL);               /* unwatched it could not be stopped */
    return h;
}

/* Reads the child's exec-status pipe: 0 at EOF (execve happened, close-
 * on-exec), else the length of the text the child wrote before failing. */
static ssize_t exec_status(int fd, char *msg, size_t size)
{
    ssize_t got = 0, r;

    while ((r = read(fd, msg + got, size - 1 - (size_t) got)) != 0) {
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 || (got += r) >= (ssize_t) size - 1)
            break;
    }
    msg[got] = '\0';
    return got;
}

/* "killed by signal 9" / "exited with code 70", then the last line the
 * process wrote to its relayed stderr, if any. */
static void exit_reason(wr_relay_t *rl, int st, char *reason, size_t size)
{
    if (rl)
        wr_relay_flush(rl);     /* it is dead: all it wrote is there */
    if (WIFSIGNALED(st))
        snprintf(reason, size, "killed by signal %d", WTERMSIG(st));
    else
        snprintf(reason, size, "exited with code %d", WEXITSTATUS(st));
    if (rl && rl->done[0])
        snprintf(reason + strlen(reason), size - strlen(reason),
                 "; its last words: %s", rl->done);
}

static void spawn_exec(wr_proto_t *p, uint32_t worker)
{
    int sv[2], ep[2], errp[2] = { -1, -1 }, lfd = -1;
    wr_httpw_t *http = NULL;
    wr_relay_t *relay;
    char msg[WR_PROTO_REASON_MAX];
    ssize_t got;
    pid_t pid, me = getpid();

    if (p->s->http && (lfd = wr_httpw_listen(msg, sizeof(msg))) < 0) {
        send_exit(p, worker, 0, -1, msg);
        return;
    }
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        snprintf(msg, sizeof(msg), "socketpair(worker channel) failed: %s", strerror(errno));
        if (lfd >= 0)
            close(lfd);
        send_exit(p, worker, 0, -1, msg);
        return;
    }
    if (pipe2(ep, O_CLOEXEC) < 0) {
        snprintf(msg, sizeof(msg), "pipe2(exec status) failed: %s", strerror(errno));
        close(sv[0]);
        close(sv[1]);
        if (lfd >= 0)
            close(lfd);
        send_exit(p, worker, 0, -1, msg);
        return;
    }
    relay = p->s->err_path ? NULL : wr_relay_new(&p->loop, p->s->name, worker, errp);
    pid = fork();
    if (pid == 0) {
        close(sv[0]);
        close(ep[0]);
        worker_exec(p, sv[1], ep[1], relay ? errp[1] : -1, me, worker,
                    WARREN_ENV_CHANNEL_FD, lfd);
    }
    if (relay)
        relay->pid = pid;
    if (lfd < 0)
        close(sv[1]);                     /* else kept: http_after_fork */
    close(ep[1]);
    if (relay)
        close(errp[1]);
    if (pid < 0) {
        snprintf(msg, sizeof(msg), "fork(worker) failed: %s", strerror(errno));
        close(sv[0]);
        close(ep[0]);
        wr_relay_free(&p->loop, relay);
        http_after_fork(p, lfd, sv[1], -1);
        send_exit(p, worker, 0, -1, msg);
        return;
    }
    got = exec_status(ep[0], msg, sizeof(msg));
    close(ep[0]);
    if (got > 0) {
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
        close(sv[0]);
        wr_relay_free(&p->loop, relay);
        http_after_fork(p, lfd, sv[1], -1);
        send_exit(p, worker, pid, -1, msg);
        return;
    }
    http = http_after_fork(p, lfd, sv[1], pid);
    wr_msg_worker_t w = { .gen = p->s->gen, .worker = worker, .pid = (int32_t) pid };
    workers_add(p, worker, pid, relay, http);
    if (p->sb && (p->s->sb.clone_flags & CLONE_NEWPID))
        send_pidfd(p, worker, pid);
    wr_chan_send(&p->chan, WR_MSG_PROTO_WORKER, 0, &w, sizeof(w), sv[0]);
    close(sv[0]);
}

/* ---- the zygote: the application loaded once, workers forked from it ---- */

/* The zygote ended (reaped with status st); workers it forked live on.
 * The next spawn starts a new one (and so imports the application again). */
static void zygote_lost(wr_proto_t *p, int st, int quiet)
{
    char reason[WR_PROTO_REASON_MAX];

    exit_reason(p->zrelay, st, reason, sizeof(reason));
    if (!quiet && !p->stopping)
        wr_log(WR_LOG_WARN, "app \"%s\" zygote (pid %d) %s", p->s->name,
               (int) p->zpid, reason);
    wr_relay_free(&p->loop, p->zrelay);
    close(p->zfd);
    p->zrelay = NULL;
    p->zfd = -1;
    p->zpid = 0;
}

/* The zygote failed to start or to answer: it is ended and reaped here,
 * its exit and last words are why the worker could not start. */
static void zygote_failed(wr_proto_t *p, uint32_t worker, const char *what)
{
    char reason[WR_PROTO_REASON_MAX], full[WR_PROTO_REASON_MAX + 64];
    pid_t pid = p->zpid;
    int st = 0;

    kill(pid, SIGKILL);         /* a no-op when it already exited */
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    exit_reason(p->zrelay, st, reason, sizeof(reason));
    snprintf(full, sizeof(full), "%s (zygote pid %d %s)", what, (int) pid, reason);
    zygote_lost(p, st, 1);
    send_exit(p, worker, pid, -1, full);
}

/* Execs the runtime in zygote mode and waits until it has loaded the
 * application: 0, or -1 with the worker's failure sent to main. */
static int zygote_start(wr_proto_t *p, uint32_t worker)
{
    int zs[2], ep[2], errp[2] = { -1, -1 };
    char msg[WR_PROTO_REASON_MAX];
    wr_zygote_msg_t m;
    wr_relay_t *relay;
    pid_t pid, me = getpid();
    ssize_t n;

    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, zs) < 0) {
        snprintf(msg, sizeof(msg), "socketpair(zygote) failed: %s", strerror(errno));
        send_exit(p, worker, 0, -1, msg);
        return -1;
    }
    if (pipe2(ep, O_CLOEXEC) < 0) {
        snprintf(msg, sizeof(msg), "pipe2(exec status) failed: %s", strerror(errno));
        close(zs[0]);
        close(zs[1]);
        send_exit(p, worker, 0, -1, msg);
        return -1;
    }
    relay = p->s->err_path ? NULL : wr_relay_new(&p->loop, p->s->name, 0, errp);
    pid = fork();
    if (pid == 0) {
        close(zs[0]);
        close(ep[0]);
        worker_exec(p, zs[1], ep[1], relay ? errp[1] : -1, me, 0, WR_ZYGOTE_ENV_FD, -1);
    }
    if (relay)
        relay->pid = pid;
    close(zs[1]);
    close(ep[1]);
    if (relay)
        close(errp[1]);
    if (pid < 0) {
        snprintf(msg, sizeof(msg), "fork(zygote) failed: %s", strerror(errno));
        close(zs[0]);
        close(ep[0]);
        wr_relay_free(&p->loop, relay);
        send_exit(p, worker, 0, -1, msg);
        return -1;
    }
    n = exec_status(ep[0], msg, sizeof(msg));
    close(ep[0]);
    p->zpid = pid;
    p->zfd = zs[0];
    p->zrelay = relay;
    if (n > 0) {
        zygote_failed(p, worker, msg);
        return -1;
    }
    /* The application loads now; an import error ends the zygote: EOF. */
    do
        n = recv(p->zfd, &m, sizeof(m), 0);
    while (n < 0 && errno == EINTR);
    if (n != (ssize_t) sizeof(m) || m.type != WR_ZYGOTE_READY) {
        zygote_failed(p, worker, "the application did not load");
        return -1;
    }
    return 0;
}

/* Sends SPAWN with the worker's channel and stderr; the reply, or -1. */
static int zygote_ask(wr_proto_t *p, uint32_t worker, int chan, int err,
                      wr_zygote_msg_t *reply)
{
    wr_zygote_msg_t m = { .type = WR_ZYGOTE_SPAWN, .worker = worker };
    int fds[WR_ZYGOTE_MAX_FDS] = { chan, err };
    size_t nfds = err >= 0 ? 2 : 1;
    char cbuf[CMSG_SPACE(sizeof(fds))];
    struct iovec iov = { &m, sizeof(m) };
    struct msghdr h = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                        .msg_controllen = CMSG_SPACE(nfds * sizeof(int)) };
    struct cmsghdr *c = CMSG_FIRSTHDR(&h);
    ssize_t n;

    memset(cbuf, 0, sizeof(cbuf));
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
    memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
    do
        n = sendmsg(p->zfd, &h, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n != (ssize_t) sizeof(m))
        return -1;
    do
        n = recv(p->zfd, reply, sizeof(*reply), 0);
    while (n < 0 && errno == EINTR);
    return n == (ssize_t) sizeof(*reply) && reply->worker == worker ? 0 : -1;
}

/* Is pid a child of ours (running, or exited and not reaped yet)? */
static int our_child(pid_t pid)
{
    siginfo_t si;

    memset(&si, 0, sizeof(si));
    return waitid(P_PID, (id_t) pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0;
}

static void spawn_zygote(wr_proto_t *p, uint32_t worker)
{
    int sv[2], errp[2] = { -1, -1 };
    char msg[WR_PROTO_REASON_MAX];
    wr_zygote_msg_t r;
    wr_relay_t *relay;

    if (p->zpid == 0 && zygote_start(p, worker) < 0)
        return;
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        snprintf(msg, sizeof(msg), "socketpair(worker channel) failed: %s", strerror(errno));
        send_exit(p, worker, 0, -1, msg);
        return;
    }
    relay = p->s->err_path ? NULL : wr_relay_new(&p->loop, p->s->name, worker, errp);
    if (zygote_ask(p, worker, sv[1], relay ? errp[1] : -1, &r) < 0) {
        close(sv[0]);
        close(sv[1]);
        if (relay)
            close(errp[1]);
        wr_relay_free(&p->loop, relay);
        zygote_failed(p, worker, "the zygote did not answer");
        return;
    }
    close(sv[1]);
    if (relay)
        close(errp[1]);
    /* The zygote ran the application's code (it imported it): the pid it
     * tells is believed only if it is a child of ours, as a worker is once
     * the zygote answers (re-parented to us, the subreaper). Else main would
     * kill whatever process it was told on a timeout. */
    if (r.type == WR_ZYGOTE_WORKER && r.pid > 0 && !our_child(r.pid)) {
        snprintf(msg, sizeof(msg), "the zygote said worker %u is pid %d, which is not "
                 "a child of the prototype", worker, (int) r.pid);
        wr_log(WR_LOG_ERR, "app \"%s\": %s; ending the zygote", p->s->name, msg);
        close(sv[0]);
        wr_relay_free(&p->loop, relay);
        zygote_failed(p, worker, msg);
        return;
    }
    if (relay)
        relay->pid = r.pid;
    if (r.type != WR_ZYGOTE_WORKER || r.pid <= 0) {
        snprintf(msg, sizeof(msg), "fork(worker) in the zygote failed: %s", strerror(r.err));
        close(sv[0]);
        wr_relay_free(&p->loop, relay);
        send_exit(p, worker, 0, -1, msg);
        return;
    }
    wr_msg_worker_t w = { .gen = p->s->gen, .worker = worker, .pid = r.pid };
    workers_add(p, worker, r.pid, relay, NULL);
    if (p->sb && (p->s->sb.clone_flags & CLONE_NEWPID))
        send_pidfd(p, worker, r.pid);
    wr_chan_send(&p->chan, WR_MSG_PROTO_WORKER, 0, &w, sizeof(w), sv[0]);
    close(sv[0]);
}

static void spawn(wr_proto_t *p, uint32_t worker)
{
    if (p->stopping) {
        send_exit(p, worker, 0, -1, "the generation is stopping");
        return;
    }
    if (p->s->zygote)
        spawn_zygote(p, worker);
    else
        spawn_exec(p, worker);
}

static void maybe_done(wr_proto_t *p)
{
    if (p->stopping && p->n == 0)
        _exit(0);
}

static void reap(wr_proto_t *p)
{
    int st;
    pid_t pid;

    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        char reason[WR_PROTO_REASON_MAX];
        if (pid == p->zpid) {
            zygote_lost(p, st, 0);
            continue;
        }
        for (size_t i = 0; i < p->n; i++) {
            if (p->w[i].pid != pid)
                continue;
            wr_relay_t *rl = p->w[i].relay;
            exit_reason(rl, st, reason, sizeof(reason));
            wr_relay_free(&p->loop, rl);
            wr_httpw_gone(&p->loop, p->w[i].http);
            send_exit(p, p->w[i].worker, pid, st, reason);
            p->w[i] = p->w[--p->n];
            break;
        }
    }
    maybe_done(p);
}

static void on_signal(wr_ev_loop_t *loop, wr_ev_t *ev, uint32_t events)
{
    wr_proto_t *p = ev->data;
    struct signalfd_siginfo si;

    while (read(ev->fd, &si, sizeof(si)) == sizeof(si)) {
        if (si.ssi_signo == SIGCHLD) {
            reap(p);
        } else {
            p->stopping = 1;
            /* Fast stop (main stopping): workers get it too via the group. */
            maybe_done(p);
        }
    }
}

static void on_msg(wr_chan_t *c, wr_msg_t *m)
{
    wr_proto_t *p = c->data;
    wr_msg_spawn_t sp;

    if (m->type == WR_MSG_PROTO_SPAWN && m->len == sizeof(sp)) {
        memcpy(&sp, m->data, sizeof(sp));
        spawn(p, sp.worker);
    } else if (m->type == WR_MSG_LOG_FD && m->fd >= 0) {
        if (dup3(m->fd, wr_proc.log_fd, O_CLOEXEC) < 0)
            wr_log_sys(WR_LOG_WARN, "dup3", "error log");
    } else {
        wr_log(WR_LOG_WARN, "app \"%s\" prototype: unexpected message %u", p->s->name,
               m->type);
    }
}

static void on_close(wr_chan_t *c)
{
    /* main is gone; the workers die with us (PDEATHSIG). */
    _exit(0);
}

void wr_proto_main(const wr_app_spec_t *s, wr_sb_run_t *sb, int chan_fd, pid_t parent)
{
    static wr_proto_t p;
    char title[128];
    sigset_t set;
    int keep[] = { chan_fd, wr_proc.log_fd, sb ? sb->rootfs_fd : -1, sb ? sb->exec_fd : -1 };
    wr_sb_err_t err;

    p.s = s;
    p.sb = sb;
    p.stdio[0] = p.stdio[1] = p.stdio[2] = -1;
    wr_proc.pid = getpid();
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || (parent && getppid() != parent))
        _exit(1);
    /* Own session and process group: main signals the whole set at once. */
    if (setsid() < 0)
        wr_log_sys(WR_LOG_WARN, "setsid", s->name);
    if (wr_close_fds_except(keep, 4) < 0) {
        wr_log_sys(WR_LOG_ERR, "close_range", "inherited fds");
        _exit(1);
    }
    snprintf(title, sizeof(title), "warren: %s prototype", s->name);
    wr_title_set(title);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGUSR1, SIG_IGN);
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGQUIT);
    sigprocmask(SIG_SETMASK, &set, NULL);

    if (wr_ev_init(&p.loop) < 0)
        _exit(1);
    p.chan.on_msg = on_msg;
    p.chan.on_close = on_close;
    p.chan.data = &p;
    if (wr_chan_open(&p.chan, &p.loop, chan_fd) < 0)
        _exit(1);
    p.sig.fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (p.sig.fd < 0)
        setup_failed(&p, "signalfd", s->name);
    p.sig.cb = on_signal;
    p.sig.data = &p;
    if (wr_ev_add(&p.loop, &p.sig, EPOLLIN) < 0)
        setup_failed(&p, "epoll_ctl", "signalfd");
    if (sb) {
        if (s->sb.rootfs)
            stdio_open(&p);
        if (wr_sb_enter(&s->sb, sb, &err) < 0)
            sandbox_failed(&p, &err);
    }
    drop_creds(&p);
    set_scheduling(&p);
    p.zfd = -1;
    /* Every orphan of the generation becomes our child: workers forked by
     * the zygote (a double fork), reaped and reported here like the exec'd
     * ones, and whatever an app process left behind, even in a session of
     * its own (setsid): no process group kill reaches that one, but when
     * we exit it passes to main, which kills it (daemon/orphans.c). */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
        setup_failed(&p, "prctl", "PR_SET_CHILD_SUBREAPER");
    wr_ev_run(&p.loop);
    _exit(0);
}
