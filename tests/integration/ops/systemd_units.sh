#!/usr/bin/env bash
# The systemd units as the package installs them (issue 9, item 4): configured by
# `cmake --install` with the package's prefix (/usr) into a throwaway root, then
# `systemd-analyze security --offline=yes` on each: sekisho.service must score an
# exposure of at most 2.0, and so must sekisho-crl.service (which once ran as root
# unsandboxed: 9.6). `systemd-analyze verify` must find no unknown or invalid
# directive in any unit. The figures are printed.
source "$(dirname "$0")/../lib.sh"
sk_setup
# A build with the test-only hooks refuses to be installed or packaged (by design);
# the release build of scripts/test.sh runs this test.
if "$SK_BIN/sekisho" -V | grep -q 'TEST BUILD'; then
    sk_log "SKIP: this build has the test hooks and cannot be installed; the release build runs this test"
    sk_pass
    exit 0
fi
if ! command -v systemd-analyze >/dev/null; then
    echo "SKIP: systemd-analyze is not installed (Debian: apt-get install systemd); the unit hardening is not checked"
    sk_pass
    exit 0
fi
build=$(cd "$SK_BIN/.." && pwd)
root=$SK_TMP/root
DESTDIR=$root cmake --install "$build" --prefix /usr >"$SK_TMP/install.log" 2>&1 ||
    sk_fail "cmake --install: $(tail -20 "$SK_TMP/install.log")"
units=$root/usr/lib/systemd/system
for u in sekisho.service sekisho-crl.service sekisho-crl.timer sekisho-mail.service sekisho-mail.path \
    sekisho-mail.timer; do
    [[ -f $units/$u ]] || sk_fail "not installed: $u"
done
sk_assert_file_contains "$units/sekisho.service" "ExecStart=/usr/bin/sekisho -c /etc/sekisho/sekisho.conf" \
    "the unit names the installed binary"

# SCORE UNIT: the overall exposure systemd-analyze prints for UNIT (a file path).
score() {
    local out
    out=$(systemd-analyze security --offline=yes --no-pager "$1" 2>&1) || {
        echo "systemd-analyze security $1 failed: $out" >&2
        return 1
    }
    printf '%s\n' "$out" >"$SK_TMP/$(basename "$1").security"
    printf '%s\n' "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9][0-9]*\.[0-9]\).*/\1/p'
}
# AT_MOST A B: A <= B for one-decimal figures.
at_most() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 <= b + 0) }'; }

for u in sekisho.service sekisho-crl.service; do
    s=$(score "$units/$u") || sk_fail "systemd-analyze security on $u"
    [[ $s =~ ^[0-9]+\.[0-9]$ ]] || sk_fail "no exposure figure for $u: $(cat "$SK_TMP/$u.security")"
    echo "exposure $u: $s (systemd-analyze security --offline=yes)"
    at_most "$s" 2.0 || sk_fail "$u exposure $s > 2.0: $(grep '✗' "$SK_TMP/$u.security")"
done
# The figure is the analyzer's, not a constant: an unhardened copy of the unit
# scores far worse (the test can fail).
grep -vE '^(Protect|Private|Restrict|SystemCall|Capability|NoNew|Lock|Memory|Remove|Keyring|Device|ProcSubset|SecureBits|UMask)' \
    "$units/sekisho.service" >"$SK_TMP/bare.service"
bare=$(score "$SK_TMP/bare.service") || sk_fail "systemd-analyze security on the bare unit"
echo "exposure of the same unit without its sandboxing: $bare"
at_most "$bare" 2.0 && sk_fail "the analyzer scores an unsandboxed unit $bare: the check proves nothing"

# What the gateway relies on stays allowed: the port below 1024, the user, notify.
u=$units/sekisho.service
sk_assert_file_contains "$u" "User=sekisho" "not root"
sk_assert_file_contains "$u" "AmbientCapabilities=CAP_NET_BIND_SERVICE" "binds :443"
sk_assert_file_contains "$u" "Type=notify" "readiness"
sk_assert_file_contains "$u" "WatchdogSec=30s" "watchdog"
grep -q '^PrivateUsers=yes' "$u" && sk_fail "PrivateUsers=yes: a user namespace would refuse the bind of :443"
sk_assert_file_contains "$units/sekisho-crl.service" "NoNewPrivileges=yes" "CRL job sandboxed"
# The mail helper must keep setgid/setuid sendmail working: no NoNewPrivileges,
# neither set nor implied by a seccomp-based setting (systemd.exec(5)).
m=$units/sekisho-mail.service
grep -E '^(NoNewPrivileges=yes|SystemCallFilter|PrivateDevices=yes|ProtectKernel|ProtectClock=yes|ProtectHostname=yes|Restrict|LockPersonality=yes|MemoryDenyWriteExecute=yes)' \
    "$m" >"$SK_TMP/mail.nnp" && sk_fail "sekisho-mail.service would run sendmail without its privileges: $(cat "$SK_TMP/mail.nnp")"
sk_assert_file_contains "$m" "ExecStart=/usr/libexec/sekisho/sekisho-mail-drain /var/lib/sekisho/outbox" "drain path"
[[ -x $root/usr/libexec/sekisho/sekisho-mail-drain ]] || sk_fail "sekisho-mail-drain not installed executable"
sk_assert_file_contains "$units/sekisho-mail.path" "DirectoryNotEmpty=/var/lib/sekisho/outbox/new" "path unit watches the outbox"

# verify: unknown directives, bad syntax or bad references (missing binaries and
# man pages are expected in a throwaway root).
for f in "$units"/sekisho*.service "$units"/sekisho*.timer "$units"/sekisho*.path; do
    [[ -f $f ]] || continue
    systemd-analyze verify --root="$root" "$f" >"$SK_TMP/verify" 2>&1 || true
    grep -iE 'unknown|invalid|failed to parse|ignoring|bad' "$SK_TMP/verify" |
        grep -v 'not executable\|No such file\|man ' >"$SK_TMP/verify.bad" &&
        sk_fail "systemd-analyze verify $(basename "$f"): $(cat "$SK_TMP/verify.bad")"
done

if [[ $(id -u) != 0 ]] || ! command -v setpriv >/dev/null; then
    echo "SKIP (not root or no setpriv): running the CRL job and the gateway with the units' privileges"
    sk_pass
    exit 0
fi
# bounding_set UNIT: the unit's CapabilityBoundingSet= as setpriv's -all,+cap,...
bounding_set() {
    local caps c out=-all
    caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$1")
    for c in $caps; do out+=,+$(tr 'A-Z' 'a-z' <<<"${c#CAP_}"); done
    printf '%s\n' "$out"
}

# The CRL job with exactly the unit's capabilities and no new privileges: it signs
# as root (the key is root's 0600) and appends its audit entry as the owner of the
# audit directory. Without the two capabilities it must fail (the check is real).
sk_need_bin sekisho-ca
w=$SK_TMP/crljob
mkdir -p "$w/state/audit"
chmod 0755 "$SK_TMP" "$w" # the audit owner (nobody here) must reach its directory
"$SK_BIN/sekisho-ca" init --dir "$w/ca" --name "Units Test CA" >/dev/null || sk_fail "sekisho-ca init"
"$SK_BIN/sekisho-ca" server-cert --dir "$w/ca" --host localhost --out "$w/server" >/dev/null || sk_fail "server-cert"
printf '[listen]\ncert = server.crt\nkey = server.key\n[tls]\nclient_ca = ca/ca.crt\ncrl = ca/crl.pem\n[state]\ndir = state\n' >"$w/sekisho.conf"
chown -R nobody:nogroup "$w/state" && chmod 0700 "$w/state" "$w/state/audit"
crl_bset=$(bounding_set "$units/sekisho-crl.service")
sk_assert_eq "$crl_bset" "-all,+setuid,+setgid" "sekisho-crl.service capabilities"
before=$(openssl crl -in "$w/ca/crl.pem" -noout -crlnumber)
SEKISHO_CONF=$w/sekisho.conf setpriv --bounding-set "$crl_bset" --inh-caps=-all --no-new-privs \
    "$SK_BIN/sekisho-ca" crl --dir "$w/ca" >"$SK_TMP/crljob.log" 2>&1 ||
    sk_fail "sekisho-ca crl with the unit's capabilities: $(cat "$SK_TMP/crljob.log")"
sk_assert_ne "$(openssl crl -in "$w/ca/crl.pem" -noout -crlnumber)" "$before" "a new CRL was signed"
grep -q '"ca.crl"' "$w"/state/audit/*.jsonl || sk_fail "no ca.crl audit entry: $(cat "$w"/state/audit/*.jsonl)"
sk_assert_eq "$(find "$w/state" ! -user nobody | wc -l)" 0 "audit files owned by the audit directory's owner"
rc=0
SEKISHO_CONF=$w/sekisho.conf setpriv --bounding-set -all --inh-caps=-all --no-new-privs \
    "$SK_BIN/sekisho-ca" crl --dir "$w/ca" >"$SK_TMP/crljob2.log" 2>&1 || rc=$?
sk_assert_ne "$rc" 0 "sekisho-ca crl without CAP_SETUID/CAP_SETGID"
sk_assert_file_contains "$SK_TMP/crljob2.log" "cannot switch to uid" "why it fails"

# The gateway with the unit's privileges: an unprivileged user (nobody here), the
# ambient CAP_NET_BIND_SERVICE, the unit's bounding set and no new privileges binds
# a port below 1024 and holds no other capability; without the ambient capability
# it cannot (so the capability is what makes it work, not root).
gw_bset=$(bounding_set "$units/sekisho.service")
sk_assert_eq "$gw_bset" "-all,+net_bind_service" "sekisho.service capabilities"
low=$(python3 -c 'import random, socket
for p in random.sample(range(600, 1024), 424):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); print(p); break
    except OSError: pass
    finally: s.close()') || sk_fail "no free port below 1024"
chgrp nogroup "$w/server.key" "$w/ca" && chmod 0640 "$w/server.key" && chmod 0710 "$w/ca"
printf '[listen]\naddress = 127.0.0.1:%s\n[upstream]\nurl = http://127.0.0.1:9\n' "$low" >>"$w/sekisho.conf"
chmod 0644 "$w/sekisho.conf"
as_unit() { # [AMBIENT]: run the gateway as the unit would, in the background -> $!
    setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps="-all${1:+,+$1}" \
        --ambient-caps="-all${1:+,+$1}" --bounding-set "$gw_bset" --no-new-privs \
        "$SK_BIN/sekisho" -c "$w/sekisho.conf" >>"$SK_TMP/gw-unit.log" 2>&1 </dev/null &
}
as_unit net_bind_service
pid=$!
sk_track "$pid"
sk_wait_port "$low" "$pid" 20 || sk_fail "gateway with the unit's privileges did not listen on :$low: $(tail -5 "$SK_TMP/gw-unit.log")"
st=/proc/$pid/status
sk_assert_eq "$(awk '/^Uid:/ { print $2 }' "$st")" 65534 "gateway uid (not root)"
sk_assert_eq "$(awk '/^CapEff:/ { print $2 }' "$st")" 0000000000000400 "effective capabilities: CAP_NET_BIND_SERVICE only"
sk_assert_eq "$(awk '/^NoNewPrivs:/ { print $2 }' "$st")" 1 "no new privileges"
kill -TERM "$pid"
sk_wait_exit "$pid" 20
sk_assert_eq "$SK_EXIT_STATUS" 0 "gateway exit status after SIGTERM"
: >"$SK_TMP/gw-unit.log"
as_unit ""
pid=$!
sk_track "$pid"
sk_wait_exit "$pid" 20
sk_assert_ne "$SK_EXIT_STATUS" 0 "gateway without the ambient capability on :$low"
sk_assert_file_contains "$SK_TMP/gw-unit.log" "Permission denied" "the bind is refused"
sk_pass
