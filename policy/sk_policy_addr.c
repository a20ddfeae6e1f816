/*
 * IP addresses and CIDR prefixes: a strict text parser written here (no
 * inet_pton: it is locale- and libc-dependent, accepts forms we refuse, and this
 * module must stay pure and fuzzable), matching, allowlist levels, formatting.
 */
#include <string.h>

#include "sk_policy.h"

static const char *const cidr_errors[SK_POLICY_CIDR_ERR_COUNT_] = {
    [SK_POLICY_CIDR_OK] = "ok",
    [SK_POLICY_CIDR_EMPTY] = "empty address",
    [SK_POLICY_CIDR_TOO_LONG] = "address text too long",
    [SK_POLICY_CIDR_BAD_CHAR] = "character not allowed in an address",
    [SK_POLICY_CIDR_BAD_IPV4] = "malformed IPv4 address (need four dotted decimal octets)",
    [SK_POLICY_CIDR_LEADING_ZERO] = "IPv4 octet with a leading zero",
    [SK_POLICY_CIDR_OCTET_RANGE] = "IPv4 octet greater than 255",
    [SK_POLICY_CIDR_BAD_IPV6] = "malformed IPv6 address",
    [SK_POLICY_CIDR_DOUBLE_COLON] = "IPv6 address with '::' more than once",
    [SK_POLICY_CIDR_BAD_PREFIX] = "prefix length is not a plain decimal number",
    [SK_POLICY_CIDR_PREFIX_RANGE] = "prefix length too large for the address family",
    [SK_POLICY_CIDR_HOST_BITS] = "host bits set after the prefix length (write the network address)",
    [SK_POLICY_CIDR_TRAILING] = "unexpected text after the address",
};

const char *sk_policy_cidr_strerror(sk_policy_cidr_err e)
{
    return (unsigned)e < SK_POLICY_CIDR_ERR_COUNT_ ? cidr_errors[e] : "unknown error";
}

int sk_policy_addr_from_bytes(sk_policy_addr *out, const void *bytes, size_t len)
{
    if (out == NULL || bytes == NULL || (len != 4 && len != 16))
        return -1;
    memset(out, 0, sizeof(*out));
    out->family = len == 4 ? SK_POLICY_AF_INET4 : SK_POLICY_AF_INET6;
    memcpy(out->bytes, bytes, len);
    return 0;
}

/* ---- parsing ------------------------------------------------------------- */

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int hex_val(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Exactly four octets, nothing after. */
static sk_policy_cidr_err parse_v4(const unsigned char *s, size_t len, uint8_t out[4])
{
    size_t i = 0;
    int oct;

    for (oct = 0; oct < 4; oct++) {
        size_t start = i;
        unsigned v = 0;
        if (oct > 0) {
            if (i >= len || s[i] != '.')
                return SK_POLICY_CIDR_BAD_IPV4;
            start = ++i;
        }
        while (i < len && is_digit(s[i])) {
            if (i - start < 4)
                v = v * 10 + (unsigned)(s[i] - '0');
            i++;
        }
        if (i == start)
            return SK_POLICY_CIDR_BAD_IPV4;
        if (s[start] == '0' && i - start > 1)
            return SK_POLICY_CIDR_LEADING_ZERO;
        if (i - start > 3 || v > 255)
            return SK_POLICY_CIDR_OCTET_RANGE;
        out[oct] = (uint8_t)v;
    }
    if (i != len)
        return (s[i] == '.' || is_digit(s[i])) ? SK_POLICY_CIDR_TRAILING : SK_POLICY_CIDR_BAD_IPV4;
    return SK_POLICY_CIDR_OK;
}

static sk_policy_cidr_err parse_v6(const unsigned char *s, size_t len, uint8_t out[16])
{
    uint16_t groups[8];
    size_t i = 0, ng = 0, k;
    long dc = -1;               /* group index where "::" stands */

    if (len >= 2 && s[0] == ':' && s[1] == ':') {
        dc = 0;
        i = 2;
    } else if (len >= 1 && s[0] == ':') {
        return SK_POLICY_CIDR_BAD_IPV6;
    }
    while (i < len) {
        size_t start = i;
        unsigned v = 0;
        while (i < len && hex_val(s[i]) >= 0) {
            if (i - start < 4)
                v = (v << 4) | (unsigned)hex_val(s[i]);
            i++;
        }
        if (i < len && s[i] == '.') {
            /* Embedded IPv4: must be the last 32 bits. */
            uint8_t v4[4];
            sk_policy_cidr_err e;
            if (i == start || ng > 6 || (dc < 0 && ng != 6))
                return SK_POLICY_CIDR_BAD_IPV6;
            e = parse_v4(s + start, len - start, v4);
            if (e != SK_POLICY_CIDR_OK)
                return e;
            groups[ng++] = (uint16_t)((v4[0] << 8) | v4[1]);
            groups[ng++] = (uint16_t)((v4[2] << 8) | v4[3]);
            i = len;
            break;
        }
        if (i == start || i - start > 4 || ng == 8)
            return SK_POLICY_CIDR_BAD_IPV6;
        groups[ng++] = (uint16_t)v;
        if (i == len)
            break;
        if (s[i] != ':')
            return SK_POLICY_CIDR_BAD_IPV6;
        i++;
        if (i < len && s[i] == ':') {
            if (dc >= 0)
                return SK_POLICY_CIDR_DOUBLE_COLON;
            dc = (long)ng;
            i++;
        } else if (i == len) {
            return SK_POLICY_CIDR_BAD_IPV6;     /* trailing single ':' */
        }
    }
    if (dc >= 0) {
        /* "::" must stand for at least one group. */
        if (ng == 8)
            return SK_POLICY_CIDR_BAD_IPV6;
        memmove(groups + (size_t)dc + (8 - ng), groups + dc, (ng - (size_t)dc) * sizeof(groups[0]));
        for (k = (size_t)dc; k < (size_t)dc + (8 - ng); k++)
            groups[k] = 0;
    } else if (ng != 8) {
        return SK_POLICY_CIDR_BAD_IPV6;
    }
    for (k = 0; k < 8; k++) {
        out[2 * k] = (uint8_t)(groups[k] >> 8);
        out[2 * k + 1] = (uint8_t)(groups[k] & 0xFF);
    }
    return SK_POLICY_CIDR_OK;
}

/* Length and alphabet checks shared by both parsers. allow_slash: CIDR text. */
static sk_policy_cidr_err precheck(const char *s, size_t len, int allow_slash)
{
    size_t i;

    if (s == NULL || len == 0)
        return SK_POLICY_CIDR_EMPTY;
    if (len > SK_POLICY_CIDR_INPUT_MAX)
        return SK_POLICY_CIDR_TOO_LONG;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (hex_val(c) < 0 && c != '.' && c != ':' && !(allow_slash && c == '/'))
            return c == '/' ? SK_POLICY_CIDR_TRAILING : SK_POLICY_CIDR_BAD_CHAR;
    }
    return SK_POLICY_CIDR_OK;
}

static sk_policy_cidr_err parse_addr(const unsigned char *s, size_t len, sk_policy_addr *out)
{
    sk_policy_addr a;
    sk_policy_cidr_err e;

    if (len == 0)
        return SK_POLICY_CIDR_EMPTY;
    memset(&a, 0, sizeof(a));
    if (memchr(s, ':', len) != NULL) {
        a.family = SK_POLICY_AF_INET6;
        e = parse_v6(s, len, a.bytes);
    } else {
        a.family = SK_POLICY_AF_INET4;
        e = parse_v4(s, len, a.bytes);
    }
    if (e == SK_POLICY_CIDR_OK)
        *out = a;
    return e;
}

sk_policy_cidr_err sk_policy_addr_parse(const char *s, size_t len, sk_policy_addr *out)
{
    sk_policy_cidr_err e = precheck(s, len, 0);

    if (e != SK_POLICY_CIDR_OK)
        return e;
    return parse_addr((const unsigned char *)s, len, out);
}

static unsigned max_prefix(const sk_policy_addr *a)
{
    return a->family == SK_POLICY_AF_INET4 ? 32u : a->family == SK_POLICY_AF_INET6 ? 128u : 0u;
}

/* 1 when a and b agree on the first `bits` bits. */
static int prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned full = bits / 8, rest = bits % 8;

    if (full > 0 && memcmp(a, b, full) != 0)
        return 0;
    if (rest != 0) {
        uint8_t mask = (uint8_t)(0xFFu << (8 - rest));
        if ((a[full] & mask) != (b[full] & mask))
            return 0;
    }
    return 1;
}

static int host_bits_zero(const sk_policy_addr *a, unsigned prefix)
{
    unsigned nbytes = max_prefix(a) / 8, i;

    for (i = 0; i < nbytes; i++) {
        unsigned bit0 = i * 8;
        uint8_t keep;
        if (bit0 + 8 <= prefix)
            continue;
        keep = bit0 >= prefix ? 0 : (uint8_t)(0xFFu << (8 - (prefix - bit0)));
        if ((a->bytes[i] & (uint8_t)~keep) != 0)
            return 0;
    }
    return 1;
}

sk_policy_cidr_err sk_policy_cidr_parse(const char *s, size_t len, sk_policy_cidr *out)
{
    const unsigned char *u = (const unsigned char *)s;
    const unsigned char *slash;
    sk_policy_cidr c;
    sk_policy_cidr_err e;
    size_t alen, i, plen;
    unsigned prefix = 0;

    e = precheck(s, len, 1);
    if (e != SK_POLICY_CIDR_OK)
        return e;
    slash = memchr(u, '/', len);
    alen = slash != NULL ? (size_t)(slash - u) : len;
    memset(&c, 0, sizeof(c));
    e = parse_addr(u, alen, &c.addr);
    if (e != SK_POLICY_CIDR_OK)
        return e;
    if (slash == NULL) {
        c.prefix = (uint8_t)max_prefix(&c.addr);
        *out = c;
        return SK_POLICY_CIDR_OK;
    }
    plen = len - alen - 1;
    if (memchr(slash + 1, '/', plen) != NULL)
        return SK_POLICY_CIDR_TRAILING;
    if (plen == 0 || (slash[1] == '0' && plen > 1))
        return SK_POLICY_CIDR_BAD_PREFIX;
    for (i = 1; i <= plen; i++) {
        if (!is_digit(slash[i]))
            return SK_POLICY_CIDR_BAD_PREFIX;
        if (i <= 4)
            prefix = prefix * 10 + (unsigned)(slash[i] - '0');
    }
    if (plen > 3 || prefix > max_prefix(&c.addr))
        return SK_POLICY_CIDR_PREFIX_RANGE;
    if (!host_bits_zero(&c.addr, prefix))
        return SK_POLICY_CIDR_HOST_BITS;
    c.prefix = (uint8_t)prefix;
    *out = c;
    return SK_POLICY_CIDR_OK;
}

/* ---- matching ------------------------------------------------------------ */

int sk_policy_addr_is_v4_mapped(const sk_policy_addr *a, sk_policy_addr *v4)
{
    static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF };

    if (a == NULL || a->family != SK_POLICY_AF_INET6 || memcmp(a->bytes, mapped, 12) != 0)
        return 0;
    if (v4 != NULL) {
        memset(v4, 0, sizeof(*v4));
        v4->family = SK_POLICY_AF_INET4;
        memcpy(v4->bytes, a->bytes + 12, 4);
    }
    return 1;
}

int sk_policy_cidr_match(const sk_policy_cidr *c, const sk_policy_addr *a)
{
    sk_policy_addr v4;

    if (c == NULL || a == NULL || max_prefix(&c->addr) == 0 || c->prefix > max_prefix(&c->addr))
        return 0;
    if (c->addr.family == a->family)
        return prefix_equal(c->addr.bytes, a->bytes, c->prefix);
    if (c->addr.family == SK_POLICY_AF_INET4 && sk_policy_addr_is_v4_mapped(a, &v4))
        return prefix_equal(c->addr.bytes, v4.bytes, c->prefix);
    return 0;
}

int sk_policy_cidr_list_match(const sk_policy_cidr_list *l, const sk_policy_addr *a)
{
    size_t i;

    if (l == NULL || l->items == NULL)
        return 0;
    for (i = 0; i < l->count; i++)
        if (sk_policy_cidr_match(&l->items[i], a))
            return 1;
    return 0;
}

int sk_policy_ip_allowed(const sk_policy_cidr_list *global, const sk_policy_cidr_list *tenant,
                         const sk_policy_cidr_list *user, const sk_policy_addr *peer)
{
    const sk_policy_cidr_list *levels[3] = { global, tenant, user };
    size_t i;

    for (i = 0; i < 3; i++) {
        const sk_policy_cidr_list *l = levels[i];
        if (l == NULL || l->count == 0)
            continue;           /* empty level: no restriction here */
        if (peer == NULL || max_prefix(peer) == 0 || !sk_policy_cidr_list_match(l, peer))
            return 0;
    }
    return 1;
}

/* ---- formatting ---------------------------------------------------------- */

struct writer {
    char *out;
    size_t cap, len;
    int overflow;
};

static void put_char(struct writer *w, char c)
{
    if (w->len + 1 >= w->cap) {
        w->overflow = 1;
        return;
    }
    w->out[w->len++] = c;
    w->out[w->len] = '\0';
}

static void put_dec(struct writer *w, unsigned v)
{
    char tmp[10];
    size_t n = 0;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0 && n < sizeof(tmp));
    while (n > 0)
        put_char(w, tmp[--n]);
}

static void put_hex16(struct writer *w, unsigned v)
{
    static const char digits[] = "0123456789abcdef";
    int shift, started = 0;

    for (shift = 12; shift >= 0; shift -= 4) {
        unsigned d = (v >> shift) & 0xF;
        if (d != 0 || started || shift == 0) {
            put_char(w, digits[d]);
            started = 1;
        }
    }
}

static void put_v4(struct writer *w, const uint8_t *b)
{
    int i;

    for (i = 0; i < 4; i++) {
        if (i > 0)
            put_char(w, '.');
        put_dec(w, b[i]);
    }
}

static void put_v6(struct writer *w, const sk_policy_addr *a)
{
    unsigned g[8];
    int i, best = -1, best_len = 0, run = -1, run_len = 0;

    if (sk_policy_addr_is_v4_mapped(a, NULL)) {
        const char *pfx = "::ffff:";
        while (*pfx != '\0')
            put_char(w, *pfx++);
        put_v4(w, a->bytes + 12);
        return;
    }
    for (i = 0; i < 8; i++)
        g[i] = ((unsigned)a->bytes[2 * i] << 8) | a->bytes[2 * i + 1];
    /* RFC 5952 §4.2: longest run of >= 2 zero groups, the first on a tie. */
    for (i = 0; i < 8; i++) {
        if (g[i] == 0) {
            if (run < 0) {
                run = i;
                run_len = 0;
            }
            run_len++;
            if (run_len > best_len) {
                best = run;
                best_len = run_len;
            }
        } else {
            run = -1;
        }
    }
    if (best_len < 2)
        best = -1;
    for (i = 0; i < 8; i++) {
        if (i == best) {
            put_char(w, ':');
            put_char(w, ':');
            i += best_len - 1;
            continue;
        }
        if (i > 0 && i != best + best_len)
            put_char(w, ':');
        put_hex16(w, g[i]);
    }
}

static int finish(struct writer *w, int ok)
{
    if (!ok || w->overflow) {
        if (w->cap > 0)
            w->out[0] = '\0';
        return -1;
    }
    return 0;
}

int sk_policy_addr_format(const sk_policy_addr *a, char *out, size_t cap)
{
    struct writer w = { out, cap, 0, 0 };

    if (out == NULL || cap == 0)
        return -1;
    out[0] = '\0';
    if (a == NULL || max_prefix(a) == 0)
        return finish(&w, 0);
    if (a->family == SK_POLICY_AF_INET4)
        put_v4(&w, a->bytes);
    else
        put_v6(&w, a);
    return finish(&w, 1);
}

int sk_policy_cidr_format(const sk_policy_cidr *c, char *out, size_t cap)
{
    struct writer w = { out, cap, 0, 0 };

    if (out == NULL || cap == 0)
        return -1;
    out[0] = '\0';
    if (c == NULL || max_prefix(&c->addr) == 0 || c->prefix > max_prefix(&c->addr))
        return finish(&w, 0);
    if (c->addr.family == SK_POLICY_AF_INET4)
        put_v4(&w, c->addr.bytes);
    else
        put_v6(&w, &c->addr);
    put_char(&w, '/');
    put_dec(&w, c->prefix);
    return finish(&w, 1);
}
