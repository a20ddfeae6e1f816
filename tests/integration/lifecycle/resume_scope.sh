#!/usr/bin/env bash
# TLS resumption (issue 3) is on for TLS 1.2 session IDs and TLS 1.3 tickets, and is
# scoped to the cluster: a session saved from one gateway is not resumed by another
# gateway of the same CA that has its own store (its own ticket keys): it falls back
# to a full handshake, which then verifies the certificate again. Nodes sharing one
# store do resume each other's sessions (resume_restart.sh, the multi-node tests).
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
sk_setup
sk_setup_gateway alice:acme
portA=$SK_GW_PORT
confA=$SK_CONF
logA=$SK_GW_LOG

# Gateway B: same CA, same certificates, its own listener, state and audit key.
portB=$(sk_free_port)
mkdir -p "$SK_TMP/b"
sed -e "s/^address = .*/address = $SK_HOST:$portB/" -e "s|^dir = state|dir = b/state|" \
    -e "s|^key = audit.key|key = b/audit.key|" "$confA" >"$SK_TMP/b.conf"
grep -q "^address = $SK_HOST:$portB" "$SK_TMP/b.conf" || sk_fail "test setup: second config"
"$SK_BIN/sekisho" -c "$SK_TMP/b.conf" >>"$SK_TMP/gateway-b.log" 2>&1 </dev/null &
pidB=$!
sk_track "$pidB"
sk_wait_port "$portB" "$pidB" 20 || sk_fail "gateway B did not start: $(tail -5 "$SK_TMP/gateway-b.log")"

for proto in -tls1_2 -tls1_3; do
    sess=$SK_TMP/sess$proto
    SK_GW_PORT=$portA
    sk_assert_eq "$(lc_tls_get alice "$proto" -sess_out "$sess" /.sekisho/health)" 200 "A $proto: full handshake"
    lc_tls_reused && sk_fail "A $proto: the first handshake claims to be resumed"
    sk_assert_eq "$(lc_tls_get alice "$proto" -sess_in "$sess" /.sekisho/health)" 200 "A $proto: resumed"
    lc_tls_reused || sk_fail "A $proto: saved session not resumed by the gateway that issued it"
    SK_GW_PORT=$portB
    sk_assert_eq "$(lc_tls_get alice "$proto" -sess_in "$sess" /.sekisho/health)" 200 "B $proto: A's session offered"
    if lc_tls_reused; then sk_fail "B $proto: resumed a session issued by gateway A"; fi
done
SK_GW_PORT=$portA
kill -TERM "$pidB"
sk_wait_exit "$pidB" 20
sk_assert_eq "$SK_EXIT_STATUS" 0 "gateway B exit status"
if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$SK_TMP/gateway-b.log"; then
    sk_fail "sanitizer report in gateway B's log: $(grep -m3 -E 'Sanitizer|runtime error' "$SK_TMP/gateway-b.log")"
fi
SK_GW_LOG=$logA
sk_stop_gateway
sk_pass
