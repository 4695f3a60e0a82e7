/* Templates: every variable, syntax errors, and "if". */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>
#include <cmocka.h>

#include "route/route.h"

#define S(lit) ((wr_str_t) { lit, sizeof(lit) - 1 })
#define F(n, v) { n, sizeof(n) - 1, v, sizeof(v) - 1 }

static const wr_http_field_t fields[] = {
    F("Host", "Example.COM:8080"),
    F("User-Agent", "curl/8"),
    F("X-Multi", "a"),
    F("x-multi", "b"),
    F("Cookie", "sid=abc; theme=dark"),
    F("Cookie", "lang=en"),
};

static const wr_http_field_t resp_fields[] = {
    F("Content-Type", "text/html"),
};

static struct sockaddr_in remote4;

static wr_req_view_t
make_req(void)
{
    wr_req_view_t r;

    memset(&r, 0, sizeof(r));
    r.method = S("GET");
    r.host = S("Example.COM:8080");
    r.request_uri = S("/a%20b/?x=1&y=two+2&x=3");
    r.uri = S("/a b/");
    r.query = S("x=1&y=two+2&x=3");
    r.request_line = S("GET /a%20b/?x=1&y=two+2&x=3 HTTP/1.1");
    r.fields = fields;
    r.nfields = sizeof(fields) / sizeof(fields[0]);
    remote4.sin_family = AF_INET;
    inet_pton(AF_INET, "192.0.2.7", &remote4.sin_addr);
    r.remote = (struct sockaddr *) &remote4;
    r.start.tv_sec = 1795944600;         /* 2026-11-29 09:30:00 UTC */
    r.request_id = "0123456789abcdef0123456789abcdef";
    r.status = 200;
    r.body_bytes_sent = 1234;
    r.request_time = 0.0042;
    r.resp_fields = resp_fields;
    r.nresp_fields = 1;
    return r;
}

/* Expands s against r and checks the result. */
static void
expect(const char *s, const wr_req_view_t *r, const char *want)
{
    char      err[256];
    wr_tpl_t *t = wr_tpl_compile(s, err, sizeof(err));
    wr_buf_t  b = { 0 };

    if (t == NULL) {
        fail_msg("\"%s\" did not compile: %s", s, err);
    }
    assert_int_equal(wr_tpl_eval(t, r, &b), 0);
    if (b.n != strlen(want) || (b.n > 0 && memcmp(b.p, want, b.n) != 0)) {
        fail_msg("\"%s\" gave \"%.*s\", want \"%s\"", s, (int) b.n, b.p ? b.p : "", want);
    }
    wr_buf_free(&b);
    wr_tpl_free(t);
}

static void
test_request_vars(void **state)
{
    wr_req_view_t r = make_req();

    expect("$uri", &r, "/a b/");
    expect("${uri}x", &r, "/a b/x");
    expect("$host", &r, "example.com");
    expect("$method $request_uri", &r, "GET /a%20b/?x=1&y=two+2&x=3");
    expect("$request_line", &r, "GET /a%20b/?x=1&y=two+2&x=3 HTTP/1.1");
    expect("$remote_addr", &r, "192.0.2.7");
    expect("$args", &r, "x=1&y=two+2&x=3");
    expect("$request_id", &r, "0123456789abcdef0123456789abcdef");
    expect("$scheme", &r, "http");
    r.tls = 1;
    expect("$scheme", &r, "https");
}

static void
test_response_vars(void **state)
{
    wr_req_view_t r = make_req();

    expect("$status $body_bytes_sent $request_time", &r, "200 1234 0.004");
    r.status = 0;
    r.request_time = 12.3456;
    expect("$status $request_time", &r, "000 12.346");
    expect("$response_header_content_type", &r, "text/html");
    expect("[$response_header_x_none]", &r, "[]");
}

static void
test_time_local(void **state)
{
    wr_req_view_t r = make_req();

    setenv("TZ", "UTC", 1);
    tzset();
    expect("$time_local", &r, "29/Nov/2026:09:30:00 +0000");
    setenv("TZ", "EST5", 1);
    tzset();
    expect("$time_local", &r, "29/Nov/2026:04:30:00 -0500");
    setenv("TZ", "UTC", 1);
    tzset();
}

static void
test_prefixed_vars(void **state)
{
    wr_req_view_t r = make_req();

    expect("$header_user_agent", &r, "curl/8");
    expect("${header_User-Agent}", &r, "curl/8");
    expect("$header_x_multi", &r, "a, b");
    expect("[$header_none]", &r, "[]");
    expect("$arg_x/$arg_y", &r, "1/two+2");
    expect("[$arg_z]", &r, "[]");
    expect("$cookie_sid,$cookie_theme,$cookie_lang", &r, "abc,dark,en");
    expect("[$cookie_none]", &r, "[]");
}

static void
test_host_forms(void **state)
{
    wr_req_view_t r = make_req();

    r.host = S("[::1]:80");
    expect("$host", &r, "[::1]");
    r.host = S("WWW.Example.com.");
    expect("$host", &r, "www.example.com");
    r.host = (wr_str_t) { NULL, 0 };
    expect("[$host]", &r, "[]");
}

static void
test_remote_forms(void **state)
{
    wr_req_view_t       r = make_req();
    struct sockaddr_in6 s6 = { .sin6_family = AF_INET6 };
    struct sockaddr_un  un = { .sun_family = AF_UNIX };

    inet_pton(AF_INET6, "2001:db8::1", &s6.sin6_addr);
    r.remote = (struct sockaddr *) &s6;
    expect("$remote_addr", &r, "2001:db8::1");
    r.remote = (struct sockaddr *) &un;
    expect("$remote_addr", &r, "unix:");
    r.remote = NULL;
    expect("[$remote_addr]", &r, "[]");
}

static void
test_literals(void **state)
{
    wr_req_view_t r = make_req();
    char          err[256];
    wr_tpl_t     *t;

    expect("", &r, "");
    expect("plain", &r, "plain");
    expect("$dollar", &r, "$");
    expect("a${dollar}b$dollar", &r, "a$b$");
    t = wr_tpl_compile("cost: ${dollar}5", err, sizeof(err));
    assert_true(wr_tpl_is_const(t));
    wr_tpl_free(t);
    t = wr_tpl_compile("/x$uri", err, sizeof(err));
    assert_false(wr_tpl_is_const(t));
    wr_tpl_free(t);
}

static void
test_errors(void **state)
{
    static const struct { const char *s, *msg; } bad[] = {
        { "$nope", "unknown variable \"nope\"" },
        { "${nope}", "unknown variable \"nope\"" },
        { "$header_", "unknown variable \"header_\"" },
        { "a$", "\"$\" must start" },
        { "${uri", "\"$\" must start" },
        { "${}", "\"$\" must start" },
        { "$ x", "\"$\" must start" },
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[256] = "";

        if (wr_tpl_compile(bad[i].s, err, sizeof(err)) != NULL) {
            fail_msg("\"%s\" should not compile", bad[i].s);
        }
        if (strstr(err, bad[i].msg) == NULL) {
            fail_msg("\"%s\": error \"%s\" lacks \"%s\"", bad[i].s, err, bad[i].msg);
        }
    }
}

/* The expansion may read from the very buffer it appends to. */
static void
test_self_append(void **state)
{
    wr_req_view_t r = make_req();
    wr_buf_t      b = { 0 };
    char          err[256];
    wr_tpl_t     *t = wr_tpl_compile("$uri$uri$uri$uri", err, sizeof(err));

    wr_buf_puts(&b, "/self");
    r.uri = (wr_str_t) { b.p, b.n };
    for (int i = 0; i < 6; i++) {           /* grows past the first capacity */
        assert_int_equal(wr_tpl_eval(t, &r, &b), 0);
    }
    assert_int_equal(memcmp(b.p, "/self/self/self/self/self", 25), 0);
    wr_tpl_free(t);
    wr_buf_free(&b);
}

static void
test_if(void **state)
{
    static const struct { const char *s; int yes; } cases[] = {
        { "1", 1 }, { "0", 0 }, { "", 0 }, { "!", 1 }, { "!0", 1 }, { "!1", 0 },
        { "00", 1 }, { "$arg_x", 1 }, { "$arg_z", 0 }, { "!$arg_z", 1 },
        { "${arg_z}0", 0 }, { "$cookie_sid", 1 }, { "!$header_user_agent", 0 },
    };
    wr_req_view_t r = make_req();
    wr_buf_t      scratch = { 0 };
    char          err[256];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        wr_if_t *c = wr_if_compile(cases[i].s, err, sizeof(err));

        assert_non_null(c);
        if (wr_if_true(c, &r, &scratch) != cases[i].yes) {
            fail_msg("if \"%s\" should be %d", cases[i].s, cases[i].yes);
        }
        assert_int_equal(scratch.n, 0);
        wr_if_free(c);
    }
    assert_null(wr_if_compile("$bad", err, sizeof(err)));
    wr_buf_free(&scratch);
}

/* JavaScript template literals (Unit's njs templates). */
static void
test_js(void **state)
{
    wr_req_view_t r = make_req();
    wr_buf_t      b = { 0 };
    char          err[256];
    wr_tpl_t     *t;
    wr_if_t      *c;

    expect("`${uri}|${host}|${remoteAddr}|${vars.method}`", &r, "/a b/|example.com|192.0.2.7|GET");
    expect("`${JSON.stringify(args)}`", &r, "{\"x\":[\"1\",\"3\"],\"y\":\"two 2\"}");
    expect("`${headers['User-Agent']};${headers['X-Multi']};${headers['x-multi']}`", &r,
           "curl/8;a;b");
    expect("`${cookies.sid}-${cookies.theme}-${cookies.lang}`", &r, "abc-dark-en");
    expect("`${vars.header_user_agent}${vars.nosuch}$uri`", &r, "curl/8undefined$uri");
    expect("`${[1, 2].map(x => x * 2).join()}`", &r, "2,4");

    /* an error: -1, the buffer as it was */
    t = wr_tpl_compile("`${nosuch}`", err, sizeof(err));
    assert_non_null(t);
    wr_buf_puts(&b, "kept");
    assert_int_equal(wr_tpl_eval(t, &r, &b), -1);
    assert_int_equal(b.n, 4);
    wr_tpl_free(t);
    wr_buf_free(&b);

    /* not one template literal expression: refused with JavaScript's reason */
    assert_null(wr_tpl_compile("`a`; let b = 1; `c`", err, sizeof(err)));
    assert_non_null(strstr(err, "SyntaxError"));
    assert_null(wr_tpl_compile("`${`", err, sizeof(err)));
    assert_null(wr_tpl_compile("`abc", err, sizeof(err)));
    assert_non_null(strstr(err, "JavaScript"));

    c = wr_if_compile("!`${args.y == 'two 2' ? '' : 'x'}`", err, sizeof(err));
    assert_non_null(c);
    assert_int_equal(wr_if_true(c, &r, &b), 1);
    assert_int_equal(b.n, 0);
    wr_if_free(c);
    wr_buf_free(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_vars),
        cmocka_unit_test(test_response_vars),
        cmocka_unit_test(test_time_local),
        cmocka_unit_test(test_prefixed_vars),
        cmocka_unit_test(test_host_forms),
        cmocka_unit_test(test_remote_forms),
        cmocka_unit_test(test_literals),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_self_append),
        cmocka_unit_test(test_if),
        cmocka_unit_test(test_js),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
