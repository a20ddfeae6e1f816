/* libFuzzer target: base64url and hex. Whatever decodes must re-encode to exactly
 * the input (one spelling per value), and every byte string must round-trip. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sk_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXIN 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t bytes[MAXIN + 2];
    static char text[SK_B64URL_LEN(MAXIN + 2) + 2 * (MAXIN + 2) + 1];
    size_t guess;

    if (size > MAXIN)
        return 0;
    /* Decode the input as text for the byte count it implies and its neighbours. */
    guess = size * 3 / 4;
    for (size_t n = guess > 0 ? guess - 1 : 0; n <= guess + 1; n++) {
        if (sk_b64url_decode((const char *)data, size, bytes, n) != 0)
            continue;
        if (SK_B64URL_LEN(n) != size)
            __builtin_trap();
        sk_b64url_encode(bytes, n, text);
        if (strlen(text) != size || memcmp(text, data, size) != 0)
            __builtin_trap();
    }
    /* Encode the input as bytes, decode it back. */
    sk_b64url_encode(data, size, text);
    if (strlen(text) != SK_B64URL_LEN(size) || sk_b64url_decode(text, strlen(text), bytes, size) != 0 ||
        memcmp(bytes, data, size) != 0)
        __builtin_trap();
    sk_hex_encode(data, size, text);
    if (sk_hex_decode(text, bytes, size) != 0 || memcmp(bytes, data, size) != 0)
        __builtin_trap();
    /* Hex decode of the input as text must not read past it. */
    if (size > 0 && data[size - 1] == '\0')
        (void)!sk_hex_decode((const char *)data, bytes, (size - 1) / 2);
    return 0;
}
