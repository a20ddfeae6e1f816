/*
 * The store's public API (sk_store.h): identifiers, and dispatch of every
 * operation through the backend's ops table (sk_store_backend.h). Nothing here
 * knows which backend it talks to; opening by configuration is in store_conf.c.
 */
#include <stdlib.h>
#include <string.h>

#include "sk_store.h"
#include "sk_store_backend.h"
#include "store_lmdb.h"

struct sk_store {
    const sk_store_ops *ops;
    void *impl;
};

/* ---- identifiers ------------------------------------------------------- */

int sk_store_valid_id(const char *s)
{
    size_t n = strnlen(s, SK_USER_ID_MAX + 1);
    if (n == 0 || n > SK_USER_ID_MAX || s[0] == '.' || s[0] == '-')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '_' || c == '@' || c == '-';
        if (!ok)
            return 0;
    }
    return 1;
}

int sk_store_valid_tenant(const char *s)
{
    size_t n = strnlen(s, SK_TENANT_MAX + 1);
    if (n == 0 || n > SK_TENANT_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return 0;
    }
    return 1;
}

const char *sk_store_role_name(enum sk_role r)
{
    return r == SK_ROLE_ADMIN ? "admin" : "general";
}

int sk_store_role_parse(const char *s, enum sk_role *out)
{
    if (strcmp(s, "admin") == 0) {
        *out = SK_ROLE_ADMIN;
        return 0;
    }
    if (strcmp(s, "general") == 0) {
        *out = SK_ROLE_GENERAL;
        return 0;
    }
    return -1;
}

int sk_store_user_init(sk_user *u, const char *tenant, const char *id)
{
    memset(u, 0, sizeof *u);
    if (!sk_store_valid_tenant(tenant) || !sk_store_valid_id(id))
        return -1;
    if (sk_strlcpy(u->tenant, sizeof u->tenant, tenant) != 0 ||
        sk_strlcpy(u->id, sizeof u->id, id) != 0)
        return -1;
    u->role = SK_ROLE_GENERAL;
    return 0;
}

/* ---- opening and closing ----------------------------------------------- */

int sk_store_wrap(const sk_store_ops *ops, void *impl, sk_store **out)
{
    sk_store *s = calloc(1, sizeof *s);
    *out = NULL;
    if (s == NULL) {
        sk_log(SK_LOG_ERR, "store: out of memory");
        ops->close(impl);
        return -1;
    }
    s->ops = ops;
    s->impl = impl;
    *out = s;
    return 0;
}

int sk_store_open_ex(const char *state_dir, int readonly, size_t map_size, sk_store **out)
{
    void *impl = NULL;
    int rc;

    *out = NULL;
    rc = sk_store_lmdb_open(state_dir, readonly, map_size, &impl);
    if (rc != SK_STORE_OK)
        return rc;
    return sk_store_wrap(&sk_store_lmdb_ops, impl, out);
}

int sk_store_open(const char *state_dir, int readonly, sk_store **out)
{
    return sk_store_open_ex(state_dir, readonly, SK_STORE_MAP_SIZE, out);
}

void sk_store_close(sk_store *s)
{
    if (s == NULL)
        return;
    s->ops->close(s->impl);
    free(s);
}

const char *sk_store_backend_name(const sk_store *s)
{
    return s->ops->name;
}

/* ---- users ------------------------------------------------------------- */

int sk_store_user_get(sk_store *s, const char *tenant, const char *id, sk_user *out)
{
    return s->ops->user_get(s->impl, tenant, id, out);
}

int sk_store_user_put_new(sk_store *s, const sk_user *u)
{
    return s->ops->user_put_new(s->impl, u);
}

int sk_store_user_delete(sk_store *s, const char *tenant, const char *id)
{
    return s->ops->user_delete(s->impl, tenant, id);
}

int sk_store_user_list(sk_store *s, const char *tenant, int (*cb)(const sk_user *u, void *ctx), void *ctx)
{
    return s->ops->user_list(s->impl, tenant, cb, ctx);
}

int sk_store_user_update_ex(sk_store *s, const char *tenant, const char *id,
                            int (*fn)(sk_user *u, int *end_sessions, void *ctx), void *ctx,
                            const uint8_t *keep, int *ended)
{
    return s->ops->user_update_ex(s->impl, tenant, id, fn, ctx, keep, ended);
}

struct plain_update {
    int (*fn)(sk_user *u, void *ctx);
    void *ctx;
};

static int plain_update_fn(sk_user *u, int *end_sessions, void *arg)
{
    struct plain_update *p = arg;
    (void)end_sessions;
    return p->fn(u, p->ctx);
}

int sk_store_user_update(sk_store *s, const char *tenant, const char *id,
                         int (*fn)(sk_user *u, void *ctx), void *ctx)
{
    struct plain_update p = { fn, ctx };
    return sk_store_user_update_ex(s, tenant, id, plain_update_fn, &p, NULL, NULL);
}

int sk_store_user_delete_if(sk_store *s, const char *tenant, const char *id,
                            int (*pred)(const sk_user *u, void *ctx), void *ctx)
{
    return s->ops->user_delete_if(s->impl, tenant, id, pred, ctx);
}

int sk_store_valid_value_name(const char *name)
{
    size_t n = strnlen(name, SK_STORE_VALUE_NAME_MAX + 1);
    if (n == 0 || n > SK_STORE_VALUE_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

int sk_store_value_get(sk_store *s, const char *name, uint8_t *buf, size_t cap, size_t *len)
{
    *len = 0;
    if (!sk_store_valid_value_name(name))
        return -1;
    return s->ops->value_get(s->impl, name, buf, cap, len);
}

int sk_store_value_update(sk_store *s, const char *name,
                          int (*fn)(uint8_t *val, size_t *len, int exists, void *ctx), void *ctx)
{
    if (!sk_store_valid_value_name(name))
        return -1;
    return s->ops->value_update(s->impl, name, fn, ctx);
}

int sk_store_timing_pad(sk_store *s)
{
    return s->ops->timing_pad(s->impl);
}

uint64_t sk_store_generation(sk_store *s)
{
    return s == NULL ? 0 : s->ops->generation(s->impl);
}

int sk_store_change_fd(sk_store *s)
{
    return s == NULL ? -1 : s->ops->change_fd(s->impl);
}

/* ---- sessions ---------------------------------------------------------- */

int sk_store_session_put(sk_store *s, const sk_session *sess)
{
    return s->ops->session_put(s->impl, sess);
}

int sk_store_session_get(sk_store *s, const uint8_t hash[SK_SESSION_HASH_LEN], sk_session *out)
{
    return s->ops->session_get(s->impl, hash, out);
}

int sk_store_session_delete(sk_store *s, const uint8_t hash[SK_SESSION_HASH_LEN])
{
    return s->ops->session_delete(s->impl, hash);
}

int sk_store_session_touch(sk_store *s, const uint8_t hash[SK_SESSION_HASH_LEN], int64_t now)
{
    return sk_store_session_touch_every(s, hash, now, SK_SESSION_TOUCH_INTERVAL);
}

int sk_store_session_touch_every(sk_store *s, const uint8_t hash[SK_SESSION_HASH_LEN], int64_t now,
                                 int64_t interval)
{
    return s->ops->session_touch_every(s->impl, hash, now, interval);
}

int sk_store_session_delete_user(sk_store *s, const char *tenant, const char *id)
{
    return s->ops->session_delete_user(s->impl, tenant, id);
}

int sk_store_session_list(sk_store *s, int (*cb)(const sk_session *sess, void *ctx), void *ctx)
{
    return s->ops->session_list(s->impl, cb, ctx);
}

int sk_store_session_sweep(sk_store *s, int64_t idle_timeout, int64_t absolute_timeout, int64_t now)
{
    return s->ops->session_sweep(s->impl, idle_timeout, absolute_timeout, now);
}

int sk_store_session_delete_all(sk_store *s)
{
    return s->ops->session_delete_all(s->impl);
}
