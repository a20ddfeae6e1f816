/*
 * sk_store_backend.h — what a storage backend implements (internal to store/).
 *
 * Callers never see this: they use sk_store.h, whose functions (store/store.c)
 * dispatch through the ops table of the handle. A backend supplies one
 * `const sk_store_ops` and an open function that returns its private handle
 * (impl); store.c wraps the pair into an sk_store.
 *
 * Every op has the contract of the sk_store.h function of the same name, with
 * `impl` in place of the store handle, and these additions:
 *  - Value names reach a backend already validated (store.c checks them).
 *  - Arguments are as the caller passed them: a backend validates tenant and
 *    user IDs itself (an invalid ID names nobody: SK_STORE_NOTFOUND, or 0 for
 *    session_delete_user and user_list) and never trusts them as key material
 *    before that.
 *  - A handle opened read-only refuses every write op with -1 (and logs it).
 *  - Errors of the database are logged by the backend (once, with its own
 *    message); the caller only reports which operation failed.
 *  - Secrets in records (password hash, TOTP blobs, CSRF key) are wiped from
 *    the backend's own buffers before returning and never logged.
 *  - All ops are callable from several threads at once on one handle.
 *
 * Derived in store.c for every backend, so no backend implements them:
 * sk_store_user_update (user_update_ex with no session ending) and
 * sk_store_session_touch (session_touch_every with SK_SESSION_TOUCH_INTERVAL).
 *
 * Every member is required (store.c does not check for NULL); a backend that
 * cannot offer change notification returns -1 from change_fd.
 */
#ifndef SK_STORE_BACKEND_H
#define SK_STORE_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include "sk_store.h"

typedef struct sk_store_ops {
    const char *name; /* as in [store] backend */
    void (*close)(void *impl);

    int (*user_get)(void *impl, const char *tenant, const char *id, sk_user *out);
    int (*user_put_new)(void *impl, const sk_user *u);
    int (*user_delete)(void *impl, const char *tenant, const char *id);
    int (*user_list)(void *impl, const char *tenant, int (*cb)(const sk_user *u, void *ctx), void *ctx);
    int (*user_update_ex)(void *impl, const char *tenant, const char *id,
                          int (*fn)(sk_user *u, int *end_sessions, void *ctx), void *ctx, const uint8_t *keep,
                          int *ended);
    int (*user_delete_if)(void *impl, const char *tenant, const char *id,
                          int (*pred)(const sk_user *u, void *ctx), void *ctx);

    int (*value_get)(void *impl, const char *name, uint8_t *buf, size_t cap, size_t *len);
    int (*value_update)(void *impl, const char *name,
                        int (*fn)(uint8_t *val, size_t *len, int exists, void *ctx), void *ctx);

    int (*timing_pad)(void *impl);
    uint64_t (*generation)(void *impl);
    int (*change_fd)(void *impl);

    int (*session_put)(void *impl, const sk_session *sess);
    int (*session_get)(void *impl, const uint8_t hash[SK_SESSION_HASH_LEN], sk_session *out);
    int (*session_delete)(void *impl, const uint8_t hash[SK_SESSION_HASH_LEN]);
    int (*session_touch_every)(void *impl, const uint8_t hash[SK_SESSION_HASH_LEN], int64_t now,
                               int64_t interval);
    int (*session_delete_user)(void *impl, const char *tenant, const char *id);
    int (*session_list)(void *impl, int (*cb)(const sk_session *sess, void *ctx), void *ctx);
    int (*session_sweep)(void *impl, int64_t idle_timeout, int64_t absolute_timeout, int64_t now);
    int (*session_delete_all)(void *impl);
} sk_store_ops;

/* Wrap a backend's open handle into an sk_store (store.c). On success *out owns
 * impl; on failure (-1, out of memory) impl has been closed with ops->close. */
int sk_store_wrap(const sk_store_ops *ops, void *impl, sk_store **out) SK_MUST_CHECK;

#endif
