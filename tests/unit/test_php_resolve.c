/*
 * warren-php's script resolution (src/runtime/php/resolve.c), against a
 * real directory tree: script mode, index, PATH_INFO, the directory
 * redirect, and what is not a PHP script (404).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "runtime/php/wphp.h"

static char root[] = "/tmp/warren-php-resolve-XXXXXX";

static void touch(const char *rel)
{
    char path[256];
    FILE *f;

    snprintf(path, sizeof(path), "%s%s", root, rel);
    f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
}

static void mkd(const char *rel)
{
    char path[256];

    snprintf(path, sizeof(path), "%s%s", root, rel);
    assert_int_equal(mkdir(path, 0755), 0);
}

static int setup(void **state)
{
    (void) state;
    if (mkdtemp(root) == NULL)
        return -1;
    mkd("/blog");
    mkd("/blog/x.php");          /* a directory named like a script */
    touch("/index.php");
    touch("/blog/index.php");
    touch("/blog/post.php");
    touch("/blog/style.css");
    touch("/front.php");
    return 0;
}

static int teardown(void **state)
{
    char cmd[300];

    (void) state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    return system(cmd) == 0 ? 0 : -1;
}

static wphp_resolved_t resolve(const char *script, const char *path, const char *query)
{
    wphp_target_t t = { .name = "", .root = root, .script = (char *) script,
                        .index = "index.php" };
    wphp_resolved_t r;

    assert_int_equal(wphp_resolve(&t, path, query, &r), 0);
    return r;
}

static void expect_run(wphp_resolved_t *r, const char *name, const char *info)
{
    char file[256];

    snprintf(file, sizeof(file), "%s%s", root, name);
    assert_int_equal(r->verdict, WPHP_RUN);
    assert_string_equal(r->script_name, name);
    assert_string_equal(r->filename, file);
    if (info)
        assert_string_equal(r->path_info, info);
    else
        assert_null(r->path_info);
    wphp_resolved_free(r);
}

static void runs_scripts(void **state)
{
    wphp_resolved_t r;

    (void) state;
    r = resolve(NULL, "/blog/post.php", "");
    expect_run(&r, "/blog/post.php", NULL);
    r = resolve(NULL, "/", "a=1");
    expect_run(&r, "/index.php", NULL);
    r = resolve(NULL, "/blog/", "");
    expect_run(&r, "/blog/index.php", NULL);
}

static void splits_path_info(void **state)
{
    wphp_resolved_t r;

    (void) state;
    r = resolve(NULL, "/blog/post.php/2024/hello", "");
    expect_run(&r, "/blog/post.php", "/2024/hello");
    r = resolve(NULL, "/blog/post.php/", "");
    expect_run(&r, "/blog/post.php", "/");
}

static void script_mode_runs_it_for_all(void **state)
{
    wphp_resolved_t r;

    (void) state;
    r = resolve("front.php", "/any/thing.css", "");
    expect_run(&r, "/front.php", NULL);
    r = resolve("/front.php", "/", "");          /* a leading "/" is the same */
    expect_run(&r, "/front.php", NULL);
}

static void redirects_directories(void **state)
{
    wphp_resolved_t r;

    (void) state;
    r = resolve(NULL, "/blog", "");
    assert_int_equal(r.verdict, WPHP_REDIRECT);
    assert_string_equal(r.location, "/blog/");
    wphp_resolved_free(&r);
    r = resolve(NULL, "/blog", "p=2&q");
    assert_int_equal(r.verdict, WPHP_REDIRECT);
    assert_string_equal(r.location, "/blog/?p=2&q");
    wphp_resolved_free(&r);
    r = resolve(NULL, "/blog/x.php", "");      /* a directory, not a script */
    assert_int_equal(r.verdict, WPHP_REDIRECT);
    assert_string_equal(r.location, "/blog/x.php/");
    wphp_resolved_free(&r);
}

static void not_found(void **state)
{
    static const char *const paths[] = {
        "/blog/style.css",        /* not PHP: a share serves it */
        "/missing.php",
        "/missing.php/info",
        "/blog/x.php/",           /* its index is missing */
        "/nodir/",
        "/.php",                  /* names no script */
    };
    wphp_resolved_t r;

    (void) state;
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        r = resolve(NULL, paths[i], "");
        assert_int_equal(r.verdict, WPHP_NOT_FOUND);
        assert_null(r.filename);
        wphp_resolved_free(&r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(runs_scripts),
        cmocka_unit_test(splits_path_info),
        cmocka_unit_test(script_mode_runs_it_for_all),
        cmocka_unit_test(redirects_directories),
        cmocka_unit_test(not_found),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
