/* String patterns, pattern arrays, address patterns, MIME filters. */
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

#include "route/route_int.h"

/* Compiles json (a pattern or an array) with flags and matches subject. */
static bool
rule_matches(const char *json, unsigned flags, const char *subject)
{
    json_error_t jerr;
    json_t      *v = json_loads(json, JSON_DECODE_ANY, &jerr);
    wr_rule_t    rule;
    char         err[256];
    bool         yes;

    assert_non_null(v);
    assert_int_equal(wr_rule_compile(&rule, v, flags, err, sizeof(err)), 0);
    yes = wr_rule_match(&rule, subject, strlen(subject));
    wr_rule_free(&rule);
    json_decref(v);
    return yes;
}

static void
test_exact_and_wildcards(void **state)
{
    static const struct { const char *pat, *s; bool yes; } cases[] = {
        { "\"/a\"", "/a", true },
        { "\"/a\"", "/ab", false },
        { "\"/a\"", "/", false },
        { "\"\"", "", true },
        { "\"\"", "x", false },
        { "\"*\"", "", true },
        { "\"*\"", "anything", true },
        { "\"**\"", "x", true },
        { "\"/img/*\"", "/img/a.png", true },
        { "\"/img/*\"", "/img/", true },
        { "\"/img/*\"", "/im", false },
        { "\"*.png\"", "/a.png", true },
        { "\"*.png\"", "/a.png.gz", false },
        { "\"/a*b*c\"", "/abc", true },
        { "\"/a*b*c\"", "/aXbYbZc", true },
        { "\"/a*b*c\"", "/acb", false },
        { "\"*b*\"", "abc", true },
        { "\"*b*\"", "ac", false },
        { "\"a*a\"", "a", false },          /* segments must not overlap */
        { "\"a*a\"", "aa", true },
        { "\"*x*y*z*\"", "..x..y..z..", true },
        { "\"*x*y*z*\"", "..x..z..y..", false },
        { "\"/Case\"", "/case", false },    /* case-sensitive by default */
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (rule_matches(cases[i].pat, 0, cases[i].s) != cases[i].yes) {
            fail_msg("pattern %s on \"%s\" should be %d", cases[i].pat, cases[i].s,
                     cases[i].yes);
        }
    }
}

static void
test_icase(void **state)
{
    assert_true(rule_matches("\"Example.COM\"", WR_PAT_ICASE, "example.com"));
    assert_true(rule_matches("\"*.Example.com\"", WR_PAT_ICASE, "WWW.EXAMPLE.COM"));
    assert_false(rule_matches("\"*.example.com\"", WR_PAT_ICASE, "example.com"));
    assert_true(rule_matches("\"get\"", WR_PAT_ICASE, "GET"));
}

static void
test_decode(void **state)
{
    /* uri: decoded, '+' literal; a %2A is a literal '*', not a wildcard */
    assert_true(rule_matches("\"/a%20b\"", WR_PAT_DECODE, "/a b"));
    assert_true(rule_matches("\"/a+b\"", WR_PAT_DECODE, "/a+b"));
    assert_true(rule_matches("\"/a%2Ab\"", WR_PAT_DECODE, "/a*b"));
    assert_false(rule_matches("\"/a%2Ab\"", WR_PAT_DECODE, "/axb"));
    /* query / arguments: '+' is a space too */
    assert_true(rule_matches("\"a+b\"", WR_PAT_DECODE | WR_PAT_PLUS, "a b"));
}

static void
test_negation_and_arrays(void **state)
{
    assert_false(rule_matches("\"!/a\"", 0, "/a"));
    assert_true(rule_matches("\"!/a\"", 0, "/b"));
    assert_true(rule_matches("[\"/a\", \"/b\"]", 0, "/b"));
    assert_false(rule_matches("[\"/a\", \"/b\"]", 0, "/c"));
    /* any positive and no negative, whatever the order */
    assert_true(rule_matches("[\"*.example.com\", \"!www.example.com\"]", 0, "a.example.com"));
    assert_false(rule_matches("[\"*.example.com\", \"!www.example.com\"]", 0, "www.example.com"));
    assert_false(rule_matches("[\"!www.example.com\", \"*.example.com\"]", 0, "www.example.com"));
    assert_false(rule_matches("[\"!www.example.com\", \"*.example.com\"]", 0, "example.org"));
    /* only negations: none may match */
    assert_true(rule_matches("[\"!/a\", \"!/b\"]", 0, "/c"));
    assert_false(rule_matches("[\"!/a\", \"!/b\"]", 0, "/b"));
    /* an empty array is no condition */
    assert_true(rule_matches("[]", 0, "/x"));
}

static void
test_regex(void **state)
{
    json_t   *v = json_string("~^/a(");
    wr_rule_t rule;
    char      err[256];

    assert_true(rule_matches("\"~^/api/v[0-9]+/\"", 0, "/api/v2/x"));
    assert_false(rule_matches("\"~^/api/v[0-9]+/\"", 0, "/api/vx/"));
    assert_true(rule_matches("\"!~\\\\.php$\"", 0, "/index.html"));
    assert_false(rule_matches("\"!~\\\\.php$\"", 0, "/index.php"));
    assert_true(rule_matches("\"~(?i)^GET$\"", 0, "get"));
    assert_true(rule_matches("[\"!~^/private\", \"~^/\"]", 0, "/public"));
    assert_false(rule_matches("[\"!~^/private\", \"~^/\"]", 0, "/private/x"));

    assert_int_equal(wr_rule_compile(&rule, v, 0, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "regular expression"));
    wr_rule_free(&rule);
    json_decref(v);
}

/* --------------------------------------------------------- addresses */

static struct sockaddr_storage
sa_of(const char *ip, unsigned port)
{
    struct sockaddr_storage ss;

    memset(&ss, 0, sizeof(ss));
    if (strcmp(ip, "unix") == 0) {
        ((struct sockaddr_un *) &ss)->sun_family = AF_UNIX;
    } else if (strchr(ip, ':') != NULL) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *) &ss;

        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t) port);
        assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *) &ss;

        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t) port);
        assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
    }
    return ss;
}

static bool
addr_matches(const char *json, const char *ip, unsigned port)
{
    json_error_t            jerr;
    json_t                 *v = json_loads(json, JSON_DECODE_ANY, &jerr);
    wr_addr_rule_t          rule;
    char                    err[256];
    struct sockaddr_storage ss = sa_of(ip, port);
    bool                    yes;

    assert_non_null(v);
    assert_int_equal(wr_addr_rule_compile(&rule, v, err, sizeof(err)), 0);
    yes = wr_addr_rule_match(&rule, (struct sockaddr *) &ss);
    wr_addr_rule_free(&rule);
    json_decref(v);
    return yes;
}

static void
test_addr_v4(void **state)
{
    assert_true(addr_matches("\"*\"", "1.2.3.4", 80));
    assert_true(addr_matches("\"1.2.3.4\"", "1.2.3.4", 80));
    assert_false(addr_matches("\"1.2.3.4\"", "1.2.3.5", 80));
    assert_true(addr_matches("\"10.0.0.0/8\"", "10.200.1.1", 1));
    assert_false(addr_matches("\"10.0.0.0/8\"", "11.0.0.1", 1));
    assert_true(addr_matches("\"10.1.2.3/0\"", "200.0.0.1", 1));
    assert_true(addr_matches("\"192.168.1.7/31\"", "192.168.1.6", 1));
    assert_false(addr_matches("\"192.168.1.7/31\"", "192.168.1.8", 1));
    assert_true(addr_matches("\"10.0.0.5-10.0.1.2\"", "10.0.0.200", 1));
    assert_false(addr_matches("\"10.0.0.5-10.0.1.2\"", "10.0.1.3", 1));
    assert_true(addr_matches("\"*:80\"", "1.2.3.4", 80));
    assert_false(addr_matches("\"*:80\"", "1.2.3.4", 81));
    assert_true(addr_matches("\":8000-8080\"", "1.2.3.4", 8080));
    assert_false(addr_matches("\":8000-8080\"", "1.2.3.4", 7999));
    assert_true(addr_matches("\"10.0.0.0/8:443\"", "10.1.1.1", 443));
    assert_false(addr_matches("\"10.0.0.0/8:443\"", "10.1.1.1", 80));
    /* IPv4-mapped IPv6 peers count as IPv4 */
    assert_true(addr_matches("\"10.0.0.0/8\"", "::ffff:10.1.1.1", 1));
}

static void
test_addr_v6(void **state)
{
    assert_true(addr_matches("\"::1\"", "::1", 80));
    assert_false(addr_matches("\"::1\"", "1.2.3.4", 80));
    assert_false(addr_matches("\"1.2.3.4\"", "::1", 80));
    assert_true(addr_matches("\"2001:db8::/32\"", "2001:db8:ffff::1", 1));
    assert_false(addr_matches("\"2001:db8::/32\"", "2001:db9::1", 1));
    assert_true(addr_matches("\"2001:db8::/127\"", "2001:db8::1", 1));
    assert_false(addr_matches("\"2001:db8::/127\"", "2001:db8::2", 1));
    assert_true(addr_matches("\"[::1]:80\"", "::1", 80));
    assert_false(addr_matches("\"[::1]:80\"", "::1", 81));
    assert_true(addr_matches("\"[2001:db8::/64]:1-1024\"", "2001:db8::5", 1024));
    assert_true(addr_matches("\"[::1-::5]\"", "::3", 9));
    assert_false(addr_matches("\"[::1-::5]\"", "::6", 9));
}

static void
test_addr_unix_and_negation(void **state)
{
    assert_true(addr_matches("\"unix\"", "unix", 0));
    assert_false(addr_matches("\"unix\"", "1.2.3.4", 0));
    assert_false(addr_matches("\"10.0.0.0/8\"", "unix", 0));
    assert_true(addr_matches("\"*\"", "unix", 0));
    assert_false(addr_matches("\"*:80\"", "unix", 0));
    assert_true(addr_matches("\"!unix\"", "1.2.3.4", 0));
    assert_false(addr_matches("\"!10.0.0.0/8\"", "10.0.0.1", 0));
    assert_true(addr_matches("\"!10.0.0.0/8\"", "11.0.0.1", 0));
    assert_true(addr_matches("[\"10.0.0.0/8\", \"!10.0.0.1\"]", "10.0.0.2", 0));
    assert_false(addr_matches("[\"10.0.0.0/8\", \"!10.0.0.1\"]", "10.0.0.1", 0));
    assert_false(addr_matches("[\"10.0.0.0/8\", \"!10.0.0.1\"]", "12.0.0.1", 0));
    assert_true(addr_matches("[\"1.1.1.1\", \"2.2.2.2\"]", "2.2.2.2", 0));
}

static void
test_addr_invalid(void **state)
{
    static const char *bad[] = {
        "\"1.2.3\"", "\"10.0.0.0/33\"", "\"::/129\"", "\"1.2.3.4:70000\"",
        "\"2.0.0.0-1.0.0.0\"", "\"[1.2.3.4]:80\"", "\":90-80\"", "\"\"",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t        *v = json_loads(bad[i], JSON_DECODE_ANY, NULL);
        wr_addr_rule_t rule;
        char           err[256];

        if (wr_addr_rule_compile(&rule, v, err, sizeof(err)) != -1) {
            fail_msg("%s should not compile", bad[i]);
        }
        wr_addr_rule_free(&rule);
        json_decref(v);
    }
}

static void
test_mime_filter(void **state)
{
    json_t           *v = json_loads("[\"image/*\", \"!image/svg+xml\", \"~^text/\"]",
                                     0, NULL);
    char              err[256];
    wr_mime_filter_t *f = wr_mime_filter_compile(v, err, sizeof(err));

    assert_non_null(f);
    assert_true(wr_mime_filter_match(f, "image/png"));
    assert_true(wr_mime_filter_match(f, "IMAGE/PNG"));
    assert_false(wr_mime_filter_match(f, "image/svg+xml"));
    assert_true(wr_mime_filter_match(f, "text/html"));
    assert_false(wr_mime_filter_match(f, "application/json"));
    assert_true(wr_mime_filter_match(NULL, "application/json"));
    wr_mime_filter_free(f);
    json_decref(v);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_and_wildcards),
        cmocka_unit_test(test_icase),
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_negation_and_arrays),
        cmocka_unit_test(test_regex),
        cmocka_unit_test(test_addr_v4),
        cmocka_unit_test(test_addr_v6),
        cmocka_unit_test(test_addr_unix_and_negation),
        cmocka_unit_test(test_addr_invalid),
        cmocka_unit_test(test_mime_filter),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
