#!/usr/bin/env bash
# Two gateway nodes on one PostgreSQL (issue 10), real processes on two ports in
# front of one upstream, a PostgreSQL this test starts itself:
#  - a session created on node A is accepted on node B; a TLS session saved from A
#    resumes on B (shared ticket keys); a login form fetched from A posts on B;
#  - five wrong passwords alternating between the nodes lock the account;
#  - a TOTP code accepted on A is refused on B;
#  - a logout on A is refused on B within 1 s;
#  - SIGKILL of node A during a loop of requests: the client goes on at B with
#    the same session, no new login;
#  - PostgreSQL stopped: logins answer 503 with Retry-After, an alarm is mailed, a
#    session B checked just before is still served (outage grace); started again:
#    logins work without restarting the gateway, and the recovery is mailed.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# shellcheck source=../lifecycle/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lifecycle/common.sh"
# shellcheck source=../policy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../policy/common.sh"
# shellcheck source=../pg.sh
source "$(dirname "${BASH_SOURCE[0]}")/../pg.sh"
# shellcheck source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
sk_setup
command -v oathtool >/dev/null || sk_fail "oathtool not installed"

cl_setup alice:acme bob:acme carol:acme dave:acme </dev/null
cl_start A
cl_start B

# ---- a session from A works on B; TLS resumption and CSRF across nodes -------------
cl_use A
acookie=$(sk_login alice)
cl_use B
sk_assert_eq "$(sk_curl -u alice -C "$acookie" /echo)" 200 "A's session on B"
sk_assert_eq "$(sk_echo_header_values X-Sekisho-User)" alice "B proxied with alice's identity"
cl_use A
sk_assert_eq "$(lc_tls_get alice -tls1_3 -sess_out "$SK_TMP/sessA" /.sekisho/health)" 200 "full handshake on A"
cl_use B
sk_assert_eq "$(lc_tls_get alice -tls1_3 -sess_in "$SK_TMP/sessA" /.sekisho/health)" 200 "A's TLS session offered to B"
lc_tls_reused || sk_fail "B did not resume a TLS session issued by A (ticket keys not shared)"
# The login form's CSRF token from A is accepted by B.
cl_use A
code=$(sk_curl -u dave /.sekisho/login -c "$SK_TMP/jar.dave" -H 'Accept: text/html')
sk_assert_eq "$code" 200 "login form on A"
form=()
while IFS=$'\t' read -r n v; do form+=(--data-urlencode "$n=$v"); done < <(sk_hidden_fields_from_last)
printf '%s' "$(sk_user_password dave)" >"$SK_TMP/dave.pw"
cl_use B
code=$(sk_curl -u dave /.sekisho/login -b "$SK_TMP/jar.dave" -H 'Accept: text/html' "${form[@]}" \
    --data-urlencode id=dave --data-urlencode "password@$SK_TMP/dave.pw")
sk_assert_eq "$code" 303 "A's login form posted to B"
rm -f "$SK_TMP/dave.pw"

# ---- lockout counted across nodes ---------------------------------------------------
for i in 1 2 3 4 5; do
    if ((i % 2)); then cl_use A; else cl_use B; fi
    sk_assert_eq "$(sk_login_attempt bob bob "Wrong-Pass9-$i")" 401 "wrong password $i for bob"
done
"$SK_BIN/sekishoctl" -c "$SK_TMP/a.conf" user show bob >"$SK_TMP/bob.show" 2>&1 || sk_fail "user show bob"
grep -qiE 'locked' "$SK_TMP/bob.show" || sk_fail "bob not locked after 5 failures on two nodes: $(cat "$SK_TMP/bob.show")"
for n in A B; do
    cl_use "$n"
    sk_assert_eq "$(sk_login_attempt bob bob "$(sk_user_password bob)")" 401 "bob's right password on $n while locked"
done

# ---- a TOTP code used on A is refused on B --------------------------------------------
"$SK_BIN/sekishoctl" -c "$SK_TMP/a.conf" user totp enable carol >"$SK_TMP/ctl.out" 2>&1 || sk_fail "totp enable"
secret=$(grep -m1 -o 'secret=[A-Z2-7]*' "$SK_TMP/ctl.out" | cut -d= -f2)
[[ -n $secret ]] || sk_fail "no secret in the otpauth URI"
# Far enough from a step boundary that both attempts fall in the same step.
while (($(date +%s) % 30 > 24)); do sleep 1; done
otp=$(oathtool --totp -b "$secret")
cl_use A
sk_assert_eq "$(pc_login_attempt carol carol "$(sk_user_password carol)" --data-urlencode "totp=$otp")" 303 \
    "carol with a fresh TOTP code on A"
cl_use B
sk_assert_eq "$(pc_login_attempt carol carol "$(sk_user_password carol)" --data-urlencode "totp=$otp")" 401 \
    "the same TOTP code again on B"

# ---- logout on A: B refuses within 1 s -------------------------------------------------
cl_use B
sk_assert_eq "$(sk_curl -u alice -C "$acookie" /echo)" 200 "alice on B before the logout"
cl_use A
sk_assert_eq "$(sk_curl -u alice -C "$acookie" /.sekisho/logout -H 'Accept: text/html')" 200 "logout form on A"
csrf=$(sk_csrf_from_last)
sk_assert_eq "$(sk_curl -u alice -C "$acookie" /.sekisho/logout -H 'Accept: text/html' \
    --data-urlencode "csrf=$csrf")" 303 "logout on A"
t0=$(date +%s%N)
cl_use B
code=$(sk_curl -u alice -C "$acookie" /echo)
while [[ $code == 200 ]] && (($(date +%s%N) - t0 < 3000000000)); do
    sleep 0.05
    code=$(sk_curl -u alice -C "$acookie" /echo)
done
ms=$((($(date +%s%N) - t0) / 1000000))
sk_assert_eq "$code" 401 "alice's ended session on B"
sk_assert_lt "$ms" 1000 "milliseconds until B refused the session ended on A"

# ---- SIGKILL of A in the middle of traffic: the client carries on at B --------------------
cl_use A
ecookie=$(sk_login alice)
ok_a=0 ok_b=0 relogin=0
for ((i = 0; i < 40; i++)); do
    ((i == 10)) && cl_kill A
    cl_use A
    code=$(sk_curl -u alice -C "$ecookie" /echo)
    if [[ $code == 200 ]]; then ok_a=$((ok_a + 1)); continue; fi
    cl_use B # the load balancer's next choice
    code=$(sk_curl -u alice -C "$ecookie" /echo)
    [[ $code == 200 ]] || relogin=$((relogin + 1))
    ok_b=$((ok_b + 1))
done
sk_assert_eq "$ok_a" 10 "requests A answered before it was killed"
sk_assert_eq "$relogin" 0 "requests B answered with anything but 200 (a new login needed)"
sk_assert_eq "$ok_b" 30 "requests B took over"
cl_use B
sk_assert_eq "$(lc_tls_get alice -tls1_3 -sess_in "$SK_TMP/sessA" /.sekisho/health)" 200 "A's TLS session on B after A died"
lc_tls_reused || sk_fail "B did not resume A's TLS session after A died"

# ---- PostgreSQL stops: 503 for logins, an alarm, the grace; then recovery -----------------
cl_use B
gcookie=$(sk_login dave)
sk_assert_eq "$(sk_curl -u dave -C "$gcookie" /echo)" 200 "dave on B before the outage"
sk_pg_stop || sk_fail "PostgreSQL did not stop"
sk_assert_eq "$(sk_curl -u dave -C "$gcookie" /echo)" 200 "dave's session, checked just before, during the outage"
# Every request needs the account's record first: the login form itself is refused
# (fail closed), with Retry-After, while the database is away.
sk_assert_eq "$(sk_curl -u carol /.sekisho/login -H 'Accept: text/html')" 503 "the login form while PostgreSQL is down"
sk_assert_match "$(sk_last_header retry-after)" '^[0-9]+$' "Retry-After on the 503"
lc_wait_for 20 pc__mail_ge "Sekisho ALARM: store unreachable" 1 || sk_fail "no store alarm mailed"
sk_pg_restart
code=000
for ((i = 0; i < 100; i++)); do
    code=$(pc_login_attempt dave dave "$(sk_user_password dave)")
    [[ $code == 303 ]] && break
    sleep 0.2
done
sk_assert_eq "$code" 303 "a login once PostgreSQL is back (no gateway restart)"
lc_wait_for 20 pc__mail_ge "Sekisho: store reachable again" 1 || sk_fail "no recovery mail"
sk_assert_eq "$(lc_mail_count 'Sekisho ALARM: store unreachable')" 1 "store alarms mailed (one per outage)"

cl_use B
sk_stop_gateway
sk_pass
