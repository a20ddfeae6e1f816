/*
 * sekishoctl restore --from DIR: put a verified backup (ctl_backup.h) back in
 * place of the store and the TOTP key. Refused while any process (the gateway)
 * has the store open. What was there is kept beside it as
 * NAME.before-restore-<UTC time>.
 *
 * The audit log is append-only and never goes backwards because of a restore:
 * when the live log verifies and contains the backup's last entry (same
 * sequence number and chain hash), it is kept and the restore is recorded in
 * it. A torn last line or unsealed tail of a crashed writer is first repaired
 * by the writer, and a gap a writer already recorded (audit.truncated) does not
 * count as damage: it stays reported either way. Only a live log that is
 * missing or does not verify is set aside and replaced by the backup's, and
 * only when that verifies against this host's audit key; the writer then finds
 * the log shorter than the head it remembers and records audit.truncated, which
 * verify keeps reporting. Anything else (a backup of another log) is refused
 * before anything changes.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctl_backup.h"
#include "sk_admin_audit.h"

static const char usage_restore[] = "restore --from DIR   (the gateway must be stopped)";

void ctl_restore_usage_to(FILE *f)
{
    fprintf(f, "  %s\n", usage_restore);
}

void ctl_restore_usage(void)
{
    ctl_restore_usage_to(stderr);
}

/* The pid of another process holding `file` open (via /proc/PID/fd), or 0. A
 * process of another user is seen only by root; the gateway runs as the user who
 * restores (sekisho) or under root's eyes. */
static long holder_of(const char *file)
{
    char real[PATH_MAX], fddir[64], link[PATH_MAX + 64], target[PATH_MAX];
    DIR *proc, *fds;
    struct dirent *p, *f;
    long found = 0, self = (long)getpid();

    if (realpath(file, real) == NULL || (proc = opendir("/proc")) == NULL)
        return 0;
    while (found == 0 && (p = readdir(proc)) != NULL) {
        char *end;
        long pid = strtol(p->d_name, &end, 10);
        if (*end != '\0' || pid <= 0 || pid == self)
            continue;
        if (sk_snprintf(fddir, sizeof fddir, "/proc/%ld/fd", pid) != 0 || (fds = opendir(fddir)) == NULL)
            continue;
        while ((f = readdir(fds)) != NULL) {
            ssize_t n;
            if (f->d_name[0] == '.' || sk_snprintf(link, sizeof link, "%s/%s", fddir, f->d_name) != 0)
                continue;
            n = readlink(link, target, sizeof target - 1);
            if (n <= 0)
                continue;
            target[n] = '\0';
            if (strcmp(target, real) == 0) {
                found = pid;
                break;
            }
        }
        closedir(fds);
    }
    closedir(proc);
    return found;
}

/* path -> path.before-restore-STAMP (-2, -3, ... when restores follow within a
 * second) when it exists. Never over an earlier one: those are kept too. */
static int set_aside(const char *path, const char *stamp, char *kept, size_t cap)
{
    kept[0] = '\0';
    if (access(path, F_OK) != 0)
        return errno == ENOENT ? 0 : -1;
    for (int n = 1; n < 100; n++) {
        int r = n == 1 ? sk_snprintf(kept, cap, "%s.before-restore-%s", path, stamp)
                       : sk_snprintf(kept, cap, "%s.before-restore-%s-%d", path, stamp, n);
        if (r != 0) {
            errno = ENAMETOOLONG;
            break;
        }
        if (access(kept, F_OK) == 0)
            continue;
        if (errno == ENOENT && rename(path, kept) == 0)
            return 0;
        break;
    }
    ctl_err("restore: cannot move %s aside: %s", path, strerror(errno));
    kept[0] = '\0';
    return -1;
}

/* Files created by root for a state directory owned by the service user must
 * stay that user's. */
static void own_like(const char *path, const struct stat *owner)
{
    if (geteuid() == 0 && chown(path, owner->st_uid, owner->st_gid) != 0)
        ctl_err("restore: warning: cannot give %s to uid %u", path, (unsigned)owner->st_uid);
}

static int restore_file(const char *from_dir, const char *rel, const char *to, const struct stat *owner)
{
    char from[SK_CONF_PATH_MAX + 300];
    if (sk_snprintf(from, sizeof from, "%s/%s", from_dir, rel) != 0 || ctl_copy_file(from, to) != 0) {
        ctl_err("restore: cannot copy %s to %s: %s", rel, to, strerror(errno));
        return -1;
    }
    own_like(to, owner);
    return 0;
}

static int restore_audit(const char *from_dir, const char *audit_dir, const struct stat *owner)
{
    char src[SK_CONF_PATH_MAX + 16], to[SK_CONF_PATH_MAX + 300], rel[300];
    DIR *d;
    struct dirent *e;
    int rc = 0;

    if (sk_mkdir_p(audit_dir, 0700) != 0 || sk_snprintf(src, sizeof src, "%s/audit", from_dir) != 0 ||
        (d = opendir(src)) == NULL) {
        ctl_err("restore: cannot prepare %s", audit_dir);
        return -1;
    }
    own_like(audit_dir, owner);
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (sk_snprintf(rel, sizeof rel, "audit/%s", e->d_name) != 0 ||
            sk_snprintf(to, sizeof to, "%s/%s", audit_dir, e->d_name) != 0)
            rc = -1;
        else
            rc = restore_file(from_dir, rel, to, owner);
    }
    closedir(d);
    return rc;
}

/* The last entry of the log in dir: *seq (0: none) and its chain hash. strict: an
 * entry whose hash does not match its content is an error (it proves nothing);
 * otherwise sk_audit_verify is left to say what is wrong. */
static int audit_last(const char *dir, int strict, uint64_t *seq, char h[SK_AUDIT_HASH_HEX + 1], int64_t *ts_ms,
                      char *err, size_t cap)
{
    sk_audit_reader *r = NULL;
    sk_audit_entry e;
    const char *line;
    int k, rc = -1;

    memset(&e, 0, sizeof e);
    *seq = 0;
    *ts_ms = 0;
    h[0] = '\0';
    if (sk_audit_reader_open(dir, &r, err, cap) != 0)
        goto out;
    while ((k = sk_audit_reader_next(r, &e, &line, err, cap)) == 1) {
        if (strict && !e.hash_ok) {
            if (sk_snprintf(err, cap, "entry %llu does not match its hash", (unsigned long long)e.seq) != 0)
                err[0] = '\0';
            goto out;
        }
        *seq = e.seq;
        *ts_ms = e.ts_ms;
        memcpy(h, e.hash, SK_AUDIT_HASH_HEX + 1);
    }
    rc = k == 0 ? 0 : -1;
out:
    sk_audit_entry_free(&e);
    sk_audit_reader_close(r);
    return rc;
}

/* 1 when the log in dir holds entry seq with chain hash h (h NULL: any hash) and,
 * when event is not NULL, that event; 0 when not; -1 error. */
static int audit_holds(const char *dir, uint64_t seq, const char *h, const char *event, char *err, size_t cap)
{
    sk_audit_reader *r = NULL;
    sk_audit_entry e;
    const char *line;
    int k, rc = -1;

    memset(&e, 0, sizeof e);
    if (sk_audit_reader_open(dir, &r, err, cap) != 0)
        goto out;
    while ((k = sk_audit_reader_next(r, &e, &line, err, cap)) == 1 && e.seq < seq)
        ;
    if (k < 0)
        goto out;
    rc = k == 1 && e.seq == seq && e.hash_ok && (h == NULL || strcmp(e.hash, h) == 0) &&
         (event == NULL || (e.event != NULL && strcmp(e.event, event) == 0));
out:
    sk_audit_entry_free(&e);
    sk_audit_reader_close(r);
    return rc;
}

/* The initial audit public key: the live one, else the backup's copy. */
static int audit_pub(const sk_conf *conf, const char *from, uint8_t pub[32])
{
    char path[SK_CONF_PATH_MAX + 32], keyid[SK_AUDIT_HASH_HEX + 1];
    if (sk_snprintf(path, sizeof path, "%s.pub", conf->audit_key) == 0 && sk_audit_pubkey_load(path, pub, keyid) == 0)
        return 0;
    if (sk_snprintf(path, sizeof path, "%s/audit.key.pub", from) == 0 && sk_audit_pubkey_load(path, pub, keyid) == 0)
        return 0;
    return -1;
}

/* A torn last line (a crash mid-write) or a tail its dead writer never sealed is
 * what any writer repairs when it next opens the log (audit.recover, a
 * checkpoint): let it, rather than call the log damaged and go back to the
 * backup's. A writer that refuses the log leaves it to verify to say why. */
static void let_writer_repair(const sk_conf *conf)
{
    sk_adm_audit *log = NULL;
    char err[SK_CONF_PATH_MAX * 2 + 512];
    if (sk_adm_open(conf, "sekishoctl", stdout, &log, err, sizeof err) == 0)
        sk_adm_close(log);
}

enum audit_plan { PLAN_REFUSE = -1, PLAN_KEEP_LIVE = 0, PLAN_FROM_BACKUP = 1 };

/* 1: the live log verifies, or fails only on a gap a writer already recorded as
 * audit.truncated (verify checks that last, so nothing else is wrong, and it stays
 * reported whatever restore does); 0: it does not (why says how); -1: verify
 * could not run. */
static int live_log_intact(const sk_conf *conf, const uint8_t pub[32], char *why, size_t cap)
{
    sk_audit_verdict v;
    char err[256];

    if (sk_audit_verify(conf->audit_dir, pub, &v) == 0 &&
        (v.problem == SK_AUDIT_TRUNCATED_TAIL || v.problem == SK_AUDIT_UNSIGNED))
        let_writer_repair(conf);
    if (sk_audit_verify(conf->audit_dir, pub, &v) != 0)
        return -1;
    if (v.problem == SK_AUDIT_OK ||
        (v.problem == SK_AUDIT_TRUNCATED && v.seq != 0 &&
         audit_holds(conf->audit_dir, v.seq, NULL, SK_AUDIT_EV_TRUNCATED, err, sizeof err) == 1))
        return 1;
    if (sk_snprintf(why, cap, "the live audit log does not verify (%s at %s line %llu: %s)",
                    sk_audit_problem_name(v.problem), v.segment, (unsigned long long)v.line, v.detail) != 0)
        why[0] = '\0';
    return 0;
}

/* The backup's log may replace the live one only when it is this host's log: it
 * verifies against the host's initial key as of its own last entry (a hot copy
 * ends in a young unsealed tail, which is fine at that moment). */
static int backup_log_ok(const char *bdir, const uint8_t pub[32], int64_t last_ms)
{
    sk_audit_verify_opts o;
    sk_audit_verdict v;

    memset(&o, 0, sizeof o);
    o.now_ms = last_ms > 0 ? last_ms : 1;
    if (sk_audit_verify_ex(bdir, pub, &o, &v) != 0) {
        ctl_err("restore: the backup's audit log could not be verified; nothing was changed");
        return -1;
    }
    if (v.problem != SK_AUDIT_OK) {
        ctl_err("restore: the backup's audit log does not verify against this host's audit key (%s at %s "
                "line %llu: %s); nothing was changed", sk_audit_problem_name(v.problem), v.segment,
                (unsigned long long)v.line, v.detail);
        return -1;
    }
    return 0;
}

/* Decide, before anything changes, what happens to the audit log (see the top of
 * this file). why gets the reason, for the operator and the restore event; a
 * reason too long to say is left out, not fatal. */
static enum audit_plan plan_audit(const sk_conf *conf, const char *from, char *why, size_t cap)
{
    char bdir[SK_CONF_PATH_MAX + 16], bh[SK_AUDIT_HASH_HEX + 1], lh[SK_AUDIT_HASH_HEX + 1], err[256] = "";
    uint64_t bseq = 0, lseq = 0;
    int64_t bts = 0, lts = 0;
    uint8_t pub[32];
    int intact = 0, held;

    if (sk_snprintf(bdir, sizeof bdir, "%s/audit", from) != 0)
        return PLAN_REFUSE;
    if (access(bdir, F_OK) == 0 && audit_last(bdir, 1, &bseq, bh, &bts, err, sizeof err) != 0) {
        ctl_err("restore: cannot read the backup's audit log: %s; nothing was changed", err);
        return PLAN_REFUSE;
    }
    if (audit_pub(conf, from, pub) != 0) {
        ctl_err("restore: no audit public key (%s.pub or the backup's) to check the audit logs with; "
                "nothing was changed", conf->audit_key);
        return PLAN_REFUSE;
    }
    if (access(conf->audit_dir, F_OK) != 0 && errno == ENOENT) {
        if (sk_snprintf(why, cap, "there is no live audit log") != 0)
            why[0] = '\0';
    } else if (audit_last(conf->audit_dir, 0, &lseq, lh, &lts, err, sizeof err) != 0) {
        if (sk_snprintf(why, cap, "the live audit log is unreadable (%s)", err) != 0)
            why[0] = '\0';
    } else if (lseq == 0) {
        if (sk_snprintf(why, cap, "there is no live audit log") != 0)
            why[0] = '\0';
    } else if ((intact = live_log_intact(conf, pub, why, cap)) < 0) {
        ctl_err("restore: the live audit log could not be verified; nothing was changed");
        return PLAN_REFUSE;
    }
    if (!intact)
        return bseq == 0 || backup_log_ok(bdir, pub, bts) == 0 ? PLAN_FROM_BACKUP : PLAN_REFUSE;
    held = bseq == 0 ? 1 : audit_holds(conf->audit_dir, bseq, bh, NULL, err, sizeof err);
    if (held != 1) {
        ctl_err("restore: the live audit log is intact but does not contain the backup's last audit entry "
                "%llu (%s): the backup is not of this log, or older than a recorded gap; nothing was "
                "changed (to restore it anyway, move %s aside by hand first)",
                (unsigned long long)bseq, held < 0 ? err : "different or pruned", conf->audit_dir);
        return PLAN_REFUSE;
    }
    if (sk_snprintf(why, cap, "the live audit log is intact and contains the backup's last entry %llu "
                    "(the live log ends at %llu)", (unsigned long long)bseq, (unsigned long long)lseq) != 0)
        why[0] = '\0';
    return PLAN_KEEP_LIVE;
}

static int cmd_restore(const sk_conf *conf, const char *from)
{
    sk_adm_audit *log = NULL;
    char data[SK_CONF_PATH_MAX + 16], db[SK_CONF_PATH_MAX + 8], stamp[32], kept_db[SK_CONF_PATH_MAX + 64],
        kept_audit[SK_CONF_PATH_MAX + 64], kept_totp[SK_CONF_PATH_MAX + 64], rel_totp[SK_CONF_PATH_MAX + 16];
    struct stat owner;
    struct tm tm;
    time_t t = time(NULL);
    long users = 0, pid;
    size_t files = 0;
    int ret = CTL_REFUSED;
    char why[SK_CONF_PATH_MAX + 512] = "";
    enum audit_plan plan;

    if (ctl_backup_verify_dir(from, &users, &files) != CTL_OK) {
        ctl_err("restore: refused, nothing was changed");
        return CTL_REFUSED;
    }
    if (sk_snprintf(db, sizeof db, "%s/db", conf->state_dir) != 0 ||
        sk_snprintf(data, sizeof data, "%s/data.mdb", db) != 0)
        return CTL_REFUSED;
    if ((pid = holder_of(data)) != 0) {
        ctl_err("restore: process %ld (the gateway?) has the store %s open; stop it first "
                "(systemctl stop sekisho); nothing was changed", pid, data);
        return CTL_REFUSED;
    }
    if (sk_mkdir_p(conf->state_dir, 0700) != 0 || stat(conf->state_dir, &owner) != 0) {
        ctl_err("restore: cannot use the state directory %s", conf->state_dir);
        return CTL_REFUSED;
    }
    if ((plan = plan_audit(conf, from, why, sizeof why)) == PLAN_REFUSE)
        return CTL_REFUSED;
    /* Audit before act when the log stays: a live log its writer will not
     * continue refuses the restore before anything changes. */
    if (plan == PLAN_KEEP_LIVE && ctl_log_open(conf, &log) != CTL_OK)
        return CTL_REFUSED;
    if (gmtime_r(&t, &tm) == NULL || strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm) == 0)
        goto out;
    /* Set aside, then copy in: each step can be undone by hand from what the
     * messages name; the old files are never deleted. */
    kept_audit[0] = '\0';
    if (set_aside(db, stamp, kept_db, sizeof kept_db) != 0 ||
        (plan == PLAN_FROM_BACKUP && set_aside(conf->audit_dir, stamp, kept_audit, sizeof kept_audit) != 0))
        goto out;
    if (sk_mkdir_p(db, 0700) != 0) {
        ctl_err("restore: cannot create %s", db);
        goto out;
    }
    own_like(db, &owner);
    if (restore_file(from, "db/data.mdb", data, &owner) != 0 ||
        (plan == PLAN_FROM_BACKUP && restore_audit(from, conf->audit_dir, &owner) != 0))
        goto out;
    kept_totp[0] = '\0';
    if (sk_snprintf(rel_totp, sizeof rel_totp, "%s/totp.key", from) == 0 && access(rel_totp, F_OK) == 0) {
        if (set_aside(conf->auth_totp_key, stamp, kept_totp, sizeof kept_totp) != 0 ||
            restore_file(from, "totp.key", conf->auth_totp_key, &owner) != 0)
            goto out;
    }
    /* Recorded in the live log (or, replaced, in the backup's, after the
     * writer's audit.truncated when it remembers a later head). */
    if (log == NULL && ctl_log_open(conf, &log) != CTL_OK) {
        ctl_err("restore: the state was restored but the restore could not be recorded");
        goto out;
    }
    {
        char n_users[24];
        if (sk_snprintf(n_users, sizeof n_users, "%ld", users) != 0)
            n_users[0] = '\0';
        sk_audit_kv kv[] = { { "from", from }, { "users", n_users }, { "previous_db", kept_db[0] ? kept_db : NULL },
                             { "previous_audit", kept_audit[0] ? kept_audit : NULL },
                             { "audit_log", plan == PLAN_KEEP_LIVE ? "kept" : "from_backup" },
                             { "audit_reason", why[0] ? why : NULL }, { "result", "ok" } };
        if (ctl_log_change(log, "restore", NULL, kv, SK_ARRAY_LEN(kv)) != CTL_OK)
            goto out;
    }
    printf("restored from %s (%ld user(s); the backup's %zu files verified)\n", from, users, files);
    if (plan == PLAN_KEEP_LIVE)
        printf("audit log: kept the live log, not the backup's: %s\n", why);
    else
        printf("audit log: put the backup's log in place: %s; a gap against the head this host "
               "remembers is recorded as audit.truncated and audit verify will report it\n", why);
    if (kept_db[0] || kept_audit[0] || kept_totp[0])
        printf("the previous state is kept: %s%s%s%s%s\n", kept_db, kept_audit[0] ? " " : "", kept_audit,
               kept_totp[0] ? " " : "", kept_totp);
    ret = CTL_OK;
out:
    ctl_log_close(log);
    return ret;
}

int ctl_restore_main(const sk_conf *conf, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "from", required_argument, NULL, 'f' },
        { NULL, 0, NULL, 0 },
    };
    const char *from = NULL;
    int c;

    opterr = 0;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        if (c != 'f' || from != NULL) {
            ctl_err("restore: unknown, repeated or incomplete option");
            fprintf(stderr, "usage: sekishoctl [-c FILE] %s\n", usage_restore);
            return CTL_USAGE;
        }
        from = optarg;
    }
    if (from == NULL || optind < argc) {
        ctl_err("restore: give --from DIR");
        fprintf(stderr, "usage: sekishoctl [-c FILE] %s\n", usage_restore);
        return CTL_USAGE;
    }
    if (strcmp(conf->store_backend, "lmdb") != 0) {
        ctl_err("restore puts back an LMDB store; with [store] backend = %s restore the database with its own "
                "tools (pg_restore)", conf->store_backend);
        return CTL_REFUSED;
    }
    return cmd_restore(conf, from);
}
