/* End-to-end tests for sekisho_proxy against a scripted HTTP/1.1 upstream that runs
 * in a thread on 127.0.0.1: keep-alive reuse, close-delimited bodies, chunked
 * uploads, stale pooled connections and the one-time retry. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "sk_proxy.h"

/* ---- the scripted upstream ------------------------------------------------------ */

enum act { ACT_RESPOND, ACT_RESPOND_CLOSE, ACT_DROP };

#define MAX_REQ 16
#define MAX_CONN 8
#define CONN_BUF (256 * 1024)

typedef struct srv srv;
/* Writes the answer to request number reqno (0-based, in arrival order) into out. */
typedef enum act (*responder)(srv *s, int reqno, sk_buf *out);

struct srv_conn {
    int fd;
    int id;
    size_t len;
    char *buf;
};

struct srv {
    int lfd, port, stop[2];
    pthread_t th;
    responder fn;
    atomic_int closed_by_server;
    /* Written by the server thread, read by the test after stop_server(). */
    int nconn, nreq, broken_request;
    int req_conn[MAX_REQ];
    char req_head[MAX_REQ][1024];
    char *req_body[MAX_REQ];
    size_t req_body_len[MAX_REQ];
    struct srv_conn conns[MAX_CONN];
    char out[CONN_BUF];
};

static const char *find_crlf(const char *p, const char *end)
{
    for (; p + 1 < end; p++)
        if (p[0] == '\r' && p[1] == '\n')
            return p;
    return NULL;
}

/* Parses one complete request at the start of c->buf. Returns bytes consumed, 0
 * when more are needed, -1 when the framing is broken. The body is de-chunked. */
static long parse_request(srv *s, struct srv_conn *c)
{
    const char *start = c->buf, *end = c->buf + c->len;
    const char *eoh = memmem(start, c->len, "\r\n\r\n", 4);
    char head[1024];
    size_t head_len;
    const char *p, *cl;
    char *body;
    size_t blen = 0;

    if (eoh == NULL)
        return 0;
    head_len = (size_t)(eoh - start) + 4;
    if (head_len >= sizeof head || s->nreq >= MAX_REQ)
        return -1;
    memcpy(head, start, head_len);
    head[head_len] = '\0';
    body = malloc(CONN_BUF);
    if (body == NULL)
        return -1;
    p = eoh + 4;
    if (strcasestr(head, "\r\nTransfer-Encoding: chunked\r\n") != NULL) {
        for (;;) {
            const char *nl = find_crlf(p, end);
            char *stop;
            unsigned long size;
            if (nl == NULL)
                goto more;
            size = strtoul(p, &stop, 16);
            if (stop == p || (*stop != '\r' && *stop != ';'))
                goto broken;
            p = nl + 2;
            if (size == 0) {
                if (end - p < 2)
                    goto more;
                if (p[0] != '\r' || p[1] != '\n')
                    goto broken; /* the gateway sends no trailers */
                p += 2;
                break;
            }
            if ((size_t)(end - p) < size + 2)
                goto more;
            if (blen + size > CONN_BUF || p[size] != '\r' || p[size + 1] != '\n')
                goto broken;
            memcpy(body + blen, p, size);
            blen += size;
            p += size + 2;
        }
    } else if ((cl = strcasestr(head, "\r\nContent-Length: ")) != NULL) {
        unsigned long n = strtoul(cl + 18, NULL, 10);
        if (n > CONN_BUF)
            goto broken;
        if ((size_t)(end - p) < n)
            goto more;
        memcpy(body, p, n);
        blen = n;
        p += n;
    }
    memcpy(s->req_head[s->nreq], head, head_len + 1);
    s->req_body[s->nreq] = body;
    s->req_body_len[s->nreq] = blen;
    s->req_conn[s->nreq] = c->id;
    s->nreq++;
    return (long)(p - start);
more:
    free(body);
    return 0;
broken:
    free(body);
    s->broken_request = 1;
    return -1;
}

static void conn_close(srv *s, struct srv_conn *c)
{
    close(c->fd);
    c->fd = -1;
    atomic_fetch_add(&s->closed_by_server, 1);
}

static int send_all_test(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void serve_conn(srv *s, struct srv_conn *c)
{
    ssize_t r = recv(c->fd, c->buf + c->len, CONN_BUF - c->len, 0);
    if (r <= 0) {
        close(c->fd); /* the client went away: not counted as a server close */
        c->fd = -1;
        return;
    }
    c->len += (size_t)r;
    for (;;) {
        long used = parse_request(s, c);
        sk_buf out;
        enum act a;
        if (used == 0)
            return;
        if (used < 0) {
            conn_close(s, c);
            return;
        }
        memmove(c->buf, c->buf + used, c->len - (size_t)used);
        c->len -= (size_t)used;
        sk_buf_init(&out, s->out, sizeof s->out);
        a = s->fn(s, s->nreq - 1, &out);
        if (a != ACT_DROP && (sk_buf_finish(&out) != 0 || send_all_test(c->fd, out.data, out.len) != 0))
            a = ACT_DROP;
        if (a != ACT_RESPOND) {
            conn_close(s, c);
            return;
        }
    }
}

static void *server_main(void *arg)
{
    srv *s = arg;
    for (;;) {
        struct pollfd pf[2 + MAX_CONN];
        struct srv_conn *who[2 + MAX_CONN];
        nfds_t n = 0;
        pf[n].fd = s->stop[0];
        pf[n++].events = POLLIN;
        pf[n].fd = s->lfd;
        pf[n++].events = POLLIN;
        for (int i = 0; i < MAX_CONN; i++) {
            if (s->conns[i].fd >= 0) {
                who[n] = &s->conns[i];
                pf[n].fd = s->conns[i].fd;
                pf[n++].events = POLLIN;
            }
        }
        /* A stuck test must not hang forever. */
        if (poll(pf, n, 10000) <= 0 || pf[0].revents)
            break;
        if (pf[1].revents & POLLIN) {
            int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
            if (fd >= 0) {
                int slot = -1;
                for (int i = 0; i < MAX_CONN && slot < 0; i++)
                    if (s->conns[i].fd < 0)
                        slot = i;
                if (slot < 0) {
                    close(fd);
                } else {
                    s->conns[slot].fd = fd;
                    s->conns[slot].id = s->nconn++;
                    s->conns[slot].len = 0;
                }
            }
        }
        for (nfds_t i = 2; i < n; i++)
            if (pf[i].revents & (POLLIN | POLLHUP | POLLERR))
                serve_conn(s, who[i]);
    }
    for (int i = 0; i < MAX_CONN; i++)
        if (s->conns[i].fd >= 0)
            close(s->conns[i].fd);
    return NULL;
}

static srv *start_server(responder fn)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    int one = 1;
    srv *s = calloc(1, sizeof *s);
    assert_non_null(s);
    s->fn = fn;
    for (int i = 0; i < MAX_CONN; i++) {
        s->conns[i].fd = -1;
        s->conns[i].buf = malloc(CONN_BUF);
        assert_non_null(s->conns[i].buf);
    }
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s->lfd >= 0);
    assert_int_equal(setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(s->lfd, 16), 0);
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&sa, &sl), 0);
    s->port = ntohs(sa.sin_port);
    assert_int_equal(pipe2(s->stop, O_CLOEXEC), 0);
    assert_int_equal(pthread_create(&s->th, NULL, server_main, s), 0);
    return s;
}

static void stop_server(srv *s)
{
    assert_int_equal(write(s->stop[1], "x", 1), 1);
    assert_int_equal(pthread_join(s->th, NULL), 0);
}

static void free_server(srv *s)
{
    close(s->lfd);
    close(s->stop[0]);
    close(s->stop[1]);
    for (int i = 0; i < MAX_CONN; i++)
        free(s->conns[i].buf);
    for (int i = 0; i < s->nreq; i++)
        free(s->req_body[i]);
    free(s);
}

/* ---- fixture: one server + one proxy ------------------------------------------------ */

typedef struct fixture {
    sk_conf conf;
    srv *s;
    sk_proxy *p;
} fixture;

static fixture *make_fixture(responder fn, uint32_t keepalive)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->s = start_server(fn);
    sk_conf_defaults(&f->conf);
    assert_int_equal(sk_strlcpy(f->conf.upstream_host, sizeof f->conf.upstream_host, "127.0.0.1"), 0);
    assert_int_equal(sk_snprintf(f->conf.upstream_port, sizeof f->conf.upstream_port, "%d", f->s->port), 0);
    assert_int_equal(sk_snprintf(f->conf.upstream_url, sizeof f->conf.upstream_url, "http://127.0.0.1:%d",
                                 f->s->port), 0);
    f->conf.upstream_timeout = 5;
    f->conf.upstream_keepalive = keepalive;
    assert_int_equal(sk_proxy_create(&f->conf, &f->p), 0);
    return f;
}

/* Stops the server so that its records can be read; the proxy stays usable. */
static void finish_fixture(fixture *f)
{
    stop_server(f->s);
}

static void free_fixture(fixture *f)
{
    sk_proxy_destroy(f->p);
    free_server(f->s);
    free(f);
}

/* Reads the whole body; returns its length, or -1 on error. */
static long read_all(sk_proxy_req *r, char *out, size_t cap)
{
    size_t len = 0;
    for (;;) {
        ssize_t n = sk_proxy_read_body(r, out + len, cap - len);
        if (n < 0)
            return -1;
        if (n == 0)
            return (long)len;
        len += (size_t)n;
        if (len == cap)
            return -1;
    }
}

static const char get_head[] = "GET /page HTTP/1.1\r\nHost: portal\r\n\r\n";

/* One bodiless GET; returns the status and copies the body into out. */
static int simple_get(fixture *f, char *out, size_t cap)
{
    sk_proxy_req *r = NULL;
    long n;
    int status;
    assert_int_equal(sk_proxy_begin(f->p, get_head, strlen(get_head), SK_PROXY_BODY_NONE, 0, &r), 0);
    assert_int_equal(sk_proxy_end_body(r), 0);
    if (sk_proxy_read_head(r) != 0) {
        sk_proxy_finish(r);
        return -1;
    }
    status = sk_proxy_status(r);
    n = read_all(r, out, cap - 1);
    assert_true(n >= 0);
    out[n] = '\0';
    sk_proxy_finish(r);
    return status;
}

static void respond_text(sk_buf *out, int reqno, const char *extra)
{
    char body[32];
    assert_int_equal(sk_snprintf(body, sizeof body, "req-%d", reqno), 0);
    sk_buf_printf(out, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n%sContent-Length: %zu\r\n\r\n%s", extra,
                  strlen(body), body);
}

/* ---- keep-alive --------------------------------------------------------------------- */

static enum act ka_responder(srv *s, int reqno, sk_buf *out)
{
    (void)s;
    if (reqno == 1) { /* HEAD: the length of the GET body, and no body */
        sk_buf_puts(out, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n");
        return ACT_RESPOND;
    }
    if (reqno == 2) { /* chunked answer */
        sk_buf_puts(out, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nreq\r\n2\r\n-2\r\n0\r\n\r\n");
        return ACT_RESPOND;
    }
    respond_text(out, reqno, "");
    return ACT_RESPOND;
}

static void test_keepalive_reuse(void **state)
{
    static const char head_req[] = "HEAD /page HTTP/1.1\r\nHost: portal\r\n\r\n";
    static const char post_head[] = "POST /form HTTP/1.1\r\nHost: portal\r\nContent-Length: 7\r\n\r\n";
    fixture *f = make_fixture(ka_responder, 64);
    sk_proxy_req *r = NULL;
    char body[256];
    (void)state;

    assert_int_equal(simple_get(f, body, sizeof body), 200);
    assert_string_equal(body, "req-0");

    assert_int_equal(sk_proxy_begin(f->p, head_req, strlen(head_req), SK_PROXY_BODY_NONE, 1, &r), 0);
    assert_int_equal(sk_proxy_read_head(r), 0);
    assert_int_equal(sk_proxy_status(r), 200);
    assert_int_equal(sk_proxy_content_length(r), 10);
    assert_int_equal(sk_proxy_has_body(r), 0);
    assert_int_equal(read_all(r, body, sizeof body), 0);
    sk_proxy_finish(r);

    assert_int_equal(sk_proxy_begin(f->p, post_head, strlen(post_head), SK_PROXY_BODY_LENGTH, 0, &r), 0);
    assert_int_equal(sk_proxy_send_body(r, "a=1", 3), 0);
    assert_int_equal(sk_proxy_send_body(r, "&b=2", 4), 0);
    assert_int_equal(sk_proxy_end_body(r), 0);
    assert_int_equal(sk_proxy_read_head(r), 0);
    assert_int_equal(sk_proxy_content_length(r), -1);
    assert_int_equal(read_all(r, body, sizeof body), 5);
    assert_memory_equal(body, "req-2", 5);
    sk_proxy_finish(r);

    assert_int_equal(simple_get(f, body, sizeof body), 200);
    assert_string_equal(body, "req-3");

    finish_fixture(f);
    assert_int_equal(f->s->broken_request, 0);
    assert_int_equal(f->s->nreq, 4);
    assert_int_equal(f->s->nconn, 1); /* all four exchanges on one connection */
    for (int i = 0; i < 4; i++)
        assert_int_equal(f->s->req_conn[i], 0);
    assert_string_equal(f->s->req_head[0], get_head); /* the head is sent byte for byte */
    assert_string_equal(f->s->req_head[1], head_req);
    assert_string_equal(f->s->req_head[2], post_head);
    assert_int_equal(f->s->req_body_len[2], 7);
    assert_memory_equal(f->s->req_body[2], "a=1&b=2", 7);
    free_fixture(f);
}

static enum act text_responder(srv *s, int reqno, sk_buf *out)
{
    (void)s;
    respond_text(out, reqno, "");
    return ACT_RESPOND;
}

static void test_no_pool_when_keepalive_zero(void **state)
{
    fixture *f = make_fixture(text_responder, 0);
    char body[64];
    (void)state;
    assert_int_equal(simple_get(f, body, sizeof body), 200);
    assert_string_equal(body, "req-0");
    assert_int_equal(simple_get(f, body, sizeof body), 200);
    assert_string_equal(body, "req-1");
    finish_fixture(f);
    assert_int_equal(f->s->nconn, 2);
    free_fixture(f);
}

/* ---- close-delimited body ------------------------------------------------------------ */

#define BIG 40000

static void fill_pattern(char *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (char)('a' + (i * 7 + seed) % 26);
}

static enum act close_responder(srv *s, int reqno, sk_buf *out)
{
    (void)s;
    if (reqno == 0) {
        static char big[BIG];
        fill_pattern(big, sizeof big, 3);
        sk_buf_puts(out, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n\r\n");
        sk_buf_add(out, big, sizeof big);
        return ACT_RESPOND_CLOSE;
    }
    respond_text(out, reqno, "");
    return ACT_RESPOND;
}

static void test_close_delimited_body(void **state)
{
    fixture *f = make_fixture(close_responder, 64);
    sk_proxy_req *r = NULL;
    char *body = malloc(BIG + 1024), want[BIG];
    (void)state;
    assert_non_null(body);
    fill_pattern(want, sizeof want, 3);

    assert_int_equal(sk_proxy_begin(f->p, get_head, strlen(get_head), SK_PROXY_BODY_NONE, 0, &r), 0);
    assert_int_equal(sk_proxy_read_head(r), 0);
    assert_int_equal(sk_proxy_status(r), 200);
    assert_int_equal(sk_proxy_content_length(r), -1);
    assert_int_equal(sk_proxy_has_body(r), 1);
    /* Small reads: the body must come out piece by piece and in order. */
    size_t len = 0;
    for (;;) {
        ssize_t n = sk_proxy_read_body(r, body + len, 1000);
        assert_true(n >= 0);
        if (n == 0)
            break;
        assert_true(n <= 1000);
        len += (size_t)n;
        assert_true(len <= BIG);
    }
    assert_int_equal(len, BIG);
    assert_memory_equal(body, want, BIG);
    sk_proxy_finish(r);

    /* The closed connection is not reused. */
    assert_int_equal(simple_get(f, body, 1024), 200);
    assert_string_equal(body, "req-1");
    finish_fixture(f);
    assert_int_equal(f->s->nconn, 2);
    assert_int_equal(f->s->req_conn[1], 1);
    free(body);
    free_fixture(f);
}

/* ---- chunked upload and download ---------------------------------------------------------- */

static enum act echo_responder(srv *s, int reqno, sk_buf *out)
{
    size_t n = s->req_body_len[reqno];
    const char *p = s->req_body[reqno];
    sk_buf_puts(out, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    while (n > 0) {
        size_t k = n < 7000 ? n : 7000;
        sk_buf_printf(out, "%zx\r\n", k);
        sk_buf_add(out, p, k);
        sk_buf_puts(out, "\r\n");
        p += k;
        n -= k;
    }
    sk_buf_puts(out, "0\r\n\r\n");
    return ACT_RESPOND;
}

static void test_chunked_upload(void **state)
{
    static const char head[] = "POST /upload HTTP/1.1\r\nHost: portal\r\nTransfer-Encoding: chunked\r\n\r\n";
    fixture *f = make_fixture(echo_responder, 64);
    sk_proxy_req *r = NULL;
    char *big = malloc(20000), *want = malloc(20010), *got = malloc(40000);
    size_t wlen = 0;
    long n;
    (void)state;
    assert_non_null(big);
    assert_non_null(want);
    assert_non_null(got);
    fill_pattern(big, 20000, 11);

    assert_int_equal(sk_proxy_begin(f->p, head, strlen(head), SK_PROXY_BODY_CHUNKED, 0, &r), 0);
    assert_int_equal(sk_proxy_send_body(r, "hello ", 6), 0);
    memcpy(want + wlen, "hello ", 6);
    wlen += 6;
    assert_int_equal(sk_proxy_send_body(r, big, 20000), 0);
    memcpy(want + wlen, big, 20000);
    wlen += 20000;
    assert_int_equal(sk_proxy_send_body(r, "", 0), 0); /* must not end the body early */
    assert_int_equal(sk_proxy_send_body(r, "0\r\n\r\n", 4), 0); /* data that looks like framing */
    memcpy(want + wlen, "0\r\n\r", 4);
    wlen += 4;
    assert_int_equal(sk_proxy_end_body(r), 0);
    assert_int_equal(sk_proxy_read_head(r), 0);
    assert_int_equal(sk_proxy_status(r), 200);
    n = read_all(r, got, 40000);
    assert_int_equal(n, (long)wlen);
    assert_memory_equal(got, want, wlen);
    sk_proxy_finish(r);

    /* An empty chunked body is just the last-chunk. */
    assert_int_equal(sk_proxy_begin(f->p, head, strlen(head), SK_PROXY_BODY_CHUNKED, 0, &r), 0);
    assert_int_equal(sk_proxy_end_body(r), 0);
    assert_int_equal(sk_proxy_read_head(r), 0);
    assert_int_equal(read_all(r, got, 40000), 0);
    sk_proxy_finish(r);

    finish_fixture(f);
    assert_int_equal(f->s->broken_request, 0);
    assert_int_equal(f->s->nreq, 2);
    assert_int_equal(f->s->req_body_len[0], wlen);
    assert_memory_equal(f->s->req_body[0], want, wlen);
    assert_int_equal(f->s->req_body_len[1], 0);
    assert_int_equal(f->s->nconn, 1);
    free(big);
    free(want);
    free(got);
    free_fixture(f);
}

/* ---- stale pooled connections ---------------------------------------------------------- */

static enum act close_after_first(srv *s, int reqno, sk_buf *out)
{
    (void)s;
    /* Keep-alive is not refused in the answer: the client pools the connection and
     * only finds out later that the upstream dropped it. */
    respond_text(out, reqno, "");
    return reqno == 0 ? ACT_RESPOND_CLOSE : ACT_RESPOND;
}

static void wait_closed(srv *s, int n)
{
    for (int i = 0; i < 2000 && atomic_load(&s->closed_by_server) < n; i++) {
        struct timespec ts = { 0, 1000000 };
        nanosleep(&ts, NULL);
    }
    assert_true(atomic_load(&s->closed_by_server) >= n);
}

static void test_idle_pooled_conn_closed(void **state)
{
    fixture *f = make_fixture(close_after_first, 64);
    char body[64];
    (void)state;
    assert_int_equal(simple_get(f, body, sizeof body), 200);
    assert_string_equal(body, "req-0");
    wait_closed(f->s, 1);
    assert_int_equal(simple_get(f, body, sizeof body), 200);
    assert_string_equal(body, "req-1");
    finish_fixture(f);
    assert_int_equal(f->s->nreq, 2);
    assert_int_equal(f->s->nconn, 2);
    assert_int_equal(f->s->req_conn[1], 1);
    free_fixture(f);
}

static enum act drop_second(srv *s, int reqno, sk_buf *out)
{
    (void)s;
    if (reqno == 1)
        return ACT_DROP; /* closes after reading the request, without an answer */
    respond_text(out, reqno, "");
    return ACT_RESPOND;
}

/* The pooled connection passes the liveness probe, then the upstream closes it
 * without answering: a bodiless request is resent once on a fresh connection. */
static void test_retry_on_fresh_connection(void **state)
{
    fixture *f = make_fixture(drop_second, 64);
    char body[64];
    (void)state;
    assert_int_equal(simple_get(f, body, sizeof body), 200);
    assert_string_equal(body, "req-0");
    assert_int_equal(simple_get(f, body, sizeof body), 200);
    assert_string_equal(body, "req-2");
    finish_fixture(f);
    assert_int_equal(f->s->nreq, 3);
    assert_int_equal(f->s->nconn, 2);
    assert_int_equal(f->s->req_conn[1], 0);
    assert_int_equal(f->s->req_conn[2], 1);
    assert_string_equal(f->s->req_head[1], get_head);
    assert_string_equal(f->s->req_head[2], get_head);
    free_fixture(f);
}

/* ... but never once body bytes were sent: the upstream may have acted on them. */
static void test_no_retry_after_body(void **state)
{
    static const char post_head[] = "POST /pay HTTP/1.1\r\nHost: portal\r\nContent-Length: 5\r\n\r\n";
    fixture *f = make_fixture(drop_second, 64);
    sk_proxy_req *r = NULL;
    char body[64];
    (void)state;
    assert_int_equal(simple_get(f, body, sizeof body), 200);
    assert_int_equal(sk_proxy_begin(f->p, post_head, strlen(post_head), SK_PROXY_BODY_LENGTH, 0, &r), 0);
    assert_int_equal(sk_proxy_send_body(r, "12345", 5), 0);
    assert_int_equal(sk_proxy_end_body(r), 0);
    assert_int_equal(sk_proxy_read_head(r), -1);
    sk_proxy_finish(r);
    finish_fixture(f);
    assert_int_equal(f->s->nreq, 2);
    assert_int_equal(f->s->nconn, 1);
    free_fixture(f);
}

/* ---- bodiless statuses keep the connection ------------------------------------------------ */

static enum act not_modified_first(srv *s, int reqno, sk_buf *out)
{
    (void)s;
    if (reqno == 0) {
        sk_buf_puts(out, "HTTP/1.1 304 Not Modified\r\nETag: \"1\"\r\nContent-Length: 5\r\n\r\n");
        return ACT_RESPOND;
    }
    if (reqno == 1) {
        sk_buf_puts(out, "HTTP/1.1 204 No Content\r\n\r\n");
        return ACT_RESPOND;
    }
    respond_text(out, reqno, "");
    return ACT_RESPOND;
}

/* The HTTP layer does not read a body when has_body is 0 (as http.c does); the
 * connection must still go back to the pool. */
static void test_304_keeps_connection(void **state)
{
    fixture *f = make_fixture(not_modified_first, 64);
    sk_proxy_req *r = NULL;
    char body[64];
    (void)state;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(sk_proxy_begin(f->p, get_head, strlen(get_head), SK_PROXY_BODY_NONE, 0, &r), 0);
        assert_int_equal(sk_proxy_read_head(r), 0);
        assert_int_equal(sk_proxy_status(r), i == 0 ? 304 : 204);
        assert_int_equal(sk_proxy_has_body(r), 0);
        sk_proxy_finish(r);
    }
    assert_int_equal(simple_get(f, body, sizeof body), 200);
    assert_string_equal(body, "req-2");
    finish_fixture(f);
    assert_int_equal(f->s->nreq, 3);
    assert_int_equal(f->s->nconn, 1);
    free_fixture(f);
}

/* ---- failures ------------------------------------------------------------------------- */

static enum act garbage_responder(srv *s, int reqno, sk_buf *out)
{
    (void)s;
    (void)reqno;
    sk_buf_puts(out, "SSH-2.0-OpenSSH_9.2\r\n\r\n");
    return ACT_RESPOND;
}

static void test_garbage_answer(void **state)
{
    fixture *f = make_fixture(garbage_responder, 64);
    char body[64];
    (void)state;
    assert_int_equal(simple_get(f, body, sizeof body), -1);
    finish_fixture(f);
    free_fixture(f);
}

static void test_connection_refused(void **state)
{
    sk_conf c;
    sk_proxy *p = NULL;
    sk_proxy_req *r = NULL;
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    (void)state;
    /* A port that was just free: bind, learn it, close. */
    assert_true(fd >= 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    close(fd);
    sk_conf_defaults(&c);
    assert_int_equal(sk_strlcpy(c.upstream_host, sizeof c.upstream_host, "127.0.0.1"), 0);
    assert_int_equal(sk_snprintf(c.upstream_port, sizeof c.upstream_port, "%d", ntohs(sa.sin_port)), 0);
    c.upstream_timeout = 2;
    assert_int_equal(sk_proxy_create(&c, &p), 0);
    assert_int_equal(sk_proxy_begin(p, get_head, strlen(get_head), SK_PROXY_BODY_NONE, 0, &r), -1);
    sk_proxy_destroy(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keepalive_reuse),
        cmocka_unit_test(test_no_pool_when_keepalive_zero),
        cmocka_unit_test(test_close_delimited_body),
        cmocka_unit_test(test_chunked_upload),
        cmocka_unit_test(test_idle_pooled_conn_closed),
        cmocka_unit_test(test_retry_on_fresh_connection),
        cmocka_unit_test(test_no_retry_after_body),
        cmocka_unit_test(test_304_keeps_connection),
        cmocka_unit_test(test_garbage_answer),
        cmocka_unit_test(test_connection_refused),
    };
    sk_log_set_level(SK_LOG_ERR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
