/*
 * warren-python: the application's options, read from the environment the
 * router starts the worker with (the names are in wpy.h, their meaning in
 * main.c). Everything is checked before Python starts, so a bad option is
 * reported as itself, not as some later import failure.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/common/options.h"
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
        || wr_rt_threads(WPY_ENV_THREADS, &o->threads) < 0
        || wr_rt_stack_size(WPY_ENV_STACK_SIZE, &o->stack_size) < 0)
        return -1;
    return 0;
}
