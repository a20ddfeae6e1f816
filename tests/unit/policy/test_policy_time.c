/* Unit tests: configuration, lockout, sessions, dormancy, TOTP, login FSM, burst, roles. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sk_policy.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define T0 INT64_C(1700000000) /* an arbitrary "now" in 2023 */

static sk_policy_config defaults(void)
{
    sk_policy_config c;
    sk_policy_defaults(&c);
    return c;
}

/* ---- config ------------------------------------------------------------- */

static void test_defaults(void **state)
{
    sk_policy_config c = defaults();
    const char *why = "untouched";
    (void)state;
    assert_int_equal(c.lockout_threshold, 5);
    assert_int_equal(c.lockout_duration, 1800);
    assert_int_equal(c.idle_timeout, 3600);
    assert_int_equal(c.absolute_timeout, 12 * 3600);
    assert_int_equal(c.dormant_notify_after, 180 * 86400);
    assert_int_equal(c.dormant_lock_after, 30 * 86400);
    assert_int_equal(c.dormant_delete_after, 90 * 86400);
    assert_int_equal(c.password_min_length, 8);
    assert_int_equal(c.password_max_length, 128);
    assert_true(c.password_require_upper && c.password_require_lower && c.password_require_digit);
    assert_int_equal(c.burst_threshold, 20);
    assert_int_equal(c.burst_window, 300);
    assert_int_equal(c.totp_step, 30);
    assert_int_equal(c.totp_window, 1);
    assert_int_equal(sk_policy_config_validate(&c, &why), 0);
    assert_string_equal(why, "untouched");
}

struct cfg_case {
    const char *name;
    void (*mutate)(sk_policy_config *c);
    int ok;
    const char *reason_has; /* substring of the reason when !ok */
};

#define MUT(n, body) static void n(sk_policy_config *c) { body; }
MUT(m_thr0, c->lockout_threshold = 0)
MUT(m_thr1, c->lockout_threshold = 1)
MUT(m_thr100, c->lockout_threshold = 100)
MUT(m_thr101, c->lockout_threshold = 101)
MUT(m_lockdur0, c->lockout_duration = 0)
MUT(m_lockdurneg, c->lockout_duration = -5)
MUT(m_lockdurmax, c->lockout_duration = SK_POLICY_DURATION_MAX)
MUT(m_lockdurbig, c->lockout_duration = SK_POLICY_DURATION_MAX + 1)
MUT(m_idle0, c->idle_timeout = 0)
MUT(m_abs0, c->absolute_timeout = 0)
MUT(m_idle_gt_abs, c->idle_timeout = c->absolute_timeout + 1)
MUT(m_idle_eq_abs, c->idle_timeout = c->absolute_timeout)
MUT(m_notify0, c->dormant_notify_after = 0)
MUT(m_dlock0, c->dormant_lock_after = 0)
MUT(m_ddel0, c->dormant_delete_after = 0)
MUT(m_min7, c->password_min_length = 7)
MUT(m_min8, c->password_min_length = 8)
MUT(m_max19, c->password_max_length = 19)
MUT(m_max20, c->password_max_length = 20; c->password_min_length = 8)
MUT(m_max64, c->password_max_length = 64)
MUT(m_max1024, c->password_max_length = 1024)
MUT(m_max1025, c->password_max_length = 1025)
MUT(m_min_gt_max, c->password_min_length = 100; c->password_max_length = 99)
MUT(m_min_eq_max, c->password_min_length = 64; c->password_max_length = 64)
MUT(m_req_none, c->password_require_upper = 0; c->password_require_lower = 0; c->password_require_digit = 0)
MUT(m_burst0, c->burst_threshold = 0)
MUT(m_burstcap, c->burst_threshold = SK_POLICY_BURST_CAP)
MUT(m_burstcap1, c->burst_threshold = SK_POLICY_BURST_CAP + 1)
MUT(m_burstwin0, c->burst_window = 0)
MUT(m_step0, c->totp_step = 0)
MUT(m_step301, c->totp_step = 301)
MUT(m_win10, c->totp_window = 10)
MUT(m_win11, c->totp_window = 11)

static const struct cfg_case cfg_cases[] = {
    { "threshold 0", m_thr0, 0, "lockout_threshold" },
    { "threshold 1", m_thr1, 1, NULL },
    { "threshold 100", m_thr100, 1, NULL },
    { "threshold 101", m_thr101, 0, "lockout_threshold" },
    { "lockout_duration 0", m_lockdur0, 0, "lockout_duration" },
    { "lockout_duration <0", m_lockdurneg, 0, "lockout_duration" },
    { "lockout_duration max", m_lockdurmax, 1, NULL },
    { "lockout_duration max+1", m_lockdurbig, 0, "lockout_duration" },
    { "idle 0", m_idle0, 0, "idle_timeout" },
    { "absolute 0", m_abs0, 0, "absolute_timeout" },
    { "idle > absolute", m_idle_gt_abs, 0, "idle_timeout must not exceed" },
    { "idle == absolute", m_idle_eq_abs, 1, NULL },
    { "notify 0", m_notify0, 0, "dormant_notify_after" },
    { "dormant lock 0", m_dlock0, 0, "dormant_lock_after" },
    { "dormant delete 0", m_ddel0, 0, "dormant_delete_after" },
    { "min 7", m_min7, 0, "password_min_length" },
    { "min 8", m_min8, 1, NULL },
    { "max 19", m_max19, 0, "password_max_length" },
    { "max 20", m_max20, 1, NULL },
    { "max 64", m_max64, 1, NULL },
    { "max 1024", m_max1024, 1, NULL },
    { "max 1025", m_max1025, 0, "password_max_length" },
    { "min > max", m_min_gt_max, 0, "must not exceed password_max_length" },
    { "min == max", m_min_eq_max, 1, NULL },
    { "no composition", m_req_none, 1, NULL },
    { "burst 0", m_burst0, 0, "burst_threshold" },
    { "burst cap", m_burstcap, 1, NULL },
    { "burst cap+1", m_burstcap1, 0, "burst_threshold" },
    { "burst window 0", m_burstwin0, 0, "burst_window" },
    { "totp step 0", m_step0, 0, "totp_step" },
    { "totp step 301", m_step301, 0, "totp_step" },
    { "totp window 10", m_win10, 1, NULL },
    { "totp window 11", m_win11, 0, "totp_window" },
};

static void test_config_validate(void **state)
{
    size_t i;
    (void)state;
    for (i = 0; i < N(cfg_cases); i++) {
        sk_policy_config c = defaults();
        const char *why = NULL;
        int rc;
        cfg_cases[i].mutate(&c);
        rc = sk_policy_config_validate(&c, &why);
        if (cfg_cases[i].ok) {
            if (rc != 0)
                fail_msg("%s: rejected: %s", cfg_cases[i].name, why ? why : "(null)");
        } else {
            if (rc != -1 || why == NULL || strstr(why, cfg_cases[i].reason_has) == NULL)
                fail_msg("%s: rc=%d reason=%s", cfg_cases[i].name, rc, why ? why : "(null)");
        }
    }
    /* NULL reason pointer is allowed; NULL config is refused. */
    {
        sk_policy_config c = defaults();
        c.lockout_threshold = 0;
        assert_int_equal(sk_policy_config_validate(&c, NULL), -1);
        assert_int_equal(sk_policy_config_validate(NULL, NULL), -1);
    }
}

/* ---- lockout -------------------------------------------------------------- */

/* Record 5 failures at now (default threshold): only the 5th locks. */
static void lock_with_failures(const sk_policy_config *c, sk_policy_lockout *s, int64_t now)
{
    int i;
    for (i = 1; i <= 5; i++)
        assert_int_equal(sk_policy_lockout_record_failure(c, s, now), i == 5 ? 1 : 0);
}

static void test_lockout_fifth_failure_locks(void **state)
{
    sk_policy_config c = defaults();
    sk_policy_lockout s;
    int i;
    (void)state;
    sk_policy_lockout_init(&s);
    assert_int_equal(sk_policy_lockout_state(&s, T0), SK_POLICY_LOCK_NONE);
    for (i = 1; i <= 4; i++) {
        assert_true(sk_policy_lockout_may_attempt(&s, T0 + i));
        assert_int_equal(sk_policy_lockout_record_failure(&c, &s, T0 + i), 0);
        assert_int_equal(s.failures, (uint32_t)i);
        assert_int_equal(sk_policy_lockout_state(&s, T0 + i), SK_POLICY_LOCK_NONE);
    }
    assert_int_equal(sk_policy_lockout_record_failure(&c, &s, T0 + 5), 1);
    assert_int_equal(s.locked_until, T0 + 5 + 1800);
    assert_int_equal(sk_policy_lockout_state(&s, T0 + 5), SK_POLICY_LOCK_TIMED);
    assert_false(sk_policy_lockout_may_attempt(&s, T0 + 5));
    /* Boundary: one second before the end still locked, at the end unlocked. */
    assert_false(sk_policy_lockout_may_attempt(&s, T0 + 5 + 1799));
    assert_true(sk_policy_lockout_may_attempt(&s, T0 + 5 + 1800));
    assert_int_equal(sk_policy_lockout_state(&s, T0 + 5 + 1800), SK_POLICY_LOCK_NONE);
}

static void test_lockout_no_extension_while_locked(void **state)
{
    sk_policy_config c = defaults();
    sk_policy_lockout s;
    int i;
    (void)state;
    sk_policy_lockout_init(&s);
    lock_with_failures(&c, &s, T0);
    assert_int_equal(s.locked_until, T0 + 1800);
    for (i = 0; i < 50; i++)
        assert_int_equal(sk_policy_lockout_record_failure(&c, &s, T0 + 100 + i), 0);
    assert_int_equal(s.locked_until, T0 + 1800);
    assert_int_equal(s.failures, 5);
}

static void test_lockout_fresh_series_after_expiry(void **state)
{
    sk_policy_config c = defaults();
    sk_policy_lockout s;
    int i;
    (void)state;
    sk_policy_lockout_init(&s);
    lock_with_failures(&c, &s, T0);
    /* First failure after the lock ends starts again at 1: four more do not lock. */
    for (i = 0; i < 4; i++)
        assert_int_equal(sk_policy_lockout_record_failure(&c, &s, T0 + 1800 + i), 0);
    assert_int_equal(s.failures, 4);
    assert_int_equal(s.locked_until, 0);
    assert_int_equal(sk_policy_lockout_record_failure(&c, &s, T0 + 1900), 1);
    assert_int_equal(s.locked_until, T0 + 1900 + 1800);
}

static void test_lockout_success_resets(void **state)
{
    sk_policy_config c = defaults();
    sk_policy_lockout s;
    int i;
    (void)state;
    sk_policy_lockout_init(&s);
    for (i = 0; i < 4; i++)
        assert_int_equal(sk_policy_lockout_record_failure(&c, &s, T0), 0);
    sk_policy_lockout_record_success(&s);
    assert_int_equal(s.failures, 0);
    /* 4 more failures after the success do not lock: the count is consecutive. */
    for (i = 0; i < 4; i++)
        assert_int_equal(sk_policy_lockout_record_failure(&c, &s, T0 + 1), 0);
    assert_true(sk_policy_lockout_may_attempt(&s, T0 + 1));
    assert_int_equal(sk_policy_lockout_record_failure(&c, &s, T0 + 2), 1);
}

static void test_lockout_thresholds_table(void **state)
{
    static const uint32_t thresholds[] = { 1, 2, 3, 5, 10, 100 };
    size_t t;
    (void)state;
    for (t = 0; t < N(thresholds); t++) {
        sk_policy_config c = defaults();
        sk_policy_lockout s;
        uint32_t i;
        c.lockout_threshold = thresholds[t];
        c.lockout_duration = 60;
        sk_policy_lockout_init(&s);
        for (i = 1; i < thresholds[t]; i++)
            assert_int_equal(sk_policy_lockout_record_failure(&c, &s, T0), 0);
        assert_int_equal(sk_policy_lockout_record_failure(&c, &s, T0), 1);
        assert_int_equal(sk_policy_lockout_state(&s, T0 + 59), SK_POLICY_LOCK_TIMED);
        assert_int_equal(sk_policy_lockout_state(&s, T0 + 60), SK_POLICY_LOCK_NONE);
    }
}

static void test_lockout_operator(void **state)
{
    sk_policy_config c = defaults();
    sk_policy_lockout s;
    (void)state;
    sk_policy_lockout_init(&s);
    sk_policy_lockout_operator_lock(&s);
    assert_int_equal(sk_policy_lockout_state(&s, T0), SK_POLICY_LOCK_OPERATOR);
    assert_false(sk_policy_lockout_may_attempt(&s, INT64_MAX));
    /* Time does not end it, neither does a success or failures. */
    sk_policy_lockout_record_success(&s);
    assert_int_equal(sk_policy_lockout_state(&s, T0 + 100 * 86400), SK_POLICY_LOCK_OPERATOR);
    assert_int_equal(sk_policy_lockout_record_failure(&c, &s, T0), 0);
    /* Operator lock on top of a timed lock: operator wins, and outlasts it. */
    sk_policy_lockout_unlock(&s);
    lock_with_failures(&c, &s, T0);
    sk_policy_lockout_operator_lock(&s);
    assert_int_equal(sk_policy_lockout_state(&s, T0), SK_POLICY_LOCK_OPERATOR);
    assert_int_equal(sk_policy_lockout_state(&s, T0 + 1800), SK_POLICY_LOCK_OPERATOR);
    sk_policy_lockout_unlock(&s);
    assert_int_equal(sk_policy_lockout_state(&s, T0), SK_POLICY_LOCK_NONE);
    assert_int_equal(s.failures, 0);
    assert_int_equal(s.locked_until, 0);
    /* Unlock of a timed lock (operator action) ends it early. */
    lock_with_failures(&c, &s, T0);
    assert_false(sk_policy_lockout_may_attempt(&s, T0 + 1));
    sk_policy_lockout_unlock(&s);
    assert_true(sk_policy_lockout_may_attempt(&s, T0 + 1));
}

static void test_lockout_saturation(void **state)
{
    sk_policy_config c = defaults();
    sk_policy_lockout s;
    (void)state;
    sk_policy_lockout_init(&s);
    s.failures = 4;
    assert_int_equal(sk_policy_lockout_record_failure(&c, &s, INT64_MAX - 10), 1);
    assert_int_equal(s.locked_until, INT64_MAX); /* saturated, not wrapped */
    assert_false(sk_policy_lockout_may_attempt(&s, INT64_MAX - 1));
    /* A lock ending exactly at 0 (now = -1800) is still a lock. */
    sk_policy_lockout_init(&s);
    s.failures = 4;
    assert_int_equal(sk_policy_lockout_record_failure(&c, &s, -1800), 1);
    assert_int_not_equal(s.locked_until, 0);
    assert_false(sk_policy_lockout_may_attempt(&s, -1800));
    /* Failure counter never wraps. */
    sk_policy_lockout_init(&s);
    s.failures = UINT32_MAX;
    s.locked_until = 0;
    c.lockout_threshold = 100;
    assert_int_equal(sk_policy_lockout_record_failure(&c, &s, T0), 1);
    assert_int_equal(s.failures, UINT32_MAX);
}

/* ---- sessions ------------------------------------------------------------- */

struct sess_case {
    int64_t created, last, now;
    sk_policy_session_verdict want;
};

static void test_session_table(void **state)
{
    const int64_t C = T0, H = 3600;
    const struct sess_case cases[] = {
        { C, C, C, SK_POLICY_SESSION_OK },
        { C, C, C + 59 * 60 + 59, SK_POLICY_SESSION_OK },           /* 59:59 idle */
        { C, C, C + 60 * 60, SK_POLICY_SESSION_IDLE_EXPIRED },      /* 60:00 idle */
        { C, C, C + 60 * 60 + 1, SK_POLICY_SESSION_IDLE_EXPIRED },
        { C, C + 11 * H, C + 12 * H - 1, SK_POLICY_SESSION_OK },   /* 11:59:59 since login */
        { C, C + 11 * H, C + 12 * H, SK_POLICY_SESSION_ABSOLUTE_EXPIRED },
        { C, C + 12 * H - 1, C + 12 * H, SK_POLICY_SESSION_ABSOLUTE_EXPIRED },
        { C, C + 11 * H, C + 13 * H, SK_POLICY_SESSION_ABSOLUTE_EXPIRED }, /* both: absolute */
        { C, C + 2 * H, C + 2 * H + 3599, SK_POLICY_SESSION_OK },
        { C, C + 2 * H, C + 3 * H, SK_POLICY_SESSION_IDLE_EXPIRED },
        { C, C - 1, C, SK_POLICY_SESSION_INVALID },                 /* corrupt record */
        { C, C + 100, C + 50, SK_POLICY_SESSION_OK },               /* clock stepped back */
        { C, C, C - 1000000, SK_POLICY_SESSION_OK },
        /* Saturation: the end clamps at INT64_MAX instead of wrapping into the past. */
        { INT64_MAX - 5, INT64_MAX - 5, INT64_MAX - 1, SK_POLICY_SESSION_OK },
        { INT64_MAX - 5, INT64_MAX - 5, INT64_MAX, SK_POLICY_SESSION_ABSOLUTE_EXPIRED },
        { INT64_MIN, INT64_MIN, INT64_MAX, SK_POLICY_SESSION_ABSOLUTE_EXPIRED },
        { 0, INT64_MAX, INT64_MAX, SK_POLICY_SESSION_ABSOLUTE_EXPIRED },
    };
    sk_policy_config c = defaults();
    size_t i;
    (void)state;
    for (i = 0; i < N(cases); i++) {
        sk_policy_session_verdict v = sk_policy_session_check(&c, cases[i].created, cases[i].last, cases[i].now);
        if (v != cases[i].want)
            fail_msg("case %zu: got %d want %d", i, (int)v, (int)cases[i].want);
    }
}

static void test_session_expires_at(void **state)
{
    sk_policy_config c = defaults();
    int64_t e;
    (void)state;
    assert_int_equal(sk_policy_session_expires_at(&c, T0, T0), T0 + 3600);
    assert_int_equal(sk_policy_session_expires_at(&c, T0, T0 + 11 * 3600 + 1800), T0 + 12 * 3600);
    assert_int_equal(sk_policy_session_expires_at(&c, INT64_MAX, INT64_MAX), INT64_MAX);
    /* The expiry instant agrees with the check on both sides. */
    e = sk_policy_session_expires_at(&c, T0, T0 + 5000);
    assert_int_equal(sk_policy_session_check(&c, T0, T0 + 5000, e - 1), SK_POLICY_SESSION_OK);
    assert_int_not_equal(sk_policy_session_check(&c, T0, T0 + 5000, e), SK_POLICY_SESSION_OK);
}

/* ---- dormancy ------------------------------------------------------------- */

#define D(n) ((int64_t)(n) * SK_POLICY_DAY)

static sk_policy_dormancy_action dorm(unsigned roles, int64_t notified_day, int64_t locked_day, int64_t now_day,
                                      int64_t extra_seconds)
{
    sk_policy_config c = defaults();
    sk_policy_dormancy d;
    d.last_login = T0;
    d.notified_at = notified_day < 0 ? 0 : T0 + D(notified_day);
    d.locked_at = locked_day < 0 ? 0 : T0 + D(locked_day);
    d.roles = roles;
    return sk_policy_dormancy_next(&c, &d, T0 + D(now_day) + extra_seconds);
}

static void test_dormancy_days(void **state)
{
    const unsigned G = SK_POLICY_ROLE_GENERAL, A = SK_POLICY_ROLE_ADMIN;
    (void)state;
    /* Nothing happened yet. */
    assert_int_equal(dorm(G, -1, -1, 0, 0), SK_POLICY_DORMANCY_NONE);
    assert_int_equal(dorm(G, -1, -1, 179, 0), SK_POLICY_DORMANCY_NONE);
    assert_int_equal(dorm(G, -1, -1, 180, -1), SK_POLICY_DORMANCY_NONE);
    assert_int_equal(dorm(G, -1, -1, 180, 0), SK_POLICY_DORMANCY_NOTIFY);
    assert_int_equal(dorm(A, -1, -1, 180, 0), SK_POLICY_DORMANCY_NOTIFY);
    /* Notified on day 180: idempotent until day 210. */
    assert_int_equal(dorm(G, 180, -1, 180, 0), SK_POLICY_DORMANCY_NONE);
    assert_int_equal(dorm(G, 180, -1, 209, 0), SK_POLICY_DORMANCY_NONE);
    assert_int_equal(dorm(G, 180, -1, 210, -1), SK_POLICY_DORMANCY_NONE);
    assert_int_equal(dorm(G, 180, -1, 210, 0), SK_POLICY_DORMANCY_LOCK);
    assert_int_equal(dorm(A, 180, -1, 210, 0), SK_POLICY_DORMANCY_LOCK);
    /* Locked on day 210: deletion of general accounts on day 300. */
    assert_int_equal(dorm(G, 180, 210, 210, 0), SK_POLICY_DORMANCY_NONE);
    assert_int_equal(dorm(G, 180, 210, 299, 0), SK_POLICY_DORMANCY_NONE);
    assert_int_equal(dorm(G, 180, 210, 300, -1), SK_POLICY_DORMANCY_NONE);
    assert_int_equal(dorm(G, 180, 210, 300, 0), SK_POLICY_DORMANCY_DELETE);
    assert_int_equal(dorm(G, 180, 210, 5000, 0), SK_POLICY_DORMANCY_DELETE);
    /* Admins, mixed and role-less accounts are never deleted. */
    assert_int_equal(dorm(A, 180, 210, 300, 0), SK_POLICY_DORMANCY_NONE);
    assert_int_equal(dorm(A, 180, 210, 100000, 0), SK_POLICY_DORMANCY_NONE);
    assert_int_equal(dorm(A | G, 180, 210, 300, 0), SK_POLICY_DORMANCY_NONE);
    assert_int_equal(dorm(0, 180, 210, 300, 0), SK_POLICY_DORMANCY_NONE);
}

static void test_dormancy_late_sweep(void **state)
{
    const unsigned G = SK_POLICY_ROLE_GENERAL;
    (void)state;
    /* Sweep first runs on day 250: notify first, lock only 30 days after the notice. */
    assert_int_equal(dorm(G, -1, -1, 250, 0), SK_POLICY_DORMANCY_NOTIFY);
    assert_int_equal(dorm(G, 250, -1, 279, 0), SK_POLICY_DORMANCY_NONE);
    assert_int_equal(dorm(G, 250, -1, 280, 0), SK_POLICY_DORMANCY_LOCK);
    /* Deleted 90 days after the actual lock, not after the schedule. */
    assert_int_equal(dorm(G, 250, 285, 374, 0), SK_POLICY_DORMANCY_NONE);
    assert_int_equal(dorm(G, 250, 285, 375, 0), SK_POLICY_DORMANCY_DELETE);
    /* A notice sent early (config changed) still waits for the scheduled lock day. */
    assert_int_equal(dorm(G, 10, -1, 209, 0), SK_POLICY_DORMANCY_NONE);
    assert_int_equal(dorm(G, 10, -1, 210, 0), SK_POLICY_DORMANCY_LOCK);
}

static void test_dormancy_stale_marks(void **state)
{
    sk_policy_config c = defaults();
    sk_policy_dormancy d;
    (void)state;
    /* The user was notified and even locked, an operator unlocked, the user logged in
     * again on day 400: the old marks are stale, the cycle restarts from that login. */
    d.last_login = T0 + D(400);
    d.notified_at = T0 + D(180);
    d.locked_at = T0 + D(210);
    d.roles = SK_POLICY_ROLE_GENERAL;
    assert_int_equal(sk_policy_dormancy_next(&c, &d, T0 + D(401)), SK_POLICY_DORMANCY_NONE);
    assert_int_equal(sk_policy_dormancy_next(&c, &d, T0 + D(579)), SK_POLICY_DORMANCY_NONE);
    assert_int_equal(sk_policy_dormancy_next(&c, &d, T0 + D(580)), SK_POLICY_DORMANCY_NOTIFY);
    /* Saturation: huge times do not wrap into "due". */
    d.last_login = INT64_MAX - 10;
    d.notified_at = 0;
    d.locked_at = 0;
    assert_int_equal(sk_policy_dormancy_next(&c, &d, INT64_MAX - 1), SK_POLICY_DORMANCY_NONE);
}

/* Walk a whole lifecycle as the sweep would, applying each action. */
static void test_dormancy_walk_idempotent(void **state)
{
    static const struct {
        unsigned roles;
        int deleted_day; /* -1 = never */
    } kinds[] = { { SK_POLICY_ROLE_GENERAL, 300 }, { SK_POLICY_ROLE_ADMIN, -1 } };
    sk_policy_config c = defaults();
    size_t k;
    (void)state;
    for (k = 0; k < N(kinds); k++) {
        sk_policy_dormancy d = { T0, 0, 0, kinds[k].roles };
        int counts[4] = { 0, 0, 0, 0 }, day, deleted = -1;
        for (day = 0; day <= 1000 && deleted < 0; day++) {
            int64_t now = T0 + D(day);
            sk_policy_dormancy_action a = sk_policy_dormancy_next(&c, &d, now);
            counts[a]++;
            if (a == SK_POLICY_DORMANCY_NOTIFY) {
                assert_int_equal(day, 180);
                d.notified_at = now;
            } else if (a == SK_POLICY_DORMANCY_LOCK) {
                assert_int_equal(day, 210);
                d.locked_at = now;
            } else if (a == SK_POLICY_DORMANCY_DELETE) {
                deleted = day;
            }
            /* Asking twice at the same instant after applying gives nothing new. */
            if (a == SK_POLICY_DORMANCY_NOTIFY || a == SK_POLICY_DORMANCY_LOCK)
                assert_int_equal(sk_policy_dormancy_next(&c, &d, now), SK_POLICY_DORMANCY_NONE);
        }
        assert_int_equal(counts[SK_POLICY_DORMANCY_NOTIFY], 1);
        assert_int_equal(counts[SK_POLICY_DORMANCY_LOCK], 1);
        assert_int_equal(deleted, kinds[k].deleted_day);
    }
}

/* ---- TOTP ------------------------------------------------------------------ */

static void test_totp_step_at(void **state)
{
    sk_policy_config c = defaults();
    (void)state;
    assert_int_equal(sk_policy_totp_step_at(&c, 0), 0);
    assert_int_equal(sk_policy_totp_step_at(&c, 29), 0);
    assert_int_equal(sk_policy_totp_step_at(&c, 30), 1);
    assert_int_equal(sk_policy_totp_step_at(&c, 59), 1);
    assert_int_equal(sk_policy_totp_step_at(&c, 60), 2);
    assert_int_equal(sk_policy_totp_step_at(&c, -1), -1);
    assert_int_equal(sk_policy_totp_step_at(&c, -30), -1);
    assert_int_equal(sk_policy_totp_step_at(&c, -31), -2);
    /* RFC 6238 Appendix B: T = 1111111109 -> step 0x023523EC. */
    assert_int_equal(sk_policy_totp_step_at(&c, 1111111109), 0x023523EC);
    assert_int_equal(sk_policy_totp_step_at(&c, INT64_MIN), INT64_MIN / 30 - 1);
}

static void test_totp_check_table(void **state)
{
    sk_policy_config c = defaults();
    const int64_t now = 1111111109; /* step T = 37037036 */
    const int64_t T = 37037036;
    const struct {
        int64_t last, matched;
        sk_policy_totp_verdict want;
    } cases[] = {
        { SK_POLICY_TOTP_NONE, T, SK_POLICY_TOTP_ACCEPT },
        { SK_POLICY_TOTP_NONE, T - 1, SK_POLICY_TOTP_ACCEPT },
        { SK_POLICY_TOTP_NONE, T + 1, SK_POLICY_TOTP_ACCEPT },
        { SK_POLICY_TOTP_NONE, T - 2, SK_POLICY_TOTP_OUT_OF_WINDOW },
        { SK_POLICY_TOTP_NONE, T + 2, SK_POLICY_TOTP_OUT_OF_WINDOW },
        { T, T, SK_POLICY_TOTP_REPLAY },          /* same code twice */
        { T, T - 1, SK_POLICY_TOTP_REPLAY },      /* older than accepted */
        { T, T + 1, SK_POLICY_TOTP_ACCEPT },      /* next step is fine */
        { T - 1, T, SK_POLICY_TOTP_ACCEPT },
        { T + 1, T, SK_POLICY_TOTP_REPLAY },      /* a later code was already used */
        { T + 1, T + 1, SK_POLICY_TOTP_REPLAY },
        { T - 5, T - 2, SK_POLICY_TOTP_OUT_OF_WINDOW },
        { INT64_MAX, T, SK_POLICY_TOTP_REPLAY },
        { INT64_MIN, INT64_MIN, SK_POLICY_TOTP_REPLAY },
        { SK_POLICY_TOTP_NONE, INT64_MAX, SK_POLICY_TOTP_OUT_OF_WINDOW },
    };
    size_t i;
    (void)state;
    assert_int_equal(sk_policy_totp_step_at(&c, now), T);
    for (i = 0; i < N(cases); i++) {
        sk_policy_totp_verdict v = sk_policy_totp_check(&c, cases[i].last, now, cases[i].matched);
        if (v != cases[i].want)
            fail_msg("case %zu: got %d want %d", i, (int)v, (int)cases[i].want);
    }
    /* Window 0: only the current step. */
    c.totp_window = 0;
    assert_int_equal(sk_policy_totp_check(&c, -1, now, T), SK_POLICY_TOTP_ACCEPT);
    assert_int_equal(sk_policy_totp_check(&c, -1, now, T - 1), SK_POLICY_TOTP_OUT_OF_WINDOW);
    assert_int_equal(sk_policy_totp_check(&c, -1, now, T + 1), SK_POLICY_TOTP_OUT_OF_WINDOW);
}

static void test_totp_boundaries_in_seconds(void **state)
{
    sk_policy_config c = defaults();
    (void)state;
    /* A code for step 100 ([3000, 3030)) is accepted from 2970 through 3059. */
    assert_int_equal(sk_policy_totp_check(&c, -1, 2969, 100), SK_POLICY_TOTP_OUT_OF_WINDOW);
    assert_int_equal(sk_policy_totp_check(&c, -1, 2970, 100), SK_POLICY_TOTP_ACCEPT);
    assert_int_equal(sk_policy_totp_check(&c, -1, 3059, 100), SK_POLICY_TOTP_ACCEPT);
    assert_int_equal(sk_policy_totp_check(&c, -1, 3060, 100), SK_POLICY_TOTP_OUT_OF_WINDOW);
}

static void test_totp_candidates(void **state)
{
    sk_policy_config c = defaults();
    int64_t first = 0, last = 0;
    (void)state;
    assert_int_equal(sk_policy_totp_candidates(&c, SK_POLICY_TOTP_NONE, 3000, &first, &last), 0);
    assert_int_equal(first, 99);
    assert_int_equal(last, 101);
    assert_int_equal(sk_policy_totp_candidates(&c, 99, 3000, &first, &last), 0);
    assert_int_equal(first, 100);
    assert_int_equal(last, 101);
    assert_int_equal(sk_policy_totp_candidates(&c, 100, 3000, &first, &last), 0);
    assert_int_equal(first, 101);
    first = last = 7;
    assert_int_equal(sk_policy_totp_candidates(&c, 101, 3000, &first, &last), -1);
    assert_int_equal(first, 7); /* untouched on failure */
    assert_int_equal(sk_policy_totp_candidates(&c, INT64_MAX, 3000, &first, &last), -1);
    /* Every candidate is accepted by check, and the neighbours are not. */
    assert_int_equal(sk_policy_totp_candidates(&c, 99, 3000, &first, &last), 0);
    assert_int_equal(sk_policy_totp_check(&c, 99, 3000, first - 1), SK_POLICY_TOTP_REPLAY);
    assert_int_equal(sk_policy_totp_check(&c, 99, 3000, first), SK_POLICY_TOTP_ACCEPT);
    assert_int_equal(sk_policy_totp_check(&c, 99, 3000, last), SK_POLICY_TOTP_ACCEPT);
    assert_int_equal(sk_policy_totp_check(&c, 99, 3000, last + 1), SK_POLICY_TOTP_OUT_OF_WINDOW);
}

/* ---- login state machine --------------------------------------------------- */

static void test_login_paths(void **state)
{
    sk_policy_login_state s = SK_POLICY_LOGIN_CERT_VERIFIED;
    (void)state;
    /* Without TOTP. */
    assert_int_equal(sk_policy_login_step(s, SK_POLICY_EV_PASSWORD_VALID, 0, &s), 0);
    assert_int_equal(s, SK_POLICY_LOGIN_PASSWORD_OK);
    assert_int_equal(sk_policy_login_step(s, SK_POLICY_EV_SESSION_OPEN, 0, &s), 0);
    assert_int_equal(s, SK_POLICY_LOGIN_SESSION);
    assert_int_equal(sk_policy_login_step(s, SK_POLICY_EV_LOGOUT, 0, &s), 0);
    assert_int_equal(s, SK_POLICY_LOGIN_CLOSED);
    /* With TOTP. */
    s = SK_POLICY_LOGIN_CERT_VERIFIED;
    assert_int_equal(sk_policy_login_step(s, SK_POLICY_EV_PASSWORD_VALID, 1, &s), 0);
    assert_int_equal(sk_policy_login_step(s, SK_POLICY_EV_SESSION_OPEN, 1, &s), -1); /* skip TOTP: no */
    assert_int_equal(s, SK_POLICY_LOGIN_PASSWORD_OK);
    assert_int_equal(sk_policy_login_step(s, SK_POLICY_EV_TOTP_REQUIRED, 1, &s), 0);
    assert_int_equal(s, SK_POLICY_LOGIN_TOTP_PENDING);
    assert_int_equal(sk_policy_login_step(s, SK_POLICY_EV_TOTP_INVALID, 1, &s), 0);
    assert_int_equal(s, SK_POLICY_LOGIN_CERT_VERIFIED);
    assert_int_equal(sk_policy_login_step(s, SK_POLICY_EV_PASSWORD_VALID, 1, &s), 0);
    assert_int_equal(sk_policy_login_step(s, SK_POLICY_EV_TOTP_REQUIRED, 1, &s), 0);
    assert_int_equal(sk_policy_login_step(s, SK_POLICY_EV_TOTP_VALID, 1, &s), 0);
    assert_int_equal(s, SK_POLICY_LOGIN_SESSION);
    assert_int_equal(sk_policy_login_step(s, SK_POLICY_EV_EXPIRED, 1, &s), 0);
    assert_int_equal(s, SK_POLICY_LOGIN_CLOSED);
}

/* The whole table, cell by cell, for both enrolment values. */
static void test_login_full_table(void **state)
{
    enum { X = -1 };
#define CV SK_POLICY_LOGIN_CERT_VERIFIED
#define PO SK_POLICY_LOGIN_PASSWORD_OK
#define TP SK_POLICY_LOGIN_TOTP_PENDING
#define SE SK_POLICY_LOGIN_SESSION
#define CL SK_POLICY_LOGIN_CLOSED
    /* want[enrolled][state][event]; events in enum order:
     * PW_VALID PW_INVALID TOTP_REQ SESS_OPEN TOTP_VALID TOTP_INVALID LOGOUT EXPIRED ABORT */
    static const int want[2][SK_POLICY_LOGIN_STATE_COUNT_][SK_POLICY_LOGIN_EVENT_COUNT_] = {
        { /* not enrolled */
          { PO, CV, X, X, X, X, X, X, CL },
          { X, X, X, SE, X, X, X, X, CL },
          { X, X, X, X, X, CV, X, X, CL },
          { X, X, X, X, X, X, CL, CL, CL },
          { X, X, X, X, X, X, X, X, X } },
        { /* enrolled */
          { PO, CV, X, X, X, X, X, X, CL },
          { X, X, TP, X, X, X, X, X, CL },
          { X, X, X, X, SE, CV, X, X, CL },
          { X, X, X, X, X, X, CL, CL, CL },
          { X, X, X, X, X, X, X, X, X } },
    };
    int e, st, ev;
    (void)state;
    for (e = 0; e < 2; e++)
        for (st = 0; st < SK_POLICY_LOGIN_STATE_COUNT_; st++)
            for (ev = 0; ev < SK_POLICY_LOGIN_EVENT_COUNT_; ev++) {
                sk_policy_login_state next = (sk_policy_login_state)99;
                int rc = sk_policy_login_step((sk_policy_login_state)st, (sk_policy_login_event)ev, e, &next);
                int w = want[e][st][ev];
                if (w == X) {
                    if (rc != -1 || next != (sk_policy_login_state)99)
                        fail_msg("enrolled=%d %s+%s should be refused", e, sk_policy_login_state_name(st),
                                 sk_policy_login_event_name(ev));
                } else if (rc != 0 || (int)next != w) {
                    fail_msg("enrolled=%d %s+%s: rc=%d next=%d want %d", e, sk_policy_login_state_name(st),
                             sk_policy_login_event_name(ev), rc, (int)next, w);
                }
            }
    /* Out of range. */
    {
        sk_policy_login_state next = CV;
        assert_int_equal(sk_policy_login_step((sk_policy_login_state)SK_POLICY_LOGIN_STATE_COUNT_,
                                              SK_POLICY_EV_ABORT, 0, &next), -1);
        assert_int_equal(sk_policy_login_step(CV, (sk_policy_login_event)SK_POLICY_LOGIN_EVENT_COUNT_, 0, &next),
                         -1);
        assert_int_equal(sk_policy_login_step((sk_policy_login_state)-1, SK_POLICY_EV_ABORT, 0, &next), -1);
    }
    assert_string_equal(sk_policy_login_state_name(TP), "totp_pending");
    assert_string_equal(sk_policy_login_event_name(SK_POLICY_EV_LOGOUT), "logout");
    assert_string_equal(sk_policy_login_state_name((sk_policy_login_state)77), "unknown");
    for (st = 0; st < SK_POLICY_LOGIN_STATE_COUNT_; st++)
        assert_non_null(sk_policy_login_state_name(st));
    for (ev = 0; ev < SK_POLICY_LOGIN_EVENT_COUNT_; ev++)
        assert_string_not_equal(sk_policy_login_event_name(ev), "unknown");
#undef CV
#undef PO
#undef TP
#undef SE
#undef CL
}

/* ---- roles ------------------------------------------------------------------ */

static void test_roles(void **state)
{
    unsigned m = 12345;
    (void)state;
    assert_int_equal(sk_policy_role_parse("admin", 5, &m), 0);
    assert_int_equal(m, SK_POLICY_ROLE_ADMIN);
    assert_int_equal(sk_policy_role_parse("general", 7, &m), 0);
    assert_int_equal(m, SK_POLICY_ROLE_GENERAL);
    m = 12345;
    assert_int_equal(sk_policy_role_parse("Admin", 5, &m), -1);
    assert_int_equal(sk_policy_role_parse("admin", 4, &m), -1);
    assert_int_equal(sk_policy_role_parse("admins", 6, &m), -1);
    assert_int_equal(sk_policy_role_parse("", 0, &m), -1);
    assert_int_equal(sk_policy_role_parse(NULL, 0, &m), -1);
    assert_int_equal(sk_policy_role_parse("admin\0x", 7, &m), -1);
    assert_int_equal(m, 12345);
    assert_string_equal(sk_policy_role_name(SK_POLICY_ROLE_ADMIN), "admin");
    assert_string_equal(sk_policy_role_name(SK_POLICY_ROLE_GENERAL), "general");
    assert_null(sk_policy_role_name(SK_POLICY_ROLE_ALL));
    assert_null(sk_policy_role_name(0));
    assert_int_equal(SK_POLICY_ROLE_ADMIN & SK_POLICY_ROLE_GENERAL, 0);
}

/* ---- burst ------------------------------------------------------------------ */

static void test_burst_crossing_once(void **state)
{
    sk_policy_config c = defaults();
    static sk_policy_burst b;
    int i, raised = 0;
    (void)state;
    sk_policy_burst_init(&b);
    for (i = 1; i <= 19; i++)
        assert_int_equal(sk_policy_burst_record(&c, &b, T0 + i), 0);
    assert_int_equal(sk_policy_burst_count(&c, &b, T0 + 19), 19);
    assert_int_equal(sk_policy_burst_record(&c, &b, T0 + 20), 1); /* the 20th */
    /* Further failures inside the same window do not raise again. */
    for (i = 21; i < 20 + 300; i++)
        raised += sk_policy_burst_record(&c, &b, T0 + i);
    assert_int_equal(raised, 0);
    /* One window after the alarm, with the attack still going, it raises once more. */
    assert_int_equal(sk_policy_burst_record(&c, &b, T0 + 20 + 300), 1);
    assert_int_equal(sk_policy_burst_record(&c, &b, T0 + 20 + 301), 0);
}

static void test_burst_window_edges(void **state)
{
    sk_policy_config c = defaults();
    static sk_policy_burst b;
    int i;
    (void)state;
    /* 19 failures at t, the 20th exactly one window later: the old ones no longer count. */
    sk_policy_burst_init(&b);
    for (i = 0; i < 19; i++)
        assert_int_equal(sk_policy_burst_record(&c, &b, T0), 0);
    assert_int_equal(sk_policy_burst_record(&c, &b, T0 + 300), 0);
    assert_int_equal(sk_policy_burst_count(&c, &b, T0 + 300), 1);
    /* ... while one second earlier they do. */
    sk_policy_burst_init(&b);
    for (i = 0; i < 19; i++)
        assert_int_equal(sk_policy_burst_record(&c, &b, T0), 0);
    assert_int_equal(sk_policy_burst_record(&c, &b, T0 + 299), 1);
    /* Slow trickle: 1 failure every 16 s never has 20 within 300 s (at most 19). */
    sk_policy_burst_init(&b);
    for (i = 0; i < 1000; i++)
        assert_int_equal(sk_policy_burst_record(&c, &b, T0 + (int64_t)i * 16), 0);
    /* 1 every 15 s: the 20th within 300 s raises (at 285 s after the first). */
    sk_policy_burst_init(&b);
    for (i = 0; i < 19; i++)
        assert_int_equal(sk_policy_burst_record(&c, &b, T0 + (int64_t)i * 15), 0);
    assert_int_equal(sk_policy_burst_record(&c, &b, T0 + 19 * 15), 1);
}

static void test_burst_thresholds_and_cap(void **state)
{
    static const uint32_t thr[] = { 1, 2, 20, 255, SK_POLICY_BURST_CAP };
    static sk_policy_burst b;
    size_t t;
    (void)state;
    for (t = 0; t < N(thr); t++) {
        sk_policy_config c = defaults();
        uint32_t i;
        c.burst_threshold = thr[t];
        c.burst_window = 10;
        sk_policy_burst_init(&b);
        for (i = 1; i < thr[t]; i++)
            assert_int_equal(sk_policy_burst_record(&c, &b, T0), 0);
        assert_int_equal(sk_policy_burst_record(&c, &b, T0), 1);
        assert_int_equal(sk_policy_burst_record(&c, &b, T0 + 9), 0);
        /* One window after the alarm: threshold 1 and 2 are met again by
         * (T0+9, T0+10]; larger thresholds are not. */
        assert_int_equal(sk_policy_burst_record(&c, &b, T0 + 10), thr[t] <= 2 ? 1 : 0);
    }
    /* A struct with corrupt indices is repaired, not overrun. */
    {
        sk_policy_config c = defaults();
        sk_policy_burst_init(&b);
        b.head = 9999;
        b.count = 9999;
        assert_int_equal(sk_policy_burst_record(&c, &b, T0), 0);
        assert_true(b.head < SK_POLICY_BURST_CAP);
        assert_true(b.count <= SK_POLICY_BURST_CAP);
    }
}

static void test_burst_clock_back(void **state)
{
    sk_policy_config c = defaults();
    static sk_policy_burst b;
    int i;
    (void)state;
    sk_policy_burst_init(&b);
    /* Failures "in the future" relative to now are not counted. */
    for (i = 0; i < 19; i++)
        assert_int_equal(sk_policy_burst_record(&c, &b, T0 + 1000), 0);
    assert_int_equal(sk_policy_burst_count(&c, &b, T0), 0);
    assert_int_equal(sk_policy_burst_record(&c, &b, T0), 0);
    /* Seen from T0+1000, the failure at T0 is too old. */
    assert_int_equal(sk_policy_burst_count(&c, &b, T0 + 1000), 19);
    assert_int_equal(sk_policy_burst_count(&c, &b, T0 + 1299), 19);
    assert_int_equal(sk_policy_burst_count(&c, &b, T0 + 1300), 0);
    assert_int_equal(sk_policy_burst_count(&c, &b, INT64_MIN), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_config_validate),
        cmocka_unit_test(test_lockout_fifth_failure_locks),
        cmocka_unit_test(test_lockout_no_extension_while_locked),
        cmocka_unit_test(test_lockout_fresh_series_after_expiry),
        cmocka_unit_test(test_lockout_success_resets),
        cmocka_unit_test(test_lockout_thresholds_table),
        cmocka_unit_test(test_lockout_operator),
        cmocka_unit_test(test_lockout_saturation),
        cmocka_unit_test(test_session_table),
        cmocka_unit_test(test_session_expires_at),
        cmocka_unit_test(test_dormancy_days),
        cmocka_unit_test(test_dormancy_late_sweep),
        cmocka_unit_test(test_dormancy_stale_marks),
        cmocka_unit_test(test_dormancy_walk_idempotent),
        cmocka_unit_test(test_totp_step_at),
        cmocka_unit_test(test_totp_check_table),
        cmocka_unit_test(test_totp_boundaries_in_seconds),
        cmocka_unit_test(test_totp_candidates),
        cmocka_unit_test(test_login_paths),
        cmocka_unit_test(test_login_full_table),
        cmocka_unit_test(test_roles),
        cmocka_unit_test(test_burst_crossing_once),
        cmocka_unit_test(test_burst_window_edges),
        cmocka_unit_test(test_burst_thresholds_and_cap),
        cmocka_unit_test(test_burst_clock_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
