#!/usr/bin/env bash
# bench/agent/run.sh — CPU overhead of fdo-agent against `perf record` at the
# same sampling frequency, on the same CPU-bound workload, in one run:
# builds bench/agent/workload.c (clang-16, frame pointers), starts build/fdod
# on free 127.0.0.1 ports with a fresh data directory, then runs the workload
# ROUNDS times per variant, interleaved: alone, under
# `build/fdo-agent --freq HZ --url <fdod>`, under
# `perf record -F HZ -g -e cpu-clock`, and under the same with cpu-clock:u.
# Prints median wall and CPU (user+sys of the whole process tree) per
# variant, the overheads over the workload alone, and the agent/perf ratio
# against the target. fdod is stopped at exit. Exit 0 unless something broke.
#
# --all measures host-wide mode instead (bench/agent/hostwide.py): one
# workload copy per CPU, interleaved rounds alone, under
# `fdo-agent --all` and under `perf record -a -g` (cpu-clock, and
# cpu-clock:u), the overhead = the copies' extra CPU + the profiler's own
# CPU, with intervals; then `fdo-agent --all` for --rss-minutes (10) on the
# busy host, its RSS read every 5 s (--rss-minutes 0 leaves it out).
#
#   bench/agent/run.sh [--rounds N] [--freq HZ] [--work ROUNDS] [--dir DIR] [--keep]
#                      [--all [--rss-minutes M]]
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

rounds=5 freq=997 work="" keep=0 base="${TMPDIR:-/tmp}" all=0 rss_minutes=10
usage() { sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
	case "$1" in
	--rounds) rounds="$2"; shift 2 ;;
	--freq) freq="$2"; shift 2 ;;
	--work) work="$2"; shift 2 ;;
	--dir) base="$2"; shift 2 ;;
	--keep) keep=1; shift ;;
	--all) all=1; shift ;;
	--rss-minutes) rss_minutes="$2"; shift 2 ;;
	-h|--help) usage; exit 0 ;;
	*) echo "bench/agent: unknown argument $1" >&2; usage >&2; exit 2 ;;
	esac
done

for b in build/fdod build/fdo-agent; do
	if [[ ! -x $b ]]; then
		echo "bench/agent: $b is missing: run make first" >&2
		exit 1
	fi
done
command -v perf >/dev/null || { echo "bench/agent: perf is missing (linux-perf)" >&2; exit 1; }
CC=$(command -v clang-16 || command -v cc)
# a copy per CPU runs ~4 s in host-wide mode; one copy ~2 s otherwise
work=${work:-$((all ? 100000 : 50000))}

tmp=$(mktemp -d "$base/fdod-bench-agent.XXXXXX")
srv_pid=""
cleanup() {
	if [[ -n $srv_pid ]]; then stop_pid "$srv_pid"; fi
	if [[ $keep -eq 1 ]]; then
		echo "bench/agent: kept $tmp"
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT

# --- build the workload --------------------------------------------------------
"$CC" -O2 -g -fno-omit-frame-pointer -o "$tmp/workload" bench/agent/workload.c

# --- start fdod ------------------------------------------------------------------
read -r port hport < <(free_ports)
url="tcp://127.0.0.1:$port"
http="http://127.0.0.1:$hport"
start_fdod bench/agent "$tmp" "$url" "$http"

# --- measure ---------------------------------------------------------------------
if [[ $all -eq 1 ]]; then
	echo "bench/agent: fdod pid $srv_pid on $url; host-wide mode: workload" \
		"$CC -O2, $work rounds per copy; $rounds rounds x 4 variants" \
		"(+1 warm-up); RSS over $rss_minutes min (0: none)"
	python3 bench/agent/hostwide.py --workload "$tmp/workload" \
		--work "$work" --agent build/fdo-agent --url "$url" \
		--freq "$freq" --rounds "$rounds" --tmp "$tmp" \
		--fdod-pid "$srv_pid" --rss-minutes "$rss_minutes"
	binary=workload runs="the host-wide"
else
	echo "bench/agent: fdod pid $srv_pid on $url; workload $CC -O2, $work rounds;" \
		"$rounds rounds x 4 variants (+1 warm-up)"
	python3 bench/agent/bench.py --workload "$tmp/workload" --args "$work" \
		--agent build/fdo-agent --url "$url" --freq "$freq" --rounds "$rounds" \
		--tmp "$tmp" --fdod-pid "$srv_pid"
	binary=benchwork runs="$((rounds + 1))"
fi

# the agent's batches all reached fdod
samples=$(curl -fsS --max-time 10 "$http/v1/binaries/$binary" |
	python3 -c 'import json,sys; print(json.load(sys.stdin)["samples"])')
echo "  fdod stored $samples samples of $binary from $runs agent runs"
if ! kill -0 "$srv_pid" 2>/dev/null; then
	echo "bench/agent: fdod died; its log:" >&2
	tail -20 "$tmp/server.log" >&2
	srv_pid=""
	exit 1
fi
