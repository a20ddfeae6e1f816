/* Unit tests: request targets, audit paths, return paths (issue 13 items 2, 5). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sk_req.h"

static void test_split(void **state)
{
    static const struct {
        const char *in, *path, *query;
        int st;
    } t[] = {
        { "/", "/", NULL, 0 },
        { "/a?b=1", "/a", "b=1", 0 },
        { "/a?", "/a", "", 0 },
        { "/admin//../users", "/admin/users", NULL, 0 }, /* RFC 3986: ".." eats the empty segment */
        { "/admin/../public?x", "/public", "x", 0 },
        { "/admin/%2e%2e/x", "/x", NULL, 0 },
        { "/%61dmin/./x", "/admin/x", NULL, 0 },
        { "//admin", "", NULL, 400 },
        { "/a//b", "", NULL, 400 },
        { "/a/b//", "", NULL, 400 },
        { "/..", "", NULL, 400 },
        { "/a%2fb", "", NULL, 400 },
        { "/a;b", "", NULL, 400 },
        { "/a b", "", NULL, 400 },
        { "/a\rb", "", NULL, 400 },
        { "/a?b\r", "", NULL, 400 },
        { "*", "", NULL, 400 },
        { "http://x/", "", NULL, 400 },
        { "", "", NULL, 400 },
    };
    char path[64];
    const char *q;
    (void)state;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        int st = sk_req_target_split(t[i].in, path, sizeof path, &q);
        if (st != t[i].st || strcmp(path, t[i].path) != 0 || (t[i].query == NULL) != (q == NULL) ||
            (q != NULL && strcmp(q, t[i].query) != 0))
            fail_msg("%s -> %d '%s' '%s'", t[i].in, st, path, q ? q : "(none)");
    }
    assert_int_equal(sk_req_target_split("/abcdefgh", path, 8, &q), 414);
    assert_int_equal(sk_req_target_split("/abcdefg?long-query-is-fine", path, 9, &q), 0);
}

static void test_audit_path(void **state)
{
    char out[32], big[2048];
    (void)state;
    sk_req_audit_path("/secret?x=AAAA", out, sizeof out);
    assert_string_equal(out, "/secret");
    memset(big, 'A', sizeof big);
    memcpy(big, "/secret-report-42?x=", 20);
    big[sizeof big - 1] = '\0';
    sk_req_audit_path(big, out, sizeof out);
    assert_string_equal(out, "/secret-report-42"); /* the query goes first */
    memset(big, 'p', sizeof big);
    big[0] = '/';
    big[sizeof big - 1] = '\0';
    sk_req_audit_path(big, out, sizeof out);
    assert_int_equal(strlen(out), sizeof out - 1);
    assert_memory_equal(out, "/ppp", 4);
    assert_string_equal(out + strlen(out) - 14, "...[truncated]");
    sk_req_audit_path("/exactly-31-bytes-long-xxxxxxxx", out, sizeof out);
    assert_string_equal(out, "/exactly-31-bytes-long-xxxxxxxx");
    sk_req_audit_path("/exactly-32-bytes-long-xxxxxxxxx", out, sizeof out);
    assert_string_equal(out + strlen(out) - 14, "...[truncated]");
    sk_req_audit_path(NULL, out, sizeof out);
    assert_string_equal(out, "");
    sk_req_audit_path("/abcdef", out, 4);
    assert_string_equal(out, "...");
}

static void test_return_path(void **state)
{
    static const char *const home[] = { "//evil", "/\\evil", "https://evil", "javascript:alert(1)", "", "evil",
                                        "/.sekisho/login", "/a b", "/a\rb", "/\x80", "/a\\b" };
    char d[64];
    (void)state;
    for (size_t i = 0; i < sizeof home / sizeof home[0]; i++)
        assert_string_equal(sk_req_return_path(home[i]), "/");
    assert_string_equal(sk_req_return_path("/app/x?y=1"), "/app/x?y=1");
    assert_string_equal(sk_req_return_path(NULL), "/");
    assert_int_equal(sk_req_pct_decode("%2Fa+b%41", d, sizeof d), 0);
    assert_string_equal(d, "/a bA");
    assert_int_equal(sk_req_pct_decode("%00", d, sizeof d), -1);
    assert_int_equal(sk_req_pct_decode("%4", d, sizeof d), -1);
    assert_int_equal(sk_req_pct_decode("%zz", d, sizeof d), -1);
    assert_int_equal(sk_req_pct_decode("abcd", d, 4), -1);
    assert_int_equal(sk_req_pct_decode("abc", d, 4), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_audit_path),
        cmocka_unit_test(test_return_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
