/*
 * "modules" of GET /status (Unit 1.33's key): the language runtimes this
 * warrend can run, each with the version of the language it embeds and
 * the program's path ("lib": Unit names its module's .so there). Listed
 * once, when the controller starts: a runtime is there when its program
 * in --modulesdir is executable. The versions are those the runtimes were
 * built against (the Makefile passes them).
 */
#include <stdio.h>
#include <unistd.h>

#include "app/app.h"
#include "control/internal.h"

#ifndef WR_PYTHON_VERSION
#define WR_PYTHON_VERSION ""
#endif
#ifndef WR_PHP_VERSION
#define WR_PHP_VERSION ""
#endif
#ifndef WR_PERL_VERSION
#define WR_PERL_VERSION ""
#endif
#ifndef WR_RUBY_VERSION
#define WR_RUBY_VERSION ""
#endif
#ifndef WR_JAVA_VERSION
#define WR_JAVA_VERSION ""
#endif

json_t *wr_ctl_modules(const char *runtimes)
{
    static const struct {
        const char *type, *program, *version;
    } known[] = {
        { "python", WR_PYTHON_RUNTIME, WR_PYTHON_VERSION },
        { "php", WR_PHP_RUNTIME, WR_PHP_VERSION },
        { "perl", WR_PERL_RUNTIME, WR_PERL_VERSION },
        { "ruby", WR_RUBY_RUNTIME, WR_RUBY_VERSION },
        { "java", WR_JAVA_RUNTIME, WR_JAVA_VERSION },
    };
    json_t *modules = json_object();
    char path[4096];

    if (modules == NULL || runtimes == NULL)
        return modules;
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        int n = snprintf(path, sizeof(path), "%s/%s", runtimes, known[i].program);
        if (n < 0 || (size_t) n >= sizeof(path) || access(path, X_OK) < 0)
            continue;
        json_object_set_new(modules, known[i].type,
                            json_pack("{s:s,s:s}", "version", known[i].version, "lib", path));
    }
    return modules;
}
