/*
 * A request body read whole (spool.h). The client's bytes land in the
 * thread's read buffer and are de-chunked there, in place; what they carry
 * goes to the spool's memory or file at once, so a connection keeps only
 * its request head (for the access log) and, at the end, the bytes of a
 * pipelined next request.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "core/log.h"
#include "router/proxy.h"
#include "router/spool.h"
#include "router/worker_proto.h"


typedef struct wr_spool {
    char      *mem;      /* the body while it fits body_buffer_size */
    size_t     len;
    int        fd;       /* all of the body once it outgrew mem, or -1 */
    long long  size;     /* body bytes */
    long long  sent;     /* bytes passed on */
    char      *chunk;    /* a file's bytes on their way to a worker */
} wr_spool_t;

/* ---- the directory ---- */

int wr_spool_dir_open(const char *tmpdir, uid_t uid, gid_t gid)
{
    int top, fd = -1;
    struct stat st;

    top = open(tmpdir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
    if (top < 0) {
        wr_log_sys(WR_LOG_ERR, "open", tmpdir);
        return -1;
    }
    if (mkdirat(top, WR_SPOOL_DIR, WR_SPOOL_DIR_MODE) < 0 && errno != EEXIST) {
        wr_log(WR_LOG_ERR, "mkdir(%s/%s) failed: %s", tmpdir, WR_SPOOL_DIR, strerror(errno));
        goto out;
    }
    /* Never through a link another user planted in a shared --tmpdir. */
    fd = openat(top, WR_SPOOL_DIR, O_DIRECTORY | O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        wr_log(WR_LOG_ERR, "open(%s/%s) failed: %s", tmpdir, WR_SPOOL_DIR, strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) < 0 || (st.st_uid != uid && st.st_uid != geteuid())) {
        wr_log(WR_LOG_ERR, "%s/%s belongs to another user: request bodies will not be "
               "buffered there", tmpdir, WR_SPOOL_DIR);
        goto fail;
    }
    if (fchown(fd, uid, gid) < 0 || fchmod(fd, WR_SPOOL_DIR_MODE) < 0) {
        wr_log(WR_LOG_ERR, "fchown/fchmod(%s/%s) failed: %s", tmpdir, WR_SPOOL_DIR,
               strerror(errno));
        goto fail;
    }
    goto out;
fail:
    close(fd);
    fd = -1;
out:
    close(top);
    return fd;
}

/* An anonymous file in dir: O_TMPFILE, or (a file system without it) a
 * fresh name unlinked at once. */
static int temp_in(wr_hconn_t *c, int dir, const char *what)
{
    char name[sizeof(c->reqid) + sizeof(".body")];
    int fd = openat(dir, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, WR_SPOOL_FILE_MODE);

    if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR)) {
        if (fd < 0)
            wr_log(WR_LOG_ERR, "open(O_TMPFILE in %s) failed: %s", what, strerror(errno));
        return fd;
    }
    wr_thread_request_id(c->t, name);
    strcat(name, ".body");
    fd = openat(dir, name, O_CREAT | O_EXCL | O_RDWR | O_NOFOLLOW | O_CLOEXEC,
                WR_SPOOL_FILE_MODE);
    if (fd < 0) {
        wr_log(WR_LOG_ERR, "open(%s/%s) failed: %s", what, name, strerror(errno));
        return -1;
    }
    if (unlinkat(dir, name, 0) < 0) {
        wr_log(WR_LOG_ERR, "unlink(%s/%s) failed: %s", what, name, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static int open_temp(wr_hconn_t *c)
{
    const char *path = c->conf->settings.body_temp_path;
    int dir, fd;

    if (path[0] == '\0') {
        if (c->t->router->body_dir < 0) {
            wr_log(WR_LOG_ERR, "no directory for request bodies over body_buffer_size "
                   "(see the error at start, or set settings.http.body_temp_path)");
            return -1;
        }
        return temp_in(c, c->t->router->body_dir, WR_SPOOL_DIR);
    }
    dir = open(path, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
    if (dir < 0) {
        wr_log_sys(WR_LOG_ERR, "open", path);
        return -1;
    }
    fd = temp_in(c, dir, path);
    close(dir);
    return fd;
}

/* ---- storing ---- */

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            wr_log(WR_LOG_ERR, "write(request body temporary file) failed: %s",
                   w < 0 ? strerror(errno) : "no progress");
            return -1;
        }
        p += w;
        n -= (size_t) w;
    }
    return 0;
}

/* Keep n body bytes. -1: no room (logged). */
static int store(wr_hconn_t *c, const char *p, size_t n)
{
    wr_spool_t *s = c->spool;
    long limit = c->conf->settings.body_buffer_size;
    char *m;

    if (s->fd < 0 && (long long) (s->len + n) <= limit) {
        m = realloc(s->mem, s->len + n);
        if (m == NULL) {
            wr_log(WR_LOG_CRIT, "out of memory buffering a request body");
            return -1;
        }
        memcpy(m + s->len, p, n);
        s->mem = m;
        s->len += n;
        s->size += (long long) n;
        return 0;
    }
    if (s->fd < 0) {
        /* Outgrown: the whole body moves to a file, memory is let go. */
        s->fd = open_temp(c);
        if (s->fd < 0 || write_all(s->fd, s->mem, s->len) < 0)
            return -1;
        free(s->mem);
        s->mem = NULL;
        s->len = 0;
    }
    if (write_all(s->fd, p, n) < 0)
        return -1;
    s->size += (long long) n;
    return 0;
}

/* De-chunk n bytes at p (in place) into the spool. 1 the body ended
 * (*used bytes were its), 0 more to come, or -status. */
static int take(wr_hconn_t *c, char *p, size_t n, size_t *used)
{
    size_t out = 0;
    int rc = wr_http_chunked_decode(&c->chunk, p, n, used, &out);

    if (rc < 0)
        return rc;
    if (out > 0 && store(c, p, out) < 0)
        return -500;
    return rc;
}

/* c->in keeps the head and then the n bytes at rest (a next request):
 * an own buffer, not the thread's. -1: out of memory. */
static int keep_head(wr_hconn_t *c, const char *rest, size_t n)
{
    char *p;

    if (c->in_borrowed || c->in_cap < c->head_len + n) {
        p = malloc(c->head_len + n);
        if (p == NULL)
            return -1;
        memcpy(p, c->in, c->head_len);
        memcpy(p + c->head_len, rest, n);
        if (!c->in_borrowed)
            free(c->in);
        c->in = p;
        c->in_cap = c->head_len + n;
        c->in_borrowed = 0;
    } else {
        memmove(c->in + c->head_len, rest, n);
    }
    c->in_len = c->head_len + n;
    c->consumed = c->head_len;
    return 0;
}

/* ---- the exchange ---- */

void wr_spool_free(wr_hconn_t *c)
{
    wr_spool_t *s = c->spool;

    if (s == NULL)
        return;
    if (s->fd >= 0)
        close(s->fd);
    free(s->mem);
    free(s->chunk);
    free(s);
    c->spool = NULL;
}

/* The request cannot go on: answer status and close. */
static void fail(wr_hconn_t *c, int status)
{
    wr_proxy_conn_closing(c);           /* a prepared "proxy" action */
    c->app = NULL;                      /* an application never saw it */
    wr_spool_free(c);
    wr_conn_fail(c, status);
}

/* The generation chosen at routing was let go while the body came in. */
static int app_retired(wr_appgen_t *g)
{
    int retired;

    pthread_mutex_lock(&g->lock);
    retired = g->retired;
    pthread_mutex_unlock(&g->lock);
    return retired;
}

/* All of the body is here: the upstream's or the worker's head gets its
 * length. */
static void done(wr_hconn_t *c)
{
    int rc;

    c->chunked = 0;
    c->body_left = 0;
    if (c->app && !c->app->http)
        rc = wr_worker_head_length(&c->app_head, c->spool->size);
    else
        rc = wr_proxy_head_length(&c->app_head, c->spool->size);
    if (rc < 0) {
        fail(c, 500);
        return;
    }
    if (c->app && app_retired(c->app) && wr_app_scale_requeue(c) == 0)
        return;                         /* on to the current generation */
    if (c->app)
        wr_app_begin(c);
    else
        wr_proxy_begin(c);
}

void wr_spool_begin(wr_hconn_t *c, int expect_continue)
{
    size_t used = 0, avail = c->in_len - c->consumed;
    char *p = c->in + c->consumed;
    int rc;

    c->spool = calloc(1, sizeof(*c->spool));
    if (c->spool == NULL) {
        fail(c, 503);
        return;
    }
    c->spool->fd = -1;
    c->state = WR_HC_SPOOL;
    wr_conn_arm(c, c->conf->settings.body_read_timeout);
    rc = take(c, p, avail, &used);
    if (rc < 0) {
        fail(c, -rc);
        return;
    }
    /* Body bytes are in the spool now: only a next request's stay. */
    if (keep_head(c, p + used, rc == 1 ? avail - used : 0) < 0) {
        fail(c, 503);
        return;
    }
    if (rc == 1) {
        done(c);
        return;
    }
    /* The client waits for this before it sends the body. */
    if (expect_continue && !c->v10)
        wr_conn_continue(c);
    wr_conn_want(c, EPOLLIN | EPOLLRDHUP);
}

void wr_spool_on_client(wr_hconn_t *c, uint32_t events)
{
    wr_thread_t *t = c->t;
    size_t used;
    ssize_t n;
    int rc = 0;

    (void) events;                      /* the read says it all */
    if (t->rbuf == NULL && (t->rbuf = malloc(WR_THREAD_RBUF)) != NULL)
        t->rbuf_cap = WR_THREAD_RBUF;
    if (t->rbuf == NULL) {
        fail(c, 503);
        return;
    }
    for (int i = 0; i < WR_SPOOL_READS && rc == 0; i++) {
        n = wr_conn_recv(c, t->rbuf, t->rbuf_cap);
        if (n < 0 && errno == EAGAIN)
            break;
        if (n <= 0) {
            wr_conn_abort(c);           /* gone mid-body: nobody to answer */
            return;
        }
        /* body_read_timeout is the longest pause between reads. */
        wr_conn_arm(c, c->conf->settings.body_read_timeout);
        rc = take(c, t->rbuf, (size_t) n, &used);
        if (rc < 0) {
            fail(c, -rc);
            return;
        }
        if (rc == 1 && keep_head(c, t->rbuf + used, (size_t) n - used) < 0) {
            fail(c, 503);
            return;
        }
        if ((size_t) n < t->rbuf_cap)
            break;                      /* drained for now (TLS: a whole
                                           record fits, none waits inside) */
    }
    if (rc == 1)
        done(c);
}

void wr_spool_timeout(wr_hconn_t *c)
{
    wr_log(WR_LOG_INFO, "a request body paused longer than body_read_timeout");
    fail(c, 408);
}

int wr_spool_send(wr_hconn_t *c, int fd)
{
    wr_spool_t *s = c->spool;
    ssize_t n;
    off_t off;

    while (s && s->sent < s->size) {
        if (s->fd < 0) {
            n = send(fd, s->mem + s->sent, s->len - (size_t) s->sent, MSG_NOSIGNAL);
        } else {
            off = (off_t) s->sent;
            n = sendfile(fd, s->fd, &off, (size_t) (s->size - s->sent));
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == EAGAIN ? 0 : -1;
        if (n == 0) {
            errno = EIO;                /* the file lost bytes under us */
            return -1;
        }
        s->sent += n;
    }
    return 1;
}

int wr_spool_next(wr_hconn_t *c, size_t max, const char **p, size_t *n)
{
    wr_spool_t *s = c->spool;
    long long left = s->size - s->sent;
    ssize_t got;

    *n = (long long) max < left ? max : (size_t) left;
    if (*n == 0) {
        *p = "";
        return 0;
    }
    if (s->fd < 0) {
        *p = s->mem + s->sent;
        return 0;
    }
    if (*n > WR_SPOOL_CHUNK)
        *n = WR_SPOOL_CHUNK;
    if (s->chunk == NULL && (s->chunk = malloc(WR_SPOOL_CHUNK)) == NULL)
        return -1;
    do
        got = pread(s->fd, s->chunk, *n, (off_t) s->sent);
    while (got < 0 && errno == EINTR);
    if (got <= 0) {
        if (got == 0)
            errno = EIO;                /* the file lost bytes under us */
        wr_log_sys(WR_LOG_ERR, "pread", "a request body's temporary file");
        return -1;
    }
    *n = (size_t) got;
    *p = s->chunk;
    return 0;
}

void wr_spool_consumed(wr_hconn_t *c, size_t n)
{
    c->spool->sent += (long long) n;
}

long long wr_spool_unsent(const wr_hconn_t *c)
{
    return c->spool ? c->spool->size - c->spool->sent : 0;
}
