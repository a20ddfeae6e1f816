#!/bin/bash
# sekishoctl user allow-ip / deny-ip: CIDRs are parsed and normalised by the
# policy module, malformed ones refused, at most SK_ALLOW_MAX (16) per user,
# `user show` lists them.
source "$SK_SRC/tests/integration/lib.sh"
source "$SK_SRC/tests/integration/ctl/ctl_lib.sh"
sk_setup
sk_need_bin sekishoctl
command -v jq >/dev/null || sk_fail "jq not installed"
ctl_config
pw=$(ctl_pwfile pw Cedar-Field-58)
ctl 0 user add alice --password-file "$pw"
ctl 0 user add alice --tenant acme --password-file "$pw"

# good input, normalised
ctl 0 user allow-ip alice@default 192.0.2.0/24
sk_assert_contains "$(ctl_out)" "192.0.2.0/24" "v4 added"
ctl 0 user allow-ip alice@default 2001:DB8:0:0::/32
sk_assert_contains "$(ctl_out)" "2001:db8::/32" "v6 normalised"
ctl 0 user allow-ip alice@default 10.1.2.3
sk_assert_contains "$(ctl_out)" "10.1.2.3/32" "bare v4 is a /32"
ctl 0 user allow-ip alice@default ::1
sk_assert_contains "$(ctl_out)" "::1/128" "bare v6 is a /128"
# the same network again (other spelling): already there, not duplicated
ctl 0 user allow-ip alice@default 2001:db8::/32
sk_assert_contains "$(ctl_out)" "already" "duplicate"
ctl 0 user show alice@default --json
sk_assert_eq "$(ctl_json '.allowlist | join(",")')" "192.0.2.0/24,2001:db8::/32,10.1.2.3/32,::1/128" "json allowlist"
ctl 0 user show alice@default
sk_assert_match "$(ctl_out | grep '^allowlist:')" '192\.0\.2\.0/24, 2001:db8::/32, 10\.1\.2\.3/32, ::1/128$' "text allowlist"
# tenants are separate
ctl 0 user show alice --tenant acme --json
sk_assert_eq "$(ctl_json '.allowlist | length')" 0 "other tenant untouched"

# malformed: exit 1, one line, nothing stored
for bad in 192.0.2.1/24 300.1.1.1 1.2.3 1.2.3.4.5 010.0.0.0/8 10.0.0.0/33 10.0.0.0/ '10.0.0.0/08' \
    ::1::2 2001:db8::/129 fe80::1%eth0 '[::1]' ' 10.0.0.0/8' '10.0.0.0/8 ' abc 0x0a000000 '10.0.0.0/-1' ''; do
    ctl 1 user allow-ip alice@default -- "$bad"
    ctl_refused "bad cidr '$bad'"
    sk_assert_contains "$(ctl_err_text)" "invalid CIDR" "bad cidr '$bad' reason"
done
ctl 1 user allow-ip alice@default "$(printf '1%.0s' {1..100})"
ctl_refused "overlong cidr"
ctl 0 user show alice@default --json
sk_assert_eq "$(ctl_json '.allowlist | length')" 4 "nothing stored on refusal"

# usage errors
ctl 2 user allow-ip alice@default
ctl 2 user allow-ip
ctl 2 user allow-ip alice@default 10.0.0.0/8 extra
ctl 2 user deny-ip alice@default
# unknown user
ctl 1 user allow-ip nobody 10.0.0.0/8
ctl_refused "unknown user"

# removal
ctl 0 user deny-ip alice@default 10.1.2.3
sk_assert_contains "$(ctl_out)" "removed" "deny-ip"
ctl 1 user deny-ip alice@default 10.1.2.3
ctl_refused "deny-ip absent"
ctl 1 user deny-ip alice@default 10.1.2.3/24
ctl_refused "deny-ip malformed"
ctl 0 user show alice@default --json
sk_assert_eq "$(ctl_json '.allowlist | join(",")')" "192.0.2.0/24,2001:db8::/32,::1/128" "after deny"

# the limit: 16 entries, the 17th refused
for i in $(seq 1 13); do
    ctl 0 user allow-ip alice@default "198.51.$i.0/24"
done
ctl 0 user show alice@default --json
sk_assert_eq "$(ctl_json '.allowlist | length')" 16 "full"
ctl 1 user allow-ip alice@default 203.0.113.0/24
ctl_refused "17th entry"
sk_assert_contains "$(ctl_err_text)" "full" "full reason"
ctl 0 user allow-ip alice@default 198.51.5.0/24   # present: fine even when full
ctl 0 user deny-ip alice@default 198.51.5.0/24
ctl 0 user allow-ip alice@default 203.0.113.0/24
ctl 0 user show alice@default --json
sk_assert_eq "$(ctl_json '.allowlist[-1]')" "203.0.113.0/24" "room again"

sk_pass
