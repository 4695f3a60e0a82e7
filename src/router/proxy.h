/*
 * The router's one HTTP/1.1 upstream client: the "proxy" route action
 * ("http://IP:port" or "http://unix:/path") and the workers of "protocol":
 * "http" applications both go through it.
 *
 * A request is forwarded with its method, target and fields (Host kept;
 * hop-by-hop fields dropped), its Content-Length body streamed as it arrives,
 * a chunked one read whole first and sent with its length (spool.h).
 * The response head is re-framed for the client (upstream Content-Length
 * kept; chunked or close-delimited bodies go out chunked to an HTTP/1.1
 * client, close-delimited to an HTTP/1.0 one) and the body streams back:
 * the upstream is read only when what went to the client has been sent, so
 * a slow client holds at most WR_PROXY_BUF bytes (plus framing) in memory.
 *
 * Connections: a "proxy" upstream gets one per request ("Connection:
 * close") unless settings.http.proxy_keepalive has the router keep them
 * (upool.h); an application's worker keeps its own alive between requests
 * (its release takes the connection back, app.c keeps it).
 *
 * Errors: connecting fails -> 502; a malformed or cut response before its
 * head -> 502; a response cut after its head -> the client connection is
 * closed; no upstream progress for the proxy timeouts below -> 504.
 */
#ifndef WR_ROUTER_PROXY_H
#define WR_ROUTER_PROXY_H

#include "core/addr.h"
#include "router/conn.h"

/* Unit's (fixed) proxy timeouts, seconds. */
#define WR_PROXY_TIMEOUT       60   /* connect and send the request head */
#define WR_PROXY_READ_TIMEOUT  30   /* longest wait for upstream bytes */
#define WR_PROXY_SEND_TIMEOUT  30   /* longest wait to send the upstream body */
#define WR_PROXY_BUF           65536 /* upstream bytes read at once, per request */
#define WR_PROXY_HEAD_MAX      (WR_HTTP_DEFAULT_BUFFER_SIZE * WR_HTTP_DEFAULT_BUFFERS)

/* How an application's worker comes back from a proxied request. */
enum {
    WR_PROXY_DONE,      /* the exchange ended cleanly: reuse the worker */
    WR_PROXY_BROKEN,    /* the worker failed: never reuse it */
    WR_PROXY_HUNG       /* limits.timeout passed: kill it */
};
/* kept: the upstream connection, at a request's start again, for the
 * worker's next request (the callee owns it), or -1. */
typedef void (*wr_proxy_release_t)(wr_hconn_t *c, int how, int kept);

/*
 * Append the upstream request head for req (still parsed: call it while
 * routing) to out. host: the Host to send when the client gave none.
 * client: NULL, or the address added as the last X-Forwarded-For entry
 * ("protocol": "http" applications, which cannot see it otherwise).
 * traceparent: NULL, or the request's span (settings.telemetry), sent in
 * place of the client's.
 * keepalive: leave the connection open after the answer (else "Connection:
 * close"). Returns 0, or -1 out of memory.
 */
int  wr_proxy_head(wr_buf_t *out, const wr_http_request_t *req, const char *host,
                   const struct sockaddr *client, const char *traceparent, int keepalive);

/* A head from wr_proxy_head for a body read whole (spool.h): add its
 * Content-Length. Returns 0, or -1 out of memory. */
int  wr_proxy_head_length(wr_buf_t *head, long long length);

/* The "proxy" action: c->app_head holds the head; url is the action's. Sets
 * c->proxy; returns 0, or an HTTP status to answer instead. */
int  wr_proxy_prepare(wr_hconn_t *c, const char *url);

/* Start the exchange prepared for c (from start_request). */
void wr_proxy_begin(wr_hconn_t *c);

/* An application worker listening at a: c->app_head holds the head,
 * c->worker the worker, handed back through release. kept: a connection
 * to it kept from an earlier request (it is then c's), or -1 for a new one. */
void wr_proxy_begin_app(wr_hconn_t *c, const wr_addr_t *a, wr_proxy_release_t release,
                        int kept);

void wr_proxy_on_client(wr_hconn_t *c, uint32_t events);
void wr_proxy_timeout(wr_hconn_t *c);
void wr_proxy_conn_closing(wr_hconn_t *c);   /* the client connection closes */

#endif
