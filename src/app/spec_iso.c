/*
 * An application's "isolation" object -> wr_sb_conf_t (src/sandbox), in
 * main before the clone. The object was validated (conf/validate_apps.c).
 *
 * "user"/"group" name host accounts; with a credential namespace the app
 * runs as the container id whose host id they are (so {"container": 0,
 * "host": 33} with user www-data makes it root inside, www-data outside);
 * an id no map range covers on the host side is taken as a container id.
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "core/log.h"

static const struct {
    const char *key;
    int         flag;
} ns_flags[] = {
    { "credential", CLONE_NEWUSER }, { "pid", CLONE_NEWPID }, { "mount", CLONE_NEWNS },
    { "network", CLONE_NEWNET }, { "uname", CLONE_NEWUTS }, { "cgroup", CLONE_NEWCGROUP },
    { "ipc", CLONE_NEWIPC },
};

static int idmaps(json_t *a, wr_sb_idmap_t **out, size_t *n)
{
    size_t cnt = json_array_size(a);

    *n = 0;
    if (cnt == 0)
        return 0;
    *out = calloc(cnt, sizeof(**out));
    if (*out == NULL)
        return -1;
    for (size_t i = 0; i < cnt; i++) {
        json_t *m = json_array_get(a, i);
        (*out)[i].container = (uint32_t) json_integer_value(json_object_get(m, "container"));
        (*out)[i].host = (uint32_t) json_integer_value(json_object_get(m, "host"));
        (*out)[i].size = (uint32_t) json_integer_value(json_object_get(m, "size"));
    }
    *n = cnt;
    return 0;
}

/* Host id -> the container id mapped to it; else the id itself if it is a
 * container id; else -1. */
static long long inside(const wr_sb_idmap_t *m, size_t n, uint32_t id)
{
    if (n == 0)
        return id;           /* default map: the same id inside */
    for (size_t i = 0; i < n; i++)
        if (id >= m[i].host && id - m[i].host < m[i].size)
            return (long long) m[i].container + (id - m[i].host);
    return wr_sb_idmap_has(m, n, id) ? (long long) id : -1;
}

static int mounts(wr_sb_conf_t *c, json_t *a)
{
    size_t cnt = json_array_size(a);

    if (cnt == 0)
        return 0;
    c->mounts = calloc(cnt, sizeof(*c->mounts));
    if (c->mounts == NULL)
        return -1;
    for (size_t i = 0; i < cnt; i++) {
        json_t *m = json_array_get(a, i), *ro = json_object_get(m, "read_only");
        wr_sb_mount_t *d = &c->mounts[c->nmounts++];
        d->source = strdup(json_string_value(json_object_get(m, "source")));
        d->dest = strdup(json_string_value(json_object_get(m, "destination")));
        d->read_only = ro ? json_is_true(ro) : 1;
        if (d->source == NULL || d->dest == NULL)
            return -1;
    }
    return 0;
}

static int dup_str(char **dst, json_t *v)
{
    const char *s = json_string_value(v);

    *dst = NULL;
    return s && (*dst = strdup(s)) == NULL ? -1 : 0;
}

/* Returns 0, -1 out of memory, -2 with why filled. */
int wr_app_spec_isolation(wr_app_spec_t *s, json_t *iso, const char *lang_dirs,
                          char *why, size_t wlen)
{
    wr_sb_conf_t *c = &s->sb;
    json_t *ns = json_object_get(iso, "namespaces"), *am = json_object_get(iso, "automount");
    json_t *rl = json_object_get(iso, "rlimits"), *caps = json_object_get(iso, "capabilities");
    json_t *sc = json_object_get(iso, "seccomp"), *v;
    const char *k;
    long long uid, gid;

    wr_sb_conf_init(c);
    if (json_object_size(iso) == 0)
        return 0;
    c->on = 1;
    c->lang_dirs = lang_dirs;
    for (size_t i = 0; i < sizeof(ns_flags) / sizeof(ns_flags[0]); i++)
        if (json_is_true(json_object_get(ns, ns_flags[i].key)))
            c->clone_flags |= ns_flags[i].flag;
    if (idmaps(json_object_get(iso, "uidmap"), &c->uidmap, &c->nuidmap) < 0
        || idmaps(json_object_get(iso, "gidmap"), &c->gidmap, &c->ngidmap) < 0
        || dup_str(&c->rootfs, json_object_get(iso, "rootfs")) < 0
        || dup_str(&c->cgroup, json_object_get(json_object_get(iso, "cgroup"), "path")) < 0
        || dup_str(&c->hostname, json_object_get(iso, "hostname")) < 0
        || mounts(c, json_object_get(iso, "mounts")) < 0)
        return -1;
    if ((v = json_object_get(am, "language_deps")))
        c->lang_deps = json_is_true(v);
    if ((v = json_object_get(am, "procfs")))
        c->procfs = json_is_true(v);
    if ((v = json_object_get(am, "tmpfs")))
        c->tmpfs = json_is_true(v);
    /* Valid in Unit, so not refused; but /proc/PID/root of a host process
     * of the same uid leads out of the rootfs: say so where it is read. */
    if (c->rootfs && c->procfs && !(c->clone_flags & CLONE_NEWPID))
        wr_log(WR_LOG_WARN, "app \"%s\": \"automount\" \"procfs\" without a \"pid\" "
               "namespace shows host processes, and /proc/PID/root of one running as "
               "the app's uid leads out of the rootfs; turn \"pid\" on", s->name);
    c->tmpfs_size = json_integer_value(json_object_get(iso, "tmpfs_size"));
    c->new_privs = json_is_true(json_object_get(iso, "new_privs"));
    /* The filter needs no_new_privs: new_privs turns the default off. */
    c->seccomp = sc ? !json_is_false(sc) : !c->new_privs;
    json_object_foreach(rl, k, v) {
        int i = wr_sb_rlim_index(k);
        if (i >= 0)
            c->rlim[i] = json_integer_value(v);
    }
    for (size_t i = 0; i < json_array_size(caps); i++) {
        int cap = wr_sb_cap_parse(json_string_value(json_array_get(caps, i)));
        if (cap >= 0 && cap < WR_SB_CAP_BITS)
            c->caps |= 1ULL << cap;
    }
    if (c->clone_flags & CLONE_NEWUSER) {
        uid = inside(c->uidmap, c->nuidmap, (uint32_t) s->uid);
        gid = inside(c->gidmap, c->ngidmap, (uint32_t) s->gid);
        if (uid < 0 || gid < 0) {
            snprintf(why, wlen, "its %s %u is not mapped by \"isolation\" \"%s\".",
                     uid < 0 ? "uid" : "gid", uid < 0 ? (unsigned) s->uid : (unsigned) s->gid,
                     uid < 0 ? "uidmap" : "gidmap");
            return -2;
        }
        s->host_uid = s->uid;
        s->host_gid = s->gid;
        s->uid = (uid_t) uid;
        s->gid = (gid_t) gid;
    }
    return 0;
}
