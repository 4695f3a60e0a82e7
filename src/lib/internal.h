/*
 * libwarren internals, shared by the files of src/lib. The public API is
 * include/warren.h; the wire format is proto.h.
 */
#ifndef WR_LIB_INTERNAL_H
#define WR_LIB_INTERNAL_H

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
 * One stream: a slot of the context's table. Its buffers stay with the slot
 * from one request to the next, so steady state allocates nothing.
 */
struct warren_req {
    warren_ctx_t   *ctx;
    uint32_t        stream;
    uint64_t        seq;         /* arrival order, for warren_accept */
    bool            in_use;      /* slot taken (open, or held by the app) */
    bool            open;        /* a direction is still open on the wire */
    bool            pending;     /* head received, not yet accepted */
    bool            held;        /* the app holds it: accepted, not ended */
    bool            in_closed;   /* router sent REQ_END or ABORT */
    bool            out_closed;  /* we sent RESP_END or ABORT */
    bool            aborted;     /* the exchange failed before RESP_END */

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
    uint64_t        out_credit;  /* body bytes we may still send */
    unsigned char  *rh;          /* encoded RESP_HEAD payload */
    size_t          rh_len;
    size_t          rh_cap;
    uint32_t        rh_count;
};

struct warren_ctx {
    int             fd;
    bool            eof;         /* the router closed the channel */
    int             fatal;       /* errno that made the ctx unusable, or 0 */
    uint64_t        next_seq;
    unsigned char  *rbuf;        /* one received message (WL_MSG_MAX) */
    char            err[WL_ERR_MAX];
    warren_req_t    slot[WR_APP_MAX_STREAMS];
};

/* ctx.c */
WL_HIDDEN int  wlib_fail(warren_ctx_t *ctx, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
WL_HIDDEN int  wlib_fatal(warren_ctx_t *ctx, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
WL_HIDDEN int  wlib_usable(warren_ctx_t *ctx);
WL_HIDDEN int  wlib_req_usable(warren_req_t *req);
WL_HIDDEN void wlib_release(warren_req_t *req);
WL_HIDDEN void wlib_maybe_close(warren_req_t *req);

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
