/*
 * warren-java: the Java runtime, a worker program on libwarren serving one
 * servlet web application ("type": "java", as in Unit). It starts a JVM,
 * loads the webapp into Warren's servlet container (build/java/warren.jar,
 * sources in src/runtime/java/warren/) and serves with "threads" threads,
 * each attached to the JVM; an upgraded request (WebSocket) goes on in a
 * Java thread of its own (warren/Tunnel.java), and a webapp that may
 * upgrade opens the channel with room for tunnels (wjv.h: WJV_STREAMS).
 * There is no zygote (jvm.c says why): every worker starts its own JVM.
 * Only this program links libjvm.
 *
 * Environment: WARREN_CHANNEL_FD, WARREN_APP_NAME, WARREN_WORKER_ID (see
 * warren.h) and, from the application's options (src/app/spec.c):
 *   WARREN_JAVA_WEBAPP             "webapp", a .war file or a directory
 *   WARREN_JAVA_CLASSPATH          "classpath", a JSON array of paths
 *   WARREN_JAVA_OPTIONS            "options", a JSON array of JVM options
 *   WARREN_JAVA_THREADS            "threads", default 1
 *   WARREN_JAVA_THREAD_STACK_SIZE  "thread_stack_size", bytes
 *
 * A worker whose webapp does not load exits before HELLO, its last stderr
 * line the cause (the router reports it through the control API):
 *   warren-java[shop:812]: webapp: java.lang.ClassNotFoundException: ...
 *
 * Exit status: 0 when the router closed the channel; 1 when the channel
 * failed; 69 when warren_init failed; 71 when the JVM or the webapp did not
 * load; 78 for a bad WARREN_JAVA_* value.
 */
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/common/exit.h"
#include "runtime/common/options.h"
#include "runtime/java/wjv.h"

#define ENV_WEBAPP      "WARREN_JAVA_WEBAPP"
#define ENV_CLASSPATH   "WARREN_JAVA_CLASSPATH"
#define ENV_OPTIONS     "WARREN_JAVA_OPTIONS"
#define ENV_THREADS     "WARREN_JAVA_THREADS"
#define ENV_STACK_SIZE  "WARREN_JAVA_THREAD_STACK_SIZE"

static void free_strings(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

/* A JSON array of strings from var into a NULL-terminated vector (an
 * empty one when var is unset). 0, or -1 logged. */
static int string_list(const char *var, char ***out)
{
    const char *text = getenv(var);
    json_error_t jerr;
    json_t *a = NULL, *v;
    size_t i;

    *out = NULL;
    if (text != NULL && text[0] != '\0') {
        a = json_loads(text, 0, &jerr);
        if (!json_is_array(a)) {
            wjv_log("%s must be a JSON array of strings, not \"%s\"", var, text);
            json_decref(a);
            return -1;
        }
    }
    if ((*out = calloc(json_array_size(a) + 1, sizeof(char *))) == NULL) {
        wjv_log("out of memory for %s", var);
        json_decref(a);
        return -1;
    }
    json_array_foreach(a, i, v) {
        if (!json_is_string(v) || ((*out)[i] = strdup(json_string_value(v))) == NULL) {
            wjv_log("%s: entry %zu is not a string", var, i);
            free_strings(*out);
            *out = NULL;
            json_decref(a);
            return -1;
        }
    }
    json_decref(a);
    return 0;
}

/* The configuration was validated before: a bad value means the runtime
 * was started by hand. */
static int options_read(wjv_options_t *o)
{
    memset(o, 0, sizeof(*o));
    o->webapp = getenv(ENV_WEBAPP);
    if (o->webapp == NULL || o->webapp[0] == '\0') {
        wjv_log(ENV_WEBAPP " is not set: no webapp to run");
        return -1;
    }
    if (wr_rt_threads(ENV_THREADS, &o->threads) < 0
        || wr_rt_stack_size(ENV_STACK_SIZE, &o->stack_size) < 0
        || string_list(ENV_CLASSPATH, &o->classpath) < 0
        || string_list(ENV_OPTIONS, &o->jvm_options) < 0)
        return -1;
    return 0;
}

typedef struct {
    warren_ctx_t *ctx;
    wjv_jvm_t    *jvm;
    unsigned      index;
    pthread_t     th;
    int           started;
    int           failed;       /* the channel failed under this thread */
} server_t;

static void *serve(void *arg)
{
    server_t *s = arg;
    char name[32];
    JavaVMAttachArgs attach = { .version = JNI_VERSION_10, .name = name };
    JNIEnv *env;
    warren_req_t *req;

    snprintf(name, sizeof(name), "warren-%u", s->index);
    if ((*s->jvm->vm)->AttachCurrentThread(s->jvm->vm, (void **) &env, &attach) != JNI_OK) {
        wjv_log("AttachCurrentThread(serving thread %u) failed", s->index);
        s->failed = 1;
        return NULL;
    }
    while ((req = warren_accept(s->ctx)) != NULL)
        wjv_jvm_serve(s->jvm, env, req);
    if (errno != 0) {
        wjv_log("channel: %s", warren_error(s->ctx));
        s->failed = 1;
    }
    (*s->jvm->vm)->DetachCurrentThread(s->jvm->vm);
    return NULL;
}

/* Every serving thread is a new thread attached to the JVM (the main one
 * stays free to destroy the webapp at the end). A thread that cannot be
 * started leaves the others serving; none at all is a failure. */
static int serve_threads(warren_ctx_t *ctx, wjv_jvm_t *jvm, const wjv_options_t *o)
{
    server_t *srv = calloc(o->threads, sizeof(*srv));
    pthread_attr_t attr;
    unsigned started = 0;
    int rc, failed = 0;

    if (srv == NULL) {
        wjv_log("out of memory for %u serving threads", o->threads);
        return -1;
    }
    rc = pthread_attr_init(&attr);
    if (rc == 0 && o->stack_size > 0)
        rc = pthread_attr_setstacksize(&attr, o->stack_size);
    if (rc != 0) {
        wjv_log("pthread_attr_setstacksize(%zu) failed: %s", o->stack_size, strerror(rc));
        free(srv);
        return -1;
    }
    for (unsigned i = 0; i < o->threads; i++) {
        srv[i] = (server_t) { .ctx = ctx, .jvm = jvm, .index = i };
        rc = pthread_create(&srv[i].th, &attr, serve, &srv[i]);
        if (rc != 0)
            wjv_log("pthread_create(serving thread %u of %u) failed: %s", i + 1,
                    o->threads, strerror(rc));
        srv[i].started = rc == 0;
        started += rc == 0;
    }
    pthread_attr_destroy(&attr);
    for (unsigned i = 0; i < o->threads; i++) {
        if (!srv[i].started)
            continue;
        pthread_join(srv[i].th, NULL);
        failed |= srv[i].failed;
    }
    free(srv);
    return failed || started == 0 ? -1 : 0;
}

/*
 * The JVM takes the encoding of file names and of its default charset
 * from LC_CTYPE when it starts. A worker's environment usually names no
 * locale (Warren passes only what "environment" says), and in the C
 * locale the JVM encodes file names as ASCII: a webapp's café.txt could
 * not be opened. So with no locale at all, C.UTF-8 (built into glibc, so
 * present in any rootfs); a locale the app's environment names is kept.
 */
static void default_locale(void)
{
    static const char *const vars[] = { "LC_ALL", "LC_CTYPE", "LANG" };

    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
        const char *v = getenv(vars[i]);
        if (v != NULL && v[0] != '\0')
            return;
    }
    if (setenv("LC_CTYPE", WJV_DEFAULT_LOCALE, 0) < 0)
        wjv_log("setenv(LC_CTYPE=%s) failed: %s", WJV_DEFAULT_LOCALE, strerror(errno));
}

int main(void)
{
    wjv_options_t opt;
    wjv_jvm_t jvm;
    warren_ctx_t *ctx;
    unsigned tunnels;
    int rc;

    wr_rt_log_init(WJV_PROGRAM, getenv(WARREN_ENV_APP_NAME));
    if (options_read(&opt) < 0)
        return WR_RT_EXIT_CONFIG;
    default_locale();
    if (wjv_jvm_start(&jvm, &opt) < 0)
        return WR_RT_EXIT_LANG;
    tunnels = jvm.upgrades ? WJV_STREAMS - opt.threads : 0;
    ctx = warren_init_tunnels(opt.threads, tunnels);
    if (ctx == NULL) {
        wjv_log("cannot reach the router: " WARREN_ENV_CHANNEL_FD ": %s", strerror(errno));
        wjv_jvm_stop(&jvm);
        return WR_RT_EXIT_NO_ROUTER;
    }
    wjv_jvm_channel(&jvm, opt.threads + tunnels, opt.threads);
    rc = serve_threads(ctx, &jvm, &opt);
    wjv_jvm_drain(&jvm);
    warren_done(ctx);
    wjv_jvm_stop(&jvm);
    free_strings(opt.classpath);
    free_strings(opt.jvm_options);
    /* Not DestroyJavaVM: it would wait for every thread the webapp
     * started and never stopped. */
    return rc < 0 ? WR_RT_EXIT_CHANNEL : WR_RT_EXIT_OK;
}
