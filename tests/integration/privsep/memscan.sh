#!/usr/bin/env bash
# Privilege separation (issue 9): after logins (with and without TOTP), TOTP
# enrolment on the page and a password change, the memory of the network process
# holds no password hash, no raw TOTP secret, no TOTP key and no audit private key,
# and it has no descriptor on the store, the key files or the audit files. The same
# scan of authd finds the hashes (so the scan is shown to work), and the monitor
# holds nothing either. SK_NET_PROCESSES=N ([listen] processes, memscan_procs.sh):
# every one of the N network processes is scanned (and their shared memory with them).
# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# shellcheck source=../lifecycle/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lifecycle/common.sh"
# shellcheck source=../policy/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../policy/common.sh"
sk_setup
command -v oathtool >/dev/null || sk_fail "oathtool not installed"
[[ $(id -u) == 0 ]] || sk_fail "this test reads /proc/PID/mem and must run as root"
here=$(dirname "${BASH_SOURCE[0]}")

sk_make_ca alice:acme bob:acme
sk_start_upstream
procs=${SK_NET_PROCESSES:-1}
if ((procs > 1)); then
    sk_write_config <<<"$(printf '[listen]\nprocesses = %d\n' "$procs")"
else
    sk_write_config </dev/null
fi
pa=$(sk_password) pb=$(sk_password)
pc_add_user alice acme admin "$pa"
pc_add_user bob acme general "$pb"
pc_ctl user totp enable alice --tenant acme
secret_a=$(sed -nE 's/^otpauth:.*[?&]secret=([A-Z2-7]+).*/\1/p' "$SK_TMP/ctl.out" | head -n 1)
[[ -n $secret_a ]] || sk_fail "no TOTP secret from sekishoctl"
sk_start_gateway
net=$(sk_child_pid net) authd=$(sk_child_pid authd)
for ((i = 0; i < 100; i++)); do
    nets=$(pgrep -P "$SK_GW_PID" -x sekisho-net | tr '\n' ' ' || true)
    (($(wc -w <<<"$nets") == procs)) && break
    sleep 0.1
done
sk_assert_eq "$(wc -w <<<"$nets")" "$procs" "network processes"
sk_log "monitor $SK_GW_PID, net $nets, authd $authd"

# Traffic that makes every secret pass through authd.
code=$(pc_login_attempt alice alice "$pa" --data-urlencode "totp=$(pc_totp "$secret_a")")
sk_assert_eq "$code" 303 "TOTP login of alice"
bc=$(pc_login bob "$pb")
sk_assert_eq "$(sk_curl -u bob -C "$bc" /.sekisho/totp -H 'Accept: text/html')" 200 "bob's enrolment page"
secret_b=$(perl -ne 'print "$1\n" if /<code>([A-Z2-7]{16,})<\/code>/' "$SK_TMP/last.body" | head -n 1)
[[ -n $secret_b ]] || sk_fail "no enrolment key on bob's page"
csrf=$(sk_csrf_from_last)
sk_assert_eq "$(sk_curl -u bob -C "$bc" /.sekisho/totp -H 'Accept: text/html' --data-urlencode "csrf=$csrf" \
    --data-urlencode "totp=$(pc_totp "$secret_b")")" 200 "bob confirms TOTP"
sk_assert_contains "$(cat "$SK_TMP/last.body")" "Two-step verification is on" "confirmation page"
newpw=$(sk_password)
sk_assert_eq "$(sk_curl -u bob -C "$bc" /.sekisho/password -H 'Accept: text/html')" 200 "password page"
csrf=$(sk_csrf_from_last)
sk_curl -u bob -C "$bc" /.sekisho/password -H 'Accept: text/html' --data-urlencode "csrf=$csrf" \
    --data-urlencode "password=$pb" --data-urlencode "new=$newpw" --data-urlencode "confirm=$newpw" >/dev/null
sk_assert_contains "$(cat "$SK_TMP/last.body")" "changed" "bob's password change"
sk_assert_eq "$(sk_curl -u bob -C "$bc" /echo)" 200 "bob's session after the change"

# The needles: every argon2 hash in the store, both raw TOTP secrets, the TOTP key
# and the audit private key.
state=$SK_TMP/state
needles=$SK_TMP/needles
: >"$needles"
n=0
while read -r h; do
    n=$((n + 1))
    printf 'argon2_hash_%d %s\n' "$n" "$(printf '%s' "$h" | od -An -tx1 | tr -d ' \n')" >>"$needles"
done < <(sk_store_raw "$SK_TMP/store.raw" "$state" &&
    grep -aoE '\$argon2id\$v=19\$m=[0-9]+,t=[0-9]+,p=[0-9]+\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}' "$SK_TMP/store.raw" | sort -u)
((n >= 2)) || sk_fail "expected at least two password hashes in the store, found $n"
b32hex() { python3 -c 'import base64,sys; s=sys.argv[1]; print(base64.b32decode(s + "=" * (-len(s) % 8)).hex())' "$1"; }
printf 'totp_secret_alice %s\n' "$(b32hex "$secret_a")" >>"$needles"
printf 'totp_secret_bob %s\n' "$(b32hex "$secret_b")" >>"$needles"
[[ -s $state/totp.key ]] || sk_fail "no TOTP key file in $state"
printf 'totp_key %s\n' "$(od -An -tx1 "$state/totp.key" | tr -d ' \n')" >>"$needles"
akey=$(awk -F' *= *' '$1 == "key" && s == "audit" { print $2 } /^\[/ { s = substr($0, 2, length($0) - 2) }' "$SK_CONF")
[[ -n $akey ]] || akey=audit.key
[[ $akey == /* ]] || akey=$(dirname "$SK_CONF")/$akey
[[ -f $akey ]] || sk_fail "audit key $akey not found"
python3 - "$akey" >>"$needles" <<'PY'
import sys
from cryptography.hazmat.primitives import serialization
k = serialization.load_pem_private_key(open(sys.argv[1], "rb").read(), None)
raw = k.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
print("audit_private_key", raw.hex())
PY
sk_log "needles: $(cut -d' ' -f1 "$needles" | tr '\n' ' ')"

scan() { python3 "$here/memscan.py" "$1" "$needles" || sk_fail "memory of pid $1 could not be read"; }
for net in $nets; do
    in_net=$(scan "$net")
    sk_assert_eq "$in_net" "" "secrets in the memory of network process $net"
done
in_mon=$(scan "$SK_GW_PID")
sk_assert_eq "$in_mon" "" "secrets in the monitor's memory"
in_authd=$(scan "$authd")
if [[ $(sk_store_backend) == lmdb ]]; then
    sk_assert_contains "$in_authd" "argon2_hash_" "authd's memory (the scan finds the hashes where they are)"
else # authd reads a hash from PostgreSQL per login only (no mapped database): the key it holds
    sk_assert_contains "$in_authd" "totp_key" "authd's memory (the scan finds the TOTP key where it is)"
fi
sk_log "found in authd: $(tr '\n' ' ' <<<"$in_authd")"

# Descriptors of the network process: nothing under the state or audit directory,
# no key file.
adir=$(awk -F' *= *' '$1 == "dir" && s == "audit" { print $2 } /^\[/ { s = substr($0, 2, length($0) - 2) }' "$SK_CONF")
[[ -n $adir ]] || adir=$state/audit
[[ $adir == /* ]] || adir=$(dirname "$SK_CONF")/$adir
bad=""
for fd in $(for net in $nets; do echo /proc/"$net"/fd/*; done); do
    t=$(readlink "$fd" || true)
    case $t in
    "$state"/* | "$adir"/* | "$akey"*) bad+="$t " ;;
    esac
done
sk_assert_eq "$bad" "" "descriptors of the network processes on the store, key or audit files"
sk_stop_gateway
sk_pass
