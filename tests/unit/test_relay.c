/*
 * The stderr relay (src/app/relay.c): what a worker writes becomes one
 * labelled log entry per line, control bytes escaped, long lines split with
 * a mark, the unfinished last line logged at the end, the last line kept
 * (escaped) for an exit reason.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <cmocka.h>

#include "app/relay.h"
#include "core/log.h"
#include "core/process.h"

#define LOG_MAX (64 * 1024)

/* Feed text to a relay of worker 3 (pid 42) of app "a", let it flush;
 * the log it wrote, in out. Returns the relay's last words. */
static void run(const char *text, size_t n, char *out, char *last)
{
    wr_ev_loop_t loop;
    int errp[2], logfd = memfd_create("log", 0), saved = wr_proc.log_fd;
    wr_relay_t *rl;
    ssize_t got;

    assert_true(logfd >= 0);
    assert_int_equal(wr_ev_init(&loop), 0);
    rl = wr_relay_new(&loop, "a", 3, errp);
    assert_non_null(rl);
    rl->pid = 42;
    assert_int_equal(write(errp[1], text, n), (ssize_t) n);
    close(errp[1]);
    wr_proc.log_fd = logfd;
    wr_relay_flush(rl);
    wr_proc.log_fd = saved;
    strcpy(last, rl->done);
    wr_relay_free(&loop, rl);
    wr_ev_free(&loop);                      /* frees the retired relay too */
    got = pread(logfd, out, LOG_MAX - 1, 0);
    assert_true(got >= 0);
    out[got] = '\0';
    close(logfd);
}

/* The message part of each entry, one a line: what follows "#TID ". */
static int messages(char *log, char **msg, int max)
{
    int n = 0;

    for (char *line = strtok(log, "\n"); line && n < max; line = strtok(NULL, "\n")) {
        char *m = strstr(line, "] ");
        assert_non_null(m);
        assert_non_null(strstr(line, "[notice] "));
        m = strchr(m + 2, ' ');
        assert_non_null(m);
        msg[n++] = m + 1;
    }
    return n;
}

static void test_lines_are_labelled_and_escaped(void **state)
{
    static const char in[] = "2026/12/03 10:00:00 [alert] 1#1 forged\n\n"
                             "esc \x1b[31mred\rback\x7f\ttab\nunfinished";
    char *log = malloc(LOG_MAX), last[WR_RELAY_LAST_WORDS], *msg[8];
    int n;

    (void) state;
    run(in, sizeof(in) - 1, log, last);
    n = messages(log, msg, 8);
    assert_int_equal(n, 3);                 /* the blank line is skipped */
    assert_string_equal(msg[0], "app \"a\" worker 3 (pid 42) stderr: "
                                "2026/12/03 10:00:00 [alert] 1#1 forged");
    assert_string_equal(msg[1], "app \"a\" worker 3 (pid 42) stderr: "
                                "esc \\x1b[31mred\\x0dback\\x7f\\x09tab");
    assert_string_equal(msg[2], "app \"a\" worker 3 (pid 42) stderr: unfinished");
    assert_string_equal(last, "unfinished");
    free(log);
}

static void test_long_line_is_split_and_marked(void **state)
{
    size_t len = 3 * WR_RELAY_ENTRY_MAX, total = 0;
    char *in = malloc(len + 1), *log = malloc(LOG_MAX), last[WR_RELAY_LAST_WORDS];
    char *msg[8];
    const char *first = "app \"a\" worker 3 (pid 42) stderr: ";
    const char *more = "app \"a\" worker 3 (pid 42) stderr (continued): ";
    int n;

    (void) state;
    memset(in, 'x', len);
    in[len] = '\n';
    run(in, len + 1, log, last);
    n = messages(log, msg, 8);
    assert_int_equal(n, 3);
    for (int i = 0; i < n; i++) {
        const char *p = i == 0 ? first : more;
        assert_memory_equal(msg[i], p, strlen(p));
        total += strlen(msg[i] + strlen(p));
        assert_true(strlen(msg[i] + strlen(p)) <= WR_RELAY_ENTRY_MAX);
    }
    assert_int_equal(total, len);           /* nothing lost */
    assert_int_equal(strlen(last), WR_RELAY_LAST_WORDS - 1);
    free(in);
    free(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_are_labelled_and_escaped),
        cmocka_unit_test(test_long_line_is_split_and_marked),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
