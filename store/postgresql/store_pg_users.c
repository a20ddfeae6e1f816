/*
 * Users, shared values and the timing pad of the PostgreSQL backend. A user is
 * the versioned record of sk_store.h's codec in a bytea column keyed by
 * (tenant, id); the read-modify-writes run in one transaction holding the
 * row's lock (SELECT ... FOR UPDATE), which serialises writers on every node.
 */
#include <stdatomic.h>
#include <string.h>

#include "store_pg_int.h"

static int valid_key(const char *tenant, const char *id)
{
    return sk_store_valid_tenant(tenant) && sk_store_valid_id(id);
}

static void key_params(pg_params *p, const char *tenant, const char *id)
{
    sk_pg_p_text(p, tenant);
    sk_pg_p_text(p, id);
}

/* Decode the record in row/col of r into *out, checking it is the user the key
 * names. 0 or -1 (logged; *out zeroed). */
static int decode_row(pg_store *s, const PGresult *r, int row, int col, const char *tenant, const char *id,
                      sk_user *out)
{
    const uint8_t *b = (const uint8_t *)PQgetvalue(r, row, col);
    int n = PQgetlength(r, row, col);
    if (PQgetisnull(r, row, col) || n <= 0 || sk_store_user_decode(b, (size_t)n, out) != 0 ||
        strcmp(out->tenant, tenant) != 0 || strcmp(out->id, id) != 0) {
        sk_wipe(out, sizeof *out);
        sk_pg_log(s, "user record %s/%s is corrupt or from a newer version", tenant, id);
        return -1;
    }
    return 0;
}

/* One account's row by statement st (a plain read, or locked FOR UPDATE inside
 * a transaction), decoded into u. SK_STORE_OK, NOTFOUND or -1. */
static int one_user(pg_store *s, pg_conn *c, enum pg_stmt st, const char *tenant, const char *id, sk_user *u,
                    const char *op)
{
    pg_params p = { 0 };
    PGresult *r = NULL;
    int ret = -1;
    key_params(&p, tenant, id);
    if (sk_pg_exec(s, c, st, &p, op, &r) != 0)
        goto out;
    if (PQntuples(r) == 0)
        ret = SK_STORE_NOTFOUND;
    else if (decode_row(s, r, 0, 0, tenant, id, u) == 0)
        ret = SK_STORE_OK;
out:
    sk_pg_clear_wipe(r);
    return ret;
}

int sk_pg_user_get(void *impl, const char *tenant, const char *id, sk_user *out)
{
    pg_store *s = impl;
    pg_conn *c;
    int ret;

    if (!valid_key(tenant, id))
        return SK_STORE_NOTFOUND; /* an invalid ID names nobody */
    if ((c = sk_pg_acquire(s, "get user")) == NULL)
        return -1;
    ret = one_user(s, c, ST_USER_GET, tenant, id, out, "get user");
    sk_pg_release(s, c);
    return ret;
}

static int encode(pg_store *s, const sk_user *u, uint8_t *buf, size_t cap, size_t *len)
{
    if (sk_store_user_encode(u, buf, cap, len) != 0) {
        sk_pg_log(s, "user record out of range");
        return -1;
    }
    return 0;
}

int sk_pg_user_put_new(void *impl, const sk_user *u)
{
    pg_store *s = impl;
    uint8_t buf[SK_USER_RECORD_MAX];
    size_t len = 0;
    pg_params p = { 0 };
    PGresult *r = NULL;
    pg_conn *c = NULL;
    int ret = -1, rc;

    if (s->readonly)
        return sk_pg_refuse_readonly(s, "add user");
    if (!valid_key(u->tenant, u->id) || encode(s, u, buf, sizeof buf, &len) != 0)
        goto out;
    if ((c = sk_pg_acquire(s, "add user")) == NULL)
        goto out;
    key_params(&p, u->tenant, u->id);
    sk_pg_p_bytes(&p, buf, len);
    /* the primary key (same ID) or the lower(id) index (a case variant) */
    rc = sk_pg_exec(s, c, ST_USER_INSERT, &p, "add user", &r);
    if (rc == PG_UNIQUE) {
        ret = SK_STORE_EXISTS;
    } else if (rc == 0) {
        sk_pg_bump(s);
        ret = SK_STORE_OK;
    }
out:
    PQclear(r);
    sk_wipe(buf, sizeof buf); /* holds the password hash and TOTP blob */
    sk_pg_release(s, c);
    return ret;
}

/* Delete the user's sessions except keep (NULL: all); count or -1. */
static int delete_sessions(pg_store *s, pg_conn *c, const char *tenant, const char *id, const uint8_t *keep)
{
    pg_params p = { 0 };
    key_params(&p, tenant, id);
    if (keep != NULL)
        sk_pg_p_bytes(&p, keep, SK_SESSION_HASH_LEN);
    else
        sk_pg_p_null(&p);
    return sk_pg_exec_count(s, c, ST_SESS_DELETE_USER_EXCEPT, &p, "delete the user's sessions");
}

int sk_pg_user_delete(void *impl, const char *tenant, const char *id)
{
    pg_store *s = impl;
    pg_params p = { 0 };
    pg_conn *c;
    int ret = -1, n;

    if (!valid_key(tenant, id))
        return SK_STORE_NOTFOUND;
    if (s->readonly)
        return sk_pg_refuse_readonly(s, "delete user");
    if ((c = sk_pg_acquire(s, "delete user")) == NULL)
        return -1;
    if (sk_pg_begin(s, c, "delete user") != 0)
        goto out;
    key_params(&p, tenant, id);
    n = sk_pg_exec_count(s, c, ST_USER_DELETE, &p, "delete user");
    if (n == 0)
        ret = SK_STORE_NOTFOUND;
    if (n <= 0 || delete_sessions(s, c, tenant, id, NULL) < 0)
        goto out;
    if (sk_pg_commit(s, c, "delete user") == 0)
        ret = SK_STORE_OK;
out:
    sk_pg_rollback(s, c);
    sk_pg_release(s, c);
    return ret;
}

int sk_pg_user_list(void *impl, const char *tenant, int (*cb)(const sk_user *u, void *ctx), void *ctx)
{
    pg_store *s = impl;
    pg_params p = { 0 };
    PGresult *r = NULL;
    pg_conn *c;
    sk_user u;
    char t[SK_TENANT_MAX + 1], id[SK_USER_ID_MAX + 1];
    int ret = -1;

    if (tenant != NULL && !sk_store_valid_tenant(tenant))
        return 0; /* an invalid tenant has no users */
    if ((c = sk_pg_acquire(s, "list users")) == NULL)
        return -1;
    if (tenant != NULL)
        sk_pg_p_text(&p, tenant);
    /* One statement is one snapshot. The whole answer is fetched before cb
     * runs, so the connection is back in the pool and a cb that reads the
     * store cannot starve it. */
    if (sk_pg_exec(s, c, tenant ? ST_USER_LIST_TENANT : ST_USER_LIST, &p, "list users", &r) != 0) {
        sk_pg_release(s, c);
        return -1;
    }
    sk_pg_release(s, c);
    memset(&u, 0, sizeof u);
    for (int i = 0; i < PQntuples(r); i++) {
        if (sk_pg_get_text(r, i, 0, t, sizeof t) != 0 || sk_pg_get_text(r, i, 1, id, sizeof id) != 0 ||
            decode_row(s, r, i, 2, t, id, &u) != 0) {
            sk_log(SK_LOG_WARN, "store: skipping unreadable user record");
            continue;
        }
        int rc = cb(&u, ctx);
        if (rc != 0) {
            ret = rc;
            goto out;
        }
    }
    ret = 0;
out:
    sk_wipe(&u, sizeof u);
    sk_pg_clear_wipe(r);
    return ret;
}

/* Opens a write transaction on one account: the key checked, a connection taken
 * (*c, to be rolled back if not committed, and released, by the caller, also on
 * failure), BEGIN, the row locked and decoded into u. SK_STORE_OK, NOTFOUND, the
 * read-only refusal or -1. */
static int begin_on_user(pg_store *s, const char *tenant, const char *id, sk_user *u, const char *op, pg_conn **c)
{
    *c = NULL;
    if (!valid_key(tenant, id))
        return SK_STORE_NOTFOUND;
    if (s->readonly)
        return sk_pg_refuse_readonly(s, op);
    if ((*c = sk_pg_acquire(s, op)) == NULL || sk_pg_begin(s, *c, op) != 0)
        return -1;
    return one_user(s, *c, ST_USER_GET_LOCK, tenant, id, u, op);
}

int sk_pg_user_update_ex(void *impl, const char *tenant, const char *id,
                         int (*fn)(sk_user *u, int *end_sessions, void *ctx), void *ctx, const uint8_t *keep,
                         int *ended)
{
    pg_store *s = impl;
    uint8_t buf[SK_USER_RECORD_MAX];
    size_t len = 0;
    pg_params p = { 0 };
    pg_conn *c = NULL;
    sk_user u;
    int ret = -1, end = 0, n = 0, rc;

    memset(&u, 0, sizeof u);
    if (ended)
        *ended = 0;
    rc = begin_on_user(s, tenant, id, &u, "update user", &c);
    if (rc != SK_STORE_OK) {
        ret = rc;
        goto out;
    }
    if (fn(&u, &end, ctx) != 0) {
        ret = SK_STORE_VETO;
        goto out;
    }
    if (strcmp(u.tenant, tenant) != 0 || strcmp(u.id, id) != 0) {
        sk_pg_log(s, "update tried to rename a user");
        goto out;
    }
    if (encode(s, &u, buf, sizeof buf, &len) != 0)
        goto out;
    key_params(&p, tenant, id);
    sk_pg_p_bytes(&p, buf, len);
    if (sk_pg_exec_count(s, c, ST_USER_UPDATE, &p, "update user") != 1)
        goto out;
    if (end && (n = delete_sessions(s, c, tenant, id, keep)) < 0)
        goto out;
    if (sk_pg_commit(s, c, "update user") != 0)
        goto out;
    ret = SK_STORE_OK;
    if (ended)
        *ended = n;
out:
    if (c != NULL)
        sk_pg_rollback(s, c);
    sk_pg_release(s, c);
    sk_wipe(&u, sizeof u);
    sk_wipe(buf, sizeof buf);
    return ret;
}

int sk_pg_user_delete_if(void *impl, const char *tenant, const char *id,
                         int (*pred)(const sk_user *u, void *ctx), void *ctx)
{
    pg_store *s = impl;
    pg_params p = { 0 };
    pg_conn *c = NULL;
    sk_user u;
    int ret = -1, rc;

    memset(&u, 0, sizeof u);
    rc = begin_on_user(s, tenant, id, &u, "delete user", &c);
    if (rc != SK_STORE_OK) {
        ret = rc;
        goto out;
    }
    if (pred(&u, ctx) != 0) {
        ret = SK_STORE_VETO;
        goto out;
    }
    key_params(&p, tenant, id);
    if (sk_pg_exec_count(s, c, ST_USER_DELETE, &p, "delete user") != 1 ||
        delete_sessions(s, c, tenant, id, NULL) < 0 || sk_pg_commit(s, c, "delete user") != 0)
        goto out;
    ret = SK_STORE_OK;
out:
    if (c != NULL)
        sk_pg_rollback(s, c);
    sk_pg_release(s, c);
    sk_wipe(&u, sizeof u);
    return ret;
}

/* ---- shared values ------------------------------------------------------ */

/* Copy a value column into buf (capacity cap). 0 or -1 (logged). */
static int take_value(pg_store *s, const PGresult *r, const char *name, uint8_t *buf, size_t cap, size_t *len)
{
    int n = PQgetlength(r, 0, 0);
    if (PQgetisnull(r, 0, 0) || n < 0 || (size_t)n > SK_STORE_VALUE_MAX || (size_t)n > cap) {
        sk_pg_log(s, "value %s is larger than its reader allows", name);
        return -1;
    }
    memcpy(buf, PQgetvalue(r, 0, 0), (size_t)n);
    *len = (size_t)n;
    return 0;
}

int sk_pg_value_get(void *impl, const char *name, uint8_t *buf, size_t cap, size_t *len)
{
    pg_store *s = impl;
    pg_params p = { 0 };
    PGresult *r = NULL;
    pg_conn *c;
    int ret = -1;

    if ((c = sk_pg_acquire(s, "get value")) == NULL)
        return -1;
    sk_pg_p_text(&p, name);
    if (sk_pg_exec(s, c, ST_VALUE_GET, &p, "get value", &r) != 0)
        goto out;
    if (PQntuples(r) == 0)
        ret = SK_STORE_NOTFOUND;
    else if (take_value(s, r, name, buf, cap, len) == 0)
        ret = SK_STORE_OK;
out:
    sk_pg_clear_wipe(r);
    sk_pg_release(s, c);
    return ret;
}

/* Inside a transaction: lock the value's row, creating it when missing. *exists
 * is 0 when this transaction created it (its placeholder is not a value).
 * 0 or -1. */
static int lock_value(pg_store *s, pg_conn *c, const char *name, uint8_t *buf, size_t *len, int *exists)
{
    pg_params p = { 0 };
    PGresult *r = NULL;
    int ret = -1;

    *exists = 0;
    *len = 0;
    sk_pg_p_text(&p, name);
    for (int attempt = 0; attempt < 2; attempt++) {
        if (sk_pg_exec(s, c, ST_VALUE_GET_LOCK, &p, "update value", &r) != 0)
            goto out;
        if (PQntuples(r) == 1) {
            if (take_value(s, r, name, buf, SK_STORE_VALUE_MAX, len) != 0)
                goto out;
            *exists = 1;
            ret = 0;
            goto out;
        }
        PQclear(r);
        r = NULL;
        if (attempt > 0)
            break;
        /* Absent: create it. The row we insert is locked until we commit; when
         * another node created it first, ON CONFLICT waits for its commit and
         * returns nothing, and the next SELECT locks that row. */
        if (sk_pg_exec(s, c, ST_VALUE_CREATE, &p, "create value", &r) != 0)
            goto out;
        if (PQntuples(r) == 1) {
            ret = 0;
            goto out;
        }
        PQclear(r);
        r = NULL;
    }
    sk_pg_log(s, "value %s vanished while being created", name);
out:
    sk_pg_clear_wipe(r);
    return ret;
}

int sk_pg_value_update(void *impl, const char *name,
                       int (*fn)(uint8_t *val, size_t *len, int exists, void *ctx), void *ctx)
{
    pg_store *s = impl;
    uint8_t buf[SK_STORE_VALUE_MAX];
    size_t len = 0;
    pg_params p = { 0 };
    pg_conn *c = NULL;
    int ret = -1, exists = 0;

    if (s->readonly)
        return sk_pg_refuse_readonly(s, "update value");
    memset(buf, 0, sizeof buf);
    if ((c = sk_pg_acquire(s, "update value")) == NULL || sk_pg_begin(s, c, "update value") != 0 ||
        lock_value(s, c, name, buf, &len, &exists) != 0)
        goto out;
    if (fn(buf, &len, exists, ctx) != 0) {
        ret = SK_STORE_VETO;
        goto out;
    }
    if (len > sizeof buf) {
        sk_pg_log(s, "value %s would exceed %d bytes", name, SK_STORE_VALUE_MAX);
        goto out;
    }
    sk_pg_p_text(&p, name);
    sk_pg_p_bytes(&p, buf, len);
    if (sk_pg_exec_count(s, c, ST_VALUE_SET, &p, "update value") != 1 || sk_pg_commit(s, c, "update value") != 0)
        goto out;
    ret = SK_STORE_OK;
out:
    if (c != NULL)
        sk_pg_rollback(s, c);
    sk_pg_release(s, c);
    sk_wipe(buf, sizeof buf);
    return ret;
}

/* The same round trips as a login's counter update: BEGIN, a locked read, a
 * one-row update (which notifies, as a user update does), COMMIT. The slots
 * spread concurrent pads so they do not queue on one row. */
int sk_pg_timing_pad(void *impl)
{
    static _Atomic unsigned next;
    pg_store *s = impl;
    pg_params p = { 0 };
    PGresult *r = NULL;
    pg_conn *c = NULL;
    int ret = -1;

    if (s->readonly)
        return sk_pg_refuse_readonly(s, "timing pad");
    sk_pg_p_int2(&p, (int)(atomic_fetch_add(&next, 1) % 64));
    if ((c = sk_pg_acquire(s, "timing pad")) == NULL || sk_pg_begin(s, c, "timing pad") != 0 ||
        sk_pg_exec(s, c, ST_PAD_LOCK, &p, "timing pad", &r) != 0 ||
        sk_pg_exec_count(s, c, ST_PAD_SET, &p, "timing pad") != 1 || sk_pg_commit(s, c, "timing pad") != 0)
        goto out;
    ret = 0;
out:
    PQclear(r);
    if (c != NULL)
        sk_pg_rollback(s, c);
    sk_pg_release(s, c);
    return ret;
}
