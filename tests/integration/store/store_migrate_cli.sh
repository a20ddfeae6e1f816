#!/bin/bash
# Issue 10: `sekishoctl store migrate` against a real PostgreSQL (started here):
# a fresh database is refused until migrated; migrate creates the schema, again
# changes nothing, two at once on a fresh database both succeed and apply each
# step once; the account commands then work against PostgreSQL (and see each
# other's writes); a schema newer than this build is refused with one line;
# with backend = lmdb there is nothing to migrate.
source "$SK_SRC/tests/integration/lib.sh"
source "$SK_SRC/tests/integration/ctl/ctl_lib.sh"
source "$SK_SRC/tests/integration/pg.sh"
sk_setup
sk_need_bin sekishoctl
sk_pg_start
ctl_config
base=$(cat "$SK_CONF")
pgconf() { printf '%s\n\n%s\n' "$base" "$(sk_pg_conf_lines)" >"$SK_CONF"; }
good=$(ctl_pwfile good Cedar-Field-58)

# ---- lmdb: nothing to migrate ----
ctl 0 store migrate
sk_assert_contains "$(ctl_out)" "nothing to migrate" "lmdb migrate"
ctl 2 store frobnicate
ctl 2 store migrate extra

# ---- postgresql, fresh database: refused until migrated ----
pgconf
ctl 1 user add alice --password-file "$good"
ctl_refused "user add before migrate"
sk_assert_contains "$(ctl_err_text)" "run \`sekishoctl store migrate\`" "told to migrate"
ctl 0 user list # read-only: an empty store, not an error
ctl 0 store migrate
sk_assert_contains "$(ctl_out)" "schema version 0 -> 1" "first migrate"
sk_assert_eq "$(sk_pg_psql 'SELECT version FROM sekisho_schema')" 1 "schema version in the database"
ctl 0 store migrate
sk_assert_contains "$(ctl_out)" "schema version 1 is current; nothing to do" "second migrate"
sk_assert_eq "$(sk_pg_psql 'SELECT count(*) FROM sekisho_schema')" 1 "one version row"

# ---- accounts against PostgreSQL ----
ctl 0 user add alice --password-file "$good"
ctl 0 user add bob --tenant acme --password-file "$good"
ctl 1 user add ALICE --password-file "$good"
ctl_refused "case variant"
ctl 0 user list --json
sk_assert_eq "$(ctl_json '[.[] | .id] | join(",")')" "bob,alice" "users listed by tenant, then id"
sk_assert_eq "$(sk_pg_psql "SELECT count(*) FROM sekisho_users")" 2 "rows in sekisho_users"
ctl 0 user lock alice
ctl 0 user show alice --json
sk_assert_eq "$(ctl_json .status)" operator-locked "lock stored in PostgreSQL"
ctl 0 user delete bob --tenant acme
sk_assert_eq "$(sk_pg_psql "SELECT count(*) FROM sekisho_users")" 1 "bob deleted"
ctl 0 session list

# ---- two migrations at once on a fresh database ----
printf 'CREATE DATABASE sekisho2 OWNER sekisho;\n' | sk__pg_psql_db postgres >/dev/null || sk_fail "create sekisho2"
sed -i "s|^url = .*|url = postgresql://sekisho@127.0.0.1:$SK_PG_PORT/sekisho2|" "$SK_CONF"
pids=()
for i in 1 2 3; do
    "$SK_BIN/sekishoctl" -c "$SK_CONF" store migrate >"$SK_TMP/m$i.out" 2>"$SK_TMP/m$i.err" </dev/null &
    pids+=($!)
done
applied=0
for i in 1 2 3; do
    sk_wait_exit "${pids[$((i - 1))]}" 60
    sk_assert_eq "$SK_EXIT_STATUS" 0 "concurrent migrate $i: $(cat "$SK_TMP/m$i.err")"
    grep -q "0 -> 1" "$SK_TMP/m$i.out" && applied=$((applied + 1))
done
sk_assert_eq "$applied" 1 "exactly one of the concurrent migrations applied the step"
ctl 0 user add carol --password-file "$good"

# ---- a schema newer than this build: refused, one line ----
printf 'UPDATE sekisho_schema SET version = 99;\n' | sk__pg_psql_db sekisho2 >/dev/null || sk_fail "set version"
for cmd in "user list" "user show carol" "store migrate"; do
    # shellcheck disable=SC2086
    ctl 1 $cmd
    ctl_refused "sekishoctl $cmd on a newer schema"
    sk_assert_contains "$(ctl_err_text)" "schema version 99, newer than this Sekisho knows" "$cmd refusal"
done

# ---- the password stays out of argv and of the config's main text ----
sk_assert_not_contains "$(cat "$SK_CONF")" "$(cat "$SK_PG_PWFILE")" "password in the config"
sk_pass
