#!/usr/bin/env bash
# The event-driven engine (issue 8), on ONE worker so that anything blocking it
# would show:
#  1. a request waiting for a slow upstream page does not hold up another client;
#  2. clients that disconnect while their request is suspended (waiting for the
#     upstream, or for a login's argon2 run) leave the gateway healthy;
#  3. the thread count with 1000 idle signed-in connections equals the count with 1;
#  4. a 100 MB download read slowly by the client, and a 50 MB upload to an upstream
#     that reads slowly, each grow the gateway's peak RSS by less than 24 MiB
#     (backpressure: nothing is buffered beyond a few relay buffers per request).
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
sk_setup
command -v python3 >/dev/null || sk_fail "python3 is needed"
export SK_ARGON2_KIB=65536
sk_make_ca alice:acme bob:acme
sk_start_upstream
sk_write_config <<EOF2
[listen]
workers = 1
[auth]
argon2_iterations = 4
EOF2
sk_add_user alice acme "$(sk_password)"
sk_add_user bob acme "$(sk_password)"
sk_start_gateway
cookie_a=$(sk_login alice)
cookie_b=$(sk_login bob)
threads() { find "/proc/$(sk_child_pid net)/task" -mindepth 1 -maxdepth 1 | wc -l; }
vmhwm() { awk '/^VmHWM:/ { print $2 }' "/proc/$(sk_child_pid net)/status"; }
gw_curl() { # USER COOKIE PATH [curl args...]: like sk_curl, but safe to run in the background
    local u=$1 ck=$2 p=$3
    shift 3
    curl -s --cacert "$SK_CA_DIR/ca.crt" --cert "$SK_TMP/users/$u.crt" --key "$SK_TMP/users/$u.key" \
        -H "Cookie: __Host-sekisho=$ck" "$@" "https://$SK_HOST:$SK_GW_PORT$p"
}

# 0. health and metrics say whether the kernel keeps the clock synchronised, as
# adjtimex(2) tells this test (TOTP, lockout and audit times depend on it).
want=$(python3 - <<'PY'
import ctypes, ctypes.util
libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
buf = ctypes.create_string_buffer(256)  # struct timex, modes = 0: read only
state = libc.adjtimex(buf)
status = int.from_bytes(buf.raw[40:44], "little", signed=True)  # .status on LP64 Linux
STA_UNSYNC, TIME_ERROR = 0x40, 5
print("unknown" if state < 0 else ("not synchronised" if state == TIME_ERROR or status & STA_UNSYNC else "synchronised"))
PY
)
code=$(sk_curl -u alice -C "$cookie_a" /.sekisho/health)
sk_assert_eq "$code" 200 "health"
sk_assert_eq "$(sed -n 2p "$SK_TMP/last.body")" "clock: $want" "clock line of /.sekisho/health"
code=$(sk_curl -u alice -C "$cookie_a" /.sekisho/metrics)
m=$(awk '$1 == "sekisho_clock_synchronized" { print $2 }' "$SK_TMP/last.body")
sk_assert_eq "$m" "$([[ $want == synchronised ]] && echo 1 || echo 0)" "sekisho_clock_synchronized"

# 1. slow upstream page vs. another client on the same worker
gw_curl alice "$cookie_a" '/slow?ms=3000' --max-time 20 -o "$SK_TMP/slow.body" -w '%{http_code}' >"$SK_TMP/slow.code" &
slow=$!
sleep 0.5
for i in 1 2 3; do
    code=$(sk_curl -u bob -C "$cookie_b" /echo)
    sk_assert_eq "$code" 200 "request $i of another client while a slow upstream page is pending"
done
kill -0 "$slow" 2>/dev/null || sk_fail "the slow request ended before the other client's requests were served"
wait "$slow" || sk_fail "slow request: curl failed"
sk_assert_eq "$(cat "$SK_TMP/slow.code")" 200 "the slow page itself"
sk_assert_eq "$(cat "$SK_TMP/slow.body")" "slow" "the slow page's body"

# 2a. gone while waiting for the upstream
rc=0
gw_curl alice "$cookie_a" '/slow?ms=1500' --max-time 0.5 -o /dev/null || rc=$?
sk_assert_eq "$rc" 28 "client gave up while its request waited for the upstream"
sleep 1.5
code=$(sk_curl -u alice -C "$cookie_a" /echo)
sk_assert_eq "$code" 200 "gateway serves after a client vanished mid-request"
# 2b. gone while the login runs off the loop
code=$(sk_curl -u bob /.sekisho/login -H 'Accept: text/html')
csrf=$(sk_csrf_from_last)
for i in 1 2 3; do
    rc=0
    curl -s --max-time 0.05 --cacert "$SK_CA_DIR/ca.crt" --cert "$SK_TMP/users/bob.crt" \
        --key "$SK_TMP/users/bob.key" --data-urlencode id=bob --data-urlencode "password=Wrong-Passw0rd-$i" \
        --data-urlencode "csrf=$csrf" -o /dev/null "https://$SK_HOST:$SK_GW_PORT/.sekisho/login" || rc=$?
    sk_assert_eq "$rc" 28 "client $i gave up while its login was being decided"
done
sleep 1.5
sk_login bob >/dev/null
code=$(sk_curl -u alice -C "$cookie_a" /echo)
sk_assert_eq "$code" 200 "gateway serves after clients vanished during logins"

# A connection's HTTP memory is small (16 KiB pool), yet a large request head still fits.
big=$(head -c 12000 /dev/zero | tr '\0' 'a')
code=$(sk_curl -u alice -C "$cookie_a" /echo -H "X-Big: $big")
sk_assert_eq "$code" 200 "request with a 12 KB header"

# 3. threads with 1 and with 1000 idle signed-in connections
printf '__Host-sekisho=%s' "$cookie_a" >"$SK_TMP/cookie.hdr"
hold() { # N TAG
    rm -f "$SK_TMP/ready.$2" "$SK_TMP/stop.$2"
    timeout 180 python3 "$SK_SRC/tests/integration/gateway/hold_clients.py" "$SK_HOST" "$SK_GW_PORT" \
        --ca "$SK_CA_DIR/ca.crt" --cert "$SK_TMP/users/alice.crt" --key "$SK_TMP/users/alice.key" \
        --cookie-file "$SK_TMP/cookie.hdr" -n "$1" --ready "$SK_TMP/ready.$2" --stop "$SK_TMP/stop.$2" \
        --max-seconds 170 >"$SK_TMP/hold.$2.log" 2>&1 &
    sk_track $!
    for ((i = 0; i < 1500; i++)); do [[ -s $SK_TMP/ready.$2 ]] && break; sleep 0.1; done
    [[ -s $SK_TMP/ready.$2 ]] || sk_fail "holding $1 connections: $(cat "$SK_TMP/hold.$2.log")"
    sk_assert_eq "$(cat "$SK_TMP/ready.$2")" "ok=$1 failed=0" "signed-in connections opened ($2)"
}
hold 1 one
t1=$(threads)
rss1=$(awk '/^VmRSS:/ { print $2 }' "/proc/$(sk_child_pid net)/status")
touch "$SK_TMP/stop.one"
hold 1000 many
t1000=$(threads)
rss1000=$(awk '/^VmRSS:/ { print $2 }' "/proc/$(sk_child_pid net)/status")
sk_log "threads: $t1 with 1 connection, $t1000 with 1000; RSS $rss1 kB -> $rss1000 kB ($(((rss1000 - rss1) / 999)) kB per connection)"
sk_assert_eq "$t1000" "$t1" "gateway threads with 1000 idle signed-in connections vs 1"
code=$(sk_curl -u bob -C "$cookie_b" /echo)
sk_assert_eq "$code" 200 "a request while 1000 connections are held"
touch "$SK_TMP/stop.many"

# 4. slow client, slow upstream: peak RSS stays bounded
down=$((100 * 1024 * 1024))
up=$((50 * 1024 * 1024))
hwm0=$(vmhwm)
gw_curl alice "$cookie_a" "/download?bytes=$down" --max-time 120 --limit-rate 25M -o "$SK_TMP/down.bin" \
    -w '%{http_code}' >"$SK_TMP/down.code" || sk_fail "slow download: curl failed"
sk_assert_eq "$(cat "$SK_TMP/down.code")" 200 "100 MB download read at 25 MB/s"
sk_assert_eq "$(stat -c %s "$SK_TMP/down.bin")" "$down" "downloaded size"
rm -f "$SK_TMP/down.bin"
head -c "$up" /dev/urandom >"$SK_TMP/up.bin"
upsha=$(sha256sum <"$SK_TMP/up.bin" | cut -d' ' -f1)
gw_curl alice "$cookie_a" '/upload?pace=2' --max-time 240 -X POST -T "$SK_TMP/up.bin" -o "$SK_TMP/up.body" \
    -w '%{http_code}' >"$SK_TMP/up.code" || sk_fail "slow upload: curl failed ($(cat "$SK_TMP/up.code"))"
sk_assert_eq "$(cat "$SK_TMP/up.code")" 200 "50 MB upload to an upstream reading 64 KiB per 2 ms"
sk_assert_eq "$(cat "$SK_TMP/up.body")" "{\"bytes\":$up,\"sha256\":\"$upsha\"}" "upload seen by the slow upstream"
rm -f "$SK_TMP/up.bin"
hwm1=$(vmhwm)
sk_log "peak RSS: $hwm0 kB before, $hwm1 kB after the slow transfers"
sk_assert_lt "$((hwm1 - hwm0))" 24576 "gateway peak RSS growth (kB) during slow transfers"

# 5. A client that ends with close_notify (curl and browsers do) can resume its TLS 1.2
# session: closing a connection must not drop the session from the server's cache.
s12() { # ARGS...: openssl s_client with alice's certificate, TLS 1.2 session IDs only
    timeout 10 openssl s_client -tls1_2 -no_ticket -connect "$SK_HOST:$SK_GW_PORT" -cert "$SK_TMP/users/alice.crt" \
        -key "$SK_TMP/users/alice.key" -CAfile "$SK_CA_DIR/ca.crt" "$@" 2>/dev/null
}
printf 'GET /echo HTTP/1.1\r\nHost: %s:%s\r\nCookie: __Host-sekisho=%s\r\n\r\n' "$SK_HOST" "$SK_GW_PORT" "$cookie_a" |
    s12 -sess_out "$SK_TMP/s12" >/dev/null || true
[[ -s $SK_TMP/s12 ]] || sk_fail "no TLS 1.2 session saved"
sk_assert_match "$(s12 -sess_in "$SK_TMP/s12" </dev/null | grep -E '^(New|Reused),')" '^Reused,' \
    "TLS 1.2 session resumed after the client closed with close_notify"

sk_stop_gateway
sk_pass
