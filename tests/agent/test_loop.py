"""The closed FDO loop, short (issue 5): sample -> fdod -> profiles -> builds.

A small workload (a hot loop over a few functions) is built here with
clang-16 and frame pointers, its symbols are uploaded to a real fdod on
loopback, it runs under `fdo-agent -- ./prog` for a few seconds, and the
profiles pulled back from fdod are consumed by the real tools:
`clang-16 -fprofile-sample-use` (no profile warnings) and `llvm-bolt -data`
(no stale or invalid profile). Both rebuilt binaries must print what the
original prints. No timing assertions: this checks the loop, not speedups.
"""
import os
import re
import shutil
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "ingest"))
from fdodtest import ROOT, FDOCTL, Daemon, build_id  # noqa: E402

AGENT = os.environ.get("FDO_AGENT") or os.path.join(ROOT, "build",
                                                    "fdo-agent")
CLANG = shutil.which("clang-16") or "/usr/bin/clang-16"
BOLT = "/usr/lib/llvm-16/bin/llvm-bolt"
CFLAGS = ["-O2", "-g", "-fdebug-info-for-profiling",
          "-fno-omit-frame-pointer"]

# Deterministic output for a given round count; argv[1] = rounds.
WORKLOAD = r"""
#include <stdio.h>
#include <stdlib.h>

#define N 4096
static unsigned table[N];

__attribute__((noinline)) static unsigned mix(unsigned x, unsigned i) {
    x ^= x >> 13;
    x *= 0x5bd1e995u;
    x ^= i + (x >> 15);
    return x;
}

__attribute__((noinline)) static unsigned classify(unsigned v) {
    if ((v & 7) == 0)
        return v / 3;
    if ((v & 7) < 3)
        return v * 5 + 1;
    if (v & 0x100)
        return v ^ 0xdeadbeefu;
    return v + 17;
}

__attribute__((noinline)) unsigned checksum(const unsigned *t, int n) {
    unsigned s = 0;
    for (int i = 0; i < n; i++)
        s = (s << 5) + s + t[i];
    return s;
}

static void fill(unsigned seed) {
    for (int i = 0; i < N; i++)
        table[i] = mix(seed, (unsigned)i);
}

int main(int argc, char **argv) {
    long rounds = argc > 1 ? atol(argv[1]) : 20000;
    unsigned acc = 1;
    fill(12345);
    for (long r = 0; r < rounds; r++) {
        for (int i = 0; i < N; i++) {
            unsigned v = mix(table[i], (unsigned)r);
            table[i] = classify(v);
        }
        if (r % 64 == 0)
            acc += checksum(table, N);
    }
    printf("%u %u\n", acc, checksum(table, N));
    return 0;
}
"""

PROFILE_WARNING = re.compile(
    r"profile|sample|-Wbackend-plugin|mismatch|stale", re.I)


def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert p.returncode == 0, "%s: exit %d\n%s%s" % (
        " ".join(map(str, cmd)), p.returncode, p.stdout, p.stderr)
    return p


@pytest.fixture
def daemon(tmp_path):
    with Daemon(tmp_path / "data") as d:
        yield d


def test_closed_loop_llvm_and_bolt(daemon, tmp_path):
    assert os.path.exists(AGENT), "build fdo-agent first (make)"
    assert os.path.exists(BOLT), "llvm-bolt missing (bolt-16)"
    src = tmp_path / "work.c"
    src.write_text(WORKLOAD)
    prog = str(tmp_path / "work")
    run([CLANG] + CFLAGS + ["-Wl,--emit-relocs", "-o", prog, str(src)])
    bid = build_id(prog)

    # A short reference run; the sampled run is longer.
    ref = run([prog, "300"]).stdout
    assert ref.strip()

    # 1. the release pipeline uploads the symbols; the shared libraries
    # the workload maps (libc) too, so that nothing stays pending
    libs = re.findall(r"=> (/\S+)", run(["ldd", prog]).stdout)
    run([FDOCTL, "upload", "--http", daemon.http, "--binary", "work", prog]
        + [os.path.realpath(l) for l in libs])

    # 2. the agent samples the workload, ~3 s
    p = subprocess.run([AGENT, "--url", daemon.url, "--interval", "1",
                        "--binary", "work", "--", prog, "80000"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    m = re.search(r"fdo-agent: summary: (.*)", p.stderr)
    assert m, p.stderr
    s = {k: int(v) for k, v in
         (kv.split("=") for kv in m.group(1).split())}
    assert s["samples_sent"] > 100, p.stderr
    assert s["batches_dropped"] == 0, p.stderr

    # 3. fdod has merged and symbolized everything
    daemon.wait_pending_zero(timeout=60)

    # 4. the build pipeline pulls its profiles
    llvm_prof = str(tmp_path / "work.prof")
    fdata = str(tmp_path / "work.fdata")
    run([FDOCTL, "pull", "work", "--http", daemon.http, "--format", "llvm",
         "--min-samples", "100", "-o", llvm_prof])
    run([FDOCTL, "pull", "work", "--http", daemon.http, "--format", "bolt",
         "--build-id", bid, "--min-samples", "100", "-o", fdata])
    # The default form is extbinary: llvm-profdata-16 gives its text.
    text = run(["llvm-profdata-16", "merge", "--sample", "--text", llvm_prof,
                "-o", "-"]).stdout
    for fn in ("main", "mix", "classify"):
        assert re.search(r"^%s:\d+:\d+" % fn, text, re.M), (fn, text[:2000])
    bolt_text = open(fdata).read()
    # counts=blocks (the default): the edges inferred on the binary's
    # code, as branch records (fall-throughs and calls included)
    assert not bolt_text.startswith("no_lbr"), bolt_text[:500]
    assert re.search(r"^1 classify/\d+ [0-9a-f]+ 1 classify/\d+ [0-9a-f]+ "
                     r"0 \d+$",
                     bolt_text, re.M), bolt_text[:2000]
    assert re.search(r"^1 main [0-9a-f]+ 1 mix/\d+ 0 0 \d+$", bolt_text,
                     re.M), bolt_text[:2000]
    nolbr = str(tmp_path / "work.nolbr")
    run([FDOCTL, "pull", "work", "--http", daemon.http, "--format", "bolt",
         "--build-id", bid, "--min-samples", "100", "--counts", "samples",
         "-o", nolbr])
    assert open(nolbr).read().startswith("no_lbr")

    # the LLVM profile is one llvm-profdata accepts
    run(["llvm-profdata-16", "show", "--sample", llvm_prof])

    # 5a. compile-time FDO: clang consumes the profile without complaint
    pgo = str(tmp_path / "work.pgo")
    c = run([CLANG] + CFLAGS + ["-fprofile-sample-use=" + llvm_prof,
                                "-o", pgo, str(src)])
    assert not PROFILE_WARNING.search(c.stderr), c.stderr
    assert run([pgo, "300"]).stdout == ref

    # 5b. post-link FDO: llvm-bolt consumes the .fdata on the exact binary,
    # in relocation mode and in place (-relocs=0, what docs/http.md advises
    # for a no_lbr profile)
    for mode, flags in (("reloc", ["-reorder-functions=hfsort"]),
                        ("inplace", ["-relocs=0"])):
        bolted = str(tmp_path / ("work.bolt-" + mode))
        # -stale-threshold=0: any function whose edges do not all match
        # BOLT's own CFG fails the run
        b = run([BOLT, prog, "-o", bolted, "-data=" + fdata,
                 "-reorder-blocks=ext-tsp", "-split-functions",
                 "-report-stale", "-stale-threshold=0"] + flags)
        out = b.stdout + b.stderr
        assert not re.search(r"stale|invalid|no valid profile|"
                             r"profile.*mismatch|error", out, re.I), out
        # the one object llvm-bolt ignores is [unknown], the callers
        # outside the binary
        m = re.search(r"profile for (\d+) objects was ignored", out)
        assert not m or m.group(1) == "1", out
        m = re.search(r"BOLT-INFO: (\d+) out of (\d+) functions in the "
                      r"binary \(([\d.]+)%\) have non-empty execution "
                      r"profile", out)
        assert m and int(m.group(1)) >= 3, out
        assert run([bolted, "300"]).stdout == ref, mode
