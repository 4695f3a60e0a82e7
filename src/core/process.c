#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>

#include "core/log.h"
#include "core/process.h"

/* The context of this process; each forked child overwrites it at start. */
wr_process_t wr_proc = { .role = WR_ROLE_MAIN, .log_fd = 2, .log_level = WR_LOG_INFO };

static const char *const role_names[WR_ROLE_COUNT] = {
    [WR_ROLE_MAIN] = "main",
    [WR_ROLE_CONTROLLER] = "controller",
    [WR_ROLE_ROUTER] = "router",
};

const char *wr_role_name(wr_role_t role)
{
    return role < WR_ROLE_COUNT ? role_names[role] : "unknown";
}

/*
 * ps reads /proc/PID/cmdline, which is the argv area of the stack. To show a
 * longer title than argv[0] we take over the contiguous argv+environ strings
 * after moving environ to the heap.
 */
void wr_title_init(int argc, char **argv)
{
    extern char **environ;
    char *area = argv[0];
    char *end = argv[0] + strlen(argv[0]) + 1;
    size_t n = 0;
    char **env;

    for (int i = 1; i < argc && argv[i] == end; i++)
        end = argv[i] + strlen(argv[i]) + 1;
    /* The strings are about to be overwritten: argv users get copies. */
    for (int i = 0; i < argc; i++)
        argv[i] = strdup(argv[i]);
    while (environ[n])
        n++;
    env = calloc(n + 1, sizeof(*env));
    if (env == NULL)
        goto done;
    for (size_t i = 0; i < n; i++) {
        if (environ[i] == end)
            end = environ[i] + strlen(environ[i]) + 1;
        env[i] = strdup(environ[i]);
    }
    environ = env;
done:
    wr_proc.title_area = area;
    wr_proc.title_size = (size_t) (end - area);
}

void wr_title_set(const char *title)
{
    size_t n;

    prctl(PR_SET_NAME, title, 0, 0, 0);
    if (wr_proc.title_area == NULL || wr_proc.title_size < 2)
        return;
    n = strlen(title);
    if (n > wr_proc.title_size - 1)
        n = wr_proc.title_size - 1;
    memcpy(wr_proc.title_area, title, n);
    memset(wr_proc.title_area + n, 0, wr_proc.title_size - n);
}

static int cmp_int(const void *a, const void *b)
{
    return *(const int *) a - *(const int *) b;
}

int wr_close_fds_except(const int *keep, int n)
{
    int sorted[16];
    unsigned from = 3;

    if (n > (int) (sizeof(sorted) / sizeof(sorted[0])))
        return -1;
    memcpy(sorted, keep, sizeof(int) * (size_t) n);
    qsort(sorted, (size_t) n, sizeof(int), cmp_int);
    for (int i = 0; i < n; i++) {
        if (sorted[i] < (int) from)
            continue;
        if ((unsigned) sorted[i] > from && close_range(from, (unsigned) sorted[i] - 1, 0) < 0)
            return -1;
        from = (unsigned) sorted[i] + 1;
    }
    return close_range(from, ~0U, 0);
}

int wr_drop_privileges(uid_t uid, gid_t gid)
{
    char obj[64];

    snprintf(obj, sizeof(obj), "%u", (unsigned) gid);
    if (setgroups(1, &gid) < 0) {
        wr_log_sys(WR_LOG_EMERG, "setgroups", obj);
        return -1;
    }
    if (setresgid(gid, gid, gid) < 0) {
        wr_log_sys(WR_LOG_EMERG, "setresgid", obj);
        return -1;
    }
    snprintf(obj, sizeof(obj), "%u", (unsigned) uid);
    if (setresuid(uid, uid, uid) < 0) {
        wr_log_sys(WR_LOG_EMERG, "setresuid", obj);
        return -1;
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        wr_log_sys(WR_LOG_EMERG, "prctl", "PR_SET_NO_NEW_PRIVS");
        return -1;
    }
    /* The router holds TLS private keys and every client's bytes: another
     * process of this user (an application run as nobody) must not ptrace
     * it or read its memory. The kernel does this on the uid change only
     * while fs.suid_dumpable is 0. */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
        wr_log_sys(WR_LOG_EMERG, "prctl", "PR_SET_DUMPABLE");
        return -1;
    }
    /* Paranoia: if root was dropped, getting it back must be impossible. */
    if (uid != 0 && setresuid(0, 0, 0) == 0) {
        wr_log(WR_LOG_EMERG, "privileges could be regained after dropping to uid %u",
               (unsigned) uid);
        return -1;
    }
    return 0;
}

int wr_watch_parent(pid_t parent)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) {
        wr_log_sys(WR_LOG_EMERG, "prctl", "PR_SET_PDEATHSIG");
        return -1;
    }
    /* The parent may have died before the prctl took effect. */
    if (getppid() != parent)
        _exit(1);
    return 0;
}

int wr_child_signals(wr_ev_loop_t *loop, wr_ev_t *ev, wr_ev_cb cb, void *data)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGQUIT);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGHUP, SIG_IGN);
    signal(SIGUSR1, SIG_IGN);
    ev->fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (ev->fd < 0) {
        wr_log_sys(WR_LOG_EMERG, "signalfd", wr_role_name(wr_proc.role));
        return -1;
    }
    ev->cb = cb;
    ev->data = data;
    return wr_ev_add(loop, ev, EPOLLIN);
}
