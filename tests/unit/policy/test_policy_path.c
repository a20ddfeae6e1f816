/* Unit tests: path normalisation and role-based path-prefix rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sk_policy.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct {
    const char *in, *out;
} norm_ok[] = {
    { "/", "/" },
    { "/a", "/a" },
    { "/a/", "/a/" },
    { "/a/b/c", "/a/b/c" },
    { "//", "//" },                            /* RFC 3986 keeps empty segments */
    { "///a//b///", "///a//b///" },
    { "/a//../b", "/a/b" },                    /* ".." removes the empty segment */
    { "/admin//../users", "/admin/users" },
    { "/a/b/c/./../../g", "/a/g" },            /* RFC 3986 5.2.4 example */
    { "//..", "/" },
    { "/./", "/" },
    { "/.", "/" },
    { "/a/.", "/a/" },
    { "/a/./b", "/a/b" },
    { "/a/..", "/" },
    { "/a/../", "/" },
    { "/a/b/..", "/a/" },
    { "/a/b/../c", "/a/c" },
    { "/a/b/../../c", "/c" },
    { "/public/../admin", "/admin" },
    { "/public/./../admin/", "/admin/" },
    { "/public//..//admin", "/public//admin" },
    { "/%2e%2e%2Fx", NULL },                   /* placeholder: refused, see below */
    { "/public/%2e%2e/admin", "/admin" },
    { "/public/%2E%2E/admin", "/admin" },
    { "/public/.%2e/admin", "/admin" },
    { "/public/%2e./admin", "/admin" },
    { "/%2e/admin", "/admin" },
    { "/%61dmin", "/admin" },                  /* unreserved escapes decoded */
    { "/%41%5a%7e%2d%5f", "/AZ~-_" },
    { "/a%20b", "/a%20b" },                    /* reserved escapes stay, upper-cased */
    { "/a%c3%a9", "/a%C3%A9" },
    { "/a%25", "/a%25" },
    { "/a%252e%252e/x", "/a%252e%252e/x" },    /* no double decoding */
    { "/a%3b/b", "/a%3B/b" },
    { "/a%3F", "/a%3F" },
    { "/a:b@c!$&'()*+,=", "/a:b@c!$&'()*+,=" },
    { "/...", "/..." },                        /* not a dot segment */
    { "/a/.../b", "/a/.../b" },
    { "/..a", "/..a" },
    { "/a..", "/a.." },
    { "/.hidden", "/.hidden" },
    { "/a/b/c/../../../", "/" },
    { "/admin", "/admin" },
};

static void test_normalize_ok(void **state)
{
    size_t i;
    (void)state;
    for (i = 0; i < N(norm_ok); i++) {
        char out[256];
        size_t olen = 9999;
        sk_policy_path_err e;
        if (norm_ok[i].out == NULL)
            continue;
        e = sk_policy_path_normalize(norm_ok[i].in, strlen(norm_ok[i].in), out, sizeof(out), &olen);
        if (e != SK_POLICY_PATH_OK)
            fail_msg("%s: %s", norm_ok[i].in, sk_policy_path_strerror(e));
        if (strcmp(out, norm_ok[i].out) != 0)
            fail_msg("%s -> %s, want %s", norm_ok[i].in, out, norm_ok[i].out);
        assert_int_equal(olen, strlen(out));
        /* Idempotent: normalising the result changes nothing. */
        {
            char again[256];
            size_t alen = 0;
            assert_int_equal(sk_policy_path_normalize(out, olen, again, sizeof(again), &alen), SK_POLICY_PATH_OK);
            assert_string_equal(again, out);
        }
    }
}

static const struct {
    const char *in;
    size_t len; /* 0 = strlen */
    sk_policy_path_err want;
} norm_bad[] = {
    { "", 0, SK_POLICY_PATH_EMPTY },
    { "a/b", 0, SK_POLICY_PATH_NOT_ABSOLUTE },
    { "*", 0, SK_POLICY_PATH_NOT_ABSOLUTE },
    { "http://x/", 0, SK_POLICY_PATH_NOT_ABSOLUTE },
    { "%2fadmin", 0, SK_POLICY_PATH_NOT_ABSOLUTE },
    { "/..", 0, SK_POLICY_PATH_ESCAPES_ROOT },
    { "/../", 0, SK_POLICY_PATH_ESCAPES_ROOT },
    { "/../etc/passwd", 0, SK_POLICY_PATH_ESCAPES_ROOT },
    { "/a/../..", 0, SK_POLICY_PATH_ESCAPES_ROOT },
    { "/a/../../b", 0, SK_POLICY_PATH_ESCAPES_ROOT },
    { "/%2e%2e", 0, SK_POLICY_PATH_ESCAPES_ROOT },
    { "/%2e%2e/", 0, SK_POLICY_PATH_ESCAPES_ROOT },
    { "/./..", 0, SK_POLICY_PATH_ESCAPES_ROOT },
    { "/a%2fb", 0, SK_POLICY_PATH_ENCODED_SLASH },
    { "/a%2Fb", 0, SK_POLICY_PATH_ENCODED_SLASH },
    { "/%2e%2e%2Fx", 0, SK_POLICY_PATH_ENCODED_SLASH },
    { "/..%2f..%2fetc", 0, SK_POLICY_PATH_ENCODED_SLASH },
    { "/a%5cb", 0, SK_POLICY_PATH_ENCODED_SLASH },
    { "/a%5C..%5Cadmin", 0, SK_POLICY_PATH_ENCODED_SLASH },
    { "/a%00", 0, SK_POLICY_PATH_ENCODED_NUL },
    { "/a%00.html", 0, SK_POLICY_PATH_ENCODED_NUL },
    { "/a%", 0, SK_POLICY_PATH_BAD_ESCAPE },
    { "/a%2", 0, SK_POLICY_PATH_BAD_ESCAPE },
    { "/a%g0", 0, SK_POLICY_PATH_BAD_ESCAPE },
    { "/a%0g", 0, SK_POLICY_PATH_BAD_ESCAPE },
    { "/a%%41", 0, SK_POLICY_PATH_BAD_ESCAPE },
    { "/a%u002e", 0, SK_POLICY_PATH_BAD_ESCAPE },           /* IIS %u encoding */
    { "/a\\..\\admin", 0, SK_POLICY_PATH_BAD_CHAR },
    { "/admin;x/", 0, SK_POLICY_PATH_BAD_CHAR },
    { "/..;/admin", 0, SK_POLICY_PATH_BAD_CHAR },
    { "/a?b", 0, SK_POLICY_PATH_BAD_CHAR },
    { "/a#b", 0, SK_POLICY_PATH_BAD_CHAR },
    { "/a b", 0, SK_POLICY_PATH_BAD_CHAR },
    { "/a\tb", 0, SK_POLICY_PATH_BAD_CHAR },
    { "/a\r\nX: y", 0, SK_POLICY_PATH_BAD_CHAR },
    { "/a\x7f", 0, SK_POLICY_PATH_BAD_CHAR },
    { "/caf\xc3\xa9", 0, SK_POLICY_PATH_BAD_CHAR },           /* raw non-ASCII */
    { "/a\0b", 4, SK_POLICY_PATH_BAD_CHAR },
    { "/\0", 2, SK_POLICY_PATH_BAD_CHAR },
};

static void test_normalize_bad(void **state)
{
    size_t i;
    (void)state;
    for (i = 0; i < N(norm_bad); i++) {
        char out[256];
        size_t len = norm_bad[i].len ? norm_bad[i].len : strlen(norm_bad[i].in);
        sk_policy_path_err e;
        memset(out, 'Z', sizeof(out));
        e = sk_policy_path_normalize(norm_bad[i].in, len, out, sizeof(out), NULL);
        if (e != norm_bad[i].want)
            fail_msg("%s: got %d (%s) want %d", norm_bad[i].in, (int)e, sk_policy_path_strerror(e),
                     (int)norm_bad[i].want);
        assert_string_equal(out, "");
    }
    assert_int_equal(sk_policy_path_normalize(NULL, 0, (char[4]){ 0 }, 4, NULL), SK_POLICY_PATH_EMPTY);
    assert_int_equal(sk_policy_path_normalize("/", 1, NULL, 0, NULL), SK_POLICY_PATH_TOO_LONG);
    assert_string_equal(sk_policy_path_strerror(SK_POLICY_PATH_OK), "ok");
    assert_string_equal(sk_policy_path_strerror((sk_policy_path_err)99), "unknown error");
    for (i = 1; i < SK_POLICY_PATH_ERR_COUNT_; i++)
        assert_true(strlen(sk_policy_path_strerror((sk_policy_path_err)i)) > 5);
}

static void test_normalize_capacity(void **state)
{
    char out[16];
    size_t olen = 0, cap;
    (void)state;
    /* "/abcdef" needs 8 bytes with the NUL: 7 fail, 8 succeed. */
    assert_int_equal(sk_policy_path_normalize("/abcdef", 7, out, 7, &olen), SK_POLICY_PATH_TOO_LONG);
    assert_string_equal(out, "");
    assert_int_equal(sk_policy_path_normalize("/abcdef", 7, out, 8, &olen), SK_POLICY_PATH_OK);
    assert_string_equal(out, "/abcdef");
    assert_int_equal(sk_policy_path_normalize("/", 1, out, 1, &olen), SK_POLICY_PATH_TOO_LONG);
    assert_int_equal(sk_policy_path_normalize("/", 1, out, 2, &olen), SK_POLICY_PATH_OK);
    /* Kept escapes need 3 bytes each; trailing slash needs room too. */
    for (cap = 1; cap <= 8; cap++) {
        sk_policy_path_err e = sk_policy_path_normalize("/a%20/", 6, out, cap, &olen);
        assert_int_equal(e, cap >= 7 ? SK_POLICY_PATH_OK : SK_POLICY_PATH_TOO_LONG);
    }
    assert_string_equal(out, "/a%20/");
    /* cap = len + 1 always suffices (the output never outgrows the input),
     * even when the work space is needed before dot segments shrink it. */
    assert_int_equal(sk_policy_path_normalize("/a/b/c/d/e/f/../../../../../..", 30, out, 2, &olen),
                     SK_POLICY_PATH_TOO_LONG);
    {
        static const char *const ins[] = { "/a/b/c/d/e/f/../../../../../..", "/%61%62%63", "/a%20b%c3%a9/",
                                           "//////x", "/./././", "/%2e/%2E/a" };
        size_t i;
        for (i = 0; i < sizeof(ins) / sizeof(ins[0]); i++) {
            char big[64];
            size_t l = strlen(ins[i]);
            assert_true(l + 1 <= sizeof(big));
            assert_int_equal(sk_policy_path_normalize(ins[i], l, big, l + 1, &olen), SK_POLICY_PATH_OK);
            assert_true(olen <= l);
        }
    }
}

/* ---- rules ------------------------------------------------------------------ */

#define ADM SK_POLICY_ROLE_ADMIN
#define GEN SK_POLICY_ROLE_GENERAL

static const sk_policy_path_rule rules[] = {
    { "/admin", ADM },
    { "/admin/public", ADM | GEN },
    { "/reports/", GEN },
    { "/locked", 0 },
    { "/shared", ADM | GEN },
};

static void test_rules_table(void **state)
{
    static const struct {
        const char *path;
        int admin, general, none;
    } t[] = {
        { "/", 1, 1, 1 },                     /* no rule: everyone */
        { "/index.html", 1, 1, 1 },
        { "/admin", 1, 0, 0 },
        { "/admin/", 1, 0, 0 },
        { "/admin/users", 1, 0, 0 },
        { "/administrator", 1, 1, 1 },        /* not a segment boundary */
        { "/admin.php", 1, 1, 1 },
        { "/admin/public", 1, 1, 0 },         /* longer prefix wins */
        { "/admin/public/x", 1, 1, 0 },
        { "/admin/publicity", 1, 0, 0 },      /* falls back to /admin */
        { "/reports", 0, 1, 0 },              /* trailing '/' in the rule ignored */
        { "/reports/q1", 0, 1, 0 },
        { "/reportsx", 1, 1, 1 },
        { "/locked", 0, 0, 0 },
        { "/locked/x", 0, 0, 0 },
        { "/shared/a", 1, 1, 0 },
        { "/ADMIN", 1, 1, 1 },                /* case-sensitive by default */
    };
    size_t i;
    (void)state;
    for (i = 0; i < N(t); i++) {
        const char *p = t[i].path;
        int a = sk_policy_path_allowed(rules, N(rules), p, strlen(p), ADM, 0);
        int g = sk_policy_path_allowed(rules, N(rules), p, strlen(p), GEN, 0);
        int n = sk_policy_path_allowed(rules, N(rules), p, strlen(p), 0, 0);
        int both = sk_policy_path_allowed(rules, N(rules), p, strlen(p), ADM | GEN, 0);
        if (a != t[i].admin || g != t[i].general || n != t[i].none)
            fail_msg("%s: admin=%d general=%d none=%d", p, a, g, n);
        assert_int_equal(both, t[i].admin || t[i].general);
    }
    assert_int_equal(sk_policy_path_allowed(rules, N(rules), NULL, 0, ADM, 0), 0);
    assert_int_equal(sk_policy_path_allowed(NULL, 0, "/admin", 6, 0, 0), 1);
}

static void test_rules_icase_and_root(void **state)
{
    static const sk_policy_path_rule r[] = { { "/", ADM }, { "/Public", ADM | GEN } };
    static const sk_policy_path_rule dup[] = { { "/x", ADM }, { "/x/", GEN } };
    (void)state;
    assert_false(sk_policy_path_allowed(rules, N(rules), "/ADMIN/users", 12, GEN, SK_POLICY_PATH_ICASE));
    assert_true(sk_policy_path_allowed(rules, N(rules), "/ADMIN/users", 12, GEN, 0));
    assert_false(sk_policy_path_allowed(rules, N(rules), "/Admin", 6, GEN, SK_POLICY_PATH_ICASE));
    /* "/" covers everything: default-deny for general users. */
    assert_false(sk_policy_path_allowed(r, N(r), "/", 1, GEN, 0));
    assert_false(sk_policy_path_allowed(r, N(r), "/anything/else", 14, GEN, 0));
    assert_true(sk_policy_path_allowed(r, N(r), "/anything/else", 14, ADM, 0));
    assert_true(sk_policy_path_allowed(r, N(r), "/Public/x", 9, GEN, 0));
    assert_false(sk_policy_path_allowed(r, N(r), "/public/x", 9, GEN, 0));
    assert_true(sk_policy_path_allowed(r, N(r), "/public/x", 9, GEN, SK_POLICY_PATH_ICASE));
    /* Equal prefixes: the first rule wins. */
    assert_true(sk_policy_path_allowed(dup, N(dup), "/x/y", 4, ADM, 0));
    assert_false(sk_policy_path_allowed(dup, N(dup), "/x/y", 4, GEN, 0));
    /* The path length is respected: "/admin" cut to "/adm" matches no rule. */
    assert_true(sk_policy_path_allowed(rules, N(rules), "/admin", 4, GEN, 0));
}

/* The point of the normaliser: traversal tricks cannot reach /admin as "general". */
static void test_rules_after_normalize(void **state)
{
    static const char *const attacks[] = {
        "/public/../admin",      "/public/%2e%2e/admin", "/public/.%2E/admin/x", "/x/y//../../../admin",
        "/./admin",              "/%61dmin",             "/%61%64%6d%69%6e/",    "/admin/",
        "/x/y/../../admin/users", "/admin/./",           "/admin//x",
    };
    size_t i;
    (void)state;
    for (i = 0; i < N(attacks); i++) {
        char out[256];
        size_t olen = 0;
        assert_int_equal(sk_policy_path_normalize(attacks[i], strlen(attacks[i]), out, sizeof(out), &olen),
                         SK_POLICY_PATH_OK);
        if (sk_policy_path_allowed(rules, N(rules), out, olen, GEN, 0))
            fail_msg("%s -> %s reached /admin as general", attacks[i], out);
        assert_true(sk_policy_path_allowed(rules, N(rules), out, olen, ADM, 0));
    }
    /* Empty segments survive normalisation; the gateway refuses them. */
    assert_true(sk_policy_path_has_empty_segment("//admin", 7));
    assert_true(sk_policy_path_has_empty_segment("/a//", 4));
    assert_false(sk_policy_path_has_empty_segment("/a/b/", 5));
    assert_false(sk_policy_path_has_empty_segment("/", 1));
}

/* Issue 13 item 3: what IIS/Windows treat as "/admin" is "/admin" by default. */
static void test_rules_lenient(void **state)
{
    static const char *const same[] = {
        "/ADMIN/x", "/Admin", "/admin.", "/admin./x", "/admin%20", "/admin%20/x", "/admin. .%20./x",
        "/AdMiN..", "/admin ", "/admin.../users",
    };
    static const char *const other[] = { "/administrator", "/admin.php", "/adminx", "/adm", "/x/admin", "/" };
    size_t i;
    (void)state;
    for (i = 0; i < N(same); i++) {
        size_t n = strlen(same[i]);
        if (sk_policy_path_allowed(rules, N(rules), same[i], n, GEN, SK_POLICY_PATH_LENIENT))
            fail_msg("%s reached /admin as general", same[i]);
        assert_true(sk_policy_path_allowed(rules, N(rules), same[i], n, ADM, SK_POLICY_PATH_LENIENT));
    }
    for (i = 0; i < N(other); i++)
        assert_true(sk_policy_path_allowed(rules, N(rules), other[i], strlen(other[i]), GEN, SK_POLICY_PATH_LENIENT));
    /* Longer prefixes still win, trimmed too. */
    assert_true(sk_policy_path_allowed(rules, N(rules), "/ADMIN./Public%20/x", 19, GEN, SK_POLICY_PATH_LENIENT));
    assert_false(sk_policy_path_allowed(rules, N(rules), "/Reports./q", 11, ADM, SK_POLICY_PATH_LENIENT));
    /* Exact matching stays exact when asked for. */
    assert_true(sk_policy_path_allowed(rules, N(rules), "/admin.", 7, GEN, 0));
    assert_true(sk_policy_path_allowed(rules, N(rules), "/admin.", 7, GEN, SK_POLICY_PATH_ICASE));
}

static void test_rules_validate(void **state)
{
    static const sk_policy_path_rule ok[] = { { "/", ADM }, { "/admin", ADM }, { "/a/b/", GEN } };
    static const struct {
        const char *prefix;
    } bad[] = { { "admin" }, { "/admin/../x" }, { "//admin" }, { "/%61dmin" }, { "/a;b" }, { "" }, { "/a/./b" } };
    size_t i, where = 77;
    (void)state;
    assert_int_equal(sk_policy_path_rules_validate(ok, N(ok), &where), 0);
    assert_int_equal(where, 77);
    assert_int_equal(sk_policy_path_rules_validate(NULL, 0, NULL), 0);
    for (i = 0; i < N(bad); i++) {
        sk_policy_path_rule r[2] = { { "/fine", ADM }, { bad[i].prefix, ADM } };
        where = 77;
        if (sk_policy_path_rules_validate(r, 2, &where) != -1 || where != 1)
            fail_msg("prefix %s accepted", bad[i].prefix);
    }
    {
        sk_policy_path_rule r[1] = { { NULL, ADM } };
        assert_int_equal(sk_policy_path_rules_validate(r, 1, &where), -1);
        assert_int_equal(where, 0);
        /* NULL prefixes are skipped by the matcher. */
        assert_true(sk_policy_path_allowed(r, 1, "/x", 2, 0, 0));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalize_ok),
        cmocka_unit_test(test_normalize_bad),
        cmocka_unit_test(test_normalize_capacity),
        cmocka_unit_test(test_rules_table),
        cmocka_unit_test(test_rules_icase_and_root),
        cmocka_unit_test(test_rules_after_normalize),
        cmocka_unit_test(test_rules_lenient),
        cmocka_unit_test(test_rules_validate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
