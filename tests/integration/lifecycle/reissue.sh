#!/usr/bin/env bash
# sekisho-ca reissue (issue 3) against a running gateway, no restart: the new
# certificate works at once; after the CRL reload the old one fails at the handshake
# and on its kept-alive connection; a login session made with the old certificate
# is usable neither with the new certificate (other serial) nor with the old one.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
sk_setup
sk_setup_gateway alice:acme bob:acme
lc_reload_mark
gw_pid=$SK_GW_PID
u=$SK_TMP/users

upstream_echo_count() { grep -c ' /echo' "$SK_UP_LOG" || true; }

old_cookie=$(sk_login alice)
sk_assert_eq "$(sk_curl -u alice -C "$old_cookie" /echo)" 200 "alice (old certificate) before reissue"
lc_ka_open ka_old alice -tls1_3
sk_assert_eq "$(lc_ka_request ka_old /echo "$old_cookie")" 200 "kept-alive connection of the old certificate"
code=$(lc_tls_get alice -tls1_2 -sess_out "$SK_TMP/sess.old" /echo "$old_cookie")
sk_assert_eq "$code" 200 "TLS session of the old certificate"

# Reissue: new key + certificate + PKCS#12 as alice2.*, old certificate revoked.
printf '%s' "p12-$(openssl rand -hex 12)" >"$u/alice2.p12pass"
"$SK_BIN/sekisho-ca" reissue --dir "$SK_CA_DIR" --user alice --tenant acme --out "$u/alice2.p12" \
    --password-file "$u/alice2.p12pass" >"$SK_TMP/reissue.log" 2>&1 </dev/null ||
    sk_fail "sekisho-ca reissue: $(cat "$SK_TMP/reissue.log")"
sk_p12_to_pem "$u/alice2.p12" "$u/alice2.p12pass" "$u/alice2"
old_serial=$(sk_norm_serial "$(cat "$u/alice.serial")")
new_serial=$(sk_norm_serial "$(openssl x509 -in "$u/alice2.crt" -noout -serial | sed 's/^serial=//')")
sk_assert_ne "$new_serial" "$old_serial" "serial of the reissued certificate"
sk_assert_eq "$(openssl x509 -in "$u/alice2.crt" -noout -subject -nameopt RFC2253)" "subject=CN=alice,O=acme" \
    "subject of the reissued certificate"

# The new certificate is accepted right away (same CA, not in any CRL).
code=$(sk_curl -u alice2 /.sekisho/health)
sk_assert_eq "$code" 200 "new certificate: handshake without a gateway restart"
lc_wait_reload 1

# Old certificate: refused at the handshake and on the connection kept from before.
sk_assert_eq "$(sk_curl -u alice -C "$old_cookie" /echo)" 000 "old certificate, new handshake, old session"
sk_assert_eq "$(sk_curl -u alice /.sekisho/login -H 'Accept: text/html')" 000 "old certificate, login form"
echo_before=$(upstream_echo_count)
sk_assert_eq "$(lc_ka_request ka_old /echo "$old_cookie")" 403 "old certificate's kept-alive connection"
lc_ka_closed ka_old 5 || sk_fail "old certificate's kept-alive connection stays open after the 403"
code=$(lc_tls_get alice -tls1_2 -sess_in "$SK_TMP/sess.old" /echo "$old_cookie")
sk_assert_ne "$code" 200 "resumed TLS session of the old certificate"

# The session made with the old certificate does not follow the user to the new one.
sk_assert_eq "$(sk_curl -u alice2 -C "$old_cookie" /echo)" 401 "old session with the new certificate (API)"
code=$(sk_curl -u alice2 -C "$old_cookie" /echo -H 'Accept: text/html')
sk_assert_eq "$code" 303 "old session with the new certificate (browser)"
sk_assert_match "$(sk_last_header location)" '^(https://[^/]+)?/\.sekisho/login' "redirect for the old session"
sk_assert_eq "$(upstream_echo_count)" "$echo_before" "requests with the old session reaching the upstream"

# A fresh login with the new certificate works and carries the new serial upstream.
code=$(sk_login_attempt alice2 alice "$(sk_user_password alice)")
sk_assert_eq "$code" 303 "login with the reissued certificate"
new_cookie=$(sk_session_cookie_from_last)
sk_assert_ne "$new_cookie" "" "session cookie for the reissued certificate"
sk_assert_eq "$(sk_curl -u alice2 -C "$new_cookie" /echo)" 200 "/echo with the reissued certificate"
sk_assert_eq "$(sk_echo_header_values X-Sekisho-User)" alice "identity with the reissued certificate"
sk_assert_eq "$(sk_norm_serial "$(sk_echo_header_values X-Sekisho-Cert-Serial)")" "$new_serial" \
    "X-Sekisho-Cert-Serial after reissue"
# ... and the new session is not usable with the old certificate (refused anyway).
sk_assert_eq "$(sk_curl -u alice -C "$new_cookie" /echo)" 000 "new session with the old certificate"
code=$(lc_tls_get alice -tls1_2 -sess_in "$SK_TMP/sess.old" /echo "$new_cookie")
sk_assert_ne "$code" 200 "new session over a resumed TLS session of the old certificate"

sk_assert_eq "$(sk_curl -u bob -C "$(sk_login bob)" /echo)" 200 "bob after alice's reissue"
sk_assert_eq "$SK_GW_PID" "$gw_pid" "gateway pid (no restart)"
sk_stop_gateway
sk_pass
