/*
 * sk_page.h — the gateway's own pages (login, logout, errors), in English and
 * Japanese, plain HTML forms with no JavaScript. Every dynamic value is HTML-escaped
 * here; callers pass raw strings.
 */
#ifndef SK_PAGE_H
#define SK_PAGE_H

#include "sk_util.h"

enum sk_lang { SK_LANG_EN = 0, SK_LANG_JA = 1 };

enum sk_msg {
    SK_MSG_NONE = 0,
    SK_MSG_BAD_CREDENTIALS,
    SK_MSG_FORM_EXPIRED,
    SK_MSG_BUSY,
    SK_MSG_LOGGED_OUT,
    SK_MSG_IDLE,
    SK_MSG_EXPIRED,
    SK_MSG_INTERNAL,
    SK_MSG_MUST_CHANGE,
    SK_MSG_CURRENT_WRONG,
    SK_MSG_MISMATCH,
    SK_MSG_PW_CHANGED,
    SK_MSG_TOTP_BAD_CODE,
    SK_MSG_TOTP_ENABLED,
    SK_MSG_ACTIVATED,
    SK_MSG_LINK_INVALID,
    SK_MSG_COUNT_
};

/* Pick the language from an Accept-Language header (NULL -> English). */
enum sk_lang sk_page_lang(const char *accept_language);

struct sk_page_login {
    enum sk_lang lang;
    const char *cert_user, *cert_tenant;   /* from the client certificate */
    const char *csrf, *return_path;
    int ask_totp;
    enum sk_msg msg;
};
int sk_page_login(sk_buf *b, const struct sk_page_login *p) SK_MUST_CHECK;

struct sk_page_logout {
    enum sk_lang lang;
    const char *user, *tenant, *csrf;
};
int sk_page_logout(sk_buf *b, const struct sk_page_logout *p) SK_MUST_CHECK;

struct sk_page_password {
    enum sk_lang lang;
    const char *user, *tenant, *csrf;
    enum sk_msg msg;
    const char *detail;        /* e.g. the policy's reason, shown under msg; may be NULL */
    unsigned min_len, max_len;
    int need_upper, need_lower, need_digit;
    /* The activation page (first password through an invitation link): posts to
     * /.sekisho/activate with activate_token, asks for no current password. */
    int activation;
    const char *activate_token;
};
int sk_page_password(sk_buf *b, const struct sk_page_password *p) SK_MUST_CHECK;

struct sk_page_totp {
    enum sk_lang lang;
    const char *user, *tenant, *csrf;
    int enabled;               /* already enrolled: say so, no form */
    const char *qr_svg;        /* trusted SVG markup from libqrencode, inserted as is */
    const char *secret_b32;    /* for typing in by hand */
    enum sk_msg msg;
};
int sk_page_totp(sk_buf *b, const struct sk_page_totp *p) SK_MUST_CHECK;

/* A short page for statuses such as 400, 403, 404, 502 and 503. */
int sk_page_error(sk_buf *b, enum sk_lang lang, int status) SK_MUST_CHECK;

/* The shared stylesheet served at /.sekisho/style.css. */
extern const char sk_page_css[];

#endif
