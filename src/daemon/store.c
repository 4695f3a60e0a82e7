/*
 * The stores of the control API: <statedir>/certs/NAME (certificate
 * bundles, /certificates) and <statedir>/js_modules/NAME (JavaScript
 * modules, /js_modules), one file per item, root's, mode 0600. Main keeps
 * the files and never parses them (the controller checked an item before it
 * came; the router builds from them). It hands the controller every item at
 * its start and the router those a configuration names, before it.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "conf/conf.h"
#include "conf/state.h"
#include "core/log.h"
#include "daemon/internal.h"
#include "tls/tls.h"

const wr_store_kind_t wr_store_certs = {
    .dir = WR_TLS_CERTS_DIR, .what = "certificate", .max = WR_TLS_BUNDLE_MAX,
    .name_ok = wr_tls_name_ok, .user = wr_conf_cert_user, .secret = 1,
    .msg = WR_MSG_CERT,
};

const wr_store_kind_t wr_store_js_modules = {
    .dir = WR_CONF_JS_MODULES_DIR, .what = "JavaScript module", .max = WR_CONF_JS_MODULE_MAX,
    .name_ok = wr_conf_js_module_name_ok, .user = wr_conf_js_module_user, .secret = 0,
    .msg = WR_MSG_JS_MODULE,
};

static void store_dir(const wr_main_t *m, const wr_store_t *s, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s/%s", m->opt->statedir, s->kind->dir);
}

int wr_store_load(wr_main_t *m, wr_store_t *s, const wr_store_kind_t *kind)
{
    char dir[PATH_MAX];
    struct dirent *e;
    DIR *d;

    s->kind = kind;
    s->names = json_object();
    if (s->names == NULL)
        return -1;
    store_dir(m, s, dir, sizeof(dir));
    if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
        wr_log_sys(WR_LOG_EMERG, "mkdir", dir);
        return -1;
    }
    d = opendir(dir);
    if (d == NULL) {
        wr_log_sys(WR_LOG_EMERG, "opendir", dir);
        return -1;
    }
    while ((e = readdir(d)) != NULL)
        if (kind->name_ok(e->d_name))           /* not ".", "..", ".x.tmp" */
            json_object_set_new(s->names, e->d_name, json_true());
    closedir(d);
    return 0;
}

/* name NUL text as one message. */
static void item_send(wr_main_t *m, const wr_store_t *s, wr_chan_t *ch, const char *name)
{
    size_t nlen = strlen(name), len;
    char dir[PATH_MAX], *text = NULL, *msg;

    store_dir(m, s, dir, sizeof(dir));
    if (wr_state_read_file(dir, name, s->kind->max, &text, &len) <= 0)
        return;
    msg = malloc(nlen + 1 + len);
    if (msg != NULL) {
        memcpy(msg, name, nlen + 1);
        memcpy(msg + nlen + 1, text, len);
        wr_chan_send(ch, s->kind->msg, 0, msg, nlen + 1 + len, -1);
        if (s->kind->secret)
            explicit_bzero(msg, nlen + 1 + len);
    }
    free(msg);
    if (s->kind->secret)
        explicit_bzero(text, len);
    free(text);
}

void wr_store_send_all(wr_main_t *m, const wr_store_t *s, wr_chan_t *ch)
{
    const char *name;
    json_t *v;

    json_object_foreach(s->names, name, v)
        item_send(m, s, ch, name);
}

void wr_store_send_used(wr_main_t *m, const wr_store_t *s, wr_chan_t *ch, json_t *conf)
{
    const char *name;
    json_t *v;

    json_object_foreach(s->names, name, v)
        if (s->kind->user(conf, name) != NULL)
            item_send(m, s, ch, name);
}

static void reply(wr_main_t *m, uint32_t id, int ok, const char *reason)
{
    wr_chan_send_result(&m->child[WR_ROLE_CONTROLLER].chan, id, ok, reason);
}

/* One change at a time: an item added or removed under a configuration
 * being applied would change what that configuration may name. */
static int busy(wr_main_t *m, uint32_t id)
{
    if (!m->apply.active)
        return 0;
    reply(m, id, 0, "Another reconfiguration is in progress.");
    return 1;
}

void wr_store_put(wr_main_t *m, wr_store_t *s, uint32_t id, const char *data, size_t len)
{
    const char *nul = memchr(data, '\0', len), *what = s->kind->what;
    char dir[PATH_MAX], why[PATH_MAX + 128];

    if (busy(m, id))
        return;
    if (nul == NULL || !s->kind->name_ok(data)) {
        snprintf(why, sizeof(why), "Invalid %s name.", what);
        reply(m, id, 0, why);
        return;
    }
    if (json_object_get(s->names, data) != NULL) {
        snprintf(why, sizeof(why), "The %s exists already.", what);
        reply(m, id, 0, why);
        return;
    }
    len -= (size_t) (nul + 1 - data);
    if (len == 0 || (long) len > s->kind->max) {
        snprintf(why, sizeof(why), "The %s is empty or too large.", what);
        reply(m, id, 0, why);
        return;
    }
    store_dir(m, s, dir, sizeof(dir));
    if (wr_state_write(dir, data, nul + 1, len) < 0) {
        snprintf(why, sizeof(why), "Failed to store the %s in \"%s\": %s.", what, dir,
                 strerror(errno));
        reply(m, id, 0, why);
        return;
    }
    json_object_set_new(s->names, data, json_true());
    wr_log(WR_LOG_NOTICE, "%s \"%s\" stored", what, data);
    reply(m, id, 1, "");
}

void wr_store_delete(wr_main_t *m, wr_store_t *s, uint32_t id, const char *data, size_t len)
{
    char dir[PATH_MAX], path[PATH_MAX + NAME_MAX + 2], why[128];
    char *name = strndup(data, len);
    const char *what = s->kind->what;

    if (name == NULL || busy(m, id))
        goto out;
    if (!s->kind->name_ok(name) || json_object_get(s->names, name) == NULL) {
        snprintf(why, sizeof(why), "No such %s.", what);
        reply(m, id, 0, why);
        goto out;
    }
    if (s->kind->user(m->running, name) != NULL) {
        snprintf(why, sizeof(why), "%c%s is used in the configuration.", what[0] - 'a' + 'A',
                 what + 1);
        reply(m, id, 0, why);
        goto out;
    }
    store_dir(m, s, dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (unlink(path) < 0 && errno != ENOENT) {
        wr_log_sys(WR_LOG_ERR, "unlink", path);
        snprintf(why, sizeof(why), "Failed to remove the %s file.", what);
        reply(m, id, 0, why);
        goto out;
    }
    json_object_del(s->names, name);
    wr_log(WR_LOG_NOTICE, "%s \"%s\" deleted", what, name);
    reply(m, id, 1, "");
out:
    free(name);
}
