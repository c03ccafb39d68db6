"""tests/symbolize/test_symbolize.py — `fdoctl symbolize` against llvm-symbolizer-16.

Run:  /usr/bin/python3 -m pytest -q tests/symbolize/test_symbolize.py
      (FDOCTL=path overrides build/fdoctl; the corpus is built on first use
      into build/symcorpus/ and reused while its sources are unchanged)

Cases:
  test_agreement[binary-style]  every corpus binary and libc, LLVM and JSON
                                style: >= 99.9% of 10,000 instruction addresses
                                identical or equal-by-rule (see symdiff.py)
  test_no_demangle              --no-demangle against llvm-symbolizer --no-demangle
  test_file_offsets             --file-offsets OFF answers like the vaddr of OFF
  test_stdin_equals_argv        addresses on argv == the same on stdin
  test_address_radix_as_llvm    an address without 0x is read as llvm-symbolizer-16
                                reads it (leading 0 octal, else decimal; "2ce5" echoed)
  test_debug_file_*             --debug-file for a stripped binary alone;
                                .gnu_debuglink beside the binary; libc found by
                                build-id under /usr/lib/debug
  test_stripped_without_debug   no debug info anywhere: answers, never fails
  test_persisted_index*         the index lands in FDOD_CACHE_DIR, is reused,
                                and a corrupt or truncated one still answers right
  test_error_*                  missing, non-ELF, empty, directory --elf: a
                                non-zero exit and a message naming the file

The full per-binary report (every difference class, up to 20 examples each)
is rewritten to build/symdiff/report.txt after each agreement case.
"""
import os
import shutil
import subprocess
import sys
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import corpus  # noqa: E402
import symdiff  # noqa: E402

REPORT = os.path.join(corpus.ROOT, "build", "symdiff", "report.txt")
NAMES = list(corpus.VARIANTS) + ["libc.so.6"]
RESULTS = {}


@pytest.fixture(scope="session")
def fdoctl():
    path = symdiff.fdoctl_path()
    try:
        symdiff.check_tools(path)
    except symdiff.ToolError as e:
        pytest.fail(str(e), pytrace=False)
    return path


@pytest.fixture(scope="session")
def bins():
    try:
        symdiff.check_tools()
        b = corpus.build()
    except (symdiff.ToolError, RuntimeError) as e:
        pytest.fail(str(e), pytrace=False)
    libc = corpus.libc_binary()
    if libc is None:
        pytest.fail("libc.so.6 or its debug file from libc6-dbg is missing: run deploy/install-deps.sh",
                    pytrace=False)
    b[libc.name] = libc
    return b


@pytest.fixture(scope="session")
def cache_env(tmp_path_factory):
    """A fresh index cache for the session: the LLVM-style case of a binary
    builds its index, the JSON-style case then reads the persisted one."""
    d = tmp_path_factory.mktemp("fdod-cache")
    return dict(os.environ, FDOD_CACHE_DIR=str(d))


def run(cmd, env=None, input=None, timeout=300):
    return subprocess.run(cmd, input=input, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, env=env, timeout=timeout, errors="replace")


def fresh_env(tmp_path, sub="cache"):
    d = tmp_path / sub
    d.mkdir(exist_ok=True)
    return dict(os.environ, FDOD_CACHE_DIR=str(d)), d


def write_report():
    os.makedirs(os.path.dirname(REPORT), exist_ok=True)
    lines = [f"symdiff report — {time.strftime('%Y-%m-%d %H:%M:%S')}, fdoctl = {symdiff.fdoctl_path()}",
             "Buckets: identical, equal-by-rule (outermost name from the symbol table), named classes,",
             "unexplained:<first differing field>. Threshold: identical + equal-by-rule >= 99.9%.", "",
             f"{'binary':24} {'style':5} {'addrs':>6} {'identical':>9} {'by-rule':>7} {'other':>6} {'ok %':>8}  result"]
    for (name, style), r in sorted(RESULTS.items()):
        other = r.n - r.identical - r.by_rule
        lines.append(f"{name:24} {style:5} {r.n:6} {r.identical:9} {r.by_rule:7} {other:6} "
                     f"{100 * r.ok_ratio:8.3f}  {'PASS' if r.passed else 'FAIL'}"
                     + (f"  ({r.error[:80]})" if r.error else ""))
    lines.append("")
    for key in sorted(RESULTS):
        lines.append(RESULTS[key].table(examples=20))
        lines.append("")
    tmp = REPORT + ".tmp"
    with open(tmp, "w") as fh:
        fh.write("\n".join(lines))
    os.replace(tmp, REPORT)


# --- agreement with llvm-symbolizer --------------------------------------------

def llvm_self_disagreement(b, style):
    """How often llvm-symbolizer on b.elf itself disagrees with the oracle
    build: documents why that build is the oracle (notes/symbolization.md)."""
    addrs = corpus.addresses(b.oracle, 10000, 1)
    own = symdiff._run(symdiff.llvm_cmd(b.elf, style), addrs)
    ref = symdiff._run(symdiff.llvm_cmd(b.oracle, style), addrs).replace(*b.path_map)
    split = symdiff.split_llvm if style == "LLVM" else symdiff.split_json
    bad = [(a, x, y) for a, x, y in zip(addrs, split(own), split(ref)) if x != y]
    ex = "; ".join(f"0x{a:x}: {symdiff.fmt_frames(x, style)} (split) vs {symdiff.fmt_frames(y, style)}"
                   for a, x, y in bad[:2])
    return (f"llvm-symbolizer-16 on this split-DWARF binary itself disagrees with the non-split oracle on "
            f"{len(bad)} of {len(addrs)} addresses (class 'llvm-symbolizer clang split-dwarf bug', "
            f"not counted: the oracle is the non-split build){': ' + ex if ex else ''}")


@pytest.mark.parametrize("style", ["LLVM", "JSON"])
@pytest.mark.parametrize("name", NAMES)
def test_agreement(name, style, bins, fdoctl, cache_env):
    b = bins[name]
    try:
        r = symdiff.compare(name, b.elf, b.oracle, b.debug_file, style, n=10000,
                            fdoctl=fdoctl, env=cache_env, path_map=b.path_map)
        if b.self_oracle_wrong:
            r.notes.append(llvm_self_disagreement(b, style))
    except symdiff.ToolError as e:
        pytest.fail(str(e), pytrace=False)
    RESULTS[(name, style)] = r
    write_report()
    print(r.table())
    assert r.n >= 10000, f"{name}: only {r.n} instruction addresses (the corpus must give >= 10,000)"
    assert r.passed, "\n" + r.table() + f"\n(full report: {REPORT})"


@pytest.mark.parametrize("name", ["cxx-gcc-O2-dw5", "cxx-clang-O2-dw5"])
def test_no_demangle(name, bins, fdoctl, tmp_path):
    b = bins[name]
    env, _ = fresh_env(tmp_path)
    addrs = corpus.addresses(b.oracle, 2000, seed=7)
    llvm = symdiff.split_llvm(symdiff._run(symdiff.llvm_cmd(b.oracle, "LLVM") + ["--no-demangle"], addrs))
    p = run(symdiff.fdoctl_cmd(fdoctl, b.elf, b.debug_file, "LLVM", ["--no-demangle"]), env,
            "".join(f"0x{a:x}\n" for a in addrs))
    assert p.returncode == 0, p.stderr
    fd = symdiff.split_llvm(p.stdout)
    assert len(fd) == len(addrs)
    same = sum(1 for x, y in zip(llvm, fd) if x == y)
    assert any("_Z" in f for fr in fd for f, _ in fr), "no mangled name at all under --no-demangle"
    bad = [(hex(a), x, y) for a, x, y in zip(addrs, llvm, fd) if x != y][:5]
    assert same >= 0.999 * len(addrs), f"{same}/{len(addrs)} identical; e.g. {bad}"


# --- input forms -------------------------------------------------------------------

def load_segments(path):
    """PT_LOAD (offset, vaddr, filesz, flags) of path."""
    out = run(["readelf", "-lW", path]).stdout
    segs = []
    for line in out.splitlines():
        f = line.split()
        if f and f[0] == "LOAD":
            segs.append((int(f[1], 16), int(f[2], 16), int(f[4], 16), " ".join(f[6:-1])))
    return segs


def vaddr_to_offset(segs, a):
    for off, va, fsz, _ in segs:
        if va <= a < va + fsz:
            return a - va + off
    return None


@pytest.mark.parametrize("name", ["c-gcc-O3-dw4-nopie", "c-clang-O2-dw5", "so-gcc-O2-dw5", "libc.so.6"])
def test_file_offsets(name, bins, fdoctl, tmp_path):
    b = bins[name]
    env, _ = fresh_env(tmp_path)
    segs = load_segments(b.elf)
    addrs = corpus.addresses(b.oracle, 500, seed=3)
    offs = [vaddr_to_offset(segs, a) for a in addrs]
    assert None not in offs
    if name.endswith("nopie"):
        assert any(o != a for o, a in zip(offs, addrs)), "non-PIE offsets should differ from vaddrs"
    base = symdiff.fdoctl_cmd(fdoctl, b.elf, b.debug_file, "LLVM")
    p1 = run(base, env, "".join(f"0x{a:x}\n" for a in addrs))
    p2 = run(base + ["--file-offsets"], env, "".join(f"0x{o:x}\n" for o in offs))
    assert p1.returncode == 0 and p2.returncode == 0, p1.stderr + p2.stderr
    v, o = symdiff.split_llvm(p1.stdout), symdiff.split_llvm(p2.stdout)
    assert len(v) == len(o) == len(addrs)
    diffs = [(hex(a), hex(off), x, y) for a, off, x, y in zip(addrs, offs, v, o) if x != y]
    assert not diffs, f"{len(diffs)} differ; e.g. {diffs[:3]}"


def test_stdin_equals_argv(bins, fdoctl, tmp_path):
    b = bins["cxx-clang-O2-dw5"]
    env, _ = fresh_env(tmp_path)
    addrs = corpus.addresses(b.oracle, 60, seed=5)
    argv = [f"0x{a:x}" for a in addrs]
    for style in ("LLVM", "JSON"):
        base = symdiff.fdoctl_cmd(fdoctl, b.elf, None, style)
        p1 = run(base + argv, env)
        p2 = run(base, env, "".join(x + "\n" for x in argv))
        assert p1.returncode == 0 and p2.returncode == 0, p1.stderr + p2.stderr
        if style == "LLVM":
            assert p1.stdout == p2.stdout
        else:
            # Like llvm-symbolizer: one JSON array for argv, one object per
            # line for stdin; the answers inside must be the same.
            assert p1.stdout.lstrip().startswith("["), "argv JSON is not one array (llvm-symbolizer's form)"
            assert symdiff.split_json(p1.stdout) == symdiff.split_json(p2.stdout)
            assert len(symdiff.split_json(p1.stdout)) == len(addrs)
    assert len(symdiff.split_llvm(run(symdiff.fdoctl_cmd(fdoctl, b.elf, None, "LLVM") + argv, env).stdout)) == len(addrs)


def test_address_radix_as_llvm(bins, fdoctl, tmp_path):
    """Addresses are taken as llvm-symbolizer-16 takes them: 0x hex, 0b binary,
    0o or a leading 0 octal, anything else decimal; a line that is not such a
    number ("2ce5", "0x", "08") is echoed (LLVM style) or answered with an Error
    object (JSON). Same output as llvm-symbolizer-16, on argv and on stdin."""
    b = bins["c-gcc-O2-dw5"]
    env, _ = fresh_env(tmp_path)
    addrs = corpus.addresses(b.oracle, 40, seed=5)
    inputs = ["1000", "0x3e8", "01750", "2ce5", "0X3E8", "0b1111101000", "0o1750", "0O1750", "08",
              "0", "0x", "1000abc", "CODE 1000", "18446744073709551615", "18446744073709551616"]
    for a in addrs:
        # decimal, hex, octal, and bare hex (decimal digits only: read as
        # decimal, another address; with a-f: echoed)
        inputs += [str(a), f"0x{a:x}", f"0{a:o}", f"{a:x}"]
    assert any(not x.isdigit() for x in inputs[-4 * len(addrs):][3::4]), "no bare hex with a-f"
    for style in ("LLVM", "JSON"):
        llvm = [symdiff.LLVM_SYMBOLIZER, "--inlining", "--obj=" + b.elf]
        if style == "JSON":
            llvm.append("--output-style=JSON")
        base = symdiff.fdoctl_cmd(fdoctl, b.elf, None, style)
        for how, extra, stdin in (("argv", inputs, None), ("stdin", [], "".join(x + "\n" for x in inputs))):
            want = run(llvm + extra, None, stdin)
            got = run(base + extra, env, stdin)
            assert want.returncode == 0, want.stderr
            assert got.returncode == 0, got.stderr
            if got.stdout != want.stdout:
                w, g = want.stdout.split("\n"), got.stdout.split("\n")
                k = next((i for i, (x, y) in enumerate(zip(w, g)) if x != y), min(len(w), len(g)))
                pytest.fail(f"{style} on {how}: first difference at output line {k}: "
                            f"llvm {w[k:k + 3]!r} vs fdoctl {g[k:k + 3]!r}")


# --- separate debug files ------------------------------------------------------------

def agree(b_oracle, elf, debug_file, fdoctl, env, n=2000, seed=11):
    r = symdiff.compare(os.path.basename(elf), elf, b_oracle, debug_file, "LLVM", n=n, seed=seed,
                        fdoctl=fdoctl, env=env)
    assert r.passed, "\n" + r.table()
    return r


@pytest.mark.parametrize("name", ["c-gcc-O2-stripped", "c-clang-O2-stripped", "cxx-gcc-O2-stripped"])
def test_debug_file_explicit_alone(name, bins, fdoctl, tmp_path):
    """The stripped binary in a directory without its debug file: --debug-file is the only way."""
    b = bins[name]
    env, _ = fresh_env(tmp_path)
    alone = os.path.join(os.path.dirname(b.elf), "alone", "prog")
    agree(b.oracle, alone, b.debug_file, fdoctl, env)


@pytest.mark.parametrize("name", ["c-gcc-O2-stripped", "cxx-gcc-O2-stripped"])
def test_debug_file_by_debuglink(name, bins, fdoctl, tmp_path):
    """No --debug-file: prog.debug beside prog, named by .gnu_debuglink."""
    b = bins[name]
    env, _ = fresh_env(tmp_path)
    agree(b.oracle, b.elf, None, fdoctl, env)


def test_debug_file_libc_by_build_id(bins, fdoctl, tmp_path):
    """No --debug-file: libc's debug file is found under /usr/lib/debug/.build-id/
    (its .gnu_debuglink alone does not lead there), as llvm-symbolizer finds it."""
    b = bins["libc.so.6"]
    env, _ = fresh_env(tmp_path)
    agree(b.oracle, b.elf, None, fdoctl, env, n=1000)


def test_stripped_without_debug(bins, fdoctl, tmp_path):
    b = bins["c-gcc-O2-stripped"]
    env, _ = fresh_env(tmp_path)
    alone = os.path.join(os.path.dirname(b.elf), "alone", "prog")
    addrs = corpus.addresses(b.oracle, 300, seed=13)
    p = run(symdiff.fdoctl_cmd(fdoctl, alone, None, "LLVM"), env, "".join(f"0x{a:x}\n" for a in addrs))
    assert p.returncode == 0, p.stderr
    fd = symdiff.split_llvm(p.stdout)
    assert len(fd) == len(addrs)
    llvm = symdiff.split_llvm(symdiff._run(symdiff.llvm_cmd(alone, "LLVM"), addrs))
    same = sum(1 for x, y in zip(llvm, fd) if x == y)
    assert same >= 0.99 * len(addrs), [(hex(a), x, y) for a, x, y in zip(addrs, llvm, fd) if x != y][:3]


# --- persisted index ---------------------------------------------------------------------

def cache_files(d):
    res = {}
    for root, _, files in os.walk(d):
        for f in files:
            p = os.path.join(root, f)
            st = os.stat(p)
            res[p] = (st.st_ino, st.st_mtime_ns, st.st_size)
    return res


@pytest.mark.parametrize("name", ["c-gcc-O2-dw5", "cxx-clang-O2-dw5"])
def test_persisted_index(name, bins, fdoctl, tmp_path):
    b = bins[name]
    env, d = fresh_env(tmp_path)
    addrs = corpus.addresses(b.oracle, 3000, seed=17)
    stdin = "".join(f"0x{a:x}\n" for a in addrs)
    cmd = symdiff.fdoctl_cmd(fdoctl, b.elf, None, "JSON")
    p1 = run(cmd, env, stdin)
    assert p1.returncode == 0, p1.stderr
    files1 = cache_files(d)
    assert files1 and any(s > 0 for _, _, s in files1.values()), \
        f"no index file in FDOD_CACHE_DIR={d} after the first run"
    p2 = run(cmd, env, stdin)
    assert p2.returncode == 0 and p2.stdout == p1.stdout
    files2 = cache_files(d)
    rebuilt = [p for p in files1 if p in files2 and files2[p][:2] != files1[p][:2]]
    assert not rebuilt, f"the second run rewrote the index instead of using it: {rebuilt}"


CORRUPTIONS = {
    "flip-middle": lambda data: data[:len(data) // 2] + bytes([data[len(data) // 2] ^ 0x5a]) + data[len(data) // 2 + 1:],
    "flip-header": lambda data: bytes([data[0] ^ 0xff]) + data[1:],
    "flip-many": lambda data: bytes(c ^ 0x21 if i % 97 == 13 else c for i, c in enumerate(data)),
    "truncate-half": lambda data: data[:len(data) // 2],
    "truncate-8": lambda data: data[:8],
    "empty": lambda data: b"",
    "garbage": lambda data: bytes((i * 131 + 7) & 0xff for i in range(len(data))),
}


@pytest.mark.parametrize("how", list(CORRUPTIONS))
def test_persisted_index_corrupt(how, bins, fdoctl, tmp_path):
    b = bins["c-clang-O2-dw5"]
    env, d = fresh_env(tmp_path)
    addrs = corpus.addresses(b.oracle, 2000, seed=19)
    stdin = "".join(f"0x{a:x}\n" for a in addrs)
    cmd = symdiff.fdoctl_cmd(fdoctl, b.elf, None, "LLVM")
    good = run(cmd, env, stdin)
    assert good.returncode == 0, good.stderr
    files = [p for p in cache_files(d)]
    assert files, f"no index file in FDOD_CACHE_DIR={d}"
    for p in files:
        with open(p, "rb") as fh:
            data = fh.read()
        with open(p, "wb") as fh:
            fh.write(CORRUPTIONS[how](data))
    bad = run(cmd, env, stdin)
    assert bad.returncode == 0, f"exit {bad.returncode} with a corrupt index: {bad.stderr[-500:]}"
    assert bad.stdout == good.stdout, "a corrupt index changed the answers"
    again = run(cmd, env, stdin)
    assert again.returncode == 0 and again.stdout == good.stdout


def test_unwritable_cache_dir_still_answers(bins, fdoctl, tmp_path):
    b = bins["c-gcc-O2-dw5"]
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    env = dict(os.environ, FDOD_CACHE_DIR=str(blocker / "sub"))
    addrs = corpus.addresses(b.oracle, 200, seed=23)
    p = run(symdiff.fdoctl_cmd(fdoctl, b.elf, None, "LLVM"), env, "".join(f"0x{a:x}\n" for a in addrs))
    assert p.returncode == 0, p.stderr
    assert len(symdiff.split_llvm(p.stdout)) == len(addrs)


# --- errors ------------------------------------------------------------------------------

def assert_clean_error(p, mention):
    assert p.returncode > 0, f"exit {p.returncode} (negative = killed by a signal); stderr: {p.stderr}"
    assert p.stderr.strip(), "no error message on stderr"
    assert mention in p.stderr, f"the message does not name {mention!r}: {p.stderr!r}"
    for s in ("AddressSanitizer", "runtime error:", "Segmentation", "core dumped"):
        assert s not in p.stderr


def test_error_missing_elf(fdoctl, tmp_path):
    env, _ = fresh_env(tmp_path)
    path = str(tmp_path / "does-not-exist")
    assert_clean_error(run([fdoctl, "symbolize", "--elf", path, "0x1000"], env), path)


def test_error_not_elf(fdoctl, tmp_path):
    env, _ = fresh_env(tmp_path)
    path = tmp_path / "notes.txt"
    path.write_text("this is not an ELF file\n" * 100)
    assert_clean_error(run([fdoctl, "symbolize", "--elf", str(path), "0x10"], env), str(path))


def test_error_empty_file(fdoctl, tmp_path):
    env, _ = fresh_env(tmp_path)
    path = tmp_path / "empty"
    path.write_bytes(b"")
    assert_clean_error(run([fdoctl, "symbolize", "--elf", str(path), "0x10"], env), str(path))


def test_error_directory(fdoctl, tmp_path):
    env, _ = fresh_env(tmp_path)
    assert_clean_error(run([fdoctl, "symbolize", "--elf", str(tmp_path), "0x10"], env), str(tmp_path))


def test_error_missing_debug_file(bins, fdoctl, tmp_path):
    env, _ = fresh_env(tmp_path)
    b = bins["c-gcc-O2-dw5"]
    path = str(tmp_path / "nope.debug")
    assert_clean_error(run([fdoctl, "symbolize", "--elf", b.elf, "--debug-file", path, "0x10"], env), path)


def test_error_usage(fdoctl, tmp_path):
    env, _ = fresh_env(tmp_path)
    p = run([fdoctl, "symbolize", "0x10"], env)
    assert p.returncode == 2 and "--elf" in p.stderr, (p.returncode, p.stderr)
    p = run([fdoctl, "symbolize", "--elf", "/bin/true", "--output-style=XML", "0x10"], env)
    assert p.returncode == 2, (p.returncode, p.stderr)


def test_bad_address_lines(bins, fdoctl, tmp_path):
    """Garbage address lines are answered like llvm-symbolizer does or rejected
    with a message, never a crash; the good lines around them still answer."""
    env, _ = fresh_env(tmp_path)
    b = bins["c-gcc-O2-dw5"]
    a = corpus.addresses(b.oracle, 2, seed=29)
    stdin = f"0x{a[0]:x}\nzzzz\n\n0x\n{'f' * 40}\n-1\n0x{a[1]:x}\n"
    p = run(symdiff.fdoctl_cmd(fdoctl, b.elf, None, "LLVM"), env, stdin)
    assert p.returncode >= 0, f"killed by signal {-p.returncode}"
    good = run(symdiff.fdoctl_cmd(fdoctl, b.elf, None, "LLVM"), env, f"0x{a[0]:x}\n0x{a[1]:x}\n").stdout
    blocks = good.split("\n\n")
    assert blocks[0] in p.stdout and blocks[1] in p.stdout
