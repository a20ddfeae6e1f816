#!/bin/bash
# Format 3 (several nodes), through the API and the code behind `sekishoctl audit`,
# with the independent Python verifier agreeing on every verdict:
# - a format 2 directory continued by a named node: the chain goes on in the unnamed
#   segment, the next day's rotation starts audit-<node>-YYYYMMDD.jsonl, pruning
#   works across the rename, and a writer of another node is refused;
# - two nodes' directories verified together (one key each, or the wrong pairing),
#   shown and exported merged by time;
# - relabelling (a node field or a segment file name) fails verification.
. "$(dirname "$0")/lib.sh"
PYV="$(dirname "$0")/../../../tools/audit-verify/audit_verify.py"
K="$SK_TMP/a.key"; D="$SK_TMP/a"; K2="$SK_TMP/b.key"; D2="$SK_TMP/b"
DAY=86400; START=1704067200   # 2024-01-01
ctl "$D" "$K" keygen >/dev/null || bad "keygen a"
ctl "$D2" "$K2" keygen >/dev/null || bad "keygen b"
# same first line (kind, segment, line) from both verifiers
agree() { [ "$(head -1 <<<"$1" | cut -d, -f1)" = "$(head -1 <<<"$2" | cut -d, -f1)" ]; }

# -- the upgrade: 3 unnamed days, then node alpha for 3 days (retention 30 days)
"$DRV" days "$D" "$K" 3 30 "$START" || bad "format 2 days"
SK_AUDIT_NODE=alpha "$DRV" days "$D" "$K" 3 30 $((START + 3 * DAY)) || bad "alpha days"
segs=$(cd "$D" && ls audit-*.jsonl | tr '\n' ' ')
[ "$segs" = "audit-20240101.jsonl audit-20240102.jsonl audit-20240103.jsonl audit-alpha-20240104.jsonl audit-alpha-20240105.jsonl audit-alpha-20240106.jsonl " ] \
    && ok "the rotation after the upgrade starts node-named segments: $segs" || bad "segments: $segs"
grep -q '"prev_segment":"audit-20240103.jsonl"' "$D/audit-alpha-20240104.jsonl" \
    && ok "the first named segment chains to the last unnamed one" || bad "prev_segment"
! grep -q '"node"' "$D/audit-20240101.jsonl" && [ "$(grep -c '"node":"alpha"' "$D/audit-alpha-20240105.jsonl")" = "$(wc -l <"$D/audit-alpha-20240105.jsonl")" ] \
    && ok "entries before the upgrade carry no node, every entry after it does" || bad "node fields"
out=$(ctl "$D" "$K" verify); rc=$?
pout=$(python3 "$PYV" --pubkey "$K.pub" "$D"); prc=$?
[ $rc -eq 0 ] && [ $prc -eq 0 ] && [[ $out == "OK: entries 1.."* ]] && agree "$out" "$pout" \
    && ok "the upgraded log verifies (both verifiers): $pout" || bad "upgraded: $rc $out / $prc $pout"

# a writer of another node refuses the directory, and says whose it is
err=$(SK_AUDIT_NODE=beta "$DRV" append "$D" "$K" 1 2>&1); rc=$?
[ $rc -ne 0 ] && grep -q "holds the log of node alpha" <<<"$err" \
    && ok "another node's writer is refused: $err" || bad "node clash: rc=$rc $err"

# -- pruning across the rename (a copy; retention 3 days)
rm -rf "$SK_TMP/pruned"; cp -r "$D" "$SK_TMP/pruned"; cp "$K" "$SK_TMP/p.key"; cp "$K.pub" "$SK_TMP/p.key.pub"
cp "$K.head" "$SK_TMP/p.key.head" 2>/dev/null
SK_AUDIT_NODE=alpha "$DRV" days "$SK_TMP/pruned" "$SK_TMP/p.key" 3 3 $((START + 6 * DAY)) || bad "pruning days"
first=$(cd "$SK_TMP/pruned" && ls audit-*.jsonl | head -1)
out=$(ctl "$SK_TMP/pruned" "$SK_TMP/p.key" verify); rc=$?
pout=$(python3 "$PYV" --pubkey "$K.pub" "$SK_TMP/pruned"); prc=$?
[[ $first == audit-alpha-* ]] && [ $rc -eq 0 ] && [ $prc -eq 0 ] && agree "$out" "$pout" && ! [[ $out == "OK: entries 1.."* ]] \
    && ok "pruned across the rename, still verifies (both): $pout" || bad "pruned: $first $rc $out / $prc $pout"

# -- relabelling fails
rm -rf "$SK_TMP/t"; cp -r "$D" "$SK_TMP/t"
sed -i '3s/"node":"alpha"/"node":"alphb"/' "$SK_TMP/t/audit-alpha-20240105.jsonl"
out=$(ctl "$SK_TMP/t" "$K" verify 2>/dev/null); rc=$?
pout=$(python3 "$PYV" --pubkey "$K.pub" "$SK_TMP/t"); prc=$?
[ $rc -eq 1 ] && [ $prc -eq 1 ] && grep -q "^FAIL: edited: audit-alpha-20240105.jsonl line 3," <<<"$out" && agree "$out" "$pout" \
    && ok "a relabelled entry fails (both): $out" || bad "relabel entry: $rc $out / $prc $pout"
rm -rf "$SK_TMP/t"; cp -r "$D" "$SK_TMP/t"
mv "$SK_TMP/t/audit-alpha-20240106.jsonl" "$SK_TMP/t/audit-beta-20240106.jsonl"
out=$(ctl "$SK_TMP/t" "$K" verify 2>/dev/null); rc=$?
pout=$(python3 "$PYV" --pubkey "$K.pub" "$SK_TMP/t"); prc=$?
[ $rc -eq 1 ] && [ $prc -eq 1 ] && grep -q "^FAIL: reordered: audit-beta-20240106.jsonl line 1," <<<"$out" && agree "$out" "$pout" \
    && ok "a renamed segment fails (both): $out" || bad "rename segment: $rc $out / $prc $pout"

# -- two nodes: beta in its own directory with its own key, days overlapping alpha's
SK_AUDIT_NODE=beta "$DRV" days "$D2" "$K2" 3 30 $((START + 4 * DAY)) || bad "beta days"
out=$(ctl "$D" "$K" verify --dir "$D" --dir "$D2" --pubkey "$K.pub" --pubkey "$K2.pub"); rc=$?
[ $rc -eq 0 ] && grep -q "^== node alpha: $D\$" <<<"$out" && grep -q "^== node beta: $D2\$" <<<"$out" \
    && [ "$(grep -c '^OK: entries' <<<"$out")" = 2 ] && grep -q "^nodes: 2 verified, 0 failed$" <<<"$out" \
    && ok "two nodes verify, each with its key: $(tr '\n' '|' <<<"$out")" || bad "two nodes: rc=$rc $out"
pout=$(python3 "$PYV" --pubkey "$K.pub" --pubkey "$K2.pub" "$D" "$D2"); prc=$?
[ $prc -eq 0 ] && grep -q "^node alpha: OK" <<<"$pout" && grep -q "^node beta: OK" <<<"$pout" \
    && ok "python verifier: two nodes OK" || bad "python two nodes: $prc $pout"
out=$(ctl "$D" "$K" verify --dir "$D" --dir "$D2" --pubkey "$K2.pub" --pubkey "$K.pub" 2>"$SK_TMP/err"); rc=$?
pout=$(python3 "$PYV" --pubkey "$K2.pub" --pubkey "$K.pub" "$D" "$D2"); prc=$?
[ $rc -eq 1 ] && [ $prc -eq 1 ] && [ "$(grep -c '^FAIL: unknown key' <<<"$out")" = 2 ] && grep -q "^nodes: 0 verified, 2 failed (alpha, beta)$" <<<"$out" \
    && [ "$(grep -c '^FAIL: unknown key' <<<"$pout")" = 2 ] && grep -q "node beta: unknown key" "$SK_TMP/err" \
    && ok "keys given in the wrong order: both nodes fail (both verifiers)" || bad "swapped keys: $rc $out / $prc $pout"
ctl "$D" "$K" verify --dir "$D" --dir "$D2" --pubkey "$K.pub" --pubkey "$K2.pub" --pubkey "$K.pub" >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] && ok "three keys for two directories: usage error" || bad "3 keys: rc=$rc"
out=$(ctl "$D" "$K" verify --dir "$D" --dir "$D" --pubkey "$K.pub" 2>/dev/null); rc=$?
[ $rc -eq 1 ] && grep -q "^FAIL: node alpha: both" <<<"$out" && ok "the same node twice fails" || bad "twice: rc=$rc $out"
out=$(ctl "$D" "$K" show --dir "$D" --dir "$D" 2>&1); rc=$?
[ $rc -eq 1 ] && grep -q "node alpha: both" <<<"$out" && ok "show refuses the same node twice" || bad "show twice: $rc $out"

# -- merged show/export: time-ordered, every line names its node
ctl "$D" "$K" export --dir "$D" --dir "$D2" >"$SK_TMP/merged.jsonl" || bad "merged export"
n=$(wc -l <"$SK_TMP/merged.jsonl"); n1=$(cat "$D"/audit-*.jsonl | wc -l); n2=$(cat "$D2"/audit-*.jsonl | wc -l)
[ "$n" = $((n1 + n2)) ] && ok "merged export has every line of both nodes ($n)" || bad "merged export: $n != $n1 + $n2"
jq -r .ts <"$SK_TMP/merged.jsonl" | sort -c 2>/dev/null && ok "merged export is ordered by time" || bad "merged export order"
ctl "$D" "$K" show --dir "$D" --dir "$D2" >"$SK_TMP/merged.txt" || bad "merged show"
[ "$(wc -l <"$SK_TMP/merged.txt")" = "$n" ] && [ "$(grep -c '^[0-9-]* [0-9:.]* JST \[alpha\] #' "$SK_TMP/merged.txt")" = "$n1" ] \
    && [ "$(grep -c '^[0-9-]* [0-9:.]* JST \[beta\] #' "$SK_TMP/merged.txt")" = "$n2" ] \
    && ok "merged show names the node on every line (the upgraded log's older entries under its node)" \
    || bad "merged show: $(head -3 "$SK_TMP/merged.txt")"
cut -d' ' -f1,2 "$SK_TMP/merged.txt" | sort -c 2>/dev/null && ok "merged show is ordered by time" || bad "merged show order"
# each node's entries stay in chain order within the merge
for node in alpha beta; do
    grep "\[$node\]" "$SK_TMP/merged.txt" | sed -E 's/.* #([0-9]+) .*/\1/' | sort -n -c 2>/dev/null \
        && ok "$node's entries in sequence order" || bad "$node order"
done
c=$(ctl "$D" "$K" show --dir "$D" --dir "$D2" --event admin.change --since 2024-01-05 --until 2024-01-06 | grep -c '\[beta\]')
[ "$c" -ge 1 ] && ok "filters apply to the merged stream ($c beta admin.change on 2024-01-05)" || bad "filtered merge: $c"
# one --dir: the single-directory output, unchanged
[ "$(ctl "$D" "$K" show --dir "$D2")" = "$(ctl "$D2" "$K2" show)" ] && ok "one --dir: output as without it" || bad "one --dir show"
finish
