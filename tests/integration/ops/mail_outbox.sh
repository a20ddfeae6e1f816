#!/usr/bin/env bash
# Mail from a sandboxed gateway (issue 9, item 4). Under NoNewPrivileges=yes a
# setgid/setuid sendmail cannot queue mail, so with [notify] outbox the gateway
# (run here under `setpriv --no-new-privs`, as the unit runs it) writes each mail
# into OUTBOX/new and never runs [notify] command. The helper sekisho-mail.service
# runs (dist/sekisho-mail-drain) pipes each file to a sendmail, here a fake one
# that records its standard input: delivered mail is removed; when the sendmail
# fails the mail is kept in OUTBOX/hold, intact, and sent by the next run.
source "$(dirname "$0")/../lib.sh"
sk_setup
command -v setpriv >/dev/null || sk_fail "setpriv not installed (util-linux)"
drain=$SK_SRC/dist/sekisho-mail-drain
box=$SK_TMP/outbox
got=$SK_TMP/delivered
mkdir -p "$got"
# Must never run while the outbox is set.
printf '#!/bin/sh\ntouch "%s/command-ran"\ncat >/dev/null\n' "$SK_TMP" >"$SK_TMP/must-not-run"
# The fake sendmail: -oi -t as the unit passes, stdin recorded; SENDMAIL_FAIL=75
# makes it refuse like an MTA whose queue is unavailable.
cat >"$SK_TMP/sendmail" <<SH
#!/bin/sh
[ "\$1 \$2" = "-oi -t" ] || exit 64
[ -n "\${SENDMAIL_FAIL:-}" ] && { cat >/dev/null; exit "\$SENDMAIL_FAIL"; }
n=\$(ls "$got" | wc -l)
cat >"$got/msg.\$n"
SH
chmod 0755 "$SK_TMP/must-not-run" "$SK_TMP/sendmail"
export SEKISHO_MAIL_COMMAND="$SK_TMP/sendmail -oi -t"

sk_make_ca alice:acme
sk_start_upstream
# A CRL valid 7 days is within a 30-day warning window: one warning mail at start,
# and one more each time a fresh CRL is installed (sent from the CRL watcher thread).
sk_write_config <<EOF2
[tls]
crl_warn_before = 30d
crl_check_interval = 1s

[notify]
command = $SK_TMP/must-not-run
outbox = outbox
operators = ops@example.com
from = sekisho@example.com
EOF2

# sekisho -t checks the outbox like the state directory.
mv "$SK_CONF" "$SK_TMP/good.conf"
sed "s|^outbox = outbox|outbox = $SK_TMP/good.conf/x|" "$SK_TMP/good.conf" >"$SK_CONF"
rc=0; "$SK_BIN/sekisho" -c "$SK_CONF" -t >"$SK_TMP/t.out" 2>&1 || rc=$?
sk_assert_eq "$rc" 1 "sekisho -t with an outbox under a file"
sk_assert_contains "$(cat "$SK_TMP/t.out")" "[notify] outbox" "the error names the key"
mv "$SK_TMP/good.conf" "$SK_CONF"
"$SK_BIN/sekisho" -c "$SK_CONF" -t >"$SK_TMP/t.out" 2>&1 || sk_fail "sekisho -t: $(cat "$SK_TMP/t.out")"

SK_GW_LOG=$SK_TMP/gateway.log
setpriv --no-new-privs "$SK_BIN/sekisho" -c "$SK_CONF" >>"$SK_GW_LOG" 2>&1 </dev/null &
SK_GW_PID=$!
sk_track "$SK_GW_PID"
sk_wait_port "$SK_GW_PORT" "$SK_GW_PID" 20 || sk_fail "gateway did not start under no_new_privs"
sk_assert_eq "$(awk '/^NoNewPrivs:/ { print $2 }' "/proc/$SK_GW_PID/status")" 1 "gateway runs with no_new_privs"

# Other mail may come too (an unsynchronised clock raises an alarm on some hosts):
# the CRL warning is picked by its subject.
subj='Subject: Sekisho warning: CRL expires soon [minor]'
# crl_mail DIR: the CRL warning mail in DIR, waiting up to 10 s for it.
crl_mail() {
    local i f
    for ((i = 0; i < 100; i++)); do
        f=$(grep -lxF "$subj" "$1"/*.eml 2>/dev/null | head -1 || true)
        [[ -n $f ]] && { printf '%s\n' "$f"; return 0; }
        sleep 0.1
    done
    sk_fail "no CRL warning mail in $1 within 10 s, found: $(ls -A "$1" 2>&1)"
}
m=$(crl_mail "$box/new")
sk_assert_eq "$(ls -A "$box/tmp")" "" "nothing half-written left in outbox/tmp"
sk_assert_eq "$(stat -c %a "$m")" 600 "mail file mode"
sk_assert_match "$(basename "$m")" '^[0-9]{10}\.[0-9]{6}\.[0-9]+\.[0-9a-f]{16}\.eml$' "mail file name"
sk_assert_file_contains "$m" "From: sekisho@example.com" "From"
sk_assert_file_contains "$m" "To: ops@example.com" "To"
sk_assert_file_contains "$m" "X-Sekisho-Alert-Level: minor" "level header"
sk_assert_file_contains "$m" "$SK_CA_DIR/crl.pem reaches its nextUpdate" "body names the CRL"
[[ -e $SK_TMP/command-ran ]] && sk_fail "[notify] command ran although the outbox is set"
cp "$m" "$SK_TMP/first.eml"

# delivered FILE: 0 if the fake sendmail received exactly FILE's content.
delivered() {
    local d
    for d in "$got"/msg.*; do cmp -s "$d" "$1" && return 0; done
    return 1
}

# The helper delivers it through sendmail and removes it.
queued=$(find "$box/new" -name '*.eml' | wc -l)
"$drain" "$box" 2>"$SK_TMP/drain1.log" || sk_fail "drain failed: $(cat "$SK_TMP/drain1.log")"
[[ -e $m ]] && sk_fail "delivered mail still in the outbox"
delivered "$SK_TMP/first.eml" || sk_fail "sendmail did not receive the mail as queued"
sk_assert_file_contains "$SK_TMP/drain1.log" "$queued sent, 0 kept" "drain summary"
sk_assert_eq "$(find "$box/hold" -name '*.eml' | wc -l)" 0 "nothing held"

# A fresh CRL: a second warning mail. The MTA refuses: the mail is kept in hold.
sleep 1 # a different nextUpdate second
"$SK_BIN/sekisho-ca" crl --dir "$SK_CA_DIR" >"$SK_TMP/crl.log" 2>&1 || sk_fail "sekisho-ca crl: $(cat "$SK_TMP/crl.log")"
m=$(crl_mail "$box/new")
cp "$m" "$SK_TMP/second.eml"
n_before=$(ls "$got" | wc -l)
rc=0; SENDMAIL_FAIL=75 "$drain" "$box" 2>"$SK_TMP/drain2.log" || rc=$?
sk_assert_eq "$rc" 1 "drain exit status when sendmail fails"
sk_assert_file_contains "$SK_TMP/drain2.log" "failed (exit 75)" "the failure is logged"
sk_assert_eq "$(find "$box/new" -name '*.eml' | wc -l)" 0 "failed mail moved out of new/ (no retrigger loop)"
h=$box/hold/$(basename "$m")
[[ -f $h ]] || sk_fail "failed mail not kept in hold/: $(ls -A "$box/hold")"
cmp -s "$h" "$SK_TMP/second.eml" || sk_fail "the kept mail changed"
sk_assert_eq "$(ls "$got" | wc -l)" "$n_before" "nothing delivered by the failing sendmail"

# The next run (timer or a new mail) sends it.
"$drain" "$box" 2>"$SK_TMP/drain3.log" || sk_fail "drain retry failed: $(cat "$SK_TMP/drain3.log")"
[[ -e $h ]] && sk_fail "retried mail still in hold/"
delivered "$SK_TMP/second.eml" || sk_fail "retried mail not delivered as queued"

# Bad use of the helper: a clear one-line error, nothing touched.
rc=0; "$drain" "$SK_TMP/nonexistent" 2>"$SK_TMP/drain4.log" || rc=$?
sk_assert_eq "$rc" 2 "drain without an outbox"
sk_assert_file_contains "$SK_TMP/drain4.log" "usage: sekisho-mail-drain OUTBOX" "usage line"

sk_stop_gateway
[[ -e $SK_TMP/command-ran ]] && sk_fail "[notify] command ran although the outbox is set"
sk_pass
