/*
 * Chunked body decoder: valid bodies, every rejection with its status, and the
 * same result for every split of the input into two calls and for one byte
 * per call.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "http/http.h"

#define S(lit) lit, sizeof(lit) - 1
#define NO_LIMIT (-1LL)

typedef struct {
    int    rc;          /* last return */
    size_t consumed;    /* total bytes consumed */
    size_t out_len;     /* payload bytes */
    char   out[4096];
} result_t;

/* Feed in[0..n) split at the given cut points (ascending, < n); in place on a copy. */
static void decode_cuts(const char *in, size_t n, long long max, const size_t *cuts,
                        size_t ncuts, result_t *res)
{
    char *b = malloc(n ? n : 1);
    wr_http_chunked_t c;
    size_t from = 0;

    memcpy(b, in, n);
    wr_http_chunked_init(&c, max);
    memset(res, 0, sizeof(*res));
    for (size_t i = 0; i <= ncuts; i++) {
        size_t to = i < ncuts ? cuts[i] : n, used, out;
        res->rc = wr_http_chunked_decode(&c, b + from, to - from, &used, &out);
        assert_true(used <= to - from);
        assert_true(out <= used);
        assert_true(res->out_len + out <= sizeof(res->out));
        memcpy(res->out + res->out_len, b + from, out);
        res->out_len += out;
        res->consumed += used;
        if (res->rc != 0)
            break;
        assert_int_equal(used, to - from);      /* "need more" consumes everything */
        from = to;
    }
    free(b);
}

static void assert_same(const result_t *a, const result_t *b)
{
    assert_int_equal(a->rc, b->rc);
    assert_int_equal(a->consumed, b->consumed);
    if (a->rc < 0)
        return;          /* payload before an error is not meaningful */
    assert_int_equal(a->out_len, b->out_len);
    assert_memory_equal(a->out, b->out, a->out_len);
}

/* Decode whole, then at every split point and byte by byte: all must agree. */
static result_t decode(const char *in, size_t n, long long max)
{
    result_t whole, part;
    size_t cut;

    decode_cuts(in, n, max, NULL, 0, &whole);
    for (cut = 0; cut <= n; cut++) {
        decode_cuts(in, n, max, &cut, 1, &part);
        assert_same(&whole, &part);
    }
    size_t *every = malloc((n ? n : 1) * sizeof(*every));
    for (size_t i = 0; i < n; i++)
        every[i] = i;
    decode_cuts(in, n, max, every, n, &part);
    assert_same(&whole, &part);
    free(every);
    return whole;
}

static void expect_body(const char *in, size_t n, const char *payload, size_t consumed)
{
    result_t r = decode(in, n, NO_LIMIT);

    assert_int_equal(r.rc, 1);
    assert_int_equal(r.consumed, consumed);
    assert_int_equal(r.out_len, strlen(payload));
    assert_memory_equal(r.out, payload, r.out_len);
}

static void expect_error(const char *in, size_t n, long long max, int status)
{
    assert_int_equal(decode(in, n, max).rc, status);
}

static void test_simple(void **state)
{
    static const char in[] = "5\r\nhello\r\n0\r\n\r\n";
    expect_body(S(in), "hello", sizeof(in) - 1);
}

static void test_many_chunks(void **state)
{
    static const char in[] = "1\r\na\r\nA\r\n0123456789\r\n00010\r\n0123456789abcdef\r\n000\r\n\r\n";
    expect_body(S(in), "a01234567890123456789abcdef", sizeof(in) - 1);
}

static void test_empty_body(void **state)
{
    expect_body(S("0\r\n\r\n"), "", 5);
}

static void test_extensions(void **state)
{
    static const char in[] = "3;name=value;flag\r\nabc\r\n2 ; q=\"x;y\"\r\nde\r\n0;last\r\n\r\n";
    expect_body(S(in), "abcde", sizeof(in) - 1);
}

static void test_trailers(void **state)
{
    static const char in[] = "2\r\nhi\r\n0\r\nChecksum: abc\r\nX-Empty:\r\n\r\n";
    expect_body(S(in), "hi", sizeof(in) - 1);
}

static void test_pipelined_rest_untouched(void **state)
{
    static const char in[] = "3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
    char b[sizeof(in)];
    wr_http_chunked_t c;
    size_t used, out;

    memcpy(b, in, sizeof(in));
    wr_http_chunked_init(&c, NO_LIMIT);
    assert_int_equal(wr_http_chunked_decode(&c, b, sizeof(in) - 1, &used, &out), 1);
    assert_int_equal(used, 13);
    assert_int_equal(out, 3);
    assert_memory_equal(b, "abc", 3);
    assert_string_equal(b + used, "GET / HTTP/1.1\r\n");
    /* Done is sticky and consumes nothing more. */
    assert_int_equal(wr_http_chunked_decode(&c, b + used, 4, &used, &out), 1);
    assert_int_equal(used, 0);
    assert_int_equal(out, 0);
}

static void test_syntax_errors(void **state)
{
    static const char *const bad[] = {
        "\r\n",                          /* no size */
        "g\r\n",                         /* not hex */
        "-1\r\n",
        "0x5\r\nhello\r\n0\r\n\r\n",
        "5\nhello\r\n0\r\n\r\n",         /* bare LF after the size */
        "5\rhello",
        "5\r\nhello\n0\r\n\r\n",         /* bare LF after the data */
        "5\r\nhello0\r\n\r\n",           /* data longer than its size */
        "5 \r\nhello\r\n0\r\n\r\n",      /* whitespace without an extension */
        "5 x\r\nhello\r\n",
        "5;a\x01\r\nhello\r\n",          /* CTL in an extension */
        "5;a\nhello\r\n",
        "0\r\n\n",                       /* bare LF as the final line */
        "0\r\nX: y\n\r\n",
        "0\r\n y\r\n\r\n",               /* obs-fold in the trailer */
        "0\r\nX y\r\n\r\n",
        "0\r\nX: a\0\r\n\r\n",
        "0\r\n\rx",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t n = strlen(bad[i]) + (i == 16 ? 5 : 0);    /* case 16 holds a NUL */
        expect_error(bad[i], n, NO_LIMIT, -400);
    }
}

/* The failing byte is the last one consumed: decided as soon as it arrives. */
static void test_error_position(void **state)
{
    static const struct { const char *in; size_t at; } cases[] = {
        { "5\r\nhello\n0\r\n\r\n", 9 },     /* bare LF after the data */
        { "5\r\nhello0\r\n\r\n", 9 },        /* data longer than its size */
        { "5\nhello", 2 },
        { "0\r\nX y\r\n", 5 },
        { "0\r\n\n", 4 },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        result_t r = decode(cases[i].in, strlen(cases[i].in), NO_LIMIT);
        assert_int_equal(r.rc, -400);
        assert_int_equal(r.consumed, cases[i].at);
    }
}

static void test_size_overflow(void **state)
{
    expect_error(S("7fffffffffffffff\r\n"), NO_LIMIT, 0);             /* fits: needs data */
    expect_error(S("8000000000000000\r\n"), NO_LIMIT, -400);
    expect_error(S("ffffffffffffffffff\r\n"), NO_LIMIT, -400);
    expect_error(S("1\r\na\r\n7fffffffffffffff\r\n"), NO_LIMIT, -400); /* total overflows */
}

static void test_max_body(void **state)
{
    enum { MAX = 10 };
    assert_int_equal(decode(S("a\r\n0123456789\r\n0\r\n\r\n"), MAX).rc, 1);
    expect_error(S("b\r\n0123456789a\r\n0\r\n\r\n"), MAX, -413);
    expect_error(S("5\r\nhello\r\n6\r\nworld!\r\n0\r\n\r\n"), MAX, -413);
    expect_error(S("0000000000b"), MAX, -413);                        /* decided early */
    assert_int_equal(decode(S("0\r\n\r\n"), 0).rc, 1);
    expect_error(S("1\r\n"), 0, -413);
}

static void test_chunk_line_limit(void **state)
{
    static char b[WR_HTTP_CHUNK_LINE_MAX + 32];

    for (int extra = 0; extra <= 1; extra++) {
        /* "1;" + x... + "\r\n": the line is exactly WR_HTTP_CHUNK_LINE_MAX (+ extra) */
        size_t line = WR_HTTP_CHUNK_LINE_MAX + (size_t)extra;
        memcpy(b, "1;", 2);
        memset(b + 2, 'x', line - 4);
        memcpy(b + line - 2, "\r\nz\r\n0\r\n\r\n", 10);
        result_t r;
        decode_cuts(b, line + 8, NO_LIMIT, NULL, 0, &r);
        assert_int_equal(r.rc, extra ? -400 : 1);
    }
}

static void test_trailer_limit(void **state)
{
    static char b[WR_HTTP_TRAILER_MAX + 64];

    for (int extra = 0; extra <= 1; extra++) {
        /* trailer section incl. its final CRLF = WR_HTTP_TRAILER_MAX (+ extra) */
        size_t sect = WR_HTTP_TRAILER_MAX + (size_t)extra, n = 3;
        memcpy(b, "0\r\n", 3);
        memcpy(b + n, "X: ", 3);
        memset(b + n + 3, 'v', sect - 7);
        memcpy(b + n + sect - 4, "\r\n\r\n", 4);
        result_t r;
        decode_cuts(b, n + sect, NO_LIMIT, NULL, 0, &r);
        assert_int_equal(r.rc, extra ? -431 : 1);
    }
}

static void test_error_is_sticky(void **state)
{
    char b[] = "zz";
    wr_http_chunked_t c;
    size_t used, out;

    wr_http_chunked_init(&c, NO_LIMIT);
    assert_int_equal(wr_http_chunked_decode(&c, b, 2, &used, &out), -400);
    assert_int_equal(used, 1);
    assert_int_equal(wr_http_chunked_decode(&c, b, 2, &used, &out), -400);
    assert_int_equal(used, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple),
        cmocka_unit_test(test_many_chunks),
        cmocka_unit_test(test_empty_body),
        cmocka_unit_test(test_extensions),
        cmocka_unit_test(test_trailers),
        cmocka_unit_test(test_pipelined_rest_untouched),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_error_position),
        cmocka_unit_test(test_size_overflow),
        cmocka_unit_test(test_max_body),
        cmocka_unit_test(test_chunk_line_limit),
        cmocka_unit_test(test_trailer_limit),
        cmocka_unit_test(test_error_is_sticky),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
