#!/bin/bash
# The same contract through the real `sekishoctl -c FILE audit ...`.
. "$(dirname "$0")/lib.sh"
CTL="$SK_BIN/sekishoctl"
[ -x "$CTL" ] || { echo "skip: sekishoctl not built"; exit 77; }
C="$SK_TMP/sekisho.conf"; D="$SK_TMP/audit"; K="$SK_TMP/keys/audit.key"
mkdir -p "$SK_TMP/keys"
cat > "$C" <<CONF
[listen]
address = 127.0.0.1:8443
cert = $SK_TMP/server.crt
key = $SK_TMP/server.key
[tls]
client_ca = $SK_TMP/ca.crt
[upstream]
url = http://127.0.0.1:8080
[state]
dir = $SK_TMP/state
[audit]
dir = $D
key = $K
timezone = Asia/Tokyo
epoch = 30m
witness = cat >> $SK_TMP/witness
CONF
"$CTL" -c "$C" audit keygen >/dev/null && [ -f "$K" ] && [ -f "$K.pub" ] && ok "keygen" || bad "keygen"
"$CTL" -c "$C" audit keygen 2>/dev/null; [ $? -eq 1 ] && ok "keygen refuses to overwrite" || bad "keygen overwrite"
"$DRV" append "$D" "$K" 50 >/dev/null || bad "append"
out=$("$CTL" -c "$C" audit verify); rc=$?
[ $rc -eq 0 ] && [[ "$out" == OK:* ]] && ok "verify: $out" || bad "verify rc=$rc $out"
"$CTL" -c "$C" audit export | cmp -s - <(cat "$D"/audit-*.jsonl) && ok "export round trip" || bad "export"
"$CTL" -c "$C" audit show | head -1 | grep -q ' JST #1 audit.segment' && ok "show in JST" || bad "show"
"$CTL" -c "$C" audit frob 2>/dev/null; [ $? -eq 2 ] && ok "usage error exits 2" || bad "usage exit"
"$CTL" -c "$C" audit head > "$SK_TMP/head" && out=$("$CTL" -c "$C" audit verify --witness "$SK_TMP/head") \
    && grep -q "present" <<<"$out" && ok "audit head / verify --witness (with [audit] epoch and witness set)" \
    || bad "head/witness: $out"
SEG=$(ls "$D"/audit-*.jsonl | head -1)
L=$(grep -n '"actor":"alice"' "$SEG" | head -1 | cut -d: -f1)
sed -i "${L}s/\"actor\":\"alice\"/\"actor\":\"alicf\"/" "$SEG"
out=$("$CTL" -c "$C" audit verify 2>/dev/null); rc=$?
[ $rc -eq 1 ] && grep -q "^FAIL: edited: .* line $L," <<<"$out" && ok "edit detected: $out" || bad "edit rc=$rc $out"
finish
