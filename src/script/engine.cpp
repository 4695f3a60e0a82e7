/*
 * The JavaScript engine behind template literals: one SpiderMonkey context
 * per thread, a global whose properties describe the request being
 * evaluated (uri, host, remoteAddr, args, headers, cookies, vars, as Unit's
 * njs has them), compiled scripts cached by source, and one watchdog thread
 * per process that interrupts a template running past WR_SCRIPT_TIMEOUT_MS.
 *
 * SpiderMonkey is process-global by nature (JS_Init once, a context bound to
 * the thread that made it), so this file keeps one struct outside any
 * context: the once-initialisation, the watchdog's list of engines and the
 * counter that names module sets. Nothing else is shared between threads.
 */
#include <jsapi.h>
#include <js/CharacterEncoding.h>
#include <js/CompilationAndEvaluation.h>
#include <js/Context.h>
#include <js/Conversions.h>
#include <js/ErrorReport.h>
#include <js/Exception.h>
#include <js/Initialization.h>
#include <js/Interrupt.h>
#include <js/PropertyAndElement.h>
#include <js/SourceText.h>
#include <js/Stack.h>
#include <js/String.h>
#include <js/Array.h>
#include <js/Modules.h>
#include <jsfriendapi.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

extern "C" {
#include "core/log.h"
#include "script/script.h"
}

/* Native stack a template may use (router threads have megabytes). */
static constexpr size_t STACK_QUOTA = 512 * 1024;
/* How often the watchdog looks at the running templates, and after how many
 * looks at none it sleeps until the next evaluation starts. */
static constexpr auto WATCH_EVERY = std::chrono::milliseconds(50);
static constexpr int  WATCH_IDLE_LOOKS = 20;

struct wr_script {
    std::string src;
};

/* Modules by name (settings.js_module): read-only once built. */
struct wr_script_env {
    unsigned long long                               id;
    std::vector<std::pair<std::string, std::string>> modules;   /* name, source */
};

namespace {

/* One global with an env's modules loaded, and the templates compiled in it. */
struct Realm {
    unsigned long long         id = 0;            /* its env's; 0: no modules */
    JS::PersistentRootedObject global;
    std::unordered_map<std::string, std::unique_ptr<JS::PersistentRootedObject>> modules;
    std::unordered_map<std::string, std::unique_ptr<JS::PersistentRootedScript>> cache;
    std::string                error;             /* a module that failed to load */
};

struct Engine {
    JSContext                  *cx = nullptr;
    std::list<std::unique_ptr<Realm>> realms;     /* most recently used first */
    Realm                      *loading = nullptr; /* whose modules import */
    /* the evaluation in progress */
    const wr_script_req_t      *ops = nullptr;
    const void                 *req = nullptr;
    std::atomic<long long>      deadline_ns{0};   /* 0: not evaluating */
    std::atomic<bool>           timed_out{false};
};

struct Process {
    std::once_flag              once;
    bool                        ok = false;
    pthread_key_t               key;
    std::mutex                  lock;             /* engines, parked */
    std::vector<Engine *>       engines;
    std::condition_variable     wake;             /* the watchdog's, when parked */
    std::atomic<bool>           parked{false};
    std::atomic<unsigned long long> next_env{1};
};

/* Never destroyed: the watchdog thread outlives exit()'s destructors. */
Process &proc = *new Process;

long long
now_ns()
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Interrupts evaluations past their deadline; parks itself when none has
 * run for a while, so an idle process has no timer waking it. */
void
watchdog()
{
    int idle = 0;

    for (;;) {
        std::this_thread::sleep_for(WATCH_EVERY);
        std::unique_lock<std::mutex> g(proc.lock);
        long long now = now_ns();
        bool      busy = false;

        for (Engine *e : proc.engines) {
            long long d = e->deadline_ns.load();

            busy = busy || d != 0;
            if (d != 0 && now > d && !e->timed_out.exchange(true)) {
                JS_RequestInterruptCallback(e->cx);
            }
        }
        idle = busy ? 0 : idle + 1;
        if (idle < WATCH_IDLE_LOOKS) {
            continue;
        }
        /* Parked first, deadlines looked at again after: an evaluation that
         * armed in between is seen here, or sees "parked" and wakes us. */
        proc.parked.store(true);
        for (Engine *e : proc.engines) {
            busy = busy || e->deadline_ns.load() != 0;
        }
        if (busy) {
            proc.parked.store(false);
        } else {
            proc.wake.wait(g, [] { return !proc.parked.load(); });
        }
        idle = 0;
    }
}

/* An evaluation starts: its deadline, and the watchdog awake to see it. */
void
arm(Engine *e)
{
    e->timed_out.store(false);
    e->deadline_ns.store(now_ns() + WR_SCRIPT_TIMEOUT_MS * 1000000LL);
    if (proc.parked.load()) {
        std::lock_guard<std::mutex> g(proc.lock);

        proc.parked.store(false);
        proc.wake.notify_one();
    }
}

void
engine_free(void *p)
{
    Engine *e = static_cast<Engine *>(p);

    {
        std::lock_guard<std::mutex> g(proc.lock);
        std::erase(proc.engines, e);
    }
    e->realms.clear();
    JS_DestroyContext(e->cx);
    delete e;
}

/*
 * exit(): SpiderMonkey's own static destructors refuse to run over a live
 * context. The daemon's processes end with _exit(); a program that exits
 * (the unit tests, the fuzz targets) ends the calling thread's engine and
 * the library first. Engines of other threads still running stay as they
 * are: those programs have none.
 */
void
process_exit()
{
    Engine *e = static_cast<Engine *>(pthread_getspecific(proc.key));
    bool    last;

    if (e != nullptr) {
        pthread_setspecific(proc.key, nullptr);
        engine_free(e);
    }
    {
        std::lock_guard<std::mutex> g(proc.lock);
        last = proc.engines.empty();
    }
    if (last) {
        JS_ShutDown();
    }
}

void
process_init()
{
    /* No JIT: no writable-and-executable pages in the router, and templates
     * are too short for it to pay. */
    JS::DisableJitBackend();
    if (!JS_Init()) {
        wr_log(WR_LOG_ALERT, "JavaScript engine: JS_Init() failed");
        return;
    }
    if (pthread_key_create(&proc.key, engine_free) != 0) {
        wr_log(WR_LOG_ALERT, "JavaScript engine: pthread_key_create() failed");
        return;
    }
    std::thread(watchdog).detach();
    atexit(process_exit);
    proc.ok = true;
}

bool
interrupted(JSContext *cx)
{
    Engine *e = static_cast<Engine *>(JS_GetContextPrivate(cx));

    /* false ends the script, uncatchable. */
    return !e->timed_out.load();
}

/* ---- what a template reads: the request of the evaluation in progress */

Engine *
current(JSContext *cx)
{
    return static_cast<Engine *>(JS_GetContextPrivate(cx));
}

/* Bytes as a JS string: UTF-8 when they are, else one char per byte. */
JSString *
new_string(JSContext *cx, const char *p, size_t n)
{
    JSString *s = JS_NewStringCopyUTF8N(cx, JS::UTF8Chars(p, n));

    if (s == nullptr) {
        JS_ClearPendingException(cx);
        s = JS_NewStringCopyN(cx, p, n);
    }
    return s;
}

/* The value of Unit variable name, or undefined when there is none. */
bool
var_value(JSContext *cx, const char *name, size_t n, JS::MutableHandleValue v)
{
    Engine  *e = current(cx);
    wr_buf_t b = {};
    int      rc = e->ops->var(e->req, name, n, &b);

    if (rc < 0) {
        wr_buf_free(&b);
        JS_ReportOutOfMemory(cx);
        return false;
    }
    if (rc == 0) {
        v.setUndefined();
        wr_buf_free(&b);
        return true;
    }
    JSString *s = new_string(cx, b.p != nullptr ? b.p : "", b.n);

    wr_buf_free(&b);
    if (s == nullptr) {
        return false;
    }
    v.setString(s);
    return true;
}

template <const char *Name>
bool
get_var(JSContext *cx, unsigned argc, JS::Value *vp)
{
    JS::CallArgs args = JS::CallArgsFromVp(argc, vp);

    return var_value(cx, Name, strlen(Name), args.rval());
}

constexpr char VAR_URI[] = "uri";
constexpr char VAR_HOST[] = "host";
constexpr char VAR_REMOTE[] = "remote_addr";

int
hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Percent-decoding of a query part, '+' as a space. */
std::string
query_decode(const char *p, size_t n)
{
    std::string out;

    for (size_t i = 0; i < n; i++) {
        if (p[i] == '+') {
            out += ' ';
        } else if (p[i] == '%' && i + 2 < n && hexval(p[i + 1]) >= 0
                   && hexval(p[i + 2]) >= 0) {
            out += (char) (hexval(p[i + 1]) * 16 + hexval(p[i + 2]));
            i += 2;
        } else {
            out += p[i];
        }
    }
    return out;
}

/* An object without a prototype: a request's "constructor" or "toString"
 * is a name like any other. */
JSObject *
new_map(JSContext *cx)
{
    return JS_NewObjectWithGivenProto(cx, nullptr, nullptr);
}

/* The property id of bytes taken as text (UTF-8 when they are). */
bool
to_id(JSContext *cx, const char *p, size_t n, JS::MutableHandleId id)
{
    JS::RootedString s(cx, new_string(cx, p, n));

    return s && JS_StringToId(cx, s, id);
}

/* What to do when a name comes again. */
enum class Repeat { Array, First, Join };

/* Sets obj[name] = value; a name seen before keeps its first value, becomes
 * an array of them, or is joined with ", " (rep). */
bool
add_value(JSContext *cx, JS::HandleObject obj, const std::string &name, const std::string &val,
          Repeat rep)
{
    JS::RootedId     id(cx);
    JS::RootedValue  old(cx), sv(cx);
    JS::RootedString s(cx, new_string(cx, val.data(), val.size()));
    bool             found, is_array;

    if (!s || !to_id(cx, name.data(), name.size(), &id)
        || !JS_HasOwnPropertyById(cx, obj, id, &found)) {
        return false;
    }
    sv.setString(s);
    if (!found) {
        return JS_DefinePropertyById(cx, obj, id, sv, JSPROP_ENUMERATE);
    }
    if (rep == Repeat::First || !JS_GetPropertyById(cx, obj, id, &old)) {
        return rep == Repeat::First;
    }
    if (rep == Repeat::Join) {
        JS::RootedString joined(cx, JS_NewStringCopyZ(cx, ", "));

        joined = joined ? JS_ConcatStrings(cx, JS::RootedString(cx, old.toString()), joined)
                        : nullptr;
        joined = joined ? JS_ConcatStrings(cx, joined, s) : nullptr;
        if (!joined) {
            return false;
        }
        sv.setString(joined);
        return JS_DefinePropertyById(cx, obj, id, sv, JSPROP_ENUMERATE);
    }
    if (!JS::IsArrayObject(cx, old, &is_array)) {
        return false;
    }
    if (is_array) {
        JS::RootedObject arr(cx, &old.toObject());
        uint32_t len;

        return JS::GetArrayLength(cx, arr, &len) && JS_SetElement(cx, arr, len, sv);
    }
    JS::RootedValueArray<2> items(cx);
    items[0].set(old);
    items[1].set(sv);
    JS::RootedObject arr(cx, JS::NewArrayObject(cx, items));
    return arr && JS_DefinePropertyById(cx, obj, id, arr, JSPROP_ENUMERATE);
}

/* Splits "a=1&b=2" (sep '&', decoded, repeats as arrays) or "a=1; b=2"
 * (sep ';', first wins). */
bool
parse_pairs(JSContext *cx, JS::HandleObject obj, const char *p, size_t n, char sep, bool query)
{
    size_t i = 0;

    while (i < n) {
        size_t end = i, eq;

        while (end < n && p[end] != sep) {
            end++;
        }
        size_t a = i, z = end;
        if (!query) {
            while (a < z && p[a] == ' ') {
                a++;
            }
        }
        for (eq = a; eq < z && p[eq] != '='; eq++) {
        }
        if (z > a) {
            std::string name = query ? query_decode(p + a, eq - a) : std::string(p + a, eq - a);
            std::string val = eq < z ? (query ? query_decode(p + eq + 1, z - eq - 1)
                                              : std::string(p + eq + 1, z - eq - 1))
                                     : std::string();

            if (!add_value(cx, obj, name, val, query ? Repeat::Array : Repeat::First)) {
                return false;
            }
        }
        i = end + 1;
    }
    return true;
}

/* The query's arguments ($args, as it is after a rewrite). */
bool
get_args(JSContext *cx, unsigned argc, JS::Value *vp)
{
    JS::CallArgs     args = JS::CallArgsFromVp(argc, vp);
    Engine          *e = current(cx);
    JS::RootedObject obj(cx, new_map(cx));
    wr_buf_t         raw = {};
    int              rc;

    if (!obj) {
        return false;
    }
    rc = e->ops->var(e->req, "args", 4, &raw);
    if (rc < 0) {
        JS_ReportOutOfMemory(cx);
    }
    bool ok = rc >= 0 && (raw.n == 0 || parse_pairs(cx, obj, raw.p, raw.n, '&', true));
    wr_buf_free(&raw);
    if (ok) {
        args.rval().setObject(*obj);
    }
    return ok;
}

/* The getter's value: an object that add(obj, name, value) fills from each
 * request field. */
template <typename Add>
bool
from_fields(JSContext *cx, unsigned argc, JS::Value *vp, Add add)
{
    JS::CallArgs     args = JS::CallArgsFromVp(argc, vp);
    Engine          *e = current(cx);
    JS::RootedObject obj(cx, new_map(cx));
    const char      *name, *value;
    size_t           nlen, vlen;

    if (!obj) {
        return false;
    }
    for (size_t i = 0; e->ops->field(e->req, i, &name, &nlen, &value, &vlen) == 1; i++) {
        if (!add(obj, std::string_view(name, nlen), std::string_view(value, vlen))) {
            return false;
        }
    }
    args.rval().setObject(*obj);
    return true;
}

/* Every Cookie field's pairs (several fields are several lists, not one
 * value joined with ", "); the first of a name wins. */
bool
get_cookies(JSContext *cx, unsigned argc, JS::Value *vp)
{
    return from_fields(cx, argc, vp, [cx](JS::HandleObject obj, std::string_view name,
                                          std::string_view value) {
        return name.size() != 6 || strncasecmp(name.data(), "cookie", 6) != 0
               || parse_pairs(cx, obj, value.data(), value.size(), ';', false);
    });
}

/* Request fields by the name the client sent; repeats joined with ", ". */
bool
get_headers(JSContext *cx, unsigned argc, JS::Value *vp)
{
    return from_fields(cx, argc, vp, [cx](JS::HandleObject obj, std::string_view name,
                                          std::string_view value) {
        return add_value(cx, obj, std::string(name), std::string(value), Repeat::Join);
    });
}

/* vars.NAME: any Unit variable, looked up when first read. */
bool
vars_resolve(JSContext *cx, JS::HandleObject obj, JS::HandleId id, bool *resolvedp)
{
    JS::RootedValue v(cx);

    *resolvedp = false;
    if (!id.isString()) {
        return true;
    }
    JS::UniqueChars name = JS_EncodeStringToUTF8(cx, JS::RootedString(cx, id.toString()));
    if (!name) {
        return false;
    }
    if (!var_value(cx, name.get(), strlen(name.get()), &v)) {
        return false;
    }
    if (v.isUndefined()) {
        return true;
    }
    *resolvedp = true;
    return JS_DefinePropertyById(cx, obj, id, v, JSPROP_ENUMERATE);
}

const JSClassOps vars_ops = {
    nullptr, nullptr, nullptr, nullptr, vars_resolve, nullptr, nullptr, nullptr, nullptr, nullptr,
};
const JSClass vars_class = { "vars", 0, &vars_ops };

bool
get_vars(JSContext *cx, unsigned argc, JS::Value *vp)
{
    JS::CallArgs args = JS::CallArgsFromVp(argc, vp);
    JSObject    *obj = JS_NewObject(cx, &vars_class);

    if (obj == nullptr) {
        return false;
    }
    args.rval().setObject(*obj);
    return true;
}

const JSClass global_class = { "global", JSCLASS_GLOBAL_FLAGS, &JS::DefaultGlobalClassOps };

bool
define_request(JSContext *cx, JS::HandleObject g)
{
    static const struct {
        const char *name;
        JSNative    get;
    } props[] = {
        { "uri", get_var<VAR_URI> },
        { "host", get_var<VAR_HOST> },
        { "remoteAddr", get_var<VAR_REMOTE> },
        { "args", get_args },
        { "headers", get_headers },
        { "cookies", get_cookies },
        { "vars", get_vars },
    };

    for (const auto &p : props) {
        /* Permanent: no template can redefine or delete what describes
         * the request for the next one. */
        if (!JS_DefineProperty(cx, g, p.name, p.get, nullptr,
                               JSPROP_ENUMERATE | JSPROP_PERMANENT)) {
            return false;
        }
    }
    return true;
}

/* import x from "NAME": another module of the env being loaded. */
JSObject *
resolve_import(JSContext *cx, JS::HandleValue referrer, JS::HandleObject request)
{
    Engine          *e = current(cx);
    JS::RootedString spec(cx, JS::GetModuleRequestSpecifier(cx, request));
    JS::UniqueChars  name = spec ? JS_EncodeStringToUTF8(cx, spec) : nullptr;

    if (!name) {
        return nullptr;
    }
    if (e->loading != nullptr) {
        auto it = e->loading->modules.find(name.get());

        if (it != e->loading->modules.end()) {
            return *it->second;
        }
    }
    JS_ReportErrorUTF8(cx, "there is no module \"%s\" in settings.js_module", name.get());
    return nullptr;
}

Engine *
engine_new()
{
    auto e = std::make_unique<Engine>();

    e->cx = JS_NewContext(WR_SCRIPT_HEAP_MAX);
    if (e->cx == nullptr) {
        wr_log(WR_LOG_ERR, "JavaScript engine: JS_NewContext() failed");
        return nullptr;
    }
    JS_SetContextPrivate(e->cx, e.get());
    JS_SetNativeStackQuota(e->cx, STACK_QUOTA);
    /* The job queue (module evaluation settles a promise) before the
     * self-hosted code, as SpiderMonkey requires. */
    if (!js::UseInternalJobQueues(e->cx) || !JS::InitSelfHostedCode(e->cx)
        || !JS_AddInterruptCallback(e->cx, interrupted)) {
        wr_log(WR_LOG_ERR, "JavaScript engine: context set-up failed");
        JS_DestroyContext(e->cx);
        return nullptr;
    }
    JS::SetModuleResolveHook(JS_GetRuntime(e->cx), resolve_import);
    std::lock_guard<std::mutex> lock(proc.lock);
    proc.engines.push_back(e.get());
    return e.release();
}

/* This thread's engine, made on first use. */
Engine *
engine()
{
    Engine *e;

    std::call_once(proc.once, process_init);
    if (!proc.ok) {
        return nullptr;
    }
    e = static_cast<Engine *>(pthread_getspecific(proc.key));
    if (e == nullptr && (e = engine_new()) != nullptr) {
        pthread_setspecific(proc.key, e);
    }
    return e;
}

/* The pending exception as "Name: message (line N)", and clears it. */
std::string
exception_text(JSContext *cx)
{
    JS::ExceptionStack stack(cx);
    JS::ErrorReportBuilder report(cx);

    if (!JS::StealPendingExceptionStack(cx, &stack)) {
        return "out of memory, or the template was stopped";
    }
    if (!report.init(cx, stack, JS::ErrorReportBuilder::NoSideEffects)) {
        JS_ClearPendingException(cx);
        return "an exception that cannot be shown";
    }
    return report.toStringResult().c_str() != nullptr ? report.toStringResult().c_str()
                                                        : "an exception";
}

/* A module's default export, bound to its name in the realm's global. */
bool
load_modules(Engine *e, Realm *r, const wr_script_env_t *env)
{
    JSContext *cx = e->cx;

    for (const auto &[name, src] : env->modules) {
        JS::CompileOptions opts(cx);
        JS::SourceText<mozilla::Utf8Unit> text;

        opts.setFileAndLine(name.c_str(), 1);
        if (!text.init(cx, src.data(), src.size(), JS::SourceOwnership::Borrowed)) {
            return false;
        }
        JSObject *m = JS::CompileModule(cx, opts, text);
        if (m == nullptr) {
            return false;
        }
        r->modules.emplace(name, std::make_unique<JS::PersistentRootedObject>(cx, m));
    }
    for (const auto &[name, src] : env->modules) {
        JS::RootedObject m(cx, *r->modules[name]);
        JS::RootedValue  promise(cx), def(cx);

        if (!JS::ModuleInstantiate(cx, m) || !JS::ModuleEvaluate(cx, m, &promise)) {
            return false;
        }
        js::RunJobs(cx);
        if (promise.isObject()) {
            JS::RootedObject p(cx, &promise.toObject());

            if (!JS::ThrowOnModuleEvaluationFailure(cx, p, JS::ThrowModuleErrorsSync)) {
                return false;
            }
        }
        JS::RootedObject ns(cx, JS::GetModuleNamespace(cx, m));
        if (!ns || !JS_GetProperty(cx, ns, "default", &def)) {
            return false;
        }
        if (!JS_DefineProperty(cx, r->global, name.c_str(), def,
                               JSPROP_ENUMERATE | JSPROP_READONLY)) {
            return false;
        }
    }
    return true;
}

/* A new global: the request's properties, then env's modules. */
std::unique_ptr<Realm>
realm_new(Engine *e, const wr_script_env_t *env)
{
    JSContext             *cx = e->cx;
    auto                   r = std::make_unique<Realm>();
    JS::RealmOptions       opts;
    JSObject              *g = JS_NewGlobalObject(cx, &global_class, nullptr,
                                                  JS::FireOnNewGlobalHook, opts);

    if (g == nullptr) {
        return nullptr;
    }
    r->global.init(cx, g);
    r->id = env != nullptr ? env->id : 0;

    JSAutoRealm ar(cx, g);
    if (!JS::InitRealmStandardClasses(cx) || !define_request(cx, r->global)) {
        return nullptr;
    }
    if (env == nullptr) {
        return r;
    }
    e->loading = r.get();
    arm(e);
    bool ok = load_modules(e, r.get(), env);
    e->deadline_ns.store(0);
    e->loading = nullptr;
    if (!ok) {
        r->error = e->timed_out.load() ? "a module ran longer than the time a template has"
                                       : exception_text(cx);
        JS_ClearPendingException(cx);
    }
    return r;
}

/* The thread's realm for env (made and kept among the last few used). */
Realm *
realm(Engine *e, const wr_script_env_t *env)
{
    unsigned long long id = env != nullptr ? env->id : 0;

    for (auto it = e->realms.begin(); it != e->realms.end(); ++it) {
        if ((*it)->id == id) {
            e->realms.splice(e->realms.begin(), e->realms, it);
            return e->realms.front().get();
        }
    }
    auto r = realm_new(e, env);
    if (r == nullptr) {
        JS_ClearPendingException(e->cx);
        return nullptr;
    }
    if (!r->error.empty()) {
        wr_log(WR_LOG_ERR, "JavaScript modules: %s", r->error.c_str());
    }
    e->realms.push_front(std::move(r));
    if (e->realms.size() > WR_SCRIPT_REALMS_MAX) {
        e->realms.pop_back();
    }
    return e->realms.front().get();
}

JSScript *
compile(Engine *e, Realm *r, const std::string &src, std::string &why)
{
    auto it = r->cache.find(src);
    if (it != r->cache.end()) {
        return *it->second;
    }
    JS::CompileOptions opts(e->cx);
    JS::SourceText<mozilla::Utf8Unit> text;
    /* One expression, as Unit has it: "`a`; let b" does not compile. */
    std::string expr = "(" + src + "\n)";

    opts.setFileAndLine("template", 1);
    if (!text.init(e->cx, expr.data(), expr.size(), JS::SourceOwnership::Borrowed)) {
        why = exception_text(e->cx);
        return nullptr;
    }
    JSScript *script = JS::Compile(e->cx, opts, text);
    if (script == nullptr) {
        why = exception_text(e->cx);
        return nullptr;
    }
    if (r->cache.size() >= WR_SCRIPT_CACHE_MAX) {
        r->cache.clear();
    }
    r->cache.emplace(src, std::make_unique<JS::PersistentRootedScript>(e->cx, script));
    return script;
}

void
copy_err(char *err, size_t errlen, const std::string &s)
{
    snprintf(err, errlen, "%s", s.c_str());
}

} // namespace

extern "C" int
wr_script_is_template(const char *s)
{
    size_t n = strlen(s);

    return n >= 2 && s[0] == '`' && s[n - 1] == '`';
}

extern "C" wr_script_t *
wr_script_compile(const char *s, char *err, size_t errlen)
{
    Engine     *e = engine();
    Realm      *r = e != nullptr ? realm(e, nullptr) : nullptr;
    std::string why;

    if (r == nullptr) {
        snprintf(err, errlen, "the JavaScript engine could not start");
        return nullptr;
    }
    if (!wr_script_is_template(s)) {
        snprintf(err, errlen, "a JavaScript template literal must begin and end with \"`\"");
        return nullptr;
    }
    auto *script = new (std::nothrow) wr_script;
    if (script == nullptr) {
        snprintf(err, errlen, "out of memory");
        return nullptr;
    }
    script->src = s;
    JSAutoRealm ar(e->cx, r->global);
    if (compile(e, r, script->src, why) == nullptr) {
        copy_err(err, errlen, why);
        delete script;
        return nullptr;
    }
    return script;
}

extern "C" void
wr_script_free(wr_script_t *s)
{
    delete s;
}

extern "C" int
wr_script_module_check(const char *src, size_t len, char *err, size_t errlen)
{
    Engine *e = engine();
    Realm  *r = e != nullptr ? realm(e, nullptr) : nullptr;

    if (r == nullptr) {
        snprintf(err, errlen, "the JavaScript engine could not start");
        return -1;
    }
    JSAutoRealm ar(e->cx, r->global);
    JS::CompileOptions opts(e->cx);
    JS::SourceText<mozilla::Utf8Unit> text;

    opts.setFileAndLine("module", 1);
    if (!text.init(e->cx, src, len, JS::SourceOwnership::Borrowed)
        || JS::CompileModule(e->cx, opts, text) == nullptr) {
        copy_err(err, errlen, exception_text(e->cx));
        return -1;
    }
    return 0;
}

extern "C" wr_script_env_t *
wr_script_env_new(void)
{
    auto *env = new (std::nothrow) wr_script_env;

    if (env != nullptr) {
        env->id = proc.next_env.fetch_add(1);
    }
    return env;
}

extern "C" int
wr_script_env_add(wr_script_env_t *env, const char *name, const char *src, size_t len)
{
    try {
        env->modules.emplace_back(name, std::string(src, len));
    } catch (...) {
        return -1;
    }
    return 0;
}

extern "C" void
wr_script_env_free(wr_script_env_t *env)
{
    delete env;
}

extern "C" int
wr_script_env_check(const wr_script_env_t *env, char *err, size_t errlen)
{
    Engine *e = engine();

    if (e == nullptr) {
        snprintf(err, errlen, "the JavaScript engine could not start");
        return -1;
    }
    auto r = realm_new(e, env);
    if (r == nullptr) {
        copy_err(err, errlen, exception_text(e->cx));
        return -1;
    }
    if (!r->error.empty()) {
        copy_err(err, errlen, r->error);
        return -1;
    }
    return 0;
}

extern "C" int
wr_script_eval(const wr_script_t *s, const wr_script_env_t *env, const wr_script_req_t *ops,
               const void *req, wr_buf_t *out)
{
    Engine     *e = engine();
    Realm      *r = e != nullptr ? realm(e, env) : nullptr;
    std::string why;
    int         rc = -1;

    if (r == nullptr) {
        wr_log(WR_LOG_ERR, "template %s: the JavaScript engine could not start", s->src.c_str());
        return -1;
    }
    if (!r->error.empty()) {
        wr_log(WR_LOG_ERR, "template %s: JavaScript modules: %s", s->src.c_str(),
               r->error.c_str());
        return -1;
    }
    JSAutoRealm     ar(e->cx, r->global);
    JS::RootedValue v(e->cx);
    JSScript       *compiled = compile(e, r, s->src, why);

    if (compiled == nullptr) {
        wr_log(WR_LOG_ERR, "template %s: %s", s->src.c_str(), why.c_str());
        return -1;
    }
    JS::RootedScript script(e->cx, compiled);
    e->ops = ops;
    e->req = req;
    arm(e);

    bool ok = JS_ExecuteScript(e->cx, script, &v);
    JS::RootedString str(e->cx, ok ? JS::ToString(e->cx, v) : nullptr);
    JSLinearString *lin = str ? JS_EnsureLinearString(e->cx, str) : nullptr;

    e->deadline_ns.store(0);
    if (lin != nullptr) {
        /* Every byte, NUL included: the caller decides what a value may hold. */
        size_t n = JS::GetDeflatedUTF8StringLength(lin);

        rc = wr_buf_reserve(out, n);
        if (rc == 0) {
            out->n += JS::DeflateStringToUTF8Buffer(lin, mozilla::Span<char>(out->p + out->n, n));
        } else {
            wr_log(WR_LOG_ERR, "template %s: out of memory", s->src.c_str());
        }
    } else if (e->timed_out.load()) {
        JS_ClearPendingException(e->cx);
        wr_log(WR_LOG_ERR, "template %s: stopped, it ran longer than %d ms",
               s->src.c_str(), WR_SCRIPT_TIMEOUT_MS);
    } else {
        why = exception_text(e->cx);
        wr_log(WR_LOG_ERR, "template %s: %s", s->src.c_str(), why.c_str());
    }
    e->ops = nullptr;
    e->req = nullptr;
    JS_MaybeGC(e->cx);
    return rc;
}
