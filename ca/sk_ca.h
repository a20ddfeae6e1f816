/*
 * sk_ca.h — sekisho-ca, the mini certificate authority (library `sekisho_ca`).
 *
 * The CA issues one client certificate per (tenant, user) — subject O=<tenant>,
 * CN=<user> — plus server certificates for the gateway, revokes them and
 * publishes a CRL. Everything lives in one directory D:
 *
 *   D/ca.crt     self-signed CA certificate (ECDSA P-256), public
 *   D/ca.key     CA private key, PEM PKCS#8, mode 0600 (refused if group/world
 *                accessible)
 *   D/crl.pem    the current CRL (v2, CRL number, AKI, nextUpdate, reasons)
 *   D/index      every certificate ever issued, plus the CRL number and the CRL
 *                lifetime (text, see "Index format"); the single commit point
 *   D/pending    journal of an issuance in progress (exists only mid-command or
 *                after a crash)
 *   D/.lock      flock'd for the whole of every command: commands serialize
 *
 * Contracts
 *  - Every fallible function returns 0 on success and -1 on failure, is
 *    SK_MUST_CHECK, and on failure writes a one-line, human readable reason into
 *    the caller's sk_ca_err (never a secret, never a key).
 *  - Nothing in the CA directory is modified before every input (names, CSR,
 *    password file, output path) has been validated. A refused command leaves the
 *    directory byte-for-byte unchanged. (Exception: crash recovery, below, runs at
 *    the start of a mutating command when a previous one died mid-way.)
 *  - Every file is written by temp file + fsync + rename + fsync of the directory.
 *  - Private keys are written with umask 077 and mode 0600; passwords are read
 *    from files and wiped right after use.
 *
 * Index format (D/index), one record per line, fields separated by one space:
 *
 *   sekisho-ca index 1
 *   crl-number <u64>            number of the newest CRL published (or owed)
 *   crl-days <u32>              lifetime of CRLs written by revoke/reissue
 *   cert <SERIAL> <c|s> <tenant|-> <user|host> <notBefore> <notAfter> V - -
 *   cert <SERIAL> <c|s> <tenant|-> <user|host> <notBefore> <notAfter> R <revokedAt> <reason>
 *   end <number of cert lines> <sha256 hex of every byte before this line>
 *
 * SERIAL is upper-case hex with an even number of digits (as `openssl x509
 * -serial` prints it), times are UTC epoch seconds, reason is an RFC 5280 name.
 * Kind 'c' is a client certificate (tenant, user), 's' a server certificate
 * (tenant "-", host). The trailing checksum makes a truncated or bit-flipped
 * index a hard error instead of a silently shorter list of certificates.
 *
 * Commit protocol (issue, reissue, server-cert), all under D/.lock:
 *   1. validate every input; open a temp file beside each output (proves the
 *      output is writable; nothing in D changed yet);
 *   2. build key, certificate, PKCS#12 in memory; the serial is random and not
 *      present in the index;
 *   3. write D/pending (atomically): the new index record, i.e. the serial;
 *   4. write the output file(s): temp, fsync, rename, fsync directory;
 *   5. write the new index (new record; for reissue also the old certificate
 *      revoked "superseded"; crl-number + 1 when something was revoked) to a temp
 *      file, fsync, rename over D/index, fsync D   <-- the single commit point;
 *   6. unlink D/pending, fsync D;
 *   7. when something was revoked, rewrite D/crl.pem with the committed number.
 * Recovery (start of every mutating command, under the lock):
 *   - D/pending present and its serial in the index: the commit happened; the
 *     journal is removed.
 *   - D/pending present, serial NOT in the index: the command died before the
 *     commit; the old state stands (the user's old certificate stays valid), and
 *     the pending serial — whose certificate may already sit in an output file —
 *     is recorded as revoked (cessationOfOperation), so no serial signed by the CA
 *     is ever unknown to it and the user never holds two valid certificates.
 *   - crl.pem missing, unreadable or carrying a CRL number lower than the index's
 *     crl-number: the CRL is rewritten from the index.
 * Hence a crash at any point leaves either the old state or the new one. An I/O
 * error after step 3 is handled the same way: the command fails and leaves the
 * journal for the next command's recovery (all inputs were valid by then, so
 * this is never the "refused input leaves D unchanged" case).
 * CSR mode writes the leaf certificate alone (PEM); server-cert writes leaf + CA.
 * notBefore is backdated by 5 minutes so that clients with a slow clock accept a
 * certificate right away; notAfter never exceeds the CA's.
 * For tests, the environment variable SEKISHO_CA_TEST_CRASH=<step> (pending,
 * output, commit, unpending) makes the process _exit(99) right after that step.
 */
#ifndef SK_CA_H
#define SK_CA_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "sk_util.h"

#define SK_CA_USER_MAX 64     /* [A-Za-z0-9._@-], not starting with '.' or '-' */
#define SK_CA_TENANT_MAX 63   /* [a-z0-9-] */
#define SK_CA_HOST_MAX 253    /* DNS name or IPv4/IPv6 literal */
#define SK_CA_MAX_HOSTS 16    /* names in one server certificate (server-cert --host a,b,...) */
#define SK_CA_CANAME_MAX 64   /* CA common name, UTF-8 bytes */
#define SK_CA_SERIAL_MAX 20   /* RFC 5280 limit, octets */
#define SK_CA_SERIAL_LEN 16   /* octets of new serials: 128 random bits, positive */
#define SK_CA_SERIAL_HEX_CAP (2 * SK_CA_SERIAL_MAX + 1)
#define SK_CA_INDEX_MAX (64u << 20)
#define SK_CA_CSR_MAX (64u << 10)
#define SK_CA_PASSWORD_CAP 1024
#define SK_CA_ERR_CAP 512
#define SK_CA_DAYS_MAX 36500u

#define SK_CA_DEFAULT_TENANT "default"
#define SK_CA_DEFAULT_CA_DAYS 3650u
#define SK_CA_DEFAULT_CERT_DAYS 397u
#define SK_CA_DEFAULT_CRL_DAYS 7u

typedef struct sk_ca_err {
    char msg[SK_CA_ERR_CAP];
} sk_ca_err;

/* Set the reason (printf style). The first reason set wins, so a low-level
 * function's precise message is not overwritten by its caller. */
void sk_ca_err_set(sk_ca_err *e, const char *fmt, ...) SK_PRINTF(2, 3);

/* ---- names ------------------------------------------------------------- */

/* 0 when s is a valid user ID / tenant / server host name (DNS name, IPv4 or
 * IPv6 literal), -1 otherwise. */
int sk_ca_check_user(const char *s) SK_MUST_CHECK;
int sk_ca_check_tenant(const char *s) SK_MUST_CHECK;
int sk_ca_check_host(const char *s) SK_MUST_CHECK;
/* 1 when s is an IPv4 or IPv6 literal. */
int sk_ca_host_is_ip(const char *s);

/* ---- revocation reasons (RFC 5280 CRLReason codes) --------------------- */

enum sk_ca_reason {
    SK_CA_REASON_UNSPECIFIED = 0,
    SK_CA_REASON_KEY_COMPROMISE = 1,
    SK_CA_REASON_CA_COMPROMISE = 2,
    SK_CA_REASON_AFFILIATION_CHANGED = 3,
    SK_CA_REASON_SUPERSEDED = 4,
    SK_CA_REASON_CESSATION_OF_OPERATION = 5,
    SK_CA_REASON_CERTIFICATE_HOLD = 6,
    SK_CA_REASON_PRIVILEGE_WITHDRAWN = 9,
};
/* RFC 5280 name ("keyCompromise", ...) -> code. -1 for an unknown name. */
int sk_ca_reason_parse(const char *name, int *code) SK_MUST_CHECK;
/* Code -> name, NULL for a code outside the list above. */
const char *sk_ca_reason_name(int code);

/* ---- serials ----------------------------------------------------------- */

/* Upper-case even-length hex of a serial; out needs SK_CA_SERIAL_HEX_CAP. */
void sk_ca_serial_hex(const uint8_t *serial, size_t len, char *out);
/* Parse a serial typed by a person: hex digits of either case, optional "0x",
 * leading zero octets dropped. 1..SK_CA_SERIAL_MAX octets, non-zero. */
int sk_ca_serial_parse(const char *hex, uint8_t *out, size_t *len) SK_MUST_CHECK;

/* ---- index ------------------------------------------------------------- */

typedef struct sk_ca_entry {
    uint8_t serial[SK_CA_SERIAL_MAX];
    size_t serial_len;
    char kind; /* 'c' client, 's' server */
    char tenant[SK_CA_TENANT_MAX + 1]; /* "-" for server certificates */
    char name[SK_CA_HOST_MAX + 1];     /* user ID or host name */
    int64_t not_before;
    int64_t not_after;
    int revoked;
    int64_t revoked_at;
    int reason;
} sk_ca_entry;

typedef struct sk_ca_index {
    uint64_t crl_number;
    uint32_t crl_days;
    sk_ca_entry *v;
    size_t n;
    size_t cap;
} sk_ca_index;

void sk_ca_index_init(sk_ca_index *idx);
void sk_ca_index_free(sk_ca_index *idx);
/* Append a copy of e; -1 on allocation failure or a duplicate serial. */
int sk_ca_index_add(sk_ca_index *idx, const sk_ca_entry *e) SK_MUST_CHECK;
/* Entry with this serial or NULL. */
sk_ca_entry *sk_ca_index_find_serial(const sk_ca_index *idx, const uint8_t *serial, size_t len);
/* The (tenant, user) client certificate that is neither revoked nor expired at
 * `now`, or NULL. */
sk_ca_entry *sk_ca_index_find_valid(const sk_ca_index *idx, const char *tenant,
                                    const char *user, int64_t now);
/* A valid client certificate of the tenant whose user differs from user only in
 * ASCII case ("ALICE" beside "alice"): portals comparing names case-insensitively
 * would see one person, so issue refuses it. NULL when there is none. */
sk_ca_entry *sk_ca_index_find_case_variant(const sk_ca_index *idx, const char *tenant, const char *user,
                                           int64_t now);
/* Strict parse of the format above (any deviation, bad checksum, duplicate
 * serial, invalid name, unknown reason -> -1 with a reason). idx is reset first;
 * on failure it is left empty. */
int sk_ca_index_parse(const char *buf, size_t len, sk_ca_index *idx, sk_ca_err *err) SK_MUST_CHECK;
/* Serialize to a malloc'd NUL-terminated buffer (caller frees). */
int sk_ca_index_serialize(const sk_ca_index *idx, char **out, size_t *len) SK_MUST_CHECK;
/* The journal D/pending: same line syntax, header "sekisho-ca pending 1", exactly
 * one cert line. */
int sk_ca_pending_parse(const char *buf, size_t len, sk_ca_entry *e, sk_ca_err *err) SK_MUST_CHECK;
int sk_ca_pending_serialize(const sk_ca_entry *e, char **out, size_t *len) SK_MUST_CHECK;

/* New random positive serial of SK_CA_SERIAL_LEN octets (first octet 0x01..0x7f)
 * that no entry of idx carries. */
int sk_ca_serial_new(const sk_ca_index *idx, uint8_t *out, size_t *len) SK_MUST_CHECK;

/* ---- X.509 building blocks (ca_x509.c) -------------------------------- */

/* Parse a CSR (PEM or DER), verify its self-signature, and check that its key is
 * EC P-256/P-384 or RSA 2048..16384. *out is the request (caller frees). */
int sk_ca_csr_load(const uint8_t *buf, size_t len, X509_REQ **out, sk_ca_err *err) SK_MUST_CHECK;
/* New ECDSA P-256 key. */
int sk_ca_key_new(EVP_PKEY **out, sk_ca_err *err) SK_MUST_CHECK;
/* Self-signed CA certificate: CN=name, basicConstraints critical CA:TRUE
 * pathlen:0, keyUsage critical keyCertSign+cRLSign, SKI. */
int sk_ca_make_ca_cert(EVP_PKEY *key, const char *name, const uint8_t *serial, size_t serial_len,
                       int64_t not_before, int64_t not_after, X509 **out, sk_ca_err *err) SK_MUST_CHECK;
/* Leaf certificate for e (kind 'c': O=tenant, CN=user, EKU clientAuth; kind 's':
 * CN=host, EKU serverAuth, SAN), keyUsage critical digitalSignature,
 * basicConstraints CA:FALSE, SKI, AKI; validity and serial from e. */
/* A server certificate for several host names: hosts[0] is e->name (the CN and the
 * name in the index); every host goes into subjectAltName. */
int sk_ca_make_leaf_hosts(X509 *ca, EVP_PKEY *ca_key, EVP_PKEY *pub, const sk_ca_entry *e,
                          const char *const *hosts, size_t n_hosts, X509 **out, sk_ca_err *err) SK_MUST_CHECK;
int sk_ca_make_leaf(X509 *ca, EVP_PKEY *ca_key, EVP_PKEY *pub, const sk_ca_entry *e, X509 **out,
                    sk_ca_err *err) SK_MUST_CHECK;
/* CRL v2 over every revoked entry of idx: thisUpdate now, nextUpdate now+days,
 * CRL number idx->crl_number, AKI, each entry with its revocation date and its
 * reasonCode — except for "unspecified", where RFC 5280 5.3.1 says the extension
 * SHOULD be absent rather than carry 0. */
int sk_ca_make_crl(X509 *ca, EVP_PKEY *ca_key, const sk_ca_index *idx, int64_t now, uint32_t days,
                   X509_CRL **out, sk_ca_err *err) SK_MUST_CHECK;
/* CRL number of a PEM CRL (-1 if it has none or does not parse). */
int sk_ca_crl_number(const char *pem, size_t len, uint64_t *number) SK_MUST_CHECK;
/* PKCS#12 (key, cert, CA cert; friendly name) as DER in a malloc'd buffer.
 * legacy = 0: PBES2 AES-256-CBC / PBKDF2 HMAC-SHA256, SHA-256 MAC.
 * legacy = 1: pbeWithSHAAnd3-KeyTripleDES-CBC for key and certificates, SHA-1 MAC. */
int sk_ca_make_p12(EVP_PKEY *key, X509 *cert, X509 *ca, const char *friendly, const char *password,
                   int legacy, uint8_t **der, size_t *len, sk_ca_err *err) SK_MUST_CHECK;
/* PEM encodings into malloc'd buffers (a key buffer must be wiped by the caller). */
int sk_ca_pem_cert(X509 *const *certs, size_t n, char **out, size_t *len) SK_MUST_CHECK;
int sk_ca_pem_key(EVP_PKEY *key, char **out, size_t *len) SK_MUST_CHECK;
int sk_ca_pem_crl(X509_CRL *crl, char **out, size_t *len) SK_MUST_CHECK;
/* ASN1_TIME <-> epoch seconds. */
int sk_ca_asn1_to_epoch(const ASN1_TIME *t, int64_t *out) SK_MUST_CHECK;

/* ---- commands (ca_ops.c); each takes D/.lock for its whole duration ---- */

/* Create D (0700) and a fresh CA. Refused when D already holds one. */
int sk_ca_cmd_init(const char *dir, const char *name, uint32_t days, FILE *report,
                   sk_ca_err *err) SK_MUST_CHECK;

typedef struct sk_ca_issue_opts {
    const char *dir;
    const char *user;
    const char *tenant;        /* NULL -> "default" */
    uint32_t days;             /* 0 -> 397 */
    const char *out;           /* .p12, or .crt with csr */
    const char *password_file; /* PKCS#12 mode only */
    const char *csr;           /* CSR mode when non-NULL */
    int legacy;                /* PKCS#12 legacy encryption */
    int reissue;               /* revoke the current certificate (superseded) */
} sk_ca_issue_opts;
int sk_ca_cmd_issue(const sk_ca_issue_opts *o, FILE *report, sk_ca_err *err) SK_MUST_CHECK;

/* Revoke by serial (serial_hex non-NULL) or the user's current certificate. */
int sk_ca_cmd_revoke(const char *dir, const char *serial_hex, const char *user, const char *tenant,
                     int reason, FILE *report, sk_ca_err *err) SK_MUST_CHECK;
/* Rewrite crl.pem with the next CRL number; days 0 -> keep the stored lifetime. */
int sk_ca_cmd_crl(const char *dir, uint32_t days, FILE *report, sk_ca_err *err) SK_MUST_CHECK;
/* Table or JSON array of objects {serial, kind ("client"|"server"), tenant (null
 * for server certificates), user (the host for server certificates), not_before,
 * not_after, status ("valid"|"revoked"|"expired"), revoked_at, reason (both null
 * unless revoked)}; serials as in the index, times as ISO 8601 UTC. Read-only: it
 * does not run crash recovery (it warns on stderr when a journal is present). */
int sk_ca_cmd_list(const char *dir, int json, FILE *out, sk_ca_err *err) SK_MUST_CHECK;
/* PREFIX.crt (leaf + CA) and PREFIX.key (0600) for the gateway's TLS. */
/* host: one name or a comma-separated list (SK_CA_MAX_HOSTS at most); the first is
 * the CN and the name listed in the index, all are in subjectAltName. */
int sk_ca_cmd_server_cert(const char *dir, const char *host, uint32_t days, const char *prefix,
                          FILE *report, sk_ca_err *err) SK_MUST_CHECK;

#endif
