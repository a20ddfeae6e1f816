#!/usr/bin/env bash
# A tenant-safe CLI (issue 11, item 4), through the real gateway, sekishoctl and
# sekisho-ca: an ID held by one tenant resolves without --tenant; an ID held by two
# is refused naming both and nothing changes; ID@TENANT and --tenant always work;
# user modify (role ends the sessions it granted), session revoke SESSION-ID;
# sekisho-ca resolves and warns the same way.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../ctl/ctl_lib.sh"
sk_setup
command -v jq >/dev/null || sk_fail "jq not installed"

sk_setup_gateway bob:default
SK_ISSUE_NAME=carol-default sk_issue_user carol default
SK_ISSUE_NAME=carol-acme sk_issue_user carol acme
sk_issue_user alice acme
pw=$SK_TMP/pw
sk_password >"$pw"
ctl 0 user add alice@acme --role admin --password-file "$pw"
sk_assert_contains "$(ctl_out)" "tenant acme" "ID@TENANT on add"
ctl 0 user add carol --password-file "$pw"
ctl 0 user add carol --tenant acme --password-file "$pw"
ctl 0 user add alice@example.com --password-file "$pw"      # not a tenant suffix: literal ID

# alice lives in acme only: a plain ID resolves there.
ctl 0 user lock alice
sk_assert_contains "$(ctl_out)" "alice (tenant acme) locked" "lock resolves the only tenant"
ctl 0 user show alice --json
sk_assert_eq "$(ctl_json '.tenant + " " + .status')" "acme operator-locked" "acme/alice locked"
ctl 0 user unlock alice
sk_assert_contains "$(ctl_out)" "alice (tenant acme) unlocked" "unlock resolves the only tenant"

# carol lives in two tenants: refused, naming both, nothing changed.
ctl 0 user lock carol@acme
ctl 1 user unlock carol
ctl_refused "ambiguous ID"
sk_assert_contains "$(ctl_err_text)" "exists in 2 tenants (acme, default)" "ambiguity names the tenants"
ctl 0 user show carol --tenant acme --json
sk_assert_eq "$(ctl_json .status)" operator-locked "acme/carol still locked after the refusal"
ctl 0 user unlock carol --tenant default
sk_assert_contains "$(ctl_out)" "carol (tenant default) was not locked" "the report names the account acted on"
ctl 0 user show carol@acme --json
sk_assert_eq "$(ctl_json .status)" operator-locked "default/carol's unlock left acme/carol alone"
ctl 0 user unlock carol@acme
ctl 0 user show carol@acme --json
sk_assert_eq "$(ctl_json .status)" active "carol@acme unlocked"
ctl 1 user show ghost
sk_assert_contains "$(ctl_err_text)" "no user 'ghost' in any tenant" "unknown ID"
ctl 0 user show alice@example.com --json
sk_assert_eq "$(ctl_json '.id + " " + .tenant')" "alice@example.com default" "e-mail-like ID stays literal"

# user modify: e-mail, role; a role change ends the sessions opened with the old one.
cookie=$(sk_login bob)
sk_assert_eq "$(sk_curl -u bob -C "$cookie" /)" 200 "bob's session works"
ctl 0 user modify bob --email bob@example.org
ctl 0 user show bob --json
sk_assert_eq "$(ctl_json '.email + " " + .role')" "bob@example.org admin" "e-mail changed, role kept"
sk_assert_eq "$(sk_curl -u bob -C "$cookie" /)" 200 "an e-mail change keeps the session"
ctl 0 user modify bob --role general
sk_assert_contains "$(ctl_out)" "role of bob (tenant default) is now general (was admin)" "role change reported"
sk_assert_contains "$(ctl_out)" "ended 1 session(s)" "role change ends the session"
ctl 0 user show bob --json
sk_assert_eq "$(ctl_json .role)" general "role stored"
code=$(sk_curl -u bob -C "$cookie" / -H 'Accept: text/html')
sk_assert_ne "$code" 200 "the admin session is gone after the role change"
ctl 0 user modify bob --role general
sk_assert_contains "$(ctl_out)" "unchanged" "same role again: unchanged"
ctl 2 user modify bob
ctl 1 user modify bob --role root
ctl_refused "bad role"
ctl 1 user modify bob --email 'x@y
z'
ctl_refused "bad e-mail"
ctl 1 user modify carol --role admin
sk_assert_contains "$(ctl_err_text)" "exists in 2 tenants" "modify refuses an ambiguous ID"

# session revoke SESSION-ID: exactly that session ends.
c1=$(sk_login bob)
c2=$(sk_login bob)
ctl 0 session list --json
sk_assert_eq "$(ctl_json 'length')" 2 "two sessions"
sid=$(ctl_json '.[0].id')
ctl 0 session revoke "$sid"
sk_assert_contains "$(ctl_out)" "revoked session $sid of bob (tenant default)" "revoke by ID"
ctl 0 session list --json
sk_assert_eq "$(ctl_json 'length')" 1 "one session left"
sk_assert_ne "$(ctl_json '.[0].id')" "$sid" "the other one"
alive=0
for c in "$c1" "$c2"; do
    [[ $(sk_curl -u bob -C "$c" /) == 200 ]] && alive=$((alive + 1))
done
sk_assert_eq "$alive" 1 "exactly one cookie still works"
ctl 1 session revoke "$sid"
sk_assert_contains "$(ctl_err_text)" "no session '$sid'" "revoking it again"
ctl 1 session revoke xyz
ctl_refused "bad session ID"
ctl 2 session revoke "$sid" --all
ctl 1 session revoke --user carol
sk_assert_contains "$(ctl_err_text)" "exists in 2 tenants" "session revoke --user refuses an ambiguous ID"
ctl 0 session revoke --user carol@acme
sk_assert_eq "$(ctl_out)" "revoked 0 session(s)" "session revoke ID@TENANT"

# sekisho-ca: the same reading.
ca() { "$SK_BIN/sekisho-ca" "$@" >"$SK_TMP/out" 2>"$SK_TMP/err" </dev/null; }
rc=0; ca revoke --dir "$SK_CA_DIR" --user carol || rc=$?
sk_assert_eq "$rc" 1 "CA revoke of an ambiguous user refused"
sk_assert_contains "$(cat "$SK_TMP/err")" "valid certificates in 2 tenants (default, acme)" "CA names the tenants"
"$SK_BIN/sekisho-ca" list --dir "$SK_CA_DIR" --json >"$SK_TMP/list.json"
sk_assert_eq "$(jq '[.[] | select(.user == "carol" and .status == "valid")] | length' "$SK_TMP/list.json")" 2 \
    "both carol certificates still valid"
ca revoke --dir "$SK_CA_DIR" --user alice || sk_fail "CA revoke alice (acme only): $(cat "$SK_TMP/err")"
"$SK_BIN/sekisho-ca" list --dir "$SK_CA_DIR" --json >"$SK_TMP/list.json"
sk_assert_eq "$(jq -r '.[] | select(.user == "alice") | .tenant + " " + .status' "$SK_TMP/list.json")" \
    "acme revoked" "alice's only certificate revoked"
ca revoke --dir "$SK_CA_DIR" --user carol@acme || sk_fail "CA revoke carol@acme: $(cat "$SK_TMP/err")"
"$SK_BIN/sekisho-ca" list --dir "$SK_CA_DIR" --json >"$SK_TMP/list.json"
sk_assert_eq "$(jq -r '[.[] | select(.user == "carol") | .tenant + ":" + .status] | sort | join(" ")' "$SK_TMP/list.json")" \
    "acme:revoked default:valid" "only carol@acme revoked"

# issue warns when the gateway would not know the tenant or the user.
tconf=$SK_TMP/tenants.conf
cp "$SK_CONF" "$tconf"
printf '[tenant.default]\nhost = default.test\nupstream = http://127.0.0.1:%s\n' "$SK_UP_PORT" >>"$tconf"
printf 'x\n' >"$SK_TMP/p12pass"
SEKISHO_CONF=$tconf ca issue --dir "$SK_CA_DIR" --user zed --tenant nosuch --out "$SK_TMP/zed.p12" \
    --password-file "$SK_TMP/p12pass" || sk_fail "issue with warnings failed: $(cat "$SK_TMP/err")"
sk_assert_contains "$(cat "$SK_TMP/err")" "warning: tenant 'nosuch' is not configured" "unknown tenant warned"
sk_assert_contains "$(cat "$SK_TMP/err")" "warning: the gateway has no user 'zed' in tenant 'nosuch'" "unknown user warned"
SEKISHO_CONF=$tconf ca issue --dir "$SK_CA_DIR" --user bob@default --out "$SK_TMP/bob2.p12" \
    --password-file "$SK_TMP/p12pass" && sk_fail "bob already has a certificate: issue must refuse"
sk_assert_not_contains "$(cat "$SK_TMP/err")" "warning" "a known user in a configured tenant: no warning"
sk_stop_gateway
sk_pass
