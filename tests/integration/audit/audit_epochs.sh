#!/bin/bash
# Forward-secure epochs with the real clock: an idle writer's heartbeat thread
# hands off to a new key every epoch and signs a checkpoint each time, the old
# private key is gone from the key directory, every checkpoint reaches the
# witness command, `audit head` prints the newest one, and verify --witness
# accepts them all. Then: a clock jumped a year ahead before a command prunes
# nothing.
. "$(dirname "$0")/lib.sh"
K="$SK_TMP/keys/audit.key"; D="$SK_TMP/audit"; W="$SK_TMP/witness.log"
mkdir -p "$SK_TMP/keys"
out=$(ctl "$D" "$K" keygen) || bad "keygen"
grep -q "initial verification key" <<<"$out" && grep -q "BEGIN PUBLIC KEY" <<<"$out" \
    && ok "keygen prints the initial verification key" || bad "keygen output: $out"
head -1 "$K" | grep -q "epoch=0 " && ok "key file starts at epoch 0" || bad "key header: $(head -1 "$K")"
OLDKEY=$(sed -n '3p' "$K")   # the base64 line of epoch 0's private key (holds its seed)
grep -q '^MC4CAQAwBQYDK2Vw' <<<"$OLDKEY" || bad "unexpected key file layout"

# An idle writer for 7 s with 2 s epochs; the witness command keeps every note.
: > "$W"
SK_AUDIT_EPOCH_S=2 SK_AUDIT_WITNESS="cat >> '$W'" "$DRV" idle "$D" "$K" 7 > "$SK_TMP/idle.out" 2>"$SK_TMP/idle.err" &
pid=$!
for _ in $(seq 50); do grep -q open "$SK_TMP/idle.out" 2>/dev/null && break; sleep 0.1; done
sleep 3.5
out=$(ctl "$D" "$K" verify); rc=$?
[ $rc -eq 0 ] && grep -q "^OK: " <<<"$out" && ok "verify while the writer runs: $(tr '\n' ' ' <<<"$out")" \
    || bad "verify while running: rc=$rc $out"
wait "$pid" || bad "idle writer failed: $(cat "$SK_TMP/idle.err")"

out=$(ctl "$D" "$K" verify); rc=$?
last=$(sed -nE 's/^epochs: ([0-9]+)\.\.([0-9]+).*/\2/p' <<<"$out")
[ $rc -eq 0 ] && [ "${last:-0}" -ge 2 ] && ok "heartbeat evolved the key: epochs 0..$last" || bad "epochs: rc=$rc $out"
grep -q "closing" <<<"$out" && ok "closed log ends on a closing checkpoint" || bad "not closed: $out"
n=$(ctl "$D" "$K" export --event audit.checkpoint | grep -c '"reason":"epoch"')
[ "$n" -ge 2 ] && [ "$n" -eq "$last" ] && ok "one signed handoff checkpoint per epoch ($n)" || bad "handoffs $n vs epochs $last"
! grep -rqF -- "$OLDKEY" "$SK_TMP/keys" && ok "epoch 0's private key is gone from the key directory" \
    || bad "old private key still on disk"
[ ! -e "$K.next" ] && ok "no next-epoch key left behind" || bad "$K.next left"
head -1 "$K" | grep -q "epoch=$last " && ok "key file holds epoch $last only" || bad "key header: $(head -1 "$K")"
grep -q "^epoch $last " <(ctl "$D" "$K" head) && ok "audit head shows the current epoch" || bad "audit head: $(ctl "$D" "$K" head)"

# Witness: every checkpoint was handed over, the last one is `audit head`.
rm -f "$SK_TMP"/note.*
awk -v p="$SK_TMP/note." '{ print > (p n) } /^\xe2\x80\x94 / { close(p n); n++ }' n=0 "$W"
notes=$(ls "$SK_TMP"/note.* 2>/dev/null | wc -l)
cps=$(ctl "$D" "$K" export --event audit.checkpoint | wc -l)
[ "$notes" -eq "$cps" ] && ok "witness got all $cps checkpoints" || bad "witness got $notes of $cps"
cmp -s <(ctl "$D" "$K" head) "$SK_TMP/note.$((notes - 1))" && ok "audit head equals the last witnessed checkpoint" \
    || bad "audit head differs from the last note"
out=$(ctl "$D" "$K" verify --witness "$SK_TMP"/note.*); rc=$?
[ $rc -eq 0 ] && [ "$(grep -c ': checkpoint [0-9]* present' <<<"$out")" -eq "$notes" ] \
    && ok "verify --witness: all $notes present" || bad "verify --witness rc=$rc $out"
sed -i '1s/.*/sekisho-audit\/0000000000000000000000000000000000000000000000000000000000000000/' "$SK_TMP/note.0"
out=$(ctl "$D" "$K" verify --witness "$SK_TMP/note.0" 2>/dev/null); rc=$?
[ $rc -eq 1 ] && grep -q "another log" <<<"$out" && ok "a witness of another log is refused" || bad "foreign witness: rc=$rc $out"

# A clock jumped a year ahead before a command: retention (365 d) would find every
# segment expired; the writer prunes nothing and says why.
D2="$SK_TMP/audit2"; K2="$SK_TMP/keys/two.key"
ctl "$D2" "$K2" keygen >/dev/null || bad "keygen 2"
"$DRV" days "$D2" "$K2" 8 5000 $(( $(date +%s) - 8 * 86400 )) 2>/dev/null || bad "eight days"
n1=$(ls "$D2"/audit-2*.jsonl | wc -l)
ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" faketime -f '+365d' "$DRV" append "$D2" "$K2" 3 >/dev/null 2>"$SK_TMP/jump.err"; rc=$?
n2=$(ls "$D2"/audit-2*.jsonl | wc -l)
[ $rc -eq 0 ] && [ "$n2" -gt "$n1" ] && grep -q "retention pruning skipped" "$SK_TMP/jump.err" \
    && ok "clock a year ahead: nothing pruned ($n1 -> $n2 segments)" || bad "clock jump: rc=$rc $n1 -> $n2 $(cat "$SK_TMP/jump.err")"
out=$(ctl "$D2" "$K2" verify); rc=$?
[ $rc -eq 0 ] && ok "log verifies after the jump" || bad "verify after jump: $out"
# the same command on a sane clock prunes nothing either (nothing is a year old)
"$DRV" append "$D2" "$K2" 1 >/dev/null 2>&1 || bad "append on a sane clock"
finish
