/*
 * The pool of kept upstream connections (src/router/upool.c), with real
 * socket pairs: the newest connection to an address first, at most `max`
 * per address, one the upstream closed or wrote to unasked never handed
 * out, the unused closed by age, every fd closed exactly once.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "core/ev.h"
#include "router/upool.h"

static wr_addr_t addr_a, addr_b;

static int setup(void **state)
{
    const char *why;

    (void) state;
    assert_int_equal(wr_addr_parse("127.0.0.1:8080", &addr_a, &why), 0);
    assert_int_equal(wr_addr_parse("127.0.0.1:8081", &addr_b, &why), 0);
    return 0;
}

/* A connection (ours) and its upstream end (peer). */
static int pair(int *peer)
{
    int sv[2];

    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    *peer = sv[1];
    return sv[0];
}

static int is_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

static void newest_first_per_address(void **state)
{
    wr_upool_t u;
    int p1, p2, p3;
    int c1 = pair(&p1), c2 = pair(&p2), c3 = pair(&p3);

    (void) state;
    wr_upool_init(&u);
    wr_upool_give(&u, &addr_a, c1, 4);
    wr_upool_give(&u, &addr_b, c2, 4);
    wr_upool_give(&u, &addr_a, c3, 4);
    assert_int_equal(wr_upool_take(&u, &addr_a), c3);
    assert_int_equal(wr_upool_take(&u, &addr_a), c1);
    assert_int_equal(wr_upool_take(&u, &addr_a), -1);
    assert_int_equal(wr_upool_take(&u, &addr_b), c2);
    assert_int_equal(wr_upool_take(&u, &addr_b), -1);
    wr_upool_free(&u);
    close(c1); close(c2); close(c3); close(p1); close(p2); close(p3);
}

static void at_most_max_per_address(void **state)
{
    wr_upool_t u;
    int p1, p2, p3;
    int c1 = pair(&p1), c2 = pair(&p2), c3 = pair(&p3);

    (void) state;
    wr_upool_init(&u);
    wr_upool_give(&u, &addr_a, c1, 2);
    wr_upool_give(&u, &addr_a, c2, 2);
    wr_upool_give(&u, &addr_a, c3, 2);   /* one too many: closed */
    assert_false(is_open(c3));
    wr_upool_give(&u, &addr_b, c3 = pair(&p3), 2);   /* another address: room */
    assert_int_equal(wr_upool_take(&u, &addr_b), c3);
    assert_int_equal(wr_upool_take(&u, &addr_a), c2);
    assert_int_equal(wr_upool_take(&u, &addr_a), c1);
    wr_upool_free(&u);
    close(c1); close(c2); close(c3); close(p1); close(p2); close(p3);
}

static void closed_or_chatty_upstream_is_skipped(void **state)
{
    wr_upool_t u;
    int p1, p2, p3;
    int c1 = pair(&p1), c2 = pair(&p2), c3 = pair(&p3);

    (void) state;
    wr_upool_init(&u);
    wr_upool_give(&u, &addr_a, c1, 4);
    wr_upool_give(&u, &addr_a, c2, 4);
    wr_upool_give(&u, &addr_a, c3, 4);
    close(p3);                                   /* the upstream closed c3 */
    assert_int_equal(write(p2, "x", 1), 1);      /* and wrote to c2 unasked */
    assert_int_equal(wr_upool_take(&u, &addr_a), c1);
    assert_false(is_open(c3));
    assert_false(is_open(c2));
    assert_int_equal(wr_upool_take(&u, &addr_a), -1);
    assert_true(wr_upool_usable(c1));
    wr_upool_free(&u);
    close(c1); close(p1); close(p2);
}

static void unused_ones_age_out(void **state)
{
    wr_upool_t u;
    int p1, p2;
    int c1 = pair(&p1), c2 = pair(&p2);
    uint64_t now;

    (void) state;
    wr_upool_init(&u);
    wr_upool_give(&u, &addr_a, c1, 4);
    wr_upool_give(&u, &addr_b, c2, 4);
    now = wr_ev_now();                           /* read after: the clock may tick */
    wr_upool_age(&u, now, 60000);                /* none old enough */
    assert_true(is_open(c1) && is_open(c2));
    wr_upool_age(&u, now + 60000, 60000);        /* a minute later: all */
    assert_false(is_open(c1));
    assert_false(is_open(c2));
    assert_int_equal(wr_upool_take(&u, &addr_a), -1);
    assert_int_equal(wr_upool_take(&u, &addr_b), -1);
    wr_upool_free(&u);
    close(p1); close(p2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(newest_first_per_address),
        cmocka_unit_test(at_most_max_per_address),
        cmocka_unit_test(closed_or_chatty_upstream_is_skipped),
        cmocka_unit_test(unused_ones_age_out),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
