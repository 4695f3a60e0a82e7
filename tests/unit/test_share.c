/*
 * route/share.c: the share action on real files in a temporary directory
 * (index, redirects, symlinks, chroot escapes, mounts, types, fallback), and
 * the validators (ETag, HTTP dates, conditional requests, Range).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "route/route_int.h"   /* wr_mime_filter_compile for "types" */

/* ---------------------------------------------------------------- fixture */

typedef struct {
    char root[PATH_MAX];
    int  mounted;              /* www/mnt is a tmpfs */
    wr_mime_t *mime;
} fx_t;

static void path_of(const fx_t *fx, const char *rel, char *out)
{
    int n = snprintf(out, PATH_MAX, "%s/%s", fx->root, rel);

    assert_true(n > 0 && n < PATH_MAX);
}

static void put_file(const fx_t *fx, const char *rel, const char *body)
{
    char p[PATH_MAX];
    int fd;

    path_of(fx, rel, p);
    fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, body, strlen(body)), (ssize_t) strlen(body));
    close(fd);
}

static void put_dir(const fx_t *fx, const char *rel)
{
    char p[PATH_MAX];

    path_of(fx, rel, p);
    assert_int_equal(mkdir(p, 0755), 0);
}

static void put_link(const fx_t *fx, const char *rel, const char *target)
{
    char p[PATH_MAX];

    path_of(fx, rel, p);
    assert_int_equal(symlink(target, p), 0);
}

static int setup(void **state)
{
    fx_t *fx = calloc(1, sizeof(*fx));
    char p[PATH_MAX], abs_target[PATH_MAX];

    strcpy(fx->root, "/tmp/wr_share_XXXXXX");
    assert_non_null(mkdtemp(fx->root));
    put_dir(fx, "www");
    put_file(fx, "www/index.html", "home");
    put_file(fx, "www/a.txt", "hello");
    put_file(fx, "www/pic.PNG", "png");
    put_dir(fx, "www/dir");
    put_file(fx, "www/dir/file.txt", "in dir");
    put_dir(fx, "www/my dir");
    put_dir(fx, "www/sub");
    put_file(fx, "www/sub/home.htm", "sub home");
    put_dir(fx, "www/sub/index.html");              /* an index that is a directory */
    put_link(fx, "www/link-in", "a.txt");
    put_link(fx, "www/link-dir", "dir");
    put_link(fx, "www/link-out", "../secret.txt");
    path_of(fx, "www/a.txt", abs_target);
    put_link(fx, "www/link-abs", abs_target);
    put_file(fx, "secret.txt", "secret");
    put_dir(fx, "wwwx");
    put_file(fx, "wwwx/a.txt", "neighbour");
    put_dir(fx, "other");
    put_file(fx, "other/b.txt", "other b");
    put_file(fx, "other/a.txt", "other a");
    path_of(fx, "www/fifo", p);
    assert_int_equal(mkfifo(p, 0644), 0);

    put_dir(fx, "www/mnt");
    path_of(fx, "www/mnt", p);
    if (mount("wr_share_test", p, "tmpfs", 0, "size=64k") == 0) {
        fx->mounted = 1;
        put_file(fx, "www/mnt/m.txt", "mounted");
    }
    fx->mime = wr_mime_compile(NULL, NULL, 0);
    assert_non_null(fx->mime);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fx_t *fx = *state;
    char p[PATH_MAX], cmd[PATH_MAX + 16];

    if (fx->mounted) {
        path_of(fx, "www/mnt", p);
        assert_int_equal(umount2(p, MNT_DETACH), 0);
    }
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->root);
    assert_int_equal(system(cmd), 0);
    wr_mime_free(fx->mime);
    free(fx);
    return 0;
}

/* --------------------------------------------------------------- actions */

static wr_tpl_t *tpl(const char *s)
{
    char err[128];
    wr_tpl_t *t = wr_tpl_compile(s, err, sizeof(err));

    if (t == NULL)
        fail_msg("template %s: %s", s, err);
    return t;
}

static wr_action_t *action(const fx_t *fx, const char *share)
{
    wr_action_t *a = calloc(1, sizeof(*a));
    char p[PATH_MAX];

    a->kind = WR_ACTION_SHARE;
    a->follow_symlinks = 1;
    a->traverse_mounts = 1;
    a->share = calloc(4, sizeof(*a->share));
    path_of(fx, share, p);
    a->share[a->nshare++] = tpl(p);
    return a;
}

static void add_share(const fx_t *fx, wr_action_t *a, const char *share)
{
    char p[PATH_MAX];

    path_of(fx, share, p);
    a->share[a->nshare++] = tpl(p);
}

static void set_chroot(const fx_t *fx, wr_action_t *a, const char *rel)
{
    char p[PATH_MAX];

    path_of(fx, rel, p);
    wr_tpl_free(a->chroot);
    a->chroot = tpl(p);
}

static void set_types(wr_action_t *a, const char *json)
{
    char err[128];
    json_t *v = json_loads(json, JSON_DECODE_ANY, NULL);

    wr_mime_filter_free(a->types);
    a->types = wr_mime_filter_compile(v, err, sizeof(err));
    assert_non_null(a->types);
    json_decref(v);
}

static void action_free(wr_action_t *a)
{
    for (size_t i = 0; i < a->nshare; i++)
        wr_tpl_free(a->share[i]);
    free(a->share);
    wr_tpl_free(a->index);
    wr_tpl_free(a->chroot);
    wr_mime_filter_free(a->types);
    free(a->fallback);
    free(a);
}

static wr_req_view_t req(const char *uri, const char *query)
{
    wr_req_view_t r = { 0 };

    r.method = (wr_str_t) { "GET", 3 };
    r.uri = (wr_str_t) { uri, strlen(uri) };
    if (query != NULL)
        r.query = (wr_str_t) { query, strlen(query) };
    return r;
}

/* Open uri with a; check the status; for 200 check the body and close. */
static void expect(const fx_t *fx, const wr_action_t *a, const char *uri, int status,
                   const char *body)
{
    wr_req_view_t r = req(uri, NULL);
    wr_buf_t scratch = { 0 };
    wr_share_result_t res;
    char got[256];
    ssize_t n;

    assert_int_equal(wr_share_open(a, fx->mime, &r, &scratch, &res), status);
    if (res.status != status)
        fail_msg("%s: status %d, want %d", uri, res.status, status);
    assert_int_equal(scratch.n, 0);                 /* scratch left as found */
    if (status == 200) {
        assert_true(res.fd >= 0);
        assert_true(S_ISREG(res.st.st_mode));
        n = read(res.fd, got, sizeof(got) - 1);
        assert_true(n >= 0);
        got[n] = '\0';
        assert_string_equal(got, body);
        assert_int_equal(res.st.st_size, (off_t) strlen(body));
        /* the descriptor is opened close-on-exec and non-blocking */
        assert_true(fcntl(res.fd, F_GETFD) & FD_CLOEXEC);
        assert_true(fcntl(res.fd, F_GETFL) & O_NONBLOCK);
        close(res.fd);
    } else {
        assert_int_equal(res.fd, -1);
    }
    if (status != 301)
        assert_null(res.location);
    free(res.location);
    wr_buf_free(&scratch);
}

/* ------------------------------------------------------------ share tests */

static void test_regular_and_index(void **state)
{
    fx_t *fx = *state;
    wr_action_t *a = action(fx, "www$uri");
    wr_req_view_t r = req("/pic.PNG", NULL);
    wr_buf_t scratch = { 0 };
    wr_share_result_t res;

    expect(fx, a, "/a.txt", 200, "hello");
    expect(fx, a, "/", 200, "home");
    expect(fx, a, "/index.html", 200, "home");
    expect(fx, a, "/dir/file.txt", 200, "in dir");
    expect(fx, a, "/missing.txt", 404, NULL);
    expect(fx, a, "/a.txt/x", 404, NULL);           /* ENOTDIR */
    expect(fx, a, "/dir/", 404, NULL);              /* no index: Unit's 404 */
    expect(fx, a, "/sub/", 404, NULL);              /* index is a directory */
    expect(fx, a, "/fifo", 404, NULL);              /* not a regular file */

    assert_int_equal(wr_share_open(a, fx->mime, &r, &scratch, &res), 200);
    assert_string_equal(res.mime, "image/png");
    close(res.fd);
    r = req("/", NULL);
    assert_int_equal(wr_share_open(a, fx->mime, &r, &scratch, &res), 200);
    assert_string_equal(res.mime, "text/html");     /* from the index name */
    close(res.fd);
    wr_buf_free(&scratch);
    action_free(a);
}

static void test_custom_index_and_mime_by_file(void **state)
{
    fx_t *fx = *state;
    wr_action_t *a = action(fx, "www$uri");
    wr_req_view_t r = req("/sub/", NULL);
    wr_buf_t scratch = { 0 };
    wr_share_result_t res;

    a->index = tpl("home.htm");
    assert_int_equal(wr_share_open(a, fx->mime, &r, &scratch, &res), 200);
    assert_string_equal(res.mime, "text/html");
    close(res.fd);
    expect(fx, a, "/", 404, NULL);                  /* no www/home.htm */
    action_free(a);

    /* a constant share: the type comes from the file, not from $uri */
    a = action(fx, "www/a.txt");
    r = req("/anything.html", NULL);
    assert_int_equal(wr_share_open(a, fx->mime, &r, &scratch, &res), 200);
    assert_string_equal(res.mime, "text/plain");
    close(res.fd);
    wr_buf_free(&scratch);
    action_free(a);
}

static void expect_redirect(const fx_t *fx, const wr_action_t *a, const char *uri,
                            const char *query, const char *location)
{
    wr_req_view_t r = req(uri, query);
    wr_buf_t scratch = { 0 };
    wr_share_result_t res;

    assert_int_equal(wr_share_open(a, fx->mime, &r, &scratch, &res), 301);
    assert_int_equal(res.fd, -1);
    assert_non_null(res.location);
    assert_string_equal(res.location, location);
    free(res.location);
    wr_buf_free(&scratch);
}

static void test_directory_redirect(void **state)
{
    fx_t *fx = *state;
    wr_action_t *a = action(fx, "www$uri");

    expect_redirect(fx, a, "/dir", NULL, "/dir/");
    expect_redirect(fx, a, "/dir", "a=1&b=%20", "/dir/?a=1&b=%20");
    expect_redirect(fx, a, "/my dir", NULL, "/my%20dir/");      /* $uri is decoded */
    expect_redirect(fx, a, "/link-dir", NULL, "/link-dir/");
    /* a redirect wins over later share elements */
    add_share(fx, a, "other$uri");
    expect_redirect(fx, a, "/dir", NULL, "/dir/");
    action_free(a);
}

static void test_several_shares_and_fallback(void **state)
{
    fx_t *fx = *state;
    wr_action_t *a = action(fx, "www$uri");

    add_share(fx, a, "other$uri");
    expect(fx, a, "/a.txt", 200, "hello");          /* first one found wins */
    expect(fx, a, "/b.txt", 200, "other b");        /* next one tried on 404 */
    expect(fx, a, "/nope", 404, NULL);

    a->fallback = calloc(1, sizeof(*a->fallback));
    a->fallback->kind = WR_ACTION_RETURN;
    a->fallback->status = 204;
    expect(fx, a, "/nope", 0, NULL);
    expect(fx, a, "/b.txt", 200, "other b");
    action_free(a);
}

static void test_symlinks(void **state)
{
    fx_t *fx = *state;
    wr_action_t *a = action(fx, "www$uri");

    expect(fx, a, "/link-in", 200, "hello");
    expect(fx, a, "/link-out", 200, "secret");      /* no chroot: followed */
    expect(fx, a, "/link-dir/file.txt", 200, "in dir");

    a->follow_symlinks = 0;
    expect(fx, a, "/a.txt", 200, "hello");
    expect(fx, a, "/link-in", 403, NULL);
    expect(fx, a, "/link-out", 403, NULL);
    expect(fx, a, "/link-dir/file.txt", 403, NULL);
    expect(fx, a, "/link-dir", 403, NULL);

    a->fallback = calloc(1, sizeof(*a->fallback));
    expect(fx, a, "/link-in", 0, NULL);             /* 403 goes to the fallback */
    action_free(a);
}

static void test_chroot(void **state)
{
    fx_t *fx = *state;
    wr_action_t *a = action(fx, "www$uri");

    set_chroot(fx, a, "www");
    expect(fx, a, "/a.txt", 200, "hello");
    expect(fx, a, "/", 200, "home");
    expect(fx, a, "/link-in", 200, "hello");        /* relative, stays inside */
    expect(fx, a, "/link-dir/file.txt", 200, "in dir");
    expect(fx, a, "/link-out", 403, NULL);          /* leads out of the chroot */
    expect(fx, a, "/link-abs", 403, NULL);          /* absolute: never beneath */
    expect(fx, a, "/missing", 404, NULL);
    expect_redirect(fx, a, "/dir", NULL, "/dir/");

    set_chroot(fx, a, "www/");                      /* trailing slash */
    expect(fx, a, "/a.txt", 200, "hello");
    set_chroot(fx, a, "www/dir");
    expect(fx, a, "/dir/file.txt", 200, "in dir");
    expect(fx, a, "/a.txt", 403, NULL);             /* not below the chroot */
    expect(fx, a, "/dir", 301, NULL);               /* the chroot itself */

    /* follow_symlinks false inside a chroot */
    set_chroot(fx, a, "www");
    a->follow_symlinks = 0;
    expect(fx, a, "/link-in", 403, NULL);
    expect(fx, a, "/a.txt", 200, "hello");
    action_free(a);
}

static void test_chroot_escapes(void **state)
{
    fx_t *fx = *state;
    wr_action_t *a = action(fx, "www/../secret.txt");   /* ".." by the template */

    expect(fx, a, "/x", 200, "secret");             /* no chroot: allowed */
    set_chroot(fx, a, "www");
    expect(fx, a, "/x", 403, NULL);                 /* "../" climbs out: EXDEV */
    action_free(a);

    a = action(fx, "wwwx/a.txt");                   /* a prefix, not a parent */
    expect(fx, a, "/x", 200, "neighbour");
    set_chroot(fx, a, "www");
    expect(fx, a, "/x", 403, NULL);
    action_free(a);

    a = action(fx, "other$uri");                    /* elsewhere entirely */
    set_chroot(fx, a, "www");
    expect(fx, a, "/b.txt", 403, NULL);
    a->fallback = calloc(1, sizeof(*a->fallback));
    expect(fx, a, "/b.txt", 0, NULL);
    action_free(a);

    a = action(fx, "www$uri");                      /* an empty chroot is none */
    a->chroot = tpl("");
    expect(fx, a, "/link-out", 200, "secret");
    action_free(a);

    a = action(fx, "www$uri");                      /* a missing chroot */
    set_chroot(fx, a, "nonexistent");
    expect(fx, a, "/a.txt", 403, NULL);
    action_free(a);
}

static void test_types(void **state)
{
    fx_t *fx = *state;
    wr_action_t *a = action(fx, "www$uri");

    set_types(a, "[\"text/plain\"]");
    expect(fx, a, "/a.txt", 200, "hello");
    expect(fx, a, "/", 403, NULL);                  /* text/html */
    expect(fx, a, "/pic.PNG", 403, NULL);
    expect(fx, a, "/missing.png", 403, NULL);       /* refused before the open */

    set_types(a, "[\"image/*\"]");
    expect(fx, a, "/pic.PNG", 200, "png");
    expect(fx, a, "/a.txt", 403, NULL);

    set_types(a, "\"!text/plain\"");
    expect(fx, a, "/a.txt", 403, NULL);
    expect(fx, a, "/", 200, "home");

    /* a refused type moves on to the next share, then the fallback */
    set_types(a, "[\"text/plain\"]");
    add_share(fx, a, "other/a.txt");
    expect(fx, a, "/pic.PNG", 200, "other a");
    a->nshare = 1;
    wr_tpl_free(a->share[1]);
    a->fallback = calloc(1, sizeof(*a->fallback));
    expect(fx, a, "/pic.PNG", 0, NULL);
    action_free(a);
}

static void test_mounts(void **state)
{
    fx_t *fx = *state;
    wr_action_t *a;

    if (!fx->mounted) {
        skip();                                     /* mount(2) refused: not root */
        return;
    }
    a = action(fx, "www$uri");
    expect(fx, a, "/mnt/m.txt", 200, "mounted");
    a->traverse_mounts = 0;
    expect(fx, a, "/mnt/m.txt", 403, NULL);
    expect(fx, a, "/a.txt", 200, "hello");
    set_chroot(fx, a, "www");
    expect(fx, a, "/mnt/m.txt", 403, NULL);
    expect(fx, a, "/a.txt", 200, "hello");
    a->traverse_mounts = 1;
    expect(fx, a, "/mnt/m.txt", 200, "mounted");
    set_chroot(fx, a, "www/mnt");                   /* the chroot may be a mount */
    a->traverse_mounts = 0;
    expect(fx, a, "/mnt/m.txt", 200, "mounted");
    action_free(a);
}

/* A rewritten $uri lives in scratch: growing scratch must not pull it away. */
static void test_uri_in_scratch(void **state)
{
    fx_t *fx = *state;
    wr_action_t *a = action(fx, "www$uri");
    wr_buf_t scratch = { 0 };
    wr_share_result_t res;
    wr_req_view_t r = req("", NULL);

    assert_int_equal(wr_buf_puts(&scratch, "/a.txt"), 0);
    r.uri = (wr_str_t) { scratch.p, scratch.n };
    assert_int_equal(wr_share_open(a, fx->mime, &r, &scratch, &res), 200);
    assert_int_equal(scratch.n, 6);
    assert_memory_equal(scratch.p, "/a.txt", 6);
    close(res.fd);

    r = req("/a.txt", NULL);                        /* scratch already in use */
    assert_int_equal(wr_share_open(a, fx->mime, &r, &scratch, &res), 200);
    assert_int_equal(scratch.n, 6);
    close(res.fd);
    wr_buf_free(&scratch);
    action_free(a);
}

/* ------------------------------------------------------------ validators */

static void test_etag(void **state)
{
    struct stat st = { 0 };
    char etag[64];

    st.st_mtime = 0x5f1e;
    st.st_size = 0x1a2b;
    wr_share_etag(&st, etag);
    assert_string_equal(etag, "\"5f1e-1a2b\"");
    st.st_mtime = 1700000000;
    st.st_size = 0;
    wr_share_etag(&st, etag);
    assert_string_equal(etag, "\"6553f100-0\"");
    st.st_size = 0x7fffffffffffffffLL;
    wr_share_etag(&st, etag);
    assert_string_equal(etag, "\"6553f100-7fffffffffffffff\"");
}

static void test_http_date(void **state)
{
    char out[32], want[64];
    struct tm tm;
    unsigned seed = 12345;

    wr_http_date(784111777, out);
    assert_string_equal(out, "Sun, 06 Nov 1994 08:49:37 GMT");
    wr_http_date(0, out);
    assert_string_equal(out, "Thu, 01 Jan 1970 00:00:00 GMT");
    wr_http_date(951782400, out);
    assert_string_equal(out, "Tue, 29 Feb 2000 00:00:00 GMT");
    wr_http_date(4102444799LL, out);
    assert_string_equal(out, "Thu, 31 Dec 2099 23:59:59 GMT");

    /* against the C library, across centuries and leap years */
    for (int i = 0; i < 20000; i++) {
        time_t t = (time_t) (((unsigned long long) rand_r(&seed) << 16 ^ rand_r(&seed))
                             % 253402300800ULL);
        gmtime_r(&t, &tm);
        strftime(want, sizeof(want), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        wr_http_date(t, out);
        assert_string_equal(out, want);
    }
}

typedef struct {
    const char *name, *value;
} hdr_t;

static wr_req_view_t req_with(const char *method, const hdr_t *h, size_t n,
                              wr_http_field_t *fields)
{
    wr_req_view_t r = req("/a", NULL);

    for (size_t i = 0; i < n; i++) {
        fields[i] = (wr_http_field_t) { h[i].name, strlen(h[i].name),
                                        h[i].value, strlen(h[i].value) };
    }
    r.method = (wr_str_t) { method, strlen(method) };
    r.fields = fields;
    r.nfields = n;
    return r;
}

static int not_modified(const char *method, const char *name, const char *value,
                        const char *name2, const char *value2)
{
    hdr_t h[2] = { { name, value }, { name2, value2 } };
    wr_http_field_t f[2];
    struct stat st = { 0 };
    wr_req_view_t r;

    st.st_mtime = 784111777;                        /* Sun, 06 Nov 1994 08:49:37 */
    st.st_size = 10;
    r = req_with(method, h, name == NULL ? 0 : name2 == NULL ? 1 : 2, f);
    return wr_share_not_modified(&r, &st, "\"2ebc3ba1-a\"");
}

static void test_not_modified(void **state)
{
    const char *imf = "Sun, 06 Nov 1994 08:49:37 GMT";

    assert_int_equal(not_modified("GET", NULL, NULL, NULL, NULL), 0);
    /* If-None-Match: weak comparison, lists, "*" */
    assert_int_equal(not_modified("GET", "If-None-Match", "\"2ebc3ba1-a\"", NULL, NULL), 1);
    assert_int_equal(not_modified("GET", "if-none-match", "W/\"2ebc3ba1-a\"", NULL, NULL), 1);
    assert_int_equal(not_modified("HEAD", "If-None-Match", "\"x\", \"2ebc3ba1-a\"", NULL, NULL), 1);
    assert_int_equal(not_modified("GET", "If-None-Match", "\"x\",W/\"2ebc3ba1-a\" ", NULL, NULL), 1);
    assert_int_equal(not_modified("GET", "If-None-Match", "*", NULL, NULL), 1);
    assert_int_equal(not_modified("GET", "If-None-Match", "\"2ebc3ba1-b\"", NULL, NULL), 0);
    assert_int_equal(not_modified("GET", "If-None-Match", "\"2ebc3ba1-a", NULL, NULL), 0);
    assert_int_equal(not_modified("GET", "If-None-Match", "2ebc3ba1-a", NULL, NULL), 0);
    assert_int_equal(not_modified("GET", "If-None-Match", "\"2ebc3ba1\"", NULL, NULL), 0);
    /* two fields form one list */
    assert_int_equal(not_modified("GET", "If-None-Match", "\"x\"",
                                  "If-None-Match", "\"2ebc3ba1-a\""), 1);
    /* If-None-Match present: If-Modified-Since is not looked at */
    assert_int_equal(not_modified("GET", "If-None-Match", "\"x\"",
                                  "If-Modified-Since", imf), 0);
    assert_int_equal(not_modified("GET", "If-Modified-Since", imf,
                                  "If-None-Match", "\"2ebc3ba1-a\""), 1);
    /* only GET and HEAD */
    assert_int_equal(not_modified("POST", "If-None-Match", "*", NULL, NULL), 0);
    assert_int_equal(not_modified("POST", "If-Modified-Since", imf, NULL, NULL), 0);

    /* If-Modified-Since: exact or later is "not modified" */
    assert_int_equal(not_modified("GET", "If-Modified-Since", imf, NULL, NULL), 1);
    assert_int_equal(not_modified("GET", "If-Modified-Since",
                                  "Sun, 06 Nov 1994 08:49:38 GMT", NULL, NULL), 1);
    assert_int_equal(not_modified("GET", "If-Modified-Since",
                                  "Thu, 01 Jan 2099 00:00:00 GMT", NULL, NULL), 1);
    assert_int_equal(not_modified("GET", "If-Modified-Since",
                                  "Sun, 06 Nov 1994 08:49:36 GMT", NULL, NULL), 0);
    assert_int_equal(not_modified("GET", "If-Modified-Since",
                                  "Sunday, 06-Nov-94 08:49:37 GMT", NULL, NULL), 1);
    assert_int_equal(not_modified("GET", "If-Modified-Since",
                                  "Sunday, 06-Nov-94 08:49:36 GMT", NULL, NULL), 0);
    assert_int_equal(not_modified("GET", "If-Modified-Since",
                                  "Sun Nov  6 08:49:37 1994", NULL, NULL), 1);
    assert_int_equal(not_modified("GET", "If-Modified-Since",
                                  "Sun Nov  6 08:49:36 1994", NULL, NULL), 0);
    /* invalid dates are ignored */
    static const char *bad[] = {
        "", "yesterday", "Sun, 06 Nov 1994 08:49:37", "Sun, 06 Nov 1994 08:49:37 GMT x",
        "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:00:00 GMT", "Sun, 06 Nov 94 08:49:37 GMT",
        "Sun, 00 Nov 2094 08:49:37 GMT", "Sun, 06 Nov 1969 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994 GMT", "1994-11-06T08:49:37Z",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (not_modified("GET", "If-Modified-Since", bad[i], NULL, NULL) != 0)
            fail_msg("accepted \"%s\"", bad[i]);
    }
}

static int range(const char *method, const char *value, off_t size, off_t *a, off_t *b)
{
    hdr_t h = { "Range", value };
    wr_http_field_t f;
    wr_req_view_t r = req_with(method, &h, value != NULL, &f);

    *a = *b = -7;
    return wr_share_range(&r, size, a, b);
}

static void test_range(void **state)
{
    static const struct {
        const char *v;
        off_t size;
        int rc;
        off_t first, last;
    } cases[] = {
        { "bytes=0-99",    1000,  1,   0,  99 },
        { "bytes=500-",    1000,  1, 500, 999 },
        { "bytes=-100",    1000,  1, 900, 999 },
        { "bytes=-2000",   1000,  1,   0, 999 },
        { "bytes=0-5000",  1000,  1,   0, 999 },
        { "bytes=999-999", 1000,  1, 999, 999 },
        { "bytes=0-0",     1000,  1,   0,   0 },
        { "BYTES=1-2",     1000,  1,   1,   2 },
        { "bytes= 1-2",    1000,  1,   1,   2 },
        { "bytes=1-2 ,",   1000,  1,   1,   2 },     /* empty list elements */
        { "bytes=0-99999999999999999999999", 1000, 1, 0, 999 },
        { "bytes=1000-",   1000, -1,  -7,  -7 },
        { "bytes=1000-2000", 1000, -1, -7, -7 },
        { "bytes=99999999999999999999999-", 1000, -1, -7, -7 },
        { "bytes=-0",      1000, -1,  -7,  -7 },
        { "bytes=0-",         0, -1,  -7,  -7 },
        { "bytes=-5",         0, -1,  -7,  -7 },
        { "bytes=5-2",     1000,  0,  -7,  -7 },     /* invalid: ignored */
        { "bytes=0-1,5-6", 1000,  0,  -7,  -7 },     /* several: whole file */
        { "items=0-1",     1000,  0,  -7,  -7 },
        { "bytes=abc",     1000,  0,  -7,  -7 },
        { "bytes=",        1000,  0,  -7,  -7 },
        { "bytes=-",       1000,  0,  -7,  -7 },
        { "bytes=1-2x",    1000,  0,  -7,  -7 },
        { "bytes=1",       1000,  0,  -7,  -7 },
        { "bytes=--1",     1000,  0,  -7,  -7 },
        { "bytes",         1000,  0,  -7,  -7 },
    };
    off_t a, b;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = range("GET", cases[i].v, cases[i].size, &a, &b);
        if (rc != cases[i].rc || a != cases[i].first || b != cases[i].last)
            fail_msg("\"%s\": %d %lld-%lld, want %d %lld-%lld", cases[i].v, rc,
                     (long long) a, (long long) b, cases[i].rc,
                     (long long) cases[i].first, (long long) cases[i].last);
    }
    assert_int_equal(range("GET", NULL, 1000, &a, &b), 0);
    assert_int_equal(range("HEAD", "bytes=0-1", 1000, &a, &b), 0);
    assert_int_equal(range("POST", "bytes=0-1", 1000, &a, &b), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_regular_and_index),
        cmocka_unit_test(test_custom_index_and_mime_by_file),
        cmocka_unit_test(test_directory_redirect),
        cmocka_unit_test(test_several_shares_and_fallback),
        cmocka_unit_test(test_symlinks),
        cmocka_unit_test(test_chroot),
        cmocka_unit_test(test_chroot_escapes),
        cmocka_unit_test(test_types),
        cmocka_unit_test(test_mounts),
        cmocka_unit_test(test_uri_in_scratch),
        cmocka_unit_test(test_etag),
        cmocka_unit_test(test_http_date),
        cmocka_unit_test(test_not_modified),
        cmocka_unit_test(test_range),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
