/* Activation links: a new account chooses its first password through a single-use,
 * time-limited link, so that no password ever travels by mail. See sk_auth.h. */
#include "sk_auth.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

struct set_link {
    const uint8_t *hash;
    int64_t expires;
};

static int set_link_fn(sk_user *u, void *ctx)
{
    const struct set_link *l = ctx;
    memcpy(u->activation_hash, l->hash, sizeof u->activation_hash);
    u->activation_expires = l->expires;
    return 0;
}

int sk_auth_activation_new(sk_store *store, const char *tenant, const char *id, int64_t expires,
                           uint8_t token[SK_AUTH_ACTIVATION_TOKEN_LEN])
{
    uint8_t hash[SHA256_DIGEST_LENGTH];
    struct set_link l = { hash, expires };
    int rc;
    if (sk_random(token, SK_AUTH_ACTIVATION_TOKEN_LEN) != 0)
        return -1;
    SHA256(token, SK_AUTH_ACTIVATION_TOKEN_LEN, hash);
    /* Replaces any earlier link: the newest one sent is the only one that works. */
    rc = sk_store_user_update(store, tenant, id, set_link_fn, &l);
    if (rc != SK_STORE_OK)
        sk_wipe(token, SK_AUTH_ACTIVATION_TOKEN_LEN);
    return rc == SK_STORE_OK ? 0 : rc == SK_STORE_NOTFOUND ? SK_STORE_NOTFOUND : -1;
}

struct use_link {
    uint8_t hash[SHA256_DIGEST_LENGTH];
    const char *pw_hash;
    int64_t now;
};

/* Inside the store's write transaction: the link must be the account's current one,
 * unexpired; it is spent in the same commit that sets the password. */
static int use_link_fn(sk_user *u, void *ctx)
{
    const struct use_link *l = ctx;
    if (u->activation_expires == 0 || l->now >= u->activation_expires ||
        CRYPTO_memcmp(u->activation_hash, l->hash, sizeof l->hash) != 0)
        return 1;
    if (sk_strlcpy(u->pw_hash, sizeof u->pw_hash, l->pw_hash) != 0)
        return 1;
    u->password_changed = l->now;
    u->failures = 0;
    u->locked_until = 0;
    u->flags &= ~SK_USER_F_MUST_CHANGE_PW;
    memset(u->activation_hash, 0, sizeof u->activation_hash);
    u->activation_expires = 0;
    return 0;
}

int sk_auth_activate(const sk_auth_config *cfg, sk_store *store, const char *tenant, const char *id,
                     const uint8_t token[SK_AUTH_ACTIVATION_TOKEN_LEN], const char *pw, size_t pw_len, int64_t now,
                     sk_policy_pw_result *why)
{
    sk_policy_config pc;
    struct use_link l;
    char encoded[SK_AUTH_ENCODED_MAX];
    int rc = -1;

    *why = SK_POLICY_PW_OK;
    memset(&l, 0, sizeof l);
    if (pw_len > SK_AUTH_PASSWORD_MAX)
        return SK_AUTH_ACTIVATION_REFUSED;
    sk_auth_policy_config(cfg, &pc);
    *why = sk_policy_password_check(&pc, pw, pw_len, id, strlen(id));
    if (*why != SK_POLICY_PW_OK)
        return SK_AUTH_ACTIVATION_REFUSED;
    if (sk_auth_hash_password(&cfg->params, pw, pw_len, encoded, sizeof encoded) != 0)
        goto out;
    SHA256(token, SK_AUTH_ACTIVATION_TOKEN_LEN, l.hash);
    l.pw_hash = encoded;
    l.now = now;
    switch (sk_store_user_update(store, tenant, id, use_link_fn, &l)) {
    case SK_STORE_OK:
        rc = 0;
        break;
    case SK_STORE_NOTFOUND:
    case SK_STORE_VETO:
        rc = SK_AUTH_ACTIVATION_INVALID;
        break;
    default:
        rc = -1;
    }
out:
    sk_wipe(encoded, sizeof encoded);
    sk_wipe(&l, sizeof l);
    return rc;
}

int sk_auth_activation_valid(sk_store *store, const char *tenant, const char *id,
                             const uint8_t token[SK_AUTH_ACTIVATION_TOKEN_LEN], int64_t now)
{
    uint8_t hash[SHA256_DIGEST_LENGTH];
    sk_user u;
    int ok;
    if (sk_store_user_get(store, tenant, id, &u) != SK_STORE_OK)
        return 0;
    SHA256(token, SK_AUTH_ACTIVATION_TOKEN_LEN, hash);
    ok = u.activation_expires != 0 && now < u.activation_expires &&
         CRYPTO_memcmp(u.activation_hash, hash, sizeof hash) == 0;
    sk_wipe(&u, sizeof u);
    return ok;
}
