/*
 * Sessions of the PostgreSQL backend: one row per SHA-256(token), in plain
 * columns, so that a touch, a sweep or the end of a user's sessions is one SQL
 * statement. Every column read back is checked as the record codec checks a
 * session record.
 */
#include <string.h>

#include "store_pg_int.h"

/* Columns of ST_SESS_GET / ST_SESS_LIST: hash, then SESS_COLS. */
static int row_to_session(const PGresult *r, int i, sk_session *out)
{
    int role = -1;
    memset(out, 0, sizeof *out);
    if (PQgetisnull(r, i, 0) || PQgetlength(r, i, 0) != SK_SESSION_HASH_LEN ||
        sk_pg_get_text(r, i, 1, out->tenant, sizeof out->tenant) != 0 ||
        sk_pg_get_text(r, i, 2, out->user, sizeof out->user) != 0 || sk_pg_get_int2(r, i, 3, &role) != 0 ||
        sk_pg_get_text(r, i, 4, out->cert_serial, sizeof out->cert_serial) != 0 ||
        sk_pg_get_int8(r, i, 5, &out->created) != 0 || sk_pg_get_int8(r, i, 6, &out->last_seen) != 0 ||
        PQgetisnull(r, i, 7) || PQgetlength(r, i, 7) != SK_CSRF_LEN || role < SK_ROLE_GENERAL ||
        role > SK_ROLE_ADMIN || !sk_store_valid_id(out->user) || !sk_store_valid_tenant(out->tenant))
        goto bad;
    out->role = (enum sk_role)role;
    memcpy(out->hash, PQgetvalue(r, i, 0), SK_SESSION_HASH_LEN);
    memcpy(out->csrf, PQgetvalue(r, i, 7), SK_CSRF_LEN);
    return 0;
bad:
    sk_wipe(out, sizeof *out);
    return -1;
}

/* 1 if the string is NUL-terminated within cap bytes (fields of a caller's struct). */
static int terminated(const char *s, size_t cap)
{
    return memchr(s, '\0', cap) != NULL;
}

int sk_pg_session_put(void *impl, const sk_session *ss)
{
    pg_store *s = impl;
    pg_params p = { 0 };
    pg_conn *c;
    int ret = -1;

    if (s->readonly)
        return sk_pg_refuse_readonly(s, "put session");
    if (!terminated(ss->user, sizeof ss->user) || !terminated(ss->tenant, sizeof ss->tenant) ||
        !terminated(ss->cert_serial, sizeof ss->cert_serial) || !sk_store_valid_id(ss->user) ||
        !sk_store_valid_tenant(ss->tenant) || ss->role < SK_ROLE_GENERAL || ss->role > SK_ROLE_ADMIN) {
        sk_pg_log(s, "session record out of range");
        return -1;
    }
    if ((c = sk_pg_acquire(s, "put session")) == NULL)
        return -1;
    sk_pg_p_bytes(&p, ss->hash, SK_SESSION_HASH_LEN);
    sk_pg_p_text(&p, ss->tenant);
    sk_pg_p_text(&p, ss->user);
    sk_pg_p_int2(&p, (int)ss->role);
    sk_pg_p_text(&p, ss->cert_serial);
    sk_pg_p_int8(&p, ss->created);
    sk_pg_p_int8(&p, ss->last_seen);
    sk_pg_p_bytes(&p, ss->csrf, SK_CSRF_LEN);
    if (sk_pg_exec_count(s, c, ST_SESS_PUT, &p, "put session") == 1) {
        sk_pg_bump(s);
        ret = SK_STORE_OK;
    }
    sk_pg_release(s, c);
    return ret;
}

static int get_session(pg_store *s, pg_conn *c, const uint8_t *hash, sk_session *out, const char *op)
{
    pg_params p = { 0 };
    PGresult *r = NULL;
    int ret = -1;
    sk_pg_p_bytes(&p, hash, SK_SESSION_HASH_LEN);
    if (sk_pg_exec(s, c, ST_SESS_GET, &p, op, &r) != 0)
        goto out;
    if (PQntuples(r) == 0) {
        ret = SK_STORE_NOTFOUND;
    } else if (row_to_session(r, 0, out) != 0) {
        sk_pg_log(s, "session record is corrupt");
    } else {
        ret = SK_STORE_OK;
    }
out:
    sk_pg_clear_wipe(r); /* the CSRF secret */
    return ret;
}

int sk_pg_session_get(void *impl, const uint8_t hash[SK_SESSION_HASH_LEN], sk_session *out)
{
    pg_store *s = impl;
    pg_conn *c = sk_pg_acquire(s, "get session");
    int ret;
    if (c == NULL)
        return -1;
    ret = get_session(s, c, hash, out, "get session");
    sk_pg_release(s, c);
    return ret;
}

/* A one-statement write: rows affected (>= 0) or -1; the generation advances
 * when a row changed. */
static int write_count(pg_store *s, enum pg_stmt st, const pg_params *p, const char *op)
{
    pg_conn *c;
    int n;
    if (s->readonly)
        return sk_pg_refuse_readonly(s, op);
    if ((c = sk_pg_acquire(s, op)) == NULL)
        return -1;
    n = sk_pg_exec_count(s, c, st, p, op);
    sk_pg_release(s, c);
    if (n > 0)
        sk_pg_bump(s);
    return n;
}

int sk_pg_session_delete(void *impl, const uint8_t hash[SK_SESSION_HASH_LEN])
{
    pg_params p = { 0 };
    int n;
    sk_pg_p_bytes(&p, hash, SK_SESSION_HASH_LEN);
    n = write_count(impl, ST_SESS_DELETE, &p, "delete session");
    return n < 0 ? -1 : n == 0 ? SK_STORE_NOTFOUND : SK_STORE_OK;
}

int sk_pg_session_touch_every(void *impl, const uint8_t hash[SK_SESSION_HASH_LEN], int64_t now,
                              int64_t interval)
{
    pg_store *s = impl;
    pg_params p = { 0 };
    sk_session ss;
    pg_conn *c;
    int ret, n;

    if (interval < 1)
        interval = 1;
    if ((c = sk_pg_acquire(s, "touch session")) == NULL)
        return -1;
    /* Most requests stop here: one read, no write. */
    ret = get_session(s, c, hash, &ss, "touch session");
    sk_pg_release(s, c);
    if (ret != SK_STORE_OK || now <= ss.last_seen || now - ss.last_seen < interval)
        goto out;
    if (now < INT64_MIN + interval)
        goto out; /* no last_seen is old enough */
    /* The UPDATE re-checks the age, so concurrent touches write once and
     * last_seen never moves back; 0 rows means another writer was first (or
     * the session ended meanwhile, which its next lookup sees). */
    sk_pg_p_bytes(&p, hash, SK_SESSION_HASH_LEN);
    sk_pg_p_int8(&p, now);
    sk_pg_p_int8(&p, now - interval);
    n = write_count(s, ST_SESS_TOUCH, &p, "touch session");
    ret = n < 0 ? -1 : SK_STORE_OK;
out:
    sk_wipe(&ss, sizeof ss);
    return ret;
}

int sk_pg_session_delete_user(void *impl, const char *tenant, const char *id)
{
    pg_params p = { 0 };
    if (!sk_store_valid_tenant(tenant) || !sk_store_valid_id(id))
        return 0;
    sk_pg_p_text(&p, tenant);
    sk_pg_p_text(&p, id);
    sk_pg_p_null(&p);
    return write_count(impl, ST_SESS_DELETE_USER_EXCEPT, &p, "delete the user's sessions");
}

int sk_pg_session_delete_all(void *impl)
{
    return write_count(impl, ST_SESS_DELETE_ALL, NULL, "delete all sessions");
}

int sk_pg_session_sweep(void *impl, int64_t idle_timeout, int64_t absolute_timeout, int64_t now)
{
    pg_params p = { 0 };
    /* "now - t >= timeout" as "t <= now - timeout", computed here without
     * overflow; a bound that cannot be represented matches nothing */
    if (idle_timeout > 0 && now >= INT64_MIN + idle_timeout)
        sk_pg_p_int8(&p, now - idle_timeout);
    else
        sk_pg_p_null(&p);
    if (absolute_timeout > 0 && now >= INT64_MIN + absolute_timeout)
        sk_pg_p_int8(&p, now - absolute_timeout);
    else
        sk_pg_p_null(&p);
    return write_count(impl, ST_SESS_SWEEP, &p, "sweep sessions");
}

int sk_pg_session_list(void *impl, int (*cb)(const sk_session *sess, void *ctx), void *ctx)
{
    pg_store *s = impl;
    PGresult *r = NULL;
    pg_conn *c;
    sk_session ss;
    int ret = -1;

    if ((c = sk_pg_acquire(s, "list sessions")) == NULL)
        return -1;
    /* one snapshot, fetched whole before cb runs (see sk_pg_user_list) */
    if (sk_pg_exec(s, c, ST_SESS_LIST, NULL, "list sessions", &r) != 0) {
        sk_pg_release(s, c);
        return -1;
    }
    sk_pg_release(s, c);
    memset(&ss, 0, sizeof ss);
    for (int i = 0; i < PQntuples(r); i++) {
        if (row_to_session(r, i, &ss) != 0) {
            sk_log(SK_LOG_WARN, "store: skipping unreadable session record");
            continue;
        }
        int rc = cb(&ss, ctx);
        if (rc != 0) {
            ret = rc;
            goto out;
        }
    }
    ret = 0;
out:
    sk_wipe(&ss, sizeof ss);
    sk_pg_clear_wipe(r);
    return ret;
}
