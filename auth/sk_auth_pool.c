/*
 * The login worker pool and the login decision itself.
 *
 * Threading: one mutex guards the queue and the counters. A job lives on the
 * stack of the thread that called sk_auth_login(); that thread sleeps on the
 * job's condition variable until a worker marks it done, so no job memory is
 * allocated per login and none outlives its caller.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "sk_auth.h"
#include "sk_policy.h"

enum job_kind { JOB_LOGIN = 0, JOB_PWCHANGE, JOB_FN };

typedef struct job {
    enum job_kind kind;
    union {
        sk_auth_request req;
        sk_auth_pwchange_request pw;
    } in;
    sk_store *store;
    union {
        sk_auth_verdict verdict;
        sk_auth_pwchange_verdict pwv;
    } res;
    int done;
    pthread_cond_t cond;
    struct job *next;
    /* JOB_FN: run and free, nobody waits */
    void (*fn)(void *arg);
    void *arg;
} job;

/* The pool a thread works for: a job run by a pool worker that asks for a login
 * verdict gets it decided right there, never queued behind itself. */
static _Thread_local sk_auth_pool *tl_pool;

struct sk_auth_pool {
    pthread_mutex_t mu;
    pthread_cond_t work;        /* signalled when a job arrives or state changes */
    pthread_cond_t idle;        /* signalled when the last caller leaves */
    uint32_t callers;           /* threads inside sk_auth_login() holding a job */
    job *head, *tail;
    uint32_t waiting, running;
    uint64_t completed, rejected_busy;
    unsigned queue_max;
    int paused;
    int stopping;
    sk_auth_config cfg;
    char dummy_hash[SK_AUTH_ENCODED_MAX];
    unsigned nthreads;
    pthread_t *threads;
    /* TOTP key, loaded on first need and then kept (see totp_key()). */
    pthread_mutex_t key_mu;
    int key_ok;         /* key_mu initialised */
    int key_loaded;
    uint8_t totp_key[SK_AUTH_TOTP_KEY_LEN];
};

static const char *const reason_names[SK_AUTH_R_COUNT_] = {
    [SK_AUTH_R_NONE] = "none",
    [SK_AUTH_R_UNKNOWN_USER] = "unknown_user",
    [SK_AUTH_R_BAD_PASSWORD] = "bad_password",
    [SK_AUTH_R_CERT_MISMATCH] = "cert_mismatch",
    [SK_AUTH_R_LOCKED] = "locked",
    [SK_AUTH_R_OPERATOR_LOCKED] = "operator_locked",
    [SK_AUTH_R_DORMANT_LOCKED] = "dormant_locked",
    [SK_AUTH_R_NO_PASSWORD] = "no_password",
    [SK_AUTH_R_BAD_REQUEST] = "bad_request",
    [SK_AUTH_R_TOTP_UNAVAILABLE] = "totp_unavailable",
    [SK_AUTH_R_INTERNAL] = "internal",
    [SK_AUTH_R_BAD_TOTP] = "bad_totp",
    [SK_AUTH_R_TOTP_REPLAY] = "totp_replay",
    [SK_AUTH_R_PASSWORD_POLICY] = "password_policy",
    [SK_AUTH_R_SAME_PASSWORD] = "same_password",
};

const char *sk_auth_reason_name(sk_auth_reason r)
{
    if ((unsigned)r >= SK_AUTH_R_COUNT_ || !reason_names[r])
        return "unknown";
    return reason_names[r];
}

/* ===================================================================== */
/* Configuration and lockout: every "is this account locked" question and   */
/* every failure / success count goes through the policy module.            */
/* ===================================================================== */

int sk_auth_config_from_conf(const sk_conf *conf, sk_auth_config *out)
{
    memset(out, 0, sizeof *out);
    out->params.memory_kib = conf->argon2_memory_kib;
    out->params.iterations = conf->argon2_iterations;
    out->params.parallelism = conf->argon2_parallelism;
    out->lockout_threshold = conf->lockout_threshold;
    out->lockout_duration = conf->lockout_duration;
    out->password_min_length = conf->password_min_length;
    out->password_max_length = conf->password_max_length;
    out->password_require_upper = conf->password_require_upper;
    out->password_require_lower = conf->password_require_lower;
    out->password_require_digit = conf->password_require_digit;
    if (sk_strlcpy(out->totp_key_path, sizeof out->totp_key_path, conf->auth_totp_key) != 0)
        return -1;
    return 0;
}

void sk_auth_policy_config(const sk_auth_config *cfg, sk_policy_config *out)
{
    sk_policy_defaults(out);
    out->lockout_threshold = cfg->lockout_threshold;
    out->lockout_duration = cfg->lockout_duration;
    if (cfg->password_max_length != 0) {
        out->password_min_length = cfg->password_min_length;
        out->password_max_length = cfg->password_max_length;
        out->password_require_upper = cfg->password_require_upper;
        out->password_require_lower = cfg->password_require_lower;
        out->password_require_digit = cfg->password_require_digit;
    }
}

static sk_auth_reason lock_reason(const sk_auth_config *cfg, const sk_user *u, int64_t now)
{
    (void)cfg;
    if (u->flags & SK_USER_F_OPERATOR_LOCKED)
        return SK_AUTH_R_OPERATOR_LOCKED;
    if (u->flags & SK_USER_F_DORMANT_LOCKED)
        return SK_AUTH_R_DORMANT_LOCKED;
    sk_policy_lockout ls = { .failures = u->failures, .locked_until = u->locked_until };
    if (!sk_policy_lockout_may_attempt(&ls, now))
        return SK_AUTH_R_LOCKED;
    return SK_AUTH_R_NONE;
}

/* The hash a password is verified against: the account's own, or the dummy made at
 * start-up when the account is unknown, locked, has no password or the typed one is
 * empty. Either way exactly one argon2 run follows, so every path costs the same;
 * *reason says why the real hash was not used (SK_AUTH_R_NONE when it was). */
static const char *hash_to_verify(const sk_auth_pool *p, const sk_user *u, int64_t now, size_t typed_len,
                                  sk_auth_reason *reason)
{
    *reason = SK_AUTH_R_NONE;
    if (u == NULL)
        *reason = SK_AUTH_R_UNKNOWN_USER;
    else if ((*reason = lock_reason(&p->cfg, u, now)) != SK_AUTH_R_NONE)
        ;
    else if (u->pw_hash[0] == '\0')
        *reason = SK_AUTH_R_NO_PASSWORD;
    else if (typed_len == 0)
        *reason = SK_AUTH_R_BAD_PASSWORD;
    else
        return u->pw_hash;
    return p->dummy_hash;
}

/* Count one failure; returns 1 when it locked the account. */
static int lock_record_failure(const sk_auth_config *cfg, sk_user *u, int64_t now)
{
    sk_policy_config pc;
    sk_auth_policy_config(cfg, &pc);
    sk_policy_lockout ls = { .failures = u->failures, .locked_until = u->locked_until };
    int locked = sk_policy_lockout_record_failure(&pc, &ls, now);
    u->failures = ls.failures;
    u->locked_until = ls.locked_until;
    return locked;
}

static void lock_record_success(sk_user *u)
{
    sk_policy_lockout ls = { .failures = u->failures, .locked_until = u->locked_until };
    sk_policy_lockout_record_success(&ls);
    u->failures = ls.failures;
    u->locked_until = ls.locked_until;
}

/* The TOTP key for verification: loaded once, never created here (a new key
 * could not open the secrets already stored). NULL when unavailable; a later
 * call tries again, so an operator can fix the file without a restart. */
static const uint8_t *totp_key(sk_auth_pool *p)
{
    const uint8_t *k = NULL;
    pthread_mutex_lock(&p->key_mu);
    if (!p->key_loaded && p->cfg.totp_key_path[0] != '\0' &&
        sk_auth_totp_key_load(p->cfg.totp_key_path, 0, p->totp_key) == 0)
        p->key_loaded = 1;
    if (p->key_loaded)
        k = p->totp_key;
    pthread_mutex_unlock(&p->key_mu);
    return k;
}

/* ===================================================================== */
/* The decision                                                          */
/* ===================================================================== */

typedef struct commit_ctx {
    const sk_auth_config *cfg;
    int64_t now;
    int password_ok;                    /* argon2 said yes */
    char hash_seen[SK_PWHASH_MAX + 1];  /* the hash the password was checked against */
    const char *totp;                   /* typed code, may be "" */
    const uint8_t *totp_key;            /* NULL: TOTP not checkable */
    int pad;                            /* vetoed without a write: pay for a commit */
    sk_auth_verdict *v;
} commit_ctx;

/* Check the typed code against the fresh record. ACCEPT (and totp_last_step
 * advanced), a failure reason, or TOTP_UNAVAILABLE. */
static sk_auth_reason totp_verify(commit_ctx *c, sk_user *u)
{
    uint8_t secret[64];
    size_t len = 0;
    sk_policy_config pc;
    int64_t step = 0;
    sk_auth_reason r = SK_AUTH_R_TOTP_UNAVAILABLE;

    if (!c->totp_key) {
        sk_log(SK_LOG_ERR, "auth: TOTP key unavailable; %s/%s cannot log in", u->tenant, u->id);
        goto out;
    }
    if (sk_auth_totp_open(c->totp_key, u->tenant, u->id, u->totp_secret, u->totp_secret_len,
                          secret, sizeof secret, &len) != 0) {
        sk_log(SK_LOG_ERR, "auth: TOTP secret of %s/%s does not open with the key", u->tenant,
               u->id);
        goto out;
    }
    sk_auth_policy_config(c->cfg, &pc);
    int v = sk_auth_totp_check(&pc, secret, len, c->totp, u->totp_last_step, c->now, &step);
    if (v == SK_POLICY_TOTP_ACCEPT) {
        u->totp_last_step = step;
        r = SK_AUTH_R_NONE;
    } else if (v == SK_POLICY_TOTP_REPLAY) {
        r = SK_AUTH_R_TOTP_REPLAY;
    } else if (v == SK_POLICY_TOTP_OUT_OF_WINDOW) {
        r = SK_AUTH_R_BAD_TOTP;
    }
out:
    sk_wipe(secret, sizeof secret);
    return r;
}

/* Runs inside the store's write transaction on the freshest record. */
static int commit_fn(sk_user *u, void *arg)
{
    commit_ctx *c = arg;
    sk_auth_verdict *v = c->v;
    sk_auth_reason lr = lock_reason(c->cfg, u, c->now);

    if (c->password_ok) {
        /* Re-check: another login may have locked the account, or an operator
         * changed the password, while argon2 ran outside the transaction. */
        if (lr != SK_AUTH_R_NONE) {
            v->outcome = SK_AUTH_FAIL;
            v->reason = lr;
        } else if (strcmp(u->pw_hash, c->hash_seen) != 0) {
            v->outcome = SK_AUTH_FAIL;
            v->reason = SK_AUTH_R_BAD_PASSWORD;
        } else if ((u->flags & SK_USER_F_TOTP_ENABLED) &&
                   (v->reason = totp_verify(c, u)) != SK_AUTH_R_NONE) {
            v->outcome = SK_AUTH_FAIL;
            if (v->reason == SK_AUTH_R_TOTP_UNAVAILABLE) {
                c->pad = 1; /* not the user's fault: nothing counted */
            } else {
                /* A wrong, missing or replayed code counts like a wrong
                 * password, and looks the same to the client. */
                v->locked_now = lock_record_failure(c->cfg, u, c->now);
                v->failures = u->failures;
                v->locked_until = u->locked_until;
                return 0;
            }
        } else {
            lock_record_success(u);
            u->last_login = c->now;
            v->outcome = SK_AUTH_OK;
            v->reason = SK_AUTH_R_NONE;
            v->role = u->role;
            v->must_change_password = (u->flags & SK_USER_F_MUST_CHANGE_PW) != 0;
            v->failures = u->failures;
            v->locked_until = u->locked_until;
            return 0;
        }
        v->failures = u->failures;
        v->locked_until = u->locked_until;
        return 1; /* nothing to write */
    }
    if (lr != SK_AUTH_R_NONE) {
        /* Locked meanwhile: guessing against a lock changes nothing. A
         * certificate mismatch keeps its more telling reason. */
        if (v->reason != SK_AUTH_R_CERT_MISMATCH)
            v->reason = lr;
        v->failures = u->failures;
        v->locked_until = u->locked_until;
        return 1;
    }
    v->locked_now = lock_record_failure(c->cfg, u, c->now);
    v->failures = u->failures;
    v->locked_until = u->locked_until;
    return 0;
}

static void decide(sk_auth_pool *p, job *j)
{
    sk_auth_request *r = &j->in.req;
    sk_auth_verdict *v = &j->res.verdict;
    sk_user u;
    commit_ctx c;
    int mismatch, exists = 0, rc, vr, pad = 0;
    sk_auth_reason reason = SK_AUTH_R_NONE;
    const char *against = p->dummy_hash;

    memset(v, 0, sizeof *v);
    memset(&c, 0, sizeof c);
    memset(&u, 0, sizeof u);
    v->outcome = SK_AUTH_FAIL;

    if (!sk_store_valid_tenant(r->cert_tenant) || !sk_store_valid_id(r->cert_id) ||
        r->password_len > SK_AUTH_PASSWORD_MAX) {
        v->reason = SK_AUTH_R_BAD_REQUEST;
        goto out;
    }
    if (sk_strlcpy(v->tenant, sizeof v->tenant, r->cert_tenant) != 0 ||
        sk_strlcpy(v->id, sizeof v->id, r->cert_id) != 0) {
        v->reason = SK_AUTH_R_BAD_REQUEST;
        goto out;
    }
    /* Not a secret comparison (both IDs are known to the client), but the
     * branch below costs the same either way. */
    mismatch = strcmp(r->login_id, r->cert_id) != 0;

    rc = sk_store_user_get(j->store, r->cert_tenant, r->cert_id, &u);
    if (rc == SK_STORE_OK) {
        exists = 1;
    } else if (rc != SK_STORE_NOTFOUND) {
        v->outcome = SK_AUTH_ERROR;
        v->reason = SK_AUTH_R_INTERNAL;
        goto out;
    }
    v->user_exists = exists;

    if (mismatch)
        reason = SK_AUTH_R_CERT_MISMATCH;
    else
        against = hash_to_verify(p, exists ? &u : NULL, r->now, r->password_len, &reason);

    /* Always one argon2 run with the configured cost, whatever the path. */
    vr = sk_auth_verify_password(against, r->password, r->password_len);
    sk_wipe(r->password, sizeof r->password);
    r->password_len = 0;

    if (against == p->dummy_hash) {
        v->reason = reason;
        if (vr < 0)
            sk_log(SK_LOG_ERR, "auth: dummy verification failed");
        /* A typed ID that differs from the certificate is a failed attempt by
         * the certificate's holder: count it like a wrong password. Unknown and
         * locked accounts have nothing to count, but pay for a commit anyway so
         * that their timing matches a wrong password's. */
        if (reason != SK_AUTH_R_CERT_MISMATCH || !exists) {
            pad = 1;
            goto out;
        }
        c.password_ok = 0;
    } else if (vr < 0) {
        v->outcome = SK_AUTH_ERROR;
        v->reason = SK_AUTH_R_INTERNAL;
        goto out;
    } else {
        c.password_ok = vr == 1;
        v->reason = c.password_ok ? SK_AUTH_R_NONE : SK_AUTH_R_BAD_PASSWORD;
        /* The TOTP code is checked inside the transaction (commit_fn), on the
         * freshest record; here only the key is fetched. */
        if (c.password_ok && (u.flags & SK_USER_F_TOTP_ENABLED))
            c.totp_key = totp_key(p);
    }

    c.cfg = &p->cfg;
    c.now = r->now;
    c.totp = r->totp;
    c.v = v;
    if (sk_strlcpy(c.hash_seen, sizeof c.hash_seen, u.pw_hash) != 0) {
        v->outcome = SK_AUTH_ERROR;
        v->reason = SK_AUTH_R_INTERNAL;
        goto out;
    }
    reason = v->reason;
    rc = sk_store_user_update(j->store, r->cert_tenant, r->cert_id, commit_fn, &c);
    if (rc == SK_STORE_OK || rc == SK_STORE_VETO) {
        if (v->outcome != SK_AUTH_OK && v->reason == SK_AUTH_R_NONE)
            v->reason = reason;
    } else if (rc == SK_STORE_NOTFOUND) {
        /* Deleted while we hashed. */
        v->outcome = SK_AUTH_FAIL;
        v->reason = SK_AUTH_R_UNKNOWN_USER;
        v->user_exists = 0;
    } else {
        v->outcome = SK_AUTH_ERROR;
        v->reason = SK_AUTH_R_INTERNAL;
    }
    if (rc == SK_STORE_VETO && c.pad)
        pad = 1;
    if (v->reason == SK_AUTH_R_CERT_MISMATCH && v->outcome == SK_AUTH_OK) {
        /* unreachable by construction; never let a mismatch through */
        v->outcome = SK_AUTH_FAIL;
    }
out:
    if (pad && sk_store_timing_pad(j->store) != 0)
        sk_log(SK_LOG_WARN, "auth: timing pad write failed");
    if (v->outcome != SK_AUTH_OK) {
        v->role = SK_ROLE_GENERAL;
        v->must_change_password = 0;
    }
    sk_wipe(r->password, sizeof r->password);
    r->password_len = 0;
    sk_wipe(&u, sizeof u);
    sk_wipe(&c, sizeof c);
}

/* ===================================================================== */
/* Password change                                                       */
/* ===================================================================== */

typedef struct pw_ctx {
    const sk_auth_config *cfg;
    int64_t now;
    int current_ok;
    char hash_seen[SK_PWHASH_MAX + 1];
    const char *new_hash;
    sk_auth_pwchange_verdict *v;
} pw_ctx;

static int pw_commit_fn(sk_user *u, int *end_sessions, void *arg)
{
    pw_ctx *c = arg;
    sk_auth_pwchange_verdict *v = c->v;
    sk_auth_reason lr = lock_reason(c->cfg, u, c->now);

    v->failures = u->failures;
    v->locked_until = u->locked_until;
    if (lr != SK_AUTH_R_NONE) {
        v->outcome = SK_AUTH_FAIL;
        v->reason = lr;
        return 1; /* guessing against a lock changes nothing */
    }
    if (!c->current_ok) {
        v->outcome = SK_AUTH_FAIL;
        v->reason = SK_AUTH_R_BAD_PASSWORD;
        v->locked_now = lock_record_failure(c->cfg, u, c->now);
        v->failures = u->failures;
        v->locked_until = u->locked_until;
        return 0;
    }
    if (strcmp(u->pw_hash, c->hash_seen) != 0) {
        /* Changed by someone else while we hashed: the typed "current"
         * password is no longer current. */
        v->outcome = SK_AUTH_FAIL;
        v->reason = SK_AUTH_R_BAD_PASSWORD;
        return 1;
    }
    if (sk_strlcpy(u->pw_hash, sizeof u->pw_hash, c->new_hash) != 0) {
        v->outcome = SK_AUTH_ERROR;
        v->reason = SK_AUTH_R_INTERNAL;
        return 1;
    }
    u->flags &= ~SK_USER_F_MUST_CHANGE_PW;
    u->password_changed = c->now;
    lock_record_success(u);
    v->outcome = SK_AUTH_OK;
    v->reason = SK_AUTH_R_NONE;
    v->failures = u->failures;
    v->locked_until = u->locked_until;
    *end_sessions = 1;
    return 0;
}

static void decide_pwchange(sk_auth_pool *p, job *j)
{
    sk_auth_pwchange_request *r = &j->in.pw;
    sk_auth_pwchange_verdict *v = &j->res.pwv;
    sk_policy_config pc;
    sk_user u;
    pw_ctx c;
    char new_hash[SK_AUTH_ENCODED_MAX];
    const char *against = p->dummy_hash;
    sk_auth_reason reason = SK_AUTH_R_NONE;
    int rc, vr, exists = 0, pad = 0;

    memset(v, 0, sizeof *v);
    memset(&u, 0, sizeof u);
    memset(&c, 0, sizeof c);
    memset(new_hash, 0, sizeof new_hash);
    v->outcome = SK_AUTH_FAIL;

    if (!sk_store_valid_tenant(r->tenant) || !sk_store_valid_id(r->id) ||
        r->current_len > SK_AUTH_PASSWORD_MAX || r->new_len > SK_AUTH_PASSWORD_MAX) {
        v->reason = SK_AUTH_R_BAD_REQUEST;
        goto out;
    }
    /* Cheap checks first: they need neither the account nor argon2, and say
     * nothing about the current password. */
    sk_auth_policy_config(&p->cfg, &pc);
    v->pw_result = sk_policy_password_check(&pc, (const char *)r->new_password, r->new_len, r->id,
                                            strlen(r->id));
    if (v->pw_result != SK_POLICY_PW_OK) {
        v->outcome = SK_AUTH_REFUSED;
        v->reason = SK_AUTH_R_PASSWORD_POLICY;
        goto out;
    }
    if (r->new_len == r->current_len && sk_secret_equal(r->new_password, r->current, r->new_len)) {
        v->outcome = SK_AUTH_REFUSED;
        v->reason = SK_AUTH_R_SAME_PASSWORD;
        goto out;
    }

    rc = sk_store_user_get(j->store, r->tenant, r->id, &u);
    if (rc == SK_STORE_OK) {
        exists = 1;
    } else if (rc != SK_STORE_NOTFOUND) {
        v->outcome = SK_AUTH_ERROR;
        v->reason = SK_AUTH_R_INTERNAL;
        goto out;
    }
    against = hash_to_verify(p, exists ? &u : NULL, r->now, r->current_len, &reason);

    vr = sk_auth_verify_password(against, r->current, r->current_len);
    sk_wipe(r->current, sizeof r->current);
    r->current_len = 0;
    if (against == p->dummy_hash) {
        v->reason = reason;
        if (reason == SK_AUTH_R_BAD_PASSWORD && exists) {
            c.current_ok = 0; /* empty current password: a failed attempt */
        } else {
            pad = 1;
            goto out;
        }
    } else if (vr < 0) {
        v->outcome = SK_AUTH_ERROR;
        v->reason = SK_AUTH_R_INTERNAL;
        goto out;
    } else {
        c.current_ok = vr == 1;
    }
    if (c.current_ok &&
        sk_auth_hash_password(&p->cfg.params, r->new_password, r->new_len, new_hash,
                              sizeof new_hash) != 0) {
        v->outcome = SK_AUTH_ERROR;
        v->reason = SK_AUTH_R_INTERNAL;
        goto out;
    }
    sk_wipe(r->new_password, sizeof r->new_password);
    r->new_len = 0;

    c.cfg = &p->cfg;
    c.now = r->now;
    c.new_hash = new_hash;
    c.v = v;
    if (sk_strlcpy(c.hash_seen, sizeof c.hash_seen, u.pw_hash) != 0) {
        v->outcome = SK_AUTH_ERROR;
        v->reason = SK_AUTH_R_INTERNAL;
        goto out;
    }
    rc = sk_store_user_update_ex(j->store, r->tenant, r->id, pw_commit_fn, &c,
                                 r->keep_session_set ? r->keep_session : NULL, &v->sessions_ended);
    if (rc == SK_STORE_NOTFOUND) {
        v->outcome = SK_AUTH_FAIL;
        v->reason = SK_AUTH_R_UNKNOWN_USER;
    } else if (rc != SK_STORE_OK && rc != SK_STORE_VETO) {
        v->outcome = SK_AUTH_ERROR;
        v->reason = SK_AUTH_R_INTERNAL;
    } else if (rc == SK_STORE_VETO && v->outcome == SK_AUTH_FAIL) {
        pad = 1;
    }
    if (v->outcome != SK_AUTH_OK)
        v->sessions_ended = 0;
out:
    if (pad && sk_store_timing_pad(j->store) != 0)
        sk_log(SK_LOG_WARN, "auth: timing pad write failed");
    sk_wipe(r->current, sizeof r->current);
    sk_wipe(r->new_password, sizeof r->new_password);
    r->current_len = r->new_len = 0;
    sk_wipe(new_hash, sizeof new_hash);
    sk_wipe(&u, sizeof u);
    sk_wipe(&c, sizeof c);
}

/* ===================================================================== */
/* The pool                                                              */
/* ===================================================================== */

static void *worker(void *arg)
{
    sk_auth_pool *p = arg;
    tl_pool = p;

    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!(p->head && !p->paused) && !(p->stopping && !p->head))
            pthread_cond_wait(&p->work, &p->mu);
        if (!p->head)
            break; /* stopping and drained */
        job *j = p->head;
        p->head = j->next;
        if (!p->head)
            p->tail = NULL;
        p->waiting--;
        p->running++;
        pthread_mutex_unlock(&p->mu);

        if (j->kind == JOB_FN) {
            j->fn(j->arg);
            free(j);
            pthread_mutex_lock(&p->mu);
            p->running--;
            p->completed++;
            continue;
        }
        if (j->kind == JOB_PWCHANGE)
            decide_pwchange(p, j);
        else
            decide(p, j);

        pthread_mutex_lock(&p->mu);
        p->running--;
        p->completed++;
        j->done = 1;
        /* After this signal and unlock the caller may return: j is not touched
         * again. */
        pthread_cond_signal(&j->cond);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int sk_auth_pool_create(unsigned workers, unsigned queue_max, const sk_auth_config *cfg,
                        sk_auth_pool **out)
{
    sk_auth_pool *p = NULL;
    uint8_t rnd[32];
    int ret = -1, mu_ok = 0, cond_ok = 0;

    *out = NULL;
    if (workers < 1 || workers > 256 || queue_max < 1 || sk_auth_params_check(&cfg->params) != 0) {
        sk_log(SK_LOG_ERR, "auth: invalid worker pool or argon2 parameters");
        goto out;
    }
    p = calloc(1, sizeof *p);
    if (!p)
        goto out;
    p->cfg = *cfg;
    p->queue_max = queue_max;
    if (pthread_mutex_init(&p->mu, NULL) != 0)
        goto out;
    mu_ok = 1;
    if (pthread_cond_init(&p->work, NULL) != 0)
        goto out;
    if (pthread_cond_init(&p->idle, NULL) != 0) {
        pthread_cond_destroy(&p->work);
        goto out;
    }
    cond_ok = 1;
    if (pthread_mutex_init(&p->key_mu, NULL) != 0) {
        sk_log(SK_LOG_ERR, "auth: cannot create a mutex");
        goto out;
    }
    p->key_ok = 1;

    /* The dummy: a hash of random bytes nobody knows, with the live parameters,
     * so that verifying against it costs what a real account costs. */
    if (sk_random(rnd, sizeof rnd) != 0 ||
        sk_auth_hash_password(&cfg->params, rnd, sizeof rnd, p->dummy_hash,
                              sizeof p->dummy_hash) != 0) {
        sk_log(SK_LOG_ERR, "auth: cannot create the dummy hash");
        goto out;
    }

    p->threads = calloc(workers, sizeof *p->threads);
    if (!p->threads)
        goto out;
    for (unsigned i = 0; i < workers; i++) {
        if (pthread_create(&p->threads[i], NULL, worker, p) != 0) {
            sk_log(SK_LOG_ERR, "auth: cannot start worker thread");
            goto out;
        }
        p->nthreads++;
    }
    *out = p;
    p = NULL;
    ret = 0;
out:
    sk_wipe(rnd, sizeof rnd);
    if (p) {
        if (p->nthreads > 0) {
            sk_auth_pool_destroy(p);
        } else {
            if (cond_ok) {
                pthread_cond_destroy(&p->work);
                pthread_cond_destroy(&p->idle);
            }
            if (mu_ok)
                pthread_mutex_destroy(&p->mu);
            if (p->key_ok)
                pthread_mutex_destroy(&p->key_mu);
            free(p->threads);
            free(p);
        }
    }
    return ret;
}

void sk_auth_pool_destroy(sk_auth_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    p->paused = 0; /* a held pool must still drain */
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    /* Callers whose jobs were just finished may still be waking up on the
     * pool's mutex: wait until the last one has left before freeing it. */
    pthread_mutex_lock(&p->mu);
    while (p->callers > 0)
        pthread_cond_wait(&p->idle, &p->mu);
    pthread_mutex_unlock(&p->mu);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->idle);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->key_mu);
    free(p->threads);
    sk_wipe(p, sizeof *p);
    free(p);
}

/* Under p->mu: queue j for a worker. 0, SK_AUTH_BUSY (queue full) or -1 (stopping). */
static int enqueue_locked(sk_auth_pool *p, job *j)
{
    if (p->stopping)
        return -1;
    if (p->waiting >= p->queue_max) {
        p->rejected_busy++;
        return SK_AUTH_BUSY;
    }
    if (p->tail)
        p->tail->next = j;
    else
        p->head = j;
    p->tail = j;
    p->waiting++;
    pthread_cond_signal(&p->work);
    return 0;
}

/* Queue j and wait for its verdict. 0, SK_AUTH_BUSY or -1. On a pool worker
 * (inside an sk_auth_pool_run job) the verdict is decided at once instead. */
static int submit(sk_auth_pool *p, job *j)
{
    int rc;
    if (tl_pool == p) {
        if (j->kind == JOB_PWCHANGE)
            decide_pwchange(p, j);
        else
            decide(p, j);
        return 0;
    }
    pthread_mutex_lock(&p->mu);
    rc = enqueue_locked(p, j);
    if (rc != 0) {
        pthread_mutex_unlock(&p->mu);
        return rc;
    }
    p->callers++;
    while (!j->done)
        pthread_cond_wait(&j->cond, &p->mu);
    if (--p->callers == 0 && p->stopping)
        pthread_cond_signal(&p->idle);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

int sk_auth_login(sk_auth_pool *p, sk_store *store, const sk_auth_request *req,
                  sk_auth_verdict *out)
{
    job j;
    int ret;

    memset(out, 0, sizeof *out);
    if (!p || !store || !req || req->password_len > SK_AUTH_PASSWORD_MAX)
        return -1;
    memset(&j, 0, sizeof j);
    if (pthread_cond_init(&j.cond, NULL) != 0)
        return -1;
    j.kind = JOB_LOGIN;
    j.in.req = *req;
    j.store = store;
    ret = submit(p, &j);
    if (ret == 0)
        *out = j.res.verdict;
    sk_wipe(&j.in, sizeof j.in);
    pthread_cond_destroy(&j.cond);
    return ret;
}

int sk_auth_change_password(sk_auth_pool *p, sk_store *store, const sk_auth_pwchange_request *req,
                            sk_auth_pwchange_verdict *out)
{
    job j;
    int ret;

    memset(out, 0, sizeof *out);
    if (!p || !store || !req || req->current_len > SK_AUTH_PASSWORD_MAX ||
        req->new_len > SK_AUTH_PASSWORD_MAX)
        return -1;
    memset(&j, 0, sizeof j);
    if (pthread_cond_init(&j.cond, NULL) != 0)
        return -1;
    j.kind = JOB_PWCHANGE;
    j.in.pw = *req;
    j.store = store;
    ret = submit(p, &j);
    if (ret == 0)
        *out = j.res.pwv;
    sk_wipe(&j.in, sizeof j.in);
    pthread_cond_destroy(&j.cond);
    return ret;
}

int sk_auth_pool_run(sk_auth_pool *p, void (*fn)(void *arg), void *arg)
{
    job *j;
    int rc;
    if (p == NULL || fn == NULL)
        return -1;
    j = calloc(1, sizeof *j);
    if (j == NULL)
        return -1;
    j->kind = JOB_FN;
    j->fn = fn;
    j->arg = arg;
    pthread_mutex_lock(&p->mu);
    rc = enqueue_locked(p, j);
    pthread_mutex_unlock(&p->mu);
    if (rc != 0)
        free(j);
    return rc;
}

void sk_auth_pool_get_stats(sk_auth_pool *p, sk_auth_pool_stats *out)
{
    pthread_mutex_lock(&p->mu);
    out->waiting = p->waiting;
    out->running = p->running;
    out->completed = p->completed;
    out->rejected_busy = p->rejected_busy;
    pthread_mutex_unlock(&p->mu);
}

void sk_auth_pool_pause(sk_auth_pool *p, int paused)
{
    pthread_mutex_lock(&p->mu);
    p->paused = paused != 0;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
}
