/*
 * sk_sweep.h — the daily maintenance pass: dormancy and expired sessions.
 *
 * Run by `sekishoctl sweep [--now EPOCH]` and by the gateway in-process once a
 * day (on a maintenance thread: it sends mail, which blocks up to
 * SK_NOTIFY_TIMEOUT seconds per message).
 *
 * Dormancy (sk_policy_dormancy_next; defaults 180 / +30 / +90 days):
 *   NOTIFY  reminder mail to the user (no address: to [notify] operators);
 *           sets SK_USER_F_DORMANT_NOTIFIED and dormant_notified_at = now.
 *   LOCK    sets SK_USER_F_DORMANT_LOCKED and dormant_locked_at = now, and ends
 *           the user's sessions in the same transaction; mail to the user and
 *           to the operators.
 *   DELETE  general accounts only (never admins): the user and its sessions
 *           are deleted; mail to the operators.
 * "No login since" is measured from max(last_login, created, unlocked_at): an
 * operator's unlock restarts the clock.
 *
 * Exactly once. Each step is decided from a snapshot, then re-decided on the
 * freshest record INSIDE the write transaction that records it (a login or an
 * unlock in between wins), and the step's state is committed before anything
 * else happens. A later sweep, in this or another process, therefore never
 * takes the same step again: the step happens exactly once.
 *
 * Mail is sent AFTER the commit, once, and never retried: delivery is
 * AT-MOST-ONCE. The alternative (mail first, or a "mail pending" mark retried
 * by the next sweep) is at-least-once and sends duplicates after a crash
 * between sending and committing; a duplicate lock notice is harmless but
 * repeated reminders train people to ignore them, while a lost mail is
 * visible: every failed send is reported (event MAIL_FAILED, summary
 * mail_failed, sekishoctl exits 1) and logged, so the operator can act. The
 * account state — the security-relevant part — is never lost either way.
 */
#ifndef SK_SWEEP_H
#define SK_SWEEP_H

#include <stdint.h>

#include "sk_conf.h"
#include "sk_store.h"
#include "sk_util.h"

/* Seconds an expired session is kept before the sweep removes it. */
#define SK_SWEEP_SESSION_GRACE 86400

typedef enum sk_sweep_action {
    SK_SWEEP_NOTIFIED = 0,      /* reminder recorded (mail follows) */
    SK_SWEEP_LOCKED,            /* dormancy lock recorded, sessions ended */
    SK_SWEEP_DELETED,           /* account deleted */
    SK_SWEEP_MAILED,            /* a mail for the step above was accepted by the command */
    SK_SWEEP_MAIL_FAILED,       /* ... the command failed or there was no recipient */
    SK_SWEEP_SESSIONS,          /* expired sessions removed (count) */
} sk_sweep_action;

typedef struct sk_sweep_event {
    sk_sweep_action action;
    const char *tenant;         /* "" for SK_SWEEP_SESSIONS */
    const char *id;             /* "" for SK_SWEEP_SESSIONS */
    const char *role;           /* "admin" / "general", "" for sessions */
    const char *recipient;      /* MAILED / MAIL_FAILED: the To: list ("" if none) */
    const char *detail;         /* MAILED / MAIL_FAILED: "reminder", "lock notice", ... */
    int count;                  /* LOCKED: sessions ended; SESSIONS: removed */
} sk_sweep_event;

typedef struct sk_sweep_summary {
    unsigned users_seen;
    unsigned notified;
    unsigned locked;
    unsigned deleted;
    unsigned mails_sent;
    unsigned mail_failed;
    int sessions_removed;
} sk_sweep_summary;

/* Called once per event, in order; may be NULL. Strings live until it returns. */
typedef void (*sk_sweep_report_fn)(const sk_sweep_event *ev, void *ctx);

/*
 * One pass at time now over every tenant. Returns 0 when every store operation
 * succeeded (mail failures are counted in *sum, not errors), -1 when the store
 * failed (steps already committed stay committed; the next pass continues).
 * The policy numbers come from conf ([policy] dormant_*, idle/absolute_timeout),
 * mail from conf ([notify] command, from, operators).
 */
int sk_sweep_run(const sk_conf *conf, sk_store *store, int64_t now, sk_sweep_report_fn report,
                 void *ctx, sk_sweep_summary *sum) SK_MUST_CHECK;

/* "notified", "locked", "deleted", "mailed", "mail-failed", "sessions". */
const char *sk_sweep_action_name(sk_sweep_action a);

#endif
