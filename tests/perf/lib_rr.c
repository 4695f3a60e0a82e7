/*
 * libwarren request/response micro-benchmark (not part of `make test`):
 * a router thread plays proto.h by hand on one end of a SOCK_SEQPACKET
 * socketpair; the worker side runs libwarren. Each request is a bodiless
 * GET (REQ_HEAD with WR_APP_F_END); each response is one datagram (head,
 * 5 body bytes, end). It prints wall time per request and the worker
 * threads' CPU time per request, which is what the library costs.
 *
 *   cc -O2 -std=c17 -D_GNU_SOURCE -Isrc -Iinclude tests/perf/lib_rr.c \
 *      build/libwarren.a -lpthread -o build/lib_rr
 *   build/lib_rr [requests] [depth] [threads]
 *
 * depth: requests the router keeps in flight (1 = ping-pong; up to 8 open
 * streams, as a router with "pipeline" does); threads: worker threads
 * (warren_init_fd_threads), each accepting and answering.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "warren.h"
#include "lib/proto.h"

enum {
    DEF_REQUESTS = 200000,
    DEF_DEPTH    = 1,
    NFIXED       = 12,
    HEAD_MAX     = 512,
    MSG_MAX      = sizeof(wr_app_hdr_t) + WR_APP_MAX_PAYLOAD,
    NS_PER_S     = 1000000000,
    US_PER_S     = 1000000,
};

static unsigned char head[HEAD_MAX];
static size_t head_len;
static long worker_cpu_ns;
static pthread_mutex_t cpu_lock = PTHREAD_MUTEX_INITIALIZER;

static void put(const char *s)
{
    uint32_t n = (uint32_t) strlen(s);

    memcpy(head + head_len, &n, sizeof(n));
    memcpy(head + head_len + sizeof(n), s, n);
    head_len += sizeof(n) + n;
}

static void make_head(void)
{
    static const char *fixed[NFIXED] = {
        "GET", "/", "/", "", "HTTP/1.1", "192.0.2.7", "41000", "127.0.0.1",
        "8080", "example.com", "http", "",
    };
    uint32_t zero = 0;

    for (int i = 0; i < NFIXED; i++)
        put(fixed[i]);
    memcpy(head + head_len, &zero, sizeof(zero));
    head_len += sizeof(zero);
}

static void send_req(int fd, uint32_t stream)
{
    unsigned char buf[sizeof(wr_app_hdr_t) + HEAD_MAX];
    wr_app_hdr_t h = { .type = WR_APP_REQ_HEAD, .flags = WR_APP_F_END,
                       .stream = stream, .len = (uint32_t) head_len };

    memcpy(buf, &h, sizeof(h));
    memcpy(buf + sizeof(h), head, head_len);
    if (send(fd, buf, sizeof(h) + head_len, MSG_NOSIGNAL) < 0) {
        perror("send");
        exit(1);
    }
}

/* The stream whose response completed (one datagram with F_END). */
static uint32_t recv_resp(int fd)
{
    static unsigned char buf[MSG_MAX];
    wr_app_hdr_t h;

    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);

        if (n < (ssize_t) sizeof(h)) {
            fprintf(stderr, "recv: %s\n", n < 0 ? strerror(errno) : "short");
            exit(1);
        }
        memcpy(&h, buf, sizeof(h));
        if (h.flags & WR_APP_F_END)
            return h.stream;
    }
}

static long thread_cpu_ns(void)
{
    struct rusage ru;

    getrusage(RUSAGE_THREAD, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * (long) NS_PER_S
           + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * (NS_PER_S / US_PER_S);
}

static void *serve(void *arg)
{
    warren_ctx_t *ctx = arg;
    warren_req_t *req;
    long t0 = thread_cpu_ns();

    while ((req = warren_accept(ctx)) != NULL) {
        warren_response_init(req, 200, 1);
        warren_response_add_header(req, "Content-Type", 12, "text/plain", 10);
        warren_write_end(req, "hello", 5);
        warren_finish(req);
    }
    pthread_mutex_lock(&cpu_lock);
    worker_cpu_ns += thread_cpu_ns() - t0;
    pthread_mutex_unlock(&cpu_lock);
    return NULL;
}

typedef struct {
    int      fd;
    unsigned nthreads;
} worker_arg_t;

static void *worker(void *arg)
{
    worker_arg_t *w = arg;
    warren_ctx_t *ctx = warren_init_fd_threads(w->fd, w->nthreads);
    pthread_t th[WARREN_MAX_THREADS];

    if (ctx == NULL) {
        perror("warren_init_fd_threads");
        exit(1);
    }
    for (unsigned i = 1; i < w->nthreads; i++)
        pthread_create(&th[i], NULL, serve, ctx);
    serve(ctx);
    for (unsigned i = 1; i < w->nthreads; i++)
        pthread_join(th[i], NULL);
    warren_done(ctx);
    return NULL;
}

int main(int argc, char **argv)
{
    long requests = argc > 1 ? atol(argv[1]) : DEF_REQUESTS;
    int depth = argc > 2 ? atoi(argv[2]) : DEF_DEPTH;
    worker_arg_t w = { .nthreads = argc > 3 ? (unsigned) atoi(argv[3]) : 1 };
    unsigned char hello[MSG_MAX];
    struct timespec a, b;
    uint32_t next = 1;
    pthread_t th;
    int sv[2];
    long sent = 0, done = 0;
    double ns;

    if (depth < 1 || depth > WR_APP_MAX_STREAMS) {
        fprintf(stderr, "depth 1..%d\n", WR_APP_MAX_STREAMS);
        return 2;
    }
    make_head();
    if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) < 0) {
        perror("socketpair");
        return 1;
    }
    w.fd = sv[1];
    pthread_create(&th, NULL, worker, &w);
    if (recv(sv[0], hello, sizeof(hello), 0) <= 0)
        return 1;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (; sent < depth && sent < requests; sent++)
        send_req(sv[0], next++);
    while (done < requests) {
        recv_resp(sv[0]);
        done++;
        if (sent < requests) {
            send_req(sv[0], next++);
            if (next == 0)
                next = 1;
            sent++;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    close(sv[0]);
    pthread_join(th, NULL);
    ns = (double) (b.tv_sec - a.tv_sec) * NS_PER_S + (double) (b.tv_nsec - a.tv_nsec);
    printf("requests %ld depth %d threads %u: %.0f ns/request wall, "
           "%.0f ns/request worker CPU\n", requests, depth, w.nthreads,
           ns / (double) requests, (double) worker_cpu_ns / (double) requests);
    return 0;
}
