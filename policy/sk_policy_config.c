/* Policy configuration: defaults and consistency checks. */
#include <stddef.h>

#include "sk_policy.h"

void sk_policy_defaults(sk_policy_config *c)
{
    c->lockout_threshold = 5;
    c->lockout_duration = 30 * SK_POLICY_MINUTE;
    c->idle_timeout = 60 * SK_POLICY_MINUTE;
    c->absolute_timeout = 12 * SK_POLICY_HOUR;
    c->dormant_notify_after = 180 * SK_POLICY_DAY;
    c->dormant_lock_after = 30 * SK_POLICY_DAY;
    c->dormant_delete_after = 90 * SK_POLICY_DAY;
    c->password_min_length = 8;
    c->password_max_length = 128;
    c->password_require_upper = 1;
    c->password_require_lower = 1;
    c->password_require_digit = 1;
    c->burst_threshold = 20;
    c->burst_window = 5 * SK_POLICY_MINUTE;
    c->totp_step = 30;
    c->totp_window = 1;
}

/* Range checks as data: one row per key, so adding a setting is one line. */
struct i64_rule {
    size_t off;
    int64_t min, max;
    const char *reason;
};
struct u32_rule {
    size_t off;
    uint32_t min, max;
    const char *reason;
};

#define I64(field, lo, hi, why) { offsetof(sk_policy_config, field), (lo), (hi), why }
#define U32(field, lo, hi, why) { offsetof(sk_policy_config, field), (lo), (hi), why }

static const struct i64_rule i64_rules[] = {
    I64(lockout_duration, 1, SK_POLICY_DURATION_MAX, "lockout_duration must be between 1 second and 100 years"),
    I64(idle_timeout, 1, SK_POLICY_DURATION_MAX, "idle_timeout must be between 1 second and 100 years"),
    I64(absolute_timeout, 1, SK_POLICY_DURATION_MAX, "absolute_timeout must be between 1 second and 100 years"),
    I64(dormant_notify_after, 1, SK_POLICY_DURATION_MAX,
        "dormant_notify_after must be between 1 second and 100 years"),
    I64(dormant_lock_after, 1, SK_POLICY_DURATION_MAX, "dormant_lock_after must be between 1 second and 100 years"),
    I64(dormant_delete_after, 1, SK_POLICY_DURATION_MAX,
        "dormant_delete_after must be between 1 second and 100 years"),
    I64(burst_window, 1, SK_POLICY_DURATION_MAX, "burst_window must be between 1 second and 100 years"),
    I64(totp_step, 1, 300, "totp_step must be between 1 and 300 seconds"),
};

static const struct u32_rule u32_rules[] = {
    U32(lockout_threshold, 1, 100, "lockout_threshold must be between 1 and 100 (NIST SP 800-63B)"),
    U32(password_min_length, 8, SK_POLICY_PASSWORD_HARD_MAX, "password_min_length must be at least 8"),
    /* 20 for portals whose users are used to 8-20; NIST SP 800-63B recommends >= 64 (sekisho -t warns). */
    U32(password_max_length, 20, SK_POLICY_PASSWORD_HARD_MAX, "password_max_length must be between 20 and 1024"),
    U32(burst_threshold, 1, SK_POLICY_BURST_CAP, "burst_threshold must be between 1 and 256"),
    U32(totp_window, 0, 10, "totp_window must be between 0 and 10 steps"),
};

int sk_policy_config_validate(const sk_policy_config *c, const char **reason)
{
    const char *why = NULL;
    const unsigned char *base = (const unsigned char *)c;
    size_t i;

    if (c == NULL) {
        why = "no configuration";
        goto out;
    }
    for (i = 0; i < sizeof(u32_rules) / sizeof(u32_rules[0]) && why == NULL; i++) {
        const uint32_t *v = (const uint32_t *)(const void *)(base + u32_rules[i].off);
        if (*v < u32_rules[i].min || *v > u32_rules[i].max)
            why = u32_rules[i].reason;
    }
    for (i = 0; i < sizeof(i64_rules) / sizeof(i64_rules[0]) && why == NULL; i++) {
        const int64_t *v = (const int64_t *)(const void *)(base + i64_rules[i].off);
        if (*v < i64_rules[i].min || *v > i64_rules[i].max)
            why = i64_rules[i].reason;
    }
    if (why != NULL)
        goto out;
    if (c->password_min_length > c->password_max_length)
        why = "password_min_length must not exceed password_max_length";
    else if (c->idle_timeout > c->absolute_timeout)
        why = "idle_timeout must not exceed absolute_timeout";
out:
    if (why != NULL && reason != NULL)
        *reason = why;
    return why == NULL ? 0 : -1;
}
