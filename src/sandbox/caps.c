/*
 * Capabilities: an app keeps none unless "capabilities" lists it.
 *
 * The bounding set is cut while the prototype is still root (it needs
 * CAP_SETPCAP); keep-caps carries the listed ones over setresuid; then only
 * they stay permitted, effective and inheritable, and each worker raises
 * them as ambient so they survive its exec of a plain binary.
 *
 * Securebits NOROOT (locked): uid 0 gets no capability just for being uid 0
 * when it execs. The empty bounding set already ensures that; this keeps it
 * so if a later change ever left a bit in the bounding set, and it is what
 * keeps a uid-0 app in a user namespace from regaining its namespace's
 * capabilities by exec. Kept capabilities reach the app as ambient ones,
 * which NOROOT does not touch.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <linux/capability.h>
#include <linux/securebits.h>

#include "sandbox/sandbox.h"

#define WR_CAP_MAX WR_SB_CAP_BITS

static int kept(const wr_sb_conf_t *c, int cap)
{
    return cap < WR_CAP_MAX && (c->caps >> cap) & 1;
}

int wr_sb_caps_bound(const wr_sb_conf_t *c, wr_sb_err_t *err)
{
    char obj[32];

    /* The kernel knows how many there are: read until it says no more. */
    for (int cap = 0; prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++) {
        if (kept(c, cap))
            continue;
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0) {
            snprintf(obj, sizeof(obj), "PR_CAPBSET_DROP, %d", cap);
            return wr_sb_fail(err, "prctl", obj);
        }
    }
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
        return wr_sb_fail(err, "prctl", "PR_CAP_AMBIENT_CLEAR_ALL");
    /* Before PR_SET_KEEPCAPS: this sets the whole securebits word. */
    if (prctl(PR_SET_SECUREBITS, SECBIT_NOROOT | SECBIT_NOROOT_LOCKED, 0, 0, 0) < 0)
        return wr_sb_fail(err, "prctl", "PR_SET_SECUREBITS, SECBIT_NOROOT");
    if (c->caps && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
        return wr_sb_fail(err, "prctl", "PR_SET_KEEPCAPS");
    return 0;
}

int wr_sb_creds_done(const wr_sb_conf_t *c, wr_sb_err_t *err)
{
    struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
    struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3];
    uint32_t lo = (uint32_t) c->caps, hi = (uint32_t) (c->caps >> 32);

    memset(d, 0, sizeof(d));
    d[0].effective = d[0].permitted = d[0].inheritable = lo;
    d[1].effective = d[1].permitted = d[1].inheritable = hi;
    if (syscall(SYS_capset, &h, d) < 0)
        return wr_sb_fail(err, "capset", "kept capabilities");
    if (c->caps && prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
        return wr_sb_fail(err, "prctl", "PR_SET_KEEPCAPS");
    return 0;
}

/* In a worker: the kept ones become ambient, so exec keeps them. */
static int caps_ambient(const wr_sb_conf_t *c, wr_sb_err_t *err)
{
    char obj[48];

    for (int cap = 0; cap < WR_CAP_MAX; cap++) {
        if (!kept(c, cap))
            continue;
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0) {
            snprintf(obj, sizeof(obj), "PR_CAP_AMBIENT_RAISE, %s", wr_sb_cap_name(cap));
            return wr_sb_fail(err, "prctl", obj);
        }
    }
    return 0;
}

/*
 * The one hardening step every exec path of an app process goes through,
 * right before its exec: ambient caps, no_new_privs, seccomp.
 */
int wr_sb_exec_prepare(const wr_sb_conf_t *c, const wr_sb_filter_t *f, wr_sb_err_t *err)
{
    if (caps_ambient(c, err) < 0)
        return -1;
    if (!c->new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return wr_sb_fail(err, "prctl", "PR_SET_NO_NEW_PRIVS");
    if (c->seccomp && f && f->insns && wr_sb_seccomp_install(f, err) < 0)
        return -1;
    return 0;
}
