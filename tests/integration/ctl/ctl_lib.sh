# tests/integration/ctl/ctl_lib.sh — helpers for the sekishoctl tests (sourced
# after ../lib.sh).

# ctl_config: a minimal configuration in $SK_TMP/sk.conf (certificates need not
# exist for sekishoctl), cheap argon2 so the tests stay fast. -> SK_CONF
ctl_config() {
    SK_CONF=$SK_TMP/sk.conf
    cat >"$SK_CONF" <<CONF
[listen]
cert = server.crt
key = server.key

[tls]
client_ca = ca.crt

[state]
dir = state

[auth]
argon2_memory_kib = 1024
argon2_iterations = 1
CONF
    sk_store_conf_lines >>"$SK_CONF"
}

# ctl RC ARGS...: run sekishoctl -c $SK_CONF ARGS with stdin from /dev/null, assert
# its exit code. stdout -> $SK_TMP/out, stderr -> $SK_TMP/err.
ctl() {
    local want=$1 rc=0
    shift
    "$SK_BIN/sekishoctl" -c "$SK_CONF" "$@" >"$SK_TMP/out" 2>"$SK_TMP/err" </dev/null || rc=$?
    [[ $rc == "$want" ]] ||
        sk_fail "sekishoctl $*: exit $rc, expected $want; stdout: $(head -c 400 "$SK_TMP/out"); stderr: $(head -c 400 "$SK_TMP/err")"
    if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error:' "$SK_TMP/err"; then
        sk_fail "sekishoctl $*: sanitizer report: $(head -c 2000 "$SK_TMP/err")"
    fi
}

ctl_out() { cat "$SK_TMP/out"; }
ctl_err_text() { cat "$SK_TMP/err"; }

# ctl_refused WHAT: the last run printed exactly one "sekishoctl: " line on stderr.
ctl_refused() {
    local n
    n=$(wc -l <"$SK_TMP/err")
    sk_assert_eq "$n" 1 "$1: number of stderr lines"
    sk_assert_match "$(ctl_err_text)" '^sekishoctl: ' "$1: stderr prefix"
}

# ctl_json EXPR: evaluate a jq expression on the last stdout (must be valid JSON).
ctl_json() {
    jq -r "$1" "$SK_TMP/out" 2>"$SK_TMP/jq.err" ||
        sk_fail "stdout is not valid JSON for '$1': $(cat "$SK_TMP/jq.err"); $(head -c 400 "$SK_TMP/out")"
}

ctl_pwfile() { # NAME CONTENT -> prints the path
    local f=$SK_TMP/$1.pw
    printf '%s\n' "$2" >"$f"
    printf '%s' "$f"
}
