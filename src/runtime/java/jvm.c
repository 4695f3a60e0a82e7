/*
 * The Java virtual machine of a worker, and the three entry points of the
 * servlet container (warren.Container, in build/java/warren.jar): init
 * once, serve per request, destroy when the router closes the channel.
 *
 * A JVM cannot be forked once started (its threads do not survive fork),
 * so unlike the other runtimes there is no zygote: each worker starts its
 * own JVM and loads the webapp itself.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>

#include "runtime/java/wjv.h"

static void remove_tmpdir(wjv_jvm_t *j);

/* Debian's javax.servlet API (libservlet-api-java): the webapp's compile
 * time classpath, and so its run time one. */
#ifndef WJV_SERVLET_JAR
#define WJV_SERVLET_JAR "/usr/share/java/servlet-api.jar"
#endif
/* Apache Jasper's jars, for JSP (Makefile JSP_JARS): a jar that is not
 * there is skipped by the JVM, and the container then has no JSP. */
#ifndef WJV_JSP_JARS
#define WJV_JSP_JARS "/usr/share/java/tomcat9-jasper.jar"
#endif
/* Tomcat's WebSocket (JSR 356) jars (Makefile WS_JARS), as optional. */
#ifndef WJV_WS_JARS
#define WJV_WS_JARS "/usr/share/java/tomcat9-websocket.jar"
#endif
/* The container (build/java/warren.jar) travels inside the program
 * (jar.S), so a worker needs no path of the host to find it, in a rootfs
 * or not: it is written into the worker's scratch directory. */
extern const unsigned char wjv_jar_start[], wjv_jar_end[];
#define WJV_JAR_NAME "warren.jar"

/* ------------------------------------------------------------ exceptions */

/* Throwable.toString() of t, into buf. */
static void throwable_text(JNIEnv *env, jthrowable t, char *buf, size_t len)
{
    jclass c = (*env)->GetObjectClass(env, t);
    jmethodID m = (*env)->GetMethodID(env, c, "toString", "()Ljava/lang/String;");
    jstring s = m ? (*env)->CallObjectMethod(env, t, m) : NULL;
    const char *u = s ? (*env)->GetStringUTFChars(env, s, NULL) : NULL;

    snprintf(buf, len, "%s", u ? u : "an exception that cannot say what it is");
    if (u != NULL)
        (*env)->ReleaseStringUTFChars(env, s, u);
    (*env)->ExceptionClear(env);
}

void wjv_log_exception(JNIEnv *env, const char *what)
{
    jthrowable t = (*env)->ExceptionOccurred(env);
    char text[1024];

    if (t == NULL) {
        wjv_log("%s: failed", what);
        return;
    }
    (*env)->ExceptionDescribe(env);     /* the stack trace, on stderr */
    (*env)->ExceptionClear(env);
    throwable_text(env, t, text, sizeof(text));
    (*env)->DeleteLocalRef(env, t);
    wjv_log("%s: %s", what, text);      /* last: the cause the API reports */
}

/* ------------------------------------------------------------- start-up */

static char *join_path(char **items, const char *first, const char *second)
{
    size_t len = strlen(first) + strlen(second) + 2;
    char *s, *p;

    for (size_t i = 0; items && items[i]; i++)
        len += strlen(items[i]) + 1;
    if ((s = malloc(len)) == NULL)
        return NULL;
    p = s + sprintf(s, "%s:%s", first, second);
    for (size_t i = 0; items && items[i]; i++)
        p += sprintf(p, ":%s", items[i]);
    return s;
}

/* Writes the embedded container to DIR/warren.jar, its path into buf. */
static int jar_write(const wjv_jvm_t *j, char *buf, size_t len)
{
    size_t size = (size_t) (wjv_jar_end - wjv_jar_start), done = 0;
    int fd, rc = -1;

    if ((size_t) snprintf(buf, len, "%s/" WJV_JAR_NAME, j->tmpdir) >= len) {
        wjv_log("%s/" WJV_JAR_NAME ": path too long", j->tmpdir);
        return -1;
    }
    fd = open(buf, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0400);
    if (fd < 0) {
        wjv_log("open(%s) failed: %s", buf, strerror(errno));
        return -1;
    }
    while (done < size) {
        ssize_t n = write(fd, wjv_jar_start + done, size - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            wjv_log("write(%s) failed: %s", buf, n < 0 ? strerror(errno) : "no progress");
            goto out;
        }
        done += (size_t) n;
    }
    rc = 0;
out:
    if (close(fd) < 0 && rc == 0) {
        wjv_log("close(%s) failed: %s", buf, strerror(errno));
        rc = -1;
    }
    return rc;
}

static int create_vm(wjv_jvm_t *j, const wjv_options_t *o, JNIEnv **env)
{
    char jar[PATH_MAX], *cp_opt = NULL, *cp;
    JavaVMOption *opts;
    JavaVMInitArgs args = { .version = JNI_VERSION_10, .ignoreUnrecognized = JNI_FALSE };
    size_t n = 0, nuser = 0;
    jint rc;

    if (jar_write(j, jar, sizeof(jar)) < 0)
        return -1;
    while (o->jvm_options && o->jvm_options[nuser])
        nuser++;
    cp = join_path(o->classpath, jar, WJV_SERVLET_JAR ":" WJV_JSP_JARS ":" WJV_WS_JARS);
    opts = calloc(nuser + 2, sizeof(*opts));
    if (cp == NULL || opts == NULL || asprintf(&cp_opt, "-Djava.class.path=%s", cp) < 0) {
        wjv_log("out of memory for the JVM's options");
        free(cp);
        free(opts);
        return -1;
    }
    free(cp);
    opts[n++].optionString = cp_opt;
    /* The JVM keeps its hands off SIGTERM and SIGINT: the process manager's
     * signals end the worker as they end every other. */
    opts[n++].optionString = "-Xrs";
    for (size_t i = 0; i < nuser; i++)
        opts[n++].optionString = o->jvm_options[i];
    args.options = opts;
    args.nOptions = (jint) n;
    rc = JNI_CreateJavaVM(&j->vm, (void **) env, &args);
    free(cp_opt);
    free(opts);
    if (rc != JNI_OK) {
        wjv_log("JNI_CreateJavaVM failed (%d): a bad entry in \"options\"?", (int) rc);
        return -1;
    }
    return 0;
}

static jobjectArray string_array(JNIEnv *env, char **items)
{
    jsize n = 0;
    jclass sc = (*env)->FindClass(env, "java/lang/String");
    jobjectArray a;

    while (items && items[n])
        n++;
    a = sc ? (*env)->NewObjectArray(env, n, sc, NULL) : NULL;
    for (jsize i = 0; a != NULL && i < n; i++) {
        jstring s = (*env)->NewStringUTF(env, items[i]);
        if (s == NULL)
            return NULL;
        (*env)->SetObjectArrayElement(env, a, i, s);
        (*env)->DeleteLocalRef(env, s);
    }
    return a;
}

/* Finds warren.Container and runs its init. */
static int container_init(wjv_jvm_t *j, JNIEnv *env, const wjv_options_t *o)
{
    jclass c = (*env)->FindClass(env, "warren/Container");
    jmethodID init, upgrades;
    jstring webapp, tmp;
    jobjectArray cp;

    if (c == NULL) {
        wjv_log_exception(env, "warren.jar: class warren.Container");
        return -1;
    }
    j->container = (*env)->NewGlobalRef(env, c);
    init = (*env)->GetStaticMethodID(env, c, "init",
                                     "(Ljava/lang/String;[Ljava/lang/String;Ljava/lang/String;)V");
    upgrades = (*env)->GetStaticMethodID(env, c, "upgrades", "()Z");
    j->channel = (*env)->GetStaticMethodID(env, c, "channel", "(II)V");
    j->serve = (*env)->GetStaticMethodID(env, c, "serve", "(J)I");
    j->drain = (*env)->GetStaticMethodID(env, c, "drain", "()V");
    j->destroy = (*env)->GetStaticMethodID(env, c, "destroy", "()V");
    if (init == NULL || upgrades == NULL || j->channel == NULL || j->serve == NULL
        || j->drain == NULL || j->destroy == NULL) {
        wjv_log_exception(env, "warren.jar: warren.Container's methods");
        return -1;
    }
    webapp = (*env)->NewStringUTF(env, o->webapp);
    tmp = (*env)->NewStringUTF(env, j->tmpdir);
    cp = string_array(env, o->classpath);
    if (webapp == NULL || tmp == NULL || cp == NULL) {
        wjv_log_exception(env, "out of memory");
        return -1;
    }
    (*env)->CallStaticVoidMethod(env, c, init, webapp, cp, tmp);
    if ((*env)->ExceptionCheck(env)) {
        wjv_log_exception(env, "webapp");
        return -1;
    }
    j->upgrades = (*env)->CallStaticBooleanMethod(env, c, upgrades);
    if ((*env)->ExceptionCheck(env)) {
        wjv_log_exception(env, "warren.Container.upgrades");
        return -1;
    }
    return 0;
}

/*
 * A scratch directory of this process (an unpacked .war lives there). A
 * worker can be killed (SIGKILL) before it removes its own, so each holds
 * a lock on DIR/.lock for its life, and a starting worker removes the
 * directories whose lock it can take: their owner is gone. The lock file
 * is locked before it gets its name, so no directory is ever seen unlocked
 * while its owner lives.
 */
#define WJV_TMP_PREFIX "warren-java."
#define WJV_LOCK_NAME  ".lock"

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    if (remove(path) < 0)
        wjv_log("remove(%s) failed: %s", path, strerror(errno));
    return 0;                   /* go on with the rest */
}

static void sweep_stale(const char *base)
{
    DIR *d = opendir(base);
    struct dirent *e;
    char path[PATH_MAX];

    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        int fd;

        if (strncmp(e->d_name, WJV_TMP_PREFIX, strlen(WJV_TMP_PREFIX)) != 0)
            continue;
        if ((size_t) snprintf(path, sizeof(path), "%s/%s/" WJV_LOCK_NAME, base, e->d_name) >= sizeof(path))
            continue;
        fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
            continue;           /* not ours to judge (or not yet made) */
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
            snprintf(path, sizeof(path), "%s/%s", base, e->d_name);
            nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS);
        }
        close(fd);
    }
    closedir(d);
}

static int make_tmpdir(wjv_jvm_t *j)
{
    const char *base = getenv("TMPDIR");
    char tmp[PATH_MAX], lock[PATH_MAX];

    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    sweep_stale(base);
    if (asprintf(&j->tmpdir, "%s/" WJV_TMP_PREFIX "XXXXXX", base) < 0) {
        j->tmpdir = NULL;
        wjv_log("out of memory");
        return -1;
    }
    if (mkdtemp(j->tmpdir) == NULL) {
        wjv_log("mkdtemp(%s) failed: %s", j->tmpdir, strerror(errno));
        goto fail;
    }
    snprintf(tmp, sizeof(tmp), "%s/.lock-new", j->tmpdir);
    snprintf(lock, sizeof(lock), "%s/" WJV_LOCK_NAME, j->tmpdir);
    j->lock_fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (j->lock_fd < 0) {
        wjv_log("open(%s) failed: %s", tmp, strerror(errno));
        goto fail;
    }
    if (flock(j->lock_fd, LOCK_EX) < 0 || rename(tmp, lock) < 0) {
        wjv_log("locking %s failed: %s", lock, strerror(errno));
        goto fail;
    }
    return 0;
fail:
    remove_tmpdir(j);
    return -1;
}

static void remove_tmpdir(wjv_jvm_t *j)
{
    if (j->tmpdir != NULL) {
        nftw(j->tmpdir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
        free(j->tmpdir);
        j->tmpdir = NULL;
    }
    if (j->lock_fd >= 0) {
        close(j->lock_fd);
        j->lock_fd = -1;
    }
}

int wjv_jvm_start(wjv_jvm_t *j, const wjv_options_t *o)
{
    JNIEnv *env;

    memset(j, 0, sizeof(*j));
    j->lock_fd = -1;
    if (make_tmpdir(j) < 0)
        return -1;
    if (create_vm(j, o, &env) < 0 || wjv_natives_register(env) < 0
        || container_init(j, env, o) < 0) {
        remove_tmpdir(j);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------- requests */

void wjv_jvm_serve(wjv_jvm_t *j, JNIEnv *env, warren_req_t *req)
{
    jint rc = (*env)->CallStaticIntMethod(env, j->container, j->serve,
                                          (jlong) (intptr_t) req);

    /* serve() catches everything itself; anything escaping is a bug of
     * the container, logged, and the request is cut rather than lost. */
    if ((*env)->ExceptionCheck(env)) {
        wjv_log_exception(env, "warren.Container.serve");
        rc = WJV_SERVE_ABORT;
    }
    if (rc == WJV_SERVE_FINISH)
        warren_finish(req);
    else if (rc != WJV_SERVE_TUNNEL)
        warren_abort(req);
}

void wjv_jvm_channel(wjv_jvm_t *j, unsigned streams, unsigned threads)
{
    JNIEnv *env;

    if ((*j->vm)->GetEnv(j->vm, (void **) &env, JNI_VERSION_10) != JNI_OK)
        return;
    (*env)->CallStaticVoidMethod(env, j->container, j->channel, (jint) streams, (jint) threads);
    if ((*env)->ExceptionCheck(env))
        wjv_log_exception(env, "warren.Container.channel");
}

void wjv_jvm_drain(wjv_jvm_t *j)
{
    JNIEnv *env;

    if (j->vm == NULL || (*j->vm)->GetEnv(j->vm, (void **) &env, JNI_VERSION_10) != JNI_OK)
        return;
    (*env)->CallStaticVoidMethod(env, j->container, j->drain);
    if ((*env)->ExceptionCheck(env))
        wjv_log_exception(env, "warren.Container.drain");
}

void wjv_jvm_stop(wjv_jvm_t *j)
{
    JNIEnv *env;

    if (j->vm != NULL && (*j->vm)->GetEnv(j->vm, (void **) &env, JNI_VERSION_10) == JNI_OK) {
        (*env)->CallStaticVoidMethod(env, j->container, j->destroy);
        if ((*env)->ExceptionCheck(env))
            wjv_log_exception(env, "warren.Container.destroy");
    }
    remove_tmpdir(j);
}
