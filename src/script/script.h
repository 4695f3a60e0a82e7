/*
 * script: JavaScript template literals, Unit's njs templates ("`/${host}`"),
 * evaluated by an embedded SpiderMonkey (Debian's libmozjs-102).
 *
 * A compiled wr_script_t is only its checked source: it is shared, read-only,
 * by every thread. Each thread that evaluates owns one engine (a JSContext
 * and a global), created on first use and ended with the thread; compiled
 * scripts are cached there by source text. The JIT is off: templates are
 * short, and the router then never maps writable-and-executable memory.
 *
 * Who calls what:
 *   route (tpl.c)  wr_script_is_template, wr_script_compile/free, wr_script_eval
 */
#ifndef WR_SCRIPT_H
#define WR_SCRIPT_H

#include <stddef.h>

#include "core/buf.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A template that has not finished after this long is stopped (500). */
#define WR_SCRIPT_TIMEOUT_MS       1000
/* GC heap of one thread's engine; past it a template fails. */
#define WR_SCRIPT_HEAP_MAX         (64u << 20)
/* Compiled templates kept per global; past it the cache starts again. */
#define WR_SCRIPT_CACHE_MAX        1024
/* Globals (one per set of modules) a thread keeps: configurations in flight. */
#define WR_SCRIPT_REALMS_MAX       4

typedef struct wr_script wr_script_t;
/* A configuration's modules (settings.js_module): each module's default
 * export is bound to the module's name in every template's global. */
typedef struct wr_script_env wr_script_env_t;

/* What a template may read of the request being answered (route's side). */
typedef struct {
    /* Appends Unit variable NAME (no '$') to out: 1; 0 unknown; -1 no memory. */
    int (*var)(const void *req, const char *name, size_t n, wr_buf_t *out);
    /* The i-th request field: 1; 0 past the last one. */
    int (*field)(const void *req, size_t i, const char **name, size_t *nlen,
                 const char **value, size_t *vlen);
} wr_script_req_t;

/* Is s a template literal: first and last character a backtick? */
int          wr_script_is_template(const char *s);
/* NULL with err filled (JavaScript's own message) when s does not compile. */
wr_script_t *wr_script_compile(const char *s, char *err, size_t errlen);
void         wr_script_free(wr_script_t *s);
/* Appends the template's string to out: 0; -1 when it threw, ran too long or
 * memory ran out (logged with the reason; out unchanged). env may be NULL. */
int          wr_script_eval(const wr_script_t *s, const wr_script_env_t *env,
                            const wr_script_req_t *ops, const void *req, wr_buf_t *out);

/* Does src compile as an ES module? 0, or -1 with JavaScript's message. */
int              wr_script_module_check(const char *src, size_t len, char *err, size_t errlen);
wr_script_env_t *wr_script_env_new(void);
/* Adds module name (its source copied): 0, or -1 when memory runs out. */
int              wr_script_env_add(wr_script_env_t *env, const char *name,
                                   const char *src, size_t len);
/* Loads env's modules in a scratch global of this thread (imports, top-level
 * code, default exports): 0, or -1 with the reason. */
int              wr_script_env_check(const wr_script_env_t *env, char *err, size_t errlen);
/* Any thread; the threads' globals for it are let go as they age out. */
void             wr_script_env_free(wr_script_env_t *env);

#ifdef __cplusplus
}
#endif

#endif
