#!/usr/bin/env bash
# A real browser is the user: headless Debian Chromium, driven by playwright-core
# (pinned in package.json / package-lock.json, installed with `npm ci` into the build
# directory), logs in through the real gateway: redirect to the login page with the
# return path kept, Japanese page for Accept-Language ja, wrong password, logout,
# TOTP enrolment from the QR page and login with a code, and the same login with
# JavaScript disabled. The scenarios are in browser_login.js; this script builds the
# world with ../integration/lib.sh and keeps the screenshots in $SK_TMP.
#
# Exit 77 (ctest: skipped) only when chromium, node or npm is not installed at all;
# scripts/deps.sh test installs them, so the README test command runs this test.
# shellcheck source-path=SCRIPTDIR source=../integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh"

here=$SK_SRC/tests/browser
SK_CHROMIUM=${SK_CHROMIUM:-/usr/bin/chromium}
for tool in "$SK_CHROMIUM" node npm; do
    if ! command -v "$tool" >/dev/null; then
        echo "SKIP: $SK_TEST_NAME: $tool is not installed (scripts/deps.sh test installs chromium, nodejs and npm)"
        exit 77
    fi
done

sk_setup
command -v oathtool >/dev/null || sk_fail "required tool 'oathtool' not installed"

# playwright-core, exactly as locked, in the build directory (not the source tree).
# Reinstalled only when the lock file changed.
node_dir=${SK_BROWSER_NODE_DIR:-$(dirname "$SK_BIN")/browser-node}
mkdir -p "$node_dir"
if ! cmp -s "$here/package-lock.json" "$node_dir/package-lock.json" ||
    [[ ! -f $node_dir/node_modules/playwright-core/package.json ]]; then
    rm -f "$node_dir/package-lock.json"
    cp "$here/package.json" "$node_dir/package.json"
    # Copied last: a half-finished install never looks complete to the check above.
    cp "$here/package-lock.json" "$node_dir/package-lock.json.new"
    mv "$node_dir/package-lock.json.new" "$node_dir/package-lock.json"
    (cd "$node_dir" && timeout 300 npm ci --no-audit --no-fund --ignore-scripts) \
        >"$SK_TMP/npm-ci.log" 2>&1 ||
        { rm -f "$node_dir/package-lock.json"; sk_fail "npm ci of playwright-core failed: $(tail -n 20 "$SK_TMP/npm-ci.log")"; }
fi

# alice: password scenarios; bob: enrols TOTP (so alice's login stays password-only).
sk_setup_gateway alice:acme bob:acme

sk_log "gateway https://$SK_HOST:$SK_GW_PORT, $("$SK_CHROMIUM" --version 2>/dev/null || echo chromium)"
home=$SK_TMP/home  # Chromium writes nothing into the real HOME
mkdir -p "$home"
export SK_TMP
rc=0
SK_GW_URL="https://$SK_HOST:$SK_GW_PORT" SK_USER=alice SK_TOTP_USER=bob SK_UP_LOG="$SK_UP_LOG" \
    SK_CHROMIUM="$SK_CHROMIUM" NODE_PATH="$node_dir/node_modules" HOME="$home" \
    timeout 120 node "$here/browser_login.js" || rc=$?
sk_assert_eq "$rc" 0 "browser scenarios (node exit status; 124 = timed out)"

# The gateway's own pages never reach the upstream.
sk_assert_file_contains "$SK_UP_LOG" "demo-upstream: GET /" "upstream saw the portal requests"
sk_assert_file_not_contains "$SK_UP_LOG" "/.sekisho/" "gateway pages leaked to the upstream"

for f in login-en.png login-ja.png portal.png totp.png; do
    [[ -s $SK_TMP/$f ]] || sk_fail "screenshot $f missing"
    sk_log "screenshot kept: $SK_TMP/$f"
done
sk_stop_gateway
sk_pass
