/* Unit tests for the audit log: escaping, chaining, signing, verification,
 * recovery, retention, aggregation, key handling and the entry parser. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "audit_int.h"
#include "sk_audit.h"

/* The fake clock runs in 2025, long before the key was made: without this every
 * open would start with an epoch handoff (tested on its own below). */
#define NO_EVOLUTION 0x7fffffffu

/* ---- fixture ----------------------------------------------------------- */

struct fx {
    char root[256];
    char dir[300];
    char key[300];
    char pub[310];
    uint8_t pubraw[32];
    int64_t clock;
};

static int64_t fake_clock(void *ctx)
{
    return ((struct fx *)ctx)->clock;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    char keyid[65];
    const char *tmp = getenv("TMPDIR");
    assert_non_null(f);
    assert_int_equal(snprintf(f->root, sizeof(f->root), "%s/skaudit-XXXXXX", tmp ? tmp : "/tmp") > 0, 1);
    assert_non_null(mkdtemp(f->root));
    assert_true(snprintf(f->dir, sizeof(f->dir), "%s/audit", f->root) > 0);
    assert_true(snprintf(f->key, sizeof(f->key), "%s/audit.key", f->root) > 0);
    assert_true(snprintf(f->pub, sizeof(f->pub), "%s.pub", f->key) > 0);
    assert_int_equal(sk_audit_keygen(f->key, f->dir, NULL, 0), 0);
    assert_int_equal(sk_audit_pubkey_load(f->pub, f->pubraw, keyid), 0);
    f->clock = 1735689600000LL + 3600 * 1000; /* 2025-01-01T01:00Z */
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[400];
    assert_true(snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->root) > 0);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static sk_audit *open_log(struct fx *f, uint32_t every)
{
    sk_audit_options o;
    sk_audit *a = NULL;
    char err[256] = "";
    memset(&o, 0, sizeof(o));
    o.dir = f->dir;
    o.key_path = f->key;
    o.checkpoint_every = every;
    o.clock_ms = fake_clock;
    o.clock_ctx = f;
    o.epoch_secs = NO_EVOLUTION;
    o.retention_secs = 3 * 86400;
    if (sk_audit_open(&o, &a, err, sizeof(err)) != 0)
        print_error("open: %s\n", err);
    assert_non_null(a);
    return a;
}

static uint64_t add(sk_audit *a, const char *ev, const char *actor, const char *k, const char *v)
{
    sk_audit_kv kv = {k, v};
    sk_audit_event e = {.event = ev, .actor = actor, .tenant = "acme", .peer = "192.0.2.1",
                        .serial = "0A1B", .kv = k ? &kv : NULL, .n_kv = k ? 1 : 0};
    uint64_t seq = 0;
    assert_int_equal(sk_audit_append(a, &e, 1, &seq), 0);
    return seq;
}

static sk_audit_verdict verify(struct fx *f)
{
    sk_audit_verdict v;
    assert_int_equal(sk_audit_verify(f->dir, f->pubraw, &v), 0);
    return v;
}

/* Verify "now" on the fixture's clock (a writer still running at that time). */
static sk_audit_verdict verify_at(struct fx *f)
{
    sk_audit_verdict v;
    sk_audit_verify_opts vo = {.now_ms = f->clock};
    assert_int_equal(sk_audit_verify_ex(f->dir, f->pubraw, &vo, &v), 0);
    return v;
}

/* The single segment file of the fixture (all tests run on one fake day). */
static void seg_path(struct fx *f, char *out, size_t cap)
{
    assert_true(snprintf(out, cap, "%s/audit-20250101.jsonl", f->dir) > 0);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    char *b;
    long n;
    assert_non_null(fp);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    n = ftell(fp);
    assert_true(n >= 0);
    rewind(fp);
    b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, fp), (size_t)n);
    b[n] = '\0';
    fclose(fp);
    *len = (size_t)n;
    return b;
}

static void spit(const char *path, const char *b, size_t n)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(b, 1, n, fp), n);
    assert_int_equal(fclose(fp), 0);
}

/* Pointer to the start of line `no` (1-based) in b. */
static char *line_at(char *b, int no)
{
    char *p = b;
    for (int i = 1; i < no; i++) {
        p = strchr(p, '\n');
        assert_non_null(p);
        p++;
    }
    return p;
}

static int count_lines(const char *b)
{
    int n = 0;
    for (; *b; b++)
        n += *b == '\n';
    return n;
}

/* ---- tests ------------------------------------------------------------- */

static void test_chain_and_checkpoints(void **state)
{
    struct fx *f = *state;
    sk_audit *a = open_log(f, 5);
    sk_audit_reader *r = NULL;
    sk_audit_entry e;
    const char *line;
    char prev[65], err[200];
    int k, n = 0, cps = 0;
    uint64_t last = 0;

    for (int i = 0; i < 12; i++)
        last = add(a, SK_AUDIT_EV_LOGIN_OK, "alice", "i", "x");
    assert_int_equal(sk_audit_last_seq(a), last);
    sk_audit_close(a);

    memset(&e, 0, sizeof(e));
    memcpy(prev, AUDIT_ZERO_HASH, sizeof(prev));
    assert_int_equal(sk_audit_reader_open(f->dir, &r, err, sizeof(err)), 0);
    while ((k = sk_audit_reader_next(r, &e, &line, err, sizeof(err))) == 1) {
        n++;
        assert_int_equal(e.seq, (uint64_t)n);
        assert_true(e.hash_ok);
        assert_string_equal(e.prev, prev);
        memcpy(prev, e.hash, sizeof(prev));
        if (e.has_sig) {
            cps++;
            assert_true(sk_audit_check_sig(line, &e, f->pubraw));
        }
    }
    assert_int_equal(k, 0);
    sk_audit_entry_free(&e);
    sk_audit_reader_close(r);
    /* header + 12 events; checkpoints after every 5 counted entries and at close */
    assert_true(cps >= 3);
    {
        sk_audit_verdict v = verify(f);
        assert_int_equal(v.problem, SK_AUDIT_OK);
        assert_int_equal(v.first_seq, 1);
        assert_int_equal(v.last_seq, (uint64_t)n);
        assert_int_equal(v.checkpoints, (unsigned)cps);
        assert_int_equal(v.last_signed_seq, (uint64_t)n); /* close signs the tail */
    }
}

static void test_escaping_cannot_forge(void **state)
{
    struct fx *f = *state;
    const char *evil = "bob\n{\"seq\":99,\"ev\":\"login.success\"}\r\x1b[31m\"\\\xff\xc0\x80 \xe6\x97\xa5\x7f\xf0\x9f\x98\x80";
    sk_audit *a = open_log(f, 1000);
    sk_audit_reader *r = NULL;
    sk_audit_entry e;
    const char *line;
    char path[400], err[200];
    size_t len;
    char *b;
    int found = 0, k;
    sk_audit_kv kv[2] = {{"path", "/a\nb"}, {"x\"y", NULL}};
    sk_audit_event ev = {.event = SK_AUDIT_EV_LOGIN_FAIL, .actor = evil, .kv = kv, .n_kv = 2,
                         .details_json = "{\"reason\":\"bad_password\",\"n\":3}"};

    assert_int_equal(sk_audit_append(a, &ev, 1, NULL), 0);
    assert_int_equal(sk_audit_request(a, "u", "t", "::1", NULL, "GET", "/x\n\"}", 200, 10, 5), 0);
    sk_audit_close(a);
    seg_path(f, path, sizeof(path));
    b = slurp(path, &len);
    /* header, event, request, close checkpoint: exactly 4 lines, all ASCII */
    assert_int_equal(count_lines(b), 4);
    for (size_t i = 0; i < len; i++)
        assert_true((unsigned char)b[i] < 0x80 && (b[i] == '\n' || (unsigned char)b[i] >= 0x20));
    free(b);

    memset(&e, 0, sizeof(e));
    assert_int_equal(sk_audit_reader_open(f->dir, &r, err, sizeof(err)), 0);
    while ((k = sk_audit_reader_next(r, &e, &line, err, sizeof(err))) == 1) {
        if (strcmp(e.event, SK_AUDIT_EV_LOGIN_FAIL) == 0) {
            found = 1;
            /* invalid UTF-8 became U+FFFD, valid UTF-8 kept */
            assert_string_equal(e.actor, "bob\n{\"seq\":99,\"ev\":\"login.success\"}\r\x1b[31m\"\\"
                                         "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd \xe6\x97\xa5\x7f\xf0\x9f\x98\x80");
            assert_non_null(strstr(e.details, "\"reason\":\"bad_password\""));
            assert_non_null(strstr(e.details, "\"path\":\"/a\\nb\""));
            assert_non_null(strstr(e.details, "\"x\\\"y\":null"));
        }
    }
    assert_int_equal(k, 0);
    assert_true(found);
    sk_audit_entry_free(&e);
    sk_audit_reader_close(r);
    assert_int_equal(verify(f).problem, SK_AUDIT_OK);
}

static void test_bad_details_and_args(void **state)
{
    struct fx *f = *state;
    sk_audit *a = open_log(f, 1000);
    sk_audit_event ev = {.event = "x", .details_json = "[1,2]"};
    sk_audit_event ev2 = {.event = "x", .details_json = "{\"a\":"};
    sk_audit_event ev3 = {.event = NULL};
    assert_int_equal(sk_audit_append(a, &ev, 1, NULL), -1);
    assert_int_equal(sk_audit_append(a, &ev2, 1, NULL), -1);
    assert_int_equal(sk_audit_append(a, &ev3, 1, NULL), -1);
    assert_int_equal(sk_audit_append(NULL, &ev, 1, NULL), -1);
    sk_audit_close(a);
    assert_int_equal(verify(f).problem, SK_AUDIT_OK);
}

static void test_long_field_is_cut(void **state)
{
    struct fx *f = *state;
    sk_audit *a = open_log(f, 1000);
    char *big = malloc(100000);
    sk_audit_reader *r = NULL;
    sk_audit_entry e;
    const char *line;
    char err[200];
    int k, seen = 0;
    assert_non_null(big);
    memset(big, 'A', 99999);
    big[99999] = '\0';
    add(a, SK_AUDIT_EV_LOGIN_FAIL, big, "path", big);
    sk_audit_close(a);
    memset(&e, 0, sizeof(e));
    assert_int_equal(sk_audit_reader_open(f->dir, &r, err, sizeof(err)), 0);
    while ((k = sk_audit_reader_next(r, &e, &line, err, sizeof(err))) == 1)
        if (strcmp(e.event, SK_AUDIT_EV_LOGIN_FAIL) == 0) {
            seen = 1;
            assert_int_equal(strlen(e.actor), SK_AUDIT_MAX_FIELD + 8);
            assert_string_equal(e.actor + SK_AUDIT_MAX_FIELD, "...[cut]");
        }
    assert_int_equal(k, 0);
    assert_true(seen);
    sk_audit_entry_free(&e);
    sk_audit_reader_close(r);
    free(big);
}

/* Write a small log and return its segment content. */
static char *small_log(struct fx *f, size_t *len, char *path, size_t cap)
{
    sk_audit *a = open_log(f, 4);
    for (int i = 0; i < 10; i++)
        add(a, SK_AUDIT_EV_LOGIN_OK, "alice", "i", "v");
    sk_audit_close(a);
    seg_path(f, path, cap);
    return slurp(path, len);
}

static void test_verify_edit(void **state)
{
    struct fx *f = *state;
    char path[400];
    size_t len;
    char *b = small_log(f, &len, path, sizeof(path));
    char *l3 = line_at(b, 3), *p = strstr(l3, "alice");
    sk_audit_verdict v;
    assert_non_null(p);
    assert_true(p < line_at(b, 4));
    p[0] = 'A'; /* same length, different content */
    spit(path, b, len);
    v = verify(f);
    assert_int_equal(v.problem, SK_AUDIT_EDITED);
    assert_int_equal(v.line, 3);
    assert_int_equal(v.seq, 3);
    assert_string_equal(v.segment, "audit-20250101.jsonl");
    free(b);
}

static void test_verify_delete(void **state)
{
    struct fx *f = *state;
    char path[400];
    size_t len;
    char *b = small_log(f, &len, path, sizeof(path));
    char *l4 = line_at(b, 4), *l5 = line_at(b, 5);
    sk_audit_verdict v;
    memmove(l4, l5, len - (size_t)(l5 - b) + 1);
    spit(path, b, strlen(b));
    v = verify(f);
    assert_int_equal(v.problem, SK_AUDIT_DELETED);
    assert_int_equal(v.line, 4);
    assert_int_equal(v.seq, 5);
    free(b);
}

static void test_verify_reorder(void **state)
{
    struct fx *f = *state;
    char path[400];
    size_t len;
    char *b = small_log(f, &len, path, sizeof(path));
    char *l3 = line_at(b, 3), *l4 = line_at(b, 4), *l5 = line_at(b, 5);
    size_t n3 = (size_t)(l4 - l3), n4 = (size_t)(l5 - l4);
    char *tmp = malloc(n3 + n4);
    sk_audit_verdict v;
    assert_non_null(tmp);
    memcpy(tmp, l4, n4);
    memcpy(tmp + n4, l3, n3);
    memcpy(l3, tmp, n3 + n4);
    free(tmp);
    spit(path, b, len);
    v = verify(f);
    assert_int_equal(v.problem, SK_AUDIT_REORDERED);
    assert_int_equal(v.line, 3);
    assert_int_equal(v.seq, 4);
    free(b);
}

static void test_verify_truncated_tail(void **state)
{
    struct fx *f = *state;
    char path[400];
    size_t len;
    char *b = small_log(f, &len, path, sizeof(path));
    int lines = count_lines(b);
    sk_audit_verdict v;
    spit(path, b, len - 10);
    v = verify(f);
    assert_int_equal(v.problem, SK_AUDIT_TRUNCATED_TAIL);
    assert_int_equal(v.line, (uint64_t)lines);
    free(b);
}

static void test_verify_bad_signature(void **state)
{
    struct fx *f = *state;
    char path[400];
    size_t len;
    char *b = small_log(f, &len, path, sizeof(path));
    char *p = strstr(b, "\"sig\":\"");
    int lineno = 1;
    sk_audit_verdict v;
    assert_non_null(p);
    for (char *q = b; q < p; q++)
        lineno += *q == '\n';
    p += 10;
    *p = *p == 'A' ? 'B' : 'A';
    spit(path, b, len);
    v = verify(f);
    assert_int_equal(v.problem, SK_AUDIT_BAD_SIGNATURE);
    assert_int_equal(v.line, (uint64_t)lineno);
    free(b);
}

static void test_verify_other_key(void **state)
{
    struct fx *f = *state;
    char path[400], k2[400], p2[410], keyid[65];
    uint8_t pub2[32];
    size_t len;
    char *b = small_log(f, &len, path, sizeof(path));
    sk_audit_verdict v;
    assert_true(snprintf(k2, sizeof(k2), "%s/other.key", f->root) > 0);
    assert_true(snprintf(p2, sizeof(p2), "%s.pub", k2) > 0);
    assert_int_equal(sk_audit_keygen(k2, f->dir, NULL, 0), 0);
    assert_int_equal(sk_audit_pubkey_load(p2, pub2, keyid), 0);
    assert_int_equal(sk_audit_verify(f->dir, pub2, &v), 0);
    assert_int_equal(v.problem, SK_AUDIT_UNKNOWN_KEY);
    free(b);
}

static void test_verify_rewritten_chain(void **state)
{
    /* An attacker who knows the format recomputes h of an edited entry: the
     * next entry's prev no longer matches. */
    struct fx *f = *state;
    char path[400];
    size_t len;
    char *b = small_log(f, &len, path, sizeof(path));
    char *l3 = line_at(b, 3), *l4 = line_at(b, 4), *p = strstr(l3, "alice");
    sk_audit_entry e;
    sk_audit_verdict v;
    char h[65];
    memset(&e, 0, sizeof(e));
    p[0] = 'A';
    /* parse to learn the recomputed hash: hash_ok = 0 and we recompute via
     * another parse after patching h */
    {
        char *line = strndup(l3, (size_t)(l4 - l3 - 1));
        size_t n = strlen(line);
        assert_int_equal(audit_hash_hex(line, n - 72, h), 0);
        memcpy(l3 + n - 66, h, 64);
        free(line);
    }
    spit(path, b, len);
    v = verify(f);
    assert_int_equal(v.problem, SK_AUDIT_EDITED);
    assert_int_equal(v.line, 4);
    free(b);
}

static void test_torn_tail_recovery(void **state)
{
    struct fx *f = *state;
    char path[400];
    size_t len;
    char *b = small_log(f, &len, path, sizeof(path));
    sk_audit *a;
    sk_audit_verdict v;
    uint64_t s;
    int fd;
    (void)b;
    seg_path(f, path, sizeof(path));
    fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "{\"seq\":99,\"ts\":", 15), 15);
    close(fd);
    assert_int_equal(verify(f).problem, SK_AUDIT_TRUNCATED_TAIL);
    a = open_log(f, 1000);
    s = add(a, SK_AUDIT_EV_LOGOUT, "alice", NULL, NULL);
    sk_audit_close(a);
    v = verify(f);
    assert_int_equal(v.problem, SK_AUDIT_OK);
    assert_true(s > 10);
    free(b);
    b = slurp(path, &len);
    assert_non_null(strstr(b, "\"ev\":\"audit.recover\""));
    assert_non_null(strstr(b, "\"dropped_bytes\":15"));
    free(b);
}

static void test_corrupt_last_entry_refuses_open(void **state)
{
    struct fx *f = *state;
    char path[400], err[256];
    size_t len;
    char *b = small_log(f, &len, path, sizeof(path));
    sk_audit_options o;
    sk_audit *a = NULL;
    char *last = line_at(b, count_lines(b));
    last[20] = last[20] == '1' ? '2' : '1';
    spit(path, b, len);
    memset(&o, 0, sizeof(o));
    o.dir = f->dir;
    o.key_path = f->key;
    o.clock_ms = fake_clock;
    o.clock_ctx = f;
    o.epoch_secs = NO_EVOLUTION;
    assert_int_equal(sk_audit_open(&o, &a, err, sizeof(err)), -1);
    assert_null(a);
    free(b);
}

static void test_rotation_and_retention(void **state)
{
    struct fx *f = *state;
    sk_audit *a = open_log(f, 1000);
    sk_audit_verdict v;
    unsigned removed = 0;
    char path[400];
    for (int day = 0; day < 6; day++) {
        add(a, SK_AUDIT_EV_LOGIN_OK, "alice", "day", "d");
        f->clock += 86400 * 1000LL;
    }
    /* now on day 6: segments for days 0..5 exist; retention 3 days */
    add(a, SK_AUDIT_EV_LOGIN_OK, "alice", NULL, NULL);
    v = verify_at(f);
    assert_int_equal(v.problem, SK_AUDIT_OK);
    assert_int_equal(v.first_seq, 1);
    assert_int_equal(sk_audit_prune(a, &removed), 0);
    assert_int_equal(removed, 3);
    sk_audit_close(a);
    seg_path(f, path, sizeof(path));
    assert_int_equal(access(path, F_OK), -1);
    v = verify(f);
    if (v.problem) print_message("%s %s:%llu %s\n", sk_audit_problem_name(v.problem), v.segment, (unsigned long long)v.line, v.detail);
    assert_int_equal(v.problem, SK_AUDIT_OK);
    assert_true(v.first_seq > 1);
    assert_int_equal(v.last_signed_seq, v.last_seq);
    /* removing the oldest retained segment is not a prune */
    assert_true(snprintf(path, sizeof(path), "%s/audit-20250104.jsonl", f->dir) > 0);
    assert_int_equal(unlink(path), 0);
    v = verify(f);
    assert_int_equal(v.problem, SK_AUDIT_DELETED);
}

static void test_deleted_first_segment(void **state)
{
    struct fx *f = *state;
    sk_audit *a = open_log(f, 1000);
    char path[400];
    add(a, SK_AUDIT_EV_LOGIN_OK, "alice", NULL, NULL);
    f->clock += 86400 * 1000LL;
    add(a, SK_AUDIT_EV_LOGIN_OK, "alice", NULL, NULL);
    sk_audit_close(a);
    seg_path(f, path, sizeof(path));
    assert_int_equal(unlink(path), 0);
    assert_int_equal(verify(f).problem, SK_AUDIT_DELETED);
}

static void test_refusal_aggregation(void **state)
{
    struct fx *f = *state;
    sk_audit_options o;
    sk_audit *a = NULL;
    char path[400], err[200];
    size_t len;
    char *b;
    memset(&o, 0, sizeof(o));
    o.dir = f->dir;
    o.key_path = f->key;
    o.clock_ms = fake_clock;
    o.clock_ctx = f;
    o.epoch_secs = NO_EVOLUTION;
    o.refusal_interval_secs = 60;
    assert_int_equal(sk_audit_open(&o, &a, err, sizeof(err)), 0);
    for (int i = 0; i < 20000; i++) {
        char peer[32];
        assert_true(snprintf(peer, sizeof(peer), "198.51.100.%d", i % 50) > 0);
        assert_int_equal(sk_audit_refused(a, peer, i % 2 ? "revoked" : "unknown_ca", "AB"), 0);
        if (i % 100 == 0)
            f->clock += 100; /* 20 s over the whole flood */
    }
    f->clock += 61 * 1000;
    assert_int_equal(sk_audit_flush(a), 0);
    sk_audit_close(a);
    seg_path(f, path, sizeof(path));
    b = slurp(path, &len);
    /* header, one summary, close checkpoint */
    assert_int_equal(count_lines(b), 3);
    assert_non_null(strstr(b, "\"total\":20000"));
    assert_non_null(strstr(b, "\"ev\":\"tls.refused.summary\""));
    free(b);
    assert_int_equal(verify(f).problem, SK_AUDIT_OK);
}

struct thr {
    sk_audit *a;
    int n;
};

static void *thr_main(void *p)
{
    struct thr *t = p;
    for (int i = 0; i < t->n; i++) {
        if (i % 3 == 0) {
            sk_audit_event e = {.event = SK_AUDIT_EV_LOGIN_OK, .actor = "t"};
            if (sk_audit_append(t->a, &e, 1, NULL) != 0)
                return (void *)1;
        } else if (sk_audit_request(t->a, "t", "x", "::1", NULL, "GET", "/", 200, 1, 1) != 0) {
            return (void *)1;
        }
    }
    return NULL;
}

static void test_threads_and_two_writers(void **state)
{
    struct fx *f = *state;
    sk_audit *a = open_log(f, 50), *b2 = open_log(f, 50);
    pthread_t th[4];
    struct thr t[4];
    sk_audit_verdict v;
    for (int i = 0; i < 4; i++) {
        /* two handles on one directory stand in for gateway + sekishoctl */
        t[i].a = i % 2 ? b2 : a;
        t[i].n = 300;
        assert_int_equal(pthread_create(&th[i], NULL, thr_main, &t[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        void *r;
        assert_int_equal(pthread_join(th[i], &r), 0);
        assert_null(r);
    }
    sk_audit_close(a);
    sk_audit_close(b2);
    v = verify(f);
    assert_int_equal(v.problem, SK_AUDIT_OK);
    assert_true(v.entries >= 1200);
}

/* ---- key epochs -------------------------------------------------------- */

static sk_audit *open_epochs(struct fx *f, uint32_t epoch_s)
{
    sk_audit_options o;
    sk_audit *a = NULL;
    char err[256] = "";
    memset(&o, 0, sizeof(o));
    o.dir = f->dir;
    o.key_path = f->key;
    o.clock_ms = fake_clock;
    o.clock_ctx = f;
    o.epoch_secs = epoch_s;
    o.retention_secs = -1;
    if (sk_audit_open(&o, &a, err, sizeof(err)) != 0)
        print_error("open: %s\n", err);
    return a;
}

static void copy_file(const char *from, const char *to)
{
    size_t n;
    char *b = slurp(from, &n);
    int fd = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, b, n), (ssize_t)n);
    assert_int_equal(close(fd), 0);
    free(b);
}

static uint64_t key_epoch(struct fx *f)
{
    size_t n;
    char *b = slurp(f->key, &n);
    unsigned long long e = 0;
    assert_int_equal(sscanf(b, "sekisho-audit-key v2 epoch=%llu ", &e), 1);
    free(b);
    return e;
}

/* Without a heartbeat thread (fake clock), sk_audit_flush evolves the key once
 * an epoch is over: a handoff checkpoint, then audit.epoch, and verify walks
 * the epochs from the initial public key. */
static void test_epoch_evolution(void **state)
{
    struct fx *f = *state;
    sk_audit *a;
    sk_audit_verdict v;
    f->clock = 1735689600000LL + 3600 * 1000; /* the key's start is "now" (real) */
    {
        size_t n;
        char *b = slurp(f->key, &n);
        long long st = 0;
        assert_int_equal(sscanf(b, "sekisho-audit-key v2 epoch=0 start=%lld ", &st), 1);
        f->clock = st + 1000;
        free(b);
    }
    a = open_epochs(f, 60);
    assert_non_null(a);
    add(a, SK_AUDIT_EV_LOGIN_OK, "alice", NULL, NULL);
    assert_int_equal(key_epoch(f), 0);
    f->clock += 61 * 1000;
    assert_int_equal(sk_audit_flush(a), 0); /* heartbeat: epoch over */
    assert_int_equal(key_epoch(f), 1);
    add(a, SK_AUDIT_EV_LOGIN_OK, "bob", NULL, NULL);
    f->clock += 61 * 1000;
    add(a, SK_AUDIT_EV_LOGIN_OK, "carol", NULL, NULL); /* an append evolves too */
    assert_int_equal(key_epoch(f), 2);
    v = verify_at(f);
    assert_int_equal(v.problem, SK_AUDIT_OK);
    assert_int_equal(v.last_epoch, 2);
    sk_audit_close(a);
    v = verify_at(f);
    assert_int_equal(v.problem, SK_AUDIT_OK);
    assert_true(v.closed);
    assert_int_equal(v.first_epoch, 0);
    assert_int_equal(v.last_epoch, 2);
}

/* A crash at each point of a handoff: the next writer finishes or undoes it and
 * the log verifies. States are rebuilt from a completed handoff: the lines after
 * the cut are removed and the key files put back as they were at that moment. */
static void handoff_crash(struct fx *f, int state)
{
    char old_key[400], next[400], path[400], head[400];
    sk_audit *a;
    sk_audit_verdict v;
    size_t len;
    char *b;
    long long st = 0;
    b = slurp(f->key, &len);
    assert_int_equal(sscanf(b, "sekisho-audit-key v2 epoch=0 start=%lld ", &st), 1);
    free(b);
    f->clock = st + 1000;
    assert_true(snprintf(old_key, sizeof(old_key), "%s.epoch0", f->key) > 0);
    assert_true(snprintf(next, sizeof(next), "%s.next", f->key) > 0);
    assert_true(snprintf(head, sizeof(head), "%s.head", f->key) > 0);
    copy_file(f->key, old_key);
    a = open_epochs(f, 60);
    assert_non_null(a);
    add(a, SK_AUDIT_EV_LOGIN_OK, "alice", NULL, NULL);
    f->clock += 61 * 1000;
    assert_int_equal(sk_audit_flush(a), 0); /* handoff to epoch 1 */
    sk_audit_close(a);
    {
        char **names = NULL;
        size_t n = 0;
        assert_int_equal(audit_list_segments(f->dir, &names, &n), 0);
        assert_int_equal(n, 1);
        assert_true(snprintf(path, sizeof(path), "%s/%s", f->dir, names[0]) > 0);
        audit_free_list(names, n);
    }
    b = slurp(path, &len);
    assert_non_null(strstr(b, "\"ev\":\"audit.epoch\""));
    {
        /* end of the handoff line (state 1: just after it) or of audit.epoch (2) */
        char *ep = strstr(b, "\"ev\":\"audit.epoch\"");
        char *line_start = ep;
        while (line_start > b && line_start[-1] != '\n')
            line_start--;
        if (state == 0 || state == 1)
            len = (size_t)(line_start - b);
        else
            len = (size_t)(strchr(ep, '\n') + 1 - b);
        if (state == 0) { /* the handoff checkpoint never reached the log either */
            char *p = line_start - 1;
            while (p > b && p[-1] != '\n')
                p--;
            len = (size_t)(p - b);
        }
    }
    spit(path, b, len);
    free(b);
    /* key files as at the crash: KEY still the old epoch, KEY.next the new one */
    copy_file(f->key, next);
    copy_file(old_key, f->key);
    assert_int_equal(unlink(head), 0); /* the rollback is ours, not an attack */
    f->clock += 1000;
    a = open_epochs(f, 3600);
    assert_non_null(a);
    add(a, SK_AUDIT_EV_LOGIN_OK, "after", NULL, NULL);
    sk_audit_close(a);
    assert_int_equal(access(next, F_OK), -1);
    assert_int_equal(key_epoch(f), state == 0 ? 0 : 1);
    v = verify_at(f);
    if (v.problem)
        print_message("state %d: %s %s:%llu %s\n", state, sk_audit_problem_name(v.problem),
                      v.segment, (unsigned long long)v.line, v.detail);
    assert_int_equal(v.problem, SK_AUDIT_OK);
    assert_int_equal(v.last_epoch, state == 0 ? 0 : 1);
}

static void test_handoff_crash_before(void **state) { handoff_crash(*state, 0); }
static void test_handoff_crash_after_checkpoint(void **state) { handoff_crash(*state, 1); }
static void test_handoff_crash_before_rename(void **state) { handoff_crash(*state, 2); }

/* The writer refuses a tail it did not write (no MAC of its key). */
static void test_forged_tail_refused(void **state)
{
    struct fx *f = *state;
    char path[400], line[600], h[65], body[500];
    sk_audit *a = open_log(f, 1000);
    sk_audit_entry e;
    size_t len;
    char *b;
    int n;
    add(a, SK_AUDIT_EV_LOGIN_OK, "alice", NULL, NULL);
    sk_audit_close(a);
    seg_path(f, path, sizeof(path));
    b = slurp(path, &len);
    memset(&e, 0, sizeof(e));
    {
        char *last = line_at(b, count_lines(b));
        assert_int_equal(sk_audit_parse_line(last, strlen(last) - 1, &e, NULL, 0), 0);
    }
    n = snprintf(body, sizeof(body),
                 "{\"seq\":%llu,\"ts\":\"2025-01-01T01:00:00.000Z\",\"ev\":\"admin.change\","
                 "\"actor\":\"mallory\",\"tenant\":null,\"peer\":null,\"serial\":null,"
                 "\"details\":{},\"prev\":\"%s\",\"mac\":\"%064d\"",
                 (unsigned long long)e.seq + 1, e.hash, 0);
    assert_true(n > 0 && (size_t)n < sizeof(body));
    assert_int_equal(audit_hash_hex(body, (size_t)n, h), 0);
    assert_true(snprintf(line, sizeof(line), "%s,\"h\":\"%s\"}\n", body, h) > 0);
    sk_audit_entry_free(&e);
    {
        int fd = open(path, O_WRONLY | O_APPEND);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, line, strlen(line)), (ssize_t)strlen(line));
        close(fd);
    }
    free(b);
    {
        sk_audit_options o;
        sk_audit *a2 = NULL;
        char err[256];
        memset(&o, 0, sizeof(o));
        o.dir = f->dir;
        o.key_path = f->key;
        o.clock_ms = fake_clock;
        o.clock_ctx = f;
        o.epoch_secs = NO_EVOLUTION;
        assert_int_equal(sk_audit_open(&o, &a2, err, sizeof(err)), -1);
        assert_null(a2);
    }
    /* and verify does not count the forged line as signed (it fails as
     * "unsigned" once older than an epoch: audit_matrix.sh) */
    {
        sk_audit_verdict v = verify_at(f);
        assert_int_equal(v.unsealed, 1);
        assert_int_equal(v.last_signed_seq + 1, v.last_seq);
        assert_false(v.closed);
    }
}

/* The remembered head: a cut log gets audit.truncated and verify reports it. */
static void test_writer_notices_truncation(void **state)
{
    struct fx *f = *state;
    char path[400];
    size_t len;
    char *b = small_log(f, &len, path, sizeof(path));
    sk_audit *a;
    sk_audit_verdict v;
    char *l8 = line_at(b, 8);
    spit(path, b, (size_t)(l8 - b)); /* keep lines 1..7 */
    a = open_log(f, 1000);
    sk_audit_close(a);
    free(b);
    b = slurp(path, &len);
    assert_non_null(strstr(b, "\"ev\":\"audit.truncated\""));
    assert_non_null(strstr(b, "\"found_seq\":7"));
    free(b);
    v = verify(f);
    assert_int_equal(v.problem, SK_AUDIT_TRUNCATED);
    assert_int_equal(v.line, 8);
}

static void test_keys(void **state)
{
    struct fx *f = *state;
    char err[256], inside[400], loose[400];
    sk_audit_signer s;
    int fd;
    /* refuses to overwrite */
    assert_int_equal(sk_audit_keygen(f->key, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "exists"));
    /* refuses a key inside the audit directory */
    assert_int_equal(mkdir(f->dir, 0700) == 0 || errno == EEXIST, 1);
    assert_true(snprintf(inside, sizeof(inside), "%s/k", f->dir) > 0);
    assert_int_equal(sk_audit_keygen(inside, f->dir, err, sizeof(err)), -1);
    assert_int_equal(access(inside, F_OK), -1);
    /* mode 0600 */
    {
        struct stat st;
        assert_int_equal(stat(f->key, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
    }
    /* a group-readable key is refused */
    assert_int_equal(chmod(f->key, 0640), 0);
    assert_int_equal(sk_audit_signer_from_file(f->key, f->dir, &s), -1);
    assert_int_equal(chmod(f->key, 0600), 0);
    assert_int_equal(sk_audit_signer_from_file(f->key, f->dir, &s), 0);
    s.destroy(s.ctx);
    /* garbage key / pubkey */
    assert_true(snprintf(loose, sizeof(loose), "%s/garbage", f->root) > 0);
    fd = open(loose, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "not a key\n", 10), 10);
    close(fd);
    assert_int_equal(sk_audit_signer_from_file(loose, NULL, &s), -1);
    {
        uint8_t p[32];
        char id[65];
        assert_int_equal(sk_audit_pubkey_load(loose, p, id), -1);
        /* a private key file is not a public key */
        assert_int_equal(sk_audit_pubkey_load(f->key, p, id), -1);
    }
}

static void test_parser_negative(void **state)
{
    static const char *bad[] = {
        "",
        "{}",
        "not json at all",
        "{\"seq\":1}",
        "{\"seq\":1,\"h\":\"0000000000000000000000000000000000000000000000000000000000000000\"}",
        "[1,\"h\":\"0000000000000000000000000000000000000000000000000000000000000000\"}",
        "{\"seq\":0,\"ts\":\"2025-01-01T00:00:00.000Z\",\"ev\":\"x\",\"actor\":null,\"tenant\":null,"
        "\"peer\":null,\"serial\":null,\"details\":{},\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\","
        "\"h\":\"0000000000000000000000000000000000000000000000000000000000000000\"}",
        "{\"seq\":1,\"ts\":\"2025-13-01T00:00:00.000Z\",\"ev\":\"x\",\"actor\":null,\"tenant\":null,"
        "\"peer\":null,\"serial\":null,\"details\":{},\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\","
        "\"h\":\"0000000000000000000000000000000000000000000000000000000000000000\"}",
        "{\"seq\":1,\"ts\":\"2025-01-01T00:00:00.000Z\",\"ev\":\"x\",\"actor\":5,\"tenant\":null,"
        "\"peer\":null,\"serial\":null,\"details\":{},\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\","
        "\"h\":\"0000000000000000000000000000000000000000000000000000000000000000\"}",
        "{\"seq\":1,\"ts\":\"2025-01-01T00:00:00.000Z\",\"ev\":\"x\",\"actor\":null,\"tenant\":null,"
        "\"peer\":null,\"serial\":null,\"details\":[],\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\","
        "\"h\":\"0000000000000000000000000000000000000000000000000000000000000000\"}",
        "{\"seq\":1,\"ts\":\"2025-01-01T00:00:00.000Z\",\"ev\":\"x\",\"ev\":\"y\",\"actor\":null,\"tenant\":null,"
        "\"peer\":null,\"serial\":null,\"details\":{},\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\","
        "\"h\":\"0000000000000000000000000000000000000000000000000000000000000000\"}",
        "{\"seq\":1,\"ts\":\"2025-01-01T00:00:00.000Z\",\"ev\":\"x\",\"actor\":null,\"tenant\":null,"
        "\"peer\":null,\"serial\":null,\"details\":{},\"prev\":\"00\","
        "\"h\":\"0000000000000000000000000000000000000000000000000000000000000000\"}",
        "{\"seq\":1,\"ts\":\"2025-01-01T00:00:00.000Z\",\"ev\":\"audit.checkpoint\",\"actor\":null,\"tenant\":null,"
        "\"peer\":null,\"serial\":null,\"details\":{},\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\","
        "\"h\":\"0000000000000000000000000000000000000000000000000000000000000000\"}",
        "{\"seq\":1,\"ts\":\"2025-01-01T00:00:00.000Z\",\"ev\":\"x\",\"actor\":null,\"tenant\":null,"
        "\"peer\":null,\"serial\":null,\"details\":{},\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\","
        "\"sig\":\"AAAA\",\"h\":\"0000000000000000000000000000000000000000000000000000000000000000\"}",
        "{\"seq\":1,\"ts\":\"2025-01-01T00:00:00.000Z\",\"ev\":\"x\",\"actor\":null,\"tenant\":null,"
        "\"peer\":null,\"serial\":null,\"extra\":1,\"details\":{},\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\","
        "\"h\":\"0000000000000000000000000000000000000000000000000000000000000000\"}",
        "{\"seq\":1,\"ts\":\"2025-01-01T00:00:00.000Z\",\"ev\":\"x\",\"actor\":null,\"tenant\":null,"
        "\"peer\":null,\"serial\":null,\"details\":{},\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\","
        "\"h\":\"000000000000000000000000000000000000000000000000000000000000000G\"}",
        /* no mac */
        "{\"seq\":1,\"ts\":\"2025-01-01T00:00:00.000Z\",\"ev\":\"x\",\"actor\":null,\"tenant\":null,"
        "\"peer\":null,\"serial\":null,\"details\":{},\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\","
        "\"h\":\"0000000000000000000000000000000000000000000000000000000000000000\"}",
        /* mac not lowercase hex */
        "{\"seq\":1,\"ts\":\"2025-01-01T00:00:00.000Z\",\"ev\":\"x\",\"actor\":null,\"tenant\":null,"
        "\"peer\":null,\"serial\":null,\"details\":{},\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\","
        "\"mac\":\"000000000000000000000000000000000000000000000000000000000000000A\","
        "\"h\":\"0000000000000000000000000000000000000000000000000000000000000000\"}",
        /* mac in the wrong place */
        "{\"seq\":1,\"ts\":\"2025-01-01T00:00:00.000Z\",\"ev\":\"x\",\"mac\":\"0000000000000000000000000000000000000000000000000000000000000000\","
        "\"actor\":null,\"tenant\":null,\"peer\":null,\"serial\":null,\"details\":{},\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\","
        "\"h\":\"0000000000000000000000000000000000000000000000000000000000000000\"}",
    };
    sk_audit_entry e;
    char err[200];
    memset(&e, 0, sizeof(e));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(sk_audit_parse_line(bad[i], strlen(bad[i]), &e, err, sizeof(err)), -1);
        assert_true(err[0] != '\0');
    }
    /* a well-formed entry with a wrong hash parses with hash_ok = 0 */
    {
        const char *ok = "{\"seq\":1,\"ts\":\"2025-01-01T00:00:00.000Z\",\"ev\":\"x\",\"actor\":\"a\\n\",\"tenant\":null,"
                         "\"peer\":null,\"serial\":null,\"details\":{\"k\":[1,{}]},\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\","
                         "\"mac\":\"0000000000000000000000000000000000000000000000000000000000000000\",\"h\":\"0000000000000000000000000000000000000000000000000000000000000000\"}";
        assert_int_equal(sk_audit_parse_line(ok, strlen(ok), &e, err, sizeof(err)), 0);
        assert_int_equal(e.hash_ok, 0);
        assert_string_equal(e.actor, "a\n");
        assert_int_equal(e.ts_ms, 1735689600000LL);
        assert_null(e.tenant);
    }
    sk_audit_entry_free(&e);
    assert_int_equal(sk_audit_parse_line(NULL, 0, &e, NULL, 0), -1);
}

static void test_segment_names(void **state)
{
    (void)state;
    assert_true(sk_audit_is_segment_name("audit-20250101.jsonl"));
    assert_false(sk_audit_is_segment_name("audit-20250231.jsonl"));
    assert_false(sk_audit_is_segment_name("audit-2025010.jsonl"));
    assert_false(sk_audit_is_segment_name(".lock"));
    assert_false(sk_audit_is_segment_name("audit-20250101.jsonl.bak"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_chain_and_checkpoints, setup, teardown),
        cmocka_unit_test_setup_teardown(test_escaping_cannot_forge, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_details_and_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_field_is_cut, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_edit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_reorder, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_truncated_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_bad_signature, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_other_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify_rewritten_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail_recovery, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_last_entry_refuses_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation_and_retention, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deleted_first_segment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusal_aggregation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads_and_two_writers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_epoch_evolution, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handoff_crash_before, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handoff_crash_after_checkpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handoff_crash_before_rename, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forged_tail_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writer_notices_truncation, setup, teardown),
        cmocka_unit_test(test_parser_negative),
        cmocka_unit_test(test_segment_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
