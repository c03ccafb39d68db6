#!/usr/bin/env bash
# bench/symbolize/run.sh — fdoctl symbolize against llvm-symbolizer-16 and
# eu-addr2line on libc and the largest corpus programs (see bench.py).
# Arguments are passed to bench.py (--libc-addrs N, --eu-max N, --out FILE).
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 bench/symbolize/bench.py "$@"
