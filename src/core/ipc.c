#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "core/ipc.h"
#include "core/log.h"

struct wr_chan_out {
    wr_chan_out_t *next;
    int            fd;          /* dup'ed, sent with this fragment, or -1 */
    size_t         len;         /* header + payload */
    char           buf[];
};

int wr_chan_pair(int fds[2])
{
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) < 0) {
        wr_log_sys(WR_LOG_ALERT, "socketpair", "AF_UNIX SOCK_SEQPACKET");
        return -1;
    }
    return 0;
}

static void chan_event(wr_ev_loop_t *loop, wr_ev_t *ev, uint32_t events);

int wr_chan_open(wr_chan_t *c, wr_ev_loop_t *loop, int fd)
{
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        wr_log_sys(WR_LOG_ALERT, "fcntl", "channel O_NONBLOCK");
        return -1;
    }
    c->ev.fd = fd;
    c->ev.cb = chan_event;
    c->ev.data = c;
    c->loop = loop;
    c->head = c->tail = NULL;
    c->in = NULL;
    c->in_len = c->in_cap = 0;
    c->in_fd = -1;
    c->closed = 0;
    return wr_ev_add(loop, &c->ev, EPOLLIN);
}

static void out_free_all(wr_chan_t *c)
{
    while (c->head) {
        wr_chan_out_t *o = c->head;
        c->head = o->next;
        if (o->fd >= 0)
            close(o->fd);
        free(o);
    }
    c->tail = NULL;
}

void wr_chan_close(wr_chan_t *c)
{
    if (c->closed)
        return;
    c->closed = 1;
    wr_ev_del(c->loop, &c->ev);
    close(c->ev.fd);
    c->ev.fd = -1;
    out_free_all(c);
    free(c->in);
    c->in = NULL;
    if (c->in_fd >= 0)
        close(c->in_fd);
    c->in_fd = -1;
}

static void chan_fail(wr_chan_t *c)
{
    wr_chan_close(c);
    if (c->on_close)
        c->on_close(c);
}

static int out_send(wr_chan_t *c, wr_chan_out_t *o)
{
    struct iovec iov = { .iov_base = o->buf, .iov_len = o->len };
    union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } ctl;
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

    if (o->fd >= 0) {
        struct cmsghdr *cm;
        memset(&ctl, 0, sizeof(ctl));
        mh.msg_control = ctl.buf;
        mh.msg_controllen = sizeof(ctl.buf);
        cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &o->fd, sizeof(int));
    }
    return sendmsg(c->ev.fd, &mh, MSG_NOSIGNAL) < 0 ? -1 : 0;
}

/* Send what is queued; 0 when done or waiting for EPOLLOUT, -1 if broken. */
static int out_flush(wr_chan_t *c)
{
    while (c->head) {
        wr_chan_out_t *o = c->head;
        if (out_send(c, o) < 0) {
            if (errno == EAGAIN || errno == EINTR)
                return wr_ev_mod(c->loop, &c->ev, EPOLLIN | EPOLLOUT);
            if (errno != EPIPE && errno != ECONNRESET)
                wr_log_sys(WR_LOG_ERR, "sendmsg", "channel");
            return -1;
        }
        c->head = o->next;
        if (o->fd >= 0)
            close(o->fd);
        free(o);
    }
    c->tail = NULL;
    return wr_ev_mod(c->loop, &c->ev, EPOLLIN);
}

static int out_queue(wr_chan_t *c, const wr_msg_hdr_t *h, const void *data, int fd)
{
    wr_chan_out_t *o = malloc(sizeof(*o) + sizeof(*h) + h->len);

    if (o == NULL) {
        wr_log(WR_LOG_ALERT, "out of memory queueing a %u-byte message", h->len);
        return -1;
    }
    o->next = NULL;
    o->len = sizeof(*h) + h->len;
    o->fd = -1;
    memcpy(o->buf, h, sizeof(*h));
    if (h->len)
        memcpy(o->buf + sizeof(*h), data, h->len);
    if (fd >= 0) {
        o->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (o->fd < 0) {
            wr_log_sys(WR_LOG_ALERT, "fcntl", "F_DUPFD_CLOEXEC");
            free(o);
            return -1;
        }
    }
    if (c->tail)
        c->tail->next = o;
    else
        c->head = o;
    c->tail = o;
    return 0;
}

int wr_chan_send(wr_chan_t *c, uint32_t type, uint32_t id,
                 const void *data, size_t len, int fd)
{
    const char *p = data;
    int was_idle = c->head == NULL;

    if (c->closed)
        return -1;
    if ((long) len > WR_IPC_MAX_MSG) {
        wr_log(WR_LOG_ALERT, "message of %zu bytes exceeds the channel limit", len);
        return -1;
    }
    do {
        size_t n = len > WR_IPC_FRAGMENT ? WR_IPC_FRAGMENT : len;
        wr_msg_hdr_t h = { .type = type, .id = id, .len = (uint32_t) n,
                           .flags = len > n ? WR_MSG_F_MORE : 0 };
        if (out_queue(c, &h, p, fd) < 0)
            return -1;
        fd = -1;                    /* the fd rides on the first fragment */
        p += n;
        len -= n;
    } while (len > 0);

    if (was_idle && out_flush(c) < 0) {
        /* The peer is gone, but what it sent before going (why it failed,
         * say) is still to be read: the read side closes the channel at
         * its end of file. Closing here would drop it. */
        if (errno == EPIPE || errno == ECONNRESET) {
            out_free_all(c);
            return -1;
        }
        chan_fail(c);
        return -1;
    }
    return 0;
}

int wr_chan_send_result(wr_chan_t *c, uint32_t id, int ok, const char *reason)
{
    size_t rlen = reason ? strlen(reason) : 0;
    char *buf = malloc(sizeof(wr_msg_result_t) + rlen);
    wr_msg_result_t r = { .ok = ok };
    int rc;

    if (buf == NULL)
        return -1;
    memcpy(buf, &r, sizeof(r));
    if (rlen)
        memcpy(buf + sizeof(r), reason, rlen);
    rc = wr_chan_send(c, WR_MSG_CONF_RESULT, id, buf, sizeof(r) + rlen, -1);
    free(buf);
    return rc;
}

static int in_append(wr_chan_t *c, const char *p, size_t n)
{
    if (c->in_len + n > (size_t) WR_IPC_MAX_MSG)
        return -1;
    if (c->in_len + n > c->in_cap) {
        size_t cap = c->in_cap ? c->in_cap : WR_IPC_FRAGMENT;
        char *b;
        while (cap < c->in_len + n)
            cap *= 2;
        b = realloc(c->in, cap);
        if (b == NULL)
            return -1;
        c->in = b;
        c->in_cap = cap;
    }
    if (n > 0)
        memcpy(c->in + c->in_len, p, n);
    c->in_len += n;
    return 0;
}

/* Read one datagram; 1 = got one, 0 = nothing more now, -1 = broken. */
static int in_read(wr_chan_t *c)
{
    char buf[sizeof(wr_msg_hdr_t) + WR_IPC_FRAGMENT];
    union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } ctl;
    struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
                         .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf) };
    wr_msg_hdr_t h;
    int fd = -1;
    ssize_t n = recvmsg(c->ev.fd, &mh, MSG_CMSG_CLOEXEC);

    /* A peer that exits with our messages unread leaves ECONNRESET, which
     * the kernel reports (once) ahead of what it had sent us: read on. */
    if (n < 0 && errno == ECONNRESET) {
        mh.msg_controllen = sizeof(ctl.buf);
        n = recvmsg(c->ev.fd, &mh, MSG_CMSG_CLOEXEC);
    }
    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    if (n == 0)
        return -1;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
            memcpy(&fd, CMSG_DATA(cm), sizeof(int));
    if ((size_t) n < sizeof(h) || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)))
        goto bad;
    memcpy(&h, buf, sizeof(h));
    if (h.len != (size_t) n - sizeof(h) || h.type == 0 || h.type >= WR_MSG_TYPE_MAX)
        goto bad;
    if (fd >= 0) {
        if (c->in_fd >= 0)
            goto bad;
        c->in_fd = fd;
        fd = -1;
    }
    if (in_append(c, buf + sizeof(h), h.len) < 0)
        goto bad;
    if (h.flags & WR_MSG_F_MORE)
        return 1;

    wr_msg_t m = { .type = h.type, .id = h.id, .data = c->in ? c->in : "",
                   .len = c->in_len, .fd = c->in_fd };
    c->in_fd = -1;
    c->on_msg(c, &m);
    if (m.fd >= 0)
        close(m.fd);
    if (!c->closed)
        c->in_len = 0;
    return 1;

bad:
    if (fd >= 0)
        close(fd);
    wr_log(WR_LOG_ALERT, "malformed message on a channel; closing it");
    return -1;
}

void wr_chan_drain(wr_chan_t *c)
{
    while (!c->closed && in_read(c) > 0)
        ;
}

static void chan_event(wr_ev_loop_t *loop, wr_ev_t *ev, uint32_t events)
{
    wr_chan_t *c = ev->data;

    if ((events & EPOLLOUT) && out_flush(c) < 0) {
        chan_fail(c);
        return;
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        int r;
        while ((r = in_read(c)) > 0 && !c->closed)
            ;
        if (r < 0 && !c->closed)
            chan_fail(c);
    }
}
