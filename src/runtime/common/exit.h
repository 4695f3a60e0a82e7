/*
 * How a language runtime's process ends (sysexits.h values, so main's log
 * of a worker or prototype that ended says what kind of failure it was).
 * Every runtime (Python, PHP, Perl, Ruby) uses these.
 */
#ifndef WR_RUNTIME_EXIT_H
#define WR_RUNTIME_EXIT_H

enum {
    WR_RT_EXIT_OK        = 0,
    WR_RT_EXIT_CHANNEL   = 1,     /* the channel failed while serving */
    WR_RT_EXIT_NO_ROUTER = 69,    /* EX_UNAVAILABLE: warren_init failed */
    WR_RT_EXIT_APP       = 70,    /* EX_SOFTWARE: the application failed to load */
    WR_RT_EXIT_LANG      = 71,    /* EX_OSERR: the language (or its script) did not start */
    WR_RT_EXIT_CONFIG    = 78,    /* EX_CONFIG: a bad WARREN_* value */
};

#endif
