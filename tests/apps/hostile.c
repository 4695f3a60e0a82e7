/*
 * hostile: a worker that breaks the channel protocol (src/lib/proto.h) on
 * purpose, as a compromised or buggy application could. It speaks the wire
 * itself, without libwarren, one request at a time; the request's path
 * says what it sends back on the request's stream:
 *
 *   /ok           a correct 200 "ok" (one RESP_HEAD with body and end)
 *   /runt         a 3-byte datagram
 *   /badlen       a header that says 100 payload bytes, with 10
 *   /huge         a datagram larger than any message may be
 *   /badtype      a message of type 42
 *   /badflags     a RESP_HEAD with a flag no message has
 *   /bodyflag     a RESP_BODY with WR_APP_F_BODY (a RESP_HEAD's flag)
 *   /crlf         a field value with CR LF (a response-splitting attempt)
 *   /badname      a field name with a space
 *   /status0      status 0
 *   /count        a head that says 1000 fields and carries 1
 *   /strlen       a field whose length runs past the payload
 *   /twoheads     RESP_HEAD, then another RESP_HEAD with the end
 *   /afterend     a complete response, then more body
 *   /overlength   Content-Length: 2 and 7 body bytes
 *   /bodyfirst    RESP_BODY before any head
 *   /window0      a WINDOW of 0
 *   /abortbytes   an ABORT with a payload
 *   /otherstream  a complete response on a stream that is not open
 *   /hello        a second HELLO
 *   /flood        a head without length, then body far beyond the window,
 *                 never waiting for a WINDOW, until the channel breaks
 *
 * and some that keep the protocol:
 *
 *   /cut          a head, body bytes "part", then ABORT: an answer the app
 *                 gave up in the middle, all three in the channel at once
 *
 * two of which read the channel late, so that the router finds it full
 * (tests of its EPOLLOUT bookkeeping):
 *
 *   /lag          waits LAG_MS unread, takes LAG_BYTES of body (room for
 *                 a small message, far from the quarter of the socket's
 *                 buffer below which epoll says writable), answers "ok"
 *                 before the body ends, and waits LAG_MS again before it
 *                 reads and drops the rest
 *   /drain        waits LAG_MS unread, then takes the whole body (within
 *                 the first window: it grants none) and answers "ok" after
 *                 its REQ_END
 *
 * Build: make build/apps/hostile
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "lib/proto.h"

enum {
    HDR       = sizeof(wr_app_hdr_t),
    BUF       = HDR + WR_APP_MAX_PAYLOAD,
    FLOOD_MAX = 64 * 1024 * 1024,   /* gives up after this much */
    PATH_IX   = 2,                  /* the path: REQ_HEAD's third string */
    LAG_MS    = 500,
    LAG_BYTES = 24 * 1024,
};

static int chan;

static void die(const char *what)
{
    fprintf(stderr, "hostile: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* One datagram: a header saying len, then the payload bytes given. */
static int send_raw(uint16_t type, uint16_t flags, uint32_t stream, uint32_t len,
                    const void *p, size_t n)
{
    wr_app_hdr_t h = { .type = type, .flags = flags, .stream = stream, .len = len };
    struct iovec iov[2] = { { &h, HDR }, { (void *) p, n } };
    struct msghdr m = { .msg_iov = iov, .msg_iovlen = n ? 2 : 1 };

    return sendmsg(chan, &m, MSG_NOSIGNAL) < 0 ? -1 : 0;
}

static int send_msg(uint16_t type, uint16_t flags, uint32_t stream, const void *p, size_t n)
{
    return send_raw(type, flags, stream, (uint32_t) n, p, n);
}

/* A RESP_HEAD payload: status and the fields (name, value, ...). */
static size_t head(unsigned char *out, uint32_t status, const char *const *f, uint32_t nf)
{
    size_t o = 0;

    memcpy(out + o, &status, 4), o += 4;
    memcpy(out + o, &nf, 4), o += 4;
    for (uint32_t i = 0; i < 2 * nf; i++) {
        uint32_t l = (uint32_t) strlen(f[i]);
        memcpy(out + o, &l, 4), o += 4;
        memcpy(out + o, f[i], l), o += l;
    }
    return o;
}

static int ok(uint32_t s, uint16_t flags_extra)
{
    static const char *const f[] = { "Content-Type", "text/plain" };
    unsigned char p[256];
    size_t n = head(p, 200, f, 1);

    memcpy(p + n, "ok", 2);
    return send_msg(WR_APP_RESP_HEAD, WR_APP_F_BODY | WR_APP_F_END | flags_extra, s, p, n + 2);
}

static void flood(uint32_t s)
{
    static unsigned char body[WR_APP_MAX_PAYLOAD];
    unsigned char p[64];
    size_t n = head(p, 200, NULL, 0);

    memset(body, 'f', sizeof(body));
    if (send_msg(WR_APP_RESP_HEAD, 0, s, p, n) < 0)
        return;
    for (size_t sent = 0; sent < FLOOD_MAX; sent += sizeof(body))
        if (send_msg(WR_APP_RESP_BODY, 0, s, body, sizeof(body)) < 0)
            return;                 /* the router closed the channel */
}

static void lag(void)
{
    struct timespec ts = { LAG_MS / 1000, (LAG_MS % 1000) * 1000000L };

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Reads messages until stream s's body ended (REQ_END or ABORT), or max
 * bytes of them came; the bytes are dropped. */
static void take(uint32_t s, size_t max)
{
    static unsigned char b[BUF];

    for (size_t got = 0; got < max; ) {
        wr_app_hdr_t h;
        ssize_t n = recv(chan, b, sizeof(b), 0);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < (ssize_t) HDR)
            die("recv");
        memcpy(&h, b, HDR);
        got += (size_t) n;
        if (h.stream == s && (h.type == WR_APP_REQ_END || h.type == WR_APP_ABORT))
            return;
    }
}

static void serve(uint32_t s, const char *path)
{
    unsigned char p[512];
    static unsigned char big[BUF + 4096];

    if (strcmp(path, "/runt") == 0) {
        send(chan, "abc", 3, MSG_NOSIGNAL);
    } else if (strcmp(path, "/badlen") == 0) {
        send_raw(WR_APP_RESP_BODY, 0, s, 100, "0123456789", 10);
    } else if (strcmp(path, "/huge") == 0) {
        send_raw(WR_APP_RESP_BODY, 0, s, sizeof(big) - HDR, big, sizeof(big) - HDR);
    } else if (strcmp(path, "/badtype") == 0) {
        send_msg(42, 0, s, NULL, 0);
    } else if (strcmp(path, "/badflags") == 0) {
        ok(s, 0x40);
    } else if (strcmp(path, "/bodyflag") == 0) {
        send_msg(WR_APP_RESP_BODY, WR_APP_F_BODY, s, "x", 1);
    } else if (strcmp(path, "/crlf") == 0) {
        static const char *const f[] = { "X-A", "b\r\nSet-Cookie: stolen=1" };
        send_msg(WR_APP_RESP_HEAD, WR_APP_F_END, s, p, head(p, 200, f, 1));
    } else if (strcmp(path, "/badname") == 0) {
        static const char *const f[] = { "X A", "b" };
        send_msg(WR_APP_RESP_HEAD, WR_APP_F_END, s, p, head(p, 200, f, 1));
    } else if (strcmp(path, "/status0") == 0) {
        send_msg(WR_APP_RESP_HEAD, WR_APP_F_END, s, p, head(p, 0, NULL, 0));
    } else if (strcmp(path, "/count") == 0) {
        static const char *const f[] = { "X-A", "b" };
        size_t n = head(p, 200, f, 1);
        uint32_t lie = 1000;
        memcpy(p + 4, &lie, 4);
        send_msg(WR_APP_RESP_HEAD, WR_APP_F_END, s, p, n);
    } else if (strcmp(path, "/strlen") == 0) {
        static const char *const f[] = { "X-A", "b" };
        size_t n = head(p, 200, f, 1);
        uint32_t lie = 0xffffffffu;
        memcpy(p + 8, &lie, 4);         /* the name's length */
        send_msg(WR_APP_RESP_HEAD, WR_APP_F_END, s, p, n);
    } else if (strcmp(path, "/twoheads") == 0) {
        size_t n = head(p, 200, NULL, 0);
        send_msg(WR_APP_RESP_HEAD, 0, s, p, n);
        send_msg(WR_APP_RESP_HEAD, WR_APP_F_END, s, p, n);
    } else if (strcmp(path, "/afterend") == 0) {
        static const char *const f[] = { "Content-Length", "2" };
        size_t n = head(p, 200, f, 1);
        memcpy(p + n, "ok", 2);
        send_msg(WR_APP_RESP_HEAD, WR_APP_F_BODY | WR_APP_F_END, s, p, n + 2);
        send_msg(WR_APP_RESP_BODY, 0, s, "more", 4);
    } else if (strcmp(path, "/overlength") == 0) {
        static const char *const f[] = { "Content-Length", "2" };
        size_t n = head(p, 200, f, 1);
        memcpy(p + n, "toolong", 7);
        send_msg(WR_APP_RESP_HEAD, WR_APP_F_BODY | WR_APP_F_END, s, p, n + 7);
    } else if (strcmp(path, "/bodyfirst") == 0) {
        send_msg(WR_APP_RESP_BODY, WR_APP_F_END, s, "x", 1);
    } else if (strcmp(path, "/window0") == 0) {
        uint32_t zero = 0;
        send_msg(WR_APP_WINDOW, 0, s, &zero, 4);
    } else if (strcmp(path, "/abortbytes") == 0) {
        send_msg(WR_APP_ABORT, 0, s, "x", 1);
    } else if (strcmp(path, "/otherstream") == 0) {
        ok(s + 1000, 0);
    } else if (strcmp(path, "/hello") == 0) {
        wr_app_hello_t hello = { WR_APP_PROTO_VERSION, (uint32_t) getpid(), 1, 0 };
        send_msg(WR_APP_HELLO, 0, s, &hello, sizeof(hello));
    } else if (strcmp(path, "/flood") == 0) {
        flood(s);
    } else if (strcmp(path, "/cut") == 0) {
        size_t n = head(p, 200, NULL, 0);
        memcpy(p + n, "part", 4);
        send_msg(WR_APP_RESP_HEAD, WR_APP_F_BODY, s, p, n + 4);
        send_msg(WR_APP_ABORT, 0, s, NULL, 0);
    } else if (strcmp(path, "/lag") == 0) {
        lag();
        take(s, LAG_BYTES);
        ok(s, 0);
        lag();                      /* the router sees the answer first */
    } else if (strcmp(path, "/drain") == 0) {
        lag();
        take(s, SIZE_MAX);
        ok(s, 0);
    } else {
        ok(s, 0);
    }
}

/* The string at index ix of a REQ_HEAD payload, copied into out (cut at
 * cap - 1 bytes); "" when the payload is shorter. */
static const char *field(unsigned char *p, size_t n, int ix, char *out, size_t cap)
{
    size_t o = 0;

    for (int i = 0; i <= ix; i++) {
        uint32_t l;
        if (n - o < 4)
            return "";
        memcpy(&l, p + o, 4);
        o += 4;
        if (l > n - o)
            return "";
        if (i == ix) {
            size_t k = l < cap - 1 ? l : cap - 1;
            memcpy(out, p + o, k);
            out[k] = '\0';
            return out;
        }
        o += l;
    }
    return "";
}

int main(void)
{
    const char *fd = getenv("WARREN_CHANNEL_FD");
    wr_app_hello_t hello = { WR_APP_PROTO_VERSION, (uint32_t) getpid(), 1, 0 };
    static unsigned char buf[BUF];
    char path[256];

    if (fd == NULL) {
        fprintf(stderr, "hostile: no WARREN_CHANNEL_FD\n");
        return 1;
    }
    chan = atoi(fd);
    if (send_msg(WR_APP_HELLO, 0, 0, &hello, sizeof(hello)) < 0)
        die("send(HELLO)");
    for (;;) {
        wr_app_hdr_t h;
        ssize_t n = recv(chan, buf, sizeof(buf), 0);

        if (n == 0)
            return 0;                   /* the router let go */
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            die("recv");
        if ((size_t) n < HDR)
            continue;
        memcpy(&h, buf, HDR);
        if (h.type == WR_APP_REQ_HEAD)
            serve(h.stream, field(buf + HDR, (size_t) n - HDR, PATH_IX, path, sizeof(path)));
    }
}
