/*
 * envdump: a libwarren app for the integration tests. On start it writes its
 * environment (one "K=V" line each), then "cwd=DIR", "uid=N", "gid=N" to the
 * file named by $ENVDUMP_FILE plus "." and its pid; then it serves
 * "envdump\n" to every request.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "warren.h"

extern char **environ;

static void dump(const char *base)
{
    char path[4096], cwd[4096];
    FILE *f;

    snprintf(path, sizeof(path), "%s.%d", base, (int) getpid());
    f = fopen(path, "w");
    if (f == NULL) {
        perror(path);
        return;
    }
    for (char **e = environ; *e; e++)
        fprintf(f, "%s\n", *e);
    if (getcwd(cwd, sizeof(cwd)) == NULL)
        strcpy(cwd, "?");
    fprintf(f, "cwd=%s\nuid=%u\ngid=%u\n", cwd, (unsigned) getuid(), (unsigned) getgid());
    fclose(f);
}

static int handle(warren_req_t *req, void *data)
{
    (void) data;
    if (warren_response_init(req, 200, 1) < 0
        || warren_response_add_header(req, "Content-Type", 12, "text/plain", 10) < 0)
        return -1;
    return warren_write(req, "envdump\n", 8);
}

int main(void)
{
    const char *out = getenv("ENVDUMP_FILE");
    warren_ctx_t *ctx;
    int rc;

    if (out)
        dump(out);
    ctx = warren_init();
    if (ctx == NULL) {
        perror("envdump: warren_init");
        return 1;
    }
    rc = warren_run(ctx, handle, NULL);
    warren_done(ctx);
    return rc < 0 ? 1 : 0;
}
