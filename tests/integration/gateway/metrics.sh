#!/usr/bin/env bash
# /.sekisho/metrics (issue 11 item 7): valid Prometheus text (promtool check metrics),
# labelled reasons that follow what happened, latency histograms, expiry gauges and
# build_info.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
sk_setup
command -v promtool >/dev/null || sk_fail "promtool is needed (Debian package prometheus)"
mport=$(sk_free_port)
sk_make_ca alice:acme
sk_start_upstream
sk_write_config <<EOF2
[metrics]
listen = $SK_HOST:$mport
EOF2
sk_add_user alice acme "$(sk_password)"
sk_add_user carol acme "$(sk_password)"
"$SK_BIN/sekishoctl" -c "$SK_CONF" user lock carol@acme >"$SK_TMP/lock.log" 2>&1 ||
    sk_fail "sekishoctl user lock: $(cat "$SK_TMP/lock.log")"
sk_start_gateway
cookie=$(sk_login alice)
metrics() { # -> $SK_TMP/metrics.txt
    local code
    code=$(sk_curl -u alice -C "$cookie" /.sekisho/metrics)
    sk_assert_eq "$code" 200 "GET /.sekisho/metrics"
    cp "$SK_TMP/last.body" "$SK_TMP/metrics.txt"
}
val() { awk -v m="$1" '$1 == m { print $2 }' "$SK_TMP/metrics.txt"; }

# What happened, so the series have something to count:
code=$(sk_login_attempt alice alice "Wrong-Passw0rd-1")
sk_assert_eq "$code" 401 "a wrong password"
code=$(sk_curl /echo)
sk_assert_eq "$code" 000 "a client without a certificate is refused at the handshake"
for i in 1 2 3; do
    code=$(sk_curl -u alice -C "$cookie" /echo)
    sk_assert_eq "$code" 200 "proxied request $i"
done

metrics
promtool check metrics <"$SK_TMP/metrics.txt" >"$SK_TMP/promtool.out" 2>&1 ||
    sk_fail "promtool check metrics: $(cat "$SK_TMP/promtool.out")"
sk_assert_eq "$(val 'sekisho_login_failures_total{reason="bad_password"}')" 1 "login failures by reason: bad_password"
sk_assert_eq "$(val 'sekisho_login_failures_total{reason="locked"}')" 0 "login failures by reason: locked"
sk_assert_lt 0 "$(val 'sekisho_tls_refusals_total{reason="no_cert"}')" "handshake refusals by reason: no_cert"
sk_assert_eq "$(val 'sekisho_build_info{version="'"$("$SK_BIN/sekisho" --version | awk '{ print $2 }')"'"}')" 1 \
    "build_info carries the version sekisho --version prints"
sk_assert_lt 2 "$(val 'sekisho_upstream_response_seconds_count')" "upstream latency observations"
sk_assert_lt 3 "$(val 'sekisho_request_duration_seconds_count')" "request latency observations"
sk_assert_eq "$(val 'sekisho_request_duration_seconds_bucket{le="+Inf"}')" "$(val 'sekisho_request_duration_seconds_count')" \
    "the +Inf bucket holds every observation"
sk_assert_lt 0 "$(val 'sekisho_login_duration_seconds_count')" "login latency observations"
# The CRL sk_make_ca wrote is valid for days; the certificates for longer.
sk_assert_lt 3600 "$(val 'sekisho_crl_next_update_seconds')" "seconds to the CRL's nextUpdate"
sk_assert_lt 86400 "$(val 'sekisho_server_certificate_expiry_seconds')" "seconds to the server certificate's expiry"
sk_assert_lt 86400 "$(val 'sekisho_client_ca_expiry_seconds')" "seconds to the client CA's expiry"
sk_assert_eq "$(val 'sekisho_audit_write_errors_total')" 0 "audit write errors"
# The writer keeps up: what is queued is at most a second or two old.
[[ $(val 'sekisho_audit_lag_seconds') =~ ^[0-9]+\.[0-9]{3}$ ]] || sk_fail "sekisho_audit_lag_seconds: $(val 'sekisho_audit_lag_seconds')"
sk_assert_lt "$(val 'sekisho_audit_lag_seconds' | cut -d. -f1)" 5 "audit writer lag (s)"
sk_assert_lt -1 "$(val 'sekisho_audit_queue_lines')" "audit queue length present"
# The census (at start, then every minute) counts the account locked before the start.
for ((i = 0; i < 50; i++)); do
    [[ -n $(val 'sekisho_accounts_locked') ]] && break
    sleep 0.2
    metrics
done
sk_assert_eq "$(val 'sekisho_accounts_locked')" 1 "locked accounts (carol, locked by an operator)"
sk_assert_eq "$(val 'sekisho_store_errors_total')" 0 "store errors"

# The plain listener: the same series without a client certificate, health, nothing else.
code=$(curl -s --max-time 10 -o "$SK_TMP/plain.txt" -w '%{http_code}' "http://$SK_HOST:$mport/metrics")
sk_assert_eq "$code" 200 "plain GET /metrics"
promtool check metrics <"$SK_TMP/plain.txt" >"$SK_TMP/promtool2.out" 2>&1 ||
    sk_fail "promtool check metrics (plain listener): $(cat "$SK_TMP/promtool2.out")"
sk_assert_file_contains "$SK_TMP/plain.txt" 'sekisho_login_failures_total{reason="bad_password"} 1' "plain metrics values"
code=$(curl -s --max-time 10 -o "$SK_TMP/plain.health" -w '%{http_code}' "http://$SK_HOST:$mport/health")
sk_assert_eq "$code" 200 "plain GET /health"
sk_assert_eq "$(head -n 1 "$SK_TMP/plain.health")" "ok" "plain health body"
sk_assert_eq "$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' "http://$SK_HOST:$mport/echo")" 404 \
    "nothing but /metrics and /health on the plain listener"
sk_assert_eq "$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' -X POST -d x "http://$SK_HOST:$mport/metrics")" \
    405 "POST on the plain listener"
sk_stop_gateway
sk_pass
