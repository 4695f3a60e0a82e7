/*
 * libwarren with several threads on one context (warren_init_fd_threads):
 * the test thread plays the router on one end of a SOCK_SEQPACKET
 * socketpair and drives several streams at once (bodies interleaved, each
 * within its own window, and the worker's WINDOWs honoured per stream);
 * app threads accept and serve requests concurrently on the other end.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "warren.h"
#include "lib/proto.h"
#include "lib_wire.h"

enum {
    W           = WR_APP_WINDOW_INIT,
    MAXP        = WR_APP_MAX_PAYLOAD,
    HDR         = sizeof(wr_app_hdr_t),
    WAIT_MS     = 10000,    /* a message that must come */
    GUARD_S     = 60,       /* a hung test fails instead of blocking make */
    TEXT        = 256,
    PATH_MAX_T  = 32,
    MAX_STREAMS = WR_APP_MAX_STREAMS + 16,  /* streams one test drives (ids 1..) */
    OUTQ        = 64,       /* router messages waiting for room */
    CHUNK       = MAXP - 1000,  /* odd size: chunks straddle the ring */
    RESP_CHUNK  = 10000,    /* what the app writes at a time */
};

/* Byte i of the body seeded by seed: catches loss, reordering, mixing. */
static unsigned char pat(unsigned seed, size_t i)
{
    return (unsigned char) (i * 7 + i / 251 + seed * 13);
}

/* ------------------------------------------------------------ fake router */

/* The router's view of one stream. */
typedef struct {
    uint32_t       id;
    char           path[PATH_MAX_T];
    size_t         body_len;        /* request body to send */
    bool           abort;           /* send ABORT once abort_at bytes went */
    size_t         abort_at;
    bool           hold;            /* send no body (the test ends it) */
    size_t         sent;
    uint64_t       credit;          /* request body we may still send */
    uint64_t       granted;         /* WINDOWs the worker sent us */
    bool           in_open;         /* our direction */
    bool           out_open;        /* the worker's */
    uint32_t       status;
    unsigned char *resp;            /* response body */
    size_t         rlen;
    uint16_t       last;            /* RESP_END or ABORT */
} rstream_t;

typedef struct {
    int        fd;
    rstream_t  s[MAX_STREAMS];
    int        n;
    /* Messages that did not fit the socket yet (sent without blocking:
     * a router that blocks in send while the worker blocks in send on
     * its side would deadlock, so the real one never does either). */
    struct { unsigned char b[HDR + MAXP]; size_t n; } q[OUTQ];
    int        qn;
} router_t;

static void qpush(router_t *r, uint16_t type, uint16_t flags, uint32_t stream,
                  const void *p, size_t len)
{
    wr_app_hdr_t h = { .type = type, .flags = flags, .stream = stream,
                       .len = (uint32_t) len };

    assert_true(r->qn < OUTQ);
    memcpy(r->q[r->qn].b, &h, HDR);
    if (len > 0)
        memcpy(r->q[r->qn].b + HDR, p, len);
    r->q[r->qn].n = HDR + len;
    r->qn++;
}

/* Sends what fits; true when the queue is empty. */
static bool qflush(router_t *r)
{
    while (r->qn > 0) {
        ssize_t k = send(r->fd, r->q[0].b, r->q[0].n,
                         MSG_NOSIGNAL | MSG_DONTWAIT);

        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return false;
        assert_int_equal(k, (ssize_t) r->q[0].n);
        r->qn--;
        memmove(&r->q[0], &r->q[1], (size_t) r->qn * sizeof(r->q[0]));
    }
    return true;
}

/* Opens stream id with a request for path and body_len body bytes. */
static rstream_t *ropen(router_t *r, uint32_t id, const char *path,
                        size_t body_len)
{
    rstream_t *s = &r->s[r->n++];
    head_t h;

    assert_true(r->n <= MAX_STREAMS);
    memset(s, 0, sizeof(*s));
    s->id = id;
    snprintf(s->path, sizeof(s->path), "%s", path);
    s->body_len = body_len;
    s->credit = W;
    s->in_open = body_len > 0;
    s->out_open = true;
    s->resp = malloc(4 * W);
    assert_non_null(s->resp);
    make_head(&h, body_len > 0 ? "PUT" : "GET", path, NULL);
    qpush(r, WR_APP_REQ_HEAD, body_len > 0 ? 0 : WR_APP_F_END, id, h.b, h.n);
    return s;
}

static rstream_t *rfind(router_t *r, uint32_t id)
{
    for (int i = 0; i < r->n; i++)
        if (r->s[i].id == id && (r->s[i].in_open || r->s[i].out_open))
            return &r->s[i];
    return NULL;
}

static void rfree(router_t *r)
{
    for (int i = 0; i < r->n; i++)
        free(r->s[i].resp);
    r->n = 0;
}

/* Length of the encoded response head at the start of p. */
static void on_resp_body(router_t *r, rstream_t *s, const unsigned char *p,
                         size_t n)
{
    assert_true(s->out_open);
    assert_true(s->rlen + n <= 4 * W);
    memcpy(s->resp + s->rlen, p, n);
    s->rlen += n;
    if (n > 0)              /* a router grants as the client takes bytes */
        qpush(r, WR_APP_WINDOW, 0, s->id, &(uint32_t) { (uint32_t) n }, 4);
}

/* One datagram from the worker, checked against the stream's state. */
static void rtake(router_t *r)
{
    static unsigned char buf[HDR + MAXP + 1];
    wr_app_hdr_t h;
    const unsigned char *p = buf + HDR;
    rstream_t *s;
    ssize_t n = recv(r->fd, buf, sizeof(buf), MSG_DONTWAIT);
    size_t hl;
    uint32_t v;

    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    assert_true(n >= (ssize_t) HDR);
    memcpy(&h, buf, HDR);
    assert_int_equal(h.len, (size_t) n - HDR);
    s = rfind(r, h.stream);
    if (s == NULL) {
        /* proto.h: WINDOW and ABORT may cross a stream's end. */
        assert_true(h.type == WR_APP_WINDOW || h.type == WR_APP_ABORT);
        return;
    }
    switch (h.type) {
    case WR_APP_WINDOW:
        memcpy(&v, p, 4);
        assert_true(v > 0);
        if (!s->in_open)
            return;
        s->credit += v;
        s->granted += v;
        /* Credit only for bytes taken: never more than the window. */
        assert_true(s->granted <= s->sent);
        assert_true(s->credit <= W);
        return;
    case WR_APP_RESP_HEAD:
        assert_true(s->out_open);
        assert_int_equal(s->status, 0);
        memcpy(&s->status, p, 4);
        hl = (h.flags & WR_APP_F_BODY) ? resp_head_len(p, h.len) : h.len;
        if (h.flags & WR_APP_F_BODY)
            on_resp_body(r, s, p + hl, h.len - hl);
        break;
    case WR_APP_RESP_BODY:
        assert_true(s->status != 0);
        on_resp_body(r, s, p, h.len);
        break;
    case WR_APP_RESP_END:
        assert_true(s->out_open && s->status != 0);
        s->out_open = false;
        s->last = WR_APP_RESP_END;
        return;
    case WR_APP_ABORT:
        if (s->out_open) {
            s->out_open = false;
            s->last = WR_APP_ABORT;
        }
        if (s->in_open) {   /* whoever gets ABORT closes its side so */
            qpush(r, WR_APP_ABORT, 0, s->id, NULL, 0);
            s->in_open = false;
        }
        return;
    default:
        fail_msg("unexpected type %u", h.type);
    }
    if (h.flags & WR_APP_F_END) {
        s->out_open = false;
        s->last = WR_APP_RESP_END;
    }
}

/* Queues the next piece of one stream's body (round robin). */
static void rfeed(router_t *r, int *next)
{
    static unsigned char chunk[CHUNK];

    for (int k = 0; k < r->n; k++) {
        rstream_t *s = &r->s[(*next + k) % r->n];
        size_t left = s->body_len - s->sent;
        size_t len = left < CHUNK ? left : CHUNK;

        if (!s->in_open || s->hold)
            continue;
        if (s->abort && s->sent >= s->abort_at) {
            qpush(r, WR_APP_ABORT, 0, s->id, NULL, 0);
            s->in_open = false;
        } else if (left == 0) {
            qpush(r, WR_APP_REQ_END, 0, s->id, NULL, 0);
            s->in_open = false;
        } else if (s->credit > 0) {
            if (len > s->credit)
                len = (size_t) s->credit;
            for (size_t i = 0; i < len; i++)
                chunk[i] = pat(s->id, s->sent + i);
            qpush(r, WR_APP_REQ_BODY, 0, s->id, chunk, len);
            s->sent += len;
            s->credit -= len;
        } else {
            continue;
        }
        *next = (*next + k + 1) % r->n;
        return;
    }
}

static bool all_closed(const router_t *r)
{
    for (int i = 0; i < r->n; i++)
        if (r->s[i].in_open || r->s[i].out_open)
            return false;
    return true;
}

static bool all_headed(const router_t *r)
{
    for (int i = 0; i < r->n; i++)
        if (r->s[i].status == 0)
            return false;
    return true;
}

/* Runs every open stream until done(r) holds and all is sent. */
static void rdrive_until(router_t *r, bool (*done)(const router_t *r))
{
    int next = 0;

    for (;;) {
        struct pollfd pfd = { .fd = r->fd, .events = POLLIN };
        bool flushed = qflush(r);

        if (flushed && done(r))
            return;
        if (flushed)
            rfeed(r, &next);
        if (r->qn > 0)
            pfd.events |= POLLOUT;
        assert_true(poll(&pfd, 1, WAIT_MS) > 0);
        assert_false(pfd.revents & (POLLHUP | POLLERR));
        if (pfd.revents & POLLIN)
            rtake(r);
    }
}

/* Until both directions of every stream are closed. */
static void rdrive(router_t *r)
{
    rdrive_until(r, all_closed);
}

/* ------------------------------------------------------------ app threads */

typedef struct fx fx_t;

typedef struct {
    fx_t          *fx;
    int            ix;
    pthread_t      th;
    /* what this thread saw, checked after the join */
    int            served;
    int            rc;
    int            err;
    char           text[TEXT];
} app_t;

struct fx {
    router_t           r;
    int                wfd;
    warren_ctx_t      *ctx;
    unsigned           n;
    app_t              app[WARREN_MAX_THREADS];
    pthread_barrier_t  barrier;
    atomic_int         count;
    atomic_int         bad;      /* body bytes that did not match */
    atomic_int         aborted;  /* reads that ended with ECONNABORTED */
};

/* A channel with n serving threads running fn; its HELLO taken. */
static void start(fx_t *fx, unsigned n, void *(*fn)(void *))
{
    int sv[2];
    wr_app_hello_t hello;
    unsigned char buf[HDR + MAXP];
    wr_app_hdr_t h;

    memset(fx, 0, sizeof(*fx));
    alarm(GUARD_S);
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    fx->r.fd = sv[0];
    fx->wfd = sv[1];
    fx->n = n;
    fx->ctx = warren_init_fd_threads(sv[1], n);
    assert_non_null(fx->ctx);
    assert_int_equal(recv(fx->r.fd, buf, sizeof(buf), 0),
                     (ssize_t) (HDR + sizeof(hello)));
    memcpy(&h, buf, HDR);
    memcpy(&hello, buf + HDR, sizeof(hello));
    assert_int_equal(h.type, WR_APP_HELLO);
    assert_int_equal(hello.streams, n);
    assert_int_equal(pthread_barrier_init(&fx->barrier, NULL, n), 0);
    for (unsigned i = 0; i < n; i++) {
        fx->app[i].fx = fx;
        fx->app[i].ix = (int) i;
        assert_int_equal(pthread_create(&fx->app[i].th, NULL, fn,
                                        &fx->app[i]), 0);
    }
}

/* Closes the router's end (the worker's cue to end) and joins. */
static void stop(fx_t *fx)
{
    close(fx->r.fd);
    for (unsigned i = 0; i < fx->n; i++)
        assert_int_equal(pthread_join(fx->app[i].th, NULL), 0);
    warren_done(fx->ctx);
    pthread_barrier_destroy(&fx->barrier);
    rfree(&fx->r);
    alarm(0);
}

/* Reads the whole body, checking it is the stream's own pattern. */
static ssize_t read_body(fx_t *fx, warren_req_t *req, unsigned seed)
{
    static _Thread_local unsigned char buf[3 * MAXP / 2];
    size_t got = 0;
    ssize_t n;

    while ((n = warren_read(req, buf, sizeof(buf))) > 0) {
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] != pat(seed, got + (size_t) i))
                atomic_fetch_add(&fx->bad, 1);
        got += (size_t) n;
    }
    return n < 0 ? -1 : (ssize_t) got;
}

/* The stream id the router gave this request: its path is "/sN". */
static unsigned seed_of(warren_req_t *req)
{
    return (unsigned) atoi(warren_req_path(req, NULL) + 2);
}

/* ------------------------------------- several requests accepted at once */

enum { A_THREADS = 4, A_ROUNDS = 4, A_BAD_STATUS = 40 };

/*
 * Handler for warren_run in each thread. The first request of each thread
 * waits at a barrier of all the threads: it is passed only when every
 * thread holds a request at the same time. Before it, each thread makes a
 * call fail with its own text; after it, warren_error still says that
 * thread's text (error text is per thread).
 */
static int handle_a(warren_req_t *req, void *data)
{
    app_t *a = data;
    fx_t *fx = a->fx;
    size_t n;
    const char *path = warren_req_path(req, &n);

    if (a->served++ == 0) {
        a->rc = warren_response_init(req, A_BAD_STATUS + a->ix, 0);
        a->err = errno;
        pthread_barrier_wait(&fx->barrier);
        snprintf(a->text, sizeof(a->text), "%s", warren_error(fx->ctx));
    }
    if (warren_response_init(req, 200, 1) < 0
        || warren_response_add_header(req, "X-Path", 6, path, n) < 0)
        return -1;
    return warren_write_end(req, path, n);
}

static void *app_a(void *arg)
{
    app_t *a = arg;

    if (warren_run(a->fx->ctx, handle_a, a) < 0)
        atomic_fetch_add(&a->fx->bad, 1);
    return NULL;
}

static void test_accept_concurrently(void **state)
{
    fx_t *fx = calloc(1, sizeof(*fx));
    char path[PATH_MAX_T], want[TEXT];
    uint32_t id = 1;

    (void) state;
    start(fx, A_THREADS, app_a);
    for (int round = 0; round < A_ROUNDS; round++) {
        for (int i = 0; i < A_THREADS; i++, id++) {
            snprintf(path, sizeof(path), "/s%u", id);
            ropen(&fx->r, id, path, 0);
        }
        rdrive(&fx->r);
        for (int i = 0; i < A_THREADS; i++) {
            rstream_t *s = &fx->r.s[i];

            assert_int_equal(s->status, 200);
            assert_int_equal(s->last, WR_APP_RESP_END);
            assert_int_equal(s->rlen, strlen(s->path));
            assert_memory_equal(s->resp, s->path, s->rlen);
        }
        rfree(&fx->r);
    }
    stop(fx);
    assert_int_equal(atomic_load(&fx->bad), 0);
    for (int i = 0; i < A_THREADS; i++) {
        assert_int_equal(fx->app[i].rc, -1);
        assert_int_equal(fx->app[i].err, EINVAL);
        snprintf(want, sizeof(want), "bad status %d", A_BAD_STATUS + i);
        assert_string_equal(fx->app[i].text, want);
    }
    free(fx);
}

/* ------------------------------ bodies and windows of streams interleaved */

enum {
    B_THREADS  = 3,
    B_BODY     = 3 * W + 123,       /* each needs WINDOWs to get through */
    B_RESP     = 2 * W + 777,       /* and so does each response */
    B_ABORTED  = 2,                 /* test_abort_one: this stream's id */
};

/* Reads its body, checks it, answers with B_RESP bytes of its pattern. */
static void *app_b(void *arg)
{
    app_t *a = arg;
    fx_t *fx = a->fx;
    static _Thread_local unsigned char out[RESP_CHUNK];
    warren_req_t *req;

    while ((req = warren_accept(fx->ctx)) != NULL) {
        unsigned seed = seed_of(req);
        ssize_t got = read_body(fx, req, seed);
        size_t sent = 0;
        int rc = 0;

        if (got < 0) {
            if (errno == ECONNABORTED)
                atomic_fetch_add(&fx->aborted, 1);
            a->rc = warren_finish(req);
            a->err = errno;
            continue;
        }
        if ((size_t) got != B_BODY)
            atomic_fetch_add(&fx->bad, 1);
        while (rc == 0 && sent < B_RESP) {
            size_t k = B_RESP - sent < RESP_CHUNK ? B_RESP - sent
                                                  : RESP_CHUNK;

            for (size_t i = 0; i < k; i++)
                out[i] = pat(seed + 100, sent + i);
            rc = warren_write(req, out, k);
            sent += k;
        }
        if (warren_finish(req) < 0 || rc < 0)
            atomic_fetch_add(&fx->bad, 1);
        a->served++;
    }
    return NULL;
}

static void check_b_response(const rstream_t *s)
{
    assert_int_equal(s->status, 200);
    assert_int_equal(s->last, WR_APP_RESP_END);
    assert_int_equal(s->rlen, B_RESP);
    for (size_t i = 0; i < s->rlen; i++)
        if (s->resp[i] != pat(s->id + 100, i))
            fail_msg("stream %u: response byte %zu", s->id, i);
}

static void test_interleaved_bodies(void **state)
{
    fx_t *fx = calloc(1, sizeof(*fx));
    char path[PATH_MAX_T];

    (void) state;
    start(fx, B_THREADS, app_b);
    for (uint32_t id = 1; id <= B_THREADS; id++) {
        snprintf(path, sizeof(path), "/s%u", id);
        ropen(&fx->r, id, path, B_BODY);
    }
    rdrive(&fx->r);
    for (int i = 0; i < B_THREADS; i++) {
        check_b_response(&fx->r.s[i]);
        /* The body went through the worker's WINDOWs, per stream. */
        assert_int_equal(fx->r.s[i].sent, B_BODY);
        assert_true(fx->r.s[i].granted >= B_BODY - W);
    }
    stop(fx);
    assert_int_equal(atomic_load(&fx->bad), 0);
    for (int i = 0; i < B_THREADS; i++)
        assert_int_equal(fx->app[i].served, 1);
    free(fx);
}

/* The router aborts one stream mid-body: its thread gets ECONNABORTED,
 * the other streams go on to their end untouched. */
static void test_abort_one(void **state)
{
    fx_t *fx = calloc(1, sizeof(*fx));
    char path[PATH_MAX_T];
    int aborted_thread = -1;

    (void) state;
    start(fx, B_THREADS, app_b);
    for (uint32_t id = 1; id <= B_THREADS; id++) {
        snprintf(path, sizeof(path), "/s%u", id);
        rstream_t *s = ropen(&fx->r, id, path, B_BODY);

        /* Past the first window: the app has taken the request by then
         * (the router gets credit beyond W only as the app reads). */
        s->abort = id == B_ABORTED;
        s->abort_at = W + W / 2;
    }
    rdrive(&fx->r);
    for (int i = 0; i < B_THREADS; i++) {
        const rstream_t *s = &fx->r.s[i];

        if (s->id == B_ABORTED) {
            /* The worker closed its side with ABORT in reply. */
            assert_int_equal(s->last, WR_APP_ABORT);
            assert_int_equal(s->status, 0);
        } else {
            check_b_response(s);
        }
    }
    stop(fx);
    assert_int_equal(atomic_load(&fx->bad), 0);
    assert_int_equal(atomic_load(&fx->aborted), 1);
    for (int i = 0; i < B_THREADS; i++)
        if (fx->app[i].served == 0)
            aborted_thread = i;
    assert_true(aborted_thread >= 0);
    assert_int_equal(fx->app[aborted_thread].rc, -1);
    assert_int_equal(fx->app[aborted_thread].err, ECONNABORTED);
    free(fx);
}

/* -------------------------------- the stream table after client aborts */

enum {
    D_THREADS = 5,
    D_NEW     = WR_APP_MAX_STREAMS,     /* then the router fills the table */
};

/*
 * Each thread takes a request and holds it after the router aborted it
 * (not finished yet: the app may be slow to notice), then serves the next
 * ones. Those aborted streams are closed on the wire, so the router may
 * open WR_APP_MAX_STREAMS new ones meanwhile: the table must not count the
 * held requests (a table of 8 slots shared with them would overflow).
 */
static void *app_d(void *arg)
{
    app_t *a = arg;
    fx_t *fx = a->fx;
    warren_req_t *held = warren_accept(fx->ctx), *req;
    unsigned char buf[64];

    if (held == NULL)
        return NULL;
    /* Tells the router this thread holds it; then waits for its body. */
    if (warren_response_send_head(held) < 0)
        atomic_fetch_add(&fx->bad, 1);
    if (warren_read(held, buf, sizeof(buf)) < 0 && errno == ECONNABORTED)
        atomic_fetch_add(&fx->aborted, 1);
    /* All aborted before anyone goes on: the router sees them closed. */
    pthread_barrier_wait(&fx->barrier);
    while ((req = warren_accept(fx->ctx)) != NULL) {
        size_t n;
        const char *path = warren_req_path(req, &n);

        if (warren_write_end(req, path, n) < 0 || warren_finish(req) < 0)
            atomic_fetch_add(&fx->bad, 1);
        a->served++;
    }
    a->err = errno;                     /* 0: the router closed */
    a->rc = warren_finish(held);        /* frees it; it was aborted */
    return NULL;
}

static void test_table_after_aborts(void **state)
{
    fx_t *fx = calloc(1, sizeof(*fx));
    char path[PATH_MAX_T];
    int served = 0;

    (void) state;
    start(fx, D_THREADS, app_d);
    /* Five requests whose bodies do not come, each held by a thread (it
     * sent the head), then aborted (a client left). */
    for (uint32_t id = 1; id <= D_THREADS; id++) {
        snprintf(path, sizeof(path), "/s%u", id);
        ropen(&fx->r, id, path, W)->hold = true;
    }
    rdrive_until(&fx->r, all_headed);
    for (int i = 0; i < D_THREADS; i++) {
        fx->r.s[i].hold = false;
        fx->r.s[i].abort = true;
    }
    rdrive(&fx->r);
    for (int i = 0; i < D_THREADS; i++)
        assert_int_equal(fx->r.s[i].last, WR_APP_ABORT);
    rfree(&fx->r);
    /* All closed for the router: it may open a full table of new ones
     * while the app still holds the five. */
    for (uint32_t id = 100; id < 100 + D_NEW; id++) {
        snprintf(path, sizeof(path), "/s%u", id);
        ropen(&fx->r, id, path, 0);
    }
    rdrive(&fx->r);
    for (int i = 0; i < D_NEW; i++) {
        assert_int_equal(fx->r.s[i].status, 200);
        assert_int_equal(fx->r.s[i].rlen, strlen(fx->r.s[i].path));
    }
    stop(fx);
    assert_int_equal(atomic_load(&fx->bad), 0);
    assert_int_equal(atomic_load(&fx->aborted), D_THREADS);
    for (int i = 0; i < D_THREADS; i++) {
        served += fx->app[i].served;
        assert_int_equal(fx->app[i].err, 0);
        assert_int_equal(fx->app[i].rc, -1);
    }
    assert_int_equal(served, D_NEW);
    free(fx);
}

/* ------------------------------------------- the end wakes every thread */

static void *app_e(void *arg)
{
    app_t *a = arg;
    fx_t *fx = a->fx;
    warren_req_t *req = warren_accept(fx->ctx);
    unsigned char buf[64];

    if (req == NULL) {
        a->rc = 0;
        a->err = errno;             /* 0: the normal end */
        return NULL;
    }
    a->served = 1;
    warren_response_send_head(req); /* the router waits for it */
    a->rc = (int) warren_read(req, buf, sizeof(buf));
    a->err = errno;                 /* ECONNRESET: the channel is gone */
    warren_finish(req);
    return NULL;
}

/* The router closes the channel while one thread waits for a body and
 * the others for requests: each returns (accept NULL with errno 0, the
 * read -1 with ECONNRESET). */
static void test_end_wakes_all(void **state)
{
    fx_t *fx = calloc(1, sizeof(*fx));
    int reading = 0;

    (void) state;
    start(fx, B_THREADS, app_e);
    ropen(&fx->r, 1, "/s1", W)->hold = true;
    rdrive_until(&fx->r, all_headed);
    rfree(&fx->r);
    stop(fx);
    for (int i = 0; i < B_THREADS; i++) {
        if (fx->app[i].served) {
            reading++;
            assert_int_equal(fx->app[i].rc, -1);
            assert_int_equal(fx->app[i].err, ECONNRESET);
        } else {
            assert_int_equal(fx->app[i].rc, 0);
            assert_int_equal(fx->app[i].err, 0);
        }
    }
    assert_int_equal(reading, 1);
    free(fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_concurrently),
        cmocka_unit_test(test_interleaved_bodies),
        cmocka_unit_test(test_abort_one),
        cmocka_unit_test(test_table_after_aborts),
        cmocka_unit_test(test_end_wakes_all),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
