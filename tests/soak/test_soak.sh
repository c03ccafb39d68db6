#!/usr/bin/env bash
# A short soak in make test (SOAK_SECONDS, default 40): the same checks as
# `make soak` (which runs 30 minutes), on a shorter run.
set -u
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 tests/soak/soak.py --seconds "${SOAK_SECONDS:-40}" --pushers 3
