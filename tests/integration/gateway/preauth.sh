#!/usr/bin/env bash
# Pre-authentication limits (issue 8): connections that never present a certificate
# cannot lock anybody out.
#  1. One address (127.0.0.2) opens 3x handshakes_per_address silent connections:
#     all beyond the limit are closed at once, and meanwhile a client from 127.0.0.1
#     signs in and reaches the upstream.
#  2. Eight addresses together fill more than the connection limit: unfinished
#     handshakes are shed (never more than half the limit is held), and the signed-in
#     client still gets through.
#  3. handshake_timeout closes what is left; the metrics count every refusal kind and
#     the audit log carries them aggregated (not one entry per socket).
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
sk_setup
command -v python3 >/dev/null || sk_fail "python3 is needed"
per_addr=40
max=200
sk_make_ca alice:acme
sk_start_upstream
sk_write_config <<EOF2
[listen]
handshakes_per_address = $per_addr
max_connections = $max
handshake_timeout = 4s
workers = 2
EOF2
sk_add_user alice acme "$(sk_password)"
sk_start_gateway
attack="$SK_SRC/tests/integration/gateway/silent_clients.py"
metric() { sk_curl -u alice -C "$cookie" /.sekisho/metrics >/dev/null; awk -v m="sekisho_$1" '$1 == m { print $2 }' "$SK_TMP/last.body"; }

cookie=$(sk_login alice)

# 1. one address, three times its limit
timeout 30 python3 "$attack" "$SK_HOST" "$SK_GW_PORT" --bind 127.0.0.2 -n $((per_addr * 3)) --at 1.5 \
    --ready "$SK_TMP/ready1" >"$SK_TMP/attack1.out" 2>&1 &
apid=$!
sk_track "$apid"
for ((i = 0; i < 100; i++)); do [[ -e $SK_TMP/ready1 ]] && break; sleep 0.1; done
[[ -e $SK_TMP/ready1 ]] || sk_fail "attacker did not connect: $(cat "$SK_TMP/attack1.out")"
code=$(sk_curl -u alice -C "$cookie" /echo)
sk_assert_eq "$code" 200 "signed-in request during a one-address flood"
cookie2=$(sk_login alice)
[[ -n $cookie2 ]] || sk_fail "login during a one-address flood"
wait "$apid" || sk_fail "attacker failed: $(cat "$SK_TMP/attack1.out")"
out=$(cat "$SK_TMP/attack1.out")
sk_log "one address: $out"
open=$(sed -E 's/.*open=([0-9]+).*/\1/' <<<"$out")
sk_assert_eq "$open" "$per_addr" "silent connections the gateway kept from one address"
ref=$(metric preauth_refused_address_total)
sk_assert_eq "$ref" "$((per_addr * 2))" "connections refused over the per-address limit"

# 2. eight addresses, more than the whole connection limit
binds=$(printf '127.0.0.%d,' $(seq 10 17))
timeout 30 python3 "$attack" "$SK_HOST" "$SK_GW_PORT" --bind "${binds%,}" -n $((per_addr * 8)) --at 1.5 \
    --ready "$SK_TMP/ready2" >"$SK_TMP/attack2.out" 2>&1 &
apid=$!
sk_track "$apid"
for ((i = 0; i < 100; i++)); do [[ -e $SK_TMP/ready2 ]] && break; sleep 0.1; done
[[ -e $SK_TMP/ready2 ]] || sk_fail "attacker did not connect: $(cat "$SK_TMP/attack2.out")"
for ((i = 0; i < 20; i++)); do
    code=$(sk_curl -u alice -C "$cookie" /echo)
    sk_assert_eq "$code" 200 "signed-in request $i while unfinished handshakes fill the limit"
done
wait "$apid" || sk_fail "attacker failed: $(cat "$SK_TMP/attack2.out")"
out=$(cat "$SK_TMP/attack2.out")
sk_log "eight addresses: $out"
open=$(sed -E 's/.*open=([0-9]+).*/\1/' <<<"$out")
sk_assert_lt "$open" "$((max / 2 + 1))" "unfinished handshakes held (at most half the limit)"
shed=$(metric preauth_shed_total)
sk_assert_lt 0 "$shed" "unfinished handshakes shed"

# 3. the deadline: a silent connection is closed after handshake_timeout
timeout 30 python3 "$attack" "$SK_HOST" "$SK_GW_PORT" --bind 127.0.0.3 -n 10 --at 1,7 >"$SK_TMP/attack3.out" 2>&1 ||
    sk_fail "attacker failed: $(cat "$SK_TMP/attack3.out")"
sk_log "deadline: $(tr '\n' ' ' <"$SK_TMP/attack3.out")"
sk_assert_file_contains "$SK_TMP/attack3.out" "t=1 open=10 closed=0" "silent connections before the deadline"
sk_assert_file_contains "$SK_TMP/attack3.out" "t=7 open=0 closed=10" "silent connections after the deadline"
to=$(metric preauth_timeouts_total)
sk_assert_lt 9 "$to" "handshake timeouts counted"

sk_stop_gateway
# Audited in aggregate: one summary per (address, reason), never one entry per socket.
"$SK_BIN/sekishoctl" -c "$SK_CONF" audit show >"$SK_TMP/audit.txt" 2>&1 || sk_fail "audit show: $(cat "$SK_TMP/audit.txt")"
sk_assert_file_contains "$SK_TMP/audit.txt" "address_limit" "audit: refusals over the per-address limit"
sk_assert_file_contains "$SK_TMP/audit.txt" "handshake_timeout" "audit: handshake timeouts"
lines=$(grep -c "tls.refused.summary" "$SK_TMP/audit.txt" || true)
sk_assert_lt "$lines" 20 "audit summary entries (aggregated)"
sk_pass
