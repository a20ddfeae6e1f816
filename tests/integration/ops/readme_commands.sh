#!/usr/bin/env bash
# The README's two commands are the ones that work everywhere (no sudo in front:
# a fresh Debian root shell has none; the scripts escalate by themselves), CI runs
# exactly the test command, and the documented steps cover what operators need.
source "$(dirname "$0")/../lib.sh"
sk_setup
readme=$SK_SRC/README.md

# first line of the first ```sh block after a heading
block_after() {
    awk -v h="$1" '$0 == h { f = 1; next } f && /^```sh/ { b = 1; next } b { print; exit }' "$readme"
}
sk_assert_eq "$(block_after '## Try it (fresh Debian 12)')" "bash scripts/demo.sh" "README demo command"
sk_assert_eq "$(block_after '## Run the tests (fresh Debian 12)')" "bash scripts/test.sh" "README test command"
ci=$(grep -v '^#' "$SK_SRC/.ci/run" | grep -v '^$')
sk_assert_eq "$ci" 'exec bash "$(dirname "$0")/../scripts/test.sh"' ".ci/run runs exactly the README test command"
# The scripts escalate only through deps.sh (apt-get), never as a whole.
! grep -n 'sudo' "$SK_SRC/scripts/demo.sh" "$SK_SRC/scripts/test.sh" | grep -v '^[^:]*:[0-9]*: *#' >"$SK_TMP/sudo" ||
    sk_fail "sudo outside deps.sh: $(cat "$SK_TMP/sudo")"
for f in demo.sh test.sh deps.sh; do bash -n "$SK_SRC/scripts/$f" || sk_fail "scripts/$f: syntax"; done

# Reaching the demo from another machine is documented.
sk_assert_file_contains "$readme" "ssh -L 8443:127.0.0.1:8443" "README: ssh -L"
sk_assert_file_contains "$readme" "SK_DEMO_HOST" "README: demo host name setting"
# Production: the key the gateway reads is readable by the sekisho user.
sk_assert_file_contains "$readme" "chgrp sekisho /etc/sekisho/server.key" "README: server.key group"
sk_assert_file_contains "$readme" "runuser -u sekisho -- sekisho -c /etc/sekisho/sekisho.conf -t" \
    "README: -t as the service user"
c=$SK_SRC/certs-example/README.md
sk_assert_file_contains "$c" 'pk12util -d sql:$HOME/.pki/nssdb -i' "Chrome on Linux: NSS import"
sk_assert_file_contains "$c" "Privacy & Security" "Firefox menu path"
sk_assert_file_contains "$c" "View Certificates" "Firefox certificate manager"
sk_assert_file_contains "$c" "Current User" "Windows user store"
sk_assert_file_contains "$c" "certmgr.msc" "Windows check"
sk_assert_file_contains "$c" "Keychain Access" "macOS"
sk_assert_file_contains "$c" "security import" "macOS command line"
sk_pass
