#!/usr/bin/env bash
# `sekishoctl store copy --to postgresql` (issue 10, item 6): an LMDB installation
# with accounts, a TOTP secret and a live session is copied to PostgreSQL and
# verified; the gateway then runs on PostgreSQL and the same passwords, the same
# TOTP secret and the same session work. A second copy is refused (no merge), as
# are a missing url and another target, and a node's backup or restore (the accounts
# are the database's to back up now).
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# shellcheck source=../lifecycle/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lifecycle/common.sh"
# shellcheck source=../policy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../policy/common.sh"
# shellcheck source=../pg.sh
source "$(dirname "${BASH_SOURCE[0]}")/../pg.sh"
sk_setup
command -v oathtool >/dev/null || sk_fail "oathtool not installed"

# ---- the single-node (LMDB) installation ------------------------------------------
sk_make_ca alice:acme bob:acme
sk_start_upstream
sk_write_config "$SK_TMP/lmdb.conf" </dev/null
sk_add_user alice acme "$(sk_password)" general
sk_add_user bob acme "$(sk_password)" admin
"$SK_BIN/sekishoctl" -c "$SK_CONF" user totp enable bob >"$SK_TMP/ctl.out" 2>&1 || sk_fail "totp enable bob"
secret=$(grep -m1 -o 'secret=[A-Z2-7]*' "$SK_TMP/ctl.out" | cut -d= -f2)
[[ -n $secret ]] || sk_fail "no secret in the otpauth URI"
"$SK_BIN/sekishoctl" -c "$SK_CONF" user allow-ip alice 127.0.0.0/8 >/dev/null 2>&1 || sk_fail "allow-ip alice"
sk_start_gateway
acookie=$(sk_login alice)
sk_assert_eq "$(sk_curl -u alice -C "$acookie" /echo)" 200 "alice's session on LMDB"
"$SK_BIN/sekishoctl" -c "$SK_CONF" user show alice --json >"$SK_TMP/alice.lmdb.json" || sk_fail "user show alice"
sk_stop_gateway

# ---- refusals before anything is copied -------------------------------------------
out=$("$SK_BIN/sekishoctl" -c "$SK_CONF" store copy --to postgresql 2>&1) && sk_fail "copy without [store] url succeeded"
sk_assert_contains "$out" "[store] url is not set" "copy without a url"
sk_pg_start
{ cat "$SK_TMP/lmdb.conf"; sk_pg_conf_lines; } >"$SK_TMP/pg.conf"
out=$("$SK_BIN/sekishoctl" -c "$SK_TMP/pg.conf" store copy --to lmdb 2>&1) && sk_fail "copy --to lmdb succeeded"
sk_assert_contains "$out" "the only target is postgresql" "copy to another backend"
set +e
"$SK_BIN/sekishoctl" -c "$SK_TMP/pg.conf" store copy 2>/dev/null
rc=$?
set -e
sk_assert_eq "$rc" 2 "copy without --to (usage)"

# ---- copy and verify ----------------------------------------------------------------
"$SK_BIN/sekishoctl" -c "$SK_TMP/pg.conf" store migrate >"$SK_TMP/migrate.log" 2>&1 ||
    sk_fail "store migrate: $(cat "$SK_TMP/migrate.log")"
out=$("$SK_BIN/sekishoctl" -c "$SK_TMP/pg.conf" store copy --to postgresql --with-sessions 2>&1) ||
    sk_fail "store copy: $out"
sk_assert_contains "$out" "copied 2 users, 1 sessions" "copy summary"
sk_assert_contains "$out" "every record verified" "copy verified"
out=$("$SK_BIN/sekishoctl" -c "$SK_TMP/pg.conf" store copy --to postgresql 2>&1) && sk_fail "a second copy succeeded"
sk_assert_contains "$out" "already holds 2 users" "a second copy is refused"
"$SK_BIN/sekishoctl" -c "$SK_TMP/pg.conf" user show alice --json >"$SK_TMP/alice.pg.json" || sk_fail "user show alice (pg)"
sk_assert_eq "$(jq -c 'del(.backend)' "$SK_TMP/alice.pg.json")" "$(jq -c 'del(.backend)' "$SK_TMP/alice.lmdb.json")" \
    "alice as sekishoctl shows her, before and after"
"$SK_BIN/sekishoctl" -c "$SK_TMP/pg.conf" audit export >"$SK_TMP/audit.jsonl" || sk_fail "audit export"
sk_assert_eq "$(jq -s '[.[] | select(.ev == "admin.change" and .details.command == "store.copy"
    and .details.result == "ok")] | length' "$SK_TMP/audit.jsonl")" 1 "audited store.copy"

# A node's backup holds no account once they live in PostgreSQL: refused, saying how.
out=$("$SK_BIN/sekishoctl" -c "$SK_TMP/pg.conf" backup --to "$SK_TMP/bk" 2>&1) && sk_fail "backup with postgresql succeeded"
sk_assert_contains "$out" "pg_dump" "backup with postgresql names the database's tools"
[[ ! -e $SK_TMP/bk ]] || sk_fail "a refused backup left $SK_TMP/bk behind"
out=$("$SK_BIN/sekishoctl" -c "$SK_TMP/pg.conf" restore --from "$SK_TMP" 2>&1) && sk_fail "restore with postgresql succeeded"
sk_assert_contains "$out" "pg_restore" "restore with postgresql names the database's tools"

# ---- the gateway on PostgreSQL: same session, passwords and TOTP secret ---------------
SK_CONF=$SK_TMP/pg.conf
sk_start_gateway
sk_assert_eq "$(sk_curl -u alice -C "$acookie" /echo)" 200 "alice's session from LMDB on PostgreSQL"
sk_login alice >/dev/null
while (($(date +%s) % 30 > 25)); do sleep 1; done
otp=$(oathtool --totp -b "$secret")
sk_assert_eq "$(pc_login_attempt bob bob "$(sk_user_password bob)" --data-urlencode "totp=$otp")" 303 \
    "bob with his password and a code of his TOTP secret, on PostgreSQL"
sk_assert_eq "$(pc_login_attempt bob bob "$(sk_user_password bob)")" 401 "bob without a TOTP code"
sk_stop_gateway
sk_pass
