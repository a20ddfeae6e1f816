# shellcheck shell=bash
# tests/integration/lifecycle/common.sh — helpers shared by the certificate-lifecycle
# (lifecycle/) and gateway audit (auditgw/) integration tests. Sourced after ../lib.sh.
#
# What lib.sh does not offer and these tests need:
#  - a gateway whose wall clock can be moved while it runs (libfaketime reading its
#    offset from a file, monotonic clock left alone so connection timeouts behave);
#  - a fake sendmail that keeps every message as a file;
#  - kept-alive TLS connections driven request by request (openssl s_client on a FIFO);
#  - TLS session save/resume with openssl s_client;
#  - waiting for a CRL reload and reading the audit log.
# Every wait is bounded; every process started here is registered with sk_track.

LC_FAKETIME_LIB=""
LC_CLOCK_FILE=""

# lc_find_faketime_lib: the multi-threaded libfaketime (the gateway has many threads).
lc_find_faketime_lib() {
    local f
    for f in /usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1 \
        /usr/lib/*/faketime/libfaketimeMT.so.1 /usr/lib/faketime/libfaketimeMT.so.1 \
        /usr/local/lib/faketime/libfaketimeMT.so.1; do
        if [[ -r $f ]]; then
            LC_FAKETIME_LIB=$f
            return 0
        fi
    done
    sk_fail "libfaketimeMT.so.1 not found (Debian package libfaketime)"
}

# lc_set_clock OFFSET: the gateway's wall clock offset ("+0", "+2d", "+61s").
# Written by rename so the library never reads a half-written file.
lc_set_clock() {
    [[ -n $LC_CLOCK_FILE ]] || sk_fail "lc_set_clock before lc_start_gateway_ft"
    printf '%s\n' "$1" >"$LC_CLOCK_FILE.tmp"
    mv -f "$LC_CLOCK_FILE.tmp" "$LC_CLOCK_FILE"
}

# lc_start_gateway_ft [OFFSET]: like sk_start_gateway, but under libfaketime with the
# offset read from $SK_TMP/clock at every time() call (FAKETIME_NO_CACHE), so that
# lc_set_clock moves the running gateway's wall clock. CLOCK_MONOTONIC and file
# times (stat) stay real: only the clock moves, as on a server left running.
lc_start_gateway_ft() {
    sk_need_bin sekisho
    command -v faketime >/dev/null || sk_fail "faketime not installed"
    [[ -n $LC_FAKETIME_LIB ]] || lc_find_faketime_lib
    # A directory of its own: the gateway's sandboxes may read it (the file is
    # replaced by rename, so a rule for the file alone would miss the new one).
    mkdir -p "$SK_TMP/clock.d"
    LC_CLOCK_FILE=$SK_TMP/clock.d/clock
    lc_set_clock "${1:-+0}"
    SK_GW_LOG=$SK_TMP/gateway.log
    LD_PRELOAD=$LC_FAKETIME_LIB FAKETIME_TIMESTAMP_FILE=$LC_CLOCK_FILE FAKETIME_NO_CACHE=1 \
        FAKETIME_DONT_FAKE_MONOTONIC=1 NO_FAKE_STAT=1 \
        ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" \
        "$SK_BIN/sekisho" -c "$SK_CONF" >>"$SK_GW_LOG" 2>&1 </dev/null &
    SK_GW_PID=$!
    sk_track "$SK_GW_PID"
    sk_wait_port "$SK_GW_PORT" "$SK_GW_PID" 20 ||
        sk_fail "gateway (faketime) did not accept connections on $SK_HOST:$SK_GW_PORT within 20 s"
}

# lc_fake_sendmail: writes $SK_TMP/sendmail.sh, a `sendmail -t` stand-in that stores
# each message (headers + body from stdin) as $SK_TMP/mail/msg.*. Prints the INI lines
# of the [notify] section to append to the configuration.
lc_fake_sendmail() {
    mkdir -p "$SK_TMP/mail"
    cat >"$SK_TMP/sendmail.sh" <<EOF
#!/bin/sh
f=\$(mktemp "$SK_TMP/mail/msg.XXXXXX") || exit 1
cat >"\$f"
EOF
    chmod 700 "$SK_TMP/sendmail.sh"
    printf '[notify]\ncommand = %s -t\noperators = ops@example.test\n' "$SK_TMP/sendmail.sh"
}

# lc_mail_count SUBJECT_PREFIX: number of stored messages whose Subject starts so.
lc_mail_count() {
    local n=0 f
    for f in "$SK_TMP"/mail/msg.*; do
        [[ -e $f ]] || continue
        if tr -d '\r' <"$f" | grep -qiE "^Subject: $1"; then
            n=$((n + 1))
        fi
    done
    echo "$n"
}

# lc_mail_file SUBJECT_PREFIX: path of the first stored message with that subject.
lc_mail_file() {
    local f
    for f in "$SK_TMP"/mail/msg.*; do
        [[ -e $f ]] || continue
        if tr -d '\r' <"$f" | grep -qiE "^Subject: $1"; then
            echo "$f"
            return 0
        fi
    done
    return 0
}

# lc_wait_for SECONDS CMD...: poll CMD every 0.1 s until it succeeds; 1 on timeout.
lc_wait_for() {
    local secs=$1 i
    shift
    for ((i = 0; i < secs * 10; i++)); do
        if "$@"; then return 0; fi
        sleep 0.1
    done
    "$@"
}

lc__log_count() { grep -cF -- "$1" "$SK_GW_LOG" 2>/dev/null || true; }
lc__log_count_ge() { (($(lc__log_count "$1") >= $2)); }

# lc_reload_mark: remember how many CRL loads the gateway has logged so far.
LC_RELOADS=0
lc_reload_mark() { LC_RELOADS=$(lc__log_count "TLS context loaded"); }

# lc_wait_reload REVOKED [SECONDS]: wait until the gateway has loaded a new CRL since
# lc_reload_mark and the newest load holds REVOKED serials.
lc__reloaded_with() {
    lc__log_count_ge "TLS context loaded" $((LC_RELOADS + 1)) &&
        [[ $(grep -F "TLS context loaded" "$SK_GW_LOG" | tail -n 1) == *"($1 revoked serials)"* ]]
}
lc_wait_reload() {
    lc_wait_for "${2:-15}" lc__reloaded_with "$1" ||
        sk_fail "the gateway did not load a CRL with $1 revoked serials within ${2:-15} s"
    lc_reload_mark
}

# ---- kept-alive connections ---------------------------------------------------
# lc_ka_open NAME USER [PROTO]: one TLS connection (openssl s_client -quiet) fed from a
# FIFO, so that requests can be sent on it one at a time. Output -> $SK_TMP/ka.NAME.out.
declare -A LC_KA_FD=() LC_KA_PID=()
lc_ka_open() {
    local name=$1 user=$2 proto=${3:--tls1_3} fifo=$SK_TMP/ka.$1.fifo fd
    rm -f "$fifo"
    mkfifo "$fifo"
    : >"$SK_TMP/ka.$name.out"
    timeout 120 openssl s_client -quiet "$proto" -connect "$SK_HOST:$SK_GW_PORT" \
        -CAfile "$SK_CA_DIR/ca.crt" -cert "$SK_TMP/users/$user.crt" -key "$SK_TMP/users/$user.key" \
        <"$fifo" >"$SK_TMP/ka.$name.out" 2>"$SK_TMP/ka.$name.err" &
    LC_KA_PID[$name]=$!
    sk_track "${LC_KA_PID[$name]}"
    exec {fd}>"$fifo"
    LC_KA_FD[$name]=$fd
}

lc__status_count() { { grep -oE 'HTTP/1\.[01] [0-9]{3} ' "$1" 2>/dev/null || true; } | wc -l | tr -d ' '; }

# lc_ka_request NAME PATH [COOKIE]: send GET PATH on the connection; print the status
# code of the response ("000" when none came within 10 s, e.g. the connection closed).
lc_ka_request() {
    local name=$1 path=$2 cookie=${3:-} out=$SK_TMP/ka.$1.out before i
    before=$(lc__status_count "$out")
    {
        printf 'GET %s HTTP/1.1\r\nHost: %s:%s\r\n' "$path" "$SK_HOST" "$SK_GW_PORT"
        [[ -z $cookie ]] || printf 'Cookie: __Host-sekisho=%s\r\n' "$cookie"
        printf '\r\n'
    } 1>&"${LC_KA_FD[$name]}" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        (($(lc__status_count "$out") > before)) && break
        kill -0 "${LC_KA_PID[$name]}" 2>/dev/null || { sleep 0.2; break; }
        sleep 0.1
    done
    if (($(lc__status_count "$out") > before)); then
        grep -oE 'HTTP/1\.[01] [0-9]{3} ' "$out" | tail -n 1 | cut -d' ' -f2
    else
        echo 000
    fi
}

# lc_ka_closed NAME [SECONDS]: 0 once the server has closed the connection (s_client
# exited), 1 if it is still open after SECONDS (default 5).
lc_ka_closed() {
    local i secs=${2:-5}
    for ((i = 0; i < secs * 10; i++)); do
        kill -0 "${LC_KA_PID[$1]}" 2>/dev/null || return 0
        sleep 0.1
    done
    return 1
}

# lc_ka_close NAME: close our end; s_client is ended by the cleanup at the latest.
lc_ka_close() {
    local fd=${LC_KA_FD[$1]}
    exec {fd}>&-
    kill -TERM "${LC_KA_PID[$1]}" 2>/dev/null || true
}

# ---- TLS sessions ---------------------------------------------------------------
# lc_tls_get USER PROTO SESS_ARG SESSFILE PATH [COOKIE]: one full connection with
# s_client (-sess_out or -sess_in SESSFILE), sending GET PATH with Connection: close.
# stdout -> $SK_TMP/tls.out (contains "New," or "Reused," and the HTTP answer).
# Prints the HTTP status or 000.
lc_tls_get() {
    local user=$1 proto=$2 sarg=$3 sfile=$4 path=$5 cookie=${6:-} req=$SK_TMP/tls.req
    {
        printf 'GET %s HTTP/1.1\r\nHost: %s:%s\r\nConnection: close\r\n' "$path" "$SK_HOST" "$SK_GW_PORT"
        [[ -z $cookie ]] || printf 'Cookie: __Host-sekisho=%s\r\n' "$cookie"
        printf '\r\n'
    } >"$req"
    timeout 15 openssl s_client "$proto" -ign_eof -connect "$SK_HOST:$SK_GW_PORT" \
        -CAfile "$SK_CA_DIR/ca.crt" -cert "$SK_TMP/users/$user.crt" -key "$SK_TMP/users/$user.key" \
        "$sarg" "$sfile" <"$req" >"$SK_TMP/tls.out" 2>"$SK_TMP/tls.err" || true
    local st
    # s_client's session printout is buffered and may share a line with the data.
    st=$(grep -oE 'HTTP/1\.[01] [0-9]{3} ' "$SK_TMP/tls.out" | head -n 1 | cut -d' ' -f2 || true)
    echo "${st:-000}"
}

# lc_tls_reused: 0 if the last lc_tls_get resumed its session.
lc_tls_reused() { grep -qE '(^|[^A-Za-z])Reused, TLSv1' "$SK_TMP/tls.out"; }

# ---- audit ------------------------------------------------------------------------
# lc_audit_export FILE: sekishoctl audit export (JSON Lines) into FILE; every line
# must be a JSON object.
lc_audit_export() {
    "$SK_BIN/sekishoctl" -c "$SK_CONF" audit export >"$1" 2>"$SK_TMP/export.err" ||
        sk_fail "sekishoctl audit export failed: $(cat "$SK_TMP/export.err")"
    jq -e -s 'length > 0 and all(type == "object")' "$1" >/dev/null ||
        sk_fail "audit export is not JSON Lines of objects: $(head -c 400 "$1")"
}

# lc_jq_count FILE FILTER: number of entries of the export for which FILTER is true.
lc_jq_count() { jq -s "[.[] | select($2)] | length" "$1"; }

# lc_hidden_fields FILE: "name<TAB>value" of every hidden input of an HTML file (same
# unescaping as sk_hidden_fields_from_last, which only reads the shared last.body;
# parallel clients need their own files).
lc_hidden_fields() {
    perl -0ne '
        while (/<input\b([^>]*)>/gis) {
            my $a = $1;
            next unless $a =~ /\btype\s*=\s*"hidden"/i;
            my ($n) = $a =~ /\bname\s*=\s*"([^"]*)"/i;
            my ($v) = $a =~ /\bvalue\s*=\s*"([^"]*)"/i;
            next unless defined $n;
            $v = "" unless defined $v;
            $v =~ s/&quot;/"/g; $v =~ s/&#0*39;|&#x0*27;|&apos;/\x27/gi; $v =~ s/&lt;/</g;
            $v =~ s/&gt;/>/g; $v =~ s/&#x2f;|&#0*47;/\//gi; $v =~ s/&amp;/&/g;
            print "$n\t$v\n";
        }' "$1"
}

# lc_login_once DIR CERTUSER ID PASSWORDFILE: one browser-like login (GET form, POST
# it back) using only files under DIR, safe to run in parallel. Prints the POST's
# status, or "G<code>" when the form itself could not be fetched.
lc_login_once() {
    local dir=$1 cu=$2 id=$3 pwf=$4 code n v
    local -a tls=(-s --max-time 20 --cacert "$SK_CA_DIR/ca.crt" --cert "$SK_TMP/users/$cu.crt"
        --key "$SK_TMP/users/$cu.key" -H 'Accept: text/html')
    local -a form=()
    mkdir -p "$dir"
    rm -f "$dir/jar"
    code=$(curl "${tls[@]}" -c "$dir/jar" -o "$dir/form.html" -w '%{http_code}' \
        "https://$SK_HOST:$SK_GW_PORT/.sekisho/login") || true
    if [[ $code != 200 ]]; then
        echo "G${code:-000}"
        return 0
    fi
    while IFS=$'\t' read -r n v; do
        form+=(--data-urlencode "$n=$v")
    done < <(lc_hidden_fields "$dir/form.html")
    form+=(--data-urlencode "id=$id" --data-urlencode "password@$pwf")
    code=$(curl "${tls[@]}" -b "$dir/jar" -o "$dir/post.html" -w '%{http_code}' "${form[@]}" \
        "https://$SK_HOST:$SK_GW_PORT/.sekisho/login") || true
    echo "${code:-000}"
}
