/*
 * route: what a request is matched against and what is done with it.
 * Compiled once per configuration (pure: no I/O but the share action's
 * openat2), then read concurrently by every router thread without locks:
 * nothing in a compiled wr_routes_t changes after wr_routes_compile().
 *
 * Who calls what:
 *   router   wr_routes_compile/free, wr_routes_resolve, wr_tpl_* (via actions),
 *            wr_share_*, wr_mime_*, wr_http_date
 *   access log  wr_tpl_compile/eval (log format), wr_if_true
 */
#ifndef WR_ROUTE_H
#define WR_ROUTE_H

#include <stddef.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <jansson.h>

#include "core/buf.h"
#include "http/http.h"

typedef struct {
    const char *p;
    size_t      n;
} wr_str_t;

/*
 * One request as routing, variables and the access log see it. Filled by the
 * router; strings point into the connection's buffers and are not
 * NUL-terminated. Fields after the marker are known once a response exists.
 */
typedef struct {
    wr_str_t               method;
    wr_str_t               host;          /* Host as sent (may include ":port") */
    wr_str_t               request_uri;   /* target as sent: $request_uri */
    wr_str_t               uri;           /* decoded, dot-segments removed: $uri;
                                             rewrite points it at new memory */
    wr_str_t               query;         /* raw, without '?': $args */
    wr_str_t               request_line;  /* without CRLF: $request_line */
    const wr_http_field_t *fields;
    size_t                 nfields;
    int                    tls;           /* scheme "https" */
    const struct sockaddr *remote;        /* $remote_addr (after "forwarded") */
    const struct sockaddr *local;         /* destination */
    struct timespec        start;         /* arrival, CLOCK_REALTIME */
    const char            *request_id;    /* 32 lowercase hex chars, NUL-terminated */
    const struct wr_script_env *js;       /* the config's JavaScript modules, or NULL */
    const char            *traceparent;   /* the request's span (settings.telemetry)
                                             as applications and upstreams get it */
    /* -- response side -- */
    int                    status;        /* $status */
    unsigned long long     body_bytes_sent;
    double                 request_time;  /* seconds, $request_time */
    const wr_http_field_t *resp_fields;   /* $response_header_NAME */
    size_t                 nresp_fields;
} wr_req_view_t;

/* ---- templates: strings with $var / ${var} (Unit's variables) ---- */

typedef struct wr_tpl wr_tpl_t;

/* NULL with err filled for an unknown variable or bad syntax. */
wr_tpl_t *wr_tpl_compile(const char *s, char *err, size_t errlen);
void      wr_tpl_free(wr_tpl_t *t);
int       wr_tpl_is_const(const wr_tpl_t *t);
/* Append the expansion to out; -1 when memory runs out. */
int       wr_tpl_eval(const wr_tpl_t *t, const wr_req_view_t *r, wr_buf_t *out);
/* Unit's "if": false when the expansion is empty or "0"; "!" prefix negates. */
typedef struct wr_if wr_if_t;
wr_if_t  *wr_if_compile(const char *s, char *err, size_t errlen);
void      wr_if_free(wr_if_t *c);
int       wr_if_true(const wr_if_t *c, const wr_req_view_t *r, wr_buf_t *scratch);

/* ---- actions ---- */

typedef enum {
    WR_ACTION_RETURN = 1,
    WR_ACTION_SHARE,
    WR_ACTION_PASS_APP,        /* applications/NAME[/TARGET] */
    WR_ACTION_PASS_UPSTREAM,   /* upstreams/NAME */
    WR_ACTION_PROXY,
    WR_ACTION_METRICS          /* "metrics": the router's counters (Warren) */
} wr_action_kind_t;

typedef enum {
    WR_METRICS_PROMETHEUS = 1, /* text exposition format 0.0.4 */
    WR_METRICS_JSON            /* the document of GET /status */
} wr_metrics_format_t;

typedef struct {
    char     *name;
    wr_tpl_t *value;           /* NULL: delete the field */
} wr_resp_header_t;

typedef struct wr_mime_filter wr_mime_filter_t;   /* "types" of a share */

/* Does the MIME type pass the share's "types" filter? 1 or 0 (a NULL filter
 * passes everything). Patterns as in matches, case-insensitive. */
int wr_mime_filter_match(const wr_mime_filter_t *f, const char *mime);

typedef struct wr_action {
    wr_action_kind_t   kind;
    int                status;          /* return */
    wr_tpl_t          *location;        /* return, optional */
    wr_tpl_t         **share;           /* share: tried in order */
    size_t             nshare;
    wr_tpl_t          *index;           /* share: default "index.html" */
    wr_tpl_t          *chroot;          /* share: optional */
    int                follow_symlinks; /* share: default 1 */
    int                traverse_mounts; /* share: default 1 */
    wr_mime_filter_t  *types;           /* share: NULL = any type */
    struct wr_action  *fallback;        /* share: when nothing is found */
    wr_tpl_t          *rewrite;         /* any action: new $uri (+ ?args) */
    wr_resp_header_t  *headers;         /* any action: response_headers */
    size_t             nheaders;
    char              *app;             /* pass to application: NAME */
    char              *target;          /* ... and TARGET, or NULL */
    char              *upstream;        /* pass to upstream: NAME */
    char              *proxy;           /* proxy: the URL */
    wr_metrics_format_t metrics;        /* metrics */
} wr_action_t;

typedef struct wr_routes wr_routes_t;

/* Compile the routes (and every action) of a validated config. NULL with err
 * (one sentence naming the JSON pointer) when something cannot be built,
 * e.g. a regex PCRE2 refuses. */
wr_routes_t *wr_routes_compile(json_t *conf, char *err, size_t errlen);
void         wr_routes_free(wr_routes_t *rt);

enum {
    WR_ROUTE_FOUND = 0,        /* *out is the action to run */
    WR_ROUTE_NOT_FOUND,        /* no step matched: 404 */
    WR_ROUTE_ERROR             /* pass loop, unknown dynamic target...: 500 */
};

/*
 * From a listener's pass ("routes", "routes/NAME", "applications/NAME",
 * "upstreams/NAME", or with variables), walk the steps: first match wins;
 * an action "pass" continues in the named route (bounded hops); "rewrite"
 * of a matched step changes r->uri/r->query (memory from scratch, which must
 * outlive the request). Returns WR_ROUTE_*.
 */
int wr_routes_resolve(const wr_routes_t *rt, const char *pass, wr_req_view_t *r,
                      wr_buf_t *scratch, const wr_action_t **out);

/*
 * A share's fallback may itself be a pass to a route or a pass with
 * variables, which no wr_action_t kind can express (such a fallback has kind
 * 0). Run a fallback through this before looking at its kind: it applies the
 * fallback's rewrite, follows a pass like wr_routes_resolve, and otherwise
 * sets *out = fallback. Returns WR_ROUTE_*.
 */
int wr_routes_fallback(const wr_routes_t *rt, const wr_action_t *fallback,
                       wr_req_view_t *r, wr_buf_t *scratch, const wr_action_t **out);

/* ---- a listener's "forwarded": the client behind a trusted proxy ---- */

typedef struct wr_forwarded wr_forwarded_t;

wr_forwarded_t *wr_forwarded_compile(json_t *forwarded, char *err, size_t errlen);
void            wr_forwarded_free(wr_forwarded_t *f);
/*
 * If r->remote is a trusted "source", take the client address from the
 * "client_ip" field (rightmost entry; with "recursive", the rightmost one
 * that is not itself trusted) into *client and point r->remote at it, and
 * set r->tls from the "protocol" field ("https"/"on"). Untrusted peers and
 * unparsable values leave r untouched.
 */
void            wr_forwarded_apply(const wr_forwarded_t *f, wr_req_view_t *r,
                                   struct sockaddr_storage *client);

/* ---- static files ---- */

typedef struct wr_mime wr_mime_t;

/* Built-in table plus settings.http.static.mime_types (overrides). */
wr_mime_t  *wr_mime_compile(json_t *conf, char *err, size_t errlen);
void        wr_mime_free(wr_mime_t *m);
/* MIME type of a file name by extension; "application/octet-stream" if none. */
const char *wr_mime_type(const wr_mime_t *m, const char *name, size_t len);

typedef struct {
    int         status;     /* 200: fd/st valid; 301: location set (directory
                               without trailing slash); 403, 404, 500;
                               0: nothing found and the action has a fallback */
    int         fd;         /* -1 unless status 200 */
    struct stat st;
    const char *mime;       /* from the wr_mime_t, static storage */
    char       *location;   /* malloc'ed, for 301 */
} wr_share_result_t;

/*
 * Serve a share action: expand each share template (then index for a path
 * ending in '/'), open with openat2 (RESOLVE_IN_ROOT below chroot, plus
 * RESOLVE_NO_SYMLINKS / RESOLVE_NO_XDEV as configured), check the type
 * filter. Unit's semantics for 403 vs 404 and directory redirects.
 */
int wr_share_open(const wr_action_t *a, const wr_mime_t *mime, const wr_req_view_t *r,
                  wr_buf_t *scratch, wr_share_result_t *out);

/* Strong-enough validator from mtime and size: "\"5f1e-1a2b\"" (into 64 bytes). */
void wr_share_etag(const struct stat *st, char out[64]);
/* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" (into 32 bytes). */
void wr_http_date(time_t t, char out[32]);
/* Not modified? If-None-Match first, else If-Modified-Since (RFC 9110 §13.2.2). */
int  wr_share_not_modified(const wr_req_view_t *r, const struct stat *st, const char *etag);
/* One "bytes=a-b" range against size: 1 range set, 0 no/ignored range (serve
 * all), -1 unsatisfiable (416). Multiple ranges are ignored (full 200). */
int  wr_share_range(const wr_req_view_t *r, off_t size, off_t *first, off_t *last);

#endif
