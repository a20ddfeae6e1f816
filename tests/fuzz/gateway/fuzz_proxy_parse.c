/* libFuzzer target: the upstream response parser. The first byte chooses HEAD or
 * not, whether the stream ends with EOF, and (with the second and third) where the
 * rest is split into up to three feeds, as recv() would. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sk_proxy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sk_proxy_req *r;
    size_t cut[4], n;
    int is_head, eof, rc = 0;
    char body[4096];

    if (size < 3)
        return 0;
    is_head = data[0] & 1;
    eof = (data[0] >> 1) & 1;
    n = size - 3;
    cut[0] = 0;
    cut[1] = n ? data[1] * n / 255 : 0;
    cut[2] = n ? data[2] * n / 255 : 0;
    if (cut[2] < cut[1]) {
        size_t t = cut[1];
        cut[1] = cut[2];
        cut[2] = t;
    }
    cut[3] = n;
    data += 3;
    r = sk_proxy_req_new_detached(is_head);
    if (r == NULL)
        return 0;
    for (int i = 0; i < 3 && rc == 0; i++)
        if (cut[i + 1] > cut[i]) /* a zero-length feed means EOF */
            rc = sk_proxy_feed(r, (const char *)data + cut[i], cut[i + 1] - cut[i]);
    if (rc == 0 && eof)
        rc = sk_proxy_feed(r, NULL, 0);
    if (sk_proxy_head_complete(r)) {
        size_t count = sk_proxy_header_count(r);
        int status = sk_proxy_status(r);
        if (count > SK_PROXY_MAX_HEADERS || status < 100 || status > 999 || (status >= 100 && status < 200))
            __builtin_trap();
        for (size_t i = 0; i < count; i++) {
            const char *name = sk_proxy_header_name(r, i), *value = sk_proxy_header_value(r, i);
            if (name == NULL || value == NULL || strlen(name) + strlen(value) >= SK_PROXY_HEAD_MAX)
                __builtin_trap();
        }
        if (sk_proxy_header_name(r, count) != NULL)
            __builtin_trap();
        int64_t cl = sk_proxy_content_length(r);
        if (cl < -1)
            __builtin_trap();
        if (is_head && sk_proxy_has_body(r))
            __builtin_trap();
        for (int i = 0; i < 64; i++) {
            ssize_t got = sk_proxy_read_body(r, body, sizeof body);
            if (got <= 0)
                break;
            if ((size_t)got > sizeof body)
                __builtin_trap();
        }
    }
    sk_proxy_finish(r);
    return 0;
}
