# shellcheck shell=bash
# bench/lib.sh — what the benchmark scripts that start fdod share; sourced
# (from the repository root) by bench/agent/run.sh, bench/ingest/run.sh and
# bench/profiles/run.sh.

# build_ingest_programs NAME...: builds bench/ingest/NAME.c into
# build/bench/NAME against the schemas and common archives (made first);
# the pusher with its OTLP request encoder (otlp_req.c, zlib) and libcurl.
build_ingest_programs() {
	make -s build/lib/libschemas.a build/lib/libcommon.a
	mkdir -p build/bench
	local p src libs
	for p in "$@"; do
		src=("bench/ingest/$p.c") libs=()
		if [[ $p == pusher ]]; then
			src+=(bench/ingest/otlp_req.c)
			libs=(-lcurl-gnutls -lz)
		fi
		cc -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -I. \
			-Ibuild/gen -o "build/bench/$p" "${src[@]}" \
			build/lib/libschemas.a build/lib/libcommon.a \
			-lnng -lprotobuf-c -llmdb -lelf "${libs[@]}" -lpthread -lm
	done
}

# free_ports: two distinct free TCP ports on 127.0.0.1, printed as "A B"
# (both are bound at once, so they differ).
free_ports() {
	python3 -c 'import socket
a, b = socket.socket(), socket.socket()
a.bind(("127.0.0.1", 0)); b.bind(("127.0.0.1", 0))
print(a.getsockname()[1], b.getsockname()[1])'
}

# bench_get URL: GET URL to stdout (10 s at most; fails on an HTTP
# error), with $BENCH_TOKEN as the bearer token when it is set (a fdod
# started with --tokens).
bench_get() {
	curl -fsS --max-time 10 \
		${BENCH_TOKEN:+-H "Authorization: Bearer $BENCH_TOKEN"} "$1"
}

# start_fdod WHO DIR URL HTTP [ARG...]: starts $FDOD (default build/fdod)
# on DIR/data listening on URL and HTTP, with the further ARGs, its output
# in DIR/server.log, and sets srv_pid. Waits up to
# 10 s for /v1/status to answer; if it does not, prints the log's tail
# under WHO's name and exits 1.
start_fdod() {
	local who=$1 dir=$2 url=$3 http=$4
	shift 4
	"${FDOD:-build/fdod}" --data "$dir/data" --listen "$url" --http "$http" \
		"$@" >"$dir/server.log" 2>&1 &
	srv_pid=$!
	for _ in $(seq 100); do
		bench_get "$http/v1/status" >/dev/null 2>&1 && return 0
		kill -0 "$srv_pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "$who: fdod did not come up; its log:" >&2
	tail -20 "$dir/server.log" >&2
	exit 1
}

# stop_pid PID: SIGTERM, up to 10 s to exit, then SIGKILL; nothing if the
# process is gone already.
stop_pid() {
	kill -0 "$1" 2>/dev/null || return 0
	kill -TERM "$1" 2>/dev/null || true
	for _ in $(seq 50); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.2
	done
	kill -KILL "$1" 2>/dev/null || true
}
