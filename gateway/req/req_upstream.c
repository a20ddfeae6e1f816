/* sk_req upstream request head, from plain inputs only. See sk_req.h. */
#include <string.h>

#include "sk_req.h"

static int clean(const char *s)
{
    return s != NULL && sk_req_value_clean(s, strlen(s));
}

void sk_req_head_begin(sk_req_head *h, char *mem, size_t cap, const sk_req_upstream *u)
{
    /* field by field: zeroing the 8 KiB cookie buffer per request is not needed
     * (sk_buf writes a NUL first, and only that buffer is ever read back) */
    h->u = u;
    h->cookie_first = 1;
    h->bad = 0;
    sk_buf_init(&h->b, mem, cap);
    sk_buf_init(&h->cb, h->cookies, sizeof h->cookies);
    /* The request line carries exactly what was authorised: the normalised path
     * and the query, both printable ASCII (target_clean), never the raw target. */
    if (!sk_req_name_clean(u->method, strlen(u->method)) || !sk_req_target_clean(u->prefix) ||
        !sk_req_target_clean(u->path) || u->path[0] != '/' || (u->query != NULL && !sk_req_target_clean(u->query)) ||
        !clean(u->host) || u->host[0] == '\0' || (u->forwarded_host != NULL && !clean(u->forwarded_host))) {
        h->bad = 1;
        return;
    }
    sk_buf_printf(&h->b, "%s %s%s%s%s HTTP/1.1\r\nHost: %s\r\n", u->method, u->prefix, u->path,
                  u->query ? "?" : "", u->query ? u->query : "", u->host);
    if (u->forwarded_host != NULL)
        sk_buf_printf(&h->b, "X-Forwarded-Host: %s\r\n", u->forwarded_host);
}

void sk_req_head_client(sk_req_head *h, const char *name, const char *value)
{
    char folded[SK_REQ_NAME_MAX];
    if (h->bad)
        return;
    if (value == NULL)
        value = "";
    if (!sk_req_name_clean(name, strlen(name)) || !clean(value) ||
        sk_req_hdr_fold(name, folded, sizeof folded) != 0) {
        h->bad = 1;
        return;
    }
    if (sk_req_hdr_request_drop(folded) || (h->u->conn_tokens && sk_req_hdr_in_tokens(folded, h->u->conn_tokens)))
        return;
    if (strcmp(folded, "cookie") == 0) {
        sk_req_cookie_strip(value, &h->cb, &h->cookie_first);
        return;
    }
    sk_buf_printf(&h->b, "%s: %s\r\n", name, value);
}

int sk_req_head_finish(sk_req_head *h, size_t *len)
{
    const sk_req_upstream *u = h->u;
    if (h->bad || !clean(u->user) || !clean(u->tenant) || !clean(u->roles) || !clean(u->serial) ||
        !clean(u->peer) || sk_buf_finish(&h->cb) != 0)
        return -1;
    if (!h->cookie_first) {
        sk_buf_puts(&h->b, "Cookie: ");
        sk_buf_add(&h->b, h->cb.data, h->cb.len);
        sk_buf_puts(&h->b, "\r\n");
    }
    sk_buf_printf(&h->b,
                  "X-Sekisho-User: %s\r\nX-Sekisho-Tenant: %s\r\nX-Sekisho-Roles: %s\r\n"
                  "X-Sekisho-Cert-Serial: %s\r\nX-Forwarded-For: %s\r\nX-Forwarded-Proto: https\r\n",
                  u->user, u->tenant, u->roles, u->serial, u->peer);
    if (u->body == SK_REQ_BODY_LENGTH)
        sk_buf_printf(&h->b, "Content-Length: %llu\r\n", (unsigned long long)u->length);
    else if (u->body == SK_REQ_BODY_CHUNKED)
        sk_buf_puts(&h->b, "Transfer-Encoding: chunked\r\n");
    if (u->upgrade)
        sk_buf_puts(&h->b, "Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
    else
        sk_buf_puts(&h->b, "Connection: keep-alive\r\n\r\n");
    if (sk_buf_finish(&h->b) != 0)
        return -1;
    *len = h->b.len;
    return 0;
}

void sk_req_head_wipe(sk_req_head *h)
{
    /* the cookie buffer is written only by sk_buf_add/puts: len bytes and a NUL */
    size_t n = h->cb.len < sizeof h->cookies ? h->cb.len + 1 : sizeof h->cookies;
    sk_wipe(h->cookies, n);
}
