#!/usr/bin/env bash
# A configuration check that teaches (issue 11, item 5), through the real sekisho:
# refused values name FILE:LINE, the value and what is allowed; time zones, ports,
# URLs and required keys are checked; -t checks that the user running it (the
# service user) can use the directories and key files; -T prints the effective
# configuration, which loads back to the same.
source "$(dirname "$0")/../lib.sh"
sk_setup
sk_need_bin sekisho sekishoctl
chmod 0755 "$SK_TMP"
sk_make_ca
chmod 0755 "$SK_CA_DIR"
SK_UP_PORT=$(sk_free_port)
sk_write_config </dev/null
base=$(cat "$SK_CONF")

check() { # RC FILE -> output in $SK_TMP/t.out
    local want=$1 rc=0
    "$SK_BIN/sekisho" -c "$2" -t >"$SK_TMP/t.out" 2>&1 </dev/null || rc=$?
    [[ $rc == "$want" ]] || sk_fail "sekisho -t $2: exit $rc, expected $want: $(cat "$SK_TMP/t.out")"
}
bad() { # LINE-TEXT... : the base config plus these lines must be refused
    local f=$SK_TMP/bad.conf
    { printf '%s\n' "$base"; printf '%s\n' "$@"; } >"$f"
    check 1 "$f"
    sk_assert_eq "$(wc -l <"$SK_TMP/t.out")" 1 "one line for: $*"
}
n=$(wc -l <"$SK_CONF")

check 0 "$SK_CONF"
bad '[policy]' 'idle_timeout = 5s'
sk_assert_eq "$(cat "$SK_TMP/t.out")" \
    "sekisho: $SK_TMP/bad.conf:$((n + 2)): [policy] idle_timeout = 5s: must be between 60s and 1d (a number with s, m, h or d)" \
    "idle_timeout message"
bad '[audit]' 'timezone = Asia/Tokio'
sk_assert_contains "$(cat "$SK_TMP/t.out")" "bad.conf:$((n + 2)): [audit] timezone = Asia/Tokio: unknown time zone" "tz"
bad '[listen]' 'max_connections = 0'
sk_assert_contains "$(cat "$SK_TMP/t.out")" "max_connections = 0: must be a whole number between 1 and 100000" "u32 range"
bad '[access]' 'allow = 10.0.0.0/8, 300.1.2.3'
sk_assert_contains "$(cat "$SK_TMP/t.out")" "'300.1.2.3' is not a CIDR" "bad CIDR named"
bad '[policy]' 'password_max_length = 19'
sk_assert_contains "$(cat "$SK_TMP/t.out")" "between 20 and 1024" "password_max_length floor"
# Port 99999 in the listen address (it replaces the generated one).
sed "s/^address = .*/address = 127.0.0.1:99999/" "$SK_CONF" >"$SK_TMP/port.conf"
check 1 "$SK_TMP/port.conf"
sk_assert_contains "$(cat "$SK_TMP/t.out")" "port.conf:3: [listen] address = 127.0.0.1:99999: must be" "listen port"
sk_assert_contains "$(cat "$SK_TMP/t.out")" "PORT between 1 and 65535" "listen port range"
sed "s|^url = .*|url = http://127.0.0.1:99999|" "$SK_CONF" >"$SK_TMP/url.conf"
check 1 "$SK_TMP/url.conf"
sk_assert_contains "$(cat "$SK_TMP/t.out")" "url = http://127.0.0.1:99999: must be http://HOST[:PORT][/PREFIX]" "url port"
# A missing [upstream] url: the gateway refuses; sekishoctl (which needs no upstream) still reads it.
grep -v '^url = http' "$SK_CONF" >"$SK_TMP/nourl.conf" # [upstream]'s, not [store]'s
check 1 "$SK_TMP/nourl.conf"
sk_assert_contains "$(cat "$SK_TMP/t.out")" "[upstream] url is required" "required url"
"$SK_BIN/sekishoctl" -c "$SK_TMP/nourl.conf" user list >/dev/null 2>&1 </dev/null ||
    sk_fail "sekishoctl refused a config without [upstream] url"

# Allowed but weaker than NIST: a warning, still valid.
{ printf '%s\n' "$base"; printf '[policy]\npassword_max_length = 20\n'; } >"$SK_TMP/pw20.conf"
check 0 "$SK_TMP/pw20.conf"
sk_assert_contains "$(cat "$SK_TMP/t.out")" "warning: [policy] password_max_length = 20 is below 64" "NIST warning"
sk_assert_contains "$(cat "$SK_TMP/t.out")" "NIST SP 800-63B" "warning cites NIST"
check 0 "$SK_CONF"
sk_assert_not_contains "$(cat "$SK_TMP/t.out")" "warning" "no warning with the defaults"

# -T: every key with its effective value; it loads back to the same dump.
"$SK_BIN/sekisho" -c "$SK_TMP/pw20.conf" -T >"$SK_TMP/dump1.conf" 2>"$SK_TMP/dump.err" ||
    sk_fail "sekisho -T: $(cat "$SK_TMP/dump.err")"
sk_assert_file_contains "$SK_TMP/dump1.conf" "idle_timeout = 1h" "default idle_timeout shown"
sk_assert_file_contains "$SK_TMP/dump1.conf" "timezone = Asia/Tokyo" "default time zone shown"
sk_assert_file_contains "$SK_TMP/dump1.conf" "password_max_length = 20" "set value shown"
sk_assert_file_contains "$SK_TMP/dump1.conf" "dir = $SK_TMP/state" "relative path resolved"
sk_assert_file_contains "$SK_TMP/dump1.conf" "totp_key = $SK_TMP/state/totp.key" "derived default shown"
check 0 "$SK_TMP/dump1.conf"
"$SK_BIN/sekisho" -c "$SK_TMP/dump1.conf" -T >"$SK_TMP/dump2.conf"
sk_assert_eq "$(tail -n +2 "$SK_TMP/dump2.conf")" "$(tail -n +2 "$SK_TMP/dump1.conf")" "-T output loads back to itself"
"$SK_BIN/sekisho" -c "$SK_TMP/bad.conf" -T >/dev/null 2>&1 && sk_fail "-T of an invalid file succeeded"

# -t as the service user: directories and keys it cannot use are named.
if [[ $(id -u) == 0 ]] && command -v setpriv >/dev/null; then
    chmod 0644 "$SK_CONF"
    as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
    mkdir -p "$SK_TMP/state"
    chmod 0700 "$SK_TMP/state"
    rc=0; as_nobody "$SK_BIN/sekisho" -c "$SK_CONF" -t >"$SK_TMP/t.out" 2>&1 || rc=$?
    sk_assert_eq "$rc" 1 "root-owned state dir refused for nobody"
    sk_assert_contains "$(cat "$SK_TMP/t.out")" "[state] dir $SK_TMP/state: not writable by user nobody (uid 65534)" \
        "state dir message"
    chown nobody:nogroup "$SK_TMP/state"
    rc=0; as_nobody "$SK_BIN/sekisho" -c "$SK_CONF" -t >"$SK_TMP/t.out" 2>&1 || rc=$?
    sk_assert_eq "$rc" 1 "root-only server.key refused for nobody"
    sk_assert_contains "$(cat "$SK_TMP/t.out")" "[listen] key $SK_TMP/server.key: not readable by user nobody" \
        "key message"
    chgrp nogroup "$SK_TMP/server.key"
    chmod 0640 "$SK_TMP/server.key"
    if [[ $(sk_store_backend) == postgresql ]]; then
        rc=0; as_nobody "$SK_BIN/sekisho" -c "$SK_CONF" -t >"$SK_TMP/t.out" 2>&1 || rc=$?
        sk_assert_eq "$rc" 1 "root-only [store] password_file refused for nobody"
        sk_assert_contains "$(cat "$SK_TMP/t.out")" "[store] password_file $SK_TMP/store.pw: not readable by user nobody" \
            "password file message"
        chown nobody "$SK_TMP/store.pw" # mode 0600 is required: the service user owns it
    fi
    rc=0; as_nobody "$SK_BIN/sekisho" -c "$SK_CONF" -t >"$SK_TMP/t.out" 2>&1 || rc=$?
    sk_assert_eq "$rc" 0 "usable by nobody: $(cat "$SK_TMP/t.out")"
else
    # Not root: a directory this user cannot write stands in for the service user's.
    mkdir -p "$SK_TMP/ro"
    chmod 0500 "$SK_TMP/ro"
    sed "s|^dir = state|dir = ro/state|" "$SK_CONF" >"$SK_TMP/ro.conf"
    check 1 "$SK_TMP/ro.conf"
    sk_assert_contains "$(cat "$SK_TMP/t.out")" "(to be created in) $SK_TMP/ro: not writable by user" "ro dir"
fi
sk_pass
