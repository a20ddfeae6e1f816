/*
 * libFuzzer target: the path normaliser and the rule matcher.
 * Invariants checked on success: the output starts with '/', is no longer than
 * the input, contains no "." or ".." segment, no '\\' or ';', no "//" unless the
 * input had one (RFC 3986 keeps empty segments), and normalising it again yields
 * the same bytes (idempotence).
 */
#define _GNU_SOURCE /* memmem */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sk_policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int has_dot_segment(const char *p, size_t n)
{
    size_t i = 0;

    while (i < n) {
        size_t j;
        i++; /* skip '/' */
        j = i;
        while (j < n && p[j] != '/')
            j++;
        if ((j - i == 1 && p[i] == '.') || (j - i == 2 && p[i] == '.' && p[i + 1] == '.'))
            return 1;
        i = j;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const sk_policy_path_rule rules[] = {
        { "/", SK_POLICY_ROLE_ALL }, { "/admin", SK_POLICY_ROLE_ADMIN }, { "/admin/pub/", SK_POLICY_ROLE_ALL },
    };
    char out[4096], again[4096];
    size_t olen = 0, alen = 0;
    sk_policy_path_err e;

    if (size >= sizeof(out))
        return 0;
    /* Small caps exercise the bounds checks. */
    {
        char tiny[8];
        size_t cap = size == 0 ? 1 : (data[0] % sizeof(tiny)) + 1;
        e = sk_policy_path_normalize((const char *)data, size, tiny, cap, &olen);
        if (tiny[0] != '\0' && e != SK_POLICY_PATH_OK)
            abort();
    }
    e = sk_policy_path_normalize((const char *)data, size, out, sizeof(out), &olen);
    if (e != SK_POLICY_PATH_OK) {
        if (out[0] != '\0')
            abort();
        return 0;
    }
    if (olen == 0 || out[0] != '/' || olen > size || strlen(out) != olen)
        abort();
    if ((sk_policy_path_has_empty_segment(out, olen) && memmem(data, size, "//", 2) == NULL) ||
        memchr(out, '\\', olen) != NULL || memchr(out, ';', olen) != NULL)
        abort();
    if (has_dot_segment(out, olen))
        abort();
    if (sk_policy_path_normalize(out, olen, again, sizeof(again), &alen) != SK_POLICY_PATH_OK || alen != olen ||
        memcmp(out, again, olen) != 0)
        abort();
    /* A general user never reaches /admin (outside /admin/pub). */
    if (sk_policy_path_allowed(rules, 3, out, olen, SK_POLICY_ROLE_GENERAL, 0) &&
        (strcmp(out, "/admin") == 0 || (strncmp(out, "/admin/", 7) == 0 && strncmp(out, "/admin/pub", 10) != 0)))
        abort();
    if (sk_policy_path_allowed(rules, 3, out, olen, SK_POLICY_ROLE_GENERAL, 0) &&
        strncmp(out, "/admin/pub", 10) == 0 && out[10] != '\0' && out[10] != '/')
        abort();
    return 0;
}
