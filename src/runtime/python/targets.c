/*
 * warren-python: the callables a worker serves. An application without
 * "targets" is one callable (WARREN_PYTHON_MODULE & co.); with "targets",
 * WARREN_PYTHON_TARGETS holds the object as JSON, e.g.
 *   {"front": {"module": "shop.wsgi"}, "admin": {"module": "shop.admin",
 *    "callable": "make_app", "factory": true, "prefix": "/admin"}}
 * and every target is loaded at start (so a broken one fails the start,
 * not some later request). The router names the target of each request
 * (warren_req_target_name). The JSON is read with Python's own json
 * module: the runtime has no other use for a parser.
 */
#include <stdlib.h>
#include <string.h>

#include "runtime/python/wpy.h"

static char *dup_or_null(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

static int set_prefix(wpy_target_t *t, const char *prefix)
{
    size_t n = prefix != NULL ? strlen(prefix) : 0;

    while (n > 0 && prefix[n - 1] == '/')
        n--;
    t->prefix = strndup(prefix != NULL ? prefix : "", n);
    t->prefix_len = n;
    return t->prefix != NULL ? 0 : -1;
}

/* The string value of key in dict, or NULL (absent, or not a string). */
static const char *str_item(PyObject *dict, const char *key)
{
    PyObject *v = PyDict_GetItemString(dict, key);      /* borrowed */

    return v != NULL && PyUnicode_Check(v) ? PyUnicode_AsUTF8(v) : NULL;
}

static int target_from_dict(wpy_target_t *t, PyObject *name, PyObject *d)
{
    const char *module = PyDict_Check(d) ? str_item(d, "module") : NULL;
    const char *callable;
    PyObject *factory;

    if (module == NULL || !PyUnicode_Check(name)) {
        wpy_log(WPY_ENV_TARGETS ": a target without a \"module\"");
        return -1;
    }
    callable = str_item(d, "callable");
    factory = PyDict_GetItemString(d, "factory");
    t->name = strdup(PyUnicode_AsUTF8(name));
    t->module = strdup(module);
    t->callable = strdup(callable != NULL ? callable : WPY_DEFAULT_CALLABLE);
    t->factory = factory != NULL && PyObject_IsTrue(factory) == 1;
    if (t->name == NULL || t->module == NULL || t->callable == NULL
        || set_prefix(t, str_item(d, "prefix")) < 0) {
        wpy_log("out of memory reading " WPY_ENV_TARGETS);
        return -1;
    }
    return 0;
}

static PyObject *parse_json(const char *text)
{
    PyObject *json = PyImport_ImportModule("json");
    PyObject *obj = json != NULL
                    ? PyObject_CallMethod(json, "loads", "s", text) : NULL;

    Py_XDECREF(json);
    if (obj == NULL) {
        wpy_log_exception(WPY_ENV_TARGETS " is not valid JSON");
        return NULL;
    }
    if (!PyDict_Check(obj) || PyDict_Size(obj) == 0) {
        wpy_log(WPY_ENV_TARGETS " must be a non-empty JSON object");
        Py_DECREF(obj);
        return NULL;
    }
    return obj;
}

static int read_targets(const char *text, wpy_targets_t *ts)
{
    PyObject *obj = parse_json(text), *name, *d;
    Py_ssize_t pos = 0;
    int rc = 0;

    if (obj == NULL)
        return -1;
    ts->v = calloc((size_t) PyDict_Size(obj), sizeof(*ts->v));
    if (ts->v == NULL) {
        Py_DECREF(obj);
        wpy_log("out of memory reading " WPY_ENV_TARGETS);
        return -1;
    }
    while (rc == 0 && PyDict_Next(obj, &pos, &name, &d))
        rc = target_from_dict(&ts->v[ts->n++], name, d);
    Py_DECREF(obj);
    return rc;
}

static int read_single(const wpy_options_t *o, wpy_targets_t *ts)
{
    wpy_target_t *t = ts->v = calloc(1, sizeof(*ts->v));

    if (t == NULL)
        return -1;
    ts->n = 1;
    t->module = dup_or_null(o->module);
    t->callable = dup_or_null(o->callable);
    t->factory = o->factory;
    t->prefix = strndup(o->prefix, o->prefix_len);
    t->prefix_len = o->prefix_len;
    if (t->module == NULL || t->callable == NULL || t->prefix == NULL) {
        wpy_log("out of memory reading the options");
        return -1;
    }
    return 0;
}

int wpy_targets_load(const wpy_options_t *o, wpy_targets_t *ts)
{
    memset(ts, 0, sizeof(*ts));
    if ((o->targets != NULL ? read_targets(o->targets, ts)
                            : read_single(o, ts)) < 0)
        return -1;
    for (size_t i = 0; i < ts->n; i++) {
        /* The cause line, last, names the module and callable. */
        ts->v[i].app = wpy_app_load(&ts->v[i]);
        if (ts->v[i].app == NULL)
            return -1;
    }
    return 0;
}

wpy_target_t *wpy_target_pick(wpy_targets_t *ts, warren_req_t *req)
{
    size_t n;
    const char *name = warren_req_target_name(req, &n);

    if (ts->n == 1 && ts->v[0].name == NULL)
        return &ts->v[0];
    for (size_t i = 0; i < ts->n; i++)
        if (strlen(ts->v[i].name) == n && memcmp(ts->v[i].name, name, n) == 0)
            return &ts->v[i];
    return NULL;
}

void wpy_targets_free(wpy_targets_t *ts)
{
    for (size_t i = 0; i < ts->n; i++) {
        wpy_target_t *t = &ts->v[i];
        Py_XDECREF(t->app);
        free(t->name);
        free(t->module);
        free(t->callable);
        free(t->prefix);
    }
    free(ts->v);
    memset(ts, 0, sizeof(*ts));
}
