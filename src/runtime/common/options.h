/*
 * Options every language runtime reads the same way from the variables
 * warrend sets (src/app/spec.c). The configuration was validated before:
 * a bad value here means the runtime was started by hand; it is logged
 * (src/runtime/common/log.h) and the call fails.
 */
#ifndef WR_RUNTIME_OPTIONS_H
#define WR_RUNTIME_OPTIONS_H

#include <stddef.h>

/* A decimal from 1 to max, or -1. */
long long wr_rt_positive(const char *v, long long max);

/*
 * "threads" from the variable var: 1 when unset. Unit takes any count from
 * 1, but a worker is never sent more than WARREN_MAX_THREADS requests at
 * once, so more threads could never be busy: the count is capped, and the
 * cap said in the log. 0, or -1 for a value that is not a count.
 */
int wr_rt_threads(const char *var, unsigned *threads);

/* "thread_stack_size" from var: 0 (the default) when unset; else bytes, a
 * multiple of the page size and at least the smallest stack. 0 or -1. */
int wr_rt_stack_size(const char *var, size_t *bytes);

#endif
