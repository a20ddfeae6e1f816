/* wire_audit.c — codecs of the auditd messages (sk_wire_audit.h). One function
 * per struct walks its fields in order and either writes or reads them, with the
 * field helpers of wire_co.h. */
#include <string.h>

#include "sk_wire_audit.h"
#include "wire_co.h"

/* A string the sk_audit API lets be NULL: presence byte, then the text if present. */
static void co_ostr(co *c, uint8_t *has, char *s, size_t cap)
{
    co_flag(c, has);
    if (*has)
        co_str(c, s, cap);
}

static void co_append_req(co *c, void *m)
{
    sk_wire_audit_append *q = m;
    co_str(c, q->event, sizeof q->event);
    co_ostr(c, &q->has_actor, q->actor, sizeof q->actor);
    co_ostr(c, &q->has_tenant, q->tenant, sizeof q->tenant);
    co_ostr(c, &q->has_peer, q->peer, sizeof q->peer);
    co_ostr(c, &q->has_serial, q->serial, sizeof q->serial);
    co_flag(c, &q->durable);
    co_u32(c, &q->n_kv);
    if (q->n_kv > SK_WIRE_AUDIT_MAX_KV) {
        co_fail(c);
        return;
    }
    for (uint32_t i = 0; i < q->n_kv; i++) {
        co_str(c, q->kv[i].key, sizeof q->kv[i].key);
        co_ostr(c, &q->kv[i].has_value, q->kv[i].value, sizeof q->kv[i].value);
    }
    co_ostr(c, &q->has_details, q->details_json, sizeof q->details_json);
}

static void co_seq_rep(co *c, void *m)
{
    sk_wire_audit_seq_rep *p = m;
    co_i32(c, &p->status);
    co_u64(c, &p->seq);
}

static void co_request_req(co *c, void *m)
{
    sk_wire_audit_request *q = m;
    co_ostr(c, &q->has_user, q->user, sizeof q->user);
    co_ostr(c, &q->has_tenant, q->tenant, sizeof q->tenant);
    co_ostr(c, &q->has_peer, q->peer, sizeof q->peer);
    co_ostr(c, &q->has_serial, q->serial, sizeof q->serial);
    co_str(c, q->method, sizeof q->method);
    co_str(c, q->path, sizeof q->path);
    co_i32(c, &q->status);
    co_u64(c, &q->bytes);
    co_u64(c, &q->duration_us);
}

/* The lines of a batch must be exactly n REQUEST payloads (canonical: a
 * decoder that accepts them re-encodes them to the same bytes). */
static int batch_lines_ok(const uint8_t *p, size_t len, uint32_t n)
{
    sk_wire_audit_request q;
    sk_wire_r r;
    co c = { 1, NULL, &r };
    sk_wire_r_init(&r, p, len);
    for (uint32_t i = 0; i < n && !r.err; i++)
        co_request_req(&c, &q);
    return sk_wire_r_end(&r);
}

static void co_batch_req(co *c, void *m)
{
    sk_wire_audit_request_batch *b = m;
    size_t len = b->len;
    co_u32(c, &b->n);
    if (b->n == 0 || b->n > SK_WIRE_AUDIT_BATCH_MAX || len > sizeof b->lines) {
        co_fail(c);
        return;
    }
    co_bytes(c, b->lines, sizeof b->lines, &len);
    if (c->dec) {
        b->len = (uint32_t)len;
        if (!c->r->err && batch_lines_ok(b->lines, len, b->n) != 0)
            co_fail(c);
    }
}

static void co_refused_req(co *c, void *m)
{
    sk_wire_audit_refused *q = m;
    co_str(c, q->peer, sizeof q->peer);
    co_str(c, q->reason, sizeof q->reason);
    co_str(c, q->serial, sizeof q->serial);
}

static void co_status_rep(co *c, void *m)
{
    co_i32(c, &((sk_wire_audit_status_rep *)m)->status);
}

static void co_lag_rep(co *c, void *m)
{
    sk_wire_audit_lag_rep *p = m;
    co_i32(c, &p->status);
    co_u64(c, &p->queued);
    co_i64(c, &p->oldest_ms);
}

static void co_empty(co *c, void *m)
{
    (void)c;
    (void)m;
}

/* Placeholder struct for requests without fields. */
typedef struct empty_req {
    uint8_t unused;
} empty_req;

static const struct codec {
    uint16_t type;
    size_t req_size, rep_size;
    void (*req)(co *c, void *m);
    void (*rep)(co *c, void *m);   /* NULL: posted, no reply */
} codecs[] = {
    { SK_WIRE_AUDIT_APPEND, sizeof(sk_wire_audit_append), sizeof(sk_wire_audit_seq_rep), co_append_req,
      co_seq_rep },
    { SK_WIRE_AUDIT_REQUEST, sizeof(sk_wire_audit_request), 0, co_request_req, NULL },
    { SK_WIRE_AUDIT_REFUSED, sizeof(sk_wire_audit_refused), 0, co_refused_req, NULL },
    { SK_WIRE_AUDIT_FLUSH, sizeof(empty_req), sizeof(sk_wire_audit_status_rep), co_empty, co_status_rep },
    { SK_WIRE_AUDIT_LAG, sizeof(empty_req), sizeof(sk_wire_audit_lag_rep), co_empty, co_lag_rep },
    { SK_WIRE_AUDIT_REQUEST_BATCH, sizeof(sk_wire_audit_request_batch), 0, co_batch_req, NULL },
};

static const struct codec *find(uint16_t type, int reply)
{
    for (size_t i = 0; i < SK_ARRAY_LEN(codecs); i++)
        if (codecs[i].type == type)
            return reply && codecs[i].rep == NULL ? NULL : &codecs[i];
    return NULL;
}

int sk_wire_audit_cut(char *out, size_t cap, const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;
    int cut = 0;
    if (cap == 0)
        return 1;
    if (n >= cap) {
        n = cap - 1;
        cut = 1;
    }
    if (n > 0)
        memcpy(out, s, n);
    out[n] = '\0';
    return cut;
}

size_t sk_wire_audit_size(uint16_t type, int reply)
{
    const struct codec *k = find(type, reply);
    return k == NULL ? 0 : reply ? k->rep_size : k->req_size;
}

int sk_wire_audit_encode(uint16_t type, int reply, const void *msg, sk_wire_w *w)
{
    const struct codec *k = find(type, reply);
    co c = { 0, w, NULL };
    if (k == NULL)
        return -1;
    /* The codec functions take non-const pointers because they serve both ways;
     * encoding only reads. */
    (reply ? k->rep : k->req)(&c, (void *)(uintptr_t)msg);
    return sk_wire_w_ok(w);
}

int sk_wire_audit_decode(uint16_t type, int reply, const void *payload, size_t len, void *out)
{
    const struct codec *k = find(type, reply);
    sk_wire_r r;
    co c = { 1, NULL, &r };
    size_t size;
    if (k == NULL)
        return -1;
    size = reply ? k->rep_size : k->req_size;
    memset(out, 0, size);
    sk_wire_r_init(&r, payload, len);
    (reply ? k->rep : k->req)(&c, out);
    if (sk_wire_r_end(&r) != 0) {
        sk_wipe(out, size);
        return -1;
    }
    return 0;
}

int sk_wire_audit_batch_add(sk_wire_audit_request_batch *b, const sk_wire_audit_request *q)
{
    sk_wire_w w;
    co c = { 0, &w, NULL };
    if (b->n >= SK_WIRE_AUDIT_BATCH_MAX)
        return 1;
    sk_wire_w_init(&w, b->lines + b->len, sizeof b->lines - b->len);
    co_request_req(&c, (void *)(uintptr_t)q);
    if (sk_wire_w_ok(&w) != 0)
        return b->n > 0 ? 1 : -1; /* what does not fit an empty batch never will */
    b->len += (uint32_t)w.len;
    b->n++;
    return 0;
}

int sk_wire_audit_batch_next(const sk_wire_audit_request_batch *b, size_t *off, sk_wire_audit_request *out)
{
    sk_wire_r r;
    co c = { 1, NULL, &r };
    if (*off >= b->len || b->len > sizeof b->lines)
        return *off == b->len ? 1 : -1;
    sk_wire_r_init(&r, b->lines + *off, b->len - *off);
    /* Absent strings are not written by the decoder: no stale text from the
     * previous line (the struct is reused, not zeroed: it is ~12 KiB). */
    out->user[0] = out->tenant[0] = out->peer[0] = out->serial[0] = '\0';
    co_request_req(&c, out);
    if (r.err)
        return -1;
    *off += r.off;
    return 0;
}
