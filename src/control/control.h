/*
 * control: the controller process. Serves the control API (Unit's shape) on
 * the socket main bound, keeps a copy of the running config, validates every
 * change and asks main to apply it; changes are applied one at a time.
 */
#ifndef WR_CONTROL_H
#define WR_CONTROL_H

#include <sys/types.h>

#define WR_CONTROL_MAX_PEERS  3

typedef struct {
    int    chan_fd;                 /* channel to main */
    pid_t  parent;
    uid_t  uid;                     /* drop to */
    gid_t  gid;
    /* Who may talk to a unix control socket (SO_PEERCRED): uid 0, warrend's
     * uid and --control-user; members of --control-group by gid. */
    uid_t  peer_uid[WR_CONTROL_MAX_PEERS];
    int    npeer_uid;
    gid_t  peer_gid;
    int    peer_gid_set;
    const char *runtimes;           /* --modulesdir: for /status "modules" */
} wr_controller_args_t;

__attribute__((noreturn)) void wr_controller_main(const wr_controller_args_t *a);

#endif
