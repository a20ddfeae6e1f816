/* sk_req request targets: the authorised path, the audit path, return paths. */
#include <string.h>

#include "sk_req.h"

int sk_req_target_split(const char *target, char *path, size_t cap, const char **query)
{
    const char *q;
    size_t n, plen = 0;

    *query = NULL;
    if (cap > 0)
        path[0] = '\0';
    if (target == NULL || target[0] != '/' || !sk_req_target_clean(target))
        return 400;
    q = strchr(target, '?');
    n = q ? (size_t)(q - target) : strlen(target);
    if (n >= cap)
        return 414;
    switch (sk_policy_path_normalize(target, n, path, cap, &plen)) {
    case SK_POLICY_PATH_OK:
        break;
    case SK_POLICY_PATH_TOO_LONG:
        return 414;
    default:
        return 400;
    }
    /* Upstreams disagree about "//" (merged or not): a path that means one thing
     * to the rules and another to the portal is refused, not guessed at. */
    if (sk_policy_path_has_empty_segment(path, plen)) {
        path[0] = '\0';
        return 400;
    }
    if (q != NULL)
        *query = q + 1;
    return 0;
}

void sk_req_audit_path(const char *target, char *out, size_t cap)
{
    static const char marker[] = "...[truncated]";
    size_t n;

    if (cap == 0)
        return;
    out[0] = '\0';
    if (target == NULL)
        return;
    /* The query goes first: it carries tokens and personal data, and it must not
     * push the path out of the record. */
    n = strcspn(target, "?");
    if (n < cap) {
        memcpy(out, target, n);
        out[n] = '\0';
        return;
    }
    if (cap < sizeof marker) {
        memcpy(out, marker, cap - 1);
        out[cap - 1] = '\0';
        return;
    }
    n = cap - sizeof marker;
    memcpy(out, target, n);
    memcpy(out + n, marker, sizeof marker);
}

const char *sk_req_return_path(const char *p)
{
    size_t n;
    if (p == NULL)
        return "/";
    n = strlen(p);
    /* One leading slash, printable ASCII only, no backslash (browsers treat
     * "/\evil" like "//evil"), and not one of the gateway's own pages. */
    if (n == 0 || n >= SK_REQ_PATH_MAX || p[0] != '/' || p[1] == '/' || p[1] == '\\' ||
        strncmp(p, "/.sekisho/", 10) == 0)
        return "/";
    for (const unsigned char *c = (const unsigned char *)p; *c; c++)
        if (*c <= 0x20 || *c >= 0x7f || *c == '\\')
            return "/";
    return p;
}

int sk_req_pct_decode(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    if (cap == 0)
        return -1;
    for (const char *p = in; *p; p++) {
        char c = *p;
        if (c == '%') {
            uint8_t v;
            char hex[3] = { p[1], p[1] ? p[2] : 0, 0 };
            if (hex[0] == 0 || hex[1] == 0 || sk_hex_decode(hex, &v, 1) != 0 || v == 0)
                return -1;
            c = (char)v;
            p += 2;
        } else if (c == '+') {
            c = ' ';
        }
        if (o + 1 >= cap)
            return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}
