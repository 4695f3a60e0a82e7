/*
 * warren-ruby: the Ruby runtime, a worker program on libwarren that embeds
 * Debian's libruby and serves one Rack application. Internal header: what
 * the runtime's files share.
 *
 *   main.c     options, the zygote, the worker's life
 *   interp.c   Ruby's start, the Rack glue (glue.rb), the rackup file
 *   rack.c     Warren::Channel and Warren::Request: the env hash, the body
 *              in, the response out, each channel call without the GVL
 *
 * The serving threads are Ruby threads (glue.rb): Ruby code runs one at a
 * time under the GVL, the waits on the channel and the client do not.
 */
#ifndef WR_RUNTIME_RUBY_WRB_H
#define WR_RUNTIME_RUBY_WRB_H

#include <ruby.h>

#include "runtime/common/exit.h"
#include "runtime/common/log.h"
#include "warren.h"

#define WRB_PROGRAM "warren-ruby"

/* WARREN_RUBY_* (main.c). */
typedef struct {
    const char *script;         /* the rackup file */
    const char *hooks;          /* the hooks file, or NULL */
    unsigned    threads;        /* serving threads per worker, 1.. */
} wrb_options_t;

/* interp.c. Ruby's start, then the glue and the application (logged
 * failures: the last line is the cause the control API reports). */
int  wrb_ruby_start(const wrb_options_t *o);
/* Calls Warren.NAME(args...) and logs an exception it raises as one line
 * starting with what. 0, or -1; *exit_status gets a SystemExit's status
 * (else -1) when not NULL. */
int  wrb_call(const char *what, int *exit_status, const char *name, int argc, const VALUE *argv);
/* The exception just rescued, as "Class: message" on one line. */
VALUE wrb_error_line(VALUE error);

/* rack.c: defines Warren::Channel, Warren::Request, Warren.log. */
void  wrb_rack_init(void);
/* The keys every env has ("rack.version" ...), frozen. */
VALUE wrb_rack_base_env(const wrb_options_t *o);
/* ctx as a Warren::Channel; wrb_channel_failed says whether accept ended
 * on an error rather than the router's close. */
VALUE wrb_channel_new(warren_ctx_t *ctx);
int   wrb_channel_failed(VALUE channel);

#define wrb_log      wr_rt_log
#define wrb_log_text wr_rt_log_text

#endif
