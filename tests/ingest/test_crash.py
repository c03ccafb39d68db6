"""Crash test: kill -9 the daemon at random moments while pushers run.

Three pushers send batches over raw SP connections; each batch holds stacks
no other batch has, with known counts. The daemon is killed with SIGKILL at
random moments (at least 20 times) and restarted on the same data. Pushers
retry every batch that got no Ack, with the same (agent, seq), until it is
acknowledged. At the end every batch has been acknowledged, and the store
must hold each exactly once and none partly: the number of distinct stacks
and the sum of samples both equal what the batches carried.
"""
import random
import threading
import time

from fdodtest import Daemon, SPReq, decode_ack, encode_batch

KILLS = 20
PUSHERS = 3
STACKS_PER_BATCH = 50
START = 0x555555554000
BID = bytes.fromhex("c0ffee" * 6 + "00aa")


def batch(agent_no, seq):
    # Stack addresses unique per (agent, seq, i): distinct stacks per batch.
    base = START + 0x1000 + (agent_no << 32) + seq * 8 * STACKS_PER_BATCH
    stacks = [(1 + (seq * 7 + i) % 13, [base + 8 * i, START + 0x2000])
              for i in range(STACKS_PER_BATCH)]
    return encode_batch(agent="crash-%d" % agent_no, seq=seq,
                        binary="crashprog", host="h%d" % agent_no,
                        mappings=[(0, BID, START, START + (1 << 40), 0, "/x")],
                        stacks=stacks), sum(c for c, _ in stacks)


class Pusher(threading.Thread):
    def __init__(self, no, daemon, stop):
        super().__init__(daemon=True)
        self.no, self.d, self.stop = no, daemon, stop
        self.acked = 0
        self.samples = 0
        self.errors = []

    def run(self):
        seq = 1
        sp = None
        inflight = False  # seq was sent and may be committed, not acked
        deadline = None
        while not self.stop.is_set() or inflight:
            if self.stop.is_set():
                deadline = deadline or time.time() + 30
                if time.time() > deadline:
                    self.errors.append("seq %d never acknowledged" % seq)
                    break
            payload, samples = batch(self.no, seq)
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
                continue  # the same seq again
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


def test_kill9_loses_no_acknowledged_batch_and_counts_each_once(tmp_path):
    rnd = random.Random(1234)
    d = Daemon(tmp_path / "data")
    d.start()
    stop = threading.Event()
    pushers = [Pusher(i, d, stop) for i in range(PUSHERS)]
    for p in pushers:
        p.start()
    try:
        for _ in range(KILLS):
            time.sleep(rnd.uniform(0.05, 0.6))
            d.kill9()
            time.sleep(rnd.uniform(0.0, 0.1))
            d.start()
        time.sleep(0.5)
    finally:
        stop.set()
        for p in pushers:
            p.join(30)
    # A pusher stops only when no batch of its is in flight, so the batches
    # it counts are exactly the ones the store may hold.
    for p in pushers:
        assert not p.errors, p.errors[:3]
        assert p.acked > 0
    b = d.get("/v1/binaries/crashprog")
    batches = sum(p.acked for p in pushers)
    assert b["stacks"] == batches * STACKS_PER_BATCH, (b, batches)
    assert b["samples"] == sum(p.samples for p in pushers), b
    assert b["hosts"] == PUSHERS
    assert d.stop() == 0
