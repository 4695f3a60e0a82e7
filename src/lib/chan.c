/*
 * libwarren: messages on the channel. Sending frames one message per
 * datagram; receiving validates every message strictly (proto.h) before it
 * touches any state, and dispatches it to its stream.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "lib/internal.h"

/* ------------------------------------------------------------------ send */

/*
 * Sends one message whose payload is the concatenation of parts (up to
 * WL_PARTS_MAX). Any failure is fatal: the channel is then unusable.
 */
int wlib_sendv(warren_ctx_t *ctx, uint16_t type, uint16_t flags,
               uint32_t stream, const struct iovec *parts, size_t nparts)
{
    wr_app_hdr_t h = { .type = type, .flags = flags, .stream = stream };
    struct iovec iov[1 + WL_PARTS_MAX] = {
        { .iov_base = &h, .iov_len = sizeof(h) },
    };
    struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 1 };
    size_t len = 0;
    ssize_t n;

    if (ctx->fatal != 0) {
        errno = ctx->fatal;
        return -1;
    }
    for (size_t i = 0; i < nparts && i < WL_PARTS_MAX; i++) {
        if (parts[i].iov_len == 0)
            continue;
        iov[msg.msg_iovlen++] = parts[i];
        len += parts[i].iov_len;
    }
    h.len = (uint32_t) len;
    do
        n = sendmsg(ctx->fd, &msg, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return wlib_fatal(ctx, errno, "send on the channel: %s",
                          strerror(errno));
    return 0;                   /* SEQPACKET: all of it or nothing */
}

int wlib_send(warren_ctx_t *ctx, uint16_t type, uint32_t stream,
              const void *payload, size_t len)
{
    struct iovec part = { .iov_base = (void *) payload, .iov_len = len };

    return wlib_sendv(ctx, type, 0, stream, &part, 1);
}

int wlib_send_u32(warren_ctx_t *ctx, uint16_t type, uint32_t stream,
                  uint32_t value)
{
    return wlib_send(ctx, type, stream, &value, sizeof(value));
}

/* ------------------------------------------------------------- dispatch */

static int on_req_head(warren_ctx_t *ctx, const wr_app_hdr_t *h,
                       const unsigned char *p)
{
    warren_req_t *req;

    if (h->stream == 0)
        return wlib_fatal(ctx, EPROTO, "protocol: REQ_HEAD on stream 0");
    if (wlib_find_open(ctx, h->stream) != NULL)
        return wlib_fatal(ctx, EPROTO, "protocol: REQ_HEAD for open stream %u",
                          h->stream);
    req = wlib_stream_new(ctx, h->stream);
    if (req == NULL)
        return -1;
    req->upgrade = (h->flags & WR_APP_F_UPGRADE) != 0;
    if (wlib_head_parse(req, p, h->len) < 0) {
        wlib_stream_drop(req);
        return -1;
    }
    if (h->flags & WR_APP_F_END)
        req->in_closed = true;  /* no body: REQ_END is implied */
    return 0;
}

/* A stream the router may still send body on, or a fatal error. */
static warren_req_t *incoming(warren_ctx_t *ctx, const wr_app_hdr_t *h,
                              const char *what)
{
    warren_req_t *req = wlib_find_open(ctx, h->stream);

    if (req == NULL || req->in_closed) {
        wlib_fatal(ctx, EPROTO, "protocol: %s for %s stream %u", what,
                   req == NULL ? "unknown" : "ended", h->stream);
        return NULL;
    }
    return req;
}

static int on_req_body(warren_ctx_t *ctx, const wr_app_hdr_t *h,
                       const unsigned char *p)
{
    warren_req_t *req = incoming(ctx, h, "REQ_BODY");

    if (req == NULL)
        return -1;
    if (h->len > req->in_credit)
        return wlib_fatal(ctx, EPROTO,
                          "protocol: REQ_BODY of %u bytes beyond the window "
                          "(%u left) on stream %u", h->len, req->in_credit,
                          h->stream);
    req->in_credit -= h->len;
    if ((!req->held && !req->pending) || req->finishing)
        return 0;               /* the app is done with it: dropped */
    return wlib_body_push(req, p, h->len);
}

static int on_req_end(warren_ctx_t *ctx, const wr_app_hdr_t *h)
{
    warren_req_t *req = incoming(ctx, h, "REQ_END");

    if (req == NULL)
        return -1;
    req->in_closed = true;
    wlib_maybe_close(req);
    return 0;
}

/*
 * The router ends the stream. If our direction is still open we close it
 * with ABORT in reply, and the request failed. An id not open is a crossing
 * (proto.h): ignored.
 */
static int on_abort(warren_ctx_t *ctx, const wr_app_hdr_t *h)
{
    warren_req_t *req = wlib_find_open(ctx, h->stream);

    if (req == NULL)
        return 0;
    req->in_closed = true;
    if (!req->out_closed) {
        req->aborted = true;
        if (wlib_send_abort(req) < 0)
            return -1;
    }
    wlib_maybe_close(req);
    return 0;
}

static int on_window(warren_ctx_t *ctx, const wr_app_hdr_t *h,
                     const unsigned char *p)
{
    warren_req_t *req;
    uint32_t grant;

    memcpy(&grant, p, sizeof(grant));
    if (h->stream == 0 || grant == 0)
        return wlib_fatal(ctx, EPROTO, "protocol: WINDOW of %u on stream %u",
                          grant, h->stream);
    req = wlib_find_open(ctx, h->stream);
    if (req == NULL || req->out_closed)
        return 0;               /* crossed our end: ignored */
    req->out_credit += grant;
    if (req->out_credit > UINT32_MAX)
        return wlib_fatal(ctx, EPROTO,
                          "protocol: WINDOW overflow on stream %u", h->stream);
    return 0;
}

/* The payload length each type must have (-1: any up to the maximum). */
static long expected_len(uint16_t type)
{
    switch (type) {
    case WR_APP_REQ_END:
    case WR_APP_ABORT:
        return 0;
    case WR_APP_WINDOW:
        return WL_U32;
    default:
        return -1;
    }
}

/* The flags a message of this type may carry from the router. */
static uint16_t allowed_flags(uint16_t type)
{
    return type == WR_APP_REQ_HEAD ? WR_APP_F_END | WR_APP_F_UPGRADE : 0;
}

/* Checks the framing that does not depend on stream state. */
static int check_frame(warren_ctx_t *ctx, const wr_app_hdr_t *h, size_t got)
{
    long want;

    if (h->len != got - WL_HDR_SIZE)
        return wlib_fatal(ctx, EPROTO,
                          "protocol: header says %u payload bytes, got %zu",
                          h->len, got - WL_HDR_SIZE);
    if ((h->flags & ~allowed_flags(h->type))
        || (h->flags & (WR_APP_F_END | WR_APP_F_UPGRADE))
           == (WR_APP_F_END | WR_APP_F_UPGRADE))
        return wlib_fatal(ctx, EPROTO, "protocol: flags 0x%x on type %u",
                          h->flags, h->type);
    want = expected_len(h->type);
    if (want >= 0 && h->len != (uint32_t) want)
        return wlib_fatal(ctx, EPROTO, "protocol: type %u with %u bytes",
                          h->type, h->len);
    return 0;
}

static int dispatch(warren_ctx_t *ctx, size_t got)
{
    const unsigned char *p = ctx->rbuf + WL_HDR_SIZE;
    wr_app_hdr_t h;

    if (got < WL_HDR_SIZE)
        return wlib_fatal(ctx, EPROTO, "protocol: message of %zu bytes", got);
    memcpy(&h, ctx->rbuf, sizeof(h));
    if (check_frame(ctx, &h, got) < 0)
        return -1;
    switch (h.type) {
    case WR_APP_REQ_HEAD: return on_req_head(ctx, &h, p);
    case WR_APP_REQ_BODY: return on_req_body(ctx, &h, p);
    case WR_APP_REQ_END:  return on_req_end(ctx, &h);
    case WR_APP_ABORT:    return on_abort(ctx, &h);
    case WR_APP_WINDOW:   return on_window(ctx, &h, p);
    default:
        return wlib_fatal(ctx, EPROTO, "protocol: unexpected type %u",
                          h.type);
    }
}

/* --------------------------------------------------------------- pump */

/*
 * Receives one message into ctx->rbuf, touching nothing else of ctx (so a
 * thread may receive without the context's lock, threads.c). Returns its
 * size, 0 when the router closed the channel, -1 with errno (EAGAIN when
 * none was waiting and block is false). *flags gets the msg_flags.
 */
ssize_t wlib_recv(warren_ctx_t *ctx, bool block, int *flags)
{
    struct iovec iov = { .iov_base = ctx->rbuf, .iov_len = WL_MSG_MAX };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
    ssize_t n;

    do
        n = recvmsg(ctx->fd, &msg, block ? 0 : MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    *flags = msg.msg_flags;
    return n;
}

/*
 * Handles what wlib_recv got (n, and err when n is -1), on a usable
 * context. Returns 1 when a
 * message was handled, 0 when none was waiting (block false), -1 when the
 * channel ended (ctx->eof) or failed (ctx->fatal): every -1 sets one of
 * the two.
 */
int wlib_handle(warren_ctx_t *ctx, ssize_t n, int err, int flags, bool block)
{
    if (n < 0 && !block && (err == EAGAIN || err == EWOULDBLOCK))
        return 0;
    if (n < 0)
        return wlib_fatal(ctx, err, "receive on the channel: %s",
                          strerror(err));
    if (n == 0) {
        ctx->eof = true;
        wlib_wake_all(ctx);
        return wlib_fail(ctx, ECONNRESET, "the router closed the channel");
    }
    if (flags & (MSG_TRUNC | MSG_CTRUNC))
        return wlib_fatal(ctx, EPROTO, "protocol: message over %d bytes",
                          (int) WL_MSG_MAX);
    if (dispatch(ctx, (size_t) n) < 0)
        return -1;
    return 1;
}

/* Receives and handles one message (wlib_handle's results). */
int wlib_pump(warren_ctx_t *ctx, bool block)
{
    ssize_t n;
    int flags;

    if (wlib_usable(ctx) < 0)
        return -1;
    n = wlib_recv(ctx, block, &flags);
    return wlib_handle(ctx, n, errno, flags, block);
}
