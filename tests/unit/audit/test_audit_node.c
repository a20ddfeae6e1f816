/* Unit tests for format 3 (several nodes): node and segment names, the node in
 * every entry and under the hash, a format 2 log continued by a named node, the
 * verifier's one-node-per-chain rule, and the merge of several nodes' logs. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit_wint.h"
#include "sk_audit.h"

#define NO_EVOLUTION 0x7fffffffu
#define T0 (1735689600000LL + 3600 * 1000) /* 2025-01-01T01:00Z */

struct fx {
    char root[256];
    char dir[2][300];
    char key[2][300];
    uint8_t pub[2][32];
    int64_t clock;
};

static int64_t fake_clock(void *ctx)
{
    return ((struct fx *)ctx)->clock;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    const char *tmp = getenv("TMPDIR");
    assert_non_null(f);
    assert_true(snprintf(f->root, sizeof(f->root), "%s/sknode-XXXXXX", tmp ? tmp : "/tmp") > 0);
    assert_non_null(mkdtemp(f->root));
    for (int i = 0; i < 2; i++) {
        char pub[320], kid[65];
        assert_true(snprintf(f->dir[i], sizeof(f->dir[i]), "%s/audit%d", f->root, i) > 0);
        assert_true(snprintf(f->key[i], sizeof(f->key[i]), "%s/audit%d.key", f->root, i) > 0);
        assert_true(snprintf(pub, sizeof(pub), "%s.pub", f->key[i]) > 0);
        assert_int_equal(sk_audit_keygen(f->key[i], f->dir[i], NULL, 0), 0);
        assert_int_equal(sk_audit_pubkey_load(pub, f->pub[i], kid), 0);
    }
    f->clock = T0;
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

/* Open log i as node (NULL: none); NULL when refused, err filled. */
static sk_audit *try_open(struct fx *f, int i, const char *node, char *err, size_t cap)
{
    sk_audit_options o;
    sk_audit *a = NULL;
    memset(&o, 0, sizeof(o));
    o.dir = f->dir[i];
    o.key_path = f->key[i];
    o.clock_ms = fake_clock;
    o.clock_ctx = f;
    o.epoch_secs = NO_EVOLUTION;
    o.retention_secs = -1;
    o.node = node;
    if (sk_audit_open(&o, &a, err, cap) != 0)
        return NULL;
    return a;
}

static sk_audit *open_node(struct fx *f, int i, const char *node)
{
    char err[512] = "";
    sk_audit *a = try_open(f, i, node, err, sizeof(err));
    if (!a)
        print_error("open: %s\n", err);
    assert_non_null(a);
    return a;
}

static void add(sk_audit *a, const char *ev, const char *actor)
{
    sk_audit_event e = {.event = ev, .actor = actor};
    assert_int_equal(sk_audit_append(a, &e, 1, NULL), 0);
}

static sk_audit_verdict verify(struct fx *f, int i)
{
    sk_audit_verdict v;
    sk_audit_verify_opts vo = {.now_ms = f->clock};
    assert_int_equal(sk_audit_verify_ex(f->dir[i], f->pub[i], &vo, &v), 0);
    return v;
}

static int file_exists(const char *dir, const char *name)
{
    char p[512];
    assert_true(snprintf(p, sizeof(p), "%s/%s", dir, name) > 0);
    return access(p, F_OK) == 0;
}

/* Replace the first occurrence of from by to (same length) in a file. */
static int patch_file(const char *dir, const char *name, const char *from, const char *to)
{
    char p[512], *buf, *hit;
    FILE *fp;
    long n;
    assert_int_equal(strlen(from), strlen(to));
    assert_true(snprintf(p, sizeof(p), "%s/%s", dir, name) > 0);
    fp = fopen(p, "r+b");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    n = ftell(fp);
    rewind(fp);
    buf = calloc(1, (size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
    hit = strstr(buf, from);
    if (hit) {
        memcpy(hit, to, strlen(to));
        rewind(fp);
        assert_int_equal(fwrite(buf, 1, (size_t)n, fp), (size_t)n);
    }
    fclose(fp);
    free(buf);
    return hit ? 0 : -1;
}

/* ---- names --------------------------------------------------------------- */

static void test_node_and_segment_names(void **state)
{
    char node[SK_AUDIT_NODE_MAX + 1], name[SK_AUDIT_SEG_MAX], long_node[80];
    int64_t day = -1;
    (void)state;
    assert_true(sk_audit_valid_node("gw-a"));
    assert_true(sk_audit_valid_node("gw_1.example"));
    assert_false(sk_audit_valid_node(""));
    assert_false(sk_audit_valid_node(NULL));
    assert_false(sk_audit_valid_node("gw a"));
    assert_false(sk_audit_valid_node("gw/a"));
    assert_false(sk_audit_valid_node("gw\xc3\xa9"));
    memset(long_node, 'a', 63);
    long_node[63] = '\0';
    assert_true(sk_audit_valid_node(long_node));
    long_node[63] = 'a';
    long_node[64] = '\0';
    assert_false(sk_audit_valid_node(long_node));

    /* format 2 and format 3 names */
    assert_int_equal(sk_audit_segment_parse("audit-20250101.jsonl", &day, node), 0);
    assert_int_equal(day, 20089);
    assert_string_equal(node, "");
    assert_int_equal(sk_audit_segment_parse("audit-gw-a-20250102.jsonl", &day, node), 0);
    assert_int_equal(day, 20090);
    assert_string_equal(node, "gw-a");
    assert_int_equal(sk_audit_segment_parse("audit-2025-20250102.jsonl", &day, node), 0);
    assert_string_equal(node, "2025");
    assert_true(sk_audit_is_segment_name("audit-x-20250101.jsonl"));
    assert_false(sk_audit_is_segment_name("audit--20250101.jsonl"));
    assert_false(sk_audit_is_segment_name("audit-gw a-20250101.jsonl"));
    assert_false(sk_audit_is_segment_name("audit-gw-20250231.jsonl"));
    assert_false(sk_audit_is_segment_name("audit-gw20250101.jsonl"));
    assert_false(sk_audit_is_segment_name("audit-gw-20250101.jsonl.bak"));
    assert_false(sk_audit_is_segment_name("audit-gw-2025010.jsonl"));
    assert_true(snprintf(name, sizeof(name), "audit-%s-20250101.jsonl", long_node) > 0);
    assert_false(sk_audit_is_segment_name(name)); /* 64-byte node */
    long_node[63] = '\0';
    assert_true(snprintf(name, sizeof(name), "audit-%s-20250101.jsonl", long_node) > 0);
    assert_true(sk_audit_is_segment_name(name));
    assert_true(strlen(name) < SK_AUDIT_SEG_MAX);

    /* the writer's names */
    assert_int_equal(audit_segment_name(20089, NULL, name, sizeof(name)), 0);
    assert_string_equal(name, "audit-20250101.jsonl");
    assert_int_equal(audit_segment_name(20089, "gw-a", name, sizeof(name)), 0);
    assert_string_equal(name, "audit-gw-a-20250101.jsonl");
    assert_int_not_equal(audit_segment_name(20089, "gw-a", name, 10), 0);

    /* order: by day first (the upgrade renames at a day boundary), then by name */
    assert_true(sk_audit_segment_cmp("audit-20250101.jsonl", "audit-zz-20250102.jsonl") < 0);
    assert_true(sk_audit_segment_cmp("audit-zz-20250102.jsonl", "audit-aa-20250103.jsonl") < 0);
    assert_true(sk_audit_segment_cmp("audit-aa-20250103.jsonl", "audit-zz-20250102.jsonl") > 0);
    assert_true(sk_audit_segment_cmp("audit-aa-20250103.jsonl", "audit-bb-20250103.jsonl") < 0);
    assert_int_equal(sk_audit_segment_cmp("audit-aa-20250103.jsonl", "audit-aa-20250103.jsonl"), 0);
}

static void test_parse_node_field(void **state)
{
    sk_audit_entry e;
    char err[128];
    /* The hash does not matter here (hash_ok 0): only the field's syntax. */
    static const char good[] =
        "{\"seq\":1,\"ts\":\"2025-01-01T00:00:00.000Z\",\"ev\":\"x\",\"node\":\"gw-a\",\"actor\":null,"
        "\"tenant\":null,\"peer\":null,\"serial\":null,\"details\":{},\"prev\":\"" AUDIT_ZERO_HASH
        "\",\"mac\":\"" AUDIT_ZERO_HASH "\",\"h\":\"" AUDIT_ZERO_HASH "\"}";
    const char *bad[] = {"\"node\":\"\"", "\"node\":\"g a\"", "\"node\":1", "\"node\":null",
                         "\"node\":\"g\\u0000a\""};
    (void)state;
    memset(&e, 0, sizeof(e));
    assert_int_equal(sk_audit_parse_line(good, strlen(good), &e, err, sizeof(err)), 0);
    assert_non_null(e.node);
    assert_string_equal(e.node, "gw-a");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char line[1024];
        const char *at = strstr(good, "\"node\":\"gw-a\"");
        size_t pre = (size_t)(at - good);
        assert_true(snprintf(line, sizeof(line), "%.*s%s%s", (int)pre, good, bad[i],
                             at + strlen("\"node\":\"gw-a\"")) > 0);
        assert_int_equal(sk_audit_parse_line(line, strlen(line), &e, err, sizeof(err)), -1);
        if (i + 1 < sizeof(bad) / sizeof(bad[0])) /* jansson itself refuses \u0000 */
            assert_non_null(strstr(err, "node"));
    }
    sk_audit_entry_free(&e);
}

/* ---- the writer ------------------------------------------------------------ */

static void test_node_in_every_entry(void **state)
{
    struct fx *f = *state;
    sk_audit_reader *r = NULL;
    sk_audit_entry e;
    const char *line;
    sk_audit_verdict v;
    char err[256];
    int k, n = 0;
    sk_audit *a = open_node(f, 0, "alpha");
    add(a, "login.success", "alice");
    f->clock += 1000;
    add(a, "login.failure", "bob");
    sk_audit_close(a);
    assert_true(file_exists(f->dir[0], "audit-alpha-20250101.jsonl"));
    assert_false(file_exists(f->dir[0], "audit-20250101.jsonl"));
    memset(&e, 0, sizeof(e));
    assert_int_equal(sk_audit_reader_open(f->dir[0], &r, err, sizeof(err)), 0);
    while ((k = sk_audit_reader_next(r, &e, &line, err, sizeof(err))) == 1) {
        assert_non_null(e.node);
        assert_string_equal(e.node, "alpha");
        assert_non_null(strstr(line, ",\"ev\":\"")); /* node right after ev */
        assert_non_null(strstr(line, "\",\"node\":\"alpha\",\"actor\":"));
        n++;
    }
    assert_int_equal(k, 0);
    assert_true(n >= 4); /* header, two entries, closing checkpoint */
    sk_audit_entry_free(&e);
    sk_audit_reader_close(r);
    v = verify(f, 0);
    assert_int_equal(v.problem, SK_AUDIT_OK);
    assert_string_equal(v.node, "alpha");
    {
        char node[SK_AUDIT_NODE_MAX + 1];
        assert_int_equal(sk_audit_dir_node(f->dir[0], node, err, sizeof(err)), 1);
        assert_string_equal(node, "alpha");
    }
    /* Relabelling one entry as another node's breaks its hash. */
    assert_int_equal(patch_file(f->dir[0], "audit-alpha-20250101.jsonl", "\"node\":\"alpha\",\"actor\":\"bob\"",
                                "\"node\":\"bravo\",\"actor\":\"bob\""),
                     0);
    v = verify(f, 0);
    assert_int_equal(v.problem, SK_AUDIT_EDITED);
    assert_string_equal(v.segment, "audit-alpha-20250101.jsonl");
    assert_int_equal(v.line, 3);
}

/* A format 2 directory: a named writer continues its chain in the unnamed
 * segment, and starts node-named segments at the next day's rotation. */
static void test_upgrade_continues_chain(void **state)
{
    struct fx *f = *state;
    sk_audit_verdict v;
    char err[512] = "", node[SK_AUDIT_NODE_MAX + 1];
    sk_audit *a = open_node(f, 0, NULL);
    add(a, "login.success", "old");
    sk_audit_close(a);
    assert_true(file_exists(f->dir[0], "audit-20250101.jsonl"));
    assert_int_equal(sk_audit_dir_node(f->dir[0], node, err, sizeof(err)), 0);
    v = verify(f, 0);
    assert_int_equal(v.problem, SK_AUDIT_OK);
    assert_string_equal(v.node, "");

    f->clock += 60000;
    a = open_node(f, 0, "alpha");
    add(a, "login.success", "new");
    sk_audit_close(a);
    assert_false(file_exists(f->dir[0], "audit-alpha-20250101.jsonl")); /* same day: same file */
    assert_int_equal(sk_audit_dir_node(f->dir[0], node, err, sizeof(err)), 1);
    assert_string_equal(node, "alpha"); /* from the tail of the unnamed segment */
    v = verify(f, 0);
    assert_int_equal(v.problem, SK_AUDIT_OK);
    assert_string_equal(v.node, "alpha");

    f->clock += 86400000LL; /* next day: the rotation renames */
    a = open_node(f, 0, "alpha");
    add(a, "login.success", "next-day");
    sk_audit_close(a);
    assert_true(file_exists(f->dir[0], "audit-alpha-20250102.jsonl"));
    v = verify(f, 0);
    assert_int_equal(v.problem, SK_AUDIT_OK);
    assert_string_equal(v.node, "alpha");
    assert_int_equal(v.first_seq, 1);

    /* A writer without a configured node takes the log's node. */
    a = open_node(f, 0, NULL);
    add(a, "admin.change", "tool");
    sk_audit_close(a);
    v = verify(f, 0);
    assert_int_equal(v.problem, SK_AUDIT_OK);

    /* Another node is refused, saying whose log it is. */
    assert_null(try_open(f, 0, "bravo", err, sizeof(err)));
    assert_non_null(strstr(err, "node alpha"));
    assert_null(try_open(f, 0, "bad name", err, sizeof(err)));
    assert_non_null(strstr(err, "invalid node name"));
}

/* The verifier's rule holds even against a writer holding the key. */
static void test_one_node_per_chain(void **state)
{
    struct fx *f = *state;
    sk_audit_verdict v;
    sk_audit *a = open_node(f, 0, "alpha");
    add(a, "login.success", "alice");
    /* Simulate a misconfigured writer with the key: another node in the chain. */
    pthread_mutex_lock(&a->mu);
    memcpy(a->node, "bravo", 6);
    pthread_mutex_unlock(&a->mu);
    add(a, "login.success", "mallory");
    sk_audit_close(a);
    v = verify(f, 0);
    assert_int_equal(v.problem, SK_AUDIT_EDITED);
    assert_non_null(strstr(v.detail, "node bravo in the chain of node alpha"));
    assert_string_equal(v.node, "alpha");

    /* Entries without a node after named ones (a format 2 writer behind a 3). */
    a = open_node(f, 1, "alpha");
    add(a, "login.success", "alice");
    pthread_mutex_lock(&a->mu);
    a->node[0] = '\0';
    pthread_mutex_unlock(&a->mu);
    add(a, "login.success", "mallory");
    sk_audit_close(a);
    v = verify(f, 1);
    assert_int_equal(v.problem, SK_AUDIT_EDITED);
    assert_non_null(strstr(v.detail, "no node"));
}

/* ---- merge ------------------------------------------------------------------ */

static void test_merge_by_time(void **state)
{
    struct fx *f = *state;
    const char *dirs[2];
    sk_audit_merge *m = NULL;
    const sk_audit_entry *e;
    const char *line, *node;
    size_t src;
    char err[512];
    int64_t last_ts = 0;
    uint64_t last_seq[2] = {0, 0};
    char last_node[SK_AUDIT_NODE_MAX + 1] = "";
    int k, n = 0, tie_seen = 0, both = 0;
    sk_audit *a = open_node(f, 0, "bravo"), *b = open_node(f, 1, "alpha");
    dirs[0] = f->dir[0];
    dirs[1] = f->dir[1];
    for (int i = 0; i < 6; i++) {
        add(a, "login.success", "user-b");
        if (i % 2 == 0)
            f->clock += 5; /* every other pair: equal time stamps on both nodes */
        add(b, "login.success", "user-a");
        f->clock += 10;
    }
    sk_audit_close(a);
    sk_audit_close(b);

    assert_int_equal(sk_audit_merge_open(dirs, 2, &m, err, sizeof(err)), 0);
    while ((k = sk_audit_merge_next(m, &e, &line, &node, &src, err, sizeof(err))) == 1) {
        assert_true(src < 2);
        assert_string_equal(node, src == 0 ? "bravo" : "alpha");
        assert_string_equal(e->node, node);
        assert_true(e->ts_ms >= last_ts);
        if (e->ts_ms == last_ts && n > 0) {
            /* equal time: node order, then sequence */
            assert_true(strcmp(last_node, node) <= 0);
            if (strcmp(last_node, node) != 0)
                tie_seen = 1;
        }
        assert_true(e->seq > last_seq[src]); /* each node in chain order */
        last_seq[src] = e->seq;
        last_ts = e->ts_ms;
        memcpy(last_node, node, strlen(node) + 1);
        assert_non_null(strstr(line, node));
        n++;
    }
    assert_int_equal(k, 0);
    both = last_seq[0] > 0 && last_seq[1] > 0;
    assert_true(both);
    assert_true(tie_seen);
    assert_true(n >= 2 * (6 + 2));
    sk_audit_merge_close(m);

    /* The same node twice is refused. */
    dirs[1] = f->dir[0];
    assert_int_equal(sk_audit_merge_open(dirs, 2, &m, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "node bravo"));
    assert_null(m);
}

/* A format 2 log has no node: its entries are labelled "-" in a merge. */
static void test_merge_unnamed(void **state)
{
    struct fx *f = *state;
    const char *dirs[2] = {f->dir[0], f->dir[1]};
    sk_audit_merge *m = NULL;
    const sk_audit_entry *e;
    const char *line, *node;
    size_t src;
    char err[512];
    int k, seen[2] = {0, 0};
    sk_audit *a = open_node(f, 0, NULL), *b = open_node(f, 1, "alpha");
    add(a, "login.success", "x");
    add(b, "login.success", "y");
    sk_audit_close(a);
    sk_audit_close(b);
    assert_int_equal(sk_audit_merge_open(dirs, 2, &m, err, sizeof(err)), 0);
    while ((k = sk_audit_merge_next(m, &e, &line, &node, &src, err, sizeof(err))) == 1) {
        assert_string_equal(node, src == 0 ? "-" : "alpha");
        seen[src]++;
    }
    assert_int_equal(k, 0);
    assert_true(seen[0] > 0 && seen[1] > 0);
    sk_audit_merge_close(m);
    assert_int_equal(sk_audit_merge_open(dirs, 0, &m, err, sizeof(err)), -1);
    assert_null(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_node_and_segment_names),
        cmocka_unit_test(test_parse_node_field),
        cmocka_unit_test_setup_teardown(test_node_in_every_entry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upgrade_continues_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_node_per_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merge_by_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_merge_unnamed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
