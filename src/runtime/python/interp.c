/*
 * warren-python: starting the interpreter and loading the application.
 *
 * Each failure here ends the worker before it says HELLO, so the router
 * reports a failed start with the last line this file logs: that line
 * names the cause alone ("cannot import module "x": ModuleNotFoundError:
 * No module named 'x'"); a traceback, when it helps, comes before it.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "runtime/python/wpy.h"

/* The interpreter the runtime was built against (set by the Makefile):
 * what sys.executable names when no venv is configured. */
#ifndef WPY_PYTHON_BIN
#define WPY_PYTHON_BIN "/usr/bin/python3"
#endif

#define VENV_LANDMARK  "pyvenv.cfg"
#define VENV_PYTHON    "bin/python3"

/* ------------------------------------------------------------ interpreter */

static int status_failed(PyStatus st, const char *what)
{
    if (!PyStatus_Exception(st))
        return 0;
    wpy_log("cannot start Python (%s): %s%s%s", what,
            st.func != NULL ? st.func : "", st.func != NULL ? ": " : "",
            st.err_msg != NULL ? st.err_msg : "exit requested");
    return -1;
}

/*
 * A venv is found by Python from sys.executable's place (pyvenv.cfg next
 * to bin/), so for a venv we name its interpreter; any other directory is
 * a Python installation prefix: PYTHONHOME.
 */
static PyStatus set_home(PyConfig *c, const char *home)
{
    char path[PATH_MAX];

    snprintf(path, sizeof(path), "%s/" VENV_LANDMARK, home);
    if (access(path, F_OK) == 0) {
        snprintf(path, sizeof(path), "%s/" VENV_PYTHON, home);
        return PyConfig_SetBytesString(c, &c->program_name, path);
    }
    return PyConfig_SetBytesString(c, &c->home, home);
}

static int init_config(PyConfig *c, const wpy_options_t *o)
{
    char *argv[] = { (char *) WPY_PROGRAM };
    PyStatus st;

    PyConfig_InitPythonConfig(c);
    /* No Python signal handlers: SIGTERM/SIGINT from the router must end
     * the worker even while it waits in C for the next request. */
    c->install_signal_handlers = 0;
    c->parse_argv = 0;
    st = PyConfig_SetBytesArgv(c, 1, argv);
    if (status_failed(st, "argv") < 0)
        return -1;
    st = PyConfig_SetBytesString(c, &c->program_name, WPY_PYTHON_BIN);
    if (status_failed(st, "program name") < 0)
        return -1;
    if (o->home != NULL) {
        st = set_home(c, o->home);
        if (status_failed(st, WPY_ENV_HOME) < 0)
            return -1;
    }
    return 0;
}

/* sys.path gets WARREN_PYTHON_PATH's entries first, in order; without it,
 * the working directory (where the router put the worker), as gunicorn
 * and uWSGI do. */
static int extend_path(const char *list)
{
    PyObject *path = PySys_GetObject("path");   /* borrowed */
    char cwd[PATH_MAX];
    Py_ssize_t at = 0;
    const char *p = list;

    if (path == NULL || !PyList_Check(path)) {
        wpy_log("cannot start Python: sys.path is not a list");
        return -1;
    }
    if (list == NULL) {
        if (getcwd(cwd, sizeof(cwd)) == NULL)
            return 0;
        p = cwd;
    }
    while (*p != '\0') {
        size_t n = list != NULL ? strcspn(p, ":") : strlen(p);
        PyObject *entry;

        if (n > 0) {
            entry = PyUnicode_DecodeFSDefaultAndSize(p, (Py_ssize_t) n);
            if (entry == NULL || PyList_Insert(path, at++, entry) < 0) {
                Py_XDECREF(entry);
                wpy_log_exception("cannot extend sys.path");
                return -1;
            }
            Py_DECREF(entry);
        }
        p += n;
        if (*p == ':')
            p++;
    }
    return 0;
}

static int ready_types(void)
{
    PyTypeObject *types[] = {
        &wpy_exchange_type, &wpy_input_type, &wpy_errors_type,
        &wpy_filewrap_type,
    };

    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (PyType_Ready(types[i]) < 0) {
            wpy_log_exception("cannot start Python: type setup failed");
            return -1;
        }
    return 0;
}

int wpy_python_start(const wpy_options_t *o)
{
    PyConfig c;
    PyStatus st;

    if (init_config(&c, o) < 0) {
        PyConfig_Clear(&c);
        return -1;
    }
    st = Py_InitializeFromConfig(&c);
    PyConfig_Clear(&c);
    if (status_failed(st, "initialization") < 0)
        return -1;
    if (extend_path(o->path) < 0 || ready_types() < 0)
        return -1;
    return wpy_environ_init(o);
}

/* ------------------------------------------------------------ application */

/* The import failed because the module itself (or a package on its way)
 * does not exist: a traceback of importlib frames would only be noise. */
static bool module_missing(PyObject *exc, const char *module)
{
    PyObject *name;
    const char *s;
    bool missing = false;
    size_t n;

    if (!PyErr_GivenExceptionMatches(exc, PyExc_ModuleNotFoundError))
        return false;
    name = PyObject_GetAttrString(exc, "name");
    s = name != NULL && PyUnicode_Check(name) ? PyUnicode_AsUTF8(name) : NULL;
    if (s != NULL) {
        n = strlen(s);
        missing = strncmp(module, s, n) == 0
                  && (module[n] == '\0' || module[n] == '.');
    }
    Py_XDECREF(name);
    PyErr_Clear();
    return missing;
}

/* Logs the pending exception: its traceback (unless noise), then one line
 * "what: Type: message", the line the router shows. */
static void load_failed(const char *what, const char *module)
{
    PyObject *type, *value, *tb;
    char line[WPY_LINE_MAX];

    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (value == NULL) {
        Py_XDECREF(type);
        Py_XDECREF(tb);
        wpy_log("%s", what);
        return;
    }
    if (tb != NULL)
        PyException_SetTraceback(value, tb);
    wpy_exception_line(value, line, sizeof(line));
    if (!module_missing(value, module)) {
        PyErr_Restore(type, value, tb);
        wpy_log_exception(NULL);
    } else {
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
    }
    wpy_log("%s: %s", what, line);
}

/* module.a.b: each dotted part an attribute of the one before. */
static PyObject *resolve(PyObject *module, const char *dotted)
{
    PyObject *obj = module;
    const char *p = dotted;

    Py_INCREF(obj);
    while (*p != '\0') {
        size_t n = strcspn(p, ".");
        PyObject *name = PyUnicode_FromStringAndSize(p, (Py_ssize_t) n);
        PyObject *next = name != NULL ? PyObject_GetAttr(obj, name) : NULL;

        Py_XDECREF(name);
        Py_DECREF(obj);
        if (next == NULL)
            return NULL;
        obj = next;
        p += n;
        if (*p == '.')
            p++;
    }
    return obj;
}

/* `called` is "()" when app is what the factory returned. */
static PyObject *checked_callable(PyObject *app, const wpy_target_t *o,
                                  const char *called)
{
    if (PyCallable_Check(app))
        return app;
    wpy_log("\"%s.%s%s\" is not callable (it is a %s)", o->module,
            o->callable, called, Py_TYPE(app)->tp_name);
    Py_DECREF(app);
    return NULL;
}

PyObject *wpy_app_load(const wpy_target_t *o)
{
    char what[WPY_LINE_MAX];
    PyObject *module, *obj, *app;

    module = PyImport_ImportModule(o->module);
    if (module == NULL) {
        snprintf(what, sizeof(what), "cannot import module \"%s\"",
                 o->module);
        load_failed(what, o->module);
        return NULL;
    }
    obj = resolve(module, o->callable);
    Py_DECREF(module);
    if (obj == NULL) {
        snprintf(what, sizeof(what), "module \"%s\" has no callable \"%s\"",
                 o->module, o->callable);
        load_failed(what, o->module);
        return NULL;
    }
    if (!o->factory || !PyCallable_Check(obj))
        return checked_callable(obj, o, "");
    app = PyObject_CallNoArgs(obj);
    Py_DECREF(obj);
    if (app == NULL) {
        snprintf(what, sizeof(what), "application factory %s.%s() failed",
                 o->module, o->callable);
        load_failed(what, o->module);
        return NULL;
    }
    return checked_callable(app, o, "()");
}
