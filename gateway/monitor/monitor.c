/* monitor.c — start, restart and stop the gateway's processes (sk_monitor.h). */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sk_audit.h"
#include "sk_authd.h"
#include "sk_monitor.h"
#include "sk_netproc.h"
#include "sk_notify.h"
#include "sk_wire_mon.h"

#define MON_MAX_FDS 1024
#define MON_RESTART_BURST 5
#define MON_RESTART_WINDOW_MS 60000
#define MON_BACKOFF_MAX_MS 5000

struct monitor;

struct child {
    const char *name;                 /* "authd", "net" */
    enum sk_wire_peer peer;
    int (*body)(struct monitor *m, struct child *c);
    pid_t pid;
    int mon_end, child_end;           /* its channel to the monitor */
    int ready, ever_ready;
    int64_t restart_at_ms;            /* 0: not waiting for a restart */
    int64_t window_start_ms;
    unsigned deaths_in_window, backoff_ms;
    int status;                       /* last wait status */
    char last_death[96];              /* why the previous one died; "" at the first start */
};

struct monitor {
    const sk_conf *conf;
    int listen_fd;
    unsigned n_authd;
    int *authd_client, *authd_server;  /* net's ends, authd's ends */
    int all_fds[MON_MAX_FDS];
    unsigned n_fds;
    struct child kids[2];
    int stopping, failed;
    volatile uint64_t *generation;     /* shared page: authd writes, net reads */
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int track(struct monitor *m, int fd)
{
    if (m->n_fds == MON_MAX_FDS)
        return -1;
    m->all_fds[m->n_fds++] = fd;
    return 0;
}

static int pair(struct monitor *m, int *a, int *b)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return -1;
    *a = sv[0];
    *b = sv[1];
    return track(m, sv[0]) == 0 && track(m, sv[1]) == 0 ? 0 : -1;
}

/* ---- in the child ------------------------------------------------------- */

static sk_wire_client *child_mon; /* this child's channel to the monitor */

/* Called by a child's body once it serves: until then a death means "cannot start". */
static void child_ready(void *arg)
{
    (void)arg;
    if (child_mon == NULL || sk_wire_post(child_mon, SK_WIRE_MON_READY, NULL, 0) != 0)
        sk_log(SK_LOG_WARN, "cannot tell the monitor that this process is ready");
}

/* Close every descriptor the monitor made except those in keep[]. */
static void keep_only(struct monitor *m, const int *keep, size_t n)
{
    for (unsigned i = 0; i < m->n_fds; i++) {
        int fd = m->all_fds[i], kept = 0;
        for (size_t k = 0; k < n; k++)
            kept |= keep[k] == fd;
        if (!kept)
            close(fd);
    }
}

/* The audit log of a child, until auditd owns it. */
static sk_audit *child_audit(const sk_conf *conf)
{
    sk_audit_options o;
    sk_audit *a = NULL;
    char err[512];
    memset(&o, 0, sizeof o);
    o.dir = conf->audit_dir;
    o.key_path = conf->audit_key;
    o.retention_secs = conf->audit_retention;
    o.epoch_secs = (uint32_t)conf->audit_epoch;
    o.witness = conf->audit_witness;
    o.notify_command = conf->notify_command;
    o.notify_to = conf->notify_operators;
    o.notify_from = conf->notify_from;
    if (sk_audit_open(&o, &a, err, sizeof err) != 0) {
        sk_log(SK_LOG_ERR, "cannot open the audit log in %s: %s", conf->audit_dir, err);
        return NULL;
    }
    return a;
}

static int authd_body(struct monitor *m, struct child *c)
{
    sk_authd_env env = { m->authd_server, m->n_authd, NULL, child_ready, NULL, c->last_death, m->generation };
    int rc;
    env.audit = child_audit(m->conf);
    if (env.audit == NULL)
        return 1;
    rc = sk_authd_main(m->conf, &env);
    sk_audit_close(env.audit);
    return rc;
}

static int net_body(struct monitor *m, struct child *c)
{
    sk_netproc_fds fds = { m->listen_fd, m->authd_client, m->n_authd, child_ready, NULL, c->last_death,
                           m->generation };
    return sk_netproc_main(m->conf, &fds);
}

static void child_main(struct monitor *m, struct child *c)
{
    char comm[16];
    int *keep = calloc(m->n_authd + 2, sizeof *keep);
    const int *ends = c->body == net_body ? m->authd_client : m->authd_server;
    sk_wire_client *mon = NULL;
    int rc = 1;

    if (keep == NULL)
        _exit(1);
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL); /* kill -9 of the gateway ends all of it */
    if (getppid() == 1)
        _exit(1); /* the monitor died before the line above */
    if (sk_snprintf(comm, sizeof comm, "sekisho-%s", c->name) == 0)
        (void)prctl(PR_SET_NAME, comm);
    for (unsigned i = 0; i < m->n_authd; i++)
        keep[i] = ends[i];
    keep[m->n_authd] = c->child_end;
    keep[m->n_authd + 1] = c->body == net_body ? m->listen_fd : -1;
    keep_only(m, keep, m->n_authd + 2);
    free(keep);
    if (sk_wire_client_new(&c->child_end, 1, "monitor", &mon) != 0)
        _exit(1);
    sk_notify_set_transport(sk_wire_notify_transport, mon);
    child_mon = mon;
    rc = c->body(m, c);
    fflush(NULL);
    _exit(rc);
}

/* ---- in the monitor ----------------------------------------------------- */

static int spawn(struct monitor *m, struct child *c)
{
    pid_t pid = fork();
    if (pid < 0) {
        sk_log(SK_LOG_ERR, "monitor: cannot fork %s: %s", c->name, strerror(errno));
        return -1;
    }
    if (pid == 0)
        child_main(m, c);
    c->pid = pid;
    c->ready = 0;
    c->restart_at_ms = 0;
    sk_log(SK_LOG_INFO, "monitor: started %s (pid %d)", c->name, (int)pid);
    return 0;
}

/* Callers waiting on a dead server would otherwise wait for their timeout. */
static void reset_clients(struct monitor *m, struct child *c)
{
    if (c->body != authd_body)
        return;
    for (unsigned i = 0; i < m->n_authd; i++)
        if (sk_wire_send(m->authd_server[i], SK_WIRE_RESET, 0, NULL, 0) != 0 && errno != EAGAIN)
            sk_log(SK_LOG_WARN, "monitor: cannot reset an authd channel: %s", strerror(errno));
}

static void describe(int status, char *out, size_t cap)
{
    int r = WIFSIGNALED(status) ? sk_snprintf(out, cap, "killed by signal %d (%s)", WTERMSIG(status),
                                               strsignal(WTERMSIG(status)))
                                : sk_snprintf(out, cap, "exit status %d", WEXITSTATUS(status));
    if (r != 0)
        out[0] = '\0';
}

static void signal_children(struct monitor *m, int sig, int only_net)
{
    for (size_t i = 0; i < SK_ARRAY_LEN(m->kids); i++)
        if (m->kids[i].pid > 0 && (!only_net || m->kids[i].body == net_body))
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
        sk_log(SK_LOG_ERR, "monitor: %s %s; stopping the gateway", c->name,
               c->ever_ready ? "keeps dying" : "could not start");
        m->failed = 1;
        m->stopping = 1;
        signal_children(m, SIGTERM, 1);
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
        for (size_t i = 0; i < SK_ARRAY_LEN(m->kids); i++) {
            struct child *c = &m->kids[i];
            char how[96];
            if (c->pid != pid)
                continue;
            c->pid = 0;
            c->status = status;
            describe(status, how, sizeof how);
            if (m->stopping) {
                sk_log(SK_LOG_INFO, "monitor: %s ended (%s)", c->name, how);
                continue;
            }
            sk_log(SK_LOG_ERR, "monitor: %s died (%s); restarting it", c->name, how);
            memcpy(c->last_death, how, sizeof c->last_death);
            reset_clients(m, c);
            schedule_restart(m, c);
        }
    }
}

static void on_message(struct monitor *m, struct child *c)
{
    static uint8_t buf[SK_WIRE_MAX];
    sk_wire_msg msg;
    while (sk_wire_recv(c->mon_end, buf, sizeof buf, &msg, 0) == 0) {
        if (!sk_wire_permitted(c->peer, msg.type)) {
            sk_log(SK_LOG_WARN, "monitor: %s sent a message it may not send (0x%04x): ignored", c->name, msg.type);
            continue;
        }
        if (msg.type == SK_WIRE_MON_READY) {
            c->ready = c->ever_ready = 1;
            c->backoff_ms = 0;
        } else if (msg.type == SK_WIRE_MON_NOTIFY) {
            static sk_wire_notify n;
            struct sk_notify_msg mail;
            if (sk_wire_notify_decode(msg.payload, msg.len, &n) != 0) {
                sk_log(SK_LOG_WARN, "monitor: undecodable mail from %s: dropped", c->name);
                continue;
            }
            mail = (struct sk_notify_msg){ n.from[0] ? n.from : NULL, n.to, n.subject, n.body };
            if (sk_notify_send_level(m->conf->notify_command, &mail, n.level) != 0)
                sk_log(SK_LOG_ERR, "mail to %s failed: %s", n.to, n.subject);
        }
    }
}


/* Stop order: the network process drains first (its requests may still need
 * authd), then authd. */
static void advance_stop(struct monitor *m)
{
    struct child *net = &m->kids[1], *authd = &m->kids[0];
    if (net->pid > 0)
        return;
    if (authd->pid > 0)
        kill(authd->pid, SIGTERM);
}

static int run_loop(struct monitor *m, int sfd)
{
    for (;;) {
        struct pollfd p[1 + SK_ARRAY_LEN(m->kids)];
        int64_t now = mono_ms(), wait = -1;
        size_t np = 1;

        if (m->stopping) {
            advance_stop(m);
            if (m->kids[0].pid == 0 && m->kids[1].pid == 0)
                return 0;
        }
        for (size_t i = 0; i < SK_ARRAY_LEN(m->kids); i++) {
            struct child *c = &m->kids[i];
            if (!m->stopping && c->pid == 0 && c->restart_at_ms != 0) {
                if (c->restart_at_ms <= now) {
                    if (spawn(m, c) != 0) {
                        m->failed = m->stopping = 1;
                        continue;
                    }
                } else if (wait < 0 || c->restart_at_ms - now < wait) {
                    wait = c->restart_at_ms - now;
                }
            }
        }
        p[0] = (struct pollfd){ sfd, POLLIN, 0 };
        for (size_t i = 0; i < SK_ARRAY_LEN(m->kids); i++)
            p[np++] = (struct pollfd){ m->kids[i].mon_end, POLLIN, 0 };
        if (poll(p, np, (int)wait) < 0 && errno != EINTR)
            return -1;
        for (size_t i = 1; i < np; i++)
            if (p[i].revents & POLLIN)
                on_message(m, &m->kids[i - 1]);
        if (p[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
                if (si.ssi_signo == SIGCHLD) {
                    reap(m);
                } else if (si.ssi_signo == SIGHUP) {
                    signal_children(m, SIGHUP, 1);
                } else if (!m->stopping) {
                    sk_log(SK_LOG_INFO, "signal %u: draining and stopping", si.ssi_signo);
                    m->stopping = 1;
                    signal_children(m, SIGTERM, 1);
                }
            }
            reap(m);
        }
    }
}

static int setup(struct monitor *m)
{
    if (sk_tcp_listen(m->conf->listen_address, 4096, &m->listen_fd) != 0 || track(m, m->listen_fd) != 0) {
        sk_log(SK_LOG_ERR, "cannot listen on %s: %s", m->conf->listen_address, strerror(errno));
        return -1;
    }
    {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        unsigned workers = m->conf->listen_workers > 0 ? m->conf->listen_workers : cpus > 0 ? (unsigned)cpus : 1;
        /* Every thread of the network process that may call authd gets its own. */
        m->n_authd = workers + m->conf->auth_workers + 4;
    }
    /* Shared by fork: one page, nothing secret in it (see http_lookup.c). */
    m->generation = mmap(NULL, sizeof *m->generation, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m->generation == MAP_FAILED) {
        m->generation = NULL;
        return -1;
    }
    m->authd_client = calloc(m->n_authd, sizeof *m->authd_client);
    m->authd_server = calloc(m->n_authd, sizeof *m->authd_server);
    if (m->authd_client == NULL || m->authd_server == NULL)
        return -1;
    for (unsigned i = 0; i < m->n_authd; i++)
        if (pair(m, &m->authd_client[i], &m->authd_server[i]) != 0)
            return -1;
    m->kids[0] = (struct child){ .name = "authd", .peer = SK_WIRE_PEER_AUTHD, .body = authd_body };
    m->kids[1] = (struct child){ .name = "net", .peer = SK_WIRE_PEER_NET, .body = net_body };
    for (size_t i = 0; i < SK_ARRAY_LEN(m->kids); i++)
        if (pair(m, &m->kids[i].mon_end, &m->kids[i].child_end) != 0)
            return -1;
    return 0;
}

int sk_monitor_run(const sk_conf *conf)
{
    static struct monitor m;
    sigset_t sigs;
    int sfd = -1, rc = 1;

    m.conf = conf;
    m.listen_fd = -1;
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
    if (track(&m, sfd) != 0 || setup(&m) != 0) {
        sk_log(SK_LOG_ERR, "monitor: cannot set up the channels: %s", strerror(errno));
        goto out;
    }
    /* authd first: the network process's first requests need it. */
    for (size_t i = 0; i < SK_ARRAY_LEN(m.kids); i++)
        if (spawn(&m, &m.kids[i]) != 0)
            goto out;
    if (run_loop(&m, sfd) != 0)
        goto out;
    rc = m.failed;
    for (size_t i = 0; i < SK_ARRAY_LEN(m.kids); i++)
        if (!WIFEXITED(m.kids[i].status) || WEXITSTATUS(m.kids[i].status) != 0)
            rc = 1;
out:
    if (rc != 0 && !m.stopping) {
        m.stopping = 1;
        signal_children(&m, SIGTERM, 0);
        while (wait(NULL) > 0)
            ;
    }
    for (unsigned i = 0; i < m.n_fds; i++)
        close(m.all_fds[i]); /* sfd among them */
    free(m.authd_client);
    free(m.authd_server);
    return rc;
}
