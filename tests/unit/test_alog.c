/*
 * router/access_log.c: formats (string, JSON object, "if") and the writer
 * thread (many pushers, an fd swap mid-stream, drops when full, flush on stop).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>

#include "router/access_log.h"

/* ---------------------------------------------------------------- formats */

typedef struct {
    struct sockaddr_in sin;
    wr_http_field_t    f[2];
    wr_req_view_t      r;
} fake_req_t;

static void fake_req(fake_req_t *q, const char *uri, const char *query)
{
    static const char line[] = "GET /a?b HTTP/1.1";

    memset(q, 0, sizeof(*q));
    q->sin.sin_family = AF_INET;
    q->sin.sin_addr.s_addr = htonl(0x7f000001);
    q->f[0] = (wr_http_field_t) { "Referer", 7, "http://ref/", 11 };
    q->f[1] = (wr_http_field_t) { "User-Agent", 10, "curl/8", 6 };
    q->r.method = (wr_str_t) { "GET", 3 };
    q->r.uri = (wr_str_t) { uri, strlen(uri) };
    q->r.request_uri = q->r.uri;
    if (query != NULL)
        q->r.query = (wr_str_t) { query, strlen(query) };
    q->r.request_line = (wr_str_t) { line, sizeof(line) - 1 };
    q->r.fields = q->f;
    q->r.nfields = 2;
    q->r.remote = (struct sockaddr *) &q->sin;
    q->r.start.tv_sec = 1700000000;
    q->r.status = 200;
    q->r.body_bytes_sent = 5;
}

static wr_alog_format_t *compile(const char *json, char *err, size_t errlen)
{
    json_t *v = json_loads(json, JSON_DECODE_ANY, NULL);
    wr_alog_format_t *f;

    assert_non_null(v);
    f = wr_alog_format_compile(v, err, errlen);
    json_decref(v);
    return f;
}

/* One formatted line, NUL-terminated, in *out (caller frees). */
static int line_of(const wr_alog_format_t *f, const wr_req_view_t *r, wr_buf_t *out)
{
    wr_buf_t scratch = { 0 };
    int rc;

    wr_buf_reset(out);
    rc = wr_alog_format_line(f, r, out, &scratch);
    wr_buf_append(out, "", 1);
    wr_buf_free(&scratch);
    return rc;
}

static void test_path(void **state)
{
    json_t *s = json_string("/var/log/a.log");
    json_t *o = json_pack("{s:s, s:s}", "path", "/var/log/b.log", "format", "$uri");
    json_t *none = json_pack("{s:s}", "format", "$uri");

    assert_string_equal(wr_alog_path(s), "/var/log/a.log");
    assert_string_equal(wr_alog_path(o), "/var/log/b.log");
    assert_null(wr_alog_path(none));
    assert_null(wr_alog_path(NULL));
    json_decref(s);
    json_decref(o);
    json_decref(none);
}

static void test_default_format(void **state)
{
    char err[128] = "x";
    wr_alog_format_t *f = compile("\"/var/log/access.log\"", err, sizeof(err));
    fake_req_t q;
    wr_buf_t out = { 0 };
    const char *tail = " \"GET /a?b HTTP/1.1\" 200 5 \"http://ref/\" \"curl/8\"\n";

    assert_non_null(f);
    fake_req(&q, "/a", "b");
    assert_int_equal(line_of(f, &q.r, &out), 0);
    assert_true(strncmp(out.p, "127.0.0.1 - - [", 15) == 0);
    assert_true(strlen(out.p) > strlen(tail));
    assert_string_equal(out.p + strlen(out.p) - strlen(tail), tail);
    assert_int_equal(strchr(out.p, '\n') - out.p, (long) strlen(out.p) - 1);
    wr_alog_format_free(f);

    /* an object without "format" gets the default too */
    f = compile("{\"path\": \"/var/log/access.log\"}", err, sizeof(err));
    assert_non_null(f);
    assert_int_equal(line_of(f, &q.r, &out), 0);
    assert_string_equal(out.p + strlen(out.p) - strlen(tail), tail);
    wr_alog_format_free(f);
    wr_buf_free(&out);
}

static void test_string_format_escapes(void **state)
{
    char err[128];
    wr_alog_format_t *f = compile("{\"path\": \"/l\", \"format\": \"[$uri] $status\"}",
                                  err, sizeof(err));
    fake_req_t q;
    wr_buf_t out = { 0 };

    assert_non_null(f);
    fake_req(&q, "/plain \"q\" \xc3\xa9", NULL);
    assert_int_equal(line_of(f, &q.r, &out), 0);
    assert_string_equal(out.p, "[/plain \"q\" \xc3\xa9] 200\n");

    /* a decoded %0A in $uri cannot split the line */
    fake_req(&q, "/a\nb\r\x7f\x01", NULL);
    assert_int_equal(line_of(f, &q.r, &out), 0);
    assert_string_equal(out.p, "[/a\\x0ab\\x0d\\x7f\\x01] 200\n");
    fake_req(&q, "/esc\x1b", NULL);                  /* alone, not with a \n */
    assert_int_equal(line_of(f, &q.r, &out), 0);
    assert_string_equal(out.p, "[/esc\\x1b] 200\n");

    /* appends: what out held stays */
    wr_buf_reset(&out);
    wr_buf_puts(&out, "prev\n");
    wr_buf_t scratch = { 0 };
    assert_int_equal(wr_alog_format_line(f, &q.r, &out, &scratch), 0);
    assert_true(out.n > 5 && memcmp(out.p, "prev\n[/esc", 10) == 0);
    wr_buf_free(&scratch);
    wr_alog_format_free(f);
    wr_buf_free(&out);
}

static void test_json_format(void **state)
{
    char err[128];
    wr_alog_format_t *f = compile(
        "{\"path\": \"/l\", \"format\": {\"uri\": \"$uri\", \"status\": \"$status\","
        " \"k\\\"ey\": \"lit\\\\eral\", \"ua\": \"$header_user_agent\", \"e\": \"\"}}",
        err, sizeof(err));
    static const char *uris[] = {
        "/simple",
        "/q\"uote\\back",
        "/ctl\n\r\t\x01\x1f",
        "/utf8-\xc3\xa9-\xe2\x82\xac-\xf0\x9f\x98\x80",
        "/bad-\xff-\xc3-\xed\xa0\x80-\xc0\xaf-\xf4\x90\x80\x80",
    };
    static const char *want[] = {
        "/simple",
        "/q\"uote\\back",
        "/ctl\n\r\t\x01\x1f",
        "/utf8-\xc3\xa9-\xe2\x82\xac-\xf0\x9f\x98\x80",
        /* invalid bytes become U+00HH: the line stays valid JSON */
        ("/bad-\xc3\xbf-\xc3\x83-\xc3\xad\xc2\xa0\xc2\x80-\xc3\x80\xc2\xaf-"
         "\xc3\xb4\xc2\x90\xc2\x80\xc2\x80"),
    };
    fake_req_t q;
    wr_buf_t out = { 0 };

    assert_non_null(f);
    for (size_t i = 0; i < sizeof(uris) / sizeof(uris[0]); i++) {
        json_error_t jerr;
        json_t *o;

        fake_req(&q, uris[i], NULL);
        assert_int_equal(line_of(f, &q.r, &out), 0);
        assert_int_equal(out.p[out.n - 2], '\n');
        assert_null(memchr(out.p, '\n', out.n - 2));        /* one line */
        o = json_loads(out.p, 0, &jerr);
        if (o == NULL)
            fail_msg("not JSON (%s): %s", jerr.text, out.p);
        assert_int_equal(json_object_size(o), 5);
        assert_string_equal(json_string_value(json_object_get(o, "uri")), want[i]);
        assert_string_equal(json_string_value(json_object_get(o, "status")), "200");
        assert_string_equal(json_string_value(json_object_get(o, "k\"ey")), "lit\\eral");
        assert_string_equal(json_string_value(json_object_get(o, "ua")), "curl/8");
        assert_string_equal(json_string_value(json_object_get(o, "e")), "");
        json_decref(o);
    }
    wr_alog_format_free(f);

    f = compile("{\"path\": \"/l\", \"format\": {}}", err, sizeof(err));
    assert_non_null(f);
    assert_int_equal(line_of(f, &q.r, &out), 0);
    assert_string_equal(out.p, "{}\n");
    wr_alog_format_free(f);
    wr_buf_free(&out);
}

static void test_if(void **state)
{
    char err[128];
    wr_alog_format_t *f = compile("{\"path\": \"/l\", \"format\": \"$uri\","
                                  " \"if\": \"$arg_log\"}", err, sizeof(err));
    fake_req_t q;
    wr_buf_t out = { 0 };

    assert_non_null(f);
    fake_req(&q, "/x", "log=1");
    assert_int_equal(line_of(f, &q.r, &out), 0);
    assert_string_equal(out.p, "/x\n");
    fake_req(&q, "/x", "log=0");
    assert_int_equal(line_of(f, &q.r, &out), 1);
    assert_string_equal(out.p, "");                          /* nothing appended */
    fake_req(&q, "/x", NULL);
    assert_int_equal(line_of(f, &q.r, &out), 1);
    wr_alog_format_free(f);

    f = compile("{\"path\": \"/l\", \"format\": \"$uri\", \"if\": \"!$arg_quiet\"}",
                err, sizeof(err));
    assert_non_null(f);
    fake_req(&q, "/x", "quiet=yes");
    assert_int_equal(line_of(f, &q.r, &out), 1);
    fake_req(&q, "/x", NULL);
    assert_int_equal(line_of(f, &q.r, &out), 0);
    wr_alog_format_free(f);
    wr_buf_free(&out);
}

static void test_compile_errors(void **state)
{
    char err[128] = "junk";

    assert_null(wr_alog_format_compile(NULL, err, sizeof(err)));
    assert_string_equal(err, "");                            /* no log, no error */
    assert_null(compile("{\"path\": \"/l\", \"format\": \"$no_such_var\"}", err, sizeof(err)));
    assert_true(err[0] != '\0');
    assert_null(compile("{\"path\": \"/l\", \"format\": {\"a\": \"$no_such\"}}",
                        err, sizeof(err)));
    assert_true(err[0] != '\0');
    assert_null(compile("{\"path\": \"/l\", \"format\": {\"a\": 1}}", err, sizeof(err)));
    assert_true(err[0] != '\0');
    assert_null(compile("{\"path\": \"/l\", \"format\": 5}", err, sizeof(err)));
    assert_true(err[0] != '\0');
    assert_null(compile("{\"path\": \"/l\", \"if\": \"$no_such\"}", err, sizeof(err)));
    assert_true(err[0] != '\0');
    assert_null(compile("{\"path\": \"/l\", \"if\": 1}", err, sizeof(err)));
    assert_true(err[0] != '\0');
    assert_null(compile("42", err, sizeof(err)));
    assert_true(err[0] != '\0');
}

/* ----------------------------------------------------------------- writer */

/* Drains a pipe into memory until EOF: EOF proves the write end was closed. */
typedef struct {
    int       fd;
    wr_buf_t  data;
    pthread_t thread;
} drain_t;

static void *drain_main(void *arg)
{
    drain_t *d = arg;
    char chunk[65536];
    ssize_t n;

    while ((n = read(d->fd, chunk, sizeof(chunk))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        assert_true(n > 0);
        wr_buf_append(&d->data, chunk, (size_t) n);
    }
    return NULL;
}

/* Start draining the read end of a new pipe; returns the write end. */
static int drain_start(drain_t *d)
{
    int p[2];

    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    memset(d, 0, sizeof(*d));
    d->fd = p[0];
    assert_int_equal(pthread_create(&d->thread, NULL, drain_main, d), 0);
    return p[1];
}

static void drain_join(drain_t *d)
{
    assert_int_equal(pthread_join(d->thread, NULL), 0);
    close(d->fd);
}

static int temp_file(char *path)
{
    int fd;

    strcpy(path, "/tmp/wr_alog_XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    return fd;
}

static void read_file(const char *path, wr_buf_t *out)
{
    char chunk[65536];
    int fd = open(path, O_RDONLY);
    ssize_t n;

    assert_true(fd >= 0);
    while ((n = read(fd, chunk, sizeof(chunk))) > 0)
        wr_buf_append(out, chunk, (size_t) n);
    close(fd);
}

static void test_writer_no_fd(void **state)
{
    wr_alog_writer_t *w = wr_alog_writer_start(0);
    drain_t d;
    int fd;

    assert_non_null(w);
    assert_int_equal(wr_alog_writer_push(w, "x\n", 2), -1);  /* logging off */
    fd = drain_start(&d);
    wr_alog_writer_set_fd(w, fd);
    assert_int_equal(wr_alog_writer_push(w, "a\n", 2), 0);
    wr_alog_writer_set_fd(w, -1);                             /* off again */
    assert_int_equal(wr_alog_writer_push(w, "b\n", 2), -1);
    drain_join(&d);                         /* the old fd is closed after "a" */
    assert_int_equal(d.data.n, 2);
    assert_memory_equal(d.data.p, "a\n", 2);
    assert_int_equal(wr_alog_writer_dropped(w), 0);
    wr_alog_writer_stop(w);
    wr_buf_free(&d.data);
}

#define PUSHERS        8
#define LINES_EACH     20000
#define SWAP_AFTER     (PUSHERS * LINES_EACH / 2)

typedef struct {
    wr_alog_writer_t *w;
    int               id;
    unsigned char     ok[LINES_EACH];   /* 1 queued, 0 dropped */
    unsigned long     dropped;
    atomic_ulong     *pushed;
    atomic_int       *swapped;
} pusher_t;

static void *pusher_main(void *arg)
{
    pusher_t *p = arg;
    char line[128];

    for (int i = 0; i < LINES_EACH; i++) {
        /* the swap happens while others push; none finishes before it */
        while (i == LINES_EACH * 3 / 4 && !atomic_load(p->swapped))
            sched_yield();
        /* varied lengths so that lines straddle the ring's wrap */
        int n = snprintf(line, sizeof(line), "t%d %d %.*s\n", p->id, i, i % 50,
                         "..................................................");
        /* The first line after the swap is pushed until it is queued, so
         * the new file gets lines even when a starved writer (a loaded
         * machine) let the queue fill up: drops stay counted. */
        for (;;) {
            if (wr_alog_writer_push(p->w, line, (size_t) n) == 0) {
                p->ok[i] = 1;
                break;
            }
            p->dropped++;
            if (i != LINES_EACH * 3 / 4)
                break;
            sched_yield();
        }
        atomic_fetch_add(p->pushed, 1);
    }
    return NULL;
}

/* Parse lines of data; mark[id][seq] counts each; per thread, record the range. */
static void tally(const wr_buf_t *data, unsigned char (*seen)[LINES_EACH],
                  int *min_seq, int *max_seq)
{
    const char *p = data->p, *end = data->p + data->n;

    for (int t = 0; t < PUSHERS; t++) {
        min_seq[t] = LINES_EACH;
        max_seq[t] = -1;
    }
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t) (end - p));
        int id, seq, dots = 0;
        char tailc;

        assert_non_null(nl);                            /* whole lines only */
        if (sscanf(p, "t%d %d", &id, &seq) != 2)
            fail_msg("bad line: %.*s", (int) (nl - p), p);
        assert_true(id >= 0 && id < PUSHERS && seq >= 0 && seq < LINES_EACH);
        for (const char *c = nl; c > p && c[-1] == '.'; c--)
            dots++;
        tailc = nl[-dots - 1];
        assert_true(tailc == ' ');
        assert_int_equal(dots, seq % 50);               /* not cut, not merged */
        assert_true(seen[id][seq] < 255);
        seen[id][seq]++;
        if (seq < min_seq[id])
            min_seq[id] = seq;
        if (seq > max_seq[id])
            max_seq[id] = seq;
        p = nl + 1;
    }
}

static void run_many(size_t queue_bytes)
{
    static pusher_t p[PUSHERS];
    static unsigned char seen[PUSHERS][LINES_EACH];
    wr_alog_writer_t *w = wr_alog_writer_start(queue_bytes);
    atomic_ulong pushed = 0;
    atomic_int swapped = 0;
    pthread_t th[PUSHERS];
    char path[64];
    drain_t d;
    int min_a[PUSHERS], max_a[PUSHERS], min_b[PUSHERS], max_b[PUSHERS];
    unsigned long dropped = 0, lines_a = 0;
    wr_buf_t b = { 0 };

    assert_non_null(w);
    memset(seen, 0, sizeof(seen));
    wr_alog_writer_set_fd(w, drain_start(&d));
    for (int i = 0; i < PUSHERS; i++) {
        memset(&p[i], 0, sizeof(p[i]));
        p[i] = (pusher_t) { .w = w, .id = i, .pushed = &pushed, .swapped = &swapped };
        assert_int_equal(pthread_create(&th[i], NULL, pusher_main, &p[i]), 0);
    }
    while (atomic_load(&pushed) < SWAP_AFTER)
        sched_yield();
    wr_alog_writer_set_fd(w, temp_file(path));             /* mid-stream */
    atomic_store(&swapped, 1);
    for (int i = 0; i < PUSHERS; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        dropped += p[i].dropped;
    }
    assert_int_equal(wr_alog_writer_dropped(w), dropped);
    wr_alog_writer_stop(w);
    drain_join(&d);                            /* EOF: the pipe was closed */

    tally(&d.data, seen, min_a, max_a);
    for (int t = 0; t < PUSHERS; t++)
        for (int i = 0; i < LINES_EACH; i++)
            lines_a += seen[t][i];
    read_file(path, &b);
    unlink(path);
    tally(&b, seen, min_b, max_b);

    for (int t = 0; t < PUSHERS; t++) {
        for (int i = 0; i < LINES_EACH; i++) {
            if (seen[t][i] != p[t].ok[i])
                fail_msg("thread %d line %d: written %d times, queued %d", t, i,
                         seen[t][i], p[t].ok[i]);
        }
        /* a thread's lines before the swap went to A, after it to B */
        if (max_a[t] >= 0 && min_b[t] < LINES_EACH)
            assert_true(max_a[t] < min_b[t]);
    }
    assert_true(lines_a > 0);                  /* the swap was mid-stream */
    assert_true(b.n > 0);
    wr_buf_free(&d.data);
    wr_buf_free(&b);
}

static void test_writer_many_threads(void **state)
{
    run_many(0);
}

static void test_writer_small_queue(void **state)
{
    run_many(4096);        /* constant wrapping, likely drops: all accounted */
}

/*
 * A writer stuck on a full pipe keeps its bytes in the ring: with a 100-byte
 * queue exactly ten 10-byte lines fit, every later push is dropped and
 * counted, and nothing blocks.
 */
static void test_writer_queue_full(void **state)
{
    wr_alog_writer_t *w = wr_alog_writer_start(100);
    char fill[4096], line[32], got[8192];
    int p[2], queued = 0, refused = 0;
    size_t n = 0;
    ssize_t r;

    assert_non_null(w);
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    assert_true(fcntl(p[1], F_SETPIPE_SZ, 4096) >= 4096);
    assert_int_equal(fcntl(p[1], F_SETFL, O_NONBLOCK), 0);
    memset(fill, 'f', sizeof(fill));
    while (write(p[1], fill, sizeof(fill)) > 0 || errno == EINTR)
        ;                                           /* fill the pipe up */
    while (write(p[1], fill, 1) > 0)
        ;
    assert_int_equal(fcntl(p[1], F_SETFL, 0), 0);   /* the writer blocks on it */
    wr_alog_writer_set_fd(w, p[1]);

    for (int i = 0; i < 50; i++) {
        assert_int_equal(snprintf(line, sizeof(line), "line %03d.\n", i), 10);
        if (wr_alog_writer_push(w, line, 10) == 0)
            queued++;
        else
            refused++;
    }
    assert_int_equal(queued, 10);
    assert_int_equal(refused, 40);
    assert_int_equal(wr_alog_writer_dropped(w), 40);
    assert_int_equal(wr_alog_writer_push(w, fill, 101), -1);   /* never fits */
    assert_int_equal(wr_alog_writer_dropped(w), 41);

    /* unblock: the ten queued lines follow the filler, in order, whole */
    while (n < sizeof(fill) + 100 && (r = read(p[0], got + n, sizeof(got) - n)) > 0)
        n += (size_t) r;
    wr_alog_writer_stop(w);                 /* closes p[1]... */
    while ((r = read(p[0], got + n, sizeof(got) - n)) > 0)
        n += (size_t) r;                    /* ...so this read sees EOF */
    assert_int_equal(n, sizeof(fill) + 100);
    close(p[0]);
    assert_true(n > 100);
    for (int i = 0; i < 10; i++) {
        snprintf(line, sizeof(line), "line %03d.\n", i);
        assert_memory_equal(got + n - 100 + (size_t) i * 10, line, 10);
    }
    for (size_t i = 0; i < n - 100; i++)
        assert_int_equal(got[i], 'f');
}

/* stop writes what is queued; many swaps in a row (more than the slots) each
 * get exactly their own lines. */
static void test_writer_swaps_and_stop(void **state)
{
    enum { FILES = 40, PER_FILE = 3 };
    wr_alog_writer_t *w = wr_alog_writer_start(0);
    char paths[FILES][64], line[64];
    wr_buf_t data = { 0 };

    assert_non_null(w);
    for (int f = 0; f < FILES; f++) {
        wr_alog_writer_set_fd(w, temp_file(paths[f]));
        for (int i = 0; i < PER_FILE; i++) {
            int n = snprintf(line, sizeof(line), "file %d line %d\n", f, i);
            assert_int_equal(wr_alog_writer_push(w, line, (size_t) n), 0);
        }
    }
    wr_alog_writer_stop(w);
    for (int f = 0; f < FILES; f++) {
        char want[256] = "";

        for (int i = 0; i < PER_FILE; i++) {
            snprintf(line, sizeof(line), "file %d line %d\n", f, i);
            strcat(want, line);
        }
        wr_buf_reset(&data);
        read_file(paths[f], &data);
        unlink(paths[f]);
        wr_buf_append(&data, "", 1);
        assert_string_equal(data.p, want);
    }
    wr_buf_free(&data);
}

/* The whole path: formatted lines through the writer into a file. */
static void test_format_to_writer(void **state)
{
    char err[128], path[64];
    wr_alog_format_t *f = compile("{\"path\": \"/l\", \"format\": \"$status $uri\"}",
                                  err, sizeof(err));
    wr_alog_writer_t *w = wr_alog_writer_start(0);
    wr_buf_t out = { 0 }, scratch = { 0 }, data = { 0 };
    fake_req_t q;

    assert_non_null(f);
    assert_non_null(w);
    wr_alog_writer_set_fd(w, temp_file(path));
    fake_req(&q, "/one", NULL);
    assert_int_equal(wr_alog_format_line(f, &q.r, &out, &scratch), 0);
    q.r.status = 404;
    q.r.uri = (wr_str_t) { "/two", 4 };
    assert_int_equal(wr_alog_format_line(f, &q.r, &out, &scratch), 0);
    assert_int_equal(wr_alog_writer_push(w, out.p, out.n), 0);
    wr_alog_writer_stop(w);
    read_file(path, &data);
    unlink(path);
    wr_buf_append(&data, "", 1);
    assert_string_equal(data.p, "200 /one\n404 /two\n");
    wr_alog_format_free(f);
    wr_buf_free(&out);
    wr_buf_free(&scratch);
    wr_buf_free(&data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path),
        cmocka_unit_test(test_default_format),
        cmocka_unit_test(test_string_format_escapes),
        cmocka_unit_test(test_json_format),
        cmocka_unit_test(test_if),
        cmocka_unit_test(test_compile_errors),
        cmocka_unit_test(test_writer_no_fd),
        cmocka_unit_test(test_writer_many_threads),
        cmocka_unit_test(test_writer_small_queue),
        cmocka_unit_test(test_writer_queue_full),
        cmocka_unit_test(test_writer_swaps_and_stop),
        cmocka_unit_test(test_format_to_writer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
