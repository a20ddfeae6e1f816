/* Unit tests: X-Forwarded-For trust. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sk_req.h"

static sk_policy_addr addr(const char *s)
{
    sk_policy_addr a;
    assert_int_equal(sk_policy_addr_parse(s, strlen(s), &a), SK_POLICY_CIDR_OK);
    return a;
}

static int same(const sk_policy_addr *a, const char *s)
{
    sk_policy_addr b = addr(s);
    sk_policy_cidr c;
    sk_policy_cidr_list l = { &c, 1 };
    char cidr[64];
    assert_int_equal(sk_snprintf(cidr, sizeof cidr, "%s", s), 0);
    assert_int_equal(sk_policy_cidr_parse(cidr, strlen(cidr), &c), SK_POLICY_CIDR_OK);
    (void)b;
    return sk_policy_cidr_list_match(&l, a);
}

static void test_xff(void **state)
{
    sk_policy_cidr tp[2];
    sk_policy_cidr_list trusted = { tp, 2 }, none = { NULL, 0 };
    sk_policy_addr peer = addr("10.0.0.5"), out;
    (void)state;
    assert_int_equal(sk_policy_cidr_parse("10.0.0.0/24", 11, &tp[0]), SK_POLICY_CIDR_OK);
    assert_int_equal(sk_policy_cidr_parse("192.0.2.9", 9, &tp[1]), SK_POLICY_CIDR_OK);
    /* Without trusted proxies the header means nothing. */
    assert_int_equal(sk_req_client_addr(&none, &peer, "203.0.113.1", &out), 0);
    assert_true(same(&out, "10.0.0.5"));
    /* From a trusted peer: read from the right, skip trusted hops. */
    assert_int_equal(sk_req_client_addr(&trusted, &peer, "198.51.100.7, 203.0.113.1 , 192.0.2.9", &out), 0);
    assert_true(same(&out, "203.0.113.1"));
    assert_int_equal(sk_req_client_addr(&trusted, &peer, "203.0.113.1", &out), 0);
    assert_true(same(&out, "203.0.113.1"));
    assert_int_equal(sk_req_client_addr(&trusted, &peer, NULL, &out), 0);
    assert_true(same(&out, "10.0.0.5"));
    /* All hops trusted: the leftmost. */
    assert_int_equal(sk_req_client_addr(&trusted, &peer, "10.0.0.7,192.0.2.9", &out), 0);
    assert_true(same(&out, "10.0.0.7"));
    /* Malformed chains from a trusted peer are refused, not guessed. */
    assert_int_equal(sk_req_client_addr(&trusted, &peer, "203.0.113.1,,192.0.2.9", &out), -1);
    assert_int_equal(sk_req_client_addr(&trusted, &peer, "unknown", &out), -1);
    assert_int_equal(sk_req_client_addr(&trusted, &peer, "203.0.113.1:80", &out), -1);
    assert_int_equal(sk_req_client_addr(&trusted, &peer, ",", &out), -1);
    /* An untrusted peer's header is ignored, however it looks. */
    peer = addr("198.51.100.1");
    assert_int_equal(sk_req_client_addr(&trusted, &peer, "garbage,,", &out), 0);
    assert_true(same(&out, "198.51.100.1"));
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_xff) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
