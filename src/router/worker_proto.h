/*
 * The router's side of the worker wire format (src/lib/proto.h): encoding a
 * request head for a worker and decoding a worker's response head. Pure
 * functions; the dispatch that uses them comes with applications (issue 4).
 */
#ifndef WR_WORKER_PROTO_H
#define WR_WORKER_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "http/http.h"
#include "route/route.h"

/*
 * Append the REQ_HEAD payload for request v to out: method, target, path,
 * query, version, remote address and port, local address and port, server
 * name, scheme, target name (NULL: ""), then the fields. Returns 0, or -1
 * when it would exceed WR_APP_MAX_PAYLOAD (the caller answers 431) or memory
 * runs out; out is unchanged then.
 */
int wr_worker_encode_head(wr_buf_t *out, const wr_req_view_t *v, const char *version,
                          const char *target_name);

/*
 * Append what a REQ_HEAD with WR_APP_F_UPGRADE carries after its fields:
 * settings.http.websocket's read_timeout, keepalive_interval, max_frame_size.
 * Returns 0, or -1 as above (out unchanged).
 */
int wr_worker_encode_upgrade(wr_buf_t *out, uint32_t read_timeout,
                             uint32_t keepalive_interval, uint32_t max_frame_size);

/*
 * A chunked request body read whole (settings.http.chunked_transform): in
 * the encoded REQ_HEAD in head, Transfer-Encoding and Content-Length fields
 * give way to one "Content-Length: length". Returns 0, or -1 (a malformed
 * head, no memory, or past WR_APP_MAX_PAYLOAD) with head unchanged.
 */
int wr_worker_head_length(wr_buf_t *head, long long length);

/*
 * Decode a RESP_HEAD payload: the status and up to max fields, pointing into
 * p. Returns the number of fields, or -1 for a malformed payload, a status
 * outside 100-999, more than max fields, or a name or value a response must
 * not carry (CR, LF, NUL; a name that is not a token).
 */
int wr_worker_decode_resp_head(const char *p, size_t n, int *status,
                               wr_http_field_t *fields, size_t max);

/*
 * The same for a RESP_HEAD with WR_APP_F_BODY: the head is a prefix of the
 * payload; *head_len says where it ends (the body bytes follow).
 */
int wr_worker_decode_resp_head_prefix(const char *p, size_t n, int *status,
                                      wr_http_field_t *fields, size_t max,
                                      size_t *head_len);

#endif
