/*
 * http_int.h — what the parts of the HTTP layer share (not a public API).
 *
 *   http.c         sk_http itself, the router and the request lifecycle, sessions,
 *                  CSRF, health and metrics
 *   http_pages.c   the gateway's own pages: login, logout, password, TOTP, forms
 *   http_proxy.c   the way to the upstream: request head, the non-blocking exchange
 *                  in the worker's loop, response streaming, WebSocket relay
 *   http_engine.c  one libmicrohttpd daemon per network worker, connections, and
 *                  handlers that run off the loop (on the auth pool)
 */
#ifndef SK_HTTP_INT_H
#define SK_HTTP_INT_H

#include "sk_http.h"

#include <pthread.h>
#include <stdatomic.h>

#include <microhttpd.h>

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

enum req_kind { K_NONE, K_PROXY, K_LOGIN_POST, K_LOGOUT_POST, K_PASSWORD_POST, K_TOTP_POST, K_ACTIVATE_POST };

/* Where a request goes: one entry per [tenant.NAME], or one catch-all entry when no
 * tenants are configured (then the certificate's O only scopes users and sessions). */
struct route_tenant {
    const sk_conf_tenant *t;     /* NULL for the catch-all */
    sk_proxy *proxy;
    const char *prefix;
    sk_policy_cidr_list allow;
};

#define HTTP_HIST_BUCKETS SK_HTTP_HIST_BUCKETS

struct sk_http {
    sk_http_deps d;
    struct route_tenant routes_t[SK_CONF_MAX_TENANTS];
    size_t n_routes_t;
    sk_policy_cidr_list global_allow, trusted;
    sk_policy_path_rule path_rules[SK_CONF_MAX_PATH_RULES];
    size_t n_path_rules;
    sk_policy_config pol;
    uint8_t csrf_key[32];
    struct sk_http_counters *ctr; /* &own, or this process's slot (sk_http_set_shared) */
    struct sk_http_counters own;
    sk_http_slot *slots;          /* every network process's, NULL: this one only */
    unsigned n_slots, self;
    uint64_t base_auth_rejected, base_mail_errors; /* the slot's, when this process began */
    /* refusals by the IP allowlist and by role rules: counted, audited in aggregate,
     * and summed into at most one journal line per kind every REFUSAL_LOG_EVERY s */
    pthread_mutex_t refusal_lock;
    struct refusal_log {
        int64_t since;     /* when the last line was written, 0 = none yet */
        uint64_t pending;  /* refusals not yet in a journal line */
        char latest[160];  /* tenant/user from address of the latest */
    } refusal_log[2];
    atomic_int refusals_pending;
    struct MHD_Daemon *metrics_d; /* [metrics] listen: plain /metrics and /health */
    int metrics_fd;               /* bound by sk_http_metrics_bind, -1 otherwise */
    atomic_uint_fast64_t sessions_open, accounts_locked; /* sk_http_census */
    atomic_int census_done;
};

enum http_refusal { HTTP_REFUSED_ADDRESS, HTTP_REFUSED_ROLE };

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
    struct req *cur; /* the request in progress (freed at close if never completed) */
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
    char f_token[64];  /* an activation link's token (base64url) */
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
    int looked_up;     /* http_lookup ran (user and session below are its answer) */
    int have_cookie;   /* exactly one session cookie: sess_hash is its hash */
    int sess_found;    /* authd knows that session: sess holds it */
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


enum sess_result { SESS_NONE, SESS_OK, SESS_IDLE, SESS_EXPIRED };

typedef enum MHD_Result (*route_fn)(struct req *, struct MHD_Connection *, const sk_conn *);

/* A gateway-made answer prepared by a handler running off the loop (on the auth
 * pool, its connection suspended), queued by the worker once it is resumed. */
struct off_loop {
    struct req *rq;
    struct MHD_Connection *mc;
    struct hworker *w;
    route_fn fn;
    struct off_loop *next;  /* the worker's list of finished ones */
    int done, answered;
    int status, close_conn;
    const char *ctype;      /* handlers pass string literals */
    char *body;
    size_t len;
    char *location;
    char cookie[256];
};


extern const char http_cookie_clear[];

/* End a request libmicrohttpd will never report complete (see http_on_uri). */
void http_req_abandon(struct hconn *hc, struct MHD_Connection *mc);

/* http_pages.c */
void http_password_rules(const sk_conf *conf, struct sk_page_password *p);

/* http_activate.c */
enum MHD_Result http_get_activate(struct req *rq, struct MHD_Connection *mc, const sk_conn *c);
enum MHD_Result http_post_activate(struct req *rq, struct MHD_Connection *mc, const sk_conn *c);

/* http_metrics.c */
void http_hist_observe(struct sk_http_hist *hh, int64_t us);
/* An audit entry could not be written: counted and logged; the answer still goes out. */
void http_audit_failed(sk_http *h, const char *what);
enum MHD_Result http_get_metrics(struct req *rq, struct MHD_Connection *mc, const sk_conn *c);

/* Writes the journal lines of refusals whose window has passed (worker loop). */
void http_refusal_tick(sk_http *h);

void http_add_security_headers(struct MHD_Response *r);
void http_audit_event(sk_http *h, const char *ev, const sk_conn *c, const sk_audit_kv *kv, size_t n_kv);
void http_buf_urlencode(sk_buf *b, const char *s);
int http_build_head(struct req *rq, struct MHD_Connection *mc, const sk_conn *c, const char *method,
                      enum sk_proxy_body mode, uint64_t len, size_t *head_len);
int http_csrf_make(const sk_http *h, const char *binding, char *out, size_t cap);
int http_csrf_valid(const sk_http *h, const char *binding, const char *token);
enum MHD_Result http_finish(struct req *rq, struct MHD_Connection *mc, const char *method);
int http_form_begin(struct req *rq, struct MHD_Connection *mc);
void http_form_finish(struct req *rq);
int http_framing_ok(struct MHD_Connection *mc, enum sk_proxy_body *mode, uint64_t *len);
enum MHD_Result http_get_login(struct req *rq, struct MHD_Connection *mc, const sk_conn *c);
enum MHD_Result http_get_logout(struct req *rq, struct MHD_Connection *mc, const sk_conn *c);
enum MHD_Result http_get_password(struct req *rq, struct MHD_Connection *mc, const sk_conn *c);
enum MHD_Result http_get_totp(struct req *rq, struct MHD_Connection *mc, const sk_conn *c);
struct hconn *http_hconn_of(struct MHD_Connection *mc);
const char *http_header(struct MHD_Connection *mc, const char *name);
int http_is_websocket_request(struct MHD_Connection *mc);
int http_join_headers(struct MHD_Connection *mc, const char *name, char *mem, size_t cap, const char **out);
int64_t http_mono_us(void);
int64_t http_now_s(void);
enum MHD_Result http_off_loop(struct req *rq, struct MHD_Connection *mc, route_fn fn);
enum MHD_Result http_off_loop_answer(struct req *rq, struct MHD_Connection *mc);
void http_off_loop_free(struct off_loop *o);
void http_on_completed(void *cls, struct MHD_Connection *mc, void **con_cls, enum MHD_RequestTerminationCode toe);
enum MHD_Result http_on_request(void *cls, struct MHD_Connection *mc, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls);
void *http_on_uri(void *cls, const char *uri, struct MHD_Connection *mc);
enum MHD_Result http_post_login(struct req *rq, struct MHD_Connection *mc, const sk_conn *c);
enum MHD_Result http_post_logout(struct req *rq, struct MHD_Connection *mc, const sk_conn *c);
enum MHD_Result http_post_password(struct req *rq, struct MHD_Connection *mc, const sk_conn *c);
enum MHD_Result http_post_totp(struct req *rq, struct MHD_Connection *mc, const sk_conn *c);
enum MHD_Result http_proxy_respond(struct req *rq, struct MHD_Connection *mc, const char *method);
enum MHD_Result http_respond(struct MHD_Connection *mc, int status, const char *ctype, const char *body,
                               size_t len, const char *location, const char *cookie, int close_conn);
enum MHD_Result http_respond_error(struct req *rq, struct MHD_Connection *mc, int status, int close_conn);
enum MHD_Result http_send_login_page(struct req *rq, struct MHD_Connection *mc, const sk_conn *c, int status,
                                       enum sk_msg msg, const char *ret);
/* The Set-Cookie value for a session token authd minted. */
int http_session_cookie(const uint8_t token[TOKEN_LEN], char cookie[256]) SK_MUST_CHECK;
/* One authd round trip (sk_authd_call) with the gateway's timeout; a failed trip
 * counts as a store error in the metrics. */
#define HTTP_AUTHD_TIMEOUT_MS 30000
int http_authd(sk_http *h, uint16_t type, const void *req, void *rep) SK_MUST_CHECK;
/* Fills rq->user/have_user and rq->sess/sess_found (see http.c). 0 or -1. */
int http_lookup(struct req *rq, struct MHD_Connection *mc, const sk_conn *c) SK_MUST_CHECK;
/* Drop a session this thread just ended from its lookup cache. */
void http_lookup_forget(const uint8_t hash[SK_SESSION_HASH_LEN]);
enum MHD_Result http_find_session_cookie(void *cls, enum MHD_ValueKind kind, const char *key, const char *value);
void http_session_drop(sk_http *h, const uint8_t hash[SK_SESSION_HASH_LEN]);
enum sess_result http_session_find(struct req *rq, struct MHD_Connection *mc, const sk_conn *c);
enum MHD_Result http_unauthenticated(struct req *rq, struct MHD_Connection *mc, const char *method,
                                       enum sess_result why, int has_body);
int64_t http_up_expire(struct hworker *w, int64_t now_ms);
int http_up_progress(struct req *rq);
void http_up_suspend(struct req *rq);
void http_up_unwatch(struct req *rq);
void http_ws_end(struct hconn *hc);
void http_ws_free(struct hconn *hc);
void http_ws_relay_run(struct hconn *hc);

#endif
