/*
 * libFuzzer target for the router's decoding of what a worker sends
 * (src/router/worker_proto.c): RESP_HEAD payloads, whole and as the prefix
 * of a RESP_HEAD with body. A worker is not trusted (it runs whatever its
 * app was made to run), so this is input from an attacker. Input: one byte
 * of field limit, then the payload. Checked invariants (abort on violation):
 *   - a decoded head has a status of 100-999, at most the limit of fields,
 *     each inside the payload, with a token for a name and no CR, LF or
 *     NUL in its value;
 *   - the prefix decoder stops at the head's end, and the whole decoder
 *     takes exactly that prefix and refuses it with any byte more;
 *   - encoding the decoded head again gives the bytes decoded.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "router/worker_proto.h"

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

enum { FIELDS_MAX = 64, U32 = sizeof(uint32_t) };

static int tchar(unsigned char c)
{
    return c > 0x20 && c < 0x7f && strchr("\"(),/:;<=>?@[\\]{}", c) == NULL;
}

static int inside(const char *buf, size_t n, const char *p, size_t len)
{
    return p >= buf && len <= n && p - buf <= (ptrdiff_t) (n - len);
}

static size_t put(unsigned char *out, size_t o, const void *p, size_t n)
{
    memcpy(out + o, p, n);
    return o + n;
}

static void check_fields(const char *buf, size_t n, const wr_http_field_t *f, int nf)
{
    for (int i = 0; i < nf; i++) {
        CHECK(inside(buf, n, f[i].name, f[i].name_len));
        CHECK(inside(buf, n, f[i].value, f[i].value_len));
        CHECK(f[i].name_len > 0);
        for (size_t k = 0; k < f[i].name_len; k++)
            CHECK(tchar((unsigned char) f[i].name[k]));
        for (size_t k = 0; k < f[i].value_len; k++)
            CHECK(f[i].value[k] != '\r' && f[i].value[k] != '\n' && f[i].value[k] != '\0');
    }
}

/* The payload of status and fields, as a worker encodes it (proto.h). */
static size_t encode(unsigned char *out, int status, const wr_http_field_t *f, int nf)
{
    uint32_t st = (uint32_t) status, count = (uint32_t) nf;
    size_t o = put(out, 0, &st, U32);

    o = put(out, o, &count, U32);
    for (int i = 0; i < nf; i++) {
        uint32_t ln = (uint32_t) f[i].name_len, lv = (uint32_t) f[i].value_len;
        o = put(out, o, &ln, U32);
        o = put(out, o, f[i].name, ln);
        o = put(out, o, &lv, U32);
        o = put(out, o, f[i].value, lv);
    }
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wr_http_field_t f[FIELDS_MAX], g[FIELDS_MAX];
    int status = 0, status2 = 0, nf, whole;
    size_t max, n, head_len = 0;
    const char *buf;
    unsigned char *again;

    if (size < 1)
        return 0;
    max = data[0] % (FIELDS_MAX + 1);
    buf = (const char *) data + 1;
    n = size - 1;

    nf = wr_worker_decode_resp_head_prefix(buf, n, &status, f, max, &head_len);
    whole = wr_worker_decode_resp_head(buf, n, &status2, g, max);
    if (nf < 0) {
        CHECK(whole < 0);       /* no head at all: not a whole one either */
        return 0;
    }
    CHECK(status >= 100 && status <= 999);
    CHECK((size_t) nf <= max);
    CHECK(head_len <= n);
    check_fields(buf, n, f, nf);
    /* The whole decoder is the prefix one that used every byte. */
    CHECK((whole >= 0) == (head_len == n));
    if (whole >= 0)
        CHECK(whole == nf && status2 == status);
    if (head_len < n)
        CHECK(wr_worker_decode_resp_head(buf, head_len, &status2, g, max) == nf
              && status2 == status);
    /* A canonical encoding: the decoded head encodes back to its bytes. */
    again = malloc(head_len + 1);
    CHECK(again != NULL);
    CHECK(encode(again, status, f, nf) == head_len);
    CHECK(memcmp(again, buf, head_len) == 0);
    free(again);
    return 0;
}
