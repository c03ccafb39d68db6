#!/usr/bin/env bash
# deploy/demo/sum-vs-max.sh — issue 4: llvm profile line_count=sum vs max on
# the demo workload, over several independent profiles (one profile is one
# draw: sample noise changes clang's decisions, so one pair proves little).
#
# For each of TRIALS trials: sample 'vm ITERS SEED' under fdo-agent with the
# label trial=N, pull llvm (sum and max) for that trial, build both. Then time
# base, instrumented PGO and every trial's sum and max binaries in paired
# interleaved rounds. Needs `make` (build/) first. Output under var/summax.
# Knobs: TRIALS (3), ITERS (300), ROUNDS (11).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=$ROOT/var/summax
TRIALS=${TRIALS:-3}
ITERS=${ITERS:-300}
ROUNDS=${ROUNDS:-11}
HTTP=http://127.0.0.1:17481
URL=tcp://127.0.0.1:17480
CFLAGS=(-O2 -g -fdebug-info-for-profiling -fno-omit-frame-pointer -Wl,--emit-relocs)
SRC=$ROOT/deploy/demo/vm.c
rm -rf "$OUT"
mkdir -p "$OUT"
build/fdod --data "$OUT/data" --listen "$URL" --http "$HTTP" >"$OUT/fdod.log" 2>&1 &
PID=$!
trap 'kill -TERM $PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -fsS "$HTTP/v1/status" >/dev/null 2>&1 && break; sleep 0.1; done
sleep 0.2
kill -0 $PID

clang-16 "${CFLAGS[@]}" -o "$OUT/vm" "$SRC"
BID=$(readelf -n "$OUT/vm" | awk '/Build ID/ {print $3}')
build/fdoctl upload --http "$HTTP" --binary vm "$OUT/vm" >/dev/null
VARIANTS=(base="$OUT/vm")
for t in $(seq "$TRIALS"); do
	for seed in 1 2 3; do
		build/fdo-agent --url "$URL" --binary vm --label trial=$t --interval 2 \
			-- "$OUT/vm" "$ITERS" "$seed" >/dev/null 2>>"$OUT/agent.log"
	done
	sleep 1
	for lc in sum max; do
		curl -fsS "$HTTP/v1/profiles/vm?format=llvm&build_id=$BID&labels=trial:$t&line_count=$lc" \
			-o "$OUT/prof.$t.$lc.llvm"
		clang-16 "${CFLAGS[@]}" -fprofile-sample-use="$OUT/prof.$t.$lc.llvm" \
			-o "$OUT/vm.$t.$lc" "$SRC"
		VARIANTS+=("t$t-$lc=$OUT/vm.$t.$lc")
	done
	echo "trial $t: profiles and binaries built"
done
clang-16 "${CFLAGS[@]}" -fprofile-generate="$OUT/raw" -o "$OUT/vm.gen" "$SRC"
for seed in 1 2 3; do "$OUT/vm.gen" "$((ITERS / 4))" "$seed" >/dev/null; done
llvm-profdata-16 merge -o "$OUT/vm.profdata" "$OUT"/raw/*.profraw
clang-16 "${CFLAGS[@]}" -fprofile-use="$OUT/vm.profdata" -o "$OUT/vm.pgo" "$SRC"
VARIANTS+=(pgo-instr="$OUT/vm.pgo")
kill -TERM $PID
wait $PID || true
trap - EXIT
/usr/bin/python3 deploy/demo/bench.py "$ROUNDS" base pgo-instr "${VARIANTS[@]}" |
	tee "$OUT/bench.out" | grep -v '^  round' | tee "$OUT/table.txt"
