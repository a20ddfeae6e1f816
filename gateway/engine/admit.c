/* sk_admit: per-address counters of unfinished handshakes. See sk_admit.h. */
#include "sk_admit.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define ADMIT_BUCKETS 4096 /* power of two */

struct admit_node {
    struct admit_node *next;
    sk_admit_key key;
    uint32_t count;
};

struct sk_admit {
    pthread_mutex_t lock;
    uint32_t per_address;
    uint64_t seed; /* keyed bucket choice: a client cannot aim at one bucket */
    struct admit_node *buckets[ADMIT_BUCKETS];
};

int sk_admit_create(uint32_t per_address, sk_admit **out)
{
    sk_admit *a = calloc(1, sizeof *a);
    if (a == NULL)
        return -1;
    if (sk_random(&a->seed, sizeof a->seed) != 0 || pthread_mutex_init(&a->lock, NULL) != 0) {
        free(a);
        return -1;
    }
    a->per_address = per_address;
    *out = a;
    return 0;
}

void sk_admit_destroy(sk_admit *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < ADMIT_BUCKETS; i++) {
        struct admit_node *n = a->buckets[i];
        while (n != NULL) {
            struct admit_node *next = n->next;
            free(n);
            n = next;
        }
    }
    pthread_mutex_destroy(&a->lock);
    free(a);
}

int sk_admit_key_of(const struct sockaddr_storage *ss, sk_admit_key *out)
{
    memset(out, 0, sizeof *out);
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        out->b[10] = out->b[11] = 0xff; /* v4-mapped: never equal to a v6 /64 key */
        memcpy(out->b + 12, &in->sin_addr, 4);
        return 0;
    }
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
        const uint8_t *a = in6->sin6_addr.s6_addr;
        static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
        if (memcmp(a, mapped, sizeof mapped) == 0)
            memcpy(out->b, a, 16); /* an IPv4 client on a dual-stack socket */
        else
            memcpy(out->b, a, 8);
        return 0;
    }
    return -1;
}

static size_t bucket_of(const sk_admit *a, const sk_admit_key *k)
{
    /* FNV-1a over the key, mixed with the random seed. */
    uint64_t h = 1469598103934665603ULL ^ a->seed;
    for (size_t i = 0; i < sizeof k->b; i++) {
        h ^= k->b[i];
        h *= 1099511628211ULL;
    }
    h ^= h >> 29;
    return (size_t)(h & (ADMIT_BUCKETS - 1));
}

static struct admit_node **find(sk_admit *a, const sk_admit_key *k)
{
    struct admit_node **p = &a->buckets[bucket_of(a, k)];
    while (*p != NULL && memcmp((*p)->key.b, k->b, sizeof k->b) != 0)
        p = &(*p)->next;
    return p;
}

int sk_admit_enter(sk_admit *a, const sk_admit_key *k)
{
    struct admit_node **p, *n;
    int rc = -1;
    pthread_mutex_lock(&a->lock);
    p = find(a, k);
    if (*p == NULL) {
        n = calloc(1, sizeof *n);
        if (n == NULL)
            goto out;
        n->key = *k;
        *p = n;
    }
    if ((*p)->count >= a->per_address)
        goto out;
    (*p)->count++;
    rc = 0;
out:
    pthread_mutex_unlock(&a->lock);
    return rc;
}

void sk_admit_leave(sk_admit *a, const sk_admit_key *k)
{
    struct admit_node **p, *n;
    pthread_mutex_lock(&a->lock);
    p = find(a, k);
    n = *p;
    if (n != NULL && n->count > 0 && --n->count == 0) {
        *p = n->next;
        free(n);
    }
    pthread_mutex_unlock(&a->lock);
}

uint32_t sk_admit_count(sk_admit *a, const sk_admit_key *k)
{
    struct admit_node *n;
    uint32_t c;
    pthread_mutex_lock(&a->lock);
    n = *find(a, k);
    c = n != NULL ? n->count : 0;
    pthread_mutex_unlock(&a->lock);
    return c;
}
