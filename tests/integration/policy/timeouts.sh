#!/usr/bin/env bash
# Idle logoff and absolute session lifetime with the default limits (idle_timeout 60 min,
# absolute_timeout 12 h), the gateway's wall clock moved with libfaketime (no waiting):
#  - 59 min without a request is fine, 60 min ends the session;
#  - a session used every 55 min still ends 12 h after the login;
#  - a browser is sent to the login page with msg=idle / msg=expired and the page says
#    why (English and Japanese); an API client gets 401; the ended session stays ended.
# Real time passing between the steps (a few seconds) only adds to the offsets, and
# every "still valid" step keeps more than 50 s of margin.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# shellcheck source=../lifecycle/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lifecycle/common.sh"
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
sk_setup

sk_make_ca alice:acme bob:acme carol:acme
sk_start_upstream
sk_write_config </dev/null
for u in alice bob carol; do sk_add_user "$u" acme "$(sk_password)" general; done
lc_start_gateway_ft +0

clock=0 # minutes on the gateway's clock
at() { clock=$1; lc_set_clock "+$((clock * 60))s"; }
api() { sk_curl -u "$1" -C "$2" /echo; }
browser() { sk_curl -u "$1" -C "$2" "$3" -H 'Accept: text/html' "${@:4}"; }

# The gateway's first housekeeping sweep runs once its wall clock is a minute past the
# start, then daily; it also deletes expired sessions, after which a request can no
# longer tell why its session ended. Let it run now, so that it cannot race with the
# steps below (they span less than a day of gateway time).
at 2
lc_wait_for 10 grep -qF 'sweep:' "$SK_GW_LOG" || sk_fail "the first sweep did not run within 10 s"

# ---- idle: alice ---------------------------------------------------------------
acookie=$(sk_login alice)
start=$clock
at $((start + 59))
sk_assert_eq "$(api alice "$acookie")" 200 "alice after 59 min without a request"
at $((start + 59 + 59))
sk_assert_eq "$(api alice "$acookie")" 200 "alice 59 min after her previous request"
at $((start + 59 + 59 + 60))
code=$(browser alice "$acookie" "/echo?x=1")
sk_assert_eq "$code" 303 "browser request of alice after 60 min without a request"
loc=$(sk_last_header location)
sk_assert_match "$loc" '^/\.sekisho/login\?' "redirect after idle logoff"
sk_assert_contains "$loc" "msg=idle" "reason in the redirect after idle logoff"
sk_assert_not_contains "$loc" "msg=expired" "reason in the redirect after idle logoff"
sk_assert_eq "$(sk_curl -u alice "$loc" -H 'Accept: text/html')" 200 "login page after idle logoff"
sk_assert_contains "$(sk_last_body)" "You were signed out after a period of inactivity." \
    "login page text after idle logoff"
sk_assert_contains "$(sk_last_body)" 'name="password"' "the login page is a login form"
sk_assert_eq "$(sk_curl -u alice "$loc" -H 'Accept: text/html' -H 'Accept-Language: ja')" 200 \
    "Japanese login page after idle logoff"
sk_assert_contains "$(sk_last_body)" "一定時間操作がなかったため、サインアウトしました。" \
    "Japanese login page text after idle logoff"
# The session is gone: no second chance, the cookie now means nothing.
sk_assert_eq "$(api alice "$acookie")" 401 "alice's cookie after the idle logoff"
sk_assert_eq "$(browser alice "$acookie" /)" 303 "alice's cookie after the idle logoff (browser)"
sk_assert_not_contains "$(sk_last_header location)" "msg=" "second redirect after the idle logoff"
# A plain login page has no reason text.
sk_assert_eq "$(sk_curl -u alice /.sekisho/login -H 'Accept: text/html')" 200 "plain login page"
sk_assert_not_contains "$(sk_last_body)" "inactivity" "plain login page"

# ---- idle: an API client gets 401 ------------------------------------------------
ccookie=$(sk_login carol)
start=$clock
at $((start + 60))
sk_assert_eq "$(api carol "$ccookie")" 401 "API request of carol after 60 min without a request"
sk_assert_eq "$(pc_log_count 'idle logoff acme/carol')" 1 "idle logoff of carol in the gateway log"

# ---- absolute: bob, active every 55 min --------------------------------------------
bcookie=$(sk_login bob)
start=$clock
for ((m = 55; m < 12 * 60; m += 55)); do
    at $((start + m))
    sk_assert_eq "$(api bob "$bcookie")" 200 "bob $m min after login (last request 55 min ago)"
done
at $((start + 12 * 60 - 1))
sk_assert_eq "$(api bob "$bcookie")" 200 "bob 11 h 59 min after login"
at $((start + 12 * 60))
code=$(browser bob "$bcookie" /)
sk_assert_eq "$code" 303 "bob 12 h after login"
loc=$(sk_last_header location)
sk_assert_contains "$loc" "msg=expired" "reason in the redirect at the absolute lifetime"
sk_assert_not_contains "$loc" "msg=idle" "reason in the redirect at the absolute lifetime"
sk_assert_eq "$(sk_curl -u bob "$loc" -H 'Accept: text/html')" 200 "login page after the absolute lifetime"
sk_assert_contains "$(sk_last_body)" "Your session reached its maximum lifetime." \
    "login page text after the absolute lifetime"
sk_assert_eq "$(sk_curl -u bob "$loc" -H 'Accept: text/html' -H 'Accept-Language: ja')" 200 \
    "Japanese login page after the absolute lifetime"
sk_assert_contains "$(sk_last_body)" "セッションの有効期間が終了しました。" \
    "Japanese login page text after the absolute lifetime"
sk_assert_eq "$(api bob "$bcookie")" 401 "bob's cookie after the absolute lifetime"

# A new login works at once (the clock is 12+ h ahead now).
bcookie=$(sk_login bob)
sk_assert_eq "$(api bob "$bcookie")" 200 "bob after logging in again"
sk_stop_gateway
sk_pass
