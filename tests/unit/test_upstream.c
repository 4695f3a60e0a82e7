/*
 * Upstreams (src/router/upstream.c): built from a config, the smooth
 * weighted round robin's order and proportions, unknown and empty
 * upstreams.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "router/upstream.h"

static void build(const char *text, wr_upstreams_t *u)
{
    char reason[256];
    json_error_t e;
    json_t *conf = json_loads(text, 0, &e);

    assert_non_null(conf);
    assert_int_equal(wr_upstreams_build(conf, u, reason, sizeof(reason)), 0);
    json_decref(conf);
}

static void smooth_order(void **state)
{
    wr_upstreams_t u;
    char got[7] = "";

    (void) state;
    build("{\"upstreams\": {\"u\": {\"servers\": {"
          "\"10.0.0.1:80\": {\"weight\": 2}, \"10.0.0.2:80\": {}}}}}", &u);
    for (int i = 0; i < 6; i++) {
        const char *url = wr_upstream_pick(&u, "u");
        assert_non_null(url);
        got[i] = strcmp(url, "http://10.0.0.1:80") == 0 ? 'A'
               : strcmp(url, "http://10.0.0.2:80") == 0 ? 'B' : '?';
    }
    assert_string_equal(got, "ABAABA");
    wr_upstreams_free(&u);
}

static void fractional_weights_in_proportion(void **state)
{
    wr_upstreams_t u;
    int a = 0, b = 0, c = 0;

    (void) state;
    build("{\"upstreams\": {\"u\": {\"servers\": {\"10.0.0.1:80\": {\"weight\": 0.5},"
          "\"10.0.0.2:80\": {\"weight\": 1}, \"[2001:db8::1]:80\": {\"weight\": 2.5}}}}}", &u);
    for (int i = 0; i < 400; i++) {
        const char *url = wr_upstream_pick(&u, "u");
        a += strcmp(url, "http://10.0.0.1:80") == 0;
        b += strcmp(url, "http://10.0.0.2:80") == 0;
        c += strcmp(url, "http://[2001:db8::1]:80") == 0;
    }
    assert_int_equal(a, 50);
    assert_int_equal(b, 100);
    assert_int_equal(c, 250);
    wr_upstreams_free(&u);
}

static void unknown_or_empty(void **state)
{
    wr_upstreams_t u;

    (void) state;
    build("{\"upstreams\": {\"empty\": {\"servers\": {}}}}", &u);
    assert_null(wr_upstream_pick(&u, "empty"));
    assert_null(wr_upstream_pick(&u, "nope"));
    wr_upstreams_free(&u);
    build("{}", &u);
    assert_null(wr_upstream_pick(&u, "u"));
    wr_upstreams_free(&u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(smooth_order),
        cmocka_unit_test(fractional_weights_in_proportion),
        cmocka_unit_test(unknown_or_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
