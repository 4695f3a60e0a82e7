/* Reason phrases (RFC 9110 §15), safe methods, request path normalization. */
#include <string.h>

#include "http/chars.h"
#include "http/http.h"

#define HEX_RADIX 16

int wr_http_retry_safe(const char *method, size_t len)
{
    static const char *const safe[] = { "GET", "HEAD", "OPTIONS" };

    for (size_t i = 0; i < sizeof(safe) / sizeof(safe[0]); i++)
        if (strlen(safe[i]) == len && memcmp(method, safe[i], len) == 0)
            return 1;
    return 0;
}

const char *wr_http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default:  return "";
    }
}

/* Percent-decode src into dst (dst may equal src). Returns the length or -1. */
static long percent_decode(const char *src, size_t len, char *dst)
{
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        char ch = src[i];
        if (ch == '%') {
            if (len - i < 3 || !wr_hc(src[i + 1], WR_HC_HEX) || !wr_hc(src[i + 2], WR_HC_HEX))
                return -1;
            ch = (char)(wr_hc_hexval(src[i + 1]) * HEX_RADIX + wr_hc_hexval(src[i + 2]));
            i += 2;
        }
        if (ch == '\0')
            return -1;                 /* raw or %00: would cut C strings short downstream */
        dst[o++] = ch;
    }
    return (long)o;
}

/*
 * Remove dot-segments in place over s[0..n), s[0] == '/'. The output is written
 * at w <= r, so the in-place pass never overtakes its input.
 */
static long remove_dot_segments(char *s, size_t n)
{
    size_t r = 0, w = 0;

    while (r < n) {
        while (r < n && s[r] == '/')
            r++;
        size_t seg = r;
        while (r < n && s[r] != '/')
            r++;
        size_t sl = r - seg;
        int last = r == n;

        if (sl == 1 && s[seg] == '.') {
            /* "." adds nothing */
        } else if (sl == 2 && s[seg] == '.' && s[seg + 1] == '.') {
            if (w == 0)
                return -1;             /* above the root */
            while (s[--w] != '/')
                ;
        } else if (sl > 0) {
            s[w++] = '/';
            for (size_t k = 0; k < sl; k++)
                s[w++] = s[seg + k];
            continue;
        }
        if (last)                      /* "/a/." and "/a/.." and "/a/" end in '/' */
            s[w++] = '/';
    }
    if (w == 0)
        s[w++] = '/';
    return (long)w;
}

long wr_http_normalize_path(const char *path, size_t len, char *out)
{
    if (len == 0 || path[0] != '/')
        return -1;
    long n = percent_decode(path, len, out);
    if (n < 0)
        return -1;
    n = remove_dot_segments(out, (size_t)n);
    if (n >= 0)
        out[n] = '\0';
    return n;
}
