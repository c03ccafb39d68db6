#!/usr/bin/env bash
# deploy/demo.sh — `make demo`: fdod end to end on its embedded store.
#
# What runs today (the sampling agent and the profile emitters come with
# later issues, and the demo grows with them):
#   1. start fdod on ./var/demo (loopback ports),
#   2. build a small program and push samples of it in the text batch form
#      BEFORE its symbols exist (they wait as pending addresses),
#   3. upload its symbols over HTTP; fdod symbolizes the pending addresses,
#   4. show /v1/status, the binary's figures and the resolved addresses,
#   5. stop fdod (SIGTERM: everything acknowledged is committed).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DEMO=$ROOT/var/demo
FDOD=$ROOT/build/fdod
FDOCTL=$ROOT/build/fdoctl
NNG_PORT=${DEMO_NNG_PORT:-17470}
HTTP_PORT=${DEMO_HTTP_PORT:-17471}
HTTP=http://127.0.0.1:$HTTP_PORT
URL=tcp://127.0.0.1:$NNG_PORT

rm -rf "$DEMO"
mkdir -p "$DEMO/work"
echo "== starting fdod on $DEMO (agents: $URL, HTTP: $HTTP)"
"$FDOD" --data "$DEMO/data" --listen "$URL" --http "$HTTP" \
	>"$DEMO/fdod.log" 2>&1 &
FDOD_PID=$!
trap 'kill $FDOD_PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do
	curl -fsS "$HTTP/v1/status" >/dev/null 2>&1 && break
	sleep 0.1
done
curl -fsS "$HTTP/v1/status" >/dev/null

echo "== building the demo program"
cat >"$DEMO/work/demo.c" <<'EOF'
#include <stdio.h>
static unsigned table[4096];
__attribute__((noinline)) static unsigned hash_step(unsigned h, unsigned x)
{
	return (h ^ x) * 16777619u;
}
__attribute__((noinline)) unsigned lookup(unsigned key)
{
	unsigned h = 2166136261u;
	for (int i = 0; i < 16; i++)
		h = hash_step(h, key >> i);
	return table[h & 4095];
}
int main(void)
{
	unsigned s = 0;
	for (unsigned i = 0; i < 4096; i++)
		table[i] = i * 2654435761u;
	for (unsigned i = 0; i < 1000000; i++)
		s += lookup(i);
	printf("%u\n", s);
	return 0;
}
EOF
gcc -O2 -g -fno-omit-frame-pointer -o "$DEMO/work/demo" "$DEMO/work/demo.c"
BID=$(readelf -n "$DEMO/work/demo" | awk '/Build ID/ {print $3}')
echo "   build-id $BID"

# Runtime addresses as a PIE mapped at 0x555555554000 would have them.
START=0x555555554000
addr() { # byte offset into the function (kept inside it), function name
	local v size off
	read -r v size < <(nm -S "$DEMO/work/demo" |
		awk -v f="$2" '$4 == f || index($4, f ".") == 1 {print $1, $2; exit}')
	off=$(( $1 < 0x$size ? $1 : 0x$size - 1 ))
	printf '%x' $((START + 0x$v + off))
}
LEAF=$(addr 6 hash_step)
MID=$(addr 20 lookup)
TOP=$(addr 30 main)

echo "== pushing samples before the symbols exist"
for seq in 1 2 3; do
	cat >"$DEMO/work/batch$seq.txt" <<EOF
agent   demo-host/agent
seq     $seq
host    demo-host
binary  demo
label   mode=serving
event   cpu-clock
period  1000000
weight  2.5
time    $(( $(date +%s) - 60 )) $(date +%s)
mapping 0 $BID 555555554000 555555600000 0 /usr/bin/demo
stack   $((100 * seq)) $LEAF $MID $TOP
stack   $((30 * seq)) $MID $TOP
EOF
	"$FDOCTL" push --url "$URL" "$DEMO/work/batch$seq.txt"
done
echo "-- the same batch again is counted once:"
"$FDOCTL" push --url "$URL" "$DEMO/work/batch1.txt"
echo "-- pending addresses, waiting for symbols:"
curl -fsS "$HTTP/v1/status" | /usr/bin/python3 -c \
	'import json,sys; s=json.load(sys.stdin); print(json.dumps(s["pending"], indent=1))'

echo "== uploading symbols"
curl -fsS -X PUT --data-binary @"$DEMO/work/demo" "$HTTP/v1/symbols?binary=demo"
for _ in $(seq 100); do
	n=$(curl -fsS "$HTTP/v1/status" | /usr/bin/python3 -c \
		'import json,sys; print(json.load(sys.stdin)["pending"]["total"])')
	[ "$n" = 0 ] && break
	sleep 0.1
done

echo "== the binary, as build pipelines will see it"
curl -fsS "$HTTP/v1/binaries/demo" | /usr/bin/python3 -m json.tool
echo "== resolved addresses (delayed symbolization)"
curl -fsS "$HTTP/v1/symcache/$BID" | /usr/bin/python3 -c '
import json, sys
for a in json.load(sys.stdin)["addresses"]:
    chain = " <- ".join("%s %s:%d" % (f["function"], f["file"].split("/")[-1],
                                        f["line"]) for f in a["frames"])
    print("  offset 0x%x: %s" % (a["offset"], chain))'

echo "== fdoctl symbolize on libc (index persisted for the next run)"
LIBC=$(ldd "$DEMO/work/demo" | awk '/libc.so/ {print $3}')
"$FDOCTL" symbolize --elf "$LIBC" --cache-dir "$DEMO/cache" \
	0x$(nm -D "$LIBC" | awk '$3 ~ /^malloc(@|$)/ {print $1; exit}')

echo "== stopping fdod"
kill -TERM $FDOD_PID
wait $FDOD_PID
trap - EXIT
echo "demo done; the store, the log and the inputs are under $DEMO"
