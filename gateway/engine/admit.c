/* sk_admit: per-address counters of unfinished handshakes, shared by the network
 * processes. See sk_admit.h. */
#define _GNU_SOURCE
#include "sk_admit.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define ADMIT_CAPACITY 65536u                   /* entries, a power of two */
#define ADMIT_FILL (ADMIT_CAPACITY / 4 * 3)     /* linear probing stays short below this */
#define ADMIT_LOCK_WAIT_NS (100 * 1000 * 1000)  /* see admit_lock */

/* The region's head; ADMIT_CAPACITY entries of admit_stride() bytes follow. */
struct admit_table {
    pthread_mutex_t lock; /* process-shared and robust */
    uint64_t seed;        /* keyed slot choice: a client cannot aim at one probe run */
    uint32_t used;
    uint32_t pad;
};

/* One address: its key, and its unfinished handshakes per process slot. */
struct admit_entry {
    uint8_t key[16];
    uint32_t used;
    uint32_t count[]; /* [slots] */
};

/* A process's handle: everything it trusts (sizes, its slot) is private memory,
 * so that a table another process scribbled on can miscount but never make this
 * one read or write outside the region. */
struct sk_admit {
    struct admit_table *t;
    unsigned char *entries;
    size_t stride, size;
    unsigned slots, self;
    uint32_t per_address;
    uint64_t seed;
    int owned;            /* the region is this handle's (sk_admit_create) */
};

static size_t admit_stride(unsigned slots)
{
    return sizeof(struct admit_entry) + (size_t)slots * sizeof(uint32_t);
}

size_t sk_admit_region_size(unsigned slots)
{
    size_t head = (sizeof(struct admit_table) + 63) & ~(size_t)63;
    return head + (size_t)ADMIT_CAPACITY * admit_stride(slots);
}

static unsigned char *entries_of(void *mem)
{
    return (unsigned char *)mem + ((sizeof(struct admit_table) + 63) & ~(size_t)63);
}

int sk_admit_region_init(void *mem, unsigned slots)
{
    struct admit_table *t = mem;
    pthread_mutexattr_t at;
    int rc = -1;
    if (slots == 0 || slots > SK_ADMIT_MAX_SLOTS)
        return -1;
    memset(mem, 0, sk_admit_region_size(slots));
    if (sk_random(&t->seed, sizeof t->seed) != 0 || pthread_mutexattr_init(&at) != 0)
        return -1;
    if (pthread_mutexattr_setpshared(&at, PTHREAD_PROCESS_SHARED) == 0 &&
        pthread_mutexattr_setrobust(&at, PTHREAD_MUTEX_ROBUST) == 0 && pthread_mutex_init(&t->lock, &at) == 0)
        rc = 0;
    pthread_mutexattr_destroy(&at);
    return rc;
}

int sk_admit_attach(void *mem, unsigned slots, unsigned self, uint32_t per_address, sk_admit **out)
{
    sk_admit *a;
    if (mem == NULL || slots == 0 || slots > SK_ADMIT_MAX_SLOTS || self >= slots)
        return -1;
    a = calloc(1, sizeof *a);
    if (a == NULL)
        return -1;
    a->t = mem;
    a->entries = entries_of(mem);
    a->stride = admit_stride(slots);
    a->size = sk_admit_region_size(slots);
    a->slots = slots;
    a->self = self;
    a->per_address = per_address;
    a->seed = a->t->seed;
    *out = a;
    return 0;
}

int sk_admit_create(uint32_t per_address, sk_admit **out)
{
    size_t size = sk_admit_region_size(1);
    void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        return -1;
    if (sk_admit_region_init(mem, 1) != 0 || sk_admit_attach(mem, 1, 0, per_address, out) != 0) {
        munmap(mem, size);
        return -1;
    }
    (*out)->owned = 1;
    return 0;
}

void sk_admit_destroy(sk_admit *a)
{
    if (a == NULL)
        return;
    if (a->owned) {
        pthread_mutex_destroy(&a->t->lock);
        munmap(a->t, a->size);
    }
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

static size_t home_of(const sk_admit *a, const uint8_t key[16])
{
    /* FNV-1a over the key, mixed with the random seed. */
    uint64_t h = 1469598103934665603ULL ^ a->seed;
    for (size_t i = 0; i < 16; i++) {
        h ^= key[i];
        h *= 1099511628211ULL;
    }
    h ^= h >> 29;
    return (size_t)(h & (ADMIT_CAPACITY - 1));
}

static struct admit_entry *entry(const sk_admit *a, size_t i)
{
    return (struct admit_entry *)(a->entries + (i & (ADMIT_CAPACITY - 1)) * a->stride);
}

static uint64_t total_of(const sk_admit *a, const struct admit_entry *e)
{
    uint64_t sum = 0;
    for (unsigned s = 0; s < a->slots; s++)
        sum += e->count[s];
    return sum;
}

/* A process died holding the lock, perhaps halfway through moving an entry: the
 * table is emptied rather than trusted. The handshakes it counted are forgotten
 * (their leaves find nothing and do nothing), so for at most a handshake_timeout
 * an address may hold more than its limit; it never underflows. */
static void wipe(sk_admit *a)
{
    memset(a->entries, 0, (size_t)ADMIT_CAPACITY * a->stride);
    a->t->used = 0;
}

/* The lock is held for a probe run only. A process that stops while holding it
 * (SIGSTOP, or a compromised one that never lets go) must not stall the others'
 * accept loops: after ADMIT_LOCK_WAIT_NS they give up (and refuse). One that dies
 * holding it is handled by the robust mutex. 0 locked, -1 not. */
static int admit_lock(sk_admit *a, int wait)
{
    struct timespec ts;
    int r;
    if (wait) {
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += ADMIT_LOCK_WAIT_NS;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        r = pthread_mutex_clocklock(&a->t->lock, CLOCK_MONOTONIC, &ts);
    } else {
        r = pthread_mutex_trylock(&a->t->lock);
    }
    if (r == EOWNERDEAD) {
        wipe(a);
        r = pthread_mutex_consistent(&a->t->lock);
    }
    return r == 0 ? 0 : -1;
}

/* Linear probing: the index of k's entry (1), or of the empty entry where it would
 * go (0); -1 when neither is found (a full or scribbled-on table). */
static int find(const sk_admit *a, const sk_admit_key *k, size_t *idx)
{
    size_t i = home_of(a, k->b);
    for (size_t n = 0; n < ADMIT_CAPACITY; n++, i = (i + 1) & (ADMIT_CAPACITY - 1)) {
        const struct admit_entry *e = entry(a, i);
        *idx = i;
        if (!e->used)
            return 0;
        if (memcmp(e->key, k->b, sizeof k->b) == 0)
            return 1;
    }
    return -1;
}

/* Removal without tombstones: later entries of the run move back into the hole
 * when their home does not lie between the hole and them. */
static void remove_at(sk_admit *a, size_t hole)
{
    size_t j = hole;
    for (size_t n = 0; n < ADMIT_CAPACITY; n++) {
        struct admit_entry *e;
        size_t home;
        j = (j + 1) & (ADMIT_CAPACITY - 1);
        e = entry(a, j);
        if (!e->used)
            break;
        home = home_of(a, e->key);
        if ((j > hole && (home <= hole || home > j)) || (j < hole && home <= hole && home > j)) {
            memcpy(entry(a, hole), e, a->stride);
            hole = j;
        }
    }
    memset(entry(a, hole), 0, a->stride);
    if (a->t->used > 0)
        a->t->used--;
}

int sk_admit_enter(sk_admit *a, const sk_admit_key *k)
{
    struct admit_entry *e;
    size_t i = 0;
    int rc = -1, found;
    if (admit_lock(a, 1) != 0)
        return -1;
    found = find(a, k, &i);
    if (found < 0 || (found == 0 && a->t->used >= ADMIT_FILL))
        goto out; /* full: refused, never grown */
    e = entry(a, i);
    if (found == 0) {
        memset(e, 0, a->stride);
        memcpy(e->key, k->b, sizeof k->b);
        e->used = 1;
        a->t->used++;
    }
    if (total_of(a, e) >= a->per_address || e->count[a->self] == UINT32_MAX)
        goto out;
    e->count[a->self]++;
    rc = 0;
out:
    pthread_mutex_unlock(&a->t->lock);
    return rc;
}

void sk_admit_leave(sk_admit *a, const sk_admit_key *k)
{
    size_t i = 0;
    if (admit_lock(a, 1) != 0)
        return;
    if (find(a, k, &i) == 1) {
        struct admit_entry *e = entry(a, i);
        if (e->count[a->self] > 0)
            e->count[a->self]--;
        if (total_of(a, e) == 0)
            remove_at(a, i);
    }
    pthread_mutex_unlock(&a->t->lock);
}

uint32_t sk_admit_count(sk_admit *a, const sk_admit_key *k)
{
    size_t i = 0;
    uint64_t c = 0;
    if (admit_lock(a, 1) != 0)
        return 0;
    if (find(a, k, &i) == 1)
        c = total_of(a, entry(a, i));
    pthread_mutex_unlock(&a->t->lock);
    return c > UINT32_MAX ? UINT32_MAX : (uint32_t)c;
}

int sk_admit_clear_slot(sk_admit *a, unsigned slot, int wait)
{
    if (slot >= a->slots || admit_lock(a, wait) != 0)
        return -1;
    for (size_t i = 0; i < ADMIT_CAPACITY && a->t->used > 0; i++) {
        struct admit_entry *e = entry(a, i);
        if (!e->used || e->count[slot] == 0)
            continue;
        e->count[slot] = 0;
        if (total_of(a, e) == 0) {
            remove_at(a, i);
            i--; /* a later entry may have moved into i: look at it again */
        }
    }
    pthread_mutex_unlock(&a->t->lock);
    return 0;
}
