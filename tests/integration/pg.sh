# tests/integration/pg.sh — a throw-away PostgreSQL for a test (sourced after
# lib.sh, called after sk_setup).
#
#   sk_pg_start [tls]
#                  initdb + start in a fresh temporary directory on a free
#                  loopback port (its unix socket inside that directory), then a
#                  role "sekisho" with a random password and a database
#                  "sekisho" it owns. Sets:
#                    SK_PG_PORT    the TCP port on 127.0.0.1
#                    SK_PG_URL     postgresql://sekisho@127.0.0.1:PORT/sekisho
#                    SK_PG_PWFILE  the role's password (mode 0600), for [store] password_file
#                    SK_PG_CA      with tls: the CA of the server's certificate (for
#                                  ?sslmode=verify-full&sslrootcert=$SK_PG_CA); the
#                                  server then refuses TCP connections without TLS
#                    SK_PG_CTL     a script: `bash $SK_PG_CTL stop|start|freeze|thaw|psql [DB]`
#                                  (for programs that must stop, restart or hang the
#                                  database; psql reads SQL on stdin, as the superuser,
#                                  in DB, default sekisho)
#   sk_pg_stop     stop it (fast shutdown; data kept)
#   sk_pg_restart  start it again on the same port
#   sk_pg_psql SQL run SQL as the superuser in database sekisho (stdout: rows, unaligned)
#   sk_pg_conf_lines  print the [store] section that points a gateway or sekishoctl at it
#
# As root the server runs as the "postgres" system user (initdb refuses root),
# or "nobody" when that user does not exist; the directory is owned by it. The
# binaries come from SK_PG_BIN (default /usr/lib/postgresql/15/bin, Debian 12's
# postgresql-15, else the newest /usr/lib/postgresql/*/bin): a test that cannot
# find them FAILS, it never skips. Every
# wait is bounded; on exit (pass or fail) the server is stopped and the
# directory removed, then lib.sh's cleanup runs.

# Debian 12's postgresql-15, else the newest server version installed.
if [[ -z ${SK_PG_BIN:-} ]]; then
    SK_PG_BIN=/usr/lib/postgresql/15/bin
    if [[ ! -x $SK_PG_BIN/initdb ]]; then
        for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V); do
            [[ -x $d/initdb ]] && SK_PG_BIN=$d
        done
    fi
fi
SK_PG_DIR=""
SK_PG_PORT=""
SK_PG_URL=""
SK_PG_PWFILE=""
SK_PG_CTL=""
SK_PG_CA=""
SK_PG_TLS_OPTS=""
SK_PG_RUN=()

sk__pg_exit() {
    local rc=$?
    if [[ -n $SK_PG_DIR && -d $SK_PG_DIR ]]; then
        if ((rc != 0)) && [[ -s $SK_PG_DIR/log ]]; then
            printf -- '----- PostgreSQL log (last 30 lines) -----\n' >&2
            tail -n 30 "$SK_PG_DIR/log" >&2 || true
        fi
        if [[ -n $SK_PG_CTL && -f $SK_PG_CTL ]]; then bash "$SK_PG_CTL" thaw >/dev/null 2>&1 || true; fi
        sk_pg_stop >/dev/null 2>&1 || true
        rm -rf -- "$SK_PG_DIR"
    fi
    set +e # hand rc on to lib.sh's cleanup as $?
    (exit "$rc")
    sk__cleanup
}

sk_pg_start() {
    trap sk__pg_exit EXIT
    sk__pg_create "${1:-}"
}

# Everything of sk_pg_start but the exit trap (serve keeps the server running).
sk__pg_create() {
    local b user="" pw
    for b in initdb pg_ctl postgres psql; do
        [[ -x $SK_PG_BIN/$b ]] ||
            sk_fail "PostgreSQL not found: $SK_PG_BIN/$b is missing (install it: bash scripts/deps.sh test, package postgresql)"
    done
    SK_PG_DIR=$(mktemp -d /tmp/sk-pg.XXXXXX)
    SK_PG_RUN=()
    if [[ $(id -u) == 0 ]]; then
        user=postgres
        id -u "$user" >/dev/null 2>&1 || user=nobody
        chown "$user" "$SK_PG_DIR"
        SK_PG_RUN=(runuser -u "$user" --)
    fi
    chmod 0700 "$SK_PG_DIR"
    SK_PG_PORT=$(sk_free_port)
    pw=$(openssl rand -hex 16)
    # trust on the unix socket only: the socket lives in a 0700 directory of the
    # server's user; TCP (what Sekisho uses) needs the password
    (cd / && timeout 120 "${SK_PG_RUN[@]}" "$SK_PG_BIN/initdb" -D "$SK_PG_DIR/data" -U postgres --no-locale -E UTF8 \
        --auth-local=trust --auth-host=scram-sha-256 --no-sync >"$SK_PG_DIR/initdb.log" 2>&1) ||
        sk_fail "initdb failed: $(tail -n 5 "$SK_PG_DIR/initdb.log")"
    "${SK_PG_RUN[@]}" mkdir -m 0700 "$SK_PG_DIR/sock"
    [[ ${1:-} == tls ]] && sk__pg_tls "$user"
    sk_pg_restart
    printf "CREATE ROLE sekisho LOGIN PASSWORD '%s';\nCREATE DATABASE sekisho OWNER sekisho;\n" "$pw" |
        sk__pg_psql_db postgres >/dev/null || sk_fail "cannot create the sekisho role and database"
    SK_PG_PWFILE=$SK_TMP/pg.pw
    (umask 077 && printf '%s\n' "$pw" >"$SK_PG_PWFILE")
    SK_PG_URL="postgresql://sekisho@127.0.0.1:$SK_PG_PORT/sekisho"
    SK_PG_CTL=$SK_TMP/pg-ctl.sh
    {
        printf '#!/bin/bash\n# stop|start|psql (SQL on stdin) the test database of %s\nset -euo pipefail\n' "$SK_TEST_NAME"
        printf 'run=(%s)\n' "${SK_PG_RUN[*]}"
        printf 'case $1 in\n'
        printf 'stop) cd / && timeout 30 "${run[@]}" %q -D %q -m fast -w -t 20 stop >/dev/null ;;\n' \
            "$SK_PG_BIN/pg_ctl" "$SK_PG_DIR/data"
        printf 'start) cd / && timeout 60 "${run[@]}" %q -D %q -l %q -w -t 30 -o %q start >/dev/null ;;\n' \
            "$SK_PG_BIN/pg_ctl" "$SK_PG_DIR/data" "$SK_PG_DIR/log" "$(sk__pg_opts)"
        # freeze/thaw: SIGSTOP/SIGCONT the server and its backends, a database that
        # accepts TCP connections but never answers (a hung host)
        printf 'freeze|thaw) pm=$(head -n 1 %q); sig=STOP; [[ $1 == thaw ]] && sig=CONT\n' "$SK_PG_DIR/data/postmaster.pid"
        printf '    kill -$sig $pm $(pgrep -P $pm) ;;\n'
        printf 'psql) cd / && timeout 30 "${run[@]}" %q -X -q -At -v ON_ERROR_STOP=1 -h %q -p %q -U postgres -d "${2:-sekisho}" ;;\n' \
            "$SK_PG_BIN/psql" "$SK_PG_DIR/sock" "$SK_PG_PORT"
        printf '*) echo "usage: $0 stop|start|freeze|thaw|psql [DB]" >&2; exit 2 ;;\nesac\n'
    } >"$SK_PG_CTL"
}

# A CA and a server certificate for 127.0.0.1 (IP SAN, so verify-full checks it);
# TCP without TLS is refused by pg_hba.conf (hostssl only).
sk__pg_tls() { # USER (the server's, or "" when not root)
    local d=$SK_PG_DIR/tls
    mkdir -p "$d"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/ca.key" -out "$d/ca.crt" \
        -subj /CN=sekisho-test-db-ca -days 2 >/dev/null 2>&1 || sk_fail "test database CA"
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/server.key" -out "$d/server.csr" \
        -subj /CN=127.0.0.1 >/dev/null 2>&1 || sk_fail "test database key"
    printf 'subjectAltName=IP:127.0.0.1\n' >"$d/ext"
    openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
        -extfile "$d/ext" -out "$d/server.crt" >/dev/null 2>&1 || sk_fail "test database certificate"
    chmod 0600 "$d/server.key"
    chmod 0755 "$d"
    [[ -n $1 ]] && chown "$1" "$d/server.key" "$d/server.crt"
    sed -i 's/^host /hostssl /' "$SK_PG_DIR/data/pg_hba.conf"
    SK_PG_CA=$d/ca.crt
    SK_PG_TLS_OPTS=" -c ssl=on -c ssl_cert_file=$d/server.crt -c ssl_key_file=$d/server.key"
}

# The server's settings: loopback only, its socket in our directory, fsync off
# (a test database need not survive a power cut; commits keep their semantics).
sk__pg_opts() {
    printf '%s' "-c listen_addresses=127.0.0.1 -c port=$SK_PG_PORT -c unix_socket_directories=$SK_PG_DIR/sock -c fsync=off -c max_connections=200$SK_PG_TLS_OPTS"
}

sk_pg_restart() {
    (cd / && timeout 60 "${SK_PG_RUN[@]}" "$SK_PG_BIN/pg_ctl" -D "$SK_PG_DIR/data" -l "$SK_PG_DIR/log" -w -t 30 \
        -o "$(sk__pg_opts)" start >/dev/null 2>&1) || sk_fail "PostgreSQL did not start: $(tail -n 5 "$SK_PG_DIR/log" 2>/dev/null)"
}

sk_pg_stop() {
    [[ -n $SK_PG_DIR && -f $SK_PG_DIR/data/postmaster.pid ]] || return 0
    if ! (cd / && timeout 30 "${SK_PG_RUN[@]}" "$SK_PG_BIN/pg_ctl" -D "$SK_PG_DIR/data" -m fast -w -t 20 stop >/dev/null 2>&1); then
        local pid
        pid=$(head -n 1 "$SK_PG_DIR/data/postmaster.pid" 2>/dev/null || true)
        [[ $pid =~ ^[0-9]+$ ]] && kill -KILL "$pid" 2>/dev/null
        return 1
    fi
}

sk__pg_psql_db() { # DB, SQL on stdin
    (cd / && timeout 30 "${SK_PG_RUN[@]}" "$SK_PG_BIN/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$SK_PG_DIR/sock" \
        -p "$SK_PG_PORT" -U postgres -d "$1")
}

sk_pg_psql() { printf '%s\n' "$1" | sk__pg_psql_db sekisho; }

sk_pg_conf_lines() {
    printf '[store]\nbackend = postgresql\nurl = %s\npassword_file = %s\n' "$SK_PG_URL" "$SK_PG_PWFILE"
}

# Run as a script (scripts/test.sh's PostgreSQL pass): one server for a whole
# ctest run, its details for the tests in DIR/env (SK_TEST_PG_URL, _PWFILE, _CTL,
# shell assignments to source); each test then makes a database of its own (lib.sh).
#   bash pg.sh serve DIR   start it (DIR: a fresh directory for its files)
#   bash pg.sh stop DIR    stop it and remove its data directory and DIR
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    set -euo pipefail
    SK_TEST_NAME=pg-suite
    SK_TMP=${2:?usage: pg.sh serve|stop DIR}
    source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
    case $1 in
    serve)
        mkdir -p -m 0700 "$SK_TMP"
        umask 077
        trap 'rc=$?; if ((rc != 0)); then sk_pg_stop; rm -rf -- "$SK_PG_DIR"; fi' EXIT
        sk__pg_create
        printf 'SK_TEST_PG_URL=%q\nSK_TEST_PG_PWFILE=%q\nSK_TEST_PG_CTL=%q\nSK_TEST_PG_DIR=%q\n' \
            "$SK_PG_URL" "$SK_PG_PWFILE" "$SK_PG_CTL" "$SK_PG_DIR" >"$SK_TMP/env"
        ;;
    stop)
        [[ -f $SK_TMP/env ]] || exit 0
        source "$SK_TMP/env"
        rc=0
        bash "$SK_TEST_PG_CTL" stop || rc=$?
        [[ $SK_TEST_PG_DIR == /tmp/sk-pg.* ]] && rm -rf -- "$SK_TEST_PG_DIR"
        rm -rf -- "$SK_TMP"
        exit "$rc"
        ;;
    *) sk_fail "usage: pg.sh serve|stop DIR" ;;
    esac
fi
