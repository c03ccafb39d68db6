"""docs/ against the code (issue 25, item 7): what the programs accept is
documented, and what the docs quote from the programs is current.

- docs/cli.md has a section per fdoctl subcommand (`fdoctl --help` lists
  them), and one for fdod and fdo-agent, naming every --flag of its
  `--help`; no section names a subcommand fdoctl does not have.
- docs/http.md has a section per route of srv_routes (server/routes.c),
  with the route's scope, and names no route the table does not have; the
  profile route's section names every parameter of `fdoctl pull --help`
  and has a row per emitter option (aggregator/emit_opts.c's table, which
  pull's help prints) with its default.
- docs/config.md has a row per fdod option with its default.
- The parts of docs/ generated from the programs (tests/docs/docgen.py)
  are current, the text batch example of docs/text-batch.md is accepted by
  fdod, and every relative link of README.md and docs/ leads to a file
  and, with a #fragment, to a heading of it.
"""
import os
import re
import sys
import time

HERE = os.path.dirname(__file__)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "ingest"))
import docgen  # noqa: E402
from fdodtest import ROOT, Daemon  # noqa: E402


def read(*path):
    with open(os.path.join(ROOT, *path)) as f:
        return f.read()


def sections(text):
    """{heading text: its body up to the next heading of the same or a
    higher level}; headings inside fenced blocks do not count."""
    lines = text.split("\n")
    heads = []
    fence = False
    for i, line in enumerate(lines):
        if line.startswith("```"):
            fence = not fence
        m = None if fence else re.match(r"^(#{1,6}) (.*)$", line)
        if m:
            heads.append((i, len(m.group(1)), m.group(2).strip()))
    out = {}
    for k, (i, level, title) in enumerate(heads):
        end = len(lines)
        for j, lv, _ in heads[k + 1:]:
            if lv <= level:
                end = j
                break
        out[title] = "\n".join(lines[i + 1:end])
    return out


# ---------------------------------------------------------------- cli.md --

def test_cli_doc_names_every_flag_of_every_command():
    doc = sections(read("docs", "cli.md"))
    commands = docgen.subcommands()
    assert len(commands) >= 8, commands
    checked = 0
    for sub in commands:
        title = "fdoctl " + sub
        assert title in doc, "docs/cli.md has no section '### %s'" % title
        for flag in docgen.flags(docgen.help_text("fdoctl", sub)):
            assert flag in doc[title], \
                "docs/cli.md, %s: %s is not documented" % (title, flag)
            checked += 1
    for prog in ("fdod", "fdo-agent"):
        assert prog in doc, "docs/cli.md has no section '## %s'" % prog
        for flag in docgen.flags(docgen.help_text(prog)):
            assert flag in doc[prog], \
                "docs/cli.md, %s: %s is not documented" % (prog, flag)
            checked += 1
    assert checked > 100, checked
    # And no section for a subcommand that does not exist.
    for title in doc:
        m = re.match(r"fdoctl (\S+)$", title)
        assert not m or m.group(1) in commands, \
            "docs/cli.md documents '%s', which fdoctl does not have" % title


# --------------------------------------------------------------- http.md --

SCOPES = {"SRV_SCOPE_READ": "read", "SRV_SCOPE_UPLOAD": "upload",
          "SRV_SCOPE_ADMIN": "admin", "SRV_SCOPE_INGEST": "ingest",
          "0": "none"}


def code_routes():
    """{(method, path with {} for parameters): scope} of srv_routes."""
    src = read("server", "routes.c")
    table = src.split("const struct srv_route srv_routes[] = {", 1)[1]
    table = table.split("\n};", 1)[0]
    routes = {}
    for m in re.finditer(r'\{"([A-Z]+)",\s*"([^"]+)",\s*\w+,\s*[^,]+,\s*'
                         r'\d+,\s*(\w+)\s*,', table):
        routes[(m.group(1), m.group(2))] = SCOPES[m.group(3)]
    return routes


def norm(path):
    return re.sub(r"\{[^}]*\}", "{}", path)


def test_http_doc_has_every_route_with_its_scope():
    code = code_routes()
    assert len(code) >= 15, code
    doc = sections(read("docs", "http.md"))
    documented = {}
    for title, body in doc.items():
        m = re.match(r"^`([A-Z]+) (/\S*)`$", title)
        if not m:
            continue
        s = re.search(r"^Scope: (?:`([a-z]+)`|(none))", body, re.M)
        assert s, "docs/http.md, %s: no 'Scope:' line" % title
        documented[(m.group(1), norm(m.group(2)))] = s.group(1) or "none"
    for route, scope in code.items():
        assert route in documented, \
            "docs/http.md has no section '### `%s %s`'" % route
        assert documented[route] == scope, (route, documented[route], scope)
    for route in documented:
        assert route in code, \
            "docs/http.md documents %s %s, which srv_routes lacks" % route
    # The summary table says the same.
    table = {}
    for m in re.finditer(r"^\| `([A-Z]+) (/\S*)` \| (?:`([a-z]+)`|(none)) \|",
                         read("docs", "http.md"), re.M):
        table[(m.group(1), norm(m.group(2)))] = m.group(3) or "none"
    assert table == code


def test_http_doc_has_every_profile_option_with_its_default():
    doc = sections(read("docs", "http.md"))
    body = doc["`GET /v1/profiles/{binary}`"]
    options = docgen.profile_options()
    assert len(options) >= 10, options
    for o in options:
        m = re.search(r"^\| `%s` \|(.*)$" % re.escape(o["name"]), body, re.M)
        assert m, "docs/http.md: no row for the profile option %s" % o["name"]
        assert "`%s`" % o["default"] in m.group(1).split("|")[2], \
            (o["name"], o["default"], m.group(0))
    # Every parameter `fdoctl pull` sends, selectors included.
    for flag in docgen.flags(docgen.help_text("fdoctl", "pull")):
        if flag in ("--http", "--connect-timeout", "--max-time", "--help"):
            continue  # the client's own: where and how long, not what
        name = flag[2:].replace("-", "_")
        assert re.search(r"`%s(=[^`]*)?`" % re.escape(name), body), \
            "docs/http.md, the profile route: %s= is not documented" % name


# ------------------------------------------------------------- config.md --

def test_config_doc_has_every_option_with_its_default():
    """docs/config.md's option table has a row per option of `fdod
    --help`, with the same default (moved from tests/ingest/test_deploy.py,
    where it read the README)."""
    doc = read("docs", "config.md")
    rows = {m.group(1): m.group(2).strip() for m in re.finditer(
        r"^\| `--([a-z-]+)[^`]*` \| ([^|]*) \|", doc, re.M)}
    seen = 0
    for o in docgen.program_options(docgen.help_text("fdod")):
        if o["name"] in ("help", "print-config"):
            continue
        seen += 1
        assert o["name"] in rows, "docs/config.md has no row for --" + \
            o["name"]
        want = o["default"] if o["default"] is not None else "unset"
        assert rows[o["name"]] == want, (o["name"], rows[o["name"]], want)
    assert seen > 20
    for name in rows:
        assert any(o["name"] == name for o in docgen.program_options(
            docgen.help_text("fdod"))), \
            "docs/config.md documents --%s, which fdod does not have" % name


# ---------------------------------------------------- generated, examples --

def test_generated_parts_are_current():
    found = 0
    for path in docgen.documents():
        with open(path) as f:
            text = f.read()
        for key, body in docgen.regions(text):
            found += 1
            assert body == docgen.generate(key), (
                "%s: the part generated from '%s' is stale: run `python3 "
                "tests/docs/docgen.py` after make" %
                (os.path.relpath(path, ROOT), key))
    # the --help of fdoctl and its subcommands, fdod, fdo-agent; the two
    # option tables
    assert found >= len(docgen.subcommands()) + 5, found


def test_text_batch_example_is_accepted(tmp_path):
    text = read("docs", "text-batch.md")
    m = re.search(r"<!-- text batch example -->\n```\n(.*?)^```", text,
                  re.S | re.M)
    assert m, "docs/text-batch.md: no marked example"
    example = m.group(1)
    # The example's window is a fixed date; fdod refuses batches older
    # than its retention, so only the time line is moved to now.
    now = int(time.time())
    example, n = re.subn(r"^time +\d+ \d+", "time    %d %d" % (now - 60, now),
                         example, flags=re.M)
    assert n == 1
    with Daemon(tmp_path / "data") as d:
        rc, out = d.push(example)
        assert rc == 0 and out.startswith("ok "), out
        assert "accepted=120 " in out, out


# ------------------------------------------------------------------ links --

def slug(heading):
    """GitHub's anchor of a heading."""
    s = heading.strip().lower()
    s = re.sub(r"[^\w\- ]", "", s)
    return s.replace(" ", "-")


def anchors(text):
    out, count = set(), {}
    fence = False
    for line in text.split("\n"):
        if line.startswith("```"):
            fence = not fence
        m = None if fence else re.match(r"^#{1,6} (.*)$", line)
        if m:
            s = slug(m.group(1))
            n = count.get(s, 0)
            count[s] = n + 1
            out.add(s if n == 0 else "%s-%d" % (s, n))
    return out


def test_local_links_resolve():
    docs = [os.path.join(ROOT, "README.md")] + docgen.documents()
    checked = 0
    for path in docs:
        with open(path) as f:
            text = f.read()
        for m in re.finditer(r"\]\(([^)\s]+)\)", text):
            target = m.group(1)
            if re.match(r"[a-z]+:", target):
                continue
            file_part, _, frag = target.partition("#")
            dest = os.path.normpath(os.path.join(os.path.dirname(path),
                                                 file_part)) \
                if file_part else path
            where = "%s: link %s" % (os.path.relpath(path, ROOT), target)
            assert os.path.exists(dest), where + ": no such file"
            if frag and dest.endswith(".md"):
                with open(dest) as f:
                    assert frag in anchors(f.read()), \
                        where + ": no such heading"
            checked += 1
    assert checked > 50, checked
