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
#define WORKER_STACK (256 * 1024)

struct hs;

struct net_worker {
    sk_net *n;
    pthread_t thread;
    sk_loop *loop;
    sk_loop_watch listen_w;
    struct hs *head, *tail; /* unfinished handshakes, oldest first (= earliest deadline) */
    uint32_t n_hs;
};

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
    atomic_fetch_sub(&n->active, 1);
}

/* A connection that ends without ever having been a TLS client is audited by
 * reason (aggregated there), never logged line by line. */
static void hs_refuse_quietly(struct hs *h, const char *reason)
{
    sk_net *n = h->wk->n;
    sk_conn tmp;
    if (n->hooks.refused != NULL) {
        if (h->conn == NULL) {
            memset(&tmp, 0, sizeof tmp);
            socklen_t len = sizeof tmp.peer;
            if (getpeername(h->w.fd, (struct sockaddr *)&tmp.peer, &len) == 0)
                sk_net_format_peer(&tmp);
            else
                memcpy(tmp.peer_str, "unknown", sizeof "unknown");
        }
        n->hooks.refused(n->hooks.arg, h->conn ? h->conn->peer_str : tmp.peer_str, reason, NULL);
    }
    hs_close(h);
}

/* ---- handshakes -------------------------------------------------------- */

static void hs_established(struct hs *h)
{
    sk_net *n = h->wk->n;
    SSL *ssl = h->ssl;
    sk_conn *c = h->conn;
    int fd = h->w.fd;
    sk_tlsgen *gen = h->gen;
    const char *why = NULL;

    hs_detach(h);
    free(h);
    if (sk_net_extract_identity(ssl, c) != 0)
        why = "bad_subject";
    else if (sk_net_serial_revoked(n, c->serial))
        why = "revoked"; /* a resumed session skips verification; the CRL still applies */
    if (why != NULL) {
        atomic_fetch_add(&n->hs_failed, 1);
        sk_net_report_refusal(n, c, why[0] == 'r' ? NULL : ssl, why);
        sk_net_log_refusal(n, c, ssl, why[0] == 'r' ? "certificate revoked (resumed session)"
                                                   : "certificate subject unusable (CN/O)");
        SSL_free(ssl);
        close(fd);
        sk_net_gen_unref(gen);
        free(c);
        atomic_fetch_sub(&n->active, 1);
        return;
    }
    atomic_fetch_add(&n->hs_ok, 1);
    if (c->resumed)
        atomic_fetch_add(&n->resumed, 1);
    atomic_fetch_add(&n->established, 1);
    if (sk_net_pump_start(n, fd, ssl, c, gen) != 0) {
        atomic_fetch_sub(&n->established, 1);
        atomic_fetch_sub(&n->active, 1);
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
            atomic_fetch_add(&n->probes, 1);
            hs_close(h);
            return;
        }
        if (r < 0) {
            atomic_fetch_add(&n->hs_failed, 1);
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
            atomic_fetch_add(&n->hs_failed, 1);
            hs_refuse_quietly(h, "handshake_failed");
        }
        return;
    }
    atomic_fetch_add(&n->hs_failed, 1);
    sk_net_report_refusal(n, h->conn, h->ssl, NULL);
    sk_net_log_refusal(n, h->conn, h->ssl, "TLS handshake failed");
    hs_close(h);
}

/* Closes handshakes past their deadline; returns ms until the next one (-1: none). */
static int expire_handshakes(struct net_worker *wk)
{
    int64_t now = sk_net_now_ms();
    while (wk->head != NULL && wk->head->deadline_ms <= now) {
        atomic_fetch_add(&wk->n->hs_timeout, 1);
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
        atomic_fetch_add(&n->shed, 1);
        hs_refuse_quietly(wk->head, "shed");
    }
    if ((uint32_t)atomic_load(&n->active) < n->max_conns)
        return 0;
    if (wk->head == NULL)
        return -1;
    atomic_fetch_add(&n->shed, 1);
    hs_refuse_quietly(wk->head, "shed");
    return 0;
}

static void admit_one(struct net_worker *wk, int fd, const struct sockaddr_storage *ss)
{
    sk_net *n = wk->n;
    struct hs *h = NULL;
    sk_admit_key key;
    int one = 1;

    atomic_fetch_add(&n->accepted, 1);
    if (atomic_load(&n->stopping) || sk_admit_key_of(ss, &key) != 0)
        goto refuse;
    if (sk_admit_enter(n->admit, &key) != 0) {
        atomic_fetch_add(&n->refused_addr, 1);
        goto refuse_audited;
    }
    if (make_room(wk) != 0) {
        atomic_fetch_add(&n->refused_busy, 1);
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
    atomic_fetch_add(&n->active, 1);
    fifo_push(wk, h);
    if (sk_loop_add(wk->loop, &h->w, EPOLLIN) != 0) {
        fifo_remove(wk, h);
        sk_admit_leave(n->admit, &key);
        atomic_fetch_sub(&n->active, 1);
        free(h);
        goto refuse;
    }
    return;
refuse_audited:
    if (n->hooks.refused != NULL) {
        sk_conn tmp;
        memset(&tmp, 0, sizeof tmp);
        memcpy(&tmp.peer, ss, sizeof *ss);
        sk_net_format_peer(&tmp);
        n->hooks.refused(n->hooks.arg, tmp.peer_str, "address_limit", NULL);
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
                    atomic_fetch_add(&wk->n->shed, 1);
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

static void *worker_main(void *arg)
{
    struct net_worker *wk = arg;
    sk_net *n = wk->n;
    while (!atomic_load(&n->stopping)) {
        int timeout = expire_handshakes(wk);
        if (sk_loop_run_once(wk->loop, timeout) < 0) {
            sk_log(SK_LOG_ERR, "worker event loop failed: %s", strerror(errno));
            break;
        }
    }
    sk_loop_del(wk->loop, &wk->listen_w);
    while (wk->head != NULL)
        hs_close(wk->head);
    return NULL;
}

int sk_net_workers_start(sk_net *n)
{
    pthread_attr_t attr;
    int rc = -1;

    n->workers = calloc(n->n_workers, sizeof *n->workers);
    if (n->workers == NULL || sk_admit_create(n->conf->handshakes_per_address, &n->admit) != 0)
        return -1;
    if (pthread_attr_init(&attr) != 0)
        return -1;
    (void)pthread_attr_setstacksize(&attr, WORKER_STACK);
    for (uint32_t i = 0; i < n->n_workers; i++) {
        struct net_worker *wk = &n->workers[i];
        wk->n = n;
        wk->listen_w.fd = n->listen_fd;
        wk->listen_w.on_event = on_listen;
        if (sk_loop_create(&wk->loop) != 0 || sk_loop_add(wk->loop, &wk->listen_w, EPOLLIN | EPOLLEXCLUSIVE) != 0 ||
            pthread_create(&wk->thread, &attr, worker_main, wk) != 0)
            goto out;
        n->workers_started = i + 1;
    }
    rc = 0;
out:
    pthread_attr_destroy(&attr);
    return rc;
}

void sk_net_workers_stop(sk_net *n)
{
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
    sk_admit_destroy(n->admit);
    n->admit = NULL;
}
