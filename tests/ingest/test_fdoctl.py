"""fdoctl's command lines (issue 25, item 5): every subcommand reads its
flags and prints its --help from one option table, so `--flag=value` and
`--flag value` work alike everywhere (backup and emit refused the first
before), and its HTTP client is libcurl (streamed uploads, proxies from
the environment, timeouts, libcurl's messages).

- The option lines of `fdoctl SUB --help` are exactly the entries of
  SUB's table (cli/cmd_SUB.c; pull and emit also the emitter options of
  aggregator/emit_opts.c), aliases named beside their entry; every value
  flag takes `--flag=value`.
- Against a running fdod, each subcommand with a value flag gives the
  same answer for `--flag=value` as for `--flag value`.
"""
import os
import re
import socket
import subprocess
import threading

import pytest

from fdodtest import (FDOCTL, ROOT, Daemon, batch_text, build_id, symbols,
                      vaddr_to_offset)

START = 0x555555554000


def fdoctl(*args, env=None, stdin=None, timeout=120):
    p = subprocess.run([FDOCTL] + list(args), capture_output=True,
                       text=True, env=env, input=stdin, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def subcommands():
    rc, out, _ = fdoctl("--help")
    assert rc == 0
    block = out.split("commands:\n", 1)[1].split("\n\n", 1)[0]
    return [m.group(1) for m in re.finditer(r"^  ([a-z]+) ", block, re.M)]


def read(*path):
    with open(os.path.join(ROOT, *path)) as f:
        return f.read()


def table(sub):
    """[(flag, type, alias)] of SUB's option table, from its source: what
    its --help must list (alias: help NULL, named on its entry's line)."""
    src = read("cli", "cmd_%s.c" % sub)
    body = src.split("static const struct fdo_opt opts[] = {", 1)[1]
    body = body.split("\n\t{0},", 1)[0]
    # Entries shared by several tables: macros of cli.h.
    macros = {}
    for m in re.finditer(r"#define (CLI_\w+_OPTS)\(.*?\n\n",
                         read("cli", "cli.h"), re.S):
        macros[m.group(1)] = [
            ("--" + e.group(1), e.group(2), False)
            for e in re.finditer(r'\{"([a-z-]+)", (FDO_OPT_\w+),',
                                 m.group(0))]
    out = []
    # Each entry up to its closing brace; an alias ends in NULL.
    for m in re.finditer(r'\{"([A-Za-z][a-z0-9-]*)",\s*(FDO_OPT_\w+),(.*?)\},'
                         r'|(CLI_\w+_OPTS)\(', body, re.S):
        if m.group(4):
            out += macros[m.group(4)]
            continue
        name = m.group(1)
        flag = ("-" if len(name) == 1 else "--") + name
        out.append((flag, m.group(2),
                    m.group(3).rstrip().endswith("NULL")))
    if sub in ("pull", "emit"):
        for m in re.finditer(r'\{"([a-z_]+)", PROF_OPT_',
                             read("aggregator", "emit_opts.c")):
            out.append(("--" + m.group(1).replace("_", "-"),
                        "FDO_OPT_STRING", False))
    return out


def test_every_help_is_its_table():
    subs = subcommands()
    assert sorted(subs) == sorted(
        f[len("cmd_"):-2] for f in os.listdir(os.path.join(ROOT, "cli"))
        if f.startswith("cmd_")), subs
    checked = 0
    for sub in subs:
        rc, text, err = fdoctl(sub, "--help")
        assert rc == 0, (sub, err)
        assert text == fdoctl("help", sub)[1] == fdoctl(sub, "-h")[1]
        entries = table(sub)
        assert entries, sub
        listed = re.findall(r"^  (--?[A-Za-z][a-z0-9-]*)", text, re.M)
        want = [f for f, _, alias in entries if not alias] + ["--help"]
        assert sorted(listed) == sorted(want), (sub, listed, want)
        for flag, _, alias in entries:
            if alias:
                assert re.search(r"\(also [^)]*%s[,)]" % re.escape(flag),
                                 text), (sub, flag)
            checked += 1
    assert checked > 60, checked


SAMPLE = {"FDO_OPT_STRING": "x", "FDO_OPT_UINT": "7",
          "FDO_OPT_DURATION": "5s", "FDO_OPT_BOOL": "true",
          "FDO_OPT_LIST": "k=v"}


def test_every_value_flag_takes_the_equals_form():
    """`--flag=value` parses for every flag of every subcommand (--help
    after it ends the parse before anything runs); an unknown flag, or a
    value flag without its value, is a usage error (2) naming it."""
    for sub in subcommands():
        for flag, typ, _ in table(sub):
            rc, out, err = fdoctl(sub, "%s=%s" % (flag, SAMPLE[typ]),
                                  "--help")
            assert rc == 0 and "usage: fdoctl %s" % sub in out, \
                (sub, flag, rc, err)
            if typ != "FDO_OPT_BOOL":
                rc, _, err = fdoctl(sub, flag)
                assert rc == 2 and flag in err, (sub, flag, rc, err)
        rc, _, err = fdoctl(sub, "--no-such-flag=1")
        assert rc == 2 and "--no-such-flag" in err, (sub, rc, err)
        assert "usage: fdoctl %s" % sub in err


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    d = tmp_path_factory.mktemp("fdoctl")
    with Daemon(d / "data", extra=["--backup-dir", str(d)]) as dm:
        dm.dir = d
        yield dm


@pytest.fixture(scope="module")
def sampled(daemon):
    """fdoctl itself, uploaded and sampled in main, as binary 'ctl'."""
    exe = os.path.realpath(FDOCTL)
    rc, out, err = fdoctl("upload", "--http=" + daemon.http, "--binary=ctl",
                          exe)
    assert rc == 0 and out.startswith("stored "), (out, err)
    addr = START + vaddr_to_offset(exe, symbols(exe)["main"][0] + 4)
    text = batch_text("t1", 1, "ctl", build_id(exe), [(50, [addr])])
    path = daemon.dir / "batch.txt"
    path.write_text(text)
    rc, out, err = fdoctl("push", "--url=" + daemon.url, "--timeout=20000",
                          str(path))
    assert rc == 0 and out.startswith("ok "), (out, err)
    daemon.wait_pending_zero()
    return exe


def same(a, b):
    """Two command lines give the same exit code and output (status's
    uptime, which may cross a second between the two, left out)."""
    ra, rb = fdoctl(*a), fdoctl(*b)
    up = re.compile(r'"uptime_seconds":\d+')
    assert [up.sub("", x) if isinstance(x, str) else x for x in ra] == \
        [up.sub("", x) if isinstance(x, str) else x for x in rb], \
        (a, ra, b, rb)
    return ra


def test_both_forms_agree_against_fdod(daemon, sampled, tmp_path):
    http = daemon.http
    rc, out, err = same(["status", "--http=" + http, "--json"],
                        ["status", "--json", "--http", http])
    assert rc == 0 and '"pending"' in out, err
    # pull: selectors and emitter options reach the route either way.
    rc, out, err = same(
        ["pull", "ctl", "--http=" + http, "--format=folded",
         "--min-samples=1", "--min-hosts=1", "--min-span=0",
         "--max-stacks=5"],
        ["pull", "--http", http, "--format", "folded", "--min-samples", "1",
         "--min-hosts", "1", "--min-span", "0", "--max-stacks", "5", "ctl"])
    assert rc == 0 and "main 50" in out, (out, err)
    rc, _, err = same(["pull", "ctl", "--http=" + http, "--line-count=x"],
                      ["pull", "ctl", "--http", http, "--line-count", "x"])
    assert rc == 1 and "line_count" in err, err
    rc, _, err = same(["pull", "ctl", "--http=" + http, "--min-samples=9999",
                       "--min-span=0"],
                      ["pull", "ctl", "--http", http, "--min-samples",
                       "9999", "--min-span", "0"])
    assert rc == 3 and "min_samples" in err, err
    out_file = tmp_path / "ctl.folded"
    rc, _, err = fdoctl("pull", "ctl", "--http=" + http, "--format=folded",
                        "--min-samples=1", "--min-hosts=1", "--min-span=0",
                        "-o=%s" % out_file)
    assert rc == 0 and "main 50" in out_file.read_text(), err
    # upload, both forms: the file is there already.
    rc, out, _ = same(["upload", "--http=" + http, "--binary=ctl", sampled],
                      ["upload", "--http", http, "--binary", "ctl", sampled])
    assert rc == 0 and out.startswith("present "), out
    # backup (refused --flag=value before).
    for n, args in enumerate((["--http=" + http], ["--http", http])):
        dest = str(daemon.dir / ("bk%d" % n))
        rc, out, err = fdoctl("backup", *args, dest)
        assert rc == 0 and out == "backup written to %s/store\n" % dest, err
    # push: the same batch again is a duplicate either way.
    batch = str(daemon.dir / "batch.txt")
    rc, out, _ = same(["push", "--url=" + daemon.url, "--timeout=20000",
                       batch],
                      ["push", batch, "--url", daemon.url, "--timeout",
                       "20000"])
    assert rc == 0 and "duplicate=yes" in out, out


def test_backup_and_emit_take_the_equals_form(tmp_path):
    """Offline: backup --data=DIR, and emit's flags up to reading the
    files (both refused `--flag=value` as a usage error before)."""
    data = tmp_path / "data"
    rc, out, err = fdoctl("upload", "--data=%s" % data,
                          os.path.realpath(FDOCTL))
    assert rc == 0 and out.startswith("stored "), err
    rc, out, err = fdoctl("backup", "--data=%s" % data, str(tmp_path / "b"))
    assert rc == 0 and (tmp_path / "b" / "store").is_dir(), err
    missing = str(tmp_path / "none.fdata")
    for args in (["--elf=" + FDOCTL, "--fdata=" + missing, "--format=gcc",
                  "--zeros=0", "-o=" + str(tmp_path / "p")],
                 ["--elf", FDOCTL, "--fdata", missing, "--format", "gcc",
                  "--zeros", "0", "-o", str(tmp_path / "p")]):
        rc, _, err = fdoctl("emit", *args)
        assert rc == 1 and "cannot open %s" % missing in err, (args, err)
    rc, _, err = fdoctl("emit", "--elf=" + FDOCTL, "--fdata=" + missing,
                        "--zeros=7")
    assert rc == 2 and "zeros" in err, err
    rc, _, err = fdoctl("emit", "--elf=" + FDOCTL, "--fdata=" + missing,
                        "--format=folded")
    assert rc == 2 and "llvm, gcc or bolt" in err, err
    rc, out, err = fdoctl("symbolize", "--obj=" + FDOCTL, "-C",
                          "--output-style=JSON", "-1")
    assert rc == 0 and '"Error"' in out, (out, err)


def test_upload_streams_a_file_and_sends_a_pipe_chunked(daemon, sampled):
    """A file goes with its Content-Length; a body of unknown length (a
    pipe) goes chunked, which fdod refuses (411: its routes need the
    length first), said as fdod says it."""
    seen = Listener(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n"
                    b"Connection: close\r\n\r\n{}")
    try:
        rc, _, err = fdoctl("upload", "--http",
                            "http://127.0.0.1:%d" % seen.port, sampled)
        assert rc == 0, err
        head = seen.seen.decode(errors="replace")
        assert head.startswith("PUT /v1/symbols HTTP/1.1\r\n"), head
        assert "Content-Length: %d\r\n" % os.path.getsize(sampled) in head
    finally:
        seen.close()
    p = subprocess.run("cat %s | %s upload --http %s --binary ctl /dev/stdin"
                       % (sampled, FDOCTL, daemon.http), shell=True,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert p.stderr == ("error: /dev/stdin: HTTP 411: a Content-Length is "
                        "required\n"), p.stderr


class Listener:
    """A loopback socket that answers each connection with `answer` (None:
    accepts and says nothing), keeping what it read."""

    def __init__(self, answer):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.answer = answer
        self.seen = b""
        self.conns = []
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            c.settimeout(10)
            try:
                for line in c.makefile("rb"):  # the head, up to a blank line
                    if line == b"\r\n":
                        break
                    self.seen += line
                if self.answer is not None:
                    c.sendall(self.answer)
                    c.close()
            except OSError:
                pass

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


def test_proxy_from_the_environment_and_max_time():
    body = b'{"uptime_seconds":1}'
    proxy = Listener(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n"
                     b"Connection: close\r\n\r\n%s" % (len(body), body))
    silent = Listener(None)
    try:
        env = dict(os.environ, http_proxy="http://127.0.0.1:%d" % proxy.port,
                   no_proxy="")
        env.pop("FDOD_HTTP", None)
        rc, out, err = fdoctl("status", "--json", "--http",
                              "http://fdod.invalid:7471", env=env)
        assert rc == 0 and out == body.decode(), (out, err)
        assert proxy.seen.startswith(
            b"GET http://fdod.invalid:7471/v1/status HTTP/1.1\r\n"), \
            proxy.seen
        # A server that accepts and never answers: --max-time ends it,
        # with libcurl's words.
        env = dict(os.environ)
        for k in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
            env.pop(k, None)
        rc, out, err = fdoctl("status", "--max-time=1", "--http",
                              "http://127.0.0.1:%d" % silent.port, env=env,
                              timeout=30)
        assert rc == 1 and "timed out" in err.lower(), err
        rc, _, err = fdoctl("pull", "x", "--http=http://127.0.0.1:1",
                            env=env)
        assert rc == 1 and "cannot connect to http://127.0.0.1:1" in err, err
    finally:
        proxy.close()
        silent.close()
