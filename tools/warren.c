/*
 * warren: the control API from the command line, so that
 *
 *     warren PUT /config/routes < routes.json
 *     warren EDIT /config/listeners
 *     warren /status/applications
 *
 * do what the curl lines in docs/control-api.md do, without remembering the
 * socket's path. One request per run, on the socket warrend listens on by
 * default (or --control, or $WARREN_CONTROL). The answer's body goes to
 * stdout; an error answer's to stderr, with exit status 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#define DEF_CONTROL  "unix:" WR_PREFIX "/var/run/warren/control.warren.sock"
#define BODY_MAX     (64L * 1024 * 1024)   /* what the controller takes, and more */
#define EXIT_ANSWER  1                     /* the API said no */
#define EXIT_USAGE   2                     /* nothing was asked, or no answer */

static const char usage[] =
"Usage: warren [--control ADDR] [METHOD] PATH\n"
"\n"
"  METHOD   GET (the default), PUT, POST, DELETE, or EDIT\n"
"  PATH     /config[/...], /status[/...], /metrics, /certificates/NAME,\n"
"           /js_modules/NAME, /control/applications/NAME/restart\n"
"\n"
"PUT and POST send standard input as the body (JSON; a PEM bundle for\n"
"/certificates/NAME, JavaScript for /js_modules/NAME). EDIT gets PATH into a file, opens $VISUAL or $EDITOR\n"
"(else vi) on it, and PUTs it back if it changed; when the change is\n"
"refused, the file is kept and named.\n"
"\n"
"  --control ADDR   unix:/path or IP:port (default $WARREN_CONTROL, else\n"
"                   " DEF_CONTROL ")\n"
"\n"
"Exit status: 0 for a 2xx answer, 1 for an error answer (its body on\n"
"stderr), 2 for a usage error or no answer.\n";

typedef struct {
    char  *p;
    size_t n;
} text_t;

typedef struct {
    int    status;
    text_t raw;            /* the whole answer */
    char  *body;           /* in raw */
    size_t body_len;
} answer_t;

static int fail(const char *what, const char *obj)
{
    fprintf(stderr, "warren: %s %s: %s\n", what, obj, strerror(errno));
    return -1;
}

static int append(text_t *t, const void *p, size_t n)
{
    char *q = realloc(t->p, t->n + n + 1);

    if (q == NULL)
        return -1;
    memcpy(q + t->n, p, n);
    t->n += n;
    q[t->n] = '\0';
    t->p = q;
    return 0;
}

/* All of fd, up to BODY_MAX bytes. */
static int read_all(int fd, text_t *t, const char *what)
{
    char buf[65536];
    ssize_t n;

    if (append(t, "", 0) < 0)
        return fail("out of memory reading", what);
    while ((n = read(fd, buf, sizeof(buf))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fail("read", what);
        if (t->n + (size_t) n > BODY_MAX) {
            errno = EFBIG;
            return fail("read", what);
        }
        if (append(t, buf, (size_t) n) < 0)
            return fail("out of memory reading", what);
    }
    return 0;
}

static int write_all(int fd, const char *p, size_t n, const char *what)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return fail("write", what);
        p += w;
        n -= (size_t) w;
    }
    return 0;
}

/* A connected socket to addr: unix:/path or host:port. */
static int dial(const char *addr)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai = NULL;
    const char *colon;
    char host[256];
    int fd, rc;

    if (strncmp(addr, "unix:", 5) == 0) {
        if (strlen(addr + 5) >= sizeof(sun.sun_path)) {
            fprintf(stderr, "warren: control socket path too long: %s\n", addr + 5);
            return -1;
        }
        strcpy(sun.sun_path, addr + 5);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return fail("socket", addr);
        if (connect(fd, (struct sockaddr *) &sun, sizeof(sun)) < 0) {
            fail("connect", addr + 5);
            close(fd);
            return -1;
        }
        return fd;
    }
    colon = strrchr(addr, ':');
    if (colon == NULL || (size_t) (colon - addr) >= sizeof(host)) {
        fprintf(stderr, "warren: --control is unix:/path or IP:port, not %s\n", addr);
        return -1;
    }
    memcpy(host, addr, (size_t) (colon - addr));
    host[colon - addr] = '\0';
    if (host[0] == '[' && strlen(host) > 2 && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host) - 2);
        host[strlen(host) - 2] = '\0';
    }
    rc = getaddrinfo(host, colon + 1, &hints, &ai);
    if (rc != 0) {
        fprintf(stderr, "warren: %s: %s\n", addr, gai_strerror(rc));
        return -1;
    }
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        fail(fd < 0 ? "socket" : "connect", addr);
        if (fd >= 0)
            close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    return fd;
}

/* The request target: bytes a request line cannot carry, percent-encoded. */
static int target_of(const char *path, text_t *out)
{
    char hex[4];

    for (const unsigned char *p = (const unsigned char *) path; *p; p++) {
        int rc;
        if (*p <= 0x20 || *p >= 0x7f) {
            snprintf(hex, sizeof(hex), "%%%02X", *p);
            rc = append(out, hex, 3);
        } else {
            rc = append(out, p, 1);
        }
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* One request, its whole answer. The controller closes after it. */
static int ask(const char *control, const char *method, const char *path,
               const text_t *body, answer_t *a)
{
    text_t req = { 0 }, target = { 0 };
    char head[256];
    char *end;
    int fd, rc = -1;

    memset(a, 0, sizeof(*a));
    if (target_of(path, &target) < 0)
        return fail("out of memory for", path);
    snprintf(head, sizeof(head), " HTTP/1.1\r\nHost: localhost\r\nContent-Length: %zu\r\n"
             "Connection: close\r\n\r\n", body ? body->n : 0);
    if (append(&req, method, strlen(method)) < 0 || append(&req, " ", 1) < 0
        || append(&req, target.p, target.n) < 0 || append(&req, head, strlen(head)) < 0
        || (body && append(&req, body->p, body->n) < 0)) {
        fail("out of memory for", path);
        goto out;
    }
    fd = dial(control);
    if (fd < 0)
        goto out;
    if (write_all(fd, req.p, req.n, "the control socket") == 0
        && read_all(fd, &a->raw, "the control socket") == 0)
        rc = 0;
    close(fd);
    if (rc < 0)
        goto out;
    end = strstr(a->raw.p, "\r\n\r\n");
    if (sscanf(a->raw.p, "HTTP/1.%*d %d", &a->status) != 1 || end == NULL) {
        fprintf(stderr, "warren: no HTTP answer on %s\n", control);
        rc = -1;
        goto out;
    }
    a->body = end + 4;
    a->body_len = a->raw.n - (size_t) (a->body - a->raw.p);
out:
    free(req.p);
    free(target.p);
    return rc;
}

/* Print the answer: 0 for 2xx, EXIT_ANSWER otherwise. */
static int show(const answer_t *a)
{
    int ok = a->status >= 200 && a->status < 300;

    fwrite(a->body, 1, a->body_len, ok ? stdout : stderr);
    return ok ? 0 : EXIT_ANSWER;
}

/* Run the user's editor on file; 0 when it exited 0. */
static int run_editor(const char *file)
{
    const char *ed = getenv("VISUAL");
    pid_t pid;
    int status;

    if (ed == NULL || *ed == '\0')
        ed = getenv("EDITOR");
    if (ed == NULL || *ed == '\0')
        ed = "vi";
    pid = fork();
    if (pid < 0)
        return fail("fork", "for the editor");
    if (pid == 0) {
        /* Through the shell: EDITOR="code --wait" is common. */
        execl("/bin/sh", "sh", "-c", "exec $0 \"$1\"", ed, file, (char *) NULL);
        _exit(127);
    }
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return fail("waitpid", "the editor");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "warren: the editor (%s) failed; nothing changed\n", ed);
        return -1;
    }
    return 0;
}

static int edit(const char *control, const char *path)
{
    char file[] = "/tmp/warren-edit-XXXXXX.json";
    answer_t a, b;
    text_t after = { 0 };
    int fd, rc = EXIT_USAGE, keep = 0;

    if (ask(control, "GET", path, NULL, &a) < 0) {
        free(a.raw.p);
        return EXIT_USAGE;
    }
    if (a.status != 200) {
        rc = show(&a);
        free(a.raw.p);
        return rc;
    }
    fd = mkstemps(file, 5);
    if (fd < 0) {
        fail("mkstemps", file);
        free(a.raw.p);
        return EXIT_USAGE;
    }
    if (write_all(fd, a.body, a.body_len, file) < 0 || run_editor(file) < 0)
        goto out;
    /* By name: many editors write a new file and rename it over the old. */
    close(fd);
    fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fail("open", file);
        goto out;
    }
    if (read_all(fd, &after, file) < 0)
        goto out;
    if (after.n == a.body_len && memcmp(after.p, a.body, after.n) == 0) {
        fprintf(stderr, "warren: no change\n");
        rc = 0;
        goto out;
    }
    if (ask(control, "PUT", path, &after, &b) < 0) {
        keep = 1;
        goto out;
    }
    rc = show(&b);
    keep = rc != 0;
    free(b.raw.p);
out:
    if (fd >= 0)
        close(fd);
    if (keep)
        fprintf(stderr, "warren: your edit is kept in %s\n", file);
    else
        unlink(file);
    free(after.p);
    free(a.raw.p);
    return rc;
}

int main(int argc, char **argv)
{
    const char *control = getenv("WARREN_CONTROL"), *method = "GET", *path;
    static const char *const methods[] = { "GET", "PUT", "POST", "DELETE", "EDIT" };
    text_t body = { 0 };
    answer_t a;
    int i = 1, rc;

    if (control == NULL || *control == '\0')
        control = DEF_CONTROL;
    if (i < argc && (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)) {
        fputs(usage, stdout);
        return 0;
    }
    if (i + 1 < argc && strcmp(argv[i], "--control") == 0) {
        control = argv[i + 1];
        i += 2;
    }
    if (argc - i == 2) {
        method = NULL;
        for (size_t k = 0; k < sizeof(methods) / sizeof(methods[0]); k++)
            if (strcasecmp(argv[i], methods[k]) == 0)
                method = methods[k];
        if (method == NULL) {
            fprintf(stderr, "warren: unknown method %s\n\n%s", argv[i], usage);
            return EXIT_USAGE;
        }
        i++;
    }
    if (argc - i != 1 || argv[i][0] != '/') {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    path = argv[i];
    if (strcmp(method, "EDIT") == 0)
        return edit(control, path);
    if (strcmp(method, "PUT") == 0 || strcmp(method, "POST") == 0) {
        if (isatty(STDIN_FILENO)) {
            fprintf(stderr, "warren: %s sends standard input: redirect a file to it\n",
                    method);
            return EXIT_USAGE;
        }
        if (read_all(STDIN_FILENO, &body, "standard input") < 0)
            return EXIT_USAGE;
    }
    rc = ask(control, method, path, body.p ? &body : NULL, &a) < 0 ? EXIT_USAGE : show(&a);
    free(a.raw.p);
    free(body.p);
    return rc;
}
