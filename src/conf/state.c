#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "conf/state.h"
#include "core/log.h"

static void state_path(char *out, const char *dir, const char *name)
{
    snprintf(out, PATH_MAX, "%s/%s", dir, name);
}

static int write_all(int fd, const char *p, size_t len, const char *path)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            wr_log_sys(WR_LOG_ERR, "write", path);
            return -1;
        }
        p += n;
        len -= (size_t) n;
    }
    return 0;
}

/* dir/tmp holds text (+ a newline), fsync'ed: durable before it is named. */
static int prepare_file(const char *dir, const char *tmp, const char *text, size_t len,
                        int newline)
{
    char path[PATH_MAX];
    int fd;

    state_path(path, dir, tmp);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        wr_log_sys(WR_LOG_ERR, "open", path);
        return -1;
    }
    if (write_all(fd, text, len, path) < 0 || (newline && write_all(fd, "\n", 1, path) < 0))
        goto fail;
    if (fsync(fd) < 0) {
        wr_log_sys(WR_LOG_ERR, "fsync", path);
        goto fail;
    }
    close(fd);
    return 0;

fail:
    close(fd);
    unlink(path);
    return -1;
}

/* dir/tmp becomes dir/name, durably. */
static int commit_file(const char *dir, const char *tmp, const char *name)
{
    char from[PATH_MAX], to[PATH_MAX];
    int dfd, rc = 0;

    state_path(from, dir, tmp);
    state_path(to, dir, name);
    if (rename(from, to) < 0) {
        wr_log_sys(WR_LOG_ALERT, "rename", from);
        return -1;
    }
    /* The rename is durable only once the directory entry is. */
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) < 0) {
        wr_log_sys(WR_LOG_ALERT, dfd < 0 ? "open" : "fsync", dir);
        rc = -1;
    }
    if (dfd >= 0)
        close(dfd);
    return rc;
}

int wr_state_prepare(const char *dir, const char *text, size_t len)
{
    return prepare_file(dir, WR_STATE_TMP, text, len, 1);
}

int wr_state_commit(const char *dir)
{
    return commit_file(dir, WR_STATE_TMP, WR_STATE_FILE);
}

int wr_state_write(const char *dir, const char *name, const char *text, size_t len)
{
    char tmp[NAME_MAX + 1], path[PATH_MAX];

    snprintf(tmp, sizeof(tmp), ".%s.tmp", name);
    if (prepare_file(dir, tmp, text, len, 0) < 0)
        return -1;
    if (commit_file(dir, tmp, name) < 0) {
        state_path(path, dir, tmp);
        unlink(path);
        return -1;
    }
    return 0;
}

void wr_state_abort(const char *dir)
{
    char tmp[PATH_MAX];

    state_path(tmp, dir, WR_STATE_TMP);
    if (unlink(tmp) < 0 && errno != ENOENT)
        wr_log_sys(WR_LOG_WARN, "unlink", tmp);
}

int wr_state_read(const char *dir, char **text, size_t *len)
{
    return wr_state_read_file(dir, WR_STATE_FILE, WR_STATE_MAX_SIZE, text, len);
}

int wr_state_read_file(const char *dir, const char *name, long max, char **text,
                       size_t *len)
{
    char path[PATH_MAX];
    struct stat st;
    char *buf = NULL;
    size_t got = 0;
    int fd;

    state_path(path, dir, name);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        wr_log_sys(WR_LOG_ALERT, "open", path);
        return -1;
    }
    if (fstat(fd, &st) < 0) {
        wr_log_sys(WR_LOG_ALERT, "fstat", path);
        goto fail;
    }
    if (st.st_size > max) {
        wr_log(WR_LOG_ALERT, "state file %s is larger than %ld bytes", path, max);
        goto fail;
    }
    buf = malloc((size_t) st.st_size + 1);
    if (buf == NULL)
        goto fail;
    while (got < (size_t) st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t) st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            wr_log_sys(WR_LOG_ALERT, "read", path);
            goto fail;
        }
        if (n == 0)
            break;
        got += (size_t) n;
    }
    buf[got] = '\0';
    close(fd);
    *text = buf;
    *len = got;
    return 1;

fail:
    free(buf);
    close(fd);
    return -1;
}

int wr_state_set_aside(const char *dir, char *out, size_t outsz)
{
    char path[PATH_MAX];

    state_path(path, dir, WR_STATE_FILE);
    snprintf(out, outsz, "%s/%s-%lld", dir, WR_STATE_BAD, (long long) time(NULL));
    /* Two bad starts in one second must not overwrite the first bad file. */
    for (int i = 1; access(out, F_OK) == 0; i++)
        snprintf(out, outsz, "%s/%s-%lld.%d", dir, WR_STATE_BAD, (long long) time(NULL), i);
    if (rename(path, out) < 0) {
        wr_log_sys(WR_LOG_ALERT, "rename", path);
        return -1;
    }
    return 0;
}
