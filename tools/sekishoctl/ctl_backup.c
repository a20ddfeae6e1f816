/*
 * sekishoctl backup --to DIR | --into PARENT [--keep N] ; backup verify DIR
 * (format in ctl_backup.h).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "ctl_backup.h"
#include "ctl_manifest.h"
#include "sk_admin_audit.h"

static const char usage_backup[] = "backup (--to DIR | --into PARENT [--keep N])";
static const char usage_verify[] = "backup verify DIR";

void ctl_backup_usage_to(FILE *f)
{
    fprintf(f, "  %s\n  %s\n", usage_backup, usage_verify);
}

void ctl_backup_usage(void)
{
    ctl_backup_usage_to(stderr);
}

int ctl_copy_file(const char *from, const char *to)
{
    char buf[65536];
    int in = -1, out = -1, rc = -1;
    ssize_t n;

    in = open(from, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (in < 0)
        goto done;
    out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (out < 0)
        goto done;
    while ((n = read(in, buf, sizeof buf)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            goto done;
        }
        if (sk_write_all(out, buf, (size_t)n) != 0)
            goto done;
    }
    if (fsync(out) != 0)
        goto done;
    rc = 0;
done:
    if (in >= 0)
        close(in);
    if (out >= 0 && close(out) != 0)
        rc = -1;
    return rc;
}

/* SHA-256 of a file as lowercase hex (65 bytes) and its size. */
static int file_digest(const char *path, char hex[65], long long *size)
{
    unsigned char buf[65536], md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW), rc = -1;
    ssize_t n;

    *size = 0;
    if (ctx == NULL || fd < 0 || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
        goto done;
    while ((n = read(fd, buf, sizeof buf)) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            goto done;
        }
        if (EVP_DigestUpdate(ctx, buf, (size_t)n) != 1)
            goto done;
        *size += n;
    }
    if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != 32)
        goto done;
    sk_hex_encode(md, 32, hex);
    rc = 0;
done:
    if (fd >= 0)
        close(fd);
    EVP_MD_CTX_free(ctx);
    return rc;
}

/* ---- the manifest -------------------------------------------------------------- */

struct manifest {
    char (*paths)[256];     /* relative paths, as listed */
    size_t n;
};

static int add_line(sk_buf *b, const char *root, const char *rel, struct manifest *m)
{
    char path[SK_CONF_PATH_MAX + 300], hex[65];
    long long size;
    if (sk_snprintf(path, sizeof path, "%s/%s", root, rel) != 0 || file_digest(path, hex, &size) != 0) {
        ctl_err("backup: cannot read %s", path);
        return -1;
    }
    if (m->n >= CTL_BACKUP_MAX_FILES || sk_strlcpy(m->paths[m->n], sizeof m->paths[0], rel) != 0) {
        ctl_err("backup: too many files or a name too long: %s", rel);
        return -1;
    }
    m->n++;
    sk_buf_printf(b, "sha256 %s %lld %s\n", hex, size, rel);
    return 0;
}

/* ---- creating ------------------------------------------------------------------- */

/* The consistent copy: LMDB's own copy API inside a read transaction, while the
 * gateway keeps writing. */
static int copy_store(const char *state_dir, const char *to_dir)
{
    char path[SK_CONF_PATH_MAX + 8];
    MDB_env *env = NULL;
    int rc;

    if (sk_snprintf(path, sizeof path, "%s/db", state_dir) != 0)
        return -1;
    if ((rc = mdb_env_create(&env)) != 0 || (rc = mdb_env_set_maxdbs(env, 8)) != 0 ||
        (rc = mdb_env_open(env, path, MDB_RDONLY | MDB_NOTLS, 0600)) != 0 ||
        (rc = mdb_env_copy2(env, to_dir, MDB_CP_COMPACT)) != 0) {
        ctl_err("backup: the store %s cannot be copied: %s", path, mdb_strerror(rc));
        mdb_env_close(env);
        return -1;
    }
    mdb_env_close(env);
    return 0;
}

static int copy_audit(const char *audit_dir, const char *to_root, sk_buf *mb, struct manifest *m)
{
    DIR *d = opendir(audit_dir);
    struct dirent *e;
    char from[SK_CONF_PATH_MAX + 300], to[SK_CONF_PATH_MAX + 300], rel[300];
    int rc = 0;

    if (d == NULL) {
        if (errno == ENOENT)
            return 0; /* no audit log yet: nothing to keep */
        ctl_err("backup: cannot read the audit directory %s: %s", audit_dir, strerror(errno));
        return -1;
    }
    while (rc == 0 && (e = readdir(d)) != NULL) {
        struct stat st;
        if (e->d_name[0] == '.')
            continue; /* ".", "..", the writer's ".lock" */
        if (sk_snprintf(from, sizeof from, "%s/%s", audit_dir, e->d_name) != 0 || lstat(from, &st) != 0 ||
            !S_ISREG(st.st_mode))
            continue;
        if (sk_snprintf(rel, sizeof rel, "audit/%s", e->d_name) != 0 ||
            sk_snprintf(to, sizeof to, "%s/%s", to_root, rel) != 0 || ctl_copy_file(from, to) != 0) {
            ctl_err("backup: cannot copy %s: %s", from, strerror(errno));
            rc = -1;
            break;
        }
        rc = add_line(mb, to_root, rel, m);
    }
    closedir(d);
    return rc;
}

/* Copy a single optional file (TOTP key, audit public key). */
static int copy_optional(const char *from, const char *root, const char *rel, sk_buf *mb, struct manifest *m)
{
    char to[SK_CONF_PATH_MAX + 300];
    if (access(from, F_OK) != 0)
        return 0;
    if (sk_snprintf(to, sizeof to, "%s/%s", root, rel) != 0 || ctl_copy_file(from, to) != 0) {
        ctl_err("backup: cannot copy %s: %s", from, strerror(errno));
        return -1;
    }
    return add_line(mb, root, rel, m);
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc;
    if (fd < 0)
        return -1;
    rc = fsync(fd);
    close(fd);
    return rc;
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return (flag == FTW_DP ? rmdir(path) : unlink(path)) == 0 ? 0 : -1;
}

static int remove_tree(const char *dir)
{
    return nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* Write the backup into dir (which must not exist). CTL_OK or CTL_REFUSED. */
static int make_backup(const sk_conf *conf, const char *dir, size_t *nfiles)
{
    static char mem[CTL_BACKUP_MAX_FILES * 360 + 2048];
    static char paths[CTL_BACKUP_MAX_FILES][256];
    char partial[SK_CONF_PATH_MAX + 16], sub[SK_CONF_PATH_MAX + 32], key_pub[SK_CONF_PATH_MAX + 8], now[32];
    struct manifest m = { paths, 0 };
    struct stat st;
    sk_buf mb;
    int ret = CTL_REFUSED, made = 0;

    if (stat(dir, &st) == 0 || errno != ENOENT) {
        ctl_err("backup: %s already exists; give a new directory", dir);
        return CTL_REFUSED;
    }
    if (sk_snprintf(partial, sizeof partial, "%s.partial", dir) != 0 ||
        sk_snprintf(key_pub, sizeof key_pub, "%s.pub", conf->audit_key) != 0) {
        ctl_err("backup: path too long");
        return CTL_REFUSED;
    }
    if (stat(partial, &st) == 0 && remove_tree(partial) != 0) {
        ctl_err("backup: cannot remove the unfinished %s", partial);
        return CTL_REFUSED;
    }
    if (mkdir(partial, 0700) != 0) {
        ctl_err("backup: cannot create %s: %s", partial, strerror(errno));
        return CTL_REFUSED;
    }
    made = 1;
    sk_buf_init(&mb, mem, sizeof mem);
    ctl_time_str(ctl_now(), now, sizeof now);
    sk_buf_printf(&mb, "sekisho-backup 1\ncreated %s\nsource %s\n", now, conf->state_dir);
    if (sk_snprintf(sub, sizeof sub, "%s/db", partial) != 0 || mkdir(sub, 0700) != 0 ||
        copy_store(conf->state_dir, sub) != 0 || add_line(&mb, partial, "db/data.mdb", &m) != 0)
        goto out;
    if (sk_snprintf(sub, sizeof sub, "%s/audit", partial) != 0 || mkdir(sub, 0700) != 0 ||
        copy_audit(conf->audit_dir, partial, &mb, &m) != 0)
        goto out;
    if (copy_optional(conf->auth_totp_key, partial, "totp.key", &mb, &m) != 0 ||
        copy_optional(key_pub, partial, "audit.key.pub", &mb, &m) != 0)
        goto out;
    if (sk_buf_finish(&mb) != 0 || sk_snprintf(sub, sizeof sub, "%s/MANIFEST", partial) != 0 ||
        sk_write_file_atomic(sub, mb.data, mb.len, 0600) != 0) {
        ctl_err("backup: cannot write the manifest");
        goto out;
    }
    if (fsync_dir(partial) != 0 || rename(partial, dir) != 0) {
        ctl_err("backup: cannot move %s to %s: %s", partial, dir, strerror(errno));
        goto out;
    }
    made = 0;
    {
        char parent[SK_CONF_PATH_MAX + 16], *slash;
        if (sk_strlcpy(parent, sizeof parent, dir) == 0 && (slash = strrchr(parent, '/')) != NULL) {
            *slash = '\0';
            (void)fsync_dir(parent[0] ? parent : "/");
        }
    }
    *nfiles = m.n;
    ret = CTL_OK;
out:
    if (made)
        (void)remove_tree(partial);
    return ret;
}

/* ---- generations (--into PARENT --keep N) ----------------------------------------- */

static int is_generation(const char *name)
{
    return strncmp(name, "sekisho-", 8) == 0 && name[8] >= '0' && name[8] <= '9' &&
           strstr(name, ".partial") == NULL;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

/* Keep the newest `keep` complete generations (names sort by time). */
static int prune(const char *parent, unsigned keep, int *removed)
{
    static char names[1024][64];
    size_t n = 0;
    DIR *d = opendir(parent);
    struct dirent *e;
    *removed = 0;
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL && n < SK_ARRAY_LEN(names))
        if (is_generation(e->d_name) && sk_strlcpy(names[n], sizeof names[0], e->d_name) == 0)
            n++;
    closedir(d);
    qsort(names, n, sizeof names[0], cmp_names);
    for (size_t i = 0; i + keep < n; i++) {
        char path[SK_CONF_PATH_MAX + 80];
        if (sk_snprintf(path, sizeof path, "%s/%s", parent, names[i]) != 0 || remove_tree(path) != 0) {
            ctl_err("backup: cannot remove the old generation %s", names[i]);
            return -1;
        }
        (*removed)++;
    }
    return 0;
}

static int cmd_backup(const sk_conf *conf, const char *to, const char *into, unsigned keep)
{
    sk_adm_audit *log = NULL;
    char dir[SK_CONF_PATH_MAX + 64], count[16], kept[16];
    size_t files = 0;
    int removed = 0, ret = CTL_REFUSED;

    if (into != NULL) {
        char stamp[32];
        struct tm tm;
        time_t t = time(NULL);
        if (sk_mkdir_p(into, 0700) != 0) {
            ctl_err("backup: cannot create %s", into);
            return CTL_REFUSED;
        }
        if (gmtime_r(&t, &tm) == NULL || strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm) == 0)
            return CTL_REFUSED;
        /* Two backups within a second get -2, -3, ... */
        for (int i = 1;; i++) {
            struct stat st;
            if ((i == 1 ? sk_snprintf(dir, sizeof dir, "%s/sekisho-%s", into, stamp)
                        : sk_snprintf(dir, sizeof dir, "%s/sekisho-%s-%d", into, stamp, i)) != 0) {
                ctl_err("backup: path too long");
                return CTL_REFUSED;
            }
            if (stat(dir, &st) != 0 || i > 99)
                break;
        }
    } else if (sk_strlcpy(dir, sizeof dir, to) != 0) {
        ctl_err("backup: path too long");
        return CTL_REFUSED;
    }
    if (ctl_log_open(conf, &log) != CTL_OK)
        goto out;
    if (make_backup(conf, dir, &files) != CTL_OK)
        goto out;
    if (into != NULL && keep > 0 && prune(into, keep, &removed) != 0)
        goto out;
    if (sk_snprintf(count, sizeof count, "%zu", files) != 0 || sk_snprintf(kept, sizeof kept, "%d", removed) != 0)
        count[0] = kept[0] = '\0';
    {
        sk_audit_kv kv[] = { { "dir", dir }, { "files", count }, { "generations_removed", into ? kept : NULL },
                             { "result", "ok" } };
        if (ctl_log_change(log, "backup", NULL, kv, SK_ARRAY_LEN(kv)) != CTL_OK)
            goto out;
    }
    printf("backup written to %s (%zu files)\n", dir, files);
    if (removed > 0)
        printf("removed %d old generation(s), keeping %u\n", removed, keep);
    ret = CTL_OK;
out:
    ctl_log_close(log);
    return ret;
}

/* ---- verifying ---------------------------------------------------------------------- */

struct walk {
    const char *root;
    struct manifest *m;
    const char *extra;  /* first unlisted file */
    char extra_buf[300];
};

static struct walk *walk_ctx; /* nftw has no user pointer */

static int walk_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    const char *rel;
    (void)st;
    (void)ftw;
    if (flag != FTW_F && flag != FTW_SL)
        return 0;
    rel = path + strlen(walk_ctx->root) + 1;
    if (strcmp(rel, "MANIFEST") == 0)
        return 0;
    for (size_t i = 0; i < walk_ctx->m->n; i++)
        if (strcmp(walk_ctx->m->paths[i], rel) == 0)
            return 0;
    if (sk_strlcpy(walk_ctx->extra_buf, sizeof walk_ctx->extra_buf, rel) != 0)
        walk_ctx->extra_buf[0] = '?';
    walk_ctx->extra = walk_ctx->extra_buf;
    return 1;
}

/* The copy opens as an LMDB store (read-only, no lock file written into the
 * backup) and its user records are counted. */
static int check_store(const char *dir, long *users)
{
    char path[SK_CONF_PATH_MAX + 8];
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    MDB_stat ms;
    int rc;

    if (sk_snprintf(path, sizeof path, "%s/db", dir) != 0)
        return -1;
    rc = mdb_env_create(&env);
    if (rc == 0)
        rc = mdb_env_set_maxdbs(env, 8);
    if (rc == 0)
        rc = mdb_env_open(env, path, MDB_RDONLY | MDB_NOLOCK | MDB_NOTLS, 0600);
    if (rc == 0)
        rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    if (rc == 0)
        rc = mdb_dbi_open(txn, "users", 0, &dbi);
    if (rc == 0)
        rc = mdb_stat(txn, dbi, &ms);
    if (rc == 0 && users != NULL)
        *users = (long)ms.ms_entries;
    if (rc == MDB_NOTFOUND && users != NULL) {
        *users = 0; /* a store without users yet */
        rc = 0;
    }
    if (txn != NULL)
        mdb_txn_abort(txn);
    mdb_env_close(env);
    if (rc != 0)
        ctl_err("backup %s: db/data.mdb is not a usable store: %s", dir, mdb_strerror(rc));
    return rc == 0 ? 0 : -1;
}

int ctl_backup_verify_dir(const char *dir, long *users, size_t *files)
{
    static char paths[CTL_BACKUP_MAX_FILES][256];
    struct manifest m = { paths, 0 };
    struct walk w = { dir, &m, NULL, "" };
    char path[SK_CONF_PATH_MAX + 300], *buf = NULL, *line, *next;
    size_t len = 0;
    int ret = CTL_REFUSED, lineno = 0, have_db = 0;

    if (sk_snprintf(path, sizeof path, "%s/MANIFEST", dir) != 0 || sk_read_file(path, 4u << 20, &buf, &len) != 0) {
        ctl_err("backup %s: no readable MANIFEST (not a Sekisho backup, or unfinished)", dir);
        return CTL_REFUSED;
    }
    for (line = buf; line != NULL && *line; line = next) {
        char hex[65], rel[CTL_MANIFEST_PATH_MAX + 1], want[65];
        long long size, real;
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        lineno++;
        if (lineno == 1) {
            if (strcmp(line, "sekisho-backup 1") != 0) {
                ctl_err("backup %s: MANIFEST is not a version 1 Sekisho manifest", dir);
                goto out;
            }
            continue;
        }
        if (strncmp(line, "created ", 8) == 0 || strncmp(line, "source ", 7) == 0)
            continue;
        if (ctl_manifest_line(line, hex, &size, rel) != 0) {
            ctl_err("backup %s: MANIFEST line %d is malformed", dir, lineno);
            goto out;
        }
        if (sk_snprintf(path, sizeof path, "%s/%s", dir, rel) != 0 || file_digest(path, want, &real) != 0) {
            ctl_err("backup %s: %s is missing or unreadable", dir, rel);
            goto out;
        }
        if (real != size || strcmp(want, hex) != 0) {
            ctl_err("backup %s: %s does not match the manifest (%s); the backup is damaged", dir, rel,
                    real != size ? "size" : "SHA-256");
            goto out;
        }
        if (m.n >= CTL_BACKUP_MAX_FILES || sk_strlcpy(m.paths[m.n], sizeof m.paths[0], rel) != 0) {
            ctl_err("backup %s: too many files", dir);
            goto out;
        }
        have_db |= strcmp(rel, "db/data.mdb") == 0;
        m.n++;
    }
    if (!have_db) {
        ctl_err("backup %s: the manifest lists no db/data.mdb", dir);
        goto out;
    }
    walk_ctx = &w;
    if (nftw(dir, walk_cb, 16, FTW_PHYS) != 0 && w.extra == NULL) {
        ctl_err("backup %s: cannot list its files", dir);
        goto out;
    }
    if (w.extra != NULL) {
        ctl_err("backup %s: %s is not in the manifest", dir, w.extra);
        goto out;
    }
    if (check_store(dir, users) != 0)
        goto out;
    if (files != NULL)
        *files = m.n;
    ret = CTL_OK;
out:
    free(buf);
    return ret;
}

static int cmd_verify(const char *dir)
{
    long users = 0;
    size_t files = 0;
    if (ctl_backup_verify_dir(dir, &users, &files) != CTL_OK)
        return CTL_REFUSED;
    printf("backup %s is intact: %zu files match the manifest; the store holds %ld user(s)\n", dir, files, users);
    return CTL_OK;
}

/* argv[0] = "backup" (the group takes no subcommand word except "verify"). */
int ctl_backup_main(const sk_conf *conf, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "to", required_argument, NULL, 't' },
        { "into", required_argument, NULL, 'i' },
        { "keep", required_argument, NULL, 'k' },
        { NULL, 0, NULL, 0 },
    };
    const char *to = NULL, *into = NULL, *keep_s = NULL;
    uint64_t keep = 0;
    int c;

    if (argc >= 2 && strcmp(argv[1], "verify") == 0) {
        if (argc != 3) {
            ctl_err("backup verify: give exactly one directory");
            fprintf(stderr, "usage: sekishoctl [-c FILE] %s\n", usage_verify);
            return CTL_USAGE;
        }
        return cmd_verify(argv[2]);
    }
    if (strcmp(conf->store_backend, "lmdb") != 0) {
        /* A copy of this node's files would hold no account or session, and a
         * restore of one would miss them too: say so rather than make one. */
        ctl_err("backup copies the LMDB store of one node; with [store] backend = %s back the database up "
                "with its own tools (pg_dump, pg_basebackup) and keep [auth] totp_key with it",
                conf->store_backend);
        return CTL_REFUSED;
    }
    opterr = 0;
    optind = 0;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        if (c == 't')
            to = optarg;
        else if (c == 'i')
            into = optarg;
        else if (c == 'k')
            keep_s = optarg;
        else {
            ctl_err("backup: unknown option or missing value");
            fprintf(stderr, "usage: sekishoctl [-c FILE] %s\n", usage_backup);
            return CTL_USAGE;
        }
    }
    if (optind < argc || (to == NULL) == (into == NULL) || (keep_s != NULL && into == NULL)) {
        ctl_err("backup: give --to DIR, or --into PARENT [--keep N]");
        fprintf(stderr, "usage: sekishoctl [-c FILE] %s\n", usage_backup);
        return CTL_USAGE;
    }
    if (keep_s != NULL && sk_parse_u64(keep_s, 1, 1000, &keep) != 0) {
        ctl_err("backup: --keep must be a number of generations between 1 and 1000");
        return CTL_USAGE;
    }
    return cmd_backup(conf, to, into, (unsigned)keep);
}
