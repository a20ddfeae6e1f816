# shellcheck shell=bash
# tests/integration/adminaudit/aa_lib.sh — helpers of the admin audit tests
# (sourced after ../lib.sh and ../ctl/ctl_lib.sh).

# shellcheck disable=SC2034 # used by the scripts that source this file
AUDIT_DIR=$SK_TMP/state/audit

# aa_export FILE: `sekishoctl audit export` into FILE (must succeed, valid JSON Lines).
aa_export() {
    "$SK_BIN/sekishoctl" -c "$SK_CONF" audit export >"$1" 2>"$SK_TMP/export.err" </dev/null ||
        sk_fail "audit export: $(cat "$SK_TMP/export.err")"
    jq -e . "$1" >/dev/null 2>&1 || sk_fail "audit export is not JSON Lines: $(head -c 400 "$1")"
}

# aa_verify: `sekishoctl audit verify` exits 0 and says OK.
aa_verify() {
    local out rc=0
    out=$("$SK_BIN/sekishoctl" -c "$SK_CONF" audit verify 2>&1 </dev/null) || rc=$?
    [[ $rc == 0 ]] || sk_fail "audit verify exit $rc: $out"
    sk_assert_match "$out" '^OK: entries 1\.\.[0-9]+ verified' "audit verify output"
}

# aa_count FILE JQFILTER: number of entries of FILE for which JQFILTER is true.
aa_count() { jq -c "select($2)" "$1" | wc -l | tr -d ' '; }

# aa_admin FILE COMMAND: the admin.change entries of COMMAND, one compact JSON a line.
aa_admin() { jq -c --arg c "$2" 'select(.ev == "admin.change" and .details.command == $c)' "$1"; }

# aa_field JSONLINE JQEXPR: jq -r of one entry.
aa_field() { jq -r "$2" <<<"$1"; }
