/*
 * Compiling "routes" (and the pass targets of listeners) into read-only
 * tables: every match condition, template and action is built once here so
 * that wr_routes_resolve() only compares.
 *
 * Naming: the array form of "routes" is the route "routes"; the object form
 * gives routes "routes/NAME". Applications, their targets and upstreams get
 * one shared action each, so that a pass with variables finds a stable
 * wr_action_t to return.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "route/route_int.h"

#define WR_PTR_MAX   512        /* JSON pointer text in error messages */
#define WR_WHY_MAX   512        /* reason text of a failed compile */
#define WR_PASS_SEGS 3          /* "applications/NAME/TARGET" */
#define WR_DEFAULT_INDEX "index.html"

/* Compile context: where in the document we are, for error messages. */
typedef struct {
    wr_routes_t *rt;
    char        *err;
    size_t       errlen;
    char         path[WR_PTR_MAX];
    size_t       plen;
    char         why[WR_WHY_MAX];
} wr_cc_t;

/* Appends "/seg" to the pointer, escaped as RFC 6901 says ('~' -> "~0",
 * '/' -> "~1"), as the validator writes them; returns the old length for
 * cc_pop(). */
static size_t
cc_push(wr_cc_t *cc, const char *seg)
{
    size_t old = cc->plen;

    if (cc->plen + 1 < WR_PTR_MAX) {
        cc->path[cc->plen++] = '/';
    }
    for (; *seg != '\0' && cc->plen + 3 < WR_PTR_MAX; seg++) {
        if (*seg == '~' || *seg == '/') {
            cc->path[cc->plen++] = '~';
            cc->path[cc->plen++] = *seg == '~' ? '0' : '1';
        } else {
            cc->path[cc->plen++] = *seg;
        }
    }
    cc->path[cc->plen] = '\0';
    return old;
}

static size_t
cc_push_index(wr_cc_t *cc, size_t i)
{
    char num[32];

    snprintf(num, sizeof(num), "%zu", i);
    return cc_push(cc, num);
}

static void
cc_pop(wr_cc_t *cc, size_t old)
{
    cc->plen = old;
    cc->path[old] = '\0';
}

/* Reports cc->why at the current pointer. Returns -1. */
static int
cc_fail(wr_cc_t *cc)
{
    snprintf(cc->err, cc->errlen, "The value at \"%s\" cannot be compiled: %s.",
             cc->plen > 0 ? cc->path : "/", cc->why);
    return -1;
}

static int cc_failf(wr_cc_t *cc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
cc_failf(wr_cc_t *cc, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(cc->why, sizeof(cc->why), fmt, ap);
    va_end(ap);
    return cc_fail(cc);
}

static char *
cc_strdup(wr_cc_t *cc, const char *s)
{
    char *d = strdup(s);

    if (d == NULL) {
        cc_failf(cc, "out of memory");
    }
    return d;
}

/* ------------------------------------------------------------ targets */

void
wr_act_free(wr_act_t *a)
{
    if (a == NULL) {
        return;
    }
    for (size_t i = 0; i < a->tab.n; i++) {
        wr_act_free(&a->tab.a[i]);
    }
    free(a->tab.a);
    wr_tpl_free(a->pass_tpl);
    if (!a->borrowed) {
        wr_action_t *p = &a->pub;

        wr_tpl_free(p->location);
        for (size_t i = 0; i < p->nshare; i++) {
            wr_tpl_free(p->share[i]);
        }
        free(p->share);
        wr_tpl_free(p->index);
        wr_tpl_free(p->chroot);
        wr_mime_filter_free(p->types);
        if (p->fallback != NULL) {
            wr_act_free((wr_act_t *) p->fallback);
            free(p->fallback);
        }
        wr_tpl_free(p->rewrite);
        for (size_t i = 0; i < p->nheaders; i++) {
            free(p->headers[i].name);
            wr_tpl_free(p->headers[i].value);
        }
        free(p->headers);
        free(p->app);
        free(p->target);
        free(p->upstream);
        free(p->proxy);
    }
}

static void
tab_free(wr_tab_t *tab)
{
    for (size_t i = 0; i < tab->n; i++) {
        wr_act_free(&tab->a[i]);
    }
    free(tab->a);
    tab->a = NULL;
    tab->n = 0;
}

static int
tab_add(wr_cc_t *cc, wr_tab_t *tab, wr_action_kind_t kind, const char *name,
        const char *target)
{
    wr_act_t *a = &tab->a[tab->n++];

    a->pub.kind = kind;
    if (kind == WR_ACTION_PASS_UPSTREAM) {
        a->pub.upstream = cc_strdup(cc, name);
        return a->pub.upstream != NULL ? 0 : -1;
    }
    a->pub.app = cc_strdup(cc, name);
    a->pub.target = target != NULL ? cc_strdup(cc, target) : NULL;
    return a->pub.app != NULL && (target == NULL || a->pub.target != NULL) ? 0 : -1;
}

static size_t
targets_count(json_t *apps, json_t *ups)
{
    size_t      n = json_is_object(ups) ? json_object_size(ups) : 0;
    const char *name;
    json_t     *app, *targets;

    if (!json_is_object(apps)) {
        return n;
    }
    json_object_foreach(apps, name, app) {
        targets = json_object_get(app, "targets");
        n += json_is_object(targets) ? json_object_size(targets) : 1;
    }
    return n;
}

static int
targets_build(wr_cc_t *cc, json_t *conf)
{
    json_t     *apps = json_object_get(conf, "applications");
    json_t     *ups = json_object_get(conf, "upstreams");
    wr_tab_t   *tab = &cc->rt->targets;
    const char *name, *tname;
    json_t     *app, *targets, *tv;
    size_t      n = targets_count(apps, ups);

    tab->a = calloc(n ? n : 1, sizeof(wr_act_t));
    if (tab->a == NULL) {
        return cc_failf(cc, "out of memory");
    }
    json_object_foreach(apps, name, app) {
        targets = json_object_get(app, "targets");
        if (!json_is_object(targets)) {
            if (tab_add(cc, tab, WR_ACTION_PASS_APP, name, NULL) < 0) {
                return -1;
            }
            continue;
        }
        json_object_foreach(targets, tname, tv) {
            if (tab_add(cc, tab, WR_ACTION_PASS_APP, name, tname) < 0) {
                return -1;
            }
        }
    }
    json_object_foreach(ups, name, tv) {
        if (tab_add(cc, tab, WR_ACTION_PASS_UPSTREAM, name, NULL) < 0) {
            return -1;
        }
    }
    return 0;
}

/* Splits pass at '/' into at most WR_PASS_SEGS decoded segments. */
static int
pass_split(char *s, char *seg[WR_PASS_SEGS])
{
    int n = 0;

    for (;;) {
        char  *slash = strchr(s, '/');
        size_t len;

        if (n == WR_PASS_SEGS) {
            return -1;
        }
        if (slash != NULL) {
            *slash = '\0';
        }
        len = wr_url_decode(s, strlen(s), s, false);
        s[len] = '\0';
        seg[n++] = s;
        if (slash == NULL) {
            return n;
        }
        s = slash + 1;
    }
}

static const wr_route_t *
route_find(const wr_routes_t *rt, const char *name)
{
    for (size_t i = 0; i < rt->nroutes; i++) {
        const char *rn = rt->routes[i].name;

        if (name == NULL ? rn == NULL : (rn != NULL && strcmp(rn, name) == 0)) {
            return &rt->routes[i];
        }
    }
    return NULL;
}

static const wr_action_t *
tab_find(const wr_tab_t *tab, wr_action_kind_t kind, const char *name,
         const char *target)
{
    for (size_t i = 0; i < tab->n; i++) {
        const wr_action_t *a = &tab->a[i].pub;
        const char        *an = kind == WR_ACTION_PASS_APP ? a->app : a->upstream;

        if (a->kind == kind && strcmp(an, name) == 0
            && (target == NULL ? a->target == NULL
                               : (a->target != NULL && strcmp(a->target, target) == 0)))
        {
            return a;
        }
    }
    return NULL;
}

int
wr_routes_lookup(const wr_routes_t *rt, const wr_tab_t *tab, char *pass,
                 wr_target_t *t)
{
    char *seg[WR_PASS_SEGS];
    int   n = pass_split(pass, seg);

    memset(t, 0, sizeof(*t));
    if (n < 1) {
        return -1;
    }
    if (strcmp(seg[0], "routes") == 0 && n <= 2) {
        t->route = route_find(rt, n == 2 ? seg[1] : NULL);
        t->kind = WR_TGT_ROUTE;
    } else if (strcmp(seg[0], "applications") == 0 && n >= 2) {
        t->action = tab_find(tab, WR_ACTION_PASS_APP, seg[1], n == 3 ? seg[2] : NULL);
        t->kind = WR_TGT_ACTION;
    } else if (strcmp(seg[0], "upstreams") == 0 && n == 2) {
        t->action = tab_find(tab, WR_ACTION_PASS_UPSTREAM, seg[1], NULL);
        t->kind = WR_TGT_ACTION;
    }
    if (t->route == NULL && t->action == NULL) {
        t->kind = WR_TGT_NONE;
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ actions */

static wr_tpl_t *
tpl_of(wr_cc_t *cc, json_t *v, const char *key)
{
    size_t    old = cc_push(cc, key);
    wr_tpl_t *t = NULL;

    if (!json_is_string(v)) {
        cc_failf(cc, "a string is expected");
    } else if ((t = wr_tpl_compile(json_string_value(v), cc->why, sizeof(cc->why))) == NULL) {
        cc_fail(cc);
    }
    if (t != NULL) {
        cc_pop(cc, old);
    }
    return t;
}

static int
share_compile(wr_cc_t *cc, json_t *a, wr_action_t *p);

static int
headers_compile(wr_cc_t *cc, json_t *hdrs, wr_action_t *p)
{
    const char *name;
    json_t     *v;
    size_t      old = cc_push(cc, "response_headers");

    p->headers = calloc(json_object_size(hdrs) + 1, sizeof(*p->headers));
    if (p->headers == NULL) {
        return cc_failf(cc, "out of memory");
    }
    json_object_foreach(hdrs, name, v) {
        wr_resp_header_t *h = &p->headers[p->nheaders++];

        if ((h->name = cc_strdup(cc, name)) == NULL) {
            return -1;
        }
        if (!json_is_null(v) && (h->value = tpl_of(cc, v, name)) == NULL) {
            return -1;
        }
    }
    cc_pop(cc, old);
    return 0;
}

/* The step's own copy of every app/upstream action, with its headers. */
static int
tab_with_headers(wr_cc_t *cc, wr_act_t *act)
{
    const wr_tab_t *src = &cc->rt->targets;

    act->tab.a = calloc(src->n ? src->n : 1, sizeof(wr_act_t));
    if (act->tab.a == NULL) {
        return cc_failf(cc, "out of memory");
    }
    for (size_t i = 0; i < src->n; i++) {
        wr_act_t *a = &act->tab.a[i];

        a->pub = src->a[i].pub;
        a->pub.headers = act->pub.headers;
        a->pub.nheaders = act->pub.nheaders;
        a->borrowed = true;
    }
    act->tab.n = src->n;
    return 0;
}

static int
pass_compile(wr_cc_t *cc, json_t *v, wr_act_t *act)
{
    const char        *s = json_string_value(v);
    char              *copy;
    const wr_action_t *shared;
    int                rc;

    if (strchr(s, '$') != NULL) {
        act->pass_tpl = tpl_of(cc, v, "pass");
        return act->pass_tpl != NULL ? 0 : -1;
    }
    if ((copy = cc_strdup(cc, s)) == NULL) {
        return -1;
    }
    rc = wr_routes_lookup(cc->rt, &cc->rt->targets, copy, &act->pass);
    free(copy);
    if (rc < 0) {
        cc_push(cc, "pass");
        return cc_failf(cc, "the pass target \"%s\" does not exist", s);
    }
    if (act->pass.kind != WR_TGT_ACTION) {
        return 0;
    }
    /* An app or upstream: this action itself is it, with its own headers. */
    shared = act->pass.action;
    act->pub.kind = shared->kind;
    act->pub.app = shared->app != NULL ? cc_strdup(cc, shared->app) : NULL;
    act->pub.target = shared->target != NULL ? cc_strdup(cc, shared->target) : NULL;
    act->pub.upstream = shared->upstream != NULL ? cc_strdup(cc, shared->upstream) : NULL;
    act->pass.action = &act->pub;
    if ((shared->app != NULL && act->pub.app == NULL)
        || (shared->target != NULL && act->pub.target == NULL)
        || (shared->upstream != NULL && act->pub.upstream == NULL))
    {
        return -1;
    }
    return 0;
}

static int
return_compile(wr_cc_t *cc, json_t *a, wr_action_t *p)
{
    json_t *loc = json_object_get(a, "location");

    p->kind = WR_ACTION_RETURN;
    p->status = (int) json_integer_value(json_object_get(a, "return"));
    if (loc != NULL && (p->location = tpl_of(cc, loc, "location")) == NULL) {
        return -1;
    }
    return 0;
}

static wr_act_t *act_compile(wr_cc_t *cc, json_t *a);

static int
act_body(wr_cc_t *cc, json_t *a, wr_act_t *act)
{
    wr_action_t *p = &act->pub;
    json_t      *v;

    if ((v = json_object_get(a, "rewrite")) != NULL
        && (p->rewrite = tpl_of(cc, v, "rewrite")) == NULL)
    {
        return -1;
    }
    if ((v = json_object_get(a, "response_headers")) != NULL
        && headers_compile(cc, v, p) < 0)
    {
        return -1;
    }
    if ((v = json_object_get(a, "pass")) != NULL) {
        if (pass_compile(cc, v, act) < 0) {
            return -1;
        }
        return act->pass_tpl != NULL && p->nheaders > 0 ? tab_with_headers(cc, act) : 0;
    }
    if (json_object_get(a, "return") != NULL) {
        return return_compile(cc, a, p);
    }
    if (json_object_get(a, "share") != NULL) {
        return share_compile(cc, a, p);
    }
    if ((v = json_object_get(a, "metrics")) != NULL) {
        p->kind = WR_ACTION_METRICS;
        p->metrics = json_is_string(v) && strcmp(json_string_value(v), "json") == 0
                     ? WR_METRICS_JSON : WR_METRICS_PROMETHEUS;
        return 0;
    }
    if ((v = json_object_get(a, "proxy")) != NULL) {
        p->kind = WR_ACTION_PROXY;
        p->proxy = cc_strdup(cc, json_string_value(v) ? json_string_value(v) : "");
        return p->proxy != NULL ? 0 : -1;
    }
    return cc_failf(cc, "an action needs \"pass\", \"return\", \"share\" or \"proxy\"");
}

static wr_act_t *
act_compile(wr_cc_t *cc, json_t *a)
{
    wr_act_t *act = calloc(1, sizeof(*act));

    if (act == NULL) {
        cc_failf(cc, "out of memory");
        return NULL;
    }
    if (!json_is_object(a) || act_body(cc, a, act) < 0) {
        if (!json_is_object(a)) {
            cc_failf(cc, "an action must be an object");
        }
        wr_act_free(act);
        free(act);
        return NULL;
    }
    return act;
}

static int
share_paths(wr_cc_t *cc, json_t *v, wr_action_t *p)
{
    size_t n = json_is_array(v) ? json_array_size(v) : 1, old = cc_push(cc, "share");

    p->share = calloc(n ? n : 1, sizeof(*p->share));
    if (p->share == NULL) {
        return cc_failf(cc, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        json_t *item = json_is_array(v) ? json_array_get(v, i) : v;
        size_t  o2 = json_is_array(v) ? cc_push_index(cc, i) : cc->plen;

        p->share[i] = wr_tpl_compile(json_is_string(item) ? json_string_value(item) : "",
                                     cc->why, sizeof(cc->why));
        if (p->share[i] == NULL) {
            return cc_fail(cc);
        }
        p->nshare++;
        cc_pop(cc, o2);
    }
    cc_pop(cc, old);
    return 0;
}

static int
share_compile(wr_cc_t *cc, json_t *a, wr_action_t *p)
{
    json_t   *v;
    wr_act_t *fb;
    size_t    old;

    p->kind = WR_ACTION_SHARE;
    if (share_paths(cc, json_object_get(a, "share"), p) < 0) {
        return -1;
    }
    v = json_object_get(a, "index");
    p->index = v != NULL ? tpl_of(cc, v, "index")
                         : wr_tpl_compile(WR_DEFAULT_INDEX, cc->why, sizeof(cc->why));
    if (p->index == NULL) {
        return -1;
    }
    if ((v = json_object_get(a, "chroot")) != NULL
        && (p->chroot = tpl_of(cc, v, "chroot")) == NULL)
    {
        return -1;
    }
    p->follow_symlinks = !json_is_false(json_object_get(a, "follow_symlinks"));
    p->traverse_mounts = !json_is_false(json_object_get(a, "traverse_mounts"));
    if ((v = json_object_get(a, "types")) != NULL) {
        old = cc_push(cc, "types");
        p->types = wr_mime_filter_compile(v, cc->why, sizeof(cc->why));
        if (p->types == NULL) {
            return cc_fail(cc);
        }
        cc_pop(cc, old);
    }
    if ((v = json_object_get(a, "fallback")) != NULL) {
        old = cc_push(cc, "fallback");
        if ((fb = act_compile(cc, v)) == NULL) {
            return -1;
        }
        p->fallback = &fb->pub;
        cc_pop(cc, old);
    }
    return 0;
}

/* --------------------------------------------------------------- match */

static void
fields_free(wr_cond_t *cd)
{
    for (size_t s = 0; s < cd->nsets; s++) {
        for (size_t i = 0; i < cd->sets[s].n; i++) {
            free(cd->sets[s].f[i].name);
            wr_rule_free(&cd->sets[s].f[i].rule);
        }
        free(cd->sets[s].f);
    }
    free(cd->sets);
}

static void
cond_free(wr_cond_t *cd)
{
    wr_rule_free(&cd->rule);
    wr_addr_rule_free(&cd->addr);
    fields_free(cd);
    wr_if_free(cd->cond);
}

/* Field names as matched: headers lowercased, arguments decoded. */
static char *
field_name(wr_cond_kind_t kind, const char *key, size_t *len)
{
    char  *name = strdup(key);
    size_t n = strlen(key);

    if (name == NULL) {
        return NULL;
    }
    if (kind == WR_COND_HEADERS) {
        for (size_t i = 0; i < n; i++) {
            name[i] = wr_lower(name[i]);
        }
    } else if (kind == WR_COND_ARGUMENTS) {
        n = wr_url_decode(name, n, name, true);
        name[n] = '\0';
    }
    *len = n;
    return name;
}

static int
field_set_compile(wr_cc_t *cc, wr_cond_kind_t kind, json_t *obj, wr_field_set_t *set)
{
    static const unsigned value_flags[] = {
        [WR_COND_HEADERS] = WR_PAT_ICASE,
        [WR_COND_ARGUMENTS] = WR_PAT_DECODE | WR_PAT_PLUS,
        [WR_COND_COOKIES] = 0,
    };
    const char *key;
    json_t     *v;

    if (!json_is_object(obj)) {
        return cc_failf(cc, "an object is expected");
    }
    set->f = calloc(json_object_size(obj) + 1, sizeof(*set->f));
    if (set->f == NULL) {
        return cc_failf(cc, "out of memory");
    }
    json_object_foreach(obj, key, v) {
        wr_field_rule_t *fr = &set->f[set->n++];
        size_t           old = cc_push(cc, key);

        if ((fr->name = field_name(kind, key, &fr->len)) == NULL) {
            return cc_failf(cc, "out of memory");
        }
        if (wr_rule_compile(&fr->rule, v, value_flags[kind], cc->why, sizeof(cc->why)) < 0) {
            return cc_fail(cc);
        }
        cc_pop(cc, old);
    }
    return 0;
}

static int
fields_compile(wr_cc_t *cc, wr_cond_t *cd, json_t *v)
{
    size_t n = json_is_array(v) ? json_array_size(v) : 1;

    cd->sets = calloc(n ? n : 1, sizeof(*cd->sets));
    if (cd->sets == NULL) {
        return cc_failf(cc, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        size_t old = json_is_array(v) ? cc_push_index(cc, i) : cc->plen;

        cd->nsets++;
        if (field_set_compile(cc, cd->kind, json_is_array(v) ? json_array_get(v, i) : v,
                              &cd->sets[i]) < 0)
        {
            return -1;
        }
        cc_pop(cc, old);
    }
    return 0;
}

/* Match keys, cheapest test first: the order in which conditions run. */
static const struct {
    const char     *key;
    wr_cond_kind_t  kind;
    unsigned        flags;
} cond_keys[] = {
    { "scheme",      WR_COND_SCHEME,      0 },
    { "method",      WR_COND_METHOD,      WR_PAT_ICASE },
    { "host",        WR_COND_HOST,        WR_PAT_ICASE },
    { "uri",         WR_COND_URI,         WR_PAT_DECODE },
    { "destination", WR_COND_DESTINATION, 0 },
    { "source",      WR_COND_SOURCE,      0 },
    { "query",       WR_COND_QUERY,       WR_PAT_DECODE | WR_PAT_PLUS },
    { "headers",     WR_COND_HEADERS,     0 },
    { "cookies",     WR_COND_COOKIES,     0 },
    { "arguments",   WR_COND_ARGUMENTS,   0 },
    { "if",          WR_COND_IF,          0 },
};

#define WR_NCOND_KEYS (sizeof(cond_keys) / sizeof(cond_keys[0]))

static int
cond_compile(wr_cc_t *cc, wr_cond_t *cd, size_t k, json_t *v)
{
    cd->kind = cond_keys[k].kind;
    switch (cd->kind) {
    case WR_COND_SCHEME:
        cd->https = json_is_string(v) && strcasecmp(json_string_value(v), "https") == 0;
        return 0;
    case WR_COND_SOURCE:
    case WR_COND_DESTINATION:
        return wr_addr_rule_compile(&cd->addr, v, cc->why, sizeof(cc->why)) < 0
               ? cc_fail(cc) : 0;
    case WR_COND_HEADERS:
    case WR_COND_COOKIES:
    case WR_COND_ARGUMENTS:
        return fields_compile(cc, cd, v);
    case WR_COND_IF:
        cd->cond = wr_if_compile(json_is_string(v) ? json_string_value(v) : "",
                                 cc->why, sizeof(cc->why));
        return cd->cond != NULL ? 0 : cc_fail(cc);
    default:
        return wr_rule_compile(&cd->rule, v, cond_keys[k].flags, cc->why,
                               sizeof(cc->why)) < 0 ? cc_fail(cc) : 0;
    }
}

static int
match_compile(wr_cc_t *cc, json_t *m, wr_step_t *st)
{
    size_t old = cc_push(cc, "match");

    st->cond = calloc(WR_NCOND_KEYS, sizeof(*st->cond));
    if (st->cond == NULL) {
        return cc_failf(cc, "out of memory");
    }
    for (size_t k = 0; k < WR_NCOND_KEYS; k++) {
        json_t *v = json_object_get(m, cond_keys[k].key);
        size_t  o2;

        if (v == NULL) {
            continue;
        }
        o2 = cc_push(cc, cond_keys[k].key);
        if (cond_compile(cc, &st->cond[st->ncond++], k, v) < 0) {
            return -1;
        }
        cc_pop(cc, o2);
    }
    cc_pop(cc, old);
    return 0;
}

/* ------------------------------------------------------------- routes */

static void
route_free(wr_route_t *rt)
{
    for (size_t s = 0; s < rt->nsteps; s++) {
        wr_step_t *st = &rt->steps[s];

        for (size_t i = 0; i < st->ncond; i++) {
            cond_free(&st->cond[i]);
        }
        free(st->cond);
        wr_act_free(st->act);
        free(st->act);
    }
    free(rt->steps);
    free(rt->name);
}

static int
steps_compile(wr_cc_t *cc, json_t *steps, wr_route_t *route)
{
    size_t  i;
    json_t *step, *m;

    route->steps = calloc(json_array_size(steps) + 1, sizeof(wr_step_t));
    if (route->steps == NULL) {
        return cc_failf(cc, "out of memory");
    }
    json_array_foreach(steps, i, step) {
        wr_step_t *st = &route->steps[route->nsteps++];
        size_t     old = cc_push_index(cc, i), o2;

        if ((m = json_object_get(step, "match")) != NULL && match_compile(cc, m, st) < 0) {
            return -1;
        }
        o2 = cc_push(cc, "action");
        if ((st->act = act_compile(cc, json_object_get(step, "action"))) == NULL) {
            return -1;
        }
        cc_pop(cc, o2);
        cc_pop(cc, old);
    }
    return 0;
}

/* Names every route first, so passes may point forward. */
static int
routes_declare(wr_cc_t *cc, json_t *routes)
{
    wr_routes_t *rt = cc->rt;
    const char  *name;
    json_t      *steps;

    if (routes == NULL) {
        return 0;
    }
    rt->routes = calloc(json_is_object(routes) ? json_object_size(routes) + 1 : 1,
                        sizeof(wr_route_t));
    if (rt->routes == NULL) {
        return cc_failf(cc, "out of memory");
    }
    if (json_is_array(routes)) {
        rt->nroutes = 1;
        return 0;
    }
    json_object_foreach(routes, name, steps) {
        if ((rt->routes[rt->nroutes++].name = cc_strdup(cc, name)) == NULL) {
            return -1;
        }
    }
    return 0;
}

static int
routes_build(wr_cc_t *cc, json_t *routes)
{
    size_t old = cc_push(cc, "routes");

    if (json_is_array(routes)) {
        if (steps_compile(cc, routes, &cc->rt->routes[0]) < 0) {
            return -1;
        }
    } else {
        for (size_t i = 0; i < cc->rt->nroutes; i++) {
            wr_route_t *route = &cc->rt->routes[i];
            size_t      o2 = cc_push(cc, route->name);

            if (steps_compile(cc, json_object_get(routes, route->name), route) < 0) {
                return -1;
            }
            cc_pop(cc, o2);
        }
    }
    cc_pop(cc, old);
    return 0;
}

/* Listener passes are compiled too, so resolving one is a string compare. */
static int
listeners_build(wr_cc_t *cc, json_t *listeners)
{
    wr_routes_t *rt = cc->rt;
    const char  *addr;
    json_t      *l, *pass;

    rt->listen = calloc(json_is_object(listeners) ? json_object_size(listeners) + 1 : 1,
                        sizeof(*rt->listen));
    if (rt->listen == NULL) {
        return cc_failf(cc, "out of memory");
    }
    json_object_foreach(listeners, addr, l) {
        wr_listen_pass_t *lp;
        size_t            old;
        char             *copy;

        if (!json_is_string(pass = json_object_get(l, "pass"))) {
            continue;
        }
        lp = &rt->listen[rt->nlisten++];
        old = cc_push(cc, "listeners");
        cc_push(cc, addr);
        if ((lp->pass = cc_strdup(cc, json_string_value(pass))) == NULL) {
            return -1;
        }
        if (strchr(lp->pass, '$') != NULL) {
            if ((lp->tpl = tpl_of(cc, pass, "pass")) == NULL) {
                return -1;
            }
        } else if ((copy = cc_strdup(cc, lp->pass)) == NULL) {
            return -1;
        } else {
            int rc = wr_routes_lookup(rt, &rt->targets, copy, &lp->target);

            free(copy);
            if (rc < 0) {
                cc_push(cc, "pass");
                return cc_failf(cc, "the pass target \"%s\" does not exist", lp->pass);
            }
        }
        cc_pop(cc, old);
    }
    return 0;
}

wr_routes_t *
wr_routes_compile(json_t *conf, char *err, size_t errlen)
{
    wr_cc_t *cc = calloc(1, sizeof(*cc));
    json_t  *routes = json_object_get(conf, "routes");

    if (cc == NULL || (cc->rt = calloc(1, sizeof(wr_routes_t))) == NULL) {
        snprintf(err, errlen, "Out of memory while compiling the routes.");
        free(cc);
        return NULL;
    }
    cc->err = err;
    cc->errlen = errlen;
    if (targets_build(cc, conf) < 0 || routes_declare(cc, routes) < 0
        || (routes != NULL && routes_build(cc, routes) < 0)
        || listeners_build(cc, json_object_get(conf, "listeners")) < 0)
    {
        wr_routes_free(cc->rt);
        free(cc);
        return NULL;
    }
    wr_routes_t *rt = cc->rt;

    free(cc);
    return rt;
}

void
wr_routes_free(wr_routes_t *rt)
{
    if (rt == NULL) {
        return;
    }
    for (size_t i = 0; i < rt->nroutes; i++) {
        route_free(&rt->routes[i]);
    }
    free(rt->routes);
    tab_free(&rt->targets);
    for (size_t i = 0; i < rt->nlisten; i++) {
        free(rt->listen[i].pass);
        wr_tpl_free(rt->listen[i].tpl);
    }
    free(rt->listen);
    free(rt);
}
