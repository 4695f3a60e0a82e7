/*
 * inspect: a libwarren app for the isolation tests. It reports what the
 * sandbox it runs in looks like from the inside, as JSON:
 *
 *   GET /                    {"pid", "ppid", "uid", "gid", "euid", "egid",
 *                             "groups", "ns": {"user", "pid", "mnt", "net",
 *                             "uts", "ipc", "cgroup"}, "hostname", "cap_eff",
 *                             "cap_prm", "cap_bnd", "cap_amb", "no_new_privs",
 *                             "seccomp", "mountinfo", "cgroup", "rlimits",
 *                             "af_alg", "keyctl", "userfaultfd", "env_marker",
 *                             "af_alg_pair", "io_uring", "process_vm_readv",
 *                             "x32", "securebits"}
 *   GET /exists?path=/p      {"exists": true|false}   (lstat: a symlink exists)
 *   GET /loopback?port=N     {"self": R, "host": R}: "self" listens on
 *                            127.0.0.1 (any port), connects to itself and
 *                            passes a byte; "host" connects to 127.0.0.1:N.
 *                            R is "ok" or "call: strerror(errno)"
 *   GET /orphan              {"pid": N}: leaves a daemon behind, as a daemon
 *                            does: fork, setsid, fork again, the middle one
 *                            exits; the grandchild (N, as the app sees pids)
 *                            closes its fds and sleeps until killed
 *
 * Every field is read in a way that also works without isolation, and
 * without /proc: namespace inodes, mountinfo and cgroup are then null; the
 * capability sets come from capget()/prctl() (the same values and format as
 * the Cap* lines of /proc/self/status), so they never need /proc.
 *
 * "af_alg", "keyctl" and "userfaultfd" are probes of calls Warren's default
 * seccomp filter denies: "ok" when the call succeeded, else strerror(errno).
 * keyctl and userfaultfd succeed for any user on a plain host, so they tell
 * a filter apart even where the kernel has no AF_ALG at all.
 * "af_alg_pair" (socketpair), "io_uring" (io_uring_setup) and
 * "process_vm_readv" (of itself) likewise; "x32" makes getpid through the
 * x32 ABI in a child: "killed by signal N", or the call's result as above.
 * "securebits" is prctl(PR_GET_SECUREBITS).
 *
 * Build: make build/apps/inspect
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <limits.h>
#include <linux/capability.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/io_uring.h>

#include "warren.h"

#ifndef AF_ALG
#define AF_ALG 38
#endif
#ifndef UFFD_USER_MODE_ONLY
#define UFFD_USER_MODE_ONLY 1
#endif

#define JSON_TYPE        "application/json"
#define CONTENT_TYPE     "Content-Type"
#define EXISTS_PATH      "/exists"
#define ORPHAN_PATH      "/orphan"
#define LOOPBACK_PATH    "/loopback"
#define PORT_PARAM       "port="
#define PROBE_TEXT_MAX   160
#define FIRST_NON_STDIO  3
#define PATH_PARAM       "path="
#define KEYCTL_GET_ID    0          /* KEYCTL_GET_KEYRING_ID */
#define KEY_SPEC_PROCESS (-2)       /* KEY_SPEC_PROCESS_KEYRING */
#define KEY_CREATE       1
#define MAX_GROUPS       256
#define READ_CHUNK       4096
#define BUF_START        16384
#define HOST_NAME_LEN    256
#define CAP_BITS         64         /* the sets are 64-bit masks */
#define JSON_CTRL_END    0x20       /* below: escaped as \u00XX */
#define ASCII_DEL        0x7f
#define X32_SYSCALL_BIT  0x40000000
#define X32_EXIT_ERRNO   1          /* the x32 child: its call failed */

enum { STATUS_OK = 200, STATUS_BAD = 400 };

/* A growing output buffer; a failed allocation is remembered and reported
 * once at the end, so the builders need no error paths of their own. */
typedef struct {
    char  *p;
    size_t len, cap;
    int    oom;
} buf_t;

static void buf_reserve(buf_t *b, size_t more)
{
    size_t cap = b->cap ? b->cap : BUF_START;
    char  *np;

    if (b->oom || b->len + more + 1 <= b->cap)
        return;
    while (cap < b->len + more + 1)
        cap *= 2;
    np = realloc(b->p, cap);
    if (np == NULL) {
        b->oom = 1;
        return;
    }
    b->p = np;
    b->cap = cap;
}

static void buf_add(buf_t *b, const char *s, size_t n)
{
    buf_reserve(b, n);
    if (b->oom)
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_printf(buf_t *b, const char *fmt, ...)
{
    va_list ap;
    int     n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = 1;
        return;
    }
    buf_reserve(b, (size_t) n);
    if (b->oom)
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t) n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t) n;
}

/* A JSON string literal of s (n bytes), or null when s is NULL. */
static void buf_json_str(buf_t *b, const char *s, size_t n)
{
    if (s == NULL) {
        buf_add(b, "null", 4);
        return;
    }
    buf_add(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char) s[i];
        if (c == '"' || c == '\\') {
            char esc[2] = { '\\', (char) c };
            buf_add(b, esc, 2);
        } else if (c == '\n') {
            buf_add(b, "\\n", 2);
        } else if (c < JSON_CTRL_END || c == ASCII_DEL) {
            buf_printf(b, "\\u%04x", c);
        } else {
            buf_add(b, (const char *) &s[i], 1);
        }
    }
    buf_add(b, "\"", 1);
}

static void buf_key(buf_t *b, const char *key)
{
    buf_printf(b, "%s\"%s\": ", b->len > 1 ? ", " : "", key);
}

/* The whole of a (proc) file, NUL-terminated, or NULL when unreadable. */
static char *read_file(const char *path, size_t *lenp)
{
    FILE  *f = fopen(path, "re");
    buf_t  b = { 0 };
    char   chunk[READ_CHUNK];
    size_t n;

    if (f == NULL)
        return NULL;
    buf_reserve(&b, 0);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_add(&b, chunk, n);
    if (ferror(f) || b.oom) {
        fclose(f);
        free(b.p);
        return NULL;
    }
    fclose(f);
    *lenp = b.len;
    return b.p;
}

/* ---------------------------------------------------------------- fields */

static void add_ids(buf_t *b)
{
    gid_t groups[MAX_GROUPS];
    int   n = getgroups(MAX_GROUPS, groups);

    buf_printf(b, "\"pid\": %d, \"ppid\": %d, \"uid\": %u, \"gid\": %u, "
               "\"euid\": %u, \"egid\": %u, \"groups\": [",
               (int) getpid(), (int) getppid(), (unsigned) getuid(),
               (unsigned) getgid(), (unsigned) geteuid(), (unsigned) getegid());
    for (int i = 0; i < n; i++)
        buf_printf(b, "%s%u", i ? ", " : "", (unsigned) groups[i]);
    buf_add(b, "]", 1);
}

static void add_namespaces(buf_t *b)
{
    static const char *const names[] = { "user", "pid", "mnt", "net", "uts", "ipc",
                                         "cgroup" };
    char        path[PATH_MAX];
    struct stat st;

    buf_key(b, "ns");
    buf_add(b, "{", 1);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "/proc/self/ns/%s", names[i]);
        buf_printf(b, "%s\"%s\": ", i ? ", " : "", names[i]);
        if (stat(path, &st) == 0)
            buf_printf(b, "%llu", (unsigned long long) st.st_ino);
        else
            buf_add(b, "null", 4);
    }
    buf_add(b, "}", 1);
}

static void add_hostname(buf_t *b)
{
    char name[HOST_NAME_LEN];

    buf_key(b, "hostname");
    if (gethostname(name, sizeof(name)) == 0) {
        name[sizeof(name) - 1] = '\0';
        buf_json_str(b, name, strlen(name));
    } else {
        buf_json_str(b, NULL, 0);
    }
}

static void add_hex(buf_t *b, const char *key, uint64_t v)
{
    buf_key(b, key);
    buf_printf(b, "\"%016llx\"", (unsigned long long) v);
}

/* The capability sets, formatted as /proc/self/status formats them. */
static void add_caps(buf_t *b)
{
    struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct   data[_LINUX_CAPABILITY_U32S_3];
    uint64_t eff = 0, prm = 0, bnd = 0, amb = 0;

    memset(data, 0, sizeof(data));
    if (syscall(SYS_capget, &hdr, data) == 0) {
        eff = data[0].effective | (uint64_t) data[1].effective << 32;
        prm = data[0].permitted | (uint64_t) data[1].permitted << 32;
    }
    /* prctl answers EINVAL past the kernel's last capability */
    for (int c = 0; c < CAP_BITS; c++) {
        int r = prctl(PR_CAPBSET_READ, c, 0, 0, 0);
        if (r < 0)
            break;
        if (r == 1)
            bnd |= (uint64_t) 1 << c;
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, c, 0, 0) == 1)
            amb |= (uint64_t) 1 << c;
    }
    add_hex(b, "cap_eff", eff);
    add_hex(b, "cap_prm", prm);
    add_hex(b, "cap_bnd", bnd);
    add_hex(b, "cap_amb", amb);
}

/* The Seccomp field of /proc/self/status; without /proc, prctl's answer. */
static int seccomp_mode(void)
{
    size_t len;
    char  *st = read_file("/proc/self/status", &len);
    char  *line;
    int    mode = -1;

    if (st != NULL) {
        line = strstr(st, "\nSeccomp:");
        if (line != NULL)
            mode = atoi(line + strlen("\nSeccomp:"));
        free(st);
    }
    if (mode < 0)
        mode = prctl(PR_GET_SECCOMP, 0, 0, 0, 0);
    return mode;
}

static void add_privs(buf_t *b)
{
    buf_key(b, "no_new_privs");
    buf_printf(b, "%d", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
    buf_key(b, "seccomp");
    buf_printf(b, "%d", seccomp_mode());
}

static void add_file(buf_t *b, const char *key, const char *path)
{
    size_t len = 0;
    char  *text = read_file(path, &len);

    buf_key(b, key);
    buf_json_str(b, text, len);
    free(text);
}

static void add_rlimits(buf_t *b)
{
    static const struct { const char *name; int res; } lim[] = {
        { "nofile", RLIMIT_NOFILE }, { "nproc", RLIMIT_NPROC }, { "as", RLIMIT_AS },
        { "core", RLIMIT_CORE }, { "cpu", RLIMIT_CPU }, { "fsize", RLIMIT_FSIZE },
    };
    struct rlimit rl;

    buf_key(b, "rlimits");
    buf_add(b, "{", 1);
    for (size_t i = 0; i < sizeof(lim) / sizeof(lim[0]); i++) {
        long long soft = -1, hard = -1;
        if (getrlimit(lim[i].res, &rl) == 0) {
            soft = rl.rlim_cur == RLIM_INFINITY ? -1 : (long long) rl.rlim_cur;
            hard = rl.rlim_max == RLIM_INFINITY ? -1 : (long long) rl.rlim_max;
        }
        buf_printf(b, "%s\"%s\": [%lld, %lld]", i ? ", " : "", lim[i].name, soft, hard);
    }
    buf_add(b, "}", 1);
}

/* "ok", or the errno text of the failed call; r is its result (a
 * descriptor to close when is_fd). */
static void add_probe(buf_t *b, const char *key, long r, int is_fd)
{
    const char *text = "ok";

    if (r < 0)
        text = strerror(errno);
    else if (is_fd)
        close((int) r);
    buf_key(b, key);
    buf_json_str(b, text, strlen(text));
}

/* getpid through the x32 ABI, in a child: a filter may kill the caller. */
static void add_x32(buf_t *b)
{
    char text[64];
    int st = 0, err = 0;
    pid_t pid = fork();

    if (pid == 0) {
        errno = 0;
        _exit(syscall(X32_SYSCALL_BIT | SYS_getpid) < 0 ? X32_EXIT_ERRNO + errno : 0);
    }
    if (pid < 0 || waitpid(pid, &st, 0) < 0)
        err = errno;
    if (err)
        snprintf(text, sizeof(text), "fork: %s", strerror(err));
    else if (WIFSIGNALED(st))
        snprintf(text, sizeof(text), "killed by signal %d", WTERMSIG(st));
    else if (WEXITSTATUS(st) == 0)
        snprintf(text, sizeof(text), "ok");
    else
        snprintf(text, sizeof(text), "%s", strerror(WEXITSTATUS(st) - X32_EXIT_ERRNO));
    buf_key(b, "x32");
    buf_json_str(b, text, strlen(text));
}

static void add_more_probes(buf_t *b)
{
    struct io_uring_params params;
    int sv[2], r;
    char src = 'x', dst = 0;
    struct iovec local = { &dst, 1 }, remote = { &src, 1 };

    r = socketpair(AF_ALG, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv);
    if (r == 0)
        close(sv[1]);
    add_probe(b, "af_alg_pair", r == 0 ? sv[0] : -1, 1);
    memset(&params, 0, sizeof(params));
    add_probe(b, "io_uring", syscall(SYS_io_uring_setup, 1, &params), 1);
    add_probe(b, "process_vm_readv", process_vm_readv(getpid(), &local, 1, &remote, 1, 0),
              0);
    add_x32(b);
    buf_key(b, "securebits");
    buf_printf(b, "%d", prctl(PR_GET_SECUREBITS, 0, 0, 0, 0));
}

static void add_probes(buf_t *b)
{
    add_probe(b, "af_alg", socket(AF_ALG, SOCK_SEQPACKET | SOCK_CLOEXEC, 0), 1);
    /* a keyring serial number is not a descriptor: nothing to close */
    add_probe(b, "keyctl", syscall(SYS_keyctl, KEYCTL_GET_ID, KEY_SPEC_PROCESS,
                                   KEY_CREATE), 0);
    add_probe(b, "userfaultfd", syscall(SYS_userfaultfd, UFFD_USER_MODE_ONLY), 1);
    add_more_probes(b);
}

static void add_env(buf_t *b)
{
    const char *m = getenv("MARKER");

    buf_key(b, "env_marker");
    buf_json_str(b, m, m ? strlen(m) : 0);
}

static void report(buf_t *b)
{
    buf_add(b, "{", 1);
    add_ids(b);
    add_namespaces(b);
    add_hostname(b);
    add_caps(b);
    add_privs(b);
    add_file(b, "mountinfo", "/proc/self/mountinfo");
    add_file(b, "cgroup", "/proc/self/cgroup");
    add_rlimits(b);
    add_probes(b);
    add_env(b);
    buf_add(b, "}\n", 2);
}

/* ---------------------------------------------------------------- /exists */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The percent-decoded value of "path=" in the query (malloc'd), or NULL. */
static char *query_path(const char *q)
{
    const char *p = q, *end;
    char       *out, *o;

    while (p != NULL && strncmp(p, PATH_PARAM, strlen(PATH_PARAM)) != 0) {
        p = strchr(p, '&');
        if (p != NULL)
            p++;
    }
    if (p == NULL)
        return NULL;
    p += strlen(PATH_PARAM);
    end = strchrnul(p, '&');
    out = o = malloc((size_t) (end - p) + 1);
    if (out == NULL)
        return NULL;
    for (; p < end; p++) {
        if (*p == '%' && end - p >= 3 && hexval(p[1]) >= 0 && hexval(p[2]) >= 0) {
            *o++ = (char) (hexval(p[1]) * 16 + hexval(p[2]));
            p += 2;
        } else {
            *o++ = *p == '+' ? ' ' : *p;
        }
    }
    *o = '\0';
    return out;
}

static int exists(warren_req_t *req, buf_t *b)
{
    char       *path = query_path(warren_req_query(req, NULL));
    struct stat st;

    if (path == NULL) {
        buf_add(b, "{\"error\": \"no path= argument\"}\n", 31);
        return STATUS_BAD;
    }
    buf_printf(b, "{\"exists\": %s}\n", lstat(path, &st) == 0 ? "true" : "false");
    free(path);
    return STATUS_OK;
}

/* -------------------------------------------------------------- /loopback */

static const char *probe_fail(char *out, const char *call)
{
    snprintf(out, PROBE_TEXT_MAX, "%s: %s", call, strerror(errno));
    return out;
}

static struct sockaddr_in loopback_addr(int port)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port) };

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

/* Listen on 127.0.0.1, connect to that listener, pass one byte across. */
static const char *loop_self(char *out)
{
    struct sockaddr_in a = loopback_addr(0);
    socklen_t alen = sizeof(a);
    int l = -1, c = -1, s = -1;
    const char *r = "ok";
    char byte = 'x';

    if ((l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        r = probe_fail(out, "socket");
    else if (bind(l, (struct sockaddr *) &a, sizeof(a)) < 0)
        r = probe_fail(out, "bind");
    else if (listen(l, 1) < 0)
        r = probe_fail(out, "listen");
    else if (getsockname(l, (struct sockaddr *) &a, &alen) < 0)
        r = probe_fail(out, "getsockname");
    else if ((c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
        r = probe_fail(out, "socket");
    else if (connect(c, (struct sockaddr *) &a, sizeof(a)) < 0)
        r = probe_fail(out, "connect");
    else if ((s = accept(l, NULL, NULL)) < 0)
        r = probe_fail(out, "accept");
    else if (send(c, &byte, 1, 0) != 1)
        r = probe_fail(out, "send");
    else if (recv(s, &byte, 1, 0) != 1)
        r = probe_fail(out, "recv");
    if (s >= 0)
        close(s);
    if (c >= 0)
        close(c);
    if (l >= 0)
        close(l);
    return r;
}

static const char *loop_connect(int port, char *out)
{
    struct sockaddr_in a = loopback_addr(port);
    const char *r = "ok";
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (c < 0)
        return probe_fail(out, "socket");
    if (connect(c, (struct sockaddr *) &a, sizeof(a)) < 0)
        r = probe_fail(out, "connect");
    close(c);
    return r;
}

static int loopback(warren_req_t *req, buf_t *b)
{
    const char *q = warren_req_query(req, NULL);
    const char *p = q ? strstr(q, PORT_PARAM) : NULL;
    char self[PROBE_TEXT_MAX], host[PROBE_TEXT_MAX];
    const char *rs, *rh;
    int port = p ? atoi(p + strlen(PORT_PARAM)) : 0;

    if (port <= 0) {
        buf_printf(b, "{\"error\": \"no port= argument\"}\n");
        return STATUS_BAD;
    }
    rs = loop_self(self);
    rh = loop_connect(port, host);
    buf_add(b, "{", 1);
    buf_key(b, "self");
    buf_json_str(b, rs, strlen(rs));
    buf_key(b, "host");
    buf_json_str(b, rh, strlen(rh));
    buf_add(b, "}\n", 2);
    return STATUS_OK;
}

/* ---------------------------------------------------------------- /orphan */

/* The grandchild's pid comes back through a pipe; the middle child exits
 * at once, so the grandchild is an orphan in a session of its own. */
static int orphan(buf_t *b)
{
    int p[2], st;
    pid_t mid, pid = -1;

    if (pipe(p) < 0) {
        buf_printf(b, "{\"error\": \"pipe: %s\"}\n", strerror(errno));
        return STATUS_BAD;
    }
    mid = fork();
    if (mid == 0) {
        pid_t g;
        setsid();
        g = fork();
        if (g == 0) {
            g = getpid();
            if (write(p[1], &g, sizeof(g)) < 0)
                _exit(1);
            close_range(FIRST_NON_STDIO, ~0U, 0);
            for (;;)
                pause();
        }
        _exit(0);
    }
    close(p[1]);
    if (mid > 0) {
        waitpid(mid, &st, 0);
        if (read(p[0], &pid, sizeof(pid)) != sizeof(pid))
            pid = -1;
    }
    close(p[0]);
    buf_printf(b, "{\"pid\": %d}\n", (int) pid);
    return pid > 0 ? STATUS_OK : STATUS_BAD;
}

/* ---------------------------------------------------------------- serving */

static int handle(warren_req_t *req, void *data)
{
    buf_t b = { 0 };
    int   status = STATUS_OK, rc;

    (void) data;
    if (strcmp(warren_req_path(req, NULL), EXISTS_PATH) == 0)
        status = exists(req, &b);
    else if (strcmp(warren_req_path(req, NULL), ORPHAN_PATH) == 0)
        status = orphan(&b);
    else if (strcmp(warren_req_path(req, NULL), LOOPBACK_PATH) == 0)
        status = loopback(req, &b);
    else
        report(&b);
    if (b.oom) {
        free(b.p);
        return -1;       /* answered 500 by warren_run */
    }
    rc = warren_response_init(req, status, 1);
    if (rc == 0)
        rc = warren_response_add_header(req, CONTENT_TYPE, strlen(CONTENT_TYPE),
                                        JSON_TYPE, strlen(JSON_TYPE));
    if (rc == 0)
        rc = warren_write(req, b.p, b.len);
    free(b.p);
    return rc;
}

int main(void)
{
    warren_ctx_t *ctx = warren_init();
    int rc;

    if (ctx == NULL) {
        perror("inspect: warren_init");
        return 1;
    }
    rc = warren_run(ctx, handle, NULL);
    if (rc < 0)
        fprintf(stderr, "inspect: %s\n", warren_error(ctx));
    warren_done(ctx);
    return rc < 0 ? 1 : 0;
}
