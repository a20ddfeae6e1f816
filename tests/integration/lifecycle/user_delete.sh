#!/usr/bin/env bash
# `sekishoctl user delete` against a running gateway (issue 3: "a certificate whose
# user has been deleted is refused"): every session of the user ends at once — new
# connections and a connection kept alive from before — and the still valid
# certificate cannot log in again: 401 with the same page as a wrong password.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
sk_setup
sk_setup_gateway alice:acme bob:acme
upstream_echo_count() { grep -c ' /echo' "$SK_UP_LOG" || true; }

# Same normalisation as gateway/login.sh: csrf field and the user's own name out.
page_norm() {
    CN=$1 perl -0pe 's/<input\b[^>]*\bname\s*=\s*"csrf"[^>]*>/<csrf>/gi; s/\b\Q$ENV{CN}\E\b/<ID>/g' \
        "$SK_TMP/last.body"
}
code=$(sk_login_attempt alice alice "Wrong-Passw0rd")
sk_assert_eq "$code" 401 "wrong password (reference page)"
wrong_page=$(page_norm alice)
sk_assert_ne "$wrong_page" "" "wrong-password page"

c1=$(sk_login alice)
c2=$(sk_login alice)
sk_assert_ne "$c1" "$c2" "two sessions of alice"
bc=$(sk_login bob)
for c in "$c1" "$c2"; do
    sk_assert_eq "$(sk_curl -u alice -C "$c" /echo)" 200 "alice's session before deletion"
done
lc_ka_open ka alice -tls1_2
sk_assert_eq "$(lc_ka_request ka /echo "$c1")" 200 "alice's kept-alive connection before deletion"

"$SK_BIN/sekishoctl" -c "$SK_CONF" user delete alice --tenant acme >"$SK_TMP/delete.log" 2>&1 </dev/null ||
    sk_fail "sekishoctl user delete: $(cat "$SK_TMP/delete.log")"
echo_before=$(upstream_echo_count)

# Immediately (no reload, no wait): every session is gone.
code=$(lc_ka_request ka /echo "$c1")
sk_assert_eq "$code" 401 "alice's kept-alive connection right after deletion"
for c in "$c1" "$c2"; do
    sk_assert_eq "$(sk_curl -u alice -C "$c" /echo)" 401 "alice's session after deletion (API)"
    code=$(sk_curl -u alice -C "$c" /echo -H 'Accept: text/html')
    sk_assert_eq "$code" 303 "alice's session after deletion (browser)"
    sk_assert_match "$(sk_last_header location)" '^(https://[^/]+)?/\.sekisho/login' "redirect after deletion"
done
sk_assert_eq "$(upstream_echo_count)" "$echo_before" "requests of the deleted user reaching the upstream"

# The right password no longer logs in, and the answer tells nothing.
code=$(sk_login_attempt alice alice "$(sk_user_password alice)")
sk_assert_eq "$code" 401 "login of the deleted user with the right password"
sk_assert_eq "$(sk_session_cookie_from_last)" "" "session cookie for the deleted user"
sk_assert_eq "$(page_norm alice)" "$wrong_page" "deleted-user page must equal the wrong-password page"

# bob is not affected.
sk_assert_eq "$(sk_curl -u bob -C "$bc" /echo)" 200 "bob after alice's deletion"
sk_assert_eq "$(sk_echo_header_values X-Sekisho-User)" bob "bob's identity"
lc_ka_close ka
sk_stop_gateway
sk_pass
