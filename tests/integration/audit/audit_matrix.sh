#!/bin/bash
# The tamper matrix of issue 12: each tampering must fail verification at the
# right place with the right kind, in BOTH verifiers (sekishoctl's C code and the
# independent tools/audit-verify/audit_verify.py), and the writer must refuse or
# record what it cannot authenticate. The base log spans six days and seven key
# epochs (the test driver's fake clock), so epochs, rotation and handoffs are real.
. "$(dirname "$0")/lib.sh"
TAMPER="python3 $(dirname "$0")/tamper.py"
PYV="$(dirname "$0")/../../../tools/audit-verify/audit_verify.py"
K="$SK_TMP/keys/audit.key"; D="$SK_TMP/audit"
mkdir -p "$SK_TMP/keys"
ctl "$D" "$K" keygen >/dev/null || bad "keygen"
start=$(( $(date +%s) - 6 * 86400 ))
"$DRV" days "$D" "$K" 6 5000 "$start" 2>/dev/null || bad "six days of log"
mapfile -t SEGS < <(cd "$D" && ls audit-2*.jsonl)
[ "${#SEGS[@]}" -eq 6 ] && ok "six segments" || bad "segments: ${SEGS[*]}"
ctl "$D" "$K" head > "$SK_TMP/w.final" || bad "audit head"
out=$(ctl "$D" "$K" verify --witness "$SK_TMP/w.final"); rc=$?
[ $rc -eq 0 ] && grep -q '^epochs: 0\.\.[1-9]' <<<"$out" && grep -q "present" <<<"$out" \
    && ok "base log verifies over several epochs, witness present" || bad "base: rc=$rc $out"
out=$(python3 "$PYV" --pubkey "$K.pub" --witness "$SK_TMP/w.final" "$D"); rc=$?
[ $rc -eq 0 ] && grep -q "^OK: entries 1\.\." <<<"$out" && ok "python verifier: $out" || bad "python base: rc=$rc $out"

# Both verifiers; they must agree on the kind and the place.
# expect NAME DIR KIND SEGMENT LINE [verify args...]
expect() {
    local name=$1 d=$2 kind=$3 seg=$4 line=$5; shift 5
    local out rc pout prc
    out=$(ctl "$d" "$K" verify "$@" 2>/dev/null); rc=$?
    if [ "$rc" -eq 1 ] && grep -q "^FAIL: $kind: $seg line $line," <<<"$out"; then
        ok "$name: $(head -1 <<<"$out")"
    else
        bad "$name: rc=$rc out=$out (wanted '$kind' at $seg line $line)"
    fi
    if [ -f "$PYV" ]; then
        pout=$(python3 "$PYV" --pubkey "$K.pub" "$@" "$d" 2>/dev/null); prc=$?
        if [ "$prc" -eq 1 ] && grep -q "^FAIL: $kind: $seg line $line," <<<"$pout"; then
            ok "$name (python verifier agrees)"
        else
            bad "$name: python verifier rc=$prc out=$pout"
        fi
    fi
}
# A tampered copy, and a copy of the key state for writers run on it (the real
# key file and its remembered head belong to $D).
fresh() {
    rm -rf "$SK_TMP/t" "$SK_TMP/k2"; cp -r "$D" "$SK_TMP/t"; T="$SK_TMP/t"
    mkdir "$SK_TMP/k2"; cp -p "$K" "$K.pub" "$K.head" "$SK_TMP/k2/"; K2="$SK_TMP/k2/audit.key"
}
lineof() { grep -n "$2" "$T/$1" | sed -n "${3:-1}p" | cut -d: -f1; }
S1=${SEGS[1]}; S2=${SEGS[2]}; S3=${SEGS[3]}; S4=${SEGS[4]}; S5=${SEGS[5]}

# 1. one byte edited
fresh; L=$(lineof "$S2" '"ev":"admin.change"'); sed -i "${L}s/\"operator\"/\"operatoR\"/" "$T/$S2"
expect "byte edit" "$T" edited "$S2" "$L"
# 2. a middle entry deleted
fresh; L=$(lineof "$S2" '"ev":"http.request"'); sed -i "${L}d" "$T/$S2"
expect "deleted middle entry" "$T" deleted "$S2" "$L"
# 3. two entries swapped
fresh; L=$(lineof "$S2" '"ev":"http.request"'); sed -i -n "${L}{h;n;G};p" "$T/$S2"
expect "reordered entries" "$T" reordered "$S2" "$L"
# 4. the tail cut off (last entry and the closing checkpoint), with a witness
fresh; n=$(wc -l < "$T/$S5"); sed -i "$((n - 1)),\$d" "$T/$S5"
expect "truncated tail (witness)" "$T" truncated "$S5" "$((n - 2))" --witness "$SK_TMP/w.final"
#    ... and cut right after a (non-closing) checkpoint, without a witness: no
#    heartbeat followed it within an epoch
fresh; L=$(lineof "$S5" '"ev":"audit.checkpoint"'); sed -i "$((L + 1)),\$d" "$T/$S5"
expect "cut right after a checkpoint" "$T" truncated "$S5" "$L"
# 5. the newest segment deleted, with a witness; without one, the rotation names it
fresh; rm "$T/$S5"
expect "deleted newest segment (witness)" "$T" truncated "$S4" "$(wc -l < "$T/$S4")" \
    --witness "$SK_TMP/w.final"
expect "deleted newest segment" "$T" truncated "$S4" "$(wc -l < "$T/$S4")"
# 6. two segments swapped
fresh; mv "$T/$S2" "$T/x"; mv "$T/$S3" "$T/$S2"; mv "$T/x" "$T/$S3"
expect "swapped segments" "$T" reordered "$S2" 1
# 7. a history rewritten and re-signed with the current epoch key (forward security):
#    the first checkpoint after the edit belongs to an earlier epoch
fresh; L=$(lineof "$S1" '"ev":"admin.change"')
$TAMPER rewrite "$T" "$K" "$S1" "$L" '"operator"' '"someone"' || bad "tamper rewrite"
C=$(awk -v l="$L" 'NR >= l && /"ev":"audit.checkpoint"/ { print NR; exit }' "$T/$S1")
expect "history re-signed with the current key" "$T" "wrong epoch key" "$S1" "$C"
#    ... and from the very first entry: epoch 0's key is the auditors' own copy
fresh; C=$(lineof "${SEGS[0]}" '"ev":"audit.checkpoint"')
$TAMPER rewrite "$T" "$K" "${SEGS[0]}" "$C" '"reason":"epoch"' '"reason":"epocH"' || bad "tamper rewrite"
expect "whole history re-signed" "$T" "unknown key" "${SEGS[0]}" "$C"
#    ... inside the current epoch the stolen key signs validly: only a witness tells
fresh; L=$(lineof "$S5" '"ev":"admin.change"')
$TAMPER rewrite "$T" "$K" "$S5" "$L" '"operator"' '"someone"' || bad "tamper rewrite"
out=$(ctl "$T" "$K" verify 2>/dev/null) && ok "current epoch rewritten with its own key: no witness, no proof" \
    || bad "current-epoch rewrite without witness: $out"
expect "current epoch rewritten (witness)" "$T" edited "$S5" "$(wc -l < "$T/$S5")" --witness "$SK_TMP/w.final"
# 8. truncate-and-extend: a checkpoint signed with a later epoch's key
fresh; L=$(lineof "$S2" '"ev":"login.success"'); E=$(grep -o '"epoch":[0-9]*' "$T/$S2" | tail -1 | cut -d: -f2)
$TAMPER extend "$T" "$K" "$S2" "$L" "$E" || bad "tamper extend"
expect "forged checkpoint, later epoch's key" "$T" "wrong epoch key" "$S2" "$((L + 2))"
# 9. ... claiming the later epoch itself: the epochs in between are missing
fresh; L=$(lineof "$S2" '"ev":"login.success"'); E=$(head -1 "$K" | sed -E 's/.*epoch=([0-9]+).*/\1/')
$TAMPER extend "$T" "$K" "$S2" "$L" "$E" || bad "tamper extend"
expect "epoch gap" "$T" "epoch gap" "$S2" "$((L + 2))"
# 10. entries appended by hand (chained correctly, no key): not covered by any
#     checkpoint, and a writer refuses to continue after them
fresh; n=$(wc -l < "$T/$S5")
$TAMPER append "$T" audit.prune "oldest_kept=$S3" && $TAMPER append "$T" admin.change op=forged
expect "hand-appended entries" "$T" unsigned "$S5" "$((n + 1))"
out=$("$DRV" append "$T" "$K2" 1 2>&1); rc=$?
[ $rc -ne 0 ] && grep -q "ALARM" <<<"$out" && ok "writer refuses the forged tail" || bad "writer adopted a forged tail: rc=$rc $out"
expect "hand-appended entries, after the refused writer" "$T" unsigned "$S5" "$((n + 1))"
# 11. old segments deleted and a fake prune record appended to explain it
fresh; rm "$T/${SEGS[0]}" "$T/$S1"
$TAMPER append "$T" audit.prune "oldest_kept=$S2"
expect "fake prune record" "$T" deleted "$S2" 1
# 12. a log rolled back to an older copy of its newest segment (replayed), with a witness
fresh; cp "$T/$S5" "$SK_TMP/old-seg"
"$DRV" append "$T" "$K2" 3 >/dev/null 2>&1 || bad "append to the copy"
mapfile -t TS < <(cd "$T" && ls audit-2*.jsonl)
ctl "$T" "$K" head > "$SK_TMP/w.later"
for s in "${TS[@]}"; do [[ "$s" > "$S5" ]] && rm "$T/$s"; done
cp "$SK_TMP/old-seg" "$T/$S5"
expect "old segment replayed (witness)" "$T" truncated "$S5" "$(wc -l < "$T/$S5")" \
    --witness "$SK_TMP/w.final" "$SK_TMP/w.later"

# 13. the writer notices a cut on restart: audit.truncated, an alarm, and verify keeps
#     reporting the gap
cp -r "$D" "$SK_TMP/before-cut"
n=$(wc -l < "$D/$S5"); sed -i "$((n - 2)),\$d" "$D/$S5"
out=$(SK_AUDIT_NOTIFY="cat > '$SK_TMP/mail'" "$DRV" append "$D" "$K" 1 2>&1); rc=$?
[ $rc -eq 0 ] && grep -q "ALARM" <<<"$out" && ok "writer alarms on restart after a cut" || bad "no alarm: rc=$rc $out"
grep -q "^To: ops@example.org" "$SK_TMP/mail" && grep -q "cut off" "$SK_TMP/mail" \
    && ok "operators are mailed" || bad "no alarm mail: $(cat "$SK_TMP/mail" 2>&1)"
mapfile -t NS < <(cd "$D" && ls audit-2*.jsonl)
TL=$(grep -n '"ev":"audit.truncated"' "$D/${NS[-1]}" | cut -d: -f1)
[ -n "$TL" ] && grep '"ev":"audit.truncated"' "$D/${NS[-1]}" | grep -q "\"expected_seq\":$(( $(grep -c . "$SK_TMP/before-cut"/audit-2* | awk -F: '{s+=$2} END {print s}') ))" \
    && ok "audit.truncated names the expected position" || bad "no/incorrect audit.truncated"
T="$D"; expect "verify reports the recorded cut" "$D" truncated "${NS[-1]}" "$TL"
finish
