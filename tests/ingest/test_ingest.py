"""Integration tests of ingest and delayed symbolization on the real daemon.

fdod runs on loopback with its own data directory; batches go in through
`fdoctl push` (the text form) and through a raw SP client (for bytes no
well-behaved client would send); symbols go in with HTTP PUT.
"""
import json
import os
import subprocess

import pytest

from fdodtest import (FDOCTL, Daemon, SPReq, batch_text, build_id,
                      decode_ack, encode_batch, symbols, vaddr_to_offset)

PROG = r"""
#include <stdio.h>
#include <stdlib.h>
static volatile unsigned sink;
__attribute__((noinline)) static unsigned leaf_work(unsigned x) {
    for (unsigned i = 0; i < 100; i++) x = x * 2654435761u + i;
    return x;
}
__attribute__((noinline)) unsigned middle(unsigned x) {
    return leaf_work(x) ^ leaf_work(x + 1);
}
__attribute__((noinline)) unsigned outer(unsigned x) {
    unsigned s = 0;
    for (unsigned i = 0; i < 10; i++) s += middle(x + i);
    return s;
}
int main(int argc, char **argv) {
    sink = outer((unsigned)argc);
    printf("%u\n", sink);
    return 0;
}
"""

START = 0x555555554000


@pytest.fixture(scope="module")
def prog(tmp_path_factory):
    d = tmp_path_factory.mktemp("prog")
    src = d / "prog.c"
    src.write_text(PROG)
    exe = d / "prog"
    subprocess.run(["gcc", "-O2", "-g", "-fno-omit-frame-pointer", "-o",
                    str(exe), str(src)], check=True, timeout=300)
    return str(exe)


@pytest.fixture
def daemon(tmp_path):
    with Daemon(tmp_path / "data") as d:
        yield d


def addr_of(exe, name, delta):
    """Runtime address of name+delta in a process that mapped exe at START
    with file offset 0 (a PIE's first PT_LOAD)."""
    vaddr = symbols(exe)[name][0] + delta
    return START + vaddr_to_offset(exe, vaddr)


def stacks_for(exe):
    leaf = addr_of(exe, "leaf_work", 4)
    mid = addr_of(exe, "middle", 9)
    out = addr_of(exe, "outer", 12)
    return [(120, [leaf, mid, out]), (30, [mid, out]), (7, [out])]


def upload(d, path, binary="prog"):
    with open(path, "rb") as f:
        return d.request("PUT", "/v1/symbols?binary=" + binary, f.read())


def symbolize_offsets(exe, offsets):
    """fdoctl symbolize --file-offsets, JSON: {offset: [frames]}."""
    p = subprocess.run([FDOCTL, "symbolize", "--elf", exe, "--file-offsets",
                        "--no-demangle", "--output-style=JSON"] +
                       ["0x%x" % o for o in offsets],
                       capture_output=True, text=True, check=True, timeout=60)
    res = json.loads(p.stdout)
    return {int(r["Address"], 16): r["Symbol"] for r in res}


def test_pending_until_upload_then_symcache_equals_symbolize(daemon, prog):
    bid = build_id(prog)
    rc, out = daemon.push(batch_text("a1", 1, "prog", bid, stacks_for(prog)))
    assert rc == 0, out
    assert "accepted=157" in out, out
    st = daemon.wait_merged()
    pend = {b["build_id"]: b for b in st["pending"]["build_ids"]}
    assert bid in pend and pend[bid]["symbols"] == "none", st
    # leaf, middle-1, outer-1 as callers; middle and outer as leaves.
    assert pend[bid]["pending"] == 5

    status, body = upload(daemon, prog)
    assert status == 201, body
    assert json.loads(body)["build_id"] == bid
    daemon.wait_pending_zero()

    # New addresses of a known build-id resolve continuously.
    extra = [(5, [addr_of(prog, "main", 2)])]
    rc, out = daemon.push(batch_text("a1", 2, "prog", bid, extra))
    assert rc == 0, out
    daemon.wait_pending_zero()

    cache = daemon.get("/v1/symcache/" + bid)["addresses"]
    assert len(cache) == 6
    want = symbolize_offsets(prog, [e["offset"] for e in cache])
    for e in cache:
        frames = want[e["offset"]]
        assert len(frames) == len(e["frames"]), (e, frames)
        for got, exp in zip(e["frames"], frames):
            assert got["function"] == exp["FunctionName"], (got, exp)
            assert got["file"] == exp["FileName"]
            assert got["line"] == exp["Line"]
            assert got["column"] == exp["Column"]
            assert got["discriminator"] == exp["Discriminator"]
            assert got["start_line"] == exp["StartLine"]
    names = {e["frames"][-1]["function"] for e in cache}
    assert {"leaf_work", "middle", "outer", "main"} <= names or \
        {"middle", "outer", "main"} <= names, names


def test_upload_twice_and_refusals(daemon, prog, tmp_path):
    assert upload(daemon, prog)[0] == 201
    assert upload(daemon, prog)[0] == 200
    junk = tmp_path / "junk"
    junk.write_bytes(b"not an elf file at all" * 10)
    status, body = upload(daemon, str(junk))
    assert status == 400 and b"ELF" in body, body
    with open(prog, "rb") as f:
        head = f.read(100)
    status, body = daemon.request("PUT", "/v1/symbols", head)
    assert status == 400, body
    status, body = daemon.request("PUT", "/v1/symbols", b"")
    assert status == 400, body
    with open(prog, "rb") as f:
        status, body = daemon.request("PUT", "/v1/symbols?binary=../etc",
                                      f.read())
    assert status == 400 and b"binary" in body, body


def expected_fixed(batches):
    """Exact sum of count x period x round(weight x 1e6), C rounding."""
    import decimal
    total = 0
    for count, period, weight in batches:
        wq = int(decimal.Decimal(repr(weight)).scaleb(6).to_integral_value(
            rounding=decimal.ROUND_HALF_UP))
        total += count * period * wq
    return total


def test_weighted_totals_are_exact(daemon, prog):
    bid = build_id(prog)
    leaf = addr_of(prog, "leaf_work", 4)
    cases = [(3, 1000000, 2.5), (1000000, 999983, 0.1), (7, 1, 123456.789),
             (999999999, 1000000000, 1000000.0)]
    for seq, (count, period, weight) in enumerate(cases, 1):
        rc, out = daemon.push(batch_text("w", seq, "wprog", bid,
                                         [(count, [leaf])], period=period,
                                         weight=weight))
        assert rc == 0, out
    b = daemon.get("/v1/binaries/wprog")
    assert b["samples"] == sum(c for c, _, _ in cases)
    assert int(b["weight_fixed"]) == expected_fixed(cases)


def test_duplicate_seq_counts_once_also_after_restart(tmp_path, prog):
    bid = build_id(prog)
    text = batch_text("dup", 9, "dprog", bid, stacks_for(prog))
    d = Daemon(tmp_path / "data")
    with d:
        assert d.push(text)[0] == 0
        rc, out = d.push(text)
        assert rc == 0 and "duplicate=yes" in out, out
        assert d.get("/v1/binaries/dprog")["samples"] == 157
        assert d.stop() == 0
        d.start()
        rc, out = d.push(text)
        assert rc == 0 and "duplicate=yes" in out, out
        assert d.get("/v1/binaries/dprog")["samples"] == 157


def good_batch(bid, **kw):
    args = dict(agent="raw", seq=1, binary="rawprog",
                mappings=[(0, bytes.fromhex(bid), START, START + 0x100000, 0,
                           "/bin/x")],
                stacks=[(5, [START + 0x1100])])
    args.update(kw)
    return encode_batch(**args)


def snapshot(d):
    st = d.wait_merged()
    return (d.get("/v1/binaries"), st["pending"], st["ingest"]["batches"])


def test_every_limit_and_garbage_gets_an_error_ack_and_changes_nothing(
        daemon, prog):
    bid = build_id(prog)
    sp = SPReq(daemon.nng_port)
    ack = decode_ack(sp.request(good_batch(bid)))
    assert ack["status"] == 0 and ack["samples_accepted"] == 5, ack
    before = snapshot(daemon)
    m = [(0, bytes.fromhex(bid), START, START + 0x100000, 0, "/bin/x")]
    bad = {
        "garbage": os.urandom(4096),
        "truncated": good_batch(bid, seq=2)[:-7],
        "empty": b"",
        "oversized": good_batch(bid, seq=3,
                                stacks=[(1, [START + 0x1100])] * 1200000),
        "too many labels": good_batch(bid, seq=4, labels=[
            ("k%d" % i, "v") for i in range(33)]),
        "label value too long": good_batch(bid, seq=5,
                                           labels=[("k", "v" * 300)]),
        "stack too deep": good_batch(bid, seq=6,
                                     stacks=[(1, [START + 0x1100] * 1025)]),
        "empty stack": good_batch(bid, seq=7, stacks=[(1, [])]),
        "zero count": good_batch(bid, seq=8, stacks=[(0, [START + 0x1100])]),
        "build-id too long": good_batch(bid, seq=9, mappings=[
            (0, b"\x01" * 65, START, START + 0x1000, 0, "/x")]),
        "empty build-id": good_batch(bid, seq=10, mappings=[
            (0, b"", START, START + 0x1000, 0, "/x")]),
        "start >= limit": good_batch(bid, seq=11, mappings=[
            (0, bytes.fromhex(bid), START, START, 0, "/x")]),
        "overlapping mappings": good_batch(bid, seq=12, mappings=m + [
            (1, b"\x02" * 20, START + 0x10, START + 0x20, 0, "/y")]),
        "period 0": good_batch(bid, seq=13, period=0),
        "negative weight": good_batch(bid, seq=14, weight=-1.0),
        "NaN weight": good_batch(bid, seq=15, weight=float("nan")),
        "weight too large": good_batch(bid, seq=16, weight=1e7),
        "time reversed": good_batch(bid, seq=17, time_start=200,
                                    time_end=100),
        "no agent": good_batch(bid, seq=18, agent=""),
        "no binary": good_batch(bid, seq=19, binary=""),
        "seq 0": good_batch(bid, seq=0),
        "bad binary name": good_batch(bid, seq=20, binary="../etc"),
        "too many stacks": good_batch(bid, seq=21,
                                      stacks=[(1, [START + 0x1100])] * 262145),
    }
    for name, payload in bad.items():
        ack = decode_ack(sp.request(payload))
        assert ack["status"] != 0, (name, ack)
        assert ack["message"], name
        assert ack["samples_accepted"] == 0, (name, ack)
    sp.close()
    assert snapshot(daemon)[:2] == before[:2]
    assert daemon.wait_merged()["ingest"]["refused"] >= len(bad)


def test_unmapped_addresses_are_dropped_and_counted(daemon, prog):
    bid = build_id(prog)
    sp = SPReq(daemon.nng_port)
    ack = decode_ack(sp.request(good_batch(
        bid, seq=1, stacks=[(4, [0x10, START + 0x1100]), (6, [0x20])])))
    sp.close()
    assert ack["status"] == 0, ack
    assert ack["samples_accepted"] == 4
    assert ack["samples_unmapped"] == 6
    assert ack["frames_unmapped"] == 2


def test_sigterm_stops_cleanly(tmp_path):
    d = Daemon(tmp_path / "data")
    d.start()
    assert d.stop() == 0
    assert "stopped" in d.read_log()


def test_bad_config_is_refused(tmp_path):
    p = subprocess.run([os.path.join(os.path.dirname(FDOCTL), "fdod"),
                        "--bucket", "5s"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "--bucket" in p.stderr
    p = subprocess.run([os.path.join(os.path.dirname(FDOCTL), "fdod"),
                        "--help"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "--listen" in p.stdout


def test_fdoctl_upload_over_http_and_status(daemon, prog, tmp_path):
    env = dict(os.environ, FDOD_HTTP=daemon.http)
    p = subprocess.run([FDOCTL, "upload", "--binary", "prog", prog],
                       env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    bid = build_id(prog)
    assert p.stdout.split() == ["stored", bid, "executable+debuginfo", prog]
    p = subprocess.run([FDOCTL, "upload", "--http", daemon.http, prog],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout.startswith("present " + bid), p
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x7fELF" + b"\0" * 10)
    p = subprocess.run([FDOCTL, "upload", "--http", daemon.http, str(junk),
                        prog], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1
    assert "error: %s: HTTP 400" % junk in p.stderr, p.stderr
    assert "present " + bid in p.stdout
    p = subprocess.run([FDOCTL, "status", "--http", daemon.http, "--json"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "pending" in json.loads(p.stdout)
    p = subprocess.run([FDOCTL, "status"], env=env, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0 and '"uptime_seconds": ' in p.stdout
    p = subprocess.run([FDOCTL, "status", "--http", "http://127.0.0.1:1"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "cannot connect" in p.stderr
