/*
 * Validation of "routes": steps, match conditions, address patterns, actions,
 * and "pass" targets (also used by listeners).
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "conf/validate_int.h"

#define RETURN_MAX       999
#define IPV4_PREFIX_MAX  32
#define IPV6_PREFIX_MAX  128
#define IP_TEXT_MAX      64
#define PROXY_SCHEME     "http://"
#define PROXY_SCHEME_LEN (sizeof(PROXY_SCHEME) - 1)
#define MAX_PASS_SEGS    3          /* "applications/NAME/TARGET" */

/* -------------------------------------------------------------- patterns */

static bool
is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Patterns: "!" negates, "~" starts a PCRE2 regex, else "*" wildcards. */
static const char *
pattern_body(const char *s, bool *regex)
{
    if (*s == '!') {
        s++;
    }
    *regex = *s == '~';
    return *regex ? s + 1 : s;
}

static int
check_pattern(wr_vctx_t *c, json_t *v, const char *name)
{
    bool        regex;
    const char *body;

    if (!json_is_string(v)) {
        return 0;                   /* array items are checked one by one */
    }
    body = pattern_body(json_string_value(v), &regex);
    /* The regex itself is compiled by the router (pcre2); here only its
     * presence is checked. */
    if (regex && *body == '\0') {
        return wr_v_error(c, "The \"%s\" regular expression must not be "
                          "empty.", name);
    }
    return 0;
}

/* uri, query and arguments are matched decoded, so encodings must be sound. */
static int
check_encoded_pattern(wr_vctx_t *c, json_t *v, const char *name)
{
    bool        regex;
    const char *p;

    if (!json_is_string(v)) {
        return 0;
    }
    if (check_pattern(c, v, name) < 0) {
        return -1;
    }
    p = pattern_body(json_string_value(v), &regex);
    if (regex) {
        return 0;
    }
    for (; *p != '\0'; p++) {
        if (*p == '%' && (!is_hex(p[1]) || !is_hex(p[2]))) {
            return wr_v_error(c, "The \"%s\" pattern \"%s\" has an invalid "
                              "percent-encoding.", name, json_string_value(v));
        }
    }
    return 0;
}

static const wr_vdesc_t pattern = {
    .types = WR_VT_STR, .check = check_pattern,
};
static const wr_vdesc_t patterns = {
    .types = WR_VT_STR | WR_VT_ARR, .items = &pattern, .check = check_pattern,
};
static const wr_vdesc_t encoded_pattern = {
    .types = WR_VT_STR, .check = check_encoded_pattern,
};
static const wr_vdesc_t encoded_patterns = {
    .types = WR_VT_STR | WR_VT_ARR, .items = &encoded_pattern,
    .check = check_encoded_pattern,
};

static int
check_field_name(wr_vctx_t *c, const char *key)
{
    if (key[0] == '\0') {
        return wr_v_error(c, "A field name in a match must not be empty.");
    }
    return 0;
}

/* headers / cookies / arguments: {name: patterns} or an array of them. */
static const wr_vdesc_t field_map = {
    .types = WR_VT_OBJ, .key_check = check_field_name, .values = &patterns,
};
static const wr_vdesc_t fields = {
    .types = WR_VT_OBJ | WR_VT_ARR, .key_check = check_field_name,
    .values = &patterns, .items = &field_map,
};
static const wr_vdesc_t encoded_field_map = {
    .types = WR_VT_OBJ, .key_check = check_field_name, .values = &encoded_patterns,
};
static const wr_vdesc_t encoded_fields = {
    .types = WR_VT_OBJ | WR_VT_ARR, .key_check = check_field_name,
    .values = &encoded_patterns, .items = &encoded_field_map,
};

/* ------------------------------------------------------ address patterns */

static bool
ip_prefix(const char *s, size_t len, int family)
{
    long max = family == AF_INET ? IPV4_PREFIX_MAX : IPV6_PREFIX_MAX;
    long n = 0;
    size_t i;

    if (len == 0 || len > 3) {
        return false;
    }
    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        n = n * 10 + (s[i] - '0');
    }
    return n <= max;
}

/* Compares two addresses of one family; <0, 0, >0 as memcmp. */
static int
ip_compare(const char *a, size_t alen, const char *b, size_t blen, int family)
{
    char          ta[IP_TEXT_MAX], tb[IP_TEXT_MAX];
    unsigned char ba[sizeof(struct in6_addr)], bb[sizeof(struct in6_addr)];
    size_t        size = family == AF_INET ? sizeof(struct in_addr)
                                           : sizeof(struct in6_addr);

    memcpy(ta, a, alen);
    ta[alen] = '\0';
    memcpy(tb, b, blen);
    tb[blen] = '\0';
    inet_pton(family, ta, ba);
    inet_pton(family, tb, bb);
    return memcmp(ba, bb, size);
}

/* "*", an address, "addr/prefix" or "addr-addr". */
static bool
host_pattern(const char *s, size_t len)
{
    const char *sep;
    int         family;

    if (len == 1 && s[0] == '*') {
        return true;
    }
    sep = memchr(s, '/', len);
    if (sep != NULL) {
        family = wr_v_ip_family(s, (size_t) (sep - s));
        return family != 0 && ip_prefix(sep + 1, len - (size_t) (sep - s) - 1, family);
    }
    sep = memchr(s, '-', len);
    if (sep != NULL) {
        size_t alen = (size_t) (sep - s), blen = len - alen - 1;

        family = wr_v_ip_family(s, alen);
        return family != 0 && wr_v_ip_family(sep + 1, blen) == family
               && ip_compare(s, alen, sep + 1, blen, family) <= 0;
    }
    return wr_v_ip_family(s, len) != 0;
}

/* "80" or "8000-8080". */
static bool
port_pattern(const char *s)
{
    const char *dash = strchr(s, '-');
    long        lo, hi;

    if (dash == NULL) {
        return wr_v_port(s, strlen(s), 1) > 0;
    }
    lo = wr_v_port(s, (size_t) (dash - s), 1);
    hi = wr_v_port(dash + 1, strlen(dash + 1), 1);
    return lo > 0 && hi > 0 && lo <= hi;
}

/* [!]("unix" | host | host:port | [v6host]:port | :port) */
static bool
address_pattern(const char *s)
{
    const char *end, *colon;
    size_t      colons = 0;

    if (*s == '!') {
        s++;
    }
    if (strcmp(s, "unix") == 0) {
        return true;
    }
    if (s[0] == '[') {
        end = strchr(s, ']');
        if (end == NULL || end == s + 1 || !host_pattern(s + 1, (size_t) (end - s - 1))
            || wr_v_ip_family(s + 1, (size_t) (strcspn(s + 1, "/-]"))) != AF_INET6)
        {
            return false;
        }
        return end[1] == '\0' || (end[1] == ':' && port_pattern(end + 2));
    }
    for (colon = s; (colon = strchr(colon, ':')) != NULL; colon++) {
        colons++;
    }
    if (colons > 1) {
        return host_pattern(s, strlen(s));        /* bare IPv6, no port */
    }
    colon = strchr(s, ':');
    if (colon == NULL) {
        return s[0] != '\0' && host_pattern(s, strlen(s));
    }
    if (colon != s && !host_pattern(s, (size_t) (colon - s))) {
        return false;
    }
    return port_pattern(colon + 1);
}

static int
check_address_pattern(wr_vctx_t *c, json_t *v, const char *name)
{
    if (json_is_string(v) && !address_pattern(json_string_value(v))) {
        return wr_v_error(c, "The \"%s\" address pattern \"%s\" is invalid.",
                          name, json_string_value(v));
    }
    return 0;
}

static const wr_vdesc_t address_pattern_desc = {
    .types = WR_VT_STR, .check = check_address_pattern,
};
const wr_vdesc_t wr_vd_address_patterns = {
    .types = WR_VT_STR | WR_VT_ARR, .flags = WR_VF_NONEMPTY,
    .items = &address_pattern_desc, .check = check_address_pattern,
};

/* ---------------------------------------------------------------- match */

static int
check_scheme(wr_vctx_t *c, json_t *v, const char *name)
{
    const char *s = json_string_value(v);

    if (strcasecmp(s, "http") != 0 && strcasecmp(s, "https") != 0) {
        return wr_v_error(c, "The \"scheme\" value must be \"http\" or "
                          "\"https\".");
    }
    return 0;
}

static const wr_vmember_t match_members[] = {
    { "host", &patterns, false },
    { "uri", &encoded_patterns, false },
    { "method", &patterns, false },
    { "query", &encoded_patterns, false },
    { "scheme", &(const wr_vdesc_t) {
        .types = WR_VT_STR, .check = check_scheme }, false },
    { "headers", &fields, false },
    { "cookies", &fields, false },
    { "arguments", &encoded_fields, false },
    { "source", &wr_vd_address_patterns, false },
    { "destination", &wr_vd_address_patterns, false },
    { "if", &wr_vd_name, false },
    { NULL, NULL, false },
};

/* ------------------------------------------------------------------ pass */

static bool
segment_ok(const char *s, size_t len)
{
    size_t i;

    if (len == 0) {
        return false;
    }
    for (i = 0; i < len; i++) {
        if (s[i] == '%' && (i + 2 >= len || !is_hex(s[i + 1]) || !is_hex(s[i + 2]))) {
            return false;
        }
    }
    return true;
}

/* Splits pass into up to MAX_PASS_SEGS segments, percent-decoded in place
 * (names may hold "/" as "%2F", as in Unit). Returns the count or -1. */
static int
split_pass(char *s, char *seg[MAX_PASS_SEGS])
{
    int   n = 0;
    char *p = s, *slash, *in, *out;

    for (;;) {
        slash = strchr(p, '/');
        size_t len = slash != NULL ? (size_t) (slash - p) : strlen(p);

        if (n == MAX_PASS_SEGS || !segment_ok(p, len)) {
            return -1;
        }
        seg[n++] = p;
        if (slash == NULL) {
            break;
        }
        *slash = '\0';
        p = slash + 1;
    }
    for (int i = 0; i < n; i++) {
        for (in = out = seg[i]; *in != '\0'; in++) {
            if (*in == '%') {
                char hex[3] = { in[1], in[2], '\0' };

                *out++ = (char) strtol(hex, NULL, 16);
                in += 2;
            } else {
                *out++ = *in;
            }
        }
        *out = '\0';
    }
    return n;
}

static bool
pass_form_ok(char *seg[], int n)
{
    if (n < 1) {
        return false;
    }
    if (strcmp(seg[0], "routes") == 0) {
        return n <= 2;
    }
    if (strcmp(seg[0], "applications") == 0) {
        return n == 2 || n == 3;
    }
    return strcmp(seg[0], "upstreams") == 0 && n == 2;
}

static int
check_pass(wr_vctx_t *c, json_t *v, const char *name)
{
    const char *s = json_string_value(v);
    char       *copy, *seg[MAX_PASS_SEGS];
    bool        ok;

    if (strchr(s, '$') != NULL) {
        return 0;               /* variables: resolved per request */
    }
    copy = strdup(s);
    if (copy == NULL) {
        return wr_conf_error_set(c->err, 500, "Memory allocation failed.",
                                 NULL, NULL);
    }
    ok = pass_form_ok(seg, split_pass(copy, seg));
    free(copy);
    if (!ok) {
        return wr_v_error(c, "The \"pass\" value \"%s\" is invalid; it must "
                          "be \"routes\", \"routes/NAME\", \"applications/NAME"
                          "[/TARGET]\", or \"upstreams/NAME\".", s);
    }
    return 0;
}

const wr_vdesc_t wr_vd_pass = {
    .types = WR_VT_STR, .flags = WR_VF_NONEMPTY, .check = check_pass,
};

/* Explains why the (syntactically valid) target doesn't exist, or NULL. */
static const char *
missing_target(json_t *root, char *seg[], int n)
{
    json_t *section = json_object_get(root, seg[0]);
    json_t *named, *targets;

    if (strcmp(seg[0], "routes") == 0 && n == 1) {
        return json_is_array(section) ? NULL : "which does not exist";
    }
    named = json_is_object(section) ? json_object_get(section, seg[1]) : NULL;
    if (named == NULL) {
        return "which does not exist";
    }
    if (strcmp(seg[0], "applications") != 0) {
        return NULL;
    }
    targets = json_object_get(named, "targets");
    if (n == 3 && json_object_get(targets, seg[2]) == NULL) {
        return "but the application has no such target";
    }
    if (n == 2 && targets != NULL) {
        return "but the application has targets, so one must be named";
    }
    return NULL;
}

int
wr_v_pass_target(wr_vctx_t *c, json_t *obj, const char *who)
{
    const char *s = json_string_value(json_object_get(obj, "pass"));
    const char *why;
    char       *copy, *seg[MAX_PASS_SEGS];
    int         n;

    if (s == NULL || strchr(s, '$') != NULL) {
        return 0;
    }
    copy = strdup(s);
    if (copy == NULL) {
        return wr_conf_error_set(c->err, 500, "Memory allocation failed.",
                                 NULL, NULL);
    }
    n = split_pass(copy, seg);
    why = pass_form_ok(seg, n) ? missing_target(c->root, seg, n) : NULL;
    free(copy);
    if (why != NULL) {
        return wr_v_error_at(c, "pass", "%s passes requests to \"%s\" %s.",
                             who, s, why);
    }
    return 0;
}

/* --------------------------------------------------------------- actions */

static bool
has_crlf(const char *s)
{
    return strpbrk(s, "\r\n") != NULL;
}

static int
check_header_value(wr_vctx_t *c, json_t *v, const char *name)
{
    if (json_is_string(v) && has_crlf(json_string_value(v))) {
        return wr_v_error(c, "The \"%s\" value must not contain CR or LF.",
                          name);
    }
    return 0;
}

/* RFC 9110 token: the only bytes a header name may have. */
static int
check_header_name(wr_vctx_t *c, const char *key)
{
    static const char tchar[] = "!#$%&'*+-.^_`|~";
    const char       *p;

    if (key[0] == '\0') {
        return wr_v_error(c, "A response header name must not be empty.");
    }
    for (p = key; *p != '\0'; p++) {
        bool alnum = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
                     || (*p >= '0' && *p <= '9');

        if (!alnum && strchr(tchar, *p) == NULL) {
            return wr_v_error(c, "The response header name \"%s\" has a "
                              "character not allowed in a header name.", key);
        }
    }
    return 0;
}

static int
check_proxy(wr_vctx_t *c, json_t *v, const char *name)
{
    const char *s = json_string_value(v);
    const char *why;

    if (strncmp(s, PROXY_SCHEME, PROXY_SCHEME_LEN) != 0) {
        return wr_v_error(c, "The \"proxy\" address \"%s\" must start with "
                          "\"http://\".", s);
    }
    why = wr_v_sockaddr(s + PROXY_SCHEME_LEN, WR_VA_UNIX);
    if (why != NULL) {
        return wr_v_error(c, "The \"proxy\" address \"%s\" is invalid: %s.",
                          s, why);
    }
    return 0;
}

/* "metrics" (Warren): which form of the router's counters to answer. */
static int
check_metrics(wr_vctx_t *c, json_t *v, const char *name)
{
    const char *s = json_string_value(v);

    if (strcmp(s, "prometheus") != 0 && strcmp(s, "json") != 0) {
        return wr_v_error(c, "The \"metrics\" value must be \"prometheus\" or "
                          "\"json\", not \"%s\".", s);
    }
    return 0;
}

static int check_action(wr_vctx_t *c, json_t *v, const char *name);

static const wr_vdesc_t header_value = {
    .types = WR_VT_STR | WR_VT_NULL, .check = check_header_value,
};

static const wr_vmember_t common_action_members[] = {
    { "rewrite", &wr_vd_name, false },
    { "response_headers", &(const wr_vdesc_t) {
        .types = WR_VT_OBJ, .key_check = check_header_name,
        .values = &header_value }, false },
    { NULL, NULL, false },
};

static const wr_vmember_t pass_members[] = {
    { "pass", &wr_vd_pass, false },
    { NULL, NULL, false },
};

static const wr_vmember_t return_members[] = {
    { "return", &(const wr_vdesc_t) {
        .types = WR_VT_INT, .flags = WR_VF_RANGE, .min = 0, .max = RETURN_MAX },
        false },
    { "location", &(const wr_vdesc_t) {
        .types = WR_VT_STR, .flags = WR_VF_NONEMPTY,
        .check = check_header_value }, false },
    { NULL, NULL, false },
};

static const wr_vmember_t share_members[] = {
    { "share", &wr_vd_names, false },
    { "index", &wr_vd_name, false },
    { "fallback", &(const wr_vdesc_t) {
        .types = WR_VT_OBJ, .check = check_action }, false },
    { "types", &(const wr_vdesc_t) {
        .types = WR_VT_STR | WR_VT_ARR, .items = &pattern,
        .check = check_pattern }, false },
    { "chroot", &wr_vd_name, false },
    { "follow_symlinks", &wr_vd_bool, false },
    { "traverse_mounts", &wr_vd_bool, false },
    { NULL, NULL, false },
};

static const wr_vmember_t proxy_members[] = {
    { "proxy", &(const wr_vdesc_t) {
        .types = WR_VT_STR, .check = check_proxy }, false },
    { NULL, NULL, false },
};

static const wr_vmember_t metrics_members[] = {
    { "metrics", &(const wr_vdesc_t) {
        .types = WR_VT_STR, .check = check_metrics }, false },
    { NULL, NULL, false },
};

/* The kinds of action; the first member of each table names it. */
static const wr_vmember_t *const action_kinds[] = {
    pass_members, return_members, share_members, proxy_members, metrics_members,
};

#define N_ACTION_KINDS (sizeof(action_kinds) / sizeof(action_kinds[0]))

/* The kind of action whose table holds key, or -1. */
static int
kind_of_key(const char *key)
{
    size_t              k;
    const wr_vmember_t *m;

    for (k = 0; k < N_ACTION_KINDS; k++) {
        for (m = action_kinds[k]; m->name != NULL; m++) {
            if (strcmp(m->name, key) == 0) {
                return (int) k;
            }
        }
    }
    return -1;
}

/* An action without a kind is most likely a typo'd one: name the key. */
static int
no_action_kind(wr_vctx_t *c, json_t *v)
{
    const wr_vmember_t *tabs[N_ACTION_KINDS + 1] = {
        common_action_members, pass_members, return_members, share_members,
        proxy_members, metrics_members,
    };
    const char         *key;
    json_t             *member;
    size_t              t;
    bool                known;

    json_object_foreach(v, key, member) {
        known = false;
        for (t = 0; t < N_ACTION_KINDS + 1; t++) {
            const wr_vmember_t *m;

            for (m = tabs[t]; m->name != NULL; m++) {
                known = known || strcmp(m->name, key) == 0;
            }
        }
        if (!known) {
            if (wr_v_push_key(c, key) < 0) {
                return -1;
            }
            return wr_v_unknown_key(c, key, tabs, N_ACTION_KINDS + 1);
        }
    }
    return wr_v_error(c, "An action must have one of \"pass\", \"return\", "
                      "\"share\", or \"proxy\".");
}

static int
action_kind(wr_vctx_t *c, json_t *v)
{
    int    kind = -1;
    size_t k;

    for (k = 0; k < N_ACTION_KINDS; k++) {
        if (json_object_get(v, action_kinds[k][0].name) == NULL) {
            continue;
        }
        if (kind >= 0) {
            return wr_v_error(c, "An action must have only one of \"pass\", "
                              "\"return\", \"share\", or \"proxy\", but this "
                              "one has both \"%s\" and \"%s\".",
                              action_kinds[kind][0].name, action_kinds[k][0].name);
        }
        kind = (int) k;
    }
    return kind >= 0 ? kind : no_action_kind(c, v);
}

static int
check_action(wr_vctx_t *c, json_t *v, const char *name)
{
    const wr_vmember_t *tabs[2] = { common_action_members, NULL };
    const char         *key;
    json_t             *member;
    int                 kind = action_kind(c, v);

    if (kind < 0) {
        return -1;
    }
    /* "index" next to "return" is a misplaced key, not an unknown one. */
    json_object_foreach(v, key, member) {
        int other = kind_of_key(key);

        if (other >= 0 && other != kind) {
            return wr_v_error_at(c, key, "The \"%s\" key is not allowed with "
                                 "\"%s\".", key, action_kinds[kind][0].name);
        }
    }
    tabs[1] = action_kinds[kind];
    if (wr_v_members(c, v, tabs, 2) < 0) {
        return -1;
    }
    return c->xref ? wr_v_pass_target(c, v, "The route action") : 0;
}

/* ----------------------------------------------------------------- steps */

static const wr_vmember_t step_members[] = {
    { "match", &(const wr_vdesc_t) {
        .types = WR_VT_OBJ, .members = match_members }, false },
    { "action", &(const wr_vdesc_t) {
        .types = WR_VT_OBJ, .check = check_action }, true },
    { NULL, NULL, false },
};

static const wr_vdesc_t step = { .types = WR_VT_OBJ, .members = step_members };
static const wr_vdesc_t route = { .types = WR_VT_ARR, .items = &step };

const wr_vdesc_t wr_vd_routes = {
    .types = WR_VT_ARR | WR_VT_OBJ, .items = &step, .values = &route,
};
