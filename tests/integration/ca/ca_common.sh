# Helpers shared by the sekisho-ca integration tests (sourced after lib.sh).

ca() { "$SK_BIN/sekisho-ca" "$@"; }

# ca_refused WHAT CMD...: CMD must exit 1 with exactly one stderr line that starts
# with "sekisho-ca: ". The line is left in $SK_TMP/refused.err.
ca_refused() {
    local what=$1 rc=0 lines
    shift
    "$@" >"$SK_TMP/refused.out" 2>"$SK_TMP/refused.err" </dev/null || rc=$?
    [[ $rc == 1 ]] || sk_fail "$what: expected exit 1, got $rc: $(cat "$SK_TMP/refused.err")"
    lines=$(wc -l <"$SK_TMP/refused.err")
    [[ $lines == 1 ]] || sk_fail "$what: expected one stderr line, got $lines: $(cat "$SK_TMP/refused.err")"
    grep -q '^sekisho-ca: ' "$SK_TMP/refused.err" || sk_fail "$what: bad reason line: $(cat "$SK_TMP/refused.err")"
}

# ca_snapshot DIR: content hashes plus names, modes and sizes of everything in DIR.
ca_snapshot() {
    (
        cd "$1"
        find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
        find . -printf '%p %m %s %y\n' | LC_ALL=C sort
    )
}

# ca_verify CERT DIR: prints openssl verify's verdict ("OK" or the error text).
ca_verify() {
    local out
    if out=$(openssl verify -CAfile "$2/ca.crt" -crl_check -CRLfile "$2/crl.pem" "$1" 2>&1); then
        echo OK
    else
        printf '%s\n' "$out" | grep -m1 -o 'error [0-9]* at [0-9]* depth lookup: .*' || echo "FAILED"
    fi
}

# ca_p12_leaf P12 PASSFILE OUT [-legacy]: leaf certificate out of a PKCS#12.
ca_p12_leaf() {
    openssl pkcs12 ${4:-} -in "$1" -passin "file:$2" -clcerts -nokeys -out "$3" 2>"$SK_TMP/p12.err" ||
        sk_fail "openssl pkcs12 cannot read $1: $(cat "$SK_TMP/p12.err")"
}

ca_serial_of() { openssl x509 -in "$1" -noout -serial | sed 's/^serial=//'; }

# ca_crl_number DIR: CRL number of DIR/crl.pem, decimal.
ca_crl_number() {
    local h
    h=$(openssl crl -in "$1/crl.pem" -noout -crlnumber | sed 's/^crlNumber=//; s/^0x//')
    [[ $h =~ ^[0-9A-Fa-f]+$ ]] || sk_fail "no CRL number in $1/crl.pem"
    echo $((16#$h))
}

# ca_index_crl_number DIR: the number the index says the CRL must carry.
ca_index_crl_number() { awk '$1 == "crl-number" { print $2 }' "$1/index"; }

# faketime preloads libfaketime, which an ASan build must tolerate not being first.
ca_faketime() { ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" faketime "$@"; }
