#!/usr/bin/env bash
# bench/ingest/run.sh — the ingest benchmark (bench/ingest/README.md):
# builds the pusher and the LMDB ceiling into build/bench/, starts
# build/fdod on a fresh data directory and free 127.0.0.1 ports, pushes
# realistic batches from P concurrent agents for a fixed time, then the same
# stacks as OTLP/HTTP profiles from Q pushers for as long (same fdod), then
# runs the LMDB ceiling with the keys and commit size fdod achieved with
# the batches, and prints a summary table with the targets and both paths.
# Exit 0 unless something broke (fdod died, an Ack or answer was missing
# or not a success, a build failed).
#
#   bench/ingest/run.sh [--seconds S] [--pushers P] [--stacks N] [--depth N]
#                       [--new-pct PCT] [--ceiling-max-seconds S] [--rmw]
#                       [--perf] [--dir DIR] [--keep] [--stub]
#                       [--fleet] [--warmup S] [--steady-new-pct PCT]
#                       [--release-every S] [--release-stacks N] [--window S]
#                       [--callgraph K] [--elf PATH]
#                       [--otlp Q] [--otlp-values] [--otlp-plain] [--tokens]
#                       [--fdod PATH]
#   --fleet = --warmup 300 --steady-new-pct 0.1 --release-every 600
#             --release-stacks 200000 --callgraph 4 --otlp 0 (a fleet after
#             warm-up; README)
#   --otlp Q = OTLP/HTTP pushers of the second phase (default P; 0: none)
#   --tokens = fdod with a token file; both paths send an ingest token
#   --fdod PATH = the fdod binary to measure (default build/fdod)
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

seconds=20 pushers=8 stacks=1000 depth=20 new_pct=5 ceil_max=30
rmw=0 perf=0 keep=0 stub=0 base="${TMPDIR:-/tmp}"
warmup=0 steady_pct=0.1 release_every=0 release_stacks=200000 window=300
callgraph=0 elf="" otlp="" otlp_values=0 otlp_plain=0
tokens=0
usage() { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
	case "$1" in
	--seconds) seconds="$2"; shift 2 ;;
	--pushers) pushers="$2"; shift 2 ;;
	--stacks) stacks="$2"; shift 2 ;;
	--depth) depth="$2"; shift 2 ;;
	--new-pct) new_pct="$2"; shift 2 ;;
	--ceiling-max-seconds) ceil_max="$2"; shift 2 ;;
	--rmw) rmw=1; shift ;;
	--perf) perf=1; shift ;;
	--dir) base="$2"; shift 2 ;;
	--keep) keep=1; shift ;;
	--stub) stub=1; shift ;;
	--fleet) warmup=300 steady_pct=0.1 release_every=600
		release_stacks=200000 callgraph=4 otlp=${otlp:-0}; shift ;;
	--otlp) otlp="$2"; shift 2 ;;
	--otlp-values) otlp_values=1; shift ;;
	--otlp-plain) otlp_plain=1; shift ;;
	--tokens) tokens=1; shift ;;
	--fdod) export FDOD="$2"; shift 2 ;;
	--callgraph) callgraph="$2"; shift 2 ;;
	--elf) elf="$2"; shift 2 ;;
	--warmup) warmup="$2"; shift 2 ;;
	--steady-new-pct) steady_pct="$2"; shift 2 ;;
	--release-every) release_every="$2"; shift 2 ;;
	--release-stacks) release_stacks="$2"; shift 2 ;;
	--window) window="$2"; shift 2 ;;
	-h|--help) usage; exit 0 ;;
	*) echo "bench/ingest: unknown argument $1" >&2; usage >&2; exit 2 ;;
	esac
done
otlp=${otlp:-$pushers}
# The stand-in speaks nng only.
[[ $stub -eq 1 ]] && otlp=0

# --- build -------------------------------------------------------------------
build_ingest_programs pusher lmdb_ceiling stub_rep
if [[ $stub -eq 0 && ! -x ${FDOD:-build/fdod} ]]; then
	echo "bench/ingest: ${FDOD:-build/fdod} is missing: run make first" >&2
	exit 1
fi

# --- start the server ----------------------------------------------------------
tmp=$(mktemp -d "$base/fdod-bench-ingest.XXXXXX")
srv_pid="" perf_pid="" token_args=()
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
	if [[ -n $perf_pid ]]; then kill -INT "$perf_pid" 2>/dev/null || true; fi
	if [[ -n $srv_pid ]]; then stop_pid "$srv_pid"; fi
	if [[ $keep -eq 1 ]]; then
		echo "bench/ingest: kept $tmp"
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT

read -r port hport < <(free_ports)
url="tcp://127.0.0.1:$port"
http="http://127.0.0.1:$hport"

status_json() { bench_get "$http/v1/status"; }
json_get() { # json_get FILE a.b.c
	python3 -c 'import json,sys
v=json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."): v=v[k]
print(v)' "$1" "$2"
}

fs=$(df -T "$tmp" | awk 'NR==2 {print $2 " on " $1 " (" $7 ")"}')
if [[ $stub -eq 1 ]]; then
	echo "bench/ingest: --stub: measuring a stand-in server, NOT fdod (plumbing check only)"
	build/bench/stub_rep --listen "$url" --max-seconds $((seconds + 120)) \
		>"$tmp/server.log" 2>&1 &
	srv_pid=$!
	sleep 0.5
else
	# The OTLP pushers' resource attributes become the labels the
	# native batches carry (build/bench/pusher: OTLP_ATTRS).
	attrs=process.executable.name=binary,host.name=host
	attrs+=,mode=label:mode,region=label:region,shard=label:shard
	fdod_args=(--otlp-attributes "$attrs")
	if [[ $tokens -eq 1 ]]; then
		# One token for the pushers and this script's /v1/status.
		BENCH_TOKEN=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
		(umask 077 && echo "$BENCH_TOKEN ingest,read bench" >"$tmp/tokens")
		fdod_args+=(--tokens "$tmp/tokens")
		token_args=(--token "$BENCH_TOKEN")
	fi
	# More fdod flags for a comparison (e.g. --memory-budget 4G), split
	# at spaces.
	read -r -a extra <<<"${BENCH_FDOD_ARGS:-}"
	fdod_args+=("${extra[@]}")
	start_fdod bench/ingest "$tmp" "$url" "$http" "${fdod_args[@]}"
	status_json >"$tmp/status0.json"
fi
echo "bench/ingest: server ${FDOD:-build/fdod}, pid $srv_pid, $url, data in $tmp ($fs)"

# --perf: perf_start PHASE records fdod over the next $seconds;
# perf_show PHASE waits for it and prints fdod's top functions and threads.
perf_start() {
	[[ $perf -eq 1 ]] || return 0
	perf record -q -e cpu-clock -g -p "$srv_pid" -o "$tmp/perf-$1.data" \
		-- sleep "$seconds" >/dev/null 2>&1 &
	perf_pid=$!
}
perf_show() {
	local d=$tmp/perf-$1.data
	if [[ -n $perf_pid ]]; then
		wait "$perf_pid" 2>/dev/null || true
		perf_pid=""
	fi
	[[ $perf -eq 1 && -s $d ]] || return 0
	echo
	echo "bench/ingest: where the server's CPU went, $1 (perf, cpu-clock, self time):"
	perf report -i "$d" --stdio --no-children -g none \
		--sort dso,sym >"$d.sym" 2>/dev/null || true
	grep '%' "$d.sym" | grep -v '^#' | head -25 || true
	echo "bench/ingest: by thread:"
	perf report -i "$d" --stdio --no-children -g none \
		--sort pid >"$d.tid" 2>/dev/null || true
	grep '%' "$d.tid" | grep -v '^#' | head -12 || true
}

# --- push ----------------------------------------------------------------------
perf_start native
rc=0
build/bench/pusher --url "$url" --pushers "$pushers" --seconds "$seconds" \
	--stacks "$stacks" --depth "$depth" --new-pct "$new_pct" \
	--warmup "$warmup" --steady-new-pct "$steady_pct" \
	--release-every "$release_every" --release-stacks "$release_stacks" \
	--window "$window" --callgraph "$callgraph" --elf "$elf" \
	--pid "$srv_pid" "${token_args[@]}" | tee "$tmp/pusher.out" || rc=1
if ! kill -0 "$srv_pid" 2>/dev/null; then
	echo "bench/ingest: the server died; its log:" >&2
	tail -20 "$tmp/server.log" >&2
	srv_pid=""
	exit 1
fi
perf_show native
res() { sed -n 's/^RESULT //p' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
P=$tmp/pusher.out
if [[ -z $(res "$P" batches) ]]; then
	echo "bench/ingest: the pusher printed no result" >&2
	exit 1
fi

# Commits during the run, from fdod's own counters.
commits="" ingested=""
if [[ $stub -eq 0 ]] && status_json >"$tmp/status1.json" 2>/dev/null; then
	commits=$(($(json_get "$tmp/status1.json" ingest.commits) -
		$(json_get "$tmp/status0.json" ingest.commits)))
	ingested=$(($(json_get "$tmp/status1.json" ingest.batches) -
		$(json_get "$tmp/status0.json" ingest.batches)))
	used=$(json_get "$tmp/status1.json" store.used_bytes)
fi

# --- the OTLP/HTTP phase ---------------------------------------------------------
# The same workload (other stacks and build-ids, from other hosts) as
# OTLP/HTTP profiles on the same fdod, after the native phase, so each
# path has the machine to itself; fdod's commits over it from /v1/status.
O=$tmp/pusher-otlp.out
otlp_commits="" otlp_ingested=""
if [[ $otlp -gt 0 ]]; then
	echo
	otlp_args=(--otlp "$http")
	[[ $otlp_values -eq 1 ]] && otlp_args+=(--otlp-values)
	[[ $otlp_plain -eq 1 ]] && otlp_args+=(--no-otlp-gzip)
	perf_start otlp
	build/bench/pusher "${otlp_args[@]}" --agent-prefix bench-otlp \
		--pushers "$otlp" --seconds "$seconds" --stacks "$stacks" \
		--depth "$depth" --new-pct "$new_pct" --window "$window" \
		--callgraph "$callgraph" --elf "$elf" --pid "$srv_pid" \
		"${token_args[@]}" | tee "$O" || rc=1
	if ! kill -0 "$srv_pid" 2>/dev/null; then
		echo "bench/ingest: the server died in the OTLP phase; its log:" >&2
		tail -20 "$tmp/server.log" >&2
		srv_pid=""
		exit 1
	fi
	perf_show otlp
	if [[ -z $(res "$O" batches) ]]; then
		echo "bench/ingest: the OTLP pusher printed no result" >&2
		exit 1
	fi
	if status_json >"$tmp/status2.json" 2>/dev/null; then
		otlp_commits=$(($(json_get "$tmp/status2.json" ingest.commits) -
			$(json_get "$tmp/status1.json" ingest.commits)))
		otlp_ingested=$(($(json_get "$tmp/status2.json" ingest.batches) -
			$(json_get "$tmp/status1.json" ingest.batches)))
		used=$(json_get "$tmp/status2.json" store.used_bytes)
	fi
fi

# Stop the server before the ceiling, so the two never share the CPUs or
# the disk; a clean stop is part of what is checked.
kill -TERM "$srv_pid"
for _ in $(seq 100); do
	kill -0 "$srv_pid" 2>/dev/null || break
	sleep 0.1
done
if kill -0 "$srv_pid" 2>/dev/null; then
	echo "bench/ingest: the server did not stop within 10 s of SIGTERM" >&2
	rc=1
else
	st=0
	wait "$srv_pid" || st=$?
	# The stand-in has no signal handler; fdod must exit 0 on SIGTERM.
	if [[ $st -ne 0 && ! ($stub -eq 1 && $st -eq 143) ]]; then
		echo "bench/ingest: the server exited with status $st" >&2
		rc=1
	fi
	srv_pid=""
fi

# --- ceiling -------------------------------------------------------------------
keys=$(res "$P" stacks)
if [[ -n $commits && $commits -gt 0 ]]; then
	kpt=$((keys / commits))
	kpt_note="fdod's figure: $keys Stack messages / $commits commits"
else
	kpt=$((stacks * pushers))
	kpt_note="assumed: one batch per pusher per commit (no commit count from the server)"
fi
[[ $kpt -lt 1 ]] && kpt=1
ceil_args=(--dir "$tmp/ceiling" --keys "$keys" --keys-per-txn "$kpt"
	--new-pct "$new_pct" --max-seconds "$ceil_max")
[[ $rmw -eq 1 ]] && ceil_args+=(--rmw)
echo
echo "bench/ingest: the ceiling: $keys durable puts, $kpt per transaction ($kpt_note)"
build/bench/lmdb_ceiling "${ceil_args[@]}" | tee "$tmp/ceiling.out" || rc=1
C=$tmp/ceiling.out

# --- summary -------------------------------------------------------------------
python3 - "$P" "$C" "$pushers" "$seconds" "$stacks" "$depth" "${commits:-}" \
	"${ingested:-}" "${used:-}" "$stub" "$window" "$O" "$otlp" \
	"${otlp_commits:-}" "${otlp_ingested:-}" "$otlp_values" "$otlp_plain" <<'EOF'
import os, sys
def result(path):
    if not os.path.exists(path):
        return {}
    for line in open(path):
        if line.startswith("RESULT "):
            return {k: float(v) for k, v in
                    (kv.split("=", 1) for kv in line.split()[1:])}
    return {}
p, c = result(sys.argv[1]), result(sys.argv[2])
pushers, seconds, stacks, depth = sys.argv[3:7]
commits, ingested, used, stub, window = sys.argv[7:12]
o, otlp, o_commits, o_ingested = result(sys.argv[12]), *sys.argv[13:16]
o_values, o_plain = sys.argv[16] == "1", sys.argv[17] == "1"
w = p["window_s"]
stk, smp, frm = p["stacks"] / w, p["samples"] / w, p["frames"] / w
def row(name, value, target="", verdict=""):
    print(f"  {name:<36} {value:>22}  {target:<16} {verdict}")
def met(ok):
    return "met" if ok else "NOT met"
who = "stand-in (NOT fdod)" if stub == "1" else "fdod"
print()
print(f"== ingest summary: {who}, {pushers} pushers x {stacks} stacks x "
      f"{depth} frames, {seconds} s, " +
      ("durable acks" if stub != "1" else "acks WITHOUT storage"))
row("metric", "measured", "target", "")
row("acknowledged Stack messages/s", f"{stk:,.0f}", ">= 1,000,000", met(stk >= 1e6))
row("acknowledged samples (sum counts)/s", f"{smp:,.0f}")
row("frames/s", f"{frm:,.0f}")
row("acknowledged batches/s", f"{p['batches'] / w:,.1f}")
row("Ack latency p99", f"{p['p99_ms']:.1f} ms", "< 100 ms", met(p["p99_ms"] < 100))
row("Ack latency p50 / max", f"{p['p50_ms']:.1f} / {p['max_ms']:.1f} ms")
if p.get("windows", 1) > 1:
    row(f"slowest {window}-s window, Stack msgs/s", f"{p['win_min_stacks_s']:,.0f}",
        ">= 1,000,000", met(p["win_min_stacks_s"] >= 1e6))
    row(f"worst {window}-s window, Ack p99", f"{p['win_max_p99_ms']:.1f} ms",
        "< 100 ms", met(p["win_max_p99_ms"] < 100))
if p.get("anon_max_kb", -1) >= 0:
    row(f"{who} RssAnon, largest once a second", f"{p['anon_max_kb'] / 1024:.0f} MiB",
        "<= 1024 MiB", met(p["anon_max_kb"] <= 1 << 20))
    if p.get("windows", 1) > 1:
        row(f"{who} RssAnon growth after warm-up", f"{p['anon_growth_kb'] / 1024:+.0f} MiB",
            "flat")
if p.get("releases", 0) > 0:
    row("releases (new build-id, new stacks)", f"{p['releases']:.0f}")
row("errors (missing or non-0 Acks)", f"{p['errors']:.0f}", "0", met(p["errors"] == 0))
row("batches resent after a closed connection", f"{p.get('resends', 0):.0f}")
row("batches resent after a BUSY Ack (memory budget)", f"{p.get('busy', 0):.0f}")
row(f"{who} CPU", f"{p['fdod_cpu_s']:.1f} s = {100 * p['fdod_cpu_s'] / w:.0f}% of a core")
row(f"{who} CPU per acknowledged batch",
    f"{1e6 * p['fdod_cpu_s'] / max(p['batches'], 1):,.0f} us")
row(f"{who} peak RSS (VmHWM)", f"{p['fdod_hwm_kb'] / 1024:.1f} MiB")
if p.get("fdod_anon_kb", -1) >= 0:
    row(f"{who} RSS at the end: heap / mapped files",
        f"{p['fdod_anon_kb'] / 1024:.0f} / {p['fdod_file_kb'] / 1024:.0f} MiB")
row("pusher CPU (batch building)", f"{p['pusher_cpu_s']:.1f} s ({p['build_cpu_s']:.1f} s)")
row("machine busy / iowait", f"{p['machine_busy_pct']:.0f}% / {p['iowait_pct']:.0f}% of {p['ncpu']:.0f} CPUs")
other = p["machine_busy_pct"] / 100 * p["ncpu"] * w - p["fdod_cpu_s"] - p["pusher_cpu_s"]
row("CPU used by anything else", f"{other:.1f} s = {100 * other / w:.0f}% of a core",
    "", "(noisy run: compare within it)" if other / w > 0.25 else "")
if commits:
    n = int(commits)
    row("fdod commits / batches per commit", f"{n} / {int(ingested) / max(n, 1):.1f}")
    row("fdod commits/s", f"{n / w:.1f}")
if used:
    row("fdod store used", f"{int(used) / 1048576:.1f} MiB")
if c:
    row("LMDB ceiling keys/s", f"{c['keys_per_s']:,.0f}" + (" (partial)" if c["partial"] else ""))
    row("LMDB ceiling txn/s", f"{c['txn_per_s']:.1f}")
    row("LMDB ceiling commit p50 / p99", f"{c['commit_p50_ms']:.1f} / {c['commit_p99_ms']:.1f} ms")
    row("ratio vs ceiling (Stack msgs/keys)", f"{stk / c['keys_per_s']:.2f}")
if o:
    ow = o["window_s"]
    print()
    print(f"== native batches and OTLP/HTTP profiles, the same stacks, one "
          f"phase after the other on the same fdod ({seconds} s each)")
    print(f"  {'':<36} {'native (nng)':>16} {'OTLP/HTTP':>16}  OTLP/native")
    def both(name, a, b, fmt="{:,.0f}", ratio=True):
        r = f"{b / a:.2f}" if ratio and a else ""
        print(f"  {name:<36} {fmt.format(a):>16} {fmt.format(b):>16}  {r}")
    both("pushers", float(pushers), float(otlp), ratio=False)
    both("acknowledged samples (sum counts)/s", smp, o["samples"] / ow)
    both("acknowledged stacks/s", stk, o["stacks"] / ow)
    both("acknowledged batches (requests)/s", p["batches"] / w,
         o["batches"] / ow, "{:,.1f}")
    both("latency p50 (ms)", p["p50_ms"], o["p50_ms"], "{:.1f}")
    both("latency p99 (ms)", p["p99_ms"], o["p99_ms"], "{:.1f}")
    both("latency max (ms)", p["max_ms"], o["max_ms"], "{:.1f}")
    both("errors", p["errors"], o["errors"], ratio=False)
    both("resends", p.get("resends", 0), o.get("resends", 0), ratio=False)
    both("KiB per batch sent", p["kib"], o["kib"], "{:.1f}")
    both("fdod CPU per batch (ms)", 1e3 * p["fdod_cpu_s"] / max(p["batches"], 1),
         1e3 * o["fdod_cpu_s"] / max(o["batches"], 1), "{:.2f}")
    both("fdod CPU (% of a core)", 100 * p["fdod_cpu_s"] / w,
         100 * o["fdod_cpu_s"] / ow, ratio=False)
    both("pusher CPU per batch (ms)", 1e3 * p["pusher_cpu_s"] / max(p["batches"], 1),
         1e3 * o["pusher_cpu_s"] / max(o["batches"], 1), "{:.2f}")
    both("machine busy (% of all CPUs)", p["machine_busy_pct"],
         o["machine_busy_pct"], ratio=False)
    if commits and o_commits:
        both("fdod batches per commit", int(ingested) / max(int(commits), 1),
             int(o_ingested) / max(int(o_commits), 1), "{:.1f}")
    samples = "values" if o_values else "a timestamp per sample"
    size = f"{o['raw_kib']:.0f} KiB" + ("" if o_plain else
                                        " before gzip, gzip")
    print(f"""
  OTLP/HTTP: an ExportProfilesServiceRequest per batch, shaped like the
  OpenTelemetry eBPF profiler's (ELF-vaddr mapping with a GNU build-id,
  {samples}, {size}), POSTed to /v1development/profiles;
  acknowledged = answered 200 with every sample accepted (the JSON
  answer's samples.accepted), latency = POST to answer.""")
print("""
  The ceiling is LMDB alone doing the counts-table puts fdod had to do (one
  per acknowledged Stack message: 20-byte key, 24-byte value), with fdod's
  commit size, durable, on the same disk, with fdod stopped. fdod does more
  per commit (stacks, pending addresses, dedup records, reading the old
  counts) and also receives, decodes, validates and normalizes every batch,
  so a ratio near 1 means ingest costs little beyond the storage engine;
  a low ratio points at work before the store (see the CPU figures).""")
EOF
exit $rc
