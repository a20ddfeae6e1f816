/* sekisho — the gateway executable: configuration, wiring, signals. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "sk_audit.h"
#include "sk_auth.h"
#include "sk_conf.h"
#include "sk_http.h"
#include "sk_net.h"
#include "sk_notify.h"
#include "sk_proxy.h"
#include "sk_sdnotify.h"
#include "sk_store.h"
#include "sk_sweep.h"
#include "sk_util.h"

#define PRUNE_EVERY_SECONDS 86400
#define SWEEP_EVERY_SECONDS 86400
#define SWEEP_FIRST_AFTER 60

static void usage(FILE *f)
{
    fprintf(f, "usage: sekisho -c FILE [-t | -T]\n"
               "  -c, --config FILE  configuration file (INI)\n"
               "  -t, --test         check the configuration and exit (0 valid, 1 invalid); run it as\n"
               "                     the service user: it also checks that user can use the files\n"
               "  -T, --dump         check, then print the effective configuration (defaults included)\n"
               "  -V, --version      print the version\n"
               "  SIGHUP reloads certificates and the CRL; SIGTERM drains and exits.\n");
}

/* Mail queued by request threads and sent by the maintenance thread: sendmail may
 * take seconds, and a request must never wait for it. Bounded; overflow is logged. */
#define MAILQ_LEN 64
struct mail {
    int level;     /* enum sk_notify_level; SK_NOTIFY_PERSONAL for a user's own mail */
    char to[256];
    char subject[160];
    char body[1024];
};

struct gateway {
    sk_conf conf;
    struct mail mailq[MAILQ_LEN];
    unsigned mail_head, mail_count;
    sk_audit *audit;
    pthread_t maint_thread;
    int maint_started;
    pthread_mutex_t maint_lock;
    pthread_cond_t maint_cond;
    int stopping;
    sk_store *store;
    sk_auth_pool *auth;
    sk_auth_config auth_cfg;
    sk_proxy *proxy;
    sk_http *http;
    sk_net *net;
};

static int check_only(const sk_conf *conf)
{
    char err[1024];
    /* Files first: "not readable by user sekisho" says more than a TLS error. */
    if (sk_conf_check_access(conf, err, sizeof err) != 0) {
        fprintf(stderr, "sekisho: %s\n", err);
        return 1;
    }
    (void)sk_conf_warnings(conf, stderr);
    if (sk_net_check_conf(conf, err, sizeof err) != 0) {
        fprintf(stderr, "sekisho: %s: %s\n", conf->file, err);
        return 1;
    }
    printf("sekisho: configuration %s is valid\n", conf->file);
    return 0;
}

static void audit_simple(struct gateway *g, const char *ev, const sk_audit_kv *kv, size_t n)
{
    sk_audit_event e = { 0 };
    e.event = ev;
    e.actor = "sekisho";
    e.kv = kv;
    e.n_kv = n;
    if (g->audit != NULL && sk_audit_append(g->audit, &e, 1, NULL) != 0)
        sk_log(SK_LOG_ERR, "AUDIT WRITE FAILED for event %s", ev);
}

static void on_refused(void *arg, const char *peer, const char *reason, const char *serial)
{
    struct gateway *g = arg;
    if (sk_audit_refused(g->audit, peer, reason, serial) != 0)
        sk_log(SK_LOG_ERR, "AUDIT WRITE FAILED for a handshake refusal");
}

static void on_reloaded(void *arg, int ok, size_t revoked, const char *why)
{
    struct gateway *g = arg;
    char count[24];
    sk_audit_kv kv[] = { { "result", ok ? "ok" : "failed" }, { "revoked_serials", count }, { "trigger", why } };
    if (sk_snprintf(count, sizeof count, "%zu", revoked) != 0)
        count[0] = '\0';
    audit_simple(g, SK_AUDIT_EV_CRL_RELOAD, kv, SK_ARRAY_LEN(kv));
}

static void queue_mail(void *arg, const char *to, int level, const char *subject, const char *body)
{
    struct gateway *g = arg;
    struct mail *m;
    const char *rcpt = to ? to : sk_conf_operators_for(&g->conf, level);
    if (rcpt[0] == '\0')
        return; /* nobody to tell: the log line and the audit entry remain */
    pthread_mutex_lock(&g->maint_lock);
    if (g->mail_count == MAILQ_LEN) {
        pthread_mutex_unlock(&g->maint_lock);
        sk_log(SK_LOG_ERR, "mail queue full, dropped: %s", subject);
        return;
    }
    m = &g->mailq[(g->mail_head + g->mail_count) % MAILQ_LEN];
    m->level = to ? SK_NOTIFY_PERSONAL : level;
    if (sk_strlcpy(m->to, sizeof m->to, rcpt) != 0 || sk_strlcpy(m->subject, sizeof m->subject, subject) != 0 ||
        sk_strlcpy(m->body, sizeof m->body, body) != 0) {
        pthread_mutex_unlock(&g->maint_lock);
        sk_log(SK_LOG_ERR, "mail too large, dropped: %s", subject);
        return;
    }
    g->mail_count++;
    pthread_cond_signal(&g->maint_cond);
    pthread_mutex_unlock(&g->maint_lock);
}

/* systemd (Type=notify): a lost notification is logged, never fatal. */
static void sd_notified(int rc, const char *what)
{
    if (rc != 0)
        sk_log(SK_LOG_WARN, "systemd notification %s failed: %s", what, strerror(errno));
}

/* Called with maint_lock held; releases it while sending. */
static void send_queued_mail(struct gateway *g)
{
    while (g->mail_count > 0) {
        struct mail m = g->mailq[g->mail_head];
        struct sk_notify_msg msg = { g->conf.notify_from[0] ? g->conf.notify_from : NULL, m.to, m.subject, m.body };
        g->mail_head = (g->mail_head + 1) % MAILQ_LEN;
        g->mail_count--;
        pthread_mutex_unlock(&g->maint_lock);
        sd_notified(sk_sdnotify_watchdog_tick(), "WATCHDOG=1"); /* a mail may take SK_NOTIFY_TIMEOUT */
        if (sk_notify_send_level(g->conf.notify_command, &msg, m.level) != 0)
            sk_log(SK_LOG_ERR, "mail to %s failed: %s", m.to, m.subject);
        pthread_mutex_lock(&g->maint_lock);
    }
}

/* Every dormancy step is audited as it is committed (the sweep itself guarantees a
 * step happens once however often it runs). */
static void on_sweep(const sk_sweep_event *ev, void *arg)
{
    struct gateway *g = arg;
    char count[16];
    sk_audit_kv kv[] = { { "action", sk_sweep_action_name(ev->action) }, { "role", ev->role },
                         { "recipient", ev->recipient }, { "detail", ev->detail }, { "count", count } };
    sk_audit_event e = { 0 };
    if (sk_snprintf(count, sizeof count, "%d", ev->count) != 0)
        count[0] = '\0';
    e.event = ev->action == SK_SWEEP_SESSIONS ? "session.sweep" : "account.dormancy";
    e.actor = ev->id && ev->id[0] ? ev->id : "sekisho";
    e.tenant = ev->tenant && ev->tenant[0] ? ev->tenant : NULL;
    e.kv = kv;
    e.n_kv = SK_ARRAY_LEN(kv);
    if (sk_audit_append(g->audit, &e, 1, NULL) != 0)
        sk_log(SK_LOG_ERR, "AUDIT WRITE FAILED for a sweep event");
}

static void run_sweep(struct gateway *g)
{
    sk_sweep_summary sum;
    memset(&sum, 0, sizeof sum);
    if (sk_sweep_run(&g->conf, g->store, (int64_t)time(NULL), on_sweep, g, &sum) != 0) {
        sk_log(SK_LOG_ERR, "dormancy sweep failed");
        return;
    }
    sk_log(SK_LOG_INFO, "sweep: %u users, %u reminded, %u locked, %u deleted, %d sessions expired", sum.users_seen,
           sum.notified, sum.locked, sum.deleted, sum.sessions_removed);
}

/* Housekeeping off the request path: group-commit and checkpoints of the audit log
 * every second, retention once a day. */
#define CLOCK_CHECK_EVERY 60

/* TOTP windows, lockout and idle timeouts and audit times assume a synchronised
 * clock: the operators hear when it is not (at start, and whenever it is lost). */
static void check_clock(struct gateway *g, int *was_synced)
{
    int synced = sk_clock_synced();
    if (synced == *was_synced)
        return;
    if (synced == 0) {
        sk_log(SK_LOG_WARN, "system clock not synchronised (NTP): TOTP codes, lockout windows, timeouts and "
                            "audit times depend on it; operators alarmed");
        queue_mail(g, NULL, SK_NOTIFY_MAJOR, "Sekisho ALARM: system clock not synchronised",
                   "The kernel reports the system clock as not synchronised (adjtimex: STA_UNSYNC).\n"
                   "TOTP codes, lockout windows, idle timeouts and audit times depend on it.\n"
                   "Check the time service (systemd-timesyncd, chrony or ntpd) on this host.\n");
    } else if (synced == 1 && *was_synced == 0) {
        sk_log(SK_LOG_INFO, "the system clock is synchronised again");
    }
    *was_synced = synced;
}

static void *maint_main(void *arg)
{
    struct gateway *g = arg;
    time_t last_prune = time(NULL);
    time_t next_clock_check = 0;
    int clock_synced = 1; /* what start assumes: a clock found unsynchronised is reported */
    time_t next_sweep = time(NULL) + SWEEP_FIRST_AFTER;
    pthread_mutex_lock(&g->maint_lock);
    while (!g->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        (void)pthread_cond_timedwait(&g->maint_cond, &g->maint_lock, &ts);
        sd_notified(sk_sdnotify_watchdog_tick(), "WATCHDOG=1");
        send_queued_mail(g);
        if (g->stopping)
            break;
        if (sk_audit_flush(g->audit) != 0)
            sk_log(SK_LOG_ERR, "audit flush failed");
        if (time(NULL) >= next_clock_check) {
            next_clock_check = time(NULL) + CLOCK_CHECK_EVERY;
            pthread_mutex_unlock(&g->maint_lock);
            check_clock(g, &clock_synced);
            sk_http_census(g->http); /* same minute: sessions and locked accounts */
            pthread_mutex_lock(&g->maint_lock);
        }
        if (time(NULL) >= next_sweep) {
            next_sweep = time(NULL) + SWEEP_EVERY_SECONDS;
            pthread_mutex_unlock(&g->maint_lock);
            run_sweep(g);
            pthread_mutex_lock(&g->maint_lock);
        }
        if (time(NULL) - last_prune >= PRUNE_EVERY_SECONDS) {
            unsigned removed = 0;
            last_prune = time(NULL);
            if (sk_audit_prune(g->audit, &removed) != 0)
                sk_log(SK_LOG_ERR, "audit retention pruning failed");
        }
    }
    pthread_mutex_unlock(&g->maint_lock);
    return NULL;
}

/* The first start creates the signing key (and KEY.pub for auditors) when neither
 * exists; a lone KEY.pub means the key was removed, which must not be papered over. */
static int open_audit(struct gateway *g)
{
    sk_audit_options o;
    char pub[SK_CONF_PATH_MAX + 8], err[512];
    int have_key = access(g->conf.audit_key, F_OK) == 0;

    if (sk_snprintf(pub, sizeof pub, "%s.pub", g->conf.audit_key) != 0)
        return -1;
    if (!have_key && access(pub, F_OK) != 0) {
        if (sk_audit_keygen(g->conf.audit_key, g->conf.audit_dir, err, sizeof err) != 0) {
            sk_log(SK_LOG_ERR, "cannot create the audit key %s: %s", g->conf.audit_key, err);
            return -1;
        }
        sk_log(SK_LOG_WARN, "created audit signing key %s; give %s to the auditors", g->conf.audit_key, pub);
    }
    memset(&o, 0, sizeof o);
    o.dir = g->conf.audit_dir;
    o.key_path = g->conf.audit_key;
    o.retention_secs = g->conf.audit_retention;
    o.epoch_secs = (uint32_t)g->conf.audit_epoch;
    o.witness = g->conf.audit_witness;
    o.notify_command = g->conf.notify_command;
    o.notify_to = g->conf.notify_operators;
    o.notify_from = g->conf.notify_from;
    if (sk_audit_open(&o, &g->audit, err, sizeof err) != 0) {
        sk_log(SK_LOG_ERR, "cannot open the audit log in %s: %s", g->conf.audit_dir, err);
        return -1;
    }
    return 0;
}

static int start(struct gateway *g)
{
    sk_http_deps deps;

    if (sk_mkdir_p(g->conf.state_dir, 0700) != 0) {
        sk_log(SK_LOG_ERR, "cannot create state directory %s: %s", g->conf.state_dir, strerror(errno));
        return -1;
    }
    if (sk_notify_set_outbox(g->conf.notify_outbox) != 0) {
        sk_log(SK_LOG_ERR, "cannot use the mail outbox %s: %s", g->conf.notify_outbox, strerror(errno));
        return -1;
    }
    pthread_mutex_init(&g->maint_lock, NULL);
    pthread_cond_init(&g->maint_cond, NULL);
    if (open_audit(g) != 0)
        return -1;
    if (sk_store_open(g->conf.state_dir, 0, &g->store) != SK_STORE_OK) {
        sk_log(SK_LOG_ERR, "cannot open the store in %s", g->conf.state_dir);
        return -1;
    }
    if (sk_auth_config_from_conf(&g->conf, &g->auth_cfg) != 0) {
        sk_log(SK_LOG_ERR, "[auth] settings do not fit");
        return -1;
    }
    if (sk_auth_pool_create(g->conf.auth_workers, g->conf.auth_queue > 0 ? g->conf.auth_queue : 1, &g->auth_cfg,
                            &g->auth) != 0) {
        sk_log(SK_LOG_ERR, "cannot start the login workers");
        return -1;
    }
    if (sk_proxy_create(&g->conf, &g->proxy) != 0)
        return -1;
    memset(&deps, 0, sizeof deps);
    deps.conf = &g->conf;
    deps.store = g->store;
    deps.auth = g->auth;
    deps.auth_cfg = &g->auth_cfg;
    deps.proxy = g->proxy;
    deps.audit = g->audit;
    deps.notify = queue_mail;
    deps.notify_arg = g;
    if (sk_http_create(&deps, &g->http) != 0)
        return -1;
    {
        sk_net_app app = { sk_http_worker_open, sk_http_worker_run, sk_http_worker_pending, sk_http_worker_close,
                           sk_http_conn_open,   sk_http_conn_busy,  sk_http_conn_close,     g->http };
        if (sk_net_create(&g->conf, &app, &g->net) != 0)
            return -1;
    }
    {
        sk_net_hooks hooks = { on_refused, on_reloaded, g };
        sk_net_set_hooks(g->net, &hooks);
    }
    sk_http_set_net(g->http, g->net);
    if (sk_http_metrics_start(g->http) != 0)
        return -1;
    if (pthread_create(&g->maint_thread, NULL, maint_main, g) != 0)
        return -1;
    g->maint_started = 1;
    if (sk_net_start(g->net) != 0)
        return -1;
    {
        sk_audit_kv kv[] = { { "listen", g->conf.listen_address }, { "upstream", g->conf.upstream_url } };
        audit_simple(g, SK_AUDIT_EV_START, kv, SK_ARRAY_LEN(kv));
    }
    return 0;
}

/* SIGHUP: certificates, client CA and CRL are reloaded live (connections stay).
 * The file is re-read and validated too; settings that differ from the running
 * ones are named in the log and the audit log as needing a restart, rather than
 * applied halfway or ignored in silence. */
static void reload(struct gateway *g)
{
    static sk_conf fresh; /* only the signal thread uses it */
    char err[2048];
    const char *result = "ok", *restart = "no";
    sk_audit_kv kv[3];

    sk_log(SK_LOG_INFO, "SIGHUP: reloading certificates and CRL, checking %s", g->conf.file);
    if (sk_conf_load(g->conf.file, &fresh, err, sizeof err) != 0) {
        sk_log(SK_LOG_ERR, "configuration not reloaded: %s", err);
        result = "invalid";
    } else if (memcmp(&fresh, &g->conf, sizeof fresh) != 0) {
        sk_log(SK_LOG_WARN, "%s changed; certificates and the CRL were reloaded, other settings take effect "
                            "after a restart", g->conf.file);
        restart = "yes";
    }
    if (sk_net_reload(g->net) != 0) {
        sk_log(SK_LOG_WARN, "reload failed; still serving with the previous certificates and CRL");
        result = "tls_failed";
    }
    kv[0] = (sk_audit_kv){ "result", result };
    kv[1] = (sk_audit_kv){ "restart_needed", restart };
    kv[2] = (sk_audit_kv){ "file", g->conf.file };
    audit_simple(g, SK_AUDIT_EV_CONFIG_RELOAD, kv, SK_ARRAY_LEN(kv));
}

static void stop(struct gateway *g)
{
    int cut = 0;
    /* Drain: stop accepting; each connection ends after its request in flight (idle
     * keep-alive ones at once); what is still busy after the grace period is closed.
     * When sk_net_stop returns, every worker has ended, so the rest is freed in order. */
    if (g->net != NULL)
        cut = sk_net_stop(g->net, (int)g->conf.drain_timeout);
    if (cut > 0)
        sk_log(SK_LOG_WARN, "%d connections still busy after %lld s were closed", cut,
               (long long)g->conf.drain_timeout);
    sk_http_destroy(g->http);
    sk_net_destroy(g->net);
    if (g->maint_started) {
        pthread_mutex_lock(&g->maint_lock);
        g->stopping = 1;
        pthread_cond_signal(&g->maint_cond);
        pthread_mutex_unlock(&g->maint_lock);
        pthread_join(g->maint_thread, NULL);
    }
    if (g->audit != NULL) {
        /* Pending refusal summaries belong before the stop entry. */
        if (sk_audit_flush(g->audit) != 0)
            sk_log(SK_LOG_ERR, "audit flush failed");
        audit_simple(g, SK_AUDIT_EV_STOP, NULL, 0);
        sk_audit_close(g->audit); /* writes the final signed checkpoint */
    }
    sk_auth_pool_destroy(g->auth);
    sk_proxy_destroy(g->proxy);
    sk_store_close(g->store);
}

int main(int argc, char **argv)
{
    static struct gateway g;
    const char *conf_path = NULL;
    char err[2048];
    int opt, test = 0, rc = 1;
    sigset_t sigs;

    static const struct option longopts[] = {
        { "config", required_argument, NULL, 'c' }, { "test", no_argument, NULL, 't' },
        { "help", no_argument, NULL, 'h' },         { "version", no_argument, NULL, 'V' },
        { "dump", no_argument, NULL, 'T' },
        { NULL, 0, NULL, 0 },
    };
    while ((opt = getopt_long(argc, argv, "c:thVT", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c': conf_path = optarg; break;
        case 't': test = 1; break;
        case 'T': test = 2; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("sekisho %s\n", SEKISHO_VERSION); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (conf_path == NULL || optind != argc) {
        usage(stderr);
        return 2;
    }
    if (sk_conf_load(conf_path, &g.conf, err, sizeof err) != 0 ||
        sk_conf_check_gateway(&g.conf, err, sizeof err) != 0) {
        fprintf(stderr, "sekisho: %s\n", err);
        return 1;
    }
    sk_log_set_level((enum sk_log_level)g.conf.log_level);
    if (test == 2) {
        if (sk_conf_dump(&g.conf, stdout) != 0) {
            fprintf(stderr, "sekisho: cannot write the configuration to standard output\n");
            return 1;
        }
        return 0;
    }
    if (test)
        return check_only(&g.conf);

    /* Every thread inherits this mask; signals are taken synchronously below. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (start(&g) != 0)
        goto out;
    sk_log(SK_LOG_INFO, "sekisho started; upstream %s", g.conf.upstream_url);
    sd_notified(sk_sdnotify_ready(), "READY=1");
    for (;;) {
        int sig = 0;
        if (sigwait(&sigs, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            sd_notified(sk_sdnotify_reloading(), "RELOADING=1");
            reload(&g);
            sd_notified(sk_sdnotify_ready(), "READY=1");
            continue;
        }
        sk_log(SK_LOG_INFO, "signal %d: draining and stopping", sig);
        sd_notified(sk_sdnotify_stopping(), "STOPPING=1");
        break;
    }
    rc = 0;
out:
    stop(&g);
    if (rc == 0)
        sk_log(SK_LOG_INFO, "stopped");
    return rc;
}
