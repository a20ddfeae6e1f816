#!/usr/bin/env bash
# SIGTERM with a request that outlives [listen] drain_timeout: the gateway waits that
# long, then closes it (the request waits for a slow upstream, its connection
# suspended in libmicrohttpd), logs how many it cut, and still exits 0 with nothing
# left behind. New connections are refused at once.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
sk_setup
sk_make_ca alice:acme
sk_start_upstream
sk_write_config <<EOF2
[listen]
drain_timeout = 2s
EOF2
sk_add_user alice acme "$(sk_password)"
sk_start_gateway
cookie=$(sk_login alice)
curl -s --max-time 20 --cacert "$SK_CA_DIR/ca.crt" --cert "$SK_TMP/users/alice.crt" --key "$SK_TMP/users/alice.key" \
    -H "Cookie: __Host-sekisho=$cookie" -o /dev/null -w '%{http_code}' \
    "https://$SK_HOST:$SK_GW_PORT/slow?ms=10000" >"$SK_TMP/slow.code" 2>/dev/null &
slow=$!
sleep 0.5
t0=$(date +%s%N)
kill -TERM "$SK_GW_PID"
sk_wait_exit "$SK_GW_PID" 15
SK_GW_PID=""
ms=$((($(date +%s%N) - t0) / 1000000))
sk_assert_eq "$SK_EXIT_STATUS" 0 "exit status after cutting a request at the drain deadline"
sk_assert_lt 1500 "$ms" "the gateway waited for the request in flight (ms)"
sk_assert_lt "$ms" 9000 "the gateway did not wait for the slow upstream beyond drain_timeout (ms)"
sk_assert_file_contains "$SK_GW_LOG" "1 connections still busy after 2 s were closed" "the cut is logged"
wait "$slow" || true
sk_assert_ne "$(cat "$SK_TMP/slow.code")" 200 "the cut request got no complete answer"
if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$SK_GW_LOG"; then
    sk_fail "sanitizer report in the gateway log"
fi
sk_pass
