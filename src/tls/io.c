/*
 * Non-blocking TLS connection I/O with the socket calls' shape, so the
 * router's connection code reads one way for both: > 0 bytes, 0 end of
 * stream, -1 with errno (EAGAIN: wait for readiness and call again).
 */
#include <errno.h>
#include <stdio.h>

#include <openssl/err.h>

#include "core/log.h"
#include "tls/internal.h"

const char *wr_tls_library(void)
{
    return OpenSSL_version(OPENSSL_VERSION);
}

/* Map an SSL_get_error() of rc to errno; -1, or 0 at a clean end. A
 * protocol error is said in why (when given) or logged. */
static int fail(SSL *ssl, int rc, const char *what, char *why, size_t whysz)
{
    int e = SSL_get_error(ssl, rc);
    char text[WR_TLS_WHY_MAX];

    switch (e) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        errno = EAGAIN;
        return -1;
    case SSL_ERROR_ZERO_RETURN:          /* close_notify */
        return 0;
    case SSL_ERROR_SYSCALL:
        /* A peer gone without close_notify: the socket's errno, or none. */
        ERR_clear_error();
        if (errno == 0 || errno == EAGAIN)
            errno = ECONNRESET;
        return -1;
    default:
        if (why != NULL) {
            wr_tls_why(why, whysz, what);
        } else {
            wr_tls_why(text, sizeof(text), what);
            wr_log(WR_LOG_INFO, "%s", text);
        }
        errno = EPROTO;
        return -1;
    }
}

int wr_tls_handshake(struct ssl_st *ssl, int *want_write, char *why, size_t whysz)
{
    int rc;

    ERR_clear_error();
    errno = 0;
    why[0] = '\0';
    rc = SSL_do_handshake(ssl);
    if (rc == 1)
        return 1;
    *want_write = SSL_get_error(ssl, rc) == SSL_ERROR_WANT_WRITE;
    if (fail(ssl, rc, "TLS handshake failed", why, whysz) < 0 && errno == EAGAIN)
        return 0;
    if (why[0] == '\0')
        snprintf(why, whysz, "closed the connection during the TLS handshake.");
    return -1;
}

ssize_t wr_tls_read(struct ssl_st *ssl, void *buf, size_t len)
{
    int n;

    if (len > INT_MAX)
        len = INT_MAX;
    ERR_clear_error();
    errno = 0;
    n = SSL_read(ssl, buf, (int) len);
    return n > 0 ? n : fail(ssl, n, "TLS read failed", NULL, 0);
}

ssize_t wr_tls_write(struct ssl_st *ssl, const void *buf, size_t len)
{
    int n;

    if (len > INT_MAX)
        len = INT_MAX;
    ERR_clear_error();
    errno = 0;
    n = SSL_write(ssl, buf, (int) len);
    if (n > 0)
        return n;
    if (fail(ssl, n, "TLS write failed", NULL, 0) == 0)
        errno = EPIPE;                   /* the peer closed: nothing more goes */
    return -1;
}

void wr_tls_shutdown(struct ssl_st *ssl)
{
    /* After a fatal error OpenSSL would refuse anyway; a socket without room
     * just misses the alert, which a client survives. */
    if (SSL_in_init(ssl))
        return;
    ERR_clear_error();
    (void) SSL_shutdown(ssl);
    ERR_clear_error();
}
