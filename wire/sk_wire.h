/*
 * sk_wire.h — the typed, versioned protocol between Sekisho's processes.
 *
 * The monitor creates every channel (an AF_UNIX SOCK_SEQPACKET socketpair) before
 * it forks, keeps both ends, and hands each child only the ends it needs. Because
 * the monitor still holds them, a child's death never shows as EOF to its peers:
 * the monitor restarts the child on the same ends and writes one SK_WIRE_RESET
 * into each of the dead child's ends, so a caller waiting for a reply that will
 * never come fails at once instead of timing out.
 *
 * Message = one datagram (SEQPACKET keeps boundaries and never interleaves):
 *
 *     u8 version (SK_WIRE_VERSION) | u8 zero | u16 type | u32 request id | payload
 *
 * all integers little-endian. A reply has the request's type | SK_WIRE_REPLY and
 * the same id; the caller discards replies with another id (a reply that arrives
 * after its caller gave up). Payload fields are fixed-width integers, byte
 * strings with a u16 length bounded per field, and text (a byte string without
 * NUL, NUL-terminated on decode). A decoder accepts a payload only when every field
 * is within its bound and nothing is left over; otherwise it fails and the output
 * struct is zeroed (never half-decoded).
 *
 * Permits (OpenSSH's MON_PERMIT idea): every server checks sk_wire_permitted(peer,
 * type) BEFORE decoding; a peer class may send only the requests listed for it in
 * the table of wire.c. A refused or undecodable request is answered with
 * SK_WIRE_ERR_DENIED / SK_WIRE_ERR_BADMSG and logged; the server never aborts.
 *
 * Secrets on the wire (passwords, TOTP enrolment text) are wiped from every buffer
 * that held them by the code that filled the buffer (sk_wipe).
 *
 * Contracts: functions returning int return 0 on success and -1 on failure (errno
 * set for I/O) unless documented otherwise, and are SK_MUST_CHECK. No function here
 * allocates; buffers are the caller's.
 */
#ifndef SK_WIRE_H
#define SK_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "sk_util.h"

#define SK_WIRE_VERSION 1
#define SK_WIRE_HDR_LEN 8
/* Largest datagram (header included). An audit line is at most 64 KiB. */
#define SK_WIRE_MAX (72 * 1024)
#define SK_WIRE_REPLY 0x8000u

/* Peer classes: who is at the other end of a channel (fixed by the monitor when
 * it creates the channel, never claimed by the peer). */
enum sk_wire_peer {
    SK_WIRE_PEER_NET = 0,   /* network workers (untrusted: they parse client input) */
    SK_WIRE_PEER_AUTHD,     /* authd, as a client of auditd and the monitor */
    SK_WIRE_PEER_AUDITD,    /* auditd, as a client of the monitor */
    SK_WIRE_PEER_CTL,       /* sekishoctl / sekisho-ca (auditd's socket) */
    SK_WIRE_PEER_COUNT_
};

/* Message types. Ranges: 0x01xx authd, 0x02xx auditd, 0x03xx monitor. */
enum sk_wire_type {
    SK_WIRE_RESET = 0x0001,            /* monitor -> caller: the server restarted */

    SK_WIRE_AUTH_LOOKUP = 0x0101,      /* user's public record (+ session by hash) */
    SK_WIRE_AUTH_LOGIN = 0x0102,       /* password (+TOTP); mints the session */
    SK_WIRE_AUTH_PWCHANGE = 0x0103,
    SK_WIRE_AUTH_SESSION_END = 0x0104,
    SK_WIRE_AUTH_SESSION_TOUCH = 0x0105,
    SK_WIRE_AUTH_TOTP_BEGIN = 0x0106,
    SK_WIRE_AUTH_TOTP_PENDING = 0x0107,
    SK_WIRE_AUTH_TOTP_CONFIRM = 0x0108,
    SK_WIRE_AUTH_ACTIVATION_VALID = 0x0109,
    SK_WIRE_AUTH_ACTIVATE = 0x010a,
    SK_WIRE_AUTH_CENSUS = 0x010b,
    SK_WIRE_AUTH_KEYS = 0x010c,        /* CSRF and TLS ticket keys every node shares */

    SK_WIRE_AUDIT_APPEND = 0x0201,
    SK_WIRE_AUDIT_REQUEST = 0x0202,
    SK_WIRE_AUDIT_REFUSED = 0x0203,
    SK_WIRE_AUDIT_FLUSH = 0x0204,
    SK_WIRE_AUDIT_LAG = 0x0205,
    SK_WIRE_AUDIT_REQUEST_BATCH = 0x0206, /* several REQUEST lines in one datagram */

    SK_WIRE_MON_NOTIFY = 0x0301,       /* send a mail through [notify] command */
    SK_WIRE_MON_READY = 0x0302,        /* the child finished starting (no payload) */
    SK_WIRE_MON_WITNESS = 0x0303,      /* auditd: hand this checkpoint text to [audit] witness */
};

/* Status codes a server puts first in every reply (i32), besides the call's own
 * documented results (>= 0). */
#define SK_WIRE_ERR_DENIED (-2)   /* not permitted for this peer */
#define SK_WIRE_ERR_BADMSG (-3)   /* undecodable request */
#define SK_WIRE_ERR_INTERNAL (-1)
#define SK_WIRE_ERR_UNAVAILABLE (-4) /* the store cannot be reached: try again later */

/* Is `type` a request this peer class may send? (table in wire.c) */
int sk_wire_permitted(enum sk_wire_peer peer, uint16_t type);
const char *sk_wire_type_name(uint16_t type);
const char *sk_wire_peer_name(enum sk_wire_peer peer);

/* ---- field codec -------------------------------------------------------- */

/* Writer: errors are sticky; check sk_wire_w_ok() once at the end. */
typedef struct sk_wire_w {
    uint8_t *p;
    size_t cap, len;
    int err;
} sk_wire_w;

/* Reader over one payload. Errors are sticky; sk_wire_r_end() is the verdict. */
typedef struct sk_wire_r {
    const uint8_t *p;
    size_t len, off;
    int err;
} sk_wire_r;

void sk_wire_w_init(sk_wire_w *w, void *buf, size_t cap);
void sk_wire_put_u8(sk_wire_w *w, uint8_t v);
void sk_wire_put_u32(sk_wire_w *w, uint32_t v);
void sk_wire_put_u64(sk_wire_w *w, uint64_t v);
void sk_wire_put_i32(sk_wire_w *w, int32_t v);
void sk_wire_put_i64(sk_wire_w *w, int64_t v);
/* u16 length + bytes; n > max is a writer error. */
void sk_wire_put_bytes(sk_wire_w *w, const void *p, size_t n, size_t max);
/* Text: strlen(s) must be < cap_of_receiving_field. */
void sk_wire_put_str(sk_wire_w *w, const char *s, size_t cap);
int sk_wire_w_ok(const sk_wire_w *w) SK_MUST_CHECK;

void sk_wire_r_init(sk_wire_r *r, const void *p, size_t len);
uint8_t sk_wire_get_u8(sk_wire_r *r);
uint32_t sk_wire_get_u32(sk_wire_r *r);
uint64_t sk_wire_get_u64(sk_wire_r *r);
int32_t sk_wire_get_i32(sk_wire_r *r);
int64_t sk_wire_get_i64(sk_wire_r *r);
/* Bytes of at most max (<= cap of out); *n gets the length. */
void sk_wire_get_bytes(sk_wire_r *r, void *out, size_t max, size_t *n);
/* Exactly n bytes (fixed-size field such as a hash), u16 length must equal n. */
void sk_wire_get_fixed(sk_wire_r *r, void *out, size_t n);
/* Text into out[cap]: length < cap, no NUL inside; NUL-terminated. */
void sk_wire_get_str(sk_wire_r *r, char *out, size_t cap);
/* 0 when every field decoded and the payload is used up exactly. */
int sk_wire_r_end(const sk_wire_r *r) SK_MUST_CHECK;

/* ---- datagrams ---------------------------------------------------------- */

typedef struct sk_wire_msg {
    uint16_t type;
    uint32_t id;
    const uint8_t *payload;   /* points into the caller's receive buffer */
    size_t len;
} sk_wire_msg;

/* Send header + payload as one datagram (MSG_NOSIGNAL, EINTR retried). */
int sk_wire_send(int fd, uint16_t type, uint32_t id, const void *payload, size_t len) SK_MUST_CHECK;
/* The same with extra send flags (e.g. MSG_DONTWAIT: EAGAIN when the peer's queue
 * is full). */
int sk_wire_send_flags(int fd, uint16_t type, uint32_t id, const void *payload, size_t len,
                       int flags) SK_MUST_CHECK;
/* Receive one datagram into buf (cap >= SK_WIRE_MAX) and parse its header. Waits
 * at most timeout_ms (< 0: forever). Returns 0, 1 on timeout, -1 on error, EOF
 * (errno EPIPE), a truncated datagram or a bad header (errno EBADMSG). */
int sk_wire_recv(int fd, void *buf, size_t cap, sk_wire_msg *out, int timeout_ms) SK_MUST_CHECK;

/* ---- client side: a set of channels to one server ----------------------- */

/* A caller borrows one channel for one call, so concurrent threads never share a
 * socket; with every channel busy it waits. Ids are unique per process start. */
typedef struct sk_wire_client sk_wire_client;

/* fds: n channel ends (the client owns them afterwards; closed by free). */
int sk_wire_client_new(const int *fds, unsigned n, const char *server_name,
                       sk_wire_client **out) SK_MUST_CHECK;
void sk_wire_client_free(sk_wire_client *c);

/* One round trip: send (type, req), wait for the reply of the same id. reply
 * (cap >= SK_WIRE_MAX) receives the datagram; *out points into it. timeout_ms < 0:
 * no limit. -1 on I/O error, timeout (errno ETIMEDOUT) or SK_WIRE_RESET (errno
 * ECONNRESET: the server restarted while the request was with it). */
int sk_wire_call(sk_wire_client *c, uint16_t type, const void *req, size_t req_len, void *reply,
                 size_t cap, sk_wire_msg *out, int timeout_ms) SK_MUST_CHECK;
/* Send without waiting for a reply (for requests whose server sends none). */
int sk_wire_post(sk_wire_client *c, uint16_t type, const void *req, size_t req_len) SK_MUST_CHECK;

/* ---- server side -------------------------------------------------------- */

/* handler: decode msg->payload (already permitted), act, and write the reply
 * payload (status first) into w. Return 0 to send the reply, 1 to send none (for
 * posted requests), -1 to answer SK_WIRE_ERR_INTERNAL. */
typedef int (*sk_wire_handler)(void *ctx, enum sk_wire_peer peer, const sk_wire_msg *msg, sk_wire_w *w);

/* Serve one channel until EOF or *stop becomes nonzero (checked every 200 ms):
 * receive, check the permit, call handler, reply. Wipes its buffers after each
 * message. Returns 0 at EOF/stop, -1 on a socket error. */
int sk_wire_serve(int fd, enum sk_wire_peer peer, sk_wire_handler handler, void *ctx,
                  const volatile int *stop) SK_MUST_CHECK;

#endif
