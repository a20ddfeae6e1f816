/*
 * libFuzzer target: the upstream head builder. The input is a list of client
 * headers "name\0value\0..." plus a path and query in the first two fields.
 * Invariants on every head built: CR only in CRLF, LF only after CR, no other
 * CTL but HTAB, the request line and the gateway's identity exactly once, and
 * no client header of a stripped family.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sk_req.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const char *h, size_t n)
{
    size_t users = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)h[i];
        if ((c == '\r' && (i + 1 >= n || h[i + 1] != '\n')) || (c == '\n' && (i == 0 || h[i - 1] != '\r')) ||
            (c < 0x20 && c != '\r' && c != '\n' && c != '\t') || c == 0x7f)
            abort();
    }
    for (const char *l = strstr(h, "\r\n") + 2; l < h + n && *l != '\r'; l = strstr(l, "\r\n") + 2) {
        char name[SK_REQ_NAME_MAX + 1], folded[SK_REQ_NAME_MAX + 1];
        size_t nl = strcspn(l, ":");
        if (nl >= sizeof name)
            abort();
        memcpy(name, l, nl);
        name[nl] = '\0';
        if (sk_req_hdr_fold(name, folded, sizeof folded) != 0)
            abort();
        if (strcmp(folded, "x-sekisho-user") == 0)
            users++;
        /* Only the gateway's own lines may carry a dropped name. */
        if (sk_req_hdr_request_drop(folded) && strncmp(l, "Host: ", 6) != 0 && strncmp(l, "X-Sekisho-", 10) != 0 &&
            strncmp(l, "X-Forwarded-", 12) != 0 && strncmp(l, "Content-Length: ", 16) != 0 &&
            strncmp(l, "Transfer-Encoding: chunked", 26) != 0 && strncmp(l, "Connection: ", 12) != 0 &&
            strncmp(l, "Upgrade: websocket", 18) != 0)
            abort();
    }
    if (users != 1)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char mem[16384];
    static sk_req_head hd;
    char in[4096];
    const char *f[64];
    size_t nf = 0, len = 0;
    sk_req_upstream u = { 0 };

    if (size >= sizeof in)
        return 0;
    memcpy(in, data, size);
    in[size] = '\0';
    f[nf++] = in;
    for (size_t i = 0; i < size && nf < 64; i++)
        if (in[i] == '\0')
            f[nf++] = in + i + 1;
    u.method = "GET";
    u.prefix = "";
    u.path = f[0];
    u.query = nf > 1 && f[1][0] ? f[1] : NULL;
    u.host = "portal.test";
    u.forwarded_host = nf % 2 ? "portal.test" : NULL;
    u.user = "bob";
    u.tenant = "acme";
    u.roles = "general";
    u.serial = "01";
    u.peer = "127.0.0.1";
    u.conn_tokens = nf > 2 ? f[2] : NULL;
    u.body = (enum sk_req_body)(size % 3);
    u.upgrade = size % 5 == 0;
    sk_req_head_begin(&hd, mem, sizeof mem, &u);
    for (size_t i = 2; i + 1 < nf; i += 2)
        sk_req_head_client(&hd, f[i], f[i + 1]);
    if (sk_req_head_finish(&hd, &len) == 0)
        check(mem, len);
    return 0;
}
