#!/usr/bin/env bash
# tools/bench/bench.sh — front-end CPU per full mTLS handshake and per keep-alive
# authenticated request: nginx (Debian's, ssl_verify_client + proxy_pass) versus
# sekisho, same client (sekisho-bench), same upstream (sekisho-demo-upstream),
# same ECDSA P-256 server certificate, loopback only.
#
# It builds nothing: binaries come from $SK_BIN (default build/bin). The CPU time
# of a front end is utime+stime from /proc/PID/stat of its processes (the nginx
# master and its workers; sekisho and any children), read around each client run.
#
# Environment knobs:
#   SK_BENCH_HANDSHAKES (2000)   full handshakes, each with one GET
#   SK_BENCH_HS_THREADS (1)      client threads for the handshake run
#   SK_BENCH_CONNS (4)           keep-alive connections ...
#   SK_BENCH_REQS (5000)         ... times requests on each
#   SK_BENCH_PATH (/)            upstream path requested
#   SK_BENCH_FRONTENDS ("nginx sekisho")
#   SK_BENCH_SMOKE=1             tiny counts, nginx only unless told otherwise;
#                                exit 77 when nginx is not installed (ctest skip)
#   SK_BENCH_DIR                 scratch directory (default: a new /tmp dir)
set -euo pipefail

SK_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export SK_SRC
export SK_BIN=${SK_BIN:-$SK_SRC/build/bin}
export SK_TEST_NAME=bench
export SK_UP_LOG_REQUESTS=0
if [[ ${SK_BENCH_SMOKE:-0} == 1 ]]; then
    : "${SK_BENCH_HANDSHAKES:=20}" "${SK_BENCH_CONNS:=2}" "${SK_BENCH_REQS:=50}"
    : "${SK_BENCH_FRONTENDS:=nginx}"
    command -v nginx >/dev/null || { echo "SKIP: nginx not installed"; exit 77; }
fi
HS=${SK_BENCH_HANDSHAKES:-2000}
HS_THREADS=${SK_BENCH_HS_THREADS:-1}
CONNS=${SK_BENCH_CONNS:-4}
REQS=${SK_BENCH_REQS:-5000}
BPATH=${SK_BENCH_PATH:-/}
FRONTENDS=${SK_BENCH_FRONTENDS:-nginx sekisho}
export SK_TMP=${SK_BENCH_DIR:-$(mktemp -d /tmp/sekisho-bench.XXXXXX)}

# shellcheck source=../../tests/integration/lib.sh
source "$SK_SRC/tests/integration/lib.sh"
sk_setup
sk_need_bin sekisho-bench sekisho-demo-upstream sekisho-ca
TICK=$(getconf CLK_TCK)

# ---- CPU accounting -------------------------------------------------------------

# cpu_ticks PID...: utime+stime of each PID and its direct children, summed.
cpu_ticks() {
    local p c total=0 t
    local -a all=()
    for p in "$@"; do
        all+=("$p")
        for c in $(pgrep -P "$p" || true); do all+=("$c"); done
    done
    for p in "${all[@]}"; do
        # Field 2 (comm) may contain spaces: cut up to the last ')'.
        t=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{ print $12 + $13 }') || t=0
        total=$((total + ${t:-0}))
    done
    echo "$total"
}

# measure NAME MODE PORT PIDS...: run the client once, print "us_per_op ops_per_s".
measure() {
    local name=$1 mode=$2 port=$3 t0 t1 out count
    shift 3
    local -a args=("$mode" --connect "$SK_HOST:$port" --ca "$SK_CA_DIR/ca.crt"
        --cert "$SK_TMP/users/bench.crt" --key "$SK_TMP/users/bench.key"
        --path "$BPATH" --cookie-file "$SK_TMP/cookie.txt")
    if [[ $mode == handshake ]]; then
        args+=(-n "$HS" -c "$HS_THREADS")
        count=$HS
    else
        args+=(-c "$CONNS" -r "$REQS")
        count=$((CONNS * REQS))
    fi
    t0=$(cpu_ticks "$@")
    out=$("$SK_BIN/sekisho-bench" "${args[@]}") || sk_fail "$name $mode run failed: $out"
    t1=$(cpu_ticks "$@")
    echo "$name $mode: $out" >>"$SK_TMP/runs.log"
    awk -v d=$((t1 - t0)) -v tick="$TICK" -v n="$count" -v o="$out" 'BEGIN {
        split(o, kv, " "); rate = 0
        for (i in kv) { split(kv[i], p, "="); if (p[1] == "rate_per_s") rate = p[2] }
        printf "%.1f %.0f\n", d * 1e6 / tick / n, rate }'
}

warm_up() { # PORT
    "$SK_BIN/sekisho-bench" handshake --connect "$SK_HOST:$1" --ca "$SK_CA_DIR/ca.crt" \
        --cert "$SK_TMP/users/bench.crt" --key "$SK_TMP/users/bench.key" --path "$BPATH" \
        --cookie-file "$SK_TMP/cookie.txt" -n 20 >/dev/null ||
        sk_fail "warm-up against port $1 failed"
}

# ---- peers ------------------------------------------------------------------------

sk_make_ca bench:default
if ! openssl pkey -in "$SK_TMP/server.key" -noout -text 2>/dev/null | grep -qE 'prime256v1|P-256'; then
    sk_log "warning: the server key is not ECDSA P-256; numbers are not comparable to the anchors"
fi
sk_start_upstream
# Same Cookie header for every front end so that requests are byte-identical.
printf '__Host-sekisho=none' >"$SK_TMP/cookie.txt"

declare -A PIDS PORTS
start_nginx() {
    local d=$SK_TMP/nginx port user=""
    command -v nginx >/dev/null || sk_fail "nginx not installed (apt-get install nginx)"
    port=$(sk_free_port)
    mkdir -p "$d/tmp"
    [[ $EUID -eq 0 ]] && user="user root root;"
    cat >"$d/nginx.conf" <<EOF
$user
worker_processes 1;
daemon off;
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    upstream demo {
        server $SK_HOST:$SK_UP_PORT;
        keepalive 32;
    }
    server {
        listen $SK_HOST:$port ssl;
        ssl_certificate $SK_TMP/server.crt;
        ssl_certificate_key $SK_TMP/server.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_client_certificate $SK_CA_DIR/ca.crt;
        ssl_crl $SK_CA_DIR/crl.pem;
        ssl_verify_client on;
        location / {
            proxy_pass http://demo;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            # Roughly the per-request work sekisho does toward the upstream.
            proxy_set_header X-Sekisho-Cert-Serial \$ssl_client_serial;
            proxy_set_header X-Forwarded-For \$remote_addr;
            proxy_set_header X-Forwarded-Proto \$scheme;
        }
    }
}
EOF
    nginx -t -p "$d" -c "$d/nginx.conf" -e "$d/error.log" >"$d/check.log" 2>&1 ||
        sk_fail "nginx -t: $(cat "$d/check.log")"
    nginx -p "$d" -c "$d/nginx.conf" -e "$d/error.log" >"$d/stdout.log" 2>&1 &
    PIDS[nginx]=$!
    sk_track "${PIDS[nginx]}"
    sk_wait_port "$port" "${PIDS[nginx]}" 20 || sk_fail "nginx did not start: $(cat "$d/error.log")"
    PORTS[nginx]=$port
}

start_sekisho() {
    local c
    sk_write_config </dev/null
    sk_add_user bench default "$(sk_password)" admin
    sk_start_gateway
    c=$(sk_login bench)
    printf '__Host-sekisho=%s' "$c" >"$SK_TMP/cookie.txt"
    PIDS[sekisho]=$SK_GW_PID
    PORTS[sekisho]=$SK_GW_PORT
}

for fe in $FRONTENDS; do
    case $fe in
    nginx) start_nginx ;;
    sekisho) start_sekisho ;;
    *) sk_fail "unknown front end '$fe'" ;;
    esac
done

# ---- runs ---------------------------------------------------------------------------

declare -A HS_US HS_RATE KA_US KA_RATE
for fe in $FRONTENDS; do
    warm_up "${PORTS[$fe]}"
    res=$(measure "$fe" handshake "${PORTS[$fe]}" "${PIDS[$fe]}")
    read -r "HS_US[$fe]" "HS_RATE[$fe]" <<<"$res"
    res=$(measure "$fe" keepalive "${PORTS[$fe]}" "${PIDS[$fe]}")
    read -r "KA_US[$fe]" "KA_RATE[$fe]" <<<"$res"
done

printf '\nFront-end CPU per unit of work (%s handshakes x1 GET, %s conns x %s keep-alive GETs, path %s)\n' \
    "$HS" "$CONNS" "$REQS" "$BPATH"
printf '%-10s %18s %14s %20s %12s\n' "front end" "us CPU/handshake" "handshakes/s" "us CPU/keep-alive req" "requests/s"
for fe in $FRONTENDS; do
    printf '%-10s %18s %14s %20s %12s\n' "$fe" "${HS_US[$fe]}" "${HS_RATE[$fe]}" "${KA_US[$fe]}" "${KA_RATE[$fe]}"
done
if [[ -n ${HS_US[nginx]:-} && -n ${HS_US[sekisho]:-} ]]; then
    awk -v a="${HS_US[sekisho]}" -v b="${HS_US[nginx]}" -v c="${KA_US[sekisho]}" -v d="${KA_US[nginx]}" \
        'BEGIN { printf "%-10s %18s %14s %20s\n", "sekisho/nginx", (b > 0 ? sprintf("%.2f", a / b) : "n/a"), "",
                 (d > 0 ? sprintf("%.2f", c / d) : "n/a") }'
fi
printf '(CPU clock tick %s Hz; raw client output in %s/runs.log)\n' "$TICK" "$SK_TMP"
if [[ ${SK_BENCH_SMOKE:-0} == 1 ]]; then
    sk_pass
fi
