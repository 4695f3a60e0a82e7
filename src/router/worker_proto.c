/*
 * Encode request heads for workers and decode their response heads, as
 * src/lib/proto.h lays them out: uint32 lengths, then bytes, host order.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/addr.h"
#include "lib/proto.h"
#include "router/worker_proto.h"


static int put_str(wr_buf_t *b, const char *s, size_t n)
{
    uint32_t len = (uint32_t) n;

    if (wr_buf_append(b, &len, sizeof(len)) < 0)
        return -1;
    return wr_buf_append(b, s ? s : "", n);
}

static int put_cstr(wr_buf_t *b, const char *s)
{
    return put_str(b, s, s ? strlen(s) : 0);
}


/* Host without its port (and without the brackets of an IPv6 literal). */
static wr_str_t server_name(wr_str_t host)
{
    const char *colon;

    if (host.n == 0)
        return (wr_str_t) { "", 0 };
    if (host.p[0] == '[') {
        const char *end = memchr(host.p, ']', host.n);
        if (end)
            return (wr_str_t) { host.p + 1, (size_t) (end - host.p - 1) };
        return host;
    }
    colon = memchr(host.p, ':', host.n);
    return colon ? (wr_str_t) { host.p, (size_t) (colon - host.p) } : host;
}

static int is_traceparent(const wr_http_field_t *f)
{
    return f->name_len == 11 && strncasecmp(f->name, "traceparent", 11) == 0;
}

int wr_worker_encode_head(wr_buf_t *out, const wr_req_view_t *v, const char *version,
                          const char *target_name)
{
    char rhost[WR_ADDR_TEXT], lhost[WR_ADDR_TEXT];
    char rport[WR_PORT_TEXT], lport[WR_PORT_TEXT];
    size_t start = out->n;
    wr_str_t name = server_name(v->host);
    uint32_t count = 0;
    int rc = 0;

    wr_addr_text(v->remote, rhost, rport);
    wr_addr_text(v->local, lhost, lport);
    rc |= put_str(out, v->method.p, v->method.n);
    rc |= put_str(out, v->request_uri.p, v->request_uri.n);
    rc |= put_str(out, v->uri.p, v->uri.n);
    rc |= put_str(out, v->query.p, v->query.n);
    rc |= put_cstr(out, version);
    rc |= put_cstr(out, rhost);
    rc |= put_cstr(out, rport);
    rc |= put_cstr(out, lhost);
    rc |= put_cstr(out, lport);
    rc |= put_str(out, name.p, name.n);
    rc |= put_cstr(out, v->tls ? "https" : "http");
    rc |= put_cstr(out, target_name);
    /* The fields, the request's span in place of the client's traceparent. */
    for (size_t i = 0; i < v->nfields; i++)
        count += !(v->traceparent && is_traceparent(&v->fields[i]));
    count += v->traceparent != NULL;
    rc |= wr_buf_append(out, &count, sizeof(count));
    for (size_t i = 0; i < v->nfields && rc == 0; i++) {
        if (v->traceparent && is_traceparent(&v->fields[i]))
            continue;
        rc |= put_str(out, v->fields[i].name, v->fields[i].name_len);
        rc |= put_str(out, v->fields[i].value, v->fields[i].value_len);
    }
    if (v->traceparent) {
        rc |= put_cstr(out, "traceparent");
        rc |= put_cstr(out, v->traceparent);
    }
    if (rc != 0 || out->n - start > WR_APP_MAX_PAYLOAD) {
        out->n = start;
        return -1;
    }
    return 0;
}

int wr_worker_encode_upgrade(wr_buf_t *out, uint32_t read_timeout,
                             uint32_t keepalive_interval, uint32_t max_frame_size)
{
    uint32_t v[] = { read_timeout, keepalive_interval, max_frame_size };

    if (out->n + sizeof(v) > WR_APP_MAX_PAYLOAD)
        return -1;
    return wr_buf_append(out, v, sizeof(v));
}

static int take_u32(const char **p, size_t *left, uint32_t *v)
{
    if (*left < sizeof(*v))
        return -1;
    memcpy(v, *p, sizeof(*v));
    *p += sizeof(*v);
    *left -= sizeof(*v);
    return 0;
}

static int take_str(const char **p, size_t *left, const char **s, size_t *n)
{
    uint32_t len;

    if (take_u32(p, left, &len) < 0 || len > *left)
        return -1;
    *s = *p;
    *n = len;
    *p += len;
    *left -= len;
    return 0;
}

#define HEAD_STRINGS  12        /* method ... target name, before the fields */

static int names(const char *s, size_t n, const char *want)
{
    return n == strlen(want) && strncasecmp(s, want, n) == 0;
}

int wr_worker_head_length(wr_buf_t *head, long long length)
{
    const char *p = head->p, *s, *v;
    size_t left = head->n, sn, vn, count_at;
    uint32_t count, kept = 0;
    wr_buf_t out = { 0 };
    char num[32];
    int rc = 0;

    for (int i = 0; i < HEAD_STRINGS; i++)
        if (take_str(&p, &left, &s, &sn) < 0)
            return -1;
    if (take_u32(&p, &left, &count) < 0)
        return -1;
    rc |= wr_buf_append(&out, head->p, (size_t) (p - head->p) - sizeof(count));
    count_at = out.n;
    rc |= wr_buf_append(&out, &count, sizeof(count));
    for (uint32_t i = 0; i < count && rc == 0; i++) {
        if (take_str(&p, &left, &s, &sn) < 0 || take_str(&p, &left, &v, &vn) < 0) {
            wr_buf_free(&out);
            return -1;
        }
        if (names(s, sn, "Transfer-Encoding") || names(s, sn, "Content-Length"))
            continue;
        rc |= put_str(&out, s, sn);
        rc |= put_str(&out, v, vn);
        kept++;
    }
    snprintf(num, sizeof(num), "%lld", length);
    rc |= put_cstr(&out, "Content-Length");
    rc |= put_cstr(&out, num);
    kept++;
    rc |= wr_buf_append(&out, p, left);          /* an upgrade's tail */
    if (rc != 0 || out.p == NULL || out.n > WR_APP_MAX_PAYLOAD) {
        wr_buf_free(&out);
        return -1;
    }
    memcpy(out.p + count_at, &kept, sizeof(kept));
    wr_buf_free(head);
    *head = out;
    return 0;
}

static int is_token_char(unsigned char c)
{
    return c > 0x20 && c < 0x7f && !strchr("\"(),/:;<=>?@[\\]{}", c);
}

static int field_ok(const wr_http_field_t *f)
{
    if (f->name_len == 0)
        return 0;
    for (size_t i = 0; i < f->name_len; i++)
        if (!is_token_char((unsigned char) f->name[i]))
            return 0;
    for (size_t i = 0; i < f->value_len; i++)
        if (f->value[i] == '\r' || f->value[i] == '\n' || f->value[i] == '\0')
            return 0;
    return 1;
}

int wr_worker_decode_resp_head_prefix(const char *p, size_t n, int *status,
                                      wr_http_field_t *fields, size_t max,
                                      size_t *head_len)
{
    size_t total = n;
    uint32_t st, count;

    if (take_u32(&p, &n, &st) < 0 || st < 100 || st > 999
        || take_u32(&p, &n, &count) < 0 || count > max)
        return -1;
    for (uint32_t i = 0; i < count; i++) {
        wr_http_field_t *f = &fields[i];
        if (take_str(&p, &n, &f->name, &f->name_len) < 0
            || take_str(&p, &n, &f->value, &f->value_len) < 0 || !field_ok(f))
            return -1;
    }
    *status = (int) st;
    *head_len = total - n;
    return (int) count;
}

int wr_worker_decode_resp_head(const char *p, size_t n, int *status,
                               wr_http_field_t *fields, size_t max)
{
    size_t used;
    int nf = wr_worker_decode_resp_head_prefix(p, n, status, fields, max, &used);

    return nf >= 0 && used == n ? nf : -1;
}
