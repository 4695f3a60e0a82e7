/*
 * Configuration validation: the schema engine (see validate_int.h) and the
 * sections that are small enough to live with it: the top level, listeners,
 * upstreams, settings and access_log. Routes and applications have their own
 * files.
 */
#include <arpa/inet.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "conf/validate_int.h"
#include "core/addr.h"

#define STATUS_BAD         400
#define INVALID_CONF       "Invalid configuration."
#define MAX_SUGGEST_DIST   2        /* edits for a "Did you mean" */
#define MAX_SUGGEST_LEN    64       /* longer keys aren't typos of ours */
#define PORT_MAX           65535
#define UNIX_PREFIX        "unix:"
#define UNIX_PREFIX_LEN    (sizeof(UNIX_PREFIX) - 1)
#define SUN_PATH_SIZE      sizeof(((struct sockaddr_un *) 0)->sun_path)

/* ------------------------------------------------------------------ paths */

int
wr_v_push_key(wr_vctx_t *c, const char *key)
{
    if (c->depth >= WR_V_MAX_PATH) {
        return wr_v_error(c, "The configuration is nested too deeply.");
    }
    c->seg[c->depth++] = (wr_vseg_t) { .key = key };
    return 0;
}

int
wr_v_push_index(wr_vctx_t *c, size_t index)
{
    if (c->depth >= WR_V_MAX_PATH) {
        return wr_v_error(c, "The configuration is nested too deeply.");
    }
    c->seg[c->depth++] = (wr_vseg_t) { .key = NULL, .index = index };
    return 0;
}

void
wr_v_pop(wr_vctx_t *c)
{
    c->depth--;
}

/* Writes the RFC 6901 pointer of the current path; "~" and "/" escaped. */
static char *
build_path(const wr_vctx_t *c)
{
    char   *buf = NULL;
    size_t  size = 0;
    FILE   *f = open_memstream(&buf, &size);
    size_t  i;

    if (f == NULL) {
        return NULL;
    }
    for (i = 0; i < c->depth; i++) {
        const char *k = c->seg[i].key;

        if (k == NULL) {
            fprintf(f, "/%zu", c->seg[i].index);
            continue;
        }
        fputc('/', f);
        for (; *k != '\0'; k++) {
            if (*k == '~') {
                fputs("~0", f);
            } else if (*k == '/') {
                fputs("~1", f);
            } else {
                fputc(*k, f);
            }
        }
    }
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}

static int verror(wr_vctx_t *c, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

static int
verror(wr_vctx_t *c, const char *fmt, va_list ap)
{
    char *detail = NULL, *path = build_path(c);

    if (vasprintf(&detail, fmt, ap) < 0) {
        detail = NULL;
    }
    wr_conf_error_set(c->err, STATUS_BAD, INVALID_CONF, path, "%s",
                      detail != NULL ? detail : "");
    free(detail);
    free(path);
    return -1;
}

int
wr_v_error(wr_vctx_t *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    verror(c, fmt, ap);
    va_end(ap);
    return -1;
}

int
wr_v_error_at(wr_vctx_t *c, const char *key, const char *fmt, ...)
{
    va_list ap;

    /* One slot is always left for this: errors are reported, not lost. */
    if (c->depth < WR_V_MAX_PATH) {
        c->seg[c->depth++] = (wr_vseg_t) { .key = key };
        va_start(ap, fmt);
        verror(c, fmt, ap);
        va_end(ap);
        c->depth--;
    } else {
        va_start(ap, fmt);
        verror(c, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ------------------------------------------------------------ suggestions */

static size_t
levenshtein(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), i, j;
    size_t row[MAX_SUGGEST_LEN + 1];

    for (j = 0; j <= lb; j++) {
        row[j] = j;
    }
    for (i = 1; i <= la; i++) {
        size_t diag = row[0];

        row[0] = i;
        for (j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);

            if (up + 1 < best) {
                best = up + 1;
            }
            if (row[j - 1] + 1 < best) {
                best = row[j - 1] + 1;
            }
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* The allowed key closest to key, if it is close enough to be a typo. */
static const char *
closest_key(const char *key, const wr_vmember_t *const *tabs, size_t ntabs)
{
    const char *best = NULL;
    size_t      best_dist = MAX_SUGGEST_DIST + 1, t, len = strlen(key);
    const wr_vmember_t *m;

    if (len > MAX_SUGGEST_LEN) {
        return NULL;
    }
    for (t = 0; t < ntabs; t++) {
        for (m = tabs[t]; m->name != NULL; m++) {
            size_t d;

            if (strlen(m->name) > MAX_SUGGEST_LEN) {
                continue;
            }
            d = levenshtein(key, m->name);
            /* "ab" is 2 edits from "if" but not a typo of it. */
            if (d < best_dist && d < len && d < strlen(m->name)) {
                best = m->name;
                best_dist = d;
            }
        }
    }
    return best;
}

/* ------------------------------------------------------------- the engine */

static const struct {
    unsigned    type;
    const char *text;
} type_names[] = {
    { WR_VT_STR, "a string" },
    { WR_VT_NUM, "a number" },          /* before INT: covers both */
    { WR_VT_INT, "an integer" },
    { WR_VT_BOOL, "a boolean" },
    { WR_VT_OBJ, "an object" },
    { WR_VT_ARR, "an array" },
    { WR_VT_NULL, "null" },
};

#define N_TYPE_NAMES (sizeof(type_names) / sizeof(type_names[0]))

static unsigned
type_of(json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_STRING:  return WR_VT_STR;
    case JSON_INTEGER: return WR_VT_INT;
    case JSON_REAL:    return WR_VT_REAL;
    case JSON_TRUE:
    case JSON_FALSE:   return WR_VT_BOOL;
    case JSON_OBJECT:  return WR_VT_OBJ;
    case JSON_ARRAY:   return WR_VT_ARR;
    default:           return WR_VT_NULL;
    }
}

/* "a string or an array", "a string, a boolean, or null". */
static void
types_text(unsigned types, char *buf, size_t size)
{
    const char *parts[N_TYPE_NAMES];
    size_t      n = 0, i, used = 0;

    for (i = 0; i < N_TYPE_NAMES; i++) {
        if ((types & type_names[i].type) == type_names[i].type) {
            parts[n++] = type_names[i].text;
            types &= ~type_names[i].type;
        }
    }
    buf[0] = '\0';
    for (i = 0; i < n && used < size; i++) {
        const char *sep = i == 0 ? "" : (i + 1 < n ? ", " : (n > 2 ? ", or " : " or "));
        int         w = snprintf(buf + used, size - used, "%s%s", sep, parts[i]);

        used += w > 0 ? (size_t) w : 0;
    }
}

/* Starts each sentence about v: "The "x" value" or, for array items,
 * "Each value in the "x" array". */
#define SUBJECT_FMT         "%s \"%s\" %s"
#define SUBJECT(in_array, name) \
    (in_array) ? "Each value in the" : "The", (name), (in_array) ? "array" : "value"

static int
check_scalar(wr_vctx_t *c, json_t *v, const wr_vdesc_t *d, const char *name,
             bool in_array)
{
    if (json_is_integer(v) && (d->flags & WR_VF_RANGE)) {
        json_int_t n = json_integer_value(v);

        if (n < d->min || n > d->max) {
            if (d->max == LLONG_MAX) {
                return wr_v_error(c, SUBJECT_FMT " must be an integer greater "
                                  "than or equal to %lld.",
                                  SUBJECT(in_array, name), d->min);
            }
            return wr_v_error(c, SUBJECT_FMT " must be an integer between "
                              "%lld and %lld.", SUBJECT(in_array, name),
                              d->min, d->max);
        }
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);

        if (strlen(s) != json_string_length(v)) {
            return wr_v_error(c, SUBJECT_FMT " must not contain a NUL "
                              "character.", SUBJECT(in_array, name));
        }
        if ((d->flags & WR_VF_NONEMPTY) && s[0] == '\0') {
            return wr_v_error(c, SUBJECT_FMT " must not be empty.",
                              SUBJECT(in_array, name));
        }
        if ((d->flags & WR_VF_ABSPATH) && s[0] != '/') {
            return wr_v_error(c, SUBJECT_FMT " must be an absolute path.",
                              SUBJECT(in_array, name));
        }
    }
    return 0;
}

static int value_at(wr_vctx_t *c, json_t *v, const wr_vdesc_t *d,
                    const char *name, bool in_array);

static int
check_map(wr_vctx_t *c, json_t *obj, const wr_vdesc_t *d)
{
    const char *key;
    json_t     *v;

    json_object_foreach(obj, key, v) {
        if (wr_v_push_key(c, key) < 0) {
            return -1;
        }
        if ((d->key_check != NULL && d->key_check(c, key) < 0)
            || (d->values != NULL && value_at(c, v, d->values, key, false) < 0))
        {
            return -1;
        }
        wr_v_pop(c);
    }
    return 0;
}

static int
check_items(wr_vctx_t *c, json_t *arr, const wr_vdesc_t *d, const char *name)
{
    size_t  i;
    json_t *v;

    if ((d->flags & WR_VF_NONEMPTY) && json_array_size(arr) == 0) {
        return wr_v_error(c, "The \"%s\" array must not be empty.", name);
    }
    json_array_foreach(arr, i, v) {
        if (wr_v_push_index(c, i) < 0 || value_at(c, v, d->items, name, true) < 0) {
            return -1;
        }
        wr_v_pop(c);
    }
    return 0;
}

static int
value_at(wr_vctx_t *c, json_t *v, const wr_vdesc_t *d, const char *name,
         bool in_array)
{
    char text[128];

    if ((type_of(v) & d->types) == 0) {
        types_text(d->types, text, sizeof(text));
        return wr_v_error(c, SUBJECT_FMT " must be %s.", SUBJECT(in_array, name),
                          text);
    }
    if (check_scalar(c, v, d, name, in_array) < 0) {
        return -1;
    }
    if (json_is_object(v)) {
        if (d->members != NULL
            && wr_v_members(c, v, &d->members, 1) < 0) {
            return -1;
        }
        if ((d->values != NULL || d->key_check != NULL) && check_map(c, v, d) < 0) {
            return -1;
        }
    }
    if (json_is_array(v) && d->items != NULL && check_items(c, v, d, name) < 0) {
        return -1;
    }
    return d->check != NULL ? d->check(c, v, name) : 0;
}

int
wr_v_value(wr_vctx_t *c, json_t *v, const wr_vdesc_t *d, const char *name)
{
    return value_at(c, v, d, name, false);
}

static const wr_vmember_t *
find_member(const char *key, const wr_vmember_t *const *tabs, size_t ntabs)
{
    const wr_vmember_t *m;
    size_t              t;

    for (t = 0; t < ntabs; t++) {
        for (m = tabs[t]; m->name != NULL; m++) {
            if (strcmp(m->name, key) == 0) {
                return m;
            }
        }
    }
    return NULL;
}

int
wr_v_unknown_key(wr_vctx_t *c, const char *key, const wr_vmember_t *const *tabs,
                 size_t ntabs)
{
    const char *close = closest_key(key, tabs, ntabs);

    wr_v_error(c, "Unknown key \"%s\".", key);
    if (close != NULL && asprintf(&c->err->suggestion, "Did you mean \"%s\"?",
                                  close) < 0) {
        c->err->suggestion = NULL;
    }
    return -1;
}

int
wr_v_members(wr_vctx_t *c, json_t *obj, const wr_vmember_t *const *tabs,
             size_t ntabs)
{
    const wr_vmember_t *m;
    const char         *key;
    json_t             *v;
    size_t              t;

    json_object_foreach(obj, key, v) {
        if (wr_v_push_key(c, key) < 0) {
            return -1;
        }
        m = find_member(key, tabs, ntabs);
        if (m == NULL) {
            return wr_v_unknown_key(c, key, tabs, ntabs);
        }
        if (wr_v_value(c, v, m->desc, key) < 0) {
            return -1;
        }
        wr_v_pop(c);
    }
    for (t = 0; t < ntabs; t++) {
        for (m = tabs[t]; m->name != NULL; m++) {
            if (m->required && json_object_get(obj, m->name) == NULL) {
                return wr_v_error(c, "Required key \"%s\" is missing.", m->name);
            }
        }
    }
    return 0;
}

/* -------------------------------------------------------------- addresses */

int
wr_v_ip_family(const char *s, size_t len)
{
    unsigned char bin[sizeof(struct in6_addr)];

    return wr_ip_parse(s, len, bin);
}

long
wr_v_port(const char *s, size_t len, long min)
{
    long   port = 0;
    size_t i;

    if (len == 0 || len > sizeof("65535") - 1) {
        return -1;
    }
    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        port = port * 10 + (s[i] - '0');
    }
    return port >= min && port <= PORT_MAX ? port : -1;
}

static const char *
unix_address(const char *path)
{
    /* "@name" is Linux's abstract namespace; else a filesystem path. */
    if (path[0] != '/' && path[0] != '@') {
        return "the UNIX socket path must be absolute";
    }
    if (path[1] == '\0') {
        return "the UNIX socket path is empty";
    }
    if (strlen(path) >= SUN_PATH_SIZE) {
        return "the UNIX socket path is too long";
    }
    return NULL;
}

const char *
wr_v_sockaddr(const char *s, unsigned allow)
{
    const char *host, *port, *end;
    size_t      host_len;
    int         family;

    if (strncmp(s, UNIX_PREFIX, UNIX_PREFIX_LEN) == 0) {
        if (!(allow & WR_VA_UNIX)) {
            return "UNIX domain sockets are not allowed here";
        }
        return unix_address(s + UNIX_PREFIX_LEN);
    }
    if (s[0] == '[') {
        end = strchr(s, ']');
        if (end == NULL) {
            return "the IPv6 address lacks a closing \"]\"";
        }
        host = s + 1;
        host_len = (size_t) (end - host);
        if (end[1] != ':') {
            return "the port is missing";
        }
        port = end + 2;
        family = wr_v_ip_family(host, host_len);
        if (family != AF_INET6) {
            return "the IPv6 address is invalid";
        }
    } else {
        end = strrchr(s, ':');
        if (end == NULL) {
            return "the port is missing";
        }
        host = s;
        host_len = (size_t) (end - s);
        port = end + 1;
        if (memchr(host, ':', host_len) != NULL) {
            return "an IPv6 address must be written in brackets";
        }
        if (host_len == 1 && host[0] == '*') {
            if (!(allow & WR_VA_WILDCARD)) {
                return "a wildcard address is not allowed here";
            }
        } else if (wr_v_ip_family(host, host_len) != AF_INET) {
            return "the address must be \"*\", an IPv4 address, or an IPv6 "
                   "address in brackets";
        }
    }
    if (wr_v_port(port, strlen(port), 1) < 0) {
        return "the port must be a number between 1 and 65535";
    }
    return NULL;
}

/* ------------------------------------------------------- shared descriptors */

const wr_vdesc_t wr_vd_str = { .types = WR_VT_STR };
const wr_vdesc_t wr_vd_name = { .types = WR_VT_STR, .flags = WR_VF_NONEMPTY };
const wr_vdesc_t wr_vd_bool = { .types = WR_VT_BOOL };
const wr_vdesc_t wr_vd_uint = {
    .types = WR_VT_INT, .flags = WR_VF_RANGE, .min = 0, .max = LLONG_MAX,
};
const wr_vdesc_t wr_vd_abspath = {
    .types = WR_VT_STR, .flags = WR_VF_NONEMPTY | WR_VF_ABSPATH,
};
const wr_vdesc_t wr_vd_names = {
    .types = WR_VT_STR | WR_VT_ARR, .flags = WR_VF_NONEMPTY, .items = &wr_vd_name,
};
const wr_vdesc_t wr_vd_name_array = { .types = WR_VT_ARR, .items = &wr_vd_name };

/* -------------------------------------------------------------- listeners */

#define BACKLOG_MIN     1
#define BACKLOG_MAX     INT_MAX

static int
check_listener_address(wr_vctx_t *c, const char *key)
{
    const char *why = wr_v_sockaddr(key, WR_VA_WILDCARD | WR_VA_UNIX);

    if (why != NULL) {
        return wr_v_error(c, "The listener address \"%s\" is invalid: %s.",
                          key, why);
    }
    return 0;
}

static const wr_vmember_t tls_session_members[] = {
    { "cache_size", &wr_vd_uint, false },
    { "timeout", &wr_vd_uint, false },
    /* true/false, or the ticket key(s), base64 */
    { "tickets", &(const wr_vdesc_t) {
        .types = WR_VT_BOOL | WR_VT_STR | WR_VT_ARR, .flags = WR_VF_NONEMPTY,
        .items = &wr_vd_name }, false },
    { NULL, NULL, false },
};

/*
 * Certificate bundles live in the control API's /certificates store: a
 * listener may name only one stored there, as in Unit. Checked in the
 * cross-reference pass.
 */
static int
check_certificate(wr_vctx_t *c, json_t *v, const char *name)
{
    if (c->xref && json_is_string(v)
        && json_object_get(c->certs, json_string_value(v)) == NULL) {
        return wr_v_error(c, "Certificate \"%s\" is not found.",
                          json_string_value(v));
    }
    return 0;
}

static const wr_vdesc_t certificate = {
    .types = WR_VT_STR, .flags = WR_VF_NONEMPTY, .check = check_certificate,
};

static const wr_vmember_t tls_members[] = {
    { "certificate", &(const wr_vdesc_t) {
        .types = WR_VT_STR | WR_VT_ARR, .flags = WR_VF_NONEMPTY,
        .items = &certificate, .check = check_certificate }, true },
    { "conf_commands", &(const wr_vdesc_t) {
        .types = WR_VT_OBJ, .values = &wr_vd_str }, false },
    { "session", &(const wr_vdesc_t) {
        .types = WR_VT_OBJ, .members = tls_session_members }, false },
    { NULL, NULL, false },
};

static int
check_forwarded(wr_vctx_t *c, json_t *v, const char *name)
{
    if (json_object_get(v, "client_ip") == NULL
        && json_object_get(v, "protocol") == NULL)
    {
        return wr_v_error(c, "The \"forwarded\" object must have either "
                          "\"client_ip\" or \"protocol\".");
    }
    return 0;
}

static const wr_vmember_t forwarded_members[] = {
    { "client_ip", &wr_vd_name, false },
    { "protocol", &wr_vd_name, false },
    { "source", &wr_vd_address_patterns, true },
    { "recursive", &wr_vd_bool, false },
    { NULL, NULL, false },
};

static int
check_listener(wr_vctx_t *c, json_t *v, const char *name)
{
    char *who = NULL;
    int   rc;

    if (!c->xref) {
        return 0;
    }
    if (asprintf(&who, "Listener \"%s\"", name) < 0) {
        return wr_conf_error_set(c->err, 500, "Memory allocation failed.",
                                 NULL, NULL);
    }
    rc = wr_v_pass_target(c, v, who);
    free(who);
    return rc;
}

static const wr_vmember_t listener_members[] = {
    { "pass", &wr_vd_pass, true },
    { "backlog", &(const wr_vdesc_t) {
        .types = WR_VT_INT, .flags = WR_VF_RANGE,
        .min = BACKLOG_MIN, .max = BACKLOG_MAX }, false },
    { "tls", &(const wr_vdesc_t) {
        .types = WR_VT_OBJ, .members = tls_members }, false },
    { "forwarded", &(const wr_vdesc_t) {
        .types = WR_VT_OBJ, .members = forwarded_members,
        .check = check_forwarded }, false },
    { NULL, NULL, false },
};

static const wr_vdesc_t listener = {
    .types = WR_VT_OBJ, .members = listener_members, .check = check_listener,
};

static const wr_vdesc_t listeners = {
    .types = WR_VT_OBJ, .key_check = check_listener_address, .values = &listener,
};

/* -------------------------------------------------------------- upstreams */

#define WEIGHT_MAX      1000000.0

static int
check_server_address(wr_vctx_t *c, const char *key)
{
    const char *why = wr_v_sockaddr(key, 0);

    if (why != NULL) {
        return wr_v_error(c, "The upstream server address \"%s\" is invalid: "
                          "%s.", key, why);
    }
    return 0;
}

static int
check_weight(wr_vctx_t *c, json_t *v, const char *name)
{
    double w = json_number_value(v);

    if (!(w > 0 && w <= WEIGHT_MAX)) {
        return wr_v_error(c, "The \"weight\" value must be a number greater "
                          "than 0 and at most 1000000.");
    }
    return 0;
}

static const wr_vmember_t server_members[] = {
    { "weight", &(const wr_vdesc_t) {
        .types = WR_VT_NUM, .check = check_weight }, false },
    { NULL, NULL, false },
};

static const wr_vmember_t upstream_members[] = {
    { "servers", &(const wr_vdesc_t) {
        .types = WR_VT_OBJ, .key_check = check_server_address,
        .values = &(const wr_vdesc_t) {
            .types = WR_VT_OBJ, .members = server_members } }, true },
    { NULL, NULL, false },
};

static const wr_vdesc_t upstreams = {
    .types = WR_VT_OBJ,
    .values = &(const wr_vdesc_t) { .types = WR_VT_OBJ, .members = upstream_members },
};

/* --------------------------------------------------------------- settings */

/* Timeouts are seconds that become 32-bit milliseconds inside. */
#define TIMEOUT_MAX             (INT_MAX / 1000)
#define BODY_BUFFER_MIN         1
#define HEADER_BUFFER_MIN       1024   /* must hold a request line */
#define LISTEN_THREADS_MAX      1024
#define TELEMETRY_BATCH_MAX     65536   /* spans per export: the queue holds 16 batches */
#define PROXY_KEEPALIVE_MAX     1024   /* kept connections per upstream (Warren) */
#define H2_STREAMS_MAX          1024   /* http2_max_concurrent_streams (Warren) */

static int
check_temp_path(wr_vctx_t *c, json_t *v, const char *name)
{
    if (strlen(json_string_value(v)) >= WR_CONF_PATH_MAX) {
        return wr_v_error(c, "The \"%s\" path is longer than %d bytes.", name,
                          WR_CONF_PATH_MAX - 1);
    }
    return 0;
}

static const wr_vdesc_t timeout = {
    .types = WR_VT_INT, .flags = WR_VF_RANGE, .min = 0, .max = TIMEOUT_MAX,
};

static const wr_vmember_t websocket_members[] = {
    { "read_timeout", &timeout, false },
    { "keepalive_interval", &timeout, false },
    { "max_frame_size", &(const wr_vdesc_t) {
        .types = WR_VT_INT, .flags = WR_VF_RANGE, .min = 1, .max = INT_MAX }, false },
    { NULL, NULL, false },
};

static const wr_vmember_t static_members[] = {
    /* MIME type -> extension(s) */
    { "mime_types", &(const wr_vdesc_t) {
        .types = WR_VT_OBJ, .values = &wr_vd_names }, false },
    { NULL, NULL, false },
};

static const wr_vmember_t http_members[] = {
    { "header_read_timeout", &timeout, false },
    { "body_read_timeout", &timeout, false },
    { "send_timeout", &timeout, false },
    { "idle_timeout", &timeout, false },
    { "body_buffer_size", &(const wr_vdesc_t) {
        .types = WR_VT_INT, .flags = WR_VF_RANGE,
        .min = BODY_BUFFER_MIN, .max = INT_MAX }, false },
    { "max_body_size", &(const wr_vdesc_t) {
        .types = WR_VT_INT, .flags = WR_VF_RANGE, .min = 0, .max = LONG_MAX }, false },
    { "body_temp_path", &(const wr_vdesc_t) {
        .types = WR_VT_STR, .flags = WR_VF_NONEMPTY | WR_VF_ABSPATH,
        .check = check_temp_path }, false },
    { "large_header_buffer_size", &(const wr_vdesc_t) {
        .types = WR_VT_INT, .flags = WR_VF_RANGE,
        .min = HEADER_BUFFER_MIN, .max = INT_MAX }, false },
    { "large_header_buffers", &(const wr_vdesc_t) {
        .types = WR_VT_INT, .flags = WR_VF_RANGE, .min = 1, .max = INT_MAX }, false },
    { "discard_unsafe_fields", &wr_vd_bool, false },
    { "log_route", &wr_vd_bool, false },
    { "server_version", &wr_vd_bool, false },
    { "chunked_transform", &wr_vd_bool, false },
    { "proxy_keepalive", &(const wr_vdesc_t) {
        .types = WR_VT_INT, .flags = WR_VF_RANGE,
        .min = 0, .max = PROXY_KEEPALIVE_MAX }, false },
    { "http2", &wr_vd_bool, false },
    { "http2_max_concurrent_streams", &(const wr_vdesc_t) {
        .types = WR_VT_INT, .flags = WR_VF_RANGE, .min = 1, .max = H2_STREAMS_MAX }, false },
    { "websocket", &(const wr_vdesc_t) {
        .types = WR_VT_OBJ, .members = websocket_members }, false },
    { "static", &(const wr_vdesc_t) {
        .types = WR_VT_OBJ, .members = static_members }, false },
    { NULL, NULL, false },
};

/* settings.js_module names modules of the control API's /js_modules store,
 * as Unit's; checked in the cross-reference pass. */
static int
check_js_module(wr_vctx_t *c, json_t *v, const char *name)
{
    if (c->xref && json_is_string(v)
        && json_object_get(c->js_modules, json_string_value(v)) == NULL) {
        return wr_v_error(c, "JS module \"%s\" is not found.", json_string_value(v));
    }
    return 0;
}

static const wr_vdesc_t js_module_name = {
    .types = WR_VT_STR, .flags = WR_VF_NONEMPTY, .check = check_js_module,
};

/* settings.telemetry (Unit 1.34): spans to an OTLP collector. */
static int
check_telemetry_endpoint(wr_vctx_t *c, json_t *v, const char *name)
{
    const char *url = json_string_value(v);
    const char *host = strncmp(url, "http://", 7) == 0 ? url + 7
                       : strncmp(url, "https://", 8) == 0 ? url + 8 : NULL;

    if (host == NULL || host[0] == '\0' || host[0] == '/' || host[0] == ':') {
        return wr_v_error(c, "The \"endpoint\" must be an http:// or https:// URL with a host.");
    }
    return 0;
}

static int
check_telemetry_protocol(wr_vctx_t *c, json_t *v, const char *name)
{
    const char *p = json_string_value(v);

    if (strcmp(p, "http") != 0 && strcmp(p, "grpc") != 0) {
        return wr_v_error(c, "The \"protocol\" must be \"http\" or \"grpc\".");
    }
    return 0;
}

static int
check_ratio(wr_vctx_t *c, json_t *v, const char *name)
{
    double r = json_number_value(v);

    if (!(r >= 0 && r <= 1)) {
        return wr_v_error(c, "The \"sampling_ratio\" must be a number between 0 and 1.");
    }
    return 0;
}

static const wr_vmember_t telemetry_members[] = {
    { "endpoint", &(const wr_vdesc_t) {
        .types = WR_VT_STR, .flags = WR_VF_NONEMPTY, .check = check_telemetry_endpoint }, true },
    { "protocol", &(const wr_vdesc_t) {
        .types = WR_VT_STR, .flags = WR_VF_NONEMPTY, .check = check_telemetry_protocol }, true },
    { "batch_size", &(const wr_vdesc_t) {
        .types = WR_VT_INT, .flags = WR_VF_RANGE, .min = 1, .max = TELEMETRY_BATCH_MAX }, false },
    { "sampling_ratio", &(const wr_vdesc_t) {
        .types = WR_VT_NUM, .check = check_ratio }, false },
    { NULL, NULL, false },
};

static const wr_vmember_t settings_members[] = {
    { "http", &(const wr_vdesc_t) {
        .types = WR_VT_OBJ, .members = http_members }, false },
    { "js_module", &(const wr_vdesc_t) {
        .types = WR_VT_STR | WR_VT_ARR, .flags = WR_VF_NONEMPTY, .check = check_js_module,
        .items = &js_module_name }, false },
    { "listen_threads", &(const wr_vdesc_t) {
        .types = WR_VT_INT, .flags = WR_VF_RANGE,
        .min = 0, .max = LISTEN_THREADS_MAX }, false },
    { "telemetry", &(const wr_vdesc_t) {
        .types = WR_VT_OBJ, .members = telemetry_members }, false },
    { NULL, NULL, false },
};

/* ------------------------------------------------------------- access_log */

static const wr_vmember_t access_log_members[] = {
    { "path", &wr_vd_abspath, true },
    /* a line template, or an object of field -> template (JSON lines) */
    { "format", &(const wr_vdesc_t) {
        .types = WR_VT_STR | WR_VT_OBJ, .values = &wr_vd_str }, false },
    { "if", &wr_vd_name, false },
    { NULL, NULL, false },
};

static const wr_vdesc_t access_log = {
    .types = WR_VT_STR | WR_VT_OBJ, .flags = WR_VF_NONEMPTY | WR_VF_ABSPATH,
    .members = access_log_members,
};

/* -------------------------------------------------------------- top level */

static const wr_vmember_t root_members[] = {
    { "listeners", &listeners, false },
    { "routes", &wr_vd_routes, false },
    { "applications", &wr_vd_applications, false },
    { "upstreams", &upstreams, false },
    { "settings", &(const wr_vdesc_t) {
        .types = WR_VT_OBJ, .members = settings_members }, false },
    { "access_log", &access_log, false },
    { NULL, NULL, false },
};

static const wr_vdesc_t root_desc = { .types = WR_VT_OBJ, .members = root_members };

int
wr_conf_validate(json_t *root, wr_conf_error_t *err)
{
    return wr_conf_validate_stored(root, NULL, NULL, err);
}

int
wr_conf_validate_stored(json_t *root, json_t *certs, json_t *js_modules, wr_conf_error_t *err)
{
    wr_vctx_t c = { .root = root, .err = err, .certs = certs, .js_modules = js_modules };

    if (root == NULL || !json_is_object(root)) {
        return wr_conf_error_set(err, STATUS_BAD, INVALID_CONF, "",
                                 "The configuration must be an object.");
    }
    if (wr_v_value(&c, root, &root_desc, "config") < 0) {
        return -1;
    }
    c.xref = true;
    return wr_v_value(&c, root, &root_desc, "config");
}
