/* Unit tests for sekisho_conf: defaults, every key, every error class with its
 * FILE:LINE, upstream URL forms, relative path resolution, reset on failure. */
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

/* The smallest file that loads: the three required paths. 5 lines. */
#define BASE "[listen]\ncert = c.pem\nkey = k.pem\n[tls]\nclient_ca = ca.pem\n"
#define BASE_LINES 5

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
    memcpy(f->dir, "/tmp/sk-test-conf-XXXXXX", sizeof "/tmp/sk-test-conf-XXXXXX");
    if (mkdtemp(f->dir) == NULL ||
        sk_snprintf(f->path, sizeof f->path, "%s/sekisho.conf", f->dir) != 0) {
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

static void write_text(const char *path, const char *text)
{
    size_t n = strlen(text);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, n), (ssize_t)n);
    assert_int_equal(close(fd), 0);
}

static int load_text(fixture *f, const char *text)
{
    write_text(f->path, text);
    memset(f->err, 0, sizeof f->err);
    memset(&f->c, 0x5a, sizeof f->c); /* garbage: load must initialise everything */
    return sk_conf_load(f->path, &f->c, f->err, sizeof f->err);
}

/* After a failed load the struct must be exactly the defaults (plus the file name). */
static void assert_defaults(const sk_conf *c)
{
    sk_conf d;
    sk_conf_defaults(&d);
    memcpy(d.file, c->file, sizeof d.file);
    assert_memory_equal(&d, c, sizeof d);
}

static void expect_error_at(fixture *f, const char *text, int line, const char *what)
{
    char prefix[600];
    if (load_text(f, text) != -1)
        fail_msg("config accepted, expected error \"%s\" at line %d:\n%s", what, line, text);
    if (line > 0)
        assert_int_equal(sk_snprintf(prefix, sizeof prefix, "%s:%d:", f->path, line), 0);
    else
        assert_int_equal(sk_snprintf(prefix, sizeof prefix, "%s:", f->path), 0);
    if (strncmp(f->err, prefix, strlen(prefix)) != 0)
        fail_msg("error \"%s\" does not start with \"%s\"", f->err, prefix);
    if (what != NULL && strstr(f->err, what) == NULL)
        fail_msg("error \"%s\" does not mention \"%s\"", f->err, what);
    assert_defaults(&f->c);
}

/* ---- defaults -------------------------------------------------------------------- */

static void test_defaults(void **state)
{
    sk_conf c;
    (void)state;
    memset(&c, 0x5a, sizeof c);
    sk_conf_defaults(&c);
    /* The numbers DESIGN.md fixes as defaults. */
    assert_string_equal(c.listen_address, "127.0.0.1:8443");
    assert_int_equal(c.lockout_threshold, 5);
    assert_true(c.lockout_duration == 30 * 60);
    assert_true(c.idle_timeout == 60 * 60);
    assert_true(c.absolute_timeout == 12 * 3600);
    assert_true(c.dormant_notify_after == 180 * 86400);
    assert_true(c.dormant_lock_after == 30 * 86400);
    assert_true(c.dormant_delete_after == 90 * 86400);
    assert_true(c.audit_retention == 365 * 86400);
    assert_int_equal(c.password_min_length, 8);
    assert_true(c.password_max_length >= 64);
    assert_int_equal(c.password_require_upper, 1);
    assert_int_equal(c.password_require_lower, 1);
    assert_int_equal(c.password_require_digit, 1);
    assert_string_equal(c.audit_timezone, "Asia/Tokyo");
    assert_string_equal(c.notify_command, "/usr/sbin/sendmail -t");
    assert_string_equal(c.upstream_url, "http://127.0.0.1:8080");
    assert_string_equal(c.state_dir, "/var/lib/sekisho");
    assert_string_equal(c.listen_cert, "");
    assert_string_equal(c.tls_crl, "");
    assert_int_equal(c.log_level, SK_LOG_INFO);
}

static void test_minimal_file(void **state)
{
    fixture *f = *state;
    char want[600];
    assert_int_equal(load_text(f, BASE), 0);
    assert_string_equal(f->c.file, f->path);
    assert_int_equal(sk_snprintf(want, sizeof want, "%s/c.pem", f->dir), 0);
    assert_string_equal(f->c.listen_cert, want);
    assert_string_equal(f->c.upstream_host, "127.0.0.1");
    assert_string_equal(f->c.upstream_port, "8080");
    assert_string_equal(f->c.upstream_prefix, "");
    assert_string_equal(f->c.audit_dir, "/var/lib/sekisho/audit");
    /* The audit key must never sit inside the audit directory auditors copy. */
    {
        char inside[SK_CONF_PATH_MAX + 2];
        assert_int_equal(sk_snprintf(inside, sizeof inside, "%s/", f->c.audit_dir), 0);
        assert_true(strncmp(f->c.audit_key, inside, strlen(inside)) != 0);
    }
    assert_int_equal(f->c.lockout_threshold, 5);
    assert_true(f->c.idle_timeout == 3600);

    /* CRLF line endings, a BOM, comments and blank lines are fine. */
    assert_int_equal(load_text(f, "\xef\xbb\xbf; comment\r\n# another\r\n\r\n[listen]\r\ncert = c.pem\r\n"
                                  "key = k.pem\r\n[tls]\r\nclient_ca = ca.pem\r\n"
                                  "[policy]\r\nlockout_threshold = 9 ; inline comment\r\n"),
                     0);
    assert_int_equal(f->c.lockout_threshold, 9);
    assert_int_equal(sk_snprintf(want, sizeof want, "%s/ca.pem", f->dir), 0);
    assert_string_equal(f->c.tls_client_ca, want);
}

/* ---- every key ----------------------------------------------------------------------- */

static const char every_key[] =
    "[listen]\n"
    "address = [::1]:9443\n"
    "cert = certs/server.crt\n"
    "key = /etc/sekisho/server.key\n"
    "max_connections = 77\n"
    "handshake_timeout = 20s\n"
    "request_timeout = 5m\n"
    "[tls]\n"
    "client_ca = ca.pem\n"
    "crl = /var/lib/ca/crl.pem\n"
    "session_lifetime = 2h\n"
    "[upstream]\n"
    "url = http://[::1]:8081/portal/\n"
    "timeout = 90\n"
    "keepalive = 0\n"
    "[state]\n"
    "dir = state\n"
    "[policy]\n"
    "lockout_threshold = 7\n"
    "lockout_duration = 45m\n"
    "idle_timeout = 30m\n"
    "absolute_timeout = 8h\n"
    "dormant_notify_after = 100d\n"
    "dormant_lock_after = 20d\n"
    "dormant_delete_after = 60d\n"
    "password_min_length = 12\n"
    "password_max_length = 200\n"
    "password_require_upper = no\n"
    "password_require_lower = false\n"
    "password_require_digit = off\n"
    "[auth]\n"
    "workers = 4\n"
    "queue = 10\n"
    "argon2_memory_kib = 19456\n"
    "argon2_iterations = 2\n"
    "argon2_parallelism = 2\n"
    "[notify]\n"
    "command = /usr/local/bin/mailer --flag\n"
    "[audit]\n"
    "dir = /var/log/sekisho-audit\n"
    "key = keys/audit.key\n"
    "retention = 400d\n"
    "timezone = UTC\n"
    "log_requests = no\n"
    "[log]\n"
    "level = debug\n";

static void test_every_key(void **state)
{
    fixture *f = *state;
    char want[600];
    const sk_conf *c = &f->c;

    if (load_text(f, every_key) != 0)
        fail_msg("every-key config refused: %s", f->err);
    assert_string_equal(c->listen_address, "[::1]:9443");
    assert_int_equal(sk_snprintf(want, sizeof want, "%s/certs/server.crt", f->dir), 0);
    assert_string_equal(c->listen_cert, want);
    assert_string_equal(c->listen_key, "/etc/sekisho/server.key");
    assert_int_equal(c->max_connections, 77);
    assert_true(c->handshake_timeout == 20);
    assert_true(c->request_timeout == 300);
    assert_int_equal(sk_snprintf(want, sizeof want, "%s/ca.pem", f->dir), 0);
    assert_string_equal(c->tls_client_ca, want);
    assert_string_equal(c->tls_crl, "/var/lib/ca/crl.pem");
    assert_true(c->tls_session_lifetime == 7200);
    assert_string_equal(c->upstream_url, "http://[::1]:8081/portal/");
    assert_string_equal(c->upstream_host, "::1");
    assert_string_equal(c->upstream_port, "8081");
    assert_string_equal(c->upstream_prefix, "/portal");
    assert_true(c->upstream_timeout == 90);
    assert_int_equal(c->upstream_keepalive, 0);
    assert_int_equal(sk_snprintf(want, sizeof want, "%s/state", f->dir), 0);
    assert_string_equal(c->state_dir, want);
    assert_int_equal(c->lockout_threshold, 7);
    assert_true(c->lockout_duration == 45 * 60);
    assert_true(c->idle_timeout == 30 * 60);
    assert_true(c->absolute_timeout == 8 * 3600);
    assert_true(c->dormant_notify_after == 100 * 86400);
    assert_true(c->dormant_lock_after == 20 * 86400);
    assert_true(c->dormant_delete_after == 60 * 86400);
    assert_int_equal(c->password_min_length, 12);
    assert_int_equal(c->password_max_length, 200);
    assert_int_equal(c->password_require_upper, 0);
    assert_int_equal(c->password_require_lower, 0);
    assert_int_equal(c->password_require_digit, 0);
    assert_int_equal(c->auth_workers, 4);
    assert_int_equal(c->auth_queue, 10);
    assert_int_equal(c->argon2_memory_kib, 19456);
    assert_int_equal(c->argon2_iterations, 2);
    assert_int_equal(c->argon2_parallelism, 2);
    assert_string_equal(c->notify_command, "/usr/local/bin/mailer --flag");
    assert_string_equal(c->audit_dir, "/var/log/sekisho-audit");
    assert_int_equal(sk_snprintf(want, sizeof want, "%s/keys/audit.key", f->dir), 0);
    assert_string_equal(c->audit_key, want);
    assert_true(c->audit_retention == 400 * 86400);
    assert_string_equal(c->audit_timezone, "UTC");
    assert_int_equal(c->audit_log_requests, 0);
    assert_int_equal(c->log_level, SK_LOG_DEBUG);
}

static void test_bool_and_level_words(void **state)
{
    fixture *f = *state;
    static const char *const yes[] = { "yes", "true", "on", "1" };
    static const char *const no[] = { "no", "false", "off", "0" };
    static const struct { const char *word; int level; } levels[] = {
        { "error", SK_LOG_ERR }, { "warn", SK_LOG_WARN }, { "info", SK_LOG_INFO }, { "debug", SK_LOG_DEBUG },
    };
    char text[512];
    for (size_t i = 0; i < SK_ARRAY_LEN(yes); i++) {
        assert_int_equal(sk_snprintf(text, sizeof text, BASE "[audit]\nlog_requests = %s\n"
                                     "[policy]\npassword_require_upper = %s\n", no[i], yes[i]), 0);
        assert_int_equal(load_text(f, text), 0);
        assert_int_equal(f->c.audit_log_requests, 0);
        assert_int_equal(f->c.password_require_upper, 1);
        assert_int_equal(sk_snprintf(text, sizeof text, BASE "[audit]\nlog_requests = %s\n", yes[i]), 0);
        assert_int_equal(load_text(f, text), 0);
        assert_int_equal(f->c.audit_log_requests, 1);
    }
    for (size_t i = 0; i < SK_ARRAY_LEN(levels); i++) {
        assert_int_equal(sk_snprintf(text, sizeof text, BASE "[log]\nlevel = %s\n", levels[i].word), 0);
        assert_int_equal(load_text(f, text), 0);
        assert_int_equal(f->c.log_level, levels[i].level);
    }
}

/* ---- errors ------------------------------------------------------------------------------- */

static void test_errors_with_line(void **state)
{
    fixture *f = *state;
    static const struct {
        const char *text;
        int line;
        const char *what;
    } cases[] = {
        { BASE "[policy]\nbogus = 1\n", BASE_LINES + 2, "unknown key" },
        /* Reported at the section header, the line that is wrong. */
        { BASE "[bogus]\nx = 1\n", BASE_LINES + 1, "bogus" },
        { "top = level\n" BASE, 1, "unknown key" },
        { BASE "[policy]\nlockout_threshold = 3\n\nlockout_threshold = 4\n", BASE_LINES + 4, "duplicate" },
        /* A section opened twice still may not repeat a key. */
        { BASE "[policy]\nidle_timeout = 30m\n[auth]\nworkers = 2\n[policy]\nidle_timeout = 20m\n",
          BASE_LINES + 6, "duplicate" },
        { "[listen]\ncert = c.pem\ncert = d.pem\nkey = k.pem\n[tls]\nclient_ca = ca.pem\n", 3, "duplicate" },
        { BASE "[policy]\nidle_timeout = 1x\n", BASE_LINES + 2, "idle_timeout" },
        { BASE "[policy]\nidle_timeout = 59s\n", BASE_LINES + 2, "idle_timeout" },
        { BASE "[policy]\nidle_timeout = 2d\n", BASE_LINES + 2, "idle_timeout" },
        { BASE "[policy]\nidle_timeout =\n", BASE_LINES + 2, "idle_timeout" },
        { BASE "[policy]\nlockout_duration = -5m\n", BASE_LINES + 2, "lockout_duration" },
        { BASE "[policy]\nlockout_threshold = 0\n", BASE_LINES + 2, "lockout_threshold" },
        { BASE "[policy]\nlockout_threshold = 101\n", BASE_LINES + 2, "lockout_threshold" },
        { BASE "[policy]\nlockout_threshold = 5x\n", BASE_LINES + 2, "lockout_threshold" },
        { BASE "[policy]\nlockout_threshold = 99999999999999999999999\n", BASE_LINES + 2, "lockout_threshold" },
        { BASE "[listen]\nmax_connections = abc\n", BASE_LINES + 2, "max_connections" },
        { BASE "[auth]\n\n\nargon2_memory_kib = 1023\n", BASE_LINES + 4, "argon2_memory_kib" },
        { BASE "[policy]\npassword_min_length = 7\n", BASE_LINES + 2, "password_min_length" },
        { BASE "[policy]\npassword_require_digit = maybe\n", BASE_LINES + 2, "password_require_digit" },
        { BASE "[policy]\npassword_require_digit = 2\n", BASE_LINES + 2, "password_require_digit" },
        { BASE "[audit]\nlog_requests =\n", BASE_LINES + 2, "log_requests" },
        { BASE "[log]\nlevel = verbose\n", BASE_LINES + 2, "level" },
        { BASE "[audit]\ntimezone = "
               "Aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/Zone\n",
          BASE_LINES + 2, "timezone" },
        { BASE "this line has no equals sign\n", BASE_LINES + 1, NULL },
        { BASE "[unterminated\n", BASE_LINES + 1, NULL },
    };
    for (size_t i = 0; i < SK_ARRAY_LEN(cases); i++)
        expect_error_at(f, cases[i].text, cases[i].line, cases[i].what);
}

/* Every refused value says what is allowed, at its line (issue 11, item 5). */
static void test_teaching_errors(void **state)
{
    fixture *f = *state;
    static const struct {
        const char *text;
        int line;
        const char *what;
    } cases[] = {
        { BASE "[policy]\nidle_timeout = 5s\n", BASE_LINES + 2,
          "[policy] idle_timeout = 5s: must be between 60s and 1d" },
        { BASE "[policy]\nlockout_threshold = 0\n", BASE_LINES + 2,
          "lockout_threshold = 0: must be a whole number between 1 and 100" },
        { BASE "[listen]\nhandshake_timeout = 1h\n", BASE_LINES + 2, "must be between 1s and 300s" },
        { BASE "[policy]\nabsolute_timeout = 30s\n", BASE_LINES + 2, "must be between 60s and 30d" },
        { BASE "[audit]\ntimezone = Asia/Tokio\n", BASE_LINES + 2, "timezone = Asia/Tokio: unknown time zone" },
        { BASE "[audit]\ntimezone = ../../etc/passwd\n", BASE_LINES + 2, "unknown time zone" },
        { BASE "[audit]\ntimezone = /etc/localtime\n", BASE_LINES + 2, "unknown time zone" },
        { BASE "[listen]\naddress = 127.0.0.1:99999\n", BASE_LINES + 2, "PORT between 1 and 65535" },
        { BASE "[listen]\naddress = 127.0.0.1\n", BASE_LINES + 2, "address = 127.0.0.1: must be" },
        { BASE "[listen]\naddress = [::1:8443\n", BASE_LINES + 2, "[listen] address" },
        { BASE "\n[upstream]\nurl = http://127.0.0.1:99999\n", BASE_LINES + 3,
          "url = http://127.0.0.1:99999: must be http://HOST[:PORT][/PREFIX]" },
        { BASE "[access]\nallow = 10.0.0.0/8, 10.1.2.3/33\n", BASE_LINES + 2, "'10.1.2.3/33' is not a CIDR" },
        { BASE "[log]\nlevel = loud\n", BASE_LINES + 2, "must be one of error, warn, info, debug" },
        { BASE "[policy]\npassword_require_digit = maybe\n", BASE_LINES + 2, "must be yes or no" },
        { BASE "[policy]\nlockout_threshold = 3\nlockout_threshold = 4\n", BASE_LINES + 3, "first on line 7" },
        { BASE "[tenant.acme]\nhost = a_b\n", BASE_LINES + 2, "must be host names" },
        { BASE "[tenant.Acme]\nhost = a\n", BASE_LINES + 2, "tenant name must be" },
        { BASE "[access]\npath_rule = /admin root\n", BASE_LINES + 2, "roles admin, general" },
        { BASE "[policy]\npassword_min_length = 30\npassword_max_length = 25\n", BASE_LINES + 3,
          "password_max_length = 25: must be at least password_min_length (30)" },
        { BASE "[policy]\nidle_timeout = 2h\nabsolute_timeout = 1h\n", BASE_LINES + 2,
          "idle_timeout = 2h: must not exceed absolute_timeout (1h)" },
    };
    for (size_t i = 0; i < SK_ARRAY_LEN(cases); i++)
        expect_error_at(f, cases[i].text, cases[i].line, cases[i].what);
    /* Values the checks must keep accepting. */
    assert_int_equal(load_text(f, BASE "[audit]\ntimezone = UTC\n[listen]\naddress = :8443\n"), 0);
    assert_int_equal(load_text(f, BASE "[audit]\ntimezone = Europe/Berlin\n[listen]\naddress = [::1]:8443\n"), 0);
    assert_int_equal(load_text(f, BASE "[listen]\naddress = portal.example:443\n"), 0);
}

static void test_semantic_errors(void **state)
{
    fixture *f = *state;
    static const struct { const char *text; const char *what; } cases[] = {
        { "[listen]\nkey = k.pem\n[tls]\nclient_ca = ca.pem\n", "cert" },
        { "[listen]\ncert = c.pem\n[tls]\nclient_ca = ca.pem\n", "key" },
        { "[listen]\ncert = c.pem\nkey = k.pem\n", "client_ca" },
        { "[listen]\ncert = c.pem\nkey =\n[tls]\nclient_ca = ca.pem\n", "key" },
        { BASE "[policy]\npassword_min_length = 100\npassword_max_length = 64\n", "password_max_length" },
        { BASE "[policy]\nidle_timeout = 2h\nabsolute_timeout = 1h\n", "idle_timeout" },
    };
    for (size_t i = 0; i < SK_ARRAY_LEN(cases); i++)
        expect_error_at(f, cases[i].text, 0, cases[i].what);
}

static void test_missing_file(void **state)
{
    fixture *f = *state;
    char path[600];
    assert_int_equal(sk_snprintf(path, sizeof path, "%s/nope.conf", f->dir), 0);
    memset(&f->c, 0x5a, sizeof f->c);
    assert_int_equal(sk_conf_load(path, &f->c, f->err, sizeof f->err), -1);
    assert_non_null(strstr(f->err, path));
    assert_defaults(&f->c);
    /* A directory is not a configuration file. */
    assert_int_equal(sk_conf_load(f->dir, &f->c, f->err, sizeof f->err), -1);
    assert_defaults(&f->c);
}

/* A failed load after a good one must not leave anything of the bad file behind. */
static void test_failure_resets_to_defaults(void **state)
{
    fixture *f = *state;
    assert_int_equal(load_text(f, every_key), 0);
    assert_int_equal(load_text(f, BASE "[policy]\nlockout_threshold = 9\nidle_timeout = 45m\n"
                                       "[upstream]\nurl = http://10.0.0.1:81/x\n[log]\nlevel = loud\n"),
                     -1);
    assert_defaults(&f->c);
    assert_int_equal(f->c.lockout_threshold, 5);
    /* A tiny error buffer is cut, not overrun. */
    char small[12];
    memset(small, 'Z', sizeof small);
    write_text(f->path, BASE "[policy]\nbogus = 1\n");
    assert_int_equal(sk_conf_load(f->path, &f->c, small, 8), -1);
    assert_int_equal(small[7], '\0');
    assert_int_equal(small[8], 'Z');
}

static void test_line_length(void **state)
{
    fixture *f = *state;
    char text[2048], value[400];

    /* 150 characters of value on a line is fine. */
    memset(value, 'a', 150);
    value[150] = '\0';
    assert_int_equal(sk_snprintf(text, sizeof text, BASE "[notify]\ncommand = /%s\n", value), 0);
    assert_int_equal(load_text(f, text), 0);
    assert_int_equal(strlen(f->c.notify_command), 151);

    /* A 250-character value line must be refused, not split or truncated. */
    memset(value, 'a', 250);
    value[250] = '\0';
    assert_int_equal(sk_snprintf(text, sizeof text, BASE "[notify]\ncommand = /%s\n", value), 0);
    expect_error_at(f, text, BASE_LINES + 2, NULL);
    /* ... also when it is the last line without a newline. */
    assert_int_equal(sk_snprintf(text, sizeof text, BASE "[notify]\ncommand = /%s", value), 0);
    expect_error_at(f, text, BASE_LINES + 2, NULL);
}

/* An overlong line must be reported at its own line number whatever it holds. */
static void test_line_too_long_line_number(void **state)
{
    fixture *f = *state;
    char text[2048], value[400];

    memset(value, 'a', 250);
    value[250] = '\0';
    /* A comment line: the handler is never called for its first piece. */
    assert_int_equal(sk_snprintf(text, sizeof text, "[listen]\ncert = c.pem\n# %s\nkey = k.pem\n"
                                 "[tls]\nclient_ca = ca.pem\n", value), 0);
    expect_error_at(f, text, 3, NULL);
    /* A key line where the tail of the line also contains '='. */
    memset(value + 220, '=', 1);
    assert_int_equal(sk_snprintf(text, sizeof text, BASE "[notify]\n\ncommand = /%s\n", value), 0);
    expect_error_at(f, text, BASE_LINES + 3, NULL);
}

/* With several mistakes in a file, the first one is the one reported: later lines
 * may only be wrong as a consequence of it (here: a broken section header makes the
 * next key land in the previous section). */
static void test_first_error_reported(void **state)
{
    fixture *f = *state;
    expect_error_at(f, BASE "[policy]\nbogus = 1\nalso_bogus = 2\n", BASE_LINES + 2, "bogus");
    expect_error_at(f, BASE "[policy]\nidle_timeout = 1x\nlockout_threshold = 0\n", BASE_LINES + 2,
                    "idle_timeout");
    expect_error_at(f, BASE "[policy\nidle_timeout = 30m\n", BASE_LINES + 1, NULL);
}

/* Unknown sections are errors even when no key follows them (sk_conf.h contract). */
static void test_unknown_empty_section(void **state)
{
    fixture *f = *state;
    expect_error_at(f, BASE "[polcy]\n", BASE_LINES + 1, "polcy");
}

/* ---- upstream URL ------------------------------------------------------------------------------ */

static void test_upstream_urls(void **state)
{
    fixture *f = *state;
    static const struct { const char *url, *host, *port, *prefix; } ok[] = {
        { "http://127.0.0.1:8080", "127.0.0.1", "8080", "" },
        { "http://portal.internal", "portal.internal", "80", "" },
        { "http://[::1]:8080", "::1", "8080", "" },
        { "http://[fd00::1]", "fd00::1", "80", "" },
        { "http://[::1]:8080/app/", "::1", "8080", "/app" },
        { "http://h:1/app", "h", "1", "/app" },
        { "http://h:65535/a/b//", "h", "65535", "/a/b" },
        { "http://h/", "h", "80", "" },
    };
    static const char *const bad[] = {
        "https://h", "ftp://h", "http://", "http:///app", "http://:8080", "http://h:0", "http://h:65536",
        "http://h:abc", "http://h:", "http://h:-1", "http://h:8080:90", "http://[::1", "http://[::1]x",
        "http://[::1]:", "http://[]:80", "http://h/a b", "http://h/a?x=1", "http://h/a#frag", "h:8080",
        "//h:8080", "http://h:123456",
    };
    char text[1024];

    for (size_t i = 0; i < SK_ARRAY_LEN(ok); i++) {
        assert_int_equal(sk_snprintf(text, sizeof text, BASE "[upstream]\nurl = %s\n", ok[i].url), 0);
        if (load_text(f, text) != 0)
            fail_msg("url %s refused: %s", ok[i].url, f->err);
        assert_string_equal(f->c.upstream_host, ok[i].host);
        assert_string_equal(f->c.upstream_port, ok[i].port);
        assert_string_equal(f->c.upstream_prefix, ok[i].prefix);
    }
    for (size_t i = 0; i < SK_ARRAY_LEN(bad); i++) {
        assert_int_equal(sk_snprintf(text, sizeof text, BASE "[upstream]\nurl = %s\n", bad[i]), 0);
        if (load_text(f, text) != -1)
            fail_msg("url \"%s\" accepted (host \"%s\" port \"%s\" prefix \"%s\")", bad[i],
                     f->c.upstream_host, f->c.upstream_port, f->c.upstream_prefix);
        assert_non_null(strstr(f->err, "[upstream] url"));
        assert_int_equal(strncmp(f->err, f->path, strlen(f->path)), 0);
        assert_defaults(&f->c);
    }
}

/* ---- paths ------------------------------------------------------------------------------------ */

static void test_relative_paths(void **state)
{
    fixture *f = *state;
    char want[600], cwd[1024];

    assert_int_equal(load_text(f, BASE "[state]\ndir = var/state\n[tls]\ncrl = ../crl.pem\n"), 0);
    assert_int_equal(sk_snprintf(want, sizeof want, "%s/var/state", f->dir), 0);
    assert_string_equal(f->c.state_dir, want);
    assert_int_equal(sk_snprintf(want, sizeof want, "%s/var/state/audit", f->dir), 0);
    assert_string_equal(f->c.audit_dir, want);
    assert_int_equal(sk_snprintf(want, sizeof want, "%s/../crl.pem", f->dir), 0);
    assert_string_equal(f->c.tls_crl, want);
    assert_int_equal(sk_snprintf(want, sizeof want, "%s/k.pem", f->dir), 0);
    assert_string_equal(f->c.listen_key, want);
    /* Strings that are not paths are never rewritten. */
    assert_int_equal(load_text(f, BASE "[notify]\ncommand = mailer -t\n[audit]\ntimezone = Asia/Tokyo\n"), 0);
    assert_string_equal(f->c.notify_command, "mailer -t");
    assert_string_equal(f->c.audit_timezone, "Asia/Tokyo");
    assert_string_equal(f->c.notify_outbox, ""); /* default: mail goes through the command */
    /* [notify] outbox is a path like the others (issue 9: mail from the sandbox). */
    assert_int_equal(load_text(f, BASE "[notify]\noutbox = mail/outbox\n"), 0);
    assert_int_equal(sk_snprintf(want, sizeof want, "%s/mail/outbox", f->dir), 0);
    assert_string_equal(f->c.notify_outbox, want);

    /* A config named without a directory resolves against ".". */
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(f->dir), 0);
    assert_int_equal(sk_conf_load("sekisho.conf", &f->c, f->err, sizeof f->err), 0);
    assert_int_equal(chdir(cwd), 0);
    assert_string_equal(f->c.listen_cert, "./c.pem");
    assert_string_equal(f->c.file, "sekisho.conf");
    expect_error_at(f, BASE "[notify]\noutbox_dir = /x\n", BASE_LINES + 2, "outbox_dir");
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        T(test_minimal_file),
        T(test_every_key),
        T(test_bool_and_level_words),
        T(test_errors_with_line),
        T(test_semantic_errors),
        T(test_missing_file),
        T(test_failure_resets_to_defaults),
        T(test_line_length),
        T(test_line_too_long_line_number),
        T(test_first_error_reported),
        T(test_unknown_empty_section),
        T(test_upstream_urls),
        T(test_teaching_errors),
        T(test_relative_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
