#!/usr/bin/env bash
# The daily sweep with two nodes on one PostgreSQL (issue 10): both gateways' clocks
# are moved (libfaketime) past the dormancy reminder age of three accounts, and past
# the first sweep of each. Exactly one node sweeps (its claim is a row in the
# shared store), the other finds it done; every reminder is mailed exactly once,
# and each account records the reminder once.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# shellcheck source=../lifecycle/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lifecycle/common.sh"
# shellcheck source=../policy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../policy/common.sh"
# shellcheck source=../pg.sh
source "$(dirname "${BASH_SOURCE[0]}")/../pg.sh"
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
sk_setup

cl_setup alice:acme bob:acme carol:acme </dev/null
for u in alice bob carol; do
    "$SK_BIN/sekishoctl" -c "$SK_TMP/a.conf" user modify "$u" --email "$u@example.test" >"$SK_TMP/mod.log" 2>&1 ||
        sk_fail "user modify $u: $(cat "$SK_TMP/mod.log")"
done
# Both nodes on one moved clock: 181 days on (reminders are due after 180), and
# more than a minute after their start, when each asks for its first sweep.
mkdir -p "$SK_TMP/clock.d"
printf '+181d\n' >"$SK_TMP/clock.d/clock"
cl_start A faketime
cl_start B faketime
# The port accepts once the monitor bound it; authd schedules its first sweep a
# minute after it starts: both must be running before the clock moves past it.
lc_wait_for 60 grep -qF 'authd ready' "$CL_LOG_A" || sk_fail "node A's authd did not start"
lc_wait_for 60 grep -qF 'authd ready' "$CL_LOG_B" || sk_fail "node B's authd did not start"
lc_set_clock "+$((181 * 86400 + 180))s"
lc_wait_for 30 grep -qE 'sweep: [0-9]+ users' "$CL_LOG_A" "$CL_LOG_B" 2>/dev/null ||
    sk_fail "neither node swept within 30 s"
lc_wait_for 30 grep -qF 'sweep: not due here' "$CL_LOG_A" "$CL_LOG_B" ||
    sk_fail "the other node did not find the sweep done within 30 s"
swept=$(grep -lE 'sweep: [0-9]+ users' "$CL_LOG_A" "$CL_LOG_B" | wc -l)
sk_assert_eq "$swept" 1 "nodes that swept"
subject="Sekisho: account [a-z]+ will be locked for inactivity"
lc_wait_for 20 pc__mail_ge "$subject" 3 || sk_fail "fewer than 3 reminders mailed: $(lc_mail_count "$subject")"
sleep 1 # a second mail of the same step would come right behind the first
sk_assert_eq "$(lc_mail_count "$subject")" 3 "reminders mailed (one per account)"
for u in alice bob carol; do
    n=$(grep -l "^To: $u@example.test" "$SK_TMP"/mail/msg.* 2>/dev/null | wc -l)
    sk_assert_eq "$n" 1 "reminders to $u"
done
# Two more days on both clocks: the next daily sweep runs once more (on either
# node), and mails nothing new (the reminders are recorded).
lc_set_clock "+$((183 * 86400 + 300))s"
sweeps() { cat "$CL_LOG_A" "$CL_LOG_B" | grep -cE 'sweep: [0-9]+ users' || true; }
two_sweeps() { (($(sweeps) >= 2)); }
lc_wait_for 30 two_sweeps ||
    sk_fail "no second daily sweep after two more days"
sk_assert_eq "$(lc_mail_count "$subject")" 3 "reminders after the second sweep"
cl_stop_both
sk_pass
