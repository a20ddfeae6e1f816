#!/usr/bin/env bash
# Lockout through the real gateway (issue 4), lockout_threshold 3, burst_threshold 4:
#  - without a client certificate nothing reaches the form, so nothing can count;
#  - the 2nd consecutive failure does not lock, the 3rd does; a success in between
#    resets the count;
#  - while locked the right password gets the same 401 page as a wrong one, no cookie;
#  - `sekishoctl user unlock` ends a lock, `user lock` sets one; a timed lock ends
#    after lockout_duration (gateway clock moved with libfaketime);
#  - wrong TOTP codes count like wrong passwords;
#  - a lock notice goes to the operators and to the user's --email; 4 failures across
#    accounts within burst_window raise one burst alarm mail.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# shellcheck source=../lifecycle/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lifecycle/common.sh"
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
sk_setup
command -v oathtool >/dev/null || sk_fail "oathtool not installed"

sk_make_ca alice:acme bob:acme carol:acme
sk_start_upstream
notify=$(lc_fake_sendmail)
sk_write_config <<EOF
$notify
[policy]
lockout_threshold = 3
lockout_duration = 30m
burst_threshold = 4
burst_window = 1h
EOF
pa=$(sk_password) pb=$(sk_password) pc=$(sk_password)
pc_add_user alice acme admin "$pa" --email alice@example.test
pc_add_user bob acme general "$pb"
pc_add_user carol acme general "$pc"
lc_start_gateway_ft +0

ALARM="Sekisho ALARM: burst of failed logins"
LOCKED_OPS="Sekisho: account locked"
LOCKED_USER="Sekisho: your account was locked"
# The gateway logs every failed login synchronously, before it answers:
# "login failed: acme/alice from 127.0.0.1 (bad_password, failures 2, now locked)".
last_fail() { grep -E "login (failed|refused): acme/$1 " "$SK_GW_LOG" | tail -n 1; }
wrong() { # USER: one wrong-password attempt, must be 401 without a cookie
    local code
    code=$(pc_login_attempt "$1" "$1" "Wrong-Pass9-$RANDOM")
    sk_assert_eq "$code" 401 "wrong password for $1"
    sk_assert_eq "$(sk_session_cookie_from_last)" "" "cookie after a wrong password for $1"
}

# ---- 0. No certificate, no counting -------------------------------------------
for i in 1 2 3 4; do
    code=$(pc_curl /.sekisho/login -H 'Accept: text/html' --data-urlencode id=alice \
        --data-urlencode password=Wrong-Pass9)
    sk_assert_eq "$code" 000 "login POST without a client certificate (attempt $i)"
    code=$(pc_curl /.sekisho/login -H 'Accept: text/html')
    sk_assert_eq "$code" 000 "login form without a client certificate (attempt $i)"
done
sk_assert_eq "$(pc_log_count 'login failed:')" 0 "failed logins counted without a certificate"

# ---- 1. 2nd failure does not lock, success resets, burst across accounts ------
wrong alice
wrongpage=$(pc_page_norm)
sk_assert_contains "$wrongpage" "The ID or password is incorrect." "wrong-password page text"
sk_assert_contains "$(last_fail alice)" "(bad_password, failures 1)" "alice's first failure"
wrong bob
wrong alice
sk_assert_contains "$(last_fail alice)" "(bad_password, failures 2)" "alice's second failure"
sk_assert_eq "$(pc_log_count 'ALARM:')" 0 "burst alarm after 3 failures (threshold 4)"
pc_login alice "$pa" >/dev/null   # 2 failures: not locked
# 4th failure within the window, 2 accounts, neither locked: the burst alarm.
wrong bob
sk_assert_contains "$(last_fail bob)" "(bad_password, failures 2)" "bob's second failure"
sk_assert_eq "$(pc_log_count 'ALARM:')" 1 "burst alarm log lines after 4 failures across 2 accounts"
pc_wait_mail "$ALARM" 1
sk_assert_eq "$(pc_mail_to "$ALARM")" "ops@example.test" "recipient of the burst alarm"
sk_assert_file_contains "$(lc_mail_file "$ALARM")" "failed logins within 3600 seconds" "burst alarm body"
sk_assert_file_contains "$(lc_mail_file "$ALARM")" "X-Sekisho-Alert-Level: major" "burst alarm alert level"
pc_login bob "$pb" >/dev/null     # bob: 2 failures, not locked either

# The success reset alice's count: two more failures are 1 and 2, not 3 and 4.
wrong alice
sk_assert_contains "$(last_fail alice)" "(bad_password, failures 1)" "alice's count after a success"
wrong alice
sk_assert_contains "$(last_fail alice)" "(bad_password, failures 2)" "alice's count after a success (2)"
pc_login alice "$pa" >/dev/null

# ---- 2. The 3rd consecutive failure locks ----------------------------------------
wrong alice
wrong alice
sk_assert_eq "$(pc_log_count 'now locked')" 0 "lock after 2 consecutive failures"
wrong alice
sk_assert_contains "$(last_fail alice)" "(bad_password, failures 3, now locked)" "3rd failure locks"
sk_assert_eq "$(pc_page_norm)" "$wrongpage" "page of the locking attempt"

# Locked: the right password gets the very same answer.
code=$(pc_login_attempt alice alice "$pa")
sk_assert_eq "$code" 401 "right password while locked"
sk_assert_eq "$(pc_page_norm)" "$wrongpage" "page for the right password while locked"
sk_assert_eq "$(sk_session_cookie_from_last)" "" "cookie for the right password while locked"
sk_assert_eq "$(grep -ci '^set-cookie' "$SK_TMP/last.headers" || true)" 0 "Set-Cookie while locked"
sk_assert_contains "$(last_fail alice)" "(account locked)" "reason logged for the locked attempt"

# Lock notices: one to the operators, one to alice's address.
pc_wait_mail "$LOCKED_OPS" 1
pc_wait_mail "$LOCKED_USER" 1
sk_assert_eq "$(pc_mail_to "$LOCKED_OPS")" "ops@example.test" "recipient of the operators' lock notice"
sk_assert_eq "$(pc_mail_to "$LOCKED_USER")" "alice@example.test" "recipient of the user's lock notice"
sk_assert_file_contains "$(lc_mail_file "$LOCKED_USER")" "The Sekisho account alice (tenant acme) was locked" \
    "lock notice body"

# The operator ends the lock.
pc_ctl user unlock alice --tenant acme
pc_login alice "$pa" >/dev/null
# ... and can set one: an operator lock answers like a wrong password too.
pc_ctl user lock alice --tenant acme
code=$(pc_login_attempt alice alice "$pa")
sk_assert_eq "$code" 401 "right password under an operator lock"
sk_assert_eq "$(pc_page_norm)" "$wrongpage" "page under an operator lock"
pc_ctl user unlock alice --tenant acme
pc_login alice "$pa" >/dev/null

# ---- 3. Wrong TOTP codes count ---------------------------------------------------
pc_ctl user totp enable carol --tenant acme
secret=$(grep -m1 -o 'secret=[A-Z2-7]*' "$SK_TMP/ctl.out" | cut -d= -f2)
[[ -n $secret ]] || sk_fail "no secret in the otpauth URI: $(head -c 300 "$SK_TMP/ctl.out")"
bad=$(pc_wrong_totp "$secret")
for n in 1 2 3; do
    code=$(pc_login_attempt carol carol "$pc" --data-urlencode "totp=$bad")
    sk_assert_eq "$code" 401 "right password, wrong TOTP code (attempt $n)"
done
sk_assert_contains "$(last_fail carol)" "(bad_totp, failures 3, now locked)" "3 wrong codes lock"
code=$(pc_login_attempt carol carol "$pc" --data-urlencode "totp=$(pc_totp "$secret")")
sk_assert_eq "$code" 401 "right password and right code while locked"
sk_assert_eq "$(sk_session_cookie_from_last)" "" "cookie while locked (TOTP)"
pc_ctl user unlock carol --tenant acme
# The next step's code (within +-1 step): valid even if the refused attempt above had
# consumed the current one.
pc_login carol "$pc" --data-urlencode "totp=$(pc_totp "$secret" 30)" >/dev/null

# ---- 4. A timed lock ends after lockout_duration (30 min) -----------------------
wrong bob
wrong bob
wrong bob
sk_assert_contains "$(last_fail bob)" "failures 3, now locked" "bob locked"
lc_set_clock "+29m"
code=$(pc_login_attempt bob bob "$pb")
sk_assert_eq "$code" 401 "bob 29 min after the lock"
lc_set_clock "+30m"
pc_login bob "$pb" >/dev/null

# ---- 5. Mail totals: one alarm per window, one lock notice per lock ---------------
pc_wait_mail "$LOCKED_OPS" 3
sleep 1 # a stray extra message would have been queued before the answers above
sk_assert_eq "$(lc_mail_count "$LOCKED_OPS")" 3 "operators' lock notices (alice, carol, bob)"
sk_assert_eq "$(lc_mail_count "$LOCKED_USER")" 1 "user lock notices (only alice has an address)"
sk_assert_eq "$(lc_mail_count "$ALARM")" 1 "burst alarms within one window"
sk_stop_gateway

# ---- 6. The locks in the audit log: one entry each, written by authd -------------
X=$SK_TMP/export.jsonl
lc_audit_export "$X"
sk_assert_eq "$(lc_jq_count "$X" '.ev == "account.locked"')" 3 "account.locked entries (alice, carol, bob)"
sk_assert_eq "$(lc_jq_count "$X" '.ev == "account.locked" and .actor == "alice" and .tenant == "acme" and
    .details.failures == "3" and (.details.locked_until | tonumber) > 0')" 1 "alice's lock entry with its details"
sk_pass
