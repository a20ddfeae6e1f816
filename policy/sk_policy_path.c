/* Path normalisation and role-based path-prefix rules. */
#include <string.h>

#include "sk_policy.h"
#include "sk_policy_int.h"

static const char *const path_errors[SK_POLICY_PATH_ERR_COUNT_] = {
    [SK_POLICY_PATH_OK] = "ok",
    [SK_POLICY_PATH_EMPTY] = "empty path",
    [SK_POLICY_PATH_NOT_ABSOLUTE] = "path does not start with '/'",
    [SK_POLICY_PATH_BAD_CHAR] = "character not allowed in a path",
    [SK_POLICY_PATH_BAD_ESCAPE] = "malformed percent-escape",
    [SK_POLICY_PATH_ENCODED_SLASH] = "encoded path separator (%2F or %5C)",
    [SK_POLICY_PATH_ENCODED_NUL] = "encoded NUL (%00)",
    [SK_POLICY_PATH_ESCAPES_ROOT] = "'..' climbs above the root",
    [SK_POLICY_PATH_TOO_LONG] = "normalised path does not fit the buffer",
};

const char *sk_policy_path_strerror(sk_policy_path_err e)
{
    return (unsigned)e < SK_POLICY_PATH_ERR_COUNT_ ? path_errors[e] : "unknown error";
}

/* Raw-byte classes. */
enum { C_BAD = 0, C_OK, C_PCT, C_SLASH };

static int raw_class(unsigned char c)
{
    if (c == '/')
        return C_SLASH;
    if (c == '%')
        return C_PCT;
    /* Printable ASCII only; '\\' is a separator on Windows upstreams, ';' starts
     * path parameters that Java containers strip, '?'/'#' end the path. */
    if (c <= 0x20 || c >= 0x7F || c == '\\' || c == ';' || c == '?' || c == '#')
        return C_BAD;
    return C_OK;
}

static int is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

static int hexv(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Step 1 (RFC 3986 6.2.2.2): percent-encoding normalisation, segment by segment
 * and without resolving anything: unreserved escapes decoded, the rest upper-cased;
 * bytes and escapes that no upstream agrees on are refused. */
static sk_policy_path_err pct_normalize(const unsigned char *s, size_t len, char *out, size_t cap, size_t *olen)
{
    static const char hexd[] = "0123456789ABCDEF";
    size_t i = 0, o = 0;

    while (i < len) {
        unsigned char c = s[i];
        int cls = raw_class(c);
        if (cls == C_BAD)
            return SK_POLICY_PATH_BAD_CHAR;
        if (cls == C_PCT) {
            int hi, lo;
            unsigned char d;
            if (len - i < 3 || (hi = hexv(s[i + 1])) < 0 || (lo = hexv(s[i + 2])) < 0)
                return SK_POLICY_PATH_BAD_ESCAPE;
            d = (unsigned char)(hi * 16 + lo);
            if (d == '/' || d == '\\')
                return SK_POLICY_PATH_ENCODED_SLASH;
            if (d == 0)
                return SK_POLICY_PATH_ENCODED_NUL;
            i += 3;
            if (is_unreserved(d)) {
                if (o + 1 >= cap)
                    return SK_POLICY_PATH_TOO_LONG;
                out[o++] = (char)d;
            } else {
                if (o + 3 >= cap)
                    return SK_POLICY_PATH_TOO_LONG;
                out[o++] = '%';
                out[o++] = hexd[d >> 4];
                out[o++] = hexd[d & 0xF];
            }
            continue;
        }
        if (o + 1 >= cap)
            return SK_POLICY_PATH_TOO_LONG;
        out[o++] = (char)c;
        i++;
    }
    *olen = o;
    return SK_POLICY_PATH_OK;
}

/* "remove the last segment and its preceding '/' (if any) from the output";
 * with nothing left to remove, the path climbs above the root. */
static int pop_segment(const char *buf, size_t *o)
{
    if (*o == 0)
        return -1;
    while (*o > 0 && buf[*o - 1] != '/')
        (*o)--;
    if (*o > 0)
        (*o)--;
    return 0;
}

static int starts(const char *p, size_t rem, const char *lit, size_t n, int whole)
{
    return whole ? rem == n && memcmp(p, lit, n) == 0 : rem >= n && memcmp(p, lit, n) == 0;
}

/* Step 2: RFC 3986 5.2.4 remove_dot_segments, literally (rules A to E), in place:
 * the output never grows past the input position. Empty segments are kept, as
 * the RFC keeps them: "/a//../b" is "/a/b". */
static sk_policy_path_err remove_dot_segments(char *buf, size_t len, size_t *olen)
{
    size_t i = 0, o = 0;

    while (i < len) {
        const char *in = buf + i;
        size_t rem = len - i, n;
        if (starts(in, rem, "../", 3, 0)) {                 /* A */
            i += 3;
        } else if (starts(in, rem, "./", 2, 0)) {
            i += 2;
        } else if (starts(in, rem, "/./", 3, 0)) {          /* B */
            i += 2;
        } else if (starts(in, rem, "/.", 2, 1)) {
            i += 1;
            buf[i] = '/';
        } else if (starts(in, rem, "/../", 4, 0)) {         /* C */
            if (pop_segment(buf, &o) != 0)
                return SK_POLICY_PATH_ESCAPES_ROOT;
            i += 3;
        } else if (starts(in, rem, "/..", 3, 1)) {
            if (pop_segment(buf, &o) != 0)
                return SK_POLICY_PATH_ESCAPES_ROOT;
            i += 2;
            buf[i] = '/';
        } else if (starts(in, rem, ".", 1, 1) || starts(in, rem, "..", 2, 1)) { /* D */
            i = len;
        } else {                                            /* E */
            n = in[0] == '/' ? 1 : 0;
            while (n < rem && in[n] != '/')
                n++;
            memmove(buf + o, in, n);
            o += n;
            i += n;
        }
    }
    *olen = o;
    return SK_POLICY_PATH_OK;
}

sk_policy_path_err sk_policy_path_normalize(const char *in, size_t len, char *out, size_t cap, size_t *out_len)
{
    sk_policy_path_err err = SK_POLICY_PATH_OK;
    size_t o = 0;

    if (out == NULL || cap == 0)
        return SK_POLICY_PATH_TOO_LONG;
    out[0] = '\0';
    if (in == NULL || len == 0) {
        err = SK_POLICY_PATH_EMPTY;
        goto out;
    }
    if (in[0] != '/') {
        err = SK_POLICY_PATH_NOT_ABSOLUTE;
        goto out;
    }
    err = pct_normalize((const unsigned char *)in, len, out, cap, &o);
    if (err == SK_POLICY_PATH_OK)
        err = remove_dot_segments(out, o, &o);
    if (err != SK_POLICY_PATH_OK)
        goto out;
    out[o] = '\0';
    if (out_len != NULL)
        *out_len = o;
out:
    if (err != SK_POLICY_PATH_OK)
        out[0] = '\0';
    return err;
}

int sk_policy_path_has_empty_segment(const char *path, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++)
        if (path[i] == '/' && path[i + 1] == '/')
            return 1;
    return 0;
}

/* ---- rules --------------------------------------------------------------- */

static int bytes_equal(const char *a, const char *b, size_t n, unsigned flags)
{
    size_t i;

    if (!(flags & SK_POLICY_PATH_ICASE))
        return memcmp(a, b, n) == 0;
    for (i = 0; i < n; i++)
        if (skp_lower((unsigned char)a[i]) != skp_lower((unsigned char)b[i]))
            return 0;
    return 1;
}

/* The length of a segment as IIS/Windows resolve it: trailing dots and spaces
 * (raw or as %20; '.' arrives decoded) do not count. */
static size_t trimmed_len(const char *seg, size_t n)
{
    for (;;) {
        if (n > 0 && (seg[n - 1] == '.' || seg[n - 1] == ' '))
            n--;
        else if (n >= 3 && memcmp(seg + n - 3, "%20", 3) == 0)
            n -= 3;
        else
            return n;
    }
}

/* Segment-wise match for SK_POLICY_PATH_TRIM: every segment of the prefix must
 * equal the path's segment at the same place after trimming both. */
static int match_trimmed(const char *prefix, size_t plen, const char *path, size_t len, unsigned flags)
{
    size_t pi = 0, qi = 0;
    while (pi < plen) {
        size_t ps, qs, pn, qn;
        if (prefix[pi] != '/' || qi >= len || path[qi] != '/')
            return 0;
        pi++;
        qi++;
        for (ps = pi; pi < plen && prefix[pi] != '/'; pi++)
            ;
        for (qs = qi; qi < len && path[qi] != '/'; qi++)
            ;
        pn = trimmed_len(prefix + ps, pi - ps);
        qn = trimmed_len(path + qs, qi - qs);
        if (pn != qn || !bytes_equal(prefix + ps, path + qs, pn, flags))
            return 0;
    }
    return 1;
}

/* Length of the rule prefix that must match, or (size_t)-1 when it does not
 * match path. A trailing '/' is not part of the comparison; "/" matches all. */
static size_t rule_match(const char *prefix, const char *path, size_t len, unsigned flags)
{
    size_t plen = strlen(prefix);

    while (plen > 0 && prefix[plen - 1] == '/')
        plen--;
    if (plen == 0)
        return 0;
    if (flags & SK_POLICY_PATH_TRIM)
        return match_trimmed(prefix, plen, path, len, flags) ? plen : (size_t)-1;
    if (plen > len || !bytes_equal(prefix, path, plen, flags))
        return (size_t)-1;
    if (plen < len && path[plen] != '/')
        return (size_t)-1;              /* "/admin" vs "/administrator" */
    return plen;
}

int sk_policy_path_allowed(const sk_policy_path_rule *rules, size_t n, const char *path, size_t len,
                           unsigned roles, unsigned flags)
{
    const sk_policy_path_rule *best = NULL;
    size_t best_len = 0, i;

    if (path == NULL)
        return 0;
    for (i = 0; i < n; i++) {
        size_t m;
        if (rules[i].prefix == NULL)
            continue;
        m = rule_match(rules[i].prefix, path, len, flags);
        if (m == (size_t)-1)
            continue;
        if (best == NULL || m > best_len) {
            best = &rules[i];
            best_len = m;
        }
    }
    if (best == NULL)
        return 1;
    return (best->roles & roles) != 0;
}

int sk_policy_path_rules_validate(const sk_policy_path_rule *rules, size_t n, size_t *bad)
{
    char buf[1024];
    size_t i, plen, olen;

    for (i = 0; i < n; i++) {
        if (rules[i].prefix == NULL)
            goto fail;
        plen = strlen(rules[i].prefix);
        if (sk_policy_path_normalize(rules[i].prefix, plen, buf, sizeof(buf), &olen) != SK_POLICY_PATH_OK)
            goto fail;
        if (olen != plen || memcmp(buf, rules[i].prefix, plen) != 0 ||
            sk_policy_path_has_empty_segment(rules[i].prefix, plen))
            goto fail;
    }
    return 0;
fail:
    if (bad != NULL)
        *bad = i;
    return -1;
}
