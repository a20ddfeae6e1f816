#!/usr/bin/env bash
# The README demo command end to end: scripts/demo.sh with the built binaries, a host
# name other than localhost (the knob for reaching the demo from another machine),
# random ports; a client with the printed bundle reaches the login page by that
# name, the demo password signs in, the start shows no warning about the demo's
# own file layout, and stopping the script stops both processes.
source "$(dirname "$0")/../lib.sh"
sk_setup
sk_need_bin sekisho sekisho-ca sekishoctl sekisho-demo-upstream

port=$(sk_free_port)
uport=$(sk_free_port)
dir=$SK_TMP/demo
log=$SK_TMP/demo.log
SK_DEMO_NO_INSTALL=1 SK_DEMO_BIN=$SK_BIN SK_DEMO_DIR=$dir SK_DEMO_PORT=$port \
    SK_DEMO_UPSTREAM_PORT=$uport SK_DEMO_HOST=portal.demo.test,localhost \
    setsid bash "$SK_SRC/scripts/demo.sh" >"$log" 2>&1 </dev/null &
demo=$!
sk_track "$demo"
SK_GW_LOG=$log
for ((i = 0; i < 600; i++)); do
    grep -q 'Ctrl-C stops' "$log" && break
    kill -0 "$demo" 2>/dev/null || sk_fail "demo.sh exited early: $(tail -5 "$log")"
    sleep 0.1
done
sk_assert_file_contains "$log" "https://portal.demo.test:$port/" "the demo prints the URL with the host name"
sk_assert_file_contains "$log" "ssh -L $port:127.0.0.1:$port" "the demo explains ssh -L"
# A newcomer sees no warning about the demo's own layout: the state and the audit
# key lie outside what the network process may read.
sk_assert_eq "$(grep -c 'which the network process may read' "$log" || true)" 0 \
    "warnings about the demo's file layout"

# The certificate names both hosts; the client reaches the gateway by the new name.
openssl x509 -in "$dir/tls/server.crt" -noout -ext subjectAltName >"$SK_TMP/san" 2>&1
sk_assert_file_contains "$SK_TMP/san" "DNS:portal.demo.test" "server certificate names the demo host"
# Through the lib's browser-like helpers, by the demo host name (curl resolves it
# to loopback through its config file).
SK_HOST=portal.demo.test
SK_GW_PORT=$port
SK_CA_DIR=$dir/ca
export CURL_HOME=$SK_TMP
printf 'resolve = "portal.demo.test:%s:127.0.0.1"\n' "$port" >"$SK_TMP/.curlrc"
mkdir -p "$SK_TMP/users"
sk_p12_to_pem "$dir/demo-admin.p12" "$dir/demo-admin.p12.password" "$SK_TMP/users/demo-admin"
code=$(sk_curl -u demo-admin / -H 'Accept: text/html')
sk_assert_match "$code" '^30[23]$' "unauthenticated browser is sent to the login page"
code=$(sk_curl /)
sk_assert_eq "$code" 000 "no client certificate, no HTTP answer"

# Sign in with the printed password (the demo keeps it usable: no forced change).
pw=$(cat "$dir/demo-password.txt")
sk_assert_file_contains "$log" "$pw" "the demo prints the login password"
cookie=$(sk_login demo-admin "$pw")
code=$(sk_curl -u demo-admin -C "$cookie" /)
sk_assert_eq "$code" 200 "the demo portal answers after login"
sk_assert_file_contains "$SK_TMP/last.body" "demo-admin" "the portal shows the identity"

# Ctrl-C (SIGINT to the foreground group; here the session) stops everything.
kill -INT -- "-$demo" 2>/dev/null || kill -INT "$demo"
sk_wait_exit "$demo" 30
sk_assert_eq "$SK_EXIT_STATUS" 0 "demo.sh exit status after Ctrl-C"
[[ -z $(ss -ltnH "sport = :$port" 2>/dev/null) ]] || sk_fail "gateway still listening after Ctrl-C"
[[ -z $(ss -ltnH "sport = :$uport" 2>/dev/null) ]] || sk_fail "upstream still listening after Ctrl-C"
sk_pass
