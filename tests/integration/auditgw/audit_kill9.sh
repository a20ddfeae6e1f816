#!/usr/bin/env bash
# kill -9 during heavy logging (issue 5): three clients drive 54 login attempts in
# parallel while a fourth streams proxied requests; the gateway is killed with
# SIGKILL mid-way. After a restart (which recovers the log) and a clean stop, the
# log verifies, and every login attempt that got an HTTP answer before the kill is
# in it: each refused attempt (401) by its unique login ID, the successful ones by
# count.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/../lifecycle/common.sh"
sk_setup
command -v jq >/dev/null || sk_fail "jq not installed"
sk_make_ca alice:acme
sk_start_upstream
sk_write_config <<'EOF2'
[policy]
lockout_threshold = 100
EOF2
sk_add_user alice acme "$(sk_password)"
sk_start_gateway
pwgood=$SK_TMP/secrets/alice.pw
pwbad=$SK_TMP/secrets/wrong.pw
printf '%s' "Wrong-Passw0rd" >"$pwbad"
cookie=$(sk_login alice)

# Worker W: attempts W*100+1 .. W*100+18. Every 4th uses the right password; the
# others use login ID probe-<n> with alice's certificate (refused as cert_mismatch,
# the ID is recorded in details.login_id). One result line per finished attempt.
worker() {
    local w=$1 i n id pwf code
    for ((i = 1; i <= 18; i++)); do
        n=$((w * 100 + i))
        if ((i % 4 == 0)); then id=alice pwf=$pwgood; else id=probe-$n pwf=$pwbad; fi
        code=$(lc_login_once "$SK_TMP/w$w" alice "$id" "$pwf")
        echo "$n $id $code" >>"$SK_TMP/results.$w"
    done
}
# Proxied requests back to back on one kept-alive connection (request lines are
# group-committed, so the log is busy when the kill comes).
streamer() {
    curl -s --fail-early --max-time 60 --cacert "$SK_CA_DIR/ca.crt" --cert "$SK_TMP/users/alice.crt" \
        --key "$SK_TMP/users/alice.key" -H "Cookie: __Host-sekisho=$cookie" \
        "https://$SK_HOST:$SK_GW_PORT/echo?i=[1-100000]" >/dev/null 2>&1 || true
}
answered() { cat "$SK_TMP"/results.* 2>/dev/null | awk '$3 ~ /^[0-9]+$/ && $3 != "000"' | wc -l; }
finished() { cat "$SK_TMP"/results.* 2>/dev/null | wc -l; }

streamer &
sk_track $!
spid=$!
wpids=()
for w in 1 2 3; do
    worker "$w" &
    sk_track $!
    wpids+=($!)
done
enough() { (($(answered) >= 24)); }
lc_wait_for 60 enough || sk_fail "fewer than 24 login attempts answered within 60 s: $(answered)"
kill -KILL "$SK_GW_PID"
sk_wait_exit "$SK_GW_PID" 10
sk_assert_eq "$SK_EXIT_STATUS" 137 "gateway exit status after SIGKILL"
SK_GW_PID=""
for p in "${wpids[@]}" "$spid"; do
    sk_wait_exit "$p" 60
    sk_assert_ne "$SK_EXIT_STATUS" timeout "client $p still running 60 s after the kill"
done
sk_assert_eq "$(finished)" 54 "login attempts finished (answered or not)"
n_answered=$(answered)
n_lost=$((54 - n_answered))
sk_log "login attempts answered before the kill: $n_answered, unanswered: $n_lost"
((n_lost > 0)) || sk_fail "test setup: the kill came after every attempt was answered; nothing was tested"
awk '$3 !~ /^[0-9]+$/ || $3 == "000" || $3 == 401 || $3 == 303' "$SK_TMP"/results.* | wc -l |
    grep -qx 54 || sk_fail "unexpected answers: $(awk '$3 != "000" && $3 != 401 && $3 != 303 && $3 !~ /^G/' "$SK_TMP"/results.*)"

# Before any writer reopens it, the crashed log already verifies (kill -9 tears no line).
out=$("$SK_BIN/sekishoctl" -c "$SK_CONF" audit verify 2>&1) || sk_fail "audit verify right after kill -9: $out"

# Restart: the gateway reopens (and, if needed, recovers) the log and works.
sk_start_gateway
sk_assert_eq "$(sk_curl -u alice -C "$(sk_login alice)" /echo)" 200 "login after the restart"
sk_stop_gateway
out=$("$SK_BIN/sekishoctl" -c "$SK_CONF" audit verify 2>&1) || sk_fail "audit verify after restart + stop: $out"
sk_assert_match "$out" '^OK' "audit verify output"

X=$SK_TMP/export.jsonl
lc_audit_export "$X"
jq -r 'select(.ev == "login.failure") | .details.login_id' "$X" | sort >"$SK_TMP/logged.ids"
missing=0
while read -r n id code; do
    [[ $code == 401 ]] || continue
    if ! grep -qx -- "$id" "$SK_TMP/logged.ids"; then
        sk_log "attempt $n ($id) was answered 401 but is not in the audit log"
        missing=$((missing + 1))
    fi
done < <(cat "$SK_TMP"/results.*)
sk_assert_eq "$missing" 0 "answered login failures missing from the audit log"
ok_answered=$(cat "$SK_TMP"/results.* | awk '$3 == 303' | wc -l)
sk_log "answered: $ok_answered successes; request lines logged: $(lc_jq_count "$X" '.ev == "http.request"')"
# + the login before the workers and the one after the restart
ok_logged=$(lc_jq_count "$X" '.ev == "login.success"')
((ok_logged >= ok_answered + 2)) ||
    sk_fail "login.success entries: $ok_logged, but $ok_answered answered successes (+2 outside the crash)"
sk_assert_eq "$(lc_jq_count "$X" '.ev == "gateway.start"')" 2 "gateway.start entries (before and after the crash)"
sk_assert_eq "$(jq -s -r 'last.ev' "$X")" audit.checkpoint "last entry"
sk_pass
