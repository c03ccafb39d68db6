#!/usr/bin/env bash
# tests/fdo/test_fdo_short.sh — the short FDO benchmark (bench/fdo/run.sh
# --short): one small real program (bzip2 from its Debian source package,
# downloaded with `apt-get source`), a few seconds of sampling, no timing.
# It checks the loop: fdod up, samples stored and symbolized, the llvm
# profile pulled and accepted by llvm-profdata-16 and by clang-16 with no
# warning, the rebuilt binary printing what the base prints, the bolt
# profile and llvm-bolt. One test per checked property; last line
# "N passed, N failed". Needs root and Debian's archive (fails loudly
# without it). About a minute; FDO_SHORT_WORK keeps the work directory.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
work=${FDO_SHORT_WORK:-}
if [ -z "$work" ]; then
	work=$(mktemp -d "${TMPDIR:-/tmp}/fdo-short.XXXXXX")
	trap 'rm -rf "$work"' EXIT
fi
out=$work.out
start=$SECONDS
bash bench/fdo/run.sh --short --work "$work" >"$out" 2>&1
rc=$?
cat "$out"
pass=$(grep -c '\] check ok: ' "$out")
fail=$(grep -c '\] check FAILED: ' "$out")
# Every property the short run must have checked (a run that stopped
# early misses some: each missing one is a failure).
for want in 'fdod up' 'samples of base stored' 'accepted by llvm-profdata-16 show --sample' \
	'llvm profile has the hot functions' 'clang-16 built with the profile, no profile warning' \
	'fdod-spgo prints what base prints' 'samples of fdod-spgo stored' 'bolt profile of fdod-spgo pulled' \
	'llvm-bolt rewrote fdod-spgo' 'fdod-spgo+bolt prints what base prints'; do
	if ! grep -q "\] check ok: .*$want" "$out"; then
		echo "FAIL: no passing check '$want'"
		grep -q "\] check FAILED: .*$want" "$out" || fail=$((fail + 1))
	fi
done
if [ "$rc" -ne 0 ]; then
	echo "FAIL: bench/fdo/run.sh --short exited $rc"
	fail=$((fail + 1))
fi
if [ $((SECONDS - start)) -gt 240 ]; then
	echo "FAIL: the short run took $((SECONDS - start)) s (more than 240)"
	fail=$((fail + 1))
fi
rm -f "$out"
echo "took $((SECONDS - start)) s"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
