/* netproc.c — the network process: TLS, HTTP and the upstream, started by the
 * monitor with the listening socket and its channels to authd. It holds the server
 * key and nothing else secret: accounts and sessions are authd's (sk_authd.h). */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sk_admit.h"
#include "sk_audit.h"
#include "sk_auth.h"
#include "sk_authd.h"
#include "sk_conf.h"
#include "sk_http.h"
#include "sk_net.h"
#include "sk_notify.h"
#include "sk_proxy.h"
#include "sk_netproc.h"
#include "sk_util.h"
#include "sk_wire_auth.h"



/* Mail queued by request threads and sent by the maintenance thread: sendmail may
 * take seconds, and a request must never wait for it. Bounded; overflow is logged. */
#define MAILQ_LEN 64
struct mail {
    int level;     /* enum sk_notify_level: the operators of that level */
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
    sk_auth_pool *auth;       /* runs the request jobs that wait (for authd) */
    sk_auth_config auth_cfg;
    sk_wire_client *authd_client;
    const volatile uint64_t *authd_generation;
    int (*sandbox)(void *arg);
    void *sandbox_arg;
    int listen_fd;
    sk_proxy *proxy;
    sk_http *http;
    sk_net *net;
    int64_t keys_rotate;      /* authd's ticket key rotation period */
    const sk_netproc_fds *fds;
    sk_admit *admit;          /* the shared admission table, this process's column */
};


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

/* Only the operators: a user's own mail (a lock notice, a dormancy reminder) is
 * authd's, which read the address from the store; the monitor refuses personal
 * mail from a network process. */
static void queue_mail(struct gateway *g, int level, const char *subject, const char *body)
{
    struct mail *m;
    const char *rcpt = sk_conf_operators_for(&g->conf, level);
    if (rcpt[0] == '\0')
        return; /* nobody to tell: the log line and the audit entry remain */
    pthread_mutex_lock(&g->maint_lock);
    if (g->mail_count == MAILQ_LEN) {
        pthread_mutex_unlock(&g->maint_lock);
        sk_log(SK_LOG_ERR, "mail queue full, dropped: %s", subject);
        return;
    }
    m = &g->mailq[(g->mail_head + g->mail_count) % MAILQ_LEN];
    m->level = level;
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

/* Called with maint_lock held; releases it while sending. */
static void send_queued_mail(struct gateway *g)
{
    while (g->mail_count > 0) {
        struct mail m = g->mailq[g->mail_head];
        struct sk_notify_msg msg = { g->conf.notify_from[0] ? g->conf.notify_from : NULL, m.to, m.subject, m.body };
        g->mail_head = (g->mail_head + 1) % MAILQ_LEN;
        g->mail_count--;
        pthread_mutex_unlock(&g->maint_lock);
        if (sk_notify_send_level(g->conf.notify_command, &msg, m.level) != 0)
            sk_log(SK_LOG_ERR, "mail to %s failed: %s", m.to, m.subject);
        pthread_mutex_lock(&g->maint_lock);
    }
}


/* Housekeeping off the request path: queued mail, the clock and the census once a
 * minute. The audit log's group commit, checkpoints and retention are auditd's. */
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
        queue_mail(g, SK_NOTIFY_MAJOR, "Sekisho ALARM: system clock not synchronised",
                   "The kernel reports the system clock as not synchronised (adjtimex: STA_UNSYNC).\n"
                   "TOTP codes, lockout windows, idle timeouts and audit times depend on it.\n"
                   "Check the time service (systemd-timesyncd, chrony or ntpd) on this host.\n");
    } else if (synced == 1 && *was_synced == 0) {
        sk_log(SK_LOG_INFO, "the system clock is synchronised again");
    }
    *was_synced = synced;
}

/* The CSRF and ticket keys from authd (the store): the same in every network
 * process and node. 0, or -1 (logged). rep holds secrets: the caller wipes it. */
static int ask_keys(struct gateway *g, sk_wire_keys_rep *rep)
{
    uint8_t none = 0;
    if (sk_authd_call(g->authd_client, SK_WIRE_AUTH_KEYS, &none, rep, 10000) != 0) {
        sk_log(SK_LOG_ERR, "cannot get the shared CSRF and TLS ticket keys from authd");
        return -1;
    }
    return 0;
}

/* Hand rep's ticket keys to the TLS layer and note the rotation period. 0 or -1. */
static int use_ticket_keys(struct gateway *g, const sk_wire_keys_rep *rep)
{
    sk_net_ticket_key keys[SK_NET_TICKET_KEYS_MAX];
    int rc;
    for (uint32_t i = 0; i < rep->n_tickets && i < SK_NET_TICKET_KEYS_MAX; i++) {
        memcpy(keys[i].name, rep->ticket[i].name, sizeof keys[i].name);
        memcpy(keys[i].aes, rep->ticket[i].aes, sizeof keys[i].aes);
        memcpy(keys[i].hmac, rep->ticket[i].hmac, sizeof keys[i].hmac);
    }
    rc = sk_net_set_ticket_keys(g->net, keys, rep->n_tickets);
    sk_wipe(keys, sizeof keys);
    if (rc == 0)
        g->keys_rotate = rep->rotate_every; /* start, then the housekeeping thread alone */
    return rc;
}

/* The housekeeping thread's refresh: a rotation elsewhere reaches this process. */
static void refresh_keys(struct gateway *g)
{
    static sk_wire_keys_rep rep; /* only the housekeeping thread */
    if (ask_keys(g, &rep) == 0 && use_ticket_keys(g, &rep) != 0)
        sk_log(SK_LOG_ERR, "the refreshed TLS ticket keys were refused; the previous ones stay");
    sk_wipe(&rep, sizeof rep);
}

/* Ask for the keys well within a rotation period, so a new key is in use on every
 * node long before the oldest one falls off. */
static int64_t keys_refresh_every(int64_t rotate)
{
    int64_t every = rotate / 4;
    return every < 1 ? 1 : every > 60 ? 60 : every;
}

static void *maint_main(void *arg)
{
    struct gateway *g = arg;
    time_t next_clock_check = 0, next_keys = time(NULL) + (time_t)keys_refresh_every(g->keys_rotate);
    int clock_synced = 1; /* what start assumes: a clock found unsynchronised is reported */
    pthread_mutex_lock(&g->maint_lock);
    while (!g->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        (void)pthread_cond_timedwait(&g->maint_cond, &g->maint_lock, &ts);
        send_queued_mail(g);
        if (g->stopping)
            break;
        pthread_mutex_unlock(&g->maint_lock);
        sk_http_publish(g->http); /* for the other processes' /metrics */
        pthread_mutex_lock(&g->maint_lock);
        if (time(NULL) >= next_clock_check) {
            next_clock_check = time(NULL) + CLOCK_CHECK_EVERY;
            pthread_mutex_unlock(&g->maint_lock);
            check_clock(g, &clock_synced);
            sk_http_census(g->http); /* same minute: sessions and locked accounts */
            pthread_mutex_lock(&g->maint_lock);
        }
        if (time(NULL) >= next_keys) {
            pthread_mutex_unlock(&g->maint_lock);
            refresh_keys(g);
            next_keys = time(NULL) + (time_t)keys_refresh_every(g->keys_rotate);
            pthread_mutex_lock(&g->maint_lock);
        }
    }
    send_queued_mail(g); /* stopping may have been set while this thread was busy */
    pthread_mutex_unlock(&g->maint_lock);
    return NULL;
}

/* Several network processes: this one's slot of the shared counters (its gauges
 * start from 0, its counters go on from its predecessor's) and of the admission
 * table (whatever a predecessor left counted there is released); the [metrics]
 * listener the monitor bound. */
static int share(struct gateway *g)
{
    const sk_netproc_fds *f = g->fds;
    if (f->metrics_fd >= 0)
        sk_http_metrics_use_listener(g->http, f->metrics_fd);
    if (f->slots == NULL || f->admit_region == NULL)
        return 0;
    sk_http_slot_restart(&f->slots[f->slot]);
    sk_http_set_shared(g->http, f->slots, f->n_slots, f->slot);
    if (sk_admit_attach(f->admit_region, f->n_slots, f->slot, g->conf.handshakes_per_address, &g->admit) != 0) {
        sk_log(SK_LOG_ERR, "%s: cannot use the shared admission table", f->title);
        return -1;
    }
    if (sk_admit_clear_slot(g->admit, f->slot, 1) != 0)
        sk_log(SK_LOG_WARN, "%s: the admission table stays locked by another process; counts of the "
                            "previous %s were not released", f->title, f->title);
    return 0;
}

static int start(struct gateway *g)
{
    sk_http_deps deps;
    sk_wire_keys_rep kr, *keys = &kr;
    int rc;

    pthread_mutex_init(&g->maint_lock, NULL);
    pthread_cond_init(&g->maint_cond, NULL);
    if (sk_auth_config_from_conf(&g->conf, &g->auth_cfg) != 0) {
        sk_log(SK_LOG_ERR, "[auth] settings do not fit");
        return -1;
    }
    if (sk_proxy_create(&g->conf, &g->proxy) != 0)
        return -1;
    memset(&deps, 0, sizeof deps);
    deps.conf = &g->conf;
    deps.authd = g->authd_client;
    deps.authd_generation = g->authd_generation;
    deps.auth_cfg = &g->auth_cfg;
    deps.proxy = g->proxy;
    deps.audit = g->audit;
    /* One round trip at start: the CSRF key for HTTP now, the ticket keys for TLS
     * once that layer exists. */
    if (ask_keys(g, keys) != 0)
        goto fail;
    deps.csrf_key = keys->csrf;
    if (sk_http_create(&deps, &g->http) != 0 || share(g) != 0)
        goto fail;
    {
        sk_net_app app = { sk_http_worker_open, sk_http_worker_run, sk_http_worker_pending, sk_http_worker_close,
                           sk_http_conn_open,   sk_http_conn_busy,  sk_http_conn_close,     g->http };
        if (sk_net_create(&g->conf, &app, &g->net) != 0)
            goto fail;
    }
    {
        sk_net_hooks hooks = { on_refused, on_reloaded, g };
        sk_net_set_hooks(g->net, &hooks);
    }
    rc = use_ticket_keys(g, keys);
    sk_wipe(keys, sizeof *keys);
    if (rc != 0)
        return -1;
    sk_http_set_net(g->http, g->net);
    if (g->fds->slots != NULL)
        sk_net_set_shared(g->net, &g->fds->slots[g->fds->slot].net, g->admit);
    sk_net_use_listener(g->net, g->listen_fd);
    g->listen_fd = -1; /* the net module owns it now */
    if (sk_http_metrics_bind(g->http) != 0)
        return -1;
    if (g->sandbox != NULL && g->sandbox(g->sandbox_arg) != 0)
        return -1;
    /* Threads start from here on. */
    if (sk_auth_pool_create(g->conf.auth_workers, g->conf.auth_queue > 0 ? g->conf.auth_queue : 1, &g->auth_cfg,
                            &g->auth) != 0) {
        sk_log(SK_LOG_ERR, "cannot start the request job workers");
        return -1;
    }
    sk_http_set_auth_pool(g->http, g->auth);
    if (sk_http_metrics_start(g->http) != 0)
        return -1;
    if (pthread_create(&g->maint_thread, NULL, maint_main, g) != 0)
        return -1;
    g->maint_started = 1;
    if (sk_net_start(g->net) != 0)
        return -1;
    {
        /* One per network process (and per restart of one): instance tells them apart. */
        sk_audit_kv kv[] = { { "listen", g->conf.listen_address }, { "upstream", g->conf.upstream_url },
                             { "instance", g->fds->title != NULL ? g->fds->title : "sekisho-net" } };
        audit_simple(g, SK_AUDIT_EV_START, kv, SK_ARRAY_LEN(kv));
    }
    return 0;
fail:
    sk_wipe(keys, sizeof *keys);
    return -1;
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
    /* The housekeeping thread uses both (metrics, census, ticket keys): it ends first,
     * after the mail the drained requests queued. */
    if (g->maint_started) {
        pthread_mutex_lock(&g->maint_lock);
        g->stopping = 1;
        pthread_cond_signal(&g->maint_cond);
        pthread_mutex_unlock(&g->maint_lock);
        pthread_join(g->maint_thread, NULL);
    }
    sk_http_destroy(g->http);
    sk_net_destroy(g->net);
    if (g->audit != NULL) {
        /* Pending refusal summaries belong before the stop entry. */
        if (sk_audit_flush(g->audit) != 0)
            sk_log(SK_LOG_ERR, "audit flush failed");
        audit_simple(g, SK_AUDIT_EV_STOP, NULL, 0);
        sk_audit_close(g->audit); /* writes the final signed checkpoint */
    }
    sk_auth_pool_destroy(g->auth);
    sk_admit_destroy(g->admit); /* the handle; the table is shared */
    sk_proxy_destroy(g->proxy);
    sk_wire_client_free(g->authd_client);
}

/* glibc hands a thread arena's free top back to the kernel as soon as it passes
 * the trim threshold, and the next request faults the same pages in again: with
 * a few KiB allocated and freed per request, that was a tenth of this process's
 * CPU. A fixed threshold keeps up to NET_TRIM_KEEP per arena for reuse (set, it
 * also fixes the mmap threshold, raised so that buffers stay in the arenas). */
#define NET_TRIM_KEEP (8 << 20)
#define NET_MMAP_FROM (1 << 20)
static void tune_malloc(void)
{
#if defined(__SANITIZE_ADDRESS__)
    return; /* ASan's own allocator: glibc's thresholds mean nothing there */
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    return; /* the same, as clang says it */
#endif
#endif
    if (mallopt(M_TRIM_THRESHOLD, NET_TRIM_KEEP) != 1 || mallopt(M_MMAP_THRESHOLD, NET_MMAP_FROM) != 1)
        sk_log(SK_LOG_WARN, "mallopt refused: memory is returned to the kernel after every request");
}

int sk_netproc_main(const sk_conf *conf, const sk_netproc_fds *fds)
{
    static struct gateway g;
    int rc = 1;
    sigset_t sigs;

    tune_malloc();
    g.conf = *conf;
    g.listen_fd = fds->listen_fd;
    g.authd_generation = fds->authd_generation;
    g.audit = fds->audit;
    g.sandbox = fds->sandbox;
    g.sandbox_arg = fds->sandbox_arg;
    g.fds = fds;
    if (sk_wire_client_new(fds->authd, fds->n_authd, "authd", &g.authd_client) != 0) {
        sk_log(SK_LOG_ERR, "cannot set up the channels to authd");
        return 1;
    }
    /* The monitor blocked these before forking; they are taken synchronously here. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (start(&g) != 0)
        goto out;
    sk_log(SK_LOG_INFO, "sekisho started; upstream %s", g.conf.upstream_url);
    if (fds->restarted_after != NULL && fds->restarted_after[0] != '\0') {
        sk_audit_kv kv[] = { { "process", "net" },
                             { "instance", fds->title != NULL ? fds->title : "sekisho-net" },
                             { "cause", fds->restarted_after } };
        audit_simple(&g, "process.restart", kv, SK_ARRAY_LEN(kv));
    }
    if (fds->ready != NULL)
        fds->ready(fds->ready_arg);
    for (;;) {
        int sig = 0;
        if (sigwait(&sigs, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            reload(&g);
            continue;
        }
        sk_log(SK_LOG_INFO, "signal %d: draining and stopping", sig);
        break;
    }
    rc = 0;
out:
    stop(&g);
    if (rc == 0)
        sk_log(SK_LOG_INFO, "stopped");
    return rc;
}
