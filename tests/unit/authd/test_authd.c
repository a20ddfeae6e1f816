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
    assert_int_equal(sk_wire_auth_decode(type, 1, r, w.len, rep), 0);
    return *(int32_t *)rep;
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
