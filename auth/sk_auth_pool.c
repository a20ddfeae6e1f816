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

#ifdef SK_AUTH_HAVE_POLICY
#include "sk_policy.h"
#endif

typedef struct job {
    sk_auth_request req;
    sk_store *store;
    sk_auth_verdict verdict;
    int done;
    pthread_cond_t cond;
    struct job *next;
} job;

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
};

const char *sk_auth_reason_name(sk_auth_reason r)
{
    if ((unsigned)r >= SK_AUTH_R_COUNT_ || !reason_names[r])
        return "unknown";
    return reason_names[r];
}

/* ===================================================================== */
/* LOCKOUT SEAM. Every "is this account locked" question and every failure /
 * success count goes through these three functions. They delegate to the
 * policy module (sk_policy_lockout_*); without it (SK_AUTH_HAVE_POLICY unset)
 * an equivalent minimal rule applies: threshold failures -> timed lock. */
/* ===================================================================== */

static sk_auth_reason lock_reason(const sk_auth_config *cfg, const sk_user *u, int64_t now)
{
    (void)cfg;
    if (u->flags & SK_USER_F_OPERATOR_LOCKED)
        return SK_AUTH_R_OPERATOR_LOCKED;
    if (u->flags & SK_USER_F_DORMANT_LOCKED)
        return SK_AUTH_R_DORMANT_LOCKED;
#ifdef SK_AUTH_HAVE_POLICY
    sk_policy_lockout ls = { .failures = u->failures, .locked_until = u->locked_until };
    if (!sk_policy_lockout_may_attempt(&ls, now))
        return SK_AUTH_R_LOCKED;
#else
    if (u->locked_until != 0 && now < u->locked_until)
        return SK_AUTH_R_LOCKED;
#endif
    return SK_AUTH_R_NONE;
}

/* Count one failure; returns 1 when it locked the account. */
static int lock_record_failure(const sk_auth_config *cfg, sk_user *u, int64_t now)
{
#ifdef SK_AUTH_HAVE_POLICY
    sk_policy_config pc;
    sk_policy_defaults(&pc);
    pc.lockout_threshold = cfg->lockout_threshold;
    pc.lockout_duration = cfg->lockout_duration;
    sk_policy_lockout ls = { .failures = u->failures, .locked_until = u->locked_until };
    int locked = sk_policy_lockout_record_failure(&pc, &ls, now);
    u->failures = ls.failures;
    u->locked_until = ls.locked_until;
    return locked;
#else
    if (u->locked_until != 0 && now < u->locked_until)
        return 0; /* never extend a running lock */
    if (u->locked_until != 0) {
        u->locked_until = 0;
        u->failures = 0;
    }
    if (u->failures < UINT32_MAX)
        u->failures++;
    if (cfg->lockout_threshold > 0 && u->failures >= cfg->lockout_threshold) {
        u->locked_until = now + cfg->lockout_duration;
        return 1;
    }
    return 0;
#endif
}

static void lock_record_success(sk_user *u)
{
#ifdef SK_AUTH_HAVE_POLICY
    sk_policy_lockout ls = { .failures = u->failures, .locked_until = u->locked_until };
    sk_policy_lockout_record_success(&ls);
    u->failures = ls.failures;
    u->locked_until = ls.locked_until;
#else
    u->failures = 0;
    u->locked_until = 0;
#endif
}

/* ===================================================================== */
/* The decision                                                          */
/* ===================================================================== */

typedef struct commit_ctx {
    const sk_auth_config *cfg;
    int64_t now;
    int password_ok;                    /* argon2 said yes */
    char hash_seen[SK_PWHASH_MAX + 1];  /* the hash the password was checked against */
    sk_auth_verdict *v;
} commit_ctx;

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
    sk_auth_request *r = &j->req;
    sk_auth_verdict *v = &j->verdict;
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
    else if (!exists)
        reason = SK_AUTH_R_UNKNOWN_USER;
    else if ((reason = lock_reason(&p->cfg, &u, r->now)) != SK_AUTH_R_NONE)
        ;
    else if (u.pw_hash[0] == '\0')
        reason = SK_AUTH_R_NO_PASSWORD;
    else if (r->password_len == 0)
        reason = SK_AUTH_R_BAD_PASSWORD;
    else
        against = u.pw_hash;

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
        /* TOTP SEAM: the TOTP module (later issue) verifies r->totp against
         * u.totp_secret with the replay guard here. Until then an enrolled
         * account fails closed, without counting a failure. */
        if (c.password_ok && (u.flags & SK_USER_F_TOTP_ENABLED)) {
            v->reason = SK_AUTH_R_TOTP_UNAVAILABLE;
            pad = 1;
            goto out;
        }
    }

    c.cfg = &p->cfg;
    c.now = r->now;
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
/* The pool                                                              */
/* ===================================================================== */

static void *worker(void *arg)
{
    sk_auth_pool *p = arg;

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
    free(p->threads);
    sk_wipe(p, sizeof *p);
    free(p);
}

int sk_auth_login(sk_auth_pool *p, sk_store *store, const sk_auth_request *req,
                  sk_auth_verdict *out)
{
    job j;
    int ret = -1;

    memset(out, 0, sizeof *out);
    if (!p || !store || !req || req->password_len > SK_AUTH_PASSWORD_MAX)
        return -1;

    memset(&j, 0, sizeof j);
    if (pthread_cond_init(&j.cond, NULL) != 0)
        return -1;
    j.req = *req;
    j.store = store;

    pthread_mutex_lock(&p->mu);
    if (p->stopping) {
        pthread_mutex_unlock(&p->mu);
        goto out;
    }
    if (p->waiting >= p->queue_max) {
        p->rejected_busy++;
        pthread_mutex_unlock(&p->mu);
        ret = SK_AUTH_BUSY;
        goto out;
    }
    if (p->tail)
        p->tail->next = &j;
    else
        p->head = &j;
    p->tail = &j;
    p->waiting++;
    p->callers++;
    pthread_cond_signal(&p->work);
    while (!j.done)
        pthread_cond_wait(&j.cond, &p->mu);
    if (--p->callers == 0 && p->stopping)
        pthread_cond_signal(&p->idle);
    pthread_mutex_unlock(&p->mu);
    *out = j.verdict;
    ret = 0;
out:
    sk_wipe(&j.req, sizeof j.req);
    pthread_cond_destroy(&j.cond);
    return ret;
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
