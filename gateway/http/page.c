/* sk_page: the gateway's own HTML. See sk_page.h. */
#include "sk_page.h"

#include <string.h>

struct text {
    const char *en, *ja;
};

#define T(lang, t) ((lang) == SK_LANG_JA ? (t).ja : (t).en)

static const struct text msg_text[SK_MSG_COUNT_] = {
    [SK_MSG_NONE] = { "", "" },
    [SK_MSG_BAD_CREDENTIALS] = { "The ID or password is incorrect.", "IDまたはパスワードが正しくありません。" },
    [SK_MSG_FORM_EXPIRED] = { "The form expired. Please sign in again.",
                              "フォームの有効期限が切れました。もう一度サインインしてください。" },
    [SK_MSG_BUSY] = { "The server is busy. Please try again in a few seconds.",
                      "サーバーが混み合っています。数秒後にもう一度お試しください。" },
    [SK_MSG_LOGGED_OUT] = { "You have signed out.", "サインアウトしました。" },
    [SK_MSG_IDLE] = { "You were signed out after a period of inactivity.",
                      "一定時間操作がなかったため、サインアウトしました。" },
    [SK_MSG_EXPIRED] = { "Your session reached its maximum lifetime. Please sign in again.",
                         "セッションの有効期間が終了しました。もう一度サインインしてください。" },
    [SK_MSG_INTERNAL] = { "An internal error occurred. Please try again later.",
                          "内部エラーが発生しました。しばらくしてからもう一度お試しください。" },
    [SK_MSG_MUST_CHANGE] = { "Your password must be changed before you continue.",
                             "続行する前にパスワードを変更する必要があります。" },
    [SK_MSG_CURRENT_WRONG] = { "The current password is incorrect.", "現在のパスワードが正しくありません。" },
    [SK_MSG_MISMATCH] = { "The new password and its confirmation differ.",
                          "新しいパスワードと確認用の入力が一致しません。" },
    [SK_MSG_PW_CHANGED] = { "Your password was changed. Other sessions were signed out.",
                            "パスワードを変更しました。ほかのセッションはサインアウトされました。" },
    [SK_MSG_TOTP_BAD_CODE] = { "That code did not match. Check the time on your device and try again.",
                               "コードが一致しません。端末の時刻を確認して、もう一度お試しください。" },
    [SK_MSG_TOTP_ENABLED] = { "Two-step verification is on. Sign-ins now ask for a one-time code.",
                              "2段階認証を有効にしました。次回からサインイン時にワンタイムコードを入力します。" },
    [SK_MSG_ACTIVATED] = { "Your password is set. Sign in with it.",
                           "パスワードを設定しました。そのパスワードでサインインしてください。" },
    [SK_MSG_LINK_INVALID] = { "This link does not work: it was used, replaced by a newer invitation, or has "
                              "expired. Ask your administrator for a new one.",
                              "このリンクは使用済み、新しい招待に置き換え済み、または期限切れです。"
                              "管理者に新しい招待を依頼してください。" },
};

static const struct text t_signin = { "Sign in", "サインイン" };
static const struct text t_signout = { "Sign out", "サインアウト" };
static const struct text t_id = { "ID", "ID" };
static const struct text t_password = { "Password", "パスワード" };
static const struct text t_totp = { "One-time code", "ワンタイムコード" };
static const struct text t_cert = { "Certificate", "証明書" };
static const struct text t_tenant = { "organisation", "組織" };
static const struct text t_signed_in_as = { "Signed in as", "サインイン中のユーザー" };
static const struct text t_confirm_out = { "Do you want to sign out?", "サインアウトしますか？" };

const char sk_page_css[] =
    "body{font-family:system-ui,-apple-system,'Segoe UI','Hiragino Sans','Yu Gothic UI',"
    "Meiryo,sans-serif;background:#f3f4f6;color:#111827;margin:0}"
    "main{max-width:24rem;margin:8vh auto;background:#fff;padding:2rem;border-radius:.5rem;"
    "box-shadow:0 1px 3px rgba(0,0,0,.15)}"
    "h1{font-size:1.4rem;margin:0 0 1rem}.brand{color:#6b7280;font-size:.85rem;margin:0 0 .25rem}"
    "label{display:block;margin:.9rem 0 .3rem;font-weight:600}"
    "input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:.55rem;"
    "font-size:1rem;border:1px solid #9ca3af;border-radius:.3rem}"
    "button{margin-top:1.3rem;width:100%;padding:.65rem;font-size:1rem;border:0;border-radius:.3rem;"
    "background:#1d4ed8;color:#fff;cursor:pointer}button:focus,input:focus{outline:3px solid #93c5fd}"
    ".cert{background:#eef2ff;padding:.6rem;border-radius:.3rem;font-size:.9rem;overflow-wrap:anywhere}"
    ".msg{padding:.6rem;border-radius:.3rem;margin:.8rem 0}.err{background:#fee2e2;color:#7f1d1d}"
    ".info{background:#ecfdf5;color:#064e3b}.qr svg{width:14rem;height:14rem;display:block;margin:auto}"
    "code{font-size:1rem;letter-spacing:.08em}a{color:#1d4ed8}\n";

enum sk_lang sk_page_lang(const char *al)
{
    /* Highest q wins between ja and en; ties keep the earlier entry; default en. */
    double best_q = -1.0;
    enum sk_lang best = SK_LANG_EN;
    const char *p = al;

    while (p != NULL && *p) {
        const char *end = strchr(p, ','), *semi;
        size_t n = end ? (size_t)(end - p) : strlen(p);
        double q = 1.0;
        while (*p == ' ' && n > 0) {
            p++;
            n--;
        }
        semi = memchr(p, ';', n);
        if (semi != NULL) {
            const char *qs = memchr(semi, 'q', n - (size_t)(semi - p));
            if (qs != NULL && qs[1] == '=') {
                /* q is 0, 1, or 0.x with up to three digits */
                q = qs[2] == '1' ? 1.0 : 0.0;
                if (qs[2] == '0' && qs[3] == '.') {
                    double scale = 0.1;
                    for (const char *d = qs + 4; *d >= '0' && *d <= '9' && d < p + n; d++) {
                        q += (*d - '0') * scale;
                        scale /= 10;
                    }
                }
            }
        }
        if (q > 0.0 && q > best_q) { /* q=0 means "not acceptable" */
            if (n >= 2 && (p[0] | 0x20) == 'j' && (p[1] | 0x20) == 'a' && (n == 2 || p[2] == '-' || p[2] == ';')) {
                best_q = q;
                best = SK_LANG_JA;
            } else if (n >= 2 && (p[0] | 0x20) == 'e' && (p[1] | 0x20) == 'n' &&
                       (n == 2 || p[2] == '-' || p[2] == ';')) {
                best_q = q;
                best = SK_LANG_EN;
            }
        }
        p = end ? end + 1 : NULL;
    }
    return best;
}

static void page_open(sk_buf *b, enum sk_lang lang, const char *title)
{
    sk_buf_printf(b, "<!DOCTYPE html>\n<html lang=\"%s\"><head><meta charset=\"utf-8\">"
                     "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
                     "<title>", lang == SK_LANG_JA ? "ja" : "en");
    sk_buf_html(b, title);
    sk_buf_puts(b, " - Sekisho</title><link rel=\"stylesheet\" href=\"/.sekisho/style.css\"></head>"
                   "<body><main><p class=\"brand\">Sekisho 関所</p><h1>");
    sk_buf_html(b, title);
    sk_buf_puts(b, "</h1>\n");
}

static void page_close(sk_buf *b)
{
    sk_buf_puts(b, "</main></body></html>\n");
}

static void page_msg(sk_buf *b, enum sk_lang lang, enum sk_msg m)
{
    int is_info = m == SK_MSG_LOGGED_OUT || m == SK_MSG_PW_CHANGED || m == SK_MSG_TOTP_ENABLED ||
                  m == SK_MSG_MUST_CHANGE;
    if (m <= SK_MSG_NONE || m >= SK_MSG_COUNT_)
        return;
    sk_buf_printf(b, "<p class=\"msg %s\" role=\"%s\">", is_info ? "info" : "err", is_info ? "status" : "alert");
    sk_buf_html(b, T(lang, msg_text[m]));
    sk_buf_puts(b, "</p>\n");
}

static void page_cert(sk_buf *b, enum sk_lang lang, const char *user, const char *tenant)
{
    sk_buf_printf(b, "<p class=\"cert\">%s: <strong>", T(lang, t_cert));
    sk_buf_html(b, user);
    sk_buf_printf(b, "</strong> (%s: ", T(lang, t_tenant));
    sk_buf_html(b, tenant);
    sk_buf_puts(b, ")</p>\n");
}

static void hidden(sk_buf *b, const char *name, const char *value)
{
    sk_buf_printf(b, "<input type=\"hidden\" name=\"%s\" value=\"", name);
    sk_buf_html(b, value);
    sk_buf_puts(b, "\">");
}

int sk_page_login(sk_buf *b, const struct sk_page_login *p)
{
    page_open(b, p->lang, T(p->lang, t_signin));
    page_cert(b, p->lang, p->cert_user, p->cert_tenant);
    page_msg(b, p->lang, p->msg);
    sk_buf_puts(b, "<form method=\"post\" action=\"/.sekisho/login\" autocomplete=\"off\">");
    hidden(b, "csrf", p->csrf);
    hidden(b, "return", p->return_path);
    sk_buf_printf(b, "<label for=\"id\">%s</label><input type=\"text\" id=\"id\" name=\"id\" value=\"",
                  T(p->lang, t_id));
    sk_buf_html(b, p->cert_user);
    sk_buf_printf(b, "\" autocomplete=\"username\" autocapitalize=\"none\" spellcheck=\"false\" required "
                     "maxlength=\"64\">"
                     "<label for=\"password\">%s</label><input type=\"password\" id=\"password\" "
                     "name=\"password\" autocomplete=\"current-password\" required autofocus maxlength=\"1024\">",
                  T(p->lang, t_password));
    if (p->ask_totp)
        sk_buf_printf(b, "<label for=\"totp\">%s</label><input type=\"text\" id=\"totp\" name=\"totp\" "
                         "inputmode=\"numeric\" autocomplete=\"one-time-code\" pattern=\"[0-9]{6,8}\" "
                         "maxlength=\"8\" required>",
                      T(p->lang, t_totp));
    sk_buf_printf(b, "<button type=\"submit\">%s</button></form>\n", T(p->lang, t_signin));
    page_close(b);
    return sk_buf_finish(b);
}

int sk_page_logout(sk_buf *b, const struct sk_page_logout *p)
{
    page_open(b, p->lang, T(p->lang, t_signout));
    sk_buf_printf(b, "<p>%s: <strong>", T(p->lang, t_signed_in_as));
    sk_buf_html(b, p->user);
    sk_buf_puts(b, "</strong> (");
    sk_buf_html(b, p->tenant);
    sk_buf_printf(b, ")</p><p>%s</p><form method=\"post\" action=\"/.sekisho/logout\">",
                  T(p->lang, t_confirm_out));
    hidden(b, "csrf", p->csrf);
    sk_buf_printf(b, "<button type=\"submit\">%s</button></form>\n", T(p->lang, t_signout));
    page_close(b);
    return sk_buf_finish(b);
}

static const struct text t_pw_title = { "Change password", "パスワードの変更" };
static const struct text t_activate_title = { "Choose your password", "パスワードの設定" };
static const struct text t_activate_save = { "Set password", "設定する" };
static const struct text t_pw_current = { "Current password", "現在のパスワード" };
static const struct text t_pw_new = { "New password", "新しいパスワード" };
static const struct text t_pw_confirm = { "New password again", "新しいパスワード（確認）" };
static const struct text t_pw_save = { "Change password", "変更する" };
static const struct text t_pw_upper = { ", an uppercase letter", "、英大文字" };
static const struct text t_pw_lower = { ", a lowercase letter", "、英小文字" };
static const struct text t_pw_digit = { ", a digit", "、数字" };
static const struct text t_pw_common = { "; common passwords are refused.", "を含めてください。よく使われるパスワードは使えません。" };
static const struct text t_totp_title = { "Two-step verification", "2段階認証" };
static const struct text t_totp_scan = { "Scan this code with your authenticator app, or type the key below.",
                                         "認証アプリでこのコードを読み取るか、下のキーを入力してください。" };
static const struct text t_totp_key = { "Key", "キー" };
static const struct text t_totp_code = { "Code from the app", "アプリに表示されたコード" };
static const struct text t_totp_confirm = { "Turn on", "有効にする" };
static const struct text t_totp_on = { "Two-step verification is on for this account.",
                                       "このアカウントでは2段階認証が有効です。" };
static const struct text t_back = { "Back to the portal", "ポータルへ戻る" };

int sk_page_password(sk_buf *b, const struct sk_page_password *p)
{
    page_open(b, p->lang, p->activation ? T(p->lang, t_activate_title) : T(p->lang, t_pw_title));
    page_cert(b, p->lang, p->user, p->tenant);
    page_msg(b, p->lang, p->msg);
    if (p->msg == SK_MSG_LINK_INVALID) {
        page_close(b);
        return sk_buf_finish(b);
    }
    if (p->detail != NULL && p->detail[0] != '\0') {
        sk_buf_puts(b, "<p class=\"msg err\" role=\"alert\">");
        sk_buf_html(b, p->detail);
        sk_buf_puts(b, "</p>\n");
    }
    if (p->msg == SK_MSG_PW_CHANGED) {
        sk_buf_printf(b, "<p><a href=\"/\">%s</a></p>\n", T(p->lang, t_back));
        page_close(b);
        return sk_buf_finish(b);
    }
    sk_buf_puts(b, "<p>");
    if (p->lang == SK_LANG_JA)
        sk_buf_printf(b, "%u文字以上%u文字以下", p->min_len, p->max_len);
    else
        sk_buf_printf(b, "At least %u and at most %u characters", p->min_len, p->max_len);
    if (p->need_upper)
        sk_buf_puts(b, T(p->lang, t_pw_upper));
    if (p->need_lower)
        sk_buf_puts(b, T(p->lang, t_pw_lower));
    if (p->need_digit)
        sk_buf_puts(b, T(p->lang, t_pw_digit));
    sk_buf_puts(b, T(p->lang, t_pw_common));
    sk_buf_printf(b, "</p><form method=\"post\" action=\"/.sekisho/%s\" autocomplete=\"off\">",
                  p->activation ? "activate" : "password");
    hidden(b, "csrf", p->csrf);
    if (p->activation)
        hidden(b, "t", p->activate_token ? p->activate_token : "");
    else
        sk_buf_printf(b, "<label for=\"current\">%s</label><input type=\"password\" id=\"current\" "
                         "name=\"current\" autocomplete=\"current-password\" required autofocus maxlength=\"1024\">",
                      T(p->lang, t_pw_current));
    sk_buf_printf(b, "<label for=\"new\">%s</label><input type=\"password\" id=\"new\" name=\"new\" "
                     "autocomplete=\"new-password\" required%s minlength=\"%u\" maxlength=\"1024\">"
                     "<label for=\"confirm\">%s</label><input type=\"password\" id=\"confirm\" name=\"confirm\" "
                     "autocomplete=\"new-password\" required minlength=\"%u\" maxlength=\"1024\">"
                     "<button type=\"submit\">%s</button></form>\n",
                  T(p->lang, t_pw_new), p->activation ? " autofocus" : "", p->min_len, T(p->lang, t_pw_confirm),
                  p->min_len, p->activation ? T(p->lang, t_activate_save) : T(p->lang, t_pw_save));
    page_close(b);
    return sk_buf_finish(b);
}

int sk_page_totp(sk_buf *b, const struct sk_page_totp *p)
{
    page_open(b, p->lang, T(p->lang, t_totp_title));
    page_cert(b, p->lang, p->user, p->tenant);
    page_msg(b, p->lang, p->msg);
    if (p->enabled) {
        if (p->msg != SK_MSG_TOTP_ENABLED)
            sk_buf_printf(b, "<p>%s</p>\n", T(p->lang, t_totp_on));
        sk_buf_printf(b, "<p><a href=\"/\">%s</a></p>\n", T(p->lang, t_back));
        page_close(b);
        return sk_buf_finish(b);
    }
    sk_buf_printf(b, "<p>%s</p><div class=\"qr\">", T(p->lang, t_totp_scan));
    sk_buf_puts(b, p->qr_svg ? p->qr_svg : "");
    sk_buf_printf(b, "</div><p class=\"cert\">%s: <code>", T(p->lang, t_totp_key));
    sk_buf_html(b, p->secret_b32 ? p->secret_b32 : "");
    sk_buf_puts(b, "</code></p><form method=\"post\" action=\"/.sekisho/totp\" autocomplete=\"off\">");
    hidden(b, "csrf", p->csrf);
    sk_buf_printf(b, "<label for=\"totp\">%s</label><input type=\"text\" id=\"totp\" name=\"totp\" "
                     "inputmode=\"numeric\" autocomplete=\"one-time-code\" pattern=\"[0-9]{6}\" maxlength=\"6\" "
                     "required autofocus><button type=\"submit\">%s</button></form>\n",
                  T(p->lang, t_totp_code), T(p->lang, t_totp_confirm));
    page_close(b);
    return sk_buf_finish(b);
}

static const struct {
    int status;
    struct text text;
} error_text[] = {
    { 400, { "The request could not be understood.", "リクエストを処理できません。" } },
    { 401, { "Authentication is required.", "認証が必要です。" } },
    { 403, { "Access is not allowed.", "アクセスは許可されていません。" } },
    { 404, { "Not found.", "見つかりません。" } },
    { 405, { "Method not allowed.", "このメソッドは使用できません。" } },
    { 413, { "The request is too large.", "リクエストが大きすぎます。" } },
    { 414, { "The address is too long.", "アドレスが長すぎます。" } },
    { 421, { "This certificate or host name does not belong to this portal.",
             "この証明書またはホスト名はこのポータルのものではありません。" } },
    { 500, { "An internal error occurred.", "内部エラーが発生しました。" } },
    { 502, { "The portal behind the gateway did not answer correctly.",
             "ゲートウェイの先のポータルが正しく応答しませんでした。" } },
    { 503, { "The server is busy. Please try again in a few seconds.",
             "サーバーが混み合っています。数秒後にもう一度お試しください。" } },
};

int sk_page_error(sk_buf *b, enum sk_lang lang, int status)
{
    const struct text *t = NULL, *fallback = NULL;
    char title[16];
    for (size_t i = 0; i < SK_ARRAY_LEN(error_text); i++) {
        if (error_text[i].status == status)
            t = &error_text[i].text;
        if (error_text[i].status == 500)
            fallback = &error_text[i].text;
    }
    if (t == NULL)
        t = fallback;
    if (sk_snprintf(title, sizeof title, "%d", status) != 0)
        return -1;
    page_open(b, lang, title);
    sk_buf_printf(b, "<p>%s</p>\n", T(lang, *t));
    page_close(b);
    return sk_buf_finish(b);
}
