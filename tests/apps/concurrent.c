/*
 * concurrent: a libwarren app that holds several requests at once, for the
 * tests of a worker's streams and pipelining (test_app_streams.py).
 *
 * It is single-threaded and event-driven: libwarren's context is not safe
 * to share between threads yet, but warren_accept() returns the next
 * request while earlier ones are still held, and a held request can be
 * answered later. So it says it serves STREAMS requests at once (the
 * environment variable, 1..WARREN_MAX_THREADS, default 4) with
 * warren_init_threads(), parks the requests that must wait, and answers
 * them when another request (or a deadline) says so.
 *
 *   GET /pid                 its pid
 *   GET /wait?id=X           held until /release?id=X; then "released X <pid>"
 *   GET /release?id=X        answers the held X, then itself "ok <pid>"
 *                            (404 if no X is held)
 *   GET /held                how many requests it holds
 *   GET /sleep?ms=N          answered "slept <pid>" after N ms (it polls its
 *                            channel meanwhile: other requests go on)
 *   GET /big?size=N[&id=X]   N bytes of a known pattern (byte i is i % 251).
 *                            With id, it sends one window (WINDOW bytes, as
 *                            much as the router takes without a grant, so it
 *                            never blocks) and holds the rest until
 *                            /release?id=X, which answers first and then
 *                            writes the rest (blocking on that stream's
 *                            window: its client is reading by then)
 *   POST, any path           like the GET of that path, the body read first
 *   anything else            "hello <pid>"
 *
 * Build: make build/apps/concurrent
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "warren.h"

enum {
    STATUS_OK        = 200,
    STATUS_NOT_FOUND = 404,
    DEFAULT_STREAMS  = 4,
    HELD_MAX         = 64,           /* requests parked at once */
    ID_MAX           = 64,           /* bytes of an id */
    TEXT_MAX         = 128,          /* a short answer */
    PATTERN_MOD      = 251,          /* /big's byte i is i % 251 */
    CHUNK            = 16 * 1024,    /* /big writes this much at once */
    /* src/lib/proto.h WR_APP_WINDOW_INIT: response bytes the router takes
     * on a stream before it grants more. */
    WINDOW           = 256 * 1024,
    MS_PER_S         = 1000,
    NS_PER_MS        = 1000000,
};

typedef enum { HELD_WAIT, HELD_SLEEP, HELD_BIG } held_kind_t;

typedef struct {
    warren_req_t *req;               /* NULL: a free entry */
    held_kind_t   kind;
    char          id[ID_MAX];
    long long     deadline_ms;       /* HELD_SLEEP */
    size_t        sent, size;        /* HELD_BIG */
} held_t;

static held_t held[HELD_MAX];

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * MS_PER_S + ts.tv_nsec / NS_PER_MS;
}

/* The value of key in the query string, copied into out ("" if absent). */
static void query_get(warren_req_t *req, const char *key, char *out, size_t cap)
{
    const char *q = warren_req_query(req, NULL);
    size_t klen = strlen(key);

    out[0] = '\0';
    while (*q) {
        const char *end = strchr(q, '&');
        size_t n = end ? (size_t) (end - q) : strlen(q);
        if (n > klen && strncmp(q, key, klen) == 0 && q[klen] == '=') {
            size_t v = n - klen - 1 < cap - 1 ? n - klen - 1 : cap - 1;
            memcpy(out, q + klen + 1, v);
            out[v] = '\0';
            return;
        }
        q += n + (end != NULL);
    }
}

static int answer(warren_req_t *req, int status, const char *text)
{
    if (warren_response_init(req, status, 1) < 0
        || warren_response_add_header(req, "Content-Type", 12, "text/plain", 10) < 0
        || warren_write_end(req, text, strlen(text)) < 0) {
        warren_abort(req);
        return -1;
    }
    return warren_finish(req);
}

static void answer_pid(warren_req_t *req, const char *what)
{
    char text[TEXT_MAX];

    snprintf(text, sizeof(text), "%s %d\n", what, (int) getpid());
    answer(req, STATUS_OK, text);
}

static held_t *park(warren_req_t *req, held_kind_t kind, const char *id)
{
    for (int i = 0; i < HELD_MAX; i++) {
        if (held[i].req == NULL) {
            memset(&held[i], 0, sizeof(held[i]));
            held[i].req = req;
            held[i].kind = kind;
            snprintf(held[i].id, sizeof(held[i].id), "%s", id);
            return &held[i];
        }
    }
    answer(req, STATUS_NOT_FOUND, "too many held\n");
    return NULL;
}

/* Writes bytes [from, to) of the /big pattern. */
static int big_write(warren_req_t *req, size_t from, size_t to)
{
    char buf[CHUNK];

    while (from < to) {
        size_t n = to - from < sizeof(buf) ? to - from : sizeof(buf);
        for (size_t i = 0; i < n; i++)
            buf[i] = (char) ((from + i) % PATTERN_MOD);
        if (warren_write(req, buf, n) < 0)
            return -1;
        from += n;
    }
    return 0;
}

static void big(warren_req_t *req)
{
    char size_s[ID_MAX], id[ID_MAX];
    size_t size, first;
    held_t *h;

    query_get(req, "size", size_s, sizeof(size_s));
    query_get(req, "id", id, sizeof(id));
    size = (size_t) strtoull(size_s, NULL, 10);
    first = id[0] && size > WINDOW ? WINDOW : size;
    if (warren_response_init(req, STATUS_OK, 1) < 0
        || warren_response_add_header(req, "Content-Type", 12,
                                      "application/octet-stream", 24) < 0
        || big_write(req, 0, first) < 0) {
        warren_abort(req);
        return;
    }
    if (first == size) {
        warren_finish(req);
        return;
    }
    h = park(req, HELD_BIG, id);
    if (h != NULL) {
        h->sent = first;
        h->size = size;
    }
}

static void release(warren_req_t *req)
{
    char id[ID_MAX], text[TEXT_MAX];
    held_t *h = NULL;

    query_get(req, "id", id, sizeof(id));
    for (int i = 0; i < HELD_MAX && h == NULL; i++)
        if (held[i].req != NULL && held[i].kind != HELD_SLEEP
            && strcmp(held[i].id, id) == 0)
            h = &held[i];
    if (h == NULL) {
        answer(req, STATUS_NOT_FOUND, "not held\n");
        return;
    }
    answer_pid(req, "ok");
    if (h->kind == HELD_BIG) {
        if (big_write(h->req, h->sent, h->size) == 0)
            warren_finish(h->req);
        else
            warren_abort(h->req);
    } else {
        snprintf(text, sizeof(text), "released %s %d\n", id, (int) getpid());
        answer(h->req, STATUS_OK, text);  /* its client may have left: fine */
    }
    h->req = NULL;
}

static void count_held(warren_req_t *req)
{
    char text[TEXT_MAX];
    int n = 0;

    for (int i = 0; i < HELD_MAX; i++)
        n += held[i].req != NULL;
    snprintf(text, sizeof(text), "%d\n", n);
    answer(req, STATUS_OK, text);
}

static void handle(warren_req_t *req)
{
    const char *path = warren_req_path(req, NULL);
    char arg[ID_MAX], sink[CHUNK];
    held_t *h;

    while (warren_read(req, sink, sizeof(sink)) > 0)
        ;                                 /* a POST's body: read, unused */
    if (strcmp(path, "/pid") == 0) {
        answer_pid(req, "pid");
    } else if (strcmp(path, "/wait") == 0) {
        query_get(req, "id", arg, sizeof(arg));
        park(req, HELD_WAIT, arg);
    } else if (strcmp(path, "/release") == 0) {
        release(req);
    } else if (strcmp(path, "/held") == 0) {
        count_held(req);
    } else if (strcmp(path, "/sleep") == 0) {
        query_get(req, "ms", arg, sizeof(arg));
        h = park(req, HELD_SLEEP, "");
        if (h != NULL)
            h->deadline_ms = now_ms() + atoll(arg);
    } else if (strcmp(path, "/big") == 0) {
        big(req);
    } else {
        answer_pid(req, "hello");
    }
}

/* Answers the sleepers whose time came; returns ms to the next one, or -1
 * when none sleeps. */
static int wake_sleepers(void)
{
    long long now = now_ms(), next = -1;

    for (int i = 0; i < HELD_MAX; i++) {
        if (held[i].req == NULL || held[i].kind != HELD_SLEEP)
            continue;
        if (held[i].deadline_ms <= now) {
            answer_pid(held[i].req, "slept");
            held[i].req = NULL;
        } else if (next < 0 || held[i].deadline_ms - now < next) {
            next = held[i].deadline_ms - now;
        }
    }
    return (int) next;
}

int main(void)
{
    const char *s = getenv("STREAMS"), *fd_s = getenv(WARREN_ENV_CHANNEL_FD);
    unsigned streams = s ? (unsigned) atoi(s) : DEFAULT_STREAMS;
    warren_ctx_t *ctx = warren_init_threads(streams);
    struct pollfd pfd = { .fd = fd_s ? atoi(fd_s) : -1, .events = POLLIN };
    warren_req_t *req;

    if (ctx == NULL) {
        fprintf(stderr, "warren_init_threads(%u): %s\n", streams, strerror(errno));
        return 1;
    }
    for (;;) {
        /* With sleepers, wait for the channel only until the next is due
         * (a message that is not a request, such as an ABORT, makes
         * warren_accept wait for the next request: good enough here). */
        int wait = wake_sleepers();
        if (wait >= 0 && poll(&pfd, 1, wait) == 0)
            continue;
        req = warren_accept(ctx);
        if (req == NULL)
            break;
        handle(req);
    }
    warren_done(ctx);
    return 0;
}
