/*
 * warren-perl: the Perl runtime, a worker program on libwarren that embeds
 * Debian's libperl and serves one PSGI application. Internal header: what
 * the runtime's files share.
 *
 *   main.c     options, the zygote, the worker's serving threads
 *   interp.c   the interpreter: start, the PSGI glue, the script, clones
 *   psgi.c     one request: the env hash in, the response out (the XS
 *              functions the glue calls)
 *
 * Each serving thread has an interpreter of its own (Perl's ithreads
 * model): the first is the one the prototype loaded the script into, the
 * others are clones of it made in the worker after fork.
 */
#ifndef WR_RUNTIME_PERL_WPL_H
#define WR_RUNTIME_PERL_WPL_H

#include <stddef.h>

#include "runtime/common/exit.h"
#include "runtime/common/log.h"
#include "warren.h"

#define WPL_PROGRAM "warren-perl"

/* WARREN_PERL_* (main.c). */
typedef struct {
    const char *script;         /* the PSGI file */
    unsigned    threads;        /* serving threads per worker, 1.. */
    size_t      stack_size;     /* their stack size; 0: the default */
} wpl_options_t;

/* One interpreter and what serving from it needs (interp.c). Opaque. */
typedef struct wpl_interp wpl_interp_t;

/* Once per process, before any interpreter (PERL_SYS_INIT3), and once
 * after the last is freed. */
void wpl_perl_init(int *argc, char ***argv, char ***env);
void wpl_perl_term(void);

/* Starts Perl and loads the glue and the script into the first
 * interpreter; the script's value is the application. NULL after logging
 * why (the log line is the cause the control API reports). */
wpl_interp_t *wpl_interp_start(const wpl_options_t *o);
/* A copy of first for another thread (perl_clone), made by the thread
 * that owns first; the thread that serves from it calls
 * wpl_interp_enter() first (0, or -1 logged). */
wpl_interp_t *wpl_interp_clone(wpl_interp_t *first);
int           wpl_interp_enter(wpl_interp_t *pi);
/* Frees an interpreter (END blocks run). NULL is allowed. */
void          wpl_interp_free(wpl_interp_t *pi);
/* In a new worker, on the interpreter current in the thread: rand()
 * seeded afresh; %ENV's name copied from the C environment. */
void          wpl_interp_after_fork(void);
void          wpl_interp_env(const char *name);

/* Serves req from pi and ends it (psgi.c). */
void wpl_serve_one(wpl_interp_t *pi, warren_req_t *req);

#ifdef PERL_REVISION     /* for the files that include perl.h */
struct wpl_interp {
    PerlInterpreter *perl;
    CV *serve;          /* Warren::_serve (glue.pl) */
    HV *base_env;       /* %Warren::_base_env: every env's constant keys */
    HV *input_stash;    /* Warren::Input: request handles are blessed in */
};

/* psgi.c: the XS functions of the Warren::* packages (called from the
 * interpreter's xs_init), and %Warren::_base_env. */
void wpl_psgi_xs(pTHX);
int  wpl_psgi_init(pTHX_ const wpl_options_t *o);
#endif

#define wpl_log      wr_rt_log
#define wpl_log_text wr_rt_log_text

#endif
