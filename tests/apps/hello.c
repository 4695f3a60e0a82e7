/*
 * hello: the smallest useful libwarren application, run by the integration
 * tests as an `external` app. It answers "Hello, world" as text/plain, and
 * echoes the request body back for POST (with the request's Content-Type).
 * GET /exit-after-body sends its whole answer (with a Content-Length), then
 * exits before it ends the response: a worker that dies right after its
 * last byte.
 *
 * Build: cc -std=c17 -Iinclude tests/apps/hello.c build/libwarren.a -o hello
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "warren.h"

#define GREETING      "Hello, world\n"
#define TEXT_PLAIN    "text/plain"
#define CONTENT_TYPE  "Content-Type"

enum { STATUS_OK = 200, ECHO_CHUNK = 16 * 1024 };

static int add_header(warren_req_t *req, const char *name, const char *value,
                      size_t vlen)
{
    return warren_response_add_header(req, name, strlen(name), value, vlen);
}

/* Streams the body back as it arrives: memory stays one chunk whatever the
 * upload's size. */
static int echo(warren_req_t *req)
{
    char buf[ECHO_CHUNK];
    const char *type;
    size_t tlen;
    ssize_t n;

    type = warren_req_header_get(req, CONTENT_TYPE, &tlen);
    if (type == NULL) {
        type = TEXT_PLAIN;
        tlen = strlen(TEXT_PLAIN);
    }
    if (warren_response_init(req, STATUS_OK, 1) < 0
        || add_header(req, CONTENT_TYPE, type, tlen) < 0)
        return -1;
    while ((n = warren_read(req, buf, sizeof(buf))) > 0)
        if (warren_write(req, buf, (size_t) n) < 0)
            return -1;
    return n < 0 ? -1 : 0;
}

static int hello(warren_req_t *req)
{
    if (warren_response_init(req, STATUS_OK, 1) < 0
        || add_header(req, CONTENT_TYPE, TEXT_PLAIN, strlen(TEXT_PLAIN)) < 0)
        return -1;
    return warren_write(req, GREETING, strlen(GREETING));
}

static int exit_after_body(warren_req_t *req)
{
    char len[16];
    int n = snprintf(len, sizeof(len), "%zu", strlen(GREETING));

    if (warren_response_init(req, STATUS_OK, 2) < 0
        || add_header(req, CONTENT_TYPE, TEXT_PLAIN, strlen(TEXT_PLAIN)) < 0
        || add_header(req, "Content-Length", len, (size_t) n) < 0
        || warren_write(req, GREETING, strlen(GREETING)) < 0)
        return -1;
    _exit(0);
}

static int handle(warren_req_t *req, void *data)
{
    (void) data;
    if (strcmp(warren_req_path(req, NULL), "/exit-after-body") == 0)
        return exit_after_body(req);
    if (strcmp(warren_req_method(req, NULL), "POST") == 0)
        return echo(req);
    return hello(req);
}

int main(void)
{
    warren_ctx_t *ctx = warren_init();
    int rc;

    if (ctx == NULL) {
        perror("hello: warren_init");
        return 1;
    }
    rc = warren_run(ctx, handle, NULL);
    if (rc < 0)
        fprintf(stderr, "hello: %s\n", warren_error(ctx));
    warren_done(ctx);
    return rc < 0 ? 1 : 0;
}
