/*
 * warren-php: the SAPI module, PHP's side of a request. PHP calls back
 * into it (ub_write, send_headers, read_post ...) with no argument telling
 * which request: the worker serves one at a time, and the callbacks find it
 * in the process's one context, `cur`.
 *
 * A request: resolve the script (resolve.c), fill SG(request_info), run
 * php_request_startup / php_execute_script / php_request_shutdown, then
 * end the response. Output is gathered into a buffer of WPHP_OUT_CHUNK
 * bytes and sent when it fills, when the script calls flush(), and at the
 * end, so a script that echoes a line at a time does not cost a channel
 * message per line.
 *
 * "options": admin and user directives become lines appended to php.ini
 * (ini_entries: the values every request starts from, after php.ini and
 * options.file); admin ones are then locked to PHP_INI_SYSTEM, so
 * ini_set() cannot change them.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <php.h>
#include <SAPI.h>
#include <php_main.h>
#include <php_output.h>
#include <php_variables.h>
#include <zend_ini.h>
#include <ext/standard/head.h>

#include "runtime/common/cgi.h"
#include "runtime/php/wphp.h"

enum {
    WPHP_OUT_CHUNK    = 32 * 1024, /* output gathered per channel message */
    WPHP_HOST_MAX     = 255,       /* a DNS name's longest */
    WPHP_VAR_NAME_MAX = 512,       /* a longer header name is not passed on */
    WPHP_HTTP_10      = 1000,      /* SG(request_info).proto_num */
    WPHP_HTTP_11      = 1001,
    WPHP_NUM_TEXT     = 24,        /* a size_t in decimal, and its NUL */
};

#define WPHP_SOFTWARE "Warren/" WR_VERSION

typedef struct {
    warren_req_t    *req;
    const wphp_target_t *target;
    int              failed;      /* the response can no longer be sent */
    int              head;        /* send_headers ran */
    int              ended;       /* fastcgi_finish_request(): the response is
                                   * whole, the script goes on, output dropped */
    size_t           out_len;
    char             out[WPHP_OUT_CHUNK];
    wphp_resolved_t  res;
    const char      *content_type;   /* the request's, or NULL */
    const char      *content_length;
    char            *ini_entries;
} wphp_cur_t;

static wphp_cur_t cur;

/* ---------------------------------------------------------------- output */

static int out_push(void)
{
    if (cur.out_len == 0 || cur.failed)
        return cur.failed ? -1 : 0;
    if (warren_write(cur.req, cur.out, cur.out_len) < 0) {
        cur.failed = 1;
        return -1;
    }
    cur.out_len = 0;
    return 0;
}

static size_t wphp_ub_write(const char *str, size_t len)
{
    if (cur.failed || cur.ended || cur.req == NULL)
        return len;
    if (cur.out_len + len > sizeof(cur.out) && out_push() < 0)
        goto gone;
    if (len >= sizeof(cur.out)) {
        if (warren_write(cur.req, str, len) < 0) {
            cur.failed = 1;
            goto gone;
        }
        return len;
    }
    memcpy(cur.out + cur.out_len, str, len);
    cur.out_len += len;
    return len;
gone:
    /* The client left (or the router ended the request): PHP decides,
     * by ignore_user_abort, whether the script goes on. */
    php_handle_aborted_connection();
    return len;
}

static void wphp_flush(void *server_context)
{
    if (cur.req == NULL || cur.ended)
        return;
    if (!SG(headers_sent))
        sapi_send_headers();
    if (out_push() < 0)
        php_handle_aborted_connection();
}

static int wphp_send_headers_cb(sapi_headers_struct *h)
{
    zend_llist_position pos;
    sapi_header_struct *f;
    int status = SG(sapi_headers).http_response_code;

    if (cur.req == NULL)
        return SAPI_HEADER_SENT_SUCCESSFULLY;
    cur.head = 1;
    if (warren_response_init(cur.req, status > 0 ? status : 200,
                             zend_llist_count(&h->headers)) < 0) {
        wphp_log("status %d refused: %s", status, strerror(errno));
        warren_response_init(cur.req, 500, 0);
        return SAPI_HEADER_SENT_SUCCESSFULLY;
    }
    for (f = zend_llist_get_first_ex(&h->headers, &pos); f;
         f = zend_llist_get_next_ex(&h->headers, &pos)) {
        const char *colon = memchr(f->header, ':', f->header_len);
        const char *v;
        if (colon == NULL)
            continue;
        for (v = colon + 1; v < f->header + f->header_len && (*v == ' ' || *v == '\t'); v++)
            ;
        if (warren_response_add_header(cur.req, f->header, (size_t) (colon - f->header),
                                       v, (size_t) (f->header + f->header_len - v)) < 0)
            wphp_log("response header \"%.*s\" dropped: %s", (int) (colon - f->header),
                     f->header, strerror(errno));
    }
    return SAPI_HEADER_SENT_SUCCESSFULLY;
}

/* ----------------------------------------------------------------- input */

/* PHP stops reading at the first short read: fill count unless the body ends. */
static size_t wphp_read_post(char *buf, size_t count)
{
    size_t got = 0;

    while (cur.req && got < count) {
        ssize_t n = warren_read(cur.req, buf + got, count - got);
        if (n <= 0)
            break;
        got += (size_t) n;
    }
    return got;
}

static char *wphp_read_cookies(void)
{
    return cur.req ? (char *) warren_req_header_get(cur.req, "Cookie", NULL) : NULL;
}

static void var(zval *arr, const char *name, const char *value, size_t len)
{
    php_register_variable_safe(name, value, len, arr);
}

static void var_s(zval *arr, const char *name, const char *value)
{
    var(arr, name, value, strlen(value));
}

/* Every request field as HTTP_NAME (CGI's rule), but the two that have
 * their own variables. */
static void header_vars(zval *arr, warren_req_t *req)
{
    char name[WPHP_VAR_NAME_MAX];
    size_t count = warren_req_header_count(req);

    for (size_t i = 0; i < count; i++) {
        const char *n, *v;
        size_t nlen, vlen;
        /* Content-Type and -Length come from the body's own fields. */
        if (warren_req_header(req, i, &n, &nlen, &v, &vlen) < 0
            || WR_RT_CGI_KEY_SIZE(nlen) > sizeof(name)
            || wr_rt_field_is(n, nlen, "Content-Type") || wr_rt_field_is(n, nlen, "Content-Length"))
            continue;
        wr_rt_cgi_key(name, n, nlen);
        var(arr, name, v, vlen);
    }
}

/* The host asked for, an IPv6 one in brackets (runtime/common/cgi.c);
 * out has room for any DNS name. */
static const char *server_name(char out[WR_RT_SERVER_NAME_SIZE(WPHP_HOST_MAX)], warren_req_t *req)
{
    size_t n;
    const char *host = warren_req_server_name(req, &n);

    if (n > WPHP_HOST_MAX)
        return host;
    wr_rt_server_name(out, host, n);
    return out;
}

static void wphp_register_variables(zval *arr)
{
    warren_req_t *req = cur.req;
    char server[WR_RT_SERVER_NAME_SIZE(WPHP_HOST_MAX)];
    char *self;

    if (req == NULL)
        return;
    header_vars(arr, req);
    var_s(arr, "SERVER_SOFTWARE", WPHP_SOFTWARE);
    var_s(arr, "GATEWAY_INTERFACE", "CGI/1.1");
    var_s(arr, "SERVER_PROTOCOL", warren_req_version(req, NULL));
    var_s(arr, "REQUEST_METHOD", warren_req_method(req, NULL));
    var_s(arr, "REQUEST_URI", warren_req_target(req, NULL));
    var_s(arr, "QUERY_STRING", warren_req_query(req, NULL));
    var_s(arr, "SERVER_NAME", server_name(server, req));
    var_s(arr, "SERVER_ADDR", warren_req_local_addr(req, NULL));
    var_s(arr, "SERVER_PORT", warren_req_local_port(req, NULL));
    var_s(arr, "REMOTE_ADDR", warren_req_remote_addr(req, NULL));
    var_s(arr, "REMOTE_PORT", warren_req_remote_port(req, NULL));
    if (strcmp(warren_req_scheme(req, NULL), "https") == 0)
        var_s(arr, "HTTPS", "on");
    if (cur.content_type)
        var_s(arr, "CONTENT_TYPE", cur.content_type);
    if (cur.content_length)
        var_s(arr, "CONTENT_LENGTH", cur.content_length);
    var_s(arr, "DOCUMENT_ROOT", cur.target->root);
    var_s(arr, "SCRIPT_NAME", cur.res.script_name);
    var_s(arr, "SCRIPT_FILENAME", cur.res.filename);
    if (cur.res.path_info)
        var_s(arr, "PATH_INFO", cur.res.path_info);
    if (asprintf(&self, "%s%s", cur.res.script_name,
                 cur.res.path_info ? cur.res.path_info : "") >= 0) {
        var_s(arr, "PHP_SELF", self);
        free(self);
    }
}

static void wphp_log_message(const char *msg, int syslog_type)
{
    wphp_log_text(msg, strlen(msg));
}

/* The response ends here; the script goes on without a client (php-fpm's
 * function, which frameworks call when it exists). The worker stays busy
 * with it, so the router may queue the next request behind it. */
ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_finish_request, 0, 0, _IS_BOOL, 0)
ZEND_END_ARG_INFO()

static PHP_FUNCTION(fastcgi_finish_request)
{
    ZEND_PARSE_PARAMETERS_NONE();
    if (cur.req == NULL || cur.ended)
        RETURN_FALSE;
    php_output_end_all();
    php_header();
    if (!cur.failed && warren_write_end(cur.req, cur.out, cur.out_len) < 0)
        cur.failed = 1;
    cur.out_len = 0;
    cur.ended = 1;
    RETURN_TRUE;
}

static const zend_function_entry wphp_functions[] = {
    ZEND_FE(fastcgi_finish_request, arginfo_finish_request)
    ZEND_FE_END
};

static int wphp_startup(sapi_module_struct *m)
{
    return php_module_startup(m, NULL);
}

static sapi_module_struct wphp_sapi = {
    /* The name opcache checks against its list of web SAPIs (it stays off
     * for any other), and the one Unit gives: php_sapi_name() is the same
     * as under Unit. */
    .name = "cli-server",
    .pretty_name = "Warren",
    .startup = wphp_startup,
    .shutdown = php_module_shutdown_wrapper,
    .ub_write = wphp_ub_write,
    .flush = wphp_flush,
    .sapi_error = php_error,
    .send_headers = wphp_send_headers_cb,
    .read_post = wphp_read_post,
    .read_cookies = wphp_read_cookies,
    .register_server_variables = wphp_register_variables,
    .log_message = wphp_log_message,
    .additional_functions = wphp_functions,
};

/* ------------------------------------------------------------- start, stop */

/* One option as a php.ini line. A value is written bare when php.ini would
 * read it back the same (so "E_ALL & ~E_NOTICE" stays an expression, as in
 * php.ini), else quoted; a double quote cannot be written at all. */
static int ini_line(FILE *f, const wphp_ini_t *e)
{
    static const char bare_bad[] = "=;{}[]$'\"?!#\\\n";

    if (strchr(e->value, '"') || strchr(e->value, '\n') || strpbrk(e->name, bare_bad)) {
        wphp_log("options.%s.%s: a name or value php.ini cannot hold", e->admin ? "admin" : "user",
                 e->name);
        return -1;
    }
    if (strpbrk(e->value, bare_bad) || e->value[0] == ' ' || e->value[0] == '\0')
        fprintf(f, "%s=\"%s\"\n", e->name, e->value);
    else
        fprintf(f, "%s=%s\n", e->name, e->value);
    return 0;
}

static int ini_entries(const wphp_options_t *o)
{
    size_t len = 0;
    FILE *f = open_memstream(&cur.ini_entries, &len);
    int rc = 0;

    if (f == NULL) {
        wphp_log("open_memstream failed: %s", strerror(errno));
        return -1;
    }
    for (size_t i = 0; i < o->nini && rc == 0; i++)
        rc = ini_line(f, &o->ini[i]);
    if (fclose(f) != 0 && rc == 0) {
        wphp_log("cannot build the php.ini lines of the options: %s", strerror(errno));
        rc = -1;
    }
    return rc;
}

/* Admin directives: no ini_set() from then on. A name PHP does not know
 * is only reported, as php.ini itself would ignore it. */
static void ini_lock(const wphp_options_t *o)
{
    for (size_t i = 0; i < o->nini; i++) {
        zend_ini_entry *e = zend_hash_str_find_ptr(EG(ini_directives), o->ini[i].name,
                                                   strlen(o->ini[i].name));
        if (e == NULL)
            wphp_log("options.%s.%s: PHP has no such directive (ignored)",
                     o->ini[i].admin ? "admin" : "user", o->ini[i].name);
        else if (o->ini[i].admin)
            e->modifiable = ZEND_INI_SYSTEM;
    }
}

int wphp_php_start(const wphp_options_t *o)
{
    if (o->ini_file && access(o->ini_file, R_OK) < 0) {
        wphp_log("options.file: cannot read \"%s\": %s", o->ini_file, strerror(errno));
        return -1;
    }
    if (ini_entries(o) < 0)
        return -1;
    sapi_startup(&wphp_sapi);
    wphp_sapi.php_ini_path_override = o->ini_file;
    wphp_sapi.ini_entries = cur.ini_entries;
    wphp_sapi.phpinfo_as_text = 0;
    if (wphp_sapi.startup(&wphp_sapi) == FAILURE) {
        wphp_log("PHP did not start (php_module_startup failed)");
        return -1;
    }
    ini_lock(o);
    SG(options) |= SAPI_OPTION_NO_CHDIR;        /* script_dir() does it */
    return 0;
}

void wphp_php_stop(void)
{
    php_module_shutdown();
    sapi_shutdown();
    free(cur.ini_entries);
    cur.ini_entries = NULL;
}

/* ---------------------------------------------------------------- request */

/* An answer of the runtime's own (no PHP ran). */
static void answer(warren_req_t *req, int status, const char *location)
{
    static const char html[] = "text/html";
    const char *text = status == 404 ? "<html><body><h1>404 Not Found</h1></body></html>\n"
                     : status == 301 ? "<html><body><h1>301 Moved Permanently</h1></body></html>\n"
                     : "<html><body><h1>500 Internal Server Error</h1></body></html>\n";

    char len[WPHP_NUM_TEXT];

    snprintf(len, sizeof(len), "%zu", strlen(text));
    if (warren_response_init(req, status, 3) == 0) {
        warren_response_add_header(req, "Content-Type", 12, html, sizeof(html) - 1);
        warren_response_add_header(req, "Content-Length", 14, len, strlen(len));
        if (location)
            warren_response_add_header(req, "Location", 8, location, strlen(location));
        warren_write_end(req, text, strlen(text));
    }
    warren_finish(req);
}

static void request_info(warren_req_t *req)
{
    const char *ct = warren_req_header_get(req, "Content-Type", NULL);
    const char *cl = warren_req_header_get(req, "Content-Length", NULL);
    const char *auth = warren_req_header_get(req, "Authorization", NULL);

    cur.content_type = ct;              /* for $_SERVER, without a second look */
    cur.content_length = cl;
    SG(server_context) = &cur;
    SG(request_info).request_method = warren_req_method(req, NULL);
    SG(request_info).query_string = (char *) warren_req_query(req, NULL);
    SG(request_info).request_uri = (char *) warren_req_target(req, NULL);
    SG(request_info).path_translated = cur.res.filename;
    SG(request_info).content_type = ct;
    SG(request_info).content_length = cl ? strtoll(cl, NULL, 10) : 0;
    SG(request_info).proto_num = strcmp(warren_req_version(req, NULL), "HTTP/1.0") == 0
                                 ? WPHP_HTTP_10 : WPHP_HTTP_11;
    SG(sapi_headers).http_response_code = 200;
    php_handle_auth_data(auth);
}

/* The script runs in its own directory (relative includes). PHP would
 * chdir there itself, then getcwd and chdir back after: one chdir here
 * costs a system call where PHP's way costs three. */
static void script_dir(const char *filename)
{
    const char *slash = strrchr(filename, '/');
    char dir[PATH_MAX];

    snprintf(dir, sizeof(dir), "%.*s", slash && slash != filename
             ? (int) (slash - filename) : 1, filename);
    if (chdir(dir) < 0)
        wphp_log("chdir(\"%s\") failed: %s", dir, strerror(errno));
}

static void run_php(warren_req_t *req)
{
    zend_file_handle fh;

    request_info(req);
    script_dir(cur.res.filename);
    if (php_request_startup() == FAILURE) {
        wphp_log("php_request_startup failed for %s", cur.res.filename);
        php_request_shutdown(NULL);
        return;
    }
    zend_stream_init_filename(&fh, cur.res.filename);
    fh.primary_script = 1;
    php_execute_script(&fh);
    zend_destroy_file_handle(&fh);
    php_request_shutdown(NULL);
}

void wphp_serve_one(warren_req_t *req, const wphp_target_t *t)
{
    memset(&cur.res, 0, sizeof(cur.res));
    if (wphp_resolve(t, warren_req_path(req, NULL), warren_req_query(req, NULL), &cur.res) < 0) {
        wphp_log("out of memory resolving %s", warren_req_path(req, NULL));
        answer(req, 500, NULL);
        goto out;
    }
    if (cur.res.verdict != WPHP_RUN) {
        answer(req, cur.res.verdict == WPHP_REDIRECT ? 301 : 404, cur.res.location);
        goto out;
    }
    cur.req = req;
    cur.target = t;
    cur.failed = cur.head = cur.ended = 0;
    cur.out_len = 0;
    run_php(req);
    if (!cur.head) {
        cur.req = NULL;
        answer(req, 500, NULL);         /* PHP never got as far as a response */
        goto out;
    }
    if (cur.failed || (!cur.ended && warren_write_end(req, cur.out, cur.out_len) < 0))
        warren_abort(req);
    else
        warren_finish(req);
out:
    cur.req = NULL;
    cur.target = NULL;
    cur.content_type = cur.content_length = NULL;
    wphp_resolved_free(&cur.res);
}
