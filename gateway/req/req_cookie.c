/* sk_req cookies: one parser for the session lookup and for the stripper. */
#include <string.h>
#include <strings.h>

#include "sk_req.h"

static int ows(char c)
{
    return c == ' ' || c == '\t';
}

void sk_req_cookie_each(const char *header, sk_req_cookie_fn fn, void *arg)
{
    const char *p = header;
    while (p != NULL && *p) {
        const char *end = strchr(p, ';');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        while (n > 0 && ows(*p)) {
            p++;
            n--;
        }
        while (n > 0 && ows(p[n - 1]))
            n--;
        if (n > 0) {
            const char *eq = memchr(p, '=', n);
            size_t name_len = eq ? (size_t)(eq - p) : n;
            fn(arg, p, n, p, name_len, eq ? eq + 1 : p + n, eq ? n - name_len - 1 : 0);
        }
        if (end == NULL)
            break;
        p = end + 1;
    }
}

static void find_one(void *arg, const char *pair, size_t n, const char *name, size_t name_len, const char *value,
                     size_t value_len)
{
    sk_req_session_cookie *f = arg;
    (void)pair;
    (void)n;
    if (name_len == sizeof SK_REQ_COOKIE_NAME - 1 && memcmp(name, SK_REQ_COOKIE_NAME, name_len) == 0 &&
        name + name_len < value) {
        if (f->count == 0) {
            f->value = value;
            f->len = value_len;
        }
        f->count++;
    }
}

void sk_req_cookie_find_session(const char *header, sk_req_session_cookie *found)
{
    sk_req_cookie_each(header, find_one, found);
}

int sk_req_cookie_is_ours(const char *pair, size_t n)
{
    /* Anywhere in the pair, any case: "a=1, __Host-sekisho=T" is one pair to
     * RFC 6265 but two to a parser that also splits at ','. */
    const size_t k = sizeof SK_REQ_COOKIE_NAME - 1;
    for (size_t i = 0; i + k <= n; i++)
        if (strncasecmp(pair + i, SK_REQ_COOKIE_NAME, k) == 0)
            return 1;
    return 0;
}

struct strip_ctx {
    sk_buf *out;
    int *first;
};

static void strip_one(void *arg, const char *pair, size_t n, const char *name, size_t name_len, const char *value,
                      size_t value_len)
{
    struct strip_ctx *s = arg;
    (void)name;
    (void)name_len;
    (void)value;
    (void)value_len;
    if (sk_req_cookie_is_ours(pair, n))
        return;
    if (!*s->first)
        sk_buf_puts(s->out, "; ");
    sk_buf_add(s->out, pair, n);
    *s->first = 0;
}

void sk_req_cookie_strip(const char *header, sk_buf *out, int *first)
{
    struct strip_ctx s = { out, first };
    sk_req_cookie_each(header, strip_one, &s);
}
