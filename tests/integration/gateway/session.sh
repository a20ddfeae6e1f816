#!/usr/bin/env bash
# A session belongs to the certificate it was made with: user B's certificate with
# user A's cookie is not authenticated and never proxied as A. Logout ends the
# session on the server: the old cookie stops working.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
sk_setup
sk_setup_gateway alice:acme bob:globex

upstream_echo_count() { grep -c ' /echo$' "$SK_UP_LOG" || true; }

a1=$(sk_login alice)
code=$(sk_curl -u alice -C "$a1" /echo)
sk_assert_eq "$code" 200 "alice with her own cookie"
before=$(upstream_echo_count)

code=$(sk_curl -u bob -C "$a1" /echo)
sk_assert_eq "$code" 401 "bob's certificate with alice's cookie (API client)"
code=$(sk_curl -u bob -C "$a1" /echo -H 'Accept: text/html')
sk_assert_eq "$code" 303 "bob's certificate with alice's cookie (browser)"
sk_assert_match "$(sk_last_header location)" '^(https://[^/]+)?/\.sekisho/login' \
    "redirect target for bob with alice's cookie"
sk_assert_eq "$(upstream_echo_count)" "$before" "requests reaching the upstream with a foreign cookie"

# Forged and malformed tokens.
for forged in "$(openssl rand -hex 32)" "${a1}x" "x" "" "%00"; do
    code=$(sk_curl -u alice /echo -H "Cookie: __Host-sekisho=$forged")
    sk_assert_eq "$code" 401 "forged cookie '$forged'"
done
sk_assert_eq "$(upstream_echo_count)" "$before" "requests reaching the upstream with forged cookies"

# bob's own session works and is bob's.
b1=$(sk_login bob)
code=$(sk_curl -u bob -C "$b1" /echo)
sk_assert_eq "$code" 200 "bob with his own cookie"
sk_assert_eq "$(sk_echo_header_values X-Sekisho-User)" bob "identity for bob's session"
sk_assert_eq "$(sk_echo_header_values X-Sekisho-Tenant)" globex "tenant for bob's session"

# Logout ends the session server-side.
a2=$(sk_login alice)
code=$(sk_curl -u alice -C "$a2" /echo)
sk_assert_eq "$code" 200 "alice's new session"
code=$(sk_curl -u alice -C "$a2" /.sekisho/logout -H 'Accept: text/html')
sk_assert_eq "$code" 200 "GET logout form"
csrf=$(sk_csrf_from_last)
sk_assert_ne "$csrf" "" "csrf in the logout form"

# A logout POST without the right csrf does nothing.
code=$(sk_curl -u alice -C "$a2" /.sekisho/logout -H 'Accept: text/html' --data-urlencode "csrf=wrong$csrf")
sk_assert_ne "$code" 303 "logout POST with a wrong csrf"
code=$(sk_curl -u alice -C "$a2" /echo)
sk_assert_eq "$code" 200 "session after a logout POST with a wrong csrf"

code=$(sk_curl -u alice -C "$a2" /.sekisho/logout -H 'Accept: text/html' --data-urlencode "csrf=$csrf")
sk_assert_eq "$code" 303 "POST logout"
sk_assert_match "$(sk_last_header location)" '^(https://[^/]+)?/\.sekisho/login' "redirect after logout"
code=$(sk_curl -u alice -C "$a2" /echo)
sk_assert_eq "$code" 401 "old cookie after logout"
code=$(sk_curl -u alice -C "$a2" / -H 'Accept: text/html')
sk_assert_eq "$code" 303 "old cookie after logout (browser)"

# bob's session is untouched by alice's logout.
code=$(sk_curl -u bob -C "$b1" /echo)
sk_assert_eq "$code" 200 "bob's session after alice's logout"
sk_stop_gateway
sk_pass
