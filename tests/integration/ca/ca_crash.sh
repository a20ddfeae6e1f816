#!/usr/bin/env bash
# The reissue commit protocol under crashes: SEKISHO_CA_TEST_CRASH makes
# sekisho-ca _exit(99) right after a step. Whatever the step, once the next
# command has run recovery the CA holds either the old state or the new one:
# exactly one valid certificate for the user, every serial that reached an output
# file is in the index, and the CRL matches the index.
source "$SK_SRC/tests/integration/lib.sh"
source "$SK_SRC/tests/integration/ca/ca_common.sh"
sk_setup
sk_need_bin sekisho-ca
command -v jq >/dev/null || sk_fail "jq not installed"
cd "$SK_TMP"
printf 'Crash-Pass1\n' >pw
T=$SK_TMP/template
ca init --dir "$T" --name "Crash CA" >/dev/null
ca issue --dir "$T" --user alice --out alice.p12 --password-file pw >/dev/null
ca_p12_leaf alice.p12 pw alice.crt
old=$(ca_serial_of alice.crt)

status_of() { # DIR SERIAL -> "status reason"
    ca list --dir "$1" --json | jq -r --arg s "$2" '.[] | select(.serial == $s) | "\(.status) \(.reason)"'
}

for step in pending output commit unpending; do
    D=$SK_TMP/ca-$step
    rm -rf "$D" "new-$step.p12"
    cp -a "$T" "$D"
    rc=0
    SEKISHO_CA_TEST_CRASH=$step "$SK_BIN/sekisho-ca" reissue --dir "$D" --user alice --out "new-$step.p12" \
        --password-file pw >/dev/null 2>&1 || rc=$?
    sk_assert_eq "$rc" 99 "$step: crash injected"

    # what the crash left
    new=""
    if [[ -e $D/pending ]]; then
        new=$(awk '$1 == "cert" { print $2 }' "$D/pending")
    fi
    case $step in
    pending | output)
        cmp -s "$D/index" "$T/index" || sk_fail "$step: index changed before the commit point"
        [[ -n $new ]] || sk_fail "$step: no journal"
        ;;
    commit)
        [[ -n $new ]] || sk_fail "$step: no journal"
        grep -q "^cert $new " "$D/index" || sk_fail "$step: new serial not committed"
        ;;
    unpending)
        [[ ! -e $D/pending ]] || sk_fail "$step: journal still there"
        ca_p12_leaf "new-$step.p12" pw "new-$step.crt"
        new=$(ca_serial_of "new-$step.crt")
        # the CRL was not rewritten yet: the index is ahead of crl.pem
        sk_assert_lt "$(ca_crl_number "$D")" "$(ca_index_crl_number "$D")" "$step: CRL owed"
        ;;
    esac
    if [[ -e new-$step.p12 ]]; then
        ca_p12_leaf "new-$step.p12" pw "new-$step.crt"
        sk_assert_eq "$(ca_serial_of "new-$step.crt")" "$new" "$step: output carries the journaled serial"
    fi

    # a read-only list does not recover (and does not modify anything)
    snap=$(ca_snapshot "$D")
    ca list --dir "$D" >/dev/null 2>list.err
    [[ $(ca_snapshot "$D") == "$snap" ]] || sk_fail "$step: list modified the directory"
    if [[ -e $D/pending ]]; then
        sk_assert_file_contains list.err "interrupted" "$step: list warns about the journal"
    fi

    # the next mutating command recovers first
    ca issue --dir "$D" --user bob --out "bob-$step.p12" --password-file pw >/dev/null 2>recover.log
    [[ ! -e $D/pending ]] || sk_fail "$step: journal survived recovery"
    sk_assert_eq "$(ca_crl_number "$D")" "$(ca_index_crl_number "$D")" "$step: CRL matches the index"
    valid=$(ca list --dir "$D" --json | jq '[.[] | select(.user == "alice" and .status == "valid")] | length')
    sk_assert_eq "$valid" 1 "$step: exactly one valid certificate for alice"
    case $step in
    pending | output)
        # old state: the old certificate stands, the orphan serial is void
        sk_assert_eq "$(status_of "$D" "$old")" "valid null" "$step: old certificate still valid"
        sk_assert_eq "$(status_of "$D" "$new")" "revoked cessationOfOperation" "$step: orphan serial revoked"
        sk_assert_eq "$(ca_verify alice.crt "$D")" OK "$step: old certificate verifies"
        if [[ -e new-$step.crt ]]; then
            sk_assert_contains "$(ca_verify "new-$step.crt" "$D")" "certificate revoked" "$step: orphan rejected"
        fi
        ;;
    commit | unpending)
        # new state: new certificate valid, old one superseded and in the CRL
        sk_assert_eq "$(status_of "$D" "$new")" "valid null" "$step: new certificate valid"
        sk_assert_eq "$(status_of "$D" "$old")" "revoked superseded" "$step: old certificate superseded"
        sk_assert_contains "$(ca_verify alice.crt "$D")" "certificate revoked" "$step: old certificate rejected"
        sk_assert_eq "$(ca_verify "new-$step.crt" "$D")" OK "$step: new certificate verifies"
        ;;
    esac
    # and the CA carries on normally
    rm -f "again-$step.p12"
    ca reissue --dir "$D" --user alice --out "again-$step.p12" --password-file pw >/dev/null
    ca_p12_leaf "again-$step.p12" pw "again-$step.crt"
    sk_assert_eq "$(ca_verify "again-$step.crt" "$D")" OK "$step: reissue after recovery"
done

# a crash of server-cert after both outputs were written: the server certificate
# is known to the CA and revoked by recovery
D=$SK_TMP/ca-server
cp -a "$T" "$D"
rc=0
SEKISHO_CA_TEST_CRASH=output "$SK_BIN/sekisho-ca" server-cert --dir "$D" --host localhost --out srv \
    >/dev/null 2>&1 || rc=$?
sk_assert_eq "$rc" 99 "server-cert crash injected"
[[ -e srv.crt && -e srv.key ]] || sk_fail "server-cert outputs missing"
ca crl --dir "$D" >/dev/null 2>&1
srv=$(ca_serial_of srv.crt)
sk_assert_eq "$(status_of "$D" "$srv")" "revoked cessationOfOperation" "orphan server certificate revoked"
sk_pass
