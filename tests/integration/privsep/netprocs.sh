#!/usr/bin/env bash
# Several network processes ([listen] processes = 2) sharing the port:
#  1. two sekisho-net processes run; keep-alive mTLS connections are held on each
#     (which process holds which is read from the kernel: ss -tnp);
#  2. /metrics answered by either process reports the sum over both (requests made
#     on both processes' connections are all counted; the gauges add up);
#  3. one process dies (SIGSYS from its sandbox through the test hook in test builds,
#     SIGKILL otherwise): the other's connection carries further requests on the same
#     TCP connection (session included), the dead one is restarted, its counters go
#     on (nothing counted is lost), the monitor and the audit log name it
#     (process.restart, instance sekisho-net[N]);
#  4. the per-address limit on unfinished handshakes holds for both processes
#     together: one address gets handshakes_per_address silent connections in all,
#     while both processes hold some of them.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# shellcheck source=../lifecycle/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lifecycle/common.sh"
sk_setup
for t in jq python3 ss; do command -v "$t" >/dev/null || sk_fail "$t not installed"; done
per_addr=20
sk_make_ca alice:acme
sk_start_upstream
# shellcheck disable=SC2119 # the configuration comes on stdin
sk_write_config <<EOF
[listen]
processes = 2
workers = 2
handshakes_per_address = $per_addr
handshake_timeout = 5s
[notify]
command = $SK_TMP/sendmail -t
operators = ops@example.com
EOF
mail=$SK_TMP/mail
mkdir -p "$mail"
# shellcheck disable=SC2016 # expanded by the mail command, not here
printf '#!/bin/sh\ncat >"$(mktemp "%s/msg.XXXXXX")"\n' "$mail" >"$SK_TMP/sendmail"
chmod 700 "$SK_TMP/sendmail"
sk_add_user alice acme "$(sk_password)"
# More processes than workers is allowed (one thread each) and said so by -t.
sed 's/^workers = 2$/workers = 1/' "$SK_CONF" >"$SK_TMP/more.conf"
out=$("$SK_BIN/sekisho" -c "$SK_TMP/more.conf" -t 2>&1) || sk_fail "sekisho -t with processes > workers: $out"
sk_assert_contains "$out" "processes = 2 is more than workers = 1" "the -t warning"
sed 's/^processes = 2$/processes = 65/' "$SK_CONF" >"$SK_TMP/bad.conf"
out=$("$SK_BIN/sekisho" -c "$SK_TMP/bad.conf" -t 2>&1) && sk_fail "sekisho -t accepted processes = 65: $out"
sk_assert_contains "$out" "processes = 65" "the -t error names the value"
sk_start_gateway

# The network processes under the monitor, one pid a line.
nets() { pgrep -P "$SK_GW_PID" -x sekisho-net | sort -n || true; }
for ((i = 0; i < 100; i++)); do
    (($(nets | wc -l) == 2)) && break
    sleep 0.1
done
sk_assert_eq "$(nets | wc -l)" 2 "sekisho-net processes with processes = 2"

coproc NC { python3 "$SK_SRC/tests/integration/privsep/netproc_client.py" "$SK_HOST" "$SK_GW_PORT" \
    --ca "$SK_CA_DIR/ca.crt" --cert "$SK_TMP/users/alice.crt" --key "$SK_TMP/users/alice.key" \
    2>"$SK_TMP/client.err"; }
sk_track "$NC_PID"
# nc COMMAND...: one command to the client, its answer line.
nc() {
    local reply
    echo "$*" >&"${NC[1]}"
    IFS= read -r -t 40 reply <&"${NC[0]}" || reply="err no answer ($(tail -c 300 "$SK_TMP/client.err"))"
    echo "$reply"
}
# owner LOCALPORT: the pid holding the gateway's end of that client connection.
owner() {
    ss -tnpH state established "( sport = :$SK_GW_PORT and dport = :$1 )" | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2
}
# metric FILE NAME: a sample's value.
metric() { awk -v m="sekisho_$2" '$1 == m { print $2 }' "$1"; }

# only_on PID COMMAND...: run COMMAND while the other network processes are stopped
# (SIGSTOP), so that every connection it opens is accepted by PID (a stopped
# process has no thread waiting on the shared listening socket).
# stop PID...: SIGSTOP, and wait until every thread has stopped (a signal is
# delivered asynchronously; a thread still in epoll_wait would take connections).
stop() {
    local p t i all
    kill -STOP "$@"
    for ((i = 0; i < 200; i++)); do
        all=1
        for p in "$@"; do
            for t in /proc/"$p"/task/*/stat; do
                [[ $(sed -E 's/.*\) (.).*/\1/' "$t" 2>/dev/null) == T ]] || all=0
            done
        done
        ((all)) && return 0
        sleep 0.01
    done
    sk_fail "pids $* did not stop"
}
only_on() {
    local keep=$1 rc=0 o
    shift
    o=$(nets | grep -vx "$keep" | tr '\n' ' ')
    # shellcheck disable=SC2086
    stop $o
    "$@" || rc=$?
    # shellcheck disable=SC2086
    kill -CONT $o
    return "$rc"
}
# open_on PID: a held connection accepted by PID; prints its index.
open_on() {
    local ok idx port
    read -r ok idx port <<<"$(only_on "$1" nc open)"
    [[ $ok == ok ]] || sk_fail "open a connection to pid $1: $ok $idx $port"
    sk_assert_eq "$(owner "$port")" "$1" "the process holding connection $idx"
    echo "$idx"
}
# scrape_on PID FILE: /metrics served by PID (the gateway's own pages close their
# connection, so each scrape is a connection of its own).
scrape_on() {
    local code
    code=$(only_on "$1" sk_curl -u alice -C "$cookie" /.sekisho/metrics)
    sk_assert_eq "$code" 200 "metrics from pid $1"
    cp "$SK_TMP/last.body" "$2"
}

# 1. One held keep-alive connection on each process, signed in.
read -r pa pb <<<"$(nets | tr '\n' ' ')"
cookie=$(only_on "$pa" sk_login alice) # the form and its POST reach the same process
[[ -n $cookie ]] || sk_fail "login"
sk_assert_eq "$(nc cookie "$cookie")" ok "client cookie"
A=$(open_on "$pa")
B=$(open_on "$pb")
nopen=2
sk_log "connection $A on sekisho-net pid $pa, connection $B on pid $pb"
for p in $pa $pb; do # serving, so past their sandbox's entry
    sk_assert_eq "$(awk '/^NoNewPrivs:/ { print $2 }' "/proc/$p/status")" 1 "no_new_privs of pid $p"
    sk_assert_eq "$(awk '/^Seccomp:/ { print $2 }' "/proc/$p/status")" 2 "seccomp filter mode of pid $p"
done
sk_assert_eq "$(nc get "$A" /echo)" "ok 200" "a proxied request on connection $A (pid $pa)"
sk_assert_eq "$(nc get "$B" /echo)" "ok 200" "a proxied request on connection $B (pid $pb)"

# What must not be a process's own: a login form served by one process is accepted
# by the other (the CSRF key is authd's), and a TLS session from one resumes on the
# other (so are the ticket keys).
jar=$SK_TMP/jar.cross
sk_assert_eq "$(only_on "$pa" sk_curl -u alice /.sekisho/login -c "$jar" -H 'Accept: text/html')" 200 "login form from pid $pa"
form=(--data-urlencode id=alice --data-urlencode "password@$SK_TMP/secrets/alice.pw")
while IFS=$'\t' read -r fn fv; do form+=(--data-urlencode "$fn=$fv"); done < <(sk_hidden_fields_from_last)
sk_assert_eq "$(only_on "$pb" sk_curl -u alice /.sekisho/login -b "$jar" -c "$jar" -H 'Accept: text/html' "${form[@]}")" 303 \
    "the form posted to pid $pb"
for proto in -tls1_2 -tls1_3; do
    sess=$SK_TMP/sess$proto
    sk_assert_eq "$(only_on "$pa" lc_tls_get alice "$proto" -sess_out "$sess" /.sekisho/health)" 200 "$proto: full handshake with pid $pa"
    sk_assert_eq "$(only_on "$pb" lc_tls_get alice "$proto" -sess_in "$sess" /.sekisho/health)" 200 "$proto: pid $pb answers"
    lc_tls_reused || sk_fail "$proto: a session of pid $pa did not resume on pid $pb"
done

# 2. The metrics are the sum over both processes.
scrape_on "$pa" "$SK_TMP/m0"
r0=$(metric "$SK_TMP/m0" http_requests_total)
p0=$(metric "$SK_TMP/m0" proxied_requests_total)
n=10
for ((i = 0; i < n; i++)); do
    c=$A
    ((i % 2)) && c=$B
    sk_assert_eq "$(nc get "$c" /echo)" "ok 200" "request $i on connection $c"
done
scrape_on "$pb" "$SK_TMP/m1"
r1=$(metric "$SK_TMP/m1" http_requests_total)
# Each scrape counts itself: r1 = r0 + the n requests + this scrape.
sk_assert_eq "$((r1 - r0))" "$((n + 1))" "requests counted on both processes, read from one then the other"
sk_assert_eq "$(($(metric "$SK_TMP/m1" proxied_requests_total) - p0))" "$n" "proxied requests of both processes"
scrape_on "$pa" "$SK_TMP/m2"
sk_assert_eq "$(metric "$SK_TMP/m2" http_requests_total)" "$((r1 + 1))" "both processes report the same sum"
# The held connections and the scrape's own.
sk_assert_eq "$(metric "$SK_TMP/m2" connections_established)" "$((nopen + 1))" "established connections of both processes"
sk_assert_eq "$(metric "$SK_TMP/m2" logins_total)" 2 "the logins counted"
lim=$(metric "$SK_TMP/m2" connections_max)
max_each=$(grep -oE "listening on .* at most [0-9]+ connections" "$SK_GW_LOG" | grep -oE '[0-9]+ connections' | head -n 1 | cut -d' ' -f1)
sk_assert_eq "$lim" "$((2 * max_each))" "the connection limit is the sum of both processes'"
r1=$(metric "$SK_TMP/m2" http_requests_total)

# SIGHUP reaches every network process (each reloads its certificates and CRL).
kill -HUP "$SK_GW_PID"
for ((i = 0; i < 100; i++)); do
    (($(grep -c 'SIGHUP: reloading' "$SK_GW_LOG") >= 2)) && break
    sleep 0.1
done
sk_assert_eq "$(grep -c 'SIGHUP: reloading' "$SK_GW_LOG")" 2 "network processes that reloaded on SIGHUP"
sk_assert_eq "$(nc get "$A" /echo)" "ok 200" "connection $A after the reload"
sk_assert_eq "$(nc get "$B" /echo)" "ok 200" "connection $B after the reload"

# 3. Process pb dies; pa's connections carry on.
if "$SK_BIN/sekisho" -V | grep -q 'TEST BUILD'; then
    sig=31
    reply=$(nc get "$B" "/.sekisho/test/violate?what=execve")
    sk_assert_contains "$reply" "err" "the request that made pid $pb die got no answer"
else
    sig=9
    kill -KILL "$pb"
fi
for ((i = 0; i < 100; i++)); do
    [[ -d /proc/$pb ]] || break
    sleep 0.1
done
[[ ! -d /proc/$pb ]] || sk_fail "pid $pb did not die"
sk_assert_eq "$(nc get "$A" /echo)" "ok 200" "the surviving process's connection after the other died (same TCP connection)"
sk_assert_contains "$(nc get "$B" /echo)" "err" "the dead process's connection is gone"
for ((i = 0; i < 100; i++)); do
    [[ $(nets | wc -l) == 2 && $(nets | grep -cx "$pb") == 0 ]] && break
    sleep 0.1
done
sk_assert_eq "$(nets | wc -l)" 2 "sekisho-net processes after the restart"
pn=$(nets | grep -vx "$pa")
sk_assert_ne "$pn" "$pb" "a new process replaced pid $pb"
sk_assert_eq "$(nets | grep -cx "$pa")" 1 "the surviving process was not restarted"
title=$(grep -oE "started net \(sekisho-net\[[0-9]+\], pid $pb\)" "$SK_GW_LOG" | grep -oE 'sekisho-net\[[0-9]+\]')
[[ -n $title ]] || sk_fail "the monitor's log does not name pid $pb: $(grep 'started net' "$SK_GW_LOG")"
sk_assert_contains "$(grep -F "monitor: net died" "$SK_GW_LOG")" "signal $sig" "the monitor saw the death"
sk_assert_contains "$(grep -F "monitor: net died" "$SK_GW_LOG")" "restarting $title" "the monitor names the process"
grep -qF "started net ($title, pid $pn)" "$SK_GW_LOG" || sk_fail "the replacement is not $title: $(grep 'started net' "$SK_GW_LOG")"

# The replacement serves, and counts on top of what its predecessor counted; the
# dead one's gauges are gone.
N=$(open_on "$pn")
sk_assert_eq "$(nc get "$N" /echo)" "ok 200" "a request on the replacement pid $pn"
nopen=2 # A and N; B died with pb
for ((i = 0; i < 20; i++)); do
    scrape_on "$pn" "$SK_TMP/m3"
    [[ $(metric "$SK_TMP/m3" connections_established) == "$((nopen + 1))" ]] && break
    sleep 0.1
done
sk_assert_eq "$(metric "$SK_TMP/m3" connections_established)" "$((nopen + 1))" \
    "established connections after the restart (the dead process's are not counted)"
r3=$(metric "$SK_TMP/m3" http_requests_total)
hooked=$((sig == 31 ? 1 : 0))
# Since m2: /echo on A and B after the reload, the violation (counted before it
# killed pb), /echo on A and on N, the scrapes of the loop above.
sk_assert_eq "$((r3 - r1))" "$((2 + hooked + 2 + i + 1))" "requests_total after the restart (nothing counted is lost)"
sk_assert_eq "$(metric "$SK_TMP/m3" logins_total)" 2 "the logins counted before the restart are still counted"

# 4. One address against both processes together: half its limit held by one, then
# twice its limit at the other, which may only take the other half.
silent() { # OUT N AT READYFILE
    timeout 30 python3 "$SK_SRC/tests/integration/gateway/silent_clients.py" "$SK_HOST" "$SK_GW_PORT" \
        --bind 127.0.0.2 -n "$2" --at "$3" --ready "$4" >"$1" 2>&1
}
wait_file() { local i; for ((i = 0; i < 100; i++)); do [[ -e $1 ]] && return 0; sleep 0.1; done; return 1; }
half=$((per_addr / 2))
stop "$pa"
silent "$SK_TMP/attack1.out" "$half" 4 "$SK_TMP/ready1" &
a1=$!
sk_track "$a1"
wait_file "$SK_TMP/ready1" || { kill -CONT "$pa"; sk_fail "attacker 1 did not connect: $(cat "$SK_TMP/attack1.out")"; }
sleep 0.5 # accepted by pn meanwhile
kill -CONT "$pa"
stop "$pn"
silent "$SK_TMP/attack2.out" "$((per_addr * 2))" 2 "$SK_TMP/ready2" &
a2=$!
sk_track "$a2"
wait_file "$SK_TMP/ready2" || { kill -CONT "$pn"; sk_fail "attacker 2 did not connect: $(cat "$SK_TMP/attack2.out")"; }
sleep 0.5
kill -CONT "$pn"
held() { ss -tnpH state established "( sport = :$SK_GW_PORT and dst 127.0.0.2 )" | grep -c "pid=$1," || true; }
held_a=$(held "$pa") held_n=$(held "$pn")
wait "$a1" || sk_fail "attacker 1 failed: $(cat "$SK_TMP/attack1.out")"
wait "$a2" || sk_fail "attacker 2 failed: $(cat "$SK_TMP/attack2.out")"
o1=$(cat "$SK_TMP/attack1.out") o2=$(cat "$SK_TMP/attack2.out")
sk_log "one address: at pid $pn: $o1; then at pid $pa: $o2; held by pid $pa: $held_a, by pid $pn: $held_n"
sk_assert_eq "$(sed -E 's/.*open=([0-9]+).*/\1/' <<<"$o1")" "$half" "silent connections kept by pid $pn"
sk_assert_eq "$(sed -E 's/.*open=([0-9]+).*/\1/' <<<"$o2")" "$((per_addr - half))" \
    "silent connections kept by pid $pa: only what the limit left, both processes together"
sk_assert_eq "$held_n" "$half" "unfinished handshakes held by pid $pn"
sk_assert_eq "$held_a" "$((per_addr - half))" "unfinished handshakes held by pid $pa"
sk_assert_eq "$(nc get "$A" /echo)" "ok 200" "the held connection still works"
nc quit >/dev/null || true

sk_stop_gateway
# Each process watches the clock; an unsynchronised one (as on many test machines)
# is one alarm for the operators, not one per process.
alarms=$(grep -l 'Subject: Sekisho ALARM: system clock not synchronised' "$mail"/msg.* 2>/dev/null | wc -l)
if [[ $(grep -c 'system clock not synchronised' "$SK_GW_LOG") -ge 2 ]]; then
    sk_assert_eq "$alarms" 1 "clock alarms mailed while both processes saw the clock unsynchronised"
else
    sk_log "the clock is synchronised here: no clock alarm to count ($alarms mailed)"
    sk_assert_eq "$alarms" 0 "clock alarms mailed with a synchronised clock"
fi
out=$("$SK_BIN/sekishoctl" -c "$SK_CONF" audit verify 2>&1) || sk_fail "audit verify: $out"
X=$SK_TMP/export.jsonl
lc_audit_export "$X"
sk_assert_eq "$(lc_jq_count "$X" ".ev == \"process.restart\" and .details.process == \"net\" and .details.instance == \"$title\" and (.details.cause | test(\"signal $sig\"))")" 1 \
    "the restart of $title in the audit log"
sk_assert_eq "$(lc_jq_count "$X" '.ev == "process.restart"')" 1 "restarts in the audit log (only the one that died)"
sk_assert_eq "$(lc_jq_count "$X" '.ev == "gateway.start" and .details.instance == "sekisho-net[0]"')" "$([[ $title == 'sekisho-net[0]' ]] && echo 2 || echo 1)" \
    "gateway.start of sekisho-net[0]"
sk_assert_eq "$(lc_jq_count "$X" '.ev == "gateway.start" and .details.instance == "sekisho-net[1]"')" "$([[ $title == 'sekisho-net[1]' ]] && echo 2 || echo 1)" \
    "gateway.start of sekisho-net[1]"
sk_assert_eq "$(lc_jq_count "$X" '.ev == "config.reload" and .details.result == "ok"')" 2 "reloads in the audit log (one per process)"
sk_pass
