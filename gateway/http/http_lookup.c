/* http_lookup.c — what a request needs to know about its account and session, from
 * authd, through a small per-thread cache.
 *
 * Every request needs the account's public record (role, flags, allowlist) and, with
 * a session cookie, that session. Asking authd costs a round trip per request; the
 * answers are therefore kept per thread (no lock) for at most HTTP_LOOKUP_TTL_MS and
 * only while the store's generation — published by authd in a page shared with this
 * process after every request it handles and every 50 ms — is the one they were read
 * at. Any change by anybody (a logout here, `sekishoctl session revoke` or `user lock`
 * elsewhere) moves the generation and empties every cache at its next use, so a
 * revoked session is refused within 50 ms. While authd cannot answer (its store
 * unreachable), a session checked within [store] outage_grace is served from here. */
#include "http_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/sha.h>

#define HTTP_LOOKUP_SLOTS 64
#define HTTP_LOOKUP_TTL_MS 5000

struct lookup_slot {
    int used;
    uint64_t generation;
    int64_t fetched_ms;
    sk_wire_lookup_req key;
    sk_wire_lookup_rep rep;
};

struct lookup_cache {
    struct lookup_slot slot[HTTP_LOOKUP_SLOTS];
};

static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void cache_free(void *p)
{
    if (p != NULL)
        sk_wipe(p, sizeof(struct lookup_cache));
    free(p);
}

static void cache_key_make(void)
{
    if (pthread_key_create(&cache_key, cache_free) != 0)
        sk_log(SK_LOG_WARN, "no per-thread lookup cache: every request asks authd");
}

static struct lookup_cache *cache_of_thread(void)
{
    struct lookup_cache *c;
    (void)pthread_once(&cache_once, cache_key_make);
    c = pthread_getspecific(cache_key);
    if (c == NULL) {
        c = calloc(1, sizeof *c);
        if (c != NULL && pthread_setspecific(cache_key, c) != 0) {
            free(c);
            c = NULL;
        }
    }
    return c;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static unsigned slot_of(const sk_wire_lookup_req *q)
{
    /* The session hash is already uniform; without one, hash the identity. */
    uint8_t h[SHA256_DIGEST_LENGTH];
    if (q->has_session)
        return (unsigned)(q->hash[0] | q->hash[1] << 8) % HTTP_LOOKUP_SLOTS;
    if (sk_sha256(&q->who, sizeof q->who, h) != 0)
        return 0; /* only the spread suffers */
    return (unsigned)(h[0] | h[1] << 8) % HTTP_LOOKUP_SLOTS;
}

/* One LOOKUP, answered from the cache when still valid. 0 or -1. */
static int lookup_cached(sk_http *h, const sk_wire_lookup_req *q, sk_wire_lookup_rep *out)
{
    struct lookup_cache *c = h->d.authd_generation != NULL ? cache_of_thread() : NULL;
    struct lookup_slot *s = c != NULL ? &c->slot[slot_of(q)] : NULL;
    uint64_t gen = h->d.authd_generation != NULL ? __atomic_load_n(h->d.authd_generation, __ATOMIC_ACQUIRE) : 0;
    int64_t now = now_ms();

    if (s != NULL && s->used && s->generation == gen && gen != 0 && now - s->fetched_ms < HTTP_LOOKUP_TTL_MS &&
        memcmp(&s->key, q, sizeof *q) == 0) {
        *out = s->rep;
        atomic_fetch_add(&h->ctr->lookup_hits, 1);
        return 0;
    }
    if (http_authd(h, SK_WIRE_AUTH_LOOKUP, q, out) != 0) {
        /* authd or its store is unreachable: a session this thread checked within the
         * last [store] outage_grace seconds is still served (availability over a
         * short database failover); nothing else is. */
        int64_t grace_ms = h->d.conf->store_outage_grace * 1000;
        if (s != NULL && s->used && s->rep.session_found && q->has_session && now - s->fetched_ms < grace_ms &&
            memcmp(&s->key, q, sizeof *q) == 0) {
            *out = s->rep;
            atomic_fetch_add(&h->ctr->lookup_outage_served, 1);
            return 0;
        }
        return -1;
    }
    if (s != NULL) {
        s->used = 1;
        s->generation = gen; /* read before the call: a change meanwhile invalidates */
        s->fetched_ms = now;
        s->key = *q;
        s->rep = *out;
    }
    return 0;
}

/* A session this process just ended must not come back from its own cache before
 * authd's next publication. */
void http_lookup_forget(const uint8_t hash[SK_SESSION_HASH_LEN])
{
    struct lookup_cache *c = cache_of_thread();
    if (c == NULL)
        return;
    for (size_t i = 0; i < HTTP_LOOKUP_SLOTS; i++)
        if (c->slot[i].used && c->slot[i].key.has_session &&
            memcmp(c->slot[i].key.hash, hash, SK_SESSION_HASH_LEN) == 0)
            c->slot[i].used = 0;
}

/* Once per request, before any route: the account's public record and, when the
 * request carries exactly one session cookie, that session. */
int http_lookup(struct req *rq, struct MHD_Connection *mc, const sk_conn *c)
{
    sk_req_session_cookie found = { NULL, 0, 0 };
    uint8_t token[TOKEN_LEN];
    sk_wire_lookup_req q;
    sk_wire_lookup_rep *p = malloc(sizeof *p);
    int rc = -1;

    if (p == NULL)
        return -1;
    memset(&q, 0, sizeof q);
    rq->looked_up = 1;
    if (sk_strlcpy(q.who.tenant, sizeof q.who.tenant, c->tenant) != 0 ||
        sk_strlcpy(q.who.id, sizeof q.who.id, c->user) != 0)
        goto out;
    /* The same parser as the stripper (sk_req_cookie): what counts as the session
     * here is never forwarded. Two session cookies are ambiguous: none. */
    (void)MHD_get_connection_values(mc, MHD_HEADER_KIND, http_find_session_cookie, &found);
    if (found.count == 1 && sk_b64url_decode(found.value, found.len, token, sizeof token) == 0) {
        if (sk_sha256(token, sizeof token, rq->sess_hash) != 0) {
            sk_wipe(token, sizeof token);
            goto out;
        }
        memcpy(q.hash, rq->sess_hash, sizeof q.hash);
        q.has_session = 1;
        rq->have_cookie = 1;
    }
    sk_wipe(token, sizeof token);
    if (lookup_cached(rq->h, &q, p) != 0)
        goto out;
    rq->have_user = p->user_found;
    if (p->user_found)
        rq->user = p->user;
    rq->sess_found = p->session_found;
    if (p->session_found)
        rq->sess = p->session;
    rc = 0;
out:
    sk_wipe(p, sizeof *p);
    free(p);
    return rc;
}
