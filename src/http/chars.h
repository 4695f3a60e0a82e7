/*
 * Byte classes shared by the http sources (internal to src/http). One table
 * lookup per byte is what keeps the parser branch-light.
 */
#ifndef WR_HTTP_CHARS_H
#define WR_HTTP_CHARS_H

#include <stddef.h>

enum {
    WR_HC_TCHAR  = 1 << 0,   /* token: ALPHA DIGIT !#$%&'*+-.^_`|~ (RFC 9110 §5.6.2) */
    WR_HC_SAFE   = 1 << 1,   /* field name chars Unit keeps: [A-Za-z0-9-] */
    WR_HC_TARGET = 1 << 2,   /* request-target byte: VCHAR except '#' */
    WR_HC_VALUE  = 1 << 3,   /* field value byte: VCHAR, SP, HTAB, obs-text */
    WR_HC_HEX    = 1 << 4,   /* HEXDIG */
    WR_HC_HOST   = 1 << 5,   /* reg-name: unreserved, pct-encoded, sub-delims */
};

extern const unsigned char wr_http_chars[256];

static inline int wr_hc(char c, int cls)
{
    return (wr_http_chars[(unsigned char)c] & cls) != 0;
}

static inline int wr_hc_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : (unsigned char)c;
}

/* Case-insensitive equality of s[0..n) with the lower-case literal lit[0..n). */
static inline int wr_hc_ieq(const char *s, size_t n, const char *lit, size_t lit_len)
{
    if (n != lit_len)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (wr_hc_lower(s[i]) != (unsigned char)lit[i])
            return 0;
    return 1;
}

static inline int wr_hc_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    return wr_hc_lower(c) - 'a' + 10;
}

#endif
