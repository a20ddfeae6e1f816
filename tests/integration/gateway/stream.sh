#!/usr/bin/env bash
# Bodies stream through the gateway: a 100 MB download and a 50 MB upload (plus a
# chunked one) arrive intact, while the gateway's peak RSS grows by less than
# SK_HWM_MAX_KB (default 64 MiB).
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
sk_setup
sk_setup_gateway alice:acme
cookie=$(sk_login alice)
hwm_limit=${SK_HWM_MAX_KB:-65536}
down=$((100 * 1024 * 1024))
up=$((50 * 1024 * 1024))

vmhwm() { awk '/^VmHWM:/ { print $2 }' "/proc/$(sk_child_pid net)/status"; }

code=$(sk_curl -u alice -C "$cookie" /echo)
sk_assert_eq "$code" 200 "warm-up request"
hwm0=$(vmhwm)

# The upstream's pattern is what the test expects (first 64 KiB recomputed here).
curl -s --max-time 30 "http://$SK_HOST:$SK_UP_PORT/download?bytes=65536" -o "$SK_TMP/direct.head"
perl -e 'print pack("C*", map { ($_ * 31 + 7) & 0xff } 0 .. 65535)' >"$SK_TMP/expect.head"
cmp -s "$SK_TMP/direct.head" "$SK_TMP/expect.head" || sk_fail "upstream download pattern"
want=$(curl -s --max-time 60 "http://$SK_HOST:$SK_UP_PORT/download?bytes=$down" | sha256sum | cut -d' ' -f1)

code=$(sk_curl -u alice -C "$cookie" "/download?bytes=$down")
sk_assert_eq "$code" 200 "100 MB download"
sk_assert_eq "$(stat -c %s "$SK_TMP/last.body")" "$down" "downloaded size"
sk_assert_eq "$(sha256sum <"$SK_TMP/last.body" | cut -d' ' -f1)" "$want" "downloaded sha256"
rm -f "$SK_TMP/last.body"

head -c "$up" /dev/urandom >"$SK_TMP/up.bin"
upsha=$(sha256sum <"$SK_TMP/up.bin" | cut -d' ' -f1)
code=$(sk_curl -u alice -C "$cookie" /upload -X POST -T "$SK_TMP/up.bin")
sk_assert_eq "$code" 200 "50 MB upload (Content-Length)"
sk_assert_eq "$(sk_last_body)" "{\"bytes\":$up,\"sha256\":\"$upsha\"}" "upload seen by the upstream"

# Chunked request body from a pipe (the client does not know the length).
part=$((20 * 1024 * 1024))
partsha=$(head -c "$part" "$SK_TMP/up.bin" | sha256sum | cut -d' ' -f1)
code=$(head -c "$part" "$SK_TMP/up.bin" |
    sk_curl -u alice -C "$cookie" /upload -X PUT -H 'Transfer-Encoding: chunked' -T -)
sk_assert_eq "$code" 200 "20 MB chunked upload"
sk_assert_eq "$(sk_last_body)" "{\"bytes\":$part,\"sha256\":\"$partsha\"}" "chunked upload seen by the upstream"
rm -f "$SK_TMP/up.bin"

hwm1=$(vmhwm)
sk_log "gateway VmHWM: ${hwm0} kB before, ${hwm1} kB after streaming"
sk_assert_lt "$((hwm1 - hwm0))" "$hwm_limit" "gateway peak RSS growth in kB while streaming"

code=$(sk_curl -u alice -C "$cookie" /echo)
sk_assert_eq "$code" 200 "request after streaming"
sk_stop_gateway
sk_pass
