/*
 * warren.h - libwarren, the application side of Warren.
 *
 * warrend runs every worker of an application with a channel to its router:
 * a connected SOCK_SEQPACKET socket whose descriptor number is in the
 * environment. A worker built on libwarren takes requests from that channel,
 * reads their bodies, and sends responses back, one request at a time (or
 * several at once, in threads: warren_init_threads):
 *
 *     warren_ctx_t *ctx = warren_init();
 *     warren_req_t *req;
 *     while ((req = warren_accept(ctx)) != NULL) {
 *         warren_response_init(req, 200, 1);
 *         warren_response_add_header(req, "Content-Type", 12, "text/plain", 10);
 *         warren_write(req, "Hello\n", 6);
 *         warren_finish(req);
 *     }
 *     warren_done(ctx);
 *
 * or, the same loop, warren_run(ctx, handler, data).
 *
 * Environment a worker is started with:
 *   WARREN_CHANNEL_FD  decimal number of the channel descriptor (warren_init)
 *   WARREN_APP_NAME    the application's name in the configuration
 *   WARREN_WORKER_ID   this worker's number, unique within the application
 *                      generation (for logs; not a pid)
 *
 * Errors: calls that can fail return NULL or -1 and set errno; the text of
 * the last failure on a context is warren_error(ctx). The errno values:
 *   ECONNABORTED  the router aborted this request (the client went away, or
 *                 a timeout); the request is over, only warren_finish()
 *                 remains to be called
 *   ECONNRESET    the router closed the channel: the worker should exit
 *   EPROTO        the router sent a malformed message: the context is unusable
 *   EINVAL        a bad argument (status, header name or value, call order)
 *   EMSGSIZE      the response head does not fit one channel message
 *   ENOMEM        out of memory
 *   others        from the system calls on the channel (EPIPE, EBADF, ...)
 * After EPROTO, ECONNRESET or a system call error the context is unusable:
 * every later call fails the same way, and warren_accept() returns NULL.
 * ECONNABORTED ends one request; EINVAL, EMSGSIZE and ENOMEM only the call.
 *
 * Memory: the library owns every warren_ctx_t and warren_req_t, and every
 * string it returns. A request's strings stay valid until warren_finish()
 * or warren_abort() on it; copy what you need longer. Strings are
 * NUL-terminated and also come with their length (never containing NUL).
 * Buffers are reused from one request to the next: steady-state requests
 * allocate nothing.
 *
 * Threads. A context made by warren_init(), warren_init_fd() or
 * warren_init_*threads() with nthreads 1 and its requests must be used by
 * one thread at a time (serialize calls yourself if several threads share
 * one); it takes no lock at all. A context made with nthreads > 1 is
 * thread-safe: up to nthreads threads may each call warren_accept() and
 * then serve the request it returned (read its body, send its response,
 * finish it) at the same time as the others, or each run warren_run(). The
 * router sends such a worker up to nthreads requests at once (more may
 * wait, queued), as streams of the one channel. The library reads the
 * channel in one thread at a time and hands each message to the request
 * it belongs to; a thread blocked in a call is woken only for its own
 * request (or a new request, for warren_accept). Rules there:
 *   - a request belongs to the thread that accepted it: only one thread
 *     at a time may call functions on one warren_req_t (hand it over to
 *     another thread if you like, but do not share it). One exception,
 *     a tunnel (a request answered 101, see warren_req_upgrade) in this
 *     mode: one thread may wait in warren_read() on it while another is
 *     in warren_write(), since each waits for its own condition; ending
 *     it (warren_finish, warren_abort) must wait until neither is in a
 *     call;
 *   - warren_error() tells each thread the text of its own last failure
 *     (thread-local), or the cause that made the context unusable;
 *   - warren_done() only once every other thread is out of its calls on
 *     the context and holds none of its requests (join them first).
 * Each call below says what it is safe with. Distinct contexts are
 * independent: the library has no global state (beyond that thread-local
 * error text). After fork(), use the context in one process only; a worker
 * forked from a prototype calls warren_init() itself (and starts its
 * threads after the fork).
 *
 * Streams. A context has room for 64 streams (WARREN_MAX_THREADS) open on
 * the wire at once, as the channel allows; the router never opens more. A
 * stream counts from its request head until both sides ended it on the
 * wire, not until the application lets go of the request: a request the
 * router aborted (its client left), or whose body and response both went
 * whole, that the application has not finished yet holds no stream.
 * So however slowly threads notice aborts, the router can always send new
 * requests. Such a request still holds its memory (up to about 260 KiB
 * with a request body buffered) until warren_finish() or warren_abort():
 * every request accepted must be ended, or the memory is only given back
 * by warren_done().
 *
 * Signals: blocking calls resume after a signal handler returns (EINTR is
 * retried); the channel never raises SIGPIPE.
 */
#ifndef WARREN_H
#define WARREN_H

#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WARREN_API __attribute__((visibility("default")))

#define WARREN_ENV_CHANNEL_FD  "WARREN_CHANNEL_FD"
#define WARREN_ENV_APP_NAME    "WARREN_APP_NAME"
#define WARREN_ENV_WORKER_ID   "WARREN_WORKER_ID"

typedef struct warren_ctx warren_ctx_t;   /* one worker's channel */
typedef struct warren_req warren_req_t;   /* one request in progress */

/* ------------------------------------------------------------- lifecycle */

/*
 * Connects to the router through the descriptor in WARREN_CHANNEL_FD and
 * says hello (the worker is ready). Call it once the application is loaded.
 * Returns a new context, or NULL with errno:
 *   ENOENT       WARREN_CHANNEL_FD is not set (not started by warrend)
 *   EINVAL       WARREN_CHANNEL_FD is not a descriptor number
 *   EBADF        the descriptor is not open
 *   ENOTSOCK     the descriptor is not a socket
 *   EPROTOTYPE   the socket is not SOCK_SEQPACKET
 *   ENOMEM, or   an error sending the hello (EPIPE: the router is gone)
 * The descriptor is made close-on-exec (a program the application runs must
 * not hold the channel open) and blocking.
 * Thread-safety: call it once, before the threads that use the context
 * start (it reads the environment).
 */
WARREN_API warren_ctx_t *warren_init(void);

/* The same, with the channel descriptor given (for runtimes that get it in
 * another way). The context owns fd from then on, also on failure. */
WARREN_API warren_ctx_t *warren_init_fd(int fd);

/*
 * The same, for a worker that serves up to nthreads requests at once
 * (1..WARREN_MAX_THREADS; EINVAL otherwise): the router may hand it that
 * many requests before the first is finished, and warren_accept() returns
 * each. With nthreads > 1 the context is thread-safe (see Threads above);
 * nthreads 1 is warren_init(), and costs no locking.
 */
#define WARREN_MAX_THREADS 64
WARREN_API warren_ctx_t *warren_init_threads(unsigned nthreads);
WARREN_API warren_ctx_t *warren_init_fd_threads(int fd, unsigned nthreads);

/*
 * The same, for a worker that serves nthreads requests at once and, beside
 * them, up to `tunnels` upgraded requests (answered 101, see
 * warren_req_upgrade), each in a thread of its own: a tunnel does not keep
 * a serving thread, so while it is open the router goes on sending
 * nthreads requests at once, counts the worker busy only by those, and
 * starts more workers (dynamic "processes") only when they are.
 * nthreads + tunnels <= WARREN_MAX_THREADS (EINVAL otherwise). The context
 * is thread-safe when nthreads + tunnels > 1. Tunnels past that room count
 * as requests again. tunnels 0 is warren_init_threads(nthreads).
 */
WARREN_API warren_ctx_t *warren_init_tunnels(unsigned nthreads, unsigned tunnels);
WARREN_API warren_ctx_t *warren_init_fd_tunnels(int fd, unsigned nthreads, unsigned tunnels);

/* Closes the channel and frees the context and every request of it, also
 * those not finished. NULL is allowed. Thread-safety: never while another
 * thread is in a call on ctx or still uses one of its requests. */
WARREN_API void warren_done(warren_ctx_t *ctx);

/* Text of the last failure on ctx ("" when none; never NULL). Owned by ctx,
 * valid until the next call on it. Thread-safe: with nthreads > 1, each
 * thread gets the text of its own last failure (or, when it had none, the
 * cause that made the context unusable), valid until its next call. */
WARREN_API const char *warren_error(const warren_ctx_t *ctx);

/* -------------------------------------------------------------- requests */

/*
 * Blocks until the router sends the next request and returns it; the
 * request head (below) is complete, the body is read with warren_read().
 * Returns NULL when there will be no more: errno 0 when the router closed
 * the channel (the normal way to tell a worker to exit), else the error.
 * Every request returned must be ended with warren_finish() or
 * warren_abort(). Thread-safe with nthreads > 1: each waiting thread gets
 * its own request, the earliest arrived first; when the channel ends,
 * every thread blocked here returns NULL.
 */
WARREN_API warren_req_t *warren_accept(warren_ctx_t *ctx);

/*
 * The request head. Each getter returns a NUL-terminated string owned by
 * req, and stores its length in *len when len is not NULL. Never NULL: a
 * part that is absent is "". The getters take no lock (the head does not
 * change once accepted): call them from the thread holding req, any time
 * before it is ended.
 */
WARREN_API const char *warren_req_method(const warren_req_t *req, size_t *len);
/* The request target as the client sent it: "/a%20b?x=1". */
WARREN_API const char *warren_req_target(const warren_req_t *req, size_t *len);
/* The path, percent-decoded and normalized (no "..", no "//"): "/a b". */
WARREN_API const char *warren_req_path(const warren_req_t *req, size_t *len);
/* The query string without "?", raw: "x=1". */
WARREN_API const char *warren_req_query(const warren_req_t *req, size_t *len);
/* "HTTP/1.1" */
WARREN_API const char *warren_req_version(const warren_req_t *req, size_t *len);
/* The client's address as text ("192.0.2.1", "2001:db8::1"), and port. */
WARREN_API const char *warren_req_remote_addr(const warren_req_t *req, size_t *len);
WARREN_API const char *warren_req_remote_port(const warren_req_t *req, size_t *len);
/* The address and port the request came in on (the listener's side). */
WARREN_API const char *warren_req_local_addr(const warren_req_t *req, size_t *len);
WARREN_API const char *warren_req_local_port(const warren_req_t *req, size_t *len);
/* The host the client asked for (Host without the port). */
WARREN_API const char *warren_req_server_name(const warren_req_t *req, size_t *len);
/* "http" or "https" */
WARREN_API const char *warren_req_scheme(const warren_req_t *req, size_t *len);
/* The key of the application's "targets" this request was passed to, or ""
 * when the application has no targets. */
WARREN_API const char *warren_req_target_name(const warren_req_t *req, size_t *len);

/* Number of request header fields, in the order and spelling sent. */
WARREN_API size_t warren_req_header_count(const warren_req_t *req);

/*
 * Header field i (0 <= i < count): stores name, value and their lengths in
 * the pointers that are not NULL. Returns 0, or -1 (EINVAL) when i is out
 * of range.
 */
WARREN_API int warren_req_header(const warren_req_t *req, size_t i,
                                 const char **name, size_t *nlen,
                                 const char **value, size_t *vlen);

/* The value of the first field named name (compared case-insensitively), or
 * NULL when there is none. Stores its length in *vlen when not NULL. */
WARREN_API const char *warren_req_header_get(const warren_req_t *req,
                                             const char *name, size_t *vlen);

/*
 * Reads up to n bytes of the request body into buf, blocking until some
 * arrive. Returns the number of bytes read, 0 at the end of the body, or -1
 * with errno. The router sends more as the application reads (the library
 * grants it credit), so a large upload never sits whole in memory: read
 * the body, or finish without it (the router is then told to stop).
 * Thread-safe with nthreads > 1 (for the thread holding req): while it
 * waits, other threads' requests go on.
 */
WARREN_API ssize_t warren_read(warren_req_t *req, void *buf, size_t n);

/*
 * Upgrades (WebSocket and the like). 1 when the client asked to switch
 * protocols: an HTTP/1.1 request without a body, with "Connection:
 * upgrade" and an Upgrade field (read it with warren_req_header_get). Its
 * body is empty (warren_read returns 0) unless the response's status is
 * 101: once a 101 head is sent, the request is a tunnel to the client.
 * warren_read() then returns the bytes the client sends after its head,
 * as they come, and warren_write() sends bytes to it as they are, without
 * HTTP framing, both with the usual flow control; the Upgrade field and
 * any other the new protocol needs (Sec-WebSocket-Accept ...) are the
 * application's to add, the router adds "Connection: Upgrade". The tunnel
 * lasts until either side ends it: warren_finish() (or warren_abort())
 * closes the client's connection; a client that leaves aborts the request
 * (ECONNABORTED). A 101 to any other request, or another 1xx status, is
 * refused by warren_response_init() (EINVAL). 0 for an ordinary request.
 */
WARREN_API int warren_req_upgrade(const warren_req_t *req);

/*
 * settings.http.websocket as the router has it, for a program that speaks
 * WebSocket on the tunnel: the router itself closes a tunnel whose client
 * sent nothing for read_timeout seconds (0: never), so the program should
 * ping at least every keepalive_interval seconds (0: no pings), and refuse
 * frames over max_frame_size bytes. Returns 0, or -1 with EINVAL when req
 * is not an upgrade request.
 */
typedef struct {
    unsigned read_timeout;
    unsigned keepalive_interval;
    size_t   max_frame_size;
} warren_websocket_t;

WARREN_API int warren_req_websocket(const warren_req_t *req, warren_websocket_t *out);

/* ------------------------------------------------------------- responses */

/* Every call of this section is thread-safe with nthreads > 1, for the
 * thread holding req: other threads' requests go on meanwhile, and each
 * message leaves whole (a response head never mixes with another's). */

/*
 * Starts (or restarts) the response head: status is 100..999, hint the
 * number of header fields you expect to add (to size the buffer once; 0 is
 * fine). Only before the head is sent. Returns 0 or -1 (EINVAL).
 */
WARREN_API int warren_response_init(warren_req_t *req, int status,
                                    size_t nheaders_hint);

/*
 * Adds a response header field. The name must be an HTTP token, the value
 * must not contain CR, LF or NUL (EINVAL otherwise); both are copied.
 * Content-Length, Transfer-Encoding and Connection are the router's to
 * decide: it frames the body itself. Returns 0, or -1 with EINVAL (bad
 * field, head already sent, or no warren_response_init() yet) or EMSGSIZE
 * (the head would not fit one channel message, about 64 KiB).
 */
WARREN_API int warren_response_add_header(warren_req_t *req,
                                          const char *name, size_t nlen,
                                          const char *value, size_t vlen);

/*
 * Sends the response head (status 200 with no fields when
 * warren_response_init() was not called). warren_write() and
 * warren_finish() do it themselves when needed; call it to send a head
 * before a body that takes time to produce. Returns 0 or -1.
 */
WARREN_API int warren_response_send_head(warren_req_t *req);

/*
 * Sends n bytes of response body, sending the head first if needed. Blocks
 * while the router has not taken the previous bytes (its credit is used up),
 * so a slow client slows the application instead of filling memory.
 * Returns 0 when all n bytes are sent, -1 with errno otherwise.
 */
WARREN_API int warren_write(warren_req_t *req, const void *buf, size_t n);

/*
 * Sends the last n bytes of the response body (n may be 0) and ends the
 * response, in as few channel messages as fit: with a head not sent yet
 * and a small body, head, body and end travel as one. Blocks like
 * warren_write(). Nothing more may be written after; warren_finish()
 * (or warren_run's loop) must still be called to free req. Returns 0 or
 * -1 with errno.
 */
WARREN_API int warren_write_end(warren_req_t *req, const void *buf, size_t n);

/*
 * Ends the response (sending the head first if needed) and frees req, in
 * every case: req must not be used after. Returns 0 when the whole response
 * went to the router, -1 with errno when it did not (for instance the
 * request was aborted: ECONNABORTED).
 */
WARREN_API int warren_finish(warren_req_t *req);

/*
 * Ends the request abnormally and frees req: the router drops what was sent
 * of the response (if the head went out, the client's connection is cut;
 * else it answers an error). NULL is allowed.
 */
WARREN_API void warren_abort(warren_req_t *req);

/* ------------------------------------------------------------- main loop */

/*
 * Handles one request. Return 0 when the response is complete, -1 when it
 * failed. Do not call warren_finish() or warren_abort() on req: the loop
 * does.
 */
typedef int (*warren_handler_t)(warren_req_t *req, void *data);

/*
 * Accepts requests and passes each to handler(req, data) until the router
 * closes the channel. With nthreads > 1, each thread may run it on the
 * same context (handler then runs in several threads at once). After a handler returns 0 the response is finished;
 * after -1 it is answered 500 when its head was not sent yet, else aborted.
 * Returns 0 when the router closed the channel, -1 with errno on an error
 * of the channel (then the worker should exit too).
 */
WARREN_API int warren_run(warren_ctx_t *ctx, warren_handler_t handler,
                          void *data);


/* -------------------------------------------------------- event loops */

/*
 * For a worker that serves several requests from one thread, in its own
 * event loop (the Python ASGI runtime does): instead of blocking, it asks
 * how far each call can go without waiting for the router.
 *
 *   - watch warren_fd(ctx) for input; when it is readable, warren_poll(ctx)
 *     takes every message waiting and applies it (new requests, body
 *     bytes, credit, aborts);
 *   - warren_accept(ctx) returns at once while warren_pending(ctx) > 0;
 *   - warren_read(req) returns at once when warren_req_events(req) has
 *     WARREN_REQ_READABLE;
 *   - warren_write(req, p, n) and warren_write_end(req, p, n) return at
 *     once when n <= warren_write_room(req) (n == 0 always does);
 *   - warren_response_*(), warren_finish() and warren_abort() never wait
 *     for the router.
 * Every call may still wait for room in the channel's socket buffer, which
 * the router empties as fast as it can.
 *
 * warren_finish() may take messages off the channel itself (to see
 * whether a body left unread ended): after it, check the requests and
 * warren_pending() again, as after warren_poll(), since the descriptor may
 * no longer be readable.
 *
 * An event loop says how many requests it takes at once with
 * warren_init_threads(n), but makes every call on the context from its
 * one thread: these calls are not for a context that threads share.
 */

/* The channel's descriptor, to watch for input. Never read or write it. */
WARREN_API int warren_fd(const warren_ctx_t *ctx);

/*
 * Takes and applies every message waiting on the channel, without
 * blocking. Returns how many it took (0: none was waiting), or -1 with
 * errno: ECONNRESET when the router closed the channel (the worker should
 * end: warren_accept() now returns NULL with errno 0), else as for the
 * calls above, after which the context is unusable.
 */
WARREN_API int warren_poll(warren_ctx_t *ctx);

/* Requests that arrived and that warren_accept() has not returned yet. */
WARREN_API size_t warren_pending(const warren_ctx_t *ctx);

/* warren_read() returns without waiting: body bytes, 0 (the end) or -1. */
#define WARREN_REQ_READABLE  0x1u
/* The whole body arrived and was read: warren_read() returns 0. */
#define WARREN_REQ_BODY_END  0x2u
/* The router aborted the request (its client left, a timeout) or the
 * channel is gone: only warren_finish() or warren_abort() remain. */
#define WARREN_REQ_ABORTED   0x4u

/* The WARREN_REQ_* flags that hold for req now (req accepted, not ended). */
WARREN_API unsigned warren_req_events(const warren_req_t *req);

/* Body bytes warren_write() or warren_write_end() can send now without
 * waiting for the router's credit (0 when the request is aborted). */
WARREN_API size_t warren_write_room(const warren_req_t *req);

#ifdef __cplusplus
}
#endif

#endif
