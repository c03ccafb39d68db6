#!/usr/bin/env bash
# bench/clickhouse/run.sh — what fdod --store clickhouse:// costs one node
# (docs/clickhouse.md): bench/ingest/run.sh twice with the same arguments
# on this host, without and with every merge copied into a private
# ClickHouse server (tests/cluster/chtest.py: loopback ports, a temporary
# data directory), then the two runs side by side: acknowledged Stack
# messages/s, fdod CPU per batch, and the ClickHouse server's CPU. Prints
# figures and ratios; asserts nothing.
#
#   bench/clickhouse/run.sh [bench/ingest/run.sh arguments]
#   default arguments: --seconds 10 --pushers 2 --otlp 0
#
# bench/clickhouse/pull_cpu.py: a folded pull's CPU from ClickHouse against
# one from LMDB.
set -euo pipefail
cd "$(dirname "$0")/../.."
[[ $# -gt 0 ]] || set -- --seconds 10 --pushers 2 --otlp 0
exec /usr/bin/python3 bench/clickhouse/compare.py "$@"
