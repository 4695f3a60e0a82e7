/*
 * The prototype's side of an HTTP worker (see http_worker.h): its listen
 * socket, its socket-activation environment, the readiness probe, and the
 * channel that stands for the worker in the router.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "app/http_worker.h"
#include "core/log.h"
#include "lib/proto.h"

/* Any answer will do: the worker reads requests, so it can serve. */
#define PROBE_REQUEST "OPTIONS * HTTP/1.1\r\nHost: localhost\r\n" \
                      "User-Agent: warren-probe\r\nConnection: close\r\n\r\n"

struct wr_httpw {
    wr_ev_loop_t      *loop;
    pid_t              pid;
    char              *name;
    struct sockaddr_un addr;
    socklen_t          addr_len;
    wr_ev_t            chan;      /* -1 once the router let go */
    wr_ev_t            probe;     /* -1 when no probe is out */
    wr_timer_t         retry;
    wr_timer_t         kill;
    int                ready;
    int                concurrency;
};

int wr_httpw_listen(char *msg, size_t len)
{
    sa_family_t fam = AF_UNIX;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        snprintf(msg, len, "socket(AF_UNIX) for the worker failed: %s", strerror(errno));
        return -1;
    }
    /* Binding just the family: the kernel picks a unique abstract name. */
    if (bind(fd, (struct sockaddr *) &fam, sizeof(fam)) < 0
        || listen(fd, WR_HTTPW_BACKLOG) < 0) {
        snprintf(msg, len, "bind/listen(worker socket) failed: %s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int wr_httpw_child(int lfd, int *efd, char **envp, size_t *n, const char *name,
                   const char **call)
{
    if (*efd == WR_HTTPW_FD) {
        int moved = fcntl(*efd, F_DUPFD_CLOEXEC, WR_HTTPW_FD + 1);
        if (moved < 0) {
            *call = "fcntl(exec status pipe)";
            return -1;
        }
        *efd = moved;
    }
    if (lfd != WR_HTTPW_FD && dup2(lfd, WR_HTTPW_FD) < 0) {
        *call = "dup2(listen socket, 3)";
        return -1;
    }
    /* dup2 clears close-on-exec; a socket already at 3 still has it. */
    if (fcntl(WR_HTTPW_FD, F_SETFD, 0) < 0) {
        *call = "fcntl(listen socket)";
        return -1;
    }
    if (asprintf(&envp[(*n)++], "LISTEN_FDS=1") < 0
        || asprintf(&envp[(*n)++], "LISTEN_PID=%d", (int) getpid()) < 0
        || asprintf(&envp[(*n)++], "LISTEN_FDNAMES=%s", name) < 0) {
        *call = "asprintf(LISTEN_*)";
        return -1;
    }
    return 0;
}

/* ---- the probe ---- */

static void probe_close(wr_httpw_t *h)
{
    if (h->probe.fd < 0)
        return;
    wr_ev_del(h->loop, &h->probe);
    close(h->probe.fd);
    h->probe.fd = -1;
}

static void probe_later(wr_httpw_t *h)
{
    probe_close(h);
    wr_timer_set(h->loop, &h->retry, WR_HTTPW_PROBE_RETRY_MS);
}

/* The worker answers: say HELLO for it, then where it listens. */
static void say_ready(wr_httpw_t *h)
{
    char buf[sizeof(wr_app_hdr_t) + sizeof(struct sockaddr_un)];
    wr_app_hdr_t hdr = { .type = WR_APP_HELLO, .len = sizeof(wr_app_hello_t) };
    /* requests the router proxies to it at once: "concurrency" */
    wr_app_hello_t hello = { .version = WR_APP_PROTO_VERSION, .pid = (uint32_t) h->pid,
                             .streams = (uint32_t) h->concurrency, .tunnels = 0 };

    h->ready = 1;
    memcpy(buf, &hdr, sizeof(hdr));
    memcpy(buf + sizeof(hdr), &hello, sizeof(hello));
    if (send(h->chan.fd, buf, sizeof(hdr) + sizeof(hello), MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
        wr_log(WR_LOG_WARN, "app \"%s\": send(worker %d hello) failed: %s", h->name,
               (int) h->pid, strerror(errno));
    hdr.type = WR_APP_HTTP_ADDR;
    hdr.len = h->addr_len;
    memcpy(buf, &hdr, sizeof(hdr));
    memcpy(buf + sizeof(hdr), &h->addr, h->addr_len);
    if (send(h->chan.fd, buf, sizeof(hdr) + h->addr_len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
        wr_log(WR_LOG_WARN, "app \"%s\": send(worker %d address) failed: %s", h->name,
               (int) h->pid, strerror(errno));
}

static void on_probe(wr_ev_loop_t *loop, wr_ev_t *ev, uint32_t events)
{
    wr_httpw_t *h = ev->data;
    char buf[256];
    ssize_t n = recv(ev->fd, buf, sizeof(buf), MSG_DONTWAIT);

    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n > 0) {
        /* Read the answer to its end: cutting it short would make the
         * program log a broken pipe. */
        if (!h->ready)
            say_ready(h);
        return;
    }
    if (h->ready) {
        probe_close(h);
        return;
    }
    /* Closed without a word: dying (its exit will say why) or not
     * serving yet. */
    probe_later(h);
}

static void probe_start(wr_httpw_t *h)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        wr_log_sys(WR_LOG_WARN, "socket", "worker probe");
        probe_later(h);
        return;
    }
    h->probe.fd = fd;
    /* A unix listener takes the connection at once (or its backlog is
     * full: try again later). */
    if (connect(fd, (struct sockaddr *) &h->addr, h->addr_len) < 0
        || send(fd, PROBE_REQUEST, sizeof(PROBE_REQUEST) - 1, MSG_NOSIGNAL) < 0
        || wr_ev_add(h->loop, &h->probe, EPOLLIN) < 0) {
        close(fd);
        h->probe.fd = -1;
        probe_later(h);
    }
}

static void on_retry(wr_ev_loop_t *loop, wr_timer_t *t)
{
    wr_httpw_t *h = t->data;

    if (!h->ready && h->chan.fd >= 0)
        probe_start(h);
}

/* ---- the channel: the router (or main, before) letting go ---- */

static void on_kill(wr_ev_loop_t *loop, wr_timer_t *t)
{
    wr_httpw_t *h = t->data;

    wr_log(WR_LOG_WARN, "app \"%s\": worker %d did not stop within %d ms of SIGTERM; "
           "killing it", h->name, (int) h->pid, WR_HTTPW_STOP_MS);
    kill(h->pid, SIGKILL);
}

static void on_chan(wr_ev_loop_t *loop, wr_ev_t *ev, uint32_t events)
{
    wr_httpw_t *h = ev->data;
    char buf[64];
    ssize_t n;

    /* Messages (a stream ABORT) mean nothing here; only the end does. */
    while ((n = recv(ev->fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
        ;
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    wr_ev_del(loop, ev);
    close(ev->fd);
    ev->fd = -1;
    probe_close(h);
    wr_timer_cancel(loop, &h->retry);
    /* Its programs know SIGTERM as "finish and exit" (systemd's stop). */
    if (kill(h->pid, SIGTERM) < 0)
        wr_log(WR_LOG_WARN, "app \"%s\": kill(worker %d, SIGTERM) failed: %s", h->name,
               (int) h->pid, strerror(errno));
    wr_timer_set(loop, &h->kill, WR_HTTPW_STOP_MS);
}

wr_httpw_t *wr_httpw_start(wr_ev_loop_t *loop, int lfd, int chan, pid_t pid,
                           const char *name, int concurrency)
{
    wr_httpw_t *h = calloc(1, sizeof(*h));

    if (h == NULL || (h->name = strdup(name)) == NULL)
        goto fail;
    h->loop = loop;
    h->pid = pid;
    h->concurrency = concurrency;
    h->addr_len = sizeof(h->addr);
    if (getsockname(lfd, (struct sockaddr *) &h->addr, &h->addr_len) < 0) {
        wr_log_sys(WR_LOG_ERR, "getsockname", "worker listen socket");
        goto fail;
    }
    close(lfd);
    lfd = -1;
    h->probe.fd = -1;
    h->probe.cb = on_probe;
    h->probe.data = h;
    h->retry.cb = on_retry;
    h->retry.data = h;
    h->kill.cb = on_kill;
    h->kill.data = h;
    h->chan.fd = chan;
    h->chan.cb = on_chan;
    h->chan.data = h;
    if (wr_ev_add(loop, &h->chan, EPOLLIN) < 0)
        goto fail;
    probe_start(h);
    return h;
fail:
    if (h)
        free(h->name);
    free(h);
    if (lfd >= 0)
        close(lfd);
    close(chan);
    return NULL;
}

void wr_httpw_gone(wr_ev_loop_t *loop, wr_httpw_t *h)
{
    if (h == NULL)
        return;
    probe_close(h);
    wr_ev_retire(loop, &h->probe, NULL);
    if (h->chan.fd >= 0) {
        int fd = h->chan.fd;
        wr_ev_retire(loop, &h->chan, NULL);
        close(fd);
    } else {
        wr_ev_retire(loop, &h->chan, NULL);
    }
    wr_timer_cancel(loop, &h->retry);
    wr_timer_cancel(loop, &h->kill);
    free(h->name);
    wr_ev_defer_free(loop, h);
}
