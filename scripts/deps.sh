#!/usr/bin/env bash
# Install what Sekisho needs from Debian's archive (Debian 12). Idempotent: only
# missing packages are installed, and `apt-get update` runs only when something is.
#   scripts/deps.sh build   compilers and libraries
#   scripts/deps.sh test    + the real peers the tests drive (curl, openssl, oathtool,
#                           pk12util, faketime, nginx, clang for ASan/fuzzing, chromium)
set -euo pipefail
what=${1:-build}
build_pkgs=(cmake gcc make pkg-config libssl-dev openssl libmicrohttpd-dev liblmdb-dev
  libargon2-dev liboath-dev libinih-dev libjansson-dev libqrencode-dev libhttp-parser-dev
  libcmocka-dev curl ca-certificates)
test_pkgs=(oathtool libnss3-tools faketime nginx-light wrk clang libclang-rt-14-dev jq
  python3 python3-cryptography procps iproute2 lmdb-utils chromium fonts-noto-cjk nodejs)
pkgs=("${build_pkgs[@]}")
[ "$what" = test ] && pkgs+=("${test_pkgs[@]}")
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# npm: bundled with the NodeSource nodejs some images carry; Debian ships it apart.
if [ "$what" = test ] && ! command -v npm >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends npm >/dev/null
fi
