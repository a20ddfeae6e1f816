#!/usr/bin/env bash
# Ambiguous request framing (request smuggling vectors) is refused with 400 and
# never forwarded: Content-Length together with Transfer-Encoding, and two
# Content-Length headers. Raw requests go through openssl s_client.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
sk_setup
sk_setup_gateway alice:acme
cookie=$(sk_login alice)
host="$SK_HOST:$SK_GW_PORT"

upstream_posts() { grep -c 'POST /echo$' "$SK_UP_LOG" || true; }

# raw NAME HEADERS BODY: one request on its own connection; prints the status line.
raw() {
    local f=$SK_TMP/raw.$1
    printf 'POST /echo HTTP/1.1\r\nHost: %s\r\nCookie: __Host-sekisho=%s\r\nConnection: close\r\n%s\r\n%s' \
        "$host" "$cookie" "$2" "$3" >"$f.req"
    sk_raw_request alice "$f.req" 10 >"$f.resp"
    head -n 1 "$f.resp" | tr -d '\r'
}

# Control: well-formed requests through the same raw path are proxied.
status=$(raw cl $'Content-Length: 5\r\n' 'hello')
sk_assert_match "$status" '^HTTP/1\.1 200' "well-formed Content-Length request"
sk_assert_file_contains "$SK_TMP/raw.cl.resp" '"body_bytes":5' "body of the control request"
status=$(raw te $'Transfer-Encoding: chunked\r\n' $'5\r\nhello\r\n0\r\n\r\n')
sk_assert_match "$status" '^HTTP/1\.1 200' "well-formed chunked request"
sk_assert_file_contains "$SK_TMP/raw.te.resp" '"body_bytes":5' "body of the chunked control request"
posts=$(upstream_posts)
sk_assert_eq "$posts" 2 "control requests seen by the upstream"

status=$(raw clte $'Content-Length: 5\r\nTransfer-Encoding: chunked\r\n' $'0\r\n\r\nhello')
sk_assert_match "$status" '^HTTP/1\.1 400' "Content-Length + Transfer-Encoding"
status=$(raw tecl $'Transfer-Encoding: chunked\r\nContent-Length: 5\r\n' $'0\r\n\r\nhello')
sk_assert_match "$status" '^HTTP/1\.1 400' "Transfer-Encoding + Content-Length"
status=$(raw clcl $'Content-Length: 5\r\nContent-Length: 6\r\n' 'hello!')
sk_assert_match "$status" '^HTTP/1\.1 400' "two different Content-Length"
status=$(raw clsame $'Content-Length: 5\r\nContent-Length: 5\r\n' 'hello')
sk_assert_match "$status" '^HTTP/1\.1 400' "two equal Content-Length"

sk_assert_eq "$(upstream_posts)" "$posts" "ambiguous requests must not reach the upstream"

# The gateway keeps serving.
code=$(sk_curl -u alice -C "$cookie" /echo)
sk_assert_eq "$code" 200 "request after the refused ones"
sk_stop_gateway
sk_pass
