/* sekisho-ca: certificates, CRLs, CSRs and PKCS#12 with the OpenSSL 3.0 EVP/X509 APIs. */
#include "sk_ca.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509v3.h>

#define P12_ITER 2048 /* PKCS12_DEFAULT_ITER; what `openssl pkcs12` uses in 3.0 */

int sk_ca_asn1_to_epoch(const ASN1_TIME *t, int64_t *out)
{
    struct tm tm;
    time_t v;

    memset(&tm, 0, sizeof(tm));
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
        return -1;
    v = timegm(&tm);
    if (v == (time_t)-1)
        return -1;
    *out = (int64_t)v;
    return 0;
}

static int set_serial(X509 *x, const uint8_t *serial, size_t len)
{
    BIGNUM *bn = BN_bin2bn(serial, (int)len, NULL);
    int rc = -1;

    if (bn == NULL)
        goto out;
    if (BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL)
        goto out;
    rc = 0;
out:
    BN_free(bn);
    return rc;
}

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
    X509_EXTENSION *ex = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
    int rc = -1;

    if (ex == NULL)
        goto out;
    if (X509_add_ext(x, ex, -1) != 1)
        goto out;
    rc = 0;
out:
    X509_EXTENSION_free(ex);
    return rc;
}

static int set_validity(X509 *x, int64_t nb, int64_t na)
{
    if (ASN1_TIME_set(X509_getm_notBefore(x), (time_t)nb) == NULL ||
        ASN1_TIME_set(X509_getm_notAfter(x), (time_t)na) == NULL)
        return -1;
    return 0;
}

int sk_ca_key_new(EVP_PKEY **out, sk_ca_err *err)
{
    *out = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    if (*out == NULL) {
        sk_ca_err_set(err, "key generation failed");
        return -1;
    }
    return 0;
}

int sk_ca_make_ca_cert(EVP_PKEY *key, const char *name, const uint8_t *serial, size_t serial_len,
                       int64_t not_before, int64_t not_after, X509 **out, sk_ca_err *err)
{
    X509 *x = X509_new();
    X509_NAME *nm = NULL;
    X509V3_CTX ctx;
    int rc = -1;

    if (x == NULL || X509_set_version(x, X509_VERSION_3) != 1 || set_serial(x, serial, serial_len) != 0 ||
        set_validity(x, not_before, not_after) != 0)
        goto fail;
    nm = X509_NAME_new();
    if (nm == NULL)
        goto fail;
    /* UTF-8 so a CA may carry a Japanese name; OpenSSL enforces the 64-char bound. */
    if (X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_UTF8, (const unsigned char *)name, -1, -1, 0) != 1) {
        sk_ca_err_set(err, "invalid CA name (UTF-8, 1..64 characters)");
        goto out;
    }
    if (X509_set_subject_name(x, nm) != 1 || X509_set_issuer_name(x, nm) != 1 ||
        X509_set_pubkey(x, key) != 1)
        goto fail;
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    if (add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") != 0 ||
        add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign") != 0 ||
        add_ext(x, &ctx, NID_subject_key_identifier, "hash") != 0)
        goto fail;
    if (X509_sign(x, key, EVP_sha256()) <= 0)
        goto fail;
    *out = x;
    x = NULL;
    rc = 0;
    goto out;
fail:
    sk_ca_err_set(err, "building the CA certificate failed");
out:
    X509_NAME_free(nm);
    X509_free(x);
    return rc;
}

/* subjectAltName for a server certificate naming every host (validated: letters,
 * digits, '-', '.', ':' only, so none can inject entries into the comma list).
 * localhost and 127.0.0.1 each bring the other along, for local setups. */
static int server_san(const char *const *hosts, size_t n, char *out, size_t cap)
{
    sk_buf b;
    int loop = 0;
    sk_buf_init(&b, out, cap);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(hosts[i], "localhost") == 0 || strcmp(hosts[i], "127.0.0.1") == 0) {
            loop = 1;
            continue;
        }
        sk_buf_printf(&b, "%s%s:%s", b.len ? "," : "", sk_ca_host_is_ip(hosts[i]) ? "IP" : "DNS", hosts[i]);
    }
    if (loop)
        sk_buf_printf(&b, "%sDNS:localhost,IP:127.0.0.1", b.len ? "," : "");
    return sk_buf_finish(&b);
}

int sk_ca_make_leaf(X509 *ca, EVP_PKEY *ca_key, EVP_PKEY *pub, const sk_ca_entry *e, X509 **out,
                    sk_ca_err *err)
{
    const char *hosts[1] = { e->name };
    return sk_ca_make_leaf_hosts(ca, ca_key, pub, e, hosts, 1, out, err);
}

int sk_ca_make_leaf_hosts(X509 *ca, EVP_PKEY *ca_key, EVP_PKEY *pub, const sk_ca_entry *e,
                          const char *const *hosts, size_t n_hosts, X509 **out, sk_ca_err *err)
{
    X509 *x = X509_new();
    X509_NAME *nm = X509_NAME_new();
    X509V3_CTX ctx;
    char san[SK_CA_MAX_HOSTS * (SK_CA_HOST_MAX + 8) + 64];
    int rc = -1;

    if (x == NULL || nm == NULL || X509_set_version(x, X509_VERSION_3) != 1 ||
        set_serial(x, e->serial, e->serial_len) != 0 || set_validity(x, e->not_before, e->not_after) != 0)
        goto fail;
    if (e->kind == 'c' &&
        X509_NAME_add_entry_by_txt(nm, "O", MBSTRING_ASC, (const unsigned char *)e->tenant, -1, -1, 0) != 1)
        goto fail;
    /* A 253-byte host name exceeds CN's 64-character bound: then the SAN alone names it. */
    if ((e->kind == 'c' || strlen(e->name) <= 64) &&
        X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)e->name, -1, -1, 0) != 1)
        goto fail;
    if (X509_set_subject_name(x, nm) != 1 || X509_set_issuer_name(x, X509_get_subject_name(ca)) != 1 ||
        X509_set_pubkey(x, pub) != 1)
        goto fail;
    X509V3_set_ctx(&ctx, ca, x, NULL, NULL, 0);
    if (add_ext(x, &ctx, NID_basic_constraints, "CA:FALSE") != 0 ||
        add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature") != 0 ||
        add_ext(x, &ctx, NID_ext_key_usage, e->kind == 'c' ? "clientAuth" : "serverAuth") != 0 ||
        add_ext(x, &ctx, NID_subject_key_identifier, "hash") != 0 ||
        add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always") != 0)
        goto fail;
    if (e->kind == 's' && (n_hosts == 0 || n_hosts > SK_CA_MAX_HOSTS ||
                           server_san(hosts, n_hosts, san, sizeof(san)) != 0 ||
                           add_ext(x, &ctx, NID_subject_alt_name, san) != 0))
        goto fail;
    if (X509_sign(x, ca_key, EVP_sha256()) <= 0)
        goto fail;
    *out = x;
    x = NULL;
    rc = 0;
    goto out;
fail:
    sk_ca_err_set(err, "building the certificate failed");
out:
    X509_NAME_free(nm);
    X509_free(x);
    return rc;
}

int sk_ca_make_crl(X509 *ca, EVP_PKEY *ca_key, const sk_ca_index *idx, int64_t now, uint32_t days,
                   X509_CRL **out, sk_ca_err *err)
{
    X509_CRL *crl = X509_CRL_new();
    ASN1_TIME *t = ASN1_TIME_new();
    ASN1_INTEGER *num = ASN1_INTEGER_new();
    AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(ca);
    X509_REVOKED *r = NULL;
    ASN1_INTEGER *sn = NULL;
    ASN1_ENUMERATED *re = NULL;
    BIGNUM *bn = NULL;
    int rc = -1;

    if (crl == NULL || t == NULL || num == NULL || akid == NULL || ski == NULL)
        goto fail;
    if (X509_CRL_set_version(crl, X509_CRL_VERSION_2) != 1 ||
        X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca)) != 1)
        goto fail;
    if (ASN1_TIME_set(t, (time_t)now) == NULL || X509_CRL_set1_lastUpdate(crl, t) != 1 ||
        ASN1_TIME_set(t, (time_t)(now + (int64_t)days * 86400)) == NULL || X509_CRL_set1_nextUpdate(crl, t) != 1)
        goto fail;
    if (ASN1_INTEGER_set_uint64(num, idx->crl_number) != 1 ||
        X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0) != 1)
        goto fail;
    akid->keyid = ASN1_OCTET_STRING_dup(ski);
    if (akid->keyid == NULL || X509_CRL_add1_ext_i2d(crl, NID_authority_key_identifier, akid, 0, 0) != 1)
        goto fail;
    for (size_t i = 0; i < idx->n; i++) {
        const sk_ca_entry *e = &idx->v[i];
        if (!e->revoked)
            continue;
        r = X509_REVOKED_new();
        bn = BN_bin2bn(e->serial, (int)e->serial_len, NULL);
        if (r == NULL || bn == NULL)
            goto fail;
        sn = BN_to_ASN1_INTEGER(bn, NULL);
        if (sn == NULL || X509_REVOKED_set_serialNumber(r, sn) != 1)
            goto fail;
        if (ASN1_TIME_set(t, (time_t)e->revoked_at) == NULL || X509_REVOKED_set_revocationDate(r, t) != 1)
            goto fail;
        /* RFC 5280 5.3.1: the reasonCode extension SHOULD be absent rather than
         * carry unspecified (0); every other reason is written. */
        if (e->reason != SK_CA_REASON_UNSPECIFIED) {
            re = ASN1_ENUMERATED_new();
            if (re == NULL || ASN1_ENUMERATED_set(re, e->reason) != 1 ||
                X509_REVOKED_add1_ext_i2d(r, NID_crl_reason, re, 0, 0) != 1)
                goto fail;
            ASN1_ENUMERATED_free(re);
            re = NULL;
        }
        if (X509_CRL_add0_revoked(crl, r) != 1)
            goto fail;
        r = NULL;
        ASN1_INTEGER_free(sn);
        sn = NULL;
        BN_free(bn);
        bn = NULL;
    }
    if (X509_CRL_sort(crl) != 1 || X509_CRL_sign(crl, ca_key, EVP_sha256()) <= 0)
        goto fail;
    *out = crl;
    crl = NULL;
    rc = 0;
    goto out;
fail:
    sk_ca_err_set(err, "building the CRL failed");
out:
    X509_REVOKED_free(r);
    ASN1_INTEGER_free(sn);
    ASN1_ENUMERATED_free(re);
    BN_free(bn);
    AUTHORITY_KEYID_free(akid);
    ASN1_INTEGER_free(num);
    ASN1_TIME_free(t);
    X509_CRL_free(crl);
    return rc;
}

int sk_ca_crl_number(const char *pem, size_t len, uint64_t *number)
{
    BIO *bio = NULL;
    X509_CRL *crl = NULL;
    ASN1_INTEGER *num = NULL;
    int rc = -1;

    if (pem == NULL || len == 0 || len > INT_MAX)
        goto out;
    bio = BIO_new_mem_buf(pem, (int)len);
    if (bio == NULL)
        goto out;
    crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL);
    if (crl == NULL)
        goto out;
    num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
    if (num == NULL || ASN1_INTEGER_get_uint64(number, num) != 1)
        goto out;
    rc = 0;
out:
    ASN1_INTEGER_free(num);
    X509_CRL_free(crl);
    BIO_free(bio);
    ERR_clear_error();
    return rc;
}

int sk_ca_csr_load(const uint8_t *buf, size_t len, X509_REQ **out, sk_ca_err *err)
{
    BIO *bio = NULL;
    X509_REQ *req = NULL;
    EVP_PKEY *pub;
    char group[64];
    size_t glen = 0;
    int rc = -1;

    if (buf == NULL || len == 0 || len > SK_CA_CSR_MAX) {
        sk_ca_err_set(err, "CSR is empty or too large");
        goto out;
    }
    bio = BIO_new_mem_buf(buf, (int)len);
    if (bio == NULL)
        goto nomem;
    req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
    if (req == NULL) {
        /* Not PEM: try DER, and require that it spans the whole input. */
        const unsigned char *p = buf;
        req = d2i_X509_REQ(NULL, &p, (long)len);
        if (req != NULL && p != buf + len) {
            X509_REQ_free(req);
            req = NULL;
        }
    }
    if (req == NULL) {
        sk_ca_err_set(err, "cannot parse the CSR (neither PEM nor DER PKCS#10)");
        goto out;
    }
    pub = X509_REQ_get0_pubkey(req);
    if (pub == NULL) {
        sk_ca_err_set(err, "CSR carries no usable public key");
        goto out;
    }
    if (X509_REQ_verify(req, pub) != 1) {
        sk_ca_err_set(err, "CSR signature does not verify");
        goto out;
    }
    if (EVP_PKEY_is_a(pub, "EC")) {
        if (EVP_PKEY_get_group_name(pub, group, sizeof(group), &glen) != 1 ||
            (strcmp(group, "prime256v1") != 0 && strcmp(group, "secp384r1") != 0)) {
            sk_ca_err_set(err, "CSR key: only EC P-256/P-384 or RSA >= 2048 bits are accepted");
            goto out;
        }
    } else if (EVP_PKEY_is_a(pub, "RSA")) {
        int bits = EVP_PKEY_get_bits(pub);
        if (bits < 2048 || bits > 16384) {
            sk_ca_err_set(err, "CSR key: RSA must be 2048..16384 bits");
            goto out;
        }
    } else {
        sk_ca_err_set(err, "CSR key: only EC P-256/P-384 or RSA >= 2048 bits are accepted");
        goto out;
    }
    *out = req;
    req = NULL;
    rc = 0;
    goto out;
nomem:
    sk_ca_err_set(err, "out of memory");
out:
    X509_REQ_free(req);
    BIO_free(bio);
    ERR_clear_error();
    return rc;
}

int sk_ca_make_p12(EVP_PKEY *key, X509 *cert, X509 *ca, const char *friendly, const char *password,
                   int legacy, uint8_t **der, size_t *len, sk_ca_err *err)
{
    STACK_OF(X509) *cas = sk_X509_new_null();
    PKCS12 *p12 = NULL;
    unsigned char *buf = NULL, *p;
    int nid = legacy ? NID_pbe_WithSHA1And3_Key_TripleDES_CBC : NID_aes_256_cbc;
    int n, rc = -1;

    if (cas == NULL || sk_X509_push(cas, ca) <= 0)
        goto fail;
    /* mac_iter -1: no MAC yet, so that the MAC digest can be chosen below
     * (PKCS12_create would pick SHA-1). With a cipher NID, OpenSSL 3.0 uses PBES2
     * with PBKDF2/HMAC-SHA256. */
    p12 = PKCS12_create_ex(password, friendly, key, cert, cas, nid, nid, P12_ITER, -1, 0, NULL, NULL);
    if (p12 == NULL)
        goto fail;
    if (PKCS12_set_mac(p12, password, -1, NULL, 0, P12_ITER, legacy ? EVP_sha1() : EVP_sha256()) != 1)
        goto fail;
    n = i2d_PKCS12(p12, NULL);
    if (n <= 0)
        goto fail;
    buf = malloc((size_t)n);
    if (buf == NULL)
        goto fail;
    p = buf;
    if (i2d_PKCS12(p12, &p) != n)
        goto fail;
    *der = buf;
    *len = (size_t)n;
    buf = NULL;
    rc = 0;
    goto out;
fail:
    sk_ca_err_set(err, "building the PKCS#12 file failed");
out:
    free(buf);
    PKCS12_free(p12);
    sk_X509_free(cas); /* the stack only borrowed ca */
    ERR_clear_error();
    return rc;
}

/* Copy a memory BIO's content to a malloc'd NUL-terminated buffer, wiping the BIO
 * side is left to BUF_MEM_free (which clears on free). */
static int bio_to_buf(BIO *bio, char **out, size_t *len)
{
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    char *copy;

    if (n <= 0 || data == NULL)
        return -1;
    copy = malloc((size_t)n + 1);
    if (copy == NULL)
        return -1;
    memcpy(copy, data, (size_t)n);
    copy[n] = '\0';
    *out = copy;
    *len = (size_t)n;
    return 0;
}

int sk_ca_pem_cert(X509 *const *certs, size_t n, char **out, size_t *len)
{
    BIO *bio = BIO_new(BIO_s_mem());
    int rc = -1;

    if (bio == NULL)
        goto out;
    for (size_t i = 0; i < n; i++)
        if (PEM_write_bio_X509(bio, certs[i]) != 1)
            goto out;
    rc = bio_to_buf(bio, out, len);
out:
    BIO_free(bio);
    return rc;
}

int sk_ca_pem_key(EVP_PKEY *key, char **out, size_t *len)
{
    /* Secure-heap memory BIO: the key's PEM is cleared when the BIO is freed. */
    BIO *bio = BIO_new(BIO_s_secmem());
    int rc = -1;

    if (bio == NULL)
        goto out;
    /* PEM_write_bio_PrivateKey writes PKCS#8 ("BEGIN PRIVATE KEY") in 3.0. */
    if (PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1)
        goto out;
    rc = bio_to_buf(bio, out, len);
out:
    BIO_free(bio);
    return rc;
}

int sk_ca_pem_crl(X509_CRL *crl, char **out, size_t *len)
{
    BIO *bio = BIO_new(BIO_s_mem());
    int rc = -1;

    if (bio == NULL)
        goto out;
    if (PEM_write_bio_X509_CRL(bio, crl) != 1)
        goto out;
    rc = bio_to_buf(bio, out, len);
out:
    BIO_free(bio);
    return rc;
}
