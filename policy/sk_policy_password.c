/* Password rules: UTF-8 length, composition, user ID, common-password list. */
#include <string.h>

#include "sk_policy.h"
#include "sk_policy_int.h"

/* Decode one code point at s[0..len). Returns the sequence length (1-4) and
 * sets *cp, or 0 for invalid UTF-8 (RFC 3629: no overlongs, no surrogates,
 * nothing above U+10FFFF, no truncated sequence). */
static size_t utf8_next(const unsigned char *s, size_t len, uint32_t *cp)
{
    static const struct {
        unsigned char mask, lead;       /* lead byte pattern */
        size_t n;
        uint32_t min;                   /* smallest code point for this length */
    } forms[] = {
        { 0x80, 0x00, 1, 0x0 },
        { 0xE0, 0xC0, 2, 0x80 },
        { 0xF0, 0xE0, 3, 0x800 },
        { 0xF8, 0xF0, 4, 0x10000 },
    };
    size_t f, i;
    uint32_t v;

    for (f = 0; f < sizeof(forms) / sizeof(forms[0]); f++)
        if ((s[0] & forms[f].mask) == forms[f].lead)
            break;
    if (f == sizeof(forms) / sizeof(forms[0]) || forms[f].n > len)
        return 0;
    v = s[0] & (unsigned char)~forms[f].mask;
    for (i = 1; i < forms[f].n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3Fu);
    }
    if (v < forms[f].min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return forms[f].n;
}

int64_t sk_policy_utf8_length(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    int64_t n = 0;
    uint32_t cp;

    if (s == NULL && len != 0)
        return -1;
    while (i < len) {
        size_t k = utf8_next(p + i, len - i, &cp);
        if (k == 0)
            return -1;
        i += k;
        n++;
    }
    return n;
}

/* Case-insensitive (ASCII) comparison of pw[0..len) against a lower-case,
 * NUL-terminated entry; the same order as strcmp on the lowered password. */
static int lower_cmp(const unsigned char *pw, size_t len, const char *entry)
{
    const unsigned char *e = (const unsigned char *)entry;
    size_t i;

    for (i = 0;; i++) {
        unsigned char c;
        if (i == len)
            return e[i] == 0 ? 0 : -1;
        if (e[i] == 0)
            return 1;
        c = skp_lower(pw[i]);
        if (c != e[i])
            return c < e[i] ? -1 : 1;
    }
}

int sk_policy_password_is_common(const char *pw, size_t len)
{
    size_t lo = 0, hi = sk_policy_blocklist_count();

    if (pw == NULL)
        return 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = lower_cmp((const unsigned char *)pw, len, sk_policy_blocklist_at(mid));
        if (c == 0)
            return 1;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return 0;
}

static int contains_icase(const unsigned char *hay, size_t hlen, const unsigned char *needle, size_t nlen)
{
    size_t i, j;

    if (nlen == 0 || nlen > hlen)
        return 0;
    for (i = 0; i + nlen <= hlen; i++) {
        for (j = 0; j < nlen; j++)
            if (skp_lower(hay[i + j]) != skp_lower(needle[j]))
                break;
        if (j == nlen)
            return 1;
    }
    return 0;
}

sk_policy_pw_result sk_policy_password_check(const sk_policy_config *cfg, const char *pw, size_t len,
                                             const char *user_id, size_t user_id_len)
{
    const unsigned char *p = (const unsigned char *)pw;
    int upper = 0, lower = 0, digit = 0;
    size_t i = 0;
    uint64_t cps = 0;
    uint32_t cp;

    if (pw == NULL && len != 0)
        return SK_POLICY_PW_INVALID_BYTES;
    while (i < len) {
        size_t k = utf8_next(p + i, len - i, &cp);
        if (k == 0 || cp < 0x20 || (cp >= 0x7F && cp <= 0x9F))
            return SK_POLICY_PW_INVALID_BYTES;
        upper |= cp >= 'A' && cp <= 'Z';
        lower |= cp >= 'a' && cp <= 'z';
        digit |= cp >= '0' && cp <= '9';
        i += k;
        cps++;
    }
    if (cps < cfg->password_min_length)
        return SK_POLICY_PW_TOO_SHORT;
    if (cps > cfg->password_max_length)
        return SK_POLICY_PW_TOO_LONG;
    if (cfg->password_require_upper && !upper)
        return SK_POLICY_PW_NO_UPPER;
    if (cfg->password_require_lower && !lower)
        return SK_POLICY_PW_NO_LOWER;
    if (cfg->password_require_digit && !digit)
        return SK_POLICY_PW_NO_DIGIT;
    if (user_id != NULL && user_id_len >= SK_POLICY_PW_USER_ID_MIN &&
        contains_icase(p, len, (const unsigned char *)user_id, user_id_len))
        return SK_POLICY_PW_CONTAINS_USER_ID;
    if (sk_policy_password_is_common(pw, len))
        return SK_POLICY_PW_BLOCKLISTED;
    return SK_POLICY_PW_OK;
}

static const char *const messages[SK_POLICY_PW_RESULT_COUNT_][SK_POLICY_LANG_COUNT_] = {
    [SK_POLICY_PW_OK] = {
        "The password meets the policy.",
        "パスワードはポリシーを満たしています。",
    },
    [SK_POLICY_PW_TOO_SHORT] = {
        "The password is too short.",
        "パスワードが短すぎます。",
    },
    [SK_POLICY_PW_TOO_LONG] = {
        "The password is too long.",
        "パスワードが長すぎます。",
    },
    [SK_POLICY_PW_NO_UPPER] = {
        "The password must contain an upper-case letter (A-Z).",
        "パスワードには英大文字 (A-Z) を含めてください。",
    },
    [SK_POLICY_PW_NO_LOWER] = {
        "The password must contain a lower-case letter (a-z).",
        "パスワードには英小文字 (a-z) を含めてください。",
    },
    [SK_POLICY_PW_NO_DIGIT] = {
        "The password must contain a digit (0-9).",
        "パスワードには数字 (0-9) を含めてください。",
    },
    [SK_POLICY_PW_BLOCKLISTED] = {
        "This password is too common. Choose another one.",
        "このパスワードはよく使われているため使用できません。別のパスワードを選んでください。",
    },
    [SK_POLICY_PW_CONTAINS_USER_ID] = {
        "The password must not contain your user ID.",
        "パスワードにユーザー ID を含めることはできません。",
    },
    [SK_POLICY_PW_INVALID_BYTES] = {
        "The password contains characters that are not allowed (control characters or invalid UTF-8).",
        "パスワードに使用できない文字 (制御文字または不正な UTF-8) が含まれています。",
    },
};

const char *sk_policy_password_message(sk_policy_pw_result r, sk_policy_lang lang)
{
    if ((unsigned)lang >= SK_POLICY_LANG_COUNT_)
        lang = SK_POLICY_LANG_EN;
    if ((unsigned)r >= SK_POLICY_PW_RESULT_COUNT_)
        return lang == SK_POLICY_LANG_JA ? "パスワードを確認できませんでした。" : "The password could not be checked.";
    return messages[r][lang];
}
