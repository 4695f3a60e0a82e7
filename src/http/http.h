/*
 * http: the one HTTP/1.1 request parser of the house (RFC 9110, RFC 9112).
 *
 * Who calls what:
 *   controller  wr_http_parse_request, wr_http_chunked_*, wr_http_reason
 *   router      all of it (data plane), wr_http_normalize_path before routing
 *
 * Properties the callers rely on:
 *   - no allocation, no global state, no copying: every pointer in a parsed
 *     request points into the caller's buffer (one exception: the path of an
 *     absolute-form target with an empty path is the static string "/");
 *   - bounded: lines and the whole head are limited by wr_http_limits_t, the
 *     number of fields by WR_HTTP_MAX_FIELDS, chunk lines and trailers by the
 *     constants below;
 *   - decided early and consistently: a parse of a prefix of the input returns
 *     0 ("need more") or exactly what the parse of the whole input returns.
 *     An error is returned as soon as the bytes received prove it.
 */
#ifndef WR_HTTP_H
#define WR_HTTP_H

#include <stddef.h>

#define WR_HTTP_MAX_FIELDS          128   /* stored field lines per head, 431 beyond */
#define WR_HTTP_MAX_EMPTY_LINES     4     /* empty lines skipped before the request line */
#define WR_HTTP_CHUNK_LINE_MAX      4096  /* bytes of a chunk-size line with extensions */
#define WR_HTTP_TRAILER_MAX         8192  /* bytes of the trailer section of a chunked body */

#define WR_HTTP_10                  10    /* wr_http_request_t.version values */
#define WR_HTTP_11                  11

#define WR_HTTP_DEFAULT_BUFFER_SIZE 8192  /* Unit's large_header_buffer_size */
#define WR_HTTP_DEFAULT_BUFFERS     4     /* Unit's large_header_buffers */

typedef struct {
    const char *name;  size_t name_len;
    const char *value; size_t value_len;   /* without leading/trailing SP/HTAB */
} wr_http_field_t;

typedef struct {
    size_t header_buffer_size;   /* max bytes of the request line and of any one field
                                    line, line terminator included (default 8192) */
    size_t header_buffers;       /* the whole head (leading empty lines and the final
                                    empty line included) must fit in
                                    header_buffers * header_buffer_size (default 4) */
    int    discard_unsafe_fields;/* default 1: drop fields whose names have chars other
                                    than [A-Za-z0-9-] (they are not stored, not used) */
    int    h2;                   /* default 0: accept version "HTTP/2.0" (1.1
                                    semantics), as the router's HTTP/2 streams
                                    write their requests */
} wr_http_limits_t;

void wr_http_limits_default(wr_http_limits_t *l);

typedef struct {
    const char *method;  size_t method_len;
    const char *target;  size_t target_len;   /* raw, as sent */
    const char *path;    size_t path_len;     /* raw path of the target: origin-form up to
                                                 '?', absolute-form after the authority
                                                 ("/" when empty), "*" for asterisk-form,
                                                 NULL for authority-form (CONNECT) */
    const char *query;   size_t query_len;    /* after '?', NULL if none */
    int version;                              /* 10 or 11 (HTTP/1.x, x > 1, counts as 11) */
    wr_http_field_t fields[WR_HTTP_MAX_FIELDS]; size_t nfields;
    const char *host; size_t host_len;        /* Host field, or the authority of an
                                                 absolute-form / authority-form target;
                                                 NULL when absent (HTTP/1.0) */
    long long content_length;                 /* -1 when absent */
    int chunked;                              /* Transfer-Encoding: chunked */
    int keep_alive;                           /* per version + Connection */
    int expect_continue;                      /* Expect: 100-continue (HTTP/1.1 only) */
    int upgrade;                              /* Connection: upgrade + Upgrade, no body
                                                 (HTTP/1.1 only) */
} wr_http_request_t;

/*
 * Parse a request head from buf[0..len). Pure function of its input: call it
 * again with more bytes from the start of the same buffer.
 * Returns the head length (> 0, leading empty lines and final empty line
 * included) once the head is complete, 0 when more bytes are needed, or a
 * negative HTTP status:
 *   -400 malformed (syntax, bare CR, obs-fold, space before colon, CTL in a value,
 *        bad Host / missing Host in 1.1 / two Hosts, bad or conflicting
 *        Content-Length, Transfer-Encoding with Content-Length or in HTTP/1.0,
 *        chunked not final or twice, target form not allowed for the method)
 *   -414 request line longer than header_buffer_size
 *   -431 a field line longer than header_buffer_size, the head longer than
 *        header_buffers * header_buffer_size, or more than WR_HTTP_MAX_FIELDS fields
 *   -501 a transfer coding other than chunked (Warren decodes only chunked,
 *        like nginx and Unit)
 *   -505 HTTP major version other than 1
 * lim may be NULL for the defaults. r is written even on failure (partially).
 */
long wr_http_parse_request(wr_http_request_t *r, const char *buf, size_t len,
                           const wr_http_limits_t *lim);

/* First field named name (case-insensitive), or NULL. */
const wr_http_field_t *wr_http_find_field(const wr_http_request_t *r,
                                          const char *name, size_t name_len);

/*
 * Incremental chunked body decoder (RFC 9112 §7.1): a state machine that takes
 * any split of the input. Line terminators inside the body must be CRLF (bare LF
 * is rejected: it is where request smuggling lives). Chunk extensions and
 * trailer fields are checked and dropped.
 */
typedef struct {
    int       state;        /* internal */
    int       error;        /* sticky negative status once failed */
    long long max_body;     /* payload limit, < 0 for none */
    long long total;        /* payload bytes decoded so far */
    long long remaining;    /* chunk size being read, then bytes left of the chunk */
    size_t    line_len;     /* bytes of the current chunk-size line */
    size_t    trailer_len;  /* bytes of the trailer section */
} wr_http_chunked_t;

void wr_http_chunked_init(wr_http_chunked_t *c, long long max_body);

/*
 * Decode in place: consumes from buf[0..len), moves payload bytes to the front
 * of buf (buf[0..*out_len)), sets *consumed. Returns 1 when the last chunk and
 * the trailers are done (bytes after *consumed are the next request, left
 * untouched), 0 when more input is needed (all of buf consumed), or a negative
 * status: -400 bad chunk syntax, size overflow or too long chunk line,
 * -413 body over max_body, -431 trailer section over WR_HTTP_TRAILER_MAX.
 * After 1 or an error, further calls return the same without consuming.
 */
int wr_http_chunked_decode(wr_http_chunked_t *c, char *buf, size_t len,
                           size_t *consumed, size_t *out_len);

/*
 * A response head (RFC 9112 §4), as an upstream sends it to the proxy.
 */
typedef struct {
    int status;                               /* 100-999 */
    int version;                              /* WR_HTTP_10 or WR_HTTP_11 */
    long long content_length;                 /* -1 when absent */
    int chunked;                              /* Transfer-Encoding: chunked */
    int transfer_encoding;                    /* a Transfer-Encoding field was sent */
    int keep_alive;                           /* per version + Connection */
    wr_http_field_t fields[WR_HTTP_MAX_FIELDS]; size_t nfields;
} wr_http_response_t;

/*
 * Parse a response head from buf[0..len); at most max bytes of head.
 * Returns the head length once complete, 0 when more bytes are needed, -1
 * when malformed (status line, field syntax, bare CR, obs-fold, conflicting
 * Content-Length), or ambiguous or unusable: Transfer-Encoding with
 * Content-Length, or a transfer coding other than one "chunked"; -2 when
 * over max bytes or WR_HTTP_MAX_FIELDS fields.
 */
long wr_http_parse_response(wr_http_response_t *r, const char *buf, size_t len, size_t max);

/* Reason phrase of a status ("Not Found"), "" for an unknown one. */
const char *wr_http_reason(int status);

/* May a request with this method (and no body) be sent to a server again
 * when the first try got no answer at all? GET, HEAD and OPTIONS: what
 * the server did with it cannot matter to the client. */
int wr_http_retry_safe(const char *method, size_t len);

/*
 * Percent-decode path[0..len) and remove dot-segments (RFC 3986 §5.2.4) into out
 * (capacity >= len + 1, NUL-terminated); runs of '/' collapse into one, a
 * trailing '/' is kept. Decoding comes first, so %2e%2e and %2f are segments
 * like any other and can never climb out. Returns the length, or -1 for a path
 * not starting with '/', a bad %xx, %00 (or a raw NUL), or a path climbing
 * above the root.
 */
long wr_http_normalize_path(const char *path, size_t len, char *out);

#endif
