/* Time-driven decisions: session expiry, dormancy, TOTP step acceptance. */
#include "sk_policy.h"
#include "sk_policy_int.h"

sk_policy_session_verdict sk_policy_session_check(const sk_policy_config *cfg, int64_t created,
                                                  int64_t last_activity, int64_t now)
{
    if (last_activity < created)
        return SK_POLICY_SESSION_INVALID;
    /* Limits are exclusive ends, written as "now >= start + limit" so that no
     * subtraction can overflow; a clock stepped back simply stays below. */
    if (now >= skp_add(created, cfg->absolute_timeout))
        return SK_POLICY_SESSION_ABSOLUTE_EXPIRED;
    if (now >= skp_add(last_activity, cfg->idle_timeout))
        return SK_POLICY_SESSION_IDLE_EXPIRED;
    return SK_POLICY_SESSION_OK;
}

int64_t sk_policy_session_expires_at(const sk_policy_config *cfg, int64_t created, int64_t last_activity)
{
    int64_t idle = skp_add(last_activity, cfg->idle_timeout);
    int64_t abs_end = skp_add(created, cfg->absolute_timeout);

    return idle < abs_end ? idle : abs_end;
}

/* ---- dormancy ---------------------------------------------------------- */

sk_policy_dormancy_action sk_policy_dormancy_next(const sk_policy_config *cfg, const sk_policy_dormancy *d,
                                                  int64_t now)
{
    int64_t base = d->last_login;
    /* Marks older than the last login belong to an earlier dormant period. */
    int notified = d->notified_at != 0 && d->notified_at >= base;
    int locked = d->locked_at != 0 && d->locked_at >= base;
    int64_t due;

    if (locked) {
        /* Deletion is irreversible: only accounts that are plainly general. */
        int deletable = (d->roles & SK_POLICY_ROLE_GENERAL) && !(d->roles & SK_POLICY_ROLE_ADMIN);
        if (deletable && now >= skp_add(d->locked_at, cfg->dormant_delete_after))
            return SK_POLICY_DORMANCY_DELETE;
        return SK_POLICY_DORMANCY_NONE;
    }
    if (!notified)
        return now >= skp_add(base, cfg->dormant_notify_after) ? SK_POLICY_DORMANCY_NOTIFY
                                                               : SK_POLICY_DORMANCY_NONE;
    /* The user always gets the full warning period after the reminder. */
    due = skp_add(skp_add(base, cfg->dormant_notify_after), cfg->dormant_lock_after);
    if (skp_add(d->notified_at, cfg->dormant_lock_after) > due)
        due = skp_add(d->notified_at, cfg->dormant_lock_after);
    return now >= due ? SK_POLICY_DORMANCY_LOCK : SK_POLICY_DORMANCY_NONE;
}

/* ---- TOTP ---------------------------------------------------------------- */

int64_t sk_policy_totp_step_at(const sk_policy_config *cfg, int64_t now)
{
    int64_t q = now / cfg->totp_step;

    if (now % cfg->totp_step != 0 && now < 0)
        q--;
    return q;
}

int sk_policy_totp_candidates(const sk_policy_config *cfg, int64_t last_accepted_step, int64_t now,
                              int64_t *first, int64_t *last)
{
    int64_t t = sk_policy_totp_step_at(cfg, now);
    int64_t lo = skp_sub(t, (int64_t)cfg->totp_window);
    int64_t hi = skp_add(t, (int64_t)cfg->totp_window);

    if (last_accepted_step == INT64_MAX)
        return -1;
    if (lo <= last_accepted_step)
        lo = last_accepted_step + 1;
    if (lo > hi)
        return -1;
    *first = lo;
    *last = hi;
    return 0;
}

sk_policy_totp_verdict sk_policy_totp_check(const sk_policy_config *cfg, int64_t last_accepted_step,
                                            int64_t now, int64_t matched_step)
{
    int64_t t = sk_policy_totp_step_at(cfg, now);

    if (matched_step <= last_accepted_step)
        return SK_POLICY_TOTP_REPLAY;
    if (matched_step < skp_sub(t, (int64_t)cfg->totp_window) || matched_step > skp_add(t, (int64_t)cfg->totp_window))
        return SK_POLICY_TOTP_OUT_OF_WINDOW;
    return SK_POLICY_TOTP_ACCEPT;
}
