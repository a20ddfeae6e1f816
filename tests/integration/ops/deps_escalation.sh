#!/usr/bin/env bash
# scripts/deps.sh (which demo.sh and test.sh call): as root it runs apt-get itself
# (a fresh Debian root shell has no sudo); as a normal user it goes through sudo,
# for apt-get only; a normal user without sudo gets one clear line. apt-get, sudo
# and dpkg-query are stand-ins that record how they were called (nothing installed).
source "$(dirname "$0")/../lib.sh"
sk_setup
chmod 0755 "$SK_TMP"
fake=$SK_TMP/fake
mkdir -p "$fake/nosudo" "$fake/withsudo" "$SK_TMP/rec"
chmod 0777 "$SK_TMP/rec"
chmod 0755 "$fake" "$fake/nosudo" "$fake/withsudo"
for d in nosudo withsudo; do
    # Only the tools deps.sh needs, so a real sudo elsewhere on PATH cannot interfere.
    for t in id grep env cat; do ln -s "$(command -v $t)" "$fake/$d/$t"; done
    printf '#!/bin/bash\nexit 1\n' >"$fake/$d/dpkg-query"   # every package missing
    printf '#!/bin/bash\necho "apt-get uid=$(id -u) $*" >>%s/rec/log\n' "$SK_TMP" >"$fake/$d/apt-get"
done
printf '#!/bin/bash\necho "sudo uid=$(id -u) $*" >>%s/rec/log\nexec env "$@"\n' "$SK_TMP" >"$fake/withsudo/sudo"
chmod 0755 "$fake"/*/*
bash_bin=$(command -v bash)

run() { # AS(self|nobody) PATHDIR -> rc in $rc, stderr in $SK_TMP/err
    local -a pre=()
    [[ $1 == nobody ]] && pre=("$(command -v setpriv)" --reuid=nobody --regid=nogroup --clear-groups)
    : >"$SK_TMP/rec/log"
    chmod 0666 "$SK_TMP/rec/log"
    rc=0
    env -i PATH="$2" "${pre[@]}" "$bash_bin" "$SK_SRC/scripts/deps.sh" build \
        >"$SK_TMP/out" 2>"$SK_TMP/err" </dev/null || rc=$?
}

if [[ $(id -u) == 0 ]]; then
    run self "$fake/nosudo"
    sk_assert_eq "$rc" 0 "root without sudo installs"
    sk_assert_file_contains "$SK_TMP/rec/log" "apt-get uid=0 update" "root runs apt-get update itself"
    sk_assert_file_contains "$SK_TMP/rec/log" "apt-get uid=0 install -y" "root runs apt-get install itself"
    sk_assert_file_contains "$SK_TMP/rec/log" "libssl-dev" "the missing packages are installed"
    sk_assert_file_not_contains "$SK_TMP/rec/log" "sudo" "root never calls sudo"
    command -v setpriv >/dev/null || sk_fail "setpriv (util-linux) missing"
    as=nobody
else
    as=self
fi
run "$as" "$fake/withsudo"
sk_assert_eq "$rc" 0 "a normal user with sudo installs"
sk_assert_file_contains "$SK_TMP/rec/log" "sudo uid=$([[ $as == nobody ]] && echo 65534 || id -u) DEBIAN_FRONTEND=noninteractive apt-get update" \
    "a normal user escalates apt-get update through sudo"
sk_assert_eq "$(grep -c '^sudo' "$SK_TMP/rec/log")" 2 "sudo only for the two apt-get calls"
sk_assert_eq "$(grep -vc 'apt-get' "$SK_TMP/rec/log" || true)" 0 "sudo runs nothing but apt-get"

run "$as" "$fake/nosudo"
sk_assert_eq "$rc" 1 "a normal user without sudo is refused"
sk_assert_file_contains "$SK_TMP/err" "sudo is not installed" "the refusal says why"
sk_assert_eq "$(wc -l <"$SK_TMP/err")" 1 "one line"
[[ ! -s $SK_TMP/rec/log ]] || sk_fail "apt-get ran without privileges: $(cat "$SK_TMP/rec/log")"
sk_pass
