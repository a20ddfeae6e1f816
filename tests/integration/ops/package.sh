#!/usr/bin/env bash
# The Debian package (issue 11, item 2): cpack builds it from this build; dpkg-deb
# shows it installs to /usr (binaries, units naming /usr/bin, sysusers.d,
# tmpfiles.d, man pages made by scdoc, bash completion, the sample) and not the
# demo upstream. Extracted into a throwaway root, systemd-sysusers and
# systemd-tmpfiles create the sekisho user and its directories there, the
# README's production steps run with the installed binaries, and the installed
# `sekisho -t` passes on the installed sample as that user (and fails, naming the
# file, while server.key is still root's).
source "$(dirname "$0")/../lib.sh"
sk_setup
# A build with the test-only hooks refuses to be installed or packaged (by design);
# the release build of scripts/test.sh runs this test.
if "$SK_BIN/sekisho" -V | grep -q 'TEST BUILD'; then
    sk_log "SKIP: this build has the test hooks and cannot be installed; the release build runs this test"
    sk_pass
    exit 0
fi
build=$(cd "$SK_BIN/.." && pwd)
for t in cpack dpkg-deb; do command -v $t >/dev/null || sk_fail "$t not installed"; done
chmod 0755 "$SK_TMP"

# cpack first brings the build up to date: anything it relinks must stay usable by
# the other tests (some run the binaries as nobody), whatever the test's umask.
(umask 022 && cpack --config "$build/CPackConfig.cmake" -G DEB -B "$SK_TMP/pkg") >"$SK_TMP/cpack.log" 2>&1 ||
    sk_fail "cpack failed: $(tail -20 "$SK_TMP/cpack.log")"
deb=$(ls "$SK_TMP"/pkg/sekisho_*.deb)
dpkg-deb -c "$deb" | awk '{ print $6 }' | sed 's|^\./|/|' >"$SK_TMP/contents"
for f in /usr/bin/sekisho /usr/bin/sekisho-ca /usr/bin/sekishoctl \
    /usr/lib/systemd/system/sekisho.service /usr/lib/systemd/system/sekisho-crl.service \
    /usr/lib/systemd/system/sekisho-crl.timer /usr/lib/systemd/system/sekisho-backup.timer \
    /usr/lib/systemd/system/sekisho-backup.service /usr/lib/sysusers.d/sekisho.conf /usr/lib/tmpfiles.d/sekisho.conf \
    /usr/lib/systemd/system/sekisho-mail.service /usr/lib/systemd/system/sekisho-mail.path \
    /usr/lib/systemd/system/sekisho-mail.timer /usr/libexec/sekisho/sekisho-mail-drain \
    /usr/share/man/man8/sekisho.8 /usr/share/man/man8/sekishoctl.8 /usr/share/man/man8/sekisho-ca.8 \
    /usr/share/man/man5/sekisho.conf.5 /usr/share/bash-completion/completions/sekishoctl \
    /usr/share/bash-completion/completions/sekisho-ca /usr/share/sekisho/sekisho.conf.sample \
    /usr/share/doc/sekisho/README.md; do
    grep -qx "$f" "$SK_TMP/contents" || sk_fail "package lacks $f"
done
grep -E 'demo|bench|^/usr/local|^/usr/etc' "$SK_TMP/contents" >"$SK_TMP/unwanted" &&
    sk_fail "package holds what it must not: $(cat "$SK_TMP/unwanted")"
dpkg-deb -I "$deb" >"$SK_TMP/info"
sk_assert_file_contains "$SK_TMP/info" "Package: sekisho" "package name"
sk_assert_file_contains "$SK_TMP/info" "libssl3" "shared library dependencies"
sk_assert_file_contains "$SK_TMP/info" "postinst" "postinst creates the user and directories"

root=$SK_TMP/root
dpkg-deb -x "$deb" "$root"
grep -h '^Exec' "$root"/usr/lib/systemd/system/*.service >"$SK_TMP/exec"
sk_assert_file_not_contains "$SK_TMP/exec" "/usr/local" "units name the installed binaries"
sk_assert_file_contains "$SK_TMP/exec" "ExecStart=/usr/bin/sekisho -c /etc/sekisho/sekisho.conf" "unit ExecStart"
if command -v systemd-analyze >/dev/null; then
    # Unknown directives or bad syntax would show here (missing binaries are expected).
    systemd-analyze verify --root="$root" "$root/usr/lib/systemd/system/sekisho.service" >"$SK_TMP/verify" 2>&1 || true
    grep -iE 'unknown|invalid|failed to parse' "$SK_TMP/verify" | grep -v 'not executable\|No such file' >"$SK_TMP/verify.bad" &&
        sk_fail "systemd-analyze: $(cat "$SK_TMP/verify.bad")"
fi
head -c 400 "$root/usr/share/man/man8/sekishoctl.8" | grep -q '^\.TH "sekishoctl" "8"' || sk_fail "sekishoctl.8 is not roff from scdoc"
bash -n "$root/usr/share/bash-completion/completions/sekishoctl" || sk_fail "completion syntax"

# Every binary: --version and per-command --help (exit 0, no configuration needed).
bin=$root/usr/bin
for b in sekisho sekisho-ca sekishoctl; do
    v=$("$bin/$b" --version) || sk_fail "$b --version"
    sk_assert_match "$v" "^$b [0-9]+\.[0-9]+\.[0-9]+$" "$b --version"
done
for c in "sekishoctl user add --help" "sekishoctl audit show --help" "sekishoctl session revoke --help" \
    "sekisho-ca issue --help" "sekisho-ca revoke --help" "sekisho --help"; do
    # shellcheck disable=SC2086
    out=$("$bin/"$c) || sk_fail "$c: exit status"
    sk_assert_contains "$out" "usage" "$c"
done
sk_assert_contains "$("$bin/sekishoctl" audit show --help)" "--since" "audit show --help names its options"

if [[ $(id -u) != 0 ]]; then
    echo "SKIP (not root): creating the sekisho user and running -t as it need root"
    sk_pass
    exit 0
fi

# The sekisho user and directories, by systemd's own tools, in the throwaway root.
mkdir -p "$root/etc"
chmod 0755 "$root" "$root/etc"
: >"$root/etc/passwd"
: >"$root/etc/group"
systemd-sysusers --root="$root" >"$SK_TMP/sysusers.log" 2>&1 || sk_fail "systemd-sysusers: $(cat "$SK_TMP/sysusers.log")"
uid=$(awk -F: '$1 == "sekisho" { print $3 }' "$root/etc/passwd")
gid=$(awk -F: '$1 == "sekisho" { print $4 }' "$root/etc/passwd")
[[ -n $uid && -n $gid ]] || sk_fail "sysusers.d did not create the sekisho user: $(cat "$root/etc/passwd")"
sk_assert_eq "$(awk -F: '$1 == "sekisho" { print $6 " " $7 }' "$root/etc/passwd")" "/var/lib/sekisho /usr/sbin/nologin" \
    "sekisho user home and shell"
systemd-tmpfiles --create --root="$root" >"$SK_TMP/tmpfiles.log" 2>&1 || sk_fail "systemd-tmpfiles: $(cat "$SK_TMP/tmpfiles.log")"
sk_assert_eq "$(stat -c '%a %u' "$root/var/lib/sekisho")" "700 $uid" "state directory mode and owner"
sk_assert_eq "$(stat -c "%a %u" "$root/var/backups/sekisho")" "700 $uid" "backup directory mode and owner"
sk_assert_eq "$(grep -h "^ExecStart" "$root/usr/lib/systemd/system/sekisho-backup.service")" \
    "ExecStart=/usr/bin/sekishoctl -c /etc/sekisho/sekisho.conf backup --into /var/backups/sekisho --keep 7" "backup unit"

# The README's production steps, with the installed binaries, paths under the root.
etc=$root/etc/sekisho
"$bin/sekisho-ca" init --dir "$etc/ca" --name "Package Test CA" >/dev/null || sk_fail "installed sekisho-ca init"
"$bin/sekisho-ca" server-cert --dir "$etc/ca" --host portal.example.com --out "$etc/server" >/dev/null ||
    sk_fail "installed sekisho-ca server-cert"
sed -e "s|/etc/sekisho|$etc|g" -e "s|/var/lib/sekisho|$root/var/lib/sekisho|g" \
    -e "s|^address = .*|address = 127.0.0.1:$(sk_free_port)|" \
    "$root/usr/share/sekisho/sekisho.conf.sample" >"$etc/sekisho.conf"
chmod 0644 "$etc/sekisho.conf"
as_sekisho() { setpriv --reuid="$uid" --regid="$gid" --clear-groups "$@"; }
rc=0; as_sekisho "$bin/sekisho" -c "$etc/sekisho.conf" -t >"$SK_TMP/t.out" 2>&1 || rc=$?
sk_assert_eq "$rc" 1 "server.key still root's"
sk_assert_contains "$(cat "$SK_TMP/t.out")" "[listen] key $etc/server.key: not readable by user" "names the key"
chgrp "$gid" "$etc/server.key" && chmod 0640 "$etc/server.key"
chgrp "$gid" "$etc/ca" && chmod 0710 "$etc/ca"
rc=0; as_sekisho "$bin/sekisho" -c "$etc/sekisho.conf" -t >"$SK_TMP/t.out" 2>&1 || rc=$?
sk_assert_eq "$rc" 0 "installed sekisho -t on the installed sample as the sekisho user: $(cat "$SK_TMP/t.out")"
sk_assert_contains "$(cat "$SK_TMP/t.out")" "is valid" "sekisho -t verdict"
sk_pass
