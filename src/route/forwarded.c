/*
 * Unit's listener "forwarded" object: behind a trusted proxy, the client's
 * address and scheme come from request fields (X-Forwarded-For and friends)
 * instead of the socket.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>

#include "core/addr.h"
#include "route/route_int.h"

struct wr_forwarded {
    wr_addr_rule_t source;
    char          *client_ip;     /* field name, or NULL */
    char          *protocol;      /* field name, or NULL */
    int            recursive;
};

void wr_forwarded_free(wr_forwarded_t *f)
{
    if (f == NULL)
        return;
    wr_addr_rule_free(&f->source);
    free(f->client_ip);
    free(f->protocol);
    free(f);
}

wr_forwarded_t *wr_forwarded_compile(json_t *v, char *err, size_t errlen)
{
    wr_forwarded_t *f = calloc(1, sizeof(*f));
    const char *ip = json_string_value(json_object_get(v, "client_ip"));
    const char *proto = json_string_value(json_object_get(v, "protocol"));

    if (f == NULL)
        return NULL;
    if (wr_addr_rule_compile(&f->source, json_object_get(v, "source"), err, errlen) < 0) {
        wr_forwarded_free(f);
        return NULL;
    }
    f->client_ip = ip ? strdup(ip) : NULL;
    f->protocol = proto ? strdup(proto) : NULL;
    f->recursive = json_is_true(json_object_get(v, "recursive"));
    return f;
}

/* "1.2.3.4", "::1" or "[::1]" (a port after brackets is ignored). */
static int parse_ip(const char *s, size_t n, struct sockaddr_storage *ss)
{
    struct sockaddr_in *in = (struct sockaddr_in *) ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) ss;
    unsigned char bin[16];
    int family;

    if (n > 0 && s[0] == '[') {
        const char *end = memchr(s, ']', n);
        if (end == NULL)
            return -1;
        s++;
        n = (size_t) (end - s);
    }
    family = wr_ip_parse(s, n, bin);
    memset(ss, 0, sizeof(*ss));
    if (family == AF_INET) {
        in->sin_family = AF_INET;
        memcpy(&in->sin_addr, bin, sizeof(in->sin_addr));
    } else if (family == AF_INET6) {
        in6->sin6_family = AF_INET6;
        memcpy(&in6->sin6_addr, bin, sizeof(in6->sin6_addr));
    }
    return family ? 0 : -1;
}

static void trim(const char **s, size_t *n)
{
    while (*n > 0 && (**s == ' ' || **s == '\t'))
        (*s)++, (*n)--;
    while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
        (*n)--;
}

/*
 * Walk the comma-separated entries of every client_ip field from the right
 * (the last proxy appended last). Returns 1 with *client set, 0 if none.
 */
static int pick_client(const wr_forwarded_t *f, const wr_req_view_t *r,
                       struct sockaddr_storage *client)
{
    struct sockaddr_storage cand;
    int found = 0;
    size_t nlen = strlen(f->client_ip);

    for (size_t i = r->nfields; i-- > 0;) {
        const wr_http_field_t *fl = &r->fields[i];
        size_t end;

        if (fl->name_len != nlen || strncasecmp(fl->name, f->client_ip, nlen) != 0)
            continue;
        end = fl->value_len;
        while (end > 0) {
            size_t start = end;
            const char *s;
            size_t n;

            while (start > 0 && fl->value[start - 1] != ',')
                start--;
            s = fl->value + start;
            n = end - start;
            trim(&s, &n);
            end = start > 0 ? start - 1 : 0;
            if (parse_ip(s, n, &cand) < 0)
                return found;          /* garbage: stop at what we trust */
            *client = cand;
            found = 1;
            if (!f->recursive
                || !wr_addr_rule_match(&f->source, (const struct sockaddr *) &cand))
                return 1;
        }
    }
    return found;
}

void wr_forwarded_apply(const wr_forwarded_t *f, wr_req_view_t *r,
                        struct sockaddr_storage *client)
{
    if (f == NULL || r->remote == NULL || !wr_addr_rule_match(&f->source, r->remote))
        return;
    if (f->client_ip && pick_client(f, r, client))
        r->remote = (const struct sockaddr *) client;
    if (f->protocol) {
        size_t nlen = strlen(f->protocol);
        for (size_t i = 0; i < r->nfields; i++) {
            const wr_http_field_t *fl = &r->fields[i];
            if (fl->name_len == nlen && strncasecmp(fl->name, f->protocol, nlen) == 0) {
                r->tls = (fl->value_len == 5 && strncasecmp(fl->value, "https", 5) == 0)
                         || (fl->value_len == 2 && strncasecmp(fl->value, "on", 2) == 0);
                break;
            }
        }
    }
}
