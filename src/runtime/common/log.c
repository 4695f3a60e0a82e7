/*
 * The runtimes' log lines (log.h). The names are the process's own state,
 * set once at start; the pid is taken each time, since workers are forked
 * from one image.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "runtime/common/log.h"

enum { NAME_MAX_SHOWN = 64 };

static struct {
    char program[NAME_MAX_SHOWN + 1];
    char app[NAME_MAX_SHOWN + 1];
} names = { "warren", "?" };

void wr_rt_log_init(const char *program, const char *app)
{
    snprintf(names.program, sizeof(names.program), "%s", program);
    if (app != NULL && app[0] != '\0')
        snprintf(names.app, sizeof(names.app), "%s", app);
}

static void log_line(const char *p, size_t n)
{
    fprintf(stderr, "%s[%s:%d]: %.*s\n", names.program, names.app, (int) getpid(),
            (int) n, p);
}

void wr_rt_log(const char *fmt, ...)
{
    char line[WR_RT_LINE_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    log_line(line, strlen(line));
}

void wr_rt_log_text(const char *text, size_t len)
{
    while (len > 0) {
        const char *nl = memchr(text, '\n', len);
        size_t n = nl != NULL ? (size_t) (nl - text) : len;

        log_line(text, n);
        if (nl == NULL)
            break;
        text += n + 1;
        len -= n + 1;
    }
}
