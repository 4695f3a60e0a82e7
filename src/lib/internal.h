/*
 * libwarren internals, shared by the files of src/lib. The public API is
 * include/warren.h; the wire format is proto.h.
 */
#ifndef WR_LIB_INTERNAL_H
#define WR_LIB_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "warren.h"
#include "lib/proto.h"

#define WL_HIDDEN __attribute__((visibility("hidden")))

enum {
    WL_ERR_MAX       = 256,
    WL_HDR_SIZE      = sizeof(wr_app_hdr_t),
    WL_MSG_MAX       = WL_HDR_SIZE + WR_APP_MAX_PAYLOAD,
    WL_U32           = sizeof(uint32_t),
    /* Credit goes back to the router in pieces of a quarter window: it
     * always has room to send ahead, and WINDOW messages stay few. */
    WL_GRANT_STEP    = WR_APP_WINDOW_INIT / 4,
    /* Messages taken without blocking before deciding a request body was
     * left unread (bounds the work of warren_finish). */
    WL_DRAIN_MAX     = 64,
    WL_STATUS_MIN    = 100,
    WL_STATUS_MAX    = 999,
    /* Response head: uint32 status, uint32 count, then per field two
     * uint32 lengths and the bytes. */
    WL_RESP_FIXED    = 2 * WL_U32,
    WL_FIELD_FIXED   = 2 * WL_U32,
    WL_FIELD_GUESS   = 48,      /* typical name + value bytes, for sizing */
    WL_PARTS_MAX     = 2,       /* payload pieces of one message (head, body) */
};

/* The fixed strings of REQ_HEAD, in wire order. */
typedef enum {
    WL_F_METHOD, WL_F_TARGET, WL_F_PATH, WL_F_QUERY, WL_F_VERSION,
    WL_F_REMOTE_ADDR, WL_F_REMOTE_PORT, WL_F_LOCAL_ADDR, WL_F_LOCAL_PORT,
    WL_F_SERVER_NAME, WL_F_SCHEME, WL_F_TARGET_NAME,
    WL_NFIELDS
} wlib_field_id_t;

typedef struct {
    const char *p;
    size_t      n;
} wlib_str_t;

typedef struct {
    wlib_str_t name;
    wlib_str_t value;
} wlib_hfield_t;

typedef enum {
    WL_RESP_NONE,       /* nothing yet */
    WL_RESP_INIT,       /* head being built */
    WL_RESP_SENT,       /* head sent, body may follow */
    WL_RESP_DONE,       /* RESP_END sent */
} wlib_resp_state_t;

/*
 * One request (one stream of the channel). Request objects are pooled per
 * context: one is taken when a REQ_HEAD arrives and goes back to the pool
 * once the stream is closed on the wire and the app let go of it. Its
 * buffers stay with it from one request to the next, so steady state
 * allocates nothing.
 *
 * Wire and app are counted apart (include/warren.h, "Streams"): the
 * context's wire table holds the streams open on the wire, at most
 * WR_APP_MAX_STREAMS as proto.h allows; a request whose stream closed (the
 * router aborted it, or both sides ended) leaves the table at once, even
 * while the app still holds the object. So requests held after a client
 * abort never use up the router's streams.
 */
struct warren_req {
    warren_ctx_t   *ctx;
    warren_req_t   *all_next;    /* every request object of ctx */
    warren_req_t   *spare_next;  /* the pool of free ones */
    uint32_t        stream;
    uint64_t        seq;         /* arrival order, for warren_accept */
    int             wire;        /* index in ctx->wire while open, else -1 */
    bool            in_use;      /* taken: open, pending or held */
    bool            open;        /* a direction is still open on the wire */
    bool            pending;     /* head received, not yet accepted */
    bool            held;        /* the app holds it: accepted, not ended */
    bool            in_closed;   /* router sent REQ_END or ABORT */
    bool            out_closed;  /* we sent RESP_END or ABORT */
    bool            aborted;     /* the exchange failed before RESP_END */
    bool            finishing;   /* warren_finish: later body is dropped */
    bool            upgrade;     /* WR_APP_F_UPGRADE: the client may switch */
    bool            tunnel;      /* ... and our 101 went: the body is a tunnel */
    uint32_t        ws_read_timeout;        /* settings.http.websocket, */
    uint32_t        ws_keepalive_interval;  /* sent with an upgrade's head */
    uint32_t        ws_max_frame_size;

    /* Request head: the strings, each NUL-terminated, in one buffer. */
    char           *strs;
    size_t          strs_cap;
    wlib_str_t        field[WL_NFIELDS];
    wlib_hfield_t    *hdrs;
    size_t          nhdrs;
    size_t          hdrs_cap;

    /* Request body: a ring of one window; the router can never send more
     * than it holds (credit + buffered + not yet granted == the window). */
    unsigned char  *ring;
    size_t          ring_start;
    size_t          ring_used;
    uint32_t        in_credit;   /* body bytes the router may still send */
    uint32_t        unacked;     /* consumed, not yet granted back */

    /* Response. */
    wlib_resp_state_t resp;
    int             status;      /* of the head being built or sent */
    uint64_t        out_credit;  /* body bytes we may still send */
    unsigned char  *rh;          /* encoded RESP_HEAD payload */
    size_t          rh_len;
    size_t          rh_cap;
    uint32_t        rh_count;
};

/* A thread blocked in wlib_wait (threads.c), nthreads > 1 only. */
typedef struct wlib_waiter wlib_waiter_t;

struct warren_ctx {
    int             fd;
    bool            eof;         /* the router closed the channel */
    int             fatal;       /* errno that made the ctx unusable, or 0 */
    uint64_t        next_seq;
    unsigned char  *rbuf;        /* one received message (WL_MSG_MAX) */
    char            err[WL_ERR_MAX];
    warren_req_t   *wire[WR_APP_MAX_STREAMS];  /* streams open on the wire */
    warren_req_t   *all;         /* every request object (streams.c) */
    warren_req_t   *spare;       /* the free ones */
    unsigned        npending;    /* requests arrived, not accepted yet */

    /*
     * Threads (threads.c). With nthreads 1 (mt false) none of this is used:
     * no lock is taken and the calling thread reads the channel itself.
     * With more, lock guards everything above (and every request), one
     * thread at a time receives (reading), and the others wait on their
     * own condition variable in waiters until what they need arrives.
     */
    unsigned        nthreads;
    bool            mt;
    bool            reading;     /* a thread is receiving, lock released */
    pthread_mutex_t lock;
    wlib_waiter_t  *waiters;
};

/* The app sees the end of the body: the router's direction closed, or an
 * upgrade request not switched (yet): its body is empty unless a 101 goes
 * out (proto.h, WR_APP_F_UPGRADE), and the router ends it otherwise. */
static inline bool wlib_body_over(const warren_req_t *req)
{
    return req->in_closed || (req->upgrade && !req->tunnel);
}

/* What a blocked call waits for (under the lock when mt). */
typedef bool (*wlib_ready_t)(warren_ctx_t *ctx, void *arg);
/* For accept: takes a pending request for the waiter into *arg (a
 * warren_req_t **); true when it did. */
typedef bool (*wlib_claim_t)(warren_ctx_t *ctx, void *arg);

/* ctx.c */
WL_HIDDEN int  wlib_fail(warren_ctx_t *ctx, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
WL_HIDDEN int  wlib_fatal(warren_ctx_t *ctx, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
WL_HIDDEN int  wlib_usable(warren_ctx_t *ctx);
WL_HIDDEN int  wlib_req_usable(warren_req_t *req);
WL_HIDDEN char *wlib_errbuf(warren_ctx_t *ctx);

/* streams.c */
WL_HIDDEN warren_req_t *wlib_find_open(warren_ctx_t *ctx, uint32_t stream);
WL_HIDDEN warren_req_t *wlib_stream_new(warren_ctx_t *ctx, uint32_t stream);
WL_HIDDEN void wlib_stream_drop(warren_req_t *req);
WL_HIDDEN warren_req_t *wlib_next_pending(warren_ctx_t *ctx);
WL_HIDDEN void wlib_take(warren_req_t *req);
WL_HIDDEN void wlib_release(warren_req_t *req);
WL_HIDDEN void wlib_maybe_close(warren_req_t *req);
WL_HIDDEN void wlib_streams_free(warren_ctx_t *ctx);

/* threads.c */
WL_HIDDEN int  wlib_threads_init(warren_ctx_t *ctx, unsigned nthreads);
WL_HIDDEN void wlib_threads_done(warren_ctx_t *ctx);
WL_HIDDEN void wlib_mt_lock(warren_ctx_t *ctx);
WL_HIDDEN void wlib_mt_unlock(warren_ctx_t *ctx);
WL_HIDDEN int  wlib_wait(warren_ctx_t *ctx, wlib_ready_t ready,
                         wlib_claim_t claim, void *arg);
WL_HIDDEN void wlib_poll(warren_ctx_t *ctx, wlib_ready_t ready, void *arg,
                         int max);
WL_HIDDEN void wlib_wake_all(warren_ctx_t *ctx);
WL_HIDDEN const char *wlib_mt_error(warren_ctx_t *ctx);

/*
 * Every public call that touches a context's state runs between these.
 * With one thread they cost a test of a flag: no lock is taken.
 */
static inline void wlib_lock(warren_ctx_t *ctx)
{
    if (ctx->mt)
        wlib_mt_lock(ctx);
}

static inline void wlib_unlock(warren_ctx_t *ctx)
{
    if (ctx->mt)
        wlib_mt_unlock(ctx);
}

/* Unlocks and returns rc, errno as the call under the lock left it. */
static inline int wlib_unlock_ret(warren_ctx_t *ctx, int rc)
{
    if (ctx->mt) {
        int err = errno;

        wlib_mt_unlock(ctx);
        errno = err;
    }
    return rc;
}

/* chan.c */
struct iovec;
WL_HIDDEN int  wlib_sendv(warren_ctx_t *ctx, uint16_t type, uint16_t flags,
                          uint32_t stream, const struct iovec *parts,
                          size_t nparts);
WL_HIDDEN int  wlib_send(warren_ctx_t *ctx, uint16_t type, uint32_t stream,
                         const void *payload, size_t len);
WL_HIDDEN int  wlib_send_u32(warren_ctx_t *ctx, uint16_t type,
                             uint32_t stream, uint32_t value);
WL_HIDDEN int  wlib_pump(warren_ctx_t *ctx, bool block);
WL_HIDDEN ssize_t wlib_recv(warren_ctx_t *ctx, bool block, int *flags);
WL_HIDDEN int  wlib_handle(warren_ctx_t *ctx, ssize_t n, int err, int flags,
                           bool block);

/* head.c */
WL_HIDDEN int  wlib_head_parse(warren_req_t *req, const unsigned char *p,
                               size_t len);
WL_HIDDEN void wlib_head_free(warren_req_t *req);

/* body.c */
WL_HIDDEN int  wlib_body_push(warren_req_t *req, const unsigned char *p,
                              size_t len);
WL_HIDDEN void wlib_body_free(warren_req_t *req);

/* resp.c */
WL_HIDDEN int  wlib_send_abort(warren_req_t *req);
WL_HIDDEN void wlib_resp_free(warren_req_t *req);

#endif
