#!/usr/bin/env bash
# scripts/fuzz.sh --minutes N [--jobs J] [--only REGEX]
#
# Builds every libFuzzer target (clang, SEKISHO_FUZZ=ON, into build/fuzz) and runs
# each for N minutes, J at a time (default 2: the machines are shared), each with
# its own corpus directory under build/fuzz/corpus/<target> seeded from the
# checked-in tests/fuzz/**/corpus/<target>. Prints one line per target:
#   <target>: <executions> execs, <crashes> crashes[, artifact paths]
# and exits 1 when any target crashed, leaked or timed out. Run it from anywhere.
set -euo pipefail

minutes="" jobs=2 only=""
while (($# > 0)); do
    case $1 in
    --minutes) minutes=${2:-}; shift 2 ;;
    --jobs) jobs=${2:-}; shift 2 ;;
    --only) only=${2:-}; shift 2 ;;
    -h | --help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "fuzz.sh: unknown argument '$1' (usage: fuzz.sh --minutes N [--jobs J] [--only REGEX])" >&2; exit 2 ;;
    esac
done
[[ $minutes =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "fuzz.sh: --minutes N is required (N > 0)" >&2; exit 2; }
[[ $jobs =~ ^[1-9][0-9]*$ ]] || { echo "fuzz.sh: --jobs must be a positive integer" >&2; exit 2; }
command -v clang >/dev/null || { echo "fuzz.sh: clang is not installed" >&2; exit 1; }

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$root/build/fuzz
seconds=$(awk -v m="$minutes" 'BEGIN { s = int(m * 60); print (s < 1 ? 1 : s) }')
mkdir -p "$build"
echo "fuzz.sh: building the fuzz targets in $build"
if ! CC=clang cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang -DSEKISHO_FUZZ=ON \
    -DCMAKE_BUILD_TYPE=Debug >"$build/fuzz.cmake.log" 2>&1 ||
    ! cmake --build "$build" -j"$jobs" >"$build/fuzz.build.log" 2>&1; then
    tail -n 40 "$build/fuzz.cmake.log" "$build/fuzz.build.log" >&2
    echo "fuzz.sh: build failed" >&2
    exit 1
fi

targets=()
for f in "$build"/fuzz/*; do
    [[ -x $f && -f $f ]] || continue
    n=$(basename "$f")
    [[ -z $only || $n =~ $only ]] || continue
    targets+=("$n")
done
((${#targets[@]} > 0)) || { echo "fuzz.sh: no fuzz targets matched" >&2; exit 1; }
echo "fuzz.sh: ${#targets[@]} targets, ${seconds}s each, $jobs at a time"

run_one() { # NAME
    local n=$1 corpus=$build/corpus/$1 art=$build/artifacts/$1 seed
    mkdir -p "$corpus" "$art"
    seed=$(find "$root/tests/fuzz" -type d -path '*corpus*' -name "$n" 2>/dev/null | head -n 1)
    [[ -n $seed ]] && cp -rn "$seed"/. "$corpus"/ 2>/dev/null
    rm -f "$art"/crash-* "$art"/leak-* "$art"/timeout-* "$art"/oom-*
    "$build/fuzz/$n" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$art/" "$corpus" >"$build/fuzz-$n.log" 2>&1 || true
}

pids=()
for n in "${targets[@]}"; do
    run_one "$n" &
    pids+=($!)
    while (($(jobs -rp | wc -l) >= jobs)); do
        wait -n || true
    done
done
wait || true

failed=0
for n in "${targets[@]}"; do
    log=$build/fuzz-$n.log art=$build/artifacts/$n
    execs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' | tail -n 1 || true)
    [[ -n $execs ]] || execs=$(grep -oE '^#[0-9]+' "$log" | tail -n 1 | tr -d '#' || true)
    found=$(find "$art" -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | sort)
    crashes=$(printf '%s' "$found" | grep -c . || true)
    line="$n: ${execs:-0} execs, $crashes crashes"
    if ((crashes > 0)); then
        failed=1
        line+=" ($(printf '%s' "$found" | tr '\n' ' '); log $log)"
    fi
    echo "$line"
done
exit "$failed"
