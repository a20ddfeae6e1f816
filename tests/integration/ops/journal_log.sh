#!/usr/bin/env bash
# Logs for journald (issue 11, item 6, the common/ logging part), through the real
# gateway: with JOURNAL_STREAM naming its stderr, lines carry the syslog priority
# (<6> info, <4> warn, <3> error) and no duplicated time or pid; with
# SEKISHO_LOG_FORMAT=json every line is one JSON object; otherwise plain lines.
source "$(dirname "$0")/../lib.sh"
sk_setup
command -v jq >/dev/null || sk_fail "jq not installed"
sk_make_ca alice:default
sk_start_upstream
sk_write_config </dev/null

run_gateway() { # LOGFILE, env already exported
    SK_GW_LOG=$1
    "$SK_BIN/sekisho" -c "$SK_CONF" >>"$SK_GW_LOG" 2>&1 </dev/null &
    SK_GW_PID=$!
    sk_track "$SK_GW_PID"
    sk_wait_port "$SK_GW_PORT" "$SK_GW_PID" 20 || sk_fail "gateway did not start: $(cat "$SK_GW_LOG")"
    # A bare TCP probe and a handshake without a certificate: something to log.
    curl -s -o /dev/null --max-time 5 --cacert "$SK_CA_DIR/ca.crt" "https://$SK_HOST:$SK_GW_PORT/" || true
    sk_stop_gateway
}

log=$SK_TMP/journal.log
: >"$log"
export JOURNAL_STREAM
JOURNAL_STREAM=$(stat -c '%d:%i' "$log")
run_gateway "$log"
sk_assert_file_contains "$log" "<6>info: sekisho started" "info line with priority 6"
sk_assert_file_contains "$log" "<6>info: stopped" "stop line"
sk_assert_file_contains "$log" "<4>warn: created audit signing key" "warning with priority 4 (journalctl -p warning)"
grep -v '^<[3467]>\(error\|warn\|info\|debug\): ' "$log" | grep -v '^$' >"$SK_TMP/bad" &&
    sk_fail "lines without a journald priority: $(head -3 "$SK_TMP/bad")"
grep -E '^<[0-9]>[0-9]{4}-[0-9]{2}-|sekisho\[[0-9]+\]' "$log" >"$SK_TMP/dup" &&
    sk_fail "time or pid duplicated under journald: $(head -3 "$SK_TMP/dup")"

# stderr redirected elsewhere than the stream JOURNAL_STREAM names: plain lines.
plain=$SK_TMP/plain.log
: >"$plain"
run_gateway "$plain"
sk_assert_match "$(grep 'sekisho started' "$plain")" '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z sekisho\[[0-9]+\] info: ' \
    "plain line when JOURNAL_STREAM is not stderr"
unset JOURNAL_STREAM

# JSON lines.
json=$SK_TMP/json.log
: >"$json"
export SEKISHO_LOG_FORMAT=json
run_gateway "$json"
unset SEKISHO_LOG_FORMAT
n=$(grep -c . "$json")
((n >= 2)) || sk_fail "too few JSON lines: $(cat "$json")"
jq -c . "$json" >/dev/null 2>&1 || sk_fail "not JSON lines: $(head -3 "$json")"
sk_assert_eq "$(jq -r 'select(.msg | startswith("sekisho started")) | .level' "$json")" info "JSON level"
sk_assert_eq "$(jq -r 'select(.level == null or .msg == null or .time == null or .pid == null)' "$json")" "" \
    "every JSON line has level, time, pid, msg"
sk_pass
