/*
 * "cgroup": {"path"} in the cgroup v2 hierarchy. A relative path is under
 * warrend's own cgroup (/proc/self/cgroup "0::"), an absolute one under the
 * cgroup2 mount (found in /proc/self/mountinfo: /sys/fs/cgroup on a unified
 * host, /sys/fs/cgroup/unified on a hybrid one). Missing levels are created;
 * the prototype is cloned straight into it (CLONE_INTO_CGROUP), so no app
 * process ever runs outside it. At release the leaf is removed if empty and
 * warrend created it (the caller hands that over to another generation
 * still in the same cgroup: then it stays until that one is gone).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "sandbox/sandbox.h"

#define WR_CG_LINE 4096

/* The cgroup2 mount point: field 5 of a mountinfo line whose type after
 * " - " is cgroup2. */
static int cg_mount(char *out, size_t len, wr_sb_err_t *err)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    char line[WR_CG_LINE];
    int found = 0;

    if (f == NULL)
        return wr_sb_fail(err, "fopen", "/proc/self/mountinfo");
    while (!found && fgets(line, sizeof(line), f)) {
        char *sep = strstr(line, " - ");
        char mp[PATH_MAX];
        if (sep == NULL || strncmp(sep + 3, "cgroup2 ", 8) != 0)
            continue;
        if (sscanf(line, "%*s %*s %*s %*s %4095s", mp) == 1 && strlen(mp) < len) {
            strcpy(out, mp);
            found = 1;
        }
    }
    fclose(f);
    if (!found) {
        errno = ENOENT;
        return wr_sb_fail(err, "find", "cgroup2 mount in /proc/self/mountinfo");
    }
    return 0;
}

static int cg_self(char *out, size_t len, wr_sb_err_t *err)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    char line[WR_CG_LINE];
    int found = 0;

    if (f == NULL)
        return wr_sb_fail(err, "fopen", "/proc/self/cgroup");
    while (!found && fgets(line, sizeof(line), f)) {
        if (strncmp(line, "0::", 3) != 0)
            continue;
        line[strcspn(line, "\n")] = '\0';
        if (strlen(line + 3) < len) {
            strcpy(out, line + 3);
            found = 1;
        }
    }
    fclose(f);
    if (!found) {
        errno = ENOENT;
        return wr_sb_fail(err, "find", "0:: in /proc/self/cgroup");
    }
    return 0;
}

/* mkdir -p below the mount point; the mount point itself exists (and is
 * all of dir for the path "/"). *made: the last level was created here. */
static int cg_mkdirs(char *dir, size_t from, int *made, wr_sb_err_t *err)
{
    *made = 0;
    if (strlen(dir) <= from)
        return 0;
    for (char *p = dir + from + 1; ; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        *made = mkdir(dir, 0755) == 0;
        if (!*made && errno != EEXIST) {
            wr_sb_fail(err, "mkdir", dir);
            *p = c;
            return -1;
        }
        *p = c;
        if (c == '\0')
            return 0;
    }
}

int wr_sb_cgroup_open(const char *path, wr_sb_run_t *r, wr_sb_err_t *err)
{
    char mnt[PATH_MAX], self[PATH_MAX], dir[PATH_MAX];
    int n, made;

    if (cg_mount(mnt, sizeof(mnt), err) < 0)
        return -1;
    if (path[0] == '/')
        n = snprintf(dir, sizeof(dir), "%s%s", mnt, path);
    else if (cg_self(self, sizeof(self), err) < 0)
        return -1;
    else
        n = snprintf(dir, sizeof(dir), "%s%s%s%s", mnt, self,
                     self[strlen(self) - 1] == '/' ? "" : "/", path);
    if (n < 0 || (size_t) n >= sizeof(dir)) {
        errno = ENAMETOOLONG;
        return wr_sb_fail(err, "cgroup", path);
    }
    while (n > 1 && dir[n - 1] == '/')
        dir[--n] = '\0';
    free(r->cgroup_dir);            /* a restart of the prototype: again */
    r->cgroup_dir = NULL;
    if (cg_mkdirs(dir, strlen(mnt), &made, err) < 0)
        return -1;
    /* A restart of the prototype finds the leaf it made the first time. */
    r->cgroup_made |= made;
    r->cgroup_fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (r->cgroup_fd < 0)
        return wr_sb_fail(err, "open", dir);
    r->cgroup_dir = strdup(dir);
    if (r->cgroup_dir == NULL) {
        close(r->cgroup_fd);
        r->cgroup_fd = -1;
        return wr_sb_fail(err, "strdup", dir);
    }
    return 0;
}

void wr_sb_cgroup_close(wr_sb_run_t *r)
{
    if (r->cgroup_fd >= 0)
        close(r->cgroup_fd);
    r->cgroup_fd = -1;
    /* Only a leaf warrend made: one the administrator made (and perhaps
     * set limits on) stays. EBUSY: a process still exiting is in it. */
    if (r->cgroup_dir && r->cgroup_made)
        rmdir(r->cgroup_dir);
    free(r->cgroup_dir);
    r->cgroup_dir = NULL;
}
