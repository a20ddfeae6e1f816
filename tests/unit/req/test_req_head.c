/* Unit tests: sk_req_walk against a model of libmicrohttpd's in-place parse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "mhd_sim.h"

/* The walk's verdict on what libmicrohttpd would hand on; it must agree with the
 * properties decided on the raw bytes (mhd_sim.h) every time. */
static int verdict(const char *raw, size_t n)
{
    static struct sim s;
    int v;
    if (sim_parse(&s, raw, n) != 0)
        return -1; /* libmicrohttpd itself refuses it */
    v = sim_walk(&s);
    if ((raw_head_clean(raw, s.head_off, s.raw_end) && !v) || (v && !raw_head_weak(raw, s.head_off, s.raw_end)))
        fail_msg("walk verdict %d contradicts the raw bytes", v);
    return v;
}

#define V(lit) verdict(lit, sizeof(lit) - 1)

static void test_clean_heads(void **state)
{
    (void)state;
    assert_int_equal(V("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 1);
    assert_int_equal(V("GET /x?a=1&b=2 HTTP/1.1\r\nHost: a\r\nX-A:\t v \t\r\nX-Empty:\r\nX-Sp:   \r\n\r\n"), 1);
    assert_int_equal(V("POST /p HTTP/1.0\r\n\r\n"), 1);
    assert_int_equal(V("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), 1); /* leading empty lines */
    assert_int_equal(V("GET / HTTP/1.1\r\nX-U: caf\xc3\xa9\r\n\r\n"), 1);   /* obs-text */
    assert_int_equal(V("M-SEARCH * HTTP/1.1\r\nHost: a\r\n\r\n"), 1);
}

static void test_report_attacks(void **state)
{
    (void)state;
    /* Issue 13 item 1, each as libmicrohttpd would hand it on. */
    assert_int_equal(V("GET / HTTP/1.1\r\nX-A: 1\rX-Sekisho-User: alice\r\n\r\n"), 0);
    assert_int_equal(V("GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n"), 0);
    assert_int_equal(V("GET /?a=1\rX:b HTTP/1.1\r\n\r\n"), 0);
    assert_int_equal(V("GET\rX:b / HTTP/1.1\r\n\r\n"), 0);
    assert_int_equal(V("GET / HTTP/1.1\r\nX-A: 1\r\n X-Sekisho-User: admin\r\n\r\n"), 0); /* obs-fold */
    assert_int_equal(V("GET / HTTP/1.1\r\nX-A: 1\r\n\tfoo\r\n\r\n"), 0);
    assert_int_equal(V("GET / HTTP/1.1\r\nX-A: 1\nX-B: 2\r\n\r\n"), 0);                   /* bare LF */
    assert_int_equal(V("GET / HTTP/1.1\nX-A: 1\r\n\r\n"), 0);
    assert_int_equal(V("GET / HTTP/1.1\r\nX-A: 1\r\n\n"), 0);
    assert_int_equal(verdict("GET / HTTP/1.1\r\nX-A: 1\0X-B: 2\r\n\r\n", 33), 0);          /* NUL */
    assert_int_equal(verdict("GET /a\0b HTTP/1.1\r\n\r\n", 21), 0);
    assert_int_equal(verdict("GE\0T / HTTP/1.1\r\n\r\n", 19), 0);
    assert_int_equal(V("GET / HTTP/1.1\r\nX-A: \x01\r\n\r\n"), 0);
    assert_int_equal(V("GET / HTTP/1.1\r\nX-A: \x7f\r\n\r\n"), 0);
    assert_int_equal(V("GET / HTTP/1.1\r\nX\x01: a\r\n\r\n"), 0);
    assert_int_equal(V("GET / HTTP/1.1\r\nX A: a\r\n\r\n"), 0);
    assert_int_equal(V("GET / HTTP/1.1\r\nX-A : a\r\n\r\n"), 0);
    assert_int_equal(V("GET /\x01 HTTP/1.1\r\n\r\n"), 0);
    assert_int_equal(V("GET /\xc3\xa9 HTTP/1.1\r\n\r\n"), 0);
    assert_int_equal(V("GET  / HTTP/1.1\r\n\r\n"), 0); /* two spaces */
    assert_int_equal(V("G(T / HTTP/1.1\r\n\r\n"), 0);
    /* The known limit: "NUL LF" is "CR LF" once blanked; the field is cut at the
     * NUL, so the request means exactly its clean spelling. */
    assert_int_equal(verdict("GET / HTTP/1.1\r\nX-A: 1\0\n\r\n", 26), 1);
    assert_int_equal(verdict("GET / HTTP/1.1\r\nX-A: 1\0x\n\r\n", 27), 0);
}

static void test_start_guards(void **state)
{
    sk_req_walk w;
    char head[24] = "GET\0/\0HTTP/1.1\0\0\0"; /* CR LF CR LF blanked: 18 bytes */
    (void)state;
    sk_req_walk_start(&w, NULL, 10, head, "/", head);
    assert_int_equal(sk_req_walk_end(&w), 0);
    sk_req_walk_start(&w, head, 0, head + 4, "/", head + 6);
    assert_int_equal(sk_req_walk_end(&w), 0);
    /* Exactly laid out: intact; one byte of size more or less: not. */
    sk_req_walk_start(&w, head, 18, head + 4, "/", head + 6);
    assert_int_equal(sk_req_walk_end(&w), 1);
    sk_req_walk_start(&w, head, 17, head + 4, "/", head + 6);
    assert_int_equal(sk_req_walk_end(&w), 0);
    sk_req_walk_start(&w, head, 19, head + 4, "/", head + 6);
    assert_int_equal(sk_req_walk_end(&w), 0);
    /* A field outside the buffer (a relocated name). */
    sk_req_walk_start(&w, head, 18, head + 4, "/", head + 6);
    sk_req_walk_field(&w, "X", 1, "v", 1);
    assert_int_equal(sk_req_walk_end(&w), 0);
    /* The target copy longer than the line (a NUL cut the line's copy). */
    sk_req_walk_start(&w, head, 18, head + 4, "/ab", head + 6);
    assert_int_equal(sk_req_walk_end(&w), 0);
}

static void test_classes(void **state)
{
    (void)state;
    assert_true(sk_req_value_clean("a\tb c\x80\xff", 7));
    assert_false(sk_req_value_clean("a\rb", 3));
    assert_false(sk_req_value_clean("a\nb", 3));
    assert_false(sk_req_value_clean("a\0b", 3));
    assert_false(sk_req_value_clean("\x1b", 1));
    assert_false(sk_req_value_clean("\x7f", 1));
    assert_true(sk_req_target_clean("/a?b=%20&c=~"));
    assert_false(sk_req_target_clean("/a b"));
    assert_false(sk_req_target_clean("/a\tb"));
    assert_false(sk_req_target_clean("/\x80"));
    assert_true(sk_req_name_clean("X-A_b.c!#$%&'*+^`|~", 19));
    assert_false(sk_req_name_clean("", 0));
    assert_false(sk_req_name_clean("X:A", 3));
    assert_false(sk_req_name_clean("X(A)", 4));
    for (int c = 0; c < 256; c++)
        if (sk_req_is_tchar((unsigned char)c))
            assert_true(c > 0x20 && c < 0x7f && strchr("\"(),/:;<=>?@[\\]{}", c) == NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean_heads),
        cmocka_unit_test(test_report_attacks),
        cmocka_unit_test(test_start_guards),
        cmocka_unit_test(test_classes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
