#!/usr/bin/python3
"""bench/symbolize/bench.py — fdoctl symbolize vs llvm-symbolizer-16 vs eu-addr2line.

    /usr/bin/python3 bench/symbolize/bench.py [--libc-addrs 100000] [--eu-max 3000] [--out FILE]

Binaries: libc.so.6 (with its libc6-dbg debug file; 100,000 instruction
addresses sampled with a fixed seed) and the largest gcc and clang programs
of the symbolization corpus (tests/symbolize/corpus.py builds them; all of
their instruction addresses). For each tool and binary, whole processes,
addresses on stdin in one batch, output to a file:

  addr/s     warm: the page cache holds the files and, for fdoctl, the
             persisted index from a previous run exists (FDOD_CACHE_DIR)
  first      time to the first answer for a binary never seen: a process
             given one address; for fdoctl with an empty cache directory, so
             the index build is included. Median of 3.
  peak RSS   ru_maxrss of the warm run, taken by rusage_run.c (a small
             parent, so no resident size is inherited from Python)
  ??%        answers whose location is ??:0 (unresolved), for judging rates

eu-addr2line resolves each address separately (about 10^2-10^4 addr/s), so
it gets the first --eu-max addresses only; its rate is measured on those.
Ratios are against llvm-symbolizer; the targets are printed beside them:
addr/s >= 5x, first answer <= 1x, RSS <= 1x. Nothing here asserts.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "symbolize"))
import corpus  # noqa: E402


def helper():
    """Build bench/symbolize/rusage_run.c into build/bench/ (once)."""
    src = os.path.join(HERE, "rusage_run.c")
    exe = os.path.join(ROOT, "build", "bench", "rusage_run")
    if not os.path.exists(exe) or os.path.getmtime(exe) < os.path.getmtime(src):
        os.makedirs(os.path.dirname(exe), exist_ok=True)
        subprocess.run(["gcc", "-O2", "-o", exe, src], check=True)
    return exe


def timed(cmd, addrs, env=None):
    """Run cmd with addrs on stdin; return (seconds, peak RSS KiB, exit status, output)."""
    with tempfile.TemporaryDirectory(prefix="fdod-bench-io-") as d:
        fin, fout = os.path.join(d, "in"), os.path.join(d, "out")
        with open(fin, "w") as fh:
            fh.write("".join(f"0x{a:x}\n" for a in addrs))
        p = subprocess.run([helper(), fin, fout] + cmd, stdout=subprocess.PIPE, text=True, env=env,
                           check=True)
        secs, rss, rc = p.stdout.split()
        with open(fout, errors="replace") as fh:
            out = fh.read()
    return float(secs), int(rss), int(rc), out


class Tool:
    def __init__(self, name, limit=None):
        self.name, self.limit = name, limit

    def cmd(self, b):
        raise NotImplementedError

    def env(self, cache):
        return None


class Fdoctl(Tool):
    def __init__(self, path):
        super().__init__("fdoctl symbolize")
        self.path = path

    def cmd(self, b):
        c = [self.path, "symbolize", "--elf", b.elf]
        return c + (["--debug-file", b.debug_file] if b.debug_file else [])

    def env(self, cache):
        return dict(os.environ, FDOD_CACHE_DIR=cache)


class Llvm(Tool):
    def __init__(self):
        super().__init__("llvm-symbolizer-16")

    def cmd(self, b):
        return ["llvm-symbolizer-16", "--inlining", "--obj=" + b.elf]


class EuAddr2line(Tool):
    def __init__(self, limit):
        super().__init__("eu-addr2line -f -i", limit)

    def cmd(self, b):
        # libdwfl finds libc's debug file under /usr/lib/debug/.build-id itself.
        return ["eu-addr2line", "-f", "-i", "-e", b.elf]


def measure(tool, b, addrs):
    addrs = addrs[:tool.limit] if tool.limit else addrs
    res = {"n": len(addrs)}
    firsts = []
    for i in range(3):
        with tempfile.TemporaryDirectory(prefix="fdod-bench-") as cache:
            dt, _, rc, _ = timed(tool.cmd(b), addrs[:1], tool.env(cache))
            firsts.append(dt)
            if rc != 0:
                res["error"] = f"exit {rc}"
    res["first"] = statistics.median(firsts)
    with tempfile.TemporaryDirectory(prefix="fdod-bench-") as cache:
        timed(tool.cmd(b), addrs, tool.env(cache))  # warm the page cache; build the index
        dt, rss, rc, out = timed(tool.cmd(b), addrs, tool.env(cache))
    if rc != 0:
        res["error"] = f"exit {rc}"
    res["rate"] = len(addrs) / dt
    res["unknown"] = sum(1 for l in out.splitlines() if l.startswith("??:0")) / len(addrs)
    res["rss"] = rss
    res["secs"] = dt
    return res


def fmt_rate(r):
    return f"{r / 1000:8.1f}k" if r >= 1000 else f"{r:9.0f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--libc-addrs", type=int, default=100000)
    ap.add_argument("--eu-max", type=int, default=3000)
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "bench", "symbolize.txt"))
    a = ap.parse_args()

    fd = os.environ.get("FDOCTL") or os.path.join(ROOT, "build", "fdoctl")
    tools = [Llvm(), EuAddr2line(a.eu_max)]
    if os.access(fd, os.X_OK):
        tools.insert(0, Fdoctl(fd))
    else:
        print(f"bench/symbolize: {fd} is missing (run `make build/fdoctl`); peers only", file=sys.stderr)

    bins = corpus.build()
    libc = corpus.libc_binary()
    targets = []
    if libc:
        targets.append((libc, corpus.addresses(libc.elf, a.libc_addrs, seed=42)))
    else:
        print("bench/symbolize: libc6-dbg is missing (deploy/install-deps.sh); skipping libc", file=sys.stderr)
    for prefix in ("c-gcc-", "c-clang-"):
        cands = [b for n, b in bins.items() if n.startswith(prefix) and b.elf == b.oracle]
        big = max(cands, key=lambda b: len(corpus.all_instructions(b.elf)))
        targets.append((big, corpus.addresses(big.elf, 10 ** 9, seed=42)))

    lines = []

    def emit(s=""):
        print(s, flush=True)
        lines.append(s)

    emit(f"symbolize bench — {time.strftime('%Y-%m-%d %H:%M:%S')}, {os.cpu_count()} cpus")
    emit(f"{'binary':22} {'tool':20} {'addrs':>7} {'addr/s':>10} {'first ms':>9} {'RSS MiB':>8} {'??%':>5}"
         f"   {'x llvm addr/s':>13} {'first/llvm':>10} {'RSS/llvm':>9}")
    for b, addrs in targets:
        results = {}
        for t in tools:
            results[t.name] = measure(t, b, addrs)
        ref = results["llvm-symbolizer-16"]
        for t in tools:
            r = results[t.name]
            ratio = (f"   {r['rate'] / ref['rate']:12.2f}x {r['first'] / ref['first']:9.2f}x "
                     f"{r['rss'] / ref['rss']:8.2f}x")
            if isinstance(t, Fdoctl):
                ok = lambda c: "ok" if c else "MISS"
                ratio += (f"   targets: >=5x {ok(r['rate'] >= 5 * ref['rate'])}, "
                          f"first <=1x {ok(r['first'] <= ref['first'])}, RSS <=1x {ok(r['rss'] <= ref['rss'])}")
            emit(f"{b.name[:22]:22} {t.name:20} {r['n']:7} {fmt_rate(r['rate']):>10} {1000 * r['first']:9.1f} "
                 f"{r['rss'] / 1024:8.1f} {100 * r['unknown']:5.1f}{ratio}" + (f"  [{r['error']}]" if "error" in r else ""))
        emit()
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    print(f"(written to {a.out})")


if __name__ == "__main__":
    main()
