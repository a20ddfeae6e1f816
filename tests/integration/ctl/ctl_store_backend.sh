#!/bin/bash
# Issue 10: [store] backend chooses the store's backend in every program that
# opens it. lmdb (the default, also when named) works as before; postgresql with
# a database that does not answer is refused with one clear line by sekishoctl
# and the gateway's start, and nothing of the LMDB store is lost or created by
# the refusal. A password in [store] url is refused without being repeated.
# (tests/integration/store/ runs the postgresql backend against a real server.)
source "$SK_SRC/tests/integration/lib.sh"
source "$SK_SRC/tests/integration/ctl/ctl_lib.sh"
sk_setup
sk_need_bin sekishoctl sekisho
ctl_config
printf '\n[upstream]\nurl = http://127.0.0.1:9\n' >>"$SK_CONF"
base=$(cat "$SK_CONF")
good=$(ctl_pwfile good Cedar-Field-58)
with_store() { printf '%s\n\n[store]\n%s\n' "$base" "$1" >"$SK_CONF"; }
refusal='cannot connect to PostgreSQL'

# ---- postgresql unreachable before any store exists: refused, no LMDB store made instead ----
with_store $'backend = postgresql\nurl = postgresql://sekisho@127.0.0.1:1/sekisho'
ctl 1 user list
ctl_refused "user list, postgresql"
sk_assert_contains "$(ctl_err_text)" "$refusal" "user list refusal"
ctl 1 user add alice --password-file "$good"
ctl_refused "user add, postgresql"
sk_assert_contains "$(ctl_err_text)" "$refusal" "user add refusal"
[[ ! -e $SK_TMP/state/db ]] || sk_fail "a refused backend left an LMDB store behind"

# ---- lmdb named explicitly: as before ----
with_store 'backend = lmdb'
ctl 0 user add alice --password-file "$good"
ctl 0 user list --json
sk_assert_eq "$(ctl_json '[.[] | .id] | join(",")')" alice "users under backend = lmdb"
ctl 0 session list

# ---- postgresql (unreachable) again: every store command refuses, nothing lost ----
with_store $'backend = postgresql\nurl = host=127.0.0.1 port=1 dbname=sekisho'
for cmd in "user list" "user show alice" "session list" "session revoke --all" "user lock alice" "sweep" "store migrate"; do
    # shellcheck disable=SC2086
    ctl 1 $cmd
    sk_assert_contains "$(ctl_err_text)" "$refusal" "sekishoctl $cmd refusal"
done
with_store ''
ctl 0 user list --json
sk_assert_eq "$(ctl_json '[.[] | .id] | join(",")')" alice "alice survived the refusals"

# ---- the gateway: the start refuses an unreachable database; -T shows the keys ----
with_store $'backend = postgresql\nurl = postgresql://sekisho@127.0.0.1:1/sekisho'
rc=0
timeout 20 "$SK_BIN/sekisho" -c "$SK_CONF" >"$SK_TMP/run.out" 2>"$SK_TMP/run.err" || rc=$?
sk_assert_eq "$rc" 1 "sekisho start exit code with backend = postgresql"
sk_assert_contains "$(cat "$SK_TMP/run.err")" "$refusal" "sekisho start refusal"
with_store $'backend = lmdb\npassword_file = db.pw'
rc=0
"$SK_BIN/sekisho" -c "$SK_CONF" -T >"$SK_TMP/dump" 2>"$SK_TMP/dump.err" || rc=$?
sk_assert_eq "$rc" 0 "sekisho -T: $(cat "$SK_TMP/dump.err")"
sk_assert_eq "$(grep -A1 -x '\[store\]' "$SK_TMP/dump" | tail -n 1)" "backend = lmdb" "-T shows [store] backend"
grep -qx "password_file = $SK_TMP/db.pw" "$SK_TMP/dump" || sk_fail "-T: password_file not shown resolved"

# ---- a password in the URL: refused, and not repeated ----
with_store $'backend = postgresql\nurl = postgresql://sekisho:Hunter2-secret@127.0.0.1/sekisho'
ctl 1 user list
ctl_refused "password in url"
sk_assert_contains "$(ctl_err_text)" "must not hold a password" "password in url reason"
sk_assert_not_contains "$(ctl_err_text)" "Hunter2" "the password is not repeated"
rc=0
"$SK_BIN/sekisho" -c "$SK_CONF" -t >"$SK_TMP/t.out" 2>"$SK_TMP/t.err" || rc=$?
sk_assert_eq "$rc" 1 "sekisho -t with a password in the url"
sk_assert_not_contains "$(cat "$SK_TMP/t.err")" "Hunter2" "sekisho -t does not repeat the password"
sk_pass
