#!/usr/bin/env bash
# Install what Sekisho needs from Debian's archive (Debian 12). Idempotent: only
# missing packages are installed, and `apt-get update` runs only when something is.
#   bash scripts/deps.sh build   compilers and libraries (and what the demo and the man pages use)
#   bash scripts/deps.sh test    + the real peers the tests drive (curl, openssl, oathtool, postgresql,
#                                pk12util, faketime, nginx, clang for ASan/fuzzing, chromium,
#                                systemd-sysusers/-tmpfiles for the package test)
# As root it calls apt-get directly (a fresh Debian root shell has no sudo); as a
# normal user it escalates with sudo for apt-get only, and says so when sudo is missing.
set -euo pipefail
what=${1:-build}
build_pkgs=(cmake gcc make pkg-config libssl-dev openssl libmicrohttpd-dev liblmdb-dev libpq-dev
  libargon2-dev liboath-dev libinih-dev libjansson-dev libqrencode-dev libhttp-parser-dev
  libcmocka-dev curl ca-certificates iproute2 scdoc dpkg-dev libseccomp-dev)
test_pkgs=(oathtool libnss3-tools faketime nginx-light wrk clang libclang-rt-14-dev jq
  python3 python3-cryptography procps lmdb-utils chromium fonts-noto-cjk nodejs tzdata systemd
  prometheus libseccomp-dev postgresql)
case $what in
build) pkgs=("${build_pkgs[@]}") ;;
test) pkgs=("${build_pkgs[@]}" "${test_pkgs[@]}") ;;
*) echo "usage: bash scripts/deps.sh build|test" >&2; exit 2 ;;
esac

# apt-get ARGS...: as root directly, otherwise through sudo (and only apt-get).
apt_get() {
  if [ "$(id -u)" -eq 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo DEBIAN_FRONTEND=noninteractive apt-get "$@"
  else
    echo "deps: not root and sudo is not installed; as root run: apt-get install ${missing[*]}" >&2
    exit 1
  fi
}

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# npm: bundled with the NodeSource nodejs some images carry; Debian ships it apart.
if [ "$what" = test ] && ! command -v npm >/dev/null 2>&1; then
  missing+=(npm)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  apt_get update -qq
  apt_get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
