/* sk_proxy: upstream HTTP/1.1 client. See sk_proxy.h for the contracts. */
#include "sk_proxy.h"

#include <errno.h>
#include <stddef.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <http_parser.h>

#define RAW_BUF 16384

struct sk_proxy {
    const sk_conf *conf;
    struct addrinfo *addrs;
    pthread_mutex_t lock;
    int *idle;          /* stack of idle keep-alive connections */
    size_t idle_count, idle_cap;
};

struct sk_proxy_req {
    sk_proxy *proxy;
    int fd;
    int reused;
    int is_head;
    int allow_upgrade, upgraded;
    enum sk_proxy_body body_mode;
    int body_sent, body_ended;
    int connecting, retried, got_bytes;
    const char *head;
    size_t head_len, head_off;
    char *out;                 /* request body bytes waiting to be sent */
    size_t out_off, out_len;

    http_parser parser;
    int status;
    int head_done, msg_done, interim, parse_error, upstream_eof, extra_bytes;
    int last_was_value;
    size_t hdr_len;
    size_t hdr_count;
    size_t name_off[SK_PROXY_MAX_HEADERS], value_off[SK_PROXY_MAX_HEADERS];
    size_t body_off, body_len;

    /* Large buffers last: see sk_proxy_req_new_detached. */
    char hdr[SK_PROXY_HEAD_MAX];
    char raw[RAW_BUF];
    char body[RAW_BUF];
};

/* ---- pool -------------------------------------------------------------- */

int sk_proxy_create(const sk_conf *conf, sk_proxy **out)
{
    return sk_proxy_create_for(conf, conf->upstream_host, conf->upstream_port, out);
}

int sk_proxy_create_for(const sk_conf *conf, const char *host, const char *port, sk_proxy **out)
{
    struct addrinfo hints;
    sk_proxy *p = calloc(1, sizeof *p);
    int r;
    if (p == NULL)
        return -1;
    p->conf = conf;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    r = getaddrinfo(host, port, &hints, &p->addrs);
    if (r != 0) {
        sk_log(SK_LOG_ERR, "upstream %s: %s", host, gai_strerror(r));
        free(p);
        return -1;
    }
    p->idle_cap = conf->upstream_keepalive;
    if (p->idle_cap > 0 && (p->idle = calloc(p->idle_cap, sizeof *p->idle)) == NULL) {
        freeaddrinfo(p->addrs);
        free(p);
        return -1;
    }
    pthread_mutex_init(&p->lock, NULL);
    *out = p;
    return 0;
}

void sk_proxy_destroy(sk_proxy *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->idle_count; i++)
        close(p->idle[i]);
    free(p->idle);
    freeaddrinfo(p->addrs);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

/* A non-blocking connect to the first address that accepts one: 0 with *fd set
 * (*in_progress when the connection completes later), -1 when none could start. */
static int connect_fresh(sk_proxy *p, int *fd, int *in_progress)
{
    int one = 1;
    for (struct addrinfo *ai = p->addrs; ai; ai = ai->ai_next) {
        int s = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (s < 0)
            continue;
        (void)setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (connect(s, ai->ai_addr, ai->ai_addrlen) == 0 || errno == EINPROGRESS) {
            *fd = s;
            *in_progress = errno == EINPROGRESS;
            return 0;
        }
        close(s);
    }
    return -1;
}

/* An idle connection the upstream has closed (or that has unexpected bytes waiting)
 * is readable; a healthy idle one is not. */
static int idle_conn_alive(int fd)
{
    char c;
    ssize_t r = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

static int take_idle(sk_proxy *p)
{
    for (;;) {
        int fd = -1;
        pthread_mutex_lock(&p->lock);
        if (p->idle_count > 0)
            fd = p->idle[--p->idle_count];
        pthread_mutex_unlock(&p->lock);
        if (fd < 0 || idle_conn_alive(fd))
            return fd;
        close(fd);
    }
}

static void put_conn(sk_proxy *p, int fd)
{
    pthread_mutex_lock(&p->lock);
    if (p->idle_count < p->idle_cap) {
        p->idle[p->idle_count++] = fd;
        fd = -1;
    }
    pthread_mutex_unlock(&p->lock);
    if (fd >= 0)
        close(fd);
}

/* ---- response parsing -------------------------------------------------- */

static sk_proxy_req *req_of(http_parser *hp)
{
    return hp->data;
}

static int hdr_append(sk_proxy_req *r, const char *at, size_t n)
{
    if (n >= sizeof r->hdr - r->hdr_len)
        return -1;
    memcpy(r->hdr + r->hdr_len, at, n);
    r->hdr_len += n;
    r->hdr[r->hdr_len] = '\0';
    return 0;
}

static int on_header_field(http_parser *hp, const char *at, size_t n)
{
    sk_proxy_req *r = req_of(hp);
    if (r->last_was_value || r->hdr_count == 0) {
        if (r->hdr_count == SK_PROXY_MAX_HEADERS)
            return 1;
        if (r->hdr_count > 0 && hdr_append(r, "", 1) != 0) /* end previous value */
            return 1;
        r->name_off[r->hdr_count++] = r->hdr_len;
        r->last_was_value = 0;
    }
    return hdr_append(r, at, n) == 0 ? 0 : 1;
}

static int on_header_value(http_parser *hp, const char *at, size_t n)
{
    sk_proxy_req *r = req_of(hp);
    if (r->hdr_count == 0)
        return 1;
    if (!r->last_was_value) {
        if (hdr_append(r, "", 1) != 0) /* end the name */
            return 1;
        r->value_off[r->hdr_count - 1] = r->hdr_len;
        r->last_was_value = 1;
    }
    return hdr_append(r, at, n) == 0 ? 0 : 1;
}

static int on_headers_complete(http_parser *hp)
{
    sk_proxy_req *r = req_of(hp);
    if (r->hdr_count > 0 && !r->last_was_value) {
        /* A name without a value still needs its value slot. */
        if (hdr_append(r, "", 1) != 0)
            return -1;
        r->value_off[r->hdr_count - 1] = r->hdr_len;
    }
    if (hdr_append(r, "", 1) != 0)
        return -1;
    r->status = (int)hp->status_code;
    if (r->status < 100 || r->status > 599)
        return -1; /* http-parser takes "HTTP/1.1 3"; a status must have three digits */
    if (r->status >= 100 && r->status < 200) {
        /* Interim answers are consumed here; 101 is never asked for (Upgrade is
         * stripped), so treat it as an error rather than switch protocols. */
        if (r->status == 101) {
            /* Only an upgrade the gateway asked for (a WebSocket) may switch. */
            if (!r->allow_upgrade)
                return -1;
            r->upgraded = 1;
            r->head_done = 1;
            return 1;
        }
        r->interim = 1;
        return 1;
    }
    r->head_done = 1;
    /* 1 = no body follows, whatever Content-Length says: HEAD answers, 204 and 304
     * (RFC 9110 6.4.1). http-parser would otherwise wait for those bytes. */
    return (r->is_head || r->status == 204 || r->status == 304) ? 1 : 0;
}

static int on_body(http_parser *hp, const char *at, size_t n)
{
    sk_proxy_req *r = req_of(hp);
    /* Decoded body bytes never exceed the raw bytes fed, and raw reads happen only
     * when the body buffer is empty, so this always fits. */
    if (n > sizeof r->body - r->body_off - r->body_len)
        return 1;
    memcpy(r->body + r->body_off + r->body_len, at, n);
    r->body_len += n;
    return 0;
}

static int on_message_complete(http_parser *hp)
{
    sk_proxy_req *r = req_of(hp);
    if (r->interim) {
        r->interim = 0;
        r->hdr_len = 0;
        r->hdr_count = 0;
        r->last_was_value = 0;
        return 0;
    }
    r->msg_done = 1;
    http_parser_pause(hp, 1);
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void req_reset_parser(sk_proxy_req *r)
{
    http_parser_init(&r->parser, HTTP_RESPONSE);
    r->parser.data = r;
    r->hdr_len = r->hdr_count = 0;
    r->head_done = r->msg_done = r->interim = r->parse_error = 0;
    r->last_was_value = 0;
    r->body_off = r->body_len = 0;
}

sk_proxy_req *sk_proxy_req_new_detached(int is_head_request)
{
    /* Only the bookkeeping is zeroed: the three 16-64 KiB buffers at the end are
     * written before they are read, and clearing them cost more than the rest of a
     * proxied request's user-space work. */
    sk_proxy_req *r = malloc(sizeof *r);
    if (r == NULL)
        return NULL;
    memset(r, 0, offsetof(sk_proxy_req, hdr));
    r->fd = -1;
    r->is_head = is_head_request;
    req_reset_parser(r);
    return r;
}

int sk_proxy_feed(sk_proxy_req *r, const char *data, size_t n)
{
    size_t used;
    if (r->parse_error)
        return -1;
    if (r->msg_done)
        return n == 0 ? 0 : (r->extra_bytes = 1, 0);
    used = http_parser_execute(&r->parser, &parser_settings, data, n);
    if (HTTP_PARSER_ERRNO(&r->parser) == HPE_PAUSED) {
        if (used < n && r->upgraded) {
            /* The first bytes of the new protocol arrived with the head. */
            memcpy(r->body, data + used, n - used);
            r->body_off = 0;
            r->body_len = n - used;
        } else if (used < n) {
            r->extra_bytes = 1;
        }
        return 0;
    }
    if (HTTP_PARSER_ERRNO(&r->parser) != HPE_OK || (used != n && n != 0)) {
        r->parse_error = 1;
        return -1;
    }
    /* HEAD: http-parser completes the message when on_headers_complete skips the body. */
    return 0;
}

int sk_proxy_head_complete(const sk_proxy_req *r)
{
    return r->head_done;
}

/* Reads what the upstream has sent into the parser. 0 progress, SK_PROXY_AGAIN
 * nothing there yet, -1 error or a stream that ended too early. */
static int feed_from_socket(sk_proxy_req *r)
{
    ssize_t n;
    do {
        n = recv(r->fd, r->raw, sizeof r->raw, MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return (errno == EAGAIN || errno == EWOULDBLOCK) ? SK_PROXY_AGAIN : -1;
    if (n == 0) {
        r->upstream_eof = 1;
        /* Tells http-parser the stream ended: completes close-delimited bodies. */
        return sk_proxy_feed(r, NULL, 0) == 0 && (r->msg_done || r->head_done) ? 0 : -1;
    }
    r->got_bytes = 1;
    return sk_proxy_feed(r, r->raw, (size_t)n);
}

/* ---- exchange (non-blocking) ------------------------------------------- */

static int open_conn(sk_proxy_req *r)
{
    r->fd = take_idle(r->proxy);
    r->reused = r->fd >= 0;
    r->connecting = 0;
    if (r->fd >= 0)
        return 0;
    return connect_fresh(r->proxy, &r->fd, &r->connecting);
}

/* A pooled connection the upstream closed while idle fails before any answer:
 * the request is sent once more on a fresh one, but only while nothing of the body
 * has been taken (it could not be sent again). */
static int retry_fresh(sk_proxy_req *r)
{
    if (!r->reused || r->body_sent || r->got_bytes || r->retried)
        return -1;
    r->retried = 1;
    close(r->fd);
    r->fd = -1;
    req_reset_parser(r);
    r->upstream_eof = 0;
    r->head_off = 0;
    r->reused = 0;
    return connect_fresh(r->proxy, &r->fd, &r->connecting);
}

int sk_proxy_start(sk_proxy *p, const char *head, size_t head_len, enum sk_proxy_body body, int is_head_request,
                   sk_proxy_req **out)
{
    sk_proxy_req *r = sk_proxy_req_new_detached(is_head_request);
    if (r == NULL)
        return -1;
    r->proxy = p;
    r->head = head;
    r->head_len = head_len;
    r->body_mode = body;
    r->body_ended = body == SK_PROXY_BODY_NONE;
    if (open_conn(r) != 0) {
        sk_proxy_finish(r);
        return -1;
    }
    *out = r;
    return 0;
}

int sk_proxy_fd(const sk_proxy_req *r)
{
    return r->fd;
}

/* Sends what is queued: the head, then request body bytes. 1 all sent, 0 blocked,
 * -1 error. */
static int flush_out(sk_proxy_req *r)
{
    while (r->head != NULL && r->head_off < r->head_len) {
        ssize_t w = send(r->fd, r->head + r->head_off, r->head_len - r->head_off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0)
            return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
        r->head_off += (size_t)w;
    }
    while (r->out != NULL && r->out_len > 0) {
        ssize_t w = send(r->fd, r->out + r->out_off, r->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0)
            return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
        r->out_off += (size_t)w;
        r->out_len -= (size_t)w;
    }
    if (r->out != NULL)
        r->out_off = 0;
    return 1;
}

static int connect_done(sk_proxy_req *r)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(r->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0)
        return -1;
    r->connecting = 0;
    return 0;
}

int sk_proxy_io(sk_proxy_req *r, uint32_t *want)
{
    int rc;
    *want = 0;
    for (;;) {
        if (r->connecting) {
            struct pollfd pfd = { .fd = r->fd, .events = POLLOUT };
            if (poll(&pfd, 1, 0) == 0) {
                *want = POLLOUT;
                return 0;
            }
            if (connect_done(r) != 0)
                return -1; /* a fresh connection refused: nothing to retry */
        }
        rc = flush_out(r);
        if (rc < 0) {
            if (retry_fresh(r) == 0)
                continue;
            return -1;
        }
        if (rc == 0) {
            *want |= POLLOUT;
            return 0;
        }
        /* The answer is read once the whole request is out, as a blocking client
         * would: a failure is then always reported at the head, never mid-body. */
        if (!r->body_ended)
            return 0;
        while (!r->head_done) {
            rc = feed_from_socket(r);
            if (rc == SK_PROXY_AGAIN) {
                *want |= POLLIN;
                break;
            }
            if (rc != 0 || (r->upstream_eof && !r->head_done))
                break;
        }
        if (r->head_done)
            return 1;
        if ((rc != 0 && rc != SK_PROXY_AGAIN) || r->upstream_eof) {
            if (retry_fresh(r) == 0)
                continue;
            return -1;
        }
        return 0;
    }
}

static int out_room(sk_proxy_req *r)
{
    if (r->out == NULL) {
        r->out = malloc(SK_PROXY_OUT_MAX);
        if (r->out == NULL)
            return -1;
        r->out_off = r->out_len = 0;
    }
    if (r->out_off > 0 && r->out_len > 0) {
        memmove(r->out, r->out + r->out_off, r->out_len);
        r->out_off = 0;
    }
    return (int)(SK_PROXY_OUT_MAX - r->out_off - r->out_len);
}

ssize_t sk_proxy_queue_body(sk_proxy_req *r, const void *data, size_t n)
{
    int room = out_room(r);
    size_t take;
    if (room < 0)
        return -1;
    if (n == 0)
        return 0;
    if (r->body_mode == SK_PROXY_BODY_CHUNKED) {
        char line[24];
        if (room <= 32)
            return 0;
        take = n < (size_t)room - 32 ? n : (size_t)room - 32;
        if (sk_snprintf(line, sizeof line, "%zx\r\n", take) != 0)
            return -1;
        memcpy(r->out + r->out_off + r->out_len, line, strlen(line));
        r->out_len += strlen(line);
        memcpy(r->out + r->out_off + r->out_len, data, take);
        r->out_len += take;
        memcpy(r->out + r->out_off + r->out_len, "\r\n", 2);
        r->out_len += 2;
    } else {
        take = n < (size_t)room ? n : (size_t)room;
        memcpy(r->out + r->out_off + r->out_len, data, take);
        r->out_len += take;
    }
    r->body_sent = 1;
    return (ssize_t)take;
}

int sk_proxy_queue_end(sk_proxy_req *r)
{
    int room;
    if (r->body_mode != SK_PROXY_BODY_CHUNKED || r->body_ended) {
        r->body_ended = 1;
        return 1;
    }
    room = out_room(r);
    if (room < 0)
        return -1;
    if (room < 5)
        return 0;
    memcpy(r->out + r->out_off + r->out_len, "0\r\n\r\n", 5);
    r->out_len += 5;
    r->body_ended = 1;
    return 1;
}

ssize_t sk_proxy_read_body_nb(sk_proxy_req *r, char *buf, size_t max)
{
    for (;;) {
        int rc;
        if (r->body_len > 0) {
            size_t n = r->body_len < max ? r->body_len : max;
            memcpy(buf, r->body + r->body_off, n);
            r->body_off += n;
            r->body_len -= n;
            if (r->body_len == 0)
                r->body_off = 0;
            return (ssize_t)n;
        }
        if (r->msg_done)
            return 0;
        if (r->upstream_eof || r->fd < 0)
            return -1;
        rc = feed_from_socket(r);
        if (rc != 0)
            return rc;
    }
}

/* ---- exchange (blocking, for callers without an event loop) ------------- */

static int wait_fd(sk_proxy_req *r, short events)
{
    struct pollfd pfd = { .fd = r->fd, .events = events };
    int ms = (int)(r->proxy->conf->upstream_timeout * 1000);
    return poll(&pfd, 1, ms) > 0 ? 0 : -1;
}

/* Sends everything queued, waiting as needed; the answer is not looked at. */
static int drain_out(sk_proxy_req *r)
{
    for (;;) {
        int rc;
        if (r->connecting) {
            if (wait_fd(r, POLLOUT) != 0 || connect_done(r) != 0)
                return -1;
        }
        rc = flush_out(r);
        if (rc == 1)
            return 0;
        if (rc < 0) {
            if (retry_fresh(r) == 0)
                continue;
            return -1;
        }
        if (wait_fd(r, POLLOUT) != 0)
            return -1;
    }
}

int sk_proxy_begin(sk_proxy *p, const char *head, size_t head_len, enum sk_proxy_body body,
                   int is_head_request, sk_proxy_req **out)
{
    sk_proxy_req *r;
    if (sk_proxy_start(p, head, head_len, body, is_head_request, &r) != 0)
        return -1;
    if (drain_out(r) != 0) {
        sk_proxy_finish(r);
        return -1;
    }
    *out = r;
    return 0;
}

int sk_proxy_send_body(sk_proxy_req *r, const void *data, size_t n)
{
    const char *p = data;
    while (n > 0) {
        ssize_t took = sk_proxy_queue_body(r, p, n);
        if (took < 0)
            return -1;
        p += took;
        n -= (size_t)took;
        if (drain_out(r) != 0)
            return -1;
    }
    return 0;
}

int sk_proxy_end_body(sk_proxy_req *r)
{
    int rc;
    while ((rc = sk_proxy_queue_end(r)) == 0)
        if (drain_out(r) != 0)
            return -1;
    return rc < 0 ? -1 : drain_out(r);
}

int sk_proxy_read_head(sk_proxy_req *r)
{
    for (;;) {
        uint32_t want;
        int rc = sk_proxy_io(r, &want);
        if (rc < 0)
            return -1;
        if (rc == 1) {
            r->head = NULL;
            return 0;
        }
        if (wait_fd(r, (short)want) != 0)
            return -1;
    }
}

ssize_t sk_proxy_read_body(sk_proxy_req *r, char *buf, size_t max)
{
    for (;;) {
        ssize_t n = sk_proxy_read_body_nb(r, buf, max);
        if (n != SK_PROXY_AGAIN)
            return n;
        if (wait_fd(r, POLLIN) != 0)
            return -1;
    }
}

void sk_proxy_allow_upgrade(sk_proxy_req *r)
{
    r->allow_upgrade = 1;
}

int sk_proxy_upgraded(const sk_proxy_req *r)
{
    return r->upgraded;
}

int sk_proxy_detach(sk_proxy_req *r, int *fd, char *buf, size_t cap, size_t *len)
{
    if (!r->upgraded || r->fd < 0 || r->body_len > cap)
        return -1;
    memcpy(buf, r->body + r->body_off, r->body_len);
    *len = r->body_len;
    r->body_len = 0;
    *fd = r->fd;
    r->fd = -1; /* no longer HTTP: never pooled, closed by the new owner */
    return 0;
}

int sk_proxy_status(const sk_proxy_req *r)
{
    return r->status;
}

size_t sk_proxy_header_count(const sk_proxy_req *r)
{
    return r->hdr_count;
}

const char *sk_proxy_header_name(const sk_proxy_req *r, size_t i)
{
    return i < r->hdr_count ? r->hdr + r->name_off[i] : NULL;
}

const char *sk_proxy_header_value(const sk_proxy_req *r, size_t i)
{
    return i < r->hdr_count ? r->hdr + r->value_off[i] : NULL;
}

int64_t sk_proxy_content_length(const sk_proxy_req *r)
{
    if ((r->parser.flags & F_CHUNKED) || r->parser.content_length == ULLONG_MAX)
        return -1;
    /* http-parser counts content_length down while reading; the head was copied
     * before any body byte, so report from the header instead. */
    for (size_t i = 0; i < r->hdr_count; i++) {
        uint64_t v;
        if (strcasecmp(sk_proxy_header_name(r, i), "Content-Length") == 0 &&
            sk_parse_u64(sk_proxy_header_value(r, i), 0, INT64_MAX, &v) == 0)
            return (int64_t)v;
    }
    return -1;
}

int sk_proxy_has_body(const sk_proxy_req *r)
{
    if (r->is_head || r->status == 204 || r->status == 304 || (r->status >= 100 && r->status < 200))
        return 0;
    return 1;
}

void sk_proxy_finish(sk_proxy_req *r)
{
    if (r == NULL)
        return;
    if (r->fd >= 0) {
        int reusable = r->proxy != NULL && r->msg_done && !r->extra_bytes && !r->upstream_eof &&
                       r->body_len == 0 && !r->connecting && (r->out == NULL || r->out_len == 0) &&
                       (r->head == NULL || r->head_off == r->head_len) && http_should_keep_alive(&r->parser);
        if (reusable)
            put_conn(r->proxy, r->fd);
        else
            close(r->fd);
    }
    free(r->out);
    free(r);
}
