/* What the files of src/tls share. */
#ifndef WR_TLS_INTERNAL_H
#define WR_TLS_INTERNAL_H

#include <limits.h>
#include <stdlib.h>

#include <openssl/ssl.h>

#include "tls/tls.h"

struct wr_tls_bundle {
    EVP_PKEY        *key;
    STACK_OF(X509)  *chain;      /* leaf first */
};

/* why = "<what>: <OpenSSL's first queued error>." (the queue is cleared). */
void wr_tls_why(char *why, size_t whysz, const char *what);

#endif
