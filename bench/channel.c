/*
 * channel: what one router -> worker -> router exchange costs on this
 * machine, outside Warren: a 300-byte request out, a 10 KB response back,
 * one at a time between two processes (each hop wakes the other side), in
 * three ways:
 *
 *   seqpacket   a SOCK_SEQPACKET socketpair, as Warren's channel is;
 *   shm+futex   both messages in shared memory, a futex wake only when the
 *               other side sleeps (what a shared-memory channel would do);
 *   shm+spin    the same, each side spinning a while before it sleeps.
 *
 * It prints wall time and CPU time (both processes) per exchange. The
 * question it answers (bench/README.md): would a shared-memory channel make
 * the hop cheap? Build and run: make build/bench/channel && build/bench/channel
 */
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define REQ_LEN    300            /* a request head */
#define RESP_LEN   10240          /* bench/wsgi.sh's body */
#define EXCHANGES  100000
#define SPINS      2000           /* shm+spin: loads before sleeping (~a few us) */
#define US         1e6

struct slot {
    _Atomic uint32_t seq;         /* bumped once per message */
    _Atomic uint32_t sleeping;    /* the reader waits on seq's futex */
    uint32_t         len;
    char             data[RESP_LEN];
};

struct shared {
    struct slot req, resp;
};

static double wall(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double) t.tv_sec + (double) t.tv_nsec / 1e9;
}

static double cpu(int who)
{
    struct rusage r;

    getrusage(who, &r);
    return (double) (r.ru_utime.tv_sec + r.ru_stime.tv_sec)
           + (double) (r.ru_utime.tv_usec + r.ru_stime.tv_usec) / US;
}

static void report(const char *name, double t0, double c0)
{
    double t = wall() - t0, c = cpu(RUSAGE_SELF) - c0 + cpu(RUSAGE_CHILDREN);

    printf("  %-11s %6.2f us wall, %6.2f us CPU per exchange\n", name,
           t / EXCHANGES * US, c / EXCHANGES * US);
}

static int seqpacket(void)
{
    static char buf[RESP_LEN];
    double t0 = wall(), c0 = cpu(RUSAGE_SELF);
    int sv[2];
    pid_t pid;

    if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) < 0) {
        perror("channel: socketpair");
        return -1;
    }
    if ((pid = fork()) < 0) {
        perror("channel: fork");
        return -1;
    }
    if (pid == 0) {                       /* the worker: echo a response */
        close(sv[0]);
        while (recv(sv[1], buf, sizeof(buf), 0) > 0)
            if (send(sv[1], buf, RESP_LEN, 0) < 0)
                break;
        _exit(0);
    }
    close(sv[1]);
    for (int i = 0; i < EXCHANGES; i++)
        if (send(sv[0], buf, REQ_LEN, 0) < 0 || recv(sv[0], buf, sizeof(buf), 0) <= 0) {
            perror("channel: send/recv");
            break;
        }
    close(sv[0]);
    waitpid(pid, NULL, 0);
    report("seqpacket", t0, c0);
    return 0;
}

/* Until s->seq moves past seen: spin, then sleep on the futex (the writer
 * wakes it only when told someone sleeps). */
static void await(struct slot *s, uint32_t seen, int spins)
{
    for (int i = 0; i < spins; i++)
        if (atomic_load(&s->seq) != seen)
            return;
    while (atomic_load(&s->seq) == seen) {
        atomic_store(&s->sleeping, 1);
        if (atomic_load(&s->seq) == seen)
            syscall(SYS_futex, &s->seq, FUTEX_WAIT, seen, NULL, NULL, 0);
        atomic_store(&s->sleeping, 0);
    }
}

static void post(struct slot *s, const char *p, uint32_t n)
{
    memcpy(s->data, p, n);
    s->len = n;
    atomic_fetch_add(&s->seq, 1);
    if (atomic_load(&s->sleeping))
        syscall(SYS_futex, &s->seq, FUTEX_WAKE, 1, NULL, NULL, 0);
}

static int shm(const char *name, int spins)
{
    static char buf[RESP_LEN];
    struct shared *m = mmap(NULL, sizeof(*m), PROT_READ | PROT_WRITE,
                            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    double t0 = wall(), c0 = cpu(RUSAGE_SELF);
    pid_t pid;

    if (m == MAP_FAILED) {
        perror("channel: mmap");
        return -1;
    }
    if ((pid = fork()) < 0) {
        perror("channel: fork");
        return -1;
    }
    if (pid == 0) {
        for (uint32_t i = 0; i < EXCHANGES; i++) {
            await(&m->req, i, spins);
            memcpy(buf, m->req.data, m->req.len);
            post(&m->resp, buf, RESP_LEN);
        }
        _exit(0);
    }
    for (uint32_t i = 0; i < EXCHANGES; i++) {
        post(&m->req, buf, REQ_LEN);
        await(&m->resp, i, spins);
        memcpy(buf, m->resp.data, m->resp.len);
    }
    waitpid(pid, NULL, 0);
    report(name, t0, c0);
    munmap(m, sizeof(*m));
    return 0;
}

int main(void)
{
    printf("== one exchange (%d-byte request, %d-byte response), %d in a row\n",
           REQ_LEN, RESP_LEN, EXCHANGES);
    if (seqpacket() < 0 || shm("shm+futex", 0) < 0 || shm("shm+spin", SPINS) < 0)
        return 1;
    return 0;
}
