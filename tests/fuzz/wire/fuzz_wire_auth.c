/*
 * libFuzzer target for every authd message decoder (requests, which authd decodes
 * from the untrusted network workers, and replies, which the workers decode).
 * Input: byte 0 picks the type, byte 1 bit 0 the direction, the rest is the payload.
 * Properties beyond "no crash":
 *  - a rejected payload leaves the output struct all zero;
 *  - an accepted payload re-encodes to exactly the same bytes (the encoding is
 *    canonical, so two readings of one message cannot differ);
 *  - a LOOKUP reply never yields a password hash or a sealed secret.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sk_wire_auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint16_t types[] = {
    SK_WIRE_AUTH_LOOKUP, SK_WIRE_AUTH_LOGIN, SK_WIRE_AUTH_PWCHANGE, SK_WIRE_AUTH_SESSION_END,
    SK_WIRE_AUTH_SESSION_TOUCH, SK_WIRE_AUTH_TOTP_BEGIN, SK_WIRE_AUTH_TOTP_PENDING, SK_WIRE_AUTH_TOTP_CONFIRM,
    SK_WIRE_AUTH_ACTIVATION_VALID, SK_WIRE_AUTH_ACTIVATE, SK_WIRE_AUTH_CENSUS, SK_WIRE_AUTH_KEYS,
};

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
    static union {
        sk_wire_lookup_rep lookup;
        sk_wire_login_req login;
        sk_wire_activate_req act;
        uint8_t raw[sizeof(sk_wire_lookup_rep) + sizeof(sk_wire_login_req) + sizeof(sk_wire_activate_req)];
    } out;
    static uint8_t again[SK_WIRE_MAX];
    uint16_t type;
    int reply;
    size_t sz;
    sk_wire_w w;

    if (size < 2)
        return 0;
    type = types[data[0] % (sizeof types / sizeof types[0])];
    reply = data[1] & 1;
    sz = sk_wire_auth_size(type, reply);
    if (sz == 0 || sz > sizeof out.raw)
        abort();
    if (sk_wire_auth_decode(type, reply, data + 2, size - 2, &out) != 0) {
        if (!all_zero(&out, sz))
            abort();
        return 0;
    }
    sk_wire_w_init(&w, again, sizeof again);
    if (sk_wire_auth_encode(type, reply, &out, &w) != 0 || w.len != size - 2 || memcmp(again, data + 2, w.len) != 0)
        abort();
    if (type == SK_WIRE_AUTH_LOOKUP && reply &&
        (out.lookup.user.pw_hash[0] != '\0' || out.lookup.user.totp_secret_len != 0 ||
         out.lookup.user.totp_pending_len != 0 || !all_zero(out.lookup.user.activation_hash, 32)))
        abort();
    return 0;
}
