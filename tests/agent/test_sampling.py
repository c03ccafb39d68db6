"""Sampling control from fdod (issue 23; docs/sampling.md): a fleet of
simulated agents (bench/agent/fleetsim.c, on the agent's own sender and
control code, over the real protocol on loopback) delivers the policy's
samples per window while the number of agents changes 4x; a pause stops a
binary's samples within one batch interval and an on-demand window raises
its rate and then restores it; a malformed policy is refused at start and
on reload (SIGHUP), with its line and reason, and the old policy stays.
"""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "ingest"))
from fdodtest import FDOD, ROOT, Daemon  # noqa: E402

SIM = os.path.join(ROOT, "build", "bench", "fleetsim")


def fleetsim(d, seconds, schedule, window, *extra):
    if not os.path.exists(SIM):
        subprocess.run(["make", "-C", ROOT, "build/bench/fleetsim"],
                       check=True, timeout=600, capture_output=True)
    p = subprocess.run([SIM, "--url", d.url, "--binary", "sim",
                        "--seconds", str(seconds), "--window", str(window),
                        "--schedule", schedule] + list(extra),
                       capture_output=True, text=True,
                       timeout=seconds + 120)
    assert p.returncode == 0, p.stderr
    wins = [tuple(int(x) for x in m.groups()) for m in re.finditer(
        r"window (\d+) agents (\d+)\.\.(\d+) sent (\d+) freq (\d+)\.\.(\d+)"
        r" paused (\d+)", p.stdout)]
    total = re.search(r"total sent (\d+) accepted (\d+)", p.stdout)
    assert wins and total, p.stdout
    return wins, int(total.group(1)), int(total.group(2)), p.stdout


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def with_policy(tmp_path, text):
    """A Daemon (not started) with policy text and a 1 s interval."""
    policy = tmp_path / "policy"
    write(policy, text)
    return Daemon(tmp_path / "data", extra=["--sampling-policy", str(policy),
                                            "--sampling-interval", "1s"])


def test_fleet_gets_the_policy_samples_while_agents_change_4x(tmp_path):
    with with_policy(tmp_path, "sim samples=20000/10s\n") as d:
        wins, sent, accepted, out = fleetsim(
            d, 110, "0:8,10:8,50:32,60:32,100:8,110:8", 10)
        assert accepted == sent, out
        # Window 0 is the agents' own rate until the first advice; every
        # later one within 10% of the policy's 20,000.
        assert len(wins) >= 10, out
        assert max(w[2] for w in wins) == 32, out  # 4x the agents
        for w in wins[1:]:
            assert 18000 <= w[3] <= 22000, (w, out)
        st = d.get("/v1/sampling")
        b, = st["binaries"]
        assert b["binary"] == "sim" and b["target_per_s"] == 2000, st


def test_pause_and_on_demand_window(tmp_path):
    with with_policy(tmp_path, "sim max_freq=200\n") as d:
        def operator():
            time.sleep(6)
            st, body = d.request(
                "POST", "/v1/sampling/sim?mode=paused&for=6s", b"")
            assert st == 200, body
            time.sleep(8)
            st, body = d.request(
                "POST", "/v1/sampling/sim?mode=on-demand&freq=2000&for=4s",
                b"")
            assert st == 200, body
        t = threading.Thread(target=operator)
        t.start()
        # 4 agents whose own cap (5000 Hz) is above the policy's 200.
        wins, sent, accepted, out = fleetsim(d, 26, "0:4,26:4", 2,
                                             "--freq", "5000")
        t.join()
        assert accepted == sent, out
        by = {w[0]: w for w in wins}
        # Before: the policy's 200 Hz x 4 agents x 2 s.
        assert by[1][5] == 200 and 1500 <= by[1][3] <= 1700, out
        # Paused at 6 s: nothing sent from one batch interval later.
        assert by[4][3] == 0 and by[4][6] > 0, out
        assert by[5][3] == 0, out
        # Resumed at 12 s (heartbeat) and on-demand 2000 Hz at 14 s.
        assert any(w[5] == 2000 for w in wins if 7 <= w[0] <= 9), out
        # Restored after the window (18 s).
        assert by[10][5] == 200 and by[11][5] == 200, out
        assert by[11][3] < 2000, out
    log = open(d.log_path).read()
    assert "set sim to paused for 6 s" in log, log
    assert "set sim to on-demand at 2000 for 4 s" in log, log


def test_bad_policy_refused_at_start_and_on_reload(tmp_path):
    policy = tmp_path / "policy"
    write(policy, "sim samples=1000/1m\nweb mode=fast\n")
    p = subprocess.run([FDOD, "--data", str(tmp_path / "d0"),
                        "--listen", "tcp://127.0.0.1:0",
                        "--http", "http://127.0.0.1:0",
                        "--sampling-policy", str(policy)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0
    assert "line 2: mode=fast: want continuous, paused or triggered" \
        in p.stderr, p.stderr

    write(policy, "sim max_freq=300\n")
    with Daemon(tmp_path / "data",
                extra=["--sampling-policy", str(policy)]) as d:
        write(policy, "sim max_freq=400\nweb max_freq=oops\n")
        d.proc.send_signal(signal.SIGHUP)
        end = time.time() + 20
        while "kept as it was" not in d.read_log() and time.time() < end:
            time.sleep(0.05)
        assert "line 2: max_freq=oops: want a frequency" in d.read_log()
        st = d.get("/v1/sampling")
        assert st["generation"] == 1 and st["rules"] == 1, st
        status, body = d.request("GET", "/metrics")
        assert b'fdod_sampling_reloads_total{result="error"} 1' in body
        write(policy, "sim max_freq=400\nweb max_freq=50\n")
        d.proc.send_signal(signal.SIGHUP)
        end = time.time() + 20
        while d.get("/v1/sampling")["generation"] == 1 and \
                time.time() < end:
            time.sleep(0.05)
        st = d.get("/v1/sampling")
        assert st["generation"] == 2 and st["rules"] == 2, st
        # Bad admin requests.
        for q in ("mode=fast&for=1m", "mode=paused", "mode=paused&for=0s",
                  "mode=on-demand&for=1m", "mode=on-demand&freq=0&for=1m"):
            status, body = d.request("POST", "/v1/sampling/sim?" + q, b"")
            assert status == 400, (q, body)


def test_label_set_rules_from_the_docs(tmp_path):
    """docs/sampling.md's example policy, as written, runs fdod; batches of
    one binary under different labels get the rule with the most pairs
    they carry, each with its own controller in GET /v1/sampling."""
    with open(os.path.join(ROOT, "docs", "sampling.md")) as f:
        doc = f.read()
    example = re.search(r"## The policy file.*?```\n(.*?)```", doc,
                        re.S).group(1)
    assert "labels=" in example, example
    with with_policy(tmp_path, example) as d:
        now = int(time.time())
        for seq, labels in enumerate(
                (["zone=eu", "mode=canary"], ["zone=eu"], ["zone=us"], []),
                start=1):
            text = ("agent a%d\nseq %d\nhost h%d\nbinary webserver\n"
                    "event cpu-clock\nperiod 1000000\n"
                    "time %d %d\nmapping 0 aabbccdd 1000 2000 0 /bin/w\n"
                    "stack 5 1010\n" % (seq, seq, seq, now - 10, now))
            text += "".join("label %s\n" % lbl for lbl in labels)
            rc, out = d.push(text)
            assert rc == 0, out
        st = d.get("/v1/sampling")
        got = {(b["binary"], b["labels"]): (b["mode"], b["rule_line"])
               for b in st["binaries"]}
        lines = [ln for ln in example.splitlines()]

        def line_of(prefix):
            return 1 + next(i for i, ln in enumerate(lines)
                            if ln.startswith(prefix))
        assert got == {
            ("webserver", "mode=canary,zone=eu"):
                ("paused", line_of("webserver  labels=mode=canary")),
            ("webserver", "zone=eu"):
                ("continuous", line_of("webserver  labels=zone=eu")),
            ("webserver", ""):
                ("continuous", line_of("webserver  samples")),
        }, st


WORKLOAD = r"""
#include <stdlib.h>
#include <time.h>
volatile unsigned long sink;
int main(int argc, char **argv)
{
	/* busy for argv[1] iterations, then asleep 10 ms (0: never) */
	unsigned long busy = strtoul(argv[1], 0, 10);
	struct timespec ts = {0, 10000000};
	for (;;) {
		for (unsigned long i = 0; i < (busy ? busy : 1000000); i++)
			sink += i;
		if (busy)
			nanosleep(&ts, 0);
	}
}
"""


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def test_real_agents_weights_follow_cpu_at_different_rates(tmp_path):
    """Two workloads under fdo-agent at the rates the policy gives them
    (500 and 2000 Hz): count x period x weight per binary stays the
    ratio of their CPU time (/proc/PID/stat) within 5%."""
    src = tmp_path / "wl.c"
    src.write_text(WORKLOAD)
    exe = str(tmp_path / "wl")
    subprocess.run(["gcc", "-O1", "-g", "-Wl,--build-id", "-o", exe,
                    str(src)], check=True, timeout=120)
    agent = os.path.join(ROOT, "build", "fdo-agent")
    with with_policy(tmp_path, "wl-a max_freq=500\nwl-b max_freq=2000\n") \
            as d:
        work = [subprocess.Popen([exe, "0"]),
                subprocess.Popen([exe, "20000000"])]
        agents = []
        try:
            for name, w in zip(("wl-a", "wl-b"), work):
                agents.append(subprocess.Popen(
                    [agent, "--url", d.url, "--interval", "1",
                     "--freq", "4000", "--binary", name,
                     "--pid", str(w.pid)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                    text=True))
            time.sleep(1.5)  # hello, advice, events enabled
            t0 = [cpu_ticks(w.pid) for w in work]
            time.sleep(8)
            t1 = [cpu_ticks(w.pid) for w in work]
            for a in agents:
                a.send_signal(signal.SIGTERM)
            errs = [a.communicate(timeout=60)[1] for a in agents]
        finally:
            for p in work + agents:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        assert "sampling at 500 Hz" in errs[0], errs[0]
        assert "sampling at 2000 Hz" in errs[1], errs[1]
        d.wait_merged()
        wa = int(d.get("/v1/binaries/wl-a")["weight_fixed"])
        wb = int(d.get("/v1/binaries/wl-b")["weight_fixed"])
        sa = d.get("/v1/binaries/wl-a")["samples"]
        sb = d.get("/v1/binaries/wl-b")["samples"]
    cpu = [b - a for a, b in zip(t0, t1)]
    assert cpu[0] > 0 and cpu[1] > 0, cpu
    want = cpu[0] / cpu[1]
    got = wa / wb
    # The rates did differ: B has about 4x the samples per CPU-second.
    assert sb / sa > 2 * (cpu[1] / cpu[0]), (sa, sb, cpu)
    assert abs(got / want - 1) <= 0.05, (got, want, cpu, wa, wb, errs)


def test_all_mode_thins_each_binary_by_its_advice(tmp_path):
    """fdo-agent --all samples every process at its own --freq (1000) and
    keeps of each binary what the server advises: wl_a at 250 Hz (a
    quarter of its samples, each standing for four), wl_b paused (nothing
    once the Ack of the hello the agent says at wl_b's first sample came:
    at most the samples of that round trip; heartbeats instead)."""
    src = tmp_path / "wl.c"
    src.write_text(WORKLOAD)
    exes = {}
    for name in ("wl_a", "wl_b"):
        exes[name] = str(tmp_path / name)
        subprocess.run(["gcc", "-O1", "-g", "-Wl,--build-id", "-o",
                        exes[name], str(src)], check=True, timeout=120)
    agent = os.path.join(ROOT, "build", "fdo-agent")
    with with_policy(tmp_path, "wl_a max_freq=250\nwl_b mode=paused\n") \
            as d:
        work = [subprocess.Popen([exes["wl_a"], "0"]),
                subprocess.Popen([exes["wl_b"], "0"])]
        try:
            time.sleep(0.3)
            t0 = cpu_ticks(work[0].pid)
            a = subprocess.Popen(
                [agent, "--all", "--url", d.url, "--interval", "1",
                 "--freq", "1000", "--lock-file", str(tmp_path / "lock"),
                 "--select", "exe=wl_a,wl_b"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                text=True)
            time.sleep(3)  # first batches, advice
            d.wait_merged()
            status, body = d.request("GET", "/v1/binaries/wl_b")
            b0 = json.loads(body)["samples"] if status == 200 else 0
            time.sleep(5)
            d.wait_merged()
            b1 = d.get("/v1/binaries/wl_b")["samples"]
            t1 = cpu_ticks(work[0].pid)
            a.send_signal(signal.SIGTERM)
            err = a.communicate(timeout=60)[1]
        finally:
            for p in work:
                p.kill()
                p.wait()
        d.wait_merged()
        wa = int(d.get("/v1/binaries/wl_a")["weight_fixed"])
        assert "wl_a: server advice (policy 1, continuous): sampling at " \
            "250 Hz" in err, err
        assert "wl_b: server advice (policy 1, paused): paused" in err, err
        m = re.search(r"samples_thinned=(\d+)", err)
        assert m and int(m.group(1)) > 0, err
        # Paused: nothing more stored for wl_b once its advice came, and
        # before it only what was read in the hello's round trip (its
        # first batch at 1000 Hz would hold ~1000).
        assert b1 == b0, (b0, b1, err)
        assert b0 <= 300, (b0, err)
        # wl_a: a quarter of the samples (after its first Ack), each
        # weighing four: what is stored is its CPU time while sampled.
        cpu_ns = (t1 - t0) * 10**7
        stored_ns = wa / 10**6
        assert abs(stored_ns / cpu_ns - 1) <= 0.05, (stored_ns, cpu_ns)
        st = d.get("/v1/sampling")
        assert {b["binary"] for b in st["binaries"]} == {"wl_a", "wl_b"}


def test_agent_keeps_to_its_cpu_budget(tmp_path):
    """A budget below what sampling at 20 kHz costs: the agent lowers its
    rate and says so; the server's advice cannot raise it."""
    src = tmp_path / "wl.c"
    src.write_text(WORKLOAD)
    exe = str(tmp_path / "wl")
    subprocess.run(["gcc", "-O1", "-g", "-o", exe, str(src)], check=True,
                   timeout=120)
    agent = os.path.join(ROOT, "build", "fdo-agent")
    with with_policy(tmp_path, "wl max_freq=20000\n") as d:
        w = subprocess.Popen([exe, "0"])
        try:
            a = subprocess.Popen(
                [agent, "--url", d.url, "--interval", "1", "--freq",
                 "20000", "--cpu-budget", "0.05", "--binary", "wl",
                 "--pid", str(w.pid)],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                text=True)
            time.sleep(5)
            a.send_signal(signal.SIGTERM)
            err = a.communicate(timeout=60)[1]
        finally:
            w.kill()
            w.wait()
    caps = [int(x) for x in re.findall(
        r"over its budget of 0\.05%: sampling at most (\d+) Hz", err)]
    assert caps and caps[-1] < 20000 and caps == sorted(caps, reverse=True), \
        err
