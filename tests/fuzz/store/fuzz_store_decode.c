/*
 * libFuzzer target for the store's record codec: sk_store_user_decode and
 * sk_store_session_decode on arbitrary bytes. The first input byte picks the
 * decoder; the rest is the record. Properties checked beyond "no crash":
 *  - a rejected record leaves the output zeroed (never half-decoded);
 *  - an accepted record re-encodes, and decoding that gives the same struct
 *    (for sessions, the exact input bytes: there is only one version).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sk_store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t buf[SK_USER_RECORD_MAX];
    size_t len = 0;

    if (size < 1)
        return 0;
    const uint8_t *rec = data + 1;
    size_t n = size - 1;
    if (data[0] & 1) {
        static sk_session a, b;
        if (sk_store_session_decode(rec, n, &a) != 0) {
            if (!all_zero(&a, sizeof a))
                abort();
            return 0;
        }
        if (sk_store_session_encode(&a, buf, sizeof buf, &len) != 0)
            abort();
        if (len != n || memcmp(buf, rec, n) != 0)
            abort();
        if (sk_store_session_decode(buf, len, &b) != 0 || memcmp(&a, &b, sizeof a) != 0)
            abort();
    } else {
        static sk_user a, b;
        if (sk_store_user_decode(rec, n, &a) != 0) {
            if (!all_zero(&a, sizeof a))
                abort();
            return 0;
        }
        if (sk_store_user_encode(&a, buf, sizeof buf, &len) != 0)
            abort();
        if (sk_store_user_decode(buf, len, &b) != 0 || memcmp(&a, &b, sizeof a) != 0)
            abort();
    }
    return 0;
}
