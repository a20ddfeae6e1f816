/* authd_proc.c — authd as a process (sk_authd_main): the store, the argon2 pool, the
 * channel threads and the daily dormancy sweep. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "authd_int.h"
#include "sk_authd.h"
#include "sk_sweep.h"

#define SWEEP_EVERY_SECONDS 86400
#define SWEEP_LEASE 3600        /* a node that dies mid-sweep holds it up this long */
#define SWEEP_RETRY 600         /* how often a node asks whether a sweep is due */
#define SWEEP_FIRST_AFTER 60

struct authd_proc {
    const sk_conf *conf;
    sk_authd a;
    sk_auth_config cfg;
    sk_audit *audit;
    const int *fds;
    unsigned n;
    volatile int stop;
    pthread_t chan_thread;
    int change_fd;                  /* the store's writes, any process (-1: poll only) */
    uint8_t instance[16];           /* this authd, as holder of node-wide chores */
};

static void *channels_main(void *arg)
{
    struct authd_proc *p = arg;
    if (sk_authd_run(&p->a, p->fds, p->n, &p->stop) != 0)
        sk_log(SK_LOG_ERR, "authd: cannot start its channel threads");
    return NULL;
}

/* Every dormancy step is audited as it is committed (the sweep itself guarantees a
 * step happens once however often it runs). */
static void on_sweep(const sk_sweep_event *ev, void *arg)
{
    struct authd_proc *p = arg;
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
    if (p->audit == NULL || sk_audit_append(p->audit, &e, 1, NULL) != 0)
        sk_log(SK_LOG_ERR, "AUDIT WRITE FAILED for a sweep event");
}

/* The sweep runs on one node at a time and once a day for the whole cluster: the
 * node that claims it first does it (see authd_chore.c). Returns the seconds until
 * this node should ask again. */
static int64_t run_sweep(struct authd_proc *p)
{
    sk_sweep_summary sum;
    int claimed = authd_chore_claim(&p->a, "chore.sweep", p->instance, SWEEP_EVERY_SECONDS, SWEEP_LEASE);
    if (claimed <= 0) {
        if (claimed < 0)
            sk_log(SK_LOG_ERR, "sweep: the store could not say whether another node is sweeping; retrying");
        else
            sk_log(SK_LOG_INFO, "sweep: not due here (another node swept within the day, or is sweeping now)");
        return SWEEP_RETRY;
    }
    memset(&sum, 0, sizeof sum);
    if (sk_sweep_run(p->conf, p->a.store, (int64_t)time(NULL), on_sweep, p, &sum) != 0) {
        sk_log(SK_LOG_ERR, "dormancy sweep failed");
        if (authd_chore_release(&p->a, "chore.sweep", p->instance, 0) != 0)
            sk_log(SK_LOG_ERR, "sweep: could not give the claim back (it expires by itself)");
        return SWEEP_RETRY;
    }
    if (authd_chore_release(&p->a, "chore.sweep", p->instance, 1) != 0)
        sk_log(SK_LOG_ERR, "sweep: could not record its completion (another node may sweep again)");
    sk_log(SK_LOG_INFO, "sweep: %u users, %u reminded, %u locked, %u deleted, %d sessions expired", sum.users_seen,
           sum.notified, sum.locked, sum.deleted, sum.sessions_removed);
    return SWEEP_RETRY;
}

static int open_all(struct authd_proc *p, const sk_authd_env *env)
{
    char err[512];
    if (sk_store_open_conf(p->conf, 0, &p->a.store, err, sizeof err) != SK_STORE_OK) {
        sk_log(SK_LOG_ERR, "authd: cannot open the store: %s", err);
        return -1;
    }
    if (sk_auth_config_from_conf(p->conf, &p->cfg) != 0) {
        sk_log(SK_LOG_ERR, "authd: [auth] settings do not fit");
        return -1;
    }
    p->change_fd = sk_store_change_fd(p->a.store);
    if (p->change_fd < 0)
        sk_log(SK_LOG_WARN, "authd: no change notification from the store; sekishoctl's changes reach the "
                            "network workers' cache within 50 ms");
    if (env->sandbox != NULL && env->sandbox(env->sandbox_arg) != 0)
        return -1;
    if (sk_auth_pool_create(p->conf->auth_workers, p->conf->auth_queue > 0 ? p->conf->auth_queue : 1, &p->cfg,
                            &p->a.pool) != 0) {
        sk_log(SK_LOG_ERR, "authd: cannot start the login workers");
        return -1;
    }
    p->a.cfg = &p->cfg;
    sk_auth_policy_config(&p->cfg, &p->a.pol);
    /* Sessions: the same timeouts the network workers apply. */
    p->a.pol.idle_timeout = p->conf->idle_timeout;
    p->a.pol.absolute_timeout = p->conf->absolute_timeout;
    /* A ticket key issues for one session lifetime and is kept for two more (three
     * keys), so every ticket it issued can still be opened until it expires. */
    p->a.pol.burst_threshold = p->conf->burst_threshold;
    p->a.pol.burst_window = p->conf->burst_window;
    p->a.conf = p->conf;
    p->a.ticket_rotate = p->conf->tls_session_lifetime > 300 ? p->conf->tls_session_lifetime : 300;
    p->audit = env->audit;
    p->a.audit = env->audit;
    p->a.generation = env->generation;
    sk_authd_publish(&p->a);
    return 0;
}

int sk_authd_main(const sk_conf *conf, const sk_authd_env *env)
{
    static struct authd_proc p;
    sigset_t sigs;
    time_t next_sweep = time(NULL) + SWEEP_FIRST_AFTER;
    int rc = 1, started = 0;

    p.conf = conf;
    p.change_fd = -1;
    p.fds = env->fds;
    p.n = env->n;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (open_all(&p, env) != 0 || sk_random(p.instance, sizeof p.instance) != 0)
        goto out;
    if (pthread_create(&p.chan_thread, NULL, channels_main, &p) != 0)
        goto out;
    started = 1;
    if (env->restarted_after != NULL && env->restarted_after[0] != '\0') {
        /* The monitor restarted authd: the record says what ended the previous one. */
        sk_audit_kv kv[] = { { "process", "authd" }, { "cause", env->restarted_after } };
        sk_audit_event e = { .event = "process.restart", .actor = "sekisho", .kv = kv, .n_kv = SK_ARRAY_LEN(kv) };
        if (p.audit == NULL || sk_audit_append(p.audit, &e, 1, NULL) != 0)
            sk_log(SK_LOG_ERR, "AUDIT WRITE FAILED for authd's restart");
    }
    sk_log(SK_LOG_INFO, "authd ready (%u channels)", p.n);
    if (env->ready != NULL)
        env->ready(env->ready_arg);
    for (;;) {
        /* A write by another process (sekishoctl) is published as soon as the store
         * says so; the 50 ms poll is the fallback. */
        struct timespec none = { 0, 0 };
        struct pollfd pfd = { p.change_fd, POLLIN, 0 };
        int sig;
        if (poll(&pfd, p.change_fd >= 0 ? 1 : 0, 50) > 0) {
            char ev[4096];
            while (read(p.change_fd, ev, sizeof ev) > 0)
                ;
        }
        sk_authd_publish(&p.a);
        authd_store_probe(&p.a);
        sig = sigtimedwait(&sigs, NULL, &none);
        if (sig == SIGTERM || sig == SIGINT)
            break;
        if (time(NULL) >= next_sweep)
            next_sweep = time(NULL) + (time_t)run_sweep(&p);
    }
    rc = 0;
out:
    p.stop = 1;
    if (started)
        pthread_join(p.chan_thread, NULL);
    sk_auth_pool_destroy(p.a.pool);
    if (p.change_fd >= 0)
        close(p.change_fd);
    sk_store_close(p.a.store);
    return rc;
}
