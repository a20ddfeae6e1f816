/* Unit tests: urlencoded bodies of the gateway's forms. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sk_req.h"

struct got {
    char text[1024];
    int stop_at;
    int n;
};

static int collect(void *arg, const char *name, const char *value, size_t len)
{
    struct got *g = arg;
    size_t l = strlen(g->text);
    assert_int_equal(len, strlen(value));
    if (++g->n == g->stop_at)
        return 1;
    assert_int_equal(sk_snprintf(g->text + l, sizeof g->text - l, "[%s=%s]", name, value), 0);
    return 0;
}

static int parse(const char *body, struct got *g)
{
    memset(g, 0, sizeof *g);
    return sk_req_form_parse(body, strlen(body), collect, g);
}

static void test_form(void **state)
{
    struct got g;
    char big[SK_REQ_FORM_VALUE_MAX + 16];
    (void)state;
    assert_int_equal(parse("id=bob&password=p%40ss+word&csrf=abc", &g), 0);
    assert_string_equal(g.text, "[id=bob][password=p@ss word][csrf=abc]");
    assert_int_equal(parse("&&a&b=&=c&%41=%2b", &g), 0);
    assert_string_equal(g.text, "[a=][b=][=c][A=+]");
    assert_int_equal(parse("", &g), 0);
    assert_string_equal(g.text, "");
    assert_int_equal(parse("a=%00", &g), -1);
    assert_int_equal(parse("a=%4", &g), -1);
    assert_int_equal(parse("a=%zz", &g), -1);
    assert_int_equal(parse("%00=a", &g), -1);
    assert_int_equal(sk_req_form_parse("a=b\0c", 5, collect, &g), -1);
    memset(big, 'x', sizeof big);
    memcpy(big, "v=", 2);
    big[sizeof big - 1] = '\0';
    assert_int_equal(parse(big, &g), -1);
    memset(&g, 0, sizeof g);
    g.stop_at = 2;
    assert_int_equal(sk_req_form_parse("a=1&b=2&c=3", 11, collect, &g), -1);
    /* Only n bytes are read. */
    memset(&g, 0, sizeof g);
    assert_int_equal(sk_req_form_parse("a=1&b=2", 3, collect, &g), 0);
    assert_string_equal(g.text, "[a=1]");
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_form) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
