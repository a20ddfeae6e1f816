#!/bin/bash
# sekishoctl and sekisho-ca append to the audit log while the gateway is running
# and logging logins: the writers interleave under the log's lock, the merged log
# verifies, and it holds every login and every admin change exactly once.
source "$SK_SRC/tests/integration/lib.sh"
source "$SK_SRC/tests/integration/adminaudit/aa_lib.sh"
sk_setup
sk_need_bin sekisho sekishoctl sekisho-ca
command -v jq >/dev/null || sk_fail "jq not installed"
unset SUDO_USER SEKISHO_CONF
ROUNDS=12
LOGINS=12

# sekishoctl runs before the gateway (sk_add_user): it creates the key, the
# gateway then opens the same log with it.
sk_setup_gateway alice:acme
[[ -f $SK_TMP/audit.key.pub ]] || sk_fail "no audit key after the first sekishoctl"
pwf=$SK_TMP/secrets/extra.pw
printf '%s' "$(sk_password)" >"$pwf"
printf '%s' "p12-$(openssl rand -hex 8)" >"$SK_TMP/p12pass"

# logins in the background ...
(
    for ((i = 0; i < LOGINS; i++)); do
        sk_login alice >/dev/null
    done
    echo finished >"$SK_TMP/logins.done"
) &
lpid=$!
sk_track "$lpid"

# ... while operators change things
ctlx() {
    "$SK_BIN/sekishoctl" -c "$SK_CONF" "$@" >"$SK_TMP/ctl.out" 2>&1 </dev/null ||
        sk_fail "sekishoctl $*: $(cat "$SK_TMP/ctl.out")"
}
for ((i = 0; i < ROUNDS; i++)); do
    ctlx user add "op$i" --tenant acme --password-file "$pwf"
    ctlx user lock "op$i" --tenant acme
    ctlx user unlock "op$i" --tenant acme
    ctlx user allow-ip "op$i" 198.51.100.0/24 --tenant acme
    "$SK_BIN/sekisho-ca" issue --dir "$SK_CA_DIR" --user "op$i" --tenant acme --out "$SK_TMP/op$i.p12" \
        --password-file "$SK_TMP/p12pass" --audit-config "$SK_CONF" >"$SK_TMP/ca.out" 2>&1 </dev/null ||
        sk_fail "sekisho-ca issue op$i: $(cat "$SK_TMP/ca.out")"
done
sk_wait_exit "$lpid" 120
sk_assert_eq "$SK_EXIT_STATUS" 0 "background logins"
[[ -f $SK_TMP/logins.done ]] || sk_fail "background logins did not finish"

# the merged log verifies while the gateway still runs, and after it stopped
aa_verify
sk_stop_gateway
aa_verify
X=$SK_TMP/export.jsonl
aa_export "$X"
sk_assert_eq "$(aa_count "$X" '.ev == "login.success" and .actor == "alice"')" "$LOGINS" "every login logged once"
# 1 user add before the gateway + 4 per round from sekishoctl, 1 per round from the CA
sk_assert_eq "$(aa_count "$X" '.ev == "admin.change" and .details.tool == "sekishoctl"')" \
    $((1 + 4 * ROUNDS)) "sekishoctl entries"
sk_assert_eq "$(aa_count "$X" '.ev == "admin.change" and .details.command == "ca.issue"')" "$ROUNDS" "CA entries"
for ((i = 0; i < ROUNDS; i++)); do
    sk_assert_eq "$(aa_count "$X" '.ev == "admin.change" and .details.user == "op'"$i"'" and .tenant == "acme"')" 5 \
        "entries of op$i"
done
# sequence numbers are one chain: 1..N without gaps or repeats
sk_assert_eq "$(jq -s '[.[].seq] | . == [range(1; length + 1)]' "$X")" true "one gapless sequence"
sk_assert_eq "$(aa_count "$X" '.ev == "gateway.start"')" 1 "one gateway start"
sk_pass
