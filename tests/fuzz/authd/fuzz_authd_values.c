/*
 * libFuzzer target for authd's shared values as read back from the store. The
 * first byte picks the decoder; the rest is the stored value.
 *  - burst history: a rejected value leaves an empty history; an accepted one
 *    re-encodes to the input bytes less the times outside the window (with the
 *    widest window, only a time of 0 next to INT64_MAX), exactly.
 *  - ticket key list: never reads out of bounds; accepted only with 1..3 keys
 *    (with a fixed key, random bytes fail at the AEAD; the walk before it is what
 *    is exercised, and seeds sealed with that key reach past it).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "authd_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* authd.c is not part of the target; its clock is not needed by the decoders. */
int64_t authd_now(void)
{
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static sk_policy_burst b;
    static uint8_t out[SK_STORE_VALUE_MAX];
    static sk_wire_keys_rep keys;
    static const uint8_t seal_key[SK_AUTH_TOTP_KEY_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    int64_t created[SK_WIRE_TICKET_KEYS_MAX];

    if (size < 1 || size - 1 > SK_STORE_VALUE_MAX)
        return 0;
    if (data[0] & 1) {
        memset(&keys, 0, sizeof keys);
        if (authd_tickets_parse(seal_key, data + 1, size - 1, &keys, created) == 0 &&
            (keys.n_tickets < 1 || keys.n_tickets > SK_WIRE_TICKET_KEYS_MAX))
            abort();
        return 0;
    }
    if (authd_burst_decode(data + 1, size - 1, &b) != 0) {
        if (b.count != 0 || b.alarmed != 0)
            abort();
        return 0;
    }
    {
        /* The window is as wide as int64 allows, yet a time of 0 with the newest at
         * INT64_MAX is still exactly one window old and rightly dropped: the output
         * is the input without the times the window excludes, nothing else. */
        sk_policy_config pol;
        int64_t newest = INT64_MIN;
        uint32_t kept = 0;
        size_t n;
        sk_policy_defaults(&pol);
        pol.burst_window = INT64_MAX;
        for (uint32_t i = 0; i < b.count; i++)
            if (b.ts[i] > newest)
                newest = b.ts[i];
        for (uint32_t i = 0; i < b.count; i++)
            if (newest - b.ts[i] < pol.burst_window) /* decode refuses negative times */
                kept++;
        n = authd_burst_encode(&pol, &b, b.count ? newest : 0, out, sizeof out);
        if (n != 12 + 8 * (size_t)kept || memcmp(out, data + 1, 10) != 0)
            abort();
        if (kept == b.count && memcmp(out, data + 1, n) != 0)
            abort();
    }
    return 0;
}
