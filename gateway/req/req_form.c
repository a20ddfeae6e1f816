/* sk_req application/x-www-form-urlencoded bodies. See sk_req.h. */
#include <string.h>

#include "sk_req.h"

/* Decode s[0..n) into out (cap bytes, NUL-terminated). NUL bytes, raw or
 * escaped, and malformed escapes are refused: a form value is a C string. */
static int decode(const char *s, size_t n, char *out, size_t cap, size_t *olen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            int hi, lo;
            if (n - i < 3 || (hi = sk_hex_digit_value(s[i + 1])) < 0 || (lo = sk_hex_digit_value(s[i + 2])) < 0)
                return -1;
            c = hi * 16 + lo;
            i += 2;
        } else if (c == '+') {
            c = ' ';
        }
        if (c == 0 || o + 1 >= cap)
            return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    *olen = o;
    return 0;
}

int sk_req_form_parse(const char *body, size_t n, sk_req_form_fn fn, void *arg)
{
    char name[64], value[SK_REQ_FORM_VALUE_MAX + 1];
    size_t i = 0, nl, vl;
    int rc = -1;

    while (i < n) {
        const char *p = body + i, *amp = memchr(p, '&', n - i), *eq;
        size_t len = amp ? (size_t)(amp - p) : n - i;
        i += len + 1;
        if (len == 0)
            continue;
        eq = memchr(p, '=', len);
        if (decode(p, eq ? (size_t)(eq - p) : len, name, sizeof name, &nl) != 0)
            goto out;
        vl = 0;
        value[0] = '\0';
        if (eq != NULL && decode(eq + 1, len - (size_t)(eq - p) - 1, value, sizeof value, &vl) != 0)
            goto out;
        if (fn(arg, name, value, vl) != 0)
            goto out;
    }
    rc = 0;
out:
    sk_wipe(value, sizeof value);
    return rc;
}
