#!/usr/bin/env bash
# bench/run.sh — the `make bench` entry: run every bench/<name>/run.sh in turn
# but fdo (the FDO benchmark of real programs takes half an hour to hours:
# `make bench-fdo`, or name it here).
#   bench/run.sh [NAME...]     only the named benchmarks
set -uo pipefail
cd "$(dirname "$0")/.."
names=("$@")
if [[ ${#names[@]} -eq 0 ]]; then
  for d in bench/*/run.sh; do
    n=$(basename "$(dirname "$d")")
    [[ $n == fdo ]] || names+=("$n")
  done
fi
rc=0
for n in "${names[@]}"; do
  echo "=== bench/$n"
  bash "bench/$n/run.sh" || { echo "bench/$n failed" >&2; rc=1; }
done
exit $rc
