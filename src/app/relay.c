/*
 * Worker stderr into the error log, one escaped, labelled entry per line
 * (relay.h says why).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/relay.h"
#include "core/log.h"

#define WR_RELAY_READ   4096         /* bytes read at a time */
#define WR_RELAY_ESC    4            /* "\xHH": the longest form of one byte */
#define WR_ASCII_DEL    0x7f

/* The entry collected so far, then start afresh. more: it is a piece of
 * a longer line, the rest follows. A blank line is not worth an entry. */
static void emit(wr_relay_t *rl, int more)
{
    static const char *const kind[] = { "stderr", "stderr (continued)" };

    if (rl->len == 0 && !rl->cont)
        return;
    rl->out[rl->len] = '\0';
    if (rl->worker != 0)
        wr_log(WR_LOG_NOTICE, "app \"%s\" worker %u (pid %d) %s: %s", rl->app,
               rl->worker, (int) rl->pid, kind[rl->cont], rl->out);
    else
        wr_log(WR_LOG_NOTICE, "app \"%s\" zygote (pid %d) %s: %s", rl->app,
               (int) rl->pid, kind[rl->cont], rl->out);
    if (rl->len > 0) {
        size_t n = rl->len < sizeof(rl->done) - 1 ? rl->len : sizeof(rl->done) - 1;
        memcpy(rl->done, rl->out, n);     /* cut short: it only explains an exit */
        rl->done[n] = '\0';
    }
    rl->len = 0;
    rl->cont = more;
}

/* One byte of the app's text, escaped when it is a control byte. */
static void put(wr_relay_t *rl, unsigned char c)
{
    int control = c < ' ' || c == WR_ASCII_DEL;

    if (rl->len + (control ? WR_RELAY_ESC : 1) > WR_RELAY_ENTRY_MAX)
        emit(rl, 1);
    if (control) {
        snprintf(rl->out + rl->len, WR_RELAY_ESC + 1, "\\x%02x", c);
        rl->len += WR_RELAY_ESC;
    } else {
        rl->out[rl->len++] = (char) c;
    }
}

static void take(wr_relay_t *rl, const char *buf, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (buf[i] == '\n')
            emit(rl, 0);
        else
            put(rl, (unsigned char) buf[i]);
    }
}

int wr_relay_drain(wr_relay_t *rl)
{
    char buf[WR_RELAY_READ];
    ssize_t n;

    while ((n = read(rl->ev.fd, buf, sizeof(buf))) > 0)
        take(rl, buf, (size_t) n);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 1;
    if (n < 0)
        wr_log_sys(WR_LOG_WARN, "read", "worker stderr");
    return 0;
}

void wr_relay_flush(wr_relay_t *rl)
{
    if (rl->ev.fd >= 0)
        wr_relay_drain(rl);       /* it is dead: all it wrote is there */
    emit(rl, 0);
}

static void on_relay(wr_ev_loop_t *loop, wr_ev_t *ev, uint32_t events)
{
    wr_relay_t *rl = ev->data;

    if (wr_relay_drain(rl) == 0) {      /* EOF: the process is gone */
        wr_ev_del(loop, ev);
        close(ev->fd);
        ev->fd = -1;
    }
}

wr_relay_t *wr_relay_new(wr_ev_loop_t *loop, const char *app, uint32_t worker,
                         int errp[2])
{
    wr_relay_t *rl = calloc(1, sizeof(*rl));

    if (rl == NULL) {
        wr_log(WR_LOG_CRIT, "app \"%s\": out of memory for a stderr relay", app);
        return NULL;
    }
    if (pipe2(errp, O_CLOEXEC) < 0) {
        wr_log_sys(WR_LOG_WARN, "pipe2", "worker stderr");
        free(rl);
        return NULL;
    }
    if (fcntl(errp[0], F_SETFL, O_NONBLOCK) < 0)
        wr_log_sys(WR_LOG_WARN, "fcntl(O_NONBLOCK)", "worker stderr");
    rl->app = app;
    rl->worker = worker;
    rl->ev.fd = errp[0];
    rl->ev.cb = on_relay;
    rl->ev.data = rl;
    if (wr_ev_add(loop, &rl->ev, EPOLLIN) < 0) {
        wr_log_sys(WR_LOG_WARN, "epoll_ctl", "worker stderr");
        close(errp[0]);
        close(errp[1]);
        free(rl);
        return NULL;
    }
    return rl;
}

/* Reaping happens in a signal callback: an event for this relay may still
 * wait in the same epoll batch, so it is retired (skipped, freed after). */
void wr_relay_free(wr_ev_loop_t *loop, wr_relay_t *rl)
{
    int fd;

    if (rl == NULL)
        return;
    wr_relay_flush(rl);
    fd = rl->ev.fd;
    wr_ev_retire(loop, &rl->ev, rl);
    if (fd >= 0)
        close(fd);
}
