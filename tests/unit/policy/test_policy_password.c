/* Unit tests: password rules, UTF-8 length, common-password list, messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sk_policy.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

struct pw_case {
    const char *pw;
    size_t len;          /* 0 = strlen(pw) */
    const char *user;
    sk_policy_pw_result want;
};

#define S(s) s, sizeof(s) - 1 /* literal with embedded NULs */

static const struct pw_case cases[] = {
    /* OK */
    { "Tr0ubadour", 0, NULL, SK_POLICY_PW_OK },
    { "Abcdefh1", 0, NULL, SK_POLICY_PW_OK },                  /* exactly 8 */
    { "correct Horse battery 9", 0, NULL, SK_POLICY_PW_OK },   /* spaces allowed */
    { "Pässwörd9x", 0, NULL, SK_POLICY_PW_OK },
    { "Kaisha令和7年Pw", 0, NULL, SK_POLICY_PW_OK },
    { "Ab1😀😀😀😀😀", 0, NULL, SK_POLICY_PW_OK },             /* 4-byte code points */
    { "Zz9~!@#$%^&*()", 0, NULL, SK_POLICY_PW_OK },
    /* TOO_SHORT: 7 code points, also when the bytes are many */
    { "Abcdef1", 0, NULL, SK_POLICY_PW_TOO_SHORT },
    { "", 0, NULL, SK_POLICY_PW_TOO_SHORT },
    { "A", 0, NULL, SK_POLICY_PW_TOO_SHORT },
    { "Ab1日本語漢", 0, NULL, SK_POLICY_PW_TOO_SHORT },       /* 7 cps, 15 bytes */
    { "Ab1😀😀😀😀", 0, NULL, SK_POLICY_PW_TOO_SHORT },       /* 7 cps, 19 bytes */
    /* composition */
    { "abcdefh1", 0, NULL, SK_POLICY_PW_NO_UPPER },
    { "ABCDEFG1", 0, NULL, SK_POLICY_PW_NO_LOWER },
    { "Abcdefgh", 0, NULL, SK_POLICY_PW_NO_DIGIT },
    { "Äbcdefg1x", 0, NULL, SK_POLICY_PW_NO_UPPER },           /* only ASCII A-Z counts */
    { "ＡＢＣｄｅｆ１２", 0, NULL, SK_POLICY_PW_NO_UPPER },   /* full-width has no case here */
    { "Abcdefg１", 0, NULL, SK_POLICY_PW_NO_DIGIT },           /* full-width digit */
    { "12345678", 0, NULL, SK_POLICY_PW_NO_UPPER },            /* order: upper before blocklist */
    /* user id */
    { "Xtanaka99", 0, "tanaka", SK_POLICY_PW_CONTAINS_USER_ID },
    { "xTANAKA99", 0, "tanaka", SK_POLICY_PW_CONTAINS_USER_ID },
    { "99Tanaka", 0, "TANAKA", SK_POLICY_PW_CONTAINS_USER_ID },
    { "Tanak4Tana", 0, "tanaka", SK_POLICY_PW_OK },
    { "Abcdefh1", 0, "ab", SK_POLICY_PW_OK },                  /* too short to check */
    { "Abcdefh1", 0, "abc", SK_POLICY_PW_CONTAINS_USER_ID },   /* minimum length */
    { "Abcdefh1", 0, "abcdefh12", SK_POLICY_PW_OK },           /* longer than the password */
    { "Abcdefh1", 0, "", SK_POLICY_PW_OK },
    /* blocklist: case-insensitive, after composition */
    { "Password1", 0, NULL, SK_POLICY_PW_BLOCKLISTED },
    { "PASSWORD1a", 0, NULL, SK_POLICY_PW_OK },
    { "pAsSwOrD123", 0, NULL, SK_POLICY_PW_BLOCKLISTED },
    { "Welcome123", 0, NULL, SK_POLICY_PW_BLOCKLISTED },
    { "Qwerty123", 0, NULL, SK_POLICY_PW_BLOCKLISTED },
    { "Summer2024", 0, NULL, SK_POLICY_PW_BLOCKLISTED },
    { "P@ssw0rd", 0, NULL, SK_POLICY_PW_BLOCKLISTED },
    { "Admin123", 0, NULL, SK_POLICY_PW_BLOCKLISTED },
    { "Admin1234", 0, NULL, SK_POLICY_PW_BLOCKLISTED },
    { "Admin12345", 0, NULL, SK_POLICY_PW_BLOCKLISTED },
    { "Admin123456", 0, NULL, SK_POLICY_PW_OK },               /* not in the list */
    { "Password1 ", 0, NULL, SK_POLICY_PW_OK },                /* exact match only */
    /* user id is checked before the blocklist */
    { "Admin123", 0, "admin", SK_POLICY_PW_CONTAINS_USER_ID },
    /* INVALID_BYTES: control characters */
    { S("Abcdefh1\0"), NULL, SK_POLICY_PW_INVALID_BYTES },
    { S("Abc\0defh1"), NULL, SK_POLICY_PW_INVALID_BYTES },
    { "Abcdefh1\n", 0, NULL, SK_POLICY_PW_INVALID_BYTES },
    { "Abc\tdefh1", 0, NULL, SK_POLICY_PW_INVALID_BYTES },
    { "Abcdefh1\x1b", 0, NULL, SK_POLICY_PW_INVALID_BYTES },
    { "Abcdefh1\x7f", 0, NULL, SK_POLICY_PW_INVALID_BYTES },
    { "Abcdefh1\xc2\x80", 0, NULL, SK_POLICY_PW_INVALID_BYTES },  /* U+0080 (C1) */
    { "Abcdefh1\xc2\x9f", 0, NULL, SK_POLICY_PW_INVALID_BYTES },  /* U+009F (C1) */
    { "Abcdefh1\xc2\xa0", 0, NULL, SK_POLICY_PW_OK },             /* U+00A0 is fine */
    /* INVALID_BYTES: malformed UTF-8 */
    { "Abcdefh1\x80", 0, NULL, SK_POLICY_PW_INVALID_BYTES },      /* lone continuation */
    { "Abcdefh1\xc3", 0, NULL, SK_POLICY_PW_INVALID_BYTES },      /* truncated 2-byte */
    { "Abcdefh1\xe3\x81", 0, NULL, SK_POLICY_PW_INVALID_BYTES },  /* truncated 3-byte */
    { "Abcdefh1\xf0\x9f\x98", 0, NULL, SK_POLICY_PW_INVALID_BYTES },
    { "Abcdefh1\xc0\xaf", 0, NULL, SK_POLICY_PW_INVALID_BYTES },  /* overlong '/' */
    { "Abcdefh1\xc1\xbf", 0, NULL, SK_POLICY_PW_INVALID_BYTES },  /* overlong */
    { "Abcdefh1\xe0\x80\xaf", 0, NULL, SK_POLICY_PW_INVALID_BYTES },
    { "Abcdefh1\xf0\x80\x80\xaf", 0, NULL, SK_POLICY_PW_INVALID_BYTES },
    { "Abcdefh1\xed\xa0\x80", 0, NULL, SK_POLICY_PW_INVALID_BYTES },      /* U+D800 */
    { "Abcdefh1\xed\xbf\xbf", 0, NULL, SK_POLICY_PW_INVALID_BYTES },      /* U+DFFF */
    { "Abcdefh1\xed\x9f\xbf", 0, NULL, SK_POLICY_PW_OK },                  /* U+D7FF */
    { "Abcdefh1\xf4\x90\x80\x80", 0, NULL, SK_POLICY_PW_INVALID_BYTES },  /* U+110000 */
    { "Abcdefh1\xf4\x8f\xbf\xbf", 0, NULL, SK_POLICY_PW_OK },             /* U+10FFFF */
    { "Abcdefh1\xf5\x80\x80\x80", 0, NULL, SK_POLICY_PW_INVALID_BYTES },
    { "Abcdefh1\xf8\x88\x80\x80\x80", 0, NULL, SK_POLICY_PW_INVALID_BYTES }, /* 5-byte form */
    { "Abcdefh1\xfe", 0, NULL, SK_POLICY_PW_INVALID_BYTES },
    { "Abcdefh1\xff", 0, NULL, SK_POLICY_PW_INVALID_BYTES },
    { "Abcdefh1\xc3\x28", 0, NULL, SK_POLICY_PW_INVALID_BYTES },  /* bad continuation */
    { "\x80", 0, NULL, SK_POLICY_PW_INVALID_BYTES },              /* bytes checked before length */
};

static void test_password_table(void **state)
{
    sk_policy_config c;
    size_t i;
    (void)state;
    sk_policy_defaults(&c);
    for (i = 0; i < N(cases); i++) {
        size_t len = cases[i].len ? cases[i].len : strlen(cases[i].pw);
        const char *u = cases[i].user;
        sk_policy_pw_result r = sk_policy_password_check(&c, cases[i].pw, len, u, u ? strlen(u) : 0);
        if (r != cases[i].want)
            fail_msg("case %zu (%s): got %d want %d", i, cases[i].pw, (int)r, (int)cases[i].want);
    }
}

/* Build a password of n code points, each `unit` (1-4 bytes), prefixed "Aa1". */
static size_t build(char *buf, size_t cap, size_t n, const char *unit)
{
    size_t ul = strlen(unit), o = 0, i;
    memcpy(buf, "Aa1", 3);
    o = 3;
    for (i = 3; i < n; i++) {
        assert_true(o + ul < cap);
        memcpy(buf + o, unit, ul);
        o += ul;
    }
    return o;
}

static void test_password_length_bounds(void **state)
{
    static const char *const units[] = { "x", "é", "字", "😀" };
    static char buf[8192];
    sk_policy_config c;
    size_t u;
    (void)state;
    sk_policy_defaults(&c);
    for (u = 0; u < N(units); u++) {
        size_t len;
        len = build(buf, sizeof(buf), 7, units[u]);
        assert_int_equal(sk_policy_password_check(&c, buf, len, NULL, 0), SK_POLICY_PW_TOO_SHORT);
        len = build(buf, sizeof(buf), 8, units[u]);
        assert_int_equal(sk_policy_password_check(&c, buf, len, NULL, 0), SK_POLICY_PW_OK);
        len = build(buf, sizeof(buf), 128, units[u]);
        assert_int_equal(sk_policy_password_check(&c, buf, len, NULL, 0), SK_POLICY_PW_OK);
        assert_int_equal(sk_policy_utf8_length(buf, len), 128);
        len = build(buf, sizeof(buf), 129, units[u]);
        assert_int_equal(sk_policy_password_check(&c, buf, len, NULL, 0), SK_POLICY_PW_TOO_LONG);
    }
    /* Configured bounds move with the config. */
    c.password_min_length = 12;
    c.password_max_length = 64;
    assert_int_equal(sk_policy_password_check(&c, buf, build(buf, sizeof(buf), 11, "x"), NULL, 0),
                     SK_POLICY_PW_TOO_SHORT);
    assert_int_equal(sk_policy_password_check(&c, buf, build(buf, sizeof(buf), 12, "x"), NULL, 0), SK_POLICY_PW_OK);
    assert_int_equal(sk_policy_password_check(&c, buf, build(buf, sizeof(buf), 64, "x"), NULL, 0), SK_POLICY_PW_OK);
    assert_int_equal(sk_policy_password_check(&c, buf, build(buf, sizeof(buf), 65, "x"), NULL, 0),
                     SK_POLICY_PW_TOO_LONG);
    /* Far too long input is still just TOO_LONG. */
    memset(buf, 'a', sizeof(buf));
    assert_int_equal(sk_policy_password_check(&c, buf, sizeof(buf), NULL, 0), SK_POLICY_PW_TOO_LONG);
}

static void test_password_composition_switches(void **state)
{
    static const struct {
        int up, lo, dg;
        const char *pw;
        sk_policy_pw_result want;
    } t[] = {
        { 0, 1, 1, "abcdefh1", SK_POLICY_PW_OK },
        { 1, 0, 1, "ABCDEFH1", SK_POLICY_PW_OK },
        { 1, 0, 1, "ABCDEFG1", SK_POLICY_PW_BLOCKLISTED },
        { 1, 1, 0, "Abcdefgz", SK_POLICY_PW_OK },
        { 0, 0, 0, "日本語のパスフレーズ", SK_POLICY_PW_OK },
        { 0, 0, 0, "        ", SK_POLICY_PW_OK },
        { 0, 0, 1, "日本語のパスワード", SK_POLICY_PW_NO_DIGIT },
        { 1, 1, 1, "abcdefgh", SK_POLICY_PW_NO_UPPER },  /* first missing class wins */
        { 0, 1, 1, "ABCDEFGH", SK_POLICY_PW_NO_LOWER },
        { 0, 0, 0, "password", SK_POLICY_PW_BLOCKLISTED },
        { 0, 0, 0, "QWERTYUIOP", SK_POLICY_PW_BLOCKLISTED },
        { 0, 0, 0, "12345678", SK_POLICY_PW_BLOCKLISTED },
    };
    size_t i;
    (void)state;
    for (i = 0; i < N(t); i++) {
        sk_policy_config c;
        sk_policy_defaults(&c);
        c.password_require_upper = t[i].up;
        c.password_require_lower = t[i].lo;
        c.password_require_digit = t[i].dg;
        if (sk_policy_password_check(&c, t[i].pw, strlen(t[i].pw), NULL, 0) != t[i].want)
            fail_msg("switch case %zu", i);
    }
}

static void test_blocklist_table(void **state)
{
    size_t n = sk_policy_blocklist_count(), i;
    (void)state;
    assert_true(n >= 200);
    assert_null(sk_policy_blocklist_at(n));
    for (i = 0; i < n; i++) {
        const char *e = sk_policy_blocklist_at(i);
        size_t k;
        char upper[64];
        assert_non_null(e);
        assert_true(strlen(e) > 0 && strlen(e) < sizeof(upper));
        for (k = 0; e[k]; k++) {
            assert_false(e[k] >= 'A' && e[k] <= 'Z'); /* stored lower case */
            upper[k] = (e[k] >= 'a' && e[k] <= 'z') ? (char)(e[k] - 32) : e[k];
        }
        if (i > 0 && strcmp(sk_policy_blocklist_at(i - 1), e) >= 0)
            fail_msg("blocklist not strictly ascending at %zu: %s >= %s", i, sk_policy_blocklist_at(i - 1), e);
        /* Every entry is found, in either case; binary search depends on the order. */
        assert_true(sk_policy_password_is_common(e, strlen(e)));
        assert_true(sk_policy_password_is_common(upper, strlen(e)));
        /* Prefixes and extensions are not matches. */
        if (strlen(e) > 1 && !sk_policy_password_is_common(e, strlen(e) - 1)) {
            char ext[80];
            memcpy(ext, e, strlen(e));
            ext[strlen(e)] = '#';
            assert_false(sk_policy_password_is_common(ext, strlen(e) + 1));
        }
    }
    /* Well-known entries the brief names. */
    {
        static const char *const must[] = { "password", "123456", "qwerty", "letmein", "admin", "welcome",
                                            "password1", "iloveyou", "monkey", "dragon" };
        for (i = 0; i < N(must); i++)
            if (!sk_policy_password_is_common(must[i], strlen(must[i])))
                fail_msg("%s missing", must[i]);
    }
    assert_false(sk_policy_password_is_common("", 0));
    assert_false(sk_policy_password_is_common(NULL, 0));
    assert_false(sk_policy_password_is_common("zzzzzzzzzzzzzz", 14));
    assert_false(sk_policy_password_is_common("\x01", 1));
    assert_false(sk_policy_password_is_common("password\0", 9));
}

static void test_utf8_length(void **state)
{
    (void)state;
    assert_int_equal(sk_policy_utf8_length("", 0), 0);
    assert_int_equal(sk_policy_utf8_length(NULL, 0), 0);
    assert_int_equal(sk_policy_utf8_length(NULL, 1), -1);
    assert_int_equal(sk_policy_utf8_length("abc", 3), 3);
    assert_int_equal(sk_policy_utf8_length("関所", strlen("関所")), 2);
    assert_int_equal(sk_policy_utf8_length("😀a", strlen("😀a")), 2);
    assert_int_equal(sk_policy_utf8_length("\xe9", 1), -1);
    assert_int_equal(sk_policy_utf8_length("a\0b", 3), 3); /* NUL is valid UTF-8; check() refuses it */
}

static void test_messages(void **state)
{
    int r, l;
    (void)state;
    for (r = 0; r < SK_POLICY_PW_RESULT_COUNT_; r++) {
        for (l = 0; l < SK_POLICY_LANG_COUNT_; l++) {
            const char *m = sk_policy_password_message((sk_policy_pw_result)r, (sk_policy_lang)l);
            assert_non_null(m);
            assert_true(strlen(m) > 5);
            assert_true(sk_policy_utf8_length(m, strlen(m)) > 0);
        }
        /* English is ASCII, Japanese is not, and they differ. */
        {
            const char *en = sk_policy_password_message((sk_policy_pw_result)r, SK_POLICY_LANG_EN);
            const char *ja = sk_policy_password_message((sk_policy_pw_result)r, SK_POLICY_LANG_JA);
            size_t k;
            int non_ascii = 0;
            for (k = 0; en[k]; k++)
                assert_true((unsigned char)en[k] < 0x80);
            for (k = 0; ja[k]; k++)
                non_ascii |= (unsigned char)ja[k] >= 0x80;
            assert_true(non_ascii);
            assert_string_not_equal(en, ja);
        }
        /* Each result has its own text. */
        for (l = 0; l < r; l++)
            assert_string_not_equal(sk_policy_password_message((sk_policy_pw_result)r, SK_POLICY_LANG_EN),
                                    sk_policy_password_message((sk_policy_pw_result)l, SK_POLICY_LANG_EN));
    }
    assert_non_null(strstr(sk_policy_password_message(SK_POLICY_PW_TOO_SHORT, SK_POLICY_LANG_EN), "short"));
    assert_non_null(strstr(sk_policy_password_message(SK_POLICY_PW_TOO_SHORT, SK_POLICY_LANG_JA), "短"));
    /* Out of range values still give text. */
    assert_non_null(sk_policy_password_message((sk_policy_pw_result)99, SK_POLICY_LANG_JA));
    assert_string_equal(sk_policy_password_message(SK_POLICY_PW_OK, (sk_policy_lang)9),
                        sk_policy_password_message(SK_POLICY_PW_OK, SK_POLICY_LANG_EN));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_password_table),
        cmocka_unit_test(test_password_length_bounds),
        cmocka_unit_test(test_password_composition_switches),
        cmocka_unit_test(test_blocklist_table),
        cmocka_unit_test(test_utf8_length),
        cmocka_unit_test(test_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
