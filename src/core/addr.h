/*
 * Socket addresses as Unit writes them: "IP:port", "*:port", "[v6]:port",
 * "unix:/path". Used for listeners, the control socket and proxy targets.
 */
#ifndef WR_ADDR_H
#define WR_ADDR_H

#include <sys/socket.h>

typedef struct {
    struct sockaddr_storage sa;
    socklen_t               len;
} wr_addr_t;

/* IPv4 or IPv6 address text of len bytes (no brackets, no port) into out
 * (4 or 16 bytes, network order). Returns AF_INET, AF_INET6, or 0. */
int wr_ip_parse(const char *s, size_t len, unsigned char out[16]);

/* Returns 0, or -1 with *why set to a static reason text. */
int wr_addr_parse(const char *text, wr_addr_t *a, const char **why);

#define WR_LISTEN_BACKLOG  511     /* Unit's default "backlog" */

/* socket + SO_REUSEADDR + bind + listen, non-blocking, close-on-exec.
 * A stale unix socket file (nobody listening) is replaced. backlog <= 0
 * means WR_LISTEN_BACKLOG. Logs the failing call; -1 with errno set. */
int wr_addr_listen(const wr_addr_t *a, int backlog, const char *name);

/* Unlink the file of a unix address, if it is one. */
void wr_addr_unlink(const wr_addr_t *a);

#endif
