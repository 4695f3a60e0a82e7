/*
 * The access log: format compilation, line formatting, and the writer thread.
 *
 * Formats. A string format is one template; its expansion has control bytes
 * escaped as \xHH so that a request (a decoded %0A in $uri) can never split a
 * line. A JSON-object format {"key": "template", ...} yields one JSON object
 * per line; every value is a JSON string, escaped, with bytes that are not
 * valid UTF-8 written as \u00HH so the line is always valid JSON.
 *
 * The writer. Event loops push whole lines into a byte ring under a mutex
 * held only for the memcpy; one thread writes the ring out with writev (both
 * halves of a wrapped ring in one call, so a line reaches the file in one
 * write). A full ring drops the line and counts it: a slow disk never stalls
 * a request. set_fd() records a switch point at the ring's current end; the
 * writer writes everything before it to the old fd, then closes it.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/uio.h>

#include "core/log.h"
#include "router/access_log.h"

#define WR_ALOG_MAX_SWITCHES  16    /* fd swaps waiting for their lines */
#define WR_ALOG_OBJECT        "access log"

/* ================================================================ formats */

typedef struct {
    char     *key;        /* "\"name\":" already escaped */
    size_t    key_len;
    wr_tpl_t *tpl;
} wr_alog_field_t;

struct wr_alog_format {
    wr_tpl_t        *line;      /* string format, or NULL for JSON */
    wr_alog_field_t *fields;    /* JSON object format */
    size_t           nfields;
    wr_if_t         *cond;      /* "if", or NULL */
};

typedef enum {
    ESC_LINE,                   /* control bytes as \xHH */
    ESC_JSON                    /* JSON string body */
} esc_mode_t;

/* Length of the valid UTF-8 sequence at s (RFC 3629), 0 when invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xbf;
    size_t len;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4;
    else
        return 0;
    if (c == 0xe0)
        lo = 0xa0;              /* overlong */
    else if (c == 0xed)
        hi = 0x9f;              /* surrogates */
    else if (c == 0xf0)
        lo = 0x90;              /* overlong */
    else if (c == 0xf4)
        hi = 0x8f;              /* above U+10FFFF */
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++) {
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    }
    return len;
}

/* Bytes of s[0..n) that escaping would change: 0 means copy as is. */
static int needs_escape(const unsigned char *s, size_t n, esc_mode_t mode)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c < 0x20 || (mode == ESC_LINE && c == 0x7f))
            return 1;
        if (mode == ESC_JSON && (c == '"' || c == '\\'))
            return 1;
        if (mode == ESC_JSON && c >= 0x80) {
            size_t k = utf8_len(s + i, n - i);
            if (k == 0)
                return 1;
            i += k - 1;
        }
    }
    return 0;
}

static int escape_append(wr_buf_t *out, const unsigned char *s, size_t n, esc_mode_t mode)
{
    static const char hex[] = "0123456789abcdef";
    char e[8];

    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        size_t k = 1, elen = 0;

        if (mode == ESC_LINE) {
            if (c < 0x20 || c == 0x7f)
                elen = (size_t) snprintf(e, sizeof(e), "\\x%c%c", hex[c >> 4], hex[c & 15]);
        } else if (c == '"' || c == '\\') {
            elen = (size_t) snprintf(e, sizeof(e), "\\%c", c);
        } else if (c == '\n' || c == '\r' || c == '\t') {
            elen = (size_t) snprintf(e, sizeof(e), "\\%c", c == '\n' ? 'n' : c == '\r' ? 'r' : 't');
        } else if (c < 0x20 || (c >= 0x80 && (k = utf8_len(s + i, n - i)) == 0)) {
            k = 1;
            elen = (size_t) snprintf(e, sizeof(e), "\\u00%c%c", hex[c >> 4], hex[c & 15]);
        }
        if (elen ? wr_buf_append(out, e, elen) < 0 : wr_buf_append(out, s + i, k) < 0)
            return -1;
        i += k - 1;
    }
    return 0;
}

/*
 * Expand t at the end of out, escaped. The expansion goes straight into out;
 * only a value that needs escaping is copied aside and rewritten.
 */
static int eval_escaped(const wr_tpl_t *t, const wr_req_view_t *r, wr_buf_t *out,
                        esc_mode_t mode)
{
    size_t from = out->n, n;
    unsigned char *copy;
    int rc;

    if (wr_tpl_eval(t, r, out) < 0)
        return -1;
    n = out->n - from;
    if (!needs_escape((unsigned char *) out->p + from, n, mode))
        return 0;
    copy = malloc(n);
    if (copy == NULL)
        return -1;
    memcpy(copy, out->p + from, n);
    out->n = from;
    rc = escape_append(out, copy, n, mode);
    free(copy);
    return rc;
}

const char *wr_alog_path(json_t *access_log)
{
    if (json_is_string(access_log))
        return json_string_value(access_log);
    return json_string_value(json_object_get(access_log, "path"));
}

void wr_alog_format_free(wr_alog_format_t *f)
{
    if (f == NULL)
        return;
    wr_tpl_free(f->line);
    for (size_t i = 0; i < f->nfields; i++) {
        free(f->fields[i].key);
        wr_tpl_free(f->fields[i].tpl);
    }
    free(f->fields);
    wr_if_free(f->cond);
    free(f);
}

/* Prefix a compile error with where it is. */
static void where(char *err, size_t errlen, const char *what)
{
    char why[256];

    snprintf(why, sizeof(why), "%s", err);
    snprintf(err, errlen, "access_log %s: %s", what, why);
}

static int compile_fields(wr_alog_format_t *f, json_t *obj, char *err, size_t errlen)
{
    const char *name;
    json_t *v;
    wr_buf_t key = { 0 };

    f->fields = calloc(json_object_size(obj) + 1, sizeof(*f->fields));
    if (f->fields == NULL)
        goto nomem;
    json_object_foreach(obj, name, v) {
        wr_alog_field_t *fl = &f->fields[f->nfields];

        if (!json_is_string(v)) {
            snprintf(err, errlen, "access_log format \"%s\" must be a string.", name);
            return -1;
        }
        wr_buf_reset(&key);
        if (wr_buf_puts(&key, "\"") < 0
            || escape_append(&key, (const unsigned char *) name, strlen(name), ESC_JSON) < 0
            || wr_buf_append(&key, "\":", 3) < 0)
            goto nomem;
        fl->tpl = wr_tpl_compile(json_string_value(v), err, errlen);
        if (fl->tpl == NULL) {
            where(err, errlen, "format");
            wr_buf_free(&key);
            return -1;
        }
        fl->key = key.p;            /* NUL-terminated by the 3-byte append */
        fl->key_len = key.n - 1;
        key = (wr_buf_t) { 0 };
        f->nfields++;
    }
    return 0;
nomem:
    wr_buf_free(&key);
    snprintf(err, errlen, "Out of memory.");
    return -1;
}

wr_alog_format_t *wr_alog_format_compile(json_t *access_log, char *err, size_t errlen)
{
    json_t *fmt = NULL, *cond = NULL;
    wr_alog_format_t *f;

    if (errlen)
        err[0] = '\0';
    if (access_log == NULL)
        return NULL;
    if (json_is_object(access_log)) {
        fmt = json_object_get(access_log, "format");
        cond = json_object_get(access_log, "if");
    } else if (!json_is_string(access_log)) {
        snprintf(err, errlen, "access_log must be a string or an object.");
        return NULL;
    }
    f = calloc(1, sizeof(*f));
    if (f == NULL) {
        snprintf(err, errlen, "Out of memory.");
        return NULL;
    }
    if (fmt == NULL || json_is_string(fmt)) {
        f->line = wr_tpl_compile(fmt ? json_string_value(fmt) : WR_ALOG_DEFAULT_FORMAT,
                                 err, errlen);
        if (f->line == NULL) {
            where(err, errlen, "format");
            goto fail;
        }
    } else if (json_is_object(fmt)) {
        if (compile_fields(f, fmt, err, errlen) < 0)
            goto fail;
    } else {
        snprintf(err, errlen, "access_log format must be a string or an object.");
        goto fail;
    }
    if (cond != NULL) {
        f->cond = json_is_string(cond) ? wr_if_compile(json_string_value(cond), err, errlen)
                                       : NULL;
        if (f->cond == NULL) {
            if (!json_is_string(cond))
                snprintf(err, errlen, "must be a string.");
            where(err, errlen, "\"if\"");
            goto fail;
        }
    }
    return f;
fail:
    wr_alog_format_free(f);
    return NULL;
}

static int format_json(const wr_alog_format_t *f, const wr_req_view_t *r, wr_buf_t *out)
{
    if (wr_buf_append(out, "{", 1) < 0)
        return -1;
    for (size_t i = 0; i < f->nfields; i++) {
        const wr_alog_field_t *fl = &f->fields[i];
        if ((i > 0 && wr_buf_append(out, ",", 1) < 0)
            || wr_buf_append(out, fl->key, fl->key_len) < 0
            || wr_buf_append(out, "\"", 1) < 0
            || eval_escaped(fl->tpl, r, out, ESC_JSON) < 0
            || wr_buf_append(out, "\"", 1) < 0)
            return -1;
    }
    return wr_buf_append(out, "}", 1);
}

int wr_alog_format_line(const wr_alog_format_t *f, const wr_req_view_t *r,
                        wr_buf_t *out, wr_buf_t *scratch)
{
    size_t start = out->n;
    int rc;

    if (f->cond != NULL) {
        rc = wr_if_true(f->cond, r, scratch);
        if (rc < 0)
            return -1;
        if (rc == 0)
            return 1;
    }
    rc = f->line != NULL ? eval_escaped(f->line, r, out, ESC_LINE) : format_json(f, r, out);
    if (rc < 0 || wr_buf_append(out, "\n", 1) < 0) {
        out->n = start;
        return -1;
    }
    return 0;
}

/* ================================================================= writer */

typedef struct {
    unsigned long long at;      /* ring position (bytes ever queued) of the swap */
    int                fd;
} wr_alog_switch_t;

struct wr_alog_writer {
    pthread_mutex_t    lock;
    pthread_cond_t     wake;    /* writer: bytes, a swap, or stop */
    pthread_cond_t     room;    /* set_fd: a swap slot is free */
    pthread_t          thread;
    char              *ring;
    size_t             cap;
    unsigned long long head;    /* bytes ever queued */
    unsigned long long tail;    /* bytes ever written (or discarded) */
    int                fd;      /* the writer's fd, -1 for none */
    int                last_fd; /* the fd of the last set_fd: push refuses < 0 */
    wr_alog_switch_t   sw[WR_ALOG_MAX_SWITCHES];
    size_t             nsw;
    int                stopping;
    _Atomic unsigned long long dropped;
};

static int wait_writable(int fd)
{
    struct pollfd p = { .fd = fd, .events = POLLOUT };

    while (poll(&p, 1, -1) < 0) {
        if (errno != EINTR) {
            wr_log_sys(WR_LOG_ERR, "poll", WR_ALOG_OBJECT);
            return -1;
        }
    }
    return 0;
}

/* Write both iovecs entirely; on an error the rest is discarded (logged). */
static void write_all(int fd, struct iovec *iov, int iovcnt)
{
    while (iovcnt > 0) {
        ssize_t w = writev(fd, iov, iovcnt);

        if (w < 0) {
            if (errno == EINTR)
                continue;
            if ((errno == EAGAIN || errno == EWOULDBLOCK) && wait_writable(fd) == 0)
                continue;
            wr_log_sys(WR_LOG_ERR, "writev", WR_ALOG_OBJECT);
            return;
        }
        while (iovcnt > 0 && (size_t) w >= iov->iov_len) {
            w -= (ssize_t) iov->iov_len;
            iov++;
            iovcnt--;
        }
        if (iovcnt > 0) {
            iov->iov_base = (char *) iov->iov_base + w;
            iov->iov_len -= (size_t) w;
        }
    }
}

static void close_fd(int fd)
{
    if (fd >= 0 && close(fd) < 0)
        wr_log_sys(WR_LOG_ERR, "close", WR_ALOG_OBJECT);
}

/* With the lock held: write [tail, limit) unlocked, then advance tail. */
static void write_span(wr_alog_writer_t *w, unsigned long long limit)
{
    size_t n = (size_t) (limit - w->tail), off = (size_t) (w->tail % w->cap);
    size_t first = n < w->cap - off ? n : w->cap - off;
    struct iovec iov[2] = {
        { .iov_base = w->ring + off, .iov_len = first },
        { .iov_base = w->ring, .iov_len = n - first },
    };
    int fd = w->fd;

    /* Pushers only write outside [tail, head): this span is ours to read. */
    pthread_mutex_unlock(&w->lock);
    if (fd >= 0)
        write_all(fd, iov, n > first ? 2 : 1);
    pthread_mutex_lock(&w->lock);
    w->tail = limit;
}

/* With the lock held: take the first pending swap, close the old fd unlocked. */
static void take_switch(wr_alog_writer_t *w)
{
    int old = w->fd;

    w->fd = w->sw[0].fd;
    w->nsw--;
    memmove(&w->sw[0], &w->sw[1], w->nsw * sizeof(w->sw[0]));
    pthread_cond_broadcast(&w->room);
    pthread_mutex_unlock(&w->lock);
    if (old != w->fd)           /* set_fd(the same fd) must not close it */
        close_fd(old);
    pthread_mutex_lock(&w->lock);
}

static void *writer_main(void *arg)
{
    wr_alog_writer_t *w = arg;

    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (w->tail == w->head && w->nsw == 0 && !w->stopping)
            pthread_cond_wait(&w->wake, &w->lock);
        if (w->nsw > 0 && w->sw[0].at == w->tail)
            take_switch(w);
        else if (w->tail != w->head)
            write_span(w, w->nsw > 0 ? w->sw[0].at : w->head);
        else if (w->stopping)
            break;
    }
    pthread_mutex_unlock(&w->lock);
    close_fd(w->fd);
    w->fd = -1;
    return NULL;
}

wr_alog_writer_t *wr_alog_writer_start(size_t queue_bytes)
{
    wr_alog_writer_t *w = calloc(1, sizeof(*w));
    sigset_t all, old;
    int rc;

    if (w == NULL)
        return NULL;
    w->cap = queue_bytes ? queue_bytes : WR_ALOG_QUEUE_BYTES;
    w->ring = malloc(w->cap);
    if (w->ring == NULL) {
        free(w);
        return NULL;
    }
    w->fd = w->last_fd = -1;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->wake, NULL);
    pthread_cond_init(&w->room, NULL);

    /* Signals belong to the event loops: the writer inherits a full mask. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&w->thread, NULL, writer_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        errno = rc;
        wr_log_sys(WR_LOG_ALERT, "pthread_create", WR_ALOG_OBJECT);
        pthread_cond_destroy(&w->room);
        pthread_cond_destroy(&w->wake);
        pthread_mutex_destroy(&w->lock);
        free(w->ring);
        free(w);
        return NULL;
    }
    return w;
}

void wr_alog_writer_set_fd(wr_alog_writer_t *w, int fd)
{
    pthread_mutex_lock(&w->lock);
    /* Only a storm of reopens fills the slots; wait for the writer then. */
    while (w->nsw == WR_ALOG_MAX_SWITCHES)
        pthread_cond_wait(&w->room, &w->lock);
    w->sw[w->nsw].at = w->head;
    w->sw[w->nsw].fd = fd;
    w->nsw++;
    w->last_fd = fd;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
}

int wr_alog_writer_push(wr_alog_writer_t *w, const char *line, size_t n)
{
    size_t off, first;

    if (n == 0)
        return 0;
    pthread_mutex_lock(&w->lock);
    if (w->last_fd < 0) {
        pthread_mutex_unlock(&w->lock);
        return -1;
    }
    if (n > w->cap - (size_t) (w->head - w->tail)) {
        atomic_fetch_add_explicit(&w->dropped, 1, memory_order_relaxed);
        pthread_mutex_unlock(&w->lock);
        return -1;
    }
    off = (size_t) (w->head % w->cap);
    first = n < w->cap - off ? n : w->cap - off;
    memcpy(w->ring + off, line, first);
    memcpy(w->ring, line + first, n - first);
    /* The writer sleeps only on an empty ring: wake it on the first bytes. */
    if (w->head == w->tail)
        pthread_cond_signal(&w->wake);
    w->head += n;
    pthread_mutex_unlock(&w->lock);
    return 0;
}

unsigned long long wr_alog_writer_dropped(const wr_alog_writer_t *w)
{
    return atomic_load_explicit(&w->dropped, memory_order_relaxed);
}

void wr_alog_writer_stop(wr_alog_writer_t *w)
{
    int rc;

    if (w == NULL)
        return;
    pthread_mutex_lock(&w->lock);
    w->stopping = 1;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->lock);
    rc = pthread_join(w->thread, NULL);
    if (rc != 0) {
        errno = rc;
        wr_log_sys(WR_LOG_ALERT, "pthread_join", WR_ALOG_OBJECT);
    }
    pthread_cond_destroy(&w->room);
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->lock);
    free(w->ring);
    free(w);
}
