/*
 * TLS, on OpenSSL: certificate bundles (a private key and its chain, PEM),
 * their description for the control API, the server side of a listener
 * (one context per bundle, chosen by SNI) and non-blocking connection I/O.
 *
 *   controller  wr_tls_name_ok, wr_tls_bundle_parse/_info/_free,
 *               wr_tls_check (a config's conf_commands and ticket keys)
 *   main        wr_tls_name_ok (the store is files it never parses)
 *   router      wr_tls_server_*, wr_tls_handshake/_read/_write/_close
 */
#ifndef WR_TLS_H
#define WR_TLS_H

#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

#define WR_TLS_NAME_MAX      128                 /* a bundle's name */
#define WR_TLS_BUNDLE_MAX    (1024L * 1024)      /* a bundle's PEM text */
#define WR_TLS_WHY_MAX       512
#define WR_TLS_RECORD_MAX    16384               /* plaintext bytes of a record */
#define WR_TLS_CERTS_DIR     "certs"             /* under the state dir */

/* Unit's defaults of a listener's "tls"/"session". */
#define WR_TLS_SESSION_TIMEOUT   300
#define WR_TLS_SESSION_CACHE     0

struct ssl_st;

/* "OpenSSL 3.0.19 27 Jan 2026": the library in use (--version). */
const char *wr_tls_library(void);

/* ---- bundles ---- */

typedef struct wr_tls_bundle wr_tls_bundle_t;

/* 1-128 of [A-Za-z0-9._-], not starting with '.': a file name in the store. */
int      wr_tls_name_ok(const char *name);

/* Parse PEM text: exactly one private key (not encrypted), one or more
 * certificates; the leaf (the one the key signs for) goes first, the rest
 * keep their order. NULL with why set when the text is not such a bundle. */
wr_tls_bundle_t *wr_tls_bundle_parse(const char *pem, size_t len, char *why, size_t whysz);
void     wr_tls_bundle_free(wr_tls_bundle_t *b);

/* The control API's description: {"key": "RSA (2048 bits)", "chain": [{"subject",
 * "issuer", "validity"}, ...]}. New reference, NULL when out of memory. */
json_t  *wr_tls_bundle_info(const wr_tls_bundle_t *b);

/* ---- configuration ---- */

/*
 * What only OpenSSL can tell of a validated config: each listener's
 * conf_commands and session ticket keys. 0, or -1 with err set to
 * "The value at \"<pointer>\" ..." (the control API's compile errors).
 */
int      wr_tls_check(json_t *conf, char *err, size_t errlen);

/* ---- the server side of one listener (router) ---- */

typedef struct wr_tls_server wr_tls_server_t;

/* Build from the listener's "tls" object; pems: {"name": "PEM text"} of
 * the bundles it names; h2: ALPN may choose HTTP/2. NULL with why set. Shared by every thread; the
 * caller's reference is let go with wr_tls_server_unref (connections hold
 * their own). */
wr_tls_server_t *wr_tls_server_new(json_t *tls, json_t *pems, const char *addr, int h2,
                                   char *why, size_t whysz);
void     wr_tls_server_unref(wr_tls_server_t *s);

/* A connection of the listener on fd, not yet shaken hands: NULL on failure
 * (logged). */
struct ssl_st *wr_tls_accept(wr_tls_server_t *s, int fd);

/* 1 done; 0 not yet (*want_write: wait until fd is writable, else readable);
 * -1 failed, why says how (a client's fault, as a rule: the caller logs it
 * at info with the client's address). */
int      wr_tls_handshake(struct ssl_st *ssl, int *want_write, char *why, size_t whysz);
/* After the handshake: ALPN chose HTTP/2. */
int      wr_tls_alpn_h2(struct ssl_st *ssl);

/* recv()/send() semantics: > 0 bytes, 0 end of stream (read), -1 with errno
 * EAGAIN (try when the socket is ready again) or another error. A write
 * that said EAGAIN is retried with the same bytes at the start (they may
 * have moved). */
ssize_t  wr_tls_read(struct ssl_st *ssl, void *buf, size_t len);
ssize_t  wr_tls_write(struct ssl_st *ssl, const void *buf, size_t len);

/* Send close_notify if the socket takes it now (never waits), then free. */
void     wr_tls_close(struct ssl_st *ssl);
/* Send close_notify if the socket takes it now; the connection stays. */
void     wr_tls_shutdown(struct ssl_st *ssl);

#endif
