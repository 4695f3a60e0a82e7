/*
 * null_app: a libwarren worker that answers every request with the same
 * 10 KB text/plain body the WSGI benchmark's app sends, doing nothing else.
 * bench/wsgi.sh runs it as an `external` app to measure what Warren's
 * router and channel cost with no language runtime at all: the ceiling any
 * runtime behind the same hop could reach on the machine.
 *
 * Build: make build/bench/null_app
 */
#include <stdio.h>
#include <string.h>

#include "warren.h"

#define BODY_LEN  10240                 /* bench/wsgi.sh's BODY_LEN */
#define STATUS_OK 200

struct body {
    char bytes[BODY_LEN];
    char len[8];                        /* BODY_LEN in decimal */
};

static int header(warren_req_t *req, const char *name, const char *value)
{
    return warren_response_add_header(req, name, strlen(name), value, strlen(value));
}

static int handle(warren_req_t *req, void *data)
{
    const struct body *b = data;

    if (warren_response_init(req, STATUS_OK, 2) < 0
        || header(req, "Content-Type", "text/plain") < 0
        || header(req, "Content-Length", b->len) < 0)
        return -1;
    return warren_write_end(req, b->bytes, sizeof(b->bytes));
}

int main(void)
{
    static struct body b;
    warren_ctx_t *ctx = warren_init();
    int rc;

    if (ctx == NULL) {
        perror("null_app: warren_init");
        return 1;
    }
    memset(b.bytes, 'x', sizeof(b.bytes));
    snprintf(b.len, sizeof(b.len), "%d", BODY_LEN);
    rc = warren_run(ctx, handle, &b);
    if (rc < 0)
        fprintf(stderr, "null_app: %s\n", warren_error(ctx));
    warren_done(ctx);
    return rc < 0 ? 1 : 0;
}
