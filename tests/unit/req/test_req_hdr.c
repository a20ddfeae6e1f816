/* Unit tests: header-name folding and the strip table (issue 13 item 4). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sk_req.h"

static int dropped(const char *name)
{
    char f[SK_REQ_NAME_MAX];
    assert_int_equal(sk_req_hdr_fold(name, f, sizeof f), 0);
    return sk_req_hdr_request_drop(f);
}

static void test_fold(void **state)
{
    char f[8];
    (void)state;
    assert_int_equal(sk_req_hdr_fold("X_Sekisho.User", (char[32]){ 0 }, 32), 0);
    assert_int_equal(sk_req_hdr_fold("AbC_d.E", f, sizeof f), 0);
    assert_string_equal(f, "abc-d-e");
    assert_int_equal(sk_req_hdr_fold("1234567", f, sizeof f), 0);
    assert_int_equal(sk_req_hdr_fold("12345678", f, sizeof f), -1);
    assert_int_equal(sk_req_hdr_fold("", f, sizeof f), 0);
    assert_string_equal(f, "");
}

static void test_report_families(void **state)
{
    static const char *const drop[] = {
        /* the report's list */
        "X-Original-URL", "X-Rewrite-URL", "X-Forwarded-User", "X-Auth-Request-User", "X-User", "X-Original-Host",
        "X-Host", "X-Forwarded", "Forwarded-For", "X-Originating-IP", "X-Remote-Addr", "X-HTTP-Method-Override",
        "X-Sekisho.User",
        /* what held up */
        "X-Sekisho-User", "x_sekisho_roles", "Forwarded", "X-Forwarded-For", "X_FORWARDED_FOR", "X-Real-IP",
        "Client-IP", "True-Client-IP",
        /* families and hop-by-hop */
        "X-Forwarded-Email", "x.forwarded.host", "X-Original-Forwarded-For", "X-Auth-Request-Email", "X-User-Id",
        "X-Remote-User", "Remote-User", "X-HTTP-Method", "X-Method-Override", "X-Client-Cert", "X-SSL-Client-S-DN",
        "Proxy-Authorization", "Connection", "Keep-Alive", "TE", "Transfer-Encoding", "Content-Length", "Host",
        "Upgrade", "Expect", "X-Sekisho", "X-Envoy-Original-Path", "CF-Connecting-IP", "X-ARR-ClientCert",
        "X-MS-CLIENT-PRINCIPAL-NAME", "X-Authenticated-User", "X-WebAuth-User",
    };
    static const char *const keep[] = {
        "Accept", "Cookie", "Authorization", "Content-Type", "User-Agent", "X-Requested-With", "X-Userland",
        "X-Hosted", "X-Originals", "Forwardedx", "X-Forwardedx", "Referer", "X-CSRF-Token", "If-None-Match",
        "X-Realm", "X-Real-IPv6", "Origin",
    };
    (void)state;
    for (size_t i = 0; i < sizeof drop / sizeof drop[0]; i++)
        if (!dropped(drop[i]))
            fail_msg("%s passes", drop[i]);
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++)
        if (dropped(keep[i]))
            fail_msg("%s is dropped", keep[i]);
}

static void test_response_and_tokens(void **state)
{
    (void)state;
    assert_true(sk_req_hdr_response_drop("transfer-encoding"));
    assert_true(sk_req_hdr_response_drop("connection"));
    assert_false(sk_req_hdr_response_drop("set-cookie"));
    assert_true(sk_req_hdr_in_tokens("x-a", "close, X-A"));
    assert_true(sk_req_hdr_in_tokens("x-a", "X_A"));
    assert_true(sk_req_hdr_in_tokens("upgrade", "keep-alive,\tUpgrade"));
    assert_false(sk_req_hdr_in_tokens("x-a", "x-ab, x"));
    assert_false(sk_req_hdr_in_tokens("x-a", ""));
    assert_false(sk_req_hdr_in_tokens("", "a, , b"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fold),
        cmocka_unit_test(test_report_families),
        cmocka_unit_test(test_response_and_tokens),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
