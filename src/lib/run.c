/*
 * libwarren: warren_run, the accept-handle-finish loop most applications
 * need. With several threads, each of them may run it on the same context.
 */
#include <errno.h>

#include "lib/internal.h"

enum { WL_STATUS_FAILED = 500 };

/* A handler failed: answer 500 if nothing went out yet, else cut. */
static void fail_request(warren_req_t *req)
{
    bool answerable;

    wlib_lock(req->ctx);
    answerable = req->resp < WL_RESP_SENT && !req->aborted;
    wlib_unlock(req->ctx);
    if (answerable && warren_response_init(req, WL_STATUS_FAILED, 0) == 0) {
        warren_finish(req);
        return;
    }
    warren_abort(req);
}

int warren_run(warren_ctx_t *ctx, warren_handler_t handler, void *data)
{
    warren_req_t *req;

    while ((req = warren_accept(ctx)) != NULL) {
        if (handler(req, data) == 0)
            warren_finish(req);
        else
            fail_request(req);
    }
    return errno == 0 ? 0 : -1;
}
