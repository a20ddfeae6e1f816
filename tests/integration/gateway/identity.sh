#!/usr/bin/env bash
# What the upstream sees: the gateway's identity and forwarding headers exactly once
# with the verified values; client-sent copies (any case, '_' for '-') and the
# gateway cookie never arrive; those headers alone never authenticate.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
sk_setup
sk_setup_gateway alice:acme
cookie=$(sk_login alice)
serial=$(sk_norm_serial "$(cat "$SK_TMP/users/alice.serial")")

spoof=(
    -H 'X-Sekisho-User: mallory' -H 'x_sekisho_user: mallory' -H 'X_SEKISHO_USER: mallory'
    -H 'X-SEKISHO-TENANT: evilcorp' -H 'x-sekisho-roles: superuser'
    -H 'X-Sekisho-Cert-Serial: 0BADC0DE' -H 'x_sekisho_cert_serial: 0BADC0DE'
    -H 'X-Forwarded-For: 203.0.113.66' -H 'x_forwarded_for: 203.0.113.67'
    -H 'X-Forwarded-Proto: gopher'
)

# Without a session the spoofed headers do not open anything.
code=$(sk_curl -u alice /echo "${spoof[@]}")
sk_assert_eq "$code" 401 "spoofed identity headers without a session"
sk_assert_not_contains "$(sk_last_body)" '"headers"' "upstream answer without a session"

check_echo() { # WHAT
    local h body
    body=$(sk_last_body)
    for h in mallory evilcorp superuser 0BADC0DE 203.0.113. gopher __Host-sekisho "$cookie"; do
        sk_assert_not_contains "${body,,}" "${h,,}" "$1: '$h' reached the upstream"
    done
    for h in X-Sekisho-User X-Sekisho-Tenant X-Sekisho-Roles X-Sekisho-Cert-Serial \
        X-Forwarded-For X-Forwarded-Proto; do
        sk_assert_eq "$(sk_echo_header_count "$h")" 1 "$1: number of $h headers (any case/_ form)"
    done
    sk_assert_eq "$(sk_echo_header_values X-Sekisho-User)" alice "$1: X-Sekisho-User"
    sk_assert_eq "$(sk_echo_header_values X-Sekisho-Tenant)" acme "$1: X-Sekisho-Tenant"
    sk_assert_eq "$(sk_norm_serial "$(sk_echo_header_values X-Sekisho-Cert-Serial)")" "$serial" \
        "$1: X-Sekisho-Cert-Serial"
    sk_assert_eq "$(sk_echo_header_values X-Forwarded-For)" 127.0.0.1 "$1: X-Forwarded-For"
    sk_assert_eq "$(sk_echo_header_values X-Forwarded-Proto)" https "$1: X-Forwarded-Proto"
}

# The session cookie together with another cookie in one header.
code=$(sk_curl -u alice /echo "${spoof[@]}" -H "Cookie: theme=dark; __Host-sekisho=$cookie; lang=ja")
sk_assert_eq "$code" 200 "GET /echo with spoofed headers and a session"
check_echo "GET"
sk_assert_contains "$(sk_echo_header_values Cookie)" "theme=dark" "other cookies pass"
sk_assert_contains "$(sk_echo_header_values Cookie)" "lang=ja" "other cookies pass"

# POST with a body, the session cookie in a Cookie header of its own.
code=$(sk_curl -u alice -C "$cookie" /echo "${spoof[@]}" -H 'Cookie: theme=dark' \
    --data-binary 'hello=world')
sk_assert_eq "$code" 200 "POST /echo with spoofed headers and a session"
check_echo "POST"
sk_assert_contains "$(sk_last_body)" '"method":"POST"' "method forwarded"
sk_assert_contains "$(sk_last_body)" '"body_bytes":11' "body forwarded"

# Query strings survive the proxy.
code=$(sk_curl -u alice -C "$cookie" '/echo?a=1&b=x%20y')
sk_assert_eq "$code" 200 "GET /echo?query"
sk_assert_contains "$(sk_last_body)" '"query":{"a":"1","b":"x y"}' "query forwarded"
sk_stop_gateway
sk_pass
