/* authd's handlers as a compromised network process would call them: TOTP enrolment
 * needs a live session of the very account, and the caller's clock is not trusted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/sha.h>

#include "authd_int.h"
#include "sk_authd.h"

struct fx {
    char dir[64];
    sk_auth_config cfg;
    sk_authd a;
    uint8_t alice_sess[SK_SESSION_HASH_LEN], bob_sess[SK_SESSION_HASH_LEN];
};

static void add_user(struct fx *f, const char *id)
{
    sk_user u;
    assert_int_equal(sk_store_user_init(&u, "acme", id), 0);
    assert_int_equal(sk_store_user_put_new(f->a.store, &u), SK_STORE_OK);
}

static void add_session(struct fx *f, const char *id, uint8_t hash[SK_SESSION_HASH_LEN])
{
    sk_session s;
    memset(&s, 0, sizeof s);
    memset(hash, id[0], SK_SESSION_HASH_LEN);
    memcpy(s.hash, hash, SK_SESSION_HASH_LEN);
    assert_int_equal(sk_strlcpy(s.user, sizeof s.user, id), 0);
    assert_int_equal(sk_strlcpy(s.tenant, sizeof s.tenant, "acme"), 0);
    s.created = s.last_seen = (int64_t)time(NULL);
    assert_int_equal(sk_store_session_put(f->a.store, &s), SK_STORE_OK);
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    memcpy(f->dir, "/tmp/sk-authd-XXXXXX", sizeof "/tmp/sk-authd-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    assert_int_equal(sk_store_open_ex(f->dir, 0, (size_t)16 << 20, &f->a.store), SK_STORE_OK);
    assert_int_equal(sk_snprintf(f->cfg.totp_key_path, sizeof f->cfg.totp_key_path, "%s/totp.key", f->dir), 0);
    f->a.cfg = &f->cfg;
    sk_auth_policy_config(&f->cfg, &f->a.pol);
    add_user(f, "alice");
    add_user(f, "bob");
    add_session(f, "alice", f->alice_sess);
    add_session(f, "bob", f->bob_sess);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];
    sk_store_close(f->a.store);
    if (sk_snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir) == 0 && system(cmd) != 0)
        return -1;
    free(f);
    return 0;
}

/* One request through the real handler (decode, act, encode); the reply decoded. */
static int32_t call(struct fx *f, uint16_t type, const void *req, void *rep)
{
    static uint8_t q[8192], r[8192];
    sk_wire_w w;
    sk_wire_msg m = { type, 1, q, 0 };
    sk_wire_w_init(&w, q, sizeof q);
    assert_int_equal(sk_wire_auth_encode(type, 0, req, &w), 0);
    m.len = w.len;
    sk_wire_w_init(&w, r, sizeof r);
    assert_int_equal(sk_authd_handle(&f->a, SK_WIRE_PEER_NET, &m, &w), 0);
    if (sk_wire_auth_decode(type, 1, r, w.len, rep) != 0 && w.len == 4) {
        /* a failure carries only its status (as sk_authd_call reads it) */
        sk_wire_r rd;
        memset(rep, 0, sk_wire_auth_size(type, 1));
        sk_wire_r_init(&rd, r, w.len);
        *(int32_t *)rep = sk_wire_get_i32(&rd);
        assert_true(*(int32_t *)rep < 0);
        return *(int32_t *)rep;
    }
    assert_int_equal(sk_wire_auth_decode(type, 1, r, w.len, rep), 0);
    return *(int32_t *)rep;
}

/* Contains needle anywhere? (for "the key is not in the store in the clear") */
static int contains(const uint8_t *hay, size_t n, const uint8_t *needle, size_t k)
{
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(hay + i, needle, k) == 0)
            return 1;
    return 0;
}

/* Make the stored newest ticket key look `age` seconds old (its created field). */
static int age_newest(uint8_t *v, size_t *len, int exists, void *ctx)
{
    int64_t created;
    if (!exists || *len < 2 + 16 + 8)
        return 1;
    memcpy(&created, v + 2 + 16, 8); /* little-endian host, as the test machines are */
    created -= *(const int64_t *)ctx;
    memcpy(v + 2 + 16, &created, 8);
    return 0;
}

static int corrupt_value(uint8_t *v, size_t *len, int exists, void *ctx)
{
    (void)ctx;
    if (!exists || *len < 10)
        return 1;
    v[*len - 3] ^= 0x5a; /* inside the sealed blob: its tag no longer matches */
    return 0;
}

/* KEYS: created once and then the same for every caller (another process or node
 * asks the same store); sealed in the store; rotated when the newest is a period
 * old, the previous key still offered; a value that does not open is an error and
 * is never replaced. */
static void keys_shared_sealed_and_rotated(void **state)
{
    struct fx *f = *state;
    static sk_wire_keys_rep k1, k2, k3;
    uint8_t none = 0, val[SK_STORE_VALUE_MAX];
    size_t len = 0;
    int64_t age;

    f->a.ticket_rotate = 600;
    assert_int_equal(call(f, SK_WIRE_AUTH_KEYS, &none, &k1), 0);
    assert_int_equal(k1.n_tickets, 1);
    assert_true(k1.rotate_every == 600);
    assert_int_equal(call(f, SK_WIRE_AUTH_KEYS, &none, &k2), 0);
    assert_memory_equal(k1.csrf, k2.csrf, sizeof k1.csrf);
    assert_int_equal(k2.n_tickets, 1);
    assert_memory_equal(&k1.ticket[0], &k2.ticket[0], sizeof k1.ticket[0]);

    assert_int_equal(sk_store_value_get(f->a.store, "http.csrf", val, sizeof val, &len), SK_STORE_OK);
    assert_false(contains(val, len, k1.csrf, sizeof k1.csrf));
    assert_int_equal(sk_store_value_get(f->a.store, "tls.tickets", val, sizeof val, &len), SK_STORE_OK);
    assert_false(contains(val, len, k1.ticket[0].aes, sizeof k1.ticket[0].aes));
    assert_false(contains(val, len, k1.ticket[0].hmac, sizeof k1.ticket[0].hmac));

    /* Not yet due: 599 s old. Due at 600 s: a new key in front, the old one second. */
    age = 599;
    assert_int_equal(sk_store_value_update(f->a.store, "tls.tickets", age_newest, &age), SK_STORE_OK);
    assert_int_equal(call(f, SK_WIRE_AUTH_KEYS, &none, &k2), 0);
    assert_int_equal(k2.n_tickets, 1);
    age = 1;
    assert_int_equal(sk_store_value_update(f->a.store, "tls.tickets", age_newest, &age), SK_STORE_OK);
    assert_int_equal(call(f, SK_WIRE_AUTH_KEYS, &none, &k2), 0);
    assert_int_equal(k2.n_tickets, 2);
    assert_memory_not_equal(k2.ticket[0].name, k1.ticket[0].name, sizeof k1.ticket[0].name);
    assert_memory_equal(&k2.ticket[1], &k1.ticket[0], sizeof k1.ticket[0]);
    assert_memory_equal(k1.csrf, k2.csrf, sizeof k1.csrf);
    /* Two more rotations: never more than three keys, the oldest falls off. */
    for (int i = 0; i < 2; i++) {
        age = 600;
        assert_int_equal(sk_store_value_update(f->a.store, "tls.tickets", age_newest, &age), SK_STORE_OK);
        assert_int_equal(call(f, SK_WIRE_AUTH_KEYS, &none, &k3), 0);
    }
    assert_int_equal(k3.n_tickets, SK_WIRE_TICKET_KEYS_MAX);
    assert_memory_equal(&k3.ticket[2], &k2.ticket[0], sizeof k2.ticket[0]);

    /* Tampered: refused, and left as it was for an operator to look at. */
    assert_int_equal(sk_store_value_update(f->a.store, "tls.tickets", corrupt_value, NULL), SK_STORE_OK);
    assert_int_equal(sk_store_value_get(f->a.store, "tls.tickets", val, sizeof val, &len), SK_STORE_OK);
    {
        static uint8_t q[64], r[64];
        sk_wire_w w;
        sk_wire_r rd;
        sk_wire_msg m = { SK_WIRE_AUTH_KEYS, 1, q, 0 };
        sk_wire_w_init(&w, q, sizeof q);
        assert_int_equal(sk_wire_auth_encode(SK_WIRE_AUTH_KEYS, 0, &none, &w), 0);
        m.len = w.len;
        sk_wire_w_init(&w, r, sizeof r);
        assert_int_equal(sk_authd_handle(&f->a, SK_WIRE_PEER_NET, &m, &w), 0);
        assert_int_equal(w.len, 4); /* only the status */
        sk_wire_r_init(&rd, r, w.len);
        assert_int_equal(sk_wire_get_i32(&rd), SK_WIRE_ERR_INTERNAL);
    }
    {
        uint8_t again[SK_STORE_VALUE_MAX];
        size_t len2 = 0;
        assert_int_equal(sk_store_value_get(f->a.store, "tls.tickets", again, sizeof again, &len2), SK_STORE_OK);
        assert_int_equal(len2, len);
        assert_memory_equal(again, val, len);
    }
}

static void burst_state(sk_store *st, sk_policy_burst *b)
{
    uint8_t v[SK_STORE_VALUE_MAX];
    size_t len = 0;
    assert_int_equal(sk_store_value_get(st, "auth.burst", v, sizeof v, &len), SK_STORE_OK);
    assert_int_equal(authd_burst_decode(v, len, b), 0);
}

/* The burst count is one for the cluster: failures noted alternately by two authd
 * instances (two handles on one store, as two nodes would be) add up, and the
 * alarm is raised once, by the failure that reaches the threshold. */
static void burst_counts_across_instances(void **state)
{
    struct fx *f = *state;
    sk_authd b = f->a;
    sk_policy_burst st;
    authd_failure fail = { "acme", "alice", "127.0.0.2", "0A" };
    int64_t before = (int64_t)time(NULL);

    assert_int_equal(sk_store_open_ex(f->dir, 0, (size_t)16 << 20, &b.store), SK_STORE_OK);
    f->a.pol.burst_threshold = b.pol.burst_threshold = 4;
    f->a.pol.burst_window = b.pol.burst_window = 3600;
    for (int i = 0; i < 3; i++)
        authd_note_failure(i % 2 ? &b : &f->a, &fail);
    burst_state(f->a.store, &st);
    assert_int_equal(st.count, 3);
    assert_int_equal(st.alarmed, 0);
    authd_note_failure(&b, &fail);
    burst_state(f->a.store, &st);
    assert_int_equal(st.count, 4);
    assert_int_equal(st.alarmed, 1);
    assert_true(st.alarm_at >= before && st.alarm_at <= (int64_t)time(NULL));
    {
        int64_t first_alarm = st.alarm_at;
        authd_note_failure(&f->a, &fail); /* within the window: no second alarm */
        burst_state(b.store, &st);
        assert_int_equal(st.count, 5);
        assert_true(st.alarm_at == first_alarm);
    }
    /* A malformed stored value is replaced by a fresh history, not fatal. */
    {
        uint8_t junk[3] = { 9, 9, 9 };
        sk_policy_burst e;
        assert_int_equal(authd_burst_decode(junk, sizeof junk, &e), -1);
        assert_int_equal(e.count, 0);
    }
    sk_store_close(b.store);
}

/* A node-wide chore: one holder at a time, not again before it is due, and a
 * holder that vanished blocks the others only until its lease runs out. */
static void chores_one_node_at_a_time(void **state)
{
    struct fx *f = *state;
    const uint8_t n1[16] = { 1 }, n2[16] = { 2 };
    assert_int_equal(authd_chore_claim(&f->a, "chore.test", n1, 86400, 3600), 1);
    assert_int_equal(authd_chore_claim(&f->a, "chore.test", n2, 86400, 3600), 0); /* n1 holds it */
    assert_int_equal(authd_chore_claim(&f->a, "chore.test", n1, 86400, 3600), 1); /* its own: renewed */
    assert_int_equal(authd_chore_release(&f->a, "chore.test", n2, 1), 0);        /* not n2's to release */
    assert_int_equal(authd_chore_claim(&f->a, "chore.test", n2, 86400, 3600), 0);
    assert_int_equal(authd_chore_release(&f->a, "chore.test", n1, 1), 0);
    assert_int_equal(authd_chore_claim(&f->a, "chore.test", n2, 86400, 3600), 0); /* done today */
    assert_int_equal(authd_chore_claim(&f->a, "chore.test", n2, 0, 3600), 1);     /* due (every 0) */
    /* n2 "dies" holding it with a lease already over: n1 may take it. */
    assert_int_equal(authd_chore_claim(&f->a, "chore.other", n2, 0, -1), 1);
    assert_int_equal(authd_chore_claim(&f->a, "chore.other", n1, 0, 3600), 1);
    assert_int_equal(authd_chore_claim(&f->a, "chore.other", n2, 0, 3600), 0);
}

static void totp_enrolment_needs_the_accounts_live_session(void **state)
{
    struct fx *f = *state;
    sk_wire_totp_req q;
    static sk_wire_totp_rep rep;
    memset(&q, 0, sizeof q);
    assert_int_equal(sk_strlcpy(q.who.tenant, sizeof q.who.tenant, "acme"), 0);
    assert_int_equal(sk_strlcpy(q.who.id, sizeof q.who.id, "alice"), 0);
    /* no session, then bob's session for alice: refused, nothing returned */
    assert_int_equal(call(f, SK_WIRE_AUTH_TOTP_BEGIN, &q, &rep), SK_WIRE_ERR_DENIED);
    assert_string_equal(rep.b32, "");
    memcpy(q.session, f->bob_sess, sizeof q.session);
    assert_int_equal(call(f, SK_WIRE_AUTH_TOTP_BEGIN, &q, &rep), SK_WIRE_ERR_DENIED);
    assert_int_equal(call(f, SK_WIRE_AUTH_TOTP_PENDING, &q, &rep), SK_WIRE_ERR_DENIED);
    assert_int_equal(call(f, SK_WIRE_AUTH_TOTP_CONFIRM, &q, &rep), SK_WIRE_ERR_DENIED);
    /* alice's own live session: a candidate secret */
    memcpy(q.session, f->alice_sess, sizeof q.session);
    assert_int_equal(call(f, SK_WIRE_AUTH_TOTP_BEGIN, &q, &rep), 0);
    assert_true(strlen(rep.b32) >= 16);
    /* an active second factor is not replaced through the network side */
    {
        char b32[SK_AUTH_TOTP_B32_MAX], uri[SK_AUTH_TOTP_URI_MAX];
        assert_int_equal(sk_auth_totp_enable(&f->cfg, f->a.store, "acme", "alice", b32, sizeof b32, uri, sizeof uri),
                         0);
    }
    assert_int_equal(call(f, SK_WIRE_AUTH_TOTP_BEGIN, &q, &rep), SK_WIRE_ERR_DENIED);
}

static void the_callers_clock_is_not_trusted(void **state)
{
    struct fx *f = *state;
    sk_wire_session_req q;
    sk_wire_status_rep rep;
    sk_session s;
    int64_t before = (int64_t)time(NULL);
    memset(&q, 0, sizeof q);
    memcpy(q.hash, f->alice_sess, sizeof q.hash);
    q.now = INT64_MAX / 2; /* a "last seen" in the far future would never idle out */
    q.every = 0;
    /* make the stored last_seen old enough that a touch writes */
    assert_int_equal(sk_store_session_get(f->a.store, f->alice_sess, &s), SK_STORE_OK);
    s.last_seen = before - 3600;
    assert_int_equal(sk_store_session_put(f->a.store, &s), SK_STORE_OK);
    assert_int_equal(call(f, SK_WIRE_AUTH_SESSION_TOUCH, &q, &rep), 0);
    assert_int_equal(sk_store_session_get(f->a.store, f->alice_sess, &s), SK_STORE_OK);
    assert_true(s.last_seen >= before && s.last_seen <= (int64_t)time(NULL) + 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(totp_enrolment_needs_the_accounts_live_session, setup, teardown),
        cmocka_unit_test_setup_teardown(the_callers_clock_is_not_trusted, setup, teardown),
        cmocka_unit_test_setup_teardown(keys_shared_sealed_and_rotated, setup, teardown),
        cmocka_unit_test_setup_teardown(burst_counts_across_instances, setup, teardown),
        cmocka_unit_test_setup_teardown(chores_one_node_at_a_time, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
