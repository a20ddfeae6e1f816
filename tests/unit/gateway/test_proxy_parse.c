/* Unit tests for the sekisho_proxy response parser through the detached API:
 * no sockets, bytes are fed as if they came from the upstream. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cmocka.h>

#include "sk_proxy.h"

static sk_proxy_req *new_req(int is_head)
{
    sk_proxy_req *r = sk_proxy_req_new_detached(is_head);
    assert_non_null(r);
    return r;
}

static int feed_str(sk_proxy_req *r, const char *s)
{
    return sk_proxy_feed(r, s, strlen(s));
}

/* Value of the first header called name (case-insensitive), or NULL. */
static const char *header(const sk_proxy_req *r, const char *name)
{
    for (size_t i = 0; i < sk_proxy_header_count(r); i++)
        if (strcasecmp(sk_proxy_header_name(r, i), name) == 0)
            return sk_proxy_header_value(r, i);
    return NULL;
}

/* Drains the buffered body of a detached request. Returns the final read_body
 * result: 0 when the message is complete, -1 when more bytes were needed. */
static ssize_t drain(sk_proxy_req *r, char *out, size_t cap, size_t *len)
{
    ssize_t n;
    *len = 0;
    while ((n = sk_proxy_read_body(r, out + *len, cap - *len)) > 0)
        *len += (size_t)n;
    out[*len] = '\0';
    return n;
}

static const char simple[] =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Set-Cookie: a=1\r\n"
    "Set-Cookie: b=2\r\n"
    "X-Empty:\r\n"
    "X-Spaces:   padded   \r\n"
    "Content-Length: 11\r\n"
    "\r\n"
    "hello world";

static void check_simple(const sk_proxy_req *r)
{
    assert_int_equal(sk_proxy_head_complete(r), 1);
    assert_int_equal(sk_proxy_status(r), 200);
    assert_int_equal(sk_proxy_header_count(r), 6);
    assert_string_equal(sk_proxy_header_name(r, 0), "Content-Type");
    assert_string_equal(sk_proxy_header_value(r, 0), "text/plain; charset=utf-8");
    assert_string_equal(sk_proxy_header_name(r, 1), "Set-Cookie");
    assert_string_equal(sk_proxy_header_value(r, 1), "a=1");
    assert_string_equal(sk_proxy_header_name(r, 2), "Set-Cookie");
    assert_string_equal(sk_proxy_header_value(r, 2), "b=2");
    assert_string_equal(sk_proxy_header_name(r, 3), "X-Empty");
    assert_string_equal(sk_proxy_header_value(r, 3), "");
    assert_string_equal(sk_proxy_header_name(r, 4), "X-Spaces");
    assert_non_null(strstr(sk_proxy_header_value(r, 4), "padded"));
    assert_string_equal(sk_proxy_header_name(r, 5), "Content-Length");
    assert_string_equal(sk_proxy_header_value(r, 5), "11");
    assert_null(sk_proxy_header_name(r, 6));
    assert_null(sk_proxy_header_value(r, 6));
    assert_int_equal(sk_proxy_content_length(r), 11);
    assert_int_equal(sk_proxy_has_body(r), 1);
}

static void test_simple_200(void **state)
{
    char body[64];
    size_t len;
    (void)state;
    sk_proxy_req *r = new_req(0);
    assert_int_equal(sk_proxy_head_complete(r), 0);
    assert_int_equal(feed_str(r, simple), 0);
    check_simple(r);
    assert_int_equal(drain(r, body, sizeof body - 1, &len), 0);
    assert_string_equal(body, "hello world");
    sk_proxy_finish(r);
}

/* The head split into two feeds at every byte boundary, and byte by byte. */
static void test_split_every_boundary(void **state)
{
    const size_t n = strlen(simple);
    char body[64];
    size_t len;
    (void)state;
    for (size_t cut = 0; cut <= n; cut++) {
        sk_proxy_req *r = new_req(0);
        assert_int_equal(sk_proxy_feed(r, simple, cut), 0);
        assert_int_equal(sk_proxy_feed(r, simple + cut, n - cut), 0);
        check_simple(r);
        assert_int_equal(drain(r, body, sizeof body - 1, &len), 0);
        assert_string_equal(body, "hello world");
        sk_proxy_finish(r);
    }
    sk_proxy_req *r = new_req(0);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(sk_proxy_head_complete(r), i >= n - 11);
        assert_int_equal(sk_proxy_feed(r, simple + i, 1), 0);
    }
    check_simple(r);
    assert_int_equal(drain(r, body, sizeof body - 1, &len), 0);
    assert_string_equal(body, "hello world");
    sk_proxy_finish(r);
}

static const char chunked[] =
    "HTTP/1.1 200 OK\r\n"
    "Transfer-Encoding: chunked\r\n"
    "X-Trace: abc\r\n"
    "\r\n"
    "5\r\nhello\r\n"
    "1;ext=1\r\n \r\n"
    "a\r\n0123456789\r\n"
    "0\r\n"
    "\r\n";

static void test_chunked(void **state)
{
    const size_t n = strlen(chunked);
    char body[64];
    size_t len;
    (void)state;
    for (size_t cut = 0; cut <= n; cut++) {
        sk_proxy_req *r = new_req(0);
        assert_int_equal(sk_proxy_feed(r, chunked, cut), 0);
        assert_int_equal(sk_proxy_feed(r, chunked + cut, n - cut), 0);
        assert_int_equal(sk_proxy_head_complete(r), 1);
        assert_int_equal(sk_proxy_status(r), 200);
        assert_int_equal(sk_proxy_content_length(r), -1);
        assert_int_equal(sk_proxy_has_body(r), 1);
        assert_string_equal(header(r, "x-trace"), "abc");
        assert_int_equal(drain(r, body, sizeof body - 1, &len), 0);
        assert_string_equal(body, "hello 0123456789");
        sk_proxy_finish(r);
    }
    /* Stopping before the last chunk: the body is not complete yet. */
    sk_proxy_req *r = new_req(0);
    assert_int_equal(sk_proxy_feed(r, chunked, n - 5), 0);
    assert_int_equal(drain(r, body, sizeof body - 1, &len), -1);
    assert_string_equal(body, "hello 0123456789");
    sk_proxy_finish(r);
}

static void test_close_delimited(void **state)
{
    char body[64];
    size_t len;
    (void)state;
    sk_proxy_req *r = new_req(0);
    assert_int_equal(feed_str(r, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\nabc"), 0);
    assert_int_equal(sk_proxy_head_complete(r), 1);
    assert_int_equal(sk_proxy_content_length(r), -1);
    assert_int_equal(sk_proxy_has_body(r), 1);
    assert_int_equal(feed_str(r, "def"), 0);
    assert_int_equal(sk_proxy_feed(r, NULL, 0), 0); /* the upstream closed */
    assert_int_equal(drain(r, body, sizeof body - 1, &len), 0);
    assert_string_equal(body, "abcdef");
    sk_proxy_finish(r);

    /* End of stream inside a Content-Length body is an error. */
    r = new_req(0);
    assert_int_equal(feed_str(r, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"), 0);
    assert_int_equal(sk_proxy_feed(r, NULL, 0), -1);
    sk_proxy_finish(r);
}

static void test_interim_skipped(void **state)
{
    char body[16];
    size_t len;
    static const char text[] =
        "HTTP/1.1 100 Continue\r\nX-Interim: yes\r\n\r\n"
        "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
        "HTTP/1.1 201 Created\r\nLocation: /x\r\nContent-Length: 2\r\n\r\nok";
    const size_t n = strlen(text);
    (void)state;
    for (size_t cut = 0; cut <= n; cut++) {
        sk_proxy_req *r = new_req(0);
        assert_int_equal(sk_proxy_feed(r, text, cut), 0);
        assert_int_equal(sk_proxy_feed(r, text + cut, n - cut), 0);
        assert_int_equal(sk_proxy_head_complete(r), 1);
        assert_int_equal(sk_proxy_status(r), 201);
        assert_int_equal(sk_proxy_header_count(r), 2);
        assert_null(header(r, "X-Interim"));
        assert_null(header(r, "Link"));
        assert_string_equal(header(r, "Location"), "/x");
        assert_int_equal(sk_proxy_content_length(r), 2);
        assert_int_equal(drain(r, body, sizeof body - 1, &len), 0);
        assert_string_equal(body, "ok");
        sk_proxy_finish(r);
    }
    /* A lone interim response is not a complete head. */
    sk_proxy_req *r = new_req(0);
    assert_int_equal(feed_str(r, "HTTP/1.1 100 Continue\r\n\r\n"), 0);
    assert_int_equal(sk_proxy_head_complete(r), 0);
    sk_proxy_finish(r);
}

static void test_no_body_statuses(void **state)
{
    char body[16];
    size_t len;
    (void)state;
    sk_proxy_req *r = new_req(0);
    assert_int_equal(feed_str(r, "HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n"), 0);
    assert_int_equal(sk_proxy_head_complete(r), 1);
    assert_int_equal(sk_proxy_status(r), 204);
    assert_int_equal(sk_proxy_has_body(r), 0);
    assert_int_equal(drain(r, body, sizeof body - 1, &len), 0);
    assert_int_equal(len, 0);
    sk_proxy_finish(r);

    r = new_req(0);
    assert_int_equal(feed_str(r, "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\n"), 0);
    assert_int_equal(sk_proxy_head_complete(r), 1);
    assert_int_equal(sk_proxy_status(r), 304);
    assert_int_equal(sk_proxy_has_body(r), 0);
    assert_string_equal(header(r, "ETag"), "\"v1\"");
    assert_int_equal(drain(r, body, sizeof body - 1, &len), 0);
    sk_proxy_finish(r);

    /* HEAD: Content-Length describes the GET body; none follows. */
    r = new_req(1);
    assert_int_equal(feed_str(r, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"), 0);
    assert_int_equal(sk_proxy_head_complete(r), 1);
    assert_int_equal(sk_proxy_status(r), 200);
    assert_int_equal(sk_proxy_content_length(r), 10);
    assert_int_equal(sk_proxy_has_body(r), 0);
    assert_int_equal(drain(r, body, sizeof body - 1, &len), 0); /* complete, no body */
    assert_int_equal(len, 0);
    sk_proxy_finish(r);

    r = new_req(1);
    assert_int_equal(feed_str(r, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), 0);
    assert_int_equal(sk_proxy_has_body(r), 0);
    assert_int_equal(drain(r, body, sizeof body - 1, &len), 0);
    sk_proxy_finish(r);
}

/* RFC 9110 15.4.5: a 304 may carry the Content-Length the 200 would have had, and it
 * never has content. The message is complete at the end of the head. */
static void test_304_with_content_length(void **state)
{
    char body[16];
    size_t len;
    (void)state;
    sk_proxy_req *r = new_req(0);
    assert_int_equal(feed_str(r, "HTTP/1.1 304 Not Modified\r\nContent-Length: 1234\r\n\r\n"), 0);
    assert_int_equal(sk_proxy_head_complete(r), 1);
    assert_int_equal(sk_proxy_has_body(r), 0);
    assert_int_equal(drain(r, body, sizeof body - 1, &len), 0);
    sk_proxy_finish(r);
}

static void test_header_limits(void **state)
{
    char *text = malloc(200000);
    sk_buf b;
    (void)state;
    assert_non_null(text);

    /* Exactly SK_PROXY_MAX_HEADERS headers is fine. */
    sk_buf_init(&b, text, 200000);
    sk_buf_puts(&b, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n");
    for (int i = 1; i < SK_PROXY_MAX_HEADERS; i++)
        sk_buf_printf(&b, "X-H%d: v%d\r\n", i, i);
    sk_buf_puts(&b, "\r\n");
    assert_int_equal(sk_buf_finish(&b), 0);
    sk_proxy_req *r = new_req(0);
    assert_int_equal(sk_proxy_feed(r, text, b.len), 0);
    assert_int_equal(sk_proxy_head_complete(r), 1);
    assert_int_equal(sk_proxy_header_count(r), SK_PROXY_MAX_HEADERS);
    assert_string_equal(sk_proxy_header_name(r, SK_PROXY_MAX_HEADERS - 1), "X-H127");
    assert_string_equal(sk_proxy_header_value(r, SK_PROXY_MAX_HEADERS - 1), "v127");
    sk_proxy_finish(r);

    /* One more is an error. */
    sk_buf_init(&b, text, 200000);
    sk_buf_puts(&b, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n");
    for (int i = 1; i <= SK_PROXY_MAX_HEADERS; i++)
        sk_buf_printf(&b, "X-H%d: v%d\r\n", i, i);
    sk_buf_puts(&b, "\r\n");
    assert_int_equal(sk_buf_finish(&b), 0);
    r = new_req(0);
    assert_int_equal(sk_proxy_feed(r, text, b.len), -1);
    assert_int_equal(sk_proxy_head_complete(r), 0);
    assert_int_equal(sk_proxy_feed(r, "\r\n", 2), -1); /* errors are sticky */
    sk_proxy_finish(r);

    /* A head over 64 KiB: one huge header, and many medium ones fed in pieces. */
    sk_buf_init(&b, text, 200000);
    sk_buf_puts(&b, "HTTP/1.1 200 OK\r\nX-Big: ");
    for (int i = 0; i < SK_PROXY_HEAD_MAX + 16; i++)
        sk_buf_add(&b, "x", 1);
    sk_buf_puts(&b, "\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(sk_buf_finish(&b), 0);
    r = new_req(0);
    assert_int_equal(sk_proxy_feed(r, text, b.len), -1);
    assert_int_equal(sk_proxy_head_complete(r), 0);
    sk_proxy_finish(r);

    sk_buf_init(&b, text, 200000);
    sk_buf_puts(&b, "HTTP/1.1 200 OK\r\n");
    for (int i = 0; i < 100; i++) {
        sk_buf_printf(&b, "X-%d: ", i);
        for (int j = 0; j < 700; j++)
            sk_buf_add(&b, "y", 1);
        sk_buf_puts(&b, "\r\n");
    }
    sk_buf_puts(&b, "Content-Length: 0\r\n\r\n");
    assert_int_equal(sk_buf_finish(&b), 0);
    r = new_req(0);
    int rc = 0;
    for (size_t off = 0; off < b.len && rc == 0; off += 1000)
        rc = sk_proxy_feed(r, text + off, b.len - off < 1000 ? b.len - off : 1000);
    assert_int_equal(rc, -1);
    assert_int_equal(sk_proxy_head_complete(r), 0);
    sk_proxy_finish(r);
    free(text);
}

static void test_bad_responses(void **state)
{
    static const char *const bad[] = {
        /* ambiguous framing */
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
        /* garbage status lines */
        "XTTP/1.1 200 OK\r\n\r\n",
        "HTTP/1.1 abc OK\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        "\x00\x01\x02\x03garbage",
        "<html>not http</html>",
        "HTTP/1.1 200 OK\r\nX: a\x01b\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        /* protocol switch is never requested */
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    };
    (void)state;
    for (size_t i = 0; i < SK_ARRAY_LEN(bad); i++) {
        sk_proxy_req *r = new_req(0);
        int rc = sk_proxy_feed(r, bad[i], strlen(bad[i]) + (bad[i][0] == '\0' ? 8 : 0));
        int sticky = sk_proxy_feed(r, "HTTP/1.1 200 OK\r\n\r\n", 19);
        int status = sk_proxy_status(r);
        sk_proxy_finish(r);
        if (rc != -1)
            fail_msg("case %zu accepted (status %d)", i, status);
        assert_int_equal(sticky, -1);
    }
}

/* RFC 9110 15: a status code is three digits, 100-599 in practice. http-parser accepts
 * one to three digits, so "HTTP/1.1 3" would reach the HTTP layer as status 3
 * (found by fuzz_proxy_parse). */
static void test_status_not_three_digits(void **state)
{
    static const char *const bad[] = {
        "HTTP/1.1 3\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 0 Zero\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 099 Low\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 42 Answer\r\nContent-Length: 0\r\n\r\n",
    };
    (void)state;
    for (size_t i = 0; i < SK_ARRAY_LEN(bad); i++) {
        sk_proxy_req *r = new_req(0);
        int rc = feed_str(r, bad[i]);
        int accepted = rc != -1 && sk_proxy_head_complete(r), status = sk_proxy_status(r);
        sk_proxy_finish(r);
        if (accepted)
            fail_msg("case %zu accepted with status %d", i, status);
    }
}

/* Bytes after a complete response are not a second response; feed keeps working and
 * the body of the first is intact. */
static void test_extra_bytes(void **state)
{
    char body[16];
    size_t len;
    (void)state;
    sk_proxy_req *r = new_req(0);
    assert_int_equal(feed_str(r, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n"), 0);
    assert_int_equal(feed_str(r, "more"), 0);
    assert_int_equal(sk_proxy_status(r), 200);
    assert_int_equal(drain(r, body, sizeof body - 1, &len), 0);
    assert_string_equal(body, "ok");
    sk_proxy_finish(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_200),
        cmocka_unit_test(test_split_every_boundary),
        cmocka_unit_test(test_chunked),
        cmocka_unit_test(test_close_delimited),
        cmocka_unit_test(test_interim_skipped),
        cmocka_unit_test(test_no_body_statuses),
        cmocka_unit_test(test_304_with_content_length),
        cmocka_unit_test(test_header_limits),
        cmocka_unit_test(test_bad_responses),
        cmocka_unit_test(test_status_not_three_digits),
        cmocka_unit_test(test_extra_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
