#!/usr/bin/env bash
# Issue 13 item 1: a control character (CR, LF, NUL, any other CTL but HTAB in a
# value) in the method, the request target, a header name or a header value, a bare
# LF line end, or an obs-fold continuation line is refused with 400 and nothing
# reaches the upstream. The upstream here is capture_upstream.pl, which records the
# raw bytes it gets and splits lines at a bare CR like lenient portals do: if the
# gateway forwarded "X-A: 1\rX-Sekisho-User: alice", the capture would show it.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
sk_setup
sk_make_ca alice:acme bob:acme
cap=$SK_TMP/capture
mkdir -p "$cap"
SK_UP_PORT=$(sk_free_port)
SK_UP_LOG=$SK_TMP/upstream.log
perl "$(dirname "${BASH_SOURCE[0]}")/capture_upstream.pl" "$SK_UP_PORT" "$cap" >"$SK_UP_LOG" 2>&1 &
SK_UP_PID=$!
sk_track "$SK_UP_PID"
sk_wait_port "$SK_UP_PORT" "$SK_UP_PID" 20 || sk_fail "capture upstream did not start"
sk_write_config </dev/null
sk_add_user alice acme "$(sk_password)" admin
sk_add_user bob acme "$(sk_password)" general
sk_start_gateway
cookie=$(sk_login bob)
host="$SK_HOST:$SK_GW_PORT"

captured() { find "$cap" -type f -name 'req.*' | wc -l | tr -d ' '; }

# send NAME FORMAT [ARGS...]: printf FORMAT into a request file, send it as bob,
# print the status line.
send() {
    local name=$1 f=$SK_TMP/raw.$1
    shift
    # shellcheck disable=SC2059
    printf "$@" >"$f.req"
    sk_raw_request bob "$f.req" 10 >"$f.resp"
    head -n 1 "$f.resp" | tr -d '\r'
}

# refused NAME FORMAT [ARGS...]: must get 400 and forward nothing.
refused() {
    local name=$1 before status
    before=$(captured)
    status=$(send "$@")
    sk_assert_match "$status" '^HTTP/1\.1 400' "$name must be refused"
    sk_assert_eq "$(captured)" "$before" "$name must not reach the upstream"
}

ck="Cookie: __Host-sekisho=$cookie"

# Control: a plain request and one with HTAB inside a value are proxied.
status=$(send ok 'GET /ok?a=1 HTTP/1.1\r\nHost: %s\r\n%s\r\nX-A: 1\t2\r\nConnection: close\r\n\r\n' "$host" "$ck")
sk_assert_match "$status" '^HTTP/1\.1 200' "well-formed request"
sk_assert_eq "$(captured)" 1 "the control request reached the upstream"
sk_assert_file_contains "$(find "$cap" -type f -name 'req.*' | head -n 1)" $'X-A: 1\t2' "HTAB in a value is kept"

# The report's attacks: a lone CR in a header value, in Host, in the query, in the
# method; the body-smuggling variant.
refused cr_value 'GET /ok HTTP/1.1\r\nHost: %s\r\n%s\r\nX-A: 1\rX-Sekisho-User: alice\rX-Sekisho-Roles: admin\r\nConnection: close\r\n\r\n' "$host" "$ck"
refused cr_smuggle 'POST /public HTTP/1.1\r\nHost: %s\r\n%s\r\nX-A: 1\rContent-Length: 0\r\nContent-Length: 44\r\nConnection: close\r\n\r\nGET /admin/secret HTTP/1.1\r\nHost: x\r\n\r\n' "$host" "$ck"
refused cr_host 'GET /ok HTTP/1.1\r\nHost: %s\rX-Sekisho-User: alice\r\n%s\r\nConnection: close\r\n\r\n' "$host" "$ck"
refused cr_query 'GET /ok?a=1\rX-Sekisho-User:alice HTTP/1.1\r\nHost: %s\r\n%s\r\nConnection: close\r\n\r\n' "$host" "$ck"
refused cr_path 'GET /ok\rX-Sekisho-User:alice HTTP/1.1\r\nHost: %s\r\n%s\r\nConnection: close\r\n\r\n' "$host" "$ck"
refused cr_method 'GET\rX-Sekisho-User:alice /ok HTTP/1.1\r\nHost: %s\r\n%s\r\nConnection: close\r\n\r\n' "$host" "$ck"
# NUL, other CTLs and DEL, in values, names, target and method.
refused nul_value 'GET /ok HTTP/1.1\r\nHost: %s\r\n%s\r\nX-A: 1\0X-Sekisho-User: alice\r\nConnection: close\r\n\r\n' "$host" "$ck"
refused nul_target 'GET /ok\0/../admin HTTP/1.1\r\nHost: %s\r\n%s\r\nConnection: close\r\n\r\n' "$host" "$ck"
refused nul_method 'GE\0T /ok HTTP/1.1\r\nHost: %s\r\n%s\r\nConnection: close\r\n\r\n' "$host" "$ck"
refused ctl_value 'GET /ok HTTP/1.1\r\nHost: %s\r\n%s\r\nX-A: 1\0012\r\nConnection: close\r\n\r\n' "$host" "$ck"
refused del_value 'GET /ok HTTP/1.1\r\nHost: %s\r\n%s\r\nX-A: 1\1772\r\nConnection: close\r\n\r\n' "$host" "$ck"
refused esc_value 'GET /ok HTTP/1.1\r\nHost: %s\r\n%s\r\nX-A: \033[2J\r\nConnection: close\r\n\r\n' "$host" "$ck"
refused ctl_name 'GET /ok HTTP/1.1\r\nHost: %s\r\n%s\r\nX-\001A: 1\r\nConnection: close\r\n\r\n' "$host" "$ck"
refused tab_name 'GET /ok HTTP/1.1\r\nHost: %s\r\n%s\r\nX-A\t: 1\r\nConnection: close\r\n\r\n' "$host" "$ck"
refused ctl_target 'GET /ok?a=\001 HTTP/1.1\r\nHost: %s\r\n%s\r\nConnection: close\r\n\r\n' "$host" "$ck"
refused tab_target 'GET /ok?a=\t HTTP/1.1\r\nHost: %s\r\n%s\r\nConnection: close\r\n\r\n' "$host" "$ck"
refused ctl_method 'G\001ET /ok HTTP/1.1\r\nHost: %s\r\n%s\r\nConnection: close\r\n\r\n' "$host" "$ck"
# Line structure: bare LF line ends and obs-fold continuation lines (which
# libmicrohttpd 0.9.75 would glue into another header).
refused bare_lf 'GET /ok HTTP/1.1\r\nHost: %s\r\n%s\r\nX-A: 1\nX-Sekisho-User: alice\r\nConnection: close\r\n\r\n' "$host" "$ck"
refused bare_lf_line 'GET /ok HTTP/1.1\nHost: %s\r\n%s\r\nConnection: close\r\n\r\n' "$host" "$ck"
refused obs_fold 'GET /ok HTTP/1.1\r\nHost: %s\r\n%s\r\nX-A: 1\r\n X-Sekisho-User: admin\r\nConnection: close\r\n\r\n' "$host" "$ck"
refused obs_fold_tab 'GET /ok HTTP/1.1\r\nHost: %s\r\n%s\r\nX-A: 1\r\n\tfoo\r\nConnection: close\r\n\r\n' "$host" "$ck"
refused obs_fold_last 'GET /ok HTTP/1.1\r\nHost: %s\r\n%s\r\nConnection: close\r\n x\r\n\r\n' "$host" "$ck"

# What held up in the review stays refused: absolute-form, asterisk-form and
# authority-form (CONNECT) targets, and two spaces in the request line.
refused absolute_form 'GET http://evil.example/ok HTTP/1.1\r\nHost: %s\r\n%s\r\nConnection: close\r\n\r\n' "$host" "$ck"
refused options_star 'OPTIONS * HTTP/1.1\r\nHost: %s\r\n%s\r\nConnection: close\r\n\r\n' "$host" "$ck"
refused connect 'CONNECT evil.example:443 HTTP/1.1\r\nHost: %s\r\n%s\r\nConnection: close\r\n\r\n' "$host" "$ck"
refused two_spaces 'GET  /ok HTTP/1.1\r\nHost: %s\r\n%s\r\nConnection: close\r\n\r\n' "$host" "$ck"

# Whatever did arrive carries bob's identity once and no bare CR or LF.
for f in "$cap"/req.*; do
    if LC_ALL=C grep -q $'\r[^\n]' "$f" || LC_ALL=C grep -qa 'alice' "$f"; then
        sk_fail "injected bytes reached the upstream: $(od -c "$f" | head -n 20)"
    fi
    n=$(tr '\r' '\n' <"$f" | grep -ci '^x-sekisho-user:' || true)
    sk_assert_eq "$n" 1 "X-Sekisho-User lines seen by a lenient parser in $f"
done

# The gateway keeps serving after all that.
status=$(send after 'GET /after HTTP/1.1\r\nHost: %s\r\n%s\r\nConnection: close\r\n\r\n' "$host" "$ck")
sk_assert_match "$status" '^HTTP/1\.1 200' "request after the refused ones"
sk_assert_eq "$(captured)" 2 "requests that reached the upstream"
sk_stop_gateway
sk_pass
