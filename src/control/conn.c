/*
 * Control API connections: read one request (head and body, bounded), hand it
 * to the API, write the response, close. One request per connection, as
 * Unit's control socket does (Connection: close).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>

#include "conf/limits.h"
#include "control/internal.h"
#include "core/log.h"

static void conn_event(wr_ev_loop_t *loop, wr_ev_t *ev, uint32_t events);

static void conn_timeout(wr_ev_loop_t *loop, wr_timer_t *t)
{
    wr_conn_t *c = t->data;

    wr_log(WR_LOG_INFO, "control connection timed out");
    wr_conn_close(c);
}

static int peer_allowed(const wr_controller_args_t *a, int fd)
{
    struct ucred cr;
    socklen_t len = sizeof(cr);

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0) {
        wr_log_sys(WR_LOG_ERR, "getsockopt", "SO_PEERCRED");
        return 0;
    }
    for (int i = 0; i < a->npeer_uid; i++)
        if (cr.uid == a->peer_uid[i])
            return 1;
    if (a->peer_gid_set && cr.gid == a->peer_gid)
        return 1;
    wr_log(WR_LOG_WARN, "control connection from pid %d uid %u refused",
           (int) cr.pid, (unsigned) cr.uid);
    return 0;
}

static void conn_new(wr_ctl_t *ctl, int fd)
{
    wr_conn_t *c = calloc(1, sizeof(*c));

    if (c == NULL) {
        wr_log(WR_LOG_ERR, "out of memory for a control connection");
        close(fd);
        return;
    }
    c->ctl = ctl;
    c->ev.fd = fd;
    c->ev.cb = conn_event;
    c->ev.data = c;
    c->timer.cb = conn_timeout;
    c->timer.data = c;
    c->state = WR_CONN_READ;
    if (wr_ev_add(&ctl->loop, &c->ev, EPOLLIN | EPOLLRDHUP) < 0) {
        close(fd);
        free(c);
        return;
    }
    c->polled = 1;
    c->next = ctl->conns;
    if (ctl->conns)
        ctl->conns->prev = c;
    ctl->conns = c;
    wr_timer_set(&ctl->loop, &c->timer, WR_CONTROL_READ_TIMEOUT_MS);
}

void wr_conn_accept(wr_ctl_t *ctl)
{
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int fd = accept4(ctl->listen.fd, (struct sockaddr *) &ss, &len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                wr_log_sys(WR_LOG_ERR, "accept4", "control socket");
            return;
        }
        if (ss.ss_family == AF_UNIX && !peer_allowed(ctl->args, fd)) {
            close(fd);
            continue;
        }
        conn_new(ctl, fd);
    }
}

void wr_conn_close(wr_conn_t *c)
{
    wr_ctl_t *ctl = c->ctl;

    wr_timer_cancel(&ctl->loop, &c->timer);
    if (c->polled)
        wr_ev_del(&ctl->loop, &c->ev);
    c->ev.cb = NULL;                /* an event still in this batch is skipped */
    close(c->ev.fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        ctl->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    json_decref(c->candidate);
    free(c->buf);
    free(c->method);
    free(c->path);
    free(c->item);
    wr_ev_defer_free(&ctl->loop, c);
}

wr_conn_t *wr_conn_find(wr_ctl_t *ctl, uint32_t id)
{
    for (wr_conn_t *c = ctl->conns; c; c = c->next)
        if (c->id == id && id != 0)
            return c;
    return NULL;
}

/* ---- writing ---- */

static void conn_write(wr_conn_t *c)
{
    while (c->sent < c->len) {
        ssize_t n = send(c->ev.fd, c->buf + c->sent, c->len - c->sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN)
                return;
            if (errno == EINTR)
                continue;
            wr_conn_close(c);      /* the client went away: nothing to tell */
            return;
        }
        c->sent += (size_t) n;
    }
    if (!c->linger) {
        wr_conn_close(c);
        return;
    }
    /* Closing with unread input would reset the connection and could
     * destroy the answer in flight: half-close, drain briefly, then close. */
    shutdown(c->ev.fd, SHUT_WR);
    c->state = WR_CONN_LINGER;
    wr_ev_mod(&c->ctl->loop, &c->ev, EPOLLIN | EPOLLRDHUP);
    wr_timer_set(&c->ctl->loop, &c->timer, WR_CONTROL_LINGER_MS);
}

static void conn_drain(wr_conn_t *c)
{
    char buf[WR_CONTROL_READ_CHUNK];
    ssize_t n;

    while ((n = recv(c->ev.fd, buf, sizeof(buf), 0)) > 0)
        ;
    if (n == 0 || (errno != EAGAIN && errno != EINTR))
        wr_conn_close(c);
}

void wr_conn_respond_text(wr_conn_t *c, int status, const char *ctype, const char *body,
                          size_t len)
{
    char date[64], head[512];
    time_t now = time(NULL);
    struct tm tm;
    int hlen;

    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    hlen = snprintf(head, sizeof(head),
                    "HTTP/1.1 %d %s\r\nServer: Warren/%s\r\nDate: %s\r\n"
                    "Content-Type: %s\r\nContent-Length: %zu\r\n"
                    "Connection: close\r\n\r\n",
                    status, wr_http_reason(status), WR_VERSION, date, ctype, len);
    free(c->buf);
    c->cap = (size_t) hlen + len;
    c->buf = malloc(c->cap);
    if (c->buf == NULL || body == NULL) {
        wr_conn_close(c);
        return;
    }
    memcpy(c->buf, head, (size_t) hlen);
    memcpy(c->buf + hlen, body, len);
    c->len = c->cap;
    c->sent = 0;

    c->state = WR_CONN_WRITE;
    wr_timer_set(&c->ctl->loop, &c->timer, WR_CONTROL_WRITE_TIMEOUT_MS);
    if (c->polled)
        wr_ev_mod(&c->ctl->loop, &c->ev, EPOLLOUT);
    else if (wr_ev_add(&c->ctl->loop, &c->ev, EPOLLOUT) == 0)
        c->polled = 1;
    conn_write(c);
}

void wr_conn_respond(wr_conn_t *c, int status, json_t *body)
{
    char *json = json_dumps(body, JSON_INDENT(4) | JSON_ENCODE_ANY);
    size_t jlen = json ? strlen(json) : 0;
    char *text = json ? realloc(json, jlen + 2) : NULL;

    json_decref(body);
    if (text == NULL) {
        free(json);
        wr_conn_close(c);
        return;
    }
    text[jlen] = '\n';                  /* as Unit: the document ends a line */
    wr_conn_respond_text(c, status, "application/json", text, jlen + 1);
    free(text);
}

void wr_conn_respond_error(wr_conn_t *c, const wr_conf_error_t *e)
{
    wr_conn_respond(c, e->status ? e->status : 500, wr_conf_error_json(e));
}

/* An HTTP-level failure (bad request, too large): answer and close. */
static void respond_http_error(wr_conn_t *c, int status, const char *detail)
{
    wr_conf_error_t e;

    wr_conf_error_init(&e);
    wr_conf_error_set(&e, status, wr_http_reason(status), NULL, "%s", detail);
    wr_conn_respond_error(c, &e);
    wr_conf_error_clear(&e);
}

/* ---- reading ---- */

static int buf_reserve(wr_conn_t *c, size_t more)
{
    if (c->len + more <= c->cap)
        return 0;
    size_t cap = c->cap ? c->cap : WR_CONTROL_READ_CHUNK;
    while (cap < c->len + more)
        cap *= 2;
    char *b = realloc(c->buf, cap);
    if (b == NULL)
        return -1;
    c->buf = b;
    c->cap = cap;
    return 0;
}

/* The head is complete: keep what we need of it (pointers die on realloc). */
static int take_head(wr_conn_t *c, const wr_http_request_t *r)
{
    c->method = strndup(r->method, r->method_len);
    c->path = r->path ? strndup(r->path, r->path_len) : strdup("");
    if (c->method == NULL || c->path == NULL)
        return -1;
    if (r->chunked) {
        c->body_need = -1;
        wr_http_chunked_init(&c->chunked, WR_CONTROL_MAX_BODY);
    } else {
        c->body_need = r->content_length > 0 ? r->content_length : 0;
    }
    return 0;
}

/* 1 when the whole request is in, 0 for more, -status on failure. */
static int parse_more(wr_conn_t *c)
{
    if (c->head_len == 0) {
        wr_http_request_t r;
        wr_http_limits_t lim;
        long n;

        wr_http_limits_default(&lim);
        lim.header_buffer_size = WR_CONTROL_MAX_HEADER;
        lim.header_buffers = 1;
        n = wr_http_parse_request(&r, c->buf, c->len, &lim);
        if (n <= 0)
            return (int) n;
        if (r.content_length > WR_CONTROL_MAX_BODY)
            return -413;
        c->head_len = n;
        if (take_head(c, &r) < 0)
            return -500;
        c->body_len = 0;            /* decoded body bytes, at buf + head_len */
    }
    if (c->body_need >= 0) {
        if ((long long) (c->len - (size_t) c->head_len) < c->body_need)
            return 0;
        c->body_len = (size_t) c->body_need;
        return 1;
    }
    /* chunked: decode what arrived after the body decoded so far */
    size_t start = (size_t) c->head_len + c->body_len, consumed, out;
    int rc = wr_http_chunked_decode(&c->chunked, c->buf + start, c->len - start,
                                    &consumed, &out);
    c->body_len += out;
    c->len = start + out + (c->len - start - consumed);
    return rc;
}

static void conn_read(wr_conn_t *c)
{
    for (;;) {
        ssize_t n;
        int rc;

        if (buf_reserve(c, WR_CONTROL_READ_CHUNK) < 0) {
            wr_conn_close(c);
            return;
        }
        n = recv(c->ev.fd, c->buf + c->len, WR_CONTROL_READ_CHUNK, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            wr_conn_close(c);    /* closed before a whole request: no answer */
            return;
        }
        c->len += (size_t) n;
        rc = parse_more(c);
        if (rc < 0) {
            c->linger = 1;
            respond_http_error(c, -rc, rc == -413 ? "The request body is larger than "
                               "the control API accepts." : "The request could not be parsed.");
            return;
        }
        if (rc == 1) {
            /* Nothing more is read; stop watching until the answer is ready. */
            wr_ev_del(&c->ctl->loop, &c->ev);
            c->polled = 0;
            wr_timer_cancel(&c->ctl->loop, &c->timer);
            wr_api_handle(c);
            return;
        }
    }
}

static void conn_event(wr_ev_loop_t *loop, wr_ev_t *ev, uint32_t events)
{
    wr_conn_t *c = ev->data;

    if (c->state == WR_CONN_READ)
        conn_read(c);
    else if (c->state == WR_CONN_WRITE)
        conn_write(c);
    else if (c->state == WR_CONN_LINGER)
        conn_drain(c);
}
