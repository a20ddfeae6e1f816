#!/usr/bin/env bash
# Privilege separation (issue 9): the monitor restarts a child that dies.
#  - authd killed with SIGKILL in the middle of a stream of logins: it comes back,
#    every login that was acknowledged (303 + cookie) before or after still works
#    (nothing acknowledged is lost), logins work again within seconds, and the
#    restart is in the audit log with its cause;
#  - auditd killed with SIGKILL in a stream of logins: it comes back, and every
#    acknowledged login is in the log (the writes it held are asked again);
#  - the network process killed with SIGKILL: a new one accepts connections and the
#    sessions carry on without a new login;
#  - the log verifies, and SIGTERM still stops everything with status 0.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# shellcheck source=../lifecycle/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lifecycle/common.sh"
sk_setup
command -v jq >/dev/null || sk_fail "jq not installed"
sk_make_ca alice:acme bob:acme
sk_start_upstream
sk_write_config </dev/null
sk_add_user alice acme "$(sk_password)"
sk_add_user bob acme "$(sk_password)"
sk_start_gateway
ca=$(sk_login alice)
authd=$(sk_child_pid authd)

# A stream of bob's logins in the background; each result "code cookie".
bob_logins() { # RESULTS
    local i code jar pwf=$SK_TMP/secrets/bob.pw csrf out=$1
    for ((i = 1; i <= 40; i++)); do
        jar=$SK_TMP/jar.$i
        curl -s --max-time 40 --cacert "$SK_CA_DIR/ca.crt" --cert "$SK_TMP/users/bob.crt" \
            --key "$SK_TMP/users/bob.key" -c "$jar" -o "$SK_TMP/form.$i" "https://$SK_HOST:$SK_GW_PORT/.sekisho/login" \
            -H 'Accept: text/html' >/dev/null || true
        csrf=$(lc_hidden_fields "$SK_TMP/form.$i" | awk -F '\t' '$1 == "csrf" { print $2; exit }')
        code=$(curl -s --max-time 40 --cacert "$SK_CA_DIR/ca.crt" --cert "$SK_TMP/users/bob.crt" \
            --key "$SK_TMP/users/bob.key" -b "$jar" -c "$jar" -o /dev/null -w '%{http_code}' \
            --data-urlencode id=bob --data-urlencode "password@$pwf" --data-urlencode "csrf=$csrf" \
            "https://$SK_HOST:$SK_GW_PORT/.sekisho/login" || true)
        echo "$code $(awk '$6 == "__Host-sekisho" { print $7 }' "$jar" | tail -n 1)" >>"$out"
    done
}
: >"$SK_TMP/bob.results"
bob_logins "$SK_TMP/bob.results" &
lpid=$!
for ((i = 0; i < 100; i++)); do
    (($(wc -l <"$SK_TMP/bob.results") >= 5)) && break
    sleep 0.1
done
kill -KILL "$authd"
sk_log "authd $authd killed after $(wc -l <"$SK_TMP/bob.results") logins"
sk_wait_exit "$lpid" 120
sk_assert_ne "$SK_EXIT_STATUS" timeout "login stream still running"
new_authd=$(sk_child_pid authd)
sk_assert_ne "$new_authd" "$authd" "a new authd"
sk_assert_contains "$(grep -F 'monitor: authd died' "$SK_GW_LOG")" "signal 9" "the monitor's log of the death"
ok=$(awk '$1 == 303' "$SK_TMP/bob.results" | wc -l)
bad=$(awk '$1 != 303 && $1 != 500 && $1 != 503' "$SK_TMP/bob.results" | wc -l)
sk_log "bob's logins: $ok acknowledged of $(wc -l <"$SK_TMP/bob.results")"
sk_assert_eq "$bad" 0 "logins answered other than 303/500/503: $(awk '$1 != 303 && $1 != 500 && $1 != 503' "$SK_TMP/bob.results")"
# The last logins came after the restart: they must have worked.
sk_assert_eq "$(tail -n 3 "$SK_TMP/bob.results" | awk '$1 == 303' | wc -l)" 3 "logins after authd's restart"
# Every acknowledged login is a working session.
while read -r code cookie; do
    [[ $code == 303 ]] || continue
    sk_assert_eq "$(sk_curl -u bob -C "$cookie" /echo)" 200 "an acknowledged session of bob"
done <"$SK_TMP/bob.results"
sk_assert_eq "$(sk_curl -u alice -C "$ca" /echo)" 200 "alice's session from before the kill"

# auditd, in the middle of another stream of logins.
auditd=$(sk_child_pid auditd)
: >"$SK_TMP/bob2.results"
bob_logins "$SK_TMP/bob2.results" &
lpid=$!
for ((i = 0; i < 100; i++)); do
    (($(wc -l <"$SK_TMP/bob2.results") >= 5)) && break
    sleep 0.1
done
kill -KILL "$auditd"
sk_log "auditd $auditd killed after $(wc -l <"$SK_TMP/bob2.results") logins"
sk_wait_exit "$lpid" 120
sk_assert_ne "$SK_EXIT_STATUS" timeout "second login stream still running"
sk_assert_ne "$(sk_child_pid auditd)" "$auditd" "a new auditd"
ok2=$(awk '$1 == 303' "$SK_TMP/bob2.results" | wc -l)
sk_assert_eq "$(awk '$1 != 303' "$SK_TMP/bob2.results" | wc -l)" 0 "logins refused while auditd restarted"
sk_assert_eq "$(grep -c 'AUDIT WRITE FAILED' "$SK_GW_LOG" || true)" 0 "audit writes that failed"
ok=$((ok + ok2))

# The network process: killed, restarted, sessions carry on.
net=$(sk_child_pid net)
kill -KILL "$net"
n2=$(sk_new_child_pid net "$net")
sk_assert_ne "$n2" "" "a new network process"
code=$(sk_curl_until 200 alice "$ca" /echo)
sk_assert_eq "$code" 200 "alice's session after the network process's restart"

sk_stop_gateway
out=$("$SK_BIN/sekishoctl" -c "$SK_CONF" audit verify 2>&1) || sk_fail "audit verify: $out"
X=$SK_TMP/export.jsonl
lc_audit_export "$X"
sk_assert_eq "$(lc_jq_count "$X" '.ev == "process.restart" and .details.process == "authd" and (.details.cause | test("signal 9"))')" 1 \
    "authd's restart in the audit log"
sk_assert_eq "$(lc_jq_count "$X" '.ev == "process.restart" and .details.process == "net" and (.details.cause | test("signal 9"))')" 1 \
    "the network process's restart in the audit log"
sk_assert_eq "$(lc_jq_count "$X" '.ev == "process.restart" and .details.process == "auditd" and (.details.cause | test("signal 9"))')" 1 \
    "auditd's restart in the audit log"
# Each acknowledged login is there (at least once: a write the dead auditd may have
# done before it was asked again would show twice).
logged=$(lc_jq_count "$X" '.ev == "login.success" and .actor == "bob"')
sk_log "bob's acknowledged logins: $ok, in the log: $logged"
((logged >= ok)) || sk_fail "acknowledged logins missing from the audit log: $ok acknowledged, $logged logged"
sk_pass
