#!/usr/bin/env python3
"""bench/clickhouse/pull_cpu.py [BATCHES] — CPU of a folded pull built
from ClickHouse (a --store node) against one built from LMDB (a plain
node fed the same batches), docs/clickhouse.md. A private ClickHouse
server (tests/cluster/chtest.py), four agents of test_fdod_store's batches
(200 stacks, BATCHES each, default 60) into both nodes, then 20 folded
pulls of app1 on each (max_stacks varied so that no pull is a cached
answer): fdod's and the ClickHouse server's CPU per pull from /proc, and
the wall time. Prints figures; asserts only that each pull is a 200."""
import os
import sys
import tempfile
import threading
import time

os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path.insert(0, "tests/cluster")
sys.path.insert(0, "tests/ingest")
import chtest  # noqa: E402
import test_fdod_store as t  # noqa: E402
from fdodtest import Daemon  # noqa: E402

def cpu(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

N = int(sys.argv[1]) if len(sys.argv) > 1 else 60
tmp = tempfile.mkdtemp()
with chtest.Cluster(tmp + "/ch", n=1) as c:
    ch = c[0]
    url = ch.url("bench", chtest.CLUSTER)
    node = Daemon(tmp + "/n", extra=["--store", url])
    plain = Daemon(tmp + "/p")
    node.start()
    plain.start()
    stop = threading.Event()
    ps = [t.Pusher("a%d" % i, d, stop, until=N) for i in range(4) for d in (node, plain)]
    for p in ps:
        p.start()
    for p in ps:
        p.join(600)
        assert p.acked == N and not p.errors, (p.acked, p.errors[:2])
    t.wait_sent(node); plain.wait_merged(60)
    path = "/v1/profiles/app1?format=folded&min_samples=0&min_hosts=0"
    for d in (node, plain):
        d.request("GET", path)
    for name, d in (("plain LMDB", plain), ("--store", node)):
        c0, h0, w0 = cpu(d.proc.pid), cpu(ch.proc.pid), time.time()
        for i in range(20):
            st, body = d.request("GET", path + "&max_stacks=%d" % (10 ** 6 + i))
            assert st == 200
        c1, h1, w1 = cpu(d.proc.pid), cpu(ch.proc.pid), time.time()
        print("%-10s fdod CPU %.1f ms/pull, clickhouse-server CPU %.1f ms/pull, wall %.1f ms/pull, %d lines" %
              (name, (c1 - c0) * 50, (h1 - h0) * 50, (w1 - w0) * 50, body.count(b"\n")))
    rows = ch.query("SELECT count() FROM bench.counts_local WHERE binary = 'app1'")
    print("counts_local rows of app1 (parts not merged counted each):",
          rows.decode().strip())
    node.stop()
    plain.stop()
