# Shared helpers for the audit integration tests (sourced).
set -u
: "${SK_BIN:?}" "${SK_TMP:?}"
DRV="$SK_BIN/sk_audit_testdrv"
rm -rf "$SK_TMP" && mkdir -p "$SK_TMP"
fails=0
ok()   { echo "ok - $*"; }
bad()  { echo "not ok - $*"; fails=$((fails + 1)); }
ctl()  { local d=$1 k=$2; shift 2; "$DRV" ctl "$d" "$k" Asia/Tokyo "$@"; }
# expect_fail NAME DIR KEY KIND LINE [verify args...]
expect_fail() {
    local name=$1 d=$2 k=$3 kind=$4 line=$5; shift 5
    local out rc
    out=$(ctl "$d" "$k" verify "$@" 2>/dev/null); rc=$?
    if [ "$rc" -eq 1 ] && printf '%s' "$out" | grep -q "^FAIL: $kind: .* line $line,"; then
        ok "$name: $out"
    else
        bad "$name: rc=$rc out=$out (wanted '$kind' at line $line)"
    fi
}
finish() {
    if [ "$fails" -ne 0 ]; then echo "$fails failure(s)"; exit 1; fi
    echo "all passed"; exit 0
}
