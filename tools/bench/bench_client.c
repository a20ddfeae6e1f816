/*
 * sekisho-bench — a small mTLS HTTP/1.1 load client for comparing front ends
 * (sekisho, nginx) on the same machine with the same upstream.
 *
 *   sekisho-bench handshake --connect 127.0.0.1:PORT --ca CA --cert CRT --key KEY
 *                 [-n N] [-c C] [--path P] [--cookie-file F] [--tls12] [--expect CODE]
 *       N full handshakes (no resumption: no session cache, no tickets), spread
 *       over C threads; each handshake is followed by one GET whose response is
 *       read completely, then close_notify and close.
 *   sekisho-bench resume ... [-n N] [-c C] [--tls12]
 *       One full handshake + GET keeps its SSL_SESSION (TLS 1.3: the ticket;
 *       --tls12: the session ID, tickets off); then N connections resume it, each
 *       with one GET. A connection that was not resumed is an error.
 *   sekisho-bench keepalive ... [-c C] [-r R]
 *       C threads, each with one TLS connection doing R sequential GETs.
 *   sekisho-bench hold ... [-n N] [-c C]
 *       Opens N connections (C threads) with one GET each and keeps them open;
 *       prints its line once all are open (or the first failure stopped a
 *       thread), then waits for SIGTERM/SIGINT.
 *   sekisho-bench slowloris --connect HOST:PORT --bind ADDR [-n N]
 *       N plain TCP connections from ADDR that never send a byte; prints a line
 *       once they are connected, waits for SIGTERM/SIGINT, then prints how many
 *       the server had closed meanwhile.
 *
 * Every completed request's duration (connect included when the request needed
 * one) is kept in a per-thread array sized up front; the arrays are merged and
 * sorted at the end for p50/p99.
 *
 * The Cookie header value (e.g. "__Host-sekisho=TOKEN") comes from a file, not
 * from argv, because it is a bearer credential. The result is one line of
 * key=value pairs on stdout that scripts parse.
 */
#define _GNU_SOURCE /* strcasestr */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_int.h"
#include "sk_util.h"

static const char *const sk_bench_mode_names[] = {"handshake", "resume", "keepalive", "hold",
                                                  "slowloris"};

#define SK_BENCH_MAX_THREADS 256
#define SK_BENCH_BUF 16384


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
    pthread_barrier_t *start; /* keep-alive: every connection open before the clock */
    uint64_t todo;
    uint64_t ok, errors, bad_status, resumed, retries;
    double *lat; /* seconds per completed request, todo entries */
    uint64_t nlat;
    SSL **held; /* hold mode: the open connections, todo entries */
    uint64_t nheld;
    char first_error[256]; /* what went wrong first, for the report */
    char req[8192];
    size_t reqlen;
    sk_bench_conn conn;
} sk_bench_worker;

double sk_bench_now(void)
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
    struct timeval tv = {.tv_sec = (time_t)o->timeout_s, .tv_usec = 0};

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
    if (c->fd < 0 || setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
        setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0 ||
        connect(c->fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0)
        goto out;
    stage = "TLS handshake";
    c->ssl = SSL_new(ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1 ||
        (o->session != NULL && SSL_set_session(c->ssl, o->session) != 1) ||
        SSL_connect(c->ssl) != 1)
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

/* A new connection for the next request; in resume mode it must have resumed. */
static int SK_MUST_CHECK sk_bench_open(sk_bench_worker *w)
{
    if (sk_bench_connect(w->o, w->ctx, &w->conn, w->first_error, sizeof(w->first_error)) != 0)
        return -1;
    if (w->o->mode == SK_BENCH_RESUME) {
        if (SSL_session_reused(w->conn.ssl) != 1) {
            if (w->first_error[0] == '\0' &&
                sk_snprintf(w->first_error, sizeof(w->first_error),
                            "the server did not resume the session") != 0)
                w->first_error[0] = '\0';
            sk_bench_close(&w->conn);
            return -1;
        }
        w->resumed++;
    }
    return 0;
}

/* Keep-alive mode closes only when the connection broke or the server asked for
 * it (then it reconnects); hold mode keeps each connection after its GET (and
 * stops at the first failure: the limit is what it measures); the other modes
 * close after every exchange. */
static void *sk_bench_run(void *arg)
{
    sk_bench_worker *w = arg;
    const sk_bench_mode mode = w->o->mode;
    uint64_t i, ok_before;
    double t;
    int rc;

    w->conn.fd = -1;
    if (mode == SK_BENCH_KEEPALIVE) {
        /* Open and warm the connection (one GET, not counted) before the
         * measured part: keep-alive figures exclude the handshakes. A front end
         * may refuse a burst of handshakes from one address (sekisho's
         * handshakes_per_address): retry, and report how often. */
        for (i = 0; i < 100; i++) {
            if (sk_bench_open(w) == 0) {
                if (sk_bench_exchange(w) == 0)
                    break;
                sk_bench_close(&w->conn);
            }
            w->retries++;
            (void)usleep(20000);
        }
        if (w->conn.ssl != NULL)
            w->first_error[0] = '\0';
        w->ok = w->errors = w->bad_status = 0;
        (void)pthread_barrier_wait(w->start);
    }
    for (i = 0; i < w->todo; i++) {
        t = sk_bench_now();
        if (w->o->deadline > 0 && t > w->o->deadline) {
            w->errors += w->todo - i; /* out of time: the rest count as failed */
            if (w->first_error[0] == '\0' &&
                sk_snprintf(w->first_error, sizeof(w->first_error), "--max-seconds reached") != 0)
                w->first_error[0] = '\0';
            break;
        }
        if (w->conn.ssl == NULL && sk_bench_open(w) != 0) {
            w->errors++;
            if (mode == SK_BENCH_HOLD)
                break;
            continue;
        }
        ok_before = w->ok;
        rc = sk_bench_exchange(w);
        if (w->ok > ok_before && w->nlat < w->todo)
            w->lat[w->nlat++] = sk_bench_now() - t;
        if (mode == SK_BENCH_HOLD) {
            if (rc != 0 || w->ok == ok_before) {
                if (rc == 0)
                    w->errors++; /* wrong status or the server wants to close */
                sk_bench_close(&w->conn);
                break;
            }
            w->held[w->nheld++] = w->conn.ssl; /* its fd is SSL_get_fd() */
            w->conn.ssl = NULL;
            w->conn.fd = -1;
            continue;
        }
        if (rc != 0 || mode != SK_BENCH_KEEPALIVE)
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
            "usage: sekisho-bench handshake|resume|keepalive|hold --connect HOST:PORT\n"
            "         --ca CA.crt --cert CLIENT.crt --key CLIENT.key [-n CONNECTIONS]\n"
            "         [-c THREADS] [-r REQUESTS_PER_CONNECTION] [--path /] [--cookie-file F]\n"
            "         [--tls12] [--expect 200] [--timeout 10] [--max-seconds S]\n"
            "       sekisho-bench slowloris --connect HOST:PORT --bind ADDR [-n SOCKETS]\n");
}

static int SK_MUST_CHECK sk_bench_parse(int argc, char **argv, sk_bench_opts *o)
{
    size_t len = 0;
    uint64_t max_s = 0;
    int i;

    memset(o, 0, sizeof(*o));
    o->count = 1000;
    o->conns = 1;
    o->reqs = 1000;
    o->expect = 200;
    o->timeout_s = 10;
    o->path = "/";
    if (argc < 2)
        return -1;
    for (i = 0; i < (int)(sizeof(sk_bench_mode_names) / sizeof(sk_bench_mode_names[0])); i++)
        if (strcmp(argv[1], sk_bench_mode_names[i]) == 0)
            break;
    if (i == (int)(sizeof(sk_bench_mode_names) / sizeof(sk_bench_mode_names[0])))
        return -1;
    o->mode = (sk_bench_mode)i;
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
        } else if (strcmp(a, "--bind") == 0) {
            o->bind = v;
        } else if (strcmp(a, "--cpu-pid") == 0) {
            uint64_t pid;
            if (o->n_cpu_pids == SK_BENCH_MAX_PIDS || sk_parse_u64(v, 1, 1u << 30, &pid) != 0)
                return -1;
            o->cpu_pids[o->n_cpu_pids++] = (long)pid;
        } else if (strcmp(a, "-n") == 0) {
            if (sk_parse_u64(v, 1, 100000000, &o->count) != 0)
                return -1;
        } else if (strcmp(a, "-c") == 0) {
            if (sk_parse_u64(v, 1, SK_BENCH_MAX_THREADS, &o->conns) != 0)
                return -1;
        } else if (strcmp(a, "-r") == 0) {
            if (sk_parse_u64(v, 1, 100000000, &o->reqs) != 0)
                return -1;
        } else if (strcmp(a, "--timeout") == 0) {
            if (sk_parse_u64(v, 1, 3600, &o->timeout_s) != 0)
                return -1;
        } else if (strcmp(a, "--max-seconds") == 0) {
            if (sk_parse_u64(v, 1, 86400, &max_s) != 0)
                return -1;
            o->deadline = (double)max_s; /* made absolute when the run starts */
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
    if (o->mode == SK_BENCH_SLOWLORIS)
        return o->host[0] == '\0' || o->bind == NULL ? -1 : 0;
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
    /* No client cache: resume mode hands its one session over explicitly, the
     * others must do full handshakes. TLS 1.3 resumption needs tickets; TLS 1.2
     * resumption is measured with the session ID, so no tickets there. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (o->mode != SK_BENCH_RESUME || o->tls12)
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    /* Thousands of held connections: no idle 16 KiB buffers in the client. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
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

/* TLS session to resume: from one full handshake whose response was read (in
 * TLS 1.3 the ticket arrives after the handshake, before the response). */
static SSL_SESSION *sk_bench_first_session(sk_bench_worker *w)
{
    SSL_SESSION *sess = NULL;

    if (sk_bench_connect(w->o, w->ctx, &w->conn, w->first_error, sizeof(w->first_error)) != 0)
        return NULL;
    if (sk_bench_exchange(w) == 0 && w->ok == 1) {
        sess = SSL_get1_session(w->conn.ssl);
        if (sess != NULL && SSL_SESSION_is_resumable(sess) != 1) {
            fprintf(stderr, "sekisho-bench: the server offered no resumable session\n");
            SSL_SESSION_free(sess);
            sess = NULL;
        }
    }
    sk_bench_close(&w->conn);
    w->ok = w->errors = w->bad_status = 0;
    if (sess == NULL && w->first_error[0] != '\0')
        fprintf(stderr, "sekisho-bench: first handshake: %s\n", w->first_error);
    return sess;
}

static int sk_bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* p50 and p99 (nearest rank) over every thread's durations, in milliseconds. */
static void sk_bench_percentiles(const sk_bench_worker *w, uint64_t nw, double *p50, double *p99)
{
    uint64_t i, n = 0;
    double *all;

    *p50 = *p99 = 0;
    for (i = 0; i < nw; i++)
        n += w[i].nlat;
    all = n > 0 ? malloc(n * sizeof(*all)) : NULL;
    if (all == NULL)
        return;
    n = 0;
    for (i = 0; i < nw; i++) {
        memcpy(all + n, w[i].lat, w[i].nlat * sizeof(*all));
        n += w[i].nlat;
    }
    qsort(all, n, sizeof(*all), sk_bench_cmp_double);
    *p50 = all[(n + 1) / 2 - 1] * 1e3;
    *p99 = all[(n * 99 + 99) / 100 - 1] * 1e3;
    free(all);
}

/* Hold and slowloris modes wait here until the script is done measuring. */
void sk_bench_wait_signal(const sigset_t *set)
{
    int sig = 0;

    fflush(stdout);
    while (sigwait(set, &sig) != 0)
        ;
}

/* utime+stime (clock ticks) of the --cpu-pid processes, all their threads. */
static long long sk_bench_cpu_ticks(const sk_bench_opts *o)
{
    long long total = 0;
    int i;

    for (i = 0; i < o->n_cpu_pids; i++) {
        char path[64], line[1024], *p;
        unsigned long long ut = 0, st = 0;
        FILE *f;
        size_t n;
        if (sk_snprintf(path, sizeof(path), "/proc/%ld/stat", o->cpu_pids[i]) != 0 ||
            (f = fopen(path, "r")) == NULL)
            continue;
        n = fread(line, 1, sizeof(line) - 1, f);
        fclose(f);
        line[n] = '\0';
        /* Field 2 (comm) may contain spaces: start after the last ')'. */
        p = strrchr(line, ')');
        if (p != NULL && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
                                &ut, &st) == 2)
            total += (long long)(ut + st);
    }
    return total;
}

/* Per-thread shares, request text and the duration arrays. */
static int SK_MUST_CHECK sk_bench_prepare(sk_bench_worker *workers, sk_bench_opts *o, SSL_CTX *ctx)
{
    uint64_t i;

    for (i = 0; i < o->conns; i++) {
        sk_bench_worker *w = &workers[i];
        w->o = o;
        w->ctx = ctx;
        w->todo = o->mode == SK_BENCH_KEEPALIVE ? o->reqs
                                                : o->count / o->conns + (i < o->count % o->conns ? 1 : 0);
        w->lat = calloc(w->todo > 0 ? w->todo : 1, sizeof(*w->lat));
        w->held = o->mode == SK_BENCH_HOLD ? calloc(w->todo > 0 ? w->todo : 1, sizeof(SSL *)) : NULL;
        if (w->lat == NULL || (o->mode == SK_BENCH_HOLD && w->held == NULL)) {
            fprintf(stderr, "sekisho-bench: out of memory\n");
            return -1;
        }
        if (sk_snprintf(w->req, sizeof(w->req),
                        "GET %s HTTP/1.1\r\nHost: %s:%s\r\nUser-Agent: sekisho-bench\r\n"
                        "Accept: application/json\r\n%s%s%s\r\n",
                        o->path, o->host, o->port, o->cookie[0] != '\0' ? "Cookie: " : "",
                        o->cookie, o->cookie[0] != '\0' ? "\r\n" : "") != 0) {
            fprintf(stderr, "sekisho-bench: request too long\n");
            return -1;
        }
        w->reqlen = strlen(w->req);
    }
    return 0;
}

static void sk_bench_release(sk_bench_worker *workers)
{
    uint64_t i, j;

    for (i = 0; i < SK_BENCH_MAX_THREADS; i++) {
        sk_bench_worker *w = &workers[i];
        for (j = 0; w->held != NULL && j < w->nheld; j++) {
            int fd = SSL_get_fd(w->held[j]);
            SSL_free(w->held[j]); /* no close_notify: 10,000 of them would take a while */
            if (fd >= 0)
                close(fd);
        }
        free(w->held);
        free(w->lat);
        sk_wipe(w->req, sizeof(w->req));
    }
}

/* Thousands of connections: lift the soft open-file limit to the hard one. */
static void sk_bench_raise_nofile(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            fprintf(stderr, "sekisho-bench: cannot raise the open-file limit: %s\n", strerror(errno));
    }
}

int main(int argc, char **argv)
{
    static sk_bench_worker workers[SK_BENCH_MAX_THREADS];
    sk_bench_opts o;
    SSL_CTX *ctx = NULL;
    sigset_t set;
    uint64_t i, total, started = 0, ok = 0, errors = 0, bad = 0, resumed = 0, held = 0, retries = 0;
    double t0 = 0, wall, p50, p99;
    long long cpu0 = 0, cpu1 = 0;
    pthread_barrier_t start;
    int have_barrier = 0;
    int rc = 1;

    if (sk_bench_parse(argc, argv, &o) != 0) {
        sk_bench_usage();
        rc = 2;
        goto out;
    }
    signal(SIGPIPE, SIG_IGN);
    sk_bench_raise_nofile();
    /* Hold and slowloris modes take them with sigwait: blocked in every thread.
     * The other modes just die of them. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    if ((o.mode == SK_BENCH_HOLD || o.mode == SK_BENCH_SLOWLORIS) &&
        pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
        goto out;
    if (o.mode == SK_BENCH_SLOWLORIS) {
        rc = sk_bench_slowloris(&o, &set) == 0 ? 0 : 1;
        goto out;
    }
    ctx = sk_bench_ctx(&o);
    if (ctx == NULL)
        goto out;
    total = o.mode == SK_BENCH_KEEPALIVE ? o.conns * o.reqs : o.count;
    if (o.mode != SK_BENCH_KEEPALIVE && o.conns > o.count)
        o.conns = o.count;
    if (sk_bench_prepare(workers, &o, ctx) != 0)
        goto out;
    if (o.mode == SK_BENCH_RESUME && (o.session = sk_bench_first_session(&workers[0])) == NULL) {
        fprintf(stderr, "sekisho-bench: no session to resume\n");
        goto out;
    }
    if (o.mode == SK_BENCH_KEEPALIVE) {
        if (pthread_barrier_init(&start, NULL, (unsigned)o.conns + 1) != 0)
            goto out;
        have_barrier = 1;
        for (i = 0; i < o.conns; i++)
            workers[i].start = &start;
    }
    cpu0 = sk_bench_cpu_ticks(&o);
    t0 = sk_bench_now();
    if (o.deadline > 0)
        o.deadline += t0;
    for (started = 0; started < o.conns; started++) {
        if (pthread_create(&workers[started].tid, NULL, sk_bench_run, &workers[started]) != 0) {
            /* Cannot happen with <= 256 threads; the barrier would hang the rest. */
            fprintf(stderr, "sekisho-bench: pthread_create: %s\n", strerror(errno));
            exit(1);
        }
    }
    if (o.mode == SK_BENCH_KEEPALIVE) {
        (void)pthread_barrier_wait(&start);
        cpu0 = sk_bench_cpu_ticks(&o);
        t0 = sk_bench_now();
    }
    rc = 0;

    for (i = 0; i < started; i++) {
        (void)pthread_join(workers[i].tid, NULL);
        ok += workers[i].ok;
        errors += workers[i].errors;
        bad += workers[i].bad_status;
        resumed += workers[i].resumed;
        held += workers[i].nheld;
        retries += workers[i].retries;
        if (workers[i].first_error[0] != '\0')
            fprintf(stderr, "sekisho-bench: thread %llu: first error: %s\n",
                    (unsigned long long)i, workers[i].first_error);
    }
    if (rc == 0) {
        wall = sk_bench_now() - t0;
        cpu1 = sk_bench_cpu_ticks(&o);
        sk_bench_percentiles(workers, started, &p50, &p99);
        printf("mode=%s count=%llu ok=%llu errors=%llu bad_status=%llu resumed=%llu held=%llu "
               "connect_retries=%llu wall_s=%.3f rate_per_s=%.1f p50_ms=%.3f p99_ms=%.3f cpu_ticks=%lld\n",
               sk_bench_mode_names[o.mode], (unsigned long long)total, (unsigned long long)ok,
               (unsigned long long)errors, (unsigned long long)bad, (unsigned long long)resumed,
               (unsigned long long)held, (unsigned long long)retries, wall, wall > 0 ? (double)ok / wall : 0.0, p50, p99,
               o.n_cpu_pids > 0 ? cpu1 - cpu0 : -1LL);
        if (o.mode == SK_BENCH_HOLD) {
            sk_bench_wait_signal(&set);
            rc = held > 0 ? 0 : 1;
        } else {
            rc = (ok == total && (o.mode != SK_BENCH_RESUME || resumed == total)) ? 0 : 1;
        }
    }
out:
    if (have_barrier)
        (void)pthread_barrier_destroy(&start);
    sk_bench_release(workers);
    sk_wipe(o.cookie, sizeof(o.cookie));
    SSL_SESSION_free(o.session);
    SSL_CTX_free(ctx);
    return rc;
}
