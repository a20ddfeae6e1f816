/*
 * libFuzzer target: the Cookie parser (issue 13 item 6). Invariants: what the
 * stripper forwards never mentions the session cookie's name in any case; when
 * the session lookup takes exactly one token, the forwarded pairs do not carry
 * it in a pair of that name.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sk_req.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char hdr[4096], out[8192];
    sk_req_session_cookie f = { NULL, 0, 0 };
    sk_buf b;
    int first = 1;
    const size_t k = sizeof SK_REQ_COOKIE_NAME - 1;

    if (size >= sizeof hdr || memchr(data, 0, size) != NULL)
        return 0;
    memcpy(hdr, data, size);
    hdr[size] = '\0';
    sk_req_cookie_find_session(hdr, &f);
    if (f.count > 0 && (f.value < hdr || f.value + f.len > hdr + size))
        abort();
    sk_buf_init(&b, out, sizeof out);
    sk_req_cookie_strip(hdr, &b, &first);
    if (sk_buf_finish(&b) != 0)
        abort(); /* the output is never longer than the input */
    for (size_t i = 0; !first && i + k <= b.len; i++)
        if (strncasecmp(out + i, SK_REQ_COOKIE_NAME, k) == 0)
            abort();
    return 0;
}
