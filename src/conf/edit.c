/*
 * PUT / POST / DELETE on a configuration path.
 *
 * Every edit works on a deep copy: the caller validates the new document and
 * keeps the old one untouched if validation (or any part) refuses it.
 */
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"

#define STATUS_BAD          400
#define STATUS_NOT_FOUND    404
#define STATUS_NOT_ALLOWED  400     /* POST to a non-array, per conf.h */
#define STATUS_NO_MEMORY    500

#define NOT_FOUND      "Value doesn't exist."
#define NOT_ALLOWED    "Method isn't allowed."
#define NO_MEMORY      "Memory allocation failed."

static json_t *
fail(wr_conf_error_t *err, int status, const char *title)
{
    wr_conf_error_set(err, status, title, NULL, NULL);
    return NULL;
}

/* Nesting depth of v, but stops counting once above limit so an unbounded
 * tree can't run the stack out. */
static int
depth_capped(json_t *v, int limit)
{
    int         best = 0, d;
    size_t      i;
    const char *key;
    json_t     *child;

    if (!json_is_object(v) && !json_is_array(v)) {
        return 0;
    }
    if (limit <= 0) {
        return 1;
    }
    if (json_is_array(v)) {
        json_array_foreach(v, i, child) {
            d = depth_capped(child, limit - 1);
            best = d > best ? d : best;
        }
    } else {
        json_object_foreach(v, key, child) {
            d = depth_capped(child, limit - 1);
            best = d > best ? d : best;
        }
    }
    return best + 1;
}

/* Edits may not build a document deeper than a body could be parsed into:
 * other parts recurse over the tree. */
/* p as an RFC 6901 string ("~" -> "~0", "/" -> "~1"); malloc'ed or NULL. */
static char *
pointer_text(const wr_ptr_t *p)
{
    size_t len = 1, i;
    char  *s, *o;

    for (i = 0; i < p->n; i++) {
        len += 1 + 2 * strlen(p->seg[i]);
    }
    s = o = malloc(len);
    if (s == NULL) {
        return NULL;
    }
    for (i = 0; i < p->n; i++) {
        *o++ = '/';
        for (const char *c = p->seg[i]; *c; c++) {
            if (*c == '~' || *c == '/') {
                *o++ = '~';
                *o++ = *c == '~' ? '0' : '1';
            } else {
                *o++ = *c;
            }
        }
    }
    *o = '\0';
    return s;
}

/* extra: 1 when value goes one level below p (POST appends to p). */
static int
too_deep(const wr_ptr_t *p, size_t extra, json_t *value, wr_conf_error_t *err)
{
    size_t at = p->n + extra;
    char  *path;

    if (at > WR_CONF_MAX_DEPTH
        || (size_t) depth_capped(value, WR_CONF_MAX_DEPTH) + at > WR_CONF_MAX_DEPTH)
    {
        path = pointer_text(p);
        wr_conf_error_set(err, STATUS_BAD, "Invalid configuration.", path,
                          "The configuration would be nested more than %d "
                          "levels deep.", WR_CONF_MAX_DEPTH);
        free(path);
        return 1;
    }
    return 0;
}

static json_t *
copy_root(json_t *root, wr_conf_error_t *err)
{
    json_t *copy = root != NULL ? json_deep_copy(root) : json_object();

    if (copy == NULL) {
        return fail(err, STATUS_NO_MEMORY, NO_MEMORY);
    }
    return copy;
}

/* The value at the first n segments of p. */
static json_t *
walk(json_t *root, const wr_ptr_t *p, size_t n)
{
    wr_ptr_t prefix = { .n = n, .seg = p->seg };

    return wr_ptr_get(root, &prefix);
}

/* Index of the array element named by seg, or -1 when it doesn't exist.
 * wr_ptr_get accepts only canonical in-range indexes, so strtoul is safe
 * once it found the element. */
static long
array_index(json_t *array, char *seg)
{
    wr_ptr_t one = { .n = 1, .seg = &seg };

    if (wr_ptr_get(array, &one) == NULL) {
        return -1;
    }
    return (long) strtoul(seg, NULL, 10);
}

json_t *
wr_conf_put(json_t *root, const wr_ptr_t *p, json_t *value, wr_conf_error_t *err)
{
    json_t *copy, *parent, *nv;
    char   *last;
    long    idx;
    int     rc = -1;

    if (too_deep(p, 0, value, err)) {
        return NULL;
    }
    if (p->n == 0) {
        nv = json_deep_copy(value);
        return nv != NULL ? nv : fail(err, STATUS_NO_MEMORY, NO_MEMORY);
    }
    copy = copy_root(root, err);
    if (copy == NULL) {
        return NULL;
    }
    parent = walk(copy, p, p->n - 1);
    last = p->seg[p->n - 1];

    if (json_is_object(parent)) {
        rc = json_object_set_new(parent, last, json_deep_copy(value));
    } else if (json_is_array(parent) && (idx = array_index(parent, last)) >= 0) {
        rc = json_array_set_new(parent, (size_t) idx, json_deep_copy(value));
    } else {
        json_decref(copy);
        return fail(err, STATUS_NOT_FOUND, NOT_FOUND);
    }
    if (rc != 0) {
        json_decref(copy);
        return fail(err, STATUS_NO_MEMORY, NO_MEMORY);
    }
    return copy;
}

json_t *
wr_conf_post(json_t *root, const wr_ptr_t *p, json_t *value, wr_conf_error_t *err)
{
    json_t *copy, *target;

    if (too_deep(p, 1, value, err)) {
        return NULL;
    }
    copy = copy_root(root, err);
    if (copy == NULL) {
        return NULL;
    }
    target = walk(copy, p, p->n);
    if (target == NULL || !json_is_array(target)) {
        json_decref(copy);
        return target == NULL ? fail(err, STATUS_NOT_FOUND, NOT_FOUND)
                              : fail(err, STATUS_NOT_ALLOWED, NOT_ALLOWED);
    }
    if (json_array_append_new(target, json_deep_copy(value)) != 0) {
        json_decref(copy);
        return fail(err, STATUS_NO_MEMORY, NO_MEMORY);
    }
    return copy;
}

json_t *
wr_conf_delete(json_t *root, const wr_ptr_t *p, wr_conf_error_t *err)
{
    json_t *copy, *parent, *empty;
    char   *last;
    long    idx;

    if (p->n == 0) {
        empty = json_object();
        return empty != NULL ? empty : fail(err, STATUS_NO_MEMORY, NO_MEMORY);
    }
    copy = copy_root(root, err);
    if (copy == NULL) {
        return NULL;
    }
    parent = walk(copy, p, p->n - 1);
    last = p->seg[p->n - 1];

    if (json_is_object(parent) && json_object_get(parent, last) != NULL) {
        json_object_del(parent, last);
        return copy;
    }
    if (json_is_array(parent) && (idx = array_index(parent, last)) >= 0) {
        json_array_remove(parent, (size_t) idx);
        return copy;
    }
    json_decref(copy);
    return fail(err, STATUS_NOT_FOUND, NOT_FOUND);
}
