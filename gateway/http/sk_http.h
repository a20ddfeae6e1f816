/*
 * sk_http.h — the HTTP layer of the gateway (libmicrohttpd on the decrypted stream).
 *
 * It receives plaintext connections from sk_net (one socketpair end each, with the
 * verified certificate identity beside it), serves the /.sekisho/ pages (login, logout, health,
 * metrics) itself and proxies everything else to the upstream once the request
 * carries a valid session bound to the same certificate.
 *
 * Contracts:
 *  - sk_http_worker_* and sk_http_conn_* are the sk_net_app hooks; conn_open owns the
 *    fd and the sk_conn it is given.
 *  - Identity reaches the upstream only from the certificate and the session, never
 *    from client headers: every client-sent X-Sekisho-* and forwarding header is
 *    removed (any case, '_' or '-') before the gateway sets its own.
 *  - A session is valid only with the certificate (tenant, CN, serial) it was made
 *    with, inside the idle and absolute timeouts, and while that serial is not on
 *    the current CRL.
 */
#ifndef SK_HTTP_H
#define SK_HTTP_H

#include "sk_audit.h"
#include "sk_auth.h"
#include "sk_authd.h"
#include "sk_conf.h"
#include "sk_net.h"
#include "sk_proxy.h"
#include "sk_store.h"
#include "sk_util.h"

typedef struct sk_http sk_http;

/* What /metrics counts, per network process, in memory the monitor maps MAP_SHARED
 * before forking (sk_net.h explains why). Counters only grow across restarts of a
 * process; the gauges (inflight, auth_waiting, audit_queue, audit_oldest_ms) are the
 * running process's and start from 0 with it. The last five are other modules' own
 * numbers, published by the process about once a second (sk_http_publish). */
#define SK_HTTP_HIST_BUCKETS 12
struct sk_http_hist {
    atomic_uint_fast64_t bucket[SK_HTTP_HIST_BUCKETS]; /* non-cumulative */
    atomic_uint_fast64_t count, sum_us;
};
struct sk_http_counters {
    atomic_uint_fast64_t requests, proxied, upstream_errors, login_ok, login_fail, login_busy, session_rejected,
        revoked_refused, lookup_hits, audit_errors, store_errors, login_unavailable, lookup_outage_served;
    atomic_int inflight;
    atomic_uint_fast64_t refused_total[2];
    atomic_uint_fast64_t login_fail_reason[SK_AUTH_R_COUNT_];
    struct sk_http_hist lat_request, lat_upstream, lat_login;
    atomic_uint_fast64_t auth_waiting, auth_rejected_busy, audit_queue, mail_errors;
    atomic_int_fast64_t audit_oldest_ms;
};
/* One network process's slot. */
typedef struct sk_http_slot {
    struct sk_net_counters net;
    struct sk_http_counters http;
} sk_http_slot;

typedef struct sk_http_deps {
    const sk_conf *conf;
    sk_wire_client *authd; /* authd: accounts and sessions (sk_authd.h) */
    /* The store generation authd publishes (shared page; see http_lookup.c). NULL:
     * no cache, every request asks authd. */
    const volatile uint64_t *authd_generation;
    sk_auth_pool *auth;
    const sk_auth_config *auth_cfg; /* TOTP key path, password rules */
    sk_proxy *proxy;
    sk_net *net;          /* may be set after create with sk_http_set_net() */
    sk_audit *audit;      /* may be NULL: no audit log (tests of the HTTP layer only) */
    /* The key of the stateless CSRF tokens (SK_CSRF_LEN bytes), the same in every
     * network process and node (authd's KEYS), so a form shown by one is accepted
     * by any. NULL: a random key of this process (tests of the HTTP layer). */
    const uint8_t *csrf_key;
} sk_http_deps;

int sk_http_create(const sk_http_deps *deps, sk_http **out) SK_MUST_CHECK;
void sk_http_set_net(sk_http *h, sk_net *net);
/* The pool that runs request jobs that wait (set before the first connection). */
void sk_http_set_auth_pool(sk_http *h, sk_auth_pool *pool);
/* The sk_net_app hooks (see sk_net.h): one libmicrohttpd daemon per network
 * worker, run from that worker's loop. */
void *sk_http_worker_open(void *http, sk_loop *loop);
int sk_http_worker_run(void *wctx);
int sk_http_worker_pending(void *wctx);
void sk_http_worker_close(void *wctx);
void *sk_http_conn_open(void *wctx, int fd, sk_conn *c);
int sk_http_conn_busy(void *ctx);
void sk_http_conn_close(void *ctx);
/* Count open sessions and locked accounts for the metrics (walks the store: call it
 * from a housekeeping thread, about once a minute). */
void sk_http_census(sk_http *h);
/* [metrics] listen: a plain-HTTP /metrics and /health listener with a thread of its
 * own (no client certificate there). 0 when it runs or is not configured. */
int sk_http_metrics_start(sk_http *h) SK_MUST_CHECK;
/* Only bind the metrics listener (before a sandbox forbids bind); start later. */
int sk_http_metrics_bind(sk_http *h) SK_MUST_CHECK;
void sk_http_metrics_stop(sk_http *h);
/* Serve [metrics] listen on fd, bound by the monitor and shared by the network
 * processes (the http module owns fd afterwards). Before sk_http_metrics_start. */
void sk_http_metrics_use_listener(sk_http *h, int fd);
/* Several network processes: count into slots[self] and report the sum over all n
 * slots (shared memory, see sk_http_slot). Before the first connection; the slots
 * stay the caller's. */
void sk_http_set_shared(sk_http *h, sk_http_slot *slots, unsigned n, unsigned self);
/* A new process in slot s: its gauges start from 0 (the counters go on). */
void sk_http_slot_restart(sk_http_slot *s);
/* Publish this process's numbers that other modules keep (auth pool, audit queue,
 * mail failures) into its slot; about once a second, from a housekeeping thread. */
void sk_http_publish(sk_http *h);
/* Free; only after every connection has ended (sk_net_stop returned 0). */
void sk_http_destroy(sk_http *h);

#endif
