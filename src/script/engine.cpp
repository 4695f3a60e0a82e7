/*
 * The JavaScript engine behind template literals: one SpiderMonkey context
 * per thread, a global whose properties describe the request being
 * evaluated (uri, host, remoteAddr, args, headers, cookies, vars, as Unit's
 * njs has them), compiled scripts cached by source, and one watchdog thread
 * per process that interrupts a template running past WR_SCRIPT_TIMEOUT_MS.
 *
 * SpiderMonkey is process-global by nature (JS_Init once, a context bound to
 * the thread that made it), so this file keeps two things outside any
 * context struct: the once-initialisation and the watchdog's list of
 * engines. Nothing else is shared.
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

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <pthread.h>
#include <string.h>
#include <time.h>

extern "C" {
#include "core/log.h"
#include "script/script.h"
}

/* Native stack a template may use (router threads have megabytes). */
static constexpr size_t STACK_QUOTA = 512 * 1024;
/* How often the watchdog looks at the running templates. */
static constexpr auto WATCH_EVERY = std::chrono::milliseconds(50);

struct wr_script {
    std::string src;
};

namespace {

struct Engine {
    JSContext                  *cx = nullptr;
    JS::PersistentRootedObject *global = nullptr;
    std::unordered_map<std::string, std::unique_ptr<JS::PersistentRootedScript>> cache;
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
    std::mutex                  lock;             /* engines */
    std::vector<Engine *>       engines;
};

Process proc;

long long
now_ns()
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void
watchdog()
{
    for (;;) {
        std::this_thread::sleep_for(WATCH_EVERY);
        std::lock_guard<std::mutex> g(proc.lock);
        long long now = now_ns();

        for (Engine *e : proc.engines) {
            long long d = e->deadline_ns.load();

            if (d != 0 && now > d && !e->timed_out.exchange(true)) {
                JS_RequestInterruptCallback(e->cx);
            }
        }
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
    e->cache.clear();
    delete e->global;
    JS_DestroyContext(e->cx);
    delete e;
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
        } else if (p[i] == '%' && i + 2 < n + 0 && hexval(p[i + 1]) >= 0
                   && hexval(p[i + 2]) >= 0) {
            out += (char) (hexval(p[i + 1]) * 16 + hexval(p[i + 2]));
            i += 2;
        } else {
            out += p[i];
        }
    }
    return out;
}

/* Sets obj[name] = value, or appends to an array there when the name repeats. */
bool
add_arg(JSContext *cx, JS::HandleObject obj, const std::string &name, const std::string &val)
{
    JS::RootedValue old(cx);
    JS::RootedString s(cx, new_string(cx, val.data(), val.size()));
    JS::RootedValue sv(cx);
    bool found, is_array;

    if (!s || !JS_HasProperty(cx, obj, name.c_str(), &found)) {
        return false;
    }
    sv.setString(s);
    if (!found) {
        return JS_DefineProperty(cx, obj, name.c_str(), sv, JSPROP_ENUMERATE);
    }
    if (!JS_GetProperty(cx, obj, name.c_str(), &old)) {
        return false;
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
    return arr && JS_DefineProperty(cx, obj, name.c_str(), arr, JSPROP_ENUMERATE);
}

/* Splits "a=1&b=2" (sep '&') or "a=1; b=2" (sep ';', first wins). */
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
            bool found = false;

            if (!query && !JS_HasProperty(cx, obj, name.c_str(), &found)) {
                return false;
            }
            if (!found && !add_arg(cx, obj, name, val)) {
                return false;
            }
        }
        i = end + 1;
    }
    return true;
}

bool
get_pairs(JSContext *cx, JS::CallArgs &args, const char *var, char sep, bool query)
{
    JS::RootedObject obj(cx, JS_NewPlainObject(cx));
    JS::RootedValue raw(cx);

    if (!obj || !var_value(cx, var, strlen(var), &raw)) {
        return false;
    }
    if (raw.isString()) {
        JS::UniqueChars s = JS_EncodeStringToUTF8(cx, JS::RootedString(cx, raw.toString()));

        if (!s || !parse_pairs(cx, obj, s.get(), strlen(s.get()), sep, query)) {
            return false;
        }
    }
    args.rval().setObject(*obj);
    return true;
}

bool
get_args(JSContext *cx, unsigned argc, JS::Value *vp)
{
    JS::CallArgs args = JS::CallArgsFromVp(argc, vp);

    return get_pairs(cx, args, "args", '&', true);
}

bool
get_cookies(JSContext *cx, unsigned argc, JS::Value *vp)
{
    JS::CallArgs args = JS::CallArgsFromVp(argc, vp);

    return get_pairs(cx, args, "header_cookie", ';', false);
}

/* Request fields by the name the client sent; repeats joined with ", ". */
bool
get_headers(JSContext *cx, unsigned argc, JS::Value *vp)
{
    JS::CallArgs     args = JS::CallArgsFromVp(argc, vp);
    Engine          *e = current(cx);
    JS::RootedObject obj(cx, JS_NewPlainObject(cx));
    const char      *name, *value;
    size_t           nlen, vlen;

    if (!obj) {
        return false;
    }
    for (size_t i = 0; e->ops->field(e->req, i, &name, &nlen, &value, &vlen) == 1; i++) {
        std::string      key(name, nlen);
        JS::RootedValue  old(cx);
        JS::RootedString s(cx);
        bool             found;

        if (!JS_HasProperty(cx, obj, key.c_str(), &found)) {
            return false;
        }
        if (found) {
            JS::UniqueChars prev;

            if (!JS_GetProperty(cx, obj, key.c_str(), &old)
                || !(prev = JS_EncodeStringToUTF8(cx, JS::RootedString(cx, old.toString())))) {
                return false;
            }
            std::string joined = std::string(prev.get()) + ", " + std::string(value, vlen);
            s = new_string(cx, joined.data(), joined.size());
        } else {
            s = new_string(cx, value, vlen);
        }
        if (!s) {
            return false;
        }
        JS::RootedValue sv(cx, JS::StringValue(s));
        if (!JS_DefineProperty(cx, obj, key.c_str(), sv, JSPROP_ENUMERATE)) {
            return false;
        }
    }
    args.rval().setObject(*obj);
    return true;
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
        if (!JS_DefineProperty(cx, g, p.name, p.get, nullptr, JSPROP_ENUMERATE)) {
            return false;
        }
    }
    return true;
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
    if (!JS::InitSelfHostedCode(e->cx) || !JS_AddInterruptCallback(e->cx, interrupted)) {
        wr_log(WR_LOG_ERR, "JavaScript engine: context set-up failed");
        JS_DestroyContext(e->cx);
        return nullptr;
    }
    JS::RealmOptions opts;
    JSObject *g = JS_NewGlobalObject(e->cx, &global_class, nullptr, JS::FireOnNewGlobalHook, opts);
    if (g == nullptr) {
        wr_log(WR_LOG_ERR, "JavaScript engine: JS_NewGlobalObject() failed");
        JS_DestroyContext(e->cx);
        return nullptr;
    }
    e->global = new JS::PersistentRootedObject(e->cx, g);
    {
        JSAutoRealm ar(e->cx, g);

        if (!JS::InitRealmStandardClasses(e->cx) || !define_request(e->cx, *e->global)) {
            wr_log(WR_LOG_ERR, "JavaScript engine: global set-up failed");
            delete e->global;
            JS_DestroyContext(e->cx);
            return nullptr;
        }
    }
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

JSScript *
compile(Engine *e, const std::string &src, std::string &why)
{
    auto it = e->cache.find(src);
    if (it != e->cache.end()) {
        return *it->second;
    }
    JS::CompileOptions opts(e->cx);
    JS::SourceText<mozilla::Utf8Unit> text;

    opts.setFileAndLine("template", 1);
    if (!text.init(e->cx, src.data(), src.size(), JS::SourceOwnership::Borrowed)) {
        why = exception_text(e->cx);
        return nullptr;
    }
    JSScript *script = JS::Compile(e->cx, opts, text);
    if (script == nullptr) {
        why = exception_text(e->cx);
        return nullptr;
    }
    if (e->cache.size() >= WR_SCRIPT_CACHE_MAX) {
        e->cache.clear();
    }
    e->cache.emplace(src, std::make_unique<JS::PersistentRootedScript>(e->cx, script));
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
    std::string why;

    if (e == nullptr) {
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
    JSAutoRealm ar(e->cx, *e->global);
    if (compile(e, script->src, why) == nullptr) {
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
wr_script_eval(const wr_script_t *s, const wr_script_req_t *ops, const void *req, wr_buf_t *out)
{
    Engine     *e = engine();
    std::string why;
    int         rc = -1;

    if (e == nullptr) {
        wr_log(WR_LOG_ERR, "template %s: the JavaScript engine could not start", s->src.c_str());
        return -1;
    }
    JSAutoRealm     ar(e->cx, *e->global);
    JS::RootedValue v(e->cx);
    JSScript       *compiled = compile(e, s->src, why);

    if (compiled == nullptr) {
        wr_log(WR_LOG_ERR, "template %s: %s", s->src.c_str(), why.c_str());
        return -1;
    }
    JS::RootedScript script(e->cx, compiled);
    e->ops = ops;
    e->req = req;
    e->timed_out.store(false);
    e->deadline_ns.store(now_ns() + WR_SCRIPT_TIMEOUT_MS * 1000000LL);

    bool ok = JS_ExecuteScript(e->cx, script, &v);
    JS::RootedString str(e->cx, ok ? JS::ToString(e->cx, v) : nullptr);
    JS::UniqueChars utf8 = str ? JS_EncodeStringToUTF8(e->cx, str) : nullptr;

    e->deadline_ns.store(0);
    if (utf8) {
        rc = wr_buf_puts(out, utf8.get());
        if (rc < 0) {
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
