/*
 * Error log. One line per call, written with a single write(2) so the lines
 * of several processes sharing the file never interleave:
 *   2026/11/29 09:30:00 [info] 1234#1234 message
 */
#ifndef WR_LOG_H
#define WR_LOG_H

enum {
    WR_LOG_EMERG = 0,
    WR_LOG_ALERT,
    WR_LOG_CRIT,
    WR_LOG_ERR,
    WR_LOG_WARN,
    WR_LOG_NOTICE,
    WR_LOG_INFO,
    WR_LOG_DEBUG
};

#define WR_LOG_LINE_MAX  2048   /* longer messages are cut */

void wr_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A failed syscall: "call(object) failed: <errno text>", errno preserved. */
void wr_log_sys(int level, const char *call, const char *object);

/* Open (append, create 0644) the log file; returns the fd or -1 (errno set). */
int  wr_log_open(const char *path);

#endif
