/* Unit tests for [audit] node of sekisho_conf: the default (the host name), valid
 * names, and the one-line refusal of malformed ones naming FILE:LINE. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "sk_conf.h"

/* The smallest file that loads (5 lines), then [audit] on line 6. */
#define BASE "[listen]\ncert = c.pem\nkey = k.pem\n[tls]\nclient_ca = ca.pem\n[audit]\n"

typedef struct fixture {
    char dir[256];
    char path[512];
    char err[2048];
    sk_conf c;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    memcpy(f->dir, "/tmp/sk-test-confnode-XXXXXX", sizeof "/tmp/sk-test-confnode-XXXXXX");
    if (mkdtemp(f->dir) == NULL || sk_snprintf(f->path, sizeof f->path, "%s/sekisho.conf", f->dir) != 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    int rc = unlink(f->path) == 0 || access(f->path, F_OK) != 0 ? rmdir(f->dir) : -1;
    free(f);
    return rc;
}

static int load(fixture *f, const char *text)
{
    FILE *fp = fopen(f->path, "w");
    assert_non_null(fp);
    assert_int_equal(fputs(text, fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
    f->err[0] = '\0';
    return sk_conf_load(f->path, &f->c, f->err, sizeof f->err);
}

static void test_default_is_host_name(void **state)
{
    fixture *f = *state;
    char host[256];
    assert_int_equal(gethostname(host, sizeof host), 0);
    host[sizeof host - 1] = '\0';
    assert_int_equal(load(f, BASE), 0);
    assert_string_equal(f->c.audit_node, host);
}

static void test_valid_names(void **state)
{
    fixture *f = *state;
    static const char *ok[] = {"gw-a", "gw_1.example", "A", "0",
                               "123456789012345678901234567890123456789012345678901234567890123"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char text[512];
        assert_int_equal(sk_snprintf(text, sizeof text, BASE "node = %s\n", ok[i]), 0);
        assert_int_equal(load(f, text), 0);
        assert_string_equal(f->c.audit_node, ok[i]);
    }
}

static void test_malformed_names(void **state)
{
    fixture *f = *state;
    static const char *bad[] = {"gw a", "gw/a", "gw:a", "gw\xc3\xa9", "",
                                "1234567890123456789012345678901234567890123456789012345678901234"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[512], want[700];
        assert_int_equal(sk_snprintf(text, sizeof text, BASE "node = %s\n", bad[i]), 0);
        assert_int_equal(load(f, text), -1);
        assert_int_equal(sk_snprintf(want, sizeof want, "%s:7: [audit] node = %s: must be 1 to 63 characters",
                                     f->path, bad[i]),
                         0);
        if (strstr(f->err, want) == NULL)
            fail_msg("node '%s': %s", bad[i], f->err);
        assert_null(strchr(f->err, '\n'));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_default_is_host_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_valid_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_names, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
