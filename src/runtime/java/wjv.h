/*
 * warren-java: the parts of the Java runtime (main.c: options and serving
 * threads; jvm.c: the virtual machine and the container's entry points;
 * natives.c: warren.Native, the container's way to the channel).
 */
#ifndef WR_RUNTIME_JAVA_H
#define WR_RUNTIME_JAVA_H

#include <jni.h>
#include <stdbool.h>
#include <stddef.h>

#include "warren.h"
#include "runtime/common/log.h"

#define WJV_PROGRAM "warren-java"
#define WJV_DEFAULT_LOCALE "C.UTF-8"   /* LC_CTYPE when the environment names no locale */

#define wjv_log wr_rt_log

/*
 * An upgraded request (a WebSocket) leaves its serving thread for one of
 * its own and keeps its stream for its whole life. A webapp that may
 * upgrade (warren.Container.upgrades) opens the channel with its "threads"
 * and room for every tunnel the other streams allow (warren_init_tunnels),
 * so its serving threads still get requests while tunnels are open, and
 * the router counts the worker busy, or scales up, by its requests alone.
 * With 64 threads a tunnel takes a serving thread's stream (at least one
 * tunnel is always allowed). Any other webapp opens it with its "threads"
 * alone.
 */
#define WJV_STREAMS     WARREN_MAX_THREADS

/* What warren.Container.serve says became of a request. */
enum {
    WJV_SERVE_ABORT  = 0,       /* cut it: warren_abort */
    WJV_SERVE_FINISH = 1,       /* whole: warren_finish */
    WJV_SERVE_TUNNEL = 2,       /* a tunnel's thread holds it and ends it */
};

typedef struct {
    const char  *webapp;        /* "webapp": a .war file or a directory */
    char       **classpath;     /* "classpath", NULL-terminated */
    char       **jvm_options;   /* "options", NULL-terminated */
    unsigned     threads;
    size_t       stack_size;    /* 0: the default */
} wjv_options_t;

/* The virtual machine and what the runtime calls in it. */
typedef struct {
    JavaVM     *vm;
    jclass      container;      /* warren.Container (global ref) */
    jmethodID   serve;          /* static int serve(long): WJV_SERVE_* */
    jmethodID   channel;        /* static void channel(int, int) */
    jmethodID   drain;          /* static void drain(): tunnels let go */
    jmethodID   destroy;        /* static void destroy() */
    char       *tmpdir;         /* the container's scratch directory */
    int         lock_fd;        /* held for life: tmpdir is in use (jvm.c) */
    bool        upgrades;       /* the webapp may upgrade requests */
} wjv_jvm_t;

/*
 * Starts the JVM with warren.jar, Debian's servlet API and the "options",
 * registers warren.Native and runs warren.Container.init: the webapp is
 * loaded when it returns 0. -1 after logging the cause as the last line
 * (the control API reports it).
 */
int wjv_jvm_start(wjv_jvm_t *j, const wjv_options_t *o);

/* Serves one request in the calling (attached) thread and ends it. */
void wjv_jvm_serve(wjv_jvm_t *j, JNIEnv *env, warren_req_t *req);

/* The streams the channel was opened with, and the serving threads: the
 * container's room for tunnels. */
void wjv_jvm_channel(wjv_jvm_t *j, unsigned streams, unsigned threads);

/* Once the channel ended: waits until no tunnel thread is in a libwarren
 * call, and none will make one (warren_done may then free the context). */
void wjv_jvm_drain(wjv_jvm_t *j);

/* The webapp's destroy (servlets, filters, listeners), then the scratch
 * directory goes. The JVM itself is left to the process's exit. */
void wjv_jvm_stop(wjv_jvm_t *j);

/* Logs a pending Java exception (its stack trace, then what, the cause
 * as one line) and clears it. */
void wjv_log_exception(JNIEnv *env, const char *what);

/* Registers the methods of warren.Native. 0, or -1 logged. */
int wjv_natives_register(JNIEnv *env);

#endif
