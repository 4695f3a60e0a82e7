/*
 * warren-php: the PHP runtime, a worker program on libwarren that embeds
 * Debian's libphp (the "embed" build, non-thread-safe: one request at a
 * time per worker). Internal header: what the runtime's files share.
 *
 *   main.c     options, PHP start, the request loop
 *   options.c  WARREN_PHP_* variables -> wphp_options_t
 *   resolve.c  request path -> script to run (or 301 / 404); no PHP in it,
 *              so the unit tests cover it alone
 *   sapi.c     the SAPI module: PHP's I/O to and from libwarren
 */
#ifndef WR_RUNTIME_PHP_WPHP_H
#define WR_RUNTIME_PHP_WPHP_H

#include <stddef.h>

#include "runtime/common/exit.h"
#include "runtime/common/log.h"
#include "warren.h"

#define WPHP_PROGRAM "warren-php"

/* One place requests are served from: the app itself, or one of its
 * "targets" (Unit's root, script, index). */
typedef struct {
    char *name;      /* the target's key; "" for the app itself */
    char *root;      /* directory, no trailing "/" (except "/" itself) */
    char *script;    /* run for every request, or NULL */
    char *index;     /* appended to paths ending in "/" */
} wphp_target_t;

/* One php.ini directive of "options.admin" or "options.user". */
typedef struct {
    char *name;
    char *value;
    int   admin;     /* 1: locked, ini_set() cannot change it */
} wphp_ini_t;

typedef struct {
    wphp_target_t *targets;
    size_t         ntargets;
    char          *ini_file;    /* options.file, or NULL */
    wphp_ini_t    *ini;
    size_t         nini;
} wphp_options_t;

/* Reads WARREN_PHP_* (options.c). 0, or -1 after logging why. */
int  wphp_options_read(wphp_options_t *o);
void wphp_options_free(wphp_options_t *o);
const wphp_target_t *wphp_target_find(const wphp_options_t *o, const char *name);

/* What a request path resolves to (resolve.c). */
typedef enum {
    WPHP_RUN,        /* run filename */
    WPHP_REDIRECT,   /* 301 to location: a directory without its "/" */
    WPHP_NOT_FOUND,  /* 404 */
} wphp_verdict_t;

typedef struct {
    wphp_verdict_t verdict;
    char *filename;     /* root + script name (WPHP_RUN) */
    char *script_name;  /* "/blog/index.php" */
    char *path_info;    /* "/extra" or NULL */
    char *location;     /* "/blog/?a=1" (WPHP_REDIRECT) */
} wphp_resolved_t;

/* path: the request's decoded, normalized path ("/a/b.php/x"); query
 * without "?" ("" when none). 0, or -1 out of memory. */
int  wphp_resolve(const wphp_target_t *t, const char *path, const char *query,
                  wphp_resolved_t *out);
void wphp_resolved_free(wphp_resolved_t *r);

/* sapi.c: PHP's start (once, options applied), one request, the end. */
int  wphp_php_start(const wphp_options_t *o);
void wphp_serve_one(warren_req_t *req, const wphp_target_t *t);
void wphp_php_stop(void);

/* Lines on stderr, each starting "warren-php[app:pid]: "
 * (src/runtime/common/log.c). */
#define wphp_log      wr_rt_log
#define wphp_log_text wr_rt_log_text

#endif
