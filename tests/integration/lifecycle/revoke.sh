#!/usr/bin/env bash
# Revocation is enforced live (issue 3): `sekisho-ca revoke` rewrites the CRL, the
# running gateway notices the file change (no signal, no restart) and from then on
# alice's certificate gets nothing through — not a new handshake, not a request on a
# connection kept alive from before (403 + close), not a resumed TLS session (1.2
# session ID or 1.3 ticket). bob, not revoked, keeps his connection and sessions.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
sk_setup
sk_setup_gateway alice:acme bob:acme
lc_reload_mark
gw_pid=$SK_GW_PID

upstream_echo_count() { grep -c ' /echo' "$SK_UP_LOG" || true; }

acookie=$(sk_login alice)
bcookie=$(sk_login bob)

# Connections kept alive from before the revocation.
lc_ka_open ka_alice alice -tls1_3
lc_ka_open ka_bob bob -tls1_2
sk_assert_eq "$(lc_ka_request ka_alice /echo "$acookie")" 200 "alice, kept-alive connection, before revocation"
sk_assert_eq "$(lc_ka_request ka_bob /echo "$bcookie")" 200 "bob, kept-alive connection, before revocation"

# Saved TLS sessions: resumption works (and is really a resumption) before revocation.
for who in alice bob; do
    cookie=$acookie
    [[ $who == bob ]] && cookie=$bcookie
    for proto in -tls1_2 -tls1_3; do
        sess=$SK_TMP/sess.$who$proto
        code=$(lc_tls_get "$who" "$proto" -sess_out "$sess" /echo "$cookie")
        sk_assert_eq "$code" 200 "$who $proto: full handshake + /echo"
        [[ -s $sess ]] || sk_fail "$who $proto: s_client saved no TLS session"
        code=$(lc_tls_get "$who" "$proto" -sess_in "$sess" /echo "$cookie")
        sk_assert_eq "$code" 200 "$who $proto: resumed session + /echo"
        lc_tls_reused || sk_fail "$who $proto: session not resumed: $(grep -E '^(New|Reused),' "$SK_TMP/tls.out")"
    done
done

# Revoke alice. Only the CRL file changes; the gateway must notice by itself.
"$SK_BIN/sekisho-ca" revoke --dir "$SK_CA_DIR" --user alice --tenant acme --reason keyCompromise \
    >"$SK_TMP/revoke.log" 2>&1 || sk_fail "sekisho-ca revoke: $(cat "$SK_TMP/revoke.log")"
# Compare normalised serials: a serial whose first byte is below 0x10 prints with a
# leading zero in the CRL text.
crl_has_serial() {
    local want s
    want=$(sk_norm_serial "$1")
    while read -r s; do
        [ "$(sk_norm_serial "$s")" = "$want" ] && return 0
    done < <(openssl crl -in "$SK_CA_DIR/crl.pem" -noout -text | sed -n 's/.*Serial Number: *//p')
    return 1
}
crl_has_serial "$(cat "$SK_TMP/users/alice.serial")" ||
    sk_fail "test setup: alice's serial is not in the new CRL"
lc_wait_reload 1
echo_before=$(upstream_echo_count)

# 1. The connection kept alive from before: refused at its next request, then closed.
code=$(lc_ka_request ka_alice /echo "$acookie")
sk_assert_eq "$code" 403 "alice's kept-alive connection after revocation"
lc_ka_closed ka_alice 5 || sk_fail "alice's kept-alive connection stays open after the 403"

# 2. A new handshake with the revoked certificate fails: no HTTP at all.
code=$(sk_curl -u alice -C "$acookie" /echo)
sk_assert_eq "$code" 000 "new handshake with alice's revoked certificate"
code=$(sk_curl -u alice /.sekisho/login -H 'Accept: text/html')
sk_assert_eq "$code" 000 "login form with alice's revoked certificate"

# 3. Resuming a saved session does not get alice through either.
for proto in -tls1_2 -tls1_3; do
    code=$(lc_tls_get alice "$proto" -sess_in "$SK_TMP/sess.alice$proto" /echo "$acookie")
    sk_assert_ne "$code" 200 "alice $proto: resumed session after revocation"
    sk_assert_file_not_contains "$SK_TMP/tls.out" '"X-Sekisho-User"' "alice $proto: resumed session reached the upstream"
    if [[ $code != 000 ]]; then
        sk_assert_eq "$code" 403 "alice $proto: HTTP status on a resumed session after revocation"
    fi
done
sk_assert_eq "$(upstream_echo_count)" "$echo_before" "requests of alice reaching the upstream after revocation"

# bob is untouched: his kept-alive connection survived the reload, his sessions work.
sk_assert_eq "$(lc_ka_request ka_bob /echo "$bcookie")" 200 "bob's kept-alive connection after the CRL reload"
sk_assert_eq "$(sk_echo_header_values X-Sekisho-User "$SK_TMP/ka.ka_bob.out" | tail -n 1)" bob \
    "identity on bob's kept-alive connection"
code=$(sk_curl -u bob -C "$bcookie" /echo)
sk_assert_eq "$code" 200 "bob, new handshake, after alice's revocation"
for proto in -tls1_2 -tls1_3; do
    code=$(lc_tls_get bob "$proto" -sess_in "$SK_TMP/sess.bob$proto" /echo "$bcookie")
    sk_assert_eq "$code" 200 "bob $proto: saved session after alice's revocation"
done

# No restart happened, and the refusals are counted.
sk_assert_eq "$SK_GW_PID" "$gw_pid" "gateway pid"
kill -0 "$SK_GW_PID" 2>/dev/null || sk_fail "gateway died"
code=$(sk_curl -u bob /.sekisho/metrics)
sk_assert_eq "$code" 200 "metrics"
refused=$(awk '$1 ~ /revoked_refused_total$/ { print $2 }' "$SK_TMP/last.body")
[[ -n $refused && $refused -ge 1 ]] ||
    sk_fail "metrics: revoked_refused_total should count alice's refused request, got '$refused'"
lc_ka_close ka_bob
sk_stop_gateway
sk_pass
