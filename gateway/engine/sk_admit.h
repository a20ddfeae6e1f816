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
 * The limit holds across the network processes together: the table lives in a
 * region the monitor maps MAP_SHARED before forking (sk_admit_region_init), and
 * each process counts in its own column (its slot, sk_admit_attach), so that the
 * column of a process that died can be released (sk_admit_clear_slot) by the
 * monitor or by its replacement. Nothing secret is in it.
 *
 * Contracts: thread- and process-safe (one process-shared robust mutex, held for a
 * probe run only; a process killed while holding it does not wedge the others, the
 * next one empties the table, see admit.c). Every successful sk_admit_enter() is
 * paired with exactly one sk_admit_leave() for the same key. Memory is fixed: a
 * table of 65536 entries that refuses a new address when three quarters are in use
 * (shedding, never growing).
 */
#ifndef SK_ADMIT_H
#define SK_ADMIT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "sk_util.h"

typedef struct sk_admit sk_admit;

#define SK_ADMIT_MAX_SLOTS 64

/* The address a limit applies to. */
typedef struct sk_admit_key {
    uint8_t b[16];
} sk_admit_key;

/* Bytes of a shared region for slots processes (about 20 + 4 x slots bytes per
 * entry, touched lazily). */
size_t sk_admit_region_size(unsigned slots);
/* Lay out the region (zeroed here) at mem: the monitor, before it forks. */
int sk_admit_region_init(void *mem, unsigned slots) SK_MUST_CHECK;
/* A handle on the region for the process in slot self (< slots). */
int sk_admit_attach(void *mem, unsigned slots, unsigned self, uint32_t per_address, sk_admit **out) SK_MUST_CHECK;
/* A private table of its own (one slot): tests, a process on its own. */
int sk_admit_create(uint32_t per_address, sk_admit **out) SK_MUST_CHECK;
/* Frees the handle (and the region when sk_admit_create made it). */
void sk_admit_destroy(sk_admit *a);
/* Forget every handshake counted for slot (a process that died). wait = 0 never
 * blocks (-1 when the lock is taken: its replacement does it). 0 done. */
int sk_admit_clear_slot(sk_admit *a, unsigned slot, int wait) SK_MUST_CHECK;
/* The key of a peer address; -1 for families other than IPv4/IPv6. */
int sk_admit_key_of(const struct sockaddr_storage *ss, sk_admit_key *out) SK_MUST_CHECK;
/* 0 and counted when the address is under its limit; -1 when it is at the limit
 * (or the table is full, or its lock is held too long): the connection must be closed. */
int sk_admit_enter(sk_admit *a, const sk_admit_key *k) SK_MUST_CHECK;
void sk_admit_leave(sk_admit *a, const sk_admit_key *k);
/* Unfinished handshakes currently counted for k (tests and metrics). */
uint32_t sk_admit_count(sk_admit *a, const sk_admit_key *k);

#endif
