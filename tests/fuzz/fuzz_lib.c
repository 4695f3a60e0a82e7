/*
 * libFuzzer target for libwarren (src/lib): arbitrary router messages into
 * a worker. A helper thread plays the router: it sends the input's messages
 * on a SOCK_SEQPACKET socketpair, then closes its sending side, and reads
 * whatever the worker answers. The worker runs a handler that checks the
 * request head's invariants, reads the body and answers; it must never
 * crash, and must end (every wait ends at the router's close).
 *
 * Input: records of [kind u8][stream u8][len u16 LE][payload]:
 *   kind & 0x80  a raw datagram: the len payload bytes that follow, as is
 *   else         a framed message: type kind & 0x0f, flags 1 when
 *                (kind & 0x30) == 0x30, on stream `stream`; its payload is
 *                  kind & 0x40: made up, not taken from the input: for
 *                           REQ_HEAD a valid head, else len pattern bytes
 *                           (reaches window limits in a few input bytes)
 *                  else     the len bytes that follow
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "warren.h"
#include "lib/proto.h"

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

enum {
    REC_HDR      = 4,
    KIND_RAW     = 0x80,
    KIND_SYNTH   = 0x40,
    KIND_FLAGS   = 0x30,
    KIND_TYPE    = 0x0f,
    HDR          = sizeof(wr_app_hdr_t),
    MSG_MAX      = HDR + WR_APP_MAX_PAYLOAD + 256,
    MAX_MSGS     = 1024,
    READ_BUF     = 1000,
    ECHO_MAX     = 300,
    BIG_WRITE    = WR_APP_WINDOW_INIT + WR_APP_MAX_PAYLOAD, /* needs WINDOWs */
    MAX_BYTES    = 1 << 20,     /* made-up payloads stop here */
    POLL_MS      = 1000,
    NFIXED       = 12,
};

/* ------------------------------------------------------------ messages */

typedef struct {
    size_t off;     /* into the built buffer */
    size_t len;
} dgram_t;

typedef struct {
    unsigned char *buf;
    size_t         used;
    size_t         cap;
    dgram_t        d[MAX_MSGS];
    size_t         n;
} msgs_t;

static unsigned char *room(msgs_t *m, size_t len)
{
    if (m->used + len > m->cap) {
        size_t cap = (m->used + len) * 2;
        unsigned char *b = realloc(m->buf, cap);

        CHECK(b != NULL);
        m->buf = b;
        m->cap = cap;
    }
    return m->buf + m->used;
}

static void put(unsigned char **p, const void *src, size_t n)
{
    memcpy(*p, src, n);
    *p += n;
}

/* A valid REQ_HEAD payload with one header field. */
static size_t synth_head(unsigned char *out)
{
    static const char *const s[] = {
        "POST", "/p?q", "/p", "q", "HTTP/1.1", "::1", "1", "::1", "80",
        "h", "http", "", "Content-Type", "text/plain",
    };
    unsigned char *p = out;
    uint32_t n, one = 1;

    for (int i = 0; i < NFIXED; i++) {
        n = (uint32_t) strlen(s[i]);
        put(&p, &n, sizeof(n));
        put(&p, s[i], n);
    }
    put(&p, &one, sizeof(one));
    for (int i = NFIXED; i < NFIXED + 2; i++) {
        n = (uint32_t) strlen(s[i]);
        put(&p, &n, sizeof(n));
        put(&p, s[i], n);
    }
    return (size_t) (p - out);
}

static void add_framed(msgs_t *m, uint8_t kind, uint8_t stream,
                       const uint8_t *pl, size_t plen, size_t synth_len)
{
    unsigned char *p = room(m, HDR + WR_APP_MAX_PAYLOAD + 1024);
    wr_app_hdr_t h = {
        .type = kind & KIND_TYPE,
        .flags = (kind & KIND_FLAGS) == KIND_FLAGS,
        .stream = stream,
    };

    if (kind & KIND_SYNTH) {
        if (h.type == WR_APP_REQ_HEAD)
            plen = synth_head(p + HDR);
        else {
            plen = synth_len;
            memset(p + HDR, 'B', plen);
        }
    } else {
        memcpy(p + HDR, pl, plen);
    }
    h.len = (uint32_t) plen;
    memcpy(p, &h, HDR);
    m->d[m->n++] = (dgram_t) { m->used, HDR + plen };
    m->used += HDR + plen;
}

static void split(msgs_t *m, const uint8_t *data, size_t size)
{
    while (size >= REC_HDR && m->n < MAX_MSGS && m->used < MAX_BYTES) {
        uint8_t kind = data[0], stream = data[1];
        size_t len = (size_t) data[2] | (size_t) data[3] << 8;
        size_t take = len;

        data += REC_HDR;
        size -= REC_HDR;
        if ((kind & KIND_SYNTH) && !(kind & KIND_RAW))
            take = 0;
        if (take > size)
            take = len = size;
        if (kind & KIND_RAW) {
            memcpy(room(m, take), data, take);
            m->d[m->n++] = (dgram_t) { m->used, take };
            m->used += take;
        } else {
            add_framed(m, kind, stream, data, take, len);
        }
        data += take;
        size -= take;
    }
}

/* -------------------------------------------------------------- router */

typedef struct {
    int     fd;
    msgs_t *m;
} router_t;

/* Sends every message, then reads until the worker closes. Never blocks
 * on one direction while the other could make progress. */
static void *router_main(void *arg)
{
    router_t *r = arg;
    static unsigned char rbuf[MSG_MAX];     /* one router at a time */
    size_t next = 0;
    bool wr_open = true;

    for (;;) {
        struct pollfd pfd = {
            .fd = r->fd, .events = POLLIN | (wr_open ? POLLOUT : 0),
        };

        if (wr_open && next == r->m->n) {
            shutdown(r->fd, SHUT_WR);
            wr_open = false;
            continue;
        }
        CHECK(poll(&pfd, 1, -1) >= 0);
        if (pfd.revents & POLLIN) {
            ssize_t n = recv(r->fd, rbuf, sizeof(rbuf), MSG_DONTWAIT);

            if (n == 0 || (n < 0 && errno != EAGAIN))
                break;
        }
        if (wr_open && (pfd.revents & POLLOUT)) {
            const dgram_t *d = &r->m->d[next];

            if (send(r->fd, r->m->buf + d->off, d->len,
                     MSG_DONTWAIT | MSG_NOSIGNAL) >= 0 || errno != EAGAIN)
                next++;         /* sent, or refused for good: go on */
        }
        if (!wr_open && (pfd.revents & (POLLHUP | POLLERR))
            && !(pfd.revents & POLLIN))
            break;
    }
    return NULL;
}

/* -------------------------------------------------------------- worker */

/* Every getter gives a NUL-terminated string of the length it says. */
static void check_head(warren_req_t *req)
{
    const char *(*get[])(const warren_req_t *, size_t *) = {
        warren_req_method, warren_req_target, warren_req_path,
        warren_req_query, warren_req_version, warren_req_remote_addr,
        warren_req_remote_port, warren_req_local_addr,
        warren_req_local_port, warren_req_server_name, warren_req_scheme,
        warren_req_target_name,
    };
    const char *name, *value;
    size_t len, nlen, vlen, count = warren_req_header_count(req);

    for (size_t i = 0; i < sizeof(get) / sizeof(get[0]); i++) {
        const char *s = get[i](req, &len);

        CHECK(s != NULL && strlen(s) == len);
    }
    for (size_t i = 0; i < count; i++) {
        CHECK(warren_req_header(req, i, &name, &nlen, &value, &vlen) == 0);
        CHECK(strlen(name) == nlen && nlen > 0 && strlen(value) == vlen);
    }
    CHECK(warren_req_header(req, count, NULL, NULL, NULL, NULL) == -1);
    if (warren_req_header_get(req, "content-type", &vlen) != NULL)
        CHECK(count > 0);
}

static int handler(warren_req_t *req, void *data)
{
    static unsigned char big[BIG_WRITE];
    unsigned char buf[READ_BUF], echo[ECHO_MAX];
    size_t kept = 0;
    ssize_t n;

    (void) data;
    check_head(req);
    while ((n = warren_read(req, buf, sizeof(buf))) > 0) {
        CHECK((size_t) n <= sizeof(buf));
        if (kept < sizeof(echo)) {
            size_t k = (size_t) n < sizeof(echo) - kept
                       ? (size_t) n : sizeof(echo) - kept;
            memcpy(echo + kept, buf, k);
            kept += k;
        }
    }
    if (n < 0)
        return -1;
    if (warren_response_init(req, 200, 1) < 0
        || warren_response_add_header(req, "X-Len", 5, "1", 1) < 0
        || warren_write(req, echo, kept) < 0)
        return -1;
    if (kept > 0 && echo[0] == 'B') /* a big answer: waits for WINDOWs */
        return warren_write(req, big, sizeof(big));
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    msgs_t m = { 0 };
    router_t r;
    pthread_t th;
    warren_ctx_t *ctx;
    int sv[2];

    split(&m, data, size);
    CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0);
    ctx = warren_init_fd(sv[1]);
    CHECK(ctx != NULL);
    r = (router_t) { .fd = sv[0], .m = &m };
    CHECK(pthread_create(&th, NULL, router_main, &r) == 0);
    /* Ends with 0 at the router's close, or -1 at a protocol error. */
    (void) warren_run(ctx, handler, NULL);
    CHECK(warren_error(ctx) != NULL);
    warren_done(ctx);
    pthread_join(th, NULL);
    close(sv[0]);
    free(m.buf);
    return 0;
}
