/* authd_int.h — what authd's own files share (internal to authd/). */
#ifndef AUTHD_INT_H
#define AUTHD_INT_H

#include "sk_authd.h"

/* Little-endian integers of the shared values authd keeps in the store (their
 * encodings are authd's own: burst history, ticket keys, chore claims). */
static inline void authd_put_i64(uint8_t *p, int64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)((uint64_t)v >> (8 * i));
}

static inline int64_t authd_get_i64(const uint8_t *p)
{
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u |= (uint64_t)p[i] << (8 * i);
    return (int64_t)u;
}

/* authd's clock: every decision is taken at authd's time, never a caller's. */
int64_t authd_now(void);

/* SK_WIRE_AUTH_KEYS (authd_keys.c): the shared CSRF and ticket keys, created or
 * rotated in the store as needed. 0 or SK_WIRE_ERR_INTERNAL. */
int32_t authd_do_keys(sk_authd *a, void *in, void *out);

/* The stored ticket key list (authd_keys.c), opened with seal_key into out
 * (newest first) and created[]. 0, or -1 when malformed or a key does not open
 * (out->n_tickets is then not to be used). Exposed for the fuzzer. */
int authd_tickets_parse(const uint8_t *seal_key, const uint8_t *val, size_t len, sk_wire_keys_rep *out,
                        int64_t created[SK_WIRE_TICKET_KEYS_MAX]);

/* Node-wide chores (authd_chore.c). claim: 1 when this authd (me: its random
 * id) may run the chore `name` now, holding it for lease seconds; 0 when another
 * node holds it or it completed less than every seconds ago; -1 when the store
 * failed. release: completed != 0 records the completion; 0 or -1. */
int authd_chore_claim(sk_authd *a, const char *name, const uint8_t me[16], int64_t every,
                      int64_t lease) SK_MUST_CHECK;
int authd_chore_release(sk_authd *a, const char *name, const uint8_t me[16], int completed) SK_MUST_CHECK;

/* An operation failed (authd_health.c). When the store does not answer a probe
 * either: log once, alarm the operators at most every 10 minutes, have
 * authd_store_probe (called from authd's main loop) watch for its return, and
 * give SK_WIRE_ERR_UNAVAILABLE (503). Otherwise the failure was not the store's
 * (memory, a corrupt record): logged, SK_WIRE_ERR_INTERNAL, no alarm. during
 * names the operation ("login", "lookup"). */
int32_t authd_store_trouble(sk_authd *a, const char *during);
void authd_store_probe(sk_authd *a);

/* A failed login or password change (authd_burst.c), for the cluster-wide burst
 * alarm: recorded in the store; the failure that crosses the threshold audits the
 * alarm and mails the operators. Strings may be empty, never NULL. */
typedef struct authd_failure {
    const char *tenant, *id, *peer, *serial;
} authd_failure;
void authd_note_failure(sk_authd *a, const authd_failure *f);
/* The stored form of the burst history (exposed for tests and the fuzzer).
 * decode: 0 or -1 (b emptied); encode: bytes written, 0 when cap is short. */
int authd_burst_decode(const uint8_t *v, size_t len, sk_policy_burst *b);
size_t authd_burst_encode(const sk_policy_config *pol, const sk_policy_burst *b, int64_t now, uint8_t *v,
                          size_t cap);

/* A failure that just locked an account (authd_lockout.c): audited, and told to
 * the operators and to the user's own address (read from the store here, never
 * named by the caller). who: peer and serial may be empty (a password change). */
typedef struct authd_lockout {
    authd_failure who;
    uint32_t failures;
    int64_t locked_until;
} authd_lockout;
void authd_note_lockout(sk_authd *a, const authd_lockout *l);

#endif
