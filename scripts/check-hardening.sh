#!/usr/bin/env bash
# Checks that the built executables carry the hardening the build asks for:
# PIE, full RELRO (BIND_NOW), non-executable stack, stack protector and (outside
# sanitizer builds, where FORTIFY is off by design) _FORTIFY_SOURCE wrappers.
set -uo pipefail
bin=${1:?usage: check-hardening.sh BIN_DIR [sanitize]}
sanitize=${2:-0}
fail=0
for exe in sekisho sekisho-ca sekishoctl; do
    f=$bin/$exe
    [ -x "$f" ] || { echo "$exe: missing"; fail=1; continue; }
    hdr=$(readelf -h "$f"); dyn=$(readelf -d "$f"); seg=$(readelf -lW "$f"); sym=$(readelf -sW --dyn-syms "$f")
    grep -q 'Type:.*DYN' <<<"$hdr" || { echo "$exe: not PIE"; fail=1; }
    grep -q 'GNU_RELRO' <<<"$seg" || { echo "$exe: no RELRO segment"; fail=1; }
    grep -qE 'BIND_NOW|FLAGS.*NOW' <<<"$dyn" || { echo "$exe: not BIND_NOW (partial RELRO)"; fail=1; }
    grep -E 'GNU_STACK' <<<"$seg" | grep -q 'RWE' && { echo "$exe: executable stack"; fail=1; }
    grep -q '__stack_chk_fail' <<<"$sym" || { echo "$exe: no stack protector"; fail=1; }
    if [ "$sanitize" = 0 ]; then
        grep -qE '__[a-z_]+_chk@' <<<"$sym" || { echo "$exe: no _FORTIFY_SOURCE wrappers"; fail=1; }
    fi
    [ $fail = 0 ] && echo "$exe: PIE, full RELRO, NX stack, stack protector$([ "$sanitize" = 0 ] && echo ', FORTIFY')"
done
exit $fail
