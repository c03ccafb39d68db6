"""fdo-agent with several fdod nodes (issue 27): real fdod nodes on
loopback and real agents sampling a real program.

- Each agent id goes to the node its rendezvous hash picks (computed
  here independently from the documented function, docs/ingest.md
  #many-nodes), and only there: per node, the samples stored for the
  agent's binary equal the agent's samples_sent on its node, 0 elsewhere.
- A node started with --drain-to moves a stream to the named node.
- A node that is down: by default the stream stays on it (unsent at
  exit, nothing on the other nodes); with --failover its batches go to
  the next node by the hash and are all stored there.
- With --all, each binary's stream (AGENT_ID/BINARY) goes to its own
  hash node (root only).
- A bad node list (flag or $FDOD_URL) and a bad --drain-to are refused
  with a clear message, exit status 2.
"""
import os
import signal
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "ingest"))
from fdodtest import Daemon, samples_stored  # noqa: E402
from test_agent import AGENT, prog, summary  # noqa: E402,F401
from test_all import progs, stop, wait_for  # noqa: E402,F401

M64 = (1 << 64) - 1


def mix64(h):
    h ^= h >> 30
    h = (h * 0xbf58476d1ce4e5b9) & M64
    h ^= h >> 27
    h = (h * 0x94d049bb133111eb) & M64
    return h ^ (h >> 31)


def score(stream, url):
    """The documented rendezvous weight: FNV-1a 64 over the agent id, a 0
    byte and the node URL, then the splitmix64 finalizer."""
    h = 0xcbf29ce484222325
    for c in stream.encode() + b"\0" + url.encode():
        h = ((h ^ c) * 0x100000001b3) & M64
    return mix64(h)


def pick(stream, urls):
    return max(range(len(urls)), key=lambda i: (score(stream, urls[i]), -i))


def agent_id_on(node, urls, prefix):
    """An agent id whose hash picks urls[node]."""
    for i in range(1000):
        aid = "%s-%d" % (prefix, i)
        if pick(aid, urls) == node:
            return aid
    raise AssertionError("no id found")


def start_agent(exe, urls, aid, binary, secs, extra=()):
    return subprocess.Popen(
        [AGENT, "--url", ",".join(urls), "--agent-id", aid, "--binary",
         binary, "--interval", "1", "--timeout-ms", "500", "--retry-max",
         "1"] + list(extra) + ["--", exe, str(secs)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def finish(agent, timeout=40):
    _, err = agent.communicate(timeout=timeout)
    assert agent.returncode == 0, err
    return summary(err), err


def test_each_agent_id_lands_on_its_hash_node_only(tmp_path, prog):
    exe, _ = prog
    nodes = [Daemon(tmp_path / ("n%d" % i)) for i in range(3)]
    try:
        for d in nodes:
            d.start()
        urls = [d.url for d in nodes]
        # one agent id on each node, and a fourth anywhere
        ids = [agent_id_on(k, urls, "spread%d" % k) for k in range(3)]
        ids.append("spread-extra")
        agents = [start_agent(exe, urls, aid, "nodes%d" % i, 2)
                  for i, aid in enumerate(ids)]
        sums = [finish(a) for a in agents]
        for i, (aid, (s, err)) in enumerate(zip(ids, sums)):
            assert s["batches_unsent"] == 0 and s["batches_dropped"] == 0, err
            assert s["samples_sent"] > 50, err
            home = pick(aid, urls)
            stored = [samples_stored(d, "nodes%d" % i) for d in nodes]
            # the union over nodes is what the agent sent, all on one node
            assert stored[home] == s["samples_sent"], (aid, stored, err)
            assert sum(stored) == s["samples_sent"], (aid, stored, err)
    finally:
        for d in nodes:
            d.stop()


def test_a_draining_node_redirects_the_stream(tmp_path, prog):
    exe, _ = prog
    b = Daemon(tmp_path / "b")
    a = Daemon(tmp_path / "a", extra=["--drain-to", b.url])
    c = Daemon(tmp_path / "c", extra=["--drain-to", "tcp://127.0.0.1:9"])
    try:
        for d in (a, b, c):
            d.start()
        urls = [a.url, b.url]
        aid = agent_id_on(0, urls, "drain")
        s, err = finish(start_agent(exe, urls, aid, "drained", 2))
        assert "redirects '%s' to %s" % (aid, b.url) in err, err
        assert s["redirects"] == 1, err
        assert s["samples_sent"] > 50, err
        on_a, on_b = samples_stored(a, "drained"), samples_stored(b, "drained")
        # the hello (no samples) was the redirected batch: A stored it,
        # every later batch went to B; nothing twice
        assert on_a + on_b == s["samples_sent"], (on_a, on_b, err)
        assert on_b > 0 and on_a < on_b, (on_a, on_b, err)
        # a redirect to a node the agent does not list is ignored
        urls = [c.url, b.url]
        aid = agent_id_on(0, urls, "stray")
        s, err = finish(start_agent(exe, urls, aid, "stray", 1.5))
        assert "which is not in --url: ignored" in err, err
        assert s["redirects"] == 0, err
        assert samples_stored(c, "stray") == s["samples_sent"] > 0, err
        assert samples_stored(b, "stray") == 0
    finally:
        for d in (a, b, c):
            d.stop()


def test_a_lost_node_keeps_its_streams_unless_failover(tmp_path, prog):
    exe, _ = prog
    up = Daemon(tmp_path / "up")
    down = Daemon(tmp_path / "down")  # never started: its port is free
    try:
        up.start()
        urls = [down.url, up.url]
        aid = agent_id_on(0, urls, "lost")
        # default: exactly-once kept, the batches wait for their node
        s, err = finish(start_agent(exe, urls, aid, "stay", 1.5,
                                    ["--drain", "1"]))
        assert s["batches_sent"] == 0 and s["batches_unsent"] > 0, err
        assert "kept for retry" in err, err
        assert samples_stored(up, "stay") == 0
        # --failover 2: after 2 s the batches move to the next node
        t0 = time.time()
        s, err = finish(start_agent(exe, urls, aid, "moved", 3,
                                    ["--failover", "2", "--drain", "10"]))
        assert time.time() - t0 < 30
        assert "(--failover)" in err, err
        assert s["batches_failed_over"] > 0, err
        assert s["batches_unsent"] == 0 and s["batches_dropped"] == 0, err
        assert samples_stored(up, "moved") == s["samples_sent"] > 50, err
    finally:
        up.stop()


@pytest.mark.skipif(os.geteuid() != 0, reason="--all needs root")
def test_all_mode_spreads_each_binarys_stream(tmp_path, progs):
    names = ("fdoall_pre", "fdoall_post", "fdoall_exit")
    nodes = [Daemon(tmp_path / ("n%d" % i)) for i in range(3)]
    procs = []
    agent = None
    try:
        for d in nodes:
            d.start()
        urls = [d.url for d in nodes]
        # an agent id whose binaries' streams fall on at least two nodes
        aid = next(a for a in ("allspread-%d" % i for i in range(100))
                   if len({pick(a + "/" + n, urls) for n in names}) >= 2)
        procs = [subprocess.Popen([progs[n], "30"]) for n in names]
        agent = subprocess.Popen(
            [AGENT, "--all", "--url", ",".join(urls), "--agent-id", aid,
             "--interval", "1", "--lock-file", str(tmp_path / "lock"),
             "--drain", "20", "--select", "exe=" + ",".join(names)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        # every binary's first batch at its node (the agent is up and
        # past its signal setup, even under valgrind), then a last one
        homes = {n: nodes[pick(aid + "/" + n, urls)] for n in names}
        wait_for(lambda: all(homes[n].request("GET", "/v1/binaries/" + n)[0]
                             == 200 for n in names), 30, "first batches")
        time.sleep(1)
        agent.send_signal(signal.SIGTERM)
        _, err = agent.communicate(timeout=60)
        assert agent.returncode == 0, err
        s = summary(err)
        assert s["batches_unsent"] == 0 and s["batches_dropped"] == 0, err
        total = 0
        for n in names:
            stored = [samples_stored(d, n) for d in nodes]
            home = pick(aid + "/" + n, urls)
            assert stored[home] > 0, (n, stored, err)
            assert sum(stored) == stored[home], (n, stored, err)
            total += stored[home]
        assert total == s["samples_sent"], (total, err)
    finally:
        stop(procs + ([agent] if agent else []))
        for d in nodes:
            d.stop()


def test_bad_node_lists_and_drain_targets_are_refused(tmp_path):
    from fdodtest import FDOD
    for urls, word in (("tcp://a:1,,tcp://b:1", "empty node"),
                       ("tcp://a:1,tcp://a:1", "listed twice"),
                       ("a:1", "not an nng URL"),
                       (",".join("tcp://n%d:1" % i for i in range(65)),
                        "more than 64")):
        p = subprocess.run([AGENT, "--url", urls, "--", "true"],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 2 and word in p.stderr, (urls, p.stderr)
        # the same list from the environment
        env = dict(os.environ, FDOD_URL=urls)
        p = subprocess.run([AGENT, "--", "true"], capture_output=True,
                           text=True, timeout=30, env=env)
        assert p.returncode == 2 and word in p.stderr, (urls, p.stderr)
    for bad in ("7470", "tcp://" + "x" * 300):
        p = subprocess.run([FDOD, "--data", str(tmp_path / "d"),
                            "--drain-to", bad], capture_output=True,
                           text=True, timeout=30)
        assert p.returncode == 2 and "--drain-to must be" in p.stderr, \
            p.stderr
