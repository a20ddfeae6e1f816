/* Unit tests for the mail outbox of sk_notify ([notify] outbox): each mail is one
 * complete file in DIR/new (nothing left in DIR/tmp), mode 0600, with exactly the
 * message the command would have read; the command is not run; header injection
 * is still refused; bad directories are errors; unset, the command runs again. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
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

#include "sk_notify.h"

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    return remove(p);
}

typedef struct fixture {
    char dir[64];
    char box[128];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    memcpy(f->dir, "/tmp/sk-test-outbox-XXXXXX", sizeof "/tmp/sk-test-outbox-XXXXXX");
    if (mkdtemp(f->dir) == NULL || snprintf(f->box, sizeof f->box, "%s/outbox", f->dir) <= 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    assert_int_equal(sk_notify_set_outbox(NULL), 0);
    (void)nftw(f->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

/* Names of the entries of DIR (not . and ..), count returned; first name in first. */
static int list_dir(const char *dir, char *first, size_t cap)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (n++ == 0 && first != NULL)
            assert_int_equal(sk_strlcpy(first, cap, e->d_name), 0);
    }
    closedir(d);
    return n;
}

static char *slurp(const char *path)
{
    char *buf = NULL;
    size_t len = 0;
    assert_int_equal(sk_read_file(path, 1 << 20, &buf, &len), 0);
    return buf;
}

static void test_mail_lands_in_new(void **state)
{
    fixture *f = *state;
    char sub[256], name[256], path[512], marker[256];
    struct stat st;
    struct sk_notify_msg m = { "sekisho@example.com", "ops@example.com", "Sekisho ALARM: test", "line one\nline two\n" };
    char *text;

    /* The command would leave a marker: with the outbox it must never run. */
    assert_int_equal(sk_snprintf(marker, sizeof marker, "%s/ran", f->dir), 0);
    assert_int_equal(sk_snprintf(path, sizeof path, "touch %s", marker), 0);
    assert_int_equal(sk_notify_set_outbox(f->box), 0);
    assert_int_equal(sk_notify_send_level(path, &m, SK_NOTIFY_MAJOR), 0);
    assert_int_equal(access(marker, F_OK), -1);

    assert_int_equal(sk_snprintf(sub, sizeof sub, "%s/tmp", f->box), 0);
    assert_int_equal(list_dir(sub, NULL, 0), 0); /* nothing half-written left */
    assert_int_equal(sk_snprintf(sub, sizeof sub, "%s/hold", f->box), 0);
    assert_int_equal(list_dir(sub, NULL, 0), 0);
    assert_int_equal(sk_snprintf(sub, sizeof sub, "%s/new", f->box), 0);
    assert_int_equal(list_dir(sub, name, sizeof name), 1);
    assert_true(strlen(name) > 4 && strcmp(name + strlen(name) - 4, ".eml") == 0);
    assert_int_equal(sk_snprintf(path, sizeof path, "%s/%s", sub, name), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(stat(f->box, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    text = slurp(path);
    assert_string_equal(text, "From: sekisho@example.com\n"
                              "To: ops@example.com\n"
                              "Subject: Sekisho ALARM: test [major]\n"
                              "X-Sekisho-Alert-Level: major\n"
                              "Importance: high\nX-Priority: 1\n"
                              "MIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8\n"
                              "Content-Transfer-Encoding: 8bit\nAuto-Submitted: auto-generated\n\n"
                              "line one\nline two\n");
    free(text);

    /* A second mail is a second file; names sort in the order mail was queued. */
    m.subject = "second";
    assert_int_equal(sk_notify_send(NULL, &m), 0); /* no command needed */
    assert_int_equal(list_dir(sub, NULL, 0), 2);
}

static void test_refusals(void **state)
{
    fixture *f = *state;
    char sub[256], file[256];
    struct sk_notify_msg bad = { NULL, "ops@example.com\nBcc: x@evil.example", "s", "b" };
    uint64_t failed = sk_notify_failures();

    assert_int_equal(sk_notify_set_outbox(f->box), 0);
    assert_int_equal(sk_notify_send("true", &bad), -1); /* header injection */
    assert_int_equal(sk_snprintf(sub, sizeof sub, "%s/new", f->box), 0);
    assert_int_equal(list_dir(sub, NULL, 0), 0);

    errno = 0;
    assert_int_equal(sk_notify_set_outbox("relative/outbox"), -1);
    assert_int_equal(errno, EINVAL);
    /* A file where the directory should be. */
    assert_int_equal(sk_snprintf(file, sizeof file, "%s/plain", f->dir), 0);
    assert_int_equal(sk_write_file_atomic(file, "x", 1, 0600), 0);
    assert_int_equal(sk_notify_set_outbox(file), -1);

    /* The outbox vanishing under the gateway is a failed, counted send, not a crash. */
    assert_int_equal(sk_notify_set_outbox(f->box), 0);
    assert_int_equal(rmdir(sub), 0);
    bad.to = "ops@example.com";
    assert_int_equal(sk_notify_send(NULL, &bad), -1);
    assert_true(sk_notify_failures() > failed);
}

static void test_unset_runs_command_again(void **state)
{
    fixture *f = *state;
    char cmd[256], out[256], sub[256];
    struct sk_notify_msg m = { NULL, "ops@example.com", "via command", "body\n" };
    char *text;

    assert_int_equal(sk_notify_set_outbox(f->box), 0);
    assert_int_equal(sk_notify_set_outbox(""), 0); /* off */
    assert_int_equal(sk_snprintf(out, sizeof out, "%s/piped", f->dir), 0);
    assert_int_equal(sk_snprintf(cmd, sizeof cmd, "cat > %s", out), 0);
    assert_int_equal(sk_notify_send(cmd, &m), 0);
    text = slurp(out);
    assert_non_null(strstr(text, "Subject: via command\n"));
    free(text);
    assert_int_equal(sk_snprintf(sub, sizeof sub, "%s/new", f->box), 0);
    assert_int_equal(list_dir(sub, NULL, 0), 0);
    assert_int_equal(sk_notify_send(NULL, &m), -1); /* neither command nor outbox */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_mail_lands_in_new, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unset_runs_command_again, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
