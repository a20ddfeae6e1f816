#!/usr/bin/env bash
# Invitation instead of a password (issue 11 item 8): `sekishoctl user add --invite`
# creates an account without a password and mails a single-use, time-limited link
# (never a password); /.sekisho/activate, with that account's certificate only, sets
# the first password under the usual rules; the link works once; a new invitation
# replaces the old link; an expired link is refused.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
sk_setup
sk_make_ca alice:acme dave:acme
sk_start_upstream
mkdir -p "$SK_TMP/mail"
cat >"$SK_TMP/sendmail.sh" <<EOF2
#!/bin/sh
f=\$(mktemp "$SK_TMP/mail/msg.XXXXXX") || exit 1
cat >"\$f"
EOF2
chmod 700 "$SK_TMP/sendmail.sh"
sk_write_config <<EOF2
[notify]
command = $SK_TMP/sendmail.sh -t
operators = ops@example.test
portal_url = https://$SK_HOST:$SK_GW_PORT/
EOF2
sk_add_user alice acme "$(sk_password)"
ctl() { "$SK_BIN/sekishoctl" -c "$SK_CONF" "$@"; }
last_link() { # the activation link of the newest invitation mail
    local f
    f=$(ls -t $(grep -l "^Subject: Sekisho: activate your account" "$SK_TMP"/mail/msg.*) | head -n 1)
    grep -oE 'https://[^ ]*/\.sekisho/activate\?t=[A-Za-z0-9_-]+' "$f" | head -n 1
}
ctl user add dave --tenant acme --email dave@example.test --invite >"$SK_TMP/add.out" 2>&1 ||
    sk_fail "user add --invite: $(cat "$SK_TMP/add.out")"
sk_assert_contains "$(cat "$SK_TMP/add.out")" "activation link for dave (tenant acme) sent to dave@example.test" "add --invite output"
m=$(grep -l "^Subject: Sekisho: activate your account" "$SK_TMP"/mail/msg.* | head -n 1)
sk_assert_file_contains "$m" "To: dave@example.test" "invitation addressed to the user"
sk_assert_file_not_contains "$m" "password:" "no password in the invitation"
link1=$(last_link)
[[ -n $link1 ]] || sk_fail "no activation link in the mail: $(head -c 600 "$m")"
path1=${link1#https://*/}
path1=/$path1
rc=0
ctl user add eve --tenant acme --invite >"$SK_TMP/eve.out" 2>&1 || rc=$?
sk_assert_eq "$rc" 1 "--invite without --email is refused"

sk_start_gateway
# No password yet: a login cannot succeed.
sk_assert_eq "$(sk_login_attempt dave dave "")" 401 "login of an invited account before activation"
# Another account's certificate cannot use the link.
code=$(sk_curl -u alice "$path1" -H 'Accept-Language: en')
sk_assert_eq "$code" 403 "alice's certificate with dave's link"
sk_assert_contains "$(sk_last_body)" "This link does not work" "dead-link page for another account"
# A second invitation replaces the first link.
ctl user invite dave@acme >"$SK_TMP/inv2.out" 2>&1 || sk_fail "user invite: $(cat "$SK_TMP/inv2.out")"
link2=$(last_link)
sk_assert_ne "$link2" "$link1" "a new invitation carries a new link"
path2=/${link2#https://*/}
sk_assert_eq "$(sk_curl -u dave "$path1")" 403 "the replaced link"
code=$(sk_curl -u dave "$path2" -H 'Accept-Language: en')
sk_assert_eq "$code" 200 "the current link with dave's certificate"
sk_assert_contains "$(sk_last_body)" "Choose your password" "activation page"
sk_assert_not_contains "$(sk_last_body)" 'name="current"' "no current password asked"
csrf=$(sk_csrf_from_last)
tok=${path2##*t=}
post() { # NEW CONFIRM -> status
    sk_curl -u dave /.sekisho/activate -H 'Accept-Language: en' --data-urlencode "csrf=$csrf" \
        --data-urlencode "t=$tok" --data-urlencode "new=$1" --data-urlencode "confirm=$2"
}
sk_assert_eq "$(post short short)" 400 "a password the rules refuse"
sk_assert_eq "$(post Dave-Passw0rd-1 Dave-Passw0rd-2)" 400 "confirmation differs"
pw=$(sk_password)
sk_assert_eq "$(post "$pw" "$pw")" 303 "activation with a valid password"
sk_assert_eq "$(sk_last_header Location)" "/.sekisho/login?msg=activated" "back to the login page"
sk_login dave "$pw" >/dev/null
# The link is spent.
sk_assert_eq "$(post "$pw" "$pw")" 403 "the same link again"
sk_assert_eq "$(sk_curl -u dave "$path2")" 403 "GET of a spent link"
# An expired link (lifetime 5 minutes, gateway clock 10 minutes ahead).
ctl user invite dave@acme --lifetime 5m >"$SK_TMP/inv3.out" 2>&1 || sk_fail "user invite: $(cat "$SK_TMP/inv3.out")"
sk_assert_eq "$(sk_curl -u dave "/$(last_link | sed 's#https://[^/]*/##')")" 200 "a fresh 5-minute link"
sk_stop_gateway
ftlib=$(ls /usr/lib/*/faketime/libfaketimeMT.so.1 2>/dev/null | head -n 1)
[[ -n $ftlib ]] || sk_fail "libfaketime (package faketime) is needed"
SK_GW_LOG=$SK_TMP/gateway-late.log
LD_PRELOAD=$ftlib FAKETIME=+10m FAKETIME_DONT_RESET=1 ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" \
    "$SK_BIN/sekisho" -c "$SK_CONF" >>"$SK_GW_LOG" 2>&1 </dev/null &
SK_GW_PID=$!
sk_track "$SK_GW_PID"
sk_wait_port "$SK_GW_PORT" "$SK_GW_PID" 20 || sk_fail "gateway 10 minutes ahead did not start"
sk_assert_eq "$(sk_curl -u dave "/$(last_link | sed 's#https://[^/]*/##')")" 403 "a link past its lifetime"
sk_stop_gateway
"$SK_BIN/sekishoctl" -c "$SK_CONF" audit show >"$SK_TMP/audit.txt" 2>&1 || sk_fail "audit show"
sk_assert_file_contains "$SK_TMP/audit.txt" "user.invite" "invitations audited"
sk_assert_file_contains "$SK_TMP/audit.txt" "account.activate" "activation audited"
sk_pass
