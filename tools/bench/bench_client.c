/*
 * sekisho-bench — a small mTLS HTTP/1.1 load client for comparing front ends
 * (sekisho, nginx) on the same machine with the same upstream.
 *
 *   sekisho-bench handshake --connect 127.0.0.1:PORT --ca CA --cert CRT --key KEY
 *                 [-n N] [-c C] [--path P] [--cookie-file F] [--tls12] [--expect CODE]
 *       N full handshakes (no resumption: no session cache, no tickets), spread
 *       over C threads; each handshake is followed by one GET whose response is
 *       read completely, then close_notify and close.
 *   sekisho-bench keepalive ... [-c C] [-r R]
 *       C threads, each with one TLS connection doing R sequential GETs.
 *
 * The Cookie header value (e.g. "__Host-sekisho=TOKEN") comes from a file, not
 * from argv, because it is a bearer credential. The result is one line of
 * key=value pairs on stdout that scripts parse.
 */
#define _GNU_SOURCE /* strcasestr */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sk_util.h"

#define SK_BENCH_MAX_THREADS 256
#define SK_BENCH_BUF 16384

typedef struct sk_bench_opts {
    int keepalive;
    char host[256];
    char port[8];
    const char *ca, *cert, *key, *path;
    uint64_t count, conns, reqs, expect;
    int tls12;
    char cookie[4096];
} sk_bench_opts;

typedef struct sk_bench_conn {
    int fd;
    SSL *ssl;
    size_t off, len;
    char buf[SK_BENCH_BUF];
} sk_bench_conn;

typedef struct sk_bench_worker {
    pthread_t tid;
    const sk_bench_opts *o;
    SSL_CTX *ctx;
    uint64_t todo;
    uint64_t ok, errors, bad_status;
    char first_error[256]; /* what went wrong first, for the report */
    char req[8192];
    size_t reqlen;
    sk_bench_conn conn;
} sk_bench_worker;

static double sk_bench_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Keep the first failure's reason (errno and OpenSSL's queue), then clear. */
static void sk_bench_note(char *why, size_t whylen, const char *stage)
{
    unsigned long e = ERR_peek_last_error();
    char ebuf[160];

    if (why[0] == '\0') {
        ERR_error_string_n(e, ebuf, sizeof(ebuf));
        if (sk_snprintf(why, whylen, "%s: errno %d (%s), %s", stage, errno, strerror(errno),
                        e != 0 ? ebuf : "no TLS error") != 0)
            why[0] = '\0';
    }
    ERR_clear_error();
}

static void sk_bench_close(sk_bench_conn *c)
{
    if (c->ssl != NULL) {
        (void)SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    c->off = c->len = 0;
}

static int SK_MUST_CHECK sk_bench_connect(const sk_bench_opts *o, SSL_CTX *ctx, sk_bench_conn *c,
                                          char *why, size_t whylen)
{
    struct addrinfo hints, *ai = NULL;
    const char *stage = "getaddrinfo";
    int one = 1, rc = -1;

    c->fd = -1;
    c->ssl = NULL;
    c->off = c->len = 0;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    if (getaddrinfo(o->host, o->port, &hints, &ai) != 0)
        goto out;
    stage = "connect";
    c->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0 || connect(c->fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
        goto out;
    stage = "TLS handshake";
    c->ssl = SSL_new(ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1 || SSL_connect(c->ssl) != 1)
        goto out;
    rc = 0;
out:
    if (ai != NULL)
        freeaddrinfo(ai);
    if (rc != 0) {
        sk_bench_note(why, whylen, stage);
        sk_bench_close(c);
    }
    return rc;
}

/* Read more bytes into the buffer, compacting it first. -1 on EOF or error. */
static int SK_MUST_CHECK sk_bench_fill(sk_bench_conn *c)
{
    int n;

    if (c->off > 0) {
        memmove(c->buf, c->buf + c->off, c->len - c->off);
        c->len -= c->off;
        c->off = 0;
    }
    if (c->len == sizeof(c->buf))
        return -1;
    n = SSL_read(c->ssl, c->buf + c->len, (int)(sizeof(c->buf) - c->len));
    if (n <= 0)
        return -1;
    c->len += (size_t)n;
    return 0;
}

/* One CRLF-terminated line (without CRLF) into line. */
static int SK_MUST_CHECK sk_bench_line(sk_bench_conn *c, char *line, size_t cap)
{
    for (;;) {
        char *start = c->buf + c->off;
        char *nl = memchr(start, '\n', c->len - c->off);
        if (nl != NULL) {
            size_t n = (size_t)(nl - start);
            if (n > 0 && start[n - 1] == '\r')
                n--;
            if (n >= cap)
                return -1;
            memcpy(line, start, n);
            line[n] = '\0';
            c->off += (size_t)(nl - start) + 1;
            return 0;
        }
        if (sk_bench_fill(c) != 0)
            return -1;
    }
}

static int SK_MUST_CHECK sk_bench_skip(sk_bench_conn *c, uint64_t n)
{
    while (n > 0) {
        size_t avail = c->len - c->off;
        if (avail == 0) {
            if (sk_bench_fill(c) != 0)
                return -1;
            continue;
        }
        if (avail > n)
            avail = (size_t)n;
        c->off += avail;
        n -= avail;
    }
    return 0;
}

static int SK_MUST_CHECK sk_bench_parse_hex(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    int digits = 0;

    for (; *s != '\0' && *s != ';' && *s != ' ' && *s != '\t'; s++, digits++) {
        int d = (*s >= '0' && *s <= '9')   ? *s - '0'
                : (*s >= 'a' && *s <= 'f') ? *s - 'a' + 10
                : (*s >= 'A' && *s <= 'F') ? *s - 'A' + 10
                                           : -1;
        if (d < 0 || digits >= 15)
            return -1;
        v = v * 16 + (uint64_t)d;
    }
    *out = v;
    return digits > 0 ? 0 : -1;
}

/* Read one complete response; *status gets its code, *must_close whether the
 * connection cannot be reused. */
static int SK_MUST_CHECK sk_bench_response(sk_bench_conn *c, uint64_t *status, int *must_close)
{
    char line[8192];
    uint64_t clen = 0, chunk;
    int have_clen = 0, chunked = 0;

    *must_close = 0;
    if (sk_bench_line(c, line, sizeof(line)) != 0 || strncmp(line, "HTTP/1.", 7) != 0 ||
        strlen(line) < 12 || line[12 - 1 - 3] != ' ')
        return -1;
    line[12] = '\0';
    if (sk_parse_u64(line + 9, 100, 599, status) != 0)
        return -1;
    for (;;) {
        const char *v;
        if (sk_bench_line(c, line, sizeof(line)) != 0)
            return -1;
        if (line[0] == '\0')
            break;
        v = strchr(line, ':');
        if (v == NULL)
            return -1;
        for (v++; *v == ' ' || *v == '\t'; v++)
            ;
        if (strncasecmp(line, "content-length:", 15) == 0) {
            if (sk_parse_u64(v, 0, UINT64_MAX >> 1, &clen) != 0)
                return -1;
            have_clen = 1;
        } else if (strncasecmp(line, "transfer-encoding:", 18) == 0) {
            chunked = strcasestr(v, "chunked") != NULL;
        } else if (strncasecmp(line, "connection:", 11) == 0) {
            *must_close = strcasestr(v, "close") != NULL;
        }
    }
    if (*status == 204 || *status == 304)
        return 0;
    if (chunked) {
        do {
            if (sk_bench_line(c, line, sizeof(line)) != 0 ||
                sk_bench_parse_hex(line, &chunk) != 0 || sk_bench_skip(c, chunk) != 0)
                return -1;
            if (chunk > 0 && (sk_bench_line(c, line, sizeof(line)) != 0 || line[0] != '\0'))
                return -1;
        } while (chunk > 0);
        do { /* trailers */
            if (sk_bench_line(c, line, sizeof(line)) != 0)
                return -1;
        } while (line[0] != '\0');
        return 0;
    }
    if (have_clen)
        return sk_bench_skip(c, clen);
    *must_close = 1; /* body delimited by EOF */
    while (sk_bench_fill(c) == 0)
        c->off = c->len;
    return 0;
}

/* Send the request and read the answer; counts the outcome. -1 if the
 * connection is unusable afterwards. */
static int SK_MUST_CHECK sk_bench_exchange(sk_bench_worker *w)
{
    uint64_t status = 0;
    int must_close = 0;

    if (SSL_write(w->conn.ssl, w->req, (int)w->reqlen) != (int)w->reqlen) {
        sk_bench_note(w->first_error, sizeof(w->first_error), "request write");
        w->errors++;
        return -1;
    }
    if (sk_bench_response(&w->conn, &status, &must_close) != 0) {
        sk_bench_note(w->first_error, sizeof(w->first_error), "response read");
        w->errors++;
        return -1;
    }
    if (status == w->o->expect)
        w->ok++;
    else
        w->bad_status++;
    return must_close ? -1 : 0;
}

/* Handshake mode closes after every exchange; keep-alive mode only when the
 * connection broke or the server asked for it (then it reconnects). */
static void *sk_bench_run(void *arg)
{
    sk_bench_worker *w = arg;
    uint64_t i;

    w->conn.fd = -1;
    for (i = 0; i < w->todo; i++) {
        if (w->conn.ssl == NULL &&
            sk_bench_connect(w->o, w->ctx, &w->conn, w->first_error, sizeof(w->first_error)) != 0) {
            w->errors++;
            continue;
        }
        if (sk_bench_exchange(w) != 0 || !w->o->keepalive)
            sk_bench_close(&w->conn);
    }
    sk_bench_close(&w->conn);
    return NULL;
}

static int SK_MUST_CHECK sk_bench_split_hostport(const char *s, sk_bench_opts *o)
{
    const char *colon = strrchr(s, ':');
    uint64_t port;

    if (colon == NULL || colon == s || sk_parse_u64(colon + 1, 1, 65535, &port) != 0 ||
        (size_t)(colon - s) >= sizeof(o->host))
        return -1;
    memcpy(o->host, s, (size_t)(colon - s));
    o->host[colon - s] = '\0';
    return sk_snprintf(o->port, sizeof(o->port), "%u", (unsigned)port);
}

static void sk_bench_usage(void)
{
    fprintf(stderr,
            "usage: sekisho-bench handshake|keepalive --connect HOST:PORT --ca CA.crt\n"
            "         --cert CLIENT.crt --key CLIENT.key [-n HANDSHAKES] [-c CONNECTIONS]\n"
            "         [-r REQUESTS_PER_CONNECTION] [--path /] [--cookie-file F]\n"
            "         [--tls12] [--expect 200]\n");
}

static int SK_MUST_CHECK sk_bench_parse(int argc, char **argv, sk_bench_opts *o)
{
    size_t len = 0;
    int i;

    memset(o, 0, sizeof(*o));
    o->count = 1000;
    o->conns = 1;
    o->reqs = 1000;
    o->expect = 200;
    o->path = "/";
    if (argc < 2)
        return -1;
    if (strcmp(argv[1], "keepalive") == 0)
        o->keepalive = 1;
    else if (strcmp(argv[1], "handshake") != 0)
        return -1;
    for (i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--tls12") == 0) {
            o->tls12 = 1;
            continue;
        }
        if (v == NULL)
            return -1;
        i++;
        if (strcmp(a, "--connect") == 0) {
            if (sk_bench_split_hostport(v, o) != 0)
                return -1;
        } else if (strcmp(a, "--ca") == 0) {
            o->ca = v;
        } else if (strcmp(a, "--cert") == 0) {
            o->cert = v;
        } else if (strcmp(a, "--key") == 0) {
            o->key = v;
        } else if (strcmp(a, "--path") == 0) {
            o->path = v;
        } else if (strcmp(a, "-n") == 0) {
            if (sk_parse_u64(v, 1, 100000000, &o->count) != 0)
                return -1;
        } else if (strcmp(a, "-c") == 0) {
            if (sk_parse_u64(v, 1, SK_BENCH_MAX_THREADS, &o->conns) != 0)
                return -1;
        } else if (strcmp(a, "-r") == 0) {
            if (sk_parse_u64(v, 1, 100000000, &o->reqs) != 0)
                return -1;
        } else if (strcmp(a, "--expect") == 0) {
            if (sk_parse_u64(v, 100, 599, &o->expect) != 0)
                return -1;
        } else if (strcmp(a, "--cookie-file") == 0) {
            if (sk_read_secret_file(v, o->cookie, sizeof(o->cookie), &len) != 0) {
                fprintf(stderr, "sekisho-bench: cannot read cookie file %s\n", v);
                return -1;
            }
        } else {
            return -1;
        }
    }
    return (o->host[0] == '\0' || o->ca == NULL || o->cert == NULL || o->key == NULL ||
            o->path[0] != '/')
               ? -1
               : 0;
}

static SSL_CTX *sk_bench_ctx(const sk_bench_opts *o)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    int v = o->tls12 ? TLS1_2_VERSION : TLS1_3_VERSION;

    if (ctx == NULL)
        return NULL;
    /* Every handshake must be a full one: no client cache, no tickets. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (SSL_CTX_set_min_proto_version(ctx, v) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, v) != 1 ||
        SSL_CTX_load_verify_locations(ctx, o->ca, NULL) != 1 ||
        SSL_CTX_use_certificate_chain_file(ctx, o->cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, o->key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        ERR_print_errors_fp(stderr);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

int main(int argc, char **argv)
{
    static sk_bench_worker workers[SK_BENCH_MAX_THREADS];
    sk_bench_opts o;
    SSL_CTX *ctx = NULL;
    uint64_t i, total, started = 0, ok = 0, errors = 0, bad = 0;
    double t0 = 0, wall;
    int rc = 1;

    if (sk_bench_parse(argc, argv, &o) != 0) {
        sk_bench_usage();
        rc = 2;
        goto out;
    }
    signal(SIGPIPE, SIG_IGN);
    ctx = sk_bench_ctx(&o);
    if (ctx == NULL)
        goto out;
    total = o.keepalive ? o.conns * o.reqs : o.count;
    if (!o.keepalive && o.conns > o.count)
        o.conns = o.count;
    for (i = 0; i < o.conns; i++) {
        sk_bench_worker *w = &workers[i];
        w->o = &o;
        w->ctx = ctx;
        w->todo = o.keepalive ? o.reqs : o.count / o.conns + (i < o.count % o.conns ? 1 : 0);
        if (sk_snprintf(w->req, sizeof(w->req),
                        "GET %s HTTP/1.1\r\nHost: %s:%s\r\nUser-Agent: sekisho-bench\r\n"
                        "Accept: application/json\r\n%s%s%s\r\n",
                        o.path, o.host, o.port, o.cookie[0] != '\0' ? "Cookie: " : "",
                        o.cookie, o.cookie[0] != '\0' ? "\r\n" : "") != 0) {
            fprintf(stderr, "sekisho-bench: request too long\n");
            goto join;
        }
        w->reqlen = strlen(w->req);
    }
    t0 = sk_bench_now();
    for (started = 0; started < o.conns; started++) {
        if (pthread_create(&workers[started].tid, NULL, sk_bench_run, &workers[started]) != 0) {
            fprintf(stderr, "sekisho-bench: pthread_create: %s\n", strerror(errno));
            goto join;
        }
    }
    rc = 0;
join:
    for (i = 0; i < started; i++) {
        (void)pthread_join(workers[i].tid, NULL);
        ok += workers[i].ok;
        errors += workers[i].errors;
        bad += workers[i].bad_status;
        if (workers[i].first_error[0] != '\0')
            fprintf(stderr, "sekisho-bench: thread %llu: first error: %s\n",
                    (unsigned long long)i, workers[i].first_error);
    }
    if (rc == 0) {
        wall = sk_bench_now() - t0;
        printf("mode=%s count=%llu ok=%llu errors=%llu bad_status=%llu wall_s=%.3f rate_per_s=%.1f\n",
               o.keepalive ? "keepalive" : "handshake", (unsigned long long)total,
               (unsigned long long)ok, (unsigned long long)errors, (unsigned long long)bad,
               wall, wall > 0 ? (double)ok / wall : 0.0);
        rc = (ok == total) ? 0 : 1;
    }
out:
    for (i = 0; i < SK_BENCH_MAX_THREADS; i++)
        sk_wipe(workers[i].req, sizeof(workers[i].req));
    sk_wipe(o.cookie, sizeof(o.cookie));
    SSL_CTX_free(ctx);
    return rc;
}
