#!/usr/bin/env bash
# `sekisho -c FILE -t`: 0 for a good configuration; 1 with "FILE:LINE" for an
# unknown key; 2 for a usage error.
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
sk_setup
sk_need_bin sekisho
sk_make_ca
SK_UP_PORT=$(sk_free_port)
sk_write_config "$SK_TMP/good.conf" </dev/null

rc=0
"$SK_BIN/sekisho" -c "$SK_TMP/good.conf" -t >"$SK_TMP/good.out" 2>&1 || rc=$?
sk_assert_eq "$rc" 0 "sekisho -t on a good config ($(head -c 300 "$SK_TMP/good.out"))"

check_bad() { # NAME EXTRA-INI WHAT
    local f=$SK_TMP/$1.conf rc=0 line
    cp "$SK_TMP/good.conf" "$f"
    printf '%s\n' "$2" >>"$f"
    line=$(grep -n -F -x -- "$(printf '%s' "$2" | tail -n 1)" "$f" | tail -n 1 | cut -d: -f1)
    "$SK_BIN/sekisho" -c "$f" -t >"$SK_TMP/$1.out" 2>&1 || rc=$?
    sk_assert_eq "$rc" 1 "sekisho -t on $3"
    sk_assert_contains "$(cat "$SK_TMP/$1.out")" "$1.conf:$line" "FILE:LINE in the message for $3"
}

check_bad unknown-key $'[listen]\nfrobnicate = 1' "an unknown key"
# An unknown section is reported at its header line, the line that is wrong.
check_bad_at() { # NAME EXTRA-INI WHAT LINE-TEXT
    local f=$SK_TMP/$1.conf rc=0 line
    cp "$SK_TMP/good.conf" "$f"
    printf '%s\n' "$2" >>"$f"
    line=$(grep -n -F -x -- "$4" "$f" | tail -n 1 | cut -d: -f1)
    "$SK_BIN/sekisho" -c "$f" -t >"$SK_TMP/$1.out" 2>&1 || rc=$?
    sk_assert_eq "$rc" 1 "sekisho -t on $3"
    sk_assert_contains "$(cat "$SK_TMP/$1.out")" "$1.conf:$line" "FILE:LINE in the message for $3"
}
check_bad_at unknown-section $'[nonsense]\nanswer = 42' "an unknown section" "[nonsense]"
check_bad empty-section $'[nonsense]' "an empty unknown section"
check_bad bad-duration $'[policy]\nidle_timeout = 10 parsecs' "a malformed duration"

# Not a config check problem but a usage problem.
rc=0
"$SK_BIN/sekisho" --no-such-option >"$SK_TMP/usage.out" 2>&1 </dev/null || rc=$?
sk_assert_eq "$rc" 2 "unknown command-line option"
rc=0
"$SK_BIN/sekisho" -c "$SK_TMP/does-not-exist.conf" -t >"$SK_TMP/missing.out" 2>&1 || rc=$?
sk_assert_eq "$rc" 1 "missing config file"
sk_pass
