/* Unit tests for the [store] keys of sekisho_conf: backend, url (a libpq
 * connection string that never holds a password), password_file (a secret file,
 * checked 0600 by sk_conf_check_access), their dump and their warning. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "sk_conf.h"

/* The smallest file that loads (5 lines), then [store] on line 6. */
#define BASE "[listen]\ncert = c.pem\nkey = k.pem\n[tls]\nclient_ca = ca.pem\n[store]\n"
#define STORE_LINE 7

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    return remove(p);
}

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
    memcpy(f->dir, "/tmp/sk-test-confstore-XXXXXX", sizeof "/tmp/sk-test-confstore-XXXXXX");
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
    int rc = nftw(f->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return rc;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    size_t n = strlen(text);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    assert_int_equal(close(fd), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static int load(fixture *f, const char *store_lines)
{
    char text[4096];
    assert_int_equal(sk_snprintf(text, sizeof text, "%s%s", BASE, store_lines), 0);
    write_file(f->path, text, 0600);
    memset(f->err, 0, sizeof f->err);
    return sk_conf_load(f->path, &f->c, f->err, sizeof f->err);
}

/* Refused at line STORE_LINE (the first [store] key), the error mentioning what. */
static void expect_refused(fixture *f, const char *store_lines, const char *what)
{
    char prefix[600];
    if (load(f, store_lines) != -1)
        fail_msg("accepted, expected an error mentioning \"%s\":\n%s", what, store_lines);
    assert_int_equal(sk_snprintf(prefix, sizeof prefix, "%s:%d:", f->path, STORE_LINE), 0);
    if (strncmp(f->err, prefix, strlen(prefix)) != 0)
        fail_msg("error \"%s\" does not start with \"%s\"", f->err, prefix);
    if (strstr(f->err, what) == NULL)
        fail_msg("error \"%s\" does not mention \"%s\"", f->err, what);
    assert_string_equal(f->c.store_backend, "lmdb"); /* reset to the defaults */
}

/* sk_conf_warnings of the loaded configuration: the count, and the text in *out
 * (the caller frees it). */
static int warnings_of(fixture *f, char **out)
{
    size_t len = 0;
    FILE *m;
    int n;
    *out = NULL;
    m = open_memstream(out, &len);
    assert_non_null(m);
    n = sk_conf_warnings(&f->c, m);
    assert_int_equal(fclose(m), 0);
    assert_non_null(*out);
    return n;
}

static void test_defaults(void **state)
{
    fixture *f = *state;
    assert_int_equal(load(f, ""), 0);
    assert_string_equal(f->c.store_backend, "lmdb");
    assert_string_equal(f->c.store_url, "");
    assert_string_equal(f->c.store_password_file, "");
}

static void test_valid(void **state)
{
    fixture *f = *state;
    char want[600];

    assert_int_equal(load(f, "backend = postgresql\n"
                             "url = postgresql://sekisho@127.0.0.1:5432/sekisho?sslmode=verify-full\n"
                             "password_file = secrets/db.pw\n"),
                     0);
    assert_string_equal(f->c.store_backend, "postgresql");
    assert_string_equal(f->c.store_url, "postgresql://sekisho@127.0.0.1:5432/sekisho?sslmode=verify-full");
    assert_int_equal(sk_snprintf(want, sizeof want, "%s/secrets/db.pw", f->dir), 0);
    assert_string_equal(f->c.store_password_file, want); /* relative to the file */

    /* keyword=value form; "password" as a value, and libpq's own passfile, are fine */
    assert_int_equal(load(f, "backend = postgresql\n"
                             "url = host=127.0.0.1 port=5432 dbname=sekisho user=password sslmode='verify-full' "
                             "passfile=/etc/pgpass\n"),
                     0);
    assert_string_equal(f->c.store_url, "host=127.0.0.1 port=5432 dbname=sekisho user=password "
                                        "sslmode='verify-full' passfile=/etc/pgpass");
    assert_int_equal(load(f, "backend = lmdb\n"), 0);
    assert_string_equal(f->c.store_backend, "lmdb");
    assert_int_equal(load(f, "backend = postgresql\nurl = postgres://db.internal/sekisho\n"), 0);
}

static void test_invalid_backend(void **state)
{
    fixture *f = *state;
    expect_refused(f, "backend = mysql\n", "must be lmdb");
    expect_refused(f, "backend = LMDB\n", "must be lmdb");
    expect_refused(f, "backend =\n", "must be lmdb");
    expect_refused(f, "engine = lmdb\n", "unknown key [store] engine");
    /* postgresql needs somewhere to connect to */
    assert_int_equal(load(f, "backend = postgresql\n"), -1);
    assert_non_null(strstr(f->err, "[store] url is required with backend = postgresql"));
}

static void test_password_in_url_refused(void **state)
{
    fixture *f = *state;
    static const char *const bad[] = {
        "url = postgresql://sekisho:s3cret@127.0.0.1/sekisho\n",
        "url = postgres://sekisho:@127.0.0.1/sekisho\n",
        "url = postgresql://127.0.0.1/sekisho?password=s3cret\n",
        "url = postgresql://127.0.0.1/sekisho?sslmode=require&PassWord=s3cret\n",
        "url = postgresql://127.0.0.1/sekisho?%70assword=s3cret\n",
        "url = host=127.0.0.1 password=s3cret\n",
        "url = host=127.0.0.1 password = 's3 cret' dbname=x\n",
        "url = dbname='a b' PASSWORD=s3cret\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        expect_refused(f, bad[i], "must not hold a password: put it in [store] password_file");
        /* the error never repeats the value, which may hold the password */
        if (strstr(f->err, "s3") != NULL)
            fail_msg("error repeats the secret: %s", f->err);
    }
    expect_refused(f, "url = not a connection string\n", "must be a libpq connection string");
    expect_refused(f, "url = host='unterminated\n", "must be a libpq connection string");
}

static void test_password_file_permissions(void **state)
{
    fixture *f = *state;
    char p[600];
    const char *names[] = { "c.pem", "k.pem", "ca.pem" };

    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(sk_snprintf(p, sizeof p, "%s/%s", f->dir, names[i]), 0);
        write_file(p, "x\n", 0600);
    }
    assert_int_equal(sk_snprintf(p, sizeof p, "%s/db.pw", f->dir), 0);
    /* not there yet: a named secret that is missing is an error */
    assert_int_equal(load(f, "backend = postgresql\nurl = host=127.0.0.1\npassword_file = db.pw\n[state]\n"
                             "dir = state\n"),
                     0);
    assert_int_equal(sk_conf_check_access(&f->c, f->err, sizeof f->err), -1);
    assert_non_null(strstr(f->err, "[store] password_file"));
    assert_non_null(strstr(f->err, "does not exist"));

    write_file(p, "s3cret\n", 0640);
    assert_int_equal(sk_conf_check_access(&f->c, f->err, sizeof f->err), -1);
    assert_non_null(strstr(f->err, "accessible to group or others (mode 640)"));
    write_file(p, "s3cret\n", 0604);
    assert_int_equal(sk_conf_check_access(&f->c, f->err, sizeof f->err), -1);
    assert_non_null(strstr(f->err, "chmod 600"));
    write_file(p, "s3cret\n", 0600);
    assert_int_equal(sk_conf_check_access(&f->c, f->err, sizeof f->err), 0);
    write_file(p, "s3cret\n", 0400);
    assert_int_equal(sk_conf_check_access(&f->c, f->err, sizeof f->err), 0);
}

static void test_dump_and_warning(void **state)
{
    fixture *f = *state;
    char *buf = NULL;
    size_t len = 0;
    FILE *m;

    assert_int_equal(load(f, "backend = postgresql\nurl = postgresql://sekisho@127.0.0.1/sekisho\n"
                             "password_file = /etc/sekisho/db.pw\n"),
                     0);
    m = open_memstream(&buf, &len);
    assert_non_null(m);
    assert_int_equal(sk_conf_dump(&f->c, m), 0);
    assert_int_equal(fclose(m), 0);
    assert_non_null(strstr(buf, "\n[store]\nbackend = postgresql\nurl = postgresql://sekisho@127.0.0.1/sekisho\n"
                                "password_file = /etc/sekisho/db.pw\n"));
    /* the dump loads back to the same values */
    write_file(f->path, buf, 0600);
    free(buf);
    buf = NULL;
    assert_int_equal(sk_conf_load(f->path, &f->c, f->err, sizeof f->err), 0);
    assert_string_equal(f->c.store_backend, "postgresql");
    assert_string_equal(f->c.store_password_file, "/etc/sekisho/db.pw");

    /* no warning for a consistent configuration ... */
    int n = warnings_of(f, &buf);
    assert_null(strstr(buf, "[store]"));
    free(buf);
    /* ... one for database settings that the lmdb backend ignores */
    assert_int_equal(load(f, "url = postgresql://127.0.0.1/sekisho\n"), 0);
    assert_int_equal(warnings_of(f, &buf), n + 1);
    assert_non_null(strstr(buf, "warning: [store] url, password_file and pool are not used with backend = lmdb"));
    free(buf);
    /* ... and for a pool size it would ignore */
    assert_int_equal(load(f, "pool = 8\n"), 0);
    assert_int_equal(warnings_of(f, &buf), n + 1);
    assert_non_null(strstr(buf, "pool are not used with backend = lmdb"));
    free(buf);
}

static void test_pool(void **state)
{
    fixture *f = *state;
    assert_int_equal(load(f, ""), 0);
    assert_int_equal(f->c.store_pool, 4);
    assert_int_equal(load(f, "backend = postgresql\nurl = postgresql://127.0.0.1/sekisho\npool = 16\n"), 0);
    assert_int_equal(f->c.store_pool, 16);
    assert_int_equal(load(f, "backend = postgresql\nurl = postgresql://127.0.0.1/sekisho\npool = 64\n"), 0);
    assert_int_equal(f->c.store_pool, 64);
    expect_refused(f, "pool = 0\n", "pool");
    expect_refused(f, "pool = 65\n", "pool");
    expect_refused(f, "pool = four\n", "pool");
    expect_refused(f, "pool = -1\n", "pool");
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_pool),
        T(test_defaults),
        T(test_valid),
        T(test_invalid_backend),
        T(test_password_in_url_refused),
        T(test_password_file_permissions),
        T(test_dump_and_warning),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
