#!/usr/bin/env bash
# Fails when C sources use functions this project bans (as curl does with its
# checksrc): unbounded string writers and unchecked converters. Use sk_strlcpy,
# sk_snprintf, sk_buf, sk_parse_u64 and sk_random instead.
set -uo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
banned='sprintf|vsprintf|strcpy|strcat|strncpy|strncat|gets|strtok|atoi|atol|atoll|rand|srand|tmpnam|mktemp'
hits=$(cd "$root" && git ls-files -- '*.c' '*.h' 2>/dev/null | xargs -r grep -nHE "(^|[^_a-zA-Z0-9.>])($banned)\s*\(" |
    grep -vE '^\S+:[0-9]+:\s*(/\*|\*|//)' || true)
if [ -n "$hits" ]; then
    echo "banned functions used:"
    echo "$hits"
    exit 1
fi
echo "banned-function check: $(cd "$root" && git ls-files -- '*.c' '*.h' | wc -l) files clean"
