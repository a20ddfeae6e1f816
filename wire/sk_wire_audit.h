/*
 * sk_wire_audit.h — the messages to auditd, the only writer of the audit log.
 *
 * The network workers, authd and the operator tools (sekishoctl, sekisho-ca,
 * through auditd's ctl socket) hand their entries to auditd; none of them holds
 * the audit key. Nothing here reads, rewrites or deletes entries: APPEND adds
 * one, REQUEST and REFUSED feed the writer's request batch and refusal summary,
 * FLUSH asks for its housekeeping, LAG reports its queue.
 *
 *   APPEND   sk_wire_audit_append   -> sk_wire_audit_seq_rep   (status, seq)
 *   REQUEST  sk_wire_audit_request  posted, no reply
 *   REQUEST_BATCH sk_wire_audit_request_batch  posted, no reply: 1 to
 *            SK_WIRE_AUDIT_BATCH_MAX REQUEST lines, in the order written
 *   REFUSED  sk_wire_audit_refused  posted, no reply
 *   FLUSH    (no fields)            -> sk_wire_audit_status_rep
 *   LAG      (no fields)            -> sk_wire_audit_lag_rep
 *
 * Representation: every struct holds bounded char arrays (no pointers), so a
 * decoded message is self-contained and "zeroed" means all of it. The APPEND
 * struct is large (sizeof ~ 90 KiB): allocate it (calloc), never put it on a
 * thread's stack. Strings that may be NULL in the sk_audit API (actor, tenant,
 * peer, serial, kv values, details_json) travel with a presence byte (0/1):
 * an absent string has no bytes on the wire and decodes to has_x = 0, x = "".
 *
 * Bounds. A string field holds at most SK_WIRE_AUDIT_FIELD - 1 bytes. The writer
 * cuts fields at SK_AUDIT_MAX_FIELD bytes with a "...[cut]" marker; the sender
 * (sk_wire_audit_cut) keeps SK_AUDIT_MAX_FIELD + 4 bytes of a longer string, the
 * least that makes auditd's cut identical to an in-process one (a UTF-8
 * sequence starting before the cut ends within 4 bytes, and one byte more tells
 * the writer that the text went on). Event names are < SK_WIRE_AUDIT_NAME, kv
 * keys < SK_WIRE_AUDIT_KEY (programmer constants: a longer one is an error),
 * at most SK_WIRE_AUDIT_MAX_KV pairs (the operator tools send up to 27),
 * details_json < SK_WIRE_AUDIT_DETAILS. REFUSED fields are cut to the sizes the
 * writer keeps (64, 32, 80 bytes). A message whose encoding exceeds SK_WIRE_MAX
 * cannot be sent (the writer would refuse its line, > SK_AUDIT_MAX_LINE, too).
 *
 * sk_wire_audit_encode / _decode follow sk_wire_auth.h: one codec function per
 * struct serves both directions; decoding zeroes *out first and on failure;
 * every accepted payload re-encodes to the same bytes (canonical: presence and
 * flag bytes are 0 or 1, absent strings carry nothing).
 */
#ifndef SK_WIRE_AUDIT_H
#define SK_WIRE_AUDIT_H

#include "sk_audit.h"
#include "sk_wire.h"

#define SK_WIRE_AUDIT_FIELD (SK_AUDIT_MAX_FIELD + 5) /* cap incl. NUL */
#define SK_WIRE_AUDIT_NAME 64
#define SK_WIRE_AUDIT_KEY 64
#define SK_WIRE_AUDIT_MAX_KV 32
#define SK_WIRE_AUDIT_DETAILS 8192
#define SK_WIRE_AUDIT_REF_PEER 64   /* the writer's refusal table sizes */
#define SK_WIRE_AUDIT_REF_REASON 32
#define SK_WIRE_AUDIT_REF_SERIAL 80

typedef struct sk_wire_audit_kv {
    char key[SK_WIRE_AUDIT_KEY];
    uint8_t has_value;                /* 0: JSON null */
    char value[SK_WIRE_AUDIT_FIELD];
} sk_wire_audit_kv;

typedef struct sk_wire_audit_append {
    char event[SK_WIRE_AUDIT_NAME];
    uint8_t has_actor, has_tenant, has_peer, has_serial, has_details;
    char actor[SK_WIRE_AUDIT_FIELD];
    char tenant[SK_WIRE_AUDIT_FIELD];
    char peer[SK_WIRE_AUDIT_FIELD];
    char serial[SK_WIRE_AUDIT_FIELD];
    uint8_t durable;
    uint32_t n_kv;                    /* <= SK_WIRE_AUDIT_MAX_KV */
    sk_wire_audit_kv kv[SK_WIRE_AUDIT_MAX_KV];
    char details_json[SK_WIRE_AUDIT_DETAILS];
} sk_wire_audit_append;

typedef struct sk_wire_audit_seq_rep {   /* APPEND */
    int32_t status;                   /* sk_audit_append's result, or SK_WIRE_ERR_* */
    uint64_t seq;                     /* valid when status == 0 */
} sk_wire_audit_seq_rep;

typedef struct sk_wire_audit_request {
    uint8_t has_user, has_tenant, has_peer, has_serial;
    char user[SK_WIRE_AUDIT_FIELD];
    char tenant[SK_WIRE_AUDIT_FIELD];
    char peer[SK_WIRE_AUDIT_FIELD];
    char serial[SK_WIRE_AUDIT_FIELD];
    char method[SK_WIRE_AUDIT_FIELD]; /* NULL is sent as "" (the writer does the same) */
    char path[SK_WIRE_AUDIT_FIELD];
    int32_t status;
    uint64_t bytes, duration_us;
} sk_wire_audit_request;

/* REQUEST_BATCH: n canonical REQUEST encodings back to back in lines[0..len)
 * (on the wire: u32 n, then lines as a u16-length byte string). A decoder
 * accepts it only when 1 <= n <= SK_WIRE_AUDIT_BATCH_MAX, len <=
 * SK_WIRE_AUDIT_BATCH_BYTES and lines splits into exactly n REQUEST payloads
 * the REQUEST decoder accepts; decoding uses one sk_wire_audit_request
 * (~12 KiB) of the calling thread's stack. ~32 KiB: allocate it. A line
 * whose encoding does not fit an empty batch travels as a plain REQUEST. */
#define SK_WIRE_AUDIT_BATCH_MAX 128
#define SK_WIRE_AUDIT_BATCH_BYTES 32768

typedef struct sk_wire_audit_request_batch {
    uint32_t n;
    uint32_t len;
    uint8_t lines[SK_WIRE_AUDIT_BATCH_BYTES];
} sk_wire_audit_request_batch;

typedef struct sk_wire_audit_refused {
    char peer[SK_WIRE_AUDIT_REF_PEER];
    char reason[SK_WIRE_AUDIT_REF_REASON];
    char serial[SK_WIRE_AUDIT_REF_SERIAL]; /* NULL is sent as "" (the writer does the same) */
} sk_wire_audit_refused;

typedef struct sk_wire_audit_status_rep { /* FLUSH */
    int32_t status;
} sk_wire_audit_status_rep;

typedef struct sk_wire_audit_lag_rep {
    int32_t status;
    uint64_t queued;
    int64_t oldest_ms;
} sk_wire_audit_lag_rep;

/* Copy s (NULL -> "") into out[cap], cutting it as described above (never fails;
 * cap must be >= 1). Returns 1 when s was cut, 0 otherwise. */
int sk_wire_audit_cut(char *out, size_t cap, const char *s);

/* Append q's REQUEST encoding to b. 0: added; 1: b is full (n at the maximum,
 * or the encoding does not fit what is left; b unchanged: send it, empty it,
 * add again); -1: q does not fit even an empty batch or cannot be encoded (b
 * unchanged: send it as a plain REQUEST). */
int sk_wire_audit_batch_add(sk_wire_audit_request_batch *b, const sk_wire_audit_request *q) SK_MUST_CHECK;

/* The line of a decoded batch b at *off (start with *off = 0) into *out; *off
 * moves to the next one. 0: one decoded; 1: none left; -1: malformed (b was
 * not produced by sk_wire_audit_decode or _batch_add). */
int sk_wire_audit_batch_next(const sk_wire_audit_request_batch *b, size_t *off,
                             sk_wire_audit_request *out) SK_MUST_CHECK;

/* Size of the request (reply != 0: reply) struct of an auditd type, 0 if unknown
 * (REQUEST and REFUSED have no reply struct). */
size_t sk_wire_audit_size(uint16_t type, int reply);
int sk_wire_audit_encode(uint16_t type, int reply, const void *msg, sk_wire_w *w) SK_MUST_CHECK;
int sk_wire_audit_decode(uint16_t type, int reply, const void *payload, size_t len, void *out) SK_MUST_CHECK;

#endif
