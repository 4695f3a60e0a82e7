/*
 * libFuzzer target for src/http: request heads, chunked bodies, path
 * normalization. Input: one flags byte, two bytes of split point, then the
 * bytes to parse. Checked invariants (abort on violation):
 *   request  - a result > 0 is <= len and every pointer lies inside buf;
 *              a prefix parses to 0 or to the whole result (0 before a
 *              complete head); extra bytes after a head change nothing;
 *              the interpreted fields are coherent (version, CL vs chunked, Host)
 *   chunked  - same return, consumed and payload when fed whole, in two pieces,
 *              or one byte at a time; payload never larger than consumed
 *   path     - the result is <= len, starts with '/', holds no "//", no "."
 *              or ".." segment
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

enum {
    HDR_LEN          = 3,       /* flags, split (2 bytes) */
    F_SMALL_LIMITS   = 1 << 0,  /* tiny header buffers, to reach 414/431 often */
    F_KEEP_UNSAFE    = 1 << 1,
    F_MAX_BODY       = 1 << 2,  /* chunked: a small max_body */
    SMALL_BUFFER     = 64,
    SMALL_BUFFERS    = 3,
    SMALL_MAX_BODY   = 100,
};

static int inside(const char *p, size_t n, const char *buf, size_t len)
{
    return p >= buf && p + n <= buf + len;
}

static void check_request(const wr_http_request_t *r, const char *buf, long rc)
{
    size_t len = (size_t)rc;

    CHECK(inside(r->method, r->method_len, buf, len) && r->method_len > 0);
    CHECK(inside(r->target, r->target_len, buf, len) && r->target_len > 0);
    if (r->path)    /* or the static "/" of an absolute-form target */
        CHECK(inside(r->path, r->path_len, buf, len) || (r->path_len == 1 && r->path[0] == '/'));
    if (r->query)
        CHECK(inside(r->query, r->query_len, buf, len));
    if (r->host)
        CHECK(inside(r->host, r->host_len, buf, len));
    CHECK(r->version == 10 || r->version == 11);
    CHECK(r->version == 10 || r->host);
    CHECK(r->nfields <= WR_HTTP_MAX_FIELDS);
    for (size_t i = 0; i < r->nfields; i++) {
        CHECK(inside(r->fields[i].name, r->fields[i].name_len, buf, len));
        CHECK(inside(r->fields[i].value, r->fields[i].value_len, buf, len));
    }
    CHECK(r->content_length >= -1);
    CHECK(!r->chunked || (r->content_length == -1 && r->version == 11));
}

/* Parse a heap copy of exactly n bytes, so ASan sees any over-read. */
static long parse_copy(wr_http_request_t *r, const uint8_t *d, size_t n,
                       const wr_http_limits_t *lim, char **keep)
{
    char *b = malloc(n ? n : 1);
    memcpy(b, d, n);
    long rc = wr_http_parse_request(r, b, n, lim);
    if (keep)
        *keep = b;
    else
        free(b);
    return rc;
}

static void fuzz_request(const uint8_t *d, size_t n, size_t split, const wr_http_limits_t *lim)
{
    static wr_http_request_t whole, part;   /* big: keep them off the stack */
    char *buf;
    long rc = parse_copy(&whole, d, n, lim, &buf);

    CHECK(rc <= (long)n);
    if (rc > 0)
        check_request(&whole, buf, rc);

    long prc = parse_copy(&part, d, split, lim, NULL);
    if (rc > 0 && (long)split < rc)
        CHECK(prc == 0);
    else if (prc != 0)
        CHECK(prc == rc);

    if (rc > 0) {   /* the head alone gives the same request */
        char *head;
        long hrc = parse_copy(&part, d, (size_t)rc, lim, &head);
        CHECK(hrc == rc && part.nfields == whole.nfields);
        CHECK(part.content_length == whole.content_length && part.chunked == whole.chunked);
        CHECK(part.keep_alive == whole.keep_alive && part.upgrade == whole.upgrade);
        CHECK(part.method_len == whole.method_len && part.target_len == whole.target_len);
        for (size_t i = 0; i < part.nfields; i++)
            CHECK(part.fields[i].value - head == whole.fields[i].value - buf);
        free(head);
    }
    free(buf);
}

typedef struct {
    int rc;
    size_t consumed, out_len;
    char *out;
} decoded_t;

/* Decode d[0..n) fed in pieces of at most step bytes (0: whole), plus a cut. */
static decoded_t decode(const uint8_t *d, size_t n, long long max, size_t cut, size_t step)
{
    decoded_t res = { 0, 0, 0, malloc(n ? n : 1) };
    char *b = malloc(n ? n : 1);
    wr_http_chunked_t c;
    size_t from = 0;

    memcpy(b, d, n);
    wr_http_chunked_init(&c, max);
    while (from < n || from == 0) {
        size_t to = step ? from + step : (from < cut ? cut : n);
        if (to > n)
            to = n;
        size_t used, out;
        res.rc = wr_http_chunked_decode(&c, b + from, to - from, &used, &out);
        CHECK(used <= to - from && out <= used);
        memcpy(res.out + res.out_len, b + from, out);
        res.out_len += out;
        res.consumed += used;
        if (res.rc != 0 || to == n)
            break;
        CHECK(used == to - from);
        from = to;
    }
    free(b);
    return res;
}

static void fuzz_chunked(const uint8_t *d, size_t n, size_t split, long long max)
{
    decoded_t a = decode(d, n, max, n, 0);
    decoded_t b = decode(d, n, max, split, 0);
    decoded_t c = decode(d, n, max, n, 1);

    CHECK(a.rc == b.rc && a.rc == c.rc);
    CHECK(a.consumed == b.consumed && a.consumed == c.consumed);
    CHECK(a.rc == 0 ? a.consumed == n : a.consumed <= n);
    if (a.rc >= 0) {
        CHECK(a.out_len == b.out_len && a.out_len == c.out_len);
        CHECK(memcmp(a.out, b.out, a.out_len) == 0 && memcmp(a.out, c.out, a.out_len) == 0);
        CHECK(max < 0 || (long long)a.out_len <= max);
    }
    free(a.out);
    free(b.out);
    free(c.out);
}

static void fuzz_path(const uint8_t *d, size_t n)
{
    char *src = malloc(n ? n : 1), *out = malloc(n + 1);
    memcpy(src, d, n);
    long len = wr_http_normalize_path(src, n, out);

    if (len >= 0) {
        CHECK((size_t)len <= n && out[len] == '\0' && out[0] == '/');
        CHECK(strlen(out) == (size_t)len);       /* %00 never gets through */
        CHECK(!strstr(out, "//") && !strstr(out, "/./") && !strstr(out, "/../"));
        CHECK(!(len >= 2 && strcmp(out + len - 2, "/.") == 0));
        CHECK(!(len >= 3 && strcmp(out + len - 3, "/..") == 0));
    }
    free(src);
    free(out);
}

/* Response heads (the proxy's parser): pointers inside, prefixes agree. */
static void fuzz_response(const uint8_t *d, size_t n, size_t split, size_t max)
{
    static wr_http_response_t whole, part;
    char *buf = malloc(n ? n : 1), *pre = malloc(split ? split : 1);
    long rc, prc;

    memcpy(buf, d, n);
    memcpy(pre, d, split);
    rc = wr_http_parse_response(&whole, buf, n, max);
    CHECK(rc >= -2 && rc <= (long)n && rc <= (long)max);
    if (rc > 0) {
        CHECK(whole.status >= 100 && whole.status <= 999);
        CHECK(whole.nfields <= WR_HTTP_MAX_FIELDS);
        CHECK(!whole.chunked || whole.content_length == -1);
        for (size_t i = 0; i < whole.nfields; i++) {
            CHECK(inside(whole.fields[i].name, whole.fields[i].name_len, buf, (size_t)rc));
            CHECK(inside(whole.fields[i].value, whole.fields[i].value_len, buf, (size_t)rc));
        }
    }
    prc = wr_http_parse_response(&part, pre, split, max);
    if (rc > 0 && (long)split < rc)
        CHECK(prc == 0);
    else if (prc != 0)
        CHECK(prc == rc);
    free(buf);
    free(pre);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < HDR_LEN)
        return 0;
    int flags = data[0];
    const uint8_t *d = data + HDR_LEN;
    size_t n = size - HDR_LEN;
    size_t split = ((size_t)data[1] << 8 | data[2]) % (n + 1);
    wr_http_limits_t lim;

    wr_http_limits_default(&lim);
    if (flags & F_SMALL_LIMITS) {
        lim.header_buffer_size = SMALL_BUFFER;
        lim.header_buffers = SMALL_BUFFERS;
    }
    lim.discard_unsafe_fields = !(flags & F_KEEP_UNSAFE);
    long long max = (flags & F_MAX_BODY) ? SMALL_MAX_BODY : -1;

    fuzz_request(d, n, split, &lim);
    fuzz_chunked(d, n, split, max);
    fuzz_path(d, n);
    fuzz_response(d, n, split, (flags & F_SMALL_LIMITS) ? SMALL_BUFFER * SMALL_BUFFERS
                                                        : WR_HTTP_DEFAULT_BUFFER_SIZE);

    /* A head followed by a chunked body: decode what follows the head. */
    wr_http_request_t *r = malloc(sizeof(*r));
    long rc = wr_http_parse_request(r, (const char *)d, n, &lim);
    if (rc > 0 && r->chunked)
        fuzz_chunked(d + rc, n - (size_t)rc, split > (size_t)rc ? split - (size_t)rc : 0, max);
    free(r);
    return 0;
}
