#!/bin/bash
# Tamper with a log in every way and expect verify to point at the right place;
# export round trip; show in the display zone; keygen rules; exit codes.
. "$(dirname "$0")/lib.sh"
K="$SK_TMP/keys/audit.key"; D="$SK_TMP/audit"
mkdir -p "$SK_TMP/keys"

ctl "$D" "$K" keygen >/dev/null && ok "keygen" || bad "keygen"
[ "$(stat -c %a "$K")" = 600 ] && ok "key is 0600" || bad "key mode $(stat -c %a "$K")"
ctl "$D" "$K" keygen 2>/dev/null; [ $? -eq 1 ] && ok "keygen refuses to overwrite" || bad "keygen overwrote"
mkdir -p "$D"
ctl "$D" "$D/inside.key" keygen 2>/dev/null; rc=$?
[ $rc -eq 1 ] && [ ! -e "$D/inside.key" ] && ok "keygen refuses a key inside the audit dir" || bad "key inside audit dir (rc=$rc)"

"$DRV" append "$D" "$K" 200 >/dev/null || bad "append"
SEG=$(ls "$D"/audit-*.jsonl | head -1); SEGN=$(basename "$SEG")
out=$(ctl "$D" "$K" verify); rc=$?
if [ $rc -eq 0 ] && [[ "$out" == "OK: entries 1.."*" verified, "*" checkpoints, last signed at "* ]]; then ok "verify: $out"; else bad "verify rc=$rc $out"; fi

# verification on a copy with only the public key
mkdir -p "$SK_TMP/elsewhere"; cp -r "$D" "$SK_TMP/elsewhere/copy"; cp "$K.pub" "$SK_TMP/elsewhere/only.pub"
out=$(ctl "$SK_TMP/elsewhere/copy" "" verify --pubkey "$SK_TMP/elsewhere/only.pub"); rc=$?
[ $rc -eq 0 ] && ok "verify on a copy with only the .pub" || bad "copy verify rc=$rc $out"

# export round trip: the exported lines are exactly the stored entries
ctl "$D" "$K" export > "$SK_TMP/export.jsonl" && cat "$D"/audit-*.jsonl | cmp -s - "$SK_TMP/export.jsonl" \
    && ok "export equals the stored entries" || bad "export differs"
n1=$(ctl "$D" "$K" export --event login.failure | wc -l)
n2=$(grep -c '"ev":"login.failure"' "$SEG")
[ "$n1" -gt 0 ] && [ "$n1" = "$n2" ] && ok "export --event filters ($n1)" || bad "export --event $n1 vs $n2"
n1=$(ctl "$D" "$K" show --user bob --event 'login.*' | wc -l)
n2=$(grep '"ev":"login\.' "$SEG" | grep -c '"actor":"bob"')
[ "$n1" -gt 0 ] && [ "$n1" = "$n2" ] && ok "show --user --event filters ($n1)" || bad "show filter $n1 vs $n2"
ctl "$D" "$K" show | head -1 | grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8}\.[0-9]{3} JST #1 audit\.segment' \
    && ok "show uses JST" || bad "show format: $(ctl "$D" "$K" show | head -1)"
ctl "$D" "$K" show | grep -q $'\n' ; [ "$(ctl "$D" "$K" show | wc -l)" = "$(cat "$D"/*.jsonl | wc -l)" ] \
    && ok "show prints one line per entry" || bad "show line count"
n1=$(ctl "$D" "$K" show --json --since 2000-01-01 --until 2999-01-01Z | wc -l)
[ "$n1" = "$(cat "$D"/*.jsonl | wc -l)" ] && ok "show --since/--until" || bad "since/until $n1"
[ "$(ctl "$D" "$K" show --since 2999-01-01 | wc -l)" = 0 ] && ok "--since in the future: nothing" || bad "future since"
ctl "$D" "$K" show --since yesterday 2>/dev/null; [ $? -eq 2 ] && ok "bad time is a usage error" || bad "bad time"
ctl "$D" "$K" frobnicate 2>/dev/null; [ $? -eq 2 ] && ok "unknown subcommand exits 2" || bad "unknown subcommand"
ctl "$D" "$K" verify --pubkey "$SK_TMP/nonexistent.pub" 2>/dev/null; [ $? -eq 1 ] && ok "missing pubkey exits 1" || bad "missing pubkey"

fresh() { rm -rf "$SK_TMP/t"; cp -r "$D" "$SK_TMP/t"; T="$SK_TMP/t/$SEGN"; }
lineof() { grep -n "$1" "$T" | sed -n "${2:-1}p" | cut -d: -f1; }

# 1. edit a field
fresh; L=$(lineof '"reason":"bad_password"' 2)
sed -i "${L}s/bad_password/bad_passwore/" "$T"
expect_fail "edited field" "$SK_TMP/t" "$K" edited "$L"
# 2. delete a line
fresh; L=$(lineof '"ev":"login.success"' 3); sed -i "${L}d" "$T"
expect_fail "deleted line" "$SK_TMP/t" "$K" deleted "$L"
# 3. swap two lines
fresh; L=$(lineof '"ev":"admin.change"' 2); M=$((L + 1))
sed -i -n "${L}{h;n;G};p" "$T"
expect_fail "swapped lines" "$SK_TMP/t" "$K" reordered "$L"
# 4. truncate the tail (cut into the last line)
fresh; truncate -s -7 "$T"
expect_fail "truncated tail" "$SK_TMP/t" "$K" "truncated tail" "$(wc -l < "$D/$SEGN")"
# 5. corrupt a signature
fresh; L=$(lineof '"sig":"' 2)
# The signature's second character becomes another one (Q, or R when it was Q:
# replacing it by itself would change nothing, once in 64 runs).
c=$(sed -n -E "${L}s/.*\"sig\":\".(.).*/\1/p" "$T")
r=Q
[[ $c == Q ]] && r=R
sed -i -E "${L}s/\"sig\":\"(.)./\"sig\":\"\1$r/" "$T"
# (one character changed, length kept)
expect_fail "corrupt signature" "$SK_TMP/t" "$K" "bad signature" "$L"
# 6. verify with another key
mkdir -p "$SK_TMP/k2"; ctl "$D" "$SK_TMP/k2/other.key" keygen >/dev/null
fresh; L=$(lineof '"sig":"' 1)
expect_fail "another key" "$SK_TMP/t" "$K" "unknown key" "$L" --pubkey "$SK_TMP/k2/other.key.pub"
# 7. delete the whole first segment after a rotation is covered by the unit tests;
#    here: a renamed segment
fresh; mv "$T" "$SK_TMP/t/audit-20000101.jsonl"
out=$(ctl "$SK_TMP/t" "$K" verify 2>/dev/null); [ $? -eq 1 ] && ok "renamed segment: $out" || bad "renamed segment"
finish
