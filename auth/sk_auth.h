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
 *  - TOTP verification is a later issue: an account with TOTP enabled fails
 *    closed with reason SK_AUTH_R_TOTP_UNAVAILABLE, without counting a failure.
 *
 * Contracts: every fallible function returns int (0 / documented positive codes /
 * -1) and is SK_MUST_CHECK. Passwords are wiped as soon as they were hashed and
 * are never logged.
 */
#ifndef SK_AUTH_H
#define SK_AUTH_H

#include <stddef.h>
#include <stdint.h>
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
    SK_AUTH_R_TOTP_UNAVAILABLE,     /* TOTP enrolled but not verifiable yet */
    SK_AUTH_R_INTERNAL,             /* store or hashing error */
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

typedef struct sk_auth_config {
    sk_auth_params params;
    uint32_t lockout_threshold;     /* [policy] lockout_threshold, default 5 */
    int64_t lockout_duration;       /* [policy] lockout_duration, default 1800 s */
} sk_auth_config;

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

void sk_auth_pool_get_stats(sk_auth_pool *p, sk_auth_pool_stats *out);
/* Hold (paused != 0) or release the workers: while held, no new job is picked
 * up (running ones finish). For maintenance and for tests that need a full
 * queue deterministically. */
void sk_auth_pool_pause(sk_auth_pool *p, int paused);

#endif
