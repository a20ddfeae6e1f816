#!/usr/bin/env bash
# Issue 13 items 4-7 through the real gateway and the demo upstream's /echo:
#  4. rewrite, identity, forwarding and method-override header families never
#     reach the upstream, in any case and with '_' or '.' for '-';
#  5. a long request URI is audited with its path (query dropped first, then cut
#     with a visible marker);
#  6. only the exact "__Host-sekisho=" pair is the session; every spelling that
#     mentions it is stripped, none is accepted as the session;
#  7. without tenants the upstream gets its own authority as Host and no
#     X-Forwarded-Host: a client's "Host: evil.example" goes nowhere; two Host
#     headers are 400.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# shellcheck source=../lifecycle/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lifecycle/common.sh"
sk_setup
command -v jq >/dev/null || sk_fail "jq not installed"
sk_setup_gateway bob:acme
cookie=$(sk_login bob)

# ---- 4. header families -------------------------------------------------------------
hdrs=(
    X-Original-URL X-Rewrite-URL X-Forwarded-User X-Auth-Request-User X-User X-Original-Host X-Host
    X-Forwarded Forwarded-For X-Originating-IP X-Remote-Addr X-HTTP-Method-Override X-Sekisho.User
    x_original_url X.Rewrite.URL X-AUTH-REQUEST-EMAIL X-User-Id X-Forwarded-Email X-Http-Method
    X-Method-Override X-Original-Forwarded-For X-Remote-User Remote-User X-Client-IP X-Real-IP
    Client-IP True-Client-IP X-Forwarded-Host X-Forwarded-Prefix Forwarded X-Authenticated-User
    X-SSL-Client-Cert Proxy-Authorization CF-Connecting-IP X-Envoy-External-Address
)
args=()
for i in "${!hdrs[@]}"; do
    args+=(-H "${hdrs[$i]}: inj4-$i")
done
code=$(sk_curl -u bob -C "$cookie" /echo "${args[@]}" -H 'X-Harmless: kept-4')
sk_assert_eq "$code" 200 "GET /echo with the header families"
sk_assert_not_contains "$(sk_last_body)" "inj4-" "a stripped header family reached the upstream"
sk_assert_eq "$(sk_echo_header_values X-Harmless)" kept-4 "an ordinary header passes"
sk_assert_eq "$(sk_echo_header_values X-Sekisho-User)" bob "X-Sekisho-User"
# The method the rules saw is the method that runs.
code=$(sk_curl -u bob -C "$cookie" /echo -X POST --data-binary x -H 'X-HTTP-Method-Override: DELETE')
sk_assert_eq "$code" 200 "POST with a method override"
sk_assert_contains "$(sk_last_body)" '"method":"POST"' "method seen by the upstream"
sk_assert_not_contains "$(sk_last_body)" "DELETE" "the override reached the upstream"

# ---- 6. cookie spellings --------------------------------------------------------------
for spelling in "__host-sekisho=$cookie" "__Host-sekisho =$cookie" "a=1, __Host-sekisho=$cookie" \
    "__HOST-SEKISHO=$cookie" "x=__Host-sekisho=$cookie"; do
    code=$(sk_curl -u bob /echo -H "Cookie: $spelling")
    sk_assert_eq "$code" 401 "Cookie '$spelling' is not a session"
    code=$(sk_curl -u bob -C "$cookie" /echo -H "Cookie: $spelling; theme=dark")
    sk_assert_eq "$code" 200 "real session plus '$spelling'"
    sk_assert_not_contains "$(sk_last_body)" "$cookie" "session token forwarded with '$spelling'"
    sk_assert_not_contains "$(sk_last_body)" "sekisho=" "session cookie name forwarded with '$spelling'"
    sk_assert_contains "$(sk_echo_header_values Cookie)" "theme=dark" "other cookies pass with '$spelling'"
done
# RFC 6265 reads this as __Host-sekisho with the value "T, b=2": not a token.
code=$(sk_curl -u bob /echo -H "Cookie: __Host-sekisho=$cookie, b=2")
sk_assert_eq "$code" 401 "session cookie with a comma-joined tail"
# Two session cookies are ambiguous: no session.
code=$(sk_curl -u bob /echo -H "Cookie: __Host-sekisho=$cookie; __Host-sekisho=$cookie")
sk_assert_eq "$code" 401 "two session cookies"

# ---- 7. Host --------------------------------------------------------------------------
code=$(sk_curl -u bob -C "$cookie" /echo -H 'Host: evil.example')
sk_assert_eq "$code" 200 "GET /echo with Host: evil.example (no tenants: any name is served)"
sk_assert_not_contains "$(sk_last_body)" "evil.example" "the client's Host reached the upstream"
sk_assert_eq "$(sk_echo_header_values Host)" "$SK_HOST:$SK_UP_PORT" "Host at the upstream"
sk_assert_eq "$(sk_echo_header_count X-Forwarded-Host)" 0 "X-Forwarded-Host without tenants"
for h in 'evil.example/x' 'a b' 'evil.example:99999' 'evil.example:x' '[::1' 'a@b'; do
    code=$(sk_curl -u bob -C "$cookie" /echo -H "Host: $h")
    sk_assert_eq "$code" 400 "malformed Host '$h'"
done
req=$SK_TMP/twohosts.req
printf 'GET /echo HTTP/1.1\r\nHost: %s\r\nHost: evil.example\r\nCookie: __Host-sekisho=%s\r\nConnection: close\r\n\r\n' \
    "$SK_HOST:$SK_GW_PORT" "$cookie" >"$req"
status=$(sk_raw_request bob "$req" 10 | head -n 1 | tr -d '\r')
sk_assert_match "$status" '^HTTP/1\.1 400' "two Host headers"
# SNI and Host disagree: 421, also without tenants.
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 --cacert "$SK_CA_DIR/ca.crt" \
    --cert "$SK_TMP/users/bob.crt" --key "$SK_TMP/users/bob.key" -k \
    --resolve "sni.example:$SK_GW_PORT:$SK_HOST" -H "Cookie: __Host-sekisho=$cookie" \
    -H 'Host: other.example' "https://sni.example:$SK_GW_PORT/echo") || true
sk_assert_eq "$code" 421 "SNI sni.example with Host other.example"

# ---- 5. audit path of a long URI ------------------------------------------------------
long=$(printf 'A%.0s' $(seq 1 1100))
code=$(sk_curl -u bob -C "$cookie" "/secret-report-42?x=$long")
sk_assert_eq "$code" 404 "long query (the upstream's 404)"
longpath=/$(printf 'p%.0s' $(seq 1 1500))
code=$(sk_curl -u bob -C "$cookie" "$longpath?q=1")
sk_assert_eq "$code" 404 "long path (the upstream's 404)"
sk_stop_gateway
X=$SK_TMP/export.jsonl
lc_audit_export "$X"
n=$(lc_jq_count "$X" '.ev == "http.request" and .details.path == "/secret-report-42"')
sk_assert_eq "$n" 1 "audit entry with the path of the long-query request"
sk_assert_file_not_contains "$X" "AAAAAAAAAA" "the query in the audit log"
n=$(lc_jq_count "$X" '.ev == "http.request" and (.details.path | startswith("/ppppp")) and
    (.details.path | endswith("...[truncated]")) and (.details.path | length) < 1100')
sk_assert_eq "$n" 1 "audit entry with the long path cut and marked"
sk_pass
