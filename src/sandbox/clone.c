/*
 * The prototype's birth: clone3() with the CLONE_NEW* flags, straight into
 * its cgroup. The child waits on a pipe until main has written its id maps
 * (a child in a new user namespace has no ids before that); main lets it go
 * by writing one byte, or kills it when a step failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/sched.h>

#include "sandbox/sandbox.h"

#define WR_SB_GO 'g'
#define WR_IDMAP_TEXT 4096

static int write_file(pid_t pid, const char *name, const char *text, wr_sb_err_t *err)
{
    char path[64];
    int fd;
    ssize_t n;
    size_t len = strlen(text);

    snprintf(path, sizeof(path), "/proc/%d/%s", (int) pid, name);
    fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return wr_sb_fail(err, "open", path);
    n = write(fd, text, len);
    if (n != (ssize_t) len) {
        if (n >= 0)
            errno = EIO;
        wr_sb_fail(err, "write", path);
        close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

/* Unit's default without a map: the app's own id, inside as outside. */
static int write_map(pid_t pid, const char *name, const wr_sb_idmap_t *m, size_t n,
                     uint32_t self, wr_sb_err_t *err)
{
    wr_sb_idmap_t def = { .container = self, .host = self, .size = 1 };
    char text[WR_IDMAP_TEXT];

    if (n == 0) {
        m = &def;
        n = 1;
    }
    if (wr_sb_idmap_text(m, n, text, sizeof(text)) < 0) {
        errno = E2BIG;
        return wr_sb_fail(err, "write", name);
    }
    return write_file(pid, name, text, err);
}

pid_t wr_sb_clone(const wr_sb_conf_t *c, const wr_sb_run_t *r, uid_t uid, gid_t gid,
                  wr_sb_err_t *err)
{
    struct clone_args ca;
    int go[2];
    char b;
    pid_t pid;

    if (pipe2(go, O_CLOEXEC) < 0)
        return wr_sb_fail(err, "pipe2", "sandbox start");
    memset(&ca, 0, sizeof(ca));
    ca.flags = (uint64_t) c->clone_flags;
    ca.exit_signal = SIGCHLD;
    if (r->cgroup_fd >= 0) {
        ca.flags |= CLONE_INTO_CGROUP;
        ca.cgroup = (uint64_t) r->cgroup_fd;
    }
    b = 0;
    pid = (pid_t) syscall(SYS_clone3, &ca, sizeof(ca));
    if (pid < 0) {
        wr_sb_fail(err, "clone3", r->cgroup_dir ? r->cgroup_dir : "namespaces");
        close(go[0]);
        close(go[1]);
        return -1;
    }
    if (pid == 0) {
        close(go[1]);
        /* Before waiting: main dying from now on ends us too (and if it
         * died before, the pipe says so with EOF). */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
            _exit(1);
        while (read(go[0], &b, 1) < 0 && errno == EINTR)
            ;
        if (b != WR_SB_GO)
            _exit(1);       /* main gave up on us */
        close(go[0]);
        return 0;
    }
    close(go[0]);
    b = 0;
    if (c->clone_flags & CLONE_NEWUSER) {
        /* main is root in the parent namespace: setgroups stays allowed, so
         * the prototype can set the app's group list as anywhere else. */
        if (write_map(pid, "uid_map", c->uidmap, c->nuidmap, (uint32_t) uid, err) < 0
            || write_map(pid, "gid_map", c->gidmap, c->ngidmap, (uint32_t) gid, err) < 0)
            goto fail;
    }
    b = WR_SB_GO;
    if (write(go[1], &b, 1) != 1) {
        wr_sb_fail(err, "write", "sandbox start pipe");
        goto fail;
    }
    close(go[1]);
    return pid;
fail:
    close(go[1]);
    kill(pid, SIGKILL);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
        ;
    return -1;
}
