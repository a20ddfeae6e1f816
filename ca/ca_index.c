/* sekisho-ca: names, reasons, serials and the index / journal text formats. */
#include "sk_ca.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#define INDEX_HEADER "sekisho-ca index 1"
#define PENDING_HEADER "sekisho-ca pending 1"
#define MAX_TOKENS 12
#define TOKEN_CAP (SK_CA_HOST_MAX + 2)

void sk_ca_err_set(sk_ca_err *e, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (e == NULL || e->msg[0] != '\0')
        return;
    va_start(ap, fmt);
    n = vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
    if (n < 0)
        e->msg[0] = '\0';
    /* The reason must stay one line whatever a caller passed in. */
    for (char *p = e->msg; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
}

/* ---- names --------------------------------------------------------------- */

static int is_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

int sk_ca_check_user(const char *s)
{
    size_t n;

    if (s == NULL)
        return -1;
    n = strlen(s);
    if (n < 1 || n > SK_CA_USER_MAX || s[0] == '.' || s[0] == '-')
        return -1;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!is_alnum(c) && c != '.' && c != '_' && c != '@' && c != '-')
            return -1;
    }
    return 0;
}

int sk_ca_check_tenant(const char *s)
{
    size_t n;

    if (s == NULL)
        return -1;
    n = strlen(s);
    if (n < 1 || n > SK_CA_TENANT_MAX)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return -1;
    }
    return 0;
}

int sk_ca_host_is_ip(const char *s)
{
    unsigned char buf[sizeof(struct in6_addr)];

    if (s == NULL)
        return 0;
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

int sk_ca_check_host(const char *s)
{
    size_t n, label = 0;

    if (s == NULL)
        return -1;
    n = strlen(s);
    if (n < 1 || n > SK_CA_HOST_MAX)
        return -1;
    if (sk_ca_host_is_ip(s))
        return 0;
    /* RFC 1123 host name: labels of 1..63 letters, digits and inner hyphens. */
    for (size_t i = 0; i <= n; i++) {
        char c = s[i];
        if (c == '.' || c == '\0') {
            if (label == 0 || label > 63 || s[i - 1] == '-')
                return -1;
            label = 0;
            continue;
        }
        if (c == '-' && label == 0)
            return -1;
        if (!is_alnum(c) && c != '-')
            return -1;
        label++;
    }
    return 0;
}

/* ---- reasons --------------------------------------------------------------- */

static const struct {
    int code;
    const char *name;
} reasons[] = {
    {SK_CA_REASON_UNSPECIFIED, "unspecified"},
    {SK_CA_REASON_KEY_COMPROMISE, "keyCompromise"},
    {SK_CA_REASON_CA_COMPROMISE, "cACompromise"},
    {SK_CA_REASON_AFFILIATION_CHANGED, "affiliationChanged"},
    {SK_CA_REASON_SUPERSEDED, "superseded"},
    {SK_CA_REASON_CESSATION_OF_OPERATION, "cessationOfOperation"},
    {SK_CA_REASON_CERTIFICATE_HOLD, "certificateHold"},
    {SK_CA_REASON_PRIVILEGE_WITHDRAWN, "privilegeWithdrawn"},
};

int sk_ca_reason_parse(const char *name, int *code)
{
    if (name == NULL)
        return -1;
    for (size_t i = 0; i < SK_ARRAY_LEN(reasons); i++) {
        if (strcmp(name, reasons[i].name) == 0) {
            *code = reasons[i].code;
            return 0;
        }
    }
    return -1;
}

const char *sk_ca_reason_name(int code)
{
    for (size_t i = 0; i < SK_ARRAY_LEN(reasons); i++)
        if (reasons[i].code == code)
            return reasons[i].name;
    return NULL;
}

/* ---- serials --------------------------------------------------------------- */

void sk_ca_serial_hex(const uint8_t *serial, size_t len, char *out)
{
    static const char digits[] = "0123456789ABCDEF";
    size_t i;

    if (len > SK_CA_SERIAL_MAX)
        len = SK_CA_SERIAL_MAX;
    for (i = 0; i < len; i++) {
        out[2 * i] = digits[serial[i] >> 4];
        out[2 * i + 1] = digits[serial[i] & 0xf];
    }
    out[2 * i] = '\0';
}

int sk_ca_serial_parse(const char *hex, uint8_t *out, size_t *len)
{
    size_t n, digits, o = 0;
    const char *p;

    if (hex == NULL)
        return -1;
    if (hex[0] == '0' && (hex[1] == 'x' || hex[1] == 'X'))
        hex += 2;
    n = strlen(hex);
    if (n == 0 || n > 2 * SK_CA_SERIAL_MAX + 64)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (sk_hex_digit_value(hex[i]) < 0)
            return -1;
    p = hex;
    while (*p == '0')
        p++;
    digits = strlen(p);
    if (digits == 0 || (digits + 1) / 2 > SK_CA_SERIAL_MAX)
        return -1;
    if (digits % 2 == 1) {
        out[o++] = (uint8_t)sk_hex_digit_value(*p);
        p++;
    }
    for (; *p != '\0'; p += 2)
        out[o++] = (uint8_t)(sk_hex_digit_value(p[0]) << 4 | sk_hex_digit_value(p[1]));
    *len = o;
    return 0;
}

int sk_ca_serial_new(const sk_ca_index *idx, uint8_t *out, size_t *len)
{
    /* 2^-127 collision odds per try: more than a few retries means the RNG is
     * broken, and issuing anyway would be worse than refusing. */
    for (int tries = 0; tries < 8; tries++) {
        if (sk_random(out, SK_CA_SERIAL_LEN) != 0)
            return -1;
        out[0] &= 0x7f; /* positive DER INTEGER without a leading zero octet */
        if (out[0] == 0)
            continue;
        if (sk_ca_index_find_serial(idx, out, SK_CA_SERIAL_LEN) == NULL) {
            *len = SK_CA_SERIAL_LEN;
            return 0;
        }
    }
    return -1;
}

/* ---- index ------------------------------------------------------------------ */

void sk_ca_index_init(sk_ca_index *idx)
{
    memset(idx, 0, sizeof(*idx));
    idx->crl_days = SK_CA_DEFAULT_CRL_DAYS;
}

void sk_ca_index_free(sk_ca_index *idx)
{
    free(idx->v);
    sk_ca_index_init(idx);
}

sk_ca_entry *sk_ca_index_find_serial(const sk_ca_index *idx, const uint8_t *serial, size_t len)
{
    for (size_t i = 0; i < idx->n; i++)
        if (idx->v[i].serial_len == len && memcmp(idx->v[i].serial, serial, len) == 0)
            return &idx->v[i];
    return NULL;
}

sk_ca_entry *sk_ca_index_find_valid(const sk_ca_index *idx, const char *tenant, const char *user,
                                    int64_t now)
{
    for (size_t i = 0; i < idx->n; i++) {
        sk_ca_entry *e = &idx->v[i];
        if (e->kind == 'c' && !e->revoked && e->not_after > now && strcmp(e->tenant, tenant) == 0 &&
            strcmp(e->name, user) == 0)
            return e;
    }
    return NULL;
}

sk_ca_entry *sk_ca_index_find_case_variant(const sk_ca_index *idx, const char *tenant, const char *user,
                                           int64_t now)
{
    for (size_t i = 0; i < idx->n; i++) {
        sk_ca_entry *e = &idx->v[i];
        if (e->kind == 'c' && !e->revoked && e->not_after > now && strcmp(e->tenant, tenant) == 0 &&
            strcasecmp(e->name, user) == 0 && strcmp(e->name, user) != 0)
            return e;
    }
    return NULL;
}

static int index_append(sk_ca_index *idx, const sk_ca_entry *e)
{
    if (idx->n == idx->cap) {
        size_t ncap = idx->cap ? idx->cap * 2 : 16;
        sk_ca_entry *nv;
        if (ncap > SIZE_MAX / sizeof(*nv))
            return -1;
        nv = realloc(idx->v, ncap * sizeof(*nv));
        if (nv == NULL)
            return -1;
        idx->v = nv;
        idx->cap = ncap;
    }
    idx->v[idx->n++] = *e;
    return 0;
}

int sk_ca_index_add(sk_ca_index *idx, const sk_ca_entry *e)
{
    if (sk_ca_index_find_serial(idx, e->serial, e->serial_len) != NULL)
        return -1;
    return index_append(idx, e);
}

static int cmp_entry_serial(const void *a, const void *b)
{
    const sk_ca_entry *x = *(const sk_ca_entry *const *)a;
    const sk_ca_entry *y = *(const sk_ca_entry *const *)b;

    if (x->serial_len != y->serial_len)
        return x->serial_len < y->serial_len ? -1 : 1;
    return memcmp(x->serial, y->serial, x->serial_len);
}

/* 0 when every serial is unique, -1 on a duplicate or allocation failure. */
static int has_duplicate(const sk_ca_index *idx)
{
    const sk_ca_entry **v;
    int rc = 0;

    if (idx->n < 2)
        return 0;
    v = malloc(idx->n * sizeof(*v));
    if (v == NULL)
        return -1;
    for (size_t i = 0; i < idx->n; i++)
        v[i] = &idx->v[i];
    qsort(v, idx->n, sizeof(*v), cmp_entry_serial);
    for (size_t i = 1; i < idx->n; i++)
        if (cmp_entry_serial(&v[i - 1], &v[i]) == 0)
            rc = -1;
    free(v);
    return rc;
}

/* Split one line (without its '\n') at single spaces into bounded tokens. Empty
 * tokens (double spaces, leading/trailing space) are format errors. */
static int split_line(const char *line, size_t len, char tok[][TOKEN_CAP], size_t *ntok)
{
    size_t n = 0, start = 0;

    for (size_t i = 0; i <= len; i++) {
        if (i < len && line[i] != ' ')
            continue;
        if (i == start || n == MAX_TOKENS || i - start >= TOKEN_CAP)
            return -1;
        memcpy(tok[n], line + start, i - start);
        tok[n][i - start] = '\0';
        n++;
        start = i + 1;
    }
    *ntok = n;
    return 0;
}

static int parse_i64(const char *s, int64_t *out)
{
    uint64_t v;

    /* Epoch seconds up to year 9999; negative times never occur in this CA. */
    if (sk_parse_u64(s, 0, 253402300799ULL, &v) != 0)
        return -1;
    *out = (int64_t)v;
    return 0;
}

static int parse_cert_line(char tok[][TOKEN_CAP], size_t ntok, sk_ca_entry *e)
{
    char canon[SK_CA_SERIAL_HEX_CAP];

    memset(e, 0, sizeof(*e));
    if (ntok != 10 || strcmp(tok[0], "cert") != 0)
        return -1;
    if (sk_ca_serial_parse(tok[1], e->serial, &e->serial_len) != 0)
        return -1;
    /* Only the canonical spelling is accepted, so each serial has one form. */
    sk_ca_serial_hex(e->serial, e->serial_len, canon);
    if (strcmp(canon, tok[1]) != 0)
        return -1;
    if (strcmp(tok[2], "c") == 0) {
        e->kind = 'c';
        if (sk_ca_check_tenant(tok[3]) != 0 || sk_ca_check_user(tok[4]) != 0)
            return -1;
    } else if (strcmp(tok[2], "s") == 0) {
        e->kind = 's';
        if (strcmp(tok[3], "-") != 0 || sk_ca_check_host(tok[4]) != 0)
            return -1;
    } else {
        return -1;
    }
    if (sk_strlcpy(e->tenant, sizeof(e->tenant), tok[3]) != 0 ||
        sk_strlcpy(e->name, sizeof(e->name), tok[4]) != 0)
        return -1;
    if (parse_i64(tok[5], &e->not_before) != 0 || parse_i64(tok[6], &e->not_after) != 0 ||
        e->not_after < e->not_before)
        return -1;
    if (strcmp(tok[7], "V") == 0) {
        if (strcmp(tok[8], "-") != 0 || strcmp(tok[9], "-") != 0)
            return -1;
        e->revoked = 0;
    } else if (strcmp(tok[7], "R") == 0) {
        e->revoked = 1;
        if (parse_i64(tok[8], &e->revoked_at) != 0 || sk_ca_reason_parse(tok[9], &e->reason) != 0)
            return -1;
    } else {
        return -1;
    }
    return 0;
}

static void put_cert_line(sk_buf *b, const sk_ca_entry *e)
{
    char hex[SK_CA_SERIAL_HEX_CAP];

    sk_ca_serial_hex(e->serial, e->serial_len, hex);
    sk_buf_printf(b, "cert %s %c %s %s %lld %lld ", hex, e->kind, e->tenant, e->name,
                  (long long)e->not_before, (long long)e->not_after);
    if (e->revoked) {
        const char *r = sk_ca_reason_name(e->reason);
        sk_buf_printf(b, "R %lld %s\n", (long long)e->revoked_at, r ? r : "unspecified");
    } else {
        sk_buf_puts(b, "V - -\n");
    }
}

static int sha256_hex(const char *buf, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    if (EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        return -1;
    sk_hex_encode(md, 32, out);
    return 0;
}

/* Shared parser. pending = 0: index with crl-number/crl-days lines and any
 * number of certs; pending = 1: exactly one cert line. */
static int parse_common(const char *buf, size_t len, int pending, sk_ca_index *idx, sk_ca_err *err)
{
    char tok[MAX_TOKENS][TOKEN_CAP];
    char sum[65];
    size_t pos = 0, lineno = 0, ntok;
    int seen_end = 0, have_number = 0, have_days = 0, rc = -1;
    uint64_t v;

    sk_ca_index_free(idx);
    if (buf == NULL || len == 0 || len > SK_CA_INDEX_MAX || memchr(buf, '\0', len) != NULL) {
        sk_ca_err_set(err, "empty, oversized or binary file");
        goto out;
    }
    while (pos < len) {
        const char *line = buf + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t llen;

        lineno++;
        if (nl == NULL) {
            sk_ca_err_set(err, "line %zu: missing newline (truncated file?)", lineno);
            goto out;
        }
        llen = (size_t)(nl - line);
        if (seen_end) {
            sk_ca_err_set(err, "line %zu: data after the end line", lineno);
            goto out;
        }
        if (lineno == 1) {
            const char *hdr = pending ? PENDING_HEADER : INDEX_HEADER;
            if (llen != strlen(hdr) || memcmp(line, hdr, llen) != 0) {
                sk_ca_err_set(err, "line 1: not a sekisho-ca %s", pending ? "journal" : "index");
                goto out;
            }
            pos += llen + 1;
            continue;
        }
        if (split_line(line, llen, tok, &ntok) != 0) {
            sk_ca_err_set(err, "line %zu: malformed", lineno);
            goto out;
        }
        if (strcmp(tok[0], "end") == 0) {
            if (ntok != 3 || sk_parse_u64(tok[1], 0, SIZE_MAX, &v) != 0 || v != idx->n) {
                sk_ca_err_set(err, "line %zu: bad end line or certificate count", lineno);
                goto out;
            }
            if (sha256_hex(buf, pos, sum) != 0 || strcmp(sum, tok[2]) != 0) {
                sk_ca_err_set(err, "checksum mismatch (file corrupted or edited)");
                goto out;
            }
            seen_end = 1;
        } else if (!pending && strcmp(tok[0], "crl-number") == 0) {
            if (have_number || idx->n > 0 || ntok != 2 ||
                sk_parse_u64(tok[1], 1, UINT64_MAX - 1, &idx->crl_number) != 0) {
                sk_ca_err_set(err, "line %zu: bad crl-number", lineno);
                goto out;
            }
            have_number = 1;
        } else if (!pending && strcmp(tok[0], "crl-days") == 0) {
            if (have_days || idx->n > 0 || ntok != 2 ||
                sk_parse_u64(tok[1], 1, SK_CA_DAYS_MAX, &v) != 0) {
                sk_ca_err_set(err, "line %zu: bad crl-days", lineno);
                goto out;
            }
            idx->crl_days = (uint32_t)v;
            have_days = 1;
        } else if (strcmp(tok[0], "cert") == 0) {
            sk_ca_entry e;
            if ((!pending && (!have_number || !have_days)) || (pending && idx->n == 1)) {
                sk_ca_err_set(err, "line %zu: unexpected cert line", lineno);
                goto out;
            }
            if (parse_cert_line(tok, ntok, &e) != 0) {
                sk_ca_err_set(err, "line %zu: malformed cert record", lineno);
                goto out;
            }
            /* Duplicates are found after the loop in O(n log n): a large index
             * must not cost a quadratic scan on every command. */
            if (index_append(idx, &e) != 0) {
                sk_ca_err_set(err, "out of memory");
                goto out;
            }
        } else {
            sk_ca_err_set(err, "line %zu: unknown record", lineno);
            goto out;
        }
        pos += llen + 1;
    }
    if (!seen_end || (pending && idx->n != 1) || (!pending && (!have_number || !have_days))) {
        sk_ca_err_set(err, "incomplete file (no end line or missing records)");
        goto out;
    }
    if (has_duplicate(idx) != 0) {
        sk_ca_err_set(err, "duplicate serial (or out of memory)");
        goto out;
    }
    rc = 0;
out:
    if (rc != 0)
        sk_ca_index_free(idx);
    return rc;
}

int sk_ca_index_parse(const char *buf, size_t len, sk_ca_index *idx, sk_ca_err *err)
{
    return parse_common(buf, len, 0, idx, err);
}

int sk_ca_pending_parse(const char *buf, size_t len, sk_ca_entry *e, sk_ca_err *err)
{
    sk_ca_index tmp;
    int rc;

    sk_ca_index_init(&tmp);
    rc = parse_common(buf, len, 1, &tmp, err);
    if (rc == 0)
        *e = tmp.v[0];
    sk_ca_index_free(&tmp);
    return rc;
}

static int finish_with_sum(sk_buf *b, size_t count, char **out, size_t *len)
{
    char sum[65];

    if (sk_buf_finish(b) != 0 || sha256_hex(b->data, b->len, sum) != 0)
        return -1;
    sk_buf_printf(b, "end %zu %s\n", count, sum);
    if (sk_buf_finish(b) != 0)
        return -1;
    *out = b->data;
    *len = b->len;
    return 0;
}

int sk_ca_index_serialize(const sk_ca_index *idx, char **out, size_t *len)
{
    /* A cert line is at most ~400 bytes; size the buffer exactly once. */
    size_t cap = 256 + idx->n * 512;
    char *mem = malloc(cap);
    sk_buf b;
    int rc = -1;

    if (mem == NULL)
        goto out;
    sk_buf_init(&b, mem, cap);
    sk_buf_printf(&b, "%s\ncrl-number %llu\ncrl-days %u\n", INDEX_HEADER,
                  (unsigned long long)idx->crl_number, (unsigned)idx->crl_days);
    for (size_t i = 0; i < idx->n; i++)
        put_cert_line(&b, &idx->v[i]);
    if (finish_with_sum(&b, idx->n, out, len) != 0)
        goto out;
    mem = NULL;
    rc = 0;
out:
    free(mem);
    return rc;
}

int sk_ca_pending_serialize(const sk_ca_entry *e, char **out, size_t *len)
{
    size_t cap = 1024;
    char *mem = malloc(cap);
    sk_buf b;
    int rc = -1;

    if (mem == NULL)
        goto out;
    sk_buf_init(&b, mem, cap);
    sk_buf_printf(&b, "%s\n", PENDING_HEADER);
    put_cert_line(&b, e);
    if (finish_with_sum(&b, 1, out, len) != 0)
        goto out;
    mem = NULL;
    rc = 0;
out:
    free(mem);
    return rc;
}
