/*
 * warren-python: the Python WSGI runtime (PEP 3333), a worker program on
 * libwarren. The router runs it once per worker; it embeds CPython, loads
 * the application once, then serves requests one at a time until the
 * router closes the channel. Only this program links libpython: warrend
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

/* Calls result.close() if it has one (PEP 3333: always, also after an
 * error); an exception pending from before survives it. */
static void close_result(PyObject *result)
{
    PyObject *type, *value, *tb, *close, *rc;

    PyErr_Fetch(&type, &value, &tb);
    close = PyObject_GetAttrString(result, "close");
    if (close == NULL) {
        if (PyErr_ExceptionMatches(PyExc_AttributeError))
            PyErr_Clear();
        else
            wpy_log_exception("cannot get the response's close()");
    } else {
        rc = PyObject_CallNoArgs(close);
        Py_DECREF(close);
        if (rc == NULL)
            wpy_log_exception("exception in the response's close()");
        Py_XDECREF(rc);
    }
    PyErr_Restore(type, value, tb);
}

/* Runs the application on one request, start to end. */
static void serve(warren_ctx_t *ctx, warren_req_t *req, wpy_targets_t *ts)
{
    wpy_target_t *t = wpy_target_pick(ts, req);
    wpy_exchange_t *ex = wpy_exchange_new(ctx, req);
    PyObject *input = NULL, *environ = NULL, *start = NULL, *result = NULL;
    int rc = -1;

    if (ex != NULL && t == NULL) {
        size_t n;
        const char *name = warren_req_target_name(req, &n);
        PyObject *text = PyUnicode_DecodeLatin1(name, (Py_ssize_t) n, NULL);
        if (text != NULL) {
            PyErr_Format(PyExc_LookupError, "no target \"%U\" in this application",
                         text);
            Py_DECREF(text);
        }
        wpy_exchange_end(ex, -1);
        Py_DECREF(ex);
        return;
    }
    if (ex == NULL) {
        wpy_log_exception("cannot set up a request");
        warren_abort(req);
        return;
    }
    input = wpy_input_new(ex);
    environ = input != NULL ? wpy_environ_new(req, input, t) : NULL;
    start = environ != NULL ? PyObject_GetAttrString((PyObject *) ex,
                                                     "start_response")
                            : NULL;
    if (start != NULL)
        result = PyObject_CallFunctionObjArgs(t->app, environ, start, NULL);
    if (result != NULL) {
        rc = wpy_exchange_send_result(ex, result);
        close_result(result);
    }
    wpy_errors_flush(wpy_environ_errors());   /* logged before the end */
    wpy_exchange_end(ex, rc);
    if (input != NULL)
        wpy_input_detach(input);
    wpy_errors_flush(wpy_environ_errors());
    Py_XDECREF(result);
    Py_XDECREF(start);
    Py_XDECREF(environ);
    Py_XDECREF(input);
    Py_DECREF(ex);
}

static warren_req_t *accept_request(warren_ctx_t *ctx)
{
    warren_req_t *req;

    Py_BEGIN_ALLOW_THREADS
    req = warren_accept(ctx);
    Py_END_ALLOW_THREADS
    return req;
}

/* Serves until the router closes the channel: 0, or -1 when it failed. */
static int serve_all(warren_ctx_t *ctx, wpy_targets_t *ts)
{
    warren_req_t *req;

    while ((req = accept_request(ctx)) != NULL)
        serve(ctx, req, ts);
    /* The router closing the channel is the normal end of a worker (a
     * retired generation, limits.requests, a request whose client left):
     * a reset, or a broken pipe while answering, says the same. */
    if (errno == 0 || errno == ECONNRESET || errno == EPIPE)
        return 0;
    wpy_log("channel failed: %s", warren_error(ctx));
    return -1;
}

/* WR_ZYGOTE_ENV_FD: the fd of the zygote socket, or -1 (a plain worker). */
static int zygote_fd(void)
{
    const char *v = getenv(WR_ZYGOTE_ENV_FD);
    char *end;
    long fd;

    if (v == NULL || v[0] == '\0')
        return -1;
    errno = 0;
    fd = strtol(v, &end, 10);
    if (errno != 0 || *end != '\0' || fd < 0 || fd > INT_MAX)
        return -2;
    fcntl((int) fd, F_SETFD, FD_CLOEXEC);
    return (int) fd;
}

int main(void)
{
    wpy_options_t opt;
    wpy_targets_t ts;
    warren_ctx_t *ctx;
    int rc, zfd, asgi;

    if (wpy_options_read(&opt) < 0)
        return WPY_EXIT_CONFIG;
    zfd = zygote_fd();
    if (zfd == -2) {
        wpy_log(WR_ZYGOTE_ENV_FD " is not a descriptor number");
        return WPY_EXIT_CONFIG;
    }
    channel_cloexec();
    if (wpy_python_start(&opt) < 0)
        return WPY_EXIT_PYTHON;
    if (wpy_targets_load(&opt, &ts) < 0)
        return WPY_EXIT_APP;
    /* ASGI (asgi.c): chosen where the app is loaded, served by a loop
     * that only a worker runs. */
    asgi = wpy_asgi_choose(&ts);
    if (asgi < 0)
        return WPY_EXIT_APP;
    if (zfd >= 0) {
        rc = wpy_zygote_run(zfd);
        if (rc <= 0) {                  /* the zygote itself ends */
            wpy_targets_free(&ts);
            Py_FinalizeEx();
            return rc < 0 ? WPY_EXIT_CHANNEL : WPY_EXIT_OK;
        }
    }
    if (asgi)
        return wpy_asgi_main(&ts);
    ctx = warren_init();
    if (ctx == NULL) {
        wpy_log("cannot reach the router: " WARREN_ENV_CHANNEL_FD ": %s",
                strerror(errno));
        return WPY_EXIT_NO_ROUTER;
    }
    rc = serve_all(ctx, &ts);
    warren_done(ctx);
    wpy_targets_free(&ts);
    /* atexit handlers, logging shutdown, buffered output. */
    if (Py_FinalizeEx() < 0 && rc == 0)
        wpy_log("Python finalization failed");
    return rc < 0 ? WPY_EXIT_CHANNEL : WPY_EXIT_OK;
}
