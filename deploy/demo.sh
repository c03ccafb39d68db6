#!/usr/bin/env bash
# deploy/demo.sh — `make demo`: the fleet FDO loop end to end, measured.
#
#   1. start fdod on ./var/demo (loopback ports),
#   2. build the workload (deploy/demo/vm.c, a bytecode interpreter) with
#      the profiling flags and upload its symbols,
#   3. run it under fdo-agent (real perf_event_open samples, batches every 2 s),
#   4. wait for delayed symbolization, pull the llvm profile (the default
#      line counts, and line_count=sum to compare) and build the sample-PGO
#      binaries,
#   5. run the sample-PGO binary under fdo-agent too, pull the bolt profile
#      of its exact build-id and BOLT it,
#   6. build the instrumented-PGO ceiling, and the same without select
#      counters (what a sample profile can tell clang),
#   6b. sample and build both PGO kinds again from more training sets
#      (DEMO_SETS; their mean gains are what one set is a draw of),
#   7. time every variant in paired interleaved rounds; table in
#      var/demo/table.txt,
#   8. stop fdod (SIGTERM),
#   9. the same loop on a real program of the FDO benchmark (bench/fdo:
#      DEMO_PROGRAM, gawk, built from its Debian source package, trained on
#      several inputs and timed on another), with its own table: the share
#      of the instrumented-PGO gain with its interval. DEMO_PROGRAM=none
#      leaves it out.
#
# Knobs (environment): DEMO_ROUNDS (timing rounds, 21), DEMO_REPEAT (runs of
# each variant per round, interleaved, the fastest counts, 3),
# DEMO_TIME_ITERS (workload rounds per timed run, 8: about 0.2 s), DEMO_GATE
# (e.g. 0.1: set apart the rounds of the host's slow phases, see bench.py;
# up to 4x as many rounds run), DEMO_PROFILE_RUNS (3),
# DEMO_PROFILE_ITERS (workload rounds per profiled run, 300), DEMO_SETS
# (training sets of DEMO_PROFILE_RUNS seeds each, 6; 1: only the first),
# DEMO_EXTRA=1 (also time the line_count=sum profile,
# -fprofile-sample-accurate and -sample-profile-use-profi, the last two
# paired against plain sample-PGO), DEMO_CFLAGS (flags added to every
# build, e.g. "-fno-pie -no-pie"), DEMO_DIR (instead of ./var/demo, to keep
# an earlier run), DEMO_PROGRAM (gawk; any of `bench/fdo/run.sh --help`'s
# programs, or none), DEMO_PROGRAM_ROUNDS (at most this many timing rounds
# of it, 25).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DEMO=${DEMO_DIR:-$ROOT/var/demo}
W=$DEMO/work
FDOD=$ROOT/build/fdod
FDOCTL=$ROOT/build/fdoctl
AGENT=$ROOT/build/fdo-agent
SRC=$ROOT/deploy/demo/vm.c
NNG_PORT=${DEMO_NNG_PORT:-17470}
HTTP_PORT=${DEMO_HTTP_PORT:-17471}
HTTP=http://127.0.0.1:$HTTP_PORT
URL=tcp://127.0.0.1:$NNG_PORT
ROUNDS=${DEMO_ROUNDS:-21}
GATE=${DEMO_GATE:-}
REPEAT=${DEMO_REPEAT:-3}
TIME_ITERS=${DEMO_TIME_ITERS:-8}
PROFILE_RUNS=${DEMO_PROFILE_RUNS:-3}
PROFILE_ITERS=${DEMO_PROFILE_ITERS:-300}
SETS=${DEMO_SETS:-6}
case $SETS in
'' | *[!0-9]* | 0) echo "demo: DEMO_SETS must be a whole number, 1 or more (got '$SETS')" >&2; exit 2 ;;
esac
CC=clang-16
BOLT=/usr/lib/llvm-16/bin/llvm-bolt
PROFDATA=llvm-profdata-16
# The profiled build and every variant use the same flags; only the profile differs.
# shellcheck disable=SC2054 # -Wl,--emit-relocs is one flag
CFLAGS=(-O2 -g -fdebug-info-for-profiling -fno-omit-frame-pointer -Wl,--emit-relocs)
# shellcheck disable=SC2206 # DEMO_CFLAGS is a list of flags, split on spaces
CFLAGS+=(${DEMO_CFLAGS:-})
T0=$(date +%s)
step() { echo "== [$(($(date +%s) - T0))s] $*"; }

# DEMO_DIR is removed and made again: refuse a directory an earlier demo
# did not make.
if [ -n "$(ls -A "$DEMO" 2>/dev/null)" ] && [ ! -d "$DEMO/work" ]; then
	echo "demo: $DEMO is not empty and has no work/ of an earlier demo; not removing it" >&2
	exit 2
fi
rm -rf "$DEMO"
mkdir -p "$W"
step "starting fdod on $DEMO (agents: $URL, HTTP: $HTTP)"
"$FDOD" --data "$DEMO/data" --listen "$URL" --http "$HTTP" \
	>"$DEMO/fdod.log" 2>&1 &
FDOD_PID=$!
trap 'kill -TERM $FDOD_PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do
	kill -0 $FDOD_PID 2>/dev/null || { cat "$DEMO/fdod.log" >&2; exit 1; }
	curl -fsS "$HTTP/v1/status" >/dev/null 2>&1 && break
	sleep 0.1
done
curl -fsS "$HTTP/v1/status" >/dev/null
sleep 0.2 # the agent port: fdod exits when it cannot listen
kill -0 $FDOD_PID 2>/dev/null || { cat "$DEMO/fdod.log" >&2; exit 1; }

build_id() { readelf -n "$1" | awk '/Build ID/ {print $3}'; }
pending() { # pending addresses of the given build-ids (libc & co. have no symbols here)
	"$FDOCTL" status --http "$HTTP" --json | /usr/bin/python3 -c '
import json, sys
s = json.load(sys.stdin)
ids = set(sys.argv[1:])
print(s["ingest"]["unmerged"] + sum(b["pending"] for b in s["pending"]["build_ids"]
                                    if b["build_id"] in ids))' "$@"
}
wait_symbolized() { # BUILD-ID...
	local n
	for _ in $(seq 600); do
		n=$(pending "$@")
		[ "$n" = 0 ] && return 0
		sleep 0.1
	done
	echo "demo: $n addresses of $* still pending after 60 s" >&2
	return 1
}
# profile_runs BINARY SET SEED...: run BINARY under fdo-agent once per
# seed, its batches labelled with the training set.
profile_runs() {
	local bin=$1 set=$2 seed
	shift 2
	for seed in "$@"; do
		"$AGENT" --url "$URL" --binary vm --label mode=demo --label set="$set" \
			--interval 2 -- "$bin" "$PROFILE_ITERS" "$seed" 2>>"$DEMO/agent.log"
	done
}
set_seeds() { seq $((($1 - 1) * PROFILE_RUNS + 1)) $(($1 * PROFILE_RUNS)); } # SET
samples() { # the binary's figures
	curl -fsS "$HTTP/v1/binaries/vm" | /usr/bin/python3 -c '
import json, sys
b = json.load(sys.stdin)
print("  ", b.get("samples"), "samples of vm so far (every build-id);", ", ".join(
    "%s: %s" % (k, v) for k, v in b.items() if k in ("hosts", "weight")))'
}

step "building the workload with the profiling flags: ${CFLAGS[*]}"
"$CC" "${CFLAGS[@]}" -o "$W/vm" "$SRC"
BID=$(build_id "$W/vm")
echo "   vm build-id $BID; $("$W/vm")"
"$FDOCTL" upload --http "$HTTP" --binary vm "$W/vm"

SEEDS=$(set_seeds 1)
step "sampling $PROFILE_RUNS runs of 'vm $PROFILE_ITERS SEED' under fdo-agent (cpu-clock, 997 Hz)"
# shellcheck disable=SC2086 # the seeds are words
profile_runs "$W/vm" 1 $SEEDS
wait_symbolized "$BID"
samples

step "pulling the llvm profiles of build-id $BID (the defaults, and line_count=sum to compare)"
"$FDOCTL" pull vm --http "$HTTP" --format llvm --build-id "$BID" -o "$W/prof.llvm"
curl -fsS "$HTTP/v1/profiles/vm?format=llvm&build_id=$BID&line_count=sum" \
	-o "$W/prof.sum.llvm"
"$PROFDATA" show --sample "$W/prof.llvm" >"$W/prof.llvm.show"
grep -E 'Function:|inlined callee: [a-z_]+: [0-9]{3,}' "$W/prof.llvm.show" | head -8 | sed 's/^ */   /'

step "building the sample-PGO variants"
"$CC" "${CFLAGS[@]}" -fprofile-sample-use="$W/prof.llvm" -o "$W/vm.spgo" "$SRC"
EXTRA=() EXTRA_CMP=()
if [ "${DEMO_EXTRA:-0}" = 1 ]; then
	"$CC" "${CFLAGS[@]}" -fprofile-sample-use="$W/prof.sum.llvm" -o "$W/vm.spgo-sum" "$SRC"
	"$CC" "${CFLAGS[@]}" -fprofile-sample-use="$W/prof.llvm" \
		-fprofile-sample-accurate -o "$W/vm.spgo-accurate" "$SRC"
	"$CC" "${CFLAGS[@]}" -fprofile-sample-use="$W/prof.llvm" \
		-mllvm -sample-profile-use-profi -o "$W/vm.spgo-profi" "$SRC"
	EXTRA=(fdod-spgo-sum="$W/vm.spgo-sum"
		spgo-accurate="$W/vm.spgo-accurate" spgo-profi="$W/vm.spgo-profi")
	EXTRA_CMP=(--compare=spgo-accurate:fdod-spgo --compare=spgo-profi:fdod-spgo)
fi

SBID=$(build_id "$W/vm.spgo")
step "BOLT needs samples of the exact binary: sampling vm.spgo (build-id $SBID)"
"$FDOCTL" upload --http "$HTTP" --binary vm "$W/vm.spgo"
# shellcheck disable=SC2086 # the seeds are words
profile_runs "$W/vm.spgo" 1 $SEEDS
wait_symbolized "$SBID"
samples
"$FDOCTL" pull vm --http "$HTTP" --format bolt --build-id "$SBID" -o "$W/prof.fdata"
echo "   $(wc -l <"$W/prof.fdata") lines in prof.fdata"
# Without LBR (a no_lbr .fdata: IP samples, no edges) BOLT runs in
# non-relocation mode: it rewrites, in place, only the functions it can
# analyse. In relocation mode it re-emits every function, and the one it
# cannot analyse here (the interpreter's main: a jump table whose base
# register is loaded outside the loop) lost its loop alignment and grew
# 8%: the BOLTed binary ran 5-10% slower than its input. Function
# reordering needs relocation mode and a call graph, which IP samples do
# not give anyway. Built without PIE (DEMO_CFLAGS="-fno-pie -no-pie") the
# jump table is absolute and BOLT does rewrite main, but its layout from
# IP samples made it slower: -10.8% [-12.6%, +2.8%] against vm.spgo over
# 21 rounds, -7.7% [-14.0%, +3.4%] over 31.
if head -1 "$W/prof.fdata" | grep -q '^no_lbr'; then
	BOLT_FLAGS=(-relocs=0 -reorder-blocks=ext-tsp -split-functions -split-all-cold)
else
	BOLT_FLAGS=(-reorder-blocks=ext-tsp -reorder-functions=hfsort -split-functions -split-all-cold)
fi
echo "   llvm-bolt ${BOLT_FLAGS[*]}"
"$BOLT" "$W/vm.spgo" -o "$W/vm.spgo.bolt" -data="$W/prof.fdata" \
	"${BOLT_FLAGS[@]}" -dyno-stats >"$W/bolt.log" 2>&1 ||
	{ cat "$W/bolt.log" >&2; exit 1; }
grep -E 'BOLT-INFO: (basic block reordering|.*profile)' "$W/bolt.log" | head -3 | sed 's/^/   /' || true

step "building the ceiling: instrumented PGO trained on the same seeds (also without select counts)"
# pgo_build NAME SEEDS [CLANG FLAG...]: instrumented PGO, trained on SEEDS.
pgo_build() {
	local name=$1 seeds=$2 seed
	shift 2
	rm -rf "$W/$name-raw"
	"$CC" "${CFLAGS[@]}" "$@" -fprofile-generate="$W/$name-raw" -o "$W/vm.$name-gen" "$SRC"
	for seed in $seeds; do "$W/vm.$name-gen" "$((PROFILE_ITERS / 4))" "$seed" >/dev/null; done
	"$PROFDATA" merge -o "$W/vm.$name.profdata" "$W/$name-raw"/*.profraw
	"$CC" "${CFLAGS[@]}" "$@" -fprofile-use="$W/vm.$name.profdata" -o "$W/vm.$name" "$SRC"
}
pgo_build pgo "$SEEDS"
# A sample profile cannot weigh a select (clang's sample loader annotates
# branches and calls only, and an if-converted `if (c) x = y;` has no
# instruction of its own to carry a count), so sample PGO leaves such a
# branch a cmov where instrumented PGO, which counts selects, makes the
# ones it sees taken 99% of the time branches again. pgo-no-select is
# instrumented PGO without its select counters: all a sample profile can
# tell clang 16, at best (its timing can still differ from sample PGO's by
# code generation: on some hosts sample PGO is well ahead of it;
# docs/profile-quality.md, "Where sample PGO falls short on the demo").
pgo_build pgo-no-select "$SEEDS" -mllvm -pgo-instr-select=false

# On some CPUs the rebuilt interpreter's speed is a lottery of code
# generation: a profile's small differences (the sampling noise of a
# sample profile, the training input of an instrumented one) flip it
# between fast and slow builds, for instrumented PGO as for sample PGO
# (docs/profile-quality.md, "Where sample PGO falls short on the demo").
# One training set then compares one draw with another. So both are built again from more training sets
# (disjoint seeds, the same number of runs and rounds), and the table adds
# each method's mean gain over all the sets and the share of the means.
SPGO_SETS=fdod-spgo PGO_SETS=pgo-instr SET_VARIANTS=() SET_OPTS=()
if [ "$SETS" -gt 1 ]; then
	step "training sets 2-$SETS ($PROFILE_RUNS seeds each): sampling vm under fdo-agent, labelled set=N"
	for s in $(seq 2 "$SETS"); do
		# shellcheck disable=SC2046 # the seeds are words
		profile_runs "$W/vm" "$s" $(set_seeds "$s")
	done
	wait_symbolized "$BID"
	step "training sets 2-$SETS: pulling each set's llvm profile (labels=set:N), building sample PGO and instrumented PGO"
	for s in $(seq 2 "$SETS"); do
		"$FDOCTL" pull vm --http "$HTTP" --format llvm --build-id "$BID" \
			--labels set="$s" -o "$W/prof.s$s.llvm"
		"$CC" "${CFLAGS[@]}" -fprofile-sample-use="$W/prof.s$s.llvm" -o "$W/vm.spgo.s$s" "$SRC"
		pgo_build "pgo.s$s" "$(set_seeds "$s")"
		SPGO_SETS+=,fdod-spgo.s$s PGO_SETS+=,pgo-instr.s$s
		SET_VARIANTS+=("fdod-spgo.s$s=$W/vm.spgo.s$s" "pgo-instr.s$s=$W/vm.pgo.s$s")
	done
	SET_OPTS=(--mean-share="$SPGO_SETS:$PGO_SETS")
fi

# This host has slow phases (the same binary takes 0.35 or 0.55 s) that
# last from one to many seconds and change the variants' ratios, not only
# their times: with 11 rounds of 1.1 s runs BOLT's interval was [-18%,
# +28%]. So the runs are short, and each round runs every variant
# $REPEAT times interleaved and keeps its fastest run. On this host the
# same binary can also run at one of two speeds, 20% apart, by which copy
# of its file runs (vm.pgo.s2 of one demo: 3 of 6 copies 0.165 s, the
# others 0.198 s; the copy of the original file changed speed between two
# timings), so each round runs a fresh copy of every variant.
step "timing: 'vm $TIME_ITERS' (default seed), $ROUNDS paired interleaved rounds, the fastest of $REPEAT runs per round"
/usr/bin/python3 "$ROOT/deploy/demo/bench.py" --repeat="$REPEAT" --fresh-copies \
	${GATE:+--gate="$GATE"} \
	--compare=fdod-spgo+bolt:fdod-spgo --compare=fdod-spgo:pgo-no-select \
	"${EXTRA_CMP[@]}" "${SET_OPTS[@]}" "$ROUNDS" base pgo-instr \
	base="$W/vm" \
	fdod-spgo="$W/vm.spgo" \
	fdod-spgo+bolt="$W/vm.spgo.bolt" \
	pgo-instr="$W/vm.pgo" \
	pgo-no-select="$W/vm.pgo-no-select" \
	"${SET_VARIANTS[@]}" "${EXTRA[@]}" -- "$TIME_ITERS" | tee "$W/bench.out" | grep '^  round'
grep -v '^  round' "$W/bench.out" >"$DEMO/table.txt"
{
	echo "variants: base = clang-16 ${CFLAGS[*]}; fdod-spgo = + -fprofile-sample-use"
	echo "  (fdod llvm profile, default choices); fdod-spgo+bolt = llvm-bolt with fdod's"
	echo "  .fdata of vm.spgo (llvm-bolt ${BOLT_FLAGS[*]});"
	echo "  pgo-instr = -fprofile-generate/-use (the ceiling); pgo-no-select = the same"
	echo "  with -mllvm -pgo-instr-select=false (no select counts: what a sample"
	echo "  profile can carry, see docs/profile-quality.md);"
	if [ "$SETS" -gt 1 ]; then
		echo "  fdod-spgo.sN, pgo-instr.sN = the same two from training set N, seeds"
		echo "  ${PROFILE_RUNS}(N-1)+1 to ${PROFILE_RUNS}N (fdod-spgo and pgo-instr are set 1); the 'mean of'"
		echo "  line: each method's mean gain over the $SETS sets (DEMO_SETS) and their ratio;"
	fi
	if [ "${DEMO_EXTRA:-0}" = 1 ]; then
		echo "  fdod-spgo-sum = the llvm profile with line_count=sum (the earlier default);"
	fi
	echo "  differences under ~2% are this host's noise"
	# The shares depend on the CPU (docs/profile-quality.md, "Where
	# sample PGO falls short on the demo").
	awk -F': *' -v n="$(nproc)" '
		/^model name/ && !m { m = $2 } /^cpu family/ && !f { f = $2 }
		/^model\t/ && !d { d = $2 }
		END { printf "host: %s (family %s, model %s), %s CPUs, clang-16 %s\n", m, f, d, n, v }' \
		v="$("$CC" --version | head -1 | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -1)" /proc/cpuinfo
} >>"$DEMO/table.txt"
echo
cat "$DEMO/table.txt"

step "stopping fdod"
kill -TERM $FDOD_PID
wait $FDOD_PID
trap - EXIT
PROGRAM=${DEMO_PROGRAM:-gawk}
if [ "$PROGRAM" != none ]; then
	# The interpreter above is a code-layout lottery on some CPUs; a real
	# program trained on other inputs than it is timed on is the honest
	# figure (docs/profile-quality.md). Its builds are cached in
	# var/bench-fdo-demo, so a second demo only samples and times again.
	step "the loop on a real program: $PROGRAM from its Debian source package (bench/fdo)"
	rm -f "$ROOT/var/bench-fdo-demo/table.txt"
	bench/fdo/run.sh --programs "$PROGRAM" --max-rounds "${DEMO_PROGRAM_ROUNDS:-25}" \
		--work "$ROOT/var/bench-fdo-demo"
	cp "$ROOT/var/bench-fdo-demo/table.txt" "$DEMO/table-$PROGRAM.txt"
	echo
	cat "$DEMO/table-$PROGRAM.txt"
fi
echo "demo done in $(($(date +%s) - T0)) s; profiles, binaries and the table are under $DEMO"
