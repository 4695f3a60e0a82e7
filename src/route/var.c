/*
 * Unit's variables: their names and how each one's value is found in a
 * request view. Values are appended straight to the output buffer; nothing
 * else is allocated.
 */
#include <stdio.h>
#include <string.h>

#include "core/addr.h"
#include "route/route_int.h"

#define WR_NUM_MAX      32      /* digits of any number we print */
#define WR_TIME_MAX     64      /* "29/Nov/2026:09:30:00 +0000" */
#define WR_MS_PER_S     1000
#define WR_S_PER_MIN    60
#define WR_MIN_PER_H    60
#define WR_HEX_BASE     16
#define WR_TIME_CAP_S   1e12    /* keeps the millisecond count in range */
#define WR_JOIN         ", "    /* repeated header fields, as nginx joins them */
#define WR_JOIN_LEN     (sizeof(WR_JOIN) - 1)

static const struct {
    const char *name;
    wr_var_t    var;
    bool        prefix;          /* "header_" etc.: the rest is an argument */
} vars[] = {
    { "uri",              WR_VAR_URI,             false },
    { "host",             WR_VAR_HOST,            false },
    { "method",           WR_VAR_METHOD,          false },
    { "request_uri",      WR_VAR_REQUEST_URI,     false },
    { "request_line",     WR_VAR_REQUEST_LINE,    false },
    { "remote_addr",      WR_VAR_REMOTE_ADDR,     false },
    { "status",           WR_VAR_STATUS,          false },
    { "body_bytes_sent",  WR_VAR_BODY_BYTES_SENT, false },
    { "time_local",       WR_VAR_TIME_LOCAL,      false },
    { "request_time",     WR_VAR_REQUEST_TIME,    false },
    { "request_id",       WR_VAR_REQUEST_ID,      false },
    { "args",             WR_VAR_ARGS,            false },
    { "scheme",           WR_VAR_SCHEME,          false },
    { "dollar",           WR_VAR_LITERAL,         false },
    { "header_",          WR_VAR_HEADER,          true },
    { "arg_",             WR_VAR_ARG,             true },
    { "cookie_",          WR_VAR_COOKIE,          true },
    { "response_header_", WR_VAR_RESP_HEADER,     true },
};

int
wr_var_lookup(const char *name, size_t len, size_t *prefix)
{
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
        size_t n = strlen(vars[i].name);

        if (vars[i].prefix ? (len > n && memcmp(name, vars[i].name, n) == 0)
                           : (len == n && memcmp(name, vars[i].name, n) == 0))
        {
            *prefix = vars[i].prefix ? n : len;
            return (int) vars[i].var;
        }
    }
    return -1;
}

/* ------------------------------------------------------------- helpers */

int
wr_buf_append_self(wr_buf_t *b, const char *p, size_t n)
{
    uintptr_t q = (uintptr_t) p, base = (uintptr_t) b->p;
    size_t    off;

    if (b->p == NULL || q < base || q >= base + b->cap) {
        return wr_buf_append(b, p, n);
    }
    off = (size_t) (q - base);
    if (wr_buf_reserve(b, n) < 0) {
        return -1;
    }
    memmove(b->p + b->n, b->p + off, n);
    b->n += n;
    return 0;
}

static int
hex_val(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c = wr_lower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

size_t
wr_url_decode(const char *s, size_t n, char *out, bool plus)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        int hi, lo;

        if (s[i] == '%' && i + 2 < n
            && (hi = hex_val(s[i + 1])) >= 0 && (lo = hex_val(s[i + 2])) >= 0)
        {
            out[o++] = (char) (hi * WR_HEX_BASE + lo);
            i += 2;
        } else {
            out[o++] = (plus && s[i] == '+') ? ' ' : s[i];
        }
    }
    return o;
}

bool
wr_needs_decode(const char *s, size_t n, bool plus)
{
    return memchr(s, '%', n) != NULL || (plus && memchr(s, '+', n) != NULL);
}

wr_str_t
wr_req_host(const wr_req_view_t *r)
{
    wr_str_t    h = r->host;
    const char *end;

    if (h.p == NULL) {
        return (wr_str_t) { "", 0 };
    }
    if (h.n > 0 && h.p[0] == '[') {
        end = memchr(h.p, ']', h.n);
        h.n = end != NULL ? (size_t) (end - h.p) + 1 : h.n;
        return h;
    }
    end = memchr(h.p, ':', h.n);
    if (end != NULL) {
        h.n = (size_t) (end - h.p);
    }
    if (h.n > 0 && h.p[h.n - 1] == '.') {
        h.n--;                  /* "example.com." is "example.com" */
    }
    return h;
}

void
wr_kv_init(wr_kv_iter_t *it, const char *p, size_t n, char sep)
{
    it->p = p;
    it->end = p != NULL ? p + n : p;
    it->sep = sep;
}

static wr_str_t
trim_ows(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t')) {
        p++;
    }
    while (end > p && (end[-1] == ' ' || end[-1] == '\t')) {
        end--;
    }
    return (wr_str_t) { p, (size_t) (end - p) };
}

/* Next non-empty "name[=value]" item. Cookies trim whitespace around both. */
bool
wr_kv_next(wr_kv_iter_t *it, wr_str_t *name, wr_str_t *value)
{
    while (it->p != NULL && it->p < it->end) {
        const char *start = it->p, *stop, *eq;

        stop = memchr(start, it->sep, (size_t) (it->end - start));
        stop = stop != NULL ? stop : it->end;
        it->p = stop + (stop < it->end);
        if (stop == start) {
            continue;
        }
        eq = memchr(start, '=', (size_t) (stop - start));
        *name = (wr_str_t) { start, (size_t) ((eq != NULL ? eq : stop) - start) };
        *value = eq != NULL ? (wr_str_t) { eq + 1, (size_t) (stop - eq - 1) }
                            : (wr_str_t) { stop, 0 };
        if (it->sep == ';') {
            *name = trim_ows(name->p, name->p + name->n);
            *value = trim_ows(value->p, value->p + value->n);
            if (name->n == 0) {
                continue;
            }
        }
        return true;
    }
    return false;
}

/* ------------------------------------------------------------- values */

static int
append_lower(wr_buf_t *out, const char *p, size_t n)
{
    size_t start = out->n;

    if (wr_buf_append_self(out, p, n) < 0) {
        return -1;
    }
    for (size_t i = start; i < out->n; i++) {
        out->p[i] = wr_lower(out->p[i]);
    }
    return 0;
}

static int
append_remote(wr_buf_t *out, const struct sockaddr *sa)
{
    char text[WR_ADDR_TEXT];

    wr_addr_text(sa, text, NULL);
    return wr_buf_puts(out, text);
}

/* "29/Nov/2026:09:30:00 +0000" in local time, with no locale involved. */
static int
append_time_local(wr_buf_t *out, time_t t)
{
    static const char months[][4] = {
        "Jan", "Feb", "Mar", "Apr", "May", "Jun",
        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    };
    struct tm tm;
    char      text[WR_TIME_MAX];
    long      off;
    int       n;

    if (localtime_r(&t, &tm) == NULL) {
        return 0;
    }
    off = tm.tm_gmtoff / WR_S_PER_MIN;
    n = snprintf(text, sizeof(text), "%02d/%s/%d:%02d:%02d:%02d %c%02ld%02ld",
                 tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour,
                 tm.tm_min, tm.tm_sec, off < 0 ? '-' : '+',
                 labs(off) / WR_MIN_PER_H, labs(off) % WR_MIN_PER_H);
    return wr_buf_append(out, text, (size_t) n);
}

/* pad3: at least three digits, as nginx logs a status ("000" for none). */
static int
append_num(wr_buf_t *out, bool pad3, unsigned long long v)
{
    char text[WR_NUM_MAX];
    int  n = pad3 ? snprintf(text, sizeof(text), "%03llu", v)
                  : snprintf(text, sizeof(text), "%llu", v);

    return wr_buf_append(out, text, (size_t) n);
}

static int
append_request_time(wr_buf_t *out, double t)
{
    char               text[WR_NUM_MAX];
    double             s = t > 0 ? (t < WR_TIME_CAP_S ? t : WR_TIME_CAP_S) : 0;
    unsigned long long ms = (unsigned long long) (s * WR_MS_PER_S + 0.5);
    int                n = snprintf(text, sizeof(text), "%llu.%03llu",
                                    ms / WR_MS_PER_S, ms % WR_MS_PER_S);

    return wr_buf_append(out, text, (size_t) n);
}

/* Field name equal to arg, case-insensitively (arg already has its '_'s
 * turned into '-'s at compile time). */
static bool
name_eq(const char *field, size_t flen, const char *arg, size_t alen)
{
    return flen == alen && wr_ieq(field, arg, alen);
}

static int
append_fields(wr_buf_t *out, const wr_http_field_t *f, size_t nf,
              const char *arg, size_t alen)
{
    bool first = true;

    for (size_t i = 0; i < nf; i++) {
        if (!name_eq(f[i].name, f[i].name_len, arg, alen)) {
            continue;
        }
        if ((!first && wr_buf_append(out, WR_JOIN, WR_JOIN_LEN) < 0)
            || wr_buf_append_self(out, f[i].value, f[i].value_len) < 0)
        {
            return -1;
        }
        first = false;
    }
    return 0;
}

static int
append_arg(wr_buf_t *out, const wr_req_view_t *r, const char *arg, size_t alen)
{
    wr_kv_iter_t it;
    wr_str_t     name, value;

    wr_kv_init(&it, r->query.p, r->query.n, '&');
    while (wr_kv_next(&it, &name, &value)) {
        if (name.n == alen && memcmp(name.p, arg, alen) == 0) {
            return wr_buf_append_self(out, value.p, value.n);
        }
    }
    return 0;
}

static int
append_cookie(wr_buf_t *out, const wr_req_view_t *r, const char *arg, size_t alen)
{
    wr_kv_iter_t it;
    wr_str_t     name, value;

    for (size_t i = 0; i < r->nfields; i++) {
        const wr_http_field_t *f = &r->fields[i];

        if (!name_eq(f->name, f->name_len, "cookie", sizeof("cookie") - 1)) {
            continue;
        }
        wr_kv_init(&it, f->value, f->value_len, ';');
        while (wr_kv_next(&it, &name, &value)) {
            if (name.n == alen && memcmp(name.p, arg, alen) == 0) {
                return wr_buf_append_self(out, value.p, value.n);
            }
        }
    }
    return 0;
}

static int
append_str(wr_buf_t *out, wr_str_t s)
{
    return s.p != NULL ? wr_buf_append_self(out, s.p, s.n) : 0;
}

int
wr_var_append(wr_var_t v, const char *arg, size_t alen, const wr_req_view_t *r,
              wr_buf_t *out)
{
    wr_str_t host;

    switch (v) {
    case WR_VAR_LITERAL:
        return wr_buf_append(out, arg, alen);
    case WR_VAR_URI:
        return append_str(out, r->uri);
    case WR_VAR_HOST:
        host = wr_req_host(r);
        return append_lower(out, host.p, host.n);
    case WR_VAR_METHOD:
        return append_str(out, r->method);
    case WR_VAR_REQUEST_URI:
        return append_str(out, r->request_uri);
    case WR_VAR_REQUEST_LINE:
        return append_str(out, r->request_line);
    case WR_VAR_REMOTE_ADDR:
        return append_remote(out, r->remote);
    case WR_VAR_STATUS:
        return append_num(out, true, (unsigned long long) (r->status > 0 ? r->status : 0));
    case WR_VAR_BODY_BYTES_SENT:
        return append_num(out, false, r->body_bytes_sent);
    case WR_VAR_TIME_LOCAL:
        return append_time_local(out, r->start.tv_sec);
    case WR_VAR_REQUEST_TIME:
        return append_request_time(out, r->request_time);
    case WR_VAR_REQUEST_ID:
        return r->request_id != NULL ? wr_buf_puts(out, r->request_id) : 0;
    case WR_VAR_ARGS:
        return append_str(out, r->query);
    case WR_VAR_SCHEME:
        return wr_buf_puts(out, r->tls ? "https" : "http");
    case WR_VAR_HEADER:
        return append_fields(out, r->fields, r->nfields, arg, alen);
    case WR_VAR_ARG:
        return append_arg(out, r, arg, alen);
    case WR_VAR_COOKIE:
        return append_cookie(out, r, arg, alen);
    case WR_VAR_RESP_HEADER:
        return append_fields(out, r->resp_fields, r->nresp_fields, arg, alen);
    }
    return 0;
}
