/* route/mime.c: built-in MIME types, lookup keys, settings.http.static.mime_types. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "route/route.h"

#define OCTET "application/octet-stream"

static const char *type_of(const wr_mime_t *m, const char *name)
{
    return wr_mime_type(m, name, strlen(name));
}

static wr_mime_t *compile_json(const char *types, char *err, size_t errlen)
{
    char doc[1024];
    json_t *conf;
    wr_mime_t *m;

    snprintf(doc, sizeof(doc),
             "{\"settings\": {\"http\": {\"static\": {\"mime_types\": %s}}}}", types);
    conf = json_loads(doc, 0, NULL);
    assert_non_null(conf);
    m = wr_mime_compile(conf, err, errlen);
    json_decref(conf);
    return m;
}

static void test_builtin(void **state)
{
    static const char *cases[][2] = {
        { "index.html", "text/html" },    { "a.htm", "text/html" },
        { "s.css", "text/css" },          { "app.js", "text/javascript" },
        { "m.mjs", "text/javascript" },   { "d.json", "application/json" },
        { "t.txt", "text/plain" },        { "f.xml", "text/xml" },
        { "i.svg", "image/svg+xml" },     { "i.png", "image/png" },
        { "i.jpg", "image/jpeg" },        { "i.jpeg", "image/jpeg" },
        { "i.gif", "image/gif" },         { "i.webp", "image/webp" },
        { "i.avif", "image/avif" },       { "favicon.ico", "image/x-icon" },
        { "f.woff", "font/woff" },        { "f.woff2", "font/woff2" },
        { "f.ttf", "font/ttf" },          { "f.otf", "font/otf" },
        { "d.pdf", "application/pdf" },   { "a.zip", "application/zip" },
        { "a.gz", "application/gzip" },   { "m.wasm", "application/wasm" },
        { "v.mp4", "video/mp4" },         { "v.webm", "video/webm" },
        { "a.mp3", "audio/mpeg" },        { "a.ogg", "audio/ogg" },
        { "d.csv", "text/csv" },          { "r.md", "text/markdown" },
        { "app.js.map", "application/json" },
    };
    wr_mime_t *m = wr_mime_compile(NULL, NULL, 0);

    assert_non_null(m);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_string_equal(type_of(m, cases[i][0]), cases[i][1]);
        /* the table without compile gives the same answers */
        assert_string_equal(type_of(NULL, cases[i][0]), cases[i][1]);
    }
    wr_mime_free(m);
}

static void test_keys(void **state)
{
    wr_mime_t *m = wr_mime_compile(NULL, NULL, 0);

    assert_string_equal(type_of(m, "INDEX.HTML"), "text/html");      /* case */
    assert_string_equal(type_of(m, "x.Css"), "text/css");
    assert_string_equal(type_of(m, "/srv/www/a/b.png"), "image/png"); /* a path */
    assert_string_equal(type_of(m, "a.tar.gz"), "application/gzip");  /* last dot */
    assert_string_equal(type_of(m, "/srv/dir.html/file"), OCTET);     /* dot in a dir */
    assert_string_equal(type_of(m, "noext"), OCTET);
    assert_string_equal(type_of(m, "trailing."), OCTET);
    assert_string_equal(type_of(m, ".html"), "text/html");
    assert_string_equal(type_of(m, ""), OCTET);
    assert_string_equal(type_of(m, "/dir/"), OCTET);
    assert_string_equal(type_of(m, "x.unknownext"), OCTET);
    /* len is honoured: no NUL needed, no read past it */
    assert_string_equal(wr_mime_type(m, "a.cssXYZ", 5), "text/css");
    wr_mime_free(m);
}

static void test_long_name(void **state)
{
    char name[4096];
    wr_mime_t *m = wr_mime_compile(NULL, NULL, 0);

    memset(name, 'a', sizeof(name));
    memcpy(name + sizeof(name) - 4, ".css", 4);
    assert_string_equal(wr_mime_type(m, name, sizeof(name)), "text/css");
    name[sizeof(name) - 4] = 'x';                   /* now one long key */
    assert_string_equal(wr_mime_type(m, name, sizeof(name)), OCTET);
    wr_mime_free(m);
}

static void test_conf_override(void **state)
{
    char err[256];
    wr_mime_t *m = compile_json("{\"text/x-foo\": \".foo\","
                                " \"text/plain\": [\".html\", \".LOG\", \"README\"],"
                                " \"image/x-custom\": [\".png\"]}", err, sizeof(err));

    assert_non_null(m);
    assert_string_equal(type_of(m, "a.foo"), "text/x-foo");
    assert_string_equal(type_of(m, "a.FOO"), "text/x-foo");
    assert_string_equal(type_of(m, "index.html"), "text/plain");   /* overridden */
    assert_string_equal(type_of(m, "x.log"), "text/plain");        /* stored lowercase */
    assert_string_equal(type_of(m, "/docs/README"), "text/plain"); /* a file name */
    assert_string_equal(type_of(m, "readme"), "text/plain");
    assert_string_equal(type_of(m, "README.md"), "text/markdown"); /* not the name */
    assert_string_equal(type_of(m, "i.png"), "image/x-custom");
    assert_string_equal(type_of(m, "s.css"), "text/css");          /* built-ins stay */
    wr_mime_free(m);
}

/* Unit: keys are whole extensions or whole names, never parts of them. */
static void test_conf_no_partial(void **state)
{
    char err[256];
    wr_mime_t *m = compile_json("{\"text/x-blah\": [\"ile\", \"fil\", \"f\", \"e\","
                                " \".file\"]}", err, sizeof(err));

    assert_non_null(m);
    assert_string_equal(type_of(m, "/dir/file"), OCTET);
    assert_string_equal(type_of(m, "x.file"), "text/x-blah");
    assert_string_equal(type_of(m, "f"), "text/x-blah");
    assert_string_equal(type_of(m, "a.f"), OCTET);
    wr_mime_free(m);
}

static void test_conf_errors(void **state)
{
    char err[256];

    assert_null(compile_json("{\"a/b\": \".x\", \"c/d\": [\".X\"]}", err, sizeof(err)));
    assert_non_null(strstr(err, ".X"));
    assert_null(compile_json("{\"a/b\": 5}", err, sizeof(err)));
    assert_non_null(strstr(err, "a/b"));
    assert_null(compile_json("{\"a/b\": [\".x\", 1]}", err, sizeof(err)));
    assert_null(compile_json("{\"a/b\": \"\"}", err, sizeof(err)));
    assert_null(compile_json("[]", err, sizeof(err)));
    /* the same key twice for one type is harmless */
    wr_mime_t *m = compile_json("{\"a/b\": [\".x\", \".x\"]}", err, sizeof(err));
    assert_non_null(m);
    assert_string_equal(type_of(m, "q.x"), "a/b");
    wr_mime_free(m);
}

static void test_conf_absent(void **state)
{
    char err[64];
    json_t *conf = json_loads("{\"settings\": {\"http\": {}}}", 0, NULL);
    wr_mime_t *m = wr_mime_compile(conf, err, sizeof(err));

    assert_non_null(m);
    assert_string_equal(err, "");
    assert_string_equal(type_of(m, "a.svg"), "image/svg+xml");
    wr_mime_free(m);
    json_decref(conf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtin),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_long_name),
        cmocka_unit_test(test_conf_override),
        cmocka_unit_test(test_conf_no_partial),
        cmocka_unit_test(test_conf_errors),
        cmocka_unit_test(test_conf_absent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
