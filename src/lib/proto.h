/*
 * The router <-> worker channel (DESIGN §5), shared by the router and by
 * libwarren. One SOCK_SEQPACKET socketpair per worker; every datagram is one
 * message: a wr_app_hdr_t then `len` payload bytes (len <= WR_APP_MAX_PAYLOAD).
 *
 * A request is a stream, named by `stream` (chosen by the router, never 0,
 * unique among the worker's open streams). The router sends REQ_HEAD, then
 * REQ_BODY chunks, then REQ_END; the worker answers RESP_HEAD, RESP_BODY
 * chunks, RESP_END. Either side may send ABORT to end a stream at once.
 *
 * Flow control keeps memory per request bounded both ways: a sender may have
 * at most the peer's granted window of body bytes in flight on a stream. The
 * window starts at WR_APP_WINDOW_INIT for request and response bodies each;
 * the receiver grants more with WINDOW (payload: uint32 bytes) as it consumes.
 *
 * All integers are in host byte order (both ends are on the same machine).
 */
#ifndef WR_APP_PROTO_H
#define WR_APP_PROTO_H

#include <stdint.h>

#define WR_APP_PROTO_VERSION  4     /* 2: the WR_APP_F_* flags below;
                                       3: WR_APP_F_UPGRADE;
                                       4: wr_app_hello_t.tunnels */
#define WR_APP_MAX_PAYLOAD    (64 * 1024)   /* bytes of payload in one message */
#define WR_APP_WINDOW_INIT    (256 * 1024)  /* body bytes in flight per stream */

typedef enum {
    WR_APP_HELLO = 1,   /* worker -> router, stream 0: wr_app_hello_t */
    WR_APP_REQ_HEAD,    /* router -> worker: encoded request head (below) */
    WR_APP_REQ_BODY,    /* router -> worker: body bytes */
    WR_APP_REQ_END,     /* router -> worker: no more body */
    WR_APP_RESP_HEAD,   /* worker -> router: encoded response head (below) */
    WR_APP_RESP_BODY,   /* worker -> router: body bytes */
    WR_APP_RESP_END,    /* worker -> router: response complete */
    WR_APP_ABORT,       /* either way: the stream is over, nothing more follows */
    WR_APP_WINDOW,      /* either way: uint32 more body bytes may be sent */
    WR_APP_TYPE_MAX
} wr_app_type_t;

typedef struct {
    uint16_t type;
    uint16_t flags;      /* WR_APP_F_*, where allowed (below); else 0 */
    uint32_t stream;
    uint32_t len;
} wr_app_hdr_t;

typedef struct {
    uint32_t version;    /* WR_APP_PROTO_VERSION */
    uint32_t pid;
    uint32_t streams;    /* requests the worker serves at once (its threads),
                            1..WR_APP_MAX_STREAMS */
    uint32_t tunnels;    /* version 4: streams beyond those that only tunnels
                            (101) may hold, each served apart from the
                            `streams` (its own thread): a tunnel in this
                            room does not count as a request being served.
                            0: tunnels are requests like any other.
                            streams + tunnels <= WR_APP_MAX_STREAMS */
} wr_app_hello_t;

/*
 * REQ_HEAD payload: a sequence of fields, each a uint32 length followed by
 * that many bytes (no NUL), in this order:
 *   method, target (raw), path (decoded, normalized), query (raw),
 *   version ("HTTP/1.1"), remote address (text), remote port (decimal),
 *   local address, local port, server name (Host without port),
 *   scheme ("http"/"https"), target name (application "targets" key or ""),
 * then a uint32 count N and N (name, value) pairs of request fields, as sent.
 * A head that does not fit one message is refused by the router (431 to the
 * client): WR_APP_MAX_PAYLOAD is above every head limit Unit allows.
 *
 * RESP_HEAD payload: uint32 status, uint32 count N, then N (name, value)
 * pairs, each string a uint32 length and bytes. Framing fields the worker
 * sends (Content-Length, Transfer-Encoding, Connection) are the router's to
 * decide: it frames the body itself.
 */

/*
 * Flags (version 2) let one message do the work of several, so a request
 * without a body and a small response each cross the channel as one
 * datagram:
 *  - WR_APP_F_END on REQ_HEAD: the request has no body; the router's
 *    direction is closed as if REQ_END followed (none does).
 *  - WR_APP_F_END on RESP_HEAD or RESP_BODY: the response is complete with
 *    this message, as if RESP_END followed (none does).
 *  - WR_APP_F_BODY on RESP_HEAD: the payload is the encoded head followed
 *    by response body bytes (the head is self-delimiting); those bytes
 *    count against the window like a RESP_BODY's.
 *  - WR_APP_F_UPGRADE on REQ_HEAD (version 3): the client asked to switch
 *    protocols (HTTP/1.1, "Connection: upgrade" and an Upgrade field, no
 *    body). The request has no body, but the router's direction stays open
 *    until the worker's RESP_HEAD: a status of 101 makes the stream a
 *    tunnel (REQ_BODY then carries every byte the client sends after the
 *    head, RESP_BODY every byte to it, unframed, until one side ends the
 *    stream, and the client's connection closes with it); any other status
 *    is an ordinary response, and the router closes its direction with
 *    REQ_END right after that head. Such a REQ_HEAD carries three more
 *    uint32 after its field pairs: settings.http.websocket's read_timeout
 *    and keepalive_interval (seconds) and max_frame_size (bytes), for a
 *    worker that speaks WebSocket on the tunnel (the router applies
 *    read_timeout to the client itself).
 * Any other flag, or a flag on another type, is a protocol error (END and
 * UPGRADE together too).
 */
#define WR_APP_F_END      0x1
#define WR_APP_F_BODY     0x2
#define WR_APP_F_UPGRADE  0x4
#define WR_APP_STATUS_SWITCHING  101   /* the only 1xx a worker may answer */

/*
 * Stream lifecycle (added with libwarren; no wire change). Each direction of
 * a stream is closed by exactly one message from its sender: the router's by
 * REQ_END, REQ_HEAD with WR_APP_F_END, or ABORT; the worker's by RESP_END,
 * a RESP_HEAD or RESP_BODY with WR_APP_F_END, or ABORT.
 *  - ABORT may be sent while the stream is open for the sender, even after
 *    its own END: it asks the peer to send nothing more on the stream. After
 *    the sender's END, the completed message stands (a worker that answered
 *    without reading the whole body sends RESP_END, then ABORT to stop the
 *    body; the router delivers the response).
 *  - Whoever receives ABORT while its own direction is still open closes it
 *    with ABORT in reply (no END follows). So each side sees both closings.
 *  - A stream id may be reused for a new REQ_HEAD once the router has seen
 *    both directions closed. Routers should pick ids increasing (wrapping,
 *    skipping 0 and ids still open).
 *  - WINDOW and ABORT for a stream id that is not open are ignored: they can
 *    cross the stream's last message. Any other message for an id that is not
 *    open, or after its sender's direction closed, is a protocol error.
 *  - A WINDOW grants at least 1 byte; a sender never has more body bytes in
 *    flight than granted (WR_APP_WINDOW_INIT plus all WINDOWs so far).
 *  - flags only as allowed above; ABORT and *_END carry no payload;
 *    WINDOW carries 4.
 * A worker holds at most WR_APP_MAX_STREAMS streams open at once (a stream
 * counts from REQ_HEAD until both directions are closed); more is an error.
 * On any protocol error the receiver closes the channel.
 */
/* 64: an event-loop worker (ASGI) holds long requests (WebSockets, event
 * streams) by the dozen; a table this size still costs little per worker. */
#define WR_APP_MAX_STREAMS    64

/*
 * "protocol": "http" workers speak HTTP, not this protocol. Their channel
 * is held by the prototype instead (src/app/http_worker.c): it sends HELLO
 * for the worker once the worker answered HTTP, then one WR_APP_HTTP_ADDR
 * message whose payload is the struct sockaddr_un the worker listens on.
 * The channel closing tells the router the worker is gone; the router
 * closing it tells the prototype to end the worker. Outside the enum: it
 * never travels on a libwarren channel.
 */
#define WR_APP_HTTP_ADDR      0x100

#endif
