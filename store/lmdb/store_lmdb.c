/*
 * The LMDB backend of the store: the embedded default for a single node. It
 * implements sk_store_ops (sk_store_backend.h) with the contracts of sk_store.h;
 * how it meets them is told in store_lmdb.h.
 */
#include <errno.h>
#include <lmdb.h>
#include <sys/inotify.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sk_store.h"
#include "sk_store_backend.h"
#include "store_lmdb.h"

#define SCHEMA_VERSION 1u
/* Gateway worker threads plus sekishoctl runs; MDB_NOTLS uses one slot per
 * live read transaction, so this bounds concurrent readers across processes. */
#define MAX_READERS 512
#define KEY_MAX (SK_TENANT_MAX + 1 + SK_USER_ID_MAX)

typedef struct lmdb_store lmdb_store;

struct lmdb_store {
    MDB_env *env;
    MDB_dbi users;
    MDB_dbi sessions;
    MDB_dbi meta;
    int readonly;
};

static void log_mdb(const char *op, int rc)
{
    sk_log(SK_LOG_ERR, "store: %s: %s", op, mdb_strerror(rc));
}

/* "<tenant>\0<id>"; the NUL separator cannot occur in either part, so keys are
 * unambiguous and all users of one tenant are contiguous. */
static int user_key(const char *tenant, const char *id, char buf[KEY_MAX], MDB_val *key)
{
    if (!sk_store_valid_tenant(tenant) || !sk_store_valid_id(id))
        return -1;
    size_t tl = strlen(tenant), il = strlen(id);
    memcpy(buf, tenant, tl);
    buf[tl] = '\0';
    memcpy(buf + tl + 1, id, il);
    key->mv_data = buf;
    key->mv_size = tl + 1 + il;
    return 0;
}

/* ---- environment ------------------------------------------------------- */

static int open_dbis(lmdb_store *s)
{
    MDB_txn *txn = NULL;
    int rc, ret = -1;
    unsigned int dflags = s->readonly ? 0 : MDB_CREATE;

    rc = mdb_txn_begin(s->env, NULL, s->readonly ? MDB_RDONLY : 0, &txn);
    if (rc != 0) {
        log_mdb("begin", rc);
        goto out;
    }
    const char *names[3] = { "users", "sessions", "meta" };
    MDB_dbi *dbis[3] = { &s->users, &s->sessions, &s->meta };
    for (int i = 0; i < 3; i++) {
        rc = mdb_dbi_open(txn, names[i], dflags, dbis[i]);
        if (rc == MDB_NOTFOUND && s->readonly) {
            ret = SK_STORE_NOTFOUND;
            goto out;
        }
        if (rc != 0) {
            log_mdb("open database", rc);
            goto out;
        }
    }

    MDB_val key = { 6, (void *)"schema" }, val;
    rc = mdb_get(txn, s->meta, &key, &val);
    if (rc == MDB_NOTFOUND && !s->readonly) {
        uint8_t v[4] = { SCHEMA_VERSION & 0xff, 0, 0, 0 };
        MDB_val nv = { sizeof v, v };
        rc = mdb_put(txn, s->meta, &key, &nv, 0);
        if (rc != 0) {
            log_mdb("write schema version", rc);
            goto out;
        }
    } else if (rc == MDB_NOTFOUND) {
        ret = SK_STORE_NOTFOUND;
        goto out;
    } else if (rc != 0) {
        log_mdb("read schema version", rc);
        goto out;
    } else {
        const uint8_t *p = val.mv_data;
        uint32_t v = 0;
        if (val.mv_size == 4)
            v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        if (v != SCHEMA_VERSION) {
            sk_log(SK_LOG_ERR, "store: database schema version %u is not supported (expected %u)",
                   v, SCHEMA_VERSION);
            goto out;
        }
    }
    rc = mdb_txn_commit(txn);
    txn = NULL;
    if (rc != 0) {
        log_mdb("commit", rc);
        goto out;
    }
    ret = 0;
out:
    if (txn)
        mdb_txn_abort(txn);
    return ret;
}

static void lmdb_close(void *impl)
{
    lmdb_store *s = impl;
    if (!s)
        return;
    if (s->env)
        mdb_env_close(s->env);
    free(s);
}

int sk_store_lmdb_open(const char *state_dir, int readonly, size_t map_size, void **out)
{
    char path[4096], datafile[4200];
    struct stat st;
    lmdb_store *s = NULL;
    int rc, ret = -1;

    *out = NULL;
    if (sk_snprintf(path, sizeof path, "%s/db", state_dir) != 0 ||
        sk_snprintf(datafile, sizeof datafile, "%s/data.mdb", path) != 0) {
        sk_log(SK_LOG_ERR, "store: state directory path too long");
        goto out;
    }
    if (readonly) {
        if (stat(datafile, &st) != 0) {
            if (errno == ENOENT) {
                ret = SK_STORE_NOTFOUND;
            } else {
                sk_log(SK_LOG_ERR, "store: %s: %s", datafile, strerror(errno));
            }
            goto out;
        }
    } else if (sk_mkdir_p(path, 0700) != 0) {
        sk_log(SK_LOG_ERR, "store: cannot create %s", path);
        goto out;
    }
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        sk_log(SK_LOG_ERR, "store: %s is not a directory", path);
        goto out;
    }

    s = calloc(1, sizeof *s);
    if (!s) {
        sk_log(SK_LOG_ERR, "store: out of memory");
        goto out;
    }
    s->readonly = readonly;
    rc = mdb_env_create(&s->env);
    if (rc != 0) {
        log_mdb("env create", rc);
        s->env = NULL;
        goto out;
    }
    if ((rc = mdb_env_set_maxdbs(s->env, 4)) != 0 ||
        (rc = mdb_env_set_maxreaders(s->env, MAX_READERS)) != 0 ||
        (rc = mdb_env_set_mapsize(s->env, map_size)) != 0) {
        log_mdb("env setup", rc);
        goto out;
    }
    rc = mdb_env_open(s->env, path, MDB_NOTLS | (readonly ? MDB_RDONLY : 0), 0600);
    if (rc != 0) {
        sk_log(SK_LOG_ERR, "store: open %s: %s", path, mdb_strerror(rc));
        goto out;
    }
    /* Free reader slots left behind by processes that died mid-read; stale
     * slots would otherwise keep old pages from being reused. */
    int dead = 0;
    rc = mdb_reader_check(s->env, &dead);
    if (rc != 0)
        log_mdb("reader check", rc);
    else if (dead > 0)
        sk_log(SK_LOG_INFO, "store: cleared %d stale reader slot(s)", dead);
    ret = open_dbis(s);
    if (ret != 0)
        goto out;
    *out = s;
    s = NULL;
out:
    lmdb_close(s);
    return ret;
}

static int begin(lmdb_store *s, int write, MDB_txn **txn)
{
    if (write && s->readonly) {
        sk_log(SK_LOG_ERR, "store: write attempted on a read-only handle");
        return -1;
    }
    int rc = mdb_txn_begin(s->env, NULL, write ? 0 : MDB_RDONLY, txn);
    if (rc != 0) {
        log_mdb("begin transaction", rc);
        *txn = NULL;
        return -1;
    }
    return 0;
}

static int commit(MDB_txn *txn)
{
    int rc = mdb_txn_commit(txn);
    if (rc != 0) {
        log_mdb("commit", rc);
        return -1;
    }
    return 0;
}

/* ---- users ------------------------------------------------------------- */

static int lmdb_user_get(void *impl, const char *tenant, const char *id, sk_user *out)
{
    lmdb_store *s = impl;
    char kb[KEY_MAX];
    MDB_val key, val;
    MDB_txn *txn = NULL;
    int rc, ret = -1;

    if (user_key(tenant, id, kb, &key) != 0)
        return SK_STORE_NOTFOUND; /* an invalid ID names nobody */
    if (begin(s, 0, &txn) != 0)
        goto out;
    rc = mdb_get(txn, s->users, &key, &val);
    if (rc == MDB_NOTFOUND) {
        ret = SK_STORE_NOTFOUND;
        goto out;
    }
    if (rc != 0) {
        log_mdb("get user", rc);
        goto out;
    }
    if (sk_store_user_decode(val.mv_data, val.mv_size, out) != 0) {
        sk_log(SK_LOG_ERR, "store: user record %s/%s is corrupt or from a newer version",
               tenant, id);
        goto out;
    }
    ret = SK_STORE_OK;
out:
    if (txn)
        mdb_txn_abort(txn);
    return ret;
}

static int put_user(lmdb_store *s, MDB_txn *txn, const sk_user *u, unsigned int flags)
{
    uint8_t buf[SK_USER_RECORD_MAX];
    char kb[KEY_MAX];
    MDB_val key, val;
    size_t len = 0;
    int rc, ret = -1;

    if (user_key(u->tenant, u->id, kb, &key) != 0 ||
        sk_store_user_encode(u, buf, sizeof buf, &len) != 0) {
        sk_log(SK_LOG_ERR, "store: user record out of range");
        goto out;
    }
    val.mv_data = buf;
    val.mv_size = len;
    rc = mdb_put(txn, s->users, &key, &val, flags);
    if (rc == MDB_KEYEXIST) {
        ret = SK_STORE_EXISTS;
        goto out;
    }
    if (rc != 0) {
        log_mdb("put user", rc);
        goto out;
    }
    ret = 0;
out:
    sk_wipe(buf, sizeof buf); /* holds the password hash and TOTP blob */
    return ret;
}

/* 1 when the tenant already holds an ID that differs from id only in ASCII case
 * (a portal comparing names case-insensitively would see one person), 0 when
 * not, -1 on error. Walks the tenant's key range inside txn. */
static int case_variant_exists(lmdb_store *s, MDB_txn *txn, const char *tenant, const char *id)
{
    MDB_cursor *cur = NULL;
    MDB_val key, val;
    char tkey[SK_TENANT_MAX + 1];
    size_t tl = strlen(tenant), il = strlen(id);
    int rc, ret = -1;

    if (tl > SK_TENANT_MAX || mdb_cursor_open(txn, s->users, &cur) != 0)
        return -1;
    memcpy(tkey, tenant, tl + 1);
    key.mv_data = tkey;
    key.mv_size = tl + 1;
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        const char *k = key.mv_data;
        if (key.mv_size <= tl || memcmp(k, tenant, tl) != 0 || k[tl] != '\0')
            break; /* past the tenant */
        if (key.mv_size - tl - 1 == il && strncasecmp(k + tl + 1, id, il) == 0 && memcmp(k + tl + 1, id, il) != 0) {
            ret = 1;
            goto out;
        }
    }
    ret = (rc == 0 || rc == MDB_NOTFOUND) ? 0 : -1;
out:
    mdb_cursor_close(cur);
    return ret;
}

static int lmdb_user_put_new(void *impl, const sk_user *u)
{
    lmdb_store *s = impl;
    MDB_txn *txn = NULL;
    int ret = -1, v;

    if (begin(s, 1, &txn) != 0)
        goto out;
    v = case_variant_exists(s, txn, u->tenant, u->id);
    if (v != 0) {
        ret = v > 0 ? SK_STORE_EXISTS : -1;
        goto out;
    }
    ret = put_user(s, txn, u, MDB_NOOVERWRITE);
    if (ret != 0)
        goto out;
    ret = commit(txn);
    txn = NULL;
out:
    if (txn)
        mdb_txn_abort(txn);
    return ret;
}

/* Delete sessions of (tenant, id), or all sessions when tenant is NULL, or the
 * expired ones when sweep is set. Returns the count or -1. */
struct sess_filter {
    const char *tenant;
    const char *id;
    const uint8_t *keep;    /* a session hash never to delete (the caller's own), or NULL */
    int sweep;
    int64_t idle, absolute, now;
};

static int sess_matches(const struct sess_filter *f, const sk_session *ss)
{
    if (f->sweep) {
        if (f->idle > 0 && f->now - ss->last_seen >= f->idle)
            return 1;
        if (f->absolute > 0 && f->now - ss->created >= f->absolute)
            return 1;
        return 0;
    }
    if (!f->tenant)
        return 1;
    return strcmp(ss->tenant, f->tenant) == 0 && strcmp(ss->user, f->id) == 0;
}

static int delete_sessions(lmdb_store *s, MDB_txn *txn, const struct sess_filter *f)
{
    MDB_cursor *cur = NULL;
    MDB_val key, val;
    sk_session ss;
    int rc, count = 0, ret = -1;

    rc = mdb_cursor_open(txn, s->sessions, &cur);
    if (rc != 0) {
        log_mdb("cursor", rc);
        goto out;
    }
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        int del;
        if (sk_store_session_decode(val.mv_data, val.mv_size, &ss) != 0) {
            /* A session nobody can read can never be used; a sweep clears it. */
            sk_log(SK_LOG_WARN, "store: unreadable session record%s",
                   f->sweep ? " removed" : " skipped");
            del = f->sweep || !f->tenant;
        } else {
            del = sess_matches(f, &ss);
        }
        if (!del || (f->keep && key.mv_size == SK_SESSION_HASH_LEN &&
                     memcmp(key.mv_data, f->keep, SK_SESSION_HASH_LEN) == 0))
            continue;
        rc = mdb_cursor_del(cur, 0);
        if (rc != 0) {
            log_mdb("delete session", rc);
            goto out;
        }
        if (count < INT32_MAX)
            count++;
    }
    if (rc != MDB_NOTFOUND) {
        log_mdb("walk sessions", rc);
        goto out;
    }
    ret = count;
out:
    sk_wipe(&ss, sizeof ss);
    if (cur)
        mdb_cursor_close(cur);
    return ret;
}

static int lmdb_user_delete(void *impl, const char *tenant, const char *id)
{
    lmdb_store *s = impl;
    char kb[KEY_MAX];
    MDB_val key;
    MDB_txn *txn = NULL;
    int rc, ret = -1;

    if (user_key(tenant, id, kb, &key) != 0)
        return SK_STORE_NOTFOUND;
    if (begin(s, 1, &txn) != 0)
        goto out;
    rc = mdb_del(txn, s->users, &key, NULL);
    if (rc == MDB_NOTFOUND) {
        ret = SK_STORE_NOTFOUND;
        goto out;
    }
    if (rc != 0) {
        log_mdb("delete user", rc);
        goto out;
    }
    struct sess_filter f = { .tenant = tenant, .id = id };
    if (delete_sessions(s, txn, &f) < 0)
        goto out;
    ret = commit(txn);
    txn = NULL;
out:
    if (txn)
        mdb_txn_abort(txn);
    return ret;
}

static int lmdb_user_list(void *impl, const char *tenant,
                       int (*cb)(const sk_user *u, void *ctx), void *ctx)
{
    lmdb_store *s = impl;
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val key, val;
    sk_user u;
    char tkey[SK_TENANT_MAX + 1];
    size_t tl = 0;
    int rc, ret = -1;
    MDB_cursor_op op = MDB_FIRST;

    if (tenant) {
        if (!sk_store_valid_tenant(tenant))
            return 0; /* an invalid tenant has no users */
        tl = strlen(tenant);
        memcpy(tkey, tenant, tl + 1); /* MDB_val is not const-qualified */
        key.mv_data = tkey;
        key.mv_size = tl + 1; /* tenant plus its NUL: the first key of that tenant */
        op = MDB_SET_RANGE;
    }
    if (begin(s, 0, &txn) != 0)
        goto out;
    rc = mdb_cursor_open(txn, s->users, &cur);
    if (rc != 0) {
        log_mdb("cursor", rc);
        goto out;
    }
    for (rc = mdb_cursor_get(cur, &key, &val, op); rc == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        if (tenant && (key.mv_size <= tl || memcmp(key.mv_data, tenant, tl) != 0 ||
                       ((const char *)key.mv_data)[tl] != '\0')) {
            rc = MDB_NOTFOUND; /* past the tenant's range: a normal end */
            break;
        }
        if (sk_store_user_decode(val.mv_data, val.mv_size, &u) != 0) {
            sk_log(SK_LOG_WARN, "store: skipping unreadable user record");
            continue;
        }
        int r = cb(&u, ctx);
        if (r != 0) {
            ret = r;
            goto out;
        }
    }
    if (rc != MDB_NOTFOUND) {
        log_mdb("walk users", rc);
        goto out;
    }
    ret = 0;
out:
    sk_wipe(&u, sizeof u);
    if (cur)
        mdb_cursor_close(cur);
    if (txn)
        mdb_txn_abort(txn);
    return ret;
}

/* Delete every session of (tenant, id) except keep; count or -1. */
static int delete_user_sessions_except(lmdb_store *s, MDB_txn *txn, const char *tenant,
                                       const char *id, const uint8_t *keep)
{
    struct sess_filter f = { .tenant = tenant, .id = id, .keep = keep };
    return delete_sessions(s, txn, &f);
}

static int lmdb_user_update_ex(void *impl, const char *tenant, const char *id,
                            int (*fn)(sk_user *u, int *end_sessions, void *ctx), void *ctx,
                            const uint8_t *keep, int *ended)
{
    lmdb_store *s = impl;
    char kb[KEY_MAX];
    MDB_val key, val;
    MDB_txn *txn = NULL;
    sk_user u;
    int rc, ret = -1, end = 0, n = 0;

    memset(&u, 0, sizeof u);
    if (ended)
        *ended = 0;
    if (user_key(tenant, id, kb, &key) != 0)
        return SK_STORE_NOTFOUND;
    if (begin(s, 1, &txn) != 0)
        goto out;
    rc = mdb_get(txn, s->users, &key, &val);
    if (rc == MDB_NOTFOUND) {
        ret = SK_STORE_NOTFOUND;
        goto out;
    }
    if (rc != 0) {
        log_mdb("get user", rc);
        goto out;
    }
    if (sk_store_user_decode(val.mv_data, val.mv_size, &u) != 0) {
        sk_log(SK_LOG_ERR, "store: user record %s/%s is corrupt or from a newer version",
               tenant, id);
        goto out;
    }
    if (fn(&u, &end, ctx) != 0) {
        ret = SK_STORE_VETO;
        goto out;
    }
    if (strcmp(u.tenant, tenant) != 0 || strcmp(u.id, id) != 0) {
        sk_log(SK_LOG_ERR, "store: update tried to rename a user");
        goto out;
    }
    if (put_user(s, txn, &u, 0) != 0)
        goto out;
    if (end && (n = delete_user_sessions_except(s, txn, tenant, id, keep)) < 0)
        goto out;
    ret = commit(txn);
    txn = NULL;
    if (ret == 0 && ended)
        *ended = n;
out:
    sk_wipe(&u, sizeof u);
    if (txn)
        mdb_txn_abort(txn);
    return ret;
}

static int lmdb_user_delete_if(void *impl, const char *tenant, const char *id,
                            int (*pred)(const sk_user *u, void *ctx), void *ctx)
{
    lmdb_store *s = impl;
    char kb[KEY_MAX];
    MDB_val key, val;
    MDB_txn *txn = NULL;
    sk_user u;
    int rc, ret = -1;

    memset(&u, 0, sizeof u);
    if (user_key(tenant, id, kb, &key) != 0)
        return SK_STORE_NOTFOUND;
    if (begin(s, 1, &txn) != 0)
        goto out;
    rc = mdb_get(txn, s->users, &key, &val);
    if (rc == MDB_NOTFOUND) {
        ret = SK_STORE_NOTFOUND;
        goto out;
    }
    if (rc != 0) {
        log_mdb("get user", rc);
        goto out;
    }
    if (sk_store_user_decode(val.mv_data, val.mv_size, &u) != 0) {
        sk_log(SK_LOG_ERR, "store: user record %s/%s is corrupt or from a newer version",
               tenant, id);
        goto out;
    }
    if (pred(&u, ctx) != 0) {
        ret = SK_STORE_VETO;
        goto out;
    }
    rc = mdb_del(txn, s->users, &key, NULL);
    if (rc != 0) {
        log_mdb("delete user", rc);
        goto out;
    }
    if (delete_user_sessions_except(s, txn, tenant, id, NULL) < 0)
        goto out;
    ret = commit(txn);
    txn = NULL;
out:
    sk_wipe(&u, sizeof u);
    if (txn)
        mdb_txn_abort(txn);
    return ret;
}

static int lmdb_timing_pad(void *impl)
{
    lmdb_store *s = impl;
    MDB_txn *txn = NULL;
    uint8_t v[8] = { 0 };
    int rc, ret = -1;

    if (begin(s, 1, &txn) != 0)
        goto out;
    MDB_val key = { 3, (void *)"pad" }, val = { sizeof v, v };
    rc = mdb_put(txn, s->meta, &key, &val, 0);
    if (rc != 0) {
        log_mdb("timing pad", rc);
        goto out;
    }
    ret = commit(txn);
    txn = NULL;
out:
    if (txn)
        mdb_txn_abort(txn);
    return ret;
}

/* ---- shared values ------------------------------------------------------ */

/* Values live in "meta" under "v:<name>", apart from the backend's own keys. */
static int value_key(const char *name, char buf[SK_STORE_VALUE_NAME_MAX + 3], MDB_val *key)
{
    if (sk_snprintf(buf, SK_STORE_VALUE_NAME_MAX + 3, "v:%s", name) != 0)
        return -1;
    key->mv_data = buf;
    key->mv_size = strlen(buf);
    return 0;
}

static int lmdb_value_get(void *impl, const char *name, uint8_t *buf, size_t cap, size_t *len)
{
    lmdb_store *s = impl;
    char kb[SK_STORE_VALUE_NAME_MAX + 3];
    MDB_val key, val;
    MDB_txn *txn = NULL;
    int rc, ret = -1;

    if (value_key(name, kb, &key) != 0 || begin(s, 0, &txn) != 0)
        goto out;
    rc = mdb_get(txn, s->meta, &key, &val);
    if (rc == MDB_NOTFOUND) {
        ret = SK_STORE_NOTFOUND;
        goto out;
    }
    if (rc != 0) {
        log_mdb("get value", rc);
        goto out;
    }
    if (val.mv_size > SK_STORE_VALUE_MAX || val.mv_size > cap) {
        sk_log(SK_LOG_ERR, "store: value %s is larger than its reader allows", name);
        goto out;
    }
    memcpy(buf, val.mv_data, val.mv_size);
    *len = val.mv_size;
    ret = SK_STORE_OK;
out:
    if (txn)
        mdb_txn_abort(txn);
    return ret;
}

static int lmdb_value_update(void *impl, const char *name,
                             int (*fn)(uint8_t *val, size_t *len, int exists, void *ctx), void *ctx)
{
    lmdb_store *s = impl;
    char kb[SK_STORE_VALUE_NAME_MAX + 3];
    uint8_t buf[SK_STORE_VALUE_MAX];
    size_t len = 0;
    MDB_val key, val;
    MDB_txn *txn = NULL;
    int rc, exists = 0, ret = -1;

    if (value_key(name, kb, &key) != 0 || begin(s, 1, &txn) != 0)
        goto out;
    rc = mdb_get(txn, s->meta, &key, &val);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        log_mdb("get value", rc);
        goto out;
    }
    if (rc == 0) {
        if (val.mv_size > sizeof buf) {
            sk_log(SK_LOG_ERR, "store: value %s is corrupt (too large)", name);
            goto out;
        }
        memcpy(buf, val.mv_data, val.mv_size);
        len = val.mv_size;
        exists = 1;
    }
    if (fn(buf, &len, exists, ctx) != 0) {
        ret = SK_STORE_VETO;
        goto out;
    }
    if (len > sizeof buf) {
        sk_log(SK_LOG_ERR, "store: value %s would exceed %d bytes", name, SK_STORE_VALUE_MAX);
        goto out;
    }
    val.mv_size = len;
    val.mv_data = buf;
    rc = mdb_put(txn, s->meta, &key, &val, 0);
    if (rc != 0) {
        log_mdb("put value", rc);
        goto out;
    }
    ret = commit(txn);
    txn = NULL;
out:
    sk_wipe(buf, sizeof buf);
    if (txn)
        mdb_txn_abort(txn);
    return ret;
}

/* ---- sessions ---------------------------------------------------------- */

static int put_session(lmdb_store *s, MDB_txn *txn, const sk_session *ss)
{
    uint8_t buf[SK_SESSION_RECORD_MAX];
    size_t len = 0;
    int rc, ret = -1;

    if (sk_store_session_encode(ss, buf, sizeof buf, &len) != 0) {
        sk_log(SK_LOG_ERR, "store: session record out of range");
        goto out;
    }
    uint8_t kb[SK_SESSION_HASH_LEN];
    memcpy(kb, ss->hash, sizeof kb);
    MDB_val key = { sizeof kb, kb };
    MDB_val val = { len, buf };
    rc = mdb_put(txn, s->sessions, &key, &val, 0);
    if (rc != 0) {
        log_mdb("put session", rc);
        goto out;
    }
    ret = 0;
out:
    sk_wipe(buf, sizeof buf); /* holds the CSRF secret */
    return ret;
}

static int lmdb_session_put(void *impl, const sk_session *ss)
{
    lmdb_store *s = impl;
    MDB_txn *txn = NULL;
    int ret = -1;

    if (begin(s, 1, &txn) != 0)
        goto out;
    if (put_session(s, txn, ss) != 0)
        goto out;
    ret = commit(txn);
    txn = NULL;
out:
    if (txn)
        mdb_txn_abort(txn);
    return ret;
}

static int get_session(lmdb_store *s, MDB_txn *txn, const uint8_t *hash, sk_session *out)
{
    uint8_t kb[SK_SESSION_HASH_LEN];
    memcpy(kb, hash, sizeof kb);
    MDB_val key = { sizeof kb, kb }, val;
    int rc = mdb_get(txn, s->sessions, &key, &val);
    if (rc == MDB_NOTFOUND)
        return SK_STORE_NOTFOUND;
    if (rc != 0) {
        log_mdb("get session", rc);
        return -1;
    }
    if (sk_store_session_decode(val.mv_data, val.mv_size, out) != 0) {
        sk_log(SK_LOG_ERR, "store: session record is corrupt or from a newer version");
        return -1;
    }
    memcpy(out->hash, hash, SK_SESSION_HASH_LEN);
    return SK_STORE_OK;
}

static int lmdb_session_get(void *impl, const uint8_t hash[SK_SESSION_HASH_LEN], sk_session *out)
{
    lmdb_store *s = impl;
    MDB_txn *txn = NULL;
    int ret = -1;

    if (begin(s, 0, &txn) != 0)
        goto out;
    ret = get_session(s, txn, hash, out);
out:
    if (txn)
        mdb_txn_abort(txn);
    return ret;
}

static int lmdb_session_delete(void *impl, const uint8_t hash[SK_SESSION_HASH_LEN])
{
    lmdb_store *s = impl;
    MDB_txn *txn = NULL;
    uint8_t kb[SK_SESSION_HASH_LEN];
    memcpy(kb, hash, sizeof kb);
    MDB_val key = { sizeof kb, kb };
    int rc, ret = -1;

    if (begin(s, 1, &txn) != 0)
        goto out;
    rc = mdb_del(txn, s->sessions, &key, NULL);
    if (rc == MDB_NOTFOUND) {
        ret = SK_STORE_NOTFOUND;
        goto out;
    }
    if (rc != 0) {
        log_mdb("delete session", rc);
        goto out;
    }
    ret = commit(txn);
    txn = NULL;
out:
    if (txn)
        mdb_txn_abort(txn);
    return ret;
}

static int touch_due(const sk_session *ss, int64_t now, int64_t interval)
{
    return now > ss->last_seen && now - ss->last_seen >= interval;
}

static int lmdb_session_touch_every(void *impl, const uint8_t hash[SK_SESSION_HASH_LEN], int64_t now,
                                 int64_t interval)
{
    lmdb_store *s = impl;
    MDB_txn *txn = NULL;
    sk_session ss;
    int ret = -1;

    /* Most requests stop here: a read-only transaction, no write, no fsync. */
    if (begin(s, 0, &txn) != 0)
        goto out;
    ret = get_session(s, txn, hash, &ss);
    mdb_txn_abort(txn);
    txn = NULL;
    if (interval < 1)
        interval = 1;
    if (ret != SK_STORE_OK || !touch_due(&ss, now, interval))
        goto out;

    ret = -1;
    if (begin(s, 1, &txn) != 0)
        goto out;
    /* Re-read under the writer lock: the session may have been revoked or
     * touched by another thread in between. */
    ret = get_session(s, txn, hash, &ss);
    if (ret != SK_STORE_OK)
        goto out;
    if (!touch_due(&ss, now, interval))
        goto out; /* OK, someone else already did it */
    ss.last_seen = now;
    ret = -1;
    if (put_session(s, txn, &ss) != 0)
        goto out;
    ret = commit(txn);
    txn = NULL;
out:
    sk_wipe(&ss, sizeof ss);
    if (txn)
        mdb_txn_abort(txn);
    return ret;
}

static int delete_sessions_txn(lmdb_store *s, const struct sess_filter *f)
{
    MDB_txn *txn = NULL;
    int n, ret = -1;

    if (begin(s, 1, &txn) != 0)
        goto out;
    n = delete_sessions(s, txn, f);
    if (n < 0)
        goto out;
    if (n == 0) {
        ret = 0; /* nothing changed: no commit, no fsync */
        goto out;
    }
    if (commit(txn) != 0) {
        txn = NULL;
        goto out;
    }
    txn = NULL;
    ret = n;
out:
    if (txn)
        mdb_txn_abort(txn);
    return ret;
}

static int lmdb_session_delete_user(void *impl, const char *tenant, const char *id)
{
    lmdb_store *s = impl;
    if (!sk_store_valid_tenant(tenant) || !sk_store_valid_id(id))
        return 0;
    struct sess_filter f = { .tenant = tenant, .id = id };
    return delete_sessions_txn(s, &f);
}

static int lmdb_session_delete_all(void *impl)
{
    lmdb_store *s = impl;
    struct sess_filter f = { .tenant = NULL };
    return delete_sessions_txn(s, &f);
}

static int lmdb_session_sweep(void *impl, int64_t idle_timeout, int64_t absolute_timeout,
                           int64_t now)
{
    lmdb_store *s = impl;
    struct sess_filter f = { .sweep = 1, .idle = idle_timeout, .absolute = absolute_timeout,
                             .now = now };
    return delete_sessions_txn(s, &f);
}

static int lmdb_session_list(void *impl, int (*cb)(const sk_session *sess, void *ctx), void *ctx)
{
    lmdb_store *s = impl;
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val key, val;
    sk_session ss;
    int rc, ret = -1;

    if (begin(s, 0, &txn) != 0)
        goto out;
    rc = mdb_cursor_open(txn, s->sessions, &cur);
    if (rc != 0) {
        log_mdb("cursor", rc);
        goto out;
    }
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        if (key.mv_size != SK_SESSION_HASH_LEN ||
            sk_store_session_decode(val.mv_data, val.mv_size, &ss) != 0) {
            sk_log(SK_LOG_WARN, "store: skipping unreadable session record");
            continue;
        }
        memcpy(ss.hash, key.mv_data, SK_SESSION_HASH_LEN);
        int r = cb(&ss, ctx);
        if (r != 0) {
            ret = r;
            goto out;
        }
    }
    if (rc != MDB_NOTFOUND) {
        log_mdb("walk sessions", rc);
        goto out;
    }
    ret = 0;
out:
    sk_wipe(&ss, sizeof ss);
    if (cur)
        mdb_cursor_close(cur);
    if (txn)
        mdb_txn_abort(txn);
    return ret;
}

static int lmdb_change_fd(void *impl)
{
    lmdb_store *s = impl;
    const char *dir = NULL;
    char data[4200];
    int fd;
    if (s == NULL || mdb_env_get_path(s->env, &dir) != 0 || dir == NULL ||
        sk_snprintf(data, sizeof data, "%s/data.mdb", dir) != 0)
        return -1;
    fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0)
        return -1;
    /* Every commit writes the meta page last: the event after it finds the new
     * transaction id. */
    if (inotify_add_watch(fd, data, IN_MODIFY) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static uint64_t lmdb_generation(void *impl)
{
    lmdb_store *s = impl;
    MDB_envinfo info;
    if (s == NULL || mdb_env_info(s->env, &info) != 0)
        return 0;
    return (uint64_t)info.me_last_txnid;
}

const sk_store_ops sk_store_lmdb_ops = {
    .name = "lmdb",
    .close = lmdb_close,
    .user_get = lmdb_user_get,
    .user_put_new = lmdb_user_put_new,
    .user_delete = lmdb_user_delete,
    .user_list = lmdb_user_list,
    .user_update_ex = lmdb_user_update_ex,
    .user_delete_if = lmdb_user_delete_if,
    .value_get = lmdb_value_get,
    .value_update = lmdb_value_update,
    .timing_pad = lmdb_timing_pad,
    .generation = lmdb_generation,
    .change_fd = lmdb_change_fd,
    .session_put = lmdb_session_put,
    .session_get = lmdb_session_get,
    .session_delete = lmdb_session_delete,
    .session_touch_every = lmdb_session_touch_every,
    .session_delete_user = lmdb_session_delete_user,
    .session_list = lmdb_session_list,
    .session_sweep = lmdb_session_sweep,
    .session_delete_all = lmdb_session_delete_all,
};
