"""Block counts inferred from IP samples against exact counts (issue 20).

A small program with loops, skewed and balanced branches and calls is built
with clang-16, sampled under fdo-agent into a real fdod, and its block
counts are read back from fdod's bolt profile (counts=blocks: the edges
inferred on the binary's own control-flow graph, aggregator/flow.c). The
same binary is run under `llvm-bolt -instrument` on the same input, which
counts every edge exactly. The metric is the weighted block overlap: both
sets of block counts normalised to sum to 1 over the blocks of the program
and the sum of the smaller of the two shares per block (1: the same
distribution). The inference must beat raw sample density (each block's
samples divided by its instruction count, fdod's counts=samples profile)
and reach a floor; the figures are printed.
"""
import collections
import os
import re
import shutil
import subprocess
import sys
import urllib.request

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "ingest"))
from fdodtest import FDOCTL, Daemon, build_id  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
AGENT = os.environ.get("FDO_AGENT") or os.path.join(ROOT, "build",
                                                    "fdo-agent")
CLANG = shutil.which("clang-16") or "/usr/bin/clang-16"
BOLT = "/usr/lib/llvm-16/bin/llvm-bolt"
MERGE = "/usr/lib/llvm-16/bin/merge-fdata"
CFLAGS = ["-O2", "-g", "-fdebug-info-for-profiling",
          "-fno-omit-frame-pointer", "-Wl,--emit-relocs"]

# Loops with different trip counts, a skewed and a balanced branch, a
# rarely taken path, and calls; deterministic for a given argument.
WORKLOAD = r"""
#include <stdio.h>
#include <stdlib.h>

#define N 2048
static unsigned data[N];

__attribute__((noinline)) static unsigned step(unsigned x) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return x;
}

__attribute__((noinline)) static unsigned digits(unsigned v) {
    unsigned n = 0;
    while (v) {
        n += v % 10;
        v /= 10;
    }
    return n;
}

__attribute__((noinline)) static unsigned pick(unsigned v) {
    if ((v & 15) == 0)             /* 1 in 16 */
        return digits(v);
    if (v & 1)                     /* about half */
        return v >> 3;
    if ((v & 0xffff) == 0x1234)    /* almost never */
        return v * 7;
    return v + 11;
}

/* recursive: its calls to itself enter it in its own unit */
__attribute__((noinline)) unsigned depth(unsigned v, int n) {
    return n ? depth(v * 3 + 1, n - 1) ^ (v >> 2) : v;
}

__attribute__((noinline)) unsigned sum(const unsigned *t, int n) {
    unsigned s = 0;
    for (int i = 0; i < n; i++)
        s += t[i] & 0xff;
    return s;
}

/* never runs unless asked: the profile symbol list makes it cold */
__attribute__((noinline)) unsigned rare(unsigned v) {
    return v * 2654435761u + (v >> 11);
}

int main(int argc, char **argv) {
    long rounds = argc > 1 ? atol(argv[1]) : 100;
    unsigned x = 12345, acc = 0;
    for (long r = 0; r < rounds; r++) {
        for (int i = 0; i < N; i++) {
            x = step(x);
            data[i] = pick(x);
        }
        if (r % 8 == 0)
            acc += sum(data, N);
        acc += depth(acc, 64);
    }
    if (argc > 2)
        acc = rare(acc);
    printf("%u\n", acc);
    return 0;
}
"""


def run(cmd, **kw):
    kw.setdefault("timeout", 300)
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert p.returncode == 0, "%s: exit %d\n%s%s" % (
        " ".join(map(str, cmd)), p.returncode, p.stdout, p.stderr)
    return p


def block_counts(fdata):
    """(function, block offset) -> count: the sum of the records into it
    (branches, fall-throughs, calls and entries into offset 0)."""
    counts = collections.defaultdict(float)
    for line in open(fdata):
        f = line.split()
        if len(f) != 8 or f[3] != "1":
            continue
        counts[(f[4], int(f[5], 16))] += float(f[7])
    return counts


def samples(nolbr):
    s = collections.defaultdict(float)
    for line in open(nolbr):
        f = line.split()
        if len(f) == 4 and f[0] == "1":
            s[(f[1], int(f[2], 16))] += float(f[3])
    return s


def instructions(binary):
    """function -> [(offset, is_nop)] from objdump."""
    out = run(["objdump", "-d", "--no-show-raw-insn", binary]).stdout
    res = collections.defaultdict(list)
    fn = base = None
    for line in out.splitlines():
        m = re.match(r"^([0-9a-f]+) <(.+)>:$", line)
        if m:
            fn, base = m.group(2), int(m.group(1), 16)
            continue
        m = re.match(r"^\s+([0-9a-f]+):\s+(\S+)", line)
        if m and fn:
            res[fn].append((int(m.group(1), 16) - base,
                            m.group(2).startswith("nop")))
    return res


def density(binary, blocks, samp):
    """Each block's samples over its instructions (no flow)."""
    ins = instructions(binary)
    dens = {}
    for fn in set(f for f, _ in blocks):
        il = ins.get(fn.split("/")[0], [])
        starts = sorted(set([0] + [o for f, o in blocks if f == fn]))
        for i, st in enumerate(starts):
            en = starts[i + 1] if i + 1 < len(starts) else 1 << 62
            n = sum(1 for o, nop in il if st <= o < en and not nop)
            s = sum(c for (f, o), c in samp.items()
                    if f == fn and st <= o < en)
            dens[(fn, st)] = s / n if n else 0.0
    return dens


def overlap(a, b, keys):
    ta = sum(a.get(k, 0) for k in keys) or 1
    tb = sum(b.get(k, 0) for k in keys) or 1
    return sum(min(a.get(k, 0) / ta, b.get(k, 0) / tb) for k in keys)


@pytest.fixture
def daemon(tmp_path):
    with Daemon(tmp_path / "data") as d:
        yield d


def test_inferred_block_counts_beat_sample_density(daemon, tmp_path):
    for tool in (AGENT, BOLT, MERGE, CLANG):
        assert os.path.exists(tool), "missing %s (make; bolt-16)" % tool
    src = tmp_path / "w.c"
    src.write_text(WORKLOAD)
    prog = str(tmp_path / "w")
    run([CLANG] + CFLAGS + ["-o", prog, str(src)])
    bid = build_id(prog)
    arg = "150000"

    run([FDOCTL, "upload", "--http", daemon.http, "--binary", "w", prog])
    p = subprocess.run([AGENT, "--url", daemon.url, "--interval", "1",
                        "--binary", "w", "--", prog, arg],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    daemon.wait_pending_zero(timeout=60)

    fdata, nolbr = str(tmp_path / "w.fdata"), str(tmp_path / "w.nolbr")
    for out, counts in ((fdata, "blocks"), (nolbr, "samples")):
        run([FDOCTL, "pull", "w", "--http", daemon.http, "--format", "bolt",
             "--build-id", bid, "--min-samples", "100", "--counts", counts,
             "-o", out])

    # exact counts of the same binary on the same input
    instr = str(tmp_path / "w.instr")
    run([BOLT, prog, "-instrument", "-o", instr,
         "-instrumentation-file=" + str(tmp_path / "exact"),
         "-instrumentation-file-append-pid"])
    run([instr, arg])
    dumps = [str(tmp_path / f) for f in os.listdir(tmp_path)
             if f.startswith("exact.") and f.endswith(".fdata")]
    assert dumps, os.listdir(tmp_path)
    exact_path = str(tmp_path / "exact.fdata")
    with open(exact_path, "w") as f:
        f.write(run([MERGE] + dumps).stdout)

    exact = block_counts(exact_path)
    inferred = block_counts(fdata)
    fns = {"step/1", "digits/1", "pick/1", "sum", "main", "depth"}
    keys = {k for k in set(exact) | set(inferred) if k[0] in fns}
    dens = density(prog, keys, samples(nolbr))
    got, base = overlap(exact, inferred, keys), overlap(exact, dens, keys)
    print("weighted block overlap with exact counts: inferred %.3f, "
          "sample density %.3f (%d blocks)" % (got, base, len(keys)))
    assert got > base, (got, base)
    assert got >= 0.6, (got, base)

    # The exact counts through fdod's own emitters (fdoctl emit): the bolt
    # form gives back the same block counts, the llvm form builds.
    back = str(tmp_path / "exact.rt.fdata")
    llvm = str(tmp_path / "exact.llvm")
    run([FDOCTL, "emit", "--elf", prog, "--fdata", exact_path, "--format",
         "bolt", "-o", back])
    run([FDOCTL, "emit", "--elf", prog, "--fdata", exact_path,
         "--encoding", "text", "-o", llvm])
    again = block_counts(back)
    assert overlap(exact, again, keys) > 0.99, overlap(exact, again, keys)
    run(["llvm-profdata-16", "show", "--sample", llvm])
    # One unit across functions: each function's share of the profile
    # within 3x of its share of the exact one (a unit that ran away, as a
    # recursive function's once did, takes the whole profile).
    inferred_llvm = str(tmp_path / "w.llvm")
    run([FDOCTL, "pull", "w", "--http", daemon.http, "--min-samples", "100",
         "--build-id", bid, "--encoding", "text", "-o", inferred_llvm])

    def shares(path):
        t = {m.group(1): int(m.group(2)) for m in re.finditer(
            r"^(\w+):(\d+):\d+$", open(path).read(), re.M)}
        return {k: v / sum(t.values()) for k, v in t.items()}
    want, have = shares(llvm), shares(inferred_llvm)
    for fn in ("pick", "step", "main"):
        assert fn in have and want[fn] / 3 < have[fn] < want[fn] * 3, \
            (fn, want, have)
    # depth, the recursive one, is what ran away (to the whole profile):
    # only an upper bound, 10x. Its exact share is 0.4% (about ten samples
    # of a run), and its inferred share is noise: 0.00095-0.00097 in 1 of
    # 6 runs with fdod 111a0dc and 1 of 4 with 2558544; with spread=3
    # (the balance may scale it by a third at the most) 0.0155 in a fresh
    # clone's make test at 4317487, 3.8x.
    print("depth share: inferred %.4f, exact %.4f" % (have.get("depth", 0),
                                                     want["depth"]))
    assert "depth" in have and have["depth"] < want["depth"] * 10, \
        ("depth", want, have)
    # Exact call counts reach the profile as call targets: main calls
    # pick once per element (150000 x 2048), as the records say.
    calls = [int(c) for c in re.findall(r"^\s+\d+(?:\.\d+)?: \d+ .*\bpick:(\d+)",
                                        open(llvm).read(), re.M)]
    assert calls == [150000 * 2048], calls
    c = run([CLANG] + CFLAGS + ["-fprofile-sample-use=" + llvm, "-o",
                                str(tmp_path / "w.exact"), str(src)])
    assert not re.search(r"profile|sample", c.stderr, re.I), c.stderr
    assert run([str(tmp_path / "w.exact"), "100"]).stdout == \
        run([prog, "100"]).stdout


def sampled(daemon, tmp_path, name, flags):
    """WORKLOAD built with flags as tmp_path/name, uploaded and run once
    under fdo-agent as binary name; returns (source, program)."""
    src = tmp_path / "w.c"
    src.write_text(WORKLOAD)
    prog = str(tmp_path / name)
    run([CLANG] + flags + ["-o", prog, str(src)])
    run([FDOCTL, "upload", "--http", daemon.http, "--binary", name, prog])
    p = subprocess.run([AGENT, "--url", daemon.url, "--interval", "1",
                        "--binary", name, "--", prog, "100000"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    daemon.wait_pending_zero(timeout=60)
    return src, prog


def test_spread_bounds_the_units_of_the_balance(daemon, tmp_path):
    """spread=1 lets no function's unit move: the profile of balance=0;
    the default (3) moves classify's; spread=0 is refused."""
    _src, _prog = sampled(daemon, tmp_path, "wsp", CFLAGS)

    def pull(*opts):
        out = str(tmp_path / ("wsp%d.llvm" % len(os.listdir(tmp_path))))
        run([FDOCTL, "pull", "wsp", "--http", daemon.http, "--min-samples",
             "100", "--encoding", "text", "-o", out] + list(opts))
        return open(out).read()
    off, one = pull("--balance", "0"), pull("--spread", "1")
    assert off == one
    assert pull() != off
    p = subprocess.run([FDOCTL, "pull", "wsp", "--http", daemon.http,
                        "--spread", "0", "-o", str(tmp_path / "x")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0 and "spread" in p.stderr, p.stderr


def test_probe_based_profile_from_a_probed_build(daemon, tmp_path):
    """A binary built with -fpseudo-probe-for-profiling gets a probe-based
    profile (counts keyed by probe, !CFGChecksum per function and inlined
    instance), which llvm-profdata-16 reads and writes and clang-16 takes
    for a probed build without a warning."""
    flags = CFLAGS + ["-fpseudo-probe-for-profiling"]
    src, prog = sampled(daemon, tmp_path, "wp", flags)
    prof = str(tmp_path / "wp.prof")
    run([FDOCTL, "pull", "wp", "--http", daemon.http, "--min-samples",
         "100", "--encoding", "text", "-o", prof])
    text = open(prof).read()
    assert re.search(r"^ !CFGChecksum: \d+$", text, re.M), text[:1000]
    assert re.search(r"^_ZL4pick\S*__uniq\S*:\d+:\d+$", text, re.M), \
        text[:1000]
    show = run(["llvm-profdata-16", "show", "--sample", prof]).stdout
    assert "CFG checksum" in show, show[:1000]
    run(["llvm-profdata-16", "merge", "--sample", "--extbinary", prof,
         "-o", str(tmp_path / "wp.extbin")])
    out = str(tmp_path / "wp.spgo")
    c = run([CLANG] + flags + ["-fprofile-sample-use=" + prof, "-o", out,
                               str(src)])
    assert not re.search(r"profile|sample|checksum", c.stderr, re.I), \
        c.stderr
    assert run([out, "100"]).stdout == run([prog, "100"]).stdout

    # The default encoding (extbinary) carries the checksums in its
    # function metadata: the same profile, and clang takes it the same way.
    ext = str(tmp_path / "wp.ext")
    run([FDOCTL, "pull", "wp", "--http", daemon.http, "--min-samples",
         "100", "-o", ext])
    assert open(ext, "rb").read(10) == EXT_MAGIC
    back = str(tmp_path / "wp.ext.txt")
    run(["llvm-profdata-16", "merge", "--sample", "--text", ext, "-o", back])
    assert open(back).read() == text
    c = run([CLANG] + flags + ["-fprofile-sample-use=" + ext, "-S",
                               "-emit-llvm", "-o", "-", str(src)])
    assert not re.search(r"profile|sample|checksum", c.stderr, re.I), \
        c.stderr
    assert re.search(r"define .*@main\(.*!prof ", c.stdout), \
        "clang did not apply the profile to main"


def test_exact_counts_of_a_probed_build_make_a_probe_profile(tmp_path):
    """fdoctl emit of a probed build's exact counts (llvm-bolt
    -instrument) writes a probe-based profile (the exact-count ceiling of
    bench/fdo's probe variant): checksums, the exact number of calls of a
    function as its head, and a build clang-16 takes without a word."""
    flags = CFLAGS + ["-fpseudo-probe-for-profiling"]
    src = tmp_path / "w.c"
    src.write_text(WORKLOAD)
    prog = str(tmp_path / "wp")
    run([CLANG] + flags + ["-o", prog, str(src)])
    instr = str(tmp_path / "wp.instr")
    run([BOLT, prog, "-instrument", "-o", instr,
         "-instrumentation-file=" + str(tmp_path / "exact.fdata")])
    run([instr, "1000"])
    prof = str(tmp_path / "wp.prof")
    run([FDOCTL, "emit", "--elf", prog, "--fdata",
         str(tmp_path / "exact.fdata"), "--encoding", "text", "-o", prof])
    text = open(prof).read()
    assert re.search(r"^ !CFGChecksum: \d+$", text, re.M), text[:1000]
    # step() runs 2048 times a round, 1000 rounds: its entry probe (1)
    # and its head are exactly that.
    m = re.search(r"^_ZL4step\S*:(\d+):(\d+)\n 1: (\d+)$", text, re.M)
    assert m, text[:2000]
    assert int(m.group(2)) == 2048000 and int(m.group(3)) == 2048000, \
        m.group(0)
    show = run(["llvm-profdata-16", "show", "--sample", prof]).stdout
    assert "CFG checksum" in show, show[:1000]
    c = run([CLANG] + flags + ["-fprofile-sample-use=" + prof, "-o",
                               str(tmp_path / "wp.exact"), str(src)])
    assert not re.search(r"profile|sample|checksum", c.stderr, re.I), \
        c.stderr


GCC = shutil.which("gcc-12") or "/usr/bin/gcc-12"


def test_every_format_of_a_blocks_profile_is_accepted(daemon, tmp_path):
    """Profiles with block counts (the default) as their consumers take
    them: the llvm profile of a clang-16 binary through llvm-profdata-16
    show and merge --extbinary and a clang-16 build without warnings; the
    gcc profile of a gcc-12 binary through gcc-12 -fauto-profile without a
    warning; both rebuilt programs print what the original prints."""
    assert os.path.exists(GCC), "gcc-12 missing (deploy/install-deps.sh)"
    src = tmp_path / "w.c"
    src.write_text(WORKLOAD)
    progs = {"wclang": [CLANG] + CFLAGS,
             "wgcc": [GCC, "-O2", "-g", "-fno-omit-frame-pointer"]}
    for name, cc in progs.items():
        prog = str(tmp_path / name)
        run(cc + ["-o", prog, str(src)])
        run([FDOCTL, "upload", "--http", daemon.http, "--binary", name,
             prog])
        p = subprocess.run([AGENT, "--url", daemon.url, "--interval", "1",
                            "--binary", name, "--", prog, "100000"],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
    daemon.wait_pending_zero(timeout=60)
    ref = run([str(tmp_path / "wclang"), "100"]).stdout

    llvm = str(tmp_path / "w.llvm")
    run([FDOCTL, "pull", "wclang", "--http", daemon.http, "--min-samples",
         "100", "--encoding", "text", "-o", llvm])
    assert re.search(r"^_?pick\S*:\d+:\d+$", open(llvm).read(), re.M)
    run(["llvm-profdata-16", "show", "--sample", llvm])
    run(["llvm-profdata-16", "merge", "--sample", "--extbinary", llvm, "-o",
         str(tmp_path / "w.extbin")])
    out = str(tmp_path / "w.clang.spgo")
    c = run([CLANG] + CFLAGS + ["-fprofile-sample-use=" + llvm, "-o", out,
                                str(src)])
    assert not re.search(r"profile|sample", c.stderr, re.I), c.stderr
    assert run([out, "100"]).stdout == ref

    gcov = str(tmp_path / "w.gcov")
    run([FDOCTL, "pull", "wgcc", "--http", daemon.http, "--format", "gcc",
         "--min-samples", "100", "-o", gcov])
    out = str(tmp_path / "w.gcc.afdo")
    g = run([GCC, "-O2", "-g", "-fauto-profile=" + gcov, "-o", out,
             str(src)])
    assert not re.search(r"profile|auto|warning", g.stderr, re.I), g.stderr
    assert run([out, "100"]).stdout == ref


EXT_MAGIC = bytes([0x84, 0xe4, 0xd0, 0xb1, 0xf4, 0xc9, 0x94, 0xa8, 0x53, 103])


def test_default_llvm_profile_is_extbinary_with_the_symbol_list(daemon,
                                                                tmp_path):
    """The default llvm profile is LLVM's extbinary form: the very bytes
    llvm-profdata-16 writes from the text form and the same symbol list,
    which lists the binary's functions without samples, so that clang-16
    builds them as cold (entry count 0, .text.unlikely) where the text form
    leaves them unknown; served as application/octet-stream."""
    src, prog = sampled(daemon, tmp_path, "we", CFLAGS)

    ext, text = str(tmp_path / "we.ext"), str(tmp_path / "we.txt")
    run([FDOCTL, "pull", "we", "--http", daemon.http, "--min-samples",
         "100", "-o", ext])
    run([FDOCTL, "pull", "we", "--http", daemon.http, "--min-samples",
         "100", "--encoding", "text", "-o", text])
    got = open(ext, "rb").read()
    assert got[:10] == EXT_MAGIC, got[:16]
    with urllib.request.urlopen(daemon.http + "/v1/profiles/we?format=llvm",
                                timeout=30) as r:
        assert r.headers["Content-Type"] == "application/octet-stream"
        assert r.read() == got
    show = run(["llvm-profdata-16", "show", "--sample",
                "--show-prof-sym-list", ext]).stdout
    syms = show.split("======== Dump profile symbol list ========\n")[1]
    names = syms.split()
    assert "rare" in names and "main" not in names, names
    # The symbol list leaves out what the profile names (clang would keep
    # those unknown anyway); llvm-profdata writes the same bytes.
    sl = str(tmp_path / "syms.txt")
    with open(sl, "w") as f:
        f.write(syms)
    ref = str(tmp_path / "we.ref")
    run(["llvm-profdata-16", "merge", "--sample", "--extbinary",
         "--prof-sym-list=" + sl, text, "-o", ref])
    assert open(ref, "rb").read() == got

    def entry(profile, fn):
        ir = run([CLANG] + CFLAGS + ["-fprofile-sample-use=" + profile,
                                     "-S", "-emit-llvm", "-o", "-",
                                     str(src)])
        assert not re.search(r"profile|sample", ir.stderr, re.I), ir.stderr
        m = re.search(r"define [^\n]*@%s\([^\n]*!prof !(\d+)" % fn,
                      ir.stdout)
        if not m:
            return None
        m = re.search(r"^!%s = !\{!\"function_entry_count\", i64 (-?\d+)\}"
                      % m.group(1), ir.stdout, re.M)
        return int(m.group(1)) if m else None

    assert entry(ext, "rare") == 0
    assert entry(text, "rare") in (None, -1)
    assert entry(ext, "main") not in (None, -1, 0)
    out = str(tmp_path / "we.spgo")
    run([CLANG] + CFLAGS + ["-fprofile-sample-use=" + ext, "-o", out,
                            str(src)])
    assert run([out, "100", "x"]).stdout == run([prog, "100", "x"]).stdout
