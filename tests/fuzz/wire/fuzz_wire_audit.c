/*
 * libFuzzer target for every auditd message decoder (requests, which auditd
 * decodes from the untrusted network workers, and the replies the clients decode).
 * Input: byte 0 picks the (type, direction) pair, the rest is the payload.
 * Properties beyond "no crash":
 *  - a rejected payload leaves the output struct all zero;
 *  - an accepted payload re-encodes to exactly the same bytes (canonical);
 *  - every decoded string is NUL-terminated within its field and counts are in bounds;
 *  - an accepted REQUEST_BATCH splits into exactly n lines (sk_wire_audit_batch_next).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sk_wire_audit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct {
    uint16_t type;
    int reply;
} kinds[] = {
    { SK_WIRE_AUDIT_APPEND, 0 }, { SK_WIRE_AUDIT_APPEND, 1 }, { SK_WIRE_AUDIT_REQUEST, 0 },
    { SK_WIRE_AUDIT_REFUSED, 0 }, { SK_WIRE_AUDIT_FLUSH, 0 },  { SK_WIRE_AUDIT_FLUSH, 1 },
    { SK_WIRE_AUDIT_LAG, 0 },    { SK_WIRE_AUDIT_LAG, 1 },   { SK_WIRE_AUDIT_REQUEST_BATCH, 0 },
};

static int all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return 0;
    return 1;
}

static void terminated(const char *s, size_t cap)
{
    if (memchr(s, '\0', cap) == NULL)
        abort();
}

static void check_append(const sk_wire_audit_append *q)
{
    if (q->n_kv > SK_WIRE_AUDIT_MAX_KV || q->durable > 1)
        abort();
    terminated(q->event, sizeof q->event);
    terminated(q->actor, sizeof q->actor);
    terminated(q->details_json, sizeof q->details_json);
    for (uint32_t i = 0; i < q->n_kv; i++) {
        terminated(q->kv[i].key, sizeof q->kv[i].key);
        terminated(q->kv[i].value, sizeof q->kv[i].value);
        if (!q->kv[i].has_value && q->kv[i].value[0] != '\0')
            abort();
    }
    if (!q->has_actor && q->actor[0] != '\0')
        abort();
}

static void check_request(const sk_wire_audit_request *q)
{
    if (q->has_user > 1 || q->has_tenant > 1 || q->has_peer > 1 || q->has_serial > 1)
        abort();
    terminated(q->user, sizeof q->user);
    terminated(q->path, sizeof q->path);
    if ((!q->has_user && q->user[0] != '\0') || (!q->has_serial && q->serial[0] != '\0'))
        abort();
}

static void check_batch(const sk_wire_audit_request_batch *b)
{
    static sk_wire_audit_request q;
    size_t off = 0;
    uint32_t n = 0;
    int r;
    if (b->n == 0 || b->n > SK_WIRE_AUDIT_BATCH_MAX || b->len > sizeof b->lines)
        abort();
    while ((r = sk_wire_audit_batch_next(b, &off, &q)) == 0) {
        check_request(&q);
        n++;
    }
    if (r != 1 || n != b->n || off != b->len)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static union {
        sk_wire_audit_append append;
        sk_wire_audit_request request;
        sk_wire_audit_request_batch batch;
        uint8_t raw[sizeof(sk_wire_audit_append) + sizeof(sk_wire_audit_request_batch)];
    } out;
    static uint8_t again[SK_WIRE_MAX];
    uint16_t type;
    int reply;
    size_t sz;
    sk_wire_w w;

    if (size < 1)
        return 0;
    type = kinds[data[0] % (sizeof kinds / sizeof kinds[0])].type;
    reply = kinds[data[0] % (sizeof kinds / sizeof kinds[0])].reply;
    sz = sk_wire_audit_size(type, reply);
    if (sz == 0 || sz > sizeof out.raw)
        abort();
    memset(&out, 0xA5, sz); /* decoding must zero what it does not fill */
    if (sk_wire_audit_decode(type, reply, data + 1, size - 1, &out) != 0) {
        if (!all_zero(&out, sz))
            abort();
        return 0;
    }
    if (type == SK_WIRE_AUDIT_APPEND && !reply)
        check_append(&out.append);
    if (type == SK_WIRE_AUDIT_REQUEST && !reply)
        check_request(&out.request);
    if (type == SK_WIRE_AUDIT_REQUEST_BATCH)
        check_batch(&out.batch);
    sk_wire_w_init(&w, again, sizeof again);
    if (sk_wire_audit_encode(type, reply, &out, &w) != 0 || w.len != size - 1 ||
        memcmp(again, data + 1, w.len) != 0)
        abort();
    return 0;
}
