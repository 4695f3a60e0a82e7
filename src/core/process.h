/*
 * The per-process context: the one place a process keeps state that every
 * function of it may need (its role, its log). Each process of warrend
 * (main, controller, router) fills it at start; nothing else is global.
 */
#ifndef WR_PROCESS_H
#define WR_PROCESS_H

#include <sys/types.h>

#include "core/ev.h"

typedef enum {
    WR_ROLE_MAIN = 0,
    WR_ROLE_CONTROLLER,
    WR_ROLE_ROUTER,
    WR_ROLE_COUNT
} wr_role_t;

typedef struct {
    wr_role_t  role;
    pid_t      pid;
    int        log_fd;        /* error log; 2 when logging to stderr */
    int        log_level;     /* lines above this level are dropped */
    int        log_echo;      /* also copy lines to stderr (start-up, before detaching) */
    char      *title_area;    /* argv memory we may overwrite for ps titles */
    size_t     title_size;
} wr_process_t;

extern wr_process_t wr_proc;

const char *wr_role_name(wr_role_t role);

/* Process titles: call init once with main's argv before anything reads
 * environ; set then rewrites what ps shows ("warren: router"). */
void wr_title_init(int argc, char **argv);
void wr_title_set(const char *title);

/* Close every fd >= 3 except those listed (order irrelevant). */
int  wr_close_fds_except(const int *keep, int n);

/* Become uid/gid with only gid as group, set no_new_privs, and become
 * undumpable (no ptrace, no /proc/PID/mem for other processes of uid).
 * Logs and returns -1 on any failure; the caller must then exit. */
int  wr_drop_privileges(uid_t uid, gid_t gid);

/* A child's stop signals (TERM, INT, QUIT) arrive on a signalfd in ev,
 * added to loop with cb; HUP and USR1 are main's business: ignored here.
 * Call before starting any thread so all of them inherit the mask. */
int  wr_child_signals(wr_ev_loop_t *loop, wr_ev_t *ev, wr_ev_cb cb, void *data);

/* Die with the parent: SIGKILL on its death, and exit now if it is gone. */
int  wr_watch_parent(pid_t parent);

#endif
