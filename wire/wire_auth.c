/* wire_auth.c — codecs of the authd messages (sk_wire_auth.h). One function per
 * struct walks its fields in order and either writes or reads them. */
#include <string.h>

#include "sk_wire_auth.h"
#include "wire_co.h"

static void co_role(co *c, enum sk_role *r)
{
    int v = (int)*r;
    co_enum(c, &v, SK_ROLE_ADMIN);
    *r = (enum sk_role)v;
}

static void co_who(co *c, sk_wire_who *w)
{
    co_str(c, w->tenant, sizeof w->tenant);
    co_str(c, w->id, sizeof w->id);
}

/* The public part of a user record: the hash and the sealed secrets have no field. */
static void co_user_public(co *c, sk_user *u)
{
    co_str(c, u->id, sizeof u->id);
    co_str(c, u->tenant, sizeof u->tenant);
    co_role(c, &u->role);
    co_str(c, u->email, sizeof u->email);
    co_i64(c, &u->created);
    co_i64(c, &u->last_login);
    co_i64(c, &u->password_changed);
    co_u32(c, &u->failures);
    co_i64(c, &u->locked_until);
    co_u32(c, &u->flags);
    co_i64(c, &u->dormant_locked_at);
    co_i64(c, &u->unlocked_at);
    co_i64(c, &u->totp_last_step);
    co_i64(c, &u->dormant_notified_at);
    co_i64(c, &u->activation_expires);
    co_u32(c, &u->allow_count);
    if (u->allow_count > SK_ALLOW_MAX) {
        co_fail(c);
        return;
    }
    for (uint32_t i = 0; i < u->allow_count; i++)
        co_str(c, u->allow[i], sizeof u->allow[i]);
}

static void co_session(co *c, sk_session *s)
{
    co_fixed(c, s->hash, sizeof s->hash);
    co_str(c, s->user, sizeof s->user);
    co_str(c, s->tenant, sizeof s->tenant);
    co_role(c, &s->role);
    co_str(c, s->cert_serial, sizeof s->cert_serial);
    co_i64(c, &s->created);
    co_i64(c, &s->last_seen);
    co_fixed(c, s->csrf, sizeof s->csrf);
}

static void co_lookup_req(co *c, void *m)
{
    sk_wire_lookup_req *q = m;
    co_who(c, &q->who);
    co_u8(c, &q->has_session);
    co_fixed(c, q->hash, sizeof q->hash);
}

static void co_lookup_rep(co *c, void *m)
{
    sk_wire_lookup_rep *p = m;
    co_i32(c, &p->status);
    co_u8(c, &p->user_found);
    if (p->user_found)
        co_user_public(c, &p->user);
    co_u8(c, &p->session_found);
    if (p->session_found)
        co_session(c, &p->session);
}

static void co_login_req(co *c, void *m)
{
    sk_wire_login_req *q = m;
    co_str(c, q->req.cert_tenant, sizeof q->req.cert_tenant);
    co_str(c, q->req.cert_id, sizeof q->req.cert_id);
    co_str(c, q->req.login_id, sizeof q->req.login_id);
    co_bytes(c, q->req.password, sizeof q->req.password, &q->req.password_len);
    co_str(c, q->req.totp, sizeof q->req.totp);
    co_str(c, q->req.peer, sizeof q->req.peer);
    co_i64(c, &q->req.now);
    co_str(c, q->cert_serial, sizeof q->cert_serial);
}

static void co_verdict(co *c, sk_auth_verdict *v)
{
    int o = (int)v->outcome, r = (int)v->reason;
    co_enum(c, &o, SK_AUTH_REFUSED);
    co_enum(c, &r, SK_AUTH_R_COUNT_ - 1);
    v->outcome = (sk_auth_outcome)o;
    v->reason = (sk_auth_reason)r;
    co_str(c, v->tenant, sizeof v->tenant);
    co_str(c, v->id, sizeof v->id);
    co_enum(c, &v->user_exists, 1);
    co_role(c, &v->role);
    co_enum(c, &v->must_change_password, 1);
    co_u32(c, &v->failures);
    co_enum(c, &v->locked_now, 1);
    co_i64(c, &v->locked_until);
}

static void co_login_rep(co *c, void *m)
{
    sk_wire_login_rep *p = m;
    co_i32(c, &p->status);
    co_verdict(c, &p->verdict);
    co_fixed(c, p->token, sizeof p->token);
}

static void co_pwchange_req(co *c, void *m)
{
    sk_auth_pwchange_request *q = &((sk_wire_pwchange_req *)m)->req;
    co_str(c, q->tenant, sizeof q->tenant);
    co_str(c, q->id, sizeof q->id);
    co_bytes(c, q->current, sizeof q->current, &q->current_len);
    co_bytes(c, q->new_password, sizeof q->new_password, &q->new_len);
    co_fixed(c, q->keep_session, sizeof q->keep_session);
    co_enum(c, &q->keep_session_set, 1);
    co_i64(c, &q->now);
}

static void co_pwchange_rep(co *c, void *m)
{
    sk_wire_pwchange_rep *p = m;
    int o = (int)p->verdict.outcome, r = (int)p->verdict.reason, pw = (int)p->verdict.pw_result;
    co_i32(c, &p->status);
    co_enum(c, &o, SK_AUTH_REFUSED);
    co_enum(c, &r, SK_AUTH_R_COUNT_ - 1);
    co_enum(c, &pw, SK_POLICY_PW_RESULT_COUNT_ - 1);
    p->verdict.outcome = (sk_auth_outcome)o;
    p->verdict.reason = (sk_auth_reason)r;
    p->verdict.pw_result = (sk_policy_pw_result)pw;
    co_u32(c, &p->verdict.failures);
    co_enum(c, &p->verdict.locked_now, 1);
    co_i64(c, &p->verdict.locked_until);
    co_enum(c, &p->verdict.sessions_ended, 1 << 30);
}

static void co_session_req(co *c, void *m)
{
    sk_wire_session_req *q = m;
    co_fixed(c, q->hash, sizeof q->hash);
    co_i64(c, &q->now);
    co_i64(c, &q->every);
}

static void co_status_rep(co *c, void *m)
{
    co_i32(c, &((sk_wire_status_rep *)m)->status);
}

static void co_totp_req(co *c, void *m)
{
    sk_wire_totp_req *q = m;
    co_who(c, &q->who);
    co_fixed(c, q->session, sizeof q->session);
    co_str(c, q->code, sizeof q->code);
    co_i64(c, &q->now);
}

static void co_totp_rep(co *c, void *m)
{
    sk_wire_totp_rep *p = m;
    co_i32(c, &p->status);
    co_str(c, p->b32, sizeof p->b32);
    co_str(c, p->uri, sizeof p->uri);
}

static void co_activate_req(co *c, void *m)
{
    sk_wire_activate_req *q = m;
    co_who(c, &q->who);
    co_fixed(c, q->token, sizeof q->token);
    co_bytes(c, q->password, sizeof q->password, &q->password_len);
    co_i64(c, &q->now);
}

static void co_activate_rep(co *c, void *m)
{
    sk_wire_activate_rep *p = m;
    co_i32(c, &p->status);
    co_i32(c, &p->why);
    if (c->dec && (p->why < 0 || p->why >= SK_POLICY_PW_RESULT_COUNT_))
        c->r->err = 1;
}

static void co_empty(co *c, void *m)
{
    (void)c;
    (void)m;
}

static void co_census_rep(co *c, void *m)
{
    sk_wire_census_rep *p = m;
    co_i32(c, &p->status);
    co_u64(c, &p->sessions);
    co_u64(c, &p->locked);
}

static void co_keys_rep(co *c, void *m)
{
    sk_wire_keys_rep *p = m;
    co_i32(c, &p->status);
    co_fixed(c, p->csrf, sizeof p->csrf);
    co_u32(c, &p->n_tickets);
    if (p->n_tickets < 1 || p->n_tickets > SK_WIRE_TICKET_KEYS_MAX) {
        co_fail(c);
        return;
    }
    for (uint32_t i = 0; i < p->n_tickets; i++) {
        co_fixed(c, p->ticket[i].name, sizeof p->ticket[i].name);
        co_fixed(c, p->ticket[i].aes, sizeof p->ticket[i].aes);
        co_fixed(c, p->ticket[i].hmac, sizeof p->ticket[i].hmac);
    }
    co_i64(c, &p->rotate_every);
    if (p->rotate_every < 1)
        co_fail(c);
}

/* Placeholder struct for requests without fields. */
typedef struct empty_req {
    uint8_t unused;
} empty_req;

static const struct codec {
    uint16_t type;
    size_t req_size, rep_size;
    void (*req)(co *c, void *m);
    void (*rep)(co *c, void *m);
} codecs[] = {
    { SK_WIRE_AUTH_LOOKUP, sizeof(sk_wire_lookup_req), sizeof(sk_wire_lookup_rep), co_lookup_req, co_lookup_rep },
    { SK_WIRE_AUTH_LOGIN, sizeof(sk_wire_login_req), sizeof(sk_wire_login_rep), co_login_req, co_login_rep },
    { SK_WIRE_AUTH_PWCHANGE, sizeof(sk_wire_pwchange_req), sizeof(sk_wire_pwchange_rep), co_pwchange_req,
      co_pwchange_rep },
    { SK_WIRE_AUTH_SESSION_END, sizeof(sk_wire_session_req), sizeof(sk_wire_status_rep), co_session_req,
      co_status_rep },
    { SK_WIRE_AUTH_SESSION_TOUCH, sizeof(sk_wire_session_req), sizeof(sk_wire_status_rep), co_session_req,
      co_status_rep },
    { SK_WIRE_AUTH_TOTP_BEGIN, sizeof(sk_wire_totp_req), sizeof(sk_wire_totp_rep), co_totp_req, co_totp_rep },
    { SK_WIRE_AUTH_TOTP_PENDING, sizeof(sk_wire_totp_req), sizeof(sk_wire_totp_rep), co_totp_req, co_totp_rep },
    { SK_WIRE_AUTH_TOTP_CONFIRM, sizeof(sk_wire_totp_req), sizeof(sk_wire_status_rep), co_totp_req,
      co_status_rep },
    { SK_WIRE_AUTH_ACTIVATION_VALID, sizeof(sk_wire_activate_req), sizeof(sk_wire_status_rep), co_activate_req,
      co_status_rep },
    { SK_WIRE_AUTH_ACTIVATE, sizeof(sk_wire_activate_req), sizeof(sk_wire_activate_rep), co_activate_req,
      co_activate_rep },
    { SK_WIRE_AUTH_CENSUS, sizeof(empty_req), sizeof(sk_wire_census_rep), co_empty, co_census_rep },
    { SK_WIRE_AUTH_KEYS, sizeof(empty_req), sizeof(sk_wire_keys_rep), co_empty, co_keys_rep },
};

static const struct codec *find(uint16_t type)
{
    for (size_t i = 0; i < SK_ARRAY_LEN(codecs); i++)
        if (codecs[i].type == type)
            return &codecs[i];
    return NULL;
}

size_t sk_wire_auth_size(uint16_t type, int reply)
{
    const struct codec *k = find(type);
    return k == NULL ? 0 : reply ? k->rep_size : k->req_size;
}

int sk_wire_auth_encode(uint16_t type, int reply, const void *msg, sk_wire_w *w)
{
    const struct codec *k = find(type);
    co c = { 0, w, NULL };
    if (k == NULL)
        return -1;
    /* The codec functions take non-const pointers because they serve both ways;
     * encoding only reads. */
    (reply ? k->rep : k->req)(&c, (void *)(uintptr_t)msg);
    return sk_wire_w_ok(w);
}

int sk_wire_auth_decode(uint16_t type, int reply, const void *payload, size_t len, void *out)
{
    const struct codec *k = find(type);
    sk_wire_r r;
    co c = { 1, NULL, &r };
    size_t size;
    if (k == NULL)
        return -1;
    size = reply ? k->rep_size : k->req_size;
    memset(out, 0, size);
    sk_wire_r_init(&r, payload, len);
    (reply ? k->rep : k->req)(&c, out);
    if (sk_wire_r_end(&r) != 0) {
        sk_wipe(out, size);
        return -1;
    }
    return 0;
}
