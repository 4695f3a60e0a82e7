/*
 * The router's side of the channel, as libwarren's unit tests write it:
 * REQ_HEAD payloads (proto.h's layout) and the length of a RESP_HEAD.
 * Include after cmocka.h and lib/proto.h.
 */
#ifndef WR_TEST_LIB_WIRE_H
#define WR_TEST_LIB_WIRE_H

#include <stdint.h>
#include <string.h>

enum { LW_NFIXED = 12 };        /* the fixed strings of a REQ_HEAD */

typedef struct {
    unsigned char b[WR_APP_MAX_PAYLOAD + 1024];
    size_t        n;
} head_t;

static inline void put_u32(head_t *h, uint32_t v)
{
    memcpy(h->b + h->n, &v, sizeof(v));
    h->n += sizeof(v);
}

static inline void put_str(head_t *h, const char *s)
{
    size_t n = strlen(s);

    put_u32(h, (uint32_t) n);
    memcpy(h->b + h->n, s, n);
    h->n += n;
}

/* method, path, then NULL-terminated name/value pairs (fields may be NULL). */
static inline void make_head(head_t *h, const char *method, const char *path,
                             const char *const *fields)
{
    const char *fixed[LW_NFIXED] = {
        method, path, path, "", "HTTP/1.1", "192.0.2.7", "41000",
        "127.0.0.1", "8080", "example.com", "http", "",
    };
    uint32_t n = 0;

    h->n = 0;
    for (int i = 0; i < LW_NFIXED; i++)
        put_str(h, fixed[i]);
    while (fields != NULL && fields[2 * n] != NULL)
        n++;
    put_u32(h, n);
    for (uint32_t i = 0; i < 2 * n; i++)
        put_str(h, fields[i]);
}

/* Length of the encoded response head at the start of p (n bytes). */
static inline size_t resp_head_len(const unsigned char *p, size_t n)
{
    uint32_t count, len;
    size_t at = 8;

    assert_true(n >= at);
    memcpy(&count, p + 4, 4);
    for (uint32_t i = 0; i < 2 * count; i++) {
        assert_true(n >= at + 4);
        memcpy(&len, p + at, 4);
        at += 4 + len;
        assert_true(at <= n);
    }
    return at;
}

#endif
