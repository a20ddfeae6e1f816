/* authd_keys.c — the keys every network process and every gateway node must share:
 * the CSRF token key and the TLS session-ticket keys (see SK_WIRE_AUTH_KEYS).
 *
 * They live in the store as shared values, so that all nodes on one database read
 * the same ones, and are sealed there with the TOTP key (AES-256-GCM, the account
 * being "sekisho-keys"/<value name>): a copy of the database alone does not let
 * anyone forge a form token or decrypt a resumption ticket. Every node therefore
 * needs the same [auth] totp_key file, which TOTP across nodes needs anyway.
 *
 * Creation and rotation happen inside sk_store_value_update, so when several nodes
 * ask at once exactly one creates (or rotates) and the others read its result.
 * A value that does not open with this node's key is an error, never a reason to
 * overwrite it: that would log every other node's clients out of their tickets
 * over and over.
 *
 * Formats (all integers little-endian; version byte first):
 *   http.csrf    01 | sealed(csrf key, 32 bytes)
 *   tls.tickets  01 | n (1..3) | n x { name (16) | created (i64) | len (u8) | sealed(aes 32 | hmac 32) }
 *                newest first; tickets are issued under the first.
 */
#include <string.h>

#include "authd_int.h"

#define KEYS_TENANT "sekisho-keys"
#define CSRF_VALUE "http.csrf"
#define TICKETS_VALUE "tls.tickets"
#define KEYS_VERSION 1
#define TICKET_SECRET_LEN 64
#define TICKET_BLOB_LEN (1 + 12 + TICKET_SECRET_LEN + 16)
#define CSRF_BLOB_LEN (1 + 12 + SK_CSRF_LEN + 16)

struct keys_job {
    const uint8_t *seal_key;
    int64_t now, rotate;
    sk_wire_keys_rep *out;
    int failed;                /* the stored value is malformed or does not open */
};

/* The sealing "account" of a ticket key: bound to its name, so that sealed keys
 * cannot be swapped between entries. */
static int ticket_aad_id(const uint8_t name[SK_WIRE_TICKET_NAME_LEN], char id[64])
{
    static const char hex[] = "0123456789abcdef";
    memcpy(id, "tls.ticket.", 11);
    for (int i = 0; i < SK_WIRE_TICKET_NAME_LEN; i++) {
        id[11 + 2 * i] = hex[name[i] >> 4];
        id[12 + 2 * i] = hex[name[i] & 15];
    }
    id[11 + 2 * SK_WIRE_TICKET_NAME_LEN] = '\0';
    return 0;
}

/* ---- CSRF key ------------------------------------------------------------ */

static int csrf_fn(uint8_t *val, size_t *len, int exists, void *ctx)
{
    struct keys_job *j = ctx;
    size_t got = 0, blob_len = 0;

    if (exists) {
        if (*len != 1 + CSRF_BLOB_LEN || val[0] != KEYS_VERSION ||
            sk_auth_totp_open(j->seal_key, KEYS_TENANT, CSRF_VALUE, val + 1, *len - 1, j->out->csrf,
                              sizeof j->out->csrf, &got) != 0 ||
            got != sizeof j->out->csrf)
            j->failed = 1;
        return 1; /* nothing to write */
    }
    if (sk_random(j->out->csrf, sizeof j->out->csrf) != 0 ||
        sk_auth_totp_seal(j->seal_key, KEYS_TENANT, CSRF_VALUE, j->out->csrf, sizeof j->out->csrf, val + 1,
                          SK_STORE_VALUE_MAX - 1, &blob_len) != 0) {
        j->failed = 1;
        return 1;
    }
    val[0] = KEYS_VERSION;
    *len = 1 + blob_len;
    return 0;
}

/* ---- ticket keys --------------------------------------------------------- */

/* Decode the stored list into out->ticket (newest first); created[] gets the
 * creation times. -1 when malformed or when a key does not open. */
int authd_tickets_parse(const uint8_t *seal_key, const uint8_t *val, size_t len, sk_wire_keys_rep *out,
                        int64_t created[SK_WIRE_TICKET_KEYS_MAX])
{
    size_t off = 2;
    uint32_t n;
    if (len < 2 || val[0] != KEYS_VERSION || val[1] < 1 || val[1] > SK_WIRE_TICKET_KEYS_MAX)
        return -1;
    n = val[1];
    for (uint32_t i = 0; i < n; i++) {
        sk_wire_ticket_key *k = &out->ticket[i];
        uint8_t secret[TICKET_SECRET_LEN];
        char id[64];
        size_t got = 0, blen;
        if (len - off < SK_WIRE_TICKET_NAME_LEN + 8 + 1)
            return -1;
        memcpy(k->name, val + off, SK_WIRE_TICKET_NAME_LEN);
        created[i] = authd_get_i64(val + off + SK_WIRE_TICKET_NAME_LEN);
        blen = val[off + SK_WIRE_TICKET_NAME_LEN + 8];
        off += SK_WIRE_TICKET_NAME_LEN + 8 + 1;
        if (blen > len - off || ticket_aad_id(k->name, id) != 0)
            return -1;
        if (sk_auth_totp_open(seal_key, KEYS_TENANT, id, val + off, blen, secret, sizeof secret, &got) != 0 ||
            got != sizeof secret) {
            sk_wipe(secret, sizeof secret);
            return -1;
        }
        memcpy(k->aes, secret, 32);
        memcpy(k->hmac, secret + 32, 32);
        sk_wipe(secret, sizeof secret);
        off += blen;
    }
    if (off != len)
        return -1;
    out->n_tickets = n;
    return 0;
}

/* A new key in front; the oldest beyond the maximum falls off. */
static int tickets_rotate(struct keys_job *j, int64_t created[])
{
    sk_wire_keys_rep *o = j->out;
    uint32_t keep = o->n_tickets < SK_WIRE_TICKET_KEYS_MAX ? o->n_tickets : SK_WIRE_TICKET_KEYS_MAX - 1;
    memmove(&o->ticket[1], &o->ticket[0], keep * sizeof o->ticket[0]);
    memmove(&created[1], &created[0], keep * sizeof created[0]);
    if (sk_random(o->ticket[0].name, sizeof o->ticket[0].name) != 0 ||
        sk_random(o->ticket[0].aes, sizeof o->ticket[0].aes) != 0 ||
        sk_random(o->ticket[0].hmac, sizeof o->ticket[0].hmac) != 0)
        return -1;
    created[0] = j->now;
    o->n_tickets = keep + 1;
    return 0;
}

static int tickets_encode(const struct keys_job *j, const int64_t created[], uint8_t *val, size_t *len)
{
    size_t off = 2;
    val[0] = KEYS_VERSION;
    val[1] = (uint8_t)j->out->n_tickets;
    for (uint32_t i = 0; i < j->out->n_tickets; i++) {
        const sk_wire_ticket_key *k = &j->out->ticket[i];
        uint8_t secret[TICKET_SECRET_LEN];
        char id[64];
        size_t blen = 0;
        int rc;
        if (off + SK_WIRE_TICKET_NAME_LEN + 8 + 1 + TICKET_BLOB_LEN > SK_STORE_VALUE_MAX ||
            ticket_aad_id(k->name, id) != 0)
            return -1;
        memcpy(val + off, k->name, SK_WIRE_TICKET_NAME_LEN);
        authd_put_i64(val + off + SK_WIRE_TICKET_NAME_LEN, created[i]);
        memcpy(secret, k->aes, 32);
        memcpy(secret + 32, k->hmac, 32);
        rc = sk_auth_totp_seal(j->seal_key, KEYS_TENANT, id, secret, sizeof secret,
                               val + off + SK_WIRE_TICKET_NAME_LEN + 9, TICKET_BLOB_LEN, &blen);
        sk_wipe(secret, sizeof secret);
        if (rc != 0 || blen > 255)
            return -1;
        val[off + SK_WIRE_TICKET_NAME_LEN + 8] = (uint8_t)blen;
        off += SK_WIRE_TICKET_NAME_LEN + 9 + blen;
    }
    *len = off;
    return 0;
}

static int tickets_fn(uint8_t *val, size_t *len, int exists, void *ctx)
{
    struct keys_job *j = ctx;
    int64_t created[SK_WIRE_TICKET_KEYS_MAX + 1] = { 0 };

    j->out->n_tickets = 0;
    if (exists && authd_tickets_parse(j->seal_key, val, *len, j->out, created) != 0) {
        j->failed = 1;
        return 1;
    }
    /* Due when the newest key has served its period. A newest key from the future
     * (a node with a clock ahead) is kept rather than replaced, or nodes whose
     * clocks differ would rotate against each other. */
    if (j->out->n_tickets > 0 && j->now - created[0] < j->rotate)
        return 1;
    if (tickets_rotate(j, created) != 0 || tickets_encode(j, created, val, len) != 0) {
        j->failed = 1;
        return 1;
    }
    return 0;
}

/* ---- the request --------------------------------------------------------- */

static int run_value(sk_authd *a, const char *name, int (*fn)(uint8_t *, size_t *, int, void *),
                     struct keys_job *j)
{
    int rc = sk_store_value_update(a->store, name, fn, j);
    if (j->failed) {
        sk_log(SK_LOG_ERR, "authd: the shared %s in the store is malformed or does not open with this "
                           "node's [auth] totp_key (every node needs the same key file)", name);
        return -1;
    }
    return rc == SK_STORE_OK || rc == SK_STORE_VETO ? 0 : -1;
}

int32_t authd_do_keys(sk_authd *a, void *in, void *out)
{
    sk_wire_keys_rep *p = out;
    uint8_t key[SK_AUTH_TOTP_KEY_LEN];
    struct keys_job j;
    int32_t rc = SK_WIRE_ERR_INTERNAL;
    (void)in;

    memset(&j, 0, sizeof j);
    j.seal_key = key;
    j.now = authd_now();
    j.rotate = a->ticket_rotate > 0 ? a->ticket_rotate : 3600;
    j.out = p;
    if (a->cfg == NULL || a->cfg->totp_key_path[0] == '\0' ||
        sk_auth_totp_key_load(a->cfg->totp_key_path, 1, key) != 0)
        goto out;
    if (run_value(a, CSRF_VALUE, csrf_fn, &j) != 0 || run_value(a, TICKETS_VALUE, tickets_fn, &j) != 0)
        goto out;
    p->rotate_every = j.rotate;
    rc = 0;
out:
    sk_wipe(key, sizeof key);
    return rc;
}
