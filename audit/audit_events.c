/* audit_events.c — the high-volume entries: proxied request lines (queued and
 * group-committed) and handshake refusals (aggregated per interval). */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "audit_wint.h"

/* ---- handshake refusals ------------------------------------------------ */

static void bounded_copy(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strlen(src) : 0;
    if (n >= cap)
        n = cap - 1; /* a cut UTF-8 sequence is turned into U+FFFD later */
    if (n)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

int audit_refusal_summary_locked(sk_audit *a, int64_t now)
{
    json_t *d = NULL, *arr = NULL;
    if (a->ref_total == 0)
        return 0;
    arr = json_array();
    if (!arr)
        return -1;
    for (size_t i = 0; i < a->n_refs; i++) {
        json_t *it = json_pack("{s:o, s:o, s:o, s:I}", "peer", audit_jstr(a->refs[i].peer), "reason",
                               audit_jstr(a->refs[i].reason), "serial",
                               a->refs[i].serial[0] ? audit_jstr(a->refs[i].serial) : json_null(),
                               "count", (json_int_t)a->refs[i].count);
        if (!it || json_array_append_new(arr, it) != 0) {
            json_decref(arr);
            return -1;
        }
    }
    d = json_pack("{s:I, s:I, s:I, s:o}", "interval_s",
                  (json_int_t)((now - a->ref_start_ms) / 1000), "total", (json_int_t)a->ref_total,
                  "other", (json_int_t)a->ref_other, "refusals", arr);
    if (!d)
        return -1;
    if (audit_emit_locked(a, now, SK_AUDIT_EV_TLS_REFUSED, d, 0) != 0)
        return -1;
    a->n_refs = 0;
    a->ref_total = 0;
    a->ref_other = 0;
    return 0;
}

int audit_refusal_due(const sk_audit *a, int64_t now)
{
    return a->ref_total > 0 && now - a->ref_start_ms >= (int64_t)a->ref_secs * 1000;
}

int audit_kv_details(const sk_audit_event *ev, json_t **out)
{
    json_t *d = NULL;
    json_error_t jerr;
    if (ev->details_json) {
        d = json_loads(ev->details_json, JSON_REJECT_DUPLICATES, &jerr);
        if (!d || !json_is_object(d)) {
            json_decref(d);
            return -1;
        }
    } else {
        d = json_object();
        if (!d)
            return -1;
    }
    for (size_t i = 0; i < ev->n_kv; i++) {
        char *k;
        int r;
        if (!ev->kv || !ev->kv[i].key) {
            json_decref(d);
            return -1;
        }
        k = audit_sanitize(ev->kv[i].key);
        if (!k) {
            json_decref(d);
            return -1;
        }
        r = json_object_set_new(d, k, audit_jstr(ev->kv[i].value));
        free(k);
        if (r != 0) {
            json_decref(d);
            return -1;
        }
    }
    *out = d;
    return 0;
}

/* Write the queued request lines; called with mu and the flock held. A line that
 * cannot be written is reported and dropped: the rest still go out in order. */
int audit_drain_requests_locked(sk_audit *a)
{
    int rc = 0;
    for (unsigned i = 0; i < a->rq_len; i++) {
        const struct queued_req *q = &a->rq[i];
        if (audit_emit_text_locked(a, q->ts, SK_AUDIT_EV_REQUEST, q->is_null[0] ? NULL : q->actor,
                             q->is_null[1] ? NULL : q->tenant, q->is_null[2] ? NULL : q->peer,
                             q->is_null[3] ? NULL : q->serial, q->details, 0) != 0) {
            rc = -1;
            continue;
        }
        }
    if (rc != 0)
        sk_log(SK_LOG_ERR, "audit: request lines of a batch could not be written");
    a->rq_len = 0;
    return rc;
}

int sk_audit_request(sk_audit *a, const char *user, const char *tenant, const char *peer,
                     const char *serial, const char *method, const char *path, int status,
                     uint64_t bytes, uint64_t duration_us)
{
    /* The hot path: serialised by hand, no jansson allocations. */
    char d[2 * 6 * SK_AUDIT_MAX_FIELD + 256];
    sk_buf b;
    if (a && a->rops)
        return a->rops->request(a->rctx, user, tenant, peer, serial, method, path, status, bytes,
                                duration_us);
    sk_buf_init(&b, d, sizeof(d));
    sk_buf_add(&b, "{\"method\":", 10);
    audit_buf_json_str(&b, method ? method : "");
    sk_buf_add(&b, ",\"path\":", 8);
    audit_buf_json_str(&b, path ? path : "");
    sk_buf_add(&b, ",\"status\":", 10);
    if (status < 0) {
        sk_buf_add(&b, "-", 1);
        audit_buf_u64(&b, (uint64_t)(-(int64_t)status));
    } else {
        audit_buf_u64(&b, (uint64_t)status);
    }
    sk_buf_add(&b, ",\"bytes\":", 9);
    audit_buf_u64(&b, bytes > INT64_MAX ? INT64_MAX : bytes);
    sk_buf_add(&b, ",\"duration_us\":", 15);
    audit_buf_u64(&b, duration_us > INT64_MAX ? INT64_MAX : duration_us);
    sk_buf_add(&b, "}", 1);
    if (sk_buf_finish(&b) != 0)
        return -1;
    if (!a)
        return -1;
    {
        const char *fields[4] = { user, tenant, peer, serial };
        struct queued_req *q;
        int rc = 0;
        /* Anything that does not fit a queue slot takes the direct path. */
        if (b.len >= RQ_DETAILS)
            return audit_append_common(a, SK_AUDIT_EV_REQUEST, user, tenant, peer, serial, NULL, d, 0, NULL);
        for (int i = 0; i < 4; i++)
            if (fields[i] != NULL && strlen(fields[i]) >= RQ_FIELD)
                return audit_append_common(a, SK_AUDIT_EV_REQUEST, user, tenant, peer, serial, NULL, d, 0, NULL);
        pthread_mutex_lock(&a->mu);
        if (a->rq_len == RQ_LEN) {
            int64_t now = audit_now_ms(a);
            if (audit_begin_locked(a, now) != 0) {
                rc = -1;
                a->rq_len = 0; /* cannot write: drop rather than grow */
            } else {
                rc = audit_drain_requests_locked(a);
                audit_end_locked(a);
            }
        }
        q = &a->rq[a->rq_len++];
        q->ts = audit_now_ms(a);
        for (int i = 0; i < 4; i++) {
            char *dst = i == 0 ? q->actor : i == 1 ? q->tenant : i == 2 ? q->peer : q->serial;
            q->is_null[i] = fields[i] == NULL;
            memcpy(dst, fields[i] ? fields[i] : "", fields[i] ? strlen(fields[i]) + 1 : 1);
        }
        memcpy(q->details, d, b.len + 1);
        pthread_mutex_unlock(&a->mu);
        return rc;
    }
}

void sk_audit_lag(sk_audit *a, uint64_t *queued, int64_t *oldest_ms)
{
    *queued = 0;
    *oldest_ms = 0;
    if (!a)
        return;
    if (a->rops) {
        a->rops->lag(a->rctx, queued, oldest_ms);
        return;
    }
    pthread_mutex_lock(&a->mu);
    *queued = a->rq_len;
    if (a->rq_len > 0)
        *oldest_ms = audit_now_ms(a) - a->rq[0].ts;
    pthread_mutex_unlock(&a->mu);
}

int sk_audit_refused(sk_audit *a, const char *peer, const char *reason, const char *serial)
{
    char p[64], r[32], s[80];
    int64_t now;
    int rc = 0;
    size_t i;
    if (!a)
        return -1;
    if (a->rops)
        return a->rops->refused(a->rctx, peer, reason, serial);
    bounded_copy(p, sizeof(p), peer);
    bounded_copy(r, sizeof(r), reason);
    bounded_copy(s, sizeof(s), serial);
    pthread_mutex_lock(&a->mu);
    now = audit_now_ms(a);
    if (audit_refusal_due(a, now)) {
        if (audit_begin_locked(a, now) != 0) {
            rc = -1;
        } else {
            (void)audit_drain_requests_locked(a);
            rc = audit_refusal_summary_locked(a, now);
            audit_end_locked(a);
        }
    }
    if (a->ref_total == 0)
        a->ref_start_ms = now;
    a->ref_total++;
    for (i = 0; i < a->n_refs; i++)
        if (!strcmp(a->refs[i].peer, p) && !strcmp(a->refs[i].reason, r) &&
            !strcmp(a->refs[i].serial, s))
            break;
    if (i < a->n_refs) {
        a->refs[i].count++;
    } else if (a->n_refs < REFUSAL_SLOTS) {
        memcpy(a->refs[i].peer, p, sizeof(p));
        memcpy(a->refs[i].reason, r, sizeof(r));
        memcpy(a->refs[i].serial, s, sizeof(s));
        a->refs[i].count = 1;
        a->n_refs++;
    } else {
        a->ref_other++; /* the table is full: counted, not itemised */
    }
    pthread_mutex_unlock(&a->mu);
    return rc;
}

