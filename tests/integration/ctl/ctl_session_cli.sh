#!/bin/bash
# sekishoctl session list/revoke on an empty and a populated-but-sessionless store.
source "$SK_SRC/tests/integration/lib.sh"
source "$SK_SRC/tests/integration/ctl/ctl_lib.sh"
sk_setup
sk_need_bin sekishoctl
command -v jq >/dev/null || sk_fail "jq not installed"
ctl_config

ctl 0 session list --json
sk_assert_eq "$(ctl_json 'length')" 0 "no sessions before any database"
ctl 0 session list
sk_assert_match "$(ctl_out | sed -n 1p)" '^SESSION +USER +TENANT' "session list header"

ctl 0 user add alice --password-file "$(ctl_pwfile a Dune-River-31)"
ctl 0 session revoke --user alice
sk_assert_eq "$(ctl_out)" "revoked 0 session(s)" "revoke user"
ctl 0 session revoke --user alice --tenant default
ctl 0 session revoke --all
sk_assert_eq "$(ctl_out)" "revoked 0 session(s)" "revoke all"
ctl 1 session revoke --user .bad
ctl_refused "revoke bad id"
ctl 1 session revoke --user alice --tenant BAD
ctl_refused "revoke bad tenant"
ctl 0 session list --json
sk_assert_eq "$(ctl_json 'type')" array "session list JSON type"

sk_pass
