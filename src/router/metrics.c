/*
 * The router's counters, told two ways: the JSON of GET /status (Unit's
 * shape) and the Prometheus text of GET /metrics and the "metrics" action
 * (a Warren addition). Threads count their own answers (wr_stats_record);
 * whoever asks sums them, from the control thread or a serving thread.
 * An application's counters belong to its name, not its generation, so a
 * restart does not zero them; they go when the name leaves the config.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>

#include "core/log.h"
#include "router/internal.h"

/* Upper bounds of the duration buckets, in microseconds (the last bucket,
 * +Inf, has none): Prometheus' usual spread from 1 ms to 10 s. */
static const uint64_t bucket_us[WR_STATS_BUCKETS - 1] = {
    1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
    1000000, 2500000, 5000000, 10000000
};

static const char *const bucket_le[WR_STATS_BUCKETS] = {
    "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
    "1", "2.5", "5", "10", "+Inf"
};

static const char *const code_class[WR_STATS_CODES] = { "1xx", "2xx", "3xx", "4xx", "5xx" };

void wr_stats_record(wr_stats_t *s, int status, unsigned long long body_bytes, uint64_t us)
{
    int k = status / 100 - 1, b = 0;

    if (k < 0)
        k = 0;
    if (k >= WR_STATS_CODES)
        k = WR_STATS_CODES - 1;
    while (b < WR_STATS_BUCKETS - 1 && us > bucket_us[b])
        b++;
    atomic_fetch_add_explicit(&s->code[k], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->body_bytes, body_bytes, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->dur_us, us, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->le[b], 1, memory_order_relaxed);
}

void wr_stats_add(wr_stats_t *sum, wr_stats_t *s)
{
    for (int i = 0; i < WR_STATS_CODES; i++)
        sum->code[i] += atomic_load_explicit(&s->code[i], memory_order_relaxed);
    for (int i = 0; i < WR_STATS_BUCKETS; i++)
        sum->le[i] += atomic_load_explicit(&s->le[i], memory_order_relaxed);
    sum->body_bytes += atomic_load_explicit(&s->body_bytes, memory_order_relaxed);
    sum->dur_us += atomic_load_explicit(&s->dur_us, memory_order_relaxed);
}

/* ---- per application name (registry: the control thread's) ---- */

wr_appstats_t *wr_appstats_get(wr_router_t *r, const char *name)
{
    wr_appstats_t *s;

    for (s = r->appstats; s; s = s->next) {
        if (!s->gone && strcmp(s->name, name) == 0) {
            atomic_fetch_add(&s->refs, 1);
            return s;
        }
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL || (s->name = strdup(name)) == NULL) {
        free(s);
        return NULL;
    }
    atomic_init(&s->refs, 1);
    s->next = r->appstats;
    r->appstats = s;
    return s;
}

/* Any thread (a generation's last reference may go anywhere); only the
 * control thread frees, and only it takes references, so a count that
 * reached 0 stays there until wr_appstats_sweep or wr_appstats_get. */
void wr_appstats_put(wr_appstats_t *s)
{
    if (s != NULL)
        atomic_fetch_sub(&s->refs, 1);
}

void wr_appstats_drop_unused(wr_router_t *r, const wr_rconf_t *c)
{
    for (wr_appstats_t *s = r->appstats; s; s = s->next) {
        int used = 0;
        for (size_t i = 0; i < c->napps && !used; i++)
            used = strcmp(c->apps[i].name, s->name) == 0;
        if (!used)
            s->gone = 1;
    }
}

void wr_appstats_sweep(wr_router_t *r)
{
    wr_appstats_t **p = &r->appstats;

    while (*p) {
        wr_appstats_t *s = *p;
        if (atomic_load(&s->refs) > 0) {
            p = &s->next;
            continue;
        }
        *p = s->next;
        free(s->name);
        free(s);
    }
}

/* ---- the JSON of GET /status ---- */

json_t *wr_metrics_status(wr_router_t *r, const wr_rconf_t *c)
{
    wr_counters_t k;
    json_t *apps = json_object();

    wr_threads_counters(r, &k);
    for (size_t i = 0; c && i < c->napps; i++) {
        wr_appgen_load_t l = { 0 };
        if (c->apps[i].gen)
            wr_appgen_load(c->apps[i].gen, &l);
        json_object_set_new(apps, c->apps[i].name,
                            json_pack("{s:{s:i,s:i,s:i},s:{s:i}}", "processes",
                                      "running", l.running, "starting", l.starting,
                                      "idle", l.idle, "requests", "active", l.active));
    }
    return json_pack("{s:{s:I,s:I,s:I,s:I},s:{s:I},s:o}",
                     "connections", "accepted", (json_int_t) k.accepted,
                     "active", (json_int_t) k.active, "idle", (json_int_t) k.idle,
                     "closed", (json_int_t) k.closed,
                     "requests", "total", (json_int_t) k.requests, "applications", apps);
}

/* ---- the Prometheus text (exposition format 0.0.4) ---- */

static void family(wr_buf_t *b, const char *name, const char *type, const char *help)
{
    wr_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value: backslash, double quote and newline escaped. */
static void put_label(wr_buf_t *b, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\')
            wr_buf_puts(b, "\\\\");
        else if (*v == '"')
            wr_buf_puts(b, "\\\"");
        else if (*v == '\n')
            wr_buf_puts(b, "\\n");
        else
            wr_buf_append(b, v, 1);
    }
}

/* name{application="app",extra} value; app or extra may be NULL. */
static void sample(wr_buf_t *b, const char *name, const char *app, const char *extra,
                   unsigned long long v)
{
    wr_buf_puts(b, name);
    if (app || extra) {
        wr_buf_puts(b, "{");
        if (app) {
            wr_buf_puts(b, "application=\"");
            put_label(b, app);
            wr_buf_puts(b, extra ? "\"," : "\"");
        }
        if (extra)
            wr_buf_puts(b, extra);
        wr_buf_puts(b, "}");
    }
    wr_buf_printf(b, " %llu\n", v);
}

static void codes(wr_buf_t *b, const char *name, const char *app, const wr_stats_t *s)
{
    char label[32];

    for (int i = 0; i < WR_STATS_CODES; i++) {
        snprintf(label, sizeof(label), "code=\"%s\"", code_class[i]);
        sample(b, name, app, label, s->code[i]);
    }
}

static void histogram(wr_buf_t *b, const char *name, const char *app, const wr_stats_t *s)
{
    char label[32], sub[96];
    unsigned long long cum = 0;

    snprintf(sub, sizeof(sub), "%s_bucket", name);
    for (int i = 0; i < WR_STATS_BUCKETS; i++) {
        cum += s->le[i];
        snprintf(label, sizeof(label), "le=\"%s\"", bucket_le[i]);
        sample(b, sub, app, label, cum);
    }
    wr_buf_printf(b, "%s_sum", name);
    if (app) {
        wr_buf_puts(b, "{application=\"");
        put_label(b, app);
        wr_buf_puts(b, "\"}");
    }
    wr_buf_printf(b, " %llu.%06llu\n", s->dur_us / 1000000, s->dur_us % 1000000);
    snprintf(sub, sizeof(sub), "%s_count", name);
    sample(b, sub, app, NULL, cum);
}

/* Threads' sums are read one by one: a connection moving between two
 * threads may show as -1 in one for an instant. */
static unsigned long long gauge(long long v)
{
    return v < 0 ? 0 : (unsigned long long) v;
}

static void global_families(wr_buf_t *b, wr_router_t *r, const wr_counters_t *k)
{
    family(b, "warren_build_info", "gauge", "Warren's version.");
    wr_buf_puts(b, "warren_build_info{version=\"" WR_VERSION "\"} 1\n");
    family(b, "warren_connections_accepted_total", "counter", "Client connections accepted.");
    sample(b, "warren_connections_accepted_total", NULL, NULL, k->accepted);
    family(b, "warren_connections_closed_total", "counter", "Client connections closed.");
    sample(b, "warren_connections_closed_total", NULL, NULL, k->closed);
    family(b, "warren_connections_active", "gauge", "Connections with a request in progress.");
    sample(b, "warren_connections_active", NULL, NULL, gauge(k->active));
    family(b, "warren_connections_idle", "gauge", "Connections open between requests.");
    sample(b, "warren_connections_idle", NULL, NULL, gauge(k->idle));
    family(b, "warren_requests_total", "counter", "Requests answered or passed on.");
    sample(b, "warren_requests_total", NULL, NULL, k->requests);
    family(b, "warren_responses_total", "counter", "Answers sent, by status class.");
    codes(b, "warren_responses_total", NULL, &k->stats);
    family(b, "warren_response_body_bytes_total", "counter", "Response body bytes sent.");
    sample(b, "warren_response_body_bytes_total", NULL, NULL, k->stats.body_bytes);
    family(b, "warren_request_duration_seconds", "histogram",
           "From a request's first byte to its answer's end.");
    histogram(b, "warren_request_duration_seconds", NULL, &k->stats);
    family(b, "warren_tls_handshake_failures_total", "counter", "TLS handshakes that failed.");
    sample(b, "warren_tls_handshake_failures_total", NULL, NULL, k->tls_failed);
    family(b, "warren_config_loads_total", "counter", "Configurations the router applied.");
    sample(b, "warren_config_loads_total", NULL, NULL, atomic_load(&r->conf_loads));
    family(b, "warren_access_log_dropped_lines_total", "counter",
           "Access log lines dropped because the disk fell behind.");
    sample(b, "warren_access_log_dropped_lines_total", NULL, NULL,
           r->alog ? wr_alog_writer_dropped(r->alog) : 0);
    family(b, "warren_telemetry_spans_exported_total", "counter",
           "Spans the collector of settings.telemetry took.");
    sample(b, "warren_telemetry_spans_exported_total", NULL, NULL, wr_tel_exported(r->tel));
    family(b, "warren_telemetry_spans_dropped_total", "counter",
           "Spans dropped: the collector failed or did not keep up.");
    sample(b, "warren_telemetry_spans_dropped_total", NULL, NULL, wr_tel_dropped(r->tel));
}

/* One application's figures, taken once per scrape so its gauges agree. */
typedef struct {
    const char       *name;
    wr_appgen_load_t  load;
    wr_stats_t        stats;
    unsigned long long failures;
} app_snap_t;

static void app_families(wr_buf_t *b, const wr_rconf_t *c)
{
    static const char *const state[3] = { "running", "starting", "idle" };
    char label[32];
    app_snap_t *a;
    size_t n = c ? c->napps : 0;

    if (n == 0 || (a = calloc(n, sizeof(*a))) == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        wr_appgen_t *g = c->apps[i].gen;
        a[i].name = c->apps[i].name;
        if (g)
            wr_appgen_load(g, &a[i].load);
        if (g && g->stats) {
            wr_stats_add(&a[i].stats, &g->stats->s);
            a[i].failures = atomic_load(&g->stats->worker_failures);
        }
    }
    family(b, "warren_application_processes", "gauge", "Application processes, by state.");
    for (size_t i = 0; i < n; i++) {
        int v[3] = { a[i].load.running, a[i].load.starting, a[i].load.idle };
        for (int j = 0; j < 3; j++) {
            snprintf(label, sizeof(label), "state=\"%s\"", state[j]);
            sample(b, "warren_application_processes", a[i].name, label,
                   (unsigned long long) v[j]);
        }
    }
    family(b, "warren_application_requests_active", "gauge",
           "Requests an application holds or that wait for one of its workers.");
    for (size_t i = 0; i < n; i++)
        sample(b, "warren_application_requests_active", a[i].name, NULL,
               (unsigned long long) a[i].load.active);
    family(b, "warren_application_requests_queued", "gauge",
           "Requests waiting for a worker of an application.");
    for (size_t i = 0; i < n; i++)
        sample(b, "warren_application_requests_queued", a[i].name, NULL,
               (unsigned long long) a[i].load.queued);
    family(b, "warren_application_worker_failures_total", "counter",
           "Workers that ended without being let go: crashed, killed, exited, hung.");
    for (size_t i = 0; i < n; i++)
        sample(b, "warren_application_worker_failures_total", a[i].name, NULL,
               a[i].failures);
    family(b, "warren_application_responses_total", "counter",
           "An application's answers, by status class.");
    for (size_t i = 0; i < n; i++)
        codes(b, "warren_application_responses_total", a[i].name, &a[i].stats);
    family(b, "warren_application_request_duration_seconds", "histogram",
           "From a request's first byte to the end of an application's answer.");
    for (size_t i = 0; i < n; i++)
        histogram(b, "warren_application_request_duration_seconds", a[i].name, &a[i].stats);
    free(a);
}

/* Open descriptors of this process, or -1. */
static long open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    long n = 0;

    if (d == NULL) {
        wr_log_sys(WR_LOG_WARN, "opendir", "/proc/self/fd");
        return -1;
    }
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1;                       /* not the directory's own */
}

static long resident_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "re");
    long size, pages = -1;

    if (f == NULL) {
        wr_log_sys(WR_LOG_WARN, "fopen", "/proc/self/statm");
        return -1;
    }
    if (fscanf(f, "%ld %ld", &size, &pages) != 2)
        pages = -1;
    fclose(f);
    return pages < 0 ? -1 : pages * sysconf(_SC_PAGESIZE);
}

/* The router's own, under the names Prometheus' client libraries use. */
static void process_families(wr_buf_t *b, wr_router_t *r)
{
    struct rusage ru;
    long fds = open_fds(), rss = resident_bytes();

    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        double cpu = (double) ru.ru_utime.tv_sec + (double) ru.ru_stime.tv_sec
                     + (double) (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
        family(b, "process_cpu_seconds_total", "counter", "The router's CPU time.");
        wr_buf_printf(b, "process_cpu_seconds_total %.6f\n", cpu);
    }
    if (rss >= 0) {
        family(b, "process_resident_memory_bytes", "gauge", "The router's resident memory.");
        sample(b, "process_resident_memory_bytes", NULL, NULL, (unsigned long long) rss);
    }
    if (fds >= 0) {
        family(b, "process_open_fds", "gauge", "The router's open file descriptors.");
        sample(b, "process_open_fds", NULL, NULL, (unsigned long long) fds);
    }
    family(b, "process_start_time_seconds", "gauge", "When the router started (Unix time).");
    sample(b, "process_start_time_seconds", NULL, NULL, (unsigned long long) r->started);
}

int wr_metrics_text(wr_router_t *r, const wr_rconf_t *c, wr_buf_t *out)
{
    wr_counters_t k;

    wr_threads_counters(r, &k);
    global_families(out, r, &k);
    app_families(out, c);
    process_families(out, r);
    return out->p == NULL ? -1 : 0;
}
