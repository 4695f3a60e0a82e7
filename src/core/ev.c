#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/ev.h"
#include "core/log.h"

uint64_t wr_ev_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

int wr_ev_init(wr_ev_loop_t *loop)
{
    memset(loop, 0, sizeof(*loop));
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0) {
        wr_log_sys(WR_LOG_EMERG, "epoll_create1", NULL);
        return -1;
    }
    return 0;
}

static void free_retired(wr_ev_loop_t *loop)
{
    for (size_t i = 0; i < loop->nretired; i++)
        free(loop->retired[i]);
    loop->nretired = 0;
}

void wr_ev_free(wr_ev_loop_t *loop)
{
    if (loop->epfd >= 0)
        close(loop->epfd);
    free_retired(loop);
    free(loop->retired);
    free(loop->heap);
    memset(loop, 0, sizeof(*loop));
    loop->epfd = -1;
}

static int ev_ctl(wr_ev_loop_t *loop, int op, wr_ev_t *ev, uint32_t events)
{
    struct epoll_event e = { .events = events, .data.ptr = ev };

    if (epoll_ctl(loop->epfd, op, ev->fd, &e) < 0) {
        wr_log(WR_LOG_ALERT, "epoll_ctl(%d, fd %d) failed: %s", op, ev->fd, strerror(errno));
        return -1;
    }
    return 0;
}

int wr_ev_add(wr_ev_loop_t *loop, wr_ev_t *ev, uint32_t events)
{
    return ev_ctl(loop, EPOLL_CTL_ADD, ev, events);
}

int wr_ev_mod(wr_ev_loop_t *loop, wr_ev_t *ev, uint32_t events)
{
    return ev_ctl(loop, EPOLL_CTL_MOD, ev, events);
}

void wr_ev_del(wr_ev_loop_t *loop, wr_ev_t *ev)
{
    /* ENOENT/EBADF are harmless here: closing an fd removes it anyway. */
    epoll_ctl(loop->epfd, EPOLL_CTL_DEL, ev->fd, NULL);
}

static void unpost(wr_ev_loop_t *loop, wr_ev_t *ev)
{
    if (ev->posted == 0)
        return;
    if (ev->post_prev)
        ev->post_prev->post_next = ev->post_next;
    else
        loop->post_head = ev->post_next;
    if (ev->post_next)
        ev->post_next->post_prev = ev->post_prev;
    else
        loop->post_tail = ev->post_prev;
    ev->post_prev = ev->post_next = NULL;
    ev->posted = 0;
}

void wr_ev_post(wr_ev_loop_t *loop, wr_ev_t *ev, uint32_t events)
{
    if (events == 0 || ev->cb == NULL)
        return;
    if (ev->posted == 0) {
        ev->post_pass = loop->pass + 1;
        ev->post_prev = loop->post_tail;
        ev->post_next = NULL;
        if (loop->post_tail)
            loop->post_tail->post_next = ev;
        else
            loop->post_head = ev;
        loop->post_tail = ev;
    }
    ev->posted |= events;
}

/* Deliver what was posted before this pass began; what the callbacks post
 * waits for the next one (after an epoll_wait that does not block), so a
 * callback that posts to itself cannot starve the fds. */
static void run_posted(wr_ev_loop_t *loop)
{
    uint64_t pass = ++loop->pass;

    while (loop->post_head && loop->post_head->post_pass <= pass && !loop->stop) {
        wr_ev_t *ev = loop->post_head;
        uint32_t events = ev->posted;

        unpost(loop, ev);
        if (ev->cb)
            ev->cb(loop, ev, events);
    }
}

void wr_ev_retire(wr_ev_loop_t *loop, wr_ev_t *ev, void *mem)
{
    if (ev->fd >= 0)
        wr_ev_del(loop, ev);
    unpost(loop, ev);
    ev->cb = NULL;
    wr_ev_defer_free(loop, mem);
}

void wr_ev_defer_free(wr_ev_loop_t *loop, void *mem)
{
    if (mem == NULL)
        return;
    if (loop->nretired == loop->capretired) {
        size_t cap = loop->capretired ? loop->capretired * 2 : 16;
        void **v = realloc(loop->retired, cap * sizeof(*v));
        if (v == NULL) {
            /* Cannot defer: leak rather than risk a dangling pointer. */
            wr_log(WR_LOG_ALERT, "out of memory retiring an event");
            return;
        }
        loop->retired = v;
        loop->capretired = cap;
    }
    loop->retired[loop->nretired++] = mem;
}

/* ---- timers: min-heap on deadline ---- */

static void heap_place(wr_ev_loop_t *loop, size_t i, wr_timer_t *t)
{
    loop->heap[i] = t;
    t->slot = i + 1;
}

static void heap_up(wr_ev_loop_t *loop, size_t i)
{
    wr_timer_t *t = loop->heap[i];

    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (loop->heap[parent]->deadline <= t->deadline)
            break;
        heap_place(loop, i, loop->heap[parent]);
        i = parent;
    }
    heap_place(loop, i, t);
}

static void heap_down(wr_ev_loop_t *loop, size_t i)
{
    wr_timer_t *t = loop->heap[i];

    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= loop->nheap)
            break;
        if (child + 1 < loop->nheap
            && loop->heap[child + 1]->deadline < loop->heap[child]->deadline)
            child++;
        if (t->deadline <= loop->heap[child]->deadline)
            break;
        heap_place(loop, i, loop->heap[child]);
        i = child;
    }
    heap_place(loop, i, t);
}

void wr_timer_cancel(wr_ev_loop_t *loop, wr_timer_t *t)
{
    size_t i;
    wr_timer_t *last;

    if (t->slot == 0)
        return;
    i = t->slot - 1;
    t->slot = 0;
    last = loop->heap[--loop->nheap];
    if (i == loop->nheap)
        return;
    heap_place(loop, i, last);
    heap_down(loop, i);
    heap_up(loop, last->slot - 1);
}

int wr_timer_set(wr_ev_loop_t *loop, wr_timer_t *t, uint64_t ms)
{
    wr_timer_cancel(loop, t);
    if (loop->nheap == loop->cap) {
        size_t cap = loop->cap ? loop->cap * 2 : 16;
        wr_timer_t **h = realloc(loop->heap, cap * sizeof(*h));
        if (h == NULL) {
            wr_log(WR_LOG_ALERT, "out of memory arming a timer");
            return -1;
        }
        loop->heap = h;
        loop->cap = cap;
    }
    t->deadline = wr_ev_now() + ms;
    loop->heap[loop->nheap++] = t;
    heap_up(loop, loop->nheap - 1);
    return 0;
}

static int next_timeout(wr_ev_loop_t *loop)
{
    uint64_t now;

    if (loop->nheap == 0)
        return -1;
    now = wr_ev_now();
    if (loop->heap[0]->deadline <= now)
        return 0;
    return (int) (loop->heap[0]->deadline - now);
}

static void run_timers(wr_ev_loop_t *loop)
{
    uint64_t now = wr_ev_now();

    while (loop->nheap > 0 && loop->heap[0]->deadline <= now && !loop->stop) {
        wr_timer_t *t = loop->heap[0];
        wr_timer_cancel(loop, t);
        t->cb(loop, t);
    }
}

int wr_ev_run(wr_ev_loop_t *loop)
{
    struct epoll_event events[WR_EV_BATCH];

    while (!loop->stop) {
        int n = epoll_wait(loop->epfd, events, WR_EV_BATCH,
                           loop->post_head ? 0 : next_timeout(loop));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            wr_log_sys(WR_LOG_ALERT, "epoll_wait", NULL);
            return -1;
        }
        for (int i = 0; i < n && !loop->stop; i++) {
            wr_ev_t *ev = events[i].data.ptr;
            if (ev->cb)                      /* NULL: retired in this batch */
                ev->cb(loop, ev, events[i].events);
        }
        run_posted(loop);
        free_retired(loop);
        run_timers(loop);
        free_retired(loop);
    }
    return 0;
}
