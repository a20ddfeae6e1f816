#!/bin/bash
# sekishoctl sweep --now: dormancy at days 179/180/209/210/299/300 with a fake
# sendmail that records every message; each step and each mail exactly once
# however often the sweep runs; admin accounts are never deleted.
source "$SK_SRC/tests/integration/lib.sh"
source "$SK_SRC/tests/integration/ctl/ctl_lib.sh"
sk_setup
sk_need_bin sekishoctl
command -v jq >/dev/null || sk_fail "jq not installed"
ctl_config
mail=$SK_TMP/mail
mkdir -p "$mail"
cat >"$SK_TMP/sendmail" <<SH
#!/bin/sh
[ "\$1" = -t ] || exit 3
n=\$(ls "$mail" | wc -l)
cat >"$mail/msg.\$n"
SH
chmod 700 "$SK_TMP/sendmail"
cat >>"$SK_CONF" <<CONF

[notify]
command = $SK_TMP/sendmail -t
operators = ops@example.com
from = sekisho@example.com
CONF

pw=$(ctl_pwfile pw Cedar-Field-58)
T0=$(date +%s)
ctl 0 user add gen --email gen@example.com --password-file "$pw"
ctl 0 user add adm --role admin --email adm@example.com --password-file "$pw"
ctl 0 user add noemail --password-file "$pw"
day() { echo $((T0 + $1 * 86400 + ${2:-60})); }   # day N, 60 s after the users were made
nmail() { find "$mail" -type f | wc -l; }
to() { grep -lx "To: $1" "$mail"/* 2>/dev/null | wc -l; }

ctl 0 sweep --now "$(day 180 -60)"     # day 179: still 60 s before day 180
sk_assert_contains "$(ctl_out)" "0 notified, 0 locked, 0 deleted" "day 179"
sk_assert_eq "$(nmail)" 0 "no mail on day 179"

ctl 0 sweep --now "$(day 180)"
sk_assert_contains "$(ctl_out)" "3 notified, 0 locked, 0 deleted, 3 mail(s) sent" "day 180 summary"
sk_assert_contains "$(ctl_out)" "notified default/gen (general)" "day 180 line"
sk_assert_eq "$(to gen@example.com)" 1 "reminder to gen"
sk_assert_eq "$(to adm@example.com)" 1 "reminder to adm"
sk_assert_eq "$(to ops@example.com)" 1 "noemail reminder goes to the operators"
grep -q "^From: sekisho@example.com$" "$mail/msg.0" || sk_fail "From header missing"
ctl 0 user show gen --json
[[ $(ctl_json .dormant_notified) != null ]] || sk_fail "notice not recorded"

# repeated sweeps do nothing more
for d in 180 190 200; do
    ctl 0 sweep --now "$(day $d)"
    sk_assert_contains "$(ctl_out)" "0 notified, 0 locked, 0 deleted, 0 mail(s) sent" "repeat day $d"
done
ctl 0 sweep --now "$(day 210 -60)"     # day 209
sk_assert_contains "$(ctl_out)" "0 locked" "day 209"
sk_assert_eq "$(nmail)" 3 "still 3 mails"

ctl 0 sweep --now "$(day 210)"
sk_assert_contains "$(ctl_out)" "0 notified, 3 locked, 0 deleted, 5 mail(s) sent" "day 210 summary"
sk_assert_eq "$(nmail)" 8 "lock notices"
sk_assert_eq "$(to ops@example.com)" 4 "operators get every lock notice"
ctl 0 user show adm --json
sk_assert_eq "$(ctl_json .status)" dormant-locked "adm locked"
ctl 0 sweep --now "$(day 210)"
sk_assert_contains "$(ctl_out)" "0 locked" "lock once"

ctl 0 sweep --now "$(day 300 -60)"     # day 299
sk_assert_contains "$(ctl_out)" "0 deleted" "day 299"
ctl 0 sweep --now "$(day 300)"
sk_assert_contains "$(ctl_out)" "0 locked, 2 deleted, 2 mail(s) sent" "day 300 summary"
sk_assert_contains "$(ctl_out)" "deleted default/gen (general)" "gen deleted"
sk_assert_contains "$(ctl_out)" "deleted default/noemail (general)" "noemail deleted"
ctl 1 user show gen
ctl 0 user show adm --json
sk_assert_eq "$(ctl_json .status)" dormant-locked "admin never deleted"
for d in 300 400 1000 5000; do
    ctl 0 sweep --now "$(day $d)"
    sk_assert_contains "$(ctl_out)" "0 notified, 0 locked, 0 deleted, 0 mail(s) sent" "repeat day $d"
done
sk_assert_eq "$(nmail)" 10 "every mail exactly once"

# only an operator unlocks; the dormancy clock restarts at the unlock
ctl 0 user unlock adm
ctl 0 user show adm --json
sk_assert_eq "$(ctl_json .status)" active "unlocked"
ctl 0 sweep --now "$(day 100)"
sk_assert_contains "$(ctl_out)" "0 notified" "fresh after unlock"

# a failing mail command: the step is recorded, the failure reported, exit 1
ctl 0 user add late --email late@example.com --password-file "$pw"
sed -i "s|^command = .*|command = exit 1|" "$SK_CONF"
ctl 1 sweep --now "$(day 180 600)"
sk_assert_contains "$(ctl_out)" "mail-failed default/late" "failure line"
sk_assert_contains "$(ctl_err_text)" "could not be sent" "failure reason"
ctl 0 sweep --now "$(day 181)"
sk_assert_contains "$(ctl_out)" "0 notified" "at most once"

sk_pass
