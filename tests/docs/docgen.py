"""The parts of docs/ that are the programs' own words, and how to read them.

docs/cli.md holds each program's `--help` verbatim, docs/config.md the
table of fdod's options (from `fdod --help`) and docs/http.md the table of
the profile route's emitter options (from `fdoctl pull --help`, which
prints aggregator/emit_opts.c's table). Each such part stands between

    <!-- generated: KEY -->
    ...
    <!-- end generated -->

where KEY says what produces it: `PROGRAM [SUBCOMMAND] --help`,
`fdod options` or `profile options`. After a change to a program's
options or help text, build (make) and run

    python3 tests/docs/docgen.py

which rewrites those parts of docs/*.md in place (`--check`: only say
which are stale, exit 1). tests/docs/test_docs.py fails until they match.
"""
import glob
import os
import re
import subprocess
import sys

ROOT = os.environ.get("FDOD_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
PROGRAMS = {
    "fdod": os.environ.get("FDOD") or os.path.join(ROOT, "build", "fdod"),
    "fdoctl": os.environ.get("FDOCTL") or os.path.join(ROOT, "build",
                                                       "fdoctl"),
    "fdo-agent": os.environ.get("FDO_AGENT") or os.path.join(
        ROOT, "build", "fdo-agent"),
}

REGION = re.compile(r"(<!-- generated: (.+?) -->\n)(.*?)(<!-- end generated -->)",
                    re.S)


def help_text(*argv):
    """The --help output of a program (argv: "fdoctl", "pull")."""
    prog = PROGRAMS[argv[0]]
    assert os.path.exists(prog), "build %s first (make)" % prog
    p = subprocess.run([prog] + list(argv[1:]) + ["--help"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, (argv, p.returncode, p.stderr)
    return p.stdout


def subcommands():
    """fdoctl's subcommands, from `fdoctl --help`."""
    text = help_text("fdoctl")
    block = text.split("commands:\n", 1)[1].split("\n\n", 1)[0]
    return [m.group(1) for m in re.finditer(r"^  ([a-z]+) ", block, re.M)]


def flags(text):
    """Every --flag a help text names, in order, once."""
    seen = []
    for f in re.findall(r"--[a-z][a-z0-9-]*", text):
        if f not in seen:
            seen.append(f)
    return seen


def program_options(text):
    """The option lines of a help text printed from a common/opts.c table
    (fdod, fdo-agent): [{name, arg, help, default, repeatable}]."""
    out = []
    for m in re.finditer(r"^  --([a-z][a-z0-9-]*)(?: ([A-Z][A-Z=]*))?\s+(.*)$",
                         text, re.M):
        rest = m.group(3)
        repeatable = rest.endswith(" [repeatable]")
        if repeatable:
            rest = rest[:-len(" [repeatable]")]
        d = re.search(r" \(default: ([^)]*)\)$", rest)
        if d:
            rest = rest[:d.start()]
        out.append({"name": m.group(1), "arg": m.group(2) or "",
                    "help": rest, "default": d.group(1) if d else None,
                    "repeatable": repeatable})
    return out


def profile_options(text=None):
    """The emitter options `fdoctl pull --help` lists:
    [{name (the query parameter), flag, values, default, formats, help}]."""
    text = text or help_text("fdoctl", "pull")
    out = []
    for m in re.finditer(r"^  (--[a-z-]+) (\S+) \(default ([^)]*)\) "
                         r"\[([a-z,]+)\]\n {6}(.*)$", text, re.M):
        out.append({"name": m.group(1)[2:].replace("-", "_"),
                    "flag": m.group(1), "values": m.group(2),
                    "default": m.group(3), "formats": m.group(4),
                    "help": m.group(5)})
    return out


def _cell(s):
    return s.replace("|", "\\|")


def fdod_options_table():
    rows = ["| option | default | what |", "|---|---|---|"]
    for o in program_options(help_text("fdod")):
        if o["name"] in ("help", "print-config"):
            continue
        flag = "--" + o["name"] + (" " + o["arg"] if o["arg"] else "")
        what = o["help"] + (" (repeatable)" if o["repeatable"] else "")
        rows.append("| `%s` | %s | %s |" % (
            flag, o["default"] if o["default"] is not None else "unset",
            _cell(what)))
    return "\n".join(rows) + "\n"


def profile_options_table():
    rows = ["| parameter | `fdoctl pull` flag | values | default | "
            "formats | what |", "|---|---|---|---|---|---|"]
    for o in profile_options():
        values = ", ".join("`%s`" % v for v in o["values"].split("|"))
        rows.append("| `%s` | `%s` | %s | `%s` | %s | %s |" % (
            o["name"], o["flag"], values, o["default"],
            o["formats"].replace(",", ", "), _cell(o["help"])))
    return "\n".join(rows) + "\n"


def generate(key):
    """The text of the generated part named key."""
    if key == "fdod options":
        return fdod_options_table()
    if key == "profile options":
        return profile_options_table()
    words = key.split()
    if len(words) >= 2 and words[-1] == "--help" and words[0] in PROGRAMS:
        return "```text\n" + help_text(*words[:-1]) + "```\n"
    raise KeyError("no generator for '%s'" % key)


def regions(text):
    """[(key, current body)] of the generated parts of a document."""
    return [(m.group(2), m.group(3)) for m in REGION.finditer(text)]


def render(text):
    """text with every generated part made anew."""
    return REGION.sub(lambda m: m.group(1) + generate(m.group(2)) +
                      m.group(4), text)


def documents():
    return sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))


def main(argv):
    check = "--check" in argv
    stale = 0
    for path in documents():
        with open(path) as f:
            old = f.read()
        if not REGION.search(old):
            continue
        new = render(old)
        if new == old:
            continue
        stale += 1
        rel = os.path.relpath(path, ROOT)
        if check:
            print("%s: generated parts are stale" % rel)
        else:
            with open(path, "w") as f:
                f.write(new)
            print("%s: rewritten" % rel)
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
