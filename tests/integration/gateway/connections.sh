#!/usr/bin/env bash
# Connections that clients close are released: after many short mTLS connections
# (handshake, one proxied GET, close_notify, close) the gateway holds no socket in
# CLOSE-WAIT and its file descriptor count is back near where it started.
# A leak here is a remote resource-exhaustion bug.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
sk_setup
sk_need_bin sekisho-bench
sk_setup_gateway alice:acme
printf '__Host-sekisho=%s' "$(sk_login alice)" >"$SK_TMP/cookie.txt"
n=${SK_CONN_COUNT:-60}

nfds() { find "/proc/$(sk_child_pid net)/fd" -mindepth 1 -maxdepth 1 | wc -l; }
closewait() { ss -tanH state close-wait "( sport = :$SK_GW_PORT )" | wc -l; }

code=$(sk_curl -u alice -C "$(cat "$SK_TMP/cookie.alice")" /echo)
sk_assert_eq "$code" 200 "warm-up request"
fd0=$(nfds)

for mode in handshake keepalive; do
    args=("$mode" --connect "$SK_HOST:$SK_GW_PORT" --ca "$SK_CA_DIR/ca.crt"
        --cert "$SK_TMP/users/alice.crt" --key "$SK_TMP/users/alice.key"
        --path /echo --cookie-file "$SK_TMP/cookie.txt")
    if [[ $mode == handshake ]]; then args+=(-n "$n"); else args+=(-c 4 -r 25); fi
    out=$(timeout 60 "$SK_BIN/sekisho-bench" "${args[@]}" 2>&1) ||
        sk_fail "sekisho-bench $mode: $out"
    sk_log "$out"
done

# Give the gateway a bounded moment to notice the closes.
for ((i = 0; i < 50; i++)); do
    (($(closewait) == 0)) && break
    sleep 0.1
done
sk_assert_eq "$(closewait)" 0 "gateway sockets left in CLOSE-WAIT after clients closed"
fd1=$(nfds)
sk_log "gateway fds: $fd0 before, $fd1 after $n short connections"
sk_assert_lt "$fd1" "$((fd0 + 10))" "gateway file descriptors after the clients closed"
sk_stop_gateway
sk_pass
