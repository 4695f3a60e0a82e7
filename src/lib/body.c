/*
 * libwarren: the request body. Chunks that arrive before the app reads them
 * wait in a ring of one window per stream (allocated once per slot); the
 * router gets credit back only as the app consumes, so the router can never
 * have more than one window of body outstanding and the ring never
 * overflows: in_credit + ring_used + unacked == WR_APP_WINDOW_INIT.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/internal.h"

enum { WL_RING_SIZE = WR_APP_WINDOW_INIT };

int wlib_body_push(warren_req_t *req, const unsigned char *p, size_t len)
{
    size_t end, first;

    if (len == 0)
        return 0;
    if (req->ring == NULL) {
        req->ring = malloc(WL_RING_SIZE);
        if (req->ring == NULL)
            return wlib_fatal(req->ctx, ENOMEM, "out of memory");
    }
    /* The credit check before us makes this impossible; kept as a guard. */
    if (len > WL_RING_SIZE - req->ring_used)
        return wlib_fatal(req->ctx, EPROTO, "protocol: body overflows window");
    end = (req->ring_start + req->ring_used) % WL_RING_SIZE;
    first = WL_RING_SIZE - end < len ? WL_RING_SIZE - end : len;
    memcpy(req->ring + end, p, first);
    memcpy(req->ring, p + first, len - first);
    req->ring_used += len;
    return 0;
}

void wlib_body_free(warren_req_t *req)
{
    free(req->ring);
    req->ring = NULL;
    req->ring_used = req->ring_start = 0;
}

/* Copies up to n buffered bytes out of the ring. */
static size_t ring_take(warren_req_t *req, unsigned char *buf, size_t n)
{
    size_t k = n < req->ring_used ? n : req->ring_used;
    size_t first = WL_RING_SIZE - req->ring_start;

    if (first > k)
        first = k;
    memcpy(buf, req->ring + req->ring_start, first);
    memcpy(buf + first, req->ring, k - first);
    req->ring_start = (req->ring_start + k) % WL_RING_SIZE;
    req->ring_used -= k;
    return k;
}

/* Gives the router back the credit of what the app consumed, in steps. */
static int grant(warren_req_t *req)
{
    uint32_t n = req->unacked;

    if (wlib_body_over(req) || n < WL_GRANT_STEP)
        return 0;
    if (wlib_send_u32(req->ctx, WR_APP_WINDOW, req->stream, n) < 0)
        return -1;
    req->unacked = 0;
    req->in_credit += n;
    return 0;
}

/* warren_read may go on: body bytes wait, or none will come any more. */
static bool body_ready(warren_ctx_t *ctx, void *arg)
{
    warren_req_t *req = arg;

    return req->ring_used > 0 || wlib_body_over(req) || req->aborted;
}

static ssize_t read_locked(warren_req_t *req, void *buf, size_t n)
{
    size_t k;

    if (!req->held)
        return wlib_fail(req->ctx, EINVAL, "warren_read: request not held");
    for (;;) {
        if (wlib_req_usable(req) < 0)
            return -1;
        if (n == 0)
            return 0;
        if (req->ring_used > 0)
            break;
        if (wlib_body_over(req))
            return 0;           /* REQ_END: the body is complete */
        if (wlib_wait(req->ctx, body_ready, NULL, req) < 0)
            return -1;
    }
    k = ring_take(req, buf, n);
    req->unacked += (uint32_t) k;
    if (grant(req) < 0)
        return -1;
    return (ssize_t) k;
}

ssize_t warren_read(warren_req_t *req, void *buf, size_t n)
{
    ssize_t rc;

    wlib_lock(req->ctx);
    rc = read_locked(req, buf, n);
    wlib_unlock_ret(req->ctx, 0);       /* keeps errno */
    return rc;
}
