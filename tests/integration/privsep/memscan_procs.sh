#!/usr/bin/env bash
# memscan.sh with [listen] processes = 2: no network process holds a secret.
SK_NET_PROCESSES=2 exec bash "$(dirname "${BASH_SOURCE[0]}")/memscan.sh"
