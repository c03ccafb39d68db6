"""Symbols shared between fdod nodes that are each other's debuginfod
upstream (--debuginfod-urls of the other node, --debuginfod-forward-hops):
a file uploaded to one node is fetched by the node that has samples of it,
or that is asked for it; a build-id no node has is a quick 404, not a loop
(docs/operations.md, "Outgrowing one node").

Two real fdod processes on loopback; no other server.
"""
import subprocess
import time

import pytest

from fdodtest import FDOCTL, Daemon, build_id, metric
from test_upstream import build, push, stacks_for, wait_for


def node_opts(peer, node, hops=8):
    return ["--debuginfod-urls", peer.http, "--debuginfod-timeout", "5s",
            "--debuginfod-retry", "2s", "--debuginfod-forward-hops",
            str(hops), "--node-url", node.http]


@pytest.fixture
def pair(tmp_path):
    """Nodes a and b, each the other's upstream."""
    a = Daemon(tmp_path / "a")
    b = Daemon(tmp_path / "b")
    a.extra = node_opts(b, a)
    b.extra = node_opts(a, b)
    with a, b:
        yield a, b


def forwards(d, result):
    return metric(d, 'fdod_debuginfod_forwards_total{result="%s"}' % result)


def reason(body):
    return body.decode(errors="replace")


def test_build_id_no_node_has_is_a_quick_404(pair):
    a, b = pair
    unknown = "cd" * 20
    for d in (a, b):
        for kind in ("debuginfo", "executable"):
            t0 = time.time()
            status, body = d.request("GET", "/buildid/%s/%s" %
                                     (unknown, kind), timeout=60)
            took = time.time() - t0
            assert status == 404, body
            # a asked b, b asked a, a saw itself in X-Fdod-Via: the loop
            # ended at its first repeat. b answered a 404; so does a.
            assert "not found upstream" in reason(body), body
            print("%s %s: 404 in %.3f s" % (d.http, kind, took))
    # Each of the four requests was forwarded once by each node (the one
    # asked, then the other) and refused on coming back: four per node.
    for d in (a, b):
        assert forwards(d, "missing") == 4, d.read_log()
    # The nodes themselves said why they did not forward.
    status, body = a.request("GET", "/buildid/%s/debuginfo" % unknown,
                             headers={"X-Fdod-Via": "x, %s" % a.http})
    assert status == 404 and "came through this node" in reason(body)
    status, body = a.request("GET", "/buildid/%s/debuginfo" % unknown,
                             headers={"X-Forwarded-For": ",".join(
                                 ["10.0.0.%d" % i for i in range(8)])})
    assert status == 404 and "hop limit" in reason(body), body
    status, body = a.request("GET", "/buildid/%s/debuginfo" % unknown,
                             headers={"X-Forwarded-For": "1" * 2000})
    assert status == 404 and "not forwarded" in reason(body), body
    # b's own fetch (samples, no symbols) is forwarded by a, whose
    # request comes back to b: b refuses it at once (it is listed in
    # X-Fdod-Via by its fetch thread, and it is fetching that build-id
    # itself), so b forwards nothing.
    before = forwards(a, "missing"), forwards(b, "missing")
    push(b, "agent1", 1, unknown, [(10, [0x555555555123, 0x555555555456])])
    wait_for(lambda: metric(b, 'fdod_debuginfod_fetches_total'
                               '{result="missing"}') >= 1, 30, "b's miss")
    assert forwards(a, "missing") >= before[0] + 2  # debuginfo, executable
    assert forwards(b, "missing") == before[1]
    # Both still serve.
    for d in (a, b):
        assert d.get("/v1/status")["uptime_seconds"] >= 0
        assert d.stop() == 0


def test_upload_to_one_node_symbolizes_on_the_other(tmp_path, pair):
    a, b = pair
    exe = build(tmp_path, "prog", 3)
    other = build(tmp_path, "other", 4)
    bid, bid2 = build_id(exe), build_id(other)
    for path in (exe, other):
        subprocess.run([FDOCTL, "upload", "--http", a.http, "--binary",
                        "prog", path], check=True, timeout=60,
                       capture_output=True)
    # b has samples of exe and no symbols: it fetches them from a.
    push(b, "agent1", 1, bid, stacks_for(exe))
    st = wait_for(lambda: (lambda s: s if s["pending"]["total"] == 0 and
                           s["symbolizer"]["resolved"] >= 5 else None)(
                               b.wait_merged()), 30, "b to symbolize")
    assert st["symbolizer"]["resolved"] == 5, st
    cache = b.get("/v1/symcache/" + bid)["addresses"]
    names = {f["function"] for e in cache for f in e["frames"]}
    assert {"leaf_work", "middle", "outer"} <= names, cache
    assert "fetched debuginfo of %s from %s" % (bid, a.http) in b.read_log()
    with open(exe, "rb") as f:
        want = f.read()
    status, body = b.request("GET", "/buildid/%s/executable" % bid)
    assert status == 200 and body == want
    # A file b has no samples of is forwarded when asked for, then kept.
    with open(other, "rb") as f:
        want2 = f.read()
    status, body = b.request("GET", "/buildid/%s/debuginfo" % bid2,
                             timeout=60)
    assert status == 200 and body == want2
    assert "forwarded debuginfo of %s from %s" % (bid2, a.http) in \
        b.read_log()
    status, body = b.request("GET", "/buildid/%s/debuginfo" % bid2)
    assert status == 200 and body == want2
    # a never asked b for anything it holds.
    assert "forwarded" not in a.read_log()
    assert forwards(b, "ok") == 1 and forwards(a, "ok") == 0
    for d in (a, b):
        assert d.stop() == 0


def test_forwards_off_by_default_and_options_checked(tmp_path):
    with Daemon(tmp_path / "solo",
                extra=["--debuginfod-urls", "http://127.0.0.1:9"]) as d:
        status, body = d.request("GET", "/buildid/%s/debuginfo" % ("ef" * 20))
        assert status == 404 and "not forwarded" not in reason(body)
        assert "upstream" not in reason(body), body
        assert d.stop() == 0
    for bad, msg in ((["--node-url", "http://a,b"], "--node-url"),
                     (["--node-url", "ftp://x"], "--node-url"),
                     (["--debuginfod-urls", "http://127.0.0.1:9",
                       "--debuginfod-forward-hops", "65"],
                      "--debuginfod-forward-hops"),
                     (["--debuginfod-urls", "http://127.0.0.1:9",
                       "--debuginfod-forward-hops", "2",
                       "--debuginfod-fetches", "4", "--http-threads", "4"],
                      "--http-threads"),
                     (["--cluster-nodes", "http://a:1,http://b:1"],
                      "--cluster-nodes needs --node-url"),
                     (["--cluster-nodes", "http://a:1,http://b:1",
                       "--node-url", "http://c:1"],
                      "is not one of --cluster-nodes"),
                     (["--cluster-nodes", "http://a:1,http://a:1",
                       "--node-url", "http://a:1"], "listed twice")):
        d = Daemon(tmp_path / "bad", extra=bad)
        d.start(wait=False)
        assert d.proc.wait(20) == 2
        assert msg in d.read_log(), d.read_log()


def test_owner_symbolizes_the_other_waits_then_takes_over(tmp_path):
    """--cluster-nodes: of two nodes with the same samples and symbols,
    only the build-id's owner symbolizes it; the other leaves it to the
    owner while it answers (with per-node LMDB stores its addresses wait:
    docs/operations.md says so) and takes over once the owner is gone."""
    a = Daemon(tmp_path / "a")
    b = Daemon(tmp_path / "b")
    nodes = "%s,%s" % (a.http, b.http)
    a.extra = ["--node-url", a.http, "--cluster-nodes", nodes]
    b.extra = ["--node-url", b.http, "--cluster-nodes", nodes]
    exe = build(tmp_path, "prog", 5)
    bid = build_id(exe)
    with a, b:
        for d in (a, b):
            subprocess.run([FDOCTL, "upload", "--http", d.http, "--binary",
                            "prog", exe], check=True, timeout=60,
                           capture_output=True)
            push(d, "agent-" + d.http[-5:], 1, bid, stacks_for(exe))

        def resolved(d):
            return d.wait_merged()["symbolizer"]["resolved"]
        owner = wait_for(lambda: next((d for d in (a, b)
                                       if resolved(d) == 5), None),
                         30, "the owner to symbolize")
        other = b if owner is a else a
        wait_for(lambda: "left to its owner %s" % owner.http
                 in other.read_log(), 30, "the other to leave it")
        # Two more rechecks of the other node (every 5 s): still waiting.
        time.sleep(11)
        st = other.get("/v1/status")
        assert st["symbolizer"]["resolved"] == 0, st
        assert st["pending"]["total"] == 5, st
        assert metric(other, "fdod_symbolizer_deferred_build_ids") == 1
        assert "left to its owner" not in owner.read_log()
        want = owner.get("/v1/symcache/" + bid)["addresses"]
        assert owner.stop() == 0
        # The owner is gone: the other takes over within a recheck.
        wait_for(lambda: resolved(other) == 5, 30, "the take-over")
        assert "its owner %s does not answer" % owner.http in \
            other.read_log()
        assert metric(other, "fdod_symbolizer_deferred_build_ids") == 0
        got = other.get("/v1/symcache/" + bid)["addresses"]
        assert got == want
        assert other.stop() == 0
