/*
 * libFuzzer target: request-target split, audit path, return path, query
 * decoding (issue 13 items 2 and 5). Invariants: an accepted path is printable
 * ASCII, starts with '/', has no empty, "." or ".." segment and is its own
 * normal form (what is forwarded is what the rules judged); the audit path never
 * holds the query and always fits; a return path stays on the site.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sk_req.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int has_dot_segment(const char *p)
{
    for (const char *s = p; (s = strchr(s, '/')) != NULL; s++) {
        size_t n = strcspn(s + 1, "/");
        if ((n == 1 && s[1] == '.') || (n == 2 && s[1] == '.' && s[2] == '.'))
            return 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char in[4096], path[SK_REQ_PATH_MAX], again[SK_REQ_PATH_MAX], audit[64], dec[256];
    const char *q = NULL, *ret;
    size_t alen = 0;
    int st;

    if (size >= sizeof in || memchr(data, 0, size) != NULL)
        return 0;
    memcpy(in, data, size);
    in[size] = '\0';
    st = sk_req_target_split(in, path, sizeof path, &q);
    if (st == 0) {
        if (path[0] != '/' || !sk_req_target_clean(path) || strstr(path, "//") != NULL || has_dot_segment(path) ||
            sk_policy_path_normalize(path, strlen(path), again, sizeof again, &alen) != SK_POLICY_PATH_OK ||
            strcmp(again, path) != 0)
            abort();
        if (q != NULL && (q < in || q > in + size || q[-1] != '?'))
            abort();
    } else if ((st != 400 && st != 414) || path[0] != '\0') {
        abort();
    }
    sk_req_audit_path(in, audit, sizeof audit);
    if (strlen(audit) >= sizeof audit || strchr(audit, '?') != NULL)
        abort();
    ret = sk_req_return_path(in);
    if (ret[0] != '/' || ret[1] == '/' || ret[1] == '\\' || strchr(ret, '\\') != NULL)
        abort();
    if (sk_req_pct_decode(in, dec, sizeof dec) == 0 && strlen(dec) >= sizeof dec)
        abort();
    return 0;
}
