/*
 * tunnel: a libwarren application that takes connections over, for the
 * integration tests of upgrades (warren.h, warren_req_upgrade).
 *
 *   an upgrade request to "echo"   101 with "Upgrade: echo", then every
 *                                  byte the client sends comes back, until
 *                                  a line "bye": it answers "bye" and ends
 *   an upgrade request to "close"  101, "closing" and the end at once
 *   any other upgrade request      426, with its body read first (empty:
 *                                  the read must not wait)
 *   GET /status/N                  tries warren_response_init(N) and says
 *                                  "refused" (EINVAL) or answers status N
 *   any other request              "upgrade=U body=B": warren_req_upgrade
 *                                  and the length of the body read
 *
 * Build: cc -std=c17 -Iinclude tests/apps/tunnel.c build/libwarren.a -o tunnel
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "warren.h"

#define STATUS_PATH  "/status/"
#define BYE          "bye\n"

enum {
    STATUS_OK        = 200,
    STATUS_SWITCHING = 101,
    STATUS_UPGRADE_REQUIRED = 426,
    CHUNK            = 16 * 1024,
    LINE_MAX_LEN     = 64,
    THREADS          = 4,
};

static int add_header(warren_req_t *req, const char *name, const char *value)
{
    return warren_response_add_header(req, name, strlen(name), value, strlen(value));
}

static int text(warren_req_t *req, int status, const char *body)
{
    if (warren_response_init(req, status, 1) < 0
        || add_header(req, "Content-Type", "text/plain") < 0)
        return -1;
    return warren_write_end(req, body, strlen(body));
}

/* Echoes what comes until the client's line "bye" (which may arrive split
 * over reads: the tail of the last few bytes is kept to find it). */
static int echo(warren_req_t *req)
{
    char buf[CHUNK], tail[LINE_MAX_LEN] = "";
    ssize_t n;

    if (warren_response_init(req, STATUS_SWITCHING, 1) < 0
        || add_header(req, "Upgrade", "echo") < 0
        || warren_response_send_head(req) < 0)
        return -1;
    while ((n = warren_read(req, buf, sizeof(buf))) > 0) {
        size_t keep = strlen(tail), take = (size_t) n < sizeof(tail) - 1 - keep
                                           ? (size_t) n : sizeof(tail) - 1 - keep;

        if (warren_write(req, buf, (size_t) n) < 0)
            return -1;
        memcpy(tail + keep, buf + (size_t) n - take, take);
        tail[keep + take] = '\0';
        if (strstr(tail, BYE) != NULL)
            return warren_write_end(req, BYE, strlen(BYE));
        if (keep + take > strlen(BYE))
            memmove(tail, tail + keep + take - strlen(BYE), strlen(BYE) + 1);
    }
    return -1;                  /* the client left (or the read failed) */
}

static int refuse(warren_req_t *req)
{
    char buf[CHUNK];
    ssize_t n = warren_read(req, buf, sizeof(buf));

    if (n != 0)
        return -1;
    if (warren_response_init(req, STATUS_UPGRADE_REQUIRED, 1) < 0
        || add_header(req, "Content-Type", "text/plain") < 0)
        return -1;
    return warren_write_end(req, "no such protocol\n", strlen("no such protocol\n"));
}

static int upgrade(warren_req_t *req)
{
    const char *proto = warren_req_header_get(req, "Upgrade", NULL);

    if (proto != NULL && strcasecmp(proto, "echo") == 0)
        return echo(req);
    if (proto != NULL && strcasecmp(proto, "close") == 0) {
        if (warren_response_init(req, STATUS_SWITCHING, 1) < 0
            || add_header(req, "Upgrade", "close") < 0)
            return -1;
        return warren_write_end(req, "closing\n", strlen("closing\n"));
    }
    return refuse(req);
}

static int status(warren_req_t *req, const char *arg)
{
    int st = atoi(arg);

    if (warren_response_init(req, st, 0) < 0)
        return errno == EINVAL ? text(req, STATUS_OK, "refused\n") : -1;
    return warren_write_end(req, NULL, 0);
}

static int plain(warren_req_t *req)
{
    char buf[CHUNK], line[LINE_MAX_LEN];
    size_t total = 0;
    ssize_t n;

    while ((n = warren_read(req, buf, sizeof(buf))) > 0)
        total += (size_t) n;
    if (n < 0)
        return -1;
    snprintf(line, sizeof(line), "upgrade=%d body=%zu\n", warren_req_upgrade(req), total);
    return text(req, STATUS_OK, line);
}

static int handle(warren_req_t *req, void *data)
{
    const char *path = warren_req_path(req, NULL);

    (void) data;
    if (warren_req_upgrade(req))
        return upgrade(req);
    if (strncmp(path, STATUS_PATH, strlen(STATUS_PATH)) == 0)
        return status(req, path + strlen(STATUS_PATH));
    return plain(req);
}

/* Each thread serves one request at a time: a tunnel holds its thread. */
static void *serve(void *arg)
{
    warren_ctx_t *ctx = arg;

    if (warren_run(ctx, handle, NULL) < 0)
        fprintf(stderr, "tunnel: %s\n", warren_error(ctx));
    return NULL;
}

int main(void)
{
    warren_ctx_t *ctx = warren_init_threads(THREADS);
    pthread_t t[THREADS];

    if (ctx == NULL) {
        perror("tunnel: warren_init_threads");
        return 1;
    }
    for (int i = 0; i < THREADS; i++)
        if (pthread_create(&t[i], NULL, serve, ctx) != 0) {
            fprintf(stderr, "tunnel: pthread_create failed\n");
            return 1;
        }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    warren_done(ctx);
    return 0;
}
