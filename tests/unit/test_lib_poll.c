/*
 * libwarren used from an event loop (warren.h, "event loops"): one thread
 * plays both sides. The router's end is a plain socket driven by hand; the
 * worker's end only calls what the readiness calls say will not block, so
 * a test that gets it wrong hangs (and the alarm fails it) instead of
 * passing by luck.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "warren.h"
#include "lib/proto.h"

enum {
    W        = WR_APP_WINDOW_INIT,
    MAXP     = WR_APP_MAX_PAYLOAD,
    HDR      = sizeof(wr_app_hdr_t),
    STREAMS  = 4,
    NFIXED   = 12,
    GUARD_S  = 30,      /* a blocking call fails the test instead of hanging */
    SMALL    = 10,
    GRANT    = 100,
};

typedef struct {
    int           rfd;          /* the router's end */
    warren_ctx_t *ctx;          /* the worker's */
} chan_t;

typedef struct {
    wr_app_hdr_t  h;
    unsigned char p[MAXP];
    size_t        n;
} msg_t;

static void rsend(int fd, uint16_t type, uint16_t flags, uint32_t stream,
                  const void *p, size_t len)
{
    static unsigned char buf[HDR + MAXP];
    wr_app_hdr_t h = { .type = type, .flags = flags, .stream = stream,
                       .len = (uint32_t) len };

    memcpy(buf, &h, HDR);
    if (len > 0)
        memcpy(buf + HDR, p, len);
    assert_int_equal(send(fd, buf, HDR + len, MSG_NOSIGNAL),
                     (ssize_t) (HDR + len));
}

/* One datagram from the worker, as sent (folded flags not split). */
static void rrecv(int fd, msg_t *m)
{
    static unsigned char buf[HDR + MAXP];
    ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

    assert_true(n >= (ssize_t) HDR);
    memcpy(&m->h, buf, HDR);
    m->n = (size_t) n - HDR;
    memcpy(m->p, buf + HDR, m->n);
}

static bool rnothing(int fd)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };

    return poll(&pfd, 1, 0) == 0;
}

static void put_str(unsigned char *b, size_t *at, const char *s)
{
    uint32_t n = (uint32_t) strlen(s);

    memcpy(b + *at, &n, sizeof(n));
    memcpy(b + *at + sizeof(n), s, n);
    *at += sizeof(n) + n;
}

/* A GET-like head with no fields; F_END when it has no body. */
static void send_head(int fd, uint32_t stream, bool body)
{
    const char *fixed[NFIXED] = {
        "POST", "/", "/", "", "HTTP/1.1", "192.0.2.7", "41000",
        "127.0.0.1", "8080", "example.com", "http", "",
    };
    unsigned char b[1024];
    size_t at = 0;
    uint32_t zero = 0;

    for (int i = 0; i < NFIXED; i++)
        put_str(b, &at, fixed[i]);
    memcpy(b + at, &zero, sizeof(zero));
    at += sizeof(zero);
    rsend(fd, WR_APP_REQ_HEAD, body ? 0 : WR_APP_F_END, stream, b, at);
}

static void open_chan(chan_t *c)
{
    int sv[2];
    msg_t m;

    alarm(GUARD_S);
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    c->rfd = sv[0];
    c->ctx = warren_init_fd_threads(sv[1], STREAMS);
    assert_non_null(c->ctx);
    rrecv(c->rfd, &m);
    assert_int_equal(m.h.type, WR_APP_HELLO);
    assert_int_equal(warren_fd(c->ctx), sv[1]);
}

static void close_chan(chan_t *c)
{
    warren_done(c->ctx);
    close(c->rfd);
    alarm(0);
}

/* ------------------------------------------------------------------ tests */

static void test_accept_several(void **state)
{
    chan_t c;
    warren_req_t *a, *b;

    open_chan(&c);
    assert_int_equal(warren_poll(c.ctx), 0);        /* nothing waiting */
    assert_int_equal(warren_pending(c.ctx), 0);
    send_head(c.rfd, 1, false);
    send_head(c.rfd, 2, false);
    assert_int_equal(warren_pending(c.ctx), 0);     /* not taken yet */
    assert_int_equal(warren_poll(c.ctx), 2);
    assert_int_equal(warren_pending(c.ctx), 2);
    a = warren_accept(c.ctx);
    b = warren_accept(c.ctx);
    assert_non_null(a);
    assert_non_null(b);
    assert_ptr_not_equal(a, b);
    assert_int_equal(warren_pending(c.ctx), 0);
    /* No body: readable at once, and at its end. */
    assert_int_equal(warren_req_events(a),
                     WARREN_REQ_READABLE | WARREN_REQ_BODY_END);
    assert_int_equal(warren_write_room(b), W);
    /* Answered in the opposite order: each is its own stream. */
    assert_int_equal(warren_write_end(b, "b", 1), 0);
    assert_int_equal(warren_finish(b), 0);
    assert_int_equal(warren_write_end(a, "a", 1), 0);
    assert_int_equal(warren_finish(a), 0);
    close_chan(&c);
}

static void test_body_readiness(void **state)
{
    chan_t c;
    warren_req_t *r;
    char buf[SMALL * 2];

    open_chan(&c);
    send_head(c.rfd, 1, true);
    assert_int_equal(warren_poll(c.ctx), 1);
    r = warren_accept(c.ctx);
    assert_non_null(r);
    assert_int_equal(warren_req_events(r), 0);      /* read would block */
    rsend(c.rfd, WR_APP_REQ_BODY, 0, 1, "0123456789", SMALL);
    assert_int_equal(warren_req_events(r), 0);      /* until polled */
    assert_int_equal(warren_poll(c.ctx), 1);
    assert_int_equal(warren_req_events(r), WARREN_REQ_READABLE);
    assert_int_equal(warren_read(r, buf, sizeof(buf)), SMALL);
    assert_int_equal(warren_req_events(r), 0);
    rsend(c.rfd, WR_APP_REQ_END, 0, 1, NULL, 0);
    assert_int_equal(warren_poll(c.ctx), 1);
    assert_int_equal(warren_req_events(r),
                     WARREN_REQ_READABLE | WARREN_REQ_BODY_END);
    assert_int_equal(warren_read(r, buf, sizeof(buf)), 0);
    assert_int_equal(warren_finish(r), 0);
    close_chan(&c);
}

static void test_write_room(void **state)
{
    static unsigned char big[MAXP];
    chan_t c;
    warren_req_t *r;
    msg_t m;
    size_t sent = 0;
    uint32_t grant = GRANT;

    open_chan(&c);
    send_head(c.rfd, 1, false);
    warren_poll(c.ctx);
    r = warren_accept(c.ctx);
    /* The whole window, a message at a time (the test thread must drain
     * the socket itself). */
    while (warren_write_room(r) > 0) {
        size_t k = warren_write_room(r) < MAXP / 2 ? warren_write_room(r)
                                                   : MAXP / 2;
        assert_int_equal(warren_write(r, big, k), 0);
        sent += k;
        while (!rnothing(c.rfd))
            rrecv(c.rfd, &m);
    }
    assert_int_equal(sent, W);
    rsend(c.rfd, WR_APP_WINDOW, 0, 1, &grant, sizeof(grant));
    assert_int_equal(warren_write_room(r), 0);
    assert_int_equal(warren_poll(c.ctx), 1);
    assert_int_equal(warren_write_room(r), GRANT);
    assert_int_equal(warren_write_end(r, big, GRANT), 0);
    assert_int_equal(warren_write_room(r), 0);      /* ended */
    assert_int_equal(warren_finish(r), 0);
    close_chan(&c);
}

static void test_abort(void **state)
{
    chan_t c;
    warren_req_t *r;
    msg_t m;

    open_chan(&c);
    send_head(c.rfd, 1, true);
    warren_poll(c.ctx);
    r = warren_accept(c.ctx);
    rsend(c.rfd, WR_APP_ABORT, 0, 1, NULL, 0);
    assert_int_equal(warren_poll(c.ctx), 1);
    assert_true(warren_req_events(r) & WARREN_REQ_ABORTED);
    assert_true(warren_req_events(r) & WARREN_REQ_READABLE);
    assert_int_equal(warren_write_room(r), 0);
    /* The worker's side closed with ABORT in reply (proto.h). */
    rrecv(c.rfd, &m);
    assert_int_equal(m.h.type, WR_APP_ABORT);
    assert_int_equal(warren_finish(r), -1);
    assert_int_equal(errno, ECONNABORTED);
    close_chan(&c);
}

static void test_router_closes(void **state)
{
    chan_t c;
    warren_req_t *r;

    open_chan(&c);
    send_head(c.rfd, 1, true);
    warren_poll(c.ctx);
    r = warren_accept(c.ctx);
    close(c.rfd);
    assert_int_equal(warren_poll(c.ctx), -1);
    assert_int_equal(errno, ECONNRESET);
    assert_true(warren_req_events(r) & WARREN_REQ_ABORTED);
    assert_int_equal(warren_pending(c.ctx), 0);
    assert_null(warren_accept(c.ctx));               /* at once */
    assert_int_equal(errno, 0);
    warren_abort(r);
    warren_done(c.ctx);
    alarm(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accept_several),
        cmocka_unit_test(test_body_readiness),
        cmocka_unit_test(test_write_room),
        cmocka_unit_test(test_abort),
        cmocka_unit_test(test_router_closes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
