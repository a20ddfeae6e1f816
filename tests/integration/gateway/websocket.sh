#!/usr/bin/env bash
# WebSocket upgrade passes through for a signed-in user: 101 from the upstream,
# frames both ways (a 100 KB one included), close ends it. Without a session there
# is no upgrade; other Upgrade protocols are not honoured; an idle WebSocket does
# not spin the gateway's CPU.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
sk_setup
sk_setup_gateway alice:acme
cookie=$(sk_login alice)
crt=$SK_TMP/users/alice.crt key=$SK_TMP/users/alice.key

# ws_session COOKIE PAYLOAD_BYTES IDLE_SECONDS [late] -> raw bytes received, in
# $SK_TMP/ws.out. With "late" the frame is sent after the idle time, not before.
ws_session() {
    SK_COOKIE=$1 SK_N=$2 SK_IDLE=$3 SK_LATE=${4:-} SK_HOSTPORT="$SK_HOST:$SK_GW_PORT" perl -e '
        $| = 1;
        my $c = $ENV{SK_COOKIE} ne "" ? "Cookie: __Host-sekisho=$ENV{SK_COOKIE}\r\n" : "";
        print "GET /ws HTTP/1.1\r\nHost: $ENV{SK_HOSTPORT}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n",
              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n$c\r\n";
        select(undef, undef, undef, 0.5);
        my @m = (0x11, 0x22, 0x33, 0x44);
        my $p = join("", map { chr(($_ * 7 + 3) & 0xff) } 0 .. $ENV{SK_N} - 1);
        my $x = $p; my $i = 0; $x =~ s/(.)/chr(ord($1) ^ $m[$i++ % 4])/gse;
        my $n = length $p;
        my $h = $n < 126 ? chr(0x80 | $n) : $n < 65536 ? chr(0x80 | 126) . pack("n", $n)
                                                      : chr(0x80 | 127) . pack("Q>", $n);
        select(undef, undef, undef, $ENV{SK_IDLE}) if $ENV{SK_LATE};
        print chr(0x82) . $h . pack("C4", @m) . $x;
        select(undef, undef, undef, $ENV{SK_IDLE}) unless $ENV{SK_LATE};
        print chr(0x88) . chr(0x80) . pack("C4", @m);
        select(undef, undef, undef, 0.5);' |
        timeout 20 openssl s_client -quiet -connect "$SK_HOST:$SK_GW_PORT" -cert "$crt" -key "$key" \
            -CAfile "$SK_CA_DIR/ca.crt" >"$SK_TMP/ws.out" 2>/dev/null || true
}
expect_payload() { # N: the echoed binary frame carries the same N bytes
    SK_N=$1 perl -0777 -ne '
        my $i = index($_, "\r\n\r\n"); exit 1 if $i < 0; my $f = substr($_, $i + 4);
        my $n = $ENV{SK_N}; my $p = join("", map { chr(($_ * 7 + 3) & 0xff) } 0 .. $n - 1);
        exit(index($f, $p) >= 0 ? 0 : 1);' "$SK_TMP/ws.out"
}

ws_session "" 16 0.2
sk_assert_not_contains "$(head -n 1 "$SK_TMP/ws.out")" " 101 " "no upgrade without a session"
sk_assert_match "$(head -n 1 "$SK_TMP/ws.out" | tr -d '\r')" '^HTTP/1.1 (401|303) ' "unauthenticated upgrade answered like any request"

ws_session "$cookie" 32 0.2
sk_assert_eq "$(head -n 1 "$SK_TMP/ws.out" | tr -d '\r')" "HTTP/1.1 101 Switching Protocols" "upgrade with a session"
sk_assert_contains "$(tr -d '\r' <"$SK_TMP/ws.out" | head -n 8)" "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" "accept key from the upstream"
expect_payload 32 || sk_fail "32-byte frame not echoed through the gateway"

ws_session "$cookie" 100000 0.2
expect_payload 100000 || sk_fail "100 KB frame not echoed intact"

# An idle WebSocket must not keep the gateway busy (edge-triggered polling).
ticks() { awk '{ print $14 + $15 }' "/proc/$(sk_child_pid net)/stat"; }
t0=$(ticks)
ws_session "$cookie" 8 3
t1=$(ticks)
sk_log "gateway CPU during a 3 s idle WebSocket: $((t1 - t0)) ticks"
sk_assert_lt "$((t1 - t0))" 50 "CPU ticks (1/100 s) used while a WebSocket sat idle for 3 s"
expect_payload 8 || sk_fail "frame after idle not echoed"

# Revocation has no "next request" on a WebSocket: ending the session cuts it.
ws_session "$cookie" 24 4 late &
wspid=$!
sleep 1.5
"$SK_BIN/sekishoctl" -c "$SK_CONF" session revoke --user alice --tenant acme >"$SK_TMP/revoke.log" 2>&1 ||
    sk_fail "session revoke: $(cat "$SK_TMP/revoke.log")"
wait "$wspid"
sk_assert_eq "$(head -n 1 "$SK_TMP/ws.out" | tr -d '\r')" "HTTP/1.1 101 Switching Protocols" "upgrade before the revocation"
if expect_payload 24; then sk_fail "a frame sent after the session was revoked was still relayed"; fi
sk_assert_file_contains "$SK_GW_LOG" "WebSocket of acme/alice closed" "gateway log names the cut WebSocket"
cookie=$(sk_login alice)

# Only WebSocket upgrades are forwarded: h2c is answered as a normal request.
code=$(sk_curl -u alice -C "$cookie" /echo -H 'Connection: Upgrade, HTTP2-Settings' -H 'Upgrade: h2c' -H 'HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA')
sk_assert_eq "$code" 200 "h2c upgrade request answered without switching"
sk_assert_eq "$(sk_echo_header_count Upgrade)" 0 "Upgrade: h2c not forwarded"

code=$(sk_curl -u alice -C "$cookie" /echo)
sk_assert_eq "$code" 200 "gateway serves normally after WebSockets"
sk_stop_gateway
sk_pass
