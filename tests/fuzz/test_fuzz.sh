#!/usr/bin/env bash
# tests/fuzz/test_fuzz.sh — the fuzz targets as a test suite (docs/development.md
# "Fuzzing"): builds them if needed (make fuzz-build: clang-16, libFuzzer,
# ASan+UBSan, into build/fuzz with its seed corpora), then for each target
#   1. replays every saved input of tests/fuzz/regress/<target>/ once
#      (crashes found earlier, and fixed: they must stay fixed);
#   2. fuzzes it for FUZZ_SECONDS (default 15) from its corpus.
# One case per target; last line "N passed, N failed". About 2 minutes.
set -u
cd "$(dirname "$0")/../.."
SECS=${FUZZ_SECONDS:-15}
B=build/fuzz
REGRESS=tests/fuzz/regress
mkdir -p "$B/logs"

targets=()
for f in fuzz/fuzz_*.c; do
	t=${f#fuzz/fuzz_}
	targets+=("${t%.c}")
done

if ! make fuzz-build >"$B/logs/build.log" 2>&1; then
	echo "FAIL build: make fuzz-build (log $B/logs/build.log)"
	tail -n 20 "$B/logs/build.log" | sed 's/^/  /'
	echo "0 passed, ${#targets[@]} failed"
	exit 1
fi

pass=0 fail=0
for t in "${targets[@]}"; do
	bin=$B/fuzz/fuzz_$t
	why= out=
	inputs=()
	if [[ -d $REGRESS/$t ]]; then
		for f in "$REGRESS/$t"/*; do
			[[ -f $f ]] && inputs+=("$f")
		done
	fi
	if [[ ${#inputs[@]} -gt 0 ]]; then
		log=$B/logs/$t.regress.log
		if ! "$bin" -rss_limit_mb=2048 -timeout=30 "${inputs[@]}" \
			>"$log" 2>&1; then
			why="a regression input crashes again (log $log)"
		fi
	fi
	if [[ -z $why ]]; then
		out=$(fuzz/run.sh "$SECS" "$t" 2>&1)
		if [[ $? -ne 0 ]]; then
			why="fuzzing found a crash (save the input under $REGRESS/$t/ once fixed)"
		fi
	fi
	if [[ -z $why ]]; then
		echo "ok   $t  (${#inputs[@]} regression inputs; $(tail -n 1 <<<"$out" |
			awk '{print $2 " execs/s, cov " $3 ", ft " $4}'))"
		pass=$((pass + 1))
	else
		echo "FAIL $t: $why"
		[[ -n ${out:-} ]] && tail -n +2 <<<"$out" | sed 's/^ */  /'
		fail=$((fail + 1))
	fi
done
echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
