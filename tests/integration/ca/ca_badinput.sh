#!/usr/bin/env bash
# sekisho-ca refuses bad input with exit 1 and one reason line, usage errors with
# exit 2, and in every refused case the CA directory stays byte-for-byte the same
# and no output file (or temp file) is left behind.
source "$SK_SRC/tests/integration/lib.sh"
source "$SK_SRC/tests/integration/ca/ca_common.sh"
sk_setup
sk_need_bin sekisho-ca
cd "$SK_TMP"
D=$SK_TMP/ca
ca init --dir "$D" --name "Bad Input CA" >/dev/null
printf 'Good-Pass1\n' >pw
ca issue --dir "$D" --user alice --out alice.p12 --password-file pw >/dev/null
ca_p12_leaf alice.p12 pw alice.crt
ca revoke --dir "$D" --serial "$(ca_serial_of alice.crt)" >/dev/null
ca issue --dir "$D" --user alice --out alice2.p12 --password-file pw >/dev/null
mkdir out

# inputs
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout k.key -subj "/CN=x" \
    -outform DER -out tampered.der 2>/dev/null
sz=$(stat -c %s tampered.der)
b=$(od -An -tu1 -j $((sz - 1)) -N1 tampered.der | tr -d ' ')
printf "$(printf '\\%03o' $((b ^ 0x40)))" | dd of=tampered.der bs=1 seek=$((sz - 1)) conv=notrunc status=none
openssl req -in tampered.der -inform DER -out tampered.pem 2>/dev/null || true
openssl req -new -newkey rsa:1024 -nodes -keyout r.key -subj "/CN=x" -out rsa1024.csr 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-521 -nodes -keyout p.key -subj "/CN=x" \
    -out p521.csr 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout g.key -subj "/CN=x" \
    -out good.csr 2>/dev/null
head -c 300 good.csr >truncated.csr
printf 'this is not a CSR\n' >garbage.csr
: >empty.csr
mkdir dir.csr dir.pw
: >empty.pw
printf '\n' >newline.pw
printf 'x' >notadir
printf 'already here' >out/exists.p12
long=$(printf 'a%.0s' {1..65})

before=$(ca_snapshot "$D")
check_unchanged() {
    local now
    now=$(ca_snapshot "$D")
    [[ $now == "$before" ]] || sk_fail "$1: CA directory changed: $(diff <(echo "$before") <(echo "$now") | head -20)"
    [[ -z $(find out -name '*.tmp*' -print -quit) ]] || sk_fail "$1: temp file left in out/"
    [[ ! -e out/new.p12 && ! -e out/new.crt && ! -e out/srv.crt && ! -e out/srv.key ]] ||
        sk_fail "$1: output written"
}
refused() { # WHAT REASON-SUBSTRING ARGS...
    local what=$1 want=$2
    shift 2
    ca_refused "$what" ca "$@"
    [[ -z $want ]] || sk_assert_contains "$(cat "$SK_TMP/refused.err")" "$want" "$what: reason"
    check_unchanged "$what"
}

P12=(--out out/new.p12 --password-file pw)
refused "missing CSR" "CSR" issue --dir "$D" --user bob --csr nosuch.csr --out out/new.crt
refused "unreadable CSR (directory)" "CSR" issue --dir "$D" --user bob --csr dir.csr --out out/new.crt
refused "empty CSR" "CSR" issue --dir "$D" --user bob --csr empty.csr --out out/new.crt
refused "garbage CSR" "parse" issue --dir "$D" --user bob --csr garbage.csr --out out/new.crt
refused "truncated CSR" "parse" issue --dir "$D" --user bob --csr truncated.csr --out out/new.crt
refused "tampered CSR (DER)" "signature" issue --dir "$D" --user bob --csr tampered.der --out out/new.crt
if [[ -s tampered.pem ]]; then
    refused "tampered CSR (PEM)" "signature" issue --dir "$D" --user bob --csr tampered.pem --out out/new.crt
fi
refused "RSA 1024 CSR" "RSA" issue --dir "$D" --user bob --csr rsa1024.csr --out out/new.crt
refused "P-521 CSR" "P-256" issue --dir "$D" --user bob --csr p521.csr --out out/new.crt
refused "CSR for a user with a valid cert" "reissue" issue --dir "$D" --user alice --csr good.csr --out out/new.crt
refused "reissue unknown user" "unknown user" reissue --dir "$D" --user nobody "${P12[@]}"
refused "reissue unknown tenant" "unknown user" reissue --dir "$D" --user alice --tenant other "${P12[@]}"
refused "revoke unknown user" "unknown user" revoke --dir "$D" --user nobody
refused "revoke unknown serial" "unknown serial" revoke --dir "$D" --serial 0123456789ABCDEF
refused "revoke malformed serial" "serial" revoke --dir "$D" --serial 12:34:zz
refused "revoke already revoked" "already revoked" revoke --dir "$D" --serial "$(ca_serial_of alice.crt)"
refused "empty password file" "empty" issue --dir "$D" --user bob --out out/new.p12 --password-file empty.pw
refused "password file with an empty first line" "empty" issue --dir "$D" --user bob --out out/new.p12 \
    --password-file newline.pw
refused "missing password file" "password file" issue --dir "$D" --user bob --out out/new.p12 --password-file nosuch
refused "unreadable password file (directory)" "password file" issue --dir "$D" --user bob --out out/new.p12 \
    --password-file dir.pw
if ((EUID != 0)); then
    printf 'x\n' >noread.pw
    chmod 000 noread.pw
    refused "unreadable password file (mode 000)" "password file" issue --dir "$D" --user bob --out out/new.p12 \
        --password-file noread.pw
fi
refused "unwritable --out (no such directory)" "" issue --dir "$D" --user bob --out /nonexistent/dir/new.p12 \
    --password-file pw
refused "unwritable --out (parent is a file)" "" issue --dir "$D" --user bob --out notadir/new.p12 --password-file pw
refused "existing --out" "exists" issue --dir "$D" --user bob --out out/exists.p12 --password-file pw
refused "reissue to an unwritable --out" "" reissue --dir "$D" --user alice --out /nonexistent/x.p12 --password-file pw
refused "invalid user (leading dot)" "user" issue --dir "$D" --user .alice "${P12[@]}"
refused "invalid user (leading dash)" "user" issue --dir "$D" --user -alice "${P12[@]}"
refused "invalid user (space)" "user" issue --dir "$D" --user "al ice" "${P12[@]}"
refused "invalid user (comma)" "user" issue --dir "$D" --user "a,CN=root" "${P12[@]}"
refused "invalid user (65 chars)" "user" issue --dir "$D" --user "$long" "${P12[@]}"
refused "invalid user (empty)" "user" issue --dir "$D" --user "" "${P12[@]}"
refused "invalid tenant (upper case)" "tenant" issue --dir "$D" --user bob --tenant Acme "${P12[@]}"
refused "invalid tenant (dot)" "tenant" issue --dir "$D" --user bob --tenant a.b "${P12[@]}"
refused "second valid cert" "reissue" issue --dir "$D" --user alice "${P12[@]}"
refused "days 0" "days" issue --dir "$D" --user bob --days 0 "${P12[@]}"
refused "days not a number" "days" issue --dir "$D" --user bob --days 12x "${P12[@]}"
refused "days too large" "days" issue --dir "$D" --user bob --days 99999999 "${P12[@]}"
refused "unknown reason" "reason" revoke --dir "$D" --user alice --reason whatever
refused "server-cert bad host" "host" server-cert --dir "$D" --host "bad host" --out out/srv
refused "server-cert SAN injection" "host" server-cert --dir "$D" --host "a.b,DNS:evil.com" --out out/srv
refused "server-cert unwritable out" "" server-cert --dir "$D" --host gw.example.com --out /nonexistent/srv
mkdir out2
printf 'x' >out2/srv.crt
refused "server-cert existing crt" "exists" server-cert --dir "$D" --host gw.example.com --out out2/srv
sk_assert_eq "$(ls -A out2)" "srv.crt" "server-cert with an existing crt leaves only it"
sk_assert_eq "$(cat out2/srv.crt)" "x" "existing crt untouched"
refused "crl bad days" "days" crl --dir "$D" --days 0
refused "init on an existing CA" "already holds a CA" init --dir "$D" --name Again

# read-only commands leave no trace either
ca list --dir "$D" >/dev/null
ca list --dir "$D" --json >/dev/null
check_unchanged "list"

# usage errors: exit 2, usage text, nothing changed
usage_case() {
    local what=$1 rc=0
    shift
    ca "$@" >"$SK_TMP/usage.out" 2>"$SK_TMP/usage.err" </dev/null || rc=$?
    sk_assert_eq "$rc" 2 "$what: exit status"
    sk_assert_file_contains "$SK_TMP/usage.err" "usage: sekisho-ca" "$what: usage text"
    [[ ! -s $SK_TMP/usage.out ]] || sk_fail "$what: wrote to stdout"
    check_unchanged "$what"
}
usage_case "no command"
usage_case "unknown command" frobnicate --dir "$D"
usage_case "missing --dir" issue --user bob "${P12[@]}"
usage_case "unknown option" list --dir "$D" --colour
usage_case "missing --user" issue --dir "$D" "${P12[@]}"
usage_case "missing --out" issue --dir "$D" --user bob --password-file pw
usage_case "missing --password-file" issue --dir "$D" --user bob --out out/new.p12
usage_case "--legacy with --csr" issue --dir "$D" --user bob --csr good.csr --out out/new.crt --legacy
usage_case "--password-file with --csr" issue --dir "$D" --user bob --csr good.csr --out out/new.crt --password-file pw
usage_case "serial and user" revoke --dir "$D" --serial 01 --user alice
usage_case "neither serial nor user" revoke --dir "$D"
usage_case "stray argument" list --dir "$D" extra
usage_case "option twice" list --dir "$D" --dir "$D"
usage_case "option without value" issue --dir "$D" --user
usage_case "init without name" init --dir "$D"
usage_case "option of another command" crl --dir "$D" --json

# not a CA directory: refused, and nothing created in it
mkdir empty
ca_refused "issue into a non-CA directory" ca issue --dir empty --user bob --out out/new.p12 --password-file pw
[[ -z $(ls -A empty) ]] || sk_fail "non-CA directory was modified: $(ls -A empty)"
ca_refused "issue into a missing directory" ca issue --dir nosuch --user bob --out out/new.p12 --password-file pw
[[ ! -e nosuch ]] || sk_fail "missing directory was created"

# a corrupted index stops every command, and they leave it as they found it
cp "$D/index" index.good
sed -i 's/^crl-days 7$/crl-days 8/' "$D/index"
cmp -s "$D/index" index.good && sk_fail "test setup: index not modified"
before=$(ca_snapshot "$D")
refused "corrupted index: issue" "corrupted" issue --dir "$D" --user bob "${P12[@]}"
refused "corrupted index: revoke" "corrupted" revoke --dir "$D" --user alice
refused "corrupted index: crl" "corrupted" crl --dir "$D"
refused "corrupted index: list" "corrupted" list --dir "$D"
head -c 200 index.good >"$D/index"
before=$(ca_snapshot "$D")
refused "truncated index" "corrupted" crl --dir "$D"
cp index.good "$D/index"
before=$(ca_snapshot "$D")

# a world-readable CA key is refused before anything happens
chmod 604 "$D/ca.key"
before=$(ca_snapshot "$D")
refused "world-readable key" "ca.key" issue --dir "$D" --user bob "${P12[@]}"
chmod 600 "$D/ca.key"

# and after all that, the CA still works
ca issue --dir "$D" --user bob --out out/new.p12 --password-file pw >/dev/null
ca_p12_leaf out/new.p12 pw bob.crt
sk_assert_eq "$(ca_verify bob.crt "$D")" OK "CA works after the refusals"
sk_pass
