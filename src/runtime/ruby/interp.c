/*
 * warren-ruby: the embedded interpreter. Ruby starts as `ruby -e0` would
 * (so rubygems is loaded and Debian's gems are found), then the glue
 * (glue.rb, carried in the program) and, through it, the hooks file, Rack
 * and the rackup file, once, in the prototype.
 */
#include <string.h>

#include <ruby.h>

#include "runtime/ruby/wrb.h"

/* The glue's source (build/gen/glue_rb.c, made from glue.rb). */
extern const char wrb_glue_rb[];

#define GLUE_NAME "(warren-ruby glue.rb)"

/* Ruby's own argument vector: nothing to run but what we evaluate. */
static char arg0[] = WRB_PROGRAM, arg1[] = "-e0";

static VALUE message_of(VALUE error)
{
    return rb_funcall(error, rb_intern("message"), 0);
}

VALUE wrb_error_line(VALUE error)
{
    int state = 0;
    VALUE msg = rb_protect(message_of, error, &state);
    VALUE line;

    if (state != 0 || !RB_TYPE_P(msg, T_STRING)) {
        rb_set_errinfo(Qnil);
        msg = rb_str_new_cstr("(no message)");
    }
    line = rb_sprintf("%" PRIsVALUE ": %" PRIsVALUE, rb_class_name(rb_obj_class(error)), msg);
    /* One line, so the last line a failed worker leaves (what the
     * control API reports) holds the whole cause. */
    for (char *p = RSTRING_PTR(line), *end = p + RSTRING_LEN(line); p < end; p++)
        if (*p == '\n')
            *p = ' ';
    return line;
}

typedef struct {
    const char *name;
    int argc;
    const VALUE *argv;
} call_t;

static VALUE call_body(VALUE arg)
{
    const call_t *c = (const call_t *) arg;

    return rb_funcallv(rb_path2class("Warren"), rb_intern(c->name), c->argc, c->argv);
}

int wrb_call(const char *what, int *exit_status, const char *name, int argc, const VALUE *argv)
{
    call_t c = { name, argc, argv };
    int state = 0;
    VALUE error, line;

    if (exit_status != NULL)
        *exit_status = -1;
    rb_protect(call_body, (VALUE) &c, &state);
    if (state == 0)
        return 0;
    error = rb_errinfo();
    rb_set_errinfo(Qnil);
    if (rb_obj_is_kind_of(error, rb_eSystemExit)) {
        if (exit_status != NULL)
            *exit_status = NUM2INT(rb_funcall(error, rb_intern("status"), 0));
        return -1;
    }
    line = wrb_error_line(error);
    wrb_log("%s: %s", what, StringValueCStr(line));
    return -1;
}

/* The glue, under a name its backtraces show. */
static VALUE eval_glue(VALUE unused)
{
    VALUE args[] = {
        rb_str_new_cstr(wrb_glue_rb),
        rb_const_get(rb_cObject, rb_intern("TOPLEVEL_BINDING")),
        rb_str_new_cstr(GLUE_NAME),
        INT2FIX(1),
    };

    return rb_funcallv(rb_mKernel, rb_intern("eval"), 4, args);
}

int wrb_ruby_start(const wrb_options_t *o)
{
    char *args[] = { arg0, arg1, NULL };
    VALUE load_args[2];
    int state = 0;

    if (ruby_setup() != 0) {
        wrb_log("Ruby did not start");
        return -1;
    }
    ruby_options(2, args);
    ruby_script(WRB_PROGRAM);
    wrb_rack_init();
    rb_protect(eval_glue, Qnil, &state);
    if (state != 0) {
        VALUE line = wrb_error_line(rb_errinfo());
        rb_set_errinfo(Qnil);
        wrb_log("the Rack glue did not load: %s", StringValueCStr(line));
        return -1;
    }
    load_args[0] = rb_str_new_cstr(o->script);
    load_args[1] = o->hooks ? rb_str_new_cstr(o->hooks) : Qnil;
    return wrb_call("script", NULL, "load", 2, load_args);
}
