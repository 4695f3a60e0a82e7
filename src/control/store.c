/*
 * The controller's side of the stores: /certificates (PEM bundles) and
 * /js_modules (JavaScript modules for templates). It checks an item before
 * main stores it, and keeps what GET shows of each: a bundle's description
 * (its keys it forgets), a module's source.
 *   PUT /STORE/NAME     store an item (never over an existing one)
 *   DELETE /STORE/NAME  remove one the configuration does not name
 * Changes wait in the same queue as configuration changes: a config that
 * names an item uploaded just before it is checked against the store as it
 * will be.
 */
#include <stdlib.h>
#include <string.h>

#include "control/internal.h"
#include "core/log.h"
#include "script/script.h"
#include "tls/tls.h"

#define MSG_NO_VALUE   "Value doesn't exist."

/* A bundle's description for GET /certificates. */
static json_t *bundle_check(const char *data, size_t len, char *why, size_t whylen)
{
    wr_tls_bundle_t *b = wr_tls_bundle_parse(data, len, why, whylen);
    json_t *info;

    if (b == NULL)
        return NULL;
    info = wr_tls_bundle_info(b);
    wr_tls_bundle_free(b);
    if (info == NULL)
        snprintf(why, whylen, "Out of memory.");
    return info;
}

/* A module's source, once it compiles. */
static json_t *module_check(const char *data, size_t len, char *why, size_t whylen)
{
    json_t *src;

    if (wr_script_module_check(data, len, why, whylen) < 0)
        return NULL;
    src = json_stringn(data, len);
    if (src == NULL)
        snprintf(why, whylen, "The module's source is not UTF-8 text.");
    return src;
}

const wr_ctl_store_t wr_ctl_certs = {
    .prefix = "/certificates", .put_msg = WR_MSG_CERT_PUT, .delete_msg = WR_MSG_CERT_DELETE,
    .name_ok = wr_tls_name_ok, .check = bundle_check, .user = wr_conf_cert_user,
    .max = WR_TLS_BUNDLE_MAX,
    .uploaded = "Certificate chain uploaded.", .deleted = "Certificate deleted.",
    .bad_name = "Invalid certificate name.", .bad_item = "Invalid certificate bundle.",
    .name_rule = "A name is 1 to 128 letters, digits, '.', '_' or '-', not starting with '.'.",
    .put_hint = "PUT a bundle to /certificates/NAME.", .too_large = "A bundle is at most 1 MiB.",
    .noun = "Certificate", .in_use = "Certificate is used in the configuration.",
    .user_pre = "The listener \"", .user_post = "\" names it in \"tls\".",
    .store_failed = "Failed to store the certificate.",
    .delete_failed = "Failed to delete the certificate.",
};

const wr_ctl_store_t wr_ctl_js_modules = {
    .prefix = "/js_modules", .put_msg = WR_MSG_JS_MODULE_PUT,
    .delete_msg = WR_MSG_JS_MODULE_DELETE,
    .name_ok = wr_conf_js_module_name_ok, .check = module_check, .user = wr_conf_js_module_user,
    .max = WR_CONF_JS_MODULE_MAX,
    .uploaded = "JS module uploaded.", .deleted = "JS module deleted.",
    .bad_name = "Invalid JS module name.", .bad_item = "Invalid JS module.",
    .name_rule = "A name is a JavaScript identifier: 1 to 128 letters, digits, '_' or '$', "
                 "not starting with a digit.",
    .put_hint = "PUT a module's source to /js_modules/NAME.",
    .too_large = "A module is at most 1 MiB.",
    .noun = "JS module", .in_use = "JS module is used in the configuration.",
    .user_pre = "\"", .user_post = "/js_module\" names it.",
    .store_failed = "Failed to store the JS module.",
    .delete_failed = "Failed to delete the JS module.",
};

/* Which store a path is in, or NULL. */
const wr_ctl_store_t *wr_ctl_store_of(const char *path)
{
    static const wr_ctl_store_t *const stores[] = { &wr_ctl_certs, &wr_ctl_js_modules };

    for (size_t i = 0; i < sizeof(stores) / sizeof(stores[0]); i++) {
        size_t n = strlen(stores[i]->prefix);

        if (strncmp(path, stores[i]->prefix, n) == 0 && (path[n] == '\0' || path[n] == '/'))
            return stores[i];
    }
    return NULL;
}

json_t **wr_ctl_store_items(wr_ctl_t *ctl, const wr_ctl_store_t *s)
{
    return s == &wr_ctl_certs ? &ctl->certs : &ctl->js_modules;
}

/* An item main holds, at the controller's start: name NUL data. */
void wr_ctl_store_take(wr_ctl_t *ctl, const wr_ctl_store_t *s, const char *data, size_t len)
{
    const char *nul = memchr(data, '\0', len);
    char why[WR_TLS_WHY_MAX];
    json_t *item;

    if (nul == NULL)
        return;
    item = s->check(nul + 1, len - (size_t) (nul + 1 - data), why, sizeof(why));
    if (item == NULL) {
        wr_log(WR_LOG_ERR, "stored item \"%s\" of %s is refused: %s", data, s->prefix, why);
        return;
    }
    json_object_set_new(*wr_ctl_store_items(ctl, s), data, item);
}

static void answer(wr_conn_t *c, int status, const char *error, const char *detail)
{
    wr_conn_respond(c, status, detail ? json_pack("{s:s,s:s}", "error", error, "detail", detail)
                                      : json_pack("{s:s}", "error", error));
}

/* A PUT's item: checked and described (c->candidate). 0, or -1 answered. */
static int check_put(wr_conn_t *c, const wr_ctl_store_t *s)
{
    char why[WR_TLS_WHY_MAX], exists[WR_TLS_NAME_MAX + 64];

    if (!s->name_ok(c->item)) {
        answer(c, 400, s->bad_name, s->name_rule);
        return -1;
    }
    if (json_object_get(*wr_ctl_store_items(c->ctl, s), c->item) != NULL) {
        snprintf(exists, sizeof(exists), "%s \"%s\" already exists.", s->noun, c->item);
        answer(c, 400, exists, "DELETE it first to upload another under its name.");
        return -1;
    }
    if ((long) c->body_len > s->max) {
        answer(c, 400, s->bad_item, s->too_large);
        return -1;
    }
    c->candidate = s->check(c->buf + c->head_len, c->body_len, why, sizeof(why));
    if (c->candidate == NULL) {
        answer(c, 400, s->bad_item, why);
        return -1;
    }
    return 0;
}

static int check_delete(wr_conn_t *c, const wr_ctl_store_t *s)
{
    const char *user;
    char detail[WR_TLS_NAME_MAX + 256];

    if (json_object_get(*wr_ctl_store_items(c->ctl, s), c->item) == NULL) {
        answer(c, 404, MSG_NO_VALUE, NULL);
        return -1;
    }
    user = s->user(c->ctl->conf, c->item);
    if (user != NULL) {
        snprintf(detail, sizeof(detail), "%s%s%s", s->user_pre, user, s->user_post);
        answer(c, 400, s->in_use, detail);
        return -1;
    }
    return 0;
}

int wr_ctl_store_start(wr_conn_t *c)
{
    const wr_ctl_store_t *s = c->store = wr_ctl_store_of(c->path);
    int put = c->method[0] == 'P' && c->method[1] == 'U';
    size_t pre = strlen(s->prefix), nlen, blen;
    char *msg;
    int rc;

    c->item = wr_api_segment(c->path + pre, strlen(c->path + pre));
    if (c->item == NULL) {
        answer(c, put ? 400 : 404, put ? s->bad_name : MSG_NO_VALUE, put ? s->put_hint : NULL);
        return -1;
    }
    if ((put ? check_put(c, s) : check_delete(c, s)) < 0)
        return -1;
    nlen = strlen(c->item);
    blen = put ? c->body_len : 0;
    msg = malloc(nlen + 1 + blen);
    if (msg == NULL) {
        answer(c, 500, "Out of memory.", NULL);
        return -1;
    }
    memcpy(msg, c->item, nlen + 1);
    if (put)
        memcpy(msg + nlen + 1, c->buf + c->head_len, blen);
    rc = wr_ctl_send(c->ctl, put ? s->put_msg : s->delete_msg, c->id, msg,
                     put ? nlen + 1 + blen : nlen);
    free(msg);
    if (rc < 0) {
        answer(c, 500, "The main process is unreachable.", NULL);
        return -1;
    }
    return 0;
}

void wr_ctl_store_applied(wr_conn_t *c, int ok, const char *reason)
{
    const wr_ctl_store_t *s = c->store;
    json_t *items = *wr_ctl_store_items(c->ctl, s);
    int put = c->candidate != NULL;

    if (!ok) {
        answer(c, 500, put ? s->store_failed : s->delete_failed, reason);
        return;
    }
    if (put) {
        json_object_set_new(items, c->item, c->candidate);
        c->candidate = NULL;
    } else {
        json_object_del(items, c->item);
    }
    wr_conn_respond(c, 200, json_pack("{s:s}", "success", put ? s->uploaded : s->deleted));
}
