/*
 * The access log. A format is compiled per configuration; one writer per
 * router process owns the file and a thread that writes, so a slow disk
 * never stalls an event loop: lines are queued in a bounded buffer and
 * dropped (and counted) when it is full. main opens the file (the router is
 * unprivileged) and passes the fd; on SIGUSR1 it passes a reopened one.
 */
#ifndef WR_ACCESS_LOG_H
#define WR_ACCESS_LOG_H

#include <stddef.h>
#include <jansson.h>

#include "core/buf.h"
#include "route/route.h"

#define WR_ALOG_QUEUE_BYTES  (1024 * 1024)   /* lines waiting for the writer */

/* Unit's default format. */
#define WR_ALOG_DEFAULT_FORMAT \
    "$remote_addr - - [$time_local] \"$request_line\" $status $body_bytes_sent " \
    "\"$header_referer\" \"$header_user_agent\""

typedef struct wr_alog_format wr_alog_format_t;
typedef struct wr_alog_writer wr_alog_writer_t;

/* The path of an access_log value (string, or object with "path"); NULL if none. */
const char *wr_alog_path(json_t *access_log);

/* access_log: string or {path, format (string or object), if}. NULL access_log
 * gives NULL without error. */
wr_alog_format_t *wr_alog_format_compile(json_t *access_log, char *err, size_t errlen);
void              wr_alog_format_free(wr_alog_format_t *f);
/* Append one line (with '\n') to out: 0 appended, 1 skipped by "if", -1 no memory.
 * A JSON-object format yields one JSON object per line. */
int               wr_alog_format_line(const wr_alog_format_t *f, const wr_req_view_t *r,
                                      wr_buf_t *out, wr_buf_t *scratch);

wr_alog_writer_t *wr_alog_writer_start(size_t queue_bytes);
/* Use fd from now on (-1: logging off); the previous fd is closed once the
 * lines queued before are written. Takes ownership of fd. */
void              wr_alog_writer_set_fd(wr_alog_writer_t *w, int fd);
/* Never blocks; thread-safe. 0 queued, -1 dropped (queue full or no fd). */
int               wr_alog_writer_push(wr_alog_writer_t *w, const char *line, size_t n);
unsigned long long wr_alog_writer_dropped(const wr_alog_writer_t *w);
/* Write what is queued, stop the thread, close the fd. */
void              wr_alog_writer_stop(wr_alog_writer_t *w);

#endif
