/*
 * The dormancy and session sweep. Contract and the mail delivery choice in
 * sk_sweep.h.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sk_notify.h"
#include "sk_policy.h"
#include "sk_sweep.h"

#define BODY_MAX 4096

const char *sk_sweep_action_name(sk_sweep_action a)
{
    switch (a) {
    case SK_SWEEP_NOTIFIED: return "notified";
    case SK_SWEEP_LOCKED: return "locked";
    case SK_SWEEP_DELETED: return "deleted";
    case SK_SWEEP_MAILED: return "mailed";
    case SK_SWEEP_MAIL_FAILED: return "mail-failed";
    case SK_SWEEP_SESSIONS: return "sessions";
    }
    return "unknown";
}

static int64_t max3(int64_t a, int64_t b, int64_t c)
{
    int64_t m = a > b ? a : b;
    return m > c ? m : c;
}

static void dormancy_of(const sk_user *u, sk_policy_dormancy *d)
{
    memset(d, 0, sizeof *d);
    d->last_login = max3(u->last_login, u->created, u->unlocked_at);
    d->notified_at = (u->flags & SK_USER_F_DORMANT_NOTIFIED) ? u->dormant_notified_at : 0;
    d->locked_at = (u->flags & SK_USER_F_DORMANT_LOCKED) ? u->dormant_locked_at : 0;
    d->roles = u->role == SK_ROLE_ADMIN ? SK_POLICY_ROLE_ADMIN : SK_POLICY_ROLE_GENERAL;
}

static sk_policy_dormancy_action next_action(const sk_policy_config *pc, const sk_user *u,
                                             int64_t now)
{
    sk_policy_dormancy d;
    dormancy_of(u, &d);
    sk_policy_dormancy_action a = sk_policy_dormancy_next(pc, &d, now);
    /* Belt and braces: the policy never deletes admins; neither do we. */
    if (a == SK_POLICY_DORMANCY_DELETE && u->role != SK_ROLE_GENERAL)
        a = SK_POLICY_DORMANCY_NONE;
    return a;
}

/* ---- candidates from one read snapshot ----------------------------------- */

struct cand {
    char tenant[SK_TENANT_MAX + 1];
    char id[SK_USER_ID_MAX + 1];
};

struct collect {
    const sk_policy_config *pc;
    int64_t now;
    struct cand *v;
    size_t n, cap;
    unsigned seen;
};

static int collect_cb(const sk_user *u, void *arg)
{
    struct collect *c = arg;
    c->seen++;
    if (next_action(c->pc, u, c->now) == SK_POLICY_DORMANCY_NONE)
        return 0;
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 16;
        struct cand *nv = realloc(c->v, nc * sizeof *nv);
        if (!nv)
            return -1;
        c->v = nv;
        c->cap = nc;
    }
    if (sk_strlcpy(c->v[c->n].tenant, sizeof c->v[c->n].tenant, u->tenant) != 0 ||
        sk_strlcpy(c->v[c->n].id, sizeof c->v[c->n].id, u->id) != 0)
        return -1;
    c->n++;
    return 0;
}

/* ---- one step, decided again inside its transaction ---------------------- */

struct step {
    const sk_policy_config *pc;
    int64_t now;
    sk_policy_dormancy_action act;          /* what the fresh record called for */
    enum sk_role role;
    char email[SK_EMAIL_MAX + 1];
    int64_t since;                          /* start of the dormant period */
};

static void step_note(struct step *st, const sk_user *u)
{
    st->role = u->role;
    st->since = max3(u->last_login, u->created, u->unlocked_at);
    if (sk_strlcpy(st->email, sizeof st->email, u->email) != 0)
        st->email[0] = '\0';
}

static int step_fn(sk_user *u, int *end_sessions, void *arg)
{
    struct step *st = arg;
    st->act = next_action(st->pc, u, st->now);
    step_note(st, u);
    switch (st->act) {
    case SK_POLICY_DORMANCY_NOTIFY:
        u->flags |= SK_USER_F_DORMANT_NOTIFIED;
        u->dormant_notified_at = st->now;
        return 0;
    case SK_POLICY_DORMANCY_LOCK:
        u->flags |= SK_USER_F_DORMANT_LOCKED;
        u->dormant_locked_at = st->now;
        *end_sessions = 1;
        return 0;
    default:
        return 1; /* nothing, or a delete (done by delete_pred) */
    }
}

static int delete_pred(const sk_user *u, void *arg)
{
    struct step *st = arg;
    st->act = next_action(st->pc, u, st->now);
    step_note(st, u);
    return st->act == SK_POLICY_DORMANCY_DELETE ? 0 : 1;
}

/* ---- mail ---------------------------------------------------------------- */

struct run {
    const sk_conf *conf;
    const sk_policy_config *pc;
    sk_store *store;
    int64_t now;
    sk_sweep_report_fn report;
    void *ctx;
    sk_sweep_summary *sum;
};

static void emit(struct run *r, sk_sweep_action a, const char *tenant, const char *id,
                 const char *role, const char *to, const char *detail, int count)
{
    sk_sweep_event ev = { a, tenant, id, role, to, detail, count };
    if (r->report)
        r->report(&ev, r->ctx);
}

static void date_str(int64_t t, char *out, size_t cap)
{
    struct tm tm;
    time_t tt = (time_t)t;
    if (!gmtime_r(&tt, &tm) || strftime(out, cap, "%Y-%m-%d", &tm) == 0) {
        if (sk_snprintf(out, cap, "@%lld", (long long)t) != 0 && cap > 0)
            out[0] = '\0';
    }
}

/* level: SK_NOTIFY_PERSONAL for the user's own mail (to = their address), else an
 * operator alert level; operator mail goes to that level's recipients. */
static void send_mail(struct run *r, const struct cand *c, const char *role, const char *to,
                      const char *detail, const char *subject, const char *body, int level)
{
    struct sk_notify_msg m = {
        .from = r->conf->notify_from[0] ? r->conf->notify_from : NULL,
        .to = level != SK_NOTIFY_PERSONAL ? sk_conf_operators_for(r->conf, level) : to,
        .subject = subject,
        .body = body,
    };
    to = m.to;
    if (!to || to[0] == '\0') {
        sk_log(SK_LOG_WARN, "sweep: no recipient for the %s of %s/%s", detail, c->tenant, c->id);
        r->sum->mail_failed++;
        emit(r, SK_SWEEP_MAIL_FAILED, c->tenant, c->id, role, "", detail, 0);
        return;
    }
    if (sk_notify_send_level(r->conf->notify_command, &m, level) != 0) {
        sk_log(SK_LOG_ERR, "sweep: mail (%s of %s/%s) to %s failed", detail, c->tenant, c->id, to);
        r->sum->mail_failed++;
        emit(r, SK_SWEEP_MAIL_FAILED, c->tenant, c->id, role, to, detail, 0);
        return;
    }
    r->sum->mails_sent++;
    emit(r, SK_SWEEP_MAILED, c->tenant, c->id, role, to, detail, 0);
}

static int64_t days(int64_t s)
{
    return s / SK_POLICY_DAY;
}

static void mail_step(struct run *r, const struct cand *c, const struct step *st)
{
    char subj[256], body[BODY_MAX], since[32], ops_subj[256], ops_body[BODY_MAX];
    const char *role = sk_store_role_name(st->role);
    const char *ops = r->conf->notify_operators;
    int bad = 0;

    date_str(st->since, since, sizeof since);
    switch (st->act) {
    case SK_POLICY_DORMANCY_NOTIFY:
        bad |= sk_snprintf(subj, sizeof subj, "Sekisho: account %s will be locked for inactivity",
                           c->id);
        bad |= sk_snprintf(body, sizeof body,
                           "The Sekisho account %s (tenant %s) has not been used since %s.\n"
                           "If nobody logs in with it within %lld days, it will be locked, and "
                           "only an operator can unlock it.\n\n"
                           "Sekisho アカウント %s（テナント %s）は %s 以降使用されていません。\n"
                           "%lld 日以内にログインがない場合はロックされ、解除には管理者の操作が"
                           "必要です。\n",
                           c->id, c->tenant, since, (long long)days(r->pc->dormant_lock_after),
                           c->id, c->tenant, since, (long long)days(r->pc->dormant_lock_after));
        if (bad)
            break;
        if (st->email[0]) {
            send_mail(r, c, role, st->email, "reminder", subj, body, SK_NOTIFY_PERSONAL);
        } else {
            /* Nobody to remind: the operators hear about it instead. */
            bad |= sk_snprintf(ops_subj, sizeof ops_subj,
                               "Sekisho: dormant account %s/%s has no e-mail address", c->tenant,
                               c->id);
            if (!bad)
                send_mail(r, c, role, ops, "reminder (to operators: no user address)", ops_subj,
                          body, SK_NOTIFY_WARNING);
        }
        break;
    case SK_POLICY_DORMANCY_LOCK:
        bad |= sk_snprintf(subj, sizeof subj, "Sekisho: account %s locked for inactivity", c->id);
        bad |= sk_snprintf(body, sizeof body,
                           "The Sekisho account %s (tenant %s, role %s) has not been used since "
                           "%s and has been locked. Its sessions were ended.\n"
                           "Ask an operator to unlock it (sekishoctl user unlock).\n\n"
                           "Sekisho アカウント %s（テナント %s）は %s 以降使用されていないため"
                           "ロックされました。解除は管理者に依頼してください。\n",
                           c->id, c->tenant, role, since, c->id, c->tenant, since);
        bad |= sk_snprintf(ops_subj, sizeof ops_subj, "Sekisho: dormant account %s/%s locked",
                           c->tenant, c->id);
        if (bad)
            break;
        if (st->email[0])
            send_mail(r, c, role, st->email, "lock notice", subj, body, SK_NOTIFY_PERSONAL);
        send_mail(r, c, role, ops, "lock notice (operators)", ops_subj, body, SK_NOTIFY_MINOR);
        break;
    case SK_POLICY_DORMANCY_DELETE:
        bad |= sk_snprintf(ops_subj, sizeof ops_subj, "Sekisho: dormant account %s/%s deleted",
                           c->tenant, c->id);
        bad |= sk_snprintf(ops_body, sizeof ops_body,
                           "The general account %s (tenant %s) had not been used since %s, was "
                           "locked for inactivity, and has now been deleted together with its "
                           "sessions.\n",
                           c->id, c->tenant, since);
        if (!bad)
            send_mail(r, c, role, ops, "deletion notice (operators)", ops_subj, ops_body, SK_NOTIFY_MINOR);
        break;
    default:
        break;
    }
    if (bad) {
        sk_log(SK_LOG_ERR, "sweep: mail text for %s/%s does not fit", c->tenant, c->id);
        r->sum->mail_failed++;
        emit(r, SK_SWEEP_MAIL_FAILED, c->tenant, c->id, role, "", "mail text too long", 0);
    }
}

/* ---- the pass ------------------------------------------------------------ */

static int do_user(struct run *r, const struct cand *c)
{
    struct step st;
    int ended = 0, rc;

    memset(&st, 0, sizeof st);
    st.pc = r->pc;
    st.now = r->now;
    rc = sk_store_user_update_ex(r->store, c->tenant, c->id, step_fn, &st, NULL, &ended);
    if (rc == SK_STORE_NOTFOUND)
        return 0; /* deleted meanwhile */
    if (rc == SK_STORE_VETO && st.act == SK_POLICY_DORMANCY_DELETE) {
        memset(&st, 0, sizeof st);
        st.pc = r->pc;
        st.now = r->now;
        rc = sk_store_user_delete_if(r->store, c->tenant, c->id, delete_pred, &st);
        if (rc == SK_STORE_NOTFOUND || rc == SK_STORE_VETO)
            return 0;
    }
    if (rc == SK_STORE_VETO)
        return 0; /* the fresh record needs nothing (logged in, unlocked, ...) */
    if (rc != SK_STORE_OK) {
        sk_log(SK_LOG_ERR, "sweep: cannot record the dormancy step of %s/%s", c->tenant, c->id);
        return -1;
    }
    /* Committed: the step is done. Now tell people (see sk_sweep.h). */
    const char *role = sk_store_role_name(st.role);
    switch (st.act) {
    case SK_POLICY_DORMANCY_NOTIFY:
        r->sum->notified++;
        emit(r, SK_SWEEP_NOTIFIED, c->tenant, c->id, role, "", "", 0);
        break;
    case SK_POLICY_DORMANCY_LOCK:
        r->sum->locked++;
        emit(r, SK_SWEEP_LOCKED, c->tenant, c->id, role, "", "", ended);
        break;
    case SK_POLICY_DORMANCY_DELETE:
        r->sum->deleted++;
        emit(r, SK_SWEEP_DELETED, c->tenant, c->id, role, "", "", 0);
        break;
    default:
        return 0;
    }
    mail_step(r, c, &st);
    return 0;
}

int sk_sweep_run(const sk_conf *conf, sk_store *store, int64_t now, sk_sweep_report_fn report,
                 void *ctx, sk_sweep_summary *sum)
{
    sk_policy_config pc;
    const char *why = NULL;
    struct collect col;
    struct run r = { conf, &pc, store, now, report, ctx, sum };
    int ret = -1, failed = 0;

    memset(sum, 0, sizeof *sum);
    memset(&col, 0, sizeof col);
    sk_policy_defaults(&pc);
    pc.dormant_notify_after = conf->dormant_notify_after;
    pc.dormant_lock_after = conf->dormant_lock_after;
    pc.dormant_delete_after = conf->dormant_delete_after;
    pc.idle_timeout = conf->idle_timeout;
    pc.absolute_timeout = conf->absolute_timeout;
    if (sk_policy_config_validate(&pc, &why) != 0) {
        sk_log(SK_LOG_ERR, "sweep: invalid policy: %s", why ? why : "?");
        goto out;
    }
    col.pc = &pc;
    col.now = now;
    if (sk_store_user_list(store, NULL, collect_cb, &col) != 0) {
        sk_log(SK_LOG_ERR, "sweep: cannot list users");
        goto out;
    }
    sum->users_seen = col.seen;
    for (size_t i = 0; i < col.n; i++)
        if (do_user(&r, &col.v[i]) != 0)
            failed = 1; /* go on: one bad record must not stall everyone else */
    /* Sessions are removed a day after they expired, not at once: an expired session
     * is refused on every request anyway, and keeping it lets the login page tell a
     * returning user why they were signed out (idle or lifetime). */
    int n = sk_store_session_sweep(store, conf->idle_timeout + SK_SWEEP_SESSION_GRACE,
                                   conf->absolute_timeout + SK_SWEEP_SESSION_GRACE, now);
    if (n < 0) {
        sk_log(SK_LOG_ERR, "sweep: cannot remove expired sessions");
        failed = 1;
    } else {
        sum->sessions_removed = n;
        emit(&r, SK_SWEEP_SESSIONS, "", "", "", "", "", n);
    }
    ret = failed ? -1 : 0;
out:
    free(col.v);
    return ret;
}
