/*
 * slowstart: a libwarren app for the spawn tests (test_app_spawn.py) that
 * takes a while to become ready and says when it started and when it was
 * ready, on the clock CLOCK_MONOTONIC (Python's time.monotonic()).
 *
 * Environment (the application's "environment" option):
 *   SLOWSTART_LOG  file to append "start PID SECONDS" to as the program
 *                  starts, and "ready PID SECONDS" right before it says
 *                  hello (warren_init(): main counts it ready on that hello)
 *   SLOWSTART_MS   milliseconds to sleep between the two (default 0)
 *
 * Every request is answered 200 "PID WORKER\n", WORKER being the worker
 * number warrend gave it (WARREN_WORKER_ID), also in the X-Pid and
 * X-Worker response headers.
 *
 * Build: make build/apps/slowstart
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "warren.h"

enum { STATUS_OK = 200, MS_MAX = 60000 };

static char pid_text[32];
static char worker_text[32];

static void note(const char *what)
{
    const char *path = getenv("SLOWSTART_LOG");
    struct timespec ts;
    char line[128];
    int fd, n;

    if (path == NULL || *path == '\0')
        return;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    n = snprintf(line, sizeof(line), "%s %d %lld.%09ld\n", what, (int) getpid(),
                 (long long) ts.tv_sec, ts.tv_nsec);
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) {
        perror(path);
        return;
    }
    /* One write with O_APPEND: lines of several workers never mix. */
    if (write(fd, line, (size_t) n) != n)
        perror(path);
    close(fd);
}

static void nap(void)
{
    const char *v = getenv("SLOWSTART_MS");
    long ms = v ? strtol(v, NULL, 10) : 0;
    struct timespec ts;

    if (ms <= 0)
        return;
    if (ms > MS_MAX)
        ms = MS_MAX;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static int add_header(warren_req_t *req, const char *name, const char *value)
{
    return warren_response_add_header(req, name, strlen(name), value, strlen(value));
}

static int handle(warren_req_t *req, void *data)
{
    char body[80];
    int n = snprintf(body, sizeof(body), "%s %s\n", pid_text, worker_text);

    (void) data;
    if (warren_response_init(req, STATUS_OK, 3) < 0
        || add_header(req, "Content-Type", "text/plain") < 0
        || add_header(req, "X-Pid", pid_text) < 0
        || add_header(req, "X-Worker", worker_text) < 0)
        return -1;
    return warren_write(req, body, (size_t) n);
}

int main(void)
{
    const char *id = getenv(WARREN_ENV_WORKER_ID);
    warren_ctx_t *ctx;
    int rc;

    note("start");
    snprintf(pid_text, sizeof(pid_text), "%d", (int) getpid());
    snprintf(worker_text, sizeof(worker_text), "%s", id ? id : "?");
    nap();
    note("ready");
    ctx = warren_init();
    if (ctx == NULL) {
        perror("slowstart: warren_init");
        return 1;
    }
    rc = warren_run(ctx, handle, NULL);
    if (rc < 0)
        fprintf(stderr, "slowstart: %s\n", warren_error(ctx));
    warren_done(ctx);
    return rc < 0 ? 1 : 0;
}
