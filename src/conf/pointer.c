/*
 * Configuration paths, as Unit's control API takes them: "/a/b%2Fc/0".
 *
 * The path is split on raw "/" first and each segment is percent-decoded
 * after, so "%2F" stays inside a key (listeners "unix:/run/x.sock" are reached
 * as "unix:%2Frun%2Fx.sock"). Like Unit, "~" has no special meaning here and
 * a trailing "/" is ignored ("/listeners/" is "/listeners").
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"

#define STATUS_BAD     400
#define INVALID_PATH   "Invalid path."

static int
hex_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* Decodes src[0..len) into a new string; NULL and err set on bad input. */
static char *
decode_segment(const char *src, size_t len, wr_conf_error_t *err)
{
    char  *out = malloc(len + 1);
    size_t i, o = 0;

    if (out == NULL) {
        wr_conf_error_set(err, 500, "Memory allocation failed.", NULL, NULL);
        return NULL;
    }
    for (i = 0; i < len; i++) {
        char c = src[i];

        if (c == '%') {
            /* Both hex digits must be inside this segment. */
            int hi = i + 2 < len ? hex_value(src[i + 1]) : -1;
            int lo = hi >= 0 ? hex_value(src[i + 2]) : -1;

            if (hi < 0 || lo < 0) {
                free(out);
                wr_conf_error_set(err, STATUS_BAD, INVALID_PATH, NULL,
                                  "The path has a malformed percent-encoding.");
                return NULL;
            }
            c = (char) (hi * 16 + lo);
            i += 2;
        }
        if (c == '\0') {
            free(out);
            wr_conf_error_set(err, STATUS_BAD, INVALID_PATH, NULL,
                              "The path must not contain a NUL character.");
            return NULL;
        }
        out[o++] = c;
    }
    out[o] = '\0';
    return out;
}

void
wr_ptr_free(wr_ptr_t *p)
{
    size_t i;

    for (i = 0; i < p->n; i++) {
        free(p->seg[i]);
    }
    free(p->seg);
    p->seg = NULL;
    p->n = 0;
}

int
wr_ptr_parse(const char *path, size_t len, wr_ptr_t *p, wr_conf_error_t *err)
{
    size_t start, i, count = 1;

    p->n = 0;
    p->seg = NULL;
    if (path == NULL) {
        len = 0;
    }
    /* The leading "/" is optional and one trailing "/" is ignored. */
    if (len > 0 && path[0] == '/') {
        path++;
        len--;
    }
    if (len > 0 && path[len - 1] == '/') {
        len--;
    }
    if (len == 0) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        count += path[i] == '/';
    }
    p->seg = calloc(count, sizeof(*p->seg));
    if (p->seg == NULL) {
        return wr_conf_error_set(err, 500, "Memory allocation failed.", NULL,
                                 NULL);
    }
    start = 0;
    for (i = 0; i <= len; i++) {
        if (i < len && path[i] != '/') {
            continue;
        }
        p->seg[p->n] = decode_segment(path + start, i - start, err);
        if (p->seg[p->n] == NULL) {
            wr_ptr_free(p);
            return -1;
        }
        p->n++;
        start = i + 1;
    }
    return 0;
}

/* Canonical decimal index: "0" or no leading zero, digits only, fits. */
static int
parse_index(const char *s, size_t *out)
{
    size_t v = 0;

    if (s[0] == '\0' || (s[0] == '0' && s[1] != '\0')) {
        return -1;
    }
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9') {
            return -1;
        }
        if (v > (SIZE_MAX - 9) / 10) {
            return -1;
        }
        v = v * 10 + (size_t) (*s - '0');
    }
    *out = v;
    return 0;
}

/* One step down from v, or NULL. */
static json_t *
child(json_t *v, const char *seg)
{
    size_t idx;

    if (json_is_object(v)) {
        return json_object_get(v, seg);
    }
    if (json_is_array(v) && parse_index(seg, &idx) == 0) {
        return json_array_get(v, idx);
    }
    return NULL;
}

json_t *
wr_ptr_get(json_t *root, const wr_ptr_t *p)
{
    size_t i;
    json_t *v = root;

    for (i = 0; v != NULL && i < p->n; i++) {
        v = child(v, p->seg[i]);
    }
    return v;
}
