/*
 * sk_authd.h — authd, the process that alone holds the secrets of the accounts.
 *
 * authd owns the store (users with their password hashes and sealed TOTP secrets,
 * lockout counters, sessions), the TOTP key and the argon2 pool. It decides logins,
 * password changes, TOTP enrolment and activations, and alone mints sessions. It
 * has no network socket: it answers typed requests (wire/sk_wire_auth.h) on the
 * channels the monitor gave it, one thread per channel, each request checked
 * against the permit table before it is decoded.
 *
 * What a network worker can get from authd (its threat model):
 *  - the public part of a user record (LOOKUP): never the hash, the TOTP secret or
 *    the activation hash (the wire codec has no field for them);
 *  - a session token only from LOGIN, i.e. only with that user's password (and TOTP
 *    code) for the certificate identity it names;
 *  - the TOTP enrolment text (base32 + URI) of a user it names: it must show it to
 *    the user; the secret stays sealed in the store, and a new enrolment only
 *    becomes active with a code from it (confirm);
 *  - ending a session whose hash it knows, touching its last_seen;
 *  - the CSRF and TLS ticket keys (KEYS): the network side's own secrets, shared
 *    through the store so that every process and node can serve every client.
 *
 * Server side: sk_authd_run serves the channels until *stop. Client side (in the
 * network process): sk_authd_call does one typed round trip.
 *
 * Contracts: int results are 0 / documented values / -1, SK_MUST_CHECK.
 */
#ifndef SK_AUTHD_H
#define SK_AUTHD_H

#include "sk_audit.h"
#include "sk_auth.h"
#include "sk_conf.h"
#include "sk_policy.h"
#include "sk_store.h"
#include "sk_wire_auth.h"

typedef struct sk_authd {
    sk_store *store;
    sk_auth_pool *pool;             /* argon2 runs here */
    const sk_auth_config *cfg;
    sk_policy_config pol;
    /* Shared with the network process (read-only there): the store's generation
     * (sk_store_generation), published after every request and every 50 ms, so that
     * the workers' cache of LOOKUP answers drops what any writer (sekishoctl too)
     * changed. NULL: not published. */
    volatile uint64_t *generation;
    /* Seconds a TLS ticket key issues tickets before the next one takes over
     * (SK_WIRE_AUTH_KEYS); 0: one hour. */
    int64_t ticket_rotate;
    /* For the burst alarm: its audit entry and the operators' mail ([notify]).
     * NULL: the alarm is only logged. */
    const sk_conf *conf;
    sk_audit *audit;
    /* The store stopped answering (authd_health.c); atomics. */
    int store_down;
    int64_t store_alarm_at;
} sk_authd;

/* Publish the store's generation (see sk_authd.generation). */
void sk_authd_publish(sk_authd *a);

/* The handler of every authd request (an sk_wire_handler; ctx is sk_authd *). */
int sk_authd_handle(void *ctx, enum sk_wire_peer peer, const sk_wire_msg *msg, sk_wire_w *w);

/* Serve n channels (peer class SK_WIRE_PEER_NET), one thread each, until *stop is
 * set and every thread has seen it (at most 200 ms), or every channel reached EOF.
 * 0, or -1 when a thread could not start (the others are stopped and joined). */
int sk_authd_run(sk_authd *a, const int *fds, unsigned n, volatile int *stop) SK_MUST_CHECK;

/* Client: encode req (the request struct of type), call, decode the reply struct
 * into rep. Returns the reply's status (>= 0, or an SK_WIRE_ERR_* the server
 * answered), or -1 when the round trip failed (authd unreachable or restarted,
 * undecodable reply). timeout_ms < 0: no limit. */
int sk_authd_call(sk_wire_client *c, uint16_t type, const void *req, void *rep, int timeout_ms) SK_MUST_CHECK;

/* ---- the process -------------------------------------------------------- */

typedef struct sk_authd_env {
    const int *fds;        /* authd's ends of the channels from the network process */
    unsigned n;
    sk_audit *audit;       /* where the sweep's entries go */
    void (*ready)(void *arg);   /* called once the channels are served (may be NULL) */
    void *ready_arg;
    const char *restarted_after;  /* why the previous authd died ("" or NULL: first start) */
    volatile uint64_t *generation;  /* shared page (see sk_authd.generation), may be NULL */
    /* Lock the process in (sk_sandbox): called once the store is open and before the
     * first thread starts; non-zero ends authd. May be NULL. */
    int (*sandbox)(void *arg);
    void *sandbox_arg;
} sk_authd_env;

/* authd's process body: opens the store and the argon2 pool, serves the channels,
 * runs the dormancy sweep daily (first after a minute); SIGTERM ends it. Returns
 * the exit status. */
int sk_authd_main(const sk_conf *conf, const sk_authd_env *env);

#endif
