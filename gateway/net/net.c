/* sk_net: OpenSSL TLS front. See sk_net.h for the contracts. */
#define _GNU_SOURCE
#include "net_int.h"
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
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

/* The revocation set: serials of the current CRL, sorted for bsearch. Immutable once
 * built; swapped as a whole under the lock and freed by its last user. */
struct sk_revset {
    atomic_int refs;
    int64_t next_update;        /* 0 = no CRL configured */
    size_t count;
    char (*serials)[67];
};

/* ---- small helpers ---------------------------------------------------- */

int sk_net_set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -1;
    return 0;
}

int64_t sk_net_now_ms(void)
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

sk_tlsgen *sk_net_gen_ref(sk_net *n)
{
    sk_tlsgen *g;
    pthread_rwlock_rdlock(&n->lock);
    g = n->gen;
    atomic_fetch_add(&g->refs, 1);
    pthread_rwlock_unlock(&n->lock);
    return g;
}

void sk_net_gen_unref(sk_tlsgen *g)
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

static int tls_build(const sk_conf *conf, struct net_tickets *tickets, SSL_CTX **ctx_out,
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
    /* Resumption is scoped to the client CAs: a session (ID or ticket) made under
     * other CAs does not resume here. Not to the listener's address: every node of
     * a cluster, whatever its address, must accept the others' tickets. */
    {
        const STACK_OF(X509_NAME) *names = SSL_CTX_get_client_CA_list(ctx);
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        unsigned int len = 0;
        int ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
                 EVP_DigestUpdate(md, "sekisho-resumption-v1", 21) == 1;
        for (int i = 0; ok && i < sk_X509_NAME_num(names); i++) {
            unsigned char *der = NULL;
            int dlen = i2d_X509_NAME(sk_X509_NAME_value(names, i), &der);
            ok = dlen > 0 && EVP_DigestUpdate(md, der, (size_t)dlen) == 1;
            OPENSSL_free(der);
        }
        ok = ok && EVP_DigestFinal_ex(md, sid_ctx, &len) == 1;
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
        if (tickets != NULL && net_tickets_install(ctx, tickets) != 0) {
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

static int64_t not_after(const X509 *cert)
{
    struct tm tm;
    const ASN1_TIME *t = cert ? X509_get0_notAfter(cert) : NULL;
    return t != NULL && ASN1_TIME_to_tm(t, &tm) == 1 ? (int64_t)timegm(&tm) : 0;
}

/* For the metrics: when the server certificate and the client CA expire. */
static void note_expiries(sk_net *n, SSL_CTX *ctx)
{
    BIO *bio = BIO_new_file(n->conf->tls_client_ca, "r");
    X509 *ca = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    atomic_store(&n->server_not_after, not_after(SSL_CTX_get0_certificate(ctx)));
    atomic_store(&n->ca_not_after, not_after(ca));
    X509_free(ca);
    BIO_free(bio);
    ERR_clear_error();
}

static int net_reload(sk_net *n, const char *why)
{
    SSL_CTX *ctx = NULL;
    sk_revset *rs = NULL, *old_rs;
    sk_tlsgen *gen, *old_gen;
    char err[512];

    if (tls_build(n->conf, n->tickets, &ctx, &rs, err, sizeof err) != 0) {
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
    note_expiries(n, ctx);
    pthread_rwlock_wrlock(&n->lock);
    old_gen = n->gen;
    old_rs = n->revset;
    n->gen = gen;
    n->revset = rs;
    pthread_rwlock_unlock(&n->lock);
    sk_net_gen_unref(old_gen);
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

static void mail_operators(const sk_conf *conf, int level, const char *subject, const char *body)
{
    const char *to = sk_conf_operators_for(conf, level);
    struct sk_notify_msg m = { conf->notify_from[0] ? conf->notify_from : NULL, to, subject, body };
    if (to[0] == '\0')
        return;
    if (sk_notify_send_level(conf->notify_command, &m, level) != 0)
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
            mail_operators(conf, SK_NOTIFY_MAJOR, "Sekisho ALARM: CRL expired, access refused", body);
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
        mail_operators(conf, SK_NOTIFY_MINOR, "Sekisho warning: CRL expires soon", body);
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

int sk_net_extract_identity(SSL *ssl, sk_conn *c)
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

/* ---- refusals ------------------------------------------------------------ */

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

/* Every reason a connection can be refused before it is a signed-in client, in the
 * order the metrics list them. */
static const char *const refusal_names[SK_NET_REFUSAL_KINDS] = {
    "revoked",     "expired",       "not_yet_valid", "unknown_ca", "no_cert",       "bad_subject",      "bad_signature",
    "wrong_purpose", "crl_expired", "handshake_failed", "address_limit", "shed", "handshake_timeout",
};

void sk_net_refused(sk_net *n, const char *peer, const char *reason, const char *serial)
{
    size_t i;
    for (i = 0; i < SK_NET_REFUSAL_KINDS - 1 && strcmp(refusal_names[i], reason) != 0; i++)
        ;
    atomic_fetch_add(&n->ctr->refusals[i], 1); /* the last one takes the unnamed */
    if (n->hooks.refused != NULL)
        n->hooks.refused(n->hooks.arg, peer, reason, serial);
}

size_t sk_net_refusal_stats(sk_net *n, const char *const **names, uint64_t *counts)
{
    for (size_t i = 0; i < SK_NET_REFUSAL_KINDS; i++)
        counts[i] = atomic_load(&n->ctr->refusals[i]);
    *names = refusal_names;
    return SK_NET_REFUSAL_KINDS;
}

void sk_net_report_refusal(sk_net *n, const sk_conn *c, SSL *ssl, const char *fallback)
{
    X509 *peer = ssl ? SSL_get0_peer_certificate(ssl) : NULL;
    const char *reason = ssl ? refusal_reason(SSL_get_verify_result(ssl)) : NULL;
    char serial[67] = "";
    if (peer != NULL && serial_to_hex(X509_get0_serialNumber(peer), serial, sizeof serial) != 0)
        serial[0] = '\0';
    if (serial[0] == '\0' && c->serial[0] != '\0' && sk_strlcpy(serial, sizeof serial, c->serial) != 0)
        serial[0] = '\0';
    if (reason == NULL && fallback == NULL)
        reason = ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE ? "no_cert"
                                                                                                 : "handshake_failed";
    else if (reason == NULL)
        reason = fallback;
    sk_net_refused(n, c->peer_str, reason, serial[0] ? serial : NULL);
}

void sk_net_log_refusal(sk_net *n, const sk_conn *c, SSL *ssl, const char *what)
{
    /* At most 10 lines a second: a handshake flood must not flood the log. */
    uint64_t sec = (uint64_t)(sk_net_now_ms() / 1000);
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

void sk_net_format_peer(sk_conn *c)
{
    const void *addr = NULL;
    if (c->peer.ss_family == AF_INET)
        addr = &((struct sockaddr_in *)&c->peer)->sin_addr;
    else if (c->peer.ss_family == AF_INET6)
        addr = &((struct sockaddr_in6 *)&c->peer)->sin6_addr;
    if (addr == NULL || inet_ntop(c->peer.ss_family, addr, c->peer_str, sizeof c->peer_str) == NULL)
        memcpy(c->peer_str, "unknown", sizeof "unknown");
}

static int open_listener(const char *spec, int *out)
{
    if (sk_tcp_listen(spec, 4096, out) != 0)
        return -1;
    if (sk_net_set_nonblock(*out) != 0) {
        close(*out);
        return -1;
    }
    return 0;
}

/* Workers default to one per CPU (divided among the processes). The connection
 * limit defaults to what the open-file limit (raised to its hard maximum) allows:
 * an established connection holds three descriptors (TLS socket, both ends of its
 * socketpair) and a fourth while a request is upstream. Unfinished handshakes may use at most half of it,
 * so that they can never crowd out clients that presented a certificate. */
static void size_engine(sk_net *n)
{
    const sk_conf *conf = n->conf;
    struct rlimit rl;
    uint64_t by_fds = 1024;
    uint32_t procs = conf->listen_processes > 0 ? conf->listen_processes : 1;

    n->n_workers = sk_net_process_workers(conf);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        if (rl.rlim_cur < rl.rlim_max) {
            rl.rlim_cur = rl.rlim_max;
            if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || getrlimit(RLIMIT_NOFILE, &rl) != 0)
                sk_log(SK_LOG_WARN, "cannot raise the open-file limit: %s", strerror(errno));
        }
        by_fds = rl.rlim_cur > 256 + 4 ? (uint64_t)(rl.rlim_cur - 256) / 4 : 1;
    }
    /* With several processes, each allows its share of the limit (and of the
     * automatic cap, which stands for memory, shared by all of them). */
    if (conf->max_connections != 0) {
        n->max_conns = conf->max_connections / procs > 0 ? conf->max_connections / procs : 1;
        if (by_fds < n->max_conns)
            sk_log(SK_LOG_WARN, "max_connections = %u needs an open-file limit of %llu; the limit allows %llu",
                   conf->max_connections, (unsigned long long)n->max_conns * 4 + 256,
                   (unsigned long long)by_fds);
    } else {
        uint32_t cap = SK_NET_MAX_CONNECTIONS_AUTO / procs;
        n->max_conns = by_fds > cap ? cap : (uint32_t)by_fds;
    }
    n->hs_per_worker = n->max_conns / 2 / n->n_workers;
    if (n->hs_per_worker == 0)
        n->hs_per_worker = 1;
}

int sk_net_create(const sk_conf *conf, const sk_net_app *app, sk_net **out)
{
    sk_net *n = calloc(1, sizeof *n);
    if (n == NULL)
        return -1;
    n->conf = conf;
    n->app = *app;
    n->listen_fd = -1;
    n->ctr = &n->own;
    n->admit_owned = 1;
    if (pthread_rwlock_init(&n->lock, NULL) != 0) {
        free(n);
        return -1;
    }
    pthread_mutex_init(&n->watch_lock, NULL);
    pthread_cond_init(&n->watch_cond, NULL);
    if (net_tickets_create(&n->tickets) != 0) {
        sk_net_destroy(n);
        return -1;
    }
    (void)crl_file_changed(n);
    if (net_reload(n, "start") != 0) {
        sk_net_destroy(n);
        return -1;
    }
    check_crl_freshness(n, (int64_t)time(NULL));
    size_engine(n);
    *out = n;
    return 0;
}

void sk_net_use_listener(sk_net *n, int fd)
{
    if (n->listen_fd >= 0)
        close(n->listen_fd);
    n->listen_fd = fd;
}

int sk_net_start(sk_net *n)
{
    if (n->listen_fd >= 0) {
        if (sk_net_set_nonblock(n->listen_fd) != 0) {
            sk_log(SK_LOG_ERR, "cannot use the listening socket: %s", strerror(errno));
            return -1;
        }
    } else if (open_listener(n->conf->listen_address, &n->listen_fd) != 0) {
        sk_log(SK_LOG_ERR, "cannot listen on %s: %s", n->conf->listen_address, strerror(errno));
        return -1;
    }
    atomic_store(&n->ctr->max_conns, n->max_conns);
    if (sk_net_workers_start(n) != 0) {
        sk_log(SK_LOG_ERR, "cannot start the connection workers");
        return -1;
    }
    if (pthread_create(&n->watch_thread, NULL, watch_main, n) != 0)
        return -1;
    n->watch_started = 1;
    sk_log(SK_LOG_INFO, "listening on https://%s (%u workers, at most %u connections, %u unfinished handshakes "
                        "per address)", n->conf->listen_address, n->n_workers, n->max_conns,
           n->conf->handshakes_per_address);
    return 0;
}

int sk_net_stop(sk_net *n, int grace_seconds)
{
    n->drain_deadline_ms = sk_net_now_ms() + (int64_t)grace_seconds * 1000;
    atomic_store(&n->stopping, 1);
    sk_net_workers_stop(n); /* returns when every worker has drained */
    if (n->watch_started) {
        pthread_mutex_lock(&n->watch_lock);
        pthread_cond_signal(&n->watch_cond);
        pthread_mutex_unlock(&n->watch_lock);
        pthread_join(n->watch_thread, NULL);
        n->watch_started = 0;
    }
    return atomic_load(&n->cut);
}

void sk_net_destroy(sk_net *n)
{
    if (n == NULL)
        return;
    sk_net_workers_stop(n);
    if (n->listen_fd >= 0)
        close(n->listen_fd);
    sk_net_gen_unref(n->gen);
    revset_unref(n->revset);
    net_tickets_destroy(n->tickets);
    pthread_rwlock_destroy(&n->lock);
    free(n);
}

void sk_net_get_stats(sk_net *n, struct sk_net_stats *s)
{
    s->accepted = atomic_load(&n->ctr->accepted);
    s->handshakes_ok = atomic_load(&n->ctr->hs_ok);
    s->handshakes_failed = atomic_load(&n->ctr->hs_failed);
    s->resumed = atomic_load(&n->ctr->resumed);
    s->active = (uint64_t)atomic_load(&n->ctr->active);
    s->refused_busy = atomic_load(&n->ctr->refused_busy);
    s->refused_address = atomic_load(&n->ctr->refused_addr);
    s->shed = atomic_load(&n->ctr->shed);
    s->handshake_timeouts = atomic_load(&n->ctr->hs_timeout);
    s->probes = atomic_load(&n->ctr->probes);
    s->established = (uint64_t)atomic_load(&n->ctr->established);
    s->max_connections = n->max_conns;
    s->crl_next_update = current_next_update(n);
    s->server_not_after = atomic_load(&n->server_not_after);
    s->ca_not_after = atomic_load(&n->ca_not_after);
}
