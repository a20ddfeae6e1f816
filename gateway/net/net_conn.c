/* An established connection, relayed in its worker's loop: TLS records from the
 * client are decrypted into the application's socketpair, and what the application
 * writes there goes back encrypted. Level-triggered interest is kept to exactly what
 * the relay waits for, so an idle connection costs no wakeups; relay buffers exist
 * only while bytes are in flight, and OpenSSL releases its own when idle
 * (SSL_MODE_RELEASE_BUFFERS), so an idle connection holds a few hundred bytes here. */
#define _GNU_SOURCE
#include "net_int.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#define RELAY_BUF 16384

struct relay_buf {
    size_t off, len;
    char data[RELAY_BUF];
};

struct tconn {
    sk_loop_watch tls_w;    /* the client's TCP socket */
    sk_loop_watch plain_w;  /* our end of the application's socketpair */
    struct net_worker *wk;
    struct tconn *prev, *next;
    SSL *ssl;
    sk_tlsgen *gen;
    void *app;
    struct relay_buf *up, *down; /* client -> application, application -> client */
    uint32_t tls_ev, plain_ev;   /* interest registered now */
    int plain_eof;               /* the application closed its end: flush, then end */
    int app_stopped_reading;     /* sending to the application failed */
    int client_closed;           /* the client ended with close_notify: a clean end */
};

struct tconn **sk_net_conn_prev(struct tconn *t)
{
    return &t->prev;
}

struct tconn **sk_net_conn_next(struct tconn *t)
{
    return &t->next;
}

static struct tconn *of_tls(sk_loop_watch *w)
{
    return (struct tconn *)((char *)w - offsetof(struct tconn, tls_w));
}

static struct tconn *of_plain(sk_loop_watch *w)
{
    return (struct tconn *)((char *)w - offsetof(struct tconn, plain_w));
}

void sk_net_conn_close(struct tconn *t)
{
    struct net_worker *wk = t->wk;
    sk_net *n = sk_net_worker_net(wk);
    /* A clean end on both sides keeps the TLS session resumable: OpenSSL drops a
     * session from its cache when SSL_free finds it never shut down. */
    if (t->client_closed)
        (void)SSL_shutdown(t->ssl);
    sk_loop_del(sk_net_worker_loop(wk), &t->tls_w);
    sk_loop_del(sk_net_worker_loop(wk), &t->plain_w);
    sk_net_worker_unlink(wk, t);
    close(t->plain_w.fd); /* the application sees end of stream */
    n->app.close(t->app);
    SSL_free(t->ssl);
    close(t->tls_w.fd);
    sk_net_gen_unref(t->gen);
    free(t->up);
    free(t->down);
    free(t);
    atomic_fetch_sub(&n->ctr->established, 1);
    atomic_fetch_sub(&n->ctr->active, 1);
}

static int need_buf(struct relay_buf **b)
{
    if (*b == NULL && (*b = malloc(sizeof **b)) != NULL)
        (*b)->off = (*b)->len = 0;
    return *b != NULL ? 0 : -1;
}

static void drop_if_empty(struct relay_buf **b)
{
    if (*b != NULL && (*b)->len == 0) {
        free(*b);
        *b = NULL;
    }
}

/* One direction, client -> application. 1 progress, 0 blocked (interest set),
 * -1 the client is gone. */
static int move_up(struct tconn *t, uint32_t *tls_ev, uint32_t *plain_ev)
{
    int progress = 0;
    for (;;) {
        if (t->plain_eof || t->app_stopped_reading) {
            if (t->up != NULL)
                t->up->len = 0; /* nobody left to read it */
            drop_if_empty(&t->up);
            return progress;
        }
        if (t->up == NULL || t->up->len == 0) {
            int r, e;
            if (need_buf(&t->up) != 0)
                return -1;
            ERR_clear_error();
            r = SSL_read(t->ssl, t->up->data, sizeof t->up->data);
            if (r <= 0) {
                e = SSL_get_error(t->ssl, r);
                if (e == SSL_ERROR_WANT_READ)
                    *tls_ev |= EPOLLIN;
                else if (e == SSL_ERROR_WANT_WRITE)
                    *tls_ev |= EPOLLOUT;
                else {
                    t->client_closed = e == SSL_ERROR_ZERO_RETURN;
                    return -1;
                }
                drop_if_empty(&t->up);
                return progress;
            }
            t->up->off = 0;
            t->up->len = (size_t)r;
        }
        while (t->up->len > 0) {
            ssize_t w = send(t->plain_w.fd, t->up->data + t->up->off, t->up->len, MSG_NOSIGNAL);
            if (w < 0) {
                if (errno == EAGAIN || errno == EINTR) {
                    *plain_ev |= EPOLLOUT;
                    return progress;
                }
                t->app_stopped_reading = 1; /* what it wrote still goes out */
                break;
            }
            t->up->off += (size_t)w;
            t->up->len -= (size_t)w;
            progress = 1;
        }
    }
}

/* Application -> client. 1 progress, 0 blocked, -1 the client is gone. */
static int move_down(struct tconn *t, uint32_t *tls_ev, uint32_t *plain_ev)
{
    int progress = 0;
    for (;;) {
        if (t->down == NULL || t->down->len == 0) {
            ssize_t r;
            if (t->plain_eof)
                return progress;
            if (need_buf(&t->down) != 0)
                return -1;
            r = recv(t->plain_w.fd, t->down->data, sizeof t->down->data, 0);
            if (r <= 0) {
                if (r < 0 && (errno == EAGAIN || errno == EINTR))
                    *plain_ev |= EPOLLIN;
                else
                    t->plain_eof = 1;
                drop_if_empty(&t->down);
                return progress;
            }
            t->down->off = 0;
            t->down->len = (size_t)r;
        }
        while (t->down->len > 0) {
            int w, e;
            ERR_clear_error();
            w = SSL_write(t->ssl, t->down->data + t->down->off, (int)t->down->len);
            if (w <= 0) {
                e = SSL_get_error(t->ssl, w);
                if (e == SSL_ERROR_WANT_WRITE)
                    *tls_ev |= EPOLLOUT;
                else if (e == SSL_ERROR_WANT_READ)
                    *tls_ev |= EPOLLIN;
                else
                    return -1;
                return progress;
            }
            t->down->off += (size_t)w;
            t->down->len -= (size_t)w;
            progress = 1;
        }
    }
}

static int set_interest(struct tconn *t, sk_loop_watch *w, uint32_t *have, uint32_t want)
{
    if (*have == want)
        return 0;
    if (sk_loop_mod(sk_net_worker_loop(t->wk), w, want) != 0)
        return -1;
    *have = want;
    return 0;
}

/* Runs both directions until neither can move, then waits for exactly what blocked. */
static void pump(struct tconn *t)
{
    uint32_t tls_ev, plain_ev;
    int up, down;
    do {
        tls_ev = plain_ev = 0;
        up = move_up(t, &tls_ev, &plain_ev);
        down = up < 0 ? -1 : move_down(t, &tls_ev, &plain_ev);
    } while (up > 0 || down > 0);
    if (up < 0 || down < 0) {
        sk_net_conn_close(t); /* the client is gone: nothing more can be delivered */
        return;
    }
    if (t->plain_eof && (t->down == NULL || t->down->len == 0)) {
        (void)SSL_shutdown(t->ssl); /* best effort: close_notify, never waited for */
        sk_net_conn_close(t);
        return;
    }
    if (set_interest(t, &t->tls_w, &t->tls_ev, tls_ev) != 0 ||
        set_interest(t, &t->plain_w, &t->plain_ev, plain_ev) != 0)
        sk_net_conn_close(t);
}

static void on_tls(sk_loop_watch *w, uint32_t events)
{
    (void)events;
    pump(of_tls(w));
}

static void on_plain(sk_loop_watch *w, uint32_t events)
{
    (void)events;
    pump(of_plain(w));
}

int sk_net_conn_idle(const struct tconn *t)
{
    return (t->up == NULL || t->up->len == 0) && (t->down == NULL || t->down->len == 0) &&
           !sk_net_worker_net(t->wk)->app.busy(t->app);
}

int sk_net_conn_start(struct net_worker *wk, void *wctx, int fd, SSL *ssl, sk_conn *c, sk_tlsgen *gen)
{
    sk_net *n = sk_net_worker_net(wk);
    struct tconn *t = calloc(1, sizeof *t);
    int sv[2] = { -1, -1 };

    if (t == NULL || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) != 0) {
        free(t);
        free(c);
        goto fail;
    }
    t->wk = wk;
    t->ssl = ssl;
    t->gen = gen;
    t->tls_w.fd = fd;
    t->tls_w.on_event = on_tls;
    t->plain_w.fd = sv[1];
    t->plain_w.on_event = on_plain;
    /* The application owns sv[0] and c from here on, success or not. */
    t->app = n->app.open(wctx, sv[0], c);
    if (t->app == NULL) {
        close(sv[1]);
        free(t);
        goto fail;
    }
    t->tls_ev = EPOLLIN;
    t->plain_ev = EPOLLIN;
    if (sk_loop_add(sk_net_worker_loop(wk), &t->tls_w, t->tls_ev) != 0 ||
        sk_loop_add(sk_net_worker_loop(wk), &t->plain_w, t->plain_ev) != 0) {
        sk_loop_del(sk_net_worker_loop(wk), &t->tls_w);
        close(sv[1]);
        n->app.close(t->app);
        free(t);
        goto fail;
    }
    sk_net_worker_link(wk, t);
    /* Bytes that came with the end of the handshake may already wait inside OpenSSL. */
    pump(t);
    return 0;
fail:
    SSL_free(ssl);
    close(fd);
    sk_net_gen_unref(gen);
    return -1;
}
