# tests/integration/lib.sh — sourced by every Sekisho integration test.
#
# Environment (set by sk_add_integration_test; defaults allow running a script by hand):
#   SK_BIN  directory with sekisho, sekisho-ca, sekishoctl, sekisho-demo-upstream
#   SK_SRC  source tree
#   SK_TMP  scratch directory of this test (wiped by sk_setup)
#
# Rules every helper keeps: loopback only, every wait bounded, every process that a
# helper starts is recorded and killed on exit, the first failed assertion prints
# "FAIL: <test>: <what>" and exits non-zero (with the gateway log on stderr).
#
# Functions return results through files or well-known variables, never through a
# subshell that starts processes (a background process started in $(...) could
# not be tracked). Commands that only print (sk_free_port, sk_curl) are fine in $(...).

set -euo pipefail
shopt -s inherit_errexit

SK_SRC=${SK_SRC:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
SK_BIN=${SK_BIN:-$SK_SRC/build/bin}
SK_TEST_NAME=${SK_TEST_NAME:-$(basename "${0%.sh}")}
SK_TMP=${SK_TMP:-/tmp/sekisho-itest/$SK_TEST_NAME}
# The PostgreSQL pass runs every test again (see sk_store_conf_lines): its own scratch dir.
if [[ ${SK_TEST_STORE:-lmdb} == postgresql ]]; then SK_TMP=$SK_TMP-pg; fi
SK_HOST=127.0.0.1
SK_PIDS=()
SK_GW_PID=""
SK_GW_PORT=""
SK_GW_LOG=""
SK_UP_PID=""
SK_UP_PORT=""
SK_UP_LOG=""
SK_CONF=""
SK_CA_DIR=""

# ---- failure reporting and cleanup ------------------------------------------

sk_log() { printf '[%s] %s\n' "$SK_TEST_NAME" "$*" >&2; }

sk_fail() {
    printf 'FAIL: %s: %s\n' "$SK_TEST_NAME" "$*" >&2
    exit 1
}

sk__dump_logs() {
    local f n
    for f in "$SK_GW_LOG" "$SK_UP_LOG"; do
        [[ -n $f && -s $f ]] || continue
        n=80
        [[ $f == "$SK_UP_LOG" ]] && n=15
        printf -- '----- %s (last %d lines) -----\n' "$f" "$n" >&2
        tail -n "$n" "$f" >&2 || true
    done
}

sk__cleanup() {
    local rc=$? pid i
    trap - EXIT
    for pid in "${SK_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${SK_PIDS[@]}"; do
        for ((i = 0; i < 50; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    sk__store_drop
    if ((rc != 0)); then
        sk__dump_logs
        printf 'FAIL: %s (exit %d; scratch dir %s)\n' "$SK_TEST_NAME" "$rc" "$SK_TMP" >&2
    fi
    exit "$rc"
}

# sk_setup: fresh scratch dir, cleanup trap, required tools present.
sk_setup() {
    local b
    [[ -n $SK_TMP && $SK_TMP != / ]] || sk_fail "SK_TMP is not set"
    rm -rf -- "$SK_TMP"
    mkdir -p -- "$SK_TMP"
    trap sk__cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    for b in curl openssl ss timeout; do
        command -v "$b" >/dev/null || sk_fail "required tool '$b' not installed"
    done
    # An ASan build keeps freed memory in quarantine; keep it small so memory
    # assertions measure the program, and make every sanitizer report fatal.
    export ASAN_OPTIONS="quarantine_size_mb=16:detect_leaks=1:abort_on_error=0:${ASAN_OPTIONS:-}"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
    umask 077
}

sk_need_bin() {
    local b
    for b in "$@"; do
        [[ -x $SK_BIN/$b ]] || sk_fail "$SK_BIN/$b not built"
    done
}

# Register a background process so that cleanup kills it.
sk_track() { SK_PIDS+=("$1"); }

# ---- assertions ---------------------------------------------------------------

sk_assert_eq() { # ACTUAL EXPECTED WHAT
    [[ $1 == "$2" ]] || sk_fail "$3: expected '$2', got '$1'"
}
sk_assert_ne() { # ACTUAL UNEXPECTED WHAT
    [[ $1 != "$2" ]] || sk_fail "$3: got '$1', which must not happen"
}
sk_assert_contains() { # HAYSTACK NEEDLE WHAT   (fixed string)
    [[ $1 == *"$2"* ]] || sk_fail "$3: '$2' not found in: $(printf '%s' "$1" | head -c 600)"
}
sk_assert_not_contains() { # HAYSTACK NEEDLE WHAT
    [[ $1 != *"$2"* ]] || sk_fail "$3: '$2' must not appear in: $(printf '%s' "$1" | head -c 600)"
}
sk_assert_match() { # STRING ERE WHAT
    [[ $1 =~ $2 ]] || sk_fail "$3: '$(printf '%s' "$1" | head -c 600)' does not match /$2/"
}
sk_assert_file_contains() { # FILE NEEDLE WHAT
    grep -qF -- "$2" "$1" || sk_fail "$3: '$2' not in $1: $(head -c 600 "$1")"
}
sk_assert_file_not_contains() { # FILE NEEDLE WHAT   (case-insensitive: stricter)
    if grep -qiF -- "$2" "$1"; then sk_fail "$3: '$2' found in $1"; fi
}
sk_assert_lt() { # A B WHAT   (integers)
    (($1 < $2)) || sk_fail "$3: expected $1 < $2"
}

sk_pass() { printf 'PASS: %s\n' "$SK_TEST_NAME"; }

# ---- ports and waiting --------------------------------------------------------

# sk_free_port: an unused loopback TCP port, random in 20000-60000 but outside the
# kernel's ephemeral range (client sockets of earlier tests linger there in
# TIME-WAIT/FIN-WAIT), with no socket of any state on it. Ports already handed out
# in this test are remembered so two calls never collide.
sk_free_port() {
    local p i lo=20000 hi=60000 elo=0 ehi=0 used="$SK_TMP/.ports"
    touch "$used"
    read -r elo ehi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
    if ((elo > lo + 1000 && elo <= hi)); then
        hi=$((elo - 1))  # e.g. 20000-32767 with the default 32768-60999
    elif ((ehi >= lo && ehi < hi - 1000)); then
        lo=$((ehi + 1))
    fi
    for ((i = 0; i < 200; i++)); do
        p=$((lo + SRANDOM % (hi - lo + 1)))
        grep -qx "$p" "$used" && continue
        if [[ -z $(ss -tanH "( sport = :$p or dport = :$p )" 2>/dev/null) ]]; then
            echo "$p" >>"$used"
            echo "$p"
            return 0
        fi
    done
    sk_fail "no free port found"
}

# sk_wait_port PORT PID SECONDS: wait until something listens on 127.0.0.1:PORT
# while PID is alive.
sk_wait_port() {
    local port=$1 pid=$2 secs=${3:-20} i
    for ((i = 0; i < secs * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || return 1
        if [[ -n $(ss -ltnH "sport = :$port" 2>/dev/null) ]]; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# sk_wait_exit PID SECONDS: wait for a child of this shell to exit; its status goes
# to SK_EXIT_STATUS ("timeout" if it is still running). Not usable in $(...): a
# subshell cannot wait for its parent's children.
SK_EXIT_STATUS=""
sk_wait_exit() {
    local pid=$1 secs=${2:-20} i rc=0
    for ((i = 0; i < secs * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        SK_EXIT_STATUS=timeout
        return 0
    fi
    wait "$pid" 2>/dev/null || rc=$?
    SK_EXIT_STATUS=$rc
}

# ---- certificates ---------------------------------------------------------------

# sk_faketime OFFSET CMD...: run CMD with a shifted clock (libfaketime). An ASan
# build would refuse the preloaded library coming first; that is harmless here.
sk_faketime() {
    local off=$1
    shift
    ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0" faketime -f "$off" "$@"
}

# sk_make_ca USER:TENANT ...  Creates $SK_TMP/ca (sekisho-ca init), the gateway's
# server certificate $SK_TMP/server.{crt,key} for 127.0.0.1 and one client bundle
# per user (see sk_issue_user). With SK_CA_BACKDATE (e.g. -500d) the CA is created
# in the past, so that a certificate issued "in the past" can be expired today.
sk_make_ca() {
    local spec
    sk_need_bin sekisho-ca
    SK_CA_DIR=$SK_TMP/ca
    if [[ -n ${SK_CA_BACKDATE:-} ]]; then
        command -v faketime >/dev/null || sk_fail "faketime not installed"
        sk_faketime "$SK_CA_BACKDATE" "$SK_BIN/sekisho-ca" init --dir "$SK_CA_DIR" \
            --name "Sekisho Test CA" >"$SK_TMP/ca-init.log" 2>&1 ||
            sk_fail "sekisho-ca init failed: $(cat "$SK_TMP/ca-init.log")"
    else
        "$SK_BIN/sekisho-ca" init --dir "$SK_CA_DIR" --name "Sekisho Test CA" \
            >"$SK_TMP/ca-init.log" 2>&1 ||
            sk_fail "sekisho-ca init failed: $(cat "$SK_TMP/ca-init.log")"
    fi
    "$SK_BIN/sekisho-ca" server-cert --dir "$SK_CA_DIR" --host "$SK_HOST" \
        --out "$SK_TMP/server" >"$SK_TMP/ca-server.log" 2>&1 ||
        sk_fail "sekisho-ca server-cert failed: $(cat "$SK_TMP/ca-server.log")"
    for spec in "$@"; do
        sk_issue_user "${spec%%:*}" "${spec#*:}"
    done
    # Rewrite the CRL now: one made under a faked clock would already be stale.
    "$SK_BIN/sekisho-ca" crl --dir "$SK_CA_DIR" >"$SK_TMP/ca-crl.log" 2>&1 ||
        sk_fail "sekisho-ca crl failed: $(cat "$SK_TMP/ca-crl.log")"
}

# sk_issue_user ID TENANT [CA_DIR [extra sekisho-ca args...]]
# Writes $SK_TMP/users/NAME.{p12,p12pass,crt,key,serial} with NAME = SK_ISSUE_NAME
# (default ID), so that a second certificate for the same ID can coexist.
# SK_ISSUE_FAKETIME, when set, runs the CA under faketime with that offset.
sk_issue_user() {
    local id=$1 tenant=$2 dir=${3:-$SK_CA_DIR} u=$SK_TMP/users name=${SK_ISSUE_NAME:-$1}
    shift 2
    if (($# > 0)); then shift; fi
    mkdir -p "$u"
    printf '%s' "p12-$(openssl rand -hex 12)" >"$u/$name.p12pass"
    local -a cmd=("$SK_BIN/sekisho-ca" issue --dir "$dir" --user "$id" --tenant "$tenant"
        --out "$u/$name.p12" --password-file "$u/$name.p12pass" "$@")
    if [[ -n ${SK_ISSUE_FAKETIME:-} ]]; then
        command -v faketime >/dev/null || sk_fail "faketime not installed"
        cmd=(sk_faketime "$SK_ISSUE_FAKETIME" "${cmd[@]}")
    fi
    "${cmd[@]}" >"$u/$name.issue.log" 2>&1 </dev/null ||
        sk_fail "sekisho-ca issue $id failed: $(cat "$u/$name.issue.log")"
    sk_p12_to_pem "$u/$name.p12" "$u/$name.p12pass" "$u/$name"
    openssl x509 -in "$u/$name.crt" -noout -serial | sed 's/^serial=//' >"$u/$name.serial"
}

# sk_p12_to_pem P12 PASSFILE PREFIX: PREFIX.crt (leaf) and PREFIX.key for curl.
sk_p12_to_pem() {
    local p12=$1 pass=$2 out=$3 legacy
    for legacy in "" "-legacy"; do
        # shellcheck disable=SC2086
        if openssl pkcs12 $legacy -in "$p12" -passin "file:$pass" -clcerts -nokeys \
            -out "$out.crt" 2>/dev/null &&
            openssl pkcs12 $legacy -in "$p12" -passin "file:$pass" -nocerts -nodes \
                -out "$out.key" 2>/dev/null; then
            return 0
        fi
    done
    sk_fail "cannot read $p12 with openssl pkcs12"
}

# Normalised hex serial (lowercase, no colons, no leading zeros) for comparisons.
sk_norm_serial() {
    local s
    s=$(printf '%s' "$1" | tr -d ':' | tr 'A-F' 'a-f' | sed 's/^0*//')
    printf '%s' "${s:-0}"
}

# ---- peers ----------------------------------------------------------------------

# sk_start_upstream: demo upstream on a free port -> SK_UP_PORT, SK_UP_PID, SK_UP_LOG.
# It logs every request line unless SK_UP_LOG_REQUESTS=0 (the benchmark).
sk_start_upstream() {
    local -a opt=(--log)
    sk_need_bin sekisho-demo-upstream
    [[ ${SK_UP_LOG_REQUESTS:-1} == 0 ]] && opt=()
    SK_UP_PORT=$(sk_free_port)
    SK_UP_LOG=$SK_TMP/upstream.log
    "$SK_BIN/sekisho-demo-upstream" --listen "$SK_HOST:$SK_UP_PORT" "${opt[@]}" >"$SK_UP_LOG" 2>&1 &
    SK_UP_PID=$!
    sk_track "$SK_UP_PID"
    sk_wait_port "$SK_UP_PORT" "$SK_UP_PID" 20 || sk_fail "demo upstream did not start"
}

# sk_write_config [FILE]: the gateway configuration (default $SK_TMP/sekisho.conf) for
# the current CA, upstream and a fresh gateway port (SK_GW_PORT). Extra INI text
# on stdin (when not a terminal) is appended, e.g. a second [auth] section is
# fine for inih but a repeated key is not.
sk_write_config() {
    local f=${1:-$SK_TMP/sekisho.conf}
    [[ -n $SK_GW_PORT ]] || SK_GW_PORT=$(sk_free_port)
    SK_CONF=$f
    cat >"$f" <<EOF
# generated by tests/integration/lib.sh
[listen]
address = $SK_HOST:$SK_GW_PORT
cert = server.crt
key = server.key

[tls]
client_ca = ca/ca.crt
crl = ca/crl.pem

[upstream]
url = http://$SK_HOST:$SK_UP_PORT

[state]
dir = state

[auth]
argon2_memory_kib = ${SK_ARGON2_KIB:-8192}

[audit]
key = audit.key
EOF
    if [[ ! -t 0 ]]; then
        cat >>"$f"
    fi
    sk_store_conf_lines >>"$f"
}

# ---- the store backend: the PostgreSQL pass ------------------------------------
# scripts/test.sh runs the integration tests a second time with SK_TEST_STORE=postgresql
# and SK_TEST_PG_URL, SK_TEST_PG_PWFILE, SK_TEST_PG_CTL naming one server it started
# (pg.sh serve). sk_store_conf_lines then prints the [store] section that points at a
# database of this test's own, created (and migrated) on first use and dropped on exit
# (the password in $SK_TMP/store.pw);
# outside that pass it prints nothing. sk_write_config appends it; a test that writes
# a configuration by hand appends it too. Tests LMDB-specific by nature are listed in
# tests/integration/lmdb-only.list and not run in that pass.
sk_store_conf_lines() {
    [[ ${SK_TEST_STORE:-lmdb} == postgresql ]] || return 0
    sk__store_db
    printf '\n[store]\nbackend = postgresql\nurl = %s/%s\npassword_file = %s\n' \
        "${SK_TEST_PG_URL%/*}" "$(cat "$SK_TMP/.store-db")" "$SK_TMP/store.pw"
}

# The test's database: named after its scratch dir (unique per ctest test), created
# once, the schema migrated with a configuration of its own.
sk__store_db() {
    local db c=$SK_TMP/.store.conf
    [[ -s $SK_TMP/.store-db ]] && return 0
    [[ -n ${SK_TEST_PG_URL:-} && -n ${SK_TEST_PG_PWFILE:-} && -f ${SK_TEST_PG_CTL:-} ]] ||
        sk_fail "SK_TEST_STORE=postgresql needs SK_TEST_PG_URL, SK_TEST_PG_PWFILE and SK_TEST_PG_CTL (scripts/test.sh sets them)"
    db=$(basename "$SK_TMP" | tr 'A-Z' 'a-z' | tr -c 'a-z0-9_\n' '_')
    db=sk_${db:0:50}
    printf 'DROP DATABASE IF EXISTS %s WITH (FORCE);\nCREATE DATABASE %s OWNER sekisho;\n' "$db" "$db" |
        bash "$SK_TEST_PG_CTL" psql >"$SK_TMP/.store-db.log" 2>&1 ||
        sk_fail "cannot create the test database $db: $(cat "$SK_TMP/.store-db.log")"
    printf '%s' "$db" >"$SK_TMP/.store-db"
    # a copy in the scratch dir, like the test's other secrets (a test may hand them
    # to another user)
    cp -- "$SK_TEST_PG_PWFILE" "$SK_TMP/store.pw" && chmod 0600 "$SK_TMP/store.pw" ||
        sk_fail "cannot copy $SK_TEST_PG_PWFILE"
    # sekishoctl wants the gateway's keys named (they need not exist)
    printf '[listen]\ncert = x.crt\nkey = x.key\n[tls]\nclient_ca = x.crt\n[state]\ndir = .store-state\n' >"$c"
    printf '[store]\nbackend = postgresql\nurl = %s/%s\npassword_file = %s\n' \
        "${SK_TEST_PG_URL%/*}" "$db" "$SK_TMP/store.pw" >>"$c"
    "$SK_BIN/sekishoctl" -c "$c" store migrate >"$SK_TMP/.store-migrate.log" 2>&1 </dev/null ||
        sk_fail "sekishoctl store migrate of $db: $(cat "$SK_TMP/.store-migrate.log")"
}

# sk_store_backend: lmdb, or postgresql in the PostgreSQL pass.
sk_store_backend() { printf '%s\n' "${SK_TEST_STORE:-lmdb}"; }

# sk_store_raw FILE [STATE_DIR]: the bytes the store keeps, for "never stored in
# clear" checks: LMDB's data file under STATE_DIR (default $SK_TMP/state), or every
# value of every table of the test's database (bytea as stored, text as UTF-8).
sk_store_raw() {
    local out=$1 state=${2:-$SK_TMP/state}
    if [[ $(sk_store_backend) != postgresql ]]; then
        cp -- "$state/db/data.mdb" "$out" || sk_fail "no LMDB store at $state/db/data.mdb"
        return 0
    fi
    sk__store_db
    cat >"$SK_TMP/.store-raw.sql" <<'SQL'
SELECT format('SELECT %s FROM %I', string_agg(format(CASE WHEN data_type = 'bytea'
    THEN 'coalesce(encode(%I, ''hex''), '''')'
    ELSE 'coalesce(encode(convert_to(%I::text, ''UTF8''), ''hex''), '''')' END,
    column_name), ' || ' ORDER BY ordinal_position), table_name)
  FROM information_schema.columns WHERE table_schema = 'public' GROUP BY table_name
\gexec
SQL
    bash "$SK_TEST_PG_CTL" psql "$(cat "$SK_TMP/.store-db")" <"$SK_TMP/.store-raw.sql" >"$out.hex" 2>"$SK_TMP/.store-raw.err" ||
        sk_fail "reading the test database: $(cat "$SK_TMP/.store-raw.err")"
    perl -ne 'chomp; print pack("H*", $_), "\n"' "$out.hex" >"$out"
    rm -f -- "$out.hex"
}

sk__store_drop() {
    local db
    [[ -s $SK_TMP/.store-db && -f ${SK_TEST_PG_CTL:-} ]] || return 0
    db=$(cat "$SK_TMP/.store-db")
    printf 'DROP DATABASE IF EXISTS %s WITH (FORCE);\n' "$db" | bash "$SK_TEST_PG_CTL" psql >/dev/null 2>&1 ||
        printf '[%s] could not drop the test database %s\n' "$SK_TEST_NAME" "$db" >&2
    rm -f -- "$SK_TMP/.store-db"
}

# sk_add_user ID TENANT PASSWORD [ROLE]: sekishoctl user add, password via a file.
sk_add_user() {
    local id=$1 tenant=$2 pw=$3 role=${4:-admin} pf
    sk_need_bin sekishoctl
    mkdir -p "$SK_TMP/secrets"
    pf=$SK_TMP/secrets/$id.pw
    printf '%s' "$pw" >"$pf"
    "$SK_BIN/sekishoctl" -c "$SK_CONF" user add "$id" --tenant "$tenant" --role "$role" \
        --password-file "$pf" >"$SK_TMP/useradd-$id.log" 2>&1 </dev/null ||
        sk_fail "sekishoctl user add $id failed: $(cat "$SK_TMP/useradd-$id.log")"
}

# A password that satisfies the default policy (upper, lower, digit, length).
sk_password() { printf 'Sk%s9x' "$(openssl rand -hex 8)"; }

# sk_start_gateway: sekisho -c $SK_CONF in the background; waits (<= 20 s) until its
# port accepts connections -> SK_GW_PID, SK_GW_LOG.
sk_start_gateway() {
    sk_need_bin sekisho
    SK_GW_LOG=$SK_TMP/gateway.log
    "$SK_BIN/sekisho" -c "$SK_CONF" >>"$SK_GW_LOG" 2>&1 </dev/null &
    SK_GW_PID=$!
    sk_track "$SK_GW_PID"
    sk_wait_port "$SK_GW_PORT" "$SK_GW_PID" 20 ||
        sk_fail "gateway did not accept connections on $SK_HOST:$SK_GW_PORT within 20 s"
}

# sk_child_pid NAME: the pid of the gateway's child process NAME (net, authd),
# waiting up to 10 s for it to exist. The monitor is $SK_GW_PID.
sk_child_pid() {
    local i pid
    for ((i = 0; i < 100; i++)); do
        pid=$(pgrep -P "$SK_GW_PID" -x "sekisho-$1" | head -n 1 || true)
        [[ -n $pid ]] && { echo "$pid"; return 0; }
        sleep 0.1
    done
    sk_fail "no sekisho-$1 process under the gateway (pid $SK_GW_PID)"
}

# sk_new_child_pid NAME OLD: the pid of the gateway's child NAME once it differs
# from OLD (the monitor restarted it), waiting up to 10 s; "" when none came.
sk_new_child_pid() {
    local i pid=""
    for ((i = 0; i < 100; i++)); do
        pid=$(pgrep -P "$SK_GW_PID" -x "sekisho-$1" | head -n 1 || true)
        [[ -n $pid && $pid != "$2" ]] && { echo "$pid"; return 0; }
        sleep 0.1
    done
    echo ""
}

# sk_curl_until CODE USER COOKIE PATH: sk_curl until it answers CODE (up to 5 s);
# prints the last code.
sk_curl_until() {
    local want=$1 u=$2 ck=$3 p=$4 i code=000
    for ((i = 0; i < 50; i++)); do
        code=$(sk_curl -u "$u" -C "$ck" "$p")
        [[ $code == "$want" ]] && break
        sleep 0.1
    done
    echo "$code"
}

# sk_stop_gateway: SIGTERM, bounded wait, the exit status must be 0 and the log
# free of sanitizer reports.
sk_stop_gateway() {
    [[ -n $SK_GW_PID ]] || return 0
    kill -TERM "$SK_GW_PID" 2>/dev/null || true
    sk_wait_exit "$SK_GW_PID" 20
    SK_GW_PID=""
    sk_assert_eq "$SK_EXIT_STATUS" 0 "gateway exit status after SIGTERM"
    if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$SK_GW_LOG"; then
        sk_fail "sanitizer report in the gateway log"
    fi
}

# sk_setup_gateway USER:TENANT ...: the usual world in one call: CA + users' certs,
# upstream, config, accounts (password in $SK_TMP/secrets/ID.pw) and the gateway.
sk_setup_gateway() {
    local spec id
    sk_make_ca "$@"
    sk_start_upstream
    sk_write_config </dev/null
    for spec in "$@"; do
        id=${spec%%:*}
        sk_add_user "$id" "${spec#*:}" "$(sk_password)"
    done
    sk_start_gateway
}

sk_user_password() { cat "$SK_TMP/secrets/$1.pw"; }

# ---- HTTP -------------------------------------------------------------------------

# sk_curl [-u USER] [-C COOKIEVALUE] PATH [curl args...]
# Prints the HTTP status ("000" when no HTTP answer came, e.g. handshake refused).
# Body -> $SK_TMP/last.body, headers -> $SK_TMP/last.headers, curl's exit code ->
# $SK_TMP/last.curlrc. USER "-" (default) means no client certificate.
sk_curl() {
    local user=- cookie="" path code rc=0
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
    args=(-s --max-time 60 --cacert "$SK_CA_DIR/ca.crt" -o "$SK_TMP/last.body"
        -D "$SK_TMP/last.headers" -w '%{http_code}')
    if [[ $user != - ]]; then
        args+=(--cert "$SK_TMP/users/$user.crt" --key "$SK_TMP/users/$user.key")
    fi
    if [[ -n $cookie ]]; then
        args+=(-H "Cookie: __Host-sekisho=$cookie")
    fi
    : >"$SK_TMP/last.body"
    : >"$SK_TMP/last.headers"
    code=$(curl "${args[@]}" "$@" "https://$SK_HOST:$SK_GW_PORT$path") || rc=$?
    echo "$rc" >"$SK_TMP/last.curlrc"
    echo "${code:-000}"
}

sk_last_body() { cat "$SK_TMP/last.body"; }
sk_last_curlrc() { cat "$SK_TMP/last.curlrc"; }

# sk_last_header NAME: value of a response header of the last sk_curl (first one,
# case-insensitive name, CR removed).
sk_last_header() {
    local name=${1,,}
    tr -d '\r' <"$SK_TMP/last.headers" | awk -v n="$name" '
        { i = index($0, ":"); if (i > 0 && tolower(substr($0, 1, i - 1)) == n) {
              v = substr($0, i + 1); sub(/^[ \t]+/, "", v); print v; exit } }'
}

# sk_csrf_from_last: the csrf hidden field of the page in the last body.
sk_csrf_from_last() { sk_hidden_fields_from_last | awk -F '\t' '$1 == "csrf" { print $2; exit }'; }

# sk_hidden_fields_from_last: "name<TAB>value" for every <input type="hidden"> of the
# last body, values HTML-unescaped (what a browser would post back).
sk_hidden_fields_from_last() {
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
        }' "$SK_TMP/last.body"
}

# sk_login_attempt CERTUSER ID PASSWORD [RETURN]
# Like a browser: GET the login form (SK_LOGIN_PATH, default /.sekisho/login) with
# CERTUSER's certificate, then POST it back with every hidden field it carries plus
# id and password. RETURN, when given, replaces the form's "return" field.
# Prints the status of the POST; its headers and body become the "last" ones.
# A cookie jar carries whatever the form itself set (e.g. a CSRF cookie).
sk_login_attempt() {
    local cu=$1 id=$2 pw=$3 ret=${4-} code jar=$SK_TMP/jar.$1 pwf n v
    local -a form=()
    rm -f "$jar"
    code=$(sk_curl -u "$cu" "${SK_LOGIN_PATH:-/.sekisho/login}" -c "$jar" -H 'Accept: text/html')
    [[ $code == 200 ]] || sk_fail "GET ${SK_LOGIN_PATH:-/.sekisho/login} as $cu: status $code"
    [[ -n $(sk_csrf_from_last) ]] ||
        sk_fail "no csrf field in the login form: $(head -c 400 "$SK_TMP/last.body")"
    while IFS=$'\t' read -r n v; do
        [[ $n == return && $# -ge 4 ]] && continue
        form+=(--data-urlencode "$n=$v")
    done < <(sk_hidden_fields_from_last)
    if (($# >= 4)); then
        form+=(--data-urlencode "return=$ret")
    fi
    pwf=$SK_TMP/.pw.$BASHPID
    printf '%s' "$pw" >"$pwf"
    form+=(--data-urlencode "id=$id" --data-urlencode "password@$pwf")
    code=$(sk_curl -u "$cu" /.sekisho/login -b "$jar" -c "$jar" -H 'Accept: text/html' "${form[@]}")
    rm -f "$pwf"
    echo "$code"
}

# sk_session_cookie_from_last: value of __Host-sekisho in the last Set-Cookie.
sk_session_cookie_from_last() {
    tr -d '\r' <"$SK_TMP/last.headers" | grep -i '^set-cookie:' |
        grep -o '__Host-sekisho=[^;]*' | tail -n 1 | sed 's/^__Host-sekisho=//'
}

# sk_login USER [PASSWORD]: must succeed (303 + cookie). Prints the cookie value and
# stores it in $SK_TMP/cookie.USER.
sk_login() {
    local u=$1 pw=${2:-} code cookie
    [[ -n $pw ]] || pw=$(sk_user_password "$u")
    code=$(sk_login_attempt "$u" "$u" "$pw")
    [[ $code == 303 ]] || sk_fail "login as $u: expected 303, got $code: $(head -c 300 "$SK_TMP/last.body")"
    cookie=$(sk_session_cookie_from_last)
    [[ -n $cookie ]] || sk_fail "login as $u: no __Host-sekisho cookie set"
    printf '%s' "$cookie" >"$SK_TMP/cookie.$u"
    printf '%s' "$cookie"
}

# ---- /echo helpers ------------------------------------------------------------------

# sk_echo_header_values NAME [FILE]: values of every header whose name equals NAME
# after lowercasing and mapping '_' to '-' (so x_sekisho_user counts as
# X-Sekisho-User), one per line, from an /echo JSON body.
sk_echo_header_values() {
    local want=${1,,} f=${2:-$SK_TMP/last.body}
    want=${want//_/-}
    grep -oE '\["([^"\\]|\\.)*","([^"\\]|\\.)*"\]' "$f" |
        sed -E 's/^\["(([^"\\]|\\.)*)","(([^"\\]|\\.)*)"\]$/\1\t\3/' |
        awk -F '\t' -v w="$want" '{ n = tolower($1); gsub(/_/, "-", n); if (n == w) print $2 }'
}

sk_echo_header_count() { sk_echo_header_values "$@" | wc -l | tr -d ' '; }

# ---- raw TLS ------------------------------------------------------------------------

# sk_raw_request USER REQUESTFILE [SECONDS]: send the bytes of REQUESTFILE over mTLS
# with openssl s_client and print what came back (bounded by timeout).
sk_raw_request() {
    local user=$1 req=$2 secs=${3:-10}
    local -a a=(-quiet -connect "$SK_HOST:$SK_GW_PORT" -CAfile "$SK_CA_DIR/ca.crt")
    if [[ $user != - ]]; then
        a+=(-cert "$SK_TMP/users/$user.crt" -key "$SK_TMP/users/$user.key")
    fi
    timeout "$secs" openssl s_client "${a[@]}" <"$req" 2>"$SK_TMP/last.s_client.err" || true
}
