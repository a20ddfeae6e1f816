/*
 * ctl_account.c — which account an operator means, and `user modify`.
 *
 * Tenant resolution (every command that names an existing user):
 *   --tenant T given        the ID is taken literally, in tenant T;
 *   ID@T with T a tenant name (a-z 0-9 -, so "alice@example.com" is never split)
 *                           user ID in tenant T; --tenant means the literal ID;
 *   plain ID                looked up in every tenant: exactly one match is used,
 *                           several are refused listing the tenants, none is
 *                           "no user in any tenant".
 * A command therefore never acts on (or reports about) an account the operator
 * did not name: a second "carol" elsewhere makes a plain "carol" ambiguous.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ctl.h"
#include "sk_auth.h"
#include "sk_admin_audit.h"
#include "sk_notify.h"
#include "sk_store.h"

int ctl_valid_email(const char *e)
{
    size_t n = strlen(e), at = 0, ats = 0;
    if (n == 0 || n > SK_EMAIL_MAX)
        return 0;
    /* Addresses end up in mail headers: a conservative character set, so that no
     * CR/LF or header syntax can ride along. */
    for (size_t i = 0; i < n; i++) {
        char c = e[i];
        if (c == '@') {
            ats++;
            at = i;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr(".!#$%&'*+/=?^_`{|}~-", c)))
            return 0;
    }
    return ats == 1 && at > 0 && at < n - 1;
}

/* An address for an account: well-formed and, when [notify] allowed_domains is
 * set, in one of those domains. CTL_OK or CTL_REFUSED after saying why. */
int ctl_check_email(const sk_conf *conf, const char *email)
{
    if (!ctl_valid_email(email)) {
        ctl_err("invalid e-mail address '%s'", email);
        return CTL_REFUSED;
    }
    if (!sk_conf_email_allowed(conf, email)) {
        ctl_err("e-mail address '%s' refused: its domain is not in [notify] allowed_domains (%s)", email,
                conf->notify_allowed_domains);
        return CTL_REFUSED;
    }
    return CTL_OK;
}

int ctl_split_id(const char *arg, char id[SK_USER_ID_MAX + 1], char tenant[SK_TENANT_MAX + 1])
{
    const char *at = strrchr(arg, '@');
    size_t n;
    if (at == NULL || at == arg || !sk_store_valid_tenant(at + 1))
        return 0;
    n = (size_t)(at - arg);
    if (n > SK_USER_ID_MAX)
        return 0;
    memcpy(id, arg, n);
    id[n] = '\0';
    if (!sk_store_valid_id(id) || sk_strlcpy(tenant, SK_TENANT_MAX + 1, at + 1) != 0)
        return 0;
    return 1;
}

#define MAX_LISTED 8

struct find_ctx {
    const char *id;
    char tenants[MAX_LISTED][SK_TENANT_MAX + 1];
    size_t n;
};

static int find_cb(const sk_user *u, void *arg)
{
    struct find_ctx *f = arg;
    if (strcmp(u->id, f->id) != 0)
        return 0;
    if (f->n < MAX_LISTED)
        memcpy(f->tenants[f->n], u->tenant, sizeof f->tenants[0]);
    f->n++;
    return 0;
}

int ctl_resolve_user(const sk_conf *conf, const char *arg, const char *tenant_opt,
                     char id[SK_USER_ID_MAX + 1], char tenant[SK_TENANT_MAX + 1])
{
    sk_store *s = NULL;
    static struct find_ctx f; /* sk_user walks are large; keep this off the stack */
    int rc, ret = CTL_REFUSED;

    if (tenant_opt != NULL || ctl_split_id(arg, id, tenant)) {
        if (tenant_opt != NULL &&
            (sk_strlcpy(id, SK_USER_ID_MAX + 1, arg) != 0 ||
             sk_strlcpy(tenant, SK_TENANT_MAX + 1, tenant_opt) != 0)) {
            ctl_err("user ID or tenant too long");
            return CTL_REFUSED;
        }
        return CTL_OK;
    }
    if (!sk_store_valid_id(arg) || sk_strlcpy(id, SK_USER_ID_MAX + 1, arg) != 0) {
        ctl_err("invalid user ID '%s' (1-%d characters A-Z a-z 0-9 . _ @ -, not starting "
                "with . or -)", arg, SK_USER_ID_MAX);
        return CTL_REFUSED;
    }
    memset(&f, 0, sizeof f);
    f.id = id;
    rc = ctl_store_open(conf, 1, &s, "user");
    if (rc != SK_STORE_OK && rc != SK_STORE_NOTFOUND)
        goto out;
    if (s != NULL && sk_store_user_list(s, NULL, find_cb, &f) != 0) {
        ctl_err("cannot read the user database");
        goto out;
    }
    if (f.n == 0) {
        ret = CTL_NOTFOUND; /* the caller says so: some commands audit the attempt */
    } else if (f.n == 1) {
        memcpy(tenant, f.tenants[0], SK_TENANT_MAX + 1);
        ret = CTL_OK;
    } else {
        char mem[MAX_LISTED * (SK_TENANT_MAX + 2) + 8];
        sk_buf list;
        sk_buf_init(&list, mem, sizeof mem);
        for (size_t i = 0; i < f.n && i < MAX_LISTED; i++)
            sk_buf_printf(&list, i ? ", %s" : "%s", f.tenants[i]);
        if (f.n > MAX_LISTED)
            sk_buf_puts(&list, ", ...");
        ctl_err("user ID '%s' exists in %zu tenants (%s); name one: %s@TENANT or --tenant TENANT",
                id, f.n, mem, id);
    }
out:
    sk_store_close(s);
    return ret;
}

/* ---- user modify ----------------------------------------------------------- */

struct modify_upd {
    int set_role;
    enum sk_role role;
    const char *email;       /* NULL: keep; "": clear */
    int role_changed, email_changed;
    enum sk_role old_role;
};

static int modify_fn(sk_user *u, int *end_sessions, void *arg)
{
    struct modify_upd *m = arg;
    m->old_role = u->role;
    if (m->set_role && u->role != m->role) {
        u->role = m->role;
        m->role_changed = 1;
        /* Sessions carry the role they were opened with: a changed role takes
         * effect at once, by ending them in the same transaction. */
        *end_sessions = 1;
    }
    if (m->email != NULL && strcmp(u->email, m->email) != 0) {
        if (sk_strlcpy(u->email, sizeof u->email, m->email) != 0)
            return -1;
        m->email_changed = 1;
    }
    return m->role_changed || m->email_changed ? 0 : 1;
}

int ctl_user_modify(const sk_conf *conf, const char *id, const char *tenant, const char *role,
                    const char *email)
{
    sk_store *s = NULL;
    sk_adm_audit *log = NULL;
    struct modify_upd m = { 0 };
    char count[16] = "0";
    int rc, ended = 0, ret = CTL_REFUSED;

    if (role == NULL && email == NULL) {
        ctl_err("user modify: nothing to change (give --role and/or --email)");
        return CTL_USAGE;
    }
    if (role != NULL) {
        if (sk_store_role_parse(role, &m.role) != 0) {
            ctl_err("invalid role '%s' (admin or general)", role);
            goto out;
        }
        m.set_role = 1;
    }
    if (email != NULL && email[0] != '\0' && ctl_check_email(conf, email) != CTL_OK)
        goto out;
    m.email = email;
    if (ctl_log_open(conf, &log) != CTL_OK)
        goto out;
    if (ctl_store_open(conf, 0, &s, "user") != SK_STORE_OK)
        goto out;
    rc = sk_store_user_update_ex(s, tenant, id, modify_fn, &m, NULL, &ended);
    if (rc == SK_STORE_NOTFOUND) {
        ctl_err("no user '%s' in tenant '%s'", id, tenant);
        goto out;
    }
    if (rc != SK_STORE_OK && rc != SK_STORE_VETO) {
        ctl_err("cannot update user '%s' (tenant %s)", id, tenant);
        goto out;
    }
    if (sk_snprintf(count, sizeof count, "%d", ended) != 0)
        count[0] = '\0';
    {
        sk_audit_kv kv[] = { { "user", id },
                             { "result", rc == SK_STORE_OK ? "ok" : "unchanged" },
                             { "role", m.set_role ? sk_store_role_name(m.role) : NULL },
                             { "old_role", m.role_changed ? sk_store_role_name(m.old_role) : NULL },
                             { "email", email },
                             { "sessions_ended", count } };
        if (ctl_log_change(log, "user.modify", tenant, kv, SK_ARRAY_LEN(kv)) != CTL_OK)
            goto out;
    }
    if (rc == SK_STORE_VETO) {
        printf("user %s (tenant %s) unchanged: it already has these settings\n", id, tenant);
    } else {
        if (m.role_changed)
            printf("role of %s (tenant %s) is now %s (was %s)\n", id, tenant,
                   sk_store_role_name(m.role), sk_store_role_name(m.old_role));
        if (m.email_changed)
            printf("e-mail of %s (tenant %s) is now %s\n", id, tenant, email[0] ? email : "(none)");
        if (ended > 0)
            printf("ended %d session(s) of %s: the new role applies from the next login\n", ended, id);
    }
    ret = CTL_OK;
out:
    sk_store_close(s);
    ctl_log_close(log);
    return ret;
}

/* ---- user notify: the account notice ------------------------------------------ */

/* The portal's address for the notice: [notify] portal_url, else the first host of
 * the user's tenant, else nothing (the mail then says to ask the operator). */
static void portal_url(const sk_conf *conf, const char *tenant, char *out, size_t cap)
{
    out[0] = '\0';
    if (conf->notify_portal_url[0] != '\0') {
        if (sk_strlcpy(out, cap, conf->notify_portal_url) != 0)
            out[0] = '\0';
        return;
    }
    for (uint32_t i = 0; i < conf->n_tenants; i++)
        if (strcmp(conf->tenants[i].name, tenant) == 0 && conf->tenants[i].n_hosts > 0 &&
            sk_snprintf(out, cap, "https://%s/", conf->tenants[i].hosts[0]) != 0)
            out[0] = '\0';
}

/* The store (read-only or not) and the account a mail is for, with an address the
 * configuration allows. CTL_OK, or CTL_REFUSED with the reason printed (and *s
 * possibly open: the caller closes it). */
static int mail_recipient(const sk_conf *conf, int readonly, const char *id, const char *tenant, sk_store **s,
                          sk_user *u)
{
    int rc;
    rc = ctl_store_open(conf, readonly, s, "user");
    if (rc != SK_STORE_OK) {
        if (rc == SK_STORE_NOTFOUND)
            ctl_err("cannot open the user database in %s", conf->state_dir);
        return CTL_REFUSED;
    }
    rc = sk_store_user_get(*s, tenant, id, u);
    if (rc != SK_STORE_OK) {
        ctl_err(rc == SK_STORE_NOTFOUND ? "no user '%s' in tenant '%s'" : "cannot read user '%s' (tenant %s)",
                id, tenant);
        return CTL_REFUSED;
    }
    if (u->email[0] == '\0') {
        ctl_err("user %s (tenant %s) has no e-mail address; set one with: sekishoctl user modify %s@%s --email ADDR",
                id, tenant, id, tenant);
        return CTL_REFUSED;
    }
    if (!sk_conf_email_allowed(conf, u->email)) {
        ctl_err("the address of %s (%s) is not in [notify] allowed_domains; nothing sent", id, u->email);
        return CTL_REFUSED;
    }
    return CTL_OK;
}

int ctl_user_notify(const sk_conf *conf, const char *id, const char *tenant)
{
    sk_store *s = NULL;
    sk_adm_audit *log = NULL;
    static sk_user u;
    static char body[4096];
    char subject[256], url[SK_CONF_URL_MAX + 16];
    int ret = CTL_REFUSED;

    if (mail_recipient(conf, 1, id, tenant, &s, &u) != CTL_OK)
        goto out;
    portal_url(conf, tenant, url, sizeof url);
    /* What the person needs, never a password: those travel another way. */
    if (sk_snprintf(subject, sizeof subject, "Sekisho: your account %s", id) != 0 ||
        sk_snprintf(body, sizeof body,
                    "Your Sekisho account is ready.\n\n"
                    "  User ID:  %s\n  Tenant:   %s\n  Portal:   %s\n\n"
                    "1. Import the certificate bundle (.p12) you receive separately into your\n"
                    "   browser's personal certificate store (Windows: double-click it, store\n"
                    "   \"Current User\", \"Personal\"; Firefox: Settings > Privacy & Security >\n"
                    "   Certificates > View Certificates > Your Certificates > Import).\n"
                    "2. Open the portal and choose this certificate when the browser asks.\n"
                    "3. Sign in with your user ID and the initial password your administrator\n"
                    "   gives you by another channel; you will be asked to change it.\n\n"
                    "This mail contains no password. If you did not expect it, tell your\n"
                    "administrator.\n\n"
                    "Sekisho アカウントが用意できました。\n"
                    "  ユーザーID: %s / テナント: %s / ポータル: %s\n"
                    "別途届く証明書 (.p12) をブラウザーの個人用証明書ストアに取り込み、ポータルを開いて\n"
                    "この証明書を選び、管理者から別の経路で伝えられる初期パスワードでサインインしてください。\n"
                    "このメールにパスワードは含まれていません。\n",
                    id, tenant, url[0] ? url : "(ask your administrator)", id, tenant,
                    url[0] ? url : "(管理者にお問い合わせください)") != 0) {
        ctl_err("account notice too long");
        goto out;
    }
    if (ctl_log_open(conf, &log) != CTL_OK)
        goto out;
    {
        struct sk_notify_msg m = { conf->notify_from[0] ? conf->notify_from : NULL, u.email, subject, body };
        int sent = sk_notify_send(conf->notify_command, &m) == 0;
        sk_audit_kv kv[] = { { "user", id }, { "result", sent ? "ok" : "refused" }, { "email", u.email },
                             { "reason", sent ? NULL : "mail command failed" } };
        if (ctl_log_change(log, "user.notify", tenant, kv, SK_ARRAY_LEN(kv)) != CTL_OK)
            goto out;
        if (!sent) {
            ctl_err("the account notice to %s could not be sent ([notify] command failed)", u.email);
            goto out;
        }
    }
    printf("account notice sent to %s for %s (tenant %s)\n", u.email, id, tenant);
    ret = CTL_OK;
out:
    sk_wipe(&u, sizeof u);
    sk_store_close(s);
    ctl_log_close(log);
    return ret;
}

/* An activation link instead of a password: the person chooses the first password
 * at /.sekisho/activate with the certificate of this very account. The link (a
 * single-use token) is mailed; a new invitation replaces the previous link. */
int ctl_user_invite(const sk_conf *conf, const char *id, const char *tenant, int64_t lifetime)
{
    sk_store *s = NULL;
    sk_adm_audit *log = NULL;
    static sk_user u;
    static char body[4096];
    uint8_t token[SK_AUTH_ACTIVATION_TOKEN_LEN];
    char tok64[SK_B64URL_LEN(SK_AUTH_ACTIVATION_TOKEN_LEN) + 1], subject[256], url[SK_CONF_URL_MAX + 16];
    char link[SK_CONF_URL_MAX + 128], until[40], exp[24];
    int64_t expires = ctl_now() + lifetime;
    time_t et = (time_t)expires;
    struct tm tm;
    size_t ul;
    int sent = 0, ret = CTL_REFUSED;

    memset(token, 0, sizeof token);
    memset(tok64, 0, sizeof tok64);
    memset(link, 0, sizeof link);
    if (mail_recipient(conf, 0, id, tenant, &s, &u) != CTL_OK)
        goto out;
    portal_url(conf, tenant, url, sizeof url);
    if (url[0] == '\0') {
        ctl_err("no portal address for tenant '%s': set [notify] portal_url (or a [tenant.%s] host)", tenant, tenant);
        goto out;
    }
    ul = strlen(url);
    while (ul > 0 && url[ul - 1] == '/')
        url[--ul] = '\0';
    gmtime_r(&et, &tm);
    if (strftime(until, sizeof until, "%Y-%m-%d %H:%M UTC", &tm) == 0 ||
        sk_snprintf(exp, sizeof exp, "%lld", (long long)expires) != 0)
        goto out;
    if (ctl_log_open(conf, &log) != CTL_OK)
        goto out;
    if (sk_auth_activation_new(s, tenant, id, expires, token) != 0) {
        ctl_err("cannot store the activation link for %s (tenant %s)", id, tenant);
        goto out;
    }
    sk_b64url_encode(token, sizeof token, tok64);
    if (sk_snprintf(link, sizeof link, "%s/.sekisho/activate?t=%s", url, tok64) != 0 ||
        sk_snprintf(subject, sizeof subject, "Sekisho: activate your account %s", id) != 0 ||
        sk_snprintf(body, sizeof body,
                    "Your Sekisho account is ready. Choose your password here, with the\n"
                    "certificate of this account selected in your browser:\n\n  %s\n\n"
                    "  User ID: %s\n  Tenant:  %s\n\n"
                    "The link works once and until %s. A newer invitation replaces it.\n"
                    "This mail contains no password. If you did not expect it, tell your administrator.\n\n"
                    "Sekisho アカウントが用意できました。このアカウントの証明書をブラウザーで選び、\n"
                    "次のリンクでパスワードを決めてください (1回限り、%s まで有効):\n  %s\n",
                    link, id, tenant, until, until, link) != 0) {
        ctl_err("invitation too long");
        goto out;
    }
    {
        struct sk_notify_msg m = { conf->notify_from[0] ? conf->notify_from : NULL, u.email, subject, body };
        sent = sk_notify_send(conf->notify_command, &m) == 0;
    }
    {
        sk_audit_kv kv[] = { { "user", id }, { "result", sent ? "ok" : "refused" }, { "email", u.email },
                             { "expires", exp }, { "reason", sent ? NULL : "mail command failed" } };
        if (ctl_log_change(log, "user.invite", tenant, kv, SK_ARRAY_LEN(kv)) != CTL_OK)
            goto out;
    }
    if (!sent) {
        ctl_err("the invitation to %s could not be sent ([notify] command failed); run user invite again", u.email);
        goto out;
    }
    printf("activation link for %s (tenant %s) sent to %s, valid until %s\n", id, tenant, u.email, until);
    ret = CTL_OK;
out:
    sk_wipe(token, sizeof token);
    sk_wipe(tok64, sizeof tok64);
    sk_wipe(link, sizeof link);
    sk_wipe(body, sizeof body);
    sk_wipe(&u, sizeof u);
    sk_store_close(s);
    ctl_log_close(log);
    return ret;
}
