/*
 * sk_proxy.h — the gateway's HTTP/1.1 client toward the upstream portal.
 *
 * The HTTP layer builds the request head (it owns the header policy); this module
 * moves bytes: pooled keep-alive connections, request bodies streamed (Content-Length
 * or chunked), response heads parsed with http-parser, response bodies de-chunked and
 * handed out piece by piece so nothing is ever held whole in memory.
 *
 * Contracts:
 *  - One sk_proxy_req is one exchange, used by one thread at a time.
 *  - The head passed to sk_proxy_begin must stay valid until sk_proxy_read_head
 *    returns: a stale pooled connection is retried once on a fresh one, which is
 *    only done while no body byte has been sent.
 *  - sk_proxy_finish returns the connection to the pool only when the response
 *    was read to its end, the upstream allows keep-alive and nothing extra arrived.
 *  - Every failure is reported as -1; the caller answers 502/504 and calls finish.
 *  - The non-blocking calls (start, io, queue_body, queue_end, read_body_nb) never
 *    wait: an event loop watches sk_proxy_fd() for what sk_proxy_io() asks (POLLIN /
 *    POLLOUT bits) and calls again. The fd may change during sk_proxy_io (a stale
 *    pooled connection is replaced), so the caller re-reads it after every call.
 *    The blocking calls (begin, send_body, end_body, read_head, read_body) are the
 *    same exchange with poll() and [upstream] timeout, for callers without a loop.
 */
#ifndef SK_PROXY_H
#define SK_PROXY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "sk_conf.h"
#include "sk_util.h"

#define SK_PROXY_MAX_HEADERS 128
#define SK_PROXY_HEAD_MAX 65536
#define SK_PROXY_OUT_MAX 65536  /* request body bytes queued toward the upstream */
#define SK_PROXY_AGAIN (-2)     /* non-blocking: nothing to do until the socket is ready */

enum sk_proxy_body { SK_PROXY_BODY_NONE, SK_PROXY_BODY_LENGTH, SK_PROXY_BODY_CHUNKED };

typedef struct sk_proxy sk_proxy;
typedef struct sk_proxy_req sk_proxy_req;

/* The [upstream] url of conf. */
int sk_proxy_create(const sk_conf *conf, sk_proxy **out) SK_MUST_CHECK;
/* Another origin (a tenant's upstream); timeouts and pool size still from conf. */
int sk_proxy_create_for(const sk_conf *conf, const char *host, const char *port, sk_proxy **out) SK_MUST_CHECK;
void sk_proxy_destroy(sk_proxy *p);

/* Non-blocking: take a pooled connection or start a connect; the head is sent by io. */
int sk_proxy_start(sk_proxy *p, const char *head, size_t head_len, enum sk_proxy_body body, int is_head_request,
                   sk_proxy_req **out) SK_MUST_CHECK;
int sk_proxy_fd(const sk_proxy_req *r);
/* Moves queued bytes and reads the response head: 1 head complete, 0 in progress
 * (*want: POLLIN/POLLOUT to wait for), -1 failed. */
int sk_proxy_io(sk_proxy_req *r, uint32_t *want) SK_MUST_CHECK;
/* Takes up to n body bytes into the send queue: bytes taken (0: queue full, wait
 * for POLLOUT and call io), -1 error. */
ssize_t sk_proxy_queue_body(sk_proxy_req *r, const void *data, size_t n) SK_MUST_CHECK;
/* Queues the end of a chunked body: 1 queued (or nothing to queue), 0 no room yet, -1. */
int sk_proxy_queue_end(sk_proxy_req *r) SK_MUST_CHECK;
/* Response body bytes: >0 bytes, 0 end of body, SK_PROXY_AGAIN (wait for POLLIN), -1. */
ssize_t sk_proxy_read_body_nb(sk_proxy_req *r, char *buf, size_t max) SK_MUST_CHECK;

int sk_proxy_begin(sk_proxy *p, const char *head, size_t head_len, enum sk_proxy_body body,
                   int is_head_request, sk_proxy_req **out) SK_MUST_CHECK;
int sk_proxy_send_body(sk_proxy_req *r, const void *data, size_t n) SK_MUST_CHECK;
int sk_proxy_end_body(sk_proxy_req *r) SK_MUST_CHECK;
int sk_proxy_read_head(sk_proxy_req *r) SK_MUST_CHECK;

/* WebSocket passthrough: call after sk_proxy_begin for a request that asks to
 * upgrade; a 101 answer is then accepted (otherwise it is a protocol error). */
void sk_proxy_allow_upgrade(sk_proxy_req *r);
int sk_proxy_upgraded(const sk_proxy_req *r);
/* After a 101: the upstream socket (the caller closes it) and the bytes of the new
 * protocol that arrived with the head (at most 16 KiB). */
int sk_proxy_detach(sk_proxy_req *r, int *fd, char *buf, size_t cap, size_t *len) SK_MUST_CHECK;
int sk_proxy_status(const sk_proxy_req *r);
size_t sk_proxy_header_count(const sk_proxy_req *r);
const char *sk_proxy_header_name(const sk_proxy_req *r, size_t i);
const char *sk_proxy_header_value(const sk_proxy_req *r, size_t i);
/* Declared body length, -1 when unknown (chunked or close-delimited). */
int64_t sk_proxy_content_length(const sk_proxy_req *r);
/* 0 when the response cannot have a body (HEAD, 1xx, 204, 304). */
int sk_proxy_has_body(const sk_proxy_req *r);

/* Up to max body bytes into buf: >0 bytes, 0 end of body, -1 error. */
ssize_t sk_proxy_read_body(sk_proxy_req *r, char *buf, size_t max) SK_MUST_CHECK;
void sk_proxy_finish(sk_proxy_req *r);

/* Response-head parser core, exposed for the fuzzer and unit tests: feeds bytes as if
 * they came from the upstream; n == 0 means the upstream closed (end of stream).
 * Returns -1 on a parse error. */
int sk_proxy_feed(sk_proxy_req *r, const char *data, size_t n) SK_MUST_CHECK;
sk_proxy_req *sk_proxy_req_new_detached(int is_head_request);
int sk_proxy_head_complete(const sk_proxy_req *r);

#endif
