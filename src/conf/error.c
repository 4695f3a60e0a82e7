/*
 * conf errors: the one structure every conf function fills on failure, and
 * its serialization in Unit's answer shape.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"

void
wr_conf_error_init(wr_conf_error_t *e)
{
    memset(e, 0, sizeof(*e));
    e->offset = -1;
    e->line = -1;
    e->column = -1;
}

void
wr_conf_error_clear(wr_conf_error_t *e)
{
    free(e->error);
    free(e->detail);
    free(e->path);
    free(e->suggestion);
    wr_conf_error_init(e);
}

static char *
dup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

int
wr_conf_error_set(wr_conf_error_t *e, int status, const char *error,
                  const char *path, const char *fmt, ...)
{
    va_list ap;
    char   *detail = NULL;

    /* A fresh error replaces an older one entirely, location included. */
    wr_conf_error_clear(e);
    e->status = status;
    e->error = dup_or_null(error);
    e->path = dup_or_null(path);

    if (fmt != NULL) {
        va_start(ap, fmt);
        if (vasprintf(&detail, fmt, ap) < 0) {
            detail = NULL;
        }
        va_end(ap);
    }
    e->detail = detail;
    return -1;
}

/* Adds key=string to obj when s is set; NULL means the field is unused. */
static int
add_string(json_t *obj, const char *key, const char *s)
{
    if (s == NULL) {
        return 0;
    }
    return json_object_set_new(obj, key, json_string(s));
}

json_t *
wr_conf_error_json(const wr_conf_error_t *e)
{
    json_t *obj, *loc = NULL;
    int     rc = 0;

    obj = json_object();
    if (obj == NULL) {
        return NULL;
    }
    rc |= add_string(obj, "error", e->error);
    rc |= add_string(obj, "detail", e->detail);

    if (e->path != NULL) {
        loc = json_pack("{s:s}", "path", e->path);
    } else if (e->offset >= 0) {
        loc = json_pack("{s:I,s:I,s:I}", "offset", (json_int_t) e->offset,
                        "line", (json_int_t) e->line,
                        "column", (json_int_t) e->column);
    }
    if (loc != NULL) {
        rc |= json_object_set_new(obj, "location", loc);
    }
    rc |= add_string(obj, "suggestion", e->suggestion);

    if (rc != 0) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}
