/* route/forwarded: the client address and scheme behind trusted proxies. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <string.h>

#include "route/route.h"

static struct sockaddr_in peer(const char *ip)
{
    struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = htons(40000) };

    inet_pton(AF_INET, ip, &in.sin_addr);
    return in;
}

static const char *ip_of(const struct sockaddr *sa, char *buf)
{
    return inet_ntop(AF_INET, &((const struct sockaddr_in *) sa)->sin_addr, buf, 64);
}

static wr_forwarded_t *compile(const char *json)
{
    char err[256];
    json_t *v = json_loads(json, 0, NULL);
    wr_forwarded_t *f = wr_forwarded_compile(v, err, sizeof(err));

    json_decref(v);
    assert_non_null(f);
    return f;
}

static void run(wr_forwarded_t *f, const char *peer_ip, wr_http_field_t *fields, size_t n,
                const char *want_ip, int want_tls)
{
    struct sockaddr_in p = peer(peer_ip);
    struct sockaddr_storage client;
    wr_req_view_t r;
    char buf[64];

    memset(&r, 0, sizeof(r));
    r.remote = (const struct sockaddr *) &p;
    r.fields = fields;
    r.nfields = n;
    wr_forwarded_apply(f, &r, &client);
    assert_string_equal(ip_of(r.remote, buf), want_ip);
    assert_int_equal(r.tls, want_tls);
}

#define FIELD(n, v) { n, sizeof(n) - 1, v, sizeof(v) - 1 }

static void test_trusted_rightmost(void **state)
{
    wr_forwarded_t *f = compile("{\"client_ip\": \"X-Forwarded-For\", \"protocol\": "
                                "\"X-Forwarded-Proto\", \"source\": \"10.0.0.0/8\"}");
    wr_http_field_t fl[] = {
        FIELD("X-Forwarded-For", "203.0.113.7, 10.0.0.5"),
        FIELD("x-forwarded-proto", "https"),
    };

    /* Not recursive: the rightmost entry, even if it is a trusted proxy. */
    run(f, "10.1.2.3", fl, 2, "10.0.0.5", 1);
    /* An untrusted peer is believed about nothing. */
    run(f, "192.0.2.1", fl, 2, "192.0.2.1", 0);
    wr_forwarded_free(f);
}

static void test_recursive_skips_trusted(void **state)
{
    wr_forwarded_t *f = compile("{\"client_ip\": \"X-Forwarded-For\", \"recursive\": true, "
                                "\"source\": [\"10.0.0.0/8\", \"127.0.0.1\"]}");
    wr_http_field_t fl[] = {
        FIELD("X-Forwarded-For", "198.51.100.9"),
        FIELD("X-Forwarded-For", "203.0.113.7, 10.0.0.5 , 10.9.9.9"),
    };
    wr_http_field_t bad[] = { FIELD("X-Forwarded-For", "not-an-ip") };

    run(f, "127.0.0.1", fl, 2, "203.0.113.7", 0);
    run(f, "127.0.0.1", bad, 1, "127.0.0.1", 0);
    wr_forwarded_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trusted_rightmost),
        cmocka_unit_test(test_recursive_skips_trusted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
