/* sk_req header names: folding and the one strip table. See sk_req.h. */
#include <string.h>
#include <strings.h>

#include "sk_req.h"

int sk_req_hdr_fold(const char *name, char *out, size_t cap)
{
    size_t i;
    for (i = 0; name[i]; i++) {
        char c = name[i];
        if (i + 1 >= cap)
            return -1;
        out[i] = (c == '_' || c == '.') ? '-' : (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    if (cap == 0)
        return -1;
    out[i] = '\0';
    return 0;
}

/* What never passes from the client to the upstream, matched on folded names.
 * A family is a prefix ending in '-' or a name that also covers its '-' suffixes
 * (PREFIX). Keep it one table: the unit tests and the fuzzer read it through
 * sk_req_hdr_request_drop only. */
enum { EXACT, PREFIX };
static const struct {
    const char *name;
    int kind;
} request_drop[] = {
    /* hop-by-hop and framing: the gateway writes its own */
    { "connection", EXACT }, { "keep-alive", EXACT }, { "proxy-connection", EXACT }, { "te", EXACT },
    { "trailer", EXACT }, { "transfer-encoding", EXACT }, { "upgrade", EXACT }, { "expect", EXACT },
    { "content-length", EXACT }, { "host", EXACT }, { "http2-settings", EXACT },
    { "proxy-", PREFIX },                   /* proxy-authorization, -authenticate, ... */
    /* the gateway's own identity headers */
    { "x-sekisho", PREFIX },
    /* forwarding: only the gateway states where a request came from */
    { "forwarded", PREFIX },                /* Forwarded, Forwarded-For, ... */
    { "x-forwarded", PREFIX },              /* X-Forwarded, -For, -Host, -User, -Proto, ... */
    { "x-original", PREFIX },               /* -URL, -URI, -Host, -Forwarded-For, -Method */
    { "x-rewrite", PREFIX },                /* X-Rewrite-URL (IIS URL Rewrite, Symfony, Zend) */
    { "x-real-ip", EXACT }, { "x-client-", PREFIX }, { "client-ip", EXACT }, { "true-client-ip", EXACT },
    { "x-cluster-client-ip", EXACT }, { "x-originating-ip", EXACT }, { "x-remote-", PREFIX },
    { "cf-connecting-ip", EXACT }, { "fastly-client-ip", EXACT }, { "x-proxyuser-ip", EXACT },
    { "x-envoy-", PREFIX }, { "x-host", EXACT }, { "x-url-scheme", EXACT }, { "x-scheme", EXACT },
    { "front-end-https", EXACT }, { "x-arr-", PREFIX },
    /* identity asserted by an authenticating proxy */
    { "remote-user", EXACT }, { "remote-addr", EXACT }, { "x-user", PREFIX }, { "x-auth-user", EXACT },
    { "x-auth-request-", PREFIX }, { "x-authenticated-", PREFIX }, { "x-webauth-", PREFIX },
    { "x-ms-client-principal", PREFIX }, { "x-ssl-", PREFIX }, { "ssl-client-", PREFIX },
    /* method override: the method the rules saw is the one that runs */
    { "x-http-method", PREFIX }, { "x-method-override", EXACT },
};

int sk_req_hdr_request_drop(const char *folded)
{
    for (size_t i = 0; i < sizeof request_drop / sizeof request_drop[0]; i++) {
        const char *n = request_drop[i].name;
        size_t len;
        if (n[0] != folded[0])
            continue; /* every header of every request comes here: most differ at once */
        len = strlen(n);
        if (request_drop[i].kind == EXACT) {
            if (strcmp(folded, n) == 0)
                return 1;
        } else if (strncmp(folded, n, len) == 0 &&
                   (n[len - 1] == '-' || folded[len] == '\0' || folded[len] == '-')) {
            return 1;
        }
    }
    return 0;
}

int sk_req_hdr_response_drop(const char *folded)
{
    static const char *const drop[] = {
        "connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
        "content-length", "proxy-authenticate",
    };
    for (size_t i = 0; i < sizeof drop / sizeof drop[0]; i++)
        if (strcmp(folded, drop[i]) == 0)
            return 1;
    return 0;
}

int sk_req_hdr_in_tokens(const char *folded, const char *tokens)
{
    size_t n = strlen(folded);
    const char *p = tokens;
    while (p && *p) {
        const char *end;
        while (*p == ' ' || *p == ',' || *p == '\t')
            p++;
        end = p;
        while (*end && *end != ',' && *end != ' ' && *end != '\t')
            end++;
        if ((size_t)(end - p) == n && n > 0) {
            char tok[SK_REQ_NAME_MAX];
            char raw[SK_REQ_NAME_MAX];
            if (n < sizeof raw) {
                memcpy(raw, p, n);
                raw[n] = '\0';
                if (sk_req_hdr_fold(raw, tok, sizeof tok) == 0 && strcmp(tok, folded) == 0)
                    return 1;
            }
        }
        p = end;
    }
    return 0;
}
