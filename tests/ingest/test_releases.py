"""GET /v1/binaries/{binary}/releases (issue 26 item 4; docs/http.md): the
CPU per host-hour of each release of a binary and release against release
with an interval.

Two builds of one small C program, the second doing exactly twice the
work per unit, run side by side at the same fixed rate of units per second
(paced, each well under a core), each sampled by the real fdo-agent with
the same labels; the reported ratio must be within 5% of 2.0 and of the
ratio of the CPU the two processes used (getrusage, their own measure).
Also: the JSON's shape, limit=, 404, 400 and the token scope.
"""
import json
import os
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from fdodtest import FDOCTL, ROOT, Daemon, batch_text, build_id  # noqa: E402

AGENT = os.environ.get("FDO_AGENT") or os.path.join(ROOT, "build",
                                                    "fdo-agent")

# COST is 1 or 2: a unit of the second build is two units of the first's
# work. The program waits for a line on stdin (so the agent is attached
# before any work), runs UNITS units paced at RATE per second (absolute
# deadlines: a late unit is caught up, so both builds do the same units
# over the same time), prints its CPU seconds (getrusage) and waits for
# stdin to close.
PROG = r"""
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
__attribute__((noinline)) unsigned work(unsigned x, unsigned n) {
    for (unsigned i = 0; i < n; i++) x = x * 2654435761u + (i ^ (x >> 7));
    return x;
}
int main(int argc, char **argv) {
    unsigned iters = (unsigned)atol(argv[1]);
    double rate = atof(argv[2]);
    long units = atol(argv[3]);
    char line[16];
    if (!fgets(line, sizeof line, stdin)) return 1;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    long step = (long)(1e9 / rate);
    unsigned s = 1;
    for (long u = 0; u < units; u++) {
        for (int c = 0; c < COST; c++) s = work(s, iters);
        next.tv_nsec += step;
        while (next.tv_nsec >= 1000000000L) {
            next.tv_nsec -= 1000000000L;
            next.tv_sec++;
        }
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("%.6f %u\n", ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
           ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6, s & 1);
    fflush(stdout);
    while (fgets(line, sizeof line, stdin)) {}
    return 0;
}
"""

CALIB = r"""
#include <stdio.h>
#include <time.h>
__attribute__((noinline)) unsigned work(unsigned x, unsigned n) {
    for (unsigned i = 0; i < n; i++) x = x * 2654435761u + (i ^ (x >> 7));
    return x;
}
int main(void) {
    struct timespec a, b;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
    unsigned s = work(1, 200000000u);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
    printf("%.3f %u\n", ((b.tv_sec - a.tv_sec) * 1e9 +
                         (b.tv_nsec - a.tv_nsec)) / 200000000.0, s & 1);
    return 0;
}
"""


def cc(src, out, *defs):
    path = out + ".c"
    with open(path, "w") as f:
        f.write(src)
    subprocess.run(["gcc", "-O2", "-g", "-fno-omit-frame-pointer"] +
                   list(defs) + ["-o", out, path], check=True)


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    d = tmp_path_factory.mktemp("releases")
    out = {}
    for cost in (1, 2):
        os.makedirs(str(d / ("v%d" % cost)))
        exe = str(d / ("v%d" % cost) / "relprog")
        cc(PROG, exe, "-DCOST=%d" % cost)
        out[cost] = exe
    assert build_id(out[1]) != build_id(out[2])
    cc(CALIB, str(d / "calib"))
    ns = float(subprocess.run([str(d / "calib")], capture_output=True,
                              text=True, check=True).stdout.split()[0])
    return out, ns


def agent(d, pid):
    return subprocess.Popen(
        [AGENT, "--url", d.url, "--binary", "relprog", "--label",
         "role=test", "--interval", "1", "--freq", "499", "--pid", str(pid),
         "--drain", "20"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def run_releases(d, builds, seconds=16.0, rate=100.0):
    """Release 1 then release 2 (their first samples two seconds apart),
    side by side; returns each one's CPU seconds (getrusage)."""
    (exe, ns) = builds
    # Release 1 uses ~15% of a core, release 2 ~30%.
    iters = int(0.15 / rate / (ns * 1e-9))
    units = int(seconds * rate)
    procs, agents = {}, {}
    for cost in (1, 2):
        procs[cost] = subprocess.Popen(
            [exe[cost], str(iters), str(rate), str(units)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        agents[cost] = agent(d, procs[cost].pid)
    time.sleep(1.5)  # the agents attached
    for cost in (1, 2):
        procs[cost].stdin.write("go\n")
        procs[cost].stdin.flush()
        # Release 1 is first seen a second earlier (first seen: the end of
        # the first batch with samples, in seconds; batches every second).
        time.sleep(2.2)
    cpu = {}
    for cost in (1, 2):
        cpu[cost] = float(procs[cost].stdout.readline().split()[0])
    for cost in (1, 2):
        procs[cost].stdin.close()
        procs[cost].wait(30)
        out = agents[cost].communicate(timeout=60)[0]
        assert agents[cost].returncode == 0, out
    d.wait_merged()
    return cpu


def test_twice_the_work_reads_as_twice_the_cpu(tmp_path, builds):
    # Hour buckets (the default): both runs fall in one bucket (or both
    # straddle the same boundary), so each release has the same
    # host-hours, as two releases running side by side in a fleet.
    with Daemon(tmp_path / "data") as d:
        cpu = run_releases(d, builds)
        truth = cpu[2] / cpu[1]
        r = d.get("/v1/binaries/relprog/releases")
        assert r["binary"] == "relprog" and r["releases_total"] == 2, r
        new, old = r["releases"]
        assert new["build_id"] == build_id(builds[0][2]), r
        assert old["build_id"] == build_id(builds[0][1]), r
        assert (new["release"], old["release"]) == (2, 1), r
        for x in (new, old):
            assert x["samples"] > 1000 and x["weight"] > 0, r
            assert x["host_hours"] > 0 and x["profile_version"] is None, r
            ls, = x["label_sets"]
            assert ls["labels"] == "role=test" and ls["buckets"] >= 1, r
        c, = r["comparisons"]
        assert (c["release"], c["previous"]) == (2, 1), r
        assert c["label_sets"] == 1, r
        ratio = c["ratio"]
        msg = "reported %.4f, rusage %.4f (%s)" % (ratio, truth, c["text"])
        print(msg, cpu)
        # Truth is the CPU the two processes used (their own getrusage);
        # by construction it is 2.0, give or take what the host's load
        # does to the cost of a unit (seen up to 4% under load here).
        assert abs(ratio / truth - 1) <= 0.05, msg
        assert abs(ratio / 2.0 - 1) <= 0.08, msg
        assert c["low"] < ratio < c["high"], c
        assert c["low"] > 1.5 and c["high"] < 2.6, c  # not a vacuous one
        assert c["text"].startswith("release 2 (%s): +" %
                                    new["build_id"][:12]), c
        assert "CPU per host-hour [" in c["text"], c
        # limit= keeps the newest releases; no comparison from one
        one = d.get("/v1/binaries/relprog/releases?limit=1")
        assert [x["release"] for x in one["releases"]] == [2], one
        assert one["comparisons"] == [] and one["releases_total"] == 2, one
        for bad in ("0", "101", "x", "-1", ""):
            st, body = d.request("GET",
                                 "/v1/binaries/relprog/releases?limit=" + bad)
            assert st == 400 and b"limit=" in body, (bad, st, body)
        st, body = d.request("GET", "/v1/binaries/nosuch/releases")
        assert st == 404, body
        json.loads(body)


def test_profile_version_and_the_scope(tmp_path):
    """One release has no comparison; a release first seen after a
    version was published names it (inferred); the route needs a token of
    scope read (or admin)."""
    tokfile = tmp_path / "tokens"
    tokfile.write_text("r" * 32 + " read r-client\n" +
                       "i" * 32 + " ingest i-client\n" +
                       "a" * 32 + " admin a-client\n")
    os.chmod(tokfile, 0o600)
    now = int(time.time())

    def push(d, seq, bid, t0):
        text = batch_text("a", seq, "single", bid, [(3, [0x555555555000])],
                          t0=t0)
        p = subprocess.run([FDOCTL, "push", "--url", d.url, "-"],
                           input=text.encode(), capture_output=True,
                           env=dict(os.environ, FDOD_TOKEN="i" * 32),
                           timeout=60)
        assert p.returncode == 0, p.stdout + p.stderr
        d.wait_merged()

    with Daemon(tmp_path / "data", extra=["--tokens", str(tokfile)],
                token="r" * 32) as d:
        push(d, 1, "ab" * 20, now - 600)
        r = d.get("/v1/binaries/single/releases")
        assert r["releases_total"] == 1 and r["comparisons"] == [], r
        x, = r["releases"]
        assert x["build_id"] == "ab" * 20 and x["samples"] == 3, r
        assert x["profile_version"] is None, r
        d.token = "a" * 32
        st, body = d.request(
            "POST", "/v1/profiles/single/publish?format=folded&min_samples=1",
            b"")
        assert st == 201, body
        vid = json.loads(body)["id"]
        d.token = "r" * 32
        # Release 2's first batch ends after the publish.
        push(d, 2, "cd" * 20, now - 50)
        r = d.get("/v1/binaries/single/releases")
        new, old = r["releases"]
        assert new["build_id"] == "cd" * 20 and old["profile_version"] is None
        assert new["profile_version"] == {
            "version": 1, "id": vid, "inferred": True,
            "created": new["profile_version"]["created"]}, r
        c, = r["comparisons"]
        assert ("release 2 (%s), likely built with profile version 1" %
                ("cd" * 6)) in c["text"], c
        d.token = "i" * 32
        st, _ = d.request("GET", "/v1/binaries/single/releases")
        assert st == 403
        d.token = None
        st, _ = d.request("GET", "/v1/binaries/single/releases")
        assert st == 401


def test_host_hours(tmp_path):
    """Release 2 runs on twice the hosts at the same CPU per host: the
    same CPU per host-hour (ratio 1), twice the host-hours (each host
    counted in the buckets its first and last batch span)."""
    hour = int(time.time()) // 3600 * 3600
    with Daemon(tmp_path / "data") as d:
        batches = [("host-1", "ab" * 20, hour - 3 * 3600 + 60),
                   ("host-1", "cd" * 20, hour - 3600 + 60),
                   ("host-2", "cd" * 20, hour - 3600 + 60)]
        for i, (host, bid, t0) in enumerate(batches):
            rc, out = d.push(batch_text(
                "agent-" + host, i + 1, "fleet", bid,
                [(100, [0x555555555000])], t0=t0, host=host,
                labels=("zone=a",)))
            assert rc == 0, out
        d.wait_merged()
        r = d.get("/v1/binaries/fleet/releases")
        new, old = r["releases"]
        assert new["build_id"] == "cd" * 20, r
        assert (old["host_hours"], new["host_hours"]) == (1, 2), r
        assert new["weight"] == 2 * old["weight"] > 0, r
        assert new["weight_per_host_hour"] == old["weight_per_host_hour"]
        c, = r["comparisons"]
        assert abs(c["ratio"] - 1) < 1e-9 and c["low"] < 1 < c["high"], c
        assert c["text"].startswith("release 2 (cdcdcdcdcdcd): +0.0% CPU"), c


def test_limit_and_label_sets(tmp_path):
    """Two releases side by side in one bucket on one host, release 2 in
    two label sets: release 2's weight is the same whatever limit= lists
    (release 1's own weight is never shared out to it), and the bucket's
    host-hours count once per release, not once per label set."""
    hour = int(time.time()) // 3600 * 3600
    b0 = hour - 3600
    with Daemon(tmp_path / "data") as d:
        batches = [("a1", "ab" * 20, b0 + 60, "zone=a", 100),
                   ("a2", "cd" * 20, b0 + 120, "zone=a", 100),
                   ("a3", "cd" * 20, b0 + 120, "zone=b", 200)]
        for i, (agent, bid, t0, label, n) in enumerate(batches):
            rc, out = d.push(batch_text(
                agent, i + 1, "side", bid, [(n, [0x555555555000])],
                t0=t0, host="host-1", labels=(label,)))
            assert rc == 0, out
        d.wait_merged()
        r = d.get("/v1/binaries/side/releases?limit=10")
        new, old = r["releases"]
        assert new["build_id"] == "cd" * 20 and new["release"] == 2, r
        assert new["weight"] == pytest.approx(3 * old["weight"]), r
        one = d.get("/v1/binaries/side/releases?limit=1")
        x, = one["releases"]
        assert x["release"] == 2 and x["weight"] == new["weight"], one
        # One host, one closed hour: one host-hour each, however many
        # label sets release 2 ran with.
        assert (old["host_hours"], new["host_hours"]) == (1, 1), r
        assert [x["host_hours"] for x in new["label_sets"]] == [1, 1], r
        c, = r["comparisons"]
        assert c["label_sets"] == 1 and c["buckets"] == 1, c
        assert c["ratio"] == pytest.approx(3), c
        assert x["host_hours"] == 1, one
