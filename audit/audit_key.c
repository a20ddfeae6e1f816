/* audit_key.c — the Ed25519 audit key: generation, the file-backed signer,
 * public key loading and checkpoint signature verification. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "audit_int.h"

#define KEY_FILE_MAX 16384

static int write_new_file(const char *path, const void *data, size_t n, mode_t mode)
{
    int fd, rc = -1;
    const char *p = data;
    size_t off = 0;
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0)
        return -1;
    while (off < n) {
        ssize_t w = write(fd, p + off, n - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            goto out;
        }
        off += (size_t)w;
    }
    /* umask may have widened nothing but may have narrowed .pub; be exact. */
    if (fchmod(fd, mode) != 0 || fsync(fd) != 0)
        goto out;
    rc = 0;
out:
    if (close(fd) != 0)
        rc = -1;
    if (rc != 0)
        (void)unlink(path);
    return rc;
}

int sk_audit_keygen(const char *key_path, const char *audit_dir, char *err, size_t errcap)
{
    char pub_path[4096];
    audit_ekey k;
    BIO *bpub = NULL;
    char *dpub = NULL;
    long npub = 0;
    struct stat st;
    struct timespec ts;
    int rc = -1, key_written = 0;

    memset(&k, 0, sizeof(k));
    if (!key_path || !*key_path) {
        audit_err(err, errcap, "no key path configured ([audit] key)");
        goto out;
    }
    if (sk_snprintf(pub_path, sizeof(pub_path), "%s.pub", key_path) != 0) {
        audit_err(err, errcap, "key path too long");
        goto out;
    }
    if (audit_dir && audit_path_inside(key_path, audit_dir)) {
        audit_err(err, errcap, "refusing to place the signing key inside the audit directory %s",
                  audit_dir);
        goto out;
    }
    if (lstat(key_path, &st) == 0 || errno != ENOENT) {
        audit_err(err, errcap, "%s already exists; refusing to overwrite", key_path);
        goto out;
    }
    if (lstat(pub_path, &st) == 0 || errno != ENOENT) {
        audit_err(err, errcap, "%s already exists; refusing to overwrite", pub_path);
        goto out;
    }
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0 ||
        audit_ekey_generate(&k, 0, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, NULL) != 0) {
        audit_err(err, errcap, "key generation failed");
        goto out;
    }
    bpub = BIO_new(BIO_s_mem());
    if (!bpub || PEM_write_bio_PUBKEY(bpub, k.pk) != 1 ||
        (npub = BIO_get_mem_data(bpub, &dpub)) <= 0) {
        audit_err(err, errcap, "key encoding failed");
        goto out;
    }
    if (audit_ekey_write(&k, key_path, 1) != 0) {
        audit_err(err, errcap, "cannot create %s: %s", key_path, strerror(errno));
        goto out;
    }
    key_written = 1;
    if (write_new_file(pub_path, dpub, (size_t)npub, 0644) != 0) {
        audit_err(err, errcap, "cannot create %s: %s", pub_path, strerror(errno));
        goto out;
    }
    if (audit_fsync_dir_of(key_path) != 0 || audit_fsync_dir_of(pub_path) != 0) {
        audit_err(err, errcap, "cannot sync the key directory");
        (void)unlink(pub_path);
        goto out;
    }
    rc = 0;
out:
    if (rc != 0 && key_written)
        (void)unlink(key_path);
    BIO_free(bpub);
    audit_ekey_free(&k);
    return rc;
}

static int file_sign(void *ctx, const uint8_t *msg, size_t n, uint8_t sig[SK_AUDIT_SIG_LEN])
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    size_t siglen = SK_AUDIT_SIG_LEN;
    int rc = -1;
    if (!c)
        goto out;
    if (EVP_DigestSignInit(c, NULL, NULL, NULL, (EVP_PKEY *)ctx) != 1 ||
        EVP_DigestSign(c, sig, &siglen, msg, n) != 1 || siglen != SK_AUDIT_SIG_LEN)
        goto out;
    rc = 0;
out:
    EVP_MD_CTX_free(c);
    return rc;
}

static int file_pub(void *ctx, uint8_t pub[32])
{
    size_t len = 32;
    if (EVP_PKEY_get_raw_public_key((EVP_PKEY *)ctx, pub, &len) != 1 || len != 32)
        return -1;
    return 0;
}

static void file_destroy(void *ctx)
{
    EVP_PKEY_free((EVP_PKEY *)ctx);
}

int sk_audit_signer_from_file(const char *key_path, const char *audit_dir, sk_audit_signer *out)
{
    struct stat st;
    char *buf = NULL;
    size_t len = 0;
    BIO *b = NULL;
    EVP_PKEY *pk = NULL;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    if (!key_path || !*key_path) {
        sk_log(SK_LOG_ERR, "audit: no signing key configured");
        goto out;
    }
    if (audit_dir && audit_path_inside(key_path, audit_dir)) {
        sk_log(SK_LOG_ERR, "audit: signing key %s is inside the audit directory; refusing",
               key_path);
        goto out;
    }
    if (stat(key_path, &st) != 0 || !S_ISREG(st.st_mode)) {
        sk_log(SK_LOG_ERR, "audit: signing key %s is not a regular file", key_path);
        goto out;
    }
    if (st.st_mode & 077) {
        sk_log(SK_LOG_ERR, "audit: signing key %s must be mode 0600", key_path);
        goto out;
    }
    if (sk_read_file(key_path, KEY_FILE_MAX, &buf, &len) != 0 || len > (size_t)INT32_MAX) {
        sk_log(SK_LOG_ERR, "audit: cannot read signing key %s", key_path);
        goto out;
    }
    b = BIO_new_mem_buf(buf, (int)len);
    if (!b)
        goto out;
    pk = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    if (!pk || EVP_PKEY_get_id(pk) != EVP_PKEY_ED25519) {
        sk_log(SK_LOG_ERR, "audit: %s is not a PEM Ed25519 private key", key_path);
        goto out;
    }
    out->ctx = pk;
    out->sign = file_sign;
    out->public_key = file_pub;
    out->destroy = file_destroy;
    pk = NULL;
    rc = 0;
out:
    BIO_free(b);
    if (buf) {
        sk_wipe(buf, len);
        free(buf);
    }
    EVP_PKEY_free(pk);
    return rc;
}

int sk_audit_pubkey_load(const char *pub_path, uint8_t pub[32], char keyid[SK_AUDIT_HASH_HEX + 1])
{
    char *buf = NULL;
    size_t len = 0, rawlen = 32;
    BIO *b = NULL;
    EVP_PKEY *pk = NULL;
    int rc = -1;
    if (sk_read_file(pub_path, KEY_FILE_MAX, &buf, &len) != 0 || len > (size_t)INT32_MAX)
        goto out;
    b = BIO_new_mem_buf(buf, (int)len);
    if (!b)
        goto out;
    pk = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
    if (!pk || EVP_PKEY_get_id(pk) != EVP_PKEY_ED25519)
        goto out;
    if (EVP_PKEY_get_raw_public_key(pk, pub, &rawlen) != 1 || rawlen != 32)
        goto out;
    if (audit_keyid(pub, keyid) != 0)
        goto out;
    rc = 0;
out:
    BIO_free(b);
    free(buf);
    EVP_PKEY_free(pk);
    return rc;
}

int sk_audit_check_sig(const char *line, const sk_audit_entry *e, const uint8_t pub[32])
{
    EVP_PKEY *pk = NULL;
    EVP_MD_CTX *c = NULL;
    uint8_t *msg = NULL;
    size_t dl = sizeof(AUDIT_SIG_DOMAIN) - 1;
    int ok = 0;
    if (!line || !e || !e->has_sig)
        return 0;
    msg = malloc(dl + e->signed_len);
    if (!msg)
        goto out;
    memcpy(msg, AUDIT_SIG_DOMAIN, dl);
    memcpy(msg + dl, line, e->signed_len);
    pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, 32);
    c = EVP_MD_CTX_new();
    if (!pk || !c || EVP_DigestVerifyInit(c, NULL, NULL, NULL, pk) != 1)
        goto out;
    ok = EVP_DigestVerify(c, e->sig, SK_AUDIT_SIG_LEN, msg, dl + e->signed_len) == 1;
out:
    EVP_MD_CTX_free(c);
    EVP_PKEY_free(pk);
    free(msg);
    return ok;
}
