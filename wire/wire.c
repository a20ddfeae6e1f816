/* wire.c — framing, field codec, permits, client and server loops (sk_wire.h). */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "sk_wire.h"

/* ---- permits ------------------------------------------------------------- */

#define P(peer) (1u << (peer))

static const struct {
    uint16_t type;
    const char *name;
    unsigned peers; /* who may send it as a request */
} permits[] = {
    { SK_WIRE_RESET, "reset", 0 },
    { SK_WIRE_AUTH_LOOKUP, "auth.lookup", P(SK_WIRE_PEER_NET) },
    { SK_WIRE_AUTH_LOGIN, "auth.login", P(SK_WIRE_PEER_NET) },
    { SK_WIRE_AUTH_PWCHANGE, "auth.pwchange", P(SK_WIRE_PEER_NET) },
    { SK_WIRE_AUTH_SESSION_END, "auth.session_end", P(SK_WIRE_PEER_NET) },
    { SK_WIRE_AUTH_SESSION_TOUCH, "auth.session_touch", P(SK_WIRE_PEER_NET) },
    { SK_WIRE_AUTH_TOTP_BEGIN, "auth.totp_begin", P(SK_WIRE_PEER_NET) },
    { SK_WIRE_AUTH_TOTP_PENDING, "auth.totp_pending", P(SK_WIRE_PEER_NET) },
    { SK_WIRE_AUTH_TOTP_CONFIRM, "auth.totp_confirm", P(SK_WIRE_PEER_NET) },
    { SK_WIRE_AUTH_ACTIVATION_VALID, "auth.activation_valid", P(SK_WIRE_PEER_NET) },
    { SK_WIRE_AUTH_ACTIVATE, "auth.activate", P(SK_WIRE_PEER_NET) },
    { SK_WIRE_AUTH_CENSUS, "auth.census", P(SK_WIRE_PEER_NET) },
    { SK_WIRE_AUTH_KEYS, "auth.keys", P(SK_WIRE_PEER_NET) },
    /* Anybody may append to the log; nobody may read, rewrite or delete through it. */
    { SK_WIRE_AUDIT_APPEND, "audit.append",
      P(SK_WIRE_PEER_NET) | P(SK_WIRE_PEER_AUTHD) | P(SK_WIRE_PEER_CTL) },
    { SK_WIRE_AUDIT_REQUEST, "audit.request", P(SK_WIRE_PEER_NET) },
    { SK_WIRE_AUDIT_REFUSED, "audit.refused", P(SK_WIRE_PEER_NET) },
    { SK_WIRE_AUDIT_FLUSH, "audit.flush", P(SK_WIRE_PEER_NET) | P(SK_WIRE_PEER_AUTHD) | P(SK_WIRE_PEER_CTL) },
    { SK_WIRE_AUDIT_LAG, "audit.lag", P(SK_WIRE_PEER_NET) },
    { SK_WIRE_AUDIT_REQUEST_BATCH, "audit.request_batch", P(SK_WIRE_PEER_NET) },
    { SK_WIRE_MON_NOTIFY, "monitor.notify",
      P(SK_WIRE_PEER_NET) | P(SK_WIRE_PEER_AUTHD) | P(SK_WIRE_PEER_AUDITD) },
    { SK_WIRE_MON_WITNESS, "monitor.witness", P(SK_WIRE_PEER_AUDITD) },
    { SK_WIRE_MON_READY, "monitor.ready", P(SK_WIRE_PEER_NET) | P(SK_WIRE_PEER_AUTHD) | P(SK_WIRE_PEER_AUDITD) },
};

int sk_wire_permitted(enum sk_wire_peer peer, uint16_t type)
{
    if ((unsigned)peer >= SK_WIRE_PEER_COUNT_)
        return 0;
    for (size_t i = 0; i < SK_ARRAY_LEN(permits); i++)
        if (permits[i].type == type)
            return (permits[i].peers & P(peer)) != 0;
    return 0;
}

const char *sk_wire_type_name(uint16_t type)
{
    for (size_t i = 0; i < SK_ARRAY_LEN(permits); i++)
        if (permits[i].type == (type & ~SK_WIRE_REPLY))
            return permits[i].name;
    return "unknown";
}

const char *sk_wire_peer_name(enum sk_wire_peer peer)
{
    static const char *const names[SK_WIRE_PEER_COUNT_] = { "net", "authd", "auditd", "ctl" };
    return (unsigned)peer < SK_WIRE_PEER_COUNT_ ? names[peer] : "unknown";
}

/* ---- field codec --------------------------------------------------------- */

void sk_wire_w_init(sk_wire_w *w, void *buf, size_t cap)
{
    w->p = buf;
    w->cap = cap;
    w->len = 0;
    w->err = 0;
}

static void put(sk_wire_w *w, const void *p, size_t n)
{
    if (w->err || n > w->cap - w->len) {
        w->err = 1;
        return;
    }
    if (n > 0)
        memcpy(w->p + w->len, p, n);
    w->len += n;
}

static void put_le(sk_wire_w *w, uint64_t v, size_t n)
{
    uint8_t b[8];
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    put(w, b, n);
}

void sk_wire_put_u8(sk_wire_w *w, uint8_t v) { put_le(w, v, 1); }
void sk_wire_put_u32(sk_wire_w *w, uint32_t v) { put_le(w, v, 4); }
void sk_wire_put_u64(sk_wire_w *w, uint64_t v) { put_le(w, v, 8); }
void sk_wire_put_i32(sk_wire_w *w, int32_t v) { put_le(w, (uint32_t)v, 4); }
void sk_wire_put_i64(sk_wire_w *w, int64_t v) { put_le(w, (uint64_t)v, 8); }

void sk_wire_put_bytes(sk_wire_w *w, const void *p, size_t n, size_t max)
{
    if (n > max || n > 0xffff) {
        w->err = 1;
        return;
    }
    put_le(w, n, 2);
    put(w, p, n);
}

void sk_wire_put_str(sk_wire_w *w, const char *s, size_t cap)
{
    size_t n = s != NULL ? strnlen(s, cap) : 0;
    if (n >= cap && cap > 0) {
        w->err = 1;
        return;
    }
    sk_wire_put_bytes(w, s, n, cap > 0 ? cap - 1 : 0);
}

int sk_wire_w_ok(const sk_wire_w *w)
{
    return w->err ? -1 : 0;
}

void sk_wire_r_init(sk_wire_r *r, const void *p, size_t len)
{
    r->p = p;
    r->len = len;
    r->off = 0;
    r->err = 0;
}

static const uint8_t *take(sk_wire_r *r, size_t n)
{
    const uint8_t *q;
    if (r->err || n > r->len - r->off) {
        r->err = 1;
        return NULL;
    }
    q = r->p + r->off;
    r->off += n;
    return q;
}

static uint64_t get_le(sk_wire_r *r, size_t n)
{
    const uint8_t *b = take(r, n);
    uint64_t v = 0;
    if (b == NULL)
        return 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)b[i] << (8 * i);
    return v;
}

uint8_t sk_wire_get_u8(sk_wire_r *r) { return (uint8_t)get_le(r, 1); }
uint32_t sk_wire_get_u32(sk_wire_r *r) { return (uint32_t)get_le(r, 4); }
uint64_t sk_wire_get_u64(sk_wire_r *r) { return get_le(r, 8); }
int32_t sk_wire_get_i32(sk_wire_r *r) { return (int32_t)(uint32_t)get_le(r, 4); }
int64_t sk_wire_get_i64(sk_wire_r *r) { return (int64_t)get_le(r, 8); }

void sk_wire_get_bytes(sk_wire_r *r, void *out, size_t max, size_t *n)
{
    size_t len = (size_t)get_le(r, 2);
    const uint8_t *b;
    *n = 0;
    if (len > max) {
        r->err = 1;
        return;
    }
    b = take(r, len);
    if (b == NULL)
        return;
    if (len > 0)
        memcpy(out, b, len);
    *n = len;
}

void sk_wire_get_fixed(sk_wire_r *r, void *out, size_t n)
{
    size_t got = 0;
    sk_wire_get_bytes(r, out, n, &got);
    if (got != n)
        r->err = 1;
}

void sk_wire_get_str(sk_wire_r *r, char *out, size_t cap)
{
    size_t n = 0;
    if (cap == 0) {
        r->err = 1;
        return;
    }
    out[0] = '\0';
    sk_wire_get_bytes(r, out, cap - 1, &n);
    if (r->err) {
        out[0] = '\0';
        return;
    }
    if (memchr(out, '\0', n) != NULL) {
        r->err = 1;
        out[0] = '\0';
        return;
    }
    out[n] = '\0';
}

int sk_wire_r_end(const sk_wire_r *r)
{
    return r->err || r->off != r->len ? -1 : 0;
}

/* ---- datagrams ----------------------------------------------------------- */

int sk_wire_send(int fd, uint16_t type, uint32_t id, const void *payload, size_t len)
{
    return sk_wire_send_flags(fd, type, id, payload, len, 0);
}

int sk_wire_send_flags(int fd, uint16_t type, uint32_t id, const void *payload, size_t len, int flags)
{
    uint8_t h[SK_WIRE_HDR_LEN] = { SK_WIRE_VERSION, 0, (uint8_t)type, (uint8_t)(type >> 8),
                                   (uint8_t)id, (uint8_t)(id >> 8), (uint8_t)(id >> 16), (uint8_t)(id >> 24) };
    struct iovec iov[2] = { { h, sizeof h }, { (void *)(uintptr_t)payload, len } };
    struct msghdr m = { .msg_iov = iov, .msg_iovlen = len > 0 ? 2 : 1 };
    ssize_t n;

    if (len > SK_WIRE_MAX - SK_WIRE_HDR_LEN) {
        errno = EMSGSIZE;
        return -1;
    }
    do
        n = sendmsg(fd, &m, MSG_NOSIGNAL | flags);
    while (n < 0 && errno == EINTR);
    return n == (ssize_t)(sizeof h + len) ? 0 : -1;
}

int sk_wire_recv(int fd, void *buf, size_t cap, sk_wire_msg *out, int timeout_ms)
{
    struct pollfd pfd = { fd, POLLIN, 0 };
    const uint8_t *b = buf;
    ssize_t n;
    int pr;

    memset(out, 0, sizeof *out);
    do
        pr = poll(&pfd, 1, timeout_ms);
    while (pr < 0 && errno == EINTR);
    if (pr < 0)
        return -1;
    if (pr == 0)
        return 1;
    do
        n = recv(fd, buf, cap, MSG_TRUNC);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -1;
    if (n == 0) {
        errno = EPIPE;
        return -1;
    }
    if ((size_t)n > cap || n < SK_WIRE_HDR_LEN || b[0] != SK_WIRE_VERSION || b[1] != 0) {
        errno = EBADMSG;
        return -1;
    }
    out->type = (uint16_t)(b[2] | b[3] << 8);
    out->id = (uint32_t)b[4] | (uint32_t)b[5] << 8 | (uint32_t)b[6] << 16 | (uint32_t)b[7] << 24;
    out->payload = b + SK_WIRE_HDR_LEN;
    out->len = (size_t)n - SK_WIRE_HDR_LEN;
    return 0;
}

/* ---- client -------------------------------------------------------------- */

struct sk_wire_client {
    pthread_mutex_t lock;
    pthread_cond_t freed;
    unsigned n, n_free;
    int *fds;
    int *free_fds;
    uint32_t next_id;
    char name[32];
};

int sk_wire_client_new(const int *fds, unsigned n, const char *server_name, sk_wire_client **out)
{
    sk_wire_client *c;
    *out = NULL;
    if (n == 0 || n > 4096)
        return -1;
    c = calloc(1, sizeof *c);
    if (c == NULL)
        return -1;
    c->fds = calloc(n, sizeof *c->fds);
    c->free_fds = calloc(n, sizeof *c->free_fds);
    if (c->fds == NULL || c->free_fds == NULL || sk_strlcpy(c->name, sizeof c->name, server_name) != 0 ||
        sk_random(&c->next_id, sizeof c->next_id) != 0) {
        free(c->fds);
        free(c->free_fds);
        free(c);
        return -1;
    }
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->freed, NULL);
    memcpy(c->fds, fds, n * sizeof *fds);
    memcpy(c->free_fds, fds, n * sizeof *fds);
    c->n = c->n_free = n;
    *out = c;
    return 0;
}

void sk_wire_client_free(sk_wire_client *c)
{
    if (c == NULL)
        return;
    for (unsigned i = 0; i < c->n; i++)
        close(c->fds[i]);
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->freed);
    free(c->fds);
    free(c->free_fds);
    free(c);
}

static int borrow(sk_wire_client *c, uint32_t *id)
{
    int fd;
    pthread_mutex_lock(&c->lock);
    while (c->n_free == 0)
        pthread_cond_wait(&c->freed, &c->lock);
    fd = c->free_fds[--c->n_free];
    if (++c->next_id == 0)
        c->next_id = 1;
    *id = c->next_id;
    pthread_mutex_unlock(&c->lock);
    return fd;
}

static void give_back(sk_wire_client *c, int fd)
{
    pthread_mutex_lock(&c->lock);
    c->free_fds[c->n_free++] = fd;
    pthread_cond_signal(&c->freed);
    pthread_mutex_unlock(&c->lock);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for the reply with `id`; stale replies (of callers that gave up) and
 * duplicate resets are skipped. */
static int await_reply(sk_wire_client *c, int fd, uint16_t type, uint32_t id, void *reply, size_t cap,
                       sk_wire_msg *out, int timeout_ms)
{
    int64_t deadline = timeout_ms < 0 ? -1 : mono_ms() + timeout_ms;
    for (;;) {
        int left = deadline < 0 ? -1 : (int)(deadline - mono_ms());
        int r;
        if (deadline >= 0 && left < 0)
            left = 0;
        r = sk_wire_recv(fd, reply, cap, out, left);
        if (r == 1) {
            errno = ETIMEDOUT;
            return -1;
        }
        if (r != 0)
            return -1;
        if (out->type == SK_WIRE_RESET) {
            sk_log(SK_LOG_WARN, "%s restarted while a %s request was with it", c->name, sk_wire_type_name(type));
            errno = ECONNRESET;
            return -1;
        }
        if (out->id == id && out->type == (type | SK_WIRE_REPLY))
            return 0;
    }
}

int sk_wire_call(sk_wire_client *c, uint16_t type, const void *req, size_t req_len, void *reply, size_t cap,
                 sk_wire_msg *out, int timeout_ms)
{
    uint32_t id;
    int fd = borrow(c, &id), rc = -1;
    int saved;

    /* A reset that reached an idle channel belongs to no call: drop it. */
    for (;;) {
        sk_wire_msg m;
        if (sk_wire_recv(fd, reply, cap, &m, 0) != 0)
            break;
    }
    if (sk_wire_send(fd, type, id, req, req_len) == 0)
        rc = await_reply(c, fd, type, id, reply, cap, out, timeout_ms);
    saved = errno;
    give_back(c, fd);
    errno = saved;
    return rc;
}

int sk_wire_post(sk_wire_client *c, uint16_t type, const void *req, size_t req_len)
{
    uint32_t id;
    int fd = borrow(c, &id), rc;
    rc = sk_wire_send(fd, type, id, req, req_len);
    give_back(c, fd);
    return rc;
}

/* ---- server -------------------------------------------------------------- */

static int answer_status(int fd, const sk_wire_msg *m, int32_t status)
{
    uint8_t b[4];
    sk_wire_w w;
    sk_wire_w_init(&w, b, sizeof b);
    sk_wire_put_i32(&w, status);
    return sk_wire_send(fd, m->type | SK_WIRE_REPLY, m->id, b, w.len);
}

static int serve_one(int fd, enum sk_wire_peer peer, sk_wire_handler handler, void *ctx, const sk_wire_msg *m,
                     uint8_t *out, size_t cap, size_t *used)
{
    sk_wire_w w;
    int r;
    *used = 0;
    if ((m->type & SK_WIRE_REPLY) != 0 || !sk_wire_permitted(peer, m->type)) {
        sk_log(SK_LOG_WARN, "wire: %s peer sent a request it may not send (type 0x%04x %s): refused",
               sk_wire_peer_name(peer), m->type, sk_wire_type_name(m->type));
        return answer_status(fd, m, SK_WIRE_ERR_DENIED);
    }
    sk_wire_w_init(&w, out, cap);
    r = handler(ctx, peer, m, &w);
    *used = w.len;
    if (r == 1)
        return 0;
    if (r != 0 || sk_wire_w_ok(&w) != 0)
        return answer_status(fd, m, r == SK_WIRE_ERR_BADMSG ? SK_WIRE_ERR_BADMSG : SK_WIRE_ERR_INTERNAL);
    return sk_wire_send(fd, m->type | SK_WIRE_REPLY, m->id, out, w.len);
}

int sk_wire_serve(int fd, enum sk_wire_peer peer, sk_wire_handler handler, void *ctx, const volatile int *stop)
{
    uint8_t *in = malloc(SK_WIRE_MAX), *out = malloc(SK_WIRE_MAX);
    int rc = -1;

    if (in == NULL || out == NULL)
        goto done;
    {
        /* A peer that stops reading its replies must not hold this thread (and the
         * server's stop) forever: a reply that cannot leave in 5 s is dropped. */
        struct timeval tv = { 5, 0 };
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    while (stop == NULL || !*stop) {
        sk_wire_msg m;
        int r = sk_wire_recv(fd, in, SK_WIRE_MAX, &m, stop != NULL ? 200 : -1);
        if (r == 1)
            continue;
        if (r != 0) {
            if (errno == EPIPE) {
                rc = 0;
                break;
            }
            if (errno == EBADMSG) {
                sk_wipe(in, SK_WIRE_MAX); /* it may have held a password */
                sk_log(SK_LOG_WARN, "wire: malformed datagram from the %s peer: dropped", sk_wire_peer_name(peer));
                continue;
            }
            break;
        }
        size_t used;
        r = serve_one(fd, peer, handler, ctx, &m, out, SK_WIRE_MAX, &used);
        /* Only what was used: requests carry passwords, replies TOTP text. */
        sk_wipe(in, m.len + SK_WIRE_HDR_LEN);
        sk_wipe(out, used);
        if (r != 0 && errno != EAGAIN)
            sk_log(SK_LOG_WARN, "wire: cannot answer the %s peer", sk_wire_peer_name(peer));
    }
    if (stop != NULL && *stop)
        rc = 0;
done:
    free(in);
    free(out);
    return rc;
}
