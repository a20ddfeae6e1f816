/* Unit tests for the gateway's pages (gateway/page.c): language choice and HTML
 * escaping of every value that comes from a certificate or a request. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "sk_page.h"

static void test_lang(void **state)
{
    static const struct { const char *al; enum sk_lang want; } cases[] = {
        { "ja", SK_LANG_JA },
        { "en", SK_LANG_EN },
        { "JA", SK_LANG_JA },
        { "ja-JP", SK_LANG_JA },
        { "ja-JP,en;q=0.5", SK_LANG_JA },
        { "en-US,ja;q=0.9", SK_LANG_EN },
        { "en-US, ja;q=0.9", SK_LANG_EN },
        { "ja;q=0.4, en;q=0.6", SK_LANG_EN },
        { "en;q=0.4, ja;q=0.6", SK_LANG_JA },
        { "en;q=0.5,ja;q=0.5", SK_LANG_EN },   /* tie: the earlier one */
        { "ja;q=0.5,en;q=0.5", SK_LANG_JA },
        { "fr-FR,fr;q=0.9,ja;q=0.8,en;q=0.7", SK_LANG_JA },
        { "fr", SK_LANG_EN },
        { "fr, de", SK_LANG_EN },
        { "", SK_LANG_EN },
        { "*", SK_LANG_EN },
        { "jav, ja-x;q=0.1", SK_LANG_JA }, /* "jav" is another language */
        { "english, ja;q=0.2", SK_LANG_JA },
        { "ja;q=0.123, en;q=0.122", SK_LANG_JA },
        { "en;q=0.5, ja;q=zz", SK_LANG_EN }, /* a malformed q never beats a real one */
        { "en;q=0.5, ja;q=", SK_LANG_EN },
        { "en;q=0.5, ja;q=2", SK_LANG_EN },
        { ",,,;;;q=,", SK_LANG_EN },
        { ";q=1", SK_LANG_EN },
    };
    (void)state;
    assert_int_equal(sk_page_lang(NULL), SK_LANG_EN);
    for (size_t i = 0; i < SK_ARRAY_LEN(cases); i++)
        if (sk_page_lang(cases[i].al) != cases[i].want)
            fail_msg("Accept-Language \"%s\": got %d, want %d", cases[i].al, sk_page_lang(cases[i].al),
                     cases[i].want);
}

/* RFC 9110 12.4.2: q=0 means "not acceptable". */
static void test_lang_q_zero(void **state)
{
    static const struct { const char *al; enum sk_lang want; } cases[] = {
        { "ja;q=0", SK_LANG_EN },
        { "ja;q=0.0", SK_LANG_EN },
        { "fr, ja;q=0", SK_LANG_EN },
        { "ja;q=0, en;q=0", SK_LANG_EN },
        { "en;q=0, ja;q=0.1", SK_LANG_JA },
    };
    (void)state;
    for (size_t i = 0; i < SK_ARRAY_LEN(cases); i++)
        if (sk_page_lang(cases[i].al) != cases[i].want)
            fail_msg("Accept-Language \"%s\": got %d, want %d", cases[i].al, sk_page_lang(cases[i].al),
                     cases[i].want);
}

/* Every value that reaches a page comes from outside: a hostile version of each must
 * appear escaped and never raw. */
#define EVIL_USER "u<script>alert(1)</script>\"'&"
#define EVIL_TENANT "t\"><img src=x onerror=alert(2)>"
#define EVIL_RETURN "/r\"><script>alert(3)</script>"
#define EVIL_CSRF "c\" autofocus onfocus=\"alert(4)"

static void assert_escaped(const char *html, const char *raw, const char *escaped)
{
    if (strstr(html, raw) != NULL)
        fail_msg("raw value \"%s\" in page", raw);
    if (strstr(html, escaped) == NULL)
        fail_msg("escaped value \"%s\" not in page", escaped);
}

static void test_login_escapes(void **state)
{
    static char html[16384];
    sk_buf b;
    (void)state;
    for (int lang = SK_LANG_EN; lang <= SK_LANG_JA; lang++) {
        struct sk_page_login p = {
            .lang = (enum sk_lang)lang,
            .cert_user = EVIL_USER,
            .cert_tenant = EVIL_TENANT,
            .csrf = EVIL_CSRF,
            .return_path = EVIL_RETURN,
            .ask_totp = 1,
            .msg = SK_MSG_BAD_CREDENTIALS,
        };
        sk_buf_init(&b, html, sizeof html);
        assert_int_equal(sk_page_login(&b, &p), 0);
        assert_escaped(html, EVIL_USER, "u&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;");
        assert_escaped(html, EVIL_TENANT, "t&quot;&gt;&lt;img src=x onerror=alert(2)&gt;");
        assert_escaped(html, EVIL_RETURN, "/r&quot;&gt;&lt;script&gt;alert(3)&lt;/script&gt;");
        assert_escaped(html, EVIL_CSRF, "c&quot; autofocus onfocus=&quot;alert(4)");
        assert_null(strstr(html, "<script"));
        assert_null(strstr(html, "<img"));
        assert_null(strstr(html, "\" onfocus"));
        /* The form is still all there. */
        assert_non_null(strstr(html, "name=\"password\""));
        assert_non_null(strstr(html, "name=\"totp\""));
        assert_non_null(strstr(html, "name=\"csrf\""));
        assert_non_null(strstr(html, "name=\"return\""));
        assert_non_null(strstr(html, "action=\"/.sekisho/login\""));
        assert_non_null(strstr(html, lang == SK_LANG_JA ? "<html lang=\"ja\">" : "<html lang=\"en\">"));
        assert_non_null(strstr(html, lang == SK_LANG_JA ? "IDまたはパスワードが正しくありません。"
                                                        : "The ID or password is incorrect."));
        assert_non_null(strstr(html, "</html>"));
        assert_int_equal(strlen(html), b.len);
    }
}

static void test_login_without_totp_and_small_buffer(void **state)
{
    char html[8192];
    sk_buf b;
    struct sk_page_login p = {
        .lang = SK_LANG_EN, .cert_user = "alice", .cert_tenant = "acme", .csrf = "tok", .return_path = "/",
    };
    (void)state;
    sk_buf_init(&b, html, sizeof html);
    assert_int_equal(sk_page_login(&b, &p), 0);
    assert_null(strstr(html, "totp"));
    assert_null(strstr(html, "class=\"msg")); /* SK_MSG_NONE: no message box */
    assert_non_null(strstr(html, "value=\"alice\""));

    /* Too small a buffer is an error, not a truncated page. */
    for (size_t cap = 1; cap < 600; cap += 37) {
        sk_buf_init(&b, html, cap);
        assert_int_equal(sk_page_login(&b, &p), -1);
        assert_true(strlen(html) < cap);
    }
}

static void test_logout_escapes(void **state)
{
    char html[8192];
    sk_buf b;
    struct sk_page_logout p = { .lang = SK_LANG_JA, .user = EVIL_USER, .tenant = EVIL_TENANT, .csrf = EVIL_CSRF };
    (void)state;
    sk_buf_init(&b, html, sizeof html);
    assert_int_equal(sk_page_logout(&b, &p), 0);
    assert_escaped(html, EVIL_USER, "u&lt;script&gt;alert(1)&lt;/script&gt;&quot;&#39;&amp;");
    assert_escaped(html, EVIL_TENANT, "t&quot;&gt;&lt;img src=x onerror=alert(2)&gt;");
    assert_escaped(html, EVIL_CSRF, "c&quot; autofocus onfocus=&quot;alert(4)");
    assert_non_null(strstr(html, "action=\"/.sekisho/logout\""));
    assert_non_null(strstr(html, "サインアウト"));
}

static void test_error_pages(void **state)
{
    char html[4096];
    sk_buf b;
    (void)state;
    sk_buf_init(&b, html, sizeof html);
    assert_int_equal(sk_page_error(&b, SK_LANG_EN, 404), 0);
    assert_non_null(strstr(html, "<title>404 - Sekisho</title>"));
    assert_non_null(strstr(html, "Not found."));

    sk_buf_init(&b, html, sizeof html);
    assert_int_equal(sk_page_error(&b, SK_LANG_JA, 503), 0);
    assert_non_null(strstr(html, "サーバーが混み合っています。"));

    /* Unknown statuses fall back to the 500 text, in both languages. */
    sk_buf_init(&b, html, sizeof html);
    assert_int_equal(sk_page_error(&b, SK_LANG_EN, 418), 0);
    assert_non_null(strstr(html, "<h1>418</h1>"));
    assert_non_null(strstr(html, "An internal error occurred."));
    sk_buf_init(&b, html, sizeof html);
    assert_int_equal(sk_page_error(&b, SK_LANG_JA, -1), 0);
    assert_non_null(strstr(html, "内部エラーが発生しました。"));
    sk_buf_init(&b, html, sizeof html);
    assert_int_equal(sk_page_error(&b, SK_LANG_EN, 2147483647), 0);
    assert_non_null(strstr(html, "An internal error occurred."));

    sk_buf_init(&b, html, 100);
    assert_int_equal(sk_page_error(&b, SK_LANG_EN, 404), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lang),
        cmocka_unit_test(test_lang_q_zero),
        cmocka_unit_test(test_login_escapes),
        cmocka_unit_test(test_login_without_totp_and_small_buffer),
        cmocka_unit_test(test_logout_escapes),
        cmocka_unit_test(test_error_pages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
