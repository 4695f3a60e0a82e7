#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/daemon.h"
#include "tls/tls.h"

/* Defaults mirror Unit's layout under the install prefix. */
#define DEF_DIR_RUN    WR_PREFIX "/var/run/warren"
#define DEF_CONTROL    "unix:" DEF_DIR_RUN "/control.warren.sock"
#define DEF_PID        DEF_DIR_RUN "/warren.pid"
#define DEF_LOG        WR_PREFIX "/var/log/warren/warren.log"
#define DEF_STATE      WR_PREFIX "/var/lib/warren"
#define DEF_TMP        "/tmp"
#define DEF_USER       "nobody"
#define DEF_MODE       0600

#define WR_BUILD_FEATURES "jansson, seqpacket-ipc, signalfd supervision"

static const char usage[] =
"Usage: warrend [options]\n"
"\n"
"  --no-daemon               run in the foreground\n"
"  --control ADDR            control API socket: unix:/path, IP:port, [v6]:port\n"
"                            (default " DEF_CONTROL ")\n"
"  --control-mode MODE       permissions of the unix control socket (default 0600)\n"
"  --control-user USER       owner of the unix control socket\n"
"  --control-group GROUP     group of the unix control socket\n"
"  --user USER               unprivileged user of the router and controller (default nobody)\n"
"  --group GROUP             their group (default: the user's primary group)\n"
"  --pid FILE                pid file (default " DEF_PID ")\n"
"  --log FILE                error log (default " DEF_LOG ";\n"
"                            stderr with --no-daemon unless given)\n"
"  --statedir DIR, --state DIR  state directory (default " DEF_STATE ")\n"
"  --tmpdir DIR              temporary files (default " DEF_TMP ")\n"
"  --modulesdir DIR, --modules DIR  where language runtimes are (warren-python)\n"
"                            (default: the directory warrend is in)\n"
"  --version                 print the version and build features\n"
"  -h, --help                this help\n";

enum { OPT_FLAG, OPT_VALUE };

typedef struct {
    const char *name;
    int         kind;
    size_t      field;        /* offsetof into wr_options_t */
} opt_def_t;

#define F(x) offsetof(wr_options_t, x)

static const opt_def_t opts[] = {
    { "--no-daemon",     OPT_FLAG,  F(no_daemon) },
    { "--control",       OPT_VALUE, F(control) },
    { "--control-user",  OPT_VALUE, F(control_user) },
    { "--control-group", OPT_VALUE, F(control_group) },
    { "--user",          OPT_VALUE, F(user) },
    { "--group",         OPT_VALUE, F(group) },
    { "--pid",           OPT_VALUE, F(pid_file) },
    { "--log",           OPT_VALUE, F(log_file) },
    { "--statedir",      OPT_VALUE, F(statedir) },
    { "--state",         OPT_VALUE, F(statedir) },
    { "--tmpdir",        OPT_VALUE, F(tmpdir) },
    { "--modulesdir",    OPT_VALUE, F(modulesdir) },
    { "--modules",       OPT_VALUE, F(modulesdir) },
};

static int parse_mode(const char *s, mode_t *mode)
{
    char *end;
    unsigned long v = strtoul(s, &end, 8);

    if (*s == '\0' || *end != '\0' || v > 07777)
        return -1;
    *mode = (mode_t) v;
    return 0;
}

static int set_option(wr_options_t *o, const char *arg, const char *value)
{
    if (strcmp(arg, "--control-mode") == 0) {
        if (value == NULL || parse_mode(value, &o->control_mode) < 0) {
            fprintf(stderr, "warrend: --control-mode needs an octal mode, e.g. 0660\n");
            return -1;
        }
        return 2;
    }
    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
        if (strcmp(arg, opts[i].name) != 0)
            continue;
        if (opts[i].kind == OPT_FLAG) {
            *(int *) ((char *) o + opts[i].field) = 1;
            return 1;
        }
        if (value == NULL || value[0] == '\0') {
            fprintf(stderr, "warrend: option \"%s\" requires a value\n", arg);
            return -1;
        }
        *(const char **) ((char *) o + opts[i].field) = value;
        return 2;
    }
    fprintf(stderr, "warrend: unknown option \"%s\"; try \"warrend --help\"\n", arg);
    return -1;
}

int wr_options_parse(wr_options_t *o, int argc, char **argv)
{
    int log_given = 0;

    memset(o, 0, sizeof(*o));
    o->control = DEF_CONTROL;
    o->control_mode = DEF_MODE;
    o->user = DEF_USER;
    o->pid_file = DEF_PID;
    o->statedir = DEF_STATE;
    o->tmpdir = DEF_TMP;
    o->modulesdir = NULL;               /* warrend's own directory */

    for (int i = 1; i < argc; ) {
        const char *arg = argv[i];
        int used;

        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            fputs(usage, stdout);
            return 1;
        }
        if (strcmp(arg, "--version") == 0) {
            printf("warren version: %s\nbuild features: %s, TLS (%s)\n", WR_VERSION,
                   WR_BUILD_FEATURES, wr_tls_library());
            return 1;
        }
        if (strcmp(arg, "--log") == 0)
            log_given = 1;
        used = set_option(o, arg, i + 1 < argc ? argv[i + 1] : NULL);
        if (used < 0)
            return -1;
        i += used;
    }
    if (!log_given && !o->no_daemon)
        o->log_file = DEF_LOG;
    if (o->log_file && strcmp(o->log_file, "-") == 0)
        o->log_file = NULL;
    if (o->log_file == NULL && !o->no_daemon) {
        fprintf(stderr, "warrend: --log - (stderr) needs --no-daemon\n");
        return -1;
    }
    return 0;
}
