/*
 * tls/bundle.c and wr_tls_check: certificate bundles (PEM text holding one
 * private key and its chain) built in-process with OpenSSL (a small CA, an
 * intermediate, RSA and EC leaves), their JSON description, bundle names,
 * and a config's conf_commands and session ticket keys.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tls/tls.h"

#define CA_CN     "Warren Test CA"
#define INTER_CN  "Warren Test Intermediate"
#define RSA_CN    "www.example.com"
#define EC_CN     "ec.example.net"
#define LEAF2_CN  "deep.example.org"

/* ---------------------------------------------------------------- fixture */

/* Made once for the whole group: key generation is the slow part. */
typedef struct {
    EVP_PKEY *ca_key, *inter_key, *rsa_key, *ec_key, *leaf2_key, *other_key;
    X509     *ca, *inter, *rsa_leaf, *ec_leaf, *leaf2;
    char     *ca_pem, *inter_pem, *rsa_leaf_pem, *ec_leaf_pem, *leaf2_pem;
    char     *rsa_key_pem;           /* PKCS#8 "PRIVATE KEY" */
    char     *rsa_key_trad_pem;      /* "RSA PRIVATE KEY" */
    char     *ec_key_pem;            /* PKCS#8 */
    char     *ec_key_trad_pem;       /* "EC PRIVATE KEY" */
    char     *ec_params_pem;         /* "EC PARAMETERS" */
    char     *leaf2_key_pem, *other_key_pem;
} fx_t;

static fx_t fx;

/* The text a BIO holds, as a new NUL-terminated string. */
static char *bio_text(BIO *b)
{
    char *p, *s;
    long n = BIO_get_mem_data(b, &p);

    assert_true(n > 0);
    s = malloc((size_t) n + 1);
    assert_non_null(s);
    memcpy(s, p, (size_t) n);
    s[n] = '\0';
    BIO_free(b);
    return s;
}

static char *key_pem(EVP_PKEY *k)
{
    BIO *b = BIO_new(BIO_s_mem());

    assert_int_equal(PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL), 1);
    return bio_text(b);
}

static char *key_trad_pem(EVP_PKEY *k)
{
    BIO *b = BIO_new(BIO_s_mem());

    assert_int_equal(PEM_write_bio_PrivateKey_traditional(b, k, NULL, NULL, 0, NULL, NULL),
                     1);
    return bio_text(b);
}

static char *cert_pem(X509 *x)
{
    BIO *b = BIO_new(BIO_s_mem());

    assert_int_equal(PEM_write_bio_X509(b, x), 1);
    return bio_text(b);
}

static void name_add(X509_NAME *n, const char *field, const char *value)
{
    assert_int_equal(X509_NAME_add_entry_by_txt(n, field, MBSTRING_UTF8,
                                                (const unsigned char *) value, -1, -1, 0),
                     1);
}

static void ext_add(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;

    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(x, ext, -1), 1);
    X509_EXTENSION_free(ext);
}

/*
 * A certificate for key, with subject C/ST/L/O/OU/CN (org and ou may be
 * NULL: left out), signed by issuer_key (self-signed when issuer is NULL).
 */
static X509 *make_cert(EVP_PKEY *key, const char *cn, const char *org, const char *ou,
                       const char *san, int ca, X509 *issuer, EVP_PKEY *issuer_key,
                       long serial)
{
    X509 *x = X509_new();
    X509_NAME *n;

    assert_non_null(x);
    assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), serial), 1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 365L * 24 * 3600));
    assert_int_equal(X509_set_pubkey(x, key), 1);
    n = X509_get_subject_name(x);
    name_add(n, "C", "US");
    name_add(n, "ST", "California");
    name_add(n, "L", "San Francisco");
    if (org != NULL)
        name_add(n, "O", org);
    if (ou != NULL)
        name_add(n, "OU", ou);
    name_add(n, "CN", cn);
    assert_int_equal(X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n), 1);
    ext_add(x, issuer ? issuer : x, NID_basic_constraints, ca ? "critical,CA:TRUE"
                                                              : "CA:FALSE");
    if (san != NULL)
        ext_add(x, issuer ? issuer : x, NID_subject_alt_name, san);
    assert_true(X509_sign(x, issuer_key, EVP_sha256()) > 0);
    return x;
}

static EVP_PKEY *ec_gen(void)
{
    EVP_PKEY *k = EVP_EC_gen("P-256");

    assert_non_null(k);
    return k;
}

static int setup(void **state)
{
    BIO *b;

    fx.ca_key = ec_gen();
    fx.inter_key = ec_gen();
    fx.ec_key = ec_gen();
    fx.leaf2_key = ec_gen();
    fx.other_key = ec_gen();
    fx.rsa_key = EVP_RSA_gen(2048);
    assert_non_null(fx.rsa_key);

    fx.ca = make_cert(fx.ca_key, CA_CN, "Warren Authority", "Root Team", NULL, 1,
                      NULL, fx.ca_key, 1);
    fx.inter = make_cert(fx.inter_key, INTER_CN, "Warren Authority", NULL, NULL, 1,
                         fx.ca, fx.ca_key, 2);
    /* A subjectAltName of DNS names among others, which the info leaves out. */
    fx.rsa_leaf = make_cert(fx.rsa_key, RSA_CN, "Example Inc", "Web Ops",
                            "DNS:www.example.com,IP:192.0.2.7,DNS:example.com,"
                            "email:ops@example.com,URI:https://example.com/",
                            0, fx.ca, fx.ca_key, 3);
    /* Non-ASCII text: the info is UTF-8. */
    fx.ec_leaf = make_cert(fx.ec_key, EC_CN, "Bücher & Co", "Über",
                           "DNS:ec.example.net", 0, fx.ca, fx.ca_key, 4);
    fx.leaf2 = make_cert(fx.leaf2_key, LEAF2_CN, "Deep", NULL, "DNS:deep.example.org",
                         0, fx.inter, fx.inter_key, 5);

    fx.ca_pem = cert_pem(fx.ca);
    fx.inter_pem = cert_pem(fx.inter);
    fx.rsa_leaf_pem = cert_pem(fx.rsa_leaf);
    fx.ec_leaf_pem = cert_pem(fx.ec_leaf);
    fx.leaf2_pem = cert_pem(fx.leaf2);
    fx.rsa_key_pem = key_pem(fx.rsa_key);
    fx.rsa_key_trad_pem = key_trad_pem(fx.rsa_key);
    fx.ec_key_pem = key_pem(fx.ec_key);
    fx.ec_key_trad_pem = key_trad_pem(fx.ec_key);
    fx.leaf2_key_pem = key_pem(fx.leaf2_key);
    fx.other_key_pem = key_pem(fx.other_key);
    b = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_Parameters(b, fx.ec_key), 1);
    fx.ec_params_pem = bio_text(b);

    /* What the tests rely on: the formats the writers chose. */
    assert_non_null(strstr(fx.rsa_key_pem, "-----BEGIN PRIVATE KEY-----"));
    assert_non_null(strstr(fx.rsa_key_trad_pem, "-----BEGIN RSA PRIVATE KEY-----"));
    assert_non_null(strstr(fx.ec_key_trad_pem, "-----BEGIN EC PRIVATE KEY-----"));
    assert_non_null(strstr(fx.ec_params_pem, "-----BEGIN EC PARAMETERS-----"));
    *state = &fx;
    return 0;
}

static int teardown(void **state)
{
    EVP_PKEY *keys[] = { fx.ca_key, fx.inter_key, fx.rsa_key, fx.ec_key, fx.leaf2_key,
                         fx.other_key };
    X509 *certs[] = { fx.ca, fx.inter, fx.rsa_leaf, fx.ec_leaf, fx.leaf2 };
    char *texts[] = { fx.ca_pem, fx.inter_pem, fx.rsa_leaf_pem, fx.ec_leaf_pem,
                      fx.leaf2_pem, fx.rsa_key_pem, fx.rsa_key_trad_pem, fx.ec_key_pem,
                      fx.ec_key_trad_pem, fx.ec_params_pem, fx.leaf2_key_pem,
                      fx.other_key_pem };

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        EVP_PKEY_free(keys[i]);
    for (size_t i = 0; i < sizeof(certs) / sizeof(certs[0]); i++)
        X509_free(certs[i]);
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
        free(texts[i]);
    memset(&fx, 0, sizeof(fx));
    return 0;
}

/* ---------------------------------------------------------------- helpers */

/* The PEM texts given, one after the other (a NULL ends the list). */
static char *cat(const char *first, ...)
{
    va_list ap;
    size_t len = 0;
    char *s;
    const char *p;

    va_start(ap, first);
    for (p = first; p != NULL; p = va_arg(ap, const char *))
        len += strlen(p);
    va_end(ap);
    s = malloc(len + 1);
    assert_non_null(s);
    s[0] = '\0';
    va_start(ap, first);
    for (p = first; p != NULL; p = va_arg(ap, const char *))
        strcat(s, p);
    va_end(ap);
    return s;
}

/* Parses text; the description of what it parsed, else NULL with why. */
static json_t *parse_info(const char *text, char *why, size_t whysz)
{
    wr_tls_bundle_t *b;
    json_t *info;

    why[0] = '\0';
    b = wr_tls_bundle_parse(text, strlen(text), why, whysz);
    if (b == NULL) {
        assert_true(why[0] != '\0');            /* a refusal says why */
        return NULL;
    }
    info = wr_tls_bundle_info(b);
    assert_non_null(info);
    wr_tls_bundle_free(b);
    return info;
}

static json_t *ok_info(const char *text)
{
    char why[WR_TLS_WHY_MAX];
    json_t *info = parse_info(text, why, sizeof(why));

    if (info == NULL)
        fail_msg("refused: %s", why);
    return info;
}

/* Parses text[0..len): 1 when refused with a reason holding want, else 0. */
static int refusal_says(const char *text, size_t len, const char *want, char *why,
                        size_t whysz)
{
    wr_tls_bundle_t *b;

    why[0] = '\0';
    b = wr_tls_bundle_parse(text, len, why, whysz);
    if (b != NULL) {
        wr_tls_bundle_free(b);
        snprintf(why, whysz, "(accepted)");
        return 0;
    }
    return why[0] != '\0' && strstr(why, want) != NULL;
}

/* The bundle is refused with a reason holding want ("" for any reason). */
static void refused(const char *text, size_t len, const char *want)
{
    char why[WR_TLS_WHY_MAX];

    if (!refusal_says(text, len, want, why, sizeof(why)))
        fail_msg("why is \"%s\", wanted a refusal with \"%s\"", why, want);
}

/* The same for text, which is freed. */
static void refused_text(char *text, const char *want)
{
    char why[WR_TLS_WHY_MAX];
    int ok = refusal_says(text, strlen(text), want, why, sizeof(why));

    free(text);
    if (!ok)
        fail_msg("why is \"%s\", wanted a refusal with \"%s\"", why, want);
}

static const char *chain_cn(json_t *info, size_t i)
{
    json_t *cn = json_object_get(json_object_get(json_array_get(
                     json_object_get(info, "chain"), i), "subject"), "common_name");

    assert_true(json_is_string(cn));
    return json_string_value(cn);
}

/* The chain's subject CNs, in order, are exactly those given. */
static void chain_is(json_t *info, size_t n, ...)
{
    json_t *chain = json_object_get(info, "chain");
    va_list ap;

    assert_true(json_is_array(chain));
    assert_int_equal(json_array_size(chain), n);
    va_start(ap, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(chain_cn(info, i), va_arg(ap, const char *));
    va_end(ap);
}

/* text (freed) parses, and its chain's subject CNs are exactly those given. */
static void ok_chain(char *text, size_t n, ...)
{
    char why[WR_TLS_WHY_MAX];
    json_t *info = parse_info(text, why, sizeof(why));
    json_t *chain = json_object_get(info, "chain");
    va_list ap;

    free(text);                          /* before any assert: no leak on failure */
    if (info == NULL)
        fail_msg("refused: %s", why);

    assert_true(json_is_array(chain));
    assert_int_equal(json_array_size(chain), n);
    va_start(ap, n);
    for (size_t i = 0; i < n; i++) {
        const char *want = va_arg(ap, const char *);
        if (strcmp(chain_cn(info, i), want) != 0)
            fail_msg("chain[%zu] is \"%s\", wanted \"%s\"", i, chain_cn(info, i), want);
    }
    va_end(ap);
    json_decref(info);
}

static const char *str_at(json_t *o, const char *a, const char *b)
{
    json_t *v = json_object_get(json_object_get(o, a), b);

    assert_true(json_is_string(v));
    return json_string_value(v);
}

/* -------------------------------------------------------------- bundles */

static void test_key_then_cert(void **state)
{
    ok_chain(cat(fx.rsa_key_pem, fx.rsa_leaf_pem, NULL), 1, RSA_CN);
    ok_chain(cat(fx.ec_key_pem, fx.ec_leaf_pem, NULL), 1, EC_CN);
    /* The traditional formats ("RSA PRIVATE KEY", "EC PRIVATE KEY") too. */
    ok_chain(cat(fx.rsa_key_trad_pem, fx.rsa_leaf_pem, NULL), 1, RSA_CN);
    ok_chain(cat(fx.ec_key_trad_pem, fx.ec_leaf_pem, NULL), 1, EC_CN);
}

static void test_cert_then_key(void **state)
{
    ok_chain(cat(fx.rsa_leaf_pem, fx.rsa_key_pem, NULL), 1, RSA_CN);
    /* A CA before the leaf: the leaf still comes first. */
    ok_chain(cat(fx.ca_pem, fx.rsa_leaf_pem, fx.rsa_key_pem, NULL), 2, RSA_CN, CA_CN);
    ok_chain(cat(fx.ca_pem, fx.ec_key_pem, fx.ec_leaf_pem, NULL), 2, EC_CN, CA_CN);
}

static void test_chain_order(void **state)
{
    /* leaf + intermediate, the key before, between, after */
    ok_chain(cat(fx.leaf2_key_pem, fx.leaf2_pem, fx.inter_pem, NULL), 2, LEAF2_CN, INTER_CN);
    ok_chain(cat(fx.leaf2_pem, fx.leaf2_key_pem, fx.inter_pem, NULL), 2, LEAF2_CN, INTER_CN);
    ok_chain(cat(fx.leaf2_pem, fx.inter_pem, fx.leaf2_key_pem, NULL), 2, LEAF2_CN, INTER_CN);
    /* intermediate first */
    ok_chain(cat(fx.leaf2_key_pem, fx.inter_pem, fx.leaf2_pem, NULL), 2, LEAF2_CN, INTER_CN);
    ok_chain(cat(fx.inter_pem, fx.leaf2_key_pem, fx.leaf2_pem, NULL), 2, LEAF2_CN, INTER_CN);
    ok_chain(cat(fx.inter_pem, fx.leaf2_pem, fx.leaf2_key_pem, NULL), 2, LEAF2_CN, INTER_CN);
    /* The leaf moves to the front, the others keep their order (no swap). */
    ok_chain(cat(fx.ca_pem, fx.inter_pem, fx.leaf2_pem, fx.leaf2_key_pem, NULL), 3,
             LEAF2_CN, CA_CN, INTER_CN);
    ok_chain(cat(fx.inter_pem, fx.ca_pem, fx.leaf2_key_pem, fx.leaf2_pem, NULL), 3,
             LEAF2_CN, INTER_CN, CA_CN);
    ok_chain(cat(fx.leaf2_pem, fx.ca_pem, fx.inter_pem, fx.leaf2_key_pem, NULL), 3,
             LEAF2_CN, CA_CN, INTER_CN);
}

static void test_ec_parameters(void **state)
{
    /* openssl ecparam -genkey's output: EC PARAMETERS, then the key. */
    ok_chain(cat(fx.ec_params_pem, fx.ec_key_trad_pem, fx.ec_leaf_pem, NULL), 1, EC_CN);
    ok_chain(cat(fx.ec_leaf_pem, fx.ec_params_pem, fx.ec_key_pem, NULL), 1, EC_CN);
    /* Parameters are no key. */
    refused_text(cat(fx.ec_params_pem, fx.ec_leaf_pem, NULL), "no private key");
}

static void test_text_around_blocks(void **state)
{
    /* Text outside the blocks (openssl x509 -text's habit) is skipped. */
    ok_chain(cat("Certificate:\n    Subject: whatever\n", fx.ec_leaf_pem, "\nbag\n",
                 fx.ec_key_pem, "trailing words\n", NULL), 1, EC_CN);
    /* CRLF line ends. */
    {
        char *t = cat(fx.ec_key_pem, fx.ec_leaf_pem, NULL);
        char *crlf = malloc(strlen(t) * 2 + 1), *o = crlf;

        assert_non_null(crlf);
        for (const char *p = t; *p; p++) {
            if (*p == '\n')
                *o++ = '\r';
            *o++ = *p;
        }
        *o = '\0';
        free(t);
        ok_chain(crlf, 1, EC_CN);
    }
}

static void test_trusted_certificate(void **state)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *aux;

    assert_int_equal(PEM_write_bio_X509_AUX(b, fx.ec_leaf), 1);
    aux = bio_text(b);
    assert_non_null(strstr(aux, "-----BEGIN TRUSTED CERTIFICATE-----"));
    ok_chain(cat(fx.ec_key_pem, aux, NULL), 1, EC_CN);
    free(aux);
}

static void test_len_honoured(void **state)
{
    char *t = cat(fx.ec_key_pem, fx.ec_leaf_pem, NULL);
    char why[WR_TLS_WHY_MAX];
    wr_tls_bundle_t *b;

    /* Only the key is within len: the certificate is not seen. */
    refused(t, strlen(fx.ec_key_pem), "no certificate");
    /* The text need not end with a NUL. */
    b = wr_tls_bundle_parse(t, strlen(t), why, sizeof(why));
    assert_non_null(b);
    wr_tls_bundle_free(b);
    free(t);
}

static void test_no_key(void **state)
{
    refused_text(cat(fx.rsa_leaf_pem, NULL), "no private key");
    refused_text(cat(fx.ca_pem, fx.inter_pem, fx.leaf2_pem, NULL), "no private key");
}

static void test_no_certificate(void **state)
{
    refused_text(cat(fx.rsa_key_pem, NULL), "no certificate");
    refused_text(cat(fx.ec_params_pem, fx.ec_key_trad_pem, NULL), "no certificate");
}

static void test_two_keys(void **state)
{
    refused_text(cat(fx.ec_key_pem, fx.other_key_pem, fx.ec_leaf_pem, NULL),
                 "more than one private key");
    /* the same key twice, in two formats */
    refused_text(cat(fx.ec_key_pem, fx.ec_leaf_pem, fx.ec_key_trad_pem, NULL),
                 "more than one private key");
}

static void test_key_matches_none(void **state)
{
    refused_text(cat(fx.other_key_pem, fx.ec_leaf_pem, NULL), "matches none");
    refused_text(cat(fx.rsa_key_pem, fx.ec_leaf_pem, fx.ca_pem, NULL), "matches none");
    /* the CA's key with the leaf it signed is no match either */
    {
        char *ca_key = key_pem(fx.ca_key);
        refused_text(cat(ca_key, fx.rsa_leaf_pem, NULL), "matches none");
        free(ca_key);
    }
}

static void test_encrypted_key(void **state)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *enc, *trad;

    assert_int_equal(PEM_write_bio_PKCS8PrivateKey(b, fx.ec_key, EVP_aes_256_cbc(), NULL, 0,
                                                   NULL, (void *) "secret"), 1);
    enc = bio_text(b);
    assert_non_null(strstr(enc, "-----BEGIN ENCRYPTED PRIVATE KEY-----"));
    refused_text(cat(enc, fx.ec_leaf_pem, NULL), "encrypted");
    refused_text(cat(fx.ec_leaf_pem, enc, NULL), "encrypted");

    /* The traditional encryption (Proc-Type: 4,ENCRYPTED) is refused too. */
    b = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey_traditional(b, fx.ec_key, EVP_aes_128_cbc(),
                                                          (unsigned char *) "secret", 6,
                                                          NULL, NULL), 1);
    trad = bio_text(b);
    assert_non_null(strstr(trad, "ENCRYPTED"));
    refused_text(cat(trad, fx.ec_leaf_pem, NULL), "The private key is encrypted");
    free(enc);
    free(trad);
}

static void test_garbage(void **state)
{
    static const char bad_b64[] =
        "-----BEGIN CERTIFICATE-----\n!!!! not base64 !!!!\n-----END CERTIFICATE-----\n";
    static const char empty_cert[] =
        "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n";
    static const char junk_cert[] =
        "-----BEGIN CERTIFICATE-----\nAAAAAAAA\n-----END CERTIFICATE-----\n";
    static const char junk_key[] =
        "-----BEGIN PRIVATE KEY-----\nAAAAAAAA\n-----END PRIVATE KEY-----\n";
    static const char csr[] =
        "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n";

    refused("hello, world\n", 13, "No PEM block");
    refused("{\"certificate\": \"x\"}", 20, "No PEM block");
    refused(bad_b64, sizeof(bad_b64) - 1, "A PEM block cannot be read");
    refused_text(cat(junk_cert, fx.ec_key_pem, NULL), "certificate cannot be decoded");
    refused_text(cat(empty_cert, fx.ec_key_pem, NULL), "");
    /* A block that cannot be read, anywhere: refused as such, never a
     * bundle of the blocks before it (a corrupt intermediate dropped). */
    refused_text(cat(fx.ec_key_pem, fx.ec_leaf_pem, bad_b64, NULL), "A PEM block cannot be read");
    refused_text(cat(fx.ec_key_pem, fx.ec_leaf_pem, empty_cert, NULL), "");
    refused_text(cat(fx.ec_leaf_pem, bad_b64, fx.ec_key_pem, NULL), "A PEM block cannot be read");
    refused_text(cat(bad_b64, fx.ec_key_pem, fx.ec_leaf_pem, NULL), "A PEM block cannot be read");
    refused_text(cat(fx.ec_leaf_pem, junk_key, NULL), "private key cannot be decoded");
    refused_text(cat(fx.ec_key_pem, fx.ec_leaf_pem, csr, NULL),
                 "Unexpected PEM block \"CERTIFICATE REQUEST\"");
    /* A block cut short before its END line, alone or after a whole one. */
    {
        char *t = cat(fx.ec_leaf_pem, NULL), *u = cat(fx.ec_key_pem, fx.ec_leaf_pem, fx.ec_leaf_pem, NULL);
        refused(t, strlen(t) / 2, "A PEM block cannot be read");
        refused(u, strlen(u) - 40, "A PEM block cannot be read");
        free(t);
        free(u);
    }
}

static void test_empty(void **state)
{
    refused("", 0, "No PEM block");
    refused("-----BEGIN CERTIFICATE-----", 0, "No PEM block");   /* len 0 */
    refused("\n\n  \n", 5, "No PEM block");
}

/* ------------------------------------------------------------------ info */

static void check_rsa_info(json_t *info)
{
    json_t *leaf, *subject, *issuer, *alt, *validity, *ca;

    assert_true(json_is_object(info));
    assert_int_equal(json_object_size(info), 2);
    assert_string_equal(json_string_value(json_object_get(info, "key")), "RSA (2048 bits)");
    leaf = json_array_get(json_object_get(info, "chain"), 0);
    assert_true(json_is_object(leaf));

    subject = json_object_get(leaf, "subject");
    assert_true(json_is_object(subject));
    assert_string_equal(str_at(leaf, "subject", "common_name"), RSA_CN);
    assert_string_equal(str_at(leaf, "subject", "country"), "US");
    assert_string_equal(str_at(leaf, "subject", "state_or_province"), "California");
    assert_string_equal(str_at(leaf, "subject", "locality"), "San Francisco");
    assert_string_equal(str_at(leaf, "subject", "organization"), "Example Inc");
    assert_string_equal(str_at(leaf, "subject", "department"), "Web Ops");
    /* alt_names: the DNS names only, in order (not the IP, email, URI) */
    alt = json_object_get(subject, "alt_names");
    assert_true(json_is_array(alt));
    assert_int_equal(json_array_size(alt), 2);
    assert_string_equal(json_string_value(json_array_get(alt, 0)), "www.example.com");
    assert_string_equal(json_string_value(json_array_get(alt, 1)), "example.com");
    assert_int_equal(json_object_size(subject), 7);

    /* issuer: the CA's subject, no alt_names */
    issuer = json_object_get(leaf, "issuer");
    assert_true(json_is_object(issuer));
    assert_string_equal(str_at(leaf, "issuer", "common_name"), CA_CN);
    assert_string_equal(str_at(leaf, "issuer", "country"), "US");
    assert_string_equal(str_at(leaf, "issuer", "state_or_province"), "California");
    assert_string_equal(str_at(leaf, "issuer", "locality"), "San Francisco");
    assert_string_equal(str_at(leaf, "issuer", "organization"), "Warren Authority");
    assert_string_equal(str_at(leaf, "issuer", "department"), "Root Team");
    assert_null(json_object_get(issuer, "alt_names"));
    assert_int_equal(json_object_size(issuer), 6);

    validity = json_object_get(leaf, "validity");
    assert_true(json_is_object(validity));
    assert_true(strlen(str_at(leaf, "validity", "since")) > 0);
    assert_true(strlen(str_at(leaf, "validity", "until")) > 0);
    assert_non_null(strstr(str_at(leaf, "validity", "since"), "GMT"));
    /* a year apart */
    assert_string_not_equal(str_at(leaf, "validity", "since"),
                            str_at(leaf, "validity", "until"));

    /* the CA, second: self-signed, its subject is its issuer, no SAN */
    ca = json_array_get(json_object_get(info, "chain"), 1);
    assert_true(json_equal(json_object_get(ca, "subject"), json_object_get(ca, "issuer")));
    assert_true(json_equal(json_object_get(ca, "subject"), issuer));
    assert_null(json_object_get(json_object_get(ca, "subject"), "alt_names"));
}

static void test_info_rsa(void **state)
{
    char *t = cat(fx.ca_pem, fx.rsa_key_pem, fx.rsa_leaf_pem, NULL);
    json_t *info = ok_info(t);

    chain_is(info, 2, RSA_CN, CA_CN);
    check_rsa_info(info);
    json_decref(info);
    free(t);
}

static void test_info_ec(void **state)
{
    char *t = cat(fx.ec_params_pem, fx.ec_key_trad_pem, fx.ec_leaf_pem, NULL);
    json_t *info = ok_info(t), *leaf, *alt;
    char *dump;

    assert_string_equal(json_string_value(json_object_get(info, "key")), "EC (prime256v1)");
    leaf = json_array_get(json_object_get(info, "chain"), 0);
    assert_string_equal(str_at(leaf, "subject", "common_name"), EC_CN);
    assert_string_equal(str_at(leaf, "subject", "organization"), "B\xc3\xbc" "cher & Co");
    assert_string_equal(str_at(leaf, "subject", "department"), "\xc3\x9c" "ber");
    alt = json_object_get(json_object_get(leaf, "subject"), "alt_names");
    assert_int_equal(json_array_size(alt), 1);
    assert_string_equal(json_string_value(json_array_get(alt, 0)), "ec.example.net");
    assert_string_equal(str_at(leaf, "issuer", "common_name"), CA_CN);
    /* The description serializes (the control API sends it). */
    dump = json_dumps(info, JSON_COMPACT);
    assert_non_null(dump);
    assert_non_null(strstr(dump, "\"key\":\"EC (prime256v1)\""));
    free(dump);
    json_decref(info);
    free(t);
}

static void test_info_missing_fields(void **state)
{
    /* The intermediate has no OU: no "department"; no SAN: no alt_names. */
    char *t = cat(fx.leaf2_key_pem, fx.leaf2_pem, fx.inter_pem, NULL);
    json_t *info = ok_info(t), *inter, *leaf;

    leaf = json_array_get(json_object_get(info, "chain"), 0);
    assert_null(json_object_get(json_object_get(leaf, "subject"), "department"));
    assert_string_equal(str_at(leaf, "issuer", "common_name"), INTER_CN);
    assert_null(json_object_get(json_object_get(leaf, "issuer"), "department"));
    inter = json_array_get(json_object_get(info, "chain"), 1);
    assert_string_equal(str_at(inter, "issuer", "common_name"), CA_CN);
    assert_null(json_object_get(json_object_get(inter, "subject"), "alt_names"));
    assert_int_equal(json_object_size(json_object_get(inter, "subject")), 5);
    json_decref(info);
    free(t);
}

static void test_info_first_of_each(void **state)
{
    /* Two OU entries: the first is the department. */
    X509 *x = X509_new();
    X509_NAME *n = X509_get_subject_name(x);
    char *cert, *key, *t;
    json_t *info;

    name_add(n, "OU", "First Unit");
    name_add(n, "OU", "Second Unit");
    name_add(n, "CN", "two.example");
    assert_int_equal(X509_set_issuer_name(x, n), 1);
    assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(x), 9), 1);
    assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
    assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 3600));
    assert_int_equal(X509_set_pubkey(x, fx.other_key), 1);
    assert_true(X509_sign(x, fx.other_key, EVP_sha256()) > 0);
    cert = cert_pem(x);
    key = key_pem(fx.other_key);
    t = cat(cert, key, NULL);
    info = ok_info(t);
    assert_string_equal(str_at(json_array_get(json_object_get(info, "chain"), 0),
                               "subject", "department"), "First Unit");
    assert_null(json_object_get(json_object_get(json_array_get(
        json_object_get(info, "chain"), 0), "subject"), "country"));
    json_decref(info);
    free(t);
    free(cert);
    free(key);
    X509_free(x);
}

/* ------------------------------------------------------------------ names */

static void test_name_ok(void **state)
{
    char longest[WR_TLS_NAME_MAX + 2];
    static const char *good[] = {
        "a", "A", "0", "bundle", "example.com", "www.example.com-2024", "my_cert",
        "a..b", "-", "_", "a.", "Z9-_.x",
    };
    static const char *bad[] = {
        "", ".", "..", ".hidden", "a/b", "/abs", "a b", " a", "a\n", "a:b", "a*",
        "caf\xc3\xa9", "a\\b", "a~b", "a%2Fb", "a@b", "a+b",
    };

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (!wr_tls_name_ok(good[i]))
            fail_msg("\"%s\" refused", good[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (wr_tls_name_ok(bad[i]))
            fail_msg("\"%s\" accepted", bad[i]);

    memset(longest, 'n', WR_TLS_NAME_MAX);
    longest[WR_TLS_NAME_MAX] = '\0';
    assert_true(wr_tls_name_ok(longest));                 /* 128 */
    longest[WR_TLS_NAME_MAX] = 'n';
    longest[WR_TLS_NAME_MAX + 1] = '\0';
    assert_false(wr_tls_name_ok(longest));                /* 129 */
    longest[0] = '.';
    longest[5] = '\0';
    assert_false(wr_tls_name_ok(longest));
}

/* ------------------------------------------------------------ wr_tls_check */

/* wr_tls_check on a config of one listener at addr whose "tls" is tls_json. */
static int check_one(const char *addr, const char *tls_json, char *err, size_t errlen)
{
    json_t *tls = json_loads(tls_json, 0, NULL);
    json_t *conf;
    int rc;

    assert_non_null(tls);
    conf = json_pack("{s:{s:{s:s,s:o}}}", "listeners", addr, "pass", "routes", "tls", tls);
    assert_non_null(conf);
    err[0] = '\0';
    rc = wr_tls_check(conf, err, errlen);
    json_decref(conf);
    return rc;
}

static void check_passes(const char *addr, const char *tls_json)
{
    char err[1024];

    if (check_one(addr, tls_json, err, sizeof(err)) != 0)
        fail_msg("%s refused: %s", tls_json, err);
}

/* Refused with err starting with The value at "<pointer>" cannot be used. */
static void check_fails(const char *addr, const char *tls_json, const char *pointer,
                        const char *also)
{
    char err[1024], want[600];

    snprintf(want, sizeof(want), "The value at \"%s\" cannot be used", pointer);
    if (check_one(addr, tls_json, err, sizeof(err)) != -1)
        fail_msg("%s accepted", tls_json);
    if (strncmp(err, want, strlen(want)) != 0)
        fail_msg("err is \"%s\", wanted it to start \"%s\"", err, want);
    if (also != NULL && strstr(err, also) == NULL)
        fail_msg("err is \"%s\", wanted \"%s\" in it", err, also);
    assert_true(err[strlen(err) - 1] == '.');
}

/* A base64 ticket key of n random-ish bytes. */
static void ticket_key(char *out, size_t n, unsigned char seed)
{
    unsigned char raw[128];

    assert_true(n <= sizeof(raw));
    for (size_t i = 0; i < n; i++)
        raw[i] = (unsigned char) (seed + i * 37);
    EVP_EncodeBlock((unsigned char *) out, raw, (int) n);
}

static void test_check_conf_commands(void **state)
{
    check_passes("127.0.0.1:443", "{\"certificate\": \"c\", "
                 "\"conf_commands\": {\"minprotocol\": \"TLSv1.3\"}}");
    check_passes("*:443", "{\"certificate\": \"c\", \"conf_commands\": "
                 "{\"MinProtocol\": \"TLSv1.2\", \"ciphersuites\": \"TLS_AES_128_GCM_SHA256\","
                 " \"options\": \"-SessionTicket\"}}");
    check_passes("*:443", "{\"certificate\": \"c\", \"conf_commands\": {}}");
    check_passes("*:443", "{\"certificate\": \"c\"}");

    check_fails("127.0.0.1:443", "{\"certificate\": \"c\", "
                "\"conf_commands\": {\"minprotocol\": \"TLSv9\"}}",
                "/listeners/127.0.0.1:443/tls/conf_commands/minprotocol", "TLSv9");
    /* the refused one is named, not the first */
    check_fails("127.0.0.1:443", "{\"certificate\": \"c\", \"conf_commands\": "
                "{\"minprotocol\": \"TLSv1.2\", \"cipherstring\": \"NOT-A-CIPHER\"}}",
                "/listeners/127.0.0.1:443/tls/conf_commands/cipherstring", NULL);
    check_fails("[::1]:443", "{\"certificate\": \"c\", "
                "\"conf_commands\": {\"nosuchcommand\": \"x\"}}",
                "/listeners/[::1]:443/tls/conf_commands/nosuchcommand", "no command");
    /* RFC 6901 escapes: '/' is ~1, '~' is ~0 */
    check_fails("unix:/run/x.sock", "{\"certificate\": \"c\", "
                "\"conf_commands\": {\"minprotocol\": \"TLSv9\"}}",
                "/listeners/unix:~1run~1x.sock/tls/conf_commands/minprotocol", NULL);
    check_fails("unix:/run/a~b.sock", "{\"certificate\": \"c\", "
                "\"conf_commands\": {\"a/b\": \"x\"}}",
                "/listeners/unix:~1run~1a~0b.sock/tls/conf_commands/a~1b", NULL);
}

static void test_check_listeners(void **state)
{
    char err[1024];
    json_t *conf;

    /* No listeners, listeners without tls: nothing to check. */
    conf = json_loads("{}", 0, NULL);
    assert_int_equal(wr_tls_check(conf, err, sizeof(err)), 0);
    json_decref(conf);
    conf = json_loads("{\"listeners\": {\"*:80\": {\"pass\": \"routes\"}}}", 0, NULL);
    assert_int_equal(wr_tls_check(conf, err, sizeof(err)), 0);
    json_decref(conf);

    /* The bad listener among good ones is the one named. */
    conf = json_loads("{\"listeners\": {"
                      "\"*:80\": {\"pass\": \"routes\"},"
                      "\"*:443\": {\"pass\": \"routes\", \"tls\": {\"certificate\": \"c\","
                      " \"conf_commands\": {\"minprotocol\": \"TLSv1.3\"}}},"
                      "\"*:8443\": {\"pass\": \"routes\", \"tls\": {\"certificate\": \"c\","
                      " \"conf_commands\": {\"maxprotocol\": \"SSLv9\"}}}}}", 0, NULL);
    assert_non_null(conf);
    assert_int_equal(wr_tls_check(conf, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "\"/listeners/*:8443/tls/conf_commands/maxprotocol\""));
    json_decref(conf);

    /* Commands do not add up across listeners: each has its own context. */
    conf = json_loads("{\"listeners\": {"
                      "\"*:443\": {\"pass\": \"routes\", \"tls\": {\"certificate\": \"c\","
                      " \"conf_commands\": {\"minprotocol\": \"TLSv1.3\"}}},"
                      "\"*:8443\": {\"pass\": \"routes\", \"tls\": {\"certificate\": \"c\","
                      " \"conf_commands\": {\"maxprotocol\": \"TLSv1.2\"}}}}}", 0, NULL);
    assert_int_equal(wr_tls_check(conf, err, sizeof(err)), 0);
    json_decref(conf);
}

static void test_check_tickets(void **state)
{
    char k48[80], k48b[80], k80[120], k47[80], k49[80], k16[40], tls[1024], bad[80];

    ticket_key(k48, 48, 1);
    ticket_key(k48b, 48, 2);
    ticket_key(k80, 80, 3);
    ticket_key(k47, 47, 4);
    ticket_key(k49, 49, 5);
    ticket_key(k16, 16, 6);
    assert_int_equal(strlen(k48), 64);
    assert_int_equal(strlen(k80), 108);
    assert_int_equal(strlen(k47), 64);                 /* same length as 48, one '=' */

#define TLS_TICKETS(v) (snprintf(tls, sizeof(tls), \
        "{\"certificate\": \"c\", \"session\": {\"tickets\": %s}}", v), tls)
    {
        char v[300];

        snprintf(v, sizeof(v), "\"%s\"", k48);
        check_passes("*:443", TLS_TICKETS(v));
        snprintf(v, sizeof(v), "\"%s\"", k80);
        check_passes("*:443", TLS_TICKETS(v));
        snprintf(v, sizeof(v), "[\"%s\", \"%s\", \"%s\"]", k80, k48, k48b);
        check_passes("*:443", TLS_TICKETS(v));
        check_passes("*:443", TLS_TICKETS("true"));
        check_passes("*:443", TLS_TICKETS("false"));

        snprintf(v, sizeof(v), "\"%s\"", k47);
        check_fails("*:443", TLS_TICKETS(v), "/listeners/*:443/tls/session/tickets",
                    "48 or 80 bytes");
        /* the whole value named: no index after "tickets" */
        {
            char err[1024];
            assert_int_equal(check_one("*:443", TLS_TICKETS(v), err, sizeof(err)), -1);
            assert_non_null(strstr(err, "/session/tickets\" cannot"));
        }
        snprintf(v, sizeof(v), "\"%s\"", k49);
        check_fails("*:443", TLS_TICKETS(v), "/listeners/*:443/tls/session/tickets", NULL);
        snprintf(v, sizeof(v), "\"%s\"", k16);
        check_fails("*:443", TLS_TICKETS(v), "/listeners/*:443/tls/session/tickets", NULL);
        /* 64 characters, not base64 */
        memset(bad, '!', 64);
        bad[64] = '\0';
        snprintf(v, sizeof(v), "\"%s\"", bad);
        check_fails("*:443", TLS_TICKETS(v), "/listeners/*:443/tls/session/tickets", NULL);
        /* '=' inside, and spaces around: not a key, though OpenSSL's
         * decoder alone would make 48 bytes of them */
        memset(bad, 'A', 64);
        bad[10] = '=';
        bad[64] = '\0';
        snprintf(v, sizeof(v), "\"%s\"", bad);
        check_fails("*:443", TLS_TICKETS(v), "/listeners/*:443/tls/session/tickets", NULL);
        snprintf(v, sizeof(v), "\" %.60s   \"", k48);
        check_fails("*:443", TLS_TICKETS(v), "/listeners/*:443/tls/session/tickets", NULL);
        /* 48 bytes' base64 less its last character */
        snprintf(v, sizeof(v), "\"%.63s\"", k48);
        check_fails("*:443", TLS_TICKETS(v), "/listeners/*:443/tls/session/tickets", NULL);

        /* arrays: the bad key's index */
        snprintf(v, sizeof(v), "[\"%s\", \"%s\"]", k48, k47);
        check_fails("*:443", TLS_TICKETS(v), "/listeners/*:443/tls/session/tickets/1",
                    NULL);
        snprintf(v, sizeof(v), "[\"%s\", \"%s\", \"%s\"]", k80, k48, k16);
        check_fails("unix:/run/t.sock", TLS_TICKETS(v),
                    "/listeners/unix:~1run~1t.sock/tls/session/tickets/2", NULL);
        snprintf(v, sizeof(v), "[\"%s\"]", k47);
        check_fails("*:443", TLS_TICKETS(v), "/listeners/*:443/tls/session/tickets/0",
                    NULL);
    }
    /* At most 16 keys: the 17th is named. */
    {
        char v[2048];
        size_t o = 0;

        o += (size_t) snprintf(v + o, sizeof(v) - o, "[");
        for (int i = 0; i < 17; i++)
            o += (size_t) snprintf(v + o, sizeof(v) - o, "%s\"%s\"", i ? ", " : "", k48);
        snprintf(v + o, sizeof(v) - o, "]");
        {
            char big[2300];
            snprintf(big, sizeof(big), "{\"certificate\": \"c\", \"session\": "
                     "{\"tickets\": %s}}", v);
            check_fails("*:443", big, "/listeners/*:443/tls/session/tickets/16",
                        "at most 16");
        }
        /* 16 are fine */
        v[o - (strlen(k48) + 4)] = '\0';
        strcat(v, "]");
        {
            char big[2300];
            snprintf(big, sizeof(big), "{\"certificate\": \"c\", \"session\": "
                     "{\"tickets\": %s}}", v);
            check_passes("*:443", big);
        }
    }
#undef TLS_TICKETS
    /* Ticket keys are checked before conf_commands; both bad: the keys named. */
    snprintf(tls, sizeof(tls), "{\"certificate\": \"c\", \"session\": {\"tickets\": \"%s\"},"
             " \"conf_commands\": {\"minprotocol\": \"TLSv9\"}}", k47);
    check_fails("*:443", tls, "/listeners/*:443/tls/session/tickets", NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_then_cert),
        cmocka_unit_test(test_cert_then_key),
        cmocka_unit_test(test_chain_order),
        cmocka_unit_test(test_ec_parameters),
        cmocka_unit_test(test_text_around_blocks),
        cmocka_unit_test(test_trusted_certificate),
        cmocka_unit_test(test_len_honoured),
        cmocka_unit_test(test_no_key),
        cmocka_unit_test(test_no_certificate),
        cmocka_unit_test(test_two_keys),
        cmocka_unit_test(test_key_matches_none),
        cmocka_unit_test(test_encrypted_key),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_info_rsa),
        cmocka_unit_test(test_info_ec),
        cmocka_unit_test(test_info_missing_fields),
        cmocka_unit_test(test_info_first_of_each),
        cmocka_unit_test(test_name_ok),
        cmocka_unit_test(test_check_conf_commands),
        cmocka_unit_test(test_check_listeners),
        cmocka_unit_test(test_check_tickets),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
