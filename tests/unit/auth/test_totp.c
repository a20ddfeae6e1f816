/* Unit tests for TOTP in sekisho_auth: key file, sealing, codes (RFC 6238
 * vectors and oathtool), window and replay, login with TOTP, enrolment, QR. */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "sk_auth.h"

static const sk_auth_params test_params = { 1024, 1, 1 };
static const char PW[] = "Correct-Horse-7";
/* A fixed time well inside a step: T = 56666666 (30 s steps), offset 10 s. */
static const int64_t NOW = INT64_C(56666666) * 30 + 10;

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    return remove(p);
}

typedef struct fixture {
    char dir[256];
    char keypath[300];
    sk_store *s;
    sk_auth_pool *pool;
    sk_auth_config cfg;
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    const char *t = getenv("TMPDIR");
    assert_int_equal(sk_snprintf(fx->dir, sizeof fx->dir, "%s/sk-totp-XXXXXX", t ? t : "/tmp"), 0);
    assert_non_null(mkdtemp(fx->dir));
    assert_int_equal(sk_snprintf(fx->keypath, sizeof fx->keypath, "%s/totp.key", fx->dir), 0);
    assert_int_equal(sk_store_open_ex(fx->dir, 0, (size_t)16 << 20, &fx->s), SK_STORE_OK);
    fx->cfg.params = test_params;
    fx->cfg.lockout_threshold = 3;
    fx->cfg.lockout_duration = 1800;
    assert_int_equal(sk_strlcpy(fx->cfg.totp_key_path, sizeof fx->cfg.totp_key_path, fx->keypath), 0);
    assert_int_equal(sk_auth_pool_create(2, 8, &fx->cfg, &fx->pool), 0);
    sk_user u;
    assert_int_equal(sk_store_user_init(&u, "default", "alice"), 0);
    u.created = 1000;
    assert_int_equal(sk_auth_hash_password(&test_params, PW, strlen(PW), u.pw_hash, sizeof u.pw_hash), 0);
    assert_int_equal(sk_store_user_put_new(fx->s, &u), SK_STORE_OK);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    sk_auth_pool_destroy(fx->pool);
    sk_store_close(fx->s);
    nftw(fx->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return 0;
}

static sk_user get_user(fixture *fx, const char *id)
{
    sk_user u;
    assert_int_equal(sk_store_user_get(fx->s, "default", id, &u), SK_STORE_OK);
    return u;
}

/* The raw secret of alice's active (or pending) TOTP, opened with the key file. */
static size_t user_secret(fixture *fx, int pending, uint8_t *secret)
{
    uint8_t key[SK_AUTH_TOTP_KEY_LEN];
    size_t len = 0;
    sk_user u = get_user(fx, "alice");
    assert_int_equal(sk_auth_totp_key_load(fx->keypath, 0, key), 0);
    assert_int_equal(sk_auth_totp_open(key, "default", "alice", pending ? u.totp_pending : u.totp_secret,
                                       pending ? u.totp_pending_len : u.totp_secret_len, secret, 64, &len),
                     0);
    assert_int_equal(len, SK_AUTH_TOTP_SECRET_LEN);
    return len;
}

static void login(fixture *fx, const char *pw, const char *code, int64_t now, sk_auth_verdict *v)
{
    sk_auth_request r;
    memset(&r, 0, sizeof r);
    assert_int_equal(sk_strlcpy(r.cert_tenant, sizeof r.cert_tenant, "default"), 0);
    assert_int_equal(sk_strlcpy(r.cert_id, sizeof r.cert_id, "alice"), 0);
    assert_int_equal(sk_strlcpy(r.login_id, sizeof r.login_id, "alice"), 0);
    r.password_len = strlen(pw);
    memcpy(r.password, pw, r.password_len);
    assert_int_equal(sk_strlcpy(r.totp, sizeof r.totp, code), 0);
    r.now = now;
    assert_int_equal(sk_auth_login(fx->pool, fx->s, &r, v), 0);
}

/* A different well-formed code: the last digit changed. */
static void other_code(const char c[7], char wrong[7])
{
    memcpy(wrong, c, 7);
    wrong[5] = c[5] == '9' ? '0' : (char)(c[5] + 1);
}

/* ---- base32, URI ------------------------------------------------------------ */

static void test_base32_rfc4648(void **state)
{
    (void)state;
    static const char *in[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
    static const char *want[] = { "", "MY", "MZXQ", "MZXW6", "MZXW6YQ", "MZXW6YTB", "MZXW6YTBOI" };
    char out[32];
    for (size_t i = 0; i < 7; i++) {
        assert_int_equal(sk_auth_base32_encode((const uint8_t *)in[i], strlen(in[i]), out, sizeof out), 0);
        assert_string_equal(out, want[i]);
    }
    /* exact fit needs room for the NUL */
    assert_int_equal(sk_auth_base32_encode((const uint8_t *)"foobar", 6, out, 10), -1);
    assert_int_equal(sk_auth_base32_encode((const uint8_t *)"foobar", 6, out, 11), 0);
}

static void test_uri(void **state)
{
    (void)state;
    char uri[SK_AUTH_TOTP_URI_MAX];
    assert_int_equal(sk_auth_totp_uri("acme", "a.b@c", "MZXW6YTBOI", uri, sizeof uri), 0);
    assert_string_equal(uri, "otpauth://totp/Sekisho:acme%2Fa.b%40c?secret=MZXW6YTBOI&issuer=Sekisho"
                             "&algorithm=SHA1&digits=6&period=30");
    assert_int_equal(sk_auth_totp_uri("acme", "a b", "MZXW6YTBOI", uri, sizeof uri), -1);
    assert_int_equal(sk_auth_totp_uri("ACME", "alice", "MZXW6YTBOI", uri, sizeof uri), -1);
    assert_int_equal(sk_auth_totp_uri("acme", "alice", "MZXW6YTBOI", uri, 40), -1);
    assert_string_equal(uri, "");
}

/* ---- key file ---------------------------------------------------------------- */

static void test_key_file(void **state)
{
    fixture *fx = *state;
    uint8_t k1[32], k2[32];
    struct stat st;
    char p[400];

    /* verification never creates */
    assert_int_equal(sk_auth_totp_key_load(fx->keypath, 0, k1), -1);
    assert_int_equal(access(fx->keypath, F_OK), -1);
    /* first need creates: 0600, 32 bytes; a second load gives the same key */
    assert_int_equal(sk_auth_totp_key_load(fx->keypath, 1, k1), 0);
    assert_int_equal(stat(fx->keypath, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 32);
    assert_int_equal(sk_auth_totp_key_load(fx->keypath, 1, k2), 0);
    assert_memory_equal(k1, k2, 32);
    /* no temporary files left behind */
    DIR *d = opendir(fx->dir);
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d));)
        assert_null(strstr(e->d_name, ".tmp"));
    closedir(d);

    /* group- or world-readable: refused */
    assert_int_equal(chmod(fx->keypath, 0640), 0);
    assert_int_equal(sk_auth_totp_key_load(fx->keypath, 0, k2), -1);
    assert_int_equal(chmod(fx->keypath, 0604), 0);
    assert_int_equal(sk_auth_totp_key_load(fx->keypath, 1, k2), -1);
    assert_int_equal(chmod(fx->keypath, 0600), 0);

    /* wrong size: refused, never replaced */
    assert_int_equal(sk_snprintf(p, sizeof p, "%s/short.key", fx->dir), 0);
    int fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, k1, 31), 31);
    close(fd);
    assert_int_equal(sk_auth_totp_key_load(p, 1, k2), -1);
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_size, 31);

    /* a symlink is not followed */
    assert_int_equal(sk_snprintf(p, sizeof p, "%s/link.key", fx->dir), 0);
    assert_int_equal(symlink(fx->keypath, p), 0);
    assert_int_equal(sk_auth_totp_key_load(p, 0, k2), -1);
    /* a directory is not a key */
    assert_int_equal(sk_auth_totp_key_load(fx->dir, 0, k2), -1);
    assert_int_equal(sk_auth_totp_key_load("", 1, k2), -1);
}

struct race {
    const char *path;
    uint8_t key[32];
    int rc;
};

static void *race_load(void *arg)
{
    struct race *r = arg;
    r->rc = sk_auth_totp_key_load(r->path, 1, r->key);
    return NULL;
}

static void test_key_creation_race(void **state)
{
    fixture *fx = *state;
    struct race r[8];
    pthread_t th[8];
    for (int i = 0; i < 8; i++) {
        r[i].path = fx->keypath;
        r[i].rc = -5;
        assert_int_equal(pthread_create(&th[i], NULL, race_load, &r[i]), 0);
    }
    for (int i = 0; i < 8; i++)
        assert_int_equal(pthread_join(th[i], NULL), 0);
    /* whoever won, everybody uses the same key */
    for (int i = 0; i < 8; i++) {
        assert_int_equal(r[i].rc, 0);
        assert_memory_equal(r[i].key, r[0].key, 32);
    }
}

/* ---- sealing ----------------------------------------------------------------- */

static void test_seal_open(void **state)
{
    (void)state;
    uint8_t key[32], key2[32], secret[20], out[64], blob[SK_TOTP_BLOB_MAX], blob2[SK_TOTP_BLOB_MAX], bad[SK_TOTP_BLOB_MAX];
    size_t bl = 0, bl2 = 0, ol = 0;

    assert_int_equal(sk_random(key, sizeof key), 0);
    assert_int_equal(sk_random(key2, sizeof key2), 0);
    assert_int_equal(sk_random(secret, sizeof secret), 0);
    assert_int_equal(sk_auth_totp_seal(key, "acme", "alice", secret, 20, blob, sizeof blob, &bl), 0);
    assert_int_equal(bl, SK_AUTH_TOTP_BLOB_LEN);
    /* the secret does not appear in the blob */
    assert_null(memmem(blob, bl, secret, sizeof secret));
    assert_int_equal(sk_auth_totp_open(key, "acme", "alice", blob, bl, out, sizeof out, &ol), 0);
    assert_int_equal(ol, 20);
    assert_memory_equal(out, secret, 20);
    /* a fresh nonce every time */
    assert_int_equal(sk_auth_totp_seal(key, "acme", "alice", secret, 20, blob2, sizeof blob2, &bl2), 0);
    assert_memory_not_equal(blob, blob2, bl);

    /* wrong key */
    assert_int_equal(sk_auth_totp_open(key2, "acme", "alice", blob, bl, out, sizeof out, &ol), -1);
    assert_int_equal(ol, 0);
    /* wrong AAD: other user, other tenant, and the same bytes split differently */
    assert_int_equal(sk_auth_totp_open(key, "acme", "alicf", blob, bl, out, sizeof out, &ol), -1);
    assert_int_equal(sk_auth_totp_open(key, "acmf", "alice", blob, bl, out, sizeof out, &ol), -1);
    assert_int_equal(sk_auth_totp_seal(key, "ab", "cd", secret, 20, blob2, sizeof blob2, &bl2), 0);
    assert_int_equal(sk_auth_totp_open(key, "abc", "d", blob2, bl2, out, sizeof out, &ol), -1);
    assert_int_equal(sk_auth_totp_open(key, "a", "bcd", blob2, bl2, out, sizeof out, &ol), -1);
    assert_int_equal(sk_auth_totp_open(key, "ab", "cd", blob2, bl2, out, sizeof out, &ol), 0);
    /* every single-bit flip anywhere is detected */
    for (size_t i = 0; i < bl; i++) {
        for (int b = 0; b < 8; b++) {
            memcpy(bad, blob, bl);
            bad[i] ^= (uint8_t)(1u << b);
            assert_int_equal(sk_auth_totp_open(key, "acme", "alice", bad, bl, out, sizeof out, &ol), -1);
        }
    }
    /* truncated or extended */
    for (size_t n = 0; n < bl; n++)
        assert_int_equal(sk_auth_totp_open(key, "acme", "alice", blob, n, out, sizeof out, &ol), -1);
    memcpy(bad, blob, bl);
    bad[bl] = 0;
    assert_int_equal(sk_auth_totp_open(key, "acme", "alice", bad, bl + 1, out, sizeof out, &ol), -1);
    /* output too small */
    assert_int_equal(sk_auth_totp_open(key, "acme", "alice", blob, bl, out, 19, &ol), -1);
    /* seal refuses bad input */
    assert_int_equal(sk_auth_totp_seal(key, "acme", "alice", secret, 0, blob, sizeof blob, &bl), -1);
    assert_int_equal(sk_auth_totp_seal(key, "acme", "alice", secret, 20, blob, 48, &bl), -1);
    assert_int_equal(sk_auth_totp_seal(key, "acme", "-bad", secret, 20, blob, sizeof blob, &bl), -1);
}

/* ---- codes ------------------------------------------------------------------- */

static void test_rfc6238_vectors(void **state)
{
    (void)state;
    /* RFC 6238 appendix B (SHA1), last 6 of the 8 digits */
    static const uint8_t secret[] = "12345678901234567890";
    static const struct { int64_t t; const char *code; } v[] = {
        { 59, "287082" }, { 1111111109, "081804" }, { 1111111111, "050471" },
        { 1234567890, "005924" }, { 2000000000, "279037" }, { INT64_C(20000000000), "353130" },
    };
    char out[7];
    for (size_t i = 0; i < SK_ARRAY_LEN(v); i++) {
        assert_int_equal(sk_auth_totp_code(secret, 20, v[i].t, out), 0);
        assert_string_equal(out, v[i].code);
    }
    assert_int_equal(sk_auth_totp_code(secret, 20, -1, out), -1);
    assert_int_equal(sk_auth_totp_code(secret, 0, 59, out), -1);
}

/* Cross-check with the oathtool binary, computed now, at a few fixed times. */
static void test_against_oathtool(void **state)
{
    (void)state;
    uint8_t secret[20];
    char b32[40], cmd[256], line[64], mine[7];
    assert_int_equal(sk_random(secret, sizeof secret), 0);
    assert_int_equal(sk_auth_base32_encode(secret, sizeof secret, b32, sizeof b32), 0);
    static const int64_t times[] = { 59, 1700000000, 1700000029, 1700000030, 2000000000 };
    for (size_t i = 0; i < SK_ARRAY_LEN(times); i++) {
        assert_int_equal(sk_snprintf(cmd, sizeof cmd, "oathtool --totp -b %s --now=@%lld 2>&1", b32,
                                     (long long)times[i]), 0);
        FILE *f = popen(cmd, "r");
        assert_non_null(f);
        assert_non_null(fgets(line, sizeof line, f));
        assert_int_equal(pclose(f), 0);
        line[strcspn(line, "\n")] = '\0';
        assert_int_equal(sk_auth_totp_code(secret, sizeof secret, times[i], mine), 0);
        assert_string_equal(mine, line);
    }
}

static void test_check_window_and_replay(void **state)
{
    (void)state;
    sk_policy_config pc;
    sk_policy_defaults(&pc);
    uint8_t secret[20];
    char c[7];
    int64_t m = -9, t = NOW / 30;
    assert_int_equal(sk_random(secret, sizeof secret), 0);

    /* steps T-1, T, T+1 accepted (and the matched step reported) */
    for (int d = -1; d <= 1; d++) {
        assert_int_equal(sk_auth_totp_code(secret, 20, (t + d) * 30, c), 0);
        assert_int_equal(sk_auth_totp_check(&pc, secret, 20, c, SK_POLICY_TOTP_NONE, NOW, &m), SK_POLICY_TOTP_ACCEPT);
        assert_int_equal(m, t + d);
    }
    /* T-2 and T+2 are outside the window */
    for (int d = -2; d <= 2; d += 4) {
        assert_int_equal(sk_auth_totp_code(secret, 20, (t + d) * 30, c), 0);
        char ok[7];
        int clash = 0;
        for (int e = -1; e <= 1; e++) { /* a 1e-6 chance that two steps share a code */
            assert_int_equal(sk_auth_totp_code(secret, 20, (t + e) * 30, ok), 0);
            clash |= strcmp(ok, c) == 0;
        }
        if (!clash)
            assert_int_equal(sk_auth_totp_check(&pc, secret, 20, c, SK_POLICY_TOTP_NONE, NOW, &m),
                             SK_POLICY_TOTP_OUT_OF_WINDOW);
    }
    /* window edges in time: the last second of step T+... */
    assert_int_equal(sk_auth_totp_code(secret, 20, (t - 1) * 30, c), 0);
    assert_int_equal(sk_auth_totp_check(&pc, secret, 20, c, SK_POLICY_TOTP_NONE, (t + 1) * 30 - 1, &m),
                     SK_POLICY_TOTP_ACCEPT);
    assert_int_equal(sk_auth_totp_check(&pc, secret, 20, c, SK_POLICY_TOTP_NONE, (t + 1) * 30, &m),
                     SK_POLICY_TOTP_OUT_OF_WINDOW);

    /* replay: a step <= the last accepted one fails */
    assert_int_equal(sk_auth_totp_code(secret, 20, t * 30, c), 0);
    assert_int_equal(sk_auth_totp_check(&pc, secret, 20, c, t, NOW, &m), SK_POLICY_TOTP_REPLAY);
    assert_int_equal(sk_auth_totp_check(&pc, secret, 20, c, t + 1, NOW, &m), SK_POLICY_TOTP_REPLAY);
    assert_int_equal(sk_auth_totp_check(&pc, secret, 20, c, t - 1, NOW, &m), SK_POLICY_TOTP_ACCEPT);
    assert_int_equal(m, t);

    /* malformed codes never match */
    static const char *badc[] = { "", "12345", "1234567", "12345a", " 12345", "12 345", "+12345", "-12345" };
    for (size_t i = 0; i < SK_ARRAY_LEN(badc); i++)
        assert_int_equal(sk_auth_totp_check(&pc, secret, 20, badc[i], SK_POLICY_TOTP_NONE, NOW, &m),
                         SK_POLICY_TOTP_OUT_OF_WINDOW);
}

/* ---- login ------------------------------------------------------------------- */

static void code_at(fixture *fx, int64_t t, char c[7])
{
    uint8_t secret[64];
    size_t n = user_secret(fx, 0, secret);
    assert_int_equal(sk_auth_totp_code(secret, n, t, c), 0);
}

static void test_login_totp(void **state)
{
    fixture *fx = *state;
    char b32[SK_AUTH_TOTP_B32_MAX], uri[SK_AUTH_TOTP_URI_MAX], c[7], wrong[7];
    sk_auth_verdict v;

    assert_int_equal(sk_auth_totp_enable(&fx->cfg, fx->s, "default", "alice", b32, sizeof b32, uri, sizeof uri), 0);
    assert_int_equal(strlen(b32), 32);
    assert_non_null(strstr(uri, b32));
    sk_user u = get_user(fx, "alice");
    assert_true(u.flags & SK_USER_F_TOTP_ENABLED);
    assert_int_equal(u.totp_secret_len, SK_AUTH_TOTP_BLOB_LEN);

    code_at(fx, NOW, c);
    /* right password, right code */
    login(fx, PW, c, NOW, &v);
    assert_int_equal(v.outcome, SK_AUTH_OK);
    assert_int_equal(get_user(fx, "alice").totp_last_step, NOW / 30);
    /* the same code again: replay, counted as a failure, same outcome as a wrong password */
    login(fx, PW, c, NOW + 5, &v);
    assert_int_equal(v.outcome, SK_AUTH_FAIL);
    assert_int_equal(v.reason, SK_AUTH_R_TOTP_REPLAY);
    assert_int_equal(v.failures, 1);
    /* a wrong code */
    other_code(c, wrong);
    login(fx, PW, wrong, NOW + 5, &v);
    assert_int_equal(v.outcome, SK_AUTH_FAIL);
    assert_int_equal(v.reason, SK_AUTH_R_BAD_TOTP);
    assert_int_equal(v.failures, 2);
    /* the next step's code works and resets the count */
    code_at(fx, NOW + 30, c);
    login(fx, PW, c, NOW + 30, &v);
    assert_int_equal(v.outcome, SK_AUTH_OK);
    assert_int_equal(get_user(fx, "alice").failures, 0);
    /* an older step (T) after T+1 was used: replay even though inside the window */
    code_at(fx, NOW, c);
    login(fx, PW, c, NOW + 30, &v);
    assert_int_equal(v.reason, SK_AUTH_R_TOTP_REPLAY);
    /* wrong password with a valid code: a password failure, code not consumed */
    code_at(fx, NOW + 60, c);
    login(fx, "Wrong-Horse-7", c, NOW + 60, &v);
    assert_int_equal(v.reason, SK_AUTH_R_BAD_PASSWORD);
    assert_int_equal(get_user(fx, "alice").totp_last_step, NOW / 30 + 1);
    /* missing code: the third failure locks (threshold 3) */
    login(fx, PW, "", NOW + 60, &v);
    assert_int_equal(v.outcome, SK_AUTH_FAIL);
    assert_int_equal(v.reason, SK_AUTH_R_BAD_TOTP);
    assert_int_equal(v.locked_now, 1);
    /* locked: even a correct password and code fail */
    login(fx, PW, c, NOW + 60, &v);
    assert_int_equal(v.outcome, SK_AUTH_FAIL);
    assert_int_equal(v.reason, SK_AUTH_R_LOCKED);
}

static void test_login_totp_key_missing(void **state)
{
    fixture *fx = *state;
    char b32[SK_AUTH_TOTP_B32_MAX], uri[SK_AUTH_TOTP_URI_MAX], c[7];
    sk_auth_verdict v;
    sk_auth_pool *pool = NULL;
    sk_auth_config cfg = fx->cfg;

    assert_int_equal(sk_auth_totp_enable(&fx->cfg, fx->s, "default", "alice", b32, sizeof b32, uri, sizeof uri), 0);
    code_at(fx, NOW, c);
    /* a pool pointed at a missing key file fails closed without counting */
    assert_int_equal(sk_snprintf(cfg.totp_key_path, sizeof cfg.totp_key_path, "%s/nokey", fx->dir), 0);
    assert_int_equal(sk_auth_pool_create(1, 2, &cfg, &pool), 0);
    sk_auth_request r;
    memset(&r, 0, sizeof r);
    assert_int_equal(sk_strlcpy(r.cert_tenant, sizeof r.cert_tenant, "default"), 0);
    assert_int_equal(sk_strlcpy(r.cert_id, sizeof r.cert_id, "alice"), 0);
    assert_int_equal(sk_strlcpy(r.login_id, sizeof r.login_id, "alice"), 0);
    r.password_len = strlen(PW);
    memcpy(r.password, PW, r.password_len);
    assert_int_equal(sk_strlcpy(r.totp, sizeof r.totp, c), 0);
    r.now = NOW;
    assert_int_equal(sk_auth_login(pool, fx->s, &r, &v), 0);
    assert_int_equal(v.outcome, SK_AUTH_FAIL);
    assert_int_equal(v.reason, SK_AUTH_R_TOTP_UNAVAILABLE);
    assert_int_equal(get_user(fx, "alice").failures, 0);
    sk_auth_pool_destroy(pool);
    /* a key file that is replaced (another key) cannot open the secret either */
    assert_int_equal(unlink(fx->keypath), 0);
    uint8_t k[32];
    assert_int_equal(sk_auth_totp_key_load(fx->keypath, 1, k), 0);
    /* (the fixture pool has not loaded a key yet, so it reads the new one) */
    login(fx, PW, c, NOW, &v);
    assert_int_equal(v.outcome, SK_AUTH_FAIL);
    assert_int_equal(v.reason, SK_AUTH_R_TOTP_UNAVAILABLE);
    assert_int_equal(get_user(fx, "alice").failures, 0);
}

/* ---- enrolment ----------------------------------------------------------------- */

static void test_enrolment(void **state)
{
    fixture *fx = *state;
    char b32[SK_AUTH_TOTP_B32_MAX], uri[SK_AUTH_TOTP_URI_MAX], c[7], wrong[7];
    uint8_t secret[64];
    sk_auth_verdict v;

    /* confirm without begin */
    assert_int_equal(sk_auth_totp_confirm(&fx->cfg, fx->s, "default", "alice", "123456", NOW), -1); /* no key yet */
    assert_int_equal(sk_auth_totp_begin(&fx->cfg, fx->s, "default", "nobody", b32, sizeof b32, uri, sizeof uri),
                     SK_STORE_NOTFOUND);
    assert_int_equal(sk_auth_totp_begin(&fx->cfg, fx->s, "default", "alice", b32, sizeof b32, uri, sizeof uri), 0);
    assert_non_null(strstr(uri, "otpauth://totp/Sekisho:default%2Falice?secret="));
    sk_user u = get_user(fx, "alice");
    assert_false(u.flags & SK_USER_F_TOTP_ENABLED);
    assert_int_equal(u.totp_pending_len, SK_AUTH_TOTP_BLOB_LEN);
    /* still a password-only login while pending */
    login(fx, PW, "", NOW, &v);
    assert_int_equal(v.outcome, SK_AUTH_OK);

    size_t n = user_secret(fx, 1, secret);
    char check[40];
    assert_int_equal(sk_auth_base32_encode(secret, n, check, sizeof check), 0);
    assert_string_equal(check, b32);
    assert_int_equal(sk_auth_totp_code(secret, n, NOW, c), 0);
    other_code(c, wrong);
    assert_int_equal(sk_auth_totp_confirm(&fx->cfg, fx->s, "default", "alice", wrong, NOW), SK_AUTH_TOTP_BADCODE);
    assert_int_equal(sk_auth_totp_confirm(&fx->cfg, fx->s, "default", "alice", "", NOW), SK_AUTH_TOTP_BADCODE);
    assert_false(get_user(fx, "alice").flags & SK_USER_F_TOTP_ENABLED);
    assert_int_equal(get_user(fx, "alice").failures, 0);
    assert_int_equal(sk_auth_totp_confirm(&fx->cfg, fx->s, "default", "alice", c, NOW), 0);
    u = get_user(fx, "alice");
    assert_true(u.flags & SK_USER_F_TOTP_ENABLED);
    assert_int_equal(u.totp_pending_len, 0);
    assert_int_equal(u.totp_last_step, NOW / 30);
    /* the confirming code cannot be used again to log in */
    login(fx, PW, c, NOW, &v);
    assert_int_equal(v.reason, SK_AUTH_R_TOTP_REPLAY);
    /* nothing pending any more */
    assert_int_equal(sk_auth_totp_confirm(&fx->cfg, fx->s, "default", "alice", c, NOW), SK_AUTH_TOTP_BADCODE);
    /* disable clears both */
    assert_int_equal(sk_auth_totp_disable(fx->s, "default", "alice"), 0);
    u = get_user(fx, "alice");
    assert_false(u.flags & SK_USER_F_TOTP_ENABLED);
    assert_int_equal(u.totp_secret_len, 0);
    assert_int_equal(sk_auth_totp_disable(fx->s, "default", "nobody"), SK_STORE_NOTFOUND);
}

/* ---- QR ------------------------------------------------------------------------- */

static void test_qr(void **state)
{
    (void)state;
    static char svg[64 * 1024], txt[64 * 1024];
    const char *uri = "otpauth://totp/Sekisho:default%2Falice?secret=MZXW6YTBOIMZXW6YTBOIMZXW6YTBOIAB"
                      "&issuer=Sekisho&algorithm=SHA1&digits=6&period=30";
    assert_int_equal(sk_auth_totp_qr_svg(uri, svg, sizeof svg), 0);
    assert_true(strncmp(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\"", 39) == 0);
    size_t n = strlen(svg);
    assert_string_equal(svg + n - 6, "</svg>");
    assert_null(strstr(svg, "script"));
    assert_non_null(strstr(svg, "<path fill=\"#000\" d=\"M"));
    /* too small: refused and empty */
    assert_int_equal(sk_auth_totp_qr_svg(uri, svg, 200), -1);
    assert_string_equal(svg, "");
    assert_int_equal(sk_auth_totp_qr_svg("", svg, sizeof svg), -1);

    assert_int_equal(sk_auth_totp_qr_text(uri, txt, sizeof txt), 0);
    /* square: every line has the same number of cells, lines = ceil(cells / 2) */
    size_t lines = 0, cells = 0, cur = 0;
    for (const unsigned char *p = (const unsigned char *)txt; *p; p++) {
        if (*p == '\n') {
            if (lines == 0)
                cells = cur;
            assert_int_equal(cur, cells);
            lines++;
            cur = 0;
        } else if ((*p & 0xc0) != 0x80) {
            cur++;
        }
    }
    assert_true(cells >= 21 + 4);
    assert_int_equal(lines, (cells + 1) / 2);
    assert_int_equal(sk_auth_totp_qr_text(uri, txt, 100), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base32_rfc4648),
        cmocka_unit_test(test_uri),
        cmocka_unit_test_setup_teardown(test_key_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_creation_race, setup, teardown),
        cmocka_unit_test(test_seal_open),
        cmocka_unit_test(test_rfc6238_vectors),
        cmocka_unit_test(test_against_oathtool),
        cmocka_unit_test(test_check_window_and_replay),
        cmocka_unit_test_setup_teardown(test_login_totp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_login_totp_key_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_enrolment, setup, teardown),
        cmocka_unit_test(test_qr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
