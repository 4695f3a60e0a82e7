/*
 * Chunked transfer coding decoder (RFC 9112 §7.1), a byte-driven state machine
 * so that any split of the input gives the same result. Chunk data is moved in
 * bulk; everything else is one byte per step.
 *
 *   chunked-body = *chunk last-chunk trailer-section CRLF
 *   chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
 *   chunk-ext    = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] )
 *
 * Line ends in the body are CRLF only: a parser that takes bare LF here while a
 * proxy in front does not is a request smuggling hole.
 */
#include <limits.h>
#include <string.h>

#include "http/chars.h"
#include "http/http.h"

enum {
    CH_SIZE,           /* chunk-size hex digits */
    CH_EXT_BWS,        /* whitespace after the size: a ';' must follow */
    CH_EXT,            /* chunk extensions, checked loosely, dropped */
    CH_SIZE_LF,        /* CR seen after the size line */
    CH_DATA,           /* chunk-data */
    CH_DATA_CR,        /* CRLF after chunk-data */
    CH_DATA_LF,
    CH_TRAILER,        /* start of a trailer line, or the final CRLF */
    CH_TRAILER_NAME,
    CH_TRAILER_VALUE,
    CH_TRAILER_LF,
    CH_END_LF,         /* CR of the final empty line seen */
    CH_DONE,
};

enum { CH_MORE = 0, CH_FINISHED = 1, CH_400 = -400, CH_413 = -413, CH_431 = -431 };

#define HEX_RADIX 16

void wr_http_chunked_init(wr_http_chunked_t *c, long long max_body)
{
    memset(c, 0, sizeof(*c));
    c->state = CH_SIZE;
    c->max_body = max_body;
}

/* Add one hex digit to the chunk size, refusing overflow and oversized bodies. */
static int size_digit(wr_http_chunked_t *c, char ch)
{
    long long d = wr_hc_hexval(ch);

    if (c->remaining > (LLONG_MAX - d) / HEX_RADIX)
        return CH_400;
    c->remaining = c->remaining * HEX_RADIX + d;
    if (c->remaining > LLONG_MAX - c->total)
        return CH_400;
    if (c->max_body >= 0 && c->remaining > c->max_body - c->total)
        return CH_413;
    return CH_MORE;
}

/* One byte of a chunk-size line. */
static int size_line_byte(wr_http_chunked_t *c, char ch)
{
    if (++c->line_len > WR_HTTP_CHUNK_LINE_MAX)
        return CH_400;
    switch (c->state) {
    case CH_SIZE:
        if (wr_hc(ch, WR_HC_HEX))
            return size_digit(c, ch);
        if (c->line_len == 1)
            return CH_400;             /* 1*HEXDIG */
        if (ch == ';')
            c->state = CH_EXT;
        else if (ch == ' ' || ch == '\t')
            c->state = CH_EXT_BWS;
        else if (ch == '\r')
            c->state = CH_SIZE_LF;
        else
            return CH_400;
        return CH_MORE;
    case CH_EXT_BWS:
        if (ch == ';')
            c->state = CH_EXT;
        else if (ch != ' ' && ch != '\t')
            return CH_400;
        return CH_MORE;
    case CH_EXT:
        if (ch == '\r')
            c->state = CH_SIZE_LF;
        else if (!wr_hc(ch, WR_HC_VALUE))
            return CH_400;
        return CH_MORE;
    default: /* CH_SIZE_LF */
        if (ch != '\n')
            return CH_400;
        c->line_len = 0;
        c->state = c->remaining ? CH_DATA : CH_TRAILER;
        return CH_MORE;
    }
}

/* One byte of the trailer section; fields are checked, then dropped. */
static int trailer_byte(wr_http_chunked_t *c, char ch)
{
    if (++c->trailer_len > WR_HTTP_TRAILER_MAX)
        return CH_431;
    switch (c->state) {
    case CH_TRAILER:
        if (ch == '\r')
            c->state = CH_END_LF;
        else if (wr_hc(ch, WR_HC_TCHAR))
            c->state = CH_TRAILER_NAME;
        else
            return CH_400;             /* obs-fold, bare LF, junk */
        return CH_MORE;
    case CH_TRAILER_NAME:
        if (ch == ':')
            c->state = CH_TRAILER_VALUE;
        else if (!wr_hc(ch, WR_HC_TCHAR))
            return CH_400;
        return CH_MORE;
    case CH_TRAILER_VALUE:
        if (ch == '\r')
            c->state = CH_TRAILER_LF;
        else if (!wr_hc(ch, WR_HC_VALUE))
            return CH_400;
        return CH_MORE;
    case CH_TRAILER_LF:
        if (ch != '\n')
            return CH_400;
        c->state = CH_TRAILER;
        return CH_MORE;
    default: /* CH_END_LF */
        if (ch != '\n')
            return CH_400;
        c->state = CH_DONE;
        return CH_FINISHED;
    }
}

/* One byte of the CRLF after chunk-data. */
static int data_end_byte(wr_http_chunked_t *c, char ch)
{
    if (c->state == CH_DATA_CR) {
        if (ch != '\r')
            return CH_400;             /* bare LF or data longer than its size */
        c->state = CH_DATA_LF;
        return CH_MORE;
    }
    if (ch != '\n')
        return CH_400;
    c->state = CH_SIZE;
    return CH_MORE;
}

static int step_byte(wr_http_chunked_t *c, char ch)
{
    switch (c->state) {
    case CH_SIZE: case CH_EXT_BWS: case CH_EXT: case CH_SIZE_LF:
        return size_line_byte(c, ch);
    case CH_DATA_CR: case CH_DATA_LF:
        return data_end_byte(c, ch);
    default:
        return trailer_byte(c, ch);
    }
}

int wr_http_chunked_decode(wr_http_chunked_t *c, char *buf, size_t len,
                           size_t *consumed, size_t *out_len)
{
    size_t i = 0, out = 0;
    int rc = CH_MORE;

    *consumed = *out_len = 0;
    if (c->error)
        return c->error;
    if (c->state == CH_DONE)
        return CH_FINISHED;

    while (i < len && rc == CH_MORE) {
        if (c->state == CH_DATA) {
            size_t n = len - i;
            if ((unsigned long long)n > (unsigned long long)c->remaining)
                n = (size_t)c->remaining;
            memmove(buf + out, buf + i, n);   /* out <= i: never ahead of input */
            out += n;
            i += n;
            c->remaining -= (long long)n;
            c->total += (long long)n;
            if (c->remaining == 0)
                c->state = CH_DATA_CR;
            continue;
        }
        rc = step_byte(c, buf[i++]);
    }
    if (rc < 0)
        c->error = rc;
    *consumed = i;
    *out_len = out;
    return rc;
}
