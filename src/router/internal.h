/* The router's own context: compiled configurations, threads, connections. */
#ifndef WR_ROUTER_INTERNAL_H
#define WR_ROUTER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

#include "conf/conf.h"
#include "core/addr.h"
#include "core/buf.h"
#include "core/ev.h"
#include "lib/proto.h"
#include "core/ipc.h"
#include "route/route.h"
#include "router/access_log.h"
#include "router/router.h"
#include "router/telemetry.h"
#include "router/upool.h"
#include "router/upstream.h"

#define WR_ROUTER_REASON_MAX   512
#define WR_ROUTER_MAX_THREADS  1024     /* settings.listen_threads' maximum */
#define WR_REAP_MS             1000     /* how often retiring threads are joined */
#define WR_CONN_READ_MIN       1024     /* own buffer of a waiting partial request */
#define WR_CONN_BODY_READ      32768    /* room for one read of a body streaming on */
#define WR_THREAD_RBUF         65536    /* a thread's read buffer */
#define WR_LINGER_MS           2000     /* discard what a client still sends after an error */
#define WR_TLS_FILE_CHUNK      16384    /* file bytes read per TLS write (no sendfile):
                                           one record, which is what a write sends */

typedef struct wr_router wr_router_t;
typedef struct wr_thread wr_thread_t;

#define WR_APP_QUEUE_MAX       1024     /* requests waiting for a worker, per app */
#define WR_WORKER_SWEEP_MS     500      /* idle workers checked for a hang-up */
/* How long a connection to an HTTP worker or a "proxy" upstream is kept
 * unused (give or take a sweep): under load it serves the next request
 * within milliseconds; kept longer, it would race the server's own idle
 * timeout (Node: 5 s, gunicorn: 2 s) for requests that cannot be sent twice. */
#define WR_HTTP_KEEP_IDLE_MS   1000

/* Answers counted for /metrics (metrics.c): by status class, body bytes,
 * and durations in buckets (each counts its own range; the text sums them). */
#define WR_STATS_CODES    5             /* 1xx .. 5xx */
#define WR_STATS_BUCKETS  14            /* 1 ms .. 10 s, then +Inf */
typedef struct {
    atomic_ullong code[WR_STATS_CODES];
    atomic_ullong body_bytes;
    atomic_ullong dur_us;               /* sum of the durations */
    atomic_ullong le[WR_STATS_BUCKETS];
} wr_stats_t;

/* An application's counters: one per name, shared by its generations. */
typedef struct wr_appstats {
    struct wr_appstats *next;           /* the router's list (control thread) */
    char               *name;
    atomic_int          refs;           /* generations holding it */
    int                 gone;           /* its name left the config: a name
                                           that comes back starts anew */
    wr_stats_t          s;
    atomic_ullong       worker_failures;   /* workers that ended unasked */
} wr_appstats_t;

typedef struct wr_appgen wr_appgen_t;
struct wr_hconn;

/* One stream of a worker's channel (src/lib/proto.h): from its REQ_HEAD
 * until both directions are closed, when its slot is free again. */
typedef struct wr_wstream {
    struct wr_hconn  *conn;          /* the request; NULL once it let go
                                        (the slot waits for the worker's close) */
    uint32_t          id;            /* stream id */
    uint64_t          seq;           /* the worker's order of arrival */
    uint64_t          start_us;      /* when it went to the worker (auto pipeline) */
    unsigned          in_use:1;
    unsigned          head_sent:1;   /* the worker knows the stream */
    unsigned          worker_closed:1; /* its RESP_END (or F_END, ABORT) came */
    unsigned          need_abort:1;  /* an ABORT waits for room in the channel */
    unsigned          tunnel:1;      /* answered 101: counted in w->tunnels */
    unsigned          dirty:1;       /* a message for it came in this event */
} wr_wstream_t;

#define WR_APP_PIPELINE_AUTO  (-1)  /* no "pipeline" key (app.c) */

/* A worker's channel. Idle ones (no stream) sit in their generation's idle
 * list, in no epoll. A worker with streams is in the epoll of one thread,
 * its home, and in the generation's busy list: only its home thread opens
 * more streams on it (up to cap) and touches its slots. */
typedef struct wr_worker {
    wr_appgen_t      *gen;
    int               fd;
    pid_t             pid;
    uint32_t          id;
    uint32_t          streams;       /* requests it serves at once (HELLO) */
    uint32_t          tunnel_room;   /* ... and tunnels beside them (HELLO) */
    unsigned long     served;        /* requests given to it (limits.requests) */
    uint64_t          idle_since;    /* wr_ev_now() when it last went idle */
    wr_ev_t          *ev;            /* its event while in a thread's epoll
                                        (retired when it leaves it) */
    struct wr_thread *home;          /* that thread, while it has streams */
    /* Under gen->lock (read by other threads choosing a worker, /status): */
    int               active;        /* slots in use */
    int               conns;         /* ... of them still with a request */
    int               tunnels;       /* ... of them tunnels (101) */
    int               cap;           /* streams + pipeline, at most
                                        WR_APP_MAX_STREAMS */
    int               retiring;      /* takes no more streams: closed when
                                        its last one ends (limits.requests) */
    uint64_t          orphan_since;  /* when conns fell to 0 (the sweep) */
    int               orphan_killed; /* the sweep asked main to end it */
    int               killed;        /* an HTTP worker SIGKILLed (limits.timeout) */
    /* The home thread's only: */
    int               held;          /* its event or an attach is under way */
    int               dead;          /* failed: freed once not held */
    int               refill;        /* a slot freed while held */
    int               want_out;      /* EPOLLOUT asked: something waits to go */
    uint64_t          next_seq;
    uint64_t          last_done_us;  /* when its last response ended */
    wr_wstream_t      slot[WR_APP_MAX_STREAMS];
    wr_addr_t        *http;          /* "protocol": "http": where it listens */
    wr_upool_t        kept;          /* ... connections to it kept alive, at
                                        most `streams` (given back under
                                        gen->lock) */
    struct wr_worker *next;          /* idle list */
    struct wr_worker *bprev, *bnext; /* busy list */
    struct wr_worker *tprev, *tnext; /* its home thread's list */
} wr_worker_t;

/* A request waiting for a worker: its thread and its connection's id (the
 * connection may be gone by the time a worker frees up). */
typedef struct wr_waiter {
    struct wr_waiter *next;
    struct wr_thread *t;
    uint64_t          conn_id;
    unsigned          stays:1;       /* an HTTP/2 stream: it cannot move to
                                        another thread's worker */
} wr_waiter_t;

/* One generation of an application, shared by every thread. */
struct wr_appgen {
    atomic_int        refs;
    wr_router_t      *router;        /* its workers are released through it */
    uint32_t          gen;
    char             *name;
    wr_appstats_t    *stats;         /* its name's counters (NULL: no memory) */
    pthread_mutex_t   lock;          /* the fields below */
    wr_worker_t      *idle;
    wr_worker_t      *busy;          /* workers with streams (any thread's) */
    int               nworkers;      /* alive: idle or busy */
    int               pipeline;      /* requests queued on a worker beyond
                                        its streams ("pipeline", set by the
                                        first config using it), or
                                        WR_APP_PIPELINE_AUTO */
    atomic_uint       fast_share;    /* share of recent requests that kept
                                        their worker under WR_APP_FAST_US,
                                        moving average in 1/1024 (any thread's) */
    int               no_workers;    /* "processes": 0: a request is answered
                                        503 at once rather than queued for a
                                        worker that will never start */
    int               http;          /* "protocol": "http" (set by the first
                                        config using it, before it routes) */
    int               retired;
    wr_waiter_t      *qhead, *qtail;
    int               qlen;
    wr_waiter_t      *skip_head;     /* the head that waiters passed ... */
    int               skips;         /* ... so many times (take_own_waiter) */
    /* Scaling (app_scale.c), from main's WR_MSG_APP_SCALE: */
    int               starting;      /* workers main is starting for it */
    int               max, spare, idle_timeout, dynamic;   /* max 0: not told yet */
    uint64_t          asked;         /* when a WANT went out, 0: none (control thread) */
    uint32_t          failures;      /* main's count of failed workers (control thread) */
};

/* A hung worker to kill (limits.timeout), or a worker's channel to hand
 * back (WR_MSG_APP_RELEASE), for the control thread to pass on to main. */
typedef struct wr_app_kill {
    struct wr_app_kill *next;
    uint32_t            gen, worker;
    int                 fd;          /* release: the channel; kill: -1 */
} wr_app_kill_t;

/* The router side of scaling (app_scale.c): threads poke the control
 * thread through an eventfd; it talks to main. */
typedef struct {
    wr_ev_t          ev;             /* eventfd */
    atomic_int       poked;          /* a wake-up is pending already */
    pthread_mutex_t  lock;
    wr_app_kill_t   *kills;
    wr_app_kill_t   *releases;
} wr_app_scale_t;

/* A worker handed to a thread for one of its waiting connections. */
typedef struct wr_handoff {
    struct wr_handoff *next;
    wr_worker_t       *w;
    uint64_t           conn_id;
    int                claimed;      /* its slot is taken already (an HTTP
                                        worker serving others) */
    struct wr_appgen  *again;        /* no worker, but a notice: a worker of
                                        this generation at home in another
                                        thread has room; the connection, out
                                        of the queue, begins again (a ref) */
} wr_handoff_t;

/* A listen socket; shared by every thread's epoll (EPOLLEXCLUSIVE). */
typedef struct wr_listener {
    atomic_int  refs;
    char       *addr;
    int         fd;
    int         unix_sock;
} wr_listener_t;

/* A listener as one configuration uses it. */
typedef struct {
    wr_listener_t  *sock;
    char           *pass;
    wr_forwarded_t *forwarded;     /* NULL: trust the socket's peer */
    struct wr_tls_server *tls;     /* "tls": the handshake comes first */
} wr_rlisten_t;

/* An application as one configuration uses it: its current generation. */
typedef struct {
    char        *name;
    wr_appgen_t *gen;
    int          timeout;          /* limits.timeout, seconds; 0: none */
    long         max_requests;     /* limits.requests; 0: none */
    int          http;             /* "protocol": "http": requests are proxied */
} wr_rapp_t;

/* One compiled configuration: read-only once published; requests keep a
 * reference to the one they started on. */
typedef struct wr_rconf {
    atomic_int          refs;
    wr_conf_settings_t  settings;
    wr_http_limits_t    limits;
    wr_routes_t        *routes;
    wr_mime_t          *mime;
    wr_alog_format_t   *alog;
    wr_rlisten_t       *listen;
    size_t              nlisten;
    wr_rapp_t          *apps;
    size_t              napps;
    wr_upstreams_t      upstreams;
    struct wr_script_env *js;           /* settings.js_module, or NULL */
    wr_tel_conf_t      *tel;            /* settings.telemetry, or NULL */
} wr_rconf_t;

/* Counters of one thread; the sums make /status and /metrics. */
typedef struct {
    atomic_ullong accepted, closed, requests;
    atomic_llong  active, idle;
    atomic_ullong tls_failed;           /* handshakes */
    wr_stats_t    stats;
} wr_counters_t;

/* An application generation's load now, for /status and /metrics. */
typedef struct {
    int running, starting, idle;
    int active;                         /* requests held, or queued ... */
    int queued;                         /* ... of them waiting for a worker */
} wr_appgen_load_t;

struct wr_thread {
    wr_router_t     *router;
    int              index;
    pthread_t        tid;
    wr_ev_loop_t     loop;
    wr_ev_t          notify;         /* eventfd: a new config or a stop */
    wr_rconf_t      *conf;           /* the one new requests get; set before the
                                        thread runs, never NULL after */
    wr_ev_t         *lev;            /* listen events in this epoll */
    wr_listener_t  **lsock;
    size_t           nl;
    wr_counters_t    count;
    unsigned         seen_gen;       /* the publication it took last */
    uint64_t         rng[2];         /* request ids */
    time_t           date_sec;       /* cached Date header */
    char             date[32];       /* wr_http_date output */
    long             conns;          /* open connections */
    struct wr_hconn *conn_list;      /* all of them, for draining */
    struct wr_h2    *h2_list;        /* HTTP/2 sessions (h2.c), in conns too */
    wr_http_request_t req;           /* parse scratch (large: not per conn) */
    char            *rbuf;           /* reads land here first */
    size_t           rbuf_cap;
    wr_buf_t         out;            /* responses are built here */
    char            *fbuf;           /* a file's bytes on their way into TLS */
    wr_buf_t         scratch;        /* routing strings of the request at hand */
    wr_buf_t         uri;            /* its $uri */
    atomic_int       draining;       /* let go or stopping: no accepting */
    atomic_int       close_idle;     /* stopping: idle connections close now */
    uint64_t         next_conn_id;
    struct wr_hconn *app_waiting;    /* connections queued for a worker */
    pthread_mutex_t  inbox_lock;
    wr_handoff_t    *inbox;          /* workers handed over by other threads */
    struct wr_hconn *hop_in;         /* connections moved here by others */
    struct wr_worker *homed;         /* workers with streams in this epoll */
};

struct wr_router {
    const wr_router_args_t *args;
    wr_ev_loop_t      loop;          /* the control thread's */
    wr_chan_t         chan;
    wr_ev_t           sig;
    wr_listener_t   **socks;         /* received from main, by address */
    size_t            nsocks, capsocks;
    _Atomic(wr_rconf_t *) conf;      /* published configuration */
    wr_thread_t      *threads[WR_ROUTER_MAX_THREADS];   /* serving */
    int               nthreads;
    wr_thread_t      *retiring[WR_ROUTER_MAX_THREADS];  /* let go, finishing */
    int               nretiring;
    wr_counters_t     retired_count; /* totals of threads that ended */
    pthread_mutex_t   count_lock;    /* threads[], retiring[] and retired_count
                                        as summed by any thread (metrics) */
    wr_appstats_t    *appstats;      /* per application name (control thread) */
    atomic_ullong     conf_loads;    /* configurations applied */
    time_t            started;
    pthread_mutex_t   lock;          /* for the publication handshake */
    pthread_cond_t    cond;
    unsigned          pub_gen;       /* publications of r->conf so far */
    wr_timer_t        reap_timer;
    wr_timer_t        sweep_timer;
    wr_alog_writer_t *alog;
    wr_appgen_t     **gens;          /* every live generation (control thread) */
    size_t            ngens, capgens;
    json_t           *app_map;       /* from main, for the next config */
    json_t           *certs;         /* {"name": "PEM"}: bundles it names */
    json_t           *js_modules;    /* {"name": "source"}: modules it names */
    wr_tel_t         *tel;           /* the span exporter, once a config has one */
    atomic_uint       next_stream;   /* worker stream ids */
    int               alog_pending;  /* a file waits for the next config */
    int               alog_fd;       /* ... this one (-1: logging off) */
    wr_app_scale_t    scale;
    int               body_dir;      /* --tmpdir/bodies (spool.h), or -1 */
    wr_upool_t        upool;         /* kept "proxy" connections */
};

/* rconf.c */
wr_rconf_t *wr_rconf_build(wr_router_t *r, const char *text, size_t len, char *reason);
void        wr_rconf_ref(wr_rconf_t *c);
void        wr_rconf_unref(wr_rconf_t *c);
void        wr_listener_unref(wr_listener_t *l);

/* thread.c */
int   wr_threads_resize(wr_router_t *r, int n);
void  wr_threads_reap(wr_router_t *r);
void  wr_threads_publish(wr_router_t *r, wr_rconf_t *c);   /* waits until all took it */
void  wr_threads_drain(wr_router_t *r);
void  wr_threads_counters(wr_router_t *r, wr_counters_t *sum);   /* any thread */
const char *wr_thread_date(wr_thread_t *t);
void  wr_thread_request_id(wr_thread_t *t, char out[33]);
void  wr_thread_conn_closed(wr_thread_t *t);
void  wr_thread_wake(wr_thread_t *t);          /* its inbox has something */

/* app.c */
wr_appgen_t *wr_appgen_find(wr_router_t *r, uint32_t gen, const char *name, int create);
void  wr_appgen_unref(wr_appgen_t *g);
void  wr_appgen_add_worker(wr_appgen_t *g, int fd, pid_t pid, uint32_t id,
                           uint32_t streams, uint32_t tunnels);
int   wr_worker_queued(const wr_worker_t *w);   /* pipelined on it, waiting */
void  wr_appgen_retire(wr_router_t *r, uint32_t gen);
void  wr_appgen_sweep(wr_router_t *r);
void  wr_appgen_load(wr_appgen_t *g, wr_appgen_load_t *out);
void  wr_thread_take_inbox(wr_thread_t *t);
void  wr_app_thread_done(wr_thread_t *t);     /* its loop ended: workers go */
/* w is done with (in no list, no epoll): its channel back to main, its
 * kept connections closed, w freed. */
void  wr_app_worker_close(wr_worker_t *w);

/* app_scale.c */
int   wr_app_scale_init(wr_router_t *r);
void  wr_app_scale_poke(wr_router_t *r);                 /* any thread */
void  wr_app_scale_kill(wr_router_t *r, const wr_worker_t *w);   /* any thread */
/* The router is done with w: its channel (taken) goes back to main, which
 * closes it and so knows the worker's exit is expected. Any thread. */
void  wr_app_scale_release(wr_worker_t *w);
void  wr_app_scale_tick(wr_router_t *r);
void  wr_app_scale_on_msg(wr_router_t *r, const wr_msg_t *m);    /* WR_MSG_APP_SCALE */
/* c waited on a retired generation: 0 if it waits on the current one now,
 * -1 if the app is gone (the caller answers 503). */
int   wr_app_scale_requeue(struct wr_hconn *c);

/* metrics.c */
#define WR_METRICS_CONTENT_TYPE  "text/plain; version=0.0.4; charset=utf-8"
void  wr_stats_record(wr_stats_t *s, int status, unsigned long long body_bytes, uint64_t us);
void  wr_stats_add(wr_stats_t *sum, wr_stats_t *s);
wr_appstats_t *wr_appstats_get(wr_router_t *r, const char *name);   /* control thread */
void  wr_appstats_put(wr_appstats_t *s);                           /* any thread */
void  wr_appstats_sweep(wr_router_t *r);     /* control thread: frees unused ones */
/* Names c does not have are done with (control thread, c applied). */
void  wr_appstats_drop_unused(wr_router_t *r, const wr_rconf_t *c);
/* The document of GET /status (Unit's shape) for configuration c. */
json_t *wr_metrics_status(wr_router_t *r, const wr_rconf_t *c);
/* The Prometheus text of GET /metrics, appended to out; -1: no memory. */
int   wr_metrics_text(wr_router_t *r, const wr_rconf_t *c, wr_buf_t *out);

/* conn.c */
void  wr_conn_accepted(wr_thread_t *t, wr_listener_t *l, int fd);
void  wr_conn_close_idle(wr_thread_t *t);
void  wr_conn_drop_moved(wr_thread_t *t);      /* its loop is over */

#endif
