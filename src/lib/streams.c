/*
 * libwarren: the stream table and the request objects. The wire table
 * (ctx->wire) holds the streams open on the wire, as proto.h counts them:
 * from REQ_HEAD until both directions are closed, at most
 * WR_APP_MAX_STREAMS. The request objects the app holds are counted apart:
 * a stream that closed on the wire (a client abort, say) frees its table
 * entry at once, even while the app has not finished its request yet.
 * Objects go back to a pool (ctx->spare) once neither the wire nor the app
 * needs them, with their buffers, for the next request.
 *
 * Callers hold the context's lock (when it has one).
 */
#include <errno.h>
#include <stdlib.h>

#include "lib/internal.h"

/* The stream with this id that is still open on the wire, or NULL. */
warren_req_t *wlib_find_open(warren_ctx_t *ctx, uint32_t stream)
{
    for (size_t i = 0; i < WR_APP_MAX_STREAMS; i++) {
        warren_req_t *r = ctx->wire[i];

        if (r != NULL && r->stream == stream)
            return r;
    }
    return NULL;
}

/* A request object from the pool, or a new one (NULL: out of memory). */
static warren_req_t *req_get(warren_ctx_t *ctx)
{
    warren_req_t *req = ctx->spare;

    if (req != NULL) {
        ctx->spare = req->spare_next;
        return req;
    }
    req = calloc(1, sizeof(*req));
    if (req == NULL)
        return NULL;
    req->ctx = ctx;
    req->wire = -1;
    req->all_next = ctx->all;
    ctx->all = req;
    return req;
}

static void req_put(warren_req_t *req)
{
    warren_ctx_t *ctx = req->ctx;

    req->in_use = false;
    req->spare_next = ctx->spare;
    ctx->spare = req;
}

/*
 * Opens stream on the wire: a table entry and a request object, reset for
 * a new request (the caller fills the head). NULL with the context failed
 * (EPROTO: the table is full; ENOMEM).
 */
warren_req_t *wlib_stream_new(warren_ctx_t *ctx, uint32_t stream)
{
    int ix = -1;
    warren_req_t *req;

    for (int i = 0; i < WR_APP_MAX_STREAMS && ix < 0; i++)
        if (ctx->wire[i] == NULL)
            ix = i;
    if (ix < 0) {
        wlib_fatal(ctx, EPROTO, "protocol: more than %d open streams",
                   WR_APP_MAX_STREAMS);
        return NULL;
    }
    req = req_get(ctx);
    if (req == NULL) {
        wlib_fatal(ctx, ENOMEM, "out of memory");
        return NULL;
    }
    req->stream = stream;
    req->seq = ctx->next_seq++;
    req->wire = ix;
    req->in_use = req->open = req->pending = true;
    ctx->npending++;
    req->held = req->in_closed = req->out_closed = req->aborted = false;
    req->finishing = req->upgrade = req->tunnel = false;
    req->ring_start = req->ring_used = 0;
    req->in_credit = WR_APP_WINDOW_INIT;
    req->unacked = 0;
    req->resp = WL_RESP_NONE;
    req->out_credit = WR_APP_WINDOW_INIT;
    ctx->wire[ix] = req;
    return req;
}

/* Undoes wlib_stream_new for a head that could not be taken. */
void wlib_stream_drop(warren_req_t *req)
{
    req->ctx->wire[req->wire] = NULL;
    req->wire = -1;
    req->open = false;
    req->pending = false;
    req->ctx->npending--;
    req_put(req);
}

/* The app takes a pending request (warren_accept). */
void wlib_take(warren_req_t *req)
{
    req->pending = false;
    req->held = true;
    req->ctx->npending--;
}

/* The earliest request whose head arrived and that the app has not taken
 * (pending requests are all open on the wire). */
warren_req_t *wlib_next_pending(warren_ctx_t *ctx)
{
    warren_req_t *best = NULL;

    if (ctx->npending == 0)
        return NULL;            /* the usual case while a thread waits */
    for (size_t i = 0; i < WR_APP_MAX_STREAMS; i++) {
        warren_req_t *r = ctx->wire[i];

        if (r != NULL && r->pending && (best == NULL || r->seq < best->seq))
            best = r;
    }
    return best;
}

/*
 * Takes the stream off the wire table once both directions are closed,
 * and the object back to the pool once the app does not hold it either.
 */
void wlib_maybe_close(warren_req_t *req)
{
    if (req->open && req->in_closed && req->out_closed) {
        req->open = false;
        if (req->pending) {     /* aborted before the app took it */
            req->pending = false;
            req->ctx->npending--;
        }
        req->ctx->wire[req->wire] = NULL;
        req->wire = -1;
    }
    if (req->in_use && !req->open && !req->held && !req->pending)
        req_put(req);
}

/* The app lets go of req (warren_finish / warren_abort). */
void wlib_release(warren_req_t *req)
{
    req->held = false;
    req->ring_used = 0;         /* unread body is dropped */
    wlib_maybe_close(req);
}

/* Frees every request object (warren_done). */
void wlib_streams_free(warren_ctx_t *ctx)
{
    warren_req_t *req = ctx->all, *next;

    for (; req != NULL; req = next) {
        next = req->all_next;
        wlib_head_free(req);
        wlib_body_free(req);
        wlib_resp_free(req);
        free(req);
    }
    ctx->all = ctx->spare = NULL;
}
