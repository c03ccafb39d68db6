"""The README's walkthrough, run as written (issue 25, item 7).

The README marks each shell block of its walkthrough with a line
`<!-- walkthrough -->` before the fence. This test runs those blocks, in
order, as one `bash -e` script from the top of the tree, against the
programs `make` built (the walkthrough's own first block, `make deps` and
`make`, is left unmarked: the suites run after the build). Only what the
README itself reads from the environment is set: `FDOD_URL` and
`FDOD_HTTP` to free loopback ports, `WORK` to a temporary directory. The
script starts fdod, uploads symbols, samples a program under fdo-agent,
pulls its llvm profile, rebuilds it with clang-16 -fprofile-sample-use and
stops fdod; the test checks a profile came out and the rebuilt program
prints what the original prints. Whatever the script leaves running is
stopped by its process id (fdod's from `$WORK/fdod.pid`, the script's
process group on a timeout). About 15 s.
"""
import os
import re
import signal
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "ingest"))
from fdodtest import ROOT, free_port  # noqa: E402

MARK = "<!-- walkthrough -->"
TIMEOUT = 110  # seconds for the whole script; the suite must stay < 2 min


def walkthrough_blocks(text):
    """The shell blocks marked for the walkthrough, in order."""
    blocks = re.findall(re.escape(MARK) + r"\n\s*```sh\n(.*?)^```", text,
                        re.S | re.M)
    assert text.count(MARK) == len(blocks), \
        "a %s marker is not followed by a ```sh block" % MARK
    return blocks


def can_sample():
    if os.geteuid() == 0:
        return True
    try:
        with open("/proc/sys/kernel/perf_event_paranoid") as f:
            return int(f.read()) <= 1
    except OSError:
        return False


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is gone for our purposes.
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def stop(pid, timeout=20):
    """SIGTERM, then SIGKILL, the process pid (one this test started)."""
    if not alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    end = time.time() + timeout
    while time.time() < end and alive(pid):
        time.sleep(0.1)
    if alive(pid):
        os.kill(pid, signal.SIGKILL)


def test_readme_has_a_walkthrough():
    with open(os.path.join(ROOT, "README.md")) as f:
        blocks = walkthrough_blocks(f.read())
    script = "\n".join(blocks)
    # What a newcomer needs the walkthrough for: start, upload, sample,
    # pull, build with the profile, stop.
    for step in ("build/fdod ", "fdoctl upload", "build/fdo-agent ",
                 "fdoctl pull", "-fprofile-sample-use", "kill "):
        assert step in script, step


def test_walkthrough_runs_as_written(tmp_path):
    if not can_sample():
        pytest.skip("fdo-agent needs root or kernel.perf_event_paranoid "
                    "<= 1 to sample")
    with open(os.path.join(ROOT, "README.md")) as f:
        blocks = walkthrough_blocks(f.read())
    work = tmp_path / "work"
    env = dict(os.environ,
               FDOD_URL="tcp://127.0.0.1:%d" % free_port(),
               FDOD_HTTP="http://127.0.0.1:%d" % free_port(),
               WORK=str(work))
    script = "set -e\n" + "\n".join(blocks)
    proc = subprocess.Popen(["bash", "-c", script], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True,
                            start_new_session=True)
    fdod_pid = None
    try:
        try:
            out, err = proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            raise AssertionError("the walkthrough took over %d s:\n%s%s" %
                                 (TIMEOUT, out, err[-3000:]))
        pidfile = work / "fdod.pid"
        if pidfile.exists():
            fdod_pid = int(pidfile.read_text())
        log = (work / "fdod.log").read_text(errors="replace") \
            if (work / "fdod.log").exists() else ""
        assert proc.returncode == 0, "exit %d\n%s\n%s\nfdod.log:\n%s" % (
            proc.returncode, out, err[-3000:], log[-3000:])
        # A profile came out, llvm-profdata read it, and the program
        # built with it prints what the original prints.
        prof = work / "vm.prof"
        assert prof.exists() and prof.stat().st_size > 0
        assert re.search(r"^Function: main: \d+", out, re.M), out
        # (the first checksum is the sampled run's, under fdo-agent)
        sums = re.findall(r"^checksum .*$", out, re.M)
        assert len(sums) == 3 and sums[1] == sums[2], out
        assert (work / "vm.fdo").exists()
        # The walkthrough's last step stopped fdod.
        end = time.time() + 20
        while fdod_pid and alive(fdod_pid) and time.time() < end:
            time.sleep(0.1)
        assert not (fdod_pid and alive(fdod_pid)), "fdod still runs"
    finally:
        if fdod_pid is None and (work / "fdod.pid").exists():
            fdod_pid = int((work / "fdod.pid").read_text())
        if fdod_pid:
            stop(fdod_pid)
