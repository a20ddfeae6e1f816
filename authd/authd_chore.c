/* authd_chore.c — node-wide chores (the daily dormancy sweep) run by one node at a
 * time, and not again before they are due, however many nodes share the store.
 *
 * A chore's claim is a shared value: who holds it (a random id of this authd),
 * until when (a lease: a node that dies mid-chore blocks the others only until it
 * runs out), and when the chore last completed. Claiming is an atomic
 * read-modify-write, so of several nodes asking at once exactly one gets it. The
 * chore's own steps must still be safe to repeat (the sweep's are: each step is
 * committed per account before its mail is sent), because a lease can run out
 * under a node that is merely slow.
 *
 * Value format: 01 | holder (16) | lease_until (i64) | last_done (i64), little-endian.
 */
#include <string.h>

#include "authd_int.h"

#define CHORE_VERSION 1
#define CHORE_LEN (1 + 16 + 8 + 8)

struct claim {
    const uint8_t *me;
    int64_t now, every, lease;
    int release;       /* 0: claim; 1: done; 2: give up without completing */
};

static int claim_fn(uint8_t *v, size_t *len, int exists, void *ctx)
{
    const struct claim *c = ctx;
    int64_t lease_until = 0, last_done = 0;
    int mine = 0;

    if (exists && *len == CHORE_LEN && v[0] == CHORE_VERSION) {
        mine = memcmp(v + 1, c->me, 16) == 0;
        lease_until = authd_get_i64(v + 17);
        last_done = authd_get_i64(v + 25);
    } /* anything else: treated as free (a claim is only an optimisation of work) */
    if (c->release) {
        if (!mine)
            return 1; /* the lease ran out and someone else holds it now */
        if (c->release == 1)
            last_done = c->now;
        lease_until = 0;
    } else {
        if (lease_until > c->now && !mine)
            return 1; /* another node is at it */
        if (last_done > 0 && c->now - last_done < c->every && c->now >= last_done)
            return 1; /* done recently enough, by anyone */
        lease_until = c->now + c->lease;
    }
    v[0] = CHORE_VERSION;
    memcpy(v + 1, c->me, 16);
    authd_put_i64(v + 17, lease_until);
    authd_put_i64(v + 25, last_done);
    *len = CHORE_LEN;
    return 0;
}

int authd_chore_claim(sk_authd *a, const char *name, const uint8_t me[16], int64_t every, int64_t lease)
{
    struct claim c = { me, authd_now(), every, lease, 0 };
    int rc = sk_store_value_update(a->store, name, claim_fn, &c);
    return rc == SK_STORE_OK ? 1 : rc == SK_STORE_VETO ? 0 : -1;
}

int authd_chore_release(sk_authd *a, const char *name, const uint8_t me[16], int completed)
{
    struct claim c = { me, authd_now(), 0, 0, completed ? 1 : 2 };
    int rc = sk_store_value_update(a->store, name, claim_fn, &c);
    return rc == SK_STORE_OK || rc == SK_STORE_VETO ? 0 : -1;
}
