/*
 * warren.node: the native half of Warren's `unit-http` package (Node.js
 * apps written for NGINX Unit). It gives http.js the worker channel
 * through libwarren's event-loop calls (warren.h, "event loops"), so
 * nothing here waits for the router: a call that cannot go on says so
 * (null, or fewer bytes written) and http.js waits for the channel.
 *
 *   connect(streams, onReadable)  says HELLO; onReadable() runs whenever
 *                                 the channel has input (a libuv poll)
 *   poll()                        takes what arrived: false once closed
 *   accept()                      the next request as an array, or null
 *   read(r)                       body bytes, an empty Buffer at the end,
 *                                 null when none arrived yet
 *   events(r), room(r)            WARREN_REQ_* flags; bytes write() may send
 *   start(r, status, fields)      the response head ([name, value, ...])
 *   head(r)                       sends it now, before any body
 *   write(r, buf, off, last)      sends what the credit allows of buf[off:],
 *                                 returns the new offset
 *   finish(r)                     ends the request: true when the channel
 *                                 must be looked at again
 *   fail(r), abort(r), close()
 *
 * A request the router aborted throws an Error with code ECONNABORTED
 * from read() and write(). One channel per process: the addon's instance
 * data holds it.
 */
#define NAPI_VERSION 8
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <node_api.h>
#include <uv.h>

#include "warren.h"

#define WN_READ_MAX   (64 * 1024)   /* body bytes one read() returns */
#define WN_HEAD_PARTS 10            /* accept(): the strings before the fields */
#define WN_ARGS_MAX   4

typedef struct {
    napi_env          env;
    warren_ctx_t     *ctx;          /* NULL: not connected, or closed */
    uv_poll_t         poll;
    bool              polling;
    napi_ref          on_readable;
    napi_async_context async;
    unsigned char     buf[WN_READ_MAX];
} wn_t;

typedef struct {
    wn_t         *wn;
    warren_req_t *req;              /* NULL once finished or aborted */
} wn_req_t;

/* ------------------------------------------------------------ helpers */

/* Throws Error(text) with err's code name ("ECONNABORTED"), or text alone. */
static napi_value throw_errno(napi_env env, int err, const char *text)
{
    const char *code = NULL;

    switch (err) {
    case ECONNABORTED: code = "ECONNABORTED"; break;
    case ECONNRESET:   code = "ECONNRESET"; break;
    case EPROTO:       code = "EPROTO"; break;
    case EINVAL:       code = "EINVAL"; break;
    case EMSGSIZE:     code = "EMSGSIZE"; break;
    case ENOMEM:       code = "ENOMEM"; break;
    case EPIPE:        code = "EPIPE"; break;
    case ENOENT:       code = "ENOENT"; break;
    case EBADF:        code = "EBADF"; break;
    default:           break;
    }
    napi_throw_error(env, code, text);
    return NULL;
}

static napi_value ctx_error(napi_env env, wn_t *wn, int err)
{
    char text[512];

    snprintf(text, sizeof(text), "warren channel: %s",
             wn->ctx != NULL && *warren_error(wn->ctx) ? warren_error(wn->ctx)
                                                       : strerror(err));
    return throw_errno(env, err, text);
}

static napi_value aborted(napi_env env)
{
    return throw_errno(env, ECONNABORTED, "the client went away (request aborted)");
}

/* The call's arguments and the instance; NULL (an exception pending) when
 * fewer than want arrived. */
static wn_t *args(napi_env env, napi_callback_info info, size_t want, napi_value *argv)
{
    size_t argc = WN_ARGS_MAX;
    napi_value tmp[WN_ARGS_MAX];
    wn_t *wn = NULL;

    if (napi_get_cb_info(env, info, &argc, tmp, NULL, NULL) != napi_ok
        || napi_get_instance_data(env, (void **) &wn) != napi_ok || wn == NULL)
        return NULL;
    if (argc < want) {
        napi_throw_type_error(env, NULL, "warren: too few arguments");
        return NULL;
    }
    for (size_t i = 0; i < want; i++)
        argv[i] = tmp[i];
    return wn;
}

/* The live request behind a handle, or NULL with an Error thrown. */
static wn_req_t *handle(napi_env env, napi_value v)
{
    wn_req_t *r = NULL;

    if (napi_get_value_external(env, v, (void **) &r) != napi_ok || r == NULL) {
        napi_throw_type_error(env, NULL, "warren: not a request handle");
        return NULL;
    }
    if (r->req == NULL || r->wn->ctx == NULL) {
        napi_throw_error(env, "ERR_STREAM_DESTROYED", "warren: the request is over");
        return NULL;
    }
    return r;
}

static napi_value str(napi_env env, const char *s, size_t n)
{
    napi_value v = NULL;

    napi_create_string_latin1(env, s, n, &v);
    return v;
}

static napi_value boolean(napi_env env, bool b)
{
    napi_value v = NULL;

    napi_get_boolean(env, b, &v);
    return v;
}

static napi_value number(napi_env env, double d)
{
    napi_value v = NULL;

    napi_create_double(env, d, &v);
    return v;
}

/* ------------------------------------------------------------ channel */

/* The channel has input: run the JS side's onReadable() as a callback
 * from the event loop (microtasks and nextTicks run after it). */
static void on_poll(uv_poll_t *p, int status, int events)
{
    wn_t *wn = p->data;
    napi_env env = wn->env;
    napi_handle_scope scope;
    napi_value cb, recv, res, exc;

    (void) status;
    (void) events;
    if (napi_open_handle_scope(env, &scope) != napi_ok)
        return;
    if (napi_get_reference_value(env, wn->on_readable, &cb) == napi_ok
        && napi_get_global(env, &recv) == napi_ok
        && napi_make_callback(env, wn->async, recv, cb, 0, NULL, &res) == napi_pending_exception
        && napi_get_and_clear_last_exception(env, &exc) == napi_ok)
        napi_fatal_exception(env, exc);     /* Node's uncaught exception */
    napi_close_handle_scope(env, scope);
}

static void stop_polling(wn_t *wn)
{
    if (wn->polling) {
        uv_poll_stop(&wn->poll);
        uv_close((uv_handle_t *) &wn->poll, NULL);
        wn->polling = false;
    }
}

/* The channel is done with: unwatched, closed, every request freed. */
static void shut(wn_t *wn)
{
    stop_polling(wn);
    warren_done(wn->ctx);
    wn->ctx = NULL;
}

static napi_value wn_connect(napi_env env, napi_callback_info info)
{
    napi_value argv[2], name;
    wn_t *wn = args(env, info, 2, argv);
    struct uv_loop_s *loop;
    uint32_t streams;
    int fd, fl, err;

    if (wn == NULL)
        return NULL;
    if (wn->ctx != NULL) {
        napi_throw_error(env, NULL, "warren: the channel is already connected");
        return NULL;
    }
    if (napi_get_value_uint32(env, argv[0], &streams) != napi_ok
        || streams < 1 || streams > WARREN_MAX_THREADS) {
        napi_throw_range_error(env, NULL, "warren: streams must be 1 to 64");
        return NULL;
    }
    if (napi_get_uv_event_loop(env, &loop) != napi_ok
        || napi_create_reference(env, argv[1], 1, &wn->on_readable) != napi_ok
        || napi_create_string_utf8(env, "warren.channel", NAPI_AUTO_LENGTH, &name) != napi_ok
        || napi_async_init(env, NULL, name, &wn->async) != napi_ok)
        return NULL;
    wn->ctx = warren_init_threads(streams);
    if (wn->ctx == NULL) {
        err = errno;
        return throw_errno(env, err, err == ENOENT
                           ? "warren: WARREN_CHANNEL_FD is not set (not started by warrend)"
                           : "warren: cannot connect to the router");
    }
    fd = warren_fd(wn->ctx);
    err = uv_poll_init(loop, &wn->poll, fd);
    if (err < 0) {
        warren_done(wn->ctx);
        wn->ctx = NULL;
        return throw_errno(env, -err, uv_strerror(err));
    }
    /* uv_poll_init made the descriptor non-blocking; libwarren's sends
     * rely on it blocking (a full socket buffer waits, it is no error).
     * The poll only watches readiness, which either mode gives. */
    fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
        char text[256];

        err = errno;
        snprintf(text, sizeof(text), "warren: fcntl(%s %d, F_SETFL) failed: %s",
                 WARREN_ENV_CHANNEL_FD, fd, strerror(err));
        uv_close((uv_handle_t *) &wn->poll, NULL);
        warren_done(wn->ctx);
        wn->ctx = NULL;
        return throw_errno(env, err, text);
    }
    wn->poll.data = wn;
    wn->polling = true;
    uv_poll_start(&wn->poll, UV_READABLE, on_poll);
    return NULL;
}

static napi_value wn_poll(napi_env env, napi_callback_info info)
{
    wn_t *wn = args(env, info, 0, NULL);

    if (wn == NULL)
        return NULL;
    if (wn->ctx == NULL)
        return boolean(env, false);
    if (warren_poll(wn->ctx) >= 0)
        return boolean(env, true);
    if (errno == ECONNRESET) {
        stop_polling(wn);       /* a closed channel stays readable */
        return boolean(env, false);
    }
    return ctx_error(env, wn, errno);
}

static napi_value wn_close(napi_env env, napi_callback_info info)
{
    wn_t *wn = args(env, info, 0, NULL);

    if (wn == NULL)
        return NULL;
    shut(wn);
    return NULL;
}

/* ------------------------------------------------------------ requests */

static void req_finalize(napi_env env, void *data, void *hint)
{
    wn_req_t *r = data;

    (void) env;
    (void) hint;
    /* Dropped by JS without an end: the router must still hear of it. */
    if (r->req != NULL && r->wn->ctx != NULL)
        warren_abort(r->req);
    free(r);
}

typedef const char *(*wn_getter_t)(const warren_req_t *, size_t *);

/* [handle, method, target, version, remote addr, remote port, local addr,
 *  local port, scheme, server name, [name, value, ...], upgrade] and, for
 * an upgrade, [read_timeout, keepalive_interval, max_frame_size] of
 * settings.http.websocket. */
static napi_value wn_accept(napi_env env, napi_callback_info info)
{
    static const wn_getter_t parts[WN_HEAD_PARTS - 1] = {
        warren_req_method, warren_req_target, warren_req_version,
        warren_req_remote_addr, warren_req_remote_port, warren_req_local_addr,
        warren_req_local_port, warren_req_scheme, warren_req_server_name,
    };
    wn_t *wn = args(env, info, 0, NULL);
    napi_value out, ext, fields, v;
    warren_req_t *req;
    wn_req_t *r;
    size_t n, nl, vl;
    const char *name, *value, *s;

    if (wn == NULL)
        return NULL;
    if (wn->ctx == NULL || warren_pending(wn->ctx) == 0) {
        napi_get_null(env, &out);
        return out;
    }
    req = warren_accept(wn->ctx);   /* at once: one is pending */
    if (req == NULL)
        return ctx_error(env, wn, errno);
    r = malloc(sizeof(*r));
    if (r == NULL) {
        warren_abort(req);
        return throw_errno(env, ENOMEM, "warren: out of memory");
    }
    r->wn = wn;
    r->req = req;
    if (napi_create_external(env, r, req_finalize, NULL, &ext) != napi_ok) {
        warren_abort(req);
        free(r);
        return NULL;
    }
    n = warren_req_header_count(req);
    if (napi_create_array_with_length(env, WN_HEAD_PARTS + 2, &out) != napi_ok
        || napi_create_array_with_length(env, 2 * n, &fields) != napi_ok)
        return NULL;
    napi_set_element(env, out, 0, ext);
    for (uint32_t i = 0; i < WN_HEAD_PARTS - 1; i++) {
        s = parts[i](req, &nl);
        napi_set_element(env, out, i + 1, str(env, s, nl));
    }
    for (size_t i = 0; i < n; i++) {
        warren_req_header(req, i, &name, &nl, &value, &vl);
        napi_set_element(env, fields, (uint32_t) (2 * i), str(env, name, nl));
        napi_set_element(env, fields, (uint32_t) (2 * i + 1), str(env, value, vl));
    }
    napi_set_element(env, out, WN_HEAD_PARTS, fields);
    v = boolean(env, warren_req_upgrade(req) != 0);
    napi_set_element(env, out, WN_HEAD_PARTS + 1, v);
    if (warren_req_upgrade(req)) {
        warren_websocket_t ws;

        warren_req_websocket(req, &ws);
        if (napi_create_array_with_length(env, 3, &v) != napi_ok)
            return NULL;
        napi_set_element(env, v, 0, number(env, ws.read_timeout));
        napi_set_element(env, v, 1, number(env, ws.keepalive_interval));
        napi_set_element(env, v, 2, number(env, (double) ws.max_frame_size));
        napi_set_element(env, out, WN_HEAD_PARTS + 2, v);
    }
    return out;
}

static napi_value wn_read(napi_env env, napi_callback_info info)
{
    napi_value argv[1], out;
    wn_t *wn = args(env, info, 1, argv);
    wn_req_t *r = wn != NULL ? handle(env, argv[0]) : NULL;
    unsigned ev;
    ssize_t n;

    if (r == NULL)
        return NULL;
    ev = warren_req_events(r->req);
    if (ev & WARREN_REQ_ABORTED)
        return aborted(env);
    if (!(ev & WARREN_REQ_READABLE)) {
        napi_get_null(env, &out);
        return out;
    }
    n = (ev & WARREN_REQ_BODY_END) ? 0 : warren_read(r->req, wn->buf, sizeof(wn->buf));
    if (n < 0)
        return errno == ECONNABORTED ? aborted(env) : ctx_error(env, wn, errno);
    if (napi_create_buffer_copy(env, (size_t) n, wn->buf, NULL, &out) != napi_ok)
        return NULL;
    return out;
}

static napi_value wn_events(napi_env env, napi_callback_info info)
{
    napi_value argv[1];
    wn_t *wn = args(env, info, 1, argv);
    wn_req_t *r = wn != NULL ? handle(env, argv[0]) : NULL;

    return r != NULL ? number(env, warren_req_events(r->req)) : NULL;
}

static napi_value wn_room(napi_env env, napi_callback_info info)
{
    napi_value argv[1];
    wn_t *wn = args(env, info, 1, argv);
    wn_req_t *r = wn != NULL ? handle(env, argv[0]) : NULL;

    return r != NULL ? number(env, (double) warren_write_room(r->req)) : NULL;
}

/* A JS string as latin-1 bytes (http.js has checked it holds no more),
 * in buf when it fits, else in memory the caller frees. */
static char *latin1(napi_env env, napi_value v, char *buf, size_t size, size_t *len)
{
    char *p = buf;

    if (napi_get_value_string_latin1(env, v, NULL, 0, len) != napi_ok)
        return NULL;
    if (*len + 1 > size && (p = malloc(*len + 1)) == NULL)
        return NULL;
    napi_get_value_string_latin1(env, v, p, *len + 1, len);
    return p;
}

static int add_field(napi_env env, wn_req_t *r, napi_value fields, uint32_t i)
{
    char nb[256], vb[1024];
    napi_value nv, vv;
    size_t nl = 0, vl = 0;
    char *name = NULL, *value = NULL;
    int rc = -1;

    if (napi_get_element(env, fields, i, &nv) != napi_ok
        || napi_get_element(env, fields, i + 1, &vv) != napi_ok)
        return -1;
    name = latin1(env, nv, nb, sizeof(nb), &nl);
    value = name != NULL ? latin1(env, vv, vb, sizeof(vb), &vl) : NULL;
    if (name == NULL || value == NULL)
        errno = ENOMEM;
    else
        rc = warren_response_add_header(r->req, name, nl, value, vl);
    if (name != nb)
        free(name);
    if (value != vb)
        free(value);
    return rc;
}

static napi_value wn_start(napi_env env, napi_callback_info info)
{
    napi_value argv[3];
    wn_t *wn = args(env, info, 3, argv);
    wn_req_t *r = wn != NULL ? handle(env, argv[0]) : NULL;
    uint32_t status, n;

    if (r == NULL)
        return NULL;
    if (napi_get_value_uint32(env, argv[1], &status) != napi_ok
        || napi_get_array_length(env, argv[2], &n) != napi_ok) {
        napi_throw_type_error(env, NULL, "warren: start(handle, status, fields)");
        return NULL;
    }
    if (warren_response_init(r->req, (int) status, n / 2) < 0)
        return ctx_error(env, wn, errno);
    for (uint32_t i = 0; i + 1 < n; i += 2)
        if (add_field(env, r, argv[2], i) < 0)
            return errno == ECONNABORTED ? aborted(env) : ctx_error(env, wn, errno);
    return NULL;
}

static napi_value wn_write(napi_env env, napi_callback_info info)
{
    napi_value argv[4];
    wn_t *wn = args(env, info, 4, argv);
    wn_req_t *r = wn != NULL ? handle(env, argv[0]) : NULL;
    void *data;
    size_t len, k;
    uint32_t off;
    bool last;
    int rc;

    if (r == NULL)
        return NULL;
    if (napi_get_buffer_info(env, argv[1], &data, &len) != napi_ok
        || napi_get_value_uint32(env, argv[2], &off) != napi_ok
        || napi_get_value_bool(env, argv[3], &last) != napi_ok || off > len) {
        napi_throw_type_error(env, NULL, "warren: write(handle, buffer, offset, last)");
        return NULL;
    }
    if (warren_req_events(r->req) & WARREN_REQ_ABORTED)
        return aborted(env);
    k = warren_write_room(r->req);
    if (k > len - off)
        k = len - off;
    if (k == 0 && len > off)            /* no credit: wait for a WINDOW */
        return number(env, off);
    if (last && k == len - off)
        rc = warren_write_end(r->req, (const char *) data + off, k);
    else
        rc = warren_write(r->req, (const char *) data + off, k);
    if (rc < 0)
        return errno == ECONNABORTED ? aborted(env) : ctx_error(env, wn, errno);
    return number(env, (double) (off + k));
}

/* Sends the head now (flushHeaders), before any body. */
static napi_value wn_head(napi_env env, napi_callback_info info)
{
    napi_value argv[1];
    wn_t *wn = args(env, info, 1, argv);
    wn_req_t *r = wn != NULL ? handle(env, argv[0]) : NULL;

    if (r == NULL)
        return NULL;
    if (warren_response_send_head(r->req) < 0)
        return errno == ECONNABORTED ? aborted(env) : ctx_error(env, wn, errno);
    return NULL;
}

static napi_value wn_finish(napi_env env, napi_callback_info info)
{
    napi_value argv[1];
    wn_t *wn = args(env, info, 1, argv);
    wn_req_t *r = wn != NULL ? handle(env, argv[0]) : NULL;
    warren_req_t *req;
    bool took;

    if (r == NULL)
        return NULL;
    req = r->req;
    took = !(warren_req_events(req) & WARREN_REQ_BODY_END);
    r->req = NULL;
    warren_finish(req);     /* a failure is the router's to see: aborted */
    return boolean(env, took);
}

/* The application failed before its head went out: 500. */
static napi_value wn_fail(napi_env env, napi_callback_info info)
{
    static const char body[] = "Internal Server Error\n";
    napi_value argv[1];
    wn_t *wn = args(env, info, 1, argv);
    wn_req_t *r = wn != NULL ? handle(env, argv[0]) : NULL;
    warren_req_t *req;
    int rc = -1;

    if (r == NULL)
        return NULL;
    req = r->req;
    r->req = NULL;
    if (!(warren_req_events(req) & WARREN_REQ_ABORTED)
        && warren_response_init(req, 500, 1) == 0
        && warren_response_add_header(req, "Content-Type", 12, "text/plain", 10) == 0)
        rc = warren_write_end(req, body, sizeof(body) - 1);
    if (rc == 0)
        warren_finish(req);
    else
        warren_abort(req);
    return NULL;
}

static napi_value wn_abort(napi_env env, napi_callback_info info)
{
    napi_value argv[1];
    wn_t *wn = args(env, info, 1, argv);
    wn_req_t *r = NULL;

    if (wn == NULL || napi_get_value_external(env, argv[0], (void **) &r) != napi_ok)
        return NULL;
    if (r != NULL && r->req != NULL && wn->ctx != NULL)
        warren_abort(r->req);
    if (r != NULL)
        r->req = NULL;
    return NULL;
}

/* ------------------------------------------------------------ module */

/* At the environment's end. wn itself is left allocated: request handles
 * may be finalized after it, and they look at wn->ctx (NULL now). */
static void instance_free(napi_env env, void *data, void *hint)
{
    wn_t *wn = data;

    (void) env;
    (void) hint;
    shut(wn);
}

static napi_value init(napi_env env, napi_value exports)
{
    static const struct { const char *name; napi_callback fn; } fns[] = {
        { "connect", wn_connect }, { "poll", wn_poll }, { "close", wn_close },
        { "accept", wn_accept }, { "read", wn_read }, { "events", wn_events },
        { "room", wn_room }, { "start", wn_start }, { "head", wn_head }, { "write", wn_write },
        { "finish", wn_finish }, { "fail", wn_fail }, { "abort", wn_abort },
    };
    static const struct { const char *name; unsigned value; } consts[] = {
        { "READABLE", WARREN_REQ_READABLE }, { "BODY_END", WARREN_REQ_BODY_END },
        { "ABORTED", WARREN_REQ_ABORTED }, { "MAX_STREAMS", WARREN_MAX_THREADS },
    };
    wn_t *wn = calloc(1, sizeof(*wn));
    napi_value v;

    if (wn == NULL || napi_set_instance_data(env, wn, instance_free, NULL) != napi_ok) {
        free(wn);
        napi_throw_error(env, NULL, "warren: out of memory");
        return NULL;
    }
    wn->env = env;
    for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
        if (napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &v)
            != napi_ok || napi_set_named_property(env, exports, fns[i].name, v) != napi_ok)
            return NULL;
    }
    for (size_t i = 0; i < sizeof(consts) / sizeof(consts[0]); i++)
        napi_set_named_property(env, exports, consts[i].name, number(env, consts[i].value));
    return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
