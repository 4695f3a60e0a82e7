/*
 * Address patterns of "source" and "destination": "*", "unix", an IP, an
 * "IP/prefix" or an "IP-IP" range (IPv6 in brackets when a port follows),
 * then optionally ":port" or ":lo-hi"; "!" negates. Every host form becomes
 * an inclusive byte range, so matching is two memcmp()s and a port test.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "core/addr.h"
#include "route/route_int.h"

#define WR_PORT_MAX      65535
#define WR_IP_TEXT_MAX   64
#define WR_V4_LEN        4
#define WR_V6_LEN        16
#define WR_BITS          8

static size_t
family_len(int family)
{
    return family == AF_INET ? WR_V4_LEN : WR_V6_LEN;
}

/* Parses an address of either family into buf; returns the family or 0. */

static int
prefix_range(wr_addr_pat_t *p, const char *digits)
{
    char  *end;
    long   bits = strtol(digits, &end, 10);
    size_t alen = family_len(p->family);

    if (*end != '\0' || end == digits || bits < 0 || bits > (long) (alen * WR_BITS)) {
        return -1;
    }
    for (size_t i = 0; i < alen; i++) {
        long          keep = bits - (long) (i * WR_BITS);
        unsigned char mask = keep >= WR_BITS ? 0xff
                             : keep <= 0 ? 0 : (unsigned char) (0xff << (WR_BITS - keep));

        p->lo[i] &= mask;
        p->hi[i] = p->lo[i] | (unsigned char) ~mask;
    }
    return 0;
}

/* host[0..len): "*", IP, IP/prefix or IP-IP. */
static int
host_parse(wr_addr_pat_t *p, const char *s, size_t len)
{
    char        buf[WR_IP_TEXT_MAX];
    const char *sep;

    if (len == 0 || (len == 1 && s[0] == '*')) {
        p->kind = WR_ADDR_ANY;
        return 0;
    }
    if (len >= sizeof(buf)) {
        return -1;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    p->kind = WR_ADDR_RANGE;
    if ((sep = strchr(buf, '/')) != NULL) {
        p->family = wr_ip_parse(buf, (size_t) (sep - buf), p->lo);
        return p->family != 0 ? prefix_range(p, sep + 1) : -1;
    }
    if ((sep = strchr(buf, '-')) != NULL) {
        p->family = wr_ip_parse(buf, (size_t) (sep - buf), p->lo);
        if (p->family == 0 || wr_ip_parse(sep + 1, strlen(sep + 1), p->hi) != p->family) {
            return -1;
        }
        return memcmp(p->lo, p->hi, family_len(p->family)) <= 0 ? 0 : -1;
    }
    p->family = wr_ip_parse(buf, len, p->lo);
    memcpy(p->hi, p->lo, sizeof(p->hi));
    return p->family != 0 ? 0 : -1;
}

static long
port_num(const char *s, size_t len)
{
    long n = 0;

    if (len == 0 || len > 5) {
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }
        n = n * 10 + (s[i] - '0');
    }
    return n <= WR_PORT_MAX ? n : -1;
}

static int
ports_parse(wr_addr_pat_t *p, const char *s)
{
    const char *dash = strchr(s, '-');
    long        lo, hi;

    if (dash == NULL) {
        lo = hi = port_num(s, strlen(s));
    } else {
        lo = port_num(s, (size_t) (dash - s));
        hi = port_num(dash + 1, strlen(dash + 1));
    }
    if (lo < 0 || hi < lo) {
        return -1;
    }
    p->port_lo = (unsigned) lo;
    p->port_hi = (unsigned) hi;
    return 0;
}

static int
addr_pat_parse(wr_addr_pat_t *p, const char *s)
{
    const char *colon, *end;

    memset(p, 0, sizeof(*p));
    p->port_hi = WR_PORT_MAX;
    p->negative = s[0] == '!';
    s += p->negative;
    if (strcmp(s, "unix") == 0) {
        p->kind = WR_ADDR_UNIX;
        return 0;
    }
    if (s[0] == '[') {
        end = strchr(s, ']');
        if (end == NULL || host_parse(p, s + 1, (size_t) (end - s - 1)) < 0
            || p->family != AF_INET6)
        {
            return -1;
        }
        return end[1] == '\0' ? 0 : end[1] == ':' ? ports_parse(p, end + 2) : -1;
    }
    colon = strchr(s, ':');
    if (colon != NULL && strchr(colon + 1, ':') != NULL) {
        return host_parse(p, s, strlen(s));     /* bare IPv6, no port */
    }
    if (colon == NULL) {
        return s[0] != '\0' ? host_parse(p, s, strlen(s)) : -1;
    }
    if (host_parse(p, s, (size_t) (colon - s)) < 0) {
        return -1;
    }
    return ports_parse(p, colon + 1);
}

int
wr_addr_rule_compile(wr_addr_rule_t *rule, json_t *v, char *err, size_t errlen)
{
    size_t  count = json_is_array(v) ? json_array_size(v) : 1;
    json_t *item;

    memset(rule, 0, sizeof(*rule));
    rule->pat = calloc(count ? count : 1, sizeof(*rule->pat));
    if (rule->pat == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < count; i++) {
        wr_addr_pat_t p;

        item = json_is_array(v) ? json_array_get(v, i) : v;
        if (!json_is_string(item) || addr_pat_parse(&p, json_string_value(item)) < 0) {
            snprintf(err, errlen, "the address pattern \"%s\" is invalid",
                     json_is_string(item) ? json_string_value(item) : "");
            return -1;
        }
        if (p.negative) {
            memmove(&rule->pat[rule->nneg + 1], &rule->pat[rule->nneg],
                    (rule->n - rule->nneg) * sizeof(p));
            rule->pat[rule->nneg++] = p;
        } else {
            rule->pat[rule->n] = p;
        }
        rule->n++;
    }
    return 0;
}

void
wr_addr_rule_free(wr_addr_rule_t *rule)
{
    free(rule->pat);
    memset(rule, 0, sizeof(*rule));
}

/* Address bytes, family and port of sa; an IPv4-mapped IPv6 address counts
 * as IPv4 (dual-stack listeners). Returns the family, AF_UNIX, or 0. */
static int
sa_parts(const struct sockaddr *sa, const unsigned char **ip, unsigned *port)
{
    const struct sockaddr_in  *in4;
    const struct sockaddr_in6 *in6;

    switch (sa->sa_family) {
    case AF_INET:
        in4 = (const struct sockaddr_in *) (const void *) sa;
        *ip = (const unsigned char *) &in4->sin_addr;
        *port = ntohs(in4->sin_port);
        return AF_INET;
    case AF_INET6:
        in6 = (const struct sockaddr_in6 *) (const void *) sa;
        *ip = in6->sin6_addr.s6_addr;
        *port = ntohs(in6->sin6_port);
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            *ip += WR_V6_LEN - WR_V4_LEN;
            return AF_INET;
        }
        return AF_INET6;
    case AF_UNIX:
        return AF_UNIX;
    default:
        return 0;
    }
}

static bool
addr_pat_match(const wr_addr_pat_t *p, int family, const unsigned char *ip,
               unsigned port)
{
    size_t len;

    if (family == AF_UNIX) {
        /* A bare "*" means any peer at all, unix ones included. */
        return p->kind == WR_ADDR_UNIX
               || (p->kind == WR_ADDR_ANY && p->port_lo == 0 && p->port_hi == WR_PORT_MAX);
    }
    if (p->kind == WR_ADDR_UNIX || port < p->port_lo || port > p->port_hi) {
        return false;
    }
    if (p->kind == WR_ADDR_ANY) {
        return true;
    }
    if (p->family != family) {
        return false;
    }
    len = family_len(family);
    return memcmp(ip, p->lo, len) >= 0 && memcmp(ip, p->hi, len) <= 0;
}

bool
wr_addr_rule_match(const wr_addr_rule_t *rule, const struct sockaddr *sa)
{
    const unsigned char *ip = NULL;
    unsigned             port = 0;
    int                  family = sa != NULL ? sa_parts(sa, &ip, &port) : 0;
    size_t               i;

    for (i = 0; i < rule->nneg; i++) {
        if (family != 0 && addr_pat_match(&rule->pat[i], family, ip, port)) {
            return false;
        }
    }
    if (rule->nneg == rule->n) {
        return true;
    }
    for (; i < rule->n; i++) {
        if (family != 0 && addr_pat_match(&rule->pat[i], family, ip, port)) {
            return true;
        }
    }
    return false;
}
