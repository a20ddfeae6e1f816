/* Unit tests for sekisho_util: bounded strings, sk_buf, number and duration
 * parsing, hex and base64url, secret files, atomic writes, sk_read_file, sk_mkdir_p. */
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

#include "sk_util.h"

/* ---- helpers ------------------------------------------------------------ */

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    return remove(p);
}

typedef struct fixture {
    char dir[256];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL)
        return -1;
    memcpy(f->dir, "/tmp/sk-test-util-XXXXXX", sizeof "/tmp/sk-test-util-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
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

static void path_in(const fixture *f, const char *name, char *out, size_t cap)
{
    assert_int_equal(sk_snprintf(out, cap, "%s/%s", f->dir, name), 0);
}

static void write_raw(const char *path, const void *data, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, n), (ssize_t)n);
    assert_int_equal(close(fd), 0);
}

static size_t count_dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = 0;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

/* ---- sk_strlcpy / sk_snprintf ------------------------------------------- */

static void test_strlcpy(void **state)
{
    char buf[6];
    (void)state;
    assert_int_equal(sk_strlcpy(buf, sizeof buf, "hello"), 0);
    assert_string_equal(buf, "hello");
    assert_int_equal(sk_strlcpy(buf, sizeof buf, ""), 0);
    assert_string_equal(buf, "");
    memset(buf, 'x', sizeof buf);
    /* Exactly one byte too long: truncation is a failure and leaves "". */
    assert_int_equal(sk_strlcpy(buf, sizeof buf, "hello!"), -1);
    assert_string_equal(buf, "");
    memset(buf, 'x', sizeof buf);
    assert_int_equal(sk_strlcpy(buf, 0, "a"), -1);
    assert_int_equal(buf[0], 'x'); /* cap 0: nothing may be written */
    assert_int_equal(sk_strlcpy(buf, 1, ""), 0);
    assert_string_equal(buf, "");
}

static void test_snprintf(void **state)
{
    char buf[8];
    (void)state;
    assert_int_equal(sk_snprintf(buf, sizeof buf, "%d-%s", 42, "abcd"), 0);
    assert_string_equal(buf, "42-abcd");
    assert_int_equal(sk_snprintf(buf, sizeof buf, "%d-%s", 42, "abcde"), -1);
    assert_string_equal(buf, "");
    memset(buf, 'x', sizeof buf);
    assert_int_equal(sk_snprintf(buf, 0, "%s", ""), -1);
    assert_int_equal(buf[0], 'x');
}

/* ---- sk_buf --------------------------------------------------------------- */

static void test_buf_basic(void **state)
{
    char mem[32];
    sk_buf b;
    (void)state;
    sk_buf_init(&b, mem, sizeof mem);
    assert_string_equal(mem, "");
    sk_buf_puts(&b, "abc");
    sk_buf_add(&b, "defg", 2);
    sk_buf_printf(&b, "[%d:%s]", 7, "x");
    assert_int_equal(sk_buf_finish(&b), 0);
    assert_string_equal(mem, "abcde[7:x]");
    assert_int_equal(b.len, strlen("abcde[7:x]"));
}

static void test_buf_exact_fit_and_sticky_overflow(void **state)
{
    char mem[8];
    sk_buf b;
    (void)state;
    sk_buf_init(&b, mem, sizeof mem);
    sk_buf_puts(&b, "1234567"); /* 7 + NUL = exactly the capacity */
    assert_int_equal(sk_buf_finish(&b), 0);
    assert_string_equal(mem, "1234567");

    sk_buf_init(&b, mem, sizeof mem);
    sk_buf_puts(&b, "1234");
    sk_buf_puts(&b, "5678"); /* does not fit */
    assert_int_equal(sk_buf_finish(&b), -1);
    assert_string_equal(mem, "1234"); /* still terminated, failed append absent */
    /* Sticky: a later append that would fit is refused and finish stays -1. */
    sk_buf_puts(&b, "x");
    assert_int_equal(sk_buf_finish(&b), -1);
    assert_string_equal(mem, "1234");

    sk_buf_init(&b, mem, sizeof mem);
    sk_buf_puts(&b, "ab");
    sk_buf_printf(&b, "%s", "cdefghij"); /* printf overflow */
    assert_int_equal(sk_buf_finish(&b), -1);
    assert_string_equal(mem, "ab");
    sk_buf_printf(&b, "%s", "c");
    assert_int_equal(sk_buf_finish(&b), -1);
    assert_string_equal(mem, "ab");

    sk_buf_init(&b, NULL, 0);
    sk_buf_puts(&b, "");
    assert_int_equal(sk_buf_finish(&b), -1);
}

static void test_buf_html(void **state)
{
    char mem[128];
    sk_buf b;
    (void)state;
    sk_buf_init(&b, mem, sizeof mem);
    sk_buf_html(&b, "<a href=\"x\">Tom & 'Jerry'</a> 関所");
    assert_int_equal(sk_buf_finish(&b), 0);
    assert_string_equal(mem, "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt; 関所");

    /* An escape that does not fit fails the whole buffer. */
    sk_buf_init(&b, mem, 5);
    sk_buf_html(&b, "a<");
    assert_int_equal(sk_buf_finish(&b), -1);
    assert_null(memchr(mem, '<', 5));
}

/* ---- sk_parse_u64 ----------------------------------------------------------- */

static void test_parse_u64(void **state)
{
    uint64_t v = 12345;
    (void)state;
    assert_int_equal(sk_parse_u64("0", 0, 10, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(sk_parse_u64("007", 0, 10, &v), 0);
    assert_int_equal(v, 7);
    assert_int_equal(sk_parse_u64("18446744073709551615", 0, UINT64_MAX, &v), 0);
    assert_true(v == UINT64_MAX);

    v = 99;
    assert_int_equal(sk_parse_u64("18446744073709551616", 0, UINT64_MAX, &v), -1);
    assert_int_equal(sk_parse_u64("99999999999999999999999", 0, UINT64_MAX, &v), -1);
    assert_int_equal(v, 99); /* untouched on failure */

    assert_int_equal(sk_parse_u64("5", 5, 10, &v), 0);
    assert_int_equal(v, 5);
    assert_int_equal(sk_parse_u64("10", 5, 10, &v), 0);
    assert_int_equal(v, 10);
    assert_int_equal(sk_parse_u64("4", 5, 10, &v), -1);
    assert_int_equal(sk_parse_u64("11", 5, 10, &v), -1);

    static const char *const junk[] = { "", "-1", "+1", " 1", "1 ", "1a", "0x10", "1.0", "a", "1\n" };
    for (size_t i = 0; i < SK_ARRAY_LEN(junk); i++)
        assert_int_equal(sk_parse_u64(junk[i], 0, UINT64_MAX, &v), -1);
    assert_int_equal(sk_parse_u64(NULL, 0, UINT64_MAX, &v), -1);
    assert_int_equal(v, 10);
}

/* ---- sk_parse_duration -------------------------------------------------------- */

static void test_parse_duration(void **state)
{
    static const struct { const char *in; int64_t secs; } ok[] = {
        { "30s", 30 }, { "30m", 1800 }, { "12h", 43200 }, { "180d", 15552000 },
        { "45", 45 }, { "0", 0 }, { "1d", 86400 }, { "3660d", 3660LL * 86400 },
        { "316224000", 316224000 }, { "36600d", 36600LL * 86400 },
    };
    static const char *const bad[] = {
        "", "d", "s", "-1", "1x", "1.5h", " 30s", "30s ", "30sec", "30S", "h30",
        "36601d", "3162240001", "99999999999999999999d", "18446744073709551616",
        /* just past 100 * 366 days in each unit */
        "52704001m", "878401h", "1000000000000000000000000s",
    };
    int64_t v;
    (void)state;
    for (size_t i = 0; i < SK_ARRAY_LEN(ok); i++) {
        v = -7;
        assert_int_equal(sk_parse_duration(ok[i].in, &v), 0);
        assert_true(v == ok[i].secs);
    }
    for (size_t i = 0; i < SK_ARRAY_LEN(bad); i++) {
        v = -7;
        if (sk_parse_duration(bad[i], &v) != -1)
            fail_msg("duration \"%s\" was accepted as %lld", bad[i], (long long)v);
        assert_true(v == -7);
    }
    assert_int_equal(sk_parse_duration(NULL, &v), -1);
}

/* ---- hex -------------------------------------------------------------------- */

static void test_hex(void **state)
{
    uint8_t in[64], out[64];
    char enc[2 * 64 + 1];
    (void)state;
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (uint8_t)(i * 37 + 11);
    for (size_t n = 0; n <= sizeof in; n++) {
        sk_hex_encode(in, n, enc);
        assert_int_equal(strlen(enc), 2 * n);
        for (size_t i = 0; i < 2 * n; i++)
            assert_non_null(strchr("0123456789abcdef", enc[i]));
        memset(out, 0, sizeof out);
        assert_int_equal(sk_hex_decode(enc, out, n), 0);
        assert_memory_equal(in, out, n);
    }
    static const uint8_t want[] = { 0xde, 0xad, 0xbe, 0xef };
    assert_int_equal(sk_hex_decode("DEADbeef", out, 4), 0);
    assert_memory_equal(out, want, 4);
    sk_hex_encode(want, 4, enc);
    assert_string_equal(enc, "deadbeef");

    assert_int_equal(sk_hex_decode("deadbee", out, 4), -1);   /* short */
    assert_int_equal(sk_hex_decode("deadbeef0", out, 4), -1); /* long */
    assert_int_equal(sk_hex_decode("deadbeef", out, 3), -1);
    assert_int_equal(sk_hex_decode("deadbeeg", out, 4), -1);  /* bad digit */
    assert_int_equal(sk_hex_decode("de adbee", out, 4), -1);
    assert_int_equal(sk_hex_decode("", out, 0), 0);
}

/* ---- base64url ---------------------------------------------------------------- */

static void test_b64url_round_trip(void **state)
{
    uint8_t in[64], out[65];
    char enc[SK_B64URL_LEN(64) + 1];
    (void)state;
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (uint8_t)(0xff - i * 29);
    for (size_t n = 0; n <= sizeof in; n++) {
        size_t len;
        sk_b64url_encode(in, n, enc);
        len = strlen(enc);
        assert_int_equal(len, SK_B64URL_LEN(n));
        for (size_t i = 0; i < len; i++)
            assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
                                   enc[i]));
        memset(out, 0xa5, sizeof out);
        assert_int_equal(sk_b64url_decode(enc, len, out, n), 0);
        assert_memory_equal(in, out, n);
        assert_int_equal(out[n], 0xa5); /* nothing written past n */
        /* Wrong expected lengths are refused. */
        if (n > 0)
            assert_int_equal(sk_b64url_decode(enc, len, out, n - 1), -1);
        assert_int_equal(sk_b64url_decode(enc, len, out, n + 1), -1);
        if (len > 0)
            assert_int_equal(sk_b64url_decode(enc, len - 1, out, n), -1);
    }
}

static void test_b64url_known_and_rejects(void **state)
{
    static const uint8_t fb[] = { 0xfb, 0xff, 0xbf };
    uint8_t out[8];
    char enc[16];
    (void)state;
    sk_b64url_encode(fb, 3, enc);
    assert_string_equal(enc, "-_-_"); /* URL alphabet, not + and / */
    sk_b64url_encode((const uint8_t *)"foob", 4, enc);
    assert_string_equal(enc, "Zm9vYg"); /* no padding */
    assert_int_equal(sk_b64url_decode("Zm9vYg", 6, out, 4), 0);
    assert_memory_equal(out, "foob", 4);

    /* Non-canonical: the unused low bits of the last character must be zero. */
    assert_int_equal(sk_b64url_decode("Zm9vYh", 6, out, 4), -1);
    assert_int_equal(sk_b64url_decode("AQ", 2, out, 1), 0);
    assert_int_equal(out[0], 1);
    assert_int_equal(sk_b64url_decode("AR", 2, out, 1), -1);
    assert_int_equal(sk_b64url_decode("AAE", 3, out, 2), 0);
    assert_int_equal(sk_b64url_decode("AAF", 3, out, 2), -1);
    /* Standard base64 alphabet, padding, whitespace and NUL are not base64url. */
    assert_int_equal(sk_b64url_decode("+/+/", 4, out, 3), -1);
    assert_int_equal(sk_b64url_decode("Zm9vYg==", 8, out, 4), -1);
    assert_int_equal(sk_b64url_decode("Zm9vYg==", 8, out, 6), -1);
    assert_int_equal(sk_b64url_decode("Zm9 Yg", 6, out, 4), -1);
    assert_int_equal(sk_b64url_decode("Zm9\0Yg", 6, out, 4), -1);
    /* Lengths that no byte count produces. */
    assert_int_equal(sk_b64url_decode("A", 1, out, 0), -1);
    assert_int_equal(sk_b64url_decode("AAAAA", 5, out, 3), -1);
    assert_int_equal(sk_b64url_decode("AAAAA", 5, out, 4), -1);
}

/* ---- secrets ------------------------------------------------------------------ */

static void test_secret_equal_and_random(void **state)
{
    uint8_t a[32], b[32];
    (void)state;
    assert_int_equal(sk_random(a, sizeof a), 0);
    memcpy(b, a, sizeof a);
    assert_int_equal(sk_secret_equal(a, b, sizeof a), 1);
    b[31] ^= 1;
    assert_int_equal(sk_secret_equal(a, b, sizeof a), 0);
    assert_int_equal(sk_random(b, sizeof b), 0);
    assert_memory_not_equal(a, b, sizeof a); /* 2^-256 chance of a false failure */
    sk_wipe(a, sizeof a);
    for (size_t i = 0; i < sizeof a; i++)
        assert_int_equal(a[i], 0);
}

static void test_read_secret_file(void **state)
{
    fixture *f = *state;
    char path[512], link[512], out[16];
    size_t len = 999;

    path_in(f, "secret", path, sizeof path);
    write_raw(path, "hunter2\r\nsecond line\n", 21);
    assert_int_equal(sk_read_secret_file(path, out, sizeof out, &len), 0);
    assert_string_equal(out, "hunter2");
    assert_int_equal(len, 7);

    write_raw(path, "no-newline", 10);
    assert_int_equal(sk_read_secret_file(path, out, sizeof out, &len), 0);
    assert_string_equal(out, "no-newline");
    assert_int_equal(len, 10);

    /* cap-1 bytes of content is the largest that fits. */
    write_raw(path, "123456789012345\n", 16);
    assert_int_equal(sk_read_secret_file(path, out, sizeof out, &len), 0);
    assert_string_equal(out, "123456789012345");
    assert_int_equal(len, 15);

    /* One more: refused, and nothing of the secret remains in the buffer. */
    write_raw(path, "S3CRETS3CRETS3CR\n", 17);
    memset(out, 0, sizeof out);
    assert_int_equal(sk_read_secret_file(path, out, sizeof out, &len), -1);
    for (size_t i = 0; i < sizeof out; i++)
        if (out[i] != '\0')
            fail_msg("byte %zu of the output not wiped: 0x%02x", i, (unsigned char)out[i]);

    /* A directory, a missing file and a symlink (O_NOFOLLOW) are refused. */
    assert_int_equal(sk_read_secret_file(f->dir, out, sizeof out, &len), -1);
    path_in(f, "missing", link, sizeof link);
    assert_int_equal(sk_read_secret_file(link, out, sizeof out, &len), -1);
    write_raw(path, "target\n", 7);
    path_in(f, "link", link, sizeof link);
    assert_int_equal(symlink(path, link), 0);
    assert_int_equal(sk_read_secret_file(link, out, sizeof out, &len), -1);
    assert_int_equal(sk_read_secret_file(path, out, 0, &len), -1);
}

/* ---- files --------------------------------------------------------------------- */

static void test_write_file_atomic(void **state)
{
    fixture *f = *state;
    char path[512], *data = NULL;
    size_t len = 0;
    struct stat st;

    path_in(f, "state.bin", path, sizeof path);
    assert_int_equal(sk_write_file_atomic(path, "first version", 13, 0600), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_int_equal(sk_read_file(path, 1024, &data, &len), 0);
    assert_int_equal(len, 13);
    assert_string_equal(data, "first version");
    free(data);

    /* Replaced with shorter content and a mode that umask would normally mask. */
    mode_t old = umask(077);
    assert_int_equal(sk_write_file_atomic(path, "v2", 2, 0644), 0);
    umask(old);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644);
    assert_int_equal(sk_read_file(path, 1024, &data, &len), 0);
    assert_int_equal(len, 2);
    assert_string_equal(data, "v2");
    free(data);

    assert_int_equal(sk_write_file_atomic(path, "", 0, 0600), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 0);
    assert_int_equal(count_dir_entries(f->dir), 1); /* no temp files left */

    /* Failures leave no temp files either: target is a directory, or parent missing. */
    char sub[512];
    path_in(f, "adir", sub, sizeof sub);
    assert_int_equal(mkdir(sub, 0700), 0);
    assert_int_equal(sk_write_file_atomic(sub, "x", 1, 0600), -1);
    assert_int_equal(count_dir_entries(f->dir), 2);
    assert_int_equal(count_dir_entries(sub), 0);
    path_in(f, "nodir/file", sub, sizeof sub);
    assert_int_equal(sk_write_file_atomic(sub, "x", 1, 0600), -1);
    assert_int_equal(count_dir_entries(f->dir), 2);
}

static void test_read_file(void **state)
{
    fixture *f = *state;
    char path[512], *data = NULL;
    size_t len = 0;

    path_in(f, "f", path, sizeof path);
    write_raw(path, "0123456789", 10);
    assert_int_equal(sk_read_file(path, 10, &data, &len), 0);
    assert_int_equal(len, 10);
    assert_string_equal(data, "0123456789"); /* NUL-terminated */
    free(data);
    data = NULL;
    assert_int_equal(sk_read_file(path, 9, &data, &len), -1);
    assert_null(data);

    write_raw(path, "", 0);
    assert_int_equal(sk_read_file(path, 0, &data, &len), 0);
    assert_int_equal(len, 0);
    assert_string_equal(data, "");
    free(data);
    data = NULL;

    assert_int_equal(sk_read_file(f->dir, 1 << 20, &data, &len), -1);
    path_in(f, "missing", path, sizeof path);
    assert_int_equal(sk_read_file(path, 1 << 20, &data, &len), -1);
    assert_null(data);
}

static void test_mkdir_p(void **state)
{
    fixture *f = *state;
    char path[512], file[512];
    struct stat st;

    path_in(f, "a/b/c", path, sizeof path);
    assert_int_equal(sk_mkdir_p(path, 0700), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(sk_mkdir_p(path, 0700), 0); /* already there */
    path_in(f, "a/b/c/d/", path, sizeof path);
    assert_int_equal(sk_mkdir_p(path, 0700), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));

    /* A regular file in the way is an error, below it and at the end. */
    path_in(f, "plain", file, sizeof file);
    write_raw(file, "x", 1);
    path_in(f, "plain/sub", path, sizeof path);
    assert_int_equal(sk_mkdir_p(path, 0700), -1);
    assert_int_equal(sk_mkdir_p("", 0700), -1);
}

/* sk_mkdir_p(P) must fail when P exists but is not a directory, like mkdir -p. */
static void test_mkdir_p_existing_file(void **state)
{
    fixture *f = *state;
    char file[512];

    path_in(f, "plain", file, sizeof file);
    write_raw(file, "x", 1);
    assert_int_equal(sk_mkdir_p(file, 0700), -1);
}

/* Log lines as written to a captured stderr, with env set as given. */
static void capture_log(const char *journal_self, const char *format, char *out, size_t cap)
{
    char path[] = "/tmp/sk-test-log-XXXXXX", js[64];
    struct stat st;
    int fd = mkstemp(path), saved = dup(STDERR_FILENO);
    ssize_t n;
    assert_true(fd >= 0 && saved >= 0);
    assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
    assert_int_equal(fstat(fd, &st), 0);
    if (journal_self != NULL) {
        if (strcmp(journal_self, "self") == 0)
            assert_int_equal(sk_snprintf(js, sizeof js, "%llu:%llu", (unsigned long long)st.st_dev,
                                         (unsigned long long)st.st_ino), 0);
        else
            assert_int_equal(sk_strlcpy(js, sizeof js, journal_self), 0);
        assert_int_equal(setenv("JOURNAL_STREAM", js, 1), 0);
    } else {
        assert_int_equal(unsetenv("JOURNAL_STREAM"), 0);
    }
    if (format != NULL)
        assert_int_equal(setenv("SEKISHO_LOG_FORMAT", format, 1), 0);
    else
        assert_int_equal(unsetenv("SEKISHO_LOG_FORMAT"), 0);
    sk_log_setup();
    sk_log_set_level(SK_LOG_DEBUG);
    sk_log(SK_LOG_ERR, "e %d", 1);
    sk_log(SK_LOG_WARN, "w \"q\" \x1b");
    sk_log(SK_LOG_INFO, "i");
    sk_log(SK_LOG_DEBUG, "d");
    sk_log_set_level(SK_LOG_INFO);
    sk_log(SK_LOG_DEBUG, "not shown");
    fflush(stderr);
    assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
    close(saved);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    n = read(fd, out, cap - 1);
    assert_true(n > 0);
    out[n] = '\0';
    close(fd);
    unlink(path);
    unsetenv("JOURNAL_STREAM");
    unsetenv("SEKISHO_LOG_FORMAT");
    sk_log_setup();
}

static void test_log_formats(void **state)
{
    char out[2048];
    (void)state;
    /* journald: priorities, no time or pid */
    capture_log("self", NULL, out, sizeof out);
    assert_string_equal(out, "<3>error: e 1\n<4>warn: w \"q\" \\x1b\n<6>info: i\n<7>debug: d\n");
    /* JOURNAL_STREAM naming another stream (stderr redirected since): plain lines */
    capture_log("1:1", NULL, out, sizeof out);
    assert_null(strstr(out, "<3>"));
    assert_non_null(strstr(out, " sekisho["));
    assert_non_null(strstr(out, "] error: e 1\n"));
    capture_log("garbage", NULL, out, sizeof out);
    assert_non_null(strstr(out, "] warn: w"));
    /* JSON lines, escaped */
    capture_log(NULL, "json", out, sizeof out);
    assert_non_null(strstr(out, "{\"level\":\"error\",\"time\":\""));
    assert_non_null(strstr(out, "\"msg\":\"w \\\"q\\\" \\u001b\"}\n"));
    assert_null(strstr(out, "not shown"));
    /* JSON under journald */
    capture_log("self", "json", out, sizeof out);
    assert_string_equal(out, "<3>{\"level\":\"error\",\"msg\":\"e 1\"}\n"
                             "<4>{\"level\":\"warn\",\"msg\":\"w \\\"q\\\" \\u001b\"}\n"
                             "<6>{\"level\":\"info\",\"msg\":\"i\"}\n"
                             "<7>{\"level\":\"debug\",\"msg\":\"d\"}\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strlcpy),
        cmocka_unit_test(test_snprintf),
        cmocka_unit_test(test_buf_basic),
        cmocka_unit_test(test_buf_exact_fit_and_sticky_overflow),
        cmocka_unit_test(test_buf_html),
        cmocka_unit_test(test_parse_u64),
        cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_b64url_round_trip),
        cmocka_unit_test(test_b64url_known_and_rejects),
        cmocka_unit_test(test_secret_equal_and_random),
        cmocka_unit_test_setup_teardown(test_read_secret_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_file_atomic, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mkdir_p, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mkdir_p_existing_file, setup, teardown),
        cmocka_unit_test(test_log_formats),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
