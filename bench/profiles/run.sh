#!/usr/bin/env bash
# bench/profiles/run.sh — what a profile pull costs fdod on a big store
# (bench/profiles/README.md, issue 22): time, extra peak RSS and CPU of
# pulls of every format, one at a time and 16 at once, beside the store's
# size, in one run.
#
#   bench/profiles/run.sh [--data DIR] [--elf PATH] [--seconds S]
#                         [--pushers P] [--fleet] [--pulls N]
#                         [--concurrent N] [--window W] [--dir DIR] [--keep]
#                         [--fdod PATH] [--ingest]
#
#   --data DIR   measure the store in DIR (e.g. kept by bench/ingest/run.sh
#                --keep --elf PATH); default: build one first by pushing
#                for --seconds (120) from --pushers (8) agents with
#                bench/ingest's pusher over --elf (default build/fdod)
#   --fleet      push as bench/ingest's --fleet (new stacks fall to 0.1%
#                after 5 minutes, a release every 10)
#   --pulls N    sequential pulls of each format (5); --concurrent N (16)
#   --fdod PATH  the fdod binary to measure (default build/fdod), e.g. an
#                older build against the same store
#   --ingest     2 agents keep pushing during the concurrent pulls (live
#                ingest changes the store while the profile is built)
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=bench/lib.sh
. bench/lib.sh

data="" elf=build/fdod seconds=120 pushers=8 fleet=0 pulls=5 conc=16
window=7d keep=0 ingest=0 base="${TMPDIR:-/tmp}"
usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
	case "$1" in
	--data) data="$2"; shift 2 ;;
	--elf) elf="$2"; shift 2 ;;
	--seconds) seconds="$2"; shift 2 ;;
	--pushers) pushers="$2"; shift 2 ;;
	--fleet) fleet=1; shift ;;
	--pulls) pulls="$2"; shift 2 ;;
	--concurrent) conc="$2"; shift 2 ;;
	--window) window="$2"; shift 2 ;;
	--dir) base="$2"; shift 2 ;;
	--keep) keep=1; shift ;;
	--fdod) export FDOD="$2"; shift 2 ;;
	--ingest) ingest=1; shift ;;
	-h|--help) usage; exit 0 ;;
	*) echo "bench/profiles: unknown argument $1" >&2; usage >&2; exit 2 ;;
	esac
done
[[ $pulls -ge 1 && $conc -ge 1 ]] || { echo "bench/profiles: --pulls and --concurrent must be >= 1" >&2; exit 2; }
if [[ ! -x build/fdod || ! -x build/fdoctl ]]; then
	echo "bench/profiles: build/fdod is missing: run make first" >&2
	exit 1
fi
if [[ ! -r $elf ]]; then
	echo "bench/profiles: --elf $elf is not readable" >&2
	exit 1
fi

tmp=$(mktemp -d "$base/fdod-bench-profiles.XXXXXX")
srv_pid=""
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
	if [[ -n $srv_pid ]]; then stop_pid "$srv_pid"; fi
	if [[ $keep -eq 1 ]]; then echo "bench/profiles: kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 143' TERM INT
read -r port hport < <(free_ports)
url="tcp://127.0.0.1:$port"
http="http://127.0.0.1:$hport"

# start_fdod runs build/fdod on DIR/data: point it at the store to measure.
if [[ -n $data ]]; then
	[[ -d $data/store ]] || { echo "bench/profiles: $data holds no store" >&2; exit 1; }
	ln -s "$(realpath "$data")" "$tmp/data"
fi
start_fdod bench/profiles "$tmp" "$url" "$http"
echo "bench/profiles: fdod pid $srv_pid, $http, data in $tmp/data"

metric() { # metric NAME: its value in /metrics (0 when absent)
	curl -fsS --max-time 30 "$http/metrics" |
		awk -v n="$1" '$1 == n { print $2; found = 1 } END { if (!found) print 0 }'
}


if [[ -z $data ]]; then
	build_ingest_programs pusher
	fl=()
	[[ $fleet -eq 1 ]] && fl=(--warmup 300 --release-every 600)
	echo "bench/profiles: pushing for $seconds s from $pushers agents over $elf"
	build/bench/pusher --url "$url" --pushers "$pushers" --seconds "$seconds" \
		--elf "$elf" --callgraph 4 --pid "$srv_pid" "${fl[@]}" >"$tmp/pusher.out"
	grep -E 'Stack messages/s|errors' "$tmp/pusher.out" || true
fi
build/fdoctl upload --http "$http" --binary bench-svc "$elf" >/dev/null
bid=$(readelf -n "$elf" | awk '/Build ID:/ { print $3; exit }')
[[ -n $bid ]] || { echo "bench/profiles: $elf has no build-id" >&2; exit 1; }

# Wait until everything is merged and the symbolizer has nothing queued
# (addresses of build-ids without symbols stay pending), at most 30 min.
echo "bench/profiles: waiting for merge and symbolization"
last="" same=0
for _ in $(seq 1800); do
	q=$(metric fdod_symbolizer_queued_build_ids)
	u=$(metric fdod_ingest_unmerged_batches)
	p=$(metric fdod_pending_addresses)
	if [[ $q == 0 && $u == 0 && $p == "$last" ]]; then
		same=$((same + 1))
		[[ $same -ge 3 ]] && break
	else
		same=0
	fi
	last=$p
	sleep 1
done

# Then until fdod is idle (at most 10 min): the merger computes the leaf
# and pair sums of the buckets that are over into table aggs between
# merges, so the pulls below measure a store whose closed buckets have
# their rows (an older fdod without that fill is idle at once, and its
# first compile-time pull computes and stores them).
ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$srv_pid/stat"; }
quiet_from=$(date +%s)
for _ in $(seq 600); do
	t0=$(ticks)
	sleep 1
	[[ $(( $(ticks) - t0 )) -le 2 ]] && break
done
echo "bench/profiles: fdod idle after $(( $(date +%s) - quiet_from )) s"

stacks=$(metric 'fdod_store_entries{table="stacks"}')
# Counts entries: table totals' entries over every binary (/v1/binaries
# "stacks"): distinct (bucket, stack) once compaction has made each bucket
# one run (store version 6: counts are runs, storage/counts.c).
counts=$(curl -fsS --max-time 60 "$http/v1/binaries" | python3 -c '
import json, sys
print(sum(b["stacks"] for b in json.load(sys.stdin)["binaries"]))')
used=$(metric fdod_store_used_bytes)
echo "bench/profiles: store: $stacks stacks, $counts counts entries, $used bytes used, $(metric fdod_pending_addresses) addresses pending"

cpu_ns() { # fdod's utime + stime, ns
	awk -v hz="$(getconf CLK_TCK)" '{ sub(/.*\) /, ""); print ($12 + $13) * 1e9 / hz }' "/proc/$srv_pid/stat"
}
kb() { awk -v f="$1:" '$1 == f { print $2 }' "/proc/$srv_pid/status"; }

# One pull: time, size, HTTP code, fdod's extra peak RSS (VmHWM is reset
# to the current RSS before it through clear_refs) and CPU time.
pull() { # pull FORMAT QUERY OUT
	local before c0 c1 res
	before=$(kb VmRSS)
	echo 5 >"/proc/$srv_pid/clear_refs"
	c0=$(cpu_ns)
	res=$(curl -sS --max-time 900 -o "$3" -w '%{http_code} %{time_total} %{size_download}' \
		"$http/v1/profiles/bench-svc?format=$1&window=$window$2") || res="000 0 0"
	c1=$(cpu_ns)
	echo "$1 $res $(( $(kb VmHWM) - before )) $(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')"
}

: >"$tmp/pulls.txt"
for f in llvm gcc bolt folded pprof; do
	q=""
	[[ $f == bolt ]] && q="&build_id=$bid"
	for i in $(seq "$pulls"); do
		pull "$f" "$q" "$tmp/out.$f" | tee -a "$tmp/pulls.txt"
	done
done

# A pull of each compile-time format once more after the store changed:
# after a batch of another binary was merged ("+other": the store's
# generation moved, so the pull builds again), then after a batch of
# bench-svc in the current bucket ("+bucket").
change_batch() { # change_batch AGENT BINARY BUILD-ID
	local now
	now=$(date +%s)
	printf 'agent %s\nseq %s\nhost %s-host\nbinary %s\nlabel bench=change\nevent cpu-clock\nperiod 1000\nweight 1\ntime %s %s\nmapping 0 %s 400000 2400000 0 /x\nstack 3 401000 402000\n' \
		"$1" "$now" "$1" "$2" "$((now - 10))" "$now" "$3" |
		build/fdoctl push --url "$url" - >/dev/null
	for _ in $(seq 300); do
		[[ $(metric fdod_ingest_unmerged_batches) == 0 ]] && break
		sleep 0.2
	done
}
for change in other bucket; do
	if [[ $change == other ]]; then
		change_batch change-other other-svc aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
	else
		change_batch change-bucket bench-svc "$bid"
	fi
	for f in llvm gcc bolt; do
		q=""
		[[ $f == bolt ]] && q="&build_id=$bid"
		pull "$f" "$q" "$tmp/out.$f" | sed "s/^$f /$f+$change /" | tee -a "$tmp/pulls.txt"
	done
done

# The same llvm pull from --concurrent clients at once: fdod's CPU time
# against one build's (the first llvm pull). A query no pull has asked yet
# (the text form), so that the cache holds nothing for it: the clients
# arrive while it is built and share that build (server/pcache.c).
ing_pid="" ing_rate=0
if [[ $ingest -eq 1 ]]; then
	# Live ingest: 2 agents push over the same ELF (other agent names, so
	# the store changes with every merge) from 5 s before the burst until
	# it ends; fdod's CPU rate over those 5 s is what ingest alone costs.
	build_ingest_programs pusher
	build/bench/pusher --url "$url" --pushers 2 --seconds 3600 --elf "$elf" \
		--callgraph 4 --agent-prefix live >"$tmp/ingest.out" 2>&1 &
	ing_pid=$!
	sleep 2
	i0=$(cpu_ns)
	sleep 5
	ing_rate=$(awk -v a="$i0" -v b="$(cpu_ns)" 'BEGIN { printf "%.3f", (b - a) / 5e9 }')
fi
b0=$(metric fdod_profile_builds_total)
c0=$(cpu_ns)
t0=$(date +%s.%N)
cpids=()
for i in $(seq "$conc"); do
	curl -sS --max-time 900 -o /dev/null -w '%{http_code}\n' \
		"$http/v1/profiles/bench-svc?format=llvm&window=$window&encoding=text" >"$tmp/conc.$i" &
	cpids+=($!)
done
wait "${cpids[@]}" || true  # not fdod, also a child
t1=$(date +%s.%N)
c1=$(cpu_ns)
if [[ -n $ing_pid ]]; then
	kill "$ing_pid" 2>/dev/null || true
	wait "$ing_pid" 2>/dev/null || true
fi
ok=$(cat "$tmp"/conc.* | grep -c '^200$' || true)
builds=$(awk -v a="$b0" -v b="$(metric fdod_profile_builds_total)" 'BEGIN { print b - a }')
echo "concurrent $conc $ok $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }') $(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }') $builds $ing_rate" | tee -a "$tmp/pulls.txt"

python3 - "$tmp/pulls.txt" "$stacks" "$counts" "$used" "$elf" "$bid" "$window" "$conc" <<'EOF'
import statistics, sys
path, stacks, counts, used, elf, bid, window, conc = sys.argv[1:9]
rows, concurrent = {}, None
for line in open(path):
    w = line.split()
    if w[0] == "concurrent":
        concurrent = (int(w[1]), int(w[2]), float(w[3]), float(w[4]), w[5], float(w[6]))
        continue
    rows.setdefault(w[0], []).append((w[1], float(w[2]), int(w[3]), int(w[4]), float(w[5])))
def met(ok):
    return "met" if ok else "NOT met"
print()
print(f"== profile pulls: store of {int(float(stacks)):,} stacks, {int(float(counts)):,} counts "
      f"entries, {float(used) / 2**20:,.0f} MiB used; {elf} ({bid}); window={window}")
print(f"  {'format':<7} {'HTTP':>5} {'build s':>8} {'CPU s':>7} {'repeat s':>9} "
      f"{'max s':>8} {'bytes':>12} {'extra RSS MiB':>14}  target")
one_cpu = None
for f, rs in rows.items():
    codes = ",".join(sorted({r[0] for r in rs}))
    times = [r[1] for r in rs]
    rss = max(r[3] for r in rs) / 1024
    cpu = rs[0][4]
    if f == "llvm":
        one_cpu = cpu
    rep = f"{statistics.median(times[1:]):>9.2f}" if len(times) > 1 else f"{'-':>9}"
    lim_t, lim_m = (1, 100) if f.split("+")[0] in ("llvm", "gcc", "bolt") else (5, 200)
    ok = codes == "200" and max(times) <= lim_t and rss <= lim_m
    print(f"  {f:<7} {codes:>5} {times[0]:>8.2f} {cpu:>7.2f} {rep} {max(times):>8.2f} "
          f"{rs[-1][2]:>12,} {rss:>14.0f}  <= {lim_t} s, <= {lim_m} MiB: {met(ok)}")
if concurrent and one_cpu:
    n, ok, wall, cpu, builds, ing_rate = concurrent
    live = ""
    if ing_rate > 0:
        # What ingest alone cost over the burst's time, taken out.
        cpu -= ing_rate * wall
        live = (f" while 2 agents pushed (their ingest, {ing_rate:.2f} "
                f"of a core over {wall:.1f} s, taken out)")
    ratio = cpu / one_cpu if one_cpu > 0 else float("inf")
    print(f"  {n} concurrent llvm pulls{live}: {ok} answered 200 in {wall:.1f} s, {builds} build(s); "
          f"fdod CPU {cpu:.2f} s = {ratio:.2f}x one build's  "
          f"(target <= 1.5x: {met(ratio <= 1.5 and ok == n)})")
print("""
  build s and CPU s: the first pull of each format (fdod builds it);
  repeat s: the median of the later ones, which share that build while
  the store is unchanged (fdod --profile-cache; any merge or symbolized
  address makes the next pull build again). max s is the slowest pull
  (with 5 pulls, the p99 is the max). Extra RSS is fdod's VmHWM during a
  pull over its VmRSS before it (reset through /proc/PID/clear_refs),
  mapped store pages included. llvm+other (gcc+other, bolt+other): one
  pull after a batch of another binary was merged (the store changed, so
  fdod builds again); +bucket: after a batch of bench-svc in the current
  bucket.""")
EOF
