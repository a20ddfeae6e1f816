/* Unit tests: the upstream request head from plain inputs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sk_req.h"

static char mem[4096];

static sk_req_upstream base(void)
{
    sk_req_upstream u = { 0 };
    u.method = "GET";
    u.prefix = "";
    u.path = "/a/b";
    u.query = "x=1";
    u.host = "portal.test:8443";
    u.forwarded_host = "portal.test:8443";
    u.user = "bob";
    u.tenant = "acme";
    u.roles = "general";
    u.serial = "0A1B";
    u.peer = "127.0.0.1";
    return u;
}

static int build(const sk_req_upstream *u, const char *const *hdrs, size_t n)
{
    sk_req_head h;
    size_t len = 0;
    sk_req_head_begin(&h, mem, sizeof mem, u);
    for (size_t i = 0; i + 1 < n; i += 2)
        sk_req_head_client(&h, hdrs[i], hdrs[i + 1]);
    if (sk_req_head_finish(&h, &len) != 0)
        return -1;
    assert_int_equal(len, strlen(mem));
    return 0;
}

static void test_head(void **state)
{
    static const char *const hdrs[] = {
        "Accept", "text/html", "X-Sekisho-User", "alice", "x_original_url", "/admin", "Host", "evil",
        "Cookie", "a=1; __Host-sekisho=T", "Cookie", "b=2", "Connection", "close, X-Drop", "X-Drop", "1",
        "Content-Length", "5", "X-HTTP-Method-Override", "DELETE",
    };
    sk_req_upstream u = base();
    (void)state;
    u.conn_tokens = "close, X-Drop";
    u.body = SK_REQ_BODY_LENGTH;
    u.length = 7;
    assert_int_equal(build(&u, hdrs, sizeof hdrs / sizeof hdrs[0]), 0);
    assert_string_equal(mem, "GET /a/b?x=1 HTTP/1.1\r\nHost: portal.test:8443\r\n"
                             "X-Forwarded-Host: portal.test:8443\r\nAccept: text/html\r\nCookie: a=1; b=2\r\n"
                             "X-Sekisho-User: bob\r\nX-Sekisho-Tenant: acme\r\nX-Sekisho-Roles: general\r\n"
                             "X-Sekisho-Cert-Serial: 0A1B\r\nX-Forwarded-For: 127.0.0.1\r\n"
                             "X-Forwarded-Proto: https\r\nContent-Length: 7\r\nConnection: keep-alive\r\n\r\n");
    u = base();
    u.query = NULL;
    u.forwarded_host = NULL;
    u.prefix = "/app";
    u.upgrade = 1;
    u.body = SK_REQ_BODY_CHUNKED;
    assert_int_equal(build(&u, NULL, 0), 0);
    assert_non_null(strstr(mem, "GET /app/a/b HTTP/1.1\r\nHost: portal.test:8443\r\nX-Sekisho-User"));
    assert_non_null(strstr(mem, "Transfer-Encoding: chunked\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"));
}

static void test_refusals(void **state)
{
    static const char *const bad_hdrs[][2] = {
        { "X-A", "1\rX-Sekisho-User: alice" }, { "X-A", "1\n" }, { "X-A", "\x01" }, { "X A", "1" },
        { "X-A\r\nX-B", "1" }, { "", "1" },
    };
    sk_req_upstream u;
    (void)state;
    for (size_t i = 0; i < sizeof bad_hdrs / sizeof bad_hdrs[0]; i++) {
        const char *h[2] = { bad_hdrs[i][0], bad_hdrs[i][1] };
        u = base();
        assert_int_equal(build(&u, h, 2), -1);
    }
    /* Plain inputs are checked too. */
    u = base(); u.method = "GET /x HTTP/1.1\r\nX:"; assert_int_equal(build(&u, NULL, 0), -1);
    u = base(); u.path = "/a\r\nX: 1"; assert_int_equal(build(&u, NULL, 0), -1);
    u = base(); u.path = "a"; assert_int_equal(build(&u, NULL, 0), -1);
    u = base(); u.query = "a b"; assert_int_equal(build(&u, NULL, 0), -1);
    u = base(); u.host = "a\rX: b"; assert_int_equal(build(&u, NULL, 0), -1);
    u = base(); u.host = ""; assert_int_equal(build(&u, NULL, 0), -1);
    u = base(); u.user = "bob\r\nX-Sekisho-Roles: admin"; assert_int_equal(build(&u, NULL, 0), -1);
    u = base(); u.peer = "1\n"; assert_int_equal(build(&u, NULL, 0), -1);
    /* Too big for the buffer: an error, not a cut head. */
    {
        sk_req_head h;
        size_t len;
        u = base();
        sk_req_head_begin(&h, mem, 64, &u);
        assert_int_equal(sk_req_head_finish(&h, &len), -1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_head), cmocka_unit_test(test_refusals) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
