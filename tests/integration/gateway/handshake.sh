#!/usr/bin/env bash
# No client certificate, a certificate from another CA, or an expired certificate:
# the TLS handshake fails, so no HTTP is ever spoken (the login form is never shown).
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
sk_setup

# The CA is created 500 days in the past so that a certificate can be issued
# "400 days ago" for 30 days: properly signed, expired today.
SK_CA_BACKDATE=-500d sk_make_ca alice:acme
SK_ISSUE_FAKETIME=-400d sk_issue_user old acme "$SK_CA_DIR" --days 30
if openssl x509 -in "$SK_TMP/users/old.crt" -noout -checkend 0 >/dev/null; then
    sk_fail "test setup: the 'old' certificate is not expired: $(openssl x509 -in "$SK_TMP/users/old.crt" -noout -dates)"
fi
openssl verify -CAfile "$SK_CA_DIR/ca.crt" -attime "$(date -d '-385 days' +%s)" \
    "$SK_TMP/users/old.crt" >/dev/null 2>&1 ||
    sk_fail "test setup: the 'old' certificate is not a valid certificate of our CA"
"$SK_BIN/sekisho-ca" crl --dir "$SK_CA_DIR" >/dev/null 2>&1 || sk_fail "sekisho-ca crl"

# Same user name, same tenant, but issued by a CA the gateway does not trust.
"$SK_BIN/sekisho-ca" init --dir "$SK_TMP/other-ca" --name "Sekisho Test CA" >/dev/null 2>&1 ||
    sk_fail "sekisho-ca init (other CA)"
SK_ISSUE_NAME=stranger sk_issue_user alice acme "$SK_TMP/other-ca"
if openssl verify -CAfile "$SK_CA_DIR/ca.crt" "$SK_TMP/users/stranger.crt" >/dev/null 2>&1; then
    sk_fail "test setup: the other CA's certificate verifies against our CA"
fi

sk_start_upstream
sk_write_config </dev/null
sk_add_user alice acme "$(sk_password)"
sk_add_user old acme "$(sk_password)"
sk_start_gateway

# Positive control: the same checks with a valid certificate do reach HTTP.
code=$(sk_curl -u alice /.sekisho/health)
sk_assert_eq "$code" 200 "health with a valid certificate"
sk_assert_eq "$(sk_last_body | head -n 1 | tr -d '\r')" ok "health body (first line)"
code=$(sk_curl -u alice /.sekisho/login -H 'Accept: text/html')
sk_assert_eq "$code" 200 "login form with a valid certificate"

req=$SK_TMP/req.http
printf 'GET /.sekisho/login HTTP/1.1\r\nHost: %s:%s\r\nAccept: text/html\r\nConnection: close\r\n\r\n' \
    "$SK_HOST" "$SK_GW_PORT" >"$req"

# s_client PROTO USER: prints stdout of openssl s_client sending $req; rc in $SK_TMP/s.rc
s_client() {
    local proto=$1 user=$2 rc=0
    local -a a=("$proto" -connect "$SK_HOST:$SK_GW_PORT" -CAfile "$SK_CA_DIR/ca.crt" -ign_eof)
    [[ $user == - ]] || a+=(-cert "$SK_TMP/users/$user.crt" -key "$SK_TMP/users/$user.key")
    timeout 15 openssl s_client "${a[@]}" <"$req" >"$SK_TMP/s.out" 2>"$SK_TMP/s.err" || rc=$?
    echo "$rc" >"$SK_TMP/s.rc"
}

s_client -tls1_3 alice
sk_assert_file_contains "$SK_TMP/s.out" "HTTP/1.1 200" "s_client control with a valid certificate"

for who in - stranger old; do
    what="client cert '$who'"
    [[ $who == - ]] && what="no client certificate"

    code=$(sk_curl -u "$who" /.sekisho/login -H 'Accept: text/html')
    sk_assert_eq "$code" 000 "curl with $what: HTTP status"
    sk_assert_ne "$(sk_last_curlrc)" 0 "curl with $what: exit code"
    sk_assert_eq "$(wc -c <"$SK_TMP/last.body" | tr -d ' ')" 0 "curl with $what: body bytes"

    for proto in -tls1_2 -tls1_3; do
        s_client "$proto" "$who"
        rc=$(cat "$SK_TMP/s.rc")
        sk_assert_ne "$rc" 124 "s_client $proto with $what did not finish in 15 s"
        sk_assert_file_not_contains "$SK_TMP/s.out" "HTTP/" "s_client $proto with $what: HTTP answer"
        sk_assert_file_not_contains "$SK_TMP/s.out" "password" "s_client $proto with $what: login form"
        if [[ $proto == -tls1_2 ]]; then
            # TLS 1.2: the server's verdict comes inside the handshake.
            sk_assert_ne "$rc" 0 "s_client -tls1_2 with $what: handshake must fail"
        fi
        grep -qiE 'alert|error' "$SK_TMP/s.err" ||
            sk_fail "s_client $proto with $what: no TLS alert/error reported: $(head -c 400 "$SK_TMP/s.err")"
    done
done

# The gateway is still healthy after the refused handshakes.
code=$(sk_curl -u alice /.sekisho/health)
sk_assert_eq "$code" 200 "health after refused handshakes"
sk_stop_gateway
sk_pass
