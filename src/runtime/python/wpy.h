/*
 * warren-python internals: the parts of the Python WSGI runtime
 * (src/runtime/python) and what they offer each other. The program's
 * environment, start order and exit statuses are described in main.c.
 *
 * Threading: with threads 1 the runtime serves one request at a time on
 * the main thread; with threads N > 1 it serves up to N at once, one per
 * serving thread it starts in the worker (serve.c). Either way a thread
 * holds the GIL whenever it touches Python and releases it around every
 * call that may block on the channel or on a file, so the other serving
 * threads (and threads the application started) run meanwhile.
 */
#ifndef WPY_H
#define WPY_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdbool.h>
#include <stddef.h>

#include "runtime/common/exit.h"
#include "runtime/common/log.h"
#include "warren.h"

#define WPY_PROGRAM            "warren-python"
/* Process names (comm, at most 15 bytes) of a zygote and of its workers. */
#define WPY_ZYGOTE_COMM        "warren-zygote"
#define WPY_WORKER_COMM        "warren-python"

/* The environment a worker is started with, besides libwarren's. */
#define WPY_ENV_MODULE         "WARREN_PYTHON_MODULE"
#define WPY_ENV_CALLABLE       "WARREN_PYTHON_CALLABLE"
#define WPY_ENV_PATH           "WARREN_PYTHON_PATH"
#define WPY_ENV_HOME           "WARREN_PYTHON_HOME"
#define WPY_ENV_FACTORY        "WARREN_PYTHON_FACTORY"
#define WPY_ENV_PREFIX         "WARREN_PYTHON_PREFIX"
#define WPY_ENV_TARGETS        "WARREN_PYTHON_TARGETS"
#define WPY_ENV_ZYGOTE_FD      "WARREN_PYTHON_ZYGOTE_FD"
#define WPY_ENV_THREADS        "WARREN_PYTHON_THREADS"
#define WPY_ENV_STACK_SIZE     "WARREN_PYTHON_THREAD_STACK_SIZE"
#define WPY_DEFAULT_CALLABLE   "application"

enum {
    /* Bytes wsgi.input reads from the channel at a time: one channel
     * message, so a read never waits for more than the router sent. */
    WPY_INPUT_CHUNK      = 64 * 1024,
    /* Bytes a wsgi.file_wrapper file is sent in, when streamed by fd. */
    WPY_FILE_CHUNK       = 64 * 1024,
    WPY_FILE_BLOCK       = 8192,   /* FileWrapper's default block_size */
    WPY_LINE_MAX         = 1024,   /* one log line we compose ourselves */
    WPY_ERRORS_LINE_MAX  = 8192,   /* wsgi.errors: longer lines are cut */
    WPY_STATUS_MIN       = 100,
    WPY_STATUS_MAX       = 999,
    WPY_STATUS_DIGITS    = 3,
    WPY_STATUS_ERROR     = 500,
};

/* The application's options, from the environment (options.c). */
typedef struct {
    const char *app_name;   /* WARREN_APP_NAME, for logs */
    const char *module;
    const char *callable;   /* attribute path in the module: "app" */
    const char *path;       /* colon list prepended to sys.path, or NULL */
    const char *home;       /* a venv or a Python prefix, or NULL */
    bool        factory;
    const char *prefix;     /* SCRIPT_NAME: "" or "/x" (no trailing /) */
    size_t      prefix_len;
    const char *targets;    /* JSON object of "targets", or NULL */
    unsigned    threads;    /* requests served at once, 1..WARREN_MAX_THREADS */
    size_t      stack_size; /* of the serving threads; 0: the default */
} wpy_options_t;

/* One callable the runtime serves: the application's own (name NULL), or
 * one of its "targets" (the router names it in each request). */
typedef struct {
    char       *name;
    char       *module;
    char       *callable;
    bool        factory;
    char       *prefix;     /* "" or "/x" */
    size_t      prefix_len;
    PyObject   *app;        /* the loaded callable */
} wpy_target_t;

typedef struct {
    wpy_target_t *v;
    size_t        n;
} wpy_targets_t;

/* options.c: reads and checks the environment; on failure logs the cause
 * and returns -1. */
int  wpy_options_read(wpy_options_t *o);

/* Lines on stderr, each starting "warren-python[app:pid]: "
 * (src/runtime/common/log.c). */
#define wpy_log_init(app_name) wr_rt_log_init(WPY_PROGRAM, (app_name))
#define wpy_log                wr_rt_log
#define wpy_log_text           wr_rt_log_text
/* log.c: */
/* Logs the pending Python exception's traceback under a first line
 * `what`, and clears it. */
void wpy_log_exception(const char *what);
/* "TypeName: message" of an exception instance, on one line. */
void wpy_exception_line(PyObject *exc, char *buf, size_t size);

/* interp.c: starts the interpreter; loads the application callable (a new
 * reference) or logs a one-line cause and returns NULL. */
int       wpy_python_start(const wpy_options_t *o);
PyObject *wpy_app_load(const wpy_target_t *t);

/* targets.c: loads every target (or the one application): 0, or -1 with
 * the cause logged. wpy_target_pick: the target a request is for, NULL
 * when the router named one the runtime does not have. */
int           wpy_targets_load(const wpy_options_t *o, wpy_targets_t *ts);
wpy_target_t *wpy_target_pick(wpy_targets_t *ts, warren_req_t *req);
void          wpy_targets_free(wpy_targets_t *ts);

/* zygote.c: load once, fork workers (see there). Returns in each forked
 * worker with its channel fd set in WARREN_CHANNEL_FD (1), or 0 when the
 * prototype closed the zygote's socket (the zygote ends), -1 on failure. */
int  wpy_zygote_run(int fd);

/* ---------------------------------------------------------- one request */

/*
 * The request in progress as Python sees it: start_response and write are
 * methods of this object. `req` is NULL once the request is over, so an
 * application that keeps them around gets an exception, not a crash.
 */
typedef struct {
    PyObject_HEAD
    warren_ctx_t *ctx;
    warren_req_t *req;
    PyObject     *errors;      /* the serving thread's wsgi.errors (borrowed) */
    bool          started;     /* start_response succeeded: head is set */
    bool          head_sent;   /* body bytes went out (the head before) */
    bool          chan_failed; /* a channel call failed: errno saved */
    int           chan_errno;
} wpy_exchange_t;

/* exchange.c */
extern PyTypeObject wpy_exchange_type;
wpy_exchange_t *wpy_exchange_new(warren_ctx_t *ctx, warren_req_t *req,
                                 PyObject *errors);
/* Sends the body of the iterable the application returned: 0, or -1 with
 * a Python exception set. */
int  wpy_exchange_send_result(wpy_exchange_t *ex, PyObject *result);
/* Sends body bytes (the head first if needed), GIL released: 0, or -1
 * with OSError set (and ex->chan_failed). */
int  wpy_exchange_write(wpy_exchange_t *ex, const void *p, size_t n);
/* Raises when the body may not start yet (no start_response). */
int  wpy_exchange_check_started(wpy_exchange_t *ex);
/* Ends the request: finished when rc is 0, else the pending exception is
 * logged and the client gets a 500 (head not sent yet) or a cut. */
void wpy_exchange_end(wpy_exchange_t *ex, int rc);

/* input.c: wsgi.input, streaming from warren_read. */
extern PyTypeObject wpy_input_type;
PyObject *wpy_input_new(wpy_exchange_t *ex);
void      wpy_input_detach(PyObject *input);

/* errors.c: wsgi.errors, lines to stderr with the log prefix; one per
 * serving thread, so lines of concurrent requests never mix. */
extern PyTypeObject wpy_errors_type;
PyObject *wpy_errors_new(void);
void      wpy_errors_flush(PyObject *errors);

/* filewrap.c: wsgi.file_wrapper, and sending one through a descriptor.
 * wpy_filewrap_send returns 1 when it sent the file, 0 when the file has
 * no usable descriptor (iterate it instead), -1 with an exception. */
extern PyTypeObject wpy_filewrap_type;
int  wpy_filewrap_send(wpy_exchange_t *ex, PyObject *wrapper);

/* environ.c */
int       wpy_environ_init(const wpy_options_t *o);
PyObject *wpy_environ_new(warren_req_t *req, PyObject *input,
                          const wpy_target_t *t, PyObject *errors);

/* serve.c: serves requests (in o->threads threads) until the router
 * closes the channel: 0, or -1 when the channel failed (logged). Called
 * and returns with the GIL held. */
int  wpy_serve(warren_ctx_t *ctx, wpy_targets_t *ts, const wpy_options_t *o);

#endif
