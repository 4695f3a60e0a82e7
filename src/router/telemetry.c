/*
 * OpenTelemetry spans of the router (settings.telemetry). Router threads
 * encode each span (OTLP/JSON, or protobuf for gRPC) and queue it; the
 * exporter thread takes up to a batch at a time and sends it to the
 * collector (a POST, or one HTTP/2 stream), one short connection per
 * export. A collector that is away costs the requests nothing: spans wait in
 * a bounded queue, then are dropped and counted, and the failure is logged
 * once a minute.
 */
#include <errno.h>
#include <netdb.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "core/addr.h"
#include "core/buf.h"
#include "core/log.h"
#include "router/telemetry.h"

struct wr_tel {
    pthread_t       thread;
    pthread_mutex_t lock;
    pthread_cond_t  wake;
    wr_buf_t       *q;                /* spans, encoded, oldest first */
    size_t          n, cap;
    struct timespec first;            /* when q[0] was queued */
    wr_tel_conf_t  *target;           /* a copy; NULL: spans stop */
    int             stop;
    atomic_ullong   dropped, exported;
    time_t          warned;           /* last failure logged */
    unsigned long long failed;        /* exports failed since */
    SSL_CTX        *tls;              /* for https collectors, made on first use */
};

/* ------------------------------------------------------------ the setting */

static char *dupn(const char *p, size_t n)
{
    char *s = malloc(n + 1);

    if (s != NULL) {
        memcpy(s, p, n);
        s[n] = '\0';
    }
    return s;
}

void wr_tel_conf_free(wr_tel_conf_t *c)
{
    if (c == NULL)
        return;
    free(c->endpoint);
    free(c->host);
    free(c->port);
    free(c->path);
    free(c);
}

/* "http[s]://host[:port][/path]", host a name, an IPv4 or a [IPv6]. */
static int parse_endpoint(wr_tel_conf_t *c, const char *url)
{
    const char *p = url, *host, *end, *colon;

    if (strncmp(p, "http://", 7) == 0) {
        p += 7;
    } else if (strncmp(p, "https://", 8) == 0) {
        p += 8;
        c->tls = 1;
    } else {
        return -1;
    }
    end = p + strcspn(p, "/?#");
    if (*p == '[') {
        host = p + 1;
        colon = memchr(p, ']', (size_t) (end - p));
        if (colon == NULL)
            return -1;
        c->host = dupn(host, (size_t) (colon - host));
        colon++;
        if (colon < end && *colon != ':')
            return -1;
    } else {
        colon = memchr(p, ':', (size_t) (end - p));
        c->host = dupn(p, (size_t) ((colon ? colon : end) - p));
    }
    if (colon != NULL && colon < end)
        c->port = dupn(colon + 1, (size_t) (end - colon - 1));
    else
        c->port = strdup(c->tls ? "443" : "80");
    c->path = strdup(*end == '/' ? end : WR_TEL_DEFAULT_PATH);
    if (!c->host || !c->port || !c->path || !c->host[0]
        || strspn(c->port, "0123456789") != strlen(c->port) || atoi(c->port) < 1
        || atoi(c->port) > 65535 || strlen(c->port) > 5)
        return -1;
    return 0;
}

wr_tel_conf_t *wr_tel_conf_new(json_t *settings, char *err, size_t errlen)
{
    json_t *t = json_object_get(settings, "telemetry"), *v;
    wr_tel_conf_t *c;

    err[0] = '\0';
    if (t == NULL)
        return NULL;
    if ((c = calloc(1, sizeof(*c))) == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->endpoint = strdup(json_string_value(json_object_get(t, "endpoint")) ?: "");
    if (c->endpoint == NULL || parse_endpoint(c, c->endpoint) < 0) {
        /* "The value at": the controller takes the pointer from it. */
        snprintf(err, errlen, "The value at \"/settings/telemetry/endpoint\" is not an "
                 "http:// or https:// URL with a host and a valid port: \"%s\".",
                 c->endpoint ? c->endpoint : "");
        wr_tel_conf_free(c);
        return NULL;
    }
    v = json_object_get(t, "protocol");
    c->grpc = json_is_string(v) && strcmp(json_string_value(v), "grpc") == 0;
    v = json_object_get(t, "batch_size");
    c->batch = json_is_integer(v) ? (int) json_integer_value(v) : WR_TEL_BATCH_DEFAULT;
    v = json_object_get(t, "sampling_ratio");
    c->ratio = json_is_number(v) ? json_number_value(v) : 1.0;
    return c;
}

static wr_tel_conf_t *conf_copy(const wr_tel_conf_t *c)
{
    wr_tel_conf_t *d = calloc(1, sizeof(*d));

    if (d == NULL)
        return NULL;
    *d = *c;
    d->endpoint = strdup(c->endpoint);
    d->host = strdup(c->host);
    d->port = strdup(c->port);
    d->path = strdup(c->path);
    if (!d->endpoint || !d->host || !d->port || !d->path) {
        wr_tel_conf_free(d);
        return NULL;
    }
    return d;
}

/* ------------------------------------------------------------ one span */

/* s's bytes, those that are not UTF-8 as U+FFFD; json: escaped for a JSON
 * string. */
static void utf8_append(wr_buf_t *b, const char *s, size_t n, int json)
{
    const unsigned char *p = (const unsigned char *) s;

    for (size_t i = 0; i < n; i++) {
        unsigned char ch = p[i];
        size_t len = ch < 0x80 ? 1 : (ch & 0xe0) == 0xc0 ? 2 : (ch & 0xf0) == 0xe0 ? 3
                   : (ch & 0xf8) == 0xf0 ? 4 : 0;
        size_t k;

        if (json && (ch == '"' || ch == '\\')) {
            char esc[2] = { '\\', (char) ch };
            wr_buf_append(b, esc, 2);
            continue;
        }
        if (json && ch < 0x20) {
            wr_buf_printf(b, "\\u%04x", ch);
            continue;
        }
        for (k = 1; len > 1 && k < len && i + k < n && (p[i + k] & 0xc0) == 0x80; k++) {
        }
        if (len == 0 || k < len || (len == 2 && ch < 0xc2)) {
            wr_buf_puts(b, json ? "\\ufffd" : "\xef\xbf\xbd");
            continue;
        }
        wr_buf_append(b, p + i, len);
        i += len - 1;
    }
}

static void json_str(wr_buf_t *b, const char *s, size_t n)
{
    wr_buf_append(b, "\"", 1);
    utf8_append(b, s, n, 1);
    wr_buf_append(b, "\"", 1);
}

/* "," before an attribute that is not the list's first. */
static const char *sep(const wr_buf_t *b)
{
    return b->n > 0 && b->p[b->n - 1] == '[' ? "" : ",";
}

static void attr_str(wr_buf_t *b, const char *key, const char *s, size_t n)
{
    wr_buf_printf(b, "%s{\"key\":\"%s\",\"value\":{\"stringValue\":", sep(b), key);
    json_str(b, s, n);
    wr_buf_puts(b, "}}");
}

/* A lowercase hex digit's value, or -1 (trace context is lowercase). */
static int hexdig(char ch)
{
    return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* n hex digits, not all zero (an id W3C calls invalid). */
static int is_id(const char *p, size_t n)
{
    int nonzero = 0;

    for (size_t i = 0; i < n; i++) {
        if (hexdig(p[i]) < 0)
            return 0;
        nonzero |= p[i] != '0';
    }
    return nonzero;
}

/* The value of n hex digits (n <= 8). */
static unsigned long hexval(const char *p, size_t n)
{
    unsigned long v = 0;

    for (size_t i = 0; i < n; i++)
        v = v * 16 + (unsigned long) (hexdig(p[i]) < 0 ? 0 : hexdig(p[i]));
    return v;
}

/* W3C trace context: "00-TRACE(32)-PARENT(16)-FLAGS(2)" (a later version
 * may add fields after a '-'). 1 with its parts, 0 when absent or not one. */
static int traceparent(const wr_req_view_t *v, const char **trace, const char **parent,
                       int *sampled)
{
    for (size_t i = 0; i < v->nfields; i++) {
        const wr_http_field_t *f = &v->fields[i];
        const char *p = f->value;

        if (f->name_len != 11 || strncasecmp(f->name, "traceparent", 11) != 0)
            continue;
        if (f->value_len < 55 || (f->value_len > 55 && p[55] != '-') || p[2] != '-'
            || p[35] != '-' || p[52] != '-' || hexdig(p[0]) < 0 || hexdig(p[1]) < 0
            || (p[0] == 'f' && p[1] == 'f') || !is_id(p + 3, 32) || !is_id(p + 36, 16)
            || hexdig(p[53]) < 0 || hexdig(p[54]) < 0)
            return 0;
        *trace = p + 3;
        *parent = p + 36;
        *sampled = hexdig(p[54]) & 1;
        return 1;
    }
    return 0;
}

static const wr_http_field_t *field(const wr_req_view_t *v, const char *name)
{
    size_t n = strlen(name);

    for (size_t i = 0; i < v->nfields; i++)
        if (v->fields[i].name_len == n && strncasecmp(v->fields[i].name, name, n) == 0)
            return &v->fields[i];
    return NULL;
}

/* The target's path as sent (an absolute-form target without its scheme
 * and authority): *q its query after '?', or NULL. */
static wr_str_t target_path(const wr_req_view_t *v, wr_str_t *q)
{
    wr_str_t t = v->request_uri;
    const char *p, *mark;

    *q = (wr_str_t) { NULL, 0 };
    if (t.n == 0)
        return t;
    if (t.p[0] != '/' && (p = memmem(t.p, t.n, "://", 3)) != NULL) {
        p += 3;
        mark = memchr(p, '/', (size_t) (t.p + t.n - p));
        t = mark ? (wr_str_t) { mark, (size_t) (t.p + t.n - mark) } : (wr_str_t) { "/", 1 };
    }
    mark = memchr(t.p, '?', t.n);
    if (mark != NULL) {
        *q = (wr_str_t) { mark + 1, (size_t) (t.p + t.n - mark - 1) };
        t.n = (size_t) (mark - t.p);
    }
    return t;
}

/* What a span says: the request as the router saw it. */
typedef struct {
    const char *trace, *span, *parent;  /* hex digits; parent NULL for a new trace */
    wr_str_t    method, path, query, server, user_agent;   /* .p NULL: absent */
    const char *scheme;
    char        client[WR_ADDR_TEXT];
    long long   start_ns, end_ns;
    int         status;
} span_t;

static void span_of(const wr_req_view_t *v, const char *trace, const char *parent,
                    const char *span_id, span_t *s)
{
    struct timespec now;
    const wr_http_field_t *ua = field(v, "User-Agent");
    wr_str_t h = v->host;

    clock_gettime(CLOCK_REALTIME, &now);
    if (h.n > 0 && h.p[0] == '[') {
        const char *close = memchr(h.p, ']', h.n);
        h.n = close ? (size_t) (close - h.p + 1) : h.n;
    } else if (h.n > 0) {
        const char *colon = memchr(h.p, ':', h.n);
        h.n = colon ? (size_t) (colon - h.p) : h.n;
    }
    *s = (span_t) {
        .trace = trace, .span = span_id, .parent = parent, .method = v->method,
        .server = h.n > 0 ? h : (wr_str_t) { NULL, 0 },
        .user_agent = ua ? (wr_str_t) { ua->value, ua->value_len } : (wr_str_t) { NULL, 0 },
        .scheme = v->tls ? "https" : "http",
        .start_ns = (long long) v->start.tv_sec * 1000000000LL + v->start.tv_nsec,
        .end_ns = (long long) now.tv_sec * 1000000000LL + now.tv_nsec,
        .status = v->status,
    };
    s->path = target_path(v, &s->query);
    wr_addr_text(v->remote, s->client, NULL);
}

/* Calls attr(key, value) for each string attribute of s. */
#define SPAN_ATTRS(s, attr)                                                   \
    do {                                                                      \
        attr("http.request.method", (s)->method);                             \
        attr("url.path", (s)->path);                                          \
        if ((s)->query.p != NULL)                                             \
            attr("url.query", (s)->query);                                    \
        attr("url.scheme", ((wr_str_t) { (s)->scheme, strlen((s)->scheme) }));   \
        if ((s)->server.p != NULL)                                            \
            attr("server.address", (s)->server);                              \
        attr("client.address", ((wr_str_t) { (s)->client, strlen((s)->client) })); \
        if ((s)->user_agent.p != NULL)                                        \
            attr("user_agent.original", (s)->user_agent);                     \
    } while (0)

/* The span as an element of OTLP/JSON's "spans". */
static void span_json(const span_t *s, wr_buf_t *b)
{
    wr_buf_printf(b, "{\"traceId\":\"%.32s\",\"spanId\":\"%.16s\",", s->trace, s->span);
    if (s->parent != NULL)
        wr_buf_printf(b, "\"parentSpanId\":\"%.16s\",", s->parent);
    wr_buf_puts(b, "\"name\":");
    json_str(b, s->method.p, s->method.n);
    wr_buf_printf(b, ",\"kind\":2,\"startTimeUnixNano\":\"%lld\",\"endTimeUnixNano\":\"%lld\","
                  "\"attributes\":[", s->start_ns, s->end_ns);
#define JSON_ATTR(key, v) attr_str(b, key, (v).p, (v).n)
    SPAN_ATTRS(s, JSON_ATTR);
#undef JSON_ATTR
    wr_buf_printf(b, "%s{\"key\":\"http.response.status_code\",\"value\":{\"intValue\":\"%d\"}}]"
                  ",\"status\":{%s}}", sep(b), s->status, s->status >= 500 ? "\"code\":2" : "");
}

/* ---- protobuf (OTLP/gRPC): the few encodings a span needs */

enum { PB_VARINT = 0, PB_FIXED64 = 1, PB_LEN = 2 };

static void pb_varint(wr_buf_t *b, unsigned long long v)
{
    unsigned char out[10];
    size_t n = 0;

    do {
        out[n++] = (unsigned char) ((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v != 0);
    wr_buf_append(b, out, n);
}

static void pb_tag(wr_buf_t *b, int field_no, int wire)
{
    pb_varint(b, (unsigned long long) field_no << 3 | (unsigned) wire);
}

static void pb_bytes(wr_buf_t *b, int field_no, const void *p, size_t n)
{
    pb_tag(b, field_no, PB_LEN);
    pb_varint(b, n);
    wr_buf_append(b, p, n);
}

/* A string field: UTF-8 (proto3 refuses other bytes), as json_str makes it. */
static void pb_string(wr_buf_t *b, int field_no, const char *p, size_t n)
{
    wr_buf_t text = { 0 };

    utf8_append(&text, p, n, 0);
    pb_bytes(b, field_no, text.p ? text.p : "", text.n);
    wr_buf_free(&text);
}

/* n hex digits as n / 2 bytes. */
static void pb_hex(wr_buf_t *b, int field_no, const char *hex, size_t n)
{
    unsigned char raw[16];

    for (size_t i = 0; i < n / 2; i++)
        raw[i] = (unsigned char) (hexdig(hex[2 * i]) << 4 | hexdig(hex[2 * i + 1]));
    pb_bytes(b, field_no, raw, n / 2);
}

static void pb_fixed64(wr_buf_t *b, int field_no, unsigned long long v)
{
    unsigned char le[8];

    for (int i = 0; i < 8; i++)
        le[i] = (unsigned char) (v >> (8 * i));
    pb_tag(b, field_no, PB_FIXED64);
    wr_buf_append(b, le, sizeof(le));
}

/* KeyValue{key = 1, value = 2: AnyValue{string_value = 1 | int_value = 3}}
 * as field field_no of b. */
static void pb_attr(wr_buf_t *b, int field_no, const char *key, const wr_str_t *s, long long i)
{
    wr_buf_t kv = { 0 }, any = { 0 };

    if (s != NULL) {
        pb_string(&any, 1, s->p, s->n);
    } else {
        pb_tag(&any, 3, PB_VARINT);
        pb_varint(&any, (unsigned long long) i);
    }
    pb_string(&kv, 1, key, strlen(key));
    pb_bytes(&kv, 2, any.p ? any.p : "", any.n);
    pb_bytes(b, field_no, kv.p ? kv.p : "", kv.n);
    wr_buf_free(&kv);
    wr_buf_free(&any);
}

/* The span as an opentelemetry.proto.trace.v1.Span message. */
static void span_proto(const span_t *s, wr_buf_t *b)
{
    wr_buf_t status = { 0 };

    pb_hex(b, 1, s->trace, 32);
    pb_hex(b, 2, s->span, 16);
    if (s->parent != NULL)
        pb_hex(b, 4, s->parent, 16);
    pb_string(b, 5, s->method.p, s->method.n);
    pb_tag(b, 6, PB_VARINT);
    pb_varint(b, 2);                                    /* SPAN_KIND_SERVER */
    pb_fixed64(b, 7, (unsigned long long) s->start_ns);
    pb_fixed64(b, 8, (unsigned long long) s->end_ns);
#define PB_ATTR(key, v) pb_attr(b, 9, key, &(v), 0)
    SPAN_ATTRS(s, PB_ATTR);
#undef PB_ATTR
    pb_attr(b, 9, "http.response.status_code", NULL, s->status);
    if (s->status >= 500) {
        pb_tag(&status, 3, PB_VARINT);
        pb_varint(&status, 2);                          /* STATUS_CODE_ERROR */
    }
    pb_bytes(b, 15, status.p ? status.p : "", status.n);
    wr_buf_free(&status);
}

static void push(wr_tel_t *tel, wr_buf_t *span, size_t batch)
{
    pthread_mutex_lock(&tel->lock);
    if (tel->n == tel->cap || tel->target == NULL) {
        tel->dropped++;
        wr_buf_free(span);
    } else {
        if (tel->n == 0)
            clock_gettime(CLOCK_MONOTONIC, &tel->first);
        tel->q[tel->n++] = *span;
        /* The first span starts the exporter's clock; a full batch goes. */
        if (tel->n == 1 || tel->n == batch)
            pthread_cond_signal(&tel->wake);
    }
    pthread_mutex_unlock(&tel->lock);
}

void wr_tel_begin(const wr_tel_conf_t *c, const wr_req_view_t *v, const char *random,
                  wr_tel_span_t *s)
{
    const char *trace, *parent = NULL;
    int sampled;

    if (!traceparent(v, &trace, &parent, &sampled)) {
        /* A new trace: its id is the request's $request_id (logs and traces
         * meet on it); 32 random bits against the ratio. */
        trace = v->request_id;
        sampled = (double) hexval(random + 16, 8) < c->ratio * 4294967296.0;
    }
    snprintf(s->ctx, sizeof(s->ctx), "00-%.32s-%.16s-%s", trace, random, sampled ? "01" : "00");
    snprintf(s->parent, sizeof(s->parent), "%.16s", parent ? parent : "");
}

void wr_tel_record(wr_tel_t *tel, const wr_tel_conf_t *c, const wr_req_view_t *v,
                   const wr_tel_span_t *s)
{
    span_t sp;
    wr_buf_t b = { 0 };

    if (tel == NULL || c == NULL || strlen(s->ctx) != WR_TEL_CTX_LEN || s->ctx[54] != '1')
        return;
    span_of(v, s->ctx + 3, s->parent[0] ? s->parent : NULL, s->ctx + 36, &sp);
    if (c->grpc)
        span_proto(&sp, &b);
    else
        span_json(&sp, &b);
    if (b.p != NULL)
        push(tel, &b, (size_t) c->batch);
}

/* ------------------------------------------------------------ exporting */

static void fail(wr_tel_t *tel, const wr_tel_conf_t *t, size_t spans, const char *why)
{
    time_t now = time(NULL);

    tel->failed++;
    if (now - tel->warned < WR_TEL_WARN_EVERY_S)
        return;
    wr_log(WR_LOG_WARN, "telemetry: exporting %zu spans to %s failed: %s (failed exports "
           "since the last report: %llu)", spans, t->endpoint, why, tel->failed);
    tel->warned = now;
    tel->failed = 0;
}

static int connect_to(const wr_tel_conf_t *t, char *why, size_t whylen)
{
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
    struct timeval tv = { .tv_sec = WR_TEL_IO_TIMEOUT_S };
    int fd = -1, rc = getaddrinfo(t->host, t->port, &hints, &res);

    if (rc != 0) {
        snprintf(why, whylen, "getaddrinfo(%s): %s", t->host, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
            break;
        snprintf(why, whylen, "connect(%s:%s): %s", t->host, t->port, strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

/* The connection's two directions, plain or TLS. */
typedef struct {
    int  fd;
    SSL *ssl;
} link_t;

static int link_write(link_t *l, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = l->ssl ? SSL_write(l->ssl, p, (int) n) : send(l->fd, p, n, MSG_NOSIGNAL);

        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t) w;
    }
    return 0;
}

static ssize_t link_read(link_t *l, char *p, size_t n)
{
    return l->ssl ? SSL_read(l->ssl, p, (int) n) : recv(l->fd, p, n, 0);
}

static int tls_start(wr_tel_t *tel, const wr_tel_conf_t *t, link_t *l, char *why, size_t whylen)
{
    if (tel->tls == NULL) {
        tel->tls = SSL_CTX_new(TLS_client_method());
        if (tel->tls == NULL || SSL_CTX_set_default_verify_paths(tel->tls) != 1) {
            snprintf(why, whylen, "cannot set up TLS");
            return -1;
        }
        SSL_CTX_set_verify(tel->tls, SSL_VERIFY_PEER, NULL);
    }
    l->ssl = SSL_new(tel->tls);
    if (l->ssl != NULL && t->grpc)
        SSL_set_alpn_protos(l->ssl, (const unsigned char *) "\x02h2", 3);
    if (l->ssl == NULL || SSL_set_fd(l->ssl, l->fd) != 1
        || SSL_set_tlsext_host_name(l->ssl, t->host) != 1 || SSL_set1_host(l->ssl, t->host) != 1
        || SSL_connect(l->ssl) != 1) {
        snprintf(why, whylen, "TLS handshake with %s failed: %s", t->host,
                 ERR_reason_error_string(ERR_get_error()) ?: "no reason given");
        return -1;
    }
    return 0;
}

/* One POST of body on l (OTLP/HTTP); 0 when the collector answered 2xx. */
static int http_exchange(const wr_tel_conf_t *t, link_t *l, const wr_buf_t *body, char *why,
                         size_t whylen)
{
    wr_buf_t head = { 0 };
    char answer[64];
    ssize_t got = 0, r;
    int rc = -1, status;

    wr_buf_printf(&head, "POST %s HTTP/1.1\r\nHost: %s:%s\r\nContent-Type: application/json\r\n"
                  "Content-Length: %zu\r\nConnection: close\r\n\r\n", t->path, t->host, t->port,
                  body->n);
    if (head.p == NULL || link_write(l, head.p, head.n) < 0
        || link_write(l, body->p, body->n) < 0) {
        snprintf(why, whylen, "sending: %s", strerror(errno));
        goto out;
    }
    while ((size_t) got < sizeof(answer) - 1
           && (r = link_read(l, answer + got, sizeof(answer) - 1 - (size_t) got)) > 0)
        got += r;
    answer[got] = '\0';
    /* The rest of the answer, to its end (Connection: close): a socket
     * closed over unread bytes resets, and the collector sees an error. */
    for (size_t rest = 0; rest < WR_TEL_ANSWER_MAX; rest += (size_t) r) {
        char sink[4096];

        if ((r = link_read(l, sink, sizeof(sink))) <= 0)
            break;
    }
    if (sscanf(answer, "HTTP/1.%*d %d", &status) != 1) {
        snprintf(why, whylen, "no HTTP answer");
        goto out;
    }
    if (status < 200 || status > 299) {
        snprintf(why, whylen, "the collector answered %d", status);
        goto out;
    }
    rc = 0;
out:
    wr_buf_free(&head);
    return rc;
}

/* ---- OTLP/gRPC: one HTTP/2 stream per export, over a blocking socket */

typedef struct {
    link_t         *link;
    const wr_buf_t *body;
    size_t          sent;
    int             closed;      /* the stream ended */
    int             status;      /* :status */
    int             grpc_status; /* grpc-status, -1 until known */
    char            message[128];
} grpc_call_t;

static ssize_t h2_send(nghttp2_session *s, const uint8_t *data, size_t len, int flags,
                       void *user)
{
    grpc_call_t *g = user;

    return link_write(g->link, (const char *) data, len) == 0 ? (ssize_t) len
                                                               : NGHTTP2_ERR_CALLBACK_FAILURE;
}

static int h2_header(nghttp2_session *s, const nghttp2_frame *f, const uint8_t *name,
                     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *user)
{
    grpc_call_t *g = user;

    if (nlen == 7 && memcmp(name, ":status", 7) == 0)
        g->status = atoi((const char *) value);
    else if (nlen == 11 && memcmp(name, "grpc-status", 11) == 0)
        g->grpc_status = atoi((const char *) value);
    else if (nlen == 12 && memcmp(name, "grpc-message", 12) == 0)
        snprintf(g->message, sizeof(g->message), "%.*s", (int) vlen, value);
    return 0;
}

static int h2_close(nghttp2_session *s, int32_t stream, uint32_t error, void *user)
{
    ((grpc_call_t *) user)->closed = 1;
    return 0;
}

static ssize_t h2_body(nghttp2_session *s, int32_t stream, uint8_t *buf, size_t len,
                       uint32_t *flags, nghttp2_data_source *src, void *user)
{
    grpc_call_t *g = user;
    size_t n = g->body->n - g->sent < len ? g->body->n - g->sent : len;

    memcpy(buf, g->body->p + g->sent, n);
    g->sent += n;
    if (g->sent == g->body->n)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t) n;
}

#define NV(n, v) { (uint8_t *) (n), (uint8_t *) (v), strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE }

/* The exchange of one export on l; 0 when it ended with grpc-status 0. */
static int grpc_exchange(const wr_tel_conf_t *t, link_t *l, const wr_buf_t *body, char *why,
                         size_t whylen)
{
    grpc_call_t g = { .link = l, .body = body, .grpc_status = -1 };
    nghttp2_session_callbacks *cbs = NULL;
    nghttp2_session *session = NULL;
    nghttp2_data_provider data = { .read_callback = h2_body };
    char authority[NI_MAXHOST + 16], buf[4096];
    int rc = -1;

    snprintf(authority, sizeof(authority), "%s:%s", t->host, t->port);
    nghttp2_nv nva[] = {
        NV(":method", "POST"), NV(":scheme", t->tls ? "https" : "http"),
        NV(":path", WR_TEL_GRPC_PATH), NV(":authority", authority),
        NV("content-type", "application/grpc"), NV("te", "trailers"),
    };
    if (nghttp2_session_callbacks_new(&cbs) != 0)
        goto out;
    nghttp2_session_callbacks_set_send_callback(cbs, h2_send);
    nghttp2_session_callbacks_set_on_header_callback(cbs, h2_header);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, h2_close);
    if (nghttp2_session_client_new(&session, cbs, &g) != 0
        || nghttp2_submit_settings(session, NGHTTP2_FLAG_NONE, NULL, 0) != 0
        || nghttp2_submit_request(session, NULL, nva, sizeof(nva) / sizeof(nva[0]), &data,
                                  NULL) < 0)
        goto out;
    snprintf(why, whylen, "the collector closed the connection");
    while (!g.closed) {
        ssize_t n;

        if (nghttp2_session_send(session) != 0)
            break;
        n = link_read(l, buf, sizeof(buf));
        if (n <= 0 || nghttp2_session_mem_recv(session, (uint8_t *) buf, (size_t) n) < 0)
            break;
    }
    if (!g.closed)
        goto out;
    if (g.status != 200 || g.grpc_status != 0) {
        snprintf(why, whylen, "the collector answered HTTP %d, grpc-status %d%s%s", g.status,
                 g.grpc_status, g.message[0] ? ": " : "", g.message);
        goto out;
    }
    rc = 0;
out:
    nghttp2_session_del(session);
    nghttp2_session_callbacks_del(cbs);
    return rc;
}

/* One export of body to t's collector, on a connection of its own. */
static int post(wr_tel_t *tel, const wr_tel_conf_t *t, const wr_buf_t *body, char *why,
                size_t whylen)
{
    link_t l = { .fd = connect_to(t, why, whylen) };
    int rc = -1;

    if (l.fd < 0)
        return -1;
    if (!t->tls || tls_start(tel, t, &l, why, whylen) == 0)
        rc = (t->grpc ? grpc_exchange : http_exchange)(t, &l, body, why, whylen);
    if (l.ssl != NULL) {
        SSL_shutdown(l.ssl);
        SSL_free(l.ssl);
    }
    close(l.fd);
    return rc;
}

/* The OTLP/JSON document of n spans. */
static void document_json(wr_buf_t *b, const wr_buf_t *spans, size_t n)
{
    wr_buf_puts(b, "{\"resourceSpans\":[{\"resource\":{\"attributes\":["
                "{\"key\":\"service.name\",\"value\":{\"stringValue\":\"warren\"}},"
                "{\"key\":\"service.version\",\"value\":{\"stringValue\":\"" WR_VERSION "\"}}]},"
                "\"scopeSpans\":[{\"scope\":{\"name\":\"warren\",\"version\":\"" WR_VERSION "\"},"
                "\"spans\":[");
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            wr_buf_append(b, ",", 1);
        wr_buf_append(b, spans[i].p, spans[i].n);
    }
    wr_buf_puts(b, "]}]}]}");
}

/* The ExportTraceServiceRequest of n spans, in its gRPC frame (a flag byte,
 * the length in 4 bytes, big-endian). */
static void document_proto(wr_buf_t *b, const wr_buf_t *spans, size_t n)
{
    static const wr_str_t name = { "warren", 6 }, version = { WR_VERSION, sizeof(WR_VERSION) - 1 };
    wr_buf_t resource = { 0 }, scope = { 0 }, scope_spans = { 0 }, rs = { 0 }, req = { 0 };
    unsigned char frame[5] = { 0 };

    pb_attr(&resource, 1, "service.name", &name, 0);
    pb_attr(&resource, 1, "service.version", &version, 0);
    pb_string(&scope, 1, name.p, name.n);
    pb_string(&scope, 2, version.p, version.n);
    pb_bytes(&scope_spans, 1, scope.p, scope.n);
    for (size_t i = 0; i < n; i++)
        pb_bytes(&scope_spans, 2, spans[i].p, spans[i].n);
    pb_bytes(&rs, 1, resource.p, resource.n);
    pb_bytes(&rs, 2, scope_spans.p, scope_spans.n);
    pb_bytes(&req, 1, rs.p, rs.n);
    for (int i = 0; i < 4; i++)
        frame[1 + i] = (unsigned char) (req.n >> (24 - 8 * i));
    wr_buf_append(b, frame, sizeof(frame));
    wr_buf_append(b, req.p, req.n);
    wr_buf_free(&resource);
    wr_buf_free(&scope);
    wr_buf_free(&scope_spans);
    wr_buf_free(&rs);
    wr_buf_free(&req);
}

static long long ms_since(const struct timespec *t)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long) (now.tv_sec - t->tv_sec) * 1000 + (now.tv_nsec - t->tv_nsec) / 1000000;
}

/* Waits (lock held) until a batch is due: full, old enough, or the end. */
static void wait_batch(wr_tel_t *tel)
{
    while (!tel->stop && (tel->n == 0 || tel->target == NULL
                          || ((long) tel->n < tel->target->batch
                              && ms_since(&tel->first) < WR_TEL_FLUSH_MS))) {
        struct timespec until;

        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += WR_TEL_FLUSH_MS / 4 * 1000000L;
        until.tv_sec += until.tv_nsec / 1000000000L;
        until.tv_nsec %= 1000000000L;
        if (tel->n == 0)
            pthread_cond_wait(&tel->wake, &tel->lock);
        else
            pthread_cond_timedwait(&tel->wake, &tel->lock, &until);
    }
}

/* Takes up to a batch off the queue (lock held): n spans, malloc'ed. */
static wr_buf_t *take(wr_tel_t *tel, size_t *n)
{
    wr_buf_t *spans;

    *n = tel->n < (size_t) tel->target->batch ? tel->n : (size_t) tel->target->batch;
    spans = malloc(*n * sizeof(*spans));
    if (spans != NULL)
        memcpy(spans, tel->q, *n * sizeof(*spans));
    else
        for (size_t i = 0; i < *n; i++)
            wr_buf_free(&tel->q[i]);    /* no memory: they are dropped */
    memmove(tel->q, tel->q + *n, (tel->n - *n) * sizeof(*tel->q));
    tel->n -= *n;
    clock_gettime(CLOCK_MONOTONIC, &tel->first);      /* the rest waits anew */
    return spans;
}

static void *exporter(void *arg)
{
    wr_tel_t *tel = arg;

    pthread_mutex_lock(&tel->lock);
    for (;;) {
        wr_tel_conf_t *t;
        wr_buf_t body = { 0 }, *spans;
        char why[256] = "out of memory";
        size_t n;
        int rc = -1;

        wait_batch(tel);
        if (tel->stop)
            break;
        spans = take(tel, &n);
        t = conf_copy(tel->target);
        pthread_mutex_unlock(&tel->lock);
        if (spans != NULL && t != NULL) {
            (t->grpc ? document_proto : document_json)(&body, spans, n);
            if (body.p != NULL)
                rc = post(tel, t, &body, why, sizeof(why));
        }
        for (size_t i = 0; spans != NULL && i < n; i++)
            wr_buf_free(&spans[i]);
        free(spans);
        wr_buf_free(&body);
        pthread_mutex_lock(&tel->lock);
        if (rc == 0) {
            tel->exported += n;
        } else {
            tel->dropped += n;
            if (t != NULL)
                fail(tel, t, n, why);
        }
        wr_tel_conf_free(t);
    }
    pthread_mutex_unlock(&tel->lock);
    return NULL;
}

/* ------------------------------------------------------------ lifecycle */

static wr_tel_t *tel_start(void)
{
    wr_tel_t *tel = calloc(1, sizeof(*tel));
    pthread_condattr_t ca;

    if (tel == NULL)
        return NULL;
    pthread_mutex_init(&tel->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&tel->wake, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&tel->thread, NULL, exporter, tel) != 0) {
        wr_log(WR_LOG_ERR, "pthread_create(telemetry exporter) failed");
        pthread_cond_destroy(&tel->wake);
        pthread_mutex_destroy(&tel->lock);
        free(tel);
        return NULL;
    }
    return tel;
}

int wr_tel_use(wr_tel_t **telp, const wr_tel_conf_t *c)
{
    wr_tel_t *tel = *telp;
    wr_tel_conf_t *copy = NULL;
    size_t cap;
    wr_buf_t *q;

    if (c == NULL && tel == NULL)
        return 0;
    if (tel == NULL && (tel = *telp = tel_start()) == NULL)
        return -1;
    if (c != NULL && (copy = conf_copy(c)) == NULL)
        return -1;
    cap = c != NULL ? (size_t) c->batch * WR_TEL_QUEUE_BATCHES : 0;
    pthread_mutex_lock(&tel->lock);
    if (cap > tel->cap) {
        q = realloc(tel->q, cap * sizeof(*q));
        if (q == NULL) {
            pthread_mutex_unlock(&tel->lock);
            wr_tel_conf_free(copy);
            return -1;
        }
        tel->q = q;
        tel->cap = cap;
    }
    wr_tel_conf_free(tel->target);
    tel->target = copy;
    if (copy == NULL) {
        /* telemetry is off: what waits will not be sent */
        for (size_t i = 0; i < tel->n; i++)
            wr_buf_free(&tel->q[i]);
        tel->dropped += tel->n;
        tel->n = 0;
    }
    pthread_cond_signal(&tel->wake);
    pthread_mutex_unlock(&tel->lock);
    return 0;
}

unsigned long long wr_tel_dropped(const wr_tel_t *tel)
{
    return tel != NULL ? atomic_load(&tel->dropped) : 0;
}

unsigned long long wr_tel_exported(const wr_tel_t *tel)
{
    return tel != NULL ? atomic_load(&tel->exported) : 0;
}

void wr_tel_stop(wr_tel_t *tel)
{
    if (tel == NULL)
        return;
    pthread_mutex_lock(&tel->lock);
    tel->stop = 1;
    pthread_cond_signal(&tel->wake);
    pthread_mutex_unlock(&tel->lock);
    pthread_join(tel->thread, NULL);
    for (size_t i = 0; i < tel->n; i++)
        wr_buf_free(&tel->q[i]);
    free(tel->q);
    wr_tel_conf_free(tel->target);
    if (tel->tls != NULL)
        SSL_CTX_free(tel->tls);
    pthread_cond_destroy(&tel->wake);
    pthread_mutex_destroy(&tel->lock);
    free(tel);
}
