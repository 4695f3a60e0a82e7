/*
 * conf: the configuration model. Everything here is pure: JSON text in, jansson
 * trees and C structs out, no I/O except the state file helpers.
 *
 * Who calls what:
 *   controller  wr_conf_parse, wr_ptr_*, wr_conf_get/put/post/delete,
 *               wr_conf_validate, wr_conf_error_json
 *   main        wr_conf_parse, wr_conf_validate, wr_conf_listeners, wr_state_*
 *   router      wr_conf_parse, wr_conf_listeners, wr_conf_settings
 */
#ifndef WR_CONF_H
#define WR_CONF_H

#include <stddef.h>
#include <jansson.h>

#include "conf/limits.h"

/*
 * An error to answer a control request with. Strings are owned (malloc) and
 * released by wr_conf_error_clear(); unused fields are NULL / -1.
 * Serialized by wr_conf_error_json() in Unit's shape:
 *   {"error": ..., "detail": ..., "location": {"path": ...} or
 *    {"offset": ..., "line": ..., "column": ...}, "suggestion": ...}
 */
typedef struct {
    int   status;          /* HTTP status: 400, 404, 405, 413, 500 */
    char *error;           /* title, e.g. "Invalid configuration." */
    char *detail;          /* the reason, one sentence */
    char *path;            /* JSON pointer of the bad value, relative to /config */
    char *suggestion;      /* e.g. "Did you mean \"listeners\"?" */
    long  offset, line, column;   /* position in the body, for "Invalid JSON." */
} wr_conf_error_t;

void    wr_conf_error_init(wr_conf_error_t *e);
void    wr_conf_error_clear(wr_conf_error_t *e);
/* Set fields from printf-style detail; error title copied. Returns -1 always. */
int     wr_conf_error_set(wr_conf_error_t *e, int status, const char *error,
                          const char *path, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));
json_t *wr_conf_error_json(const wr_conf_error_t *e);   /* new reference */

/*
 * Parse JSON text with Warren's limits (WR_CONF_MAX_DEPTH, WR_CONF_MAX_ELEMENTS).
 * Any JSON value is accepted at the top (a PUT may set a string). On failure
 * returns NULL and fills err with 400 "Invalid JSON." and the location.
 */
json_t *wr_conf_parse(const char *text, size_t len, wr_conf_error_t *err);

/* ---- JSON pointers: "/a/b%2Fc/0", segments percent-decoded ---- */
typedef struct {
    size_t  n;
    char  **seg;        /* decoded segments, NUL-terminated */
} wr_ptr_t;

/* Returns 0, or -1 on bad percent-encoding / embedded NUL (err: 400). The
 * empty string and "/" both mean the root. */
int     wr_ptr_parse(const char *path, size_t len, wr_ptr_t *p, wr_conf_error_t *err);
void    wr_ptr_free(wr_ptr_t *p);
/* Borrowed reference into root, or NULL if the value doesn't exist. Array
 * segments must be canonical decimal indexes ("0", "12"; not "01", "-1"). */
json_t *wr_ptr_get(json_t *root, const wr_ptr_t *p);

/*
 * Edits. Each returns a NEW root (deep copy with the change; the old root is
 * untouched so a failed validation loses nothing), or NULL with err set:
 *   404 "Value doesn't exist."  the parent (or, for DELETE, the value) is missing
 *   400 "Method isn't allowed." POST to a non-array
 * put:    set value at p (creates the last key; replaces an array element).
 * post:   append value to the array at p.
 * delete: remove the value at p; deleting the root yields {}.
 * value is borrowed (copied in).
 */
json_t *wr_conf_put(json_t *root, const wr_ptr_t *p, json_t *value, wr_conf_error_t *err);
json_t *wr_conf_post(json_t *root, const wr_ptr_t *p, json_t *value, wr_conf_error_t *err);
json_t *wr_conf_delete(json_t *root, const wr_ptr_t *p, wr_conf_error_t *err);

/*
 * Validate a whole configuration document against Unit's schema plus Warren's
 * additive keys (docs/configuration.md). Returns 0, or -1 with err set to 400
 * "Invalid configuration.", detail, path (JSON pointer of the bad value) and,
 * for unknown keys, a "Did you mean ...?" suggestion.
 */
int     wr_conf_validate(json_t *root, wr_conf_error_t *err);
/* The same, with what the control API's stores hold ({"name": anything};
 * NULL: none): a listener's "tls" may name only certificate bundles stored,
 * settings.js_module only JavaScript modules stored. */
int     wr_conf_validate_stored(json_t *root, json_t *certs, json_t *js_modules,
                                wr_conf_error_t *err);

/* The first listener whose "tls" names certificate `name`: its address
 * (borrowed from root), or NULL when none does. */
const char *wr_conf_cert_user(json_t *root, const char *name);

/* JavaScript modules (/js_modules): a name is a JavaScript identifier of
 * letters, digits, '_' and '$' (templates use it as one), at most
 * WR_CONF_JS_NAME_MAX bytes. */
#define WR_CONF_JS_MODULES_DIR  "js_modules"        /* under the state dir */
#define WR_CONF_JS_NAME_MAX     128
#define WR_CONF_JS_MODULE_MAX   (1024L * 1024)      /* bytes of one module's source */
int     wr_conf_js_module_name_ok(const char *name);
/* "settings" when settings.js_module names module `name`, else NULL. */
const char *wr_conf_js_module_user(json_t *root, const char *name);

/* ---- C structs for the other parts ---- */

/* Listener addresses of a validated config, in document order. */
typedef struct {
    size_t  n;
    char  **addr;       /* the key as written: "*:8080", "127.0.0.1:80", "unix:/p" */
    int    *backlog;    /* -1 when not set (use the system default) */
} wr_conf_listeners_t;

int     wr_conf_listeners(json_t *root, wr_conf_listeners_t *out);
void    wr_conf_listeners_free(wr_conf_listeners_t *l);

/* settings.http with Unit's defaults filled in (times in seconds, as Unit). */
typedef struct {
    int     header_read_timeout;     /* 30 */
    int     body_read_timeout;       /* 30 */
    int     send_timeout;            /* 30 */
    int     idle_timeout;            /* 180 */
    long    body_buffer_size;        /* 8192 */
    long    max_body_size;           /* 8388608 */
    char    body_temp_path[WR_CONF_PATH_MAX]; /* "": the router's own directory
                                                under --tmpdir */
    long    large_header_buffer_size;/* 8192 */
    int     large_header_buffers;    /* 4 */
    int     discard_unsafe_fields;   /* 1 */
    int     log_route;               /* 0 */
    int     server_version;          /* 1 */
    int     chunked_transform;       /* 0 */
    int     listen_threads;          /* 0 = one per CPU (Warren) */
    int     proxy_keepalive;         /* 0 = off (Warren) */
    int     http2;                   /* 0 = off (Warren) */
    int     h2_max_streams;          /* 128, nginx's (Warren): http2_max_concurrent_streams */
    /* settings.http.websocket */
    int     ws_read_timeout;         /* 60 */
    int     ws_keepalive_interval;   /* 30 */
    long    ws_max_frame_size;       /* 1048576 */
} wr_conf_settings_t;

void    wr_conf_settings(json_t *root, wr_conf_settings_t *out);

#endif
