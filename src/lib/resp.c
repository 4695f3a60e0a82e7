/*
 * libwarren: the response. The head is encoded straight into its RESP_HEAD
 * payload as fields are added (so "does it fit one message" is known at
 * once); the body goes out in RESP_BODY chunks no larger than the credit
 * the router granted.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "lib/internal.h"

enum {
    WL_STATUS_OK    = 200,
    WL_STATUS_ERROR = 500,
    WL_COUNT_OFF    = WL_U32,   /* where the field count sits in RESP_HEAD */
};

/* ------------------------------------------------------- field checking */

/* tchar of RFC 9110 5.6.2. */
static bool is_tchar(unsigned char ch)
{
    if ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z')
        || (ch >= 'A' && ch <= 'Z'))
        return true;
    return ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

static bool valid_name(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_tchar((unsigned char) s[i]))
            return false;
    return true;
}

/* A value must not end the line early: no CR, LF or NUL (the router would
 * otherwise be made to split the response). */
static bool valid_value(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0')
            return false;
    return true;
}

/* ---------------------------------------------------------- head buffer */

/* Grows the head buffer to need bytes (callers keep need within one
 * message, so the cap below never cuts under need). */
static int rh_reserve(warren_req_t *req, size_t need)
{
    size_t cap = req->rh_cap ? req->rh_cap : WL_RESP_FIXED;
    unsigned char *p;

    if (need <= req->rh_cap)
        return 0;
    while (cap < need)
        cap *= 2;
    if (cap > WR_APP_MAX_PAYLOAD)
        cap = WR_APP_MAX_PAYLOAD;
    p = realloc(req->rh, cap);
    if (p == NULL)
        return wlib_fail(req->ctx, ENOMEM, "out of memory");
    req->rh = p;
    req->rh_cap = cap;
    return 0;
}

static void rh_put(warren_req_t *req, const void *p, size_t n)
{
    memcpy(req->rh + req->rh_len, p, n);
    req->rh_len += n;
}

static void rh_put_str(warren_req_t *req, const char *s, size_t n)
{
    uint32_t n32 = (uint32_t) n;

    rh_put(req, &n32, sizeof(n32));
    rh_put(req, s, n);
}

void wlib_resp_free(warren_req_t *req)
{
    free(req->rh);
    req->rh = NULL;
    req->rh_len = req->rh_cap = 0;
}

/* -------------------------------------------------------------- the head */

/* The request is held and its response head not sent yet. */
static int head_open(warren_req_t *req, const char *call)
{
    if (!req->held)
        return wlib_fail(req->ctx, EINVAL, "%s: request not held", call);
    if (wlib_req_usable(req) < 0)
        return -1;
    if (req->resp >= WL_RESP_SENT)
        return wlib_fail(req->ctx, EINVAL, "%s: head already sent", call);
    return 0;
}

static int response_init(warren_req_t *req, int status, size_t nheaders_hint)
{
    uint32_t st = (uint32_t) status, zero = 0;
    size_t hint, want;

    if (head_open(req, "warren_response_init") < 0)
        return -1;
    if (status < WL_STATUS_MIN || status > WL_STATUS_MAX)
        return wlib_fail(req->ctx, EINVAL, "bad status %d", status);
    /* A response is final: the one 1xx allowed is an upgrade's 101. */
    if (status < WL_STATUS_OK && (status != WR_APP_STATUS_SWITCHING || !req->upgrade))
        return wlib_fail(req->ctx, EINVAL, "bad status %d: %s", status,
                         status == WR_APP_STATUS_SWITCHING
                         ? "the client did not ask to upgrade"
                         : "interim responses are the router's");
    req->status = status;
    /* A head never exceeds one message: reserve no more than that. */
    hint = nheaders_hint < WR_APP_MAX_PAYLOAD / WL_FIELD_GUESS
           ? nheaders_hint : WR_APP_MAX_PAYLOAD / WL_FIELD_GUESS;
    want = WL_RESP_FIXED + hint * (WL_FIELD_FIXED + WL_FIELD_GUESS);
    if (rh_reserve(req, want < WR_APP_MAX_PAYLOAD
                        ? want : WR_APP_MAX_PAYLOAD) < 0)
        return -1;
    req->rh_len = 0;
    req->rh_count = 0;
    rh_put(req, &st, sizeof(st));
    rh_put(req, &zero, sizeof(zero));   /* count, set when sent */
    req->resp = WL_RESP_INIT;
    return 0;
}

static int add_header(warren_req_t *req, const char *name, size_t nlen,
                      const char *value, size_t vlen)
{
    size_t need;

    if (head_open(req, "warren_response_add_header") < 0)
        return -1;
    if (req->resp != WL_RESP_INIT)
        return wlib_fail(req->ctx, EINVAL,
                         "warren_response_add_header before "
                         "warren_response_init");
    if (!valid_name(name, nlen))
        return wlib_fail(req->ctx, EINVAL, "bad response field name");
    if (!valid_value(value, vlen))
        return wlib_fail(req->ctx, EINVAL,
                         "response field value with CR, LF or NUL");
    if (nlen > WR_APP_MAX_PAYLOAD || vlen > WR_APP_MAX_PAYLOAD
        || req->rh_len + WL_FIELD_FIXED + nlen + vlen > WR_APP_MAX_PAYLOAD)
        return wlib_fail(req->ctx, EMSGSIZE,
                         "response head over %d bytes", WR_APP_MAX_PAYLOAD);
    need = req->rh_len + WL_FIELD_FIXED + nlen + vlen;
    if (rh_reserve(req, need) < 0)
        return -1;
    rh_put_str(req, name, nlen);
    rh_put_str(req, value, vlen);
    req->rh_count++;
    return 0;
}

/* Completes the pending head (status 200 if none was set) for sending. */
static int head_ready(warren_req_t *req)
{
    if (req->resp == WL_RESP_NONE
        && response_init(req, WL_STATUS_OK, 0) < 0)
        return -1;
    memcpy(req->rh + WL_COUNT_OFF, &req->rh_count, sizeof(req->rh_count));
    return 0;
}

/* The head went out: with a 101 to an upgrade request, the body is the
 * client's bytes from now on (proto.h, WR_APP_F_UPGRADE). */
static void head_sent(warren_req_t *req)
{
    req->resp = WL_RESP_SENT;
    req->tunnel = req->upgrade && req->status == WR_APP_STATUS_SWITCHING;
}

static int send_head(warren_req_t *req)
{
    if (head_open(req, "warren_response_send_head") < 0 || head_ready(req) < 0)
        return -1;
    if (wlib_send(req->ctx, WR_APP_RESP_HEAD, req->stream, req->rh,
                  req->rh_len) < 0)
        return -1;
    head_sent(req);
    return 0;
}

/* -------------------------------------------------------------- the body */

static bool credit_ready(warren_ctx_t *ctx, void *arg)
{
    warren_req_t *req = arg;

    return req->out_credit > 0 || req->aborted;
}

/* Blocks until the router grants credit; -1 when the request ends first. */
static int wait_credit(warren_req_t *req)
{
    if (req->out_credit > 0)
        return 0;
    if (wlib_wait(req->ctx, credit_ready, NULL, req) < 0)
        return -1;
    return wlib_req_usable(req);
}

/*
 * Sends n body bytes in as few messages as the window and the message size
 * allow: a head not sent yet travels with the first bytes (WR_APP_F_BODY),
 * and with last the final message also ends the response (WR_APP_F_END),
 * so a small response is one datagram.
 */
static int send_body(warren_req_t *req, const unsigned char *p, size_t n,
                     bool last)
{
    for (;;) {
        bool head = req->resp < WL_RESP_SENT;
        size_t room, k;
        struct iovec part[WL_PARTS_MAX];
        uint16_t type = head ? WR_APP_RESP_HEAD : WR_APP_RESP_BODY;
        uint16_t flags = 0;

        if (head && head_ready(req) < 0)
            return -1;
        room = WR_APP_MAX_PAYLOAD - (head ? req->rh_len : 0);
        k = n < room ? n : room;
        part[0] = (struct iovec) { .iov_base = req->rh,
                                   .iov_len = head ? req->rh_len : 0 };
        if (k > 0 && wait_credit(req) < 0)
            return -1;
        if (k > req->out_credit)
            k = (size_t) req->out_credit;
        part[1] = (struct iovec) { .iov_base = (void *) p, .iov_len = k };
        if (head && k > 0)
            flags |= WR_APP_F_BODY;
        if (last && k == n)
            flags |= WR_APP_F_END;
        if (!head && k == 0)
            type = WR_APP_RESP_END;     /* last, nothing left to carry */
        if (wlib_sendv(req->ctx, type, type == WR_APP_RESP_END ? 0 : flags,
                       req->stream, part, WL_PARTS_MAX) < 0)
            return -1;
        if (head)
            head_sent(req);
        req->out_credit -= k;
        p += k;
        n -= k;
        if (flags & WR_APP_F_END) {
            req->out_closed = true;
            req->resp = WL_RESP_DONE;
            return 0;
        }
        if (n == 0)
            return 0;
    }
}

/* The request is held, usable, and its response not ended yet. */
static int body_open(warren_req_t *req, const char *call)
{
    if (!req->held)
        return wlib_fail(req->ctx, EINVAL, "%s: request not held", call);
    if (wlib_req_usable(req) < 0)
        return -1;
    if (req->resp == WL_RESP_DONE)
        return wlib_fail(req->ctx, EINVAL, "%s: response already ended",
                         call);
    return 0;
}

static int write_body(warren_req_t *req, const void *buf, size_t n)
{
    if (body_open(req, "warren_write") < 0)
        return -1;
    if (n == 0)
        return req->resp >= WL_RESP_SENT ? 0 : send_head(req);
    return send_body(req, buf, n, false);
}

static int write_end(warren_req_t *req, const void *buf, size_t n)
{
    if (body_open(req, "warren_write_end") < 0)
        return -1;
    return send_body(req, buf, n, true);
}

/* ------------------------------------------------------------------ end */

/* Closes our direction with ABORT (the stream stays until the router's
 * direction closes too). */
int wlib_send_abort(warren_req_t *req)
{
    req->out_closed = true;
    return wlib_send(req->ctx, WR_APP_ABORT, req->stream, NULL, 0);
}

static bool in_closed(warren_ctx_t *ctx, void *arg)
{
    warren_req_t *req = arg;

    return req->in_closed;
}

/*
 * After RESP_END: if the router may still be sending a body nobody will
 * read, tell it to stop (proto.h: ABORT after our END). Messages already
 * waiting are taken first, so a REQ_END that is there saves the ABORT.
 * req stays held meanwhile (the stream may close on the wire, the object
 * stays ours until wlib_release).
 */
static int stop_body(warren_req_t *req)
{
    warren_ctx_t *ctx = req->ctx;

    if (req->in_closed)
        return 0;               /* the usual case: the whole body came */
    req->finishing = true;      /* body arriving from now on is dropped */
    req->ring_used = 0;
    wlib_poll(ctx, in_closed, req, WL_DRAIN_MAX);
    if (req->in_closed || wlib_usable(ctx) < 0)
        return 0;
    return wlib_send(ctx, WR_APP_ABORT, req->stream, NULL, 0);
}

static int finish(warren_req_t *req)
{
    /* The response is whole at the router already: what happens to the
     * channel or the stream since does not undo it. */
    if (req->resp == WL_RESP_DONE && !req->aborted)
        return wlib_usable(req->ctx) < 0 ? 0 : stop_body(req);
    if (wlib_req_usable(req) < 0)
        return -1;
    if (req->resp != WL_RESP_DONE && send_body(req, NULL, 0, true) < 0)
        return -1;
    return stop_body(req);
}

int warren_finish(warren_req_t *req)
{
    warren_ctx_t *ctx;
    int rc, err;

    if (req == NULL) {
        errno = EINVAL;
        return -1;
    }
    ctx = req->ctx;
    wlib_lock(ctx);
    if (!req->held) {
        wlib_unlock(ctx);
        errno = EINVAL;
        return -1;
    }
    rc = finish(req);
    err = errno;
    wlib_release(req);
    errno = err;                /* wlib_release never fails */
    return wlib_unlock_ret(ctx, rc);
}

void warren_abort(warren_req_t *req)
{
    warren_ctx_t *ctx;
    int err = errno;

    if (req == NULL)
        return;
    ctx = req->ctx;
    wlib_lock(ctx);
    if (req->held) {
        req->aborted = true;
        if (!req->out_closed && wlib_usable(ctx) == 0)
            wlib_send_abort(req);
        req->out_closed = true;
        wlib_release(req);
    }
    wlib_unlock(ctx);
    errno = err;
}

/* ---------------------------------------------------- the public calls */

/* Each runs its part under the context's lock (no lock with one thread). */

int warren_response_init(warren_req_t *req, int status, size_t nheaders_hint)
{
    wlib_lock(req->ctx);
    return wlib_unlock_ret(req->ctx, response_init(req, status, nheaders_hint));
}

int warren_response_add_header(warren_req_t *req, const char *name,
                               size_t nlen, const char *value, size_t vlen)
{
    wlib_lock(req->ctx);
    return wlib_unlock_ret(req->ctx, add_header(req, name, nlen, value, vlen));
}

int warren_response_send_head(warren_req_t *req)
{
    wlib_lock(req->ctx);
    return wlib_unlock_ret(req->ctx, send_head(req));
}

int warren_write(warren_req_t *req, const void *buf, size_t n)
{
    wlib_lock(req->ctx);
    return wlib_unlock_ret(req->ctx, write_body(req, buf, n));
}

int warren_write_end(warren_req_t *req, const void *buf, size_t n)
{
    wlib_lock(req->ctx);
    return wlib_unlock_ret(req->ctx, write_end(req, buf, n));
}
