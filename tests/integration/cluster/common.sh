# tests/integration/cluster/common.sh — two gateway nodes on one PostgreSQL
# (sourced after lib.sh, lifecycle/common.sh and pg.sh; call after sk_setup).
#
#   cl_setup USER:TENANT ...   CA + certificates, the upstream, a PostgreSQL
#                              (sk_pg_start), the schema (store migrate), the
#                              fake sendmail, node A's configuration and the
#                              accounts; node B's configuration is A's with its
#                              own port, state, audit key and [audit] node.
#                              Extra INI lines for both come from stdin.
#   cl_start A|B [faketime]    start that node (faketime: under lc_start_gateway_ft)
#   cl_use A|B                 point sk_curl / sk_login / lc_* at that node
#   cl_kill A|B                SIGKILL the node's whole process group
#
# Both nodes share the store, the TOTP key file (every node needs the same one)
# and the CA; each has its own audit directory and key, as real nodes would.
# One network process with one worker thread per node, so that "a session this
# thread checked before" (the outage grace) is deterministic.

CL_PORT_A="" CL_PORT_B="" CL_PID_A="" CL_PID_B="" CL_LOG_A="" CL_LOG_B=""

cl_setup() {
    local spec extra=""
    [[ -t 0 ]] || extra=$(cat)
    sk_make_ca "$@"
    sk_start_upstream
    sk_pg_start
    CL_PORT_A=$(sk_free_port)
    CL_PORT_B=$(sk_free_port)
    SK_GW_PORT=$CL_PORT_A
    {
        lc_fake_sendmail
        printf '[listen]\nworkers = 1\nprocesses = 1\n'
        sk_pg_conf_lines
        printf '[auth]\ntotp_key = %s/totp.key\n' "$SK_TMP"
        printf '%s\n' "$extra"
    } >"$SK_TMP/extra.ini"
    sk_write_config "$SK_TMP/a.conf" <"$SK_TMP/extra.ini" # not in a pipe: it sets SK_CONF
    # [audit] and [auth] appear twice in a.conf (lib.sh writes its own): the parser
    # takes a section's keys wherever they come. The node name goes into [audit].
    sed -i -e 's|^key = audit.key|key = audit.key\nnode = gw-a|' "$SK_TMP/a.conf"
    sed -e "s/^address = .*/address = $SK_HOST:$CL_PORT_B/" -e 's|^dir = state|dir = state-b|' \
        -e 's|^key = audit.key|key = audit-b.key|' -e 's|^node = gw-a|node = gw-b|' \
        -e 's|^backend = postgresql|backend = postgresql\npool = 1|' \
        "$SK_TMP/a.conf" >"$SK_TMP/b.conf"
    # node B runs on a single database connection per process ([store] pool = 1),
    # node A on the default: every cluster test passes on both
    grep -q "^node = gw-b" "$SK_TMP/b.conf" && grep -q "^pool = 1" "$SK_TMP/b.conf" ||
        sk_fail "test setup: node B's configuration"
    "$SK_BIN/sekishoctl" -c "$SK_TMP/a.conf" store migrate >"$SK_TMP/migrate.log" 2>&1 ||
        sk_fail "store migrate: $(cat "$SK_TMP/migrate.log")"
    for spec in "$@"; do
        sk_add_user "${spec%%:*}" "${spec#*:}" "$(sk_password)" general
    done
}

cl_use() {
    if [[ $1 == A ]]; then
        SK_GW_PORT=$CL_PORT_A SK_CONF=$SK_TMP/a.conf SK_GW_PID=$CL_PID_A SK_GW_LOG=$CL_LOG_A
    else
        SK_GW_PORT=$CL_PORT_B SK_CONF=$SK_TMP/b.conf SK_GW_PID=$CL_PID_B SK_GW_LOG=$CL_LOG_B
    fi
}

cl_start() {
    local node=$1 mode=${2:-}
    cl_use "$node"
    if [[ $mode == faketime ]]; then
        lc_start_gateway_ft "$(cat "$SK_TMP/clock.d/clock" 2>/dev/null || echo +0)"
    else
        sk_start_gateway
    fi
    # lib.sh names the log gateway.log: each node gets its own.
    mv "$SK_GW_LOG" "$SK_TMP/gateway-$node.log" 2>/dev/null || true
    SK_GW_LOG=$SK_TMP/gateway-$node.log
    if [[ $node == A ]]; then CL_PID_A=$SK_GW_PID CL_LOG_A=$SK_GW_LOG; else CL_PID_B=$SK_GW_PID CL_LOG_B=$SK_GW_LOG; fi
}

# The monitor first: its children die with it (PDEATHSIG), and it cannot restart
# any of them meanwhile.
cl_kill() {
    local pid kids k i
    if [[ $1 == A ]]; then pid=$CL_PID_A; else pid=$CL_PID_B; fi
    kids=$(pgrep -P "$pid" | tr '\n' ' ' || true)
    kill -KILL "$pid" 2>/dev/null || true
    sk_wait_exit "$pid" 10
    for k in $kids; do
        for ((i = 0; i < 50; i++)); do kill -0 "$k" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$k" 2>/dev/null && sk_fail "child $k of the killed node $1 survived it"
    done
    return 0
}

cl_stop_both() {
    cl_use A
    sk_stop_gateway
    cl_use B
    sk_stop_gateway
}
