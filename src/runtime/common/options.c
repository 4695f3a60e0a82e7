/*
 * Options every language runtime reads the same way (options.h).
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include "runtime/common/log.h"
#include "runtime/common/options.h"
#include "warren.h"

long long wr_rt_positive(const char *v, long long max)
{
    char *end;
    long long n;

    errno = 0;
    n = strtoll(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || n < 1 || n > max)
        return -1;
    return n;
}

int wr_rt_threads(const char *var, unsigned *threads)
{
    const char *v = getenv(var);
    long long n;

    *threads = 1;
    if (v == NULL || v[0] == '\0')
        return 0;
    n = wr_rt_positive(v, INT_MAX);
    if (n < 0) {
        wr_rt_log("%s must be a number from 1, not \"%s\"", var, v);
        return -1;
    }
    if (n > WARREN_MAX_THREADS) {
        wr_rt_log("\"threads\": %lld capped at %d, the requests a worker is "
                  "sent at once", n, WARREN_MAX_THREADS);
        n = WARREN_MAX_THREADS;
    }
    *threads = (unsigned) n;
    return 0;
}

int wr_rt_stack_size(const char *var, size_t *bytes)
{
    const char *v = getenv(var);
    long page = sysconf(_SC_PAGESIZE);
    long min = sysconf(_SC_THREAD_STACK_MIN);
    long long n;

    *bytes = 0;
    if (v == NULL || v[0] == '\0')
        return 0;
    n = wr_rt_positive(v, LLONG_MAX);
    if (n < 0 || (page > 0 && n % page != 0) || (min > 0 && n < min)) {
        wr_rt_log("%s must be a multiple of %ld bytes and at least %ld, not \"%s\"",
                  var, page, min, v);
        return -1;
    }
    *bytes = (size_t) n;
    return 0;
}
