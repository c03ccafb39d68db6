#!/usr/bin/python3
"""tests/symbolize/symdiff.py — compare `fdoctl symbolize` with llvm-symbolizer-16.

    /usr/bin/python3 tests/symbolize/symdiff.py --elf X [--debug-file Y] [--oracle Z]
        [--json] [-n 10000] [--seed 1] [--fdoctl PATH] [--examples 3]

Both tools get the same address list on stdin, in one batch: up to n
instruction boundaries of X's executable sections (tests/symbolize/corpus.py).
Outputs are split per address and compared frame by frame:

  LLVM style  the function line and the file:line:column line of each frame
  JSON style  FunctionName, FileName, Line, Column, Discriminator, StartLine
              of each frame

Each address lands in exactly one bucket:

  identical     every frame equal
  equal-by-rule only the outermost frame's function name differs, and
                llvm-symbolizer's name is the ELF symbol that contains the
                address (llvm-symbolizer names the outermost frame from the
                symbol table; fdoctl is meant to mimic that, so this bucket
                should stay small)
  a named class see CLASSES: a difference whose cause is known, with its reason
  unexplained:<field>  anything else, named by the first field that differs

Nothing is dropped: every bucket is counted and printed with examples.
--oracle names the file llvm-symbolizer reads (default: X; for a stripped X,
the unstripped original). Exit status: 0 when identical + equal-by-rule
>= 99.9% of the addresses, 1 otherwise, 2 on a usage or tool error.
"""
import argparse
import bisect
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import corpus  # noqa: E402

ROOT = corpus.ROOT
LLVM_SYMBOLIZER = "llvm-symbolizer-16"
THRESHOLD = 0.999
JSON_FIELDS = ("FunctionName", "FileName", "Line", "Column", "Discriminator", "StartLine")


class ToolError(Exception):
    pass


def fdoctl_path():
    p = os.environ.get("FDOCTL") or os.path.join(ROOT, "build", "fdoctl")
    return p


def check_tools(fdoctl=None):
    """Raise ToolError naming what is missing (never skip silently)."""
    from shutil import which
    for t in (LLVM_SYMBOLIZER, "objdump", "llvm-cxxfilt-16", "readelf"):
        if not which(t):
            raise ToolError(f"{t} is not installed: run deploy/install-deps.sh")
    if fdoctl is not None and not os.access(fdoctl, os.X_OK):
        raise ToolError(f"{fdoctl} does not exist or is not executable: run `make build/fdoctl` "
                        "(or set FDOCTL)")


# --- symbols -----------------------------------------------------------------

@dataclass
class Symbols:
    """Function and object symbols of a file (and of its debug file), demangled."""
    addrs: list = field(default_factory=list)   # sorted start addresses
    syms: list = field(default_factory=list)    # (addr, size, name) parallel to addrs
    funcs: list = field(default_factory=list)   # (addr, end) of FUNC symbols with size > 0, sorted

    def llvm_name(self, a):
        """The name llvm-symbolizer's symbol-table rule picks for a, or None:
        the last symbol starting at or below a, if a is inside it (a symbol of
        size 0 reaches to the next one)."""
        i = bisect.bisect_right(self.addrs, a) - 1
        if i < 0:
            return None
        names = set()
        # Several symbols may start at the same address (aliases): accept any.
        j = i
        while j >= 0 and self.syms[j][0] == self.syms[i][0]:
            s, size, name = self.syms[j]
            if size == 0 or a < s + size:
                names.add(name)
            j -= 1
        return names or None

    def in_function(self, a):
        """True when a FUNC symbol of non-zero size covers a. Symbols may
        nest (aliases, local labels), so look back over a few candidates."""
        i = bisect.bisect_right(self.funcs, (a, float("inf"))) - 1
        for s, e in self.funcs[max(0, i - 32):i + 1]:
            if s <= a < e:
                return True
        return False


def demangle(names):
    names = list(names)
    if not names:
        return {}
    p = subprocess.run(["llvm-cxxfilt-16"], input="\n".join(names) + "\n",
                       stdout=subprocess.PIPE, text=True, timeout=300)
    out = p.stdout.split("\n")
    return {n: (out[i] if i < len(out) else n) for i, n in enumerate(names)}


def load_symbols(*paths):
    raw = []
    for path in paths:
        if not path:
            continue
        p = subprocess.run(["readelf", "-sW", path], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True, timeout=300)
        for line in p.stdout.splitlines():
            f = line.split()
            if len(f) < 8 or not f[0].endswith(":") or f[3] not in ("FUNC", "IFUNC", "OBJECT"):
                continue
            if f[6] in ("UND", "ABS"):
                continue
            try:
                addr, size = int(f[1], 16), int(f[2], 0)
            except ValueError:
                continue
            name = f[7].split("@")[0]
            raw.append((addr, size, name, f[3]))
    dm = demangle({r[2] for r in raw})
    syms = sorted({(a, s, dm.get(n, n)) for a, s, n, _ in raw})
    S = Symbols()
    S.syms = syms
    S.addrs = [s[0] for s in syms]
    S.funcs = sorted({(a, a + s) for a, s, _, t in raw if t in ("FUNC", "IFUNC") and s > 0})
    return S


# --- running the tools ----------------------------------------------------------

def _run(cmd, addrs, env=None, timeout=600):
    data = "".join(f"0x{a:x}\n" for a in addrs)
    try:
        p = subprocess.run(cmd, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, env=env, timeout=timeout, errors="replace")
    except FileNotFoundError as e:
        raise ToolError(f"{cmd[0]}: {e}")
    if p.returncode != 0:
        raise ToolError(f"{' '.join(cmd)} exited with {p.returncode}: {p.stderr[-2000:]}")
    return p.stdout


def llvm_cmd(oracle, style):
    cmd = [LLVM_SYMBOLIZER, "--inlining", "--obj=" + oracle]
    if style == "JSON":
        cmd.append("--output-style=JSON")
    return cmd


def fdoctl_cmd(fdoctl, elf, debug_file, style, extra=()):
    cmd = [fdoctl, "symbolize", "--elf", elf]
    if debug_file:
        cmd += ["--debug-file", debug_file]
    if style == "JSON":
        cmd.append("--output-style=JSON")
    return cmd + list(extra)


def split_llvm(text):
    """LLVM style output -> list (per address) of tuples of (function, location)."""
    blocks, cur = [], []
    for line in text.split("\n"):
        if line == "":
            if cur:
                blocks.append(cur)
                cur = []
            continue
        cur.append(line)
    if cur:
        blocks.append(cur)
    res = []
    for b in blocks:
        frames = [(b[i], b[i + 1] if i + 1 < len(b) else "<missing location line>")
                  for i in range(0, len(b), 2)]
        res.append(tuple(frames))
    return res


def split_json(text):
    res = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            res.append((("<not JSON>", line[:200]),))
            continue
        if isinstance(obj, list):  # one array for the whole batch
            for o in obj:
                res.append(_json_frames(o))
        else:
            res.append(_json_frames(obj))
    return res


def _json_frames(obj):
    frames = []
    for fr in obj.get("Symbol", []) if isinstance(obj, dict) else []:
        frames.append(tuple((k, fr.get(k)) for k in JSON_FIELDS))
    return tuple(frames)


# --- comparison ------------------------------------------------------------------

# Named difference classes: (name, reason, predicate(ctx)). The first that
# matches wins. They are counted and reported, and they count AGAINST the
# threshold: only identical and equal-by-rule addresses count for it.
CLASSES = [
    ("demangler style",
     "fdoctl's C++ names are demangled in GNU __cxa_demangle style ('> >', {lambda(..)#1}, "
     "[clone .cold]), llvm-symbolizer's by LLVM's ItaniumDemangle ('>>', 'lambda'(..), (.cold)); "
     "the contract is llvm-symbolizer's output, so this is for fdoctl to fix",
     lambda c: _norm_frames(c["llvm"], c["style"]) == _norm_frames(c["fdoctl"], c["style"])),
    ("padding between functions",
     "the address is alignment padding that objdump disassembles after a function; "
     "no FUNC symbol covers it and no DIE does either",
     lambda c: c["syms"].llvm_name(c["addr"]) is None and not c["syms"].in_function(c["addr"])),
]


def _fname(frame, style):
    return frame[0] if style == "LLVM" else dict(frame)["FunctionName"]


def _first_diff(lf, ff, style):
    if len(lf) != len(ff):
        return "frame count"
    for a, b in zip(lf, ff):
        if style == "LLVM":
            if a[0] != b[0]:
                return "function name"
            la, lb = a[1].rsplit(":", 2), b[1].rsplit(":", 2)
            if len(la) != 3 or len(lb) != 3:
                return "location format"
            for name, x, y in zip(("file", "line", "column"), la, lb):
                if x != y:
                    return name
        else:
            da, db = dict(a), dict(b)
            for k in JSON_FIELDS:
                if da.get(k) != db.get(k):
                    return k
    return "?"


_LAMBDA = re.compile(r"\{lambda\(([^{}]*?)\)#\d+\}|'lambda\d*'\(([^']*?)\)")
_CLONE = re.compile(r"\s*\[clone (\.[^\]]+)\]")


def demangle_norm(name):
    """One spelling for what GNU __cxa_demangle and LLVM's ItaniumDemangle
    print differently: '> >' / '>>', {lambda(int)#1} / 'lambda'(int),
    {unnamed type#1} / 'unnamed', [clone .cold] / (.cold)."""
    if name is None:
        return name
    prev = None
    while prev != name:
        prev, name = name, name.replace("> >", ">>")
    name = _LAMBDA.sub(lambda m: f"LAMBDA({m.group(1) if m.group(1) is not None else m.group(2)})", name)
    name = re.sub(r"\{unnamed type#\d+\}|'unnamed\d*'", "UNNAMED", name)
    name = _CLONE.sub(lambda m: f" ({m.group(1)})", name)
    return name.replace("auto:1", "auto")


def _norm_frames(frames, style):
    if style == "LLVM":
        return tuple((demangle_norm(f), l) for f, l in frames)
    return tuple(tuple((k, demangle_norm(v) if k == "FunctionName" else v) for k, v in fr) for fr in frames)


def _by_rule(lf, ff, style, names):
    """Only the outermost name differs; llvm's is the symbol containing the
    address, fdoctl's is a real name (not ??) and not merely the same name
    demangled in another style."""
    if not names or len(lf) != len(ff) or not lf:
        return False
    if lf[:-1] != ff[:-1]:
        return False
    a, b = lf[-1], ff[-1]
    if style == "LLVM":
        if a[1] != b[1]:
            return False
    else:
        da, db = dict(a), dict(b)
        if any(da.get(k) != db.get(k) for k in JSON_FIELDS if k != "FunctionName"):
            return False
    la, fb = _fname(a, style), _fname(b, style)
    return (la in names and fb != la and fb not in ("??", "")
            and demangle_norm(fb) != demangle_norm(la))


def fmt_frames(frames, style):
    if style == "LLVM":
        return " | ".join(f"{f} @ {l}" for f, l in frames) or "<nothing>"
    return " | ".join("{FunctionName} @ {FileName}:{Line}:{Column} d{Discriminator} s{StartLine}"
                      .format(**dict(f)) for f in frames) or "<nothing>"


@dataclass
class Result:
    name: str
    style: str
    n: int = 0
    identical: int = 0
    by_rule: int = 0
    classes: dict = field(default_factory=dict)   # name -> {"reason", "count", "examples"}
    error: str = None
    notes: list = field(default_factory=list)
    by_rule_examples: list = field(default_factory=list)

    @property
    def ok_ratio(self):
        return (self.identical + self.by_rule) / self.n if self.n else 0.0

    @property
    def passed(self):
        return self.error is None and self.n > 0 and self.ok_ratio >= THRESHOLD

    def add(self, cls, reason, example, keep):
        c = self.classes.setdefault(cls, {"reason": reason, "count": 0, "examples": []})
        c["count"] += 1
        if len(c["examples"]) < keep:
            c["examples"].append(example)

    def table(self, examples=3):
        lines = [f"== {self.name} [{self.style}]: {self.n} addresses, {self.identical} identical, "
                 f"{self.by_rule} equal-by-rule, {100 * self.ok_ratio:.3f}% ok "
                 f"({'PASS' if self.passed else 'FAIL'}, threshold {100 * THRESHOLD:.1f}%)"]
        if self.error:
            lines.append(f"   ERROR: {self.error}")
        for n in self.notes:
            lines.append(f"   note: {n}")
        if self.by_rule:
            lines.append(f"   {self.by_rule:6}  equal-by-rule (not a difference) — llvm-symbolizer named the "
                         "outermost frame from the symbol table, fdoctl from DWARF")
            for ex in self.by_rule_examples[:examples]:
                lines.append(f"           {ex}")
        for cls, c in sorted(self.classes.items(), key=lambda kv: -kv[1]["count"]):
            lines.append(f"   {c['count']:6}  {cls} — {c['reason']}")
            for ex in c["examples"][:examples]:
                lines.append(f"           {ex}")
        return "\n".join(lines)


def compare(name, elf, oracle=None, debug_file=None, style="LLVM", addrs=None, n=10000, seed=1,
            fdoctl=None, env=None, keep_examples=20, syms=None, path_map=None):
    """Run both tools over the same addresses and bucket every address.
    path_map (old, new) rewrites file names in the oracle's output."""
    fdoctl = fdoctl or fdoctl_path()
    oracle = oracle or elf
    check_tools(fdoctl)
    if addrs is None:
        addrs = corpus.addresses(oracle, n, seed)
    if syms is None:
        syms = load_symbols(oracle, debug_file)
    res = Result(name, style, n=len(addrs))
    llvm_out = _run(llvm_cmd(oracle, style), addrs)
    if path_map:
        llvm_out = llvm_out.replace(path_map[0], path_map[1])
    try:
        fd_out = _run(fdoctl_cmd(fdoctl, elf, debug_file, style), addrs, env=env)
    except ToolError as e:
        res.error = str(e)
        return res
    split = split_llvm if style == "LLVM" else split_json
    lb, fb = split(llvm_out), split(fd_out)
    if len(lb) != len(addrs):
        raise ToolError(f"llvm-symbolizer printed {len(lb)} answers for {len(addrs)} addresses")
    if len(fb) != len(addrs):
        res.error = f"fdoctl printed {len(fb)} answers for {len(addrs)} addresses; compared the first {min(len(fb), len(addrs))}"
    for i, a in enumerate(addrs):
        lf = lb[i]
        ff = fb[i] if i < len(fb) else None
        if ff is None:
            res.add("missing answer", "fdoctl printed fewer answers than addresses",
                    f"0x{a:x}", keep_examples)
            continue
        if lf == ff:
            res.identical += 1
            continue
        ex = f"0x{a:x}: llvm: {fmt_frames(lf, style)}\n                    fdoctl: {fmt_frames(ff, style)}"
        if _by_rule(lf, ff, style, syms.llvm_name(a)):
            res.by_rule += 1
            if len(res.by_rule_examples) < keep_examples:
                res.by_rule_examples.append(ex)
            continue
        ctx = {"addr": a, "llvm": lf, "fdoctl": ff, "syms": syms, "style": style}
        for cls, reason, pred in CLASSES:
            if pred(ctx):
                res.add(cls, reason, ex, keep_examples)
                break
        else:
            field_ = _first_diff(lf, ff, style)
            res.add(f"unexplained: {field_}", "no known cause: a bug in fdoctl (or in this harness)",
                    ex, keep_examples)
    return res


def main():
    ap = argparse.ArgumentParser(description="compare fdoctl symbolize with llvm-symbolizer-16")
    ap.add_argument("--elf", required=True)
    ap.add_argument("--debug-file")
    ap.add_argument("--oracle", help="file for llvm-symbolizer (default: --elf)")
    ap.add_argument("--json", action="store_true", help="compare --output-style=JSON")
    ap.add_argument("-n", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--fdoctl", default=None)
    ap.add_argument("--examples", type=int, default=3)
    a = ap.parse_args()
    try:
        r = compare(os.path.basename(a.elf), a.elf, a.oracle, a.debug_file,
                    "JSON" if a.json else "LLVM", n=a.n, seed=a.seed, fdoctl=a.fdoctl)
    except ToolError as e:
        print(f"symdiff: {e}", file=sys.stderr)
        return 2
    print(r.table(a.examples))
    return 0 if r.passed else 1


if __name__ == "__main__":
    sys.exit(main())
