# shellcheck shell=bash
# bench/lib.sh — what the benchmark scripts that start fdod share; sourced
# (from the repository root) by bench/agent/run.sh and bench/ingest/run.sh.

# free_ports: two distinct free TCP ports on 127.0.0.1, printed as "A B"
# (both are bound at once, so they differ).
free_ports() {
	python3 -c 'import socket
a, b = socket.socket(), socket.socket()
a.bind(("127.0.0.1", 0)); b.bind(("127.0.0.1", 0))
print(a.getsockname()[1], b.getsockname()[1])'
}

# start_fdod WHO DIR URL HTTP: starts $FDOD (default build/fdod) on DIR/data
# listening on URL and HTTP, its output in DIR/server.log, and sets srv_pid. Waits up to
# 10 s for /v1/status to answer; if it does not, prints the log's tail
# under WHO's name and exits 1.
start_fdod() {
	local who=$1 dir=$2 url=$3 http=$4
	"${FDOD:-build/fdod}" --data "$dir/data" --listen "$url" --http "$http" \
		>"$dir/server.log" 2>&1 &
	srv_pid=$!
	for _ in $(seq 100); do
		curl -fsS --max-time 5 "$http/v1/status" >/dev/null 2>&1 && return 0
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
