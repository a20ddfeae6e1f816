#!/usr/bin/env bash
# Several gateway nodes (issue 10, item 5), through two real sekisho processes in front
# of one upstream, each with its own configuration, state directory, store, audit key
# and audit directory ([audit] node = gw-a / gw-b):
# - malformed node names are refused by `sekisho -t` with one clear line;
# - logins on both nodes; node A is killed with SIGKILL right after its logins were
#   acknowledged; `sekishoctl audit verify` over both directories passes (each node its
#   own chain and key) and A's acknowledged logins are in its log;
# - `audit show` over both directories merges by time and names the node on each
#   line; export lines carry "node";
# - a writer of another node is refused on A's directory (one line, nothing changed);
# - tampering with one byte of B's log fails verify, naming node gw-b; the
#   independent Python verifier agrees.
source "$(dirname "$0")/../lib.sh"
sk_setup
sk_need_bin sekisho sekishoctl
command -v jq >/dev/null || sk_fail "jq not installed"
PYV=$SK_SRC/tools/audit-verify/audit_verify.py
sk_make_ca alice:acme
sk_start_upstream

# node_config NAME PORT: $SK_TMP/NAME.conf with its own state directory and audit key.
node_config() {
    SK_GW_PORT=$2
    # in the PostgreSQL pass the store is shared, and so must be the TOTP key
    local shared=""
    [[ $(sk_store_backend) == postgresql ]] && shared=$(printf '[auth]\ntotp_key = %s/totp.key' "$SK_TMP")
    sk_write_config "$SK_TMP/$1.conf" <<EOF2
node = $1
$shared
EOF2
    sed -i -e "s|^dir = state\$|dir = state-$1|" -e "s|^key = audit.key\$|key = state-$1/audit.key|" "$SK_TMP/$1.conf"
    grep -q "^dir = state-$1\$" "$SK_TMP/$1.conf" && grep -q "^key = state-$1/audit.key\$" "$SK_TMP/$1.conf" ||
        sk_fail "node config $1: $(cat "$SK_TMP/$1.conf")"
}
PA=$(sk_free_port)
PB=$(sk_free_port)
node_config gw-a "$PA"
node_config gw-b "$PB"

# -- malformed node names: refused by the configuration check, one line naming the key
for badname in 'gw a' 'gw/a' "$(printf 'n%.0s' {1..64})" ''; do
    sed "s|^node = gw-a\$|node = $badname|" "$SK_TMP/gw-a.conf" >"$SK_TMP/bad.conf"
    rc=0
    "$SK_BIN/sekisho" -c "$SK_TMP/bad.conf" -t >"$SK_TMP/t.out" 2>&1 </dev/null || rc=$?
    sk_assert_eq "$rc" 1 "sekisho -t with node = '$badname'"
    sk_assert_eq "$(wc -l <"$SK_TMP/t.out")" 1 "one line for node = '$badname'"
    sk_assert_contains "$(cat "$SK_TMP/t.out")" "[audit] node = $badname: must be 1 to 63 characters of A-Z a-z 0-9 . _ -" \
        "message for node = '$badname'"
done
rc=0
"$SK_BIN/sekisho" -c "$SK_TMP/gw-a.conf" -t >"$SK_TMP/t.out" 2>&1 </dev/null || rc=$?
sk_assert_eq "$rc" 0 "sekisho -t with node = gw-a: $(cat "$SK_TMP/t.out")"

# -- one account on each node's own store, same password (in the PostgreSQL pass both
#    nodes share one store, as issue 10's nodes do: the account is added once)
pw=$(sk_password)
SK_CONF=$SK_TMP/gw-a.conf sk_add_user alice acme "$pw"
[[ $(sk_store_backend) == postgresql ]] || SK_CONF=$SK_TMP/gw-b.conf sk_add_user alice acme "$pw"

# use_node NAME: the lib's helpers (sk_curl, sk_login, sekishoctl) talk to that node
use_node() {
    SK_CONF=$SK_TMP/$1.conf
    case $1 in gw-a) SK_GW_PORT=$PA SK_GW_PID=${PID_A:-} ;; gw-b) SK_GW_PORT=$PB SK_GW_PID=${PID_B:-} ;; esac
}
use_node gw-a
sk_start_gateway
PID_A=$SK_GW_PID
use_node gw-b
sk_start_gateway
PID_B=$SK_GW_PID

# Alternate logins; each 303 is an acknowledged login (its audit entry was durable first).
declare -A acked=([gw-a]=0 [gw-b]=0)
for round in 1 2 3; do
    for n in gw-a gw-b; do
        use_node "$n"
        sk_login alice >/dev/null
        acked[$n]=$((acked[$n] + 1))
    done
done
use_node gw-b
code=$(sk_login_attempt alice probe-gw-b Wrong-Passw0rd)
sk_assert_eq "$code" 401 "wrong login ID on gw-b"

# -- node A dies right after its acknowledged logins
kill -KILL "$PID_A"
sk_wait_exit "$PID_A" 10
sk_assert_eq "$SK_EXIT_STATUS" 137 "gw-a exit status after SIGKILL"
PID_A=""
DA=$SK_TMP/state-gw-a/audit
DB=$SK_TMP/state-gw-b/audit
KA=$SK_TMP/state-gw-a/audit.key.pub
KB=$SK_TMP/state-gw-b/audit.key.pub
ls "$DA"/audit-gw-a-*.jsonl >/dev/null 2>&1 || sk_fail "no node-named segment in $DA: $(ls "$DA")"
ls "$DB"/audit-gw-b-*.jsonl >/dev/null 2>&1 || sk_fail "no node-named segment in $DB: $(ls "$DB")"

both=(--dir "$DA" --dir "$DB" --pubkey "$KA" --pubkey "$KB")
rc=0
out=$("$SK_BIN/sekishoctl" -c "$SK_TMP/gw-b.conf" audit verify "${both[@]}" 2>&1) || rc=$?
sk_assert_eq "$rc" 0 "verify over both nodes after SIGKILL of gw-a: $out"
sk_assert_contains "$out" "== node gw-a: $DA" "gw-a reported"
sk_assert_contains "$out" "== node gw-b: $DB" "gw-b reported"
sk_assert_contains "$out" "nodes: 2 verified, 0 failed" "summary"
sk_assert_eq "$(grep -c '^OK: entries 1\.\.' <<<"$out")" 2 "both chains verified from their first entry"

X=$SK_TMP/merged.jsonl
"$SK_BIN/sekishoctl" -c "$SK_TMP/gw-b.conf" audit export --dir "$DA" --dir "$DB" >"$X" 2>"$SK_TMP/export.err" ||
    sk_fail "merged export: $(cat "$SK_TMP/export.err")"
jq -e -s 'length > 0 and all(type == "object" and (.node == "gw-a" or .node == "gw-b"))' "$X" >/dev/null ||
    sk_fail "every exported line names gw-a or gw-b: $(head -c 300 "$X")"
sk_assert_eq "$(jq -s '[.[] | select(.ev == "login.success" and .node == "gw-a" and .actor == "alice")] | length' "$X")" \
    "${acked[gw-a]}" "gw-a's acknowledged logins in its log after SIGKILL"
sk_assert_eq "$(jq -s '[.[] | select(.ev == "login.success" and .node == "gw-b" and .actor == "alice")] | length' "$X")" \
    "${acked[gw-b]}" "gw-b's logins"
sk_assert_eq "$(jq -s '[.[] | select(.ev == "login.failure" and .node == "gw-b" and .details.login_id == "probe-gw-b")] | length' "$X")" \
    1 "gw-b's refused login"
jq -r .ts "$X" | sort -c || sk_fail "merged export not ordered by time"

"$SK_BIN/sekishoctl" -c "$SK_TMP/gw-b.conf" audit show --dir "$DA" --dir "$DB" --event 'login.*' >"$SK_TMP/show.txt" ||
    sk_fail "merged show"
sk_assert_eq "$(wc -l <"$SK_TMP/show.txt")" 7 "merged show: 6 logins + 1 failure"
sk_assert_eq "$(grep -c ' \[gw-a\] #[0-9]* login.success user=alice' "$SK_TMP/show.txt")" 3 "gw-a's logins named"
sk_assert_eq "$(grep -c ' \[gw-b\] #[0-9]* login.success user=alice' "$SK_TMP/show.txt")" 3 "gw-b's logins named"
# the logins alternated A, B, A, B, ...: the merge by time shows them so
sk_assert_eq "$(grep login.success "$SK_TMP/show.txt" | grep -o '\[gw-[ab]\]' | tr -d '\n')" \
    "[gw-a][gw-b][gw-a][gw-b][gw-a][gw-b]" "merged show in time order"

# -- the dead node's directory belongs to gw-a: a tool configured as another node refuses
sed 's|^node = gw-a$|node = gw-x|' "$SK_TMP/gw-a.conf" >"$SK_TMP/gw-x.conf"
rc=0
"$SK_BIN/sekishoctl" -c "$SK_TMP/gw-x.conf" user add bob --tenant acme --role admin \
    --password-file "$SK_TMP/secrets/alice.pw" >"$SK_TMP/x.out" 2>&1 </dev/null || rc=$?
sk_assert_eq "$rc" 1 "sekishoctl as node gw-x on gw-a's audit directory: $(cat "$SK_TMP/x.out")"
sk_assert_contains "$(cat "$SK_TMP/x.out")" "holds the log of node gw-a" "the clash is named"

# -- restart A (recovers its log), stop both cleanly, still verifies
use_node gw-a
sk_start_gateway
PID_A=$SK_GW_PID
sk_login alice >/dev/null
sk_stop_gateway
PID_A=""
use_node gw-b
sk_stop_gateway
PID_B=""
out=$("$SK_BIN/sekishoctl" -c "$SK_TMP/gw-b.conf" audit verify "${both[@]}" 2>&1) ||
    sk_fail "verify after restart and clean stops: $out"
rc=0
pout=$(python3 "$PYV" --pubkey "$KA" --pubkey "$KB" "$DA" "$DB" 2>&1) || rc=$?
sk_assert_eq "$rc" 0 "python verifier over both nodes: $pout"

# -- one byte of gw-b's log changed: verify fails and names gw-b; gw-a still passes
T=$SK_TMP/tampered
rm -rf "$T"
mkdir -p "$T"
cp -r "$DA" "$T/a"
cp -r "$DB" "$T/b"
seg=$(ls "$T"/b/audit-gw-b-*.jsonl | tail -1)
line=$(grep -n '"ev":"login.success"' "$seg" | head -1 | cut -d: -f1)
[[ -n $line ]] || sk_fail "no login.success in $seg"
sed -i "${line}s/\"actor\":\"alice\"/\"actor\":\"alicf\"/" "$seg"
rc=0
out=$("$SK_BIN/sekishoctl" -c "$SK_TMP/gw-b.conf" audit verify --dir "$T/a" --dir "$T/b" --pubkey "$KA" \
    --pubkey "$KB" 2>"$SK_TMP/verify.err") || rc=$?
sk_assert_eq "$rc" 1 "verify over both nodes with gw-b tampered"
sk_assert_contains "$out" "nodes: 1 verified, 1 failed (gw-b)" "summary names gw-b"
sk_assert_match "$(grep -A1 '^== node gw-b' <<<"$out" | tail -1)" \
    "^FAIL: edited: $(basename "$seg") line $line, " "gw-b's verdict"
sk_assert_match "$(grep -A1 '^== node gw-a' <<<"$out" | tail -1)" '^OK: entries 1\.\.' "gw-a's verdict"
sk_assert_contains "$(cat "$SK_TMP/verify.err")" "node gw-b: edited at $(basename "$seg") line $line" "stderr names gw-b"
rc=0
pout=$(python3 "$PYV" --pubkey "$KA" --pubkey "$KB" "$T/a" "$T/b" 2>&1) || rc=$?
sk_assert_eq "$rc" 1 "python verifier with gw-b tampered: $pout"
sk_assert_contains "$pout" "FAIL: edited: $(basename "$seg") line $line," "python verdict"
sk_assert_contains "$pout" "node gw-b: FAIL" "python names gw-b"
sk_pass
