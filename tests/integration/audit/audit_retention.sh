#!/bin/bash
# Retention pruning keeps verification; pruning is logged; export round trip.
. "$(dirname "$0")/lib.sh"
K="$SK_TMP/audit.key"; D="$SK_TMP/audit"
ctl "$D" "$K" keygen >/dev/null || bad "keygen"
"$DRV" days "$D" "$K" 20 5 || bad "simulated days"
n=$(ls "$D"/audit-*.jsonl | wc -l)
[ "$n" -ge 5 ] && [ "$n" -le 7 ] && ok "$n segments kept of 20 days" || bad "$n segments kept"
out=$(ctl "$D" "$K" verify); rc=$?
first=$(head -1 <<<"$out" | sed -E "s/^OK: entries ([0-9]+)\\..*/\\1/")
[ $rc -eq 0 ] && [ "$first" -gt 1 ] && ok "pruned log verifies: $out" || bad "pruned verify rc=$rc: $out"
PYV="$(dirname "$0")/../../../tools/audit-verify/audit_verify.py"
pout=$(python3 "$PYV" --pubkey "$K.pub" "$D"); rc=$?
[ $rc -eq 0 ] && [[ "$pout" == "OK: entries $first.."* ]] && ok "python verifier agrees on the pruned log: $pout" \
    || bad "python verifier on the pruned log: rc=$rc $pout"
# the pruned log reaches its first retained epoch's key only through epochs.jsonl
rm -rf "$SK_TMP/noepochs"; cp -r "$D" "$SK_TMP/noepochs"; rm "$SK_TMP/noepochs/epochs.jsonl"
out=$(ctl "$SK_TMP/noepochs" "$K" verify 2>/dev/null); rc=$?
pout=$(python3 "$PYV" --pubkey "$K.pub" "$SK_TMP/noepochs"); prc=$?
[ $rc -eq 1 ] && grep -q "^FAIL: unknown key: " <<<"$out" && [ $prc -eq 1 ] && \
    [ "$(head -1 <<<"$out" | cut -d, -f1)" = "$(cut -d, -f1 <<<"$pout")" ] \
    && ok "without epochs.jsonl the first retained epoch's key is unknown (both verifiers)" \
    || bad "no epochs.jsonl: rc=$rc $out / $prc $pout"
[ "$(ctl "$D" "$K" export --event audit.prune | wc -l)" -ge 1 ] && ok "prune is logged" || bad "no prune entry"
ctl "$D" "$K" export | cmp -s - <(cat "$D"/audit-*.jsonl) && ok "export round trip" || bad "export differs"
oldest=$(ls "$D"/audit-*.jsonl | head -1); rm "$oldest"
out=$(ctl "$D" "$K" verify 2>/dev/null); rc=$?
[ $rc -eq 1 ] && grep -q "^FAIL: deleted" <<<"$out" && ok "removing a retained segment is detected: $out" || bad "rc=$rc $out"
pout=$(python3 "$PYV" --pubkey "$K.pub" "$D"); rc=$?
[ $rc -eq 1 ] && [ "$(head -1 <<<"$out" | cut -d: -f1-3)" = "$(cut -d: -f1-3 <<<"$pout")" ] \
    && ok "python verifier agrees: $pout" || bad "python verifier: rc=$rc $pout"
finish
