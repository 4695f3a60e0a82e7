/*
 * warren-python: serving requests. With "threads" 1 the main thread
 * accepts and serves one request after the other. With N > 1 the worker
 * starts N serving threads (with "thread_stack_size", when set), each
 * doing the same on the one channel, which libwarren makes thread-safe
 * (warren_init_threads): so up to N requests run at once, and the router
 * sends the worker that many. The main thread only waits for them, GIL
 * released.
 *
 * A serving thread holds the GIL only while in Python: every libwarren
 * call that may block (accept, read, write, finish) and every file read
 * runs with it released (Py_BEGIN_ALLOW_THREADS), so one request waiting
 * for its client never holds up the others. Each thread has its own
 * wsgi.errors, so the lines of concurrent requests never mix.
 *
 * The threads start in the worker, after the zygote forked it (main.c),
 * never in the zygote: threads do not survive a fork. The worker ends when
 * the router closes the channel (a retired generation, limits.requests):
 * each thread's accept then returns NULL once its request is done.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/python/wpy.h"

/* One serving loop (the main thread's, or one thread's). */
typedef struct {
    warren_ctx_t  *ctx;
    wpy_targets_t *ts;
    PyObject      *errors;      /* its wsgi.errors */
    pthread_t      th;
    int            err;         /* errno its last accept ended with */
    char           why[WPY_LINE_MAX];   /* warren_error() then */
} server_t;

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
static void serve(server_t *srv, warren_req_t *req)
{
    wpy_target_t *t = wpy_target_pick(srv->ts, req);
    wpy_exchange_t *ex = wpy_exchange_new(srv->ctx, req, srv->errors);
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
    environ = input != NULL ? wpy_environ_new(req, input, t, srv->errors)
                            : NULL;
    start = environ != NULL ? PyObject_GetAttrString((PyObject *) ex,
                                                     "start_response")
                            : NULL;
    if (start != NULL)
        result = PyObject_CallFunctionObjArgs(t->app, environ, start, NULL);
    if (result != NULL) {
        rc = wpy_exchange_send_result(ex, result);
        close_result(result);
    }
    wpy_errors_flush(srv->errors);            /* logged before the end */
    wpy_exchange_end(ex, rc);
    if (input != NULL)
        wpy_input_detach(input);
    wpy_errors_flush(srv->errors);
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

/* Serves until the router closes the channel (GIL held). */
static void serve_loop(server_t *srv)
{
    warren_req_t *req;

    srv->errors = wpy_errors_new();
    if (srv->errors == NULL) {
        wpy_log_exception("cannot set up wsgi.errors");
        srv->err = ENOMEM;
        snprintf(srv->why, sizeof(srv->why), "out of memory");
        return;
    }
    while ((req = accept_request(srv->ctx)) != NULL)
        serve(srv, req);
    srv->err = errno;
    snprintf(srv->why, sizeof(srv->why), "%s", warren_error(srv->ctx));
    wpy_errors_flush(srv->errors);
    Py_CLEAR(srv->errors);
}

/* The router closing the channel is the normal end of a worker (a retired
 * generation, limits.requests, a request whose client left): a reset, or
 * a broken pipe while answering, says the same. 0, or -1 logged. */
static int outcome(const server_t *srv)
{
    if (srv->err == 0 || srv->err == ECONNRESET || srv->err == EPIPE)
        return 0;
    wpy_log("channel failed: %s", srv->why);
    return -1;
}

static void *serving_thread(void *arg)
{
    server_t *srv = arg;
    PyGILState_STATE gil = PyGILState_Ensure();

    serve_loop(srv);
    PyGILState_Release(gil);
    return NULL;
}

/* Starts the serving threads and waits for them, GIL released: 0, or -1
 * when none could start or one saw the channel fail. */
static int serve_threads(server_t *srv, unsigned n, size_t stack_size)
{
    pthread_attr_t attr;
    PyThreadState *main_state;
    unsigned started = 0;
    int rc;

    rc = pthread_attr_init(&attr);
    if (rc == 0 && stack_size > 0)
        rc = pthread_attr_setstacksize(&attr, stack_size);
    if (rc != 0) {
        wpy_log("pthread_attr_setstacksize(%zu) failed: %s", stack_size,
                strerror(rc));
        return -1;
    }
    main_state = PyEval_SaveThread();
    for (; started < n; started++) {
        rc = pthread_create(&srv[started].th, &attr, serving_thread,
                            &srv[started]);
        if (rc != 0) {
            /* Those that started serve; the others' requests wait. */
            wpy_log("pthread_create(serving thread %u of %u) failed: %s",
                    started + 1, n, strerror(rc));
            break;
        }
    }
    for (unsigned i = 0; i < started; i++)
        pthread_join(srv[i].th, NULL);
    PyEval_RestoreThread(main_state);
    pthread_attr_destroy(&attr);
    if (started == 0)
        return -1;
    rc = 0;
    for (unsigned i = 0; i < started && rc == 0; i++)
        rc = outcome(&srv[i]);
    return rc;
}

int wpy_serve(warren_ctx_t *ctx, wpy_targets_t *ts, const wpy_options_t *o)
{
    server_t srv[WARREN_MAX_THREADS];
    unsigned n = o->threads;

    memset(srv, 0, sizeof(srv));
    for (unsigned i = 0; i < n; i++) {
        srv[i].ctx = ctx;
        srv[i].ts = ts;
    }
    if (n <= 1) {
        serve_loop(&srv[0]);
        return outcome(&srv[0]);
    }
    return serve_threads(srv, n, o->stack_size);
}
