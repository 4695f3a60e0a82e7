/*
 * "rlimits": soft = hard = the configured value, set in the prototype while
 * it is still privileged (so a limit above warrend's own can be set), and
 * inherited by every worker.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/resource.h>

#include "sandbox/sandbox.h"

int wr_sb_rlimits_apply(const wr_sb_conf_t *c, wr_sb_err_t *err)
{
    char obj[64];

    for (int i = 0; i < WR_SB_RLIM_N; i++) {
        struct rlimit rl;
        if (c->rlim[i] == WR_SB_RLIM_UNSET)
            continue;
        rl.rlim_cur = rl.rlim_max = (rlim_t) c->rlim[i];
        if (setrlimit((__rlimit_resource_t) wr_sb_rlim_resource(i), &rl) < 0) {
            snprintf(obj, sizeof(obj), "%s, %lld", wr_sb_rlim_name(i), c->rlim[i]);
            return wr_sb_fail(err, "setrlimit", obj);
        }
    }
    return 0;
}
