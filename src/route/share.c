/*
 * The share action: find and open a static file the way Unit does, and the
 * HTTP validators around it (ETag, Last-Modified, conditional requests,
 * Range).
 *
 * Unit's semantics, in order, for each share element until one is served:
 *   - the path is the expanded share template, plus the expanded index when
 *     $uri ends with '/' (index is appended as is: shares end with $uri);
 *   - the types filter is checked on the MIME type of the path before any
 *     open: a mismatch is 403;
 *   - with chroot, the path must lie below the expanded chroot (else 403) and
 *     is opened relative to it with RESOLVE_BENEATH, so "..", absolute
 *     symlinks and symlinks leading out all fail (EXDEV: 403);
 *     follow_symlinks false adds RESOLVE_NO_SYMLINKS (ELOOP: 403),
 *     traverse_mounts false adds RESOLVE_NO_XDEV (EXDEV: 403); without chroot
 *     they apply to the whole path;
 *   - ENOENT/ENOTDIR/ENAMETOOLONG are 404, EACCES/EPERM/ELOOP/EXDEV 403,
 *     anything else 500;
 *   - a directory answers 301 to $uri + "/" (+ "?" args); an index that is a
 *     directory, or anything that is not a regular file, is 404.
 * A failed element (any status but 301) moves on to the next one; when none
 * is left, a 403 or 404 becomes 0 when the action has a fallback.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/openat2.h>
#include <sys/syscall.h>

#include "core/log.h"
#include "route/route.h"

#define WR_SHARE_DEFAULT_INDEX  "index.html"
#define WR_SHARE_OPEN_FLAGS     (O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)

/* Seconds from 1970-01-01 to 9999-12-31 23:59:59: the last 4-digit year. */
#define WR_DATE_MAX             253402300799LL
#define WR_SECS_PER_DAY         86400

/* ---------------------------------------------------------------- helpers */

static char ascii_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char) (c - 'A' + 'a') : c;
}

static int ascii_ieq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (ascii_lower(a[i]) != ascii_lower(b[i]))
            return 0;
    }
    return 1;
}

static const wr_http_field_t *find_field(const wr_req_view_t *r, const char *name,
                                         size_t *from)
{
    size_t len = strlen(name);

    for (size_t i = *from; i < r->nfields; i++) {
        const wr_http_field_t *f = &r->fields[i];
        if (f->name_len == len && ascii_ieq(f->name, name, len)) {
            *from = i + 1;
            return f;
        }
    }
    *from = r->nfields;
    return NULL;
}

static int is_method(const wr_req_view_t *r, const char *m)
{
    size_t len = strlen(m);

    return r->method.n == len && memcmp(r->method.p, m, len) == 0;
}

/* ----------------------------------------------------------- opening files */

static int errno_status(int err)
{
    switch (err) {
    case ENOENT:
    case ENOTDIR:
    case ENAMETOOLONG:
        return 404;
    case EACCES:
    case EPERM:
    case ELOOP:
    case EXDEV:
        return 403;
    default:
        return 500;
    }
}

/* Log what is worth an operator's look: not the 404s any client can cause. */
static int open_failed(const char *call, const char *path)
{
    int status = errno_status(errno);

    if (status == 403)
        wr_log_sys(WR_LOG_INFO, call, path);
    else if (status == 500)
        wr_log_sys(WR_LOG_ERR, call, path);
    return status;
}

/* The part of path below root ("" for root itself), or NULL when outside. */
static const char *below_root(const char *path, const char *root)
{
    size_t n = strlen(root);

    while (n > 1 && root[n - 1] == '/')
        n--;
    if (strncmp(path, root, n) != 0)
        return NULL;
    path += n;
    if (*path != '/' && *path != '\0' && root[n - 1] != '/')
        return NULL;                 /* "/www" must not admit "/wwwx" */
    while (*path == '/')
        path++;
    return *path ? path : ".";
}

static long sys_openat2(int dfd, const char *path, uint64_t resolve)
{
    struct open_how how = { .flags = WR_SHARE_OPEN_FLAGS, .resolve = resolve };

    return syscall(SYS_openat2, dfd, path, &how, sizeof(how));
}

/* fd >= 0, or -status. */
static int open_share(const char *path, const char *chroot, uint64_t resolve)
{
    const char *rel;
    long fd;
    int dfd, err;

    if (chroot == NULL || chroot[0] == '\0') {
        fd = resolve ? sys_openat2(AT_FDCWD, path, resolve)
                     : openat(AT_FDCWD, path, WR_SHARE_OPEN_FLAGS);
        return fd >= 0 ? (int) fd : -open_failed("openat2", path);
    }
    rel = below_root(path, chroot);
    if (rel == NULL)
        return -403;
    dfd = open(chroot, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -open_failed("open", chroot);
    fd = sys_openat2(dfd, rel, resolve | RESOLVE_BENEATH);
    err = errno;
    close(dfd);
    errno = err;
    return fd >= 0 ? (int) fd : -open_failed("openat2", path);
}

/* ------------------------------------------------------------ redirection */

/* Bytes that may stay as they are in a Location path (RFC 3986 pchar + '/'). */
static int uri_plain(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
        || (c && strchr("-._~!$&'()*+,;=:@/", c) != NULL);
}

/* $uri is decoded: encode it again, then "/" and the raw query. */
static char *dir_location(const wr_req_view_t *r)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = r->uri.n * 3 + 2 + r->query.n + 1;
    char *loc = malloc(n), *p = loc;

    if (loc == NULL)
        return NULL;
    for (size_t i = 0; i < r->uri.n; i++) {
        unsigned char c = (unsigned char) r->uri.p[i];
        if (uri_plain(c)) {
            *p++ = (char) c;
        } else {
            *p++ = '%';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 0xf];
        }
    }
    *p++ = '/';
    if (r->query.n) {
        *p++ = '?';
        memcpy(p, r->query.p, r->query.n);
        p += r->query.n;
    }
    *p = '\0';
    return loc;
}

/* ---------------------------------------------------------------- the action */

static int uri_is_dir(const wr_req_view_t *r)
{
    return r->uri.n > 0 && r->uri.p[r->uri.n - 1] == '/';
}

/* Expand element i (+ index) and the chroot into b as two C strings. */
static int expand(const wr_action_t *a, size_t i, const wr_req_view_t *r, wr_buf_t *b,
                  size_t *path_off, size_t *chroot_off)
{
    *path_off = b->n;
    if (wr_tpl_eval(a->share[i], r, b) < 0)
        return -1;
    if (uri_is_dir(r)) {
        if (a->index != NULL ? wr_tpl_eval(a->index, r, b) < 0
                             : wr_buf_puts(b, WR_SHARE_DEFAULT_INDEX) < 0)
            return -1;
    }
    if (wr_buf_append(b, "", 1) < 0)
        return -1;
    *chroot_off = SIZE_MAX;
    if (a->chroot != NULL) {
        *chroot_off = b->n;
        if (wr_tpl_eval(a->chroot, r, b) < 0 || wr_buf_append(b, "", 1) < 0)
            return -1;
    }
    return 0;
}

static int try_share(const wr_action_t *a, size_t i, const wr_mime_t *mime,
                     const wr_req_view_t *r, wr_buf_t *b, wr_share_result_t *out)
{
    size_t path_off, chroot_off;
    const char *path, *chroot, *type;
    uint64_t resolve = 0;
    int fd;

    if (expand(a, i, r, b, &path_off, &chroot_off) < 0)
        return 500;
    path = b->p + path_off;
    chroot = chroot_off == SIZE_MAX ? NULL : b->p + chroot_off;

    /* Like Unit, the filter runs before the open: a refused file is never opened. */
    type = wr_mime_type(mime, path, strlen(path));
    if (a->types != NULL && !wr_mime_filter_match(a->types, type))
        return 403;

    if (!a->follow_symlinks)
        resolve |= RESOLVE_NO_SYMLINKS;
    if (!a->traverse_mounts)
        resolve |= RESOLVE_NO_XDEV;
    fd = open_share(path, chroot, resolve);
    if (fd < 0)
        return -fd;
    if (fstat(fd, &out->st) < 0) {
        wr_log_sys(WR_LOG_ERR, "fstat", path);
        close(fd);
        return 500;
    }
    if (S_ISREG(out->st.st_mode)) {
        out->fd = fd;
        out->mime = type;
        return 200;
    }
    close(fd);
    if (!S_ISDIR(out->st.st_mode) || uri_is_dir(r))
        return 404;
    out->location = dir_location(r);
    return out->location != NULL ? 301 : 500;
}

/* Whether a string of the request lives in b's memory (rewrite puts $uri there). */
static int in_buf(const wr_buf_t *b, const wr_str_t *s)
{
    uintptr_t p = (uintptr_t) s->p, lo = (uintptr_t) b->p;

    return b->p != NULL && s->p != NULL && p >= lo && p < lo + b->cap;
}

int wr_share_open(const wr_action_t *a, const wr_mime_t *mime, const wr_req_view_t *r,
                  wr_buf_t *scratch, wr_share_result_t *out)
{
    wr_buf_t own = { 0 }, *b = scratch;
    size_t base;
    int status = 404;

    memset(out, 0, sizeof(*out));
    out->fd = -1;
    /* Growing scratch may move it: never when $uri or $args point into it. */
    if (b == NULL || in_buf(b, &r->uri) || in_buf(b, &r->query))
        b = &own;
    base = b->n;
    for (size_t i = 0; i < a->nshare; i++) {
        b->n = base;
        status = try_share(a, i, mime, r, b, out);
        if (status == 200 || status == 301)
            break;
    }
    b->n = base;
    wr_buf_free(&own);
    if ((status == 403 || status == 404) && a->fallback != NULL)
        status = 0;
    out->status = status;
    return status;
}

/* ------------------------------------------------------------- validators */

static char *put_hex(char *p, unsigned long long v)
{
    static const char hex[] = "0123456789abcdef";
    char tmp[16];
    int n = 0;

    do {
        tmp[n++] = hex[v & 0xf];
        v >>= 4;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

void wr_share_etag(const struct stat *st, char out[64])
{
    char *p = out;

    *p++ = '"';
    p = put_hex(p, (unsigned long long) st->st_mtime);
    *p++ = '-';
    p = put_hex(p, (unsigned long long) st->st_size);
    *p++ = '"';
    *p = '\0';
}

/* ------------------------------------------------------------------ dates */

static const char wdays[7][4] = { "Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed" };
static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static long long days_from_civil(long long y, int m, int d)
{
    long long era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(long long z, long long *y, int *m, int *d)
{
    long long era, doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = (int) (doy - (153 * mp + 2) / 5 + 1);
    *m = (int) (mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static char *put2(char *p, int v)
{
    *p++ = (char) ('0' + v / 10);
    *p++ = (char) ('0' + v % 10);
    return p;
}

/* No gmtime_r: it takes glibc's timezone lock, and this runs per response. */
void wr_http_date(time_t t, char out[32])
{
    long long s = (long long) t, days, y;
    int m, d, sod;
    char *p = out;

    if (s < 0)
        s = 0;
    if (s > WR_DATE_MAX)
        s = WR_DATE_MAX;
    days = s / WR_SECS_PER_DAY;
    sod = (int) (s % WR_SECS_PER_DAY);
    civil_from_days(days, &y, &m, &d);

    memcpy(p, wdays[days % 7], 3);
    p += 3;
    *p++ = ',';
    *p++ = ' ';
    p = put2(p, d);
    *p++ = ' ';
    memcpy(p, months[m - 1], 3);
    p += 3;
    *p++ = ' ';
    p = put2(p, (int) (y / 100));
    p = put2(p, (int) (y % 100));
    *p++ = ' ';
    p = put2(p, sod / 3600);
    *p++ = ':';
    p = put2(p, sod / 60 % 60);
    *p++ = ':';
    p = put2(p, sod % 60);
    memcpy(p, " GMT", 5);
}

typedef struct {
    const char *p, *end;
} cursor_t;

static int eat(cursor_t *c, char ch)
{
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

/* Exactly n digits (n_min..n digits when n_min < n). */
static int digits(cursor_t *c, int n_min, int n, int *v)
{
    int k = 0;

    *v = 0;
    while (k < n && c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        *v = *v * 10 + (*c->p++ - '0');
        k++;
    }
    return k >= n_min;
}

static int month(cursor_t *c, int *m)
{
    if (c->end - c->p < 3)
        return 0;
    for (int i = 0; i < 12; i++) {
        if (memcmp(c->p, months[i], 3) == 0) {
            *m = i + 1;
            c->p += 3;
            return 1;
        }
    }
    return 0;
}

static int clock_time(cursor_t *c, int *sod)
{
    int h, m, s;

    if (!digits(c, 2, 2, &h) || !eat(c, ':') || !digits(c, 2, 2, &m) || !eat(c, ':')
        || !digits(c, 2, 2, &s) || h > 23 || m > 59 || s > 60)
        return 0;
    *sod = h * 3600 + m * 60 + (s == 60 ? 59 : s);
    return 1;
}

static int gmt_end(cursor_t *c)
{
    if (c->end - c->p < 4 || memcmp(c->p, " GMT", 4) != 0)
        return 0;
    c->p += 4;
    return c->p == c->end;
}

/*
 * The three HTTP-date forms a recipient must accept (RFC 9110 §5.6.7):
 *   Sun, 06 Nov 1994 08:49:37 GMT     IMF-fixdate
 *   Sunday, 06-Nov-94 08:49:37 GMT    RFC 850
 *   Sun Nov  6 08:49:37 1994          asctime
 */
static int parse_http_date(const char *s, size_t n, time_t *t)
{
    cursor_t c = { s, s + n };
    int y, m, d, sod, asctime_form;

    while (c.p < c.end && ((*c.p >= 'A' && *c.p <= 'Z') || (*c.p >= 'a' && *c.p <= 'z')))
        c.p++;
    asctime_form = !eat(&c, ',');
    if (!eat(&c, ' '))
        return 0;
    if (asctime_form) {
        if (!month(&c, &m) || !eat(&c, ' '))
            return 0;
        eat(&c, ' ');                       /* " 6" */
        if (!digits(&c, 1, 2, &d) || !eat(&c, ' ') || !clock_time(&c, &sod)
            || !eat(&c, ' ') || !digits(&c, 4, 4, &y) || c.p != c.end)
            return 0;
    } else if (!digits(&c, 2, 2, &d)) {
        return 0;
    } else if (eat(&c, '-')) {              /* RFC 850 */
        if (!month(&c, &m) || !eat(&c, '-') || !digits(&c, 2, 2, &y) || !eat(&c, ' ')
            || !clock_time(&c, &sod) || !gmt_end(&c))
            return 0;
        y += y < 70 ? 2000 : 1900;
    } else {
        if (!eat(&c, ' ') || !month(&c, &m) || !eat(&c, ' ') || !digits(&c, 4, 4, &y)
            || !eat(&c, ' ') || !clock_time(&c, &sod) || !gmt_end(&c))
            return 0;
    }
    if (d < 1 || d > 31 || y < 1970)
        return 0;
    *t = (time_t) (days_from_civil(y, m, d) * WR_SECS_PER_DAY + sod);
    return 1;
}

/* ---------------------------------------------------- conditional requests */

static void skip_list_sep(cursor_t *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == ','))
        c->p++;
}

/*
 * If-None-Match: "*" or a list of entity tags, compared weakly (W/ ignored).
 * 1 match, 0 none; a malformed list matches nothing.
 */
static int etag_list_match(const char *v, size_t n, const char *etag)
{
    cursor_t c = { v, v + n };
    size_t elen = strlen(etag);

    if (elen > 2 && etag[0] == 'W' && etag[1] == '/') {
        etag += 2;
        elen -= 2;
    }
    for (skip_list_sep(&c); c.p < c.end; skip_list_sep(&c)) {
        const char *tag;

        if (eat(&c, '*'))
            return 1;
        if (c.end - c.p >= 2 && c.p[0] == 'W' && c.p[1] == '/')
            c.p += 2;
        tag = c.p;
        if (!eat(&c, '"'))
            return 0;
        while (c.p < c.end && *c.p != '"')
            c.p++;
        if (!eat(&c, '"'))
            return 0;
        if ((size_t) (c.p - tag) == elen && memcmp(tag, etag, elen) == 0)
            return 1;
    }
    return 0;
}

int wr_share_not_modified(const wr_req_view_t *r, const struct stat *st, const char *etag)
{
    const wr_http_field_t *f;
    size_t at = 0;
    int seen = 0;
    time_t since;

    /* RFC 9110 §13.1.2/§13.1.3: a 304 only answers GET and HEAD. */
    if (!is_method(r, "GET") && !is_method(r, "HEAD"))
        return 0;
    while ((f = find_field(r, "If-None-Match", &at)) != NULL) {
        seen = 1;
        if (etag != NULL && etag_list_match(f->value, f->value_len, etag))
            return 1;
    }
    if (seen)
        return 0;        /* If-Modified-Since is ignored beside If-None-Match */
    at = 0;
    f = find_field(r, "If-Modified-Since", &at);
    if (f == NULL || !parse_http_date(f->value, f->value_len, &since))
        return 0;
    return st->st_mtime <= since;
}

/* ------------------------------------------------------------------ ranges */

/* Digits into *v, saturating (a huge position is still a valid one). */
static int range_pos(cursor_t *c, off_t *v)
{
    const char *start = c->p;
    off_t max = (off_t) (((unsigned long long) 1 << (sizeof(off_t) * CHAR_BIT - 1)) - 1);

    *v = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        int dgt = *c->p++ - '0';
        *v = *v > (max - dgt) / 10 ? max : *v * 10 + dgt;
    }
    return c->p > start;
}

int wr_share_range(const wr_req_view_t *r, off_t size, off_t *first, off_t *last)
{
    static const char unit[] = "bytes=";
    const wr_http_field_t *f;
    size_t at = 0;
    cursor_t c;
    off_t a = -1, b = -1;

    /* RFC 9110 §14.2: range handling is defined for GET only. */
    f = find_field(r, "Range", &at);
    if (f == NULL || !is_method(r, "GET") || f->value_len < sizeof(unit) - 1
        || !ascii_ieq(f->value, unit, sizeof(unit) - 1))
        return 0;
    c.p = f->value + sizeof(unit) - 1;
    c.end = f->value + f->value_len;
    skip_list_sep(&c);
    if (!eat(&c, '-')) {
        if (!range_pos(&c, &a) || !eat(&c, '-'))
            return 0;
    }
    if (c.p < c.end && *c.p >= '0' && *c.p <= '9')
        range_pos(&c, &b);
    else if (a < 0)
        return 0;                       /* "-" alone */
    skip_list_sep(&c);
    if (c.p != c.end || (a >= 0 && b >= 0 && b < a))
        return 0;                       /* several ranges, or invalid: serve all */

    if (a < 0) {                        /* suffix "-n" */
        if (b == 0 || size == 0)
            return -1;
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        return 1;
    }
    if (a >= size)
        return -1;
    *first = a;
    *last = b < 0 || b >= size ? size - 1 : b;
    return 1;
}
