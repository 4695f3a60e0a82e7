/*
 * warren-php: the application's options, as warrend passes them
 * (src/app/spec.c). The configuration was validated before, so a bad value
 * here means the runtime was started by hand: it is reported and the
 * worker exits with WR_RT_EXIT_CONFIG.
 *
 *   WARREN_PHP_ROOT     "root"        (unless WARREN_PHP_TARGETS)
 *   WARREN_PHP_SCRIPT   "script"
 *   WARREN_PHP_INDEX    "index", default "index.php"
 *   WARREN_PHP_TARGETS  "targets" as JSON: {"name": {"root", "script", "index"}}
 *   WARREN_PHP_OPTIONS  "options" as JSON: {"file", "admin": {}, "user": {}}
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "runtime/php/wphp.h"

#define WPHP_DEFAULT_INDEX "index.php"

static char *dup_or_null(const char *s)
{
    return s && s[0] ? strdup(s) : NULL;
}

/* A root that is not a directory, or a script that is not a file, is a
 * mistake in the configuration: the worker does not start (as under Unit),
 * and the change that started it fails with this line. */
static int target_check(const wphp_target_t *t)
{
    char path[PATH_MAX];
    struct stat st;

    errno = 0;
    if (stat(t->root, &st) < 0 || !S_ISDIR(st.st_mode)) {
        wphp_log("root \"%s\": %s", t->root, errno ? strerror(errno) : "not a directory");
        return -1;
    }
    if (t->script == NULL)
        return 0;
    snprintf(path, sizeof(path), "%s/%s", t->root, t->script);
    errno = 0;
    if (stat(path, &st) < 0 || !S_ISREG(st.st_mode)) {
        wphp_log("script \"%s\": %s", path, errno ? strerror(errno) : "not a file");
        return -1;
    }
    return 0;
}

/* Fills t; 0, or -1 after logging. */
static int target_set(wphp_target_t *t, const char *name, const char *root,
                      const char *script, const char *index)
{
    size_t n;

    if (root == NULL || root[0] == '\0') {
        wphp_log("%s%s%s: no \"root\"", name[0] ? "target \"" : "application",
                 name, name[0] ? "\"" : "");
        return -1;
    }
    t->name = strdup(name);
    /* A relative root is taken from the working directory, once: PHP
     * changes directory to each script's. */
    t->root = root[0] == '/' ? strdup(root) : realpath(root, NULL);
    if (t->root == NULL && root[0] != '/') {
        wphp_log("root \"%s\": %s", root, strerror(errno));
        return -1;
    }
    t->script = dup_or_null(script);
    t->index = strdup(index && index[0] ? index : WPHP_DEFAULT_INDEX);
    if (t->name == NULL || t->root == NULL || t->index == NULL || (script && script[0] && !t->script)) {
        wphp_log("out of memory reading the options");
        return -1;
    }
    for (n = strlen(t->root); n > 1 && t->root[n - 1] == '/'; n--)
        t->root[n - 1] = '\0';
    return target_check(t);
}

static int targets_read(wphp_options_t *o, const char *text)
{
    json_error_t jerr;
    json_t *all = json_loads(text, 0, &jerr), *v;
    const char *k;
    int rc = -1;

    if (!json_is_object(all) || json_object_size(all) == 0) {
        wphp_log("WARREN_PHP_TARGETS is not a JSON object of targets");
        goto out;
    }
    o->targets = calloc(json_object_size(all), sizeof(*o->targets));
    if (o->targets == NULL)
        goto out;
    json_object_foreach(all, k, v) {
        if (target_set(&o->targets[o->ntargets++], k,
                       json_string_value(json_object_get(v, "root")),
                       json_string_value(json_object_get(v, "script")),
                       json_string_value(json_object_get(v, "index"))) < 0)
            goto out;
    }
    rc = 0;
out:
    json_decref(all);
    return rc;
}

static int ini_add(wphp_options_t *o, json_t *group, int admin)
{
    const char *k;
    json_t *v;

    json_object_foreach(group, k, v) {
        wphp_ini_t *e = &o->ini[o->nini];
        if (!json_is_string(v)) {
            wphp_log("options.%s.%s is not a string", admin ? "admin" : "user", k);
            return -1;
        }
        e->name = strdup(k);
        e->value = strdup(json_string_value(v));
        e->admin = admin;
        o->nini++;
        if (e->name == NULL || e->value == NULL)
            return -1;
    }
    return 0;
}

static int options_read(wphp_options_t *o, const char *text)
{
    json_error_t jerr;
    json_t *all = json_loads(text, 0, &jerr);
    json_t *admin = json_object_get(all, "admin"), *user = json_object_get(all, "user");
    int rc = -1;

    if (!json_is_object(all)) {
        wphp_log("WARREN_PHP_OPTIONS is not a JSON object");
        goto out;
    }
    o->ini_file = dup_or_null(json_string_value(json_object_get(all, "file")));
    o->ini = calloc(json_object_size(admin) + json_object_size(user) + 1, sizeof(*o->ini));
    if (o->ini == NULL || ini_add(o, admin, 1) < 0 || ini_add(o, user, 0) < 0)
        goto out;
    rc = 0;
out:
    json_decref(all);
    return rc;
}

int wphp_options_read(wphp_options_t *o)
{
    const char *targets = getenv("WARREN_PHP_TARGETS");
    const char *opts = getenv("WARREN_PHP_OPTIONS");

    memset(o, 0, sizeof(*o));
    if (targets && targets[0]) {
        if (targets_read(o, targets) < 0)
            return -1;
    } else {
        o->targets = calloc(1, sizeof(*o->targets));
        if (o->targets == NULL)
            return -1;
        o->ntargets = 1;
        if (target_set(o->targets, "", getenv("WARREN_PHP_ROOT"),
                       getenv("WARREN_PHP_SCRIPT"), getenv("WARREN_PHP_INDEX")) < 0)
            return -1;
    }
    return opts && opts[0] ? options_read(o, opts) : 0;
}

const wphp_target_t *wphp_target_find(const wphp_options_t *o, const char *name)
{
    for (size_t i = 0; i < o->ntargets; i++)
        if (strcmp(o->targets[i].name, name) == 0)
            return &o->targets[i];
    return o->ntargets == 1 && o->targets[0].name[0] == '\0' ? &o->targets[0] : NULL;
}

void wphp_options_free(wphp_options_t *o)
{
    for (size_t i = 0; i < o->ntargets; i++) {
        free(o->targets[i].name);
        free(o->targets[i].root);
        free(o->targets[i].script);
        free(o->targets[i].index);
    }
    for (size_t i = 0; i < o->nini; i++) {
        free(o->ini[i].name);
        free(o->ini[i].value);
    }
    free(o->targets);
    free(o->ini);
    free(o->ini_file);
    memset(o, 0, sizeof(*o));
}
