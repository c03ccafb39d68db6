#!/usr/bin/env bash
# bench/abuse/run.sh — fdod under hostile clients (issue 21): prints, in one
# run, the latency of normal requests beside 300 idle or half-sent
# connections, fdod's anonymous RSS under 50 connections each sending 15 MB
# without a valid token, and its peak RSS while a 1 MB upload claims 1 GiB
# of compressed debug data; with the targets. Figures, never assertions:
# exit 0 unless something broke (fdod died, a build failed).
#   bench/abuse/run.sh [--requests N] [--out FILE]
set -euo pipefail
cd "$(dirname "$0")/../.."
if [[ ! -x build/fdod || ! -x build/fdoctl ]]; then
	echo "bench/abuse: build/fdod is missing: run make first" >&2
	exit 1
fi
exec /usr/bin/python3 bench/abuse/abuse.py "$@"
