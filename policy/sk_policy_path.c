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

sk_policy_path_err sk_policy_path_normalize(const char *in, size_t len, char *out, size_t cap, size_t *out_len)
{
    static const char hexd[] = "0123456789ABCDEF";
    const unsigned char *s = (const unsigned char *)in;
    sk_policy_path_err err = SK_POLICY_PATH_OK;
    size_t i = 1, o = 1;

    if (out == NULL || cap == 0)
        return SK_POLICY_PATH_TOO_LONG;
    out[0] = '\0';
    if (in == NULL || len == 0) {
        err = SK_POLICY_PATH_EMPTY;
        goto out;
    }
    if (s[0] != '/') {
        err = SK_POLICY_PATH_NOT_ABSOLUTE;
        goto out;
    }
    if (cap < 2) {
        err = SK_POLICY_PATH_TOO_LONG;
        goto out;
    }
    out[0] = '/';
    /* Invariant: out[0..o) is normalised and ends with '/'. */
    while (i < len) {
        size_t seg = o;

        /* Copy one segment, decoding unreserved escapes. */
        while (i < len && s[i] != '/') {
            unsigned char c = s[i];
            int cls = raw_class(c);
            if (cls == C_BAD) {
                err = SK_POLICY_PATH_BAD_CHAR;
                goto out;
            }
            if (cls == C_PCT) {
                int hi, lo;
                unsigned char d;
                if (len - i < 3 || (hi = hexv(s[i + 1])) < 0 || (lo = hexv(s[i + 2])) < 0) {
                    err = SK_POLICY_PATH_BAD_ESCAPE;
                    goto out;
                }
                d = (unsigned char)(hi * 16 + lo);
                if (d == '/' || d == '\\') {
                    err = SK_POLICY_PATH_ENCODED_SLASH;
                    goto out;
                }
                if (d == 0) {
                    err = SK_POLICY_PATH_ENCODED_NUL;
                    goto out;
                }
                i += 3;
                if (is_unreserved(d)) {
                    if (o + 1 >= cap) {
                        err = SK_POLICY_PATH_TOO_LONG;
                        goto out;
                    }
                    out[o++] = (char)d;
                } else {
                    if (o + 3 >= cap) {
                        err = SK_POLICY_PATH_TOO_LONG;
                        goto out;
                    }
                    out[o++] = '%';
                    out[o++] = hexd[d >> 4];
                    out[o++] = hexd[d & 0xF];
                }
                continue;
            }
            if (o + 1 >= cap) {
                err = SK_POLICY_PATH_TOO_LONG;
                goto out;
            }
            out[o++] = (char)c;
            i++;
        }
        /* s[i] is '/' or the end. */
        if (o - seg == 1 && out[seg] == '.') {
            o = seg;                    /* "." : drop */
        } else if (o - seg == 2 && out[seg] == '.' && out[seg + 1] == '.') {
            if (seg == 1) {
                err = SK_POLICY_PATH_ESCAPES_ROOT;
                goto out;
            }
            /* Drop ".." and the segment before it: back to the '/' preceding it. */
            o = seg - 1;
            while (o > 0 && out[o - 1] != '/')
                o--;
        } else if (o > seg && i < len) {
            if (o + 1 >= cap) {
                err = SK_POLICY_PATH_TOO_LONG;
                goto out;
            }
            out[o++] = '/';
        }
        /* An empty segment ("//" or the trailing "/") adds nothing. */
        if (i < len)
            i++;
    }
    out[o] = '\0';
    if (out_len != NULL)
        *out_len = o;
out:
    if (err != SK_POLICY_PATH_OK)
        out[0] = '\0';
    return err;
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

/* Length of the rule prefix that must match, or (size_t)-1 when it does not
 * match path. A trailing '/' is not part of the comparison; "/" matches all. */
static size_t rule_match(const char *prefix, const char *path, size_t len, unsigned flags)
{
    size_t plen = strlen(prefix);

    while (plen > 0 && prefix[plen - 1] == '/')
        plen--;
    if (plen == 0)
        return 0;
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
        if (olen != plen || memcmp(buf, rules[i].prefix, plen) != 0)
            goto fail;
    }
    return 0;
fail:
    if (bad != NULL)
        *bad = i;
    return -1;
}
