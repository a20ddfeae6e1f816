#!/usr/bin/env bash
# SIGHUP reloads the CRL (issue 3) without dropping connections. The file watcher is
# slowed to once an hour here, so that what happens is SIGHUP's doing. A CRL file
# that cannot be loaded is refused as a whole: the previous CRL stays in force.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
sk_setup
sk_make_ca alice:acme bob:acme carol:acme
sk_start_upstream
sk_write_config <<'EOF2'
[tls]
crl_check_interval = 1h
EOF2
for u in alice bob carol; do sk_add_user "$u" acme "$(sk_password)"; done
sk_start_gateway
lc_reload_mark
gw_pid=$SK_GW_PID

bcookie=$(sk_login bob)
ccookie=$(sk_login carol)
lc_ka_open ka_bob bob -tls1_3
sk_assert_eq "$(lc_ka_request ka_bob /echo "$bcookie")" 200 "bob's kept-alive connection before SIGHUP"
lc_ka_open ka_carol carol -tls1_2
sk_assert_eq "$(lc_ka_request ka_carol /echo "$ccookie")" 200 "carol's kept-alive connection before SIGHUP"

"$SK_BIN/sekisho-ca" revoke --dir "$SK_CA_DIR" --user carol --tenant acme >"$SK_TMP/revoke.log" 2>&1 ||
    sk_fail "sekisho-ca revoke carol: $(cat "$SK_TMP/revoke.log")"
# Control: with the watcher asleep, the new CRL is not in force before the signal.
sleep 2
code=$(sk_curl -u carol -C "$ccookie" /echo)
sk_assert_eq "$code" 200 "carol before SIGHUP (watcher interval 1h: CRL not reloaded yet)"

kill -HUP "$SK_GW_PID"
lc_wait_reload 1 10
code=$(sk_curl -u carol -C "$ccookie" /echo)
sk_assert_eq "$code" 000 "carol's new handshake after SIGHUP"
sk_assert_eq "$(lc_ka_request ka_carol /echo "$ccookie")" 403 "carol's kept-alive connection after SIGHUP"
sk_assert_eq "$(lc_ka_request ka_bob /echo "$bcookie")" 200 "bob's kept-alive connection survives SIGHUP"

# A broken CRL file: the reload fails, the previous CRL (carol revoked) stays.
cp "$SK_CA_DIR/crl.pem" "$SK_TMP/crl.good"
printf -- '-----BEGIN X509 CRL-----\nnot a crl\n-----END X509 CRL-----\n' >"$SK_TMP/crl.bad"
mv -f "$SK_TMP/crl.bad" "$SK_CA_DIR/crl.pem"
fails=$(grep -c "TLS reload failed" "$SK_GW_LOG" || true)
kill -HUP "$SK_GW_PID"
lc_wait_for 10 lc__log_count_ge "TLS reload failed" $((fails + 1)) ||
    sk_fail "no 'TLS reload failed' in the gateway log after SIGHUP with a broken CRL"
kill -0 "$SK_GW_PID" 2>/dev/null || sk_fail "gateway died on a broken CRL"
code=$(sk_curl -u carol -C "$ccookie" /echo)
sk_assert_eq "$code" 000 "carol after a failed reload (previous CRL must stay in force)"
code=$(sk_curl -u bob -C "$bcookie" /echo)
sk_assert_eq "$code" 200 "bob after a failed reload"
sk_assert_eq "$(lc_ka_request ka_bob /echo "$bcookie")" 200 "bob's kept-alive connection after a failed reload"

# A good CRL again (made by sekisho-ca, no revocation lifted): loads fine.
lc_reload_mark
"$SK_BIN/sekisho-ca" crl --dir "$SK_CA_DIR" >"$SK_TMP/crl.log" 2>&1 || sk_fail "sekisho-ca crl: $(cat "$SK_TMP/crl.log")"
kill -HUP "$SK_GW_PID"
lc_wait_reload 1 10
code=$(sk_curl -u carol -C "$ccookie" /echo)
sk_assert_eq "$code" 000 "carol after the good CRL is back"
acookie=$(sk_login alice)
code=$(sk_curl -u alice -C "$acookie" /echo)
sk_assert_eq "$code" 200 "alice after the reloads"
sk_assert_eq "$SK_GW_PID" "$gw_pid" "gateway pid"
lc_ka_close ka_bob
sk_stop_gateway
sk_pass
