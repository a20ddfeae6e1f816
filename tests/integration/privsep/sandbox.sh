#!/usr/bin/env bash
# Privilege separation (issue 9): the network process runs in its sandbox.
#  - /proc shows it: no_new_privs, a seccomp filter, not dumpable (its memory is
#    not readable by a sibling of the same uid);
#  - (test builds only, SEKISHO_TEST_HOOKS) opening the user database from it is
#    refused by Landlock and it lives on; attempting execve kills it with SIGSYS,
#    the monitor restarts it, the session carries on without a new login, and the
#    restart with its cause is in the audit log, which verifies; a personal mail
#    it posts (to an address of its choosing) is refused by the monitor.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# shellcheck source=../lifecycle/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lifecycle/common.sh"
sk_setup
command -v jq >/dev/null || sk_fail "jq not installed"
# As the package lays it out: certificates apart from the state (the network
# process may read the directories of its certificate, CA and CRL, nothing else).
sk_make_ca alice:acme
sk_start_upstream
notify=$(lc_fake_sendmail)
sk_write_config <<<"$notify"
mkdir -p "$SK_TMP/tls"
mv "$SK_TMP/server.crt" "$SK_TMP/server.key" "$SK_TMP/tls/"
sed -i -e 's|^cert = server.crt|cert = tls/server.crt|' -e 's|^key = server.key|key = tls/server.key|' "$SK_CONF"
sk_add_user alice acme "$(sk_password)"
sk_start_gateway
ca=$(sk_login alice)
net=$(sk_child_pid net) authd=$(sk_child_pid authd)
for p in "$net" "$authd"; do
    st=/proc/$p/status
    sk_assert_eq "$(awk '/^NoNewPrivs:/ { print $2 }' "$st")" 1 "no_new_privs of pid $p"
    sk_assert_eq "$(awk '/^Seccomp:/ { print $2 }' "$st")" 2 "seccomp filter mode of pid $p"
done
sk_assert_eq "$(stat -c %U "/proc/$net/mem")" root "/proc/PID/mem of the (non-dumpable) network process is root's"
sk_assert_eq "$(sk_curl -u alice -C "$ca" /echo)" 200 "a proxied request inside the sandbox"

# auditd's alarm reaches the operators through the monitor (which refuses a user's
# mail from network processes only): a log cut short while the gateway was down
# (its last two lines gone) is noticed at the next start. Last: the log stays cut.
alarm_mail_check() {
    local seg
    seg=$(find "$SK_TMP/state/audit" -name 'audit-*.jsonl' | sort | tail -n 1)
    [[ -n $seg ]] || sk_fail "test setup: no audit segment"
    sed -i '$d' "$seg"
    sed -i '$d' "$seg"
    sk_start_gateway
    for _ in $(seq 100); do
        [[ $(lc_mail_count 'Sekisho audit log ALARM') -gt 0 ]] && break
        sleep 0.1
    done
    sk_assert_eq "$(lc_mail_count 'Sekisho audit log ALARM')" 1 "auditd's alarm mail about the cut log"
    sk_assert_file_contains "$(lc_mail_file 'Sekisho audit log ALARM')" "To: ops@example.test" \
        "auditd's alarm goes to the operators"
    sk_stop_gateway
}

if ! "$SK_BIN/sekisho" -V | grep -q 'TEST BUILD'; then
    sk_log "SKIP the forbidden-syscall half: this build has no test hooks (the ASan build of scripts/test.sh has them)"
    sk_stop_gateway
    alarm_mail_check
    sk_pass
    exit 0
fi
db=$SK_TMP/state/db/data.mdb
# with PostgreSQL (scripts/test.sh's second pass) the store's file is its password file
[[ $(sk_store_backend) == postgresql ]] && db=$SK_TMP/store.pw
[[ -f $db ]] || sk_fail "test setup: no store at $db"
sk_assert_eq "$(sk_curl -u alice -C "$ca" "/.sekisho/test/violate?what=openat-ro:$db")" 400 \
    "opening the user database (or its password file) from the network process is refused"
sk_assert_eq "$(sk_child_pid net)" "$net" "the network process lives on after a refused open"
sk_assert_eq "$(sk_curl -u alice -C "$ca" "/.sekisho/test/violate?what=openat-ro:$SK_TMP/audit.key")" 400 \
    "reading the audit key from the network process is refused"
sk_assert_eq "$(sk_curl -u alice -C "$ca" "/.sekisho/test/violate?what=openat-ro:$SK_TMP/tls/server.crt")" 500 \
    "reading its own certificate is allowed (the hook reports an allowed action as 500)"
# A user's own mail comes from authd only: a network process that names an address
# of its choosing is refused by the monitor, and nothing is sent.
sk_assert_eq "$(sk_curl -u alice -C "$ca" "/.sekisho/test/violate?what=personal-mail:victim@example.test")" 500 \
    "the network process posted a personal mail (the hook answers 500 when posted)"
for _ in $(seq 100); do grep -q 'personal mail from net refused' "$SK_GW_LOG" && break; sleep 0.1; done
sk_assert_contains "$(grep -F 'personal mail from' "$SK_GW_LOG" || true)" "refused (only authd sends a user's mail)" \
    "the monitor refused the network process's personal mail"
sk_assert_eq "$(lc_mail_count 'Sekisho: test hook')" 0 "mail sent to the address the network process chose"
code=$(sk_curl -u alice -C "$ca" "/.sekisho/test/violate?what=execve")
sk_assert_eq "$code" 000 "the connection of the request that made the process die"
n2=$(sk_new_child_pid net "$net")
sk_assert_ne "$n2" "" "a new network process after SIGSYS"
sk_assert_contains "$(grep -F 'monitor: net died' "$SK_GW_LOG")" "signal 31" "the monitor saw SIGSYS"
code=$(sk_curl_until 200 alice "$ca" /echo)
sk_assert_eq "$code" 200 "the session after the restart"
sk_stop_gateway
out=$("$SK_BIN/sekishoctl" -c "$SK_CONF" audit verify 2>&1) || sk_fail "audit verify: $out"
X=$SK_TMP/export.jsonl
lc_audit_export "$X"
sk_assert_eq "$(lc_jq_count "$X" '.ev == "process.restart" and .details.process == "net" and (.details.cause | test("signal 31"))')" 1 \
    "the SIGSYS restart in the audit log"
alarm_mail_check
sk_pass
