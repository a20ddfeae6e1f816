#!/usr/bin/env bash
# IP allowlists through the real gateway (issue 4): global [access] allow, per-user
# `sekishoctl user allow-ip` / `deny-ip`, trusted proxies, IPv4 and IPv6.
#  - a refused address gets 403 for every path, /.sekisho/login included, and never a
#    login form, even with a valid certificate and a valid session cookie;
#  - the client address is the TCP peer (curl --interface 127.0.0.x picks it on the
#    loopback); X-Forwarded-For counts only from [access] trusted_proxies, read from
#    the right, and a malformed chain from a trusted proxy is refused;
#  - IPv6: a gateway on [::1] with ::1 allowed / not allowed, per-user IPv6 lists.
# (Per-tenant lists are tested in tenants.sh.)
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# shellcheck source=../lifecycle/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lifecycle/common.sh"
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
sk_setup

sk_make_ca alice:acme bob:acme carol:acme
sk_start_upstream
sk_write_config <<'EOF'
[access]
allow = 127.0.0.1/32, 127.0.0.2/32
allow = 192.0.2.0/24
trusted_proxies = 127.0.0.2
EOF
pa=$(sk_password) pb=$(sk_password) pc=$(sk_password)
pc_add_user alice acme admin "$pa"
pc_add_user bob acme general "$pb"
pc_add_user carol acme general "$pc"
pc_ctl user allow-ip alice 127.0.0.1/32 --tenant acme
pc_ctl user allow-ip bob 192.0.2.7/32 --tenant acme
sk_start_gateway
UP=$SK_UP_LOG

# refused WHAT USER [COOKIE]: every path answers 403 without a form, and nothing of it
# reaches the upstream. Uses PC_SRC, PC_NAME and PC_HDR.
refused() {
    local what=$1 u=$2 ck=${3:-} p code before
    local -a c=()
    [[ -z $ck ]] || c=(-C "$ck")
    before=$(grep -c 'demo-upstream:' "$UP" || true)
    for p in /.sekisho/login / /echo /.sekisho/health /.sekisho/password /.sekisho/totp /.sekisho/logout \
        /.sekisho/metrics /nope; do
        code=$(pc_curl -u "$u" "${c[@]}" "$p" -H 'Accept: text/html')
        sk_assert_eq "$code" 403 "$what: GET $p"
        sk_assert_not_contains "$(sk_last_body)" "<form" "$what: GET $p"
        sk_assert_not_contains "$(sk_last_body)" 'name="csrf"' "$what: GET $p"
        sk_assert_eq "$(grep -ci '^set-cookie' "$SK_TMP/last.headers" || true)" 0 "$what: cookie for GET $p"
    done
    code=$(pc_curl -u "$u" "${c[@]}" /.sekisho/login -H 'Accept: text/html' \
        --data-urlencode "id=$u" --data-urlencode "password@$SK_TMP/secrets/$u.acme.pw")
    sk_assert_eq "$code" 403 "$what: POST /.sekisho/login with the right password"
    sk_assert_eq "$(sk_session_cookie_from_last)" "" "$what: session cookie from a refused address"
    code=$(pc_curl -u "$u" "${c[@]}" /echo -X POST --data x=1)
    sk_assert_eq "$code" 403 "$what: POST /echo"
    sk_assert_eq "$(grep -c 'demo-upstream:' "$UP" || true)" "$before" "$what: requests reaching the upstream"
}
# allowed WHAT USER: the login form is shown (200 with a password field).
allowed() {
    local code
    code=$(pc_curl -u "$2" /.sekisho/login -H 'Accept: text/html')
    sk_assert_eq "$code" 200 "$1: login form"
    sk_assert_contains "$(sk_last_body)" 'name="password"' "$1: login form"
}

# ---- global allowlist -----------------------------------------------------------
PC_SRC=127.0.0.1
ccookie=$(pc_login carol "$pc")
sk_assert_eq "$(pc_curl -u carol -C "$ccookie" /echo)" 200 "carol from 127.0.0.1"
sk_assert_eq "$(sk_echo_header_values X-Forwarded-For)" 127.0.0.1 "X-Forwarded-For toward the upstream"
PC_SRC=127.0.0.2
allowed "carol from 127.0.0.2 (allowed globally)" carol
PC_SRC=127.0.0.3
refused "carol from 127.0.0.3 (not in [access] allow)" carol
refused "carol's valid session from 127.0.0.3" carol "$ccookie"
PC_SRC=127.0.0.1
sk_assert_eq "$(pc_curl -u carol -C "$ccookie" /echo)" 200 "carol's session from 127.0.0.1 again"

# ---- per-user allowlists ----------------------------------------------------------
PC_SRC=127.0.0.1
acookie=$(pc_login alice "$pa")
sk_assert_eq "$(pc_curl -u alice -C "$acookie" /echo)" 200 "alice from 127.0.0.1 (her list)"
refused "bob from 127.0.0.1 (his list is 192.0.2.7/32)" bob
PC_SRC=127.0.0.2
refused "alice from 127.0.0.2 (her list is 127.0.0.1/32)" alice "$acookie"

# ---- trusted proxy 127.0.0.2 --------------------------------------------------------
PC_SRC=127.0.0.2
PC_HDR=(-H 'X-Forwarded-For: 192.0.2.7')
bcookie=$(pc_login bob "$pb")
sk_assert_eq "$(pc_curl -u bob -C "$bcookie" /echo)" 200 \
    "bob via the trusted proxy with X-Forwarded-For 192.0.2.7"
sk_assert_eq "$(sk_echo_header_values X-Forwarded-For)" 127.0.0.2 \
    "X-Forwarded-For toward the upstream: the gateway's own, the client's header stripped"
PC_HDR=(-H 'X-Forwarded-For: 198.51.100.1, 192.0.2.7')
allowed "bob via the trusted proxy, forged entry left of 192.0.2.7" bob
PC_HDR=(-H 'X-Forwarded-For: 192.0.2.99')
refused "bob via the trusted proxy as 192.0.2.99" bob "$bcookie"
PC_HDR=(-H 'X-Forwarded-For: 198.51.100.1')
refused "carol via the trusted proxy as 198.51.100.1 (not in [access] allow)" carol "$ccookie"
PC_HDR=(-H 'X-Forwarded-For: 127.0.0.1')
allowed "alice via the trusted proxy as 127.0.0.1" alice
PC_HDR=(-H 'X-Forwarded-For: not-an-address')
refused "malformed X-Forwarded-For from the trusted proxy" carol
PC_HDR=()
refused "bob via the trusted proxy without X-Forwarded-For" bob "$bcookie"

# The same headers from 127.0.0.1, which is not a trusted proxy, are ignored.
PC_SRC=127.0.0.1
PC_HDR=(-H 'X-Forwarded-For: 192.0.2.7')
refused "bob from 127.0.0.1 claiming 192.0.2.7 (untrusted peer)" bob "$bcookie"
PC_HDR=(-H 'X-Forwarded-For: 198.51.100.1')
allowed "carol from 127.0.0.1 claiming 198.51.100.1 (untrusted peer)" carol
sk_assert_eq "$(pc_curl -u carol -C "$ccookie" /echo)" 200 "carol's session, forged header ignored"
PC_HDR=()

# ---- removing a per-user entry --------------------------------------------------------
pc_ctl user deny-ip alice 127.0.0.1/32 --tenant acme
PC_SRC=127.0.0.2
allowed "alice from 127.0.0.2 after deny-ip removed her only entry" alice

# ---- checked at every request, not once per connection -------------------------------
# alice keeps a TLS connection open (from 127.0.0.1); an operator narrows her list to
# 127.0.0.2 meanwhile: the next request on that same connection is refused and the
# connection closed.
PC_SRC=127.0.0.1
acookie=$(pc_login alice "$pa")
lc_ka_open ka alice
sk_assert_eq "$(lc_ka_request ka /echo "$acookie")" 200 "alice on a kept-alive connection"
sk_assert_eq "$(lc_ka_request ka /echo "$acookie")" 200 "alice on a kept-alive connection (2nd request)"
pc_ctl user allow-ip alice 127.0.0.2/32 --tenant acme
sk_assert_eq "$(lc_ka_request ka /echo "$acookie")" 403 "same connection after allow-ip narrowed alice's list"
lc_ka_closed ka 5 || sk_fail "the connection stayed open after the address refusal"
lc_ka_close ka
pc_ctl user deny-ip alice 127.0.0.2/32 --tenant acme
sk_stop_gateway

# ---- IPv6 -----------------------------------------------------------------------------
if ! pc_ipv6_loopback; then
    sk_log "SKIP IPv6 part: ::1 is not configured on the loopback interface"
    sk_pass
    exit 0
fi
"$SK_BIN/sekisho-ca" server-cert --dir "$SK_CA_DIR" --host ::1 --out "$SK_TMP/server6" \
    >"$SK_TMP/server6.log" 2>&1 || sk_fail "sekisho-ca server-cert --host ::1: $(cat "$SK_TMP/server6.log")"
v6config() { # ALLOW: the config of the IPv6 gateway with this global allowlist
    sk_write_config <<EOF
[access]
allow = $1
EOF
    sed -i -e "s|^address = .*|address = [::1]:$SK_GW_PORT|" -e 's|^cert = server.crt|cert = server6.crt|' \
        -e 's|^key = server.key|key = server6.key|' "$SK_CONF"
}
PC_SRC="" PC_NAME=::1
v6config "::1/128"
sk_start_gateway
ccookie=$(pc_login carol "$pc")
sk_assert_eq "$(pc_curl -u carol -C "$ccookie" /echo)" 200 "carol over IPv6 (::1 allowed)"
sk_assert_eq "$(sk_echo_header_values X-Forwarded-For)" ::1 "X-Forwarded-For toward the upstream (IPv6)"
# bob's list holds only 192.0.2.7/32: an IPv6 client is not in it.
refused "bob over IPv6 (his list is IPv4 only)" bob
pc_ctl user allow-ip bob ::1/128 --tenant acme
allowed "bob over IPv6 after allow-ip ::1/128" bob
pc_ctl user allow-ip alice 2001:db8::/32 --tenant acme
refused "alice over IPv6 (her list is 2001:db8::/32)" alice
pc_ctl user allow-ip alice ::/127 --tenant acme
allowed "alice over IPv6 (::/127 holds ::1)" alice
sk_stop_gateway

v6config "127.0.0.0/8, 2001:db8::/32, ::2/128"
sk_start_gateway
refused "carol over IPv6 (::1 not in [access] allow)" carol "$ccookie"
refused "bob over IPv6 (his list allows ::1, the global one does not)" bob
# The refusals reach the journal summed: a few lines, not one per request.
n=$(grep -c "refused by the IP allowlist" "$SK_GW_LOG" || true)
sk_assert_lt 0 "$n" "journal lines for allowlist refusals"
grep -qE "refused by the IP allowlist: ([2-9]|[1-9][0-9]+) request" "$SK_GW_LOG" ||
    sk_fail "no journal line sums several allowlist refusals: $(grep "IP allowlist" "$SK_GW_LOG" | head -5)"
sk_stop_gateway
sk_pass
