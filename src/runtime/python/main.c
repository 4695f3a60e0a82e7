/*
 * warren-python: the Python WSGI runtime (PEP 3333), a worker program on
 * libwarren. The router runs it once per worker; it embeds CPython, loads
 * the application once, then serves requests (one at a time, or several
 * at once in threads: serve.c) until the router closes the channel. Only this program links libpython: warrend
 * never does.
 *
 * Environment (besides WARREN_CHANNEL_FD, WARREN_APP_NAME and
 * WARREN_WORKER_ID, see warren.h). Unset and empty mean the same.
 *   WARREN_PYTHON_MODULE    the module to import: "wsgi", "mysite.wsgi"
 *                           (required)
 *   WARREN_PYTHON_CALLABLE  the WSGI callable in it, default "application";
 *                           a dotted name ("app.wsgi_app") is an attribute
 *                           path
 *   WARREN_PYTHON_FACTORY   "1": the callable is a factory, called once
 *                           with no arguments to get the application; "0"
 *                           (default): it is the application
 *   WARREN_PYTHON_PATH      colon-separated directories put first on
 *                           sys.path, in order; when unset, the working
 *                           directory is
 *   WARREN_PYTHON_HOME      a virtual environment (a directory with
 *                           pyvenv.cfg: its site-packages are used), or
 *                           else a Python installation prefix (PYTHONHOME)
 *   WARREN_PYTHON_PREFIX    the URL path the application is mounted at:
 *                           a request path under it has SCRIPT_NAME set
 *                           to it and PATH_INFO to the rest ("/" or unset:
 *                           no prefix)
 *   WARREN_PYTHON_TARGETS   the application's "targets" as a JSON object
 *                           (then MODULE & co. are unset): every target is
 *                           loaded, each request runs the one the router
 *                           names (targets.c)
 *   WARREN_PYTHON_THREADS   requests served at once, each in a thread of
 *                           its own (default 1: on the main thread; above
 *                           WARREN_MAX_THREADS, capped to it): serve.c
 *   WARREN_PYTHON_THREAD_STACK_SIZE
 *                           bytes of stack of those threads (a multiple
 *                           of the page size; default: the system's)
 *   WARREN_ZYGOTE_FD        zygote mode (src/app/zygote.h, zygote.c): load
 *                           the application, then fork a worker for each
 *                           request of the prototype on this socket; the
 *                           forked workers continue below as if exec'd
 * The PYTHON* variables of CPython itself are honoured as usual.
 *
 * Start order: options, interpreter, import of the application (and the
 * factory call), and only then warren_init(), which says HELLO. So a
 * worker that cannot load its application exits before HELLO; the router
 * takes that as a failed start and shows the last line of its stderr,
 * which is always a one-line cause such as
 *   warren-python[blog:812]: cannot import module "wsgi": ModuleNotFoundError: No module named 'wsgi'
 * (a traceback, when useful, comes before it).
 *
 * Exit status: 0 when the router closed the channel; 1 when the channel
 * failed; 69 when warren_init failed (no usable WARREN_CHANNEL_FD); 70
 * when the application failed to load; 71 when Python did not start; 78
 * for a bad WARREN_PYTHON_* value (wpy.h).
 *
 * Errors in a request: an exception before the response head went out is
 * logged with its traceback and answered 500; after, the response is cut
 * (warren_abort). Either way the iterable's close() is called.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "app/zygote.h"
#include "runtime/common/zygote.h"
#include "runtime/python/asgi.h"
#include "runtime/python/wpy.h"

/* The channel must not leak into processes the application starts while
 * it loads (os.system in a settings module): warren_init sets close-on-
 * exec too, but only after the import. A bad value is warren_init's to
 * report. */
static void channel_cloexec(void)
{
    const char *v = getenv(WARREN_ENV_CHANNEL_FD);
    char *end;
    long fd;

    if (v == NULL)
        return;
    errno = 0;
    fd = strtol(v, &end, 10);
    if (errno == 0 && *end == '\0' && end != v && fd >= 0 && fd <= INT_MAX)
        fcntl((int) fd, F_SETFD, FD_CLOEXEC);
}

int main(void)
{
    wpy_options_t opt;
    wpy_targets_t ts;
    warren_ctx_t *ctx;
    int rc, zfd, asgi;

    if (wpy_options_read(&opt) < 0)
        return WR_RT_EXIT_CONFIG;
    zfd = wr_zygote_fd();
    if (zfd == -2) {
        wpy_log(WR_ZYGOTE_ENV_FD " is not a descriptor number");
        return WR_RT_EXIT_CONFIG;
    }
    channel_cloexec();
    if (wpy_python_start(&opt) < 0)
        return WR_RT_EXIT_LANG;
    if (wpy_targets_load(&opt, &ts) < 0)
        return WR_RT_EXIT_APP;
    /* ASGI (asgi.c): chosen where the app is loaded, served by a loop
     * that only a worker runs. */
    asgi = wpy_asgi_choose(&ts);
    if (asgi < 0)
        return WR_RT_EXIT_APP;
    if (zfd >= 0) {
        rc = wpy_zygote_run(zfd);
        if (rc <= 0) {                  /* the zygote itself ends */
            wpy_targets_free(&ts);
            Py_FinalizeEx();
            return rc < 0 ? WR_RT_EXIT_CHANNEL : WR_RT_EXIT_OK;
        }
    }
    if (asgi)
        return wpy_asgi_main(&ts);
    ctx = warren_init_threads(opt.threads);
    if (ctx == NULL) {
        wpy_log("cannot reach the router: " WARREN_ENV_CHANNEL_FD ": %s",
                strerror(errno));
        return WR_RT_EXIT_NO_ROUTER;
    }
    rc = wpy_serve(ctx, &ts, &opt);
    warren_done(ctx);
    wpy_targets_free(&ts);
    /* atexit handlers, logging shutdown, buffered output. */
    if (Py_FinalizeEx() < 0 && rc == 0)
        wpy_log("Python finalization failed");
    return rc < 0 ? WR_RT_EXIT_CHANNEL : WR_RT_EXIT_OK;
}
