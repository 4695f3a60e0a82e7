/*
 * /certificates: the controller's side of the certificate store. It checks
 * a bundle (PEM key and chain) before main stores it, and keeps each
 * stored bundle's description for GET; the keys themselves it forgets.
 *   PUT /certificates/NAME     store a bundle (never over an existing one)
 *   DELETE /certificates/NAME  remove one no listener names
 * Changes wait in the same queue as configuration changes: a config that
 * names a bundle uploaded just before it is checked against the store as
 * it will be.
 */
#include <stdlib.h>
#include <string.h>

#include "control/internal.h"
#include "core/log.h"
#include "tls/tls.h"

#define MSG_UPLOADED   "Certificate chain uploaded."
#define MSG_DELETED    "Certificate deleted."
#define MSG_BAD_NAME   "Invalid certificate name."
#define MSG_BAD_BUNDLE "Invalid certificate bundle."
#define MSG_IN_USE     "Certificate is used in the configuration."
#define MSG_NO_VALUE   "Value doesn't exist."

#define CERTS_PREFIX   "/certificates"

void wr_certs_take(wr_ctl_t *ctl, const char *data, size_t len)
{
    const char *nul = memchr(data, '\0', len);
    char why[WR_TLS_WHY_MAX];
    wr_tls_bundle_t *b;

    if (nul == NULL)
        return;
    b = wr_tls_bundle_parse(nul + 1, len - (size_t) (nul + 1 - data), why, sizeof(why));
    if (b == NULL) {
        wr_log(WR_LOG_ERR, "stored certificate \"%s\" is not a bundle: %s", data, why);
        return;
    }
    json_object_set_new(ctl->certs, data, wr_tls_bundle_info(b));
    wr_tls_bundle_free(b);
}

static void answer(wr_conn_t *c, int status, const char *error, const char *detail)
{
    wr_conn_respond(c, status, detail ? json_pack("{s:s,s:s}", "error", error, "detail", detail)
                                      : json_pack("{s:s}", "error", error));
}

/* NAME of "/certificates/NAME" (one pointer segment, percent-decoded as
 * /config's are), malloc'ed; NULL for any other path. */
static char *cert_name(const char *path)
{
    size_t pre = strlen(CERTS_PREFIX);

    if (strncmp(path, CERTS_PREFIX, pre) != 0)
        return NULL;
    return wr_api_segment(path + pre, strlen(path + pre));
}

/* A PUT's bundle: checked and described (c->candidate). 0, or -1 answered. */
static int check_put(wr_conn_t *c)
{
    char why[WR_TLS_WHY_MAX], exists[WR_TLS_NAME_MAX + 64];
    wr_tls_bundle_t *b;

    if (!wr_tls_name_ok(c->cert)) {
        answer(c, 400, MSG_BAD_NAME, "A name is 1 to 128 letters, digits, '.', '_' or "
               "'-', not starting with '.'.");
        return -1;
    }
    if (json_object_get(c->ctl->certs, c->cert) != NULL) {
        snprintf(exists, sizeof(exists), "Certificate \"%s\" already exists.", c->cert);
        answer(c, 400, exists, "DELETE it first to upload another under its name.");
        return -1;
    }
    if ((long) c->body_len > WR_TLS_BUNDLE_MAX) {
        answer(c, 400, MSG_BAD_BUNDLE, "A bundle is at most 1 MiB.");
        return -1;
    }
    b = wr_tls_bundle_parse(c->buf + c->head_len, c->body_len, why, sizeof(why));
    if (b == NULL) {
        answer(c, 400, MSG_BAD_BUNDLE, why);
        return -1;
    }
    c->candidate = wr_tls_bundle_info(b);
    wr_tls_bundle_free(b);
    if (c->candidate == NULL) {
        answer(c, 500, "Out of memory.", NULL);
        return -1;
    }
    return 0;
}

static int check_delete(wr_conn_t *c)
{
    const char *user;
    char detail[WR_TLS_NAME_MAX + 256];

    if (json_object_get(c->ctl->certs, c->cert) == NULL) {
        answer(c, 404, MSG_NO_VALUE, NULL);
        return -1;
    }
    user = wr_conf_cert_user(c->ctl->conf, c->cert);
    if (user != NULL) {
        snprintf(detail, sizeof(detail), "The listener \"%s\" names it in \"tls\".", user);
        answer(c, 400, MSG_IN_USE, detail);
        return -1;
    }
    return 0;
}

int wr_certs_start(wr_conn_t *c)
{
    int put = c->method[0] == 'P' && c->method[1] == 'U';
    size_t nlen, blen;
    char *msg;
    int rc;

    c->cert = cert_name(c->path);
    if (c->cert == NULL) {
        answer(c, put ? 400 : 404, put ? MSG_BAD_NAME : MSG_NO_VALUE,
               put ? "PUT a bundle to /certificates/NAME." : NULL);
        return -1;
    }
    if ((put ? check_put(c) : check_delete(c)) < 0)
        return -1;
    nlen = strlen(c->cert);
    blen = put ? c->body_len : 0;
    msg = malloc(nlen + 1 + blen);
    if (msg == NULL) {
        answer(c, 500, "Out of memory.", NULL);
        return -1;
    }
    memcpy(msg, c->cert, nlen + 1);
    if (put)
        memcpy(msg + nlen + 1, c->buf + c->head_len, blen);
    rc = wr_ctl_send(c->ctl, put ? WR_MSG_CERT_PUT : WR_MSG_CERT_DELETE, c->id, msg,
                     put ? nlen + 1 + blen : nlen);
    free(msg);
    if (rc < 0) {
        answer(c, 500, "The main process is unreachable.", NULL);
        return -1;
    }
    return 0;
}

void wr_certs_applied(wr_conn_t *c, int ok, const char *reason)
{
    wr_ctl_t *ctl = c->ctl;
    int put = c->candidate != NULL;

    if (!ok) {
        answer(c, 500, put ? "Failed to store the certificate."
                           : "Failed to delete the certificate.", reason);
        return;
    }
    if (put) {
        json_object_set_new(ctl->certs, c->cert, c->candidate);
        c->candidate = NULL;
    } else {
        json_object_del(ctl->certs, c->cert);
    }
    wr_conn_respond(c, 200, json_pack("{s:s}", "success", put ? MSG_UPLOADED : MSG_DELETED));
}
