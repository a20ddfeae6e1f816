#!/usr/bin/env bash
# Login workers are a bounded pool: when it is full a login answers 503 with
# Retry-After at once, and proxied traffic keeps flowing meanwhile. SIGTERM drains:
# a download in flight completes, new connections are refused, exit status 0.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
sk_setup
# One worker, one waiting slot, and an argon2 cost of a few hundred ms per login.
export SK_ARGON2_KIB=65536
sk_make_ca alice:acme
sk_start_upstream
sk_write_config <<EOF2
[auth]
workers = 1
queue = 1
argon2_iterations = 4
EOF2
sk_add_user alice acme "$(sk_password)"
sk_start_gateway
cookie=$(sk_login alice)

# One form (csrf) serves every concurrent attempt: the token is stateless.
code=$(sk_curl -u alice /.sekisho/login -H 'Accept: text/html')
sk_assert_eq "$code" 200 "login form"
csrf=$(sk_csrf_from_last)
crt=$SK_TMP/users/alice.crt key=$SK_TMP/users/alice.key
[[ -f $crt && -f $key ]] || sk_fail "test setup: alice's PEM files not found under $SK_TMP/users"

n=8
pids=()
for i in $(seq 1 "$n"); do
    curl -s --max-time 60 --cacert "$SK_CA_DIR/ca.crt" --cert "$crt" --key "$key" \
        --data-urlencode id=alice --data-urlencode "password=Wrong-Passw0rd-$i" \
        --data-urlencode "csrf=$csrf" -D "$SK_TMP/busy.$i.h" -o /dev/null -w '%{http_code}' \
        "https://$SK_HOST:$SK_GW_PORT/.sekisho/login" >"$SK_TMP/busy.$i.code" &
    pids+=($!)
done
# While the pool is saturated, a proxied request is served without waiting for it.
start=$(date +%s%N)
code=$(sk_curl -u alice -C "$cookie" /echo)
ms=$((($(date +%s%N) - start) / 1000000))
sk_assert_eq "$code" 200 "proxied request while logins queue"
wait "${pids[@]}" # only the clients: the gateway and upstream are background jobs too
busy=0 refused=0
for i in $(seq 1 "$n"); do
    c=$(cat "$SK_TMP/busy.$i.code")
    case $c in
    503) busy=$((busy + 1))
         sk_assert_match "$(tr -d '\r' <"$SK_TMP/busy.$i.h" | grep -i '^retry-after:')" '^[Rr]etry-[Aa]fter: [0-9]+$' \
             "Retry-After on 503" ;;
    401) refused=$((refused + 1)) ;;
    *) sk_fail "concurrent login $i: unexpected status $c" ;;
    esac
done
sk_log "concurrent logins: $refused answered 401, $busy answered 503; proxied request took $ms ms"
sk_assert_ne "$busy" 0 "at least one login answered 503 while the pool was full"
sk_assert_ne "$refused" 0 "queued logins were still decided"
sk_assert_lt "$ms" 2000 "proxied request latency (ms) while the login pool is full"

# Drain: a slow download in flight survives SIGTERM.
bytes=$((16 * 1024 * 1024))
want=$(curl -s --max-time 60 "http://$SK_HOST:$SK_UP_PORT/download?bytes=$bytes" | sha256sum | cut -d' ' -f1)
curl -s --max-time 60 --limit-rate 4M --cacert "$SK_CA_DIR/ca.crt" --cert "$crt" --key "$key" \
    -b "__Host-sekisho=$cookie" -o "$SK_TMP/drain.bin" -w '%{http_code}' \
    "https://$SK_HOST:$SK_GW_PORT/download?bytes=$bytes" >"$SK_TMP/drain.code" &
dl=$!
sleep 1
kill -TERM "$SK_GW_PID"
sleep 0.5
rc=0
curl -s --max-time 5 --cacert "$SK_CA_DIR/ca.crt" --cert "$crt" --key "$key" -o /dev/null \
    "https://$SK_HOST:$SK_GW_PORT/.sekisho/health" || rc=$?
sk_assert_ne "$rc" 0 "a new connection after SIGTERM is refused"
wait "$dl" || true
sk_assert_eq "$(cat "$SK_TMP/drain.code")" 200 "download in flight during SIGTERM"
sk_assert_eq "$(sha256sum <"$SK_TMP/drain.bin" | cut -d' ' -f1)" "$want" "drained download intact"
sk_wait_exit "$SK_GW_PID" 40
SK_GW_PID=""
sk_assert_eq "$SK_EXIT_STATUS" 0 "gateway exit status after draining"
sk_pass
