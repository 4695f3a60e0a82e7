/*
 * String patterns of Unit's match rules: exact text with '*' wildcards,
 * "!" negation, "~" PCRE2 regexes, and arrays of them. Plain patterns are
 * pre-split into segments (pre-decoded, pre-lowercased) so that matching
 * allocates nothing and touches each subject byte a bounded number of times.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "route/route_int.h"

#define WR_RE_ARENA       1024  /* bytes of stack for pcre2 match data */
#define WR_RE_ALIGN       16
#define WR_RE_ERRMSG_MAX  256

bool
wr_ieq(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (wr_lower(a[i]) != wr_lower(b[i])) {
            return false;
        }
    }
    return true;
}

/* ------------------------------------------------------------- regexes */

/*
 * pcre2 match data comes from a small arena on the caller's stack: no heap
 * and no shared state on the hot path. Bigger requests (the backtracking
 * frames of the interpreter when JIT is unavailable) go to malloc.
 */
typedef struct {
    size_t used;
    _Alignas(WR_RE_ALIGN) unsigned char mem[WR_RE_ARENA];
} wr_re_arena_t;

static void *
arena_malloc(PCRE2_SIZE size, void *data)
{
    wr_re_arena_t *a = data;
    size_t         need = (size + WR_RE_ALIGN - 1) & ~(size_t) (WR_RE_ALIGN - 1);
    void          *p;

    if (need <= WR_RE_ARENA - a->used) {
        p = a->mem + a->used;
        a->used += need;
        return p;
    }
    return malloc(size);
}

static void
arena_free(void *p, void *data)
{
    wr_re_arena_t *a = data;
    uintptr_t      q = (uintptr_t) p, base = (uintptr_t) a->mem;

    if (q < base || q >= base + WR_RE_ARENA) {
        free(p);
    }
}

bool
wr_regex_match(const pcre2_code *re, const char *s, size_t n)
{
    wr_re_arena_t           arena;
    pcre2_general_context  *gc;
    pcre2_match_data       *md;
    int                     rc;

    arena.used = 0;
    gc = pcre2_general_context_create(arena_malloc, arena_free, &arena);
    md = gc != NULL ? pcre2_match_data_create(1, gc) : NULL;
    if (md == NULL) {
        pcre2_general_context_free(gc);
        return false;
    }
    rc = pcre2_match(re, (PCRE2_SPTR) (s != NULL ? s : ""), n, 0, 0, md, NULL);
    pcre2_match_data_free(md);
    pcre2_general_context_free(gc);
    /* Errors (match limits) count as no match, as in Unit. */
    return rc >= 0;
}

static pcre2_code *
regex_compile(const char *src, char *err, size_t errlen)
{
    int         code;
    PCRE2_SIZE  off;
    pcre2_code *re;
    PCRE2_UCHAR msg[WR_RE_ERRMSG_MAX];

    re = pcre2_compile((PCRE2_SPTR) src, PCRE2_ZERO_TERMINATED, 0, &code, &off, NULL);
    if (re == NULL) {
        pcre2_get_error_message(code, msg, sizeof(msg));
        snprintf(err, errlen, "the regular expression \"%s\" is invalid at "
                 "offset %zu: %s", src, (size_t) off, (char *) msg);
        return NULL;
    }
    /* JIT is an optimization: without it the interpreter still matches. */
    (void) pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    return re;
}

/* ------------------------------------------------------- plain patterns */

/* Splits body at '*' into segments, decoding and lowercasing each. */
static int
plain_compile(wr_pat_t *p, const char *body, unsigned flags)
{
    size_t      len = strlen(body), nstars = 0, used = 0;
    const char *s, *star;

    for (s = body; (s = strchr(s, '*')) != NULL; s++) {
        nstars++;
    }
    p->text = malloc(len + 1);
    p->seg = calloc(nstars + 1, sizeof(*p->seg));
    if (p->text == NULL || p->seg == NULL) {
        return -1;
    }
    p->anchor_start = body[0] != '*';
    p->anchor_end = len == 0 || body[len - 1] != '*';
    for (s = body;; s = star + 1) {
        star = strchr(s, '*');
        size_t n = star != NULL ? (size_t) (star - s) : strlen(s);
        char  *out = p->text + used;

        if (flags & WR_PAT_DECODE) {
            n = wr_url_decode(s, n, out, flags & WR_PAT_PLUS);
        } else {
            memcpy(out, s, n);
        }
        if (flags & WR_PAT_ICASE) {
            for (size_t i = 0; i < n; i++) {
                out[i] = wr_lower(out[i]);
            }
        }
        if (n > 0) {
            p->seg[p->nseg++] = (wr_str_t) { out, n };
            used += n;
        }
        if (star == NULL) {
            break;
        }
    }
    p->text[used] = '\0';
    return 0;
}

static int
pat_compile(wr_pat_t *p, const char *s, unsigned flags, char *err, size_t errlen)
{
    memset(p, 0, sizeof(*p));
    p->negative = s[0] == '!';
    if (p->negative) {
        s++;
    }
    if (s[0] == '~') {
        p->re = regex_compile(s + 1, err, errlen);
        return p->re != NULL ? 0 : -1;
    }
    if (plain_compile(p, s, flags) < 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

static void
pat_free(wr_pat_t *p)
{
    pcre2_code_free(p->re);
    free(p->text);
    free(p->seg);
}

static bool
seg_eq(const char *s, const wr_str_t *seg, bool icase)
{
    if (!icase) {
        return memcmp(s, seg->p, seg->n) == 0;
    }
    for (size_t i = 0; i < seg->n; i++) {
        if (wr_lower(s[i]) != seg->p[i]) {
            return false;
        }
    }
    return true;
}

/* First occurrence of seg in s[0..n), or NULL. */
static const char *
seg_find(const char *s, size_t n, const wr_str_t *seg, bool icase)
{
    if (!icase) {
        return memmem(s, n, seg->p, seg->n);
    }
    for (size_t i = 0; i + seg->n <= n; i++) {
        if (wr_lower(s[i]) == seg->p[0] && seg_eq(s + i, seg, true)) {
            return s + i;
        }
    }
    return NULL;
}

/*
 * Anchored ends first, then the middle segments leftmost-first: greedy
 * leftmost placement is optimal for '*' globs, so there is no backtracking.
 */
static bool
plain_match(const wr_pat_t *p, const char *s, size_t n, bool icase)
{
    size_t first = 0, last = p->nseg;
    const wr_str_t *seg;

    if (p->nseg == 0) {
        return !(p->anchor_start && p->anchor_end) || n == 0;
    }
    if (p->anchor_start && p->anchor_end && p->nseg == 1) {
        return n == p->seg[0].n && seg_eq(s, &p->seg[0], icase);
    }
    if (p->anchor_start) {
        seg = &p->seg[first++];
        if (n < seg->n || !seg_eq(s, seg, icase)) {
            return false;
        }
        s += seg->n;
        n -= seg->n;
    }
    if (p->anchor_end) {
        seg = &p->seg[--last];
        if (n < seg->n || !seg_eq(s + n - seg->n, seg, icase)) {
            return false;
        }
        n -= seg->n;
    }
    for (size_t i = first; i < last; i++) {
        const char *at = seg_find(s, n, &p->seg[i], icase);

        if (at == NULL) {
            return false;
        }
        n -= (size_t) (at - s) + p->seg[i].n;
        s = at + p->seg[i].n;
    }
    return true;
}

static bool
pat_match(const wr_pat_t *p, const char *s, size_t n, bool icase)
{
    if (p->re != NULL) {
        return wr_regex_match(p->re, s, n);
    }
    return plain_match(p, s, n, icase);
}

/* ---------------------------------------------------------------- rules */

static int
rule_add(wr_rule_t *rule, json_t *v, unsigned flags, char *err, size_t errlen)
{
    const char *s = json_string_value(v);
    wr_pat_t    p;

    if (s == NULL) {
        snprintf(err, errlen, "a pattern must be a string");
        return -1;
    }
    if (pat_compile(&p, s, flags, err, errlen) < 0) {
        pat_free(&p);
        return -1;
    }
    /* Negatives go first so that a hit on one ends the test early. */
    if (p.negative) {
        memmove(&rule->pat[rule->nneg + 1], &rule->pat[rule->nneg],
                (rule->n - rule->nneg) * sizeof(wr_pat_t));
        rule->pat[rule->nneg++] = p;
    } else {
        rule->pat[rule->n] = p;
    }
    rule->n++;
    rule->has_regex = rule->has_regex || p.re != NULL;
    return 0;
}

int
wr_rule_compile(wr_rule_t *rule, json_t *v, unsigned flags, char *err, size_t errlen)
{
    size_t  count = json_is_array(v) ? json_array_size(v) : 1, i;
    json_t *item;

    memset(rule, 0, sizeof(*rule));
    rule->icase = flags & WR_PAT_ICASE;
    rule->pat = calloc(count ? count : 1, sizeof(wr_pat_t));
    if (rule->pat == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (!json_is_array(v)) {
        return rule_add(rule, v, flags, err, errlen);
    }
    json_array_foreach(v, i, item) {
        if (rule_add(rule, item, flags, err, errlen) < 0) {
            return -1;
        }
    }
    return 0;
}

void
wr_rule_free(wr_rule_t *rule)
{
    for (size_t i = 0; i < rule->n; i++) {
        pat_free(&rule->pat[i]);
    }
    free(rule->pat);
    memset(rule, 0, sizeof(*rule));
}

bool
wr_rule_match(const wr_rule_t *rule, const char *s, size_t n)
{
    size_t i;

    s = s != NULL ? s : "";     /* an absent value is the empty string */
    for (i = 0; i < rule->nneg; i++) {
        if (pat_match(&rule->pat[i], s, n, rule->icase)) {
            return false;
        }
    }
    if (rule->nneg == rule->n) {
        return true;            /* only negations (or none): nothing hit */
    }
    for (; i < rule->n; i++) {
        if (pat_match(&rule->pat[i], s, n, rule->icase)) {
            return true;
        }
    }
    return false;
}

/* ---------------------------------------------------------- MIME filter */

wr_mime_filter_t *
wr_mime_filter_compile(json_t *v, char *err, size_t errlen)
{
    wr_mime_filter_t *f = calloc(1, sizeof(*f));

    if (f == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    /* MIME types are case-insensitive (RFC 9110 §8.3.1). */
    if (wr_rule_compile(&f->rule, v, WR_PAT_ICASE, err, errlen) < 0) {
        wr_mime_filter_free(f);
        return NULL;
    }
    return f;
}

void
wr_mime_filter_free(wr_mime_filter_t *f)
{
    if (f != NULL) {
        wr_rule_free(&f->rule);
        free(f);
    }
}

int
wr_mime_filter_match(const wr_mime_filter_t *f, const char *mime)
{
    return f == NULL || wr_rule_match(&f->rule, mime, strlen(mime));
}
