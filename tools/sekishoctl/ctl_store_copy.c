/*
 * sekishoctl store copy --to postgresql [--with-sessions]
 *
 * Moves a single-node installation onto the shared database: every user of the
 * LMDB store in <[state] dir>/db (password hashes, sealed TOTP secrets, lockout and
 * dormancy state, allowlists, as they are), the shared CSRF and TLS ticket keys
 * (so forms and tickets issued before keep working) and, with --with-sessions,
 * the open sessions (nobody is logged out by the move). The target is the
 * database [store] url names, whatever [store] backend says, so the copy can run
 * before the configuration is switched; its schema must be current (`store
 * migrate`). The target must hold no user yet: a copy never merges into, or
 * overwrites, accounts that already live there.
 *
 * Then it verifies: every user and session is read back from the target and
 * compared, record by record, with the source. Exit 0 only when all of it
 * matched; the gateway should be stopped meanwhile (a login during the copy would
 * be lost, and the verification would say so).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "sk_admin_audit.h"
#include "sk_store.h"

static const char usage_copy[] = "store copy --to postgresql [--with-sessions]";

void ctl_store_copy_usage_to(FILE *f)
{
    fprintf(f, "  %s\n", usage_copy);
}

/* The keys the gateway shares through the store (authd_keys.c); the burst history
 * and chore claims are not worth moving. */
static const char *const copied_values[] = { "http.csrf", "tls.tickets" };

struct copy {
    sk_store *dst;
    unsigned users, sessions, mismatched, failed;
};

static int count_user(const sk_user *u, void *ctx)
{
    (void)u;
    (*(unsigned *)ctx)++;
    return 0;
}

static int copy_user(const sk_user *u, void *ctx)
{
    struct copy *c = ctx;
    int rc = sk_store_user_put_new(c->dst, u);
    if (rc != SK_STORE_OK) {
        ctl_err("cannot copy user %s/%s (%s)", u->tenant, u->id,
                rc == SK_STORE_EXISTS ? "a user of that name exists in the target" : "the target refused it");
        c->failed++;
        return 1;
    }
    c->users++;
    return 0;
}

static int copy_session(const sk_session *s, void *ctx)
{
    struct copy *c = ctx;
    if (sk_store_session_put(c->dst, s) != SK_STORE_OK) {
        ctl_err("cannot copy a session of %s/%s", s->tenant, s->user);
        c->failed++;
        return 1;
    }
    c->sessions++;
    return 0;
}

/* Same record, byte for byte, through the versioned codec (which covers every
 * field the store keeps). */
static int same_user(const sk_user *a, const sk_user *b)
{
    static uint8_t ea[SK_USER_RECORD_MAX], eb[SK_USER_RECORD_MAX];
    size_t la = 0, lb = 0;
    int same = sk_store_user_encode(a, ea, sizeof ea, &la) == 0 && sk_store_user_encode(b, eb, sizeof eb, &lb) == 0 &&
               la == lb && memcmp(ea, eb, la) == 0;
    sk_wipe(ea, sizeof ea);
    sk_wipe(eb, sizeof eb);
    return same;
}

static int verify_user(const sk_user *u, void *ctx)
{
    struct copy *c = ctx;
    sk_user back;
    if (sk_store_user_get(c->dst, u->tenant, u->id, &back) != SK_STORE_OK || !same_user(u, &back)) {
        ctl_err("verification: user %s/%s differs in the target", u->tenant, u->id);
        c->mismatched++;
    }
    sk_wipe(&back, sizeof back);
    return 0;
}

static int verify_session(const sk_session *s, void *ctx)
{
    struct copy *c = ctx;
    sk_session back;
    uint8_t ea[SK_SESSION_RECORD_MAX], eb[SK_SESSION_RECORD_MAX];
    size_t la = 0, lb = 0;
    if (sk_store_session_get(c->dst, s->hash, &back) != SK_STORE_OK ||
        sk_store_session_encode(s, ea, sizeof ea, &la) != 0 || sk_store_session_encode(&back, eb, sizeof eb, &lb) != 0 ||
        la != lb || memcmp(ea, eb, la) != 0) {
        ctl_err("verification: a session of %s/%s differs in the target", s->tenant, s->user);
        c->mismatched++;
    }
    sk_wipe(&back, sizeof back);
    sk_wipe(ea, sizeof ea);
    sk_wipe(eb, sizeof eb);
    return 0;
}

struct value_set {
    const uint8_t *v;
    size_t len;
};

static int set_value(uint8_t *val, size_t *len, int exists, void *ctx)
{
    const struct value_set *s = ctx;
    (void)exists;
    memcpy(val, s->v, s->len);
    *len = s->len;
    return 0;
}

/* 0, or -1 after saying why. Values the source does not have are skipped. */
static int copy_values(sk_store *src, sk_store *dst, unsigned *copied)
{
    uint8_t v[SK_STORE_VALUE_MAX], back[SK_STORE_VALUE_MAX];
    int ret = -1;
    for (size_t i = 0; i < SK_ARRAY_LEN(copied_values); i++) {
        size_t len = 0, blen = 0;
        struct value_set set = { v, 0 };
        int rc = sk_store_value_get(src, copied_values[i], v, sizeof v, &len);
        if (rc == SK_STORE_NOTFOUND)
            continue;
        set.len = len;
        if (rc != SK_STORE_OK || sk_store_value_update(dst, copied_values[i], set_value, &set) != SK_STORE_OK ||
            sk_store_value_get(dst, copied_values[i], back, sizeof back, &blen) != SK_STORE_OK || blen != len ||
            memcmp(back, v, len) != 0) {
            ctl_err("cannot copy the shared %s", copied_values[i]);
            goto out;
        }
        (*copied)++;
    }
    ret = 0;
out:
    sk_wipe(v, sizeof v);
    sk_wipe(back, sizeof back);
    return ret;
}

/* Open the LMDB source (read-only) and the PostgreSQL target. CTL_OK or CTL_REFUSED. */
static int open_both(const sk_conf *conf, sk_store **src, sk_store **dst)
{
    sk_conf *pg = NULL;
    char err[512];
    int rc = sk_store_open(conf->state_dir, 1, src), ret = CTL_REFUSED;

    if (rc == SK_STORE_NOTFOUND) {
        ctl_err("there is no LMDB store in %s/db: nothing to copy", conf->state_dir);
        return CTL_REFUSED;
    }
    if (rc != SK_STORE_OK) {
        ctl_err("cannot open the LMDB store in %s/db", conf->state_dir);
        return CTL_REFUSED;
    }
    pg = malloc(sizeof *pg);
    if (pg == NULL)
        goto out;
    *pg = *conf;
    if (sk_strlcpy(pg->store_backend, sizeof pg->store_backend, "postgresql") != 0)
        goto out;
    if (sk_store_open_conf(pg, 0, dst, err, sizeof err) != SK_STORE_OK) {
        ctl_err("cannot open the PostgreSQL store: %s", err);
        goto out;
    }
    ret = CTL_OK;
out:
    free(pg);
    return ret;
}

static int parse_args(int argc, char **argv, int *with_sessions)
{
    static const struct option opts[] = { { "to", required_argument, NULL, 't' },
                                           { "with-sessions", no_argument, NULL, 's' },
                                           { NULL, 0, NULL, 0 } };
    const char *to = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 't')
            to = optarg;
        else if (c == 's')
            *with_sessions = 1;
        else
            return CTL_USAGE;
    }
    if (optind != argc || to == NULL) {
        fprintf(stderr, "usage: sekishoctl -c FILE %s\n", usage_copy);
        return CTL_USAGE;
    }
    if (strcmp(to, "postgresql") != 0) {
        ctl_err("--to %s: the only target is postgresql (from the LMDB store of [state] dir)", to);
        return CTL_REFUSED;
    }
    return CTL_OK;
}

int ctl_store_copy_main(const sk_conf *conf, int argc, char **argv)
{
    struct copy c = { NULL, 0, 0, 0, 0 };
    sk_store *src = NULL;
    sk_adm_audit *log = NULL;
    unsigned existing = 0, values = 0;
    int with_sessions = 0, ret;
    char nu[16], ns[16];

    ret = parse_args(argc, argv, &with_sessions);
    if (ret != CTL_OK)
        return ret;
    if (conf->store_url[0] == '\0') {
        ctl_err("[store] url is not set: it names the PostgreSQL database to copy to");
        return CTL_REFUSED;
    }
    ret = ctl_log_open(conf, &log);
    if (ret != CTL_OK)
        return ret;
    ret = open_both(conf, &src, &c.dst);
    if (ret != CTL_OK)
        goto out;
    ret = CTL_REFUSED;
    if (sk_store_user_list(c.dst, NULL, count_user, &existing) != 0) {
        ctl_err("cannot read the target's users");
        goto out;
    }
    if (existing > 0) {
        ctl_err("the PostgreSQL store already holds %u users: a copy never merges into an existing store", existing);
        goto out;
    }
    if (sk_store_user_list(src, NULL, copy_user, &c) != 0 || c.failed > 0 ||
        (with_sessions && (sk_store_session_list(src, copy_session, &c) != 0 || c.failed > 0)) ||
        copy_values(src, c.dst, &values) != 0)
        goto logged;
    if (sk_store_user_list(src, NULL, verify_user, &c) != 0 ||
        (with_sessions && sk_store_session_list(src, verify_session, &c) != 0) || c.mismatched > 0) {
        ctl_err("verification failed (%u records differ): do not switch [store] backend yet", c.mismatched);
        goto logged;
    }
    printf("copied %u users, %u sessions and %u shared keys to PostgreSQL; every record verified\n", c.users,
           c.sessions, values);
    ret = CTL_OK;
logged:
    if (sk_snprintf(nu, sizeof nu, "%u", c.users) != 0 || sk_snprintf(ns, sizeof ns, "%u", c.sessions) != 0)
        nu[0] = ns[0] = '\0';
    {
        sk_audit_kv kv[] = { { "result", ret == CTL_OK ? "ok" : "failed" }, { "users", nu }, { "sessions", ns },
                             { "to", "postgresql" } };
        if (ctl_log_change(log, "store.copy", NULL, kv, SK_ARRAY_LEN(kv)) != CTL_OK)
            ret = CTL_REFUSED;
    }
out:
    sk_store_close(src);
    sk_store_close(c.dst);
    ctl_log_close(log);
    return ret;
}
