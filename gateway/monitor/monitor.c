/* monitor.c — start, restart and stop the gateway's processes, and do for them
 * what their sandboxes forbid (mail, the audit witness) (sk_monitor.h). */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "monitor_int.h"
#include "sk_audit.h"
#include "sk_notify.h"
#include "sk_sdnotify.h"
#include "sk_wire_mon.h"

#define MON_RESTART_BURST 5
#define MON_RESTART_WINDOW_MS 60000
#define MON_BACKOFF_MAX_MS 5000
#define MON_MESSAGES_PER_PASS 8
#define MON_MAIL_BURST 30
#define MON_MAIL_WINDOW_MS (10 * 60 * 1000)

static void kill_all(struct monitor *m);

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* systemd (Type=notify, NotifyAccess=main: only the monitor may talk to it). A lost
 * notification is logged, never fatal. */
static void sd_notified(int rc, const char *what)
{
    if (rc != 0)
        sk_log(SK_LOG_WARN, "systemd notification %s failed: %s", what, strerror(errno));
}

static int spawn(struct monitor *m, struct child *c)
{
    pid_t pid = fork();
    if (pid < 0) {
        sk_log(SK_LOG_ERR, "monitor: cannot fork %s: %s", c->name, strerror(errno));
        return -1;
    }
    if (pid == 0)
        mon_child_main(m, c);
    c->pid = pid;
    c->ready = 0;
    c->restart_at_ms = 0;
    sk_log(SK_LOG_INFO, "monitor: started %s (%s, pid %d)", c->name, c->title, (int)pid);
    return 0;
}

static void describe(int status, char *out, size_t cap)
{
    int r = WIFSIGNALED(status) ? sk_snprintf(out, cap, "killed by signal %d (%s)", WTERMSIG(status),
                                               strsignal(WTERMSIG(status)))
                                : sk_snprintf(out, cap, "exit status %d", WEXITSTATUS(status));
    if (r != 0)
        out[0] = '\0';
}

static void signal_net(struct monitor *m, int sig)
{
    for (unsigned i = KID_NET; i < m->n_kids; i++)
        if (m->kids[i].pid > 0)
            kill(m->kids[i].pid, sig);
}

static void schedule_restart(struct monitor *m, struct child *c)
{
    int64_t now = mono_ms();
    if (now - c->window_start_ms > MON_RESTART_WINDOW_MS) {
        c->window_start_ms = now;
        c->deaths_in_window = 0;
    }
    if (++c->deaths_in_window > MON_RESTART_BURST || !c->ever_ready) {
        sk_log(SK_LOG_ERR, "monitor: %s (%s) %s; stopping the gateway", c->name, c->title,
               c->ever_ready ? "keeps dying" : "could not start");
        m->failed = 1;
        m->stopping = 1;
        /* Nothing to drain gracefully: the others would only wait for the dead one. */
        kill_all(m);
        return;
    }
    c->backoff_ms = c->backoff_ms == 0 ? 100 : c->backoff_ms * 2;
    if (c->backoff_ms > MON_BACKOFF_MAX_MS)
        c->backoff_ms = MON_BACKOFF_MAX_MS;
    c->restart_at_ms = now + c->backoff_ms;
}

static void reap(struct monitor *m)
{
    for (;;) {
        int status = 0;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid <= 0)
            return;
        for (size_t i = 0; i < m->n_kids; i++) {
            struct child *c = &m->kids[i];
            char how[96];
            if (c->pid != pid)
                continue;
            c->pid = 0;
            c->status = status;
            describe(status, how, sizeof how);
            if (m->stopping) {
                sk_log(SK_LOG_INFO, "monitor: %s ended (%s, %s)", c->name, c->title, how);
                continue;
            }
            /* One network process's death leaves the others and their connections alone. */
            sk_log(SK_LOG_ERR, "monitor: %s died (%s); restarting %s", c->name, how, c->title);
            memcpy(c->last_death, how, sizeof c->last_death);
            mon_reset_clients(m, c);
            schedule_restart(m, c);
        }
    }
}

/* Each network process watches the CRL and the clock on its own, so one alarm would
 * reach the operators once per process (and again from a replacement): an
 * operators' mail identical to one another network process (another pid) sent within
 * the mail window is dropped; the same process may repeat itself, as with one
 * process. 1 when it is such a copy. */
static int copy_of_alarm(struct monitor *m, const struct child *c, const sk_wire_notify *n, int64_t now)
{
    uint8_t d[32];
    struct alarm_seen *slot = &m->alarms[0];
    EVP_MD_CTX *ctx;
    int ok;
    if (c < &m->kids[KID_NET] || m->n_kids == KID_NET + 1 || n->level == SK_NOTIFY_PERSONAL)
        return 0;
    ctx = EVP_MD_CTX_new();
    ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
         EVP_DigestUpdate(ctx, &n->level, sizeof n->level) == 1 &&
         EVP_DigestUpdate(ctx, n->subject, strlen(n->subject) + 1) == 1 &&
         EVP_DigestUpdate(ctx, n->body, strlen(n->body) + 1) == 1 && EVP_DigestFinal_ex(ctx, d, NULL) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok)
        return 0;
    for (size_t i = 0; i < SK_ARRAY_LEN(m->alarms); i++) {
        struct alarm_seen *a = &m->alarms[i];
        if (a->at_ms != 0 && now - a->at_ms < MON_MAIL_WINDOW_MS && memcmp(a->digest, d, sizeof d) == 0)
            return a->pid != c->pid;
        if (a->at_ms < slot->at_ms)
            slot = a; /* the oldest is replaced */
    }
    memcpy(slot->digest, d, sizeof d);
    slot->pid = c->pid;
    slot->at_ms = now;
    return 0;
}

/* A child's mail: the sender is the configuration's, an operators' alarm goes to the
 * operators of its level whatever the child named, a user's own mail never comes from
 * a network process, and each network process may send at most
 * MON_MAIL_BURST mails per MON_MAIL_WINDOW_MS (a compromised one must not make the
 * gateway a spam relay or keep the monitor busy). */
/* 1 when c has used up its mail budget of the window (then logged once). */
static int mail_over_budget(struct child *c, int64_t now)
{
    if (now - c->mail_window_ms > MON_MAIL_WINDOW_MS) {
        c->mail_window_ms = now;
        c->mails_in_window = 0;
    }
    if (++c->mails_in_window <= MON_MAIL_BURST)
        return 0;
    if (c->mails_in_window == MON_MAIL_BURST + 1)
        sk_log(SK_LOG_ERR, "monitor: %s sends more than %d mails in %d s: further mail dropped", c->name,
               MON_MAIL_BURST, MON_MAIL_WINDOW_MS / 1000);
    return 1;
}

static void send_mail(struct monitor *m, struct child *c, const sk_wire_msg *msg)
{
    static sk_wire_notify n;
    struct sk_notify_msg mail;
    const char *to;
    int64_t now = mono_ms();
    int from_net = c >= &m->kids[KID_NET];
    if (from_net && mail_over_budget(c, now))
        return; /* before decoding: a flood costs the monitor nothing more */
    if (sk_wire_notify_decode(msg->payload, msg->len, &n) != 0) {
        sk_log(SK_LOG_WARN, "monitor: undecodable mail from %s: dropped", c->name);
        return;
    }
    /* authd's and auditd's mail is limited where it arises (the burst alarm once
     * per window, the store alarm every 10 minutes, lock notices in
     * authd_lockout.c; the sweep's reminders, one per account and step, must all
     * leave): a budget here would let lock notices crowd out an alarm. */
    if (n.level == SK_NOTIFY_PERSONAL && from_net) {
        /* A mail that names its own recipients: authd's to a user (the address
         * read from the store), auditd's alarm (to [notify] operators, set by this
         * monitor). From a network process it is an attempt to make the gateway
         * mail an address of its choosing. */
        sk_log(SK_LOG_WARN, "monitor: personal mail from %s refused (only authd sends a user's mail)", c->name);
        return;
    }
    if (copy_of_alarm(m, c, &n, now))
        return;
    to = n.level == SK_NOTIFY_PERSONAL ? n.to : sk_conf_operators_for(m->conf, n.level);
    if (to[0] == '\0')
        return;
    mail = (struct sk_notify_msg){ m->conf->notify_from[0] ? m->conf->notify_from : NULL, to, n.subject, n.body };
    if (sk_notify_send_level(m->conf->notify_command, &mail, n.level) != 0)
        sk_log(SK_LOG_ERR, "mail to %s failed: %s", to, n.subject);
}

static void run_witness(struct monitor *m, const sk_wire_msg *msg)
{
    static char text[SK_WIRE_MAX + 1];
    if (m->conf->audit_witness[0] == '\0' || memchr(msg->payload, '\0', msg->len) != NULL)
        return;
    memcpy(text, msg->payload, msg->len);
    text[msg->len] = '\0';
    if (sk_audit_run_witness(m->conf->audit_witness, text) != 0)
        sk_log(SK_LOG_ERR, "audit: ALARM: the witness command failed; a checkpoint was not handed to the witness");
}

/* What a child asks: only what the permit table lets its class send. Mail and the
 * witness can take seconds: restarts wait for them (the monitor stays one thread,
 * so that fork never copies a lock held by another). */
static void on_message(struct monitor *m, struct child *c)
{
    static uint8_t buf[SK_WIRE_MAX];
    sk_wire_msg msg;
    /* A few per pass: signals and the other children are served in between. */
    for (int k = 0; k < MON_MESSAGES_PER_PASS && sk_wire_recv(c->mon_end, buf, sizeof buf, &msg, 0) == 0; k++) {
        if (!sk_wire_permitted(c->peer, msg.type)) {
            sk_log(SK_LOG_WARN, "monitor: %s sent a message it may not send (0x%04x): ignored", c->name, msg.type);
            continue;
        }
        if (msg.type == SK_WIRE_MON_READY) {
            int all = 1;
            c->ready = c->ever_ready = 1;
            c->backoff_ms = 0;
            for (size_t i = 0; i < m->n_kids; i++)
                all &= m->kids[i].ready;
            if (all && !m->told_ready) {
                m->told_ready = 1;
                sd_notified(sk_sdnotify_ready(), "READY=1");
            }
        } else if (msg.type == SK_WIRE_MON_NOTIFY) {
            send_mail(m, c, &msg);
        } else if (msg.type == SK_WIRE_MON_WITNESS) {
            run_witness(m, &msg);
        }
    }
}

/* Stop order: the network processes drain first, together (their requests still
 * need authd and auditd), then authd (whose last entries need auditd), then auditd. */
static void kill_all(struct monitor *m)
{
    for (size_t i = 0; i < m->n_kids; i++)
        if (m->kids[i].pid > 0)
            kill(m->kids[i].pid, SIGKILL);
}

static int advance_stop(struct monitor *m)
{
    int64_t now = mono_ms();
    if (m->stop_started_ms == 0)
        m->stop_started_ms = now;
    /* The drain has its own deadline; a child still there well after it ignores
     * SIGTERM (or is stuck) and is killed. */
    if (now - m->stop_started_ms > ((int64_t)m->conf->drain_timeout + 15) * 1000)
        kill_all(m);
    {
        int net_left = 0;
        for (size_t i = KID_NET; i < m->n_kids; i++) {
            struct child *c = &m->kids[i];
            if (c->pid > 0) {
                net_left = 1;
                if (!c->ready) /* the ready ones drain since the first SIGTERM */
                    kill(c->pid, SIGTERM);
            }
        }
        if (net_left)
            return 0;
    }
    for (size_t i = KID_NET; i-- > 0;) {
        if (m->kids[i].pid > 0) {
            kill(m->kids[i].pid, SIGTERM);
            return 0;
        }
    }
    return 1; /* all ended */
}

static void restart_due(struct monitor *m, int64_t now, int64_t *wait)
{
    for (size_t i = 0; i < m->n_kids; i++) {
        struct child *c = &m->kids[i];
        if (m->stopping || c->pid != 0 || c->restart_at_ms == 0)
            continue;
        if (c->restart_at_ms <= now) {
            if (spawn(m, c) != 0) {
                m->failed = m->stopping = 1;
                kill_all(m);
            }
        } else if (*wait < 0 || c->restart_at_ms - now < *wait) {
            *wait = c->restart_at_ms - now;
        }
    }
}

static void on_signals(struct monitor *m, int sfd)
{
    struct signalfd_siginfo si;
    while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGCHLD) {
            reap(m);
        } else if (si.ssi_signo == SIGHUP) {
            sd_notified(sk_sdnotify_reloading(), "RELOADING=1");
            signal_net(m, SIGHUP);
            sd_notified(sk_sdnotify_ready(), "READY=1");
        } else if (!m->stopping) {
            sk_log(SK_LOG_INFO, "signal %u: draining and stopping", si.ssi_signo);
            sd_notified(sk_sdnotify_stopping(), "STOPPING=1");
            m->stopping = 1;
            signal_net(m, SIGTERM);
        }
    }
    reap(m);
}

static int run_loop(struct monitor *m, int sfd)
{
    for (;;) {
        struct pollfd p[1 + MON_MAX_KIDS];
        int64_t wait = -1;

        if (m->stopping && advance_stop(m))
            return 0;
        restart_due(m, mono_ms(), &wait);
        if (m->stopping && (wait < 0 || wait > 200))
            wait = 200; /* a child that ignores SIGTERM is asked again */
        if (wait < 0 || wait > 1000)
            wait = 1000; /* the watchdog tick */
        sd_notified(sk_sdnotify_watchdog_tick(), "WATCHDOG=1");
        p[0] = (struct pollfd){ sfd, POLLIN, 0 };
        for (size_t i = 0; i < m->n_kids; i++)
            p[1 + i] = (struct pollfd){ m->kids[i].mon_end, POLLIN, 0 };
        if (poll(p, 1 + m->n_kids, (int)wait) < 0 && errno != EINTR)
            return -1;
        for (size_t i = 0; i < m->n_kids; i++)
            if (p[1 + i].revents & POLLIN)
                on_message(m, &m->kids[i]);
        if (p[0].revents & POLLIN)
            on_signals(m, sfd);
    }
}

int sk_monitor_run(const sk_conf *conf)
{
    static struct monitor m;
    sigset_t sigs;
    int sfd = -1, rc = 1;

    m.conf = conf;
    m.listen_fd = m.ctl_fd = m.metrics_fd = -1;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    sigaddset(&sigs, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &sigs, NULL) != 0 || (sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
        sk_log(SK_LOG_ERR, "monitor: cannot take signals: %s", strerror(errno));
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    /* The children hand their mail to the monitor, which queues it here. */
    if (sk_notify_set_outbox(conf->notify_outbox) != 0) {
        sk_log(SK_LOG_ERR, "cannot use the mail outbox %s: %s", conf->notify_outbox, strerror(errno));
        goto out;
    }
    if (mon_track(&m, sfd) != 0 || mon_setup(&m) != 0) {
        sk_log(SK_LOG_ERR, "monitor: cannot set up the processes' channels: %s", strerror(errno));
        goto out;
    }
    for (size_t i = 0; i < m.n_kids; i++)
        if (spawn(&m, &m.kids[i]) != 0)
            goto out;
    if (run_loop(&m, sfd) != 0)
        goto out;
    rc = m.failed;
    for (size_t i = 0; i < m.n_kids; i++)
        if (!WIFEXITED(m.kids[i].status) || WEXITSTATUS(m.kids[i].status) != 0)
            rc = 1;
out:
    for (size_t i = 0; i < m.n_kids; i++)
        if (m.kids[i].pid > 0)
            kill(m.kids[i].pid, SIGKILL);
    while (wait(NULL) > 0)
        ;
    for (unsigned i = 0; i < m.n_fds; i++)
        close(m.all_fds[i]); /* sfd among them */
    if (m.ctl_fd >= 0 && m.ctl_path[0] != '\0')
        (void)unlink(m.ctl_path);
    return rc;
}
