/*
 * The CGI names of request header fields, as WSGI, PSGI and Rack take
 * them from CGI: "X-Forwarded-For" is HTTP_X_FORWARDED_FOR, Content-Type
 * and Content-Length are CONTENT_TYPE and CONTENT_LENGTH. Shared by the
 * language runtimes.
 */
#ifndef WR_RUNTIME_CGI_H
#define WR_RUNTIME_CGI_H

#include <stdbool.h>
#include <stddef.h>

#define WR_RT_CGI_PREFIX "HTTP_"

/* Bytes a key needs for a field name of n bytes (NUL included). */
#define WR_RT_CGI_KEY_SIZE(n) (sizeof(WR_RT_CGI_PREFIX) + (n))

/* Writes the key of the field name[0..n) into key (WR_RT_CGI_KEY_SIZE(n)
 * bytes), NUL-ended; returns its length. */
size_t wr_rt_cgi_key(char *key, const char *name, size_t n);

/* SERVER_NAME from the host asked for (or the listener's address):
 * an IPv6 address gets its brackets back ("::1" -> "[::1]"), as in the
 * Host field, so SERVER_NAME ":" SERVER_PORT is an authority again. out
 * holds WR_RT_SERVER_NAME_SIZE(n) bytes; returns the length written. */
#define WR_RT_SERVER_NAME_SIZE(n) ((n) + sizeof("[]"))
size_t wr_rt_server_name(char *out, const char *host, size_t n);

/* name[0..n) is lit, compared case-insensitively. */
bool wr_rt_field_is(const char *name, size_t n, const char *lit);

#endif
