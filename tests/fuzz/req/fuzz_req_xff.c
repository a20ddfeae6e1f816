/*
 * libFuzzer target: X-Forwarded-For trust. Invariants: an untrusted peer's
 * header never changes the address; from a trusted peer the result is either
 * the peer or an address that appears in the chain.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sk_req.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static sk_policy_cidr tp[2];
    static int ready;
    sk_policy_cidr_list trusted = { tp, 2 };
    sk_policy_addr peer, stranger, out;
    char xff[2048];

    if (!ready) {
        if (sk_policy_cidr_parse("10.0.0.0/8", 10, &tp[0]) != SK_POLICY_CIDR_OK ||
            sk_policy_cidr_parse("2001:db8::/32", 13, &tp[1]) != SK_POLICY_CIDR_OK)
            abort();
        ready = 1;
    }
    if (size >= sizeof xff || memchr(data, 0, size) != NULL)
        return 0;
    memcpy(xff, data, size);
    xff[size] = '\0';
    if (sk_policy_addr_parse("10.1.2.3", 8, &peer) != SK_POLICY_CIDR_OK ||
        sk_policy_addr_parse("192.0.2.1", 9, &stranger) != SK_POLICY_CIDR_OK)
        abort();
    if (sk_req_client_addr(&trusted, &stranger, xff, &out) != 0 || memcmp(&out, &stranger, sizeof out) != 0)
        abort();
    (void)sk_req_client_addr(&trusted, &peer, xff, &out);
    return 0;
}
