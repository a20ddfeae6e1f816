/* /.sekisho/activate: a new account chooses its first password with the single-use
 * link an operator sent (`sekishoctl user invite`). Only the certificate of that
 * very account gets here with it (the link is checked against the certificate's
 * account), and the password rules apply as for any change. */
#include "http_int.h"

#include <stdlib.h>
#include <string.h>

#define TOKEN_B64_LEN SK_B64URL_LEN(SK_AUTH_ACTIVATION_TOKEN_LEN)

/* The token of a link, from its base64url text: 0, or -1 when it is no token. */
static int token_of(const char *text, uint8_t token[SK_AUTH_ACTIVATION_TOKEN_LEN])
{
    if (text == NULL || strlen(text) != TOKEN_B64_LEN)
        return -1;
    return sk_b64url_decode(text, TOKEN_B64_LEN, token, SK_AUTH_ACTIVATION_TOKEN_LEN);
}

static enum MHD_Result send_activate_page(struct req *rq, struct MHD_Connection *mc, const sk_conn *c, int status,
                                          enum sk_msg msg, const char *detail, const char *token_text)
{
    const sk_conf *conf = rq->h->d.conf;
    char page[PAGE_MAX], csrf[64];
    struct sk_page_password p;
    sk_buf b;

    memset(&p, 0, sizeof p);
    /* No session yet: the form's CSRF token is bound to the certificate, as the
     * login form's is. */
    if (http_csrf_make(rq->h, c->serial, csrf, sizeof csrf) != 0)
        return MHD_NO;
    p.lang = rq->lang;
    p.user = c->user;
    p.tenant = c->tenant;
    p.csrf = csrf;
    p.msg = msg;
    p.detail = detail;
    http_password_rules(conf, &p);
    p.activation = 1;
    p.activate_token = token_text;
    sk_buf_init(&b, page, sizeof page);
    if (sk_page_password(&b, &p) != 0)
        return MHD_NO;
    return http_respond(mc, status, "text/html; charset=utf-8", b.data, b.len, NULL, NULL, 0);
}

enum MHD_Result http_get_activate(struct req *rq, struct MHD_Connection *mc, const sk_conn *c)
{
    const char *t = MHD_lookup_connection_value(mc, MHD_GET_ARGUMENT_KIND, "t");
    uint8_t token[SK_AUTH_ACTIVATION_TOKEN_LEN];
    sk_wire_activate_req *q = calloc(1, sizeof *q);
    sk_wire_status_rep p;
    int ok = q != NULL && token_of(t, token) == 0 && sk_strlcpy(q->who.tenant, sizeof q->who.tenant, c->tenant) == 0 &&
             sk_strlcpy(q->who.id, sizeof q->who.id, c->user) == 0;
    if (ok) {
        memcpy(q->token, token, sizeof q->token);
        q->now = http_now_s();
        ok = http_authd(rq->h, SK_WIRE_AUTH_ACTIVATION_VALID, q, &p) == 1;
    }
    sk_wipe(token, sizeof token);
    if (q != NULL)
        sk_wipe(q, sizeof *q);
    free(q);
    if (!ok)
        return send_activate_page(rq, mc, c, MHD_HTTP_FORBIDDEN, SK_MSG_LINK_INVALID, NULL, NULL);
    return send_activate_page(rq, mc, c, MHD_HTTP_OK, SK_MSG_NONE, NULL, t);
}

/* The first password, set by authd with the link (argon2 and a store commit). */
static int activate(sk_http *h, const sk_conn *c, const uint8_t token[SK_AUTH_ACTIVATION_TOKEN_LEN], const char *pw,
                    size_t pw_len, sk_policy_pw_result *why)
{
    sk_wire_activate_req *q = calloc(1, sizeof *q);
    sk_wire_activate_rep p = { 0, 0 };
    int r = -1;
    if (q == NULL)
        return -1;
    if (pw_len <= sizeof q->password && sk_strlcpy(q->who.tenant, sizeof q->who.tenant, c->tenant) == 0 &&
        sk_strlcpy(q->who.id, sizeof q->who.id, c->user) == 0) {
        memcpy(q->token, token, sizeof q->token);
        memcpy(q->password, pw, pw_len);
        q->password_len = pw_len;
        q->now = http_now_s();
        r = http_authd(h, SK_WIRE_AUTH_ACTIVATE, q, &p);
        *why = (sk_policy_pw_result)p.why;
    }
    sk_wipe(q, sizeof *q);
    free(q);
    return r;
}

/* Off the loop (argon2 and a store commit). */
enum MHD_Result http_post_activate(struct req *rq, struct MHD_Connection *mc, const sk_conn *c)
{
    sk_http *h = rq->h;
    struct form *f = rq->f;
    uint8_t token[SK_AUTH_ACTIVATION_TOKEN_LEN];
    sk_policy_pw_result why = SK_POLICY_PW_OK;
    int r;

    if (rq->too_large || rq->form_error)
        return http_respond_error(rq, mc, MHD_HTTP_BAD_REQUEST, 1);
    if (!http_csrf_valid(h, c->serial, f->f_csrf))
        return send_activate_page(rq, mc, c, MHD_HTTP_FORBIDDEN, SK_MSG_FORM_EXPIRED, NULL,
                                  token_of(f->f_token, token) == 0 ? f->f_token : NULL);
    if (token_of(f->f_token, token) != 0)
        return send_activate_page(rq, mc, c, MHD_HTTP_FORBIDDEN, SK_MSG_LINK_INVALID, NULL, NULL);
    if (f->f_new_len != f->f_confirm_len || !sk_secret_equal(f->f_new, f->f_confirm, f->f_new_len)) {
        sk_wipe(token, sizeof token);
        return send_activate_page(rq, mc, c, MHD_HTTP_BAD_REQUEST, SK_MSG_MISMATCH, NULL, f->f_token);
    }
    r = activate(h, c, token, f->f_new, f->f_new_len, &why);
    sk_wipe(token, sizeof token);
    sk_wipe(f->f_new, sizeof f->f_new);
    sk_wipe(f->f_confirm, sizeof f->f_confirm);
    if (r == SK_AUTH_ACTIVATION_REFUSED)
        return send_activate_page(rq, mc, c, MHD_HTTP_BAD_REQUEST, SK_MSG_NONE,
                                  sk_policy_password_message(why, rq->lang == SK_LANG_JA ? SK_POLICY_LANG_JA
                                                                                         : SK_POLICY_LANG_EN),
                                  f->f_token);
    {
        sk_audit_kv kv[] = { { "result", r == 0 ? "ok" : r == SK_AUTH_ACTIVATION_INVALID ? "link_invalid" : "error" } };
        http_audit_event(h, "account.activate", c, kv, SK_ARRAY_LEN(kv));
    }
    if (r == SK_AUTH_ACTIVATION_INVALID) {
        sk_log(SK_LOG_INFO, "activation refused for %s/%s from %s: link used, replaced or expired", c->tenant,
               c->user, c->peer_str);
        return send_activate_page(rq, mc, c, MHD_HTTP_FORBIDDEN, SK_MSG_LINK_INVALID, NULL, NULL);
    }
    if (r != 0)
        return http_respond_error(rq, mc, MHD_HTTP_INTERNAL_SERVER_ERROR, 0);
    sk_log(SK_LOG_INFO, "account activated: %s/%s from %s", c->tenant, c->user, c->peer_str);
    return http_respond(mc, MHD_HTTP_SEE_OTHER, "text/plain", "", 0, "/.sekisho/login?msg=activated", NULL, 0);
}
