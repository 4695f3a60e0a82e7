/*
 * warren-php: which script a request runs (Unit's rules for root, script
 * and index). The router hands over a path already percent-decoded and
 * normalized (no "..", no "//"), so a name built here stays under root.
 *
 *   script set       every request runs root/script
 *   "/a/b.php/x/y"   runs /a/b.php with PATH_INFO "/x/y"
 *   "/a/"            runs /a/ + index
 *   "/a/b.php"       runs it, if it is a regular file
 *   "/a"             301 to "/a/" when root/a is a directory
 *   anything else    404: a PHP app runs PHP files only (route other
 *                    files to a "share")
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runtime/php/wphp.h"

#define PHP_EXT     ".php"
#define PHP_EXT_LEN (sizeof(PHP_EXT) - 1)

static char *join(const char *root, const char *name)
{
    char *s;
    /* root "/" and name "/x.php": no "//" */
    if (asprintf(&s, "%s%s", strcmp(root, "/") == 0 ? "" : root, name) < 0)
        return NULL;
    return s;
}

static int is_kind(const char *path, mode_t kind)
{
    struct stat st;
    return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == kind;
}

/* "/a/b.php/x": the end of the first ".php" followed by "/", or NULL. */
static const char *php_split(const char *path)
{
    for (const char *p = strstr(path, PHP_EXT "/"); p; p = strstr(p + 1, PHP_EXT "/"))
        if (p > path && p[-1] != '/')     /* "/.php/" names no script */
            return p + PHP_EXT_LEN;
    return NULL;
}

static int ends_php(const char *name)
{
    size_t n = strlen(name);
    return n > PHP_EXT_LEN && strcmp(name + n - PHP_EXT_LEN, PHP_EXT) == 0
           && name[n - PHP_EXT_LEN - 1] != '/';
}

/* "script" is root-based with or without its leading "/". */
static int run_script(const wphp_target_t *t, wphp_resolved_t *out)
{
    const char *name = t->script;

    while (*name == '/')
        name++;
    out->verdict = WPHP_RUN;
    if (asprintf(&out->script_name, "/%s", name) < 0) {
        out->script_name = NULL;
        return -1;
    }
    out->filename = join(t->root, out->script_name);
    return out->filename ? 0 : -1;
}

/* No PHP script at path: a directory gets its "/", else 404. */
static int not_a_script(const wphp_target_t *t, const char *path, const char *query,
                        wphp_resolved_t *out)
{
    char *dir = join(t->root, path);

    if (dir == NULL)
        return -1;
    out->verdict = WPHP_NOT_FOUND;
    if (path[strlen(path) - 1] != '/' && is_kind(dir, S_IFDIR)) {
        out->verdict = WPHP_REDIRECT;
        if (asprintf(&out->location, "%s/%s%s", path, query[0] ? "?" : "", query) < 0)
            out->location = NULL;
    }
    free(dir);
    return out->verdict == WPHP_REDIRECT && out->location == NULL ? -1 : 0;
}

int wphp_resolve(const wphp_target_t *t, const char *path, const char *query,
                 wphp_resolved_t *out)
{
    const char *end;
    size_t len;

    memset(out, 0, sizeof(*out));
    if (t->script)
        return run_script(t, out);
    if (path[0] != '/')
        path = "/";
    end = php_split(path);
    if (end) {
        len = (size_t) (end - path);
        out->script_name = strndup(path, len);
        out->path_info = strdup(end);
        if (out->script_name == NULL || out->path_info == NULL)
            return -1;
    } else if (path[strlen(path) - 1] == '/') {
        if (asprintf(&out->script_name, "%s%s", path, t->index) < 0) {
            out->script_name = NULL;
            return -1;
        }
    } else if ((out->script_name = strdup(path)) == NULL) {
        return -1;
    }
    if (ends_php(out->script_name)) {
        if ((out->filename = join(t->root, out->script_name)) == NULL)
            return -1;
        if (is_kind(out->filename, S_IFREG)) {
            out->verdict = WPHP_RUN;
            return 0;
        }
    }
    wphp_resolved_free(out);
    return not_a_script(t, path, query, out);
}

void wphp_resolved_free(wphp_resolved_t *r)
{
    free(r->filename);
    free(r->script_name);
    free(r->path_info);
    free(r->location);
    memset(r, 0, sizeof(*r));
}
