/*
 * Change notification of the PostgreSQL backend. Every write fires
 * pg_notify('sekisho_store') (triggers, store_pg_schema.c); one thread per
 * handle LISTENs on its own connection and advances the in-memory generation on
 * each notification, and on each (re)connection, since notifications sent while
 * it was away are lost. The thread starts with the first operation (or
 * generation() call) after open, not at open or change_fd(), so a process
 * that forks or sandboxes itself (which may demand a single thread) between
 * opening the store and using it does so before the thread exists.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "store_pg_int.h"

#define IDLE_CHECK_MS 10000 /* a silent LISTEN connection is pinged this often */

int sk_pg_notify_init(pg_store *s)
{
    atomic_store(&s->gen, 1); /* never 0: 0 means "cannot be read" */
    s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->stop_fd < 0) {
        sk_log(SK_LOG_ERR, "store: eventfd: %s", strerror(errno));
        return -1;
    }
    return 0;
}

void sk_pg_bump(pg_store *s)
{
    atomic_fetch_add(&s->gen, 1);
}

/* Wake every change_fd holder; a socket whose reader is gone is closed. */
static void signal_subs(pg_store *s)
{
    (void)pthread_mutex_lock(&s->lmu);
    for (int i = 0; i < s->nsubs;) {
        if (send(s->subs[i], "x", 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno != EAGAIN && errno != EINTR) {
            (void)close(s->subs[i]);
            s->subs[i] = s->subs[--s->nsubs];
            continue;
        }
        i++;
    }
    (void)pthread_mutex_unlock(&s->lmu);
}

static void changed(pg_store *s)
{
    sk_pg_bump(s);
    signal_subs(s);
}

/* Sleep ms unless asked to stop. 1 when stopping. */
static int nap(pg_store *s, int ms)
{
    struct pollfd pf = { .fd = s->stop_fd, .events = POLLIN };
    if (atomic_load(&s->stopping))
        return 1;
    (void)poll(&pf, 1, ms);
    return atomic_load(&s->stopping) != 0;
}

static PGconn *listen_connect(pg_store *s)
{
    PGconn *c = sk_pg_connect(s, "change notification", NULL, 0);
    if (c != NULL && sk_pg_simple(s, c, "LISTEN sekisho_store", "change notification") != 0) {
        PQfinish(c);
        c = NULL;
    }
    return c;
}

/* Drain what arrived on conn: 1 if a notification came, 0 if none, -1 if the
 * connection is gone. */
static int drain(PGconn *conn)
{
    PGnotify *n;
    int got = 0;
    if (!PQconsumeInput(conn) || PQstatus(conn) != CONNECTION_OK)
        return -1;
    while ((n = PQnotifies(conn)) != NULL) {
        got = 1;
        PQfreemem(n);
    }
    return got;
}

static void *listener_main(void *arg)
{
    pg_store *s = arg;
    PGconn *conn = NULL;
    char m[200];

    while (!atomic_load(&s->stopping)) {
        if (conn == NULL) {
            conn = listen_connect(s);
            if (conn == NULL) {
                if (nap(s, PG_DOWN_BACKOFF_MS))
                    break;
                continue;
            }
            atomic_store(&s->listening, 1);
            changed(s); /* what happened while away is unknown */
        }
        struct pollfd pf[2] = { { .fd = PQsocket(conn), .events = POLLIN }, { .fd = s->stop_fd, .events = POLLIN } };
        int n = poll(pf, 2, IDLE_CHECK_MS), got = 0;
        if (atomic_load(&s->stopping))
            break;
        if (n < 0 && errno != EINTR)
            (void)nap(s, 100);
        if (n > 0 && (pf[0].revents & (POLLIN | POLLERR | POLLHUP)))
            got = drain(conn);
        else if (n == 0)
            /* silence: make sure the connection is still there */
            got = sk_pg_simple(s, conn, "SELECT 1", "change notification") == 0 ? drain(conn) : -1;
        if (got > 0) {
            changed(s);
        } else if (got < 0) {
            sk_pg_conn_msg(conn, m, sizeof m);
            sk_pg_log(s, "change notification: lost the connection to PostgreSQL: %s", m);
            PQfinish(conn);
            conn = NULL;
            atomic_store(&s->listening, 0);
            changed(s); /* caches re-read (and see the outage) */
        }
    }
    PQfinish(conn);
    atomic_store(&s->listening, 0);
    return NULL;
}

void sk_pg_ensure_listener(pg_store *s)
{
    sigset_t all, old;
    if (atomic_load(&s->stopping))
        return;
    (void)pthread_mutex_lock(&s->lmu);
    if (!s->listener_started) {
        /* the thread takes no signals: they belong to the process's own threads */
        (void)sigfillset(&all);
        (void)pthread_sigmask(SIG_SETMASK, &all, &old);
        if (pthread_create(&s->listener, NULL, listener_main, s) == 0)
            s->listener_started = 1;
        else
            sk_log(SK_LOG_ERR, "store: cannot start the change notification thread");
        (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    (void)pthread_mutex_unlock(&s->lmu);
}

uint64_t sk_pg_generation(void *impl)
{
    pg_store *s = impl;
    if (s == NULL)
        return 0;
    if (!s->listener_started)
        sk_pg_ensure_listener(s);
    /* without the LISTEN connection, changes of other nodes go unseen */
    if (!atomic_load(&s->listening))
        return 0;
    return atomic_load(&s->gen);
}

int sk_pg_change_fd(void *impl)
{
    pg_store *s = impl;
    int sv[2];
    if (s == NULL)
        return -1;
    /* no thread yet: the caller may sandbox itself between this and its
     * first operation, which starts the listener */
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
        sk_log(SK_LOG_ERR, "store: socketpair: %s", strerror(errno));
        return -1;
    }
    (void)shutdown(sv[0], SHUT_RD);
    (void)pthread_mutex_lock(&s->lmu);
    if (s->nsubs >= PG_MAX_SUBS) {
        (void)pthread_mutex_unlock(&s->lmu);
        sk_log(SK_LOG_ERR, "store: too many change descriptors on one handle (%d)", PG_MAX_SUBS);
        (void)close(sv[0]);
        (void)close(sv[1]);
        return -1;
    }
    s->subs[s->nsubs++] = sv[0];
    (void)pthread_mutex_unlock(&s->lmu);
    return sv[1];
}

void sk_pg_notify_stop(pg_store *s)
{
    uint64_t one = 1;
    int started;
    atomic_store(&s->stopping, 1);
    (void)pthread_mutex_lock(&s->lmu);
    started = s->listener_started;
    (void)pthread_mutex_unlock(&s->lmu);
    if (s->stop_fd >= 0 && write(s->stop_fd, &one, sizeof one) < 0 && errno != EAGAIN)
        sk_log(SK_LOG_WARN, "store: cannot wake the change notification thread: %s", strerror(errno));
    if (started)
        (void)pthread_join(s->listener, NULL);
    (void)pthread_mutex_lock(&s->lmu);
    for (int i = 0; i < s->nsubs; i++)
        (void)close(s->subs[i]);
    s->nsubs = 0;
    (void)pthread_mutex_unlock(&s->lmu);
    if (s->stop_fd >= 0)
        (void)close(s->stop_fd);
    s->stop_fd = -1;
}
