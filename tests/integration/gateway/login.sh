#!/usr/bin/env bash
# Password step: wrong password, unknown user and ID != certificate CN all get the
# same 401 page; the right password gets a session cookie with every required
# attribute, and the upstream then sees the verified identity.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
sk_setup

# ghost has a valid certificate but no account.
sk_make_ca alice:acme bob:acme ghost:acme
sk_start_upstream
sk_write_config </dev/null
sk_add_user alice acme "$(sk_password)" admin
sk_add_user bob acme "$(sk_password)" general
sk_start_gateway

# The page text without the per-request csrf field, and with the certificate's
# name and the submitted ID (which the page may show back to the same client)
# replaced by a placeholder: what must not differ is everything else.
page_norm() { # CN SUBMITTED_ID
    CN=$1 ID=$2 perl -0pe 's/<input\b[^>]*\bname\s*=\s*"csrf"[^>]*>/<csrf>/gi;
        s/\b\Q$ENV{CN}\E\b/<ID>/g; s/\b\Q$ENV{ID}\E\b/<ID>/g' "$SK_TMP/last.body"
}

code=$(sk_login_attempt alice alice "Wrong-Passw0rd")
sk_assert_eq "$code" 401 "wrong password"
wrong=$(page_norm alice alice)
sk_assert_eq "$(sk_session_cookie_from_last)" "" "cookie after a wrong password"
sk_assert_ne "$wrong" "" "page after a wrong password"

code=$(sk_login_attempt ghost ghost "Wrong-Passw0rd")
sk_assert_eq "$code" 401 "unknown user"
sk_assert_eq "$(page_norm ghost ghost)" "$wrong" "unknown-user page must equal wrong-password page"

# ID != CN, even with the other user's correct password.
code=$(sk_login_attempt alice bob "$(sk_user_password bob)")
sk_assert_eq "$code" 401 "login ID differing from the certificate CN"
sk_assert_eq "$(page_norm alice bob)" "$wrong" "ID!=CN page must equal wrong-password page"
sk_assert_eq "$(sk_session_cookie_from_last)" "" "cookie after ID!=CN"

# A POST without the csrf field is refused (no session).
code=$(sk_curl -u alice /.sekisho/login -H 'Accept: text/html' --data-urlencode id=alice \
    --data-urlencode "password@$SK_TMP/secrets/alice.pw")
sk_assert_ne "$code" 303 "login POST without csrf"
sk_assert_eq "$(sk_session_cookie_from_last)" "" "cookie after a POST without csrf"

# The right password.
code=$(sk_login_attempt alice alice "$(sk_user_password alice)")
sk_assert_eq "$code" 303 "right password"
sk_assert_eq "$(sk_last_header location)" "/" "Location after login without return"
setcookie=$(tr -d '\r' <"$SK_TMP/last.headers" | grep -i '^set-cookie: *__Host-sekisho=' | tail -n 1)
sk_assert_ne "$setcookie" "" "Set-Cookie __Host-sekisho"
attrs=";$(printf '%s' "${setcookie#*:}" | cut -d';' -f2- | tr -d ' ' | tr 'A-Z' 'a-z');"
for a in secure httponly samesite=strict path=/; do
    sk_assert_contains "$attrs" ";$a;" "cookie attribute $a"
done
sk_assert_not_contains "$attrs" ";domain=" "cookie must not carry Domain"
cookie=$(sk_session_cookie_from_last)
sk_assert_match "$cookie" '^[A-Za-z0-9_~.-]{22,}$' "session token (>= 128 bits, cookie-safe)"

code=$(sk_curl -u alice -C "$cookie" /echo)
sk_assert_eq "$code" 200 "/echo with the session"
sk_assert_eq "$(sk_echo_header_values X-Sekisho-User)" alice "X-Sekisho-User"
sk_assert_eq "$(sk_echo_header_values X-Sekisho-Tenant)" acme "X-Sekisho-Tenant"
sk_assert_contains "$(sk_echo_header_values X-Sekisho-Roles)" admin "X-Sekisho-Roles"
serial=$(sk_echo_header_values X-Sekisho-Cert-Serial)
sk_assert_eq "$(sk_norm_serial "$serial")" "$(sk_norm_serial "$(cat "$SK_TMP/users/alice.serial")")" \
    "X-Sekisho-Cert-Serial"

# The portal page greets the user (HTML path through the proxy).
code=$(sk_curl -u alice -C "$cookie" / -H 'Accept: text/html')
sk_assert_eq "$code" 200 "portal page"
sk_assert_contains "$(sk_last_body)" "<b>alice</b>" "portal greets the user"

# bob is a general user: the role reaches the upstream as such.
bobcookie=$(sk_login bob)
code=$(sk_curl -u bob -C "$bobcookie" /echo)
sk_assert_eq "$code" 200 "/echo as bob"
sk_assert_eq "$(sk_echo_header_values X-Sekisho-User)" bob "X-Sekisho-User for bob"
sk_assert_contains "$(sk_echo_header_values X-Sekisho-Roles)" general "X-Sekisho-Roles for bob"
sk_assert_not_contains "$(sk_echo_header_values X-Sekisho-Roles)" admin "bob is not admin"

# Every login issues a new token (no session fixation).
cookie2=$(sk_login alice)
sk_assert_ne "$cookie2" "$cookie" "second login token"
sk_stop_gateway
sk_pass
