/*
 * The runtime side of the zygote protocol (src/app/zygote.h), shared by the
 * language runtimes: the program loads its language (and the application)
 * once, then forks every worker from that image on the prototype's demand.
 * What differs between languages are the hooks below.
 */
#ifndef WR_RUNTIME_ZYGOTE_H
#define WR_RUNTIME_ZYGOTE_H

typedef struct {
    const char *zygote_comm;    /* process names, for ps and the tests */
    const char *worker_comm;
    /* Around the blocking wait for the prototype (Python: release the
     * GIL, so the application's own threads run meanwhile). */
    void *(*wait_begin)(void);
    void  (*wait_end)(void *state);
    /* Around fork() (Python: PyOS_BeforeFork and friends). */
    void  (*before_fork)(void);
    void  (*after_fork_parent)(void);
    void  (*after_fork_child)(void);
    /* In the worker, once set up (channel and worker id in the process
     * environment): anything the language copied of the environment. */
    void  (*worker_env)(const char *worker_id);
    void  (*log)(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
} wr_zygote_hooks_t;

/* Exit status of a worker whose prototype went away before it was adopted. */
#define WR_ZYGOTE_EXIT_ORPHAN 69

/*
 * The fd of the zygote socket from the environment (WR_ZYGOTE_ENV_FD), made
 * close-on-exec: -1 when the program is a plain worker, -2 for a value
 * that is not a descriptor number.
 */
int wr_zygote_fd(void);

/*
 * Serves the prototype on fd: says READY, then forks a worker for each
 * SPAWN. Returns 1 in a forked worker (its channel in WARREN_CHANNEL_FD,
 * its stderr in place: go on as a worker), 0 in the zygote when the
 * prototype closed the socket, -1 on an error of the socket.
 */
int wr_zygote_run(int fd, const wr_zygote_hooks_t *h);

#endif
