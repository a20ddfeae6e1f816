/*
 * sekishoctl user add|passwd|show|list|delete|lock|unlock|allow-ip|deny-ip|totp
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "sk_admin_audit.h"
#include "sk_auth.h"
#include "sk_store.h"
#include "sk_policy.h"

/* Read buffer for a new password: one byte more than we accept, so that an
 * over-long password is detected instead of cut. */
#define PW_BUF (SK_AUTH_PASSWORD_MAX + 2)

enum {
    O_TENANT = 1u << 0,
    O_ROLE = 1u << 1,
    O_EMAIL = 1u << 2,
    O_PWFILE = 1u << 3,
    O_JSON = 1u << 4,
    O_MUSTCHANGE = 1u << 5,
    O_NOFORCE = 1u << 6,
    O_INVITE = 1u << 7,
    O_LIFETIME = 1u << 8,
};

#define INVITE_LIFETIME_DEFAULT (72 * 3600)

struct uopts {
    const char *id;
    const char *tenant;
    int tenant_given;
    const char *role;
    const char *email;
    const char *pwfile;
    int json;
    int must_change;
    int no_force;
    const char *arg2;   /* second positional argument (CIDR) */
    int invite;         /* add: no password, mail an activation link instead */
    int64_t lifetime;   /* invite: how long the link works */
};

struct ucmd {
    const char *name;
    int (*fn)(const sk_conf *conf, const struct uopts *o);
    unsigned allowed;
    int want_id;        /* number of positional arguments: 0, 1 (ID) or 2 (ID ARG) */
    const char *usage;
};

/* ---- shared helpers ----------------------------------------------------- */

int ctl_store_open(const sk_conf *conf, int readonly, sk_store **s, const char *what)
{
    char err[512];
    int rc = sk_store_open_conf(conf, readonly, s, err, sizeof err);
    if (rc != SK_STORE_OK && rc != SK_STORE_NOTFOUND) {
        ctl_err("cannot open the %s database: %s", what, err);
        return -1;
    }
    return rc;
}

static int open_store(const sk_conf *conf, int readonly, sk_store **s)
{
    int rc = ctl_store_open(conf, readonly, s, "user");
    if (rc == SK_STORE_OK)
        return CTL_OK;
    if (rc == SK_STORE_NOTFOUND)
        return CTL_NOTFOUND; /* read-only and no database yet (SK_STORE_NOTFOUND == CTL_REFUSED) */
    return CTL_REFUSED;
}

static int check_identity(const struct uopts *o)
{
    if (!sk_store_valid_tenant(o->tenant)) {
        ctl_err("invalid tenant '%s' (1-%d characters a-z 0-9 -)", o->tenant, SK_TENANT_MAX);
        return CTL_REFUSED;
    }
    if (o->id && !sk_store_valid_id(o->id)) {
        ctl_err("invalid user ID '%s' (1-%d characters A-Z a-z 0-9 . _ @ -, not starting "
                "with . or -)", o->id, SK_USER_ID_MAX);
        return CTL_REFUSED;
    }
    return CTL_OK;
}

/* The admin.change entry of a user command: details.user, details.result,
 * then extra (at most 8 pairs). */
static int log_user(sk_adm_audit *log, const char *command, const struct uopts *o,
                    const char *result, const sk_audit_kv *extra, size_t n)
{
    sk_audit_kv kv[10] = { { "user", o->id }, { "result", result } };
    size_t k = 2;
    for (size_t i = 0; i < n && k < SK_ARRAY_LEN(kv); i++)
        kv[k++] = extra[i];
    return ctl_log_change(log, command, o->tenant, kv, k);
}

/* The policy module decides (length in code points, character classes,
 * blocklist, user ID), with the rules of the configuration: the same rules
 * the password page applies. Returns 0 when acceptable, else prints why. */
static int password_acceptable(const sk_conf *conf, const char *id, const char *pw, size_t len)
{
    sk_policy_config pc;
    sk_policy_defaults(&pc);
    pc.password_min_length = conf->password_min_length;
    pc.password_max_length = conf->password_max_length;
    pc.password_require_upper = conf->password_require_upper;
    pc.password_require_lower = conf->password_require_lower;
    pc.password_require_digit = conf->password_require_digit;
    sk_policy_pw_result r = sk_policy_password_check(&pc, pw, len, id, strlen(id));
    if (r != SK_POLICY_PW_OK) {
        ctl_err("password refused: %s", sk_policy_password_message(r, SK_POLICY_LANG_EN));
        return -1;
    }
    if (len > SK_AUTH_PASSWORD_MAX) {
        ctl_err("password refused: longer than %d bytes", SK_AUTH_PASSWORD_MAX);
        return -1;
    }
    return 0;
}

/* Read a new password from pwfile, or twice from the terminal. */
static int read_new_password(const sk_conf *conf, const char *id, const char *pwfile, char *pw,
                             size_t *len)
{
    char again[PW_BUF];
    size_t len2 = 0;
    int ret = CTL_REFUSED;

    *len = 0;
    if (pwfile) {
        if (sk_read_secret_file(pwfile, pw, PW_BUF, len) != 0) {
            ctl_err("cannot read a password from %s (missing, not a regular file, or longer "
                    "than %d bytes)", pwfile, SK_AUTH_PASSWORD_MAX);
            goto out;
        }
    } else {
        if (!isatty(STDIN_FILENO)) {
            ctl_err("no --password-file given and stdin is not a terminal");
            goto out;
        }
        if (sk_read_secret_tty("New password: ", pw, PW_BUF, len) != 0 ||
            sk_read_secret_tty("Repeat password: ", again, sizeof again, &len2) != 0) {
            ctl_err("cannot read the password from the terminal");
            goto out;
        }
        if (*len != len2 || !sk_secret_equal(pw, again, *len)) {
            ctl_err("the two passwords differ");
            goto out;
        }
    }
    if (password_acceptable(conf, id, pw, *len) != 0)
        goto out;
    ret = CTL_OK;
out:
    sk_wipe(again, sizeof again);
    if (ret != CTL_OK) {
        sk_wipe(pw, PW_BUF);
        *len = 0;
    }
    return ret;
}

/* Read and hash a new password into out (SK_PWHASH_MAX + 1 bytes). */
static int new_password_hash(const sk_conf *conf, const char *id, const char *pwfile, char *out)
{
    char pw[PW_BUF];
    size_t len = 0;
    int ret = read_new_password(conf, id, pwfile, pw, &len);
    if (ret != CTL_OK)
        goto out;
    sk_auth_params p = { conf->argon2_memory_kib, conf->argon2_iterations,
                         conf->argon2_parallelism };
    if (sk_auth_hash_password(&p, pw, len, out, SK_PWHASH_MAX + 1) != 0) {
        ctl_err("hashing the password failed");
        ret = CTL_REFUSED;
    }
out:
    sk_wipe(pw, sizeof pw);
    return ret;
}

static void status_str(const sk_user *u, int64_t now, char *out, size_t cap)
{
    char t[32];
    const char *s = "active";
    if (u->flags & SK_USER_F_OPERATOR_LOCKED)
        s = "operator-locked";
    else if (u->flags & SK_USER_F_DORMANT_LOCKED)
        s = "dormant-locked";
    else if (u->locked_until != 0 && now < u->locked_until) {
        ctl_time_str(u->locked_until, t, sizeof t);
        if (sk_snprintf(out, cap, "locked until %s", t) == 0)
            return;
        s = "locked";
    }
    if (sk_strlcpy(out, cap, s) != 0 && cap > 0)
        out[0] = '\0';
}

/* ---- JSON ---------------------------------------------------------------- */

static int jset(json_t *o, const char *k, json_t *v)
{
    return v ? json_object_set_new(o, k, v) : -1;
}

static json_t *jtime(int64_t t)
{
    char s[32];
    if (t == 0)
        return json_null();
    ctl_time_str(t, s, sizeof s);
    return json_string(s);
}

static json_t *user_json(const sk_user *u, int64_t now)
{
    char st[64];
    int bad = 0;
    json_t *o = json_object(), *allow = json_array();
    if (!o || !allow) {
        json_decref(o);
        json_decref(allow);
        return NULL;
    }
    status_str(u, now, st, sizeof st);
    for (uint32_t i = 0; i < u->allow_count; i++)
        bad |= json_array_append_new(allow, json_string(u->allow[i]));
    bad |= jset(o, "id", json_string(u->id));
    bad |= jset(o, "tenant", json_string(u->tenant));
    bad |= jset(o, "role", json_string(sk_store_role_name(u->role)));
    bad |= jset(o, "email", json_string(u->email));
    bad |= jset(o, "created", jtime(u->created));
    bad |= jset(o, "last_login", jtime(u->last_login));
    bad |= jset(o, "password_changed", jtime(u->password_changed));
    bad |= jset(o, "status", json_string(st));
    bad |= jset(o, "locked_until", jtime(now < u->locked_until ? u->locked_until : 0));
    bad |= jset(o, "failures", json_integer(u->failures));
    bad |= jset(o, "must_change_password", json_boolean(u->flags & SK_USER_F_MUST_CHANGE_PW));
    bad |= jset(o, "totp_enabled", json_boolean(u->flags & SK_USER_F_TOTP_ENABLED));
    bad |= jset(o, "totp_pending", json_boolean(u->totp_pending_len > 0));
    bad |= jset(o, "dormant_notified", jtime((u->flags & SK_USER_F_DORMANT_NOTIFIED)
                                                 ? u->dormant_notified_at : 0));
    bad |= jset(o, "dormant_locked", jtime((u->flags & SK_USER_F_DORMANT_LOCKED)
                                               ? u->dormant_locked_at : 0));
    bad |= jset(o, "unlocked_at", jtime(u->unlocked_at));
    bad |= jset(o, "allowlist", allow);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static int print_json(json_t *v)
{
    int rc = json_dumpf(v, stdout, JSON_INDENT(2)) == 0 && fputc('\n', stdout) != EOF ? 0 : -1;
    json_decref(v);
    if (rc != 0)
        ctl_err("cannot write JSON output");
    return rc;
}

/* ---- subcommands --------------------------------------------------------- */

static int cmd_add(const sk_conf *conf, const struct uopts *o)
{
    sk_store *s = NULL;
    sk_adm_audit *log = NULL;
    sk_user u;
    enum sk_role role = SK_ROLE_GENERAL;
    int rc, ret = CTL_REFUSED;

    memset(&u, 0, sizeof u);
    if (o->role && sk_store_role_parse(o->role, &role) != 0) {
        ctl_err("invalid role '%s' (admin or general)", o->role);
        goto out;
    }
    if (o->email && ctl_check_email(conf, o->email) != CTL_OK)
        goto out;
    if (o->invite && o->email == NULL) {
        ctl_err("--invite needs --email: the activation link is mailed");
        goto out;
    }
    if (sk_store_user_init(&u, o->tenant, o->id) != 0)
        goto out;
    if (ctl_log_open(conf, &log) != CTL_OK)
        goto out;
    if ((rc = open_store(conf, 0, &s)) != CTL_OK)
        goto out;
    /* Refuse a duplicate before asking for a password; put_new re-checks. */
    sk_user existing;
    rc = sk_store_user_get(s, o->tenant, o->id, &existing);
    sk_wipe(&existing, sizeof existing);
    if (rc == SK_STORE_OK) {
        ctl_err("user '%s' (or an ID differing only in case) already exists in tenant '%s'", o->id, o->tenant);
        goto out;
    }
    if (rc != SK_STORE_NOTFOUND) {
        ctl_err("cannot read the user database");
        goto out;
    }
    /* Invited accounts have no password until the person chooses one. */
    if (!o->invite && new_password_hash(conf, o->id, o->pwfile, u.pw_hash) != CTL_OK)
        goto out;
    u.role = role;
    if (o->email && sk_strlcpy(u.email, sizeof u.email, o->email) != 0)
        goto out;
    u.created = ctl_now();
    u.password_changed = u.created;
    if (o->must_change)
        u.flags |= SK_USER_F_MUST_CHANGE_PW;
    rc = sk_store_user_put_new(s, &u);
    if (rc == SK_STORE_EXISTS) {
        ctl_err("user '%s' (or an ID differing only in case) already exists in tenant '%s'", o->id, o->tenant);
        goto out;
    }
    if (rc != SK_STORE_OK) {
        ctl_err("cannot store user '%s'", o->id);
        goto out;
    }
    {
        sk_audit_kv kv[] = { { "role", sk_store_role_name(u.role) },
                             { "email", o->email },
                             { "must_change_password", o->must_change ? "yes" : "no" } };
        if (log_user(log, "user.add", o, "ok", kv, SK_ARRAY_LEN(kv)) != CTL_OK)
            goto out;
    }
    printf("user %s added (tenant %s, role %s%s)\n", u.id, u.tenant, sk_store_role_name(u.role),
           o->invite ? ", no password until the invitation is used" : "");
    ret = CTL_OK;
out:
    sk_wipe(&u, sizeof u);
    sk_store_close(s);
    ctl_log_close(log);
    /* The store is closed first: one process opens an LMDB environment once. */
    if (ret == CTL_OK && o->invite)
        ret = ctl_user_invite(conf, o->id, o->tenant, o->lifetime);
    return ret;
}

struct upd {
    int64_t now;
    const char *hash;
    int must_change;
    int changed;
};

static int passwd_fn(sk_user *u, void *arg)
{
    struct upd *c = arg;
    if (sk_strlcpy(u->pw_hash, sizeof u->pw_hash, c->hash) != 0)
        return 1;
    u->password_changed = c->now;
    if (c->must_change)
        u->flags |= SK_USER_F_MUST_CHANGE_PW;
    else
        u->flags &= ~SK_USER_F_MUST_CHANGE_PW;
    return 0;
}

static int lock_fn(sk_user *u, void *arg)
{
    struct upd *c = arg;
    if (u->flags & SK_USER_F_OPERATOR_LOCKED)
        return 1; /* already locked: nothing to write */
    u->flags |= SK_USER_F_OPERATOR_LOCKED;
    c->changed = 1;
    return 0;
}

/* Only an operator unlocks: lifts operator, dormancy and failure locks, and
 * restarts the dormancy clock so the sweep does not lock the account again at
 * once. */
static int unlock_fn(sk_user *u, void *arg)
{
    struct upd *c = arg;
    int locked = (u->flags & (SK_USER_F_OPERATOR_LOCKED | SK_USER_F_DORMANT_LOCKED)) ||
                 u->locked_until != 0 || u->failures != 0;
    if (!locked)
        return 1;
    u->flags &= ~(SK_USER_F_OPERATOR_LOCKED | SK_USER_F_DORMANT_LOCKED | SK_USER_F_DORMANT_NOTIFIED);
    u->failures = 0;
    u->locked_until = 0;
    u->dormant_locked_at = 0;
    u->dormant_notified_at = 0;
    u->unlocked_at = c->now;
    c->changed = 1;
    return 0;
}

static int report_update(int rc, const struct uopts *o)
{
    if (rc == SK_STORE_NOTFOUND || o->tenant == NULL) {
        if (o->tenant == NULL)
            ctl_err("no user '%s' in any tenant", o->id);
        else
            ctl_err("no user '%s' in tenant '%s'", o->id, o->tenant);
        return CTL_REFUSED;
    }
    if (rc != SK_STORE_OK && rc != SK_STORE_VETO) {
        ctl_err("cannot update user '%s'", o->id);
        return CTL_REFUSED;
    }
    return CTL_OK;
}

/* End the user's sessions; the count (or "error") goes to count for the
 * audit entry, *n to the caller (-1 on failure). */
static void end_sessions(sk_store *s, const struct uopts *o, int *n, char *count, size_t cap)
{
    *n = sk_store_session_delete_user(s, o->tenant, o->id);
    if (*n < 0 ? sk_strlcpy(count, cap, "error") != 0
               : sk_snprintf(count, cap, "%d", *n) != 0)
        count[0] = '\0';
}

/* Report what end_sessions did (after the audit entry is written). */
static int report_sessions(int n, const struct uopts *o)
{
    if (n < 0) {
        ctl_err("cannot end the sessions of '%s'", o->id);
        return CTL_REFUSED;
    }
    if (n > 0)
        printf("ended %d session(s) of %s\n", n, o->id);
    return CTL_OK;
}

static int cmd_passwd(const sk_conf *conf, const struct uopts *o)
{
    sk_store *s = NULL;
    sk_adm_audit *log = NULL;
    sk_user u;
    char hash[SK_PWHASH_MAX + 1] = "", count[16];
    int rc, n, ret = CTL_REFUSED;

    if (ctl_log_open(conf, &log) != CTL_OK)
        goto out;
    if (open_store(conf, 0, &s) != CTL_OK)
        goto out;
    rc = sk_store_user_get(s, o->tenant, o->id, &u);
    sk_wipe(&u, sizeof u);
    if (rc != SK_STORE_OK) {
        ret = report_update(rc, o);
        if (ret == CTL_OK)
            ret = CTL_REFUSED;
        goto out;
    }
    if (new_password_hash(conf, o->id, o->pwfile, hash) != CTL_OK)
        goto out;
    /* An operator-set password is known to the operator: the user must
     * replace it at the next login, unless explicitly told otherwise. */
    struct upd c = { .now = ctl_now(), .hash = hash, .must_change = !o->no_force };
    rc = sk_store_user_update(s, o->tenant, o->id, passwd_fn, &c);
    if (rc == SK_STORE_VETO)
        rc = -1;
    if ((ret = report_update(rc, o)) != CTL_OK)
        goto out;
    sk_wipe(hash, sizeof hash);
    /* Sessions opened with the old password end with it. */
    end_sessions(s, o, &n, count, sizeof count);
    {
        sk_audit_kv kv[] = { { "must_change_password", c.must_change ? "yes" : "no" },
                             { "sessions_ended", count } };
        if ((ret = log_user(log, "user.passwd", o, "ok", kv, SK_ARRAY_LEN(kv))) != CTL_OK)
            goto out;
    }
    printf("password of %s (tenant %s) changed%s\n", o->id, o->tenant,
           c.must_change ? "; it must be changed at the next login" : "");
    ret = report_sessions(n, o);
out:
    sk_wipe(hash, sizeof hash);
    sk_store_close(s);
    ctl_log_close(log);
    return ret;
}

static int cmd_lock(const sk_conf *conf, const struct uopts *o, int lock)
{
    sk_store *s = NULL;
    sk_adm_audit *log = NULL;
    const char *command = lock ? "user.lock" : "user.unlock";
    char count[16] = "0";
    int rc, n = 0, ret = CTL_REFUSED;
    struct upd c = { .now = ctl_now() };

    if (ctl_log_open(conf, &log) != CTL_OK)
        goto out;
    if (open_store(conf, 0, &s) != CTL_OK)
        goto out;
    rc = o->tenant == NULL ? SK_STORE_NOTFOUND
                           : sk_store_user_update(s, o->tenant, o->id, lock ? lock_fn : unlock_fn, &c);
    if (rc == SK_STORE_NOTFOUND) {
        /* Nothing changed, but an operator trying to (un)lock an account that
         * is not there is worth a line for the auditors. */
        sk_audit_kv kv[] = { { "reason", "no such user" } };
        if (log_user(log, command, o, "refused", kv, SK_ARRAY_LEN(kv)) != CTL_OK)
            goto out;
    }
    if ((ret = report_update(rc, o)) != CTL_OK)
        goto out;
    if (lock)
        end_sessions(s, o, &n, count, sizeof count);
    {
        sk_audit_kv kv[] = { { "sessions_ended", lock ? count : NULL } };
        if ((ret = log_user(log, command, o, c.changed ? "ok" : "unchanged", kv,
                            SK_ARRAY_LEN(kv))) != CTL_OK)
            goto out;
    }
    if (lock) {
        printf(c.changed ? "user %s (tenant %s) locked\n" : "user %s (tenant %s) was already locked\n",
               o->id, o->tenant);
        ret = report_sessions(n, o);
    } else {
        printf(c.changed ? "user %s (tenant %s) unlocked\n" : "user %s (tenant %s) was not locked\n",
               o->id, o->tenant);
    }
out:
    sk_store_close(s);
    ctl_log_close(log);
    return ret;
}

static int cmd_lock_on(const sk_conf *conf, const struct uopts *o)
{
    return cmd_lock(conf, o, 1);
}

static int cmd_unlock(const sk_conf *conf, const struct uopts *o)
{
    return cmd_lock(conf, o, 0);
}

static int cmd_delete(const sk_conf *conf, const struct uopts *o)
{
    sk_store *s = NULL;
    sk_adm_audit *log = NULL;
    int rc, ret = CTL_REFUSED;

    if (ctl_log_open(conf, &log) != CTL_OK)
        goto out;
    if (open_store(conf, 0, &s) != CTL_OK)
        goto out;
    rc = sk_store_user_delete(s, o->tenant, o->id);
    if (rc == SK_STORE_NOTFOUND) {
        ctl_err("no user '%s' in tenant '%s'", o->id, o->tenant);
        goto out;
    }
    if (rc != SK_STORE_OK) {
        ctl_err("cannot delete user '%s'", o->id);
        goto out;
    }
    if (log_user(log, "user.delete", o, "ok", NULL, 0) != CTL_OK)
        goto out;
    printf("user %s deleted (tenant %s); its sessions ended\n", o->id, o->tenant);
    ret = CTL_OK;
out:
    sk_store_close(s);
    ctl_log_close(log);
    return ret;
}

static void print_user_text(const sk_user *u, int64_t now)
{
    char created[32], last[32], changed[32], st[64];
    ctl_time_str(u->created, created, sizeof created);
    ctl_time_str(u->last_login, last, sizeof last);
    ctl_time_str(u->password_changed, changed, sizeof changed);
    status_str(u, now, st, sizeof st);
    printf("id:               %s\n", u->id);
    printf("tenant:           %s\n", u->tenant);
    printf("role:             %s\n", sk_store_role_name(u->role));
    printf("email:            %s\n", u->email[0] ? u->email : "-");
    printf("created:          %s\n", created);
    printf("last login:       %s\n", last);
    printf("password changed: %s\n", changed);
    printf("status:           %s\n", st);
    printf("failures:         %u\n", u->failures);
    printf("must change pw:   %s\n", (u->flags & SK_USER_F_MUST_CHANGE_PW) ? "yes" : "no");
    printf("totp:             %s%s\n", (u->flags & SK_USER_F_TOTP_ENABLED) ? "enabled" : "disabled",
           u->totp_pending_len > 0 ? " (enrolment pending)" : "");
    if (u->flags & SK_USER_F_DORMANT_NOTIFIED) {
        ctl_time_str(u->dormant_notified_at, changed, sizeof changed);
        printf("dormancy notice:  %s\n", changed);
    }
    printf("allowlist:        ");
    if (u->allow_count == 0)
        printf("-");
    for (uint32_t i = 0; i < u->allow_count; i++)
        printf("%s%s", i ? ", " : "", u->allow[i]);
    printf("\n");
}

static int cmd_show(const sk_conf *conf, const struct uopts *o)
{
    sk_store *s = NULL;
    sk_user u;
    int rc, ret = CTL_REFUSED;

    memset(&u, 0, sizeof u);
    rc = open_store(conf, 1, &s);
    if (rc == CTL_NOTFOUND) {
        ctl_err("no user '%s' in tenant '%s'", o->id, o->tenant);
        goto out;
    }
    if (rc != CTL_OK)
        goto out;
    rc = sk_store_user_get(s, o->tenant, o->id, &u);
    if (rc == SK_STORE_NOTFOUND) {
        ctl_err("no user '%s' in tenant '%s'", o->id, o->tenant);
        goto out;
    }
    if (rc != SK_STORE_OK) {
        ctl_err("cannot read user '%s'", o->id);
        goto out;
    }
    if (o->json) {
        json_t *j = user_json(&u, ctl_now());
        if (!j || print_json(j) != 0) {
            if (!j)
                ctl_err("cannot build JSON output");
            goto out;
        }
    } else {
        print_user_text(&u, ctl_now());
    }
    ret = CTL_OK;
out:
    sk_wipe(&u, sizeof u);
    sk_store_close(s);
    return ret;
}

struct list_ctx {
    json_t *arr;
    int64_t now;
    int n;
};

static int list_cb(const sk_user *u, void *arg)
{
    struct list_ctx *c = arg;
    if (c->arr) {
        json_t *j = user_json(u, c->now);
        if (!j || json_array_append_new(c->arr, j) != 0)
            return -1;
    } else {
        char created[32], last[32], st[64];
        ctl_time_str(u->created, created, sizeof created);
        ctl_time_str(u->last_login, last, sizeof last);
        status_str(u, c->now, st, sizeof st);
        printf("%-20s %-12s %-8s %-28s %-20s %-20s %-8u %s\n", u->id, u->tenant,
               sk_store_role_name(u->role), u->email[0] ? u->email : "-", created, last,
               u->failures, st);
    }
    c->n++;
    return 0;
}

static int cmd_list(const sk_conf *conf, const struct uopts *o)
{
    sk_store *s = NULL;
    struct list_ctx c = { .now = ctl_now() };
    int rc, ret = CTL_REFUSED;

    if (o->json && !(c.arr = json_array())) {
        ctl_err("out of memory");
        goto out;
    }
    rc = open_store(conf, 1, &s);
    if (rc != CTL_OK && rc != CTL_NOTFOUND)
        goto out;
    if (!c.arr)
        printf("%-20s %-12s %-8s %-28s %-20s %-20s %-8s %s\n", "ID", "TENANT", "ROLE", "EMAIL",
               "CREATED", "LAST-LOGIN", "FAILURES", "STATUS");
    /* No database yet means no users. */
    if (s && sk_store_user_list(s, o->tenant_given ? o->tenant : NULL, list_cb, &c) != 0) {
        ctl_err("cannot list users");
        goto out;
    }
    if (c.arr) {
        json_t *a = c.arr;
        c.arr = NULL;
        if (print_json(a) != 0)
            goto out;
    }
    ret = CTL_OK;
out:
    json_decref(c.arr);
    sk_store_close(s);
    return ret;
}

/* ---- allowlist ----------------------------------------------------------- */

/* Parse and normalise a CIDR the operator typed; prints why when it is bad. */
static int parse_cidr(const char *text, char out[SK_CIDR_MAX + 1])
{
    sk_policy_cidr c;
    sk_policy_cidr_err e = sk_policy_cidr_parse(text, strlen(text), &c);
    if (e != SK_POLICY_CIDR_OK) {
        ctl_err("invalid CIDR '%s': %s", text, sk_policy_cidr_strerror(e));
        return -1;
    }
    if (sk_policy_cidr_format(&c, out, SK_CIDR_MAX + 1) != 0) {
        ctl_err("cannot format CIDR '%s'", text);
        return -1;
    }
    return 0;
}

enum { ALLOW_ADDED = 0, ALLOW_PRESENT, ALLOW_FULL, ALLOW_REMOVED, ALLOW_ABSENT };

struct allow_upd {
    const char *cidr;
    int add;
    int result;
};

static int allow_fn(sk_user *u, void *arg)
{
    struct allow_upd *a = arg;
    uint32_t i;
    for (i = 0; i < u->allow_count; i++)
        if (strcmp(u->allow[i], a->cidr) == 0)
            break;
    if (a->add) {
        if (i < u->allow_count) {
            a->result = ALLOW_PRESENT;
            return 1;
        }
        if (u->allow_count >= SK_ALLOW_MAX) {
            a->result = ALLOW_FULL;
            return 1;
        }
        if (sk_strlcpy(u->allow[u->allow_count], sizeof u->allow[0], a->cidr) != 0)
            return -1;
        u->allow_count++;
        a->result = ALLOW_ADDED;
        return 0;
    }
    if (i == u->allow_count) {
        a->result = ALLOW_ABSENT;
        return 1;
    }
    for (; i + 1 < u->allow_count; i++)
        memcpy(u->allow[i], u->allow[i + 1], sizeof u->allow[i]);
    u->allow_count--;
    memset(u->allow[u->allow_count], 0, sizeof u->allow[0]);
    a->result = ALLOW_REMOVED;
    return 0;
}

static int cmd_allow(const sk_conf *conf, const struct uopts *o, int add)
{
    sk_store *s = NULL;
    sk_adm_audit *log = NULL;
    char cidr[SK_CIDR_MAX + 1];
    int rc, ret = CTL_REFUSED;
    struct allow_upd a = { cidr, add, -1 };

    if (parse_cidr(o->arg2, cidr) != 0)
        goto out;
    if (ctl_log_open(conf, &log) != CTL_OK)
        goto out;
    if (open_store(conf, 0, &s) != CTL_OK)
        goto out;
    rc = sk_store_user_update(s, o->tenant, o->id, allow_fn, &a);
    if (rc == SK_STORE_VETO && a.result < 0)
        rc = -1;
    if ((ret = report_update(rc, o)) != CTL_OK)
        goto out;
    ret = CTL_REFUSED;
    if (a.result == ALLOW_ADDED || a.result == ALLOW_REMOVED || a.result == ALLOW_PRESENT) {
        sk_audit_kv kv[] = { { "cidr", cidr } };
        if (log_user(log, add ? "user.allow-ip" : "user.deny-ip", o,
                     a.result == ALLOW_PRESENT ? "unchanged" : "ok", kv,
                     SK_ARRAY_LEN(kv)) != CTL_OK)
            goto out;
    }
    switch (a.result) {
    case ALLOW_ADDED:
        printf("%s may now connect from %s\n", o->id, cidr);
        ret = CTL_OK;
        break;
    case ALLOW_PRESENT:
        printf("%s is already in the allowlist of %s\n", cidr, o->id);
        ret = CTL_OK;
        break;
    case ALLOW_FULL:
        ctl_err("the allowlist of '%s' is full (%d entries); remove one with user deny-ip",
                o->id, SK_ALLOW_MAX);
        break;
    case ALLOW_REMOVED:
        printf("%s removed from the allowlist of %s\n", cidr, o->id);
        ret = CTL_OK;
        break;
    case ALLOW_ABSENT:
        ctl_err("%s is not in the allowlist of '%s'", cidr, o->id);
        break;
    default:
        ctl_err("cannot update user '%s'", o->id);
        break;
    }
out:
    sk_store_close(s);
    ctl_log_close(log);
    return ret;
}

static int cmd_allow_ip(const sk_conf *conf, const struct uopts *o)
{
    return cmd_allow(conf, o, 1);
}

static int cmd_deny_ip(const sk_conf *conf, const struct uopts *o)
{
    return cmd_allow(conf, o, 0);
}

/* ---- TOTP ----------------------------------------------------------------- */

static int cmd_totp_enable(const sk_conf *conf, const struct uopts *o)
{
    sk_store *s = NULL;
    sk_adm_audit *log = NULL;
    sk_auth_config ac;
    char b32[SK_AUTH_TOTP_B32_MAX], uri[SK_AUTH_TOTP_URI_MAX];
    static char qr[64 * 1024];
    int rc, ret = CTL_REFUSED;

    if (sk_auth_config_from_conf(conf, &ac) != 0) {
        ctl_err("TOTP key path too long");
        goto out;
    }
    /* Before the key check: that may create the TOTP key. */
    if (ctl_log_open(conf, &log) != CTL_OK)
        goto out;
    /* Check (or create) the key first, so a bad key file gets its own clear
     * one-line reason. */
    {
        uint8_t key[SK_AUTH_TOTP_KEY_LEN];
        char why[SK_CONF_PATH_MAX + 200];
        rc = sk_auth_totp_key_load_ex(ac.totp_key_path, 1, key, why, sizeof why);
        sk_wipe(key, sizeof key);
        if (rc != 0) {
            ctl_err("cannot enable TOTP: %s", why);
            goto out;
        }
    }
    if (open_store(conf, 0, &s) != CTL_OK)
        goto out;
    rc = sk_auth_totp_enable(&ac, s, o->tenant, o->id, b32, sizeof b32, uri, sizeof uri);
    if (rc == SK_STORE_NOTFOUND) {
        ctl_err("no user '%s' in tenant '%s'", o->id, o->tenant);
        goto out;
    }
    if (rc != 0) {
        ctl_err("cannot enable TOTP for '%s'", o->id);
        goto out;
    }
    /* The secret and the URI stay out of the log. */
    if (log_user(log, "user.totp.enable", o, "ok", NULL, 0) != CTL_OK)
        goto out;
    printf("TOTP enabled for %s (tenant %s). Scan the code below or enter the URI in the "
           "authenticator app:\n%s\n", o->id, o->tenant, uri);
    if (sk_auth_totp_qr_text(uri, qr, sizeof qr) == 0)
        fputs(qr, stdout);
    else
        fputs("(QR code unavailable)\n", stdout);
    ret = CTL_OK;
out:
    sk_wipe(b32, sizeof b32);
    sk_wipe(uri, sizeof uri);
    sk_wipe(qr, sizeof qr);
    sk_store_close(s);
    ctl_log_close(log);
    return ret;
}

static int cmd_totp_disable(const sk_conf *conf, const struct uopts *o)
{
    sk_store *s = NULL;
    sk_adm_audit *log = NULL;
    int rc, ret = CTL_REFUSED;

    if (ctl_log_open(conf, &log) != CTL_OK)
        goto out;
    if (open_store(conf, 0, &s) != CTL_OK)
        goto out;
    rc = sk_auth_totp_disable(s, o->tenant, o->id);
    if (rc == SK_STORE_NOTFOUND) {
        ctl_err("no user '%s' in tenant '%s'", o->id, o->tenant);
        goto out;
    }
    if (rc != 0) {
        ctl_err("cannot update user '%s'", o->id);
        goto out;
    }
    if (log_user(log, "user.totp.disable", o, "ok", NULL, 0) != CTL_OK)
        goto out;
    printf("TOTP disabled for %s\n", o->id);
    ret = CTL_OK;
out:
    sk_store_close(s);
    ctl_log_close(log);
    return ret;
}

/* ---- dispatch ------------------------------------------------------------ */

static int cmd_modify(const sk_conf *conf, const struct uopts *o)
{
    return ctl_user_modify(conf, o->id, o->tenant, o->role, o->email);
}

static int cmd_notify(const sk_conf *conf, const struct uopts *o)
{
    return ctl_user_notify(conf, o->id, o->tenant);
}

static int cmd_invite(const sk_conf *conf, const struct uopts *o)
{
    return ctl_user_invite(conf, o->id, o->tenant, o->lifetime);
}

static const struct ucmd cmds[] = {
    { "add", cmd_add, O_TENANT | O_ROLE | O_EMAIL | O_PWFILE | O_MUSTCHANGE | O_INVITE | O_LIFETIME, 1,
      "user add ID [--tenant T] [--role admin|general] [--email ADDR] [--password-file F | --invite "
      "[--lifetime DUR]] [--must-change]" },
    { "passwd", cmd_passwd, O_TENANT | O_PWFILE | O_MUSTCHANGE | O_NOFORCE, 1,
      "user passwd ID [--tenant T] [--password-file F] [--no-force-change]" },
    { "modify", cmd_modify, O_TENANT | O_ROLE | O_EMAIL, 1,
      "user modify ID [--tenant T] [--role admin|general] [--email ADDR|'']" },
    { "notify", cmd_notify, O_TENANT, 1, "user notify ID [--tenant T]   (mails the account notice)" },
    { "invite", cmd_invite, O_TENANT | O_LIFETIME, 1,
      "user invite ID [--tenant T] [--lifetime DUR]   (mails a single-use link to choose the password; default 72h)" },
    { "show", cmd_show, O_TENANT | O_JSON, 1, "user show ID [--tenant T] [--json]" },
    { "list", cmd_list, O_TENANT | O_JSON, 0, "user list [--tenant T] [--json]" },
    { "delete", cmd_delete, O_TENANT, 1, "user delete ID [--tenant T]" },
    { "lock", cmd_lock_on, O_TENANT, 1, "user lock ID [--tenant T]" },
    { "unlock", cmd_unlock, O_TENANT, 1, "user unlock ID [--tenant T]" },
    { "allow-ip", cmd_allow_ip, O_TENANT, 2, "user allow-ip ID CIDR [--tenant T]" },
    { "deny-ip", cmd_deny_ip, O_TENANT, 2, "user deny-ip ID CIDR [--tenant T]" },
    { "totp enable", cmd_totp_enable, O_TENANT, 1, "user totp enable ID [--tenant T]" },
    { "totp disable", cmd_totp_disable, O_TENANT, 1, "user totp disable ID [--tenant T]" },
};

static const struct ucmd *find_cmd(const char *name)
{
    for (size_t i = 0; i < SK_ARRAY_LEN(cmds); i++)
        if (strcmp(cmds[i].name, name) == 0)
            return &cmds[i];
    return NULL;
}

void ctl_user_usage_to(FILE *f)
{
    for (size_t i = 0; i < SK_ARRAY_LEN(cmds); i++)
        fprintf(f, "  %s\n", cmds[i].usage);
}

void ctl_user_usage(void)
{
    ctl_user_usage_to(stderr);
}

static int usage_error(const struct ucmd *c, const char *what, const char *arg)
{
    ctl_err("user %s: %s%s%s", c->name, what, arg ? " " : "", arg ? arg : "");
    fprintf(stderr, "usage: sekishoctl [-c FILE] %s\n", c->usage);
    return CTL_USAGE;
}

int ctl_user_main(const sk_conf *conf, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "tenant", required_argument, NULL, 't' },
        { "role", required_argument, NULL, 'r' },
        { "email", required_argument, NULL, 'e' },
        { "password-file", required_argument, NULL, 'p' },
        { "json", no_argument, NULL, 'j' },
        { "must-change", no_argument, NULL, 'm' },
        { "no-force-change", no_argument, NULL, 'n' },
        { "invite", no_argument, NULL, 'i' },
        { "lifetime", required_argument, NULL, 'l' },
        { NULL, 0, NULL, 0 },
    };
    struct uopts o = { .tenant = SK_DEFAULT_TENANT, .lifetime = INVITE_LIFETIME_DEFAULT };
    unsigned seen = 0;
    int c, li = -1;

    if (argc < 1) {
        ctl_user_usage();
        return CTL_USAGE;
    }
    const struct ucmd *cmd = NULL;
    if (strcmp(argv[0], "totp") == 0) {
        /* Two words: "totp enable|disable"; the option parser then starts at
         * the second one. */
        char name[32];
        if (argc < 2 || sk_snprintf(name, sizeof name, "totp %s", argv[1]) != 0 ||
            !(cmd = find_cmd(name))) {
            ctl_err("user totp: expected enable or disable");
            fputs("usage:\n", stderr);
            ctl_user_usage();
            return CTL_USAGE;
        }
        argc--;
        argv++;
    } else {
        cmd = find_cmd(argv[0]);
    }
    if (!cmd) {
        ctl_err("unknown subcommand 'user %s'", argv[0]);
        fputs("usage:\n", stderr);
        ctl_user_usage();
        return CTL_USAGE;
    }
    opterr = 0;
    optind = 0; /* GNU: full re-initialisation */
    while ((c = getopt_long(argc, argv, ":", longopts, &li)) != -1) {
        unsigned bit;
        char optname[64] = "";
        if (li >= 0 && sk_snprintf(optname, sizeof optname, "--%s", longopts[li].name) != 0)
            optname[0] = '\0';
        switch (c) {
        case 't': bit = O_TENANT; o.tenant = optarg; o.tenant_given = 1; break;
        case 'r': bit = O_ROLE; o.role = optarg; break;
        case 'e': bit = O_EMAIL; o.email = optarg; break;
        case 'p': bit = O_PWFILE; o.pwfile = optarg; break;
        case 'j': bit = O_JSON; o.json = 1; break;
        case 'm': bit = O_MUSTCHANGE; o.must_change = 1; break;
        case 'n': bit = O_NOFORCE; o.no_force = 1; break;
        case 'i': bit = O_INVITE; o.invite = 1; break;
        case 'l':
            bit = O_LIFETIME;
            if (sk_parse_duration(optarg, &o.lifetime) != 0 || o.lifetime < 300 || o.lifetime > 30 * 86400)
                return usage_error(cmd, "--lifetime must be between 5m and 30d, e.g. 72h:", optarg);
            break;
        case ':':
            return usage_error(cmd, "option needs a value:", argv[optind - 1]);
        default:
            if (optopt != 0) { /* an unknown short option; argv[optind - 1] may be elsewhere */
                char so[3] = { '-', (char)optopt, '\0' };
                return usage_error(cmd, "unknown option", so);
            }
            return usage_error(cmd, "unknown option", argv[optind - 1]);
        }
        if (!(cmd->allowed & bit))
            return usage_error(cmd, "option not accepted here:", optname);
        if (seen & bit)
            return usage_error(cmd, "option given twice:", optname);
        seen |= bit;
        li = -1;
    }
    if (o.must_change && o.no_force)
        return usage_error(cmd, "--must-change and --no-force-change contradict each other", NULL);
    if (o.invite && o.pwfile)
        return usage_error(cmd, "--invite and --password-file contradict each other", NULL);
    if ((seen & O_LIFETIME) && cmd->fn == cmd_add && !o.invite)
        return usage_error(cmd, "--lifetime goes with --invite", NULL);
    int npos = argc - optind;
    if (cmd->want_id == 2 && npos != 2)
        return usage_error(cmd, npos == 0 ? "missing user ID" : npos == 1 ? "missing CIDR"
                                                                         : "too many arguments",
                           NULL);
    if (cmd->want_id == 1 && npos != 1)
        return usage_error(cmd, npos == 0 ? "missing user ID" : "too many arguments", NULL);
    if (!cmd->want_id && npos != 0)
        return usage_error(cmd, "unexpected argument", argv[optind]);
    /* Which account: ID@TENANT, --tenant, or the one tenant holding the ID (see
     * ctl_account.c). add creates, so it never looks the ID up. */
    static char rid[SK_USER_ID_MAX + 1], rtenant[SK_TENANT_MAX + 1];
    if (cmd->want_id && cmd->fn == cmd_add) {
        o.id = argv[optind];
        if (!o.tenant_given && ctl_split_id(argv[optind], rid, rtenant)) {
            o.id = rid;
            o.tenant = rtenant;
        }
    } else if (cmd->want_id) {
        int r = ctl_resolve_user(conf, argv[optind], o.tenant_given ? o.tenant : NULL, rid, rtenant);
        if (r == CTL_NOTFOUND && (cmd->fn == cmd_lock_on || cmd->fn == cmd_unlock)) {
            /* Still audited as a refused attempt, under no tenant. */
            o.id = rid;
            o.tenant = NULL;
            return cmd->fn(conf, &o);
        }
        if (r == CTL_NOTFOUND) {
            ctl_err("no user '%s' in any tenant", rid);
            return CTL_REFUSED;
        }
        if (r != CTL_OK)
            return r;
        o.id = rid;
        o.tenant = rtenant;
    }
    if (cmd->want_id == 2)
        o.arg2 = argv[optind + 1];
    int rc = check_identity(&o);
    if (rc != CTL_OK)
        return rc;
    return cmd->fn(conf, &o);
}
