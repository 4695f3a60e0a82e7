/*
 * libwarren with several threads on one context (warren_init_threads with
 * nthreads > 1): each thread accepts requests and serves them, while the
 * channel, one socket, is read by one thread at a time.
 *
 * The context's lock guards all of its state and its requests'; public
 * calls hold it, and also while sending (one message is one sendmsg, and
 * a stream's messages must leave in the order its state changed: an ABORT
 * we answer the router with must not pass a RESP_BODY being sent).
 *
 * Receiving: a thread that must wait for something from the router (a
 * request, body bytes, credit) becomes the reader if nobody is: it
 * receives one message with the lock released, then dispatches it under
 * the lock to the stream it belongs to. Every other waiting thread sleeps
 * on a condition variable of its own, listed in ctx->waiters with what it
 * waits for; after each message the reader wakes those whose wait is over
 * (a new request is handed to one accept waiter only, so idle threads do
 * not all wake for it). A reader whose own wait is over hands the reading
 * to a waiter that still needs a message. So one thread is blocked in
 * recvmsg whenever any thread needs the channel, and none otherwise.
 *
 * With nthreads 1 none of this runs: no lock, the caller reads itself.
 */
#include <errno.h>
#include <string.h>

#include "lib/internal.h"

struct wlib_waiter {
    wlib_waiter_t  *next;
    pthread_cond_t  cond;
    wlib_ready_t    ready;
    wlib_claim_t    claim;       /* accept: takes a request on arrival */
    void           *arg;
};

int wlib_threads_init(warren_ctx_t *ctx, unsigned nthreads)
{
    int rc;

    ctx->nthreads = nthreads;
    ctx->mt = nthreads > 1;
    if (!ctx->mt)
        return 0;
    rc = pthread_mutex_init(&ctx->lock, NULL);
    if (rc != 0) {
        ctx->mt = false;
        errno = rc;
        return -1;
    }
    return 0;
}

void wlib_threads_done(warren_ctx_t *ctx)
{
    if (ctx->mt)
        pthread_mutex_destroy(&ctx->lock);
}

/* A default mutex fails only on misuse (a bug of ours): nothing to
 * recover, so the results are not looked at. */
void wlib_mt_lock(warren_ctx_t *ctx)
{
    pthread_mutex_lock(&ctx->lock);
}

void wlib_mt_unlock(warren_ctx_t *ctx)
{
    pthread_mutex_unlock(&ctx->lock);
}

static bool ended(const warren_ctx_t *ctx)
{
    return ctx->fatal != 0 || ctx->eof;
}

/* The channel ended or failed: every waiter wakes to see it. */
void wlib_wake_all(warren_ctx_t *ctx)
{
    if (!ctx->mt)
        return;
    for (wlib_waiter_t *w = ctx->waiters; w != NULL; w = w->next)
        pthread_cond_signal(&w->cond);
}

/* After a message: wakes the waiters whose wait it ended. */
static void wake_ready(warren_ctx_t *ctx)
{
    if (ended(ctx)) {
        wlib_wake_all(ctx);
        return;
    }
    for (wlib_waiter_t *w = ctx->waiters; w != NULL; w = w->next) {
        bool done = w->claim != NULL ? w->claim(ctx, w->arg)
                                     : w->ready(ctx, w->arg);

        if (done)
            pthread_cond_signal(&w->cond);
    }
}

/* Nobody is reading: wakes one waiter that still needs a message, to read. */
static void pass_reading(warren_ctx_t *ctx)
{
    if (ctx->reading)
        return;
    for (wlib_waiter_t *w = ctx->waiters; w != NULL; w = w->next) {
        if (!w->ready(ctx, w->arg)) {
            pthread_cond_signal(&w->cond);
            return;
        }
    }
}

/* As the reader: receives one message with the lock released, handles it
 * under the lock and wakes whom it concerns. wlib_handle's results. */
static int read_one(warren_ctx_t *ctx, bool block)
{
    ssize_t n;
    int flags, err, rc;

    ctx->reading = true;
    wlib_mt_unlock(ctx);
    n = wlib_recv(ctx, block, &flags);
    err = errno;
    wlib_mt_lock(ctx);
    ctx->reading = false;
    if (ended(ctx))             /* failed meanwhile (another thread) */
        rc = wlib_usable(ctx);
    else
        rc = wlib_handle(ctx, n, err, flags, block);
    if (rc != 0)
        wake_ready(ctx);
    return rc;
}

static void waiter_unlink(warren_ctx_t *ctx, wlib_waiter_t *me)
{
    for (wlib_waiter_t **p = &ctx->waiters; *p != NULL; p = &(*p)->next) {
        if (*p == me) {
            *p = me->next;
            return;
        }
    }
}

/* wlib_wait with several threads. */
static int mt_wait(warren_ctx_t *ctx, wlib_ready_t ready, wlib_claim_t claim,
                   void *arg)
{
    wlib_waiter_t me = { .ready = ready, .claim = claim, .arg = arg };
    int rc;

    pthread_cond_init(&me.cond, NULL);
    for (;;) {
        if (ready(ctx, arg)) {
            rc = 0;
            break;
        }
        if (ended(ctx)) {
            rc = wlib_usable(ctx);
            break;
        }
        if (!ctx->reading) {
            read_one(ctx, true);
            continue;
        }
        /* Last in the list: the earliest waiters get requests first. */
        me.next = NULL;
        {
            wlib_waiter_t **p = &ctx->waiters;

            while (*p != NULL)
                p = &(*p)->next;
            *p = &me;
        }
        pthread_cond_wait(&me.cond, &ctx->lock);
        waiter_unlink(ctx, &me);
    }
    pass_reading(ctx);
    pthread_cond_destroy(&me.cond);
    if (rc < 0)
        errno = ctx->fatal != 0 ? ctx->fatal : ECONNRESET;
    return rc;
}

/*
 * Blocks until ready(ctx, arg) holds, receiving messages meanwhile (or
 * letting the thread that receives do it). Returns 0, or -1 with errno
 * when the channel ended or failed first. Called with the lock held (mt);
 * claim, when not NULL, lets the reader take what arrives for this waiter.
 */
int wlib_wait(warren_ctx_t *ctx, wlib_ready_t ready, wlib_claim_t claim,
              void *arg)
{
    if (ctx->mt)
        return mt_wait(ctx, ready, claim, arg);
    while (!ready(ctx, arg))
        if (wlib_pump(ctx, true) < 0)
            return -1;
    return 0;
}

/*
 * Takes up to max messages already waiting, without blocking, until
 * ready(ctx, arg) holds. With several threads it does nothing while
 * another thread is reading: that one will take them.
 */
void wlib_poll(warren_ctx_t *ctx, wlib_ready_t ready, void *arg, int max)
{
    for (int i = 0; i < max && !ready(ctx, arg); i++) {
        if (!ctx->mt) {
            if (wlib_pump(ctx, false) <= 0)
                return;
            continue;
        }
        if (ctx->reading || ended(ctx) || read_one(ctx, false) <= 0)
            break;
    }
    if (ctx->mt)
        pass_reading(ctx);  /* waiters that found us reading */
}
