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
    /* Queue a mail; must not block. to = NULL means the operators, routed and marked
     * by level (enum sk_notify_level); a mail to a user is SK_NOTIFY_PERSONAL. May be
     * NULL: no mail. */
    void (*notify)(void *arg, const char *to, int level, const char *subject, const char *body);
    void *notify_arg;
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
/* Free; only after every connection has ended (sk_net_stop returned 0). */
void sk_http_destroy(sk_http *h);

#endif
