/*
 * Warren's default seccomp profile: a deny-list. Built once in main with
 * libseccomp (which adds the architecture check: a syscall made through
 * another ABI kills the process), exported as a BPF program, and installed
 * in each app process right before exec.
 *
 * Denied with EPERM: kernel and system administration a web application
 * never needs, and the interfaces most kernel exploits start from.
 * socket(AF_ALG) and socketpair(AF_ALG) fail with EAFNOSUPPORT (as on a
 * kernel without it);
 * clone3 fails with ENOSYS (its flags cannot be inspected, so libc falls
 * back to clone, whose namespace flags are denied); unshare and setns are
 * denied whole: an app has no namespace to make or join.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <linux/seccomp.h>
#include <seccomp.h>

#include "sandbox/sandbox.h"

static const char *const denied[] = {
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    "mount", "umount2", "pivot_root", "move_mount", "open_tree", "fsopen", "fsconfig",
    "fsmount", "fspick", "mount_setattr", "chroot", "unshare", "setns",
    "bpf", "perf_event_open", "keyctl", "add_key", "request_key", "userfaultfd",
    "ptrace", "process_vm_writev", "process_vm_readv", "open_by_handle_at",
    /* io_uring runs socket, open and other operations in kernel workers
     * that this filter never sees: it would bypass every rule here. */
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "swapon", "swapoff", "reboot", "acct", "settimeofday", "clock_settime",
    "clock_adjtime", "adjtimex", "syslog", "quotactl", "quotactl_fd", "lookup_dcookie",
    "iopl", "ioperm", "create_module", "query_module", "uselib", "vhangup",
    "nfsservctl", "fanotify_init",
};

static int add_rules(scmp_filter_ctx ctx, wr_sb_err_t *err)
{
    struct scmp_arg_cmp cmp = { .arg = 0, .op = SCMP_CMP_EQ, .datum_a = AF_ALG,
                                .datum_b = 0 };
    int rc;

    for (size_t i = 0; i < sizeof(denied) / sizeof(denied[0]); i++) {
        int nr = seccomp_syscall_resolve_name(denied[i]);
        if (nr == __NR_SCMP_ERROR)
            continue;               /* not on this architecture */
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
        if (rc < 0) {
            errno = -rc;
            return wr_sb_fail(err, "seccomp_rule_add", denied[i]);
        }
    }
    rc = seccomp_rule_add_array(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1, &cmp);
    if (rc == 0)
        rc = seccomp_rule_add_array(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socketpair),
                                    1, &cmp);
    if (rc == 0) {
        /* Any namespace flag set: the masked value differs from 0. Written
         * as one rule per flag (libseccomp compares, it cannot test "!= 0"). */
        static const int flags[] = { CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC,
                                     CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET,
                                     CLONE_NEWCGROUP, CLONE_NEWTIME };
        cmp.op = SCMP_CMP_MASKED_EQ;
        for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]) && rc == 0; i++) {
            cmp.datum_a = cmp.datum_b = (scmp_datum_t) flags[i];
            rc = seccomp_rule_add_array(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1, &cmp);
        }
    }
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
    if (rc < 0) {
        errno = -rc;
        return wr_sb_fail(err, "seccomp_rule_add", "socket/socketpair/clone");
    }
    return 0;
}

/* libseccomp 2.5 exports to an fd only: a memfd, read back. */
static int export(scmp_filter_ctx ctx, wr_sb_filter_t *f, wr_sb_err_t *err)
{
    struct stat st;
    int fd = memfd_create("warren-seccomp", MFD_CLOEXEC), rc = -1;
    ssize_t got;

    if (fd < 0)
        return wr_sb_fail(err, "memfd_create", "seccomp");
    if ((rc = seccomp_export_bpf(ctx, fd)) < 0) {
        errno = -rc;
        rc = wr_sb_fail(err, "seccomp_export_bpf", "memfd");
        goto out;
    }
    rc = -1;
    if (fstat(fd, &st) < 0) {
        wr_sb_fail(err, "fstat", "seccomp memfd");
        goto out;
    }
    if (st.st_size == 0 || st.st_size % (off_t) sizeof(struct sock_filter) != 0
        || st.st_size / (off_t) sizeof(struct sock_filter) > BPF_MAXINSNS) {
        errno = EINVAL;
        wr_sb_fail(err, "seccomp_export_bpf", "program size");
        goto out;
    }
    f->insns = malloc((size_t) st.st_size);
    if (f->insns == NULL) {
        wr_sb_fail(err, "malloc", "seccomp program");
        goto out;
    }
    got = pread(fd, f->insns, (size_t) st.st_size, 0);
    if (got != st.st_size) {
        if (got >= 0)
            errno = EIO;
        wr_sb_fail(err, "pread", "seccomp memfd");
        free(f->insns);
        f->insns = NULL;
        goto out;
    }
    f->len = (unsigned short) (st.st_size / (off_t) sizeof(struct sock_filter));
    rc = 0;
out:
    close(fd);
    return rc;
}

int wr_sb_seccomp_build(wr_sb_filter_t *f, wr_sb_err_t *err)
{
    scmp_filter_ctx ctx;
    int rc;

    memset(f, 0, sizeof(*f));
    ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (ctx == NULL) {
        errno = ENOMEM;
        return wr_sb_fail(err, "seccomp_init", "default profile");
    }
    rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    /* no_new_privs is set by the sandbox itself, when the app allows it. */
    if (rc == 0)
        rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
    if (rc < 0) {
        errno = -rc;
        rc = wr_sb_fail(err, "seccomp_attr_set", "default profile");
    } else {
        rc = add_rules(ctx, err);
    }
    if (rc == 0)
        rc = export(ctx, f, err);
    seccomp_release(ctx);
    return rc;
}

void wr_sb_seccomp_free(wr_sb_filter_t *f)
{
    free(f->insns);
    memset(f, 0, sizeof(*f));
}

int wr_sb_seccomp_install(const wr_sb_filter_t *f, wr_sb_err_t *err)
{
    struct sock_fprog prog = { .len = f->len, .filter = f->insns };

    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0)
        return wr_sb_fail(err, "seccomp", "SECCOMP_SET_MODE_FILTER");
    return 0;
}
