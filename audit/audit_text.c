/* audit_text.c — strings from clients into the log's pure-ASCII JSON form. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "audit_wint.h"

/* ---- strings from clients ---------------------------------------------- */

/* Valid UTF-8 copy of s: invalid sequences become U+FFFD, long strings are cut
 * at SK_AUDIT_MAX_FIELD bytes with a visible marker. */
static size_t utf8_next(const unsigned char *u, size_t avail, uint32_t *cp);

char *audit_sanitize(const char *s)
{
    static const char cut_mark[] = "...[cut]";
    size_t n = strlen(s), o = 0, i = 0;
    size_t cap = (n > SK_AUDIT_MAX_FIELD ? SK_AUDIT_MAX_FIELD : n) * 3 + sizeof(cut_mark) + 4;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    while (i < n) {
        uint32_t cp;
        size_t len;
        if (i >= SK_AUDIT_MAX_FIELD) {
            memcpy(out + o, cut_mark, sizeof(cut_mark) - 1);
            o += sizeof(cut_mark) - 1;
            break;
        }
        len = utf8_next((const unsigned char *)s + i, n - i, &cp);
        if (len == 0) {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
            i += 1;
            continue;
        }
        memcpy(out + o, s + i, len);
        o += len;
        i += len;
    }
    out[o] = '\0';
    return out;
}

json_t *audit_jstr(const char *s)
{
    char *c;
    json_t *v;
    if (!s)
        return json_null();
    c = audit_sanitize(s);
    if (!c)
        return NULL;
    v = json_string(c);
    free(c);
    return v;
}

/* Decode one UTF-8 sequence at u (avail bytes). Returns its length, or 0 when
 * it is invalid (overlong, surrogate, out of range, truncated). */
static size_t utf8_next(const unsigned char *u, size_t avail, uint32_t *cp)
{
    size_t len, k;
    uint32_t c;
    if (u[0] < 0x80) {
        *cp = u[0];
        return 1;
    }
    if ((u[0] & 0xe0) == 0xc0) {
        len = 2;
        c = u[0] & 0x1f;
    } else if ((u[0] & 0xf0) == 0xe0) {
        len = 3;
        c = u[0] & 0x0f;
    } else if ((u[0] & 0xf8) == 0xf0) {
        len = 4;
        c = u[0] & 0x07;
    } else {
        return 0;
    }
    if (len > avail)
        return 0;
    for (k = 1; k < len; k++) {
        if ((u[k] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (u[k] & 0x3f);
    }
    if ((len == 2 && c < 0x80) || (len == 3 && c < 0x800) || (len == 4 && c < 0x10000) ||
        c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return len;
}

static void buf_u16(sk_buf *b, uint32_t v)
{
    static const char hx[] = "0123456789abcdef";
    char t[6] = {'\\', 'u', hx[(v >> 12) & 15], hx[(v >> 8) & 15], hx[(v >> 4) & 15], hx[v & 15]};
    sk_buf_add(b, t, sizeof(t));
}

void audit_buf_u64(sk_buf *b, uint64_t v)
{
    char t[24];
    size_t i = sizeof(t);
    do {
        t[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    sk_buf_add(b, t + i, sizeof(t) - i);
}

/* A JSON string (or null) in the log's form: pure ASCII, every control
 * character and DEL escaped, non-ASCII as \u escapes, invalid UTF-8 as
 * U+FFFD, cut after SK_AUDIT_MAX_FIELD input bytes with a visible marker. */
void audit_buf_json_str(sk_buf *b, const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n, i = 0, run = 0;
    if (!s) {
        sk_buf_add(b, "null", 4);
        return;
    }
    n = strlen(s);
    sk_buf_add(b, "\"", 1);
    while (i < n) {
        unsigned char c = u[i];
        uint32_t cp;
        size_t len;
        if (i >= SK_AUDIT_MAX_FIELD) {
            sk_buf_add(b, s + run, i - run);
            run = i = n;
            sk_buf_add(b, "...[cut]", 8);
            break;
        }
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            i++;
            continue;
        }
        sk_buf_add(b, s + run, i - run); /* the plain run before this byte */
        if (c == '"' || c == '\\') {
            char t[2] = {'\\', (char)c};
            sk_buf_add(b, t, 2);
            len = 1;
        } else if (c == '\n') {
            sk_buf_add(b, "\\n", 2);
            len = 1;
        } else if (c == '\r') {
            sk_buf_add(b, "\\r", 2);
            len = 1;
        } else if (c == '\t') {
            sk_buf_add(b, "\\t", 2);
            len = 1;
        } else if (c < 0x80) {
            buf_u16(b, c);
            len = 1;
        } else {
            len = utf8_next(u + i, n - i, &cp);
            if (len == 0) {
                cp = 0xfffd;
                len = 1;
            }
            if (cp >= 0x10000) {
                cp -= 0x10000;
                buf_u16(b, 0xd800 + (cp >> 10));
                buf_u16(b, 0xdc00 + (cp & 0x3ff));
            } else {
                buf_u16(b, cp);
            }
        }
        i += len;
        run = i;
    }
    sk_buf_add(b, s + run, i - run);
    sk_buf_add(b, "\"", 1);
}
