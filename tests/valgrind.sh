#!/usr/bin/env bash
# tests/valgrind.sh [TEST...] — run every C unit test (or the named ones,
# paths under build/tests/) once under valgrind (memcheck): invalid
# reads/writes, uses of uninitialized values and definite leaks fail the
# test. `make check-valgrind` runs it; prints "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is not installed (deploy/install-deps.sh)"; echo "0 passed, 1 failed"; exit 1; }
LOGDIR=build/test-logs/valgrind
mkdir -p "$LOGDIR"
pass=0 fail=0
tests=("$@")
[[ $# -gt 0 ]] || tests=(build/tests/*)
for t in "${tests[@]}"; do
  [[ -x $t && -f $t ]] || continue
  name=$(basename "$t")
  start=$SECONDS
  if valgrind -q --error-exitcode=99 --leak-check=full \
       --errors-for-leak-kinds=definite --track-origins=yes \
       --suppressions=tests/valgrind.supp \
       "$t" >"$LOGDIR/$name.log" 2>&1; then
    pass=$((pass + 1))
    printf 'ok   %-40s (%ds)\n' "$name" $((SECONDS - start))
  else
    fail=$((fail + 1))
    printf 'FAIL %-40s (%ds) log: %s\n' "$name" $((SECONDS - start)) "$LOGDIR/$name.log"
    grep -E '^==[0-9]+== ' "$LOGDIR/$name.log" | head -n 20 | sed 's/^/  /'
  fi
done
echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
