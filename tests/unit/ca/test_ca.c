/* Unit tests for sekisho_ca: names, reasons, serials, index and journal codecs,
 * CSR loading, CRL building. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "sk_ca.h"

/* ---- names ---------------------------------------------------------------- */

static void test_user_names(void **state)
{
    static const char *const good[] = {"alice", "a", "Bob.Smith", "x_y", "user@example.com", "a-b", "9lives",
                                       "a.", "A1234567890123456789012345678901234567890123456789012345678901B"};
    static const char *const bad[] = {"", ".alice", "-alice", "al ice", "al/ice", "al\tice", "al:ice", "ali,ce",
                                      "アリス", "a\nb", "al+ice", "al=ice",
                                      "A12345678901234567890123456789012345678901234567890123456789012345"};
    (void)state;
    for (size_t i = 0; i < SK_ARRAY_LEN(good); i++)
        assert_int_equal(sk_ca_check_user(good[i]), 0);
    for (size_t i = 0; i < SK_ARRAY_LEN(bad); i++)
        assert_int_equal(sk_ca_check_user(bad[i]), -1);
    assert_int_equal(sk_ca_check_user(NULL), -1);
    /* exactly 64 is fine, 65 is not */
    {
        char s[80];
        memset(s, 'a', 64);
        s[64] = '\0';
        assert_int_equal(sk_ca_check_user(s), 0);
        s[64] = 'a';
        s[65] = '\0';
        assert_int_equal(sk_ca_check_user(s), -1);
    }
}

static void test_tenant_names(void **state)
{
    static const char *const good[] = {"default", "acme", "a-1", "0", "-x", "x-"};
    static const char *const bad[] = {"", "Acme", "a_b", "a.b", "a b", "a@b", "ä"};
    char s[80];
    (void)state;
    for (size_t i = 0; i < SK_ARRAY_LEN(good); i++)
        assert_int_equal(sk_ca_check_tenant(good[i]), 0);
    for (size_t i = 0; i < SK_ARRAY_LEN(bad); i++)
        assert_int_equal(sk_ca_check_tenant(bad[i]), -1);
    memset(s, 'a', 63);
    s[63] = '\0';
    assert_int_equal(sk_ca_check_tenant(s), 0);
    s[63] = 'a';
    s[64] = '\0';
    assert_int_equal(sk_ca_check_tenant(s), -1);
}

static void test_host_names(void **state)
{
    static const char *const good[] = {"localhost", "gw.example.co.jp", "127.0.0.1", "::1", "fe80::1", "a-b.c",
                                       "x"};
    static const char *const bad[] = {"", "-a.b", "a-.b", "a..b", ".a", "a.", "a_b.c", "a b", "a,DNS:evil",
                                      "1.2.3.4/8", "*.example.com"};
    (void)state;
    for (size_t i = 0; i < SK_ARRAY_LEN(good); i++)
        assert_int_equal(sk_ca_check_host(good[i]), 0);
    for (size_t i = 0; i < SK_ARRAY_LEN(bad); i++)
        assert_int_equal(sk_ca_check_host(bad[i]), -1);
    assert_int_equal(sk_ca_host_is_ip("127.0.0.1"), 1);
    assert_int_equal(sk_ca_host_is_ip("2001:db8::5"), 1);
    assert_int_equal(sk_ca_host_is_ip("localhost"), 0);
}

/* ---- reasons ---------------------------------------------------------------- */

static void test_reasons(void **state)
{
    static const char *const names[] = {"unspecified", "keyCompromise", "cACompromise", "affiliationChanged",
                                         "superseded", "cessationOfOperation", "certificateHold",
                                         "privilegeWithdrawn"};
    static const int codes[] = {0, 1, 2, 3, 4, 5, 6, 9};
    int code;
    (void)state;
    for (size_t i = 0; i < SK_ARRAY_LEN(names); i++) {
        code = -1;
        assert_int_equal(sk_ca_reason_parse(names[i], &code), 0);
        assert_int_equal(code, codes[i]);
        assert_string_equal(sk_ca_reason_name(code), names[i]);
    }
    assert_int_equal(sk_ca_reason_parse("KeyCompromise", &code), -1);
    assert_int_equal(sk_ca_reason_parse("removeFromCRL", &code), -1);
    assert_int_equal(sk_ca_reason_parse("", &code), -1);
    assert_null(sk_ca_reason_name(7));
    assert_null(sk_ca_reason_name(8));
    assert_null(sk_ca_reason_name(-1));
}

/* ---- serials ----------------------------------------------------------------- */

static void test_serial_parse(void **state)
{
    uint8_t s[SK_CA_SERIAL_MAX];
    size_t n = 0;
    char hex[SK_CA_SERIAL_HEX_CAP];
    (void)state;

    assert_int_equal(sk_ca_serial_parse("0A1b", s, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(s[0], 0x0a);
    assert_int_equal(s[1], 0x1b);
    sk_ca_serial_hex(s, n, hex);
    assert_string_equal(hex, "0A1B");
    assert_int_equal(sk_ca_serial_parse("0x0000abc", s, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(s[0], 0x0a);
    assert_int_equal(s[1], 0xbc);
    /* 20 octets is the RFC 5280 maximum */
    assert_int_equal(sk_ca_serial_parse("0102030405060708090a0b0c0d0e0f1011121314", s, &n), 0);
    assert_int_equal(n, 20);
    assert_int_equal(sk_ca_serial_parse("ff0102030405060708090a0b0c0d0e0f1011121314", s, &n), -1);
    assert_int_equal(sk_ca_serial_parse("", s, &n), -1);
    assert_int_equal(sk_ca_serial_parse("0", s, &n), -1);
    assert_int_equal(sk_ca_serial_parse("0x", s, &n), -1);
    assert_int_equal(sk_ca_serial_parse("12:34", s, &n), -1);
    assert_int_equal(sk_ca_serial_parse("12g4", s, &n), -1);
    assert_int_equal(sk_ca_serial_parse("-12", s, &n), -1);
    assert_int_equal(sk_ca_serial_parse(" 12", s, &n), -1);
}

static void test_serial_unique(void **state)
{
    sk_ca_index idx;
    sk_ca_entry e;
    (void)state;

    sk_ca_index_init(&idx);
    memset(&e, 0, sizeof(e));
    e.kind = 'c';
    assert_int_equal(sk_strlcpy(e.tenant, sizeof(e.tenant), "t"), 0);
    assert_int_equal(sk_strlcpy(e.name, sizeof(e.name), "u"), 0);
    for (int i = 0; i < 4000; i++) {
        assert_int_equal(sk_ca_serial_new(&idx, e.serial, &e.serial_len), 0);
        assert_int_equal(e.serial_len, SK_CA_SERIAL_LEN);
        assert_true(e.serial[0] >= 0x01 && e.serial[0] <= 0x7f);
        /* add fails on a duplicate serial, so success proves uniqueness */
        assert_int_equal(sk_ca_index_add(&idx, &e), 0);
    }
    assert_int_equal(idx.n, 4000);
    /* the index itself refuses a duplicate */
    assert_int_equal(sk_ca_index_add(&idx, &idx.v[17]), -1);
    sk_ca_index_free(&idx);
}

/* ---- index ------------------------------------------------------------------ */

static void fill_index(sk_ca_index *idx)
{
    sk_ca_entry e;

    sk_ca_index_init(idx);
    idx->crl_number = 42;
    idx->crl_days = 3;
    memset(&e, 0, sizeof(e));
    e.kind = 'c';
    assert_int_equal(sk_strlcpy(e.tenant, sizeof(e.tenant), "acme"), 0);
    assert_int_equal(sk_strlcpy(e.name, sizeof(e.name), "alice@example.com"), 0);
    e.not_before = 1700000000;
    e.not_after = 1734000000;
    assert_int_equal(sk_ca_serial_new(idx, e.serial, &e.serial_len), 0);
    assert_int_equal(sk_ca_index_add(idx, &e), 0);
    e.revoked = 1;
    e.revoked_at = 1700001234;
    e.reason = SK_CA_REASON_SUPERSEDED;
    assert_int_equal(sk_ca_serial_new(idx, e.serial, &e.serial_len), 0);
    assert_int_equal(sk_ca_index_add(idx, &e), 0);
    memset(&e, 0, sizeof(e));
    e.kind = 's';
    assert_int_equal(sk_strlcpy(e.tenant, sizeof(e.tenant), "-"), 0);
    assert_int_equal(sk_strlcpy(e.name, sizeof(e.name), "::1"), 0);
    e.not_before = 1;
    e.not_after = 253402300799LL;
    e.serial[0] = 0x01; /* a short serial round-trips too */
    e.serial_len = 1;
    assert_int_equal(sk_ca_index_add(idx, &e), 0);
}

static void test_index_roundtrip(void **state)
{
    sk_ca_index a, b;
    char *t1 = NULL, *t2 = NULL;
    size_t l1 = 0, l2 = 0;
    sk_ca_err err;
    (void)state;

    memset(&err, 0, sizeof(err));
    fill_index(&a);
    sk_ca_index_init(&b);
    assert_int_equal(sk_ca_index_serialize(&a, &t1, &l1), 0);
    assert_int_equal(strlen(t1), l1);
    assert_int_equal(sk_ca_index_parse(t1, l1, &b, &err), 0);
    assert_int_equal(b.n, a.n);
    assert_int_equal(b.crl_number, 42);
    assert_int_equal(b.crl_days, 3);
    for (size_t i = 0; i < a.n; i++) {
        assert_int_equal(b.v[i].serial_len, a.v[i].serial_len);
        assert_memory_equal(b.v[i].serial, a.v[i].serial, a.v[i].serial_len);
        assert_int_equal(b.v[i].kind, a.v[i].kind);
        assert_string_equal(b.v[i].tenant, a.v[i].tenant);
        assert_string_equal(b.v[i].name, a.v[i].name);
        assert_int_equal(b.v[i].not_before, a.v[i].not_before);
        assert_int_equal(b.v[i].not_after, a.v[i].not_after);
        assert_int_equal(b.v[i].revoked, a.v[i].revoked);
        assert_int_equal(b.v[i].revoked_at, a.v[i].revoked_at);
        assert_int_equal(b.v[i].reason, a.v[i].reason);
    }
    assert_int_equal(sk_ca_index_serialize(&b, &t2, &l2), 0);
    assert_int_equal(l1, l2);
    assert_memory_equal(t1, t2, l1);

    /* find_valid: the valid one, not the revoked one; expiry counts */
    assert_ptr_equal(sk_ca_index_find_valid(&b, "acme", "alice@example.com", 1710000000), &b.v[0]);
    assert_null(sk_ca_index_find_valid(&b, "acme", "alice@example.com", 1734000000));
    assert_null(sk_ca_index_find_valid(&b, "other", "alice@example.com", 1710000000));
    assert_null(sk_ca_index_find_valid(&b, "-", "::1", 1710000000)); /* server certs are not users */
    free(t1);
    free(t2);
    sk_ca_index_free(&a);
    sk_ca_index_free(&b);
}

static void test_index_empty_roundtrip(void **state)
{
    sk_ca_index a, b;
    char *t = NULL;
    size_t l = 0;
    sk_ca_err err;
    (void)state;

    memset(&err, 0, sizeof(err));
    sk_ca_index_init(&a);
    sk_ca_index_init(&b);
    a.crl_number = 1;
    assert_int_equal(sk_ca_index_serialize(&a, &t, &l), 0);
    assert_int_equal(sk_ca_index_parse(t, l, &b, &err), 0);
    assert_int_equal(b.n, 0);
    assert_int_equal(b.crl_number, 1);
    free(t);
}

static int parse_text(const char *text)
{
    sk_ca_index idx;
    sk_ca_err err;
    int rc;

    memset(&err, 0, sizeof(err));
    sk_ca_index_init(&idx);
    rc = sk_ca_index_parse(text, strlen(text), &idx, &err);
    if (rc != 0) {
        assert_true(err.msg[0] != '\0'); /* every rejection says why */
        assert_null(strchr(err.msg, '\n'));
        assert_int_equal(idx.n, 0);
    }
    sk_ca_index_free(&idx);
    return rc;
}

/* Append a correct end line so that only the body decides acceptance. */
static char *with_end(const char *body, size_t count)
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    char hex[65];
    size_t cap = strlen(body) + 128;
    char *out = malloc(cap);

    assert_non_null(out);
    assert_int_equal(EVP_Digest(body, strlen(body), md, &mdlen, EVP_sha256(), NULL), 1);
    sk_hex_encode(md, 32, hex);
    assert_int_equal(sk_snprintf(out, cap, "%send %zu %s\n", body, count, hex), 0);
    return out;
}

static void test_index_rejects(void **state)
{
    static const char *const bodies[] = {
        /* duplicate serial */
        ("sekisho-ca index 1\ncrl-number 1\ncrl-days 7\n"
         "cert 0A c t u 1 2 V - -\ncert 0A c t v 1 2 V - -\n"),
        /* non-canonical serial spelling */
        "sekisho-ca index 1\ncrl-number 1\ncrl-days 7\ncert 0a c t u 1 2 V - -\n",
        "sekisho-ca index 1\ncrl-number 1\ncrl-days 7\ncert 000A c t u 1 2 V - -\n",
        /* invalid names, kinds, status, reasons, times */
        "sekisho-ca index 1\ncrl-number 1\ncrl-days 7\ncert 0A c T u 1 2 V - -\n",
        "sekisho-ca index 1\ncrl-number 1\ncrl-days 7\ncert 0A c t .u 1 2 V - -\n",
        "sekisho-ca index 1\ncrl-number 1\ncrl-days 7\ncert 0A x t u 1 2 V - -\n",
        "sekisho-ca index 1\ncrl-number 1\ncrl-days 7\ncert 0A s t host 1 2 V - -\n",
        "sekisho-ca index 1\ncrl-number 1\ncrl-days 7\ncert 0A c t u 1 2 X - -\n",
        "sekisho-ca index 1\ncrl-number 1\ncrl-days 7\ncert 0A c t u 1 2 R 5 removeFromCRL\n",
        "sekisho-ca index 1\ncrl-number 1\ncrl-days 7\ncert 0A c t u 1 2 R - superseded\n",
        "sekisho-ca index 1\ncrl-number 1\ncrl-days 7\ncert 0A c t u 1 2 V 5 -\n",
        "sekisho-ca index 1\ncrl-number 1\ncrl-days 7\ncert 0A c t u 3 2 V - -\n",
        "sekisho-ca index 1\ncrl-number 1\ncrl-days 7\ncert 0A c t u -1 2 V - -\n",
        "sekisho-ca index 1\ncrl-number 1\ncrl-days 7\ncert 0A c t u 1 2 V - - extra\n",
        "sekisho-ca index 1\ncrl-number 1\ncrl-days 7\ncert 0A c t u 1 2 V -\n",
        "sekisho-ca index 1\ncrl-number 1\ncrl-days 7\ncert  0A c t u 1 2 V - -\n",
        "sekisho-ca index 1\ncrl-number 1\ncrl-days 7\ncert 0A c t u 1 2 V - - \n",
        /* header and bookkeeping lines */
        "sekisho-ca index 2\ncrl-number 1\ncrl-days 7\n",
        "sekisho-ca pending 1\ncrl-number 1\ncrl-days 7\n",
        "sekisho-ca index 1\ncrl-days 7\n",
        "sekisho-ca index 1\ncrl-number 1\n",
        "sekisho-ca index 1\ncrl-number 0\ncrl-days 7\n",
        "sekisho-ca index 1\ncrl-number 1\ncrl-days 0\n",
        "sekisho-ca index 1\ncrl-number 1\ncrl-number 2\ncrl-days 7\n",
        "sekisho-ca index 1\ncrl-number x\ncrl-days 7\n",
        "sekisho-ca index 1\ncrl-number 1\ncrl-days 7\nbogus 1\n",
        "sekisho-ca index 1\ncert 0A c t u 1 2 V - -\ncrl-number 1\ncrl-days 7\n",
    };
    char *ok, *t;
    size_t n;
    (void)state;

    /* the template itself is accepted, so each rejection below is about its edit */
    ok = with_end("sekisho-ca index 1\ncrl-number 1\ncrl-days 7\ncert 0A c t u 1 2 V - -\n", 1);
    assert_int_equal(parse_text(ok), 0);
    for (size_t i = 0; i < SK_ARRAY_LEN(bodies); i++) {
        size_t count = 0;
        for (const char *p = strstr(bodies[i], "cert "); p != NULL; p = strstr(p + 1, "\ncert "))
            count++;
        t = with_end(bodies[i], count);
        if (parse_text(t) == 0)
            fail_msg("accepted bad index #%zu: %s", i, t);
        free(t);
    }
    /* wrong count in the end line */
    t = with_end("sekisho-ca index 1\ncrl-number 1\ncrl-days 7\ncert 0A c t u 1 2 V - -\n", 2);
    assert_int_equal(parse_text(t), -1);
    free(t);
    /* data after the end line, missing end line, missing final newline */
    n = strlen(ok);
    t = malloc(n + 32);
    assert_non_null(t);
    memcpy(t, ok, n + 1);
    memcpy(t + n, "cert 0B c t u 1 2 V - -\n", 25);
    assert_int_equal(parse_text(t), -1);
    memcpy(t, ok, n + 1);
    t[n - 1] = '\0';
    assert_int_equal(parse_text(t), -1);
    assert_int_equal(parse_text("sekisho-ca index 1\ncrl-number 1\ncrl-days 7\n"), -1);
    assert_int_equal(parse_text(""), -1);
    free(t);
    free(ok);
}

/* Every single-byte corruption and every truncation of a real index is refused. */
static void test_index_corruption(void **state)
{
    sk_ca_index a;
    char *text = NULL, *copy;
    size_t len = 0;
    (void)state;

    fill_index(&a);
    assert_int_equal(sk_ca_index_serialize(&a, &text, &len), 0);
    copy = malloc(len + 1);
    assert_non_null(copy);
    for (size_t i = 0; i < len; i++) {
        static const unsigned char flips[] = {0x01, 0x20, 0x80};
        for (size_t f = 0; f < SK_ARRAY_LEN(flips); f++) {
            sk_ca_index idx;
            sk_ca_err err;
            memcpy(copy, text, len + 1);
            copy[i] = (char)(copy[i] ^ flips[f]);
            memset(&err, 0, sizeof(err));
            sk_ca_index_init(&idx);
            if (sk_ca_index_parse(copy, len, &idx, &err) == 0)
                fail_msg("corruption at byte %zu (xor %02x) accepted", i, flips[f]);
            sk_ca_index_free(&idx);
        }
    }
    for (size_t cut = 0; cut < len; cut++) {
        sk_ca_index idx;
        sk_ca_err err;
        memset(&err, 0, sizeof(err));
        sk_ca_index_init(&idx);
        if (sk_ca_index_parse(text, cut, &idx, &err) == 0)
            fail_msg("truncation to %zu bytes accepted", cut);
        sk_ca_index_free(&idx);
    }
    free(copy);
    free(text);
    sk_ca_index_free(&a);
}

/* A large index parses quickly, and a duplicate far apart is still caught. */
static void test_index_large(void **state)
{
    sk_ca_index a, b;
    sk_ca_entry e;
    sk_ca_err err;
    char *t = NULL;
    size_t l = 0;
    (void)state;

    sk_ca_index_init(&a);
    sk_ca_index_init(&b);
    a.crl_number = 7;
    memset(&e, 0, sizeof(e));
    e.kind = 'c';
    assert_int_equal(sk_strlcpy(e.tenant, sizeof(e.tenant), "big"), 0);
    e.not_before = 1;
    e.not_after = 2;
    for (int i = 0; i < 5000; i++) {
        assert_int_equal(sk_snprintf(e.name, sizeof(e.name), "user%d", i), 0);
        assert_int_equal(sk_ca_serial_new(&a, e.serial, &e.serial_len), 0);
        assert_int_equal(sk_ca_index_add(&a, &e), 0);
    }
    assert_int_equal(sk_ca_index_serialize(&a, &t, &l), 0);
    memset(&err, 0, sizeof(err));
    assert_int_equal(sk_ca_index_parse(t, l, &b, &err), 0);
    assert_int_equal(b.n, 5000);
    free(t);
    /* forge a duplicate directly in the array (add() would refuse it) */
    memcpy(a.v[4999].serial, a.v[3].serial, a.v[3].serial_len);
    assert_int_equal(sk_ca_index_serialize(&a, &t, &l), 0);
    memset(&err, 0, sizeof(err));
    assert_int_equal(sk_ca_index_parse(t, l, &b, &err), -1);
    assert_non_null(strstr(err.msg, "duplicate"));
    assert_int_equal(b.n, 0);
    free(t);
    sk_ca_index_free(&a);
    sk_ca_index_free(&b);
}

static void test_pending_codec(void **state)
{
    sk_ca_index a;
    sk_ca_entry e;
    sk_ca_err err;
    char *t = NULL, *two;
    size_t l = 0;
    (void)state;

    memset(&err, 0, sizeof(err));
    fill_index(&a);
    assert_int_equal(sk_ca_pending_serialize(&a.v[1], &t, &l), 0);
    assert_int_equal(sk_ca_pending_parse(t, l, &e, &err), 0);
    assert_memory_equal(e.serial, a.v[1].serial, a.v[1].serial_len);
    assert_string_equal(e.name, a.v[1].name);
    assert_int_equal(e.revoked, 1);
    /* a pending file is not an index and vice versa */
    {
        sk_ca_index idx;
        sk_ca_index_init(&idx);
        memset(&err, 0, sizeof(err));
        assert_int_equal(sk_ca_index_parse(t, l, &idx, &err), -1);
    }
    free(t);
    two = with_end("sekisho-ca pending 1\ncert 0A c t u 1 2 V - -\ncert 0B c t u 1 2 V - -\n", 2);
    memset(&err, 0, sizeof(err));
    assert_int_equal(sk_ca_pending_parse(two, strlen(two), &e, &err), -1);
    free(two);
    two = with_end("sekisho-ca pending 1\n", 0);
    memset(&err, 0, sizeof(err));
    assert_int_equal(sk_ca_pending_parse(two, strlen(two), &e, &err), -1);
    free(two);
    sk_ca_index_free(&a);
}

/* ---- CSR ------------------------------------------------------------------------ */

static EVP_PKEY *keygen(const char *type, const char *param)
{
    EVP_PKEY *k;

    if (strcmp(type, "RSA") == 0)
        k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)strtoul(param, NULL, 10));
    else if (param != NULL)
        k = EVP_PKEY_Q_keygen(NULL, NULL, type, param);
    else
        k = EVP_PKEY_Q_keygen(NULL, NULL, type);
    assert_non_null(k);
    return k;
}

/* DER CSR signed by key (subject CN=evil). Caller frees *der. */
static void make_csr(EVP_PKEY *key, unsigned char **der, size_t *len)
{
    X509_REQ *req = X509_REQ_new();
    X509_NAME *nm = X509_NAME_new();
    int n;

    assert_non_null(req);
    assert_non_null(nm);
    assert_int_equal(X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)"evil", -1, -1, 0),
                     1);
    assert_int_equal(X509_REQ_set_subject_name(req, nm), 1);
    assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
    assert_true(X509_REQ_sign(req, key, EVP_PKEY_is_a(key, "ED25519") ? NULL : EVP_sha256()) > 0);
    *der = NULL;
    n = i2d_X509_REQ(req, der);
    assert_true(n > 0);
    *len = (size_t)n;
    X509_NAME_free(nm);
    X509_REQ_free(req);
}

static int load(const void *buf, size_t len, sk_ca_err *err)
{
    X509_REQ *req = NULL;
    int rc;

    memset(err, 0, sizeof(*err));
    rc = sk_ca_csr_load(buf, len, &req, err);
    if (rc == 0)
        assert_non_null(req);
    else
        assert_true(err->msg[0] != '\0');
    X509_REQ_free(req);
    return rc;
}

static void test_csr(void **state)
{
    EVP_PKEY *p256 = keygen("EC", "P-256");
    EVP_PKEY *p384 = keygen("EC", "P-384");
    EVP_PKEY *p521 = keygen("EC", "P-521");
    EVP_PKEY *rsa1024 = keygen("RSA", "1024");
    EVP_PKEY *ed = keygen("ED25519", NULL);
    unsigned char *der = NULL, *bad;
    size_t len = 0;
    sk_ca_err err;
    BIO *bio;
    char *pem;
    long pemlen;
    X509_REQ *req;
    const unsigned char *p;
    (void)state;

    /* good: DER and PEM, P-256 and P-384 */
    make_csr(p256, &der, &len);
    assert_int_equal(load(der, len, &err), 0);
    bio = BIO_new(BIO_s_mem());
    p = der;
    req = d2i_X509_REQ(NULL, &p, (long)len);
    assert_non_null(req);
    assert_int_equal(PEM_write_bio_X509_REQ(bio, req), 1);
    pemlen = BIO_get_mem_data(bio, &pem);
    assert_int_equal(load(pem, (size_t)pemlen, &err), 0);
    /* truncated PEM */
    assert_int_equal(load(pem, (size_t)pemlen / 2, &err), -1);
    X509_REQ_free(req);
    BIO_free(bio);

    /* corrupted signature: last byte of the DER is inside the signature value */
    bad = malloc(len + 8);
    assert_non_null(bad);
    memcpy(bad, der, len);
    bad[len - 1] ^= 0x01;
    assert_int_equal(load(bad, len, &err), -1);
    assert_non_null(strstr(err.msg, "signature"));
    /* corrupted subject (the signed part) */
    memcpy(bad, der, len);
    for (size_t i = 0; i + 4 < len; i++) {
        if (memcmp(bad + i, "evil", 4) == 0) {
            bad[i] = 'd';
            break;
        }
    }
    assert_int_equal(load(bad, len, &err), -1);
    assert_non_null(strstr(err.msg, "signature"));
    /* trailing garbage after DER, truncated DER */
    memcpy(bad, der, len);
    memcpy(bad + len, "junkjunk", 8);
    assert_int_equal(load(bad, len + 8, &err), -1);
    assert_int_equal(load(der, len - 1, &err), -1);
    free(bad);
    OPENSSL_free(der);

    make_csr(p384, &der, &len);
    assert_int_equal(load(der, len, &err), 0);
    OPENSSL_free(der);

    /* refused key types */
    make_csr(p521, &der, &len);
    assert_int_equal(load(der, len, &err), -1);
    assert_non_null(strstr(err.msg, "key"));
    OPENSSL_free(der);
    make_csr(rsa1024, &der, &len);
    assert_int_equal(load(der, len, &err), -1);
    OPENSSL_free(der);
    make_csr(ed, &der, &len);
    assert_int_equal(load(der, len, &err), -1);
    OPENSSL_free(der);

    /* garbage */
    assert_int_equal(load("", 0, &err), -1);
    assert_int_equal(load("garbage\n", 8, &err), -1);
    assert_int_equal(load("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", 74,
                          &err),
                     -1);
    {
        unsigned char zeros[512];
        memset(zeros, 0, sizeof(zeros));
        assert_int_equal(load(zeros, sizeof(zeros), &err), -1);
        assert_int_equal(load(zeros, SK_CA_CSR_MAX + 1, &err), -1); /* size bound checked first */
    }

    EVP_PKEY_free(p256);
    EVP_PKEY_free(p384);
    EVP_PKEY_free(p521);
    EVP_PKEY_free(rsa1024);
    EVP_PKEY_free(ed);
}

static void test_rsa2048_csr(void **state)
{
    EVP_PKEY *k = keygen("RSA", "2048");
    unsigned char *der = NULL;
    size_t len = 0;
    sk_ca_err err;
    (void)state;
    make_csr(k, &der, &len);
    assert_int_equal(load(der, len, &err), 0);
    OPENSSL_free(der);
    EVP_PKEY_free(k);
}

/* ---- certificates and CRL ------------------------------------------------------- */

static int64_t t_epoch(const ASN1_TIME *t)
{
    int64_t v = 0;
    assert_int_equal(sk_ca_asn1_to_epoch(t, &v), 0);
    return v;
}

static void test_crl_and_leaf(void **state)
{
    EVP_PKEY *cakey = NULL, *leafkey = NULL, *pk = NULL;
    X509 *ca = NULL, *leaf = NULL, *pc = NULL;
    STACK_OF(X509) *pcas = NULL;
    X509_CRL *crl = NULL;
    X509_REVOKED *rev = NULL;
    ASN1_ENUMERATED *reason;
    ASN1_INTEGER *asn;
    BIGNUM *bn;
    sk_ca_index idx;
    sk_ca_err err;
    uint8_t serial[SK_CA_SERIAL_MAX];
    size_t slen = 0;
    char *pem = NULL, buf[128];
    size_t plen = 0;
    uint64_t number = 0;
    uint8_t *der = NULL;
    size_t dlen = 0;
    const unsigned char *p;
    PKCS12 *p12;
    X509_STORE *store;
    X509_STORE_CTX *sctx;
    (void)state;

    memset(&err, 0, sizeof(err));
    fill_index(&idx);
    assert_int_equal(sk_ca_key_new(&cakey, &err), 0);
    assert_int_equal(sk_ca_serial_new(&idx, serial, &slen), 0);
    assert_int_equal(sk_ca_make_ca_cert(cakey, "Unit CA", serial, slen, 1700000000, 2000000000, &ca, &err), 0);
    assert_int_equal(X509_check_ca(ca), 1);
    assert_non_null(X509_get0_subject_key_id(ca));

    /* leaf for the valid client entry: subject from the entry, verifies against the CA */
    assert_int_equal(sk_ca_key_new(&leafkey, &err), 0);
    assert_int_equal(sk_ca_make_leaf(ca, cakey, leafkey, &idx.v[0], &leaf, &err), 0);
    assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_commonName, buf, sizeof(buf)) > 0);
    assert_string_equal(buf, "alice@example.com");
    assert_true(X509_NAME_get_text_by_NID(X509_get_subject_name(leaf), NID_organizationName, buf, sizeof(buf)) > 0);
    assert_string_equal(buf, "acme");
    assert_true((X509_get_extended_key_usage(leaf) & XKU_SSL_CLIENT) != 0);
    assert_true((X509_get_extended_key_usage(leaf) & XKU_SSL_SERVER) == 0);
    assert_true((X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE) != 0);
    assert_int_equal(X509_check_ca(leaf), 0);
    assert_int_equal(t_epoch(X509_get0_notAfter(leaf)), idx.v[0].not_after);
    bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf), NULL);
    assert_non_null(bn);
    assert_int_equal(BN_num_bytes(bn), (int)idx.v[0].serial_len);
    BN_free(bn);
    store = X509_STORE_new();
    sctx = X509_STORE_CTX_new();
    assert_int_equal(X509_STORE_add_cert(store, ca), 1);
    assert_int_equal(X509_STORE_CTX_init(sctx, store, leaf, NULL), 1);
    X509_STORE_CTX_set_time(sctx, 0, 1710000000);
    assert_int_equal(X509_verify_cert(sctx), 1);
    X509_STORE_CTX_free(sctx);
    X509_STORE_free(store);

    /* CRL: number, lifetime, exactly the revoked entry with its reason */
    assert_int_equal(sk_ca_make_crl(ca, cakey, &idx, 1700000100, 2, &crl, &err), 0);
    assert_int_equal(X509_CRL_verify(crl, cakey), 1);
    assert_int_equal(t_epoch(X509_CRL_get0_nextUpdate(crl)) - t_epoch(X509_CRL_get0_lastUpdate(crl)), 2 * 86400);
    assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), 1);
    bn = BN_bin2bn(idx.v[1].serial, (int)idx.v[1].serial_len, NULL);
    asn = BN_to_ASN1_INTEGER(bn, NULL);
    assert_int_equal(X509_CRL_get0_by_serial(crl, &rev, asn), 1);
    reason = X509_REVOKED_get_ext_d2i(rev, NID_crl_reason, NULL, NULL);
    assert_non_null(reason);
    assert_int_equal(ASN1_ENUMERATED_get(reason), SK_CA_REASON_SUPERSEDED);
    assert_int_equal(t_epoch(X509_REVOKED_get0_revocationDate(rev)), idx.v[1].revoked_at);
    ASN1_ENUMERATED_free(reason);
    ASN1_INTEGER_free(asn);
    BN_free(bn);
    assert_int_equal(X509_CRL_get0_by_cert(crl, &rev, leaf), 0); /* the valid one is not listed */
    assert_int_equal(sk_ca_pem_crl(crl, &pem, &plen), 0);
    assert_int_equal(sk_ca_crl_number(pem, plen, &number), 0);
    assert_int_equal(number, 42);
    assert_int_equal(sk_ca_crl_number(pem, plen / 2, &number), -1);
    assert_int_equal(sk_ca_crl_number("junk", 4, &number), -1);
    free(pem);
    X509_CRL_free(crl);

    /* PKCS#12, both flavours, read back with the password and the friendly name */
    for (int legacy = 0; legacy <= 1; legacy++) {
        memset(&err, 0, sizeof(err));
        assert_int_equal(sk_ca_make_p12(leafkey, leaf, ca, "alice@example.com", "pw-Unit1", legacy, &der, &dlen, &err),
                         0);
        p = der;
        p12 = d2i_PKCS12(NULL, &p, (long)dlen);
        assert_non_null(p12);
        assert_int_equal(PKCS12_verify_mac(p12, "wrong", -1), 0);
        assert_int_equal(PKCS12_parse(p12, "pw-Unit1", &pk, &pc, &pcas), 1);
        assert_int_equal(EVP_PKEY_eq(pk, leafkey), 1);
        assert_int_equal(X509_cmp(pc, leaf), 0);
        assert_int_equal(sk_X509_num(pcas), 1);
        assert_int_equal(X509_cmp(sk_X509_value(pcas, 0), ca), 0);
        assert_string_equal((const char *)X509_alias_get0(pc, NULL), "alice@example.com");
        EVP_PKEY_free(pk);
        X509_free(pc);
        sk_X509_pop_free(pcas, X509_free);
        pk = NULL;
        pc = NULL;
        pcas = NULL;
        PKCS12_free(p12);
        free(der);
    }

    X509_free(leaf);
    EVP_PKEY_free(leafkey);
    X509_free(ca);
    EVP_PKEY_free(cakey);
    sk_ca_index_free(&idx);
}

static void test_server_leaf(void **state)
{
    EVP_PKEY *cakey = NULL, *key = NULL;
    X509 *ca = NULL, *leaf = NULL;
    sk_ca_index idx;
    sk_ca_entry e;
    sk_ca_err err;
    uint8_t serial[SK_CA_SERIAL_MAX];
    size_t slen = 0;
    (void)state;

    memset(&err, 0, sizeof(err));
    sk_ca_index_init(&idx);
    assert_int_equal(sk_ca_key_new(&cakey, &err), 0);
    assert_int_equal(sk_ca_key_new(&key, &err), 0);
    assert_int_equal(sk_ca_serial_new(&idx, serial, &slen), 0);
    assert_int_equal(sk_ca_make_ca_cert(cakey, "Unit CA", serial, slen, 1700000000, 2000000000, &ca, &err), 0);
    memset(&e, 0, sizeof(e));
    e.kind = 's';
    assert_int_equal(sk_strlcpy(e.tenant, sizeof(e.tenant), "-"), 0);
    e.not_before = 1700000000;
    e.not_after = 1800000000;
    assert_int_equal(sk_ca_serial_new(&idx, e.serial, &e.serial_len), 0);
    assert_int_equal(sk_strlcpy(e.name, sizeof(e.name), "gw.example.com"), 0);
    assert_int_equal(sk_ca_make_leaf(ca, cakey, key, &e, &leaf, &err), 0);
    assert_true((X509_get_extended_key_usage(leaf) & XKU_SSL_SERVER) != 0);
    assert_int_equal(X509_check_host(leaf, "gw.example.com", 0, 0, NULL), 1);
    assert_int_equal(X509_check_host(leaf, "localhost", 0, 0, NULL), 0);
    assert_int_equal(X509_check_ip_asc(leaf, "127.0.0.1", 0), 0);
    X509_free(leaf);
    assert_int_equal(sk_strlcpy(e.name, sizeof(e.name), "localhost"), 0);
    assert_int_equal(sk_ca_make_leaf(ca, cakey, key, &e, &leaf, &err), 0);
    assert_int_equal(X509_check_host(leaf, "localhost", 0, 0, NULL), 1);
    assert_int_equal(X509_check_ip_asc(leaf, "127.0.0.1", 0), 1);
    X509_free(leaf);
    assert_int_equal(sk_strlcpy(e.name, sizeof(e.name), "192.0.2.7"), 0);
    assert_int_equal(sk_ca_make_leaf(ca, cakey, key, &e, &leaf, &err), 0);
    assert_int_equal(X509_check_ip_asc(leaf, "192.0.2.7", 0), 1);
    assert_int_equal(X509_check_ip_asc(leaf, "127.0.0.1", 0), 0);
    assert_int_equal(X509_check_host(leaf, "localhost", 0, 0, NULL), 0);
    X509_free(leaf);
    X509_free(ca);
    EVP_PKEY_free(key);
    EVP_PKEY_free(cakey);
    sk_ca_index_free(&idx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_user_names),       cmocka_unit_test(test_tenant_names),
        cmocka_unit_test(test_host_names),       cmocka_unit_test(test_reasons),
        cmocka_unit_test(test_serial_parse),     cmocka_unit_test(test_serial_unique),
        cmocka_unit_test(test_index_roundtrip),  cmocka_unit_test(test_index_empty_roundtrip),
        cmocka_unit_test(test_index_rejects),    cmocka_unit_test(test_index_corruption),
        cmocka_unit_test(test_pending_codec),
        cmocka_unit_test(test_index_large),    cmocka_unit_test(test_csr),
        cmocka_unit_test(test_rsa2048_csr),      cmocka_unit_test(test_crl_and_leaf),
        cmocka_unit_test(test_server_leaf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
