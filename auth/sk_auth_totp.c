/*
 * TOTP: the key file, sealing secrets at rest, code checks, enrolment and QR
 * codes. Contracts in sk_auth.h.
 */
#define _GNU_SOURCE /* O_CLOEXEC, mkostemp */
#include <errno.h>
#include <fcntl.h>
#include <liboath/oath.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <qrencode.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sk_auth.h"

#define BLOB_VERSION 0x01u
#define NONCE_LEN 12
#define TAG_LEN 16
#define SECRET_MAX 64
#define AAD_MAX (SK_TENANT_MAX + 1 + SK_USER_ID_MAX)

/* ---- key file ------------------------------------------------------------ */

/* A reason goes to why (when given) instead of the log, so a tool can print
 * it as its own one-line error. */
typedef struct why_buf {
    char *p;
    size_t cap;
} why_buf;

static void why_set(const why_buf *w, const char *fmt, ...) SK_PRINTF(2, 3);
static void why_set(const why_buf *w, const char *fmt, ...)
{
    char msg[SK_AUTH_PATH_MAX + 200];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        msg[0] = '\0';
    if (w && w->p && w->cap > 0) {
        if (sk_strlcpy(w->p, w->cap, msg) != 0 && w->cap > 4) {
            /* keep the start of a reason that does not fit, marked as cut */
            memcpy(w->p, msg, w->cap - 4);
            memcpy(w->p + w->cap - 4, "...", 4);
        }
    } else {
        sk_log(SK_LOG_ERR, "totp: %s", msg);
    }
}

static int read_key_fd(int fd, const char *path, uint8_t key[SK_AUTH_TOTP_KEY_LEN], const why_buf *w)
{
    struct stat st;
    size_t got = 0;

    if (fstat(fd, &st) != 0) {
        why_set(w, "cannot stat key file %s: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        why_set(w, "key file %s is not a regular file", path);
        return -1;
    }
    if ((st.st_mode & 077) != 0) {
        why_set(w, "key file %s is accessible to group or others (mode %03o); "
               "refusing it (chmod 600)", path, (unsigned)(st.st_mode & 0777));
        return -1;
    }
    if (st.st_size != SK_AUTH_TOTP_KEY_LEN) {
        why_set(w, "key file %s must hold exactly %d bytes", path,
               SK_AUTH_TOTP_KEY_LEN);
        return -1;
    }
    while (got < SK_AUTH_TOTP_KEY_LEN) {
        ssize_t n = read(fd, key + got, SK_AUTH_TOTP_KEY_LEN - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            why_set(w, "cannot read key file %s", path);
            sk_wipe(key, SK_AUTH_TOTP_KEY_LEN);
            return -1;
        }
        got += (size_t)n;
    }
    return 0;
}


/* Create the key file unless someone else does first. 0 when a key file now
 * exists (ours or the winner's), -1 otherwise. */
static int create_key(const char *path, const why_buf *w)
{
    char tmp[SK_AUTH_PATH_MAX + 16];
    char dir[SK_AUTH_PATH_MAX];
    uint8_t key[SK_AUTH_TOTP_KEY_LEN];
    int fd = -1, ret = -1, tmp_made = 0;

    if (sk_snprintf(tmp, sizeof tmp, "%s.tmpXXXXXX", path) != 0 ||
        sk_strlcpy(dir, sizeof dir, path) != 0) {
        why_set(w, "key file path too long");
        goto out;
    }
    /* mkostemp opens with O_EXCL and mode 0600. */
    fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        why_set(w, "cannot create a key file next to %s: %s", path, strerror(errno));
        goto out;
    }
    tmp_made = 1;
    if (fchmod(fd, 0600) != 0 || sk_random(key, sizeof key) != 0 ||
        sk_write_all(fd, key, sizeof key) != 0 || fsync(fd) != 0) {
        why_set(w, "cannot write a new key file for %s", path);
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        goto out;
    }
    fd = -1;
    /* link(2) publishes the complete file atomically and, unlike rename, fails
     * when the name exists: the first creator wins, nobody overwrites a key
     * that may already seal secrets. */
    if (link(tmp, path) != 0 && errno != EEXIST) {
        why_set(w, "cannot create key file %s: %s", path, strerror(errno));
        goto out;
    }
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    else if (sk_strlcpy(dir, sizeof dir, ".") != 0)
        goto out;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        if (fsync(dfd) != 0)
            sk_log(SK_LOG_WARN, "totp: fsync of %s failed", dir);
        close(dfd);
    }
    ret = 0;
out:
    sk_wipe(key, sizeof key);
    if (fd >= 0)
        close(fd);
    if (tmp_made)
        unlink(tmp);
    return ret;
}

int sk_auth_totp_key_load_ex(const char *path, int create, uint8_t key[SK_AUTH_TOTP_KEY_LEN],
                             char *why, size_t why_cap)
{
    why_buf wb = { why, why_cap }, *w = &wb;
    int ret = -1;

    if (why && why_cap > 0)
        why[0] = '\0';

    if (!path || path[0] == '\0') {
        why_set(w, "no key file configured ([auth] totp_key)");
        return -1;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
            if (errno == ENOENT && create && attempt == 0) {
                if (create_key(path, w) != 0)
                    break;
                continue;
            }
            why_set(w, "cannot open key file %s: %s", path, strerror(errno));
            break;
        }
        ret = read_key_fd(fd, path, key, w);
        close(fd);
        break;
    }
    if (ret != 0)
        sk_wipe(key, SK_AUTH_TOTP_KEY_LEN);
    return ret;
}

int sk_auth_totp_key_load(const char *path, int create, uint8_t key[SK_AUTH_TOTP_KEY_LEN])
{
    return sk_auth_totp_key_load_ex(path, create, key, NULL, 0);
}

/* ---- sealing ------------------------------------------------------------- */

static int make_aad(const char *tenant, const char *id, uint8_t aad[AAD_MAX], size_t *len)
{
    if (!tenant || !id || !sk_store_valid_tenant(tenant) || !sk_store_valid_id(id))
        return -1;
    size_t tl = strlen(tenant), il = strlen(id);
    if (tl + 1 + il > AAD_MAX)
        return -1;
    memcpy(aad, tenant, tl);
    aad[tl] = 0;
    memcpy(aad + tl + 1, id, il);
    *len = tl + 1 + il;
    return 0;
}

int sk_auth_totp_seal(const uint8_t key[SK_AUTH_TOTP_KEY_LEN], const char *tenant, const char *id,
                      const uint8_t *secret, size_t len, uint8_t *blob, size_t cap,
                      size_t *blob_len)
{
    EVP_CIPHER_CTX *ctx = NULL;
    uint8_t aad[AAD_MAX];
    size_t aad_len = 0;
    int outl = 0, ret = -1;

    *blob_len = 0;
    if (len == 0 || len > SECRET_MAX || cap < 1 + NONCE_LEN + len + TAG_LEN ||
        make_aad(tenant, id, aad, &aad_len) != 0)
        goto out;
    blob[0] = BLOB_VERSION;
    if (sk_random(blob + 1, NONCE_LEN) != 0)
        goto out;
    if (!(ctx = EVP_CIPHER_CTX_new()) ||
        EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
        EVP_EncryptInit_ex(ctx, NULL, NULL, key, blob + 1) != 1 ||
        EVP_EncryptUpdate(ctx, NULL, &outl, aad, (int)aad_len) != 1 ||
        EVP_EncryptUpdate(ctx, blob + 1 + NONCE_LEN, &outl, secret, (int)len) != 1 ||
        (size_t)outl != len ||
        EVP_EncryptFinal_ex(ctx, blob + 1 + NONCE_LEN + len, &outl) != 1 || outl != 0 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, blob + 1 + NONCE_LEN + len) != 1)
        goto out;
    *blob_len = 1 + NONCE_LEN + len + TAG_LEN;
    ret = 0;
out:
    if (ret != 0 && cap > 0)
        sk_wipe(blob, cap);
    EVP_CIPHER_CTX_free(ctx);
    return ret;
}

int sk_auth_totp_open(const uint8_t key[SK_AUTH_TOTP_KEY_LEN], const char *tenant, const char *id,
                      const uint8_t *blob, size_t blob_len, uint8_t *secret, size_t cap,
                      size_t *len)
{
    EVP_CIPHER_CTX *ctx = NULL;
    uint8_t aad[AAD_MAX], pt[SECRET_MAX], tag[TAG_LEN];
    size_t aad_len = 0, ct_len;
    int outl = 0, ret = -1;

    *len = 0;
    if (blob_len < 1 + NONCE_LEN + 1 + TAG_LEN || blob[0] != BLOB_VERSION)
        goto out;
    ct_len = blob_len - 1 - NONCE_LEN - TAG_LEN;
    if (ct_len > SECRET_MAX || ct_len > cap || make_aad(tenant, id, aad, &aad_len) != 0)
        goto out;
    memcpy(tag, blob + 1 + NONCE_LEN + ct_len, TAG_LEN); /* ctrl wants a non-const pointer */
    if (!(ctx = EVP_CIPHER_CTX_new()) ||
        EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
        EVP_DecryptInit_ex(ctx, NULL, NULL, key, blob + 1) != 1 ||
        EVP_DecryptUpdate(ctx, NULL, &outl, aad, (int)aad_len) != 1 ||
        EVP_DecryptUpdate(ctx, pt, &outl, blob + 1 + NONCE_LEN, (int)ct_len) != 1 ||
        (size_t)outl != ct_len ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) != 1 ||
        EVP_DecryptFinal_ex(ctx, pt + ct_len, &outl) != 1)
        goto out;
    memcpy(secret, pt, ct_len);
    *len = ct_len;
    ret = 0;
out:
    if (ret != 0 && cap > 0)
        sk_wipe(secret, cap);
    sk_wipe(pt, sizeof pt);
    EVP_CIPHER_CTX_free(ctx);
    return ret;
}

/* ---- codes --------------------------------------------------------------- */

static pthread_once_t oath_once = PTHREAD_ONCE_INIT;
static int oath_ok;

static void oath_setup(void)
{
    oath_ok = oath_init() == OATH_OK;
}

int sk_auth_base32_encode(const uint8_t *in, size_t n, char *out, size_t cap)
{
    static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    size_t need = (n * 8 + 4) / 5, o = 0;
    uint32_t acc = 0;
    int bits = 0;

    if (cap == 0)
        return -1;
    if (need >= cap) {
        out[0] = '\0';
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 5) {
            out[o++] = alpha[(acc >> (bits - 5)) & 31u];
            bits -= 5;
        }
    }
    if (bits > 0)
        out[o++] = alpha[(acc << (5 - bits)) & 31u];
    out[o] = '\0';
    acc = 0;
    return 0;
}

int sk_auth_totp_code(const uint8_t *secret, size_t len, int64_t now, char out[7])
{
    pthread_once(&oath_once, oath_setup);
    out[0] = '\0';
    if (!oath_ok || len == 0 || len > SECRET_MAX || now < 0)
        return -1;
    if (oath_totp_generate2((const char *)secret, len, (time_t)now, SK_AUTH_TOTP_STEP,
                            OATH_TOTP_DEFAULT_START_TIME, SK_AUTH_TOTP_DIGITS, 0, out) != OATH_OK) {
        out[0] = '\0';
        return -1;
    }
    return 0;
}

int sk_auth_totp_check(const sk_policy_config *pc, const uint8_t *secret, size_t len,
                       const char *code, int64_t last_step, int64_t now, int64_t *matched_step)
{
    char want[SK_AUTH_TOTP_DIGITS + 1], got[8];
    int64_t t, fresh = INT64_MIN, used = INT64_MIN;
    int ret = -1;

    memset(got, 0, sizeof got);
    if (!code || strnlen(code, 8) != SK_AUTH_TOTP_DIGITS)
        return SK_POLICY_TOTP_OUT_OF_WINDOW;
    for (int i = 0; i < SK_AUTH_TOTP_DIGITS; i++)
        if (code[i] < '0' || code[i] > '9')
            return SK_POLICY_TOTP_OUT_OF_WINDOW;
    memcpy(got, code, SK_AUTH_TOTP_DIGITS);
    if (pc->totp_step != SK_AUTH_TOTP_STEP)
        return -1; /* the URI promises period=30 */
    t = sk_policy_totp_step_at(pc, now);
    /* Every step of the window is computed and compared, whatever matches, so
     * the time taken says nothing about which step (if any) matched. */
    for (int64_t s = t - (int64_t)pc->totp_window; s <= t + (int64_t)pc->totp_window; s++) {
        if (s < 0)
            continue;
        if (sk_auth_totp_code(secret, len, s * SK_AUTH_TOTP_STEP, want) != 0)
            goto out;
        if (CRYPTO_memcmp(want, got, SK_AUTH_TOTP_DIGITS) == 0) {
            if (s > last_step) {
                if (fresh == INT64_MIN)
                    fresh = s;
            } else {
                used = s;
            }
        }
    }
    if (fresh == INT64_MIN && used == INT64_MIN) {
        ret = SK_POLICY_TOTP_OUT_OF_WINDOW;
        goto out;
    }
    /* The policy has the final word on replay and window. */
    ret = (int)sk_policy_totp_check(pc, last_step, now, fresh != INT64_MIN ? fresh : used);
    if (ret == SK_POLICY_TOTP_ACCEPT)
        *matched_step = fresh;
out:
    sk_wipe(want, sizeof want);
    sk_wipe(got, sizeof got);
    return ret;
}

/* ---- URI ----------------------------------------------------------------- */

static void pct(sk_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            sk_buf_add(b, p, 1);
        } else {
            char e[3] = { '%', hex[*p >> 4], hex[*p & 15] };
            sk_buf_add(b, e, 3);
        }
    }
}

int sk_auth_totp_uri(const char *tenant, const char *id, const char *secret_b32, char *out,
                     size_t cap)
{
    sk_buf b;
    if (cap == 0)
        return -1;
    if (!sk_store_valid_tenant(tenant) || !sk_store_valid_id(id) || !secret_b32) {
        out[0] = '\0';
        return -1;
    }
    sk_buf_init(&b, out, cap);
    sk_buf_puts(&b, "otpauth://totp/Sekisho:");
    pct(&b, tenant);
    pct(&b, "/");
    pct(&b, id);
    sk_buf_puts(&b, "?secret=");
    pct(&b, secret_b32);
    sk_buf_puts(&b, "&issuer=Sekisho&algorithm=SHA1&digits=6&period=30");
    if (sk_buf_finish(&b) != 0) {
        out[0] = '\0';
        return -1;
    }
    return 0;
}

/* ---- enrolment ----------------------------------------------------------- */

struct enrol {
    const uint8_t *blob;
    size_t blob_len;
    int activate;       /* operator: active at once; user: pending */
};

static int enrol_fn(sk_user *u, void *arg)
{
    struct enrol *e = arg;
    if (e->activate) {
        memcpy(u->totp_secret, e->blob, e->blob_len);
        u->totp_secret_len = (uint32_t)e->blob_len;
        u->flags |= SK_USER_F_TOTP_ENABLED;
        sk_wipe(u->totp_pending, sizeof u->totp_pending);
        u->totp_pending_len = 0;
    } else {
        memcpy(u->totp_pending, e->blob, e->blob_len);
        u->totp_pending_len = (uint32_t)e->blob_len;
    }
    /* totp_last_step is kept: it only ever grows, so no code of a step that
     * was already used (with any secret) becomes acceptable again. */
    return 0;
}

static int enrol(const sk_auth_config *cfg, sk_store *store, const char *tenant, const char *id,
                 int activate, char *b32, size_t b32_cap, char *uri, size_t uri_cap)
{
    uint8_t key[SK_AUTH_TOTP_KEY_LEN], secret[SK_AUTH_TOTP_SECRET_LEN];
    uint8_t blob[SK_TOTP_BLOB_MAX];
    size_t blob_len = 0;
    int rc, ret = -1;

    if (b32_cap > 0)
        b32[0] = '\0';
    if (uri_cap > 0)
        uri[0] = '\0';
    if (!sk_store_valid_tenant(tenant) || !sk_store_valid_id(id))
        return SK_STORE_NOTFOUND;
    if (sk_auth_totp_key_load(cfg->totp_key_path, 1, key) != 0)
        goto out;
    if (sk_random(secret, sizeof secret) != 0 ||
        sk_auth_totp_seal(key, tenant, id, secret, sizeof secret, blob, sizeof blob,
                          &blob_len) != 0 ||
        sk_auth_base32_encode(secret, sizeof secret, b32, b32_cap) != 0 ||
        sk_auth_totp_uri(tenant, id, b32, uri, uri_cap) != 0)
        goto out;
    struct enrol e = { blob, blob_len, activate };
    rc = sk_store_user_update(store, tenant, id, enrol_fn, &e);
    if (rc == SK_STORE_NOTFOUND) {
        ret = SK_STORE_NOTFOUND;
        goto out;
    }
    if (rc != SK_STORE_OK)
        goto out;
    ret = 0;
out:
    sk_wipe(key, sizeof key);
    sk_wipe(secret, sizeof secret);
    sk_wipe(blob, sizeof blob);
    if (ret != 0) {
        if (b32_cap > 0)
            sk_wipe(b32, b32_cap);
        if (uri_cap > 0)
            sk_wipe(uri, uri_cap);
    }
    return ret;
}

int sk_auth_totp_begin(const sk_auth_config *cfg, sk_store *store, const char *tenant,
                       const char *id, char *b32, size_t b32_cap, char *uri, size_t uri_cap)
{
    return enrol(cfg, store, tenant, id, 0, b32, b32_cap, uri, uri_cap);
}

int sk_auth_totp_enable(const sk_auth_config *cfg, sk_store *store, const char *tenant,
                        const char *id, char *b32, size_t b32_cap, char *uri, size_t uri_cap)
{
    return enrol(cfg, store, tenant, id, 1, b32, b32_cap, uri, uri_cap);
}

int sk_auth_totp_pending(const sk_auth_config *cfg, sk_store *store, const char *tenant, const char *id,
                         char *b32, size_t b32_cap, char *uri, size_t uri_cap)
{
    uint8_t key[SK_AUTH_TOTP_KEY_LEN], secret[SECRET_MAX];
    sk_user *u = calloc(1, sizeof *u);
    size_t len = 0;
    int rc, ret = -1;

    if (b32_cap > 0)
        b32[0] = '\0';
    if (uri_cap > 0)
        uri[0] = '\0';
    if (u == NULL)
        return -1;
    rc = sk_store_user_get(store, tenant, id, u);
    if (rc == SK_STORE_NOTFOUND || (rc == SK_STORE_OK && u->totp_pending_len == 0)) {
        ret = SK_STORE_NOTFOUND;
        goto out;
    }
    /* Never creates a key: a pending secret exists only if one was made. */
    if (rc != SK_STORE_OK || sk_auth_totp_key_load(cfg->totp_key_path, 0, key) != 0)
        goto out;
    if (sk_auth_totp_open(key, u->tenant, u->id, u->totp_pending, u->totp_pending_len, secret, sizeof secret,
                          &len) != 0 ||
        sk_auth_base32_encode(secret, len, b32, b32_cap) != 0 || sk_auth_totp_uri(tenant, id, b32, uri, uri_cap) != 0)
        goto out;
    ret = 0;
out:
    sk_wipe(key, sizeof key);
    sk_wipe(secret, sizeof secret);
    sk_wipe(u, sizeof *u);
    free(u);
    if (ret != 0) {
        if (b32_cap > 0)
            sk_wipe(b32, b32_cap);
        if (uri_cap > 0)
            sk_wipe(uri, uri_cap);
    }
    return ret;
}

struct confirm {
    const sk_auth_config *cfg;
    const uint8_t *key;
    const char *code;
    int64_t now;
    int result;         /* 0, SK_AUTH_TOTP_BADCODE or -1 */
};

static int confirm_fn(sk_user *u, void *arg)
{
    struct confirm *c = arg;
    uint8_t secret[SECRET_MAX];
    size_t len = 0;
    sk_policy_config pc;
    int64_t step = 0;
    int v;

    c->result = SK_AUTH_TOTP_BADCODE;
    if (u->totp_pending_len == 0)
        goto veto;
    if (sk_auth_totp_open(c->key, u->tenant, u->id, u->totp_pending, u->totp_pending_len, secret,
                          sizeof secret, &len) != 0) {
        sk_log(SK_LOG_ERR, "totp: pending secret of %s/%s does not open (key changed?)",
               u->tenant, u->id);
        c->result = -1;
        goto veto;
    }
    sk_auth_policy_config(c->cfg, &pc);
    v = sk_auth_totp_check(&pc, secret, len, c->code, u->totp_last_step, c->now, &step);
    if (v < 0)
        c->result = -1;
    if (v != SK_POLICY_TOTP_ACCEPT)
        goto veto;
    memcpy(u->totp_secret, u->totp_pending, u->totp_pending_len);
    u->totp_secret_len = u->totp_pending_len;
    sk_wipe(u->totp_pending, sizeof u->totp_pending);
    u->totp_pending_len = 0;
    u->flags |= SK_USER_F_TOTP_ENABLED;
    u->totp_last_step = step;
    c->result = 0;
    sk_wipe(secret, sizeof secret);
    return 0;
veto:
    sk_wipe(secret, sizeof secret);
    return 1;
}

int sk_auth_totp_confirm(const sk_auth_config *cfg, sk_store *store, const char *tenant,
                         const char *id, const char *code, int64_t now)
{
    uint8_t key[SK_AUTH_TOTP_KEY_LEN];
    int rc, ret = -1;

    if (!sk_store_valid_tenant(tenant) || !sk_store_valid_id(id))
        return SK_STORE_NOTFOUND;
    if (sk_auth_totp_key_load(cfg->totp_key_path, 0, key) != 0)
        goto out;
    struct confirm c = { cfg, key, code, now, -1 };
    rc = sk_store_user_update(store, tenant, id, confirm_fn, &c);
    if (rc == SK_STORE_OK)
        ret = 0;
    else if (rc == SK_STORE_VETO)
        ret = c.result;
    else if (rc == SK_STORE_NOTFOUND)
        ret = SK_STORE_NOTFOUND;
out:
    sk_wipe(key, sizeof key);
    return ret;
}

static int disable_fn(sk_user *u, void *arg)
{
    (void)arg;
    u->flags &= ~SK_USER_F_TOTP_ENABLED;
    sk_wipe(u->totp_secret, sizeof u->totp_secret);
    u->totp_secret_len = 0;
    sk_wipe(u->totp_pending, sizeof u->totp_pending);
    u->totp_pending_len = 0;
    return 0;
}

int sk_auth_totp_disable(sk_store *store, const char *tenant, const char *id)
{
    int rc = sk_store_user_update(store, tenant, id, disable_fn, NULL);
    if (rc == SK_STORE_OK || rc == SK_STORE_NOTFOUND)
        return rc;
    return -1;
}

/* ---- QR codes ------------------------------------------------------------ */

static QRcode *qr_make(const char *text)
{
    if (!text || text[0] == '\0')
        return NULL;
    return QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
}

int sk_auth_totp_qr_svg(const char *text, char *out, size_t cap)
{
    QRcode *q = NULL;
    sk_buf b;
    int ret = -1;

    if (cap == 0)
        return -1;
    out[0] = '\0';
    if (!(q = qr_make(text)))
        goto out;
    const int quiet = 4, w = q->width, all = w + 2 * quiet;
    sk_buf_init(&b, out, cap);
    sk_buf_printf(&b,
                  "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" width=\"%d\" "
                  "height=\"%d\" shape-rendering=\"crispEdges\" role=\"img\" "
                  "aria-label=\"QR code\"><rect width=\"%d\" height=\"%d\" fill=\"#fff\"/>"
                  "<path fill=\"#000\" d=\"",
                  all, all, all * 6, all * 6, all, all);
    /* One rectangle per horizontal run of dark modules keeps the markup small. */
    for (int y = 0; y < w; y++) {
        for (int x = 0; x < w;) {
            if (!(q->data[y * w + x] & 1)) {
                x++;
                continue;
            }
            int run = 1;
            while (x + run < w && (q->data[y * w + x + run] & 1))
                run++;
            sk_buf_printf(&b, "M%d %dh%dv1h-%dz", x + quiet, y + quiet, run, run);
            x += run;
        }
    }
    sk_buf_puts(&b, "\"/></svg>");
    if (sk_buf_finish(&b) != 0) {
        out[0] = '\0';
        goto out;
    }
    ret = 0;
out:
    if (q)
        QRcode_free(q);
    return ret;
}

int sk_auth_totp_qr_text(const char *text, char *out, size_t cap)
{
    QRcode *q = NULL;
    sk_buf b;
    int ret = -1;

    if (cap == 0)
        return -1;
    out[0] = '\0';
    if (!(q = qr_make(text)))
        goto out;
    const int quiet = 2, w = q->width;
    sk_buf_init(&b, out, cap);
    for (int y = -quiet; y < w + quiet; y += 2) {
        for (int x = -quiet; x < w + quiet; x++) {
            int in_x = x >= 0 && x < w;
            int top = in_x && y >= 0 && y < w && (q->data[y * w + x] & 1);
            int bot = in_x && y + 1 >= 0 && y + 1 < w && (q->data[(y + 1) * w + x] & 1);
            /* Glyphs draw the LIGHT modules (light-on-dark terminal). */
            if (!top && !bot)
                sk_buf_puts(&b, "\xe2\x96\x88"); /* U+2588 full block */
            else if (!top)
                sk_buf_puts(&b, "\xe2\x96\x80"); /* U+2580 upper half */
            else if (!bot)
                sk_buf_puts(&b, "\xe2\x96\x84"); /* U+2584 lower half */
            else
                sk_buf_puts(&b, " ");
        }
        sk_buf_puts(&b, "\n");
    }
    if (sk_buf_finish(&b) != 0) {
        out[0] = '\0';
        goto out;
    }
    ret = 0;
out:
    if (q)
        QRcode_free(q);
    return ret;
}
