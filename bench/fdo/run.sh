#!/usr/bin/env bash
# bench/fdo/run.sh — `make bench-fdo`: the FDO benchmark of real programs
# built from Debian source packages (bench/fdo/README.md).
#
#   bench/fdo/run.sh [--programs a,b] [--rounds N | --max-rounds N] [--repeat K]
#                    [--work DIR] [--choice NAME=QUERY[;CLANGFLAGS]]... [--probes]
#                    [--sample-scale N] [--no-time] [--short] [--keep-fdod]
#                    [--next-release]
#   bench/fdo/run.sh --help          every option
#
# This script checks the machine (root, the project's binaries, the LLVM
# tools, deb-src lines for `apt-get source`) and runs the driver,
# bench/fdo/fdobench.py (Python 3 standard library only). Sources, builds,
# profiles and the table go to var/bench-fdo (git-ignored) or --work DIR.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
T0=$(date +%s)
say() { echo "[$(date +%H:%M:%S) +$(($(date +%s) - T0))s] $*"; }
die() { echo "bench/fdo: $*" >&2; exit 1; }

for a in "$@"; do
	case $a in
	-h | --help) exec /usr/bin/python3 "$ROOT/bench/fdo/fdobench.py" --help ;;
	esac
done

[ "$(id -u)" = 0 ] || die "run as root: fdo-agent needs perf_event_open, apt-get source needs deb-src lines"
for b in fdod fdoctl fdo-agent; do
	[ -x "build/$b" ] || die "build/$b is missing: run 'make -j2 all' first"
done

# Tools: the project's dependencies bring clang-16, llvm-16 and BOLT
# (deploy/install-deps.sh); apt-get source needs dpkg-dev.
missing=()
for t in clang-16:clang-16 llvm-profdata-16:llvm-16 readelf:binutils make:make \
	curl:curl dpkg-source:dpkg-dev; do
	command -v "${t%%:*}" >/dev/null || missing+=("${t#*:}")
done
[ -x /usr/lib/llvm-16/bin/llvm-bolt ] || missing+=(libbolt-16-dev bolt-16)
if [ ${#missing[@]} -gt 0 ]; then
	say "installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null ||
		die "apt-get install ${missing[*]} failed"
fi

# deb-src: `apt-get source` needs source indices. Enable them the way
# /etc/apt/sources.list.d/fdod-src.sources does on the project's machines
# (deb822, bookworm and bookworm-updates, main) when no deb-src line is
# there, and fetch the indices when apt has none.
has_deb_src() {
	grep -Eqs '^[[:space:]]*Types:.*deb-src' /etc/apt/sources.list.d/*.sources ||
		grep -Eqs '^[[:space:]]*deb-src[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list
}
if ! has_deb_src; then
	say "enabling deb-src in /etc/apt/sources.list.d/fdod-src.sources"
	cat >/etc/apt/sources.list.d/fdod-src.sources <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
	need_update=1
fi
if [ -n "${need_update:-}" ] || ! ls /var/lib/apt/lists/*_Sources* >/dev/null 2>&1; then
	say "apt-get update (source indices)"
	DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null ||
		die "apt-get update failed: Debian's archive must be reachable to download the sources"
fi

exec /usr/bin/python3 "$ROOT/bench/fdo/fdobench.py" "$@"
