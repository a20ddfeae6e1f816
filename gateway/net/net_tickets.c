/* net_tickets.c — TLS session-ticket keys shared by every network process and node.
 *
 * The keys come from authd (SK_WIRE_AUTH_KEYS), which keeps them in the store, so a
 * ticket issued by one process or node opens on any other: a client that loses its
 * node resumes on the next without a full handshake. New tickets are issued under
 * the newest key; a ticket under an older one still opens and is renewed (callback
 * result 2), until that key falls off the list. Until keys are set nothing is
 * issued and nothing resumes. Keys are replaced as a whole under a write lock; the
 * callback holds the read lock only while it copies what it needs. */
#include "net_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

struct net_tickets {
    pthread_rwlock_t lock;
    unsigned n;
    sk_net_ticket_key k[SK_NET_TICKET_KEYS_MAX];
};

static int tickets_idx = -1;
static pthread_once_t tickets_once = PTHREAD_ONCE_INIT;

static void tickets_idx_init(void)
{
    tickets_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

int net_tickets_create(struct net_tickets **out)
{
    struct net_tickets *t = calloc(1, sizeof *t);
    *out = NULL;
    if (t == NULL)
        return -1;
    if (pthread_rwlock_init(&t->lock, NULL) != 0) {
        free(t);
        return -1;
    }
    *out = t;
    return 0;
}

void net_tickets_destroy(struct net_tickets *t)
{
    if (t == NULL)
        return;
    sk_wipe(t->k, sizeof t->k);
    pthread_rwlock_destroy(&t->lock);
    free(t);
}

int sk_net_set_ticket_keys(sk_net *n, const sk_net_ticket_key *keys, unsigned count)
{
    struct net_tickets *t = n->tickets;
    if (t == NULL || count < 1 || count > SK_NET_TICKET_KEYS_MAX)
        return -1;
    pthread_rwlock_wrlock(&t->lock);
    sk_wipe(t->k, sizeof t->k);
    memcpy(t->k, keys, count * sizeof *keys);
    t->n = count;
    pthread_rwlock_unlock(&t->lock);
    return 0;
}

/* Copy the key to use: the newest (enc), or the one named (dec). Returns its index,
 * or -1 when there is none. */
static int pick_key(struct net_tickets *t, int enc, const unsigned char *name, sk_net_ticket_key *out)
{
    int found = -1;
    pthread_rwlock_rdlock(&t->lock);
    for (unsigned i = 0; i < t->n && found < 0; i++) {
        if (enc || CRYPTO_memcmp(t->k[i].name, name, SK_NET_TICKET_NAME_LEN) == 0) {
            *out = t->k[i];
            found = (int)i;
        }
    }
    pthread_rwlock_unlock(&t->lock);
    return found;
}

static int ticket_cb(SSL *s, unsigned char key_name[16], unsigned char *iv, EVP_CIPHER_CTX *cctx,
                     EVP_MAC_CTX *hctx, int enc)
{
    struct net_tickets *t = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(s), tickets_idx);
    sk_net_ticket_key k;
    OSSL_PARAM params[2];
    int idx, ret = -1;

    /* 0: no ticket issued (enc), or a ticket not ours (dec): the handshake goes
     * on without resumption. -1 would fail the handshake. */
    if (t == NULL)
        return 0;
    idx = pick_key(t, enc, key_name, &k);
    if (idx < 0)
        return 0;
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    if (enc) {
        memcpy(key_name, k.name, SK_NET_TICKET_NAME_LEN);
        if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(EVP_aes_256_cbc())) != 1 ||
            EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k.aes, iv) != 1 ||
            EVP_MAC_init(hctx, k.hmac, sizeof k.hmac, params) != 1)
            goto out;
        ret = 1;
    } else {
        if (EVP_MAC_init(hctx, k.hmac, sizeof k.hmac, params) != 1 ||
            EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k.aes, iv) != 1)
            goto out;
        ret = idx == 0 ? 1 : 2; /* under an older key: accept, and issue a fresh ticket */
    }
out:
    sk_wipe(&k, sizeof k);
    return ret;
}

int net_tickets_install(SSL_CTX *ctx, struct net_tickets *t)
{
    if (pthread_once(&tickets_once, tickets_idx_init) != 0 || tickets_idx < 0)
        return -1;
    if (SSL_CTX_set_ex_data(ctx, tickets_idx, t) != 1)
        return -1;
    return SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb) == 1 ? 0 : -1;
}
