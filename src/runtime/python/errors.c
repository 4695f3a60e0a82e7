/*
 * warren-python: wsgi.errors, a text stream whose lines go to stderr with
 * the runtime's log prefix (so the router's log tells which application
 * and worker wrote them). A partial line waits for its newline, for
 * flush(), or for the end of the request (the runtime flushes then).
 */
#include <stdlib.h>
#include <string.h>

#include "runtime/python/wpy.h"

typedef struct {
    PyObject_HEAD
    char   *pend;           /* partial line, WPY_ERRORS_LINE_MAX bytes */
    size_t  plen;
} wpy_errors_t;

PyObject *wpy_errors_new(void)
{
    wpy_errors_t *e = PyObject_New(wpy_errors_t, &wpy_errors_type);

    if (e == NULL)
        return NULL;
    e->pend = malloc(WPY_ERRORS_LINE_MAX);
    e->plen = 0;
    if (e->pend == NULL) {
        Py_DECREF(e);
        return PyErr_NoMemory();
    }
    return (PyObject *) e;
}

static void errors_dealloc(PyObject *obj)
{
    free(((wpy_errors_t *) obj)->pend);
    PyObject_Free(obj);
}

void wpy_errors_flush(PyObject *obj)
{
    wpy_errors_t *e = (wpy_errors_t *) obj;

    if (e->plen > 0)
        wpy_log_text(e->pend, e->plen);
    e->plen = 0;
}

/* Adds bytes to the partial line; a line too long is logged in pieces. */
static void pend(wpy_errors_t *e, const char *p, size_t n)
{
    while (n > 0) {
        size_t k = WPY_ERRORS_LINE_MAX - e->plen;

        if (k > n)
            k = n;
        memcpy(e->pend + e->plen, p, k);
        e->plen += k;
        p += k;
        n -= k;
        if (e->plen == WPY_ERRORS_LINE_MAX)
            wpy_errors_flush((PyObject *) e);
    }
}

static void put(wpy_errors_t *e, const char *p, size_t n)
{
    const char *nl;

    while ((nl = memchr(p, '\n', n)) != NULL) {
        size_t k = (size_t) (nl - p);

        pend(e, p, k);
        wpy_errors_flush((PyObject *) e);   /* empty lines are dropped */
        p += k + 1;
        n -= k + 1;
    }
    pend(e, p, n);
}

/* write(s): s is a str (a text stream, PEP 3333); returns len(s). */
static PyObject *errors_write(PyObject *self, PyObject *s)
{
    PyObject *utf8;

    if (!PyUnicode_Check(s)) {
        return PyErr_Format(PyExc_TypeError,
                            "wsgi.errors.write() argument must be str, "
                            "not %s", Py_TYPE(s)->tp_name);
    }
    utf8 = PyUnicode_AsEncodedString(s, "utf-8", "backslashreplace");
    if (utf8 == NULL)
        return NULL;
    put((wpy_errors_t *) self, PyBytes_AS_STRING(utf8),
        (size_t) PyBytes_GET_SIZE(utf8));
    Py_DECREF(utf8);
    return PyLong_FromSsize_t(PyUnicode_GET_LENGTH(s));
}

static PyObject *errors_writelines(PyObject *self, PyObject *seq)
{
    PyObject *it = PyObject_GetIter(seq), *item, *rc;

    if (it == NULL)
        return NULL;
    while ((item = PyIter_Next(it)) != NULL) {
        rc = errors_write(self, item);
        Py_DECREF(item);
        if (rc == NULL)
            break;
        Py_DECREF(rc);
    }
    Py_DECREF(it);
    if (PyErr_Occurred())
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *errors_flush(PyObject *self, PyObject *unused)
{
    wpy_errors_flush(self);
    Py_RETURN_NONE;
}

static PyMethodDef errors_methods[] = {
    { "write", errors_write, METH_O, "write(str): log text" },
    { "writelines", errors_writelines, METH_O, "writelines(seq of str)" },
    { "flush", errors_flush, METH_NOARGS, "log a pending partial line" },
    { NULL, NULL, 0, NULL },
};

PyTypeObject wpy_errors_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "warren.Errors",
    .tp_basicsize = sizeof(wpy_errors_t),
    .tp_dealloc = errors_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "wsgi.errors: lines to the worker's log",
    .tp_methods = errors_methods,
};
