#!/bin/bash
# Issue 9: while auditd runs, sekishoctl and sekisho-ca submit their entries
# through its ctl socket (<[state] dir>/auditd.sock) and never open audit.key;
# when nothing listens (no socket, a stale one) they write under the lock as
# before. auditd_testsrv stands in for the forked auditd. strace shows which
# files each tool opened; the control run (auditd stopped) shows the same check
# does see the key being opened.
source "$SK_SRC/tests/integration/lib.sh"
source "$SK_SRC/tests/integration/ctl/ctl_lib.sh"
source "$SK_SRC/tests/integration/adminaudit/aa_lib.sh"
sk_setup
sk_need_bin sekishoctl sekisho-ca auditd_testsrv
command -v jq >/dev/null || sk_fail "jq not installed"
command -v strace >/dev/null || sk_fail "strace not installed (scripts/deps.sh test)"
ctl_config
unset SUDO_USER SEKISHO_CONF
KEY=$SK_TMP/state/audit.key
SOCK=$SK_TMP/state/auditd.sock

# traced NAME RC CMD...: run CMD under strace (file opens of every thread and child)
# into $SK_TMP/NAME.trace, assert its exit code.
traced() {
    local name=$1 want=$2 rc=0
    shift 2
    # LeakSanitizer cannot run under ptrace; the untraced runs below keep it.
    ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" \
        strace -f -qq -e trace=open,openat,openat2,creat -o "$SK_TMP/$name.trace" "$@" \
        >"$SK_TMP/out" 2>"$SK_TMP/err" </dev/null || rc=$?
    [[ $rc == "$want" ]] || sk_fail "$*: exit $rc, expected $want: $(head -c 600 "$SK_TMP/err")"
    if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$SK_TMP/err"; then
        sk_fail "$*: sanitizer report: $(head -c 2000 "$SK_TMP/err")"
    fi
    # The trace works: it saw the configuration file being opened.
    grep -qF "$SK_CONF" "$SK_TMP/$name.trace" || sk_fail "strace recorded no open of $SK_CONF ($name)"
}
opened_key() { grep -E "\"$KEY(\.next)?\"" "$SK_TMP/$1.trace" | grep -v ENOENT || true; }

start_auditd() {
    "$SK_BIN/auditd_testsrv" "$SK_CONF" >"$SK_TMP/srv.out" 2>>"$SK_TMP/srv.log" &
    SRV=$!
    sk_track "$SRV"
    for _ in $(seq 100); do
        grep -q ready "$SK_TMP/srv.out" 2>/dev/null && break
        kill -0 "$SRV" 2>/dev/null || sk_fail "auditd_testsrv died: $(cat "$SK_TMP/srv.log")"
        sleep 0.1
    done
    grep -q ready "$SK_TMP/srv.out" || sk_fail "auditd_testsrv not ready: $(cat "$SK_TMP/srv.log")"
    [[ -S $SOCK ]] || sk_fail "no ctl socket at $SOCK"
    sk_assert_eq "$(stat -c %a "$SOCK")" 600 "ctl socket mode"
}
stop_auditd() {
    kill -TERM "$SRV"
    sk_wait_exit "$SRV" 20
    sk_assert_eq "$SK_EXIT_STATUS" 0 "auditd_testsrv exit status"
}

pwa=$(ctl_pwfile a Alpine-Lake-42x)
pwb=$(ctl_pwfile b Birch-Grove-77y)

# ---- auditd runs: the tools submit, the key stays closed -------------------------
start_auditd                     # fresh install: auditd creates the key
[[ -f $KEY ]] || sk_fail "auditd_testsrv did not create the key"
traced add_alice 0 "$SK_BIN/sekishoctl" -c "$SK_CONF" user add alice --tenant acme --role admin \
    --email alice@example.com --password-file "$pwa"
sk_assert_eq "$(opened_key add_alice)" "" "sekishoctl opened the audit key while auditd ran"
traced lock_alice 0 "$SK_BIN/sekishoctl" -c "$SK_CONF" user lock alice --tenant acme
sk_assert_eq "$(opened_key lock_alice)" "" "sekishoctl (lock) opened the audit key"
ctl 0 user unlock alice --tenant acme     # untraced (leak check in the ASan build)

ca=$SK_TMP/ca
printf '%s' "p12-$(openssl rand -hex 12)" >"$SK_TMP/p12pass"
traced ca_init 0 "$SK_BIN/sekisho-ca" init --dir "$ca" --name "Auditd Test CA" --audit-config "$SK_CONF"
traced ca_issue 0 "$SK_BIN/sekisho-ca" issue --dir "$ca" --user alice --tenant acme --out "$SK_TMP/alice.p12" \
    --password-file "$SK_TMP/p12pass" --audit-config "$SK_CONF"
serial=$(sed -nE 's/^issued serial ([0-9A-F]+) .*/\1/p' "$SK_TMP/out")
[[ -n $serial ]] || sk_fail "issue printed no serial: $(cat "$SK_TMP/out")"
traced ca_revoke 0 "$SK_BIN/sekisho-ca" revoke --dir "$ca" --serial "$serial" --reason keyCompromise \
    --audit-config "$SK_CONF"
for t in ca_init ca_issue ca_revoke; do
    sk_assert_eq "$(opened_key $t)" "" "sekisho-ca ($t) opened the audit key while auditd ran"
done

# Another uid that reaches the socket is refused by auditd (SO_PEERCRED), and the
# tool neither writes itself nor acts.
if [[ $(id -u) == 0 ]] && command -v setpriv >/dev/null; then
    chmod 755 "$SK_TMP" "$SK_TMP/state"
    chmod 644 "$SK_CONF"
    chmod 666 "$SOCK"
    mkdir -m 777 "$SK_TMP/nobody"
    rc=0
    setpriv --reuid=65534 --regid=65534 --clear-groups "$SK_BIN/sekisho-ca" init --dir "$SK_TMP/nobody/ca" \
        --name "Nobody CA" --audit-config "$SK_CONF" >"$SK_TMP/out" 2>"$SK_TMP/err" </dev/null || rc=$?
    sk_assert_eq "$rc" 1 "sekisho-ca as uid 65534: exit status"
    sk_assert_contains "$(cat "$SK_TMP/err")" "did not accept the connection" "sekisho-ca as uid 65534: reason"
    sk_assert_contains "$(cat "$SK_TMP/err")" "nothing was changed" "sekisho-ca as uid 65534: audit before act"
    [[ ! -e $SK_TMP/nobody/ca ]] || sk_fail "a tool refused by auditd created its CA anyway"
    sk_assert_file_contains "$SK_TMP/srv.log" "ctl connection from uid 65534" "auditd logged the refusal"
    chmod 700 "$SK_TMP/state"
    chmod 600 "$SOCK" "$SK_CONF"
else
    sk_log "skipped the other-uid check (needs root and setpriv)"
fi

# The entries are in the log, written by auditd (which alone had the key open).
X=$SK_TMP/export.jsonl
aa_export "$X"
sk_assert_eq "$(aa_admin "$X" user.add | wc -l)" 1 "user.add entries"
sk_assert_eq "$(aa_admin "$X" user.lock | wc -l)" 1 "user.lock entries"
rev=$(aa_admin "$X" ca.revoke)
[[ -n $rev ]] || sk_fail "no ca.revoke entry: $(cat "$X")"
sk_assert_eq "$(aa_field "$rev" .details.tool)" sekisho-ca "ca.revoke tool"
sk_assert_eq "$(aa_field "$rev" .details.reason)" keyCompromise "ca.revoke reason"
sk_assert_eq "$(aa_field "$(aa_admin "$X" user.add)" .tenant)" acme "user.add tenant"
sk_assert_eq "$(aa_field "$(aa_admin "$X" user.add)" .actor)" "$(id -un)" "user.add actor"
# No tool wrote a closing checkpoint of its own: auditd was the only writer.
sk_assert_eq "$(aa_count "$X" '.ev == "audit.checkpoint" and .details.reason == "close"')" 0 \
    "closing checkpoints while auditd ran"
stop_auditd
aa_verify

# ---- control: nothing listens -> the tool writes itself (and opens the key) -----
[[ ! -e $SOCK ]] || sk_fail "auditd_testsrv left its socket behind"
traced add_bob 0 "$SK_BIN/sekishoctl" -c "$SK_CONF" user add bob --password-file "$pwb"
[[ -n $(opened_key add_bob) ]] || sk_fail "the strace check does not see the key being opened (local write)"
# A stale socket file (auditd killed): still local.
python3 -c "import socket,sys; s=socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); s.bind(sys.argv[1])" "$SOCK"
[[ -S $SOCK ]] || sk_fail "could not make a stale socket"
traced lock_bob 0 "$SK_BIN/sekishoctl" -c "$SK_CONF" user lock bob
[[ -n $(opened_key lock_bob) ]] || sk_fail "stale socket: the tool did not write itself"
rm -f "$SOCK"

# ---- auditd again: a restarted auditd takes over --------------------------------
start_auditd
traced unlock_bob 0 "$SK_BIN/sekishoctl" -c "$SK_CONF" user unlock bob
sk_assert_eq "$(opened_key unlock_bob)" "" "sekishoctl (unlock) opened the audit key while auditd ran"
stop_auditd
aa_export "$X"
sk_assert_eq "$(aa_admin "$X" user.add | wc -l)" 2 "user.add entries at the end"
sk_assert_eq "$(aa_admin "$X" user.lock | wc -l)" 2 "user.lock entries at the end"
sk_assert_eq "$(aa_admin "$X" user.unlock | wc -l)" 2 "user.unlock entries at the end"
aa_verify
grep -E 'ctl connection from uid [0-9]+ .*refused' "$SK_TMP/srv.log" | grep -qv 'uid 65534 ' &&
    sk_fail "auditd refused one of our connections: $(cat "$SK_TMP/srv.log")"
sk_pass
