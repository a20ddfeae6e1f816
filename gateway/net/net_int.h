/*
 * net_int.h — what the parts of the TLS front share (not a public API).
 *
 *   net.c         TLS context generations, CRL and revocation set, identity, refusals
 *   net_worker.c  the engine's workers: accept, admission, non-blocking handshakes,
 *                 drain
 *   net_conn.c    an established connection's relay to the HTTP layer, in the loop
 */
#ifndef SK_NET_INT_H
#define SK_NET_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>

#include <openssl/ssl.h>

#include "sk_net.h"

/* A TLS context generation. Connections keep the generation they were accepted on. */
typedef struct sk_tlsgen {
    atomic_int refs;
    SSL_CTX *ctx;
} sk_tlsgen;

typedef struct sk_revset sk_revset;
struct net_worker;
struct tconn;
struct sk_admit;

struct sk_net {
    const sk_conf *conf;
    sk_net_app app;
    int listen_fd;
    atomic_int stopping;
    int64_t drain_deadline_ms;     /* set with stopping: busy connections get until then */
    atomic_int cut;                /* connections closed at the drain deadline */
    pthread_rwlock_t lock;         /* guards gen and revset pointers */
    sk_tlsgen *gen;
    sk_revset *revset;
    /* the engine */
    struct net_worker *workers;
    uint32_t n_workers, workers_started;
    uint32_t max_conns;            /* effective global connection limit */
    uint32_t hs_per_worker;        /* unfinished handshakes one worker may hold */
    struct sk_admit *admit;
    int admit_owned;               /* 0: the shared table (sk_net_set_shared) */
    struct sk_net_counters *ctr;   /* &own, or this process's slot of the shared ones */
    struct sk_net_counters own;
    atomic_int_fast64_t server_not_after, ca_not_after;   /* of the loaded certificates */
    atomic_uint_fast64_t log_window, log_count;
    /* CRL freshness, maintained by the watcher thread */
    pthread_t watch_thread;
    int watch_started;
    pthread_mutex_t watch_lock;
    pthread_cond_t watch_cond;
    struct stat crl_stat;
    atomic_int crl_stale;
    int64_t warned_for, alarmed_for; /* nextUpdate values already mailed about */
    sk_net_hooks hooks;
    struct net_tickets *tickets;     /* process-wide: tickets survive CRL reloads */
};

/* Ticket keys (net_tickets.c). install: the context issues and opens tickets
 * with t's keys (t outlives the context). */
struct net_tickets;
int net_tickets_create(struct net_tickets **out) SK_MUST_CHECK;
void net_tickets_destroy(struct net_tickets *t);
int net_tickets_install(SSL_CTX *ctx, struct net_tickets *t) SK_MUST_CHECK;

int64_t sk_net_now_ms(void);
int sk_net_set_nonblock(int fd) SK_MUST_CHECK;
/* The current generation, with a reference the caller drops with sk_net_gen_unref. */
sk_tlsgen *sk_net_gen_ref(sk_net *n);
void sk_net_gen_unref(sk_tlsgen *g);
void sk_net_format_peer(sk_conn *c);
/* After a completed handshake: fill c's identity; -1 when the subject is unusable. */
int sk_net_extract_identity(SSL *ssl, sk_conn *c) SK_MUST_CHECK;
/* Audit a refused handshake (aggregated by the audit module). fallback names the
 * reason when OpenSSL's verification result does not. */
void sk_net_report_refusal(sk_net *n, const sk_conn *c, SSL *ssl, const char *fallback);
/* Count a refusal by reason and hand it to the audit hook (aggregated there). */
void sk_net_refused(sk_net *n, const char *peer, const char *reason, const char *serial);
/* One journal line per refused handshake, at most 10 a second. */
void sk_net_log_refusal(sk_net *n, const sk_conn *c, SSL *ssl, const char *what);

/* Workers (net_worker.c). */
int sk_net_workers_start(sk_net *n) SK_MUST_CHECK;
void sk_net_workers_stop(sk_net *n);

/* Established connections (net_conn.c). sk_net_conn_start takes ownership of fd,
 * ssl, c and the generation reference in every case. */
int sk_net_conn_start(struct net_worker *wk, void *wctx, int fd, SSL *ssl, sk_conn *c, sk_tlsgen *gen) SK_MUST_CHECK;
void sk_net_conn_close(struct tconn *t);
/* No bytes in flight and no request or WebSocket in progress. */
int sk_net_conn_idle(const struct tconn *t);

/* What net_conn.c needs of its worker (net_worker.c). */
sk_net *sk_net_worker_net(const struct net_worker *wk);
sk_loop *sk_net_worker_loop(const struct net_worker *wk);
void sk_net_worker_link(struct net_worker *wk, struct tconn *t);
void sk_net_worker_unlink(struct net_worker *wk, struct tconn *t);
/* The list links of a tconn (net_conn.c owns the struct). */
struct tconn **sk_net_conn_prev(struct tconn *t);
struct tconn **sk_net_conn_next(struct tconn *t);

#endif
