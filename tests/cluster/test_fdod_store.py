"""fdod --store clickhouse://: the merger's copy of its counts in ClickHouse
(docs/clickhouse.md "The merger's sink").

A real clickhouse-server (tests/cluster/chtest.py) and a real fdod fed
batches (fdoctl push of text batches, and raw SP requests for speed). At
the end of each test fdod is stopped and build/cluster/chcheck reads every
binary and label set of its LMDB store and of ClickHouse through the seam
(backend read_sums): every (label set, bucket, stack) sum must be equal,
and equal to what the acknowledged batches carried, so nothing is lost
and nothing counted twice, after kill -9 of fdod mid-run, and after
ClickHouse was killed (SIGKILL) while batches kept coming.
"""
import glob
import os
import random
import re
import subprocess
import sys
import threading
import time

import pytest

import chtest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "ingest"))
from fdodtest import (Daemon, SPReq, decode_ack, encode_batch,  # noqa: E402
                      metric)

ROOT = os.environ.get("FDOD_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("FDOD_BUILD") or os.path.join(ROOT, "build")
CHCHECK = os.path.join(BUILD, "cluster", "chcheck")
BID = bytes.fromhex("5e" * 20)
BID2 = bytes.fromhex("7a" * 12)
START = 0x400000
NSTACKS = 200
E_BUSY = 18


@pytest.fixture(scope="module")
def ch(tmp_path_factory):
    if not os.access(CHCHECK, os.X_OK):
        pytest.fail("%s missing: run make unit" % CHCHECK)
    with chtest.Cluster(tmp_path_factory.mktemp("ch"), n=1) as c:
        yield c[0]


def batch(agent, seq):
    """A batch of NSTACKS stacks, half of them shared with every other
    batch of the agent (sums across merges), in two label sets and
    binaries by seq; and its samples."""
    stacks = []
    for i in range(NSTACKS):
        own = i % 2 == 0
        leaf = START + (((seq * NSTACKS + i) if own else i) * 3) * 16
        stacks.append((1 + (seq + i) % 5,
                       [leaf, START + 0x10000 + (i % 7) * 16,
                        START + (1 << 30) + 0x40]))
    labels = ([("zone", "a'b")] if seq % 2 else
              [("zone", "c\\d"), ("rack", "\u00e9")])
    return (encode_batch(agent=agent, seq=seq, binary="app%d" % (seq % 2),
                         host=agent, labels=labels, weight=1.5,
                         mappings=[(0, BID, START, START + (1 << 30), 0,
                                    "/app"),
                                   (1, BID2, START + (1 << 30),
                                    START + (1 << 31), 0x1000,
                                    "/lib.so")],
                         stacks=stacks),
            sum(c for c, _ in stacks))


def text_batch(seq):
    return ("agent text-agent\nseq %d\nhost th\nbinary app-text\n"
            "label mode=text\nevent cpu-clock\nperiod 1000\ntime %d %d\n"
            "mapping 0 %s 400000 500000 0 /app\n"
            "stack %d 400010 400020\nstack 3 400030\n" %
            (seq, int(time.time()) - 120, int(time.time()) - 60,
             BID.hex(), seq))


class Pusher(threading.Thread):
    """Sends seq 1, 2, ... of one agent; a batch without an Ack is sent
    again, the same (agent, seq), until acknowledged."""

    def __init__(self, agent, d, stop, until=None):
        super().__init__(daemon=True)
        self.agent, self.d, self.stop, self.until = agent, d, stop, until
        self.acked = 0
        self.samples = 0
        self.busy = []
        self.errors = []

    def run(self):
        seq, sp, inflight, deadline = 1, None, False, None
        while (not self.stop.is_set() or inflight) and \
                (self.until is None or seq <= self.until):
            if self.stop.is_set():
                deadline = deadline or time.time() + 60
                if time.time() > deadline:
                    self.errors.append("seq %d never acknowledged" % seq)
                    break
            payload, samples = batch(self.agent, seq)
            try:
                if sp is None:
                    sp = SPReq(self.d.nng_port, timeout=5)
                inflight = True
                ack = decode_ack(sp.request(payload))
            except (OSError, ConnectionError, AssertionError):
                if sp:
                    sp.close()
                sp = None
                time.sleep(0.05)
                continue
            if ack["status"] == E_BUSY and ack.get("retry_after_ms"):
                self.busy.append(ack)
                time.sleep(min(ack["retry_after_ms"], 500) / 1000)
                continue
            if ack["status"] != 0:
                self.errors.append(ack)
                time.sleep(0.05)
                continue
            inflight = False
            self.acked = seq
            self.samples += samples
            seq += 1
        if sp:
            sp.close()


def outbox(d):
    return glob.glob(os.path.join(d.data, "clickhouse-outbox", "*.blk"))


def wait_sent(d, timeout=60):
    d.wait_merged(timeout)
    end = time.time() + timeout
    while outbox(d) and time.time() < end:
        time.sleep(0.1)
    assert not outbox(d), (outbox(d), d.read_log())


def same_sums(d, url, *more):
    """fdod stopped (and the nodes in more): chcheck compares their LMDB
    stores, summed, with ClickHouse."""
    r = subprocess.run([CHCHECK, "node", d.data] +
                       [m.data for m in more] + [url], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    m = re.search(r"same sums: (\d+) binaries, (\d+) rows, (\d+) samples",
                  r.stdout)
    assert m, r.stdout
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def test_store_url_refused_when_malformed(tmp_path):
    for bad in ("clickhouse://h/db", "clickhouse://u@h:1/db",
                "clickhouse://h:1/db?cluster=x&y=1", "mysql://h:1/db",
                "clickhouse://h:1/db;drop"):
        d = Daemon(tmp_path / "data", extra=["--store", bad])
        d.start(wait=False)
        assert d.proc.wait(10) == 2, bad
        log = d.read_log()
        assert "--store" in log and "clickhouse://HOST:PORT/DB" in log, log
        d.logf.close()
    assert not os.path.exists(tmp_path / "data" / "clickhouse-outbox")


def test_kill9_mid_run_same_sums_in_clickhouse(ch, tmp_path):
    # Through the Distributed table: reads as a cluster node does.
    url = ch.url("fdod_kill", chtest.CLUSTER)
    d = Daemon(tmp_path / "data", extra=["--store", url])
    d.start()
    # Text batches through fdoctl push first.
    text_samples = 0
    for seq in range(1, 4):
        rc, out = d.push(text_batch(seq))
        assert rc == 0 and out.startswith("ok"), out
        text_samples += seq + 3
    stop = threading.Event()
    pushers = [Pusher("k%d" % i, d, stop) for i in range(2)]
    for p in pushers:
        p.start()
    rnd = random.Random(27)
    try:
        for _ in range(3):
            time.sleep(rnd.uniform(0.3, 1.2))
            d.kill9()
            d.start()
        time.sleep(0.5)
    finally:
        stop.set()
        for p in pushers:
            p.join(90)
    for p in pushers:
        assert not p.errors, p.errors[:3]
        assert p.acked > 0
    wait_sent(d)
    assert d.stop() == 0
    nb, rows, samples = same_sums(d, url)
    assert nb == 3 and rows > 0
    assert samples == text_samples + sum(p.samples for p in pushers)
    # Every counts block carried its marker; the new stacks went too,
    # with raw build-ids, leaf first.
    n = int(ch.query("SELECT count() FROM fdod_kill.counts_local "
                     "WHERE binary = ''"))
    assert n > 0
    leaf = ch.query("SELECT hex(build_ids[1]), offsets[1] FROM "
                    "fdod_kill.stacks_local WHERE length(build_ids) = 3 "
                    "LIMIT 1").split()
    assert leaf[0].decode() == BID.hex().upper()
    assert int(leaf[1]) < (1 << 30)


def test_clickhouse_down_batches_wait_in_the_wal_then_arrive(ch, tmp_path):
    url = ch.url("fdod_down")
    d = Daemon(tmp_path / "data",
               extra=["--store", url, "--memory-budget", "64M",
                      "--http-body-memory", "16M"])
    d.start()
    stop = threading.Event()
    first = Pusher("w0", d, stop, until=5)
    first.run()
    assert not first.errors, first.errors
    wait_sent(d)
    ch.kill()
    try:
        # ClickHouse away: merges go on until the outbox holds 16, then
        # wait; batches are still acknowledged (into the WAL) until the
        # memory budget's ingest part is full, then refused with a
        # retry-after.
        pushers = [Pusher("w%d" % i, d, stop) for i in range(1, 3)]
        for p in pushers:
            p.start()
        end = time.time() + 90
        while time.time() < end and not any(p.busy for p in pushers):
            time.sleep(0.2)
        busy = [a for p in pushers for a in p.busy]
        assert busy, "never refused: %s" % d.read_log()
        assert all("memory budget" in a["message"] for a in busy), busy[:3]
        # (A slow merger may lag the memory budget: the outbox reaches
        # its bound all the same while the pushers retry.)
        end = time.time() + 60
        while len(outbox(d)) < 16 and time.time() < end:
            time.sleep(0.2)
        assert len(outbox(d)) == 16
        time.sleep(1)
        assert len(outbox(d)) == 16, "past the outbox's bound"
        assert metric(d, "fdod_clickhouse_outbox_files") == 16
        assert metric(d, "fdod_clickhouse_failures_total") > 0
        st = d.get("/v1/status")
        assert st["ingest"]["unmerged"] > 0, st
        acked_while_down = sum(p.acked for p in pushers)
        assert acked_while_down > 16
        assert "sending a merge to ClickHouse" in d.read_log()
        # Copies of what waits: sent again below, after ClickHouse took
        # them (as after a crash between its answer and the deletion).
        kept = {}
        for f in outbox(d):
            with open(f, "rb") as fh:
                kept[f] = fh.read()
    finally:
        ch.start([ch.tcp_port])
        ch.wait_ready(time.monotonic() + chtest.START_SECONDS)
    time.sleep(1)
    stop.set()
    for p in pushers:
        p.join(120)
        assert not p.errors, p.errors[:3]
    wait_sent(d, timeout=120)
    assert "ClickHouse takes merges again" in d.read_log()
    assert metric(d, "fdod_clickhouse_outbox_files") == 0
    assert metric(d, "fdod_clickhouse_outbox_bytes") == 0
    assert metric(d, "fdod_clickhouse_sent_total") >= 16
    assert d.stop() == 0
    nb, rows, samples = same_sums(d, url)
    acked = first.samples + sum(p.samples for p in pushers)
    assert samples == acked
    before = ch.query("SELECT count() FROM fdod_down.counts_local")

    # The 16 files back in the outbox: each is looked up by its marker,
    # found, and not inserted again; one of them damaged (a flipped bit)
    # is set aside without a byte of it sent.
    damaged = sorted(kept)[3]
    for f, data in kept.items():
        with open(f, "wb") as fh:
            fh.write(data if f != damaged else data[:-1] +
                     bytes([data[-1] ^ 1]))
    d.start()
    wait_sent(d)
    assert metric(d, "fdod_clickhouse_found_total") >= 15
    assert d.stop() == 0
    log = d.read_log()
    assert "16 merges of the ClickHouse outbox to send" in log, log
    assert log.count("already: not sent again") >= 15, log
    assert "does not check; moved to %s.bad" % damaged in log, log
    assert os.path.exists(damaged + ".bad")
    assert ch.query("SELECT count() FROM fdod_down.counts_local") == before
    assert same_sums(d, url)[2] == acked


def test_retention_drops_old_days_in_clickhouse(ch, tmp_path):
    url = ch.url("fdod_ret")
    r = subprocess.run([CHCHECK, "read", url], capture_output=True,
                       text=True, timeout=60)  # the schema
    assert r.returncode == 0, r.stderr
    day = int(time.time()) // 86400
    for d in (day - 10, day - 3):  # older than --retention 2d: dropped
        ch.query("INSERT INTO fdod_ret.counts_local VALUES "
                 "('old', '', %d, 1, 1, 1)" % (d * 86400 + 60))
    d = Daemon(tmp_path / "data",
               extra=["--store", url, "--retention", "2d"])
    d.start()
    rc, out = d.push(text_batch(1))
    assert rc == 0 and out.startswith("ok"), out
    wait_sent(d)
    end = time.time() + 30
    while time.time() < end and int(ch.query(
            "SELECT count() FROM fdod_ret.counts_local WHERE "
            "binary = 'old'")):
        time.sleep(0.2)
    assert int(ch.query("SELECT count() FROM fdod_ret.counts_local WHERE "
                        "binary = 'old'")) == 0, d.read_log()
    assert "2 days of counts dropped" in d.read_log()
    assert d.stop() == 0
    assert same_sums(d, url)[2] == 1 + 3


def test_two_nodes_one_clickhouse_sum_both_stores(ch, tmp_path):
    # Both nodes insert into the same server's tables, each with its own
    # node id in its markers; an agent's batches go to one node, and
    # stacks (ids hash raw build-ids) are shared across nodes.
    # A third node, plain LMDB, is fed every agent's batches: the folded
    # profile each --store node builds from ClickHouse (both nodes' sums)
    # is byte for byte the plain node's.
    url = ch.url("fdod_two", chtest.CLUSTER)
    nodes = [Daemon(tmp_path / ("data%d" % i), extra=["--store", url])
             for i in range(2)]
    plain = Daemon(tmp_path / "plain")
    for n in nodes + [plain]:
        n.start()
    stop = threading.Event()
    pushers = [Pusher("n%d" % i, nodes[i % 2], stop, until=15)
               for i in range(4)]
    fed = [Pusher("n%d" % i, plain, stop, until=15) for i in range(4)]
    for p in pushers + fed:
        p.start()
    for p in pushers + fed:
        p.join(120)
        assert not p.errors, p.errors[:3]
        assert p.acked == 15
    for n in nodes:
        wait_sent(n)
    plain.wait_merged(60)
    pulls = 0
    for binary, fmt in (("app0", "folded"), ("app1", "folded"),
                        ("app1", "pprof")):
        for q in ("", "&labels=zone:a%27b", "&max_stacks=37",
                  "&mix=zone:a%27b*3,rack:%C3%A9*1"):
            path = ("/v1/profiles/%s?format=%s&min_samples=0"
                    "&min_hosts=0%s" % (binary, fmt, q))
            got = [n.request("GET", path) for n in nodes + [plain]]
            # app0's label sets have no zone a'b: a 409 (nothing
            # selected), alike on all three
            assert got[2][0] == (409 if binary == "app0" and "a%27b" in q
                                 and "mix" not in q else 200), (path, got[2])
            assert got[0] == got[2] and got[1] == got[2], (
                path, [g[1][:300] for g in got])
            pulls += 1
    assert pulls == 12
    # Unknown everywhere: 404 from ClickHouse as from the store.
    assert nodes[0].request("GET", "/v1/profiles/nope?format=folded")[0] \
        == 404
    assert plain.stop() == 0
    for n in nodes:
        assert n.stop() == 0
    nb, rows, samples = same_sums(nodes[0], url, nodes[1])
    assert samples == sum(p.samples for p in pushers)
    # Each node alone is not what ClickHouse holds.
    r = subprocess.run([CHCHECK, "node", nodes[0].data, url],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    ids = ch.query("SELECT uniqExact(labels) FROM fdod_two.counts_local "
                   "WHERE binary = ''")
    assert int(ids) == 2


def test_profile_from_clickhouse_away_is_503(tmp_path):
    # --store into a port nothing listens on: a folded pull cannot read
    # ClickHouse and says so, with a Retry-After, rather than serve the
    # node's own counts as the fleet's.
    import urllib.error
    import urllib.request
    from fdodtest import free_port
    url = "clickhouse://127.0.0.1:%d/fdod_away" % free_port()
    with Daemon(tmp_path / "data", extra=["--store", url]) as d:
        assert d.push(text_batch(1))[0] == 0
        d.wait_merged(30)
        try:
            urllib.request.urlopen(
                d.http + "/v1/profiles/app-text?format=folded&min_samples=0",
                timeout=30)
            raise AssertionError("a profile without ClickHouse")
        except urllib.error.HTTPError as e:
            body = e.read().decode()
            assert e.code == 503, body
            assert e.headers["Retry-After"], e.headers
            assert "ClickHouse" in body, body
        # The compile-time formats still come from the node's store.
        st, body = d.request("GET", "/v1/profiles/app-text?format=llvm"
                             "&min_samples=0")
        assert st in (200, 409), body
        assert d.stop() == 0


PROG = r"""
__attribute__((noinline)) int leaf(int x) { return x * 3 + 1; }
__attribute__((noinline)) int mid(int x) { return leaf(x) + leaf(x + 1); }
__attribute__((noinline)) int other(int x) { return mid(x) ^ 5; }
int main(int argc, char **argv) { (void)argv; return other(argc) + mid(argc); }
"""


def test_symbolized_folded_same_on_every_node(ch, tmp_path):
    # The same ELF uploaded to three nodes (two --store, one plain LMDB
    # fed every batch); four agents, each on one --store node, sample
    # the same addresses in different stacks and counts (a node
    # symbolizes the addresses it was sent: docs/clickhouse.md): the
    # symbolized folded answer is the same bytes on the three.
    from fdodtest import (FDOCTL, batch_text, build_id, symbols,
                          vaddr_to_offset)
    src = tmp_path / "p.c"
    src.write_text(PROG)
    exe = str(tmp_path / "prog")
    subprocess.run(["gcc", "-g", "-O1", "-Wl,--build-id", "-o", exe,
                    str(src)], check=True, timeout=120)
    bid, syms = build_id(exe), symbols(exe)
    start = 0x555555554000
    addr = {f: start + vaddr_to_offset(exe, syms[f][0]) + 2
            for f in ("leaf", "mid", "other", "main")}
    url = ch.url("fdod_sym", chtest.CLUSTER)
    nodes = [Daemon(tmp_path / ("data%d" % i), extra=["--store", url])
             for i in range(2)]
    plain = Daemon(tmp_path / "plain")
    every = nodes + [plain]
    for n in every:
        n.start()
        subprocess.run([FDOCTL, "upload", "--http", n.http, "--binary",
                        "prog", exe], check=True, timeout=60)
    shapes = [["leaf", "mid", "main"], ["leaf", "mid", "other", "main"],
              ["mid", "other", "main"], ["leaf", "mid", "main"],
              ["other", "main"]]
    for agent in range(4):
        for seq in range(1, 4):
            stacks = [(1 + (agent * 7 + seq * 3 + i) % 11,
                       [addr[f] for f in shapes[(agent + i) % 5]])
                      for i in range(3 + agent)]
            text = batch_text("ag%d" % agent, seq, "prog", bid, stacks,
                              labels=["zone=z%d" % (agent % 3)],
                              host="h%d" % agent, weight=0.5 + agent)
            for n in (nodes[agent % 2], plain):
                rc, out = n.push(text)
                assert rc == 0, out
    for n in nodes:
        n.wait_pending_zero(60)
        wait_sent(n)
    plain.wait_pending_zero(60)
    for q in ("", "&labels=zone:z1", "&mix=zone:z0*1,zone:z2*4"):
        path = "/v1/profiles/prog?format=folded&min_samples=0" \
               "&min_hosts=0" + q
        got = [n.request("GET", path) for n in every]
        assert got[2][0] == 200, got[2]
        assert b"leaf;" not in got[2][1] and b";leaf" in got[2][1], got[2]
        assert got[0] == got[2] and got[1] == got[2], (q, got)
    for n in every:
        assert n.stop() == 0
