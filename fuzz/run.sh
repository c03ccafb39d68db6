#!/usr/bin/env bash
# fuzz/run.sh [SECONDS [TARGET...]] — run fdod's libFuzzer targets one after
# the other (2-core machine: one at a time), each for SECONDS (default 60),
# on its corpus build/fuzz/corpus/<target>/ (seeded by fuzz/seeds.py; new
# inputs are added there). Built by `make fuzz-build`; `make fuzz` runs this.
#
# One line per target: execs/s and the final coverage (cov: edges, ft:
# features) from libFuzzer's last status line, or CRASH with the saved
# input (build/fuzz/artifacts/<target>/) and the log. Exit status 1 if any
# target crashed, leaked, timed out or ran out of memory.
#
# Environment: FUZZ_BUILD (default build/fuzz), FUZZ_RSS_MB (2048),
# FUZZ_TIMEOUT (per-input seconds, 10), FUZZ_ARGS (extra libFuzzer flags).
set -u
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-60}
shift || true
# libFuzzer reads -max_total_time=0 as "no limit": refuse it.
if ! [[ $SECONDS_EACH =~ ^[0-9]+$ ]] || [[ $SECONDS_EACH -lt 1 ]]; then
	echo "fuzz/run.sh: SECONDS must be a whole number >= 1 (got '$SECONDS_EACH')" >&2
	exit 2
fi
B=${FUZZ_BUILD:-build/fuzz}
RSS=${FUZZ_RSS_MB:-2048}
TMO=${FUZZ_TIMEOUT:-10}
if [[ $# -gt 0 ]]; then
	targets=("$@")
else
	targets=()
	for f in fuzz/fuzz_*.c; do
		t=${f#fuzz/fuzz_}
		targets+=("${t%.c}")
	done
fi

# Inputs larger than this are not generated (the seeds set the rest).
declare -A MAXLEN=([batch]=65536 [text]=65536 [http]=4096 [elf]=131072
	[dwarf]=131072 [symindex]=131072 [perf]=65536 [pprof]=65536
	[otlp]=65536 [runchunk]=40960)

fail=0
printf '%-9s %8s %8s %8s %10s  %s\n' target execs/s cov ft execs result
for t in "${targets[@]}"; do
	bin=$B/fuzz/fuzz_$t
	if [[ ! -x $bin ]]; then
		echo "$t: $bin missing (make fuzz-build)"
		fail=1
		continue
	fi
	corpus=$B/corpus/$t
	art=$B/artifacts/$t
	log=$B/logs/$t.log
	mkdir -p "$corpus" "$art" "$(dirname "$log")"
	args=(-max_total_time="$SECONDS_EACH" -rss_limit_mb="$RSS"
		-timeout="$TMO" -print_final_stats=1 -artifact_prefix="$art/"
		-max_len="${MAXLEN[$t]:-65536}")
	[[ -f $B/dict/$t.dict ]] && args+=(-dict="$B/dict/$t.dict")
	ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
		UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
		"$bin" "${args[@]}" ${FUZZ_ARGS:-} "$corpus" >"$log" 2>&1
	rc=$?
	# The last status line ("#N DONE cov: X ft: Y corp: ... exec/s: Z").
	last=$(grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE|INITED)' "$log" | tail -n 1)
	cov=$(grep -oE 'cov: [0-9]+' <<<"$last" | grep -oE '[0-9]+')
	ft=$(grep -oE 'ft: [0-9]+' <<<"$last" | grep -oE '[0-9]+')
	execs=$(grep -oE '^#[0-9]+' <<<"$last" | tr -d '#')
	eps=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$log" | grep -oE '[0-9]+$')
	if [[ $rc -eq 0 ]] && grep -q 'DONE' <<<"$last"; then
		result=ok
	else
		result="CRASH (exit $rc): $(ls -t "$art" 2>/dev/null | head -n 1) log $log"
		fail=1
	fi
	# A target that crashed left its scratch directory behind.
	for d in /dev/shm/fdod-fuzz-"$t"-* /tmp/fdod-fuzz-"$t"-*; do
		[[ -d $d ]] && ! kill -0 "${d##*-}" 2>/dev/null && rm -rf "$d"
	done
	printf '%-9s %8s %8s %8s %10s  %s\n' "$t" "${eps:-?}" "${cov:-?}" \
		"${ft:-?}" "${execs:-?}" "$result"
	if [[ $result != ok ]]; then
		grep -E 'ERROR: |SUMMARY: |check failed|runtime error' "$log" |
			head -n 5 | sed 's/^/    /'
	fi
done
exit $fail
