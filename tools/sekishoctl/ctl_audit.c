/* ctl_audit.c — the auditor's side of the audit log: keygen, show, export,
 * verify. Reading needs only the directory (and the .pub file for verify), so
 * an auditor can run it on a copy on another machine. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl_audit.h"
#include "sk_audit.h"
#include "sk_util.h"

#define DEFAULT_TZ "Asia/Tokyo"

static void usage(void)
{
    fprintf(stderr,
            "usage: sekishoctl audit keygen\n"
            "       sekishoctl audit show [--dir D...] [--since T] [--until T] [--user U] [--tenant T] [--event E] [--json]\n"
            "       sekishoctl audit export [--dir D...] [--since T] [--until T] [--user U] [--tenant T] [--event E]\n"
            "       sekishoctl audit verify [--dir D...] [--pubkey FILE...] [--witness FILE...] [--at T]\n"
            "       sekishoctl audit head\n"
            "T: epoch seconds, YYYY-MM-DD, or YYYY-MM-DD[T ]HH:MM[:SS] in the display time\n"
            "zone (append Z for UTC). E: an event name, or a prefix ending in '*'.\n"
            "--dir D (repeatable): audit directories of several nodes instead of [audit] dir;\n"
            "verify takes one --pubkey for all of them or one per --dir, in the same order.\n");
}

static int set_tz(const char *tz)
{
    if (!tz || !*tz)
        tz = DEFAULT_TZ;
    if (setenv("TZ", tz, 1) != 0)
        return -1;
    tzset();
    return 0;
}

/* Display a UTC ms time in the configured zone. */
static void fmt_local(int64_t ms, char *out, size_t cap)
{
    struct tm tm;
    time_t t = (time_t)(ms / 1000);
    char a[40], z[16];
    if (!localtime_r(&t, &tm) || strftime(a, sizeof(a), "%Y-%m-%d %H:%M:%S", &tm) == 0 ||
        strftime(z, sizeof(z), "%Z", &tm) == 0 ||
        sk_snprintf(out, cap, "%s.%03d %s", a, (int)(ms % 1000), z) != 0) {
        if (sk_snprintf(out, cap, "@%lld", (long long)(ms / 1000)) != 0 && cap)
            out[0] = '\0';
    }
}

static int parse_time(const char *s, int64_t *ms)
{
    struct tm tm;
    int y, mo, d, h = 0, mi = 0, se = 0, n = 0, utc = 0;
    size_t len = strlen(s);
    uint64_t epoch;
    time_t t;
    if (sk_parse_u64(s, 0, (uint64_t)INT64_MAX / 1000, &epoch) == 0) {
        *ms = (int64_t)epoch * 1000;
        return 0;
    }
    if (len > 0 && s[len - 1] == 'Z')
        utc = 1;
    if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10)
        return -1;
    if (s[n] == 'T' || s[n] == ' ') {
        int m2 = 0;
        if (sscanf(s + n + 1, "%2d:%2d%n", &h, &mi, &m2) != 2 || m2 != 5)
            return -1;
        n += 1 + m2;
        if (s[n] == ':') {
            if (sscanf(s + n + 1, "%2d%n", &se, &m2) != 1 || m2 != 2)
                return -1;
            n += 3;
        }
    }
    if ((size_t)n + (size_t)utc != len)
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60 || y < 1970 ||
        h < 0 || mi < 0 || se < 0)
        return -1;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = se;
    tm.tm_isdst = -1;
    t = utc ? timegm(&tm) : mktime(&tm);
    if (t == (time_t)-1)
        return -1;
    *ms = (int64_t)t * 1000;
    return 0;
}

/* Terminal-safe output of a decoded field: control characters (C0, DEL, C1)
 * are shown as \xHH so a stored string cannot drive the auditor's terminal. */
static void put_safe(FILE *f, const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    for (; *u; u++) {
        if (*u < 0x20 || *u == 0x7f || *u == '\\') {
            fprintf(f, "\\x%02x", *u);
        } else if (*u == 0xc2 && u[1] >= 0x80 && u[1] <= 0x9f) {
            fprintf(f, "\\u%04x", u[1]);
            u++;
        } else {
            fputc(*u, f);
        }
    }
}

struct filter {
    int64_t since, until;
    int has_since, has_until;
    const char *user, *event, *tenant;
    int json;
};

static int match(const struct filter *fl, const sk_audit_entry *e)
{
    if (fl->has_since && e->ts_ms < fl->since)
        return 0;
    if (fl->has_until && e->ts_ms >= fl->until)
        return 0;
    if (fl->user && (!e->actor || strcmp(fl->user, e->actor) != 0))
        return 0;
    /* One tenant's auditor sees that tenant's entries only: entries without a
     * tenant (gateway start, CRL reloads) are not theirs. */
    if (fl->tenant && (!e->tenant || strcmp(fl->tenant, e->tenant) != 0))
        return 0;
    if (fl->event) {
        size_t l = strlen(fl->event);
        if (l > 0 && fl->event[l - 1] == '*') {
            if (strncmp(e->event, fl->event, l - 1) != 0)
                return 0;
        } else if (strcmp(e->event, fl->event) != 0) {
            return 0;
        }
    }
    return 1;
}

/* Returns 0 ok, 2 usage error. */
static int parse_filter(int argc, char **argv, struct filter *fl, int allow_json)
{
    memset(fl, 0, sizeof(*fl));
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (allow_json && strcmp(o, "--json") == 0) {
            fl->json = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "sekishoctl audit: unknown option or missing value: %s\n", o);
            return 2;
        }
        if (strcmp(o, "--since") == 0) {
            if (parse_time(argv[++i], &fl->since) != 0) {
                fprintf(stderr, "sekishoctl audit: bad time for --since\n");
                return 2;
            }
            fl->has_since = 1;
        } else if (strcmp(o, "--until") == 0) {
            if (parse_time(argv[++i], &fl->until) != 0) {
                fprintf(stderr, "sekishoctl audit: bad time for --until\n");
                return 2;
            }
            fl->has_until = 1;
        } else if (strcmp(o, "--user") == 0) {
            fl->user = argv[++i];
        } else if (strcmp(o, "--event") == 0) {
            fl->event = argv[++i];
        } else if (strcmp(o, "--tenant") == 0) {
            fl->tenant = argv[++i];
        } else {
            fprintf(stderr, "sekishoctl audit: unknown option: %s\n", o);
            return 2;
        }
    }
    return 0;
}

/* node: the entry's node when several nodes' logs are merged, else NULL. */
static void print_human(const sk_audit_entry *e, const char *node)
{
    char when[64];
    fmt_local(e->ts_ms, when, sizeof(when));
    fputs(when, stdout);
    if (node)
        printf(" [%s]", node); /* a node name is [A-Za-z0-9._-] or "-": safe */
    printf(" #%llu %s", (unsigned long long)e->seq, e->event);
    if (e->actor) {
        fputs(" user=", stdout);
        put_safe(stdout, e->actor);
    }
    if (e->tenant) {
        fputs(" tenant=", stdout);
        put_safe(stdout, e->tenant);
    }
    if (e->peer) {
        fputs(" peer=", stdout);
        put_safe(stdout, e->peer);
    }
    if (e->serial) {
        fputs(" serial=", stdout);
        put_safe(stdout, e->serial);
    }
    if (strcmp(e->details, "{}") != 0) {
        /* Stored JSON is pure ASCII with controls escaped: safe as is. */
        fputc(' ', stdout);
        fputs(e->details, stdout);
    }
    fputc('\n', stdout);
}

/* One entry of show/export, when it passes the filter: the stored line verbatim
 * for JSON (a SIEM can re-verify the chain; format 3 lines carry their "node"),
 * else one human line (node: the merged directory's, or NULL). */
static void list_one(const struct filter *fl, const sk_audit_entry *e, const char *line, const char *node)
{
    if (!match(fl, e))
        return;
    if (fl->json) {
        fputs(line, stdout);
        fputc('\n', stdout);
    } else {
        print_human(e, node);
    }
}

/* The exit status of a listing that read until k (0 end, < 0 error in err). */
static int list_end(int k, const char *err)
{
    if (k < 0) {
        fprintf(stderr, "sekishoctl audit: %s\n", err);
        return 1;
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "sekishoctl audit: write error on stdout\n");
        return 1;
    }
    return 0;
}

static int cmd_list(const char *dir, int argc, char **argv, int export_mode)
{
    struct filter fl;
    sk_audit_reader *r = NULL;
    sk_audit_entry e;
    const char *line;
    char err[256];
    int rc = 1, k;

    memset(&e, 0, sizeof(e));
    k = parse_filter(argc, argv, &fl, !export_mode);
    if (k != 0)
        return k;
    if (export_mode)
        fl.json = 1;
    if (sk_audit_reader_open(dir, &r, err, sizeof(err)) != 0) {
        fprintf(stderr, "sekishoctl audit: %s\n", err);
        goto out;
    }
    while ((k = sk_audit_reader_next(r, &e, &line, err, sizeof(err))) == 1)
        list_one(&fl, &e, line, NULL);
    rc = list_end(k, err);
out:
    sk_audit_entry_free(&e);
    sk_audit_reader_close(r);
    return rc;
}

/* show/export over several nodes' directories, merged by time. */
static int cmd_list_merged(const char *const *dirs, size_t nd, int argc, char **argv,
                           int export_mode)
{
    struct filter fl;
    sk_audit_merge *m = NULL;
    const sk_audit_entry *e;
    const char *line, *node;
    size_t src;
    char err[512];
    int rc = 1, k;

    k = parse_filter(argc, argv, &fl, !export_mode);
    if (k != 0)
        return k;
    if (export_mode)
        fl.json = 1;
    if (sk_audit_merge_open(dirs, nd, &m, err, sizeof(err)) != 0) {
        fprintf(stderr, "sekishoctl audit: %s\n", err);
        goto out;
    }
    while ((k = sk_audit_merge_next(m, &e, &line, &node, &src, err, sizeof(err))) == 1)
        list_one(&fl, e, line, node);
    rc = list_end(k, err);
out:
    sk_audit_merge_close(m);
    return rc;
}

static void fmt_age(int64_t ms, char *out, size_t cap)
{
    int64_t s = ms < 0 ? 0 : ms / 1000;
    int r;
    if (s < 120)
        r = sk_snprintf(out, cap, "%llds", (long long)s);
    else if (s < 7200)
        r = sk_snprintf(out, cap, "%lldm%02llds", (long long)(s / 60), (long long)(s % 60));
    else if (s < 2 * 86400)
        r = sk_snprintf(out, cap, "%lldh%02lldm", (long long)(s / 3600), (long long)(s % 3600 / 60));
    else
        r = sk_snprintf(out, cap, "%lldd%02lldh", (long long)(s / 86400),
                        (long long)(s % 86400 / 3600));
    if (r != 0 && cap)
        out[0] = '\0';
}

static void print_verdict(const sk_audit_verdict *v, int64_t now)
{
    char when[64], age[32];
    if (v->problem != SK_AUDIT_OK) {
        printf("FAIL: %s: %s line %llu, seq %llu: %s\n", sk_audit_problem_name(v->problem),
               v->segment, (unsigned long long)v->line, (unsigned long long)v->seq, v->detail);
        if (v->entries)
            printf("verified before it: entries %llu..%llu, epochs %llu..%llu, %u checkpoints\n",
                   (unsigned long long)v->first_seq, (unsigned long long)v->last_seq,
                   (unsigned long long)v->first_epoch, (unsigned long long)v->last_epoch,
                   v->checkpoints);
    } else if (v->entries == 0) {
        printf("OK: no entries\n");
    } else {
        if (v->checkpoints)
            fmt_local(v->last_signed_ms, when, sizeof(when));
        else if (sk_strlcpy(when, sizeof(when), "never") != 0)
            when[0] = '\0';
        printf("OK: entries %llu..%llu verified, %u checkpoints, last signed at %s\n",
               (unsigned long long)v->first_seq, (unsigned long long)v->last_seq, v->checkpoints,
               when);
        printf("epochs: %llu..%llu (each checkpoint signed by its own epoch's key)\n",
               (unsigned long long)v->first_epoch, (unsigned long long)v->last_epoch);
        if (v->checkpoints) {
            fmt_age(now - v->newest_cp_ms, age, sizeof(age));
            printf("newest checkpoint: %s, %s old%s\n", when, age,
                   v->closed ? ", closing (writer stopped cleanly)" : "");
        }
        if (v->unsealed)
            printf("note: entries %llu..%llu are not yet covered by a signed checkpoint "
                   "(writer still running; younger than one epoch of %llds)\n",
                   (unsigned long long)(v->last_seq - v->unsealed + 1),
                   (unsigned long long)v->last_seq, (long long)(v->epoch_secs ? v->epoch_secs : 900));
    }
    for (unsigned i = 0; i < v->witnesses && i < 8; i++)
        printf("witness %s\n", v->witness_status[i]);
    if (v->witnesses > 8)
        printf("witnesses: %u of %u present\n", v->witnesses_ok, v->witnesses);
}

static int load_pub(const char *path, uint8_t pub[32])
{
    char keyid[SK_AUDIT_HASH_HEX + 1];
    if (sk_audit_pubkey_load(path, pub, keyid) != 0) {
        fprintf(stderr, "sekishoctl audit verify: cannot load Ed25519 public key %s\n", path);
        return -1;
    }
    return 0;
}

/* One node's verdict in a multi-node verify: a header naming the node and its
 * directory, then the single-directory report. 0 OK, 1 failed. */
static int verify_node(const char *dir, const uint8_t pub[32], const sk_audit_verify_opts *vo,
                       char node[SK_AUDIT_NODE_MAX + 1])
{
    sk_audit_verdict v;
    char err[256];
    if (sk_audit_verify_ex(dir, pub, vo, &v) != 0) {
        fprintf(stderr, "sekishoctl audit verify: verification of %s could not run\n", dir);
        return -1;
    }
    /* The label: the node the verified entries name, else the directory's. */
    if (v.node[0])
        memcpy(node, v.node, sizeof(v.node));
    else if (sk_audit_dir_node(dir, node, err, sizeof(err)) != 1)
        memcpy(node, "-", 2);
    printf("== node %s: %s\n", node, dir);
    print_verdict(&v, vo->now_ms);
    if (v.problem != SK_AUDIT_OK) {
        fprintf(stderr, "sekishoctl audit verify: node %s: %s at %s line %llu (seq %llu)\n", node,
                sk_audit_problem_name(v.problem), v.segment, (unsigned long long)v.line,
                (unsigned long long)v.seq);
        return 1;
    }
    return 0;
}

/* Several nodes: each directory is its own chain with its own (or a shared)
 * initial key; the command fails if any node fails or one node appears twice. */
static int verify_nodes(const char *const *dirs, size_t nd, const uint8_t (*pubs)[32], size_t np,
                        const sk_audit_verify_opts *vo)
{
    char (*nodes)[SK_AUDIT_NODE_MAX + 1] = calloc(nd, sizeof(*nodes));
    unsigned failed = 0;
    int rc = 1;
    if (!nodes)
        return 1;
    for (size_t i = 0; i < nd; i++) {
        int r = verify_node(dirs[i], pubs[np == 1 ? 0 : i], vo, nodes[i]);
        if (r < 0)
            goto out;
        for (size_t j = 0; r == 0 && strcmp(nodes[i], "-") != 0 && j < i; j++)
            if (strcmp(nodes[i], nodes[j]) == 0) {
                printf("FAIL: node %s: both %s and %s hold its log\n", nodes[i], dirs[j], dirs[i]);
                fprintf(stderr, "sekishoctl audit verify: node %s appears twice (%s, %s)\n",
                        nodes[i], dirs[j], dirs[i]);
                r = 1;
            }
        if (r != 0) {
            failed++;
            nodes[i][0] = '\0'; /* marks it failed for the summary */
        }
    }
    printf("nodes: %zu verified, %u failed", nd - failed, failed);
    if (failed) {
        const char *sep = " (";
        for (size_t i = 0; i < nd; i++)
            if (!nodes[i][0]) {
                char lbl[SK_AUDIT_NODE_MAX + 1], err[256];
                if (sk_audit_dir_node(dirs[i], lbl, err, sizeof(err)) != 1)
                    memcpy(lbl, "-", 2);
                printf("%s%s", sep, lbl);
                sep = ", ";
            }
        fputc(')', stdout);
    }
    fputc('\n', stdout);
    rc = failed ? 1 : 0;
out:
    free(nodes);
    return rc;
}

/* verify's options: --pubkey (repeatable), --at, --witness FILE...; 0 ok, -1 usage. */
static int parse_verify_opts(int argc, char **argv, const char **pub_paths, size_t *np,
                             const char **wit, sk_audit_verify_opts *vo)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--pubkey") == 0 && i + 1 < argc) {
            pub_paths[(*np)++] = argv[++i];
        } else if (strcmp(argv[i], "--at") == 0 && i + 1 < argc) {
            if (parse_time(argv[++i], &vo->now_ms) != 0 || vo->now_ms <= 0) {
                fprintf(stderr, "sekishoctl audit verify: bad time for --at\n");
                return -1;
            }
        } else if (strcmp(argv[i], "--witness") == 0 && i + 1 < argc) {
            /* --witness FILE... : every following argument that is not an option */
            while (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0)
                wit[vo->n_witness++] = argv[++i];
        } else {
            fprintf(stderr, "sekishoctl audit verify: unknown option: %s\n", argv[i]);
            usage();
            return -1;
        }
    }
    vo->witness = wit;
    return 0;
}

static int cmd_verify(const char *const *dirs, size_t nd, const char *key_path, int argc,
                      char **argv)
{
    char pub_default[4200];
    const char **wit = NULL, **pub_paths = NULL;
    size_t np = 0;
    uint8_t (*pubs)[32] = NULL;
    sk_audit_verdict v;
    sk_audit_verify_opts vo;
    struct timespec ts;
    int rc = 1;

    memset(&vo, 0, sizeof(vo));
    wit = calloc((size_t)argc, sizeof(*wit));
    pub_paths = calloc((size_t)argc + 1, sizeof(*pub_paths));
    pubs = calloc((size_t)argc + 1, sizeof(*pubs));
    if (!wit || !pub_paths || !pubs)
        goto out;
    if (parse_verify_opts(argc, argv, pub_paths, &np, wit, &vo) != 0) {
        rc = 2;
        goto out;
    }
    if (nd > 1 && ((np != 0 && np != 1 && np != nd) || vo.n_witness)) {
        fprintf(stderr, "sekishoctl audit verify: with %zu directories give --pubkey once (a shared "
                "initial key) or once per --dir, and no --witness (verify one node for that)\n", nd);
        rc = 2;
        goto out;
    }
    if (np > 1 && nd == 1) /* one directory: the last --pubkey counts, as before */
        pub_paths[0] = pub_paths[np - 1], np = 1;
    if (np == 0) {
        if (!key_path || !*key_path) {
            fprintf(stderr, "sekishoctl audit verify: no [audit] key configured; use --pubkey\n");
            rc = 2;
            goto out;
        }
        if (sk_snprintf(pub_default, sizeof(pub_default), "%s.pub", key_path) != 0) {
            fprintf(stderr, "sekishoctl audit verify: key path too long\n");
            goto out;
        }
        pub_paths[np++] = pub_default;
    }
    for (size_t i = 0; i < np; i++)
        if (load_pub(pub_paths[i], pubs[i]) != 0)
            goto out;
    if (!vo.now_ms) {
        if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
            goto out;
        vo.now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    }
    if (nd > 1) {
        rc = verify_nodes(dirs, nd, (const uint8_t(*)[32])pubs, np, &vo);
        goto out;
    }
    if (sk_audit_verify_ex(dirs[0], pubs[0], &vo, &v) != 0) {
        fprintf(stderr, "sekishoctl audit verify: verification could not run\n");
        goto out;
    }
    print_verdict(&v, vo.now_ms);
    if (v.problem != SK_AUDIT_OK) {
        fprintf(stderr, "sekishoctl audit verify: %s at %s line %llu (seq %llu)\n",
                sk_audit_problem_name(v.problem), v.segment, (unsigned long long)v.line,
                (unsigned long long)v.seq);
        goto out;
    }
    rc = 0;
out:
    free(wit);
    free(pub_paths);
    free(pubs);
    return rc;
}

static int cmd_head(const char *dir, int argc)
{
    char err[256], *text = NULL;
    if (argc != 1) {
        usage();
        return 2;
    }
    if (sk_audit_head_text(dir, &text, err, sizeof(err)) != 0) {
        fprintf(stderr, "sekishoctl audit head: %s\n", err);
        return 1;
    }
    fputs(text, stdout);
    free(text);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "sekishoctl audit head: write error on stdout\n");
        return 1;
    }
    return 0;
}

static int cmd_keygen(const char *dir, const char *key_path, int argc)
{
    char err[512];
    if (argc != 1) {
        usage();
        return 2;
    }
    if (!key_path || !*key_path) {
        fprintf(stderr, "sekishoctl audit keygen: no [audit] key configured\n");
        return 2;
    }
    if (sk_audit_keygen(key_path, dir, err, sizeof(err)) != 0) {
        fprintf(stderr, "sekishoctl audit keygen: %s\n", err);
        return 1;
    }
    printf("wrote %s (private, 0600) and %s.pub\n", key_path, key_path);
    /* The initial verification key: the auditors keep this copy off the host;
     * every later epoch key is reached from it through signed handoffs. */
    {
        char pub_path[4200], *pem = NULL, keyid[SK_AUDIT_HASH_HEX + 1];
        uint8_t pub[32];
        size_t len = 0;
        if (sk_snprintf(pub_path, sizeof(pub_path), "%s.pub", key_path) != 0 ||
            sk_read_file(pub_path, 16384, &pem, &len) != 0 ||
            sk_audit_pubkey_load(pub_path, pub, keyid) != 0) {
            free(pem);
            fprintf(stderr, "sekishoctl audit keygen: cannot read back %s.pub\n", key_path);
            return 1;
        }
        printf("initial verification key (epoch 0, key id %s); keep a copy off this host:\n",
               keyid);
        fwrite(pem, 1, len, stdout);
        free(pem);
    }
    return 0;
}

/* Takes the --dir D options out of argv (in place; argv[0] stays). */
static int take_dirs(int *argc, char **argv, const char ***dirs, size_t *nd)
{
    int w = 1;
    *nd = 0;
    *dirs = calloc((size_t)*argc + 1, sizeof(**dirs));
    if (!*dirs)
        return -1;
    for (int i = 1; i < *argc; i++) {
        if (strcmp(argv[i], "--dir") == 0) {
            if (i + 1 >= *argc || !argv[i + 1][0]) {
                fprintf(stderr, "sekishoctl audit: --dir needs a directory\n");
                return 2;
            }
            (*dirs)[(*nd)++] = argv[++i];
            continue;
        }
        argv[w++] = argv[i];
    }
    *argc = w;
    return 0;
}

int ctl_audit_main(const char *audit_dir, const char *key_path, const char *tz, int argc,
                   char **argv)
{
    const char *sub;
    const char **dirs = NULL;
    size_t nd = 0;
    int rc = 2;
    if (argc < 1 || !argv || !argv[0]) {
        usage();
        return 2;
    }
    sub = argv[0];
    if (set_tz(tz) != 0) {
        fprintf(stderr, "sekishoctl audit: cannot set the time zone\n");
        return 1;
    }
    if (strcmp(sub, "keygen") == 0)
        return cmd_keygen(audit_dir, key_path, argc);
    if (strcmp(sub, "show") == 0 || strcmp(sub, "export") == 0 || strcmp(sub, "verify") == 0) {
        rc = take_dirs(&argc, argv, &dirs, &nd);
        if (rc != 0)
            goto out;
        rc = 2;
        if (nd == 0 && audit_dir && *audit_dir)
            dirs[nd++] = audit_dir;
    } else if (audit_dir && *audit_dir) {
        rc = 0;
    }
    if (nd == 0 && (!audit_dir || !*audit_dir)) {
        fprintf(stderr, "sekishoctl audit: no audit directory configured\n");
        goto out;
    }
    if (strcmp(sub, "show") == 0)
        rc = nd > 1 ? cmd_list_merged(dirs, nd, argc, argv, 0) : cmd_list(dirs[0], argc, argv, 0);
    else if (strcmp(sub, "export") == 0)
        rc = nd > 1 ? cmd_list_merged(dirs, nd, argc, argv, 1) : cmd_list(dirs[0], argc, argv, 1);
    else if (strcmp(sub, "verify") == 0)
        rc = cmd_verify(dirs, nd, key_path, argc, argv);
    else if (strcmp(sub, "head") == 0)
        rc = cmd_head(audit_dir, argc);
    else {
        fprintf(stderr, "sekishoctl audit: unknown subcommand: %s\n", sub);
        usage();
        rc = 2;
    }
out:
    free(dirs);
    return rc;
}
