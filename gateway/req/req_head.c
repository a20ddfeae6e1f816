/* sk_req head walk and character classes. See sk_req.h. */
#include <string.h>

#include "sk_req.h"

int sk_req_is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

int sk_req_value_clean(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return 0;
    }
    return 1;
}

int sk_req_target_clean(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f)
            return 0;
    return 1;
}

int sk_req_name_clean(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!sk_req_is_tchar((unsigned char)s[i]))
            return 0;
    return 1;
}

static char walk_byte(const sk_req_walk *w)
{
    return *(const char *)(w->base + w->off);
}

/* Is p exactly at the walk's position? p may point anywhere (another pool block,
 * a static string): it is compared as an integer, never dereferenced here. */
static int walk_here(const sk_req_walk *w, const void *p)
{
    return (uintptr_t)p - w->base == w->off && w->off < w->size;
}

/* n NULs (bytes libmicrohttpd blanked) must follow; skip them. */
static int walk_nuls(sk_req_walk *w, size_t n)
{
    for (size_t i = 0; i < n; i++, w->off++)
        if (w->off >= w->size || walk_byte(w) != '\0')
            return 0;
    return 1;
}

/* Advance over n bytes that the caller already knows (a string it holds). */
static int walk_skip(sk_req_walk *w, size_t n)
{
    if (n >= w->size - w->off)
        return 0;
    w->off += n;
    return 1;
}

void sk_req_walk_start(sk_req_walk *w, const char *head, size_t size, const char *target_at,
                       const char *raw_target, const char *version)
{
    size_t n;
    memset(w, 0, sizeof *w);
    w->base = (uintptr_t)head;
    w->size = size;
    w->bad = 1;
    if (head == NULL || target_at == NULL || raw_target == NULL || version == NULL || size == 0)
        return;
    /* The method: a token, then the NUL that was its space. */
    for (n = 0; n < size && head[n] != '\0'; n++)
        ;
    if (!sk_req_name_clean(head, n) || !walk_skip(w, n) || !walk_nuls(w, 1))
        return;
    /* The target as first seen (libmicrohttpd later cuts it at '?' in place), as
     * long as the line gives it: a NUL inside would have shortened the copy. */
    if (!walk_here(w, target_at) || !sk_req_target_clean(raw_target) || !walk_skip(w, strlen(raw_target)) ||
        !walk_nuls(w, 1) || !walk_here(w, version))
        return;
    for (n = 0; version[n] != '\0'; n++)
        if (version[n] < 0x21 || version[n] > 0x7e)
            return;
    if (!walk_skip(w, n) || !walk_nuls(w, 2)) /* CR LF */
        return;
    w->bad = 0;
}

void sk_req_walk_field(sk_req_walk *w, const char *name, size_t name_len, const char *value, size_t value_len)
{
    if (w->bad || !walk_here(w, name) || name_len >= w->size - w->off || !sk_req_name_clean(name, name_len))
        goto bad;
    w->off += name_len;
    if (!walk_nuls(w, 1)) /* the colon */
        goto bad;
    while (w->off < w->size && (walk_byte(w) == ' ' || walk_byte(w) == '\t'))
        w->off++;
    if (!walk_here(w, value) || value_len >= w->size - w->off || !sk_req_value_clean(value, value_len))
        goto bad;
    w->off += value_len;
    if (!walk_nuls(w, 2)) /* CR LF; a bare LF leaves one NUL */
        goto bad;
    return;
bad:
    w->bad = 1;
}

int sk_req_walk_end(sk_req_walk *w)
{
    /* The empty line ends the head exactly where libmicrohttpd says it ends. */
    if (w->bad || !walk_nuls(w, 2) || w->off != w->size)
        w->bad = 1;
    return !w->bad;
}
