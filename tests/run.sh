#!/usr/bin/env bash
# tests/run.sh — run every test suite of fdod and print one summary line.
#
# Suites: the C unit tests (build/tests/*), the same under ASan+UBSan
# (build/san-address,undefined/tests/*), and the integration tests
# (tests/*/test_*.sh and pytest files under tests/). Each suite prints its own
# "N passed, N failed" line; this script adds them up. Last line:
#   N passed, N failed[, N skipped]
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
export FDOD_ROOT=$ROOT
export FDOCTL=$ROOT/build/fdoctl FDOD=$ROOT/build/fdod
export TMPDIR=${TMPDIR:-/tmp}
LOGDIR=$ROOT/build/test-logs
mkdir -p "$LOGDIR"

total_pass=0 total_fail=0 total_skip=0
failed_suites=()

# count_line FILE: the counts of FILE's summary line: ours or the C
# runners' "N passed, N failed[, N skipped]", or pytest's
# "N failed, N passed, N skipped, N error in 1.2s" (any subset, any order).
count_line() {
  local line
  line=$(grep -E '^(=+ )?([A-Za-z]+: )?[0-9]+ (passed|failed|skipped|errors?|deselected)' "$1" | tail -n 1)
  if [[ -z "$line" ]]; then
    echo "0 0 0"
    return 1
  fi
  local p f s e
  p=$(grep -oE '[0-9]+ passed' <<<"$line" | grep -oE '[0-9]+' || true)
  f=$(grep -oE '[0-9]+ failed' <<<"$line" | grep -oE '[0-9]+' || true)
  s=$(grep -oE '[0-9]+ skipped' <<<"$line" | grep -oE '[0-9]+' || true)
  e=$(grep -oE '[0-9]+ errors?' <<<"$line" | grep -oE '[0-9]+' || true)
  echo "${p:-0} $(( ${f:-0} + ${e:-0} )) ${s:-0}"
}

# Every suite runs under a time limit (FDOD_SUITE_TIMEOUT seconds, default
# 600): a suite that hangs is killed with its process group, counted as a
# failure, and the end of its log is shown, instead of stalling CI.
SUITE_TIMEOUT=${FDOD_SUITE_TIMEOUT:-600}

run_suite() {
  local name=$1; shift
  local log=$LOGDIR/${name//\//_}.log
  local start=$SECONDS
  timeout --kill-after=20 "$SUITE_TIMEOUT" "$@" >"$log" 2>&1 </dev/null
  local rc=$?
  if [[ $rc -eq 124 || $rc -eq 137 ]]; then
    echo "TIMEOUT: $name killed after ${SUITE_TIMEOUT}s" >>"$log"
  fi
  local counts p f s
  if counts=$(count_line "$log"); then
    read -r p f s <<<"$counts"
  else
    # A suite that printed no summary failed as a whole.
    p=0 f=1 s=0
  fi
  if [[ $rc -ne 0 && $f -eq 0 ]]; then f=1; fi
  total_pass=$((total_pass + p)); total_fail=$((total_fail + f)); total_skip=$((total_skip + s))
  printf '%-48s %4d passed %3d failed %3d skipped  (%ds)\n' "$name" "$p" "$f" "$s" $((SECONDS - start))
  if [[ $f -ne 0 ]]; then
    failed_suites+=("$name")
    if grep -q '^TIMEOUT: ' "$log"; then
      # pytest's stack dump, the project's frames only, then the log's end.
      grep -E "^(Timeout|Thread|Current thread)|File \"$ROOT/" "$log" |
        head -n 60 | sed 's/^/    /'
      tail -n 15 "$log" | sed 's/^/    /'
    else
      grep -E '^(FAIL|  )' "$log" | head -n 40 | sed 's/^/    /'
    fi
    echo "    (full log: $log)"
  fi
}

for t in build/tests/*; do
  [[ -x $t && ! $t == *.d ]] || continue
  run_suite "unit/$(basename "$t")" "$t"
done
for t in "build/san-address,undefined/tests"/*; do
  [[ -x $t && ! $t == *.d ]] || continue
  run_suite "asan+ubsan/$(basename "$t")" env ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 "$t"
done
# Every unit test once more under valgrind (memcheck, leaks), each its own
# suite with its own time limit: together they take 10-15 minutes on a
# loaded 2-core host, past one suite's limit. FDOD_SKIP_VALGRIND=1 leaves
# them to `make check-valgrind`.
if [[ ${FDOD_SKIP_VALGRIND:-0} != 1 ]]; then
  for t in build/tests/*; do
    [[ -x $t && ! $t == *.d ]] || continue
    run_suite "valgrind/$(basename "$t")" tests/valgrind.sh "$t"
  done
fi
for t in tests/*/test_*.sh; do
  [[ -f $t ]] || continue
  run_suite "${t#tests/}" bash "$t"
done
for t in tests/*/test_*.py; do
  [[ -f $t ]] || continue
  # faulthandler_timeout: a test that runs past it has every thread's
  # stack written to the log (the suite limit above then ends it).
  run_suite "${t#tests/}" /usr/bin/python3 -m pytest -q -p no:cacheprovider \
    -o faulthandler_timeout=240 "$t"
done

if [[ ${#failed_suites[@]} -gt 0 ]]; then
  echo "failed suites: ${failed_suites[*]}"
fi
if [[ $total_skip -gt 0 ]]; then
  echo "$total_pass passed, $total_fail failed, $total_skip skipped"
else
  echo "$total_pass passed, $total_fail failed"
fi
[[ $total_fail -eq 0 ]]
