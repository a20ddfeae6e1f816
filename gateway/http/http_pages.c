/* The gateway's own pages: login, logout, password change, TOTP enrolment, and the
 * parsing of their forms. Handlers that commit to the store or wait for argon2
 * run off the loop (see http_engine.c); http_respond() works the same there. */
#include "http_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <limits.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "sk_page.h"
#include "sk_policy.h"
#include "sk_req.h"


/* ---- login / logout pages ----------------------------------------------- */

enum MHD_Result http_send_login_page(struct req *rq, struct MHD_Connection *mc, const sk_conn *c, int status,
                                       enum sk_msg msg, const char *ret)
{
    sk_http *h = rq->h;
    char page[PAGE_MAX], csrf[64];
    struct sk_page_login p;
    sk_user *u = calloc(1, sizeof *u);
    sk_buf b;
    enum MHD_Result res;

    if (u == NULL || http_csrf_make(h, c->serial, csrf, sizeof csrf) != 0) {
        free(u);
        return MHD_NO;
    }
    memset(&p, 0, sizeof p);
    p.lang = rq->lang;
    p.cert_user = c->user;
    p.cert_tenant = c->tenant;
    p.csrf = csrf;
    p.return_path = ret;
    p.msg = msg;
    /* Only the certificate holder sees this page, so telling them their own account
     * wants a one-time code reveals nothing new. */
    p.ask_totp = rq->have_user && (rq->user.flags & SK_USER_F_TOTP_ENABLED) != 0;
    sk_wipe(u, sizeof *u);
    free(u);
    sk_buf_init(&b, page, sizeof page);
    if (sk_page_login(&b, &p) != 0)
        return MHD_NO;
    res = http_respond(mc, status, "text/html; charset=utf-8", b.data, b.len, NULL, NULL, 0);
    return res;
}

static enum sk_msg msg_from_query(struct MHD_Connection *mc)
{
    static const struct { const char *name; enum sk_msg msg; } msgs[] = {
        { "logged_out", SK_MSG_LOGGED_OUT }, { "idle", SK_MSG_IDLE }, { "expired", SK_MSG_EXPIRED },
        { "activated", SK_MSG_ACTIVATED },
    };
    const char *m = MHD_lookup_connection_value(mc, MHD_GET_ARGUMENT_KIND, "msg");
    for (size_t i = 0; m && i < SK_ARRAY_LEN(msgs); i++)
        if (strcmp(m, msgs[i].name) == 0)
            return msgs[i].msg;
    return SK_MSG_NONE;
}

enum MHD_Result http_get_login(struct req *rq, struct MHD_Connection *mc, const sk_conn *c)
{
    const char *raw = MHD_lookup_connection_value(mc, MHD_GET_ARGUMENT_KIND, "return");
    char ret[RETURN_MAX] = "/";
    if (raw != NULL && sk_req_pct_decode(raw, ret, sizeof ret) != 0)
        memcpy(ret, "/", 2);
    return http_send_login_page(rq, mc, c, MHD_HTTP_OK, msg_from_query(mc), sk_req_return_path(ret));
}

enum MHD_Result http_post_login(struct req *rq, struct MHD_Connection *mc, const sk_conn *c)
{
    sk_http *h = rq->h;
    const char *ret = sk_req_return_path(rq->f->f_return);
    sk_wire_login_req *lq = NULL;
    sk_auth_request *ar;
    sk_wire_login_rep lr = { .status = 0 };
    sk_auth_verdict v;
    char cookie[256];
    enum MHD_Result res;
    int r;

    if (rq->too_large)
        return http_respond_error(rq, mc, MHD_HTTP_CONTENT_TOO_LARGE, 1);
    if (rq->form_error)
        return http_respond_error(rq, mc, MHD_HTTP_BAD_REQUEST, 1);
    if (!http_csrf_valid(h, c->serial, rq->f->f_csrf))
        return http_send_login_page(rq, mc, c, MHD_HTTP_FORBIDDEN, SK_MSG_FORM_EXPIRED, ret);
    lq = calloc(1, sizeof *lq);
    if (lq == NULL)
        return MHD_NO;
    ar = &lq->req;
    if (sk_strlcpy(lq->cert_serial, sizeof lq->cert_serial, c->serial) != 0 ||
        sk_strlcpy(ar->cert_tenant, sizeof ar->cert_tenant, c->tenant) != 0 ||
        sk_strlcpy(ar->cert_id, sizeof ar->cert_id, c->user) != 0 ||
        sk_strlcpy(ar->totp, sizeof ar->totp, rq->f->f_totp) != 0 ||
        sk_strlcpy(ar->peer, sizeof ar->peer, c->peer_str) != 0) {
        free(lq);
        return http_respond_error(rq, mc, MHD_HTTP_BAD_REQUEST, 1);
    }
    if (sk_strlcpy(ar->login_id, sizeof ar->login_id, rq->f->f_id) != 0)
        ar->login_id[0] = '\0';
    memcpy(ar->password, rq->f->f_pw, rq->f->f_pw_len);
    ar->password_len = rq->f->f_pw_len;
    ar->now = http_now_s();
    sk_wipe(rq->f->f_pw, sizeof rq->f->f_pw);
    r = http_authd(h, SK_WIRE_AUTH_LOGIN, lq, &lr);
    sk_wipe(lq, sizeof *lq);
    free(lq);
    v = lr.verdict;
    if (r == SK_AUTH_BUSY) {
        atomic_fetch_add(&h->ctr->login_busy, 1);
        return http_send_login_page(rq, mc, c, MHD_HTTP_SERVICE_UNAVAILABLE, SK_MSG_BUSY, ret);
    }
    if (r == SK_WIRE_ERR_UNAVAILABLE) {
        /* The store did not answer: nothing was decided or counted (authd alarms). */
        sk_log(SK_LOG_WARN, "login of %s/%s refused with 503: the store is unreachable", c->tenant, c->user);
        atomic_fetch_add(&h->ctr->login_unavailable, 1);
        return http_send_login_page(rq, mc, c, MHD_HTTP_SERVICE_UNAVAILABLE, SK_MSG_BUSY, ret);
    }
    if (r != 0 || v.outcome == SK_AUTH_ERROR) {
        sk_log(SK_LOG_ERR, "login of %s/%s: internal error", c->tenant, c->user);
        return http_send_login_page(rq, mc, c, MHD_HTTP_INTERNAL_SERVER_ERROR, SK_MSG_INTERNAL, ret);
    }
    if (v.outcome != SK_AUTH_OK) {
        char failures[16];
        sk_audit_kv kv[] = { { "reason", sk_auth_reason_name(v.reason) }, { "login_id", rq->f->f_id },
                             { "failures", failures } };
        atomic_fetch_add(&h->ctr->login_fail, 1);
        if (v.reason < SK_AUTH_R_COUNT_)
            atomic_fetch_add(&h->ctr->login_fail_reason[v.reason], 1);
        if (sk_snprintf(failures, sizeof failures, "%u", v.failures) != 0)
            failures[0] = '\0';
        if (v.reason == SK_AUTH_R_LOCKED || v.reason == SK_AUTH_R_OPERATOR_LOCKED ||
            v.reason == SK_AUTH_R_DORMANT_LOCKED)
            sk_log(SK_LOG_INFO, "login refused: %s/%s from %s (account %s)", c->tenant, c->user, c->peer_str,
                   sk_auth_reason_name(v.reason));
        else
            sk_log(SK_LOG_INFO, "login failed: %s/%s from %s (%s, failures %u%s)", c->tenant, c->user,
                   c->peer_str, sk_auth_reason_name(v.reason), v.failures, v.locked_now ? ", now locked" : "");
        /* authd counts the failure towards the cluster-wide burst alarm. */
        http_audit_event(h, SK_AUDIT_EV_LOGIN_FAIL, c, kv, SK_ARRAY_LEN(kv));
        /* The lock itself (audit entry, notices) is authd's, which decided it. */
        return http_send_login_page(rq, mc, c, MHD_HTTP_UNAUTHORIZED, SK_MSG_BAD_CREDENTIALS, ret);
    }
    /* A fresh token at every login: an old cookie (fixation) is dropped server-side. */
    if (http_session_find(rq, mc, c) == SESS_OK)
        http_session_drop(h, rq->sess_hash);
    r = http_session_cookie(lr.token, cookie);
    sk_wipe(&lr, sizeof lr);
    if (r != 0)
        return http_send_login_page(rq, mc, c, MHD_HTTP_INTERNAL_SERVER_ERROR, SK_MSG_INTERNAL, ret);
    atomic_fetch_add(&h->ctr->login_ok, 1);
    sk_log(SK_LOG_INFO, "login: %s/%s from %s serial %s", c->tenant, c->user, c->peer_str, c->serial);
    {
        sk_audit_kv kv[] = { { "role", sk_store_role_name(v.role) } };
        http_audit_event(h, SK_AUDIT_EV_LOGIN_OK, c, kv, SK_ARRAY_LEN(kv));
    }
    res = http_respond(mc, MHD_HTTP_SEE_OTHER, "text/plain", "", 0, v.must_change_password ? "/.sekisho/password" : ret,
                  cookie, 0);
    sk_wipe(cookie, sizeof cookie);
    return res;
}

static void session_csrf_token(const sk_session *s, char out[SK_B64URL_LEN(SK_CSRF_LEN) + 1])
{
    sk_b64url_encode(s->csrf, sizeof s->csrf, out);
}

enum MHD_Result http_get_logout(struct req *rq, struct MHD_Connection *mc, const sk_conn *c)
{
    char page[PAGE_MAX], csrf[SK_B64URL_LEN(SK_CSRF_LEN) + 1];
    struct sk_page_logout p;
    sk_buf b;
    if (http_session_find(rq, mc, c) != SESS_OK)
        return http_respond(mc, MHD_HTTP_SEE_OTHER, "text/plain", "", 0, "/.sekisho/login", NULL, 0);
    session_csrf_token(&rq->sess, csrf);
    p.lang = rq->lang;
    p.user = c->user;
    p.tenant = c->tenant;
    p.csrf = csrf;
    sk_buf_init(&b, page, sizeof page);
    if (sk_page_logout(&b, &p) != 0)
        return MHD_NO;
    return http_respond(mc, MHD_HTTP_OK, "text/html; charset=utf-8", b.data, b.len, NULL, NULL, 0);
}

static int form_csrf_ok(const struct req *rq);

enum MHD_Result http_post_logout(struct req *rq, struct MHD_Connection *mc, const sk_conn *c)
{
    if (rq->too_large || rq->form_error)
        return http_respond_error(rq, mc, MHD_HTTP_BAD_REQUEST, 1);
    if (http_session_find(rq, mc, c) != SESS_OK)
        return http_respond(mc, MHD_HTTP_SEE_OTHER, "text/plain", "", 0, "/.sekisho/login", http_cookie_clear, 0);
    if (!form_csrf_ok(rq))
        return http_respond_error(rq, mc, MHD_HTTP_FORBIDDEN, 0);
    {
        sk_wire_session_req q = { .now = 0 };
        sk_wire_status_rep p;
        memcpy(q.hash, rq->sess_hash, sizeof q.hash);
        http_lookup_forget(rq->sess_hash);
        if (http_authd(rq->h, SK_WIRE_AUTH_SESSION_END, &q, &p) != 0)
            return http_respond_error(rq, mc, MHD_HTTP_INTERNAL_SERVER_ERROR, 0);
        rq->sess_found = 0;
    }
    sk_log(SK_LOG_INFO, "logout: %s/%s from %s", c->tenant, c->user, c->peer_str);
    http_audit_event(rq->h, SK_AUDIT_EV_LOGOUT, c, NULL, 0);
    return http_respond(mc, MHD_HTTP_SEE_OTHER, "text/plain", "", 0, "/.sekisho/login?msg=logged_out", http_cookie_clear, 0);
}

/* What a password page tells about the rules, from the configuration. */
void http_password_rules(const sk_conf *conf, struct sk_page_password *p)
{
    p->min_len = conf->password_min_length;
    p->max_len = conf->password_max_length;
    p->need_upper = conf->password_require_upper;
    p->need_lower = conf->password_require_lower;
    p->need_digit = conf->password_require_digit;
}

static enum MHD_Result send_password_page(struct req *rq, struct MHD_Connection *mc, const sk_conn *c, int status,
                                          enum sk_msg msg, const char *detail)
{
    const sk_auth_config *ac = rq->h->d.auth_cfg;
    char page[PAGE_MAX], csrf[SK_B64URL_LEN(SK_CSRF_LEN) + 1];
    struct sk_page_password p;
    sk_buf b;
    memset(&p, 0, sizeof p);
    session_csrf_token(&rq->sess, csrf);
    p.lang = rq->lang;
    p.user = c->user;
    p.tenant = c->tenant;
    p.csrf = csrf;
    p.msg = msg;
    p.detail = detail;
    http_password_rules(rq->h->d.conf, &p);
    (void)ac;
    sk_buf_init(&b, page, sizeof page);
    if (sk_page_password(&b, &p) != 0)
        return MHD_NO;
    return http_respond(mc, status, "text/html; charset=utf-8", b.data, b.len, NULL, NULL, 0);
}

enum MHD_Result http_get_password(struct req *rq, struct MHD_Connection *mc, const sk_conn *c)
{
    if (http_session_find(rq, mc, c) != SESS_OK)
        return http_respond(mc, MHD_HTTP_SEE_OTHER, "text/plain", "", 0, "/.sekisho/login?return=/.sekisho/password",
                       NULL, 0);
    return send_password_page(rq, mc, c, MHD_HTTP_OK,
                              rq->have_user && (rq->user.flags & SK_USER_F_MUST_CHANGE_PW) ? SK_MSG_MUST_CHANGE
                                                                                           : SK_MSG_NONE,
                              NULL);
}

static int form_csrf_ok(const struct req *rq)
{
    char csrf[SK_B64URL_LEN(SK_CSRF_LEN) + 1];
    session_csrf_token(&rq->sess, csrf);
    return strlen(rq->f->f_csrf) == strlen(csrf) && sk_secret_equal(rq->f->f_csrf, csrf, strlen(csrf));
}

/* Every form POST of a signed-in user: a well-formed body, a live session of this
 * certificate, and the session's CSRF token. Returns 1 to go on; otherwise *res holds
 * the queued refusal. */
static int session_form_ok(struct req *rq, struct MHD_Connection *mc, const sk_conn *c, enum MHD_Result *res)
{
    if (rq->too_large || rq->form_error)
        *res = http_respond_error(rq, mc, MHD_HTTP_BAD_REQUEST, 1);
    else if (http_session_find(rq, mc, c) != SESS_OK)
        *res = http_respond(mc, MHD_HTTP_SEE_OTHER, "text/plain", "", 0, "/.sekisho/login", NULL, 0);
    else if (!form_csrf_ok(rq))
        *res = http_respond_error(rq, mc, MHD_HTTP_FORBIDDEN, 0);
    else
        return 1;
    return 0;
}

enum MHD_Result http_post_password(struct req *rq, struct MHD_Connection *mc, const sk_conn *c)
{
    sk_http *h = rq->h;
    sk_wire_pwchange_req *pq;
    sk_auth_pwchange_request *ar;
    sk_wire_pwchange_rep pr = { .status = 0 };
    sk_auth_pwchange_verdict v;
    enum MHD_Result res;
    int r;

    if (!session_form_ok(rq, mc, c, &res))
        return res;
    if (rq->f->f_new_len != rq->f->f_confirm_len || !sk_secret_equal(rq->f->f_new, rq->f->f_confirm, rq->f->f_new_len))
        return send_password_page(rq, mc, c, MHD_HTTP_BAD_REQUEST, SK_MSG_MISMATCH, NULL);
    pq = calloc(1, sizeof *pq);
    if (pq == NULL)
        return MHD_NO;
    ar = &pq->req;
    if (sk_strlcpy(ar->tenant, sizeof ar->tenant, rq->sess.tenant) != 0 ||
        sk_strlcpy(ar->id, sizeof ar->id, rq->sess.user) != 0 || rq->f->f_pw_len > sizeof ar->current ||
        rq->f->f_new_len > sizeof ar->new_password) {
        free(pq);
        return http_respond_error(rq, mc, MHD_HTTP_BAD_REQUEST, 0);
    }
    memcpy(ar->current, rq->f->f_pw, rq->f->f_pw_len);
    ar->current_len = rq->f->f_pw_len;
    memcpy(ar->new_password, rq->f->f_new, rq->f->f_new_len);
    ar->new_len = rq->f->f_new_len;
    memcpy(ar->keep_session, rq->sess_hash, sizeof ar->keep_session);
    ar->keep_session_set = 1;
    ar->now = http_now_s();
    sk_wipe(rq->f->f_pw, sizeof rq->f->f_pw);
    sk_wipe(rq->f->f_new, sizeof rq->f->f_new);
    sk_wipe(rq->f->f_confirm, sizeof rq->f->f_confirm);
    r = http_authd(h, SK_WIRE_AUTH_PWCHANGE, pq, &pr);
    sk_wipe(pq, sizeof *pq);
    free(pq);
    v = pr.verdict;
    if (r == SK_AUTH_BUSY || r == SK_WIRE_ERR_UNAVAILABLE)
        return send_password_page(rq, mc, c, MHD_HTTP_SERVICE_UNAVAILABLE, SK_MSG_BUSY, NULL);
    if (r != 0 || v.outcome == SK_AUTH_ERROR)
        return send_password_page(rq, mc, c, MHD_HTTP_INTERNAL_SERVER_ERROR, SK_MSG_INTERNAL, NULL);
    {
        sk_audit_kv kv[] = { { "result", v.outcome == SK_AUTH_OK ? "changed" : "refused" },
                             { "reason", sk_auth_reason_name(v.reason) } };
        http_audit_event(h, "password.change", c, kv, SK_ARRAY_LEN(kv));
    }
    if (v.outcome == SK_AUTH_OK)
        return send_password_page(rq, mc, c, MHD_HTTP_OK, SK_MSG_PW_CHANGED, NULL);
    if (v.reason == SK_AUTH_R_PASSWORD_POLICY)
        return send_password_page(rq, mc, c, MHD_HTTP_BAD_REQUEST, SK_MSG_NONE,
                                  sk_policy_password_message(v.pw_result, rq->lang == SK_LANG_JA ? SK_POLICY_LANG_JA
                                                                                                   : SK_POLICY_LANG_EN));
    if (v.reason == SK_AUTH_R_SAME_PASSWORD)
        return send_password_page(rq, mc, c, MHD_HTTP_BAD_REQUEST, SK_MSG_NONE,
                                  rq->lang == SK_LANG_JA ? "新しいパスワードは現在のものと異なる必要があります。"
                                                         : "The new password must differ from the current one.");
    return send_password_page(rq, mc, c, MHD_HTTP_FORBIDDEN, SK_MSG_CURRENT_WRONG, NULL);
}

/* The enrolment text (base32 secret and otpauth URI) from authd: BEGIN makes a new
 * candidate, PENDING shows the current one again. type 0: none wanted (-1). */
static int totp_text(sk_http *h, const struct req *rq, const sk_conn *c, uint16_t type,
                     char b32[SK_AUTH_TOTP_B32_MAX], char uri[SK_AUTH_TOTP_URI_MAX])
{
    sk_wire_totp_req q;
    sk_wire_totp_rep *p;
    int r = -1;
    if (type == 0)
        return -1;
    p = malloc(sizeof *p);
    if (p == NULL)
        return -1;
    memset(&q, 0, sizeof q);
    memcpy(q.session, rq->sess_hash, sizeof q.session); /* authd checks it is c's live session */
    if (sk_strlcpy(q.who.tenant, sizeof q.who.tenant, c->tenant) == 0 &&
        sk_strlcpy(q.who.id, sizeof q.who.id, c->user) == 0 && http_authd(h, type, &q, p) == 0 &&
        sk_strlcpy(b32, SK_AUTH_TOTP_B32_MAX, p->b32) == 0 && sk_strlcpy(uri, SK_AUTH_TOTP_URI_MAX, p->uri) == 0)
        r = 0;
    sk_wipe(p, sizeof *p);
    free(p);
    return r;
}

static enum MHD_Result send_totp_page(struct req *rq, struct MHD_Connection *mc, const sk_conn *c, int status,
                                      enum sk_msg msg)
{
    sk_http *h = rq->h;
    char *page = NULL, *svg = NULL, csrf[SK_B64URL_LEN(SK_CSRF_LEN) + 1];
    char b32[SK_AUTH_TOTP_B32_MAX], uri[SK_AUTH_TOTP_URI_MAX];
    struct sk_page_totp p;
    enum MHD_Result res = MHD_NO;
    sk_buf b;
    const size_t svg_cap = 96 * 1024, page_cap = 128 * 1024;

    memset(&p, 0, sizeof p);
    session_csrf_token(&rq->sess, csrf);
    p.lang = rq->lang;
    p.user = c->user;
    p.tenant = c->tenant;
    p.csrf = csrf;
    p.msg = msg;
    p.enabled = msg == SK_MSG_TOTP_ENABLED || (rq->have_user && (rq->user.flags & SK_USER_F_TOTP_ENABLED));
    page = malloc(page_cap);
    svg = malloc(svg_cap);
    if (page == NULL || svg == NULL)
        goto out;
    if (!p.enabled) {
        /* A visit starts a fresh candidate secret; it becomes active only when a code
         * from it is confirmed, so an abandoned enrolment changes nothing. After a
         * mistyped code the same secret is shown again: it is already in the app. */
        int r = totp_text(h, rq, c, msg == SK_MSG_TOTP_BAD_CODE ? SK_WIRE_AUTH_TOTP_PENDING : 0, b32, uri);
        if (r != 0)
            r = totp_text(h, rq, c, SK_WIRE_AUTH_TOTP_BEGIN, b32, uri);
        if (r != 0 || sk_auth_totp_qr_svg(uri, svg, svg_cap) != 0) {
            res = http_respond_error(rq, mc, MHD_HTTP_INTERNAL_SERVER_ERROR, 0);
            goto out;
        }
        p.qr_svg = svg;
        p.secret_b32 = b32;
    }
    sk_buf_init(&b, page, page_cap);
    if (sk_page_totp(&b, &p) != 0)
        goto out;
    res = http_respond(mc, status, "text/html; charset=utf-8", b.data, b.len, NULL, NULL, 0);
out:
    sk_wipe(b32, sizeof b32);
    sk_wipe(uri, sizeof uri);
    if (page)
        sk_wipe(page, page_cap);
    free(page);
    free(svg);
    return res;
}

enum MHD_Result http_get_totp(struct req *rq, struct MHD_Connection *mc, const sk_conn *c)
{
    if (http_session_find(rq, mc, c) != SESS_OK)
        return http_respond(mc, MHD_HTTP_SEE_OTHER, "text/plain", "", 0, "/.sekisho/login?return=/.sekisho/totp", NULL, 0);
    return send_totp_page(rq, mc, c, MHD_HTTP_OK, SK_MSG_NONE);
}

enum MHD_Result http_post_totp(struct req *rq, struct MHD_Connection *mc, const sk_conn *c)
{
    sk_http *h = rq->h;
    enum MHD_Result res;
    int r;
    if (!session_form_ok(rq, mc, c, &res))
        return res;
    {
        sk_wire_totp_req q;
        sk_wire_status_rep p;
        memset(&q, 0, sizeof q);
        q.now = http_now_s();
        memcpy(q.session, rq->sess_hash, sizeof q.session);
        if (sk_strlcpy(q.who.tenant, sizeof q.who.tenant, c->tenant) != 0 ||
            sk_strlcpy(q.who.id, sizeof q.who.id, c->user) != 0 ||
            sk_strlcpy(q.code, sizeof q.code, rq->f->f_totp) != 0)
            return http_respond_error(rq, mc, MHD_HTTP_BAD_REQUEST, 0);
        r = http_authd(h, SK_WIRE_AUTH_TOTP_CONFIRM, &q, &p);
    }
    if (r == 0) {
        http_audit_event(h, "totp.enrolled", c, NULL, 0);
        return send_totp_page(rq, mc, c, MHD_HTTP_OK, SK_MSG_TOTP_ENABLED);
    }
    if (r == SK_AUTH_TOTP_BADCODE)
        return send_totp_page(rq, mc, c, MHD_HTTP_BAD_REQUEST, SK_MSG_TOTP_BAD_CODE);
    return http_respond_error(rq, mc, MHD_HTTP_INTERNAL_SERVER_ERROR, 0);
}


/* ---- forms ------------------------------------------------------------ */

static int form_field(void *arg, const char *key, const char *value, size_t len)
{
    static const struct { const char *name; size_t offset, cap; } fields[] = {
        { "id", offsetof(struct form, f_id), sizeof(((struct form *)0)->f_id) },
        { "password", offsetof(struct form, f_pw), sizeof(((struct form *)0)->f_pw) },
        { "totp", offsetof(struct form, f_totp), sizeof(((struct form *)0)->f_totp) },
        { "csrf", offsetof(struct form, f_csrf), sizeof(((struct form *)0)->f_csrf) },
        { "return", offsetof(struct form, f_return), sizeof(((struct form *)0)->f_return) },
        { "current", offsetof(struct form, f_pw), sizeof(((struct form *)0)->f_pw) },
        { "new", offsetof(struct form, f_new), sizeof(((struct form *)0)->f_new) },
        { "confirm", offsetof(struct form, f_confirm), sizeof(((struct form *)0)->f_confirm) },
        { "t", offsetof(struct form, f_token), sizeof(((struct form *)0)->f_token) },
    };
    struct req *rq = arg;
    for (size_t i = 0; i < SK_ARRAY_LEN(fields); i++) {
        char *dst;
        if (strcmp(key, fields[i].name) != 0)
            continue;
        if (len >= fields[i].cap)
            return -1; /* longer than its field: a malformed form */
        dst = (char *)rq->f + fields[i].offset;
        memcpy(dst, value, len + 1);
        if (dst == rq->f->f_pw)
            rq->f->f_pw_len = len;
        else if (dst == rq->f->f_new)
            rq->f->f_new_len = len;
        else if (dst == rq->f->f_confirm)
            rq->f->f_confirm_len = len;
        return 0;
    }
    return 0; /* unknown fields are ignored */
}

/* The gateway's forms are application/x-www-form-urlencoded (what a browser
 * sends for them); the body is collected (at most FORM_MAX) and parsed whole by
 * sk_req_form_parse when it is complete. */
int http_form_begin(struct req *rq, struct MHD_Connection *mc)
{
    const char *ct = http_header(mc, "Content-Type");
    static const char want[] = "application/x-www-form-urlencoded";
    if (ct == NULL || strncasecmp(ct, want, sizeof want - 1) != 0 ||
        (ct[sizeof want - 1] != '\0' && ct[sizeof want - 1] != ';' && ct[sizeof want - 1] != ' '))
        return -1;
    rq->form_body = malloc(FORM_MAX);
    return rq->form_body == NULL ? -1 : 0;
}

/* Once per request: finish may run again after a resume, and a second parse
 * would read the wiped buffer. */
void http_form_finish(struct req *rq)
{
    if (rq->form_body == NULL)
        return; /* not a form, or parsed already */
    if (rq->f != NULL && !rq->too_large && !rq->form_error &&
        sk_req_form_parse(rq->form_body, rq->body_bytes, form_field, rq) != 0)
        rq->form_error = 1;
    sk_wipe(rq->form_body, FORM_MAX);
    free(rq->form_body);
    rq->form_body = NULL;
}
