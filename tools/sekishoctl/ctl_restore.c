/*
 * sekishoctl restore --from DIR: put a verified backup (ctl_backup.h) back in
 * place of the store, the audit log and the TOTP key. Refused while any process
 * (the gateway) has the store open. What was there is kept beside it as
 * NAME.before-restore-<UTC time>. The restore itself is then recorded in the
 * restored audit log, whose chain it continues.
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

/* path -> path.before-restore-STAMP when it exists. */
static int set_aside(const char *path, const char *stamp, char *kept, size_t cap)
{
    kept[0] = '\0';
    if (access(path, F_OK) != 0)
        return errno == ENOENT ? 0 : -1;
    if (sk_snprintf(kept, cap, "%s.before-restore-%s", path, stamp) != 0 || rename(path, kept) != 0) {
        ctl_err("restore: cannot move %s aside: %s", path, strerror(errno));
        return -1;
    }
    return 0;
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
    if (gmtime_r(&t, &tm) == NULL || strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm) == 0)
        return CTL_REFUSED;
    /* Set aside, then copy in: each step can be undone by hand from what the
     * messages name; the old files are never deleted. */
    if (set_aside(db, stamp, kept_db, sizeof kept_db) != 0 ||
        set_aside(conf->audit_dir, stamp, kept_audit, sizeof kept_audit) != 0)
        goto out;
    if (sk_mkdir_p(db, 0700) != 0) {
        ctl_err("restore: cannot create %s", db);
        goto out;
    }
    own_like(db, &owner);
    if (restore_file(from, "db/data.mdb", data, &owner) != 0 || restore_audit(from, conf->audit_dir, &owner) != 0)
        goto out;
    kept_totp[0] = '\0';
    if (sk_snprintf(rel_totp, sizeof rel_totp, "%s/totp.key", from) == 0 && access(rel_totp, F_OK) == 0) {
        if (set_aside(conf->auth_totp_key, stamp, kept_totp, sizeof kept_totp) != 0 ||
            restore_file(from, "totp.key", conf->auth_totp_key, &owner) != 0)
            goto out;
    }
    /* Recorded in the restored log: its chain goes on from the backup's end. */
    if (ctl_log_open(conf, &log) != CTL_OK) {
        ctl_err("restore: the state was restored but the restore could not be recorded");
        goto out;
    }
    {
        char n_users[24];
        if (sk_snprintf(n_users, sizeof n_users, "%ld", users) != 0)
            n_users[0] = '\0';
        sk_audit_kv kv[] = { { "from", from }, { "users", n_users }, { "previous_db", kept_db[0] ? kept_db : NULL },
                             { "previous_audit", kept_audit[0] ? kept_audit : NULL }, { "result", "ok" } };
        if (ctl_log_change(log, "restore", NULL, kv, SK_ARRAY_LEN(kv)) != CTL_OK)
            goto out;
    }
    printf("restored %zu files from %s (%ld user(s))\n", files, from, users);
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
    return cmd_restore(conf, from);
}
