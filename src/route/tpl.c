/*
 * Templates: strings with Unit's variables, "$name" or "${name}" ("$dollar"
 * for a literal '$'). Compiled into a list of literal and variable parts;
 * expansion only appends to the caller's buffer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "route/route_int.h"
#include "script/script.h"

typedef struct {
    wr_var_t    var;          /* WR_VAR_LITERAL: p/n is the text */
    const char *p;            /* literal text or variable argument, in text */
    size_t      n;
} wr_tpl_part_t;

struct wr_tpl {
    wr_script_t  *script;     /* a JavaScript template literal: no parts */
    size_t        nparts;
    char         *text;       /* every part's bytes; never longer than the source */
    size_t        used;
    wr_tpl_part_t parts[];
};

struct wr_if {
    bool      negate;
    int       constant;       /* -1: evaluate; else the constant answer */
    wr_tpl_t *tpl;
};

static bool
name_char(char c, bool braced)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
           || c == '_' || (braced && c == '-');
}

/* Adds bytes to the template's text, merging into a preceding literal. */
static void
add_literal(wr_tpl_t *t, const char *p, size_t n)
{
    wr_tpl_part_t *last = t->nparts > 0 ? &t->parts[t->nparts - 1] : NULL;
    char          *dst = t->text + t->used;

    if (n == 0) {
        return;
    }
    memcpy(dst, p, n);
    t->used += n;
    if (last != NULL && last->var == WR_VAR_LITERAL && last->p + last->n == dst) {
        last->n += n;
        return;
    }
    t->parts[t->nparts++] = (wr_tpl_part_t) { WR_VAR_LITERAL, dst, n };
}

/* Header names: case-insensitive, and '_' stands for '-' (as in nginx). */
static void
add_var(wr_tpl_t *t, wr_var_t v, const char *arg, size_t n)
{
    char *dst = t->text + t->used;

    for (size_t i = 0; i < n; i++) {
        bool header = v == WR_VAR_HEADER || v == WR_VAR_RESP_HEADER;

        dst[i] = header ? (arg[i] == '_' ? '-' : wr_lower(arg[i])) : arg[i];
    }
    t->used += n;
    t->parts[t->nparts++] = (wr_tpl_part_t) { v, dst, n };
}

/* Parses the variable at s ('$'); returns the bytes consumed or 0. */
static size_t
parse_var(wr_tpl_t *t, const char *s, char *err, size_t errlen)
{
    bool        braced = s[1] == '{';
    const char *name = s + 1 + braced;
    size_t      n = 0, prefix;
    int         v;

    while (name_char(name[n], braced)) {
        n++;
    }
    if (n == 0 || (braced && name[n] != '}')) {
        snprintf(err, errlen, "a \"$\" must start a variable name as \"$name\" or "
                 "\"${name}\" (use \"$dollar\" for a literal \"$\")");
        return 0;
    }
    v = wr_var_lookup(name, n, &prefix);
    if (v < 0) {
        snprintf(err, errlen, "unknown variable \"%.*s\"", (int) n, name);
        return 0;
    }
    if (v == WR_VAR_LITERAL) {
        add_literal(t, "$", 1);
    } else {
        add_var(t, (wr_var_t) v, name + prefix, n - prefix);
    }
    return 1 + braced + n + braced;
}

/* Unit's njs templates: "`...`" is JavaScript, evaluated per request. */
static wr_tpl_t *
script_compile(const char *s, char *err, size_t errlen)
{
    wr_tpl_t *t = calloc(1, sizeof(*t));
    char      why[WR_TPL_WHY_MAX];

    if (t == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    t->script = wr_script_compile(s, why, sizeof(why));
    if (t->script == NULL) {
        snprintf(err, errlen, "the JavaScript template literal does not compile: %s", why);
        free(t);
        return NULL;
    }
    return t;
}

wr_tpl_t *
wr_tpl_compile(const char *s, char *err, size_t errlen)
{
    size_t      len = strlen(s), ndollars = 0, used = 0;
    const char *p;
    wr_tpl_t   *t;

    if (s[0] == '`') {
        return script_compile(s, err, errlen);
    }
    for (p = s; (p = strchr(p, '$')) != NULL; p++) {
        ndollars++;
    }
    /* At most a literal before and after each variable. */
    t = calloc(1, sizeof(*t) + (2 * ndollars + 1) * sizeof(wr_tpl_part_t));
    if (t == NULL || (t->text = malloc(len + 1)) == NULL) {
        free(t);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (p = s; *p != '\0'; p += used) {
        const char *dollar = strchr(p, '$');

        if (dollar == NULL) {
            add_literal(t, p, strlen(p));
            break;
        }
        add_literal(t, p, (size_t) (dollar - p));
        used = parse_var(t, dollar, err, errlen);
        if (used == 0) {
            wr_tpl_free(t);
            return NULL;
        }
        used += (size_t) (dollar - p);
    }
    return t;
}

void
wr_tpl_free(wr_tpl_t *t)
{
    if (t != NULL) {
        wr_script_free(t->script);
        free(t->text);
        free(t);
    }
}

int
wr_tpl_is_const(const wr_tpl_t *t)
{
    return t->script == NULL
           && (t->nparts == 0 || (t->nparts == 1 && t->parts[0].var == WR_VAR_LITERAL));
}

const char *
wr_tpl_const_str(const wr_tpl_t *t, size_t *len)
{
    if (!wr_tpl_is_const(t)) {
        return NULL;
    }
    *len = t->nparts == 0 ? 0 : t->parts[0].n;
    return t->nparts == 0 ? "" : t->parts[0].p;
}

/* Offset of p inside b's memory, or -1. */
static long
offset_in(const wr_buf_t *b, const char *p)
{
    uintptr_t q = (uintptr_t) p, base = (uintptr_t) b->p;

    return b->p != NULL && p != NULL && q >= base && q < base + b->cap
           ? (long) (q - base) : -1;
}

/*
 * After a rewrite, $uri and $args live in the scratch buffer that is often
 * the very output buffer: an append may move it. Such a view is copied and
 * re-aimed after every part, so "$uri$uri" stays correct.
 */
static int
eval_aliased(const wr_tpl_t *t, const wr_req_view_t *r, wr_buf_t *out,
             long uri_off, long query_off)
{
    wr_req_view_t v = *r;

    for (size_t i = 0; i < t->nparts; i++) {
        const wr_tpl_part_t *part = &t->parts[i];

        if (uri_off >= 0) {
            v.uri.p = out->p + uri_off;
        }
        if (query_off >= 0) {
            v.query.p = out->p + query_off;
        }
        if (wr_var_append(part->var, part->p, part->n, &v, out) < 0) {
            return -1;
        }
    }
    return 0;
}

/* A template's vars.NAME: the variable $NAME, its argument prepared as
 * parse_var does. */
static int
script_var(const void *req, const char *name, size_t n, wr_buf_t *out)
{
    size_t prefix;
    int    v = wr_var_lookup(name, n, &prefix);
    char   arg[WR_TPL_VAR_MAX];

    if (v < 0 || n - prefix > sizeof(arg)) {
        return 0;
    }
    if (v == WR_VAR_LITERAL) {
        return wr_buf_append(out, "$", 1) < 0 ? -1 : 1;
    }
    for (size_t i = prefix; i < n; i++) {
        bool header = v == WR_VAR_HEADER || v == WR_VAR_RESP_HEADER;

        arg[i - prefix] = header ? (name[i] == '_' ? '-' : wr_lower(name[i])) : name[i];
    }
    return wr_var_append((wr_var_t) v, arg, n - prefix, req, out) < 0 ? -1 : 1;
}

static int
script_field(const void *req, size_t i, const char **name, size_t *nlen,
             const char **value, size_t *vlen)
{
    const wr_req_view_t *r = req;

    if (i >= r->nfields) {
        return 0;
    }
    *name = r->fields[i].name;
    *nlen = r->fields[i].name_len;
    *value = r->fields[i].value;
    *vlen = r->fields[i].value_len;
    return 1;
}

static const wr_script_req_t script_req = { script_var, script_field };

int
wr_tpl_eval(const wr_tpl_t *t, const wr_req_view_t *r, wr_buf_t *out)
{
    size_t start = out->n;
    long   uri_off = offset_in(out, r->uri.p), query_off = offset_in(out, r->query.p);
    int    rc = 0;

    if (t->script != NULL) {
        /* Appends only once the script is done: r's views into out hold. */
        return wr_script_eval(t->script, r->js, &script_req, r, out);
    }
    if (uri_off >= 0 || query_off >= 0) {
        rc = eval_aliased(t, r, out, uri_off, query_off);
    } else {
        for (size_t i = 0; i < t->nparts && rc == 0; i++) {
            rc = wr_var_append(t->parts[i].var, t->parts[i].p, t->parts[i].n, r, out);
        }
    }
    if (rc < 0) {
        out->n = start;
    }
    return rc;
}

/* ------------------------------------------------------------------ if */

static bool
truthy(const char *p, size_t n)
{
    return !(n == 0 || (n == 1 && p[0] == '0'));
}

wr_if_t *
wr_if_compile(const char *s, char *err, size_t errlen)
{
    wr_if_t    *c = calloc(1, sizeof(*c));
    const char *text;
    size_t      n;

    if (c == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->negate = s[0] == '!';
    c->tpl = wr_tpl_compile(s + c->negate, err, errlen);
    if (c->tpl == NULL) {
        free(c);
        return NULL;
    }
    text = wr_tpl_const_str(c->tpl, &n);
    c->constant = text != NULL ? truthy(text, n) != c->negate : -1;
    return c;
}

void
wr_if_free(wr_if_t *c)
{
    if (c != NULL) {
        wr_tpl_free(c->tpl);
        free(c);
    }
}

int
wr_if_true(const wr_if_t *c, const wr_req_view_t *r, wr_buf_t *scratch)
{
    size_t mark = scratch->n;
    bool   yes;

    if (c->constant >= 0) {
        return c->constant;
    }
    if (wr_tpl_eval(c->tpl, r, scratch) < 0) {
        return 0;               /* no memory: the condition does not hold */
    }
    yes = scratch->n > mark && truthy(scratch->p + mark, scratch->n - mark);
    scratch->n = mark;
    return yes != c->negate;
}
