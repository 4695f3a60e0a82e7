/*
 * The CGI names of request header fields (cgi.h).
 */
#include <string.h>
#include <strings.h>

#include "runtime/common/cgi.h"

bool wr_rt_field_is(const char *name, size_t n, const char *lit)
{
    return n == strlen(lit) && strncasecmp(name, lit, n) == 0;
}

size_t wr_rt_cgi_key(char *key, const char *name, size_t n)
{
    static const char *const own[] = { "Content-Type", "Content-Length" };
    static const char *const own_key[] = { "CONTENT_TYPE", "CONTENT_LENGTH" };
    size_t at = strlen(WR_RT_CGI_PREFIX);

    for (size_t i = 0; i < sizeof(own) / sizeof(own[0]); i++) {
        if (wr_rt_field_is(name, n, own[i])) {
            strcpy(key, own_key[i]);
            return strlen(own_key[i]);
        }
    }
    memcpy(key, WR_RT_CGI_PREFIX, at);
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        key[at++] = c == '-' ? '_' : (c >= 'a' && c <= 'z') ? (char) (c - 'a' + 'A') : c;
    }
    key[at] = '\0';
    return at;
}

size_t wr_rt_server_name(char *out, const char *host, size_t n)
{
    int v6 = memchr(host, ':', n) != NULL && !(n > 0 && host[0] == '[');

    if (v6)
        *out++ = '[';
    memcpy(out, host, n);
    if (v6)
        out[n++] = ']';
    out[n] = '\0';
    return n + (size_t) v6;
}
