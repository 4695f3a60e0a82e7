/*
 * Linked into the sanitizer build of the PHP runtime that the integration
 * suite runs (build/warren-php-asan).
 *
 * Options: workers get no environment from warrend (no ASAN_OPTIONS), so
 * they live in the program. A report aborts the worker (the test sees the
 * failed request and the report in the error log); leaks are not checked
 * (a worker ends by exit with PHP's memory still held).
 *
 * dlopen: libphp loads its extensions (opcache ...) with RTLD_DEEPBIND,
 * which the sanitizer runtime refuses outright. This build drops the flag
 * and hands the call on to the sanitizer's own dlopen; the extensions are
 * Debian's, with no symbols that clash.
 */
#include <dlfcn.h>
#include <stddef.h>

const char *__asan_default_options(void);
void *dlopen(const char *file, int mode);

const char *__asan_default_options(void)
{
    return "detect_leaks=0:abort_on_error=1";
}

void *dlopen(const char *file, int mode)
{
    void *(*next)(const char *, int) = (void *(*)(const char *, int)) dlsym(RTLD_NEXT, "dlopen");

    return next ? next(file, mode & ~RTLD_DEEPBIND) : NULL;
}
