#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

#include "core/log.h"
#include "core/process.h"

static const char *const level_names[] = {
    "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug"
};

static void log_write(int level, const char *fmt, va_list ap)
{
    char line[WR_LOG_LINE_MAX];
    struct timespec ts;
    struct tm tm;
    size_t n;
    int r;

    if (level > wr_proc.log_level)
        return;

    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    n = strftime(line, sizeof(line), "%Y/%m/%d %H:%M:%S ", &tm);
    r = snprintf(line + n, sizeof(line) - n, "[%s] %d#%ld ", level_names[level],
                 (int) getpid(), (long) syscall(SYS_gettid));
    if (r > 0)
        n += (size_t) r;
    r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
    if (r > 0)
        n += (size_t) r;
    if (n > sizeof(line) - 1)
        n = sizeof(line) - 1;      /* truncated: keep room for the newline */
    line[n++] = '\n';

    /* Nowhere to report a failed log write; the line is lost. */
    if (write(wr_proc.log_fd, line, n) < 0)
        return;
    if (wr_proc.log_echo && wr_proc.log_fd != STDERR_FILENO
        && write(STDERR_FILENO, line, n) < 0)
        return;
}

void wr_log(int level, const char *fmt, ...)
{
    va_list ap;
    int saved = errno;

    va_start(ap, fmt);
    log_write(level, fmt, ap);
    va_end(ap);
    errno = saved;
}

void wr_log_sys(int level, const char *call, const char *object)
{
    int saved = errno;

    wr_log(level, "%s(%s) failed: %s", call, object ? object : "", strerror(saved));
    errno = saved;
}

int wr_log_open(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}
