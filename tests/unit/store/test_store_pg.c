/* Tests of the PostgreSQL backend that only a real database can answer: two
 * handles (two gateway nodes) on one database, change notification, an outage
 * and recovery, schema versions, and what the connection string may hold.
 *
 * Needs SK_TEST_PG_URL, SK_TEST_PG_PASSWORD_FILE and SK_TEST_PG_CTL (a script
 * taking stop|start): tests/integration/store/store_pg.sh provides them after
 * starting its own PostgreSQL. Without them it fails, it never skips. */
#define _GNU_SOURCE
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include <libpq-fe.h>

#include "sk_conf.h"
#include "sk_store.h"
#include "store_pg.h"

static sk_conf conf;
static const char *pg_ctl;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Run SQL on the test database behind the store's back. */
static void raw_sql(const char *sql, const char *const *params, int n)
{
    char pw[256];
    size_t len = 0;
    assert_int_equal(sk_read_secret_file(conf.store_password_file, pw, sizeof pw, &len), 0);
    const char *kw[] = { "dbname", "password", NULL }, *val[] = { conf.store_url, pw, NULL };
    PGconn *c = PQconnectdbParams(kw, val, 1);
    sk_wipe(pw, sizeof pw);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("cannot connect to the test database: %s", PQerrorMessage(c));
    PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
}

static void pg_control(const char *what)
{
    char cmd[1200];
    assert_int_equal(sk_snprintf(cmd, sizeof cmd, "bash '%s' %s", pg_ctl, what), 0);
    if (system(cmd) != 0)
        fail_msg("%s failed", cmd);
}

static sk_store *open_ok(int readonly)
{
    char err[512];
    sk_store *s = NULL;
    int rc = sk_store_open_conf(&conf, readonly, &s, err, sizeof err);
    if (rc != SK_STORE_OK)
        fail_msg("open: %d %s", rc, err);
    return s;
}

typedef struct fixture {
    sk_store *a, *b; /* two nodes */
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    raw_sql("TRUNCATE sekisho_users, sekisho_sessions, sekisho_values", NULL, 0);
    fx->a = open_ok(0);
    fx->b = open_ok(0);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    sk_store_close(fx->a);
    sk_store_close(fx->b);
    free(fx);
    return 0;
}

static void add_user(sk_store *s, const char *id)
{
    sk_user u;
    assert_int_equal(sk_store_user_init(&u, "default", id), 0);
    assert_int_equal(sk_strlcpy(u.pw_hash, sizeof u.pw_hash, "$argon2id$v=19$m=1024,t=1,p=1$c2FsdA$aGFzaA"), 0);
    u.created = 1700000000;
    assert_int_equal(sk_store_user_put_new(s, &u), SK_STORE_OK);
}

/* ---- two nodes, one row lock -------------------------------------------- */

static int bump_fn(sk_user *u, void *ctx)
{
    (void)ctx;
    u->failures++;
    return 0;
}

struct race { sk_store *s; int n; int bad; };

static void *race_user(void *arg)
{
    struct race *r = arg;
    for (int i = 0; i < r->n; i++)
        if (sk_store_user_update(r->s, "default", "alice", bump_fn, NULL) != SK_STORE_OK)
            r->bad++;
    return NULL;
}

/* Failures counted on any mix of nodes are never lost: 4 threads on two
 * handles (two pools, separate connections) increment one user's counter. */
static void test_two_nodes_failures(void **state)
{
    fixture *fx = *state;
    pthread_t th[4];
    struct race r[4];
    sk_user v;
    add_user(fx->a, "alice");
    for (int i = 0; i < 4; i++) {
        r[i] = (struct race){ i % 2 ? fx->b : fx->a, 25, 0 };
        assert_int_equal(pthread_create(&th[i], NULL, race_user, &r[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(r[i].bad, 0);
    }
    assert_int_equal(sk_store_user_get(fx->b, "default", "alice", &v), SK_STORE_OK);
    assert_int_equal(v.failures, 100);
    assert_int_equal(sk_store_user_get(fx->a, "default", "alice", &v), SK_STORE_OK);
    assert_int_equal(v.failures, 100);
    /* the case-variant rule holds across nodes too */
    sk_user u;
    assert_int_equal(sk_store_user_init(&u, "default", "ALICE"), 0);
    assert_int_equal(sk_store_user_put_new(fx->b, &u), SK_STORE_EXISTS);
}

static int value_incr(uint8_t *v, size_t *len, int exists, void *ctx)
{
    uint32_t n = 0;
    int *created = ctx;
    if (exists) {
        if (*len != sizeof n)
            return 1;
        memcpy(&n, v, sizeof n);
    } else {
        __atomic_add_fetch(created, 1, __ATOMIC_SEQ_CST);
    }
    n++;
    memcpy(v, &n, sizeof n);
    *len = sizeof n;
    return 0;
}

struct vrace { sk_store *s; int n; int bad; int *created; };

static void *race_value(void *arg)
{
    struct vrace *r = arg;
    for (int i = 0; i < r->n; i++)
        if (sk_store_value_update(r->s, "burst", value_incr, r->created) != SK_STORE_OK)
            r->bad++;
    return NULL;
}

/* A shared value created and incremented by two nodes at once: created once,
 * no increment lost. */
static void test_two_nodes_values(void **state)
{
    fixture *fx = *state;
    pthread_t th[4];
    struct vrace r[4];
    uint8_t buf[SK_STORE_VALUE_MAX];
    size_t len = 0;
    uint32_t n = 0;
    int created = 0;
    for (int i = 0; i < 4; i++) {
        r[i] = (struct vrace){ i % 2 ? fx->b : fx->a, 25, 0, &created };
        assert_int_equal(pthread_create(&th[i], NULL, race_value, &r[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(r[i].bad, 0);
    }
    assert_int_equal(created, 1);
    assert_int_equal(sk_store_value_get(fx->b, "burst", buf, sizeof buf, &len), SK_STORE_OK);
    assert_int_equal(len, sizeof n);
    memcpy(&n, buf, sizeof n);
    assert_int_equal(n, 100);
}

/* ---- change notification ------------------------------------------------ */

static void wait_listening(sk_store *s)
{
    int64_t until = now_ms() + 10000;
    while (sk_store_generation(s) == 0) {
        if (now_ms() > until)
            fail_msg("the generation stayed 0 (no LISTEN connection) for 10 s");
        usleep(20000);
    }
}

static void drain(int fd)
{
    char buf[256];
    while (read(fd, buf, sizeof buf) > 0) {
    }
}

/* A commit on node B wakes node A's change descriptor and moves its
 * generation, well within a second. */
static void expect_change(sk_store *a, int fd, uint64_t g0, const char *what)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    int64_t t0 = now_ms();
    int n = poll(&pfd, 1, 1000);
    if (n != 1)
        fail_msg("%s: change_fd not readable within 1 s", what);
    while (sk_store_generation(a) == g0 && now_ms() - t0 < 1000)
        usleep(5000);
    if (sk_store_generation(a) == g0)
        fail_msg("%s: generation unchanged after 1 s", what);
    print_message("%s: seen after %lld ms\n", what, (long long)(now_ms() - t0));
}

static void test_change_notification(void **state)
{
    fixture *fx = *state;
    sk_session ss;
    int fd = sk_store_change_fd(fx->a), fd2 = sk_store_change_fd(fx->a);
    assert_true(fd >= 0 && fd2 >= 0);
    wait_listening(fx->a);
    usleep(100000);
    drain(fd);
    drain(fd2);

    uint64_t g0 = sk_store_generation(fx->a);
    add_user(fx->b, "bob");
    expect_change(fx->a, fd, g0, "user added on B");
    /* a second descriptor is woken too (each caller gets its own) */
    struct pollfd pfd = { .fd = fd2, .events = POLLIN };
    assert_int_equal(poll(&pfd, 1, 1000), 1);
    drain(fd);
    drain(fd2);

    memset(&ss, 0, sizeof ss);
    memset(ss.hash, 7, sizeof ss.hash);
    assert_int_equal(sk_strlcpy(ss.user, sizeof ss.user, "bob"), 0);
    assert_int_equal(sk_strlcpy(ss.tenant, sizeof ss.tenant, "default"), 0);
    ss.created = ss.last_seen = 1000;
    assert_int_equal(sk_store_session_put(fx->b, &ss), SK_STORE_OK);
    drain(fd);
    usleep(200000);
    drain(fd);
    g0 = sk_store_generation(fx->a);
    assert_int_equal(sk_store_session_delete(fx->b, ss.hash), SK_STORE_OK); /* a logout on B */
    expect_change(fx->a, fd, g0, "session deleted on B");

    /* nothing committed: the descriptor stays quiet */
    drain(fd);
    usleep(300000);
    drain(fd);
    pfd.fd = fd;
    assert_int_equal(poll(&pfd, 1, 300), 0);
    /* this handle's own commit moves its generation at once */
    g0 = sk_store_generation(fx->a);
    add_user(fx->a, "carol");
    assert_true(sk_store_generation(fx->a) != g0);
    close(fd);
    close(fd2);
}

/* ---- outage and recovery ------------------------------------------------ */

static void test_outage(void **state)
{
    fixture *fx = *state;
    sk_user v;
    int64_t t0, worst = 0;
    int fd = sk_store_change_fd(fx->a);
    assert_true(fd >= 0);
    add_user(fx->a, "dave");
    wait_listening(fx->a);
    assert_int_equal(sk_store_user_get(fx->b, "default", "dave", &v), SK_STORE_OK);

    pg_control("stop");
    for (int i = 0; i < 5; i++) {
        t0 = now_ms();
        assert_int_equal(sk_store_user_get(fx->a, "default", "dave", &v), -1);
        assert_int_equal(sk_store_user_update(fx->b, "default", "dave", bump_fn, NULL), -1);
        assert_int_equal(sk_store_timing_pad(fx->a), -1);
        if (now_ms() - t0 > worst)
            worst = now_ms() - t0;
    }
    print_message("with PostgreSQL stopped, the slowest round of three ops took %lld ms\n", (long long)worst);
    assert_true(worst < 4000);
    /* the generation says "cannot be read" once the LISTEN connection is gone */
    t0 = now_ms();
    while (sk_store_generation(fx->a) != 0 && now_ms() - t0 < 15000)
        usleep(50000);
    assert_true(sk_store_generation(fx->a) == 0);

    pg_control("start");
    /* the same handles recover by themselves */
    t0 = now_ms();
    while (sk_store_user_get(fx->a, "default", "dave", &v) != SK_STORE_OK) {
        if (now_ms() - t0 > 10000)
            fail_msg("handle A did not recover within 10 s of the restart");
        usleep(100000);
    }
    t0 = now_ms();
    while (sk_store_user_update(fx->b, "default", "dave", bump_fn, NULL) != SK_STORE_OK) {
        if (now_ms() - t0 > 10000)
            fail_msg("handle B did not recover within 10 s of the restart");
        usleep(100000);
    }
    assert_int_equal(sk_store_user_get(fx->a, "default", "dave", &v), SK_STORE_OK);
    assert_int_equal(v.failures, 1);
    wait_listening(fx->a);
    close(fd);
}

/* A database that accepts connections but never answers (a hung host): every
 * op still returns -1 within its bounds, and the handles recover once it
 * answers again. */
static void test_frozen_server(void **state)
{
    fixture *fx = *state;
    sk_user v;
    int64_t t0, took;
    add_user(fx->a, "gina");
    assert_int_equal(sk_store_user_get(fx->b, "default", "gina", &v), SK_STORE_OK);

    pg_control("freeze");
    t0 = now_ms();
    assert_int_equal(sk_store_user_get(fx->a, "default", "gina", &v), -1);
    took = now_ms() - t0;
    print_message("frozen server: an op on an open connection gave up after %lld ms\n", (long long)took);
    assert_true(took < SK_STORE_PG_OP_TIMEOUT_MS + 2000);
    t0 = now_ms();
    assert_int_equal(sk_store_user_update(fx->b, "default", "gina", bump_fn, NULL), -1);
    assert_true(now_ms() - t0 < SK_STORE_PG_OP_TIMEOUT_MS + 2000);
    /* a new connection to the frozen server: connect_timeout */
    t0 = now_ms();
    assert_int_equal(sk_store_user_get(fx->a, "default", "gina", &v), -1);
    took = now_ms() - t0;
    print_message("frozen server: a new connection gave up after %lld ms\n", (long long)took);
    assert_true(took < 5000);
    pg_control("thaw");

    t0 = now_ms();
    while (sk_store_user_update(fx->b, "default", "gina", bump_fn, NULL) != SK_STORE_OK) {
        if (now_ms() - t0 > 15000)
            fail_msg("B: no recovery within 15 s of the thaw");
        usleep(100000);
    }
    t0 = now_ms();
    while (sk_store_user_get(fx->a, "default", "gina", &v) != SK_STORE_OK) {
        if (now_ms() - t0 > 15000)
            fail_msg("A: no recovery within 15 s of the thaw");
        usleep(100000);
    }
    assert_int_equal(v.failures, 1);
}

/* ---- schema and connection string ------------------------------------- */

static void test_schema_versions(void **state)
{
    (void)state;
    char err[512], ver[16];
    sk_store *s = NULL;
    unsigned from = 9, to = 9;

    /* migrating again is a no-op */
    assert_int_equal(sk_store_migrate_conf(&conf, &from, &to, err, sizeof err), 0);
    assert_int_equal(from, SK_STORE_PG_SCHEMA);
    assert_int_equal(to, SK_STORE_PG_SCHEMA);

    assert_int_equal(sk_snprintf(ver, sizeof ver, "%u", SK_STORE_PG_SCHEMA + 1), 0);
    const char *p[] = { ver };
    raw_sql("UPDATE sekisho_schema SET version = $1::int", p, 1);
    for (int ro = 0; ro <= 1; ro++) {
        err[0] = '\0';
        assert_int_equal(sk_store_open_conf(&conf, ro, &s, err, sizeof err), -1);
        assert_null(s);
        if (strstr(err, "newer than this Sekisho knows") == NULL)
            fail_msg("unexpected error: %s", err);
    }
    assert_int_equal(sk_store_migrate_conf(&conf, &from, &to, err, sizeof err), -1);
    assert_non_null(strstr(err, "newer"));

    /* no schema yet: a writer is told to migrate, a reader finds nothing */
    const char *zero[] = { "0" };
    raw_sql("UPDATE sekisho_schema SET version = $1::int", zero, 1);
    assert_int_equal(sk_store_open_conf(&conf, 0, &s, err, sizeof err), -1);
    if (strstr(err, "sekishoctl store migrate") == NULL)
        fail_msg("unexpected error: %s", err);
    assert_int_equal(sk_store_open_conf(&conf, 1, &s, err, sizeof err), SK_STORE_NOTFOUND);
    assert_null(s);

    assert_int_equal(sk_snprintf(ver, sizeof ver, "%u", SK_STORE_PG_SCHEMA), 0);
    raw_sql("UPDATE sekisho_schema SET version = $1::int", p, 1);
    s = open_ok(1);
    sk_store_close(s);
}

static void expect_refused(sk_conf *c, const char *want, const char *never)
{
    char err[512];
    sk_store *s = NULL;
    int64_t t0 = now_ms();
    err[0] = '\0';
    assert_int_equal(sk_store_open_conf(c, 0, &s, err, sizeof err), -1);
    assert_null(s);
    if (strstr(err, want) == NULL)
        fail_msg("expected '%s' in: %s", want, err);
    if (never != NULL && strstr(err, never) != NULL)
        fail_msg("'%s' must not appear in: %s", never, err);
    assert_true(now_ms() - t0 < 5000);
}

static void test_url_refusals(void **state)
{
    (void)state;
    sk_conf c = conf;
    /* the config parser refuses these already; the backend refuses them too */
    assert_int_equal(sk_strlcpy(c.store_url, sizeof c.store_url, "postgresql://sekisho:Hunter2x@127.0.0.1:1/sekisho"), 0);
    expect_refused(&c, "must not hold a password", "Hunter2x");
    assert_int_equal(sk_strlcpy(c.store_url, sizeof c.store_url, "host=127.0.0.1 port=1 password=Hunter2x"), 0);
    expect_refused(&c, "must not hold a password", "Hunter2x");
    assert_int_equal(sk_strlcpy(c.store_url, sizeof c.store_url, "postgresql://127.0.0.1:1/x?password=Hunter2x"), 0);
    expect_refused(&c, "must not hold a password", "Hunter2x");
    assert_int_equal(sk_strlcpy(c.store_url, sizeof c.store_url, "host=127.0.0.1 'unterminated"), 0);
    expect_refused(&c, "not a libpq connection string", NULL);
    /* nothing listens: refused promptly, with libpq's reason */
    assert_int_equal(sk_strlcpy(c.store_url, sizeof c.store_url, "postgresql://sekisho@127.0.0.1:1/sekisho"), 0);
    expect_refused(&c, "cannot connect to PostgreSQL", NULL);
    /* a wrong password */
    c = conf;
    char path[] = "/tmp/sk-pgpw-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "wrong-Password-1\n", 17), 17);
    close(fd);
    assert_int_equal(sk_strlcpy(c.store_password_file, sizeof c.store_password_file, path), 0);
    expect_refused(&c, "password authentication failed", "wrong-Password-1");
    unlink(path);
    assert_int_equal(sk_strlcpy(c.store_password_file, sizeof c.store_password_file, "/nonexistent/pw"), 0);
    expect_refused(&c, "cannot read [store] password_file", NULL);
}

/* Rows changed behind the store's back are refused, not half-read. */
static void test_corrupt_rows(void **state)
{
    fixture *fx = *state;
    sk_user v;
    sk_session ss;
    uint8_t h[SK_SESSION_HASH_LEN];
    add_user(fx->a, "erin");
    add_user(fx->a, "frank");
    raw_sql("UPDATE sekisho_users SET record = '\\x5501'::bytea WHERE id = 'erin'", NULL, 0);
    assert_int_equal(sk_store_user_get(fx->a, "default", "erin", &v), -1);
    assert_int_equal(sk_store_user_update(fx->a, "default", "erin", bump_fn, NULL), -1);
    /* a record under another user's key */
    raw_sql("UPDATE sekisho_users SET record = (SELECT record FROM sekisho_users WHERE id = 'frank') "
            "WHERE id = 'erin'", NULL, 0);
    assert_int_equal(sk_store_user_get(fx->a, "default", "erin", &v), -1);
    assert_int_equal(sk_store_user_get(fx->a, "default", "frank", &v), SK_STORE_OK);
    assert_int_equal(sk_store_user_delete(fx->a, "default", "erin"), SK_STORE_OK);

    memset(&ss, 0, sizeof ss);
    memset(ss.hash, 3, sizeof ss.hash);
    memcpy(h, ss.hash, sizeof h);
    assert_int_equal(sk_strlcpy(ss.user, sizeof ss.user, "frank"), 0);
    assert_int_equal(sk_strlcpy(ss.tenant, sizeof ss.tenant, "default"), 0);
    assert_int_equal(sk_store_session_put(fx->a, &ss), SK_STORE_OK);
    raw_sql("UPDATE sekisho_sessions SET role = 7", NULL, 0);
    assert_int_equal(sk_store_session_get(fx->b, h, &ss), -1);
    raw_sql("UPDATE sekisho_sessions SET role = 1, user_id = 'bad/id'", NULL, 0);
    assert_int_equal(sk_store_session_get(fx->b, h, &ss), -1);
    raw_sql("UPDATE sekisho_sessions SET user_id = 'frank'", NULL, 0);
    assert_int_equal(sk_store_session_get(fx->b, h, &ss), SK_STORE_OK);
    assert_int_equal(ss.role, SK_ROLE_ADMIN);
}

int main(void)
{
    const char *url = getenv("SK_TEST_PG_URL"), *pw = getenv("SK_TEST_PG_PASSWORD_FILE");
    char err[512];
    unsigned from = 0, to = 0;
    pg_ctl = getenv("SK_TEST_PG_CTL");
    if (url == NULL || pw == NULL || pg_ctl == NULL) {
        fprintf(stderr, "test_store_pg: needs SK_TEST_PG_URL, SK_TEST_PG_PASSWORD_FILE and SK_TEST_PG_CTL "
                        "(run it through tests/integration/store/store_pg.sh)\n");
        return 1;
    }
    sk_log_set_level(SK_LOG_ERR);
    sk_conf_defaults(&conf);
    if (sk_strlcpy(conf.store_backend, sizeof conf.store_backend, "postgresql") != 0 ||
        sk_strlcpy(conf.store_url, sizeof conf.store_url, url) != 0 ||
        sk_strlcpy(conf.store_password_file, sizeof conf.store_password_file, pw) != 0 ||
        sk_store_migrate_conf(&conf, &from, &to, err, sizeof err) != 0) {
        fprintf(stderr, "test_store_pg: cannot prepare the database: %s\n", err);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_two_nodes_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_two_nodes_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_change_notification, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_rows, setup, teardown),
        cmocka_unit_test(test_schema_versions),
        cmocka_unit_test(test_url_refusals),
        cmocka_unit_test_setup_teardown(test_frozen_server, setup, teardown),
        cmocka_unit_test_setup_teardown(test_outage, setup, teardown), /* last: restarts the server */
    };
    return cmocka_run_group_tests_name("postgresql backend", tests, NULL, NULL);
}
