/*
 * libFuzzer target for src/route: patterns, address patterns, templates, and
 * whole route tables. Input: one mode byte, then NUL-separated pieces.
 *   mode 0  pattern piece[0] (items split by '\1') matched against piece[1];
 *           a plain pattern is checked against a reference glob matcher and
 *           "!" must invert the answer
 *   mode 1  address pattern piece[0] against an address made of piece[1]
 *   mode 2  template piece[0] expanded against a request made of the pieces;
 *           a constant template expands to itself, "if" never leaks scratch
 *   mode 3  piece[0] is a config: when src/conf accepts it, compiling must
 *           fail only for a regex or variable reason, and resolving a request
 *           made of the other pieces must end (no loop, no crash)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "conf/conf.h"
#include "route/route_int.h"

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

enum {
    MAX_PIECES  = 8,
    MAX_SUBJECT = 512,      /* keeps regex backtracking bounded in time */
    ERRLEN      = 512,
    MODE_PATTERN = 0,
    MODE_ADDR,
    MODE_TPL,
    MODE_CONF,
    N_MODES,
};

typedef struct {
    const char *p[MAX_PIECES];
    size_t      n[MAX_PIECES];
    size_t      count;
} pieces_t;

static void
split(const uint8_t *data, size_t size, pieces_t *pc)
{
    const char *s = (const char *) data, *end = s + size;

    memset(pc, 0, sizeof(*pc));
    for (size_t i = 0; i < MAX_PIECES; i++) {
        pc->p[i] = "";
    }
    while (pc->count < MAX_PIECES && s <= end) {
        const char *z = memchr(s, '\0', (size_t) (end - s));
        size_t      n = z != NULL ? (size_t) (z - s) : (size_t) (end - s);

        pc->p[pc->count] = s;
        pc->n[pc->count++] = n;
        if (z == NULL) {
            break;
        }
        s = z + 1;
    }
}

/* Reference: '*' globbing by dynamic programming over (pattern, subject). */
static bool
ref_glob(const char *p, size_t pn, const char *s, size_t sn)
{
    bool *row = calloc(sn + 1, sizeof(bool)), *next = calloc(sn + 1, sizeof(bool));
    bool  yes;

    row[0] = true;
    for (size_t j = 1; j <= sn; j++) {
        row[j] = false;
    }
    for (size_t i = 0; i < pn; i++) {
        next[0] = row[0] && p[i] == '*';
        for (size_t j = 1; j <= sn; j++) {
            next[j] = p[i] == '*' ? (row[j] || next[j - 1])
                                  : (row[j - 1] && p[i] == s[j - 1]);
        }
        memcpy(row, next, (sn + 1) * sizeof(bool));
    }
    yes = row[sn];
    free(row);
    free(next);
    return yes;
}

static bool
rule_of(const char *s, size_t n, unsigned flags, wr_rule_t *rule)
{
    json_t *arr = json_array();
    char    err[ERRLEN];
    bool    ok;

    for (const char *p = s, *end = s + n; p <= end;) {
        const char *sep = memchr(p, '\1', (size_t) (end - p));
        size_t      len = sep != NULL ? (size_t) (sep - p) : (size_t) (end - p);

        json_array_append_new(arr, json_stringn_nocheck(p, len));
        p += len + 1;
    }
    ok = wr_rule_compile(rule, json_array_size(arr) == 1 ? json_array_get(arr, 0) : arr,
                         flags, err, sizeof(err)) == 0;
    json_decref(arr);
    return ok;
}

static void
fuzz_pattern(const pieces_t *pc, unsigned flags)
{
    wr_rule_t   rule, neg;
    const char *pat = pc->p[0], *subj = pc->p[1];
    size_t      pn = pc->n[0], sn = pc->n[1] < MAX_SUBJECT ? pc->n[1] : MAX_SUBJECT;
    bool        yes;
    char       *negated;

    if (!rule_of(pat, pn, flags, &rule)) {
        wr_rule_free(&rule);
        return;
    }
    yes = wr_rule_match(&rule, subj, sn);
    wr_rule_free(&rule);
    /* A single plain pattern without NULs: check against the reference. */
    if (pn > 0 && (pat[0] == '!' || pat[0] == '~') ) {
        return;
    }
    if (memchr(pat, '\1', pn) != NULL || memchr(pat, '\0', pn) != NULL) {
        return;
    }
    if (flags == 0) {
        CHECK(yes == ref_glob(pat, pn, subj, sn));
    }
    negated = malloc(pn + 2);
    negated[0] = '!';
    memcpy(negated + 1, pat, pn);
    if (rule_of(negated, pn + 1, flags, &neg)) {
        CHECK(wr_rule_match(&neg, subj, sn) == !yes);
    }
    wr_rule_free(&neg);
    free(negated);
}

static void
fuzz_addr(const pieces_t *pc)
{
    json_t                 *v = json_stringn_nocheck(pc->p[0], pc->n[0]);
    wr_addr_rule_t          rule;
    char                    err[ERRLEN];
    struct sockaddr_storage ss;
    const unsigned char    *b = (const unsigned char *) pc->p[1];
    size_t                  n = pc->n[1];

    memset(&ss, 0, sizeof(ss));
    if (n >= 1 + 2 + 16) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *) &ss;

        s6->sin6_family = AF_INET6;
        memcpy(&s6->sin6_port, b + 1, 2);
        memcpy(&s6->sin6_addr, b + 3, 16);
    } else if (n >= 1 + 2 + 4) {
        struct sockaddr_in *s4 = (struct sockaddr_in *) &ss;

        s4->sin_family = AF_INET;
        memcpy(&s4->sin_port, b + 1, 2);
        memcpy(&s4->sin_addr, b + 3, 4);
    } else {
        ss.ss_family = AF_UNIX;
    }
    if (wr_addr_rule_compile(&rule, v, err, sizeof(err)) == 0) {
        (void) wr_addr_rule_match(&rule, (struct sockaddr *) &ss);
        (void) wr_addr_rule_match(&rule, NULL);
    }
    wr_addr_rule_free(&rule);
    json_decref(v);
}

static void
make_req(const pieces_t *pc, wr_req_view_t *r, wr_http_field_t *f, struct sockaddr_in *sa)
{
    memset(r, 0, sizeof(*r));
    r->method = (wr_str_t) { pc->p[1], pc->n[1] };
    r->uri = (wr_str_t) { pc->p[2], pc->n[2] };
    r->request_uri = r->uri;
    r->query = (wr_str_t) { pc->p[3], pc->n[3] };
    r->host = (wr_str_t) { pc->p[4], pc->n[4] };
    r->request_line = r->uri;
    for (size_t i = 0; i < 2; i++) {
        f[i] = (wr_http_field_t) { i == 0 ? "Cookie" : pc->p[5], i == 0 ? 6 : pc->n[5],
                                   pc->p[6 + i], pc->n[6 + i] };
    }
    r->fields = f;
    r->nfields = 2;
    r->resp_fields = f;
    r->nresp_fields = 2;
    sa->sin_family = AF_INET;
    r->remote = (struct sockaddr *) sa;
    r->local = (struct sockaddr *) sa;
    r->status = (int) pc->n[1];
    r->request_time = (double) pc->n[2] / 7;
}

static void
fuzz_tpl(const pieces_t *pc)
{
    char              *src = strndup(pc->p[0], pc->n[0]);
    char               err[ERRLEN];
    wr_tpl_t          *t = wr_tpl_compile(src, err, sizeof(err));
    wr_if_t           *c = wr_if_compile(src, err, sizeof(err));
    wr_req_view_t      r;
    wr_http_field_t    f[2];
    struct sockaddr_in sa = { 0 };
    wr_buf_t           out = { 0 };
    const char        *k;
    size_t             kn;

    make_req(pc, &r, f, &sa);
    if (t != NULL && src[0] == '`') {
        /* JavaScript: it may throw (logged, -1); the output is whole or nothing. */
        CHECK(wr_tpl_eval(t, &r, &out) == 0 || out.n == 0);
    } else if (t != NULL) {
        CHECK(wr_tpl_eval(t, &r, &out) == 0);
        if ((k = wr_tpl_const_str(t, &kn)) != NULL) {
            CHECK(out.n == kn && (kn == 0 || memcmp(out.p, k, kn) == 0));
            CHECK(strchr(src, '$') != NULL || (kn == strlen(src) && memcmp(k, src, kn) == 0));
        }
        /* again, with $uri pointing into the output buffer itself */
        r.uri = (wr_str_t) { out.p, out.n };
        CHECK(wr_tpl_eval(t, &r, &out) == 0);
        r.uri = (wr_str_t) { pc->p[2], pc->n[2] };   /* out may have moved */
    }
    if (c != NULL) {
        size_t before = out.n;

        (void) wr_if_true(c, &r, &out);
        CHECK(out.n == before);
    }
    wr_buf_free(&out);
    wr_tpl_free(t);
    wr_if_free(c);
    free(src);
}

static void
fuzz_conf(const pieces_t *pc)
{
    json_t            *conf = json_loadb(pc->p[0], pc->n[0], JSON_DECODE_ANY, NULL);
    wr_conf_error_t    cerr;
    wr_routes_t       *rt;
    char               err[ERRLEN] = "";
    wr_req_view_t      r;
    wr_http_field_t    f[2];
    struct sockaddr_in sa = { 0 };
    wr_buf_t           scratch = { 0 };
    const wr_action_t *a;
    static const char *passes[] = { "routes", "routes/a", "routes/main", "applications/app",
                                    "upstreams/u", "routes/$arg_r" };

    if (conf == NULL) {
        return;
    }
    wr_conf_error_init(&cerr);
    if (wr_conf_validate(conf, &cerr) < 0) {
        wr_conf_error_clear(&cerr);
        json_decref(conf);
        return;
    }
    rt = wr_routes_compile(conf, err, sizeof(err));
    if (rt == NULL) {
        CHECK(strstr(err, "regular expression") != NULL || strstr(err, "variable") != NULL
              || strstr(err, "\"$\"") != NULL || strstr(err, "JavaScript") != NULL);
    }
    make_req(pc, &r, f, &sa);
    for (size_t i = 0; rt != NULL && i < sizeof(passes) / sizeof(passes[0]); i++) {
        wr_req_view_t copy = r;
        int           rc = wr_routes_resolve(rt, passes[i], &copy, &scratch, &a);

        CHECK(rc == WR_ROUTE_FOUND || rc == WR_ROUTE_NOT_FOUND || rc == WR_ROUTE_ERROR);
        CHECK(rc != WR_ROUTE_FOUND || a != NULL);
        if (rc == WR_ROUTE_FOUND && a->kind == WR_ACTION_SHARE && a->fallback != NULL) {
            (void) wr_routes_fallback(rt, a->fallback, &copy, &scratch, &a);
        }
        wr_buf_reset(&scratch);
    }
    wr_buf_free(&scratch);
    wr_routes_free(rt);
    wr_conf_error_clear(&cerr);
    json_decref(conf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pieces_t pc;
    unsigned mode;

    if (size < 1) {
        return 0;
    }
    mode = data[0] % N_MODES;
    split(data + 1, size - 1, &pc);
    switch (mode) {
    case MODE_PATTERN:
        fuzz_pattern(&pc, (data[0] >> 2) & (WR_PAT_ICASE | WR_PAT_DECODE | WR_PAT_PLUS));
        break;
    case MODE_ADDR:
        fuzz_addr(&pc);
        break;
    case MODE_TPL:
        fuzz_tpl(&pc);
        break;
    default:
        fuzz_conf(&pc);
        break;
    }
    return 0;
}
