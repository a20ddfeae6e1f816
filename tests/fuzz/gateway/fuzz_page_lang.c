/* libFuzzer target: Accept-Language parsing, plus the login page with the input as
 * every dynamic value: escaping means the page holds exactly as many <, >, " and '
 * as the same page built from empty values. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sk_page.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char markup[] = "<>\"'";

static void count_markup(const char *s, size_t counts[4])
{
    memset(counts, 0, 4 * sizeof counts[0]);
    for (; *s; s++) {
        const char *hit = strchr(markup, *s);
        if (hit != NULL)
            counts[hit - markup]++;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char in[4097], html[65536], ref[65536];
    size_t got[4], want[4];
    enum sk_lang lang;
    sk_buf b;

    if (size >= sizeof in)
        return 0;
    memcpy(in, data, size);
    in[size] = '\0';
    lang = sk_page_lang(in);
    if (lang != SK_LANG_EN && lang != SK_LANG_JA)
        __builtin_trap();

    struct sk_page_login p = {
        .lang = lang, .cert_user = in, .cert_tenant = in, .csrf = in, .return_path = in, .ask_totp = 1,
        .msg = (enum sk_msg)(size % SK_MSG_COUNT_),
    };
    sk_buf_init(&b, html, sizeof html);
    if (sk_page_login(&b, &p) == 0) {
        if (strlen(html) != b.len)
            __builtin_trap();
        p.cert_user = p.cert_tenant = p.csrf = p.return_path = "";
        sk_buf_init(&b, ref, sizeof ref);
        if (sk_page_login(&b, &p) != 0)
            __builtin_trap();
        count_markup(html, got);
        count_markup(ref, want);
        if (memcmp(got, want, sizeof got) != 0)
            __builtin_trap();
    }
    return 0;
}
