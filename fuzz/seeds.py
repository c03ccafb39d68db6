#!/usr/bin/python3
"""fuzz/seeds.py BUILD — write the seed corpora of the fuzz targets.

Everything is generated here, nothing is downloaded or copied from the
system: small C programs compiled with gcc and clang-16 (-g, -O0/-O2,
DWARF 4 and 5, PIE / non-PIE / shared object / split debug file /
compressed sections), hand-assembled ELF files for the classes and byte
orders no local toolchain links (32-bit, big-endian), SampleBatch and Ack
messages encoded with a small protobuf writer, their text form, persisted
DWARF indexes (written by BUILD/fdoctl symbolize --cache-dir), HTTP
request lines, pprof profiles and OTLP profile requests (the protobuf
writer again). Also one libFuzzer dictionary per target that has
keywords.

Output (BUILD is build/fuzz when the Makefile runs it):
  BUILD/seeds/src/seed.c      the program the binaries are built from
  BUILD/seeds/bin/<variant>   the binaries (fuzz_symindex opens one)
  BUILD/corpus/<target>/      seeds, one file each (libFuzzer adds to them)
  BUILD/dict/<target>.dict    keywords for -dict=
"""
import hashlib
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

BUILD = sys.argv[1] if len(sys.argv) > 1 else "build/fuzz"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEEDS = os.path.join(BUILD, "seeds")
CORPUS = os.path.join(BUILD, "corpus")
DICT = os.path.join(BUILD, "dict")


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def put_dict(target, words):
    os.makedirs(DICT, exist_ok=True)
    with open(os.path.join(DICT, target + ".dict"), "w") as f:
        for w in words:
            esc = "".join(c if 0x20 <= ord(c) < 0x7F and c not in '"\\'
                          else "\\x%02x" % ord(c) for c in w)
            f.write('"%s"\n' % esc)


# --------------------------------------------------------------- protobuf --

def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def f_varint(num, v):
    return varint(num << 3) + varint(v)


def f_bytes(num, b):
    if isinstance(b, str):
        b = b.encode()
    return varint(num << 3 | 2) + varint(len(b)) + b


def f_double(num, d):
    return varint(num << 3 | 1) + struct.pack("<d", d)


def pb_batch(b):
    """b: dict in the shape of schemas/fdod.proto SampleBatch."""
    out = bytearray()
    if b.get("schema_version"):
        out += f_varint(1, b["schema_version"])
    out += f_bytes(2, b["agent"])
    out += f_varint(3, b["seq"])
    out += f_bytes(4, b["host"])
    out += f_bytes(5, b["binary"])
    for k, v in b.get("labels", []):
        out += f_bytes(6, f_bytes(1, k) + f_bytes(2, v))
    out += f_bytes(7, b["event"])
    out += f_varint(8, b["period"])
    out += f_double(9, b.get("weight", 1.0))
    out += f_varint(10, b["time"][0])
    out += f_varint(11, b["time"][1])
    for idx, bid, start, limit, off, path in b.get("mappings", []):
        m = (f_varint(1, idx) + f_bytes(2, bytes.fromhex(bid)) +
             f_varint(3, start) + f_varint(4, limit) + f_varint(5, off) +
             f_bytes(6, path))
        out += f_bytes(12, m)
    for count, addrs in b.get("stacks", []):
        packed = b"".join(varint(a) for a in addrs)
        out += f_bytes(13, f_varint(1, count) + f_bytes(2, packed))
    for br in b.get("branches", []):
        m = f_varint(1, br[0]) + f_varint(2, br[1]) + f_varint(3, br[2])
        if len(br) > 3:
            m += f_varint(4, br[3])
        out += f_bytes(14, m)
    if b.get("token"):
        out += f_bytes(16, b["token"])
    return bytes(out)


def text_batch(b):
    """The same batch in the text form of schemas/README.md."""
    lines = ["agent   %s" % b["agent"], "seq     %d" % b["seq"],
             "host    %s" % b["host"], "binary  %s" % b["binary"]]
    lines += ["label   %s=%s" % kv for kv in b.get("labels", [])]
    lines += ["event   %s" % b["event"], "period  %d" % b["period"],
              "weight  %r" % b.get("weight", 1.0),
              "time    %d %d" % b["time"]]
    for idx, bid, start, limit, off, path in b.get("mappings", []):
        lines.append("mapping %d %s %x %x %x %s" %
                     (idx, bid, start, limit, off, path))
    for count, addrs in b.get("stacks", []):
        lines.append("stack   %d %s" % (count,
                                        " ".join("%x" % a for a in addrs)))
    for br in b.get("branches", []):
        lines.append("branch  %x %x %s" % (br[0], br[1],
                                           " ".join(str(x) for x in br[2:])))
    return "\n".join(lines) + "\n"


BID1 = "5f3c0a9e8d7b6c5a4f3e2d1c0b0a09080706e1"
BID2 = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4"
EXE = 0x555555554000
LIB = 0x7FFFF7DD0000

BATCHES = {
    "design": {
        "agent": "host-17/agent", "seq": 42, "host": "host-17",
        "binary": "webserver", "labels": [("mode", "serving")],
        "event": "cpu-clock", "period": 1000000, "weight": 2.5,
        "time": (1763719200, 1763719260),
        "mappings": [(0, BID1, EXE, EXE + 0xAC000, 0, "/usr/bin/webserver"),
                     (1, BID2, LIB, LIB + 0x1C0000, 0x28000,
                      "/usr/lib/x86_64-linux-gnu/libc.so.6")],
        "stacks": [(120, [EXE + 0x1A10, EXE + 0x1C33, LIB + 0x2D90]),
                   (7, [EXE + 0x1B00]),
                   (1, [0x1234, EXE + 0x1A10])],
        "branches": [(EXE + 0x1A10, EXE + 0x1B00, 37),
                     (EXE + 0x1C00, EXE + 0x1A00, 12, 3)],
    },
    "minimal": {
        "agent": "a", "seq": 1, "host": "h", "binary": "b",
        "event": "cycles", "period": 1, "time": (0, 1),
        "mappings": [(0, "01", 0x1000, 0x2000, 0, "")],
        "stacks": [(1, [0x1000])],
    },
    "labels": {
        "agent": "agent-%41", "seq": 2 ** 63, "host": "host.example",
        "binary": "svc_1.2+x-y",
        "labels": [("mode", "batch"), ("region", "eu-west"),
                   ("k.v_1-2", "v=w:x")],
        "event": "cpu-clock", "period": 10 ** 12, "weight": 1e6,
        "time": (1700000000, 1700086400),
        "mappings": [(7, "ab" * 64, 0x400000, 0x401000, 0x1000, "/bin/x"),
                     (3, "cd" * 20, 0x401000, 0x500000, 0, "/bin/y%20z")],
        "stacks": [(10 ** 9, [0x400000 + i * 16 for i in range(64)])],
        "branches": [(0x400010, 0x400020, 5, 5)],
        "token": "0123456789abcdef-token",
    },
    "unmapped": {
        "agent": "x", "seq": 9, "host": "h", "binary": "b",
        "event": "cpu-clock", "period": 997, "weight": 5e-7,
        "time": (100, 100),
        "mappings": [(0, BID2, 0x10000, 0x20000, 0x5000, "/x/b")],
        "stacks": [(3, [0x5, 0x10001, 0x30000]), (4, [0x1FFFF, 0x10000])],
        "branches": [(0x10000, 0x30000, 1), (0x5, 0x6, 2)],
    },
}


def ack(status, msg, seq, dup=False):
    out = f_varint(1, status) + f_bytes(2, msg) + f_varint(3, seq)
    if dup:
        out += f_varint(4, 1)
    return out + f_varint(5, 157) + f_varint(7, 2) + f_varint(12, 1)


def wal_record():
    """One prep WAL record (aggregator/prep.c layout)."""
    def s(x):
        return struct.pack(">H", len(x)) + x.encode()
    out = bytes([1]) + s("a") + s("webserver") + s("h") + s("mode=serving")
    out += struct.pack(">QIQQQ", 5, 1763719200, 1763719260, 1000000,
                       2500000)
    bid = bytes.fromhex(BID1)
    out += struct.pack(">H", 1) + bytes([len(bid)]) + bid + bytes([1])
    out += struct.pack(">I", 2)
    out += struct.pack(">QQH", 0x1234, 120, 2)
    out += struct.pack(">HQ", 0, 0x1A10) + struct.pack(">HQ", 0, 0x1C32)
    out += struct.pack(">QQH", 0x5678, 7, 0)
    out += struct.pack(">I", 1) + struct.pack(">HQQQ", 0, 0x1A10, 0x1B00, 37)
    return out


def batch_seeds():
    for name, b in BATCHES.items():
        put("batch", name + ".pb", pb_batch(b))
        put("text", name + ".txt", text_batch(b))
    put("batch", "v2.pb", pb_batch(dict(BATCHES["minimal"],
                                         schema_version=2)))
    put("batch", "empty.pb", b"")
    put("batch", "ack-ok.pb", ack(0, "ok", 42))
    put("batch", "ack-dup.pb", ack(0, "duplicate", 7, True))
    put("batch", "ack-busy.pb", ack(18, "rate limit reached", 3) +
        f_varint(11, 250))
    put("batch", "wal-record.bin", wal_record())

    # Text-only forms: comments, CRLF, tabs, 0x, escapes, refusals.
    put("text", "comments.txt",
        "# a hand-made batch\r\nagent\ta # id\r\nseq 1\r\nhost h\r\n"
        "binary b\r\n\r\nevent cpu-clock\nperiod 1000\nweight 0.5\n"
        "time 10 20\nmapping 0 0a0b 0x1000 0X2000 0 /p%23q%25r\n"
        "stack 1 0x1000 1fff\nbranch 1000 1001 2 1\n")
    put("text", "missing.txt", "agent a\nseq 1\n")
    put("text", "bad-hex.txt", text_batch(BATCHES["minimal"]) +
        "stack 1 0xg\n")
    put("text", "dup.txt", text_batch(BATCHES["minimal"]) + "seq 2\n")
    put("text", "overlap.txt", text_batch(BATCHES["minimal"]) +
        "mapping 1 02 1800 2800 0\n")
    put_dict("text", ["agent", "seq", "host", "binary", "label", "event",
                      "period", "weight", "time", "mapping", "stack",
                      "branch", "%20", "%00", "%25", "0x", "#", "\r\n",
                      "\t", "=", "nan", "inf", "1e-7", "18446744073709551615",
                      "18446744073709551616", "ffffffffffffffff"])


# -------------------------------------------------------- compiled binaries --

SEED_C = r"""
/* Seed program for fuzz_dwarf / fuzz_elf / fuzz_symindex: inlining,
 * statics of one name in two "files" (#line), a struct, a loop. */
#include <stdio.h>
#include <stdlib.h>

struct point { int x, y; };

static inline __attribute__((always_inline)) int sq(int v) { return v * v; }

static inline int dist2(const struct point *a, const struct point *b)
{
	return sq(a->x - b->x) + sq(a->y - b->y);
}

#line 1 "other.c"
static int helper(int n) { return n * 3 + 1; }

#line 30 "seed.c"
__attribute__((noinline)) int walk(struct point *p, int n)
{
	int best = 0;
	for (int i = 1; i < n; i++) {
		int d = dist2(&p[i - 1], &p[i]);
		if (d > best)
			best = d;
	}
	return best + helper(n);
}

int main(int argc, char **argv)
{
	struct point pts[8];
	for (int i = 0; i < 8; i++) {
		pts[i].x = i * argc;
		pts[i].y = (int)(i ^ (argc + 3));
	}
	printf("%d\n", walk(pts, argc > 1 ? atoi(argv[1]) % 8 : 8));
	return 0;
}
"""

LIB_C = r"""
static inline __attribute__((always_inline)) int twice(int v) { return 2 * v; }
__attribute__((visibility("default"))) int lib_fn(int a) { return twice(a) + 1; }
static int local_fn(int a) { return a - 1; }
int (*lib_ptr)(int) = local_fn;
"""


def run(cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def have(tool):
    return shutil.which(tool) is not None


def build_binaries():
    src_dir = os.path.join(SEEDS, "src")
    bin_dir = os.path.join(SEEDS, "bin")
    os.makedirs(src_dir, exist_ok=True)
    os.makedirs(bin_dir, exist_ok=True)
    seed_c = os.path.join(src_dir, "seed.c")
    lib_c = os.path.join(src_dir, "lib.c")
    with open(seed_c, "w") as f:
        f.write(SEED_C)
    with open(lib_c, "w") as f:
        f.write(LIB_C)
    common = ["-Wl,--build-id", "-fno-asynchronous-unwind-tables"]
    variants = [
        ("gcc-O2-dwarf5", "gcc", ["-g", "-O2", "-gdwarf-5"]),
        ("gcc-O2-dwarf4", "gcc", ["-g", "-O2", "-gdwarf-4"]),
        ("gcc-O0-dwarf5", "gcc", ["-g", "-O0"]),
        ("gcc-O2-nopie", "gcc", ["-g", "-O2", "-no-pie"]),
        ("gcc-O2-gz", "gcc", ["-g", "-O2", "-gz=zlib"]),
        ("clang-O2-dwarf5", "clang-16", ["-g", "-O2", "-gdwarf-5"]),
        ("clang-O2-dwarf4", "clang-16", ["-g", "-O2", "-gdwarf-4"]),
        ("clang-O1-types", "clang-16",
         ["-g", "-O1", "-gdwarf-4", "-fdebug-types-section"]),
    ]
    built = []
    for name, cc, flags in variants:
        if not have(cc):
            continue
        out = os.path.join(bin_dir, name)
        run([cc] + flags + common + ["-o", out, seed_c])
        built.append(out)
    for cc in ("gcc", "clang-16"):
        if have(cc):
            out = os.path.join(bin_dir, "%s-lib.so" % cc)
            run([cc, "-g", "-O2", "-shared", "-fPIC"] + common +
                ["-o", out, lib_c])
            built.append(out)
    # A separate debug file and the stripped binary that points at it.
    base = os.path.join(bin_dir, "gcc-O2-dwarf5")
    dbg = os.path.join(bin_dir, "gcc-O2-split.debug")
    stripped = os.path.join(bin_dir, "gcc-O2-split")
    run(["objcopy", "--only-keep-debug", base, dbg])
    run(["objcopy", "--strip-debug", "--add-gnu-debuglink=" + dbg, base,
         stripped])
    built += [dbg, stripped]
    return built


# ------------------------------------------------- hand-assembled ELF files --

def make_elf(is64, be, etype=3, build_id=b"\x12\x34\x56\x78" * 5,
             interp=False, debug_info=True, debug_only=False, symtab=True,
             inflated=None):
    """A small, consistent ELF file: PT_LOAD, PT_NOTE (+ PT_INTERP),
    sections .interp, .note.gnu.build-id, .text, .debug_info, .symtab,
    .strtab, .shstrtab. debug_only: every SHF_ALLOC section NOBITS and
    no segments, like objcopy --only-keep-debug. Notes and sections are
    8-byte aligned (the build-id descriptor at align8(12 + namesz)).
    inflated: .debug_info is SHF_COMPRESSED (zlib) and its header claims
    that many bytes once inflated (a compression bomb when large)."""
    e = ">" if be else "<"
    names = [b""]
    sections = []  # (name, type, flags, data, link, entsize)
    if interp:
        sections.append((".interp", 1, 2, b"/lib/ld.so\0", 0, 0))
    note = struct.pack(e + "III", 4, len(build_id), 3) + b"GNU\0" + build_id
    note += b"\0" * (-len(note) % 4)
    sections.append((".note.gnu.build-id", 7, 2, note, 0, 0))
    sections.append((".text", 8 if debug_only else 1, 6, b"\x90" * 32, 0, 0))
    if debug_info and inflated is not None:
        body = zlib.compress(bytes(4096))
        chdr = (struct.pack(e + "IIQQ", 1, 0, inflated, 1) if is64 else
                struct.pack(e + "III", 1, inflated, 1))
        sections.append((".debug_info", 1, 0x800, chdr + body, 0, 0))
    elif debug_info:
        sections.append((".debug_info", 1, 0, b"\x07\0\0\0\x04\0\0\0\0\0\x08"
                         [:11], 0, 0))
    if symtab:
        strtab = b"\0main\0"
        if is64:
            sym = bytes(24) + struct.pack(e + "IBBHQQ", 1, 0x12, 0, 3,
                                          0x1000, 32)
        else:
            sym = bytes(16) + struct.pack(e + "IIIBBH", 1, 0x1000, 32, 0x12,
                                          0, 3)
        nsec = len(sections)
        sections.append((".symtab", 2, 0, sym, nsec + 2, 24 if is64 else 16))
        sections.append((".strtab", 3, 0, strtab, 0, 0))
    sections.append((".shstrtab", 3, 0, None, 0, 0))
    shstr = b"\0"
    name_off = []
    for s in sections:
        name_off.append(len(shstr))
        shstr += s[0].encode() + b"\0"
    ehsize = 64 if is64 else 52
    phentsize = 56 if is64 else 32
    shentsize = 64 if is64 else 40
    phnum = 0 if debug_only else (3 if interp else 2)
    off = ehsize + phnum * phentsize
    layout = []
    blob = b""
    for s in sections:
        data = shstr if s[3] is None else s[3]
        off_al = (off + len(blob) + 7) & ~7
        blob += b"\0" * (off_al - off - len(blob))
        layout.append((off_al, len(data)))
        if not (debug_only and s[1] == 8):
            blob += data
    shoff = (off + len(blob) + 7) & ~7
    blob += b"\0" * (shoff - off - len(blob))
    total = shoff + shentsize * (len(sections) + 1)
    ident = b"\x7fELF" + bytes([2 if is64 else 1, 2 if be else 1, 1]) + \
        bytes(9)
    ehdr = ident + struct.pack(
        e + ("HHIQQQIHHHHHH" if is64 else "HHIIIIIHHHHHH"), etype, 62, 1,
        0x1000, ehsize if phnum else 0, shoff, 0, ehsize, phentsize, phnum,
        shentsize, len(sections) + 1, len(sections))
    ph = b""
    note_i = [s[0] for s in sections].index(".note.gnu.build-id")
    if phnum:
        segs = [(1, 0, total, 5)]
        if interp:
            segs.append((3, layout[0][0], layout[0][1], 4))
        segs.append((4, layout[note_i][0], layout[note_i][1], 4))
        for t, o, sz, fl in segs:
            if is64:
                ph += struct.pack(e + "IIQQQQQQ", t, fl, o, o, o, sz, sz, 8)
            else:
                ph += struct.pack(e + "IIIIIIII", t, o, o, o, sz, sz, fl, 8)
    sh = bytes(shentsize)
    for i, s in enumerate(sections):
        o, sz = layout[i]
        stype = s[1]
        if is64:
            sh += struct.pack(e + "IIQQQQIIQQ", name_off[i], stype, s[2],
                              o if s[2] & 2 else 0, o, sz, s[4],
                              1 if stype == 2 else 0, 8, s[5])
        else:
            sh += struct.pack(e + "IIIIIIIIII", name_off[i], stype, s[2],
                              o if s[2] & 2 else 0, o, sz, s[4],
                              1 if stype == 2 else 0, 8, s[5])
    out = ehdr + ph + blob + sh
    assert len(out) == total
    return out


def elf_seeds(binaries):
    for path in binaries:
        with open(path, "rb") as f:
            data = f.read()
        name = os.path.basename(path)
        put("dwarf", name, data)
        put("elf", name, data)
    for is64 in (False, True):
        for be in (False, True):
            tag = "%d%s" % (64 if is64 else 32, "be" if be else "le")
            put("elf", "hand-%s-exec" % tag, make_elf(is64, be, etype=2))
            put("elf", "hand-%s-pie" % tag, make_elf(is64, be, interp=True))
            put("elf", "hand-%s-so" % tag, make_elf(is64, be, symtab=False))
            put("elf", "hand-%s-debug" % tag,
                make_elf(is64, be, debug_only=True))
            put("dwarf", "hand-%s" % tag, make_elf(is64, be, interp=True))
    put("elf", "hand-64le-nobid", make_elf(True, False, build_id=b""))
    put("elf", "hand-64le-longbid", make_elf(True, False,
                                             build_id=bytes(range(65))))
    # Issue 21: the build-id of an 8-byte aligned note, and a small file
    # whose compressed .debug_info claims 1 GiB (refused before inflating).
    put("elf", "note-8-byte-aligned", make_elf(True, False))
    put("elf", "compression-bomb", make_elf(True, False, inflated=1 << 30))
    put("elf", "compression-bomb-32be", make_elf(False, True,
                                                 inflated=1 << 30))
    put("elf", "compressed-small", make_elf(True, False, inflated=4096))
    put("elf", "not-elf", b"#!/bin/sh\necho hello\n")
    put("elf", "truncated", make_elf(True, False)[:100])


def symindex_seeds(binaries):
    fdoctl = os.path.join(BUILD, "fdoctl")
    if not os.access(fdoctl, os.X_OK):
        print("seeds.py: %s missing: no symindex seeds" % fdoctl,
              file=sys.stderr)
        return
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")
    with tempfile.TemporaryDirectory() as cache:
        for path in binaries:
            if path.endswith(".debug"):
                continue
            subprocess.run([fdoctl, "symbolize", "--elf", path,
                            "--cache-dir", cache, "0x0"], check=True,
                           stdout=subprocess.DEVNULL, env=env)
        n = 0
        for d, _, files in os.walk(cache):
            for fn in sorted(files):
                if fn.endswith(".symidx"):
                    with open(os.path.join(d, fn), "rb") as f:
                        put("symindex", "index-%d.symidx" % n, f.read())
                    n += 1
    put("symindex", "short", b"FDOSYMX\n\x02\0\0\0")


# ---------------------------------------------------------------------- CFG --

def cfg_seeds(binaries):
    """fuzz_cfg: the seed binaries whole, each text symbol's bytes as raw
    code (flags 0, a 2-byte length, the bytes), and hand-assembled code: a
    PC-relative jump table with its data after the code, an absolute table
    at 0x600000, and a call followed by ud2 and padding."""
    for path in binaries:
        if path.endswith(".debug"):
            continue
        with open(path, "rb") as f:
            data = f.read()
        put("cfg", os.path.basename(path), data)
        nm = subprocess.run(["nm", "-S", "--defined-only", path],
                            capture_output=True, text=True).stdout
        loads = []
        for line in subprocess.run(["readelf", "-lW", path],
                                   capture_output=True,
                                   text=True).stdout.splitlines():
            f = line.split()
            if f and f[0] == "LOAD":
                loads.append((int(f[1], 16), int(f[2], 16), int(f[4], 16)))
        n = 0
        for line in nm.splitlines():
            f = line.split()
            if len(f) != 4 or f[2] not in "tT" or n >= 16:
                continue
            addr, size = int(f[0], 16), int(f[1], 16)
            for off, vaddr, filesz in loads:
                if vaddr <= addr and addr + size <= vaddr + filesz and size:
                    code = data[off + addr - vaddr:off + addr - vaddr + size]
                    put("cfg", "%s-%s" % (os.path.basename(path), f[3]),
                        bytes([0]) + struct.pack("<H", len(code)) + code)
                    n += 1
                    break
    # cmp $2,%edi; ja end; lea tbl(%rip),%rcx; movslq (%rcx,%rdi,4),%rax;
    # add %rcx,%rax; jmp *%rax; three cases; ret; then the table.
    code = bytes.fromhex("83ff02" "7717" "488d0d0e000000" "48630cb9"
                         "4801c8" "ffe0" "90" "90" "90" "c3")
    table = struct.pack("<3i", -0x0e + 0x12, -0x0e + 0x13, -0x0e + 0x14)
    put("cfg", "hand-pcrel-table",
        bytes([1]) + struct.pack("<H", len(code)) + code + table)
    code = bytes.fromhex("ff24fd00006000" "c3")
    put("cfg", "hand-abs-table", bytes([0]) + struct.pack("<H", len(code))
        + code + struct.pack("<2Q", 0x401007, 0x401007))
    code = bytes.fromhex("e800000000" "0f0b" "cccc" "0f1f440000")
    put("cfg", "hand-noreturn", bytes([0]) + struct.pack("<H", len(code))
        + code)
    put_dict("cfg", ["\xff\xe0", "\x48\x63\x04", "\x48\x8d\x0d",
                     "\xff\x24\xc5", "\x0f\x1f\x44\x00\x00"])


# ------------------------------------------------------------- pseudo probes --

def llvm_guid(name):
    """LLVM's Function::getGUID: MD5 low 64 bits, little-endian."""
    return int.from_bytes(hashlib.md5(name.encode()).digest()[:8], "little")


def probe_input(syms, desc, probe):
    """fuzz_probes' input: symbol count, (GUID, addr) pairs, desc length,
    desc bytes, probe bytes."""
    out = bytes([len(syms)])
    for g, a in syms:
        out += struct.pack("<QQ", g, a)
    return out + struct.pack("<H", len(desc)) + desc + probe


def uleb(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def sleb(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if (v == 0 and not b & 0x40) or (v == -1 and b & 0x40):
            out.append(b)
            return bytes(out)
        out.append(b | 0x80)


def probe_seeds():
    """fuzz_probes: the sections of SEED_C built with clang-16
    -fpseudo-probe-for-profiling (with the symbols of its top-level
    records, at most 15), each record alone, and hand-built records: an
    inlinee chain, a sentinel, an absolute address, padded LEB128."""
    if have("clang-16"):
        src = os.path.join(SEEDS, "src", "seed.c")
        out = os.path.join(SEEDS, "bin", "clang-O2-probes")
        run(["clang-16", "-O2", "-g", "-fpseudo-probe-for-profiling",
             "-o", out, src])
        tmp = tempfile.mkdtemp()
        dpath, ppath = os.path.join(tmp, "d"), os.path.join(tmp, "p")
        run(["objcopy", "--dump-section", ".pseudo_probe_desc=" + dpath,
             "--dump-section", ".pseudo_probe=" + ppath, out,
             os.path.join(tmp, "x")])
        with open(dpath, "rb") as f:
            desc = f.read()
        with open(ppath, "rb") as f:
            probe = f.read()
        shutil.rmtree(tmp)
        nm = subprocess.run(["nm", "--defined-only", out],
                            capture_output=True, text=True).stdout
        addr = {}
        for line in nm.splitlines():
            f = line.split()
            if len(f) == 3 and f[1] in "tTwW":
                addr[llvm_guid(f[2])] = int(f[0], 16)
        # The top-level records: GUID, counts, then skip them by decoding.
        records, p = [], 0
        def u(p):
            v = s = 0
            while True:
                c = probe[p]
                p += 1
                v |= (c & 0x7F) << s
                s += 7
                if c < 0x80:
                    return v, p
        def node(p, top):
            if not top:
                _, p = u(p)
            g = struct.unpack_from("<Q", probe, p)[0]
            p += 8
            np, p = u(p)
            ni, p = u(p)
            for _ in range(np):
                _, p = u(p)
                t = probe[p]
                p += 1
                if t & 0x80:
                    _, p = u(p)
                else:
                    p += 8
            for _ in range(ni):
                p = node(p, False)
            return p
        while p < len(probe):
            q = node(p, True)
            records.append((struct.unpack_from("<Q", probe, p)[0],
                            probe[p:q]))
            p = q
        syms = [(g, addr[g]) for g, _ in records if g in addr][:15]
        put("probes", "clang-O2", probe_input(syms, desc, probe))
        for i, (g, rec) in enumerate(records[:16]):
            put("probes", "record-%d" % i,
                probe_input([(g, addr.get(g, 0x1000))], b"", rec))
    ga, gb, gc = 0xA1, 0xB2, 0xC3
    syms = [(ga, 0x1000), (gb, 0x2000), (gc, 0x3000)]
    desc = (struct.pack("<QQ", ga, 7) + uleb(1) + b"a" +
            struct.pack("<QQ", gb, 8) + uleb(1) + b"b")
    def hdr(g, np, ni):
        return struct.pack("<Q", g) + uleb(np) + uleb(ni)
    def pr(i, t, d):
        return uleb(i) + bytes([0x80 | t]) + sleb(d)
    chain = hdr(ga, 1, 1) + pr(1, 0, 0)
    for i in range(1, 40):
        chain += uleb(2) + hdr(gb if i % 2 else ga, 1, int(i < 39)) + \
            pr(1, 0, 1)
    put("probes", "hand-chain", probe_input(syms, desc, chain))
    sentinel = (hdr(0xDEAD, 2, 0) + uleb(0) + bytes([0x20]) +
                struct.pack("<Q", gc) + pr(4, 0, 0x10))
    put("probes", "hand-sentinel", probe_input(syms, desc, sentinel))
    absolute = (hdr(ga, 2, 1) + uleb(7) + bytes([0x05]) +
                struct.pack("<Q", 0x7777) + pr(8, 1, 1) + uleb(8) +
                hdr(gb, 1, 0) + pr(1, 2, -3))
    put("probes", "hand-absolute", probe_input(syms, desc, absolute))
    padded = hdr(ga, 1, 0) + uleb(3) + bytes([0x80, 0xFE]) + \
        b"\xff" * 10 + b"\x7f"
    put("probes", "hand-padded", probe_input(syms, desc, padded))
    put_dict("probes", ["\x80\x80\x80\x00", "\xff\xff\xff\x7f",
                        "\x20" + "\x00" * 8, "\xa1" + "\x00" * 7])


# -------------------------------------------------------------------- fdata --

def fdata_seeds():
    """fuzz_fdata: branch records against fuzz_fdata.c's fixed symbols
    (main, mix/1, mix/2, 'with space', .Lcold/1)."""
    put("fdata", "instrumented",
        "1 main 10 1 main 20 0 100\n1 main 1c 1 mix/1 0 0 100\n"
        "1 mix/1 8 1 mix/1 10 0 40\n1 mix/2 4 1 mix/2 8 3 12\n"
        "0 [unknown] 0 1 main 0 0 1\n1 with\\ space 4 1 PG.Lcold/1 0 0 5\n")
    put("fdata", "memory", "1 main 4 1 main 8 0 1\n4 main 10 4 tbl 0 7\n")
    put("fdata", "no-lbr", "no_lbr cpu-clock:\n1 main 4 100\n")
    put("fdata", "bolted", "boltedcollection\n1 main 4 1 main 8 0 1\n")
    put("fdata", "stale", "1 main 999 1 nosuch 0 0 1\n")
    put_dict("fdata", ["1 ", "0 ", "2 ", "[unknown] ", "main ", "mix/1 ",
                       "mix/2 ", "with\\ space ", "PG.Lcold/1 ", "no_lbr",
                       "boltedcollection", " 0 ", "\n", "ffffffffffffffff",
                       "1e308", "nan", "inf", "-1"])


# -------------------------------------------------------------------- HTTP --

def http_seeds():
    bid = "5f3c0a9e8d7b6c5a4f3e2d1c0b0a09080706e1"
    reqs = [
        "GET /v1/status", "GET /v1/binaries", "GET /v1/binaries/webserver",
        "GET /metrics", "HEAD /v1/status", "GET /",
        "GET /v1/symcache/" + bid,
        "GET /buildid/%s/debuginfo" % bid,
        "GET /buildid/%s/executable" % bid,
        "PUT /v1/symbols?binary=webserver",
        "POST /v1/backup?dir=/var/backups/fdod%2Fx",
        "GET /v1/profiles/webserver?format=llvm&labels=mode:serving"
        "&window=7d&half_life=3d",
        "GET /v1/profiles/webserver?format=bolt&build_id=" + bid +
        "&min_samples=1000&min_hosts=2&min_span=1h&min_share=0.001",
        "GET /v1/profiles/webserver?mix=mode:serving*3,mode:batch+region:eu*1"
        "&line_count=max",
        "GET /v1/profiles/web%73erver?format=folded&labels=a=b,c:d",
        "POST /v1/profiles/webserver/publish?format=gcc",
        "GET /v1/profiles/webserver/versions",
        "GET /v1/profiles/webserver/versions/" + "ab" * 32,
        "DELETE /v1/status", "GET /v1/profiles/a%2Fb/versions",
        "GET /v1/profiles/x?window=18446744073709551615s&half_life=99999999999w",
    ]
    for i, r in enumerate(reqs):
        put("http", "req-%02d" % i, r)
    put_dict("http", ["GET ", "HEAD ", "PUT ", "POST ", "/v1/", "profiles",
                      "/versions", "/publish", "/buildid/", "/debuginfo",
                      "/executable", "symcache", "binaries", "status",
                      "metrics", "symbols", "backup", "?", "&", "=", "%2F",
                      "%00", "%", "+", "format=", "labels=", "mix=",
                      "window=", "half_life=", "min_span=", "min_samples=",
                      "min_hosts=", "build_id=", "binary=", "dir=",
                      "line_count=", "min_share=", "*", ":", ",", "7d",
                      "12h", "30m", "2w", "llvm", "bolt", "pprof"])

# ------------------------------------------------------ perf recordings --

PERF_IDS = ("72bf06c6bbf1b667161c5c0086e6a979606ed1bd /bin/prog\n"
            "b517523ef515b3d4c14de1aac7e9c9e33e1a02fe /lib/libw.so\n"
            "32a7f3bacee6bf69da94f497a8a076483baea20e [kernel.kallsyms]\n")
PERF_PRELUDE = (
    "    0/0         0.000000: PERF_RECORD_MMAP -1/0: [0xffffffff81000000"
    "(0x1259b00) @ 0xffffffff81000000]: x [kernel.kallsyms]_text\n"
    "  100/100   100.000000: PERF_RECORD_COMM exec: prog:100/100\n"
    "  100/100   100.000001: PERF_RECORD_MMAP2 100/100: [0x555555555000"
    "(0x1000) @ 0x1000 fe:00 1 2]: r-xp /bin/prog\n"
    "  100/100   100.000002: PERF_RECORD_MMAP2 100/100: [0x7f0000001000"
    "(0x2000) @ 0x1000 fe:00 3 4]: r-xp /lib/libw.so\n")


def perf_seeds():
    """fuzz_perf: byte 0 (the split), the build-id table, NUL, the text
    `perf script -F pid,tid,time,period,event,ip,dso,brstack --no-inline
    --show-mmap-events --show-task-events` prints; and perf.data headers."""
    def seed(name, text, ids=PERF_IDS, cut=7):
        put("perf", name, bytes([cut]) + ids.encode() + b"\0" +
            text.encode())
    seed("relative.txt", PERF_PRELUDE +
         "  100/100   100.500000:     250000 cpu-clock: \n"
         "\tffffffff8177d51a ([kernel.kallsyms])\n"
         "\t            11a6 (/bin/prog)\n\t            1165 (/bin/prog)\n"
         "\n  100/100   101.000000:     250000 cpu-clock: \n"
         "\t            1128 (/lib/libw.so)\n\t            1175 (/bin/prog)"
         "\n\n")
    seed("absolute.txt", PERF_PRELUDE +
         "  100/100   100.500000:     250000 cpu-clock: \n"
         "\t    5555555551a6 hot (/bin/prog)\n"
         "\t    555555555165 main (/bin/prog)\n\n")
    seed("brstack.txt", PERF_PRELUDE +
         "  100/100   100.500000:    1000000 cycles: \n"
         "\t    5555555551a6 (/bin/prog)\n"
         "0x5555555551b2(/bin/prog)/0x5555555551a0(/bin/prog)/P/-/-/12  "
         "0x5555555551b2/0x5555555551a0/M/-/-/3/COND/- \n"
         "  100/100   100.600000:    1000000 cycles:      5555555551ab "
         "(/bin/prog) 0x55555555517d/0x555555555160/P/-/-/5 \n")
    seed("fork-exec.txt", PERF_PRELUDE +
         "  100/100   100.1: PERF_RECORD_FORK(200:200):(100:100)\n"
         "  200/200   100.2:    1000 cpu-clock:   5555555551a6 (/bin/prog)\n"
         "  200/200   100.3: PERF_RECORD_COMM exec: sh:200/200\n"
         "  200/200   100.4: PERF_RECORD_EXIT(200:200):(100:100)\n"
         "  100/100   4000.5:    3000 cpu-clock:   5555555551a6 (/bin/prog)"
         "\n")
    seed("mmap-buildid.txt",
         "  7/7   5.0: PERF_RECORD_MMAP2 7/7: [0x400000(0x1000) @ 0 <"
         "72bf06c6bbf1b667161c5c0086e6a979606ed1bd>]: r-xp /opt/app\n"
         "  7/7   5.1:          1 cycles:u:      400010 (/opt/app)\n", ids="")
    seed("truncated.txt", PERF_PRELUDE +
         "  100/100   100.5:  1 cpu-clock: \n\t11a6 (/bin/prog)\n")
    hdr = bytearray(512)
    hdr[0:8] = b"PERFILE2"
    struct.pack_into("<12Q", hdr, 8, 104, 136, 104, 0, 104, 200, 0, 0, 4,
                     0, 0, 0)
    struct.pack_into("<2Q", hdr, 304, 400, 50)
    put("perf", "perf-data-header.bin", bytes(hdr))
    put("perf", "perf-data-pipe.bin", b"PERFILE2" + struct.pack("<Q", 16))
    put_dict("perf", ["PERF_RECORD_MMAP2 ", "PERF_RECORD_MMAP ",
                      "PERF_RECORD_FORK(", "PERF_RECORD_EXIT(",
                      "PERF_RECORD_COMM exec: ", "):(", "]: r-xp ",
                      "]: x ", " @ 0x", "(0x", "cpu-clock: ", "cycles:u: ",
                      "\t", "\n\n", "0x", "/P/-/-/0 ", "/M/", "(/bin/prog)",
                      "([kernel.kallsyms])", "[vdso]", "//anon", " <", ">",
                      "PERFILE2", "2ELIFREP"])


# ---------------------------------------------------------- pprof bodies --

def pprof_profile(maps, locs, samples, types=(("samples", "count"),
                                              ("cpu", "nanoseconds")),
                  period=10000000, time_nanos=1700000000 * 10**9):
    """profile.proto (google/pprof's field numbers): maps = [(id, start,
    limit, offset, file, build_id)], locs = [(id, mapping, address)],
    samples = [([location ids], [values])]."""
    table = [""]

    def s(x):
        if x not in table:
            table.append(x)
        return table.index(x)

    def packed(num, xs):
        return f_bytes(num, b"".join(varint(x) for x in xs))
    out = [f_bytes(1, f_varint(1, s(t)) + f_varint(2, s(u)))
           for t, u in types]
    for ids, vals in samples:
        out.append(f_bytes(2, packed(1, ids) + packed(2, vals)))
    for mid, start, limit, off, fname, bid in maps:
        out.append(f_bytes(3, f_varint(1, mid) + f_varint(2, start) +
                           f_varint(3, limit) + f_varint(4, off) +
                           f_varint(5, s(fname)) + f_varint(6, s(bid))))
    for lid, mid, addr in locs:
        out.append(f_bytes(4, f_varint(1, lid) + f_varint(2, mid) +
                           f_varint(3, addr)))
    if time_nanos:
        out += [f_varint(9, time_nanos), f_varint(10, 2 * 10**9)]
    if period:
        out += [f_bytes(11, f_varint(1, s("cpu")) +
                        f_varint(2, s("nanoseconds"))),
                f_varint(12, period)]
    out += [f_bytes(6, x) for x in table]
    return b"".join(out)


def pprof_seeds():
    """fuzz_pprof: POST /v1/pprof bodies, gzipped or not: a Go-like CPU
    profile (a binary with a GNU build-id, libc without, [vdso]), one of
    perf_to_profile's shape, nanoseconds alone, and broken ones."""
    bid = "72bf06c6bbf1b667161c5c0086e6a979606ed1bd"
    maps = [(1, 0x400000, 0x500000, 0, "/usr/bin/prog", bid),
            (2, 0x7f0000001000, 0x7f0000101000, 0x1000, "/lib/libc.so.6",
             ""),
            (3, 0x7ffd00000000, 0x7ffd00002000, 0, "[vdso]", ""),
            (4, 0x10000000, 0x10100000, 0, "/opt/go", "abc/def")]
    locs = [(10, 1, 0x401234), (11, 1, 0x401100), (12, 1, 0x400800),
            (20, 2, 0x7f0000002345), (30, 3, 0x7ffd00000100),
            (40, 4, 0x10000010), (50, 0, 0x1234), (60, 1, 0)]
    samples = [([10, 11, 12], [3, 30000000]), ([20, 12], [1, 10000000]),
               ([30], [2, 20000000]), ([40, 50, 60], [1, 10000000]),
               ([], [4, 40000000]), ([11], [0, 0])]
    go = pprof_profile(maps, locs, samples)
    put("pprof", "go-like.pb", go)
    put("pprof", "go-like.pb.gz", gzip_bytes(go))
    put("pprof", "no-time.pb", pprof_profile(maps, locs, samples,
                                             time_nanos=0) + b"\0")
    put("pprof", "perf-to-profile.pb", pprof_profile(
        maps, locs, [(ids, [v[0], v[1] // 7]) for ids, v in samples],
        types=(("cycles_sample", "count"), ("cycles_event", "count")),
        period=0))
    put("pprof", "nanoseconds.pb", pprof_profile(
        maps, locs, [(ids, [v[1] + 5000000]) for ids, v in samples],
        types=(("cpu", "nanoseconds"),)))
    put("pprof", "outside.pb", pprof_profile(
        maps, [(10, 1, 0x600000)], [([10], [1, 10000000])]))
    put("pprof", "heap.pb", pprof_profile(
        maps, locs, samples, types=(("alloc_objects", "count"),
                                    ("alloc_space", "bytes"))))
    # Ids that are not 1..n (sorted, not indexed), a file offset past
    # 2^40 - 2 (unmapped: offset_out_of_range), jittery nanoseconds
    # (rounded to Profile.period).
    put("pprof", "sparse-ids.pb", pprof_profile(
        [(m[0] << 40 | 7,) + m[1:] for m in maps],
        [(lid << 33 | 3, mid << 40 | 7 if mid else 0, addr)
         for lid, mid, addr in locs],
        [([lid << 33 | 3 for lid in ids], v) for ids, v in samples]))
    put("pprof", "offset-past.pb", pprof_profile(
        [(1, 0x400000, 0x402000, (1 << 40) - 0x1001, "/usr/bin/prog", bid)],
        [(1, 1, 0x400fff), (2, 1, 0x401000)],
        [([2, 1], [3, 30000000]), ([2], [1, 10000000])]))
    put("pprof", "jitter-ns.pb", pprof_profile(
        maps, locs, [(ids, [v[1] * 100 + 7]) for ids, v in samples],
        types=(("cpu", "nanoseconds"),)))
    put("pprof", "cut.pb.gz", gzip_bytes(go)[:40])
    put("pprof", "bomb.gz", gzip_bytes(b"\0" * (4 << 20)))


# ------------------------------------------------- OTLP profile bodies --

U64 = (1 << 64) - 1


def f_fixed64(num, v):
    return varint(num << 3 | 1) + struct.pack("<Q", v)


def f_packed(num, xs, fixed=False):
    """A packed repeated field (int64 as two's complement); nothing when
    xs is empty, as proto3 writers do."""
    if not xs:
        return b""
    if fixed:
        return f_bytes(num, b"".join(struct.pack("<Q", x) for x in xs))
    return f_bytes(num, b"".join(varint(x & U64) for x in xs))


def any_value(v):
    """AnyValue: str, bool, int, float, bytes, or ("array"|"kvlist",
    bytes) (fdod reads those two as bytes)."""
    if isinstance(v, tuple):
        return f_bytes(5 if v[0] == "array" else 6, v[1])
    if isinstance(v, bool):
        return f_varint(2, int(v))
    if isinstance(v, int):
        return f_varint(3, v & U64)
    if isinstance(v, float):
        return f_double(4, v)
    if isinstance(v, bytes):
        return f_bytes(7, v)
    return f_bytes(1, v)


def key_value(k, v):
    return f_bytes(1, k) + f_bytes(2, any_value(v))


class Otlp:
    """An ExportProfilesServiceRequest (schemas/otlp_profiles.proto,
    upstream's field numbers): the dictionary's tables, each with its
    zero element, filled by the methods, which return indices."""

    def __init__(self):
        self.strings = [""]
        self.attrs, self.maps, self.locs = [b""], [b""], [b""]
        self.funcs, self.stacks, self.links = [b""], [b""], [b""]

    def s(self, x):
        if x not in self.strings:
            self.strings.append(x)
        return self.strings.index(x)

    def attr(self, key, value, unit=""):
        m = f_varint(1, self.s(key)) + f_bytes(2, any_value(value))
        if unit:
            m += f_varint(3, self.s(unit))
        self.attrs.append(m)
        return len(self.attrs) - 1

    def mapping(self, start, limit, off, fname, attrs=()):
        self.maps.append(f_varint(1, start) + f_varint(2, limit) +
                         f_varint(3, off) + f_varint(4, self.s(fname)) +
                         f_packed(5, attrs))
        return len(self.maps) - 1

    def func(self, name, fname="", line=0):
        self.funcs.append(f_varint(1, self.s(name)) +
                          f_varint(2, self.s(name)) +
                          f_varint(3, self.s(fname)) + f_varint(4, line))
        return len(self.funcs) - 1

    def loc(self, mapping, addr, lines=(), attrs=()):
        m = f_varint(1, mapping) + f_varint(2, addr)
        for fn, line in lines:
            m += f_bytes(3, f_varint(1, fn) + f_varint(2, line))
        self.locs.append(m + f_packed(4, attrs))
        return len(self.locs) - 1

    def stack(self, locs):
        self.stacks.append(f_packed(1, locs))
        return len(self.stacks) - 1

    def link(self):
        self.links.append(f_bytes(1, b"\x11" * 16) + f_bytes(2, b"\x22" * 8))
        return len(self.links) - 1

    def profile(self, samples, stype=("samples", "count"),
                ptype=("cpu", "nanoseconds"), period=50000000,
                t0=1763719200 * 10**9, dur=2 * 10**9, v19=False):
        """samples: (stack, attrs, values, timestamps, link); v19: the
        v1.8/v1.9 Sample (values 2, attribute_indices 3, link 4)."""
        def vt(t):
            return f_varint(1, self.s(t[0])) + f_varint(2, self.s(t[1]))
        out = f_bytes(1, vt(stype)) if stype else b""
        for stack, attrs, values, ts, link in samples:
            if v19:
                m = (f_varint(1, stack) + f_packed(2, values) +
                     f_packed(3, attrs) + (f_varint(4, link) if link
                                           else b""))
            else:
                m = (f_varint(1, stack) + f_packed(2, attrs) +
                     (f_varint(3, link) if link else b"") +
                     f_packed(4, values))
            out += f_bytes(2, m + f_packed(5, ts, fixed=True))
        if t0:
            out += f_fixed64(3, t0)
        if dur:
            out += f_varint(4, dur)
        if ptype:
            out += f_bytes(5, vt(ptype))
        if period:
            out += f_varint(6, period)
        return out

    def request(self, resources):
        """resources: [(resource attributes [(k, v)], [(scope
        attributes, [profile bytes])])]."""
        out = b""
        for rattrs, scopes in resources:
            rp = f_bytes(1, b"".join(f_bytes(1, key_value(k, v))
                                     for k, v in rattrs))
            for sattrs, profs in scopes:
                scope = (f_bytes(1, "go.opentelemetry.io/ebpf-profiler") +
                         f_bytes(2, "v0.0.202547") +
                         b"".join(f_bytes(3, key_value(k, v))
                                  for k, v in sattrs))
                rp += f_bytes(2, f_bytes(1, scope) +
                              b"".join(f_bytes(2, p) for p in profs))
            out += f_bytes(1, rp + f_bytes(3, "https://opentelemetry.io/"
                                           "schemas/1.34.0"))
        d = (b"".join(f_bytes(1, m) for m in self.maps) +
             b"".join(f_bytes(2, m) for m in self.locs) +
             b"".join(f_bytes(3, m) for m in self.funcs) +
             b"".join(f_bytes(4, m) for m in self.links) +
             b"".join(f_bytes(5, x) for x in self.strings) +
             b"".join(f_bytes(6, m) for m in self.attrs) +
             b"".join(f_bytes(7, m) for m in self.stacks))
        return out + f_bytes(2, d)


OTLP_BID = "72bf06c6bbf1b667161c5c0086e6a979606ed1bd"
OTLP_HTL = "0123456789abcdef0123456789abcdef"
OTLP_T0 = 1763719200 * 10**9


def otlp_ebpf(v19=False, values=False, bid_key="gnu", bid=OTLP_BID,
              start=0x1000, off=0x1000, leaf=0x1130, caller=0x1184):
    """What the eBPF profiler sends: a GNU build-id mapping in ELF
    virtual addresses (a PIE's text segment: vaddr = offset), an
    htlhash-only library, symbolized kernel frames (no mapping, a line)
    and an interpreted frame (a mapping without build-id, a line);
    samples with one timestamp each sample taken and no values (or
    values), the binary and thread as sample attributes, the host as a
    resource attribute. Callers are return address - 1."""
    o = Otlp()
    a_bid = o.attr("process.executable.build_id." + bid_key, bid)
    a_htl = o.attr("process.executable.build_id.htlhash", OTLP_HTL)
    a_exe = o.attr("process.executable.name", "webserver")
    a_thr = o.attr("thread.name", "worker-1")
    a_thr2 = o.attr("thread.name", "gc")
    a_kind = o.attr("profile.frame.type", "native")
    m_exe = o.mapping(start, start + 0x2000, off, "/usr/bin/webserver",
                      [a_bid])
    m_htl = o.mapping(0x7f0000001000, 0x7f0000009000, 0x1000,
                      "/usr/lib/libhtl.so", [a_htl])
    m_py = o.mapping(0x7f1000000000, 0x7f1000100000, 0,
                     "/usr/bin/python3.11")
    f_sys = o.func("do_syscall_64", "arch/x86/entry/common.c", 70)
    f_py = o.func("handler", "/srv/app.py", 12)
    l_leaf = o.loc(m_exe, leaf, attrs=[a_kind])
    l_call = o.loc(m_exe, caller)
    l_htl = o.loc(m_htl, 0x7f0000002345)
    l_kern = o.loc(0, 0xffffffff81000123, lines=[(f_sys, 77)])
    l_py = o.loc(m_py, 0, lines=[(f_py, 14)])
    s1 = o.stack([l_leaf, l_call])
    s2 = o.stack([l_kern, l_leaf, l_call])
    s3 = o.stack([l_htl, l_call])
    s4 = o.stack([l_kern])
    s5 = o.stack([l_py, l_call])
    link = o.link()
    samples = []
    t = OTLP_T0 + 5
    for stack, n, thr in ((s1, 5, a_thr), (s2, 3, a_thr), (s3, 2, a_thr2),
                          (s4, 7, a_thr), (s5, 1, a_thr2)):
        ts = [t + i * 1000 for i in range(n)]
        samples.append((stack, [a_exe, thr], [n] if values or v19 else [],
                        [] if v19 else ts, link if stack == s2 else 0))
    prof = o.profile(samples, v19=v19)
    return o.request([([("host.name", "host-17"),
                        ("service.name", "webserver")], [([], [prof])])])


def otlp_seeds():
    """fuzz_otlp: POST /v1development/profiles bodies, gzipped or not:
    the eBPF profiler's shape (opentelemetry-proto v1.10 and later, and
    the v1.8/v1.9 Sample), values or timestamps, htlhash-only, symbolized
    kernel frames only, Go and non-hex build-ids, pprof-style process
    addresses, several resources and profiles, nanoseconds; and broken
    ones (cut, outside the mapping, an index past its table, the v1.7
    shape, no time, a heap profile, a gzip bomb). An odd size maps
    thread.name to a label too (fuzz_otlp.c), so the plain seeds come in
    both parities (a 3-byte unknown field 15 flips it)."""
    def both(name, body):
        put("otlp", name, body)
        put("otlp", name + ".odd", body + f_varint(15, 128))

    ebpf = otlp_ebpf()
    both("ebpf.pb", ebpf)
    put("otlp", "ebpf.pb.gz", gzip_bytes(ebpf))
    v19 = otlp_ebpf(v19=True)
    both("ebpf-v19.pb", v19)
    put("otlp", "ebpf-v19.pb.gz", gzip_bytes(v19))
    both("values.pb", otlp_ebpf(values=True))
    both("go-build-id.pb", otlp_ebpf(bid_key="go",
                                     bid="abc/def/ghi/jkl"))
    both("not-hex.pb", otlp_ebpf(bid="not a build-id"))
    both("pprof-style.pb", otlp_ebpf(start=0x555555555000,
                                     leaf=0x555555555130,
                                     caller=0x555555555184))
    # The caller's file offset is past 2^40 - 2 (offset_out_of_range).
    both("offset-past.pb", otlp_ebpf(off=(1 << 40) - 0x1001,
                                     caller=0x2800))
    put("otlp", "outside.pb", otlp_ebpf(leaf=0x7fff0000))
    put("otlp", "cut.pb", ebpf[:-3])
    put("otlp", "cut-half.pb", ebpf[:len(ebpf) // 2])
    put("otlp", "cut.pb.gz", gzip_bytes(ebpf)[:40])
    put("otlp", "bomb.gz", gzip_bytes(b"\0" * (4 << 20)))
    put("otlp", "empty.pb", b"")
    # v1.7.0's shape: a KeyValue (key as a string) in attribute_table.
    put("otlp", "v17.pb", bytes([0x12, 0x08, 0x32, 0x06, 0x0a, 0x01, 0x6b,
                                 0x12, 0x01, 0x00]))

    # Only frames fdod cannot symbolize: an htlhash-only mapping;
    # symbolized kernel frames.
    o = Otlp()
    a_htl = o.attr("process.executable.build_id.htlhash", OTLP_HTL)
    a_exe = o.attr("process.executable.name", "webserver")
    m = o.mapping(0x1000, 0x9000, 0x1000, "/usr/lib/libhtl.so", [a_htl])
    lh = [o.loc(m, 0x1000 + 0x40 * i) for i in range(4)]
    samples = [(o.stack(lh[:i + 1]), [a_exe], [], [OTLP_T0 + i], 0)
               for i in range(4)]
    both("htlhash-only.pb", o.request([([], [([], [o.profile(samples)])])]))
    o = Otlp()
    a_exe = o.attr("process.executable.name", "webserver")
    f = o.func("do_syscall_64")
    lk = o.loc(0, 0xffffffff81000123, lines=[(f, 0)])
    lk2 = o.loc(0, 0xffffffff81000456, lines=[(o.func("schedule"), 0)])
    samples = [(o.stack([lk, lk2]), [a_exe], [3], [], 0),
               (o.stack([lk2]), [a_exe], [1], [], 0)]
    both("kernel-only.pb", o.request([([], [([], [o.profile(samples)])])]))

    # Several resources, scopes and profiles; the binary from the
    # resource (service.name) or the sample; no binary at all; other
    # AnyValue kinds; a profile with nanoseconds for values.
    o = Otlp()
    a_bid = o.attr("process.executable.build_id.gnu", OTLP_BID)
    a_thr = o.attr("thread.name", "io")
    a_int = o.attr("process.pid", 4242)
    a_kv = o.attr("x.kv", ("kvlist", key_value("a", "b")))
    m = o.mapping(0x400000, 0x500000, 0, "/opt/svc", [a_bid])
    ls = [o.loc(m, 0x400000 + 0x10 * i) for i in range(6)]
    st = [o.stack(ls[i:i + 3]) for i in range(4)]
    ns = o.profile([(st[0], [a_thr, a_int], [30000000], [], 0),
                    (st[1], [a_kv], [50000001], [], 0)],
                   stype=("cpu", "nanoseconds"), period=10000000)
    counts = o.profile([(st[2], [a_thr], [2], [], 0),
                        (st[3], [], [], [OTLP_T0 + 1, OTLP_T0 + 2], 0)],
                       stype=("samples", "count"), ptype=None, period=0,
                       t0=0, dur=0)
    both("multi.pb", o.request([
        ([("service.name", "svc"), ("host.name", "a"), ("b", True),
          ("f", 1.5), ("raw", b"\x00\x01"), ("arr", ("array", b"\x0a\x00"))],
         [([("scope.k", "v")], [ns, counts])]),
        ([("host.name", "b")], [([], [counts]), ([], [ns])])]))
    # No time at all (neither time_unix_nano nor timestamps): refused.
    both("no-time.pb", o.request([([("service.name", "svc")],
                                   [([], [o.profile(
                                       [(st[0], [], [1], [], 0)], t0=0,
                                       dur=0)])])]))
    # A heap profile (bytes): refused.
    both("heap.pb", o.request([([("service.name", "svc")], [([], [o.profile(
        [(st[0], [], [4096], [], 0)], stype=("alloc_space", "bytes"),
        ptype=("space", "bytes"), period=524288)])])]))
    # A stack index past its table: refused.
    both("bad-index.pb", o.request([([("service.name", "svc")], [([], [
        o.profile([(99, [], [1], [], 0)])])])]))
    # A stack deeper than a batch takes (max_stack_depth 1024).
    o = Otlp()
    a_bid = o.attr("process.executable.build_id.gnu", OTLP_BID)
    m = o.mapping(0x400000, 0x500000, 0, "/opt/svc", [a_bid])
    deep = o.stack([o.loc(m, 0x400000 + 4 * i) for i in range(1100)])
    both("deep.pb", o.request([([("service.name", "svc")], [([], [
        o.profile([(deep, [], [1], [], 0)])])])]))
    put_dict("otlp", ["process.executable.build_id.gnu",
                      "process.executable.build_id.htlhash",
                      "process.executable.build_id.go",
                      "process.executable.name", "service.name",
                      "host.name", "thread.name", "samples", "count",
                      "cpu", "nanoseconds", "bytes", "alloc_space",
                      OTLP_BID, OTLP_HTL, "\x0a\x00", "\x12\x00",
                      "\x2a\x00"])


def gzip_bytes(data):
    c = zlib.compressobj(9, zlib.DEFLATED, 16 + 15)
    return c.compress(data) + c.flush()


def policy_seeds():
    """fuzz_policy: sampling policy files (--sampling-policy), good and
    refused."""
    put("policy", "fleet.txt",
        "# fleet\nwebserver samples=5000000/1d agent_cpu=1.5%\n"
        "* samples=1000/1h  # the rest\nbatch mode=paused\n"
        "new mode=triggered trigger_freq=4999 trigger_samples=200 "
        "max_freq=499 min_freq=2\n")
    put("policy", "empty.txt", "")
    put("policy", "twice.txt", "a mode=paused\na samples=1/1s\n")
    put("policy", "bad-key.txt", "a colour=red\n")
    put("policy", "bad-range.txt", "a min_freq=10 max_freq=5\n")
    put("policy", "nul.txt", b"a mode=paused\0\n")
    put("policy", "labels.txt",
        "web max_freq=100\nweb labels=zone=eu max_freq=200\n"
        "web labels=mode=batch,zone=eu samples=10/1m\n"
        "* labels=zone=us mode=paused\n")
    put("policy", "labels-twice.txt",
        "a labels=z=1,y=2\na labels=y=2,z=1\n")
    put_dict("policy", ["samples=", "mode=", "max_freq=", "min_freq=",
                        "trigger_freq=", "trigger_samples=", "agent_cpu=",
                        "labels=", ",",
                        "continuous", "paused", "triggered", "/1d", "/1h",
                        "%", "#", "*"])


def loopguard_seeds():
    """fuzz_loopguard: X-Forwarded-For, X-Fdod-Via and the node's name
    (hop limit byte first, fields NUL-separated; "-" is an absent
    header)."""
    put("loopguard", "first.bin", b"\x07-\0-\0http://10.0.0.1:7471")
    put("loopguard", "chain.bin",
        b"\x07198.51.100.4, 10.0.0.2\0http://10.0.0.2:7471, "
        b"http://10.0.0.3:7471\0http://10.0.0.1:7471")
    put("loopguard", "self.bin",
        b"\x07a\0x,  http://n:1 ,y\0http://n:1")
    put("loopguard", "limit.bin", b"\x00a,b\0-\0fdod-1")
    put("loopguard", "binary.bin", b"\x07a\x01b\0\xff\0n")
    put_dict("loopguard", [",", ", ", "\x00", "-", "http://", "fdod-"])


def header_seeds():
    """fuzz_header: a cap byte, the header name, NUL, an answer's header
    block as fdod sends it to fdoctl pull --for-build-id."""
    block = (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
             b"X-Fdod-For-Build-Id: 370efef24f08f580836e44cbfc3377b2655f9406"
             b"\r\nX-Fdod-Stale-Fresh: 0.0486\r\n"
             b"X-Fdod-Stale-Functions: fresh=5,matched=3,renamed=1,"
             b"dropped=1\r\n\r\n")
    put("header", "fresh.bin", b"\x3f" + b"X-Fdod-Stale-Fresh\0" + block)
    put("header", "functions.bin",
        b"\x20" + b"x-fdod-stale-functions\0" + block)
    put("header", "absent.bin", b"\x3f" + b"X-Fdod-Stale-Dropped\0" + block)
    put("header", "bare-lf.bin", b"\x07" + b"A\0B: 1\nA:  x y\tz\nA: 2")
    put("header", "binary.bin", b"\x05" + b"N\0N:\xff\x00\x01a.b\r")
    put_dict("header", ["X-Fdod-Stale-", "X-Fdod-For-Build-Id", ": ",
                        "\r\n", "=", ","])


# ----------------------------------------------------------------- runchunk --

def uvarint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7f) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def run_chunk(entries):
    """A chunk of a counts run (storage/codec.c): header, then per entry
    the id step, weight high and low, samples as varints."""
    body = bytearray()
    prev = None
    for sid, w, s in entries:
        body += uvarint(sid if prev is None else sid - prev)
        body += uvarint(w >> 64) + uvarint(w & (2**64 - 1)) + uvarint(s)
        prev = sid
    return bytes([1, 0, 0, 0]) + struct.pack(">I", len(entries)) + bytes(body)


def runchunk_seeds():
    """fuzz_runchunk: chunks of counts runs, well formed and not."""
    put("runchunk", "one", run_chunk([(5, 1000000, 1)]))
    put("runchunk", "three", run_chunk([(0, 1, 1), (2**63, 2**70, 3),
                                        (2**64 - 1, 0, 0)]))
    many = [(i * 0x9e3779b97f4a7c15 % 2**64, (i + 1) * 10**9, i % 7 + 1)
            for i in range(2000)]
    many = sorted(dict((a, (a, b, c)) for a, b, c in many).values())
    put("runchunk", "many", run_chunk(many))
    good = run_chunk([(1, 2, 3), (4, 5, 6)])
    put("runchunk", "cut", good[:-1])
    put("runchunk", "trailing", good + b"\0")
    put("runchunk", "count-high", good[:4] + struct.pack(">I", 3) + good[8:])
    put("runchunk", "zero-step", run_chunk([(1, 2, 3), (1, 2, 3)]))
    put("runchunk", "long-varint", bytes([1, 0, 0, 0, 0, 0, 0, 1]) +
        b"\xff" * 11)


# ------------------------------------------------------------------ chsums --
def chsums_row(label, bucket, stack, weight, samples):
    return struct.pack("<IIQQQQ", label, bucket, stack, weight & (2**64 - 1),
                       weight >> 64, samples)


def chsums_seeds():
    """fuzz_chsums: ClickHouse answers to a read of sums (first byte: the
    number of label sets asked for), well formed and not."""
    rows = [chsums_row(0, 3600, 5, 2**100 + 3, 7),
            chsums_row(0, 3600, 9, 1, 1),
            chsums_row(1, 0, 0, 2**128 - 1, 2**64 - 1)]
    put("chsums", "empty", b"\x02")
    put("chsums", "three", b"\x02" + b"".join(rows))
    put("chsums", "label-high", b"\x01" + b"".join(rows))
    # the builder's label sets (RowBinary Strings) and stacks
    put("chsums", "labels", b"\x00" + b"\x00" + b"\x08zone=a'b" +
        b"\x08zone=c\\d")
    bid = b"\x5e" * 20
    put("chsums", "stacks", b"\x00" + b"".join(
        struct.pack("<Q", sid) + b"\x02" + b"\x14" + bid + b"\x14" + bid +
        b"\x02" + struct.pack("<QQ", 0x10, 0x20) for sid in (5, 9)))
    put("chsums", "cut", b"\x02" + b"".join(rows)[:-1])
    put("chsums", "unordered", b"\x02" + rows[1] + rows[0])
    put("chsums", "repeated", b"\x02" + rows[0] + rows[0])
    put("chsums", "error-text", b"\x02Code: 241, e.displayText() = "
        b"DB::Exception: Memory limit exceeded\n")


# ------------------------------------------------------------------ chsink --
def chsink_crc32c(b):
    crc = 0xFFFFFFFF
    for x in b:
        crc ^= x
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def chsink_file(seq, pieces):
    out = b"FDOCHOB1" + struct.pack("<QI", seq, len(pieces))
    for kind, day, body in pieces:
        out += struct.pack("<BIQI", kind, day, len(body),
                           chsink_crc32c(body)) + body
    return out


def chsink_seeds():
    """fuzz_chsink: outbox files of fdod --store (first 8 bytes: the
    sequence number of the file's name), whole, torn and damaged."""
    seq = 1765065600123
    name = struct.pack("<Q", seq)
    stacks = struct.pack("<Q", 7) + b"\x01\x14" + b"\x5e" * 20 + \
        b"\x01" + struct.pack("<Q", 0x40)
    counts = (b"\x03app\x06zone=a" + struct.pack("<IQQQQ", 3600, 7, 5, 0,
                                                  5) +
              b"\x00\x25node=" + b"0" * 32 +
              struct.pack("<IQQQQ", 0, seq, 0, 0, 1))
    good = chsink_file(seq, [(1, 0, stacks), (2, 0, counts),
                             (2, 1, counts)])
    put("chsink", "good", name + good)
    put("chsink", "empty", name + chsink_file(seq, []))
    put("chsink", "other-seq", struct.pack("<Q", seq + 1) + good)
    put("chsink", "torn", name + good[:-3])
    put("chsink", "trailing", name + good + b"\x00")
    bad = bytearray(good)
    bad[-1] ^= 1
    put("chsink", "checksum", name + bytes(bad))
    put("chsink", "kind", name + chsink_file(seq, [(3, 0, b"")]))
    put("chsink", "many-pieces", name + good[:16] +
        struct.pack("<I", 2**32 - 1) + good[20:])


def main():
    os.makedirs(CORPUS, exist_ok=True)
    batch_seeds()
    binaries = build_binaries()
    elf_seeds(binaries)
    symindex_seeds(binaries)
    cfg_seeds(binaries)
    probe_seeds()
    fdata_seeds()
    http_seeds()
    perf_seeds()
    pprof_seeds()
    policy_seeds()
    loopguard_seeds()
    header_seeds()
    otlp_seeds()
    runchunk_seeds()
    chsums_seeds()
    chsink_seeds()
    for t in sorted(os.listdir(CORPUS)):
        print("seeds: %-9s %3d files" %
              (t, len(os.listdir(os.path.join(CORPUS, t)))))


if __name__ == "__main__":
    main()
