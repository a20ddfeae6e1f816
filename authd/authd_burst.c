/* authd_burst.c — the alarm on a burst of failed logins across all accounts.
 *
 * The count must be one for the whole cluster: with a counter per process or per
 * node an attacker spreading guesses over them would stay under the threshold. So
 * the recent failure times live in the store (shared value "auth.burst") and each
 * failure is recorded by an atomic read-modify-write there: the policy module
 * (sk_policy_burst_record) decides inside it, so exactly one failure, on one node,
 * raises the alarm of a window. authd then audits it and mails the operators.
 *
 * Value format (little-endian): 01 | alarmed (u8) | alarm_at (i64) | n (u16) |
 * n x time (i64), oldest first, n <= SK_POLICY_BURST_CAP. Times outside the window
 * are dropped on every write, so the value stays as small as the threshold allows.
 */
#include <string.h>

#include "authd_int.h"
#include "sk_notify.h"

#define BURST_VALUE "auth.burst"
#define BURST_VERSION 1
#define BURST_HDR (1 + 1 + 8 + 2)

struct burst_job {
    const sk_policy_config *pol;
    int64_t now;
    int alarm;
    uint32_t count;
};

/* -1 when malformed: the caller starts afresh (a lost history only delays an
 * alarm; refusing to count would suppress it). */
int authd_burst_decode(const uint8_t *v, size_t len, sk_policy_burst *b)
{
    uint32_t n;
    sk_policy_burst_init(b);
    if (len < BURST_HDR || v[0] != BURST_VERSION || v[1] > 1)
        return -1;
    n = (uint32_t)v[10] | (uint32_t)v[11] << 8;
    if (n > SK_POLICY_BURST_CAP || len != BURST_HDR + 8 * (size_t)n)
        return -1;
    b->alarmed = v[1];
    b->alarm_at = authd_get_i64(v + 2);
    for (uint32_t i = 0; i < n; i++)
        b->ts[i] = authd_get_i64(v + BURST_HDR + 8 * i);
    /* Times are seconds since the epoch: a negative one is not ours, and would
     * make the policy's window arithmetic overflow. */
    for (uint32_t i = 0; i < n && b->alarm_at >= 0; i++)
        if (b->ts[i] < 0)
            b->alarm_at = -1;
    if (b->alarm_at < 0) {
        sk_policy_burst_init(b);
        return -1;
    }
    b->count = n;
    b->head = n % SK_POLICY_BURST_CAP;
    return 0;
}

/* Keep only what still counts: times inside the window, oldest first. */
size_t authd_burst_encode(const sk_policy_config *pol, const sk_policy_burst *b, int64_t now, uint8_t *v,
                          size_t cap)
{
    uint32_t n = 0, start = (b->head + SK_POLICY_BURST_CAP - b->count) % SK_POLICY_BURST_CAP;
    if (cap < BURST_HDR + 8 * (size_t)b->count)
        return 0;
    v[0] = BURST_VERSION;
    v[1] = b->alarmed ? 1 : 0;
    authd_put_i64(v + 2, b->alarm_at);
    for (uint32_t i = 0; i < b->count; i++) {
        int64_t t = b->ts[(start + i) % SK_POLICY_BURST_CAP];
        if (t > now || now - t < pol->burst_window) /* t >= 0 and now >= 0: no overflow */
            authd_put_i64(v + BURST_HDR + 8 * n++, t);
    }
    v[10] = (uint8_t)(n & 0xff);
    v[11] = (uint8_t)(n >> 8);
    return BURST_HDR + 8 * (size_t)n;
}

static int burst_fn(uint8_t *val, size_t *len, int exists, void *ctx)
{
    struct burst_job *j = ctx;
    sk_policy_burst b;
    size_t n;
    if (!exists || authd_burst_decode(val, *len, &b) != 0)
        sk_policy_burst_init(&b);
    j->alarm = sk_policy_burst_record(j->pol, &b, j->now);
    j->count = sk_policy_burst_count(j->pol, &b, j->now);
    n = authd_burst_encode(j->pol, &b, j->now, val, SK_STORE_VALUE_MAX);
    if (n == 0)
        return 1;
    *len = n;
    return 0;
}

static void raise_alarm(sk_authd *a, const struct burst_job *j, const authd_failure *f)
{
    char n[16], body[768];
    sk_audit_kv kv[] = { { "failures", n } };
    sk_audit_event e = { .event = "alarm.login_burst", .actor = f->id, .tenant = f->tenant, .peer = f->peer,
                         .serial = f->serial, .kv = kv, .n_kv = SK_ARRAY_LEN(kv) };
    if (sk_snprintf(n, sizeof n, "%u", j->count) != 0)
        n[0] = '\0';
    sk_log(SK_LOG_WARN, "ALARM: %u failed logins within %lld s (latest %s/%s from %s)", j->count,
           (long long)a->pol.burst_window, f->tenant, f->id, f->peer);
    if (a->audit != NULL && sk_audit_append(a->audit, &e, 1, NULL) != 0)
        sk_log(SK_LOG_ERR, "AUDIT WRITE FAILED for the burst alarm");
    if (a->conf == NULL || sk_conf_operators_for(a->conf, SK_NOTIFY_MAJOR)[0] == '\0')
        return; /* nobody to tell: the log line and the audit entry remain */
    if (sk_snprintf(body, sizeof body,
                    "Sekisho saw %u failed logins within %lld seconds, across all accounts and nodes.\n"
                    "Latest: certificate %s/%s (serial %s) from %s.\n"
                    "Check the audit log: sekishoctl audit show --event login.failure\n",
                    j->count, (long long)a->pol.burst_window, f->tenant, f->id, f->serial, f->peer) != 0)
        return;
    {
        struct sk_notify_msg m = { .from = a->conf->notify_from[0] ? a->conf->notify_from : NULL,
                                   .to = sk_conf_operators_for(a->conf, SK_NOTIFY_MAJOR),
                                   .subject = "Sekisho ALARM: burst of failed logins",
                                   .body = body };
        if (sk_notify_send_level(a->conf->notify_command, &m, SK_NOTIFY_MAJOR) != 0)
            sk_log(SK_LOG_ERR, "the burst alarm mail could not be sent");
    }
}

void authd_note_failure(sk_authd *a, const authd_failure *f)
{
    struct burst_job j = { &a->pol, authd_now(), 0, 0 };
    if (a->pol.burst_threshold == 0 || a->pol.burst_window <= 0)
        return;
    if (sk_store_value_update(a->store, BURST_VALUE, burst_fn, &j) != SK_STORE_OK) {
        sk_log(SK_LOG_ERR, "authd: the failed-login burst counter could not be updated");
        return;
    }
    if (j.alarm)
        raise_alarm(a, &j, f);
}
