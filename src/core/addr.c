#include <arpa/inet.h>
#include <stddef.h>
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/un.h>

#include "core/addr.h"
#include "core/log.h"

#define WR_PORT_MAX  65535

int wr_ip_parse(const char *s, size_t len, unsigned char out[16])
{
    char text[INET6_ADDRSTRLEN];

    if (len == 0 || len >= sizeof(text))
        return 0;
    memcpy(text, s, len);
    text[len] = '\0';
    if (inet_pton(AF_INET, text, out) == 1)
        return AF_INET;
    if (inet_pton(AF_INET6, text, out) == 1)
        return AF_INET6;
    return 0;
}

static int parse_port(const char *s, in_port_t *port, const char **why)
{
    char *end;
    long v;

    if (*s < '0' || *s > '9') {
        *why = "the port must be a number";
        return -1;
    }
    errno = 0;
    v = strtol(s, &end, 10);
    if (*end != '\0' || errno || v < 1 || v > WR_PORT_MAX) {
        *why = "the port must be between 1 and 65535";
        return -1;
    }
    *port = htons((in_port_t) v);
    return 0;
}

static int parse_unix(const char *path, wr_addr_t *a, const char **why)
{
    struct sockaddr_un *un = (struct sockaddr_un *) &a->sa;
    size_t n = strlen(path);

    if (path[0] != '/') {
        *why = "a unix socket path must be absolute";
        return -1;
    }
    if (n >= sizeof(un->sun_path)) {
        *why = "the unix socket path is too long";
        return -1;
    }
    un->sun_family = AF_UNIX;
    memcpy(un->sun_path, path, n + 1);
    a->len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + n + 1);
    return 0;
}

static int parse_v6(const char *text, wr_addr_t *a, const char **why)
{
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &a->sa;
    const char *close_br = strchr(text, ']');
    char host[INET6_ADDRSTRLEN];
    size_t n;

    if (close_br == NULL || close_br[1] != ':') {
        *why = "an IPv6 address must be written [address]:port";
        return -1;
    }
    n = (size_t) (close_br - text - 1);
    if (n == 0 || n >= sizeof(host)) {
        *why = "invalid IPv6 address";
        return -1;
    }
    memcpy(host, text + 1, n);
    host[n] = '\0';
    in6->sin6_family = AF_INET6;
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1) {
        *why = "invalid IPv6 address";
        return -1;
    }
    a->len = sizeof(*in6);
    return parse_port(close_br + 2, &in6->sin6_port, why);
}

int wr_addr_parse(const char *text, wr_addr_t *a, const char **why)
{
    struct sockaddr_in *in = (struct sockaddr_in *) &a->sa;
    const char *colon;
    char host[INET_ADDRSTRLEN];
    size_t n;

    memset(a, 0, sizeof(*a));
    if (strncmp(text, "unix:", 5) == 0)
        return parse_unix(text + 5, a, why);
    if (text[0] == '[')
        return parse_v6(text, a, why);

    colon = strrchr(text, ':');
    if (colon == NULL) {
        *why = "the address must include a port";
        return -1;
    }
    n = (size_t) (colon - text);
    in->sin_family = AF_INET;
    a->len = sizeof(*in);
    if (n == 1 && text[0] == '*') {
        in->sin_addr.s_addr = htonl(INADDR_ANY);
    } else {
        if (n == 0 || n >= sizeof(host)) {
            *why = "invalid IPv4 address";
            return -1;
        }
        memcpy(host, text, n);
        host[n] = '\0';
        if (inet_pton(AF_INET, host, &in->sin_addr) != 1) {
            *why = "invalid IPv4 address";
            return -1;
        }
    }
    return parse_port(colon + 1, &in->sin_port, why);
}

void wr_addr_unlink(const wr_addr_t *a)
{
    const struct sockaddr_un *un = (const struct sockaddr_un *) &a->sa;

    if (a->sa.ss_family == AF_UNIX && unlink(un->sun_path) < 0 && errno != ENOENT)
        wr_log_sys(WR_LOG_WARN, "unlink", un->sun_path);
}

/* A unix socket file nobody accepts on is left over from a crash: remove it.
 * One somebody does accept on is in use: leave it, bind will fail. */
static void unix_clear_stale(const wr_addr_t *a)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return;
    if (connect(fd, (const struct sockaddr *) &a->sa, a->len) < 0 && errno == ECONNREFUSED)
        wr_addr_unlink(a);
    close(fd);
}

int wr_addr_listen(const wr_addr_t *a, int backlog, const char *name)
{
    int fd, on = 1, saved;

    fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        wr_log_sys(WR_LOG_ERR, "socket", name);
        return -1;
    }
    if (a->sa.ss_family == AF_UNIX) {
        unix_clear_stale(a);
    } else {
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0)
            goto fail_call_setsockopt;
        if (a->sa.ss_family == AF_INET6
            && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) < 0)
            goto fail_call_setsockopt;
    }
    if (bind(fd, (const struct sockaddr *) &a->sa, a->len) < 0) {
        wr_log_sys(WR_LOG_ERR, "bind", name);
        goto fail;
    }
    if (listen(fd, backlog > 0 ? backlog : WR_LISTEN_BACKLOG) < 0) {
        wr_log_sys(WR_LOG_ERR, "listen", name);
        goto fail;
    }
    return fd;

fail_call_setsockopt:
    wr_log_sys(WR_LOG_ERR, "setsockopt", name);
fail:
    saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

void wr_addr_text(const struct sockaddr *sa, char host[WR_ADDR_TEXT], char port[WR_PORT_TEXT])
{
    const struct sockaddr_in *in = (const struct sockaddr_in *) (const void *) sa;
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) (const void *) sa;
    const struct sockaddr_un *un = (const struct sockaddr_un *) (const void *) sa;

    host[0] = '\0';
    if (port != NULL)
        port[0] = '\0';
    if (sa == NULL)
        return;
    switch (sa->sa_family) {
    case AF_INET:
        inet_ntop(AF_INET, &in->sin_addr, host, WR_ADDR_TEXT);
        if (port != NULL)
            snprintf(port, WR_PORT_TEXT, "%u", (unsigned) ntohs(in->sin_port));
        break;
    case AF_INET6:
        inet_ntop(AF_INET6, &in6->sin6_addr, host, WR_ADDR_TEXT);
        if (port != NULL)
            snprintf(port, WR_PORT_TEXT, "%u", (unsigned) ntohs(in6->sin6_port));
        break;
    case AF_UNIX:
        snprintf(host, WR_ADDR_TEXT, "unix:%.*s",
                 (int) strnlen(un->sun_path, sizeof(un->sun_path)), un->sun_path);
        break;
    }
}
