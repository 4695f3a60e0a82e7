/*
 * warren-perl: the embedded interpreter. The prototype starts Perl once,
 * evaluates the PSGI glue (glue.pl, carried in the program) and then the
 * script, whose last value is the application ($Warren::app). Workers are
 * forked from that image; a worker with threads gets a clone of the
 * interpreter per extra thread (perl_clone, as ithreads do), each with
 * its own copy of everything the script loaded.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <EXTERN.h>
#include <perl.h>

#include "runtime/perl/wpl.h"

EXTERN_C void boot_DynaLoader(pTHX_ CV *cv);

/* The glue's source (build/gen/glue_pl.c, made from glue.pl). */
extern const char wpl_glue_pl[];

/* Perl's own argument vector: its program ("0", nothing to run but what
 * we evaluate later) is read from standard input ("-"), a pipe while
 * perl_parse reads it (parse_main): "-e" would open /dev/null, which a
 * rootfs may not have. An empty program would leave the main CV without
 * a pad, which perl_clone cannot copy. */
static char arg0[] = WPL_PROGRAM, arg1[] = "-";
static const char main_program[] = "0;\n";

static void xs_init(pTHX)
{
    /* XS modules (Digest::SHA, POSIX ...) load through DynaLoader. */
    newXS("DynaLoader::boot_DynaLoader", boot_DynaLoader, __FILE__);
    wpl_psgi_xs(aTHX);
}

void wpl_perl_init(int *argc, char ***argv, char ***env)
{
    PERL_SYS_INIT3(argc, argv, env);
}

void wpl_perl_term(void)
{
    PERL_SYS_TERM();
}

/* $@ as one log line, so the last line a failed worker leaves (what the
 * control API reports) holds the whole cause: Perl's compile errors come
 * as several lines. */
static void log_error(pTHX_ const char *what)
{
    STRLEN n;
    const char *text = SvPV(ERRSV, n);
    char *line = strndup(text, n);

    if (line == NULL) {
        wpl_log("%s: (out of memory)", what);
        return;
    }
    for (char *p = line; *p; p++)
        if (*p == '\n')
            *p = ' ';
    while (n > 0 && line[n - 1] == ' ')
        line[--n] = '\0';
    wpl_log("%s: %s", what, line);
    free(line);
}

/* What serving needs, looked up in the interpreter current in this
 * thread (the names exist once the glue is loaded). */
static int bind_interp(wpl_interp_t *pi)
{
    dTHXa(pi->perl);

    pi->serve = get_cv("Warren::_serve", 0);
    pi->base_env = get_hv("Warren::_base_env", 0);
    pi->input_stash = gv_stashpvs("Warren::Input", 0);
    if (pi->serve == NULL || pi->base_env == NULL || pi->input_stash == NULL) {
        wpl_log("the PSGI glue is incomplete in this interpreter");
        return -1;
    }
    return 0;
}

/* Warren::_load($script) in the first interpreter; 0 or -1 logged. */
static int load_script(pTHX_ const char *script)
{
    int failed;
    dSP;

    ENTER;
    SAVETMPS;
    PUSHMARK(SP);
    XPUSHs(sv_2mortal(newSVpv(script, 0)));
    PUTBACK;
    call_pv("Warren::_load", G_DISCARD | G_EVAL);
    SPAGAIN;
    failed = SvTRUE(ERRSV);
    if (failed)
        log_error(aTHX_ "script");
    PUTBACK;
    FREETMPS;
    LEAVE;
    return failed ? -1 : 0;
}

/* perl_parse with main_program on fd 0, then fd 0 as it was. */
static int parse_main(PerlInterpreter *my_perl)
{
    char *args[] = { arg0, arg1, NULL };
    int pipefd[2], saved, rc = -1;

    if (pipe2(pipefd, O_CLOEXEC) < 0) {
        wpl_log("pipe2: %s", strerror(errno));
        return -1;
    }
    /* A few bytes: the pipe's buffer takes them without a reader. */
    if (write(pipefd[1], main_program, strlen(main_program)) < 0)
        wpl_log("write(pipe): %s", strerror(errno));
    close(pipefd[1]);
    saved = fcntl(0, F_DUPFD_CLOEXEC, 3);
    if (dup2(pipefd[0], 0) < 0) {
        wpl_log("dup2(empty pipe, 0): %s", strerror(errno));
    } else {
        rc = perl_parse(my_perl, xs_init, 2, args, NULL) == 0 ? 0 : -1;
        /* Perl keeps no handle on the program it read (PL_rsfp closed). */
        if (saved >= 0 ? dup2(saved, 0) < 0 : close(0) < 0)
            wpl_log("restoring fd 0: %s", strerror(errno));
    }
    if (saved >= 0)
        close(saved);
    close(pipefd[0]);
    return rc;
}

wpl_interp_t *wpl_interp_start(const wpl_options_t *o)
{
    PerlInterpreter *my_perl = perl_alloc();
    wpl_interp_t *pi = calloc(1, sizeof(*pi));

    if (my_perl == NULL || pi == NULL) {
        wpl_log("out of memory starting Perl");
        free(pi);
        return NULL;
    }
    pi->perl = my_perl;
    PERL_SET_CONTEXT(my_perl);
    perl_construct(my_perl);
    /* END blocks run when a worker ends, as under a forking server. */
    PL_exit_flags |= PERL_EXIT_DESTRUCT_END;
    if (parse_main(my_perl) < 0 || perl_run(my_perl) != 0) {
        wpl_log("Perl did not start");
        goto fail;
    }
    eval_pv(wpl_glue_pl, FALSE);
    if (SvTRUE(ERRSV)) {
        log_error(aTHX_ "the PSGI glue did not load");
        goto fail;
    }
    if (wpl_psgi_init(aTHX_ o) < 0 || load_script(aTHX_ o->script) < 0
        || bind_interp(pi) < 0)
        goto fail;
    return pi;
fail:
    wpl_interp_free(pi);
    return NULL;
}

wpl_interp_t *wpl_interp_clone(wpl_interp_t *first)
{
    wpl_interp_t *pi = calloc(1, sizeof(*pi));

    if (pi == NULL) {
        wpl_log("out of memory cloning the interpreter");
        return NULL;
    }
    PERL_SET_CONTEXT(first->perl);
    pi->perl = perl_clone(first->perl, 0);
    if (pi->perl == NULL) {
        PERL_SET_CONTEXT(first->perl);
        wpl_log("perl_clone failed");
        free(pi);
        return NULL;
    }
    {
        /* perl_clone made the clone current. END blocks run once per
         * worker, in the first interpreter, not in every clone: a clone
         * never runs perl_run, where they would run without the flag. */
        dTHXa(pi->perl);
        PL_exit_flags &= ~PERL_EXIT_DESTRUCT_END;
    }
    PERL_SET_CONTEXT(first->perl);
    return pi;
}

int wpl_interp_enter(wpl_interp_t *pi)
{
    PERL_SET_CONTEXT(pi->perl);
    return bind_interp(pi);
}

void wpl_interp_free(wpl_interp_t *pi)
{
    if (pi == NULL)
        return;
    if (pi->perl != NULL) {
        PERL_SET_CONTEXT(pi->perl);
        perl_destruct(pi->perl);
        perl_free(pi->perl);
    }
    free(pi);
}

/* In a new worker, the variables the zygote put in the C environment
 * (its channel, its worker id) are copied into %ENV, and rand() is
 * seeded again on its first use, as Perl's own fork() arranges: else
 * every worker would draw the same numbers. */
void wpl_interp_after_fork(void)
{
    dTHX;

    PL_srand_called = FALSE;
}

void wpl_interp_env(const char *name)
{
    dTHX;
    const char *value = getenv(name);
    HV *env = get_hv("ENV", 0);

    if (value != NULL && env != NULL)
        (void) hv_store(env, name, (I32) strlen(name), newSVpv(value, 0), 0);
}
