/* Unit tests: Host/SNI syntax and tenant choice (issue 13 item 7). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sk_req.h"

static sk_conf_tenant tenants[2];

static int setup(void **state)
{
    (void)state;
    memset(tenants, 0, sizeof tenants);
    assert_int_equal(sk_strlcpy(tenants[0].name, sizeof tenants[0].name, "acme"), 0);
    assert_int_equal(sk_strlcpy(tenants[0].hosts[0], sizeof tenants[0].hosts[0], "acme.test"), 0);
    tenants[0].n_hosts = 1;
    assert_int_equal(sk_strlcpy(tenants[1].name, sizeof tenants[1].name, "globex"), 0);
    assert_int_equal(sk_strlcpy(tenants[1].hosts[0], sizeof tenants[1].hosts[0], "globex.test"), 0);
    assert_int_equal(sk_strlcpy(tenants[1].hosts[1], sizeof tenants[1].hosts[1], "portal.globex.test"), 0);
    tenants[1].n_hosts = 2;
    return 0;
}

static void test_parse(void **state)
{
    char h[64], p[8];
    static const char *const bad[] = { "", ":80", "a b", "a/b", "a@b", "a:", "a:x", "a:99999", "a:0", "[::1",
                                       "[::1]x", "[g::1]", "a:1:2", "a\r", "evil.example:123456", "." };
    (void)state;
    assert_int_equal(sk_req_host_parse("Portal.Example.:8443", h, sizeof h, p, sizeof p), 0);
    assert_string_equal(h, "portal.example");
    assert_string_equal(p, "8443");
    assert_int_equal(sk_req_host_parse("[::1]:443", h, sizeof h, p, sizeof p), 0);
    assert_string_equal(h, "::1");
    assert_int_equal(sk_req_host_parse("127.0.0.1", h, sizeof h, p, sizeof p), 0);
    assert_string_equal(p, "");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (sk_req_host_parse(bad[i], h, sizeof h, p, sizeof p) == 0)
            fail_msg("Host '%s' accepted", bad[i]);
    assert_int_equal(sk_req_host_parse("abcdefgh", h, 8, p, sizeof p), -1); /* does not fit */
}

static void test_route(void **state)
{
    sk_req_route r;
    (void)state;
    /* No tenants: any well-formed name; the upstream's own Host is forwarded. */
    assert_int_equal(sk_req_host_route(tenants, 0, "evil.example", 1, "", "acme", &r), 0);
    assert_string_equal(r.host, "");
    assert_int_equal(sk_req_host_route(tenants, 0, NULL, 0, "", "acme", &r), 0);
    assert_int_equal(sk_req_host_route(tenants, 0, "a", 2, "", "acme", &r), 400);
    assert_int_equal(sk_req_host_route(tenants, 0, "a\rb", 1, "", "acme", &r), 400);
    assert_int_equal(sk_req_host_route(tenants, 0, "a.example", 1, "b.example", "acme", &r), 421);
    /* Tenants: the configured name, with the client's port. */
    assert_int_equal(sk_req_host_route(tenants, 2, "ACME.test.:8443", 1, "acme.test", "acme", &r), 0);
    assert_int_equal(r.tenant, 0);
    assert_string_equal(r.host, "acme.test:8443");
    assert_int_equal(sk_req_host_route(tenants, 2, NULL, 0, "portal.globex.test", "globex", &r), 0);
    assert_int_equal(r.tenant, 1);
    assert_string_equal(r.host, "portal.globex.test");
    assert_int_equal(sk_req_host_route(tenants, 2, "globex.test", 1, "", "acme", &r), 403);
    assert_int_equal(sk_req_host_route(tenants, 2, "evil.example", 1, "", "acme", &r), 421);
    assert_int_equal(sk_req_host_route(tenants, 2, NULL, 0, "", "acme", &r), 421);
    assert_int_equal(sk_req_host_route(tenants, 2, "acme.test", 1, "globex.test", "acme", &r), 421);
    assert_int_equal(sk_req_host_route(tenants, 2, "acme.test", 2, "acme.test", "acme", &r), 400);
    assert_int_equal(sk_req_host_route(tenants, 2, "acme.test", 1, "acme.test:1", "acme", &r), 421);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_parse, setup),
        cmocka_unit_test_setup(test_route, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
