/* The engine's workers: each one an epoll loop that accepts connections from the
 * shared listening socket (EPOLLEXCLUSIVE spreads them), admits them against the
 * pre-authentication limits and drives their TLS handshakes without blocking.
 * A connection costs no thread before it has presented a valid certificate. */
#define _GNU_SOURCE
#include "net_int.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include "sk_admit.h"
#include "sk_loop.h"

#define ACCEPT_BATCH 64
#define WORKER_STACK (1024 * 1024) /* the HTTP handlers run on the worker */

struct hs;

struct net_worker {
    sk_net *n;
    pthread_t thread;
    sk_loop *loop;
    void *wctx;             /* the application's context for this worker */
    sk_loop_watch listen_w;
    int listening;
    struct hs *head, *tail; /* unfinished handshakes, oldest first (= earliest deadline) */
    uint32_t n_hs;
    struct tconn *conns;    /* established connections */
    uint32_t n_conns;
    atomic_int ready;       /* 1 started, -1 failed to start */
};

sk_net *sk_net_worker_net(const struct net_worker *wk)
{
    return wk->n;
}

sk_loop *sk_net_worker_loop(const struct net_worker *wk)
{
    return wk->loop;
}

void sk_net_worker_link(struct net_worker *wk, struct tconn *t)
{
    *sk_net_conn_prev(t) = NULL;
    *sk_net_conn_next(t) = wk->conns;
    if (wk->conns != NULL)
        *sk_net_conn_prev(wk->conns) = t;
    wk->conns = t;
    wk->n_conns++;
}

void sk_net_worker_unlink(struct net_worker *wk, struct tconn *t)
{
    struct tconn *prev = *sk_net_conn_prev(t), *next = *sk_net_conn_next(t);
    if (prev != NULL)
        *sk_net_conn_next(prev) = next;
    else
        wk->conns = next;
    if (next != NULL)
        *sk_net_conn_prev(next) = prev;
    wk->n_conns--;
}

/* An unfinished handshake. Nothing TLS is allocated before the client sends a byte:
 * a silent socket costs this struct and its descriptor. */
struct hs {
    sk_loop_watch w;
    struct net_worker *wk;
    struct hs *prev, *next;
    int64_t deadline_ms;
    sk_admit_key key;
    SSL *ssl;
    sk_tlsgen *gen;
    sk_conn *conn;
};

/* ---- the FIFO of unfinished handshakes ---------------------------------- */

static void fifo_push(struct net_worker *wk, struct hs *h)
{
    h->prev = wk->tail;
    h->next = NULL;
    if (wk->tail != NULL)
        wk->tail->next = h;
    else
        wk->head = h;
    wk->tail = h;
    wk->n_hs++;
}

static void fifo_remove(struct net_worker *wk, struct hs *h)
{
    if (h->prev != NULL)
        h->prev->next = h->next;
    else
        wk->head = h->next;
    if (h->next != NULL)
        h->next->prev = h->prev;
    else
        wk->tail = h->prev;
    h->prev = h->next = NULL;
    wk->n_hs--;
}

/* Leaves the handshake phase: out of the FIFO, the admission counter and the loop.
 * The descriptor and TLS state stay with the caller. */
static void hs_detach(struct hs *h)
{
    struct net_worker *wk = h->wk;
    fifo_remove(wk, h);
    sk_admit_leave(wk->n->admit, &h->key);
    sk_loop_del(wk->loop, &h->w);
}

/* Closes a connection that did not complete its handshake. */
static void hs_close(struct hs *h)
{
    sk_net *n = h->wk->n;
    hs_detach(h);
    SSL_free(h->ssl);
    close(h->w.fd);
    sk_net_gen_unref(h->gen);
    free(h->conn);
    free(h);
    atomic_fetch_sub(&n->ctr->active, 1);
}

/* A connection that ends without ever having been a TLS client is audited by
 * reason (aggregated there), never logged line by line. */
static void hs_refuse_quietly(struct hs *h, const char *reason)
{
    sk_net *n = h->wk->n;
    sk_conn tmp;
    if (h->conn == NULL) {
        socklen_t len = sizeof tmp.peer;
        memset(&tmp, 0, sizeof tmp);
        if (getpeername(h->w.fd, (struct sockaddr *)&tmp.peer, &len) == 0)
            sk_net_format_peer(&tmp);
        else
            memcpy(tmp.peer_str, "unknown", sizeof "unknown");
    }
    sk_net_refused(n, h->conn ? h->conn->peer_str : tmp.peer_str, reason, NULL);
    hs_close(h);
}

/* ---- handshakes -------------------------------------------------------- */

static void hs_established(struct hs *h)
{
    struct net_worker *wk = h->wk;
    sk_net *n = wk->n;
    SSL *ssl = h->ssl;
    sk_conn *c = h->conn;
    int fd = h->w.fd;
    sk_tlsgen *gen = h->gen;
    const char *why = NULL;

    hs_detach(h);
    free(h);
    if (sk_net_extract_identity(ssl, c) != 0) {
        why = "bad_subject";
        sk_net_report_refusal(n, c, ssl, why);
        sk_net_log_refusal(n, c, ssl, "certificate subject unusable (CN/O)");
    } else if (sk_net_serial_revoked(n, c->serial)) {
        /* A resumed session skips verification; the CRL still applies. */
        why = "revoked";
        sk_net_report_refusal(n, c, NULL, why);
        sk_net_log_refusal(n, c, ssl, "certificate revoked (resumed session)");
    }
    if (why != NULL) {
        atomic_fetch_add(&n->ctr->hs_failed, 1);
        SSL_free(ssl);
        close(fd);
        sk_net_gen_unref(gen);
        free(c);
        atomic_fetch_sub(&n->ctr->active, 1);
        return;
    }
    atomic_fetch_add(&n->ctr->hs_ok, 1);
    if (c->resumed)
        atomic_fetch_add(&n->ctr->resumed, 1);
    atomic_fetch_add(&n->ctr->established, 1);
    if (sk_net_conn_start(wk, wk->wctx, fd, ssl, c, gen) != 0) {
        atomic_fetch_sub(&n->ctr->established, 1);
        atomic_fetch_sub(&n->ctr->active, 1);
    }
}

/* The first bytes arrived: only now is the TLS state allocated. 0 ready, 1 the client
 * closed without sending anything (a probe), -1 failure. */
static int hs_begin_tls(struct hs *h)
{
    char b;
    ssize_t r = recv(h->w.fd, &b, 1, MSG_PEEK);
    if (r == 0)
        return 1;
    if (r < 0)
        return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
    h->conn = calloc(1, sizeof *h->conn);
    if (h->conn == NULL)
        return -1;
    h->conn->peer_len = sizeof h->conn->peer;
    if (getpeername(h->w.fd, (struct sockaddr *)&h->conn->peer, &h->conn->peer_len) != 0)
        return -1;
    sk_net_format_peer(h->conn);
    h->gen = sk_net_gen_ref(h->wk->n);
    h->ssl = SSL_new(h->gen->ctx);
    if (h->ssl == NULL || SSL_set_fd(h->ssl, h->w.fd) != 1)
        return -1;
    SSL_set_app_data(h->ssl, h->conn); /* verify_cb names refused serials there */
    return 0;
}

static void hs_on_event(sk_loop_watch *w, uint32_t events)
{
    struct hs *h = (struct hs *)w;
    sk_net *n = h->wk->n;
    int r, e;
    (void)events;

    if (h->ssl == NULL) {
        r = hs_begin_tls(h);
        if (r == 1) {
            atomic_fetch_add(&n->ctr->probes, 1);
            hs_close(h);
            return;
        }
        if (r < 0) {
            atomic_fetch_add(&n->ctr->hs_failed, 1);
            hs_refuse_quietly(h, "handshake_failed");
            return;
        }
        if (h->ssl == NULL)
            return; /* spurious wakeup */
    }
    ERR_clear_error();
    r = SSL_accept(h->ssl);
    if (r == 1) {
        hs_established(h);
        return;
    }
    e = SSL_get_error(h->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        if (sk_loop_mod(h->wk->loop, &h->w, e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT) != 0) {
            atomic_fetch_add(&n->ctr->hs_failed, 1);
            hs_refuse_quietly(h, "handshake_failed");
        }
        return;
    }
    atomic_fetch_add(&n->ctr->hs_failed, 1);
    sk_net_report_refusal(n, h->conn, h->ssl, NULL);
    sk_net_log_refusal(n, h->conn, h->ssl, "TLS handshake failed");
    hs_close(h);
}

/* Closes handshakes past their deadline; returns ms until the next one (-1: none). */
static int expire_handshakes(struct net_worker *wk)
{
    int64_t now = sk_net_now_ms();
    while (wk->head != NULL && wk->head->deadline_ms <= now) {
        atomic_fetch_add(&wk->n->ctr->hs_timeout, 1);
        hs_refuse_quietly(wk->head, "handshake_timeout");
    }
    if (wk->head == NULL)
        return -1;
    return (int)(wk->head->deadline_ms - now);
}

/* ---- accepting --------------------------------------------------------- */

/* Makes room for one more connection: unfinished handshakes go first, oldest
 * first; a connection past its handshake is never closed for a newcomer.
 * 0 room made (or there was room), -1 the newcomer must be refused. */
static int make_room(struct net_worker *wk)
{
    sk_net *n = wk->n;
    if (wk->n_hs >= n->hs_per_worker) {
        atomic_fetch_add(&n->ctr->shed, 1);
        hs_refuse_quietly(wk->head, "shed");
    }
    if ((uint32_t)atomic_load(&n->ctr->active) < n->max_conns)
        return 0;
    if (wk->head == NULL)
        return -1;
    atomic_fetch_add(&n->ctr->shed, 1);
    hs_refuse_quietly(wk->head, "shed");
    return 0;
}

static void admit_one(struct net_worker *wk, int fd, const struct sockaddr_storage *ss)
{
    sk_net *n = wk->n;
    struct hs *h = NULL;
    sk_admit_key key;
    int one = 1;

    atomic_fetch_add(&n->ctr->accepted, 1);
    if (atomic_load(&n->stopping) || sk_admit_key_of(ss, &key) != 0)
        goto refuse;
    if (sk_admit_enter(n->admit, &key) != 0) {
        atomic_fetch_add(&n->ctr->refused_addr, 1);
        goto refuse_audited;
    }
    if (make_room(wk) != 0) {
        atomic_fetch_add(&n->ctr->refused_busy, 1);
        sk_admit_leave(n->admit, &key);
        goto refuse;
    }
    h = calloc(1, sizeof *h);
    if (h == NULL) {
        sk_admit_leave(n->admit, &key);
        goto refuse;
    }
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    h->w.fd = fd;
    h->w.on_event = hs_on_event;
    h->wk = wk;
    h->key = key;
    h->deadline_ms = sk_net_now_ms() + n->conf->handshake_timeout * 1000;
    atomic_fetch_add(&n->ctr->active, 1);
    fifo_push(wk, h);
    if (sk_loop_add(wk->loop, &h->w, EPOLLIN) != 0) {
        fifo_remove(wk, h);
        sk_admit_leave(n->admit, &key);
        atomic_fetch_sub(&n->ctr->active, 1);
        free(h);
        goto refuse;
    }
    return;
refuse_audited: {
        sk_conn tmp;
        memset(&tmp, 0, sizeof tmp);
        memcpy(&tmp.peer, ss, sizeof *ss);
        sk_net_format_peer(&tmp);
        sk_net_refused(n, tmp.peer_str, "address_limit", NULL);
    }
refuse:
    close(fd);
}

static void on_listen(sk_loop_watch *w, uint32_t events)
{
    struct net_worker *wk = (struct net_worker *)((char *)w - offsetof(struct net_worker, listen_w));
    (void)events;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        int fd = accept4(w->fd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                /* EMFILE and friends: shed the oldest handshake so accept can go on. */
                if (wk->head != NULL) {
                    atomic_fetch_add(&wk->n->ctr->shed, 1);
                    hs_refuse_quietly(wk->head, "shed");
                    continue;
                }
                sk_log(SK_LOG_WARN, "accept: %s", strerror(errno));
            }
            return;
        }
        admit_one(wk, fd, &ss);
    }
}

static int min_timeout(int a, int b)
{
    if (a < 0)
        return b;
    if (b < 0)
        return a;
    return a < b ? a : b;
}

/* Drain: no new connections, unfinished handshakes closed, idle established ones
 * closed now; busy ones go on until they are idle or the deadline passes. */
static void drain_round(struct net_worker *wk)
{
    struct tconn *t, *next;
    if (wk->listening) {
        sk_loop_del(wk->loop, &wk->listen_w);
        wk->listening = 0;
    }
    while (wk->head != NULL)
        hs_close(wk->head);
    for (t = wk->conns; t != NULL; t = next) {
        next = *sk_net_conn_next(t);
        if (sk_net_conn_idle(t) || sk_net_now_ms() >= wk->n->drain_deadline_ms) {
            if (!sk_net_conn_idle(t))
                atomic_fetch_add(&wk->n->cut, 1);
            sk_net_conn_close(t);
        }
    }
}

static void *worker_main(void *arg)
{
    struct net_worker *wk = arg;
    sk_net *n = wk->n;
    const sk_net_app *app = &n->app;

    wk->wctx = app->worker_open(app->arg, wk->loop);
    if (wk->wctx == NULL) {
        atomic_store(&wk->ready, -1);
        return NULL;
    }
    atomic_store(&wk->ready, 1);
    for (;;) {
        int timeout;
        if (atomic_load(&n->stopping)) {
            drain_round(wk);
            if (wk->conns == NULL && app->worker_pending(wk->wctx) == 0)
                break;
        }
        timeout = min_timeout(expire_handshakes(wk), app->worker_run(wk->wctx));
        if (atomic_load(&n->stopping))
            timeout = min_timeout(timeout, 50); /* re-check what became idle */
        if (sk_loop_run_once(wk->loop, timeout) < 0) {
            sk_log(SK_LOG_ERR, "worker event loop failed: %s", strerror(errno));
            break;
        }
    }
    while (wk->head != NULL)
        hs_close(wk->head);
    while (wk->conns != NULL)
        sk_net_conn_close(wk->conns);
    /* Requests waiting for work off the loop (a login's argon2 run) hold pointers
     * into the application's worker state: let them come back before it goes. */
    for (int i = 0; i < 600 && app->worker_pending(wk->wctx) > 0; i++) {
        (void)app->worker_run(wk->wctx);
        if (sk_loop_run_once(wk->loop, 50) < 0)
            break;
    }
    app->worker_close(wk->wctx);
    return NULL;
}

int sk_net_workers_start(sk_net *n)
{
    pthread_attr_t attr;
    int rc = -1;

    n->workers = calloc(n->n_workers, sizeof *n->workers);
    if (n->workers == NULL || (n->admit == NULL && sk_admit_create(n->conf->handshakes_per_address, &n->admit) != 0))
        return -1;
    if (pthread_attr_init(&attr) != 0)
        return -1;
    (void)pthread_attr_setstacksize(&attr, WORKER_STACK);
    for (uint32_t i = 0; i < n->n_workers; i++) {
        struct net_worker *wk = &n->workers[i];
        wk->n = n;
        wk->listen_w.fd = n->listen_fd;
        wk->listen_w.on_event = on_listen;
        if (sk_loop_create(&wk->loop) != 0 || sk_loop_add(wk->loop, &wk->listen_w, EPOLLIN | EPOLLEXCLUSIVE) != 0)
            goto out;
        wk->listening = 1;
        if (pthread_create(&wk->thread, &attr, worker_main, wk) != 0)
            goto out;
        n->workers_started = i + 1;
    }
    /* Every worker's HTTP engine must be up before the gateway reports it runs. */
    for (uint32_t i = 0; i < n->n_workers; i++) {
        for (int j = 0; j < 1000 && atomic_load(&n->workers[i].ready) == 0; j++)
            usleep(1000);
        if (atomic_load(&n->workers[i].ready) != 1)
            goto out;
    }
    rc = 0;
out:
    pthread_attr_destroy(&attr);
    return rc;
}

void sk_net_workers_stop(sk_net *n)
{
    atomic_store(&n->stopping, 1);
    for (uint32_t i = 0; i < n->workers_started; i++)
        sk_loop_wake(n->workers[i].loop);
    for (uint32_t i = 0; i < n->workers_started; i++)
        pthread_join(n->workers[i].thread, NULL);
    n->workers_started = 0;
    if (n->workers != NULL)
        for (uint32_t i = 0; i < n->n_workers; i++)
            sk_loop_destroy(n->workers[i].loop);
    free(n->workers);
    n->workers = NULL;
    if (n->admit_owned) {
        sk_admit_destroy(n->admit);
        n->admit = NULL;
    }
}

/* ---- several network processes (sk_net.h) ------------------------------- */

uint32_t sk_net_process_workers(const sk_conf *conf)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    uint32_t total = conf->listen_workers ? conf->listen_workers : (uint32_t)(cpus > 0 ? cpus : 1);
    uint32_t procs = conf->listen_processes > 0 ? conf->listen_processes : 1;
    return total / procs > 0 ? total / procs : 1;
}

void sk_net_set_shared(sk_net *n, struct sk_net_counters *ctr, struct sk_admit *admit)
{
    if (ctr != NULL)
        n->ctr = ctr;
    if (admit != NULL) {
        n->admit = admit;
        n->admit_owned = 0;
    }
}

void sk_net_counters_restart(struct sk_net_counters *c)
{
    atomic_store(&c->active, 0);
    atomic_store(&c->established, 0);
    atomic_store(&c->max_conns, 0);
}

void sk_net_counters_add(const struct sk_net_counters *c, struct sk_net_stats *s, uint64_t *refusals)
{
    int active = atomic_load(&c->active), established = atomic_load(&c->established);
    s->accepted += atomic_load(&c->accepted);
    s->handshakes_ok += atomic_load(&c->hs_ok);
    s->handshakes_failed += atomic_load(&c->hs_failed);
    s->resumed += atomic_load(&c->resumed);
    s->active += active > 0 ? (uint64_t)active : 0;
    s->refused_busy += atomic_load(&c->refused_busy);
    s->refused_address += atomic_load(&c->refused_addr);
    s->shed += atomic_load(&c->shed);
    s->handshake_timeouts += atomic_load(&c->hs_timeout);
    s->probes += atomic_load(&c->probes);
    s->established += established > 0 ? (uint64_t)established : 0;
    s->max_connections += atomic_load(&c->max_conns);
    for (size_t i = 0; i < SK_NET_REFUSAL_KINDS; i++)
        refusals[i] += atomic_load(&c->refusals[i]);
}
