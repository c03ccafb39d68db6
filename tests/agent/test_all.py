"""Integration tests of `fdo-agent --all` (host-wide mode) against the real
fdod on loopback.

Test programs, each built here with its own build-id, run around one
host-wide agent that selects them by name or build-id: one started before
the agent (its mappings come from /proc), one after it and one that exits
mid-interval (both followed through COMM/MMAP2/EXIT records), and two in a
mount namespace of their own (`unshare -m`) whose executable lives on a
tmpfs mounted only inside it, so its path does not exist for the agent:
one started before the agent (build-id read through /proc/PID/map_files
or /proc/PID/root), one after (the kernel's build-id in MMAP2). The same
again with perf_event_open made to refuse attr.build_id (LD_PRELOAD), as
kernels before 5.12 do: the agent says so and reads every build-id from
the files. Each must arrive under its own binary name with its own
build-id (readelf's), and a process no selector names must contribute
nothing. A second --all agent on the same lock refuses to start.

The host runs other work: selectors keep it out, every wait is bounded,
and every process started here is stopped by its pid.
"""
import os
import re
import signal
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "ingest"))
sys.path.insert(0, os.path.dirname(__file__))
from fdodtest import build_id, samples_stored  # noqa: E402
from test_agent import AGENT, CFLAGS, daemon, summary  # noqa: E402,F401

# TAG makes each binary's build-id its own.
PROG = r"""
#include <stdlib.h>
#include <time.h>
__attribute__((noinline)) unsigned spin_%(tag)s(unsigned x) {
    for (unsigned i = 0; i < 200000; i++) x = x * 2654435761u + i;
    return x;
}
int main(int argc, char **argv) {
    double secs = argc > 1 ? atof(argv[1]) : 2;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    unsigned s = 0;
    do {
        s += spin_%(tag)s(s);
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while ((t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9 < secs);
    return s == 42;
}
"""

# Host-wide sampling (perf_event_paranoid aside), map_files and unshare -m
# need root.
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

# LD_PRELOADed into the agent: perf_event_open refuses attr.build_id as a
# kernel before 5.12 does, so the agent reads every build-id from the files.
NO_KERNEL_BUILD_ID = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <linux/perf_event.h>
#include <stdarg.h>
#include <sys/syscall.h>
long syscall(long n, ...) {
    va_list ap;
    long a[6];
    va_start(ap, n);
    for (int i = 0; i < 6; i++) a[i] = va_arg(ap, long);
    va_end(ap);
    if (n == SYS_perf_event_open &&
        ((struct perf_event_attr *)a[0])->build_id) {
        errno = EINVAL;
        return -1;
    }
    long (*real)(long, ...) = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
    return real(n, a[0], a[1], a[2], a[3], a[4], a[5]);
}
"""

NAMES = ("fdoall_pre", "fdoall_post", "fdoall_exit", "fdoall_nsa",
         "fdoall_nsb", "fdoall_skip")


@pytest.fixture(scope="module")
def progs(tmp_path_factory):
    assert os.path.exists(AGENT), "build fdo-agent first (make)"
    d = tmp_path_factory.mktemp("allprogs")
    out = {}
    for name in NAMES:
        src = d / (name + ".c")
        src.write_text(PROG % {"tag": name.split("_")[1]})
        subprocess.run(CFLAGS + ["-o", str(d / name), str(src)],
                       check=True, timeout=300)
        out[name] = str(d / name)
    (d / "nokbid.c").write_text(NO_KERNEL_BUILD_ID)
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(d / "nokbid.so"),
                    str(d / "nokbid.c"), "-ldl"], check=True, timeout=300)
    out["nokbid.so"] = str(d / "nokbid.so")
    os.chmod(str(d), 0o755)
    return out


def wait_for(cond, timeout, what):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def exe_of(pid):
    try:
        return os.readlink("/proc/%d/exe" % pid)
    except OSError:
        return ""


def start_in_namespace(prog, mnt, secs):
    """prog copied onto a tmpfs at mnt that only a new mount namespace
    sees, and run there; returns the Popen (its pid becomes prog's)."""
    name = os.path.basename(prog)
    script = ("mount -t tmpfs fdoall %s && cp %s %s/%s && exec %s/%s %s"
              % (mnt, prog, mnt, name, mnt, name, secs))
    p = subprocess.Popen(["unshare", "-m", "--propagation", "private",
                          "sh", "-c", script])
    try:
        wait_for(lambda: exe_of(p.pid).endswith("/" + name) or
                 p.poll() is not None, 10, name + " to start")
        assert p.poll() is None, "%s failed to start in its namespace" % name
        # the file exists only inside the namespace
        assert exe_of(p.pid) == os.path.join(mnt, name)
        assert not os.path.exists(os.path.join(mnt, name))
    except BaseException:
        stop([p])
        raise
    return p


def stop(procs):
    for p in procs:
        if p.poll() is None:
            p.kill()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            pass


def binary_build_ids(d, name):
    return {b["build_id"] for b in d.get("/v1/binaries/" + name)["build_ids"]}


def test_usage_errors(tmp_path):
    lock = str(tmp_path / "lock")
    for args, word in ((["--select", "exe=x", "--", "true"], "--all"),
                       (["--all", "--binary", "x", "--lock-file", lock],
                        "--binary"),
                       (["--all", "--select", "bogus=1", "--lock-file",
                         lock], "exe=NAME"),
                       (["--all", "--select", "build-id=xyz",
                         "--lock-file", lock], "hex"),
                       (["--all", "--pid", "1"], "exactly one")):
        p = subprocess.run([AGENT] + args, capture_output=True, text=True,
                           timeout=30)
        assert p.returncode == 2 and word in p.stderr, (args, p.stderr)


@pytest.mark.parametrize("kernel_build_ids", [True, False],
                         ids=["kernel-build-ids", "files-only"])
def test_all_follows_the_selected_processes(daemon, progs, tmp_path,
                                            kernel_build_ids):
    """Without the kernel's build-ids (files-only), the processes started
    after the agent, in its namespace or another, and the one that exits,
    are resolved from /proc/PID/map_files at their first samples."""
    if kernel_build_ids and tuple(int(x) for x in re.findall(
            r"\d+", os.uname().release)[:2]) < (5, 12):
        pytest.skip("the kernel puts build-ids in MMAP2 from Linux 5.12")
    env = dict(os.environ)
    if not kernel_build_ids:
        # asked for, and refused as by a kernel before 5.12
        env["LD_PRELOAD"] = progs["nokbid.so"]
    lock = str(tmp_path / "all.lock")
    mnt_a, mnt_b = str(tmp_path / "mnta"), str(tmp_path / "mntb")
    os.mkdir(mnt_a)
    os.mkdir(mnt_b)
    procs = []
    agent = None
    errf = open(str(tmp_path / "agent.err"), "w+")
    try:
        procs.append(subprocess.Popen([progs["fdoall_pre"], "9"]))
        procs.append(subprocess.Popen([progs["fdoall_skip"], "9"]))
        procs.append(start_in_namespace(progs["fdoall_nsa"], mnt_a, 9))
        agent = subprocess.Popen(
            [AGENT, "--all", "--url", daemon.url, "--interval", "1",
             "--lock-file", lock, "--drain", "20", "--kernel-build-ids",
             "--select", "exe=fdoall_pre,fdoall_post",
             "--select", "exe=fdoall_nsa,fdoall_nsb",
             # fdoall_exit by its build-id; the cgroup names nothing
             "--select", "build-id=" + build_id(progs["fdoall_exit"]),
             "--select", "cgroup=/fdoall-no-such-cgroup"],
            stdout=subprocess.DEVNULL, stderr=errf, env=env)

        def started():
            with open(errf.name) as f:
                return "fdo-agent: sampling" in f.read() or \
                    agent.poll() is not None
        wait_for(started, 20, "the agent to start")
        assert agent.poll() is None, open(errf.name).read()

        # A second host-wide agent on the same lock refuses, naming the
        # holder; it is not left running.
        second = subprocess.run(
            [AGENT, "--all", "--url", daemon.url, "--lock-file", lock],
            capture_output=True, text=True, timeout=30)
        assert second.returncode == 1, second.stderr
        assert "another host-wide agent (pid %d) holds %s" % (
            agent.pid, lock) in second.stderr, second.stderr

        post = subprocess.Popen([progs["fdoall_post"], "3"])
        procs.append(post)
        # exits in the middle of an interval
        early = subprocess.Popen([progs["fdoall_exit"], "1.5"])
        procs.append(early)
        procs.append(start_in_namespace(progs["fdoall_nsb"], mnt_b, 3))
        for p in procs[3:]:
            p.wait(30)
        assert early.returncode == 0 and post.returncode == 0
        time.sleep(1.5)  # one more interval with the pre-started ones
        agent.send_signal(signal.SIGTERM)
        agent.wait(60)
    finally:
        stop(procs + ([agent] if agent else []))
    errf.seek(0)
    err = errf.read()
    errf.close()
    assert agent.returncode == 0, err
    assert ("puts no build-ids in mmap records" in err) != \
        kernel_build_ids, err
    s = summary(err)
    assert s["batches_dropped"] == 0 and s["batches_unsent"] == 0, err
    assert s["samples_unselected"] > 0, err  # fdoall_skip at least

    total = 0
    for name in NAMES[:5]:
        n = samples_stored(daemon, name)
        assert n > 0, (name, err)
        total += n
        ids = binary_build_ids(daemon, name)
        assert build_id(progs[name]) in ids, (name, ids)
        # no other binary's build-id under this name
        others = {build_id(progs[o]) for o in NAMES if o != name}
        assert not ids & others, (name, ids)
    assert samples_stored(daemon, "fdoall_skip") == 0
    # what the agent says it sent is what fdod stored, all under the
    # selected binaries
    assert total == s["samples_sent"], (total, err)


def test_cgroup_selector(daemon, progs, tmp_path):
    """A process moved into a cgroup of its own is selected by
    cgroup=PATH; its twin outside it is not."""
    with open("/proc/self/mounts") as f:
        roots = [l.split()[1] for l in f if l.split()[2] == "cgroup2"]
    if not roots or not os.access(roots[0] + "/cgroup.procs", os.W_OK):
        pytest.skip("no writable cgroup v2 hierarchy")
    rel = "/fdoall-%d" % os.getpid()
    path = roots[0] + rel
    try:
        os.mkdir(path)
    except OSError as e:
        pytest.skip("cannot make a cgroup: %s" % e)
    procs = []
    agent = None
    try:
        inside = subprocess.Popen([progs["fdoall_pre"], "4"])
        procs.append(inside)
        try:
            with open(path + "/cgroup.procs", "w") as f:
                f.write(str(inside.pid))
        except OSError as e:
            pytest.skip("cannot move a process into a cgroup: %s" % e)
        procs.append(subprocess.Popen([progs["fdoall_skip"], "4"]))
        agent = subprocess.Popen(
            [AGENT, "--all", "--url", daemon.url, "--interval", "1",
             "--lock-file", str(tmp_path / "lock"), "--drain", "20",
             "--select", "cgroup=" + rel],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        time.sleep(2.5)
        agent.send_signal(signal.SIGTERM)
        _, err = agent.communicate(timeout=60)
    finally:
        stop(procs + ([agent] if agent else []))
        wait_for(lambda: not open(path + "/cgroup.procs").read().strip(),
                 10, "the cgroup to empty")
        os.rmdir(path)
    assert agent.returncode == 0, err
    s = summary(err)
    assert samples_stored(daemon, "fdoall_pre") == s["samples_sent"] > 0, err
    assert samples_stored(daemon, "fdoall_skip") == 0


def test_perf_record_runs_beside_the_agent(daemon, tmp_path):
    """A host-wide agent must not break the perf a user runs on the same
    host: with the kernel's build-ids in mmap records asked for (any
    event), Debian bookworm's perf record aborts (util/build-id.c:1010),
    so the agent asks only with --kernel-build-ids."""
    import shutil
    if not shutil.which("perf"):
        pytest.fail("perf is not installed (linux-perf: "
                    "deploy/install-deps.sh)")
    errf = open(str(tmp_path / "agent.err"), "w+")
    agent = subprocess.Popen(
        [AGENT, "--all", "--url", daemon.url, "--interval", "1",
         "--lock-file", str(tmp_path / "lock")],
        stdout=subprocess.DEVNULL, stderr=errf)
    try:
        def started():
            with open(errf.name) as f:
                return "fdo-agent: sampling" in f.read() or \
                    agent.poll() is not None
        wait_for(started, 20, "the agent to start")
        p = subprocess.run(["perf", "record", "-o",
                            str(tmp_path / "perf.data"), "--", "true"],
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
    finally:
        stop([agent])
        errf.close()
