/*
 * warren-ruby: the C half of the Rack glue. Warren::Channel#accept waits
 * for the router's next request; a Warren::Request builds its env hash
 * and moves the body in and the response out. Every call that may wait on
 * the channel runs without the GVL (rb_thread_call_without_gvl), so the
 * other Ruby threads run meanwhile; libwarren's context is thread-safe
 * when made for several threads.
 *
 * A Warren::Request lets go of its libwarren request once finished or
 * aborted: any later call raises instead of touching freed memory. One
 * never finished (lost by the glue) is aborted when collected.
 */
#include <errno.h>
#include <string.h>

#include <ruby.h>
#include <ruby/thread.h>

#include "runtime/common/cgi.h"
#include "runtime/ruby/wrb.h"

#define STATUS_ERROR    500
#define ERROR_BODY      "Internal Server Error\n"
#define TEXT_PLAIN      "text/plain"
#define HEADER_JOIN     ", "
/* RFC 6265 5.4: several cookie fields are one list joined by "; ". */
#define COOKIE_JOIN     "; "

enum {
    STATUS_MIN = 100, STATUS_MAX = 999,
    KEY_STACK  = 256,           /* usual header keys fit on the stack */
};

/* The classes this file defines: the process's Ruby context. */
static struct {
    VALUE mWarren, cChannel, cRequest, eClientGone;
} rb;

typedef struct {
    warren_ctx_t *ctx;
    int failed;             /* accept ended on an error */
} channel_t;

typedef struct {
    warren_req_t *req;      /* NULL once finished or aborted */
    int head_sent;          /* libwarren sent the head: no 500 any more */
    int ended;              /* the body's end went */
} request_t;

/* ----------------------------------------------------------- the types */

static void request_free(void *p)
{
    request_t *r = p;

    if (r->req != NULL)
        warren_abort(r->req);
    xfree(r);
}

static const rb_data_type_t channel_type = {
    .wrap_struct_name = "Warren::Channel",
    .function = { .dfree = RUBY_TYPED_DEFAULT_FREE },
    .flags = RUBY_TYPED_FREE_IMMEDIATELY,
};

static const rb_data_type_t request_type = {
    .wrap_struct_name = "Warren::Request",
    .function = { .dfree = request_free },
    .flags = RUBY_TYPED_FREE_IMMEDIATELY,
};

static request_t *live(VALUE self)
{
    request_t *r = rb_check_typeddata(self, &request_type);

    if (r->req == NULL)
        rb_raise(rb_eIOError, "Warren: the request is over");
    return r;
}

/* A channel call failed: the client left (ClientGone, which the glue
 * does not log), or something worse. */
static void NORETURN(chan_failed(int err, const char *what));
static void chan_failed(int err, const char *what)
{
    if (err == ECONNABORTED || err == ECONNRESET || err == EPIPE)
        rb_raise(rb.eClientGone, "Warren: the client went away");
    rb_raise(rb_eIOError, "Warren: %s: %s", what, strerror(err ? err : EIO));
}

/* -------------------------------------------------------- without GVL */

typedef struct {
    warren_ctx_t *ctx;
    warren_req_t *req;
    const char *data;
    char *buf;
    size_t n;
    ssize_t got;
    int rc, err, last;
} call_t;

static void *accept_nogvl(void *p)
{
    call_t *c = p;

    c->req = warren_accept(c->ctx);
    c->err = errno;
    return NULL;
}

static void *read_nogvl(void *p)
{
    call_t *c = p;

    c->got = warren_read(c->req, c->buf, c->n);
    c->err = errno;
    return NULL;
}

static void *write_nogvl(void *p)
{
    call_t *c = p;

    c->rc = c->last ? warren_write_end(c->req, c->data, c->n)
                    : warren_write(c->req, c->data, c->n);
    c->err = errno;
    return NULL;
}

static void *finish_nogvl(void *p)
{
    warren_finish(((call_t *) p)->req);
    return NULL;
}

static void *abort_nogvl(void *p)
{
    warren_abort(((call_t *) p)->req);
    return NULL;
}

/* A short 500, whatever the application had set. */
static void *error_nogvl(void *p)
{
    warren_req_t *req = ((call_t *) p)->req;

    if (warren_response_init(req, STATUS_ERROR, 1) < 0
        || warren_response_add_header(req, "Content-Type", strlen("Content-Type"),
                                      TEXT_PLAIN, strlen(TEXT_PLAIN)) < 0
        || warren_write_end(req, ERROR_BODY, strlen(ERROR_BODY)) < 0)
        warren_abort(req);
    else
        warren_finish(req);
    return NULL;
}

static void nogvl(void *(*fn)(void *), call_t *c)
{
    /* No unblocking function: a wait on the channel ends when the router
     * answers or closes it, never half-way. */
    rb_thread_call_without_gvl(fn, c, NULL, NULL);
}

/* ------------------------------------------------------------ Channel */

VALUE wrb_channel_new(warren_ctx_t *ctx)
{
    channel_t *ch;
    VALUE self = TypedData_Make_Struct(rb.cChannel, channel_t, &channel_type, ch);

    ch->ctx = ctx;
    return self;
}

int wrb_channel_failed(VALUE channel)
{
    return ((channel_t *) rb_check_typeddata(channel, &channel_type))->failed;
}

/* channel.accept -> the next Warren::Request, or nil when the router
 * closed the channel (or it failed: logged). */
static VALUE channel_accept(VALUE self)
{
    channel_t *ch = rb_check_typeddata(self, &channel_type);
    call_t c = { .ctx = ch->ctx };
    request_t *r;
    VALUE req;

    if (ch->ctx == NULL)
        return Qnil;
    nogvl(accept_nogvl, &c);
    if (c.req == NULL) {
        if (c.err != 0 && !ch->failed) {
            ch->failed = 1;
            wrb_log("channel: %s", warren_error(ch->ctx));
        }
        return Qnil;
    }
    req = TypedData_Make_Struct(rb.cRequest, request_t, &request_type, r);
    r->req = c.req;
    return req;
}

/* ------------------------------------------------------------ the env */

static VALUE bytes(const char *p, size_t n)
{
    return rb_str_new(p, (long) n);
}

typedef const char *(*getter_t)(const warren_req_t *, size_t *);

static void put_field(VALUE env, const char *key, warren_req_t *req, getter_t get)
{
    size_t n;
    const char *p = get(req, &n);

    rb_hash_aset(env, rb_interned_str_cstr(key), bytes(p, n));
}

/* A field repeated is one list (RFC 9110 5.3): its values joined. */
static void put_header(VALUE env, const char *name, size_t n, const char *v, size_t vn)
{
    char stack[KEY_STACK];
    size_t need = WR_RT_CGI_KEY_SIZE(n);
    char *key = need <= sizeof(stack) ? stack : ruby_xmalloc(need);
    size_t klen = wr_rt_cgi_key(key, name, n);
    VALUE k = rb_interned_str(key, (long) klen);
    VALUE old = rb_hash_lookup2(env, k, Qundef);

    if (key != stack)
        ruby_xfree(key);
    if (old != Qundef) {
        rb_str_cat_cstr(old, wr_rt_field_is(name, n, "Cookie") ? COOKIE_JOIN : HEADER_JOIN);
        rb_str_cat(old, v, (long) vn);
    } else {
        rb_hash_aset(env, k, bytes(v, vn));
    }
}

/* request.env(base) -> a new Hash: base's keys and the request's. */
static VALUE request_env(VALUE self, VALUE base)
{
    warren_req_t *req = live(self)->req;
    VALUE env = rb_hash_dup(base);
    size_t n, count = warren_req_header_count(req);
    const char *server = warren_req_server_name(req, &n);
    VALUE server_name;

    /* No Host (HTTP/1.0): the address the request came in on. */
    if (n == 0)
        server = warren_req_local_addr(req, &n);
    server_name = rb_str_buf_new((long) WR_RT_SERVER_NAME_SIZE(n));
    rb_str_set_len(server_name, (long) wr_rt_server_name(RSTRING_PTR(server_name), server, n));
    rb_hash_aset(env, rb_interned_str_cstr("SERVER_NAME"), server_name);
    put_field(env, "REQUEST_METHOD", req, warren_req_method);
    put_field(env, "PATH_INFO", req, warren_req_path);
    put_field(env, "REQUEST_URI", req, warren_req_target);
    put_field(env, "QUERY_STRING", req, warren_req_query);
    put_field(env, "SERVER_PROTOCOL", req, warren_req_version);
    put_field(env, "SERVER_PORT", req, warren_req_local_port);
    put_field(env, "REMOTE_ADDR", req, warren_req_remote_addr);
    put_field(env, "REMOTE_PORT", req, warren_req_remote_port);
    put_field(env, "rack.url_scheme", req, warren_req_scheme);
    for (size_t i = 0; i < count; i++) {
        const char *name, *value;
        size_t nn, vn;

        if (warren_req_header(req, i, &name, &nn, &value, &vn) == 0)
            put_header(env, name, nn, value, vn);
    }
    return env;
}

VALUE wrb_rack_base_env(const wrb_options_t *o)
{
    VALUE env = rb_hash_new();
    VALUE errors = rb_class_new_instance(0, NULL, rb_path2class("Warren::Errors"));

    rb_hash_aset(env, rb_interned_str_cstr("rack.version"),
                 rb_obj_freeze(rb_ary_new_from_args(2, INT2FIX(1), INT2FIX(3))));
    rb_hash_aset(env, rb_interned_str_cstr("rack.errors"), errors);
    rb_hash_aset(env, rb_interned_str_cstr("rack.multithread"), o->threads > 1 ? Qtrue : Qfalse);
    rb_hash_aset(env, rb_interned_str_cstr("rack.multiprocess"), Qtrue);
    rb_hash_aset(env, rb_interned_str_cstr("rack.run_once"), Qfalse);
    rb_hash_aset(env, rb_interned_str_cstr("rack.hijack?"), Qfalse);
    rb_hash_aset(env, rb_interned_str_cstr("SCRIPT_NAME"), rb_interned_str_cstr(""));
    rb_hash_aset(env, rb_interned_str_cstr("SERVER_SOFTWARE"),
                 rb_interned_str_cstr("Warren/" WR_VERSION));
    rb_gc_register_mark_object(env);
    return rb_obj_freeze(env);
}

/* --------------------------------------------------------- the request */

/* request.read(n) -> up to n bytes of the body, nil at its end. */
static VALUE request_read(VALUE self, VALUE vn)
{
    request_t *r = live(self);
    long n = NUM2LONG(vn);
    call_t c = { .req = r->req };
    VALUE str;

    if (n <= 0)
        return rb_str_new(NULL, 0);
    str = rb_str_buf_new(n);
    c.buf = RSTRING_PTR(str);
    c.n = (size_t) n;
    rb_str_locktmp(str);
    nogvl(read_nogvl, &c);
    rb_str_unlocktmp(str);
    if (c.got < 0)
        chan_failed(c.err, "reading the request body");
    if (c.got == 0)
        return Qnil;
    rb_str_set_len(str, (long) c.got);
    return str;
}

/* request.head(status, [name, value, ...]): the head, sent with the
 * first bytes of the body. */
static VALUE request_head(VALUE self, VALUE vstatus, VALUE flat)
{
    request_t *r = live(self);
    int status = NUM2INT(vstatus);
    long n;

    if (r->head_sent)
        rb_raise(rb_eIOError, "Warren: the response head was sent already");
    if (status < STATUS_MIN || status > STATUS_MAX)
        rb_raise(rb_eArgError, "the response's status %d is not 100..999", status);
    Check_Type(flat, T_ARRAY);
    n = RARRAY_LEN(flat);
    if (warren_response_init(r->req, status, (size_t) n / 2) < 0)
        rb_raise(rb_eArgError, "the response's status %d is refused: %s", status, strerror(errno));
    for (long i = 0; i + 1 < n; i += 2) {
        VALUE name = RARRAY_AREF(flat, i), value = RARRAY_AREF(flat, i + 1);

        StringValue(name);
        StringValue(value);
        if (warren_response_add_header(r->req, RSTRING_PTR(name), (size_t) RSTRING_LEN(name),
                                       RSTRING_PTR(value), (size_t) RSTRING_LEN(value)) < 0)
            rb_raise(rb_eArgError, "the response's header \"%" PRIsVALUE "\" is refused: %s",
                     name, errno == EINVAL ? "not a valid field" : strerror(errno));
    }
    return Qnil;
}

static VALUE write_body(VALUE self, VALUE data, int last)
{
    request_t *r = live(self);
    call_t c = { .req = r->req, .last = last };

    if (r->ended)
        rb_raise(rb_eIOError, "Warren: the response has ended");
    if (!NIL_P(data)) {
        StringValue(data);
        c.data = RSTRING_PTR(data);
        c.n = (size_t) RSTRING_LEN(data);
    }
    if (c.n == 0 && !last)
        return Qnil;
    if (!NIL_P(data))
        rb_str_locktmp(data);
    nogvl(write_nogvl, &c);
    if (!NIL_P(data))
        rb_str_unlocktmp(data);
    r->head_sent = 1;
    r->ended |= last;
    if (c.rc < 0)
        chan_failed(c.err, "write");
    return Qnil;
}

static VALUE request_write(VALUE self, VALUE data)
{
    return write_body(self, data, 0);
}

/* request.write_end(data or nil): the last bytes and the body's end. */
static VALUE request_write_end(VALUE self, VALUE data)
{
    return write_body(self, data, 1);
}

/* Lets go of the libwarren request through fn (finish, abort, or 500). */
static VALUE end_with(VALUE self, void *(*fn)(void *))
{
    request_t *r = rb_check_typeddata(self, &request_type);
    call_t c = { .req = r->req };

    if (r->req == NULL)
        return Qnil;
    r->req = NULL;
    nogvl(fn, &c);
    return Qnil;
}

static VALUE request_finish(VALUE self)
{
    return end_with(self, finish_nogvl);
}

static VALUE request_abort(VALUE self)
{
    return end_with(self, abort_nogvl);
}

static VALUE request_error(VALUE self)
{
    return end_with(self, error_nogvl);
}

static VALUE request_head_sent(VALUE self)
{
    request_t *r = rb_check_typeddata(self, &request_type);

    return r->head_sent ? Qtrue : Qfalse;
}

static VALUE request_method(VALUE self)
{
    size_t n;
    const char *p = warren_req_method(live(self)->req, &n);

    return bytes(p, n);
}

static VALUE request_target(VALUE self)
{
    size_t n;
    const char *p = warren_req_target(live(self)->req, &n);

    return bytes(p, n);
}

/* Warren.log(text): lines to the error log. */
static VALUE warren_log_text(VALUE self, VALUE text)
{
    StringValue(text);
    if (RSTRING_LEN(text) > 0)
        wrb_log_text(RSTRING_PTR(text), (size_t) RSTRING_LEN(text));
    return Qnil;
}

void wrb_rack_init(void)
{
    rb.mWarren = rb_define_module("Warren");
    rb.eClientGone = rb_define_class_under(rb.mWarren, "ClientGone", rb_eStandardError);
    rb.cChannel = rb_define_class_under(rb.mWarren, "Channel", rb_cObject);
    rb_undef_alloc_func(rb.cChannel);
    rb_define_method(rb.cChannel, "accept", channel_accept, 0);
    rb.cRequest = rb_define_class_under(rb.mWarren, "Request", rb_cObject);
    rb_undef_alloc_func(rb.cRequest);
    rb_define_method(rb.cRequest, "env", request_env, 1);
    rb_define_method(rb.cRequest, "read", request_read, 1);
    rb_define_method(rb.cRequest, "head", request_head, 2);
    rb_define_method(rb.cRequest, "write", request_write, 1);
    rb_define_method(rb.cRequest, "write_end", request_write_end, 1);
    rb_define_method(rb.cRequest, "finish", request_finish, 0);
    rb_define_method(rb.cRequest, "abort", request_abort, 0);
    rb_define_method(rb.cRequest, "error", request_error, 0);
    rb_define_method(rb.cRequest, "head_sent?", request_head_sent, 0);
    rb_define_method(rb.cRequest, "http_method", request_method, 0);
    rb_define_method(rb.cRequest, "target", request_target, 0);
    rb_define_module_function(rb.mWarren, "log", warren_log_text, 1);
}
