/*
 * warren-python as a zygote (src/app/zygote.h): the application is loaded
 * once, then every worker is forked from this image, so its modules are
 * shared copy-on-write and a worker starts without importing anything.
 *
 * A spawn: the zygote forks a short-lived child that forks the worker and
 * exits at once, so the worker is re-parented to the prototype (a child
 * subreaper) which reaps it like any worker. The zygote never serves a
 * request; it only waits for the prototype's messages, GIL released (the
 * application's own threads, if it started any, keep running; they are
 * not in the workers, as with any fork).
 *
 * ASGI later: a worker returning from wpy_zygote_run() is a plain worker,
 * free to run an asyncio loop over the channel instead of the blocking
 * request loop; the zygote itself must stay loop-free (no loop may be
 * running when it forks).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "app/zygote.h"
#include "runtime/python/wpy.h"

enum {
    /* The worker polls for its re-parenting (its middle parent exits at
     * once); it gives up after REPARENT_TRIES * REPARENT_WAIT_NS. */
    REPARENT_TRIES   = 100000,
    REPARENT_WAIT_NS = 100000,
    NUM_TEXT         = 16,
};

typedef struct {
    int      fd;           /* the socket to the prototype */
    pid_t    proto;        /* the prototype: our parent */
} zygote_t;

static int send_msg(int fd, uint32_t type, uint32_t worker, pid_t pid, int err)
{
    wr_zygote_msg_t m = { .type = type, .worker = worker, .pid = (int32_t) pid,
                          .err = err };
    ssize_t n;

    do
        n = send(fd, &m, sizeof(m), MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n == (ssize_t) sizeof(m) ? 0 : -1;
}

/* One SPAWN: 1 with fds filled (-1 where absent), 0 at EOF, -1 on error. */
static int recv_spawn(int fd, wr_zygote_msg_t *m, int fds[WR_ZYGOTE_MAX_FDS])
{
    char cbuf[CMSG_SPACE(sizeof(int) * WR_ZYGOTE_MAX_FDS)];
    struct iovec iov = { m, sizeof(*m) };
    struct msghdr h = { .msg_iov = &iov, .msg_iovlen = 1,
                        .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
    struct cmsghdr *c;
    ssize_t n;

    fds[0] = fds[1] = -1;
    Py_BEGIN_ALLOW_THREADS
    do
        n = recvmsg(fd, &h, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    Py_END_ALLOW_THREADS
    if (n <= 0)
        return (int) n;
    for (c = CMSG_FIRSTHDR(&h); c != NULL; c = CMSG_NXTHDR(&h, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            memcpy(fds, CMSG_DATA(c), (k > WR_ZYGOTE_MAX_FDS ? WR_ZYGOTE_MAX_FDS : k)
                   * sizeof(int));
        }
    }
    if (n != (ssize_t) sizeof(*m) || m->type != WR_ZYGOTE_SPAWN || fds[0] < 0) {
        wpy_log("zygote: a malformed spawn request");
        errno = EPROTO;
        return -1;
    }
    return 1;
}

/* In the worker: wait to be the prototype's child, then die with it. */
static void worker_adopted(const zygote_t *z)
{
    struct timespec wait = { 0, REPARENT_WAIT_NS };

    for (int i = 0; getppid() != z->proto && i < REPARENT_TRIES; i++)
        nanosleep(&wait, NULL);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) {
        wpy_log("worker: prctl(PR_SET_PDEATHSIG) failed: %s", strerror(errno));
        _exit(WPY_EXIT_NO_ROUTER);
    }
    if (getppid() != z->proto)
        _exit(WPY_EXIT_NO_ROUTER);      /* the prototype is gone */
}

/* os.environ was copied when Python started (in the zygote): the worker's
 * own id goes there too, and the zygote's socket out. */
static void environ_update(const char *worker_id)
{
    PyObject *os = PyImport_ImportModule("os");
    PyObject *env = os != NULL ? PyObject_GetAttrString(os, "environ") : NULL;
    PyObject *id = PyUnicode_FromString(worker_id);
    PyObject *gone;

    if (env == NULL || id == NULL
        || PyMapping_SetItemString(env, WARREN_ENV_WORKER_ID, id) < 0)
        wpy_log_exception("worker: cannot update os.environ");
    gone = env != NULL ? PyObject_CallMethod(env, "pop", "sO", WR_ZYGOTE_ENV_FD,
                                             Py_None) : NULL;
    if (env != NULL && gone == NULL)
        wpy_log_exception("worker: cannot update os.environ");
    Py_XDECREF(gone);
    Py_XDECREF(id);
    Py_XDECREF(env);
    Py_XDECREF(os);
}

/* In the worker: its channel and stderr in place, as an exec'd worker
 * would have them. */
static void worker_setup(const zygote_t *z, const wr_zygote_msg_t *m,
                         int fds[WR_ZYGOTE_MAX_FDS])
{
    char num[NUM_TEXT];

    PyOS_AfterFork_Child();
    /* ps and the tests tell the zygote from its workers by this name. */
    prctl(PR_SET_NAME, WPY_WORKER_COMM, 0, 0, 0);
    worker_adopted(z);
    close(z->fd);
    if (fds[1] >= 0) {
        if (dup2(fds[1], STDERR_FILENO) < 0)
            wpy_log("worker: dup2(stderr) failed: %s", strerror(errno));
        close(fds[1]);
    }
    snprintf(num, sizeof(num), "%d", fds[0]);
    setenv(WARREN_ENV_CHANNEL_FD, num, 1);
    snprintf(num, sizeof(num), "%u", (unsigned) m->worker);
    setenv(WARREN_ENV_WORKER_ID, num, 1);
    unsetenv(WR_ZYGOTE_ENV_FD);
    environ_update(num);
}

/* Forks the worker through a middle child; the worker's pid, or -1. In
 * the worker itself, returns 0. */
static pid_t fork_worker(int *err)
{
    int pp[2];
    pid_t mid, pid = -1;
    int st;

    if (pipe2(pp, O_CLOEXEC) < 0) {
        *err = errno;
        return -1;
    }
    PyOS_BeforeFork();
    mid = fork();
    if (mid == 0) {
        close(pp[0]);
        pid = fork();
        if (pid != 0) {                 /* the middle child: report, go */
            ssize_t w = write(pp[1], &pid, sizeof(pid));
            _exit(w == (ssize_t) sizeof(pid) && pid > 0 ? 0 : 1);
        }
        close(pp[1]);
        return 0;
    }
    *err = errno;
    PyOS_AfterFork_Parent();
    close(pp[1]);
    if (mid > 0) {
        if (read(pp[0], &pid, sizeof(pid)) != (ssize_t) sizeof(pid) || pid <= 0) {
            pid = -1;
            *err = EAGAIN;              /* the second fork failed */
        }
        while (waitpid(mid, &st, 0) < 0 && errno == EINTR)
            ;
    }
    close(pp[0]);
    return pid;
}

int wpy_zygote_run(int fd)
{
    zygote_t z = { .fd = fd, .proto = getppid() };
    wr_zygote_msg_t m;
    int fds[WR_ZYGOTE_MAX_FDS], rc, err = 0;
    pid_t pid;

    prctl(PR_SET_NAME, WPY_ZYGOTE_COMM, 0, 0, 0);
    if (send_msg(fd, WR_ZYGOTE_READY, 0, getpid(), 0) < 0) {
        wpy_log("zygote: cannot tell the prototype it is ready: %s", strerror(errno));
        return -1;
    }
    while ((rc = recv_spawn(fd, &m, fds)) > 0) {
        pid = fork_worker(&err);
        if (pid == 0) {
            worker_setup(&z, &m, fds);
            return 1;
        }
        close(fds[0]);
        if (fds[1] >= 0)
            close(fds[1]);
        if (pid < 0)
            rc = send_msg(fd, WR_ZYGOTE_FAILED, m.worker, 0, err);
        else
            rc = send_msg(fd, WR_ZYGOTE_WORKER, m.worker, pid, 0);
        if (rc < 0) {
            wpy_log("zygote: cannot answer the prototype: %s", strerror(errno));
            return -1;
        }
    }
    if (rc < 0 && errno != ECONNRESET) {
        wpy_log("zygote: recvmsg failed: %s", strerror(errno));
        return -1;
    }
    return 0;
}
