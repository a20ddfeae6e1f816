#!/usr/bin/env bash
# A CRL past its nextUpdate fails closed (issue 3). The gateway runs under libfaketime
# and its wall clock is moved while it runs (common.sh: lc_start_gateway_ft):
#  - a CRL valid for 1 day is within crl_warn_before (3 d): one warning mail at start;
#  - 2 days later: new handshakes fail ("CRL has expired"), a connection kept alive
#    from before gets 503, the log says so and the operators get one alarm mail;
#  - a fresh CRL from sekisho-ca restores access without a restart.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
sk_setup
command -v faketime >/dev/null || sk_fail "faketime not installed"
sk_make_ca alice:acme
"$SK_BIN/sekisho-ca" crl --dir "$SK_CA_DIR" --days 1 >"$SK_TMP/crl1.log" 2>&1 ||
    sk_fail "sekisho-ca crl --days 1: $(cat "$SK_TMP/crl1.log")"
nu=$(date -d "$(openssl crl -in "$SK_CA_DIR/crl.pem" -noout -nextupdate | sed 's/^nextUpdate=//')" +%s)
left=$((nu - $(date +%s)))
((left > 86000 && left <= 86400)) || sk_fail "test setup: CRL nextUpdate is $left s away, expected about 1 day"
sk_start_upstream
{
    lc_fake_sendmail
    printf '[tls]\ncrl_check_interval = 1s\n'
} >"$SK_TMP/extra.ini"
sk_write_config <"$SK_TMP/extra.ini"
sk_add_user alice acme "$(sk_password)"
lc_start_gateway_ft +0
gw_pid=$SK_GW_PID

warn_subject='Sekisho warning: CRL expires soon'
alarm_subject='Sekisho ALARM: CRL expired'
lc__warned() { (($(lc_mail_count "$warn_subject") >= 1)); }
lc_wait_for 10 lc__warned || sk_fail "no '$warn_subject' mail within 10 s of the start: $(ls "$SK_TMP/mail")"
sk_assert_file_contains "$SK_GW_LOG" "expires in" "warning in the gateway log"
m=$(lc_mail_file "$warn_subject")
tr -d '\r' <"$m" | grep -qiE '^To: *ops@example\.test$' || sk_fail "warning mail not addressed to the operators: $(head -c 400 "$m")"
sk_assert_eq "$(lc_mail_count "$alarm_subject")" 0 "alarm mails while the CRL is still valid"

# Business as usual before expiry, on a connection that stays open.
cookie=$(sk_login alice)
lc_ka_open ka alice -tls1_3
sk_assert_eq "$(lc_ka_request ka /echo "$cookie")" 200 "kept-alive connection before expiry"
code=$(lc_tls_get alice -tls1_2 -sess_out "$SK_TMP/sess" /echo "$cookie")
sk_assert_eq "$code" 200 "TLS 1.2 session saved before expiry"
echo_before=$(grep -c ' /echo' "$SK_UP_LOG" || true)

# Two days later the CRL is past its nextUpdate.
lc_set_clock +2d
lc_wait_for 10 lc__log_count_ge "past its nextUpdate" 1 ||
    sk_fail "the gateway did not log the expired CRL within 10 s of the clock moving"
sk_assert_eq "$(lc_ka_request ka /echo "$cookie")" 503 "kept-alive connection after the CRL expired"
code=$(sk_curl -u alice -C "$cookie" /echo)
sk_assert_eq "$code" 000 "new handshake with an expired CRL"
code=$(sk_curl -u alice /.sekisho/login -H 'Accept: text/html')
sk_assert_eq "$code" 000 "login form with an expired CRL"
sk_assert_file_contains "$SK_GW_LOG" "CRL has expired" "handshake refusal reason in the gateway log"
code=$(lc_tls_get alice -tls1_2 -sess_in "$SK_TMP/sess" /echo "$cookie")
sk_assert_ne "$code" 200 "resumed TLS session with an expired CRL"
sk_assert_eq "$(grep -c ' /echo' "$SK_UP_LOG" || true)" "$echo_before" "requests reaching the upstream with an expired CRL"

lc__alarmed() { (($(lc_mail_count "$alarm_subject") >= 1)); }
lc_wait_for 10 lc__alarmed || sk_fail "no '$alarm_subject' mail within 10 s"
sk_assert_file_contains "$(lc_mail_file "$alarm_subject")" "X-Sekisho-Alert-Level: major" "CRL expired alarm level"
sk_assert_file_contains "$(lc_mail_file "$warn_subject")" "X-Sekisho-Alert-Level: minor" "CRL warning level"
m=$(lc_mail_file "$alarm_subject")
tr -d '\r' <"$m" | grep -qiE '^To: *ops@example\.test$' || sk_fail "alarm mail not addressed to the operators: $(head -c 400 "$m")"
sleep 2.5  # a few more checks (interval 1 s) must not repeat either mail
sk_assert_eq "$(lc_mail_count "$alarm_subject")" 1 "alarm mails for one expired CRL"
sk_assert_eq "$(lc_mail_count "$warn_subject")" 1 "warning mails for one CRL"

# The operator installs a fresh CRL (made at the gateway's current time): access is back.
sk_faketime +172700s "$SK_BIN/sekisho-ca" crl --dir "$SK_CA_DIR" --days 30 >"$SK_TMP/crl2.log" 2>&1 ||
    sk_fail "sekisho-ca crl --days 30: $(cat "$SK_TMP/crl2.log")"
lc_wait_for 10 lc__log_count_ge "access restored" 1 ||
    sk_fail "the gateway did not restore access within 10 s of a fresh CRL"
code=$(sk_curl -u alice /.sekisho/login -H 'Accept: text/html')
sk_assert_eq "$code" 200 "login form after a fresh CRL"
cookie=$(sk_login alice)
sk_assert_eq "$(sk_curl -u alice -C "$cookie" /echo)" 200 "/echo after a fresh CRL"
sk_assert_eq "$(lc_mail_count "$warn_subject")" 1 "warning mails after a CRL valid for 30 days"
sk_assert_eq "$SK_GW_PID" "$gw_pid" "gateway pid (no restart)"
lc_ka_close ka
sk_stop_gateway
sk_pass
