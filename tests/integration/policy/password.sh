#!/usr/bin/env bash
# Password change at /.sekisho/password through the real gateway (issue 4):
#  - GET shows a form with a csrf field; a POST with a wrong csrf changes nothing;
#  - a wrong current password is 403 and counts toward the lockout (threshold 3 here);
#  - a blocklisted or too simple new password is 400 with the policy's message (English
#    and Japanese); a confirmation that differs is 400;
#  - success ends the user's other sessions, keeps the current one, and the new password
#    logs in while the old one does not;
#  - after an operator reset (`sekishoctl user passwd`, which forces a change), login
#    leads to /.sekisho/password and proxied requests are sent there until changed.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# shellcheck source=../lifecycle/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lifecycle/common.sh"
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
sk_setup

sk_make_ca alice:acme bob:acme
sk_start_upstream
sk_write_config <<'EOF'
[policy]
lockout_threshold = 3
EOF
pa=$(sk_password) pb=$(sk_password)
pc_add_user alice acme admin "$pa"
pc_add_user bob acme general "$pb"
sk_start_gateway
last_fail() { grep -F "login failed: acme/$1 " "$SK_GW_LOG" | tail -n 1; }

# pwform USER COOKIE [curl args]: GET the change form; its csrf -> PW_CSRF.
PW_CSRF=""
pwform() {
    local code
    code=$(pc_curl -u "$1" -C "$2" /.sekisho/password -H 'Accept: text/html' "${@:3}")
    sk_assert_eq "$code" 200 "GET /.sekisho/password as $1"
    PW_CSRF=$(sk_csrf_from_last)
    sk_assert_ne "$PW_CSRF" "" "csrf field of the password form"
}
# pwchange USER COOKIE CURRENT NEW CONFIRM [curl args]: GET the form, POST it back.
# Prints the status; the page is the last body. The secrets go through files.
pwchange() {
    local u=$1 ck=$2 d=$SK_TMP/pwc
    mkdir -p "$d"
    printf '%s' "$3" >"$d/current"
    printf '%s' "$4" >"$d/new"
    printf '%s' "$5" >"$d/confirm"
    pwform "$u" "$ck" "${@:6}" >/dev/null
    pc_curl -u "$u" -C "$ck" /.sekisho/password -H 'Accept: text/html' "${@:6}" \
        --data-urlencode "csrf=$PW_CSRF" --data-urlencode "current@$d/current" \
        --data-urlencode "new@$d/new" --data-urlencode "confirm@$d/confirm"
}
# refused_new NEW MESSAGE [curl args]: a change to NEW is 400 with MESSAGE.
refused_new() {
    local code
    code=$(pwchange alice "$c1" "$pa" "$1" "$1" "${@:3}")
    sk_assert_eq "$code" 400 "new password '$1'"
    sk_assert_contains "$(sk_last_body)" "$2" "message for new password '$1'"
    sk_assert_contains "$(sk_last_body)" 'name="csrf"' "the form is shown again for '$1'"
}

c1=$(pc_login alice "$pa")
c2=$(pc_login alice "$pa")
bc=$(pc_login bob "$pb")

# ---- the form -----------------------------------------------------------------------
pwform alice "$c1"
for f in current new confirm; do
    sk_assert_contains "$(sk_last_body)" "name=\"$f\"" "field $f of the password form"
done
sk_assert_contains "$(sk_last_body)" "At least 8 and at most" "policy shown on the form"
# Without a session: to the login page, never a form.
sk_assert_eq "$(pc_curl -u alice /.sekisho/password -H 'Accept: text/html')" 303 "password form without a session"
sk_assert_match "$(sk_last_header location)" '^/\.sekisho/login' "redirect of the password form without a session"
# Another session's csrf (bob's) or a made-up one: refused, nothing changes.
pwform bob "$bc"
bcsrf=$PW_CSRF
for bad in "$bcsrf" "x$bcsrf" ""; do
    code=$(pc_curl -u alice -C "$c1" /.sekisho/password -H 'Accept: text/html' --data-urlencode "csrf=$bad" \
        --data-urlencode "current=$pa" --data-urlencode "new=Cedar-Field-58" --data-urlencode "confirm=Cedar-Field-58")
    sk_assert_eq "$code" 403 "password change with csrf '$bad'"
done

# ---- wrong current password: 403, counted toward the lockout -----------------------------
npw=$(sk_password)
for n in 1 2; do
    code=$(pwchange alice "$c1" "Wrong-Current9" "$npw" "$npw")
    sk_assert_eq "$code" 403 "wrong current password ($n)"
    sk_assert_contains "$(sk_last_body)" "The current password is incorrect." "message for a wrong current password"
done
# Two failures on the change page + one at the login = the 3rd consecutive failure.
code=$(pc_login_attempt alice alice "Wrong-Login9")
sk_assert_eq "$code" 401 "wrong login after two wrong current passwords"
sk_assert_contains "$(last_fail alice)" "(bad_password, failures 3, now locked)" \
    "failures counted from the password page"
sk_assert_eq "$(pc_login_attempt alice alice "$pa")" 401 "right password while locked"
pc_ctl user unlock alice --tenant acme

# ---- policy refusals ------------------------------------------------------------------------
refused_new "Password1" "This password is too common."
refused_new "Welcome123" "This password is too common."
refused_new "Short1a" "The password is too short."
refused_new "alllowercase12" "The password must contain an upper-case letter (A-Z)."
refused_new "ALLUPPERCASE12" "The password must contain a lower-case letter (a-z)."
refused_new "NoDigitsInHere" "The password must contain a digit (0-9)."
refused_new "$pa" "The new password must differ from the current one."
refused_new "Password1" "このパスワードはよく使われているため使用できません。" -H 'Accept-Language: ja'
code=$(pwchange alice "$c1" "$pa" "$npw" "${npw}x")
sk_assert_eq "$code" 400 "confirmation differing from the new password"
sk_assert_contains "$(sk_last_body)" "The new password and its confirmation differ." "message for a differing confirmation"
# None of these changed anything: both sessions live, the password is the old one.
sk_assert_eq "$(pc_curl -u alice -C "$c2" /echo)" 200 "second session after refused changes"

# ---- success ----------------------------------------------------------------------------------
code=$(pwchange alice "$c1" "$pa" "$npw" "$npw")
sk_assert_eq "$code" 200 "password change"
sk_assert_contains "$(sk_last_body)" "Your password was changed." "message after the change"
sk_assert_eq "$(pc_curl -u alice -C "$c1" /echo)" 200 "the session that changed the password"
sk_assert_eq "$(pc_curl -u alice -C "$c2" /echo)" 401 "alice's other session after the change"
sk_assert_eq "$(pc_curl -u bob -C "$bc" /echo)" 200 "bob's session after alice's change"
sk_assert_eq "$(pc_login_attempt alice alice "$pa")" 401 "old password after the change"
c3=$(pc_login alice "$npw")
sk_assert_eq "$(sk_last_header location)" / "redirect after a normal login"

# ---- operator reset forces a change -------------------------------------------------------------
rpw=$(sk_password)
pc_ctl user passwd alice --tenant acme --password-file "$(pc_pwfile reset "$rpw")"
sk_assert_eq "$(pc_curl -u alice -C "$c3" /echo)" 401 "session from before the operator reset"
sk_assert_eq "$(pc_login_attempt alice alice "$npw")" 401 "password from before the operator reset"
c4=$(pc_login alice "$rpw")
sk_assert_eq "$(sk_last_header location)" /.sekisho/password "login after an operator reset"
for p in / /echo "/echo?x=1" /admin; do
    code=$(pc_curl -u alice -C "$c4" "$p" -H 'Accept: text/html')
    sk_assert_eq "$code" 303 "GET $p before the forced change"
    sk_assert_eq "$(sk_last_header location)" /.sekisho/password "redirect of $p before the forced change"
done
code=$(pc_curl -u alice -C "$c4" /echo -X POST --data x=1)
sk_assert_eq "$code" 303 "POST /echo before the forced change"
sk_assert_eq "$(sk_last_header location)" /.sekisho/password "redirect of POST /echo before the forced change"
pwform alice "$c4"
sk_assert_contains "$(sk_last_body)" "Your password must be changed before you continue." "forced-change notice"
fpw=$(sk_password)
code=$(pwchange alice "$c4" "$rpw" "$fpw" "$fpw")
sk_assert_eq "$code" 200 "forced password change"
sk_assert_eq "$(pc_curl -u alice -C "$c4" /echo)" 200 "proxied request after the forced change"
sk_assert_eq "$(sk_echo_header_values X-Sekisho-User)" alice "identity after the forced change"
c5=$(pc_login alice "$fpw")
sk_assert_eq "$(sk_last_header location)" / "login after the forced change"
sk_assert_eq "$(pc_curl -u alice -C "$c5" /echo)" 200 "session of a login after the forced change"
sk_assert_eq "$(pc_login_attempt alice alice "$rpw")" 401 "operator-set password after the change"
sk_stop_gateway
sk_pass
