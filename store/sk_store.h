/*
 * sk_store.h — Sekisho's persistent state: users and sessions.
 *
 * One API, several backends ([store] backend in the configuration): LMDB, the
 * embedded default for a single node (store/lmdb/store_lmdb.h), and
 * PostgreSQL, shared by several gateway nodes (store/postgresql/store_pg.h).
 * What follows is all a caller may rely on, whichever backend is open; how a
 * backend meets it is its own business (sk_store_backend.h is the interface a
 * backend implements).
 *
 * Contracts:
 *  - Every fallible function returns int: SK_STORE_OK (0) on success,
 *    SK_STORE_NOTFOUND (1) when the key does not exist (only where documented),
 *    SK_STORE_EXISTS (2) / SK_STORE_VETO (3) where documented, and -1 on any other
 *    failure. Errors of the database are logged once by the store; a caller
 *    only needs to report the operation that failed.
 *  - Several processes (the gateway's authd, sekishoctl, sekisho-ca) may have
 *    the same store open at the same time and see each other's commits.
 *  - The handle is thread-safe: any function may be called from several threads
 *    at once on one handle. Lookups decode into caller-provided structs and
 *    hand out nothing that must be freed.
 *  - A write returns SK_STORE_OK only once it is committed and durable; a
 *    reader never sees half of a write.
 *  - Records are versioned and explicitly serialized (the codec at the end of
 *    this file). A record whose version is newer than this code, or that is
 *    malformed, is rejected with -1 and logged; it is never half-decoded into
 *    the caller's struct.
 *  - Session tokens are never stored: callers pass SHA-256(token).
 *  - Secrets inside sk_user (password hash, TOTP blob) never appear in logs.
 */
#ifndef SK_STORE_H
#define SK_STORE_H

#include <stddef.h>
#include <stdint.h>
#include "sk_util.h"

enum {
    SK_STORE_OK = 0,
    SK_STORE_NOTFOUND = 1,
    SK_STORE_EXISTS = 2,
    SK_STORE_VETO = 3,
};

/* Limits. Buffers below include room for the terminating NUL. */
#define SK_USER_ID_MAX 64          /* [A-Za-z0-9._@-], not starting with '.' or '-' */
#define SK_TENANT_MAX 63           /* [a-z0-9-] */
#define SK_DEFAULT_TENANT "default"
#define SK_EMAIL_MAX 254
#define SK_PWHASH_MAX 255          /* argon2 encoded string */
#define SK_TOTP_BLOB_MAX 128       /* opaque, encrypted by the TOTP module */
#define SK_ALLOW_MAX 16            /* per-user CIDR allowlist entries */
#define SK_CIDR_MAX 49             /* "ffff:...:255.255.255.255/128" */
#define SK_CERT_SERIAL_MAX 64      /* hex */
#define SK_SESSION_HASH_LEN 32     /* SHA-256 */
#define SK_CSRF_LEN 32

enum sk_role {
    SK_ROLE_GENERAL = 0,
    SK_ROLE_ADMIN = 1,
};

/* sk_user.flags */
#define SK_USER_F_OPERATOR_LOCKED 0x0001u  /* `sekishoctl user lock`; only an operator unlocks */
#define SK_USER_F_MUST_CHANGE_PW  0x0002u  /* next login must change the password */
#define SK_USER_F_TOTP_ENABLED    0x0004u
#define SK_USER_F_DORMANT_NOTIFIED 0x0008u /* the dormancy reminder was sent */
#define SK_USER_F_DORMANT_LOCKED  0x0010u  /* locked for dormancy; only an operator unlocks */
#define SK_USER_F_KNOWN_MASK      0x001fu  /* flags this version understands */

typedef struct sk_user {
    char id[SK_USER_ID_MAX + 1];
    char tenant[SK_TENANT_MAX + 1];
    enum sk_role role;
    char email[SK_EMAIL_MAX + 1];            /* may be empty */
    char pw_hash[SK_PWHASH_MAX + 1];         /* argon2id encoded; never printed */
    int64_t created;                         /* all times: seconds since the epoch, UTC */
    int64_t last_login;                      /* 0 = never */
    int64_t password_changed;
    uint32_t failures;                       /* consecutive failed logins */
    int64_t locked_until;                    /* lockout after failures; 0 = not locked */
    uint32_t flags;                          /* SK_USER_F_* (unknown bits are preserved) */
    int64_t dormant_locked_at;               /* 0 = not dormant-locked */
    int64_t unlocked_at;                     /* last operator unlock; dormancy restarts here */
    uint8_t totp_secret[SK_TOTP_BLOB_MAX];   /* opaque encrypted blob */
    uint32_t totp_secret_len;
    int64_t totp_last_step;                  /* replay guard: last accepted RFC 6238 step */
    uint32_t allow_count;
    char allow[SK_ALLOW_MAX][SK_CIDR_MAX + 1];
    /* Record version 2. A version-1 record decodes with these zero/empty. */
    uint8_t totp_pending[SK_TOTP_BLOB_MAX];  /* enrolment candidate (encrypted), not yet enabled */
    uint32_t totp_pending_len;               /* 0 = no enrolment in progress */
    int64_t dormant_notified_at;             /* when the dormancy reminder was sent; 0 = never */
    /* Record version 3. An activation link lets a new account choose its first
     * password: only SHA-256 of the single-use token is kept, never the token. */
    uint8_t activation_hash[32];
    int64_t activation_expires;              /* 0 = no activation link outstanding */
} sk_user;

typedef struct sk_session {
    uint8_t hash[SK_SESSION_HASH_LEN];       /* key: SHA-256(token) */
    char user[SK_USER_ID_MAX + 1];
    char tenant[SK_TENANT_MAX + 1];
    enum sk_role role;
    char cert_serial[SK_CERT_SERIAL_MAX + 1];/* hex, as the gateway saw it */
    int64_t created;
    int64_t last_seen;
    uint8_t csrf[SK_CSRF_LEN];               /* per-session CSRF secret */
} sk_session;

/* Seconds a session's last_seen may lag behind before sk_store_session_touch()
 * writes it. Idle timeouts are therefore accurate to this granularity. */
#define SK_SESSION_TOUCH_INTERVAL 60

typedef struct sk_store sk_store;
struct sk_conf;

/* ---- identifiers ------------------------------------------------------- */

/* 1 if s is a valid user ID / tenant name, else 0. */
int sk_store_valid_id(const char *s);
int sk_store_valid_tenant(const char *s);
/* "admin" / "general". */
const char *sk_store_role_name(enum sk_role r);
/* Parse "admin" / "general"; -1 otherwise. */
int sk_store_role_parse(const char *s, enum sk_role *out) SK_MUST_CHECK;
/* Fill u with zeroes and the given identity (validated: -1 if invalid). */
int sk_store_user_init(sk_user *u, const char *tenant, const char *id) SK_MUST_CHECK;

/* ---- opening --------------------------------------------------------- */

/* Open the store the configuration names: [store] backend (lmdb, the default:
 * <[state] dir>/db; postgresql: [store] url and password_file). With readonly
 * set, a store that does not exist yet gives SK_STORE_NOTFOUND (nothing is
 * created) and every write function fails with -1. On -1, err (capacity errcap)
 * says why in one line, e.g. a backend this build does not have. */
int sk_store_open_conf(const struct sk_conf *conf, int readonly, sk_store **out, char *err,
                       size_t errcap) SK_MUST_CHECK;
/* Whether sk_store_open_conf could open this configuration's backend at all
 * (known and built in), without opening anything: for `sekisho -t` and the
 * start of the gateway. 0, or -1 with err. */
int sk_store_conf_check(const struct sk_conf *conf, char *err, size_t errcap) SK_MUST_CHECK;
/* Bring the schema of the configuration's backend up to date (`sekishoctl
 * store migrate`). postgresql: applies the versioned migrations the database
 * lacks, in one transaction, safe when several nodes run it at once; *from gets
 * the version found and *to the version now in place (equal: nothing was
 * needed). lmdb keeps its layout itself: *from = *to = 0. 0, or -1 with err. A
 * backend with migrations refuses to open an older or newer schema than its
 * own, saying so. */
int sk_store_migrate_conf(const struct sk_conf *conf, unsigned *from, unsigned *to, char *err,
                          size_t errcap) SK_MUST_CHECK;
/* What a process that holds this configuration's store open still needs once it
 * is sandboxed: *network = 1 when the backend talks to a server (socket and
 * connect), and the files it may read at each (re)connection (PostgreSQL's TLS
 * root certificates, CRL, client certificate and key named in the url) are
 * passed to add, one existing path each. 0, or -1 when add failed or the url
 * does not parse. */
int sk_store_conf_sandbox_needs(const struct sk_conf *conf, int *network,
                                int (*add)(const char *path, void *ctx), void *ctx) SK_MUST_CHECK;
/* The TCP ports the configuration's database server is reached on (at most cap;
 * *n = 0 when the backend needs none or they cannot be told from the
 * configuration). 0, or -1 when there are more than cap or the url does not parse. */
int sk_store_conf_tcp_ports(const struct sk_conf *conf, uint16_t *ports, unsigned cap,
                            unsigned *n) SK_MUST_CHECK;
/* Open the default backend (LMDB) in <state_dir>/db, as sk_store_open_conf with
 * backend = lmdb. For callers and tests that have no configuration. */
int sk_store_open(const char *state_dir, int readonly, sk_store **out) SK_MUST_CHECK;
/* As sk_store_open with an upper bound on the database's size in bytes, which
 * the LMDB backend reserves up front (tests use small bounds). */
int sk_store_open_ex(const char *state_dir, int readonly, size_t map_size,
                     sk_store **out) SK_MUST_CHECK;
/* The backend's name as in [store] backend ("lmdb", ...). */
const char *sk_store_backend_name(const sk_store *s);
/* Close and free; NULL is accepted. No call may be in flight. */
void sk_store_close(sk_store *s);

/* ---- users ------------------------------------------------------------- */

/* Look a user up. SK_STORE_OK and *out filled, SK_STORE_NOTFOUND, or -1. */
int sk_store_user_get(sk_store *s, const char *tenant, const char *id, sk_user *out) SK_MUST_CHECK;
/* Insert u (key from u->tenant, u->id). SK_STORE_EXISTS if the user exists, or an
 * ID of that tenant that differs only in case ("ALICE" beside "alice"). */
int sk_store_user_put_new(sk_store *s, const sk_user *u) SK_MUST_CHECK;
/* Delete a user and, in the same transaction, all of that user's sessions.
 * SK_STORE_NOTFOUND if there was no such user. */
int sk_store_user_delete(sk_store *s, const char *tenant, const char *id) SK_MUST_CHECK;
/* Call cb for every user (ordered by tenant, then id) as of one consistent
 * snapshot; cb must not call back into the store for writes. A non-zero
 * return from cb stops the walk and is returned. Pass tenant = NULL for all
 * tenants, or a tenant name to list only that tenant. */
int sk_store_user_list(sk_store *s, const char *tenant,
                       int (*cb)(const sk_user *u, void *ctx), void *ctx) SK_MUST_CHECK;
/* Atomic read-modify-write of one user. fn receives the current record and may
 * change it; a non-zero return vetoes the change (nothing is written,
 * SK_STORE_VETO is returned). fn decides inside the transaction: no other
 * writer, in this process or another, can change the user between the read fn
 * sees and the commit of what fn decided, so a decision and the counter it
 * moves (failures, lockout, TOTP step) are committed together, before this
 * returns. fn must not change id or tenant (-1 if it does) and must not call
 * the store. Returns SK_STORE_OK once committed (durable when this returns),
 * SK_STORE_NOTFOUND, SK_STORE_VETO or -1. fn is called at most once per call
 * (a backend serialises writers of the user rather than retrying fn), but what
 * it decided counts only when SK_STORE_OK is returned. fn holds up other
 * writers of the user: keep it short (no hashing). */
int sk_store_user_update(sk_store *s, const char *tenant, const char *id,
                         int (*fn)(sk_user *u, void *ctx), void *ctx) SK_MUST_CHECK;
/* As sk_store_user_update, and fn may also ask (by setting *end_sessions to
 * non-zero; it starts at 0) that every session of the user except the one whose
 * hash is keep (NULL = none kept) be deleted IN THE SAME write transaction: a
 * password change or a lock and the end of the sessions it invalidates commit
 * together or not at all. *ended (may be NULL) gets the number of sessions
 * deleted (0 when none, when vetoed or on error). Same return values and rules
 * for fn. */
int sk_store_user_update_ex(sk_store *s, const char *tenant, const char *id,
                            int (*fn)(sk_user *u, int *end_sessions, void *ctx), void *ctx,
                            const uint8_t *keep, int *ended) SK_MUST_CHECK;
/* Delete the user (and all its sessions) only if pred, called on the current
 * record inside the transaction (as fn of sk_store_user_update), returns 0; non-zero vetoes
 * (SK_STORE_VETO, nothing changed). Lets a caller re-check the condition a
 * decision was based on (e.g. "still dormant") against the freshest record.
 * SK_STORE_OK, SK_STORE_NOTFOUND, SK_STORE_VETO or -1. pred must not call the
 * store. */
int sk_store_user_delete_if(sk_store *s, const char *tenant, const char *id,
                            int (*pred)(const sk_user *u, void *ctx), void *ctx) SK_MUST_CHECK;

/* A durable write of the same cost as a login's counter update (one small
 * record written and committed, in the backend's own bookkeeping). Login paths that change nothing (unknown
 * or locked account) call it so that they cost the same disk time as a wrong
 * password, which always commits. 0 or -1. */
int sk_store_timing_pad(sk_store *s) SK_MUST_CHECK;

/* A number that changes whenever anybody (this process or another: sekishoctl,
 * sekisho-ca, another node) committed a change to the store; for caches of what
 * was read: a cache entry read at generation G is current while the generation
 * still reads G. Cheap (meant to be read on every request). 0 when it cannot be
 * read (treat as "changed"). */
uint64_t sk_store_generation(sk_store *s);
/* A descriptor (non-blocking, close-on-exec; the caller closes it) that becomes
 * readable when anybody may have committed a change to the store, so that a
 * cache keyed by the generation can be told at once rather than by polling: read
 * and discard whatever it delivers, then read the generation. It may wake
 * without a change. -1 when the backend offers none: the caller then polls the
 * generation. */
int sk_store_change_fd(sk_store *s);

/* ---- shared values ------------------------------------------------------ */

/* Small named blobs that every gateway process and node sharing the store must
 * agree on: the CSRF and TLS session-ticket keys, the failed-login burst counter,
 * the claim of a node-wide chore (the daily sweep). A name is 1..SK_STORE_VALUE_NAME_MAX
 * of [a-z0-9._-]; a value is 0..SK_STORE_VALUE_MAX bytes, opaque to the store
 * (callers version their own encoding). Values may hold secrets: the store
 * wipes its copies and never logs them. */
#define SK_STORE_VALUE_NAME_MAX 63
#define SK_STORE_VALUE_MAX 4096

/* 1 if name is a valid value name. */
int sk_store_valid_value_name(const char *name);
/* Read a value into buf (capacity cap >= SK_STORE_VALUE_MAX is always enough);
 * *len gets its size. SK_STORE_OK, SK_STORE_NOTFOUND, or -1 (also when cap is
 * short or the name is invalid). */
int sk_store_value_get(sk_store *s, const char *name, uint8_t *buf, size_t cap,
                       size_t *len) SK_MUST_CHECK;
/* Atomic read-modify-write of one value, with the guarantees of
 * sk_store_user_update across processes and nodes: fn gets the current value
 * (*len = 0 and exists = 0 when there is none yet) in a buffer of capacity
 * SK_STORE_VALUE_MAX, may change it and its length, and returns 0 to commit or
 * non-zero to veto (SK_STORE_VETO, nothing written). No other writer of the
 * same name can commit between what fn read and what it wrote. fn is called at
 * most once, must be short and must not call the store. SK_STORE_OK once
 * committed and durable, SK_STORE_VETO, or -1 (also for *len > SK_STORE_VALUE_MAX
 * after fn). */
int sk_store_value_update(sk_store *s, const char *name,
                          int (*fn)(uint8_t *val, size_t *len, int exists, void *ctx),
                          void *ctx) SK_MUST_CHECK;

/* ---- sessions ---------------------------------------------------------- */

/* Insert or replace the session keyed by sess->hash. */
int sk_store_session_put(sk_store *s, const sk_session *sess) SK_MUST_CHECK;
/* SK_STORE_OK with *out filled, SK_STORE_NOTFOUND, or -1. */
int sk_store_session_get(sk_store *s, const uint8_t hash[SK_SESSION_HASH_LEN],
                         sk_session *out) SK_MUST_CHECK;
/* SK_STORE_OK, SK_STORE_NOTFOUND, or -1. */
int sk_store_session_delete(sk_store *s, const uint8_t hash[SK_SESSION_HASH_LEN]) SK_MUST_CHECK;
/* Record activity at `now`. To keep a proxied request from costing a disk write,
 * last_seen is only written when it is at least SK_SESSION_TOUCH_INTERVAL seconds
 * older than now (checked by a read first, then re-checked atomically with the
 * write, so concurrent touches write once). It never moves backwards. Expiry is not
 * judged here: callers apply the idle/absolute policy before touching.
 * SK_STORE_OK, SK_STORE_NOTFOUND, or -1. */
int sk_store_session_touch(sk_store *s, const uint8_t hash[SK_SESSION_HASH_LEN],
                           int64_t now) SK_MUST_CHECK;
/* The same with the granularity chosen by the caller (>= 1 s). The gateway uses a
 * fraction of idle_timeout: a fixed 60 s would end sessions of active users when
 * idle_timeout is short, since idle is judged on the stored last_seen. */
int sk_store_session_touch_every(sk_store *s, const uint8_t hash[SK_SESSION_HASH_LEN], int64_t now,
                                 int64_t interval) SK_MUST_CHECK;
/* End every session of one user (logout everywhere, revocation), in one
 * commit. Returns the number deleted (>= 0) or -1. May cost a walk over all
 * sessions. */
int sk_store_session_delete_user(sk_store *s, const char *tenant, const char *id) SK_MUST_CHECK;
/* Call cb for each session as of one consistent snapshot; cb must not write to
 * the store; non-zero from cb stops the walk and is returned. */
int sk_store_session_list(sk_store *s, int (*cb)(const sk_session *sess, void *ctx),
                          void *ctx) SK_MUST_CHECK;
/* Delete every session idle for at least idle_timeout seconds (now - last_seen)
 * or older than absolute_timeout seconds (now - created). A timeout <= 0
 * disables that rule. Returns the number deleted (>= 0) or -1. */
int sk_store_session_sweep(sk_store *s, int64_t idle_timeout, int64_t absolute_timeout,
                           int64_t now) SK_MUST_CHECK;
/* Delete every session (`sekishoctl session revoke --all`). Count or -1. */
int sk_store_session_delete_all(sk_store *s) SK_MUST_CHECK;

/* ---- record codec (exposed for tests and tools) ------------------------ */

/* Version 2 appends totp_pending and dormant_notified_at; version 1 still decodes. */
#define SK_USER_RECORD_VERSION 3
#define SK_SESSION_RECORD_VERSION 1
/* Large enough for any encoded record of the current versions. */
#define SK_USER_RECORD_MAX 2048
#define SK_SESSION_RECORD_MAX 512

/* Encode into buf (capacity cap); *len gets the size. -1 if a field is out of
 * range (e.g. unterminated string, allow_count > SK_ALLOW_MAX) or cap is short. */
int sk_store_user_encode(const sk_user *u, uint8_t *buf, size_t cap, size_t *len) SK_MUST_CHECK;
/* Decode; -1 (and *out zeroed) on any malformed input. */
int sk_store_user_decode(const uint8_t *buf, size_t len, sk_user *out) SK_MUST_CHECK;
int sk_store_session_encode(const sk_session *s, uint8_t *buf, size_t cap, size_t *len) SK_MUST_CHECK;
/* The hash is not part of the value; decode leaves out->hash zeroed. */
int sk_store_session_decode(const uint8_t *buf, size_t len, sk_session *out) SK_MUST_CHECK;

#endif
