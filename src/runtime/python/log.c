/*
 * warren-python: Python exceptions as log lines (the lines themselves:
 * src/runtime/common/log.c).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "runtime/python/wpy.h"

/* Appends a one-line rendering of s (newlines become spaces). */
static void put_one_line(char *buf, size_t size, const char *s)
{
    size_t at = strlen(buf);

    for (; *s != '\0' && at + 1 < size; s++)
        buf[at++] = *s == '\n' || *s == '\r' ? ' ' : *s;
    buf[at] = '\0';
}

void wpy_exception_line(PyObject *exc, char *buf, size_t size)
{
    PyObject *text = exc != NULL ? PyObject_Str(exc) : NULL;
    const char *msg = text != NULL ? PyUnicode_AsUTF8(text) : NULL;

    if (msg == NULL) {
        PyErr_Clear();
        msg = "";
    }
    snprintf(buf, size, "%s", exc != NULL ? Py_TYPE(exc)->tp_name : "?");
    if (msg[0] != '\0') {
        put_one_line(buf, size, ": ");
        put_one_line(buf, size, msg);
    }
    Py_XDECREF(text);
}

/* Logs traceback.format_exception(exc): 0, or -1 with an exception. */
static int log_traceback(PyObject *exc)
{
    PyObject *mod, *lines, *empty, *joined = NULL;
    const char *text;
    Py_ssize_t len;

    mod = PyImport_ImportModule("traceback");
    if (mod == NULL)
        return -1;
    lines = PyObject_CallMethod(mod, "format_exception", "O", exc);
    Py_DECREF(mod);
    empty = PyUnicode_New(0, 0);
    if (lines != NULL && empty != NULL)
        joined = PyUnicode_Join(empty, lines);
    Py_XDECREF(empty);
    Py_XDECREF(lines);
    if (joined == NULL)
        return -1;
    text = PyUnicode_AsUTF8AndSize(joined, &len);
    if (text != NULL) {
        /* The text ends with a newline: no empty last line. */
        if (len > 0 && text[len - 1] == '\n')
            len--;
        wpy_log_text(text, (size_t) len);
    }
    Py_DECREF(joined);
    return text != NULL ? 0 : -1;
}

void wpy_log_exception(const char *what)
{
    PyObject *type, *value, *tb;
    char line[WPY_LINE_MAX];

    PyErr_Fetch(&type, &value, &tb);
    if (type == NULL)
        return;
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL && value != NULL)
        PyException_SetTraceback(value, tb);
    if (what != NULL)
        wpy_log("%s", what);
    if (value == NULL || log_traceback(value) < 0) {
        /* Formatting failed (a broken stdlib, no memory): one line. */
        PyErr_Clear();
        wpy_exception_line(value, line, sizeof(line));
        wpy_log("%s", line);
    }
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
}
