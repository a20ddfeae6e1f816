/*
 * libFuzzer target: header-name folding, the strip table, Connection tokens.
 * Invariants: the verdict does not depend on case or on '_' / '.' for '-'; every
 * x-sekisho*, forwarded* and x-forwarded* spelling is dropped.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sk_req.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* name itself or name followed by '-' and anything */
static int family(const char *folded, const char *name)
{
    size_t n = strlen(name);
    return strncmp(folded, name, n) == 0 && (folded[n] == '\0' || folded[n] == '-');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char name[SK_REQ_NAME_MAX], variant[SK_REQ_NAME_MAX], f1[SK_REQ_NAME_MAX], f2[SK_REQ_NAME_MAX];
    const uint8_t *nul = memchr(data, 0, size);
    size_t n = nul ? (size_t)(nul - data) : size;
    int d;

    if (n >= sizeof name)
        return 0;
    memcpy(name, data, n);
    name[n] = '\0';
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        variant[i] = c == '-' ? (i % 2 ? '_' : '.') : (c >= 'a' && c <= 'z') ? (char)(c - 32) : c;
    }
    variant[n] = '\0';
    if (sk_req_hdr_fold(name, f1, sizeof f1) != 0 || sk_req_hdr_fold(variant, f2, sizeof f2) != 0)
        abort();
    d = sk_req_hdr_request_drop(f1);
    if (d != sk_req_hdr_request_drop(f2))
        abort();
    if (!d && (family(f1, "x-sekisho") || family(f1, "forwarded") || family(f1, "x-forwarded") ||
               family(f1, "x-original") || strcmp(f1, "host") == 0))
        abort();
    (void)sk_req_hdr_response_drop(f1);
    if (nul != NULL) {
        char tokens[512];
        size_t tn = size - n - 1;
        if (tn >= sizeof tokens)
            return 0;
        memcpy(tokens, nul + 1, tn);
        tokens[tn] = '\0';
        if (sk_req_hdr_in_tokens(f1, tokens) != sk_req_hdr_in_tokens(f2, tokens))
            abort();
    }
    return 0;
}
