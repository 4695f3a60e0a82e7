/*
 * warren-python: _warren_asgi, the C half of the ASGI driver. It gives the
 * driver the channel (Channel) and its requests (Request) through
 * libwarren's event-loop calls (warren.h, "event loops"), so nothing here
 * ever waits for the router: a call that cannot go on says so (None, or
 * fewer bytes written) and the driver awaits the channel's descriptor.
 *
 * Channel  connect(streams) says HELLO; fileno(), poll() (False once the
 *          router closed the channel), accept() (a Request or None),
 *          close().
 * Request  target (index of its target, -1: one the worker does not
 *          have), scope(), upgrade(), websocket(), describe(), read(), body_end(),
 *          aborted(), start(status, headers), write(data, offset, last),
 *          finish() (True: look at the channel again), fail(), abort().
 * log(text), log_exception(what, exc): lines on stderr as the rest of the
 * runtime writes them (log.c).
 *
 * A request aborted by the router raises ConnectionAbortedError from
 * read() and write(); a Request used after its end raises RuntimeError.
 * Every call holds the GIL (none blocks) except write(), which copies
 * body bytes into the channel.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "runtime/python/asgi.h"

#include <structmember.h>

#define ERROR_BODY   "Internal Server Error\n"
#define CONTENT_TYPE "Content-Type"
#define TEXT_PLAIN   "text/plain"
#define UPGRADE      "Upgrade"

typedef struct {
    PyObject_HEAD
    warren_ctx_t *ctx;          /* NULL once closed */
} chan_t;

typedef struct {
    PyObject_HEAD
    chan_t       *chan;         /* strong: the request lives in its ctx */
    warren_req_t *req;          /* NULL once finished or aborted */
    int           target;       /* index in targets, -1: none */
    bool          sent;         /* some of the response went out */
} areq_t;

static PyTypeObject chan_type, areq_type;
static wpy_targets_t *targets;
/* The one buffer read() copies body bytes into: the loop is the only
 * thread calling, and each read ends with a bytes object of its own. */
static unsigned char read_buf[WPY_ASGI_READ_MAX];

/* ----------------------------------------------------------- errors */

/* The OSError subclass errno maps to, with libwarren's text. */
static void *chan_error(warren_ctx_t *ctx, int err)
{
    PyObject *exc = PyObject_CallFunction(PyExc_OSError, "is", err,
                                          warren_error(ctx));

    if (exc != NULL) {
        PyErr_SetObject((PyObject *) Py_TYPE(exc), exc);
        Py_DECREF(exc);
    }
    return NULL;
}

static void *aborted_error(void)
{
    PyErr_SetString(PyExc_ConnectionAbortedError,
                    "the client went away (request aborted)");
    return NULL;
}

/* The request, or NULL with RuntimeError when it is over (or its channel
 * closed). */
static warren_req_t *live(areq_t *r)
{
    if (r->req == NULL || r->chan->ctx == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the request is over");
        return NULL;
    }
    return r->req;
}

/* ---------------------------------------------------------- Channel */

static PyObject *mod_connect(PyObject *self, PyObject *arg)
{
    long streams = PyLong_AsLong(arg);
    chan_t *c;
    int err;

    if (streams == -1 && PyErr_Occurred())
        return NULL;
    if (streams < 1 || streams > WARREN_MAX_THREADS) {
        PyErr_Format(PyExc_ValueError, "streams must be 1 to %d",
                     WARREN_MAX_THREADS);
        return NULL;
    }
    c = PyObject_New(chan_t, &chan_type);
    if (c == NULL)
        return NULL;
    c->ctx = warren_init_threads((unsigned) streams);
    if (c->ctx == NULL) {
        err = errno;
        Py_DECREF(c);
        errno = err;
        return PyErr_SetFromErrnoWithFilename(PyExc_OSError,
                                              WARREN_ENV_CHANNEL_FD);
    }
    return (PyObject *) c;
}

static void chan_dealloc(PyObject *self)
{
    chan_t *c = (chan_t *) self;

    warren_done(c->ctx);
    PyObject_Free(self);
}

static warren_ctx_t *chan_live(chan_t *c)
{
    if (c->ctx == NULL)
        PyErr_SetString(PyExc_RuntimeError, "the channel is closed");
    return c->ctx;
}

static PyObject *chan_fileno(PyObject *self, PyObject *unused)
{
    warren_ctx_t *ctx = chan_live((chan_t *) self);

    return ctx != NULL ? PyLong_FromLong(warren_fd(ctx)) : NULL;
}

/* True while the channel is open; False once the router closed it (the
 * normal end of a worker: a reset, or a broken pipe on a send, says the
 * same); OSError when it failed. */
static PyObject *chan_poll(PyObject *self, PyObject *unused)
{
    warren_ctx_t *ctx = chan_live((chan_t *) self);

    if (ctx == NULL)
        return NULL;
    if (warren_poll(ctx) >= 0)
        Py_RETURN_TRUE;
    if (errno == ECONNRESET || errno == EPIPE)
        Py_RETURN_FALSE;
    return chan_error(ctx, errno);
}

static int target_index(warren_req_t *req)
{
    wpy_target_t *t = wpy_target_pick(targets, req);

    return t != NULL ? (int) (t - targets->v) : -1;
}

/* The next request that arrived, or None. */
static PyObject *chan_accept(PyObject *self, PyObject *unused)
{
    chan_t *c = (chan_t *) self;
    warren_ctx_t *ctx = chan_live(c);
    warren_req_t *req;
    areq_t *r;

    if (ctx == NULL)
        return NULL;
    if (warren_pending(ctx) == 0)
        Py_RETURN_NONE;
    r = PyObject_New(areq_t, &areq_type);
    if (r == NULL)
        return NULL;
    req = warren_accept(ctx);   /* at once: one is pending */
    if (req == NULL) {
        r->chan = NULL;
        r->req = NULL;
        Py_DECREF(r);
        return chan_error(ctx, errno);
    }
    r->chan = (chan_t *) Py_NewRef(self);
    r->req = req;
    r->target = target_index(req);
    r->sent = false;
    return (PyObject *) r;
}

static PyObject *chan_close(PyObject *self, PyObject *unused)
{
    chan_t *c = (chan_t *) self;

    warren_done(c->ctx);        /* frees every request still held */
    c->ctx = NULL;
    Py_RETURN_NONE;
}

static PyMethodDef chan_methods[] = {
    { "fileno", chan_fileno, METH_NOARGS, "the channel's descriptor" },
    { "poll", chan_poll, METH_NOARGS,
      "take waiting messages: False once the router closed the channel" },
    { "accept", chan_accept, METH_NOARGS, "the next request, or None" },
    { "close", chan_close, METH_NOARGS, "close the channel" },
    { NULL, NULL, 0, NULL },
};

static PyTypeObject chan_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = WPY_ASGI_MODULE ".Channel",
    .tp_basicsize = sizeof(chan_t),
    .tp_dealloc = chan_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "a worker's channel to the router",
    .tp_methods = chan_methods,
};

/* ------------------------------------------------- Request: the head */

static void areq_dealloc(PyObject *self)
{
    areq_t *r = (areq_t *) self;

    /* Dropped before its end (a driver bug, or the interpreter ending):
     * the router must not wait for it. */
    if (r->req != NULL && r->chan->ctx != NULL)
        warren_abort(r->req);
    Py_XDECREF(r->chan);
    PyObject_Free(self);
}

static PyObject *areq_scope(PyObject *self, PyObject *unused)
{
    areq_t *r = (areq_t *) self;
    warren_req_t *req = live(r);

    if (req == NULL)
        return NULL;
    if (r->target < 0) {
        PyErr_SetString(PyExc_LookupError, "the request has no target");
        return NULL;
    }
    return wpy_asgi_scope(req, &targets->v[r->target]);
}

/* The Upgrade field of a request the router lets switch protocols
 * (warren_req_upgrade: a 101 opens a tunnel), or None. */
static PyObject *areq_upgrade(PyObject *self, PyObject *unused)
{
    warren_req_t *req = live((areq_t *) self);
    const char *v;
    size_t n;

    if (req == NULL)
        return NULL;
    if (!warren_req_upgrade(req))
        Py_RETURN_NONE;
    v = warren_req_header_get(req, UPGRADE, &n);
    if (v == NULL)
        Py_RETURN_NONE;
    return PyUnicode_DecodeLatin1(v, (Py_ssize_t) n, NULL);
}

/* settings.http.websocket for an upgrade request: (read_timeout,
 * keepalive_interval, max_frame_size), or None. */
static PyObject *areq_websocket(PyObject *self, PyObject *unused)
{
    warren_req_t *req = live((areq_t *) self);
    warren_websocket_t ws;

    if (req == NULL)
        return NULL;
    if (warren_req_websocket(req, &ws) < 0)
        Py_RETURN_NONE;
    return Py_BuildValue("(IIn)", ws.read_timeout, ws.keepalive_interval,
                         (Py_ssize_t) ws.max_frame_size);
}

/* "GET /a?b", for log lines (and the target name the router gave, for a
 * request that has no target here). */
static PyObject *areq_describe(PyObject *self, PyObject *unused)
{
    warren_req_t *req = live((areq_t *) self);
    char line[WPY_LINE_MAX];
    const char *name;
    size_t nn;
    int n;

    if (req == NULL)
        return NULL;
    name = warren_req_target_name(req, &nn);
    /* Cut at WPY_LINE_MAX, as every line we compose. */
    n = snprintf(line, sizeof(line), "%s %s%s%s%s",
                 warren_req_method(req, NULL), warren_req_target(req, NULL),
                 nn > 0 ? " (target \"" : "", name, nn > 0 ? "\")" : "");
    if (n < 0)
        n = 0;
    if ((size_t) n >= sizeof(line))
        n = (int) sizeof(line) - 1;
    return PyUnicode_DecodeLatin1(line, n, NULL);
}

/* ------------------------------------------------- Request: the body */

/* Body bytes that arrived (up to one window), b"" at the end of the body,
 * None when none is there yet. */
static PyObject *areq_read(PyObject *self, PyObject *unused)
{
    areq_t *r = (areq_t *) self;
    warren_req_t *req = live(r);
    unsigned ev;
    ssize_t n;

    if (req == NULL)
        return NULL;
    ev = warren_req_events(req);
    if (ev & WARREN_REQ_ABORTED)
        return aborted_error();
    if (!(ev & WARREN_REQ_READABLE))
        Py_RETURN_NONE;
    if (ev & WARREN_REQ_BODY_END)
        return PyBytes_FromStringAndSize(NULL, 0);
    n = warren_read(req, read_buf, sizeof(read_buf));
    if (n < 0)
        return errno == ECONNABORTED ? aborted_error()
                                     : chan_error(r->chan->ctx, errno);
    return PyBytes_FromStringAndSize((const char *) read_buf, n);
}

static PyObject *areq_body_end(PyObject *self, PyObject *unused)
{
    areq_t *r = (areq_t *) self;
    warren_req_t *req = live(r);

    if (req == NULL)
        return NULL;
    return PyBool_FromLong((warren_req_events(req) & WARREN_REQ_BODY_END) != 0);
}

static PyObject *areq_aborted(PyObject *self, PyObject *unused)
{
    areq_t *r = (areq_t *) self;

    if (r->req == NULL || r->chan->ctx == NULL)
        Py_RETURN_FALSE;        /* over: ended by us, not aborted */
    return PyBool_FromLong((warren_req_events(r->req) & WARREN_REQ_ABORTED) != 0);
}

/* --------------------------------------------- Request: the response */

/* libwarren refused the head: the application's fault (bad status or
 * field, head too large) or the request's end. */
static void *head_error(areq_t *r, PyObject *name)
{
    int err = errno;

    if (err == ENOMEM)
        return PyErr_NoMemory();
    if (err == ECONNABORTED)
        return aborted_error();
    if (err != EINVAL && err != EMSGSIZE)
        return chan_error(r->chan->ctx, err);
    if (name == NULL)
        PyErr_Format(PyExc_ValueError, "bad response status: %s",
                     warren_error(r->chan->ctx));
    else
        PyErr_Format(PyExc_ValueError, "bad response header %R: %s", name,
                     warren_error(r->chan->ctx));
    return NULL;
}

/* One [name, value] pair of byte strings. */
static int add_header(areq_t *r, warren_req_t *req, PyObject *pair)
{
    PyObject *seq = PySequence_Fast(pair, "a response header must be a "
                                          "[name, value] pair");
    Py_buffer name, value;
    int rc = -1;

    if (seq == NULL)
        return -1;
    if (PySequence_Fast_GET_SIZE(seq) != 2) {
        PyErr_SetString(PyExc_ValueError, "a response header must be a "
                        "[name, value] pair");
        Py_DECREF(seq);
        return -1;
    }
    if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(seq, 0), &name,
                           PyBUF_SIMPLE) < 0) {
        PyErr_SetString(PyExc_TypeError,
                        "response header names must be bytes");
        Py_DECREF(seq);
        return -1;
    }
    if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(seq, 1), &value,
                           PyBUF_SIMPLE) < 0) {
        PyErr_SetString(PyExc_TypeError,
                        "response header values must be bytes");
    } else {
        rc = warren_response_add_header(req, name.buf, (size_t) name.len,
                                        value.buf, (size_t) value.len);
        if (rc < 0)
            head_error(r, PySequence_Fast_GET_ITEM(seq, 0));
        PyBuffer_Release(&value);
    }
    PyBuffer_Release(&name);
    Py_DECREF(seq);
    return rc;
}

/* start(status, headers): the head the body will go out with. */
static PyObject *areq_start(PyObject *self, PyObject *args)
{
    areq_t *r = (areq_t *) self;
    warren_req_t *req = live(r);
    PyObject *status, *headers, *it, *pair;
    long code;

    if (req == NULL || !PyArg_ParseTuple(args, "OO:start", &status, &headers))
        return NULL;
    if (!PyLong_Check(status) || PyBool_Check(status)) {
        PyErr_Format(PyExc_TypeError, "the status must be an int, not %s",
                     Py_TYPE(status)->tp_name);
        return NULL;
    }
    code = PyLong_AsLong(status);
    if (code == -1 && PyErr_Occurred())
        return NULL;
    if (code < WPY_STATUS_MIN || code > WPY_STATUS_MAX) {
        PyErr_Format(PyExc_ValueError, "bad status %ld: not %d to %d", code,
                     WPY_STATUS_MIN, WPY_STATUS_MAX);
        return NULL;
    }
    it = PyObject_GetIter(headers);
    if (it == NULL)
        return NULL;
    if (warren_response_init(req, (int) code, 0) < 0) {
        Py_DECREF(it);
        return head_error(r, NULL);
    }
    while ((pair = PyIter_Next(it)) != NULL) {
        int rc = add_header(r, req, pair);

        Py_DECREF(pair);
        if (rc < 0)
            break;
    }
    Py_DECREF(it);
    if (PyErr_Occurred())
        return NULL;
    Py_RETURN_NONE;
}

/* Sends what fits of data[offset:] now (the router's credit decides);
 * with last, the response ends with its last byte. Returns the new
 * offset: len(data) when all of it went. */
static PyObject *areq_write(PyObject *self, PyObject *args)
{
    areq_t *r = (areq_t *) self;
    warren_req_t *req = live(r);
    Py_buffer data;
    Py_ssize_t off;
    int last, rc, err = 0;
    size_t left, k;

    if (req == NULL || !PyArg_ParseTuple(args, "y*np:write", &data, &off,
                                         &last))
        return NULL;
    if (off < 0 || off > data.len) {
        PyBuffer_Release(&data);
        PyErr_SetString(PyExc_ValueError, "offset out of range");
        return NULL;
    }
    if (warren_req_events(req) & WARREN_REQ_ABORTED) {
        PyBuffer_Release(&data);
        return aborted_error();
    }
    left = (size_t) (data.len - off);
    k = warren_write_room(req);
    if (k > left)
        k = left;
    if (k == 0 && left > 0) {           /* no credit: wait for a WINDOW */
        PyBuffer_Release(&data);
        return PyLong_FromSsize_t(off);
    }
    Py_BEGIN_ALLOW_THREADS
    if (last && k == left)
        rc = warren_write_end(req, (const char *) data.buf + off, k);
    else
        rc = warren_write(req, (const char *) data.buf + off, k);
    err = errno;
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&data);
    r->sent = true;
    if (rc < 0)
        return err == ECONNABORTED ? aborted_error()
                                   : chan_error(r->chan->ctx, err);
    return PyLong_FromSsize_t(off + (Py_ssize_t) k);
}

/* ------------------------------------------------ Request: the end */

/* Ends the request (the response is complete). Returns True when the
 * channel must be looked at again: warren_finish takes messages off it
 * when the body was not all read (warren.h), which the descriptor no
 * longer tells. */
static PyObject *areq_finish(PyObject *self, PyObject *unused)
{
    areq_t *r = (areq_t *) self;
    warren_req_t *req = live(r);
    bool took;

    if (req == NULL)
        return NULL;
    took = !(warren_req_events(req) & WARREN_REQ_BODY_END);
    r->req = NULL;
    warren_finish(req);     /* a failure is the router's to see: aborted */
    return PyBool_FromLong(took);
}

/* Ends the request abnormally: the client's connection is cut. */
static PyObject *areq_abort(PyObject *self, PyObject *unused)
{
    areq_t *r = (areq_t *) self;

    if (r->req != NULL && r->chan->ctx != NULL)
        warren_abort(r->req);
    r->req = NULL;
    Py_RETURN_NONE;
}

/* The application failed: a 500 if nothing went out yet, else a cut. */
static PyObject *areq_fail(PyObject *self, PyObject *unused)
{
    areq_t *r = (areq_t *) self;
    warren_req_t *req = r->req;
    int rc = -1;

    if (req == NULL || r->chan->ctx == NULL)
        Py_RETURN_NONE;
    if (!r->sent && !(warren_req_events(req) & WARREN_REQ_ABORTED)) {
        rc = warren_response_init(req, WPY_STATUS_ERROR, 1);
        if (rc == 0)
            rc = warren_response_add_header(req, CONTENT_TYPE,
                                            strlen(CONTENT_TYPE), TEXT_PLAIN,
                                            strlen(TEXT_PLAIN));
        if (rc == 0)
            rc = warren_write_end(req, ERROR_BODY, strlen(ERROR_BODY));
    }
    r->req = NULL;
    if (rc == 0)
        warren_finish(req);
    else
        warren_abort(req);
    Py_RETURN_NONE;
}

static PyMethodDef areq_methods[] = {
    { "scope", areq_scope, METH_NOARGS, "the HTTP scope (without state)" },
    { "upgrade", areq_upgrade, METH_NOARGS,
      "the Upgrade field of an upgrade request, or None" },
    { "websocket", areq_websocket, METH_NOARGS,
      "(read_timeout, keepalive_interval, max_frame_size) of an upgrade "
      "request, or None" },
    { "describe", areq_describe, METH_NOARGS, "\"METHOD target\", for logs" },
    { "read", areq_read, METH_NOARGS,
      "body bytes, b\"\" at its end, None when none arrived yet" },
    { "body_end", areq_body_end, METH_NOARGS, "the whole body was read" },
    { "aborted", areq_aborted, METH_NOARGS, "the router aborted it" },
    { "start", areq_start, METH_VARARGS, "start(status, headers)" },
    { "write", areq_write, METH_VARARGS,
      "write(data, offset, last) -> the offset after what was sent" },
    { "finish", areq_finish, METH_NOARGS,
      "end the request: True when the channel must be looked at again" },
    { "fail", areq_fail, METH_NOARGS, "answer 500, or cut the response" },
    { "abort", areq_abort, METH_NOARGS, "cut the response" },
    { NULL, NULL, 0, NULL },
};

static PyMemberDef areq_members[] = {
    { "target", T_INT, offsetof(areq_t, target), READONLY,
      "index of the request's target, -1 when the worker has none" },
    { NULL, 0, 0, 0, NULL },
};

static PyTypeObject areq_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = WPY_ASGI_MODULE ".Request",
    .tp_basicsize = sizeof(areq_t),
    .tp_dealloc = areq_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "one request on the channel",
    .tp_methods = areq_methods,
    .tp_members = areq_members,
};

/* ------------------------------------------------------------ logs */

static PyObject *mod_log(PyObject *self, PyObject *arg)
{
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(arg, &n);

    if (s == NULL)
        return NULL;
    wpy_log_text(s, (size_t) n);
    Py_RETURN_NONE;
}

/* log_exception(what, exc): what, then exc's traceback. */
static PyObject *mod_log_exception(PyObject *self, PyObject *args)
{
    const char *what;
    PyObject *exc;

    if (!PyArg_ParseTuple(args, "sO:log_exception", &what, &exc))
        return NULL;
    if (!PyExceptionInstance_Check(exc)) {
        PyErr_SetString(PyExc_TypeError, "an exception instance is needed");
        return NULL;
    }
    PyErr_SetObject((PyObject *) Py_TYPE(exc), exc);
    wpy_log_exception(what);
    Py_RETURN_NONE;
}

static PyMethodDef mod_methods[] = {
    { "connect", mod_connect, METH_O,
      "connect(streams): the channel, after saying HELLO" },
    { "log", mod_log, METH_O, "log(text): lines on stderr" },
    { "log_exception", mod_log_exception, METH_VARARGS,
      "log_exception(what, exc): a line, then the traceback" },
    { NULL, NULL, 0, NULL },
};

static struct PyModuleDef mod_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = WPY_ASGI_MODULE,
    .m_doc = "warren-python's channel, for its ASGI driver",
    .m_size = -1,
    .m_methods = mod_methods,
};

PyObject *wpy_asgi_module_new(wpy_targets_t *ts)
{
    PyObject *m;

    targets = ts;
    if (PyType_Ready(&chan_type) < 0 || PyType_Ready(&areq_type) < 0)
        return NULL;
    m = PyModule_Create(&mod_def);
    if (m == NULL)
        return NULL;
    if (PyModule_AddIntConstant(m, "STREAMS", WPY_ASGI_STREAMS) < 0
        || PyModule_AddIntConstant(m, "EXIT_OK", WR_RT_EXIT_OK) < 0
        || PyModule_AddIntConstant(m, "EXIT_CHANNEL", WR_RT_EXIT_CHANNEL) < 0
        || PyModule_AddIntConstant(m, "EXIT_NO_ROUTER",
                                   WR_RT_EXIT_NO_ROUTER) < 0
        || PyModule_AddIntConstant(m, "EXIT_APP", WR_RT_EXIT_APP) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
