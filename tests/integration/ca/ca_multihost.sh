#!/usr/bin/env bash
# server-cert for several host names: the first is the CN and the indexed name, all
# are in subjectAltName, and a gateway serving that certificate passes curl's host
# name verification for each of them (and for none other). Malformed lists are refused
# and leave the CA directory unchanged.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
sk_setup
sk_make_ca alice:acme
sk_start_upstream
(cd "$SK_TMP" && "$SK_BIN/sekisho-ca" server-cert --dir "$SK_CA_DIR" \
    --host portal.acme.test,portal.globex.test,127.0.0.1 --out multi >"$SK_TMP/multi.log" 2>&1) ||
    sk_fail "server-cert with three names: $(cat "$SK_TMP/multi.log")"
san=$(openssl x509 -in "$SK_TMP/multi.crt" -noout -ext subjectAltName | tail -n 1 | tr -d ' ')
sk_assert_eq "$san" "DNS:portal.acme.test,DNS:portal.globex.test,DNS:localhost,IPAddress:127.0.0.1" "subjectAltName"
sk_assert_contains "$(openssl x509 -in "$SK_TMP/multi.crt" -noout -subject)" "CN = portal.acme.test" "CN is the first name"
sk_assert_contains "$("$SK_BIN/sekisho-ca" list --dir "$SK_CA_DIR")" "portal.acme.test" "indexed under the first name"

before=$(cd "$SK_CA_DIR" && find . -type f -exec sha256sum {} + | sort)
for bad in 'a.test,,b.test' 'a.test,' ',a.test' 'a.test,a.test' 'bad host' \
    "$(seq -f 'h%g.test' 1 17 | paste -sd,)"; do
    rc=0
    "$SK_BIN/sekisho-ca" server-cert --dir "$SK_CA_DIR" --host "$bad" --out "$SK_TMP/bad" >"$SK_TMP/bad.log" 2>&1 || rc=$?
    sk_assert_eq "$rc" 1 "server-cert --host '$bad'"
    sk_assert_eq "$(wc -l <"$SK_TMP/bad.log" | tr -d ' ')" 1 "one-line reason for '$bad'"
done
sk_assert_eq "$(cd "$SK_CA_DIR" && find . -type f -exec sha256sum {} + | sort)" "$before" "CA directory unchanged by refused lists"
[[ ! -e $SK_TMP/bad.crt && ! -e $SK_TMP/bad.key ]] || sk_fail "a refused server-cert left files behind"

sk_write_config </dev/null
sed -i 's#^cert = server.crt#cert = multi.crt#; s#^key = server.key#key = multi.key#' "$SK_CONF"
sk_start_gateway
for name in portal.acme.test portal.globex.test; do
    code=$(curl -s --max-time 20 --resolve "$name:$SK_GW_PORT:127.0.0.1" --cacert "$SK_CA_DIR/ca.crt" \
        --cert "$SK_TMP/users/alice.crt" --key "$SK_TMP/users/alice.key" -o /dev/null -w '%{http_code}' \
        "https://$name:$SK_GW_PORT/.sekisho/health")
    sk_assert_eq "$code" 200 "verified TLS to $name"
done
rc=0
curl -s --max-time 20 --resolve "other.test:$SK_GW_PORT:127.0.0.1" --cacert "$SK_CA_DIR/ca.crt" \
    --cert "$SK_TMP/users/alice.crt" --key "$SK_TMP/users/alice.key" -o /dev/null \
    "https://other.test:$SK_GW_PORT/.sekisho/health" || rc=$?
sk_assert_eq "$rc" 60 "curl refuses a name the certificate does not carry"
sk_stop_gateway
sk_pass
