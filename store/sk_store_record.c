/*
 * Record codec for the store.
 *
 * Layout (all integers little-endian, fixed width; strings are u16 length + bytes,
 * no NUL, no embedded NUL):
 *   u8 magic ('U' user, 'S' session), u8 version, then the fields of that version
 *   in order. A later version only appends fields; a decoder reads the fields of
 *   the record's version and fills the rest with defaults, so old records stay
 *   readable. Records newer than this code are refused rather than guessed at,
 *   because writing one back would silently drop the fields we do not know.
 */
#include <string.h>

#include "sk_store.h"

#define USER_MAGIC 0x55u    /* 'U' */
#define SESSION_MAGIC 0x53u /* 'S' */

typedef struct wr {
    uint8_t *p;
    size_t len;
    size_t cap;
    int failed;
} wr;

static void wr_bytes(wr *w, const void *src, size_t n)
{
    if (w->failed || n > w->cap - w->len) {
        w->failed = 1;
        return;
    }
    if (n > 0)
        memcpy(w->p + w->len, src, n);
    w->len += n;
}

static void wr_u8(wr *w, uint8_t v)
{
    wr_bytes(w, &v, 1);
}

static void wr_u16(wr *w, uint16_t v)
{
    uint8_t b[2] = { (uint8_t)v, (uint8_t)(v >> 8) };
    wr_bytes(w, b, 2);
}

static void wr_u32(wr *w, uint32_t v)
{
    uint8_t b[4];
    for (int i = 0; i < 4; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    wr_bytes(w, b, 4);
}

static void wr_i64(wr *w, int64_t sv)
{
    uint64_t v = (uint64_t)sv;
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    wr_bytes(w, b, 8);
}

/* A string field from a fixed buffer of capacity cap: must be NUL-terminated
 * within it. */
static void wr_str(wr *w, const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    if (n == cap || n > UINT16_MAX) {
        w->failed = 1;
        return;
    }
    wr_u16(w, (uint16_t)n);
    wr_bytes(w, s, n);
}

typedef struct rd {
    const uint8_t *p;
    size_t len;
    size_t off;
    int failed;
} rd;

static const uint8_t *rd_take(rd *r, size_t n)
{
    if (r->failed || n > r->len - r->off) {
        r->failed = 1;
        return NULL;
    }
    const uint8_t *q = r->p + r->off;
    r->off += n;
    return q;
}

static uint8_t rd_u8(rd *r)
{
    const uint8_t *q = rd_take(r, 1);
    return q ? q[0] : 0;
}

static uint16_t rd_u16(rd *r)
{
    const uint8_t *q = rd_take(r, 2);
    return q ? (uint16_t)(q[0] | (q[1] << 8)) : 0;
}

static uint32_t rd_u32(rd *r)
{
    const uint8_t *q = rd_take(r, 4);
    uint32_t v = 0;
    if (q)
        for (int i = 0; i < 4; i++)
            v |= (uint32_t)q[i] << (8 * i);
    return v;
}

static int64_t rd_i64(rd *r)
{
    const uint8_t *q = rd_take(r, 8);
    uint64_t v = 0;
    if (q)
        for (int i = 0; i < 8; i++)
            v |= (uint64_t)q[i] << (8 * i);
    return (int64_t)v;
}

/* Read a string into dst (capacity cap incl. NUL); embedded NULs are corruption. */
static void rd_str(rd *r, char *dst, size_t cap)
{
    uint16_t n = rd_u16(r);
    if (r->failed)
        return;
    if ((size_t)n >= cap) {
        r->failed = 1;
        return;
    }
    const uint8_t *q = rd_take(r, n);
    if (!q)
        return;
    if (memchr(q, 0, n) != NULL) {
        r->failed = 1;
        return;
    }
    memcpy(dst, q, n);
    dst[n] = '\0';
}

int sk_store_user_encode(const sk_user *u, uint8_t *buf, size_t cap, size_t *len)
{
    wr w = { buf, 0, cap, 0 };
    if (!sk_store_valid_id(u->id) || !sk_store_valid_tenant(u->tenant))
        return -1;
    if (u->role != SK_ROLE_ADMIN && u->role != SK_ROLE_GENERAL)
        return -1;
    if (u->allow_count > SK_ALLOW_MAX || u->totp_secret_len > SK_TOTP_BLOB_MAX ||
        u->totp_pending_len > SK_TOTP_BLOB_MAX)
        return -1;

    wr_u8(&w, USER_MAGIC);
    wr_u8(&w, SK_USER_RECORD_VERSION);
    wr_str(&w, u->id, sizeof u->id);
    wr_str(&w, u->tenant, sizeof u->tenant);
    wr_u8(&w, (uint8_t)u->role);
    wr_str(&w, u->email, sizeof u->email);
    wr_str(&w, u->pw_hash, sizeof u->pw_hash);
    wr_i64(&w, u->created);
    wr_i64(&w, u->last_login);
    wr_i64(&w, u->password_changed);
    wr_u32(&w, u->failures);
    wr_i64(&w, u->locked_until);
    wr_u32(&w, u->flags);
    wr_i64(&w, u->dormant_locked_at);
    wr_i64(&w, u->unlocked_at);
    wr_u16(&w, (uint16_t)u->totp_secret_len);
    wr_bytes(&w, u->totp_secret, u->totp_secret_len);
    wr_i64(&w, u->totp_last_step);
    wr_u8(&w, (uint8_t)u->allow_count);
    for (uint32_t i = 0; i < u->allow_count; i++)
        wr_str(&w, u->allow[i], sizeof u->allow[i]);
    /* version 2 */
    wr_u16(&w, (uint16_t)u->totp_pending_len);
    wr_bytes(&w, u->totp_pending, u->totp_pending_len);
    wr_i64(&w, u->dormant_notified_at);
    /* version 3 */
    wr_bytes(&w, u->activation_hash, sizeof u->activation_hash);
    wr_i64(&w, u->activation_expires);
    if (w.failed)
        return -1;
    *len = w.len;
    return 0;
}

int sk_store_user_decode(const uint8_t *buf, size_t len, sk_user *out)
{
    rd r = { buf, len, 0, 0 };
    memset(out, 0, sizeof *out);

    if (rd_u8(&r) != USER_MAGIC)
        goto bad;
    uint8_t version = rd_u8(&r);
    if (r.failed || version == 0 || version > SK_USER_RECORD_VERSION)
        goto bad;

    rd_str(&r, out->id, sizeof out->id);
    rd_str(&r, out->tenant, sizeof out->tenant);
    uint8_t role = rd_u8(&r);
    if (role > SK_ROLE_ADMIN)
        goto bad;
    out->role = (enum sk_role)role;
    rd_str(&r, out->email, sizeof out->email);
    rd_str(&r, out->pw_hash, sizeof out->pw_hash);
    out->created = rd_i64(&r);
    out->last_login = rd_i64(&r);
    out->password_changed = rd_i64(&r);
    out->failures = rd_u32(&r);
    out->locked_until = rd_i64(&r);
    out->flags = rd_u32(&r);
    out->dormant_locked_at = rd_i64(&r);
    out->unlocked_at = rd_i64(&r);
    uint16_t tl = rd_u16(&r);
    if (tl > SK_TOTP_BLOB_MAX)
        goto bad;
    const uint8_t *tq = rd_take(&r, tl);
    if (tq) {
        memcpy(out->totp_secret, tq, tl);
        out->totp_secret_len = tl;
    }
    out->totp_last_step = rd_i64(&r);
    uint8_t ac = rd_u8(&r);
    if (ac > SK_ALLOW_MAX)
        goto bad;
    for (uint8_t i = 0; i < ac && !r.failed; i++)
        rd_str(&r, out->allow[i], sizeof out->allow[i]);
    out->allow_count = ac;
    if (version >= 2) {
        uint16_t pl = rd_u16(&r);
        if (pl > SK_TOTP_BLOB_MAX)
            goto bad;
        const uint8_t *pq = rd_take(&r, pl);
        if (pq) {
            memcpy(out->totp_pending, pq, pl);
            out->totp_pending_len = pl;
        }
        out->dormant_notified_at = rd_i64(&r);
    }
    if (version >= 3) {
        const uint8_t *aq = rd_take(&r, sizeof out->activation_hash);
        if (aq)
            memcpy(out->activation_hash, aq, sizeof out->activation_hash);
        out->activation_expires = rd_i64(&r);
    }
    /* Fields of later versions would be read here, guarded by `version >= N`. */

    if (r.failed || r.off != r.len)
        goto bad;
    if (!sk_store_valid_id(out->id) || !sk_store_valid_tenant(out->tenant))
        goto bad;
    return 0;
bad:
    sk_wipe(out, sizeof *out);
    return -1;
}

int sk_store_session_encode(const sk_session *s, uint8_t *buf, size_t cap, size_t *len)
{
    wr w = { buf, 0, cap, 0 };
    if (!sk_store_valid_id(s->user) || !sk_store_valid_tenant(s->tenant))
        return -1;
    if (s->role != SK_ROLE_ADMIN && s->role != SK_ROLE_GENERAL)
        return -1;
    wr_u8(&w, SESSION_MAGIC);
    wr_u8(&w, SK_SESSION_RECORD_VERSION);
    wr_str(&w, s->user, sizeof s->user);
    wr_str(&w, s->tenant, sizeof s->tenant);
    wr_u8(&w, (uint8_t)s->role);
    wr_str(&w, s->cert_serial, sizeof s->cert_serial);
    wr_i64(&w, s->created);
    wr_i64(&w, s->last_seen);
    wr_bytes(&w, s->csrf, SK_CSRF_LEN);
    if (w.failed)
        return -1;
    *len = w.len;
    return 0;
}

int sk_store_session_decode(const uint8_t *buf, size_t len, sk_session *out)
{
    rd r = { buf, len, 0, 0 };
    memset(out, 0, sizeof *out);
    if (rd_u8(&r) != SESSION_MAGIC)
        goto bad;
    uint8_t version = rd_u8(&r);
    if (r.failed || version == 0 || version > SK_SESSION_RECORD_VERSION)
        goto bad;
    rd_str(&r, out->user, sizeof out->user);
    rd_str(&r, out->tenant, sizeof out->tenant);
    uint8_t role = rd_u8(&r);
    if (role > SK_ROLE_ADMIN)
        goto bad;
    out->role = (enum sk_role)role;
    rd_str(&r, out->cert_serial, sizeof out->cert_serial);
    out->created = rd_i64(&r);
    out->last_seen = rd_i64(&r);
    const uint8_t *c = rd_take(&r, SK_CSRF_LEN);
    if (c)
        memcpy(out->csrf, c, SK_CSRF_LEN);
    if (r.failed || r.off != r.len)
        goto bad;
    if (!sk_store_valid_id(out->user) || !sk_store_valid_tenant(out->tenant))
        goto bad;
    return 0;
bad:
    sk_wipe(out, sizeof *out);
    return -1;
}
