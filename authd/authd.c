/* authd.c — authd's request handlers, its channel threads, and the client call
 * (sk_authd.h). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/sha.h>

#include "authd_int.h"

/* ---- handlers: decoded request in, reply struct out ---------------------- */

/* Every decision is taken at authd's time: a "now" in a request is not trusted (it
 * would move lockouts, TOTP windows, idle timeouts and link expiry). */
int64_t authd_now(void)
{
    return (int64_t)time(NULL);
}

static int32_t do_lookup(sk_authd *a, void *in, void *out)
{
    const sk_wire_lookup_req *q = in;
    sk_wire_lookup_rep *p = out;
    int r = sk_store_user_get(a->store, q->who.tenant, q->who.id, &p->user);
    if (r < 0) {
        return authd_store_trouble(a, "lookup");
    }
    p->user_found = r == SK_STORE_OK;
    /* The codec has no field for these; clearing them keeps them out of any
     * copy of the reply struct too. */
    sk_wipe(p->user.pw_hash, sizeof p->user.pw_hash);
    sk_wipe(p->user.totp_secret, sizeof p->user.totp_secret);
    sk_wipe(p->user.totp_pending, sizeof p->user.totp_pending);
    sk_wipe(p->user.activation_hash, sizeof p->user.activation_hash);
    p->user.totp_secret_len = p->user.totp_pending_len = 0;
    if (q->has_session) {
        r = sk_store_session_get(a->store, q->hash, &p->session);
        if (r < 0) {
            return authd_store_trouble(a, "lookup");
        }
        p->session_found = r == SK_STORE_OK;
    }
    return 0;
}

/* A session for the verdict's account and the certificate that logged in. */
static int mint_session(sk_authd *a, const sk_wire_login_req *q, const sk_auth_verdict *v, uint8_t token[32])
{
    sk_session s;
    int rc = -1;
    memset(&s, 0, sizeof s);
    if (sk_random(token, 32) != 0 || sk_random(s.csrf, sizeof s.csrf) != 0)
        goto out;
    SHA256(token, 32, s.hash);
    if (sk_strlcpy(s.user, sizeof s.user, v->id) != 0 || sk_strlcpy(s.tenant, sizeof s.tenant, v->tenant) != 0 ||
        sk_strlcpy(s.cert_serial, sizeof s.cert_serial, q->cert_serial) != 0)
        goto out;
    s.role = v->role;
    s.created = s.last_seen = (int64_t)time(NULL);
    if (sk_store_session_put(a->store, &s) == SK_STORE_OK)
        rc = 0;
out:
    if (rc != 0)
        sk_wipe(token, 32);
    sk_wipe(&s, sizeof s);
    return rc;
}

static int32_t do_login(sk_authd *a, void *in, void *out)
{
    sk_wire_login_req *q = in;
    sk_wire_login_rep *p = out;
    int r;
    q->req.now = authd_now(); /* never the caller's clock: lockout and TOTP windows depend on it */
    r = sk_auth_login(a->pool, a->store, &q->req, &p->verdict);
    if (r == SK_AUTH_BUSY)
        return SK_AUTH_BUSY;
    if (r != 0 || p->verdict.outcome == SK_AUTH_ERROR) {
        /* Nothing was decided. When the store does not answer: fail closed and
         * say so (503 to the client, an alarm to the operators). */
        return authd_store_trouble(a, "login");
    }
    if (p->verdict.outcome == SK_AUTH_FAIL) {
        authd_failure f = { q->req.cert_tenant, q->req.cert_id, q->req.peer, q->cert_serial };
        authd_note_failure(a, &f);
        if (p->verdict.locked_now)
            authd_note_lockout(a, &(authd_lockout){ f, p->verdict.failures, p->verdict.locked_until });
    }
    if (p->verdict.outcome == SK_AUTH_OK && mint_session(a, q, &p->verdict, p->token) != 0) {
        sk_log(SK_LOG_ERR, "authd: cannot store a new session for %s/%s", p->verdict.tenant, p->verdict.id);
        sk_wipe(p->token, sizeof p->token);
        return authd_store_trouble(a, "login");
    }
    return 0;
}

static int32_t do_pwchange(sk_authd *a, void *in, void *out)
{
    sk_wire_pwchange_req *q = in;
    sk_wire_pwchange_rep *p = out;
    int r;
    q->req.now = authd_now();
    r = sk_auth_change_password(a->pool, a->store, &q->req, &p->verdict);
    if (r == SK_AUTH_BUSY)
        return SK_AUTH_BUSY;
    if (r != 0 || p->verdict.outcome == SK_AUTH_ERROR) {
        return authd_store_trouble(a, "password change");
    }
    if (p->verdict.outcome == SK_AUTH_FAIL) {
        authd_failure f = { q->req.tenant, q->req.id, "", "" };
        authd_note_failure(a, &f);
        if (p->verdict.locked_now)
            authd_note_lockout(a, &(authd_lockout){ f, p->verdict.failures, p->verdict.locked_until });
    }
    return 0;
}

static int32_t do_session_end(sk_authd *a, void *in, void *out)
{
    (void)out;
    return sk_store_session_delete(a->store, ((const sk_wire_session_req *)in)->hash) < 0 ? SK_WIRE_ERR_INTERNAL : 0;
}

static int32_t do_session_touch(sk_authd *a, void *in, void *out)
{
    const sk_wire_session_req *q = in;
    /* authd's clock and a granularity from the policy: a caller's "now" in the future
     * would defeat the idle timeout, an "every" of 0 a commit per request. */
    int64_t every = a->pol.idle_timeout / 12;
    if (every > SK_SESSION_TOUCH_INTERVAL)
        every = SK_SESSION_TOUCH_INTERVAL;
    if (every < 1)
        every = 1;
    (void)out;
    return sk_store_session_touch_every(a->store, q->hash, authd_now(), every) < 0 ? SK_WIRE_ERR_INTERNAL : 0;
}

/* TOTP enrolment acts for the holder of a live session of that very account: a
 * network process cannot enrol (and so learn) a secret for anybody else. */
static int session_proves(sk_authd *a, const uint8_t hash[SK_SESSION_HASH_LEN], const sk_wire_who *who)
{
    sk_session s;
    int ok = sk_store_session_get(a->store, hash, &s) == SK_STORE_OK && strcmp(s.user, who->id) == 0 &&
             strcmp(s.tenant, who->tenant) == 0 &&
             sk_policy_session_check(&a->pol, s.created, s.last_seen, authd_now()) == SK_POLICY_SESSION_OK;
    sk_wipe(&s, sizeof s);
    if (!ok)
        sk_log(SK_LOG_WARN, "authd: TOTP enrolment for %s/%s without a live session of that account: refused",
               who->tenant, who->id);
    return ok;
}

static int32_t do_totp_begin(sk_authd *a, void *in, void *out)
{
    const sk_wire_totp_req *q = in;
    sk_wire_totp_rep *p = out;
    sk_user u;
    int enabled;
    if (!session_proves(a, q->session, &q->who))
        return SK_WIRE_ERR_DENIED;
    /* An active second factor is replaced only by an operator (disable, then enrol). */
    enabled = sk_store_user_get(a->store, q->who.tenant, q->who.id, &u) == SK_STORE_OK &&
              (u.flags & SK_USER_F_TOTP_ENABLED) != 0;
    sk_wipe(&u, sizeof u);
    if (enabled)
        return SK_WIRE_ERR_DENIED;
    return sk_auth_totp_begin(a->cfg, a->store, q->who.tenant, q->who.id, p->b32, sizeof p->b32, p->uri,
                              sizeof p->uri);
}

static int32_t do_totp_pending(sk_authd *a, void *in, void *out)
{
    const sk_wire_totp_req *q = in;
    sk_wire_totp_rep *p = out;
    if (!session_proves(a, q->session, &q->who))
        return SK_WIRE_ERR_DENIED;
    return sk_auth_totp_pending(a->cfg, a->store, q->who.tenant, q->who.id, p->b32, sizeof p->b32, p->uri,
                                sizeof p->uri);
}

static int32_t do_totp_confirm(sk_authd *a, void *in, void *out)
{
    const sk_wire_totp_req *q = in;
    (void)out;
    if (!session_proves(a, q->session, &q->who))
        return SK_WIRE_ERR_DENIED;
    return sk_auth_totp_confirm(a->cfg, a->store, q->who.tenant, q->who.id, q->code, authd_now());
}

static int32_t do_activation_valid(sk_authd *a, void *in, void *out)
{
    const sk_wire_activate_req *q = in;
    (void)out;
    return sk_auth_activation_valid(a->store, q->who.tenant, q->who.id, q->token, authd_now());
}

static int32_t do_activate(sk_authd *a, void *in, void *out)
{
    const sk_wire_activate_req *q = in;
    sk_wire_activate_rep *p = out;
    sk_policy_pw_result why = SK_POLICY_PW_OK;
    int r = sk_auth_activate(a->cfg, a->store, q->who.tenant, q->who.id, q->token, (const char *)q->password,
                             q->password_len, authd_now(), &why);
    p->why = (int32_t)why;
    return r;
}

struct census {
    int64_t now;
    uint64_t n;
};

static int count_session(const sk_session *s, void *ctx)
{
    (void)s;
    ((struct census *)ctx)->n++;
    return 0;
}

static int count_locked(const sk_user *u, void *ctx)
{
    struct census *cs = ctx;
    if (u->locked_until > cs->now || (u->flags & (SK_USER_F_OPERATOR_LOCKED | SK_USER_F_DORMANT_LOCKED)) != 0)
        cs->n++;
    return 0;
}

static int32_t do_census(sk_authd *a, void *in, void *out)
{
    sk_wire_census_rep *p = out;
    struct census s = { (int64_t)time(NULL), 0 }, l = { (int64_t)time(NULL), 0 };
    (void)in;
    if (sk_store_session_list(a->store, count_session, &s) != 0 ||
        sk_store_user_list(a->store, NULL, count_locked, &l) != 0)
        return SK_WIRE_ERR_INTERNAL;
    p->sessions = s.n;
    p->locked = l.n;
    return 0;
}

static const struct {
    uint16_t type;
    int32_t (*fn)(sk_authd *a, void *in, void *out);
} handlers[] = {
    { SK_WIRE_AUTH_LOOKUP, do_lookup },
    { SK_WIRE_AUTH_LOGIN, do_login },
    { SK_WIRE_AUTH_PWCHANGE, do_pwchange },
    { SK_WIRE_AUTH_SESSION_END, do_session_end },
    { SK_WIRE_AUTH_SESSION_TOUCH, do_session_touch },
    { SK_WIRE_AUTH_TOTP_BEGIN, do_totp_begin },
    { SK_WIRE_AUTH_TOTP_PENDING, do_totp_pending },
    { SK_WIRE_AUTH_TOTP_CONFIRM, do_totp_confirm },
    { SK_WIRE_AUTH_ACTIVATION_VALID, do_activation_valid },
    { SK_WIRE_AUTH_ACTIVATE, do_activate },
    { SK_WIRE_AUTH_CENSUS, do_census },
    { SK_WIRE_AUTH_KEYS, authd_do_keys },
};

void sk_authd_publish(sk_authd *a)
{
    uint64_t g, cur;
    if (a->generation == NULL)
        return;
    /* Several threads publish: only ever raise the value, or a thread that read an
     * older generation could undo a newer one and revive cached answers. 0 (the
     * store could not tell) publishes nothing: cached answers still expire. */
    g = sk_store_generation(a->store);
    cur = __atomic_load_n(a->generation, __ATOMIC_ACQUIRE);
    if (g == 0)
        return;
    while (g > cur && !__atomic_compare_exchange_n(a->generation, &cur, g, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        ;
}

/* The largest request and reply structs (a login request and a lookup reply). */
#define AUTHD_MSG_MAX (sizeof(sk_wire_lookup_rep) + sizeof(sk_wire_login_req) + sizeof(sk_wire_activate_req))

int sk_authd_handle(void *ctx, enum sk_wire_peer peer, const sk_wire_msg *msg, sk_wire_w *w)
{
    sk_authd *a = ctx;
    size_t in_size = sk_wire_auth_size(msg->type, 0), out_size = sk_wire_auth_size(msg->type, 1);
    void *in = NULL, *out = NULL;
    int rc = -1;
    (void)peer;

    for (size_t i = 0; i < SK_ARRAY_LEN(handlers); i++) {
        if (handlers[i].type != msg->type)
            continue;
        in = calloc(1, in_size);
        out = calloc(1, out_size);
        if (in == NULL || out == NULL)
            break;
        if (sk_wire_auth_decode(msg->type, 0, msg->payload, msg->len, in) != 0) {
            sk_log(SK_LOG_WARN, "authd: undecodable %s request from the %s peer: refused",
                   sk_wire_type_name(msg->type), sk_wire_peer_name(peer));
            rc = SK_WIRE_ERR_BADMSG;
            break;
        }
        *(int32_t *)out = handlers[i].fn(a, in, out);
        sk_authd_publish(a);
        if (*(int32_t *)out < 0) {
            /* A failure carries only its status: the rest of the reply was not
             * filled in and need not satisfy the codec. */
            sk_wire_put_i32(w, *(int32_t *)out);
            rc = sk_wire_w_ok(w) == 0 ? 0 : -1;
            break;
        }
        rc = sk_wire_auth_encode(msg->type, 1, out, w) == 0 ? 0 : -1;
        break;
    }
    /* Requests carry passwords and replies TOTP enrolment text. */
    if (in != NULL)
        sk_wipe(in, in_size);
    if (out != NULL)
        sk_wipe(out, out_size);
    free(in);
    free(out);
    return rc;
}

/* ---- channel threads ----------------------------------------------------- */

struct chan {
    sk_authd *a;
    int fd;
    volatile int *stop;
    pthread_t t;
};

static void *chan_main(void *arg)
{
    struct chan *c = arg;
    if (sk_wire_serve(c->fd, SK_WIRE_PEER_NET, sk_authd_handle, c->a, c->stop) != 0)
        sk_log(SK_LOG_ERR, "authd: a channel failed: %s", strerror(errno));
    return NULL;
}

int sk_authd_run(sk_authd *a, const int *fds, unsigned n, volatile int *stop)
{
    struct chan *c = calloc(n, sizeof *c);
    unsigned started = 0;
    int rc = -1;
    if (c == NULL)
        return -1;
    for (; started < n; started++) {
        c[started] = (struct chan){ a, fds[started], stop, 0 };
        if (pthread_create(&c[started].t, NULL, chan_main, &c[started]) != 0)
            break;
    }
    if (started == n)
        rc = 0;
    else
        *stop = 1;
    for (unsigned i = 0; i < started; i++)
        (void)pthread_join(c[i].t, NULL);
    free(c);
    return rc;
}

/* ---- client -------------------------------------------------------------- */

/* Requests and replies of authd are small: a stack buffer each. */
#define AUTHD_DGRAM_MAX 8192

int sk_authd_call(sk_wire_client *c, uint16_t type, const void *req, void *rep, int timeout_ms)
{
    uint8_t q[AUTHD_DGRAM_MAX], r[AUTHD_DGRAM_MAX];
    sk_wire_w w;
    sk_wire_msg m;
    int rc = -1;

    sk_wire_w_init(&w, q, sizeof q);
    if (sk_wire_auth_encode(type, 0, req, &w) != 0)
        goto out;
    if (sk_wire_call(c, type, q, w.len, r, sizeof r, &m, timeout_ms) != 0)
        goto out;
    if (sk_wire_auth_decode(type, 1, m.payload, m.len, rep) == 0) {
        rc = *(const int32_t *)rep;
    } else if (m.len == 4) {
        /* A server-side refusal carries only its status. */
        sk_wire_r rd;
        sk_wire_r_init(&rd, m.payload, m.len);
        rc = sk_wire_get_i32(&rd);
        if (rc >= 0)
            rc = -1;
    } else {
        sk_log(SK_LOG_ERR, "authd sent an undecodable %s reply", sk_wire_type_name(type));
    }
out:
    sk_wipe(q, w.len);
    sk_wipe(r, sizeof r);
    return rc;
}
