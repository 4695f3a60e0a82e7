/*
 * warren.Native: the container's calls on a request (src/runtime/java/
 * warren/Native.java has the contract). Each is a thin wrapper over one
 * libwarren call; a failure becomes a java.io.IOException whose message
 * says which call and why (a client that left: ECONNABORTED), so the
 * container can tell a broken request from its own errors.
 *
 * Bytes cross between Java arrays and libwarren through a small buffer
 * copied in and out, never a pinned array: libwarren blocks while the
 * client is slow, and the JVM must not be held from collecting meanwhile.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/java/wjv.h"

/* Bytes moved per libwarren call: a channel message's worth. */
enum { WJV_CHUNK = 64 * 1024 };

static warren_req_t *req_of(jlong handle)
{
    return (warren_req_t *) (intptr_t) handle;
}

static void throw_io(JNIEnv *env, const char *call, int err)
{
    char msg[256];
    jclass c = (*env)->FindClass(env, "java/io/IOException");

    if (c == NULL)
        return;                 /* FindClass left its own exception */
    snprintf(msg, sizeof(msg), "%s: %s", call,
             err == ECONNABORTED ? "the client went away" : strerror(err));
    (*env)->ThrowNew(env, c, msg);
    (*env)->DeleteLocalRef(env, c);
}

/* One field of the head: the bytes and their NUL. */
static void put(char **p, const char *s, size_t n)
{
    memcpy(*p, s, n);
    (*p)[n] = '\0';
    *p += n + 1;
}

typedef const char *(*getter_t)(const warren_req_t *, size_t *);

static const getter_t head_getters[] = {
    warren_req_method, warren_req_target, warren_req_path, warren_req_query,
    warren_req_version, warren_req_remote_addr, warren_req_remote_port,
    warren_req_local_addr, warren_req_local_port, warren_req_server_name,
    warren_req_scheme,
};
#define N_GETTERS (sizeof(head_getters) / sizeof(head_getters[0]))

/* The whole head in one array (one JNI crossing per request). */
static jbyteArray native_head(JNIEnv *env, jclass cls, jlong handle)
{
    const warren_req_t *req = req_of(handle);
    size_t count = warren_req_header_count(req), total = 0, n, vn;
    const char *s, *v;
    jbyteArray out = NULL;
    char *buf, *p;

    for (size_t i = 0; i < N_GETTERS; i++) {
        head_getters[i](req, &n);
        total += n + 1;
    }
    for (size_t i = 0; i < count; i++)
        if (warren_req_header(req, i, &s, &n, &v, &vn) == 0)
            total += n + vn + 2;
    if (total > INT32_MAX || (buf = malloc(total)) == NULL) {
        throw_io(env, "head", ENOMEM);
        return NULL;
    }
    p = buf;
    for (size_t i = 0; i < N_GETTERS; i++) {
        s = head_getters[i](req, &n);
        put(&p, s, n);
    }
    for (size_t i = 0; i < count; i++)
        if (warren_req_header(req, i, &s, &n, &v, &vn) == 0) {
            put(&p, s, n);
            put(&p, v, vn);
        }
    out = (*env)->NewByteArray(env, (jsize) (p - buf));
    if (out != NULL)
        (*env)->SetByteArrayRegion(env, out, 0, (jsize) (p - buf), (const jbyte *) buf);
    free(buf);
    return out;
}

/* Java checks bounds before calling; these keep a wrong call from
 * touching memory it should not. */
static bool bad_range(JNIEnv *env, jbyteArray a, jint off, jint len)
{
    jsize size = a != NULL ? (*env)->GetArrayLength(env, a) : 0;

    if (a == NULL || off < 0 || len < 0 || off > size - len) {
        jclass c = (*env)->FindClass(env, "java/lang/IndexOutOfBoundsException");
        if (c != NULL)
            (*env)->ThrowNew(env, c, "Native: bad array range");
        return true;
    }
    return false;
}

static jint native_read(JNIEnv *env, jclass cls, jlong handle, jbyteArray a,
                        jint off, jint len)
{
    char buf[WJV_CHUNK];
    ssize_t n;

    if (bad_range(env, a, off, len))
        return 0;
    if (len == 0)
        return 0;
    n = warren_read(req_of(handle), buf, (size_t) len < sizeof(buf) ? (size_t) len : sizeof(buf));
    if (n < 0) {
        throw_io(env, "read", errno);
        return 0;
    }
    (*env)->SetByteArrayRegion(env, a, off, (jsize) n, (const jbyte *) buf);
    return (jint) n;
}

/* The response head from "name\0value\0...". */
static void native_start(JNIEnv *env, jclass cls, jlong handle, jint status,
                         jbyteArray fields)
{
    warren_req_t *req = req_of(handle);
    jsize size = fields != NULL ? (*env)->GetArrayLength(env, fields) : 0;
    jbyte *f = size > 0 ? (*env)->GetByteArrayElements(env, fields, NULL) : NULL;
    const char *p = (const char *) f, *end = p + size;
    size_t nfields = 0;

    for (const char *q = p; q < end; q++)
        nfields += *q == '\0';
    if (warren_response_init(req, status, nfields / 2) < 0)
        throw_io(env, "start", errno);
    while (p != NULL && p < end && !(*env)->ExceptionCheck(env)) {
        const char *name = p, *value = memchr(name, '\0', (size_t) (end - name));
        const char *next = value ? memchr(value + 1, '\0', (size_t) (end - value - 1)) : NULL;

        if (value == NULL || next == NULL) {
            throw_io(env, "start: a field without its NUL", EINVAL);
            break;
        }
        value++;
        if (warren_response_add_header(req, name, (size_t) (value - 1 - name),
                                       value, (size_t) (next - value)) < 0)
            throw_io(env, "start: header field", errno);
        p = next + 1;
    }
    if (f != NULL)
        (*env)->ReleaseByteArrayElements(env, fields, f, JNI_ABORT);
}

/* Sends a[off..off+len) in chunks; the last one with warren_write_end
 * when end is set (head, body and end in one message when they fit). */
static void send_range(JNIEnv *env, jlong handle, jbyteArray a, jint off, jint len, bool end)
{
    warren_req_t *req = req_of(handle);
    char buf[WJV_CHUNK];

    if (bad_range(env, a, off, len))
        return;
    do {
        size_t n = (size_t) len < sizeof(buf) ? (size_t) len : sizeof(buf);
        bool last = n == (size_t) len;
        int rc;

        (*env)->GetByteArrayRegion(env, a, off, (jsize) n, (jbyte *) buf);
        rc = last && end ? warren_write_end(req, buf, n)
           : n > 0 ? warren_write(req, buf, n) : 0;
        if (rc < 0) {
            throw_io(env, end ? "writeEnd" : "write", errno);
            return;
        }
        off += (jint) n;
        len -= (jint) n;
    } while (len > 0);
}

static void native_write(JNIEnv *env, jclass cls, jlong handle, jbyteArray a,
                         jint off, jint len)
{
    send_range(env, handle, a, off, len, false);
}

static void native_write_end(JNIEnv *env, jclass cls, jlong handle, jbyteArray a,
                             jint off, jint len)
{
    send_range(env, handle, a, off, len, true);
}

/* The head as it stands (a 101's, before its tunnel opens). */
static void native_send_head(JNIEnv *env, jclass cls, jlong handle)
{
    if (warren_response_send_head(req_of(handle)) < 0)
        throw_io(env, "sendHead", errno);
}

static jboolean native_upgrade(JNIEnv *env, jclass cls, jlong handle)
{
    return warren_req_upgrade(req_of(handle)) ? JNI_TRUE : JNI_FALSE;
}

/* settings.http.websocket of an upgrade request, indexed as Native.WS_*. */
enum { WS_READ_TIMEOUT, WS_KEEPALIVE_INTERVAL, WS_MAX_FRAME_SIZE, WS_NSETTINGS };

static jlongArray native_websocket(JNIEnv *env, jclass cls, jlong handle)
{
    warren_websocket_t ws;
    jlong v[WS_NSETTINGS];
    jlongArray out;

    if (warren_req_websocket(req_of(handle), &ws) < 0) {
        throw_io(env, "websocket", errno);
        return NULL;
    }
    v[WS_READ_TIMEOUT] = (jlong) ws.read_timeout;
    v[WS_KEEPALIVE_INTERVAL] = (jlong) ws.keepalive_interval;
    v[WS_MAX_FRAME_SIZE] = (jlong) ws.max_frame_size;
    out = (*env)->NewLongArray(env, WS_NSETTINGS);
    if (out != NULL)
        (*env)->SetLongArrayRegion(env, out, 0, WS_NSETTINGS, v);
    return out;
}

/* The end of a request the container took over (a tunnel): the handle is
 * invalid after it. Its failure (the client left first) changes nothing. */
static void native_finish(JNIEnv *env, jclass cls, jlong handle)
{
    warren_finish(req_of(handle));
}

int wjv_natives_register(JNIEnv *env)
{
    static const JNINativeMethod methods[] = {
        { "head", "(J)[B", (void *) native_head },
        { "read", "(J[BII)I", (void *) native_read },
        { "start", "(JI[B)V", (void *) native_start },
        { "write", "(J[BII)V", (void *) native_write },
        { "writeEnd", "(J[BII)V", (void *) native_write_end },
        { "sendHead", "(J)V", (void *) native_send_head },
        { "upgrade", "(J)Z", (void *) native_upgrade },
        { "websocket", "(J)[J", (void *) native_websocket },
        { "finish", "(J)V", (void *) native_finish },
    };
    jclass c = (*env)->FindClass(env, "warren/Native");
    int rc = -1;

    if (c == NULL) {
        wjv_log_exception(env, "warren.jar: class warren.Native");
        return -1;
    }
    if ((*env)->RegisterNatives(env, c, methods, sizeof(methods) / sizeof(methods[0])) == 0)
        rc = 0;
    else
        wjv_log_exception(env, "warren.jar: the methods of warren.Native");
    (*env)->DeleteLocalRef(env, c);
    return rc;
}
