/*
 * Logging of the language runtimes: every line goes to stderr (the router
 * collects it into the error log) starting with "PROGRAM[app:pid]: ", so
 * lines of many workers of many applications stay readable side by side.
 * Each line is one fprintf on stderr (unbuffered): one write(2), not torn
 * by other workers.
 */
#ifndef WR_RUNTIME_LOG_H
#define WR_RUNTIME_LOG_H

#include <stddef.h>

enum { WR_RT_LINE_MAX = 2048 };   /* one formatted line; longer ones are cut */

/* Names the lines: program ("warren-php") and the application (NULL or
 * "": "?"). Both are copied. */
void wr_rt_log_init(const char *program, const char *app);
void wr_rt_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* text as lines, one per "\n"-separated piece. */
void wr_rt_log_text(const char *text, size_t len);

#endif
