#!/usr/bin/env bash
# bench/stale/run.sh — what a pull with for_build_id= costs fdod on a binary
# of real size (see bench.py). Builds fdod's sources a second time at -O1
# into build/bench-stale as the "next release" (every function's code
# differs), unless it is there already. Arguments go to bench.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
nice -n 19 make -s -j2 build/fdod
# (-O1 sets off warnings -O2 does not: not -Werror for this copy)
nice -n 19 make -s -j2 BUILD=build/bench-stale OPT=-O1 WARN=-w build/bench-stale/fdod
exec /usr/bin/python3 bench/stale/bench.py "$@"
