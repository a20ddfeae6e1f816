/*
 * sk_admit.h — admission of connections that have not finished the TLS handshake.
 *
 * Anybody who reaches the port can open TCP connections without ever presenting a
 * certificate. These counters bound what such connections may hold, so that they
 * can never crowd out a user who has a certificate:
 *  - at most per_address unfinished handshakes per client address (IPv4 address,
 *    or IPv6 /64: one host usually owns a whole /64);
 *  - the engine (net_worker.c) additionally caps unfinished handshakes per worker
 *    and sheds the oldest first when the global connection limit is reached.
 *
 * Contracts: thread-safe (one mutex; held for a hash lookup only). Every successful
 * sk_admit_enter() is paired with exactly one sk_admit_leave() for the same key.
 * Memory is bounded by the number of unfinished handshakes.
 */
#ifndef SK_ADMIT_H
#define SK_ADMIT_H

#include <stdint.h>
#include <sys/socket.h>

#include "sk_util.h"

typedef struct sk_admit sk_admit;

/* The address a limit applies to. */
typedef struct sk_admit_key {
    uint8_t b[16];
} sk_admit_key;

int sk_admit_create(uint32_t per_address, sk_admit **out) SK_MUST_CHECK;
void sk_admit_destroy(sk_admit *a);
/* The key of a peer address; -1 for families other than IPv4/IPv6. */
int sk_admit_key_of(const struct sockaddr_storage *ss, sk_admit_key *out) SK_MUST_CHECK;
/* 0 and counted when the address is under its limit; -1 when it is at the limit
 * (or memory ran out): the connection must be closed. */
int sk_admit_enter(sk_admit *a, const sk_admit_key *k) SK_MUST_CHECK;
void sk_admit_leave(sk_admit *a, const sk_admit_key *k);
/* Unfinished handshakes currently counted for k (tests and metrics). */
uint32_t sk_admit_count(sk_admit *a, const sk_admit_key *k);

#endif
