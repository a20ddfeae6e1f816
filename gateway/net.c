/* sk_net: OpenSSL TLS front. See sk_net.h for the contracts. */
#define _GNU_SOURCE
#include "sk_net.h"
#include "sk_notify.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define PUMP_BUF 16384
#define PUMP_STACK (512 * 1024) /* the HTTP handlers run on this thread too */

/* The revocation set: serials of the current CRL, sorted for bsearch. Immutable once
 * built; swapped as a whole under the lock and freed by its last user. */
typedef struct sk_revset {
    atomic_int refs;
    int64_t next_update;        /* 0 = no CRL configured */
    size_t count;
    char (*serials)[67];
} sk_revset;

/* A TLS context generation. Connections keep the generation they were accepted on. */
typedef struct sk_tlsgen {
    atomic_int refs;
    SSL_CTX *ctx;
} sk_tlsgen;

struct sk_net {
    const sk_conf *conf;
    sk_net_app app;
    int listen_fd;
    pthread_t accept_thread;
    int accept_started;
    atomic_int stopping;
    pthread_rwlock_t lock;         /* guards gen and revset pointers */
    sk_tlsgen *gen;
    sk_revset *revset;
    atomic_uint_fast64_t accepted, hs_ok, hs_failed, resumed, refused_busy;
    atomic_int active;
    atomic_uint_fast64_t log_window, log_count;
    /* CRL freshness, maintained by the watcher thread */
    pthread_t watch_thread;
    int watch_started;
    pthread_mutex_t watch_lock;
    pthread_cond_t watch_cond;
    struct stat crl_stat;
    atomic_int crl_stale;
    int64_t warned_for, alarmed_for; /* nextUpdate values already mailed about */
    sk_net_hooks hooks;
    unsigned char ticket_keys[80];   /* process-wide: tickets survive CRL reloads */
};

struct pump {
    sk_net *net;
    int fd;
    sk_conn *conn;
    sk_tlsgen *gen;
};

/* ---- small helpers ---------------------------------------------------- */

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -1;
    return 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void ssl_err_string(char *out, size_t cap)
{
    unsigned long e = ERR_get_error();
    if (e == 0) {
        (void)snprintf(out, cap, "no OpenSSL error");
        return;
    }
    ERR_error_string_n(e, out, cap);
    ERR_clear_error();
}

static void tlsgen_unref(sk_tlsgen *g)
{
    if (g != NULL && atomic_fetch_sub(&g->refs, 1) == 1) {
        SSL_CTX_free(g->ctx);
        free(g);
    }
}

static void revset_unref(sk_revset *r)
{
    if (r != NULL && atomic_fetch_sub(&r->refs, 1) == 1) {
        free(r->serials);
        free(r);
    }
}

static int serial_to_hex(const ASN1_INTEGER *ai, char *out, size_t cap)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(ai, NULL);
    char *hex = NULL;
    int rc = -1;
    if (bn == NULL)
        goto out;
    hex = BN_bn2hex(bn);
    /* Uppercase, as `openssl x509 -serial` and sekisho-ca print it. */
    if (hex == NULL || sk_strlcpy(out, cap, hex) != 0)
        goto out;
    rc = 0;
out:
    OPENSSL_free(hex);
    BN_free(bn);
    return rc;
}

static int cmp_serial(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* ---- TLS context ------------------------------------------------------- */

/* Mozilla "intermediate": TLS 1.2 AEAD suites with forward secrecy, TLS 1.3 defaults.
 * The DHE suites are left out: without a configured dhparam they would only add
 * weak-group risk for clients that all speak ECDHE anyway. */
static const char tls12_ciphers[] =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

static int load_crl(const sk_conf *conf, X509_STORE *store, sk_revset **out, char *err, size_t errlen)
{
    BIO *bio = NULL;
    X509_CRL *crl = NULL;
    sk_revset *rs = NULL;
    STACK_OF(X509_REVOKED) *revoked;
    int rc = -1, n;

    rs = calloc(1, sizeof *rs);
    if (rs == NULL)
        goto out;
    atomic_init(&rs->refs, 1);
    if (conf->tls_crl[0] == '\0') {
        rc = 0;
        goto out;
    }
    bio = BIO_new_file(conf->tls_crl, "r");
    if (bio == NULL || (crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL)) == NULL) {
        (void)snprintf(err, errlen, "%s: cannot read CRL", conf->tls_crl);
        goto out;
    }
    if (X509_STORE_add_crl(store, crl) != 1) {
        (void)snprintf(err, errlen, "%s: cannot use CRL", conf->tls_crl);
        goto out;
    }
    {
        const ASN1_TIME *nu = X509_CRL_get0_nextUpdate(crl);
        struct tm tm;
        if (nu == NULL || ASN1_TIME_to_tm(nu, &tm) != 1) {
            /* Without nextUpdate nobody can tell a stale list from a fresh one. */
            (void)snprintf(err, errlen, "%s: CRL has no usable nextUpdate", conf->tls_crl);
            goto out;
        }
        rs->next_update = (int64_t)timegm(&tm);
    }
    revoked = X509_CRL_get_REVOKED(crl);
    n = revoked ? sk_X509_REVOKED_num(revoked) : 0;
    if (n > 0) {
        rs->serials = calloc((size_t)n, sizeof *rs->serials);
        if (rs->serials == NULL)
            goto out;
    }
    for (int i = 0; i < n; i++) {
        const X509_REVOKED *r = sk_X509_REVOKED_value(revoked, i);
        if (serial_to_hex(X509_REVOKED_get0_serialNumber(r), rs->serials[i], sizeof rs->serials[i]) != 0) {
            (void)snprintf(err, errlen, "%s: bad serial in CRL", conf->tls_crl);
            goto out;
        }
    }
    rs->count = (size_t)n;
    if (rs->count > 0)
        qsort(rs->serials, rs->count, sizeof *rs->serials, cmp_serial);
    X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
    rc = 0;
out:
    X509_CRL_free(crl);
    BIO_free(bio);
    if (rc == 0)
        *out = rs;
    else
        revset_unref(rs);
    return rc;
}

/* Remembers the leaf's serial while OpenSSL verifies it, so that a refused
 * certificate (revoked, expired, ...) can still be named in the audit log: after a
 * failed verification the server no longer holds the peer certificate. */
static int verify_cb(int ok, X509_STORE_CTX *xs)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
    sk_conn *c = ssl ? SSL_get_app_data(ssl) : NULL;
    X509 *cert = X509_STORE_CTX_get_current_cert(xs);
    if (c != NULL && cert != NULL && X509_STORE_CTX_get_error_depth(xs) == 0 &&
        serial_to_hex(X509_get0_serialNumber(cert), c->serial, sizeof c->serial) != 0)
        c->serial[0] = '\0';
    return ok;
}

static int tls_build(const sk_conf *conf, const unsigned char ticket_keys[80], SSL_CTX **ctx_out,
                     sk_revset **rs_out, char *err, size_t errlen)
{
    SSL_CTX *ctx = NULL;
    STACK_OF(X509_NAME) *ca_names = NULL;
    unsigned char sid_ctx[SHA256_DIGEST_LENGTH];
    char ebuf[256];
    int rc = -1;

    ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL)
        goto ssl_fail;
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_cipher_list(ctx, tls12_ciphers) != 1 ||
        SSL_CTX_set1_groups_list(ctx, "X25519:P-256:P-384") != 1)
        goto ssl_fail;
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                          SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_use_certificate_chain_file(ctx, conf->listen_cert) != 1) {
        ssl_err_string(ebuf, sizeof ebuf);
        (void)snprintf(err, errlen, "%s: cannot load server certificate: %s", conf->listen_cert, ebuf);
        goto out;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, conf->listen_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        ssl_err_string(ebuf, sizeof ebuf);
        (void)snprintf(err, errlen, "%s: cannot load server key: %s", conf->listen_key, ebuf);
        goto out;
    }
    if (SSL_CTX_load_verify_locations(ctx, conf->tls_client_ca, NULL) != 1 ||
        (ca_names = SSL_load_client_CA_file(conf->tls_client_ca)) == NULL) {
        ssl_err_string(ebuf, sizeof ebuf);
        (void)snprintf(err, errlen, "%s: cannot load client CA: %s", conf->tls_client_ca, ebuf);
        goto out;
    }
    /* Browsers offer only certificates from the CAs we name here. */
    SSL_CTX_set_client_CA_list(ctx, ca_names);
    ca_names = NULL;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_cb);
    SSL_CTX_set_verify_depth(ctx, 3);
    if (SSL_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT) != 1)
        goto ssl_fail;
    if (load_crl(conf, SSL_CTX_get_cert_store(ctx), rs_out, err, errlen) != 0)
        goto out;
    /* Resumption is scoped to this listener and CA: a session (ID or ticket) made
     * under another configuration does not resume here. */
    {
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        unsigned int len = 0;
        int ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
                 EVP_DigestUpdate(md, conf->listen_address, strlen(conf->listen_address)) == 1 &&
                 EVP_DigestUpdate(md, conf->tls_client_ca, strlen(conf->tls_client_ca)) == 1 &&
                 EVP_DigestFinal_ex(md, sid_ctx, &len) == 1;
        EVP_MD_CTX_free(md);
        if (!ok || SSL_CTX_set_session_id_context(ctx, sid_ctx, 32) != 1) {
            revset_unref(*rs_out);
            goto ssl_fail;
        }
    }
    if (conf->tls_session_lifetime > 0) {
        /* The same ticket keys in every context generation: a CRL reload must not
         * force every client into a full handshake. Revocation still applies to
         * resumed sessions (checked after the handshake and on every request). */
        if (ticket_keys != NULL && SSL_CTX_set_tlsext_ticket_keys(ctx, (void *)(uintptr_t)ticket_keys, 80) != 1) {
            revset_unref(*rs_out);
            goto ssl_fail;
        }
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER);
        SSL_CTX_set_timeout(ctx, (long)conf->tls_session_lifetime);
        SSL_CTX_sess_set_cache_size(ctx, 20000);
    } else {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        (void)SSL_CTX_set_num_tickets(ctx, 0);
    }
    *ctx_out = ctx;
    ctx = NULL;
    rc = 0;
    goto out;
ssl_fail:
    ssl_err_string(ebuf, sizeof ebuf);
    (void)snprintf(err, errlen, "TLS setup failed: %s", ebuf);
out:
    sk_X509_NAME_pop_free(ca_names, X509_NAME_free);
    SSL_CTX_free(ctx);
    return rc;
}

int sk_net_check_conf(const sk_conf *conf, char *err, size_t errlen)
{
    SSL_CTX *ctx = NULL;
    sk_revset *rs = NULL;
    if (tls_build(conf, NULL, &ctx, &rs, err, errlen) != 0)
        return -1;
    SSL_CTX_free(ctx);
    revset_unref(rs);
    return 0;
}

void sk_net_set_hooks(sk_net *n, const sk_net_hooks *hooks)
{
    n->hooks = *hooks;
}

static int net_reload(sk_net *n, const char *why);

int sk_net_reload(sk_net *n)
{
    return net_reload(n, "signal");
}

static int net_reload(sk_net *n, const char *why)
{
    SSL_CTX *ctx = NULL;
    sk_revset *rs = NULL, *old_rs;
    sk_tlsgen *gen, *old_gen;
    char err[512];

    if (tls_build(n->conf, n->ticket_keys, &ctx, &rs, err, sizeof err) != 0) {
        sk_log(SK_LOG_ERR, "TLS reload failed, keeping the running configuration: %s", err);
        if (n->hooks.reloaded)
            n->hooks.reloaded(n->hooks.arg, 0, 0, why);
        return -1;
    }
    gen = calloc(1, sizeof *gen);
    if (gen == NULL) {
        SSL_CTX_free(ctx);
        revset_unref(rs);
        return -1;
    }
    atomic_init(&gen->refs, 1);
    gen->ctx = ctx;
    pthread_rwlock_wrlock(&n->lock);
    old_gen = n->gen;
    old_rs = n->revset;
    n->gen = gen;
    n->revset = rs;
    pthread_rwlock_unlock(&n->lock);
    tlsgen_unref(old_gen);
    revset_unref(old_rs);
    sk_log(SK_LOG_INFO, "TLS context loaded (%zu revoked serials)", rs->count);
    if (n->hooks.reloaded)
        n->hooks.reloaded(n->hooks.arg, 1, rs->count, why);
    return 0;
}

int sk_net_serial_revoked(sk_net *n, const char *serial_hex)
{
    int found;
    pthread_rwlock_rdlock(&n->lock);
    found = n->revset->count > 0 &&
            bsearch(serial_hex, n->revset->serials, n->revset->count, sizeof *n->revset->serials,
                    cmp_serial) != NULL;
    pthread_rwlock_unlock(&n->lock);
    return found;
}

/* ---- CRL freshness ---------------------------------------------------- */

static int64_t current_next_update(sk_net *n)
{
    int64_t nu;
    pthread_rwlock_rdlock(&n->lock);
    nu = n->revset->next_update;
    pthread_rwlock_unlock(&n->lock);
    return nu;
}

int sk_net_crl_usable(sk_net *n)
{
    return !atomic_load(&n->crl_stale);
}

static void mail_operators(const sk_conf *conf, const char *subject, const char *body)
{
    struct sk_notify_msg m = { conf->notify_from[0] ? conf->notify_from : NULL, conf->notify_operators, subject, body };
    if (conf->notify_operators[0] == '\0')
        return;
    if (sk_notify_send(conf->notify_command, &m) != 0)
        sk_log(SK_LOG_ERR, "could not mail the operators: %s", subject);
}

/* A stale CRL fails closed: OpenSSL already refuses new handshakes ("CRL has
 * expired"), and sk_net_crl_usable() makes the HTTP layer refuse requests on
 * connections and resumed sessions that were established before. */
static void check_crl_freshness(sk_net *n, int64_t now)
{
    const sk_conf *conf = n->conf;
    int64_t nu = current_next_update(n);
    char body[SK_CONF_PATH_MAX + 512];

    if (nu == 0) {
        atomic_store(&n->crl_stale, 0);
        return;
    }
    if (now >= nu) {
        if (!atomic_exchange(&n->crl_stale, 1))
            sk_log(SK_LOG_ERR, "CRL %s is past its nextUpdate: refusing every login and request until a "
                               "fresh CRL is installed (sekisho-ca crl, then SIGHUP)", conf->tls_crl);
        if (n->alarmed_for != nu) {
            n->alarmed_for = nu;
            (void)snprintf(body, sizeof body,
                           "The CRL %s expired (nextUpdate passed). Sekisho refuses all access until a fresh\n"
                           "CRL is installed: run `sekisho-ca crl --dir <ca dir>` and reload the gateway.\n",
                           conf->tls_crl);
            mail_operators(conf, "Sekisho ALARM: CRL expired, access refused", body);
        }
        return;
    }
    if (atomic_exchange(&n->crl_stale, 0))
        sk_log(SK_LOG_INFO, "CRL is fresh again; access restored");
    if (nu - now <= conf->tls_crl_warn_before && n->warned_for != nu) {
        n->warned_for = nu;
        sk_log(SK_LOG_WARN, "CRL %s expires in %lld s (nextUpdate); refresh it with sekisho-ca crl", conf->tls_crl,
               (long long)(nu - now));
        (void)snprintf(body, sizeof body,
                       "The CRL %s reaches its nextUpdate in %lld hours. When it passes, Sekisho refuses all\n"
                       "access. Refresh it now: `sekisho-ca crl --dir <ca dir>` (the sekisho-crl.timer unit\n"
                       "does this daily).\n",
                       conf->tls_crl, (long long)((nu - now) / 3600));
        mail_operators(conf, "Sekisho warning: CRL expires soon", body);
    }
}

static int crl_file_changed(sk_net *n)
{
    struct stat st;
    if (n->conf->tls_crl[0] == '\0' || stat(n->conf->tls_crl, &st) != 0)
        return 0;
    if (st.st_ino == n->crl_stat.st_ino && st.st_size == n->crl_stat.st_size &&
        st.st_mtim.tv_sec == n->crl_stat.st_mtim.tv_sec && st.st_mtim.tv_nsec == n->crl_stat.st_mtim.tv_nsec)
        return 0;
    n->crl_stat = st;
    return 1;
}

/* Watches the CRL file (sekisho-ca writes it by atomic rename, so a change of inode,
 * size or mtime means a complete new file) and the CRL's nextUpdate. */
static void *watch_main(void *arg)
{
    sk_net *n = arg;
    pthread_mutex_lock(&n->watch_lock);
    while (!atomic_load(&n->stopping)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += n->conf->tls_crl_check_interval;
        (void)pthread_cond_timedwait(&n->watch_cond, &n->watch_lock, &ts);
        if (atomic_load(&n->stopping))
            break;
        if (crl_file_changed(n)) {
            sk_log(SK_LOG_INFO, "CRL file %s changed: reloading", n->conf->tls_crl);
            if (net_reload(n, "crl file changed") != 0)
                sk_log(SK_LOG_ERR, "CRL reload failed; the previous CRL stays in force");
        }
        check_crl_freshness(n, (int64_t)time(NULL));
    }
    pthread_mutex_unlock(&n->watch_lock);
    return NULL;
}

/* ---- identity ---------------------------------------------------------- */

static int name_entry_utf8(X509_NAME *name, int nid, char *out, size_t cap)
{
    int idx = X509_NAME_get_index_by_NID(name, nid, -1);
    unsigned char *utf8 = NULL;
    int len, rc = -1;
    if (idx < 0)
        return 1; /* absent */
    /* A second entry of the same kind makes the identity ambiguous. */
    if (X509_NAME_get_index_by_NID(name, nid, idx) >= 0)
        return -1;
    len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx)));
    if (len <= 0 || (size_t)len >= cap || memchr(utf8, '\0', (size_t)len) != NULL)
        goto out;
    memcpy(out, utf8, (size_t)len);
    out[len] = '\0';
    rc = 0;
out:
    OPENSSL_free(utf8);
    return rc;
}

static int valid_chars(const char *s, const char *extra, int upper_ok)
{
    if (*s == '\0' || *s == '.' || *s == '-')
        return 0;
    for (; *s; s++) {
        int ok = (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
                 (upper_ok && *s >= 'A' && *s <= 'Z') || strchr(extra, *s) != NULL;
        if (!ok)
            return 0;
    }
    return 1;
}

static int extract_identity(SSL *ssl, sk_conn *c)
{
    X509 *cert = SSL_get0_peer_certificate(ssl);
    X509_NAME *subj;
    int r;
    if (cert == NULL || (subj = X509_get_subject_name(cert)) == NULL)
        return -1;
    if (name_entry_utf8(subj, NID_commonName, c->user, sizeof c->user) != 0 ||
        !valid_chars(c->user, "._@-", 1))
        return -1;
    r = name_entry_utf8(subj, NID_organizationName, c->tenant, sizeof c->tenant);
    if (r < 0)
        return -1;
    if (r > 0)
        memcpy(c->tenant, "default", sizeof "default");
    if (!valid_chars(c->tenant, "-", 0))
        return -1;
    if (serial_to_hex(X509_get0_serialNumber(cert), c->serial, sizeof c->serial) != 0)
        return -1;
    {
        const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
        if (sni != NULL && sk_strlcpy(c->sni, sizeof c->sni, sni) != 0)
            return -1;
    }
    c->resumed = SSL_session_reused(ssl);
    return 0;
}

/* ---- the pump: one thread per client connection ------------------------- */

static const char *refusal_reason(long vr)
{
    static const struct { long code; const char *word; } map[] = {
        { X509_V_ERR_CERT_REVOKED, "revoked" },
        { X509_V_ERR_CERT_HAS_EXPIRED, "expired" },
        { X509_V_ERR_CERT_NOT_YET_VALID, "not_yet_valid" },
        { X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, "unknown_ca" },
        { X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT, "unknown_ca" },
        { X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT, "unknown_ca" },
        { X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN, "unknown_ca" },
        { X509_V_ERR_CERT_SIGNATURE_FAILURE, "bad_signature" },
        { X509_V_ERR_INVALID_PURPOSE, "wrong_purpose" },
        { X509_V_ERR_CRL_HAS_EXPIRED, "crl_expired" },
    };
    for (size_t i = 0; i < SK_ARRAY_LEN(map); i++)
        if (map[i].code == vr)
            return map[i].word;
    return NULL;
}

static void report_refusal(sk_net *n, const sk_conn *c, SSL *ssl, const char *fallback)
{
    X509 *peer = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
    const char *reason = ssl ? refusal_reason(SSL_get_verify_result(ssl)) : NULL;
    char serial[67] = "";
    if (n->hooks.refused == NULL)
        return;
    if (peer != NULL && serial_to_hex(X509_get0_serialNumber(peer), serial, sizeof serial) != 0)
        serial[0] = '\0';
    if (serial[0] == '\0' && c->serial[0] != '\0' && sk_strlcpy(serial, sizeof serial, c->serial) != 0)
        serial[0] = '\0';
    if (reason == NULL && fallback == NULL)
        reason = ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE ? "no_cert"
                                                                                                 : "handshake_failed";
    else if (reason == NULL)
        reason = fallback;
    n->hooks.refused(n->hooks.arg, c->peer_str, reason, serial[0] ? serial : NULL);
}

static void log_handshake_failure(sk_net *n, const sk_conn *c, SSL *ssl, const char *what)
{
    /* At most 10 lines a second: a handshake flood must not flood the log. */
    uint64_t sec = (uint64_t)(now_ms() / 1000);
    uint64_t win = atomic_load(&n->log_window);
    char ebuf[256];
    long vr = SSL_get_verify_result(ssl);

    if (win != sec && atomic_compare_exchange_strong(&n->log_window, &win, sec))
        atomic_store(&n->log_count, 0);
    if (atomic_fetch_add(&n->log_count, 1) >= 10) {
        ERR_clear_error();
        return;
    }
    ssl_err_string(ebuf, sizeof ebuf);
    sk_log(SK_LOG_INFO, "handshake refused from %s: %s (%s; verify: %s)", c->peer_str, what, ebuf,
           X509_verify_cert_error_string(vr));
}

static int handshake(struct pump *p, SSL *ssl)
{
    int64_t deadline = now_ms() + p->net->conf->handshake_timeout * 1000;
    for (;;) {
        int r = SSL_accept(ssl), e, wait;
        struct pollfd pfd = { .fd = p->fd };
        if (r == 1)
            return 0;
        e = SSL_get_error(ssl, r);
        if (e == SSL_ERROR_WANT_READ)
            pfd.events = POLLIN;
        else if (e == SSL_ERROR_WANT_WRITE)
            pfd.events = POLLOUT;
        else
            return -1;
        wait = (int)(deadline - now_ms());
        if (wait <= 0 || atomic_load(&p->net->stopping))
            return -1;
        if (poll(&pfd, 1, wait) <= 0)
            return -1;
    }
}

struct relay_dir {
    char buf[PUMP_BUF];
    size_t off, len;
};

/* Moves bytes between the TLS socket and the plaintext socketpair and runs the
 * application on the other end, all in this thread, until either side ends, the
 * connection sits idle past request_timeout, or the gateway stops (after the request
 * in flight). Non-blocking both ways, so a slow reader on one side never stalls the
 * other direction. */
static void relay(struct pump *p, SSL *ssl, int plain, void *app)
{
    struct relay_dir *up = malloc(sizeof *up), *down = malloc(sizeof *down);
    int tls_eof = 0, plain_eof = 0, busy = 0;
    int idle_ms = (int)(p->net->conf->request_timeout * 1000);
    int64_t idle_since = now_ms();

    if (up == NULL || down == NULL)
        goto out;
    up->off = up->len = down->off = down->len = 0;
    while (!(plain_eof && down->len == 0) && !tls_eof) {
        short tls_ev = 0, plain_ev = 0;
        int progress = 0, app_fd = -1, app_ms = -1, wait;

        if (up->len == 0) {
            int r = SSL_read(ssl, up->buf, sizeof up->buf);
            if (r > 0) {
                up->off = 0;
                up->len = (size_t)r;
                progress = 1;
            } else {
                int e = SSL_get_error(ssl, r);
                if (e == SSL_ERROR_WANT_READ)
                    tls_ev |= POLLIN;
                else if (e == SSL_ERROR_WANT_WRITE)
                    tls_ev |= POLLOUT;
                else
                    tls_eof = 1;
            }
        }
        if (up->len > 0) {
            ssize_t w = send(plain, up->buf + up->off, up->len, MSG_NOSIGNAL);
            if (w > 0) {
                up->off += (size_t)w;
                up->len -= (size_t)w;
                progress = 1;
            } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
                plain_ev |= POLLOUT;
            } else {
                break;
            }
        }
        /* The application consumes what was just passed on and produces its answer
         * into the socketpair, which the next step moves out. */
        busy = p->net->app.run(app, &app_fd, &app_ms);
        if (busy < 0)
            plain_eof = 1; /* finished: flush what it wrote, then end */
        if (down->len == 0) {
            ssize_t r = recv(plain, down->buf, sizeof down->buf, 0);
            if (r > 0) {
                down->off = 0;
                down->len = (size_t)r;
                progress = 1;
            } else if (r == 0) {
                plain_eof = 1;
                progress = 1;
            } else if (errno == EAGAIN || errno == EINTR) {
                plain_ev |= POLLIN;
            } else {
                plain_eof = 1;
            }
        }
        if (down->len > 0) {
            int w = SSL_write(ssl, down->buf + down->off, (int)down->len);
            if (w > 0) {
                down->off += (size_t)w;
                down->len -= (size_t)w;
                progress = 1;
            } else {
                int e = SSL_get_error(ssl, w);
                if (e == SSL_ERROR_WANT_WRITE)
                    tls_ev |= POLLOUT;
                else if (e == SSL_ERROR_WANT_READ)
                    tls_ev |= POLLIN;
                else
                    break;
            }
        }
        if (tls_eof)
            break; /* the client is gone: nothing more can be delivered either way */
        if (progress || busy > 0)
            idle_since = now_ms();
        else if (atomic_load(&p->net->stopping) && down->len == 0)
            break; /* draining: an idle keep-alive connection ends now */
        if (progress)
            continue;
        wait = idle_ms - (int)(now_ms() - idle_since);
        if (wait <= 0)
            break; /* idle: the HTTP layer's own timeout normally fires first */
        if (app_ms >= 0 && app_ms < wait)
            wait = app_ms;
        if (atomic_load(&p->net->stopping) && wait > 200)
            wait = 200; /* re-check the drain condition */
        {
            struct pollfd pfd[3] = { { .fd = p->fd, .events = tls_ev },
                                     { .fd = plain, .events = plain_ev },
                                     { .fd = app_fd, .events = POLLIN } };
            int r = poll(pfd, app_fd >= 0 ? 3 : 2, wait);
            if (r < 0 && errno != EINTR)
                break;
            if (r > 0 && ((pfd[0].revents & (POLLERR | POLLNVAL)) || (pfd[1].revents & POLLNVAL)))
                break;
        }
    }
    if (plain_eof && !tls_eof)
        (void)SSL_shutdown(ssl);
out:
    free(up);
    free(down);
}

static void *pump_main(void *arg)
{
    struct pump *p = arg;
    sk_net *n = p->net;
    SSL *ssl = NULL;
    void *app = NULL;
    int sv[2] = { -1, -1 };

    ssl = SSL_new(p->gen->ctx);
    if (ssl == NULL || SSL_set_fd(ssl, p->fd) != 1)
        goto out;
    SSL_set_app_data(ssl, p->conn);
    if (handshake(p, ssl) != 0) {
        atomic_fetch_add(&n->hs_failed, 1);
        report_refusal(n, p->conn, ssl, NULL);
        log_handshake_failure(n, p->conn, ssl, "TLS handshake failed");
        goto out;
    }
    if (extract_identity(ssl, p->conn) != 0) {
        atomic_fetch_add(&n->hs_failed, 1);
        report_refusal(n, p->conn, ssl, "bad_subject");
        log_handshake_failure(n, p->conn, ssl, "certificate subject unusable (CN/O)");
        goto out;
    }
    atomic_fetch_add(&n->hs_ok, 1);
    if (p->conn->resumed)
        atomic_fetch_add(&n->resumed, 1);
    if (sk_net_serial_revoked(n, p->conn->serial)) {
        /* A resumed session skips certificate verification; the CRL still applies. */
        report_refusal(n, p->conn, NULL, "revoked");
        log_handshake_failure(n, p->conn, ssl, "certificate revoked (resumed session)");
        goto out;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        goto out;
    if (set_nonblock(sv[1]) != 0) {
        close(sv[0]);
        goto out;
    }
    /* The application owns sv[0] from here on, success or not. */
    app = n->app.open(n->app.arg, sv[0], p->conn);
    sv[0] = -1;
    if (app == NULL)
        goto out;
    relay(p, ssl, sv[1], app);
    n->app.close(app);
out:
    if (sv[1] >= 0)
        close(sv[1]);
    SSL_free(ssl);
    close(p->fd);
    free(p->conn);
    tlsgen_unref(p->gen);
    free(p);
    atomic_fetch_sub(&n->active, 1);
    return NULL;
}

static void format_peer(sk_conn *c)
{
    const void *addr = NULL;
    if (c->peer.ss_family == AF_INET)
        addr = &((struct sockaddr_in *)&c->peer)->sin_addr;
    else if (c->peer.ss_family == AF_INET6)
        addr = &((struct sockaddr_in6 *)&c->peer)->sin6_addr;
    if (addr == NULL || inet_ntop(c->peer.ss_family, addr, c->peer_str, sizeof c->peer_str) == NULL)
        memcpy(c->peer_str, "unknown", sizeof "unknown");
}

static int start_pump(sk_net *n, int fd, const struct sockaddr_storage *ss, socklen_t len)
{
    struct pump *p = calloc(1, sizeof *p);
    sk_conn *c = calloc(1, sizeof *c);
    pthread_attr_t attr;
    pthread_t tid;
    int one = 1, rc = -1;

    if (p == NULL || c == NULL)
        goto out;
    memcpy(&c->peer, ss, len);
    c->peer_len = len;
    format_peer(c);
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (set_nonblock(fd) != 0)
        goto out;
    p->net = n;
    p->fd = fd;
    p->conn = c;
    pthread_rwlock_rdlock(&n->lock);
    p->gen = n->gen;
    atomic_fetch_add(&p->gen->refs, 1);
    pthread_rwlock_unlock(&n->lock);
    if (pthread_attr_init(&attr) != 0) {
        tlsgen_unref(p->gen);
        goto out;
    }
    (void)pthread_attr_setstacksize(&attr, PUMP_STACK);
    (void)pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    atomic_fetch_add(&n->active, 1);
    if (pthread_create(&tid, &attr, pump_main, p) != 0) {
        atomic_fetch_sub(&n->active, 1);
        tlsgen_unref(p->gen);
        pthread_attr_destroy(&attr);
        goto out;
    }
    pthread_attr_destroy(&attr);
    rc = 0;
out:
    if (rc != 0) {
        free(p);
        free(c);
    }
    return rc;
}

static void *accept_main(void *arg)
{
    sk_net *n = arg;
    while (!atomic_load(&n->stopping)) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        int fd = accept4(n->listen_fd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (atomic_load(&n->stopping) || errno == EBADF || errno == EINVAL)
                break;
            /* EMFILE and friends: back off instead of spinning. */
            sk_log(SK_LOG_WARN, "accept: %s", strerror(errno));
            usleep(100 * 1000);
            continue;
        }
        atomic_fetch_add(&n->accepted, 1);
        if ((uint32_t)atomic_load(&n->active) >= n->conf->max_connections) {
            atomic_fetch_add(&n->refused_busy, 1);
            close(fd);
            continue;
        }
        if (start_pump(n, fd, &ss, len) != 0)
            close(fd);
    }
    return NULL;
}

/* "host:port", "[v6]:port" or ":port" (all addresses). */
static int open_listener(const char *spec, int *out)
{
    char host[256] = "", port[8];
    const char *colon;
    struct addrinfo hints, *ai = NULL;
    int fd = -1, one = 1, rc = -1;

    if (spec[0] == '[') {
        const char *rb = strchr(spec, ']');
        if (rb == NULL || rb[1] != ':' || (size_t)(rb - spec - 1) >= sizeof host)
            return -1;
        memcpy(host, spec + 1, (size_t)(rb - spec - 1));
        host[rb - spec - 1] = '\0';
        colon = rb + 1;
    } else {
        colon = strrchr(spec, ':');
        if (colon == NULL || (size_t)(colon - spec) >= sizeof host)
            return -1;
        memcpy(host, spec, (size_t)(colon - spec));
        host[colon - spec] = '\0';
    }
    if (sk_strlcpy(port, sizeof port, colon + 1) != 0)
        return -1;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    if (getaddrinfo(host[0] ? host : NULL, port, &hints, &ai) != 0 || ai == NULL)
        return -1;
    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto out;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 1024) != 0)
        goto out;
    *out = fd;
    fd = -1;
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    return rc;
}

int sk_net_create(const sk_conf *conf, const sk_net_app *app, sk_net **out)
{
    sk_net *n = calloc(1, sizeof *n);
    if (n == NULL)
        return -1;
    n->conf = conf;
    n->app = *app;
    n->listen_fd = -1;
    if (pthread_rwlock_init(&n->lock, NULL) != 0) {
        free(n);
        return -1;
    }
    pthread_mutex_init(&n->watch_lock, NULL);
    pthread_cond_init(&n->watch_cond, NULL);
    if (sk_random(n->ticket_keys, sizeof n->ticket_keys) != 0) {
        sk_net_destroy(n);
        return -1;
    }
    (void)crl_file_changed(n);
    if (net_reload(n, "start") != 0) {
        sk_net_destroy(n);
        return -1;
    }
    check_crl_freshness(n, (int64_t)time(NULL));
    *out = n;
    return 0;
}

int sk_net_start(sk_net *n)
{
    if (open_listener(n->conf->listen_address, &n->listen_fd) != 0) {
        sk_log(SK_LOG_ERR, "cannot listen on %s: %s", n->conf->listen_address, strerror(errno));
        return -1;
    }
    if (pthread_create(&n->accept_thread, NULL, accept_main, n) != 0)
        return -1;
    n->accept_started = 1;
    if (pthread_create(&n->watch_thread, NULL, watch_main, n) != 0)
        return -1;
    n->watch_started = 1;
    sk_log(SK_LOG_INFO, "listening on https://%s", n->conf->listen_address);
    return 0;
}

int sk_net_stop(sk_net *n, int grace_seconds)
{
    atomic_store(&n->stopping, 1);
    if (n->listen_fd >= 0)
        (void)shutdown(n->listen_fd, SHUT_RDWR);
    if (n->accept_started) {
        pthread_join(n->accept_thread, NULL);
        n->accept_started = 0;
    }
    if (n->watch_started) {
        pthread_mutex_lock(&n->watch_lock);
        pthread_cond_signal(&n->watch_cond);
        pthread_mutex_unlock(&n->watch_lock);
        pthread_join(n->watch_thread, NULL);
        n->watch_started = 0;
    }
    for (int i = 0; i < grace_seconds * 10 && atomic_load(&n->active) > 0; i++)
        usleep(100 * 1000);
    return atomic_load(&n->active);
}

void sk_net_destroy(sk_net *n)
{
    if (n == NULL)
        return;
    if (n->listen_fd >= 0)
        close(n->listen_fd);
    /* Pumps still running (past the grace period) hold their own generation refs. */
    tlsgen_unref(n->gen);
    revset_unref(n->revset);
    sk_wipe(n->ticket_keys, sizeof n->ticket_keys);
    if (atomic_load(&n->active) == 0) {
        pthread_rwlock_destroy(&n->lock);
        free(n);
    }
}

void sk_net_get_stats(sk_net *n, struct sk_net_stats *s)
{
    s->accepted = atomic_load(&n->accepted);
    s->handshakes_ok = atomic_load(&n->hs_ok);
    s->handshakes_failed = atomic_load(&n->hs_failed);
    s->resumed = atomic_load(&n->resumed);
    s->active = (uint64_t)atomic_load(&n->active);
    s->refused_busy = atomic_load(&n->refused_busy);
}
