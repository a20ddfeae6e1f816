/* Unit tests for sekisho_store: record codec, users, sessions.
 *
 * The contract tests run against LMDB by default. With SK_TEST_PG_URL (a libpq
 * url) and SK_TEST_PG_PASSWORD_FILE set, the backend-independent ones run
 * against that PostgreSQL database instead (tests/integration/store/store_pg.sh
 * starts one); every test begins with empty tables there. */
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
#include <unistd.h>
#include <cmocka.h>

#include <libpq-fe.h>
#include <lmdb.h>

#include "sk_conf.h"
#include "sk_store.h"

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
} fixture;

/* PostgreSQL mode: the configuration that names the test database. */
static int pg_mode;
static sk_conf pg_conf;

/* Empty every table of the test database (a superuser-free TRUNCATE by the owner). */
static void pg_reset(void)
{
    char pw[256];
    size_t n = 0;
    assert_int_equal(sk_read_secret_file(pg_conf.store_password_file, pw, sizeof pw, &n), 0);
    const char *kw[] = { "dbname", "password", NULL }, *val[] = { pg_conf.store_url, pw, NULL };
    PGconn *c = PQconnectdbParams(kw, val, 1);
    sk_wipe(pw, sizeof pw);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("cannot connect to the test database: %s", PQerrorMessage(c));
    PGresult *r = PQexec(c, "TRUNCATE sekisho_users, sekisho_sessions, sekisho_values");
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        fail_msg("TRUNCATE: %s", PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
}

/* Open the store under test: LMDB in fx->dir, or the PostgreSQL database. */
static int open_store(fixture *fx, int readonly, sk_store **s)
{
    if (pg_mode) {
        char err[512];
        int rc = sk_store_open_conf(&pg_conf, readonly, s, err, sizeof err);
        if (rc == -1)
            print_message("open: %s\n", err);
        return rc;
    }
    if (readonly)
        return sk_store_open(fx->dir, 1, s);
    return sk_store_open_ex(fx->dir, 0, (size_t)16 << 20, s);
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    const char *t = getenv("TMPDIR");
    assert_int_equal(sk_snprintf(fx->dir, sizeof fx->dir, "%s/sk-store-XXXXXX", t ? t : "/tmp"), 0);
    assert_non_null(mkdtemp(fx->dir));
    if (pg_mode)
        pg_reset();
    assert_int_equal(open_store(fx, 0, &fx->s), SK_STORE_OK);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    sk_store_close(fx->s);
    nftw(fx->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return 0;
}

static void make_user(sk_user *u, const char *tenant, const char *id)
{
    assert_int_equal(sk_store_user_init(u, tenant, id), 0);
    u->role = SK_ROLE_ADMIN;
    assert_int_equal(sk_strlcpy(u->email, sizeof u->email, "a@example.com"), 0);
    assert_int_equal(sk_strlcpy(u->pw_hash, sizeof u->pw_hash, "$argon2id$v=19$m=1024,t=1,p=1$c2FsdA$aGFzaA"), 0);
    u->created = 1700000000;
    u->last_login = -5; /* negative values must survive the unsigned encoding */
    u->password_changed = 1700000100;
    u->failures = 3;
    u->locked_until = INT64_MAX;
    u->flags = SK_USER_F_MUST_CHANGE_PW | SK_USER_F_TOTP_ENABLED | 0x80000000u;
    u->dormant_locked_at = 42;
    u->unlocked_at = 43;
    for (int i = 0; i < SK_TOTP_BLOB_MAX; i++)
        u->totp_secret[i] = (uint8_t)(i * 7);
    u->totp_secret_len = SK_TOTP_BLOB_MAX;
    u->totp_last_step = 56666666;
    u->allow_count = 2;
    assert_int_equal(sk_strlcpy(u->allow[0], sizeof u->allow[0], "10.0.0.0/8"), 0);
    assert_int_equal(sk_strlcpy(u->allow[1], sizeof u->allow[1], "2001:db8::/32"), 0);
}

/* ---- identifiers ------------------------------------------------------- */

static void test_valid_ids(void **state)
{
    (void)state;
    assert_true(sk_store_valid_id("alice"));
    assert_true(sk_store_valid_id("a.b_c@d-e"));
    assert_true(sk_store_valid_id("0"));
    char long_id[SK_USER_ID_MAX + 2];
    memset(long_id, 'x', sizeof long_id);
    long_id[SK_USER_ID_MAX] = '\0';
    assert_true(sk_store_valid_id(long_id));
    long_id[SK_USER_ID_MAX] = 'x';
    long_id[SK_USER_ID_MAX + 1] = '\0';
    assert_false(sk_store_valid_id(long_id));
    assert_false(sk_store_valid_id(""));
    assert_false(sk_store_valid_id(".alice"));
    assert_false(sk_store_valid_id("-alice"));
    assert_false(sk_store_valid_id("al ice"));
    assert_false(sk_store_valid_id("al/ice"));
    assert_false(sk_store_valid_id("\xe5\x90\x8d"));

    assert_true(sk_store_valid_tenant("default"));
    assert_true(sk_store_valid_tenant("acme-2"));
    assert_false(sk_store_valid_tenant("Acme"));
    assert_false(sk_store_valid_tenant(""));
    assert_false(sk_store_valid_tenant("a_b"));
    char long_t[SK_TENANT_MAX + 2];
    memset(long_t, 'a', sizeof long_t);
    long_t[SK_TENANT_MAX + 1] = '\0';
    assert_false(sk_store_valid_tenant(long_t));

    enum sk_role r;
    assert_int_equal(sk_store_role_parse("admin", &r), 0);
    assert_int_equal(r, SK_ROLE_ADMIN);
    assert_int_equal(sk_store_role_parse("general", &r), 0);
    assert_int_equal(r, SK_ROLE_GENERAL);
    assert_int_equal(sk_store_role_parse("root", &r), -1);
    sk_user u;
    assert_int_equal(sk_store_user_init(&u, "default", "bad id"), -1);
    assert_int_equal(sk_store_user_init(&u, "BAD", "alice"), -1);
}

/* ---- codec ------------------------------------------------------------- */

static void test_user_codec_roundtrip(void **state)
{
    (void)state;
    sk_user u, v;
    uint8_t buf[SK_USER_RECORD_MAX];
    size_t len = 0;
    make_user(&u, "acme", "alice");
    assert_int_equal(sk_store_user_encode(&u, buf, sizeof buf, &len), 0);
    assert_true(len > 2);
    assert_int_equal(buf[1], SK_USER_RECORD_VERSION);
    assert_int_equal(sk_store_user_decode(buf, len, &v), 0);
    assert_string_equal(v.id, "alice");
    assert_string_equal(v.tenant, "acme");
    assert_int_equal(v.role, SK_ROLE_ADMIN);
    assert_string_equal(v.email, u.email);
    assert_string_equal(v.pw_hash, u.pw_hash);
    assert_true(v.created == u.created);
    assert_true(v.last_login == -5);
    assert_true(v.password_changed == u.password_changed);
    assert_int_equal(v.failures, 3);
    assert_true(v.locked_until == INT64_MAX);
    assert_int_equal(v.flags, u.flags);
    assert_true(v.dormant_locked_at == 42);
    assert_true(v.unlocked_at == 43);
    assert_int_equal(v.totp_secret_len, SK_TOTP_BLOB_MAX);
    assert_memory_equal(v.totp_secret, u.totp_secret, SK_TOTP_BLOB_MAX);
    assert_true(v.totp_last_step == u.totp_last_step);
    assert_int_equal(v.allow_count, 2);
    assert_string_equal(v.allow[1], "2001:db8::/32");

    /* Little-endian fixed fields: failures (3) sits right after the four i64
     * time fields; find it by re-encoding a different value and diffing. */
    uint8_t buf2[SK_USER_RECORD_MAX];
    size_t len2 = 0;
    u.failures = 0x01020304;
    assert_int_equal(sk_store_user_encode(&u, buf2, sizeof buf2, &len2), 0);
    assert_int_equal(len, len2);
    size_t diff = 0;
    while (diff < len && buf[diff] == buf2[diff])
        diff++;
    assert_true(diff + 4 <= len);
    assert_int_equal(buf2[diff], 0x04);
    assert_int_equal(buf2[diff + 1], 0x03);
    assert_int_equal(buf2[diff + 2], 0x02);
    assert_int_equal(buf2[diff + 3], 0x01);
}

static void test_user_codec_rejects(void **state)
{
    (void)state;
    sk_user u, v;
    uint8_t buf[SK_USER_RECORD_MAX], bad[SK_USER_RECORD_MAX + 1];
    size_t len = 0;
    make_user(&u, "acme", "alice");
    assert_int_equal(sk_store_user_encode(&u, buf, sizeof buf, &len), 0);

    /* every truncation */
    for (size_t n = 0; n < len; n++) {
        assert_int_equal(sk_store_user_decode(buf, n, &v), -1);
        assert_int_equal(v.id[0], '\0'); /* never half-decoded */
    }
    /* trailing garbage */
    memcpy(bad, buf, len);
    bad[len] = 0;
    assert_int_equal(sk_store_user_decode(bad, len + 1, &v), -1);
    /* wrong magic */
    memcpy(bad, buf, len);
    bad[0] = 'S';
    assert_int_equal(sk_store_user_decode(bad, len, &v), -1);
    /* version 0 and a future version */
    memcpy(bad, buf, len);
    bad[1] = 0;
    assert_int_equal(sk_store_user_decode(bad, len, &v), -1);
    bad[1] = SK_USER_RECORD_VERSION + 1;
    assert_int_equal(sk_store_user_decode(bad, len, &v), -1);
    /* id length field larger than the buffer */
    memcpy(bad, buf, len);
    bad[2] = 0xff;
    bad[3] = 0xff;
    assert_int_equal(sk_store_user_decode(bad, len, &v), -1);
    /* embedded NUL inside the id */
    memcpy(bad, buf, len);
    bad[5] = '\0';
    assert_int_equal(sk_store_user_decode(bad, len, &v), -1);
    /* an id that is not a valid ID */
    memcpy(bad, buf, len);
    bad[4] = '/';
    assert_int_equal(sk_store_user_decode(bad, len, &v), -1);
    /* role out of range: right after "alice" and "acme" */
    memcpy(bad, buf, len);
    size_t role_off = 2 + 2 + 5 + 2 + 4;
    assert_int_equal(bad[role_off], SK_ROLE_ADMIN);
    bad[role_off] = 7;
    assert_int_equal(sk_store_user_decode(bad, len, &v), -1);
    /* allowlist count beyond the maximum: the count byte precedes the two
     * entries ("10.0.0.0/8", "2001:db8::/32"), which precede the version-2
     * tail (u16 pending length + pending blob + i64 dormant_notified_at) and the
     * version-3 tail (32-byte activation hash + i64 expiry) */
    memcpy(bad, buf, len);
    size_t v2_tail = 2 + u.totp_pending_len + 8 + 32 + 8;
    size_t ac_off = len - v2_tail - (2 + 10) - (2 + 13) - 1;
    assert_int_equal(bad[ac_off], 2);
    bad[ac_off] = SK_ALLOW_MAX + 1;
    assert_int_equal(sk_store_user_decode(bad, len, &v), -1);

    /* encoder refuses out-of-range structs */
    sk_user w = u;
    w.allow_count = SK_ALLOW_MAX + 1;
    assert_int_equal(sk_store_user_encode(&w, buf, sizeof buf, &len), -1);
    w = u;
    w.totp_secret_len = SK_TOTP_BLOB_MAX + 1;
    assert_int_equal(sk_store_user_encode(&w, buf, sizeof buf, &len), -1);
    w = u;
    memset(w.email, 'e', sizeof w.email); /* unterminated */
    assert_int_equal(sk_store_user_encode(&w, buf, sizeof buf, &len), -1);
    w = u;
    w.role = (enum sk_role)5;
    assert_int_equal(sk_store_user_encode(&w, buf, sizeof buf, &len), -1);
    assert_int_equal(sk_store_user_encode(&u, buf, 10, &len), -1);
}

static void test_session_codec(void **state)
{
    (void)state;
    sk_session s, t;
    uint8_t buf[SK_SESSION_RECORD_MAX];
    size_t len = 0;
    memset(&s, 0, sizeof s);
    assert_int_equal(sk_strlcpy(s.user, sizeof s.user, "bob"), 0);
    assert_int_equal(sk_strlcpy(s.tenant, sizeof s.tenant, "default"), 0);
    assert_int_equal(sk_strlcpy(s.cert_serial, sizeof s.cert_serial, "0a1b2c"), 0);
    s.role = SK_ROLE_GENERAL;
    s.created = 100;
    s.last_seen = 200;
    for (int i = 0; i < SK_CSRF_LEN; i++)
        s.csrf[i] = (uint8_t)(0xa0 + i);
    assert_int_equal(sk_store_session_encode(&s, buf, sizeof buf, &len), 0);
    assert_int_equal(sk_store_session_decode(buf, len, &t), 0);
    assert_string_equal(t.user, "bob");
    assert_string_equal(t.cert_serial, "0a1b2c");
    assert_true(t.created == 100 && t.last_seen == 200);
    assert_memory_equal(t.csrf, s.csrf, SK_CSRF_LEN);
    for (size_t n = 0; n < len; n++)
        assert_int_equal(sk_store_session_decode(buf, n, &t), -1);
    buf[1] = 9;
    assert_int_equal(sk_store_session_decode(buf, len, &t), -1);
    buf[1] = SK_SESSION_RECORD_VERSION;
    buf[0] = 'U';
    assert_int_equal(sk_store_session_decode(buf, len, &t), -1);
}

/* ---- users ------------------------------------------------------------- */

static void test_user_crud(void **state)
{
    fixture *fx = *state;
    sk_user u, v;
    make_user(&u, "default", "alice");
    assert_int_equal(sk_store_user_get(fx->s, "default", "alice", &v), SK_STORE_NOTFOUND);
    assert_int_equal(sk_store_user_put_new(fx->s, &u), SK_STORE_OK);
    assert_int_equal(sk_store_user_put_new(fx->s, &u), SK_STORE_EXISTS);
    assert_int_equal(sk_store_user_get(fx->s, "default", "alice", &v), SK_STORE_OK);
    assert_string_equal(v.pw_hash, u.pw_hash);
    /* same ID, other tenant: a different user */
    assert_int_equal(sk_store_user_get(fx->s, "acme", "alice", &v), SK_STORE_NOTFOUND);
    assert_int_equal(sk_store_user_get(fx->s, "default", "bad/id", &v), SK_STORE_NOTFOUND);

    /* persists across close/reopen, readable read-only */
    sk_store_close(fx->s);
    fx->s = NULL;
    sk_store *ro = NULL;
    assert_int_equal(open_store(fx, 1, &ro), SK_STORE_OK);
    assert_int_equal(sk_store_user_get(ro, "default", "alice", &v), SK_STORE_OK);
    assert_int_equal(v.failures, 3);
    sk_user w;
    make_user(&w, "default", "carol");
    assert_int_equal(sk_store_user_put_new(ro, &w), -1); /* read-only handle */
    assert_int_equal(sk_store_timing_pad(ro), -1);
    sk_store_close(ro);
    assert_int_equal(open_store(fx, 0, &fx->s), SK_STORE_OK);

    assert_int_equal(sk_store_timing_pad(fx->s), 0);
    assert_int_equal(sk_store_user_delete(fx->s, "default", "alice"), SK_STORE_OK);
    assert_int_equal(sk_store_user_delete(fx->s, "default", "alice"), SK_STORE_NOTFOUND);
    assert_int_equal(sk_store_user_get(fx->s, "default", "alice", &v), SK_STORE_NOTFOUND);
}

static void test_open_readonly_missing(void **state)
{
    fixture *fx = *state;
    char sub[300];
    sk_store *s = NULL;
    assert_int_equal(sk_snprintf(sub, sizeof sub, "%s/nothing", fx->dir), 0);
    assert_int_equal(sk_store_open(sub, 1, &s), SK_STORE_NOTFOUND);
    assert_null(s);
    struct stat st;
    assert_int_equal(stat(sub, &st), -1); /* read-only open created nothing */
    /* a writable open creates <dir>/db with mode 0700 */
    assert_int_equal(sk_store_open_ex(sub, 0, (size_t)16 << 20, &s), SK_STORE_OK);
    char db[320];
    assert_int_equal(sk_snprintf(db, sizeof db, "%s/db", sub), 0);
    assert_int_equal(stat(db, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    sk_store_close(s);
}

static int veto_fn(sk_user *u, void *ctx)
{
    (void)ctx;
    u->failures = 999; /* must not be written */
    return 1;
}

static int bump_fn(sk_user *u, void *ctx)
{
    u->failures++;
    u->last_login = *(int64_t *)ctx;
    return 0;
}

static int rename_fn(sk_user *u, void *ctx)
{
    (void)ctx;
    u->id[0] = 'z';
    return 0;
}

static void test_user_update(void **state)
{
    fixture *fx = *state;
    sk_user u, v;
    int64_t when = 1234;
    make_user(&u, "default", "alice");
    assert_int_equal(sk_store_user_put_new(fx->s, &u), SK_STORE_OK);

    assert_int_equal(sk_store_user_update(fx->s, "default", "alice", veto_fn, NULL), SK_STORE_VETO);
    assert_int_equal(sk_store_user_get(fx->s, "default", "alice", &v), SK_STORE_OK);
    assert_int_equal(v.failures, 3);

    assert_int_equal(sk_store_user_update(fx->s, "default", "alice", bump_fn, &when), SK_STORE_OK);
    assert_int_equal(sk_store_user_get(fx->s, "default", "alice", &v), SK_STORE_OK);
    assert_int_equal(v.failures, 4);
    assert_true(v.last_login == 1234);

    assert_int_equal(sk_store_user_update(fx->s, "default", "alice", rename_fn, NULL), -1);
    assert_int_equal(sk_store_user_get(fx->s, "default", "zlice", &v), SK_STORE_NOTFOUND);
    assert_int_equal(sk_store_user_update(fx->s, "default", "nobody", bump_fn, &when),
                     SK_STORE_NOTFOUND);
}

struct race { sk_store *s; int n; };

static void *race_thread(void *arg)
{
    struct race *r = arg;
    int64_t when = 1;
    for (int i = 0; i < r->n; i++)
        if (sk_store_user_update(r->s, "default", "alice", bump_fn, &when) != SK_STORE_OK)
            return (void *)1;
    return NULL;
}

/* Read-modify-write is atomic: concurrent increments are never lost. */
static void test_user_update_concurrent(void **state)
{
    fixture *fx = *state;
    sk_user u, v;
    make_user(&u, "default", "alice");
    u.failures = 0;
    assert_int_equal(sk_store_user_put_new(fx->s, &u), SK_STORE_OK);
    pthread_t th[4];
    struct race r = { fx->s, 25 };
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, race_thread, &r), 0);
    for (int i = 0; i < 4; i++) {
        void *res = (void *)1;
        assert_int_equal(pthread_join(th[i], &res), 0);
        assert_null(res);
    }
    assert_int_equal(sk_store_user_get(fx->s, "default", "alice", &v), SK_STORE_OK);
    assert_int_equal(v.failures, 100);
}

/* Shared values: absent, created, changed, vetoed, kept apart by name, and
 * concurrent read-modify-writes never lose an increment. */
static int value_incr(uint8_t *v, size_t *len, int exists, void *ctx)
{
    uint32_t n = 0;
    (void)ctx;
    if (exists) {
        if (*len != sizeof n)
            return 1;
        memcpy(&n, v, sizeof n);
    }
    n++;
    memcpy(v, &n, sizeof n);
    *len = sizeof n;
    return 0;
}

static int value_veto(uint8_t *v, size_t *len, int exists, void *ctx)
{
    (void)len;
    (void)exists;
    (void)ctx;
    v[0] ^= 0xff; /* a vetoed change must not be written */
    return 7;
}

static int value_huge(uint8_t *v, size_t *len, int exists, void *ctx)
{
    (void)v;
    (void)exists;
    (void)ctx;
    *len = SK_STORE_VALUE_MAX + 1;
    return 0;
}

struct value_race { sk_store *s; int n; };

static void *value_race_thread(void *arg)
{
    struct value_race *r = arg;
    for (int i = 0; i < r->n; i++)
        if (sk_store_value_update(r->s, "race", value_incr, NULL) != SK_STORE_OK)
            return (void *)1;
    return NULL;
}

static void test_values(void **state)
{
    fixture *fx = *state;
    uint8_t buf[SK_STORE_VALUE_MAX];
    size_t len = 99;
    uint32_t n = 0;
    pthread_t th[4];
    struct value_race r = { fx->s, 25 };

    assert_int_equal(sk_store_value_get(fx->s, "counter", buf, sizeof buf, &len), SK_STORE_NOTFOUND);
    assert_int_equal(sk_store_value_update(fx->s, "counter", value_incr, NULL), SK_STORE_OK);
    assert_int_equal(sk_store_value_update(fx->s, "counter", value_incr, NULL), SK_STORE_OK);
    assert_int_equal(sk_store_value_get(fx->s, "counter", buf, sizeof buf, &len), SK_STORE_OK);
    assert_int_equal(len, sizeof n);
    memcpy(&n, buf, sizeof n);
    assert_int_equal(n, 2);
    assert_int_equal(sk_store_value_update(fx->s, "counter", value_veto, NULL), SK_STORE_VETO);
    assert_int_equal(sk_store_value_update(fx->s, "counter", value_huge, NULL), -1);
    assert_int_equal(sk_store_value_get(fx->s, "counter", buf, sizeof buf, &len), SK_STORE_OK);
    memcpy(&n, buf, sizeof n);
    assert_int_equal(n, 2);
    assert_int_equal(sk_store_value_get(fx->s, "counter", buf, 2, &len), -1); /* short buffer */
    assert_int_equal(sk_store_value_get(fx->s, "other", buf, sizeof buf, &len), SK_STORE_NOTFOUND);
    assert_int_equal(sk_store_value_get(fx->s, "no/slash", buf, sizeof buf, &len), -1);

    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&th[i], NULL, value_race_thread, &r), 0);
    for (int i = 0; i < 4; i++) {
        void *res = (void *)1;
        assert_int_equal(pthread_join(th[i], &res), 0);
        assert_null(res);
    }
    assert_int_equal(sk_store_value_get(fx->s, "race", buf, sizeof buf, &len), SK_STORE_OK);
    memcpy(&n, buf, sizeof n);
    assert_int_equal(n, 100);
}

struct collect { char names[16][140]; int n; int stop_after; };

static int collect_cb(const sk_user *u, void *ctx)
{
    struct collect *c = ctx;
    if (c->n >= 16)
        return -1;
    if (sk_snprintf(c->names[c->n], sizeof c->names[0], "%s/%s", u->tenant, u->id) != 0)
        return -1;
    c->n++;
    return (c->stop_after && c->n == c->stop_after) ? 7 : 0;
}

static void test_user_list(void **state)
{
    fixture *fx = *state;
    const char *t[] = { "a", "ab", "a", "b", "ab" };
    const char *id[] = { "zed", "x", "amy", "y", "w" };
    for (int i = 0; i < 5; i++) {
        sk_user u;
        make_user(&u, t[i], id[i]);
        assert_int_equal(sk_store_user_put_new(fx->s, &u), SK_STORE_OK);
    }
    struct collect c;
    memset(&c, 0, sizeof c);
    assert_int_equal(sk_store_user_list(fx->s, NULL, collect_cb, &c), 0);
    assert_int_equal(c.n, 5);
    assert_string_equal(c.names[0], "a/amy");
    assert_string_equal(c.names[1], "a/zed");
    assert_string_equal(c.names[2], "ab/w");
    assert_string_equal(c.names[4], "b/y");

    /* tenant "a" must not pick up tenant "ab" */
    memset(&c, 0, sizeof c);
    assert_int_equal(sk_store_user_list(fx->s, "a", collect_cb, &c), 0);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.names[0], "a/amy");
    assert_string_equal(c.names[1], "a/zed");
    memset(&c, 0, sizeof c);
    assert_int_equal(sk_store_user_list(fx->s, "ab", collect_cb, &c), 0);
    assert_int_equal(c.n, 2);
    memset(&c, 0, sizeof c);
    assert_int_equal(sk_store_user_list(fx->s, "zz", collect_cb, &c), 0);
    assert_int_equal(c.n, 0);
    /* early stop propagates the callback's value */
    memset(&c, 0, sizeof c);
    c.stop_after = 2;
    assert_int_equal(sk_store_user_list(fx->s, NULL, collect_cb, &c), 7);
    assert_int_equal(c.n, 2);
}

/* ---- sessions ---------------------------------------------------------- */

static void make_session(sk_session *s, uint8_t tag, const char *tenant, const char *user,
                         int64_t created, int64_t last_seen)
{
    memset(s, 0, sizeof *s);
    memset(s->hash, tag, sizeof s->hash);
    assert_int_equal(sk_strlcpy(s->user, sizeof s->user, user), 0);
    assert_int_equal(sk_strlcpy(s->tenant, sizeof s->tenant, tenant), 0);
    assert_int_equal(sk_strlcpy(s->cert_serial, sizeof s->cert_serial, "01ff"), 0);
    s->role = SK_ROLE_GENERAL;
    s->created = created;
    s->last_seen = last_seen;
    memset(s->csrf, 0x5a, sizeof s->csrf);
}

static int count_cb(const sk_session *s, void *ctx)
{
    (void)s;
    (*(int *)ctx)++;
    return 0;
}

static void test_session_basic(void **state)
{
    fixture *fx = *state;
    sk_session s, t;
    make_session(&s, 1, "default", "alice", 1000, 1000);
    assert_int_equal(sk_store_session_get(fx->s, s.hash, &t), SK_STORE_NOTFOUND);
    assert_int_equal(sk_store_session_put(fx->s, &s), SK_STORE_OK);
    assert_int_equal(sk_store_session_get(fx->s, s.hash, &t), SK_STORE_OK);
    assert_memory_equal(t.hash, s.hash, SK_SESSION_HASH_LEN);
    assert_string_equal(t.user, "alice");
    assert_memory_equal(t.csrf, s.csrf, SK_CSRF_LEN);

    /* touch: within the interval nothing is written */
    assert_int_equal(sk_store_session_touch(fx->s, s.hash, 1000 + SK_SESSION_TOUCH_INTERVAL - 1),
                     SK_STORE_OK);
    assert_int_equal(sk_store_session_get(fx->s, s.hash, &t), SK_STORE_OK);
    assert_true(t.last_seen == 1000);
    assert_int_equal(sk_store_session_touch(fx->s, s.hash, 1000 + SK_SESSION_TOUCH_INTERVAL),
                     SK_STORE_OK);
    assert_int_equal(sk_store_session_get(fx->s, s.hash, &t), SK_STORE_OK);
    assert_true(t.last_seen == 1000 + SK_SESSION_TOUCH_INTERVAL);
    /* never backwards */
    assert_int_equal(sk_store_session_touch(fx->s, s.hash, 10), SK_STORE_OK);
    assert_int_equal(sk_store_session_get(fx->s, s.hash, &t), SK_STORE_OK);
    assert_true(t.last_seen == 1000 + SK_SESSION_TOUCH_INTERVAL);
    uint8_t other[SK_SESSION_HASH_LEN];
    memset(other, 9, sizeof other);
    assert_int_equal(sk_store_session_touch(fx->s, other, 5000), SK_STORE_NOTFOUND);

    assert_int_equal(sk_store_session_delete(fx->s, s.hash), SK_STORE_OK);
    assert_int_equal(sk_store_session_delete(fx->s, s.hash), SK_STORE_NOTFOUND);
    assert_int_equal(sk_store_session_get(fx->s, s.hash, &t), SK_STORE_NOTFOUND);
}

static void test_session_sweep(void **state)
{
    fixture *fx = *state;
    sk_session s, t;
    int64_t now = 100000;
    make_session(&s, 1, "default", "a", now - 500, now - 10);     /* fresh */
    assert_int_equal(sk_store_session_put(fx->s, &s), 0);
    make_session(&s, 2, "default", "b", now - 500, now - 3600);   /* idle exactly 1 h */
    assert_int_equal(sk_store_session_put(fx->s, &s), 0);
    make_session(&s, 3, "default", "c", now - 43200, now - 5);    /* absolute 12 h */
    assert_int_equal(sk_store_session_put(fx->s, &s), 0);
    make_session(&s, 4, "default", "d", now - 43199, now - 3599); /* just inside both */
    assert_int_equal(sk_store_session_put(fx->s, &s), 0);

    assert_int_equal(sk_store_session_sweep(fx->s, 3600, 43200, now), 2);
    uint8_t h[SK_SESSION_HASH_LEN];
    memset(h, 1, sizeof h);
    assert_int_equal(sk_store_session_get(fx->s, h, &t), SK_STORE_OK);
    memset(h, 2, sizeof h);
    assert_int_equal(sk_store_session_get(fx->s, h, &t), SK_STORE_NOTFOUND);
    memset(h, 3, sizeof h);
    assert_int_equal(sk_store_session_get(fx->s, h, &t), SK_STORE_NOTFOUND);
    memset(h, 4, sizeof h);
    assert_int_equal(sk_store_session_get(fx->s, h, &t), SK_STORE_OK);
    assert_int_equal(sk_store_session_sweep(fx->s, 3600, 43200, now), 0);
    /* disabled rules */
    assert_int_equal(sk_store_session_sweep(fx->s, 0, 0, now + 1000000), 0);
    int n = 0;
    assert_int_equal(sk_store_session_list(fx->s, count_cb, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(sk_store_session_delete_all(fx->s), 2);
    n = 0;
    assert_int_equal(sk_store_session_list(fx->s, count_cb, &n), 0);
    assert_int_equal(n, 0);
}

/* Version-1 records (written before pending TOTP and dormant_notified_at
 * existed) still decode, with the new fields empty; and a v2 record cut back
 * or mislabelled as v1 is refused. */
static void test_user_codec_v1_compat(void **state)
{
    (void)state;
    sk_user u, v;
    uint8_t buf[SK_USER_RECORD_MAX];
    size_t len = 0;
    make_user(&u, "acme", "alice");
    assert_int_equal(sk_store_user_encode(&u, buf, sizeof buf, &len), 0);
    /* the v2 and v3 tails of a record without a pending secret or an activation
     * link: u16 0 + i64 0, then 32 zero bytes + i64 0 */
    size_t v3_tail = 32 + 8, tail = 2 + 0 + 8 + v3_tail;
    assert_true(len > tail);
    for (size_t i = len - tail; i < len; i++)
        assert_int_equal(buf[i], 0);
    /* labelled v3 but without the tails: truncated */
    assert_int_equal(sk_store_user_decode(buf, len - tail, &v), -1);
    /* a genuine v2 record: no activation link */
    buf[1] = 2;
    assert_int_equal(sk_store_user_decode(buf, len - v3_tail, &v), 0);
    assert_int_equal(v.activation_expires, 0);
    assert_int_equal(sk_store_user_decode(buf, len, &v), -1); /* v2 with a v3 tail: trailing bytes */
    /* labelled v1 with the tail: trailing bytes */
    buf[1] = 1;
    assert_int_equal(sk_store_user_decode(buf, len, &v), -1);
    /* a genuine v1 record */
    assert_int_equal(sk_store_user_decode(buf, len - tail, &v), 0);
    assert_string_equal(v.id, "alice");
    assert_int_equal(v.totp_secret_len, SK_TOTP_BLOB_MAX);
    assert_memory_equal(v.totp_secret, u.totp_secret, SK_TOTP_BLOB_MAX);
    assert_int_equal(v.totp_pending_len, 0);
    assert_int_equal(v.dormant_notified_at, 0);
    assert_int_equal(v.allow_count, 2);
    assert_string_equal(v.allow[1], "2001:db8::/32");

    /* v2 fields round-trip */
    u.totp_pending_len = 49;
    for (int i = 0; i < 49; i++)
        u.totp_pending[i] = (uint8_t)(0xA0 ^ i);
    u.dormant_notified_at = -77;
    /* v3 fields round-trip */
    for (int i = 0; i < 32; i++)
        u.activation_hash[i] = (uint8_t)(0x5A ^ i);
    u.activation_expires = 1900000000;
    assert_int_equal(sk_store_user_encode(&u, buf, sizeof buf, &len), 0);
    assert_int_equal(sk_store_user_decode(buf, len, &v), 0);
    assert_int_equal(v.totp_pending_len, 49);
    assert_memory_equal(v.totp_pending, u.totp_pending, 49);
    assert_int_equal(v.dormant_notified_at, -77);
    assert_memory_equal(v.activation_hash, u.activation_hash, 32);
    assert_int_equal(v.activation_expires, 1900000000);
    /* pending length beyond the maximum */
    size_t pl_off = len - (32 + 8) - 8 - 49 - 2;
    assert_int_equal(buf[pl_off], 49);
    buf[pl_off] = SK_TOTP_BLOB_MAX + 1;
    assert_int_equal(sk_store_user_decode(buf, len, &v), -1);
    sk_user w = u;
    w.totp_pending_len = SK_TOTP_BLOB_MAX + 1;
    assert_int_equal(sk_store_user_encode(&w, buf, sizeof buf, &len), -1);
}

static int upd_ex_fn(sk_user *u, int *end_sessions, void *ctx)
{
    int *mode = ctx;
    u->failures = 11;
    *end_sessions = *mode != 0;
    return *mode == 2; /* 2: veto */
}

static int del_pred(const sk_user *u, void *ctx)
{
    (void)ctx;
    return u->failures == 11 ? 0 : 1;
}

static void test_user_update_ex_and_delete_if(void **state)
{
    fixture *fx = *state;
    sk_session s, t;
    sk_user u;
    int ended = -1, mode;
    make_user(&u, "default", "alice");
    u.failures = 0;
    assert_int_equal(sk_store_user_put_new(fx->s, &u), 0);
    for (int i = 1; i <= 3; i++) {
        make_session(&s, (uint8_t)i, "default", "alice", 1, 1);
        assert_int_equal(sk_store_session_put(fx->s, &s), 0);
    }
    make_session(&s, 9, "default", "bob", 1, 1);
    assert_int_equal(sk_store_session_put(fx->s, &s), 0);

    /* veto: nothing written, no session ended */
    mode = 2;
    assert_int_equal(sk_store_user_update_ex(fx->s, "default", "alice", upd_ex_fn, &mode, NULL, &ended),
                     SK_STORE_VETO);
    assert_int_equal(ended, 0);
    make_session(&t, 1, "default", "alice", 1, 1);
    assert_int_equal(sk_store_session_get(fx->s, t.hash, &s), 0);
    /* no end requested */
    mode = 0;
    assert_int_equal(sk_store_user_update_ex(fx->s, "default", "alice", upd_ex_fn, &mode, NULL, &ended), 0);
    assert_int_equal(ended, 0);
    /* end all but session 2 */
    uint8_t keep[SK_SESSION_HASH_LEN];
    make_session(&t, 2, "default", "alice", 1, 1);
    memcpy(keep, t.hash, sizeof keep);
    mode = 1;
    assert_int_equal(sk_store_user_update_ex(fx->s, "default", "alice", upd_ex_fn, &mode, keep, &ended), 0);
    assert_int_equal(ended, 2);
    assert_int_equal(sk_store_session_get(fx->s, keep, &s), 0);
    make_session(&t, 1, "default", "alice", 1, 1);
    assert_int_equal(sk_store_session_get(fx->s, t.hash, &s), SK_STORE_NOTFOUND);
    make_session(&t, 9, "default", "bob", 1, 1);
    assert_int_equal(sk_store_session_get(fx->s, t.hash, &s), 0);
    assert_int_equal(sk_store_user_update_ex(fx->s, "default", "nobody", upd_ex_fn, &mode, NULL, &ended),
                     SK_STORE_NOTFOUND);

    /* delete_if: vetoed on a record that does not satisfy the predicate */
    make_user(&u, "default", "carol");
    u.failures = 0;
    assert_int_equal(sk_store_user_put_new(fx->s, &u), 0);
    assert_int_equal(sk_store_user_delete_if(fx->s, "default", "carol", del_pred, NULL), SK_STORE_VETO);
    assert_int_equal(sk_store_user_get(fx->s, "default", "carol", &u), 0);
    assert_int_equal(sk_store_user_delete_if(fx->s, "default", "alice", del_pred, NULL), SK_STORE_OK);
    assert_int_equal(sk_store_user_get(fx->s, "default", "alice", &u), SK_STORE_NOTFOUND);
    assert_int_equal(sk_store_session_get(fx->s, keep, &s), SK_STORE_NOTFOUND); /* its sessions too */
    assert_int_equal(sk_store_user_delete_if(fx->s, "default", "alice", del_pred, NULL), SK_STORE_NOTFOUND);
}

static void test_session_delete_user(void **state)
{
    fixture *fx = *state;
    sk_session s, t;
    sk_user u;
    make_user(&u, "default", "alice");
    assert_int_equal(sk_store_user_put_new(fx->s, &u), 0);
    make_session(&s, 1, "default", "alice", 1, 1);
    assert_int_equal(sk_store_session_put(fx->s, &s), 0);
    make_session(&s, 2, "default", "alice", 1, 1);
    assert_int_equal(sk_store_session_put(fx->s, &s), 0);
    make_session(&s, 3, "acme", "alice", 1, 1); /* same ID, other tenant */
    assert_int_equal(sk_store_session_put(fx->s, &s), 0);
    make_session(&s, 4, "default", "bob", 1, 1);
    assert_int_equal(sk_store_session_put(fx->s, &s), 0);
    make_session(&s, 5, "default", "alice", 1, 1);
    assert_int_equal(sk_store_session_put(fx->s, &s), 0);

    assert_int_equal(sk_store_session_delete_user(fx->s, "default", "alice"), 3);
    assert_int_equal(sk_store_session_delete_user(fx->s, "default", "alice"), 0);
    int n = 0;
    assert_int_equal(sk_store_session_list(fx->s, count_cb, &n), 0);
    assert_int_equal(n, 2);

    /* deleting a user ends that user's sessions in the same transaction */
    make_session(&s, 6, "default", "alice", 1, 1);
    assert_int_equal(sk_store_session_put(fx->s, &s), 0);
    assert_int_equal(sk_store_user_delete(fx->s, "default", "alice"), SK_STORE_OK);
    uint8_t h[SK_SESSION_HASH_LEN];
    memset(h, 6, sizeof h);
    assert_int_equal(sk_store_session_get(fx->s, h, &t), SK_STORE_NOTFOUND);
    memset(h, 3, sizeof h);
    assert_int_equal(sk_store_session_get(fx->s, h, &t), SK_STORE_OK);
    memset(h, 4, sizeof h);
    assert_int_equal(sk_store_session_get(fx->s, h, &t), SK_STORE_OK);
}

/* Write raw bytes under a user's key behind the store's back, as a disk error
 * or a newer version of Sekisho would. */
static void raw_put(const char *dir, const char *db, const void *key, size_t klen,
                    const void *val, size_t n)
{
    char path[300], kb[140];
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    assert_int_equal(sk_snprintf(path, sizeof path, "%s/db", dir), 0);
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 4), 0);
    assert_int_equal(mdb_env_set_mapsize(env, (size_t)16 << 20), 0);
    assert_int_equal(mdb_env_open(env, path, MDB_NOTLS, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, db, 0, &dbi), 0);
    assert_true(klen <= sizeof kb);
    memcpy(kb, key, klen);
    MDB_val k = { klen, kb };
    uint8_t buf[SK_USER_RECORD_MAX];
    memcpy(buf, val, n);
    MDB_val v = { n, buf };
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

static void raw_put_user(const char *dir, const char *tenant, const char *id, const void *val,
                         size_t n)
{
    char key[140];
    size_t tl = strlen(tenant), il = strlen(id);
    memcpy(key, tenant, tl + 1);
    memcpy(key + tl + 1, id, il);
    raw_put(dir, "users", key, tl + 1 + il, val, n);
}

/* A database written by a future schema is refused at open, read-only too. */
static void test_schema_version(void **state)
{
    fixture *fx = *state;
    sk_store *s = NULL;
    sk_store_close(fx->s);
    fx->s = NULL;
    uint8_t v2[4] = { 2, 0, 0, 0 };
    raw_put(fx->dir, "meta", "schema", 6, v2, sizeof v2);
    assert_int_equal(sk_store_open_ex(fx->dir, 0, (size_t)16 << 20, &s), -1);
    assert_null(s);
    assert_int_equal(sk_store_open(fx->dir, 1, &s), -1);
    uint8_t v1[4] = { 1, 0, 0, 0 };
    raw_put(fx->dir, "meta", "schema", 6, v1, sizeof v1);
    assert_int_equal(sk_store_open_ex(fx->dir, 0, (size_t)16 << 20, &fx->s), SK_STORE_OK);
}

static void test_corrupt_record_in_db(void **state)
{
    fixture *fx = *state;
    sk_user u, v;
    uint8_t buf[SK_USER_RECORD_MAX];
    size_t len = 0;
    int64_t when = 1;
    make_user(&u, "default", "alice");
    assert_int_equal(sk_store_user_put_new(fx->s, &u), 0);
    make_user(&u, "default", "bob");
    assert_int_equal(sk_store_user_put_new(fx->s, &u), 0);

    /* alice: truncated record */
    make_user(&u, "default", "alice");
    assert_int_equal(sk_store_user_encode(&u, buf, sizeof buf, &len), 0);
    raw_put_user(fx->dir, "default", "alice", buf, len - 3);
    assert_int_equal(sk_store_user_get(fx->s, "default", "alice", &v), -1);
    assert_int_equal(sk_store_user_update(fx->s, "default", "alice", bump_fn, &when), -1);
    /* a listing skips it and still shows the healthy record */
    struct collect c;
    memset(&c, 0, sizeof c);
    assert_int_equal(sk_store_user_list(fx->s, NULL, collect_cb, &c), 0);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.names[0], "default/bob");

    /* alice: a record from a future version is refused, not guessed at */
    buf[1] = SK_USER_RECORD_VERSION + 1;
    raw_put_user(fx->dir, "default", "alice", buf, len);
    assert_int_equal(sk_store_user_get(fx->s, "default", "alice", &v), -1);
    /* and the same bytes with the current version read fine */
    buf[1] = SK_USER_RECORD_VERSION;
    raw_put_user(fx->dir, "default", "alice", buf, len);
    assert_int_equal(sk_store_user_get(fx->s, "default", "alice", &v), SK_STORE_OK);
    assert_string_equal(v.id, "alice");
    /* deleting a corrupt user is still possible (it is not decoded) */
    raw_put_user(fx->dir, "default", "alice", "junk", 4);
    assert_int_equal(sk_store_user_delete(fx->s, "default", "alice"), SK_STORE_OK);
}

int main(void)
{
    sk_log_set_level(SK_LOG_ERR);
    const char *url = getenv("SK_TEST_PG_URL"), *pwfile = getenv("SK_TEST_PG_PASSWORD_FILE");
    if (url != NULL && url[0] != '\0') {
        char err[512];
        unsigned from = 0, to = 0;
        pg_mode = 1;
        sk_conf_defaults(&pg_conf);
        if (sk_strlcpy(pg_conf.store_backend, sizeof pg_conf.store_backend, "postgresql") != 0 ||
            sk_strlcpy(pg_conf.store_url, sizeof pg_conf.store_url, url) != 0 ||
            sk_strlcpy(pg_conf.store_password_file, sizeof pg_conf.store_password_file,
                       pwfile ? pwfile : "") != 0 ||
            sk_store_migrate_conf(&pg_conf, &from, &to, err, sizeof err) != 0) {
            fprintf(stderr, "test_store: cannot prepare the PostgreSQL database: %s\n", err);
            return 1;
        }
        /* the backend-independent contract, against PostgreSQL */
        fprintf(stderr, "test_store: the store contract on postgresql (schema %u)\n", to);
        const struct CMUnitTest pg_tests[] = {
            cmocka_unit_test_setup_teardown(test_user_update_ex_and_delete_if, setup, teardown),
            cmocka_unit_test_setup_teardown(test_user_crud, setup, teardown),
            cmocka_unit_test_setup_teardown(test_user_update, setup, teardown),
            cmocka_unit_test_setup_teardown(test_user_update_concurrent, setup, teardown),
            cmocka_unit_test_setup_teardown(test_user_list, setup, teardown),
            cmocka_unit_test_setup_teardown(test_values, setup, teardown),
            cmocka_unit_test_setup_teardown(test_session_basic, setup, teardown),
            cmocka_unit_test_setup_teardown(test_session_sweep, setup, teardown),
            cmocka_unit_test_setup_teardown(test_session_delete_user, setup, teardown),
        };
        return cmocka_run_group_tests_name("store contract on postgresql", pg_tests, NULL, NULL);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_ids),
        cmocka_unit_test(test_user_codec_roundtrip),
        cmocka_unit_test(test_user_codec_rejects),
        cmocka_unit_test(test_session_codec),
        cmocka_unit_test(test_user_codec_v1_compat),
        cmocka_unit_test_setup_teardown(test_user_update_ex_and_delete_if, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_crud, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_readonly_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_update, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_update_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_basic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_sweep, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_delete_user, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_record_in_db, setup, teardown),
        cmocka_unit_test_setup_teardown(test_schema_version, setup, teardown),
    };
    return cmocka_run_group_tests_name("store on lmdb", tests, NULL, NULL);
}
