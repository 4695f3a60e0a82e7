/*
 * A runtime as a zygote (src/app/zygote.h): the language (and the
 * application) loaded once, then every worker forked from this image, so
 * what was loaded is shared copy-on-write and a worker starts without
 * loading anything.
 *
 * A spawn: the zygote forks a short-lived child that forks the worker and
 * exits at once, so the worker is re-parented to the prototype (a child
 * subreaper) which reaps it like any worker. The zygote never serves a
 * request; it only waits for the prototype's messages.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
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
#include "runtime/common/zygote.h"
#include "warren.h"

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
    const wr_zygote_hooks_t *h;
} zygote_t;

int wr_zygote_fd(void)
{
    const char *v = getenv(WR_ZYGOTE_ENV_FD);
    char *end;
    long fd;

    if (v == NULL || v[0] == '\0')
        return -1;
    errno = 0;
    fd = strtol(v, &end, 10);
    if (errno != 0 || *end != '\0' || fd < 0 || fd > INT_MAX)
        return -2;
    fcntl((int) fd, F_SETFD, FD_CLOEXEC);
    return (int) fd;
}

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
static int recv_spawn(const zygote_t *z, wr_zygote_msg_t *m, int fds[WR_ZYGOTE_MAX_FDS])
{
    char cbuf[CMSG_SPACE(sizeof(int) * WR_ZYGOTE_MAX_FDS)];
    struct iovec iov = { m, sizeof(*m) };
    struct msghdr h = { .msg_iov = &iov, .msg_iovlen = 1,
                        .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
    struct cmsghdr *c;
    void *state = z->h->wait_begin ? z->h->wait_begin() : NULL;
    ssize_t n;

    fds[0] = fds[1] = -1;
    do
        n = recvmsg(z->fd, &h, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (z->h->wait_end) {
        int e = errno;
        z->h->wait_end(state);
        errno = e;
    }
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
        z->h->log("zygote: a malformed spawn request");
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
        z->h->log("worker: prctl(PR_SET_PDEATHSIG) failed: %s", strerror(errno));
        _exit(WR_ZYGOTE_EXIT_ORPHAN);
    }
    if (getppid() != z->proto)
        _exit(WR_ZYGOTE_EXIT_ORPHAN);   /* the prototype is gone */
}

/* In the worker: its channel and stderr in place, as an exec'd worker
 * would have them. */
static void worker_setup(const zygote_t *z, const wr_zygote_msg_t *m,
                         int fds[WR_ZYGOTE_MAX_FDS])
{
    char num[NUM_TEXT];

    if (z->h->after_fork_child)
        z->h->after_fork_child();
    /* ps and the tests tell the zygote from its workers by this name. */
    prctl(PR_SET_NAME, z->h->worker_comm, 0, 0, 0);
    worker_adopted(z);
    close(z->fd);
    if (fds[1] >= 0) {
        if (dup2(fds[1], STDERR_FILENO) < 0)
            z->h->log("worker: dup2(stderr) failed: %s", strerror(errno));
        close(fds[1]);
    }
    snprintf(num, sizeof(num), "%d", fds[0]);
    setenv(WARREN_ENV_CHANNEL_FD, num, 1);
    snprintf(num, sizeof(num), "%u", (unsigned) m->worker);
    setenv(WARREN_ENV_WORKER_ID, num, 1);
    unsetenv(WR_ZYGOTE_ENV_FD);
    if (z->h->worker_env)
        z->h->worker_env(num);
}

/* Forks the worker through a middle child; the worker's pid, or -1. In
 * the worker itself, returns 0. */
static pid_t fork_worker(const zygote_t *z, int *err)
{
    int pp[2];
    pid_t mid, pid = -1;
    int st;

    if (pipe2(pp, O_CLOEXEC) < 0) {
        *err = errno;
        return -1;
    }
    if (z->h->before_fork)
        z->h->before_fork();
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
    if (z->h->after_fork_parent)
        z->h->after_fork_parent();
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

int wr_zygote_run(int fd, const wr_zygote_hooks_t *h)
{
    zygote_t z = { .fd = fd, .proto = getppid(), .h = h };
    wr_zygote_msg_t m;
    int fds[WR_ZYGOTE_MAX_FDS], rc, err = 0;
    pid_t pid;

    prctl(PR_SET_NAME, h->zygote_comm, 0, 0, 0);
    if (send_msg(fd, WR_ZYGOTE_READY, 0, getpid(), 0) < 0) {
        h->log("zygote: cannot tell the prototype it is ready: %s", strerror(errno));
        return -1;
    }
    while ((rc = recv_spawn(&z, &m, fds)) > 0) {
        pid = fork_worker(&z, &err);
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
            h->log("zygote: cannot answer the prototype: %s", strerror(errno));
            return -1;
        }
    }
    if (rc < 0 && errno != ECONNRESET) {
        h->log("zygote: recvmsg failed: %s", strerror(errno));
        return -1;
    }
    return 0;
}
