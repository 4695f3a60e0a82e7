/*
 * libwarren: the context (one worker's channel), errors, the stream table
 * and warren_accept.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/internal.h"

/* ---------------------------------------------------------------- errors */

__attribute__((format(printf, 2, 0)))
static void set_err(warren_ctx_t *ctx, const char *fmt, va_list ap)
{
    vsnprintf(ctx->err, sizeof(ctx->err), fmt, ap);
}

/* Records a failure of one call (the ctx stays usable); returns -1. */
int wlib_fail(warren_ctx_t *ctx, int err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    set_err(ctx, fmt, ap);
    va_end(ap);
    errno = err;
    return -1;
}

/*
 * Records a failure after which the channel cannot be trusted (malformed
 * message, I/O error); returns -1. The channel is shut down at once so the
 * router sees the worker is gone even if the application lingers.
 */
int wlib_fatal(warren_ctx_t *ctx, int err, const char *fmt, ...)
{
    va_list ap;

    if (ctx->fatal == 0) {
        va_start(ap, fmt);
        set_err(ctx, fmt, ap);
        va_end(ap);
        ctx->fatal = err;
        shutdown(ctx->fd, SHUT_RDWR);
    }
    errno = ctx->fatal;
    return -1;
}

/* 0 when the channel can carry messages, else -1 with errno. */
int wlib_usable(warren_ctx_t *ctx)
{
    if (ctx->fatal != 0) {
        errno = ctx->fatal;
        return -1;
    }
    if (ctx->eof)
        return wlib_fail(ctx, ECONNRESET, "the router closed the channel");
    return 0;
}

/* 0 when req is held by the app and can go on, else -1 with errno. */
int wlib_req_usable(warren_req_t *req)
{
    if (wlib_usable(req->ctx) < 0)
        return -1;
    if (req->aborted)
        return wlib_fail(req->ctx, ECONNABORTED,
                         "request aborted by the router");
    return 0;
}

const char *warren_error(const warren_ctx_t *ctx)
{
    return ctx != NULL ? ctx->err : "no context";
}

/* --------------------------------------------------------- stream table */

/* Marks the stream closed on the wire once both directions are. */
void wlib_maybe_close(warren_req_t *req)
{
    if (req->open && req->in_closed && req->out_closed) {
        req->open = false;
        req->pending = false;   /* aborted before the app took it */
    }
    if (!req->open && !req->held && !req->pending)
        req->in_use = false;
}

/* The app lets go of req (warren_finish / warren_abort). */
void wlib_release(warren_req_t *req)
{
    req->held = false;
    req->ring_used = 0;         /* unread body is dropped */
    wlib_maybe_close(req);
}

static void slot_free(warren_req_t *req)
{
    wlib_head_free(req);
    wlib_body_free(req);
    wlib_resp_free(req);
}

/* ------------------------------------------------------------ lifecycle */

/* Checks fd is a SEQPACKET socket and makes it blocking + close-on-exec. */
static int channel_setup(int fd)
{
    int type = 0;
    socklen_t tlen = sizeof(type);
    int fl = fcntl(fd, F_GETFL);

    if (fl < 0)
        return -1;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) < 0)
        return -1;              /* ENOTSOCK for a pipe or file */
    if (type != SOCK_SEQPACKET) {
        errno = EPROTOTYPE;
        return -1;
    }
    if ((fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
        return -1;
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
        return -1;
    return 0;
}

_Static_assert(WARREN_MAX_THREADS == WR_APP_MAX_STREAMS,
               "a worker's threads each hold one stream");

static int send_hello(warren_ctx_t *ctx, unsigned streams)
{
    wr_app_hello_t hello = {
        .version = WR_APP_PROTO_VERSION,
        .pid     = (uint32_t) getpid(),
        .streams = streams,
    };

    return wlib_send(ctx, WR_APP_HELLO, 0, &hello, sizeof(hello));
}

warren_ctx_t *warren_init_fd_threads(int fd, unsigned nthreads)
{
    warren_ctx_t *ctx;
    int err;

    if (fd < 0) {
        errno = EBADF;
        return NULL;
    }
    if (nthreads < 1 || nthreads > WARREN_MAX_THREADS) {
        close(fd);
        errno = EINVAL;
        return NULL;
    }
    if (channel_setup(fd) < 0)
        goto fail_fd;
    ctx = calloc(1, sizeof(*ctx));
    if (ctx == NULL)
        goto fail_fd;
    ctx->fd = fd;
    ctx->rbuf = malloc(WL_MSG_MAX);
    if (ctx->rbuf == NULL) {
        warren_done(ctx);
        errno = ENOMEM;
        return NULL;
    }
    for (size_t i = 0; i < WR_APP_MAX_STREAMS; i++)
        ctx->slot[i].ctx = ctx;
    if (send_hello(ctx, nthreads) < 0) {
        err = errno;
        warren_done(ctx);
        errno = err;
        return NULL;
    }
    return ctx;

fail_fd:
    err = errno;
    close(fd);
    errno = err;
    return NULL;
}

warren_ctx_t *warren_init_fd(int fd)
{
    return warren_init_fd_threads(fd, 1);
}

/* Parses the decimal descriptor number of WARREN_CHANNEL_FD. */
static int env_fd(void)
{
    const char *s = getenv(WARREN_ENV_CHANNEL_FD);
    char *end;
    long v;

    if (s == NULL) {
        errno = ENOENT;
        return -1;
    }
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < 0 || v > INT32_MAX) {
        errno = EINVAL;
        return -1;
    }
    return (int) v;
}

warren_ctx_t *warren_init_threads(unsigned nthreads)
{
    int fd = env_fd();

    if (fd < 0)
        return NULL;
    if (fcntl(fd, F_GETFD) < 0)
        return NULL;            /* EBADF: do not close what is not ours */
    return warren_init_fd_threads(fd, nthreads);
}

warren_ctx_t *warren_init(void)
{
    return warren_init_threads(1);
}

void warren_done(warren_ctx_t *ctx)
{
    if (ctx == NULL)
        return;
    for (size_t i = 0; i < WR_APP_MAX_STREAMS; i++)
        slot_free(&ctx->slot[i]);
    close(ctx->fd);
    free(ctx->rbuf);
    free(ctx);
}

/* --------------------------------------------------------------- accept */

/* The earliest request whose head arrived and that the app has not taken. */
static warren_req_t *next_pending(warren_ctx_t *ctx)
{
    warren_req_t *best = NULL;

    for (size_t i = 0; i < WR_APP_MAX_STREAMS; i++) {
        warren_req_t *r = &ctx->slot[i];

        if (r->in_use && r->pending && (best == NULL || r->seq < best->seq))
            best = r;
    }
    return best;
}

warren_req_t *warren_accept(warren_ctx_t *ctx)
{
    warren_req_t *req;

    for (;;) {
        if (ctx->fatal != 0) {
            errno = ctx->fatal;
            return NULL;
        }
        if (ctx->eof) {
            errno = 0;          /* the normal end: the worker exits */
            return NULL;
        }
        req = next_pending(ctx);
        if (req != NULL)
            break;
        if (wlib_pump(ctx, true) < 0 && ctx->fatal != 0) {
            errno = ctx->fatal;
            return NULL;
        }
    }
    req->pending = false;
    req->held = true;
    return req;
}
