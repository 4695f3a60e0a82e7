/*
 * libwarren: use from an event loop (warren.h, "event loops"). These calls
 * only take what is waiting on the channel (wlib_pump without blocking) or
 * tell, from a stream's state, how far the blocking calls would go without
 * waiting; the runtime then makes those calls itself.
 */
#include <errno.h>
#include <stdint.h>

#include "lib/internal.h"

int warren_fd(const warren_ctx_t *ctx)
{
    return ctx->fd;
}

int warren_poll(warren_ctx_t *ctx)
{
    int taken = 0, rc;

    /* Bounded without a cap of our own: the router never has more than
     * its streams' windows of body and one head per stream in flight. */
    wlib_lock(ctx);
    while ((rc = wlib_pump(ctx, false)) > 0)
        taken++;
    return wlib_unlock_ret(ctx, rc < 0 ? -1 : taken);
}

size_t warren_pending(const warren_ctx_t *ctx)
{
    if (ctx->fatal != 0 || ctx->eof)
        return 0;
    return ctx->npending;
}

/* The request cannot go on: aborted, or its channel unusable. */
static bool req_dead(const warren_req_t *req)
{
    return req->aborted || req->ctx->fatal != 0 || req->ctx->eof;
}

unsigned warren_req_events(const warren_req_t *req)
{
    unsigned ev = 0;

    if (req == NULL || !req->held)
        return WARREN_REQ_ABORTED;
    if (req_dead(req))
        return WARREN_REQ_ABORTED | WARREN_REQ_READABLE;
    if (req->ring_used > 0 || wlib_body_over(req))
        ev |= WARREN_REQ_READABLE;
    if (req->ring_used == 0 && wlib_body_over(req))
        ev |= WARREN_REQ_BODY_END;
    return ev;
}

size_t warren_write_room(const warren_req_t *req)
{
    if (req == NULL || !req->held || req_dead(req)
        || req->resp == WL_RESP_DONE)
        return 0;
    return req->out_credit > SIZE_MAX ? SIZE_MAX : (size_t) req->out_credit;
}
