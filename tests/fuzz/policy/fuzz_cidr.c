/*
 * libFuzzer target: the CIDR / address parser and formatter.
 * Besides "no crash", it checks invariants: whatever parses formats back to text
 * that parses to the same value (round trip), host bits are zero, the prefix is
 * in range, and matching the network address against its own network succeeds.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sk_policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    sk_policy_cidr c, c2;
    sk_policy_addr a, a2;
    char buf[SK_POLICY_CIDR_STRLEN];

    if (sk_policy_cidr_parse(s, size, &c) == SK_POLICY_CIDR_OK) {
        unsigned max = c.addr.family == SK_POLICY_AF_INET4 ? 32 : 128;
        if (c.prefix > max)
            abort();
        if (sk_policy_cidr_format(&c, buf, sizeof(buf)) != 0)
            abort();
        if (sk_policy_cidr_parse(buf, strlen(buf), &c2) != SK_POLICY_CIDR_OK)
            abort();
        if (memcmp(&c.addr, &c2.addr, sizeof(c.addr)) != 0 || c.prefix != c2.prefix)
            abort();
        if (!sk_policy_cidr_match(&c, &c.addr))
            abort();
        {
            const sk_policy_cidr_list l = { &c, 1 };
            if (!sk_policy_ip_allowed(&l, NULL, &l, &c.addr))
                abort();
        }
    }
    if (sk_policy_addr_parse(s, size, &a) == SK_POLICY_CIDR_OK) {
        if (sk_policy_addr_format(&a, buf, sizeof(buf)) != 0)
            abort();
        if (sk_policy_addr_parse(buf, strlen(buf), &a2) != SK_POLICY_CIDR_OK)
            abort();
        if (memcmp(&a, &a2, sizeof(a)) != 0)
            abort();
    }
    /* Raw bytes as an address: formatter must cope with anything. */
    if (size == 4 || size == 16) {
        if (sk_policy_addr_from_bytes(&a, data, size) != 0)
            abort();
        if (sk_policy_addr_format(&a, buf, sizeof(buf)) != 0)
            abort();
        if (sk_policy_addr_parse(buf, strlen(buf), &a2) != SK_POLICY_CIDR_OK || memcmp(&a, &a2, sizeof(a)) != 0)
            abort();
    }
    return 0;
}
