#!/usr/bin/env python3
"""Block counts inferred from samples against exact counts, on the
benchmark's real programs (issue 20, item 3's metric at full size).

After `bench/fdo/run.sh --exact` (which leaves WORK/run/fdod/data, fdod's
store with every program's samples, and WORK/run/PROG/exact/exact.fdata,
base's exact edge counts from `llvm-bolt -instrument` on the same training
set), this starts fdod (build/fdod, or --fdod) on a copy of that store,
pulls each program's bolt profile of base with counts=blocks (the inferred
flow, plus each --query) and counts=samples, and compares each with the
exact counts:

- overlap: both sets of block counts normalised to sum to 1 over every
  block either one names, then the sum over blocks of the smaller share
  (1 = the same distribution); "density" is the samples of each block over
  its instructions, what samples say without any flow;
- branch error: for every block with two or more successors in the exact
  counts, the total variation distance between the exact and the inferred
  split of its count among its successors, weighted by its exact count.

Nothing is timed; it takes a minute. Usage:

  bench/fdo/blocks.py --work var/bench-fdo [--programs perl,gawk]
                      [--query NAME=K=V&K=V]... [--fdod PATH]
"""
import argparse
import bisect
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fdobench  # noqa: E402


def records(path):
    """[(from fn, from off, to fn, to off, count)] of an fdata file in
    branch form (no_lbr files have none)."""
    out = []
    with open(path, errors="replace") as f:
        for line in f:
            p = line.split()
            if len(p) != 8 or p[0] != "1" or p[3] != "1":
                continue
            try:
                out.append((p[1], int(p[2], 16), p[4], int(p[5], 16), float(p[7])))
            except ValueError:
                continue
    return out


def block_counts(recs):
    """(function, block start) -> the records into it (branches,
    fall-throughs, calls and entries into offset 0)."""
    c = collections.defaultdict(float)
    for _, _, tf, to, n in recs:
        c[(tf, to)] += n
    return c


def splits(recs, starts):
    """(function, block start) -> {target: count} of the edges inside one
    function out of each block (the block holding the record's source)."""
    s = collections.defaultdict(lambda: collections.defaultdict(float))
    for ff, fo, tf, to, n in recs:
        if ff != tf:
            continue
        st = starts.get(ff)
        if not st:
            continue
        i = bisect.bisect_right(st, fo) - 1
        if i < 0:
            continue
        s[(ff, st[i])][to] += n
    return s


def overlap(a, b, keys):
    ta = sum(a.get(k, 0) for k in keys) or 1
    tb = sum(b.get(k, 0) for k in keys) or 1
    return sum(min(a.get(k, 0) / ta, b.get(k, 0) / tb) for k in keys)


def branch_error(exact, inferred):
    num = den = 0.0
    for blk, tgt in exact.items():
        if len(tgt) < 2:
            continue
        w = sum(tgt.values())
        got = inferred.get(blk, {})
        g = sum(got.values())
        if g <= 0:
            tv = 1.0  # nothing inferred: as far as a split can be
        else:
            keys = set(tgt) | set(got)
            tv = 0.5 * sum(abs(tgt.get(k, 0) / w - got.get(k, 0) / g) for k in keys)
        num += w * tv
        den += w
    return num / den if den else float("nan")


def density(binary, keys, samp):
    """Each block's samples over its instructions (no flow)."""
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", binary],
                         capture_output=True, text=True, check=True).stdout
    ins = collections.defaultdict(list)
    fn = base = None
    for line in out.splitlines():
        m = re.match(r"^([0-9a-f]+) <(.+)>:$", line)
        if m:
            fn, base = m.group(2), int(m.group(1), 16)
            continue
        m = re.match(r"^\s+([0-9a-f]+):\s+(\S+)", line)
        if m and fn:
            ins[fn].append((int(m.group(1), 16) - base, m.group(2).startswith("nop")))
    per_fn = collections.defaultdict(list)
    for f, o in keys:
        per_fn[f].append(o)
    sfn = collections.defaultdict(list)
    for (f, o), c in samp.items():
        sfn[f].append((o, c))
    dens = {}
    for f, offs in per_fn.items():
        il = ins.get(f.split("/")[0], [])
        st = sorted(set([0] + offs))
        for i, s in enumerate(st):
            e = st[i + 1] if i + 1 < len(st) else 1 << 62
            n = sum(1 for o, nop in il if s <= o < e and not nop)
            c = sum(c for o, c in sfn.get(f, ()) if s <= o < e)
            dens[(f, s)] = c / n if n else 0.0
    return dens


def nolbr_samples(path):
    s = collections.defaultdict(float)
    with open(path, errors="replace") as f:
        for line in f:
            p = line.split()
            if len(p) == 4 and p[0] == "1":
                s[(p[1], int(p[2], 16))] += float(p[3])
    return s


def base_binary(work, name):
    """base's binary of the last run: results.json's, else the newest
    finished build of it in the cache."""
    try:
        with open(os.path.join(work, "results.json")) as f:
            v = json.load(f)["programs"][name]["variants"]["base"]
        if v.get("binary") and os.path.exists(v["binary"]):
            return v["binary"]
    except (OSError, KeyError, ValueError):
        pass
    d = os.path.join(work, "bin", name)
    c = [os.path.join(d, e) for e in os.listdir(d) if e.startswith("base.")] \
        if os.path.isdir(d) else []
    c = [e for e in c if os.path.exists(os.path.join(e, "flags.txt"))]
    if not c:
        return None
    e = max(c, key=os.path.getmtime)
    b = [os.path.join(e, f) for f in os.listdir(e)
         if os.path.isfile(os.path.join(e, f)) and os.access(os.path.join(e, f), os.X_OK)]
    return b[0] if len(b) == 1 else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default="var/bench-fdo",
                    help="the benchmark's work directory (run with --exact)")
    ap.add_argument("--programs", help="comma-separated (default: every program with "
                    "exact counts in WORK)")
    ap.add_argument("--query", action="append", default=[], metavar="NAME=QUERY",
                    help="also the inferred counts pulled with QUERY appended "
                    "(e.g. 'nobal=balance=0'); repeatable")
    ap.add_argument("--fdod", default=fdobench.FDOD, help="the fdod binary (%(default)s)")
    a = ap.parse_args()
    work = os.path.abspath(a.work)
    data = os.path.join(work, "run", "fdod", "data")
    if not os.path.isdir(data):
        sys.exit("blocks.py: no fdod store at %s (run bench/fdo/run.sh --exact first)" % data)
    names = (a.programs.split(",") if a.programs else
             sorted(n for n in os.listdir(os.path.join(work, "run"))
                    if os.path.exists(os.path.join(work, "run", n, "exact", "exact.fdata"))))
    queries = [("blocks", "")]
    for q in a.query:
        n, _, v = q.partition("=")
        if not n or not v:
            sys.exit("blocks.py: --query wants NAME=QUERY, got %r" % q)
        queries.append((n, v))

    tmp = tempfile.mkdtemp(prefix="fdod-blocks-")
    fdobench.FDOD = a.fdod
    try:
        # A consistent copy of the store also while the benchmark's fdod
        # runs (fdoctl backup --data: one LMDB read transaction); symbols
        # are immutable files.
        subprocess.run([fdobench.FDOCTL, "backup", "--data", data, os.path.join(tmp, "data")],
                       check=True, capture_output=True)
        shutil.copytree(os.path.join(data, "symbols"), os.path.join(tmp, "data", "symbols"))
        f = fdobench.Fdod(tmp)
        rows = []
        try:
            for name in names:
                exact = os.path.join(work, "run", name, "exact", "exact.fdata")
                base = base_binary(work, name)
                if not base or not os.path.exists(exact):
                    print("%s: no base binary or exact counts in %s: skipped" % (name, work))
                    continue
                bid = fdobench.build_id(base)
                ex = records(exact)
                ec = block_counts(ex)
                got = {}
                for qn, q in queries:
                    url = ("/v1/profiles/%s?format=bolt&build_id=%s&counts=blocks&min_samples=1"
                           % (name, bid)) + ("&" + q if q else "")
                    path = os.path.join(tmp, "%s.%s.fdata" % (name, qn))
                    with open(path, "wb") as fh:
                        fh.write(f.get(url, raw=True))
                    got[qn] = records(path)
                spath = os.path.join(tmp, "%s.nolbr" % name)
                with open(spath, "wb") as fh:
                    fh.write(f.get("/v1/profiles/%s?format=bolt&build_id=%s&counts=samples"
                                   "&min_samples=1" % (name, bid), raw=True))
                starts = collections.defaultdict(set)
                for recs in [ex] + list(got.values()):
                    for _, _, tf, to, _ in recs:
                        starts[tf].add(to)
                st = {k: sorted(v | {0}) for k, v in starts.items()}
                esplit = splits(ex, st)
                keys = set(ec)
                for recs in got.values():
                    keys |= set(block_counts(recs))
                dens = density(base, keys, nolbr_samples(spath))
                row = [name, "%.3f" % overlap(ec, dens, keys)]
                for qn, _ in queries:
                    row += ["%.3f" % overlap(ec, block_counts(got[qn]), keys),
                            "%.3f" % branch_error(esplit, splits(got[qn], st))]
                rows.append(row)
                print("  ".join(row), flush=True)
        finally:
            f.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    head = ["program", "density"]
    for qn, _ in queries:
        head += [qn + " overlap", qn + " branch error"]
    w = [max(len(str(r[i])) for r in [head] + rows) for i in range(len(head))]
    print()
    for r in [head] + rows:
        print("  ".join(str(c).ljust(w[i]) for i, c in enumerate(r)))


if __name__ == "__main__":
    main()
