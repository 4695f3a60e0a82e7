/*
 * warren-python's ASGI entry points (asgi.h): which protocol the loaded
 * application speaks, and the life of a worker that serves it.
 *
 * The choice is made once, where the application is loaded (the zygote,
 * or a worker started without one), so a callable that cannot be served
 * fails the start with its reason, before any worker says HELLO. The
 * driver (asgi_driver.py, compiled in) is loaded only when the choice
 * needs it: a WSGI application with "protocol": "wsgi" never imports it.
 *
 * The loop itself exists only in a worker (after the zygote's fork: no
 * loop may run across one), in wpy_asgi_main.
 */
#include <stdlib.h>
#include <string.h>

#include "runtime/python/asgi.h"

static PyObject *driver;    /* the driver module, once loaded */
static PyObject *kinds;     /* its choice for each target ("asgi3", ...) */

/* An unset variable and an empty one mean the same: absent. */
static const char *protocol(void)
{
    const char *v = getenv(WPY_ENV_PROTOCOL);

    return v != NULL && v[0] != '\0' ? v : NULL;
}

/* _warren_asgi into sys.modules, then the driver's code run as the module
 * warren_asgi. */
static int driver_load(wpy_targets_t *ts)
{
    PyObject *modules = PyImport_GetModuleDict();   /* borrowed */
    PyObject *c_part = wpy_asgi_module_new(ts), *code;

    if (c_part == NULL
        || PyDict_SetItemString(modules, WPY_ASGI_MODULE, c_part) < 0) {
        Py_XDECREF(c_part);
        wpy_log_exception("cannot set up the ASGI driver");
        return -1;
    }
    Py_DECREF(c_part);
    code = Py_CompileString(wpy_asgi_driver_py, WPY_ASGI_DRIVER_FILE,
                            Py_file_input);
    if (code != NULL)
        driver = PyImport_ExecCodeModuleEx(WPY_ASGI_DRIVER, code,
                                           WPY_ASGI_DRIVER_FILE);
    Py_XDECREF(code);
    if (driver == NULL) {
        wpy_log_exception("cannot load the ASGI driver");
        return -1;
    }
    return 0;
}

/* [(name, app), ...] of the targets, name "" for a single application. */
static PyObject *target_list(const wpy_targets_t *ts)
{
    PyObject *list = PyList_New((Py_ssize_t) ts->n);

    for (size_t i = 0; list != NULL && i < ts->n; i++) {
        const char *name = ts->v[i].name != NULL ? ts->v[i].name : "";
        PyObject *item = Py_BuildValue("(sO)", name, ts->v[i].app);

        if (item == NULL) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, (Py_ssize_t) i, item);
    }
    return list;
}

/* The driver refused the targets: its ValueError says why in one line
 * (the line a failed start shows); anything else is a bug: traceback. */
static void choice_failed(void)
{
    PyObject *type, *value, *tb;
    char line[WPY_LINE_MAX];

    if (!PyErr_ExceptionMatches(PyExc_ValueError)) {
        wpy_log_exception("cannot tell whether the application is ASGI");
        return;
    }
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    wpy_exception_line(value, line, sizeof(line));
    /* "ValueError: ..." -> the message alone. */
    wpy_log("%s", strchr(line, ' ') != NULL ? strchr(line, ' ') + 1 : line);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
}

int wpy_asgi_choose(wpy_targets_t *ts)
{
    const char *proto = protocol();
    PyObject *list, *choice;

    if (proto != NULL && strcmp(proto, WPY_PROTOCOL_WSGI) == 0)
        return 0;
    if (proto != NULL && strcmp(proto, WPY_PROTOCOL_ASGI) != 0) {
        wpy_log(WPY_ENV_PROTOCOL " must be \"" WPY_PROTOCOL_ASGI "\" or \""
                WPY_PROTOCOL_WSGI "\", not \"%s\"", proto);
        return -1;
    }
    if (driver_load(ts) < 0)
        return -1;
    list = target_list(ts);
    choice = list != NULL ? PyObject_CallMethod(driver, "choose", "Os", list,
                                                proto) : NULL;
    Py_XDECREF(list);
    if (choice == NULL) {
        choice_failed();
        return -1;
    }
    if (choice == Py_None) {
        Py_DECREF(choice);
        return 0;
    }
    kinds = choice;
    return 1;
}

int wpy_asgi_main(wpy_targets_t *ts)
{
    PyObject *list = target_list(ts), *rc;
    long status = WR_RT_EXIT_CHANNEL;

    rc = list != NULL ? PyObject_CallMethod(driver, "serve", "OO", list,
                                            kinds) : NULL;
    Py_XDECREF(list);
    if (rc == NULL)
        wpy_log_exception("the ASGI driver failed");
    else if (PyLong_Check(rc))
        status = PyLong_AsLong(rc);
    Py_XDECREF(rc);
    Py_CLEAR(kinds);
    Py_CLEAR(driver);
    wpy_targets_free(ts);
    /* atexit handlers, logging shutdown, buffered output. */
    if (Py_FinalizeEx() < 0 && status == WR_RT_EXIT_OK)
        wpy_log("Python finalization failed");
    return (int) status;
}
