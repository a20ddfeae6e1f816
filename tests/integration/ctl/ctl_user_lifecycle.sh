#!/bin/bash
# sekishoctl user add / show / list / passwd / lock / unlock / delete, JSON output,
# duplicate refusal, tenants, and no password or hash ever printed or stored in clear.
source "$SK_SRC/tests/integration/lib.sh"
source "$SK_SRC/tests/integration/ctl/ctl_lib.sh"
sk_setup
sk_need_bin sekishoctl
command -v jq >/dev/null || sk_fail "jq not installed"
ctl_config

PW1=Alpine-Lake-42
PW2=Birch-Grove-77
pw1=$(ctl_pwfile alice1 "$PW1")
pw2=$(ctl_pwfile alice2 "$PW2")

# empty database: list works, read-only, creates nothing
ctl 0 user list --json
sk_assert_eq "$(ctl_json 'length')" 0 "empty list"
if [[ $(sk_store_backend) == lmdb ]]; then
    [[ ! -e $SK_TMP/state/db/data.mdb ]] || sk_fail "a read-only list created the database"
fi

ctl 0 user add alice --role admin --email alice@example.com --password-file "$pw1"
sk_assert_contains "$(ctl_out)" "alice" "add output"
if [[ $(sk_store_backend) == lmdb ]]; then
    [[ $(stat -c %a "$SK_TMP/state/db") == 700 ]] || sk_fail "db directory is not 0700"
fi

# duplicate refused with exit 1 and one line
ctl 1 user add alice --password-file "$pw2"
ctl_refused "duplicate add"
sk_assert_contains "$(ctl_err_text)" "already exists" "duplicate add reason"
# same ID in another tenant is a different user
ctl 0 user add alice --tenant acme --password-file "$pw2"
ctl 0 user add bob --password-file "$pw2" --must-change

ctl 0 user show alice@default
out=$(ctl_out)
sk_assert_match "$out" 'id: +alice' "show id"
sk_assert_match "$out" 'tenant: +default' "show tenant"
sk_assert_match "$out" 'role: +admin' "show role"
sk_assert_match "$out" 'email: +alice@example.com' "show email"
sk_assert_match "$out" 'last login: +never' "show last login"
sk_assert_match "$out" 'status: +active' "show status"
sk_assert_match "$out" 'failures: +0' "show failures"
sk_assert_match "$out" 'created: +[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z' "show created"
sk_assert_not_contains "$out" 'argon2' "show must not print the hash"
sk_assert_not_contains "$out" "$PW1" "show must not print the password"

ctl 0 user show alice@default --json
sk_assert_eq "$(ctl_json .id)" alice "json id"
sk_assert_eq "$(ctl_json .tenant)" default "json tenant"
sk_assert_eq "$(ctl_json .role)" admin "json role"
sk_assert_eq "$(ctl_json .email)" alice@example.com "json email"
sk_assert_eq "$(ctl_json .status)" active "json status"
sk_assert_eq "$(ctl_json .failures)" 0 "json failures"
sk_assert_eq "$(ctl_json .last_login)" null "json last_login"
sk_assert_eq "$(ctl_json .must_change_password)" false "json must_change"
sk_assert_not_contains "$(ctl_out)" 'argon2' "json must not print the hash"

ctl 0 user show alice --tenant acme --json
sk_assert_eq "$(ctl_json .tenant)" acme "other tenant"
sk_assert_eq "$(ctl_json .role)" general "default role"
ctl 0 user show bob --json
sk_assert_eq "$(ctl_json .must_change_password)" true "bob must change"

ctl 0 user list --json
sk_assert_eq "$(ctl_json 'length')" 3 "list all"
sk_assert_eq "$(ctl_json '[.[] | .tenant + "/" + .id] | join(",")')" "acme/alice,default/alice,default/bob" "list order"
ctl 0 user list --tenant default --json
sk_assert_eq "$(ctl_json '[.[].id] | join(",")')" "alice,bob" "list one tenant"
ctl 0 user list
sk_assert_eq "$(ctl_out | wc -l)" 4 "text list: header + 3 users"
sk_assert_match "$(ctl_out | sed -n 1p)" '^ID +TENANT +ROLE +EMAIL +CREATED +LAST-LOGIN +FAILURES +STATUS' "text list header"
sk_assert_match "$(ctl_out | grep '^alice .*default')" 'alice@example.com' "text list row"

# passwd: the stored hash changes (show cannot tell, so compare the raw database
# pages: the old encoded hash disappears), password not in clear
sk_store_raw "$SK_TMP/raw.before"
strings -a "$SK_TMP/raw.before" | grep -o '\$argon2id\$[^ ]*' | sort -u >"$SK_TMP/hashes.before"
ctl 0 user passwd alice@default --password-file "$pw2" --must-change
ctl 0 user show alice@default --json
sk_assert_eq "$(ctl_json .must_change_password)" true "passwd --must-change"
ctl 0 user passwd alice@default --password-file "$pw1" --no-force-change
ctl 0 user show alice@default --json
sk_assert_eq "$(ctl_json .must_change_password)" false "passwd --no-force-change clears must_change"
# an operator reset forces a change at the next login by default
ctl 0 user passwd alice@default --password-file "$pw2"
sk_assert_contains "$(ctl_out)" "must be changed at the next login" "passwd forced message"
ctl 0 user show alice@default --json
sk_assert_eq "$(ctl_json .must_change_password)" true "operator reset forces a change"
ctl 2 user passwd alice@default --password-file "$pw2" --must-change --no-force-change
ctl 0 user passwd alice@default --password-file "$pw1" --no-force-change
ctl 1 user passwd nobody --password-file "$pw1"
ctl_refused "passwd unknown user"
sk_store_raw "$SK_TMP/raw.after"
for p in "$PW1" "$PW2"; do
    if grep -qaF -- "$p" "$SK_TMP/raw.after"; then
        sk_fail "a password is stored in clear"
    fi
done

# lock / unlock
ctl 0 user lock alice@default
ctl 0 user show alice@default --json
sk_assert_eq "$(ctl_json .status)" operator-locked "locked status"
ctl 0 user lock alice@default
sk_assert_contains "$(ctl_out)" "already locked" "lock is idempotent"
ctl 0 user list --json
sk_assert_eq "$(ctl_json '[.[] | select(.id == "alice" and .tenant == "default")][0].status')" operator-locked "list shows lock"
ctl 0 user unlock alice@default
ctl 0 user show alice@default --json
sk_assert_eq "$(ctl_json .status)" active "unlocked status"
ctl 1 user lock ghost
ctl_refused "lock unknown user"

# delete
ctl 0 user delete bob
ctl 1 user show bob
ctl_refused "show deleted user"
ctl 1 user delete bob
ctl_refused "delete twice"
ctl 0 user list --json
sk_assert_eq "$(ctl_json 'length')" 2 "list after delete"

sk_pass
