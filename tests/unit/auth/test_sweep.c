/* Unit tests for sk_sweep_run: the dormancy schedule at its day boundaries,
 * exactly-once steps and mails, admins never deleted, mail failures. Mail goes
 * to a fake sendmail script that stores each message as a file. */
#define _GNU_SOURCE
#include <dirent.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "sk_auth.h"
#include "sk_sweep.h"

#define DAY INT64_C(86400)
static const int64_t T0 = INT64_C(1600000000);

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    return remove(p);
}

typedef struct fixture {
    char dir[256];
    char maildir[300];
    sk_store *s;
    sk_conf conf;
    unsigned events[8];
} fixture;

static void add(fixture *fx, const char *id, enum sk_role role, const char *email, int64_t created)
{
    sk_user u;
    assert_int_equal(sk_store_user_init(&u, "default", id), 0);
    u.role = role;
    u.created = created;
    assert_int_equal(sk_strlcpy(u.email, sizeof u.email, email), 0);
    assert_int_equal(sk_strlcpy(u.pw_hash, sizeof u.pw_hash, "$argon2id$placeholder"), 0);
    assert_int_equal(sk_store_user_put_new(fx->s, &u), SK_STORE_OK);
}

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    char script[400];
    assert_non_null(fx);
    const char *t = getenv("TMPDIR");
    assert_int_equal(sk_snprintf(fx->dir, sizeof fx->dir, "%s/sk-sweep-XXXXXX", t ? t : "/tmp"), 0);
    assert_non_null(mkdtemp(fx->dir));
    assert_int_equal(sk_snprintf(fx->maildir, sizeof fx->maildir, "%s/mail", fx->dir), 0);
    assert_int_equal(mkdir(fx->maildir, 0700), 0);
    assert_int_equal(sk_snprintf(script, sizeof script, "%s/sendmail", fx->dir), 0);
    FILE *f = fopen(script, "w");
    assert_non_null(f);
    /* records every message; "-t" must be passed */
    fprintf(f, "#!/bin/sh\n[ \"$1\" = -t ] || exit 3\nn=$(ls '%s' | wc -l)\ncat > '%s/msg.'$n\n",
            fx->maildir, fx->maildir);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(script, 0700), 0);
    sk_conf_defaults(&fx->conf);
    assert_int_equal(sk_snprintf(fx->conf.notify_command, sizeof fx->conf.notify_command, "%s -t", script), 0);
    assert_int_equal(sk_strlcpy(fx->conf.notify_operators, sizeof fx->conf.notify_operators,
                                "ops@example.com"), 0);
    assert_int_equal(sk_store_open_ex(fx->dir, 0, (size_t)16 << 20, &fx->s), SK_STORE_OK);
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

static void count_cb(const sk_sweep_event *ev, void *ctx)
{
    fixture *fx = ctx;
    assert_true((unsigned)ev->action < 8);
    fx->events[ev->action]++;
}

static sk_sweep_summary sweep(fixture *fx, int64_t now)
{
    sk_sweep_summary sum;
    memset(fx->events, 0, sizeof fx->events);
    assert_int_equal(sk_sweep_run(&fx->conf, fx->s, now, count_cb, fx, &sum), 0);
    assert_int_equal(fx->events[SK_SWEEP_NOTIFIED], sum.notified);
    assert_int_equal(fx->events[SK_SWEEP_LOCKED], sum.locked);
    assert_int_equal(fx->events[SK_SWEEP_DELETED], sum.deleted);
    assert_int_equal(fx->events[SK_SWEEP_MAILED], sum.mails_sent);
    assert_int_equal(fx->events[SK_SWEEP_SESSIONS], 1);
    return sum;
}

/* Number of recorded messages, and how many are addressed to `to`. */
static unsigned mails(fixture *fx, const char *to, unsigned *to_count)
{
    DIR *d = opendir(fx->maildir);
    unsigned n = 0, m = 0;
    char path[600], line[512], want[300];
    assert_non_null(d);
    assert_int_equal(sk_snprintf(want, sizeof want, "To: %s\n", to ? to : ""), 0);
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        n++;
        assert_int_equal(sk_snprintf(path, sizeof path, "%s/%s", fx->maildir, e->d_name), 0);
        FILE *f = fopen(path, "r");
        assert_non_null(f);
        while (fgets(line, sizeof line, f))
            if (to && strcmp(line, want) == 0)
                m++;
        fclose(f);
    }
    closedir(d);
    if (to_count)
        *to_count = m;
    return n;
}

static sk_user get(fixture *fx, const char *id)
{
    sk_user u;
    assert_int_equal(sk_store_user_get(fx->s, "default", id, &u), SK_STORE_OK);
    return u;
}

static int login_fn(sk_user *u, void *ctx)
{
    u->last_login = *(const int64_t *)ctx;
    return 0;
}

static void test_days(void **state)
{
    fixture *fx = *state;
    sk_sweep_summary s;
    unsigned n, k;
    int64_t t100 = T0 + 100 * DAY;

    add(fx, "gen", SK_ROLE_GENERAL, "gen@example.com", T0);
    add(fx, "adm", SK_ROLE_ADMIN, "adm@example.com", T0);
    add(fx, "noemail", SK_ROLE_GENERAL, "", T0);
    add(fx, "late", SK_ROLE_GENERAL, "late@example.com", T0);
    assert_int_equal(sk_store_user_update(fx->s, "default", "late", login_fn, &t100), SK_STORE_OK);

    /* day 179 (its last second): nothing */
    s = sweep(fx, T0 + 180 * DAY - 1);
    assert_int_equal(s.users_seen, 4);
    assert_int_equal(s.notified + s.locked + s.deleted, 0);
    assert_int_equal(mails(fx, NULL, NULL), 0);

    /* day 180: reminders to gen and adm, and to the operators for noemail */
    s = sweep(fx, T0 + 180 * DAY);
    assert_int_equal(s.notified, 3);
    assert_int_equal(s.mails_sent, 3);
    assert_int_equal(s.mail_failed, 0);
    n = mails(fx, "gen@example.com", &k);
    assert_int_equal(n, 3);
    assert_int_equal(k, 1);
    (void)mails(fx, "adm@example.com", &k);
    assert_int_equal(k, 1);
    (void)mails(fx, "ops@example.com", &k);
    assert_int_equal(k, 1);
    sk_user u = get(fx, "gen");
    assert_true(u.flags & SK_USER_F_DORMANT_NOTIFIED);
    assert_int_equal(u.dormant_notified_at, T0 + 180 * DAY);
    assert_false(u.flags & SK_USER_F_DORMANT_LOCKED);

    /* repeated sweeps: nothing happens twice */
    for (int64_t t = T0 + 180 * DAY; t < T0 + 210 * DAY; t += 5 * DAY) {
        s = sweep(fx, t);
        assert_int_equal(s.notified + s.locked + s.deleted + s.mails_sent, 0);
    }
    assert_int_equal(mails(fx, NULL, NULL), 3);

    /* a session of gen, alive at day 210 */
    sk_session ss;
    memset(&ss, 0, sizeof ss);
    memset(ss.hash, 7, sizeof ss.hash);
    assert_int_equal(sk_strlcpy(ss.user, sizeof ss.user, "gen"), 0);
    assert_int_equal(sk_strlcpy(ss.tenant, sizeof ss.tenant, "default"), 0);
    ss.created = ss.last_seen = T0 + 210 * DAY - 60;
    assert_int_equal(sk_store_session_put(fx->s, &ss), SK_STORE_OK);

    /* day 209 (last second): nothing; day 210: three locks */
    s = sweep(fx, T0 + 210 * DAY - 1);
    assert_int_equal(s.locked, 0);
    memset(fx->events, 0, sizeof fx->events);
    s = sweep(fx, T0 + 210 * DAY);
    assert_int_equal(s.locked, 3);
    assert_int_equal(s.notified, 0);
    /* lock notices: gen + ops, adm + ops, noemail: ops only */
    assert_int_equal(s.mails_sent, 5);
    assert_int_equal(mails(fx, NULL, NULL), 8);
    u = get(fx, "gen");
    assert_true(u.flags & SK_USER_F_DORMANT_LOCKED);
    assert_int_equal(u.dormant_locked_at, T0 + 210 * DAY);
    sk_session out;
    assert_int_equal(sk_store_session_get(fx->s, ss.hash, &out), SK_STORE_NOTFOUND);

    /* "late" (login at day 100) is reminded at day 280, not before */
    s = sweep(fx, T0 + 280 * DAY - 1);
    assert_int_equal(s.notified, 0);
    s = sweep(fx, T0 + 280 * DAY);
    assert_int_equal(s.notified, 1);
    assert_int_equal(mails(fx, "late@example.com", &k), 9);
    assert_int_equal(k, 1);

    /* day 299 (last second): nothing; day 300: general accounts deleted */
    s = sweep(fx, T0 + 300 * DAY - 1);
    assert_int_equal(s.deleted, 0);
    s = sweep(fx, T0 + 300 * DAY);
    assert_int_equal(s.deleted, 2);
    assert_int_equal(s.mails_sent, 2);
    assert_int_equal(mails(fx, "ops@example.com", &k), 11);
    assert_int_equal(k, 1 + 3 + 2);
    sk_user gone;
    assert_int_equal(sk_store_user_get(fx->s, "default", "gen", &gone), SK_STORE_NOTFOUND);
    assert_int_equal(sk_store_user_get(fx->s, "default", "noemail", &gone), SK_STORE_NOTFOUND);

    /* the admin stays locked forever, and nothing more is mailed about it;
     * "late" follows 100 days behind (locked at 310, deleted at 400) */
    unsigned deleted = 0, locked = 0;
    for (int64_t t = T0 + 300 * DAY; t < T0 + 3000 * DAY; t += 10 * DAY) {
        s = sweep(fx, t);
        deleted += s.deleted;
        locked += s.locked;
    }
    assert_int_equal(locked, 1);
    assert_int_equal(deleted, 1);
    assert_int_equal(sk_store_user_get(fx->s, "default", "late", &gone), SK_STORE_NOTFOUND);
    u = get(fx, "adm");
    assert_true(u.flags & SK_USER_F_DORMANT_LOCKED);
    (void)mails(fx, "adm@example.com", &k);
    assert_int_equal(k, 2); /* reminder + lock notice */
}

static void test_mail_failure_is_reported_once(void **state)
{
    fixture *fx = *state;
    sk_sweep_summary s;

    add(fx, "gen", SK_ROLE_GENERAL, "gen@example.com", T0);
    assert_int_equal(sk_strlcpy(fx->conf.notify_command, sizeof fx->conf.notify_command, "exit 1"), 0);
    s = sweep(fx, T0 + 180 * DAY);
    assert_int_equal(s.notified, 1);
    assert_int_equal(s.mails_sent, 0);
    assert_int_equal(s.mail_failed, 1);
    assert_int_equal(fx->events[SK_SWEEP_MAIL_FAILED], 1);
    /* at-most-once: the step is recorded and not repeated */
    s = sweep(fx, T0 + 181 * DAY);
    assert_int_equal(s.notified + s.mail_failed, 0);

    /* no operators configured and no user address: a failure, not a crash */
    add(fx, "noemail", SK_ROLE_GENERAL, "", T0 + DAY);
    fx->conf.notify_operators[0] = '\0';
    s = sweep(fx, T0 + 181 * DAY);
    assert_int_equal(s.notified, 1);
    assert_int_equal(s.mail_failed, 1);
}

static int unlock_fn(sk_user *u, void *ctx)
{
    u->flags &= ~(SK_USER_F_DORMANT_LOCKED | SK_USER_F_DORMANT_NOTIFIED);
    u->dormant_locked_at = 0;
    u->dormant_notified_at = 0;
    u->unlocked_at = *(const int64_t *)ctx;
    return 0;
}

static void test_unlock_restarts_clock(void **state)
{
    fixture *fx = *state;
    sk_sweep_summary s;
    add(fx, "gen", SK_ROLE_GENERAL, "gen@example.com", T0);
    s = sweep(fx, T0 + 180 * DAY);
    assert_int_equal(s.notified, 1);
    s = sweep(fx, T0 + 210 * DAY);
    assert_int_equal(s.locked, 1);
    int64_t t = T0 + 250 * DAY;
    assert_int_equal(sk_store_user_update(fx->s, "default", "gen", unlock_fn, &t), SK_STORE_OK);
    /* no deletion at day 300: the clock restarted at the unlock */
    s = sweep(fx, T0 + 300 * DAY);
    assert_int_equal(s.deleted + s.locked + s.notified, 0);
    s = sweep(fx, t + 180 * DAY);
    assert_int_equal(s.notified, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_days, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mail_failure_is_reported_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unlock_restarts_clock, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
