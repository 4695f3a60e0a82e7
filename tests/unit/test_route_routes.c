/* Route compile and resolve: conditions, actions, passes, rewrite, errors. */
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
#define ERRLEN 512

typedef struct {
    wr_req_view_t      r;
    wr_buf_t           scratch;
    struct sockaddr_in remote, local;
} req_t;

static void
req_init(req_t *q, const char *method, const char *uri, const char *query)
{
    memset(q, 0, sizeof(*q));
    q->r.method = (wr_str_t) { method, strlen(method) };
    q->r.uri = (wr_str_t) { uri, strlen(uri) };
    q->r.request_uri = q->r.uri;
    q->r.query = query != NULL ? (wr_str_t) { query, strlen(query) } : (wr_str_t) { NULL, 0 };
    q->r.host = S("example.com");
    q->remote.sin_family = AF_INET;
    q->remote.sin_port = htons(50000);
    inet_pton(AF_INET, "192.0.2.10", &q->remote.sin_addr);
    q->local.sin_family = AF_INET;
    q->local.sin_port = htons(8080);
    inet_pton(AF_INET, "127.0.0.1", &q->local.sin_addr);
    q->r.remote = (struct sockaddr *) &q->remote;
    q->r.local = (struct sockaddr *) &q->local;
}

static wr_routes_t *
compile(const char *text)
{
    json_error_t jerr;
    json_t      *conf = json_loads(text, 0, &jerr);
    char         err[ERRLEN] = "";
    wr_routes_t *rt;

    if (conf == NULL) {
        fail_msg("bad JSON in test: %s (line %d)", jerr.text, jerr.line);
    }
    rt = wr_routes_compile(conf, err, sizeof(err));
    if (rt == NULL) {
        fail_msg("compile failed: %s", err);
    }
    json_decref(conf);
    return rt;
}

static void
compile_fails(const char *text, const char *want)
{
    json_t *conf = json_loads(text, 0, NULL);
    char    err[ERRLEN] = "";

    assert_non_null(conf);
    assert_null(wr_routes_compile(conf, err, sizeof(err)));
    if (strstr(err, want) == NULL) {
        fail_msg("error \"%s\" lacks \"%s\"", err, want);
    }
    json_decref(conf);
}

/* Resolves and returns the status of a "return" action (or -rc). */
static int
status_of(const wr_routes_t *rt, const char *pass, req_t *q)
{
    const wr_action_t *a;
    int                rc = wr_routes_resolve(rt, pass, &q->r, &q->scratch, &a);

    if (rc != WR_ROUTE_FOUND) {
        return -rc;
    }
    assert_non_null(a);
    assert_int_equal(a->kind, WR_ACTION_RETURN);
    return a->status;
}

static int
status(const wr_routes_t *rt, const char *method, const char *uri, const char *query)
{
    req_t q;
    int   st;

    req_init(&q, method, uri, query);
    st = status_of(rt, "routes", &q);
    wr_buf_free(&q.scratch);
    return st;
}

/* ------------------------------------------------------------------ */

static void
test_first_match_and_not_found(void **state)
{
    wr_routes_t *rt = compile("{\"routes\": ["
        "{\"match\": {\"uri\": \"/a\"}, \"action\": {\"return\": 201}},"
        "{\"match\": {\"uri\": \"/a*\"}, \"action\": {\"return\": 202}},"
        "{\"match\": {\"uri\": \"/b\", \"method\": \"post\"}, \"action\": {\"return\": 203}}"
        "]}");

    assert_int_equal(status(rt, "GET", "/a", NULL), 201);
    assert_int_equal(status(rt, "GET", "/ab", NULL), 202);
    assert_int_equal(status(rt, "POST", "/b", NULL), 203);
    assert_int_equal(status(rt, "GET", "/b", NULL), -WR_ROUTE_NOT_FOUND);
    assert_int_equal(status(rt, "GET", "/c", NULL), -WR_ROUTE_NOT_FOUND);
    wr_routes_free(rt);
}

static void
test_host_scheme_query(void **state)
{
    wr_routes_t *rt = compile("{\"routes\": ["
        "{\"match\": {\"host\": \"~^www\\\\.\"}, \"action\": {\"return\": 210}},"
        "{\"match\": {\"host\": [\"*.Example.com\", \"!api.example.com\"]},"
        " \"action\": {\"return\": 211}},"
        "{\"match\": {\"scheme\": \"https\"}, \"action\": {\"return\": 212}},"
        "{\"match\": {\"query\": \"q=a b*\"}, \"action\": {\"return\": 213}},"
        "{\"action\": {\"return\": 299}}"
        "]}");
    req_t q;

    req_init(&q, "GET", "/", NULL);
    q.r.host = S("WWW.example.com:80");
    assert_int_equal(status_of(rt, "routes", &q), 210);
    q.r.host = S("shop.EXAMPLE.com");
    assert_int_equal(status_of(rt, "routes", &q), 211);
    q.r.host = S("api.example.com");
    assert_int_equal(status_of(rt, "routes", &q), 299);
    q.r.tls = 1;
    assert_int_equal(status_of(rt, "routes", &q), 212);
    q.r.tls = 0;
    q.r.query = S("q=a+b%2Bc");
    assert_int_equal(status_of(rt, "routes", &q), 213);
    q.r.query = S("q=a%20b");
    assert_int_equal(status_of(rt, "routes", &q), 213);
    q.r.query = S("q=ab");
    assert_int_equal(status_of(rt, "routes", &q), 299);
    wr_buf_free(&q.scratch);
    wr_routes_free(rt);
}

static void
test_headers_args_cookies(void **state)
{
    static const wr_http_field_t f1[] = {
        F("Accept", "TEXT/HTML"), F("Cookie", "a=1; sess=XYZ"), F("X-Tag", "one"),
        F("x-tag", "two"),
    };
    wr_routes_t *rt = compile("{\"routes\": ["
        "{\"match\": {\"headers\": {\"x-tag\": [\"one\", \"two\"], \"ACCEPT\": \"text/*\"}},"
        " \"action\": {\"return\": 220}},"
        "{\"match\": {\"headers\": [{\"X-None\": \"*\"}, {\"x-tag\": \"one\"}]},"
        " \"action\": {\"return\": 221}},"
        "{\"match\": {\"arguments\": {\"na me\": \"v a*\", \"id\": \"~^[0-9]+$\"}},"
        " \"action\": {\"return\": 222}},"
        "{\"match\": {\"cookies\": {\"sess\": \"XYZ\"}}, \"action\": {\"return\": 223}},"
        "{\"action\": {\"return\": 299}}"
        "]}");
    req_t q;

    req_init(&q, "GET", "/", NULL);
    q.r.fields = f1;
    q.r.nfields = 4;                                  /* both X-Tag match */
    assert_int_equal(status_of(rt, "routes", &q), 220);
    q.r.nfields = 3;                                  /* any object */
    assert_int_equal(status_of(rt, "routes", &q), 220);
    q.r.fields = f1 + 1;                              /* no Accept */
    q.r.nfields = 2;
    assert_int_equal(status_of(rt, "routes", &q), 221);
    q.r.nfields = 1;                                  /* cookie only */
    assert_int_equal(status_of(rt, "routes", &q), 223);
    q.r.nfields = 0;
    q.r.query = S("na+me=v%20abc&id=42");
    assert_int_equal(status_of(rt, "routes", &q), 222);
    q.r.query = S("na%20me=v+a&id=42&id=4x");         /* every occurrence */
    assert_int_equal(status_of(rt, "routes", &q), 299);
    q.r.query = S("na%20me=v+a");                     /* id missing */
    assert_int_equal(status_of(rt, "routes", &q), 299);
    wr_buf_free(&q.scratch);
    wr_routes_free(rt);

    /* a value must match every occurrence: one X-Tag is not "one" */
    rt = compile("{\"routes\": [{\"match\": {\"headers\": {\"x-tag\": \"one\"}},"
                 " \"action\": {\"return\": 230}}]}");
    req_init(&q, "GET", "/", NULL);
    q.r.fields = f1;
    q.r.nfields = 4;
    assert_int_equal(status_of(rt, "routes", &q), -WR_ROUTE_NOT_FOUND);
    wr_buf_free(&q.scratch);
    wr_routes_free(rt);
}

static void
test_source_destination_if(void **state)
{
    wr_routes_t *rt = compile("{\"routes\": ["
        "{\"match\": {\"source\": [\"192.0.2.0/24\", \"!192.0.2.66\"],"
        " \"destination\": \"*:8080\"}, \"action\": {\"return\": 240}},"
        "{\"match\": {\"source\": \"unix\"}, \"action\": {\"return\": 241}},"
        "{\"match\": {\"if\": \"$arg_debug\"}, \"action\": {\"return\": 242}},"
        "{\"match\": {\"if\": \"!$header_x_skip\"}, \"action\": {\"return\": 243}},"
        "{\"action\": {\"return\": 299}}"
        "]}");
    static const wr_http_field_t skip[] = { F("X-Skip", "yes") };
    struct sockaddr_un un = { .sun_family = AF_UNIX };
    req_t              q;

    req_init(&q, "GET", "/", NULL);
    assert_int_equal(status_of(rt, "routes", &q), 240);
    inet_pton(AF_INET, "192.0.2.66", &q.remote.sin_addr);
    assert_int_equal(status_of(rt, "routes", &q), 243);
    q.r.remote = (struct sockaddr *) &un;
    assert_int_equal(status_of(rt, "routes", &q), 241);
    q.r.remote = (struct sockaddr *) &q.remote;
    q.r.query = S("debug=1");
    assert_int_equal(status_of(rt, "routes", &q), 242);
    q.r.query = S("debug=0");
    q.r.fields = skip;
    q.r.nfields = 1;
    assert_int_equal(status_of(rt, "routes", &q), 299);
    wr_buf_free(&q.scratch);
    wr_routes_free(rt);
}

static void
test_named_routes_and_chains(void **state)
{
    wr_routes_t *rt = compile("{"
        "\"listeners\": {\"*:80\": {\"pass\": \"routes/main\"},"
        "                \"*:81\": {\"pass\": \"routes/loop%2Fa\"}},"
        "\"routes\": {"
        " \"main\": [{\"match\": {\"uri\": \"/api/*\"}, \"action\": {\"pass\": \"routes/api\"}},"
        "          {\"action\": {\"return\": 250}}],"
        " \"api\": [{\"match\": {\"method\": \"GET\"}, \"action\": {\"return\": 251}}],"
        " \"loop/a\": [{\"action\": {\"pass\": \"routes/loop_b\"}}],"
        " \"loop_b\": [{\"action\": {\"pass\": \"routes/loop%2fa\"}}]"
        "}}");
    req_t q;

    req_init(&q, "GET", "/api/x", NULL);
    assert_int_equal(status_of(rt, "routes/main", &q), 251);
    q.r.method = S("PUT");
    assert_int_equal(status_of(rt, "routes/main", &q), -WR_ROUTE_NOT_FOUND);
    q.r.uri = S("/");
    assert_int_equal(status_of(rt, "routes/main", &q), 250);
    assert_int_equal(status_of(rt, "routes/loop%2Fa", &q), -WR_ROUTE_ERROR);
    assert_int_equal(status_of(rt, "routes/nope", &q), -WR_ROUTE_ERROR);
    assert_int_equal(status_of(rt, "routes", &q), -WR_ROUTE_ERROR);
    wr_buf_free(&q.scratch);
    wr_routes_free(rt);
}

static const char apps_conf[] =
    "\"applications\": {\"blog\": {\"type\": \"python\"},"
    "                   \"shop\": {\"type\": \"php\", \"targets\": {\"front\": {}, \"admin\": {}}}},"
    "\"upstreams\": {\"pool\": {\"servers\": {\"127.0.0.1:9000\": {}}}},";

static void
test_pass_targets(void **state)
{
    char buf[2048];

    snprintf(buf, sizeof(buf), "{%s \"routes\": ["
        "{\"match\": {\"uri\": \"/blog/*\"}, \"action\": {\"pass\": \"applications/blog\","
        " \"response_headers\": {\"X-From\": \"blog\"}}},"
        "{\"match\": {\"uri\": \"/admin\"}, \"action\": {\"pass\": \"applications/shop/admin\"}},"
        "{\"match\": {\"uri\": \"/up\"}, \"action\": {\"pass\": \"upstreams/pool\"}},"
        "{\"match\": {\"uri\": \"/dyn/*\"}, \"action\": {\"pass\": \"applications/$arg_app\"}},"
        "{\"match\": {\"uri\": \"/dynh\"}, \"action\": {\"pass\": \"upstreams/${arg_u}\","
        " \"response_headers\": {\"X-Dyn\": \"$arg_u\"}}},"
        "{\"match\": {\"uri\": \"/dynr\"}, \"action\": {\"pass\": \"routes/$arg_r\"}},"
        "{\"action\": {\"proxy\": \"http://127.0.0.1:9001\"}}"
        "], \"listeners\": {}}", apps_conf);
    wr_routes_t       *rt = compile(buf);
    const wr_action_t *a, *a2;
    req_t              q;

    req_init(&q, "GET", "/blog/1", NULL);
    assert_int_equal(wr_routes_resolve(rt, "routes", &q.r, &q.scratch, &a), WR_ROUTE_FOUND);
    assert_int_equal(a->kind, WR_ACTION_PASS_APP);
    assert_string_equal(a->app, "blog");
    assert_null(a->target);
    assert_int_equal(a->nheaders, 1);
    assert_string_equal(a->headers[0].name, "X-From");

    q.r.uri = S("/admin");
    assert_int_equal(wr_routes_resolve(rt, "routes", &q.r, &q.scratch, &a), WR_ROUTE_FOUND);
    assert_string_equal(a->app, "shop");
    assert_string_equal(a->target, "admin");

    q.r.uri = S("/up");
    assert_int_equal(wr_routes_resolve(rt, "routes", &q.r, &q.scratch, &a), WR_ROUTE_FOUND);
    assert_int_equal(a->kind, WR_ACTION_PASS_UPSTREAM);
    assert_string_equal(a->upstream, "pool");

    /* listener passes straight to an app, and a dynamic one */
    assert_int_equal(wr_routes_resolve(rt, "applications/shop/front", &q.r, &q.scratch, &a),
                     WR_ROUTE_FOUND);
    assert_string_equal(a->target, "front");
    q.r.query = S("app=blog");
    assert_int_equal(wr_routes_resolve(rt, "applications/$arg_app", &q.r, &q.scratch, &a2),
                     WR_ROUTE_FOUND);
    assert_string_equal(a2->app, "blog");

    q.r.uri = S("/dyn/x");
    assert_int_equal(wr_routes_resolve(rt, "routes", &q.r, &q.scratch, &a2), WR_ROUTE_FOUND);
    assert_string_equal(a2->app, "blog");
    q.r.query = S("app=shop%2Fadmin");        /* decoded after expansion: one segment */
    assert_int_equal(wr_routes_resolve(rt, "routes", &q.r, &q.scratch, &a2), WR_ROUTE_ERROR);
    q.r.query = S("app=nope");
    assert_int_equal(wr_routes_resolve(rt, "routes", &q.r, &q.scratch, &a2), WR_ROUTE_ERROR);
    q.r.query = S("");
    assert_int_equal(wr_routes_resolve(rt, "routes", &q.r, &q.scratch, &a2), WR_ROUTE_ERROR);

    q.r.uri = S("/dynh");
    q.r.query = S("u=pool");
    assert_int_equal(wr_routes_resolve(rt, "routes", &q.r, &q.scratch, &a2), WR_ROUTE_FOUND);
    assert_string_equal(a2->upstream, "pool");
    assert_int_equal(a2->nheaders, 1);
    assert_string_equal(a2->headers[0].name, "X-Dyn");

    q.r.uri = S("/dynr");
    q.r.query = S("r=");
    assert_int_equal(wr_routes_resolve(rt, "routes", &q.r, &q.scratch, &a2), WR_ROUTE_ERROR);

    q.r.uri = S("/other");
    assert_int_equal(wr_routes_resolve(rt, "routes", &q.r, &q.scratch, &a2), WR_ROUTE_FOUND);
    assert_int_equal(a2->kind, WR_ACTION_PROXY);
    assert_string_equal(a2->proxy, "http://127.0.0.1:9001");
    assert_int_equal(wr_routes_resolve(rt, "upstreams/nope", &q.r, &q.scratch, &a2),
                     WR_ROUTE_ERROR);
    wr_buf_free(&q.scratch);
    wr_routes_free(rt);
}

/* Expands a template of an action against q. */
static char *
expand(const wr_tpl_t *t, req_t *q)
{
    wr_buf_t b = { 0 };

    assert_int_equal(wr_tpl_eval(t, &q->r, &b), 0);
    wr_buf_append(&b, "", 1);
    return b.p;
}

static void
test_rewrite(void **state)
{
    wr_routes_t *rt = compile("{\"routes\": {"
        " \"main\": [{\"match\": {\"uri\": \"/old/*\"},"
        "   \"action\": {\"rewrite\": \"/new$uri\", \"pass\": \"routes/next\"}},"
        "  {\"match\": {\"uri\": \"/q\"}, \"action\": {\"rewrite\": \"/r/%41/../b?x=$arg_y\","
        "   \"return\": 200}},"
        "  {\"match\": {\"uri\": \"/bad\"}, \"action\": {\"rewrite\": \"no-slash\","
        "   \"return\": 200}},"
        "  {\"match\": {\"uri\": \"/grow\"}, \"action\": {\"rewrite\": \"$uri$uri$uri\","
        "   \"pass\": \"routes/g1\"}}],"
        " \"next\": [{\"match\": {\"uri\": \"/new/old/*\"},"
        "   \"action\": {\"return\": 301, \"location\": \"https://$host$uri?$args\"}}],"
        " \"g1\": [{\"action\": {\"rewrite\": \"$uri$uri\", \"pass\": \"routes/g2\"}}],"
        " \"g2\": [{\"action\": {\"rewrite\": \"$uri$uri\", \"pass\": \"routes/g3\"}}],"
        " \"g3\": [{\"action\": {\"rewrite\": \"$uri$uri\", \"pass\": \"routes/g4\"}}],"
        " \"g4\": [{\"action\": {\"rewrite\": \"$uri$uri\", \"pass\": \"routes/g5\"}}],"
        " \"g5\": [{\"action\": {\"rewrite\": \"$uri$uri\", \"pass\": \"routes/g6\"}}],"
        " \"g6\": [{\"match\": {\"if\": \"!$uri$uri$uri$uri\"}, \"action\": {\"return\": 500}},"
        "        {\"match\": {\"uri\": \"/grow/grow/*\", \"query\": \"\"},"
        "         \"action\": {\"return\": 200}}]"
        "}}");
    const wr_action_t *a;
    req_t              q;
    char              *s;

    req_init(&q, "GET", "/old/x", "k=v");
    assert_int_equal(wr_routes_resolve(rt, "routes/main", &q.r, &q.scratch, &a), WR_ROUTE_FOUND);
    assert_int_equal(a->status, 301);
    assert_int_equal(q.r.uri.n, strlen("/new/old/x"));
    assert_memory_equal(q.r.uri.p, "/new/old/x", q.r.uri.n);
    s = expand(a->location, &q);
    assert_string_equal(s, "https://example.com/new/old/x?k=v");
    free(s);
    wr_buf_free(&q.scratch);

    req_init(&q, "GET", "/q", "y=7");
    assert_int_equal(wr_routes_resolve(rt, "routes/main", &q.r, &q.scratch, &a), WR_ROUTE_FOUND);
    assert_memory_equal(q.r.uri.p, "/r/b", 4);
    assert_int_equal(q.r.uri.n, 4);
    assert_int_equal(q.r.query.n, 3);
    assert_memory_equal(q.r.query.p, "x=7", 3);
    wr_buf_free(&q.scratch);

    req_init(&q, "GET", "/bad", NULL);
    assert_int_equal(wr_routes_resolve(rt, "routes/main", &q.r, &q.scratch, &a), WR_ROUTE_ERROR);
    wr_buf_free(&q.scratch);

    /* every rewrite grows scratch; the view must follow it (ASan watches) */
    req_init(&q, "GET", "/grow", NULL);
    assert_int_equal(wr_routes_resolve(rt, "routes/main", &q.r, &q.scratch, &a), WR_ROUTE_FOUND);
    assert_int_equal(a->status, 200);
    assert_int_equal(q.r.uri.n, 15 * 32);
    assert_memory_equal(q.r.uri.p, "/grow/grow/grow", 15);
    wr_buf_free(&q.scratch);

    /* the caller's uri may already live in scratch */
    req_init(&q, "GET", "/", NULL);
    wr_buf_puts(&q.scratch, "/old/in-scratch");
    q.r.uri = (wr_str_t) { q.scratch.p, q.scratch.n };
    assert_int_equal(wr_routes_resolve(rt, "routes/main", &q.r, &q.scratch, &a), WR_ROUTE_FOUND);
    assert_int_equal(a->status, 301);
    assert_int_equal(q.r.uri.n, strlen("/new/old/in-scratch"));
    assert_memory_equal(q.r.uri.p, "/new/old/in-scratch", q.r.uri.n);
    wr_buf_free(&q.scratch);
    wr_routes_free(rt);
}

static void
test_share_and_response_headers(void **state)
{
    wr_routes_t *rt = compile("{\"routes\": {"
        " \"main\": [{\"match\": {\"uri\": \"/s/*\"}, \"action\": {"
        "   \"share\": [\"/srv/www$uri\", \"/srv/alt$uri\"],"
        "   \"chroot\": \"/srv\", \"follow_symlinks\": false, \"types\": [\"text/*\"],"
        "   \"fallback\": {\"pass\": \"routes/fb\", \"rewrite\": \"/fallen\"},"
        "   \"response_headers\": {\"Cache-Control\": \"max-age=$arg_age\", \"Server\": null}}},"
        "  {\"action\": {\"share\": \"/srv/x\", \"index\": \"home.html\","
        "   \"fallback\": {\"return\": 404}}}],"
        " \"fb\": [{\"match\": {\"uri\": \"/fallen\"}, \"action\": {\"return\": 299}}]"
        "}}");
    const wr_action_t *a, *b;
    req_t              q;
    char              *s;

    req_init(&q, "GET", "/s/a.txt", "age=60");
    assert_int_equal(wr_routes_resolve(rt, "routes/main", &q.r, &q.scratch, &a), WR_ROUTE_FOUND);
    assert_int_equal(a->kind, WR_ACTION_SHARE);
    assert_int_equal(a->nshare, 2);
    s = expand(a->share[1], &q);
    assert_string_equal(s, "/srv/alt/s/a.txt");
    free(s);
    s = expand(a->index, &q);
    assert_string_equal(s, "index.html");
    free(s);
    s = expand(a->chroot, &q);
    assert_string_equal(s, "/srv");
    free(s);
    assert_int_equal(a->follow_symlinks, 0);
    assert_int_equal(a->traverse_mounts, 1);
    assert_true(wr_mime_filter_match(a->types, "text/plain"));
    assert_false(wr_mime_filter_match(a->types, "image/png"));
    assert_int_equal(a->nheaders, 2);
    assert_string_equal(a->headers[0].name, "Cache-Control");
    s = expand(a->headers[0].value, &q);
    assert_string_equal(s, "max-age=60");
    free(s);
    assert_string_equal(a->headers[1].name, "Server");
    assert_null(a->headers[1].value);

    /* the fallback passes to a route, after its own rewrite */
    assert_non_null(a->fallback);
    assert_int_equal(a->fallback->kind, 0);
    assert_int_equal(wr_routes_fallback(rt, a->fallback, &q.r, &q.scratch, &b), WR_ROUTE_FOUND);
    assert_int_equal(b->status, 299);

    q.r.uri = S("/other");
    assert_int_equal(wr_routes_resolve(rt, "routes/main", &q.r, &q.scratch, &a), WR_ROUTE_FOUND);
    s = expand(a->index, &q);
    assert_string_equal(s, "home.html");
    free(s);
    assert_null(a->types);
    assert_null(a->chroot);
    assert_int_equal(a->follow_symlinks, 1);
    assert_int_equal(wr_routes_fallback(rt, a->fallback, &q.r, &q.scratch, &b), WR_ROUTE_FOUND);
    assert_ptr_equal(b, a->fallback);
    assert_int_equal(b->status, 404);
    wr_buf_free(&q.scratch);
    wr_routes_free(rt);
}

static void
test_compile_errors(void **state)
{
    compile_fails("{\"routes\": [{\"match\": {\"uri\": \"~^/(a\"}, \"action\": {\"return\": 200}}]}",
                  "\"/routes/0/match/uri\"");
    compile_fails("{\"routes\": {\"m/n\": [{\"action\": {\"return\": 200}},"
                  "{\"match\": {\"headers\": [{\"a\": \"x\"}, {\"b\": [\"~(\"]}]},"
                  " \"action\": {\"return\": 200}}]}}",
                  "\"/routes/m~1n/1/match/headers/1/b\"");
    compile_fails("{\"routes\": [{\"action\": {\"return\": 301, \"location\": \"$nope\"}}]}",
                  "\"/routes/0/action/location\" cannot be compiled: unknown variable \"nope\"");
    compile_fails("{\"routes\": [{\"action\": {\"pass\": \"routes/x\"}}]}",
                  "does not exist");
    compile_fails("{\"routes\": [{\"action\": {\"share\": \"/x\", \"fallback\":"
                  " {\"return\": 200, \"rewrite\": \"$x\"}}}]}",
                  "\"/routes/0/action/fallback/rewrite\"");
    compile_fails("{\"routes\": [{\"action\": {\"return\": 200, \"response_headers\":"
                  " {\"X-A\": \"${a\"}}}]}", "\"/routes/0/action/response_headers/X-A\"");
    compile_fails("{\"listeners\": {\"*:80\": {\"pass\": \"routes/none\"}}, \"routes\": []}",
                  "\"/listeners/*:80/pass\"");
    compile_fails("{\"routes\": [{\"match\": {\"if\": \"$zz\"}, \"action\": {\"return\": 200}}]}",
                  "\"/routes/0/match/if\"");
}

static void
test_empty_config(void **state)
{
    wr_routes_t       *rt = compile("{}");
    const wr_action_t *a;
    req_t              q;

    req_init(&q, "GET", "/", NULL);
    assert_int_equal(wr_routes_resolve(rt, "routes", &q.r, &q.scratch, &a), WR_ROUTE_ERROR);
    wr_buf_free(&q.scratch);
    wr_routes_free(rt);
    wr_routes_free(NULL);
}

/* "metrics" compiles to its own kind, with the format named. */
static void
test_metrics_action(void **state)
{
    wr_routes_t       *rt = compile("{\"routes\": ["
        "{\"match\": {\"uri\": \"/m\"}, \"action\": {\"metrics\": \"prometheus\"}},"
        "{\"action\": {\"metrics\": \"json\", "
        "\"response_headers\": {\"X-A\": \"b\"}}}]}");
    const wr_action_t *a;
    req_t              q;

    (void) state;
    req_init(&q, "GET", "/m", NULL);
    assert_int_equal(wr_routes_resolve(rt, "routes", &q.r, &q.scratch, &a), WR_ROUTE_FOUND);
    assert_int_equal(a->kind, WR_ACTION_METRICS);
    assert_int_equal(a->metrics, WR_METRICS_PROMETHEUS);
    wr_buf_free(&q.scratch);
    req_init(&q, "GET", "/other", NULL);
    assert_int_equal(wr_routes_resolve(rt, "routes", &q.r, &q.scratch, &a), WR_ROUTE_FOUND);
    assert_int_equal(a->kind, WR_ACTION_METRICS);
    assert_int_equal(a->metrics, WR_METRICS_JSON);
    assert_int_equal(a->nheaders, 1);
    wr_buf_free(&q.scratch);
    wr_routes_free(rt);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_match_and_not_found),
        cmocka_unit_test(test_host_scheme_query),
        cmocka_unit_test(test_headers_args_cookies),
        cmocka_unit_test(test_source_destination_if),
        cmocka_unit_test(test_named_routes_and_chains),
        cmocka_unit_test(test_pass_targets),
        cmocka_unit_test(test_rewrite),
        cmocka_unit_test(test_share_and_response_headers),
        cmocka_unit_test(test_compile_errors),
        cmocka_unit_test(test_empty_config),
        cmocka_unit_test(test_metrics_action),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
