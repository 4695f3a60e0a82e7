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

#define WR_ADDR_TEXT  128    /* "unix:" + a sun_path, or an IPv6 text, and a NUL */
#define WR_PORT_TEXT  8      /* "65535" and a NUL */

/* A peer's or a socket's address as variables, logs and headers write it:
 * "127.0.0.1", "::1" (no brackets), "unix:PATH" (PATH empty for an unnamed
 * peer, as nginx), "" for none; port (may be NULL): its port, "" for none. */
void wr_addr_text(const struct sockaddr *sa, char host[WR_ADDR_TEXT],
                  char port[WR_PORT_TEXT]);

#endif
