/* router/worker_proto against libwarren: what the router encodes is what an
 * application reads, and what it answers is what the router decodes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "lib/proto.h"
#include "router/worker_proto.h"
#include "warren.h"

#define S(x) { x, sizeof(x) - 1 }

static void send_msg(int fd, uint16_t type, uint32_t stream, const void *p, size_t n)
{
    char buf[sizeof(wr_app_hdr_t) + WR_APP_MAX_PAYLOAD];
    wr_app_hdr_t h = { .type = type, .stream = stream, .len = (uint32_t) n };

    memcpy(buf, &h, sizeof(h));
    if (n)
        memcpy(buf + sizeof(h), p, n);
    assert_int_equal(send(fd, buf, sizeof(h) + n, 0), (ssize_t) (sizeof(h) + n));
}

static ssize_t recv_msg(int fd, wr_app_hdr_t *h, char *payload, size_t cap)
{
    char buf[sizeof(wr_app_hdr_t) + WR_APP_MAX_PAYLOAD];
    ssize_t n = recv(fd, buf, sizeof(buf), 0);

    assert_true(n >= (ssize_t) sizeof(*h));
    memcpy(h, buf, sizeof(*h));
    assert_true(h->len <= cap);
    memcpy(payload, buf + sizeof(*h), h->len);
    return (ssize_t) h->len;
}

/* A worker context on one end of a socketpair (*peer: the router's end),
 * fed head as one request with no body: the request it accepts. */
static warren_req_t *accept_head(const wr_buf_t *head, warren_ctx_t **ctx, int *peer)
{
    int sv[2];
    wr_app_hdr_t h;
    char payload[WR_APP_MAX_PAYLOAD];
    warren_req_t *req;

    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    *ctx = warren_init_fd(sv[1]);
    assert_non_null(*ctx);
    recv_msg(sv[0], &h, payload, sizeof(payload));
    assert_int_equal(h.type, WR_APP_HELLO);
    send_msg(sv[0], WR_APP_REQ_HEAD, 1, head->p, head->n);
    send_msg(sv[0], WR_APP_REQ_END, 1, NULL, 0);
    req = warren_accept(*ctx);
    assert_non_null(req);
    *peer = sv[0];
    return req;
}

static void check(const char *got, size_t len, const char *want)
{
    assert_int_equal(len, strlen(want));
    assert_memory_equal(got, want, len);
}

static void test_round_trip(void **state)
{
    static const wr_http_field_t fields[] = {
        { "Host", 4, "example.com:8080", 16 },
        { "X-Two", 5, "a", 1 },
        { "x-two", 5, "b", 1 },
    };
    struct sockaddr_in peer = { .sin_family = AF_INET, .sin_port = htons(40001) };
    struct sockaddr_in6 local = { .sin6_family = AF_INET6, .sin6_port = htons(8080) };
    wr_req_view_t v;
    wr_buf_t head = { 0 };
    int sv[2], status;
    wr_app_hdr_t h;
    char payload[WR_APP_MAX_PAYLOAD];
    wr_http_field_t got[4];
    const char *s, *name, *value;
    size_t n, nl, vl;

    inet_pton(AF_INET, "192.0.2.7", &peer.sin_addr);
    inet_pton(AF_INET6, "::1", &local.sin6_addr);
    memset(&v, 0, sizeof(v));
    v.method = (wr_str_t) S("POST");
    v.request_uri = (wr_str_t) S("/a%20b/../c?x=1");
    v.uri = (wr_str_t) S("/c");
    v.query = (wr_str_t) S("x=1");
    v.host = (wr_str_t) S("example.com:8080");
    v.fields = fields;
    v.nfields = 3;
    v.tls = 1;
    v.remote = (const struct sockaddr *) &peer;
    v.local = (const struct sockaddr *) &local;
    assert_int_equal(wr_worker_encode_head(&head, &v, "HTTP/1.1", "admin"), 0);

    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    warren_ctx_t *ctx = warren_init_fd(sv[1]);
    assert_non_null(ctx);
    recv_msg(sv[0], &h, payload, sizeof(payload));
    assert_int_equal(h.type, WR_APP_HELLO);

    send_msg(sv[0], WR_APP_REQ_HEAD, 1, head.p, head.n);
    send_msg(sv[0], WR_APP_REQ_END, 1, NULL, 0);
    warren_req_t *req = warren_accept(ctx);
    assert_non_null(req);
    s = warren_req_method(req, &n);            check(s, n, "POST");
    s = warren_req_target(req, &n);            check(s, n, "/a%20b/../c?x=1");
    s = warren_req_path(req, &n);              check(s, n, "/c");
    s = warren_req_query(req, &n);             check(s, n, "x=1");
    s = warren_req_version(req, &n);           check(s, n, "HTTP/1.1");
    s = warren_req_remote_addr(req, &n);       check(s, n, "192.0.2.7");
    s = warren_req_remote_port(req, &n);       check(s, n, "40001");
    s = warren_req_local_addr(req, &n);        check(s, n, "::1");
    s = warren_req_local_port(req, &n);        check(s, n, "8080");
    s = warren_req_server_name(req, &n);       check(s, n, "example.com");
    s = warren_req_scheme(req, &n);            check(s, n, "https");
    s = warren_req_target_name(req, &n);       check(s, n, "admin");
    assert_int_equal(warren_req_header_count(req), 3);
    assert_int_equal(warren_req_header(req, 2, &name, &nl, &value, &vl), 0);
    check(name, nl, "x-two");
    check(value, vl, "b");

    assert_int_equal(warren_response_init(req, 201, 2), 0);
    assert_int_equal(warren_response_add_header(req, "Content-Type", 12, "text/plain", 10), 0);
    assert_int_equal(warren_response_add_header(req, "X-App", 5, "yes", 3), 0);
    assert_int_equal(warren_response_send_head(req), 0);
    n = (size_t) recv_msg(sv[0], &h, payload, sizeof(payload));
    assert_int_equal(h.type, WR_APP_RESP_HEAD);
    assert_int_equal(wr_worker_decode_resp_head(payload, n, &status, got, 4), 2);
    assert_int_equal(status, 201);
    check(got[0].name, got[0].name_len, "Content-Type");
    check(got[1].value, got[1].value_len, "yes");
    /* A head with more fields than the caller takes is refused. */
    assert_int_equal(wr_worker_decode_resp_head(payload, n, &status, got, 1), -1);

    warren_finish(req);
    warren_done(ctx);
    close(sv[0]);
    wr_buf_free(&head);
}

/* settings.telemetry: the worker gets the request's span as traceparent,
 * in place of the client's. */
static void test_traceparent_replaced(void **state)
{
    static const wr_http_field_t fields[] = {
        { "TraceParent", 11, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", 55 },
        { "X-One", 5, "1", 1 },
    };
    static const char mine[] = "00-0af7651916cd43dd8448eb211c80319c-00f067aa0ba902b7-01";
    struct sockaddr_in addr = { .sin_family = AF_INET };
    wr_req_view_t v;
    wr_buf_t head = { 0 };
    warren_ctx_t *ctx;
    warren_req_t *req;
    int peer;
    const char *name, *value;
    size_t nl, vl;

    memset(&v, 0, sizeof(v));
    v.method = (wr_str_t) S("GET");
    v.request_uri = v.uri = (wr_str_t) S("/");
    v.fields = fields;
    v.nfields = 2;
    v.remote = v.local = (const struct sockaddr *) &addr;
    v.traceparent = mine;
    assert_int_equal(wr_worker_encode_head(&head, &v, "HTTP/1.1", NULL), 0);
    req = accept_head(&head, &ctx, &peer);
    assert_int_equal(warren_req_header_count(req), 2);
    assert_int_equal(warren_req_header(req, 0, &name, &nl, &value, &vl), 0);
    check(name, nl, "X-One");
    assert_int_equal(warren_req_header(req, 1, &name, &nl, &value, &vl), 0);
    check(name, nl, "traceparent");
    check(value, vl, mine);
    warren_finish(req);
    warren_done(ctx);
    close(peer);
    wr_buf_free(&head);
}

static void test_decode_rejects(void **state)
{
    char buf[64];
    uint32_t v[2] = { 99, 0 };
    wr_http_field_t f[2];
    int status;

    memcpy(buf, v, sizeof(v));
    assert_int_equal(wr_worker_decode_resp_head(buf, sizeof(v), &status, f, 2), -1);
    v[0] = 200;
    memcpy(buf, v, sizeof(v));
    assert_int_equal(wr_worker_decode_resp_head(buf, sizeof(v), &status, f, 2), 0);
    assert_int_equal(wr_worker_decode_resp_head(buf, sizeof(v) + 1, &status, f, 2), -1);
    assert_int_equal(wr_worker_decode_resp_head(buf, 3, &status, f, 2), -1);
    /* One field whose value carries a CR: refused. */
    uint32_t one[2] = { 200, 1 }, len = 1;
    size_t at = 0;
    memcpy(buf + at, one, sizeof(one)); at += sizeof(one);
    memcpy(buf + at, &len, 4); at += 4; buf[at++] = 'X';
    memcpy(buf + at, &len, 4); at += 4; buf[at++] = '\r';
    assert_int_equal(wr_worker_decode_resp_head(buf, at, &status, f, 2), -1);
    buf[at - 1] = 'v';
    assert_int_equal(wr_worker_decode_resp_head(buf, at, &status, f, 2), 1);
}

/* A RESP_HEAD with WR_APP_F_BODY: the head is a prefix, body bytes follow. */
static void test_decode_prefix(void **state)
{
    char buf[64];
    uint32_t one[2] = { 203, 1 }, len = 1;
    size_t at = 0, used = 0;
    wr_http_field_t f[2];
    int status = 0;

    memcpy(buf + at, one, sizeof(one)); at += sizeof(one);
    memcpy(buf + at, &len, 4); at += 4; buf[at++] = 'X';
    memcpy(buf + at, &len, 4); at += 4; buf[at++] = 'v';
    memcpy(buf + at, "body", 4);
    assert_int_equal(wr_worker_decode_resp_head_prefix(buf, at + 4, &status, f, 2,
                                                       &used), 1);
    assert_int_equal(status, 203);
    assert_int_equal(used, at);
    /* The whole-payload decoder refuses the same bytes. */
    assert_int_equal(wr_worker_decode_resp_head(buf, at + 4, &status, f, 2), -1);
    /* A head cut short is refused either way. */
    assert_int_equal(wr_worker_decode_resp_head_prefix(buf, at - 1, &status, f, 2,
                                                       &used), -1);
}

static void test_encode_too_large(void **state)
{
    static char big[WR_APP_MAX_PAYLOAD];
    wr_http_field_t f = { "X-Big", 5, big, sizeof(big) };
    wr_req_view_t v;
    wr_buf_t out = { 0 };

    memset(big, 'a', sizeof(big));
    memset(&v, 0, sizeof(v));
    v.method = (wr_str_t) S("GET");
    v.fields = &f;
    v.nfields = 1;
    assert_int_equal(wr_worker_encode_head(&out, &v, "HTTP/1.1", NULL), -1);
    assert_int_equal(out.n, 0);
    wr_buf_free(&out);
}

/* chunked_transform: the head a worker reads has a length instead of the
 * chunked framing; the other fields and their order stay. */
static void test_head_length(void **state)
{
    static const wr_http_field_t fields[] = {
        { "Host", 4, "h", 1 },
        { "transfer-encoding", 17, "chunked", 7 },
        { "X-A", 3, "1", 1 },
        { "Content-Length", 14, "5", 1 },
    };
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(1) };
    wr_req_view_t v;
    wr_buf_t head = { 0 };
    warren_ctx_t *ctx;
    warren_req_t *req;
    int peer;
    const char *name, *value;
    size_t nl, vl;

    memset(&v, 0, sizeof(v));
    v.method = (wr_str_t) S("POST");
    v.fields = fields;
    v.nfields = 4;
    v.remote = v.local = (const struct sockaddr *) &addr;
    assert_int_equal(wr_worker_encode_head(&head, &v, "HTTP/1.1", NULL), 0);
    assert_int_equal(wr_worker_head_length(&head, 1234567890123LL), 0);

    req = accept_head(&head, &ctx, &peer);
    assert_int_equal(warren_req_header_count(req), 3);
    assert_int_equal(warren_req_header(req, 0, &name, &nl, &value, &vl), 0);
    check(name, nl, "Host");
    assert_int_equal(warren_req_header(req, 1, &name, &nl, &value, &vl), 0);
    check(name, nl, "X-A");
    assert_int_equal(warren_req_header(req, 2, &name, &nl, &value, &vl), 0);
    check(name, nl, "Content-Length");
    check(value, vl, "1234567890123");
    warren_finish(req);
    warren_done(ctx);
    close(peer);

    /* A truncated head is refused and left as it was. */
    head.n -= 3;
    size_t before = head.n;
    assert_int_equal(wr_worker_head_length(&head, 1), -1);
    assert_int_equal(head.n, before);
    wr_buf_free(&head);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_traceparent_replaced),
        cmocka_unit_test(test_decode_rejects),
        cmocka_unit_test(test_decode_prefix),
        cmocka_unit_test(test_encode_too_large),
        cmocka_unit_test(test_head_length),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
