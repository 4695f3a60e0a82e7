/*
 * The names the "isolation" object uses for capabilities and rlimits, and
 * the small pure helpers around the sandbox configuration.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <linux/capability.h>

#include "sandbox/sandbox.h"

/* Lowercase, without "CAP_": what "capabilities" lists. */
static const char *const cap_names[] = {
    [CAP_CHOWN] = "chown",
    [CAP_DAC_OVERRIDE] = "dac_override",
    [CAP_DAC_READ_SEARCH] = "dac_read_search",
    [CAP_FOWNER] = "fowner",
    [CAP_FSETID] = "fsetid",
    [CAP_KILL] = "kill",
    [CAP_SETGID] = "setgid",
    [CAP_SETUID] = "setuid",
    [CAP_SETPCAP] = "setpcap",
    [CAP_LINUX_IMMUTABLE] = "linux_immutable",
    [CAP_NET_BIND_SERVICE] = "net_bind_service",
    [CAP_NET_BROADCAST] = "net_broadcast",
    [CAP_NET_ADMIN] = "net_admin",
    [CAP_NET_RAW] = "net_raw",
    [CAP_IPC_LOCK] = "ipc_lock",
    [CAP_IPC_OWNER] = "ipc_owner",
    [CAP_SYS_MODULE] = "sys_module",
    [CAP_SYS_RAWIO] = "sys_rawio",
    [CAP_SYS_CHROOT] = "sys_chroot",
    [CAP_SYS_PTRACE] = "sys_ptrace",
    [CAP_SYS_PACCT] = "sys_pacct",
    [CAP_SYS_ADMIN] = "sys_admin",
    [CAP_SYS_BOOT] = "sys_boot",
    [CAP_SYS_NICE] = "sys_nice",
    [CAP_SYS_RESOURCE] = "sys_resource",
    [CAP_SYS_TIME] = "sys_time",
    [CAP_SYS_TTY_CONFIG] = "sys_tty_config",
    [CAP_MKNOD] = "mknod",
    [CAP_LEASE] = "lease",
    [CAP_AUDIT_WRITE] = "audit_write",
    [CAP_AUDIT_CONTROL] = "audit_control",
    [CAP_SETFCAP] = "setfcap",
    [CAP_MAC_OVERRIDE] = "mac_override",
    [CAP_MAC_ADMIN] = "mac_admin",
    [CAP_SYSLOG] = "syslog",
    [CAP_WAKE_ALARM] = "wake_alarm",
    [CAP_BLOCK_SUSPEND] = "block_suspend",
    [CAP_AUDIT_READ] = "audit_read",
    [CAP_PERFMON] = "perfmon",
    [CAP_BPF] = "bpf",
    [CAP_CHECKPOINT_RESTORE] = "checkpoint_restore",
};

#define CAP_NAME_MAX 32     /* longer than any name above */
#define CAP_PREFIX   "cap_" /* accepted, in any case: "CAP_NET_RAW" */
#define CAP_COUNT ((int) (sizeof(cap_names) / sizeof(cap_names[0])))

int wr_sb_cap_from_name(const char *name)
{
    for (int i = 0; i < CAP_COUNT; i++)
        if (cap_names[i] && strcmp(cap_names[i], name) == 0)
            return i;
    return -1;
}

int wr_sb_cap_parse(const char *name)
{
    char low[CAP_NAME_MAX];
    size_t i;

    if (strncasecmp(name, CAP_PREFIX, sizeof(CAP_PREFIX) - 1) == 0)
        name += sizeof(CAP_PREFIX) - 1;
    for (i = 0; name[i] && i < sizeof(low) - 1; i++)
        low[i] = (char) tolower((unsigned char) name[i]);
    low[i] = '\0';
    return name[i] ? -1 : wr_sb_cap_from_name(low);
}

const char *wr_sb_cap_name(int cap)
{
    return cap >= 0 && cap < CAP_COUNT ? cap_names[cap] : NULL;
}

static const struct {
    const char *name;
    int         resource;
} rlims[WR_SB_RLIM_N] = {
    { "nofile", RLIMIT_NOFILE }, { "nproc", RLIMIT_NPROC }, { "as", RLIMIT_AS },
    { "core", RLIMIT_CORE }, { "cpu", RLIMIT_CPU }, { "fsize", RLIMIT_FSIZE },
};

int wr_sb_rlim_index(const char *name)
{
    for (int i = 0; i < WR_SB_RLIM_N; i++)
        if (strcmp(rlims[i].name, name) == 0)
            return i;
    return -1;
}

const char *wr_sb_rlim_name(int idx)
{
    return idx >= 0 && idx < WR_SB_RLIM_N ? rlims[idx].name : NULL;
}

int wr_sb_rlim_resource(int idx)
{
    return idx >= 0 && idx < WR_SB_RLIM_N ? rlims[idx].resource : -1;
}

int wr_sb_idmap_text(const wr_sb_idmap_t *m, size_t n, char *buf, size_t len)
{
    size_t used = 0;

    if (len == 0)
        return -1;
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        int w = snprintf(buf + used, len - used, "%u %u %u\n", (unsigned) m[i].container,
                         (unsigned) m[i].host, (unsigned) m[i].size);
        if (w < 0 || (size_t) w >= len - used)
            return -1;
        used += (size_t) w;
    }
    return (int) used;
}

int wr_sb_idmap_has(const wr_sb_idmap_t *m, size_t n, uint32_t id)
{
    for (size_t i = 0; i < n; i++)
        if (id >= m[i].container && id - m[i].container < m[i].size)
            return 1;
    return 0;
}

void wr_sb_conf_init(wr_sb_conf_t *c)
{
    memset(c, 0, sizeof(*c));
    c->lang_deps = c->procfs = c->tmpfs = 1;
    c->seccomp = 1;
    for (int i = 0; i < WR_SB_RLIM_N; i++)
        c->rlim[i] = WR_SB_RLIM_UNSET;
}

void wr_sb_conf_free(wr_sb_conf_t *c)
{
    free(c->uidmap);
    free(c->gidmap);
    free(c->rootfs);
    for (size_t i = 0; i < c->nmounts; i++) {
        free(c->mounts[i].source);
        free(c->mounts[i].dest);
    }
    free(c->mounts);
    free(c->cgroup);
    free(c->hostname);
    wr_sb_conf_init(c);
}

int wr_sb_fail(wr_sb_err_t *err, const char *call, const char *object)
{
    int e = errno;

    snprintf(err->text, sizeof(err->text), "%s(%s) failed: %s", call, object, strerror(e));
    errno = e;
    return -1;
}
