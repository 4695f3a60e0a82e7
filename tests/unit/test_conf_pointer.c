/* Configuration paths (parse, percent-decoding, get) and PUT/POST/DELETE. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "conf/conf.h"

static json_t *
load(const char *text)
{
    json_error_t e;
    json_t      *v = json_loads(text, JSON_DECODE_ANY, &e);

    assert_non_null(v);
    return v;
}

static void
parse_ok(const char *path, size_t want_n, const char *const *want)
{
    wr_ptr_t        p;
    wr_conf_error_t err;
    size_t          i;

    wr_conf_error_init(&err);
    assert_int_equal(wr_ptr_parse(path, strlen(path), &p, &err), 0);
    assert_int_equal(p.n, want_n);
    for (i = 0; i < want_n; i++) {
        assert_string_equal(p.seg[i], want[i]);
    }
    wr_ptr_free(&p);
    wr_conf_error_clear(&err);
}

static void
parse_bad(const char *path, size_t len, const char *fragment)
{
    wr_ptr_t        p;
    wr_conf_error_t err;

    wr_conf_error_init(&err);
    assert_int_equal(wr_ptr_parse(path, len, &p, &err), -1);
    assert_int_equal(err.status, 400);
    assert_non_null(err.detail);
    assert_non_null(strstr(err.detail, fragment));
    assert_int_equal(p.n, 0);
    assert_null(p.seg);
    wr_conf_error_clear(&err);
}

static void
test_parse_root(void **state)
{
    parse_ok("", 0, NULL);
    parse_ok("/", 0, NULL);
}

static void
test_parse_segments(void **state)
{
    parse_ok("/listeners", 1, (const char *[]) { "listeners" });
    parse_ok("/a/b/0", 3, (const char *[]) { "a", "b", "0" });
    parse_ok("a/b", 2, (const char *[]) { "a", "b" });            /* no lead "/" */
    parse_ok("/a/b/", 2, (const char *[]) { "a", "b" });          /* trailing "/" */
    parse_ok("/a//b", 3, (const char *[]) { "a", "", "b" });      /* empty key */
    parse_ok("/a~1b~0", 1, (const char *[]) { "a~1b~0" });        /* ~ is literal */
}

static void
test_parse_percent(void **state)
{
    parse_ok("/a%2Fb", 1, (const char *[]) { "a/b" });
    parse_ok("/a%2fb/c", 2, (const char *[]) { "a/b", "c" });
    parse_ok("/x%2Fy%20z%25", 1, (const char *[]) { "x/y z%" });
    parse_ok("/127.0.0.1%3A80", 1, (const char *[]) { "127.0.0.1:80" });
    parse_ok("/unix:%2Frun%2Fw.sock/pass", 2,
             (const char *[]) { "unix:/run/w.sock", "pass" });
    parse_ok("/%C3%A9", 1, (const char *[]) { "\xC3\xA9" });
}

static void
test_parse_bad_encoding(void **state)
{
    parse_bad("/a%", 3, "percent");
    parse_bad("/a%2", 4, "percent");
    parse_bad("/a%zz", 5, "percent");
    parse_bad("/a%2/b", 6, "percent");       /* digits must be in the segment */
    parse_bad("/ok/%g0", 7, "percent");
    parse_bad("/a%00b", 6, "NUL");
    parse_bad("/a\0b", 4, "NUL");
}

static void
get_check(json_t *root, const char *path, const char *want)
{
    wr_ptr_t        p;
    wr_conf_error_t err;
    json_t         *v, *w;

    wr_conf_error_init(&err);
    assert_int_equal(wr_ptr_parse(path, strlen(path), &p, &err), 0);
    v = wr_ptr_get(root, &p);
    if (want == NULL) {
        assert_null(v);
    } else {
        w = load(want);
        assert_non_null(v);
        assert_true(json_equal(v, w));
        json_decref(w);
    }
    wr_ptr_free(&p);
}

static void
test_get(void **state)
{
    json_t *root = load("{\"a\": {\"b/c\": [10, 11, {\"d\": null}]}, "
                        "\"\": {\"x\": 7}}");

    get_check(root, "", "{\"a\": {\"b/c\": [10, 11, {\"d\": null}]}, "
              "\"\": {\"x\": 7}}");
    get_check(root, "/a/b%2Fc/0", "10");
    get_check(root, "/a/b%2Fc/2/d", "null");
    get_check(root, "/a/b%2Fc/1/", "11");
    get_check(root, "//x", "7");            /* key "", then "x" */
    get_check(root, "/a/b/c", NULL);
    get_check(root, "/a/b%2Fc/3", NULL);    /* out of range */
    get_check(root, "/a/b%2Fc/01", NULL);   /* not canonical */
    get_check(root, "/a/b%2Fc/-1", NULL);
    get_check(root, "/a/b%2Fc/+1", NULL);
    get_check(root, "/a/b%2Fc/1x", NULL);
    get_check(root, "/a/b%2Fc/99999999999999999999999", NULL);
    get_check(root, "/a/b%2Fc/0/x", NULL);  /* below a scalar */
    get_check(root, "/nope", NULL);
    json_decref(root);
}

/* ---- edits */

typedef json_t *(*edit_fn)(json_t *, const wr_ptr_t *, json_t *, wr_conf_error_t *);

static json_t *
do_delete(json_t *root, const wr_ptr_t *p, json_t *value, wr_conf_error_t *err)
{
    return wr_conf_delete(root, p, err);
}

/* Runs one edit on a fresh copy of before; checks the result (or the error
 * status and title) and that the old root is untouched. */
static void
edit_check(edit_fn fn, const char *before, const char *path, const char *value,
           const char *after, int status, const char *title)
{
    json_t         *root = load(before), *orig = json_deep_copy(root);
    json_t         *val = value != NULL ? load(value) : NULL, *res, *want;
    wr_ptr_t        p;
    wr_conf_error_t err;

    wr_conf_error_init(&err);
    assert_int_equal(wr_ptr_parse(path, strlen(path), &p, &err), 0);
    res = fn(root, &p, val, &err);
    if (after != NULL) {
        want = load(after);
        assert_non_null(res);
        assert_ptr_not_equal(res, root);
        assert_true(json_equal(res, want));
        json_decref(want);
        /* The new document owns its values: editing the given value after
         * the call changes nothing. */
        if (json_is_object(val)) {
            json_object_set_new(val, "later", json_true());
            assert_null(json_object_get(res, "later"));
            want = load(after);
            assert_true(json_equal(res, want));
            json_decref(want);
        }
        json_decref(res);
    } else {
        assert_null(res);
        assert_int_equal(err.status, status);
        assert_string_equal(err.error, title);
    }
    assert_true(json_equal(root, orig));
    wr_ptr_free(&p);
    wr_conf_error_clear(&err);
    json_decref(root);
    json_decref(orig);
    json_decref(val);
}

#define NOT_FOUND   "Value doesn't exist."
#define NOT_ALLOWED "Method isn't allowed."

static void
test_put(void **state)
{
    edit_check(wr_conf_put, "{}", "", "[1]", "[1]", 0, NULL);
    edit_check(wr_conf_put, "{\"a\": 1}", "/", "{\"b\": {}}", "{\"b\": {}}", 0, NULL);
    edit_check(wr_conf_put, "{\"a\": 1}", "/b", "{\"c\": 2}",
               "{\"a\": 1, \"b\": {\"c\": 2}}", 0, NULL);
    edit_check(wr_conf_put, "{\"a\": 1}", "/a", "\"x\"", "{\"a\": \"x\"}", 0, NULL);
    edit_check(wr_conf_put, "{\"a\": {}}", "/a/k%2F1", "{}",
               "{\"a\": {\"k/1\": {}}}", 0, NULL);
    edit_check(wr_conf_put, "{\"r\": [1, 2, 3]}", "/r/1", "{\"s\": 1}",
               "{\"r\": [1, {\"s\": 1}, 3]}", 0, NULL);
    /* arrays are not extended by PUT, and indexes must be canonical */
    edit_check(wr_conf_put, "{\"r\": [1]}", "/r/1", "2", NULL, 404, NOT_FOUND);
    edit_check(wr_conf_put, "{\"r\": [1]}", "/r/00", "2", NULL, 404, NOT_FOUND);
    edit_check(wr_conf_put, "{\"r\": [1]}", "/r/x", "2", NULL, 404, NOT_FOUND);
    /* missing parents and scalar parents */
    edit_check(wr_conf_put, "{}", "/nope/deeper", "1", NULL, 404, NOT_FOUND);
    edit_check(wr_conf_put, "{\"a\": 5}", "/a/b", "1", NULL, 404, NOT_FOUND);
    edit_check(wr_conf_put, "\"s\"", "/a", "1", NULL, 404, NOT_FOUND);
}

static void
test_post(void **state)
{
    edit_check(wr_conf_post, "{\"r\": [1]}", "/r", "{\"s\": 2}",
               "{\"r\": [1, {\"s\": 2}]}", 0, NULL);
    edit_check(wr_conf_post, "{\"r\": [{\"m\": []}]}", "/r/0/m", "\"GET\"",
               "{\"r\": [{\"m\": [\"GET\"]}]}", 0, NULL);
    edit_check(wr_conf_post, "[]", "", "1", "[1]", 0, NULL);
    edit_check(wr_conf_post, "{\"a\": {}}", "/a", "1", NULL, 400, NOT_ALLOWED);
    edit_check(wr_conf_post, "{\"a\": 1}", "/a", "1", NULL, 400, NOT_ALLOWED);
    edit_check(wr_conf_post, "{}", "", "{}", NULL, 400, NOT_ALLOWED);
    edit_check(wr_conf_post, "{}", "/nope", "1", NULL, 404, NOT_FOUND);
    edit_check(wr_conf_post, "{\"r\": []}", "/r/0", "1", NULL, 404, NOT_FOUND);
}

static void
test_delete(void **state)
{
    edit_check(do_delete, "{\"a\": 1, \"b\": 2}", "/a", NULL, "{\"b\": 2}", 0, NULL);
    edit_check(do_delete, "{\"r\": [1, 2, 3]}", "/r/0", NULL, "{\"r\": [2, 3]}",
               0, NULL);
    edit_check(do_delete, "{\"a\": {\"x/y\": 1}}", "/a/x%2Fy", NULL,
               "{\"a\": {}}", 0, NULL);
    edit_check(do_delete, "{\"a\": 1}", "", NULL, "{}", 0, NULL);
    edit_check(do_delete, "[1]", "/", NULL, "{}", 0, NULL);
    edit_check(do_delete, "{\"a\": 1}", "/b", NULL, NULL, 404, NOT_FOUND);
    edit_check(do_delete, "{\"r\": [1]}", "/r/1", NULL, NULL, 404, NOT_FOUND);
    edit_check(do_delete, "{\"r\": [1]}", "/r/-0", NULL, NULL, 404, NOT_FOUND);
    edit_check(do_delete, "{\"a\": 1}", "/a/b", NULL, NULL, 404, NOT_FOUND);
    edit_check(do_delete, "{}", "/x/y", NULL, NULL, 404, NOT_FOUND);
}

/* An edit may not nest the document deeper than a parse would allow. */
static void
test_put_depth_limit(void **state)
{
    json_t         *root = json_object(), *deep = json_array(), *res;
    wr_ptr_t        p;
    wr_conf_error_t err;
    int             i;

    for (i = 1; i < WR_CONF_MAX_DEPTH; i++) {       /* depth 64 in total */
        json_t *outer = json_array();

        json_array_append_new(outer, deep);
        deep = outer;
    }
    wr_conf_error_init(&err);
    assert_int_equal(wr_ptr_parse("", 0, &p, &err), 0);
    res = wr_conf_put(root, &p, deep, &err);
    assert_non_null(res);                           /* at the root: fits */
    json_decref(res);
    wr_ptr_free(&p);

    assert_int_equal(wr_ptr_parse("/a", 2, &p, &err), 0);
    assert_null(wr_conf_put(root, &p, deep, &err)); /* one level more */
    assert_int_equal(err.status, 400);
    wr_conf_error_clear(&err);
    assert_null(wr_conf_post(root, &p, deep, &err));
    assert_int_equal(err.status, 400);
    wr_conf_error_clear(&err);
    wr_ptr_free(&p);
    json_decref(deep);
    json_decref(root);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_root),
        cmocka_unit_test(test_parse_segments),
        cmocka_unit_test(test_parse_percent),
        cmocka_unit_test(test_parse_bad_encoding),
        cmocka_unit_test(test_get),
        cmocka_unit_test(test_put),
        cmocka_unit_test(test_post),
        cmocka_unit_test(test_delete),
        cmocka_unit_test(test_put_depth_limit),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
