/* /.sekisho/metrics: Prometheus text format (version 0.0.4), validated by promtool in
 * the tests. Counters carry labels where an operator needs the why (refusal and
 * failure reasons); latencies are histograms; expiries are gauges in seconds left. */
#include "http_int.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "sk_notify.h"

#define METRICS_MAX 32768

/* Upper bounds of the latency buckets, in microseconds (5 ms .. 30 s). */
static const int64_t hist_le_us[HTTP_HIST_BUCKETS] = {
    5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000, 30000000,
};
static const char *const hist_le_text[HTTP_HIST_BUCKETS] = {
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30",
};

void http_hist_observe(struct sk_http_hist *hh, int64_t us)
{
    if (us < 0)
        us = 0;
    for (size_t i = 0; i < HTTP_HIST_BUCKETS; i++) {
        if (us <= hist_le_us[i]) {
            atomic_fetch_add(&hh->bucket[i], 1);
            break;
        }
    }
    atomic_fetch_add(&hh->count, 1);
    atomic_fetch_add(&hh->sum_us, (uint64_t)us);
}

void http_audit_failed(sk_http *h, const char *what)
{
    atomic_fetch_add(&h->ctr->audit_errors, 1);
    sk_log(SK_LOG_ERR, "AUDIT WRITE FAILED for %s", what);
}

static void head(sk_buf *b, const char *name, const char *type, const char *help)
{
    sk_buf_printf(b, "# HELP sekisho_%s %s\n# TYPE sekisho_%s %s\n", name, help, name, type);
}

static void one(sk_buf *b, const char *name, const char *type, const char *help, uint64_t v)
{
    head(b, name, type, help);
    sk_buf_printf(b, "sekisho_%s %llu\n", name, (unsigned long long)v);
}

/* Seconds from now until t (negative once past); omitted when t is unknown. */
static void until(sk_buf *b, const char *name, const char *help, int64_t t, int64_t now)
{
    if (t == 0)
        return;
    head(b, name, "gauge", help);
    sk_buf_printf(b, "sekisho_%s %lld\n", name, (long long)(t - now));
}

static void hist(sk_buf *b, const char *name, const char *help, const struct sk_http_hist *hh)
{
    uint64_t cum = 0;
    head(b, name, "histogram", help);
    for (size_t i = 0; i < HTTP_HIST_BUCKETS; i++) {
        cum += atomic_load(&hh->bucket[i]);
        sk_buf_printf(b, "sekisho_%s_bucket{le=\"%s\"} %llu\n", name, hist_le_text[i], (unsigned long long)cum);
    }
    sk_buf_printf(b, "sekisho_%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)atomic_load(&hh->count));
    sk_buf_printf(b, "sekisho_%s_sum %.6f\nsekisho_%s_count %llu\n", name, (double)atomic_load(&hh->sum_us) / 1e6,
                  name, (unsigned long long)atomic_load(&hh->count));
}

static void connections(sk_buf *b, const struct sk_net_stats *ns)
{
    one(b, "connections_accepted_total", "counter", "TCP connections accepted.", ns->accepted);
    one(b, "connections_active", "gauge", "Client connections open.", ns->active);
    one(b, "connections_established", "gauge", "Client connections past the TLS handshake.", ns->established);
    one(b, "connections_max", "gauge", "The effective connection limit.", ns->max_connections);
    one(b, "connections_refused_busy_total", "counter", "Connections refused at max_connections.", ns->refused_busy);
    one(b, "preauth_refused_address_total", "counter", "Connections refused over handshakes_per_address.",
        ns->refused_address);
    one(b, "preauth_shed_total", "counter", "Unfinished handshakes closed to make room.", ns->shed);
    one(b, "preauth_timeouts_total", "counter", "Unfinished handshakes closed at handshake_timeout.",
        ns->handshake_timeouts);
    one(b, "preauth_probes_total", "counter", "Connections closed by the client before sending a byte.", ns->probes);
    one(b, "tls_handshakes_total", "counter", "Successful mTLS handshakes.", ns->handshakes_ok);
    one(b, "tls_handshakes_failed_total", "counter", "Refused or failed handshakes.", ns->handshakes_failed);
    one(b, "tls_resumed_total", "counter", "Resumed TLS sessions.", ns->resumed);
}

static void refusals(sk_buf *b, sk_http *h, const struct sk_http_counters *s, const uint64_t *summed)
{
    const char *const *names;
    uint64_t counts[SK_NET_REFUSAL_KINDS];
    size_t n;
    head(b, "tls_refusals_total", "counter", "Connections refused before a signed-in client, by reason.");
    if (h->d.net != NULL) {
        n = sk_net_refusal_stats(h->d.net, &names, counts);
        for (size_t i = 0; i < n; i++)
            sk_buf_printf(b, "sekisho_tls_refusals_total{reason=\"%s\"} %llu\n", names[i],
                          (unsigned long long)(summed != NULL ? summed[i] : counts[i]));
    }
    head(b, "requests_refused_total", "counter", "Requests refused by allowlists and role rules.");
    sk_buf_printf(b, "sekisho_requests_refused_total{by=\"allowlist\"} %llu\n",
                  (unsigned long long)atomic_load(&s->refused_total[HTTP_REFUSED_ADDRESS]));
    sk_buf_printf(b, "sekisho_requests_refused_total{by=\"role\"} %llu\n",
                  (unsigned long long)atomic_load(&s->refused_total[HTTP_REFUSED_ROLE]));
    one(b, "revoked_refused_total", "counter", "Requests refused because the certificate is revoked.",
        atomic_load(&s->revoked_refused));
    one(b, "session_rejected_total", "counter", "Sessions presented with a different certificate.",
        atomic_load(&s->session_rejected));
}

static void logins(sk_buf *b, const struct sk_http_counters *s)
{
    one(b, "logins_total", "counter", "Successful logins.", atomic_load(&s->login_ok));
    head(b, "login_failures_total", "counter", "Failed logins, by reason.");
    for (int r = 1; r < SK_AUTH_R_COUNT_; r++) {
        const char *name = sk_auth_reason_name((sk_auth_reason)r);
        if (name != NULL)
            sk_buf_printf(b, "sekisho_login_failures_total{reason=\"%s\"} %llu\n", name,
                          (unsigned long long)atomic_load(&s->login_fail_reason[r]));
    }
    one(b, "login_busy_total", "counter", "Logins refused with 503 (worker pool full).", atomic_load(&s->login_busy));
    one(b, "login_store_unavailable_total", "counter", "Logins refused with 503 because the store did not answer.",
        atomic_load(&s->login_unavailable));
    one(b, "outage_sessions_served_total", "counter",
        "Requests served from a session checked shortly before the store stopped answering ([store] outage_grace).",
        atomic_load(&s->lookup_outage_served));
    one(b, "auth_queue_waiting", "gauge", "Jobs waiting for an auth pool worker.", atomic_load(&s->auth_waiting));
    one(b, "auth_rejected_busy_total", "counter", "Jobs refused because the auth queue was full.",
        atomic_load(&s->auth_rejected_busy));
    hist(b, "login_duration_seconds", "Time to decide a login (argon2, store commit, audit).", &s->lat_login);
}

/* ---- the sum over the network processes ------------------------------------ */

void sk_http_set_shared(sk_http *h, sk_http_slot *slots, unsigned n, unsigned self)
{
    if (slots == NULL || self >= n)
        return;
    h->slots = slots;
    h->n_slots = n;
    h->self = self;
    h->ctr = &slots[self].http;
    /* What the process before this one in the slot had counted goes on. */
    h->base_auth_rejected = atomic_load(&h->ctr->auth_rejected_busy);
    h->base_mail_errors = atomic_load(&h->ctr->mail_errors);
}

void sk_http_slot_restart(sk_http_slot *s)
{
    sk_net_counters_restart(&s->net);
    atomic_store(&s->http.inflight, 0);
    atomic_store(&s->http.auth_waiting, 0);
    atomic_store(&s->http.audit_queue, 0);
    atomic_store(&s->http.audit_oldest_ms, 0);
}

void sk_http_publish(sk_http *h)
{
    struct sk_http_counters *c = h->ctr;
    sk_auth_pool_stats as;
    uint64_t queued = 0;
    int64_t oldest = 0;
    memset(&as, 0, sizeof as);
    if (h->d.auth != NULL)
        sk_auth_pool_get_stats(h->d.auth, &as);
    if (h->d.audit != NULL)
        sk_audit_lag(h->d.audit, &queued, &oldest);
    atomic_store(&c->auth_waiting, as.waiting);
    atomic_store(&c->auth_rejected_busy, h->base_auth_rejected + as.rejected_busy);
    atomic_store(&c->audit_queue, queued);
    atomic_store(&c->audit_oldest_ms, oldest);
    atomic_store(&c->mail_errors, h->base_mail_errors + sk_notify_failures());
}

#define ADD(f) atomic_fetch_add(&sum->f, atomic_load(&c->f))

static void hist_add(struct sk_http_hist *sum, const struct sk_http_hist *c)
{
    for (size_t i = 0; i < HTTP_HIST_BUCKETS; i++)
        ADD(bucket[i]);
    ADD(count);
    ADD(sum_us);
}

static void counters_add(struct sk_http_counters *sum, const struct sk_http_counters *c)
{
    int inflight = atomic_load(&c->inflight);
    int64_t oldest = atomic_load(&c->audit_oldest_ms);
    ADD(requests);
    ADD(proxied);
    ADD(upstream_errors);
    ADD(login_ok);
    ADD(login_fail);
    ADD(login_busy);
    ADD(session_rejected);
    ADD(revoked_refused);
    ADD(lookup_hits);
    ADD(audit_errors);
    ADD(store_errors);
    ADD(login_unavailable);
    ADD(lookup_outage_served);
    atomic_fetch_add(&sum->inflight, inflight > 0 ? inflight : 0);
    for (size_t i = 0; i < SK_ARRAY_LEN(c->refused_total); i++)
        ADD(refused_total[i]);
    for (size_t i = 0; i < SK_ARRAY_LEN(c->login_fail_reason); i++)
        ADD(login_fail_reason[i]);
    hist_add(&sum->lat_request, &c->lat_request);
    hist_add(&sum->lat_upstream, &c->lat_upstream);
    hist_add(&sum->lat_login, &c->lat_login);
    ADD(auth_waiting);
    ADD(auth_rejected_busy);
    ADD(audit_queue);
    ADD(mail_errors);
    if (oldest > atomic_load(&sum->audit_oldest_ms))
        atomic_store(&sum->audit_oldest_ms, oldest); /* the lag is the oldest line's */
}

#undef ADD

/* What the text reports: this process's numbers, or with several processes the sum
 * of every slot (the other processes' published numbers at most a second old). */
struct totals {
    struct sk_net_stats ns;
    uint64_t refusals[SK_NET_REFUSAL_KINDS];
    int summed;
    struct sk_http_counters c;
};

static void totals(sk_http *h, struct totals *t)
{
    memset(t, 0, sizeof *t);
    sk_http_publish(h);
    if (h->d.net != NULL)
        sk_net_get_stats(h->d.net, &t->ns);
    if (h->slots == NULL) {
        counters_add(&t->c, h->ctr);
        return;
    }
    /* The certificate and CRL dates stay this process's; counters and gauges are summed. */
    {
        struct sk_net_stats own = t->ns;
        memset(&t->ns, 0, sizeof t->ns);
        t->ns.crl_next_update = own.crl_next_update;
        t->ns.server_not_after = own.server_not_after;
        t->ns.ca_not_after = own.ca_not_after;
    }
    for (unsigned i = 0; i < h->n_slots; i++) {
        sk_net_counters_add(&h->slots[i].net, &t->ns, t->refusals);
        counters_add(&t->c, &h->slots[i].http);
    }
    t->summed = 1;
}

static void tail(sk_buf *b, sk_http *h, const struct sk_http_counters *s)
{
    int64_t oldest = atomic_load(&s->audit_oldest_ms);
    if (atomic_load(&h->census_done)) {
        one(b, "sessions", "gauge", "Sessions open (counted about once a minute).", atomic_load(&h->sessions_open));
        one(b, "accounts_locked", "gauge", "Accounts locked by failures, an operator or dormancy.",
            atomic_load(&h->accounts_locked));
    }
    one(b, "store_errors_total", "counter", "Store reads for the census that failed.", atomic_load(&s->store_errors));
    one(b, "audit_queue_lines", "gauge", "Request lines queued for the audit log, not yet written.",
        atomic_load(&s->audit_queue));
    head(b, "audit_lag_seconds", "gauge", "Age of the oldest request line not yet in the audit log.");
    sk_buf_printf(b, "sekisho_audit_lag_seconds %.3f\n", oldest > 0 ? (double)oldest / 1000.0 : 0.0);
    one(b, "audit_write_errors_total", "counter", "Audit entries that could not be written.",
        atomic_load(&s->audit_errors));
    one(b, "authd_lookup_cache_hits_total", "counter",
        "Requests whose account and session came from the worker's cache, not an authd round trip.",
        atomic_load(&s->lookup_hits));
    one(b, "mail_errors_total", "counter", "Mails the mail command did not accept.", atomic_load(&s->mail_errors));
    one(b, "clock_synchronized", "gauge", "1 when the kernel reports the clock synchronised (adjtimex).",
        sk_clock_synced() == 1);
}

/* The whole text into a malloc'd buffer (the caller frees it). -1 when it does not fit. */
static int render(sk_http *h, char **out, size_t *out_len)
{
    struct totals t;
    const struct sk_http_counters *s = &t.c;
    int64_t now = (int64_t)time(NULL);
    char *text = malloc(METRICS_MAX);
    sk_buf b;

    if (text == NULL)
        return -1;
    totals(h, &t);
    sk_buf_init(&b, text, METRICS_MAX);
    head(&b, "build_info", "gauge", "Always 1; the version is a label.");
    sk_buf_printf(&b, "sekisho_build_info{version=\"%s\"} 1\n", SEKISHO_VERSION);
    connections(&b, &t.ns);
    refusals(&b, h, s, t.summed ? t.refusals : NULL);
    logins(&b, s);
    one(&b, "http_requests_total", "counter", "HTTP requests received.", atomic_load(&s->requests));
    one(&b, "http_requests_in_flight", "gauge", "Requests being served now.", (uint64_t)atomic_load(&s->inflight));
    hist(&b, "request_duration_seconds", "Time from a request's head to its end.", &s->lat_request);
    one(&b, "proxied_requests_total", "counter", "Requests sent to the upstream.", atomic_load(&s->proxied));
    one(&b, "upstream_errors_total", "counter", "Upstream connection or protocol errors.",
        atomic_load(&s->upstream_errors));
    hist(&b, "upstream_response_seconds", "Time until the upstream's response head.", &s->lat_upstream);
    until(&b, "crl_next_update_seconds", "Seconds until the CRL's nextUpdate (negative: stale, access refused).",
          t.ns.crl_next_update, now);
    until(&b, "server_certificate_expiry_seconds", "Seconds until the server certificate expires.",
          t.ns.server_not_after, now);
    until(&b, "client_ca_expiry_seconds", "Seconds until the client CA certificate expires.", t.ns.ca_not_after, now);
    tail(&b, h, s);
    if (sk_buf_finish(&b) != 0) {
        free(text);
        return -1;
    }
    *out = text;
    *out_len = b.len;
    return 0;
}

enum MHD_Result http_get_metrics(struct req *rq, struct MHD_Connection *mc, const sk_conn *c)
{
    char *text;
    size_t len;
    enum MHD_Result res;
    (void)c;
    if (render(rq->h, &text, &len) != 0)
        return MHD_NO;
    res = http_respond(mc, MHD_HTTP_OK, "text/plain; version=0.0.4", text, len, NULL, NULL, 0);
    free(text);
    return res;
}

/* ---- the plain listener ([metrics] listen) --------------------------------- */

/* Prometheus scrapers and load-balancer probes rarely hold a client certificate:
 * /metrics and /health only, plain HTTP, on an address the operator chose
 * (loopback or a management network). Nothing else is served there. */
static enum MHD_Result plain_request(void *cls, struct MHD_Connection *mc, const char *url, const char *method,
                                     const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    sk_http *h = cls;
    struct MHD_Response *r;
    enum MHD_Result res;
    char *text = NULL, health[64];
    size_t len = 0;
    unsigned status = MHD_HTTP_OK;
    const char *ctype = "text/plain; version=0.0.4";

    (void)version;
    (void)upload;
    (void)con_cls;
    if (*upload_size != 0)
        return MHD_NO; /* no bodies here */
    if (strcmp(method, "GET") != 0) {
        status = MHD_HTTP_METHOD_NOT_ALLOWED;
    } else if (strcmp(url, "/metrics") == 0) {
        if (render(h, &text, &len) != 0)
            return MHD_NO;
    } else if (strcmp(url, "/health") == 0) {
        int cl = sk_clock_synced();
        ctype = "text/plain";
        if (sk_snprintf(health, sizeof health, "ok\nclock: %s\n",
                        cl < 0 ? "unknown" : cl ? "synchronised" : "not synchronised") != 0)
            return MHD_NO;
        if (h->d.net != NULL && !sk_net_crl_usable(h->d.net))
            status = MHD_HTTP_SERVICE_UNAVAILABLE;
    } else {
        status = MHD_HTTP_NOT_FOUND;
    }
    if (text == NULL && status == MHD_HTTP_OK)
        r = MHD_create_response_from_buffer(strlen(health), health, MHD_RESPMEM_MUST_COPY);
    else if (text != NULL)
        r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    else
        r = MHD_create_response_from_buffer(0, (void *)(uintptr_t) "", MHD_RESPMEM_PERSISTENT);
    if (r == NULL) {
        free(text);
        return MHD_NO;
    }
    (void)MHD_add_response_header(r, "Content-Type", ctype);
    (void)MHD_add_response_header(r, "Cache-Control", "no-store");
    res = MHD_queue_response(mc, status, r);
    MHD_destroy_response(r);
    return res;
}

void sk_http_metrics_use_listener(sk_http *h, int fd)
{
    if (h->metrics_fd >= 0)
        close(h->metrics_fd);
    h->metrics_fd = fd;
}

int sk_http_metrics_bind(sk_http *h)
{
    if (h->d.conf->metrics_listen[0] == '\0' || h->metrics_fd >= 0)
        return 0;
    if (sk_tcp_listen(h->d.conf->metrics_listen, 64, &h->metrics_fd) != 0) {
        sk_log(SK_LOG_ERR, "[metrics] listen = %s: cannot listen there: %s", h->d.conf->metrics_listen,
               strerror(errno));
        h->metrics_fd = -1;
        return -1;
    }
    return 0;
}

int sk_http_metrics_start(sk_http *h)
{
    int fd;
    if (h->d.conf->metrics_listen[0] == '\0')
        return 0;
    if (sk_http_metrics_bind(h) != 0)
        return -1;
    fd = h->metrics_fd;
    h->metrics_fd = -1; /* the daemon owns it from here */
    /* One small thread of its own: a scrape must work even when every worker is busy. */
    h->metrics_d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG, 0, NULL,
                                    NULL, plain_request, h, MHD_OPTION_LISTEN_SOCKET, fd,
                                    MHD_OPTION_CONNECTION_LIMIT, (unsigned int)16, MHD_OPTION_CONNECTION_TIMEOUT,
                                    (unsigned int)10, MHD_OPTION_STRICT_FOR_CLIENT, (int)1, MHD_OPTION_END);
    if (h->metrics_d == NULL) {
        close(fd);
        sk_log(SK_LOG_ERR, "[metrics] listen = %s: cannot start the listener", h->d.conf->metrics_listen);
        return -1;
    }
    sk_log(SK_LOG_INFO, "metrics and health on http://%s/metrics (no client certificate there)",
           h->d.conf->metrics_listen);
    return 0;
}

void sk_http_metrics_stop(sk_http *h)
{
    if (h->metrics_fd >= 0)
        close(h->metrics_fd);
    h->metrics_fd = -1;
    if (h->metrics_d != NULL)
        MHD_stop_daemon(h->metrics_d);
    h->metrics_d = NULL;
}
