/*
 * Event loop: one epoll instance per thread, callbacks on fd readiness, and
 * one-shot timers kept in a binary heap (millisecond resolution, monotonic).
 */
#ifndef WR_EV_H
#define WR_EV_H

#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>

typedef struct wr_ev_loop wr_ev_loop_t;
typedef struct wr_ev wr_ev_t;
typedef struct wr_timer wr_timer_t;

typedef void (*wr_ev_cb)(wr_ev_loop_t *loop, wr_ev_t *ev, uint32_t events);
typedef void (*wr_timer_cb)(wr_ev_loop_t *loop, wr_timer_t *t);

struct wr_ev {
    int       fd;           /* -1: an ev with no fd, only posted to */
    wr_ev_cb  cb;
    void     *data;
    uint32_t  posted;       /* events posted, not yet delivered */
    uint64_t  post_pass;    /* the pass that delivers them */
    struct wr_ev *post_prev, *post_next;
};

struct wr_timer {
    uint64_t     deadline;   /* ms, wr_ev_now() clock */
    wr_timer_cb  cb;
    void        *data;
    size_t       slot;       /* heap index + 1; 0 when not armed */
};

struct wr_ev_loop {
    int          epfd;
    int          stop;
    wr_timer_t **heap;
    size_t       nheap, cap;
    void       **retired;    /* freed once the current batch is done */
    size_t       nretired, capretired;
    wr_ev_t     *post_head, *post_tail; /* posted events, in order */
    uint64_t     pass;
};

#define WR_EV_BATCH  64      /* events taken per epoll_wait */

int      wr_ev_init(wr_ev_loop_t *loop);
void     wr_ev_free(wr_ev_loop_t *loop);
int      wr_ev_add(wr_ev_loop_t *loop, wr_ev_t *ev, uint32_t events);
int      wr_ev_mod(wr_ev_loop_t *loop, wr_ev_t *ev, uint32_t events);
void     wr_ev_del(wr_ev_loop_t *loop, wr_ev_t *ev);
/*
 * For an ev about to go away for good: remove it from epoll and mark it so
 * an event for it still waiting in the current batch is skipped; mem (the
 * struct holding ev, or NULL) is freed after the batch. Without this, a
 * callback that frees another ev's memory leaves a dangling pointer in the
 * batch.
 */
void     wr_ev_retire(wr_ev_loop_t *loop, wr_ev_t *ev, void *mem);
/*
 * Deliver events to ev's callback from the loop, after the current batch,
 * as if epoll had reported them: how a connection with no fd of its own (an
 * HTTP/2 stream's, router/h2.c) is woken. Posting again before delivery
 * adds to the events; a retired ev is never delivered.
 */
void     wr_ev_post(wr_ev_loop_t *loop, wr_ev_t *ev, uint32_t events);
/* free(mem) once the current batch is done. */
void     wr_ev_defer_free(wr_ev_loop_t *loop, void *mem);
/* Runs until loop->stop is set; returns 0, or -1 if epoll_wait fails. */
int      wr_ev_run(wr_ev_loop_t *loop);
uint64_t wr_ev_now(void);

/* Arm (or re-arm) t to fire once, ms from now. */
int      wr_timer_set(wr_ev_loop_t *loop, wr_timer_t *t, uint64_t ms);
void     wr_timer_cancel(wr_ev_loop_t *loop, wr_timer_t *t);

#endif
