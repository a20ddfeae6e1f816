#!/usr/bin/env bash
# Session timeouts at the configuration minimum (idle_timeout 60 s, absolute_timeout
# 120 s) and their audit entries, with the gateway's wall clock moved by libfaketime
# (no real waiting):
#  - no request for 75 s: the next request is refused (401), session.idle_logoff;
#  - requests at 30 s and 50 s, then one 135 s after login: refused, session.expired;
#  - active every 25 s for 75 s: still logged in (idle means no request for 60 s).
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/../lifecycle/common.sh"
sk_setup
command -v jq >/dev/null || sk_fail "jq not installed"
sk_make_ca alice:acme bob:acme carol:acme
sk_start_upstream
sk_write_config <<'EOF2'
[policy]
idle_timeout = 60s
absolute_timeout = 120s
EOF2
for u in alice bob carol; do sk_add_user "$u" acme "$(sk_password)"; done
lc_start_gateway_ft +0
X=$SK_TMP/export.jsonl
events_of() { # USER EVENT: count in the audit log so far
    lc_audit_export "$X"
    lc_jq_count "$X" ".ev == \"$2\" and .actor == \"$1\""
}

# Offsets are seconds on the gateway's clock; real time passing in between (a few
# seconds at most) only adds to them, and every limit below has >= 10 s of margin.
clock=0
at() { clock=$1; lc_set_clock "+${1}s"; }

# 1. Idle: alice logs in at 0, nothing until 75.
acookie=$(sk_login alice)
sk_assert_eq "$(sk_curl -u alice -C "$acookie" /echo)" 200 "alice right after login"
at 75
sk_assert_eq "$(sk_curl -u alice -C "$acookie" /echo)" 401 "alice after 75 s without a request"
sk_assert_eq "$(events_of alice session.idle_logoff)" 1 "session.idle_logoff entries for alice"
sk_assert_eq "$(events_of alice session.expired)" 0 "session.expired entries for alice"

# 2. Absolute: bob logs in at 75, requests at +30 and +50 (never 60 s idle), then
#    at +135 the session is past its absolute lifetime.
bcookie=$(sk_login bob)
login=$clock
for d in 30 50; do
    at $((login + d))
    sk_assert_eq "$(sk_curl -u bob -C "$bcookie" /echo)" 200 "bob $d s after login"
done
at $((login + 135))
sk_assert_eq "$(sk_curl -u bob -C "$bcookie" /echo)" 401 "bob 135 s after login (absolute_timeout 120 s)"
sk_assert_eq "$(events_of bob session.expired)" 1 "session.expired entries for bob"
sk_assert_eq "$(events_of bob session.idle_logoff)" 0 "session.idle_logoff entries for bob"

# 3. An active user is not logged off for being idle: carol sends a request every
#    25 s; 75 s after login her last request was 25 s ago.
ccookie=$(sk_login carol)
login=$clock
for d in 25 50 75 100; do
    at $((login + d))
    code=$(sk_curl -u carol -C "$ccookie" /echo)
    [[ $code == 200 ]] || sk_fail "carol, active every 25 s, refused ($code) $d s after login, 25 s after her \
previous request (idle_timeout 60 s); audit: $(lc_audit_export "$X"; jq -c 'select(.actor == "carol") | [.ev, .ts]' "$X" | tr '\n' ' ')"
done
sk_assert_eq "$(events_of carol session.idle_logoff)" 0 "session.idle_logoff entries for carol"

sk_stop_gateway
out=$("$SK_BIN/sekishoctl" -c "$SK_CONF" audit verify 2>&1) || sk_fail "audit verify: $out"
sk_pass
