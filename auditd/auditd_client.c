/* auditd_client.c — the remote sk_audit of the processes without the audit key,
 * and the ctl socket helpers (sk_auditd.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "sk_auditd.h"
#include "sk_wire_audit.h"

struct remote {
    sk_wire_client *c;
    /* Request lines waiting to leave (below); all under lock. */
    pthread_mutex_t lock;
    pthread_cond_t wake;             /* the flusher: a first line, or stop */
    pthread_t flusher;
    int flusher_state;               /* 0 not tried, 1 running, -1 none */
    int stop;
    int64_t first_ms;                /* when the oldest buffered line came */
    sk_wire_audit_request q;         /* reused: no allocation per request */
    sk_wire_audit_request_batch *b;
    uint8_t enc[SK_WIRE_AUDIT_BATCH_BYTES + 16]; /* a batch or one line, encoded */
};

/* An optional string into (has, out): NULL -> absent. */
static void put_opt(uint8_t *has, char *out, size_t cap, const char *s)
{
    *has = s != NULL;
    (void)sk_wire_audit_cut(out, cap, s); /* cut like the writer would (sk_wire_audit.h) */
}

/* Attempts after a reset (auditd restarts within 100 ms, 5 s at most). */
#define AUDITC_RETRIES 25

/* One round trip; *status gets the reply's status (or the server's error code).
 * rep (type's reply struct) is filled when the reply decodes. */
static int call(struct remote *r, uint16_t type, const void *req, size_t len, void *rep, int timeout_ms,
                int32_t *status)
{
    uint8_t *buf = malloc(SK_WIRE_MAX);
    sk_wire_msg m;
    int rc = -1;

    *status = SK_WIRE_ERR_INTERNAL;
    if (buf == NULL)
        return -1;
    /* auditd restarted while it had the request (the monitor's reset): ask the new
     * one. An entry the old one wrote before dying is then written twice, which a
     * reader can see; one lost would not be. */
    for (int attempt = 0;; attempt++) {
        struct timespec pause = { 0, 200 * 1000 * 1000 };
        if (sk_wire_call(r->c, type, req, len, buf, SK_WIRE_MAX, &m, timeout_ms) == 0)
            break;
        if (errno != ECONNRESET || attempt == AUDITC_RETRIES) {
            sk_log(SK_LOG_ERR, "audit: auditd did not answer a %s request: %s", sk_wire_type_name(type),
                   strerror(errno));
            goto out;
        }
        (void)nanosleep(&pause, NULL);
    }
    if (sk_wire_audit_decode(type, 1, m.payload, m.len, rep) == 0) {
        memcpy(status, rep, sizeof *status); /* status is first in every reply struct */
        rc = 0;
    } else if (m.len == 4) {
        /* A refusal (SK_WIRE_ERR_DENIED / _BADMSG / _INTERNAL) has the status only. */
        sk_wire_r rd;
        sk_wire_r_init(&rd, m.payload, m.len);
        *status = sk_wire_get_i32(&rd);
        sk_log(SK_LOG_ERR, "audit: auditd refused a %s request (%d)", sk_wire_type_name(type), (int)*status);
    } else {
        sk_log(SK_LOG_ERR, "audit: auditd's %s reply is malformed", sk_wire_type_name(type));
    }
out:
    free(buf);
    return rc;
}

static int fill_append(sk_wire_audit_append *q, const sk_audit_event *ev, int durable)
{
    if (ev == NULL || ev->event == NULL || sk_strlcpy(q->event, sizeof q->event, ev->event) != 0 ||
        ev->n_kv > SK_WIRE_AUDIT_MAX_KV || (ev->n_kv > 0 && ev->kv == NULL))
        return -1;
    put_opt(&q->has_actor, q->actor, sizeof q->actor, ev->actor);
    put_opt(&q->has_tenant, q->tenant, sizeof q->tenant, ev->tenant);
    put_opt(&q->has_peer, q->peer, sizeof q->peer, ev->peer);
    put_opt(&q->has_serial, q->serial, sizeof q->serial, ev->serial);
    q->durable = durable != 0;
    q->n_kv = (uint32_t)ev->n_kv;
    for (size_t i = 0; i < ev->n_kv; i++) {
        if (ev->kv[i].key == NULL || sk_strlcpy(q->kv[i].key, sizeof q->kv[i].key, ev->kv[i].key) != 0)
            return -1;
        put_opt(&q->kv[i].has_value, q->kv[i].value, sizeof q->kv[i].value, ev->kv[i].value);
    }
    if (ev->details_json != NULL) {
        q->has_details = 1;
        if (sk_strlcpy(q->details_json, sizeof q->details_json, ev->details_json) != 0)
            return -1;
    }
    return 0;
}

static int r_append(void *ctx, const sk_audit_event *ev, int durable, uint64_t *seq_out)
{
    /* ~90 KiB struct and its encoding: on the heap, never on a worker's stack. */
    sk_wire_audit_append *q = calloc(1, sizeof *q);
    uint8_t *enc = malloc(SK_WIRE_MAX);
    sk_wire_audit_seq_rep rep;
    int32_t status;
    sk_wire_w w;
    int rc = -1;

    if (q == NULL || enc == NULL)
        goto out;
    if (fill_append(q, ev, durable) != 0) {
        sk_log(SK_LOG_ERR, "audit: a %s entry exceeds the bounds of the wire: not written",
               ev && ev->event ? ev->event : "(unnamed)");
        goto out;
    }
    sk_wire_w_init(&w, enc, SK_WIRE_MAX - SK_WIRE_HDR_LEN);
    if (sk_wire_audit_encode(SK_WIRE_AUDIT_APPEND, 0, q, &w) != 0) {
        sk_log(SK_LOG_ERR, "audit: a %s entry is too large for the wire: not written", ev->event);
        goto out;
    }
    if (call(ctx, SK_WIRE_AUDIT_APPEND, enc, w.len, &rep, SK_AUDITD_CALL_TIMEOUT_MS, &status) != 0 ||
        status != 0)
        goto out;
    if (seq_out != NULL)
        *seq_out = rep.seq;
    rc = 0;
out:
    free(q);
    free(enc);
    return rc;
}

/* ---- request lines: batched ---------------------------------------------------
 * Lines are encoded into one buffer per handle (a mutex; the network process's
 * threads hold it for a copy of a few hundred bytes) and leave as one
 * REQUEST_BATCH datagram when it is full, when its oldest line is
 * SK_AUDITD_BATCH_MS old (checked by the next line, and by the flusher thread
 * when traffic stops), at sk_audit_flush and at close. One datagram, one
 * recv and one wake-up in auditd per batch instead of per request. */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Post the buffered lines (lock held). On failure they are dropped and logged:
 * keeping them would only make every later line fail the same way. */
static int batch_send_locked(struct remote *r)
{
    sk_wire_w w;
    int rc = 0;
    if (r->b->n == 0)
        return 0;
    sk_wire_w_init(&w, r->enc, sizeof r->enc);
    if (sk_wire_audit_encode(SK_WIRE_AUDIT_REQUEST_BATCH, 0, r->b, &w) != 0 ||
        sk_wire_post(r->c, SK_WIRE_AUDIT_REQUEST_BATCH, r->enc, w.len) != 0) {
        sk_log(SK_LOG_ERR, "audit: %u request line(s) could not be handed to auditd: %s", (unsigned)r->b->n,
               strerror(errno));
        rc = -1;
    }
    r->b->n = 0;
    r->b->len = 0;
    return rc;
}

static void *flusher_main(void *p)
{
    struct remote *r = p;
    pthread_mutex_lock(&r->lock);
    while (!r->stop) {
        if (r->b->n == 0) {
            pthread_cond_wait(&r->wake, &r->lock);
            continue;
        }
        int64_t due = r->first_ms + SK_AUDITD_BATCH_MS;
        if (mono_ms() >= due) {
            (void)batch_send_locked(r); /* logged there */
            continue;
        }
        struct timespec ts = { (time_t)(due / 1000), (long)(due % 1000) * 1000000L };
        (void)pthread_cond_timedwait(&r->wake, &r->lock, &ts);
    }
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

/* Started with the first request line (authd and the tools never send one). */
static void flusher_start_locked(struct remote *r)
{
    pthread_condattr_t ca;
    if (r->flusher_state != 0)
        return;
    r->flusher_state = -1; /* tried: without it, every line leaves at once */
    if (pthread_condattr_init(&ca) != 0)
        return;
    if (pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 && pthread_cond_init(&r->wake, &ca) == 0) {
        /* No signal is the flusher's to handle: it starts with all blocked. */
        sigset_t all, old;
        sigfillset(&all);
        int masked = pthread_sigmask(SIG_SETMASK, &all, &old) == 0;
        if (pthread_create(&r->flusher, NULL, flusher_main, r) == 0)
            r->flusher_state = 1;
        else
            pthread_cond_destroy(&r->wake);
        if (masked)
            (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    pthread_condattr_destroy(&ca);
    if (r->flusher_state != 1)
        sk_log(SK_LOG_WARN, "audit: no request line flusher thread: each line is sent on its own");
}

static void fill_request(sk_wire_audit_request *q, const char *user, const char *tenant, const char *peer,
                         const char *serial, const char *method, const char *path, int status, uint64_t bytes,
                         uint64_t duration_us)
{
    put_opt(&q->has_user, q->user, sizeof q->user, user);
    put_opt(&q->has_tenant, q->tenant, sizeof q->tenant, tenant);
    put_opt(&q->has_peer, q->peer, sizeof q->peer, peer);
    put_opt(&q->has_serial, q->serial, sizeof q->serial, serial);
    (void)sk_wire_audit_cut(q->method, sizeof q->method, method);
    (void)sk_wire_audit_cut(q->path, sizeof q->path, path);
    q->status = status;
    q->bytes = bytes;
    q->duration_us = duration_us;
}

/* A line too large for a batch goes alone, as before batching (lock held). */
static int post_single_locked(struct remote *r)
{
    sk_wire_w w;
    sk_wire_w_init(&w, r->enc, sizeof r->enc);
    if (sk_wire_audit_encode(SK_WIRE_AUDIT_REQUEST, 0, &r->q, &w) == 0 &&
        sk_wire_post(r->c, SK_WIRE_AUDIT_REQUEST, r->enc, w.len) == 0)
        return 0;
    sk_log(SK_LOG_ERR, "audit: a request line could not be handed to auditd: %s", strerror(errno));
    return -1;
}

static int r_request(void *ctx, const char *user, const char *tenant, const char *peer, const char *serial,
                     const char *method, const char *path, int status, uint64_t bytes, uint64_t duration_us)
{
    struct remote *r = ctx;
    int rc = 0, added;

    pthread_mutex_lock(&r->lock);
    flusher_start_locked(r);
    fill_request(&r->q, user, tenant, peer, serial, method, path, status, bytes, duration_us);
    added = sk_wire_audit_batch_add(r->b, &r->q);
    if (added == 1) {
        rc = batch_send_locked(r);
        added = sk_wire_audit_batch_add(r->b, &r->q);
    }
    if (added != 0) {
        /* Keep the order: what is buffered leaves first. */
        if (batch_send_locked(r) != 0)
            rc = -1;
        if (post_single_locked(r) != 0)
            rc = -1;
    } else if (r->b->n == 1) {
        r->first_ms = mono_ms();
        if (r->flusher_state == 1)
            pthread_cond_signal(&r->wake);
    }
    if (r->b->n > 0 && (r->flusher_state != 1 || mono_ms() - r->first_ms >= SK_AUDITD_BATCH_MS) &&
        batch_send_locked(r) != 0)
        rc = -1;
    pthread_mutex_unlock(&r->lock);
    return rc;
}

static int r_refused(void *ctx, const char *peer, const char *reason, const char *serial)
{
    struct remote *r = ctx;
    sk_wire_audit_refused q;
    uint8_t enc[sizeof q + 16];
    sk_wire_w w;

    memset(&q, 0, sizeof q);
    (void)sk_wire_audit_cut(q.peer, sizeof q.peer, peer);
    (void)sk_wire_audit_cut(q.reason, sizeof q.reason, reason);
    (void)sk_wire_audit_cut(q.serial, sizeof q.serial, serial);
    sk_wire_w_init(&w, enc, sizeof enc);
    if (sk_wire_audit_encode(SK_WIRE_AUDIT_REFUSED, 0, &q, &w) != 0 ||
        sk_wire_post(r->c, SK_WIRE_AUDIT_REFUSED, enc, w.len) != 0) {
        sk_log(SK_LOG_ERR, "audit: a handshake refusal could not be handed to auditd: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static int r_flush(void *ctx)
{
    struct remote *r = ctx;
    sk_wire_audit_status_rep rep;
    int32_t status;
    int sent;
    /* The buffered lines first, so that the flush covers them. */
    pthread_mutex_lock(&r->lock);
    sent = batch_send_locked(r);
    pthread_mutex_unlock(&r->lock);
    if (sent != 0)
        return -1;
    if (call(ctx, SK_WIRE_AUDIT_FLUSH, NULL, 0, &rep, SK_AUDITD_CALL_TIMEOUT_MS, &status) != 0)
        return -1;
    return status == 0 ? 0 : -1;
}

static void r_lag(void *ctx, uint64_t *queued, int64_t *oldest_ms)
{
    sk_wire_audit_lag_rep rep;
    int32_t status;
    *queued = 0;
    *oldest_ms = 0;
    if (call(ctx, SK_WIRE_AUDIT_LAG, NULL, 0, &rep, SK_AUDITD_LAG_TIMEOUT_MS, &status) == 0 && status == 0) {
        *queued = rep.queued;
        *oldest_ms = rep.oldest_ms;
    }
}

static void r_close(void *ctx)
{
    struct remote *r = ctx;
    pthread_mutex_lock(&r->lock);
    r->stop = 1;
    if (r->flusher_state == 1)
        pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->lock);
    if (r->flusher_state == 1) {
        pthread_join(r->flusher, NULL);
        pthread_cond_destroy(&r->wake);
    }
    (void)batch_send_locked(r); /* alone now; logged there */
    pthread_mutex_destroy(&r->lock);
    sk_wire_client_free(r->c);
    free(r->b);
    free(r);
}

static const sk_audit_remote_ops remote_ops = {
    .append = r_append,
    .request = r_request,
    .refused = r_refused,
    .flush = r_flush,
    .lag = r_lag,
    .close = r_close,
};

int sk_auditd_client_open(sk_wire_client *c, sk_audit **out)
{
    struct remote *r;
    *out = NULL;
    if (c == NULL)
        return -1;
    r = calloc(1, sizeof *r);
    if (r == NULL)
        return -1;
    r->b = calloc(1, sizeof *r->b);
    if (r->b == NULL || pthread_mutex_init(&r->lock, NULL) != 0) {
        free(r->b);
        free(r);
        return -1;
    }
    r->c = c;
    if (sk_audit_open_remote(&remote_ops, r, out) != 0) {
        pthread_mutex_destroy(&r->lock);
        free(r->b);
        free(r);
        return -1;
    }
    return 0;
}

/* ---- the ctl socket ---------------------------------------------------------- */

int sk_auditd_ctl_path(const sk_conf *conf, char *out, size_t cap)
{
    struct sockaddr_un sa;
    if (conf == NULL || conf->state_dir[0] == '\0' ||
        sk_snprintf(out, cap, "%s/%s", conf->state_dir, SK_AUDITD_CTL_NAME) != 0)
        return -1;
    return strlen(out) < sizeof sa.sun_path ? 0 : -1;
}

static int fill_addr(const char *path, struct sockaddr_un *sa)
{
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    if (sk_strlcpy(sa->sun_path, sizeof sa->sun_path, path) != 0) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

int sk_auditd_ctl_listen(const char *path, int *out)
{
    struct sockaddr_un sa;
    struct stat st;
    mode_t old;
    int fd = -1, rc;

    *out = -1;
    if (fill_addr(path, &sa) != 0)
        return -1;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            errno = EEXIST;
            return -1;
        }
        if (unlink(path) != 0)
            return -1;
    }
    fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    old = umask(0177); /* 0600 from the start: no window with a wider mode */
    rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    umask(old);
    if (rc != 0 || listen(fd, 16) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    *out = fd;
    return 0;
}

int sk_auditd_ctl_connect(const char *path, int *out)
{
    struct sockaddr_un sa;
    int fd, r;

    *out = -1;
    if (fill_addr(path, &sa) != 0)
        return -1;
    fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    do
        r = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    while (r != 0 && errno == EINTR);
    if (r != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return e == ENOENT || e == ECONNREFUSED ? 1 : -1;
    }
    *out = fd;
    return 0;
}
