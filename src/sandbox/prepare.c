/*
 * main's side of a generation's sandbox: what is opened and made before the
 * clone (so a failure fails the PUT with its reason, and the child needs no
 * path lookups on the host), and what is undone after the prototype is gone.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <linux/openat2.h>

#include "core/log.h"
#include "sandbox/sandbox.h"

#define WR_PROC_FD_PATH 64

static int lang_dir(const char *d, wr_sb_run_t *r, wr_sb_err_t *err)
{
    struct stat st;
    wr_sb_mount_t *v;

    if (stat(d, &st) < 0 || !S_ISDIR(st.st_mode))
        return 0;
    v = realloc(r->deps, (r->ndeps + 1) * sizeof(*v));
    if (v == NULL)
        return wr_sb_fail(err, "realloc", "language deps");
    r->deps = v;
    v[r->ndeps] = (wr_sb_mount_t) { .source = strdup(d), .dest = strdup(d),
                                    .read_only = 1,
                                    .kind = WR_SB_MNT_DIR | WR_SB_IN_ROOT };
    r->ndeps++;
    if (v[r->ndeps - 1].source == NULL || v[r->ndeps - 1].dest == NULL)
        return wr_sb_fail(err, "strdup", d);
    return 0;
}

/* The directories a language runtime reads besides its ELF deps (Python's
 * stdlib, PHP's extensions and ini files), bound read-only at the same
 * path inside the rootfs; one that does not exist here is skipped. */
static int lang_dirs(const char *dirs, wr_sb_run_t *r, wr_sb_err_t *err)
{
    char *list = strdup(dirs), *save = NULL;
    int rc = 0;

    if (list == NULL)
        return wr_sb_fail(err, "strdup", "language deps");
    for (char *d = strtok_r(list, ":", &save); d && rc == 0; d = strtok_r(NULL, ":", &save))
        rc = lang_dir(d, r, err);
    free(list);
    return rc;
}

/* The program's ELF deps: an external app's executable is read inside the
 * rootfs (absolute symlinks there resolve against the rootfs). */
static int exec_deps(const wr_sb_conf_t *c, wr_sb_run_t *r, const char *exec,
                     int in_rootfs, wr_sb_err_t *err)
{
    struct open_how how = { .flags = O_RDONLY | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT };
    char obj[PATH_MAX * 2];
    int fd, rc;

    if (in_rootfs)
        fd = (int) syscall(SYS_openat2, r->rootfs_fd, exec, &how, sizeof(how));
    else
        fd = open(exec, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(obj, sizeof(obj), "%s%s", in_rootfs ? c->rootfs : "", exec);
        return wr_sb_fail(err, "open", obj);
    }
    rc = wr_sb_elf_deps(fd, exec, &r->deps, &r->ndeps, err);
    close(fd);
    return rc;
}

static int mount_points(const wr_sb_conf_t *c, wr_sb_run_t *r, wr_sb_err_t *err)
{
    struct {
        const wr_sb_mount_t *v;
        size_t n;
    } lists[] = { { r->deps, r->ndeps }, { c->mounts, c->nmounts } };

    for (size_t l = 0; l < sizeof(lists) / sizeof(lists[0]); l++) {
        for (size_t i = 0; i < lists[l].n; i++) {
            int fd = wr_sb_resolve(r->rootfs_fd, c->rootfs, lists[l].v[i].dest, 1,
                                   lists[l].v[i].kind, err);
            if (fd < 0)
                return -1;
            close(fd);
        }
    }
    for (int i = 0; i < 2; i++) {
        int on = i == 0 ? c->procfs : c->tmpfs, fd;
        if (!on)
            continue;
        fd = wr_sb_resolve(r->rootfs_fd, c->rootfs, i == 0 ? "/proc" : "/tmp", 1,
                           WR_SB_MNT_DIR, err);
        if (fd < 0)
            return -1;
        close(fd);
    }
    return 0;
}

/* Configured binds: a file source gets a file mount point. */
static int mount_kinds(const wr_sb_conf_t *c, wr_sb_err_t *err)
{
    for (size_t i = 0; i < c->nmounts; i++) {
        struct stat st;
        if (stat(c->mounts[i].source, &st) < 0)
            return wr_sb_fail(err, "stat", c->mounts[i].source);
        c->mounts[i].kind = S_ISDIR(st.st_mode) ? WR_SB_MNT_DIR : WR_SB_MNT_FILE;
    }
    return 0;
}

static int open_rootfs(const wr_sb_conf_t *c, wr_sb_run_t *r, wr_sb_err_t *err)
{
    struct stat st, root;

    r->rootfs_fd = open(c->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (r->rootfs_fd < 0)
        return wr_sb_fail(err, "open", c->rootfs);
    if (fstat(r->rootfs_fd, &st) < 0)
        return wr_sb_fail(err, "fstat", c->rootfs);
    if (stat("/", &root) < 0)
        return wr_sb_fail(err, "stat", "/");
    if (st.st_dev == root.st_dev && st.st_ino == root.st_ino) {
        errno = EINVAL;
        return wr_sb_fail(err, "rootfs", c->rootfs);   /* it is "/" after all */
    }
    return 0;
}

void wr_sb_run_init(wr_sb_run_t *r)
{
    memset(r, 0, sizeof(*r));
    r->rootfs_fd = r->exec_fd = r->cgroup_fd = -1;
}

int wr_sb_prepare(const wr_sb_conf_t *c, wr_sb_run_t *r, const char *exec,
                  int exec_in_rootfs, wr_sb_err_t *err)
{
    if (c->rootfs) {
        if (open_rootfs(c, r, err) < 0)
            goto fail;
        if (!exec_in_rootfs) {
            r->exec_fd = open(exec, O_PATH | O_CLOEXEC);
            if (r->exec_fd < 0) {
                wr_sb_fail(err, "open", exec);
                goto fail;
            }
        }
        if (c->lang_deps && (exec_deps(c, r, exec, exec_in_rootfs, err) < 0
                             || (c->lang_dirs && lang_dirs(c->lang_dirs, r, err) < 0)))
            goto fail;
        if (mount_kinds(c, err) < 0 || mount_points(c, r, err) < 0)
            goto fail;
    }
    if (c->cgroup && r->cgroup_fd < 0 && wr_sb_cgroup_open(c->cgroup, r, err) < 0)
        goto fail;
    /* No mount namespace: the mounts are made here, in the host namespace,
     * once for the generation, and undone by wr_sb_release(). */
    if (c->rootfs && !(c->clone_flags & CLONE_NEWNS) && !r->host_mounted) {
        r->host_mounted = 1;
        if (wr_sb_mount_all(c, r, r->rootfs_fd, 1, err) < 0)
            goto fail;
    }
    return 0;
fail:
    wr_sb_started(r);
    return -1;
}

void wr_sb_started(wr_sb_run_t *r)
{
    if (r->rootfs_fd >= 0)
        close(r->rootfs_fd);
    if (r->exec_fd >= 0)
        close(r->exec_fd);
    if (r->cgroup_fd >= 0)
        close(r->cgroup_fd);
    r->rootfs_fd = r->exec_fd = r->cgroup_fd = -1;
    for (size_t i = 0; i < r->ndeps; i++) {
        free(r->deps[i].source);
        free(r->deps[i].dest);
    }
    free(r->deps);
    r->deps = NULL;
    r->ndeps = 0;
}

/* A host mount, found again by path beneath the rootfs (no symlink
 * followed), is unmounted only if it is still the one main made. */
static void host_umount(const wr_sb_conf_t *c, int rootfd, const wr_sb_hostmnt_t *hm)
{
    char path[WR_PROC_FD_PATH], obj[PATH_MAX * 2];
    uint64_t id;
    wr_sb_err_t err;
    int fd = wr_sb_resolve(rootfd, c->rootfs, hm->dest, 0, hm->kind, &err);

    if (fd < 0) {
        wr_log(WR_LOG_ERR, "cannot unmount %s%s: %s", c->rootfs, hm->dest, err.text);
        return;
    }
    snprintf(obj, sizeof(obj), "%s%s", c->rootfs, hm->dest);
    if (wr_sb_mount_id(fd, &id) < 0) {
        wr_log_sys(WR_LOG_ERR, "statx", obj);
    } else if (id != hm->id) {
        wr_log(WR_LOG_ERR, "not unmounting %s: it is no longer the mount warrend made", obj);
    } else {
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        if (umount2(path, MNT_DETACH) < 0)
            wr_log_sys(WR_LOG_ERR, "umount2", obj);
    }
    close(fd);
}

static int peer_holds(const wr_sb_run_t *r, uint64_t id)
{
    for (size_t p = 0; p < r->npeers; p++)
        for (size_t i = 0; i < r->peers[p]->nhost_mnt; i++)
            if (r->peers[p]->host_mnt[i].id == id)
                return 1;
    return 0;
}

void wr_sb_release(const wr_sb_conf_t *c, wr_sb_run_t *r)
{
    int rootfd = -1;

    wr_sb_started(r);
    if (r->nhost_mnt > 0) {
        rootfd = open(c->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (rootfd < 0)
            wr_log_sys(WR_LOG_ERR, "open", c->rootfs);
    }
    /* Newest first: a mount made inside an earlier one goes first. */
    while (r->nhost_mnt > 0) {
        wr_sb_hostmnt_t *hm = &r->host_mnt[--r->nhost_mnt];
        if (rootfd >= 0 && !peer_holds(r, hm->id))
            host_umount(c, rootfd, hm);
        free(hm->dest);
        free(hm->sig);
    }
    if (rootfd >= 0)
        close(rootfd);
    free(r->host_mnt);
    r->host_mnt = NULL;
    wr_sb_cgroup_close(r);
}
