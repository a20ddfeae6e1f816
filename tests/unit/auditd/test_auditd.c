/* Unit tests of auditd: a real sk_audit served over a SEQPACKET socketpair (or the
 * ctl socket), a remote handle at the other end. What arrives through the wire
 * must be in the log exactly as the same calls made in-process put it there. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "sk_auditd.h"
#include "sk_wire_audit.h"

struct fx {
    char root[256], dir[300], key[300], pub[310], dir2[300], key2[300], pub2[310];
    uint8_t pubraw[32], pubraw2[32];
    sk_audit *a;             /* the real writer (auditd's) */
    sk_audit *remote;        /* the client's handle */
    int sv[2];
    pthread_t srv;
    volatile int stop;
    enum sk_wire_peer peer;
    int ctl_fd;              /* listening ctl socket, -1 none */
    int *multi_fds;          /* several channels (else sv[0] alone) */
    enum sk_wire_peer *multi_peers;
    unsigned multi_n;
    int run_rc;
};

static sk_audit *open_log(const char *dir, const char *key)
{
    sk_audit_options o;
    sk_audit *a = NULL;
    char err[256] = "";
    memset(&o, 0, sizeof o);
    o.dir = dir;
    o.key_path = key;
    o.no_thread = 1;
    o.retention_secs = -1;
    if (sk_audit_open(&o, &a, err, sizeof err) != 0)
        print_error("open: %s\n", err);
    assert_non_null(a);
    return a;
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    char keyid[65];
    const char *tmp = getenv("TMPDIR");
    assert_non_null(f);
    assert_true(snprintf(f->root, sizeof f->root, "%s/skauditd-XXXXXX", tmp ? tmp : "/tmp") > 0);
    assert_non_null(mkdtemp(f->root));
    assert_true(snprintf(f->dir, sizeof f->dir, "%s/audit", f->root) > 0);
    assert_true(snprintf(f->dir2, sizeof f->dir2, "%s/direct", f->root) > 0);
    assert_true(snprintf(f->key, sizeof f->key, "%s/audit.key", f->root) > 0);
    assert_true(snprintf(f->pub, sizeof f->pub, "%s.pub", f->key) > 0);
    assert_int_equal(sk_audit_keygen(f->key, f->dir, NULL, 0), 0);
    assert_int_equal(sk_audit_pubkey_load(f->pub, f->pubraw, keyid), 0);
    /* The in-process comparison log has its own key (a key remembers its log's head). */
    assert_true(snprintf(f->key2, sizeof f->key2, "%s/direct.key", f->root) > 0);
    assert_true(snprintf(f->pub2, sizeof f->pub2, "%s.pub", f->key2) > 0);
    assert_int_equal(sk_audit_keygen(f->key2, f->dir2, NULL, 0), 0);
    assert_int_equal(sk_audit_pubkey_load(f->pub2, f->pubraw2, keyid), 0);
    f->ctl_fd = -1;
    f->sv[0] = f->sv[1] = -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[400];
    assert_true(snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->root) > 0);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

static void *server_main(void *p)
{
    struct fx *f = p;
    if (f->multi_fds != NULL)
        f->run_rc = sk_auditd_run(f->a, f->multi_fds, f->multi_peers, f->multi_n, f->ctl_fd, &f->stop);
    else
        f->run_rc = sk_auditd_run(f->a, f->sv[0] >= 0 ? &f->sv[0] : NULL, &f->peer, f->sv[0] >= 0 ? 1 : 0,
                                  f->ctl_fd, &f->stop);
    return NULL;
}

/* auditd on one channel of class peer (and the ctl socket when f->ctl_fd >= 0);
 * f->remote is the client's handle on the channel. */
static void start(struct fx *f, enum sk_wire_peer peer)
{
    sk_wire_client *c = NULL;
    f->a = open_log(f->dir, f->key);
    f->peer = peer;
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, f->sv), 0);
    assert_int_equal(pthread_create(&f->srv, NULL, server_main, f), 0);
    assert_int_equal(sk_wire_client_new(&f->sv[1], 1, "auditd", &c), 0);
    assert_int_equal(sk_auditd_client_open(c, &f->remote), 0);
}

static void stop(struct fx *f)
{
    sk_audit_close(f->remote); /* closes sv[1]: the client owns it */
    f->remote = NULL;
    f->stop = 1;
    assert_int_equal(pthread_join(f->srv, NULL), 0);
    assert_int_equal(f->run_rc, 0);
    close(f->sv[0]);
    sk_audit_close(f->a);
    f->a = NULL;
}

/* auditd stamps what came over the wire with the channel's class ("via":"net");
 * the in-process writer has nothing to stamp. Compared without it. */
static const char *without_via(const char *details)
{
    static char buf[8192];
    const char *v;
    size_t n;
    if (details == NULL)
        return "(null)";
    if (strcmp(details, "{\"via\":\"net\"}") == 0)
        return "{}";
    v = strstr(details, ",\"via\":\"net\"");
    n = strlen(details);
    if (v == NULL || n >= sizeof buf)
        return details;
    memcpy(buf, details, (size_t)(v - details));
    memcpy(buf + (v - details), v + 12, n - (size_t)(v - details) - 12 + 1);
    return buf;
}

/* How many entries of dir say they came in over a channel of class `via`. */
static size_t count_via(const char *dir, const char *via)
{
    sk_audit_reader *r = NULL;
    sk_audit_entry e;
    const char *line;
    char err[256], want[64];
    size_t n = 0;
    memset(&e, 0, sizeof e);
    assert_int_equal(sk_snprintf(want, sizeof want, "\"via\":\"%s\"", via), 0);
    assert_int_equal(sk_audit_reader_open(dir, &r, err, sizeof err), 0);
    while (sk_audit_reader_next(r, &e, &line, err, sizeof err) == 1)
        n += e.details != NULL && strstr(e.details, want) != NULL;
    sk_audit_entry_free(&e);
    sk_audit_reader_close(r);
    return n;
}

/* The entries of dir other than the writer's own, one "ev|actor|tenant|peer|serial|details" line each. */
static size_t read_log(const char *dir, char **out, size_t cap)
{
    sk_audit_reader *r = NULL;
    sk_audit_entry e;
    const char *line;
    char err[256];
    size_t n = 0;
    int k;
    memset(&e, 0, sizeof e);
    assert_int_equal(sk_audit_reader_open(dir, &r, err, sizeof err), 0);
    while ((k = sk_audit_reader_next(r, &e, &line, err, sizeof err)) == 1) {
        char *s;
        if (strncmp(e.event, "audit.", 6) == 0)
            continue;
        assert_true(n < cap);
        assert_true(asprintf(&s, "%s|%s|%s|%s|%s|%s", e.event, e.actor ? e.actor : "(null)",
                             e.tenant ? e.tenant : "(null)", e.peer ? e.peer : "(null)",
                             e.serial ? e.serial : "(null)", without_via(e.details)) > 0);
        out[n++] = s;
    }
    assert_int_equal(k, 0);
    sk_audit_entry_free(&e);
    sk_audit_reader_close(r);
    return n;
}

static void free_lines(char **l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(l[i]);
}

static void verify_ok(const char *dir, const uint8_t pub[32])
{
    sk_audit_verdict v;
    assert_int_equal(sk_audit_verify(dir, pub, &v), 0);
    if (v.problem != SK_AUDIT_OK)
        print_error("verify %s: %s %s\n", dir, sk_audit_problem_name(v.problem), v.detail);
    assert_int_equal(v.problem, SK_AUDIT_OK);
}

/* The same calls on a handle: what the gateway does (events, request lines,
 * handshake refusals, flush). Long strings, NULL fields, UTF-8 at the cut. */
static void workload(sk_audit *a, uint64_t *seq, int remote)
{
    static char longv[3000], longp[2600];
    sk_audit_kv kv[] = { { "reason", "bad_password" }, { "nothing", NULL }, { "long", longv } };
    sk_audit_event e = { .event = SK_AUDIT_EV_LOGIN_FAIL, .actor = "alice", .tenant = "acme",
                         .peer = "192.0.2.7", .serial = "0A1B", .kv = kv, .n_kv = 3,
                         .details_json = "{\"n\":1,\"reason\":\"overridden\"}" };
    sk_audit_event e2 = { .event = SK_AUDIT_EV_START, .actor = NULL };
    uint64_t q = 0;
    int64_t old = 0;

    memset(longv, 'v', sizeof longv - 1);
    memcpy(longv + 2046, "\xe6\x97\xa5", 3); /* a 3-byte character across the cut */
    memset(longp, 'p', sizeof longp - 1);
    longp[0] = '/';
    assert_int_equal(sk_audit_append(a, &e, 1, seq), 0);
    assert_int_equal(sk_audit_request(a, "alice", "acme", "192.0.2.7", "0A1B", "GET", "/x?y=1", 200, 512, 1234), 0);
    assert_int_equal(sk_audit_request(a, NULL, NULL, "192.0.2.8", NULL, NULL, "/short", -1, 0, 7), 0);
    sk_audit_lag(a, &q, &old);
    /* auditd's own once-a-second flush may have written them already. */
    assert_true(q == 2 || (remote && q == 0));
    assert_true(old >= 0);
    /* Too long for the queue: written at once (and the queue before it). */
    assert_int_equal(sk_audit_request(a, NULL, NULL, "192.0.2.8", NULL, NULL, longp, 404, 0, 7), 0);
    sk_audit_lag(a, &q, &old);
    assert_int_equal(q, 0);
    assert_int_equal(sk_audit_refused(a, "192.0.2.9", "revoked", "0C0D"), 0);
    assert_int_equal(sk_audit_refused(a, "192.0.2.9", "revoked", "0C0D"), 0);
    assert_int_equal(sk_audit_refused(a, "192.0.2.10", "no_cert", NULL), 0);
    assert_int_equal(sk_audit_flush(a), 0);
    sk_audit_lag(a, &q, &old);
    assert_int_equal(q, 0);
    assert_int_equal(sk_audit_append(a, &e2, 0, NULL), 0);
    assert_int_equal(sk_audit_prune(a, NULL), 0);
}

static void wire_calls_land_like_direct_calls(void **state)
{
    struct fx *f = *state;
    char *via[32], *direct[32];
    size_t nv, nd;
    uint64_t seq_remote = 0, seq_direct = 0;
    sk_audit *d;

    start(f, SK_WIRE_PEER_NET);
    workload(f->remote, &seq_remote, 1);
    assert_true(seq_remote > 0);
    stop(f); /* closing the writer emits the refusal summary */

    d = open_log(f->dir2, f->key2);
    workload(d, &seq_direct, 0);
    sk_audit_close(d);

    nv = read_log(f->dir, via, 32);
    nd = read_log(f->dir2, direct, 32);
    /* login.failure, 3 request lines, gateway.start, the refusal summary */
    assert_int_equal(nv, 6);
    assert_int_equal(nv, nd);
    for (size_t i = 0; i < nv; i++)
        assert_string_equal(via[i], direct[i]);
    /* Spot checks that the comparison is not vacuous, and the stamp of the channel. */
    assert_int_equal(count_via(f->dir, "net"), 2); /* the two appends; request lines are not stamped */
    assert_int_equal(count_via(f->dir2, "net"), 0);
    assert_non_null(strstr(via[0], "\"long\":\"vvv"));
    assert_non_null(strstr(via[0], "\\u65E5...[cut]")); /* the whole character, then the cut */
    assert_non_null(strstr(via[0], "\"nothing\":null"));
    assert_non_null(strstr(via[0], "\"reason\":\"bad_password\""));
    assert_non_null(strstr(via[2], "http.request|(null)|(null)|192.0.2.8|(null)|"));
    assert_non_null(strstr(via[3], "...[cut]"));
    assert_non_null(strstr(via[5], "tls.refused.summary"));
    assert_non_null(strstr(via[5], "\"count\":2"));
    free_lines(via, nv);
    free_lines(direct, nd);
    verify_ok(f->dir, f->pubraw);
    verify_ok(f->dir2, f->pubraw2);
}

/* The appended entry's seq is what the durable append returned. */
static void durable_append_returns_its_seq(void **state)
{
    struct fx *f = *state;
    sk_audit_event e = { .event = SK_AUDIT_EV_LOGOUT, .actor = "bob" };
    uint64_t s1 = 0, s2 = 0;
    start(f, SK_WIRE_PEER_AUTHD);
    assert_int_equal(sk_audit_append(f->remote, &e, 1, &s1), 0);
    assert_int_equal(sk_audit_append(f->remote, &e, 1, &s2), 0);
    assert_int_equal(s2, s1 + 1);
    assert_int_equal(sk_audit_last_seq(f->a), s2);
    stop(f);
    verify_ok(f->dir, f->pubraw);
}

/* CTL may append and flush, never send request lines or ask the lag; nobody may
 * append the writer's own audit.* records. */
static void permits_are_enforced(void **state)
{
    struct fx *f = *state;
    sk_audit_event e = { .event = SK_AUDIT_EV_ADMIN, .actor = "root", .kv = NULL };
    sk_audit_event forged = { .event = SK_AUDIT_EV_CHECKPOINT, .actor = "mallory" };
    char *lines[8];
    uint64_t q = 99;
    int64_t old = 99;
    size_t n;

    start(f, SK_WIRE_PEER_CTL);
    /* Posted: the client cannot tell, but nothing may be queued or written. */
    assert_int_equal(sk_audit_request(f->remote, "x", "acme", "192.0.2.1", NULL, "GET", "/", 200, 1, 1), 0);
    assert_int_equal(sk_audit_refused(f->remote, "192.0.2.1", "revoked", "01"), 0);
    sk_audit_lag(f->remote, &q, &old); /* refused: zeros */
    assert_int_equal(q, 0);
    assert_int_equal(old, 0);
    {
        uint64_t rq = 0;
        int64_t ro = 0;
        sk_audit_lag(f->a, &rq, &ro);
        assert_int_equal(rq, 0);
    }
    assert_int_equal(sk_audit_append(f->remote, &forged, 1, NULL), -1);
    assert_int_equal(sk_audit_append(f->remote, &e, 1, NULL), 0);
    assert_int_equal(sk_audit_flush(f->remote), 0);
    stop(f);
    n = read_log(f->dir, lines, 8);
    assert_int_equal(n, 1);
    assert_non_null(strstr(lines[0], "admin.change|root|"));
    free_lines(lines, n);
    verify_ok(f->dir, f->pubraw);
}

/* Garbage on the channel is dropped (a bad header) or answered BADMSG; the
 * server goes on serving. */
static void malformed_datagrams_are_dropped(void **state)
{
    struct fx *f = *state;
    static uint8_t buf[SK_WIRE_MAX];
    const uint8_t bad_version[] = { 9, 0, 0x01, 0x02, 1, 0, 0, 0, 'x' };
    const uint8_t garbage[] = { 0xff, 0xff, 0xff, 0x00, 0x01 };
    sk_audit_event e = { .event = SK_AUDIT_EV_LOGIN_OK, .actor = "carol" };
    sk_wire_msg m;
    sk_wire_r r;
    int fd;
    char *lines[8];
    size_t n;

    start(f, SK_WIRE_PEER_NET);
    fd = f->sv[1]; /* the client's end, used raw between calls */
    assert_int_equal(send(fd, bad_version, sizeof bad_version, 0), (ssize_t)sizeof bad_version);
    assert_int_equal(send(fd, "abc", 3, 0), 3); /* shorter than a header */
    assert_int_equal(sk_wire_send(fd, SK_WIRE_AUDIT_REQUEST, 7, garbage, sizeof garbage), 0); /* posted: no answer */
    assert_int_equal(sk_wire_send(fd, SK_WIRE_AUDIT_APPEND, 8, garbage, sizeof garbage), 0);
    assert_int_equal(sk_wire_recv(fd, buf, sizeof buf, &m, 5000), 0);
    assert_int_equal(m.type, SK_WIRE_AUDIT_APPEND | SK_WIRE_REPLY);
    assert_int_equal(m.id, 8);
    sk_wire_r_init(&r, m.payload, m.len);
    assert_int_equal(sk_wire_get_i32(&r), SK_WIRE_ERR_BADMSG);
    assert_int_equal(sk_wire_r_end(&r), 0);
    assert_int_equal(sk_wire_send(fd, SK_WIRE_AUDIT_FLUSH, 9, "x", 1), 0); /* FLUSH has no fields */
    assert_int_equal(sk_wire_recv(fd, buf, sizeof buf, &m, 5000), 0);
    assert_int_equal(m.id, 9);
    sk_wire_r_init(&r, m.payload, m.len);
    assert_int_equal(sk_wire_get_i32(&r), SK_WIRE_ERR_BADMSG);
    /* Still serving. */
    assert_int_equal(sk_audit_append(f->remote, &e, 1, NULL), 0);
    stop(f);
    n = read_log(f->dir, lines, 8);
    assert_int_equal(n, 1);
    assert_non_null(strstr(lines[0], "login.success|carol|"));
    free_lines(lines, n);
    verify_ok(f->dir, f->pubraw);
}

/* A restarted auditd: the monitor's SK_WIRE_RESET makes the waiting append fail. */
/* The dead server's last read, a reset from the monitor, then the new server: the
 * same request comes again and its answer completes the call. */
static void *reset_then_answer(void *p)
{
    int fd = *(int *)p;
    static uint8_t first[SK_WIRE_MAX], again[SK_WIRE_MAX], out[64];
    sk_wire_msg m1, m2;
    sk_wire_audit_seq_rep rep = { 0, 42 };
    sk_wire_w w;
    if (sk_wire_recv(fd, first, sizeof first, &m1, 5000) != 0 || sk_wire_send(fd, SK_WIRE_RESET, 0, NULL, 0) != 0)
        return NULL;
    if (sk_wire_recv(fd, again, sizeof again, &m2, 5000) != 0 || m2.type != SK_WIRE_AUDIT_APPEND ||
        m2.len != m1.len || memcmp(m1.payload, m2.payload, m1.len) != 0)
        return NULL;
    sk_wire_w_init(&w, out, sizeof out);
    if (sk_wire_audit_encode(SK_WIRE_AUDIT_APPEND, 1, &rep, &w) != 0 ||
        sk_wire_send(fd, SK_WIRE_AUDIT_APPEND | SK_WIRE_REPLY, m2.id, out, w.len) != 0)
        return NULL;
    return p;
}

static void reset_asks_the_new_server(void **state)
{
    struct fx *f = *state;
    sk_wire_client *c = NULL;
    sk_audit *h = NULL;
    sk_audit_event e = { .event = SK_AUDIT_EV_LOGIN_OK, .actor = "dave" };
    uint64_t seq = 0;
    pthread_t t;
    void *done = NULL;
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, f->sv), 0);
    assert_int_equal(sk_wire_client_new(&f->sv[1], 1, "auditd", &c), 0);
    assert_int_equal(sk_auditd_client_open(c, &h), 0);
    assert_int_equal(pthread_create(&t, NULL, reset_then_answer, &f->sv[0]), 0);
    assert_int_equal(sk_audit_append(h, &e, 1, &seq), 0);
    assert_int_equal(seq, 42);
    assert_int_equal(pthread_join(t, &done), 0);
    assert_non_null(done);
    sk_audit_close(h);
    close(f->sv[0]);
}

/* Every bound of the wire is an error at the client, never a silent loss of
 * fields: over-long event names and keys, too many kv. */
static void client_refuses_what_does_not_fit(void **state)
{
    struct fx *f = *state;
    char name[80];
    sk_audit_kv kv[SK_WIRE_AUDIT_MAX_KV + 1];
    sk_audit_event e = { .event = name };
    char *lines[4];
    size_t n;
    memset(name, 'e', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    for (size_t i = 0; i < SK_ARRAY_LEN(kv); i++)
        kv[i] = (sk_audit_kv){ "k", "v" };
    start(f, SK_WIRE_PEER_NET);
    assert_int_equal(sk_audit_append(f->remote, &e, 1, NULL), -1);
    e.event = "x.ok";
    e.kv = kv;
    e.n_kv = SK_ARRAY_LEN(kv);
    assert_int_equal(sk_audit_append(f->remote, &e, 1, NULL), -1);
    e.n_kv = SK_WIRE_AUDIT_MAX_KV;
    assert_int_equal(sk_audit_append(f->remote, &e, 1, NULL), 0);
    stop(f);
    n = read_log(f->dir, lines, 4);
    assert_int_equal(n, 1);
    free_lines(lines, n);
}


/* The network process: several channels, one thread each may call at once; two
 * peer classes side by side. Every append is acknowledged with its own seq and
 * the log verifies. */
#define NCHAN 4
#define NTHREADS 8
#define PER_THREAD 40

struct worker {
    sk_audit *h;
    int id;
    uint64_t seqs[PER_THREAD];
};

static void *worker_main(void *p)
{
    struct worker *w = p;
    char actor[32];
    sk_audit_event e = { .event = SK_AUDIT_EV_LOGIN_OK, .actor = actor };
    if (snprintf(actor, sizeof actor, "w%d", w->id) <= 0)
        return NULL;
    for (int i = 0; i < PER_THREAD; i++) {
        if (sk_audit_append(w->h, &e, i % 4 == 0, &w->seqs[i]) != 0)
            return NULL;
        if (sk_audit_request(w->h, actor, "acme", "192.0.2.1", NULL, "GET", "/", 200, 1, 1) != 0)
            return NULL;
    }
    return p;
}

static void many_channels_many_threads(void **state)
{
    struct fx *f = *state;
    int srv_fds[NCHAN + 1], cli_fds[NCHAN];
    enum sk_wire_peer peers[NCHAN + 1];
    struct worker w[NTHREADS];
    pthread_t t[NTHREADS];
    sk_wire_client *c = NULL, *ca = NULL;
    sk_audit *h = NULL, *ha = NULL;
    sk_audit_event e = { .event = SK_AUDIT_EV_LOGOUT, .actor = "authd" };
    char *lines[NTHREADS * PER_THREAD * 2 + 8];
    uint64_t authd_seq = 0;
    size_t n;

    f->a = open_log(f->dir, f->key);
    for (int i = 0; i <= NCHAN; i++) {
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
        srv_fds[i] = sv[0];
        peers[i] = i < NCHAN ? SK_WIRE_PEER_NET : SK_WIRE_PEER_AUTHD;
        if (i < NCHAN)
            cli_fds[i] = sv[1];
        else
            assert_int_equal(sk_wire_client_new(&sv[1], 1, "auditd", &ca), 0);
    }
    f->multi_fds = srv_fds;
    f->multi_peers = peers;
    f->multi_n = NCHAN + 1;
    assert_int_equal(pthread_create(&f->srv, NULL, server_main, f), 0);
    assert_int_equal(sk_wire_client_new(cli_fds, NCHAN, "auditd", &c), 0);
    assert_int_equal(sk_auditd_client_open(c, &h), 0);
    assert_int_equal(sk_auditd_client_open(ca, &ha), 0);
    for (int i = 0; i < NTHREADS; i++) {
        w[i].h = h;
        w[i].id = i;
        assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
    }
    assert_int_equal(sk_audit_append(ha, &e, 1, &authd_seq), 0);
    for (int i = 0; i < NTHREADS; i++) {
        void *r = NULL;
        assert_int_equal(pthread_join(t[i], &r), 0);
        assert_ptr_equal(r, &w[i]);
    }
    assert_int_equal(sk_audit_flush(h), 0);
    sk_audit_close(h);
    sk_audit_close(ha);
    f->stop = 1;
    assert_int_equal(pthread_join(f->srv, NULL), 0);
    assert_int_equal(f->run_rc, 0);
    for (int i = 0; i <= NCHAN; i++)
        close(srv_fds[i]);
    sk_audit_close(f->a);
    f->a = NULL;
    /* Every acknowledged seq is distinct. */
    for (int i = 0; i < NTHREADS; i++)
        for (int k = 0; k < PER_THREAD; k++) {
            assert_true(w[i].seqs[k] > 0);
            assert_int_not_equal(w[i].seqs[k], authd_seq);
            for (int k2 = k + 1; k2 < PER_THREAD; k2++)
                assert_int_not_equal(w[i].seqs[k], w[i].seqs[k2]);
        }
    n = read_log(f->dir, lines, SK_ARRAY_LEN(lines));
    assert_int_equal(n, NTHREADS * PER_THREAD * 2 + 1);
    free_lines(lines, n);
    verify_ok(f->dir, f->pubraw);
}

/* An orderly stop serves what was already sent: lines posted before stop (here
 * before the server even started, stop already set) are all written. */
static void stop_serves_queued_datagrams(void **state)
{
    struct fx *f = *state;
    sk_wire_client *c = NULL;
    char *lines[64];
    size_t n;

    f->a = open_log(f->dir, f->key);
    f->peer = SK_WIRE_PEER_NET;
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, f->sv), 0);
    assert_int_equal(sk_wire_client_new(&f->sv[1], 1, "auditd", &c), 0);
    assert_int_equal(sk_auditd_client_open(c, &f->remote), 0);
    for (int i = 0; i < 40; i++)
        assert_int_equal(sk_audit_request(f->remote, "eve", "acme", "192.0.2.3", NULL, "GET", "/q", 200, 1, 1), 0);
    assert_int_equal(sk_audit_refused(f->remote, "192.0.2.4", "expired", NULL), 0);
    {
        /* The lines leave their handle's batch within SK_AUDITD_BATCH_MS: only
         * then are they in the socket for the stop to serve. */
        struct timespec pause = { 0, 20 * SK_AUDITD_BATCH_MS * 1000000L };
        assert_int_equal(nanosleep(&pause, NULL), 0);
    }
    f->stop = 1;
    assert_int_equal(pthread_create(&f->srv, NULL, server_main, f), 0);
    assert_int_equal(pthread_join(f->srv, NULL), 0);
    assert_int_equal(f->run_rc, 0);
    sk_audit_close(f->remote);
    close(f->sv[0]);
    sk_audit_close(f->a); /* writes the queued lines and the refusal summary */
    f->a = NULL;
    n = read_log(f->dir, lines, SK_ARRAY_LEN(lines));
    assert_int_equal(n, 41);
    assert_non_null(strstr(lines[40], "tls.refused.summary"));
    free_lines(lines, n);
    verify_ok(f->dir, f->pubraw);
}

/* ---- request lines in batches ----------------------------------------------- */

/* More lines than one batch holds, through the remote handle: all in the log, in
 * the order sent, right after sk_audit_flush (the flush sends the batch first). */
static void batched_lines_in_order_after_flush(void **state)
{
    enum { N = 2 * SK_WIRE_AUDIT_BATCH_MAX + 17 };
    struct fx *f = *state;
    char **lines = calloc(N + 8, sizeof *lines);
    char path[64], want[80];
    size_t n;

    assert_non_null(lines);
    start(f, SK_WIRE_PEER_NET);
    for (unsigned i = 0; i < N; i++) {
        assert_int_equal(sk_snprintf(path, sizeof path, "/n/%u", i), 0);
        assert_int_equal(sk_audit_request(f->remote, i % 3 ? "alice" : NULL, "acme", "192.0.2.3", NULL, "GET", path,
                                          200, i, 1),
                         0);
    }
    assert_int_equal(sk_audit_flush(f->remote), 0);
    n = read_log(f->dir, lines, N + 8);
    assert_int_equal(n, N);
    for (unsigned i = 0; i < N; i++) {
        assert_int_equal(sk_snprintf(want, sizeof want, "\"path\":\"/n/%u\"", i), 0);
        if (strstr(lines[i], want) == NULL)
            print_error("line %u: %s (wanted %s)\n", i, lines[i], want);
        assert_non_null(strstr(lines[i], want));
        assert_non_null(strstr(lines[i], i % 3 ? "|alice|acme|" : "|(null)|acme|"));
    }
    free_lines(lines, n);
    free(lines);
    stop(f);
    verify_ok(f->dir, f->pubraw);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Without any flush, lines leave their handle within a bounded time when traffic
 * stops, together (fewer datagrams than lines), in order. The test reads the
 * channel itself. */
static void lines_leave_without_flush(void **state)
{
    enum { N = 50 };
    struct fx *f = *state;
    static sk_wire_audit_request_batch b;
    static sk_wire_audit_request q;
    static uint8_t buf[SK_WIRE_MAX];
    sk_wire_client *c = NULL;
    unsigned got = 0, datagrams = 0;
    char path[64];
    int64_t t0, deadline;

    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, f->sv), 0);
    assert_int_equal(sk_wire_client_new(&f->sv[1], 1, "auditd", &c), 0);
    assert_int_equal(sk_auditd_client_open(c, &f->remote), 0);
    for (unsigned i = 0; i < N; i++) {
        assert_int_equal(sk_snprintf(path, sizeof path, "/w/%u", i), 0);
        assert_int_equal(sk_audit_request(f->remote, "bob", NULL, "192.0.2.5", NULL, "GET", path, 200, 0, 1), 0);
    }
    t0 = now_ms();
    deadline = t0 + 100;
    while (got < N) {
        sk_wire_msg m;
        size_t off = 0;
        int left = (int)(deadline - now_ms()), r;
        assert_true(left >= 0);
        r = sk_wire_recv(f->sv[0], buf, sizeof buf, &m, left);
        assert_int_equal(r, 0); /* 1: nothing within 100 ms */
        assert_int_equal(m.type, SK_WIRE_AUDIT_REQUEST_BATCH);
        assert_int_equal(sk_wire_audit_decode(SK_WIRE_AUDIT_REQUEST_BATCH, 0, m.payload, m.len, &b), 0);
        datagrams++;
        while ((r = sk_wire_audit_batch_next(&b, &off, &q)) == 0) {
            assert_int_equal(sk_snprintf(path, sizeof path, "/w/%u", got), 0);
            assert_string_equal(q.path, path);
            assert_string_equal(q.user, "bob");
            got++;
        }
        assert_int_equal(r, 1);
    }
    assert_int_equal(got, N);
    assert_true(datagrams < N);
    sk_audit_close(f->remote);
    f->remote = NULL;
    close(f->sv[0]);
}

/* ---- ctl socket ------------------------------------------------------------- */

static void start_ctl(struct fx *f, char *path, size_t cap)
{
    sk_conf *conf = calloc(1, sizeof *conf);
    assert_non_null(conf);
    assert_int_equal(sk_strlcpy(conf->state_dir, sizeof conf->state_dir, f->root), 0);
    assert_int_equal(sk_auditd_ctl_path(conf, path, cap), 0);
    free(conf);
    assert_int_equal(sk_auditd_ctl_listen(path, &f->ctl_fd), 0);
    start(f, SK_WIRE_PEER_NET);
}

static sk_audit *ctl_handle(const char *path)
{
    int fd = -1;
    sk_wire_client *c = NULL;
    sk_audit *h = NULL;
    assert_int_equal(sk_auditd_ctl_connect(path, &fd), 0);
    assert_int_equal(sk_wire_client_new(&fd, 1, "auditd", &c), 0);
    assert_int_equal(sk_auditd_client_open(c, &h), 0);
    return h;
}

static void ctl_socket_serves_own_uid(void **state)
{
    struct fx *f = *state;
    char path[512], *lines[4];
    sk_audit_event e = { .event = SK_AUDIT_EV_ADMIN, .actor = "operator" };
    struct stat st;
    sk_audit *h;
    size_t n;
    int fd = -1;

    start_ctl(f, path, sizeof path);
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    h = ctl_handle(path);
    assert_int_equal(sk_audit_append(h, &e, 1, NULL), 0);
    assert_int_equal(sk_audit_flush(h), 0);
    /* ctl may not send request lines (refused, nothing queued). */
    assert_int_equal(sk_audit_request(h, "x", NULL, NULL, NULL, "GET", "/", 200, 1, 1), 0);
    assert_int_equal(sk_audit_flush(h), 0);
    sk_audit_close(h);
    stop(f);
    close(f->ctl_fd);
    n = read_log(f->dir, lines, 4);
    assert_int_equal(n, 1);
    assert_non_null(strstr(lines[0], "admin.change|operator|"));
    free_lines(lines, n);
    verify_ok(f->dir, f->pubraw);
    /* A stale socket file (nobody listens) and no file at all: "write locally". */
    assert_int_equal(sk_auditd_ctl_connect(path, &fd), 1);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(sk_auditd_ctl_connect(path, &fd), 1);
    /* A regular file at the path is not replaced. */
    {
        FILE *x = fopen(path, "w");
        assert_non_null(x);
        fclose(x);
        assert_int_equal(sk_auditd_ctl_listen(path, &fd), -1);
        assert_int_equal(errno, EEXIST);
    }
}

/* Another uid that can reach the socket file is still refused (SO_PEERCRED).
 * Needs root to become another uid. */
static void ctl_socket_refuses_other_uid(void **state)
{
    struct fx *f = *state;
    char path[512], *lines[4];
    pid_t pid;
    int st = 0;
    size_t n;

    if (geteuid() != 0) {
        print_message("skipped: needs root to connect as another uid\n");
        skip();
    }
    start_ctl(f, path, sizeof path);
    assert_int_equal(chmod(f->root, 0755), 0);
    assert_int_equal(chmod(path, 0666), 0); /* the file system lets anybody connect */
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        sk_audit_event e = { .event = SK_AUDIT_EV_ADMIN, .actor = "nobody" };
        int fd = -1, code = 0;
        sk_wire_client *c = NULL;
        sk_audit *h = NULL;
        if (setgid(65534) != 0 || setuid(65534) != 0)
            _exit(10);
        if (sk_auditd_ctl_connect(path, &fd) != 0)
            _exit(11); /* the connect itself must succeed: the refusal is auditd's */
        if (sk_wire_client_new(&fd, 1, "auditd", &c) != 0 || sk_auditd_client_open(c, &h) != 0)
            _exit(12);
        if (sk_audit_append(h, &e, 1, NULL) == 0)
            code = 13;
        sk_audit_close(h);
        _exit(code);
    }
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    stop(f);
    close(f->ctl_fd);
    n = read_log(f->dir, lines, 4);
    assert_int_equal(n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(wire_calls_land_like_direct_calls, setup, teardown),
        cmocka_unit_test_setup_teardown(durable_append_returns_its_seq, setup, teardown),
        cmocka_unit_test_setup_teardown(permits_are_enforced, setup, teardown),
        cmocka_unit_test_setup_teardown(malformed_datagrams_are_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(reset_asks_the_new_server, setup, teardown),
        cmocka_unit_test_setup_teardown(client_refuses_what_does_not_fit, setup, teardown),
        cmocka_unit_test_setup_teardown(many_channels_many_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(stop_serves_queued_datagrams, setup, teardown),
        cmocka_unit_test_setup_teardown(batched_lines_in_order_after_flush, setup, teardown),
        cmocka_unit_test_setup_teardown(lines_leave_without_flush, setup, teardown),
        cmocka_unit_test_setup_teardown(ctl_socket_serves_own_uid, setup, teardown),
        cmocka_unit_test_setup_teardown(ctl_socket_refuses_other_uid, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
