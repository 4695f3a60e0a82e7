/*
 * warren-python's ASGI 3.0 side (src/runtime/python/asgi*.c and the driver
 * asgi_driver.py, compiled into the program). The WSGI parts (wpy.h) load
 * the application as always; then, in the zygote, asgi.c decides whether
 * it speaks ASGI ("protocol", or detected as Unit does), and each worker
 * forked from it runs one asyncio loop that serves up to
 * WPY_ASGI_STREAMS requests at once over the channel, with lifespan
 * startup before its HELLO and shutdown after the router closed it.
 *
 * Who does what:
 *   asgi.c         the choice, loading the driver, and a worker's life
 *   asgi_chan.c    _warren_asgi: the channel and its requests for the
 *                  driver (libwarren's event-loop calls, never blocking)
 *   asgi_scope.c   the HTTP scope of a request
 *   asgi_driver.py the asyncio side: lifespan, receive/send, errors
 */
#ifndef WPY_ASGI_H
#define WPY_ASGI_H

#include "lib/proto.h"
#include "runtime/python/wpy.h"

/* "asgi" or "wsgi" (the app's "protocol"); unset: detected. */
#define WPY_ENV_PROTOCOL     "WARREN_PYTHON_PROTOCOL"
#define WPY_PROTOCOL_ASGI    "asgi"
#define WPY_PROTOCOL_WSGI    "wsgi"

/* The names the driver and its C part have in sys.modules. */
#define WPY_ASGI_MODULE      "_warren_asgi"
#define WPY_ASGI_DRIVER      "warren_asgi"
/* Its file name in tracebacks: angle brackets keep linecache from
 * looking for a file of that name. */
#define WPY_ASGI_DRIVER_FILE "<warren-python asgi_driver.py>"

enum {
    /* Requests one worker's loop serves at once: all the channel allows
     * (the router sends that many when it can, see HELLO). */
    WPY_ASGI_STREAMS     = WARREN_MAX_THREADS,
    /* At most this many body bytes per http.request event: one window,
     * all the router can have sent ahead. */
    WPY_ASGI_READ_MAX    = WR_APP_WINDOW_INIT,
};

/* The driver's source (build/gen/asgi_driver_py.c, made from
 * asgi_driver.py by scripts/embed_text.py). */
extern const char wpy_asgi_driver_py[];

/* asgi.c: 1 when the loaded targets are ASGI applications, 0 when WSGI,
 * -1 (the cause logged as the last line) when they cannot be served. */
int wpy_asgi_choose(wpy_targets_t *ts);
/* asgi.c: a worker's whole life as an ASGI server, Python finalized at
 * the end; returns the exit status (WPY_EXIT_*). */
int wpy_asgi_main(wpy_targets_t *ts);

/* asgi_chan.c: the _warren_asgi module (a new reference), NULL with an
 * exception. Requests pick their target in ts, which must outlive it. */
PyObject *wpy_asgi_module_new(wpy_targets_t *ts);

/* asgi_scope.c: the HTTP scope of req served by t (a new dict, without
 * "state": the driver adds it), or NULL with an exception. */
PyObject *wpy_asgi_scope(warren_req_t *req, const wpy_target_t *t);

#endif
