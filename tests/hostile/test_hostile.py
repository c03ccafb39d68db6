"""tests/hostile/test_hostile.py — `fdoctl symbolize` on hostile ELF and index files.

Run:  /usr/bin/python3 -m pytest -q tests/hostile/test_hostile.py
      FDOCTL / FDOCTL_SAN override build/fdoctl and the ASan+UBSan build
      (build/san-address,undefined/fdoctl, made by this test with
      `make SANITIZER=address,undefined build/san-address,undefined/fdoctl`).

Victims: small programs from the corpus generator (tests/symbolize/src),
built by gcc and clang, plain, compressed (-gz) and split (-gsplit-dwarf), into
build/hostile/. Each case is a mutated copy of a victim (or of its persisted
index): zero length, truncated at many cut points, bit flips at random (fixed
seeds) and aimed at the ELF header, the section headers and the bytes of each
.debug_* / .symtab / .strtab section (offsets from readelf -S), whole debug
sections zeroed or filled, compressed sections corrupted, .dwo files corrupted.

The rule for every case, for both builds of fdoctl:
  - no signal, no sanitizer report, no hang (20 s);
  - exit 0 with one answer per address (`??` is fine; JSON lines must parse),
    or a non-zero exit with a message on stderr;
  - for a corrupt persisted index: exit 0 and the same answers as a clean run.

Cases run two at a time; a failing case is kept in build/hostile/failures/
with the command that reproduces it.
"""
import hashlib
import json
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from concurrent.futures import ThreadPoolExecutor

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
GEN = os.path.join(ROOT, "tests", "symbolize", "src")
OUT = os.path.join(ROOT, "build", "hostile")
FAILDIR = os.path.join(OUT, "failures")
SAN = "address,undefined"
TIMEOUT = 20
SAN_MARKERS = ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer", "runtime error:",
               "SUMMARY: ", "==ERROR")

VICTIMS = {
    # name: (compiler, flags)
    "gcc-dw5": ("gcc", ["-O2", "-gdwarf-5"]),
    "clang-dw4": ("clang-16", ["-O2", "-gdwarf-4"]),
    "gcc-gz": ("gcc", ["-O2", "-gdwarf-5", "-gz"]),
    "gcc-dw5-split": ("gcc", ["-O2", "-gdwarf-5", "-gsplit-dwarf"]),
}
DEBUG_SECTIONS = (".debug_info", ".debug_line", ".debug_abbrev", ".debug_str", ".debug_line_str",
                  ".debug_rnglists", ".debug_ranges", ".debug_addr", ".debug_str_offsets",
                  ".debug_loclists", ".debug_aranges", ".symtab", ".strtab", ".gnu_debuglink")


def sh(cmd, cwd=None, check=True):
    p = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{p.stdout[-3000:]}")
    return p.stdout


# --- victims -------------------------------------------------------------------------

def build_victims():
    h = hashlib.sha256()
    for f in ("gen_c.py", "corpus.h"):
        h.update(open(os.path.join(GEN, f), "rb").read())
    h.update(json.dumps(VICTIMS).encode())
    key = h.hexdigest()
    stamp = os.path.join(OUT, "victims", ".stamp")
    if not (os.path.exists(stamp) and open(stamp).read() == key):
        shutil.rmtree(os.path.join(OUT, "victims"), ignore_errors=True)
        src = os.path.join(OUT, "victims", "src")
        os.makedirs(src)
        sh([sys.executable, os.path.join(GEN, "gen_c.py"), src, "--tus", "2", "--funcs", "10", "--seed", "7"])
        shutil.copy(os.path.join(GEN, "corpus.h"), src)
        for name, (cc, flags) in VICTIMS.items():
            d = os.path.join(OUT, "victims", name)
            os.makedirs(d)
            objs = []
            for s in ("tu_0.c", "tu_1.c", "main.c"):
                o = s[:-2] + ".o"
                sh([cc] + flags + ["-I../src", "-c", "../src/" + s, "-o", o], cwd=d)
                objs.append(o)
            sh([cc] + flags + objs + ["-o", "prog"], cwd=d)
        with open(stamp, "w") as fh:
            fh.write(key)
    return {n: os.path.join(OUT, "victims", n, "prog") for n in VICTIMS}


def instructions(path, n=24):
    out = sh(["objdump", "-d", "--no-show-raw-insn", "-w", path])
    addrs = sorted({int(m.group(1), 16) for m in re.finditer(r"^\s+([0-9a-f]+):\s", out, re.M)})
    rng = random.Random(5)
    pick = sorted(rng.sample(addrs, min(n, len(addrs))))
    return pick + [0, 0x1, 0xffffffffffffffff, 0x7fffffff00000000]


def sections(path):
    """name -> (file offset, size, header offset) from readelf -SW and the ELF header."""
    out = sh(["readelf", "-SW", path])
    data = open(path, "rb").read()
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, = struct.unpack_from("<H", data, 0x3a)
    res = {}
    for m in re.finditer(r"\[\s*(\d+)\]\s+(\S+)\s+\S+\s+[0-9a-f]+\s+([0-9a-f]+)\s+([0-9a-f]+)", out):
        idx, name, off, size = int(m.group(1)), m.group(2), int(m.group(3), 16), int(m.group(4), 16)
        res[name] = (off, size, shoff + idx * shentsize)
    return res


# --- cases ---------------------------------------------------------------------------

def flip(data, positions, rng):
    b = bytearray(data)
    for p in positions:
        if 0 <= p < len(b):
            b[p] ^= 1 << rng.randrange(8)
    return bytes(b)


def elf_cases(data, secs, seed=0):
    """Yield (case id, category, mutated bytes)."""
    n = len(data)
    yield "zero-length", "truncate", b""
    cuts = {1, 4, 15, 16, 52, 63, 64, 65, 0x40 + 56, 0x40 + 56 * 3, n - 1, n - 64, n // 2}
    cuts |= {n * i // 24 for i in range(1, 24)}
    for name, (off, size, hdr) in secs.items():
        if name in DEBUG_SECTIONS:
            cuts |= {off + 1, off + size // 2}
    shoff, = struct.unpack_from("<Q", data, 0x28)
    cuts |= {shoff, shoff + 64 * 3 + 7}
    for c in sorted(x for x in cuts if 0 < x < n):
        yield f"truncate-{c}", "truncate", data[:c]
    rng = random.Random(seed)
    for i in range(40):
        k = rng.choice([1, 1, 2, 8, 64])
        yield f"flip-random-{i}", "flip-random", flip(data, [rng.randrange(n) for _ in range(k)], rng)
    # ELF header fields: e_type..e_shstrndx, every byte position that matters.
    for i, pos in enumerate([4, 5, 16, 18, 0x20, 0x21, 0x28, 0x29, 0x2e, 0x34, 0x36, 0x38, 0x3a, 0x3c, 0x3d, 0x3e]):
        yield f"flip-elfhdr-{pos:#x}", "flip-elf-header", flip(data, [pos], random.Random(i))
    # Section headers of the debug sections: type, flags (SHF_COMPRESSED),
    # offset, size, link, entsize.
    for name, (off, size, hdr) in sorted(secs.items()):
        if name not in DEBUG_SECTIONS:
            continue
        for fld in (4, 8, 0x18, 0x20, 0x21, 0x25, 0x28, 0x38):
            yield f"flip-shdr-{name}-{fld:#x}", "flip-section-headers", flip(data, [hdr + fld], random.Random(fld))
        b = bytearray(data)
        struct.pack_into("<Q", b, hdr + 0x20, 0x7fffffffffff)  # sh_size huge
        yield f"shdr-{name}-huge-size", "flip-section-headers", bytes(b)
        b = bytearray(data)
        struct.pack_into("<Q", b, hdr + 0x18, n - 3)  # sh_offset near EOF
        yield f"shdr-{name}-offset-eof", "flip-section-headers", bytes(b)
    # Bytes inside debug sections: the start (unit headers) and anywhere.
    for name, (off, size, hdr) in sorted(secs.items()):
        if name not in DEBUG_SECTIONS or size == 0:
            continue
        r = random.Random(zlib.crc32(name.encode()))
        for i in range(8):
            pos = [off + r.randrange(min(size, 32))] if i < 3 else [off + r.randrange(size) for _ in range(1 + i)]
            yield f"flip-{name}-{i}", "flip-debug-sections", flip(data, pos, r)
        b = bytearray(data)
        b[off:off + size] = b"\0" * size
        yield f"zero-{name}", "flip-debug-sections", bytes(b)
        b = bytearray(data)
        b[off:off + size] = b"\xff" * size
        yield f"ff-{name}", "flip-debug-sections", bytes(b)


def dwo_cases(dirpath):
    """Corrupt each .dwo beside a split-DWARF victim: yields (id, dwo name, bytes)."""
    for f in sorted(os.listdir(dirpath)):
        if not f.endswith(".dwo"):
            continue
        data = open(os.path.join(dirpath, f), "rb").read()
        yield f"dwo-{f}-empty", f, b""
        yield f"dwo-{f}-half", f, data[:len(data) // 2]
        for i in range(4):
            r = random.Random(i)
            yield f"dwo-{f}-flip{i}", f, flip(data, [r.randrange(len(data)) for _ in range(1 + 4 * i)], r)


# --- running ---------------------------------------------------------------------------

def san_env(env):
    env = dict(env)
    env["ASAN_OPTIONS"] = "detect_leaks=1:exitcode=86:abort_on_error=0"
    env["UBSAN_OPTIONS"] = "halt_on_error=1:print_stacktrace=1:exitcode=87"
    return env


def check_run(fdoctl, elf, addrs, style="LLVM", cache=None, expect=None):
    """Run one case; return None if it behaved, else a description."""
    with tempfile.TemporaryDirectory(prefix="fdod-hostile-") as tmp:
        env = san_env(dict(os.environ, FDOD_CACHE_DIR=cache or tmp))
        cmd = [fdoctl, "symbolize", "--elf", elf]
        if style == "JSON":
            cmd.append("--output-style=JSON")
        try:
            p = subprocess.run(cmd, input="".join(f"0x{a:x}\n" for a in addrs), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=env, timeout=TIMEOUT, text=True,
                               errors="surrogateescape")
        except subprocess.TimeoutExpired:
            return f"hung for more than {TIMEOUT}s"
    if p.returncode < 0:
        return f"killed by signal {-p.returncode}; stderr: {p.stderr[-1500:]}"
    if any(m in p.stderr for m in SAN_MARKERS) or p.returncode in (86, 87):
        return f"sanitizer report (exit {p.returncode}):\n{p.stderr[-3000:]}"
    if p.returncode != 0:
        if not p.stderr.strip():
            return f"exit {p.returncode} without a message"
        return None if expect is None else f"exit {p.returncode} where a clean answer was expected: {p.stderr[-500:]}"
    if style == "JSON":
        lines = [l for l in p.stdout.splitlines() if l.strip()]
        for l in lines:
            try:
                json.loads(l)
            except ValueError:
                return f"invalid JSON line: {l[:300]!r}"
        if len(lines) != len(addrs):
            return f"{len(lines)} JSON answers for {len(addrs)} addresses"
    else:
        # An empty function name (zeroed .debug_str) prints an empty line, as
        # in llvm-symbolizer, so count location lines, one or more per answer.
        locs = sum(1 for l in p.stdout.splitlines() if re.search(r":\d+:\d+$", l))
        if locs < len(addrs):
            return f"{locs} location lines for {len(addrs)} addresses"
    if expect is not None and p.stdout != expect:
        return "answers differ from a clean run"
    return None


def keep_failure(case_id, data_path, cmd_hint):
    os.makedirs(FAILDIR, exist_ok=True)
    dst = os.path.join(FAILDIR, case_id.replace("/", "_"))
    shutil.copy(data_path, dst)
    return f"{dst}  (reproduce: {cmd_hint.replace('@', dst)})"


def run_cases(fdoctl, cases, addrs, workdir, style_for=lambda i: "LLVM"):
    """cases: iterable of (id, bytes). Returns failure descriptions."""
    os.makedirs(workdir, exist_ok=True)

    def one(item):
        i, (cid, data) = item
        path = os.path.join(workdir, cid)
        with open(path, "wb") as fh:
            fh.write(data)
        style = style_for(i)
        why = check_run(fdoctl, path, addrs, style)
        res = None
        if why:
            where = keep_failure(cid, path, f"{fdoctl} symbolize --elf @ {'--output-style=JSON ' if style == 'JSON' else ''}0x{addrs[0]:x}")
            res = f"{cid}: {why}\n      kept: {where}"
        os.unlink(path)
        return res

    with ThreadPoolExecutor(max_workers=2) as ex:
        return [r for r in ex.map(one, enumerate(cases)) if r]


# --- fixtures ----------------------------------------------------------------------------

@pytest.fixture(scope="session")
def victims():
    for t in ("gcc", "clang-16", "readelf", "objdump"):
        if not shutil.which(t):
            pytest.fail(f"{t} is missing: run deploy/install-deps.sh", pytrace=False)
    return build_victims()


def _fdoctl_normal():
    p = os.environ.get("FDOCTL") or os.path.join(ROOT, "build", "fdoctl")
    if not os.access(p, os.X_OK):
        pytest.fail(f"{p} is missing: run `make build/fdoctl` (or set FDOCTL)", pytrace=False)
    return p


_san_state = {}


def _fdoctl_san():
    p = os.environ.get("FDOCTL_SAN")
    if p:
        if not os.access(p, os.X_OK):
            pytest.fail(f"FDOCTL_SAN={p} is not executable", pytrace=False)
        return p
    if "path" not in _san_state:
        target = f"build/san-{SAN}/fdoctl"
        r = subprocess.run(["make", f"SANITIZER={SAN}", target], cwd=ROOT, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=900)
        _san_state["path"] = os.path.join(ROOT, target) if r.returncode == 0 else None
        _san_state["log"] = r.stdout[-3000:]
    if not _san_state["path"]:
        pytest.fail(f"make SANITIZER={SAN} build/san-{SAN}/fdoctl failed:\n{_san_state['log']}", pytrace=False)
    return _san_state["path"]


@pytest.fixture(params=["normal", "asan+ubsan"])
def fdoctl(request):
    return _fdoctl_normal() if request.param == "normal" else _fdoctl_san()


# --- tests ---------------------------------------------------------------------------------

CATEGORIES = ["truncate", "flip-random", "flip-elf-header", "flip-section-headers", "flip-debug-sections"]


@pytest.mark.parametrize("victim", ["gcc-dw5", "clang-dw4", "gcc-gz"])
@pytest.mark.parametrize("category", CATEGORIES)
def test_hostile_elf(category, victim, victims, fdoctl, request):
    elf = victims[victim]
    data = open(elf, "rb").read()
    secs = sections(elf)
    addrs = instructions(elf)
    cases = [(f"{victim}-{cid}", d) for cid, cat, d in elf_cases(data, secs, seed=zlib.crc32(victim.encode()))
             if cat == category]
    assert cases, f"no cases in category {category}"
    # Every third case in JSON style: corrupt strings must still give valid JSON.
    fails = run_cases(fdoctl, cases, addrs, os.path.join(OUT, "work", request.node.callspec.id),
                      style_for=lambda i: "JSON" if i % 3 == 2 else "LLVM")
    assert not fails, f"{len(fails)} of {len(cases)} cases misbehaved:\n" + "\n".join(fails[:15])


def test_hostile_compressed_sections(victims, fdoctl, request):
    """-gz victim: corrupt the Elf64_Chdr (ch_type, ch_size) and the zlib stream."""
    elf = victims["gcc-gz"]
    data = open(elf, "rb").read()
    secs = sections(elf)
    addrs = instructions(elf)
    cases = []
    for name in (".debug_info", ".debug_line", ".debug_abbrev", ".debug_str"):
        if name not in secs:
            continue
        off, size, _ = secs[name]
        for label, fld, val in (("type", 0, 7), ("size-huge", 8, 1 << 40), ("size-small", 8, 3), ("size-zero", 8, 0)):
            b = bytearray(data)
            if fld == 0:
                struct.pack_into("<I", b, off, val)
            else:
                struct.pack_into("<Q", b, off + fld, val)
            cases.append((f"gz-{name}-{label}", bytes(b)))
        r = random.Random(size)
        for i in range(4):
            cases.append((f"gz-{name}-stream{i}", flip(data, [off + 24 + r.randrange(max(1, size - 24)) for _ in range(1 + 3 * i)], r)))
        cases.append((f"gz-{name}-cut-stream", data[:off + size // 2]))
    fails = run_cases(fdoctl, cases, addrs, os.path.join(OUT, "work", request.node.callspec.id))
    assert not fails, f"{len(fails)} of {len(cases)} cases misbehaved:\n" + "\n".join(fails[:15])


def test_hostile_dwo(victims, fdoctl):
    """Split DWARF: the executable is intact, a .dwo beside it is corrupt."""
    elf = victims["gcc-dw5-split"]
    src = os.path.dirname(elf)
    addrs = instructions(elf)
    fails = []
    for cid, dwo, data in dwo_cases(src):
        # DW_AT_comp_dir names the victim's directory, so the corrupt .dwo has
        # to sit there: swap it in for the run, then put the pristine one back.
        orig = os.path.join(src, dwo)
        saved = open(orig, "rb").read()
        try:
            with open(orig, "wb") as fh:
                fh.write(data)
            why = check_run(fdoctl, elf, addrs)
            if why:
                kept = keep_failure(cid, orig, f"cp @ {orig} && {fdoctl} symbolize --elf {elf} 0x{addrs[0]:x}")
                fails.append(f"{cid}: {why}\n      kept: {kept}")
        finally:
            with open(orig, "wb") as fh:
                fh.write(saved)
    assert not fails, "\n".join(fails[:15])


def test_hostile_cache_file(victims, fdoctl, tmp_path):
    """A persisted index that is corrupt, truncated or garbage: a clean answer,
    identical to the one from a fresh index."""
    elf = victims["gcc-dw5"]
    addrs = instructions(elf)
    cache = tmp_path / "cache"
    cache.mkdir()
    env = san_env(dict(os.environ, FDOD_CACHE_DIR=str(cache)))
    stdin = "".join(f"0x{a:x}\n" for a in addrs)
    good = subprocess.run([fdoctl, "symbolize", "--elf", elf], input=stdin, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, env=env, timeout=TIMEOUT)
    assert good.returncode == 0, good.stderr
    files = [os.path.join(r, f) for r, _, fs in os.walk(cache) for f in fs]
    assert files, "no persisted index in FDOD_CACHE_DIR"
    pristine = {f: open(f, "rb").read() for f in files}
    fails = []
    for i in range(40):
        r = random.Random(1000 + i)
        for f, data in pristine.items():
            if i < 8:
                mutated = data[:len(data) * i // 8]
            elif i < 32:
                mutated = flip(data, [r.randrange(len(data)) for _ in range(1 + i % 5)], r)
            else:
                mutated = bytes(r.randrange(256) for _ in range(len(data)))
            with open(f, "wb") as fh:
                fh.write(mutated)
        why = check_run(fdoctl, elf, addrs, cache=str(cache), expect=good.stdout)
        if why:
            fails.append(f"cache case {i}: {why}")
        for f, data in pristine.items():  # the run may have replaced it; restore
            with open(f, "wb") as fh:
                fh.write(data)
    assert not fails, f"{len(fails)} of 40 cases misbehaved:\n" + "\n".join(fails[:10])
