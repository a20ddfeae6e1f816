/* sk_admin_audit.c — admin.change entries of sekishoctl and sekisho-ca
 * (contract in sk_admin_audit.h). */
#define _GNU_SOURCE
#include "sk_admin_audit.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sk_auditd.h"

struct sk_adm_audit {
    sk_audit *log;
    char actor[SK_ADM_ACTOR_MAX];
    char tool[32];
    char uid[24];
    int switch_owner;         /* run audit operations as owner_uid/owner_gid */
    uid_t owner_uid;
    gid_t owner_gid;
    gid_t saved_gid;
    /* auditd listened on its ctl socket at sk_adm_open: every entry goes there
     * (one connection per entry) and the key is never opened. */
    int remote;
    char ctl[SK_CONF_PATH_MAX + 32];
};

static void set_err(char *err, size_t cap, const char *fmt, ...) SK_PRINTF(3, 4);

static void set_err(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    int n;
    if (!err || cap == 0)
        return;
    va_start(ap, fmt);
    n = vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    if (n < 0)
        err[0] = '\0';
    else if ((size_t)n >= cap && cap > 4)
        memcpy(err + cap - 4, "...", 4); /* a cut reason is still a reason */
}

/* Only printable ASCII of a name that comes from the environment; the audit
 * module escapes anyway, this keeps the actor readable and short. */
static void copy_name(char *out, size_t cap, const char *in)
{
    size_t j = 0;
    for (size_t i = 0; in[i] != '\0' && j + 1 < cap && i < 64; i++)
        out[j++] = (in[i] > 0x20 && in[i] < 0x7f) ? in[i] : '?';
    out[j] = '\0';
}

void sk_adm_actor(char *out, size_t cap)
{
    char name[80], sudo[80];
    struct passwd *pw = getpwuid(geteuid());
    const char *su = getenv("SUDO_USER");
    int rc;

    if (cap == 0)
        return;
    if (pw && pw->pw_name && pw->pw_name[0])
        copy_name(name, sizeof name, pw->pw_name);
    else if (sk_snprintf(name, sizeof name, "uid %lu", (unsigned long)geteuid()) != 0)
        name[0] = '\0';
    if (su && su[0]) {
        copy_name(sudo, sizeof sudo, su);
        rc = sk_snprintf(out, cap, "%s (sudo: %s)", name, sudo);
    } else {
        rc = sk_strlcpy(out, cap, name);
    }
    if (rc != 0 && cap > 4)
        memcpy(out + cap - 4, "...", 4);
}

/* ---- running as the owner of the audit directory ------------------------ */

static int as_owner(sk_adm_audit *a)
{
    if (!a->switch_owner)
        return 0;
    if (setegid(a->owner_gid) != 0)
        return -1;
    if (seteuid(a->owner_uid) != 0) {
        /* Undoing half a switch must work, or the tool would go on with the wrong group. */
        if (setegid(a->saved_gid) != 0)
            abort();
        return -1;
    }
    return 0;
}

static void as_self(sk_adm_audit *a)
{
    if (!a->switch_owner)
        return;
    /* Back to root; failing here would leave the tool half-privileged, which is
     * worse than stopping. */
    if (seteuid(0) != 0 || setegid(a->saved_gid) != 0)
        abort();
}

static void find_owner(sk_adm_audit *a, const char *dir)
{
    struct stat st;
    char parent[PATH_MAX];
    const char *slash;

    a->switch_owner = 0;
    if (geteuid() != 0)
        return;
    if (stat(dir, &st) != 0) {
        slash = strrchr(dir, '/');
        if (!slash || slash == dir || (size_t)(slash - dir) >= sizeof parent)
            return;
        memcpy(parent, dir, (size_t)(slash - dir));
        parent[slash - dir] = '\0';
        if (stat(parent, &st) != 0)
            return;
    }
    if (!S_ISDIR(st.st_mode) || st.st_uid == 0)
        return;
    a->switch_owner = 1;
    a->owner_uid = st.st_uid;
    a->owner_gid = st.st_gid;
    a->saved_gid = getegid();
}

/* ---- auditd (sk_auditd.h) ------------------------------------------------ */

/* A remote handle on auditd's ctl socket: 0 ok, 1 nothing listens there, -1
 * another error (err). */
static int ctl_open(const char *path, sk_audit **out, char *err, size_t cap)
{
    sk_wire_client *c = NULL;
    int fd = -1, r;

    *out = NULL;
    r = sk_auditd_ctl_connect(path, &fd);
    if (r == 1)
        return 1;
    if (r != 0) {
        /* Not "nothing listens": auditd may well run, so writing ourselves (and
         * opening the key) is not an option. */
        int saved = errno; /* the caller tells EACCES apart */
        set_err(err, cap, "cannot reach auditd at %s: %s", path, strerror(saved));
        errno = saved;
        return -1;
    }
    if (sk_wire_client_new(&fd, 1, "auditd", &c) != 0) {
        close(fd);
        set_err(err, cap, "out of memory");
        return -1;
    }
    if (sk_auditd_client_open(c, out) != 0) {
        sk_wire_client_free(c);
        set_err(err, cap, "out of memory");
        return -1;
    }
    return 0;
}

/* Connect as ourselves first; a root without CAP_DAC_OVERRIDE (the CRL job's unit)
 * cannot open the gateway user's socket (0600) and then connects as the audit
 * directory's owner, which auditd serves as its own uid. */
static int ctl_open_as_owner(sk_adm_audit *a, sk_audit **out, char *err, size_t cap)
{
    int r = ctl_open(a->ctl, out, err, cap);
    if (r != -1 || errno != EACCES || !a->switch_owner)
        return r;
    if (as_owner(a) != 0) {
        set_err(err, cap, "cannot switch to uid %lu, the owner of the audit directory, to reach auditd: %s",
                (unsigned long)a->owner_uid, strerror(errno));
        return -1;
    }
    r = ctl_open(a->ctl, out, err, cap);
    as_self(a);
    return r;
}

/* Is auditd running (and does it accept us)? 0 yes, 1 nothing listens, -1 error. */
static int ctl_probe(sk_adm_audit *a, const sk_conf *conf, char *err, size_t cap)
{
    sk_audit *h = NULL;
    int r, fr;
    if (sk_auditd_ctl_path(conf, a->ctl, sizeof a->ctl) != 0)
        return 1; /* a path too long for a socket: no auditd can listen there */
    r = ctl_open_as_owner(a, &h, err, cap);
    if (r != 0)
        return r;
    fr = sk_audit_flush(h);
    sk_audit_close(h);
    if (fr != 0) {
        set_err(err, cap, "auditd at %s did not accept the connection (only root and the gateway's user "
                "may submit audit entries)", a->ctl);
        return -1;
    }
    return 0;
}

/* ---- key checks ------------------------------------------------------------ */

/* The checks sk_audit_signer_from_file makes, done here first so that the
 * operator gets the precise reason on one line (the audit module's reasons go
 * to the daemon log). */
static int check_key(const char *key, const char *dir, char *err, size_t cap)
{
    char rkey[PATH_MAX], rdir[PATH_MAX];
    struct stat st;
    int fd;

    if (realpath(dir, rdir) && realpath(key, rkey)) {
        size_t dl = strlen(rdir);
        if (dl == 1 || (strncmp(rkey, rdir, dl) == 0 && rkey[dl] == '/')) {
            set_err(err, cap, "the signing key %s is inside the audit directory %s; move it out",
                    key, dir);
            return -1;
        }
    }
    if (stat(key, &st) != 0 || !S_ISREG(st.st_mode)) {
        set_err(err, cap, "the signing key %s is not a regular file", key);
        return -1;
    }
    if (st.st_mode & 077) {
        set_err(err, cap, "the signing key %s must be mode 0600 (it is %04o)", key,
                (unsigned)(st.st_mode & 07777));
        return -1;
    }
    fd = open(key, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        set_err(err, cap, "cannot read the signing key %s: %s", key, strerror(errno));
        return -1;
    }
    (void)close(fd);
    return 0;
}

static int prepare_key(const sk_conf *conf, FILE *notice, char *err, size_t cap)
{
    char pub[SK_CONF_PATH_MAX + 8], why[512];
    int have_key, have_pub;

    if (conf->audit_key[0] == '\0' || conf->audit_dir[0] == '\0') {
        set_err(err, cap, "no [audit] dir or key configured");
        return -1;
    }
    if (sk_snprintf(pub, sizeof pub, "%s.pub", conf->audit_key) != 0) {
        set_err(err, cap, "the [audit] key path is too long");
        return -1;
    }
    have_key = access(conf->audit_key, F_OK) == 0;
    have_pub = access(pub, F_OK) == 0;
    if (!have_key && have_pub) {
        set_err(err, cap, "the signing key %s is missing but %s exists (key removed?); restore "
                "the key, or move %s away and run `sekishoctl audit keygen`",
                conf->audit_key, pub, pub);
        return -1;
    }
    /* The key sits in the state directory by default: on a fresh install
     * nothing exists yet (the gateway creates it the same way). */
    if (sk_mkdir_p(conf->state_dir, 0700) != 0) {
        set_err(err, cap, "cannot create the state directory %s: %s", conf->state_dir,
                strerror(errno));
        return -1;
    }
    if (sk_mkdir_p(conf->audit_dir, 0700) != 0) {
        set_err(err, cap, "cannot create the audit directory %s: %s", conf->audit_dir,
                strerror(errno));
        return -1;
    }
    if (!have_key) {
        if (sk_audit_keygen(conf->audit_key, conf->audit_dir, why, sizeof why) != 0) {
            set_err(err, cap, "cannot create the signing key %s: %s", conf->audit_key, why);
            return -1;
        }
        if (notice)
            fprintf(notice, "created the audit signing key %s; give %s to the auditors\n",
                    conf->audit_key, pub);
    }
    return check_key(conf->audit_key, conf->audit_dir, err, cap);
}

int sk_adm_open(const sk_conf *conf, const char *tool, FILE *notice, sk_adm_audit **out, char *err,
                size_t errcap)
{
    sk_adm_audit *a = NULL;
    sk_audit_options o;
    char why[512];
    int rc = -1, switched = 0;

    *out = NULL;
    a = calloc(1, sizeof *a);
    if (!a) {
        set_err(err, errcap, "out of memory");
        goto out;
    }
    sk_adm_actor(a->actor, sizeof a->actor);
    if (sk_strlcpy(a->tool, sizeof a->tool, tool) != 0 ||
        sk_snprintf(a->uid, sizeof a->uid, "%lu", (unsigned long)geteuid()) != 0) {
        set_err(err, errcap, "internal error (tool name)");
        goto out;
    }
    find_owner(a, conf->audit_dir);
    switch (ctl_probe(a, conf, err, errcap)) {
    case 0:
        a->remote = 1; /* auditd writes: no key here */
        rc = 0;
        goto out;
    case 1:
        break;
    default:
        goto out;
    }
    if (as_owner(a) != 0) {
        set_err(err, errcap, "cannot switch to uid %lu, the owner of %s: %s",
                (unsigned long)a->owner_uid, conf->audit_dir, strerror(errno));
        goto out;
    }
    switched = 1;
    if (prepare_key(conf, notice, err, errcap) != 0)
        goto out;
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
    /* No heartbeat thread: this process switches its effective uid around each
     * audit call, and a thread writing in between would create root-owned files. */
    o.no_thread = 1;
    if (sk_audit_open(&o, &a->log, why, sizeof why) != 0) {
        set_err(err, errcap, "%s", why);
        goto out;
    }
    rc = 0;
out:
    if (switched)
        as_self(a);
    if (rc == 0) {
        *out = a;
    } else if (a) {
        free(a);
    }
    return rc;
}

/* One connection per entry: an operator may sit at a password prompt for long,
 * and a restarted auditd accepts what waited in the listen backlog. */
static int append_remote(sk_adm_audit *a, const sk_audit_event *e, char *err, size_t cap)
{
    sk_audit *h = NULL;
    int r = ctl_open_as_owner(a, &h, err, cap), rc;
    if (r == 1)
        set_err(err, cap, "auditd (%s) stopped: the %s entry was not recorded", a->ctl, e->event);
    if (r != 0)
        return -1;
    rc = sk_audit_append(h, e, 1, NULL);
    /* The entry is durable once the append returned 0; the flush only hurries the
     * writer's housekeeping (request batch, summaries), so its failure is logged. */
    if (rc == 0 && sk_audit_flush(h) != 0)
        sk_log(SK_LOG_WARN, "auditd: flush after the %s entry failed", e->event);
    sk_audit_close(h);
    if (rc != 0) {
        set_err(err, cap, "auditd did not record the %s entry", e->event);
        return -1;
    }
    return 0;
}

static int append(sk_adm_audit *a, const char *event, const char *actor, const char *tenant,
                  const char *serial, const sk_audit_kv *head, size_t nhead, const sk_audit_kv *kv,
                  size_t n, const sk_audit_kv *tail, size_t ntail, char *err, size_t cap)
{
    sk_audit_kv all[SK_ADM_MAX_KV + 8];
    sk_audit_event e;
    size_t k = 0;
    int rc;

    if (!a || (!a->log && !a->remote) || n > SK_ADM_MAX_KV || nhead + ntail > 8) {
        set_err(err, cap, "audit log not open or too many details");
        return -1;
    }
    for (size_t i = 0; i < nhead; i++)
        all[k++] = head[i];
    for (size_t i = 0; i < n; i++)
        if (kv[i].key && kv[i].value)
            all[k++] = kv[i];
    for (size_t i = 0; i < ntail; i++)
        all[k++] = tail[i];
    memset(&e, 0, sizeof e);
    e.event = event;
    e.actor = actor;
    e.tenant = tenant;
    e.serial = serial;
    e.kv = all;
    e.n_kv = k;
    if (a->remote)
        return append_remote(a, &e, err, cap);
    if (as_owner(a) != 0) {
        set_err(err, cap, "cannot switch to uid %lu: %s", (unsigned long)a->owner_uid,
                strerror(errno));
        return -1;
    }
    rc = sk_audit_append(a->log, &e, 1, NULL);
    as_self(a);
    if (rc != 0) {
        set_err(err, cap, "cannot append the %s entry to the audit log", event);
        return -1;
    }
    return 0;
}

int sk_adm_change(sk_adm_audit *a, const char *command, const char *tenant, const char *serial,
                  const sk_audit_kv *kv, size_t n, char *err, size_t errcap)
{
    sk_audit_kv head[] = { { "command", command } };
    sk_audit_kv tail[] = { { "tool", a ? a->tool : "" }, { "uid", a ? a->uid : "" } };
    return append(a, SK_AUDIT_EV_ADMIN, a ? a->actor : NULL, tenant, serial, head,
                  SK_ARRAY_LEN(head), kv, n, tail, SK_ARRAY_LEN(tail), err, errcap);
}

int sk_adm_event(sk_adm_audit *a, const char *event, const char *actor, const char *tenant,
                 const sk_audit_kv *kv, size_t n, char *err, size_t errcap)
{
    sk_audit_kv tail[] = { { "by", a ? a->actor : "" }, { "tool", a ? a->tool : "" } };
    return append(a, event, actor ? actor : (a ? a->actor : NULL), tenant, NULL, NULL, 0, kv, n,
                  tail, SK_ARRAY_LEN(tail), err, errcap);
}

const char *sk_adm_operator(const sk_adm_audit *a)
{
    return a ? a->actor : "";
}

void sk_adm_close(sk_adm_audit *a)
{
    if (!a)
        return;
    if (a->log) {
        /* Without the owner's rights the closing checkpoint could not create a
         * new day's segment; closing as root would be the bug this avoids. */
        if (as_owner(a) == 0) {
            sk_audit_close(a->log);
            as_self(a);
        } else {
            sk_audit_close(a->log);
        }
    }
    free(a);
}
