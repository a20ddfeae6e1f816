#!/bin/bash
# kill -9 during heavy logging: the log still verifies and holds every entry
# whose durable append was acknowledged (reported by the child on a pipe).
. "$(dirname "$0")/lib.sh"
K="$SK_TMP/audit.key"; D="$SK_TMP/audit"
PYV="$(dirname "$0")/../../../tools/audit-verify/audit_verify.py"
ctl "$D" "$K" keygen >/dev/null || bad "keygen"
: > "$SK_TMP/acked"
for round in 1 2 3; do
    rm -f "$SK_TMP/fifo"; mkfifo "$SK_TMP/fifo"
    cat "$SK_TMP/fifo" >> "$SK_TMP/acked" &
    catpid=$!
    "$DRV" crash "$D" "$K" > "$SK_TMP/fifo" &
    pid=$!
    sleep 1.5
    kill -9 "$pid"
    wait "$pid" 2>/dev/null
    wait "$catpid"
    n=$(wc -l < "$SK_TMP/acked")
    out=$(ctl "$D" "$K" verify); rc=$?
    [ $rc -eq 0 ] && ok "round $round: $n acknowledged so far; $(head -1 <<<"$out")" || bad "round $round verify rc=$rc: $out"
    pout=$(python3 "$PYV" --pubkey "$K.pub" "$D"); rc=$?
    [ $rc -eq 0 ] && ok "round $round: python verifier agrees ($pout)" || bad "round $round python verifier rc=$rc: $pout"
    "$DRV" check "$D" "$SK_TMP/acked" && ok "round $round: all acknowledged entries present" \
        || bad "round $round: acknowledged entries lost"
done
[ "$(wc -l < "$SK_TMP/acked")" -gt 100 ] && ok "heavy enough" || bad "too few acknowledged entries"
# after the crashes, a clean reopen/close signs everything
"$DRV" append "$D" "$K" 3 >/dev/null || bad "append after crash"
out=$(ctl "$D" "$K" verify); rc=$?
[ $rc -eq 0 ] && ! grep -q "not yet covered" <<<"$out" && ok "closed log fully signed" || bad "after close: $out"
finish
