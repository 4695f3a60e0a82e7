/*
 * From a parsed request to a response: build the request view, resolve the
 * route, run the action (return, share, fallback), apply response_headers,
 * write the access log line. The result is left in c->out (+ c->file).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/log.h"
#include "router/conn.h"
#include "router/proxy.h"
#include "router/worker_proto.h"

#define WR_SERVER_NAME       "Warren"
#define WR_MAX_FALLBACKS     8      /* share -> fallback -> ... nesting */
#define WR_HTTP_VERSION_LEN  9      /* " HTTP/1.1" after the target */
#define WR_SCRATCH_RESERVE   4096   /* routing's strings for one request */
#define WR_HEAD_RESERVE      512    /* a typical response head */
#define WR_SMALL_FILE        16384  /* bodies up to this are read, not sendfile'd */
#define WR_LOG_RESP_FIELDS   32     /* response fields $response_header_* sees */
#define WR_OWN_FIELDS        16     /* fields the router writes itself (emit) */
#define WR_NUM_TEXT          24     /* a long long in decimal, with NUL */

typedef struct {
    wr_hconn_t          *c;
    wr_req_view_t        v;
    const wr_action_t   *action;     /* the one whose response_headers apply */
    int                  head_only;  /* HEAD: no body */
    const char          *ctype;
    long long            clen;       /* body length */
    const char          *body;       /* small in-memory body, or NULL */
    wr_buf_t             page;       /* an error page */
    wr_buf_t             loc;        /* Location value */
    const char          *location;
    const char          *etag;
    const char          *allow;      /* Allow, with 405 */
    int                  ranges;     /* Accept-Ranges: bytes */
    char                 lastmod[32];
    off_t                range_first, range_last;
    int                  range;      /* 206 with Content-Range */
    off_t                size;       /* whole file size for Content-Range */
    wr_http_field_t      own[WR_OWN_FIELDS]; /* what emit wrote, before
                                                response_headers: their
                                                $response_header_* */
    size_t               nown;
    char                 clen_text[WR_NUM_TEXT];
} resp_t;

static int is_header(const char *name, const char *want)
{
    return strcasecmp(name, want) == 0;
}

/* response_headers of the action: is name replaced or deleted there? */
static int overridden(const resp_t *r, const char *name)
{
    if (r->action == NULL)
        return 0;
    for (size_t i = 0; i < r->action->nheaders; i++)
        if (is_header(r->action->headers[i].name, name))
            return 1;
    return 0;
}

/* The hot path builds heads with plain copies: no printf per field. */
static void put(wr_buf_t *b, const char *s)
{
    wr_buf_append(b, s, strlen(s));
}

static void put_num(wr_buf_t *b, long long v)
{
    char digits[24];
    size_t i = sizeof(digits);
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long) v : (unsigned long long) v;

    do
        digits[--i] = (char) ('0' + u % 10);
    while ((u /= 10) != 0);
    if (v < 0)
        digits[--i] = '-';
    wr_buf_append(b, digits + i, sizeof(digits) - i);
}

/* A field of the response as the router makes it, for $response_header_*. */
static void own_field(resp_t *r, const char *name, const char *value)
{
    if (r->nown < WR_OWN_FIELDS)
        r->own[r->nown++] = (wr_http_field_t) { .name = name, .name_len = strlen(name),
                                                .value = value, .value_len = strlen(value) };
}

static void add_header(resp_t *r, wr_buf_t *b, const char *name, const char *value)
{
    if (value == NULL)
        return;
    own_field(r, name, value);
    if (overridden(r, name))
        return;
    put(b, name);
    wr_buf_append(b, ": ", 2);
    put(b, value);
    wr_buf_append(b, "\r\n", 2);
}

/*
 * A field value expanded from the request ($uri decodes "%0d%0a", a template
 * returns anything): its control bytes are percent-encoded again, so no
 * request can add fields or end the head. -1 when memory runs out.
 */
static int expand_value(const wr_tpl_t *t, const wr_req_view_t *v, wr_buf_t *b)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t from = b->n, n, ctl = 0;
    char *copy;

    if (wr_tpl_eval(t, v, b) < 0)
        return -1;
    n = b->n - from;
    for (size_t i = 0; i < n; i++)
        ctl += (unsigned char) b->p[from + i] < 0x20 || b->p[from + i] == 0x7f;
    if (ctl == 0)
        return 0;
    if ((copy = malloc(n)) == NULL || wr_buf_reserve(b, 2 * ctl) < 0) {
        free(copy);
        b->n = from;
        return -1;
    }
    memcpy(copy, b->p + from, n);
    b->n = from;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char) copy[i];

        if (ch < 0x20 || ch == 0x7f) {
            char enc[3] = { '%', hex[ch >> 4], hex[ch & 0xf] };
            wr_buf_append(b, enc, sizeof(enc));
        } else {
            wr_buf_append(b, &copy[i], 1);
        }
    }
    free(copy);
    return 0;
}

/* The action's response_headers values, expanded with v (whose
 * resp_fields are the response's fields before them). */
static int put_action_headers(const wr_action_t *a, const wr_req_view_t *v, wr_buf_t *b)
{
    int rc = 0;

    if (a == NULL)
        return 0;
    for (size_t i = 0; i < a->nheaders; i++) {
        const wr_resp_header_t *h = &a->headers[i];
        /* Framing is ours: a config cannot break the message boundaries. */
        if (h->value == NULL || is_header(h->name, "Content-Length")
            || is_header(h->name, "Transfer-Encoding") || is_header(h->name, "Connection"))
            continue;
        size_t mark = b->n;

        wr_buf_puts(b, h->name);
        wr_buf_puts(b, ": ");
        if (expand_value(h->value, v, b) < 0) {
            b->n = mark;        /* a template that failed (logged): no field */
            rc = -1;
            continue;
        }
        wr_buf_puts(b, "\r\n");
    }
    return rc;
}

static int add_action_headers(resp_t *r, wr_buf_t *b)
{
    int rc;

    r->v.status = r->c->status;
    r->v.resp_fields = r->own;
    r->v.nresp_fields = r->nown;
    rc = put_action_headers(r->action, &r->v, b);
    r->v.resp_fields = NULL;
    r->v.nresp_fields = 0;
    return rc;
}

static void error_body(resp_t *r, int status);

/* A response_headers template failed (logged): the answer becomes a plain
 * 500, as a failed template elsewhere in the action makes it. */
static void emit_failed(resp_t *r)
{
    r->action = NULL;
    r->location = r->etag = r->allow = NULL;
    r->lastmod[0] = '\0';
    r->range = r->ranges = 0;
    error_body(r, 500);
}

/* Serialize status line and headers (and a small body) into c->out.
 * -1 when a response_headers template failed and a 500 went instead. */
static int emit(resp_t *r, int status)
{
    wr_hconn_t *c = r->c;
    wr_buf_t *b = &c->out;
    const wr_rconf_t *conf = c->conf;
    int with_version = conf == NULL || conf->settings.server_version;
    char num[64];

    c->status = status;
    if (b->p == NULL) {                 /* borrow the thread's buffer */
        *b = c->t->out;
        memset(&c->t->out, 0, sizeof(c->t->out));
    }
    wr_buf_reset(b);
    wr_buf_reserve(b, WR_HEAD_RESERVE);
    put(b, "HTTP/1.1 ");
    put_num(b, status);
    wr_buf_append(b, " ", 1);
    put(b, wr_http_reason(status));
    wr_buf_append(b, "\r\n", 2);
    r->nown = 0;
    own_field(r, "Server", with_version ? WR_SERVER_NAME "/" WR_VERSION : WR_SERVER_NAME);
    if (!overridden(r, "Server"))
        put(b, with_version ? "Server: " WR_SERVER_NAME "/" WR_VERSION "\r\n"
                            : "Server: " WR_SERVER_NAME "\r\n");
    add_header(r, b, "Date", wr_thread_date(c->t));
    add_header(r, b, "Content-Type", r->ctype);
    if (status != 304 && !(status >= 100 && status < 200) && status != 204) {
        put(b, "Content-Length: ");
        put_num(b, r->clen);
        wr_buf_append(b, "\r\n", 2);
        snprintf(r->clen_text, sizeof(r->clen_text), "%lld", r->clen);
        own_field(r, "Content-Length", r->clen_text);
    }
    if (r->range) {
        snprintf(num, sizeof(num), "bytes %lld-%lld/%lld", (long long) r->range_first,
                 (long long) r->range_last, (long long) r->size);
        add_header(r, b, "Content-Range", num);
    } else if (status == 416) {
        snprintf(num, sizeof(num), "bytes */%lld", (long long) r->size);
        add_header(r, b, "Content-Range", num);
    }
    if (r->lastmod[0])
        add_header(r, b, "Last-Modified", r->lastmod);
    add_header(r, b, "ETag", r->etag);
    add_header(r, b, "Location", r->location);
    add_header(r, b, "Allow", r->allow);
    if (r->ranges)
        add_header(r, b, "Accept-Ranges", "bytes");
    if (c->close_after || !c->keep_alive)
        wr_buf_puts(b, "Connection: close\r\n");
    else if (c->t->req.version == WR_HTTP_10)
        wr_buf_puts(b, "Connection: keep-alive\r\n");
    if (add_action_headers(r, b) < 0) {
        emit_failed(r);
        emit(r, 500);
        return -1;
    }
    wr_buf_puts(b, "\r\n");
    if (r->body && !r->head_only)
        wr_buf_append(b, r->body, (size_t) r->clen);
    if (b->p == NULL || b->n == 0) {      /* out of memory: minimal answer */
        c->close_after = 1;
        wr_buf_puts(b, "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n"
                    "Connection: close\r\n\r\n");
    }
    return 0;
}

/* A small HTML page for error statuses. */
static void error_body(resp_t *r, int status)
{
    const char *why = wr_http_reason(status);

    wr_buf_reset(&r->page);
    wr_buf_printf(&r->page, "<!DOCTYPE html>\n<title>%d %s</title>\n<p>%d %s</p>\n"
                  "<hr><p>%s</p>\n", status, why, status, why, WR_SERVER_NAME);
    r->body = r->page.p;
    r->clen = r->body ? (long long) r->page.n : 0;
    r->ctype = "text/html";
}

/* The fields of the response head in c->out, for $response_header_NAME. */
static size_t response_fields(const wr_buf_t *out, wr_http_field_t *f, size_t max)
{
    const char *p = out->p, *end = out->p + out->n;
    size_t n = 0;

    if (p == NULL)
        return 0;
    p = memchr(p, '\n', (size_t) (end - p));        /* skip the status line */
    while (p && ++p < end && *p != '\r' && n < max) {
        const char *eol = memchr(p, '\r', (size_t) (end - p));
        const char *colon = memchr(p, ':', (size_t) ((eol ? eol : end) - p));
        if (eol == NULL || colon == NULL)
            break;
        f[n].name = p;
        f[n].name_len = (size_t) (colon - p);
        f[n].value = colon + 2 <= eol ? colon + 2 : eol;
        f[n].value_len = (size_t) (eol - f[n].value);
        n++;
        p = eol + 1;
    }
    return n;
}

/* Is an answered request recorded (an access log line, a span)? */
static int recorded(const wr_hconn_t *c, const wr_rconf_t *conf)
{
    return conf != NULL && ((conf->alog != NULL && c->t->router->alog != NULL)
                            || (conf->tel != NULL && c->t->router->tel != NULL));
}

/* The span of r's request begins (settings.telemetry): its traceparent
 * goes to the application or upstream. */
static void begin_span(resp_t *r, const wr_rconf_t *conf)
{
    wr_hconn_t *c = r->c;
    char random[WR_TEL_RANDOM_HEX + 1];

    c->span.ctx[0] = '\0';
    r->v.traceparent = NULL;
    if (conf == NULL || conf->tel == NULL)
        return;
    wr_thread_request_id(c->t, random);
    wr_tel_begin(conf->tel, &r->v, random, &c->span);
    r->v.traceparent = c->span.ctx;
}

/* ... and ends with its answer: recorded, if sampled. */
static void write_span(resp_t *r, const wr_rconf_t *conf)
{
    wr_hconn_t *c = r->c;

    if (conf->tel == NULL)
        return;
    if (c->span.ctx[0] == '\0')
        begin_span(r, conf);            /* refused before its head was whole */
    wr_tel_record(c->t->router->tel, conf->tel, &r->v, &c->span);
    c->span.ctx[0] = '\0';
}

/* The access log line and the span of r; head: the response head as sent
 * (its fields are $response_header_*), or NULL. */
static void write_access(resp_t *r, const wr_buf_t *head)
{
    wr_hconn_t *c = r->c;
    wr_router_t *router = c->t->router;
    wr_buf_t line = { 0 }, tmp = { 0 };
    wr_http_field_t resp[WR_LOG_RESP_FIELDS];

    const wr_rconf_t *conf = c->conf ? c->conf : c->t->conf;

    if (!recorded(c, conf))
        return;
    r->v.status = c->status;
    write_span(r, conf);
    if (conf->alog == NULL || router->alog == NULL)
        return;
    r->v.body_bytes_sent = r->head_only || c->status == 304 ? 0 : (unsigned long long) r->clen;
    r->v.request_time = (double) c->took_us / 1e6;    /* count_answer, just before */
    r->v.resp_fields = resp;
    r->v.nresp_fields = head ? response_fields(head, resp, WR_LOG_RESP_FIELDS) : 0;
    if (wr_alog_format_line(conf->alog, &r->v, &line, &tmp) == 0)
        wr_alog_writer_push(router->alog, line.p, line.n);
    wr_buf_free(&line);
    wr_buf_free(&tmp);
}

/* c's answer is complete (status, body bytes): its counters (metrics.c),
 * the thread's and its application's. */
static void count_answer(wr_hconn_t *c, unsigned long long body_bytes)
{
    struct timespec now;
    long long us;

    clock_gettime(CLOCK_REALTIME, &now);
    us = (long long) (now.tv_sec - c->start.tv_sec) * 1000000
         + (now.tv_nsec - c->start.tv_nsec) / 1000;
    if (us < 0)                         /* the clock was set back */
        us = 0;
    c->took_us = (uint64_t) us;         /* the access log line's $request_time */
    wr_stats_record(&c->t->count.stats, c->status, body_bytes, (uint64_t) us);
    if (c->app && c->app->stats)
        wr_stats_record(&c->app->stats->s, c->status, body_bytes, (uint64_t) us);
}

static void count_request(wr_hconn_t *c)
{
    if (!c->req_counted)
        atomic_fetch_add(&c->t->count.requests, 1);
    c->req_counted = 1;
}

static void log_access(resp_t *r)
{
    count_request(r->c);
    count_answer(r->c, r->head_only || r->c->status == 304 ? 0 : (unsigned long long) r->clen);
    write_access(r, &r->c->out);
}

static void resp_free(resp_t *r)
{
    wr_buf_free(&r->page);
    wr_buf_free(&r->loc);
}

static void respond_status(resp_t *r, int status)
{
    if (status >= 400 || status == 301 || status == 302)
        error_body(r, status);
    emit(r, status);
}

/* ---- actions ---- */

/* If-Range (RFC 9110 §13.1.5): a Range applies only while the validator
 * sent still matches: the strong ETag, or exactly the Last-Modified date. */
static int if_range_holds(const wr_req_view_t *v, const char *etag, const char *lastmod)
{
    for (size_t i = 0; i < v->nfields; i++) {
        const wr_http_field_t *f = &v->fields[i];
        if (f->name_len != 8 || strncasecmp(f->name, "If-Range", 8) != 0)
            continue;
        if (f->value_len > 0 && f->value[0] == '"')
            return f->value_len == strlen(etag) && memcmp(f->value, etag, f->value_len) == 0;
        return f->value_len == strlen(lastmod) && memcmp(f->value, lastmod, f->value_len) == 0;
    }
    return 1;
}

/* Append len bytes of fd at off to b; -1 (b unchanged) if that fails. */
static int read_into(wr_buf_t *b, int fd, off_t off, long long len)
{
    size_t at = b->n, got = 0;

    if (wr_buf_reserve(b, (size_t) len) < 0)
        return -1;
    while (got < (size_t) len) {
        ssize_t n = pread(fd, b->p + at + got, (size_t) len - got, off + (off_t) got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;       /* sendfile will report it */
        got += (size_t) n;
    }
    b->n += got;
    return 0;
}

static void serve_file(resp_t *r, wr_share_result_t *s)
{
    wr_hconn_t *c = r->c;
    char etag[64];
    int rng;

    wr_share_etag(&s->st, etag);
    wr_http_date(s->st.st_mtime, r->lastmod);
    r->etag = etag;
    r->ctype = s->mime;
    r->size = s->st.st_size;
    if (wr_share_not_modified(&r->v, &s->st, etag)) {
        close(s->fd);
        r->clen = 0;
        emit(r, 304);
        return;
    }
    rng = wr_share_range(&r->v, s->st.st_size, &r->range_first, &r->range_last);
    if (rng != 0 && !if_range_holds(&r->v, etag, r->lastmod))
        rng = 0;                            /* the file changed: all of it */
    if (rng < 0) {
        close(s->fd);
        r->ctype = NULL;
        r->etag = NULL;
        r->lastmod[0] = '\0';
        r->clen = 0;
        emit(r, 416);
        return;
    }
    if (rng == 0) {
        r->range_first = 0;
        r->range_last = s->st.st_size - 1;
    }
    r->range = rng > 0;
    r->ranges = 1;
    r->clen = (long long) (r->range_last - r->range_first + 1);
    if (s->st.st_size == 0)
        r->clen = 0;
    if (emit(r, r->range ? 206 : 200) < 0 || r->head_only || r->clen == 0) {
        close(s->fd);
        return;
    }
    /* A small body rides in the same send as the head: one trip through
     * the TCP stack instead of two. Larger ones go by sendfile. */
    if (r->clen <= WR_SMALL_FILE && read_into(&c->out, s->fd, r->range_first, r->clen) == 0) {
        close(s->fd);
        return;
    }
    c->file = s->fd;
    c->file_off = r->range_first;
    c->file_end = r->range_last + 1;
}

static void run_action(resp_t *r, const wr_action_t *a, int depth);

/* "metrics": the router's counters, as GET /metrics or GET /status tell them. */
static void metrics_answer(resp_t *r, wr_metrics_format_t format)
{
    wr_hconn_t *c = r->c;
    json_t *st;
    char *doc;

    wr_buf_reset(&r->page);
    if (format == WR_METRICS_JSON) {
        st = wr_metrics_status(c->t->router, c->conf);
        doc = st ? json_dumps(st, JSON_COMPACT) : NULL;
        json_decref(st);
        if (doc == NULL || wr_buf_printf(&r->page, "%s\n", doc) < 0) {
            free(doc);
            respond_status(r, 500);
            return;
        }
        free(doc);
        r->ctype = "application/json";
    } else {
        if (wr_metrics_text(c->t->router, c->conf, &r->page) < 0) {
            respond_status(r, 500);
            return;
        }
        r->ctype = WR_METRICS_CONTENT_TYPE;
    }
    r->body = r->page.p;
    r->clen = (long long) r->page.n;
    emit(r, 200);
}

/* The protocol an application is told (SERVER_PROTOCOL, ASGI's
 * http_version): a stream of HTTP/2 says so, as nginx tells its upstreams. */
static const char *request_version(const wr_hconn_t *c)
{
    if (c->h2)
        return "HTTP/2.0";
    return c->t->req.version == WR_HTTP_10 ? "HTTP/1.0" : "HTTP/1.1";
}

/* Hand the request to app.c: its running generation and the encoded head. */
static void pass_app(resp_t *r, const wr_action_t *a)
{
    wr_hconn_t *c = r->c;
    const wr_rapp_t *ra = NULL;
    wr_appgen_t *g = NULL;

    for (size_t i = 0; i < c->conf->napps; i++)
        if (strcmp(c->conf->apps[i].name, a->app) == 0)
            ra = &c->conf->apps[i];
    if (ra)
        g = ra->gen;
    if (g == NULL) {
        respond_status(r, 503);        /* configured, but no worker has started */
        return;
    }
    wr_buf_reset(&c->app_head);
    if (ra->http) {
        /* Its workers speak HTTP: the head goes to them as is (proxy.c). */
        if (wr_proxy_head(&c->app_head, &c->t->req, "localhost", r->v.remote,
                          r->v.traceparent, 1) < 0) {
            respond_status(r, 500);
            return;
        }
        c->body_whole = c->t->req.chunked;     /* as for "proxy" */
    } else if (wr_worker_encode_head(&c->app_head, &r->v, request_version(c),
                                     a->target) < 0
               || (c->upgrade && wr_worker_encode_upgrade(&c->app_head,
                        (uint32_t) c->conf->settings.ws_read_timeout,
                        (uint32_t) c->conf->settings.ws_keepalive_interval,
                        (uint32_t) c->conf->settings.ws_max_frame_size) < 0)) {
        respond_status(r, 431);
        return;
    } else if (c->t->req.chunked && c->conf->settings.chunked_transform && !c->upgrade) {
        /* Read whole first, then passed on with its Content-Length. */
        c->body_whole = 1;
    }
    c->app = g;
    c->app_timeout = ra->timeout;
    c->app_max_requests = ra->max_requests;
}

/* "proxy" to url: the upstream head now (the parsed request is the
 * thread's scratch), the exchange once the head is done (start_request). */
static void proxy_to(resp_t *r, const char *url)
{
    wr_hconn_t *c = r->c;
    const char *host = url + strlen("http://");
    int status;

    if (strncmp(host, "unix:", 5) == 0)
        host = "localhost";             /* for a client that sent no Host */
    /* A chunked body is read whole first, and sent with its length. */
    c->body_whole = c->t->req.chunked;
    if (wr_proxy_head(&c->app_head, &c->t->req, host, NULL, r->v.traceparent,
                      c->conf->settings.proxy_keepalive > 0) < 0) {
        respond_status(r, 500);
        return;
    }
    status = wr_proxy_prepare(c, url);
    if (status != 0)
        respond_status(r, status);
}

/* "pass": "upstreams/NAME": one of its servers, as "proxy" to it. */
static void upstream_action(resp_t *r, const wr_action_t *a)
{
    const char *url = wr_upstream_pick(&r->c->conf->upstreams, a->upstream);

    if (url == NULL) {
        respond_status(r, 502);
        return;
    }
    proxy_to(r, url);
}

static int is_get_or_head(const wr_req_view_t *v)
{
    return (v->method.n == 3 && memcmp(v->method.p, "GET", 3) == 0)
           || (v->method.n == 4 && memcmp(v->method.p, "HEAD", 4) == 0);
}

/* The fallback may pass on to a route (and rewrite): resolve it first. */
static void run_fallback(resp_t *r, const wr_action_t *a, int depth)
{
    const wr_action_t *fa = NULL;
    int rc = wr_routes_fallback(r->c->conf->routes, a->fallback, &r->v, &r->c->t->scratch, &fa);

    if (rc == WR_ROUTE_FOUND)
        run_action(r, fa, depth + 1);
    else
        respond_status(r, rc == WR_ROUTE_NOT_FOUND ? 404 : 500);
}

static void run_action(resp_t *r, const wr_action_t *a, int depth)
{
    wr_hconn_t *c = r->c;
    wr_share_result_t s;
    wr_buf_t tmp = { 0 };

    r->action = a;
    switch (a->kind) {
    case WR_ACTION_RETURN:
        if (a->location) {
            if (expand_value(a->location, &r->v, &r->loc) < 0) {
                respond_status(r, 500);
                return;
            }
            wr_buf_append(&r->loc, "", 1);
            r->location = r->loc.p;
        }
        respond_status(r, a->status);
        return;
    case WR_ACTION_SHARE:
        if (!is_get_or_head(&r->v)) {
            /* Files are only read: other methods go to the fallback, or 405. */
            if (a->fallback && depth < WR_MAX_FALLBACKS) {
                run_fallback(r, a, depth);
                return;
            }
            r->allow = "GET, HEAD";
            respond_status(r, 405);
            return;
        }
        memset(&s, 0, sizeof(s));
        s.fd = -1;
        /* Its own scratch: the view's strings may live in t->scratch. */
        wr_share_open(a, c->conf->mime, &r->v, &tmp, &s);
        wr_buf_free(&tmp);
        if (s.status == 0 && a->fallback && depth < WR_MAX_FALLBACKS) {
            run_fallback(r, a, depth);
            return;
        }
        if (s.status == 200) {
            serve_file(r, &s);
            return;
        }
        if (s.status == 301 && s.location) {
            wr_buf_append(&r->loc, s.location, strlen(s.location) + 1);
            r->location = r->loc.p;
        }
        free(s.location);
        respond_status(r, s.status ? s.status : 404);
        return;
    case WR_ACTION_PASS_APP:
        pass_app(r, a);
        return;
    case WR_ACTION_PROXY:
        proxy_to(r, a->proxy);
        return;
    case WR_ACTION_PASS_UPSTREAM:
        upstream_action(r, a);
        return;
    case WR_ACTION_METRICS:
        metrics_answer(r, a->metrics);
        return;
    default:
        respond_status(r, 502);
        return;
    }
}

/* ---- entry points ---- */

static const wr_rlisten_t *listener_conf(const wr_hconn_t *c)
{
    for (size_t i = 0; c->conf && i < c->conf->nlisten; i++)
        if (c->conf->listen[i].sock == c->l)
            return &c->conf->listen[i];
    return NULL;
}

/* settings.http.log_route: say where each request went, in the error log. */
static void log_route(const resp_t *r, const char *pass, int rc, const wr_action_t *a)
{
    static const char *const kinds[] = {
        [WR_ACTION_RETURN] = "return", [WR_ACTION_SHARE] = "share",
        [WR_ACTION_PASS_APP] = "application", [WR_ACTION_PASS_UPSTREAM] = "upstream",
        [WR_ACTION_PROXY] = "proxy",
    };
    const char *what = rc == WR_ROUTE_NOT_FOUND ? "no route step matched"
                     : rc != WR_ROUTE_FOUND ? "routing failed"
                     : a->kind <= WR_ACTION_PROXY && kinds[a->kind] ? kinds[a->kind] : "pass";

    wr_log(WR_LOG_NOTICE, "*%s \"%.*s\" uri \"%.*s\" from \"%s\": %s%s%s",
           r->v.request_id, (int) r->v.request_line.n, r->v.request_line.p,
           (int) r->v.uri.n, r->v.uri.p, pass, what,
           rc == WR_ROUTE_FOUND && a->app ? " " : "",
           rc == WR_ROUTE_FOUND && a->app ? a->app : "");
}

/* Fill the view of the request; -status when the target cannot be served. */
static int build_view(resp_t *r, wr_http_request_t *req)
{
    wr_hconn_t *c = r->c;
    wr_req_view_t *v = &r->v;
    long n;

    v->method = (wr_str_t) { req->method, req->method_len };
    v->host = (wr_str_t) { req->host, req->host ? req->host_len : 0 };
    v->request_uri = (wr_str_t) { req->target, req->target_len };
    v->query = (wr_str_t) { req->query, req->query ? req->query_len : 0 };
    v->request_line = (wr_str_t) { req->method, (size_t) (req->target + req->target_len
                                   + WR_HTTP_VERSION_LEN - req->method) };
    v->fields = req->fields;
    v->nfields = req->nfields;
    v->remote = (const struct sockaddr *) &c->peer;
    v->local = (const struct sockaddr *) &c->local;
    v->tls = c->ssl != NULL || c->h2_tls; /* "forwarded" may say otherwise */
    v->start = c->start;
    wr_thread_request_id(c->t, c->reqid);
    v->request_id = c->reqid;
    v->js = c->conf != NULL ? c->conf->js : NULL;
    v->traceparent = c->span.ctx[0] != '\0' ? c->span.ctx : NULL;
    if (req->path == NULL || req->path[0] != '/')
        return -400;
    wr_buf_reset(&c->t->uri);
    if (wr_buf_reserve(&c->t->uri, req->path_len + 1) < 0)
        return -500;
    n = wr_http_normalize_path(req->path, req->path_len, c->t->uri.p);
    if (n < 0)
        return -400;
    v->uri = (wr_str_t) { c->t->uri.p, (size_t) n };
    r->head_only = req->method_len == 4 && memcmp(req->method, "HEAD", 4) == 0;
    return 0;
}

/*
 * The view of c's request again, once the event that parsed it is over,
 * from its head (len bytes), parsed again into the thread's scratch
 * request. $uri is the one before any rewrite. Returns 0, or -1.
 */
static int view_of(resp_t *r, wr_hconn_t *c, const char *head, size_t len)
{
    wr_http_request_t *req = &c->t->req;
    const wr_rlisten_t *ls = listener_conf(c);
    char reqid[sizeof(c->reqid)];
    int rc;

    if (head == NULL || len == 0 || c->conf == NULL
        || wr_http_parse_request(req, head, len, &c->conf->limits) != (long) len)
        return -1;
    memset(r, 0, sizeof(*r));
    r->c = c;
    memcpy(reqid, c->reqid, sizeof(reqid));
    rc = build_view(r, req);
    memcpy(c->reqid, reqid, sizeof(reqid));      /* the same $request_id */
    if (rc < 0)
        return -1;
    if (ls && ls->forwarded)
        wr_forwarded_apply(ls->forwarded, &r->v, &c->client);
    return 0;
}

/* An application's or upstream's answer: the request head is still at the
 * start of c->in (only body bytes after it move). */
static int view_again(resp_t *r, wr_hconn_t *c)
{
    if (c->in == NULL || c->in_len < c->head_len || view_of(r, c, c->in, c->head_len) < 0)
        return -1;
    if (c->rewritten) {
        r->v.uri = (wr_str_t) { c->rewritten, c->rw_uri_len };
        r->v.query = (wr_str_t) { c->rewritten + c->rw_uri_len + 1, c->rw_query_len };
    }
    return 0;
}

/* A rewrite's $uri and query, kept on c for what is expanded once an
 * application's or upstream's answer comes (response_headers, the access
 * log): the view is built again then, from the head as it came. A
 * rewritten $uri sits in the scratch, not in the thread's uri buffer. */
static void keep_rewrite(wr_hconn_t *c, const wr_req_view_t *v)
{
    free(c->rewritten);                 /* a request routed again (requeue) */
    c->rewritten = NULL;
    if (v->uri.p == c->t->uri.p)
        return;
    c->rewritten = malloc(v->uri.n + 1 + v->query.n + 1);
    if (c->rewritten == NULL) {
        wr_log_sys(WR_LOG_ERR, "malloc", "rewritten uri");
        return;               /* the logs and headers see the request as it came */
    }
    memcpy(c->rewritten, v->uri.p, v->uri.n);
    c->rewritten[v->uri.n] = '\0';
    if (v->query.n)
        memcpy(c->rewritten + v->uri.n + 1, v->query.p, v->query.n);
    c->rewritten[v->uri.n + 1 + v->query.n] = '\0';
    c->rw_uri_len = v->uri.n;
    c->rw_query_len = v->query.n;
}

/* What is known of a request without its head. */
static void view_bare(resp_t *r, wr_hconn_t *c)
{
    memset(r, 0, sizeof(*r));
    r->c = c;
    r->v.remote = (const struct sockaddr *) &c->peer;
    r->v.local = (const struct sockaddr *) &c->local;
    r->v.start = c->start;
    r->v.request_id = c->reqid;
    r->v.js = c->conf != NULL ? c->conf->js : NULL;
}

/*
 * A response that waits for its request's body to be read past (conn.c:
 * deferred) is logged once that is over, with the outcome: so its head is
 * kept (in app_head, free for such requests), when there is a log.
 * Returns 1 when the line is left for later.
 */
static int defer_log(resp_t *r)
{
    wr_hconn_t *c = r->c;

    if (!c->deferred || c->close_after)
        return 0;
    c->resp_bytes = (unsigned long long) r->clen;
    c->head_only = r->head_only;
    wr_buf_reset(&c->app_head);
    if (recorded(c, c->conf) && wr_buf_append(&c->app_head, c->in, c->head_len) < 0)
        return 0;
    return 1;
}

void wr_respond_log_deferred(wr_hconn_t *c)
{
    resp_t r;

    count_answer(c, c->head_only || c->status == 304 ? 0 : c->resp_bytes);
    if (c->app_head.n == 0 || view_of(&r, c, c->app_head.p, c->app_head.n) < 0)
        return;
    r.clen = (long long) c->resp_bytes;
    r.head_only = c->head_only;
    write_access(&r, &c->out);
    resp_free(&r);
}

void wr_respond_body_error(wr_hconn_t *c, int status)
{
    resp_t r;

    if (c->app_head.n == 0 || view_of(&r, c, c->app_head.p, c->app_head.n) < 0)
        view_bare(&r, c);
    c->keep_alive = 0;
    respond_status(&r, status);
    count_answer(c, r.head_only ? 0 : (unsigned long long) r.clen);
    write_access(&r, &c->out);
    resp_free(&r);
}

void wr_respond_request(wr_hconn_t *c, wr_http_request_t *req)
{
    resp_t r;
    const wr_action_t *a = NULL;
    const wr_rlisten_t *ls = listener_conf(c);
    const char *pass = ls ? ls->pass : NULL;
    int rc;

    memset(&r, 0, sizeof(r));
    r.c = c;
    c->span.ctx[0] = '\0';
    rc = build_view(&r, req);
    begin_span(&r, c->conf);
    if (rc < 0) {
        respond_status(&r, -rc);
        log_access(&r);
        resp_free(&r);
        return;
    }
    if (ls && ls->forwarded)
        wr_forwarded_apply(ls->forwarded, &r.v, &c->client);
    /* A rewrite leaves $uri in the scratch; room reserved up front keeps
     * later appends (a fallback's) from moving it. The scratch and $uri are
     * the thread's: a response is built in one go, so no connection keeps
     * them, and idle connections cost only their struct. */
    wr_buf_reset(&c->t->scratch);
    wr_buf_reserve(&c->t->scratch, WR_SCRATCH_RESERVE + 4 * req->target_len);
    if (pass == NULL) {
        respond_status(&r, 404);
    } else {
        rc = wr_routes_resolve(c->conf->routes, pass, &r.v, &c->t->scratch, &a);
        if (c->conf->settings.log_route)
            log_route(&r, pass, rc, a);
        if (rc == WR_ROUTE_FOUND)
            run_action(&r, a, 0);
        else
            respond_status(&r, rc == WR_ROUTE_NOT_FOUND ? 404 : 500);
    }
    if (c->app == NULL && c->proxy == NULL) {
        if (defer_log(&r))
            count_request(c);
        else
            log_access(&r);       /* an application's answer comes later */
    } else {
        keep_rewrite(c, &r.v);
        if (r.action && r.action->nheaders > 0) {
            /* Its response_headers apply to that answer, later. */
            c->action = r.action;
            c->action_conf = c->conf;
            wr_rconf_ref(c->conf);
        }
        count_request(c);      /* an error answer later is the same request */
    }
    resp_free(&r);
}

void wr_respond_log_app(wr_hconn_t *c, unsigned long long body_bytes, const wr_buf_t *head)
{
    resp_t r;

    count_answer(c, body_bytes);
    if (!recorded(c, c->conf))
        return;
    if (view_again(&r, c) < 0)
        return;
    r.clen = (long long) body_bytes;
    r.head_only = c->head_only;
    write_access(&r, head);
}

void wr_respond_relay_field(wr_buf_t *b, const char *name, size_t nlen, const char *value,
                            size_t vlen)
{
    wr_buf_append(b, name, nlen);
    wr_buf_append(b, ": ", 2);
    wr_buf_append(b, value, vlen);
    wr_buf_append(b, "\r\n", 2);
}

/* Is the field line at p (name: value) one response_headers replaces? */
static int replaced_line(const wr_action_t *a, const char *p, size_t len)
{
    const char *colon = memchr(p, ':', len);
    size_t n = colon ? (size_t) (colon - p) : len;

    for (size_t i = 0; i < a->nheaders; i++)
        if (strlen(a->headers[i].name) == n && strncasecmp(a->headers[i].name, p, n) == 0)
            return 1;
    return 0;
}

/*
 * response_headers on a relayed head (status line and fields in b so far):
 * the fields they name go, their values come, expanded with the relayed
 * fields as $response_header_*.
 */
static void relay_action_headers(wr_hconn_t *c, wr_buf_t *b, int with_length)
{
    const wr_action_t *a = c->action;
    wr_http_field_t f[WR_LOG_RESP_FIELDS + 1];
    char clen[WR_NUM_TEXT];
    wr_buf_t orig = *b;                 /* the fields' values point in here */
    const char *p, *end, *eol;
    resp_t r;

    if (b->p == NULL || (p = memchr(b->p, '\n', b->n)) == NULL)
        return;
    memset(b, 0, sizeof(*b));
    wr_buf_reserve(b, orig.n + WR_HEAD_RESERVE);
    p++;
    wr_buf_append(b, orig.p, (size_t) (p - orig.p));            /* status line */
    for (end = orig.p + orig.n; p < end; p = eol + 2) {
        eol = memmem(p, (size_t) (end - p), "\r\n", 2);
        if (eol == NULL)
            break;
        if (!replaced_line(a, p, (size_t) (eol - p)))
            wr_buf_append(b, p, (size_t) (eol + 2 - p));
    }
    if (view_again(&r, c) < 0)
        view_bare(&r, c);               /* not expected */
    r.v.status = c->status;
    r.v.resp_fields = f;
    r.v.nresp_fields = response_fields(&orig, f, WR_LOG_RESP_FIELDS);
    if (with_length && !c->chunked_out && c->resp_length >= 0) {
        /* The framing is added after these; it is a field of the answer. */
        snprintf(clen, sizeof(clen), "%lld", c->resp_length);
        f[r.v.nresp_fields++] = (wr_http_field_t) { .name = "Content-Length",
            .name_len = strlen("Content-Length"), .value = clen, .value_len = strlen(clen) };
    }
    put_action_headers(a, &r.v, b);     /* a failed one is left out (logged) */
    resp_free(&r);
    wr_buf_free(&orig);
}

void wr_respond_relay_end(wr_hconn_t *c, wr_buf_t *b, int with_length)
{
    if (c->action && c->action->nheaders > 0)
        relay_action_headers(c, b, with_length);
    if (c->chunked_out)
        wr_buf_puts(b, "Transfer-Encoding: chunked\r\n");
    else if (c->resp_length >= 0 && with_length) {
        wr_buf_puts(b, "Content-Length: ");
        wr_buf_put_dec(b, (unsigned long long) c->resp_length);
        wr_buf_append(b, "\r\n", 2);
    }
    if (c->tunnel)
        wr_buf_puts(b, "Connection: Upgrade\r\n");
    else if (c->close_after || !c->keep_alive)
        wr_buf_puts(b, "Connection: close\r\n");
    wr_buf_puts(b, "\r\n");
    c->out_sent = 0;
    c->head_out = 1;
}

void wr_respond_error(wr_hconn_t *c, int status)
{
    resp_t r;

    c->keep_alive = 0;
    /* A request whose head was read (its configuration is held: 413, a
     * proxy's 502) is logged and traced with it; of one that could not be
     * parsed, what is known. One that was handed on has its $request_id. */
    int known = c->conf != NULL && view_again(&r, c) == 0;

    if (!known)
        view_bare(&r, c);
    if (!known || !c->req_counted)
        wr_thread_request_id(c->t, c->reqid);   /* r.v.request_id points there */
    respond_status(&r, status);
    log_access(&r);
    resp_free(&r);
}
