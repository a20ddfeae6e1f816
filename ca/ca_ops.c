/* sekisho-ca commands: directory layout, locking, the commit protocol and recovery
 * (see sk_ca.h for the protocol itself). */
#define _GNU_SOURCE /* mkostemp */
#include "sk_ca.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#define KEY_FILE_MAX (64u << 10)
#define CERT_FILE_MAX (1u << 20)
#define CLOCK_SKEW 300 /* notBefore is backdated so a client with a slow clock accepts it */

typedef struct ca_ctx {
    char dir[PATH_MAX];
    char p_crt[PATH_MAX];
    char p_key[PATH_MAX];
    char p_crl[PATH_MAX];
    char p_index[PATH_MAX];
    char p_pending[PATH_MAX];
    char p_lock[PATH_MAX];
    int lockfd;
    X509 *cert;
    EVP_PKEY *key;
    sk_ca_index idx;
} ca_ctx;

/* An output file outside D, opened as a temp file before anything in D changes. */
typedef struct out_file {
    char path[PATH_MAX];
    char tmp[PATH_MAX];
    char parent[PATH_MAX];
    int fd;
} out_file;

static void crash_point(const char *step)
{
    const char *s = getenv("SEKISHO_CA_TEST_CRASH");

    if (s != NULL && strcmp(s, step) == 0)
        _exit(99);
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = -1;

    if (fd < 0)
        return -1;
    if (fsync(fd) == 0)
        rc = 0;
    close(fd);
    return rc;
}

static int parent_dir(const char *path, char *out, size_t cap)
{
    const char *slash = strrchr(path, '/');

    if (slash == NULL)
        return sk_strlcpy(out, cap, ".");
    if (slash == path)
        return sk_strlcpy(out, cap, "/");
    if ((size_t)(slash - path) >= cap)
        return -1;
    memcpy(out, path, (size_t)(slash - path));
    out[slash - path] = '\0';
    return 0;
}

static void fmt_time(int64_t t, char *out, size_t cap)
{
    struct tm tm;
    time_t tt = (time_t)t;

    if (gmtime_r(&tt, &tm) == NULL || strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        if (sk_strlcpy(out, cap, "?") != 0)
            out[0] = '\0';
}

/* ---- output files ------------------------------------------------------- */

static void out_init(out_file *o)
{
    memset(o, 0, sizeof(*o));
    o->fd = -1;
}

static int out_open(out_file *o, const char *path, mode_t mode, sk_ca_err *err)
{
    struct stat st;

    if (sk_strlcpy(o->path, sizeof(o->path), path) != 0 ||
        parent_dir(path, o->parent, sizeof(o->parent)) != 0 ||
        sk_snprintf(o->tmp, sizeof(o->tmp), "%s.tmp.XXXXXX", path) != 0) {
        sk_ca_err_set(err, "output path too long: %s", path);
        return -1;
    }
    if (lstat(path, &st) == 0) {
        sk_ca_err_set(err, "%s already exists; refusing to overwrite it", path);
        return -1;
    }
    o->fd = mkostemp(o->tmp, O_CLOEXEC);
    if (o->fd < 0) {
        sk_ca_err_set(err, "cannot write %s: %s", path, strerror(errno));
        o->tmp[0] = '\0';
        return -1;
    }
    if (fchmod(o->fd, mode) != 0) {
        sk_ca_err_set(err, "cannot set the mode of %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static void out_abort(out_file *o)
{
    if (o->fd >= 0)
        close(o->fd);
    o->fd = -1;
    if (o->tmp[0] != '\0')
        (void)unlink(o->tmp);
    o->tmp[0] = '\0';
}

static int out_commit(out_file *o, const void *data, size_t len, sk_ca_err *err)
{
    const char *p = data;
    size_t done = 0;

    while (done < len) {
        ssize_t w = write(o->fd, p + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            goto fail;
        done += (size_t)w;
    }
    if (fsync(o->fd) != 0 || close(o->fd) != 0) {
        o->fd = -1;
        goto fail;
    }
    o->fd = -1;
    if (rename(o->tmp, o->path) != 0)
        goto fail;
    o->tmp[0] = '\0';
    if (fsync_dir(o->parent) != 0)
        goto fail;
    return 0;
fail:
    sk_ca_err_set(err, "writing %s failed: %s", o->path, strerror(errno));
    return -1;
}

/* ---- CA directory ------------------------------------------------------------ */

static void ctx_init(ca_ctx *c)
{
    memset(c, 0, sizeof(*c));
    c->lockfd = -1;
    sk_ca_index_init(&c->idx);
}

static void ctx_free(ca_ctx *c)
{
    X509_free(c->cert);
    EVP_PKEY_free(c->key);
    sk_ca_index_free(&c->idx);
    if (c->lockfd >= 0)
        close(c->lockfd); /* releases the flock */
    c->lockfd = -1;
}

static int ctx_paths(ca_ctx *c, const char *dir, sk_ca_err *err)
{
    if (sk_strlcpy(c->dir, sizeof(c->dir), dir) != 0 ||
        sk_snprintf(c->p_crt, sizeof(c->p_crt), "%s/ca.crt", dir) != 0 ||
        sk_snprintf(c->p_key, sizeof(c->p_key), "%s/ca.key", dir) != 0 ||
        sk_snprintf(c->p_crl, sizeof(c->p_crl), "%s/crl.pem", dir) != 0 ||
        sk_snprintf(c->p_index, sizeof(c->p_index), "%s/index", dir) != 0 ||
        sk_snprintf(c->p_pending, sizeof(c->p_pending), "%s/pending", dir) != 0 ||
        sk_snprintf(c->p_lock, sizeof(c->p_lock), "%s/.lock", dir) != 0) {
        sk_ca_err_set(err, "CA directory path too long");
        return -1;
    }
    return 0;
}

static int ctx_lock(ca_ctx *c, int exclusive, sk_ca_err *err)
{
    /* Readers (list) may lack write access and must not create anything. */
    if (exclusive)
        c->lockfd = open(c->p_lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    else
        c->lockfd = open(c->p_lock, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (c->lockfd < 0 && !exclusive && errno == ENOENT)
        return 0; /* a reader still sees a consistent index: it is replaced by rename */
    if (c->lockfd < 0) {
        sk_ca_err_set(err, "cannot open %s: %s", c->p_lock, strerror(errno));
        return -1;
    }
    while (flock(c->lockfd, exclusive ? LOCK_EX : LOCK_SH) != 0) {
        if (errno != EINTR) {
            sk_ca_err_set(err, "cannot lock %s: %s", c->p_lock, strerror(errno));
            return -1;
        }
    }
    return 0;
}

static int load_key(ca_ctx *c, sk_ca_err *err)
{
    struct stat st;
    char *buf = NULL;
    size_t len = 0;
    BIO *bio = NULL;
    int fd, rc = -1;

    fd = open(c->p_key, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        sk_ca_err_set(err, "cannot open the CA key %s: %s", c->p_key, strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
        (uint64_t)st.st_size > KEY_FILE_MAX) {
        sk_ca_err_set(err, "the CA key %s is not a regular file of sane size", c->p_key);
        goto out;
    }
    /* The key never leaves 0600: a readable key is a leak to stop at, not to use. */
    if ((st.st_mode & 077) != 0) {
        sk_ca_err_set(err, "the CA key %s is accessible by group/others (mode %03o); refusing (chmod 600 it)",
                      c->p_key, (unsigned)(st.st_mode & 0777));
        goto out;
    }
    buf = malloc((size_t)st.st_size);
    if (buf == NULL) {
        sk_ca_err_set(err, "out of memory");
        goto out;
    }
    while (len < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + len, (size_t)st.st_size - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    bio = BIO_new_mem_buf(buf, (int)len);
    /* A callback-less read of an encrypted key would prompt on the terminal;
     * the empty passphrase "" makes it fail instead. */
    if (bio != NULL)
        c->key = PEM_read_bio_PrivateKey(bio, NULL, NULL, (void *)(uintptr_t) "");
    if (c->key == NULL) {
        sk_ca_err_set(err, "cannot parse the CA key %s", c->p_key);
        goto out;
    }
    rc = 0;
out:
    BIO_free(bio);
    if (buf != NULL) {
        sk_wipe(buf, (size_t)st.st_size);
        free(buf);
    }
    if (fd >= 0)
        close(fd);
    ERR_clear_error();
    return rc;
}

static int load_cert(ca_ctx *c, sk_ca_err *err)
{
    char *buf = NULL;
    size_t len = 0;
    BIO *bio = NULL;
    int rc = -1;

    if (sk_read_file(c->p_crt, CERT_FILE_MAX, &buf, &len) != 0) {
        sk_ca_err_set(err, "%s is not a sekisho-ca directory (cannot read ca.crt)", c->dir);
        goto out;
    }
    bio = BIO_new_mem_buf(buf, (int)len);
    if (bio != NULL)
        c->cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    if (c->cert == NULL) {
        sk_ca_err_set(err, "cannot parse %s", c->p_crt);
        goto out;
    }
    rc = 0;
out:
    BIO_free(bio);
    free(buf);
    ERR_clear_error();
    return rc;
}

static int load_index(ca_ctx *c, sk_ca_err *err)
{
    char *buf = NULL;
    size_t len = 0;
    sk_ca_err perr;
    int rc = -1;

    memset(&perr, 0, sizeof(perr));
    if (sk_read_file(c->p_index, SK_CA_INDEX_MAX, &buf, &len) != 0) {
        sk_ca_err_set(err, "cannot read %s", c->p_index);
        goto out;
    }
    if (sk_ca_index_parse(buf, len, &c->idx, &perr) != 0) {
        sk_ca_err_set(err, "%s is corrupted: %s", c->p_index, perr.msg);
        goto out;
    }
    rc = 0;
out:
    free(buf);
    return rc;
}

/* Lock and load D. with_key: also load (and permission-check) the CA key. */
static int ctx_open(ca_ctx *c, const char *dir, int with_key, sk_ca_err *err)
{
    struct stat st;

    if (ctx_paths(c, dir, err) != 0)
        return -1;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || stat(c->p_crt, &st) != 0) {
        sk_ca_err_set(err, "%s is not a sekisho-ca directory", dir);
        return -1;
    }
    if (ctx_lock(c, with_key, err) != 0 || load_cert(c, err) != 0 || load_index(c, err) != 0)
        return -1;
    if (with_key) {
        if (load_key(c, err) != 0)
            return -1;
        if (X509_check_private_key(c->cert, c->key) != 1) {
            ERR_clear_error();
            sk_ca_err_set(err, "the CA key does not match ca.crt");
            return -1;
        }
    }
    return 0;
}

static int write_index(ca_ctx *c, sk_ca_err *err)
{
    char *buf = NULL;
    size_t len = 0;
    int rc = -1;

    if (sk_ca_index_serialize(&c->idx, &buf, &len) != 0) {
        sk_ca_err_set(err, "serializing the index failed");
        goto out;
    }
    if (sk_write_file_atomic(c->p_index, buf, len, 0600) != 0) {
        sk_ca_err_set(err, "writing %s failed", c->p_index);
        goto out;
    }
    rc = 0;
out:
    free(buf);
    return rc;
}

static int write_crl(ca_ctx *c, int64_t now, sk_ca_err *err)
{
    X509_CRL *crl = NULL;
    char *pem = NULL;
    size_t len = 0;
    int rc = -1;

    if (sk_ca_make_crl(c->cert, c->key, &c->idx, now, c->idx.crl_days, &crl, err) != 0)
        goto out;
    if (sk_ca_pem_crl(crl, &pem, &len) != 0 || sk_write_file_atomic(c->p_crl, pem, len, 0644) != 0) {
        sk_ca_err_set(err, "writing %s failed", c->p_crl);
        goto out;
    }
    rc = 0;
out:
    free(pem);
    X509_CRL_free(crl);
    return rc;
}

static int remove_pending(ca_ctx *c, sk_ca_err *err)
{
    if (unlink(c->p_pending) != 0 && errno != ENOENT) {
        sk_ca_err_set(err, "cannot remove %s: %s", c->p_pending, strerror(errno));
        return -1;
    }
    if (fsync_dir(c->dir) != 0) {
        sk_ca_err_set(err, "cannot sync %s", c->dir);
        return -1;
    }
    return 0;
}

/* Finish or roll back whatever a crashed command left (protocol in sk_ca.h). */
static int ctx_recover(ca_ctx *c, int64_t now, sk_ca_err *err)
{
    struct stat st;
    char *buf = NULL;
    size_t len = 0;
    uint64_t number = 0;
    sk_ca_entry pe;
    sk_ca_err perr;
    int rc = -1;

    memset(&perr, 0, sizeof(perr));
    if (lstat(c->p_pending, &st) == 0) {
        if (sk_read_file(c->p_pending, 1u << 16, &buf, &len) != 0 ||
            sk_ca_pending_parse(buf, len, &pe, &perr) != 0) {
            sk_ca_err_set(err, "%s is unreadable or corrupted (%s); inspect it by hand", c->p_pending,
                          perr.msg[0] ? perr.msg : "read error");
            goto out;
        }
        if (sk_ca_index_find_serial(&c->idx, pe.serial, pe.serial_len) == NULL) {
            /* Died before the commit: the old state stands, and the orphan serial
             * is revoked so that a certificate that may have reached its output
             * file is neither unknown to the CA nor valid. */
            pe.revoked = 1;
            pe.revoked_at = now;
            pe.reason = SK_CA_REASON_CESSATION_OF_OPERATION;
            c->idx.crl_number++;
            if (sk_ca_index_add(&c->idx, &pe) != 0) {
                sk_ca_err_set(err, "out of memory");
                goto out;
            }
            if (write_index(c, err) != 0)
                goto out;
            fprintf(stderr, "sekisho-ca: recovered an interrupted command: serial revoked as void\n");
        }
        if (remove_pending(c, err) != 0)
            goto out;
    }
    free(buf);
    buf = NULL;
    if (sk_read_file(c->p_crl, CERT_FILE_MAX, &buf, &len) != 0 || sk_ca_crl_number(buf, len, &number) != 0 ||
        number < c->idx.crl_number) {
        if (write_crl(c, now, err) != 0)
            goto out;
    }
    rc = 0;
out:
    free(buf);
    return rc;
}

static int check_days(uint32_t days, sk_ca_err *err)
{
    if (days < 1 || days > SK_CA_DAYS_MAX) {
        sk_ca_err_set(err, "--days must be 1..%u", SK_CA_DAYS_MAX);
        return -1;
    }
    return 0;
}

/* ---- init ------------------------------------------------------------------- */

int sk_ca_cmd_init(const char *dir, const char *name, uint32_t days, FILE *report, sk_ca_err *err)
{
    static const char *const existing[] = {"ca.key", "ca.crt", "index", "crl.pem", "pending"};
    ca_ctx c;
    struct stat st;
    uint8_t serial[SK_CA_SERIAL_MAX];
    size_t serial_len = 0;
    char *key_pem = NULL, *crt_pem = NULL;
    size_t key_len = 0, crt_len = 0;
    char when[32];
    int64_t now = (int64_t)time(NULL);
    mode_t old_umask;
    int rc = -1;

    ctx_init(&c);
    if (name == NULL || name[0] == '\0' || strlen(name) > 4 * SK_CA_CANAME_MAX) {
        sk_ca_err_set(err, "invalid CA name");
        goto out;
    }
    for (const char *p = name; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            sk_ca_err_set(err, "invalid CA name (control character)");
            goto out;
        }
    }
    if (check_days(days, err) != 0 || ctx_paths(&c, dir, err) != 0)
        goto out;
    if (lstat(dir, &st) == 0 && !S_ISDIR(st.st_mode)) {
        sk_ca_err_set(err, "%s exists and is not a directory", dir);
        goto out;
    }
    if (sk_mkdir_p(dir, 0700) != 0 || chmod(dir, 0700) != 0) {
        sk_ca_err_set(err, "cannot create %s: %s", dir, strerror(errno));
        goto out;
    }
    if (ctx_lock(&c, 1, err) != 0)
        goto out;
    for (size_t i = 0; i < SK_ARRAY_LEN(existing); i++) {
        char p[PATH_MAX];
        if (sk_snprintf(p, sizeof(p), "%s/%s", dir, existing[i]) != 0 || lstat(p, &st) == 0) {
            sk_ca_err_set(err, "%s already holds a CA (%s exists); refusing to overwrite it", dir,
                          existing[i]);
            goto out;
        }
    }
    if (sk_ca_key_new(&c.key, err) != 0 || sk_ca_serial_new(&c.idx, serial, &serial_len) != 0 ||
        sk_ca_make_ca_cert(c.key, name, serial, serial_len, now - CLOCK_SKEW,
                           now + (int64_t)days * 86400, &c.cert, err) != 0)
        goto out;
    c.idx.crl_number = 1;
    c.idx.crl_days = SK_CA_DEFAULT_CRL_DAYS;
    if (sk_ca_pem_key(c.key, &key_pem, &key_len) != 0 || sk_ca_pem_cert(&c.cert, 1, &crt_pem, &crt_len) != 0) {
        sk_ca_err_set(err, "encoding the CA failed");
        goto out;
    }
    old_umask = umask(077);
    rc = sk_write_file_atomic(c.p_key, key_pem, key_len, 0600);
    umask(old_umask);
    if (rc != 0) {
        sk_ca_err_set(err, "writing %s failed", c.p_key);
        goto out;
    }
    rc = -1;
    if (sk_write_file_atomic(c.p_crt, crt_pem, crt_len, 0644) != 0) {
        sk_ca_err_set(err, "writing %s failed", c.p_crt);
        goto out;
    }
    /* The index is written last: its presence marks a complete CA. */
    if (write_crl(&c, now, err) != 0 || write_index(&c, err) != 0)
        goto out;
    fmt_time(now + (int64_t)days * 86400, when, sizeof(when));
    if (report != NULL)
        fprintf(report, "created CA \"%s\" in %s (valid until %s)\n", name, dir, when);
    rc = 0;
out:
    if (key_pem != NULL) {
        sk_wipe(key_pem, key_len);
        free(key_pem);
    }
    free(crt_pem);
    ctx_free(&c);
    return rc;
}

/* ---- issue / reissue / server-cert ------------------------------------------ */

/* Steps 3-6 of the commit protocol: journal, outputs, index, journal removal. */
static int commit_issue(ca_ctx *c, const sk_ca_entry *e, out_file *outs, const void *const *data,
                        const size_t *lens, size_t nout, sk_ca_err *err)
{
    char *pend = NULL;
    size_t plen = 0;
    int rc = -1;

    if (sk_ca_pending_serialize(e, &pend, &plen) != 0 ||
        sk_write_file_atomic(c->p_pending, pend, plen, 0600) != 0) {
        sk_ca_err_set(err, "writing %s failed", c->p_pending);
        goto out;
    }
    crash_point("pending");
    for (size_t i = 0; i < nout; i++)
        if (out_commit(&outs[i], data[i], lens[i], err) != 0)
            goto out;
    crash_point("output");
    if (sk_ca_index_add(&c->idx, e) != 0) {
        sk_ca_err_set(err, "serial collision");
        goto out;
    }
    if (write_index(c, err) != 0)
        goto out;
    crash_point("commit");
    if (remove_pending(c, err) != 0)
        goto out;
    crash_point("unpending");
    rc = 0;
out:
    free(pend);
    return rc;
}

static int leaf_validity(ca_ctx *c, int64_t now, uint32_t days, sk_ca_entry *e, sk_ca_err *err)
{
    int64_t ca_end;

    if (sk_ca_asn1_to_epoch(X509_get0_notAfter(c->cert), &ca_end) != 0) {
        sk_ca_err_set(err, "cannot read the CA's notAfter");
        return -1;
    }
    e->not_before = now - CLOCK_SKEW;
    e->not_after = now + (int64_t)days * 86400;
    /* A certificate cannot outlive its issuer in any useful way: clamp. */
    if (e->not_after > ca_end)
        e->not_after = ca_end;
    if (e->not_after <= now) {
        sk_ca_err_set(err, "the CA certificate has expired");
        return -1;
    }
    return 0;
}

int sk_ca_cmd_issue(const sk_ca_issue_opts *o, FILE *report, sk_ca_err *err)
{
    const char *tenant = o->tenant ? o->tenant : SK_CA_DEFAULT_TENANT;
    uint32_t days = o->days ? o->days : SK_CA_DEFAULT_CERT_DAYS;
    ca_ctx c;
    out_file out;
    sk_ca_entry e, *cur = NULL;
    char pw[SK_CA_PASSWORD_CAP];
    size_t pwlen = 0;
    char *csr_buf = NULL;
    size_t csr_len = 0;
    X509_REQ *req = NULL;
    EVP_PKEY *leaf_key = NULL;
    X509 *leaf = NULL;
    uint8_t *p12 = NULL;
    size_t p12_len = 0;
    char *pem = NULL;
    size_t pem_len = 0;
    const void *data[1];
    size_t lens[1];
    char hex[SK_CA_SERIAL_HEX_CAP], old_hex[SK_CA_SERIAL_HEX_CAP], when[32];
    int64_t now = (int64_t)time(NULL);
    int rc = -1;

    ctx_init(&c);
    out_init(&out);
    memset(&e, 0, sizeof(e));
    memset(pw, 0, sizeof(pw));
    if (sk_ca_check_user(o->user) != 0) {
        sk_ca_err_set(err, "invalid user ID (1..64 of A-Z a-z 0-9 . _ @ -, not starting with . or -)");
        goto out;
    }
    if (sk_ca_check_tenant(tenant) != 0) {
        sk_ca_err_set(err, "invalid tenant (1..63 of a-z 0-9 -)");
        goto out;
    }
    if (check_days(days, err) != 0)
        goto out;
    if (o->out == NULL || (o->csr == NULL && o->password_file == NULL)) {
        sk_ca_err_set(err, "missing --out or --password-file");
        goto out;
    }
    if (ctx_open(&c, o->dir, 1, err) != 0 || ctx_recover(&c, now, err) != 0)
        goto out;
    cur = sk_ca_index_find_valid(&c.idx, tenant, o->user, now);
    if (!o->reissue && cur != NULL) {
        sk_ca_serial_hex(cur->serial, cur->serial_len, old_hex);
        sk_ca_err_set(err, "user %s (tenant %s) already has a valid certificate (serial %s); use reissue",
                      o->user, tenant, old_hex);
        goto out;
    }
    if ((cur = sk_ca_index_find_case_variant(&c.idx, tenant, o->user, now)) != NULL) {
        sk_ca_err_set(err, "user %s differs only in case from %s (tenant %s), which has a valid certificate; "
                      "user IDs are case-insensitive", o->user, cur->name, tenant);
        goto out;
    }
    cur = sk_ca_index_find_valid(&c.idx, tenant, o->user, now);
    if (o->reissue && cur == NULL) {
        sk_ca_err_set(err, "unknown user: %s (tenant %s) has no valid certificate to reissue", o->user, tenant);
        goto out;
    }
    /* Every input is validated before anything is written. */
    if (o->csr != NULL) {
        if (sk_read_file(o->csr, SK_CA_CSR_MAX, &csr_buf, &csr_len) != 0) {
            sk_ca_err_set(err, "cannot read the CSR %s", o->csr);
            goto out;
        }
        if (sk_ca_csr_load((const uint8_t *)csr_buf, csr_len, &req, err) != 0)
            goto out;
    } else {
        if (sk_read_secret_file(o->password_file, pw, sizeof(pw), &pwlen) != 0) {
            sk_ca_err_set(err, "cannot read the password file %s", o->password_file);
            goto out;
        }
        if (pwlen == 0) {
            sk_ca_err_set(err, "the password file %s is empty", o->password_file);
            goto out;
        }
    }
    if (out_open(&out, o->out, o->csr != NULL ? 0644 : 0600, err) != 0)
        goto out;

    e.kind = 'c';
    if (sk_strlcpy(e.tenant, sizeof(e.tenant), tenant) != 0 || sk_strlcpy(e.name, sizeof(e.name), o->user) != 0 ||
        leaf_validity(&c, now, days, &e, err) != 0)
        goto out;
    if (sk_ca_serial_new(&c.idx, e.serial, &e.serial_len) != 0) {
        sk_ca_err_set(err, "cannot generate a unique serial");
        goto out;
    }
    if (req == NULL && sk_ca_key_new(&leaf_key, err) != 0)
        goto out;
    if (sk_ca_make_leaf(c.cert, c.key, req != NULL ? X509_REQ_get0_pubkey(req) : leaf_key, &e, &leaf, err) != 0)
        goto out;
    if (req != NULL) {
        if (sk_ca_pem_cert(&leaf, 1, &pem, &pem_len) != 0) {
            sk_ca_err_set(err, "encoding the certificate failed");
            goto out;
        }
        data[0] = pem;
        lens[0] = pem_len;
    } else {
        if (sk_ca_make_p12(leaf_key, leaf, c.cert, o->user, pw, o->legacy, &p12, &p12_len, err) != 0)
            goto out;
        data[0] = p12;
        lens[0] = p12_len;
    }
    sk_wipe(pw, sizeof(pw));
    if (o->reissue) {
        sk_ca_serial_hex(cur->serial, cur->serial_len, old_hex);
        cur->revoked = 1;
        cur->revoked_at = now;
        cur->reason = SK_CA_REASON_SUPERSEDED;
        c.idx.crl_number++;
    }
    if (commit_issue(&c, &e, &out, data, lens, 1, err) != 0)
        goto out;
    if (o->reissue && write_crl(&c, now, err) != 0)
        goto out;
    sk_ca_serial_hex(e.serial, e.serial_len, hex);
    fmt_time(e.not_after, when, sizeof(when));
    if (report != NULL) {
        fprintf(report, "issued serial %s to %s (tenant %s), valid until %s, written to %s\n", hex, o->user,
                tenant, when, o->out);
        if (o->reissue)
            fprintf(report, "revoked serial %s (superseded)\n", old_hex);
    }
    rc = 0;
out:
    sk_wipe(pw, sizeof(pw));
    out_abort(&out);
    if (p12 != NULL) {
        sk_wipe(p12, p12_len);
        free(p12);
    }
    free(pem);
    free(csr_buf);
    X509_free(leaf);
    EVP_PKEY_free(leaf_key);
    X509_REQ_free(req);
    ctx_free(&c);
    return rc;
}

/* "a,b,c" -> validated, distinct host names (pointers into buf). */
static int split_hosts(const char *list, char *buf, size_t cap, char **hosts, size_t *n)
{
    char *p, *save = NULL;
    *n = 0;
    if (list == NULL || sk_strlcpy(buf, cap, list) != 0)
        return -1;
    for (p = buf;; p = NULL) {
        char *h = strtok_r(p, ",", &save);
        if (h == NULL)
            break;
        if (*n == SK_CA_MAX_HOSTS || sk_ca_check_host(h) != 0)
            return -1;
        for (size_t i = 0; i < *n; i++)
            if (strcmp(hosts[i], h) == 0)
                return -1;
        hosts[(*n)++] = h;
    }
    /* "a,,b" and a trailing comma name an empty host. */
    if (*n == 0 || strstr(list, ",,") != NULL || list[0] == ',' || list[strlen(list) - 1] == ',')
        return -1;
    return 0;
}

int sk_ca_cmd_server_cert(const char *dir, const char *host, uint32_t days, const char *prefix,
                          FILE *report, sk_ca_err *err)
{
    char hostbuf[SK_CA_MAX_HOSTS * (SK_CA_HOST_MAX + 1) + 1];
    char *hosts[SK_CA_MAX_HOSTS];
    size_t n_hosts = 0;
    ca_ctx c;
    out_file outs[2];
    sk_ca_entry e;
    EVP_PKEY *key = NULL;
    X509 *chain[2] = {NULL, NULL};
    char *crt_pem = NULL, *key_pem = NULL;
    size_t crt_len = 0, key_len = 0;
    const void *data[2];
    size_t lens[2];
    char p_crt[PATH_MAX], p_key[PATH_MAX], hex[SK_CA_SERIAL_HEX_CAP], when[32];
    int64_t now = (int64_t)time(NULL);
    mode_t old_umask = 0;
    int umask_set = 0, rc = -1;

    ctx_init(&c);
    out_init(&outs[0]);
    out_init(&outs[1]);
    memset(&e, 0, sizeof(e));
    if (days == 0)
        days = SK_CA_DEFAULT_CERT_DAYS;
    if (split_hosts(host, hostbuf, sizeof(hostbuf), hosts, &n_hosts) != 0) {
        sk_ca_err_set(err, "invalid host name (DNS name or IP literal; up to 16, comma-separated)");
        goto out;
    }
    if (check_days(days, err) != 0)
        goto out;
    if (prefix == NULL || prefix[0] == '\0' || sk_snprintf(p_crt, sizeof(p_crt), "%s.crt", prefix) != 0 ||
        sk_snprintf(p_key, sizeof(p_key), "%s.key", prefix) != 0) {
        sk_ca_err_set(err, "invalid --out prefix");
        goto out;
    }
    if (ctx_open(&c, dir, 1, err) != 0 || ctx_recover(&c, now, err) != 0)
        goto out;
    old_umask = umask(077);
    umask_set = 1;
    if (out_open(&outs[0], p_key, 0600, err) != 0 || out_open(&outs[1], p_crt, 0644, err) != 0)
        goto out;
    e.kind = 's';
    if (sk_strlcpy(e.tenant, sizeof(e.tenant), "-") != 0 || sk_strlcpy(e.name, sizeof(e.name), hosts[0]) != 0 ||
        leaf_validity(&c, now, days, &e, err) != 0)
        goto out;
    if (sk_ca_serial_new(&c.idx, e.serial, &e.serial_len) != 0) {
        sk_ca_err_set(err, "cannot generate a unique serial");
        goto out;
    }
    if (sk_ca_key_new(&key, err) != 0 ||
        sk_ca_make_leaf_hosts(c.cert, c.key, key, &e, (const char *const *)hosts, n_hosts, &chain[0], err) != 0)
        goto out;
    chain[1] = c.cert;
    if (sk_ca_pem_cert(chain, 2, &crt_pem, &crt_len) != 0 || sk_ca_pem_key(key, &key_pem, &key_len) != 0) {
        sk_ca_err_set(err, "encoding the server certificate failed");
        goto out;
    }
    data[0] = key_pem;
    lens[0] = key_len;
    data[1] = crt_pem;
    lens[1] = crt_len;
    if (commit_issue(&c, &e, outs, data, lens, 2, err) != 0)
        goto out;
    sk_ca_serial_hex(e.serial, e.serial_len, hex);
    fmt_time(e.not_after, when, sizeof(when));
    if (report != NULL)
        fprintf(report, "issued server certificate serial %s for %s, valid until %s: %s, %s\n", hex, host, when,
                p_crt, p_key);
    rc = 0;
out:
    if (umask_set)
        umask(old_umask);
    out_abort(&outs[0]);
    out_abort(&outs[1]);
    if (key_pem != NULL) {
        sk_wipe(key_pem, key_len);
        free(key_pem);
    }
    free(crt_pem);
    X509_free(chain[0]);
    EVP_PKEY_free(key);
    ctx_free(&c);
    return rc;
}

/* ---- revoke / crl ------------------------------------------------------------ */

int sk_ca_cmd_revoke(const char *dir, const char *serial_hex, const char *user, const char *tenant,
                     int reason, FILE *report, sk_ca_err *err)
{
    ca_ctx c;
    sk_ca_entry *e = NULL;
    uint8_t serial[SK_CA_SERIAL_MAX];
    size_t serial_len = 0;
    char hex[SK_CA_SERIAL_HEX_CAP];
    int64_t now = (int64_t)time(NULL);
    int rc = -1;

    ctx_init(&c);
    if (tenant == NULL)
        tenant = SK_CA_DEFAULT_TENANT;
    if (sk_ca_reason_name(reason) == NULL) {
        sk_ca_err_set(err, "unknown revocation reason");
        goto out;
    }
    if (serial_hex != NULL) {
        if (sk_ca_serial_parse(serial_hex, serial, &serial_len) != 0) {
            sk_ca_err_set(err, "invalid serial (hex, at most 20 octets)");
            goto out;
        }
    } else if (sk_ca_check_user(user) != 0 || sk_ca_check_tenant(tenant) != 0) {
        sk_ca_err_set(err, "invalid user ID or tenant");
        goto out;
    }
    if (ctx_open(&c, dir, 1, err) != 0 || ctx_recover(&c, now, err) != 0)
        goto out;
    if (serial_hex != NULL) {
        e = sk_ca_index_find_serial(&c.idx, serial, serial_len);
        if (e == NULL) {
            sk_ca_err_set(err, "unknown serial %s", serial_hex);
            goto out;
        }
        if (e->revoked) {
            sk_ca_err_set(err, "serial %s is already revoked", serial_hex);
            goto out;
        }
    } else {
        e = sk_ca_index_find_valid(&c.idx, tenant, user, now);
        if (e == NULL) {
            sk_ca_err_set(err, "unknown user: %s (tenant %s) has no valid certificate", user, tenant);
            goto out;
        }
    }
    e->revoked = 1;
    e->revoked_at = now;
    e->reason = reason;
    sk_ca_serial_hex(e->serial, e->serial_len, hex);
    c.idx.crl_number++;
    if (write_index(&c, err) != 0 || write_crl(&c, now, err) != 0)
        goto out;
    if (report != NULL)
        fprintf(report, "revoked serial %s (%s, reason %s); CRL number %llu\n", hex, e->name,
                sk_ca_reason_name(reason), (unsigned long long)c.idx.crl_number);
    rc = 0;
out:
    ctx_free(&c);
    return rc;
}

int sk_ca_cmd_crl(const char *dir, uint32_t days, FILE *report, sk_ca_err *err)
{
    ca_ctx c;
    char when[32];
    int64_t now = (int64_t)time(NULL);
    int rc = -1;

    ctx_init(&c);
    if (days != 0 && check_days(days, err) != 0)
        goto out;
    if (ctx_open(&c, dir, 1, err) != 0 || ctx_recover(&c, now, err) != 0)
        goto out;
    if (days != 0)
        c.idx.crl_days = days;
    c.idx.crl_number++;
    if (write_index(&c, err) != 0 || write_crl(&c, now, err) != 0)
        goto out;
    fmt_time(now + (int64_t)c.idx.crl_days * 86400, when, sizeof(when));
    if (report != NULL)
        fprintf(report, "wrote %s: CRL number %llu, next update %s\n", c.p_crl,
                (unsigned long long)c.idx.crl_number, when);
    rc = 0;
out:
    ctx_free(&c);
    return rc;
}

/* ---- list ------------------------------------------------------------------- */

static const char *status_of(const sk_ca_entry *e, int64_t now)
{
    if (e->revoked)
        return "revoked";
    if (e->not_after <= now)
        return "expired";
    return "valid";
}

static int list_json(const sk_ca_index *idx, int64_t now, FILE *out, sk_ca_err *err)
{
    json_t *arr = json_array();
    char *text = NULL;
    int rc = -1;

    if (arr == NULL)
        goto fail;
    for (size_t i = 0; i < idx->n; i++) {
        const sk_ca_entry *e = &idx->v[i];
        char hex[SK_CA_SERIAL_HEX_CAP], nb[32], na[32], ra[32];
        json_t *o;

        sk_ca_serial_hex(e->serial, e->serial_len, hex);
        fmt_time(e->not_before, nb, sizeof(nb));
        fmt_time(e->not_after, na, sizeof(na));
        fmt_time(e->revoked_at, ra, sizeof(ra));
        o = json_pack("{s:s, s:s, s:o, s:s, s:s, s:s, s:s, s:o, s:o}", "serial", hex, "kind",
                      e->kind == 'c' ? "client" : "server", "tenant",
                      e->kind == 'c' ? json_string(e->tenant) : json_null(),
                      "user", e->name, "not_before", nb, "not_after", na, "status", status_of(e, now),
                      "revoked_at", e->revoked ? json_string(ra) : json_null(), "reason",
                      e->revoked ? json_string(sk_ca_reason_name(e->reason)) : json_null());
        if (o == NULL || json_array_append_new(arr, o) != 0)
            goto fail;
    }
    text = json_dumps(arr, JSON_INDENT(2));
    if (text == NULL || fprintf(out, "%s\n", text) < 0)
        goto fail;
    rc = 0;
    goto out;
fail:
    sk_ca_err_set(err, "building the JSON listing failed");
out:
    free(text);
    json_decref(arr);
    return rc;
}

int sk_ca_cmd_list(const char *dir, int json, FILE *out, sk_ca_err *err)
{
    ca_ctx c;
    struct stat st;
    int64_t now = (int64_t)time(NULL);
    int rc = -1;

    ctx_init(&c);
    if (ctx_open(&c, dir, 0, err) != 0)
        goto out;
    if (lstat(c.p_pending, &st) == 0)
        fprintf(stderr, "sekisho-ca: warning: an interrupted command left %s; the next issue/revoke/crl "
                        "resolves it\n", c.p_pending);
    if (json) {
        rc = list_json(&c.idx, now, out, err);
        goto out;
    }
    fprintf(out, "%-32s %-6s %-12s %-24s %-20s %-20s %-7s %-20s %s\n", "SERIAL", "KIND", "TENANT", "USER",
            "NOT_BEFORE", "NOT_AFTER", "STATUS", "REVOKED_AT", "REASON");
    for (size_t i = 0; i < c.idx.n; i++) {
        const sk_ca_entry *e = &c.idx.v[i];
        char hex[SK_CA_SERIAL_HEX_CAP], nb[32], na[32], ra[32];

        sk_ca_serial_hex(e->serial, e->serial_len, hex);
        fmt_time(e->not_before, nb, sizeof(nb));
        fmt_time(e->not_after, na, sizeof(na));
        if (e->revoked)
            fmt_time(e->revoked_at, ra, sizeof(ra));
        else
            if (sk_strlcpy(ra, sizeof(ra), "-") != 0)
                ra[0] = '\0';
        fprintf(out, "%-32s %-6s %-12s %-24s %-20s %-20s %-7s %-20s %s\n", hex,
                e->kind == 'c' ? "client" : "server", e->tenant, e->name, nb, na, status_of(e, now), ra,
                e->revoked ? sk_ca_reason_name(e->reason) : "-");
    }
    rc = 0;
out:
    ctx_free(&c);
    return rc;
}
