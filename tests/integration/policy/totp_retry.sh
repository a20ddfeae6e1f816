#!/usr/bin/env bash
# TOTP self-enrolment at /.sekisho/totp after a mistyped code (issue 4). The page then
# says "That code did not match. Check the time on your device and try again.", so
# trying again with a code from the key the person scanned must confirm the
# enrolment. A code of the key of an earlier, abandoned visit must not.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# shellcheck source=../lifecycle/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lifecycle/common.sh"
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
sk_setup
command -v oathtool >/dev/null || sk_fail "oathtool not installed"

sk_make_ca carol:acme
sk_start_upstream
sk_write_config </dev/null
pcar=$(sk_password)
pc_add_user carol acme general "$pcar"
sk_start_gateway
key_of_page() { perl -ne 'print "$1\n" if /<code>([A-Z2-7]{16,})<\/code>/' "$SK_TMP/last.body" | head -n 1; }
page() { sk_curl -u carol -C "$cc" /.sekisho/totp -H 'Accept: text/html' "$@"; }

cc=$(pc_login carol "$pcar")
sk_assert_eq "$(page)" 200 "first enrolment page (abandoned)"
abandoned=$(key_of_page)
sk_assert_eq "$(page)" 200 "enrolment page"
ckey=$(key_of_page)
csrf=$(sk_csrf_from_last)
sk_assert_ne "$ckey" "" "key on the enrolment page"
sk_assert_ne "$ckey" "$abandoned" "a fresh key at every visit"

for bad in "$(pc_wrong_totp "$ckey")" "$(pc_totp "$abandoned")"; do
    code=$(page --data-urlencode "csrf=$csrf" --data-urlencode "totp=$bad")
    sk_assert_eq "$code" 400 "confirmation with a wrong code ($bad)"
    sk_assert_contains "$(sk_last_body)" "That code did not match." "message for a wrong confirmation code"
done
shown=$(key_of_page)
code=$(page --data-urlencode "csrf=$csrf" --data-urlencode "totp=$(pc_totp "$ckey")")
[[ $code == 200 ]] || sk_fail "retry with the scanned key $ckey after a mistyped code: expected 200, got $code; \
the error page had shown another key, $shown: $(grep -o 'class="msg[^<]*' "$SK_TMP/last.body")"
sk_assert_contains "$(sk_last_body)" "Two-step verification is on." "message after confirmation"
sk_assert_eq "$(pc_login_attempt carol carol "$pcar" --data-urlencode "totp=$(pc_totp "$ckey" 30)")" 303 \
    "login with the next step's code of the scanned key"
sk_stop_gateway
sk_pass
