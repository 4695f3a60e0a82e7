/*
 * In the prototype, once main has let it go: the mount namespace made
 * private before anything is mounted, the rootfs mounts, pivot_root with the
 * old root detached (or chroot without a mount namespace: main has mounted
 * already), hostname, loopback up in a network namespace, rlimits, the
 * capability bounding set.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "sandbox/sandbox.h"

static int enter_rootfs_ns(const wr_sb_conf_t *c, wr_sb_run_t *r, wr_sb_err_t *err)
{
    struct stat want, got;
    int root;

    /* pivot_root needs the new root to be a mount point. By path: the fd
     * main opened belongs to the host's mount namespace, which can be
     * neither cloned nor mounted on from here. If the path was swapped
     * since, the bind happened in our private namespace only, and the
     * dev/ino check below refuses to go on. */
    if (mount(c->rootfs, c->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
        return wr_sb_fail(err, "mount", c->rootfs);
    root = open(c->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0)
        return wr_sb_fail(err, "open", c->rootfs);
    /* The same directory main checked, not something swapped in since. */
    errno = 0;
    if (fstat(root, &got) < 0 || fstat(r->rootfs_fd, &want) < 0
        || got.st_dev != want.st_dev || got.st_ino != want.st_ino) {
        if (errno == 0)
            errno = ESTALE;
        wr_sb_fail(err, "open", c->rootfs);
        close(root);
        return -1;
    }
    if (wr_sb_mount_all(c, r, root, 0, err) < 0) {
        close(root);
        return -1;
    }
    if (fchdir(root) < 0) {
        wr_sb_fail(err, "fchdir", c->rootfs);
        close(root);
        return -1;
    }
    close(root);
    /* The old root ends up on top of the new one; detached at once. */
    if (syscall(SYS_pivot_root, ".", ".") < 0)
        return wr_sb_fail(err, "pivot_root", c->rootfs);
    if (umount2(".", MNT_DETACH) < 0)
        return wr_sb_fail(err, "umount2", "old root");
    if (chdir("/") < 0)
        return wr_sb_fail(err, "chdir", "/");
    return 0;
}

static int enter_chroot(const wr_sb_conf_t *c, wr_sb_run_t *r, wr_sb_err_t *err)
{
    if (fchdir(r->rootfs_fd) < 0)
        return wr_sb_fail(err, "fchdir", c->rootfs);
    if (chroot(".") < 0)
        return wr_sb_fail(err, "chroot", c->rootfs);
    if (chdir("/") < 0)
        return wr_sb_fail(err, "chdir", "/");
    return 0;
}

int wr_sb_enter(const wr_sb_conf_t *c, wr_sb_run_t *r, wr_sb_err_t *err)
{
    if (c->clone_flags & CLONE_NEWNS) {
        /* First: nothing we mount propagates out, nothing comes in. */
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
            return wr_sb_fail(err, "mount", "/, MS_REC|MS_PRIVATE");
        if (c->rootfs && enter_rootfs_ns(c, r, err) < 0)
            return -1;
    } else if (c->rootfs && enter_chroot(c, r, err) < 0) {
        return -1;
    }
    if (r->rootfs_fd >= 0) {
        close(r->rootfs_fd);
        r->rootfs_fd = -1;
    }
    if ((c->clone_flags & CLONE_NEWUTS) && c->hostname
        && sethostname(c->hostname, strlen(c->hostname)) < 0)
        return wr_sb_fail(err, "sethostname", c->hostname);
    /* Still with every capability over the new namespaces. */
    if ((c->clone_flags & CLONE_NEWNET) && wr_sb_loopback_up(err) < 0)
        return -1;
    if (wr_sb_rlimits_apply(c, err) < 0)
        return -1;
    return wr_sb_caps_bound(c, err);
}
