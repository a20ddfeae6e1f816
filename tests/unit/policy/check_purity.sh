#!/bin/bash
# Fails when libsekisho_policy.a references any external symbol outside the
# allowlist (clang emits bcmp for memcmp()==0): the policy module must stay free of I/O, allocation and clocks.
set -euo pipefail
lib=${1:?usage: check_purity.sh LIBRARY}
defined=$(nm --defined-only "$lib" | awk 'NF >= 3 {print $3}' | sort -u)
undef=$(nm -u "$lib" | awk 'NF >= 2 && $1 == "U" {print $2}' | sort -u)
external=$(comm -23 <(printf '%s\n' "$undef") <(printf '%s\n' "$defined"))
bad=$(printf '%s\n' "$external" | grep -v -E \
  '^$|^(memcmp|bcmp|memcpy|memmove|memset|memchr|strlen|strcmp|strncmp|strnlen)$|^__(memcpy|memmove|memset|strlen)_chk$|^__stack_chk_fail$|^_GLOBAL_OFFSET_TABLE_$|^__(asan|ubsan|sanitizer|sancov)_|^__tsan_|^__msan_' || true)
if [ -n "$bad" ]; then
  echo "policy purity violated; forbidden external symbols:" >&2
  printf '  %s\n' $bad >&2
  exit 1
fi
echo "policy purity ok: external symbols:" $external
