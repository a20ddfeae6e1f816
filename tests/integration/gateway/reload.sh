#!/usr/bin/env bash
# SIGHUP re-reads the configuration: unchanged -> reloaded quietly; a changed
# setting -> certificates/CRL reloaded and "restart needed" logged and audited;
# an invalid file -> refused with FILE:LINE, the gateway keeps serving.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
sk_setup
sk_setup_gateway alice:acme
cookie=$(sk_login alice)

hup_and_wait() { # PATTERN: send SIGHUP, wait (bounded) for a log line
    local before
    before=$(grep -c "$1" "$SK_GW_LOG" || true)
    kill -HUP "$SK_GW_PID"
    for _ in $(seq 1 50); do
        [ "$(grep -c "$1" "$SK_GW_LOG" || true)" -gt "$before" ] && return 0
        sleep 0.1
    done
    sk_fail "no log line matching '$1' after SIGHUP"
}

hup_and_wait 'TLS context loaded'
sk_assert_eq "$(grep -c 'take effect after a restart' "$SK_GW_LOG" || true)" 0 "unchanged file: no restart notice"

printf '[policy]\nidle_timeout = 30m\n' >>"$SK_CONF"
hup_and_wait 'take effect after a restart'
code=$(sk_curl -u alice -C "$cookie" /echo)
sk_assert_eq "$code" 200 "session survives a reload"

cp "$SK_CONF" "$SK_TMP/good.conf"
printf '[policy]\nbogus_key = 1\n' >>"$SK_CONF"
hup_and_wait 'configuration not reloaded'
sk_assert_contains "$(grep 'configuration not reloaded' "$SK_GW_LOG" | tail -n 1)" "sekisho.conf:" "FILE:LINE in the refusal"
code=$(sk_curl -u alice -C "$cookie" /echo)
sk_assert_eq "$code" 200 "still serving after an invalid file"

sk_stop_gateway
cp "$SK_TMP/good.conf" "$SK_CONF"
# The three reloads are in the audit log with their outcomes.
"$SK_BIN/sekishoctl" -c "$SK_CONF" audit export >"$SK_TMP/audit.jsonl" 2>"$SK_TMP/export.err" ||
    sk_fail "audit export: $(cat "$SK_TMP/export.err")"
results=$(grep '"ev":"config.reload"' "$SK_TMP/audit.jsonl" | grep -oE '"result":"[a-z_]+","restart_needed":"[a-z]+"' | tr '\n' ' ')
sk_assert_eq "$results" '"result":"ok","restart_needed":"no" "result":"ok","restart_needed":"yes" "result":"invalid","restart_needed":"no" ' "audited reload outcomes"
sk_pass
