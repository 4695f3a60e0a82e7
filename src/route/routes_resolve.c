/*
 * Matching a request against compiled routes and following passes.
 *
 * Memory: everything per request lives in the caller's scratch buffer. A
 * rewrite puts the new $uri (and query) there; scratch may be reallocated by
 * any later growth, so the view's uri/query are kept as offsets and re-aimed
 * after every growth (rctx_fix). Temporary space (decoded query, lowercased
 * host for a regex, argument names/values) is reserved past scratch->n and
 * never counted, so it costs no allocation once scratch has grown.
 */
#include <stdlib.h>
#include <string.h>

#include "route/route_int.h"

typedef struct {
    const wr_routes_t *rt;
    wr_req_view_t     *r;
    wr_buf_t          *scratch;
    size_t             uri_off, query_off;
    bool               uri_in, query_in;   /* point into scratch */
} wr_rctx_t;

static bool
in_buf(const wr_buf_t *b, const char *p, size_t *off)
{
    uintptr_t q = (uintptr_t) p, base = (uintptr_t) b->p;

    if (b->p == NULL || p == NULL || q < base || q >= base + b->cap) {
        return false;
    }
    *off = (size_t) (q - base);
    return true;
}

static void
rctx_init(wr_rctx_t *c, const wr_routes_t *rt, wr_req_view_t *r, wr_buf_t *scratch)
{
    c->rt = rt;
    c->r = r;
    c->scratch = scratch;
    /* The caller may already keep uri/query in scratch: follow them too. */
    c->uri_in = in_buf(scratch, r->uri.p, &c->uri_off);
    c->query_in = in_buf(scratch, r->query.p, &c->query_off);
}

static void
rctx_fix(wr_rctx_t *c)
{
    if (c->uri_in) {
        c->r->uri.p = c->scratch->p + c->uri_off;
    }
    if (c->query_in) {
        c->r->query.p = c->scratch->p + c->query_off;
    }
}

/* n bytes of temporary space past scratch->n, or NULL. */
static char *
tmp_space(wr_rctx_t *c, size_t n)
{
    if (wr_buf_reserve(c->scratch, n + 1) < 0) {
        return NULL;
    }
    rctx_fix(c);
    return c->scratch->p + c->scratch->n;
}

/* ------------------------------------------------------- conditions */

static int
host_match(const wr_cond_t *cd, wr_rctx_t *c)
{
    wr_str_t h = wr_req_host(c->r);
    char    *low;

    if (!cd->rule.has_regex) {
        return wr_rule_match(&cd->rule, h.p, h.n);   /* compares caselessly */
    }
    /* A regex sees the host as $host does: lowercased. */
    if ((low = tmp_space(c, h.n)) == NULL) {
        return -1;
    }
    h = wr_req_host(c->r);
    for (size_t i = 0; i < h.n; i++) {
        low[i] = wr_lower(h.p[i]);
    }
    return wr_rule_match(&cd->rule, low, h.n);
}

static int
query_match(const wr_cond_t *cd, wr_rctx_t *c)
{
    wr_str_t q = c->r->query;
    char    *dec;

    if (q.p == NULL || !wr_needs_decode(q.p, q.n, true)) {
        return wr_rule_match(&cd->rule, q.p != NULL ? q.p : "", q.n);
    }
    if ((dec = tmp_space(c, q.n)) == NULL) {
        return -1;
    }
    q = c->r->query;
    return wr_rule_match(&cd->rule, dec, wr_url_decode(q.p, q.n, dec, true));
}

/* Every occurrence of the field must match, and there must be one (Unit). */
static bool
header_rule_match(const wr_field_rule_t *fr, const wr_req_view_t *r)
{
    bool seen = false;

    for (size_t i = 0; i < r->nfields; i++) {
        const wr_http_field_t *f = &r->fields[i];

        if (f->name_len != fr->len || !wr_ieq(f->name, fr->name, fr->len)) {
            continue;
        }
        if (!wr_rule_match(&fr->rule, f->value, f->value_len)) {
            return false;
        }
        seen = true;
    }
    return seen;
}

static bool
cookie_rule_match(const wr_field_rule_t *fr, const wr_req_view_t *r)
{
    bool         seen = false;
    wr_kv_iter_t it;
    wr_str_t     name, value;

    for (size_t i = 0; i < r->nfields; i++) {
        const wr_http_field_t *f = &r->fields[i];

        if (f->name_len != sizeof("cookie") - 1 || !wr_ieq(f->name, "cookie", f->name_len)) {
            continue;
        }
        wr_kv_init(&it, f->value, f->value_len, ';');
        while (wr_kv_next(&it, &name, &value)) {
            if (name.n != fr->len || memcmp(name.p, fr->name, fr->len) != 0) {
                continue;
            }
            if (!wr_rule_match(&fr->rule, value.p, value.n)) {
                return false;
            }
            seen = true;
        }
    }
    return seen;
}

/* Arguments are compared decoded ('+' is a space); tmp holds 2 * query. */
static bool
arg_rule_match(const wr_field_rule_t *fr, wr_str_t query, char *tmp)
{
    bool         seen = false;
    wr_kv_iter_t it;
    wr_str_t     name, value;
    char        *vbuf = tmp + query.n;

    wr_kv_init(&it, query.p, query.n, '&');
    while (wr_kv_next(&it, &name, &value)) {
        size_t nlen = wr_url_decode(name.p, name.n, tmp, true);

        if (nlen != fr->len || memcmp(tmp, fr->name, nlen) != 0) {
            continue;
        }
        if (!wr_rule_match(&fr->rule, vbuf, wr_url_decode(value.p, value.n, vbuf, true))) {
            return false;
        }
        seen = true;
    }
    return seen;
}

static bool
set_match(const wr_cond_t *cd, const wr_field_set_t *set, const wr_req_view_t *r,
          char *tmp)
{
    for (size_t i = 0; i < set->n; i++) {
        const wr_field_rule_t *fr = &set->f[i];
        bool                   ok;

        switch (cd->kind) {
        case WR_COND_HEADERS:
            ok = header_rule_match(fr, r);
            break;
        case WR_COND_COOKIES:
            ok = cookie_rule_match(fr, r);
            break;
        default:
            ok = arg_rule_match(fr, r->query, tmp);
            break;
        }
        if (!ok) {
            return false;
        }
    }
    return true;
}

/* An object: all entries; an array of objects: any of them. */
static int
fields_match(const wr_cond_t *cd, wr_rctx_t *c)
{
    char *tmp = NULL;

    if (cd->nsets == 0) {
        return 1;
    }
    if (cd->kind == WR_COND_ARGUMENTS
        && (tmp = tmp_space(c, 2 * c->r->query.n)) == NULL)
    {
        return -1;
    }
    for (size_t s = 0; s < cd->nsets; s++) {
        if (set_match(cd, &cd->sets[s], c->r, tmp)) {
            return 1;
        }
    }
    return 0;
}

/* 1 match, 0 no match, -1 no memory. */
static int
cond_match(const wr_cond_t *cd, wr_rctx_t *c)
{
    const wr_req_view_t *r = c->r;
    int                  yes;

    switch (cd->kind) {
    case WR_COND_SCHEME:
        return (r->tls != 0) == cd->https;
    case WR_COND_METHOD:
        return wr_rule_match(&cd->rule, r->method.p, r->method.n);
    case WR_COND_HOST:
        return host_match(cd, c);
    case WR_COND_URI:
        return wr_rule_match(&cd->rule, r->uri.p != NULL ? r->uri.p : "", r->uri.n);
    case WR_COND_QUERY:
        return query_match(cd, c);
    case WR_COND_SOURCE:
        return wr_addr_rule_match(&cd->addr, r->remote);
    case WR_COND_DESTINATION:
        return wr_addr_rule_match(&cd->addr, r->local);
    case WR_COND_HEADERS:
    case WR_COND_COOKIES:
    case WR_COND_ARGUMENTS:
        return fields_match(cd, c);
    case WR_COND_IF:
        yes = wr_if_true(cd->cond, r, c->scratch);
        rctx_fix(c);
        return yes;
    }
    return 0;
}

/* The first matching step, NULL if none; *failed on no memory. */
static const wr_step_t *
route_match(const wr_route_t *route, wr_rctx_t *c, bool *failed)
{
    for (size_t s = 0; s < route->nsteps; s++) {
        const wr_step_t *st = &route->steps[s];
        int              yes = 1;

        for (size_t i = 0; i < st->ncond && yes == 1; i++) {
            yes = cond_match(&st->cond[i], c);
        }
        if (yes < 0) {
            *failed = true;
            return NULL;
        }
        if (yes == 1) {
            return st;
        }
    }
    return NULL;
}

/* ---------------------------------------------------------- actions */

/*
 * "rewrite": the expansion is a new target, "path[?query]". The path is
 * decoded and normalized like a request's; without '?' the query stays.
 */
static int
apply_rewrite(const wr_tpl_t *tpl, wr_rctx_t *c)
{
    wr_buf_t   *b = c->scratch;
    size_t      mark = b->n, len, plen;
    const char *q;
    long        n;

    if (wr_tpl_eval(tpl, c->r, b) < 0) {
        return -1;
    }
    rctx_fix(c);
    len = b->n - mark;
    q = memchr(b->p + mark, '?', len);
    plen = q != NULL ? (size_t) (q - (b->p + mark)) : len;
    if (wr_buf_reserve(b, plen + 1) < 0) {
        return -1;
    }
    rctx_fix(c);
    n = wr_http_normalize_path(b->p + mark, plen, b->p + b->n);
    if (n < 0) {
        b->n = mark;
        return -1;
    }
    if (q != NULL) {
        c->query_in = true;
        c->query_off = mark + plen + 1;
        c->r->query.n = len - plen - 1;
    }
    c->uri_in = true;
    c->uri_off = b->n;
    c->r->uri.n = (size_t) n;
    b->n += (size_t) n + 1;                /* keep the NUL */
    rctx_fix(c);
    return 0;
}

/* Expands a pass with variables and finds what it names. */
static int
dynamic_target(wr_rctx_t *c, const wr_tab_t *tab, const wr_tpl_t *tpl, wr_target_t *t)
{
    wr_buf_t *b = c->scratch;
    size_t    mark = b->n;
    int       rc;

    if (wr_tpl_eval(tpl, c->r, b) < 0 || wr_buf_append(b, "", 1) < 0) {
        b->n = mark;
        rctx_fix(c);
        return -1;
    }
    rctx_fix(c);
    rc = wr_routes_lookup(c->rt, tab, b->p + mark, t);
    b->n = mark;
    return rc;
}

/* Runs a matched step's action: rewrite, then either an action to hand back
 * (WR_ROUTE_FOUND) or the next target (-1 meaning "continue"). */
static int
run_action(const wr_act_t *act, wr_rctx_t *c, wr_target_t *next, const wr_action_t **out)
{
    const wr_tab_t *tab = act->tab.n > 0 ? &act->tab : &c->rt->targets;

    if (act->pub.rewrite != NULL && apply_rewrite(act->pub.rewrite, c) < 0) {
        return WR_ROUTE_ERROR;
    }
    if (act->pub.kind != 0) {
        *out = &act->pub;
        return WR_ROUTE_FOUND;
    }
    if (act->pass_tpl != NULL) {
        return dynamic_target(c, tab, act->pass_tpl, next) < 0 ? WR_ROUTE_ERROR : -1;
    }
    *next = act->pass;
    return -1;
}

static int
follow(wr_target_t t, wr_rctx_t *c, const wr_action_t **out)
{
    for (int hops = 0; hops < WR_ROUTE_MAX_HOPS; hops++) {
        const wr_step_t *st;
        bool             failed = false;
        int              rc;

        if (t.kind == WR_TGT_ACTION) {
            *out = t.action;
            return WR_ROUTE_FOUND;
        }
        if (t.kind != WR_TGT_ROUTE) {
            return WR_ROUTE_ERROR;
        }
        st = route_match(t.route, c, &failed);
        if (st == NULL) {
            return failed ? WR_ROUTE_ERROR : WR_ROUTE_NOT_FOUND;
        }
        rc = run_action(st->act, c, &t, out);
        if (rc >= 0) {
            return rc;
        }
    }
    return WR_ROUTE_ERROR;          /* a pass loop */
}

/* The target of a listener's pass: precompiled ones by string compare. */
static int
listener_target(wr_rctx_t *c, const char *pass, wr_target_t *t)
{
    const wr_routes_t *rt = c->rt;
    wr_tpl_t          *tpl;
    char              *copy, err[1];
    size_t             len;
    int                rc;

    for (size_t i = 0; i < rt->nlisten; i++) {
        if (strcmp(rt->listen[i].pass, pass) == 0) {
            if (rt->listen[i].tpl != NULL) {
                return dynamic_target(c, &rt->targets, rt->listen[i].tpl, t);
            }
            *t = rt->listen[i].target;
            return 0;
        }
    }
    /* Not from this configuration: slow path. */
    if (strchr(pass, '$') != NULL) {
        if ((tpl = wr_tpl_compile(pass, err, sizeof(err))) == NULL) {
            return -1;
        }
        rc = dynamic_target(c, &rt->targets, tpl, t);
        wr_tpl_free(tpl);
        return rc;
    }
    len = strlen(pass);
    if ((copy = tmp_space(c, len)) == NULL) {
        return -1;
    }
    memcpy(copy, pass, len + 1);
    return wr_routes_lookup(rt, &rt->targets, copy, t);
}

int
wr_routes_resolve(const wr_routes_t *rt, const char *pass, wr_req_view_t *r,
                  wr_buf_t *scratch, const wr_action_t **out)
{
    wr_rctx_t   c;
    wr_target_t t;

    *out = NULL;
    if (rt == NULL || pass == NULL) {
        return WR_ROUTE_ERROR;
    }
    rctx_init(&c, rt, r, scratch);
    if (listener_target(&c, pass, &t) < 0) {
        return WR_ROUTE_ERROR;
    }
    return follow(t, &c, out);
}

int
wr_routes_fallback(const wr_routes_t *rt, const wr_action_t *fallback,
                   wr_req_view_t *r, wr_buf_t *scratch, const wr_action_t **out)
{
    wr_rctx_t   c;
    wr_target_t t;
    int         rc;

    *out = NULL;
    rctx_init(&c, rt, r, scratch);
    rc = run_action((const wr_act_t *) (const void *) fallback, &c, &t, out);
    return rc >= 0 ? rc : follow(t, &c, out);
}
