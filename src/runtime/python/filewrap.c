/*
 * warren-python: wsgi.file_wrapper (PEP 3333 "Optional Platform-Specific
 * File Handling"). FileWrapper(filelike, block_size=8192) is an iterable
 * over filelike.read(block_size) with a close() that closes the file: any
 * server can send that. When the application returns one whose file is a
 * regular file with a descriptor, the runtime reads the descriptor itself
 * instead, in WPY_FILE_CHUNK pieces with the GIL released, from the
 * file's current position (tell(): what a buffered reader read ahead does
 * not count).
 */
#include <errno.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/python/wpy.h"

typedef struct {
    PyObject_HEAD
    PyObject   *filelike;
    Py_ssize_t  block_size;
} wpy_filewrap_t;

static PyObject *fw_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    static char *names[] = { "filelike", "block_size", NULL };
    Py_ssize_t block_size = WPY_FILE_BLOCK;
    wpy_filewrap_t *fw;
    PyObject *filelike;

    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|n:file_wrapper", names,
                                     &filelike, &block_size))
        return NULL;
    if (block_size <= 0) {
        PyErr_SetString(PyExc_ValueError, "block_size must be positive");
        return NULL;
    }
    fw = (wpy_filewrap_t *) type->tp_alloc(type, 0);
    if (fw == NULL)
        return NULL;
    fw->filelike = Py_NewRef(filelike);
    fw->block_size = block_size;
    return (PyObject *) fw;
}

/* The file may hold the wrapper (a cycle): let the collector see it. */
static int fw_traverse(PyObject *self, visitproc visit, void *arg)
{
    Py_VISIT(((wpy_filewrap_t *) self)->filelike);
    return 0;
}

static int fw_clear(PyObject *self)
{
    Py_CLEAR(((wpy_filewrap_t *) self)->filelike);
    return 0;
}

static void fw_dealloc(PyObject *self)
{
    PyObject_GC_UnTrack(self);
    fw_clear(self);
    Py_TYPE(self)->tp_free(self);
}

static PyObject *fw_next(PyObject *self)
{
    wpy_filewrap_t *fw = (wpy_filewrap_t *) self;
    PyObject *data;
    Py_ssize_t n;

    if (fw->filelike == NULL)
        return NULL;
    data = PyObject_CallMethod(fw->filelike, "read", "n", fw->block_size);
    if (data == NULL)
        return NULL;
    n = PyObject_Size(data);
    if (n <= 0) {
        Py_DECREF(data);
        return NULL;        /* the end (or an error Size raised) */
    }
    return data;
}

static PyObject *fw_close(PyObject *self, PyObject *unused)
{
    wpy_filewrap_t *fw = (wpy_filewrap_t *) self;
    PyObject *close, *rc;

    if (fw->filelike == NULL)
        Py_RETURN_NONE;
    close = PyObject_GetAttrString(fw->filelike, "close");
    if (close == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError))
            return NULL;
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    rc = PyObject_CallNoArgs(close);
    Py_DECREF(close);
    return rc;
}

/* A regular file's descriptor and the position to send from, or -1
 * (anything else: a pipe, a socket, BytesIO) with no exception. */
static int file_fd(PyObject *f, off_t *offset)
{
    PyObject *r = PyObject_CallMethod(f, "fileno", NULL);
    struct stat st;
    long fd;

    fd = r != NULL ? PyLong_AsLong(r) : -1;
    Py_XDECREF(r);
    if (fd < 0 || fd > INT_MAX || fstat((int) fd, &st) < 0
        || !S_ISREG(st.st_mode)) {
        PyErr_Clear();
        return -1;
    }
    r = PyObject_CallMethod(f, "tell", NULL);
    *offset = r != NULL ? (off_t) PyLong_AsLongLong(r) : -1;
    Py_XDECREF(r);
    if (*offset < 0) {
        PyErr_Clear();
        *offset = lseek((int) fd, 0, SEEK_CUR);
    }
    return *offset < 0 ? -1 : (int) fd;
}

/* Streams the file from its descriptor in WPY_FILE_CHUNK pieces, GIL
 * released: 1 when the whole file went, -1 with an exception. */
static int send_fd(wpy_exchange_t *ex, int fd, off_t offset)
{
    unsigned char *buf = PyMem_RawMalloc(WPY_FILE_CHUNK);  /* per request:
                                                  several threads send */
    ssize_t n;
    int err, rc = 1;

    if (buf == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (;;) {
        Py_BEGIN_ALLOW_THREADS
        do
            n = pread(fd, buf, WPY_FILE_CHUNK, offset);
        while (n < 0 && errno == EINTR);
        err = errno;
        Py_END_ALLOW_THREADS
        if (n < 0) {
            errno = err;
            PyErr_SetFromErrno(PyExc_OSError);
            rc = -1;
            break;
        }
        if (n == 0)
            break;
        if (wpy_exchange_write(ex, buf, (size_t) n) < 0) {
            rc = -1;
            break;
        }
        offset += n;
    }
    PyMem_RawFree(buf);
    return rc;
}

int wpy_filewrap_send(wpy_exchange_t *ex, PyObject *wrapper)
{
    wpy_filewrap_t *fw = (wpy_filewrap_t *) wrapper;
    off_t offset;
    int fd;

    if (fw->filelike == NULL || (fd = file_fd(fw->filelike, &offset)) < 0)
        return 0;
    if (wpy_exchange_check_started(ex) < 0)
        return -1;
    return send_fd(ex, fd, offset);
}

static PyMethodDef fw_methods[] = {
    { "close", fw_close, METH_NOARGS, "close the file" },
    { NULL, NULL, 0, NULL },
};

PyTypeObject wpy_filewrap_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "warren.FileWrapper",
    .tp_basicsize = sizeof(wpy_filewrap_t),
    .tp_dealloc = fw_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "wsgi.file_wrapper(filelike, block_size=8192)",
    .tp_traverse = fw_traverse,
    .tp_clear = fw_clear,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = fw_next,
    .tp_methods = fw_methods,
    .tp_new = fw_new,
};
