#!/usr/bin/env bash
# tests/format/test_format.sh — every C file in git is formatted as the
# project's .clang-format says, by the clang-format version pinned here
# (Debian's clang-format-16; deploy/install-deps.sh installs it). Fix a
# failure with `make format`. One test per file, plus a self-check that a
# misformatted file is caught, so this suite cannot pass by not looking.
set -u
cd "$(dirname "$0")/../.."
CF=clang-format-16
pass=0 fail=0
if ! command -v "$CF" >/dev/null; then
  echo "FAIL: $CF is not installed (deploy/install-deps.sh installs it)"
  echo "0 passed, 1 failed"
  exit 1
fi

# Self-check: a brace on the wrong line and spaces for indentation must be
# reported.
if printf 'int f(void) {\n  return 0;\n}\n' |
   "$CF" --dry-run --Werror --assume-filename=self.c >/dev/null 2>&1; then
  echo "FAIL: $CF did not report a misformatted file"
  fail=$((fail + 1))
else
  pass=$((pass + 1))
fi

while IFS= read -r f; do
  if out=$("$CF" --dry-run --Werror "$f" 2>&1); then
    pass=$((pass + 1))
  else
    fail=$((fail + 1))
    echo "FAIL: $f is not formatted (make format):"
    head -n 6 <<<"$out" | sed 's/^/  /'
  fi
done < <(git ls-files '*.c' '*.h')
echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
