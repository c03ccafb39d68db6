#!/usr/bin/python3
"""soak.py — fdod under sustained load for a while, watched.

Several pushers send batches over nng (raw SP, several agents each, a few
deliberate re-sends of the same seq), a puller fetches profiles in every
format plus /v1/status and /metrics, an uploader uploads binaries (new
build-ids and re-uploads). Every few seconds the daemon's anonymous RSS
(heap: LMDB's file-backed map is reported apart, it is the store), open
descriptors, store size and the window's ack latencies are recorded.

At the end: every acknowledged sample must be in the store (per binary,
exact), and after warm-up (the first quarter) RSS and descriptors must show
no growth trend: the last quarter's median anonymous RSS within 10 % + 16 MiB
of the second quarter's, and descriptors within a small slack of the
warm-up maximum.

  tests/soak/soak.py [--seconds N] [--pushers N] [--report FILE]
Prints the report table and "N passed, N failed" (one check each).
"""
import argparse
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "ingest"))
from fdodtest import (Daemon, SPReq, _field, _varint, decode_ack,  # noqa
                      pb_bytes, pb_double, pb_uint)

START = 0x555555554000
BINARIES = ["soak-web", "soak-db", "soak-batch"]
POOL = 20000          # distinct stacks per binary (then they repeat)
STACKS_PER_BATCH = 400


def stack_bytes(i):
    depth = 3 + i % 12
    addrs = [START + 0x1000 + (i * 7919 + k * 104729) % 0x7ff000
             for k in range(depth)]
    packed = b"".join(_varint(a) for a in addrs)
    s = pb_uint(1, 1 + i % 5) + _field(2, 2, _varint(len(packed)) + packed)
    return _field(13, 2, _varint(len(s)) + s), 1 + i % 5


class Pool:
    """Pre-encoded stacks per binary: a batch is a header plus a slice."""

    def __init__(self):
        self.enc = []
        self.cnt = []
        for i in range(POOL):
            e, c = stack_bytes(i)
            self.enc.append(e)
            self.cnt.append(c)

    def batch(self, agent, seq, binary, bid, rng):
        now = int(time.time())
        head = [pb_uint(1, 1), pb_bytes(2, agent), pb_uint(3, seq),
                pb_bytes(4, agent.split("/")[0]), pb_bytes(5, binary),
                pb_bytes(6, pb_bytes(1, "mode") + pb_bytes(2, "soak")),
                pb_bytes(7, "cpu-clock"), pb_uint(8, 1000000),
                pb_double(9, 1.0), pb_uint(10, now - 10),
                pb_uint(11, now)]
        mm = (pb_uint(1, 0) + pb_bytes(2, bid) + pb_uint(3, START) +
              pb_uint(4, START + (1 << 24)) + pb_uint(5, 0) +
              pb_bytes(6, "/usr/bin/" + binary))
        head.append(_field(12, 2, _varint(len(mm)) + mm))
        # Mostly a hot subset, some of the long tail: ~95 % seen before.
        hot = POOL // 10
        idx = [rng.randrange(hot) if rng.random() < 0.9
               else rng.randrange(POOL) for _ in range(STACKS_PER_BATCH)]
        samples = sum(self.cnt[i] for i in idx)
        return b"".join(head) + b"".join(self.enc[i] for i in idx), samples


class Soak:
    def __init__(self, args, workdir):
        self.args = args
        self.work = workdir
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.acked = {b: 0 for b in BINARIES}
        self.latencies = []
        self.errors = []
        self.counts = {"batches": 0, "duplicates": 0, "refused": 0,
                       "pulls": 0, "pull_errors": 0, "uploads": 0}
        self.pool = Pool()
        self.ack_log = open(os.path.join(workdir, "acked.txt"), "w") \
            if args.keep else None

    # -- load -------------------------------------------------------------
    def pusher(self, n):
        rng = random.Random(n)
        sp = None
        seqs = {}
        while not self.stop.is_set():
            try:
                if sp is None:
                    sp = SPReq(self.d.nng_port)
                agent = "host-%d/agent-%d" % (n, rng.randrange(4))
                binary = rng.choice(BINARIES)
                bid = bytes([BINARIES.index(binary) + 1]) * 20
                seq = seqs.get(agent, 0) + 1
                seqs[agent] = seq
                msg, samples = self.pool.batch(agent, seq, binary, bid, rng)
                resend = rng.random() < 0.02
                for attempt in range(2 if resend else 1):
                    t0 = time.monotonic()
                    ack = decode_ack(sp.request(msg))
                    dt = time.monotonic() - t0
                    with self.lock:
                        self.latencies.append(dt)
                        if ack["status"]:
                            self.counts["refused"] += 1
                        elif ack["duplicate"]:
                            self.counts["duplicates"] += 1
                        else:
                            self.counts["batches"] += 1
                            self.acked[binary] += samples
                            if ack["samples_accepted"] != samples:
                                self.errors.append(
                                    "%s seq %d: Ack says %d samples, "
                                    "sent %d" % (agent, seq,
                                                 ack["samples_accepted"],
                                                 samples))
                            if self.ack_log:
                                self.ack_log.write("%s %d %s %d\n" % (
                                    agent, seq, binary, samples))
                    if ack["status"]:
                        time.sleep(max(ack["retry_after_ms"], 100) / 1000)
                        seqs[agent] -= 1  # the agent retries this seq
                        break
            except (OSError, ConnectionError) as e:
                with self.lock:
                    self.errors.append("pusher %d: %s" % (n, e))
                sp = None
                time.sleep(0.5)
        if sp:
            sp.close()

    def puller(self):
        formats = ["folded", "llvm", "gcc", "pprof"]
        i = 0
        while not self.stop.is_set():
            b = BINARIES[i % len(BINARIES)]
            f = formats[i % len(formats)]
            i += 1
            try:
                path = "/v1/profiles/%s?format=%s&min_samples=1" % (b, f)
                with self.lock:
                    known = self.acked[b] > 0
                status, body = self.d.request("GET", path, timeout=60)
                if status == 404 and not known:
                    status = 200  # nothing pushed for it yet
                for extra in ("/v1/status", "/metrics"):
                    st2, b2 = self.d.request("GET", extra)
                    if st2 != 200:
                        status, body, path = st2, b2, extra
                with self.lock:
                    self.counts["pulls"] += 1
                    if status not in (200, 409):
                        self.counts["pull_errors"] += 1
                        self.errors.append("GET %s: %d %s" %
                                           (path, status, body[:200]))
            except OSError as e:
                with self.lock:
                    self.counts["pull_errors"] += 1
                    self.errors.append("puller: %s" % e)
            self.stop.wait(0.5)

    def uploader(self, elves):
        i = 0
        while not self.stop.is_set():
            path = elves[i % len(elves)]
            i += 1
            try:
                with open(path, "rb") as f:
                    status, body = self.d.request(
                        "PUT", "/v1/symbols?binary=soak-up", f.read(),
                        timeout=60)
                with self.lock:
                    self.counts["uploads"] += 1
                    if status not in (200, 201):
                        self.errors.append("upload %s: %d %s" %
                                           (path, status, body[:200]))
            except OSError as e:
                with self.lock:
                    self.errors.append("uploader: %s" % e)
            self.stop.wait(2)

    # -- watching ---------------------------------------------------------
    def sample(self):
        pid = self.d.proc.pid
        kb = {}
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("RssAnon", "RssFile", "VmRSS"):
                    kb[k] = int(v.split()[0])
        fds = len(os.listdir("/proc/%d/fd" % pid))
        size = 0
        for root, _, files in os.walk(self.d.data):
            for fn in files:
                try:
                    size += os.stat(os.path.join(root, fn)).st_blocks * 512
                except OSError:
                    pass
        with self.lock:
            lat = self.latencies
            self.latencies = []
            batches = self.counts["batches"]
        lat.sort()

        def pct(p):
            return lat[min(len(lat) - 1, int(p * len(lat)))] * 1e3 \
                if lat else 0.0
        return {"t": time.monotonic() - self.t0,
                "anon_mb": kb.get("RssAnon", 0) / 1024,
                "file_mb": kb.get("RssFile", 0) / 1024, "fds": fds,
                "store_mb": size / 2**20, "acks": len(lat),
                "batches": batches, "p50": pct(0.50), "p99": pct(0.99),
                "max": lat[-1] * 1e3 if lat else 0.0}

    def elves(self):
        src = os.path.join(self.work, "up.c")
        with open(src, "w") as f:
            f.write("int f(int x){return x*7;}\nint main(int c,char**v)"
                    "{(void)v;return f(c);}\n")
        obj = os.path.join(self.work, "up.o")
        subprocess.run(["gcc", "-g", "-O1", "-c", "-o", obj, src],
                       check=True, timeout=300)
        out = []
        for i in range(8):
            exe = os.path.join(self.work, "up%d" % i)
            subprocess.run(["gcc", "-o", exe, obj,
                            "-Wl,--build-id=0x%040x" % (0x50a0 + i)],
                           check=True, timeout=300)
            out.append(exe)
        return out

    def run(self):
        a = self.args
        self.d = Daemon(os.path.join(self.work, "data"),
                        log=os.path.join(self.work, "fdod.log"))
        self.d.start()
        elves = self.elves()
        self.t0 = time.monotonic()
        threads = [threading.Thread(target=self.pusher, args=(n,))
                   for n in range(a.pushers)]
        threads.append(threading.Thread(target=self.puller))
        threads.append(threading.Thread(target=self.uploader,
                                        args=(elves,)))
        for t in threads:
            t.start()
        rows = []
        every = max(2.0, min(30.0, a.seconds / 60))
        try:
            while time.monotonic() - self.t0 < a.seconds:
                time.sleep(every)
                rows.append(self.sample())
                r = rows[-1]
                print("%7.0fs anon %7.1f MiB  file %7.1f MiB  fds %4d  "
                      "store %7.1f MiB  acks %6d  p50 %6.1f ms  p99 %7.1f ms"
                      % (r["t"], r["anon_mb"], r["file_mb"], r["fds"],
                         r["store_mb"], r["acks"], r["p50"], r["p99"]),
                      flush=True)
        finally:
            self.stop.set()
            for t in threads:
                t.join(120)
            if self.ack_log:
                self.ack_log.close()
        return rows

    def check(self, rows):
        results = []

        def check(name, ok, detail):
            results.append((name, ok, detail))

        st = self.d.wait_merged(120)
        for b in BINARIES:
            status, body = self.d.request("GET", "/v1/binaries/" + b)
            got = json.loads(body)["samples"] if status == 200 else 0
            check("no acknowledged sample lost (%s)" % b,
                  got == self.acked[b],
                  "stored %d, acknowledged %d" % (got, self.acked[b]))
        n = len(rows)
        q = max(1, n // 4)
        warm, mid, last = rows[:q], rows[q:2 * q], rows[-q:]
        if n >= 4:
            m2 = statistics.median(r["anon_mb"] for r in mid)
            m4 = statistics.median(r["anon_mb"] for r in last)
            check("anonymous RSS bounded after warm-up", m4 <= m2 * 1.10 + 16,
                  "median %.1f MiB (2nd quarter) -> %.1f MiB (last)"
                  % (m2, m4))
            fmax = max(r["fds"] for r in warm + mid)
            flast = max(r["fds"] for r in last)
            check("open descriptors bounded", flast <= fmax + 8,
                  "max %d (first half) -> %d (last quarter)" % (fmax, flast))
        else:
            check("enough samples to judge a trend", False,
                  "%d rows; run longer" % n)
        with self.lock:
            counts = dict(self.counts)
            errors = list(self.errors)
        check("pushes, pulls and uploads all ran",
              counts["batches"] > 0 and counts["pulls"] > 0 and
              counts["uploads"] > 0 and counts["pull_errors"] == 0 and
              not errors, "%s; errors: %s" % (counts, errors[:5]))
        check("daemon stops cleanly", self.d.stop() == 0, "exit status")
        lat = [r for r in rows if r["acks"]]
        summary = {
            "seconds": self.args.seconds, "pushers": self.args.pushers,
            "counts": counts, "store": st["store"],
            "p50_ms_median": statistics.median(r["p50"] for r in lat)
            if lat else 0,
            "p99_ms_max": max(r["p99"] for r in lat) if lat else 0,
            "acks_per_s": counts["batches"] / max(1, self.args.seconds)}
        return results, summary


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float,
                    default=float(os.environ.get("SOAK_SECONDS", 1800)))
    ap.add_argument("--pushers", type=int, default=4)
    ap.add_argument("--report", default=None)
    ap.add_argument("--keep", default=None, metavar="DIR",
                    help="work in DIR and keep it (store, log, acked.txt: "
                    "every acknowledged agent, seq, binary, samples)")
    a = ap.parse_args()
    if a.keep:
        os.makedirs(a.keep, exist_ok=True)
    with (contextlib.nullcontext(a.keep) if a.keep else
          tempfile.TemporaryDirectory(prefix="fdod-soak-")) as work:
        s = Soak(a, work)
        try:
            rows = s.run()
            results, summary = s.check(rows)
        finally:
            if s.d.proc and s.d.proc.poll() is None:
                s.d.proc.kill()
        lines = ["", "soak: %.0f s, %d pushers" % (a.seconds, a.pushers),
                 json.dumps(summary, indent=1), ""]
        for name, ok, detail in results:
            lines.append("%s %s: %s" % ("ok  " if ok else "FAIL", name,
                                        detail))
        failed = sum(1 for _, ok, _ in results if not ok)
        lines.append("%d passed, %d failed" % (len(results) - failed, failed))
        text = "\n".join(lines)
        print(text)
        if a.report:
            with open(a.report, "w") as f:
                f.write("\n".join(
                    "%.0f\t%.1f\t%.1f\t%d\t%.1f\t%d\t%.1f\t%.1f" %
                    (r["t"], r["anon_mb"], r["file_mb"], r["fds"],
                     r["store_mb"], r["acks"], r["p50"], r["p99"])
                    for r in rows) + "\n" + text + "\n")
        if failed:
            sys.stderr.write("fdod log tail:\n" + s.d.read_log()[-3000:])
        return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
