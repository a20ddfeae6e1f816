/* sk_audit_testdrv — drives the audit API and ctl_audit_main for the
 * integration tests.
 *   ctl DIR KEY TZ SUBCOMMAND [ARGS...]   run `sekishoctl audit ...` code
 *   append DIR KEY N                      append N mixed events, close
 *   idle DIR KEY SECS                     open, append one, idle SECS s (heartbeat), close
 *   crash DIR KEY                         append forever from 3 threads; after
 *                                         each acknowledged durable append print
 *                                         "SEQ N" on stdout (a pipe)
 *   check DIR ACKFILE                     every "SEQ N" in ACKFILE is in the log
 *   days DIR KEY NDAYS RETENTION_DAYS [START]
 *                                         one open/append/close per simulated day
 *                                         (from START, epoch seconds; default 2024-01-01)
 * Environment: SK_AUDIT_WITNESS (witness command), SK_AUDIT_EPOCH_S (epoch length),
 * SK_AUDIT_NOTIFY (sendmail -t compatible command for the operators' alarm),
 * SK_AUDIT_NODE ([audit] node: the writing node, format 3).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl_audit.h"
#include "sk_audit.h"
#include "sk_util.h"

static int64_t g_clock;
static int64_t fake_clock(void *ctx)
{
    (void)ctx;
    return g_clock;
}

static int open_log(const char *dir, const char *key, uint32_t every, int fake, int64_t retention,
                    sk_audit **a)
{
    sk_audit_options o;
    char err[256];
    memset(&o, 0, sizeof(o));
    o.dir = dir;
    o.key_path = key;
    o.checkpoint_every = every;
    o.retention_secs = retention;
    /* Optional, for the tests of epochs and witnesses. */
    o.witness = getenv("SK_AUDIT_WITNESS");
    o.node = getenv("SK_AUDIT_NODE"); /* format 3: the writing node (unset: none) */
    o.notify_command = getenv("SK_AUDIT_NOTIFY");
    o.notify_to = getenv("SK_AUDIT_NOTIFY") ? "ops@example.org" : NULL;
    if (getenv("SK_AUDIT_EPOCH_S")) {
        uint64_t es;
        if (sk_parse_u64(getenv("SK_AUDIT_EPOCH_S"), 1, 86400, &es) != 0)
            return -1;
        o.epoch_secs = (uint32_t)es;
    }
    if (fake) {
        o.clock_ms = fake_clock;
        o.clock_ctx = NULL;
    }
    if (sk_audit_open(&o, a, err, sizeof(err)) != 0) {
        fprintf(stderr, "open: %s\n", err);
        return -1;
    }
    return 0;
}

static int append_mixed(sk_audit *a, unsigned i)
{
    static const char *reasons[] = {SK_AUDIT_REASON_BAD_PASSWORD, SK_AUDIT_REASON_UNKNOWN_USER,
                                    SK_AUDIT_REASON_BAD_TOTP, SK_AUDIT_REASON_LOCKED};
    char n[32];
    sk_audit_kv kv[2] = {{"reason", reasons[i % 4]}, {"n", n}};
    sk_audit_event ev = {.event = SK_AUDIT_EV_LOGIN_FAIL, .actor = i % 2 ? "alice" : "bob",
                         .tenant = "acme", .peer = "192.0.2.7", .serial = "1F", .kv = kv, .n_kv = 2};
    if (sk_snprintf(n, sizeof(n), "%u", i) != 0)
        return -1;
    switch (i % 5) {
    case 0:
        return sk_audit_append(a, &ev, 1, NULL);
    case 1:
        return sk_audit_request(a, "alice", "acme", "192.0.2.7", "1F", "GET", "/admin/x?a=\"b\"\n", 200,
                                1234, 567);
    case 2:
        ev.event = SK_AUDIT_EV_ADMIN;
        ev.actor = "operator";
        kv[0].key = "op";
        kv[0].value = "user unlock bob";
        return sk_audit_append(a, &ev, 1, NULL);
    case 3:
        return sk_audit_refused(a, "203.0.113.9", "revoked", "2A");
    default:
        ev.event = SK_AUDIT_EV_LOGIN_OK;
        ev.n_kv = 0;
        return sk_audit_append(a, &ev, 1, NULL);
    }
}

static int cmd_append(const char *dir, const char *key, const char *ns)
{
    uint64_t n;
    sk_audit *a;
    if (sk_parse_u64(ns, 1, 1000000, &n) != 0 || open_log(dir, key, 7, 0, 0, &a) != 0)
        return 2;
    for (unsigned i = 0; i < n; i++)
        if (append_mixed(a, i) != 0) {
            sk_audit_close(a);
            return 1;
        }
    printf("%llu\n", (unsigned long long)sk_audit_last_seq(a));
    sk_audit_close(a);
    return 0;
}

/* Open, append one event, print "open" (a pipe) and stay idle SECS seconds with
 * the heartbeat thread running, then close. */
static int cmd_idle(const char *dir, const char *key, const char *secs)
{
    uint64_t n;
    sk_audit *a;
    sk_audit_event ev = {.event = SK_AUDIT_EV_LOGIN_OK, .actor = "idle"};
    if (sk_parse_u64(secs, 1, 600, &n) != 0 || open_log(dir, key, 1000, 0, 0, &a) != 0)
        return 2;
    if (sk_audit_append(a, &ev, 1, NULL) != 0) {
        sk_audit_close(a);
        return 1;
    }
    printf("open\n");
    fflush(stdout);
    sleep((unsigned)n);
    sk_audit_close(a);
    return 0;
}

static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned g_counter;

static void *crash_thread(void *p)
{
    sk_audit *a = p;
    for (;;) {
        char n[32], out[64];
        unsigned i;
        uint64_t seq = 0;
        sk_audit_kv kv = {"n", n};
        sk_audit_event ev = {.event = SK_AUDIT_EV_LOGIN_OK, .actor = "crash", .kv = &kv, .n_kv = 1};
        pthread_mutex_lock(&out_mu);
        i = g_counter++;
        pthread_mutex_unlock(&out_mu);
        if (sk_snprintf(n, sizeof(n), "%u", i) != 0)
            return NULL;
        if (sk_audit_request(a, "crash", "t", "::1", NULL, "GET", "/", 200, 1, 1) != 0 ||
            sk_audit_append(a, &ev, 1, &seq) != 0) {
            fprintf(stderr, "append failed\n");
            _exit(3);
        }
        /* acknowledged: report it */
        if (sk_snprintf(out, sizeof(out), "%llu %u\n", (unsigned long long)seq, i) != 0)
            _exit(3);
        pthread_mutex_lock(&out_mu);
        if (write(1, out, strlen(out)) != (ssize_t)strlen(out))
            _exit(3);
        pthread_mutex_unlock(&out_mu);
    }
    return NULL;
}

static int cmd_crash(const char *dir, const char *key)
{
    sk_audit *a;
    pthread_t th[3];
    if (open_log(dir, key, 50, 0, 0, &a) != 0)
        return 2;
    for (int i = 0; i < 3; i++)
        if (pthread_create(&th[i], NULL, crash_thread, a) != 0)
            return 2;
    for (;;)
        pause();
}

struct ack {
    uint64_t seq;
    unsigned n;
};

static int cmd_check(const char *dir, const char *ackfile)
{
    FILE *f = fopen(ackfile, "r");
    struct ack *acks = NULL;
    size_t nacks = 0, cap = 0, found = 0;
    unsigned long long s;
    unsigned n;
    sk_audit_reader *r = NULL;
    sk_audit_entry e;
    const char *line;
    char err[256];
    int k, rc = 1;
    memset(&e, 0, sizeof(e));
    if (!f)
        return 2;
    while (fscanf(f, "%llu %u", &s, &n) == 2) {
        if (nacks == cap) {
            cap = cap ? cap * 2 : 1024;
            acks = realloc(acks, cap * sizeof(*acks));
            if (!acks)
                return 2;
        }
        acks[nacks].seq = s;
        acks[nacks++].n = n;
    }
    fclose(f);
    if (nacks == 0) {
        fprintf(stderr, "check: no acknowledged entries\n");
        goto out;
    }
    if (sk_audit_reader_open(dir, &r, err, sizeof(err)) != 0)
        goto out;
    /* acks arrive in nearly increasing seq order; index by seq */
    {
        uint64_t maxseq = 0;
        char **byseq;
        for (size_t i = 0; i < nacks; i++)
            if (acks[i].seq > maxseq)
                maxseq = acks[i].seq;
        byseq = calloc(maxseq + 1, sizeof(*byseq));
        if (!byseq)
            goto out;
        while ((k = sk_audit_reader_next(r, &e, &line, err, sizeof(err))) == 1)
            if (e.seq <= maxseq && strcmp(e.event, SK_AUDIT_EV_LOGIN_OK) == 0)
                byseq[e.seq] = strdup(e.details);
        if (k < 0) {
            fprintf(stderr, "check: %s\n", err);
        } else {
            for (size_t i = 0; i < nacks; i++) {
                char want[64];
                if (sk_snprintf(want, sizeof(want), "{\"n\":\"%u\"}", acks[i].n) != 0)
                    break;
                if (byseq[acks[i].seq] && strcmp(byseq[acks[i].seq], want) == 0)
                    found++;
                else
                    fprintf(stderr, "check: acknowledged seq %llu (n=%u) missing\n",
                            (unsigned long long)acks[i].seq, acks[i].n);
            }
        }
        for (uint64_t i = 0; i <= maxseq; i++)
            free(byseq[i]);
        free(byseq);
    }
    printf("%zu of %zu acknowledged entries present\n", found, nacks);
    rc = found == nacks ? 0 : 1;
out:
    sk_audit_entry_free(&e);
    sk_audit_reader_close(r);
    free(acks);
    return rc;
}

static int cmd_days(const char *dir, const char *key, const char *nds, const char *rds,
                    const char *start)
{
    uint64_t nd, rd, st = 1704067200; /* 2024-01-01 */
    if (sk_parse_u64(nds, 1, 5000, &nd) != 0 || sk_parse_u64(rds, 1, 5000, &rd) != 0 ||
        (start && sk_parse_u64(start, 0, 4000000000ULL, &st) != 0))
        return 2;
    g_clock = ((int64_t)st / 86400 * 86400 + 3600) * 1000; /* 01:00Z that day */
    for (uint64_t d = 0; d < nd; d++) {
        sk_audit *a;
        if (open_log(dir, key, 1000, 1, (int64_t)rd * 86400, &a) != 0)
            return 1;
        for (unsigned i = 0; i < 5; i++) {
            if (append_mixed(a, i) != 0) {
                sk_audit_close(a);
                return 1;
            }
            g_clock += 60000;
        }
        if (d % 3 == 0) {
            unsigned removed;
            if (sk_audit_prune(a, &removed) != 0)
                return 1;
        }
        sk_audit_close(a);
        g_clock += 86400000LL - 5 * 60000;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 6 && strcmp(argv[1], "ctl") == 0)
        return ctl_audit_main(argv[2], argv[3], argv[4], argc - 5, argv + 5);
    if (argc == 5 && strcmp(argv[1], "append") == 0)
        return cmd_append(argv[2], argv[3], argv[4]);
    if (argc == 5 && strcmp(argv[1], "idle") == 0)
        return cmd_idle(argv[2], argv[3], argv[4]);
    if (argc == 4 && strcmp(argv[1], "crash") == 0)
        return cmd_crash(argv[2], argv[3]);
    if (argc == 4 && strcmp(argv[1], "check") == 0)
        return cmd_check(argv[2], argv[3]);
    if ((argc == 6 || argc == 7) && strcmp(argv[1], "days") == 0)
        return cmd_days(argv[2], argv[3], argv[4], argv[5], argc == 7 ? argv[6] : NULL);
    fprintf(stderr, "usage: see the comment at the top of audit_testdrv.c\n");
    return 2;
}
