/*
 * Response head parser (the proxy's): framing fields, keep-alive, every
 * rejection, the size bound, and "need more" for every prefix of a valid head.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "http/http.h"

#define S(lit) lit, sizeof(lit) - 1
#define MAX 8192

static wr_http_response_t r;

static long parse(const char *s, size_t n)
{
    return wr_http_parse_response(&r, s, n, MAX);
}

static void test_content_length(void **st)
{
    static const char h[] = "HTTP/1.1 200 OK\r\nContent-Length: 12\r\nX-A:  b \r\n\r\nbody";

    assert_int_equal(parse(S(h)), sizeof(h) - 1 - 4);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.version, WR_HTTP_11);
    assert_int_equal(r.content_length, 12);
    assert_false(r.chunked);
    assert_true(r.keep_alive);
    assert_int_equal(r.nfields, 2);
    assert_int_equal(r.fields[1].value_len, 1);
    assert_memory_equal(r.fields[1].value, "b", 1);
}

static void test_chunked_alone_frames_a_body(void **st)
{
    assert_true(parse(S("HTTP/1.1 201 Created\r\nTransfer-Encoding: Chunked\r\n\r\n")) > 0);
    assert_true(r.chunked);
    assert_int_equal(r.content_length, -1);
    /* with a length too: which one frames the body is ambiguous */
    assert_int_equal(parse(S("HTTP/1.1 201 Created\r\nContent-Length: 5\r\n"
                             "Transfer-Encoding: chunked\r\n\r\n")), -1);
    assert_int_equal(parse(S("HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n"
                             "Content-Length: 5\r\n\r\n")), -1);
    /* another coding would be lost on the way: refused */
    assert_int_equal(parse(S("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n")), -1);
    assert_int_equal(parse(S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n")), -1);
    assert_int_equal(parse(S("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n")), -1);
    assert_int_equal(parse(S("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                             "Transfer-Encoding: chunked\r\n\r\n")), -1);
    assert_int_equal(parse(S("HTTP/1.1 200 OK\r\nTransfer-Encoding: \r\n\r\n")), -1);
}

static void test_keep_alive(void **st)
{
    assert_true(parse(S("HTTP/1.0 200 OK\r\n\r\n")) > 0);
    assert_false(r.keep_alive);
    assert_true(parse(S("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n\r\n")) > 0);
    assert_true(r.keep_alive);
    assert_true(parse(S("HTTP/1.1 200 OK\r\nConnection: foo, close\r\n\r\n")) > 0);
    assert_false(r.keep_alive);
}

static void test_bare_lf_and_no_reason(void **st)
{
    assert_int_equal(parse(S("HTTP/1.1 204\nA: b\n\n")), 19);
    assert_int_equal(r.status, 204);
    assert_int_equal(r.nfields, 1);
}

static void test_malformed(void **st)
{
    static const char *const bad[] = {
        "HTTP/2 200 OK\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/1.1 099 OK\r\n\r\n",
        "ICY 200 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nA : b\r\n\r\n",
        "HTTP/1.1 200 OK\r\n: b\r\n\r\n",
        "HTTP/1.1 200 OK\r\nA b\r\n\r\n",
        "HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n",
        "HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n",
        "HTTP/1.1 200 OK\r\nA: b\x01\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse(bad[i], strlen(bad[i])) != -1)
            fail_msg("accepted: %s", bad[i]);
    }
}

static void test_too_large(void **st)
{
    char *h = malloc(MAX * 2);
    size_t n = 0;

    n += (size_t) sprintf(h, "HTTP/1.1 200 OK\r\n");
    while (n < MAX + 100)
        n += (size_t) sprintf(h + n, "X-Filler: 0123456789\r\n");
    /* incomplete but already over the bound: -2 without waiting for more */
    assert_int_equal(wr_http_parse_response(&r, h, n, MAX), -2);
    free(h);

    char many[WR_HTTP_MAX_FIELDS * 8 + 64];
    n = (size_t) sprintf(many, "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i <= WR_HTTP_MAX_FIELDS; i++)
        n += (size_t) sprintf(many + n, "A: b\r\n");
    n += (size_t) sprintf(many + n, "\r\n");
    assert_int_equal(wr_http_parse_response(&r, many, n, sizeof(many)), -2);
}

static void test_prefixes_need_more(void **st)
{
    static const char h[] = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nA: b\r\n\r\n";

    for (size_t n = 0; n < sizeof(h) - 1; n++)
        if (parse(h, n) != 0)
            fail_msg("prefix of %zu bytes gave %ld", n, parse(h, n));
    assert_int_equal(parse(S(h)), sizeof(h) - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_length),
        cmocka_unit_test(test_chunked_alone_frames_a_body),
        cmocka_unit_test(test_keep_alive),
        cmocka_unit_test(test_bare_lf_and_no_reason),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_prefixes_need_more),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
