#!/bin/bash
# Issue 13 item 8: user IDs that differ only in case are one person to a portal
# that compares names case-insensitively, so neither the store (sekishoctl user
# add) nor the CA (sekisho-ca issue) lets "ALICE" exist beside "alice" in a tenant.
# Other tenants, and a variant whose certificate was revoked, are not affected.
source "$SK_SRC/tests/integration/lib.sh"
source "$SK_SRC/tests/integration/ctl/ctl_lib.sh"
sk_setup
sk_need_bin sekishoctl sekisho-ca
command -v jq >/dev/null || sk_fail "jq not installed"
ctl_config
good=$(ctl_pwfile good Cedar-Field-58)

# ---- store ----
ctl 0 user add alice --password-file "$good"
for v in ALICE Alice aLiCe; do
    ctl 1 user add "$v" --password-file "$good"
    ctl_refused "case variant '$v'"
    sk_assert_contains "$(ctl_err_text)" "differing only in case" "case variant '$v' reason"
done
ctl 1 user add alice --password-file "$good"
ctl_refused "exact duplicate"
ctl 0 user add ALICE --tenant other --password-file "$good"
ctl 0 user add alice2 --password-file "$good"
ctl 0 user list --json
sk_assert_eq "$(ctl_json '[.[] | select((.id | ascii_downcase) == "alice")] | length')" 2 \
    "alice (default tenant) and ALICE (tenant other), nothing else"

# ---- CA ----
ca=$SK_TMP/ca
"$SK_BIN/sekisho-ca" init --dir "$ca" --name "Case CA" >"$SK_TMP/ca.log" 2>&1 || sk_fail "ca init"
pw=$SK_TMP/p12.pw
printf 'p12-secret-123\n' >"$pw"
issue() { # EXPECTED-RC USER TENANT
    local rc=0
    "$SK_BIN/sekisho-ca" issue --dir "$ca" --user "$2" --tenant "$3" --out "$SK_TMP/$2-$3-$RANDOM.p12" \
        --password-file "$pw" >"$SK_TMP/ca.out" 2>"$SK_TMP/ca.err" </dev/null || rc=$?
    [[ $rc == "$1" ]] || sk_fail "sekisho-ca issue $2/$3: exit $rc, expected $1: $(cat "$SK_TMP/ca.err")"
}
issue 0 alice acme
issue 1 ALICE acme
sk_assert_contains "$(cat "$SK_TMP/ca.err")" "differs only in case" "CA refusal reason"
sk_assert_eq "$(wc -l <"$SK_TMP/ca.err" | tr -d ' ')" 1 "CA refusal is one line"
issue 1 Alice acme
issue 0 ALICE globex
# Once alice's certificate is revoked, the name is free in any case.
"$SK_BIN/sekisho-ca" revoke --dir "$ca" --user alice --tenant acme >"$SK_TMP/ca.out" 2>&1 ||
    sk_fail "revoke alice: $(cat "$SK_TMP/ca.out")"
issue 0 ALICE acme
issue 1 alice acme
sk_pass
