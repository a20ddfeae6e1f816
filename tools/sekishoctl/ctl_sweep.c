/*
 * sekishoctl sweep [--now EPOCH]
 *
 * One pass of sk_sweep_run (dormancy reminders, locks, deletions, expired
 * sessions). Prints one line per action and a summary; exits 1 when the store
 * failed or a mail could not be sent, so that cron reports it.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "sk_admin_audit.h"
#include "sk_store.h"
#include "sk_sweep.h"

static const char usage_sweep[] = "sweep [--now EPOCH]";

void ctl_sweep_usage_to(FILE *f)
{
    fprintf(f, "  %s\n", usage_sweep);
}

void ctl_sweep_usage(void)
{
    ctl_sweep_usage_to(stderr);
}

struct sweep_ctx {
    sk_adm_audit *log;
    unsigned audit_failed;
};

/* Every step is audited as the gateway's in-process sweep does it
 * (gateway/main.c on_sweep: same events and details), plus who ran it. The
 * step is already committed when this runs; a failed append is counted and
 * makes the command fail. */
static void audit_step(struct sweep_ctx *c, const sk_sweep_event *ev)
{
    char count[16];
    sk_audit_kv kv[] = { { "action", sk_sweep_action_name(ev->action) }, { "role", ev->role },
                         { "recipient", ev->recipient }, { "detail", ev->detail },
                         { "count", count } };
    if (sk_snprintf(count, sizeof count, "%d", ev->count) != 0)
        count[0] = '\0';
    if (ctl_log_event(c->log, ev->action == SK_SWEEP_SESSIONS ? "session.sweep"
                                                              : "account.dormancy",
                      ev->id && ev->id[0] ? ev->id : NULL,
                      ev->tenant && ev->tenant[0] ? ev->tenant : NULL, kv,
                      SK_ARRAY_LEN(kv)) != CTL_OK)
        c->audit_failed++;
}

static void report(const sk_sweep_event *ev, void *ctx)
{
    audit_step(ctx, ev);
    switch (ev->action) {
    case SK_SWEEP_NOTIFIED:
        printf("notified %s/%s (%s): dormancy reminder recorded\n", ev->tenant, ev->id, ev->role);
        break;
    case SK_SWEEP_LOCKED:
        printf("locked %s/%s (%s): dormant; %d session(s) ended\n", ev->tenant, ev->id, ev->role,
               ev->count);
        break;
    case SK_SWEEP_DELETED:
        printf("deleted %s/%s (%s): dormant and locked too long\n", ev->tenant, ev->id, ev->role);
        break;
    case SK_SWEEP_MAILED:
        printf("mailed %s/%s: %s to %s\n", ev->tenant, ev->id, ev->detail, ev->recipient);
        break;
    case SK_SWEEP_MAIL_FAILED:
        printf("mail-failed %s/%s: %s to %s\n", ev->tenant, ev->id, ev->detail,
               ev->recipient[0] ? ev->recipient : "(no recipient configured)");
        break;
    case SK_SWEEP_SESSIONS:
        printf("sessions: %d expired session(s) removed\n", ev->count);
        break;
    }
}

int ctl_sweep_main(const sk_conf *conf, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "now", required_argument, NULL, 'n' },
        { NULL, 0, NULL, 0 },
    };
    int64_t now = ctl_now();
    int c, now_given = 0, ret = CTL_REFUSED;
    uint64_t v = 0;
    sk_store *s = NULL;
    sk_sweep_summary sum;
    struct sweep_ctx sc = { 0 };

    opterr = 0;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        if (c == 'n' && !now_given) {
            if (sk_parse_u64(optarg, 1, (uint64_t)INT64_MAX / 2, &v) != 0) {
                ctl_err("sweep: --now needs seconds since the epoch, not '%s'", optarg);
                fprintf(stderr, "usage: sekishoctl [-c FILE] %s\n", usage_sweep);
                return CTL_USAGE;
            }
            now = (int64_t)v;
            now_given = 1;
            continue;
        }
        ctl_err("sweep: %s '%s'", c == 'n' ? "option given twice:" :
                c == ':' ? "option needs a value:" : "unknown option", argv[optind - 1]);
        fprintf(stderr, "usage: sekishoctl [-c FILE] %s\n", usage_sweep);
        return CTL_USAGE;
    }
    if (optind < argc) {
        ctl_err("sweep: unexpected argument '%s'", argv[optind]);
        fprintf(stderr, "usage: sekishoctl [-c FILE] %s\n", usage_sweep);
        return CTL_USAGE;
    }
    if (ctl_log_open(conf, &sc.log) != CTL_OK)
        goto out;
    int rc = ctl_store_open(conf, 0, &s, "user");
    if (rc != SK_STORE_OK)
        goto out;
    memset(&sum, 0, sizeof sum);
    rc = sk_sweep_run(conf, s, now, report, &sc, &sum);
    {
        char n[7][24], at[32];
        unsigned v8[] = { sum.users_seen, sum.notified, sum.locked, sum.deleted,
                          sum.mails_sent, sum.mail_failed };
        for (size_t i = 0; i < SK_ARRAY_LEN(v8); i++)
            if (sk_snprintf(n[i], sizeof n[i], "%u", v8[i]) != 0)
                n[i][0] = '\0';
        if (sk_snprintf(n[6], sizeof n[6], "%d", sum.sessions_removed) != 0)
            n[6][0] = '\0';
        ctl_time_str(now, at, sizeof at);
        sk_audit_kv kv[] = { { "now", at }, { "now_given", now_given ? "yes" : "no" },
                             { "users_checked", n[0] }, { "notified", n[1] },
                             { "locked", n[2] }, { "deleted", n[3] }, { "mails_sent", n[4] },
                             { "mail_failures", n[5] }, { "sessions_removed", n[6] },
                             { "result", rc != 0 ? "incomplete" : "ok" } };
        if (ctl_log_change(sc.log, "sweep", NULL, kv, SK_ARRAY_LEN(kv)) != CTL_OK)
            sc.audit_failed++;
    }
    printf("sweep: %u user(s) checked, %u notified, %u locked, %u deleted, %u mail(s) sent, "
           "%u mail failure(s), %d expired session(s) removed\n",
           sum.users_seen, sum.notified, sum.locked, sum.deleted, sum.mails_sent,
           sum.mail_failed, sum.sessions_removed);
    if (rc != 0) {
        ctl_err("sweep: the user database could not be updated completely (see the log)");
        goto out;
    }
    if (sc.audit_failed > 0) {
        ctl_err("sweep: %u audit entr%s could not be written", sc.audit_failed,
                sc.audit_failed == 1 ? "y" : "ies");
        goto out;
    }
    if (sum.mail_failed > 0) {
        ctl_err("sweep: %u notification(s) could not be sent", sum.mail_failed);
        goto out;
    }
    ret = CTL_OK;
out:
    sk_store_close(s);
    ctl_log_close(sc.log);
    return ret;
}
