/*
 * warren-python: logging. Every line goes to stderr (the router collects
 * it) starting with "warren-python[app:pid]: ", so lines of many workers
 * of many applications stay readable side by side. Each line is one
 * fprintf on unbuffered stderr: one write(2), not torn by other workers.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "runtime/python/wpy.h"

enum { NAME_MAX_SHOWN = 64 };

static char app_name[NAME_MAX_SHOWN + 1] = "?";

void wpy_log_init(const char *name)
{
    if (name != NULL && name[0] != '\0')
        snprintf(app_name, sizeof(app_name), "%s", name);
}

static void log_line(const char *p, size_t n)
{
    /* The pid is taken each time: workers may be forked from one image. */
    fprintf(stderr, WPY_PROGRAM "[%s:%d]: %.*s\n", app_name, (int) getpid(),
            (int) n, p);
}

void wpy_log(const char *fmt, ...)
{
    char line[WPY_LINE_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    log_line(line, strlen(line));
}

void wpy_log_text(const char *text, size_t len)
{
    while (len > 0) {
        const char *nl = memchr(text, '\n', len);
        size_t n = nl != NULL ? (size_t) (nl - text) : len;

        log_line(text, n);
        if (nl == NULL)
            break;
        text += n + 1;
        len -= n + 1;
    }
}

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
