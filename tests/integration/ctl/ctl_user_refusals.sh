#!/bin/bash
# sekishoctl refuses bad input with exit 1 and one "sekishoctl: " line, and usage
# errors with exit 2; nothing is stored on refusal.
source "$SK_SRC/tests/integration/lib.sh"
source "$SK_SRC/tests/integration/ctl/ctl_lib.sh"
sk_setup
sk_need_bin sekishoctl
command -v jq >/dev/null || sk_fail "jq not installed"
ctl_config
good=$(ctl_pwfile good Cedar-Field-58)

# bad IDs and tenants
long_id=$(printf 'a%.0s' {1..65})
for id in .alice -alice 'al ice' 'al/ice' 'a:b' "$long_id" 'ユーザー' ''; do
    ctl 1 user add --password-file "$good" -- "$id"
    ctl_refused "bad id '$id'"
    sk_assert_contains "$(ctl_err_text)" "invalid user ID" "bad id '$id' reason"
done
ctl 0 user add "$(printf 'a%.0s' {1..64})" --password-file "$good"
for t in Acme 'a_b' '' "$(printf 'a%.0s' {1..64})"; do
    ctl 1 user add carol --tenant "$t" --password-file "$good"
    ctl_refused "bad tenant '$t'"
done
ctl 1 user add carol --role root --password-file "$good"
ctl_refused "bad role"
for e in 'no-at-sign' '@example.com' 'a@' 'a@@b' $'a@b\r\nBcc: x@y' 'a b@c'; do
    ctl 1 user add carol --email "$e" --password-file "$good"
    ctl_refused "bad email"
done

# passwords: missing file, no terminal, policy
ctl 1 user add carol --password-file "$SK_TMP/does-not-exist"
ctl_refused "missing password file"
ctl 1 user add carol --password-file "$SK_TMP"
ctl_refused "password file is a directory"
ctl 1 user add carol
ctl_refused "no password file and no terminal"
sk_assert_contains "$(ctl_err_text)" "not a terminal" "no tty reason"
for pw in short1A 'alllowercase1' 'NoDigitsHere' 'Password1' 'carol-Secret-1'; do
    f=$(ctl_pwfile weak "$pw")
    ctl 1 user add carol --password-file "$f"
    ctl_refused "weak password '$pw'"
    sk_assert_contains "$(ctl_err_text)" "password refused" "weak password '$pw' reason"
done
f=$SK_TMP/huge.pw
head -c 2000 /dev/zero | tr '\0' 'A' >"$f"
ctl 1 user add carol --password-file "$f"
ctl_refused "over-long password"
: >"$SK_TMP/empty.pw"
ctl 1 user add carol --password-file "$SK_TMP/empty.pw"
ctl_refused "empty password"

# none of the refusals stored anything
ctl 0 user list --json
sk_assert_eq "$(ctl_json 'length')" 1 "only the valid 64-char user exists"

# usage errors: exit 2
ctl 2 user
ctl 2 user frobnicate x
ctl 2 user add
ctl 2 user add a b --password-file "$good"
ctl 2 user add carol --nope
ctl 2 user add -alice --password-file "$good"   # looks like options: usage error
ctl 2 user add carol --tenant
ctl 2 user list extra
ctl 2 user list --role admin
ctl 2 user show carol --json --json
ctl 2 session
ctl 2 session list --all
ctl 2 session revoke
ctl 2 session revoke --all --user x
ctl 2 nosuchgroup
ctl 2
"$SK_BIN/sekishoctl" --bogus >/dev/null 2>&1 && sk_fail "--bogus accepted" || rc=$?
sk_assert_eq "$rc" 2 "unknown global option"

# configuration errors: exit 1 with the loader's message
rc=0
"$SK_BIN/sekishoctl" -c "$SK_TMP/nope.conf" user list >/dev/null 2>"$SK_TMP/err" || rc=$?
sk_assert_eq "$rc" 1 "missing config"
sk_assert_match "$(cat "$SK_TMP/err")" '^sekishoctl: .*nope.conf' "missing config message"
printf '[state]\ndir = s\nbogus_key = 1\n' >"$SK_TMP/bad.conf"
rc=0
"$SK_BIN/sekishoctl" -c "$SK_TMP/bad.conf" user list >/dev/null 2>"$SK_TMP/err" || rc=$?
sk_assert_eq "$rc" 1 "bad config"
sk_assert_match "$(cat "$SK_TMP/err")" '^sekishoctl: ' "bad config message"

# sweep option errors are usage errors
ctl 2 sweep --now
ctl 2 sweep --now abc
ctl 2 sweep --now -5
ctl 2 sweep --now 100 --now 200
ctl 2 sweep --bogus
ctl 2 sweep extra

sk_pass
