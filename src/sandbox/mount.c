/*
 * Mounts under an app's rootfs. Every target is resolved from the rootfs
 * dir fd with openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|NO_MAGICLINKS),
 * one component at a time, and the mount is made on that fd (through
 * /proc/self/fd/N, or move_mount onto it): a symlink planted in the rootfs
 * makes the step fail (ELOOP); it can never redirect a mount to the host.
 *
 * Missing mount points are created inside the rootfs (directories 0755,
 * empty files 0644 for a file bind), each part with mkdirat/openat
 * O_EXCL|O_NOFOLLOW relative to its already resolved parent.
 *
 * Binds (language deps, "mounts") are open_tree clones made nosuid, nodev
 * (and read-only) recursively with mount_setattr BEFORE they are attached
 * with move_mount, so there is no writable window.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <linux/openat2.h>

#include "sandbox/sandbox.h"

#define WR_PROC_FD_PATH 64
#define WR_TMPFS_OPTS   64
#define WR_TMPFS_MODE   "mode=1777"

static int open_beneath(int dirfd, const char *name)
{
    struct open_how how = {
        .flags = O_PATH | O_CLOEXEC,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    };

    return (int) syscall(SYS_openat2, dirfd, name, &how, sizeof(how));
}

/* "rootfs/dest[0..end)" for messages. */
static void where(char *buf, size_t len, const char *rootfs, const char *dest, size_t end)
{
    snprintf(buf, len, "%s%.*s", strcmp(rootfs, "/") == 0 ? "" : rootfs, (int) end, dest);
}

static int make_part(int dirfd, const char *name, int dir)
{
    int fd;

    if (dir)
        return mkdirat(dirfd, name, 0755) < 0 && errno != EEXIST ? -1 : 0;
    fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return errno == EEXIST ? 0 : -1;
    close(fd);
    return 0;
}

/* dest[0..end) resolved from the rootfs as its "/". */
static int open_in_root(int rootfd, const char *dest, size_t end)
{
    struct open_how how = {
        .flags = O_PATH | O_CLOEXEC,
        .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    char prefix[PATH_MAX];

    if (end >= sizeof(prefix)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(prefix, dest, end);
    prefix[end] = '\0';
    return (int) syscall(SYS_openat2, rootfd, prefix, &how, sizeof(how));
}

int wr_sb_resolve(int rootfd, const char *rootfs, const char *dest, int create, int kind,
                  wr_sb_err_t *err)
{
    char part[NAME_MAX + 1], obj[PATH_MAX + 64];
    const char *p = dest;
    int cur = rootfd, in_root = kind & WR_SB_IN_ROOT;
    struct stat st;

    kind &= ~WR_SB_IN_ROOT;

    for (;;) {
        size_t len;
        int next, last;
        while (*p == '/')
            p++;
        if (*p == '\0')
            break;
        len = strcspn(p, "/");
        last = p[len + strspn(p + len, "/")] == '\0';
        if (len > NAME_MAX || (len == 2 && p[0] == '.' && p[1] == '.')) {
            errno = EINVAL;
            goto fail;
        }
        memcpy(part, p, len);
        part[len] = '\0';
        next = in_root ? open_in_root(rootfd, dest, (size_t) (p - dest) + len)
                       : open_beneath(cur, part);
        if (next < 0 && errno == ENOENT && create) {
            if (make_part(cur, part, !last || kind == WR_SB_MNT_DIR) < 0) {
                where(obj, sizeof(obj), rootfs, dest, (size_t) (p - dest) + len);
                wr_sb_fail(err, last && kind == WR_SB_MNT_FILE ? "openat" : "mkdirat", obj);
                goto out;
            }
            next = in_root ? open_in_root(rootfd, dest, (size_t) (p - dest) + len)
                           : open_beneath(cur, part);
        }
        if (next < 0) {
            p += len;
            goto fail;
        }
        if (cur != rootfd)
            close(cur);
        cur = next;
        p += len;
    }
    if (cur == rootfd && (cur = fcntl(rootfd, F_DUPFD_CLOEXEC, 0)) < 0) {
        cur = rootfd;
        goto fail;
    }
    if (fstat(cur, &st) < 0)
        goto fail;
    if (kind == WR_SB_MNT_DIR ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) {
        errno = kind == WR_SB_MNT_DIR ? ENOTDIR : EISDIR;
        goto fail;
    }
    return cur;
fail:
    where(obj, sizeof(obj), rootfs, dest, (size_t) (p - dest));
    wr_sb_fail(err, "openat2", obj);
out:
    if (cur != rootfd)
        close(cur);
    return -1;
}

/* Remember a mount made in the host namespace (chroot): its path and id;
 * fd is its root (closed here). */
static int record(wr_sb_run_t *r, const char *dest, int kind, uint64_t id, const char *sig,
                  wr_sb_err_t *err)
{
    wr_sb_hostmnt_t *v = realloc(r->host_mnt, (r->nhost_mnt + 1) * sizeof(*v));

    if (v == NULL)
        return wr_sb_fail(err, "realloc", "host mount list");
    r->host_mnt = v;
    v += r->nhost_mnt;
    v->id = id;
    v->kind = kind;
    v->dest = strdup(dest);
    v->sig = strdup(sig);
    if (v->dest == NULL || v->sig == NULL) {
        free(v->dest);
        free(v->sig);
        return wr_sb_fail(err, "strdup", dest);
    }
    r->nhost_mnt++;
    return 0;
}

int wr_sb_mount_id(int fd, uint64_t *id)
{
    struct statx stx;

    /* The 64-bit id is never reused; the old one is, once a mount is gone,
     * and release must not take someone else's mount for ours. */
    if (statx(fd, "", AT_EMPTY_PATH, WR_STATX_MNT_ID_UNIQUE, &stx) == 0
        && (stx.stx_mask & WR_STATX_MNT_ID_UNIQUE)) {
        *id = stx.stx_mnt_id;
        return 0;
    }
    if (statx(fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &stx) < 0)
        return -1;
    *id = stx.stx_mnt_id;
    return 0;
}

static int keep_mount(wr_sb_run_t *r, int fd, const char *dest, int kind, const char *sig,
                      wr_sb_err_t *err)
{
    uint64_t id;

    if (wr_sb_mount_id(fd, &id) < 0) {
        close(fd);
        return wr_sb_fail(err, "statx", dest);
    }
    close(fd);
    return record(r, dest, kind, id, sig, err);
}

/* A running generation on the same rootfs made this very mount: share it.
 * 1 adopted, 0 not, -1 error. */
static int adopt(wr_sb_run_t *r, const char *dest, int kind, const char *sig,
                 wr_sb_err_t *err)
{
    for (size_t p = 0; p < r->npeers; p++) {
        const wr_sb_run_t *o = r->peers[p];
        for (size_t i = 0; i < o->nhost_mnt; i++) {
            const wr_sb_hostmnt_t *h = &o->host_mnt[i];
            if (strcmp(h->dest, dest) == 0 && strcmp(h->sig, sig) == 0)
                return record(r, dest, kind, h->id, sig, err) < 0 ? -1 : 1;
        }
    }
    return 0;
}

static int bind_one(wr_sb_run_t *r, int rootfd, const char *rootfs, const wr_sb_mount_t *m,
                    int keep, wr_sb_err_t *err)
{
    struct mount_attr attr = { .attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV };
    char obj[PATH_MAX * 2 + 8], sig[PATH_MAX + 16];
    int tree, target, rc = -1;

    snprintf(sig, sizeof(sig), "bind:%s:%s", m->source, m->read_only ? "ro" : "rw");
    if (keep && (rc = adopt(r, m->dest, m->kind, sig, err)) != 0)
        return rc < 0 ? -1 : 0;
    rc = -1;
    target = wr_sb_resolve(rootfd, rootfs, m->dest, 0, m->kind, err);
    if (target < 0)
        return -1;
    tree = open_tree(AT_FDCWD, m->source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
    if (tree < 0) {
        wr_sb_fail(err, "open_tree", m->source);
        goto out;
    }
    if (m->read_only)
        attr.attr_set |= MOUNT_ATTR_RDONLY;
    if (mount_setattr(tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof(attr)) < 0) {
        wr_sb_fail(err, "mount_setattr", m->source);
        close(tree);
        goto out;
    }
    if (move_mount(tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0) {
        snprintf(obj, sizeof(obj), "%s, %s%s", m->source, rootfs, m->dest);
        wr_sb_fail(err, "move_mount", obj);
        close(tree);
        goto out;
    }
    /* After move_mount the tree fd is the attached mount's root. */
    if (keep)
        rc = keep_mount(r, tree, m->dest, m->kind, sig, err);
    else
        rc = (close(tree), 0);
out:
    close(target);
    return rc;
}

static int fs_one(wr_sb_run_t *r, int rootfd, const char *rootfs, const char *fstype,
                  const char *dest, const char *opts, int keep, wr_sb_err_t *err)
{
    char fdpath[WR_PROC_FD_PATH], obj[PATH_MAX + 64], sig[WR_TMPFS_OPTS + 16];
    int target, root, rc;

    snprintf(sig, sizeof(sig), "%s:%s", fstype, opts ? opts : "");
    if (keep && (rc = adopt(r, dest, WR_SB_MNT_DIR, sig, err)) != 0)
        return rc < 0 ? -1 : 0;
    target = wr_sb_resolve(rootfd, rootfs, dest, 0, WR_SB_MNT_DIR, err);
    if (target < 0)
        return -1;
    snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", target);
    if (mount(fstype, fdpath, fstype, MS_NOSUID | MS_NODEV | MS_NOEXEC, opts) < 0) {
        snprintf(obj, sizeof(obj), "%s, %s%s", fstype, rootfs, dest);
        wr_sb_fail(err, "mount", obj);
        close(target);
        return -1;
    }
    close(target);
    if (!keep)
        return 0;
    /* Resolved again: the walk now ends on the new mount's root. */
    root = wr_sb_resolve(rootfd, rootfs, dest, 0, WR_SB_MNT_DIR, err);
    return root < 0 ? -1 : keep_mount(r, root, dest, WR_SB_MNT_DIR, sig, err);
}

int wr_sb_mount_all(const wr_sb_conf_t *c, wr_sb_run_t *r, int rootfd, int keep,
                    wr_sb_err_t *err)
{
    char opts[WR_TMPFS_OPTS];

    for (size_t i = 0; i < r->ndeps; i++)
        if (bind_one(r, rootfd, c->rootfs, &r->deps[i], keep, err) < 0)
            return -1;
    for (size_t i = 0; i < c->nmounts; i++)
        if (bind_one(r, rootfd, c->rootfs, &c->mounts[i], keep, err) < 0)
            return -1;
    if (c->procfs && fs_one(r, rootfd, c->rootfs, "proc", "/proc", NULL, keep, err) < 0)
        return -1;
    if (c->tmpfs) {
        if (c->tmpfs_size > 0)
            snprintf(opts, sizeof(opts), "%s,size=%lld", WR_TMPFS_MODE, c->tmpfs_size);
        else
            snprintf(opts, sizeof(opts), "%s", WR_TMPFS_MODE);
        if (fs_one(r, rootfd, c->rootfs, "tmpfs", "/tmp", opts, keep, err) < 0)
            return -1;
    }
    return 0;
}
