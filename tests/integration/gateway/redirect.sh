#!/usr/bin/env bash
# Without a session: a browser (Accept: text/html) is sent to the login page with
# the local return path; an API client gets 401. After login the return path is
# honoured only when it is local: //host, https://host and /\host go to "/".
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
sk_setup
sk_setup_gateway alice:acme

urldecode() { perl -pe 's/\+/ /g; s/%([0-9A-Fa-f]{2})/chr(hex($1))/ge'; }
# Location without our own origin, if the gateway made it absolute.
location() {
    local l
    l=$(sk_last_header location)
    printf '%s' "${l#"https://$SK_HOST:$SK_GW_PORT"}"
}

target='/admin/page?x=1&y=a%20b'
code=$(sk_curl -u alice "$target" -H 'Accept: text/html,application/xhtml+xml;q=0.9,*/*;q=0.8')
sk_assert_eq "$code" 303 "browser without a session"
loc=$(location)
sk_assert_match "$loc" '^/\.sekisho/login\?return=' "redirect target"
ret=$(printf '%s' "${loc#*\?return=}" | sed 's/&.*//' | urldecode)
sk_assert_eq "$ret" "$target" "return path in the redirect"

for accept in "" "application/json" "*/*"; do
    if [[ -n $accept ]]; then
        code=$(sk_curl -u alice "$target" -H "Accept: $accept")
    else
        code=$(sk_curl -u alice "$target" -H "Accept:")
    fi
    sk_assert_eq "$code" 401 "API client (Accept: '$accept') without a session"
    sk_assert_eq "$(sk_last_header location)" "" "no redirect for an API client"
done

pw=$(sk_user_password alice)

# The form reached through the redirect carries the return path back.
SK_LOGIN_PATH=$loc
code=$(sk_login_attempt alice alice "$pw")
unset SK_LOGIN_PATH
sk_assert_eq "$code" 303 "login through the redirect"
sk_assert_eq "$(location)" "$target" "Location after login with a local return path"

code=$(sk_login_attempt alice alice "$pw" "/admin/other?z=9")
sk_assert_eq "$code" 303 "login with return=/admin/other?z=9"
sk_assert_eq "$(location)" "/admin/other?z=9" "local return path"

for evil in "//evil.example" "//evil.example/path" "https://evil.example/" "http://evil.example" \
    "/\\evil.example" "javascript:alert(1)" "evil.example"; do
    code=$(sk_login_attempt alice alice "$pw" "$evil")
    sk_assert_eq "$code" 303 "login with return=$evil"
    sk_assert_eq "$(location)" "/" "Location for return=$evil"
done

# A return path in the login URL itself is validated too.
SK_LOGIN_PATH='/.sekisho/login?return=%2F%2Fevil.example'
code=$(sk_login_attempt alice alice "$pw")
unset SK_LOGIN_PATH
sk_assert_eq "$code" 303 "login via /.sekisho/login?return=//evil.example"
sk_assert_eq "$(location)" "/" "Location for a form opened with return=//evil.example"
sk_stop_gateway
sk_pass
