#!/usr/bin/env bash
# TOTP through the real gateway with oathtool as the authenticator (issue 4):
#  - `sekishoctl user totp enable` prints an otpauth:// URI; from then on the login form
#    asks for the code, and a login without it, with a code 2 steps old or 2 steps
#    ahead is 401; the current code is 303; the same code again (replay) is 401; the
#    next step's code (+1, inside the window) is accepted;
#  - self-enrolment at /.sekisho/totp: an <svg> QR code and the base32 key in <code>,
#    a fresh key at every visit until confirmed, confirmation by a code (csrf checked),
#    and the confirming code cannot be used again to log in (a mistyped code: see
#    totp_retry.sh);
#  - `sekishoctl user totp disable` returns to password-only logins.
# The gateway runs on the real clock, as oathtool does.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# shellcheck source=../lifecycle/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lifecycle/common.sh"
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
sk_setup
command -v oathtool >/dev/null || sk_fail "oathtool not installed"

sk_make_ca alice:acme bob:acme
sk_start_upstream
sk_write_config </dev/null
pa=$(sk_password) pb=$(sk_password)
pc_add_user alice acme admin "$pa"
pc_add_user bob acme general "$pb"
sk_start_gateway
last_fail() { grep -F "login failed: acme/$1 " "$SK_GW_LOG" | tail -n 1; }
# attempt USER PASSWORD [CODE]: one login with (or without) a totp field.
attempt() {
    if (($# >= 3)); then
        pc_login_attempt "$1" "$1" "$2" --data-urlencode "totp=$3"
    else
        pc_login_attempt "$1" "$1" "$2"
    fi
}
totp_field() { sk_curl -u "$1" /.sekisho/login -H 'Accept: text/html' >/dev/null; grep -c 'name="totp"' "$SK_TMP/last.body" || true; }

# ---- enabled by the operator --------------------------------------------------------
sk_assert_eq "$(totp_field alice)" 0 "totp field before enrolment"
pc_ctl user totp enable alice --tenant acme
uri=$(grep -m1 '^otpauth://' "$SK_TMP/ctl.out" || true)
sk_assert_match "$uri" '^otpauth://totp/[^?]+\?secret=[A-Z2-7]+&' "otpauth URI from sekishoctl"
secret=$(sed -E 's/.*[?&]secret=([A-Z2-7]+).*/\1/' <<<"$uri")
sk_assert_eq "$(totp_field alice)" 1 "totp field after enrolment"

code=$(attempt alice "$pa")
sk_assert_eq "$code" 401 "right password without a code"
sk_assert_eq "$(sk_session_cookie_from_last)" "" "cookie without a code"
code=$(attempt alice "$pa" "$(pc_totp "$secret" -60)")
sk_assert_eq "$code" 401 "code 2 steps old"
sk_assert_contains "$(last_fail alice)" "(bad_totp," "reason for a code 2 steps old"
pc_totp_settle 8 # "2 steps ahead" must not become "1 step ahead" on the way
code=$(attempt alice "$pa" "$(pc_totp "$secret" 60)")
sk_assert_eq "$code" 401 "code 2 steps ahead"
code=$(attempt alice "Wrong-Pass9" "$(pc_totp "$secret")")
sk_assert_eq "$code" 401 "wrong password with the right code"
sk_assert_contains "$(last_fail alice)" "(bad_password," "reason for a wrong password with a code"

now_code=$(pc_totp "$secret")
code=$(attempt alice "$pa" "$now_code")
sk_assert_eq "$code" 303 "right password and the current code"
ac=$(sk_session_cookie_from_last)
sk_assert_ne "$ac" "" "cookie after a TOTP login"
sk_assert_eq "$(sk_curl -u alice -C "$ac" /echo)" 200 "session after a TOTP login"
code=$(attempt alice "$pa" "$now_code")
sk_assert_eq "$code" 401 "the same code again (replay)"
sk_assert_contains "$(last_fail alice)" "(totp_replay," "reason for a replayed code"
sk_assert_eq "$(sk_session_cookie_from_last)" "" "cookie for a replayed code"
code=$(attempt alice "$pa" "$(pc_totp "$secret" 30)")
sk_assert_eq "$code" 303 "the next step's code (inside the +-1 window)"

# ---- self-enrolment at /.sekisho/totp ---------------------------------------------------
bc=$(pc_login bob "$pb")
sk_assert_eq "$(sk_curl -u bob /.sekisho/totp -H 'Accept: text/html')" 303 "enrolment page without a session"
sk_assert_match "$(sk_last_header location)" '^/\.sekisho/login' "redirect of the enrolment page without a session"
key_of_page() { perl -ne 'print "$1\n" if /<code>([A-Z2-7]{16,})<\/code>/' "$SK_TMP/last.body" | head -n 1; }
sk_assert_eq "$(sk_curl -u bob -C "$bc" /.sekisho/totp -H 'Accept: text/html')" 200 "enrolment page"
first=$(key_of_page)
sk_assert_ne "$first" "" "base32 key in <code> on the enrolment page"
sk_assert_eq "$(sk_curl -u bob -C "$bc" /.sekisho/totp -H 'Accept: text/html')" 200 "enrolment page again"
sk_assert_contains "$(sk_last_body)" "<svg" "QR code (<svg>) on the enrolment page"
bkey=$(key_of_page)
csrf=$(sk_csrf_from_last)
sk_assert_ne "$csrf" "" "csrf on the enrolment page"
sk_assert_ne "$bkey" "$first" "a fresh key at every visit before confirmation"
sk_assert_contains "$(sk_last_body)" 'name="totp"' "code field on the enrolment page"

code=$(sk_curl -u bob -C "$bc" /.sekisho/totp -H 'Accept: text/html' --data-urlencode "csrf=x$csrf" \
    --data-urlencode "totp=$(pc_totp "$bkey")")
sk_assert_eq "$code" 403 "confirmation with a wrong csrf"
sk_assert_eq "$(totp_field bob)" 0 "totp field before bob confirmed"
conf_code=$(pc_totp "$bkey")
code=$(sk_curl -u bob -C "$bc" /.sekisho/totp -H 'Accept: text/html' --data-urlencode "csrf=$csrf" \
    --data-urlencode "totp=$conf_code")
sk_assert_eq "$code" 200 "confirmation with the right code"
sk_assert_contains "$(sk_last_body)" "Two-step verification is on." "message after confirmation"
sk_assert_eq "$(sk_curl -u bob -C "$bc" /.sekisho/totp -H 'Accept: text/html')" 200 "enrolment page after confirmation"
sk_assert_contains "$(sk_last_body)" "Two-step verification is on for this account." "page of an enrolled user"
sk_assert_not_contains "$(sk_last_body)" "<svg" "no new key for an enrolled user"
sk_assert_eq "$(sk_curl -u bob -C "$bc" /echo)" 200 "bob's session after enrolment"

sk_assert_eq "$(totp_field bob)" 1 "totp field after bob confirmed"
sk_assert_eq "$(attempt bob "$pb")" 401 "bob without a code after enrolment"
sk_assert_eq "$(attempt bob "$pb" "$conf_code")" 401 "bob with the code that confirmed the enrolment"
sk_assert_contains "$(last_fail bob)" "(totp_replay," "reason for the confirming code"
sk_assert_eq "$(attempt bob "$pb" "$(pc_totp "$bkey" 30)")" 303 "bob with the next step's code"

# ---- disabled by the operator ----------------------------------------------------------
pc_ctl user totp disable alice --tenant acme
sk_assert_eq "$(totp_field alice)" 0 "totp field after disable"
pc_login alice "$pa" >/dev/null
sk_stop_gateway
sk_pass
