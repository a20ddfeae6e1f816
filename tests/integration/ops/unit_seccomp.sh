#!/usr/bin/env bash
# The gateway under sekisho.service's system-call filter (issue 9, item 4). There
# is no systemd to start the unit here, so the allowlist its SystemCallFilter=
# lines give (groups expanded by systemd-analyze itself, lines applied in order)
# is loaded with libseccomp (sk_unit_seccomp, EPERM for the rest, no_new_privs) and
# the real gateway runs under it: start, a login, a proxied request, a SIGHUP
# reload, a mail through [notify] command and checkpoints through [audit] witness
# (both run by /bin/sh in a child, under the same filter), SIGTERM with exit 0, and
# no "Operation not permitted" in its log. The same run without `socket` in the
# list fails, so the filter is really applied.
source "$(dirname "$0")/../lib.sh"
sk_setup
if ! command -v systemd-analyze >/dev/null; then
    echo "SKIP: systemd-analyze is not installed (Debian: apt-get install systemd); the filter cannot be expanded"
    sk_pass
    exit 0
fi
[[ -x $SK_BIN/sk_unit_seccomp ]] || sk_fail "sk_unit_seccomp not built: libseccomp-dev missing (bash scripts/deps.sh test)"
unit=$SK_SRC/dist/sekisho.service.in

# expand NAME: the system calls of a group (recursively) or the name itself.
expand() {
    local x
    case $1 in
    @*)
        systemd-analyze syscall-filter "$1" | sed -n '2,$p' | grep -v '^ *#' | tr -s ' \t' '\n' | grep -v '^$' |
            while read -r x; do expand "$x"; done
        ;;
    *) printf '%s\n' "$1" ;;
    esac
}
: >"$SK_TMP/allow"
lines=0
while IFS= read -r spec; do
    lines=$((lines + 1))
    if [[ $spec == ~* ]]; then
        for g in ${spec#\~}; do expand "$g"; done | sort -u >"$SK_TMP/drop"
        grep -vxF -f "$SK_TMP/drop" "$SK_TMP/allow" >"$SK_TMP/allow.new" || true
    else
        { cat "$SK_TMP/allow"; for g in $spec; do expand "$g"; done; } | sort -u >"$SK_TMP/allow.new"
    fi
    mv "$SK_TMP/allow.new" "$SK_TMP/allow"
done < <(sed -n 's/^SystemCallFilter=//p' "$unit")
[[ $lines -ge 2 ]] || sk_fail "no SystemCallFilter= lines in $unit"
sk_assert_eq "$(sed -n 's/^SystemCallErrorNumber=//p' "$unit")" EPERM "refused calls fail with EPERM"
grep -qx setuid "$SK_TMP/allow" && sk_fail "the expanded filter allows setuid (@privileged not removed)"
grep -qx epoll_wait "$SK_TMP/allow" || sk_fail "the expanded filter lacks epoll_wait: $(wc -l <"$SK_TMP/allow") names"
echo "allowlist: $(wc -l <"$SK_TMP/allow") system call names from $lines SystemCallFilter= lines"

mail=$SK_TMP/mail
mkdir -p "$mail"
cat >"$SK_TMP/sendmail" <<SH
#!/bin/sh
n=\$(ls "$mail" | wc -l)
cat >"$mail/msg.\$n"
SH
cat >"$SK_TMP/witness" <<SH
#!/bin/sh
cat >>"$SK_TMP/witnessed"
SH
chmod 0755 "$SK_TMP/sendmail" "$SK_TMP/witness"

sk_make_ca alice:acme
sk_start_upstream
sk_write_config <<EOF2
[tls]
crl_warn_before = 30d

[notify]
command = $SK_TMP/sendmail -t
operators = ops@example.com

[audit]
witness = $SK_TMP/witness
EOF2
sk_add_user alice acme "$(sk_password)"

# LeakSanitizer stops the world with ptrace (@debug), which the unit's filter
# refuses, as it should; the other tests check leaks. No effect on release builds.
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0"
# start_filtered LIST: the gateway under the allowlist LIST -> SK_GW_PID.
start_filtered() {
    SK_GW_LOG=$SK_TMP/gateway.log
    "$SK_BIN/sk_unit_seccomp" "$1" "$SK_BIN/sekisho" -c "$SK_CONF" >>"$SK_GW_LOG" 2>&1 </dev/null &
    SK_GW_PID=$!
    sk_track "$SK_GW_PID"
}
start_filtered "$SK_TMP/allow"
sk_wait_port "$SK_GW_PORT" "$SK_GW_PID" 20 || sk_fail "gateway did not start under the unit's filter"
sk_assert_eq "$(awk '/^Seccomp:/ { print $2 }' "/proc/$SK_GW_PID/status")" 2 "gateway runs under a seccomp filter"

cookie=$(sk_login alice)
code=$(sk_curl -u alice -C "$cookie" /echo)
sk_assert_eq "$code" 200 "proxied request under the filter"
kill -HUP "$SK_GW_PID"
for _ in $(seq 100); do
    [[ $(grep -c 'TLS context loaded' "$SK_GW_LOG") -ge 2 ]] && break
    sleep 0.1
done
sk_assert_eq "$(grep -c 'TLS context loaded' "$SK_GW_LOG")" 2 "SIGHUP reload under the filter"
for _ in $(seq 100); do
    grep -qs 'Subject: Sekisho warning: CRL expires soon' "$mail"/msg.* && break
    sleep 0.1
done
grep -qs 'Subject: Sekisho warning: CRL expires soon' "$mail"/msg.* ||
    sk_fail "no mail through [notify] command (/bin/sh child) under the filter: $(ls "$mail")"
code=$(sk_curl -u alice -C "$cookie" /echo)
sk_assert_eq "$code" 200 "request after the reload"
sk_stop_gateway
[[ -s $SK_TMP/witnessed ]] || sk_fail "[audit] witness got no checkpoint under the filter"
sk_assert_file_not_contains "$SK_GW_LOG" "Operation not permitted" "no refused system call"
"$SK_BIN/sekishoctl" -c "$SK_CONF" audit verify >"$SK_TMP/verify.log" 2>&1 ||
    sk_fail "audit verify after a run under the filter: $(cat "$SK_TMP/verify.log")"

# Control: without `socket` the gateway cannot listen (the filter is enforced).
grep -vx socket "$SK_TMP/allow" >"$SK_TMP/allow.nosocket"
: >"$SK_TMP/gateway.log"
start_filtered "$SK_TMP/allow.nosocket"
sk_wait_exit "$SK_GW_PID" 20
SK_GW_PID=""
sk_assert_ne "$SK_EXIT_STATUS" 0 "gateway without socket(2)"
sk_assert_file_contains "$SK_TMP/gateway.log" "Operation not permitted" "the refusal is EPERM"
sk_pass
