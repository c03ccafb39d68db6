"""fdoctl import: perf recordings into the real fdod on loopback.

A test program with a hot function in its executable and another in a
shared library (tests/agent's, built with frame pointers and GNU
build-ids) is recorded with `perf record -e cpu-clock -g` (a software
event: no PMU needed); the import must give a profile whose top functions
are the program's hot ones, under the right build-ids, and importing the
same file again must count nothing more. A hand-made `perf script` text
with brstack fields (perf's documented FROM/TO/P|M|-/... format) gives
branch records. Bad input (not a perf.data file, a cut one, garbled or
cut text) is refused with a clear message and nothing is stored.
"""
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from fdodtest import FDOCTL, Daemon, build_id, samples_stored  # noqa: E402

# The program of the agent's tests: exe_hot in the executable, lib_hot in
# libhot.so, both with frame pointers and GNU build-ids (module fixture).
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "agent"))
from test_agent import prog  # noqa: E402,F401


@pytest.fixture(scope="module")
def recording(prog, tmp_path_factory):
    """perf.data of prog, or a skip that says why perf cannot record."""
    perf = shutil.which("perf")
    if not perf:
        pytest.skip("perf is not installed (linux-perf)")
    exe, _ = prog
    out = str(tmp_path_factory.mktemp("rec") / "perf.data")
    # --buildid-all: perf keeps build-ids only of files with samples of
    # their own, so without it libc's frames (exe_hot's caller,
    # __libc_start_call_main) are unmapped in every run where no sample
    # landed in libc itself (docs/ingest.md), which earlier sessions took
    # for perf recording callchains one frame deep. The recording is still
    # made again (at most three times) if it has no caller of exe_hot.
    for _ in range(3):
        p = subprocess.run([perf, "record", "-q", "--buildid-all", "-e",
                            "cpu-clock", "-g", "-o", out, exe, "1.0"], capture_output=True,
                           text=True, timeout=300)
        if p.returncode != 0 or not os.path.exists(out):
            pytest.skip("perf record cannot record here: %s" %
                        p.stderr.strip()[-300:])
        if has_callers(perf, out, "exe_hot"):
            break
    return out


def has_callers(perf, data, leaf):
    """Does a sample of data have leaf as its leaf frame and a caller?"""
    p = subprocess.run([perf, "script", "-i", data, "-F", "ip,sym"],
                       capture_output=True, text=True, timeout=300)
    for block in p.stdout.split("\n\n"):
        frames = [ln for ln in block.splitlines() if ln.strip()]
        if len(frames) >= 2 and leaf in frames[0]:
            return True
    return False


@pytest.fixture
def daemon(tmp_path):
    with Daemon(tmp_path / "data") as d:
        yield d


def fdoctl(*args, timeout=300):
    p = subprocess.run([FDOCTL] + list(args), capture_output=True,
                       text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def upload(d, *files):
    rc, out, err = fdoctl("upload", "--http", d.http, "--binary", "prog",
                          *files)
    assert rc == 0, err


def pull(d, binary, fmt, extra=""):
    """(status, body, headers) of a profile pull (min_samples=1)."""
    url = "%s/v1/profiles/%s?format=%s&min_samples=1%s" % (d.http, binary,
                                                           fmt, extra)
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            return r.status, r.read().decode(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), e.headers


def sent(out):
    m = re.search(r"^sent: (.*)$", out, re.M)
    assert m, out
    return {k: v for k, v in (kv.split("=", 1) for kv in m.group(1).split())}


def test_help_lists_the_options_and_the_script_fields():
    rc, out, _ = fdoctl("import", "--help")
    assert rc == 0
    for opt in ("--url", "--http", "--binary", "--label", "--perf",
                "--script",
                "--build-ids", "--host", "--time", "--print"):
        assert opt in out, opt
    assert "perf script --header -F pid,tid,time,period,event,ip,dso" in out
    rc, _, err = fdoctl("import")
    assert rc == 2 and "perf.data" in err


def test_recording_gives_the_hot_functions_and_build_ids(daemon, prog,
                                                         recording):
    exe, lib = prog
    upload(daemon, exe, lib)
    rc, out, err = fdoctl("import", "--url", daemon.url, "--label",
                          "mode=test", recording)
    assert rc == 0, err + out
    s = sent(out)
    assert s["agent"].startswith("perf-import/") and s["duplicate"] == "0"
    assert int(s["accepted"]) > 500, out
    daemon.wait_pending_zero()

    status, body, headers = pull(daemon, "prog", "folded")
    assert status == 200, body
    leaves = {}
    for line in body.splitlines():
        stack, count = line.rsplit(" ", 1)
        leaf = stack.split(";")[-1]
        leaves[leaf] = leaves.get(leaf, 0) + int(count)
    top = sorted(leaves, key=leaves.get, reverse=True)[:2]
    assert set(top) == {"exe_hot", "lib_hot"}, leaves
    # Callers are kept (libc's, unsymbolized: its file is not uploaded).
    assert re.search(r";exe_hot \d+$", body, re.M), body
    assert re.search(r";lib_hot \d+$", body, re.M), body
    ids = set(headers["X-Fdod-Build-Ids"].split(","))
    assert {build_id(exe), build_id(lib)} <= ids, ids

    status, body, _ = pull(daemon, "prog", "llvm", "&encoding=text")
    assert status == 200, body
    funcs = re.findall(r"^(\w+):(\d+):", body, re.M)
    heads = sorted(funcs, key=lambda f: -int(f[1]))
    assert {f for f, _ in heads[:2]} == {"exe_hot", "lib_hot"}, body

    info = daemon.get("/v1/binaries/prog")
    assert {b["build_id"] for b in info["build_ids"]} >= \
        {build_id(exe), build_id(lib)}, info
    assert info["labels"][0]["labels"] == "mode=test", info

    # The same file again, the same options: counted once.
    stored = info["samples"]
    assert stored == int(s["accepted"])
    rc, out, err = fdoctl("import", "--url", daemon.url, "--label",
                          "mode=test", recording)
    assert rc == 0, err + out
    again = sent(out)
    assert again["agent"] == s["agent"], (s, again)
    assert again["duplicate"] == again["batches"], out
    assert samples_stored(daemon, "prog") == stored
    # Other options are another import (another agent id).
    rc, out, err = fdoctl("import", "--url", daemon.url, "--label",
                          "mode=other", recording)
    assert rc == 0, err + out
    assert sent(out)["agent"] != s["agent"]
    assert samples_stored(daemon, "prog") == 2 * stored


def test_http_uploads_the_recordings_files(daemon, prog, recording,
                                           tmp_path):
    """--http: the executable and library the recording names go to the
    symbol store (nothing uploaded before), so the profile is symbolized;
    a file rebuilt since the recording (another build-id) is left out."""
    exe, lib = prog
    rc, out, err = fdoctl("import", "--url", daemon.url, "--http",
                          daemon.http, recording)
    assert rc == 0, err + out
    for f, bid in ((exe, build_id(exe)), (lib, build_id(lib))):
        assert re.search(r"^stored %s executable\S* %s$" % (bid,
                         re.escape(f)), out, re.M), out
    daemon.wait_pending_zero()
    status, body, _ = pull(daemon, "prog", "folded")
    assert status == 200, body
    assert re.search(r";exe_hot \d+$", body, re.M), body
    assert re.search(r";lib_hot \d+$", body, re.M), body
    # Again: the files are there already.
    rc, out, err = fdoctl("import", "--url", daemon.url, "--http",
                          daemon.http, "--label", "mode=again", recording)
    assert rc == 0, err + out
    assert re.search(r"^present %s " % build_id(exe), out, re.M), out
    # A recording whose build-id of the executable is not the file's
    # (rebuilt since): samples stored, the file named and left out.
    text, ids = hand_made_script(exe, lib)
    fake = "ab" * 20
    (tmp_path / "script.txt").write_text(text)
    (tmp_path / "ids.txt").write_text(ids.replace(build_id(exe), fake))
    rc, out, err = fdoctl("import", "--url", daemon.url, "--http",
                          daemon.http, "--script",
                          str(tmp_path / "script.txt"), "--build-ids",
                          str(tmp_path / "ids.txt"))
    assert rc == 0, err + out
    assert "not uploaded: %s: not the build-id" % exe in err, err
    assert not re.search(r"^(stored|present) ", out, re.M), out


def branch_of(exe, func):
    """(from, to) file offsets of the first conditional jump back inside
    func (objdump), and the offset of func's first instruction."""
    dis = subprocess.run(["objdump", "-d", "--no-show-raw-insn", exe],
                         capture_output=True, text=True, check=True,
                         timeout=120).stdout
    body = dis.split("<%s>:" % func, 1)[1].split("\n\n", 1)[0]
    for line in body.splitlines():
        m = re.match(r"\s*([0-9a-f]+):\s+j(?!mp)\w+\s+([0-9a-f]+)", line)
        if m and int(m.group(2), 16) < int(m.group(1), 16):
            return int(m.group(1), 16), int(m.group(2), 16)
    raise AssertionError("no backward jump in %s:\n%s" % (func, body))


def hand_made_script(exe, lib):
    """perf script text as -F pid,tid,time,period,event,ip,dso,brstack
    --show-mmap-events --show-task-events prints it (perf 6.4+: absolute
    addresses), and the build-id table (perf buildid-list)."""
    segs = subprocess.run(["readelf", "-lW", exe], capture_output=True,
                          text=True, check=True).stdout
    # The executable's text segment: file offset, vaddr, size.
    m = [ln.split() for ln in segs.splitlines()
         if ln.strip().startswith("LOAD") and "E" in ln.split()[-2]][0]
    off, size = int(m[1], 16), int(m[5], 16)
    base = 0x555555554000
    start = base + int(m[2], 16)
    frm, to = branch_of(exe, "exe_hot")
    mfrm, mto = branch_of(exe, "main")

    def a(fo):  # file offset -> address in the process
        return start + fo - off
    text = [
        "  4242/4242  9000.000000: PERF_RECORD_COMM exec: prog:4242/4242",
        "  4242/4242  9000.000100: PERF_RECORD_MMAP2 4242/4242: "
        "[%#x(%#x) @ %#x fd:01 77 0]: r-xp %s" % (start, size, off, exe),
    ]
    for i in range(20):
        text.append("  4242/4242  9000.%06d:    1000000 cycles:u:  "
                    "   %x (%s) " % (i * 1000 + 500, a(frm), exe) +
                    " ".join("%#x(%s)/%#x(%s)/%s/-/-/%d" %
                             (a(frm), exe, a(to), exe,
                              "M" if k == 0 else "P", 3 + k)
                             for k in range(4)) +
                    " %#x/%#x/P/-/-/7 " % (a(mfrm), a(mto)))
    return ("\n".join(text) + "\n",
            "%s %s\n" % (build_id(exe), exe))


def test_script_with_brstack_gives_branch_records(daemon, prog, tmp_path):
    exe, lib = prog
    upload(daemon, exe)
    text, ids = hand_made_script(exe, lib)
    (tmp_path / "script.txt").write_text(text)
    (tmp_path / "ids.txt").write_text(ids)
    args = ["import", "--url", daemon.url, "--script",
            str(tmp_path / "script.txt"), "--build-ids",
            str(tmp_path / "ids.txt")]
    rc, out, err = fdoctl(*args)
    assert rc == 0, err + out
    assert re.search(r"branches=100 unmapped_branches=0 batches=1", out), out
    s = sent(out)
    assert s["branches"] == "100" and s["accepted"] == "20", out
    assert samples_stored(daemon, "prog") == 20
    rc, out, err = fdoctl(*args)
    assert rc == 0 and sent(out)["duplicate"] == "1", err + out
    assert samples_stored(daemon, "prog") == 20

    status, body, _ = pull(daemon, "prog", "bolt",
                           "&build_id=" + build_id(exe))
    assert status == 200, body
    # .fdata branch records: 1 FUNC OFF 1 FUNC OFF MISPRED COUNT
    assert re.search(r"^1 exe_hot [0-9a-f]+ 1 exe_hot [0-9a-f]+ \d+ \d+$",
                     body, re.M), body


def test_lbr_branch_without_samples_reaches_the_bolt_profile(daemon, prog,
                                                             tmp_path):
    """main's loop branch is only in the brstack entries (no sample is in
    main): only LBR records can put it in the profile."""
    exe, lib = prog
    upload(daemon, exe)
    text, ids = hand_made_script(exe, lib)
    (tmp_path / "script.txt").write_text(text)
    (tmp_path / "ids.txt").write_text(ids)
    rc, out, err = fdoctl("import", "--url", daemon.url, "--script",
                          str(tmp_path / "script.txt"), "--build-ids",
                          str(tmp_path / "ids.txt"))
    assert rc == 0, err + out
    status, body, _ = pull(daemon, "prog", "bolt",
                           "&build_id=" + build_id(exe))
    assert status == 200, body
    assert re.search(r"^1 main [0-9a-f]+ 1 main [0-9a-f]+ \d+ \d+$", body,
                     re.M), body


def test_bad_input_is_refused_and_nothing_is_stored(daemon, prog, recording,
                                                    tmp_path):
    exe, lib = prog
    cases = []
    # Not a perf.data file at all.
    (tmp_path / "notperf.data").write_text("#!/bin/sh\necho hello\n")
    cases.append(([str(tmp_path / "notperf.data")], "not a perf.data file"))
    # A recording cut in the middle of its data.
    with open(recording, "rb") as f:
        data = f.read()
    (tmp_path / "cut.data").write_bytes(data[:len(data) // 2])
    cases.append(([str(tmp_path / "cut.data")], "truncated perf.data"))
    # Garbled and cut text.
    text, ids = hand_made_script(exe, lib)
    (tmp_path / "ids.txt").write_text(ids)
    lines = text.splitlines(True)
    garbled = "".join(lines[:3]) + "this is not perf script output\n" + \
        "".join(lines[3:])
    (tmp_path / "garbled.txt").write_text(garbled)
    cases.append((["--script", str(tmp_path / "garbled.txt"), "--build-ids",
                   str(tmp_path / "ids.txt")],
                  "line 4: not a perf script line"))
    chain = ("  4242/4242  9001.000000:    1000000 cycles:u: \n"
             "\t    555555555000 (%s)\n" % exe)
    (tmp_path / "cut.txt").write_text(text + chain)
    cases.append((["--script", str(tmp_path / "cut.txt"), "--build-ids",
                   str(tmp_path / "ids.txt")], "truncated: the sample"))
    (tmp_path / "badids.txt").write_text("XYZ %s\n" % exe)
    cases.append((["--script", str(tmp_path / "cut.txt"), "--build-ids",
                   str(tmp_path / "badids.txt")], "build-id list line 1"))
    # A pipe: its bytes cannot be hashed before they are read.
    os.mkfifo(str(tmp_path / "fifo"))
    cases.append((["--script", str(tmp_path / "fifo")],
                  "not a regular file"))
    # A perf that fails (the decoder never sees a line).
    cases.append((["--perf", "/bin/false", recording], "failed"))
    for args, msg in cases:
        rc, out, err = fdoctl("import", "--url", daemon.url, *args)
        assert rc == 2, (args, rc, out, err)
        assert msg in err, (args, err)
        assert "sent:" not in out, out
    st = daemon.wait_merged()
    assert st["ingest"]["batches"] == 0 and st["ingest"]["samples"] == 0, st
    assert daemon.get("/v1/binaries")["binaries"] == []


def test_an_interrupted_import_rerun_counts_every_sample_once(daemon, prog,
                                                              tmp_path):
    """Samples over five hours of perf time make five batches; fdod gets
    the first two (what an import that died after their Acks stored),
    then the whole import runs again: the two answer as duplicates and
    every sample is counted exactly once. Label order and the host of
    the machine that imports do not change the agent id."""
    exe, lib = prog
    text, ids = hand_made_script(exe, lib)
    lines = text.splitlines(True)
    head, sample = lines[:2], lines[2]
    hours = []
    for h in range(5):
        for k in range(3 + h):
            hours.append(sample.replace(
                "9000.%06d:" % 500, "%d.%06d:" % (9000 + 5400 * h, k), 1))
    assert hours[1] != hours[0]
    (tmp_path / "script.txt").write_text("".join(head + hours))
    (tmp_path / "ids.txt").write_text(ids)
    now = int(time.time())
    base = ["--script", str(tmp_path / "script.txt"), "--build-ids",
            str(tmp_path / "ids.txt"), "--time", str(now)]
    rc, out, err = fdoctl("import", "--print", "--label", "a=1",
                          "--label", "b=2", *base)
    assert rc == 0, err
    assert "batches=5 time=%d" % now in out, out
    batches = out.split("\n", 1)[1].split("\n\n")
    assert len(batches) == 5, out
    agent = re.search(r"^agent\s+(\S+)", batches[0], re.M).group(1)
    for i, b in enumerate(batches[:2]):
        (tmp_path / ("b%d.txt" % i)).write_text(b.strip() + "\n")
        rc, pout, perr = fdoctl("push", "--url", daemon.url,
                                str(tmp_path / ("b%d.txt" % i)))
        assert rc == 0, perr + pout
    assert samples_stored(daemon, "prog") == 3 + 4
    rc, out, err = fdoctl("import", "--url", daemon.url, "--label", "b=2",
                          "--label", "a=1", *base)
    assert rc == 0, err + out
    s = sent(out)
    assert s["agent"] == agent and s["duplicate"] == "2", out
    assert samples_stored(daemon, "prog") == sum(3 + h for h in range(5))
