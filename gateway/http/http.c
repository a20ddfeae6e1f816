/* sk_http: the router, the request lifecycle, sessions, CSRF, health and metrics.
 * See sk_http.h for the contracts and http_int.h for how the layer is split. */
#include "http_int.h"
#include "sk_sandbox.h"
#include "sk_notify.h"


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


/* ---- small helpers ---------------------------------------------------- */

struct hconn *http_hconn_of(struct MHD_Connection *mc)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static sk_conn *conn_of(struct MHD_Connection *mc)
{
    struct hconn *hc = http_hconn_of(mc);
    return hc ? hc->c : NULL;
}

const char *http_header(struct MHD_Connection *mc, const char *name)
{
    return MHD_lookup_connection_value(mc, MHD_HEADER_KIND, name);
}

int64_t http_now_s(void)
{
    return (int64_t)time(NULL);
}

int64_t http_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Security events are durable before the client gets its answer. Failing to log one
 * is an error the operator must see, but the answer still goes out: refusing
 * service because the disk is full would let an attacker turn logging into a DoS. */
void http_audit_event(sk_http *h, const char *ev, const sk_conn *c, const sk_audit_kv *kv, size_t n_kv)
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
        http_audit_failed(h, ev);
}

void http_add_security_headers(struct MHD_Response *r)
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

int http_csrf_make(const sk_http *h, const char *binding, char *out, size_t cap)
{
    uint8_t tok[24], mac[32];
    uint64_t ts = (uint64_t)http_now_s();
    if (cap < SK_B64URL_LEN(sizeof tok) + 1 || csrf_mac(h, binding, ts, mac) != 0)
        return -1;
    for (int i = 0; i < 8; i++)
        tok[i] = (uint8_t)(ts >> (56 - 8 * i));
    memcpy(tok + 8, mac, 16);
    sk_b64url_encode(tok, sizeof tok, out);
    return 0;
}

int http_csrf_valid(const sk_http *h, const char *binding, const char *token)
{
    uint8_t tok[24], mac[32];
    uint64_t ts = 0;
    int64_t age;
    if (sk_b64url_decode(token, strlen(token), tok, sizeof tok) != 0)
        return 0;
    for (int i = 0; i < 8; i++)
        ts = ts << 8 | tok[i];
    age = http_now_s() - (int64_t)ts;
    if (age < -60 || age > CSRF_TTL || csrf_mac(h, binding, ts, mac) != 0)
        return 0;
    return sk_secret_equal(mac, tok + 8, 16);
}


/* ---- sessions --------------------------------------------------------- */


/* Requests that may be asked twice: authd restarted while it held one (reset). A
 * login or a password change is not among them: whether the dead authd committed it
 * is unknown, and the user simply tries again. */
static int http_authd_idempotent(uint16_t type)
{
    static const uint16_t again[] = { SK_WIRE_AUTH_LOOKUP, SK_WIRE_AUTH_SESSION_END, SK_WIRE_AUTH_SESSION_TOUCH,
                                      SK_WIRE_AUTH_CENSUS, SK_WIRE_AUTH_ACTIVATION_VALID,
                                      SK_WIRE_AUTH_TOTP_PENDING };
    for (size_t i = 0; i < SK_ARRAY_LEN(again); i++)
        if (again[i] == type)
            return 1;
    return 0;
}

int http_authd(sk_http *h, uint16_t type, const void *req, void *rep)
{
    int r;
    for (int attempt = 0;; attempt++) {
        struct timespec pause = { 0, 200 * 1000 * 1000 };
        r = sk_authd_call(h->d.authd, type, req, rep, HTTP_AUTHD_TIMEOUT_MS);
        if (r >= 0 || errno != ECONNRESET || !http_authd_idempotent(type) || attempt == 10)
            break;
        (void)nanosleep(&pause, NULL);
    }
    if (r < 0)
        atomic_fetch_add(&h->ctr->store_errors, 1);
    return r;
}

void http_session_drop(sk_http *h, const uint8_t hash[SK_SESSION_HASH_LEN])
{
    sk_wire_session_req q = { .now = 0 };
    sk_wire_status_rep p;
    memcpy(q.hash, hash, sizeof q.hash);
    http_lookup_forget(hash);
    if (http_authd(h, SK_WIRE_AUTH_SESSION_END, &q, &p) != 0)
        sk_log(SK_LOG_ERR, "cannot end a session (authd)");
}


enum MHD_Result http_find_session_cookie(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    if (value != NULL && strcasecmp(key, "Cookie") == 0)
        sk_req_cookie_find_session(value, cls);
    return MHD_YES;
}

/* The last_seen write is a store commit: it runs on the auth pool, never on a
 * worker's loop, and nobody waits for it. A full pool skips it; the next request
 * of the session tries again. */
struct session_touch {
    sk_http *h; /* freed only after the pool has run every queued job */
    uint8_t hash[SK_SESSION_HASH_LEN];
    int64_t now, every;
};

static void touch_session_job(void *arg)
{
    struct session_touch *t = arg;
    sk_wire_session_req q;
    sk_wire_status_rep p;
    memcpy(q.hash, t->hash, sizeof q.hash);
    q.now = t->now;
    q.every = t->every;
    if (http_authd(t->h, SK_WIRE_AUTH_SESSION_TOUCH, &q, &p) != 0)
        sk_log(SK_LOG_WARN, "session touch failed");
    sk_wipe(t, sizeof *t);
    free(t);
}

static void touch_session(sk_http *h, const uint8_t hash[SK_SESSION_HASH_LEN], int64_t now, int64_t every)
{
    struct session_touch *t = malloc(sizeof *t);
    if (t == NULL)
        return;
    t->h = h;
    memcpy(t->hash, hash, sizeof t->hash);
    t->now = now;
    t->every = every;
    if (sk_auth_pool_run(h->d.auth, touch_session_job, t) != 0) {
        sk_wipe(t, sizeof *t);
        free(t);
    }
}

enum sess_result http_session_find(struct req *rq, struct MHD_Connection *mc, const sk_conn *c)
{
    sk_http *h = rq->h;
    int64_t now = http_now_s();

    if (!rq->looked_up && http_lookup(rq, mc, c) != 0)
        return SESS_NONE;
    if (!rq->have_cookie || !rq->sess_found)
        return SESS_NONE;
    /* The session belongs to one certificate: another user's certificate, or the same
     * user's reissued one, does not carry it. */
    if (strcmp(rq->sess.user, c->user) != 0 || strcmp(rq->sess.tenant, c->tenant) != 0 ||
        strcmp(rq->sess.cert_serial, c->serial) != 0) {
        /* A cookie that shows up with another certificate has leaked: end the
         * session, so that the stolen copy is worthless everywhere. */
        atomic_fetch_add(&h->ctr->session_rejected, 1);
        rq->sess_found = 0;
        http_session_drop(h, rq->sess_hash);
        sk_log(SK_LOG_WARN, "session of %s/%s presented with certificate %s/%s serial %s from %s: revoked",
               rq->sess.tenant, rq->sess.user, c->tenant, c->user, c->serial, c->peer_str);
        {
            sk_audit_kv kv[] = { { "reason", "certificate_mismatch" }, { "session_user", rq->sess.user },
                                 { "session_tenant", rq->sess.tenant } };
            http_audit_event(h, SK_AUDIT_EV_REVOKED, c, kv, SK_ARRAY_LEN(kv));
        }
        return SESS_NONE;
    }
    switch (sk_policy_session_check(&h->pol, rq->sess.created, rq->sess.last_seen, now)) {
    case SK_POLICY_SESSION_OK:
        break;
    case SK_POLICY_SESSION_IDLE_EXPIRED:
        rq->sess_found = 0;
        http_session_drop(h, rq->sess_hash);
        sk_log(SK_LOG_INFO, "idle logoff %s/%s", c->tenant, c->user);
        http_audit_event(h, SK_AUDIT_EV_IDLE, c, NULL, 0);
        return SESS_IDLE;
    default:
        rq->sess_found = 0;
        http_session_drop(h, rq->sess_hash);
        sk_log(SK_LOG_INFO, "session lifetime reached %s/%s", c->tenant, c->user);
        http_audit_event(h, SK_AUDIT_EV_EXPIRED, c, NULL, 0);
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
        if (now - rq->sess.last_seen >= every)
            touch_session(h, rq->sess_hash, now, every);
    }
    rq->have_sess = 1;
    return SESS_OK;
}

int http_session_cookie(const uint8_t token[TOKEN_LEN], char cookie[256])
{
    char tok64[TOKEN_B64 + 1];
    int rc;
    sk_b64url_encode(token, TOKEN_LEN, tok64);
    rc = sk_snprintf(cookie, 256, COOKIE_NAME "=%s; Path=/; Secure; HttpOnly; SameSite=Strict", tok64);
    sk_wipe(tok64, sizeof tok64);
    return rc;
}

const char http_cookie_clear[] = COOKIE_NAME "=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0";


/* Still 200 with an unsynchronised clock (the gateway works, but TOTP windows,
 * timeouts and audit times drift): the second line tells monitors. */
static enum MHD_Result get_health(struct req *rq, struct MHD_Connection *mc, const sk_conn *c)
{
    static const char *const clock_line[] = { "clock: not synchronised\n", "clock: synchronised\n",
                                              "clock: unknown\n" };
    const char *cl = clock_line[sk_clock_synced() < 0 ? 2 : sk_clock_synced()];
    char body[64];
    (void)rq;
    (void)c;
    if (sk_snprintf(body, sizeof body, "ok\n%s", cl) != 0)
        return MHD_NO;
    return http_respond(mc, MHD_HTTP_OK, "text/plain", body, strlen(body), NULL, NULL, 0);
}

static enum MHD_Result get_css(struct req *rq, struct MHD_Connection *mc, const sk_conn *c)
{
    return http_respond(mc, MHD_HTTP_OK, "text/css", sk_page_css, strlen(sk_page_css), NULL, NULL, 0);
}



/* off_loop: the handler may wait for the disk (store commits, fsync'd audit
 * entries) or argon2, so it runs on the auth pool while the connection is
 * suspended; every form POST is such a handler (see http_finish). */
#ifdef SEKISHO_TEST_HOOKS
/* TEST BUILDS ONLY (never in a release or a package, see sk_sandbox.h): make this
 * network process attempt what its sandbox forbids, e.g. ?what=execve, so that a test
 * sees the process die of SIGSYS and the monitor restart it. */
static enum MHD_Result test_violate(struct req *rq, struct MHD_Connection *mc, const sk_conn *c)
{
    const char *what = MHD_lookup_connection_value(mc, MHD_GET_ARGUMENT_KIND, "what");
    (void)c;
    sk_log(SK_LOG_WARN, "test hook: attempting a forbidden %s", what != NULL ? what : "(nothing)");
    if (what != NULL && strncmp(what, "personal-mail:", 14) == 0) {
        /* a user's own mail to an address of this process's choosing: posted to
         * the monitor, which must refuse it (only authd sends a user's mail) */
        struct sk_notify_msg m = { NULL, what + 14, "Sekisho: test hook", "sent by a network process\n" };
        if (sk_notify_send_level(rq->h->d.conf->notify_command, &m, SK_NOTIFY_PERSONAL) != 0)
            return http_respond_error(rq, mc, MHD_HTTP_BAD_REQUEST, 1);
        return http_respond_error(rq, mc, MHD_HTTP_INTERNAL_SERVER_ERROR, 1); /* posted */
    }
    if (what == NULL || sk_sandbox_test_violate(what) != 0)
        return http_respond_error(rq, mc, MHD_HTTP_BAD_REQUEST, 1);
    return http_respond_error(rq, mc, MHD_HTTP_INTERNAL_SERVER_ERROR, 1); /* it was allowed */
}
#endif

static const struct route {
    const char *method, *path;
    route_fn fn;
    enum req_kind post_kind;
    int off_loop;
} routes[] = {
    { "GET", "/.sekisho/login", http_get_login, K_NONE, 0 },
    { "POST", "/.sekisho/login", NULL, K_LOGIN_POST, 1 },
    { "GET", "/.sekisho/logout", http_get_logout, K_NONE, 0 },
    { "POST", "/.sekisho/logout", NULL, K_LOGOUT_POST, 1 },
    { "GET", "/.sekisho/password", http_get_password, K_NONE, 0 },
    { "POST", "/.sekisho/password", NULL, K_PASSWORD_POST, 1 },
    { "GET", "/.sekisho/totp", http_get_totp, K_NONE, 1 },
    { "POST", "/.sekisho/totp", NULL, K_TOTP_POST, 1 },
    { "GET", "/.sekisho/activate", http_get_activate, K_NONE, 0 },
    { "POST", "/.sekisho/activate", NULL, K_ACTIVATE_POST, 1 },
    { "GET", "/.sekisho/health", get_health, K_NONE, 0 },
    { "GET", "/.sekisho/metrics", http_get_metrics, K_NONE, 0 },
    { "GET", "/.sekisho/style.css", get_css, K_NONE, 0 },
#ifdef SEKISHO_TEST_HOOKS
    { "GET", "/.sekisho/test/violate", test_violate, K_NONE, 0 },
#endif
};

enum MHD_Result http_off_loop(struct req *rq, struct MHD_Connection *mc, route_fn fn);


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
    st = sk_req_host_route(conf->tenants, h->routes_t[0].t == NULL ? 0 : h->n_routes_t, http_header(mc, "Host"), n_host,
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
    if (peer_addr(c, &peer) != 0 || http_join_headers(mc, "X-Forwarded-For", xff, sizeof xff, &chain) != 0)
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
#define REFUSAL_LOG_EVERY 10

/* A refusal by the allowlist or a role rule: counted, audited in aggregate (like
 * handshake refusals), and put in the journal as at most one line per kind and
 * REFUSAL_LOG_EVERY seconds, so that a scan cannot flood it. */
static const struct {
    const char *audit_reason, *what;
} refusal_kinds[] = {
    [HTTP_REFUSED_ADDRESS] = { "address_refused", "refused by the IP allowlist" },
    [HTTP_REFUSED_ROLE] = { "role_forbidden", "refused by a role rule (403)" },
};

/* Under refusal_lock: the journal line for kind when its window is over (or force). */
static void refusal_line_locked(sk_http *h, enum http_refusal kind, int64_t now, int force)
{
    struct refusal_log *rl = &h->refusal_log[kind];
    if (rl->pending == 0 || (!force && rl->since != 0 && now - rl->since < REFUSAL_LOG_EVERY))
        return;
    sk_log(SK_LOG_WARN, "%s: %llu request(s) since the last such line (latest %s)", refusal_kinds[kind].what,
           (unsigned long long)rl->pending, rl->latest);
    rl->pending = 0;
    rl->since = now;
}

/* A refusal by the allowlist or a role rule: counted, audited in aggregate (like
 * handshake refusals), and put in the journal as at most one line per kind and
 * REFUSAL_LOG_EVERY seconds (the rest summed into the next), so that a scan cannot
 * flood it. */
static void note_refusal(sk_http *h, enum http_refusal kind, const sk_conn *c)
{
    struct refusal_log *rl = &h->refusal_log[kind];
    int64_t now = http_now_s();

    atomic_fetch_add(&h->ctr->refused_total[kind], 1);
    if (h->d.audit != NULL && sk_audit_refused(h->d.audit, c->peer_str, refusal_kinds[kind].audit_reason,
                                               c->serial) != 0)
        http_audit_failed(h, refusal_kinds[kind].audit_reason);
    pthread_mutex_lock(&h->refusal_lock);
    rl->pending++;
    if (sk_snprintf(rl->latest, sizeof rl->latest, "%s/%s from %s", c->tenant, c->user, c->peer_str) != 0)
        rl->latest[0] = '\0';
    refusal_line_locked(h, kind, now, 0);
    atomic_store(&h->refusals_pending, 1);
    pthread_mutex_unlock(&h->refusal_lock);
}

void http_refusal_tick(sk_http *h)
{
    int64_t now;
    if (!atomic_load(&h->refusals_pending))
        return;
    now = http_now_s();
    pthread_mutex_lock(&h->refusal_lock);
    refusal_line_locked(h, HTTP_REFUSED_ADDRESS, now, 0);
    refusal_line_locked(h, HTTP_REFUSED_ROLE, now, 0);
    atomic_store(&h->refusals_pending, h->refusal_log[0].pending + h->refusal_log[1].pending > 0);
    pthread_mutex_unlock(&h->refusal_lock);
}

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

    atomic_fetch_add(&h->ctr->requests, 1);
    if (c == NULL)
        return MHD_NO;
    rq->conn = c;
    rq->start_us = http_mono_us();
    if (!head_intact(rq, mc, url, method, version))
        return http_respond_error(rq, mc, MHD_HTTP_BAD_REQUEST, 1);
    if (sk_strlcpy(rq->method, sizeof rq->method, method) != 0)
        return http_respond_error(rq, mc, MHD_HTTP_METHOD_NOT_ALLOWED, 1);
    rq->lang = sk_page_lang(http_header(mc, "Accept-Language"));
    /* Revocation is checked on every request, not only at the handshake: a kept-alive
     * connection or a resumed TLS session of a just-revoked certificate stops here. */
    if (h->d.net != NULL && !sk_net_crl_usable(h->d.net)) {
        /* Fail closed: without a current CRL nobody can tell revoked from valid. */
        return http_respond_error(rq, mc, MHD_HTTP_SERVICE_UNAVAILABLE, 1);
    }
    if (h->d.net != NULL && sk_net_serial_revoked(h->d.net, c->serial)) {
        atomic_fetch_add(&h->ctr->revoked_refused, 1);
        if (h->d.audit != NULL && sk_audit_refused(h->d.audit, c->peer_str, "revoked", c->serial) != 0)
            http_audit_failed(h, "a revoked-certificate refusal");
        return http_respond_error(rq, mc, MHD_HTTP_FORBIDDEN, 1);
    }
    if (!http_framing_ok(mc, &mode, &len))
        return http_respond_error(rq, mc, MHD_HTTP_BAD_REQUEST, 1);
    if (rq->raw_uri == NULL || rq->raw_uri[0] != '/')
        return http_respond_error(rq, mc, MHD_HTTP_BAD_REQUEST, 1);
    {
        int st = route_request(h, rq, mc, c);
        if (st != 0)
            return http_respond_error(rq, mc, st, 1);
    }
    if (http_lookup(rq, mc, c) != 0)
        return http_respond_error(rq, mc, MHD_HTTP_SERVICE_UNAVAILABLE, 1);
    /* A refused address never sees a login form: this precedes every route. */
    if (!address_allowed(h, rq, mc, c)) {
        note_refusal(h, HTTP_REFUSED_ADDRESS, c);
        return http_respond_error(rq, mc, MHD_HTTP_FORBIDDEN, 1);
    }
    if (strncmp(url, "/.sekisho/", 10) == 0) {
        for (size_t i = 0; i < SK_ARRAY_LEN(routes); i++) {
            if (strcmp(url, routes[i].path) != 0 || strcmp(method, routes[i].method) != 0)
                continue;
            if (routes[i].fn != NULL)
                return routes[i].off_loop ? http_off_loop(rq, mc, routes[i].fn) : routes[i].fn(rq, mc, c);
            rq->kind = routes[i].post_kind;
            rq->f = calloc(1, sizeof *rq->f);
            if (rq->f == NULL)
                return MHD_NO;
            if (http_form_begin(rq, mc) != 0)
                return http_respond_error(rq, mc, MHD_HTTP_BAD_REQUEST, 1);
            return MHD_YES;
        }
        return http_respond_error(rq, mc, MHD_HTTP_NOT_FOUND, mode != SK_PROXY_BODY_NONE);
    }
    sr = http_session_find(rq, mc, c);
    if (sr != SESS_OK)
        return http_unauthenticated(rq, mc, method, sr, mode != SK_PROXY_BODY_NONE);
    if (rq->have_user && (rq->user.flags & SK_USER_F_MUST_CHANGE_PW) != 0)
        return http_respond(mc, MHD_HTTP_SEE_OTHER, "text/plain", "", 0, "/.sekisho/password", NULL,
                       mode != SK_PROXY_BODY_NONE);
    {
        /* The rules judge, and the upstream gets, the same normalised path. */
        int st = sk_req_target_split(rq->raw_uri, rq->path, sizeof rq->path, &rq->query);
        if (st != 0)
            return http_respond_error(rq, mc, st, mode != SK_PROXY_BODY_NONE);
    }
    if (!path_allowed(h, rq)) {
        note_refusal(h, HTTP_REFUSED_ROLE, c);
        return http_respond_error(rq, mc, MHD_HTTP_FORBIDDEN, mode != SK_PROXY_BODY_NONE);
    }
    rq->upgrade = strcmp(method, "GET") == 0 && mode == SK_PROXY_BODY_NONE && http_is_websocket_request(mc);
    if (http_build_head(rq, mc, c, method, mode, len, &head_len) != 0)
        return http_respond_error(rq, mc, MHD_HTTP_BAD_REQUEST, 1);
    rq->kind = K_PROXY;
    atomic_fetch_add(&h->ctr->proxied, 1);
    rq->mc = mc;
    rq->w = http_hconn_of(mc)->w;
    if (sk_proxy_start(rq->route->proxy, rq->head, head_len, mode, strcmp(method, "HEAD") == 0, &rq->px) != 0) {
        rq->px = NULL;
        rq->upstream_failed = 1;
    } else {
        if (rq->upgrade)
            sk_proxy_allow_upgrade(rq->px); /* before any byte of the answer is read */
        if (http_up_progress(rq) < 0)
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
        if (took < 0 || http_up_progress(rq) < 0) {
            rq->upstream_failed = 1;
            return n;
        }
        if ((size_t)took < n)
            http_up_suspend(rq);
        return (size_t)took;
    }
    if (rq->kind == K_LOGIN_POST || rq->kind == K_LOGOUT_POST || rq->kind == K_PASSWORD_POST ||
        rq->kind == K_TOTP_POST || rq->kind == K_ACTIVATE_POST) {
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
        return http_respond_error(rq, mc, MHD_HTTP_BAD_GATEWAY, 0);
    if (!rq->upstream_failed) {
        rc = sk_proxy_queue_end(rq->px);
        if (rc < 0)
            rq->upstream_failed = 1;
        else if (rc == 0 || (rc = http_up_progress(rq)) == 0) {
            http_up_suspend(rq);
            return MHD_YES;
        }
    }
    return http_proxy_respond(rq, mc, method);
}

enum MHD_Result http_finish(struct req *rq, struct MHD_Connection *mc, const char *method)
{
    sk_conn *c = conn_of(mc);
    if (c == NULL)
        return MHD_NO;
    http_form_finish(rq);
    switch (rq->kind) {
    case K_PROXY:
        return proxy_finish(rq, mc, method);
    case K_LOGIN_POST:
        return http_off_loop(rq, mc, http_post_login);
    case K_LOGOUT_POST:
        return http_off_loop(rq, mc, http_post_logout);
    case K_PASSWORD_POST:
        return http_off_loop(rq, mc, http_post_password);
    case K_TOTP_POST:
        return http_off_loop(rq, mc, http_post_totp);
    case K_ACTIVATE_POST:
        return http_off_loop(rq, mc, http_post_activate);
    default:
        return http_respond_error(rq, mc, MHD_HTTP_INTERNAL_SERVER_ERROR, 1);
    }
}


enum MHD_Result http_on_request(void *cls, struct MHD_Connection *mc, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    struct req *rq = *con_cls;
    if (rq == NULL)
        return MHD_NO;
    if (rq->off != NULL)
        return http_off_loop_answer(rq, mc);
    if (!rq->started) {
        rq->started = 1;
        return begin(rq, mc, url, method, version);
    }
    if (*upload_size > 0) {
        *upload_size -= consume(rq, upload, *upload_size);
        return MHD_YES;
    }
    return http_finish(rq, mc, method);
}

void *http_on_uri(void *cls, const char *uri, struct MHD_Connection *mc)
{
    struct req *rq = calloc(1, sizeof *rq);
    if (rq == NULL)
        return NULL;
    struct hconn *hc = http_hconn_of(mc);
    rq->h = cls;
    rq->raw_uri = strdup(uri);
    atomic_fetch_add(&rq->h->ctr->inflight, 1);
    if (hc != NULL) {
        /* libmicrohttpd reports completion only for requests it handed to the
         * access handler: one it refused before (a malformed header, say) would
         * never be freed. The connection remembers its request to end it here or
         * when it closes (a remote memory leak otherwise; found by fuzz_req_mhd). */
        if (hc->cur != NULL)
            http_req_abandon(hc, mc);
        hc->cur = rq;
        hc->busy++;
    }
    return rq;
}

void http_req_abandon(struct hconn *hc, struct MHD_Connection *mc)
{
    void *rq = hc->cur;
    if (rq != NULL)
        http_on_completed(hc->h, mc, &rq, MHD_REQUEST_TERMINATED_WITH_ERROR);
    hc->cur = NULL;
}

void http_on_completed(void *cls, struct MHD_Connection *mc, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    struct req *rq = *con_cls;
    if (rq == NULL)
        return;
    atomic_fetch_sub(&rq->h->ctr->inflight, 1);
    {
        struct hconn *hc = http_hconn_of(mc);
        if (hc != NULL && hc->busy > 0)
            hc->busy--;
        if (hc != NULL && hc->cur == rq)
            hc->cur = NULL;
    }
    if (rq->kind == K_PROXY && rq->h->d.audit != NULL && rq->h->d.conf->audit_log_requests && rq->conn != NULL) {
        const sk_conn *c = rq->conn;
        char path[1024];
        /* The forwarded (authorised) path; the query is never logged, and a long
         * path is cut with a visible marker (sk_req_audit_path). */
        sk_req_audit_path(rq->path[0] ? rq->path : rq->raw_uri, path, sizeof path);
        if (sk_audit_request(rq->h->d.audit, c->user, c->tenant, c->peer_str, c->serial, rq->method, path,
                             toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? rq->status : 0, rq->bytes_out,
                             (uint64_t)(http_mono_us() - rq->start_us)) != 0)
            http_audit_failed(rq->h, "a request line");
    }
    if (rq->started)
        http_hist_observe(&rq->h->ctr->lat_request, http_mono_us() - rq->start_us);
    if (rq->off != NULL) {
        /* Only a finished one can be here: a suspended connection is never ended. */
        if (rq->off->done)
            http_off_loop_free(rq->off);
        else
            sk_log(SK_LOG_ERR, "request ended while its handler still runs off the loop");
    }
    if (rq->form_body != NULL) {
        sk_wipe(rq->form_body, FORM_MAX);
        free(rq->form_body);
    }
    if (rq->w != NULL)
        http_up_unwatch(rq);
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


int sk_http_create(const sk_http_deps *deps, sk_http **out)
{
    sk_http *h = calloc(1, sizeof *h);
    const sk_conf *conf = deps->conf;

    if (h == NULL)
        return -1;
    h->d = *deps;
    h->metrics_fd = -1;
    h->ctr = &h->own;
    sk_policy_defaults(&h->pol);
    h->pol.idle_timeout = conf->idle_timeout;
    h->pol.absolute_timeout = conf->absolute_timeout;
    pthread_mutex_init(&h->refusal_lock, NULL);
    if (deps->csrf_key != NULL)
        memcpy(h->csrf_key, deps->csrf_key, sizeof h->csrf_key);
    else if (sk_random(h->csrf_key, sizeof h->csrf_key) != 0)
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

void sk_http_set_auth_pool(sk_http *h, sk_auth_pool *pool)
{
    h->d.auth = pool;
}

void sk_http_set_net(sk_http *h, sk_net *net)
{
    h->d.net = net;
}

/* A census of the store for the gauges: sessions open and accounts locked (by
 * failures, an operator or dormancy). Called by the housekeeping thread, never on a
 * worker: it walks every record. */
void sk_http_census(sk_http *h)
{
    uint8_t none = 0;
    sk_wire_census_rep p;
    if (http_authd(h, SK_WIRE_AUTH_CENSUS, &none, &p) != 0)
        return;
    atomic_store(&h->sessions_open, p.sessions);
    atomic_store(&h->accounts_locked, p.locked);
    atomic_store(&h->census_done, 1);
}

void sk_http_destroy(sk_http *h)
{
    if (h == NULL)
        return;
    sk_http_metrics_stop(h);
    /* Refusals still summed up belong in the journal before the gateway ends. */
    pthread_mutex_lock(&h->refusal_lock);
    refusal_line_locked(h, HTTP_REFUSED_ADDRESS, http_now_s(), 1);
    refusal_line_locked(h, HTTP_REFUSED_ROLE, http_now_s(), 1);
    pthread_mutex_unlock(&h->refusal_lock);
    for (size_t i = 0; i < h->n_routes_t; i++)
        if (h->routes_t[i].t != NULL)
            sk_proxy_destroy(h->routes_t[i].proxy);
    sk_wipe(h->csrf_key, sizeof h->csrf_key);
    free(h);
}
