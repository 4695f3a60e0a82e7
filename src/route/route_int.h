/*
 * route internals: shared by routes*.c, pattern*.c, tpl*.c and var*.c only.
 * Everything compiled here is read-only after compile, so any number of
 * router threads may match and expand concurrently without locks.
 */
#ifndef WR_ROUTE_INT_H
#define WR_ROUTE_INT_H

#include <stdbool.h>
#include <stdint.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "route/route.h"

/* ------------------------------------------------------ string patterns */

enum {
    WR_PAT_ICASE  = 1 << 0,   /* compare ASCII case-insensitively */
    WR_PAT_DECODE = 1 << 1,   /* percent-decode the (non-regex) pattern */
    WR_PAT_PLUS   = 1 << 2,   /* ... and '+' means a space (query, arguments) */
};

/* One pattern: "[!]text*with*wildcards" or "[!]~regex". */
typedef struct {
    bool        negative;
    bool        anchor_start;  /* no leading '*': first segment is a prefix */
    bool        anchor_end;    /* no trailing '*': last segment is a suffix */
    size_t      nseg;          /* non-empty segments between '*'s */
    wr_str_t   *seg;           /* point into text */
    char       *text;          /* decoded, lowercased when ICASE */
    pcre2_code *re;            /* regex, or NULL */
} wr_pat_t;

/* A pattern or an array of them: any positive and no negative matches. */
typedef struct {
    wr_pat_t *pat;             /* negatives first */
    size_t    n;
    size_t    nneg;
    bool      icase;
    bool      has_regex;
} wr_rule_t;

int  wr_rule_compile(wr_rule_t *rule, json_t *v, unsigned flags, char *err, size_t errlen);
void wr_rule_free(wr_rule_t *rule);
bool wr_rule_match(const wr_rule_t *rule, const char *s, size_t n);
/* Thread-safe regex match with no heap use on the JIT path. */
bool wr_regex_match(const pcre2_code *re, const char *s, size_t n);

struct wr_mime_filter {
    wr_rule_t rule;
};

wr_mime_filter_t *wr_mime_filter_compile(json_t *v, char *err, size_t errlen);
void              wr_mime_filter_free(wr_mime_filter_t *f);

/* ----------------------------------------------------- address patterns */

typedef enum {
    WR_ADDR_ANY = 1,           /* "*" or ":port" */
    WR_ADDR_UNIX,              /* "unix" */
    WR_ADDR_RANGE              /* IP, IP/prefix, IP-IP */
} wr_addr_kind_t;

typedef struct {
    wr_addr_kind_t kind;
    bool           negative;
    int            family;     /* AF_INET / AF_INET6 for WR_ADDR_RANGE */
    unsigned char  lo[16], hi[16];   /* inclusive, network order */
    unsigned       port_lo, port_hi; /* inclusive; 0-65535 for any */
} wr_addr_pat_t;

typedef struct {
    wr_addr_pat_t *pat;        /* negatives first */
    size_t         n;
    size_t         nneg;
} wr_addr_rule_t;

int  wr_addr_rule_compile(wr_addr_rule_t *rule, json_t *v, char *err, size_t errlen);
void wr_addr_rule_free(wr_addr_rule_t *rule);
bool wr_addr_rule_match(const wr_addr_rule_t *rule, const struct sockaddr *sa);

/* ------------------------------------------------- variables, templates */

typedef enum {
    WR_VAR_LITERAL = 0,
    WR_VAR_URI,
    WR_VAR_HOST,
    WR_VAR_METHOD,
    WR_VAR_REQUEST_URI,
    WR_VAR_REQUEST_LINE,
    WR_VAR_REMOTE_ADDR,
    WR_VAR_STATUS,
    WR_VAR_BODY_BYTES_SENT,
    WR_VAR_TIME_LOCAL,
    WR_VAR_REQUEST_TIME,
    WR_VAR_REQUEST_ID,
    WR_VAR_ARGS,
    WR_VAR_SCHEME,
    WR_VAR_HEADER,             /* $header_NAME: name is the argument */
    WR_VAR_ARG,                /* $arg_NAME */
    WR_VAR_COOKIE,             /* $cookie_NAME */
    WR_VAR_RESP_HEADER         /* $response_header_NAME */
} wr_var_t;

/*
 * Variable named name[0..len): its id, and for the prefixed ones the argument
 * (len of the prefix in *prefix). -1 for an unknown name. $dollar is
 * WR_VAR_LITERAL (the caller turns it into "$").
 */
int wr_var_lookup(const char *name, size_t len, size_t *prefix);

/* Append the value of a variable; arg is the prepared argument (header names
 * lowercased with '_' turned into '-'). -1 when memory runs out. */
int wr_var_append(wr_var_t v, const char *arg, size_t arglen,
                  const wr_req_view_t *r, wr_buf_t *out);

/* The constant text of a template without variables, else NULL. */
const char *wr_tpl_const_str(const wr_tpl_t *t, size_t *len);

/* ---------------------------------------------------- request helpers */

/* Host without port and trailing dot (not lowercased). */
wr_str_t wr_req_host(const wr_req_view_t *r);

/* Walks "a=1&b=2" (sep '&') or "a=1; b=2" (sep ';', OWS trimmed). */
typedef struct {
    const char *p, *end;
    char        sep;
} wr_kv_iter_t;

void wr_kv_init(wr_kv_iter_t *it, const char *p, size_t n, char sep);
bool wr_kv_next(wr_kv_iter_t *it, wr_str_t *name, wr_str_t *value);

/* Percent-decode (bad escapes stay literal); '+' to space when plus.
 * out may equal s. Returns the decoded length (<= n). */
size_t wr_url_decode(const char *s, size_t n, char *out, bool plus);
bool   wr_needs_decode(const char *s, size_t n, bool plus);

/* wr_buf_append that accepts data pointing into b itself (it may move). */
int wr_buf_append_self(wr_buf_t *b, const char *p, size_t n);

static inline char
wr_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char) (c | 0x20) : c;
}

bool wr_ieq(const char *a, const char *b, size_t n);

/* ------------------------------------------------------ compiled routes */

#define WR_ROUTE_MAX_HOPS  32   /* routes entered per request: ends pass loops */
#define WR_TPL_WHY_MAX     512  /* JavaScript's message of a template that fails */
#define WR_TPL_VAR_MAX     256  /* a template's vars.NAME argument, at most */

typedef enum {
    WR_COND_SCHEME = 1,
    WR_COND_METHOD,
    WR_COND_HOST,
    WR_COND_URI,
    WR_COND_QUERY,
    WR_COND_SOURCE,
    WR_COND_DESTINATION,
    WR_COND_HEADERS,
    WR_COND_ARGUMENTS,
    WR_COND_COOKIES,
    WR_COND_IF
} wr_cond_kind_t;

/* One "name": patterns entry of headers / arguments / cookies. */
typedef struct {
    char      *name;           /* headers: lowercased; arguments: decoded */
    size_t     len;
    wr_rule_t  rule;
} wr_field_rule_t;

/* An object: every entry must match. */
typedef struct {
    wr_field_rule_t *f;
    size_t           n;
} wr_field_set_t;

typedef struct {
    wr_cond_kind_t kind;
    wr_rule_t      rule;       /* method, host, uri, query */
    wr_addr_rule_t addr;       /* source, destination */
    wr_field_set_t *sets;      /* headers, arguments, cookies: any set */
    size_t         nsets;
    wr_if_t       *cond;       /* if */
    bool           https;      /* scheme */
} wr_cond_t;

struct wr_route;

typedef enum {
    WR_TGT_NONE = 0,
    WR_TGT_ROUTE,
    WR_TGT_ACTION
} wr_target_kind_t;

typedef struct {
    wr_target_kind_t        kind;
    const struct wr_route  *route;
    const wr_action_t      *action;
} wr_target_t;

typedef struct wr_act wr_act_t;

/* Actions reachable by name: applications (and their targets), upstreams. */
typedef struct {
    wr_act_t *a;
    size_t    n;
} wr_tab_t;

/*
 * A compiled action. pub is what callers see (a const wr_action_t * points
 * at it, so it must stay the first member). A pass to a route or a pass with
 * variables has pub.kind 0 and is followed by wr_routes_resolve.
 */
struct wr_act {
    wr_action_t pub;
    wr_target_t pass;          /* static pass target */
    wr_tpl_t   *pass_tpl;      /* pass with variables */
    wr_tab_t    tab;           /* pass with variables and response_headers:
                                  the app/upstream actions with this action's
                                  headers (borrowed) */
    bool        borrowed;      /* pub strings and headers belong to another */
};

typedef struct {
    wr_cond_t *cond;
    size_t     ncond;
    wr_act_t  *act;
} wr_step_t;

typedef struct wr_route {
    char      *name;           /* decoded; NULL for the array form "routes" */
    wr_step_t *steps;
    size_t     nsteps;
} wr_route_t;

typedef struct {
    char       *pass;          /* as the listener writes it */
    wr_target_t target;        /* static */
    wr_tpl_t   *tpl;           /* with variables */
} wr_listen_pass_t;

struct wr_routes {
    wr_route_t       *routes;
    size_t            nroutes;
    wr_tab_t          targets;
    wr_listen_pass_t *listen;
    size_t            nlisten;
};

/* Finds the target named by pass (decoded in place; it must be writable). */
int  wr_routes_lookup(const wr_routes_t *rt, const wr_tab_t *tab, char *pass,
                      wr_target_t *t);
void wr_act_free(wr_act_t *a);

#endif
