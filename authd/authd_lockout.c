/* authd_lockout.c — telling that a failure just locked an account.
 *
 * authd decided the lock, so authd records and announces it: one audit entry and
 * two notices, to the operators (minor level) and to the user at the address in
 * the store. The network process used to send these, naming the user's address
 * itself; a compromised one could then have the monitor mail any address. Now no
 * network process sends personal mail, and the monitor refuses it from them.
 *
 * A compromised network process can still lock accounts (it names the
 * certificate identity a password is tried for), so the notices are limited here:
 * at most LOCK_NOTICES per LOCK_NOTICE_WINDOW per authd. Every lock is audited
 * and logged regardless, and a wave of locks also raises the burst alarm.
 */
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "authd_int.h"
#include "sk_notify.h"

static void lockout_audit(sk_authd *a, const authd_lockout *l)
{
    char until[24], failures[16];
    sk_audit_kv kv[] = { { "locked_until", until }, { "failures", failures } };
    sk_audit_event e = { .event = SK_AUDIT_EV_LOCKOUT, .actor = l->who.id, .tenant = l->who.tenant,
                         .peer = l->who.peer[0] ? l->who.peer : NULL, .serial = l->who.serial[0] ? l->who.serial : NULL,
                         .kv = kv, .n_kv = SK_ARRAY_LEN(kv) };
    if (sk_snprintf(until, sizeof until, "%lld", (long long)l->locked_until) != 0)
        until[0] = '\0';
    if (sk_snprintf(failures, sizeof failures, "%u", l->failures) != 0)
        failures[0] = '\0';
    if (a->audit != NULL && sk_audit_append(a->audit, &e, 1, NULL) != 0)
        sk_log(SK_LOG_ERR, "AUDIT WRITE FAILED for the lock of %s/%s", l->who.tenant, l->who.id);
}

/* The user's own address, from the store ("" when none or unreadable). */
static void user_email(sk_authd *a, const authd_lockout *l, char *out, size_t cap)
{
    sk_user u;
    int rc;
    out[0] = '\0';
    rc = sk_store_user_get(a->store, l->who.tenant, l->who.id, &u);
    if (rc == SK_STORE_OK && sk_strlcpy(out, cap, u.email) != 0)
        out[0] = '\0';
    else if (rc != SK_STORE_OK)
        sk_log(SK_LOG_ERR, "the lock notice to %s/%s: the account's address could not be read", l->who.tenant,
               l->who.id);
    sk_wipe(&u, sizeof u); /* the record holds the hash and the sealed TOTP secret */
}

static void lockout_mail(sk_authd *a, const char *to, int level, const char *subject, const char *body)
{
    struct sk_notify_msg m = { .from = a->conf->notify_from[0] ? a->conf->notify_from : NULL, .to = to,
                               .subject = subject, .body = body };
    if (to[0] != '\0' && sk_notify_send_level(a->conf->notify_command, &m, level) != 0)
        sk_log(SK_LOG_ERR, "the lock notice to %s could not be sent", level == SK_NOTIFY_PERSONAL ? "the user" : to);
}

#define LOCK_NOTICES 20
#define LOCK_NOTICE_WINDOW 600

/* 1 when this lock may still be announced by mail. */
static int notice_allowed(int64_t now)
{
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    static int64_t window_start;
    static unsigned sent;
    int ok;
    (void)pthread_mutex_lock(&mu);
    if (now - window_start >= LOCK_NOTICE_WINDOW || now < window_start) {
        window_start = now;
        sent = 0;
    }
    ok = ++sent <= LOCK_NOTICES;
    if (sent == LOCK_NOTICES + 1)
        sk_log(SK_LOG_WARN, "more than %d accounts locked within %d s: further lock notices are not mailed "
                            "(every lock is in the audit log)", LOCK_NOTICES, LOCK_NOTICE_WINDOW);
    (void)pthread_mutex_unlock(&mu);
    return ok;
}

void authd_note_lockout(sk_authd *a, const authd_lockout *l)
{
    char body[640], until[32], from[96], email[SK_EMAIL_MAX + 1];
    struct tm tm;
    time_t t = (time_t)l->locked_until;

    lockout_audit(a, l);
    if (a->conf == NULL || !notice_allowed(authd_now()))
        return; /* the log line and the audit entry remain */
    if (gmtime_r(&t, &tm) == NULL || strftime(until, sizeof until, "%Y-%m-%d %H:%M UTC", &tm) == 0)
        until[0] = '\0';
    if ((l->who.peer[0] ? sk_snprintf(from, sizeof from, "The last attempt came from %s.\n", l->who.peer)
                        : sk_snprintf(from, sizeof from, "The last attempt was a password change.\n")) != 0)
        from[0] = '\0';
    if (sk_snprintf(body, sizeof body,
                    "The Sekisho account %s (tenant %s) was locked after %u failed logins,\n"
                    "until %s. %s"
                    "If this was not you, tell your administrator.\n",
                    l->who.id, l->who.tenant, l->failures, until, from) != 0)
        return;
    lockout_mail(a, sk_conf_operators_for(a->conf, SK_NOTIFY_MINOR), SK_NOTIFY_MINOR, "Sekisho: account locked",
                 body);
    user_email(a, l, email, sizeof email);
    lockout_mail(a, email, SK_NOTIFY_PERSONAL, "Sekisho: your account was locked", body);
}
