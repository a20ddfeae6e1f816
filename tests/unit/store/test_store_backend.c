/* Unit tests of the store's backend interface: every sk_store_* function reaches
 * the matching op of the handle's table (a recording fake backend), and
 * sk_store_open_conf opens the backend [store] backend names (lmdb works end to
 * end; postgresql, built in, fails honestly when its database does not answer,
 * creating nothing; tests/integration/store/store_pg.sh runs it for real). */
#define _GNU_SOURCE
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "sk_conf.h"
#include "sk_store.h"
#include "sk_store_backend.h"
#include "store_pg.h"

/* ---- a recording fake backend ------------------------------------------ */

struct fake {
    char last[32];           /* name of the last op called */
    int calls;
    int closed;
    const void *arg;         /* the pointer argument it received */
    const char *tenant, *id;
    int64_t nums[3];
    const uint8_t *keep;
    int *ended;
    int fn_result;           /* what the update callback returned */
};

static void rec(struct fake *f, const char *op)
{
    assert_int_equal(sk_strlcpy(f->last, sizeof f->last, op), 0);
    f->calls++;
}

static void fake_close(void *impl) { struct fake *f = impl; rec(f, "close"); f->closed++; }
static int fake_user_get(void *impl, const char *t, const char *id, sk_user *out)
{ struct fake *f = impl; rec(f, "user_get"); f->tenant = t; f->id = id; f->arg = out; return 11; }
static int fake_user_put_new(void *impl, const sk_user *u)
{ struct fake *f = impl; rec(f, "user_put_new"); f->arg = u; return 12; }
static int fake_user_delete(void *impl, const char *t, const char *id)
{ struct fake *f = impl; rec(f, "user_delete"); f->tenant = t; f->id = id; return 13; }
static int fake_user_list(void *impl, const char *t, int (*cb)(const sk_user *, void *), void *ctx)
{ struct fake *f = impl; (void)cb; rec(f, "user_list"); f->tenant = t; f->arg = ctx; return 14; }
static int fake_user_update_ex(void *impl, const char *t, const char *id, int (*fn)(sk_user *, int *, void *),
                               void *ctx, const uint8_t *keep, int *ended)
{
    struct fake *f = impl;
    sk_user u;
    int end = 0;
    rec(f, "user_update_ex");
    f->tenant = t;
    f->id = id;
    f->keep = keep;
    f->ended = ended;
    memset(&u, 0, sizeof u);
    f->fn_result = fn(&u, &end, ctx);
    return u.failures == 7 ? 15 : -1; /* the callback's change reached the backend's record */
}
static int fake_user_delete_if(void *impl, const char *t, const char *id, int (*pred)(const sk_user *, void *),
                               void *ctx)
{ struct fake *f = impl; (void)pred; rec(f, "user_delete_if"); f->tenant = t; f->id = id; f->arg = ctx; return 16; }
static int fake_value_get(void *impl, const char *name, uint8_t *buf, size_t cap, size_t *len)
{ struct fake *f = impl; rec(f, "value_get"); f->id = name; f->arg = buf; f->nums[0] = (int64_t)cap; *len = 3; return 26; }
static int fake_value_update(void *impl, const char *name, int (*fn)(uint8_t *, size_t *, int, void *), void *ctx)
{ struct fake *f = impl; (void)fn; rec(f, "value_update"); f->id = name; f->arg = ctx; return 27; }
static int fake_timing_pad(void *impl) { rec(impl, "timing_pad"); return 17; }
static uint64_t fake_generation(void *impl) { rec(impl, "generation"); return 0x1234567890ull; }
static int fake_change_fd(void *impl) { rec(impl, "change_fd"); return 42; }
static int fake_session_put(void *impl, const sk_session *s)
{ struct fake *f = impl; rec(f, "session_put"); f->arg = s; return 18; }
static int fake_session_get(void *impl, const uint8_t h[SK_SESSION_HASH_LEN], sk_session *out)
{ struct fake *f = impl; rec(f, "session_get"); f->arg = h; (void)out; return 19; }
static int fake_session_delete(void *impl, const uint8_t h[SK_SESSION_HASH_LEN])
{ struct fake *f = impl; rec(f, "session_delete"); f->arg = h; return 20; }
static int fake_session_touch_every(void *impl, const uint8_t h[SK_SESSION_HASH_LEN], int64_t now, int64_t iv)
{ struct fake *f = impl; rec(f, "session_touch_every"); f->arg = h; f->nums[0] = now; f->nums[1] = iv; return 21; }
static int fake_session_delete_user(void *impl, const char *t, const char *id)
{ struct fake *f = impl; rec(f, "session_delete_user"); f->tenant = t; f->id = id; return 22; }
static int fake_session_list(void *impl, int (*cb)(const sk_session *, void *), void *ctx)
{ struct fake *f = impl; (void)cb; rec(f, "session_list"); f->arg = ctx; return 23; }
static int fake_session_sweep(void *impl, int64_t idle, int64_t abs, int64_t now)
{
    struct fake *f = impl;
    rec(f, "session_sweep");
    f->nums[0] = idle;
    f->nums[1] = abs;
    f->nums[2] = now;
    return 24;
}
static int fake_session_delete_all(void *impl) { rec(impl, "session_delete_all"); return 25; }

static const sk_store_ops fake_ops = {
    .name = "fake",
    .close = fake_close,
    .user_get = fake_user_get,
    .user_put_new = fake_user_put_new,
    .user_delete = fake_user_delete,
    .user_list = fake_user_list,
    .user_update_ex = fake_user_update_ex,
    .user_delete_if = fake_user_delete_if,
    .value_get = fake_value_get,
    .value_update = fake_value_update,
    .timing_pad = fake_timing_pad,
    .generation = fake_generation,
    .change_fd = fake_change_fd,
    .session_put = fake_session_put,
    .session_get = fake_session_get,
    .session_delete = fake_session_delete,
    .session_touch_every = fake_session_touch_every,
    .session_delete_user = fake_session_delete_user,
    .session_list = fake_session_list,
    .session_sweep = fake_session_sweep,
    .session_delete_all = fake_session_delete_all,
};

static int set_failures(sk_user *u, void *ctx)
{
    u->failures = 7;
    return *(int *)ctx;
}

static int set_failures_ex(sk_user *u, int *end_sessions, void *ctx)
{
    (void)end_sessions;
    u->failures = 7;
    return *(int *)ctx;
}

static int user_cb(const sk_user *u, void *ctx) { (void)u; (void)ctx; return 0; }
static int sess_cb(const sk_session *s, void *ctx) { (void)s; (void)ctx; return 0; }
static int value_cb(uint8_t *v, size_t *len, int exists, void *ctx) { (void)v; (void)len; (void)exists; (void)ctx; return 0; }
static int pred_cb(const sk_user *u, void *ctx) { (void)u; (void)ctx; return 0; }

#define EXPECT_OP(f, name) assert_string_equal((f)->last, name)

static void test_dispatch_table(void **state)
{
    struct fake f;
    sk_store *s = NULL;
    sk_user u;
    sk_session ss;
    uint8_t h[SK_SESSION_HASH_LEN] = { 1 };
    int ctx = 5, ended = -1;
    (void)state;

    memset(&f, 0, sizeof f);
    assert_int_equal(sk_store_wrap(&fake_ops, &f, &s), 0);
    assert_non_null(s);
    assert_string_equal(sk_store_backend_name(s), "fake");

    assert_int_equal(sk_store_user_get(s, "acme", "bob", &u), 11);
    EXPECT_OP(&f, "user_get");
    assert_string_equal(f.tenant, "acme");
    assert_string_equal(f.id, "bob");
    assert_ptr_equal(f.arg, &u);
    assert_int_equal(sk_store_user_put_new(s, &u), 12);
    EXPECT_OP(&f, "user_put_new");
    assert_ptr_equal(f.arg, &u);
    assert_int_equal(sk_store_user_delete(s, "acme", "eve"), 13);
    EXPECT_OP(&f, "user_delete");
    assert_string_equal(f.id, "eve");
    assert_int_equal(sk_store_user_list(s, "t2", user_cb, &ctx), 14);
    EXPECT_OP(&f, "user_list");
    assert_string_equal(f.tenant, "t2");
    assert_ptr_equal(f.arg, &ctx);
    assert_int_equal(sk_store_user_update_ex(s, "acme", "bob", set_failures_ex, &ctx, h, &ended), 15);
    EXPECT_OP(&f, "user_update_ex");
    assert_ptr_equal(f.keep, h);
    assert_ptr_equal(f.ended, &ended);
    assert_int_equal(f.fn_result, 5);
    assert_int_equal(sk_store_user_delete_if(s, "acme", "old", pred_cb, &ctx), 16);
    EXPECT_OP(&f, "user_delete_if");
    assert_string_equal(f.id, "old");
    assert_ptr_equal(f.arg, &ctx);
    {
        uint8_t vb[8];
        size_t vl = 0;
        assert_int_equal(sk_store_value_get(s, "keys.csrf", vb, sizeof vb, &vl), 26);
        EXPECT_OP(&f, "value_get");
        assert_string_equal(f.id, "keys.csrf");
        assert_ptr_equal(f.arg, vb);
        assert_true(f.nums[0] == (int64_t)sizeof vb && vl == 3);
        assert_int_equal(sk_store_value_update(s, "burst", value_cb, &ctx), 27);
        EXPECT_OP(&f, "value_update");
        assert_ptr_equal(f.arg, &ctx);
        f.last[0] = '\0';
        /* An invalid name never reaches the backend. */
        assert_int_equal(sk_store_value_get(s, "Bad/Name", vb, sizeof vb, &vl), -1);
        assert_int_equal(sk_store_value_update(s, "", value_cb, &ctx), -1);
        assert_string_equal(f.last, "");
    }
    assert_int_equal(sk_store_timing_pad(s), 17);
    EXPECT_OP(&f, "timing_pad");
    assert_true(sk_store_generation(s) == 0x1234567890ull);
    EXPECT_OP(&f, "generation");
    assert_int_equal(sk_store_change_fd(s), 42);
    EXPECT_OP(&f, "change_fd");

    assert_int_equal(sk_store_session_put(s, &ss), 18);
    EXPECT_OP(&f, "session_put");
    assert_ptr_equal(f.arg, &ss);
    assert_int_equal(sk_store_session_get(s, h, &ss), 19);
    EXPECT_OP(&f, "session_get");
    assert_ptr_equal(f.arg, h);
    assert_int_equal(sk_store_session_delete(s, h), 20);
    EXPECT_OP(&f, "session_delete");
    assert_int_equal(sk_store_session_touch_every(s, h, 1000, 7), 21);
    EXPECT_OP(&f, "session_touch_every");
    assert_true(f.nums[0] == 1000 && f.nums[1] == 7);
    assert_int_equal(sk_store_session_delete_user(s, "acme", "bob"), 22);
    EXPECT_OP(&f, "session_delete_user");
    assert_string_equal(f.id, "bob");
    assert_int_equal(sk_store_session_list(s, sess_cb, &ctx), 23);
    EXPECT_OP(&f, "session_list");
    assert_ptr_equal(f.arg, &ctx);
    assert_int_equal(sk_store_session_sweep(s, 60, 3600, 99), 24);
    EXPECT_OP(&f, "session_sweep");
    assert_true(f.nums[0] == 60 && f.nums[1] == 3600 && f.nums[2] == 99);
    assert_int_equal(sk_store_session_delete_all(s), 25);
    EXPECT_OP(&f, "session_delete_all");

    /* Derived in store.c: user_update is update_ex without session ending; the
     * caller's callback runs inside the backend's op on the backend's record. */
    ctx = 3;
    assert_int_equal(sk_store_user_update(s, "acme", "bob", set_failures, &ctx), 15);
    EXPECT_OP(&f, "user_update_ex");
    assert_string_equal(f.id, "bob");
    assert_null(f.keep);
    assert_null(f.ended);
    assert_int_equal(f.fn_result, 3);
    /* session_touch is touch_every at the documented granularity */
    assert_int_equal(sk_store_session_touch(s, h, 5000), 21);
    EXPECT_OP(&f, "session_touch_every");
    assert_true(f.nums[0] == 5000 && f.nums[1] == SK_SESSION_TOUCH_INTERVAL);

    assert_int_equal(f.closed, 0);
    sk_store_close(s);
    assert_int_equal(f.closed, 1);
    sk_store_close(NULL);
    assert_int_equal(sk_store_change_fd(NULL), -1);
    assert_true(sk_store_generation(NULL) == 0);
}

/* ---- opening by configuration ----------------------------------------- */

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    return remove(p);
}

typedef struct fixture {
    char dir[256];
    char db[300];
    sk_conf conf;
    char err[512];
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    const char *t = getenv("TMPDIR");
    assert_non_null(fx);
    assert_int_equal(sk_snprintf(fx->dir, sizeof fx->dir, "%s/sk-storeb-XXXXXX", t ? t : "/tmp"), 0);
    assert_non_null(mkdtemp(fx->dir));
    assert_int_equal(sk_snprintf(fx->db, sizeof fx->db, "%s/db", fx->dir), 0);
    sk_conf_defaults(&fx->conf);
    assert_int_equal(sk_strlcpy(fx->conf.state_dir, sizeof fx->conf.state_dir, fx->dir), 0);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    nftw(fx->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return 0;
}

static int count_cb(const sk_user *u, void *ctx)
{
    (void)u;
    (*(int *)ctx)++;
    return 0;
}

static int bump(sk_user *u, void *ctx)
{
    (void)ctx;
    u->failures++;
    return 0;
}

static void test_open_conf_lmdb(void **state)
{
    fixture *fx = *state;
    sk_store *s = NULL;
    sk_user u, got;
    sk_session ss, sg;
    struct stat st;
    int n = 0;
    uint64_t g0;

    /* read-only before anything exists: NOTFOUND, nothing created */
    assert_int_equal(sk_store_open_conf(&fx->conf, 1, &s, fx->err, sizeof fx->err), SK_STORE_NOTFOUND);
    assert_null(s);
    assert_int_equal(stat(fx->db, &st), -1);

    assert_string_equal(fx->conf.store_backend, "lmdb"); /* the default */
    assert_int_equal(sk_store_conf_check(&fx->conf, fx->err, sizeof fx->err), 0);
    assert_int_equal(sk_store_open_conf(&fx->conf, 0, &s, fx->err, sizeof fx->err), SK_STORE_OK);
    assert_non_null(s);
    assert_string_equal(sk_store_backend_name(s), "lmdb");
    assert_int_equal(stat(fx->db, &st), 0);

    g0 = sk_store_generation(s);
    assert_int_equal(sk_store_user_init(&u, "acme", "bob"), 0);
    assert_int_equal(sk_strlcpy(u.pw_hash, sizeof u.pw_hash, "$argon2id$v=19$m=1024,t=1,p=1$c2FsdA$aGFzaA"), 0);
    u.created = 1700000000;
    assert_int_equal(sk_store_user_put_new(s, &u), SK_STORE_OK);
    assert_int_equal(sk_store_user_put_new(s, &u), SK_STORE_EXISTS);
    assert_true(sk_store_generation(s) != g0);
    assert_int_equal(sk_store_user_update(s, "acme", "bob", bump, NULL), SK_STORE_OK);
    assert_int_equal(sk_store_user_get(s, "acme", "bob", &got), SK_STORE_OK);
    assert_string_equal(got.pw_hash, u.pw_hash);
    assert_int_equal(got.failures, 1);
    assert_int_equal(sk_store_user_get(s, "acme", "nobody", &got), SK_STORE_NOTFOUND);

    memset(&ss, 0, sizeof ss);
    memset(ss.hash, 0xab, sizeof ss.hash);
    assert_int_equal(sk_strlcpy(ss.user, sizeof ss.user, "bob"), 0);
    assert_int_equal(sk_strlcpy(ss.tenant, sizeof ss.tenant, "acme"), 0);
    ss.created = ss.last_seen = 1000;
    assert_int_equal(sk_store_session_put(s, &ss), SK_STORE_OK);
    assert_int_equal(sk_store_session_touch(s, ss.hash, 1000 + SK_SESSION_TOUCH_INTERVAL), SK_STORE_OK);
    assert_int_equal(sk_store_session_get(s, ss.hash, &sg), SK_STORE_OK);
    assert_string_equal(sg.user, "bob");
    assert_true(sg.last_seen == 1000 + SK_SESSION_TOUCH_INTERVAL);
    assert_memory_equal(sg.hash, ss.hash, sizeof ss.hash);
    sk_store_close(s);
    s = NULL;

    /* what was written is there for the next opener (another process would
     * open it the same way), and a read-only handle refuses writes */
    assert_int_equal(sk_store_open_conf(&fx->conf, 1, &s, fx->err, sizeof fx->err), SK_STORE_OK);
    assert_int_equal(sk_store_user_list(s, NULL, count_cb, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(sk_store_session_get(s, ss.hash, &sg), SK_STORE_OK);
    assert_int_equal(sk_store_session_delete(s, ss.hash), -1);
    assert_int_equal(sk_store_user_put_new(s, &u), -1);
    sk_store_close(s);
}

/* postgresql is built in: conf_check accepts it; opening a database that does
 * not answer fails at once with libpq's reason, and creates no LMDB store. */
static void test_open_conf_postgresql_unreachable(void **state)
{
    fixture *fx = *state;
    sk_store *s = (sk_store *)(uintptr_t)1; /* must be reset to NULL */
    struct stat st;
    unsigned from = 9, to = 9;

    assert_int_equal(sk_strlcpy(fx->conf.store_backend, sizeof fx->conf.store_backend, "postgresql"), 0);
    assert_int_equal(sk_strlcpy(fx->conf.store_url, sizeof fx->conf.store_url, "postgresql://sekisho@127.0.0.1:1/sekisho"),
                     0);
    fx->err[0] = '\0';
    assert_int_equal(sk_store_conf_check(&fx->conf, fx->err, sizeof fx->err), 0);
    for (int ro = 0; ro <= 1; ro++) {
        fx->err[0] = '\0';
        assert_int_equal(sk_store_open_conf(&fx->conf, ro, &s, fx->err, sizeof fx->err), -1);
        assert_null(s);
        if (strstr(fx->err, "cannot connect to PostgreSQL") == NULL)
            fail_msg("unexpected error: %s", fx->err);
    }
    assert_int_equal(sk_store_migrate_conf(&fx->conf, &from, &to, fx->err, sizeof fx->err), -1);
    assert_non_null(strstr(fx->err, "cannot connect to PostgreSQL"));
    /* refused before anything was touched: no LMDB store was made instead */
    assert_int_equal(stat(fx->db, &st), -1);

    /* lmdb has nothing to migrate */
    assert_int_equal(sk_strlcpy(fx->conf.store_backend, sizeof fx->conf.store_backend, "lmdb"), 0);
    assert_int_equal(sk_store_migrate_conf(&fx->conf, &from, &to, fx->err, sizeof fx->err), 0);
    assert_true(from == 0 && to == 0);

    /* a name the table does not know (only reachable by building a conf by hand) */
    assert_int_equal(sk_strlcpy(fx->conf.store_backend, sizeof fx->conf.store_backend, "sqlite"), 0);
    assert_int_equal(sk_store_open_conf(&fx->conf, 0, &s, fx->err, sizeof fx->err), -1);
    assert_null(s);
    assert_non_null(strstr(fx->err, "unknown backend"));
    assert_int_equal(sk_store_migrate_conf(&fx->conf, &from, &to, fx->err, sizeof fx->err), -1);
    /* a short error buffer is cut, never overrun */
    char small[8];
    memset(small, 'x', sizeof small);
    assert_int_equal(sk_store_conf_check(&fx->conf, small, sizeof small), -1);
    assert_int_equal(small[sizeof small - 1], '\0');
}

/* The database's TCP ports, as the authd sandbox will allow them. */
static void test_pg_tcp_ports(void **state)
{
    uint16_t p[8];
    unsigned n = 99;
    (void)state;
    unsetenv("PGPORT");
    assert_int_equal(sk_store_pg_tcp_ports("postgresql://u@db.example:6000/x", p, 8, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(p[0], 6000);
    assert_int_equal(sk_store_pg_tcp_ports("postgresql://u@db.example/x?sslmode=verify-full", p, 8, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(p[0], 5432);
    assert_int_equal(sk_store_pg_tcp_ports("host=a,b,c port=1,2,1 dbname=x", p, 8, &n), 0);
    assert_int_equal(n, 2); /* 1 once */
    assert_true(p[0] == 1 && p[1] == 2);
    assert_int_equal(sk_store_pg_tcp_ports("postgresql://u@a:7,b:8/x", p, 8, &n), 0);
    assert_int_equal(n, 2);
    assert_true(p[0] == 7 && p[1] == 8);
    assert_int_equal(sk_store_pg_tcp_ports("host=/run/postgresql dbname=x", p, 8, &n), 0);
    assert_int_equal(n, 0); /* a socket directory: no TCP */
    assert_int_equal(sk_store_pg_tcp_ports("hostaddr=127.0.0.1 port=5433", p, 8, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(p[0], 5433);
    setenv("PGPORT", "6543", 1);
    assert_int_equal(sk_store_pg_tcp_ports("host=h", p, 8, &n), 0);
    assert_int_equal(p[0], 6543);
    unsetenv("PGPORT");
    assert_int_equal(sk_store_pg_tcp_ports("host=h port=70000", p, 8, &n), -1);
    assert_int_equal(n, 0);
    assert_int_equal(sk_store_pg_tcp_ports("host=h port=12x", p, 8, &n), -1);
    assert_int_equal(sk_store_pg_tcp_ports("host=a,b,c port=1,2,3", p, 2, &n), -1); /* more than cap */
    assert_int_equal(sk_store_pg_tcp_ports("not a = conninfo '", p, 8, &n), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dispatch_table),
        cmocka_unit_test(test_pg_tcp_ports),
        cmocka_unit_test_setup_teardown(test_open_conf_lmdb, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_conf_postgresql_unreachable, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
