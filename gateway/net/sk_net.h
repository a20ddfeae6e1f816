/*
 * sk_net.h — the TLS front of the gateway (OpenSSL).
 *
 * OpenSSL owns every client socket: it runs the handshake, requires and verifies the
 * client certificate against [tls] client_ca (+ CRL), and only then hands the plaintext
 * stream to the HTTP layer through one end of a socketpair. The verified identity and
 * the TCP peer address travel beside that stream in an sk_conn, never in a header.
 *
 * The engine: [listen] workers threads, each an epoll loop (gateway/engine/), accept
 * from one listening socket and run every TLS handshake without blocking. Before a
 * client has completed its handshake it holds no thread and no TLS memory until it
 * sends a byte; unfinished handshakes are limited per address
 * ([listen] handshakes_per_address), per worker (half the connection limit in all),
 * by [listen] handshake_timeout, and are the first closed when the connection limit
 * is reached. Only a connection that presented a valid certificate gets a relay.
 *
 * Contracts:
 *  - A connection past its handshake stays on the worker that accepted it: the
 *    worker relays TLS records to and from the application's socketpair end in its
 *    loop, and runs the application there (one HTTP engine per worker). An sk_conn
 *    is handed to the application with the connection; its identity fields are
 *    immutable after the handshake.
 *  - sk_net_reload() builds a complete new TLS context (certificates, CA, CRL) and
 *    swaps it in only if everything loaded; on any failure the running one stays.
 *    Established connections keep working; the revocation set is consulted per
 *    request through sk_net_serial_revoked(), so a reload also cuts off live
 *    connections and resumed TLS sessions of a newly revoked certificate.
 */
#ifndef SK_NET_H
#define SK_NET_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>

#include "sk_conf.h"
#include "sk_loop.h"
#include "sk_util.h"

typedef struct sk_conn {
    struct sockaddr_storage peer;
    socklen_t peer_len;
    char peer_str[64];        /* "192.0.2.1" / "2001:db8::1" */
    char user[65];            /* certificate subject CN */
    char tenant[64];          /* certificate subject O */
    char serial[67];          /* certificate serial, uppercase hex */
    char sni[256];            /* server name the client asked for, "" if none */
    int resumed;              /* TLS session was resumed */
} sk_conn;


/* The application that speaks over the decrypted stream (the HTTP layer). Every
 * callback runs on the thread of the worker that owns the connection; nothing is
 * shared between workers but what the application shares itself.
 *  worker_open:    on the worker's thread before its loop runs; returns the worker's
 *                  application context (NULL: the gateway does not start). It may
 *                  register watches in loop.
 *  worker_run:     on every loop round: do what is ready (resumed requests, timers)
 *                  and return the ms until it must run again at the latest (-1: none).
 *  worker_pending: requests still waiting for work off the loop; the worker does not
 *                  end (or free anything they use) while this is non-zero.
 *  worker_close:   after the last connection of the worker ended.
 *  open:           after the handshake: adopt plain_fd (the application's end of the
 *                  socketpair) and c (the application frees it); returns the
 *                  connection context, or NULL to drop the connection (plain_fd and
 *                  c then released by the application too).
 *  busy:           1 while a request or a WebSocket is in progress (drain keeps it).
 *  close:          the TLS side is gone; the context stays the application's until
 *                  its own side has ended too. */
typedef struct sk_net_app {
    void *(*worker_open)(void *arg, sk_loop *loop);
    int (*worker_run)(void *wctx);
    int (*worker_pending)(void *wctx);
    void (*worker_close)(void *wctx);
    void *(*open)(void *wctx, int plain_fd, sk_conn *c);
    int (*busy)(void *cctx);
    void (*close)(void *cctx);
    void *arg;
} sk_net_app;

typedef struct sk_net sk_net;

/* Observers for the audit log; called from pump and watcher threads. */
typedef struct sk_net_hooks {
    /* A handshake was refused. reason: revoked, expired, not_yet_valid, unknown_ca,
     * no_cert, bad_subject, handshake_failed. serial may be NULL. */
    void (*refused)(void *arg, const char *peer, const char *reason, const char *serial);
    /* Certificates/CRL were (re)loaded (ok = 1) or a reload failed (ok = 0). */
    void (*reloaded)(void *arg, int ok, size_t revoked, const char *why);
    void *arg;
} sk_net_hooks;

int sk_net_create(const sk_conf *conf, const sk_net_app *app, sk_net **out) SK_MUST_CHECK;
/* Set before sk_net_start. */
void sk_net_set_hooks(sk_net *n, const sk_net_hooks *hooks);
/* Accept on fd (a bound, listening TCP socket the monitor opened) instead of
 * binding [listen] address at start; the net module owns fd afterwards. */
void sk_net_use_listener(sk_net *n, int fd);
/* Bind (unless a listener was given) and start the accept thread. */
int sk_net_start(sk_net *n) SK_MUST_CHECK;
/* Reload server certificate, client CA and CRL. */
int sk_net_reload(sk_net *n) SK_MUST_CHECK;
/* 1 if the serial (uppercase hex, as in sk_conn) is on the current CRL. */
int sk_net_serial_revoked(sk_net *n, const char *serial_hex);
/* 0 while the CRL is past its nextUpdate: every request must then be refused. A
 * watcher thread reloads the CRL when its file changes and mails the operators
 * ([notify] operators) [tls] crl_warn_before ahead of expiry and when it expires. */
int sk_net_crl_usable(sk_net *n);
/* Stop accepting; connections end after their request in flight (idle ones at
 * once); wait up to grace seconds for that, then close the rest. Returns the number
 * of connections that had to be cut (0 when all ended in time). */
int sk_net_stop(sk_net *n, int grace_seconds);
void sk_net_destroy(sk_net *n);
/* TLS session-ticket keys, newest first: tickets are issued under keys[0] and
 * accepted under any (net_tickets.c). The caller (the network process) gets them
 * from authd so that every process and node shares them, sets them before
 * sk_net_start and again whenever they rotate. Nothing is issued or resumed until
 * they are set. 0, or -1 for a count outside 1..SK_NET_TICKET_KEYS_MAX. */
#define SK_NET_TICKET_KEYS_MAX 3
#define SK_NET_TICKET_NAME_LEN 16
typedef struct sk_net_ticket_key {
    unsigned char name[SK_NET_TICKET_NAME_LEN];
    unsigned char aes[32];
    unsigned char hmac[32];
} sk_net_ticket_key;
int sk_net_set_ticket_keys(sk_net *n, const sk_net_ticket_key *keys, unsigned count) SK_MUST_CHECK;
/* Load-only check used by `sekisho -t`: builds the TLS context and discards it. */
int sk_net_check_conf(const sk_conf *conf, char *err, size_t errlen) SK_MUST_CHECK;

/* The automatic connection limit never exceeds this (memory, not descriptors, is
 * then the bound that matters). */
#define SK_NET_MAX_CONNECTIONS_AUTO 100000u

/* Refusals before a client is past its handshake, by reason: names[i] and counts[i]
 * for i < the returned number (SK_NET_REFUSAL_KINDS). */
#define SK_NET_REFUSAL_KINDS 13
size_t sk_net_refusal_stats(sk_net *n, const char *const **names, uint64_t *counts);

struct sk_net_stats {
    uint64_t accepted, handshakes_ok, handshakes_failed, resumed, active, refused_busy;
    uint64_t refused_address;    /* over [listen] handshakes_per_address */
    uint64_t shed;               /* unfinished handshakes closed to make room */
    uint64_t handshake_timeouts; /* unfinished past [listen] handshake_timeout */
    uint64_t probes;             /* closed by the client before sending a byte */
    uint64_t established;        /* connections past the handshake, now */
    uint64_t max_connections;    /* the effective limit */
    int64_t crl_next_update;     /* epoch seconds, 0 = no CRL */
    int64_t server_not_after;    /* epoch seconds of the server certificate's expiry */
    int64_t ca_not_after;        /* ... of the client CA certificate's */
};
void sk_net_get_stats(sk_net *n, struct sk_net_stats *out);

/* ---- several network processes ([listen] processes) --------------------------
 * They share the listening socket; each runs sk_net_process_workers() workers and
 * allows its share of max_connections. Their counters live in memory the monitor
 * maps MAP_SHARED before forking, one sk_net_counters per process slot, so that
 * any process can report the sum. Counters only grow, across restarts of a
 * process (the replacement adds to its slot); the gauges (active, established,
 * max_conns) describe the running process and start from 0 with it. Nothing
 * secret is in there. */
struct sk_net_counters {
    atomic_uint_fast64_t accepted, hs_ok, hs_failed, resumed, refused_busy, refused_addr, shed, hs_timeout,
        probes;
    atomic_uint_fast64_t refusals[SK_NET_REFUSAL_KINDS]; /* by reason (net.c refusal_names) */
    atomic_int active;             /* gauge: every open client connection */
    atomic_int established;        /* gauge: of which past the handshake */
    atomic_uint max_conns;         /* gauge: this process's connection limit */
};
struct sk_admit;
/* Workers of one network process: [listen] workers (default one per CPU) divided
 * among [listen] processes, at least 1. */
uint32_t sk_net_process_workers(const sk_conf *conf);
/* Count into ctr and admit with a (shared) table instead of the process's own;
 * both stay the caller's. Before sk_net_start. */
void sk_net_set_shared(sk_net *n, struct sk_net_counters *ctr, struct sk_admit *admit);
/* A new process in a slot: its gauges start from 0. */
void sk_net_counters_restart(struct sk_net_counters *c);
/* Add c's counters and gauges to out (the fields sk_net_get_stats takes from the
 * counters) and its refusals to refusals[SK_NET_REFUSAL_KINDS]. */
void sk_net_counters_add(const struct sk_net_counters *c, struct sk_net_stats *out, uint64_t *refusals);

#endif
