#!/usr/bin/env bash
# The one test command (README, .ci/run): installs what it needs, builds twice
# (hardened release, then ASan+UBSan with the test-only hooks that let a test make
# a sandboxed process misbehave) and runs every unit and integration test in
# both, the integration tests of the release build once more against PostgreSQL,
# then a short libFuzzer smoke run of every parser. Ends with one line
# "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
jobs=$(nproc)
bash scripts/deps.sh test || { echo "deps: installation failed"; echo "0 passed, 1 failed"; exit 1; }

# Some tests drop to other users (nobody, a sudo user) and run the tree's binaries and
# scripts as them: a clone in a private directory (mktemp -d makes it 0700) must be
# traversable (group too: a tool that switches only its uid keeps group root). Only
# directories we own are touched, and only their x bits for group and others.
if [ "$(id -u)" = 0 ]; then
  d=$root
  while [ "$d" != / ]; do
    if [ -O "$d" ] && [ "$(( 0$(stat -c %a "$d") & 011 ))" != 9 ]; then
      chmod go+x "$d" && echo "test.sh: made $d traversable for the tests that run as other users"
    fi
    d=$(dirname "$d")
  done
fi

passed=0; failed=0
run_suite() { # name, build dir, cmake args...
  local name=$1 dir=$2; shift 2
  echo "=== $name: configure and build"
  if ! cmake -S "$root" -B "$dir" "$@" >"$dir.cmake.log" 2>&1 || ! cmake --build "$dir" -j"$jobs" >"$dir.build.log" 2>&1; then
    tail -n 40 "$dir.cmake.log" "$dir.build.log" 2>/dev/null
    echo "=== $name: BUILD FAILED"
    failed=$((failed + 1))
    return
  fi
  echo "=== $name: tests"
  ctest --test-dir "$dir" --output-on-failure -j"$jobs" --timeout 900 2>&1 | tee "$dir.ctest.log"
  tally "$name" "$dir.ctest.log"
}

tally() { # name, ctest log: its summary into passed/failed
  local line t f
  line=$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$2" | tail -1)
  if [ -z "$line" ]; then
    echo "=== $1: ctest produced no summary"
    failed=$((failed + 1))
    return
  fi
  t=$(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$line")
  f=$(sed -E 's/.*, ([0-9]+) tests? failed.*/\1/' <<<"$line")
  passed=$((passed + t - f)); failed=$((failed + f))
}

# The integration tests once more with every gateway, sekishoctl and sekisho-ca on
# [store] backend = postgresql: one server for the pass (tests/integration/pg.sh
# serve), a database per test (lib.sh). Not the tests that tests/integration/lmdb-only.list
# names (LMDB by nature, or PostgreSQL's own tests), each with its reason there.
run_pg_pass() { # build dir
  local name="release against PostgreSQL" dir=$1 srv=$root/$1.pgsrv start=$SECONDS excl
  [ -x "$dir/bin/sekisho" ] || return 0 # the build failed, already counted
  echo "=== $name: the integration tests with [store] backend = postgresql"
  # every name in the list is a test (a renamed test would run nowhere unseen)
  local n unknown=""
  for n in $(awk '!/^#/ && NF { print $1 }' tests/integration/lmdb-only.list); do
    ctest --test-dir "$dir" -N -R "^$n\$" | grep -q "Total Tests: 1" || unknown+=" $n"
  done
  if [ -n "$unknown" ]; then
    echo "=== $name: tests/integration/lmdb-only.list names no such test:$unknown"
    failed=$((failed + 1))
  fi
  bash tests/integration/pg.sh stop "$srv" >/dev/null 2>&1
  trap "bash tests/integration/pg.sh stop $(printf %q "$srv") >/dev/null 2>&1" EXIT # interrupted: no server left
  if ! bash tests/integration/pg.sh serve "$srv" >"$dir.pgsrv.log" 2>&1; then
    cat "$dir.pgsrv.log"
    echo "=== $name: the PostgreSQL server did not start"
    failed=$((failed + 1))
    return
  fi
  excl=$(awk '!/^#/ && NF { printf "%s%s", (n++ ? "|" : ""), $1 }' tests/integration/lmdb-only.list)
  (set -a && . "$srv/env" && SK_TEST_STORE=postgresql &&
    ctest --test-dir "$dir" -L integration -E "^($excl)\$" --output-on-failure -j"$jobs" --timeout 900) 2>&1 |
    tee "$dir.ctest-pg.log"
  bash tests/integration/pg.sh stop "$srv" || echo "=== $name: the server did not stop cleanly"
  trap - EXIT
  tally "$name" "$dir.ctest-pg.log"
  echo "=== $name: $((SECONDS - start)) s"
}

mkdir -p build
run_suite "release (hardened)" build/release -DCMAKE_BUILD_TYPE=RelWithDebInfo
run_pg_pass build/release
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_suite "ASan+UBSan (with the test hooks)" build/asan -DCMAKE_BUILD_TYPE=Debug -DSEKISHO_SANITIZE=ON -DSEKISHO_TEST_HOOKS=ON

echo "=== fuzz smoke (clang libFuzzer, ${SK_FUZZ_SECONDS:-15}s per target)"
if CC=clang cmake -S "$root" -B build/fuzz -DCMAKE_C_COMPILER=clang -DSEKISHO_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug >build/fuzz.cmake.log 2>&1 &&
   cmake --build build/fuzz -j"$jobs" >build/fuzz.build.log 2>&1; then
  for f in build/fuzz/fuzz/*; do
    [ -x "$f" ] || continue
    n=$(basename "$f")
    corpus=$(find "$root/tests/fuzz" -type d -path "*corpus*" -name "$n" 2>/dev/null | head -1)
    work=$(mktemp -d)
    [ -n "$corpus" ] && cp -r "$corpus"/. "$work"/ 2>/dev/null
    if "$f" -max_total_time="${SK_FUZZ_SECONDS:-15}" -timeout=10 -rss_limit_mb=2048 "$work" >"build/fuzz-$n.log" 2>&1; then
      echo "fuzz $n: ok ($(grep -oE 'Done [0-9]+ runs' "build/fuzz-$n.log" | tail -1))"
      passed=$((passed + 1))
    else
      echo "fuzz $n: FAILED"; tail -n 30 "build/fuzz-$n.log"
      failed=$((failed + 1))
    fi
    rm -rf "$work"
  done
else
  tail -n 30 build/fuzz.cmake.log build/fuzz.build.log
  echo "fuzz: BUILD FAILED"; failed=$((failed + 1))
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
