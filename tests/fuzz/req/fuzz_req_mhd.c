/*
 * In-process harness (issue 13 item 9): raw request bytes go through the real
 * libmicrohttpd and the gateway's router (one HTTP engine on an event loop, a
 * connection added over a socketpair exactly as a network worker adds it after the
 * TLS handshake) to a capturing upstream on loopback.
 * A session cookie of user bob (role general) is inserted after the first line,
 * so most inputs reach the proxy path. Invariants on every request the upstream
 * receives: no control character but CR LF and HTAB, CR only in CRLF, no
 * obs-fold line, one Host and one X-Sekisho-User (bob), no client header of a
 * stripped family, no session cookie, a normalised path without empty or dot
 * segments, and never /admin (the rule "/admin admin") in any IIS spelling.
 *
 * Built as a libFuzzer target (SEKISHO_FUZZ) and, with SK_REQ_MHD_REPLAY, as a
 * plain program that replays files (ctest test_req_mhd runs the corpus).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "sk_http.h"
#include "sk_req.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CAP_MAX (64 * 1024)

static struct {
    sk_conf conf;
    sk_store *store;
    sk_authd authd;
    int authd_fds[4];
    volatile int authd_stop;
    sk_wire_client *authd_client;
    sk_auth_config acfg;
    sk_auth_pool *auth;
    sk_proxy *proxy;
    sk_http *http;
    sk_loop *loop;
    void *wctx;         /* the HTTP engine of the one "worker" */
    char cookie[64];
    int listen_fd;
    pthread_mutex_t mu;
    char cap[CAP_MAX];   /* heads received since the last reset, NUL-separated */
    size_t cap_len;
    unsigned cap_n;
} g = { .mu = PTHREAD_MUTEX_INITIALIZER };

static void die(const char *what)
{
    fprintf(stderr, "fuzz_req_mhd: %s\n", what);
    abort();
}

static void *authd_thread(void *arg)
{
    (void)arg;
    if (sk_authd_run(&g.authd, g.authd_fds, 4, &g.authd_stop) != 0)
        die("authd run");
    return NULL;
}

/* ---- the capturing upstream ----------------------------------------------- */

static void *upstream(void *arg)
{
    static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
    (void)arg;
    for (;;) {
        char buf[CAP_MAX];
        size_t n = 0;
        char *end = NULL;
        struct timeval tv = { 2, 0 };
        int fd = accept(g.listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        while (n < sizeof buf - 1 && end == NULL) {
            ssize_t r = recv(fd, buf + n, sizeof buf - 1 - n, 0);
            if (r <= 0)
                break;
            n += (size_t)r;
            buf[n] = '\0';
            end = memmem(buf, n, "\r\n\r\n", 4);
        }
        pthread_mutex_lock(&g.mu);
        if (n > 0) {
            size_t keep = end ? (size_t)(end - buf) + 4 : n;
            if (g.cap_len + keep + 1 < sizeof g.cap) {
                memcpy(g.cap + g.cap_len, buf, keep);
                g.cap_len += keep;
                g.cap[g.cap_len++] = '\0';
                g.cap_n++;
            }
        }
        pthread_mutex_unlock(&g.mu);
        (void)send(fd, answer, sizeof answer - 1, MSG_NOSIGNAL);
        close(fd);
    }
    return NULL;
}

/* ---- one-time world ---------------------------------------------------------- */

static void init(void)
{
    static int done;
    char dir[] = "/tmp/sk-fuzz-mhd-XXXXXX";
    struct sockaddr_in a = { .sin_family = AF_INET };
    socklen_t al = sizeof a;
    pthread_t t;
    sk_user u;
    sk_session s;
    uint8_t token[32];
    sk_http_deps d = { 0 };
    char port[8];

    if (done)
        return;
    done = 1;
    sk_log_set_level(SK_LOG_ERR);
    if (mkdtemp(dir) == NULL)
        die("mkdtemp");
    sk_conf_defaults(&g.conf);
    if (sk_strlcpy(g.conf.state_dir, sizeof g.conf.state_dir, dir) != 0 ||
        sk_snprintf(g.conf.auth_totp_key, sizeof g.conf.auth_totp_key, "%s/totp.key", dir) != 0)
        die("paths");
    g.conf.argon2_memory_kib = 8192;
    g.conf.argon2_iterations = 1;
    g.conf.request_timeout = 2;
    g.conf.upstream_timeout = 2;
    g.conf.audit_log_requests = 0;
    memcpy(g.conf.path_rules[0].prefix, "/admin", 7);
    g.conf.path_rules[0].roles = SK_POLICY_ROLE_ADMIN;
    g.conf.n_path_rules = 1;
    /* the capturing upstream */
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    g.listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (g.listen_fd < 0 || bind(g.listen_fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(g.listen_fd, 64) != 0 ||
        getsockname(g.listen_fd, (struct sockaddr *)&a, &al) != 0)
        die("upstream socket");
    if (sk_snprintf(port, sizeof port, "%u", (unsigned)ntohs(a.sin_port)) != 0 ||
        sk_strlcpy(g.conf.upstream_host, sizeof g.conf.upstream_host, "127.0.0.1") != 0 ||
        sk_strlcpy(g.conf.upstream_port, sizeof g.conf.upstream_port, port) != 0)
        die("upstream address");
    if (pthread_create(&t, NULL, upstream, NULL) != 0 || pthread_detach(t) != 0)
        die("upstream thread");
    /* store: bob (general) and one session */
    if (sk_store_open_ex(dir, 0, (size_t)64 << 20, &g.store) != 0 || sk_store_user_init(&u, "acme", "bob") != 0)
        die("store");
    u.role = SK_ROLE_GENERAL;
    if (sk_store_user_put_new(g.store, &u) != 0)
        die("user");
    memset(&s, 0, sizeof s);
    memset(token, 0x5a, sizeof token);
    SHA256(token, sizeof token, s.hash);
    memcpy(s.user, "bob", 4);
    memcpy(s.tenant, "acme", 5);
    memcpy(s.cert_serial, "0A", 3);
    s.role = SK_ROLE_GENERAL;
    s.created = s.last_seen = (int64_t)time(NULL) + 365 * 86400; /* never idle within a campaign */
    if (sk_store_session_put(g.store, &s) != 0)
        die("session");
    sk_b64url_encode(token, sizeof token, g.cookie);
    if (sk_auth_config_from_conf(&g.conf, &g.acfg) != 0 || sk_auth_pool_create(1, 4, &g.acfg, &g.auth) != 0 ||
        sk_proxy_create(&g.conf, &g.proxy) != 0)
        die("auth/proxy");
    /* authd in a thread of this process, on real channels */
    {
        int client[4];
        pthread_t at;
        for (int i = 0; i < 4; i++) {
            int sv[2];
            if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) != 0)
                die("authd channels");
            client[i] = sv[0];
            g.authd_fds[i] = sv[1];
        }
        g.authd.store = g.store;
        g.authd.pool = g.auth;
        g.authd.cfg = &g.acfg;
        sk_auth_policy_config(&g.acfg, &g.authd.pol);
        if (sk_wire_client_new(client, 4, "authd", &g.authd_client) != 0 ||
            pthread_create(&at, NULL, authd_thread, NULL) != 0 || pthread_detach(at) != 0)
            die("authd");
    }
    d.conf = &g.conf;
    d.authd = g.authd_client;
    d.auth = g.auth;
    d.auth_cfg = &g.acfg;
    d.proxy = g.proxy;
    if (sk_http_create(&d, &g.http) != 0 || sk_loop_create(&g.loop) != 0 ||
        (g.wctx = sk_http_worker_open(g.http, g.loop)) == NULL)
        die("http");
}

/* ---- the invariants ------------------------------------------------------------ */

static void fail(const char *why, const char *head)
{
    fprintf(stderr, "fuzz_req_mhd: %s in the request the upstream got:\n%s\n", why, head);
    abort();
}

static int gateway_own(const char *line)
{
    static const char *const own[] = { "Host: ", "X-Forwarded-Host: ", "X-Forwarded-For: ", "X-Forwarded-Proto: ",
                                       "X-Sekisho-User: ", "X-Sekisho-Tenant: ", "X-Sekisho-Roles: ",
                                       "X-Sekisho-Cert-Serial: ", "Content-Length: ", "Transfer-Encoding: ",
                                       "Connection: ", "Upgrade: " };
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        if (strncmp(line, own[i], strlen(own[i])) == 0)
            return 1;
    return 0;
}

/* The families of issue 13, listed here independently of the gateway's table
 * (req_hdr.c), so that a gap in that table shows up. */
static int reported_family(const char *folded)
{
    static const char *const fam[] = { "x-sekisho", "x-forwarded", "forwarded", "x-original", "x-rewrite",
                                       "x-auth-request", "x-user", "x-remote", "x-http-method" };
    static const char *const exact[] = { "x-host", "x-originating-ip", "x-real-ip", "client-ip", "true-client-ip",
                                         "x-method-override" };
    for (size_t i = 0; i < sizeof fam / sizeof fam[0]; i++) {
        size_t n = strlen(fam[i]);
        if (strncmp(folded, fam[i], n) == 0 && (folded[n] == '\0' || folded[n] == '-'))
            return 1;
    }
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        if (strcmp(folded, exact[i]) == 0)
            return 1;
    return 0;
}

static void check_path(const char *head)
{
    const char *p = strchr(head, ' ');
    size_t n, seg;
    char first[64];
    if (p == NULL || p[1] != '/')
        fail("request line without a path", head);
    p++;
    n = strcspn(p, "? ");
    for (size_t i = 0; i < n; i++) {
        size_t l;
        if (p[i] != '/')
            continue;
        l = strcspn(p + i + 1, "/? ");
        if (l == 0 && i + 1 < n)
            fail("empty path segment", head);
        if ((l == 1 && p[i + 1] == '.') || (l == 2 && p[i + 1] == '.' && p[i + 2] == '.'))
            fail("dot segment", head);
    }
    /* The first segment as IIS reads it: case, trailing dots and spaces ignored. */
    seg = strcspn(p + 1, "/? ");
    if (seg >= sizeof first)
        return;
    memcpy(first, p + 1, seg);
    first[seg] = '\0';
    for (;;) {
        size_t l = strlen(first);
        if (l > 0 && (first[l - 1] == '.' || first[l - 1] == ' '))
            first[l - 1] = '\0';
        else if (l >= 3 && strcmp(first + l - 3, "%20") == 0)
            first[l - 3] = '\0';
        else
            break;
    }
    if (strcasecmp(first, "admin") == 0)
        fail("a general user reached /admin", head);
}

static void check_head(const char *head)
{
    size_t n = strlen(head);
    unsigned users = 0, hosts = 0;
    const char *l;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)head[i];
        if ((c < 0x20 && c != '\r' && c != '\n' && c != '\t') || c == 0x7f)
            fail("control character", head);
        if ((c == '\r' && head[i + 1] != '\n') || (c == '\n' && (i == 0 || head[i - 1] != '\r')))
            fail("bare CR or LF", head);
    }
    if (n < 4 || strcmp(head + n - 4, "\r\n\r\n") != 0)
        fail("head not ended by an empty line", head);
    check_path(head);
    for (l = strstr(head, "\r\n") + 2; *l != '\r'; l = strstr(l, "\r\n") + 2) {
        char name[SK_REQ_NAME_MAX], folded[SK_REQ_NAME_MAX];
        size_t nl = strcspn(l, ":\r");
        if (*l == ' ' || *l == '\t')
            fail("obs-fold line", head);
        if (l[nl] != ':' || nl == 0 || nl >= sizeof name)
            fail("line without a header name", head);
        memcpy(name, l, nl);
        name[nl] = '\0';
        if (sk_req_hdr_fold(name, folded, sizeof folded) != 0)
            fail("unfoldable name", head);
        if (strcmp(folded, "x-sekisho-user") == 0) {
            users++;
            if (strncmp(l, "X-Sekisho-User: bob\r\n", 21) != 0)
                fail("X-Sekisho-User is not bob", head);
        }
        if (strcmp(folded, "host") == 0)
            hosts++;
        if ((sk_req_hdr_request_drop(folded) || reported_family(folded)) && !gateway_own(l))
            fail("a stripped header family", head);
        if (strcmp(folded, "cookie") == 0) {
            const char *e = strstr(l, "\r\n");
            for (const char *c = l; c + 14 <= e; c++)
                if (strncasecmp(c, SK_REQ_COOKIE_NAME, 14) == 0)
                    fail("the session cookie", head);
        }
    }
    if (users != 1 || hosts != 1)
        fail("not exactly one X-Sekisho-User and one Host", head);
}

/* ---- one input ------------------------------------------------------------------ */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads what the gateway answered; 1 once it has closed its end. */
static int drain(int fd)
{
    char buf[16384];
    ssize_t r;
    while ((r = recv(fd, buf, sizeof buf, MSG_DONTWAIT)) > 0)
        ;
    return r == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char req[16384];
    const uint8_t *lf;
    size_t n = 0, first;
    sk_buf b;
    int sv[2];
    sk_conn *pc = calloc(1, sizeof *pc); /* handed over with the connection */
    struct sockaddr_in *pa;
    void *ctx;
    int64_t deadline;

    init();
    if (size > 8192)
        return 0;
    /* The session cookie after the first line (if there is one). */
    lf = memchr(data, '\n', size);
    first = lf ? (size_t)(lf - data) + 1 : size;
    sk_buf_init(&b, req, sizeof req);
    sk_buf_add(&b, data, first);
    if (lf != NULL)
        sk_buf_printf(&b, "Cookie: " SK_REQ_COOKIE_NAME "=%s\r\n", g.cookie);
    sk_buf_add(&b, data + first, size - first);
    if (sk_buf_finish(&b) != 0)
        return 0;
    n = b.len;

    pthread_mutex_lock(&g.mu);
    g.cap_len = 0;
    g.cap_n = 0;
    pthread_mutex_unlock(&g.mu);

    if (pc == NULL)
        die("calloc");
    pa = (struct sockaddr_in *)&pc->peer;
    pa->sin_family = AF_INET;
    pa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    pc->peer_len = sizeof *pa;
    memcpy(pc->peer_str, "127.0.0.1", 10);
    memcpy(pc->user, "bob", 4);
    memcpy(pc->tenant, "acme", 5);
    memcpy(pc->serial, "0A", 3);
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) != 0)
        die("socketpair");
    if (send(sv[0], req, n, MSG_NOSIGNAL) != (ssize_t)n)
        die("send");
    (void)shutdown(sv[0], SHUT_WR);
    ctx = sk_http_conn_open(g.wctx, sv[1], pc);
    deadline = now_ms() + 3000;
    while (ctx != NULL && now_ms() < deadline) {
        int to = sk_http_worker_run(g.wctx);
        if (drain(sv[0]))
            break;
        if (sk_loop_run_once(g.loop, to < 0 || to > 20 ? 20 : to) < 0)
            die("event loop");
    }
    if (ctx != NULL)
        sk_http_conn_close(ctx);
    close(sv[0]);
    /* Let the engine finish the connection (and any handler still off the loop). */
    for (int i = 0; i < 200 && sk_http_worker_pending(g.wctx) > 0; i++) {
        (void)sk_http_worker_run(g.wctx);
        if (sk_loop_run_once(g.loop, 10) < 0)
            die("event loop");
    }
    (void)sk_http_worker_run(g.wctx);

    pthread_mutex_lock(&g.mu);
    for (size_t off = 0; off < g.cap_len; off += strlen(g.cap + off) + 1)
        check_head(g.cap + off);
    pthread_mutex_unlock(&g.mu);
    return 0;
}

#ifdef SK_REQ_MHD_REPLAY
/* Replay files (each one input), e.g. the corpus, and report what the upstream got. */
int main(int argc, char **argv)
{
    unsigned reached = 0;
    for (int i = 1; i < argc; i++) {
        char *buf = NULL;
        size_t len = 0;
        if (sk_read_file(argv[i], 8192, &buf, &len) != 0) {
            fprintf(stderr, "test_req_mhd: cannot read %s\n", argv[i]);
            return 1;
        }
        (void)LLVMFuzzerTestOneInput((const uint8_t *)buf, len);
        reached += g.cap_n;
        printf("%s: %u request(s) reached the upstream, all clean\n", argv[i], g.cap_n);
        free(buf);
    }
    printf("test_req_mhd: %d inputs, %u upstream requests checked\n", argc - 1, reached);
    return reached > 0 ? 0 : 1; /* the corpus holds clean requests: some must pass */
}
#endif
