/*
 * warren-python: one request's response, as PEP 3333 wants it.
 *
 * start_response() only records the status and headers (in libwarren's
 * pending head); the head goes to the router with the first non-empty
 * body bytes, or when the response ends: until then an error handler may
 * still replace it (exc_info), and an exception becomes a clean 500.
 * Body bytes go out as the application produces them, each chunk through
 * warren_write, which waits for the router's credit: a slow client slows
 * the application instead of filling memory.
 */
#include <errno.h>
#include <string.h>

#include "runtime/python/wpy.h"

#define ERROR_BODY  "Internal Server Error\n"
#define TEXT_PLAIN  "text/plain"

wpy_exchange_t *wpy_exchange_new(warren_ctx_t *ctx, warren_req_t *req,
                                 PyObject *errors)
{
    wpy_exchange_t *ex = PyObject_New(wpy_exchange_t, &wpy_exchange_type);

    if (ex == NULL)
        return NULL;
    ex->ctx = ctx;
    ex->req = req;
    ex->errors = errors;
    ex->started = ex->head_sent = ex->chan_failed = false;
    ex->chan_errno = 0;
    return ex;
}

static void exchange_dealloc(PyObject *self)
{
    PyObject_Free(self);
}

/* A channel call failed with err: raises the matching OSError subclass
 * (ConnectionAbortedError when the router aborted the request). */
static int chan_error(wpy_exchange_t *ex, int err)
{
    PyObject *exc;

    ex->chan_failed = true;
    ex->chan_errno = err;
    exc = PyObject_CallFunction(PyExc_OSError, "is", err,
                                warren_error(ex->ctx));
    if (exc != NULL) {
        PyErr_SetObject((PyObject *) Py_TYPE(exc), exc);
        Py_DECREF(exc);
    }
    return -1;
}

static int request_over(const char *call)
{
    PyErr_Format(PyExc_RuntimeError, "%s called after the request ended",
                 call);
    return -1;
}

int wpy_exchange_check_started(wpy_exchange_t *ex)
{
    if (ex->started)
        return 0;
    PyErr_SetString(PyExc_RuntimeError,
                    "the application did not call start_response() "
                    "before its response body (or at all)");
    return -1;
}

int wpy_exchange_write(wpy_exchange_t *ex, const void *p, size_t n)
{
    warren_req_t *req = ex->req;
    int rc, err;

    if (req == NULL)
        return request_over("write()");
    if (n == 0)
        return 0;
    ex->head_sent = true;
    Py_BEGIN_ALLOW_THREADS
    rc = warren_write(req, p, n);
    err = errno;
    Py_END_ALLOW_THREADS
    return rc < 0 ? chan_error(ex, err) : 0;
}

/* The last body bytes: they end the response in the same message (one
 * datagram for a small response, warren_write_end). */
static int write_end(wpy_exchange_t *ex, const void *p, size_t n)
{
    int rc, err;

    /* What the app logged is out before its response is complete. */
    wpy_errors_flush(ex->errors);
    ex->head_sent = true;
    Py_BEGIN_ALLOW_THREADS
    rc = warren_write_end(ex->req, p, n);
    err = errno;
    Py_END_ALLOW_THREADS
    return rc < 0 ? chan_error(ex, err) : 0;
}

/* One body chunk: any bytes-like object; empty ones send nothing, unless
 * last (then the response ends with it). */
static int send_chunk(wpy_exchange_t *ex, PyObject *chunk, bool last)
{
    Py_buffer view;
    int rc = 0;

    if (!PyObject_CheckBuffer(chunk)) {
        PyErr_Format(PyExc_TypeError,
                     "response body items must be bytes, not %s",
                     Py_TYPE(chunk)->tp_name);
        return -1;
    }
    if (PyObject_GetBuffer(chunk, &view, PyBUF_SIMPLE) < 0)
        return -1;
    if (last)
        rc = wpy_exchange_check_started(ex) < 0 ? -1
             : write_end(ex, view.buf, (size_t) view.len);
    else if (view.len > 0)
        rc = wpy_exchange_check_started(ex) < 0 ? -1
             : wpy_exchange_write(ex, view.buf, (size_t) view.len);
    PyBuffer_Release(&view);
    return rc;
}

/* ------------------------------------------------------- start_response */

/* "200 OK": three digits, then a space and a reason, or nothing. The
 * reason itself does not travel: the router writes the status line. */
static int parse_status(PyObject *status, int *code)
{
    Py_ssize_t n;
    const char *s;

    if (!PyUnicode_Check(status)) {
        PyErr_Format(PyExc_TypeError, "status must be a str, not %s",
                     Py_TYPE(status)->tp_name);
        return -1;
    }
    s = PyUnicode_AsUTF8AndSize(status, &n);
    if (s == NULL)
        return -1;
    for (Py_ssize_t i = 0; i < n; i++)
        if ((unsigned char) s[i] < ' ' || s[i] == '\x7f')
            goto bad;
    if (n < WPY_STATUS_DIGITS || (n > WPY_STATUS_DIGITS && s[3] != ' '))
        goto bad;
    *code = 0;
    for (int i = 0; i < WPY_STATUS_DIGITS; i++) {
        if (s[i] < '0' || s[i] > '9')
            goto bad;
        *code = *code * 10 + (s[i] - '0');
    }
    if (*code >= WPY_STATUS_MIN)
        return 0;
bad:
    PyErr_Format(PyExc_ValueError,
                 "bad status %R: expected a code 100-999 and a reason, "
                 "like \"200 OK\"", status);
    return -1;
}

/* libwarren refused a field: the app's fault (bad name, CR/LF in the
 * value, head too large) or the request's end. */
static int head_error(wpy_exchange_t *ex, PyObject *name)
{
    int err = errno;

    if (err == ENOMEM) {
        PyErr_NoMemory();
        return -1;
    }
    if (err != EINVAL && err != EMSGSIZE)
        return chan_error(ex, err);
    if (name == NULL)
        PyErr_Format(PyExc_ValueError, "bad response head: %s",
                     warren_error(ex->ctx));
    else
        PyErr_Format(PyExc_ValueError, "bad response header %R: %s", name,
                     warren_error(ex->ctx));
    return -1;
}

static int add_header(wpy_exchange_t *ex, Py_ssize_t i, PyObject *item)
{
    PyObject *name, *value, *nb = NULL, *vb = NULL;
    int rc = -1;

    if (!(PyTuple_Check(item) || PyList_Check(item))
        || PySequence_Fast_GET_SIZE(item) != 2) {
        PyErr_Format(PyExc_TypeError, "response header %zd must be a "
                     "(name, value) tuple, not %s", i, Py_TYPE(item)->tp_name);
        return -1;
    }
    name = PySequence_Fast_GET_ITEM(item, 0);
    value = PySequence_Fast_GET_ITEM(item, 1);
    if (!PyUnicode_Check(name) || !PyUnicode_Check(value)) {
        PyErr_Format(PyExc_TypeError, "response header %zd: name and value "
                     "must be str, not %s and %s", i,
                     Py_TYPE(name)->tp_name, Py_TYPE(value)->tp_name);
        return -1;
    }
    nb = PyUnicode_AsLatin1String(name);
    vb = nb != NULL ? PyUnicode_AsLatin1String(value) : NULL;
    if (vb != NULL) {
        rc = warren_response_add_header(ex->req, PyBytes_AS_STRING(nb),
                                        (size_t) PyBytes_GET_SIZE(nb),
                                        PyBytes_AS_STRING(vb),
                                        (size_t) PyBytes_GET_SIZE(vb));
        if (rc < 0)
            head_error(ex, name);
    }
    Py_XDECREF(nb);
    Py_XDECREF(vb);
    return rc;
}

/* Replaces the pending head with status code and headers. */
static int set_head(wpy_exchange_t *ex, int code, PyObject *headers)
{
    PyObject *seq;
    Py_ssize_t n;
    int rc = 0;

    seq = PySequence_Fast(headers, "response headers must be a list of "
                                   "(name, value) tuples");
    if (seq == NULL)
        return -1;
    n = PySequence_Fast_GET_SIZE(seq);
    if (warren_response_init(ex->req, code, (size_t) n) < 0)
        rc = head_error(ex, NULL);
    for (Py_ssize_t i = 0; i < n && rc == 0; i++)
        rc = add_header(ex, i, PySequence_Fast_GET_ITEM(seq, i));
    Py_DECREF(seq);
    return rc;
}

/*
 * exc_info given: when the head went out already, the error cannot be
 * told to the client any more, so PEP 3333 has it re-raised (-1). When
 * not, the new status and headers replace the old (0).
 */
static int reraise_if_sent(wpy_exchange_t *ex, PyObject *exc_info)
{
    PyObject *value, *tb;

    if (!PyTuple_Check(exc_info) || PyTuple_GET_SIZE(exc_info) != 3) {
        PyErr_SetString(PyExc_TypeError,
                        "exc_info must be a sys.exc_info() tuple");
        return -1;
    }
    value = PyTuple_GET_ITEM(exc_info, 1);
    tb = PyTuple_GET_ITEM(exc_info, 2);
    if (!ex->head_sent)
        return 0;
    if (!PyExceptionInstance_Check(value)) {
        PyErr_SetString(PyExc_RuntimeError, "start_response() called with "
                        "exc_info after the response head was sent");
        return -1;
    }
    tb = PyTraceBack_Check(tb) ? Py_NewRef(tb) : NULL;
    PyErr_Restore(Py_NewRef((PyObject *) Py_TYPE(value)), Py_NewRef(value),
                  tb);
    return -1;
}

static PyObject *ex_start_response(PyObject *self, PyObject *args,
                                   PyObject *kw)
{
    static char *names[] = { "status", "headers", "exc_info", NULL };
    wpy_exchange_t *ex = (wpy_exchange_t *) self;
    PyObject *status, *headers, *exc_info = Py_None;
    int code;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|O:start_response", names,
                                     &status, &headers, &exc_info))
        return NULL;
    if (ex->req == NULL) {
        request_over("start_response()");
        return NULL;
    }
    if (exc_info != Py_None) {
        if (reraise_if_sent(ex, exc_info) < 0)
            return NULL;
    } else if (ex->started) {
        PyErr_SetString(PyExc_RuntimeError, "start_response() called "
                        "again without exc_info");
        return NULL;
    }
    if (parse_status(status, &code) < 0)
        return NULL;
    ex->started = false;    /* until the whole new head is accepted */
    if (set_head(ex, code, headers) < 0)
        return NULL;
    ex->started = true;
    return PyObject_GetAttrString(self, "write");
}

/* The write() callable start_response returns (PEP 3333's imperative
 * API, for old frameworks): sends at once. */
static PyObject *ex_write(PyObject *self, PyObject *data)
{
    wpy_exchange_t *ex = (wpy_exchange_t *) self;

    if (ex->req == NULL) {
        request_over("write()");
        return NULL;
    }
    if (send_chunk(ex, data, false) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* -------------------------------------------------------------- the body */

int wpy_exchange_send_result(wpy_exchange_t *ex, PyObject *result)
{
    PyObject *it, *chunk;
    int rc = 0;

    if (Py_IS_TYPE(result, &wpy_filewrap_type)) {
        rc = wpy_filewrap_send(ex, result);
        if (rc != 0)
            return rc < 0 ? -1 : wpy_exchange_check_started(ex);
    }
    /* A list or tuple (the common case): its last item is known, so it
     * ends the response in the same message. Iterating one runs no
     * application code, so nothing can fail after the end. */
    if (PyList_CheckExact(result) || PyTuple_CheckExact(result)) {
        PyObject *seq = Py_NewRef(result);
        Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);

        for (Py_ssize_t i = 0; rc == 0 && i < n; i++) {
            chunk = Py_NewRef(PySequence_Fast_GET_ITEM(seq, i));
            rc = send_chunk(ex, chunk, i == n - 1);
            Py_DECREF(chunk);
        }
        Py_DECREF(seq);
        return rc < 0 ? -1 : wpy_exchange_check_started(ex);
    }
    it = PyObject_GetIter(result);
    if (it == NULL)
        return -1;
    while (rc == 0 && (chunk = PyIter_Next(it)) != NULL) {
        rc = send_chunk(ex, chunk, false);
        Py_DECREF(chunk);
    }
    Py_DECREF(it);
    if (rc < 0 || PyErr_Occurred())
        return -1;
    return wpy_exchange_check_started(ex);
}

/* ------------------------------------------------------------------ end */

static void finish(wpy_exchange_t *ex, warren_req_t *req)
{
    int rc, err;

    Py_BEGIN_ALLOW_THREADS
    rc = warren_finish(req);
    err = errno;
    Py_END_ALLOW_THREADS
    /* ECONNABORTED: the client left; nothing anyone can do about it. */
    if (rc < 0 && err != ECONNABORTED)
        wpy_log("cannot finish the response: %s", warren_error(ex->ctx));
}

static void cut(warren_req_t *req)
{
    Py_BEGIN_ALLOW_THREADS
    warren_abort(req);
    Py_END_ALLOW_THREADS
}

/* A short 500, whatever start_response had set. */
static void answer_error(wpy_exchange_t *ex, warren_req_t *req)
{
    int rc;

    Py_BEGIN_ALLOW_THREADS
    rc = warren_response_init(req, WPY_STATUS_ERROR, 1);
    if (rc == 0)
        rc = warren_response_add_header(req, "Content-Type",
                                        strlen("Content-Type"), TEXT_PLAIN,
                                        strlen(TEXT_PLAIN));
    if (rc == 0)
        rc = warren_write(req, ERROR_BODY, strlen(ERROR_BODY));
    Py_END_ALLOW_THREADS
    if (rc == 0)
        finish(ex, req);
    else
        cut(req);
}

void wpy_exchange_end(wpy_exchange_t *ex, int rc)
{
    warren_req_t *req = ex->req;
    char what[WPY_LINE_MAX];

    if (rc == 0) {
        ex->req = NULL;
        finish(ex, req);
        return;
    }
    if (ex->chan_failed) {
        /* The exception is our own OSError from the channel: no app bug,
         * and no use answering. */
        PyErr_Clear();
        /* Aborted, or the router closed the channel (its client left):
         * the router knows; nothing to report. */
        if (ex->chan_errno != ECONNABORTED && ex->chan_errno != EPIPE
            && ex->chan_errno != ECONNRESET)
            wpy_log("request failed: %s", warren_error(ex->ctx));
        ex->req = NULL;
        cut(req);
        return;
    }
    snprintf(what, sizeof(what), "exception in the application (%s %s)%s",
             warren_req_method(req, NULL), warren_req_target(req, NULL),
             ex->head_sent ? ", response cut" : ", answered 500");
    wpy_log_exception(what);
    ex->req = NULL;
    if (ex->head_sent)
        cut(req);
    else
        answer_error(ex, req);
}

static PyMethodDef exchange_methods[] = {
    { "start_response", (PyCFunction) (void (*)(void)) ex_start_response,
      METH_VARARGS | METH_KEYWORDS,
      "start_response(status, headers, exc_info=None) -> write" },
    { "write", ex_write, METH_O, "write(data): send body bytes now" },
    { NULL, NULL, 0, NULL },
};

PyTypeObject wpy_exchange_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "warren.Exchange",
    .tp_basicsize = sizeof(wpy_exchange_t),
    .tp_dealloc = exchange_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "one request's response: start_response and write",
    .tp_methods = exchange_methods,
};
