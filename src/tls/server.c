/*
 * The server side of a TLS listener: one SSL_CTX per certificate bundle it
 * names, the first the default, another chosen when the client's SNI name
 * matches its leaf certificate (X509_check_host: subjectAltName DNS names,
 * else the CN; a wildcard covers one label). conf_commands and session
 * settings apply to each. Built by the router with its configuration and
 * shared, read-only, by its threads; each connection holds a reference, so
 * the SNI and ticket callbacks of a handshake that outlives its
 * configuration find it whole.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "core/log.h"
#include "tls/internal.h"

#define TICKET_NAME_LEN   16
#define TICKET_IV_LEN     16
#define TICKET_KEY_SHORT  48      /* name, HMAC key, AES-128 key: 16 each */
#define TICKET_KEY_LONG   80      /* name 16, HMAC key 32, AES-256 key 32 */
#define TICKET_KEYS_MAX   16

typedef struct {
    unsigned char name[TICKET_NAME_LEN];
    unsigned char hmac[32];
    unsigned char aes[32];
    size_t        size;           /* 48 or 80 */
} ticket_key_t;

struct wr_tls_server {
    atomic_int    refs;           /* the configuration's, and one per connection */
    size_t        n;
    SSL_CTX     **ctx;            /* [0]: the default */
    ticket_key_t  keys[TICKET_KEYS_MAX];   /* [0] encrypts; all decrypt */
    size_t        nkeys;
    int           h2;             /* ALPN may choose "h2" (settings.http.http2) */
};

void wr_tls_why(char *why, size_t whysz, const char *what)
{
    unsigned long e = ERR_peek_error();
    char text[256];

    if (e == 0) {
        snprintf(why, whysz, "%s.", what);
        return;
    }
    ERR_error_string_n(e, text, sizeof(text));
    snprintf(why, whysz, "%s: %s.", what, text);
    ERR_clear_error();
}

/* ---- session ticket keys ("tickets": "base64" or [...]) ---- */

/* Base64's alphabet, '=' only as the last one or two characters (OpenSSL's
 * decoder would skip spaces and stop at an inner '='). */
static int base64_ok(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        int pad_ok = ch == '=' && i + 2 >= len && (i + 1 == len || s[i + 1] == '=');
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')
              || ch == '+' || ch == '/' || pad_ok))
            return 0;
    }
    return 1;
}

static int decode_key(const char *b64, ticket_key_t *k)
{
    unsigned char raw[((TICKET_KEY_LONG + 2) / 3) * 3 + 3];
    size_t len = strlen(b64), pad = 0;
    int n;

    if (len == 0 || len % 4 != 0 || len / 4 * 3 > sizeof(raw) || !base64_ok(b64, len))
        return -1;
    n = EVP_DecodeBlock(raw, (const unsigned char *) b64, (int) len);
    if (n < 0)
        return -1;
    while (pad < 2 && b64[len - 1 - pad] == '=')
        pad++;
    n -= (int) pad;
    if (n != TICKET_KEY_SHORT && n != TICKET_KEY_LONG)
        return -1;
    k->size = (size_t) n;
    memcpy(k->name, raw, TICKET_NAME_LEN);
    if (n == TICKET_KEY_SHORT) {
        memcpy(k->hmac, raw + 16, 16);
        memcpy(k->aes, raw + 32, 16);
    } else {
        memcpy(k->hmac, raw + 16, 32);
        memcpy(k->aes, raw + 48, 32);
    }
    OPENSSL_cleanse(raw, sizeof(raw));
    return 0;
}

/* Keys of "tickets" into keys[] (up to max); the index of a bad one, or -1. */
static int decode_keys(json_t *tickets, ticket_key_t *keys, size_t *n, size_t max)
{
    json_t *v;
    size_t i;

    *n = 0;
    if (json_is_string(tickets))
        return decode_key(json_string_value(tickets), &keys[(*n)++]) < 0 ? 0 : -1;
    json_array_foreach(tickets, i, v) {
        if (i >= max || decode_key(json_string_value(v), &keys[(*n)++]) < 0)
            return (int) i;
    }
    return -1;
}

static int ticket_cb(SSL *ssl, unsigned char name[16], unsigned char *iv,
                     EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
    wr_tls_server_t *s = SSL_get_app_data(ssl);
    const ticket_key_t *k = NULL;
    size_t i = 0;
    OSSL_PARAM params[3];
    const EVP_CIPHER *cipher;

    if (s == NULL || s->nkeys == 0)
        return -1;
    if (enc) {
        k = &s->keys[0];
        memcpy(name, k->name, TICKET_NAME_LEN);
        if (RAND_bytes(iv, TICKET_IV_LEN) != 1)
            return -1;
    } else {
        for (i = 0; i < s->nkeys && k == NULL; i++)
            if (memcmp(name, s->keys[i].name, TICKET_NAME_LEN) == 0)
                k = &s->keys[i];
        if (k == NULL)
            return 0;                    /* unknown key: a full handshake */
    }
    cipher = k->size == TICKET_KEY_SHORT ? EVP_aes_128_cbc() : EVP_aes_256_cbc();
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *) k->hmac,
                                                  k->size == TICKET_KEY_SHORT ? 16 : 32);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *) "SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
    if (EVP_MAC_CTX_set_params(hctx, params) != 1)
        return -1;
    if (enc)
        return EVP_EncryptInit_ex(cctx, cipher, NULL, k->aes, iv) == 1 ? 1 : -1;
    if (EVP_DecryptInit_ex(cctx, cipher, NULL, k->aes, iv) != 1)
        return -1;
    return i == 1 ? 1 : 2;               /* an older key: issue a new ticket */
}

/* ---- contexts ---- */

/* wr_tls_why's text inside a longer sentence: without its final '.'. */
static void drop_period(char *s)
{
    size_t n = strlen(s);

    if (n > 0 && s[n - 1] == '.')
        s[n - 1] = '\0';
}

/* The listener's conf_commands on ctx; -1 with bad = the command refused
 * and why, a clause (no final '.'). */
static int apply_commands(SSL_CTX *ctx, json_t *cmds, const char **bad, char *why,
                          size_t whysz)
{
    SSL_CONF_CTX *cc = SSL_CONF_CTX_new();
    const char *k;
    json_t *v;
    int rc = 0;

    if (cc == NULL) {
        snprintf(why, whysz, "Out of memory.");
        return -1;
    }
    SSL_CONF_CTX_set_flags(cc, SSL_CONF_FLAG_FILE | SSL_CONF_FLAG_SERVER
                           | SSL_CONF_FLAG_CERTIFICATE | SSL_CONF_FLAG_SHOW_ERRORS);
    SSL_CONF_CTX_set_ssl_ctx(cc, ctx);
    json_object_foreach(cmds, k, v) {
        int r = SSL_CONF_cmd(cc, k, json_string_value(v));
        if (r <= 0) {
            *bad = k;
            if (r == -2) {
                ERR_clear_error();
                snprintf(why, whysz, "OpenSSL has no command \"%s\"", k);
            } else {
                char what[WR_TLS_WHY_MAX];
                snprintf(what, sizeof(what), "OpenSSL refused \"%s\": \"%s\"", k,
                         json_string_value(v));
                wr_tls_why(why, whysz, what);
                drop_period(why);
            }
            rc = -1;
            break;
        }
    }
    if (rc == 0 && SSL_CONF_CTX_finish(cc) != 1) {
        *bad = NULL;
        wr_tls_why(why, whysz, "OpenSSL refused the conf_commands");
        drop_period(why);
        rc = -1;
    }
    SSL_CONF_CTX_free(cc);
    return rc;
}

/* Session resumption as "session" says: a server-side cache of cache_size
 * sessions (0: none), tickets (false: none; true: keys of this context;
 * keys: those, shared by every context of the listener). */
static int apply_session(wr_tls_server_t *s, SSL_CTX *ctx, json_t *session)
{
    json_t *cs = json_object_get(session, "cache_size");
    json_t *to = json_object_get(session, "timeout");
    json_t *tk = json_object_get(session, "tickets");
    long cache = cs ? (long) json_integer_value(cs) : WR_TLS_SESSION_CACHE;
    int tickets = tk != NULL && !json_is_false(tk);

    SSL_CTX_set_timeout(ctx, to ? (long) json_integer_value(to) : WR_TLS_SESSION_TIMEOUT);
    if (cache > 0) {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
        SSL_CTX_sess_set_cache_size(ctx, cache);
    } else {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    }
    if (!tickets) {
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        if (cache == 0)
            SSL_CTX_set_num_tickets(ctx, 0);   /* nothing could resume them */
    }
    if (s->nkeys > 0 && SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb) != 1)
        return -1;
    return 0;
}

/* ALPN: "h2" when HTTP/2 is on and the client offers it, else "http/1.1"
 * if offered; a client offering neither goes on without ALPN (as before
 * there was any: it is the client's to give up). */
static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned int inlen, void *arg)
{
    static const unsigned char both[] = "\x02h2\x08http/1.1";
    static const unsigned char h1[] = "\x08http/1.1";
    const wr_tls_server_t *s = arg;
    unsigned char *sel;

    (void) ssl;
    if (SSL_select_next_proto(&sel, outlen, s->h2 ? both : h1,
                              (unsigned) (s->h2 ? sizeof(both) : sizeof(h1)) - 1,
                              in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

int wr_tls_alpn_h2(struct ssl_st *ssl)
{
    const unsigned char *p;
    unsigned int n;

    SSL_get0_alpn_selected(ssl, &p, &n);
    return n == 2 && memcmp(p, "h2", 2) == 0;
}

static SSL_CTX *context_new(wr_tls_server_t *s, const wr_tls_bundle_t *b, json_t *tls,
                            const char *addr, char *why, size_t whysz)
{
    static const unsigned char sid_ctx[] = "warren";
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    const char *bad = NULL;

    if (ctx == NULL) {
        wr_tls_why(why, whysz, "SSL_CTX_new failed");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* A client closing without close_notify is the common case, not an
     * error (a truncation attack matters only to length-less bodies, which
     * requests do not have). */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE
                        | SSL_OP_IGNORE_UNEXPECTED_EOF);
    /* Writes go out record by record (a slow client holds little), a write
     * retried after EAGAIN may come from a buffer that moved, and an idle
     * connection gives its buffers back. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER
                     | SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
    SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, s);
    if (SSL_CTX_use_certificate(ctx, sk_X509_value(b->chain, 0)) != 1
        || SSL_CTX_use_PrivateKey(ctx, b->key) != 1) {
        wr_tls_why(why, whysz, "The certificate cannot be used");
        goto fail;
    }
    for (int i = 1; i < sk_X509_num(b->chain); i++)
        if (SSL_CTX_add1_chain_cert(ctx, sk_X509_value(b->chain, i)) != 1) {
            wr_tls_why(why, whysz, "The certificate chain cannot be used");
            goto fail;
        }
    if (apply_session(s, ctx, json_object_get(tls, "session")) < 0) {
        wr_tls_why(why, whysz, "Session tickets cannot be set up");
        goto fail;
    }
    if (json_object_get(tls, "conf_commands")
        && apply_commands(ctx, json_object_get(tls, "conf_commands"), &bad, why, whysz) < 0) {
        char reason[WR_TLS_WHY_MAX];
        snprintf(reason, sizeof(reason), "%s", why);
        snprintf(why, whysz, "listener \"%s\" conf_commands: %s.", addr, reason);
        goto fail;
    }
    return ctx;

fail:
    SSL_CTX_free(ctx);
    return NULL;
}

/* The client named a host: the first context whose leaf covers it. */
static int sni_cb(SSL *ssl, int *alert, void *arg)
{
    wr_tls_server_t *s = arg;
    const char *host = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

    if (host == NULL || s->n < 2)
        return SSL_TLSEXT_ERR_OK;
    for (size_t i = 0; i < s->n; i++) {
        X509 *leaf = SSL_CTX_get0_certificate(s->ctx[i]);
        if (leaf && X509_check_host(leaf, host, 0, 0, NULL) == 1) {
            if (i > 0)
                SSL_set_SSL_CTX(ssl, s->ctx[i]);
            return SSL_TLSEXT_ERR_OK;
        }
    }
    return SSL_TLSEXT_ERR_OK;            /* no match: the default one */
}

void wr_tls_server_unref(wr_tls_server_t *s)
{
    if (s == NULL || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    for (size_t i = 0; i < s->n; i++)
        SSL_CTX_free(s->ctx[i]);
    free(s->ctx);
    OPENSSL_cleanse(s->keys, sizeof(s->keys));
    free(s);
}

wr_tls_server_t *wr_tls_server_new(json_t *tls, json_t *pems, const char *addr, int h2,
                                   char *why, size_t whysz)
{
    json_t *cert = json_object_get(tls, "certificate");
    json_t *tk = json_object_get(json_object_get(tls, "session"), "tickets");
    size_t n = json_is_array(cert) ? json_array_size(cert) : 1;
    wr_tls_server_t *s = calloc(1, sizeof(*s));

    if (s != NULL) {
        atomic_init(&s->refs, 1);
        s->h2 = h2;
    }
    if (s == NULL || (s->ctx = calloc(n, sizeof(*s->ctx))) == NULL) {
        snprintf(why, whysz, "out of memory");
        goto fail;
    }
    if ((json_is_string(tk) || json_is_array(tk))
        && decode_keys(tk, s->keys, &s->nkeys, TICKET_KEYS_MAX) >= 0) {
        snprintf(why, whysz, "listener \"%s\": a session ticket key is not 48 or 80 "
                 "bytes of base64", addr);
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *name = json_is_array(cert) ? json_array_get(cert, i) : cert;
        json_t *text = json_object_get(pems, json_string_value(name));
        const char *pem = json_string_value(text);
        char bwhy[WR_TLS_WHY_MAX];
        wr_tls_bundle_t *b;

        if (pem == NULL) {
            snprintf(why, whysz, "listener \"%s\": certificate \"%s\" is not loaded",
                     addr, json_string_value(name));
            goto fail;
        }
        b = wr_tls_bundle_parse(pem, json_string_length(text), bwhy, sizeof(bwhy));
        if (b == NULL) {
            snprintf(why, whysz, "listener \"%s\": certificate \"%s\": %s", addr,
                     json_string_value(name), bwhy);
            goto fail;
        }
        s->ctx[i] = context_new(s, b, tls, addr, why, whysz);
        wr_tls_bundle_free(b);
        if (s->ctx[i] == NULL)
            goto fail;
        s->n++;
    }
    SSL_CTX_set_tlsext_servername_callback(s->ctx[0], sni_cb);
    SSL_CTX_set_tlsext_servername_arg(s->ctx[0], s);
    return s;

fail:
    wr_tls_server_unref(s);
    return NULL;
}

struct ssl_st *wr_tls_accept(wr_tls_server_t *s, int fd)
{
    SSL *ssl = SSL_new(s->ctx[0]);

    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
        char why[WR_TLS_WHY_MAX];
        wr_tls_why(why, sizeof(why), "SSL_new failed");
        wr_log(WR_LOG_ERR, "%s", why);
        SSL_free(ssl);
        return NULL;
    }
    SSL_set_accept_state(ssl);
    SSL_set_app_data(ssl, s);
    atomic_fetch_add(&s->refs, 1);      /* let go in wr_tls_close */
    return ssl;
}

void wr_tls_close(struct ssl_st *ssl)
{
    wr_tls_server_t *s;

    if (ssl == NULL)
        return;
    s = SSL_get_app_data(ssl);
    wr_tls_shutdown(ssl);
    SSL_free(ssl);
    wr_tls_server_unref(s);
}

/* ---- checking a configuration (the controller) ---- */

/* Append "/seg" to the pointer in out, escaped as RFC 6901 says. */
static void pointer_add(char *out, size_t outsz, const char *seg)
{
    size_t o = strlen(out);

    if (o + 1 < outsz)
        out[o++] = '/';
    for (const char *p = seg; *p && o + 3 < outsz; p++) {
        if (*p == '~' || *p == '/') {
            out[o++] = '~';
            out[o++] = *p == '~' ? '0' : '1';
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
}

/* "/listeners/<addr>/tls/<a>[/<b>]". */
static void listener_pointer(char *out, size_t outsz, const char *addr, const char *a,
                             const char *b)
{
    snprintf(out, outsz, "/listeners");
    pointer_add(out, outsz, addr);
    pointer_add(out, outsz, "tls");
    pointer_add(out, outsz, a);
    if (b != NULL)
        pointer_add(out, outsz, b);
}

static int check_listener(const char *addr, json_t *tls, SSL_CTX *scratch, char *err,
                          size_t errlen)
{
    json_t *cmds = json_object_get(tls, "conf_commands");
    json_t *tk = json_object_get(json_object_get(tls, "session"), "tickets");
    char ptr[WR_TLS_WHY_MAX], why[WR_TLS_WHY_MAX], index[32];
    const char *bad = NULL;
    ticket_key_t keys[TICKET_KEYS_MAX];
    size_t nkeys;
    int at;

    if ((json_is_string(tk) || json_is_array(tk))
        && (at = decode_keys(tk, keys, &nkeys, TICKET_KEYS_MAX)) >= 0) {
        OPENSSL_cleanse(keys, sizeof(keys));
        snprintf(index, sizeof(index), "%d", at);
        listener_pointer(ptr, sizeof(ptr), addr, "session", "tickets");
        if (json_is_array(tk))
            pointer_add(ptr, sizeof(ptr), index);
        snprintf(err, errlen, "The value at \"%s\" cannot be used: a session ticket key "
                 "is 48 or 80 bytes, base64-encoded%s.", ptr,
                 json_is_array(tk) && (size_t) at >= TICKET_KEYS_MAX
                     ? " (and at most 16 keys)" : "");
        return -1;
    }
    OPENSSL_cleanse(keys, sizeof(keys));
    if (cmds == NULL || apply_commands(scratch, cmds, &bad, why, sizeof(why)) == 0)
        return 0;
    listener_pointer(ptr, sizeof(ptr), addr, "conf_commands", bad);
    snprintf(err, errlen, "The value at \"%s\" cannot be used: %s.", ptr, why);
    return -1;
}

int wr_tls_check(json_t *conf, char *err, size_t errlen)
{
    json_t *ls = json_object_get(conf, "listeners"), *l;
    const char *addr;

    json_object_foreach(ls, addr, l) {
        json_t *tls = json_object_get(l, "tls");
        SSL_CTX *scratch;
        int rc;

        if (!json_is_object(tls))
            continue;
        /* A context of its own per listener: commands do not add up. */
        scratch = SSL_CTX_new(TLS_server_method());
        if (scratch == NULL) {
            snprintf(err, errlen, "SSL_CTX_new failed.");
            return -1;
        }
        rc = check_listener(addr, tls, scratch, err, errlen);
        SSL_CTX_free(scratch);
        if (rc < 0)
            return -1;
    }
    return 0;
}
