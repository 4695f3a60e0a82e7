/*
 * router: the data-plane process. Receives listen sockets and configurations
 * from main, compiles them beside the running ones and swaps them in, and
 * answers /status counters. (The HTTP engine arrives with issue 3.)
 */
#ifndef WR_ROUTER_H
#define WR_ROUTER_H

#include <sys/types.h>
#include <jansson.h>

typedef struct {
    int         chan_fd;            /* channel to main */
    pid_t       parent;
    uid_t       uid;                /* drop to */
    gid_t       gid;
    const char *tmpdir;
} wr_router_args_t;

__attribute__((noreturn)) void wr_router_main(const wr_router_args_t *a);

/* Build (and drop) what the router would build from a validated config:
 * routes (regexes, variables), MIME table, access log format. The controller
 * calls it so such errors are a 400 at validation, not a failed apply.
 * Returns 0, or -1 with a sentence in err. */
int wr_router_check(json_t *conf, json_t *js_modules, char *err, size_t errlen);
/* The JavaScript modules conf names (settings.js_module), with their sources
 * from js_modules ({"name": "source"}): NULL when it names none; with err
 * filled when one is missing or memory runs out. */
struct wr_script_env *wr_router_js_env(json_t *conf, json_t *js_modules, char *err,
                                       size_t errlen);

#endif
