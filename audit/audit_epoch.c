/* audit_epoch.c — the writer's forward-secure epoch key (see FORMAT.md,
 * "Key evolution"). The key file holds one header line and the PEM private
 * key of the current epoch only:
 *
 *   sekisho-audit-key v2 epoch=N start=MS origin=<keyid of epoch 0>
 *   -----BEGIN PRIVATE KEY----- ...
 *
 * Evolving writes the next epoch's key to KEY.next first, then (after the
 * handoff checkpoint is durable in the log) renames it over KEY and overwrites
 * the old key's bytes, so a later compromise of the host finds no key of an
 * earlier epoch. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include "audit_int.h"

#define KEY_FILE_MAX 16384
#define KEY_HEADER "sekisho-audit-key v2 "

static int derive(audit_ekey *k)
{
    uint8_t seed[32];
    size_t sl = sizeof(seed), pl = 32;
    EVP_MD_CTX *c = NULL;
    unsigned ml = 0;
    int rc = -1;
    if (EVP_PKEY_get_raw_private_key(k->pk, seed, &sl) != 1 || sl != 32 ||
        EVP_PKEY_get_raw_public_key(k->pk, k->pub, &pl) != 1 || pl != 32 ||
        audit_keyid(k->pub, k->keyid) != 0)
        goto out;
    /* The MAC key only ever authenticates the tail to the writer itself; it is
     * derived from (and erased with) the epoch's private key. */
    c = EVP_MD_CTX_new();
    if (!c || EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(c, AUDIT_MACKEY_DOMAIN, sizeof(AUDIT_MACKEY_DOMAIN) - 1) != 1 ||
        EVP_DigestUpdate(c, seed, sizeof(seed)) != 1 || EVP_DigestFinal_ex(c, k->mac_key, &ml) != 1 ||
        ml != sizeof(k->mac_key))
        goto out;
    rc = 0;
out:
    EVP_MD_CTX_free(c);
    OPENSSL_cleanse(seed, sizeof(seed));
    return rc;
}

void audit_ekey_free(audit_ekey *k)
{
    if (!k)
        return;
    EVP_PKEY_free(k->pk); /* OpenSSL clears Ed25519 private key bytes on free */
    OPENSSL_cleanse(k, sizeof(*k));
    k->pk = NULL;
}

static int parse_header(const char *buf, size_t len, audit_ekey *k)
{
    const char *nl = memchr(buf, '\n', len);
    char line[256], origin[80];
    unsigned long long ep = 0;
    long long start = 0;
    int n = 0;
    if (len < sizeof(KEY_HEADER) - 1 || memcmp(buf, KEY_HEADER, sizeof(KEY_HEADER) - 1) != 0) {
        /* A plain PEM key (written before epochs existed) is epoch 0. */
        k->epoch = 0;
        k->start_ms = -1;
        k->origin[0] = '\0';
        return 0;
    }
    if (!nl || (size_t)(nl - buf) >= sizeof(line))
        return -1;
    memcpy(line, buf, (size_t)(nl - buf));
    line[nl - buf] = '\0';
    if (sscanf(line + sizeof(KEY_HEADER) - 1, "epoch=%llu start=%lld origin=%64s%n", &ep, &start,
               origin, &n) != 3 || line[sizeof(KEY_HEADER) - 1 + (size_t)n] != '\0' ||
        strlen(origin) != SK_AUDIT_HASH_HEX || start < 0)
        return -1;
    k->epoch = ep;
    k->start_ms = start;
    memcpy(k->origin, origin, sizeof(k->origin));
    return 0;
}

int audit_ekey_load(const char *path, audit_ekey *k)
{
    struct stat st;
    char *buf = NULL;
    size_t len = 0;
    BIO *b = NULL;
    int rc = -1, fd = -1;

    memset(k, 0, sizeof(*k));
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077)) {
        sk_log(SK_LOG_ERR, "audit: signing key %s must be a regular 0600 file", path);
        goto out;
    }
    if (sk_read_file(path, KEY_FILE_MAX, &buf, &len) != 0 || len > (size_t)INT32_MAX)
        goto out;
    if (parse_header(buf, len, k) != 0) {
        sk_log(SK_LOG_ERR, "audit: %s has a malformed header line", path);
        goto out;
    }
    b = BIO_new_mem_buf(buf, (int)len);
    if (!b)
        goto out;
    k->pk = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    if (!k->pk || EVP_PKEY_get_id(k->pk) != EVP_PKEY_ED25519 || derive(k) != 0) {
        sk_log(SK_LOG_ERR, "audit: %s is not a PEM Ed25519 private key", path);
        goto out;
    }
    if (k->start_ms < 0)
        k->start_ms = (int64_t)st.st_mtime * 1000;
    if (!k->origin[0])
        memcpy(k->origin, k->keyid, sizeof(k->origin));
    k->dev = st.st_dev;
    k->ino = st.st_ino;
    rc = 0;
out:
    if (fd >= 0)
        (void)close(fd);
    BIO_free(b);
    if (buf) {
        sk_wipe(buf, len);
        free(buf);
    }
    if (rc != 0)
        audit_ekey_free(k);
    return rc;
}

int audit_ekey_changed(const char *path, const audit_ekey *k)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return 1;
    return st.st_dev != k->dev || st.st_ino != k->ino;
}

int audit_ekey_sign(const audit_ekey *k, const uint8_t *msg, size_t n,
                    uint8_t sig[SK_AUDIT_SIG_LEN])
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    size_t siglen = SK_AUDIT_SIG_LEN;
    int rc = -1;
    if (c && EVP_DigestSignInit(c, NULL, NULL, NULL, k->pk) == 1 &&
        EVP_DigestSign(c, sig, &siglen, msg, n) == 1 && siglen == SK_AUDIT_SIG_LEN)
        rc = 0;
    EVP_MD_CTX_free(c);
    return rc;
}

int audit_ekey_mac(const audit_ekey *k, const char *l, size_t n, char out[SK_AUDIT_HASH_HEX + 1])
{
    uint8_t md[32];
    unsigned ml = 0;
    uint8_t *msg = malloc(sizeof(AUDIT_MAC_DOMAIN) - 1 + n);
    int rc = -1;
    if (!msg)
        return -1;
    memcpy(msg, AUDIT_MAC_DOMAIN, sizeof(AUDIT_MAC_DOMAIN) - 1);
    memcpy(msg + sizeof(AUDIT_MAC_DOMAIN) - 1, l, n);
    if (HMAC(EVP_sha256(), k->mac_key, sizeof(k->mac_key), msg, sizeof(AUDIT_MAC_DOMAIN) - 1 + n,
             md, &ml) && ml == sizeof(md)) {
        sk_hex_encode(md, sizeof(md), out);
        rc = 0;
    }
    free(msg);
    return rc;
}

/* Header + PEM of k into a malloc'd buffer (wiped and freed by the caller). */
static int encode(const audit_ekey *k, char **out, size_t *outlen)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *d = NULL, *buf = NULL, head[256];
    long n;
    size_t hl;
    int rc = -1;
    *out = NULL;
    if (!b || sk_snprintf(head, sizeof(head), KEY_HEADER "epoch=%" PRIu64 " start=%" PRId64
                          " origin=%s\n", k->epoch, k->start_ms, k->origin) != 0 ||
        PEM_write_bio_PrivateKey(b, k->pk, NULL, NULL, 0, NULL, NULL) != 1)
        goto out;
    n = BIO_get_mem_data(b, &d);
    hl = strlen(head);
    if (n <= 0 || !(buf = malloc(hl + (size_t)n)))
        goto out;
    memcpy(buf, head, hl);
    memcpy(buf + hl, d, (size_t)n);
    *out = buf;
    *outlen = hl + (size_t)n;
    rc = 0;
out:
    if (d && b) {
        n = BIO_get_mem_data(b, &d);
        if (n > 0)
            OPENSSL_cleanse(d, (size_t)n);
    }
    BIO_free(b);
    return rc;
}

int audit_ekey_generate(audit_ekey *k, uint64_t epoch, int64_t start_ms, const char *origin)
{
    memset(k, 0, sizeof(*k));
    k->pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (!k->pk || derive(k) != 0) {
        audit_ekey_free(k);
        return -1;
    }
    k->epoch = epoch;
    k->start_ms = start_ms;
    if (sk_strlcpy(k->origin, sizeof(k->origin), origin ? origin : k->keyid) != 0) {
        audit_ekey_free(k);
        return -1;
    }
    return 0;
}

int audit_ekey_write(const audit_ekey *k, const char *path, int exclusive)
{
    char *buf = NULL;
    size_t len = 0;
    int rc = -1, fd = -1;
    if (encode(k, &buf, &len) != 0)
        return -1;
    if (exclusive) {
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0 && sk_write_all(fd, buf, len) == 0 && fchmod(fd, 0600) == 0 && fsync(fd) == 0)
            rc = 0;
        if (fd >= 0 && close(fd) != 0)
            rc = -1;
        if (rc != 0 && fd >= 0)
            (void)unlink(path);
    } else {
        rc = sk_write_file_atomic(path, buf, len, 0600);
    }
    sk_wipe(buf, len);
    free(buf);
    return rc;
}

int audit_ekey_next_path(const char *path, char *out, size_t cap)
{
    return sk_snprintf(out, cap, "%s.next", path);
}

/* Put KEY.next in place of KEY and overwrite the old key's bytes. The old
 * inode is opened before the rename so it is the old key that gets wiped even
 * if another process renames concurrently (we hold the log's flock anyway). */
int audit_ekey_commit_next(const char *path)
{
    char next[4200];
    int old = -1, rc = -1;
    struct stat st;
    if (audit_ekey_next_path(path, next, sizeof(next)) != 0)
        return -1;
    old = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (rename(next, path) != 0) {
        sk_log(SK_LOG_ERR, "audit: cannot replace %s with the next epoch key: %s", path,
               strerror(errno));
        goto out;
    }
    if (audit_fsync_dir_of(path) != 0)
        goto out;
    if (old >= 0 && fstat(old, &st) == 0 && st.st_size > 0) {
        char zero[4096];
        off_t off = 0;
        memset(zero, 0, sizeof(zero));
        while (off < st.st_size) {
            size_t n = (size_t)(st.st_size - off) < sizeof(zero) ? (size_t)(st.st_size - off)
                                                                  : sizeof(zero);
            if (pwrite(old, zero, n, off) != (ssize_t)n)
                break;
            off += (off_t)n;
        }
        (void)fsync(old);
    }
    rc = 0;
out:
    if (old >= 0)
        (void)close(old);
    return rc;
}
