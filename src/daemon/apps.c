/*
 * Application generations in main. A generation is one prototype process
 * (src/app/proto.c) for one application object of the config; main asks it
 * for workers, reads each worker's HELLO, then hands the worker's channel
 * to the router (WR_MSG_APP_WORKER).
 *
 * A generation is NEW (started for the change being applied), LIVE (part of
 * the running config) or DEAD (retired or failed: waiting for its prototype
 * to be reaped, then freed). An apply keeps the LIVE generation of every app
 * whose JSON object did not change; the others start as NEW and the apply
 * waits until each has one worker that said hello. On commit the LIVE ones
 * no longer wanted are retired; on failure the NEW ones are torn down.
 *
 * How many workers: main keeps a floor by itself ("processes": N keeps N;
 * the object form keeps "spare"; a NEW generation starts at least one so
 * the PUT learns whether the app can serve at all). Beyond the floor the
 * router asks (WR_MSG_APP_WANT) for workers when requests wait, and lets
 * idle ones go after idle_timeout (src/router/app_scale.c); main never
 * lets a generation have more than "max" processes, starting and dying
 * ones included. Every change of the starting count is told to the router
 * (WR_MSG_APP_SCALE), with the options, for its decisions and /status.
 *
 * Which worker exits are normal: those main caused. The router never
 * closes a worker's channel itself: it hands it back (WR_MSG_APP_RELEASE:
 * recycled after limits.requests, let go while idle, dropped after a
 * failed exchange) and main closes it, noting that worker as released,
 * unless its other end was closed already (the worker was gone by
 * then). A retired generation's exits, and those of workers whose channel
 * died with the router, are expected too. Every other exit (killed, a
 * crash, exit status 0 on its own, a hung worker killed after
 * limits.timeout, an end before hello) is a failure: it is logged as
 * [warn] or [error] with app, generation, worker, pid and status, and it
 * holds back every spawn of its generation for a delay that doubles from
 * WR_RESTART_MIN_MS to WR_RESTART_MAX_MS while workers keep failing early
 * (reset once one stayed up WR_RESTART_STABLE_MS): neither the floor nor
 * the router's demand makes a respawn storm, not even for an app that
 * exits cleanly right after its hello.
 * A prototype that dies is restarted with the same backoff.
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "app/app.h"
#include "core/log.h"
#include "daemon/internal.h"
#include "lib/proto.h"

#define WR_GEN_REASON_MAX 896

enum { GEN_NEW, GEN_LIVE, GEN_DEAD };
enum { W_NONE, W_SPAWNING, W_HELLO, W_UP, W_DYING };

/* One worker process, from its spawn request to its exit. Allocated one
 * by one (timers point at them) and reused once W_NONE. */
typedef struct {
    wr_gen_t   *g;
    int         state;
    uint32_t    worker;       /* current worker number, 0 none */
    pid_t       pid;          /* known from PROTO_WORKER */
    wr_ev_t     ev;           /* router's end until HELLO; fd -1 otherwise */
    wr_timer_t  hello;
    uint64_t    started;
    int         released;     /* main closed its channel: its exit is expected */
    int         hung;         /* killed after limits.timeout: a failure anyway */
} wr_slot_t;

struct wr_gen {
    wr_main_t     *m;
    wr_gen_t      *next;
    wr_app_spec_t  spec;
    wr_sb_run_t    sb;            /* spec.sb.on: prepared by wr_sb_prepare */
    json_t        *app;
    int            role;
    int            ready;         /* a worker said hello once */
    int            forwarded;     /* the router got a worker: it must hear RETIRE */
    int            failed;        /* NEW: the apply was told already */
    char           last_words[WR_GEN_REASON_MAX - 128];  /* the prototype's set-up
                                   * failure, read from its channel at reap */
    pid_t          pid;           /* prototype; 0 when not running */
    wr_chan_t      chan;
    int            chan_open;
    uint32_t       next_worker;
    uint64_t       started, backoff;
    wr_timer_t     restart;       /* prototype restart */
    wr_timer_t     drain;         /* DEAD: SIGKILL after the drain grace */
    int            drain_armed;
    wr_timer_t     fill;          /* spawns held back by the failure backoff */
    uint64_t       hold_until;    /* no spawn before (wr_ev_now() ms) */
    uint64_t       wbackoff;      /* the workers' failure backoff, ms */
    int            demand;        /* workers the router asked for, not spawned yet */
    int            told;          /* starting count the router knows; -1 none */
    uint32_t       failures;      /* workers that ended unasked (metrics) */
    size_t         nslots, capslots;
    wr_slot_t    **slots;
};

static int  proto_start(wr_gen_t *g, char *reason, size_t rlen);
static void gen_free(wr_gen_t *g);
static void gen_fill(wr_gen_t *g);
static void gen_tell(wr_gen_t *g, int force);
static void gen_drain_check(wr_gen_t *g);

static int gen_in_use(const wr_gen_t *g)
{
    return g->role != GEN_DEAD && !g->m->stopping;
}

static const char *exit_text(int status, char *buf, size_t len)
{
    if (WIFSIGNALED(status))
        snprintf(buf, len, "killed by signal %d", WTERMSIG(status));
    else
        snprintf(buf, len, "exited with code %d", WEXITSTATUS(status));
    return buf;
}

/* ---- failure before ready: the apply learns why ---- */

static void gen_fail(wr_gen_t *g, const char *why)
{
    char reason[2 * WR_GEN_REASON_MAX];

    wr_log(WR_LOG_ERR, "app \"%s\" generation %u could not start: %s", g->spec.name,
           g->spec.gen, why);
    if (g->role != GEN_NEW || g->ready || g->failed)
        return;
    g->failed = 1;
    snprintf(reason, sizeof(reason), "Application \"%s\" could not start: %s.",
             g->spec.name, why);
    wr_apply_apps_failed(g->m, reason);
}

/* ---- slots ---- */

static void slot_close_fd(wr_slot_t *s)
{
    if (s->ev.fd >= 0) {
        wr_ev_del(&s->g->m->loop, &s->ev);
        close(s->ev.fd);
        s->ev.fd = -1;
    }
    wr_timer_cancel(&s->g->m->loop, &s->hello);
}

static void slot_reset(wr_slot_t *s)
{
    slot_close_fd(s);
    s->state = W_NONE;
    s->worker = 0;
    s->pid = 0;
    s->released = 0;
    s->hung = 0;
}

/*
 * SIGKILL worker pid of g, as root, only while it is a child of g's
 * prototype: every worker is (a zygote's are re-parented to it). The pid
 * came from the prototype, which may have been lied to, and a worker
 * reaped since may have left its pid to any process: those are left
 * alone. 0, or -1 with errno (ESRCH: no such child).
 */
static int kill_worker(const wr_gen_t *g, pid_t pid)
{
    char state;
    pid_t parent;

    if (pid <= 0 || g->pid <= 0 || wr_proc_parent(pid, &state, &parent) < 0
        || parent != g->pid) {
        errno = ESRCH;
        return -1;
    }
    return kill(pid, SIGKILL);
}

/* A worker that cannot become ready: a generation still starting fails
 * with why (the PUT's answer); a running one logs it. Either way the
 * worker is killed and its exit handled as a death. */
static void slot_fail(wr_slot_t *s, const char *why)
{
    wr_gen_t *g = s->g;

    if (g->role == GEN_NEW && !g->ready)
        gen_fail(g, why);
    else
        wr_log(WR_LOG_ERR, "app \"%s\": %s; killing it", g->spec.name, why);
    slot_close_fd(s);
    s->state = W_DYING;
    kill_worker(g, s->pid);
}

static void slot_hello_timeout(wr_ev_loop_t *loop, wr_timer_t *t)
{
    wr_slot_t *s = t->data;
    wr_gen_t *g = s->g;
    char why[128];

    if (s->state == W_SPAWNING) {
        /* The prototype did not even answer: it is stuck. */
        snprintf(why, sizeof(why), "the prototype did not start worker %u within %d ms",
                 s->worker, WR_APP_HELLO_TIMEOUT_MS);
        gen_fail(g, why);
        if (g->pid > 0)
            kill(-g->pid, SIGKILL);
        return;
    }
    if (s->state == W_DYING)
        snprintf(why, sizeof(why), "worker %u (pid %d) closed its channel before saying "
                 "hello", s->worker, (int) s->pid);
    else
        snprintf(why, sizeof(why), "worker %u (pid %d) did not say hello within %d ms",
                 s->worker, (int) s->pid, WR_APP_HELLO_TIMEOUT_MS);
    slot_fail(s, why);
    gen_tell(g, 0);
}

static void slot_spawn(wr_slot_t *s)
{
    wr_gen_t *g = s->g;
    wr_msg_spawn_t sp;

    if (++g->next_worker == 0)
        g->next_worker = 1;
    s->worker = g->next_worker;
    s->pid = 0;
    s->released = 0;
    s->hung = 0;
    s->state = W_SPAWNING;
    s->started = wr_ev_now();
    sp.worker = s->worker;
    wr_chan_send(&g->chan, WR_MSG_PROTO_SPAWN, 0, &sp, sizeof(sp), -1);
    wr_timer_set(&g->m->loop, &s->hello, WR_APP_HELLO_TIMEOUT_MS);
}

static wr_slot_t *slot_of(wr_gen_t *g, uint32_t worker)
{
    for (size_t i = 0; i < g->nslots; i++)
        if (g->slots[i]->worker == worker && g->slots[i]->state != W_NONE)
            return g->slots[i];
    return NULL;
}

/* A free slot, or a new one; NULL when out of memory. */
static wr_slot_t *slot_free_one(wr_gen_t *g)
{
    wr_slot_t *s;

    for (size_t i = 0; i < g->nslots; i++)
        if (g->slots[i]->state == W_NONE)
            return g->slots[i];
    if (g->nslots == g->capslots) {
        size_t cap = g->capslots ? g->capslots * 2 : 4;
        wr_slot_t **v = realloc(g->slots, cap * sizeof(*v));
        if (v == NULL)
            return NULL;
        g->slots = v;
        g->capslots = cap;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->g = g;
    s->ev.fd = -1;
    s->hello.cb = slot_hello_timeout;
    s->hello.data = s;
    g->slots[g->nslots++] = s;
    return s;
}

/* ---- how many workers ---- */

/* Processes of g's workers: every state but W_NONE has (or will have) one. */
static int gen_live(const wr_gen_t *g)
{
    int n = 0;

    for (size_t i = 0; i < g->nslots; i++)
        n += g->slots[i]->state != W_NONE;
    return n;
}

static int gen_starting(const wr_gen_t *g)
{
    int n = g->demand;

    for (size_t i = 0; i < g->nslots; i++)
        n += g->slots[i]->state == W_SPAWNING || g->slots[i]->state == W_HELLO;
    return n;
}

/* Workers main keeps without being asked. */
static int gen_floor(const wr_gen_t *g)
{
    if (!g->ready && g->spec.dynamic && g->spec.spare < 1)
        return 1;                 /* the PUT waits for one: can the app serve? */
    return g->spec.spare;
}

/* The router's view: options and workers on their way. Sent when the
 * starting count changed, and always (force) in answer to a WANT. */
static void gen_tell(wr_gen_t *g, int force)
{
    wr_child_t *r = &g->m->child[WR_ROLE_ROUTER];
    char msg[sizeof(wr_msg_scale_t) + 256];
    wr_msg_scale_t sc = {
        .gen = g->spec.gen, .starting = gen_starting(g), .max = g->spec.max,
        .spare = g->spec.spare, .idle_timeout = g->spec.idle_timeout,
        .dynamic = g->spec.dynamic, .failures = g->failures,
    };
    size_t nl = strlen(g->spec.name);

    if (!gen_in_use(g) || r->pid <= 0 || (!force && sc.starting == g->told))
        return;
    if (nl > 256)
        nl = 256;
    memcpy(msg, &sc, sizeof(sc));
    memcpy(msg + sizeof(sc), g->spec.name, nl);
    if (wr_chan_send(&r->chan, WR_MSG_APP_SCALE, 0, msg, sizeof(sc) + nl, -1) == 0) {
        g->told = sc.starting;
        g->forwarded = 1;         /* the router knows g: it must hear RETIRE */
    }
}

/* A worker failed: the next spawns of g wait, longer each time while
 * workers keep failing early. */
static void gen_backoff(wr_gen_t *g, uint64_t up)
{
    g->wbackoff = wr_backoff_next(g->wbackoff, up);
    g->hold_until = wr_ev_now() + g->wbackoff;
}

static void fill_cb(wr_ev_loop_t *loop, wr_timer_t *t)
{
    gen_fill(t->data);
}

/* Spawn what the floor and the router's demand call for, within max and
 * (all at once: the prototype forks them side by side) unless a failure
 * holds spawns back. */
static void gen_fill(wr_gen_t *g)
{
    uint64_t now = wr_ev_now();
    int live, n;

    if (!gen_in_use(g) || g->pid <= 0 || !g->chan_open) {
        gen_tell(g, 0);           /* demand waits for the prototype */
        return;
    }
    if (now < g->hold_until) {
        wr_timer_set(&g->m->loop, &g->fill, g->hold_until - now);
        gen_tell(g, 0);
        return;
    }
    live = gen_live(g);
    n = gen_floor(g) - live;
    if (n < g->demand)
        n = g->demand;
    if (n > g->spec.max - live)
        n = g->spec.max - live;   /* more demand than max: the router asks again */
    g->demand = 0;
    for (; n > 0; n--) {
        wr_slot_t *s = slot_free_one(g);
        if (s == NULL) {
            wr_log(WR_LOG_CRIT, "app \"%s\": out of memory starting a worker", g->spec.name);
            break;
        }
        slot_spawn(s);
    }
    gen_tell(g, 0);
}

/* The worker said hello (or not): forward its channel to the router. */
static void slot_hello(wr_ev_loop_t *loop, wr_ev_t *ev, uint32_t events)
{
    wr_slot_t *s = ev->data;
    wr_gen_t *g = s->g;
    wr_main_t *m = g->m;
    char buf[sizeof(wr_app_hdr_t) + sizeof(wr_app_hello_t) + 1];
    wr_app_hdr_t h;
    wr_app_hello_t hello;
    char why[160];
    ssize_t n = recv(ev->fd, buf, sizeof(buf), MSG_DONTWAIT);

    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n < 0)
        snprintf(why, sizeof(why), "recv(worker %u channel) failed: %s", s->worker,
                 strerror(errno));
    else if (n == 0)
        snprintf(why, sizeof(why), "worker %u (pid %d) closed its channel before saying hello",
                 s->worker, (int) s->pid);
    if (n > 0) {
        memcpy(&h, buf, (size_t) n < sizeof(h) ? (size_t) n : sizeof(h));
        if ((size_t) n != sizeof(h) + sizeof(hello) || h.type != WR_APP_HELLO
            || h.len != sizeof(hello)) {
            snprintf(why, sizeof(why), "worker %u (pid %d) sent something else than hello",
                     s->worker, (int) s->pid);
            n = -1;
        } else {
            memcpy(&hello, buf + sizeof(h), sizeof(hello));
            if (hello.version != WR_APP_PROTO_VERSION) {
                snprintf(why, sizeof(why), "worker %u speaks protocol version %u, not %u",
                         s->worker, hello.version, WR_APP_PROTO_VERSION);
                n = -1;
            } else if (hello.streams < 1 || hello.streams > WR_APP_MAX_STREAMS) {
                snprintf(why, sizeof(why), "worker %u offers %u concurrent requests, "
                         "not 1 to %d", s->worker, hello.streams, WR_APP_MAX_STREAMS);
                n = -1;
            } else if (hello.tunnels > WR_APP_MAX_STREAMS - hello.streams) {
                snprintf(why, sizeof(why), "worker %u offers %u concurrent requests and "
                         "%u tunnels, more than %d streams", s->worker, hello.streams,
                         hello.tunnels, WR_APP_MAX_STREAMS);
                n = -1;
            }
        }
    }
    if (n == 0) {
        /* Most likely it is exiting: its exit status says more, soon. If it
         * does not exit, the hello timer (still armed) ends it. */
        wr_ev_del(&m->loop, &s->ev);
        close(s->ev.fd);
        s->ev.fd = -1;
        s->state = W_DYING;
        return;
    }
    if (n < 0) {
        slot_fail(s, why);
        return;
    }

    if (m->child[WR_ROLE_ROUTER].pid > 0) {
        char msg[sizeof(wr_msg_worker_t) + 256];
        wr_msg_worker_t w = { .gen = g->spec.gen, .worker = s->worker, .pid = s->pid,
                              .streams = hello.streams, .tunnels = hello.tunnels };
        size_t nl = strlen(g->spec.name);

        if (nl > 256)
            nl = 256;
        memcpy(msg, &w, sizeof(w));
        memcpy(msg + sizeof(w), g->spec.name, nl);
        wr_chan_send(&m->child[WR_ROLE_ROUTER].chan, WR_MSG_APP_WORKER, 0, msg,
                     sizeof(w) + nl, ev->fd);
        g->forwarded = 1;
    } else {
        /* No router (it is being restarted): main's close ends the worker,
         * an exit it expects; the next start waits, so that workers are
         * not started and ended in a loop until the router is back. */
        s->released = 1;
        gen_backoff(g, 0);
        wr_log(WR_LOG_WARN, "app \"%s\" generation %u worker %u (pid %d): no router to "
               "take it; ending it, workers start again in %llu ms", g->spec.name,
               g->spec.gen, s->worker, (int) s->pid, (unsigned long long) g->wbackoff);
    }
    slot_close_fd(s);
    s->state = W_UP;
    wr_log(WR_LOG_INFO, "app \"%s\" generation %u worker %u (pid %d) ready", g->spec.name,
           g->spec.gen, s->worker, (int) s->pid);
    gen_tell(g, 0);
    if (!g->ready) {
        g->ready = 1;
        if (g->role == GEN_NEW && wr_apps_pending(m) == 0)
            wr_apply_apps_ready(m);
    }
}

/* ---- messages from a prototype ---- */

static void on_proto_worker(wr_gen_t *g, wr_msg_t *msg)
{
    wr_msg_worker_t w;
    wr_slot_t *s;

    if (msg->len != sizeof(w) || msg->fd < 0)
        return;
    memcpy(&w, msg->data, sizeof(w));
    s = slot_of(g, w.worker);
    if (s == NULL || s->state != W_SPAWNING) {
        /* A worker nobody waits for any more (timed out): end it. */
        kill_worker(g, w.pid);
        return;
    }
    if (!(g->spec.sb.clone_flags & CLONE_NEWPID))
        s->pid = w.pid;
    if (s->pid <= 0) {
        /* No pidfd came (or it was dead already): without a pid nobody
         * could kill it on a timeout. Its channel closes: it exits. */
        wr_log(WR_LOG_ERR, "app \"%s\": no host pid for worker %u; dropping it",
               g->spec.name, w.worker);
        s->state = W_DYING;
        return;
    }
    s->ev.fd = msg->fd;
    s->ev.cb = slot_hello;
    s->ev.data = s;
    msg->fd = -1;
    if (wr_ev_add(&g->m->loop, &s->ev, EPOLLIN) < 0) {
        close(s->ev.fd);
        s->ev.fd = -1;
        s->state = W_DYING;
        kill_worker(g, s->pid);
        return;
    }
    s->state = W_HELLO;
}

/* "Pid:\t123" of a pidfd's fdinfo: the pid in main's namespace. */
static pid_t pidfd_host_pid(int fd)
{
    char path[64], line[128];
    FILE *f;
    long pid = 0;

    snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
    f = fopen(path, "re");
    if (f == NULL) {
        wr_log_sys(WR_LOG_WARN, "fopen", path);
        return 0;
    }
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "Pid: %ld", &pid) == 1)
            break;
    fclose(f);
    return pid > 0 ? (pid_t) pid : 0;
}

/* The prototype has its own pid namespace: this tells the worker's pid as
 * main and the router see it (kill on timeout, logs). */
static void on_proto_pidfd(wr_gen_t *g, wr_msg_t *msg)
{
    uint32_t worker;
    wr_slot_t *s;

    if (msg->len != sizeof(worker) || msg->fd < 0)
        return;
    memcpy(&worker, msg->data, sizeof(worker));
    s = slot_of(g, worker);
    if (s && s->state == W_SPAWNING)
        s->pid = pidfd_host_pid(msg->fd);
}

/* [warn] for a clean exit nobody asked for (status 0 after hello), else
 * [error]; names app, generation, worker, pid and status, and the delay. */
static void worker_failed_log(wr_gen_t *g, const wr_msg_exit_t *e, const char *why,
                              int up_before)
{
    int clean = e->status == 0;
    const char *own = clean && up_before ? ", not let go by the router," : "";

    if (gen_live(g) < gen_floor(g))
        wr_log(clean ? WR_LOG_WARN : WR_LOG_ERR,
               "app \"%s\" generation %u worker %u (pid %d)%s %s; replacing it in %llu ms",
               g->spec.name, g->spec.gen, e->worker, (int) e->pid, own, why,
               (unsigned long long) g->wbackoff);
    else
        wr_log(clean ? WR_LOG_WARN : WR_LOG_ERR,
               "app \"%s\" generation %u worker %u (pid %d)%s %s; workers start again "
               "on demand, not before %llu ms", g->spec.name, g->spec.gen, e->worker,
               (int) e->pid, own, why, (unsigned long long) g->wbackoff);
}

/* Has the other end of a channel been closed (its process exited)? */
static int peer_gone(int fd)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };

    if (poll(&pfd, 1, 0) < 0) {
        wr_log_sys(WR_LOG_WARN, "poll", "channel");
        return 1;
    }
    return (pfd.revents & (POLLHUP | POLLERR)) != 0;
}

/* The router died (maybe not reaped yet: its channel to main closed as it
 * exited, before the worker channels it held let their workers go). */
static int router_gone(wr_main_t *m)
{
    wr_child_t *r = &m->child[WR_ROLE_ROUTER];

    return r->pid <= 0 || r->chan.ev.fd < 0 || peer_gone(r->chan.ev.fd);
}

static void on_proto_exit(wr_gen_t *g, wr_msg_t *msg)
{
    wr_msg_exit_t e;
    char why[WR_GEN_REASON_MAX - 128];
    size_t rl;
    wr_slot_t *s;
    uint64_t up;
    int expected, up_before;

    if (msg->len < sizeof(e))
        return;
    memcpy(&e, msg->data, sizeof(e));
    rl = msg->len - sizeof(e);
    if (rl >= sizeof(why))
        rl = sizeof(why) - 1;
    memcpy(why, msg->data + sizeof(e), rl);
    why[rl] = '\0';

    if (e.worker == 0) {
        /* The prototype itself could not set up; it exits next. */
        if (g->role == GEN_NEW && !g->ready)
            gen_fail(g, why);
        else
            wr_log(WR_LOG_ERR, "app \"%s\" prototype: %s", g->spec.name, why);
        return;
    }
    s = slot_of(g, e.worker);
    if (s == NULL)
        return;
    /* In a pid namespace the prototype's pid is not ours: the host one. */
    if (g->spec.sb.clone_flags & CLONE_NEWPID)
        e.pid = s->pid;
    /* A worker that said hello and exited at once: its hello waits on its
     * channel, maybe not read yet (both events in one batch). Read first,
     * so the exit counts as one after hello, not as a failed start. */
    if (s->state == W_HELLO && s->ev.fd >= 0)
        slot_hello(&g->m->loop, &s->ev, EPOLLIN);
    up = wr_ev_now() - s->started;
    /* Main closed its channel (the router released it), or the router that
     * held it is gone: replaced at once (if the floor wants it), no backoff.
     * A hung worker killed after limits.timeout is a failure all the same. */
    up_before = s->state == W_UP;
    expected = up_before && !s->hung && (s->released || router_gone(g->m));
    slot_reset(s);
    if (!gen_in_use(g)) {
        gen_drain_check(g);
        return;
    }
    if (g->role == GEN_NEW && !g->ready) {
        char full[WR_GEN_REASON_MAX];
        if (e.status == -1)
            snprintf(full, sizeof(full), "%s", why);
        else
            snprintf(full, sizeof(full), "worker %u (pid %d) ended before saying hello: %s",
                     e.worker, (int) e.pid, why);
        gen_fail(g, full);
        return;
    }
    if (expected) {
        wr_log(WR_LOG_INFO, "app \"%s\" generation %u worker %u (pid %d) let go, %s",
               g->spec.name, g->spec.gen, e.worker, (int) e.pid, why);
        gen_fill(g);
        return;
    }
    gen_backoff(g, up);
    worker_failed_log(g, &e, why, up_before);
    g->failures++;
    gen_tell(g, 1);
    gen_fill(g);
}

static void proto_msg(wr_chan_t *c, wr_msg_t *msg)
{
    wr_gen_t *g = c->data;

    if (msg->type == WR_MSG_PROTO_WORKER)
        on_proto_worker(g, msg);
    else if (msg->type == WR_MSG_PROTO_EXIT)
        on_proto_exit(g, msg);
    else if (msg->type == WR_MSG_PROTO_PIDFD)
        on_proto_pidfd(g, msg);
    else
        wr_log(WR_LOG_WARN, "unexpected message %u from app \"%s\" prototype", msg->type,
               g->spec.name);
}

/* A dead prototype's channel: only a set-up failure (worker 0) is kept. */
static void proto_last_words(wr_chan_t *c, wr_msg_t *msg)
{
    wr_gen_t *g = c->data;
    wr_msg_exit_t e;
    size_t rl;

    if (msg->type != WR_MSG_PROTO_EXIT || msg->len <= sizeof(e))
        return;
    memcpy(&e, msg->data, sizeof(e));
    if (e.worker != 0)
        return;
    rl = msg->len - sizeof(e);
    if (rl >= sizeof(g->last_words))
        rl = sizeof(g->last_words) - 1;
    memcpy(g->last_words, msg->data + sizeof(e), rl);
    g->last_words[rl] = '\0';
}

static void proto_chan_closed(wr_chan_t *c)
{
    /* Handled when the prototype is reaped. */
}

/* ---- the prototype process ---- */

static void proto_restart_cb(wr_ev_loop_t *loop, wr_timer_t *t)
{
    wr_gen_t *g = t->data;
    char reason[WR_GEN_REASON_MAX];

    /* proto_start logged why; a sandbox step may succeed later (a rootfs
     * back in place): try again, at the slowest pace. */
    if (gen_in_use(g) && g->pid == 0 && proto_start(g, reason, sizeof(reason)) < 0)
        wr_timer_set(loop, &g->restart, WR_RESTART_MAX_MS);
}

/* The other generations whose host mounts g may share (chroot rootfs). */
static void sb_peers(wr_gen_t *g)
{
    const wr_sb_conf_t *c = &g->spec.sb;
    const wr_sb_run_t **v;
    size_t n = 0;

    g->sb.peers = NULL;
    g->sb.npeers = 0;
    if (c->rootfs == NULL || (c->clone_flags & CLONE_NEWNS))
        return;
    for (wr_gen_t *o = g->m->gens; o; o = o->next)
        n++;
    v = calloc(n, sizeof(*v));
    if (v == NULL)
        return;             /* then nothing is shared: stacked, logged at release */
    n = 0;
    for (wr_gen_t *o = g->m->gens; o; o = o->next)
        if (o != g && o->spec.sb.rootfs && o->sb.nhost_mnt > 0
            && strcmp(o->spec.sb.rootfs, c->rootfs) == 0)
            v[n++] = &o->sb;
    g->sb.peers = v;
    g->sb.npeers = n;
}

static void sb_peers_done(wr_gen_t *g)
{
    free((void *) g->sb.peers);
    g->sb.peers = NULL;
    g->sb.npeers = 0;
}

/* A cgroup warrend made is removed with the last generation in it: while
 * another one still uses the same directory, it is that one's to remove. */
static void sb_cgroup_handover(wr_gen_t *g)
{
    if (!g->sb.cgroup_made || g->sb.cgroup_dir == NULL)
        return;
    for (wr_gen_t *o = g->m->gens; o; o = o->next) {
        if (o != g && o->sb.cgroup_dir && strcmp(o->sb.cgroup_dir, g->sb.cgroup_dir) == 0) {
            o->sb.cgroup_made = 1;
            g->sb.cgroup_made = 0;
            return;
        }
    }
}

/* fork(), or with isolation clone3() into the namespaces and cgroup. */
static pid_t proto_fork(wr_gen_t *g, char *reason, size_t rlen)
{
    wr_sb_err_t err;
    pid_t pid;

    if (!g->spec.sb.on) {
        pid = fork();
        if (pid < 0)
            snprintf(reason, rlen, "fork(prototype) failed: %s", strerror(errno));
        return pid;
    }
    sb_peers(g);
    if (wr_sb_prepare(&g->spec.sb, &g->sb, g->spec.executable, !g->spec.runtime, &err) < 0) {
        sb_peers_done(g);
        snprintf(reason, rlen, "%s", err.text);
        return -1;
    }
    sb_peers_done(g);
    pid = wr_sb_clone(&g->spec.sb, &g->sb, g->spec.host_uid, g->spec.host_gid, &err);
    if (pid < 0)
        snprintf(reason, rlen, "%s", err.text);
    if (pid != 0)
        wr_sb_started(&g->sb);      /* the prototype has its copies */
    return pid;
}

static int proto_start(wr_gen_t *g, char *reason, size_t rlen)
{
    wr_main_t *m = g->m;
    int fds[2];
    pid_t pid, parent = getpid();

    if (wr_chan_pair(fds) < 0) {
        snprintf(reason, rlen, "socketpair(prototype channel) failed: %s", strerror(errno));
        return -1;
    }
    pid = proto_fork(g, reason, rlen);
    if (pid < 0) {
        wr_log(WR_LOG_ERR, "app \"%s\": %s", g->spec.name, reason);
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (pid == 0) {
        sigset_t none;
        close(fds[0]);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        /* In its own pid namespace its parent is pid 0 to it. */
        wr_proto_main(&g->spec, g->spec.sb.on ? &g->sb : NULL, fds[1],
                      (g->spec.sb.clone_flags & CLONE_NEWPID) ? 0 : parent);
    }
    close(fds[1]);
    g->pid = pid;
    g->started = wr_ev_now();
    g->chan.on_msg = proto_msg;
    g->chan.on_close = proto_chan_closed;
    g->chan.data = g;
    if (wr_chan_open(&g->chan, &m->loop, fds[0]) < 0) {
        close(fds[0]);
        kill(pid, SIGKILL);
        return 0;          /* reaped later, as any prototype death */
    }
    g->chan_open = 1;
    wr_log(WR_LOG_INFO, "app \"%s\" generation %u prototype %d started as uid %u gid %u",
           g->spec.name, g->spec.gen, (int) pid, (unsigned) g->spec.uid,
           (unsigned) g->spec.gid);
    gen_fill(g);
    return 0;
}

/* Once for all apps: main's seccomp program. */
static int seccomp_ready(wr_gen_t *g, char *reason, size_t rlen)
{
    wr_main_t *m = g->m;
    wr_app_spec_t *s = &g->spec;
    wr_sb_err_t err;

    if (!s->sb.on)
        return 0;
    if (s->sb.seccomp && m->seccomp.insns == NULL && wr_sb_seccomp_build(&m->seccomp, &err) < 0)
        goto fail;
    g->sb.filter = s->sb.seccomp ? &m->seccomp : NULL;
    return 0;
fail:
    snprintf(reason, rlen, "Application \"%s\" could not start: %s.", s->name, err.text);
    wr_log(WR_LOG_ERR, "%s", reason);
    return -1;
}

static wr_gen_t *gen_new(wr_main_t *m, const char *name, json_t *app, int role,
                         char *reason, size_t rlen)
{
    wr_gen_t *g;
    uint32_t id;
    wr_app_spec_t spec;
    char why[WR_GEN_REASON_MAX] = "";

    if (++m->next_gen == 0)
        m->next_gen = 1;
    id = m->next_gen;
    if (wr_app_spec_build(&spec, name, app, id, m->uid, m->gid, m->runtimes, reason, rlen) < 0)
        return NULL;
    g = calloc(1, sizeof(*g));
    if (g == NULL) {
        wr_app_spec_free(&spec);
        snprintf(reason, rlen, "Out of memory.");
        return NULL;
    }
    g->m = m;
    g->spec = spec;
    g->app = json_incref(app);
    g->role = role;
    g->ready = !spec.dynamic && spec.spare == 0;    /* "processes": 0 */
    g->told = -1;
    g->restart.cb = proto_restart_cb;
    g->restart.data = g;
    g->fill.cb = fill_cb;
    g->fill.data = g;
    wr_sb_run_init(&g->sb);
    g->next = m->gens;
    m->gens = g;
    if (seccomp_ready(g, reason, rlen) < 0 || proto_start(g, why, sizeof(why)) < 0) {
        if (why[0])
            snprintf(reason, rlen, "Application \"%s\" could not start: %s.", name, why);
        g->role = GEN_DEAD;
        gen_free(g);
        return NULL;
    }
    return g;
}

static void gen_free(wr_gen_t *g)
{
    wr_main_t *m = g->m;

    for (wr_gen_t **pp = &m->gens; *pp; pp = &(*pp)->next) {
        if (*pp == g) {
            *pp = g->next;
            break;
        }
    }
    for (size_t i = 0; i < g->nslots; i++) {
        slot_reset(g->slots[i]);
        wr_ev_retire(&m->loop, &g->slots[i]->ev, g->slots[i]);
    }
    free(g->slots);
    wr_timer_cancel(&m->loop, &g->restart);
    wr_timer_cancel(&m->loop, &g->drain);
    wr_timer_cancel(&m->loop, &g->fill);
    if (g->chan_open)
        wr_chan_close(&g->chan);
    wr_ev_retire(&m->loop, &g->chan.ev, NULL);
    json_decref(g->app);
    if (g->spec.sb.on) {
        sb_cgroup_handover(g);
        sb_peers(g);
        wr_sb_release(&g->spec.sb, &g->sb);
        sb_peers_done(g);
    }
    wr_app_spec_free(&g->spec);
    wr_ev_defer_free(&m->loop, g);
}

static void drain_timeout(wr_ev_loop_t *loop, wr_timer_t *t)
{
    wr_gen_t *g = t->data;

    (void) loop;
    if (g->pid > 0) {
        wr_log(WR_LOG_WARN, "app \"%s\" generation %u: its processes did not exit %d ms "
               "after its last request; killing them", g->spec.name, g->spec.gen,
               WR_APP_DRAIN_GRACE_MS);
        kill(-g->pid, SIGKILL);
    }
}

/* Does the router still hold a channel of g (a request in flight)? */
static int gen_router_holds(wr_gen_t *g)
{
    if (router_gone(g->m))
        return 0;
    for (size_t i = 0; i < g->nslots; i++)
        if (g->slots[i]->state == W_UP && !g->slots[i]->released)
            return 1;
    return 0;
}

/* A retired generation is killed only once the router holds none of its
 * workers, so a reload drops no request however long it runs (as in
 * Unit; limits.timeout bounds one where it is set), and only if its
 * processes have still not exited WR_APP_DRAIN_GRACE_MS later. */
static void gen_drain_check(wr_gen_t *g)
{
    if (g->role != GEN_DEAD || g->pid == 0 || g->drain_armed || gen_router_holds(g))
        return;
    g->drain_armed = 1;
    g->drain.cb = drain_timeout;
    g->drain.data = g;
    wr_timer_set(&g->m->loop, &g->drain, WR_APP_DRAIN_GRACE_MS);
}

/* No more work for g: the router lets go of its workers, the prototype
 * ends once they have exited (or is killed after the drain grace). */
static void gen_retire(wr_gen_t *g, int now)
{
    wr_main_t *m = g->m;
    uint32_t id = g->spec.gen;

    g->role = GEN_DEAD;
    wr_log(WR_LOG_INFO, "app \"%s\" generation %u retired", g->spec.name, id);
    if (g->forwarded && m->child[WR_ROLE_ROUTER].pid > 0)
        wr_chan_send(&m->child[WR_ROLE_ROUTER].chan, WR_MSG_APP_RETIRE, 0, &id, sizeof(id), -1);
    wr_timer_cancel(&m->loop, &g->fill);
    g->demand = 0;
    for (size_t i = 0; i < g->nslots; i++) {
        wr_slot_t *s = g->slots[i];
        if (s->state == W_HELLO || s->state == W_SPAWNING) {
            slot_close_fd(s);
            s->state = W_DYING;
            kill_worker(g, s->pid);
        }
    }
    wr_timer_cancel(&m->loop, &g->restart);
    if (g->pid == 0) {
        gen_free(g);
        return;
    }
    if (now) {
        kill(-g->pid, SIGKILL);
        return;
    }
    kill(g->pid, SIGTERM);
    gen_drain_check(g);
}

/* ---- what apply.c and children.c call ---- */

static wr_gen_t *find(wr_main_t *m, const char *name, int role)
{
    for (wr_gen_t *g = m->gens; g; g = g->next)
        if (g->role == role && strcmp(g->spec.name, name) == 0)
            return g;
    return NULL;
}

void wr_apps_start_running(wr_main_t *m)
{
    json_t *apps = json_object_get(m->running, "applications");
    const char *name;
    json_t *app;

    json_object_foreach(apps, name, app) {
        char reason[WR_GEN_REASON_MAX];
        if (gen_new(m, name, app, GEN_LIVE, reason, sizeof(reason)) == NULL)
            wr_log(WR_LOG_ERR, "cannot start the saved application: %s", reason);
    }
}

int wr_apps_prepare(wr_main_t *m, json_t *conf, const char *restart, char *reason,
                    size_t rlen)
{
    json_t *apps = json_object_get(conf, "applications");
    const char *name;
    json_t *app;

    json_object_foreach(apps, name, app) {
        wr_gen_t *live = find(m, name, GEN_LIVE);
        if (live && json_equal(live->app, app)
            && (restart == NULL || strcmp(restart, name) != 0))
            continue;
        if (gen_new(m, name, app, GEN_NEW, reason, rlen) == NULL)
            return -1;
    }
    return 0;
}

int wr_apps_pending(wr_main_t *m)
{
    int n = 0;

    for (wr_gen_t *g = m->gens; g; g = g->next)
        n += g->role == GEN_NEW && !g->ready;
    return n;
}

void wr_apps_commit(wr_main_t *m)
{
    json_t *apps = json_object_get(m->running, "applications");
    wr_gen_t *g, *next;

    /* m->running is the new config already. */
    for (g = m->gens; g; g = next) {
        next = g->next;
        if (g->role == GEN_LIVE
            && (json_object_get(apps, g->spec.name) == NULL || find(m, g->spec.name, GEN_NEW)))
            gen_retire(g, 0);
    }
    for (g = m->gens; g; g = g->next)
        if (g->role == GEN_NEW)
            g->role = GEN_LIVE;
}

void wr_apps_abort(wr_main_t *m)
{
    wr_gen_t *g, *next;

    for (g = m->gens; g; g = next) {
        next = g->next;
        if (g->role == GEN_NEW)
            gen_retire(g, 1);
    }
}

/* {"app": generation} for conf: the NEW generation of an app if the apply
 * started one, else its LIVE one. */
void wr_apps_send_map(wr_main_t *m, json_t *conf)
{
    json_t *apps = json_object_get(conf, "applications");
    json_t *map = json_object();
    const char *name;
    json_t *app;
    char *text;

    if (map == NULL)
        return;
    json_object_foreach(apps, name, app) {
        wr_gen_t *g = find(m, name, GEN_NEW);
        if (g == NULL)
            g = find(m, name, GEN_LIVE);
        if (g)
            json_object_set_new(map, name, json_integer(g->spec.gen));
    }
    text = json_dumps(map, JSON_COMPACT);
    json_decref(map);
    if (text == NULL)
        return;
    wr_chan_send(&m->child[WR_ROLE_ROUTER].chan, WR_MSG_APP_MAP, 0, text, strlen(text), -1);
    free(text);
}

int wr_apps_reaped(wr_main_t *m, pid_t pid, int status)
{
    wr_gen_t *g;
    char why[64];
    uint64_t up;

    for (g = m->gens; g; g = g->next)
        if (g->pid == pid)
            break;
    if (g == NULL)
        return 0;
    exit_text(status, why, sizeof(why));
    up = wr_ev_now() - g->started;
    g->pid = 0;
    if (g->chan_open) {
        /* Reaped before its channel was read: why it failed (its last
         * message) may still wait there; the rest is moot now. */
        g->last_words[0] = '\0';
        g->chan.on_msg = proto_last_words;
        wr_chan_drain(&g->chan);
        wr_chan_close(&g->chan);
        g->chan_open = 0;
    }
    for (size_t i = 0; i < g->nslots; i++)
        slot_reset(g->slots[i]);
    gen_tell(g, 0);
    if (!gen_in_use(g)) {
        wr_log(WR_LOG_INFO, "app \"%s\" generation %u prototype %d %s", g->spec.name,
               g->spec.gen, (int) pid, why);
        if (g->role == GEN_DEAD)
            gen_free(g);
        return 1;
    }
    if (g->role == GEN_NEW && !g->ready) {
        char full[128];
        snprintf(full, sizeof(full), "its prototype %s", why);
        gen_fail(g, g->last_words[0] ? g->last_words : full);
        return 1;
    }
    g->backoff = wr_backoff_next(g->backoff, up);
    wr_log(WR_LOG_ERR, "app \"%s\" generation %u prototype %d %s; restarting it in %llu ms",
           g->spec.name, g->spec.gen, (int) pid, why, (unsigned long long) g->backoff);
    if (g->backoff == 0) {
        char reason[WR_GEN_REASON_MAX];
        if (proto_start(g, reason, sizeof(reason)) < 0)
            wr_timer_set(&m->loop, &g->restart, WR_RESTART_MAX_MS);
    } else
        wr_timer_set(&m->loop, &g->restart, g->backoff);
    return 1;
}

/* ---- what the router asks ---- */

static wr_gen_t *find_gen(wr_main_t *m, uint32_t id)
{
    for (wr_gen_t *g = m->gens; g; g = g->next)
        if (g->spec.gen == id)
            return g;
    return NULL;
}

/* Requests wait: count more workers, within max (gen_fill). Always
 * answered, so the router knows its ask was heard. */
static void on_want(wr_main_t *m, const wr_msg_t *msg)
{
    wr_msg_want_t w;
    wr_gen_t *g;

    if (msg->len != sizeof(w))
        return;
    memcpy(&w, msg->data, sizeof(w));
    g = find_gen(m, w.gen);
    if (g == NULL || !gen_in_use(g))
        return;                   /* retired: the router hears RETIRE */
    if (g->spec.dynamic && w.count > (uint32_t) g->demand)
        g->demand = w.count > (uint32_t) g->spec.max ? g->spec.max : (int) w.count;
    gen_fill(g);
    gen_tell(g, 1);
}

/* limits.timeout: the router cannot signal a worker of another user;
 * main can, and knows its pid. */
static void on_kill(wr_main_t *m, const wr_msg_t *msg)
{
    wr_msg_worker_t w;
    wr_gen_t *g;
    wr_slot_t *s;

    if (msg->len != sizeof(w))
        return;
    memcpy(&w, msg->data, sizeof(w));
    g = find_gen(m, w.gen);
    s = g ? slot_of(g, w.worker) : NULL;
    if (s == NULL || s->pid <= 0)
        return;                   /* already gone */
    s->hung = 1;
    wr_log(WR_LOG_WARN, "app \"%s\" generation %u worker %u (pid %d) did not answer "
           "in time; killing it", g->spec.name, g->spec.gen, s->worker, (int) s->pid);
    if (kill_worker(g, s->pid) < 0 && errno != ESRCH)
        wr_log(WR_LOG_ERR, "kill(worker %d of \"%s\", SIGKILL) failed: %s", (int) s->pid,
               g->spec.name, strerror(errno));
}

/* The router is done with a worker and hands its channel back: closing
 * it here makes the worker exit, an exit main now expects. A worker
 * that had closed its end already left on its own: not released. */
static void on_release(wr_main_t *m, wr_msg_t *msg)
{
    wr_msg_worker_t w;
    wr_gen_t *g;
    wr_slot_t *s;

    if (msg->len != sizeof(w) || msg->fd < 0)
        return;                   /* the fd, if any, is closed by the caller */
    memcpy(&w, msg->data, sizeof(w));
    g = find_gen(m, w.gen);
    s = g ? slot_of(g, w.worker) : NULL;
    if (s != NULL && s->state == W_UP && !peer_gone(msg->fd))
        s->released = 1;
    close(msg->fd);
    msg->fd = -1;
    if (g != NULL)
        gen_drain_check(g);
}

/* The router's channels are gone with it: nothing of a retired generation
 * is in flight any more. */
void wr_apps_router_lost(wr_main_t *m)
{
    for (wr_gen_t *g = m->gens; g; g = g->next)
        gen_drain_check(g);
}

void wr_apps_router_msg(wr_main_t *m, wr_msg_t *msg)
{
    if (msg->type == WR_MSG_APP_WANT)
        on_want(m, msg);
    else if (msg->type == WR_MSG_APP_KILL)
        on_kill(m, msg);
    else if (msg->type == WR_MSG_APP_RELEASE)
        on_release(m, msg);
}

/* group: the prototype's whole process group (workers included). */
void wr_apps_signal(wr_main_t *m, int sig, int group)
{
    for (wr_gen_t *g = m->gens; g; g = g->next) {
        wr_timer_cancel(&m->loop, &g->restart);
        wr_timer_cancel(&m->loop, &g->fill);
        if (g->pid > 0)
            kill(group ? -g->pid : g->pid, sig);
    }
}

int wr_apps_alive(wr_main_t *m)
{
    int n = 0;

    for (wr_gen_t *g = m->gens; g; g = g->next)
        n += g->pid > 0;
    return n;
}

int wr_apps_owns(wr_main_t *m, pid_t pid)
{
    for (wr_gen_t *g = m->gens; g; g = g->next)
        if (g->pid == pid)
            return 1;
    return 0;
}

void wr_apps_send_log(wr_main_t *m)
{
    for (wr_gen_t *g = m->gens; g; g = g->next)
        if (g->pid > 0 && g->chan_open)
            wr_chan_send(&g->chan, WR_MSG_LOG_FD, 0, NULL, 0, wr_proc.log_fd);
}

void wr_apps_free(wr_main_t *m)
{
    while (m->gens) {
        wr_gen_t *g = m->gens;
        if (g->pid > 0)
            kill(-g->pid, SIGKILL);
        m->gens = g->next;
        for (size_t i = 0; i < g->nslots; i++) {
            if (g->slots[i]->ev.fd >= 0)
                close(g->slots[i]->ev.fd);
            free(g->slots[i]);
        }
        free(g->slots);
        if (g->chan_open)
            wr_chan_close(&g->chan);
        json_decref(g->app);
        if (g->spec.sb.on) {
            sb_cgroup_handover(g);
            sb_peers(g);
            wr_sb_release(&g->spec.sb, &g->sb);
            sb_peers_done(g);
        }
        wr_app_spec_free(&g->spec);
        free(g);
    }
    wr_sb_seccomp_free(&m->seccomp);
    /* main is leaving: what the applications left behind goes now, and
     * what that leaves behind in turn (adopted by main as each one dies),
     * rather than to init. */
    while (wr_orphans_kill(m) > 0)
        while (waitpid(-1, NULL, 0) < 0 && errno == EINTR)
            ;
}
