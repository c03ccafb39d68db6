#!/usr/bin/env bash
# deploy/demo/profile-choices.sh — issue 4: which way of turning IP samples
# into an llvm profile makes clang build the fastest demo workload. Compares
# the emitter's choices (docs/http.md, GET /v1/profiles/{binary}) over several
# independent profiles: one profile is one draw, and sample noise changes
# clang's decisions, so one pair proves little.
#
# For each of TRIALS trials: sample 'vm ITERS SEED' (seeds 1-3) under
# fdo-agent with the label trial=N, pull one llvm profile per CHOICE for
# that trial and build with each. Then time base, instrumented PGO and every
# trial's binaries in paired interleaved rounds (deploy/demo/bench.py).
# Needs `make` (build/) first. Output under var/choices.
# Knobs: TRIALS (3), ITERS (300), ROUNDS (11), FREQ (sampling Hz, 997),
# CHOICES (space-separated NAME=QUERY, default: sum max mean entry, below).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=$ROOT/var/choices
TRIALS=${TRIALS:-3}
ITERS=${ITERS:-300}
ROUNDS=${ROUNDS:-11}
FREQ=${FREQ:-997}
read -r -a CHOICES <<<"${CHOICES:-sum=line_count=sum max=line_count=max mean=line_count=mean entry=head=entry}"
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
		build/fdo-agent --url "$URL" --binary vm --label trial=$t --interval 2 --freq "$FREQ" \
			-- "$OUT/vm" "$ITERS" "$seed" >/dev/null 2>>"$OUT/agent.log"
	done
	sleep 1
	curl -fsS "$HTTP/v1/binaries/vm" | /usr/bin/python3 -c 'import json,sys; print("trial '$t': vm has", json.load(sys.stdin).get("samples"), "samples in all so far")'
	for c in "${CHOICES[@]}"; do
		name=${c%%=*} query=${c#*=}
		curl -fsS "$HTTP/v1/profiles/vm?format=llvm&build_id=$BID&labels=trial:$t&$query" \
			-o "$OUT/prof.$t.$name.llvm"
		clang-16 "${CFLAGS[@]}" -fprofile-sample-use="$OUT/prof.$t.$name.llvm" \
			-o "$OUT/vm.$t.$name" "$SRC"
		VARIANTS+=("t$t-$name=$OUT/vm.$t.$name")
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
