/*
 * libwarren: the context (one worker's channel), errors and warren_accept.
 * The stream table is streams.c's; what several threads share, threads.c's.
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
    vsnprintf(wlib_errbuf(ctx), WL_ERR_MAX, fmt, ap);
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
        /* The cause stays in ctx->err for every thread (warren_error). */
        va_start(ap, fmt);
        vsnprintf(ctx->err, sizeof(ctx->err), fmt, ap);
        va_end(ap);
        ctx->fatal = err;
        shutdown(ctx->fd, SHUT_RDWR);
        wlib_wake_all(ctx);
    }
    return wlib_usable(ctx);
}

/*
 * The calling thread's error text. With one thread it is the context's;
 * with several, each thread has its own (warren_error tells each thread
 * its own last failure), in thread-local storage.
 */
static _Thread_local struct {
    const warren_ctx_t *ctx;
    char                text[WL_ERR_MAX];
} thread_err;

char *wlib_errbuf(warren_ctx_t *ctx)
{
    if (!ctx->mt)
        return ctx->err;
    thread_err.ctx = ctx;
    return thread_err.text;
}

/* warren_error with several threads (lock held): the calling thread's last
 * failure on ctx, else the cause that made the context unusable, if any. */
const char *wlib_mt_error(warren_ctx_t *ctx)
{
    if (thread_err.ctx != ctx) {
        snprintf(thread_err.text, sizeof(thread_err.text), "%s", ctx->err);
        thread_err.ctx = ctx;
    }
    return thread_err.text;
}

/* 0 when the channel can carry messages, else -1 with errno. */
int wlib_usable(warren_ctx_t *ctx)
{
    if (ctx->fatal != 0) {
        if (ctx->mt)            /* this thread's text: the cause */
            snprintf(wlib_errbuf(ctx), WL_ERR_MAX, "%s", ctx->err);
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
    warren_ctx_t *c = (warren_ctx_t *) ctx;     /* its lock, not its state */
    const char *text;

    if (ctx == NULL)
        return "no context";
    if (!ctx->mt)
        return ctx->err;
    wlib_mt_lock(c);
    text = wlib_mt_error(c);
    wlib_mt_unlock(c);
    return text;
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

static int send_hello(warren_ctx_t *ctx, unsigned streams, unsigned tunnels)
{
    wr_app_hello_t hello = {
        .version = WR_APP_PROTO_VERSION,
        .pid     = (uint32_t) getpid(),
        .streams = streams,
        .tunnels = tunnels,
    };

    return wlib_send(ctx, WR_APP_HELLO, 0, &hello, sizeof(hello));
}

warren_ctx_t *warren_init_fd_tunnels(int fd, unsigned nthreads, unsigned tunnels)
{
    warren_ctx_t *ctx;
    int err;

    if (fd < 0) {
        errno = EBADF;
        return NULL;
    }
    if (nthreads < 1 || nthreads > WARREN_MAX_THREADS
        || tunnels > WARREN_MAX_THREADS - nthreads) {
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
    /* A tunnel's thread calls in beside the serving ones. */
    if (wlib_threads_init(ctx, nthreads + tunnels) < 0) {
        err = errno;
        close(fd);
        free(ctx);
        errno = err;
        return NULL;
    }
    ctx->rbuf = malloc(WL_MSG_MAX);
    if (ctx->rbuf == NULL) {
        warren_done(ctx);
        errno = ENOMEM;
        return NULL;
    }
    if (send_hello(ctx, nthreads, tunnels) < 0) {
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

warren_ctx_t *warren_init_fd_threads(int fd, unsigned nthreads)
{
    return warren_init_fd_tunnels(fd, nthreads, 0);
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

warren_ctx_t *warren_init_tunnels(unsigned nthreads, unsigned tunnels)
{
    int fd = env_fd();

    if (fd < 0)
        return NULL;
    if (fcntl(fd, F_GETFD) < 0)
        return NULL;            /* EBADF: do not close what is not ours */
    return warren_init_fd_tunnels(fd, nthreads, tunnels);
}

warren_ctx_t *warren_init_threads(unsigned nthreads)
{
    return warren_init_tunnels(nthreads, 0);
}

warren_ctx_t *warren_init(void)
{
    return warren_init_threads(1);
}

void warren_done(warren_ctx_t *ctx)
{
    if (ctx == NULL)
        return;
    wlib_streams_free(ctx);
    close(ctx->fd);
    wlib_threads_done(ctx);
    free(ctx->rbuf);
    free(ctx);
}

/* --------------------------------------------------------------- accept */

/* Single thread: a request is waiting; *arg remembers it (one scan). */
static bool pending_peek(warren_ctx_t *ctx, void *arg)
{
    warren_req_t **got = arg;

    *got = wlib_next_pending(ctx);
    return *got != NULL;
}

/* Several threads: this waiter was handed a request, or one is waiting. */
static bool pending_ready(warren_ctx_t *ctx, void *arg)
{
    warren_req_t **got = arg;

    return *got != NULL || wlib_next_pending(ctx) != NULL;
}

/* Takes the earliest pending request for a waiting thread (threads.c
 * hands requests out as they arrive, so each thread it wakes has one). */
static bool pending_claim(warren_ctx_t *ctx, void *arg)
{
    warren_req_t **got = arg;

    if (*got == NULL && (*got = wlib_next_pending(ctx)) != NULL)
        wlib_take(*got);
    return *got != NULL;
}

static warren_req_t *accept_locked(warren_ctx_t *ctx)
{
    warren_req_t *req = NULL;

    if (ctx->mt)
        wlib_wait(ctx, pending_ready, pending_claim, &req);
    else
        wlib_wait(ctx, pending_peek, NULL, &req);
    if (ctx->fatal != 0 || ctx->eof) {
        if (req != NULL && req->held)
            wlib_release(req);
        errno = ctx->eof && ctx->fatal == 0 ? 0 : ctx->fatal;
        return NULL;            /* errno 0: the normal end, the worker exits */
    }
    if (req == NULL)
        pending_claim(ctx, &req);
    else if (!req->held)        /* peeked (one thread): take it */
        wlib_take(req);
    return req;
}

warren_req_t *warren_accept(warren_ctx_t *ctx)
{
    warren_req_t *req;

    wlib_lock(ctx);
    req = accept_locked(ctx);
    wlib_unlock_ret(ctx, 0);            /* keeps errno */
    return req;
}
