/*
 * A worker's (or zygote's) stderr relayed into the error log by its
 * prototype. The application's bytes never reach the log raw: each line
 * becomes a log entry of its own, "[notice] ... app "NAME" worker N
 * (pid P) stderr: TEXT", with control bytes (CR, ESC, ...) written as
 * \xHH, and a line too long for one entry split over several, the later
 * ones marked "stderr (continued)". So an application can neither forge
 * a daemon line nor garble the terminal of whoever reads the log.
 * The last line (escaped) is kept to explain an early exit.
 * (An app whose "stderr" is a file of its own gets its raw bytes there.)
 */
#ifndef WR_APP_RELAY_H
#define WR_APP_RELAY_H

#include <stdint.h>
#include <sys/types.h>

#include "core/ev.h"

#define WR_RELAY_LAST_WORDS  480     /* bytes of the last line kept (a Java
                                        exception line is often 300) */
#define WR_RELAY_ENTRY_MAX   1024    /* escaped bytes of one log entry */

typedef struct {
    wr_ev_t     ev;
    const char *app;                 /* the spec's name: outlives the relay */
    uint32_t    worker;              /* 0: the zygote */
    pid_t       pid;                 /* set once forked */
    char        out[WR_RELAY_ENTRY_MAX + 1];  /* escaped text being collected */
    size_t      len;
    int         cont;                /* out continues a line already logged */
    char        done[WR_RELAY_LAST_WORDS];    /* the last line, escaped */
} wr_relay_t;

/* A pipe whose write end (errp[1]) becomes the process's stderr; its read
 * end is watched on loop. NULL (logged) when it cannot be made. */
wr_relay_t *wr_relay_new(wr_ev_loop_t *loop, const char *app, uint32_t worker,
                         int errp[2]);
/* Log what is there to read; 0 at EOF (or on a read error), 1 otherwise. */
int         wr_relay_drain(wr_relay_t *rl);
/* The process is dead: log all it wrote, the unfinished line included. */
void        wr_relay_flush(wr_relay_t *rl);
/* Flush, stop watching, free (after the current epoll batch). */
void        wr_relay_free(wr_ev_loop_t *loop, wr_relay_t *rl);

#endif
