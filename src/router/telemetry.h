/*
 * telemetry: OpenTelemetry traces, Unit 1.34's settings.telemetry. One span
 * per answered request, in W3C trace context (a request's "traceparent"
 * continues its trace), batched and sent to the collector, as OTLP/HTTP
 * JSON or OTLP/gRPC, by one exporter thread per router process.
 *
 * Who calls what:
 *   rconf.c    wr_tel_conf_new/free (per configuration)
 *   router.c   wr_tel_use (each applied configuration), wr_tel_stop
 *   respond.c  wr_tel_record (each answered request)
 */
#ifndef WR_ROUTER_TELEMETRY_H
#define WR_ROUTER_TELEMETRY_H

#include <jansson.h>

#include "route/route.h"

#define WR_TEL_BATCH_DEFAULT  128     /* spans per export (Unit's batch_size) */
#define WR_TEL_FLUSH_MS       1000    /* a waiting span goes at the latest after this */
#define WR_TEL_QUEUE_BATCHES  16      /* batches that may wait; more spans are dropped */
#define WR_TEL_IO_TIMEOUT_S   5       /* connect, send, answer of one export */
#define WR_TEL_WARN_EVERY_S   60      /* failed exports are logged at most this often */
#define WR_TEL_ANSWER_MAX     (64 * 1024)   /* bytes of a collector's answer read */
#define WR_TEL_DEFAULT_PATH   "/v1/traces"
#define WR_TEL_GRPC_PATH      "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
#define WR_TEL_RANDOM_HEX     32      /* what the caller gives wr_tel_begin */
#define WR_TEL_CTX_LEN        55      /* "00-" TRACE(32) "-" SPAN(16) "-" FLAGS(2) */

/* A configuration's settings.telemetry, parsed. */
typedef struct {
    char   *endpoint;                 /* as written, for the log */
    char   *host, *port, *path;       /* where to POST */
    int     tls;                      /* https */
    int     grpc;                     /* "protocol": "grpc" (else OTLP/HTTP JSON) */
    int     batch;
    double  ratio;                    /* sampling_ratio */
} wr_tel_conf_t;

/* NULL when settings has no "telemetry" (err empty), or with err filled. */
wr_tel_conf_t *wr_tel_conf_new(json_t *settings, char *err, size_t errlen);
void           wr_tel_conf_free(wr_tel_conf_t *c);

typedef struct wr_tel wr_tel_t;

/* Exports go to c's collector from now on (NULL: spans stop). The exporter
 * starts on first use; *tel holds it. -1 when it cannot start. */
int  wr_tel_use(wr_tel_t **tel, const wr_tel_conf_t *c);
/* A request's span, from its start to its end. */
typedef struct {
    char ctx[WR_TEL_CTX_LEN + 1];     /* its W3C traceparent (what applications
                                         and upstreams get); "" before begin */
    char parent[17];                  /* the caller's span id; "" for a new trace */
} wr_tel_span_t;

/* At a request's head: its span continues v's traceparent or starts a trace
 * (its id v->request_id), sampled by c's ratio; random: WR_TEL_RANDOM_HEX
 * fresh hex digits (the span id, the sampling draw). */
void wr_tel_begin(const wr_tel_conf_t *c, const wr_req_view_t *v, const char *random,
                  wr_tel_span_t *s);
/* At its answer's end: the span, if sampled; v as the access log sees it
 * (status set). */
void wr_tel_record(wr_tel_t *tel, const wr_tel_conf_t *c, const wr_req_view_t *v,
                   const wr_tel_span_t *s);
/* Spans dropped (queue full, export failed) and exported since start, for
 * /metrics; 0 without an exporter. */
unsigned long long wr_tel_dropped(const wr_tel_t *tel);
unsigned long long wr_tel_exported(const wr_tel_t *tel);
void wr_tel_stop(wr_tel_t *tel);

#endif
