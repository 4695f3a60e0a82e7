/*
 * Processes an application left behind. main is a child subreaper, and so
 * is every prototype: a process whose parent exits is adopted by its
 * generation's prototype while that runs, and by main once the prototype
 * is gone (torn down, or killed outright). main's own children are the
 * controller, the router and the prototypes: any other child of main is
 * such an orphan, and is killed. This is what ends a daemon that
 * double-forked and called setsid when the generation has no pid
 * namespace: the SIGKILL to the generation's process group misses it, and
 * no cgroup is required.
 *
 * The kernel has no list of a process's children here (CONFIG_PROC_CHILDREN
 * may be off): /proc is scanned for the ones whose parent is main. A child
 * of main cannot be reaped by anyone but main, so its pid cannot be reused
 * between the scan and the kill.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "daemon/internal.h"

#define WR_STAT_MAX  1024      /* /proc/PID/stat: comm is at most 16 bytes */
#define WR_STAT_PATH 64

int wr_proc_parent(pid_t pid, char *state, pid_t *ppid)
{
    char path[WR_STAT_PATH], buf[WR_STAT_MAX];
    const char *end;
    ssize_t n;
    int fd, pp;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    /* "pid (comm) S ppid ...": comm may hold anything, even ") ". */
    end = strrchr(buf, ')');
    if (end == NULL || sscanf(end + 1, " %c %d", state, &pp) != 2)
        return -1;
    *ppid = (pid_t) pp;
    return 0;
}

static int known(wr_main_t *m, pid_t pid)
{
    for (int r = WR_ROLE_CONTROLLER; r < WR_ROLE_COUNT; r++)
        if (m->child[r].pid == pid)
            return 1;
    return wr_apps_owns(m, pid);
}

int wr_orphans_kill(wr_main_t *m)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    pid_t self = getpid();
    int n = 0;

    if (d == NULL) {
        wr_log_sys(WR_LOG_ERR, "opendir", "/proc");
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        char state;
        pid_t pid, ppid;
        if (!isdigit((unsigned char) e->d_name[0]))
            continue;
        pid = (pid_t) strtol(e->d_name, NULL, 10);
        /* A zombie is dead already: main reaps it (SIGCHLD). */
        if (wr_proc_parent(pid, &state, &ppid) < 0 || ppid != self || state == 'Z'
            || known(m, pid))
            continue;
        if (kill(pid, SIGKILL) < 0) {
            wr_log_sys(WR_LOG_ERR, "kill", "a process left behind by an application");
            continue;
        }
        wr_log(WR_LOG_INFO, "killed process %d, left behind by an application", (int) pid);
        n++;
    }
    closedir(d);
    return n;
}
