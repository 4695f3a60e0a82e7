/* core: the byte buffer, addresses, the timer heap, and the IPC channel (fragments, fd passing). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "conf/state.h"
#include "core/addr.h"
#include "core/buf.h"
#include "core/ev.h"
#include "core/ipc.h"

/* ---- the byte buffer ---- */

static void test_buf_put_dec(void **state)
{
    static const struct { unsigned long long v; const char *text; } cases[] = {
        { 0, "0" }, { 7, "7" }, { 10, "10" }, { 200, "200" }, { 10240, "10240" },
        { 18446744073709551615ULL, "18446744073709551615" },
    };
    wr_buf_t b = { 0 };

    (void) state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        wr_buf_reset(&b);
        assert_int_equal(wr_buf_append(&b, "<", 1), 0);
        assert_int_equal(wr_buf_put_dec(&b, cases[i].v), 0);
        assert_int_equal(b.n, 1 + strlen(cases[i].text));
        assert_memory_equal(b.p + 1, cases[i].text, b.n - 1);
    }
    wr_buf_free(&b);
}

static void test_buf_printf_grows(void **state)
{
    wr_buf_t b = { 0 };
    char big[1000];

    (void) state;
    assert_int_equal(wr_buf_printf(&b, "%d-%s", 42, "x"), 0);      /* from empty */
    assert_int_equal(b.n, 4);
    assert_memory_equal(b.p, "42-x", 4);
    assert_int_equal(wr_buf_printf(&b, "|%s", "fits"), 0);         /* in the room */
    assert_int_equal(b.n, 9);
    memset(big, 'y', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(wr_buf_printf(&b, "[%s]", big), 0);           /* grows */
    assert_int_equal(b.n, 9 + 2 + sizeof(big) - 1);
    assert_memory_equal(b.p, "42-x|fits[", 10);
    assert_int_equal(b.p[b.n - 1], ']');
    assert_int_equal(b.p[b.n - 2], 'y');
    wr_buf_free(&b);
}

/* ---- addresses ---- */

static void test_addr_valid(void **state)
{
    wr_addr_t a;
    const char *why;
    struct sockaddr_in *in = (struct sockaddr_in *) &a.sa;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &a.sa;
    struct sockaddr_un *un = (struct sockaddr_un *) &a.sa;

    assert_int_equal(wr_addr_parse("127.0.0.1:8080", &a, &why), 0);
    assert_int_equal(in->sin_family, AF_INET);
    assert_int_equal(ntohs(in->sin_port), 8080);
    assert_int_equal(ntohl(in->sin_addr.s_addr), 0x7f000001);

    assert_int_equal(wr_addr_parse("*:80", &a, &why), 0);
    assert_int_equal(in->sin_addr.s_addr, htonl(INADDR_ANY));

    assert_int_equal(wr_addr_parse("[::1]:443", &a, &why), 0);
    assert_int_equal(in6->sin6_family, AF_INET6);
    assert_int_equal(ntohs(in6->sin6_port), 443);

    assert_int_equal(wr_addr_parse("unix:/run/w.sock", &a, &why), 0);
    assert_int_equal(un->sun_family, AF_UNIX);
    assert_string_equal(un->sun_path, "/run/w.sock");
}

static void test_addr_invalid(void **state)
{
    static const char *bad[] = {
        "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:80x", "1.2.3:80",
        "[::1]80", "[::1]:", "[zz]:80", ":80", "unix:relative", "localhost:80",
        "127.0.0.1:-1",
    };
    wr_addr_t a;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *why = NULL;
        if (wr_addr_parse(bad[i], &a, &why) == 0)
            fail_msg("\"%s\" was accepted", bad[i]);
        assert_non_null(why);
    }
}

/* ---- timers ---- */

typedef struct {
    int order[8];
    int n;
} fired_t;

static fired_t fired;

static void timer_cb(wr_ev_loop_t *loop, wr_timer_t *t)
{
    fired.order[fired.n++] = (int) (intptr_t) t->data;
    if (fired.n == 3)
        loop->stop = 1;
}

static void test_timers_order_and_cancel(void **state)
{
    wr_ev_loop_t loop;
    wr_timer_t t[4];
    uint64_t delays[4] = { 30, 10, 20, 5 };

    memset(&fired, 0, sizeof(fired));
    assert_int_equal(wr_ev_init(&loop), 0);
    memset(t, 0, sizeof(t));
    for (int i = 0; i < 4; i++) {
        t[i].cb = timer_cb;
        t[i].data = (void *) (intptr_t) i;
        assert_int_equal(wr_timer_set(&loop, &t[i], delays[i]), 0);
    }
    wr_timer_cancel(&loop, &t[3]);          /* the earliest never fires */
    assert_int_equal(t[3].slot, 0);
    assert_int_equal(wr_ev_run(&loop), 0);
    assert_int_equal(fired.n, 3);
    assert_int_equal(fired.order[0], 1);
    assert_int_equal(fired.order[1], 2);
    assert_int_equal(fired.order[2], 0);
    wr_ev_free(&loop);
}

/* ---- channel ---- */

typedef struct {
    size_t   len;
    uint32_t type, id;
    int      fd;
    int      ok;
    int      count;
} got_t;

static got_t got;

static void on_msg(wr_chan_t *c, wr_msg_t *m)
{
    got.count++;
    got.len = m->len;
    got.type = m->type;
    got.id = m->id;
    got.ok = 1;
    for (size_t i = 0; i < m->len; i++)
        if ((unsigned char) m->data[i] != (unsigned char) (i * 7))
            got.ok = 0;
    got.fd = m->fd;
    m->fd = -1;
    c->loop->stop = 1;
}

static void on_close(wr_chan_t *c)
{
    fail_msg("channel closed unexpectedly");
}

static void test_chan_large_message_and_fd(void **state)
{
    wr_ev_loop_t loop;
    wr_chan_t a, b;
    int fds[2], p[2];
    size_t len = 5 * WR_IPC_FRAGMENT + 123;     /* six fragments */
    char *data = malloc(len), buf[4];

    for (size_t i = 0; i < len; i++)
        data[i] = (char) (i * 7);
    assert_int_equal(wr_ev_init(&loop), 0);
    assert_int_equal(wr_chan_pair(fds), 0);
    assert_int_equal(pipe(p), 0);
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    a.on_msg = b.on_msg = on_msg;
    a.on_close = b.on_close = on_close;
    assert_int_equal(wr_chan_open(&a, &loop, fds[0]), 0);
    assert_int_equal(wr_chan_open(&b, &loop, fds[1]), 0);

    memset(&got, 0, sizeof(got));
    assert_int_equal(wr_chan_send(&a, WR_MSG_CONF_APPLY, 42, data, len, p[0]), 0);
    close(p[0]);                   /* the channel holds its own duplicate */
    assert_int_equal(wr_ev_run(&loop), 0);
    assert_int_equal(got.count, 1);
    assert_int_equal(got.len, len);
    assert_int_equal(got.type, WR_MSG_CONF_APPLY);
    assert_int_equal(got.id, 42);
    assert_true(got.ok);
    assert_true(got.fd >= 0);
    /* The passed fd is the pipe's read end: what goes in comes out. */
    assert_int_equal(write(p[1], "abc", 3), 3);
    assert_int_equal(read(got.fd, buf, sizeof(buf)), 3);
    close(got.fd);
    close(p[1]);

    wr_chan_close(&a);
    wr_chan_close(&b);
    wr_ev_free(&loop);
    free(data);
}

/* ---- posted events ---- */

typedef struct {
    wr_ev_t  ev;
    int      calls;
    uint32_t last;
    int      repost;       /* post itself again this many times */
    wr_ev_t *victim;       /* retired by the first call */
} posted_t;

static void on_posted(wr_ev_loop_t *loop, wr_ev_t *ev, uint32_t events)
{
    posted_t *p = ev->data;

    p->calls++;
    p->last = events;
    if (p->victim) {
        wr_ev_retire(loop, p->victim, NULL);
        p->victim = NULL;
    }
    if (p->repost-- > 0)
        wr_ev_post(loop, ev, EPOLLOUT);
    else
        loop->stop = 1;
}

static void test_ev_post(void **state)
{
    wr_ev_loop_t loop;
    posted_t a = { .ev = { .fd = -1, .cb = on_posted } };
    posted_t b = { .ev = { .fd = -1, .cb = on_posted } };

    a.ev.data = &a;
    b.ev.data = &b;
    assert_int_equal(wr_ev_init(&loop), 0);
    /* Two posts before delivery: one call with both events. */
    wr_ev_post(&loop, &a.ev, EPOLLIN);
    wr_ev_post(&loop, &a.ev, EPOLLRDHUP);
    /* b is posted after a, and a retires it first: never delivered. */
    wr_ev_post(&loop, &b.ev, EPOLLIN);
    a.victim = &b.ev;
    a.repost = 3;          /* then three more passes, one call each */
    assert_int_equal(wr_ev_run(&loop), 0);
    assert_int_equal(a.calls, 4);
    assert_int_equal(a.last, EPOLLOUT);
    assert_int_equal(b.calls, 0);
    assert_null(loop.post_head);
    wr_ev_free(&loop);
}

static void test_chan_result(void **state)
{
    wr_ev_loop_t loop;
    wr_chan_t a, b;
    int fds[2];

    assert_int_equal(wr_ev_init(&loop), 0);
    assert_int_equal(wr_chan_pair(fds), 0);
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    b.on_msg = on_msg;
    b.on_close = on_close;
    assert_int_equal(wr_chan_open(&a, &loop, fds[0]), 0);
    assert_int_equal(wr_chan_open(&b, &loop, fds[1]), 0);
    memset(&got, 0, sizeof(got));
    assert_int_equal(wr_chan_send_result(&a, 7, 0, "no"), 0);
    assert_int_equal(wr_ev_run(&loop), 0);
    assert_int_equal(got.type, WR_MSG_CONF_RESULT);
    assert_int_equal(got.len, sizeof(wr_msg_result_t) + 2);
    assert_int_equal(got.fd, -1);
    wr_chan_close(&a);
    wr_chan_close(&b);
    wr_ev_free(&loop);
}

/* ---- state file ---- */

static void test_state_two_phase(void **state)
{
    char dir[] = "/tmp/wr-state-XXXXXX", aside[512], *text = NULL;
    size_t len = 0;

    assert_non_null(mkdtemp(dir));
    assert_int_equal(wr_state_read(dir, &text, &len), 0);          /* no file */
    assert_int_equal(wr_state_prepare(dir, "{\"a\":1}", 7), 0);
    assert_int_equal(wr_state_read(dir, &text, &len), 0);          /* not yet */
    assert_int_equal(wr_state_commit(dir), 0);
    assert_int_equal(wr_state_read(dir, &text, &len), 1);
    assert_string_equal(text, "{\"a\":1}\n");
    free(text);

    assert_int_equal(wr_state_prepare(dir, "{\"b\":2}", 7), 0);
    wr_state_abort(dir);                                            /* refused */
    assert_int_equal(wr_state_read(dir, &text, &len), 1);
    assert_string_equal(text, "{\"a\":1}\n");
    free(text);

    assert_int_equal(wr_state_set_aside(dir, aside, sizeof(aside)), 0);
    assert_int_equal(wr_state_read(dir, &text, &len), 0);
    assert_int_equal(access(aside, F_OK), 0);
    assert_non_null(strstr(aside, "/conf.json.bad-"));
    unlink(aside);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_put_dec),
        cmocka_unit_test(test_buf_printf_grows),
        cmocka_unit_test(test_addr_valid),
        cmocka_unit_test(test_addr_invalid),
        cmocka_unit_test(test_timers_order_and_cancel),
        cmocka_unit_test(test_chan_large_message_and_fd),
        cmocka_unit_test(test_chan_result),
        cmocka_unit_test(test_ev_post),
        cmocka_unit_test(test_state_two_phase),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
