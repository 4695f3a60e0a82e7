/*
 * daemon: warrend's main process. It keeps the privileges: binds the control
 * and listen sockets, forks and supervises the controller and the router,
 * applies configuration changes and writes the state file.
 */
#ifndef WR_DAEMON_H
#define WR_DAEMON_H

#include <sys/types.h>

typedef struct {
    int         no_daemon;
    const char *control;          /* "unix:/path", "IP:port", "[v6]:port" */
    mode_t      control_mode;
    const char *control_user;     /* owner of the unix control socket file */
    const char *control_group;
    const char *user;             /* controller and router run as this user */
    const char *group;            /* NULL: the user's primary group */
    const char *pid_file;
    const char *log_file;         /* NULL: stderr (only with --no-daemon) */
    const char *statedir;
    const char *tmpdir;
    const char *modulesdir;       /* accepted for Unit compatibility */
} wr_options_t;

/* Parse argv. Returns 0 to run, 1 when done (--help, --version: exit 0),
 * -1 on a bad option (message already on stderr: exit non-zero). */
int wr_options_parse(wr_options_t *o, int argc, char **argv);

/* Run the main process until it stops; returns the exit status. */
int wr_daemon_run(const wr_options_t *o);

#endif
