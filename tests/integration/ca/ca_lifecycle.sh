#!/usr/bin/env bash
# sekisho-ca end to end: init, issue (modern and legacy PKCS#12, CSR), verification
# with and without the CRL, revoke, reissue, CRL numbers, list, server-cert, NSS
# import, and the CRL lifetime under faketime.
source "$SK_SRC/tests/integration/lib.sh"
source "$SK_SRC/tests/integration/ca/ca_common.sh"
sk_setup
sk_need_bin sekisho-ca
cd "$SK_TMP"
D=$SK_TMP/ca

# ---- init ------------------------------------------------------------------------
out=$(ca init --dir "$D" --name "Lifecycle CA")
sk_assert_contains "$out" "Lifecycle CA" "init report"
sk_assert_eq "$(stat -c %a "$D")" 700 "CA directory mode"
sk_assert_eq "$(stat -c %a "$D/ca.key")" 600 "CA key mode"
grep -q 'BEGIN PRIVATE KEY' "$D/ca.key" || sk_fail "CA key is not PEM PKCS#8"
ca_text=$(openssl x509 -in "$D/ca.crt" -noout -text)
sk_assert_contains "$ca_text" "Subject: CN = Lifecycle CA" "CA subject"
sk_assert_contains "$ca_text" "ASN1 OID: prime256v1" "CA key is P-256"
sk_assert_match "$ca_text" "Basic Constraints: critical[[:space:]]+CA:TRUE, pathlen:0" "CA basicConstraints"
sk_assert_match "$ca_text" "Key Usage: critical[[:space:]]+Certificate Sign, CRL Sign" "CA keyUsage"
sk_assert_contains "$ca_text" "Subject Key Identifier" "CA SKI"
ski=$(openssl x509 -in "$D/ca.crt" -noout -ext subjectKeyIdentifier | tail -n1 | tr -d ' ')
crl_text=$(openssl crl -in "$D/crl.pem" -noout -text)
sk_assert_contains "$crl_text" "No Revoked Certificates" "initial CRL is empty"
sk_assert_contains "$crl_text" "Next Update:" "initial CRL has nextUpdate"
sk_assert_contains "$(printf '%s' "$crl_text" | tr -d ' ')" "$ski" "CRL AKI = CA SKI"
openssl crl -in "$D/crl.pem" -CAfile "$D/ca.crt" -noout 2>&1 | grep -q 'verify OK' || sk_fail "CRL signature"
sk_assert_eq "$(ca_crl_number "$D")" 1 "initial CRL number"
ca_refused "second init" ca init --dir "$D" --name "Again"

# ---- issue (modern PKCS#12) --------------------------------------------------------
printf 'Pkcs12-Pass\nsecond line ignored\n' >pw
printf 'Pkcs12-Pass' >pw.nss
out=$(ca issue --dir "$D" --user alice --out alice.p12 --password-file pw)
sk_assert_not_contains "$out" "Pkcs12-Pass" "issue prints no secret"
sk_assert_eq "$(stat -c %a alice.p12)" 600 "p12 mode"
info=$(openssl pkcs12 -in alice.p12 -info -noout -passin file:pw 2>&1) || sk_fail "pkcs12 -info modern: $info"
sk_assert_contains "$info" "MAC: sha256" "modern MAC"
sk_assert_contains "$info" "PBES2, PBKDF2, AES-256-CBC" "modern PBE"
sk_assert_contains "$info" "PRF hmacWithSHA256" "modern PRF"
if openssl pkcs12 -in alice.p12 -info -noout -passin pass:wrong >/dev/null 2>&1; then
    sk_fail "wrong PKCS#12 password accepted"
fi
ca_p12_leaf alice.p12 pw alice.crt
leaf=$(openssl x509 -in alice.crt -noout -text)
sk_assert_match "$(openssl x509 -in alice.crt -noout -subject)" "O ?= ?default, CN ?= ?alice" "leaf subject"
sk_assert_contains "$leaf" "ASN1 OID: prime256v1" "leaf key P-256"
sk_assert_match "$leaf" "Key Usage: critical[[:space:]]+Digital Signature" "leaf keyUsage"
sk_assert_match "$leaf" "Extended Key Usage: [[:space:]]*TLS Web Client Authentication" "leaf EKU not critical"
sk_assert_match "$leaf" "Basic Constraints: [[:space:]]*CA:FALSE" "leaf basicConstraints"
sk_assert_contains "$leaf" "Subject Key Identifier" "leaf SKI"
sk_assert_contains "$(openssl x509 -in alice.crt -noout -ext authorityKeyIdentifier | tr -d ' ')" "$ski" "leaf AKI"
alice1=$(ca_serial_of alice.crt)
sk_assert_match "$alice1" '^[0-7][0-9A-F]{31}$' "128-bit positive serial"
openssl pkcs12 -in alice.p12 -passin file:pw -nokeys -cacerts 2>/dev/null | grep -q 'BEGIN CERTIFICATE' ||
    sk_fail "CA certificate missing from the PKCS#12"
openssl pkcs12 -in alice.p12 -passin file:pw -nokeys -clcerts 2>/dev/null | grep -q 'friendlyName: alice' ||
    sk_fail "friendly name is not the user ID"
sk_assert_eq "$(ca_verify alice.crt "$D")" OK "issued certificate verifies with the CRL"

# one valid certificate per (tenant, user)
ca_refused "second issue for alice" ca issue --dir "$D" --user alice --out alice-b.p12 --password-file pw
sk_assert_contains "$(cat "$SK_TMP/refused.err")" "reissue" "refusal points to reissue"
[[ ! -e alice-b.p12 ]] || sk_fail "refused issue wrote its output"
# same user ID in another tenant is another person
ca issue --dir "$D" --user alice --tenant acme --out alice-acme.p12 --password-file pw >/dev/null

# ---- legacy PKCS#12 ------------------------------------------------------------------
ca issue --dir "$D" --user bob --tenant acme --days 30 --out bob.p12 --password-file pw --legacy >/dev/null
legacy_flag=""
if ! openssl pkcs12 -in bob.p12 -info -noout -passin file:pw >/dev/null 2>&1; then
    legacy_flag=-legacy
fi
info=$(openssl pkcs12 $legacy_flag -in bob.p12 -info -noout -passin file:pw 2>&1) || sk_fail "pkcs12 -info legacy: $info"
sk_assert_contains "$info" "MAC: sha1" "legacy MAC"
sk_assert_contains "$info" "pbeWithSHA1And3-KeyTripleDES-CBC" "legacy PBE"
sk_assert_not_contains "$info" "AES" "legacy file uses no AES"
ca_p12_leaf bob.p12 pw bob.crt "$legacy_flag"
sk_assert_match "$(openssl x509 -in bob.crt -noout -subject)" "O ?= ?acme, CN ?= ?bob" "legacy leaf subject"
nb=$(date -d "$(openssl x509 -in bob.crt -noout -enddate | cut -d= -f2)" +%s)
days=$(((nb - $(date +%s) + 43200) / 86400))
sk_assert_eq "$days" 30 "--days 30 validity"
sk_assert_eq "$(ca_verify bob.crt "$D")" OK "legacy issued certificate verifies"

# ---- NSS import (Firefox/Chrome on Linux) ----------------------------------------------
if command -v pk12util >/dev/null && command -v certutil >/dev/null; then
    for f in alice bob; do
        rm -rf "nss-$f"
        mkdir "nss-$f"
        certutil -N -d "sql:nss-$f" --empty-password
        pk12util -i "$f.p12" -d "sql:nss-$f" -w pw.nss >"nss-$f.log" 2>&1 ||
            sk_fail "pk12util import of $f.p12: $(cat "nss-$f.log")"
        certutil -L -d "sql:nss-$f" | grep -q "^$f " || sk_fail "$f certificate not in the NSS db"
        certutil -K -d "sql:nss-$f" 2>/dev/null | grep -q "$f" || sk_fail "$f key not in the NSS db"
    done
    rm -rf nss-wrong && mkdir nss-wrong && certutil -N -d sql:nss-wrong --empty-password
    printf 'nope' >pw.bad
    if pk12util -i alice.p12 -d sql:nss-wrong -w pw.bad >/dev/null 2>&1; then
        sk_fail "pk12util accepted a wrong password"
    fi
else
    sk_fail "pk12util/certutil (libnss3-tools) not installed"
fi

# ---- CSR path -----------------------------------------------------------------------------
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout dev.key \
    -subj "/CN=root/O=evil" -addext "basicConstraints=critical,CA:TRUE" -out dev.csr 2>/dev/null
ca issue --dir "$D" --user carol --tenant acme --csr dev.csr --out carol.crt >/dev/null
sk_assert_eq "$(stat -c %a carol.crt)" 644 "crt mode"
sk_assert_match "$(openssl x509 -in carol.crt -noout -subject)" "^subject= ?O ?= ?acme, CN ?= ?carol$" \
    "CSR subject overridden by the CA"
ctext=$(openssl x509 -in carol.crt -noout -text)
sk_assert_match "$ctext" "Basic Constraints: [[:space:]]*CA:FALSE" "CSR extensions ignored"
sk_assert_contains "$ctext" "TLS Web Client Authentication" "CSR cert EKU"
[[ $(openssl x509 -in carol.crt -noout -pubkey) == "$(openssl pkey -in dev.key -pubout)" ]] ||
    sk_fail "certificate does not carry the CSR's key"
sk_assert_eq "$(ca_verify carol.crt "$D")" OK "CSR certificate verifies"
openssl req -new -newkey rsa:2048 -nodes -keyout rsa.key -subj "/CN=x" -out rsa.csr 2>/dev/null
openssl req -in rsa.csr -outform DER -out rsa.der
ca issue --dir "$D" --user dave --csr rsa.der --out dave.crt >/dev/null
sk_assert_eq "$(ca_verify dave.crt "$D")" OK "RSA 2048 DER CSR certificate verifies"

# a CSR whose signature was tampered with is refused
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout e.key -subj "/CN=e" \
    -outform DER -out e.der 2>/dev/null
sz=$(stat -c %s e.der)
b=$(od -An -tu1 -j $((sz - 1)) -N1 e.der | tr -d ' ')
printf "$(printf '\\%03o' $((b ^ 1)))" | dd of=e.der bs=1 seek=$((sz - 1)) conv=notrunc status=none
ca_refused "tampered CSR" ca issue --dir "$D" --user erin --csr e.der --out erin.crt
sk_assert_contains "$(cat "$SK_TMP/refused.err")" "signature" "tampered CSR reason"
[[ ! -e erin.crt ]] || sk_fail "refused CSR produced a certificate"

# ---- revoke --------------------------------------------------------------------------------
n0=$(ca_crl_number "$D")
ca revoke --dir "$D" --user bob --tenant acme --reason keyCompromise >/dev/null
n1=$(ca_crl_number "$D")
sk_assert_lt "$n0" "$n1" "revoke increases the CRL number"
sk_assert_eq "$(ca_index_crl_number "$D")" "$n1" "index and CRL agree on the number"
sk_assert_contains "$(ca_verify bob.crt "$D")" "certificate revoked" "revoked certificate fails"
# without the CRL the signature alone still verifies, so the CRL is what rejects it
openssl verify -CAfile "$D/ca.crt" bob.crt >/dev/null 2>&1 || sk_fail "bob.crt broken beyond revocation"
bob_serial=$(ca_serial_of bob.crt)
crl_text=$(openssl crl -in "$D/crl.pem" -noout -text)
sk_assert_contains "$crl_text" "Serial Number: $bob_serial" "revoked serial in CRL"
sk_assert_contains "$crl_text" "Key Compromise" "reason in CRL"
sk_assert_contains "$crl_text" "Revocation Date" "revocation date in CRL"
ca_refused "revoke twice" ca revoke --dir "$D" --serial "$bob_serial"
ca revoke --dir "$D" --serial "$(ca_serial_of dave.crt | tr 'A-F' 'a-f')" --reason cessationOfOperation >/dev/null
sk_assert_contains "$(ca_verify dave.crt "$D")" "certificate revoked" "revoke by lower-case serial"
sk_assert_contains "$(openssl crl -in "$D/crl.pem" -noout -text)" "Cessation Of Operation" "second reason"
sk_assert_lt "$n1" "$(ca_crl_number "$D")" "CRL number increases again"
sk_assert_eq "$(ca_verify alice.crt "$D")" OK "other certificates unaffected"
ca_refused "unknown reason" ca revoke --dir "$D" --user alice --reason removeFromCRL

# default reason: unspecified, recorded in the index; in the CRL the entry carries
# no reasonCode (RFC 5280 5.3.1: SHOULD be absent rather than unspecified)
ca issue --dir "$D" --user frank --out frank.p12 --password-file pw >/dev/null
ca_p12_leaf frank.p12 pw frank.crt
ca revoke --dir "$D" --user frank >/dev/null
frank_serial=$(ca_serial_of frank.crt)
sk_assert_contains "$(ca_verify frank.crt "$D")" "certificate revoked" "revoked with the default reason"
grep -q "^cert $frank_serial c default frank .* R [0-9]* unspecified$" "$D/index" || sk_fail "unspecified in index"
entry=$(openssl crl -in "$D/crl.pem" -noout -text |
    awk -v s="Serial Number: $frank_serial" 'index($0, s) { on = 1; print; next } /Serial Number:|Signature Algorithm/ { on = 0 } on')
sk_assert_contains "$entry" "Revocation Date" "unspecified entry has a date"
sk_assert_not_contains "$entry" "Reason Code" "unspecified entry has no reasonCode"

# after revocation the user may be issued a new certificate
ca issue --dir "$D" --user bob --tenant acme --out bob2.p12 --password-file pw >/dev/null

# ---- reissue -------------------------------------------------------------------------------
n2=$(ca_crl_number "$D")
out=$(ca reissue --dir "$D" --user alice --tenant default --out alice2.p12 --password-file pw)
sk_assert_contains "$out" "$alice1" "reissue reports the superseded serial"
ca_p12_leaf alice2.p12 pw alice2.crt
alice2=$(ca_serial_of alice2.crt)
sk_assert_ne "$alice2" "$alice1" "reissue gives a new serial"
sk_assert_eq "$(ca_verify alice2.crt "$D")" OK "reissued certificate verifies"
sk_assert_contains "$(ca_verify alice.crt "$D")" "certificate revoked" "superseded certificate fails"
sk_assert_contains "$(openssl crl -in "$D/crl.pem" -noout -text)" "Superseded" "superseded reason"
sk_assert_lt "$n2" "$(ca_crl_number "$D")" "reissue increases the CRL number"
[[ $(openssl x509 -in alice2.crt -noout -pubkey) != "$(openssl x509 -in alice.crt -noout -pubkey)" ]] ||
    sk_fail "reissue reused the key"
# reissue through a CSR
ca reissue --dir "$D" --user carol --tenant acme --csr rsa.csr --out carol2.crt >/dev/null
sk_assert_eq "$(ca_verify carol2.crt "$D")" OK "CSR reissue verifies"
sk_assert_contains "$(ca_verify carol.crt "$D")" "certificate revoked" "CSR reissue revokes the old one"
ca_refused "reissue unknown user" ca reissue --dir "$D" --user nobody --out n.p12 --password-file pw

# ---- list ----------------------------------------------------------------------------------
ca list --dir "$D" >list.txt
sk_assert_file_contains list.txt "$alice2" "list shows the new serial"
grep "$alice1" list.txt | grep -q 'revoked .* superseded' || sk_fail "list: superseded entry: $(cat list.txt)"
ca list --dir "$D" --json >list.json
if command -v jq >/dev/null; then
    jq -e 'type == "array"' list.json >/dev/null || sk_fail "list --json is not an array"
    sk_assert_eq "$(jq 'length' list.json)" "$(grep -c '^cert ' "$D/index")" "JSON has every certificate"
    sk_assert_eq "$(jq -r --arg s "$alice2" '.[] | select(.serial == $s) | .status' list.json)" valid "alice2 valid"
    sk_assert_eq "$(jq -r --arg s "$alice1" '.[] | select(.serial == $s) | "\(.status) \(.reason)"' list.json)" \
        "revoked superseded" "alice1 revoked superseded"
    sk_assert_eq "$(jq -r --arg s "$bob_serial" '.[] | select(.serial == $s) | "\(.user) \(.tenant) \(.reason)"' \
        list.json)" "bob acme keyCompromise" "bob entry"
    jq -e --arg s "$alice2" '.[] | select(.serial == $s) | .revoked_at == null and (.not_after | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T"))' \
        list.json >/dev/null || sk_fail "JSON time fields"
    sk_assert_eq "$(jq '[.[] | select(.user == "alice" and .tenant == "default" and .status == "valid")] | length' \
        list.json)" 1 "exactly one valid certificate for alice"
else
    python3 -c 'import json,sys; json.load(open(sys.argv[1]))' list.json || sk_fail "list --json does not parse"
fi

# ---- crl command ------------------------------------------------------------------------------
n3=$(ca_crl_number "$D")
ca crl --dir "$D" >/dev/null
sk_assert_eq "$(ca_crl_number "$D")" $((n3 + 1)) "crl increments by one"
ca crl --dir "$D" --days 1 >/dev/null
next=$(date -d "$(openssl crl -in "$D/crl.pem" -noout -nextupdate | cut -d= -f2)" +%s)
last=$(date -d "$(openssl crl -in "$D/crl.pem" -noout -lastupdate | cut -d= -f2)" +%s)
sk_assert_eq $((next - last)) 86400 "crl --days 1 lifetime"
sk_assert_eq "$(ca_verify alice2.crt "$D")" OK "fresh short CRL"
if command -v faketime >/dev/null; then
    # An expired CRL makes every verification fail: the reason nextUpdate matters.
    v=$(ca_faketime -f +2d openssl verify -CAfile "$D/ca.crt" -crl_check \
        -CRLfile "$D/crl.pem" alice2.crt 2>&1 || true)
    sk_assert_contains "$v" "CRL has expired" "short CRL expires"
    # The CRL follows the (faked, frozen: -f with an absolute date) clock of the CA run.
    D2=$SK_TMP/ca-future
    ca_faketime -f '2031-03-01 12:00:00' "$SK_BIN/sekisho-ca" init --dir "$D2" \
        --name Future >/dev/null
    ca_faketime -f '2031-03-05 12:00:00' "$SK_BIN/sekisho-ca" crl --dir "$D2" \
        --days 2 >/dev/null
    sk_assert_eq "$(openssl crl -in "$D2/crl.pem" -noout -lastupdate)" "lastUpdate=Mar  5 12:00:00 2031 GMT" \
        "faked thisUpdate"
    sk_assert_eq "$(openssl crl -in "$D2/crl.pem" -noout -nextupdate)" "nextUpdate=Mar  7 12:00:00 2031 GMT" \
        "faked nextUpdate"
    # the lifetime is remembered for the CRLs that revoke/reissue write
    ca_faketime -f '2031-03-06 00:00:00' "$SK_BIN/sekisho-ca" issue --dir "$D2" \
        --user zed --out "$SK_TMP/zed.p12" --password-file pw >/dev/null
    ca_faketime -f '2031-03-06 00:00:00' "$SK_BIN/sekisho-ca" revoke --dir "$D2" \
        --user zed >/dev/null
    sk_assert_eq "$(openssl crl -in "$D2/crl.pem" -noout -nextupdate)" "nextUpdate=Mar  8 00:00:00 2031 GMT" \
        "revoke keeps the CRL lifetime"
else
    sk_fail "faketime not installed"
fi

# ---- server-cert ----------------------------------------------------------------------------
ca server-cert --dir "$D" --host localhost --out srv >/dev/null
sk_assert_eq "$(stat -c %a srv.key)" 600 "server key mode"
sk_assert_eq "$(grep -c 'BEGIN CERTIFICATE' srv.crt)" 2 "server chain has leaf + CA"
stext=$(openssl x509 -in srv.crt -noout -text)
sk_assert_contains "$stext" "TLS Web Server Authentication" "server EKU"
sk_assert_match "$stext" "DNS:localhost, IP Address:127.0.0.1" "localhost SAN"
sk_assert_eq "$(openssl verify -CAfile "$D/ca.crt" -crl_check -CRLfile "$D/crl.pem" srv.crt 2>&1)" "srv.crt: OK" \
    "server certificate verifies"
[[ $(openssl x509 -in srv.crt -noout -pubkey) == "$(openssl pkey -in srv.key -pubout)" ]] || sk_fail "key mismatch"
ca server-cert --dir "$D" --host gw.example.org --out gw >/dev/null
sk_assert_eq "$(openssl x509 -in gw.crt -noout -ext subjectAltName | tail -n1 | tr -d ' ')" "DNS:gw.example.org" \
    "plain host SAN"
ca server-cert --dir "$D" --host 192.0.2.10 --out ip >/dev/null
sk_assert_eq "$(openssl x509 -in ip.crt -noout -ext subjectAltName | tail -n1 | tr -d ' ')" "IPAddress:192.0.2.10" \
    "IP SAN"
openssl verify -CAfile "$D/ca.crt" -verify_hostname gw.example.org gw.crt >/dev/null 2>&1 || sk_fail "hostname check"
ca_refused "server-cert bad host" ca server-cert --dir "$D" --host 'a,DNS:evil' --out bad
ca_refused "server-cert existing output" ca server-cert --dir "$D" --host localhost --out srv
grep -q "^cert $(ca_serial_of gw.crt) s - gw.example.org " "$D/index" || sk_fail "server cert not in the index"

# ---- the CA key must stay private -------------------------------------------------------------
chmod 640 "$D/ca.key"
ca_refused "group-readable CA key" ca crl --dir "$D"
sk_assert_contains "$(cat "$SK_TMP/refused.err")" "ca.key" "key permission reason"
chmod 600 "$D/ca.key"
ca crl --dir "$D" >/dev/null
# the CA key appears in no output file and no listing
keyb64=$(grep -v -- '-----' "$D/ca.key" | tr -d '\n')
for f in *.crt *.p12 list.txt list.json "$D/crl.pem" "$D/ca.crt" "$D/index"; do
    if grep -qF -- "$keyb64" "$f"; then sk_fail "CA key material in $f"; fi
done

sk_pass
