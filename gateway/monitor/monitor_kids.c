/* monitor_kids.c — what each child process is handed (descriptors, sandbox paths)
 * and runs. Who may touch what is decided here, in one place; each child decides when
 * it locks itself in (after it opened its files, before its first thread). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "monitor_int.h"
#include "sk_audit.h"
#include "sk_auditd.h"
#include "sk_authd.h"
#include "sk_net.h"
#include "sk_netproc.h"
#include "sk_notify.h"
#include "sk_wire_mon.h"

#define MON_AUDIT_AUTHD_CHANNELS 2  /* authd's threads that write to the log */

int mon_track(struct monitor *m, int fd)
{
    if (m->n_fds == MON_MAX_FDS)
        return -1;
    m->all_fds[m->n_fds++] = fd;
    return 0;
}

static int chans_make(struct monitor *m, struct chans *ch, unsigned n)
{
    ch->n = n;
    ch->client = calloc(n, sizeof *ch->client);
    ch->server = calloc(n, sizeof *ch->server);
    if (ch->client == NULL || ch->server == NULL)
        return -1;
    for (unsigned i = 0; i < n; i++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
            return -1;
        ch->client[i] = sv[0];
        ch->server[i] = sv[1];
        if (mon_track(m, sv[0]) != 0 || mon_track(m, sv[1]) != 0)
            return -1;
    }
    return 0;
}

/* ---- in the child ------------------------------------------------------- */

static sk_wire_client *child_mon; /* this child's channel to the monitor */
static struct monitor *child_m;   /* the monitor's table, as inherited */

/* Called by a child's body once it serves: until then a death means "cannot start". */
static void child_ready(void *arg)
{
    (void)arg;
    if (child_mon == NULL || sk_wire_post(child_mon, SK_WIRE_MON_READY, NULL, 0) != 0)
        sk_log(SK_LOG_WARN, "cannot tell the monitor that this process is ready");
}

/* The directory holding path (path itself when it is one). */
static int dir_of(const char *path, char *out, size_t cap)
{
    char tmp[SK_CONF_PATH_MAX];
    if (sk_strlcpy(tmp, sizeof tmp, path) != 0)
        return -1;
    return sk_strlcpy(out, cap, dirname(tmp));
}

/* The sandbox wants absolute paths: a relative one (a configuration given as
 * "-c sekisho.conf") is resolved here, into a small static pool. */
static int add_path(const char **list, unsigned *n, const char *p)
{
    static char pool[2 * SK_SANDBOX_MAX_PATHS][PATH_MAX];
    static unsigned used;
    if (p == NULL || p[0] == '\0')
        return 0;
    if (*n + 1 >= SK_SANDBOX_MAX_PATHS)
        return -1;
    if (p[0] != '/') {
        if (used == SK_ARRAY_LEN(pool) || realpath(p, pool[used]) == NULL)
            return -1;
        p = pool[used++];
    }
    list[(*n)++] = p;
    return 0;
}

/* The secrets' homes must not lie under what the network process may read. */
static void warn_if_exposed(const sk_conf *conf, const char *const *granted, unsigned n)
{
    const char *secret[] = { conf->state_dir, conf->audit_dir, conf->audit_key, conf->auth_totp_key };
    for (size_t i = 0; i < SK_ARRAY_LEN(secret); i++) {
        char real[PATH_MAX];
        if (realpath(secret[i], real) == NULL)
            continue;
        for (unsigned k = 0; k < n; k++) {
            size_t len = strlen(granted[k]);
            if (strncmp(real, granted[k], len) == 0 && (real[len] == '/' || real[len] == '\0') &&
                strcmp(granted[k], conf->file) != 0)
                sk_log(SK_LOG_WARN, "%s lies under %s, which the network process may read (for its "
                                    "certificate, CA or CRL): keep them in separate directories",
                       secret[i], granted[k]);
        }
    }
}

struct ro_adder {
    sk_sandbox_paths *p;
    unsigned *n;
};

static int add_ro(const char *path, void *ctx)
{
    struct ro_adder *a = ctx;
    return add_path(a->p->read_only, a->n, path);
}

/* What each role may still open, from the configuration. */
static int sandbox_paths(const sk_conf *conf, enum sk_sandbox_role role, sk_sandbox_paths *p)
{
    static char key_dir[SK_CONF_PATH_MAX], totp_dir[SK_CONF_PATH_MAX];
    static const char *const resolver[] = { "/etc/hosts", "/etc/resolv.conf", "/etc/nsswitch.conf",
                                            "/etc/host.conf", "/etc/gai.conf" };
    static char clock_dir[SK_CONF_PATH_MAX];
    const char *clock_file = getenv("FAKETIME_TIMESTAMP_FILE");
    unsigned ro = 0, rw = 0;
    int bad = 0;

    memset(p, 0, sizeof *p);
    /* Tests move the clock with libfaketime, which re-reads this file (replaced by
     * rename, so its directory); it must stay readable or the sandboxed processes'
     * clocks would stop following it. */
    if (clock_file != NULL && access(clock_file, R_OK) == 0 && dir_of(clock_file, clock_dir, sizeof clock_dir) == 0)
        bad |= add_path(p->read_only, &ro, clock_dir);
    switch (role) {
    case SK_SANDBOX_NET: {
        /* Read again on SIGHUP and when the CRL changes: the certificate and key, the
         * client CA, the CRL, the configuration. Their directories, because
         * sekisho-ca replaces the CRL by rename (a new file a rule on the old one would
         * not cover). The CA's private key must therefore not be readable by the
         * service user (sekisho-ca init makes it 0600 root). */
        static char dirs[4][SK_CONF_PATH_MAX];
        const char *files[4] = { conf->listen_cert, conf->listen_key, conf->tls_client_ca, conf->tls_crl };
        for (size_t i = 0; i < SK_ARRAY_LEN(files); i++) {
            int dup = 0;
            if (files[i][0] == '\0' || dir_of(files[i], dirs[i], sizeof dirs[i]) != 0)
                continue;
            for (size_t k = 0; k < i; k++)
                dup |= strcmp(dirs[k], dirs[i]) == 0;
            if (!dup)
                bad |= add_path(p->read_only, &ro, dirs[i]);
        }
        bad |= add_path(p->read_only, &ro, conf->file);
        warn_if_exposed(conf, p->read_only, ro);
        /* The upstream's name may be resolved again. */
        for (size_t i = 0; i < SK_ARRAY_LEN(resolver); i++)
            if (access(resolver[i], R_OK) == 0)
                bad |= add_path(p->read_only, &ro, resolver[i]);
        break;
    }
    case SK_SANDBOX_AUTHD: {
        struct ro_adder ra = { p, &ro };
        int network = 0;
        bad |= dir_of(conf->auth_totp_key, totp_dir, sizeof totp_dir) != 0;
        bad |= add_path(p->read_write, &rw, conf->state_dir);
        if (strcmp(totp_dir, conf->state_dir) != 0)
            bad |= add_path(p->read_write, &rw, totp_dir);
        /* A database server: what libpq reads when it (re)connects — the TLS
         * files of the url, the resolver's files, and /etc/passwd (the default
         * user name comes from getpwuid). */
        bad |= sk_store_conf_sandbox_needs(conf, &network, add_ro, &ra) != 0;
        /* ... and TCP connect only to the database's ports (Landlock ABI 4). */
        bad |= sk_store_conf_tcp_ports(conf, p->connect_tcp, SK_SANDBOX_MAX_PORTS, &p->n_connect_tcp) != 0;
        if (network) {
            for (size_t i = 0; i < SK_ARRAY_LEN(resolver); i++)
                if (access(resolver[i], R_OK) == 0)
                    bad |= add_path(p->read_only, &ro, resolver[i]);
            if (access("/etc/passwd", R_OK) == 0)
                bad |= add_path(p->read_only, &ro, "/etc/passwd");
        }
        break;
    }
    case SK_SANDBOX_AUDITD:
        /* The key evolves in place (epochs) and its .head sits next to it. */
        bad |= dir_of(conf->audit_key, key_dir, sizeof key_dir) != 0;
        bad |= add_path(p->read_write, &rw, conf->audit_dir) | add_path(p->read_write, &rw, key_dir);
        break;
    }
    return bad ? -1 : 0;
}

static int enter_sandbox(void *arg)
{
    enum sk_sandbox_role role = (enum sk_sandbox_role)(intptr_t)arg;
    sk_sandbox_paths paths;
    unsigned flags = 0;
    char err[256];
    if (sandbox_paths(child_m->conf, role, &paths) != 0) {
        sk_log(SK_LOG_ERR, "%s: too many or too long sandbox paths", sk_sandbox_role_name(role));
        return -1;
    }
    /* authd with a database server may open sockets to it (and only it: no bind,
     * listen or accept). */
    if (role == SK_SANDBOX_AUTHD && strcmp(child_m->conf->store_backend, "postgresql") == 0)
        flags |= SK_SANDBOX_ALLOW_DB;
    if (sk_sandbox_enter(role, flags, &paths, err, sizeof err) != 0) {
        sk_log(SK_LOG_ERR, "%s: cannot enter the sandbox: %s", sk_sandbox_role_name(role), err);
        return -1;
    }
    return 0;
}

/* Witness hand-off from auditd's sandbox (no commands there): the monitor runs it. */
static int witness_to_monitor(void *ctx, const char *text)
{
    size_t n = strlen(text);
    (void)ctx;
    if (child_mon == NULL || n > SK_WIRE_MAX - SK_WIRE_HDR_LEN)
        return -1;
    return sk_wire_post(child_mon, SK_WIRE_MON_WITNESS, text, n);
}

/* A child's handle on the log: auditd writes, over these n channels. */
static sk_audit *remote_audit(const int *fds, unsigned n)
{
    sk_wire_client *c = NULL;
    sk_audit *a = NULL;
    if (sk_wire_client_new(fds, n, "auditd", &c) != 0)
        return NULL;
    if (sk_auditd_client_open(c, &a) != 0) {
        sk_wire_client_free(c);
        return NULL;
    }
    return a;
}

/* auditd's own, real log: the key is opened here and nowhere else. */
static sk_audit *real_audit(const sk_conf *conf)
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
    o.node = conf->audit_node;
    if (sk_audit_open(&o, &a, err, sizeof err) != 0) {
        sk_log(SK_LOG_ERR, "cannot open the audit log in %s: %s", conf->audit_dir, err);
        return NULL;
    }
    return a;
}

static void audit_restart(sk_audit *a, const char *who, const char *cause)
{
    sk_audit_kv kv[] = { { "process", who }, { "cause", cause } };
    sk_audit_event e = { .event = "process.restart", .actor = "sekisho", .kv = kv, .n_kv = SK_ARRAY_LEN(kv) };
    if (cause[0] != '\0' && sk_audit_append(a, &e, 1, NULL) != 0)
        sk_log(SK_LOG_ERR, "AUDIT WRITE FAILED for the restart of %s", who);
}

struct auditd_run {
    sk_audit *a;
    int *fds;
    enum sk_wire_peer *peers;
    unsigned n;
    int ctl_fd;
    volatile int stop;
    int rc;
};

static void *auditd_serve(void *arg)
{
    struct auditd_run *r = arg;
    r->rc = sk_auditd_run(r->a, r->fds, r->peers, r->n, r->ctl_fd, &r->stop);
    return NULL;
}

static int auditd_body(struct monitor *m, struct child *c)
{
    static struct auditd_run r;
    sigset_t sigs;
    pthread_t t;
    int sig = 0, rc = 1;

    r.n = m->audit_net.n + m->audit_authd.n;
    r.fds = calloc(r.n, sizeof *r.fds);
    r.peers = calloc(r.n, sizeof *r.peers);
    if (r.fds == NULL || r.peers == NULL)
        return 1;
    for (unsigned i = 0; i < r.n; i++) {
        int net = i < m->audit_net.n;
        r.fds[i] = net ? m->audit_net.server[i] : m->audit_authd.server[i - m->audit_net.n];
        r.peers[i] = net ? SK_WIRE_PEER_NET : SK_WIRE_PEER_AUTHD;
    }
    r.ctl_fd = m->ctl_fd;
    sk_audit_set_witness_transport(witness_to_monitor, NULL);
    /* The sandbox needs the directory to exist (the writer would create it later). */
    if (sk_mkdir_p(m->conf->audit_dir, 0700) != 0) {
        sk_log(SK_LOG_ERR, "auditd: cannot create %s: %s", m->conf->audit_dir, strerror(errno));
        return 1;
    }
    if (enter_sandbox((void *)(intptr_t)SK_SANDBOX_AUDITD) != 0 || (r.a = real_audit(m->conf)) == NULL)
        return 1;
    audit_restart(r.a, "auditd", c->last_death);
    if (pthread_create(&t, NULL, auditd_serve, &r) != 0)
        goto out;
    child_ready(NULL);
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    while (sigwait(&sigs, &sig) != 0 || (sig != SIGTERM && sig != SIGINT))
        ;
    r.stop = 1;
    pthread_join(t, NULL);
    rc = r.rc == 0 ? 0 : 1;
out:
    sk_audit_close(r.a); /* the final signed checkpoint */
    return rc;
}

static int authd_body(struct monitor *m, struct child *c)
{
    sk_authd_env env = { m->authd.server, m->authd.n, NULL, child_ready, NULL, c->last_death, m->generation,
                         enter_sandbox, (void *)(intptr_t)SK_SANDBOX_AUTHD };
    int rc;
    env.audit = remote_audit(m->audit_authd.client, m->audit_authd.n);
    if (env.audit == NULL)
        return 1;
    rc = sk_authd_main(m->conf, &env);
    sk_audit_close(env.audit);
    return rc;
}

static int net_body(struct monitor *m, struct child *c)
{
    size_t first = (size_t)c->slot * m->per_net; /* its slice of the channels */
    /* authd writes the generation page; here it is read only. */
    if (mprotect((void *)(uintptr_t)m->generation, sizeof *m->generation, PROT_READ) != 0)
        return 1;
    sk_netproc_fds fds = { m->listen_fd, m->authd.client + first, m->per_net, child_ready, NULL, c->last_death,
                           m->generation, NULL, enter_sandbox, (void *)(intptr_t)SK_SANDBOX_NET,
                           c->slot, m->n_kids - KID_NET, m->slots, m->admit_region, m->metrics_fd, c->title };
    sk_admit_destroy(m->admit); /* the monitor's handle; the process makes its own */
    m->admit = NULL;
    fds.audit = remote_audit(m->audit_net.client + first, m->per_net);
    if (fds.audit == NULL)
        return 1;
    return sk_netproc_main(m->conf, &fds);
}

/* The descriptors a child keeps: its channel ends, its sockets, its own line to
 * the monitor. Everything else the monitor made is closed in the child. */
static int keep_of(const struct monitor *m, const struct child *c, int *keep, size_t cap)
{
    size_t n = 0;
#define KEEP(fd) do { if (n == cap) return -1; keep[n++] = (fd); } while (0)
    KEEP(c->child_end);
    if (c == &m->kids[KID_AUDITD]) {
        KEEP(m->ctl_fd);
        for (unsigned i = 0; i < m->audit_net.n; i++)
            KEEP(m->audit_net.server[i]);
        for (unsigned i = 0; i < m->audit_authd.n; i++)
            KEEP(m->audit_authd.server[i]);
    } else if (c == &m->kids[KID_AUTHD]) {
        for (unsigned i = 0; i < m->authd.n; i++)
            KEEP(m->authd.server[i]);
        for (unsigned i = 0; i < m->audit_authd.n; i++)
            KEEP(m->audit_authd.client[i]);
    } else {
        size_t first = (size_t)c->slot * m->per_net;
        KEEP(m->listen_fd);
        if (m->metrics_fd >= 0)
            KEEP(m->metrics_fd);
        for (unsigned i = 0; i < m->per_net; i++)
            KEEP(m->authd.client[first + i]);
        for (unsigned i = 0; i < m->per_net; i++)
            KEEP(m->audit_net.client[first + i]);
    }
#undef KEEP
    return (int)n;
}

void mon_child_main(struct monitor *m, struct child *c)
{
    static int keep[MON_MAX_FDS];
    char comm[16];
    int n;

    (void)prctl(PR_SET_PDEATHSIG, SIGKILL); /* kill -9 of the gateway ends all of it */
    if (getppid() == 1)
        _exit(1); /* the monitor died before the line above */
    if (sk_snprintf(comm, sizeof comm, "sekisho-%s", c->name) == 0)
        (void)prctl(PR_SET_NAME, comm);
    n = keep_of(m, c, keep, SK_ARRAY_LEN(keep));
    if (n < 0)
        _exit(1);
    for (unsigned i = 0; i < m->n_fds; i++) {
        int kept = 0;
        for (int k = 0; k < n; k++)
            kept |= keep[k] == m->all_fds[i];
        if (!kept)
            close(m->all_fds[i]);
    }
    if (c < &m->kids[KID_NET]) { /* the network processes' shared memory is theirs */
        sk_admit_destroy(m->admit);
        m->admit = NULL;
        (void)munmap(m->shared_map, m->shared_size);
        m->slots = NULL;
        m->admit_region = NULL;
    }
    if (sk_wire_client_new(&c->child_end, 1, "monitor", &child_mon) != 0)
        _exit(1);
    child_m = m;
    sk_notify_set_transport(sk_wire_notify_transport, child_mon);
    n = c->body(m, c);
    fflush(NULL);
    _exit(n);
}

/* ---- in the monitor ----------------------------------------------------- */

void mon_reset_clients(struct monitor *m, const struct child *c)
{
    const struct chans *sets[2] = { NULL, NULL };
    if (c >= &m->kids[KID_NET]) {
        /* A network process: a client, nobody waits on it. What it counted as its
         * own now goes; its replacement does it again (blocking) should the
         * admission table be locked just now. */
        sk_http_slot_restart(&m->slots[c->slot]);
        if (m->admit != NULL && sk_admit_clear_slot(m->admit, c->slot, 0) != 0)
            sk_log(SK_LOG_INFO, "monitor: admission table busy; %s's replacement releases its counts", c->title);
        return;
    }
    if (c == &m->kids[KID_AUTHD]) {
        sets[0] = &m->authd;
    } else if (c == &m->kids[KID_AUDITD]) {
        sets[0] = &m->audit_net;
        sets[1] = &m->audit_authd;
    }
    for (size_t s = 0; s < SK_ARRAY_LEN(sets); s++)
        for (unsigned i = 0; sets[s] != NULL && i < sets[s]->n; i++) {
            int fd = sets[s]->server[i];
            char drop[256];
            /* Requests the dead server never read: their callers get the reset and
             * decide (ask again, or tell the user); the new server must not also
             * carry them out behind their back. */
            while (recv(fd, drop, sizeof drop, MSG_DONTWAIT | MSG_TRUNC) >= 0)
                ;
            /* Never block the monitor on a caller that stopped reading. */
            if (sk_wire_send_flags(fd, SK_WIRE_RESET, 0, NULL, 0, MSG_DONTWAIT) != 0 && errno != EAGAIN)
                sk_log(SK_LOG_WARN, "monitor: cannot reset a channel of %s: %s", c->name, strerror(errno));
        }
}

/* What the network processes share: their counters and the admission table, in
 * one anonymous MAP_SHARED mapping made before the first fork. */
static int shared_setup(struct monitor *m, unsigned procs)
{
    size_t slots = (sizeof(struct sk_http_slot) * procs + 4095) & ~(size_t)4095;
    size_t admit = sk_admit_region_size(procs);
    unsigned char *map = mmap(NULL, slots + admit, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED)
        return -1;
    m->shared_map = map;
    m->shared_size = slots + admit;
    m->slots = (struct sk_http_slot *)map; /* zeroed by the kernel */
    m->admit_region = map + slots;
    if (sk_admit_region_init(m->admit_region, procs) != 0 ||
        sk_admit_attach(m->admit_region, procs, 0, m->conf->handshakes_per_address, &m->admit) != 0)
        return -1;
    return 0;
}

/* [metrics] listen is bound once, here, and served by every network process. */
static int metrics_setup(struct monitor *m)
{
    const char *spec = m->conf->metrics_listen;
    if (spec[0] == '\0')
        return 0;
    if (sk_tcp_listen(spec, 64, &m->metrics_fd) != 0 || mon_track(m, m->metrics_fd) != 0) {
        sk_log(SK_LOG_ERR, "[metrics] listen = %s: cannot listen there: %s", spec, strerror(errno));
        return -1;
    }
    /* Several processes poll it: the one that loses the race to accept must not block. */
    return fcntl(m->metrics_fd, F_SETFL, fcntl(m->metrics_fd, F_GETFL) | O_NONBLOCK);
}

/* Room for every channel end the monitor keeps (four per channel pair of a network
 * process): the open-file limit is raised to its hard maximum. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            sk_log(SK_LOG_WARN, "monitor: cannot raise the open-file limit: %s", strerror(errno));
    }
}

static int kids_setup(struct monitor *m, unsigned procs)
{
    m->kids[KID_AUDITD] = (struct child){ .name = "auditd", .peer = SK_WIRE_PEER_AUDITD, .body = auditd_body };
    m->kids[KID_AUTHD] = (struct child){ .name = "authd", .peer = SK_WIRE_PEER_AUTHD, .body = authd_body };
    m->n_kids = KID_NET + procs;
    for (unsigned i = 0; i < procs; i++)
        m->kids[KID_NET + i] = (struct child){ .name = "net", .peer = SK_WIRE_PEER_NET, .body = net_body, .slot = i };
    for (size_t i = 0; i < m->n_kids; i++) {
        int sv[2];
        struct child *c = &m->kids[i];
        if (i >= KID_NET ? sk_snprintf(c->title, sizeof c->title, "sekisho-net[%u]", c->slot)
                         : sk_snprintf(c->title, sizeof c->title, "sekisho-%s", c->name))
            return -1;
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0 || mon_track(m, sv[0]) != 0 ||
            mon_track(m, sv[1]) != 0)
            return -1;
        c->mon_end = sv[0];
        c->child_end = sv[1];
    }
    return 0;
}

int mon_setup(struct monitor *m)
{
    const sk_conf *conf = m->conf;
    unsigned procs = conf->listen_processes > 0 ? conf->listen_processes : 1;

    if (procs > MON_MAX_KIDS - KID_NET)
        return -1;
    /* Every thread of a network process that may call gets its own channel. */
    m->per_net = sk_net_process_workers(conf) + conf->auth_workers + 4;
    raise_nofile();
    if (sk_tcp_listen(conf->listen_address, 4096, &m->listen_fd) != 0 || mon_track(m, m->listen_fd) != 0) {
        sk_log(SK_LOG_ERR, "cannot listen on %s: %s", conf->listen_address, strerror(errno));
        return -1;
    }
    if (metrics_setup(m) != 0)
        return -1;
    if (sk_auditd_ctl_path(conf, m->ctl_path, sizeof m->ctl_path) != 0 ||
        sk_auditd_ctl_listen(m->ctl_path, &m->ctl_fd) != 0 ||
        mon_track(m, m->ctl_fd) != 0) {
        sk_log(SK_LOG_ERR, "cannot open auditd's socket in %s: %s", conf->state_dir, strerror(errno));
        return -1;
    }
    /* Shared by fork: one page, nothing secret in it (see http_lookup.c). */
    m->generation = mmap(NULL, sizeof *m->generation, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m->generation == MAP_FAILED) {
        m->generation = NULL;
        return -1;
    }
    if (shared_setup(m, procs) != 0)
        return -1;
    if (chans_make(m, &m->authd, m->per_net * procs) != 0 || chans_make(m, &m->audit_net, m->per_net * procs) != 0 ||
        chans_make(m, &m->audit_authd, MON_AUDIT_AUTHD_CHANNELS) != 0)
        return -1;
    return kids_setup(m, procs);
}
