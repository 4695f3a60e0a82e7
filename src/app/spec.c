/*
 * An application's config object -> what the prototype needs, resolved in
 * main before the fork (user and group names, supported features).
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "core/log.h"

static int fail(char *reason, size_t rlen, const char *name, const char *why)
{
    snprintf(reason, rlen, "Application \"%s\": %s", name, why);
    return -1;
}

static int oom(char *reason, size_t rlen, const char *name)
{
    return fail(reason, rlen, name, "out of memory.");
}

static char *dup_opt(json_t *v)
{
    const char *s = json_string_value(v);

    return s ? strdup(s) : NULL;
}

/* "processes": integer N (N workers, always), object (dynamic, Unit's
 * defaults for what it leaves out), absent (one worker). */
static void processes_of(wr_app_spec_t *s, json_t *p)
{
    json_t *v;

    s->max = s->spare = 1;
    s->idle_timeout = 0;
    s->dynamic = 0;
    if (json_is_integer(p)) {
        s->max = s->spare = (int) json_integer_value(p);
        return;
    }
    if (!json_is_object(p))
        return;
    s->dynamic = 1;
    v = json_object_get(p, "max");
    s->max = v ? (int) json_integer_value(v) : WR_APP_DEFAULT_MAX;
    v = json_object_get(p, "spare");
    s->spare = v ? (int) json_integer_value(v) : WR_APP_DEFAULT_SPARE;
    v = json_object_get(p, "idle_timeout");
    s->idle_timeout = v ? (int) json_integer_value(v) : WR_APP_DEFAULT_IDLE;
}

static int resolve_creds(wr_app_spec_t *s, json_t *app, uid_t def_uid, gid_t def_gid,
                         char *reason, size_t rlen)
{
    const char *user = json_string_value(json_object_get(app, "user"));
    const char *group = json_string_value(json_object_get(app, "group"));
    char why[256];

    s->uid = def_uid;
    s->gid = def_gid;
    if (user) {
        struct passwd *pw;
        errno = 0;
        pw = getpwnam(user);
        if (pw == NULL) {
            snprintf(why, sizeof(why), "user \"%s\" does not exist%s%s.", user,
                     errno ? ": " : "", errno ? strerror(errno) : "");
            return fail(reason, rlen, s->name, why);
        }
        s->uid = pw->pw_uid;
        s->gid = pw->pw_gid;
    }
    if (group) {
        struct group *gr;
        errno = 0;
        gr = getgrnam(group);
        if (gr == NULL) {
            snprintf(why, sizeof(why), "group \"%s\" does not exist%s%s.", group,
                     errno ? ": " : "", errno ? strerror(errno) : "");
            return fail(reason, rlen, s->name, why);
        }
        s->gid = gr->gr_gid;
    }
    return 0;
}

#ifndef WR_PYTHON_DIRS
#define WR_PYTHON_DIRS ""
#endif
#ifndef WR_PHP_DIRS
#define WR_PHP_DIRS ""
#endif
#ifndef WR_PERL_DIRS
#define WR_PERL_DIRS ""
#endif
#ifndef WR_RUBY_DIRS
#define WR_RUBY_DIRS ""
#endif
#ifndef WR_JAVA_DIRS
#define WR_JAVA_DIRS ""
#endif

/* "python", "python 3", "python 3.11": Unit's type with an optional version. */
static int is_lang(const char *type, const char *lang)
{
    size_t n = strlen(lang);
    return type && strncmp(type, lang, n) == 0 && (type[n] == '\0' || type[n] == ' ');
}

/* A language runtime: its program and the directories its language needs
 * inside a rootfs ("language_deps"), and the variables its options
 * become (runtime_table, after the *_env functions). */
typedef struct {
    const char *lang;
    const char *program;
    const char *deps;
    int (*env)(char **env, size_t *n, json_t *app);
    int zygote;                 /* 0: each worker execs the program (a JVM cannot fork) */
} runtime_t;

static const runtime_t *runtime_of(const char *type);

int wr_app_is_http(json_t *app)
{
    const char *type = json_string_value(json_object_get(app, "type"));
    const char *proto = json_string_value(json_object_get(app, "protocol"));

    return type && proto && strcmp(type, "external") == 0 && strcmp(proto, "http") == 0;
}

static int refuse_unsupported(json_t *app, const char *name, char *reason, size_t rlen)
{
    const char *type = json_string_value(json_object_get(app, "type"));
    const char *proto = json_string_value(json_object_get(app, "protocol"));
    json_t *iso = json_object_get(app, "isolation");
    char why[256];

    if (type == NULL || (strcmp(type, "external") != 0 && runtime_of(type) == NULL)) {
        snprintf(why, sizeof(why), "type \"%s\" is not supported yet.", type ? type : "?");
        return fail(reason, rlen, name, why);
    }
    /* Python: "protocol" is "wsgi", "asgi" or absent (detected). */
    if (strcmp(type, "external") == 0 && proto && strcmp(proto, "warren") != 0
        && strcmp(proto, "http") != 0) {
        snprintf(why, sizeof(why), "protocol \"%s\" is not supported yet.", proto);
        return fail(reason, rlen, name, why);
    }
    /* Running without the sandbox asked for would be worse than refusing. */
    if (json_is_string(json_object_get(iso, "seccomp"))
        && strcmp(json_string_value(json_object_get(iso, "seccomp")), "default") != 0)
        return fail(reason, rlen, name, "only the \"default\" seccomp profile exists.");
    return 0;
}

static int build_argv(wr_app_spec_t *s, json_t *app)
{
    json_t *args = json_object_get(app, "arguments");
    size_t n = json_array_size(args);

    s->argv = calloc(n + 2, sizeof(char *));
    if (s->argv == NULL || (s->argv[0] = strdup(s->executable)) == NULL)
        return -1;
    for (size_t i = 0; i < n; i++)
        if ((s->argv[i + 1] = dup_opt(json_array_get(args, i))) == NULL)
            return -1;
    return 0;
}

/* The python options, for the runtime: "KEY=value" strings into env. */
static int python_env(char **env, size_t *n, json_t *app)
{
    static const struct { const char *key, *var; } opts[] = {
        { "module", "WARREN_PYTHON_MODULE" }, { "callable", "WARREN_PYTHON_CALLABLE" },
        { "home", "WARREN_PYTHON_HOME" }, { "prefix", "WARREN_PYTHON_PREFIX" },
        { "protocol", "WARREN_PYTHON_PROTOCOL" },    /* asgi: "asgi", "wsgi", or detected */
    };
    json_t *path = json_object_get(app, "path");

    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
        const char *v = json_string_value(json_object_get(app, opts[i].key));
        if (v && asprintf(&env[(*n)++], "%s=%s", opts[i].var, v) < 0)
            return -1;
    }
    if (json_object_get(app, "targets") != NULL) {
        char *t = json_dumps(json_object_get(app, "targets"), JSON_COMPACT);
        if (t == NULL || asprintf(&env[(*n)++], "WARREN_PYTHON_TARGETS=%s", t) < 0) {
            free(t);
            return -1;
        }
        free(t);
    }
    if (json_is_true(json_object_get(app, "factory"))
        && (env[(*n)++] = strdup("WARREN_PYTHON_FACTORY=1")) == NULL)
        return -1;
    /* "threads" and "thread_stack_size" (validated in conf): the runtime
     * starts its serving threads in each worker (src/runtime/python). */
    if (json_is_integer(json_object_get(app, "threads"))
        && asprintf(&env[(*n)++], "WARREN_PYTHON_THREADS=%lld",
                    (long long) json_integer_value(json_object_get(app, "threads"))) < 0)
        return -1;
    if (json_is_integer(json_object_get(app, "thread_stack_size"))
        && asprintf(&env[(*n)++], "WARREN_PYTHON_THREAD_STACK_SIZE=%lld",
                    (long long) json_integer_value(json_object_get(app, "thread_stack_size"))) < 0)
        return -1;
    if (json_is_string(path)) {
        if (asprintf(&env[(*n)++], "WARREN_PYTHON_PATH=%s", json_string_value(path)) < 0)
            return -1;
    } else if (json_array_size(path) > 0) {
        size_t len = sizeof("WARREN_PYTHON_PATH=");
        char *p;
        for (size_t i = 0; i < json_array_size(path); i++)
            len += strlen(json_string_value(json_array_get(path, i))) + 1;
        p = env[(*n)++] = malloc(len);
        if (p == NULL)
            return -1;
        p += sprintf(p, "WARREN_PYTHON_PATH=");
        for (size_t i = 0; i < json_array_size(path); i++)
            p += sprintf(p, "%s%s", i ? ":" : "", json_string_value(json_array_get(path, i)));
    }
    return 0;
}

/* Options passed as they are, strings and integers: KEY -> VAR=value. */
typedef struct {
    const char *key, *var;
} opt_var_t;

static int plain_env(char **env, size_t *n, json_t *app, const opt_var_t *vars, size_t nvars)
{
    for (size_t i = 0; i < nvars; i++) {
        json_t *v = json_object_get(app, vars[i].key);
        int rc = 0;

        if (json_is_string(v))
            rc = asprintf(&env[*n], "%s=%s", vars[i].var, json_string_value(v));
        else if (json_is_integer(v))
            rc = asprintf(&env[*n], "%s=%lld", vars[i].var, (long long) json_integer_value(v));
        else
            continue;
        if (rc < 0) {
            env[*n] = NULL;         /* asprintf leaves it undefined */
            return -1;
        }
        (*n)++;
    }
    return 0;
}

/* Options passed as JSON text (objects, arrays): KEY -> VAR=json. */
static int json_env(char **env, size_t *n, json_t *app, const opt_var_t *vars, size_t nvars)
{
    for (size_t i = 0; i < nvars; i++) {
        json_t *v = json_object_get(app, vars[i].key);
        char *t;
        int rc;

        if (v == NULL)
            continue;
        if ((t = json_dumps(v, JSON_COMPACT)) == NULL)
            return -1;
        rc = asprintf(&env[*n], "%s=%s", vars[i].var, t);
        free(t);
        if (rc < 0) {
            env[*n] = NULL;
            return -1;
        }
        (*n)++;
    }
    return 0;
}

/* The php options (src/runtime/php/options.c): root, script, index as
 * they are, targets and options as JSON. */
static int php_env(char **env, size_t *n, json_t *app)
{
    static const opt_var_t strs[] = {
        { "root", "WARREN_PHP_ROOT" }, { "script", "WARREN_PHP_SCRIPT" },
        { "index", "WARREN_PHP_INDEX" },
    }, objs[] = {
        { "targets", "WARREN_PHP_TARGETS" }, { "options", "WARREN_PHP_OPTIONS" },
    };

    if (plain_env(env, n, app, strs, sizeof(strs) / sizeof(strs[0])) < 0)
        return -1;
    return json_env(env, n, app, objs, sizeof(objs) / sizeof(objs[0]));
}

/* The perl options (src/runtime/perl/main.c). */
static int perl_env(char **env, size_t *n, json_t *app)
{
    static const opt_var_t vars[] = {
        { "script", "WARREN_PERL_SCRIPT" },
        { "threads", "WARREN_PERL_THREADS" },
        { "thread_stack_size", "WARREN_PERL_THREAD_STACK_SIZE" },
    };

    return plain_env(env, n, app, vars, sizeof(vars) / sizeof(vars[0]));
}

/* The ruby options (src/runtime/ruby/main.c). */
static int ruby_env(char **env, size_t *n, json_t *app)
{
    static const opt_var_t vars[] = {
        { "script", "WARREN_RUBY_SCRIPT" },
        { "hooks", "WARREN_RUBY_HOOKS" },
        { "threads", "WARREN_RUBY_THREADS" },
    };

    return plain_env(env, n, app, vars, sizeof(vars) / sizeof(vars[0]));
}

/* The java options (src/runtime/java/main.c): the arrays as JSON. */
static int java_env(char **env, size_t *n, json_t *app)
{
    static const opt_var_t vars[] = {
        { "webapp", "WARREN_JAVA_WEBAPP" },
        { "threads", "WARREN_JAVA_THREADS" },
        { "thread_stack_size", "WARREN_JAVA_THREAD_STACK_SIZE" },
    }, arrays[] = {
        { "classpath", "WARREN_JAVA_CLASSPATH" }, { "options", "WARREN_JAVA_OPTIONS" },
    };

    if (plain_env(env, n, app, vars, sizeof(vars) / sizeof(vars[0])) < 0)
        return -1;
    return json_env(env, n, app, arrays, sizeof(arrays) / sizeof(arrays[0]));
}

static const runtime_t runtime_table[] = {
    { "python", WR_PYTHON_RUNTIME, WR_PYTHON_DIRS, python_env, 1 },
    { "php", WR_PHP_RUNTIME, WR_PHP_DIRS, php_env, 1 },
    { "perl", WR_PERL_RUNTIME, WR_PERL_DIRS, perl_env, 1 },
    { "ruby", WR_RUBY_RUNTIME, WR_RUBY_DIRS, ruby_env, 1 },
    { "java", WR_JAVA_RUNTIME, WR_JAVA_DIRS, java_env, 0 },
};

/* The runtime of an app type ("python 3.11" is python's), or NULL. */
static const runtime_t *runtime_of(const char *type)
{
    for (size_t i = 0; i < sizeof(runtime_table) / sizeof(runtime_table[0]); i++)
        if (is_lang(type, runtime_table[i].lang))
            return &runtime_table[i];
    return NULL;
}

#define WR_RUNTIME_VARS  10      /* a runtime's env() adds at most this many */

static int build_env(wr_app_spec_t *s, json_t *app)
{
    json_t *env = json_object_get(app, "environment");
    const runtime_t *rt;
    const char *k;
    json_t *v;
    size_t n = 0;

    s->env = calloc(json_object_size(env) + 2 + WR_RUNTIME_VARS, sizeof(char *));
    if (s->env == NULL)
        return -1;
    if (!json_is_string(json_object_get(env, "PATH"))
        && (s->env[n++] = strdup("PATH=" WR_APP_DEFAULT_PATH)) == NULL)
        return -1;
    json_object_foreach(env, k, v) {
        const char *val = json_string_value(v);
        if (val == NULL)
            continue;
        if (asprintf(&s->env[n], "%s=%s", k, val) < 0) {
            s->env[n] = NULL;
            return -1;
        }
        n++;
    }
    rt = runtime_of(json_string_value(json_object_get(app, "type")));
    return rt != NULL ? rt->env(s->env, &n, app) : 0;
}

int wr_app_spec_build(wr_app_spec_t *s, const char *name, json_t *app, uint32_t gen,
                      uid_t def_uid, gid_t def_gid, const char *runtimes,
                      char *reason, size_t rlen)
{
    const char *type = json_string_value(json_object_get(app, "type"));
    char why[256];
    const runtime_t *rt = runtime_of(type);
    const char *sched;

    memset(s, 0, sizeof(*s));
    wr_sb_conf_init(&s->sb);
    if (refuse_unsupported(app, name, reason, rlen) < 0)
        return -1;
    s->gen = gen;
    processes_of(s, json_object_get(app, "processes"));
    s->http = wr_app_is_http(app);
    s->concurrency = json_is_integer(json_object_get(app, "concurrency"))
                     ? (int) json_integer_value(json_object_get(app, "concurrency"))
                     : WR_APP_DEFAULT_CONCURRENCY;
    s->name = strdup(name);
    if (rt != NULL) {
        s->zygote = rt->zygote;
        if (asprintf(&s->executable, "%s/%s", runtimes, rt->program) < 0)
            s->executable = NULL;
    } else {
        s->executable = dup_opt(json_object_get(app, "executable"));
    }
    if (s->name == NULL || s->executable == NULL) {
        wr_app_spec_free(s);
        return oom(reason, rlen, name);
    }
    if (resolve_creds(s, app, def_uid, def_gid, reason, rlen) < 0) {
        wr_app_spec_free(s);
        return -1;
    }
    s->host_uid = s->uid;
    s->host_gid = s->gid;
    s->runtime = rt != NULL;
    switch (wr_app_spec_isolation(s, json_object_get(app, "isolation"), rt ? rt->deps : NULL,
                                  why, sizeof(why))) {
    case -1:
        wr_app_spec_free(s);
        return oom(reason, rlen, name);
    case -2:
        fail(reason, rlen, name, why);
        wr_app_spec_free(s);
        return -1;
    }
    /* Valid in Unit (whose apps too run as its own user by default), so not
     * refused: but a process may signal any other of its uid it can see, and
     * the router and the controller run as def_uid. */
    if (s->host_uid == def_uid && !(s->sb.clone_flags & CLONE_NEWPID))
        wr_log(WR_LOG_WARN, "app \"%s\" runs as the user of Warren's router and "
               "controller (uid %d) without a \"pid\" namespace: it can signal them, "
               "and so stop every application; set its \"user\" or turn \"pid\" on",
               name, (int) def_uid);
    sched = json_string_value(json_object_get(app, "scheduling"));
    s->sched_batch = sched == NULL || strcmp(sched, "normal") != 0;
    s->cwd = dup_opt(json_object_get(app, "working_directory"));
    s->out_path = dup_opt(json_object_get(app, "stdout"));
    s->err_path = dup_opt(json_object_get(app, "stderr"));
    if (build_argv(s, app) < 0 || build_env(s, app) < 0) {
        wr_app_spec_free(s);
        return oom(reason, rlen, name);
    }
    return 0;
}

static void free_vec(char **v)
{
    if (v == NULL)
        return;
    for (size_t i = 0; v[i]; i++)
        free(v[i]);
    free(v);
}

void wr_app_spec_free(wr_app_spec_t *s)
{
    free(s->name);
    free(s->executable);
    free_vec(s->argv);
    free_vec(s->env);
    free(s->cwd);
    free(s->out_path);
    free(s->err_path);
    wr_sb_conf_free(&s->sb);
    memset(s, 0, sizeof(*s));
}
