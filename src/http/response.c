/*
 * The response head parser (RFC 9112 §4, §6.3), for the router's proxy: what
 * an upstream answers. Same properties as the request parser (http.h): no
 * allocation, pointers into the caller's buffer, bounded, and a prefix
 * parses as "need more" or the same result as the whole.
 *
 * Lines may end in CRLF or a bare LF (RFC 9112 §2.2 lets a recipient accept
 * it); a bare CR, an obs-fold, whitespace before a colon or a control byte in
 * a value is malformed: the proxy answers 502 rather than guess.
 */
#include <limits.h>
#include <stddef.h>
#include <string.h>

#include "http/chars.h"
#include "http/http.h"

#define LIT(s)              s, sizeof(s) - 1
#define STATUS_LINE_MIN     12      /* "HTTP/1.1 200" */
#define DECIMAL_RADIX       10

/* One line of buf[at..len): its content [at, *eol) and the next line's
 * start; 0 when the line is not complete yet, -1 for a bare CR in it. */
static int next_line(const char *buf, size_t len, size_t at, size_t *eol, size_t *next)
{
    const char *lf = memchr(buf + at, '\n', len - at);
    const char *cr;
    size_t e;

    if (lf == NULL) {
        /* A CR with a byte after it that is not LF is bare already. */
        cr = memchr(buf + at, '\r', len - at);
        return cr && cr < buf + len - 1 ? -1 : 0;
    }
    e = (size_t) (lf - buf);
    *next = e + 1;
    if (e > at && buf[e - 1] == '\r')
        e--;
    if (memchr(buf + at, '\r', e - at))
        return -1;
    *eol = e;
    return 1;
}

static int parse_status_line(wr_http_response_t *r, const char *p, size_t n)
{
    if (n < STATUS_LINE_MIN || memcmp(p, "HTTP/1.", 7) != 0 || p[7] < '0' || p[7] > '9'
        || p[8] != ' ')
        return -1;
    r->version = p[7] == '0' ? WR_HTTP_10 : WR_HTTP_11;
    r->status = 0;
    for (size_t i = 9; i < 12; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        r->status = r->status * DECIMAL_RADIX + (p[i] - '0');
    }
    if (r->status < 100 || (n > STATUS_LINE_MIN && p[12] != ' '))
        return -1;
    return 0;
}

/* An element of a #list: trimmed, empty ones skipped. */
static int list_next(const char **p, const char *end, const char **e, size_t *n)
{
    const char *s = *p, *x, *xe;

    while (s < end && (*s == ' ' || *s == '\t' || *s == ','))
        s++;
    if (s == end)
        return 0;
    x = memchr(s, ',', (size_t) (end - s));
    xe = x ? x : end;
    *p = xe;
    while (xe > s && (xe[-1] == ' ' || xe[-1] == '\t'))
        xe--;
    *e = s;
    *n = (size_t) (xe - s);
    return 1;
}

static int apply_length(wr_http_response_t *r, const wr_http_field_t *f)
{
    const char *p = f->value, *end = p + f->value_len, *e;
    size_t n;
    int any = 0;

    while (list_next(&p, end, &e, &n)) {
        long long v = 0;
        for (size_t i = 0; i < n; i++) {
            if (e[i] < '0' || e[i] > '9' || v > (LLONG_MAX - 9) / DECIMAL_RADIX)
                return -1;
            v = v * DECIMAL_RADIX + (e[i] - '0');
        }
        if (r->content_length >= 0 && r->content_length != v)
            return -1;
        r->content_length = v;
        any = 1;
    }
    return any ? 0 : -1;
}

/* Only "chunked", once: a body under another transfer coding (gzip) would
 * reach the client re-framed with that coding lost, so such a response is
 * refused, as nginx does (RFC 9112 §6.3 would have the body end with the
 * connection). */
static int apply_coding(wr_http_response_t *r, const wr_http_field_t *f)
{
    const char *p = f->value, *end = p + f->value_len, *e;
    size_t n;

    r->transfer_encoding = 1;
    while (list_next(&p, end, &e, &n)) {
        if (r->chunked || !wr_hc_ieq(e, n, LIT("chunked")))
            return -1;
        r->chunked = 1;
    }
    return r->chunked ? 0 : -1;
}

static void apply_connection(wr_http_response_t *r, const wr_http_field_t *f)
{
    const char *p = f->value, *end = p + f->value_len, *e;
    size_t n;

    while (list_next(&p, end, &e, &n)) {
        if (wr_hc_ieq(e, n, LIT("close")))
            r->keep_alive = 0;
        else if (wr_hc_ieq(e, n, LIT("keep-alive")) && r->version == WR_HTTP_10)
            r->keep_alive = 1;
    }
}

static int parse_field(wr_http_response_t *r, const char *p, size_t n)
{
    const char *colon = memchr(p, ':', n);
    wr_http_field_t *f;
    size_t vs, ve;

    if (colon == NULL || colon == p)
        return -1;
    for (const char *q = p; q < colon; q++)
        if (!wr_hc(*q, WR_HC_TCHAR))
            return -1;                  /* also: whitespace before the colon */
    vs = (size_t) (colon - p) + 1;
    ve = n;
    while (vs < ve && (p[vs] == ' ' || p[vs] == '\t'))
        vs++;
    while (ve > vs && (p[ve - 1] == ' ' || p[ve - 1] == '\t'))
        ve--;
    for (size_t i = vs; i < ve; i++)
        if (!wr_hc(p[i], WR_HC_VALUE))
            return -1;
    if (r->nfields == WR_HTTP_MAX_FIELDS)
        return -2;
    f = &r->fields[r->nfields++];
    f->name = p;
    f->name_len = (size_t) (colon - p);
    f->value = p + vs;
    f->value_len = ve - vs;
    if (wr_hc_ieq(f->name, f->name_len, LIT("content-length")))
        return apply_length(r, f);
    if (wr_hc_ieq(f->name, f->name_len, LIT("transfer-encoding")))
        return apply_coding(r, f);
    if (wr_hc_ieq(f->name, f->name_len, LIT("connection")))
        apply_connection(r, f);
    return 0;
}

long wr_http_parse_response(wr_http_response_t *r, const char *buf, size_t len, size_t max)
{
    size_t at = 0, eol = 0, next = 0;
    int rc;

    memset(r, 0, offsetof(wr_http_response_t, fields));
    r->nfields = 0;
    r->content_length = -1;
    if (len > max)
        len = max + 1;                  /* enough to tell "too large" */
    rc = next_line(buf, len, 0, &eol, &next);
    if (rc <= 0)
        return rc < 0 ? -1 : len > max ? -2 : 0;
    if (parse_status_line(r, buf, eol) < 0)
        return -1;
    r->keep_alive = r->version == WR_HTTP_11;
    for (at = next;;) {
        rc = next_line(buf, len, at, &eol, &next);
        if (rc <= 0)
            return rc < 0 ? -1 : len > max ? -2 : 0;
        if (eol == at)
            break;                      /* the empty line: the head is done */
        if (buf[at] == ' ' || buf[at] == '\t')
            return -1;                  /* obs-fold */
        rc = parse_field(r, buf + at, eol - at);
        if (rc < 0)
            return rc;
        at = next;
    }
    if (next > max)
        return -2;
    /* Both: which one frames the body is where smuggling starts (RFC 9112
     * §6.3 says to handle it as an error). */
    if (r->transfer_encoding && r->content_length >= 0)
        return -1;
    return (long) next;
}
