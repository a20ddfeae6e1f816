#!/usr/bin/env bash
# Eight sekisho-ca issue runs for different users, racing with CRL rewrites and a
# revocation, serialize on D/.lock: eight distinct serials, a consistent index, a
# CRL whose number matches the index, and every certificate verifies.
source "$SK_SRC/tests/integration/lib.sh"
source "$SK_SRC/tests/integration/ca/ca_common.sh"
sk_setup
sk_need_bin sekisho-ca
cd "$SK_TMP"
D=$SK_TMP/ca
ca init --dir "$D" --name "Concurrency CA" >/dev/null
printf 'Race-Pass1\n' >pw
ca issue --dir "$D" --user victim --out victim.p12 --password-file pw >/dev/null
ca_p12_leaf victim.p12 pw victim.crt

pids=()
for i in 1 2 3 4 5 6 7 8; do
    "$SK_BIN/sekisho-ca" issue --dir "$D" --user "user$i" --tenant "t$((i % 2))" --out "u$i.p12" \
        --password-file pw >"u$i.log" 2>&1 &
    pids+=($!)
done
for i in 1 2 3; do
    "$SK_BIN/sekisho-ca" crl --dir "$D" >"crl$i.log" 2>&1 &
    pids+=($!)
done
"$SK_BIN/sekisho-ca" revoke --dir "$D" --user victim --reason affiliationChanged >revoke.log 2>&1 &
pids+=($!)
for p in "${pids[@]}"; do
    sk_track "$p"
done
for p in "${pids[@]}"; do
    sk_wait_exit "$p" 120
    sk_assert_eq "$SK_EXIT_STATUS" 0 "concurrent command (pid $p): $(cat u*.log crl*.log revoke.log)"
done

serials=()
for i in 1 2 3 4 5 6 7 8; do
    ca_p12_leaf "u$i.p12" pw "u$i.crt"
    sk_assert_match "$(openssl x509 -in "u$i.crt" -noout -subject)" "O ?= ?t$((i % 2)), CN ?= ?user$i" "subject $i"
    sk_assert_eq "$(ca_verify "u$i.crt" "$D")" OK "user$i verifies"
    s=$(ca_serial_of "u$i.crt")
    serials+=("$s")
    grep -q "^cert $s c t$((i % 2)) user$i .* V - -$" "$D/index" || sk_fail "user$i serial $s not in the index"
done
sk_assert_eq "$(printf '%s\n' "${serials[@]}" | sort -u | wc -l)" 8 "eight distinct serials"
sk_assert_contains "$(ca_verify victim.crt "$D")" "certificate revoked" "racing revocation is in the CRL"

# the index parses (list succeeds) and holds exactly the nine certificates
ca list --dir "$D" --json >list.json
if command -v jq >/dev/null; then
    sk_assert_eq "$(jq length list.json)" 9 "nine certificates listed"
    sk_assert_eq "$(jq '[.[] | select(.status == "valid")] | length' list.json)" 8 "eight valid"
    sk_assert_eq "$(jq -r '[.[].serial] | unique | length' list.json)" 9 "unique serials in the listing"
else
    sk_assert_eq "$(grep -c '"serial"' list.json)" 9 "nine certificates listed"
fi
# CRL number: 1 (init) + 3 crl runs + 1 revoke, and the file agrees with the index
sk_assert_eq "$(ca_index_crl_number "$D")" 5 "index CRL number"
sk_assert_eq "$(ca_crl_number "$D")" 5 "crl.pem CRL number"
[[ ! -e $D/pending ]] || sk_fail "journal left behind"
[[ -z $(find "$D" -name '*.tmp*' -print -quit) ]] || sk_fail "temp files left in the CA directory"
sk_pass
