#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"

#define WR_BUF_MIN  256

int wr_buf_reserve(wr_buf_t *b, size_t more)
{
    size_t cap;
    char *p;

    if (b->n + more <= b->cap)
        return 0;
    cap = b->cap ? b->cap : WR_BUF_MIN;
    while (cap < b->n + more)
        cap *= 2;
    p = realloc(b->p, cap);
    if (p == NULL)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

int wr_buf_append(wr_buf_t *b, const void *data, size_t len)
{
    if (wr_buf_reserve(b, len) < 0)
        return -1;
    if (len)
        memcpy(b->p + b->n, data, len);
    b->n += len;
    return 0;
}

int wr_buf_puts(wr_buf_t *b, const char *s)
{
    return wr_buf_append(b, s, strlen(s));
}

int wr_buf_printf(wr_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    size_t room = b->cap - b->n;
    int need;

    /* Format straight into the free room; only a text that does not fit
     * is formatted a second time, after the buffer grew. */
    va_start(ap, fmt);
    need = vsnprintf(room ? b->p + b->n : NULL, room, fmt, ap);
    va_end(ap);
    if (need < 0)
        return -1;
    if ((size_t) need >= room) {
        if (wr_buf_reserve(b, (size_t) need + 1) < 0)
            return -1;
        va_start(ap, fmt);
        vsnprintf(b->p + b->n, (size_t) need + 1, fmt, ap);
        va_end(ap);
    }
    b->n += (size_t) need;
    return 0;
}

int wr_buf_put_dec(wr_buf_t *b, unsigned long long v)
{
    char digits[sizeof("18446744073709551615")];
    size_t i = sizeof(digits);

    do {
        digits[--i] = (char) ('0' + v % 10);
        v /= 10;
    } while (v != 0);
    return wr_buf_append(b, digits + i, sizeof(digits) - i);
}

void wr_buf_reset(wr_buf_t *b)
{
    b->n = 0;
}

void wr_buf_free(wr_buf_t *b)
{
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
}
