/*
 * Certificate bundles: PEM text holding one private key and its chain, as
 * the control API takes them (PUT /certificates/NAME), and the description
 * GET /certificates gives of them.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tls/internal.h"

int wr_tls_name_ok(const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n > WR_TLS_NAME_MAX || name[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
              || (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
            return 0;
    }
    return 1;
}

void wr_tls_bundle_free(wr_tls_bundle_t *b)
{
    if (b == NULL)
        return;
    EVP_PKEY_free(b->key);
    sk_X509_pop_free(b->chain, X509_free);
    free(b);
}

/* An encrypted key would need a password nobody can give: refuse it. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
    return -1;
}

/* One PEM block: a certificate is kept, a key too (only one), EC parameters
 * (openssl ecparam's habit) are skipped. 0, or -1 with why. */
static int take_block(wr_tls_bundle_t *b, const char *name, const char *header,
                      const unsigned char *data, long len, char *why, size_t whysz)
{
    const unsigned char *p = data;

    if (strcmp(name, "CERTIFICATE") == 0 || strcmp(name, "TRUSTED CERTIFICATE") == 0) {
        X509 *x = strcmp(name, "CERTIFICATE") == 0 ? d2i_X509(NULL, &p, len)
                                                    : d2i_X509_AUX(NULL, &p, len);
        if (x == NULL || !sk_X509_push(b->chain, x)) {
            X509_free(x);
            wr_tls_why(why, whysz, "A certificate cannot be decoded");
            return -1;
        }
        return 0;
    }
    if (strcmp(name, "EC PARAMETERS") == 0)
        return 0;
    if (strstr(name, "PRIVATE KEY") != NULL) {
        BIO *mem;

        if (b->key != NULL) {
            snprintf(why, whysz, "The bundle holds more than one private key.");
            return -1;
        }
        /* PKCS#8's own name, or the older "Proc-Type: 4,ENCRYPTED" header. */
        if (strcmp(name, "ENCRYPTED PRIVATE KEY") == 0 || strstr(header, "ENCRYPTED") != NULL) {
            snprintf(why, whysz, "The private key is encrypted; upload it decrypted.");
            return -1;
        }
        /* Decode through PEM again: each key format has its own reader. */
        mem = BIO_new(BIO_s_mem());
        if (mem != NULL && PEM_write_bio(mem, name, "", data, len) > 0)
            b->key = PEM_read_bio_PrivateKey(mem, NULL, no_password, NULL);
        BIO_free(mem);
        if (b->key == NULL) {
            wr_tls_why(why, whysz, "The private key cannot be decoded");
            return -1;
        }
        ERR_clear_error();               /* the decoders' tries on the way */
        return 0;
    }
    snprintf(why, whysz, "Unexpected PEM block \"%s\": a bundle holds a private key "
             "and certificates.", name);
    return -1;
}

/* The leaf is the certificate the key belongs to: first, the rest in order. */
static int leaf_first(wr_tls_bundle_t *b, char *why, size_t whysz)
{
    int n = sk_X509_num(b->chain);

    for (int i = 0; i < n; i++) {
        X509 *x = sk_X509_value(b->chain, i);
        if (X509_check_private_key(x, b->key) == 1) {
            if (i > 0) {
                sk_X509_delete(b->chain, i);
                sk_X509_unshift(b->chain, x);
            }
            ERR_clear_error();
            return 0;
        }
    }
    ERR_clear_error();
    snprintf(why, whysz, "The private key matches none of the certificates.");
    return -1;
}

wr_tls_bundle_t *wr_tls_bundle_parse(const char *pem, size_t len, char *why, size_t whysz)
{
    wr_tls_bundle_t *b = calloc(1, sizeof(*b));
    BIO *in = NULL;
    char *name = NULL, *header = NULL;
    unsigned char *data = NULL;
    long dlen;
    int blocks = 0;

    if (b == NULL || (b->chain = sk_X509_new_null()) == NULL || len > INT_MAX
        || (in = BIO_new_mem_buf(pem, (int) len)) == NULL) {
        snprintf(why, whysz, "Out of memory.");
        goto fail;
    }
    while (PEM_read_bio(in, &name, &header, &data, &dlen) == 1) {
        int rc = take_block(b, name, header, data, dlen, why, whysz);
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(data);
        name = header = NULL;
        data = NULL;
        if (rc < 0)
            goto fail;
        blocks++;
    }
    /* The reader stops at the end of the text, or at a block it cannot
     * read: that one must not drop the blocks after it unnoticed. */
    if (ERR_GET_REASON(ERR_peek_last_error()) != PEM_R_NO_START_LINE) {
        wr_tls_why(why, whysz, "A PEM block cannot be read");
        goto fail;
    }
    ERR_clear_error();
    if (blocks == 0) {
        snprintf(why, whysz, "No PEM block found: the body must be PEM text.");
        goto fail;
    }
    if (b->key == NULL) {
        snprintf(why, whysz, "The bundle has no private key.");
        goto fail;
    }
    if (sk_X509_num(b->chain) == 0) {
        snprintf(why, whysz, "The bundle has no certificate.");
        goto fail;
    }
    if (leaf_first(b, why, whysz) < 0)
        goto fail;
    BIO_free(in);
    return b;

fail:
    BIO_free(in);
    wr_tls_bundle_free(b);
    ERR_clear_error();
    return NULL;
}

/* ---- description ---- */

static json_t *key_info(EVP_PKEY *key)
{
    char buf[128], group[64];
    size_t glen = 0;

    switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA:
        snprintf(buf, sizeof(buf), "RSA (%d bits)", EVP_PKEY_get_bits(key));
        break;
    case EVP_PKEY_EC:
        if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                           sizeof(group), &glen) != 1)
            snprintf(group, sizeof(group), "%d bits", EVP_PKEY_get_bits(key));
        snprintf(buf, sizeof(buf), "EC (%s)", group);
        break;
    default:
        snprintf(buf, sizeof(buf), "%s (%d bits)",
                 EVP_PKEY_get0_type_name(key) ? EVP_PKEY_get0_type_name(key) : "unknown",
                 EVP_PKEY_get_bits(key));
    }
    ERR_clear_error();
    return json_string(buf);
}

static int set_text(json_t *o, const char *key, const unsigned char *s, int len)
{
    json_t *v = json_stringn((const char *) s, (size_t) len);

    return v == NULL ? -1 : json_object_set_new(o, key, v);
}

/* The fields of a name Unit lists, those present, the first of each. */
static json_t *name_info(const X509_NAME *xn)
{
    static const struct { int nid; const char *key; } fields[] = {
        { NID_commonName, "common_name" },
        { NID_countryName, "country" },
        { NID_stateOrProvinceName, "state_or_province" },
        { NID_localityName, "locality" },
        { NID_organizationName, "organization" },
        { NID_organizationalUnitName, "department" },
    };
    json_t *o = json_object();

    for (size_t i = 0; o && i < sizeof(fields) / sizeof(fields[0]); i++) {
        int at = X509_NAME_get_index_by_NID(xn, fields[i].nid, -1);
        unsigned char *utf8 = NULL;
        int n;

        if (at < 0)
            continue;
        n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(xn, at)));
        if (n >= 0 && set_text(o, fields[i].key, utf8, n) < 0) {
            json_decref(o);
            o = NULL;
        }
        OPENSSL_free(utf8);
    }
    return o;
}

/* The subjectAltName's DNS names, or NULL when it has none. */
static json_t *alt_names(X509 *x)
{
    GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    json_t *a = NULL;

    for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
        GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        if (g->type != GEN_DNS)
            continue;
        if (a == NULL && (a = json_array()) == NULL)
            break;
        json_array_append_new(a, json_stringn((const char *) ASN1_STRING_get0_data(g->d.dNSName),
                                              (size_t) ASN1_STRING_length(g->d.dNSName)));
    }
    GENERAL_NAMES_free(gens);
    return a;
}

/* "Dec  4 13:50:00 2026 GMT", as OpenSSL prints a time. */
static json_t *time_info(const ASN1_TIME *t)
{
    BIO *mem = BIO_new(BIO_s_mem());
    char *p;
    long n;
    json_t *s = NULL;

    if (mem != NULL && ASN1_TIME_print(mem, t) == 1) {
        n = BIO_get_mem_data(mem, &p);
        s = json_stringn(p, (size_t) n);
    }
    BIO_free(mem);
    return s;
}

static json_t *cert_info(X509 *x)
{
    json_t *subject = name_info(X509_get_subject_name(x));
    json_t *alt = alt_names(x);

    if (subject && alt)
        json_object_set_new(subject, "alt_names", alt);
    else
        json_decref(alt);
    return json_pack("{s:o?,s:o?,s:{s:o?,s:o?}}", "subject", subject,
                     "issuer", name_info(X509_get_issuer_name(x)),
                     "validity", "since", time_info(X509_get0_notBefore(x)),
                     "until", time_info(X509_get0_notAfter(x)));
}

json_t *wr_tls_bundle_info(const wr_tls_bundle_t *b)
{
    json_t *chain = json_array();

    for (int i = 0; chain && i < sk_X509_num(b->chain); i++)
        if (json_array_append_new(chain, cert_info(sk_X509_value(b->chain, i))) < 0) {
            json_decref(chain);
            chain = NULL;
        }
    return json_pack("{s:o,s:o}", "key", key_info(b->key), "chain", chain);
}
