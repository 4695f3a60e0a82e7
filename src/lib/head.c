/*
 * libwarren: the request head. REQ_HEAD (proto.h) is decoded once into one
 * buffer of NUL-terminated strings, so getters hand out C strings without
 * copying, and the buffer is kept for the slot's next request.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/internal.h"

/* A cursor over the payload being decoded. */
typedef struct {
    const unsigned char *p;
    size_t               left;
} cursor_t;

static int take_u32(cursor_t *c, uint32_t *v)
{
    if (c->left < WL_U32)
        return -1;
    memcpy(v, c->p, WL_U32);
    c->p += WL_U32;
    c->left -= WL_U32;
    return 0;
}

/*
 * Takes one length-prefixed string and appends it, NUL-terminated, at
 * *out. A string with a NUL in it is refused: it could not be a C string.
 */
static int take_str(cursor_t *c, char **out, wlib_str_t *s)
{
    uint32_t n;

    if (take_u32(c, &n) < 0 || n > c->left || memchr(c->p, '\0', n) != NULL)
        return -1;
    memcpy(*out, c->p, n);
    (*out)[n] = '\0';
    s->p = *out;
    s->n = n;
    *out += n + 1;
    c->p += n;
    c->left -= n;
    return 0;
}

/* Room for the strings: each one's 4-byte length becomes a 1-byte NUL, so
 * the payload length is always enough. */
static int reserve(warren_req_t *req, size_t len, uint32_t nhdrs)
{
    size_t need = len + 1;

    if (need > req->strs_cap) {
        char *s = realloc(req->strs, need);

        if (s == NULL)
            return -1;
        req->strs = s;
        req->strs_cap = need;
    }
    if (nhdrs > req->hdrs_cap) {
        wlib_hfield_t *h = realloc(req->hdrs, nhdrs * sizeof(*h));

        if (h == NULL)
            return -1;
        req->hdrs = h;
        req->hdrs_cap = nhdrs;
    }
    return 0;
}

static int bad_head(warren_req_t *req, const char *why)
{
    return wlib_fatal(req->ctx, EPROTO, "protocol: REQ_HEAD %s", why);
}

/* Decodes the header pairs after the fixed fields. */
static int parse_fields(warren_req_t *req, cursor_t *c, char *out)
{
    uint32_t n;

    if (take_u32(c, &n) < 0)
        return bad_head(req, "without a field count");
    /* Each pair takes at least two lengths: a larger count cannot fit. */
    if (n > c->left / WL_FIELD_FIXED)
        return bad_head(req, "field count exceeds the payload");
    if (reserve(req, 0, n) < 0)
        return wlib_fatal(req->ctx, ENOMEM, "out of memory");
    for (uint32_t i = 0; i < n; i++) {
        wlib_hfield_t *f = &req->hdrs[i];

        if (take_str(c, &out, &f->name) < 0
            || take_str(c, &out, &f->value) < 0)
            return bad_head(req, "field truncated or with a NUL");
        if (f->name.n == 0)
            return bad_head(req, "field with an empty name");
    }
    req->nhdrs = n;
    return 0;
}

int wlib_head_parse(warren_req_t *req, const unsigned char *p, size_t len)
{
    cursor_t c = { .p = p, .left = len };
    char *out;

    if (reserve(req, len, 0) < 0)
        return wlib_fatal(req->ctx, ENOMEM, "out of memory");
    out = req->strs;
    for (int i = 0; i < WL_NFIELDS; i++)
        if (take_str(&c, &out, &req->field[i]) < 0)
            return bad_head(req, "string truncated or with a NUL");
    if (parse_fields(req, &c, out) < 0)
        return -1;
    if (req->upgrade
        && (take_u32(&c, &req->ws_read_timeout) < 0
            || take_u32(&c, &req->ws_keepalive_interval) < 0
            || take_u32(&c, &req->ws_max_frame_size) < 0))
        return bad_head(req, "of an upgrade without its WebSocket settings");
    if (c.left != 0)
        return bad_head(req, "with bytes after the fields");
    return 0;
}

void wlib_head_free(warren_req_t *req)
{
    free(req->strs);
    free(req->hdrs);
    req->strs = NULL;
    req->hdrs = NULL;
    req->strs_cap = req->hdrs_cap = 0;
}

/* --------------------------------------------------------------- getters */

static const char *field(const warren_req_t *req, wlib_field_id_t id,
                         size_t *len)
{
    if (len != NULL)
        *len = req->field[id].n;
    return req->field[id].p;
}

const char *warren_req_method(const warren_req_t *req, size_t *len)
{
    return field(req, WL_F_METHOD, len);
}

const char *warren_req_target(const warren_req_t *req, size_t *len)
{
    return field(req, WL_F_TARGET, len);
}

const char *warren_req_path(const warren_req_t *req, size_t *len)
{
    return field(req, WL_F_PATH, len);
}

const char *warren_req_query(const warren_req_t *req, size_t *len)
{
    return field(req, WL_F_QUERY, len);
}

const char *warren_req_version(const warren_req_t *req, size_t *len)
{
    return field(req, WL_F_VERSION, len);
}

const char *warren_req_remote_addr(const warren_req_t *req, size_t *len)
{
    return field(req, WL_F_REMOTE_ADDR, len);
}

const char *warren_req_remote_port(const warren_req_t *req, size_t *len)
{
    return field(req, WL_F_REMOTE_PORT, len);
}

const char *warren_req_local_addr(const warren_req_t *req, size_t *len)
{
    return field(req, WL_F_LOCAL_ADDR, len);
}

const char *warren_req_local_port(const warren_req_t *req, size_t *len)
{
    return field(req, WL_F_LOCAL_PORT, len);
}

const char *warren_req_server_name(const warren_req_t *req, size_t *len)
{
    return field(req, WL_F_SERVER_NAME, len);
}

const char *warren_req_scheme(const warren_req_t *req, size_t *len)
{
    return field(req, WL_F_SCHEME, len);
}

const char *warren_req_target_name(const warren_req_t *req, size_t *len)
{
    return field(req, WL_F_TARGET_NAME, len);
}

int warren_req_upgrade(const warren_req_t *req)
{
    return req->upgrade;
}

int warren_req_websocket(const warren_req_t *req, warren_websocket_t *out)
{
    if (!req->upgrade) {
        errno = EINVAL;
        return -1;
    }
    out->read_timeout = req->ws_read_timeout;
    out->keepalive_interval = req->ws_keepalive_interval;
    out->max_frame_size = req->ws_max_frame_size;
    return 0;
}

size_t warren_req_header_count(const warren_req_t *req)
{
    return req->nhdrs;
}

int warren_req_header(const warren_req_t *req, size_t i,
                      const char **name, size_t *nlen,
                      const char **value, size_t *vlen)
{
    const wlib_hfield_t *f;

    if (i >= req->nhdrs) {
        errno = EINVAL;
        return -1;
    }
    f = &req->hdrs[i];
    if (name != NULL)
        *name = f->name.p;
    if (nlen != NULL)
        *nlen = f->name.n;
    if (value != NULL)
        *value = f->value.p;
    if (vlen != NULL)
        *vlen = f->value.n;
    return 0;
}

/* Field names are ASCII tokens: compare without the locale's idea of case. */
static int ascii_lower(int ch)
{
    return ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch;
}

static bool name_eq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (ascii_lower((unsigned char) a[i])
            != ascii_lower((unsigned char) b[i]))
            return false;
    return true;
}

const char *warren_req_header_get(const warren_req_t *req, const char *name,
                                  size_t *vlen)
{
    size_t n = strlen(name);

    for (size_t i = 0; i < req->nhdrs; i++) {
        const wlib_hfield_t *f = &req->hdrs[i];

        if (f->name.n == n && name_eq(f->name.p, name, n)) {
            if (vlen != NULL)
                *vlen = f->value.n;
            return f->value.p;
        }
    }
    return NULL;
}
