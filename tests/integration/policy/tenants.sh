#!/usr/bin/env bash
# Tenants through the real gateway (issue 4): two [tenant.NAME] sections with their own
# host name, upstream and allowlist, one gateway address (curl --resolve, so SNI and
# Host carry the name).
#  - each tenant's users reach that tenant's upstream only, with X-Sekisho-Tenant set
#    by the gateway (a client's own header is dropped);
#  - a certificate of tenant A on tenant B's host: 403, never a login form;
#  - SNI and Host naming different tenants: 421; an unknown host: 421;
#  - no session crosses tenants (same user ID in both tenants, separate passwords);
#  - [tenant.globex] allow refuses an address that acme accepts.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# shellcheck source=../lifecycle/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lifecycle/common.sh"
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
sk_setup

sk_make_ca alice:acme bob:globex
SK_ISSUE_NAME=sam-acme sk_issue_user sam acme
SK_ISSUE_NAME=sam-globex sk_issue_user sam globex
# One certificate for both portal names (and 127.0.0.1 for requests without SNI).
pc_server_cert "$SK_TMP/server" acme.test globex.test portal.globex.test other.test 127.0.0.1
pc_start_upstream acme
UPA_PORT=$PC_UP_PORT UPA=$SK_TMP/upstream-acme.log
pc_start_upstream globex
UPB_PORT=$PC_UP_PORT UPB=$SK_TMP/upstream-globex.log
# [upstream] url points at a port where nothing listens: a request routed there
# instead of to a tenant's upstream would fail visibly.
SK_UP_PORT=$(sk_free_port)
sk_write_config <<EOF
[tenant.acme]
host = acme.test
upstream = http://$SK_HOST:$UPA_PORT

[tenant.globex]
host = globex.test, portal.globex.test
upstream = http://$SK_HOST:$UPB_PORT
allow = 127.0.0.1/32
EOF
pa=$(sk_password) pb=$(sk_password) psa=$(sk_password) psg=$(sk_password)
pc_add_user alice acme admin "$pa"
pc_add_user bob globex admin "$pb"
pc_add_user sam acme general "$psa"
pc_add_user sam globex general "$psg"
sk_start_gateway

lines() { grep -c '^demo-upstream:' "$1" || true; }
no_form() { # WHAT
    sk_assert_not_contains "$(sk_last_body)" "<form" "$1: no form"
    sk_assert_not_contains "$(sk_last_body)" 'name="password"' "$1: no password field"
}

# ---- each tenant reaches its own upstream ----------------------------------------
PC_NAME=acme.test
ac=$(pc_login alice "$pa")
a0=$(lines "$UPA") b0=$(lines "$UPB")
code=$(pc_curl -u alice -C "$ac" /echo -H 'X-Sekisho-Tenant: globex' -H 'X-Sekisho-User: bob')
sk_assert_eq "$code" 200 "alice on acme.test"
sk_assert_eq "$(sk_echo_header_values X-Sekisho-Tenant)" acme "X-Sekisho-Tenant at acme's upstream"
sk_assert_eq "$(sk_echo_header_count X-Sekisho-Tenant)" 1 "X-Sekisho-Tenant headers at acme's upstream"
sk_assert_eq "$(sk_echo_header_values X-Sekisho-User)" alice "X-Sekisho-User at acme's upstream"
sk_assert_match "$(sk_echo_header_values Host)" '^acme\.test(:[0-9]+)?$' "Host at acme's upstream"
# Issue 13 item 7: the forwarded Host is the tenant's configured name (with the
# client's port), X-Forwarded-Host the same; never a name the client made up.
sk_assert_eq "$(sk_echo_header_values Host)" "acme.test:$SK_GW_PORT" "Host at acme's upstream"
sk_assert_eq "$(sk_echo_header_values X-Forwarded-Host)" "acme.test:$SK_GW_PORT" "X-Forwarded-Host at acme's upstream"
code=$(pc_curl -u alice -C "$ac" /echo -H "Host: ACME.test.:$SK_GW_PORT")
sk_assert_eq "$code" 200 "alice on acme.test with Host in another spelling"
sk_assert_eq "$(sk_echo_header_values Host)" "acme.test:$SK_GW_PORT" "Host forwarded in the configured spelling"
a0=$((a0 + 1))
sk_assert_eq "$(lines "$UPA")" $((a0 + 1)) "requests at acme's upstream"
sk_assert_eq "$(lines "$UPB")" "$b0" "requests at globex's upstream after alice's"

PC_NAME=globex.test
bc=$(pc_login bob "$pb")
code=$(pc_curl -u bob -C "$bc" /echo -H 'X-Sekisho-Tenant: acme')
sk_assert_eq "$code" 200 "bob on globex.test"
sk_assert_eq "$(sk_echo_header_values X-Sekisho-Tenant)" globex "X-Sekisho-Tenant at globex's upstream"
sk_assert_eq "$(sk_echo_header_count X-Sekisho-Tenant)" 1 "X-Sekisho-Tenant headers at globex's upstream"
sk_assert_eq "$(lines "$UPB")" $((b0 + 1)) "requests at globex's upstream"
sk_assert_eq "$(lines "$UPA")" $((a0 + 1)) "requests at acme's upstream after bob's"
# A second host name of the same tenant.
PC_NAME=portal.globex.test
sk_assert_eq "$(pc_curl -u bob -C "$bc" /echo)" 200 "bob on portal.globex.test"
sk_assert_eq "$(sk_echo_header_values X-Sekisho-Tenant)" globex "tenant on portal.globex.test"

# ---- a certificate of another tenant: 403, no form --------------------------------
a1=$(lines "$UPA") b1=$(lines "$UPB")
PC_NAME=globex.test
sk_assert_eq "$(pc_curl -u alice /.sekisho/login -H 'Accept: text/html')" 403 "acme certificate on globex.test: login"
no_form "acme certificate on globex.test"
sk_assert_eq "$(pc_curl -u alice -C "$ac" /echo)" 403 "acme certificate and session on globex.test"
PC_NAME=acme.test
sk_assert_eq "$(pc_curl -u bob /.sekisho/login -H 'Accept: text/html')" 403 "globex certificate on acme.test: login"
no_form "globex certificate on acme.test"
sk_assert_eq "$(pc_curl -u bob -C "$bc" /)" 403 "globex certificate and session on acme.test"

# ---- SNI and Host must agree ------------------------------------------------------
PC_NAME=acme.test
for u in alice bob; do
    code=$(pc_curl -u "$u" /.sekisho/login -H "Host: globex.test:$SK_GW_PORT" -H 'Accept: text/html')
    sk_assert_eq "$code" 421 "$u: SNI acme.test, Host globex.test (login)"
    no_form "$u: SNI acme.test, Host globex.test"
done
sk_assert_eq "$(pc_curl -u alice -C "$ac" /echo -H "Host: globex.test")" 421 "alice's session, SNI acme, Host globex"
PC_NAME=globex.test
sk_assert_eq "$(pc_curl -u bob -C "$bc" /echo -H "Host: acme.test:$SK_GW_PORT")" 421 "bob's session, SNI globex, Host acme"
sk_assert_eq "$(pc_curl -u bob -C "$bc" /echo -H "Host: GLOBEX.test:$SK_GW_PORT")" 200 "Host differing only in case"
# One kept-alive connection (openssl s_client, SNI acme.test): a request for acme, then
# one naming globex in Host. The connection's name does not change with a header.
pc_ka_open ka alice acme.test
sk_assert_eq "$(pc_ka_request ka "acme.test:$SK_GW_PORT" /echo "$ac")" 200 "s_client SNI acme.test, Host acme.test"
sk_assert_eq "$(pc_ka_request ka "acme.test:$SK_GW_PORT" /echo "$ac")" 200 "same connection, Host acme.test again"
sk_assert_eq "$(pc_ka_request ka "globex.test:$SK_GW_PORT" /echo "$ac")" 421 "same connection, Host globex.test"
lc_ka_closed ka 5 || sk_fail "the connection stayed open after the 421"
lc_ka_close ka
PC_NAME=other.test
sk_assert_eq "$(pc_curl -u alice /.sekisho/login -H 'Accept: text/html')" 421 "unknown host name"
no_form "unknown host name"
# Without SNI (an IP address in the URL) the Host header names the tenant.
PC_NAME=""
sk_assert_eq "$(pc_curl -u alice -C "$ac" /echo -H "Host: acme.test:$SK_GW_PORT")" 200 "no SNI, Host acme.test"
sk_assert_eq "$(sk_echo_header_values X-Sekisho-Tenant)" acme "no SNI, Host acme.test: tenant"
sk_assert_eq "$(pc_curl -u alice -C "$ac" /echo -H "Host: globex.test:$SK_GW_PORT")" 403 "no SNI, Host globex.test, acme certificate"
sk_assert_eq "$(pc_curl -u alice -C "$ac" /echo)" 421 "no SNI, Host 127.0.0.1"
sk_assert_eq "$(lines "$UPA")" $((a1 + 3)) "requests at acme's upstream after the refusals (+3: 2 on the s_client connection, 1 without SNI)"
sk_assert_eq "$(lines "$UPB")" $((b1 + 1)) "requests at globex's upstream after the refusals (+1: GLOBEX.test)"

# ---- no session or password crosses tenants ----------------------------------------
b2=$(lines "$UPB")
PC_NAME=globex.test
sk_assert_eq "$(pc_curl -u bob -C "$ac" /echo)" 401 "bob's certificate with alice's (acme) cookie on globex.test"
PC_NAME=acme.test
# A cookie seen with another certificate has leaked: the gateway ends that session.
sk_assert_eq "$(pc_curl -u alice -C "$ac" /echo)" 401 "alice's leaked cookie, even with her own certificate"
ac=$(pc_login alice "$pa")
sk_assert_eq "$(pc_curl -u alice -C "$ac" /echo)" 200 "alice's new session"
sac=$(PC_ID=sam pc_login sam-acme "$psa")
sk_assert_eq "$(pc_curl -u sam-acme -C "$sac" /echo)" 200 "sam@acme's session on acme.test"
sk_assert_eq "$(sk_echo_header_values X-Sekisho-Tenant)" acme "sam@acme's tenant"
PC_NAME=globex.test
sk_assert_eq "$(pc_curl -u sam-globex -C "$sac" /echo)" 401 "sam@globex's certificate with sam@acme's cookie"
sk_assert_eq "$(pc_curl -u sam-globex -C "$sac" /echo -H 'Accept: text/html')" 303 \
    "sam@globex's certificate with sam@acme's cookie (browser)"
sk_assert_eq "$(lines "$UPB")" "$b2" "requests at globex's upstream with foreign cookies"
code=$(pc_login_attempt sam-globex sam "$psa")
sk_assert_eq "$code" 401 "sam@globex with sam@acme's password"
sgc=$(PC_ID=sam pc_login sam-globex "$psg")
sk_assert_eq "$(pc_curl -u sam-globex -C "$sgc" /echo)" 200 "sam@globex's own session"
sk_assert_eq "$(sk_echo_header_values X-Sekisho-Tenant)" globex "sam@globex's tenant"
PC_NAME=acme.test
code=$(pc_login_attempt sam-acme sam "$psg")
sk_assert_eq "$code" 401 "sam@acme with sam@globex's password"
sk_assert_eq "$(pc_curl -u sam-acme -C "$sgc" /echo)" 401 "sam@acme's certificate with sam@globex's cookie"

# ---- per-tenant allowlist: globex accepts 127.0.0.1 only -------------------------------
PC_SRC=127.0.0.2
PC_NAME=globex.test
sk_assert_eq "$(pc_curl -u bob /.sekisho/login -H 'Accept: text/html')" 403 "bob from 127.0.0.2 (globex allows 127.0.0.1/32)"
no_form "bob from 127.0.0.2"
sk_assert_eq "$(pc_curl -u bob -C "$bc" /echo)" 403 "bob's session from 127.0.0.2"
PC_NAME=acme.test
sk_assert_eq "$(pc_curl -u alice /.sekisho/login -H 'Accept: text/html')" 200 "alice from 127.0.0.2 (acme has no list)"
sk_assert_eq "$(pc_curl -u alice -C "$ac" /echo)" 200 "alice's session from 127.0.0.2"
PC_SRC=127.0.0.1
PC_NAME=globex.test
sk_assert_eq "$(pc_curl -u bob -C "$bc" /echo)" 200 "bob's session from 127.0.0.1"
sk_stop_gateway

# An auditor of one tenant reads that tenant's entries only (audit show --tenant).
"$SK_BIN/sekishoctl" -c "$SK_CONF" audit show --tenant acme >"$SK_TMP/audit-acme.txt" 2>&1 ||
    sk_fail "audit show --tenant acme: $(cat "$SK_TMP/audit-acme.txt")"
sk_assert_file_contains "$SK_TMP/audit-acme.txt" "tenant=acme" "acme entries with --tenant acme"
sk_assert_file_not_contains "$SK_TMP/audit-acme.txt" "tenant=globex" "no globex entry with --tenant acme"
n_all=$("$SK_BIN/sekishoctl" -c "$SK_CONF" audit show | wc -l)
n_acme=$(wc -l <"$SK_TMP/audit-acme.txt")
sk_assert_lt "$n_acme" "$n_all" "--tenant shows fewer entries than the whole log"
sk_pass
