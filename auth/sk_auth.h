/*
 * sk_auth.h — password hashing and login verdicts.
 *
 * Passwords are hashed with argon2id (RFC 9106; default m = 64 MiB, t = 3,
 * p = 1) and a 16-byte random salt, stored as the standard encoded string
 * ("$argon2id$v=19$m=...,t=...,p=...$salt$hash").
 *
 * Logins never run on the caller's (event loop's) thread: a bounded pool of
 * worker threads takes sk_auth_request jobs and answers sk_auth_verdict. Both
 * structs are flat (fixed-size arrays, no pointers) so the pool can later move
 * into a separate, privileged process that alone can read password hashes: the
 * request/verdict pair is then simply written over a socket.
 *
 * Rules applied to a login (issue 2 scope):
 *  - The typed login ID must equal the certificate's CN and the account is
 *    looked up in the certificate's tenant (O). A mismatch, an unknown user and
 *    a locked account are each verified against a dummy hash made at startup
 *    with the same parameters, so they cost what a wrong password costs and
 *    answer the same FAIL (only the internal reason, for the audit log, differs).
 *    Paths that have nothing to count still make one durable store commit
 *    (sk_store_timing_pad), because a wrong password always commits one.
 *  - The decision and the counter update (failures, lockout, last_login) are
 *    committed in one store write transaction before the verdict is returned.
 *  - Lockout counting and "locked" checks are delegated to the policy module
 *    (sk_policy_lockout_*) with lockout_threshold / lockout_duration from the
 *    configuration.
 *  - Accounts with SK_USER_F_TOTP_ENABLED must also send the current RFC 6238
 *    code (6 digits, 30 s step, +-1 step; sk_policy_totp_* decides replay and
 *    window). The secret is decrypted and the code checked INSIDE the store
 *    write transaction, on the freshest record, and the accepted step is
 *    stored in totp_last_step in that same transaction, so two concurrent
 *    logins can never both use one code. A missing, wrong or replayed code
 *    counts as a failure toward lockout (reasons BAD_TOTP / TOTP_REPLAY) and
 *    the client gets the same FAIL as for a wrong password. Only when the code
 *    cannot be checked at all (key file missing or unreadable, blob that does
 *    not decrypt) does the login fail closed with TOTP_UNAVAILABLE, without
 *    counting: that is an operator's problem, not a guess.
 *
 * Contracts: every fallible function returns int (0 / documented positive codes /
 * -1) and is SK_MUST_CHECK. Passwords are wiped as soon as they were hashed and
 * are never logged.
 */
#ifndef SK_AUTH_H
#define SK_AUTH_H

#include <stddef.h>
#include <stdint.h>
#include "sk_conf.h"
#include "sk_policy.h"
#include "sk_store.h"
#include "sk_util.h"

/* Longest password handed to argon2 (bytes). Longer input is refused. */
#define SK_AUTH_PASSWORD_MAX 1024
/* Room for an encoded hash with any sane parameters. */
#define SK_AUTH_ENCODED_MAX (SK_PWHASH_MAX + 1)
#define SK_AUTH_SALT_LEN 16
#define SK_AUTH_HASH_LEN 32
/* Hashes asking for more memory than this are refused as corrupt. */
#define SK_AUTH_MEMORY_MAX_KIB (4u * 1024u * 1024u)

typedef struct sk_auth_params {
    uint32_t memory_kib;    /* [auth] argon2_memory_kib, default 65536 */
    uint32_t iterations;    /* [auth] argon2_iterations, default 3 */
    uint32_t parallelism;   /* [auth] argon2_parallelism, default 1 */
} sk_auth_params;

/* RFC 9106 §4 second recommended option, with t = 3. */
void sk_auth_params_default(sk_auth_params *p);
/* 0 if argon2 accepts the parameters and memory <= SK_AUTH_MEMORY_MAX_KIB. */
int sk_auth_params_check(const sk_auth_params *p) SK_MUST_CHECK;

/* Hash pw (len bytes, 0 < len <= SK_AUTH_PASSWORD_MAX) into the NUL-terminated
 * encoded string out (capacity cap; SK_AUTH_ENCODED_MAX is enough). */
int sk_auth_hash_password(const sk_auth_params *p, const void *pw, size_t len, char *out,
                          size_t cap) SK_MUST_CHECK;
/* 1 match, 0 no match, -1 error (malformed encoding, not argon2id, parameters
 * beyond SK_AUTH_MEMORY_MAX_KIB, out of memory). Comparison is constant-time. */
int sk_auth_verify_password(const char *encoded, const void *pw, size_t len) SK_MUST_CHECK;

/* ---- login requests and verdicts ---------------------------------------- */

#define SK_AUTH_LOGIN_ID_MAX 255
#define SK_AUTH_TOTP_MAX 15
#define SK_AUTH_PEER_MAX 63

typedef struct sk_auth_request {
    /* From the verified client certificate (never from the client's form). */
    char cert_tenant[SK_TENANT_MAX + 1];         /* subject O */
    char cert_id[SK_USER_ID_MAX + 1];            /* subject CN */
    /* Typed by the user. A typed ID that does not fit should be passed as ""
     * (it then mismatches like any other wrong ID). */
    char login_id[SK_AUTH_LOGIN_ID_MAX + 1];
    uint8_t password[SK_AUTH_PASSWORD_MAX];      /* not NUL-terminated */
    size_t password_len;
    char totp[SK_AUTH_TOTP_MAX + 1];             /* may be "" */
    char peer[SK_AUTH_PEER_MAX + 1];             /* client address, for logs */
    int64_t now;                                 /* decision time, UTC seconds */
} sk_auth_request;

typedef enum sk_auth_outcome {
    SK_AUTH_OK = 0,     /* password (and TOTP) accepted: open a session */
    SK_AUTH_FAIL = 1,   /* answer exactly like a wrong password */
    SK_AUTH_ERROR = 2,  /* internal failure (store, memory): answer 500 */
    SK_AUTH_REFUSED = 3,/* password change only: the NEW password breaks the
                         * rules (show sk_policy_password_message(pw_result)) */
} sk_auth_outcome;

/* Why, for the audit log only; never shown to the client. */
typedef enum sk_auth_reason {
    SK_AUTH_R_NONE = 0,
    SK_AUTH_R_UNKNOWN_USER,
    SK_AUTH_R_BAD_PASSWORD,
    SK_AUTH_R_CERT_MISMATCH,        /* typed ID differs from the certificate CN */
    SK_AUTH_R_LOCKED,               /* lockout after failures, still running */
    SK_AUTH_R_OPERATOR_LOCKED,      /* `sekishoctl user lock` */
    SK_AUTH_R_DORMANT_LOCKED,
    SK_AUTH_R_NO_PASSWORD,          /* account has no usable password hash */
    SK_AUTH_R_BAD_REQUEST,          /* empty or over-long password, bad identity */
    SK_AUTH_R_TOTP_UNAVAILABLE,     /* TOTP enrolled but not checkable (key file, blob) */
    SK_AUTH_R_INTERNAL,             /* store or hashing error */
    SK_AUTH_R_BAD_TOTP,             /* password right, TOTP code missing or wrong */
    SK_AUTH_R_TOTP_REPLAY,          /* password right, TOTP code already used */
    SK_AUTH_R_PASSWORD_POLICY,      /* password change: new password breaks the rules */
    SK_AUTH_R_SAME_PASSWORD,        /* password change: new password == current */
    SK_AUTH_R_COUNT_
} sk_auth_reason;

/* Stable lower-case name, e.g. "cert_mismatch", for audit records. */
const char *sk_auth_reason_name(sk_auth_reason r);

typedef struct sk_auth_verdict {
    sk_auth_outcome outcome;
    sk_auth_reason reason;
    /* The account the attempt was charged to: the certificate identity. */
    char tenant[SK_TENANT_MAX + 1];
    char id[SK_USER_ID_MAX + 1];
    int user_exists;                /* 1 if the account exists (audit only) */
    enum sk_role role;              /* valid when outcome == SK_AUTH_OK */
    int must_change_password;       /* valid when outcome == SK_AUTH_OK */
    uint32_t failures;              /* consecutive failures after this attempt */
    int locked_now;                 /* 1 when this very failure locked the account */
    int64_t locked_until;           /* end of the timed lock, 0 if none */
} sk_auth_verdict;

/* ---- worker pool --------------------------------------------------------- */

#define SK_AUTH_PATH_MAX 1024

typedef struct sk_auth_config {
    sk_auth_params params;
    uint32_t lockout_threshold;     /* [policy] lockout_threshold, default 5 */
    int64_t lockout_duration;       /* [policy] lockout_duration, default 1800 s */
    /* Added for TOTP and password changes. A caller that zeroes the struct
     * and sets only the fields above keeps working: an empty totp_key_path
     * makes TOTP logins fail closed (TOTP_UNAVAILABLE), and password_max_length
     * == 0 means "all five password fields take the policy defaults". */
    char totp_key_path[SK_AUTH_PATH_MAX];   /* [auth] totp_key */
    uint32_t password_min_length;           /* [policy] password_* */
    uint32_t password_max_length;
    int password_require_upper;
    int password_require_lower;
    int password_require_digit;
} sk_auth_config;

/* Every field above from a loaded configuration. 0, or -1 when a path does not
 * fit. Use this rather than filling the struct by hand. */
int sk_auth_config_from_conf(const sk_conf *conf, sk_auth_config *out) SK_MUST_CHECK;
/* The policy configuration the auth module applies for cfg: sk_policy_defaults
 * overridden by cfg's lockout and password fields. */
void sk_auth_policy_config(const sk_auth_config *cfg, sk_policy_config *out);

typedef struct sk_auth_pool sk_auth_pool;

/* sk_auth_login() result besides 0 / -1: the queue is full, answer 503 +
 * Retry-After. Nothing was charged to the account. */
#define SK_AUTH_BUSY 1

typedef struct sk_auth_pool_stats {
    uint32_t waiting;       /* jobs queued, not yet picked up */
    uint32_t running;       /* jobs being worked on */
    uint64_t completed;
    uint64_t rejected_busy;
} sk_auth_pool_stats;

/* Start `workers` threads (1..256) with at most queue_max (>= 1) jobs waiting.
 * Makes the dummy hash (one argon2 run) before returning. */
int sk_auth_pool_create(unsigned workers, unsigned queue_max, const sk_auth_config *cfg,
                        sk_auth_pool **out) SK_MUST_CHECK;
/* Stop accepting jobs, finish every queued one (their callers get real
 * verdicts), join the workers and free. NULL is accepted. No sk_auth_login()
 * call may start after destroy has begun. */
void sk_auth_pool_destroy(sk_auth_pool *p);

/* Submit req and wait for its verdict (blocks the calling thread, never the
 * workers). Returns 0 with *out filled (outcome may be OK, FAIL or ERROR),
 * SK_AUTH_BUSY at once when queue_max jobs are already waiting, or -1 when the
 * pool is shutting down or req is unusable. The pool copies req; the worker
 * wipes its copy of the password right after hashing, and the caller wipes its
 * own req. `store` must stay open until the call returns. */
int sk_auth_login(sk_auth_pool *p, sk_store *store, const sk_auth_request *req,
                  sk_auth_verdict *out) SK_MUST_CHECK;

/* ---- password change (page /.sekisho/password) --------------------------- */

typedef struct sk_auth_pwchange_request {
    char tenant[SK_TENANT_MAX + 1];               /* from the session, never the form */
    char id[SK_USER_ID_MAX + 1];
    uint8_t current[SK_AUTH_PASSWORD_MAX];        /* typed current password */
    size_t current_len;
    uint8_t new_password[SK_AUTH_PASSWORD_MAX];   /* typed new password (UTF-8) */
    size_t new_len;
    /* The session making the change survives; every other session of the user
     * ends in the same transaction as the password update. */
    uint8_t keep_session[SK_SESSION_HASH_LEN];
    int keep_session_set;                         /* 0 = end every session */
    int64_t now;
} sk_auth_pwchange_request;

typedef struct sk_auth_pwchange_verdict {
    /* OK: changed. FAIL: current password wrong, or account unknown/locked:
     * show "current password is wrong" (the same answer for all of them).
     * REFUSED: the new password breaks the rules (pw_result says which) or
     * equals the current one (reason SAME_PASSWORD). ERROR: answer 500. */
    sk_auth_outcome outcome;
    sk_auth_reason reason;                  /* for the audit log */
    sk_policy_pw_result pw_result;          /* valid when reason == PASSWORD_POLICY */
    uint32_t failures;                      /* consecutive failures after this attempt */
    int locked_now;                         /* 1 when this failure locked the account */
    int64_t locked_until;
    int sessions_ended;                     /* other sessions ended (OK only) */
} sk_auth_pwchange_verdict;

/*
 * Change a password, in the worker pool (two argon2 runs: verify the current
 * one, hash the new one; the calling thread only waits). Order:
 *  1. the new password against sk_policy_password_check (rules of cfg, user ID)
 *     and "new != current": REFUSED without touching the account;
 *  2. the current password, exactly like a login: unknown or locked accounts
 *     are verified against the dummy hash and answer FAIL; a wrong current
 *     password counts toward lockout (committed before the answer);
 *  3. in ONE store transaction, re-checked on the fresh record (not locked,
 *     hash unchanged meanwhile): new hash, SK_USER_F_MUST_CHANGE_PW cleared,
 *     password_changed = now, failure count reset, every session of the user
 *     except keep_session deleted.
 * Returns 0 with *out filled, SK_AUTH_BUSY (queue full, nothing charged), or -1
 * (shutting down, unusable request). Both passwords are wiped by the worker. */
int sk_auth_change_password(sk_auth_pool *p, sk_store *store, const sk_auth_pwchange_request *req,
                            sk_auth_pwchange_verdict *out) SK_MUST_CHECK;

/* Run fn(arg) on a pool worker without waiting for it: the whole of a request
 * that must not run on an event loop (a login: argon2, the store commit, the audit
 * entry). Inside fn, sk_auth_login and sk_auth_change_password are decided on that
 * same worker. fn must arrange its own completion notice. Returns 0 (queued),
 * SK_AUTH_BUSY (queue_max jobs already waiting: fn will not run), or -1 (shutting
 * down: fn will not run). Destroy runs every queued fn before it returns. */
int sk_auth_pool_run(sk_auth_pool *p, void (*fn)(void *arg), void *arg) SK_MUST_CHECK;

void sk_auth_pool_get_stats(sk_auth_pool *p, sk_auth_pool_stats *out);
/* Hold (paused != 0) or release the workers: while held, no new job is picked
 * up (running ones finish). For maintenance and for tests that need a full
 * queue deterministically. */
void sk_auth_pool_pause(sk_auth_pool *p, int paused);

/* ---- TOTP (RFC 6238, liboath) ------------------------------------------------
 *
 * Secrets are 20 random bytes (HMAC-SHA1, 6 digits, 30 s). At rest they are
 * sealed with AES-256-GCM: blob = 0x01 | nonce (12, random) | ciphertext (20) |
 * tag (16), AAD = tenant "\0" id, so a blob moved to another account does not
 * open. The 32-byte key lives in its own file ([auth] totp_key, default
 * <state>/totp.key), outside the database: a copied database alone reveals no
 * secret. The key file must be a regular file of exactly 32 bytes, not
 * readable or writable by group or others; anything else is refused. It is
 * created (mode 0600, random bytes) by whoever first needs it to SEAL a secret:
 * written to a private temporary file (mkstemp: O_EXCL) and published with
 * link(2), which fails if another process won the race; the loser then uses
 * the winner's key. Verification never creates a key (a new key could not open
 * the existing blobs).
 */
#define SK_AUTH_TOTP_KEY_LEN 32
#define SK_AUTH_TOTP_SECRET_LEN 20
#define SK_AUTH_TOTP_BLOB_LEN (1 + 12 + SK_AUTH_TOTP_SECRET_LEN + 16)
#define SK_AUTH_TOTP_DIGITS 6
#define SK_AUTH_TOTP_STEP 30
#define SK_AUTH_TOTP_B32_MAX 40      /* 32 base32 characters + NUL, with room */
#define SK_AUTH_TOTP_URI_MAX 512

/* Load the key from path into key. create != 0: a missing file is created
 * first (see above). 0, or -1 with the reason logged (never the key). */
int sk_auth_totp_key_load(const char *path, int create, uint8_t key[SK_AUTH_TOTP_KEY_LEN]) SK_MUST_CHECK;
/* The same, but the reason for a failure goes to why (cap why_cap, one line,
 * no key material) instead of the log; why may be NULL (then it is logged). */
int sk_auth_totp_key_load_ex(const char *path, int create, uint8_t key[SK_AUTH_TOTP_KEY_LEN],
                             char *why, size_t why_cap) SK_MUST_CHECK;

/* Seal len (1..64) secret bytes for (tenant, id) into blob (cap bytes;
 * SK_AUTH_TOTP_BLOB_LEN for a standard secret); *blob_len gets the size. */
int sk_auth_totp_seal(const uint8_t key[SK_AUTH_TOTP_KEY_LEN], const char *tenant, const char *id,
                      const uint8_t *secret, size_t len, uint8_t *blob, size_t cap,
                      size_t *blob_len) SK_MUST_CHECK;
/* Open a blob sealed for (tenant, id). -1 for a wrong key, a wrong account, a
 * tampered or truncated blob or an unknown blob version (nothing is written to
 * secret then, beyond being wiped). */
int sk_auth_totp_open(const uint8_t key[SK_AUTH_TOTP_KEY_LEN], const char *tenant, const char *id,
                      const uint8_t *blob, size_t blob_len, uint8_t *secret, size_t cap,
                      size_t *len) SK_MUST_CHECK;

/* RFC 4648 base32 (A-Z2-7), no padding, NUL-terminated. -1 if cap is short. */
int sk_auth_base32_encode(const uint8_t *in, size_t n, char *out, size_t cap) SK_MUST_CHECK;
/* otpauth://totp/Sekisho:<tenant>%2F<id>?secret=...&issuer=Sekisho&algorithm=SHA1&digits=6&period=30
 * (label percent-encoded). */
int sk_auth_totp_uri(const char *tenant, const char *id, const char *secret_b32, char *out,
                     size_t cap) SK_MUST_CHECK;
/* The code for secret at time now (digits + NUL = 7 bytes). For tests/tools. */
int sk_auth_totp_code(const uint8_t *secret, size_t len, int64_t now, char out[7]) SK_MUST_CHECK;

/* Check a typed code. Returns SK_POLICY_TOTP_ACCEPT (0) with *matched_step set,
 * SK_POLICY_TOTP_REPLAY when it is the code of an already used step in the
 * window, SK_POLICY_TOTP_OUT_OF_WINDOW when it matches no step of the window
 * (also for anything that is not exactly 6 ASCII digits), or -1 on an internal
 * error. Every step of the window is computed and compared in constant time. */
int sk_auth_totp_check(const sk_policy_config *pc, const uint8_t *secret, size_t len,
                       const char *code, int64_t last_step, int64_t now,
                       int64_t *matched_step) SK_MUST_CHECK;

/* ---- activation links ------------------------------------------------------
 *
 * A new account (created without a password) is invited with a single-use,
 * time-limited link (`sekishoctl user invite`): the token is 32 random bytes, only
 * its SHA-256 and expiry are stored in the account, and a new link replaces the
 * previous one. The gateway's /.sekisho/activate page, reachable only with that
 * account's certificate, sets the first password with it.
 */
#define SK_AUTH_ACTIVATION_TOKEN_LEN 32
#define SK_AUTH_ACTIVATION_INVALID 5  /* no such link: used, replaced, expired or another account's */
#define SK_AUTH_ACTIVATION_REFUSED 6  /* the password breaks the rules (see *why) */

/* A new link for (tenant, id), valid until expires: token gets the 32 bytes to put
 * in the link. 0, SK_STORE_NOTFOUND or -1 (token wiped then). */
int sk_auth_activation_new(sk_store *store, const char *tenant, const char *id, int64_t expires,
                           uint8_t token[SK_AUTH_ACTIVATION_TOKEN_LEN]) SK_MUST_CHECK;
/* 1 when token is (tenant, id)'s current, unexpired link (read only: the page that
 * asks for the password says at once when a link is dead), else 0. */
int sk_auth_activation_valid(sk_store *store, const char *tenant, const char *id,
                             const uint8_t token[SK_AUTH_ACTIVATION_TOKEN_LEN], int64_t now);
/* Set the first password with a link (argon2 runs here: call it off any event
 * loop). The rules are checked first; then, in one store transaction, the link is
 * checked (constant time), spent, and the password set (failures and lockout
 * cleared, must-change cleared). 0, SK_AUTH_ACTIVATION_INVALID,
 * SK_AUTH_ACTIVATION_REFUSED (*why) or -1. pw is the caller's to wipe. */
int sk_auth_activate(const sk_auth_config *cfg, sk_store *store, const char *tenant, const char *id,
                     const uint8_t token[SK_AUTH_ACTIVATION_TOKEN_LEN], const char *pw, size_t pw_len, int64_t now,
                     sk_policy_pw_result *why) SK_MUST_CHECK;

/* Results of the enrolment calls besides 0 / -1 / SK_STORE_NOTFOUND. */
#define SK_AUTH_TOTP_BADCODE 4   /* confirm: no pending secret, or code wrong/replayed */

/*
 * Enrolment by the user (page /.sekisho/totp; cheap, fine on a request thread:
 * no argon2). begin: a fresh secret is sealed into the user's totp_pending
 * (replacing an earlier unconfirmed one; TOTP stays as it was) and returned
 * as base32 (b32, cap >= SK_AUTH_TOTP_B32_MAX) and as an otpauth:// URI (uri,
 * cap >= SK_AUTH_TOTP_URI_MAX). The key file is created if needed.
 * Returns 0, SK_STORE_NOTFOUND, or -1. Outputs are wiped on failure.
 */
int sk_auth_totp_begin(const sk_auth_config *cfg, sk_store *store, const char *tenant,
                       const char *id, char *b32, size_t b32_cap, char *uri,
                       size_t uri_cap) SK_MUST_CHECK;
/* The pending (unconfirmed) secret again, for a retry after a mistyped code: the
 * user has already scanned it. 0, SK_STORE_NOTFOUND (none pending), or -1. */
int sk_auth_totp_pending(const sk_auth_config *cfg, sk_store *store, const char *tenant,
                         const char *id, char *b32, size_t b32_cap, char *uri,
                         size_t uri_cap) SK_MUST_CHECK;
/* confirm: code must match the PENDING secret (window and replay rules as at
 * login). Then, in one transaction, pending becomes the active secret,
 * SK_USER_F_TOTP_ENABLED is set and totp_last_step = the matched step (so the
 * confirming code cannot also be used to log in). Wrong codes do not count
 * toward lockout: the caller is logged in and learns nothing new.
 * Returns 0, SK_AUTH_TOTP_BADCODE, SK_STORE_NOTFOUND or -1. */
int sk_auth_totp_confirm(const sk_auth_config *cfg, sk_store *store, const char *tenant,
                         const char *id, const char *code, int64_t now) SK_MUST_CHECK;
/* Operator enrolment (`sekishoctl user totp enable`): a fresh secret becomes
 * active at once (pending cleared); b32/uri as for begin. */
int sk_auth_totp_enable(const sk_auth_config *cfg, sk_store *store, const char *tenant,
                        const char *id, char *b32, size_t b32_cap, char *uri,
                        size_t uri_cap) SK_MUST_CHECK;
/* Remove TOTP (active and pending). 0, SK_STORE_NOTFOUND, or -1. */
int sk_auth_totp_disable(sk_store *store, const char *tenant, const char *id) SK_MUST_CHECK;

/* QR code (libqrencode, level M) of text as an inline <svg> element (no XML
 * prolog; viewBox in modules with a 4-module quiet zone; black on white; no
 * script), NUL-terminated in out. 0, or -1 (cap too small: out is ""). A URI
 * of SK_AUTH_TOTP_URI_MAX bytes needs at most about 64 KiB. */
int sk_auth_totp_qr_svg(const char *text, char *out, size_t cap) SK_MUST_CHECK;
/* The same for a terminal: UTF-8 half blocks, two module rows per line,
 * quiet zone included, drawn like `qrencode -t UTF8` (light modules are the
 * glyphs, for the usual light-on-dark terminal). 0 or -1. */
int sk_auth_totp_qr_text(const char *text, char *out, size_t cap) SK_MUST_CHECK;

#endif
