/*
 * warren-python: wsgi.input, the request body as a binary file-like object
 * (read, readline, readlines, iteration), streamed from warren_read.
 *
 * Nothing is read before the application asks: the object holds at most
 * one channel message it could not hand out yet (a readline that stopped
 * mid-chunk), and libwarren grants the router credit only for bytes taken,
 * so a large upload never sits whole in this process. read() with no size
 * does read the whole body, because the application asked for it.
 *
 * read(n) returns n bytes unless the body ends first (as a buffered file
 * does), so `read(int(environ["CONTENT_LENGTH"]))` works in one call.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/python/wpy.h"

typedef struct {
    PyObject_HEAD
    wpy_exchange_t *ex;         /* strong; ex->req is NULL after the request */
    unsigned char  *buf;        /* WPY_INPUT_CHUNK, allocated on first use */
    size_t          pos;        /* next byte to hand out */
    size_t          len;        /* bytes in buf */
    bool            eof;
} wpy_input_t;

/* Growing a result: start small, double, never beyond what was asked. */
enum { RESULT_START = 8 * 1024 };

PyObject *wpy_input_new(wpy_exchange_t *ex)
{
    wpy_input_t *in = PyObject_New(wpy_input_t, &wpy_input_type);

    if (in == NULL)
        return NULL;
    Py_INCREF(ex);
    in->ex = ex;
    in->buf = NULL;
    in->pos = in->len = 0;
    in->eof = false;
    return (PyObject *) in;
}

/* The request is over: later reads see the end of the body. */
void wpy_input_detach(PyObject *obj)
{
    wpy_input_t *in = (wpy_input_t *) obj;

    in->eof = true;
    in->pos = in->len = 0;
    free(in->buf);
    in->buf = NULL;
}

static void input_dealloc(PyObject *obj)
{
    wpy_input_t *in = (wpy_input_t *) obj;

    free(in->buf);
    Py_DECREF(in->ex);
    PyObject_Free(obj);
}

/* Reads up to n body bytes into dst with the GIL released: bytes read, 0
 * at the end of the body, -1 with OSError set. */
static Py_ssize_t chan_read(wpy_input_t *in, void *dst, size_t n)
{
    warren_req_t *req = in->ex->req;
    ssize_t got;
    int err;

    if (in->eof || req == NULL)
        return 0;
    Py_BEGIN_ALLOW_THREADS
    got = warren_read(req, dst, n);
    err = errno;
    Py_END_ALLOW_THREADS
    if (got == 0)
        in->eof = true;
    if (got >= 0)
        return got;
    in->eof = true;
    in->ex->chan_failed = true;
    in->ex->chan_errno = err;
    errno = err;
    PyErr_SetFromErrno(PyExc_OSError);
    return -1;
}

/* Makes buffered bytes available: their count, 0 at the end, -1. */
static Py_ssize_t fill(wpy_input_t *in)
{
    Py_ssize_t got;

    if (in->pos < in->len)
        return (Py_ssize_t) (in->len - in->pos);
    if (in->buf == NULL) {
        in->buf = malloc(WPY_INPUT_CHUNK);
        if (in->buf == NULL) {
            PyErr_NoMemory();
            return -1;
        }
    }
    in->pos = in->len = 0;
    got = chan_read(in, in->buf, WPY_INPUT_CHUNK);
    if (got > 0)
        in->len = (size_t) got;
    return got;
}

/* Copies up to n bytes to dst: buffered ones first; a large request with
 * nothing buffered reads straight into dst (no copy). */
static Py_ssize_t take(wpy_input_t *in, char *dst, size_t n)
{
    Py_ssize_t avail;

    if (in->pos == in->len && n >= WPY_INPUT_CHUNK)
        return chan_read(in, dst, n);
    avail = fill(in);
    if (avail <= 0)
        return avail;
    if ((size_t) avail < n)
        n = (size_t) avail;
    memcpy(dst, in->buf + in->pos, n);
    in->pos += n;
    return (Py_ssize_t) n;
}

/* A growing bytes result, capped at `limit` bytes. */
typedef struct {
    PyObject   *bytes;
    Py_ssize_t  used;
    Py_ssize_t  limit;
} result_t;

static int result_init(result_t *r, Py_ssize_t limit)
{
    Py_ssize_t cap = limit < RESULT_START ? limit : RESULT_START;

    r->used = 0;
    r->limit = limit;
    r->bytes = PyBytes_FromStringAndSize(NULL, cap);
    return r->bytes != NULL ? 0 : -1;
}

/* Room for more: the free space, growing when full; -1 on no memory. */
static Py_ssize_t result_room(result_t *r)
{
    Py_ssize_t cap = PyBytes_GET_SIZE(r->bytes);

    if (r->used == cap) {
        cap = cap > r->limit / 2 ? r->limit : 2 * cap;
        if (_PyBytes_Resize(&r->bytes, cap) < 0)
            return -1;
    }
    return cap - r->used;
}

static PyObject *result_done(result_t *r, int failed)
{
    if (failed) {
        Py_CLEAR(r->bytes);
        return NULL;
    }
    if (_PyBytes_Resize(&r->bytes, r->used) < 0)
        return NULL;
    return r->bytes;
}

static PyObject *read_upto(wpy_input_t *in, Py_ssize_t limit)
{
    result_t r;
    Py_ssize_t got = 1, room;

    if (result_init(&r, limit) < 0)
        return NULL;
    while (r.used < limit && got > 0) {
        room = result_room(&r);
        if (room < 0)
            return result_done(&r, 1);
        got = take(in, PyBytes_AS_STRING(r.bytes) + r.used, (size_t) room);
        if (got < 0)
            return result_done(&r, 1);
        r.used += got;
    }
    return result_done(&r, 0);
}

/* Reads through the next newline, at most limit bytes. */
static PyObject *readline_upto(wpy_input_t *in, Py_ssize_t limit)
{
    result_t r;
    bool line_end = false;

    if (result_init(&r, limit) < 0)
        return NULL;
    while (r.used < limit && !line_end) {
        Py_ssize_t avail = fill(in), room;
        const unsigned char *start, *nl;
        size_t k;

        if (avail <= 0)
            return result_done(&r, avail < 0);
        room = result_room(&r);
        if (room < 0)
            return result_done(&r, 1);
        k = (size_t) (avail < room ? avail : room);
        start = in->buf + in->pos;
        nl = memchr(start, '\n', k);
        if (nl != NULL) {
            k = (size_t) (nl - start) + 1;
            line_end = true;
        }
        memcpy(PyBytes_AS_STRING(r.bytes) + r.used, start, k);
        in->pos += k;
        r.used += (Py_ssize_t) k;
    }
    return result_done(&r, 0);
}

/* size argument: None or negative means no limit. */
static int size_arg(PyObject *const *args, Py_ssize_t nargs, Py_ssize_t *size)
{
    *size = PY_SSIZE_T_MAX;
    if (nargs > 1) {
        PyErr_SetString(PyExc_TypeError, "expected at most 1 argument");
        return -1;
    }
    if (nargs == 0 || args[0] == Py_None)
        return 0;
    *size = PyNumber_AsSsize_t(args[0], PyExc_OverflowError);
    if (*size == -1 && PyErr_Occurred())
        return -1;
    if (*size < 0)
        *size = PY_SSIZE_T_MAX;
    return 0;
}

static PyObject *input_read(PyObject *self, PyObject *const *args,
                            Py_ssize_t nargs)
{
    Py_ssize_t size;

    if (size_arg(args, nargs, &size) < 0)
        return NULL;
    return read_upto((wpy_input_t *) self, size);
}

static PyObject *input_readline(PyObject *self, PyObject *const *args,
                                Py_ssize_t nargs)
{
    Py_ssize_t size;

    if (size_arg(args, nargs, &size) < 0)
        return NULL;
    return readline_upto((wpy_input_t *) self, size);
}

/* Lines until the end, or until their total reaches hint (io semantics). */
static PyObject *input_readlines(PyObject *self, PyObject *const *args,
                                 Py_ssize_t nargs)
{
    Py_ssize_t hint, total = 0;
    PyObject *lines, *line;

    if (size_arg(args, nargs, &hint) < 0)
        return NULL;
    if (hint == 0)
        hint = PY_SSIZE_T_MAX;              /* io: 0 is no hint too */
    lines = PyList_New(0);
    while (lines != NULL && total < hint) {
        line = readline_upto((wpy_input_t *) self, PY_SSIZE_T_MAX);
        if (line == NULL || PyBytes_GET_SIZE(line) == 0
            || PyList_Append(lines, line) < 0) {
            if (line == NULL || PyBytes_GET_SIZE(line) != 0)
                Py_CLEAR(lines);
            Py_XDECREF(line);
            break;
        }
        total += PyBytes_GET_SIZE(line);
        Py_DECREF(line);
    }
    return lines;
}

static PyObject *input_next(PyObject *self)
{
    PyObject *line = readline_upto((wpy_input_t *) self, PY_SSIZE_T_MAX);

    if (line != NULL && PyBytes_GET_SIZE(line) == 0) {
        Py_DECREF(line);
        return NULL;                        /* StopIteration */
    }
    return line;
}

static PyMethodDef input_methods[] = {
    { "read", (PyCFunction) (void (*)(void)) input_read, METH_FASTCALL,
      "read(size=-1): up to size bytes of the body; all with no size" },
    { "readline", (PyCFunction) (void (*)(void)) input_readline,
      METH_FASTCALL, "readline(size=-1): through the next newline" },
    { "readlines", (PyCFunction) (void (*)(void)) input_readlines,
      METH_FASTCALL, "readlines(hint=-1): a list of lines" },
    { NULL, NULL, 0, NULL },
};

PyTypeObject wpy_input_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "warren.Input",
    .tp_basicsize = sizeof(wpy_input_t),
    .tp_dealloc = input_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "wsgi.input: the request body, streamed",
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = input_next,
    .tp_methods = input_methods,
};
