/* An established connection's relay: one thread moves bytes between the TLS socket
 * and the socketpair of the HTTP layer and runs that layer (sk_net_app) for it.
 * This is the part of the connection core that still costs a thread per
 * connection; the event-driven workers (net_worker.c) hand a connection here only
 * after it presented a valid certificate. */
#define _GNU_SOURCE
#include "net_int.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#define PUMP_BUF 16384
#define PUMP_STACK (512 * 1024) /* the HTTP handlers run on this thread too */

struct pump {
    sk_net *net;
    int fd;
    SSL *ssl;
    sk_conn *conn;
    sk_tlsgen *gen;
};

struct relay_dir {
    char buf[PUMP_BUF];
    size_t off, len;
};

/* Moves bytes between the TLS socket and the plaintext socketpair and runs the
 * application on the other end, all in this thread, until either side ends, the
 * connection sits idle past request_timeout, or the gateway stops (after the request
 * in flight). Non-blocking both ways, so a slow reader on one side never stalls the
 * other direction. */
static void relay(struct pump *p, int plain, void *app)
{
    struct relay_dir *up = malloc(sizeof *up), *down = malloc(sizeof *down);
    int tls_eof = 0, plain_eof = 0, busy = 0;
    int idle_ms = (int)(p->net->conf->request_timeout * 1000);
    int64_t idle_since = sk_net_now_ms();

    if (up == NULL || down == NULL)
        goto out;
    up->off = up->len = down->off = down->len = 0;
    while (!(plain_eof && down->len == 0) && !tls_eof) {
        short tls_ev = 0, plain_ev = 0;
        int progress = 0, app_fd = -1, app_ms = -1, wait;

        if (up->len == 0) {
            int r = SSL_read(p->ssl, up->buf, sizeof up->buf);
            if (r > 0) {
                up->off = 0;
                up->len = (size_t)r;
                progress = 1;
            } else {
                int e = SSL_get_error(p->ssl, r);
                if (e == SSL_ERROR_WANT_READ)
                    tls_ev |= POLLIN;
                else if (e == SSL_ERROR_WANT_WRITE)
                    tls_ev |= POLLOUT;
                else
                    tls_eof = 1;
            }
        }
        if (up->len > 0) {
            ssize_t w = send(plain, up->buf + up->off, up->len, MSG_NOSIGNAL);
            if (w > 0) {
                up->off += (size_t)w;
                up->len -= (size_t)w;
                progress = 1;
            } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
                plain_ev |= POLLOUT;
            } else {
                break;
            }
        }
        /* The application consumes what was just passed on and produces its answer
         * into the socketpair, which the next step moves out. */
        busy = p->net->app.run(app, &app_fd, &app_ms);
        if (busy < 0)
            plain_eof = 1; /* finished: flush what it wrote, then end */
        if (down->len == 0) {
            ssize_t r = recv(plain, down->buf, sizeof down->buf, 0);
            if (r > 0) {
                down->off = 0;
                down->len = (size_t)r;
                progress = 1;
            } else if (r == 0) {
                plain_eof = 1;
                progress = 1;
            } else if (errno == EAGAIN || errno == EINTR) {
                plain_ev |= POLLIN;
            } else {
                plain_eof = 1;
            }
        }
        if (down->len > 0) {
            int w = SSL_write(p->ssl, down->buf + down->off, (int)down->len);
            if (w > 0) {
                down->off += (size_t)w;
                down->len -= (size_t)w;
                progress = 1;
            } else {
                int e = SSL_get_error(p->ssl, w);
                if (e == SSL_ERROR_WANT_WRITE)
                    tls_ev |= POLLOUT;
                else if (e == SSL_ERROR_WANT_READ)
                    tls_ev |= POLLIN;
                else
                    break;
            }
        }
        if (tls_eof)
            break; /* the client is gone: nothing more can be delivered either way */
        if (progress || busy > 0)
            idle_since = sk_net_now_ms();
        else if (atomic_load(&p->net->stopping) && down->len == 0)
            break; /* draining: an idle keep-alive connection ends now */
        if (progress)
            continue;
        wait = idle_ms - (int)(sk_net_now_ms() - idle_since);
        if (wait <= 0)
            break; /* idle: the HTTP layer's own timeout normally fires first */
        if (app_ms >= 0 && app_ms < wait)
            wait = app_ms;
        if (atomic_load(&p->net->stopping) && wait > 200)
            wait = 200; /* re-check the drain condition */
        {
            struct pollfd pfd[3] = { { .fd = p->fd, .events = tls_ev },
                                     { .fd = plain, .events = plain_ev },
                                     { .fd = app_fd, .events = POLLIN } };
            int r = poll(pfd, app_fd >= 0 ? 3 : 2, wait);
            if (r < 0 && errno != EINTR)
                break;
            if (r > 0 && ((pfd[0].revents & (POLLERR | POLLNVAL)) || (pfd[1].revents & POLLNVAL)))
                break;
        }
    }
    if (plain_eof && !tls_eof)
        (void)SSL_shutdown(p->ssl);
out:
    free(up);
    free(down);
}

static void *pump_main(void *arg)
{
    struct pump *p = arg;
    sk_net *n = p->net;
    void *app = NULL;
    int sv[2] = { -1, -1 };

    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        goto out;
    if (sk_net_set_nonblock(sv[1]) != 0) {
        close(sv[0]);
        goto out;
    }
    /* The application owns sv[0] from here on, success or not. */
    app = n->app.open(n->app.arg, sv[0], p->conn);
    if (app == NULL)
        goto out;
    relay(p, sv[1], app);
    n->app.close(app);
out:
    if (sv[1] >= 0)
        close(sv[1]);
    SSL_free(p->ssl);
    close(p->fd);
    free(p->conn);
    sk_net_gen_unref(p->gen);
    free(p);
    atomic_fetch_sub(&n->established, 1);
    atomic_fetch_sub(&n->active, 1);
    return NULL;
}

int sk_net_pump_start(sk_net *n, int fd, SSL *ssl, sk_conn *c, sk_tlsgen *gen)
{
    struct pump *p = calloc(1, sizeof *p);
    pthread_attr_t attr;
    pthread_t tid;
    int rc = -1, attr_ok = 0;

    if (p == NULL || pthread_attr_init(&attr) != 0)
        goto out;
    attr_ok = 1;
    p->net = n;
    p->fd = fd;
    p->ssl = ssl;
    p->conn = c;
    p->gen = gen;
    (void)pthread_attr_setstacksize(&attr, PUMP_STACK);
    (void)pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&tid, &attr, pump_main, p) != 0)
        goto out;
    rc = 0;
out:
    if (attr_ok)
        pthread_attr_destroy(&attr);
    if (rc != 0) {
        free(p);
        SSL_free(ssl);
        close(fd);
        free(c);
        sk_net_gen_unref(gen);
    }
    return rc;
}
