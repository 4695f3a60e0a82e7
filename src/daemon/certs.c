/*
 * The certificate store: <statedir>/certs/NAME, one PEM bundle per file,
 * root's, mode 0600. Main keeps the files and never parses them (the
 * controller checked a bundle before it came; the router, unprivileged,
 * builds TLS contexts from them). It hands the controller every bundle at
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

static void certs_dir(const wr_main_t *m, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s/%s", m->opt->statedir, WR_TLS_CERTS_DIR);
}

int wr_certs_load(wr_main_t *m)
{
    char dir[PATH_MAX];
    struct dirent *e;
    DIR *d;

    m->certs = json_object();
    if (m->certs == NULL)
        return -1;
    certs_dir(m, dir, sizeof(dir));
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
        if (wr_tls_name_ok(e->d_name))           /* not ".", "..", ".x.tmp" */
            json_object_set_new(m->certs, e->d_name, json_true());
    closedir(d);
    return 0;
}

/* NAME's PEM text, malloc'ed; NULL logged. */
static char *cert_read(wr_main_t *m, const char *name, size_t *len)
{
    char dir[PATH_MAX], *text = NULL;

    certs_dir(m, dir, sizeof(dir));
    if (wr_state_read_file(dir, name, WR_TLS_BUNDLE_MAX, &text, len) <= 0)
        return NULL;
    return text;
}

/* name NUL pem as one message. */
static void cert_send(wr_main_t *m, wr_chan_t *ch, const char *name)
{
    size_t nlen = strlen(name), len;
    char *pem = cert_read(m, name, &len), *msg;

    if (pem == NULL)
        return;
    msg = malloc(nlen + 1 + len);
    if (msg != NULL) {
        memcpy(msg, name, nlen + 1);
        memcpy(msg + nlen + 1, pem, len);
        wr_chan_send(ch, WR_MSG_CERT, 0, msg, nlen + 1 + len, -1);
    }
    free(msg);
    explicit_bzero(pem, len);
    free(pem);
}

void wr_certs_send_all(wr_main_t *m, wr_chan_t *ch)
{
    const char *name;
    json_t *v;

    json_object_foreach(m->certs, name, v)
        cert_send(m, ch, name);
}

void wr_certs_send_used(wr_main_t *m, wr_chan_t *ch, json_t *conf)
{
    const char *name;
    json_t *v;

    json_object_foreach(m->certs, name, v)
        if (wr_conf_cert_user(conf, name) != NULL)
            cert_send(m, ch, name);
}

static void reply(wr_main_t *m, uint32_t id, int ok, const char *reason)
{
    wr_chan_send_result(&m->child[WR_ROLE_CONTROLLER].chan, id, ok, reason);
}

/* One change at a time: a bundle added or removed under a configuration
 * being applied would change what that configuration may name. */
static int busy(wr_main_t *m, uint32_t id)
{
    if (!m->apply.active)
        return 0;
    reply(m, id, 0, "Another reconfiguration is in progress.");
    return 1;
}

void wr_certs_put(wr_main_t *m, uint32_t id, const char *data, size_t len)
{
    const char *nul = memchr(data, '\0', len);
    char dir[PATH_MAX];

    if (busy(m, id))
        return;
    if (nul == NULL || !wr_tls_name_ok(data)) {
        reply(m, id, 0, "Invalid certificate name.");
        return;
    }
    if (json_object_get(m->certs, data) != NULL) {
        reply(m, id, 0, "The certificate exists already.");
        return;
    }
    len -= (size_t) (nul + 1 - data);
    if (len == 0 || (long) len > WR_TLS_BUNDLE_MAX) {
        reply(m, id, 0, "The bundle is empty or too large.");
        return;
    }
    certs_dir(m, dir, sizeof(dir));
    if (wr_state_write(dir, data, nul + 1, len) < 0) {
        char why[PATH_MAX + 64];
        snprintf(why, sizeof(why), "Failed to store the certificate in \"%s\": %s.", dir,
                 strerror(errno));
        reply(m, id, 0, why);
        return;
    }
    json_object_set_new(m->certs, data, json_true());
    wr_log(WR_LOG_NOTICE, "certificate \"%s\" stored", data);
    reply(m, id, 1, "");
}

void wr_certs_delete(wr_main_t *m, uint32_t id, const char *data, size_t len)
{
    char dir[PATH_MAX], path[PATH_MAX + WR_TLS_NAME_MAX + 2];
    char *name = strndup(data, len);

    if (name == NULL || busy(m, id))
        goto out;
    if (!wr_tls_name_ok(name) || json_object_get(m->certs, name) == NULL) {
        reply(m, id, 0, "No such certificate.");
        goto out;
    }
    if (wr_conf_cert_user(m->running, name) != NULL) {
        reply(m, id, 0, "Certificate is used in the configuration.");
        goto out;
    }
    certs_dir(m, dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (unlink(path) < 0 && errno != ENOENT) {
        wr_log_sys(WR_LOG_ERR, "unlink", path);
        reply(m, id, 0, "Failed to remove the certificate file.");
        goto out;
    }
    json_object_del(m->certs, name);
    wr_log(WR_LOG_NOTICE, "certificate \"%s\" deleted", name);
    reply(m, id, 1, "");
out:
    free(name);
}
