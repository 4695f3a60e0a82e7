/*
 * Private to src/conf/validate*.c: the small declarative schema engine the
 * configuration validator is written in. Not part of conf.h's contract.
 *
 * A schema is a tree of value descriptors (wr_vdesc_t): the JSON types a value
 * may have, an integer range, the members an object may hold (or, for maps
 * such as "listeners", one descriptor for every value plus a key check), the
 * descriptor of array items, and an optional check function for whatever the
 * table can't say. The engine walks the document and the schema together and
 * keeps the JSON pointer of the value it is looking at, so every error names
 * the exact value that is wrong.
 *
 * Validation runs twice over the same schema: first for structure, then with
 * ctx->xref set for cross references ("pass" targets), so a reference check
 * never looks at a section that is itself malformed.
 */
#ifndef WR_CONF_VALIDATE_INT_H
#define WR_CONF_VALIDATE_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "conf/conf.h"

/* Deepest path the validator follows; deeper documents are refused. */
#define WR_V_MAX_PATH   (WR_CONF_MAX_DEPTH + 8)

typedef struct {
    const char *key;        /* NULL for an array index */
    size_t      index;
} wr_vseg_t;

typedef struct {
    json_t          *root;
    wr_conf_error_t *err;
    bool             xref;  /* second pass: check cross references */
    json_t          *certs; /* certificate bundles stored, by name (or NULL) */
    json_t          *js_modules; /* JavaScript modules stored, by name (or NULL) */
    size_t           depth;
    wr_vseg_t        seg[WR_V_MAX_PATH];
} wr_vctx_t;

/* JSON types a value may have. */
enum {
    WR_VT_STR  = 1 << 0,
    WR_VT_INT  = 1 << 1,
    WR_VT_REAL = 1 << 2,
    WR_VT_NUM  = WR_VT_INT | WR_VT_REAL,
    WR_VT_BOOL = 1 << 3,
    WR_VT_OBJ  = 1 << 4,
    WR_VT_ARR  = 1 << 5,
    WR_VT_NULL = 1 << 6,
};

/* Extra constraints of a descriptor. */
enum {
    WR_VF_RANGE    = 1 << 0,    /* integer within [min, max] */
    WR_VF_NONEMPTY = 1 << 1,    /* string or array not empty */
    WR_VF_ABSPATH  = 1 << 2,    /* string is an absolute path */
};

typedef struct wr_vdesc   wr_vdesc_t;
typedef struct wr_vmember wr_vmember_t;

/* name: the member name or map key of v (the parent's name for array items). */
typedef int (*wr_vcheck_t)(wr_vctx_t *c, json_t *v, const char *name);
/* Checks a map key; the path already points at the key's value. */
typedef int (*wr_vkey_t)(wr_vctx_t *c, const char *key);

struct wr_vdesc {
    unsigned            types;
    unsigned            flags;
    long long           min, max;
    const wr_vmember_t *members;    /* fixed members, ended by name NULL */
    const wr_vdesc_t   *values;     /* map: descriptor of every value */
    wr_vkey_t           key_check;  /* map: check of every key */
    const wr_vdesc_t   *items;      /* array: descriptor of every item */
    wr_vcheck_t         check;      /* runs last, after the rest passed */
};

struct wr_vmember {
    const char       *name;
    const wr_vdesc_t *desc;
    bool              required;
};

/* Validates v (named name) against d at the current path. */
int  wr_v_value(wr_vctx_t *c, json_t *v, const wr_vdesc_t *d, const char *name);
/* Validates an object's members against several member tables at once
 * (e.g. common application keys + the keys of its type). */
int  wr_v_members(wr_vctx_t *c, json_t *obj, const wr_vmember_t *const *tabs,
                  size_t ntabs);

/* Reports key (already pushed on the path) as unknown, suggesting the
 * closest key of tabs. Returns -1. */
int  wr_v_unknown_key(wr_vctx_t *c, const char *key,
                      const wr_vmember_t *const *tabs, size_t ntabs);

/* Path: push a member / index before looking at it, pop after. */
int  wr_v_push_key(wr_vctx_t *c, const char *key);
int  wr_v_push_index(wr_vctx_t *c, size_t index);
void wr_v_pop(wr_vctx_t *c);

/* Set err at the current path (or at member key of it). Return -1. */
int  wr_v_error(wr_vctx_t *c, const char *fmt, ...)
     __attribute__((format(printf, 2, 3)));
int  wr_v_error_at(wr_vctx_t *c, const char *key, const char *fmt, ...)
     __attribute__((format(printf, 3, 4)));

/* Address checks shared by listeners, upstreams and proxy. NULL when valid,
 * else why not (a phrase to put after "is invalid: "). */
enum {
    WR_VA_WILDCARD = 1 << 0,    /* "*:port" */
    WR_VA_UNIX     = 1 << 1,    /* "unix:/path" */
};
const char *wr_v_sockaddr(const char *s, unsigned allow);
/* AF_INET / AF_INET6 if s[0..len) is an IP address, else 0. */
int  wr_v_ip_family(const char *s, size_t len);
/* Port number in s[0..len), or -1 if not a decimal in [min, 65535]. */
long wr_v_port(const char *s, size_t len, long min);

/* Shared descriptors. */
extern const wr_vdesc_t wr_vd_str;          /* any string */
extern const wr_vdesc_t wr_vd_name;         /* non-empty string */
extern const wr_vdesc_t wr_vd_bool;
extern const wr_vdesc_t wr_vd_uint;         /* integer >= 0 */
extern const wr_vdesc_t wr_vd_abspath;      /* absolute path */
extern const wr_vdesc_t wr_vd_names;        /* non-empty string or array of them */
extern const wr_vdesc_t wr_vd_name_array;   /* array of non-empty strings */

/* Sections defined in validate_routes.c and validate_apps.c. */
extern const wr_vdesc_t wr_vd_routes;
extern const wr_vdesc_t wr_vd_applications;
extern const wr_vdesc_t wr_vd_address_patterns; /* "source", "destination" */

/* "pass" values: syntax (wr_vd_pass) and, in the xref pass, existence of
 * the target. who starts the sentence, e.g. "Listener \"*:80\"". */
extern const wr_vdesc_t wr_vd_pass;
int  wr_v_pass_target(wr_vctx_t *c, json_t *obj, const char *who);

#endif
