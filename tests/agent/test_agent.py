"""Integration tests of fdo-agent against the real fdod on loopback.

A test program with a hot function in its executable and another in a
shared library (both built here with frame pointers) runs under
`fdo-agent -- ./prog`; the profile pulled back from fdod must name both.
Failure paths on purpose: fdod killed with SIGKILL mid-run and restarted
(the agent's spool retries, the store counts every sample exactly once),
no PMU (cycles + branch stacks fall back to cpu-clock), no permission.
"""
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "ingest"))
from fdodtest import ROOT, Daemon, build_id  # noqa: E402

AGENT = os.environ.get("FDO_AGENT") or os.path.join(ROOT, "build",
                                                    "fdo-agent")
CFLAGS = ["gcc", "-O2", "-g", "-fno-omit-frame-pointer"]

PROG = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
unsigned lib_hot(unsigned x);
__attribute__((noinline)) unsigned exe_hot(unsigned x) {
    for (unsigned i = 0; i < 2000000; i++) x = x * 2654435761u + i;
    return x;
}
int main(int argc, char **argv) {
    double secs = argc > 1 ? atof(argv[1]) : 2.5;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    unsigned s = 0;
    do {
        s += exe_hot(s);
        s += lib_hot(s);
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while ((t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9 < secs);
    printf("%u\n", s);
    return argc > 2 ? atoi(argv[2]) : 0;
}
"""

LIB = r"""
__attribute__((noinline)) unsigned lib_hot(unsigned x) {
    for (unsigned i = 0; i < 2000000; i++) x = x * 40503u + (i ^ 7);
    return x;
}
"""


@pytest.fixture(scope="module")
def prog(tmp_path_factory):
    assert os.path.exists(AGENT), "build fdo-agent first (make)"
    d = tmp_path_factory.mktemp("agentprog")
    (d / "prog.c").write_text(PROG)
    (d / "lib.c").write_text(LIB)
    subprocess.run(CFLAGS + ["-shared", "-fPIC", "-o", str(d / "libhot.so"),
                             str(d / "lib.c")], check=True, timeout=300)
    subprocess.run(CFLAGS + ["-o", str(d / "prog"), str(d / "prog.c"),
                             "-L" + str(d), "-lhot",
                             "-Wl,-rpath," + str(d)], check=True, timeout=300)
    os.chmod(str(d), 0o755)
    return str(d / "prog"), str(d / "libhot.so")


@pytest.fixture
def daemon(tmp_path):
    with Daemon(tmp_path / "data") as d:
        yield d


def summary(stderr):
    m = re.search(r"fdo-agent: summary: (.*)", stderr)
    assert m, stderr
    return {k: int(v) for k, v in
            (kv.split("=") for kv in m.group(1).split())}


def run_agent(args, timeout=60, **kw):
    p = subprocess.run([AGENT] + args, capture_output=True, text=True,
                       timeout=timeout, **kw)
    return p.returncode, p.stdout, p.stderr


def folded_leaves(d, binary):
    status, body = d.request("GET", "/v1/profiles/%s?format=folded" % binary)
    assert status == 200, body
    res = {}
    for line in body.decode().splitlines():
        stack, count = line.rsplit(" ", 1)
        leaf = stack.split(";")[-1]
        res[leaf] = res.get(leaf, 0) + int(count)
    return res


def profile_build_ids(d, binary):
    """The build-ids of a binary's profile (X-Fdod-Build-Ids)."""
    r = urllib.request.urlopen(d.http + "/v1/profiles/%s?format=folded"
                               "&min_samples=1" % binary)
    return r.headers["X-Fdod-Build-Ids"].split(",")


def wait_symbolized(d, ids, timeout=30):
    """Wait until none of ids is pending (libc's frames stay pending: its
    symbols are not uploaded)."""
    end = time.time() + timeout
    while time.time() < end:
        st = d.get("/v1/status")
        pending = {b["build_id"] for b in st["pending"]["build_ids"]}
        if not pending & ids:
            return
        time.sleep(0.1)
    raise AssertionError("still pending: %s" % st)


def test_help_from_option_table():
    rc, out, _ = run_agent(["--help"])
    assert rc == 0
    for opt in ("--url", "--binary", "--label", "--freq", "--interval",
                "--weight", "--event", "--branch-stack", "--pid"):
        assert opt in out, opt


def test_usage_errors():
    rc, _, err = run_agent(["--interval", "1"])
    assert rc == 2 and "--pid" in err
    rc, _, err = run_agent(["--event", "bogus", "--", "true"])
    assert rc == 2 and "cpu-clock" in err


def test_hot_functions_in_exe_and_library(daemon, prog):
    exe, lib = prog
    rc, out, err = run_agent(["--url", daemon.url, "--interval", "1",
                              "--label", "mode=test", "--", exe, "2.5"])
    assert rc == 0, err
    s = summary(err)
    assert s["samples_sent"] > 100, err
    assert s["batches_sent"] >= 2, err
    assert s["batches_dropped"] == 0 and s["batches_unsent"] == 0, err
    for path in (exe, lib):
        with open(path, "rb") as f:
            st, body = daemon.request("PUT", "/v1/symbols?binary=prog",
                                      f.read())
        assert st in (200, 201), body
    wait_symbolized(daemon, {build_id(exe), build_id(lib)})
    leaves = folded_leaves(daemon, "prog")
    top = sorted(leaves, key=leaves.get, reverse=True)[:2]
    assert set(top) == {"exe_hot", "lib_hot"}, leaves
    info = daemon.get("/v1/binaries/prog")
    ids = {b["build_id"] for b in info["build_ids"]}
    assert build_id(exe) in ids and build_id(lib) in ids, info
    assert info["samples"] == s["samples_sent"], (info, err)


def test_exit_status_of_the_command(daemon, prog):
    exe, _ = prog
    rc, _, err = run_agent(["--url", daemon.url, "--", exe, "0.3", "3"])
    assert rc == 3, err
    assert summary(err)["samples_sent"] > 0


def test_pid_mode_follows_a_running_process(daemon, prog):
    exe, _ = prog
    target = subprocess.Popen([exe, "2"], stdout=subprocess.DEVNULL)
    try:
        time.sleep(0.2)
        rc, _, err = run_agent(["--url", daemon.url, "--interval", "1",
                                "--binary", "pidprog",
                                "--pid", str(target.pid)])
    finally:
        target.wait()
    assert rc == 0, err
    s = summary(err)
    assert s["samples_sent"] > 100, err
    assert daemon.get("/v1/binaries/pidprog")["samples"] == \
        s["samples_sent"]


def test_server_killed_mid_run_counts_exactly_once(daemon, prog):
    exe, _ = prog
    agent = subprocess.Popen(
        # --retry-max 2: nng's own redials and the agent's back-off stay
        # within 2 s, so a restart that is slow on a loaded host is
        # reached well within the drain (with the default 30 s, nng's
        # redial interval can double past what is left of it: 4 batches
        # were left unsent once in a loaded fresh clone, likely so)
        [AGENT, "--url", daemon.url, "--interval", "1", "--timeout-ms",
         "500", "--drain", "20", "--retry-max", "2", "--binary",
         "killprog", "--", exe, "5"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(1.8)
    daemon.kill9()
    time.sleep(2.0)
    daemon.start()
    _, err = agent.communicate(timeout=60)
    assert agent.returncode == 0, err
    s = summary(err)
    assert "kept for retry" in err, err  # the outage was seen
    assert s["batches_dropped"] == 0 and s["batches_unsent"] == 0, err
    assert s["samples_sent"] + s["samples_unmapped"] == s["samples_read"], err
    stored = daemon.get("/v1/binaries/killprog")["samples"]
    assert stored == s["samples_sent"], (stored, err)


def test_an_outage_costs_a_few_log_lines_not_one_per_attempt(tmp_path,
                                                              prog):
    """fdod not there for the first seconds of a run: the agent retries
    with its back-off (--retry-max 1, so several attempts fail), logs the
    outage's first failure once and a line when fdod answers, and every
    batch is stored once. Before, each failed attempt was a line."""
    exe, _ = prog
    d = Daemon(tmp_path / "late")
    agent = subprocess.Popen(
        [AGENT, "--url", d.url, "--interval", "1", "--timeout-ms", "300",
         "--retry-max", "1", "--drain", "30", "--binary", "lateprog", "--",
         exe, "6"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(5.0)
        d.start()
        _, err = agent.communicate(timeout=90)
        assert agent.returncode == 0, err
        assert err.count("kept for retry") == 1, err
        assert "back-off up to 1s" in err, err
        assert re.search(r"fdod answers again after [0-9]+s", err), err
        s = summary(err)
        assert s["batches_dropped"] == 0 and s["batches_unsent"] == 0, err
        assert s["samples_sent"] + s["samples_unmapped"] == \
            s["samples_read"], err
        stored = d.get("/v1/binaries/lateprog")["samples"]
        assert stored == s["samples_sent"], (stored, err)
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
        d.stop()


def test_retry_max_is_checked(tmp_path):
    d = Daemon(tmp_path / "never")
    rc, _, err = run_agent(["--url", d.url, "--retry-max", "0", "--",
                            "true"])
    assert rc == 2 and "--retry-max must be" in err, err


def test_spool_keeps_batches_while_server_is_down(tmp_path, prog):
    """No server at all: nothing is lost silently; the summary says what
    was left unsent."""
    exe, _ = prog
    d = Daemon(tmp_path / "never")
    rc, _, err = run_agent(["--url", d.url, "--interval", "1",
                            "--timeout-ms", "200", "--drain", "1",
                            "--", exe, "1.5"])
    assert rc == 0, err
    s = summary(err)
    assert s["samples_sent"] == 0
    assert s["samples_unsent"] + s["samples_unmapped"] == s["samples_read"] > 0, err


def test_spool_bytes_bounds_what_is_held(tmp_path, prog):
    """--spool-bytes: with no server and a byte cap below one batch, the
    spool holds the batch in flight and the newest; the older ones are
    dropped, reported and counted, never lost silently."""
    exe, _ = prog
    d = Daemon(tmp_path / "never")
    rc, _, err = run_agent(["--url", d.url, "--interval", "1",
                            "--timeout-ms", "200", "--drain", "1",
                            "--spool-bytes", "1", "--", exe, "4.5"])
    assert rc == 0, err
    s = summary(err)
    assert s["samples_sent"] == 0, err
    assert s["batches_dropped"] >= 2, err
    assert re.search(r"^fdo-agent: spool full \(\d+ batches, 1 bytes\): "
                     r"dropped batch seq \d+ \(\d+ samples\)$", err,
                     re.M), err
    # One line for the first drop; the rest are counted (a line a minute,
    # and what is left at exit), so an outage of hours is not a flood.
    assert err.count("dropped batch seq") == 1, err
    more = re.search(r"^fdo-agent: spool full: (\d+) more batches dropped "
                     r"since the last such line$", err, re.M)
    assert more and int(more.group(1)) == s["batches_dropped"] - 1, err
    assert (s["samples_unsent"] + s["samples_dropped"] +
            s["samples_unmapped"]) == s["samples_read"] > 0, err


def test_sigusr1_prints_what_is_held_now(tmp_path, prog):
    """SIGUSR1: after the next flush, a status line of what the agent has
    done and holds, its RSS and the spool's backlog included; with fdod
    away the backlog shows there, and the agent goes on sampling."""
    exe, _ = prog
    d = Daemon(tmp_path / "never")
    p = subprocess.Popen([AGENT, "--url", d.url, "--interval", "1",
                          "--timeout-ms", "200", "--drain", "1", "--",
                          exe, "4"], stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(2.5)  # two flushes: batches wait in the spool
        p.send_signal(signal.SIGUSR1)
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err
    m = re.search(r"^fdo-agent: status: (.*)$", err, re.M)
    assert m, err
    st = {k: int(v) for k, v in
          (kv.split("=", 1) for kv in m.group(1).split())}
    for k in ("samples_read", "batches_sent", "spool_batches",
              "spool_bytes", "procs_known", "mappings_known", "freq",
              "vmrss_kib", "rssanon_kib"):
        assert k in st, err
    assert 0 < st["rssanon_kib"] < st["vmrss_kib"], err
    assert st["samples_read"] > 0 and st["batches_sent"] == 0, err
    assert st["spool_batches"] >= 1 and st["spool_bytes"] > 0, err
    assert st["procs_known"] >= 1 and st["mappings_known"] >= 1, err
    s = summary(err)
    assert s["samples_read"] >= st["samples_read"], err


def test_cycles_and_branch_stack_fall_back(daemon, prog):
    exe, _ = prog
    rc, _, err = run_agent(["--url", daemon.url, "--interval", "1",
                            "--event", "cycles", "--branch-stack",
                            "--binary", "fbprog", "--", exe, "1"])
    assert rc == 0, err
    if "falling back" not in err:
        pytest.skip("this machine has a PMU: no fallback to test")
    assert re.search(r"^fdo-agent: .*falling back to cpu-clock without "
                     r"branch stacks$", err, re.M), err
    s = summary(err)
    assert s["samples_sent"] > 0
    assert daemon.get("/v1/binaries/fbprog")["samples"] == s["samples_sent"]


def test_no_permission_names_perfmon_and_paranoid(tmp_path):
    if os.geteuid() != 0 or not os.path.exists("/usr/bin/setpriv"):
        pytest.skip("needs root to drop to nobody")
    # As nobody, sampling a root-owned process is refused by the kernel
    # (EACCES from the ptrace-access check of perf_event_open).
    victim = subprocess.Popen(["sleep", "30"])
    try:
        p = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
             AGENT, "--url", "tcp://127.0.0.1:1", "--pid",
             str(victim.pid)], capture_output=True, text=True, timeout=30)
    finally:
        victim.kill()
        victim.wait()
    assert p.returncode == 1, p.stderr
    assert "CAP_PERFMON" in p.stderr and "perf_event_paranoid" in p.stderr, \
        p.stderr


def test_children_of_the_command_are_followed(daemon, prog):
    """inherit=1: a shell's children (fork + exec) are sampled, and their
    mappings come from their own MMAP2 records."""
    exe, lib = prog
    rc, _, err = run_agent(["--url", daemon.url, "--interval", "1",
                            "--binary", "shprog", "--", "sh", "-c",
                            "%s 0.7 >/dev/null; %s 0.7 >/dev/null & wait"
                            % (exe, exe)])
    assert rc == 0, err
    s = summary(err)
    assert s["samples_sent"] > 100, err
    assert daemon.get("/v1/binaries/shprog")["samples"] == s["samples_sent"]
    ids = profile_build_ids(daemon, "shprog")
    assert build_id(exe) in ids and build_id(lib) in ids, ids


def test_mapping_without_build_id_is_skipped(daemon, tmp_path):
    """A library linked without a build-id: its frames stay unmapped, the
    executable's are kept, nothing is refused."""
    (tmp_path / "prog.c").write_text(PROG)
    (tmp_path / "lib.c").write_text(LIB)
    subprocess.run(CFLAGS + ["-shared", "-fPIC", "-Wl,--build-id=none",
                             "-o", str(tmp_path / "libhot.so"),
                             str(tmp_path / "lib.c")], check=True, timeout=300)
    exe = str(tmp_path / "nobid")
    subprocess.run(CFLAGS + ["-o", exe, str(tmp_path / "prog.c"),
                             "-L" + str(tmp_path), "-lhot",
                             "-Wl,-rpath," + str(tmp_path)], check=True, timeout=300)
    rc, _, err = run_agent(["--url", daemon.url, "--interval", "1", "--",
                            exe, "1"])
    assert rc == 0, err
    s = summary(err)
    assert s["batches_dropped"] == 0 and s["samples_sent"] > 0, err
    info = daemon.get("/v1/binaries/nobid")
    assert info["samples"] == s["samples_sent"]
    ids = profile_build_ids(daemon, "nobid")
    assert build_id(exe) in ids, ids
    # The executable and libc, and the dynamic loader when a sample caught
    # it at startup; libhot is loaded too, but has no build-id to name.
    ldd = subprocess.run(["ldd", exe], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    libs = re.findall(r"(/\S+) \(0x", ldd)
    assert any("libhot" in p for p in libs), ldd
    named = {build_id(exe)} | {build_id(p) for p in libs if "libhot" not in p}
    assert set(ids) <= named and len(ids) >= 2, (ids, ldd)


THREADS = r"""
#include <pthread.h>
#include <time.h>
static volatile unsigned sink;
static double secs;
static double now(void) {
    struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}
#define SPIN(name) \
__attribute__((noinline)) void *name(void *arg) { \
    double end = now() + secs; \
    unsigned x = 1; \
    while (now() < end) \
        for (unsigned i = 0; i < 100000; i++) x = x * 2654435761u + i; \
    sink = x; \
    return arg; \
}
SPIN(spin_first)
SPIN(spin_second)
int main(void) {
    pthread_t t[2];
    secs = 2.0;
    pthread_create(&t[0], 0, spin_first, 0);
    pthread_create(&t[1], 0, spin_second, 0);
    for (int i = 0; i < 2; i++) pthread_join(t[i], 0);
    return 0;
}
"""


def test_pid_mode_samples_every_thread(daemon, tmp_path):
    """--pid on a process whose threads already run: one event per
    thread (from /proc/PID/task). Each thread runs its own function, so
    both functions in the profile prove both threads were sampled, however
    busy the machine is."""
    (tmp_path / "threads.c").write_text(THREADS)
    exe = str(tmp_path / "threads")
    subprocess.run(CFLAGS + ["-pthread", "-o", exe,
                             str(tmp_path / "threads.c")], check=True, timeout=300)
    target = subprocess.Popen([exe])
    try:
        time.sleep(0.3)
        rc, _, err = run_agent(["--url", daemon.url, "--interval", "1",
                                "--pid", str(target.pid)])
    finally:
        target.wait()
    assert rc == 0, err
    s = summary(err)
    assert s["samples_sent"] > 0, err
    assert daemon.get("/v1/binaries/threads")["samples"] == \
        s["samples_sent"]
    with open(exe, "rb") as f:
        assert daemon.request("PUT", "/v1/symbols?binary=threads",
                              f.read())[0] == 201
    daemon.wait_pending_zero()
    status, body = daemon.request(
        "GET", "/v1/profiles/threads?format=folded&min_samples=1")
    assert status == 200, body
    leaves = {line.rsplit(" ", 1)[0].split(";")[-1]
              for line in body.decode().splitlines()}
    assert {"spin_first", "spin_second"} <= leaves, leaves
