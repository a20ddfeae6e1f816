# shellcheck shell=bash
# tests/integration/policy/common.sh — helpers of the account-policy integration tests
# (issue 4: lockout, timeouts, IP allowlists, roles, tenants, password change, TOTP).
# Sourced after ../lib.sh and ../lifecycle/common.sh (fake sendmail, faketime gateway).
#
# What lib.sh's sk_curl cannot do and these tests need: a chosen source address
# (curl --interface, for allowlists), a host name other than 127.0.0.1 (tenants: SNI
# and Host through curl --resolve), an IPv6 gateway address, and extra form fields in
# a login (totp). Results go to the same files as sk_curl's (last.body, last.headers),
# so sk_last_header, sk_csrf_from_last and sk_session_cookie_from_last work on them.
# Every wait is bounded; every process started here is registered with sk_track.

PC_SRC=""      # source address for pc_curl (curl --interface); "" = the kernel's choice
PC_NAME=""     # host name in the URL (SNI + Host); "" = $SK_HOST
PC_CONNECT=""  # address that PC_NAME resolves to (curl --resolve); "" = $SK_HOST
PC_HDR=()      # extra request headers for every pc_curl, e.g. (-H 'X-Forwarded-For: ...')

# pc_url: the gateway's base URL for PC_NAME (brackets for an IPv6 literal).
pc_url() {
    local n=${PC_NAME:-$SK_HOST}
    if [[ $n == *:* ]]; then
        printf 'https://[%s]:%s' "$n" "$SK_GW_PORT"
    else
        printf 'https://%s:%s' "$n" "$SK_GW_PORT"
    fi
}

# pc_curl [-u USER] [-C COOKIE] PATH [curl args...]: like sk_curl, with PC_SRC,
# PC_NAME, PC_CONNECT and PC_HDR applied. Prints the status ("000" without an HTTP answer).
pc_curl() {
    local user=- cookie="" path code rc=0 name=${PC_NAME:-$SK_HOST}
    local -a args=()
    while (($# > 0)); do
        case $1 in
        -u) user=$2; shift 2 ;;
        -C) cookie=$2; shift 2 ;;
        *) break ;;
        esac
    done
    path=$1
    shift
    args=(-s -g --path-as-is --max-time 30 --cacert "$SK_CA_DIR/ca.crt" -o "$SK_TMP/last.body"
        -D "$SK_TMP/last.headers" -w '%{http_code}')
    [[ -z $PC_SRC ]] || args+=(--interface "$PC_SRC")
    args+=("${PC_HDR[@]}")
    if [[ $name != *:* && ! $name =~ ^[0-9.]+$ ]]; then
        args+=(--resolve "$name:$SK_GW_PORT:${PC_CONNECT:-$SK_HOST}")
    fi
    if [[ $user != - ]]; then
        args+=(--cert "$SK_TMP/users/$user.crt" --key "$SK_TMP/users/$user.key")
    fi
    [[ -z $cookie ]] || args+=(-H "Cookie: __Host-sekisho=$cookie")
    : >"$SK_TMP/last.body"
    : >"$SK_TMP/last.headers"
    code=$(curl "${args[@]}" "$@" "$(pc_url)$path") || rc=$?
    echo "$rc" >"$SK_TMP/last.curlrc"
    echo "${code:-000}"
}

# pc_login_attempt CERTUSER ID PASSWORD [curl args for the POST...]
# A browser-like login through pc_curl: GET the form, POST it back with every hidden
# field, id, password and the extra arguments (e.g. --data-urlencode totp=123456).
# Prints the POST's status; "G<code>" when the form could not be fetched.
pc_login_attempt() {
    local cu=$1 id=$2 pw=$3 code jar=$SK_TMP/pcjar.$1 pwf n v
    local -a form=()
    shift 3
    rm -f "$jar"
    code=$(pc_curl -u "$cu" /.sekisho/login -c "$jar" -H 'Accept: text/html')
    if [[ $code != 200 ]]; then
        echo "G$code"
        return 0
    fi
    while IFS=$'\t' read -r n v; do
        form+=(--data-urlencode "$n=$v")
    done < <(sk_hidden_fields_from_last)
    pwf=$SK_TMP/.pw.$BASHPID
    printf '%s' "$pw" >"$pwf"
    form+=(--data-urlencode "id=$id" --data-urlencode "password@$pwf")
    code=$(pc_curl -u "$cu" /.sekisho/login -b "$jar" -c "$jar" -H 'Accept: text/html' "${form[@]}" "$@")
    rm -f "$pwf"
    echo "$code"
}

# pc_login CERTUSER PASSWORD [curl args...]: must succeed (303 + cookie); prints the
# cookie value. The login ID is $PC_ID when set (a certificate file named other than
# its CN), else CERTUSER.
pc_login() {
    local u=$1 pw=$2 code cookie
    shift 2
    code=$(pc_login_attempt "$u" "${PC_ID:-$u}" "$pw" "$@")
    [[ $code == 303 ]] || sk_fail "login as $u (${PC_NAME:-$SK_HOST}, src ${PC_SRC:-default}): expected 303, \
got $code: $(head -c 300 "$SK_TMP/last.body")"
    cookie=$(sk_session_cookie_from_last)
    [[ -n $cookie ]] || sk_fail "login as $u: no __Host-sekisho cookie set"
    printf '%s' "$cookie"
}

# pc_page_norm: the last body without the per-request csrf input (the only part of
# the login page that must differ between two answers to the same client).
pc_page_norm() {
    perl -0pe 's/<input\b[^>]*\bname\s*=\s*"csrf"[^>]*>/<csrf>/gi' "$SK_TMP/last.body"
}

# pc_ctl ARGS...: sekishoctl -c $SK_CONF ARGS; must exit 0. Output in $SK_TMP/ctl.out.
pc_ctl() {
    "$SK_BIN/sekishoctl" -c "$SK_CONF" "$@" >"$SK_TMP/ctl.out" 2>&1 </dev/null ||
        sk_fail "sekishoctl $*: exit $?: $(head -c 400 "$SK_TMP/ctl.out")"
}

# pc_pwfile NAME PASSWORD: a password file for sekishoctl; prints its path.
pc_pwfile() {
    mkdir -p "$SK_TMP/secrets"
    printf '%s' "$2" >"$SK_TMP/secrets/$1.pw"
    printf '%s' "$SK_TMP/secrets/$1.pw"
}

# pc_add_user ID TENANT ROLE PASSWORD [extra sekishoctl user add args...]
pc_add_user() {
    local id=$1 tenant=$2 role=$3 pw=$4 pf
    shift 4
    pf=$(pc_pwfile "$id.$tenant" "$pw")
    pc_ctl user add "$id" --tenant "$tenant" --role "$role" --password-file "$pf" "$@"
}

# pc_log_count FIXED_STRING: lines of the gateway log containing it.
pc_log_count() { grep -cF -- "$1" "$SK_GW_LOG" 2>/dev/null || true; }

# pc_wait_mail SUBJECT_PREFIX N [SECONDS]: wait until N messages with that subject
# were handed to the fake sendmail (mail goes out from a maintenance thread).
pc__mail_ge() { (($(lc_mail_count "$1") >= $2)); }
pc_wait_mail() {
    lc_wait_for "${3:-15}" pc__mail_ge "$1" "$2" ||
        sk_fail "expected $2 mail(s) with subject '$1' within ${3:-15} s, have $(lc_mail_count "$1")"
}

# pc_mail_to SUBJECT_PREFIX: the To: headers of every message with that subject, sorted.
pc_mail_to() {
    local f
    for f in "$SK_TMP"/mail/msg.*; do
        [[ -e $f ]] || continue
        if tr -d '\r' <"$f" | grep -qiE "^Subject: $1"; then
            tr -d '\r' <"$f" | sed -n 's/^To: //p' | head -n 1
        fi
    done | sort
}

# pc_totp SECRET [SECONDS_FROM_NOW]: the RFC 6238 code (oathtool) for the wall clock
# now + offset. The gateways of these tests run on the real clock when TOTP matters.
pc_totp() {
    oathtool --totp -b "$1" --now="@$(($(date +%s) + ${2:-0}))"
}

# pc_totp_settle SECONDS: wait (at most 30 s) until at least SECONDS remain in the
# current 30 s step, so that a code computed now keeps its distance in steps from the
# gateway's clock while the request is on its way.
pc_totp_settle() {
    local i
    for ((i = 0; i < 60; i++)); do
        (((30 - $(date +%s) % 30) >= $1)) && return 0
        sleep 0.5
    done
}

# pc_wrong_totp SECRET: a well-formed 6-digit code that is none of the codes valid
# within +-2 steps of now (so it cannot be accepted by accident).
pc_wrong_totp() {
    local s=$1 c d ok
    local -a valid=()
    for d in -60 -30 0 30 60 90; do valid+=("$(pc_totp "$s" "$d")"); done
    c=$(pc_totp "$s" 0)
    while :; do
        c=$(printf '%06d' $(((10#$c + 1) % 1000000)))
        ok=1
        for d in "${valid[@]}"; do [[ $c == "$d" ]] && ok=0; done
        ((ok)) && break
    done
    printf '%s' "$c"
}

# pc_server_cert PREFIX NAME...: a server certificate for several host names (DNS or
# IP SANs) signed by the test CA with openssl, for a gateway that serves more than
# one tenant host on one address (sekisho-ca server-cert names one host).
pc_server_cert() {
    local out=$1 n san="" ext
    shift
    for n in "$@"; do
        if [[ $n =~ ^[0-9.]+$ || $n == *:* ]]; then san+="${san:+,}IP:$n"; else san+="${san:+,}DNS:$n"; fi
    done
    ext=$SK_TMP/srvext.cnf
    printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\nsubjectAltName=%s\n' \
        "$san" >"$ext"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$out.key" \
        -subj "/CN=$1" -out "$out.csr" >"$SK_TMP/srvcert.log" 2>&1 ||
        sk_fail "openssl req: $(cat "$SK_TMP/srvcert.log")"
    openssl x509 -req -in "$out.csr" -CA "$SK_CA_DIR/ca.crt" -CAkey "$SK_CA_DIR/ca.key" \
        -set_serial "0x$(openssl rand -hex 12)" -days 2 -sha256 -extfile "$ext" -out "$out.leaf" \
        >>"$SK_TMP/srvcert.log" 2>&1 || sk_fail "openssl x509 -req: $(cat "$SK_TMP/srvcert.log")"
    cat "$out.leaf" "$SK_CA_DIR/ca.crt" >"$out.crt"
    chmod 600 "$out.key"
}

# pc_start_upstream NAME: one more demo upstream -> PC_UP_PORT, log $SK_TMP/upstream-NAME.log.
PC_UP_PORT=""
pc_start_upstream() {
    local pid log=$SK_TMP/upstream-$1.log
    sk_need_bin sekisho-demo-upstream
    PC_UP_PORT=$(sk_free_port)
    "$SK_BIN/sekisho-demo-upstream" --listen "$SK_HOST:$PC_UP_PORT" --log >"$log" 2>&1 &
    pid=$!
    sk_track "$pid"
    sk_wait_port "$PC_UP_PORT" "$pid" 20 || sk_fail "demo upstream $1 did not start"
}

# pc_up_count LOGFILE 'METHOD PATH': requests an upstream logged with exactly that line.
pc_up_count() { grep -cxF -- "demo-upstream: $2" "$1" 2>/dev/null || true; }

# pc_ka_open NAME USER SNI: like lc_ka_open (one kept-alive TLS connection fed from a
# FIFO), with the TLS server name SNI; lc_ka_closed / lc_ka_close work on it.
pc_ka_open() {
    local name=$1 user=$2 sni=$3 fifo=$SK_TMP/ka.$1.fifo fd
    rm -f "$fifo"
    mkfifo "$fifo"
    : >"$SK_TMP/ka.$name.out"
    timeout 60 openssl s_client -quiet -connect "$SK_HOST:$SK_GW_PORT" -servername "$sni" \
        -CAfile "$SK_CA_DIR/ca.crt" -cert "$SK_TMP/users/$user.crt" -key "$SK_TMP/users/$user.key" \
        <"$fifo" >"$SK_TMP/ka.$name.out" 2>"$SK_TMP/ka.$name.err" &
    LC_KA_PID[$name]=$!
    sk_track "${LC_KA_PID[$name]}"
    exec {fd}>"$fifo"
    LC_KA_FD[$name]=$fd
}

# pc_ka_request NAME HOST PATH [COOKIE]: GET PATH with that Host header on the
# connection, one request at a time (the next is sent only after this answer came);
# prints the status, "000" when none came within 10 s.
pc_ka_request() {
    local name=$1 out=$SK_TMP/ka.$1.out before i
    before=$(lc__status_count "$out")
    {
        printf 'GET %s HTTP/1.1\r\nHost: %s\r\n' "$3" "$2"
        [[ -z ${4:-} ]] || printf 'Cookie: __Host-sekisho=%s\r\n' "$4"
        printf '\r\n'
    } 1>&"${LC_KA_FD[$name]}" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        (($(lc__status_count "$out") > before)) && break
        kill -0 "${LC_KA_PID[$name]}" 2>/dev/null || { sleep 0.2; break; }
        sleep 0.1
    done
    if (($(lc__status_count "$out") > before)); then
        grep -aoE 'HTTP/1\.[01] [0-9]{3} ' "$out" | tail -n 1 | cut -d' ' -f2
    else
        echo 000
    fi
}

# pc_ipv6_loopback: 0 if ::1 is configured on the loopback interface.
pc_ipv6_loopback() {
    [[ -r /proc/net/if_inet6 ]] || return 1
    [[ $(cat /proc/sys/net/ipv6/conf/lo/disable_ipv6 2>/dev/null || echo 1) == 0 ]] || return 1
    grep -qE '^0{31}1 ' /proc/net/if_inet6
}
