/*
 * warren-python: the WSGI environ of a request (PEP 3333). Every text value
 * is the request's bytes decoded as latin-1 ("native strings"): an
 * application recovers the bytes with .encode("latin-1").
 *
 * The keys that are the same for every request live in one base dict,
 * copied per request: the application may change its environ freely.
 * wsgi.errors is the serving thread's own (errors.c).
 */
#include <stdlib.h>
#include <string.h>

#include "runtime/common/cgi.h"
#include "runtime/python/wpy.h"

#define HEADER_JOIN         ","
/* RFC 6265 5.4: several cookie fields are one list joined by "; ". */
#define COOKIE_JOIN         "; "

enum {
    KEY_STACK           = 256,      /* usual header keys fit on the stack */
};

static PyObject *base_environ;      /* the constant keys (read-only) */

static int set_obj(PyObject *env, const char *key, PyObject *value)
{
    int rc;

    if (value == NULL)
        return -1;
    rc = PyDict_SetItemString(env, key, value);
    Py_DECREF(value);
    return rc;
}

static int set_str(PyObject *env, const char *key, const char *p, size_t n)
{
    return set_obj(env, key, PyUnicode_DecodeLatin1(p, (Py_ssize_t) n,
                                                    NULL));
}

int wpy_environ_init(const wpy_options_t *o)
{
    PyObject *env = PyDict_New();

    if (env == NULL
        || set_obj(env, "wsgi.version", Py_BuildValue("(ii)", 1, 0)) < 0
        || PyDict_SetItemString(env, "wsgi.multithread",
                                o->threads > 1 ? Py_True : Py_False) < 0
        || PyDict_SetItemString(env, "wsgi.multiprocess", Py_True) < 0
        || PyDict_SetItemString(env, "wsgi.run_once", Py_False) < 0
        /* wsgi.input returns b"" at the end of the body, also without
         * Content-Length (chunked): say so, as gunicorn and mod_wsgi do. */
        || PyDict_SetItemString(env, "wsgi.input_terminated", Py_True) < 0
        || PyDict_SetItemString(env, "wsgi.file_wrapper",
                                (PyObject *) &wpy_filewrap_type) < 0
        || set_obj(env, "SERVER_SOFTWARE",
                   PyUnicode_FromString("Warren/" WR_VERSION)) < 0) {
        Py_XDECREF(env);
        wpy_log_exception("cannot build the WSGI environ");
        return -1;
    }
    base_environ = env;
    return 0;
}

/* One getter of the request head into a key. */
typedef const char *(*getter_t)(const warren_req_t *req, size_t *len);

static int set_field(PyObject *env, const char *key, warren_req_t *req,
                     getter_t get)
{
    size_t n;
    const char *p = get(req, &n);

    return set_str(env, key, p, n);
}

/* SCRIPT_NAME is the prefix when the path lies under it (at a segment
 * boundary); PATH_INFO is the rest. Other paths keep SCRIPT_NAME "". */
static int set_paths(PyObject *env, warren_req_t *req, const wpy_target_t *t)
{
    size_t n, cut = 0;
    const char *path = warren_req_path(req, &n);
    const char *script_name = t->prefix;
    size_t script_name_len = t->prefix_len;

    if (script_name_len > 0 && n >= script_name_len
        && memcmp(path, script_name, script_name_len) == 0
        && (n == script_name_len || path[script_name_len] == '/'))
        cut = script_name_len;
    if (set_str(env, "SCRIPT_NAME", path, cut) < 0)
        return -1;
    return set_str(env, "PATH_INFO", path + cut, n - cut);
}

/* SERVER_NAME: the host asked for, or with no Host (HTTP/1.0) the
 * address the request came in on; an IPv6 one in brackets. */
static int set_server_name(PyObject *env, warren_req_t *req)
{
    size_t n;
    const char *server = warren_req_server_name(req, &n);
    char *name;
    int rc;

    if (n == 0)
        server = warren_req_local_addr(req, &n);
    name = malloc(WR_RT_SERVER_NAME_SIZE(n));
    if (name == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    rc = set_str(env, "SERVER_NAME", name, wr_rt_server_name(name, server, n));
    free(name);
    return rc;
}

static int set_head(PyObject *env, warren_req_t *req, const wpy_target_t *t)
{
    if (set_field(env, "REQUEST_METHOD", req, warren_req_method) < 0
        || set_paths(env, req, t) < 0
        || set_field(env, "QUERY_STRING", req, warren_req_query) < 0
        || set_field(env, "REQUEST_URI", req, warren_req_target) < 0
        || set_field(env, "SERVER_PROTOCOL", req, warren_req_version) < 0
        || set_server_name(env, req) < 0
        || set_field(env, "SERVER_PORT", req, warren_req_local_port) < 0
        || set_field(env, "REMOTE_ADDR", req, warren_req_remote_addr) < 0
        || set_field(env, "REMOTE_PORT", req, warren_req_remote_port) < 0
        || set_field(env, "wsgi.url_scheme", req, warren_req_scheme) < 0)
        return -1;
    return 0;
}

/* Sets key to value, or appends value to what a field of the same name
 * set before (repeated fields are one list, RFC 9110 5.3). */
static int add_value(PyObject *env, const char *key, const char *sep,
                     const char *v, size_t vn)
{
    PyObject *value = PyUnicode_DecodeLatin1(v, (Py_ssize_t) vn, NULL);
    PyObject *old, *joined;

    if (value == NULL)
        return -1;
    old = PyDict_GetItemString(env, key);       /* borrowed */
    if (old == NULL)
        return set_obj(env, key, value);
    joined = PyUnicode_FromFormat("%U%s%U", old, sep, value);
    Py_DECREF(value);
    return set_obj(env, key, joined);
}

static int add_header(PyObject *env, const char *name, size_t n,
                      const char *value, size_t vn)
{
    char stack[KEY_STACK];
    size_t need = WR_RT_CGI_KEY_SIZE(n);
    char *key = need <= sizeof(stack) ? stack : malloc(need);
    const char *sep = wr_rt_field_is(name, n, "Cookie") ? COOKIE_JOIN : HEADER_JOIN;
    int rc;

    if (key == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    wr_rt_cgi_key(key, name, n);
    rc = add_value(env, key, sep, value, vn);
    if (key != stack)
        free(key);
    return rc;
}

static int set_headers(PyObject *env, warren_req_t *req)
{
    size_t count = warren_req_header_count(req);

    for (size_t i = 0; i < count; i++) {
        const char *name, *value;
        size_t n, vn;

        if (warren_req_header(req, i, &name, &n, &value, &vn) < 0)
            continue;
        if (add_header(env, name, n, value, vn) < 0)
            return -1;
    }
    return 0;
}

PyObject *wpy_environ_new(warren_req_t *req, PyObject *input,
                          const wpy_target_t *t, PyObject *errors)
{
    PyObject *env = PyDict_Copy(base_environ);

    if (env == NULL)
        return NULL;
    if (set_head(env, req, t) < 0 || set_headers(env, req) < 0
        || PyDict_SetItemString(env, "wsgi.input", input) < 0
        || PyDict_SetItemString(env, "wsgi.errors", errors) < 0) {
        Py_DECREF(env);
        return NULL;
    }
    return env;
}
