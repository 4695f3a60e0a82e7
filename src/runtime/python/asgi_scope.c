/*
 * warren-python: the ASGI HTTP connection scope of a request (ASGI HTTP
 * spec 2.3). What the request head says, in the types the spec gives:
 * text as str, raw bytes as bytes, header names lowercased.
 *
 * path is the whole decoded path, root_path included (as Starlette and
 * current uvicorn expect; the spec's root_path is WSGI's SCRIPT_NAME, set
 * from the app's "prefix" when the path lies under it, else "").
 *
 * The keys are interned once, so a scope costs its values only.
 */
#include <string.h>

#include "runtime/python/asgi.h"

#define HTTP_VERSION_PREFIX  "HTTP/"
#define ASGI_VERSION         "3.0"
#define ASGI_HTTP_SPEC       "2.3"
/* "HTTP/2.0" is "2" in a scope, as "HTTP/3.0" is "3". */
#define MINOR_ZERO           ".0"

enum {
    HTTP_VERSION_PREFIX_LEN = sizeof(HTTP_VERSION_PREFIX) - 1,
    MINOR_ZERO_LEN          = sizeof(MINOR_ZERO) - 1,
    PORT_BASE               = 10,
};

typedef enum {
    K_TYPE, K_ASGI, K_VERSION, K_SPEC_VERSION, K_HTTP_VERSION, K_METHOD,
    K_SCHEME, K_PATH, K_RAW_PATH, K_QUERY_STRING, K_ROOT_PATH, K_HEADERS,
    K_CLIENT, K_SERVER, V_HTTP, V_ASGI_VERSION, V_HTTP_SPEC,
    NSTRS
} str_id_t;

static const char *const str_text[NSTRS] = {
    [K_TYPE] = "type", [K_ASGI] = "asgi", [K_VERSION] = "version",
    [K_SPEC_VERSION] = "spec_version", [K_HTTP_VERSION] = "http_version",
    [K_METHOD] = "method", [K_SCHEME] = "scheme", [K_PATH] = "path",
    [K_RAW_PATH] = "raw_path", [K_QUERY_STRING] = "query_string",
    [K_ROOT_PATH] = "root_path", [K_HEADERS] = "headers",
    [K_CLIENT] = "client", [K_SERVER] = "server", [V_HTTP] = "http",
    [V_ASGI_VERSION] = ASGI_VERSION, [V_HTTP_SPEC] = ASGI_HTTP_SPEC,
};

static PyObject *strs[NSTRS];

static int strs_init(void)
{
    if (strs[0] != NULL)
        return 0;
    for (int i = 0; i < NSTRS; i++) {
        strs[i] = PyUnicode_InternFromString(str_text[i]);
        if (strs[i] == NULL)
            return -1;
    }
    return 0;
}

/* Sets key to value and drops the reference to value (NULL: failed). */
static int put(PyObject *d, str_id_t key, PyObject *value)
{
    int rc;

    if (value == NULL)
        return -1;
    rc = PyDict_SetItem(d, strs[key], value);
    Py_DECREF(value);
    return rc;
}

static PyObject *latin1(const char *p, size_t n)
{
    return PyUnicode_DecodeLatin1(p, (Py_ssize_t) n, NULL);
}

/* {"version": "3.0", "spec_version": "2.3"}: a dict of its own per scope,
 * as the application may change its scope. */
static PyObject *asgi_info(void)
{
    PyObject *d = PyDict_New();

    if (d == NULL)
        return NULL;
    if (PyDict_SetItem(d, strs[K_VERSION], strs[V_ASGI_VERSION]) < 0
        || PyDict_SetItem(d, strs[K_SPEC_VERSION], strs[V_HTTP_SPEC]) < 0) {
        Py_DECREF(d);
        return NULL;
    }
    return d;
}

static PyObject *http_version(warren_req_t *req)
{
    size_t n;
    const char *v = warren_req_version(req, &n);

    if (n > HTTP_VERSION_PREFIX_LEN
        && memcmp(v, HTTP_VERSION_PREFIX, HTTP_VERSION_PREFIX_LEN) == 0) {
        v += HTTP_VERSION_PREFIX_LEN;
        n -= HTTP_VERSION_PREFIX_LEN;
    }
    if (n > MINOR_ZERO_LEN && v[0] != '1'
        && memcmp(v + n - MINOR_ZERO_LEN, MINOR_ZERO, MINOR_ZERO_LEN) == 0)
        n -= MINOR_ZERO_LEN;
    return latin1(v, n);
}

/* The target up to its query: the path as the client sent it. */
static PyObject *raw_path(warren_req_t *req)
{
    size_t n;
    const char *t = warren_req_target(req, &n);
    const char *q = memchr(t, '?', n);

    return PyBytes_FromStringAndSize(t, q != NULL ? q - t : (Py_ssize_t) n);
}

/* The prefix, when the path lies under it at a segment boundary (the
 * rule of WSGI's SCRIPT_NAME, environ.c). */
static PyObject *root_path(const char *path, size_t n, const wpy_target_t *t)
{
    size_t k = t->prefix_len;

    if (k > 0 && n >= k && memcmp(path, t->prefix, k) == 0
        && (n == k || path[k] == '/'))
        return latin1(t->prefix, k);
    return latin1("", 0);
}

/* (host, port): port an int, or None when the address has none (a unix
 * socket). */
static PyObject *address(const char *host, size_t hn, const char *port,
                         size_t pn)
{
    PyObject *h = latin1(host, hn), *p, *pair;

    if (h == NULL)
        return NULL;
    p = pn > 0 ? PyLong_FromString(port, NULL, PORT_BASE) : Py_NewRef(Py_None);
    if (p == NULL) {
        Py_DECREF(h);
        return NULL;
    }
    pair = PyTuple_Pack(2, h, p);
    Py_DECREF(h);
    Py_DECREF(p);
    return pair;
}

/* client is None when the peer has no port (ASGI: "None if unknown"). */
static PyObject *client(warren_req_t *req)
{
    size_t hn, pn;
    const char *host = warren_req_remote_addr(req, &hn);
    const char *port = warren_req_remote_port(req, &pn);

    if (pn == 0)
        return Py_NewRef(Py_None);
    return address(host, hn, port, pn);
}

static PyObject *server(warren_req_t *req)
{
    size_t hn, pn;
    const char *host = warren_req_local_addr(req, &hn);
    const char *port = warren_req_local_port(req, &pn);

    return address(host, hn, port, pn);
}

/* The name lowercased, as ASGI wants it. */
static PyObject *lower_bytes(const char *p, size_t n)
{
    PyObject *b = PyBytes_FromStringAndSize(NULL, (Py_ssize_t) n);
    char *out;

    if (b == NULL)
        return NULL;
    out = PyBytes_AS_STRING(b);
    for (size_t i = 0; i < n; i++)
        out[i] = p[i] >= 'A' && p[i] <= 'Z' ? (char) (p[i] - 'A' + 'a')
                                            : p[i];
    return b;
}

/* [(name, value), ...] in the order sent; repeated fields stay apart. */
static PyObject *headers(warren_req_t *req)
{
    size_t count = warren_req_header_count(req);
    PyObject *list = PyList_New((Py_ssize_t) count);

    if (list == NULL)
        return NULL;
    for (size_t i = 0; i < count; i++) {
        const char *name = "", *value = "";
        size_t nn = 0, vn = 0;
        PyObject *n, *v, *pair = NULL;

        warren_req_header(req, i, &name, &nn, &value, &vn);
        n = lower_bytes(name, nn);
        v = n != NULL ? PyBytes_FromStringAndSize(value, (Py_ssize_t) vn)
                      : NULL;
        if (v != NULL)
            pair = PyTuple_Pack(2, n, v);
        Py_XDECREF(n);
        Py_XDECREF(v);
        if (pair == NULL) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, (Py_ssize_t) i, pair);
    }
    return list;
}

static int put_head(PyObject *d, warren_req_t *req, const wpy_target_t *t)
{
    size_t n, pn, qn;
    const char *method = warren_req_method(req, &n);
    const char *path = warren_req_path(req, &pn);
    const char *query = warren_req_query(req, &qn);
    const char *scheme;

    if (put(d, K_METHOD, latin1(method, n)) < 0)
        return -1;
    scheme = warren_req_scheme(req, &n);
    if (put(d, K_SCHEME, latin1(scheme, n)) < 0
        || put(d, K_HTTP_VERSION, http_version(req)) < 0
        /* Percent-decoded by the router; UTF-8 decoded here (bytes that
         * are not UTF-8 become U+FFFD, as uvicorn's unquote does). */
        || put(d, K_PATH, PyUnicode_DecodeUTF8(path, (Py_ssize_t) pn,
                                               "replace")) < 0
        || put(d, K_RAW_PATH, raw_path(req)) < 0
        || put(d, K_QUERY_STRING,
               PyBytes_FromStringAndSize(query, (Py_ssize_t) qn)) < 0
        || put(d, K_ROOT_PATH, root_path(path, pn, t)) < 0)
        return -1;
    return 0;
}

PyObject *wpy_asgi_scope(warren_req_t *req, const wpy_target_t *t)
{
    PyObject *d;

    if (strs_init() < 0)
        return NULL;
    d = PyDict_New();
    if (d == NULL)
        return NULL;
    if (PyDict_SetItem(d, strs[K_TYPE], strs[V_HTTP]) < 0
        || put(d, K_ASGI, asgi_info()) < 0
        || put_head(d, req, t) < 0
        || put(d, K_HEADERS, headers(req)) < 0
        || put(d, K_CLIENT, client(req)) < 0
        || put(d, K_SERVER, server(req)) < 0) {
        Py_DECREF(d);
        return NULL;
    }
    return d;
}
