/* JSON parsing with limits, error locations, error JSON, and the C views
 * (listeners, settings) of a configuration. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "conf/conf.h"

static json_t *
parse(const char *text, size_t len, wr_conf_error_t *err)
{
    wr_conf_error_init(err);
    return wr_conf_parse(text, len, err);
}

static void
expect_invalid(const char *text, size_t len, long line, long column,
               const char *fragment)
{
    wr_conf_error_t err;

    assert_null(parse(text, len, &err));
    assert_int_equal(err.status, 400);
    assert_string_equal(err.error, "Invalid JSON.");
    assert_null(err.path);
    assert_non_null(err.detail);
    if (fragment != NULL && strstr(err.detail, fragment) == NULL) {
        fail_msg("detail \"%s\" lacks \"%s\"", err.detail, fragment);
    }
    assert_true(err.offset >= 0 && (size_t) err.offset <= len);
    if (line > 0) {
        assert_int_equal(err.line, line);
    }
    if (column > 0) {
        assert_int_equal(err.column, column);
    }
    assert_int_equal(err.detail[strlen(err.detail) - 1], '.');
    assert_true(err.line >= 1 && err.column >= 1);
    wr_conf_error_clear(&err);
}

static char *
repeat(const char *open, int n_open, const char *mid, const char *close,
       int n_close)
{
    size_t lo = strlen(open), lm = strlen(mid), lc = strlen(close);
    char  *s = malloc(lo * (size_t) n_open + lm + lc * (size_t) n_close + 1), *p;
    int    i;

    assert_non_null(s);
    p = s;
    for (i = 0; i < n_open; i++, p += lo) {
        memcpy(p, open, lo);
    }
    memcpy(p, mid, lm);
    p += lm;
    for (i = 0; i < n_close; i++, p += lc) {
        memcpy(p, close, lc);
    }
    *p = '\0';
    return s;
}

static void
test_any_value(void **state)
{
    static const char *const ok[] = {
        "1", "\"s\"", "null", "true", "[]", "{}", " {\"a\": [1, 2.5, \"x\"]} ",
    };
    wr_conf_error_t err;
    size_t          i;

    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        json_t *v = parse(ok[i], strlen(ok[i]), &err);

        assert_non_null(v);
        json_decref(v);
        wr_conf_error_clear(&err);
    }
}

static void
test_invalid_locations(void **state)
{
    static const char body[] = "{\n  \"listeners\": {},\n  \"routes\": [,]\n}";

    expect_invalid(body, strlen(body), 3, 0, NULL);
    expect_invalid("", 0, 0, 0, NULL);
    expect_invalid("{", 1, 1, 0, NULL);
    expect_invalid("nul", 3, 1, 0, NULL);
    expect_invalid("{\"a\": 1} x", 10, 1, 0, NULL);
    expect_invalid("{\"a\": 01}", 9, 1, 0, NULL);
    expect_invalid("{\"a\":\"\\x\"}", 10, 1, 0, NULL);
    expect_invalid("{\"a\" 1}", 7, 1, 0, NULL);
    expect_invalid("\xff", 1, 1, 0, NULL);
    expect_invalid("\"a\\u0000b\"", 10, 1, 0, NULL);  /* NUL in a string */
    expect_invalid("[1]\0", 4, 1, 0, NULL);           /* NUL after the value */
}

static void
test_duplicate_keys(void **state)
{
    static const char dup[] = "{\"a\": 1, \"a\": 2}";

    expect_invalid(dup, strlen(dup), 1, 0, "Duplicate");
}

/* Detail is jansson's reason made a sentence: capital letter, final period. */
static void
test_detail_sentence(void **state)
{
    wr_conf_error_t err;

    assert_null(parse("{", 1, &err));
    assert_true(err.detail[0] >= 'A' && err.detail[0] <= 'Z');
    wr_conf_error_clear(&err);
}

static void
test_depth_limit(void **state)
{
    wr_conf_error_t err;
    char           *ok = repeat("[", WR_CONF_MAX_DEPTH, "", "]", WR_CONF_MAX_DEPTH);
    char           *deep = repeat("[", WR_CONF_MAX_DEPTH + 1, "", "]",
                                  WR_CONF_MAX_DEPTH + 1);
    char           *obj = repeat("{\"a\":", WR_CONF_MAX_DEPTH + 1, "1", "}",
                                 WR_CONF_MAX_DEPTH + 1);
    char           *huge = repeat("[", 1000000, "", "", 0);
    json_t         *v;

    v = parse(ok, strlen(ok), &err);
    assert_non_null(v);
    json_decref(v);
    wr_conf_error_clear(&err);

    /* The 65th "[" is at offset 64, column 65. */
    expect_invalid(deep, strlen(deep), 1, WR_CONF_MAX_DEPTH + 1, "nested");
    assert_null(parse(deep, strlen(deep), &err));
    assert_int_equal(err.offset, WR_CONF_MAX_DEPTH);
    wr_conf_error_clear(&err);

    expect_invalid(obj, strlen(obj), 1, 0, "nested");
    /* Never reaches jansson's recursion, however deep. */
    expect_invalid(huge, strlen(huge), 1, 0, "nested");
    free(ok);
    free(deep);
    free(obj);
    free(huge);
}

/* Brackets inside strings (escaped quotes included) are not nesting. */
static void
test_depth_ignores_strings(void **state)
{
    wr_conf_error_t err;
    char           *inner = repeat("[{", 200, "\\\"", "", 0);
    char           *text = malloc(strlen(inner) + 8);
    json_t         *v;

    assert_non_null(text);
    strcpy(text, "[\"");
    strcat(text, inner);
    strcat(text, "\"]");
    v = parse(text, strlen(text), &err);
    assert_non_null(v);
    assert_int_equal(json_string_length(json_array_get(v, 0)), 401);
    json_decref(v);
    wr_conf_error_clear(&err);
    free(inner);
    free(text);
}

static char *
array_of_zeros(size_t n)
{
    char  *s = malloc(2 * n + 2), *p = s;
    size_t i;

    assert_non_null(s);
    *p++ = '[';
    for (i = 0; i < n; i++) {
        *p++ = '0';
        *p++ = i + 1 < n ? ',' : ']';
    }
    *p = '\0';
    return s;
}

static void
test_element_limit(void **state)
{
    wr_conf_error_t err;
    /* The array itself is a value: n zeros make n + 1 values. */
    char           *ok = array_of_zeros(WR_CONF_MAX_ELEMENTS - 1);
    char           *over = array_of_zeros(WR_CONF_MAX_ELEMENTS);
    json_t         *v;

    v = parse(ok, strlen(ok), &err);
    assert_non_null(v);
    assert_int_equal(json_array_size(v), WR_CONF_MAX_ELEMENTS - 1);
    json_decref(v);
    wr_conf_error_clear(&err);
    expect_invalid(over, strlen(over), 1, 0, "values");
    free(ok);
    free(over);
}

static void
test_element_limit_objects(void **state)
{
    wr_conf_error_t err;
    /* {"a":[]} x n in an array: 1 + n objects + n arrays (empty: no values). */
    size_t          n = WR_CONF_MAX_ELEMENTS / 2, i;
    char           *s = malloc(n * 10 + 4), *p = s;
    json_t         *v;

    assert_non_null(s);
    *p++ = '[';
    for (i = 0; i < n; i++) {
        memcpy(p, "{\"a\":[]},", 9);
        p += 9;
    }
    p[-1] = ']';
    *p = '\0';
    v = parse(s, strlen(s), &err);
    assert_null(v);                 /* 1 + 50000 + 50000 > 100000 */
    assert_non_null(strstr(err.detail, "values"));
    wr_conf_error_clear(&err);
    free(s);
}

/* ---- error JSON */

static void
test_error_json(void **state)
{
    wr_conf_error_t err;
    json_t         *j, *want;

    wr_conf_error_init(&err);
    assert_int_equal(err.offset, -1);
    wr_conf_error_set(&err, 404, "Value doesn't exist.", NULL, NULL);
    j = wr_conf_error_json(&err);
    want = json_pack("{s:s}", "error", "Value doesn't exist.");
    assert_true(json_equal(j, want));
    json_decref(j);
    json_decref(want);

    assert_int_equal(wr_conf_error_set(&err, 400, "Invalid configuration.",
                                       "/a~1b", "Bad %d.", 5), -1);
    j = wr_conf_error_json(&err);
    want = json_pack("{s:s,s:s,s:{s:s}}", "error", "Invalid configuration.",
                     "detail", "Bad 5.", "location", "path", "/a~1b");
    assert_true(json_equal(j, want));
    json_decref(j);
    json_decref(want);
    wr_conf_error_clear(&err);

    assert_null(parse("[1,\n x]", 7, &err));
    j = wr_conf_error_json(&err);
    assert_string_equal(json_string_value(json_object_get(j, "error")),
                        "Invalid JSON.");
    assert_int_equal(json_integer_value(json_object_get(
        json_object_get(j, "location"), "line")), 2);
    assert_non_null(json_object_get(json_object_get(j, "location"), "offset"));
    assert_non_null(json_object_get(json_object_get(j, "location"), "column"));
    assert_null(json_object_get(j, "suggestion"));
    json_decref(j);
    wr_conf_error_clear(&err);
}

/* ---- C views */

static void
test_listeners(void **state)
{
    static const char text[] =
        "{\"listeners\": {\"*:8080\": {\"pass\": \"routes\", \"backlog\": 511},"
        " \"unix:/run/w.sock\": {\"pass\": \"routes\"},"
        " \"[::1]:80\": {\"pass\": \"routes\"}}}";
    wr_conf_error_t     err;
    wr_conf_listeners_t l;
    json_t             *root = parse(text, strlen(text), &err), *empty;

    assert_non_null(root);
    assert_int_equal(wr_conf_listeners(root, &l), 0);
    assert_int_equal(l.n, 3);
    assert_string_equal(l.addr[0], "*:8080");               /* document order */
    assert_string_equal(l.addr[1], "unix:/run/w.sock");
    assert_string_equal(l.addr[2], "[::1]:80");
    assert_int_equal(l.backlog[0], 511);
    assert_int_equal(l.backlog[1], -1);
    wr_conf_listeners_free(&l);
    assert_int_equal(l.n, 0);

    empty = json_object();
    assert_int_equal(wr_conf_listeners(empty, &l), 0);
    assert_int_equal(l.n, 0);
    wr_conf_listeners_free(&l);
    json_decref(empty);
    json_decref(root);
}

static void
test_settings_defaults(void **state)
{
    wr_conf_settings_t s;
    json_t            *root = json_object();

    wr_conf_settings(root, &s);
    assert_int_equal(s.header_read_timeout, 30);
    assert_int_equal(s.body_read_timeout, 30);
    assert_int_equal(s.send_timeout, 30);
    assert_int_equal(s.idle_timeout, 180);
    assert_int_equal(s.body_buffer_size, 8192);
    assert_int_equal(s.max_body_size, 8388608);
    assert_int_equal(s.large_header_buffer_size, 8192);
    assert_int_equal(s.large_header_buffers, 4);
    assert_int_equal(s.discard_unsafe_fields, 1);
    assert_int_equal(s.log_route, 0);
    assert_int_equal(s.server_version, 1);
    assert_int_equal(s.chunked_transform, 0);
    assert_string_equal(s.body_temp_path, "");
    assert_int_equal(s.listen_threads, 0);
    wr_conf_settings(NULL, &s);
    assert_int_equal(s.idle_timeout, 180);
    json_decref(root);
}

static void
test_settings_values(void **state)
{
    static const char text[] =
        "{\"settings\": {\"listen_threads\": 3, \"http\": {"
        "\"header_read_timeout\": 5, \"body_read_timeout\": 6,"
        "\"send_timeout\": 7, \"idle_timeout\": 8, \"body_buffer_size\": 9,"
        "\"max_body_size\": 10000000000, \"large_header_buffer_size\": 2048,"
        "\"large_header_buffers\": 2, \"discard_unsafe_fields\": false,"
        "\"log_route\": true, \"server_version\": false,"
        "\"chunked_transform\": true, \"body_temp_path\": \"/var/tmp/b\"}}}";
    wr_conf_error_t    err;
    wr_conf_settings_t s;
    json_t            *root = parse(text, strlen(text), &err);

    assert_non_null(root);
    wr_conf_settings(root, &s);
    assert_int_equal(s.header_read_timeout, 5);
    assert_int_equal(s.body_read_timeout, 6);
    assert_int_equal(s.send_timeout, 7);
    assert_int_equal(s.idle_timeout, 8);
    assert_int_equal(s.body_buffer_size, 9);
    assert_int_equal(s.max_body_size, 10000000000L);
    assert_int_equal(s.large_header_buffer_size, 2048);
    assert_int_equal(s.large_header_buffers, 2);
    assert_int_equal(s.discard_unsafe_fields, 0);
    assert_int_equal(s.log_route, 1);
    assert_int_equal(s.server_version, 0);
    assert_int_equal(s.chunked_transform, 1);
    assert_string_equal(s.body_temp_path, "/var/tmp/b");
    assert_int_equal(s.listen_threads, 3);
    json_decref(root);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_any_value),
        cmocka_unit_test(test_invalid_locations),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_detail_sentence),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_depth_ignores_strings),
        cmocka_unit_test(test_element_limit),
        cmocka_unit_test(test_element_limit_objects),
        cmocka_unit_test(test_error_json),
        cmocka_unit_test(test_listeners),
        cmocka_unit_test(test_settings_defaults),
        cmocka_unit_test(test_settings_values),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
