/* auditd_server.c — auditd's request handler and its runner: one thread per
 * channel, the ctl socket's accept loop and the housekeeping (sk_auditd.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sk_auditd.h"
#include "sk_wire_audit.h"

#define TICK_MS 200
#define FLUSH_EVERY_MS 1000
#define PRUNE_EVERY_MS (24LL * 3600 * 1000)

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- handler ------------------------------------------------------------- */

static const char *opt(uint8_t has, const char *s)
{
    return has ? s : NULL;
}

static int handle_append(sk_audit *a, enum sk_wire_peer peer, const sk_wire_msg *m, sk_wire_w *w)
{
    sk_wire_audit_append *q = calloc(1, sizeof *q);
    sk_audit_kv kv[SK_WIRE_AUDIT_MAX_KV + 1];
    sk_audit_event e;
    sk_wire_audit_seq_rep rep = { -1, 0 };
    int rc = SK_WIRE_ERR_BADMSG;

    if (q == NULL)
        return -1;
    if (sk_wire_audit_decode(SK_WIRE_AUDIT_APPEND, 0, m->payload, m->len, q) != 0) {
        sk_log(SK_LOG_WARN, "auditd: undecodable append from the %s peer", sk_wire_peer_name(peer));
        goto out;
    }
    if (strncmp(q->event, "audit.", 6) == 0) {
        /* The writer's own records (checkpoints, segments, epochs, prune): a peer
         * forging one could make the log look damaged to the verifier. */
        sk_log(SK_LOG_WARN, "auditd: the %s peer may not append a %s entry: refused",
               sk_wire_peer_name(peer), q->event);
    } else {
        for (uint32_t i = 0; i < q->n_kv; i++) {
            kv[i].key = q->kv[i].key;
            kv[i].value = opt(q->kv[i].has_value, q->kv[i].value);
        }
        /* Who handed the entry in (the channel's class, fixed by the monitor, not
         * claimed): last, so a "via" the peer sent itself is overridden. */
        kv[q->n_kv].key = "via";
        kv[q->n_kv].value = sk_wire_peer_name(peer);
        memset(&e, 0, sizeof e);
        e.event = q->event;
        e.actor = opt(q->has_actor, q->actor);
        e.tenant = opt(q->has_tenant, q->tenant);
        e.peer = opt(q->has_peer, q->peer);
        e.serial = opt(q->has_serial, q->serial);
        e.kv = kv;
        e.n_kv = q->n_kv + 1;
        e.details_json = opt(q->has_details, q->details_json);
        if (sk_audit_append(a, &e, q->durable, &rep.seq) == 0)
            rep.status = 0;
        else
            rep.seq = 0;
    }
    rc = sk_wire_audit_encode(SK_WIRE_AUDIT_APPEND, 1, &rep, w) == 0 ? 0 : -1;
out:
    free(q);
    return rc;
}

/* A channel thread's decoding buffers, reused for every datagram (NULL: the
 * call allocates its own). */
struct scratch {
    sk_wire_audit_request q;
    sk_wire_audit_request_batch b;
};

static int queue_line(sk_audit *a, const sk_wire_audit_request *q)
{
    return sk_audit_request(a, opt(q->has_user, q->user), opt(q->has_tenant, q->tenant), opt(q->has_peer, q->peer),
                            opt(q->has_serial, q->serial), q->method, q->path, q->status, q->bytes, q->duration_us);
}

static int handle_request(sk_audit *a, enum sk_wire_peer peer, const sk_wire_msg *m, struct scratch *s)
{
    struct scratch *own = NULL;
    if (s == NULL && (s = own = malloc(sizeof *s)) == NULL)
        return 1;
    if (sk_wire_audit_decode(SK_WIRE_AUDIT_REQUEST, 0, m->payload, m->len, &s->q) != 0)
        sk_log(SK_LOG_WARN, "auditd: undecodable request line from the %s peer: dropped",
               sk_wire_peer_name(peer));
    else if (queue_line(a, &s->q) != 0)
        sk_log(SK_LOG_ERR, "auditd: a request line could not be queued");
    free(own);
    return 1; /* posted: never a reply */
}

/* Decoded whole before any line is queued: a malformed batch loses only itself. */
static int handle_batch(sk_audit *a, enum sk_wire_peer peer, const sk_wire_msg *m, struct scratch *s)
{
    struct scratch *own = NULL;
    unsigned failed = 0;
    size_t off = 0;
    int r;
    if (s == NULL && (s = own = malloc(sizeof *s)) == NULL)
        return 1;
    if (sk_wire_audit_decode(SK_WIRE_AUDIT_REQUEST_BATCH, 0, m->payload, m->len, &s->b) != 0) {
        sk_log(SK_LOG_WARN, "auditd: undecodable request batch from the %s peer: dropped", sk_wire_peer_name(peer));
        goto out;
    }
    while ((r = sk_wire_audit_batch_next(&s->b, &off, &s->q)) == 0)
        if (queue_line(a, &s->q) != 0)
            failed++;
    if (r < 0)
        sk_log(SK_LOG_ERR, "auditd: a decoded request batch did not split into lines");
    if (failed > 0)
        sk_log(SK_LOG_ERR, "auditd: %u request line(s) could not be queued", failed);
out:
    free(own);
    return 1;
}

static int handle_refused(sk_audit *a, enum sk_wire_peer peer, const sk_wire_msg *m)
{
    sk_wire_audit_refused q;
    if (sk_wire_audit_decode(SK_WIRE_AUDIT_REFUSED, 0, m->payload, m->len, &q) != 0)
        sk_log(SK_LOG_WARN, "auditd: undecodable refusal from the %s peer: dropped", sk_wire_peer_name(peer));
    else if (sk_audit_refused(a, q.peer, q.reason, q.serial[0] ? q.serial : NULL) != 0)
        sk_log(SK_LOG_ERR, "auditd: a handshake refusal could not be counted");
    return 1;
}

static int handle(sk_audit *a, struct scratch *s, enum sk_wire_peer peer, const sk_wire_msg *m, sk_wire_w *w)
{
    switch (m->type) {
    case SK_WIRE_AUDIT_APPEND:
        return handle_append(a, peer, m, w);
    case SK_WIRE_AUDIT_REQUEST:
        return handle_request(a, peer, m, s);
    case SK_WIRE_AUDIT_REQUEST_BATCH:
        return handle_batch(a, peer, m, s);
    case SK_WIRE_AUDIT_REFUSED:
        return handle_refused(a, peer, m);
    case SK_WIRE_AUDIT_FLUSH: {
        sk_wire_audit_status_rep rep = { 0 };
        if (m->len != 0)
            return SK_WIRE_ERR_BADMSG;
        rep.status = sk_audit_flush(a) == 0 ? 0 : -1;
        return sk_wire_audit_encode(SK_WIRE_AUDIT_FLUSH, 1, &rep, w) == 0 ? 0 : -1;
    }
    case SK_WIRE_AUDIT_LAG: {
        sk_wire_audit_lag_rep rep = { 0, 0, 0 };
        if (m->len != 0)
            return SK_WIRE_ERR_BADMSG;
        sk_audit_lag(a, &rep.queued, &rep.oldest_ms);
        return sk_wire_audit_encode(SK_WIRE_AUDIT_LAG, 1, &rep, w) == 0 ? 0 : -1;
    }
    default:
        return -1; /* permitted but not ours: a permit table out of step */
    }
}

int sk_auditd_handler(void *ctx, enum sk_wire_peer peer, const sk_wire_msg *m, sk_wire_w *w)
{
    return handle(ctx, NULL, peer, m, w);
}

/* ---- channels -------------------------------------------------------------- */

struct chan {
    pthread_t t;
    int fd;
    enum sk_wire_peer peer;
    sk_audit *a;
    const volatile int *stop;
    struct scratch *s;        /* the thread's, NULL if it could not have one */
};

static int chan_handler(void *ctx, enum sk_wire_peer peer, const sk_wire_msg *m, sk_wire_w *w)
{
    struct chan *c = ctx;
    return handle(c->a, c->s, peer, m, w);
}

/* At stop, serve what the peer had already sent (request lines, refusals, an
 * append whose caller still waits) instead of dropping it with the socket's
 * queue; bounded, since a peer may go on sending. Same permit check and replies
 * as sk_wire_serve. */
#define DRAIN_MAX 4096

static void drain(struct chan *c)
{
    int fd = c->fd;
    enum sk_wire_peer peer = c->peer;
    uint8_t *in = malloc(SK_WIRE_MAX), *out = malloc(SK_WIRE_MAX);
    for (unsigned i = 0; in != NULL && out != NULL && i < DRAIN_MAX; i++) {
        sk_wire_msg m;
        sk_wire_w w;
        int r;
        if (sk_wire_recv(fd, in, SK_WIRE_MAX, &m, 0) != 0) {
            if (errno == EBADMSG)
                continue;
            break; /* empty (timeout), EOF or error */
        }
        if ((m.type & SK_WIRE_REPLY) != 0 || !sk_wire_permitted(peer, m.type))
            continue; /* sk_wire_serve refused such requests while running */
        sk_wire_w_init(&w, out, SK_WIRE_MAX);
        r = chan_handler(c, peer, &m, &w);
        if (r == 0 && sk_wire_w_ok(&w) == 0 && sk_wire_send(fd, m.type | SK_WIRE_REPLY, m.id, out, w.len) != 0)
            sk_log(SK_LOG_WARN, "auditd: cannot answer the %s peer at stop", sk_wire_peer_name(peer));
    }
    free(in);
    free(out);
}

static void *chan_main(void *p)
{
    struct chan *c = p;
    c->s = malloc(sizeof *c->s); /* ~45 KiB, once per channel */
    if (sk_wire_serve(c->fd, c->peer, chan_handler, c, c->stop) != 0)
        sk_log(SK_LOG_ERR, "auditd: the channel of the %s peer failed: %s", sk_wire_peer_name(c->peer),
               strerror(errno));
    else if (*c->stop)
        drain(c);
    free(c->s);
    c->s = NULL;
    return NULL;
}

/* ---- ctl connections ------------------------------------------------------- */

struct ctl_slot {
    pthread_t t;
    int fd;
    int used;
    volatile int stop;        /* set by the accept loop: global stop or idle */
    int done;                 /* set by the thread at its end (atomic) */
    int64_t last_ms;          /* last request (atomic) */
    sk_audit *a;
};

static int ctl_handler(void *ctx, enum sk_wire_peer peer, const sk_wire_msg *m, sk_wire_w *w)
{
    struct ctl_slot *s = ctx;
    __atomic_store_n(&s->last_ms, mono_ms(), __ATOMIC_RELAXED);
    return sk_auditd_handler(s->a, peer, m, w);
}

static void *ctl_main(void *p)
{
    struct ctl_slot *s = p;
    if (sk_wire_serve(s->fd, SK_WIRE_PEER_CTL, ctl_handler, s, &s->stop) != 0)
        sk_log(SK_LOG_WARN, "auditd: a ctl connection failed: %s", strerror(errno));
    __atomic_store_n(&s->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* uid 0 (sudo sekishoctl, the CRL timer) or auditd's own uid. */
static int ctl_peer_allowed(int fd)
{
    struct ucred cr;
    socklen_t len = sizeof cr;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0 || len != sizeof cr) {
        sk_log(SK_LOG_WARN, "auditd: ctl connection without peer credentials: refused");
        return 0;
    }
    if (cr.uid != 0 && cr.uid != geteuid()) {
        sk_log(SK_LOG_WARN, "auditd: ctl connection from uid %lu (pid %ld) refused: only root and uid %lu may submit",
               (unsigned long)cr.uid, (long)cr.pid, (unsigned long)geteuid());
        return 0;
    }
    return 1;
}

static void ctl_accept(int lfd, struct ctl_slot *slots, sk_audit *a)
{
    struct ctl_slot *s = NULL;
    int fd;
    for (unsigned i = 0; i < SK_AUDITD_CTL_MAX && s == NULL; i++)
        if (!slots[i].used)
            s = &slots[i];
    if (s == NULL)
        return;
    /* The listening socket is nonblocking (sk_auditd_run), so a peer that went
     * away between poll and accept never stalls the loop; the accepted socket
     * does not inherit that and blocks (sk_wire_serve polls before reading). */
    fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
            sk_log(SK_LOG_WARN, "auditd: accept on the ctl socket: %s", strerror(errno));
        return;
    }
    if (!ctl_peer_allowed(fd)) {
        close(fd);
        return;
    }
    memset(s, 0, sizeof *s);
    s->fd = fd;
    s->a = a;
    s->last_ms = mono_ms();
    if (pthread_create(&s->t, NULL, ctl_main, s) != 0) {
        sk_log(SK_LOG_ERR, "auditd: cannot start a ctl connection thread");
        close(fd);
        return;
    }
    s->used = 1;
}

/* Join finished connections; ask idle ones (and all, at stop) to end. */
static void ctl_reap(struct ctl_slot *slots, int stopping)
{
    int64_t now = mono_ms();
    for (unsigned i = 0; i < SK_AUDITD_CTL_MAX; i++) {
        struct ctl_slot *s = &slots[i];
        if (!s->used)
            continue;
        if (__atomic_load_n(&s->done, __ATOMIC_ACQUIRE)) {
            pthread_join(s->t, NULL);
            close(s->fd);
            s->used = 0;
            continue;
        }
        if (stopping || now - __atomic_load_n(&s->last_ms, __ATOMIC_RELAXED) > SK_AUDITD_CTL_IDLE_MS)
            s->stop = 1;
    }
}

/* ---- runner ---------------------------------------------------------------- */

static void housekeeping(sk_audit *a, int64_t now, int64_t *next_flush, int64_t *next_prune)
{
    if (now >= *next_flush) {
        *next_flush = now + FLUSH_EVERY_MS;
        if (sk_audit_flush(a) != 0)
            sk_log(SK_LOG_ERR, "auditd: audit flush failed");
    }
    if (now >= *next_prune) {
        unsigned removed = 0;
        *next_prune = now + PRUNE_EVERY_MS;
        if (sk_audit_prune(a, &removed) != 0)
            sk_log(SK_LOG_ERR, "auditd: audit retention pruning failed");
    }
}

/* The loop of the calling thread: ctl connections and housekeeping until stop. */
static void main_loop(sk_audit *a, int lfd, struct ctl_slot *slots, const volatile int *stop)
{
    int64_t next_flush = mono_ms() + FLUSH_EVERY_MS;
    int64_t next_prune = mono_ms() + PRUNE_EVERY_MS; /* sk_audit_open pruned already */
    while (!*stop) {
        struct pollfd pfd = { lfd, POLLIN, 0 };
        int busy = 1;
        for (unsigned i = 0; i < SK_AUDITD_CTL_MAX; i++)
            busy &= slots[i].used;
        /* With every slot taken, newcomers wait in the backlog. */
        if (poll(&pfd, lfd >= 0 && !busy ? 1 : 0, TICK_MS) > 0 && (pfd.revents & POLLIN))
            ctl_accept(lfd, slots, a);
        ctl_reap(slots, 0);
        housekeeping(a, mono_ms(), &next_flush, &next_prune);
    }
}

int sk_auditd_run(sk_audit *a, const int *fds, const enum sk_wire_peer *peers, unsigned n, int ctl_listen_fd,
                  const volatile int *stop)
{
    struct chan *ch = NULL;
    struct ctl_slot *slots = NULL;
    volatile int stop_all = 0; /* the threads' flag: *stop, or a failed start */
    unsigned started = 0;
    int rc = -1;

    if (a == NULL || stop == NULL || (n > 0 && (fds == NULL || peers == NULL)) || n > 4096)
        return -1;
    ch = calloc(n > 0 ? n : 1, sizeof *ch);
    slots = calloc(SK_AUDITD_CTL_MAX, sizeof *slots);
    if (ch == NULL || slots == NULL)
        goto out;
    if (ctl_listen_fd >= 0) {
        int fl = fcntl(ctl_listen_fd, F_GETFL);
        if (fl < 0 || fcntl(ctl_listen_fd, F_SETFL, fl | O_NONBLOCK) != 0) {
            sk_log(SK_LOG_ERR, "auditd: the ctl socket: %s", strerror(errno));
            goto out;
        }
    }
    for (; started < n; started++) {
        ch[started] = (struct chan){ .fd = fds[started], .peer = peers[started], .a = a, .stop = &stop_all };
        if ((unsigned)peers[started] >= SK_WIRE_PEER_COUNT_ ||
            pthread_create(&ch[started].t, NULL, chan_main, &ch[started]) != 0) {
            sk_log(SK_LOG_ERR, "auditd: cannot serve channel %u", started);
            break;
        }
    }
    if (started == n) {
        sk_log(SK_LOG_INFO, "auditd: serving %u channel(s)%s", n, ctl_listen_fd >= 0 ? " and the ctl socket" : "");
        main_loop(a, ctl_listen_fd, slots, stop);
        rc = 0;
    }
    stop_all = 1;
    for (unsigned i = 0; i < started; i++)
        pthread_join(ch[i].t, NULL);
    ctl_reap(slots, 1);
    for (unsigned i = 0; i < SK_AUDITD_CTL_MAX; i++)
        if (slots[i].used) {
            pthread_join(slots[i].t, NULL);
            close(slots[i].fd);
            slots[i].used = 0;
        }
out:
    free(ch);
    free(slots);
    return rc;
}
