/* Per-account lockout and the all-accounts burst detector. */
#include "sk_policy.h"
#include "sk_policy_int.h"

void sk_policy_lockout_init(sk_policy_lockout *s)
{
    s->failures = 0;
    s->locked_until = 0;
    s->operator_locked = 0;
}

sk_policy_lock_state sk_policy_lockout_state(const sk_policy_lockout *s, int64_t now)
{
    if (s->operator_locked)
        return SK_POLICY_LOCK_OPERATOR;
    /* locked_until is an exclusive end: at exactly locked_until the lock is over. */
    if (s->locked_until != 0 && now < s->locked_until)
        return SK_POLICY_LOCK_TIMED;
    return SK_POLICY_LOCK_NONE;
}

int sk_policy_lockout_may_attempt(const sk_policy_lockout *s, int64_t now)
{
    return sk_policy_lockout_state(s, now) == SK_POLICY_LOCK_NONE;
}

int sk_policy_lockout_record_failure(const sk_policy_config *cfg, sk_policy_lockout *s, int64_t now)
{
    if (sk_policy_lockout_state(s, now) != SK_POLICY_LOCK_NONE)
        return 0;
    if (s->locked_until != 0) {
        /* The timed lock has run out: the user starts a fresh series. */
        s->locked_until = 0;
        s->failures = 0;
    }
    if (s->failures < UINT32_MAX)
        s->failures++;
    if (s->failures < cfg->lockout_threshold)
        return 0;
    s->locked_until = skp_add(now, cfg->lockout_duration);
    /* 0 means "no lock"; a lock ending at the epoch must still be a lock. */
    if (s->locked_until == 0)
        s->locked_until = 1;
    return 1;
}

void sk_policy_lockout_record_success(sk_policy_lockout *s)
{
    s->failures = 0;
    s->locked_until = 0;
}

void sk_policy_lockout_operator_lock(sk_policy_lockout *s)
{
    s->operator_locked = 1;
}

void sk_policy_lockout_unlock(sk_policy_lockout *s)
{
    sk_policy_lockout_init(s);
}

/* ---- burst detector ---------------------------------------------------- */

void sk_policy_burst_init(sk_policy_burst *b)
{
    uint32_t i;

    for (i = 0; i < SK_POLICY_BURST_CAP; i++)
        b->ts[i] = 0;
    b->head = 0;
    b->count = 0;
    b->alarmed = 0;
    b->alarm_at = 0;
}

/* The k-th most recent entry, k = 0 being the newest. Requires k < count. */
static int64_t burst_recent(const sk_policy_burst *b, uint32_t k)
{
    uint32_t idx = (b->head + SK_POLICY_BURST_CAP - 1u - k) % SK_POLICY_BURST_CAP;
    return b->ts[idx];
}

uint32_t sk_policy_burst_count(const sk_policy_config *cfg, const sk_policy_burst *b, int64_t now)
{
    int64_t oldest_ok = skp_sub(now, cfg->burst_window); /* exclusive lower bound */
    uint32_t n = 0, k, count = b->count > SK_POLICY_BURST_CAP ? SK_POLICY_BURST_CAP : b->count;

    /* Scan all entries rather than stopping at the first old one: a clock that
     * stepped back leaves the ring out of order. */
    for (k = 0; k < count; k++) {
        int64_t t = burst_recent(b, k);
        if (t > oldest_ok && t <= now)
            n++;
    }
    return n;
}

int sk_policy_burst_record(const sk_policy_config *cfg, sk_policy_burst *b, int64_t now)
{
    /* Defend against a corrupted struct handed back by the caller. */
    b->head %= SK_POLICY_BURST_CAP;
    if (b->count > SK_POLICY_BURST_CAP)
        b->count = SK_POLICY_BURST_CAP;

    b->ts[b->head] = now;
    b->head = (b->head + 1u) % SK_POLICY_BURST_CAP;
    if (b->count < SK_POLICY_BURST_CAP)
        b->count++;

    if (sk_policy_burst_count(cfg, b, now) < cfg->burst_threshold)
        return 0;
    if (b->alarmed && now >= b->alarm_at && now < skp_add(b->alarm_at, cfg->burst_window))
        return 0;
    b->alarmed = 1;
    b->alarm_at = now;
    return 1;
}
