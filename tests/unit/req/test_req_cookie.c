/* Unit tests: one cookie parser for the session lookup and the stripper (item 6). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sk_req.h"

static unsigned session(const char *hdr, char *val, size_t cap)
{
    sk_req_session_cookie f = { NULL, 0, 0 };
    sk_req_cookie_find_session(hdr, &f);
    if (f.count == 1) {
        assert_true(f.len < cap);
        memcpy(val, f.value, f.len);
        val[f.len] = '\0';
    }
    return f.count;
}

static const char *strip(const char *hdr)
{
    static char mem[512];
    sk_buf b;
    int first = 1;
    sk_buf_init(&b, mem, sizeof mem);
    sk_req_cookie_strip(hdr, &b, &first);
    assert_int_equal(sk_buf_finish(&b), 0);
    return first ? "" : mem;
}

static void test_session_lookup(void **state)
{
    char v[64];
    (void)state;
    assert_int_equal(session("__Host-sekisho=T1", v, sizeof v), 1);
    assert_string_equal(v, "T1");
    assert_int_equal(session("a=1;  __Host-sekisho=T2 ; b=2", v, sizeof v), 1);
    assert_string_equal(v, "T2");
    /* The report's spellings are not the session. */
    assert_int_equal(session("__host-sekisho=T", v, sizeof v), 0);
    assert_int_equal(session("__Host-sekisho =T", v, sizeof v), 0);
    assert_int_equal(session("a=1, __Host-sekisho=T", v, sizeof v), 0);
    assert_int_equal(session("__Host-sekisho", v, sizeof v), 0);
    assert_int_equal(session("x__Host-sekisho=T", v, sizeof v), 0);
    /* Two are ambiguous; the caller refuses count != 1. */
    assert_int_equal(session("__Host-sekisho=A; __Host-sekisho=B", v, sizeof v), 2);
    /* "T, b=2" is the value to RFC 6265 (and not a token: b64 decoding fails). */
    assert_int_equal(session("__Host-sekisho=T, b=2", v, sizeof v), 1);
    assert_string_equal(v, "T, b=2");
}

static void test_strip(void **state)
{
    (void)state;
    assert_string_equal(strip("theme=dark; __Host-sekisho=T; lang=ja"), "theme=dark; lang=ja");
    assert_string_equal(strip("__host-sekisho=T;a=1"), "a=1");
    assert_string_equal(strip("__Host-sekisho =T; a=1"), "a=1");
    assert_string_equal(strip("a=1, __Host-sekisho=T; b=2"), "b=2");
    assert_string_equal(strip("x=__HOST-SEKISHO=T"), "");
    assert_string_equal(strip("__Host-sekisho"), "");
    assert_string_equal(strip(";;  ; a=1 ;"), "a=1");
    assert_string_equal(strip(""), "");
    /* Everything the lookup takes, the stripper drops. */
    {
        static const char *const hdrs[] = { "__Host-sekisho=T", " __Host-sekisho=T ", "a=1;__Host-sekisho=T" };
        char v[64];
        for (size_t i = 0; i < sizeof hdrs / sizeof hdrs[0]; i++) {
            assert_int_equal(session(hdrs[i], v, sizeof v), 1);
            assert_null(strstr(strip(hdrs[i]), "sekisho"));
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_session_lookup),
        cmocka_unit_test(test_strip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
