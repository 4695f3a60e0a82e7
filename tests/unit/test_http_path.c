/* Path normalization and reason phrases. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "http/http.h"

/* Normalize a heap copy of exactly len bytes into a len + 1 buffer. */
static long normalize(const char *in, size_t len, char *res, size_t res_size)
{
    char *src = malloc(len ? len : 1), *out = malloc(len + 1);
    memcpy(src, in, len);
    long n = wr_http_normalize_path(src, len, out);
    if (n >= 0) {
        assert_true((size_t)n <= len);
        assert_int_equal(out[n], '\0');
        assert_true((size_t)n < res_size);
        memcpy(res, out, (size_t)n + 1);
    }
    free(src);
    free(out);
    return n;
}

static void test_normalize(void **state)
{
    static const struct { const char *in, *out; } cases[] = {
        { "/", "/" },
        { "/a/b", "/a/b" },
        { "/a/b/", "/a/b/" },
        { "//a///b//", "/a/b/" },
        { "/./a/./b/.", "/a/b/" },
        { "/a/b/../c", "/a/c" },
        { "/a/b/..", "/a/" },
        { "/a/..", "/" },
        { "/a/../", "/" },
        { "/a/.b/..c/...", "/a/.b/..c/..." },
        { "/%61%62c", "/abc" },
        { "/a%2Fb", "/a/b" },
        { "/a/%2e%2E/b", "/b" },
        { "/a/%2e/b", "/a/b" },
        { "/a%20b%7e", "/a b~" },
        { "/%C3%A9", "/\xc3\xa9" },
        { "/.", "/" },
        { "/a/b/%2e%2e/%2E%2e/c", "/c" },
    };
    char out[64];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        long n = normalize(cases[i].in, strlen(cases[i].in), out, sizeof(out));
        assert_int_equal(n, strlen(cases[i].out));
        assert_string_equal(out, cases[i].out);
    }
}

static void test_normalize_rejects(void **state)
{
    static const char *const bad[] = {
        "", "a/b", "*", "/..", "/../a", "/a/../..", "/a/%2e%2e/%2e%2e",
        "/%2e%2e", "/%2e%2e%2fetc", "/a%", "/a%2", "/a%zz", "/a%0g", "/a%00b", "/a%2F%2e%2e%2f%2E%2E",
    };
    char out[64];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(normalize(bad[i], strlen(bad[i]), out, sizeof(out)), -1);
}

static void test_normalize_raw_nul(void **state)
{
    char out[8];
    assert_int_equal(normalize("/a\0b", 4, out, sizeof(out)), -1);
}

static void test_reason(void **state)
{
    assert_string_equal(wr_http_reason(200), "OK");
    assert_string_equal(wr_http_reason(404), "Not Found");
    assert_string_equal(wr_http_reason(414), "URI Too Long");
    assert_string_equal(wr_http_reason(431), "Request Header Fields Too Large");
    assert_string_equal(wr_http_reason(505), "HTTP Version Not Supported");
    assert_string_equal(wr_http_reason(599), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalize),
        cmocka_unit_test(test_normalize_rejects),
        cmocka_unit_test(test_normalize_raw_nul),
        cmocka_unit_test(test_reason),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
