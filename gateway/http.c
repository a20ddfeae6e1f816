/* sk_http: libmicrohttpd front, router, sessions and proxy glue. See sk_http.h. */
#include "sk_http.h"

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

#define COOKIE_NAME SK_REQ_COOKIE_NAME
#define TOKEN_LEN 32
#define TOKEN_B64 SK_B64URL_LEN(TOKEN_LEN)
#define FORM_MAX 16384
#define PAGE_MAX 16384
#define RETURN_MAX SK_REQ_PATH_MAX
#define CSRF_TTL 3600
#define MHD_STACK (512 * 1024)

enum req_kind { K_NONE, K_PROXY, K_LOGIN_POST, K_LOGOUT_POST, K_PASSWORD_POST, K_TOTP_POST };

/* Where a request goes: one entry per [tenant.NAME], or one catch-all entry when no
 * tenants are configured (then the certificate's O only scopes users and sessions). */
struct route_tenant {
    const sk_conf_tenant *t;     /* NULL for the catch-all */
    sk_proxy *proxy;
    const char *prefix;
    sk_policy_cidr_list allow;
};

struct sk_http {
    sk_http_deps d;
    struct route_tenant routes_t[SK_CONF_MAX_TENANTS];
    size_t n_routes_t;
    sk_policy_cidr_list global_allow, trusted;
    sk_policy_path_rule path_rules[SK_CONF_MAX_PATH_RULES];
    size_t n_path_rules;
    sk_policy_config pol;
    uint8_t csrf_key[32];
    atomic_uint_fast64_t requests, proxied, upstream_errors, login_ok, login_fail, login_busy,
        session_rejected, revoked_refused;
    atomic_int inflight;
    pthread_mutex_t burst_lock;
    sk_policy_burst burst;
};

/* One HTTP engine per network worker: a libmicrohttpd daemon without threads or
 * listening socket, whose epoll descriptor sits in the worker's loop. */
struct hworker {
    sk_http *h;
    sk_loop *loop;
    struct MHD_Daemon *d;
    sk_loop_watch mhd_w;
    struct hconn *adding;       /* the connection MHD_add_connection is adding now */
    struct ws_relay *ws_list;   /* open WebSockets, re-checked every second */
    /* handlers run off the loop: how many are out, and those finished (filled by
     * auth pool threads, emptied by this worker when done_w fires) */
    int pending;
    int run_mhd;                /* libmicrohttpd has work no descriptor will announce */
    struct req *up_wait;        /* requests suspended until the upstream answers */
    sk_loop_watch done_w;
    pthread_mutex_t done_lock;
    struct off_loop *done_list;
};

/* One client connection. It ends when both sides have let go: libmicrohttpd
 * (MHD_CONNECTION_NOTIFY_CLOSED) and the TLS side (sk_http_conn_close). */
struct hconn {
    struct hworker *w;
    sk_http *h;
    sk_conn *c;     /* owned */
    int busy;       /* requests begun and not completed */
    int refs;
    struct ws_relay *ws; /* after a WebSocket upgrade */
};

/* A WebSocket after its 101: bytes are copied both ways between the client's
 * stream (libmicrohttpd's socket) and the upstream socket, without interpreting
 * frames. The session was checked when the upgrade was asked for. */
struct ws_dir {
    char buf[16384];
    size_t off, len;
};

struct ws_relay {
    sk_loop_watch client_w, upstream_w; /* edge-triggered: each run moves until EAGAIN */
    struct hconn *hc;
    struct ws_relay *next;
    int client, upstream;
    struct MHD_UpgradeResponseHandle *urh;
    struct ws_dir c2u, u2c;
    int done;
    /* What the upgrade was allowed on, re-checked every second: a WebSocket has no
     * "next request" at which revocation or logout could take effect. */
    uint8_t sess_hash[SK_SESSION_HASH_LEN];
    int64_t sess_created;
    int64_t next_check_ms;
};

/* Fields of the gateway's own forms. Passwords are wiped as soon as they were
 * handed on, and the whole struct when the request ends. */
struct form {
    char f_id[SK_AUTH_LOGIN_ID_MAX + 1];
    char f_pw[SK_AUTH_PASSWORD_MAX + 1];
    size_t f_pw_len;
    char f_totp[SK_AUTH_TOTP_MAX + 1];
    char f_csrf[128];
    char f_return[RETURN_MAX];
    char f_new[SK_AUTH_PASSWORD_MAX + 1];
    size_t f_new_len;
    char f_confirm[SK_AUTH_PASSWORD_MAX + 1];
    size_t f_confirm_len;
};

struct req {
    sk_http *h;
    sk_conn *conn;
    char *raw_uri;
    char method[16];
    int64_t start_us;
    int status;
    uint64_t bytes_out;
    int started;
    enum req_kind kind;
    enum sk_lang lang;
    /* proxy: the upstream socket sits in the worker's loop; while the request waits
     * for the upstream its MHD connection is suspended (and on the worker's list,
     * for [upstream] timeout) */
    sk_proxy_req *px;
    char *head;
    struct hworker *w;
    struct MHD_Connection *mc;
    sk_loop_watch up_w;
    uint32_t up_ev;
    int up_registered, suspended, timed_out;
    int64_t up_deadline_ms;
    struct req *wait_prev, *wait_next;
    int upstream_failed;
    int upgrade;        /* the client asked for a WebSocket */
    /* forms */
    size_t body_bytes;
    int too_large, form_error;
    struct form *f;     /* only for the form POSTs: most requests never need it */
    const struct route_tenant *route;
    sk_user user;
    int have_user;
    struct off_loop *off; /* the handler runs or ran on the auth pool */
    /* session */
    sk_session sess;
    uint8_t sess_hash[SK_SESSION_HASH_LEN];
    int have_sess;
    /* what was authorised and is forwarded (sk_req_target_split, sk_req_host_route) */
    char path[SK_REQ_PATH_MAX];
    const char *query;  /* inside raw_uri */
    char fwd_host[280]; /* "" = the upstream's own authority */
    char *form_body;    /* the gateway's own form POSTs, at most FORM_MAX */
};

/* ---- small helpers ---------------------------------------------------- */

static struct hconn *hconn_of(struct MHD_Connection *mc)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static sk_conn *conn_of(struct MHD_Connection *mc)
{
    struct hconn *hc = hconn_of(mc);
    return hc ? hc->c : NULL;
}

static const char *header(struct MHD_Connection *mc, const char *name)
{
    return MHD_lookup_connection_value(mc, MHD_HEADER_KIND, name);
}

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Security events are durable before the client gets its answer. Failing to log one
 * is an error the operator must see, but the answer still goes out: refusing
 * service because the disk is full would let an attacker turn logging into a DoS. */
static void audit_event(sk_http *h, const char *ev, const sk_conn *c, const sk_audit_kv *kv, size_t n_kv)
{
    sk_audit_event e = { 0 };
    if (h->d.audit == NULL)
        return;
    e.event = ev;
    e.actor = c ? c->user : NULL;
    e.tenant = c ? c->tenant : NULL;
    e.peer = c ? c->peer_str : NULL;
    e.serial = c ? c->serial : NULL;
    e.kv = kv;
    e.n_kv = n_kv;
    if (sk_audit_append(h->d.audit, &e, 1, NULL) != 0)
        sk_log(SK_LOG_ERR, "AUDIT WRITE FAILED for event %s", ev);
}

static void add_security_headers(struct MHD_Response *r)
{
    static const char *const hdrs[][2] = {
        { "Content-Security-Policy", "default-src 'none'; style-src 'self'; form-action 'self'; "
                                     "frame-ancestors 'none'; base-uri 'none'" },
        { "X-Frame-Options", "DENY" },
        { "X-Content-Type-Options", "nosniff" },
        { "Referrer-Policy", "no-referrer" },
        { "Cache-Control", "no-store" },
        { "Strict-Transport-Security", "max-age=31536000" },
    };
    for (size_t i = 0; i < SK_ARRAY_LEN(hdrs); i++)
        (void)MHD_add_response_header(r, hdrs[i][0], hdrs[i][1]);
}

typedef enum MHD_Result (*route_fn)(struct req *, struct MHD_Connection *, const sk_conn *);

/* A gateway-made answer prepared by a handler running off the loop (on the auth
 * pool, its connection suspended), queued by the worker once it is resumed. */
struct off_loop {
    struct req *rq;
    struct MHD_Connection *mc;
    struct hworker *w;
    route_fn fn;
    struct off_loop *next;  /* the worker's list of finished ones */
    int done, answered, result;
    int status, close_conn;
    const char *ctype;      /* handlers pass string literals */
    char *body;
    size_t len;
    char *location;
    char cookie[256];
};

/* Set on an auth pool thread while it runs a handler: respond() then records the
 * answer instead of touching libmicrohttpd, which only its worker may call. */
static _Thread_local struct off_loop *tl_off;

static enum MHD_Result respond_now(struct MHD_Connection *mc, int status, const char *ctype, const char *body,
                                   size_t len, const char *location, const char *cookie, int close_conn);

/* Queue a gateway-made response. close_conn for anything after which the rest of the
 * byte stream cannot be trusted (bad framing, unread bodies). */
static enum MHD_Result respond(struct MHD_Connection *mc, int status, const char *ctype, const char *body,
                               size_t len, const char *location, const char *cookie, int close_conn)
{
    struct off_loop *o = tl_off;
    if (o == NULL)
        return respond_now(mc, status, ctype, body, len, location, cookie, close_conn);
    if (o->answered)
        return MHD_NO;
    o->body = malloc(len + 1);
    o->location = location ? strdup(location) : NULL;
    if (o->body == NULL || (location && o->location == NULL) ||
        (cookie && sk_strlcpy(o->cookie, sizeof o->cookie, cookie) != 0))
        return MHD_NO;
    memcpy(o->body, body, len);
    o->len = len;
    o->status = status;
    o->ctype = ctype;
    o->close_conn = close_conn;
    o->answered = 1;
    return MHD_YES;
}

static enum MHD_Result respond_now(struct MHD_Connection *mc, int status, const char *ctype, const char *body,
                                   size_t len, const char *location, const char *cookie, int close_conn)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)(uintptr_t)body, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ret;
    if (r == NULL)
        return MHD_NO;
    add_security_headers(r);
    if (ctype)
        (void)MHD_add_response_header(r, "Content-Type", ctype);
    if (location && MHD_add_response_header(r, "Location", location) != MHD_YES) {
        MHD_destroy_response(r);
        return MHD_NO;
    }
    if (cookie)
        (void)MHD_add_response_header(r, "Set-Cookie", cookie);
    if (status == MHD_HTTP_SERVICE_UNAVAILABLE)
        (void)MHD_add_response_header(r, "Retry-After", "5");
    if (close_conn)
        (void)MHD_add_response_header(r, "Connection", "close");
    ret = MHD_queue_response(mc, (unsigned)status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result respond_error(struct req *rq, struct MHD_Connection *mc, int status, int close_conn)
{
    char page[PAGE_MAX];
    sk_buf b;
    sk_buf_init(&b, page, sizeof page);
    if (sk_page_error(&b, rq->lang, status) != 0)
        return MHD_NO;
    return respond(mc, status, "text/html; charset=utf-8", b.data, b.len, NULL, NULL, close_conn);
}

static int is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

static void buf_urlencode(sk_buf *b, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (is_unreserved(*p) || *p == '/')
            sk_buf_add(b, p, 1);
        else
            sk_buf_printf(b, "%%%02X", *p);
    }
}

/* ---- CSRF tokens for the login form ---------------------------------- */

/* Stateless, bound to the certificate serial and to time: b64url(ts || HMAC[0..16)). */
static int csrf_mac(const sk_http *h, const char *binding, uint64_t ts, uint8_t mac[32])
{
    uint8_t tsb[8];
    EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = m ? EVP_MAC_CTX_new(m) : NULL;
    OSSL_PARAM params[] = { OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0), OSSL_PARAM_END };
    size_t outl = 0;
    int rc = -1;
    for (int i = 0; i < 8; i++)
        tsb[i] = (uint8_t)(ts >> (56 - 8 * i));
    if (ctx && EVP_MAC_init(ctx, h->csrf_key, sizeof h->csrf_key, params) == 1 &&
        EVP_MAC_update(ctx, (const uint8_t *)"login", 6) == 1 &&
        EVP_MAC_update(ctx, (const uint8_t *)binding, strlen(binding) + 1) == 1 &&
        EVP_MAC_update(ctx, tsb, sizeof tsb) == 1 && EVP_MAC_final(ctx, mac, &outl, 32) == 1 && outl == 32)
        rc = 0;
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(m);
    return rc;
}

static int csrf_make(const sk_http *h, const char *binding, char *out, size_t cap)
{
    uint8_t tok[24], mac[32];
    uint64_t ts = (uint64_t)now_s();
    if (cap < SK_B64URL_LEN(sizeof tok) + 1 || csrf_mac(h, binding, ts, mac) != 0)
        return -1;
    for (int i = 0; i < 8; i++)
        tok[i] = (uint8_t)(ts >> (56 - 8 * i));
    memcpy(tok + 8, mac, 16);
    sk_b64url_encode(tok, sizeof tok, out);
    return 0;
}

static int csrf_valid(const sk_http *h, const char *binding, const char *token)
{
    uint8_t tok[24], mac[32];
    uint64_t ts = 0;
    int64_t age;
    if (sk_b64url_decode(token, strlen(token), tok, sizeof tok) != 0)
        return 0;
    for (int i = 0; i < 8; i++)
        ts = ts << 8 | tok[i];
    age = now_s() - (int64_t)ts;
    if (age < -60 || age > CSRF_TTL || csrf_mac(h, binding, ts, mac) != 0)
        return 0;
    return sk_secret_equal(mac, tok + 8, 16);
}

/* ---- sessions --------------------------------------------------------- */

enum sess_result { SESS_NONE, SESS_OK, SESS_IDLE, SESS_EXPIRED };

static void session_drop(sk_http *h, const uint8_t hash[SK_SESSION_HASH_LEN])
{
    if (sk_store_session_delete(h->d.store, hash) < 0)
        sk_log(SK_LOG_ERR, "cannot delete a session from the store");
}

static enum MHD_Result find_session_cookie(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    if (value != NULL && strcasecmp(key, "Cookie") == 0)
        sk_req_cookie_find_session(value, cls);
    return MHD_YES;
}

static enum sess_result session_find(struct req *rq, struct MHD_Connection *mc, const sk_conn *c)
{
    sk_http *h = rq->h;
    sk_req_session_cookie found = { NULL, 0, 0 };
    uint8_t token[TOKEN_LEN];
    int64_t now = now_s();
    int r;

    /* The same parser as the stripper (sk_req_cookie): what counts as the session
     * here is never forwarded. Two session cookies are ambiguous: none. */
    (void)MHD_get_connection_values(mc, MHD_HEADER_KIND, find_session_cookie, &found);
    if (found.count != 1 || sk_b64url_decode(found.value, found.len, token, sizeof token) != 0)
        return SESS_NONE;
    SHA256(token, sizeof token, rq->sess_hash);
    sk_wipe(token, sizeof token);
    r = sk_store_session_get(h->d.store, rq->sess_hash, &rq->sess);
    if (r != SK_STORE_OK)
        return SESS_NONE;
    /* The session belongs to one certificate: another user's certificate, or the same
     * user's reissued one, does not carry it. */
    if (strcmp(rq->sess.user, c->user) != 0 || strcmp(rq->sess.tenant, c->tenant) != 0 ||
        strcmp(rq->sess.cert_serial, c->serial) != 0) {
        /* A cookie that shows up with another certificate has leaked: end the
         * session, so that the stolen copy is worthless everywhere. */
        atomic_fetch_add(&h->session_rejected, 1);
        session_drop(h, rq->sess_hash);
        sk_log(SK_LOG_WARN, "session of %s/%s presented with certificate %s/%s serial %s from %s: revoked",
               rq->sess.tenant, rq->sess.user, c->tenant, c->user, c->serial, c->peer_str);
        {
            sk_audit_kv kv[] = { { "reason", "certificate_mismatch" }, { "session_user", rq->sess.user },
                                 { "session_tenant", rq->sess.tenant } };
            audit_event(h, SK_AUDIT_EV_REVOKED, c, kv, SK_ARRAY_LEN(kv));
        }
        return SESS_NONE;
    }
    switch (sk_policy_session_check(&h->pol, rq->sess.created, rq->sess.last_seen, now)) {
    case SK_POLICY_SESSION_OK:
        break;
    case SK_POLICY_SESSION_IDLE_EXPIRED:
        session_drop(h, rq->sess_hash);
        sk_log(SK_LOG_INFO, "idle logoff %s/%s", c->tenant, c->user);
        audit_event(h, SK_AUDIT_EV_IDLE, c, NULL, 0);
        return SESS_IDLE;
    default:
        session_drop(h, rq->sess_hash);
        sk_log(SK_LOG_INFO, "session lifetime reached %s/%s", c->tenant, c->user);
        audit_event(h, SK_AUDIT_EV_EXPIRED, c, NULL, 0);
        return SESS_EXPIRED;
    }
    /* last_seen is stored at a granularity of 1/12 of the idle timeout (at most a
     * minute): idle logoff is accurate to that, and most requests cost no write. */
    {
        int64_t every = h->pol.idle_timeout / 12;
        if (every > SK_SESSION_TOUCH_INTERVAL)
            every = SK_SESSION_TOUCH_INTERVAL;
        if (every < 1)
            every = 1;
        if (now - rq->sess.last_seen >= every && sk_store_session_touch_every(h->d.store, rq->sess_hash, now, every) < 0)
            sk_log(SK_LOG_WARN, "session touch failed");
    }
    rq->have_sess = 1;
    return SESS_OK;
}

static int session_create(sk_http *h, const sk_conn *c, const sk_auth_verdict *v, char cookie[256])
{
    uint8_t token[TOKEN_LEN];
    char tok64[TOKEN_B64 + 1];
    sk_session s;
    int rc = -1;

    memset(&s, 0, sizeof s);
    if (sk_random(token, sizeof token) != 0 || sk_random(s.csrf, sizeof s.csrf) != 0)
        goto out;
    SHA256(token, sizeof token, s.hash);
    if (sk_strlcpy(s.user, sizeof s.user, c->user) != 0 || sk_strlcpy(s.tenant, sizeof s.tenant, c->tenant) != 0 ||
        sk_strlcpy(s.cert_serial, sizeof s.cert_serial, c->serial) != 0)
        goto out;
    s.role = v->role;
    s.created = s.last_seen = now_s();
    if (sk_store_session_put(h->d.store, &s) != SK_STORE_OK)
        goto out;
    sk_b64url_encode(token, sizeof token, tok64);
    rc = sk_snprintf(cookie, 256, COOKIE_NAME "=%s; Path=/; Secure; HttpOnly; SameSite=Strict", tok64);
out:
    sk_wipe(token, sizeof token);
    sk_wipe(tok64, sizeof tok64);
    sk_wipe(&s, sizeof s);
    return rc;
}

static const char cookie_clear[] = COOKIE_NAME "=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0";

/* ---- login / logout pages ----------------------------------------------- */

static enum MHD_Result send_login_page(struct req *rq, struct MHD_Connection *mc, const sk_conn *c, int status,
                                       enum sk_msg msg, const char *ret)
{
    sk_http *h = rq->h;
    char page[PAGE_MAX], csrf[64];
    struct sk_page_login p;
    sk_user *u = calloc(1, sizeof *u);
    sk_buf b;
    enum MHD_Result res;

    if (u == NULL || csrf_make(h, c->serial, csrf, sizeof csrf) != 0) {
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
    p.ask_totp = sk_store_user_get(h->d.store, c->tenant, c->user, u) == SK_STORE_OK &&
                 (u->flags & SK_USER_F_TOTP_ENABLED) != 0;
    sk_wipe(u, sizeof *u);
    free(u);
    sk_buf_init(&b, page, sizeof page);
    if (sk_page_login(&b, &p) != 0)
        return MHD_NO;
    res = respond(mc, status, "text/html; charset=utf-8", b.data, b.len, NULL, NULL, 0);
    return res;
}

static enum sk_msg msg_from_query(struct MHD_Connection *mc)
{
    static const struct { const char *name; enum sk_msg msg; } msgs[] = {
        { "logged_out", SK_MSG_LOGGED_OUT }, { "idle", SK_MSG_IDLE }, { "expired", SK_MSG_EXPIRED },
    };
    const char *m = MHD_lookup_connection_value(mc, MHD_GET_ARGUMENT_KIND, "msg");
    for (size_t i = 0; m && i < SK_ARRAY_LEN(msgs); i++)
        if (strcmp(m, msgs[i].name) == 0)
            return msgs[i].msg;
    return SK_MSG_NONE;
}

static enum MHD_Result get_login(struct req *rq, struct MHD_Connection *mc, const sk_conn *c)
{
    const char *raw = MHD_lookup_connection_value(mc, MHD_GET_ARGUMENT_KIND, "return");
    char ret[RETURN_MAX] = "/";
    if (raw != NULL && sk_req_pct_decode(raw, ret, sizeof ret) != 0)
        memcpy(ret, "/", 2);
    return send_login_page(rq, mc, c, MHD_HTTP_OK, msg_from_query(mc), sk_req_return_path(ret));
}

static void notify(sk_http *h, const char *to, const char *subject, const char *body)
{
    if (h->d.notify != NULL)
        h->d.notify(h->d.notify_arg, to, subject, body);
}

/* Many failures across all accounts in a short window: one alarm per window. */
static void note_failure(sk_http *h, const sk_conn *c)
{
    char body[512];
    int alarm;
    int64_t now = now_s();
    uint32_t count;
    pthread_mutex_lock(&h->burst_lock);
    alarm = sk_policy_burst_record(&h->pol, &h->burst, now);
    count = sk_policy_burst_count(&h->pol, &h->burst, now);
    pthread_mutex_unlock(&h->burst_lock);
    if (!alarm)
        return;
    sk_log(SK_LOG_WARN, "ALARM: %u failed logins within %lld s (latest %s/%s from %s)", count,
           (long long)h->pol.burst_window, c->tenant, c->user, c->peer_str);
    {
        char n[16];
        sk_audit_kv kv[] = { { "failures", n } };
        if (sk_snprintf(n, sizeof n, "%u", count) != 0)
            n[0] = '\0';
        audit_event(h, "alarm.login_burst", c, kv, SK_ARRAY_LEN(kv));
    }
    if (sk_snprintf(body, sizeof body,
                    "Sekisho saw %u failed logins within %lld seconds, across all accounts.\n"
                    "Latest: certificate %s/%s (serial %s) from %s.\n"
                    "Check the audit log: sekishoctl audit show --event login.failure\n",
                    count, (long long)h->pol.burst_window, c->tenant, c->user, c->serial, c->peer_str) == 0)
        notify(h, NULL, "Sekisho ALARM: burst of failed logins", body);
}

static void note_lockout(sk_http *h, const struct req *rq, const sk_conn *c, const sk_auth_verdict *v)
{
    char body[512], until[32];
    struct tm tm;
    time_t t = (time_t)v->locked_until;
    gmtime_r(&t, &tm);
    if (strftime(until, sizeof until, "%Y-%m-%d %H:%M UTC", &tm) == 0)
        until[0] = '\0';
    if (sk_snprintf(body, sizeof body,
                    "The Sekisho account %s (tenant %s) was locked after %u failed logins,\n"
                    "until %s. The last attempt came from %s.\n"
                    "If this was not you, tell your administrator.\n",
                    c->user, c->tenant, v->failures, until, c->peer_str) != 0)
        return;
    notify(h, NULL, "Sekisho: account locked", body);
    if (rq->have_user && rq->user.email[0] != '\0')
        notify(h, rq->user.email, "Sekisho: your account was locked", body);
}

static enum MHD_Result post_login(struct req *rq, struct MHD_Connection *mc, const sk_conn *c)
{
    sk_http *h = rq->h;
    const char *ret = sk_req_return_path(rq->f->f_return);
    sk_auth_request *ar = NULL;
    sk_auth_verdict v;
    char cookie[256];
    enum MHD_Result res;
    int r;

    if (rq->too_large)
        return respond_error(rq, mc, MHD_HTTP_CONTENT_TOO_LARGE, 1);
    if (rq->form_error)
        return respond_error(rq, mc, MHD_HTTP_BAD_REQUEST, 1);
    if (!csrf_valid(h, c->serial, rq->f->f_csrf))
        return send_login_page(rq, mc, c, MHD_HTTP_FORBIDDEN, SK_MSG_FORM_EXPIRED, ret);
    ar = calloc(1, sizeof *ar);
    if (ar == NULL)
        return MHD_NO;
    if (sk_strlcpy(ar->cert_tenant, sizeof ar->cert_tenant, c->tenant) != 0 ||
        sk_strlcpy(ar->cert_id, sizeof ar->cert_id, c->user) != 0 ||
        sk_strlcpy(ar->totp, sizeof ar->totp, rq->f->f_totp) != 0 ||
        sk_strlcpy(ar->peer, sizeof ar->peer, c->peer_str) != 0) {
        free(ar);
        return respond_error(rq, mc, MHD_HTTP_BAD_REQUEST, 1);
    }
    if (sk_strlcpy(ar->login_id, sizeof ar->login_id, rq->f->f_id) != 0)
        ar->login_id[0] = '\0';
    memcpy(ar->password, rq->f->f_pw, rq->f->f_pw_len);
    ar->password_len = rq->f->f_pw_len;
    ar->now = now_s();
    sk_wipe(rq->f->f_pw, sizeof rq->f->f_pw);
    r = sk_auth_login(h->d.auth, h->d.store, ar, &v);
    sk_wipe(ar, sizeof *ar);
    free(ar);
    if (r == SK_AUTH_BUSY) {
        atomic_fetch_add(&h->login_busy, 1);
        return send_login_page(rq, mc, c, MHD_HTTP_SERVICE_UNAVAILABLE, SK_MSG_BUSY, ret);
    }
    if (r != 0 || v.outcome == SK_AUTH_ERROR) {
        sk_log(SK_LOG_ERR, "login of %s/%s: internal error", c->tenant, c->user);
        return send_login_page(rq, mc, c, MHD_HTTP_INTERNAL_SERVER_ERROR, SK_MSG_INTERNAL, ret);
    }
    if (v.outcome != SK_AUTH_OK) {
        char failures[16];
        sk_audit_kv kv[] = { { "reason", sk_auth_reason_name(v.reason) }, { "login_id", rq->f->f_id },
                             { "failures", failures } };
        atomic_fetch_add(&h->login_fail, 1);
        if (sk_snprintf(failures, sizeof failures, "%u", v.failures) != 0)
            failures[0] = '\0';
        if (v.reason == SK_AUTH_R_LOCKED || v.reason == SK_AUTH_R_OPERATOR_LOCKED ||
            v.reason == SK_AUTH_R_DORMANT_LOCKED)
            sk_log(SK_LOG_INFO, "login refused: %s/%s from %s (account %s)", c->tenant, c->user, c->peer_str,
                   sk_auth_reason_name(v.reason));
        else
            sk_log(SK_LOG_INFO, "login failed: %s/%s from %s (%s, failures %u%s)", c->tenant, c->user,
                   c->peer_str, sk_auth_reason_name(v.reason), v.failures, v.locked_now ? ", now locked" : "");
        audit_event(h, SK_AUDIT_EV_LOGIN_FAIL, c, kv, SK_ARRAY_LEN(kv));
        note_failure(h, c);
        if (v.locked_now) {
            char until[24];
            sk_audit_kv lk[] = { { "locked_until", until }, { "failures", failures } };
            if (sk_snprintf(until, sizeof until, "%lld", (long long)v.locked_until) != 0)
                until[0] = '\0';
            audit_event(h, SK_AUDIT_EV_LOCKOUT, c, lk, SK_ARRAY_LEN(lk));
            note_lockout(h, rq, c, &v);
        }
        return send_login_page(rq, mc, c, MHD_HTTP_UNAUTHORIZED, SK_MSG_BAD_CREDENTIALS, ret);
    }
    /* A fresh token at every login: an old cookie (fixation) is dropped server-side. */
    if (session_find(rq, mc, c) == SESS_OK)
        session_drop(h, rq->sess_hash);
    if (session_create(h, c, &v, cookie) != 0)
        return send_login_page(rq, mc, c, MHD_HTTP_INTERNAL_SERVER_ERROR, SK_MSG_INTERNAL, ret);
    atomic_fetch_add(&h->login_ok, 1);
    sk_log(SK_LOG_INFO, "login: %s/%s from %s serial %s", c->tenant, c->user, c->peer_str, c->serial);
    {
        sk_audit_kv kv[] = { { "role", sk_store_role_name(v.role) } };
        audit_event(h, SK_AUDIT_EV_LOGIN_OK, c, kv, SK_ARRAY_LEN(kv));
    }
    res = respond(mc, MHD_HTTP_SEE_OTHER, "text/plain", "", 0, v.must_change_password ? "/.sekisho/password" : ret,
                  cookie, 0);
    sk_wipe(cookie, sizeof cookie);
    return res;
}

static void session_csrf_token(const sk_session *s, char out[SK_B64URL_LEN(SK_CSRF_LEN) + 1])
{
    sk_b64url_encode(s->csrf, sizeof s->csrf, out);
}

static enum MHD_Result get_logout(struct req *rq, struct MHD_Connection *mc, const sk_conn *c)
{
    char page[PAGE_MAX], csrf[SK_B64URL_LEN(SK_CSRF_LEN) + 1];
    struct sk_page_logout p;
    sk_buf b;
    if (session_find(rq, mc, c) != SESS_OK)
        return respond(mc, MHD_HTTP_SEE_OTHER, "text/plain", "", 0, "/.sekisho/login", NULL, 0);
    session_csrf_token(&rq->sess, csrf);
    p.lang = rq->lang;
    p.user = c->user;
    p.tenant = c->tenant;
    p.csrf = csrf;
    sk_buf_init(&b, page, sizeof page);
    if (sk_page_logout(&b, &p) != 0)
        return MHD_NO;
    return respond(mc, MHD_HTTP_OK, "text/html; charset=utf-8", b.data, b.len, NULL, NULL, 0);
}

static int form_csrf_ok(const struct req *rq);

static enum MHD_Result post_logout(struct req *rq, struct MHD_Connection *mc, const sk_conn *c)
{
    if (rq->too_large || rq->form_error)
        return respond_error(rq, mc, MHD_HTTP_BAD_REQUEST, 1);
    if (session_find(rq, mc, c) != SESS_OK)
        return respond(mc, MHD_HTTP_SEE_OTHER, "text/plain", "", 0, "/.sekisho/login", cookie_clear, 0);
    if (!form_csrf_ok(rq))
        return respond_error(rq, mc, MHD_HTTP_FORBIDDEN, 0);
    if (sk_store_session_delete(rq->h->d.store, rq->sess_hash) < 0)
        return respond_error(rq, mc, MHD_HTTP_INTERNAL_SERVER_ERROR, 0);
    sk_log(SK_LOG_INFO, "logout: %s/%s from %s", c->tenant, c->user, c->peer_str);
    audit_event(rq->h, SK_AUDIT_EV_LOGOUT, c, NULL, 0);
    return respond(mc, MHD_HTTP_SEE_OTHER, "text/plain", "", 0, "/.sekisho/login?msg=logged_out", cookie_clear, 0);
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
    p.min_len = rq->h->d.conf->password_min_length;
    p.max_len = rq->h->d.conf->password_max_length;
    p.need_upper = rq->h->d.conf->password_require_upper;
    p.need_lower = rq->h->d.conf->password_require_lower;
    p.need_digit = rq->h->d.conf->password_require_digit;
    (void)ac;
    sk_buf_init(&b, page, sizeof page);
    if (sk_page_password(&b, &p) != 0)
        return MHD_NO;
    return respond(mc, status, "text/html; charset=utf-8", b.data, b.len, NULL, NULL, 0);
}

static enum MHD_Result get_password(struct req *rq, struct MHD_Connection *mc, const sk_conn *c)
{
    if (session_find(rq, mc, c) != SESS_OK)
        return respond(mc, MHD_HTTP_SEE_OTHER, "text/plain", "", 0, "/.sekisho/login?return=/.sekisho/password",
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
        *res = respond_error(rq, mc, MHD_HTTP_BAD_REQUEST, 1);
    else if (session_find(rq, mc, c) != SESS_OK)
        *res = respond(mc, MHD_HTTP_SEE_OTHER, "text/plain", "", 0, "/.sekisho/login", NULL, 0);
    else if (!form_csrf_ok(rq))
        *res = respond_error(rq, mc, MHD_HTTP_FORBIDDEN, 0);
    else
        return 1;
    return 0;
}

static enum MHD_Result post_password(struct req *rq, struct MHD_Connection *mc, const sk_conn *c)
{
    sk_http *h = rq->h;
    sk_auth_pwchange_request *ar;
    sk_auth_pwchange_verdict v;
    enum MHD_Result res;
    int r;

    if (!session_form_ok(rq, mc, c, &res))
        return res;
    if (rq->f->f_new_len != rq->f->f_confirm_len || !sk_secret_equal(rq->f->f_new, rq->f->f_confirm, rq->f->f_new_len))
        return send_password_page(rq, mc, c, MHD_HTTP_BAD_REQUEST, SK_MSG_MISMATCH, NULL);
    ar = calloc(1, sizeof *ar);
    if (ar == NULL)
        return MHD_NO;
    if (sk_strlcpy(ar->tenant, sizeof ar->tenant, rq->sess.tenant) != 0 ||
        sk_strlcpy(ar->id, sizeof ar->id, rq->sess.user) != 0 || rq->f->f_pw_len > sizeof ar->current ||
        rq->f->f_new_len > sizeof ar->new_password) {
        free(ar);
        return respond_error(rq, mc, MHD_HTTP_BAD_REQUEST, 0);
    }
    memcpy(ar->current, rq->f->f_pw, rq->f->f_pw_len);
    ar->current_len = rq->f->f_pw_len;
    memcpy(ar->new_password, rq->f->f_new, rq->f->f_new_len);
    ar->new_len = rq->f->f_new_len;
    memcpy(ar->keep_session, rq->sess_hash, sizeof ar->keep_session);
    ar->keep_session_set = 1;
    ar->now = now_s();
    sk_wipe(rq->f->f_pw, sizeof rq->f->f_pw);
    sk_wipe(rq->f->f_new, sizeof rq->f->f_new);
    sk_wipe(rq->f->f_confirm, sizeof rq->f->f_confirm);
    r = sk_auth_change_password(h->d.auth, h->d.store, ar, &v);
    sk_wipe(ar, sizeof *ar);
    free(ar);
    if (r == SK_AUTH_BUSY)
        return send_password_page(rq, mc, c, MHD_HTTP_SERVICE_UNAVAILABLE, SK_MSG_BUSY, NULL);
    if (r != 0 || v.outcome == SK_AUTH_ERROR)
        return send_password_page(rq, mc, c, MHD_HTTP_INTERNAL_SERVER_ERROR, SK_MSG_INTERNAL, NULL);
    {
        sk_audit_kv kv[] = { { "result", v.outcome == SK_AUTH_OK ? "changed" : "refused" },
                             { "reason", sk_auth_reason_name(v.reason) } };
        audit_event(h, "password.change", c, kv, SK_ARRAY_LEN(kv));
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
    if (v.locked_now)
        note_lockout(h, rq, c, &(sk_auth_verdict){ .failures = v.failures, .locked_until = v.locked_until });
    note_failure(h, c);
    return send_password_page(rq, mc, c, MHD_HTTP_FORBIDDEN, SK_MSG_CURRENT_WRONG, NULL);
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
        int r = msg == SK_MSG_TOTP_BAD_CODE
                    ? sk_auth_totp_pending(h->d.auth_cfg, h->d.store, c->tenant, c->user, b32, sizeof b32, uri,
                                           sizeof uri)
                    : -2;
        if (r != 0)
            r = sk_auth_totp_begin(h->d.auth_cfg, h->d.store, c->tenant, c->user, b32, sizeof b32, uri, sizeof uri);
        if (r != 0 || sk_auth_totp_qr_svg(uri, svg, svg_cap) != 0) {
            res = respond_error(rq, mc, MHD_HTTP_INTERNAL_SERVER_ERROR, 0);
            goto out;
        }
        p.qr_svg = svg;
        p.secret_b32 = b32;
    }
    sk_buf_init(&b, page, page_cap);
    if (sk_page_totp(&b, &p) != 0)
        goto out;
    res = respond(mc, status, "text/html; charset=utf-8", b.data, b.len, NULL, NULL, 0);
out:
    sk_wipe(b32, sizeof b32);
    sk_wipe(uri, sizeof uri);
    if (page)
        sk_wipe(page, page_cap);
    free(page);
    free(svg);
    return res;
}

static enum MHD_Result get_totp(struct req *rq, struct MHD_Connection *mc, const sk_conn *c)
{
    if (session_find(rq, mc, c) != SESS_OK)
        return respond(mc, MHD_HTTP_SEE_OTHER, "text/plain", "", 0, "/.sekisho/login?return=/.sekisho/totp", NULL, 0);
    return send_totp_page(rq, mc, c, MHD_HTTP_OK, SK_MSG_NONE);
}

static enum MHD_Result post_totp(struct req *rq, struct MHD_Connection *mc, const sk_conn *c)
{
    sk_http *h = rq->h;
    enum MHD_Result res;
    int r;
    if (!session_form_ok(rq, mc, c, &res))
        return res;
    r = sk_auth_totp_confirm(h->d.auth_cfg, h->d.store, c->tenant, c->user, rq->f->f_totp, now_s());
    if (r == 0) {
        audit_event(h, "totp.enrolled", c, NULL, 0);
        return send_totp_page(rq, mc, c, MHD_HTTP_OK, SK_MSG_TOTP_ENABLED);
    }
    if (r == SK_AUTH_TOTP_BADCODE)
        return send_totp_page(rq, mc, c, MHD_HTTP_BAD_REQUEST, SK_MSG_TOTP_BAD_CODE);
    return respond_error(rq, mc, MHD_HTTP_INTERNAL_SERVER_ERROR, 0);
}

static enum MHD_Result get_health(struct req *rq, struct MHD_Connection *mc, const sk_conn *c)
{
    return respond(mc, MHD_HTTP_OK, "text/plain", "ok\n", 3, NULL, NULL, 0);
}

static enum MHD_Result get_css(struct req *rq, struct MHD_Connection *mc, const sk_conn *c)
{
    return respond(mc, MHD_HTTP_OK, "text/css", sk_page_css, strlen(sk_page_css), NULL, NULL, 0);
}

static enum MHD_Result get_metrics(struct req *rq, struct MHD_Connection *mc, const sk_conn *c)
{
    sk_http *h = rq->h;
    struct sk_net_stats ns = { 0 };
    sk_auth_pool_stats as;
    char text[8192];
    sk_buf b;

    if (h->d.net)
        sk_net_get_stats(h->d.net, &ns);
    sk_auth_pool_get_stats(h->d.auth, &as);
    sk_buf_init(&b, text, sizeof text);
#define METRIC(name, type, help, val)                                                             \
    sk_buf_printf(&b, "# HELP sekisho_" name " " help "\n# TYPE sekisho_" name " " type "\nsekisho_" name " %llu\n", \
                  (unsigned long long)(val))
    METRIC("connections_accepted_total", "counter", "TCP connections accepted.", ns.accepted);
    METRIC("connections_active", "gauge", "Client connections open.", ns.active);
    METRIC("connections_refused_busy_total", "counter", "Connections refused at max_connections.", ns.refused_busy);
    METRIC("connections_established", "gauge", "Client connections past the TLS handshake.", ns.established);
    METRIC("connections_max", "gauge", "The effective connection limit.", ns.max_connections);
    METRIC("preauth_refused_address_total", "counter", "Connections refused over handshakes_per_address.", ns.refused_address);
    METRIC("preauth_shed_total", "counter", "Unfinished handshakes closed to make room.", ns.shed);
    METRIC("preauth_timeouts_total", "counter", "Unfinished handshakes closed at handshake_timeout.", ns.handshake_timeouts);
    METRIC("preauth_probes_total", "counter", "Connections closed by the client before sending a byte.", ns.probes);
    METRIC("tls_handshakes_total", "counter", "Successful mTLS handshakes.", ns.handshakes_ok);
    METRIC("tls_handshakes_failed_total", "counter", "Refused or failed handshakes.", ns.handshakes_failed);
    METRIC("tls_resumed_total", "counter", "Resumed TLS sessions.", ns.resumed);
    METRIC("http_requests_total", "counter", "HTTP requests received.", atomic_load(&h->requests));
    METRIC("proxied_requests_total", "counter", "Requests sent to the upstream.", atomic_load(&h->proxied));
    METRIC("upstream_errors_total", "counter", "Upstream connection or protocol errors.", atomic_load(&h->upstream_errors));
    METRIC("logins_total", "counter", "Successful logins.", atomic_load(&h->login_ok));
    METRIC("login_failures_total", "counter", "Failed logins.", atomic_load(&h->login_fail));
    METRIC("login_busy_total", "counter", "Logins refused with 503 (worker pool full).", atomic_load(&h->login_busy));
    METRIC("session_rejected_total", "counter", "Sessions presented with a different certificate.", atomic_load(&h->session_rejected));
    METRIC("revoked_refused_total", "counter", "Requests refused because the certificate is revoked.", atomic_load(&h->revoked_refused));
    METRIC("auth_queue_waiting", "gauge", "Logins waiting for a worker.", as.waiting);
    METRIC("http_requests_in_flight", "gauge", "Requests being served now.", atomic_load(&h->inflight));
#undef METRIC
    if (sk_buf_finish(&b) != 0)
        return MHD_NO;
    return respond(mc, MHD_HTTP_OK, "text/plain; version=0.0.4", b.data, b.len, NULL, NULL, 0);
}


/* off_loop: the handler may wait for the disk (store commits, fsync'd audit
 * entries) or argon2, so it runs on the auth pool while the connection is
 * suspended; every form POST is such a handler (see finish). */
static const struct route {
    const char *method, *path;
    route_fn fn;
    enum req_kind post_kind;
    int off_loop;
} routes[] = {
    { "GET", "/.sekisho/login", get_login, K_NONE, 0 },
    { "POST", "/.sekisho/login", NULL, K_LOGIN_POST, 1 },
    { "GET", "/.sekisho/logout", get_logout, K_NONE, 0 },
    { "POST", "/.sekisho/logout", NULL, K_LOGOUT_POST, 1 },
    { "GET", "/.sekisho/password", get_password, K_NONE, 0 },
    { "POST", "/.sekisho/password", NULL, K_PASSWORD_POST, 1 },
    { "GET", "/.sekisho/totp", get_totp, K_NONE, 1 },
    { "POST", "/.sekisho/totp", NULL, K_TOTP_POST, 1 },
    { "GET", "/.sekisho/health", get_health, K_NONE, 0 },
    { "GET", "/.sekisho/metrics", get_metrics, K_NONE, 0 },
    { "GET", "/.sekisho/style.css", get_css, K_NONE, 0 },
};

static enum MHD_Result off_loop(struct req *rq, struct MHD_Connection *mc, route_fn fn);

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
static int form_begin(struct req *rq, struct MHD_Connection *mc)
{
    const char *ct = header(mc, "Content-Type");
    static const char want[] = "application/x-www-form-urlencoded";
    if (ct == NULL || strncasecmp(ct, want, sizeof want - 1) != 0 ||
        (ct[sizeof want - 1] != '\0' && ct[sizeof want - 1] != ';' && ct[sizeof want - 1] != ' '))
        return -1;
    rq->form_body = malloc(FORM_MAX);
    return rq->form_body == NULL ? -1 : 0;
}

static void form_finish(struct req *rq)
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

/* ---- proxying ----------------------------------------------------------- */

/* Framing the gateway will not guess about: two Content-Length headers, Content-Length
 * together with Transfer-Encoding, or any transfer coding but plain "chunked". */
struct framing {
    int cl_count, te_count, te_chunked;
    const char *cl;
};

static enum MHD_Result count_framing(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    struct framing *f = cls;
    if (strcasecmp(key, "Content-Length") == 0) {
        f->cl_count++;
        f->cl = value;
    } else if (strcasecmp(key, "Transfer-Encoding") == 0) {
        f->te_count++;
        f->te_chunked = value && strcasecmp(value, "chunked") == 0;
    }
    return MHD_YES;
}

static int framing_ok(struct MHD_Connection *mc, enum sk_proxy_body *mode, uint64_t *len)
{
    struct framing f = { 0 };
    (void)MHD_get_connection_values(mc, MHD_HEADER_KIND, count_framing, &f);
    if (f.cl_count > 1 || f.te_count > 1 || (f.cl_count && f.te_count) || (f.te_count && !f.te_chunked))
        return 0;
    if (f.cl_count && (f.cl == NULL || sk_parse_u64(f.cl, 0, INT64_MAX, len) != 0))
        return 0;
    *mode = f.te_count ? SK_PROXY_BODY_CHUNKED : f.cl_count ? SK_PROXY_BODY_LENGTH : SK_PROXY_BODY_NONE;
    return 1;
}

/* Every value of a header, joined with ", " (a list header may be sent in
 * pieces: a second X-Forwarded-For or Connection must count too). -1 when the
 * joined list does not fit; *out is NULL when the header is absent. */
struct join_ctx {
    const char *name;
    sk_buf b;
    int n;
};

static enum MHD_Result join_one(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    struct join_ctx *j = cls;
    (void)kind;
    if (strcasecmp(key, j->name) == 0) {
        if (j->n++ > 0)
            sk_buf_puts(&j->b, ", ");
        sk_buf_puts(&j->b, value ? value : "");
    }
    return MHD_YES;
}

static int join_headers(struct MHD_Connection *mc, const char *name, char *mem, size_t cap, const char **out)
{
    struct join_ctx j = { name, { 0 }, 0 };
    sk_buf_init(&j.b, mem, cap);
    (void)MHD_get_connection_values(mc, MHD_HEADER_KIND, join_one, &j);
    *out = j.n > 0 ? mem : NULL;
    return sk_buf_finish(&j.b);
}

static enum MHD_Result head_client(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    sk_req_head_client(cls, key, value);
    return MHD_YES;
}

/* The upstream head, from what was authorised only: the normalised path, the
 * chosen Host, the certificate's identity; client headers pass the sk_req filter. */
static int build_head(struct req *rq, struct MHD_Connection *mc, const sk_conn *c, const char *method,
                      enum sk_proxy_body mode, uint64_t len, size_t *head_len)
{
    const sk_conf *conf = rq->h->d.conf;
    char upstream_host[280], conn[1024];
    sk_req_upstream u = { 0 };
    sk_req_head *hd = malloc(sizeof *hd);
    int rc = -1;

    rq->head = malloc(SK_PROXY_HEAD_MAX);
    if (hd == NULL || rq->head == NULL || join_headers(mc, "Connection", conn, sizeof conn, &u.conn_tokens) != 0 ||
        sk_snprintf(upstream_host, sizeof upstream_host, "%s:%s", conf->upstream_host, conf->upstream_port) != 0)
        goto out;
    u.method = method;
    u.prefix = rq->route->prefix;
    u.path = rq->path;
    u.query = rq->query;
    u.host = rq->fwd_host[0] ? rq->fwd_host : upstream_host;
    u.forwarded_host = rq->fwd_host[0] ? rq->fwd_host : NULL;
    u.user = c->user;
    u.tenant = c->tenant;
    u.roles = sk_store_role_name(rq->sess.role);
    u.serial = c->serial;
    u.peer = c->peer_str;
    u.body = mode == SK_PROXY_BODY_LENGTH ? SK_REQ_BODY_LENGTH : mode == SK_PROXY_BODY_CHUNKED ? SK_REQ_BODY_CHUNKED
                                                                                              : SK_REQ_BODY_NONE;
    u.length = len;
    u.upgrade = rq->upgrade;
    sk_req_head_begin(hd, rq->head, SK_PROXY_HEAD_MAX, &u);
    (void)MHD_get_connection_values(mc, MHD_HEADER_KIND, head_client, hd);
    rc = sk_req_head_finish(hd, head_len);
out:
    if (hd != NULL)
        sk_wipe(hd, sizeof *hd); /* the client's other cookies */
    free(hd);
    return rc;
}

/* ---- the upstream, without blocking the worker ---------------------------- */

static void up_event(sk_loop_watch *lw, uint32_t events);

/* Watch the upstream socket for exactly what the exchange waits for. */
static int up_watch(struct req *rq, uint32_t want)
{
    uint32_t ev = ((want & POLLIN) ? EPOLLIN : 0) | ((want & POLLOUT) ? EPOLLOUT : 0);
    int fd = sk_proxy_fd(rq->px);
    if (rq->up_registered && rq->up_w.fd != fd) {
        sk_loop_del(rq->w->loop, &rq->up_w); /* a stale pooled connection was replaced */
        rq->up_registered = 0;
    }
    if (!rq->up_registered) {
        rq->up_w.fd = fd;
        rq->up_w.on_event = up_event;
        if (sk_loop_add(rq->w->loop, &rq->up_w, ev) != 0)
            return -1;
        rq->up_registered = 1;
        rq->up_ev = ev;
        return 0;
    }
    if (ev != rq->up_ev && sk_loop_mod(rq->w->loop, &rq->up_w, ev) != 0)
        return -1;
    rq->up_ev = ev;
    return 0;
}

static void up_unwatch(struct req *rq)
{
    if (rq->up_registered)
        sk_loop_del(rq->w->loop, &rq->up_w);
    rq->up_registered = 0;
}

/* Wait for the upstream: MHD leaves the connection alone until up_resume. */
static void up_suspend(struct req *rq)
{
    struct hworker *w = rq->w;
    if (rq->suspended)
        return;
    MHD_suspend_connection(rq->mc);
    rq->suspended = 1;
    rq->up_deadline_ms = mono_us() / 1000 + rq->h->d.conf->upstream_timeout * 1000;
    rq->wait_prev = NULL;
    rq->wait_next = w->up_wait;
    if (w->up_wait != NULL)
        w->up_wait->wait_prev = rq;
    w->up_wait = rq;
}

static void up_resume(struct req *rq)
{
    struct hworker *w = rq->w;
    if (!rq->suspended)
        return;
    if (rq->wait_prev != NULL)
        rq->wait_prev->wait_next = rq->wait_next;
    else
        w->up_wait = rq->wait_next;
    if (rq->wait_next != NULL)
        rq->wait_next->wait_prev = rq->wait_prev;
    rq->suspended = 0;
    MHD_resume_connection(rq->mc);
    w->run_mhd = 1;
}

/* Moves the exchange on; 1 the response head is there, 0 waiting, -1 failed. */
static int up_progress(struct req *rq)
{
    uint32_t want = 0;
    int rc = sk_proxy_io(rq->px, &want);
    if (rc < 0 || up_watch(rq, rc == 1 ? 0 : want) != 0) {
        rq->upstream_failed = 1;
        return -1;
    }
    return rc;
}

/* The upstream socket is ready: let the suspended request try again (it suspends
 * itself once more if what it waits for is not there yet). */
static void up_event(sk_loop_watch *lw, uint32_t events)
{
    struct req *rq = (struct req *)((char *)lw - offsetof(struct req, up_w));
    (void)events;
    if (rq->px != NULL && !sk_proxy_head_complete(rq->px))
        (void)up_progress(rq);
    else if (up_watch(rq, 0) != 0)
        rq->upstream_failed = 1;
    up_resume(rq);
}

/* [upstream] timeout: counted while a request waits for the upstream. Returns the
 * ms until the next deadline (-1: none). */
static int64_t up_expire(struct hworker *w, int64_t now_ms)
{
    int64_t next = -1;
    struct req *rq = w->up_wait, *n;
    for (; rq != NULL; rq = n) {
        n = rq->wait_next;
        if (now_ms >= rq->up_deadline_ms) {
            rq->upstream_failed = rq->timed_out = 1;
            up_resume(rq);
        } else if (next < 0 || rq->up_deadline_ms - now_ms < next) {
            next = rq->up_deadline_ms - now_ms;
        }
    }
    return next;
}

/* MHD asks for response body bytes: what the upstream has sent, or a suspension
 * until it sends more. Nothing is read ahead of the client, so a slow reader
 * holds the upstream back instead of filling the gateway's memory. */
static ssize_t body_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct req *rq = cls;
    ssize_t n;
    (void)pos;
    if (rq->upstream_failed) {
        atomic_fetch_add(&rq->h->upstream_errors, 1);
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    n = sk_proxy_read_body_nb(rq->px, buf, max);
    if (n > 0) {
        rq->bytes_out += (uint64_t)n;
        return n;
    }
    if (n == 0)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (n == SK_PROXY_AGAIN && up_watch(rq, POLLIN) == 0) {
        up_suspend(rq);
        return 0;
    }
    atomic_fetch_add(&rq->h->upstream_errors, 1);
    return MHD_CONTENT_READER_END_WITH_ERROR;
}

static int is_websocket_request(struct MHD_Connection *mc)
{
    const char *up = header(mc, "Upgrade"), *conn = header(mc, "Connection");
    return up != NULL && conn != NULL && strcasecmp(up, "websocket") == 0 && sk_req_hdr_in_tokens("upgrade", conn);
}

static void ws_relay_run(struct hconn *hc);

static void ws_client_event(sk_loop_watch *w, uint32_t events)
{
    struct ws_relay *ws = (struct ws_relay *)((char *)w - offsetof(struct ws_relay, client_w));
    (void)events;
    ws_relay_run(ws->hc);
}

static void ws_upstream_event(sk_loop_watch *w, uint32_t events)
{
    struct ws_relay *ws = (struct ws_relay *)((char *)w - offsetof(struct ws_relay, upstream_w));
    (void)events;
    ws_relay_run(ws->hc);
}

static void ws_unlink(struct ws_relay *ws)
{
    struct ws_relay **p = &ws->hc->w->ws_list;
    while (*p != NULL && *p != ws)
        p = &(*p)->next;
    if (*p == ws)
        *p = ws->next;
}

static void ws_upgraded(void *cls, struct MHD_Connection *mc, void *con_cls, const char *extra_in,
                        size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
    struct req *rq = cls;
    struct hconn *hc = hconn_of(mc);
    struct ws_relay *ws = calloc(1, sizeof *ws);
    const uint32_t ev = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;

    if (ws == NULL || hc == NULL || extra_in_size > sizeof ws->c2u.buf)
        goto fail;
    ws->hc = hc;
    ws->client = sock;
    ws->upstream = -1;
    ws->urh = urh;
    if (sk_proxy_detach(rq->px, &ws->upstream, ws->u2c.buf, sizeof ws->u2c.buf, &ws->u2c.len) != 0)
        goto fail;
    memcpy(ws->c2u.buf, extra_in, extra_in_size);
    ws->c2u.len = extra_in_size;
    memcpy(ws->sess_hash, rq->sess_hash, sizeof ws->sess_hash);
    ws->sess_created = rq->sess.created;
    if (fcntl(ws->client, F_SETFL, fcntl(ws->client, F_GETFL) | O_NONBLOCK) != 0 ||
        fcntl(ws->upstream, F_SETFL, fcntl(ws->upstream, F_GETFL) | O_NONBLOCK) != 0)
        goto fail;
    ws->client_w.fd = ws->client;
    ws->client_w.on_event = ws_client_event;
    ws->upstream_w.fd = ws->upstream;
    ws->upstream_w.on_event = ws_upstream_event;
    if (sk_loop_add(hc->w->loop, &ws->client_w, ev) != 0)
        goto fail;
    if (sk_loop_add(hc->w->loop, &ws->upstream_w, ev) != 0) {
        sk_loop_del(hc->w->loop, &ws->client_w);
        goto fail;
    }
    ws->next = hc->w->ws_list;
    hc->w->ws_list = ws;
    hc->ws = ws;
    return;
fail:
    if (ws != NULL) {
        if (ws->upstream >= 0)
            close(ws->upstream);
        free(ws);
    }
    (void)MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
}

/* One direction: 1 moved bytes, 0 would block, -1 ended (EOF or error). */
static int ws_move(int from, int to, struct ws_dir *d)
{
    int moved = 0;
    for (;;) {
        if (d->len == 0) {
            ssize_t r = recv(from, d->buf, sizeof d->buf, 0);
            if (r == 0)
                return -1;
            if (r < 0)
                return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? moved : -1;
            d->off = 0;
            d->len = (size_t)r;
        }
        while (d->len > 0) {
            ssize_t w = send(to, d->buf + d->off, d->len, MSG_NOSIGNAL);
            if (w < 0)
                return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 1 : -1;
            d->off += (size_t)w;
            d->len -= (size_t)w;
            moved = 1;
        }
    }
}

/* 1 while the WebSocket may go on: certificate not revoked, CRL fresh, session
 * still there (not logged out, revoked or ended by a password change) and within
 * its absolute lifetime. */
static int ws_still_allowed(struct hconn *hc)
{
    sk_http *h = hc->h;
    struct ws_relay *ws = hc->ws;
    sk_session s;
    int r;
    if (h->d.net != NULL && (!sk_net_crl_usable(h->d.net) || sk_net_serial_revoked(h->d.net, hc->c->serial)))
        return 0;
    if (now_s() - ws->sess_created >= h->pol.absolute_timeout)
        return 0;
    r = sk_store_session_get(h->d.store, ws->sess_hash, &s);
    sk_wipe(&s, sizeof s);
    return r == SK_STORE_OK;
}

/* Ends the relay: the upstream socket is closed, libmicrohttpd closes the client's
 * stream (and with it the TLS connection). */
static void ws_end(struct hconn *hc)
{
    struct ws_relay *ws = hc->ws;
    if (ws == NULL || ws->done)
        return;
    ws->done = 1;
    sk_loop_del(hc->w->loop, &ws->client_w);
    sk_loop_del(hc->w->loop, &ws->upstream_w);
    ws_unlink(ws);
    close(ws->upstream);
    ws->upstream = -1;
    (void)MHD_upgrade_action(ws->urh, MHD_UPGRADE_ACTION_CLOSE);
    hc->w->run_mhd = 1; /* the close happens in MHD_run */
}

static void ws_relay_run(struct hconn *hc)
{
    struct ws_relay *ws = hc->ws;
    int64_t now = mono_us() / 1000;
    if (ws == NULL || ws->done)
        return;
    if (now >= ws->next_check_ms) {
        ws->next_check_ms = now + 1000;
        if (!ws_still_allowed(hc)) {
            sk_log(SK_LOG_INFO, "WebSocket of %s/%s closed: certificate or session no longer valid", hc->c->tenant,
                   hc->c->user);
            ws_end(hc);
            return;
        }
    }
    if (ws_move(ws->client, ws->upstream, &ws->c2u) < 0 || ws_move(ws->upstream, ws->client, &ws->u2c) < 0)
        ws_end(hc); /* either side is gone: end both */
}

static void ws_free(struct hconn *hc)
{
    if (hc->ws == NULL)
        return;
    ws_end(hc);
    free(hc->ws);
    hc->ws = NULL;
}

static enum MHD_Result ws_respond(struct req *rq, struct MHD_Connection *mc)
{
    sk_proxy_req *px = rq->px;
    struct MHD_Response *r = MHD_create_response_for_upgrade(ws_upgraded, rq);
    enum MHD_Result ret;
    if (r == NULL)
        return MHD_NO;
    up_unwatch(rq); /* the WebSocket relay watches that socket from now on */
    for (size_t i = 0; i < sk_proxy_header_count(px); i++) {
        const char *name = sk_proxy_header_name(px, i), *value = sk_proxy_header_value(px, i);
        char folded[128];
        /* The 101's own Upgrade and Sec-WebSocket-* headers pass; libmicrohttpd
         * writes Connection itself. */
        if (sk_req_hdr_fold(name, folded, sizeof folded) != 0 || strcmp(folded, "connection") == 0 ||
            strcmp(folded, "keep-alive") == 0 || strcmp(folded, "transfer-encoding") == 0 ||
            strcmp(folded, "content-length") == 0)
            continue;
        (void)MHD_add_response_header(r, name, value);
    }
    rq->status = 101;
    ret = MHD_queue_response(mc, MHD_HTTP_SWITCHING_PROTOCOLS, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result proxy_respond(struct req *rq, struct MHD_Connection *mc, const char *method)
{
    sk_proxy_req *px = rq->px;
    struct MHD_Response *r;
    const char *conn_tokens = NULL;
    enum MHD_Result ret;
    int64_t cl;

    if (rq->upstream_failed) {
        atomic_fetch_add(&rq->h->upstream_errors, 1);
        return respond_error(rq, mc, rq->timed_out ? MHD_HTTP_GATEWAY_TIMEOUT : MHD_HTTP_BAD_GATEWAY, 1);
    }
    if (sk_proxy_upgraded(px))
        return ws_respond(rq, mc);
    cl = sk_proxy_content_length(px);
    if (!sk_proxy_has_body(px) && strcmp(method, "HEAD") != 0)
        r = MHD_create_response_from_buffer(0, (void *)(uintptr_t)"", MHD_RESPMEM_PERSISTENT);
    else
        r = MHD_create_response_from_callback(cl >= 0 ? (uint64_t)cl : MHD_SIZE_UNKNOWN, 32 * 1024, body_reader,
                                              rq, NULL);
    if (r == NULL)
        return MHD_NO;
    for (size_t i = 0; i < sk_proxy_header_count(px); i++)
        if (strcasecmp(sk_proxy_header_name(px, i), "Connection") == 0)
            conn_tokens = sk_proxy_header_value(px, i);
    for (size_t i = 0; i < sk_proxy_header_count(px); i++) {
        const char *name = sk_proxy_header_name(px, i), *value = sk_proxy_header_value(px, i);
        char folded[128];
        if (sk_req_hdr_fold(name, folded, sizeof folded) != 0 || sk_req_hdr_response_drop(folded) ||
            (conn_tokens && sk_req_hdr_in_tokens(folded, conn_tokens)))
            continue;
        /* The upstream cannot set or clear the gateway's own cookie. */
        if (strcmp(folded, "set-cookie") == 0 && strncmp(value, COOKIE_NAME, sizeof COOKIE_NAME - 1) == 0)
            continue;
        (void)MHD_add_response_header(r, name, value);
    }
    rq->status = sk_proxy_status(px);
    ret = MHD_queue_response(mc, (unsigned)rq->status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result unauthenticated(struct req *rq, struct MHD_Connection *mc, const char *method,
                                       enum sess_result why, int has_body)
{
    const char *accept = header(mc, "Accept");
    char loc[RETURN_MAX * 3 + 64];
    sk_buf b;
    if (accept != NULL && strstr(accept, "text/html") != NULL &&
        (strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0)) {
        sk_buf_init(&b, loc, sizeof loc);
        sk_buf_puts(&b, "/.sekisho/login?return=");
        buf_urlencode(&b, sk_req_return_path(rq->raw_uri));
        if (why == SESS_IDLE)
            sk_buf_puts(&b, "&msg=idle");
        else if (why == SESS_EXPIRED)
            sk_buf_puts(&b, "&msg=expired");
        if (sk_buf_finish(&b) != 0)
            return respond_error(rq, mc, MHD_HTTP_BAD_REQUEST, 1);
        return respond(mc, MHD_HTTP_SEE_OTHER, "text/plain", "", 0, loc, NULL, has_body);
    }
    return respond(mc, MHD_HTTP_UNAUTHORIZED, "text/plain; charset=utf-8", "authentication required\n", 24, NULL,
                   NULL, has_body);
}

/* ---- tenants, addresses, paths ----------------------------------------- */

static enum MHD_Result count_host(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    (void)value;
    if (strcasecmp(key, "Host") == 0)
        (*(unsigned *)cls)++;
    return MHD_YES;
}

/* Pick the tenant by name (sk_req_host_route: one Host, SNI and Host agree, a
 * configured name of the certificate's tenant). Returns an HTTP status on refusal. */
static int route_request(sk_http *h, struct req *rq, struct MHD_Connection *mc, const sk_conn *c)
{
    const sk_conf *conf = h->d.conf;
    unsigned n_host = 0;
    sk_req_route r;
    int st;

    (void)MHD_get_connection_values(mc, MHD_HEADER_KIND, count_host, &n_host);
    st = sk_req_host_route(conf->tenants, h->routes_t[0].t == NULL ? 0 : h->n_routes_t, header(mc, "Host"), n_host,
                           c->sni, c->tenant, &r);
    if (st != 0)
        return st;
    rq->route = &h->routes_t[h->routes_t[0].t == NULL ? 0 : r.tenant];
    memcpy(rq->fwd_host, r.host, sizeof rq->fwd_host);
    return 0;
}

static int peer_addr(const sk_conn *c, sk_policy_addr *a)
{
    if (c->peer.ss_family == AF_INET)
        return sk_policy_addr_from_bytes(a, &((const struct sockaddr_in *)&c->peer)->sin_addr, 4);
    if (c->peer.ss_family == AF_INET6)
        return sk_policy_addr_from_bytes(a, &((const struct sockaddr_in6 *)&c->peer)->sin6_addr, 16);
    return -1;
}

/* The client's address: the TCP peer, or behind a configured trusted proxy the
 * X-Forwarded-For chain (every XFF header) read by sk_req_client_addr. */
static int client_addr(sk_http *h, struct MHD_Connection *mc, const sk_conn *c, sk_policy_addr *a)
{
    char xff[4096];
    const char *chain = NULL;
    sk_policy_addr peer;
    if (peer_addr(c, &peer) != 0 || join_headers(mc, "X-Forwarded-For", xff, sizeof xff, &chain) != 0)
        return -1;
    return sk_req_client_addr(&h->trusted, &peer, chain, a);
}

static int address_allowed(sk_http *h, struct req *rq, struct MHD_Connection *mc, const sk_conn *c)
{
    sk_policy_cidr users[SK_ALLOW_MAX];
    sk_policy_cidr_list ul = { users, 0 };
    sk_policy_addr a;

    if (client_addr(h, mc, c, &a) != 0)
        return 0;
    if (rq->have_user) {
        for (uint32_t i = 0; i < rq->user.allow_count && i < SK_ALLOW_MAX; i++) {
            /* Stored entries were validated when added; one that no longer parses
             * restricts to nothing rather than to everything. */
            if (sk_policy_cidr_parse(rq->user.allow[i], strlen(rq->user.allow[i]), &users[ul.count]) ==
                SK_POLICY_CIDR_OK)
                ul.count++;
            else
                return 0;
        }
    }
    return sk_policy_ip_allowed(&h->global_allow, &rq->route->allow, &ul, &a);
}

static unsigned role_bits(enum sk_role r)
{
    return r == SK_ROLE_ADMIN ? SK_POLICY_ROLE_ADMIN : SK_POLICY_ROLE_GENERAL;
}

/* 1 allowed, 0 forbidden. rq->path is the normalised path that is forwarded. */
static int path_allowed(sk_http *h, const struct req *rq)
{
    return sk_policy_path_allowed(h->path_rules, h->n_path_rules, rq->path, strlen(rq->path), role_bits(rq->sess.role),
                                  h->d.conf->path_icase ? SK_POLICY_PATH_LENIENT : 0);
}

/* ---- the request head, byte for byte ------------------------------------ */

static enum MHD_Result walk_field(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
                                  const char *value, size_t value_size)
{
    (void)kind;
    sk_req_walk_field(cls, key, key_size, value, value_size);
    return MHD_YES;
}

/* libmicrohttpd 0.9.75 keeps a bare CR or other control character in values and
 * the target, takes a bare LF as a line end, cuts at a NUL and glues obs-fold
 * lines onto the previous header's name, and it has no option to refuse them.
 * It parses in place, though: sk_req_walk checks the head in that buffer (see
 * sk_req.h). 1 intact; 0 means 400. Should a later libmicrohttpd lay the buffer
 * out differently, every request fails here (fail closed; the tests notice). */
static int head_intact(const struct req *rq, struct MHD_Connection *mc, const char *url, const char *method,
                       const char *version)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    sk_req_walk w;
    if (ci == NULL || rq->raw_uri == NULL)
        return 0;
    sk_req_walk_start(&w, method, ci->header_size, url, rq->raw_uri, version);
    (void)MHD_get_connection_values_n(mc, MHD_HEADER_KIND, walk_field, &w);
    return sk_req_walk_end(&w);
}

/* ---- request lifecycle ------------------------------------------------- */

static enum MHD_Result begin(struct req *rq, struct MHD_Connection *mc, const char *url, const char *method,
                            const char *version)
{
    sk_http *h = rq->h;
    sk_conn *c = conn_of(mc);
    enum sk_proxy_body mode;
    uint64_t len = 0;
    size_t head_len;
    enum sess_result sr;

    atomic_fetch_add(&h->requests, 1);
    if (c == NULL)
        return MHD_NO;
    rq->conn = c;
    rq->start_us = mono_us();
    if (!head_intact(rq, mc, url, method, version))
        return respond_error(rq, mc, MHD_HTTP_BAD_REQUEST, 1);
    if (sk_strlcpy(rq->method, sizeof rq->method, method) != 0)
        return respond_error(rq, mc, MHD_HTTP_METHOD_NOT_ALLOWED, 1);
    rq->lang = sk_page_lang(header(mc, "Accept-Language"));
    /* Revocation is checked on every request, not only at the handshake: a kept-alive
     * connection or a resumed TLS session of a just-revoked certificate stops here. */
    if (h->d.net != NULL && !sk_net_crl_usable(h->d.net)) {
        /* Fail closed: without a current CRL nobody can tell revoked from valid. */
        return respond_error(rq, mc, MHD_HTTP_SERVICE_UNAVAILABLE, 1);
    }
    if (h->d.net != NULL && sk_net_serial_revoked(h->d.net, c->serial)) {
        atomic_fetch_add(&h->revoked_refused, 1);
        if (h->d.audit != NULL && sk_audit_refused(h->d.audit, c->peer_str, "revoked", c->serial) != 0)
            sk_log(SK_LOG_ERR, "AUDIT WRITE FAILED for a revoked-certificate refusal");
        return respond_error(rq, mc, MHD_HTTP_FORBIDDEN, 1);
    }
    if (!framing_ok(mc, &mode, &len))
        return respond_error(rq, mc, MHD_HTTP_BAD_REQUEST, 1);
    if (rq->raw_uri == NULL || rq->raw_uri[0] != '/')
        return respond_error(rq, mc, MHD_HTTP_BAD_REQUEST, 1);
    {
        int st = route_request(h, rq, mc, c);
        if (st != 0)
            return respond_error(rq, mc, st, 1);
    }
    rq->have_user = sk_store_user_get(h->d.store, c->tenant, c->user, &rq->user) == SK_STORE_OK;
    /* A refused address never sees a login form: this precedes every route. */
    if (!address_allowed(h, rq, mc, c)) {
        if (h->d.audit != NULL && sk_audit_refused(h->d.audit, c->peer_str, "address_refused", c->serial) != 0)
            sk_log(SK_LOG_ERR, "AUDIT WRITE FAILED for an address refusal");
        return respond_error(rq, mc, MHD_HTTP_FORBIDDEN, 1);
    }
    if (strncmp(url, "/.sekisho/", 10) == 0) {
        for (size_t i = 0; i < SK_ARRAY_LEN(routes); i++) {
            if (strcmp(url, routes[i].path) != 0 || strcmp(method, routes[i].method) != 0)
                continue;
            if (routes[i].fn != NULL)
                return routes[i].off_loop ? off_loop(rq, mc, routes[i].fn) : routes[i].fn(rq, mc, c);
            rq->kind = routes[i].post_kind;
            rq->f = calloc(1, sizeof *rq->f);
            if (rq->f == NULL)
                return MHD_NO;
            if (form_begin(rq, mc) != 0)
                return respond_error(rq, mc, MHD_HTTP_BAD_REQUEST, 1);
            return MHD_YES;
        }
        return respond_error(rq, mc, MHD_HTTP_NOT_FOUND, mode != SK_PROXY_BODY_NONE);
    }
    sr = session_find(rq, mc, c);
    if (sr != SESS_OK)
        return unauthenticated(rq, mc, method, sr, mode != SK_PROXY_BODY_NONE);
    if (rq->have_user && (rq->user.flags & SK_USER_F_MUST_CHANGE_PW) != 0)
        return respond(mc, MHD_HTTP_SEE_OTHER, "text/plain", "", 0, "/.sekisho/password", NULL,
                       mode != SK_PROXY_BODY_NONE);
    {
        /* The rules judge, and the upstream gets, the same normalised path. */
        int st = sk_req_target_split(rq->raw_uri, rq->path, sizeof rq->path, &rq->query);
        if (st != 0)
            return respond_error(rq, mc, st, mode != SK_PROXY_BODY_NONE);
    }
    if (!path_allowed(h, rq))
        return respond_error(rq, mc, MHD_HTTP_FORBIDDEN, mode != SK_PROXY_BODY_NONE);
    rq->upgrade = strcmp(method, "GET") == 0 && mode == SK_PROXY_BODY_NONE && is_websocket_request(mc);
    if (build_head(rq, mc, c, method, mode, len, &head_len) != 0)
        return respond_error(rq, mc, MHD_HTTP_BAD_REQUEST, 1);
    rq->kind = K_PROXY;
    atomic_fetch_add(&h->proxied, 1);
    rq->mc = mc;
    rq->w = hconn_of(mc)->w;
    if (sk_proxy_start(rq->route->proxy, rq->head, head_len, mode, strcmp(method, "HEAD") == 0, &rq->px) != 0) {
        rq->px = NULL;
        rq->upstream_failed = 1;
    } else {
        if (rq->upgrade)
            sk_proxy_allow_upgrade(rq->px); /* before any byte of the answer is read */
        if (up_progress(rq) < 0)
            rq->upstream_failed = 1;
    }
    if (rq->upstream_failed)
        sk_log(SK_LOG_WARN, "upstream unreachable for %s %s", method, url);
    return MHD_YES;
}

/* Request body bytes: returns how many were taken. A proxied body goes to the
 * upstream's send queue; when that is full the request waits (suspended) for the
 * upstream to read, and MHD hands the rest again after the resume. */
static size_t consume(struct req *rq, const char *data, size_t n)
{
    if (rq->kind == K_PROXY) {
        ssize_t took;
        if (rq->upstream_failed || rq->px == NULL)
            return n; /* answered 502 at the end; the body is read and dropped */
        took = sk_proxy_queue_body(rq->px, data, n);
        if (took < 0 || up_progress(rq) < 0) {
            rq->upstream_failed = 1;
            return n;
        }
        if ((size_t)took < n)
            up_suspend(rq);
        return (size_t)took;
    }
    if (rq->kind == K_LOGIN_POST || rq->kind == K_LOGOUT_POST || rq->kind == K_PASSWORD_POST ||
        rq->kind == K_TOTP_POST) {
        rq->body_bytes += n;
        if (rq->body_bytes > FORM_MAX)
            rq->too_large = 1;
        else if (rq->form_body != NULL)
            memcpy(rq->form_body + rq->body_bytes - n, data, n);
    }
    return n;
}

/* The request is complete: the chunked terminator out, then wait for the head. */
static enum MHD_Result proxy_finish(struct req *rq, struct MHD_Connection *mc, const char *method)
{
    int rc;
    if (rq->px == NULL)
        return respond_error(rq, mc, MHD_HTTP_BAD_GATEWAY, 0);
    if (!rq->upstream_failed) {
        rc = sk_proxy_queue_end(rq->px);
        if (rc < 0)
            rq->upstream_failed = 1;
        else if (rc == 0 || (rc = up_progress(rq)) == 0) {
            up_suspend(rq);
            return MHD_YES;
        }
    }
    return proxy_respond(rq, mc, method);
}

static enum MHD_Result finish(struct req *rq, struct MHD_Connection *mc, const char *method)
{
    sk_conn *c = conn_of(mc);
    if (c == NULL)
        return MHD_NO;
    form_finish(rq);
    switch (rq->kind) {
    case K_PROXY:
        return proxy_finish(rq, mc, method);
    case K_LOGIN_POST:
        return off_loop(rq, mc, post_login);
    case K_LOGOUT_POST:
        return off_loop(rq, mc, post_logout);
    case K_PASSWORD_POST:
        return off_loop(rq, mc, post_password);
    case K_TOTP_POST:
        return off_loop(rq, mc, post_totp);
    default:
        return respond_error(rq, mc, MHD_HTTP_INTERNAL_SERVER_ERROR, 1);
    }
}

static void off_loop_free(struct off_loop *o)
{
    if (o == NULL)
        return;
    sk_wipe(o->cookie, sizeof o->cookie);
    free(o->body);
    free(o->location);
    free(o);
}

/* On an auth pool thread: run the handler, then hand the connection back to its
 * worker. The connection is suspended, so libmicrohttpd neither reads it nor frees
 * it meanwhile; the handler only reads the request's headers. */
static void off_loop_main(void *arg)
{
    struct off_loop *o = arg;
    struct req *rq = o->rq;
    struct hworker *w = o->w;
    uint64_t one = 1;

    tl_off = o;
    o->result = o->fn(rq, o->mc, rq->conn);
    tl_off = NULL;
    pthread_mutex_lock(&w->done_lock);
    o->done = 1;
    o->next = w->done_list;
    w->done_list = o;
    pthread_mutex_unlock(&w->done_lock);
    (void)!write(w->done_w.fd, &one, sizeof one);
}

static enum MHD_Result off_loop(struct req *rq, struct MHD_Connection *mc, route_fn fn)
{
    struct hconn *hc = hconn_of(mc);
    struct off_loop *o;
    int r;

    if (hc == NULL || (o = calloc(1, sizeof *o)) == NULL)
        return MHD_NO;
    o->rq = rq;
    o->mc = mc;
    o->w = hc->w;
    o->fn = fn;
    rq->off = o;
    /* Queued before the suspension: the job may finish at once, but its completion
     * is taken up by this worker only after this handler has returned. */
    r = sk_auth_pool_run(rq->h->d.auth, off_loop_main, o);
    if (r == 0) {
        hc->w->pending++;
        MHD_suspend_connection(mc);
        return MHD_YES;
    }
    rq->off = NULL;
    off_loop_free(o);
    if (r == SK_AUTH_BUSY) {
        atomic_fetch_add(&rq->h->login_busy, 1);
        if (rq->kind == K_LOGIN_POST)
            return send_login_page(rq, mc, rq->conn, MHD_HTTP_SERVICE_UNAVAILABLE, SK_MSG_BUSY,
                                   sk_req_return_path(rq->f->f_return));
        return respond_error(rq, mc, MHD_HTTP_SERVICE_UNAVAILABLE, 0);
    }
    return respond_error(rq, mc, MHD_HTTP_SERVICE_UNAVAILABLE, 1);
}

/* The worker, after the resume: queue what the handler prepared. */
static enum MHD_Result off_loop_answer(struct req *rq, struct MHD_Connection *mc)
{
    struct off_loop *o = rq->off;
    enum MHD_Result res = MHD_NO;
    if (!o->done)
        return MHD_YES; /* still running (a spurious call): stay suspended */
    rq->off = NULL;
    if (o->answered)
        res = respond_now(mc, o->status, o->ctype, o->body, o->len, o->location, o->cookie[0] ? o->cookie : NULL,
                          o->close_conn);
    off_loop_free(o);
    return res;
}

/* Wakes the worker when handlers it sent off the loop have finished. */
static void off_loop_finished(sk_loop_watch *lw, uint32_t events)
{
    struct hworker *w = (struct hworker *)((char *)lw - offsetof(struct hworker, done_w));
    struct off_loop *list, *next;
    uint64_t v;
    (void)events;
    while (read(lw->fd, &v, sizeof v) == (ssize_t)sizeof v)
        ;
    pthread_mutex_lock(&w->done_lock);
    list = w->done_list;
    w->done_list = NULL;
    pthread_mutex_unlock(&w->done_lock);
    for (; list != NULL; list = next) {
        next = list->next;
        w->pending--;
        MHD_resume_connection(list->mc);
    }
    (void)MHD_run(w->d);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    struct req *rq = *con_cls;
    if (rq == NULL)
        return MHD_NO;
    if (rq->off != NULL)
        return off_loop_answer(rq, mc);
    if (!rq->started) {
        rq->started = 1;
        return begin(rq, mc, url, method, version);
    }
    if (*upload_size > 0) {
        *upload_size -= consume(rq, upload, *upload_size);
        return MHD_YES;
    }
    return finish(rq, mc, method);
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *mc)
{
    struct req *rq = calloc(1, sizeof *rq);
    if (rq == NULL)
        return NULL;
    struct hconn *hc = hconn_of(mc);
    rq->h = cls;
    rq->raw_uri = strdup(uri);
    atomic_fetch_add(&rq->h->inflight, 1);
    if (hc != NULL)
        hc->busy++;
    return rq;
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    struct req *rq = *con_cls;
    if (rq == NULL)
        return;
    atomic_fetch_sub(&rq->h->inflight, 1);
    {
        struct hconn *hc = hconn_of(mc);
        if (hc != NULL && hc->busy > 0)
            hc->busy--;
    }
    if (rq->kind == K_PROXY && rq->h->d.audit != NULL && rq->h->d.conf->audit_log_requests && rq->conn != NULL) {
        const sk_conn *c = rq->conn;
        char path[1024];
        /* The forwarded (authorised) path; the query is never logged, and a long
         * path is cut with a visible marker (sk_req_audit_path). */
        sk_req_audit_path(rq->path[0] ? rq->path : rq->raw_uri, path, sizeof path);
        if (sk_audit_request(rq->h->d.audit, c->user, c->tenant, c->peer_str, c->serial, rq->method, path,
                             toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? rq->status : 0, rq->bytes_out,
                             (uint64_t)(mono_us() - rq->start_us)) != 0)
            sk_log(SK_LOG_ERR, "AUDIT WRITE FAILED for a request line");
    }
    if (rq->off != NULL) {
        /* Only a finished one can be here: a suspended connection is never ended. */
        if (rq->off->done)
            off_loop_free(rq->off);
        else
            sk_log(SK_LOG_ERR, "request ended while its handler still runs off the loop");
    }
    if (rq->form_body != NULL) {
        sk_wipe(rq->form_body, FORM_MAX);
        free(rq->form_body);
    }
    if (rq->w != NULL)
        up_unwatch(rq);
    sk_proxy_finish(rq->px);
    free(rq->head);
    free(rq->raw_uri);
    if (rq->f != NULL) {
        sk_wipe(rq->f, sizeof *rq->f);
        free(rq->f);
    }
    /* The secrets a request can hold: the account's hashes and sealed TOTP secret,
     * and the session's CSRF secret. */
    sk_wipe(&rq->user, sizeof rq->user);
    sk_wipe(&rq->sess, sizeof rq->sess);
    free(rq);
    *con_cls = NULL;
}

static void hconn_unref(struct hconn *hc)
{
    if (--hc->refs > 0)
        return;
    ws_free(hc);
    free(hc->c);
    free(hc);
}

static void on_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct hworker *w = cls;
    (void)mc;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        /* Called from inside MHD_add_connection, on this worker's thread. */
        *socket_context = w->adding;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context != NULL) {
        hconn_unref(*socket_context);
        *socket_context = NULL;
    }
}

/* Paths and query values are kept exactly as the client sent them, so the upstream
 * sees the same bytes; our own routes compare raw paths. */
static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    return strlen(s);
}

/* libmicrohttpd hands us its own format strings; they are not client data. */
static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    (void)vsnprintf(msg, sizeof msg, fmt, ap);
    sk_log(SK_LOG_DEBUG, "mhd: %s", msg);
}

static void mhd_ready(sk_loop_watch *lw, uint32_t events)
{
    struct hworker *w = (struct hworker *)((char *)lw - offsetof(struct hworker, mhd_w));
    (void)events;
    (void)MHD_run(w->d);
}

void *sk_http_worker_open(void *arg, sk_loop *loop)
{
    sk_http *h = arg;
    const sk_conf *conf = h->d.conf;
    const union MHD_DaemonInfo *di;
    struct hworker *w = calloc(1, sizeof *w);

    if (w == NULL)
        return NULL;
    w->h = h;
    w->loop = loop;
    /* No thread and no listening socket of its own: connections come from the TLS
     * side through MHD_add_connection, and MHD_run is called from this worker's
     * loop when MHD's epoll descriptor is ready. */
    w->d = MHD_start_daemon(
        MHD_USE_NO_LISTEN_SOCKET | MHD_USE_EPOLL | MHD_USE_TURBO | MHD_ALLOW_UPGRADE | MHD_ALLOW_SUSPEND_RESUME |
            MHD_USE_ERROR_LOG,
        0, NULL, NULL, on_request, h, MHD_OPTION_URI_LOG_CALLBACK, on_uri, h, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, h, MHD_OPTION_NOTIFY_CONNECTION, on_connection, w, MHD_OPTION_UNESCAPE_CALLBACK, no_unescape,
        h, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)conf->request_timeout, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned int)SK_NET_MAX_CONNECTIONS_AUTO * 10, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(16 * 1024),
        MHD_OPTION_STRICT_FOR_CLIENT, (int)1, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h, MHD_OPTION_END);
    if (w->d == NULL || (di = MHD_get_daemon_info(w->d, MHD_DAEMON_INFO_EPOLL_FD)) == NULL) {
        sk_log(SK_LOG_ERR, "cannot start the HTTP engine of a worker");
        goto fail;
    }
    w->mhd_w.fd = di->epoll_fd;
    w->mhd_w.on_event = mhd_ready;
    w->done_w.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    w->done_w.on_event = off_loop_finished;
    if (w->done_w.fd < 0 || pthread_mutex_init(&w->done_lock, NULL) != 0)
        goto fail;
    if (sk_loop_add(loop, &w->mhd_w, EPOLLIN) != 0 || sk_loop_add(loop, &w->done_w, EPOLLIN) != 0) {
        pthread_mutex_destroy(&w->done_lock);
        goto fail;
    }
    return w;
fail:
    if (w->d != NULL)
        MHD_stop_daemon(w->d);
    if (w->done_w.fd >= 0)
        close(w->done_w.fd);
    free(w);
    return NULL;
}

int sk_http_worker_run(void *wctx)
{
    struct hworker *w = wctx;
    MHD_UNSIGNED_LONG_LONG to = 0;
    int64_t now = mono_us() / 1000, next = -1;
    struct ws_relay *ws, *ws_next;

    /* WebSockets have no next request at which a revocation could bite. */
    for (ws = w->ws_list; ws != NULL; ws = ws_next) {
        ws_next = ws->next;
        if (now >= ws->next_check_ms)
            ws_relay_run(ws->hc);
        else if (next < 0 || ws->next_check_ms - now < next)
            next = ws->next_check_ms - now;
    }
    if (w->ws_list != NULL && next < 0)
        next = 1000;
    {
        int64_t up = up_expire(w, now);
        if (up >= 0 && (next < 0 || up < next))
            next = up;
    }
    if (w->run_mhd) {
        w->run_mhd = 0;
        (void)MHD_run(w->d);
    }
    if (MHD_get_timeout(w->d, &to) == MHD_YES) {
        if (to == 0) {
            (void)MHD_run(w->d);
            if (MHD_get_timeout(w->d, &to) != MHD_YES)
                return (int)next;
        }
        if (next < 0 || (int64_t)to < next)
            next = to > INT32_MAX ? INT32_MAX : (int64_t)to;
    }
    return (int)next;
}

int sk_http_worker_pending(void *wctx)
{
    struct hworker *w = wctx;
    return w->pending;
}

void sk_http_worker_close(void *wctx)
{
    struct hworker *w = wctx;
    if (w == NULL)
        return;
    sk_loop_del(w->loop, &w->mhd_w);
    sk_loop_del(w->loop, &w->done_w);
    MHD_stop_daemon(w->d); /* closes what is left; NOTIFY_CLOSED frees each hconn */
    close(w->done_w.fd);
    pthread_mutex_destroy(&w->done_lock);
    free(w);
}

void *sk_http_conn_open(void *wctx, int fd, sk_conn *c)
{
    struct hworker *w = wctx;
    struct hconn *hc = calloc(1, sizeof *hc);

    if (hc == NULL) {
        close(fd);
        free(c);
        return NULL;
    }
    hc->w = w;
    hc->h = w->h;
    hc->c = c;
    hc->refs = 2; /* libmicrohttpd's side and the TLS side */
    w->adding = hc;
    /* On failure libmicrohttpd has closed fd and never reported the connection. */
    if (MHD_add_connection(w->d, fd, (const struct sockaddr *)&c->peer, c->peer_len) != MHD_YES) {
        w->adding = NULL;
        free(c);
        free(hc);
        return NULL;
    }
    w->adding = NULL;
    return hc;
}

int sk_http_conn_busy(void *ctx)
{
    struct hconn *hc = ctx;
    return hc->busy > 0 || (hc->ws != NULL && !hc->ws->done);
}

void sk_http_conn_close(void *ctx)
{
    struct hconn *hc = ctx;
    /* The TLS side is gone; libmicrohttpd notices the end of the stream itself. */
    if (hc->ws != NULL)
        ws_end(hc);
    hconn_unref(hc);
}

int sk_http_create(const sk_http_deps *deps, sk_http **out)
{
    sk_http *h = calloc(1, sizeof *h);
    const sk_conf *conf = deps->conf;

    if (h == NULL)
        return -1;
    h->d = *deps;
    sk_policy_defaults(&h->pol);
    h->pol.idle_timeout = conf->idle_timeout;
    h->pol.absolute_timeout = conf->absolute_timeout;
    h->pol.burst_threshold = conf->burst_threshold;
    h->pol.burst_window = conf->burst_window;
    pthread_mutex_init(&h->burst_lock, NULL);
    sk_policy_burst_init(&h->burst);
    if (sk_random(h->csrf_key, sizeof h->csrf_key) != 0)
        goto fail;
    h->global_allow.items = conf->access_allow;
    h->global_allow.count = conf->n_access_allow;
    h->trusted.items = conf->trusted_proxies;
    h->trusted.count = conf->n_trusted_proxies;
    for (uint32_t i = 0; i < conf->n_path_rules; i++) {
        h->path_rules[i].prefix = conf->path_rules[i].prefix;
        h->path_rules[i].roles = conf->path_rules[i].roles;
    }
    h->n_path_rules = conf->n_path_rules;
    if (conf->n_tenants == 0) {
        h->routes_t[0].proxy = deps->proxy;
        h->routes_t[0].prefix = conf->upstream_prefix;
        h->n_routes_t = 1;
    }
    for (uint32_t i = 0; i < conf->n_tenants; i++) {
        struct route_tenant *r = &h->routes_t[i];
        r->t = &conf->tenants[i];
        r->prefix = r->t->upstream.prefix;
        r->allow.items = r->t->allow;
        r->allow.count = r->t->n_allow;
        if (sk_proxy_create_for(conf, r->t->upstream.host, r->t->upstream.port, &r->proxy) != 0)
            goto fail;
        h->n_routes_t = i + 1;
    }
    *out = h;
    return 0;
fail:
    for (size_t i = 0; i < h->n_routes_t; i++)
        if (h->routes_t[i].t != NULL)
            sk_proxy_destroy(h->routes_t[i].proxy);
    free(h);
    return -1;
}

void sk_http_set_net(sk_http *h, sk_net *net)
{
    h->d.net = net;
}

void sk_http_destroy(sk_http *h)
{
    if (h == NULL)
        return;
    for (size_t i = 0; i < h->n_routes_t; i++)
        if (h->routes_t[i].t != NULL)
            sk_proxy_destroy(h->routes_t[i].proxy);
    sk_wipe(h->csrf_key, sizeof h->csrf_key);
    free(h);
}
