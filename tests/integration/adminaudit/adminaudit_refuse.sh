#!/bin/bash
# Audit before act: when the audit log cannot be opened (signing key with loose
# permissions, key removed while KEY.pub remains, key inside the audit directory,
# key unreadable), every sekishoctl state change and every sekisho-ca change is
# refused with exit 1 and one line, and the user database, the TOTP key, the CA
# directory and the log stay as they were. Also: `audit keygen` on a fresh install,
# and (as root) audit files made by root-run tools belong to the owner of the
# audit directory, so the gateway's user can keep appending.
source "$SK_SRC/tests/integration/lib.sh"
source "$SK_SRC/tests/integration/ctl/ctl_lib.sh"
source "$SK_SRC/tests/integration/adminaudit/aa_lib.sh"
sk_setup
sk_need_bin sekishoctl sekisho-ca
command -v jq >/dev/null || sk_fail "jq not installed"
unset SUDO_USER SEKISHO_CONF
ctl_config
KEY=$SK_TMP/state/audit.key
pw=$(ctl_pwfile pw Alpine-Lake-42x)
printf '%s' "p12-$(openssl rand -hex 8)" >"$SK_TMP/p12pass"

# ---- keygen on a fresh install (no state directory yet), then used as is ----------
[[ ! -e $SK_TMP/state ]] || sk_fail "state exists before the first command"
ctl 0 audit keygen
[[ -f $KEY && -f $KEY.pub ]] || sk_fail "audit keygen wrote no key pair"
ctl 0 user add alice --password-file "$pw"
sk_assert_not_contains "$(ctl_out)" "created the audit signing key" "an existing key is used"
ctl 1 audit keygen
sk_assert_contains "$(ctl_err_text)" "already exists" "keygen over an existing key"
ctl 0 user add bob --tenant acme --password-file "$pw"
ctl 0 user allow-ip bob 203.0.113.0/24 --tenant acme
"$SK_BIN/sekisho-ca" init --dir "$SK_TMP/ca" --name "Refusal CA" --audit-config "$SK_CONF" \
    >"$SK_TMP/ca.out" 2>&1 </dev/null || sk_fail "sekisho-ca init: $(cat "$SK_TMP/ca.out")"
"$SK_BIN/sekisho-ca" issue --dir "$SK_TMP/ca" --user alice --out "$SK_TMP/alice.p12" \
    --password-file "$SK_TMP/p12pass" --audit-config "$SK_CONF" >"$SK_TMP/ca.out" 2>&1 </dev/null ||
    sk_fail "sekisho-ca issue: $(cat "$SK_TMP/ca.out")"
aa_verify

# ---- snapshots of everything a refused command must leave alone ----------------------
snapshot() { # NAME
    ctl 0 user list --json
    cp "$SK_TMP/out" "$SK_TMP/$1.users"
    ctl 0 session list --json
    cp "$SK_TMP/out" "$SK_TMP/$1.sessions"
    (cd "$SK_TMP/ca" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$SK_TMP/$1.ca"
    cat "$AUDIT_DIR"/audit-*.jsonl | sha256sum >"$SK_TMP/$1.audit"
}
same() { # WHAT
    local f
    snapshot now
    for f in users sessions ca audit; do
        cmp -s "$SK_TMP/ref.$f" "$SK_TMP/now.$f" ||
            sk_fail "$1: $f changed: $(diff "$SK_TMP/ref.$f" "$SK_TMP/now.$f" | head -c 600)"
    done
    [[ ! -e $SK_TMP/state/totp.key ]] || sk_fail "$1: the TOTP key was created"
    [[ ! -e $SK_TMP/carol.p12 && ! -e $SK_TMP/srv.crt ]] || sk_fail "$1: a CA output was written"
}
snapshot ref

# every state change of both tools, refused with a one-line reason naming NEEDLE
refused_all() { # WHAT NEEDLE
    local what=$1 needle=$2 rc
    for args in "user add carol --password-file $pw" "user passwd alice --password-file $pw" \
        "user lock alice" "user unlock alice" "user delete alice" \
        "user allow-ip alice 10.0.0.0/8" "user deny-ip bob 203.0.113.0/24 --tenant acme" \
        "user totp enable alice" "user totp disable alice" "session revoke --all" \
        "session revoke --user alice" "sweep"; do
        # shellcheck disable=SC2086
        ctl 1 $args
        ctl_refused "$what: $args"
        sk_assert_contains "$(ctl_err_text)" "audit log unavailable" "$what: $args: reason"
        sk_assert_contains "$(ctl_err_text)" "$needle" "$what: $args: reason"
    done
    for args in "issue --user carol --out $SK_TMP/carol.p12 --password-file $SK_TMP/p12pass" \
        "reissue --user alice --out $SK_TMP/carol.p12 --password-file $SK_TMP/p12pass" \
        "revoke --user alice" "crl" "server-cert --host gw.example.com --out $SK_TMP/srv"; do
        rc=0
        # shellcheck disable=SC2086
        "$SK_BIN/sekisho-ca" ${args%% *} --dir "$SK_TMP/ca" ${args#* } --audit-config "$SK_CONF" \
            >"$SK_TMP/ca.out" 2>"$SK_TMP/ca.err" </dev/null || rc=$?
        [[ $args == crl ]] && { rc=0; SEKISHO_CONF=$SK_CONF "$SK_BIN/sekisho-ca" crl --dir "$SK_TMP/ca" \
            >"$SK_TMP/ca.out" 2>"$SK_TMP/ca.err" </dev/null || rc=$?; }
        sk_assert_eq "$rc" 1 "$what: sekisho-ca $args: exit status"
        sk_assert_eq "$(wc -l <"$SK_TMP/ca.err")" 1 "$what: sekisho-ca $args: stderr lines"
        sk_assert_contains "$(cat "$SK_TMP/ca.err")" "audit log unavailable" "$what: sekisho-ca $args"
    done
    rc=0
    "$SK_BIN/sekisho-ca" init --dir "$SK_TMP/ca2" --name X --audit-config "$SK_CONF" \
        >"$SK_TMP/ca.out" 2>"$SK_TMP/ca.err" </dev/null || rc=$?
    sk_assert_eq "$rc" 1 "$what: sekisho-ca init: exit status"
    [[ ! -e $SK_TMP/ca2 ]] || sk_fail "$what: a refused init created the CA directory"
    same "$what"
    # read-only commands still work and need no key
    ctl 0 user show alice
    ctl 0 audit show
    "$SK_BIN/sekisho-ca" list --dir "$SK_TMP/ca" --audit-config "$SK_CONF" >/dev/null 2>&1 </dev/null ||
        sk_fail "$what: sekisho-ca list refused"
}

# 1. a key readable by others
chmod 0640 "$KEY"
refused_all "key mode 0640" "must be mode 0600"
chmod 0600 "$KEY"

# 2. the key removed, its .pub still there: never replaced by a new key
mv "$KEY" "$SK_TMP/key.saved"
refused_all "key removed" "is missing but"
[[ ! -e $KEY ]] || sk_fail "a new key was made while KEY.pub exists"
mv "$SK_TMP/key.saved" "$KEY"

# 3. the key inside the audit directory (configured there, or reached by a symlink)
cp "$SK_TMP/sk.conf" "$SK_TMP/sk.conf.orig"
cp -p "$KEY" "$AUDIT_DIR/inside.key"
printf '\n[audit]\nkey = state/audit/inside.key\n' >>"$SK_CONF"
refused_all "key inside the audit dir" "inside the audit directory"
cp "$SK_TMP/sk.conf.orig" "$SK_CONF"
ln -s "$AUDIT_DIR/inside.key" "$SK_TMP/link.key"
printf '\n[audit]\nkey = link.key\n' >>"$SK_CONF"
refused_all "key linked into the audit dir" "inside the audit directory"
cp "$SK_TMP/sk.conf.orig" "$SK_CONF"
rm -f "$AUDIT_DIR/inside.key" "$SK_TMP/link.key"
# the reader ignores non-segment files, so the log itself is unchanged
snapshot ref

# 4. an unreadable key: chmod 000 (root reads it anyway, so as root the key is made
#    unreadable for the owner of the audit directory, whose rights the tools use)
if (($(id -u) != 0)); then
    chmod 000 "$KEY"
    refused_all "key mode 000" "cannot read the signing key"
    chmod 600 "$KEY"
fi

# the log still verifies and holds only the successful changes
aa_verify
X=$SK_TMP/export.jsonl
aa_export "$X"
sk_assert_eq "$(aa_count "$X" '.ev == "admin.change"')" 5 "admin.change entries (3 sekishoctl + 2 CA)"

# ---- root: audit files belong to the audit directory's owner ---------------------------
if (($(id -u) == 0)) && command -v runuser >/dev/null && id nobody >/dev/null 2>&1; then
    O=$SK_TMP/owned
    mkdir -p "$O/state/audit" "$O/keys"
    chmod 711 "$SK_TMP" "$O" "$O/state"
    chown nobody "$O/state/audit" "$O/keys"
    if runuser -u nobody -- test -w "$O/keys"; then
        cat >"$O/sk.conf" <<CONF
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
[audit]
key = keys/audit.key
CONF
        sk_store_conf_lines >>"$O/sk.conf"
        chmod 644 "$O/sk.conf"
        "$SK_BIN/sekishoctl" -c "$O/sk.conf" user add dan --password-file "$pw" >"$SK_TMP/o.out" 2>&1 \
            </dev/null || sk_fail "user add with a nobody-owned audit dir: $(cat "$SK_TMP/o.out")"
        sk_assert_eq "$(stat -c %U "$O/keys/audit.key")" nobody "key created by the audit dir's owner"
        for f in "$O"/state/audit/audit-*.jsonl "$O/state/audit/.lock"; do
            sk_assert_eq "$(stat -c %U "$f")" nobody "owner of $(basename "$f")"
        done
        # the owner can append (what the gateway does) and root's tools still work
        "$SK_BIN/sekisho-ca" init --dir "$O/ca" --name "Owned CA" --audit-config "$O/sk.conf" \
            >"$SK_TMP/o.out" 2>&1 </dev/null || sk_fail "CA with a nobody-owned audit dir: $(cat "$SK_TMP/o.out")"
        sk_assert_eq "$(stat -c %U "$O/ca/ca.key")" root "CA files stay root's"
        for f in "$O"/state/audit/audit-*.jsonl; do
            sk_assert_eq "$(stat -c %U "$f")" nobody "owner of $(basename "$f") after the CA"
        done
        # the gateway's user reads (and owns) every file of the log
        out=$(runuser -u nobody -- "$SK_BIN/sekishoctl" -c "$O/sk.conf" audit verify 2>&1) ||
            sk_fail "verify as the audit dir's owner: $out"
        sk_assert_match "$out" '^OK' "verify as the audit dir's owner"
        # a key only root can read is unreadable for the owner: refused
        chown root "$O/keys/audit.key"
        "$SK_BIN/sekishoctl" -c "$O/sk.conf" user lock dan >"$SK_TMP/o.out" 2>"$SK_TMP/o.err" </dev/null &&
            sk_fail "a change with a key its audit dir's owner cannot read was accepted"
        sk_assert_contains "$(cat "$SK_TMP/o.err")" "cannot read the signing key" "unreadable key"
        "$SK_BIN/sekishoctl" -c "$O/sk.conf" user show dan >"$SK_TMP/o.out" 2>&1 </dev/null ||
            sk_fail "user show dan: $(cat "$SK_TMP/o.out")"
        sk_assert_match "$(cat "$SK_TMP/o.out")" 'status: +active' "dan not locked by a refused command"
    else
        sk_log "skipping the ownership part: nobody cannot reach $O"
    fi
fi
sk_pass
