/* Unit tests for sekisho_auth: argon2id hashing and the login worker pool. */
#define _GNU_SOURCE
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "sk_auth.h"

/* Small argon2 memory keeps the suite fast, also under ASan. */
static const sk_auth_params test_params = { 1024, 1, 1 };
static const char PW[] = "Correct-Horse-7";

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    return remove(p);
}

typedef struct fixture {
    char dir[256];
    sk_store *s;
    sk_auth_pool *pool;
} fixture;

static void add_user(sk_store *s, const char *tenant, const char *id, uint32_t flags)
{
    sk_user u;
    assert_int_equal(sk_store_user_init(&u, tenant, id), 0);
    u.role = SK_ROLE_ADMIN;
    u.flags = flags;
    u.created = 1000;
    assert_int_equal(sk_auth_hash_password(&test_params, PW, strlen(PW), u.pw_hash, sizeof u.pw_hash), 0);
    assert_int_equal(sk_store_user_put_new(s, &u), SK_STORE_OK);
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    const char *t = getenv("TMPDIR");
    assert_int_equal(sk_snprintf(fx->dir, sizeof fx->dir, "%s/sk-auth-XXXXXX", t ? t : "/tmp"), 0);
    assert_non_null(mkdtemp(fx->dir));
    assert_int_equal(sk_store_open_ex(fx->dir, 0, (size_t)16 << 20, &fx->s), SK_STORE_OK);
    sk_auth_config cfg = { .params = test_params, .lockout_threshold = 3, .lockout_duration = 1800 };
    assert_int_equal(sk_auth_pool_create(2, 8, &cfg, &fx->pool), 0);
    add_user(fx->s, "default", "alice", 0);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    sk_auth_pool_destroy(fx->pool);
    sk_store_close(fx->s);
    nftw(fx->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return 0;
}

static void make_req(sk_auth_request *r, const char *tenant, const char *cert_id,
                     const char *typed, const char *pw, int64_t now)
{
    memset(r, 0, sizeof *r);
    assert_int_equal(sk_strlcpy(r->cert_tenant, sizeof r->cert_tenant, tenant), 0);
    assert_int_equal(sk_strlcpy(r->cert_id, sizeof r->cert_id, cert_id), 0);
    assert_int_equal(sk_strlcpy(r->login_id, sizeof r->login_id, typed), 0);
    r->password_len = strlen(pw);
    memcpy(r->password, pw, r->password_len);
    assert_int_equal(sk_strlcpy(r->peer, sizeof r->peer, "192.0.2.7"), 0);
    r->now = now;
}

static sk_user get_user(fixture *fx, const char *id)
{
    sk_user u;
    assert_int_equal(sk_store_user_get(fx->s, "default", id, &u), SK_STORE_OK);
    return u;
}

static void login(fixture *fx, const char *cert_id, const char *typed, const char *pw, int64_t now,
                  sk_auth_verdict *v)
{
    sk_auth_request r;
    make_req(&r, "default", cert_id, typed, pw, now);
    assert_int_equal(sk_auth_login(fx->pool, fx->s, &r, v), 0);
}

/* ---- hashing ------------------------------------------------------------ */

static void test_params_check(void **state)
{
    (void)state;
    sk_auth_params p;
    sk_auth_params_default(&p);
    assert_int_equal(p.memory_kib, 65536);
    assert_int_equal(p.iterations, 3);
    assert_int_equal(p.parallelism, 1);
    assert_int_equal(sk_auth_params_check(&p), 0);
    sk_auth_params bad = p;
    bad.iterations = 0;
    assert_int_equal(sk_auth_params_check(&bad), -1);
    bad = p;
    bad.parallelism = 0;
    assert_int_equal(sk_auth_params_check(&bad), -1);
    bad = p;
    bad.memory_kib = 4;
    assert_int_equal(sk_auth_params_check(&bad), -1);
    bad = p;
    bad.memory_kib = SK_AUTH_MEMORY_MAX_KIB + 1;
    assert_int_equal(sk_auth_params_check(&bad), -1);
}

static void test_hash_verify(void **state)
{
    (void)state;
    char h1[SK_AUTH_ENCODED_MAX], h2[SK_AUTH_ENCODED_MAX];
    assert_int_equal(sk_auth_hash_password(&test_params, PW, strlen(PW), h1, sizeof h1), 0);
    assert_int_equal(strncmp(h1, "$argon2id$v=19$m=1024,t=1,p=1$", 30), 0);
    assert_null(strstr(h1, PW));
    assert_int_equal(sk_auth_hash_password(&test_params, PW, strlen(PW), h2, sizeof h2), 0);
    assert_string_not_equal(h1, h2); /* fresh random salt each time */

    assert_int_equal(sk_auth_verify_password(h1, PW, strlen(PW)), 1);
    assert_int_equal(sk_auth_verify_password(h2, PW, strlen(PW)), 1);
    assert_int_equal(sk_auth_verify_password(h1, PW, strlen(PW) - 1), 0);
    assert_int_equal(sk_auth_verify_password(h1, "correct-Horse-7", strlen(PW)), 0);
    assert_int_equal(sk_auth_verify_password(h1, "", 0), 0);
    /* bytes after a NUL count: passwords are (pointer, length) */
    assert_int_equal(sk_auth_verify_password(h1, PW, sizeof PW), 0);

    /* refused inputs */
    assert_int_equal(sk_auth_hash_password(&test_params, PW, 0, h2, sizeof h2), -1);
    assert_int_equal(sk_auth_hash_password(&test_params, PW, SK_AUTH_PASSWORD_MAX + 1, h2, sizeof h2), -1);
    assert_int_equal(sk_auth_hash_password(&test_params, PW, strlen(PW), h2, 20), -1);
    assert_string_equal(h2, "");
}

static void test_verify_malformed(void **state)
{
    (void)state;
    char h[SK_AUTH_ENCODED_MAX], bad[SK_AUTH_ENCODED_MAX + 32];
    assert_int_equal(sk_auth_hash_password(&test_params, PW, strlen(PW), h, sizeof h), 0);
    /* h = "$argon2id$v=19$m=1024,t=1,p=1" (29 bytes) + "$salt$hash" */
    assert_int_equal(h[29], '$');
    const char *rest = h + 29;

    assert_int_equal(sk_auth_verify_password("", PW, strlen(PW)), -1);
    assert_int_equal(sk_auth_verify_password("plain text", PW, strlen(PW)), -1);
    assert_int_equal(sk_snprintf(bad, sizeof bad, "$argon2i$v=19$m=1024,t=1,p=1%s", rest), 0);
    assert_int_equal(sk_auth_verify_password(bad, PW, strlen(PW)), -1);
    /* hostile cost parameters are refused before libargon2 allocates */
    assert_int_equal(sk_snprintf(bad, sizeof bad, "$argon2id$v=19$m=99999999,t=1,p=1%s", rest), 0);
    assert_int_equal(sk_auth_verify_password(bad, PW, strlen(PW)), -1);
    assert_int_equal(sk_snprintf(bad, sizeof bad, "$argon2id$v=19$m=1024,t=99999,p=1%s", rest), 0);
    assert_int_equal(sk_auth_verify_password(bad, PW, strlen(PW)), -1);
    assert_int_equal(sk_snprintf(bad, sizeof bad, "$argon2id$v=19$m=1024,t=1,p=1000%s", rest), 0);
    assert_int_equal(sk_auth_verify_password(bad, PW, strlen(PW)), -1);
    assert_int_equal(sk_snprintf(bad, sizeof bad, "$argon2id$v=19$m=99999999999999,t=1,p=1%s", rest), 0);
    assert_int_equal(sk_auth_verify_password(bad, PW, strlen(PW)), -1);
    assert_int_equal(sk_snprintf(bad, sizeof bad, "$argon2id$v=19$m=,t=1,p=1%s", rest), 0);
    assert_int_equal(sk_auth_verify_password(bad, PW, strlen(PW)), -1);
    /* truncated hash part */
    assert_int_equal(sk_strlcpy(bad, sizeof bad, h), 0);
    bad[strlen(bad) - 10] = '\0';
    assert_int_equal(sk_auth_verify_password(bad, PW, strlen(PW)), -1);
    /* sanity: the untouched reconstruction still verifies */
    assert_int_equal(sk_snprintf(bad, sizeof bad, "$argon2id$v=19$m=1024,t=1,p=1%s", rest), 0);
    assert_int_equal(sk_auth_verify_password(bad, PW, strlen(PW)), 1);
}

/* ---- login verdicts ----------------------------------------------------- */

static void test_login_ok(void **state)
{
    fixture *fx = *state;
    sk_auth_verdict v;
    sk_user u = get_user(fx, "alice");
    assert_true(u.last_login == 0);

    login(fx, "alice", "alice", "wrong-password", 5000, &v);
    assert_int_equal(v.outcome, SK_AUTH_FAIL);
    assert_int_equal(v.reason, SK_AUTH_R_BAD_PASSWORD);
    assert_int_equal(get_user(fx, "alice").failures, 1);

    login(fx, "alice", "alice", PW, 6000, &v);
    assert_int_equal(v.outcome, SK_AUTH_OK);
    assert_int_equal(v.reason, SK_AUTH_R_NONE);
    assert_int_equal(v.role, SK_ROLE_ADMIN);
    assert_int_equal(v.must_change_password, 0);
    assert_string_equal(v.id, "alice");
    assert_string_equal(v.tenant, "default");
    u = get_user(fx, "alice");
    assert_true(u.last_login == 6000);
    assert_int_equal(u.failures, 0);
}

static void test_login_fail_counts(void **state)
{
    fixture *fx = *state;
    sk_auth_verdict v;
    login(fx, "alice", "alice", "nope-1", 5000, &v);
    assert_int_equal(v.outcome, SK_AUTH_FAIL);
    assert_int_equal(v.failures, 1);
    assert_int_equal(v.locked_now, 0);
    login(fx, "alice", "alice", "nope-2", 5001, &v);
    assert_int_equal(v.failures, 2);
    assert_int_equal(get_user(fx, "alice").failures, 2);
    assert_true(get_user(fx, "alice").last_login == 0);

    /* third failure locks (threshold 3) */
    login(fx, "alice", "alice", "nope-3", 5002, &v);
    assert_int_equal(v.outcome, SK_AUTH_FAIL);
    assert_int_equal(v.reason, SK_AUTH_R_BAD_PASSWORD);
    assert_int_equal(v.locked_now, 1);
    assert_true(v.locked_until == 5002 + 1800);
    assert_true(get_user(fx, "alice").locked_until == 5002 + 1800);

    /* while locked, the right password fails too, and nothing is counted */
    login(fx, "alice", "alice", PW, 5100, &v);
    assert_int_equal(v.outcome, SK_AUTH_FAIL);
    assert_int_equal(v.reason, SK_AUTH_R_LOCKED);
    assert_true(get_user(fx, "alice").last_login == 0);
    login(fx, "alice", "alice", "nope-4", 5101, &v);
    assert_int_equal(v.reason, SK_AUTH_R_LOCKED);
    assert_true(get_user(fx, "alice").locked_until == 5002 + 1800);

    /* the lock ends exactly at locked_until */
    login(fx, "alice", "alice", PW, 5002 + 1800, &v);
    assert_int_equal(v.outcome, SK_AUTH_OK);
    sk_user u = get_user(fx, "alice");
    assert_int_equal(u.failures, 0);
    assert_true(u.locked_until == 0);
}

static void test_login_cert_mismatch(void **state)
{
    fixture *fx = *state;
    sk_auth_verdict v;
    add_user(fx->s, "default", "bob", 0);
    /* alice's certificate, bob's ID typed, bob's (= everyone's) valid password */
    login(fx, "alice", "bob", PW, 7000, &v);
    assert_int_equal(v.outcome, SK_AUTH_FAIL);
    assert_int_equal(v.reason, SK_AUTH_R_CERT_MISMATCH);
    assert_string_equal(v.id, "alice"); /* charged to the certificate holder */
    assert_int_equal(get_user(fx, "alice").failures, 1);
    assert_int_equal(get_user(fx, "bob").failures, 0);
    assert_true(get_user(fx, "bob").last_login == 0);
    /* case differs: still a mismatch */
    login(fx, "alice", "Alice", PW, 7001, &v);
    assert_int_equal(v.reason, SK_AUTH_R_CERT_MISMATCH);
    assert_int_equal(get_user(fx, "alice").failures, 2);
    /* other tenant's certificate with the same CN: not alice of "default" */
    sk_auth_request r;
    make_req(&r, "acme", "alice", "alice", PW, 7002);
    assert_int_equal(sk_auth_login(fx->pool, fx->s, &r, &v), 0);
    assert_int_equal(v.outcome, SK_AUTH_FAIL);
    assert_int_equal(v.reason, SK_AUTH_R_UNKNOWN_USER);
    assert_int_equal(v.user_exists, 0);
}

static void test_login_unknown_and_flags(void **state)
{
    fixture *fx = *state;
    sk_auth_verdict v;
    login(fx, "nobody", "nobody", PW, 8000, &v);
    assert_int_equal(v.outcome, SK_AUTH_FAIL);
    assert_int_equal(v.reason, SK_AUTH_R_UNKNOWN_USER);
    assert_int_equal(v.user_exists, 0);

    add_user(fx->s, "default", "olga", SK_USER_F_OPERATOR_LOCKED);
    login(fx, "olga", "olga", PW, 8001, &v);
    assert_int_equal(v.outcome, SK_AUTH_FAIL);
    assert_int_equal(v.reason, SK_AUTH_R_OPERATOR_LOCKED);
    assert_int_equal(get_user(fx, "olga").failures, 0);

    add_user(fx->s, "default", "dora", SK_USER_F_DORMANT_LOCKED);
    login(fx, "dora", "dora", PW, 8002, &v);
    assert_int_equal(v.reason, SK_AUTH_R_DORMANT_LOCKED);

    add_user(fx->s, "default", "mike", SK_USER_F_MUST_CHANGE_PW);
    login(fx, "mike", "mike", PW, 8003, &v);
    assert_int_equal(v.outcome, SK_AUTH_OK);
    assert_int_equal(v.must_change_password, 1);

    add_user(fx->s, "default", "tina", SK_USER_F_TOTP_ENABLED);
    login(fx, "tina", "tina", PW, 8004, &v);
    assert_int_equal(v.outcome, SK_AUTH_FAIL);
    assert_int_equal(v.reason, SK_AUTH_R_TOTP_UNAVAILABLE);
    assert_true(get_user(fx, "tina").last_login == 0);

    /* empty password: a failure, counted */
    login(fx, "alice", "alice", "", 8005, &v);
    assert_int_equal(v.outcome, SK_AUTH_FAIL);
    assert_int_equal(v.reason, SK_AUTH_R_BAD_PASSWORD);

    /* a request with an invalid certificate identity never reaches the store */
    sk_auth_request r;
    make_req(&r, "default", "alice", "alice", PW, 8006);
    r.cert_id[0] = '.';
    assert_int_equal(sk_auth_login(fx->pool, fx->s, &r, &v), 0);
    assert_int_equal(v.outcome, SK_AUTH_FAIL);
    assert_int_equal(v.reason, SK_AUTH_R_BAD_REQUEST);
    r.cert_id[0] = 'a';
    r.password_len = SK_AUTH_PASSWORD_MAX + 1;
    assert_int_equal(sk_auth_login(fx->pool, fx->s, &r, &v), -1);
    assert_string_equal(sk_auth_reason_name(SK_AUTH_R_CERT_MISMATCH), "cert_mismatch");
    assert_string_equal(sk_auth_reason_name((sk_auth_reason)999), "unknown");
}

/* Unknown users and mismatches cost an argon2 run like a wrong password. */
static double elapsed(struct timespec a, struct timespec b)
{
    return (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
}

static void test_dummy_costs_the_same(void **state)
{
    (void)state;
    char dir[256];
    sk_store *s = NULL;
    sk_auth_pool *pool = NULL;
    const char *t = getenv("TMPDIR");
    assert_int_equal(sk_snprintf(dir, sizeof dir, "%s/sk-auth-XXXXXX", t ? t : "/tmp"), 0);
    assert_non_null(mkdtemp(dir));
    assert_int_equal(sk_store_open_ex(dir, 0, (size_t)16 << 20, &s), 0);
    /* heavier parameters so the argon2 run dominates the measurement */
    sk_auth_config cfg = { .params = { 16384, 2, 1 }, .lockout_threshold = 1000, .lockout_duration = 60 };
    assert_int_equal(sk_auth_pool_create(1, 4, &cfg, &pool), 0);
    sk_user u;
    assert_int_equal(sk_store_user_init(&u, "default", "alice"), 0);
    assert_int_equal(sk_auth_hash_password(&cfg.params, PW, strlen(PW), u.pw_hash, sizeof u.pw_hash), 0);
    assert_int_equal(sk_store_user_put_new(s, &u), 0);

    struct timespec a, b;
    double t_known = 1e9, t_unknown = 1e9, t_noop = 1e9;
    sk_auth_verdict v;
    sk_auth_request r;
    for (int i = 0; i < 3; i++) {
        make_req(&r, "default", "alice", "alice", "wrong-one", 100 + i);
        clock_gettime(CLOCK_MONOTONIC, &a);
        assert_int_equal(sk_auth_login(pool, s, &r, &v), 0);
        clock_gettime(CLOCK_MONOTONIC, &b);
        assert_int_equal(v.reason, SK_AUTH_R_BAD_PASSWORD);
        if (elapsed(a, b) < t_known)
            t_known = elapsed(a, b);
        make_req(&r, "default", "ghost", "ghost", "wrong-one", 100 + i);
        clock_gettime(CLOCK_MONOTONIC, &a);
        assert_int_equal(sk_auth_login(pool, s, &r, &v), 0);
        clock_gettime(CLOCK_MONOTONIC, &b);
        assert_int_equal(v.reason, SK_AUTH_R_UNKNOWN_USER);
        if (elapsed(a, b) < t_unknown)
            t_unknown = elapsed(a, b);
        /* reference: a store lookup alone, no hashing */
        clock_gettime(CLOCK_MONOTONIC, &a);
        assert_int_equal(sk_store_user_get(s, "default", "ghost", &u), SK_STORE_NOTFOUND);
        clock_gettime(CLOCK_MONOTONIC, &b);
        if (elapsed(a, b) < t_noop)
            t_noop = elapsed(a, b);
    }
    /* The unknown path must include an argon2 run: far above a bare lookup and
     * within a factor of the known-user path. */
    assert_true(t_unknown > 20 * t_noop);
    assert_true(t_unknown > t_known / 3);
    assert_true(t_unknown < t_known * 3);
    sk_auth_pool_destroy(pool);
    sk_store_close(s);
    nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- pool ---------------------------------------------------------------- */

struct bg { fixture *fx; sk_auth_pool *pool; int rc; sk_auth_verdict v; int64_t now; };

static void *bg_login(void *arg)
{
    struct bg *b = arg;
    sk_auth_request r;
    make_req(&r, "default", "alice", "alice", PW, b->now);
    b->rc = sk_auth_login(b->pool, b->fx->s, &r, &b->v);
    return NULL;
}

static void wait_waiting(sk_auth_pool *pool, uint32_t n)
{
    sk_auth_pool_stats st;
    for (int i = 0; i < 5000; i++) {
        sk_auth_pool_get_stats(pool, &st);
        if (st.waiting == n)
            return;
        usleep(1000);
    }
    fail_msg("queue never reached %u waiting jobs", n);
}

static void test_pool_busy(void **state)
{
    fixture *fx = *state;
    sk_auth_pool *pool = NULL;
    sk_auth_config cfg = { .params = test_params, .lockout_threshold = 3, .lockout_duration = 1800 };
    assert_int_equal(sk_auth_pool_create(1, 1, &cfg, &pool), 0);

    sk_auth_pool_pause(pool, 1);
    struct bg b = { fx, pool, -7, { 0 }, 9000 };
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, bg_login, &b), 0);
    wait_waiting(pool, 1);

    /* queue full: refused at once, nothing charged to the account */
    sk_auth_request r;
    sk_auth_verdict v;
    make_req(&r, "default", "alice", "alice", "wrong", 9001);
    assert_int_equal(sk_auth_login(pool, fx->s, &r, &v), SK_AUTH_BUSY);
    assert_int_equal(get_user(fx, "alice").failures, 0);
    sk_auth_pool_stats st;
    sk_auth_pool_get_stats(pool, &st);
    assert_int_equal(st.rejected_busy, 1);
    assert_int_equal(st.waiting, 1);

    sk_auth_pool_pause(pool, 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(b.rc, 0);
    assert_int_equal(b.v.outcome, SK_AUTH_OK);
    sk_auth_pool_get_stats(pool, &st);
    assert_int_equal(st.waiting, 0);
    assert_int_equal(st.completed, 1);

    /* room again */
    assert_int_equal(sk_auth_login(pool, fx->s, &r, &v), 0);
    assert_int_equal(v.outcome, SK_AUTH_FAIL);
    sk_auth_pool_destroy(pool);
}

static void test_pool_destroy_drains(void **state)
{
    fixture *fx = *state;
    sk_auth_pool *pool = NULL;
    sk_auth_config cfg = { .params = test_params, .lockout_threshold = 3, .lockout_duration = 1800 };
    assert_int_equal(sk_auth_pool_create(1, 4, &cfg, &pool), 0);
    sk_auth_pool_pause(pool, 1);
    struct bg b[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        b[i] = (struct bg){ fx, pool, -7, { 0 }, 9100 + i };
        assert_int_equal(pthread_create(&th[i], NULL, bg_login, &b[i]), 0);
    }
    wait_waiting(pool, 3);
    sk_auth_pool_destroy(pool); /* paused and full: must still answer all three */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(b[i].rc, 0);
        assert_int_equal(b[i].v.outcome, SK_AUTH_OK);
    }
    assert_true(get_user(fx, "alice").last_login >= 9100);
}

static void test_pool_concurrent_failures(void **state)
{
    fixture *fx = *state;
    /* many parallel wrong passwords: each one counted exactly once */
    struct bg b[6];
    pthread_t th[6];
    sk_auth_config cfg = { .params = test_params, .lockout_threshold = 100, .lockout_duration = 1800 };
    sk_auth_pool *pool = NULL;
    assert_int_equal(sk_auth_pool_create(3, 16, &cfg, &pool), 0);
    for (int i = 0; i < 6; i++) {
        b[i] = (struct bg){ fx, pool, -7, { 0 }, 9200 };
        assert_int_equal(pthread_create(&th[i], NULL, bg_login, &b[i]), 0);
    }
    for (int i = 0; i < 6; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    for (int i = 0; i < 6; i++)
        assert_int_equal(b[i].v.outcome, SK_AUTH_OK);
    sk_auth_request r;
    sk_auth_verdict v;
    for (int i = 0; i < 4; i++) {
        make_req(&r, "default", "alice", "alice", "bad", 9300);
        assert_int_equal(sk_auth_login(pool, fx->s, &r, &v), 0);
    }
    assert_int_equal(get_user(fx, "alice").failures, 4);
    sk_auth_pool_destroy(pool);

    sk_auth_config badcfg = { .params = { 4, 1, 1 }, .lockout_threshold = 3, .lockout_duration = 60 };
    assert_int_equal(sk_auth_pool_create(1, 1, &badcfg, &pool), -1);
    assert_null(pool);
    assert_int_equal(sk_auth_pool_create(0, 1, &cfg, &pool), -1);
    assert_int_equal(sk_auth_pool_create(1, 0, &cfg, &pool), -1);
}

int main(void)
{
    sk_log_set_level(SK_LOG_ERR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_params_check),
        cmocka_unit_test(test_hash_verify),
        cmocka_unit_test(test_verify_malformed),
        cmocka_unit_test_setup_teardown(test_login_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(test_login_fail_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_login_cert_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_login_unknown_and_flags, setup, teardown),
        cmocka_unit_test(test_dummy_costs_the_same),
        cmocka_unit_test_setup_teardown(test_pool_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_destroy_drains, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_concurrent_failures, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
