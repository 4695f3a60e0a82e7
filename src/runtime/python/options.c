/*
 * warren-python: the application's options, read from the environment the
 * router starts the worker with (the names are in wpy.h, their meaning in
 * main.c). Everything is checked before Python starts, so a bad option is
 * reported as itself, not as some later import failure.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/python/wpy.h"

/* An unset variable and an empty one mean the same: absent. */
static const char *env(const char *name)
{
    const char *v = getenv(name);

    return v != NULL && v[0] != '\0' ? v : NULL;
}

static int read_factory(wpy_options_t *o)
{
    const char *v = env(WPY_ENV_FACTORY);

    if (v == NULL || strcmp(v, "0") == 0)
        o->factory = false;
    else if (strcmp(v, "1") == 0)
        o->factory = true;
    else {
        wpy_log(WPY_ENV_FACTORY " must be 0 or 1, not \"%s\"", v);
        return -1;
    }
    return 0;
}

/* "/" and "" mean no prefix; "/app/" is "/app": SCRIPT_NAME never ends
 * with a slash (PEP 3333: PATH_INFO carries it). */
static int read_prefix(wpy_options_t *o)
{
    const char *v = env(WPY_ENV_PREFIX);
    size_t n;

    o->prefix = "";
    o->prefix_len = 0;
    if (v == NULL)
        return 0;
    if (v[0] != '/') {
        wpy_log(WPY_ENV_PREFIX " must start with \"/\", not \"%s\"", v);
        return -1;
    }
    n = strlen(v);
    while (n > 0 && v[n - 1] == '/')
        n--;
    o->prefix = v;
    o->prefix_len = n;
    return 0;
}

static int read_home(wpy_options_t *o)
{
    struct stat st;

    o->home = env(WPY_ENV_HOME);
    if (o->home == NULL)
        return 0;
    if (stat(o->home, &st) < 0) {
        wpy_log(WPY_ENV_HOME " \"%s\": %s", o->home, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        wpy_log(WPY_ENV_HOME " \"%s\": not a directory", o->home);
        return -1;
    }
    return 0;
}

/* A positive decimal that fits max, or -1. */
static long long positive(const char *v, long long max)
{
    char *end;
    long long n;

    errno = 0;
    n = strtoll(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || n < 1 || n > max)
        return -1;
    return n;
}

/*
 * "threads" (Unit: any count from 1). A worker serves at most
 * WARREN_MAX_THREADS requests at once (the channel's streams), so more
 * threads could never be busy: the count is capped, and the cap said once
 * (by the zygote, or by each worker started without one).
 */
static int read_threads(wpy_options_t *o)
{
    const char *v = env(WPY_ENV_THREADS);
    long long n;

    o->threads = 1;
    if (v == NULL)
        return 0;
    n = positive(v, INT_MAX);
    if (n < 0) {
        wpy_log(WPY_ENV_THREADS " must be a number from 1, not \"%s\"", v);
        return -1;
    }
    if (n > WARREN_MAX_THREADS) {
        wpy_log("\"threads\": %lld capped at %d, the requests a worker is "
                "sent at once", n, WARREN_MAX_THREADS);
        n = WARREN_MAX_THREADS;
    }
    o->threads = (unsigned) n;
    return 0;
}

/* "thread_stack_size": bytes, a multiple of the page size, at least the
 * smallest stack a thread may have (the configuration checked it too). */
static int read_stack_size(wpy_options_t *o)
{
    const char *v = env(WPY_ENV_STACK_SIZE);
    long page = sysconf(_SC_PAGESIZE);
    long min = sysconf(_SC_THREAD_STACK_MIN);
    long long n;

    o->stack_size = 0;
    if (v == NULL)
        return 0;
    n = positive(v, LLONG_MAX);
    if (n < 0 || (page > 0 && n % page != 0) || (min > 0 && n < min)) {
        wpy_log(WPY_ENV_STACK_SIZE " must be a multiple of %ld bytes and at "
                "least %ld, not \"%s\"", page, min, v);
        return -1;
    }
    o->stack_size = (size_t) n;
    return 0;
}

int wpy_options_read(wpy_options_t *o)
{
    memset(o, 0, sizeof(*o));
    o->app_name = env(WARREN_ENV_APP_NAME);
    wpy_log_init(o->app_name);
    o->module = env(WPY_ENV_MODULE);
    o->targets = env(WPY_ENV_TARGETS);
    if (o->module == NULL && o->targets == NULL) {
        wpy_log(WPY_ENV_MODULE " is not set: no application module to load");
        return -1;
    }
    o->callable = env(WPY_ENV_CALLABLE);
    if (o->callable == NULL)
        o->callable = WPY_DEFAULT_CALLABLE;
    o->path = env(WPY_ENV_PATH);
    if (read_factory(o) < 0 || read_prefix(o) < 0 || read_home(o) < 0
        || read_threads(o) < 0 || read_stack_size(o) < 0)
        return -1;
    return 0;
}
