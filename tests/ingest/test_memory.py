"""--memory-budget on the real daemon: pushers faster than the merger get
BUSY with a retry-after once the ingest part is full, /metrics reports
every part within its cap, and every acknowledged sample is stored once;
caps given above a budget given are refused at start, above the default
budget only warned about."""
import re
import subprocess
import threading
import time

from fdodtest import FDOD, Daemon, SPReq, decode_ack, encode_batch, \
    samples_stored

E_BUSY = 18
BID = bytes.fromhex("ab" * 20)
START = 0x400000
DEPTH = 12
NSTACKS = 1000
PUSHERS = 6
BATCHES = 40


def batch(agent, seq, first):
    """A batch of NSTACKS stacks no other batch has (all their frames
    new), and its samples."""
    stacks = [(1 + i % 3, [START + ((first + i) * DEPTH + k) * 4
                           for k in range(DEPTH)])
              for i in range(NSTACKS)]
    return (encode_batch(agent=agent, seq=seq, binary="memtest",
                         mappings=[(0, BID, START, START + (1 << 34), 0,
                                    "/memtest")],
                         stacks=stacks),
            sum(c for c, _ in stacks))


def memory(d):
    """{part: (bytes, cap)} and the refusals counter from /metrics."""
    status, body = d.request("GET", "/metrics")
    assert status == 200
    text = body.decode()
    now = dict(re.findall(r'^fdod_memory_bytes\{part="(\w+)"\} (\d+)$',
                          text, re.M))
    cap = dict(re.findall(
        r'^fdod_memory_budget_bytes\{part="(\w+)"\} (\d+)$', text, re.M))
    refused = re.search(r"^fdod_memory_refused_batches_total (\d+)$", text,
                        re.M)
    parts = {p: (int(now[p]), int(cap[p])) for p in now}
    return parts, int(cap["total"]), int(refused.group(1))


def test_pushers_faster_than_the_merger_get_retry_after_and_lose_nothing(
        tmp_path):
    # 64M with 16M of HTTP bodies: 48M shared by weight, 6.4M of batches
    # in the pipeline (~30 of these), 12.8M of dirty pages a merge (a few
    # of these batches once the store has grown).
    with Daemon(tmp_path / "data",
                extra=["--memory-budget", "64M",
                       "--http-body-memory", "16M"]) as d:
        parts, total, refused0 = memory(d)
        assert total == 64 << 20
        assert parts["http"][1] == 16 << 20
        assert parts["ingest"][1] == (48 << 20) * 2 // 15
        assert sum(c for _, c in parts.values()) <= total
        assert refused0 == 0

        # Encoded before the clock starts: the pushers then send as fast
        # as fdod answers.
        payloads = [[batch("mem%d" % a, s + 1, (a * BATCHES + s) * NSTACKS)
                     for s in range(BATCHES)] for a in range(PUSHERS)]
        accepted = [dict() for _ in range(PUSHERS)]
        busy = [[] for _ in range(PUSHERS)]
        errors = []
        stop = threading.Event()
        seen = []

        def pusher(a):
            try:
                sp = SPReq(d.nng_port, timeout=60)
                for seq, (payload, _) in enumerate(payloads[a], 1):
                    for _ in range(1000):
                        ack = decode_ack(sp.request(payload))
                        if ack["status"] == 0:
                            accepted[a][seq] = ack["samples_accepted"]
                            break
                        assert ack["status"] == E_BUSY, ack
                        assert ack["retry_after_ms"] > 0, ack
                        busy[a].append(ack)
                        time.sleep(ack["retry_after_ms"] / 1000)
                    else:
                        raise AssertionError("seq %d never stored" % seq)
                sp.close()
            except Exception as e:  # reported by the main thread
                errors.append(e)

        def monitor():
            while not stop.is_set():
                seen.append(memory(d)[0])
                time.sleep(0.05)

        mon = threading.Thread(target=monitor)
        mon.start()
        threads = [threading.Thread(target=pusher, args=(a,))
                   for a in range(PUSHERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
        stored = samples_stored(d, "memtest")
        stop.set()
        mon.join()
        assert not errors, errors

        # Backpressure: BUSY with a retry-after, for the budget.
        refusals = [a for b in busy for a in b]
        assert refusals, "the merger kept up: no backpressure to test"
        assert all("memory budget" in a["message"] for a in refusals), \
            refusals[:3]
        parts, _, refused = memory(d)
        assert refused == len(refusals)

        # Every part within its cap, every time /metrics was read (a
        # single batch may exceed a cap only in an empty pipeline: these
        # are far smaller).
        assert len(seen) > 10
        for snap in seen + [parts]:
            for part, (now, cap) in snap.items():
                assert now <= cap, (part, now, cap)
        assert max(s["ingest"][0] for s in seen) > parts["ingest"][1] // 2
        assert max(s["lmdb"][0] for s in seen) > 0
        assert max(s["merge"][0] for s in seen) > 0

        # Exactly once: every acknowledged sample is stored, none twice.
        want = sum(n for _, n in (p for ps in payloads for p in ps))
        assert sum(sum(acc.values()) for acc in accepted) == want
        assert stored == want
        # Merged: the pipeline holds nothing but its fixed set again (the
        # logged-stack set, at most a quarter of the part).
        assert parts["ingest"][0] <= parts["ingest"][1] // 4


def run_fdod(tmp_path, *args):
    return subprocess.run([FDOD, "--data", str(tmp_path / "d"),
                           "--listen", "tcp://127.0.0.1:0",
                           "--http", "http://127.0.0.1:0", *args],
                          capture_output=True, text=True, timeout=60)


def test_caps_over_a_budget_given_are_refused_at_start(tmp_path):
    p = run_fdod(tmp_path, "--memory-budget", "512M",
                 "--dwarf-cache-size", "1G")
    assert p.returncode == 2, p
    assert "over --memory-budget 536870912" in p.stderr, p.stderr
    assert "dwarf 1073741824 (given)" in p.stderr, p.stderr


def test_caps_over_the_default_budget_are_warned_about(tmp_path):
    with Daemon(tmp_path / "data",
                extra=["--dwarf-cache-size", "1G",
                       "--debug-inflate-total", "1G"]) as d:
        parts, total, _ = memory(d)
        assert parts["dwarf"][1] == 1 << 30
        assert parts["inflate"][1] == 1 << 30
        log = d.read_log()
        assert "over --memory-budget" in log, log
        assert "fdod may use up to their sum" in log, log
        # The derived parts keep their share of the whole budget.
        assert parts["lmdb"][1] == total // 4


def test_a_pull_gives_back_what_it_counted_in_the_builds_part(tmp_path):
    with Daemon(tmp_path / "data") as d:
        sp = SPReq(d.nng_port)
        payload, n = batch("pull", 1, 0)
        assert decode_ack(sp.request(payload))["status"] == 0
        sp.close()
        assert samples_stored(d, "memtest") == n
        parts, total, _ = memory(d)
        assert parts["builds"] == (0, total // 8)
        for fmt in ("folded", "pprof"):
            status, body = d.request(
                "GET", "/v1/profiles/memtest?format=%s&min_samples=1" % fmt)
            assert status == 200, body[:300]
            assert body
            parts, _, _ = memory(d)
            assert parts["builds"][0] == 0, parts
        status, body = d.request("GET", "/metrics")
        assert b"\nfdod_memory_refused_pulls_total 0\n" in body
