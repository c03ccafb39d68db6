#!/usr/bin/python3
r"""bench/stale/bench.py — a pull with for_build_id= on fdod's own binary.

    /usr/bin/python3 bench/stale/bench.py [--old build/fdod]
        [--new build/bench-stale/fdod] [--functions 400] [--rounds 3]
        [--save FILE]

Release N is --old (fdod as built, -O2 -g), release N+1 is --new (the same
sources at -O1 -g: every function's code differs, the worst case for the
matcher). A fresh fdod (the --old binary itself) gets samples over the
first --functions functions of release N (by symbol order, 10 each),
both files uploaded; then for each round the pull
`GET /v1/profiles/fdod?min_samples=1&for_build_id=<N+1>` with a new
`window=` each round (a distinct pull: the profile cache does not answer
it). Printed per round: wall seconds, fdod's CPU seconds for the pull
(utime+stime from /proc/PID/stat, before and after), and from the debug
log each release's shapes as held and at the scan's peak (what counts in
the memory budget's builds part), the fresh/matched/renamed/dropped
functions, and fdod's VmHWM at the end. The machine may be shared: CPU
seconds are the figure to compare, not wall. Nothing here asserts.

A larger binary (docs/operations.md quotes both): any ELF file with a
GNU build-id and DWARF as --old and, as --new, a copy of it with another
build-id (every function fresh; the shapes as large as for a real next
release), e.g.

    python3 - <<'E'
    d = open("/usr/local/bin/docker", "rb").read()
    i = bytes.fromhex("da1a37c32a771b5e1a85004739b6584d271065a6")
    open("/tmp/docker2", "wb").write(d.replace(i, i[:-1] + b"\xa7"))
    E
    chmod +x /tmp/docker2
    bench/stale/run.sh --old /usr/local/bin/docker --new /tmp/docker2 \
        --rounds 1

(the build-id from `readelf -n`). A real next release of a large
program: Go's compiler built as is and without inlining, each with a
GNU build-id (Go writes none unless asked; go is /usr/lib/go-1.19/bin/go
here):

    go build -ldflags="-B 0x$(head -c20 /dev/urandom | xxd -p)" \
        -o /tmp/gc1 cmd/compile
    go build -gcflags=all=-l \
        -ldflags="-B 0x$(head -c20 /dev/urandom | xxd -p)" \
        -o /tmp/gc2 cmd/compile
    bench/stale/run.sh --old /tmp/gc1 --new /tmp/gc2 --functions 2000

--save writes the last answer, to check
that a change to the matcher keeps its answers (cmp against the file
written by the fdod before it: FDOD=that-binary picks the daemon).
"""
import argparse
import os
import re
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "ingest"))
from fdodtest import Daemon, batch_text, build_id, symbols, \
    vaddr_to_offset  # noqa: E402

START = 0x555555554000


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", default=os.path.join(ROOT, "build", "fdod"))
    ap.add_argument("--new", default=os.path.join(ROOT, "build",
                                                  "bench-stale", "fdod"))
    ap.add_argument("--functions", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--save", help="write the last round's profile here "
                    "(to compare two versions of fdod's answers)")
    a = ap.parse_args()
    old, new = os.path.abspath(a.old), os.path.abspath(a.new)
    print("release N   %s (%s, %d bytes)" % (old, build_id(old),
                                             os.path.getsize(old)))
    print("release N+1 %s (%s, %d bytes)" % (new, build_id(new),
                                             os.path.getsize(new)))
    tmp = tempfile.mkdtemp(prefix="bench-stale-")
    with Daemon(os.path.join(tmp, "data"),
                extra=["--log-level", "debug"]) as d:
        syms = sorted((v[0], n) for n, v in symbols(old).items()
                      if v[1] > 16)[:a.functions]
        stacks = [(10, [START + vaddr_to_offset(old, addr + 4)])
                  for addr, _ in syms]
        # the mapping covers the whole file (a large --old too)
        limit = START + ((os.path.getsize(old) + 0xfff) & ~0xfff)
        rc, out = d.push(batch_text("bench", 1, "fdod", build_id(old),
                                    stacks, limit=limit))
        assert rc == 0, out
        for exe in (old, new):
            with open(exe, "rb") as f:
                st, body = d.request("PUT", "/v1/symbols?binary=fdod",
                                     f.read(), timeout=600)
                assert st == 201, body
        d.wait_pending_zero()
        print("%d functions sampled" % len(stacks))
        print("%-6s %8s %8s" % ("round", "wall_s", "cpu_s"))
        for r in range(a.rounds):
            c0, t0 = cpu_seconds(d.proc.pid), time.monotonic()
            st, body = d.request(
                "GET", "/v1/profiles/fdod?min_samples=1&window=%dd&"
                "for_build_id=%s" % (1000 + r, build_id(new)), timeout=1200)
            t1, c1 = time.monotonic(), cpu_seconds(d.proc.pid)
            assert st == 200, body[:300]
            print("%-6d %8.2f %8.2f" % (r + 1, t1 - t0, c1 - c0))
            if a.save:
                with open(a.save, "wb") as f:
                    f.write(body)
        log = d.read_log()
        for m in re.finditer(r"stale: shapes of .*/(\w+)/executable: (\d+) "
                             r"functions, (\d+) bytes \((\d+) at the "
                             r"scan's peak\)", log):
            print("shapes %s...: %s functions, %.2f MB held, %.2f MB at "
                  "the peak" % (m.group(1)[:12], m.group(2),
                                int(m.group(3)) / 1e6,
                                int(m.group(4)) / 1e6))
        for m in re.finditer(r"stale: (\d+ fresh, .* dropped functions)",
                             log):
            print("matching: " + m.group(1))
            break
        with open("/proc/%d/status" % d.proc.pid) as f:
            hwm = [x for x in f.read().splitlines()
                   if x.startswith("VmHWM")]
        print("fdod " + " ".join(hwm[0].split()))


if __name__ == "__main__":
    main()
