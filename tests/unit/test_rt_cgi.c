/*
 * The CGI names of request header fields (src/runtime/common/cgi.c), as
 * every language runtime builds its environ / env from them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "runtime/common/cgi.h"

static void expect_key(const char *name, const char *want)
{
    char key[WR_RT_CGI_KEY_SIZE(64)];
    size_t n = wr_rt_cgi_key(key, name, strlen(name));

    assert_string_equal(key, want);
    assert_int_equal(n, strlen(want));
}

static void test_header_keys(void **state)
{
    (void) state;
    expect_key("Host", "HTTP_HOST");
    expect_key("x-forwarded-for", "HTTP_X_FORWARDED_FOR");
    expect_key("X-Mixed-CASE-1", "HTTP_X_MIXED_CASE_1");
    expect_key("Accept_Encoding", "HTTP_ACCEPT_ENCODING");
    expect_key("", "HTTP_");
}

static void test_content_fields_have_their_own_keys(void **state)
{
    (void) state;
    expect_key("Content-Type", "CONTENT_TYPE");
    expect_key("content-length", "CONTENT_LENGTH");
    expect_key("CONTENT-TYPE", "CONTENT_TYPE");
    /* Only the whole name: a longer one is an ordinary field. */
    expect_key("Content-Types", "HTTP_CONTENT_TYPES");
    expect_key("Content-Encoding", "HTTP_CONTENT_ENCODING");
}

static void test_key_uses_only_the_name_bytes(void **state)
{
    char key[WR_RT_CGI_KEY_SIZE(6)];

    (void) state;
    /* name is not NUL-ended: "Cookie: x" cut at the name */
    assert_int_equal(wr_rt_cgi_key(key, "Cookie: x", 6), strlen("HTTP_COOKIE"));
    assert_string_equal(key, "HTTP_COOKIE");
}

static void test_field_is(void **state)
{
    (void) state;
    assert_true(wr_rt_field_is("cookie", 6, "Cookie"));
    assert_true(wr_rt_field_is("COOKIE: a", 6, "Cookie"));
    assert_false(wr_rt_field_is("Cookies", 7, "Cookie"));
    assert_false(wr_rt_field_is("Cooki", 5, "Cookie"));
}

static void expect_server_name(const char *host, const char *want)
{
    char out[WR_RT_SERVER_NAME_SIZE(64)];

    assert_int_equal(wr_rt_server_name(out, host, strlen(host)), strlen(want));
    assert_string_equal(out, want);
}

static void test_server_name(void **state)
{
    (void) state;
    expect_server_name("example.com", "example.com");
    expect_server_name("127.0.0.1", "127.0.0.1");
    expect_server_name("::1", "[::1]");
    expect_server_name("2001:db8::7", "[2001:db8::7]");
    expect_server_name("[::1]", "[::1]");       /* never twice */
    expect_server_name("", "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_keys),
        cmocka_unit_test(test_content_fields_have_their_own_keys),
        cmocka_unit_test(test_key_uses_only_the_name_bytes),
        cmocka_unit_test(test_field_is),
        cmocka_unit_test(test_server_name),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
