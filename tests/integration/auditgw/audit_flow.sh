#!/usr/bin/env bash
# The gateway's audit log after a realistic session (issue 5): wrong password,
# unknown user, ID != certificate, right password, proxied requests, logout, idle
# logoff (the gateway's clock is moved 90 s with libfaketime), a revoked certificate
# refused at the handshake after a CRL reload, SIGTERM. Then, with the gateway
# stopped: `audit verify` exits 0, `audit export` (JSON Lines) holds every one of
# those events with the right details and ends with a signed checkpoint; no
# password appears anywhere in the log; one edited byte makes verify fail at that line.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/../lifecycle/common.sh"
sk_setup
command -v jq >/dev/null || sk_fail "jq not installed"
sk_make_ca alice:acme bob:acme dave:acme ghost:acme
sk_start_upstream
sk_write_config <<EOF2
[tls]
crl_check_interval = 1s
[policy]
idle_timeout = 60s
absolute_timeout = 120s
[audit]
witness = cat >> $SK_TMP/witness.log
EOF2
for u in alice bob dave; do sk_add_user "$u" acme "$(sk_password)"; done
lc_start_gateway_ft +0
lc_reload_mark
AUDIT_DIR=$SK_TMP/state/audit
ctl() { "$SK_BIN/sekishoctl" -c "$SK_CONF" "$@"; }
serial_of() { sk_norm_serial "$(cat "$SK_TMP/users/$1.serial")"; }

# --- the scenario ---
sk_assert_eq "$(sk_login_attempt alice alice "Wrong-Passw0rd")" 401 "wrong password"
sk_assert_eq "$(sk_login_attempt ghost ghost "Wrong-Passw0rd")" 401 "unknown user"
sk_assert_eq "$(sk_login_attempt alice bob "$(sk_user_password bob)")" 401 "ID != certificate CN"
acookie=$(sk_login alice)
probe=probe-$(openssl rand -hex 6)
sk_assert_eq "$(sk_curl -u alice -C "$acookie" "/echo?token=$probe")" 200 "proxied request"
sk_assert_eq "$(sk_curl -u alice -C "$acookie" /status/418)" 418 "proxied request answered 418 upstream"
code=$(sk_curl -u alice -C "$acookie" /.sekisho/logout -H 'Accept: text/html')
sk_assert_eq "$code" 200 "logout form"
csrf=$(sk_csrf_from_last)
code=$(sk_curl -u alice -C "$acookie" /.sekisho/logout -H 'Accept: text/html' --data-urlencode "csrf=$csrf")
sk_assert_eq "$code" 303 "logout"

bcookie=$(sk_login bob)
sk_assert_eq "$(sk_curl -u bob -C "$bcookie" /echo)" 200 "bob before the idle period"
lc_set_clock +90s
sk_assert_eq "$(sk_curl -u bob -C "$bcookie" /echo)" 401 "bob after 90 s idle (idle_timeout 60 s)"

"$SK_BIN/sekisho-ca" revoke --dir "$SK_CA_DIR" --user dave --tenant acme >"$SK_TMP/revoke.log" 2>&1 ||
    sk_fail "sekisho-ca revoke dave: $(cat "$SK_TMP/revoke.log")"
lc_wait_reload 1
for i in 1 2 3; do
    sk_assert_eq "$(sk_curl -u dave /.sekisho/login -H 'Accept: text/html')" 000 "revoked certificate, attempt $i"
done
sk_stop_gateway

# --- verify and export ---
out=$(ctl audit verify 2>&1) || sk_fail "audit verify after a clean stop: $out"
sk_assert_match "$out" '^OK' "audit verify output"
# Every checkpoint went to [audit] witness ([audit] witness through the real gateway);
# the last one is what `audit head` prints, and the log contains and extends them all.
[[ -s $SK_TMP/witness.log ]] || sk_fail "the witness command got no checkpoint"
awk -v p="$SK_TMP/wnote." '{ print > (p n) } /^\xe2\x80\x94 / { close(p n); n++ }' n=0 "$SK_TMP/witness.log"
sk_assert_eq "$(ctl audit head | sha256sum)" "$(sha256sum <"$(ls -v "$SK_TMP"/wnote.* | tail -n 1)")" \
    "audit head equals the last checkpoint the witness got"
out=$(ctl audit verify --witness "$SK_TMP"/wnote.* 2>&1) || sk_fail "audit verify --witness: $out"
sk_assert_eq "$(grep -c ': checkpoint [0-9]* present' <<<"$out")" "$(ls "$SK_TMP"/wnote.* | wc -l)" \
    "every witnessed checkpoint is in the log"
X=$SK_TMP/export.jsonl
lc_audit_export "$X"
cnt() { lc_jq_count "$X" "$1"; }
has() { # JQ_FILTER WHAT
    local n
    n=$(cnt "$1")
    ((n >= 1)) || sk_fail "audit export: no entry for $2 (filter: $1); events: $(jq -r .ev "$X" | sort | uniq -c | tr '\n' ' ')"
}

has '.ev == "gateway.start"' "gateway.start"
has '.ev == "login.failure" and .details.reason == "bad_password" and .actor == "alice" and .tenant == "acme"' \
    "login.failure bad_password (alice)"
has '.ev == "login.failure" and .details.reason == "unknown_user" and .actor == "ghost"' "login.failure unknown_user (ghost)"
has '.ev == "login.failure" and .details.reason == "cert_mismatch" and .actor == "alice" and .details.login_id == "bob"' \
    "login.failure cert_mismatch (alice's certificate, ID bob)"
sk_assert_eq "$(cnt '.ev == "login.failure"')" 3 "number of login.failure entries"
has ".ev == \"login.success\" and .actor == \"alice\" and .tenant == \"acme\" and .peer != null and
     ((.serial // \"\") | ascii_downcase | ltrimstr(\"0\")) == \"$(serial_of alice)\"" "login.success of alice with her serial"
has '.ev == "login.success" and .actor == "bob"' "login.success of bob"
has '.ev == "http.request" and .actor == "alice" and .tenant == "acme" and .details.method == "GET" and
     .details.path == "/echo" and (.details.status | tostring) == "200"' "http.request GET /echo 200"
has '.ev == "http.request" and .details.path == "/status/418" and (.details.status | tostring) == "418"' \
    "http.request answered 418"
if grep -rqF -- "$probe" "$AUDIT_DIR"; then sk_fail "the query string of a request appears in the audit log"; fi
has '.ev == "session.logout" and .actor == "alice"' "session.logout"
has '.ev == "session.idle_logoff" and .actor == "bob"' "session.idle_logoff of bob"
has '.ev == "crl.reload" and .details.result == "ok" and (.details.revoked_serials | tostring) == "1"' \
    "crl.reload with dave revoked"
# Three refusals of one certificate from one peer: aggregated into one entry.
sk_assert_eq "$(cnt '.ev == "tls.refused.summary"')" 1 "tls.refused.summary entries for 3 refusals"
has '.ev == "tls.refused.summary" and .details.total == 3 and
     any(.details.refusals[]; .reason == "revoked" and .peer == "127.0.0.1" and .count == 3)' \
    "tls.refused.summary with 3 refusals of reason revoked"
has '.ev == "gateway.stop"' "gateway.stop"
sk_assert_eq "$(jq -s -r 'last.ev' "$X")" audit.checkpoint "last entry of the log"
sk_assert_match "$(jq -s -r 'last.sig // ""' "$X")" '^[A-Za-z0-9_-]{80,}$' "signature of the final checkpoint"
sk_assert_eq "$(jq -s '[.[] | select(.ev == "gateway.stop")][-1].seq < last.seq' "$X")" true \
    "final checkpoint after gateway.stop"
sk_assert_eq "$(jq -s '[.[].seq] == [range(.[0].seq; .[0].seq + length)]' "$X")" true "sequence numbers without gaps"
sk_assert_eq "$(jq -s 'all(.ts | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$"))' "$X")" true \
    "UTC timestamps"
# Login events are ordered as they happened.
sk_assert_eq "$(jq -s '([.[] | select(.ev == "login.success" and .actor == "alice")][0].seq) >
                       ([.[] | select(.ev == "login.failure")] | map(.seq) | max)' "$X")" true \
    "login.success after the three failures"
for u in alice bob dave; do
    if grep -rqF -- "$(sk_user_password "$u")" "$AUDIT_DIR"; then
        sk_fail "the password of $u appears in the audit log"
    fi
done
if grep -rqF -- "Wrong-Passw0rd" "$AUDIT_DIR"; then sk_fail "a submitted wrong password appears in the audit log"; fi

# --- tamper: one byte of the login.success line of alice ---
cp -a "$AUDIT_DIR" "$SK_TMP/audit.orig"
hit=$(grep -Hn '"ev":"login.success"' "$AUDIT_DIR"/audit-*.jsonl | grep '"actor":"alice"' | head -n 1)
seg=${hit%%:*}
rest=${hit#*:}
line=${rest%%:*}
[[ -n $seg && -n $line ]] || sk_fail "test setup: login.success line not found in the segment files"
sed -i "${line}s/\"actor\":\"alice\"/\"actor\":\"alicf\"/" "$seg"
grep -q '"actor":"alicf"' "$seg" || sk_fail "test setup: the edit did not happen"
rc=0
out=$(ctl audit verify 2>/dev/null) || rc=$?
sk_assert_eq "$rc" 1 "audit verify exit code after an edited byte"
sk_assert_contains "$out" "$(basename "$seg") line $line," "verify names the edited line"
sk_assert_match "$out" '^FAIL: edited' "verify names the problem"
rm -rf "$AUDIT_DIR"
cp -a "$SK_TMP/audit.orig" "$AUDIT_DIR"
out=$(ctl audit verify 2>&1) || sk_fail "audit verify after restoring the original: $out"

# Last, so that everything above is checked even if this fails: the summary must say
# WHICH certificate was refused (the serial of dave's revoked certificate).
has ".ev == \"tls.refused.summary\" and any(.details.refusals[];
     .reason == \"revoked\" and ((.serial // \"\") | ascii_downcase | ltrimstr(\"0\")) == \"$(serial_of dave)\")" \
    "serial $(serial_of dave) (dave, revoked) in the tls.refused.summary"
sk_pass
