/*
 * bigbody: a libwarren app that writes a large response as fast as
 * libwarren lets it, for the test that a slow client holds back the worker
 * and not the router's memory (tests/integration/test_app_memory.py).
 *
 *   GET /big?size=N   N bytes (Content-Length N) of a known pattern (byte i
 *                     is i % 251), in warren_write() calls of CHUNK bytes.
 *                     After each call returns, and at the end, it records
 *                     "<bytes written> <N> <writing|done>" in the file named
 *                     by the environment variable PROGRESS (replaced whole
 *                     by a rename, so a reader never sees half a line)
 *   anything else     "pid <pid>"
 *
 * Build: make build/apps/bigbody
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "warren.h"

enum {
    STATUS_OK   = 200,
    PATTERN_MOD = 251,               /* byte i is i % 251 */
    CHUNK       = 1024 * 1024,       /* bytes per warren_write() */
    TEXT_MAX    = 128,
};

static char pattern[CHUNK + PATTERN_MOD];

static void progress(size_t written, size_t size, const char *state)
{
    const char *path = getenv("PROGRESS");
    char tmp[4096];
    FILE *f;

    if (path == NULL)
        return;
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "w");
    if (f == NULL)
        return;
    fprintf(f, "%zu %zu %s\n", written, size, state);
    if (fclose(f) == 0)
        rename(tmp, path);
}

static int big(warren_req_t *req)
{
    const char *q = warren_req_query(req, NULL);
    size_t size = strncmp(q, "size=", 5) == 0 ? strtoull(q + 5, NULL, 10) : 0;
    size_t done = 0;
    char len[32];
    int n = snprintf(len, sizeof(len), "%zu", size);

    if (warren_response_init(req, STATUS_OK, 2) < 0
        || warren_response_add_header(req, "Content-Type", 12,
                                      "application/octet-stream", 24) < 0
        || warren_response_add_header(req, "Content-Length", 14, len, (size_t) n) < 0)
        return -1;
    progress(0, size, "writing");
    while (done < size) {
        size_t k = size - done < CHUNK ? size - done : CHUNK;
        /* pattern + done % 251 starts with byte (done % 251). */
        if (warren_write(req, pattern + done % PATTERN_MOD, k) < 0)
            return -1;
        done += k;
        progress(done, size, "writing");
    }
    progress(done, size, "done");
    return 0;
}

static int handle(warren_req_t *req, void *data)
{
    char text[TEXT_MAX];

    (void) data;
    if (strcmp(warren_req_path(req, NULL), "/big") == 0)
        return big(req);
    snprintf(text, sizeof(text), "pid %d\n", (int) getpid());
    return warren_write(req, text, strlen(text));
}

int main(void)
{
    warren_ctx_t *ctx = warren_init();
    int rc;

    if (ctx == NULL) {
        perror("bigbody: warren_init");
        return 1;
    }
    for (size_t i = 0; i < sizeof(pattern); i++)
        pattern[i] = (char) (i % PATTERN_MOD);
    rc = warren_run(ctx, handle, NULL);
    if (rc < 0)
        fprintf(stderr, "bigbody: %s\n", warren_error(ctx));
    warren_done(ctx);
    return rc < 0 ? 1 : 0;
}
