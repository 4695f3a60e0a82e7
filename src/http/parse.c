/*
 * HTTP/1.1 request head parser (RFC 9112 §2-§3, §5-§6; RFC 9110 §5, §7).
 *
 * One left-to-right pass over the buffer, line by line. Each line is scanned
 * inside a window that ends at the first of: the end of the data, the line
 * limit, the head limit. Running into the window's end means "need more" when
 * the data ran out, or the limit's status when a limit did; that is what makes
 * every decision positional, so a prefix of the input yields 0 or the same
 * answer as the whole input, and a bad byte is reported as soon as it arrives.
 */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "http/chars.h"
#include "http/http.h"

enum {
    STEP_MORE = 0,     /* need more bytes */
    STEP_OK   = 1,     /* the line is done; negative values are statuses */
};

enum {
    HTTP_400 = -400, HTTP_414 = -414, HTTP_431 = -431, HTTP_501 = -501, HTTP_505 = -505,
};

#define LIT(s) s, sizeof(s) - 1
#define DECIMAL_RADIX 10

static const char wr_http_root_path[] = "/";

/* Everything the parse knows besides the request itself. */
typedef struct {
    const char *buf;
    size_t      len;
    size_t      line_max;       /* header_buffer_size */
    size_t      head_max;       /* header_buffers * header_buffer_size, saturated */
    int         discard_unsafe;
    int         h2;             /* "HTTP/2.0" is a request line's version too */
    int         hosts;          /* Host field lines seen */
    int         host_from_target;
    int         transfer_encoding; /* a Transfer-Encoding field was seen */
    int         conn_close, conn_keep_alive, conn_upgrade, upgrade_field;
} parse_ctx_t;

/* The bytes one line may be scanned in, and what reaching their end means. */
typedef struct {
    const char *end;
    int         end_status;     /* STEP_MORE, or the negative limit status */
} window_t;

static window_t line_window(const parse_ctx_t *c, size_t start, int line_status)
{
    size_t line_end = c->line_max > SIZE_MAX - start ? SIZE_MAX : start + c->line_max;
    size_t limit    = line_end <= c->head_max ? line_end : c->head_max;
    int    status   = line_end <= c->head_max ? line_status : HTTP_431;
    window_t w;

    if (limit <= c->len) {
        w.end = c->buf + limit;
        w.end_status = status;
    } else {
        w.end = c->buf + c->len;
        w.end_status = STEP_MORE;
    }
    return w;
}

/* At *p: CRLF or a bare LF (RFC 9112 §2.2); a CR alone is an error. */
static int line_end(const char **p, const window_t *w)
{
    const char *s = *p;

    if (s == w->end)
        return w->end_status;
    if (*s == '\n') {
        *p = s + 1;
        return STEP_OK;
    }
    if (*s != '\r')
        return HTTP_400;
    if (s + 1 == w->end)
        return w->end_status;
    if (s[1] != '\n')
        return HTTP_400;
    *p = s + 2;
    return STEP_OK;
}

/* RFC 9112 §2.2: skip a few empty lines a client may send before a request. */
static int skip_empty_lines(parse_ctx_t *c, size_t *pos)
{
    for (int n = 0; ; n++) {
        window_t w = line_window(c, *pos, HTTP_431);
        const char *p = c->buf + *pos;

        if (p == w.end)
            return w.end_status;
        if (*p != '\r' && *p != '\n')
            return STEP_OK;
        if (n == WR_HTTP_MAX_EMPTY_LINES)
            return HTTP_400;
        int rc = line_end(&p, &w);
        if (rc != STEP_OK)
            return rc;
        *pos = (size_t)(p - c->buf);
    }
}

/*
 * Host: uri-host [ ":" port ] (RFC 9110 §7.2), uri-host an IP-literal in
 * brackets or a reg-name (IPv4 is a reg-name lexically). No userinfo: '@' is
 * rejected (RFC 9110 §4.2.4). Empty is valid (a target without authority).
 */
static int host_valid(const char *s, size_t n)
{
    size_t i = 0;

    if (n > 0 && s[0] == '[') {
        for (i = 1; i < n && s[i] != ']'; i++)
            if (!wr_hc(s[i], WR_HC_HEX) && s[i] != ':' && s[i] != '.')
                return 0;
        if (i == n)
            return 0;
        i++;
    } else {
        while (i < n && wr_hc(s[i], WR_HC_HOST))
            i++;
    }
    if (i == n)
        return 1;
    if (s[i] != ':')
        return 0;
    for (i++; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

/* Split path?query starting at s (an origin-form target or the rest of one). */
static void split_query(wr_http_request_t *r, const char *s, const char *end)
{
    const char *q = memchr(s, '?', (size_t)(end - s));

    r->path = s;
    r->path_len = (size_t)((q ? q : end) - s);
    if (q) {
        r->query = q + 1;
        r->query_len = (size_t)(end - q - 1);
    }
}

static int is_method(const wr_http_request_t *r, const char *m, size_t n)
{
    return r->method_len == n && memcmp(r->method, m, n) == 0;
}

static int starts_with_ci(const char *s, size_t n, const char *lit, size_t lit_len)
{
    return n >= lit_len && wr_hc_ieq(s, lit_len, lit, lit_len);
}

/* absolute-form: http(s)://authority[path][?query] (RFC 9112 §3.2.2). */
static int absolute_form(parse_ctx_t *c, wr_http_request_t *r)
{
    static const char http[] = "http://", https[] = "https://";
    const char *s = r->target, *end = s + r->target_len;
    size_t scheme;

    if (starts_with_ci(s, r->target_len, LIT(http)))
        scheme = sizeof(http) - 1;
    else if (starts_with_ci(s, r->target_len, LIT(https)))
        scheme = sizeof(https) - 1;
    else
        return HTTP_400;

    const char *a = s + scheme, *ae = a;
    while (ae < end && *ae != '/' && *ae != '?')
        ae++;
    if (ae == a || !host_valid(a, (size_t)(ae - a)))
        return HTTP_400;
    r->host = a;
    r->host_len = (size_t)(ae - a);
    c->host_from_target = 1;

    split_query(r, ae, end);
    if (r->path_len == 0) {           /* RFC 9112 §3.2.2: empty path means "/" */
        r->path = wr_http_root_path;
        r->path_len = sizeof(wr_http_root_path) - 1;
    }
    return STEP_OK;
}

/* authority-form, CONNECT only: uri-host ":" port (RFC 9112 §3.2.3). */
static int authority_form(parse_ctx_t *c, wr_http_request_t *r)
{
    const char *colon = NULL;

    for (size_t i = 0; i < r->target_len; i++)
        if (r->target[i] == ':')
            colon = r->target + i;
    if (!colon || colon == r->target || colon + 1 == r->target + r->target_len
        || !host_valid(r->target, r->target_len))
        return HTTP_400;
    r->host = r->target;
    r->host_len = r->target_len;
    c->host_from_target = 1;
    return STEP_OK;
}

/* Decide the form of the target and whether the method allows it. */
static int classify_target(parse_ctx_t *c, wr_http_request_t *r)
{
    const char *t = r->target;

    if (is_method(r, LIT("CONNECT")))
        return authority_form(c, r);
    if (t[0] == '/') {
        split_query(r, t, t + r->target_len);
        return STEP_OK;
    }
    if (t[0] == '*' && r->target_len == 1) {
        if (!is_method(r, LIT("OPTIONS")))
            return HTTP_400;
        r->path = t;
        r->path_len = 1;
        return STEP_OK;
    }
    return absolute_form(c, r);
}

/* "HTTP/" DIGIT "." DIGIT then the line end (RFC 9112 §2.3). */
static int parse_version(const parse_ctx_t *c, wr_http_request_t *r, const char **pp,
                         const window_t *w)
{
    static const char shape[] = "HTTP/d.d";    /* 'd' stands for a DIGIT */
    const char *p = *pp;

    for (size_t i = 0; i < sizeof(shape) - 1; i++, p++) {
        if (p == w->end)
            return w->end_status;
        int ok = shape[i] == 'd' ? (*p >= '0' && *p <= '9') : *p == shape[i];
        if (!ok)
            return HTTP_400;
    }
    int major = p[-3] - '0', minor = p[-1] - '0';
    int rc = line_end(&p, w);
    if (rc != STEP_OK)
        return rc;
    if (c->h2 && major == 2 && minor == 0) {
        /* A stream of the router's own HTTP/2 (router/h2.c): HTTP/1.1
         * semantics, the version kept for the request line. */
        r->version = WR_HTTP_11;
        *pp = p;
        return STEP_OK;
    }
    if (major != 1)
        return HTTP_505;
    /* RFC 9110 §6.2: a higher minor version is processed as our highest. */
    r->version = minor == 0 ? WR_HTTP_10 : WR_HTTP_11;
    *pp = p;
    return STEP_OK;
}

/* method SP request-target SP HTTP-version CRLF, single spaces only. */
static int parse_request_line(parse_ctx_t *c, wr_http_request_t *r, size_t *pos)
{
    window_t w = line_window(c, *pos, HTTP_414);
    const char *p = c->buf + *pos;

    r->method = p;
    while (p < w.end && wr_hc(*p, WR_HC_TCHAR))
        p++;
    if (p == w.end)
        return w.end_status;
    if (*p != ' ' || p == r->method)
        return HTTP_400;
    r->method_len = (size_t)(p - r->method);

    r->target = ++p;
    while (p < w.end && wr_hc(*p, WR_HC_TARGET))
        p++;
    if (p == w.end)
        return w.end_status;
    if (*p != ' ' || p == r->target)
        return HTTP_400;
    r->target_len = (size_t)(p - r->target);
    int rc = classify_target(c, r);
    if (rc != STEP_OK)
        return rc;

    p++;
    rc = parse_version(c, r, &p, &w);
    if (rc != STEP_OK)
        return rc;
    *pos = (size_t)(p - c->buf);
    return STEP_OK;
}

/* Next element of a #list (RFC 9110 §5.6.1): trimmed, empty ones skipped. */
static int list_next(const char **p, const char *end, const char **e, size_t *n)
{
    const char *s = *p;

    for (;;) {
        while (s < end && (*s == ' ' || *s == '\t' || *s == ','))
            s++;
        if (s == end)
            return 0;
        const char *x = memchr(s, ',', (size_t)(end - s));
        const char *xe = x ? x : end;
        *p = xe;
        while (xe > s && (xe[-1] == ' ' || xe[-1] == '\t'))
            xe--;
        *e = s;
        *n = (size_t)(xe - s);
        return 1;
    }
}

/* Content-Length: 1*DIGIT, or a list of identical ones (RFC 9110 §8.6). */
static int apply_content_length(parse_ctx_t *c, wr_http_request_t *r,
                                const wr_http_field_t *f)
{
    const char *p = f->value, *end = p + f->value_len, *e;
    size_t n;
    int any = 0;

    if (c->transfer_encoding)
        return HTTP_400;               /* RFC 9112 §6.3: smuggling vector */
    while (list_next(&p, end, &e, &n)) {
        long long v = 0;
        for (size_t i = 0; i < n; i++) {
            if (e[i] < '0' || e[i] > '9')
                return HTTP_400;
            int d = e[i] - '0';
            if (v > (LLONG_MAX - d) / DECIMAL_RADIX)
                return HTTP_400;
            v = v * DECIMAL_RADIX + d;
        }
        if (r->content_length >= 0 && r->content_length != v)
            return HTTP_400;
        r->content_length = v;
        any = 1;
    }
    return any ? STEP_OK : HTTP_400;
}

/*
 * Transfer-Encoding (RFC 9112 §6.1, §6.3): only chunked is implemented, so any
 * other coding is 501; chunked must be the final coding and appear once.
 */
static int apply_transfer_encoding(parse_ctx_t *c, wr_http_request_t *r,
                                   const wr_http_field_t *f)
{
    const char *p = f->value, *end = p + f->value_len, *e;
    size_t n;
    int any = 0;

    if (r->version == WR_HTTP_10 || r->content_length >= 0)
        return HTTP_400;
    c->transfer_encoding = 1;
    while (list_next(&p, end, &e, &n)) {
        size_t tok = 0;
        while (tok < n && wr_hc(e[tok], WR_HC_TCHAR))
            tok++;
        if (tok == 0 || r->chunked)
            return HTTP_400;           /* not a coding, or something after chunked */
        if (!wr_hc_ieq(e, tok, LIT("chunked")))
            return HTTP_501;
        if (tok != n)
            return HTTP_400;           /* chunked takes no parameters */
        r->chunked = 1;
        any = 1;
    }
    return any ? STEP_OK : HTTP_400;
}

static void apply_connection(parse_ctx_t *c, const wr_http_field_t *f)
{
    const char *p = f->value, *end = p + f->value_len, *e;
    size_t n;

    while (list_next(&p, end, &e, &n)) {
        if (wr_hc_ieq(e, n, LIT("close")))
            c->conn_close = 1;
        else if (wr_hc_ieq(e, n, LIT("keep-alive")))
            c->conn_keep_alive = 1;
        else if (wr_hc_ieq(e, n, LIT("upgrade")))
            c->conn_upgrade = 1;
    }
}

static void apply_expect(wr_http_request_t *r, const wr_http_field_t *f)
{
    const char *p = f->value, *end = p + f->value_len, *e;
    size_t n;

    while (list_next(&p, end, &e, &n))
        if (wr_hc_ieq(e, n, LIT("100-continue")))
            r->expect_continue = 1;
}

static int apply_host(parse_ctx_t *c, wr_http_request_t *r, const wr_http_field_t *f)
{
    if (++c->hosts > 1 || !host_valid(f->value, f->value_len))
        return HTTP_400;               /* RFC 9112 §3.2 */
    if (!c->host_from_target) {        /* the target's authority wins */
        r->host = f->value;
        r->host_len = f->value_len;
    }
    return STEP_OK;
}

/* Interpret the fields the parser itself needs; others are only stored. */
static int apply_field(parse_ctx_t *c, wr_http_request_t *r, const wr_http_field_t *f)
{
    const char *n = f->name;
    size_t nl = f->name_len;

    if (wr_hc_ieq(n, nl, LIT("host")))
        return apply_host(c, r, f);
    if (wr_hc_ieq(n, nl, LIT("content-length")))
        return apply_content_length(c, r, f);
    if (wr_hc_ieq(n, nl, LIT("transfer-encoding")))
        return apply_transfer_encoding(c, r, f);
    if (wr_hc_ieq(n, nl, LIT("connection")))
        apply_connection(c, f);
    else if (wr_hc_ieq(n, nl, LIT("upgrade")))
        c->upgrade_field |= f->value_len > 0;
    else if (wr_hc_ieq(n, nl, LIT("expect")))
        apply_expect(r, f);
    return STEP_OK;
}

/*
 * field-name ":" OWS field-value OWS, or the empty line ending the head
 * (*done set). Leading whitespace is obs-fold or junk before the first
 * field: both 400 (RFC 9112 §2.2, §5.2).
 */
static int parse_field_line(parse_ctx_t *c, wr_http_request_t *r, size_t *pos, int *done)
{
    window_t w = line_window(c, *pos, HTTP_431);
    const char *p = c->buf + *pos, *name = p;
    int unsafe = 0;

    if (p < w.end && (*p == '\r' || *p == '\n')) {
        int rc = line_end(&p, &w);
        *done = rc == STEP_OK;
        *pos = (size_t)(p - c->buf);
        return rc;
    }
    while (p < w.end && wr_hc(*p, WR_HC_TCHAR))
        unsafe |= !wr_hc(*p++, WR_HC_SAFE);
    if (p == w.end)
        return w.end_status;
    if (*p != ':' || p == name)
        return HTTP_400;               /* includes space before the colon */

    wr_http_field_t f = { .name = name, .name_len = (size_t)(p - name) };
    for (p++; p < w.end && (*p == ' ' || *p == '\t'); p++)
        ;
    f.value = p;
    while (p < w.end && wr_hc(*p, WR_HC_VALUE))
        p++;
    const char *ve = p;
    int rc = line_end(&p, &w);         /* NUL, bare CR, other CTLs: 400 here */
    if (rc != STEP_OK)
        return rc;
    while (ve > f.value && (ve[-1] == ' ' || ve[-1] == '\t'))
        ve--;
    f.value_len = (size_t)(ve - f.value);
    *pos = (size_t)(p - c->buf);

    if (unsafe && c->discard_unsafe)
        return STEP_OK;
    if (r->nfields == WR_HTTP_MAX_FIELDS)
        return HTTP_431;
    r->fields[r->nfields++] = f;
    return apply_field(c, r, &f);
}

/* Checks that need the whole head. */
static int finish_head(const parse_ctx_t *c, wr_http_request_t *r)
{
    if (r->version == WR_HTTP_11 && c->hosts != 1)
        return HTTP_400;
    if (r->version == WR_HTTP_11) {
        r->keep_alive = !c->conn_close;
        /* Only a request without a body can switch (RFC 6455's GET): what
         * follows its head is the new protocol's. */
        r->upgrade = c->conn_upgrade && c->upgrade_field
                     && r->content_length <= 0 && !r->chunked;
    } else {
        r->keep_alive = c->conn_keep_alive && !c->conn_close;
        r->expect_continue = 0;        /* RFC 9110 §10.1.1: ignored in 1.0 */
    }
    return STEP_OK;
}

static void request_init(wr_http_request_t *r)
{
    /* fields[] is left alone: only fields[0..nfields) are meaningful. */
    r->method = r->target = r->path = r->query = r->host = NULL;
    r->method_len = r->target_len = r->path_len = r->query_len = r->host_len = 0;
    r->version = 0;
    r->nfields = 0;
    r->content_length = -1;
    r->chunked = r->keep_alive = r->expect_continue = r->upgrade = 0;
}

static size_t head_max(const wr_http_limits_t *lim)
{
    size_t cap = LONG_MAX;             /* the head length is returned as a long */

    if (lim->header_buffers && lim->header_buffer_size > cap / lim->header_buffers)
        return cap;
    return lim->header_buffer_size * lim->header_buffers;
}

void wr_http_limits_default(wr_http_limits_t *l)
{
    l->header_buffer_size = WR_HTTP_DEFAULT_BUFFER_SIZE;
    l->header_buffers = WR_HTTP_DEFAULT_BUFFERS;
    l->discard_unsafe_fields = 1;
    l->h2 = 0;
}

long wr_http_parse_request(wr_http_request_t *r, const char *buf, size_t len,
                           const wr_http_limits_t *lim)
{
    wr_http_limits_t defaults;
    parse_ctx_t c = { .buf = buf, .len = len };
    size_t pos = 0;
    int done = 0, rc;

    if (!lim) {
        wr_http_limits_default(&defaults);
        lim = &defaults;
    }
    c.line_max = lim->header_buffer_size;
    c.head_max = head_max(lim);
    c.discard_unsafe = lim->discard_unsafe_fields;
    c.h2 = lim->h2;
    request_init(r);

    rc = skip_empty_lines(&c, &pos);
    if (rc == STEP_OK)
        rc = parse_request_line(&c, r, &pos);
    while (rc == STEP_OK && !done)
        rc = parse_field_line(&c, r, &pos, &done);
    if (rc == STEP_OK)
        rc = finish_head(&c, r);
    return rc == STEP_OK ? (long)pos : rc;
}

const wr_http_field_t *wr_http_find_field(const wr_http_request_t *r,
                                          const char *name, size_t name_len)
{
    for (size_t i = 0; i < r->nfields; i++) {
        const wr_http_field_t *f = &r->fields[i];
        if (f->name_len != name_len)
            continue;
        size_t k = 0;
        while (k < name_len && wr_hc_lower(f->name[k]) == wr_hc_lower(name[k]))
            k++;
        if (k == name_len)
            return f;
    }
    return NULL;
}
