/* A growable byte buffer: the one used for building strings and responses. */
#ifndef WR_BUF_H
#define WR_BUF_H

#include <stddef.h>

typedef struct {
    char   *p;
    size_t  n;       /* bytes used */
    size_t  cap;
} wr_buf_t;

/* All return 0, or -1 when memory runs out (the buffer is then unchanged). */
int  wr_buf_reserve(wr_buf_t *b, size_t more);
int  wr_buf_append(wr_buf_t *b, const void *data, size_t len);
int  wr_buf_puts(wr_buf_t *b, const char *s);
int  wr_buf_printf(wr_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* v in decimal: what every response head needs, without printf's cost. */
int  wr_buf_put_dec(wr_buf_t *b, unsigned long long v);
void wr_buf_reset(wr_buf_t *b);     /* n = 0, memory kept */
void wr_buf_free(wr_buf_t *b);

#endif
