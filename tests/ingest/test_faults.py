"""Fault injection on the real daemon: a full LMDB map, a full disk, few
file descriptors, a symbol file deleted or corrupted under the daemon, and
agent connections that stall or vanish in the middle of a message.

Each test asserts the error the client sees and that what was stored
before is unchanged, then that service resumes once the fault is gone."""
import contextlib
import hashlib
import os
import shutil
import socket
import struct
import subprocess
import time

import pytest

from fdodtest import (FDOCTL, Daemon, SPReq, build_id, decode_ack,
                      encode_batch, symbols, vaddr_to_offset)

START = 0x555555554000
BID = bytes.fromhex("ab" * 20)
E_STORE_FULL, E_NOSPACE = 13, 21


def batch(seq, nstacks, base=0, count=1, agent="fault", binary="faulty",
          bid=BID, depth=4):
    """nstacks distinct stacks (numbered from base) of depth frames."""
    return encode_batch(
        agent=agent, seq=seq, binary=binary,
        mappings=[(0, bid, START, START + (1 << 32), 0, "/x")],
        stacks=[(count, [START + 0x1000 + 16 * (base + i) + 4096 * k
                         for k in range(depth)])
                for i in range(nstacks)])


def totals(d, binary="faulty"):
    """(samples, weight_fixed) of a binary as stored, after a flush."""
    d.wait_merged()
    status, body = d.request("GET", "/v1/binaries/" + binary)
    if status == 404:
        return (0, 0)
    assert status == 200, body
    import json
    b = json.loads(body)
    return (b["samples"], int(b["weight_fixed"]))


def wait_for(cond, timeout=20, step=0.1):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(step)
    return False


def push_until_refused(sp, first_seq, nstacks, limit=400):
    """Push growing batches until one is refused; returns (acked seqs,
    refused seq, its Ack)."""
    acked = []
    for i in range(limit):
        seq = first_seq + i
        ack = decode_ack(sp.request(batch(seq, nstacks, base=seq * nstacks)))
        if ack.get("status", 0):
            return acked, seq, ack
        acked.append(seq)
    raise AssertionError("never refused after %d batches" % limit)


# -- a full LMDB map ---------------------------------------------------------

def test_full_map_refuses_with_reason_keeps_data_and_resumes(tmp_path):
    data = tmp_path / "data"
    with Daemon(data, extra=["--max-store-size", "2M"]) as d:
        sp = SPReq(d.nng_port)
        acked, refused, ack = push_until_refused(sp, 1, 2000)
        assert ack["status"] == E_STORE_FULL, ack
        assert "store reached its maximum size" in ack["message"], ack
        assert "retry later" in ack["message"], ack
        assert ack.get("retry_after_ms", 0) > 0, ack
        assert "store reached its maximum size" in d.read_log()
        # Refused again while still full; nothing of it is counted.
        ack2 = decode_ack(sp.request(batch(refused, 2000,
                                           base=refused * 2000)))
        assert ack2["status"] == E_STORE_FULL, ack2
        # /v1/status still answers, and says the merger is stuck.
        st = d.get("/v1/status")
        assert st["ingest"]["unmerged"] > 0 or st["ingest"]
        sp.close()
        d.stop()
    # Space returns: a larger map. Every acknowledged batch is there once,
    # the refused one is not; the agent's retry (same seq) is then counted.
    with Daemon(data, extra=["--max-store-size", "1G"]) as d:
        samples, _ = totals(d)
        assert samples == len(acked) * 2000
        sp = SPReq(d.nng_port)
        ack = decode_ack(sp.request(batch(refused, 2000,
                                          base=refused * 2000)))
        assert ack.get("status", 0) == 0 and not ack.get("duplicate"), ack
        # A batch acknowledged before is still a duplicate.
        dup = decode_ack(sp.request(batch(acked[0], 2000,
                                          base=acked[0] * 2000)))
        assert dup.get("duplicate"), dup
        assert totals(d)[0] == (len(acked) + 1) * 2000
        sp.close()


# -- a full disk ---------------------------------------------------------------

@contextlib.contextmanager
def small_fs(path, size="24m"):
    """A small tmpfs at path; skipped without root, failed as root if the
    mount does not work."""
    if os.geteuid() != 0:
        pytest.skip("the full-disk test mounts a tmpfs: needs root (CI "
                    "runs as root)")
    os.makedirs(path, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + size,
                        "tmpfs", str(path)], capture_output=True, text=True, timeout=300)
    if r.returncode:
        pytest.fail("cannot mount a small tmpfs for the full-disk test "
                    "(needs root or CAP_SYS_ADMIN): " + r.stderr.strip())
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=300)


def fill(path, leave):
    """Fill the filesystem of path until `leave` bytes are free."""
    st = os.statvfs(path)
    free = st.f_bavail * st.f_frsize
    filler = os.path.join(path, "filler")
    with open(filler, "ab") as f:
        n = max(0, free - leave)
        chunk = b"\0" * (1 << 20)
        while n > 0:
            k = min(n, len(chunk))
            try:
                f.write(chunk[:k])
                f.flush()
            except OSError:
                break
            n -= k
    return filler


def test_full_disk_refuses_keeps_data_and_resumes(tmp_path, tiny_elf):
    mnt = tmp_path / "mnt"
    with small_fs(mnt, "160m"):
        data = mnt / "data"
        # A small first map and growth step so the map must grow on disk.
        with Daemon(data, extra=["--max-store-size", "1G"],
                    log=str(tmp_path / "fdod.log")) as d:
            sp = SPReq(d.nng_port)
            ack = decode_ack(sp.request(batch(1, 100)))
            assert ack.get("status", 0) == 0, ack
            before = totals(d)
            filler = fill(str(mnt), 64 << 10)
            # Pushes now fail: in the log (ENOSPC) or merging into LMDB.
            refused = None
            acked = [1]
            for seq in range(2, 200):
                a = decode_ack(sp.request(batch(seq, 3000, base=seq * 3000)))
                if a.get("status", 0):
                    refused = (seq, a)
                    break
                acked.append(seq)
            assert refused, "never refused on a full disk"
            seq, a = refused
            assert a["status"] in (E_NOSPACE, E_STORE_FULL), a
            assert ("no space left on the disk" in a["message"] or
                    "store reached its maximum size" in a["message"]), a
            assert a.get("retry_after_ms", 0) > 0
            # An upload to a full disk: 507 with the reason, nothing kept.
            fill(str(mnt), 0)
            with open(tiny_elf, "rb") as f:
                status, body = d.request("PUT", "/v1/symbols?binary=tiny",
                                         body=f.read())
            assert status == 507, (status, body)
            assert b"space" in body, body
            # The daemon still answers reads.
            assert d.get("/v1/status")["store"]
            # Space returns: the retried batch is taken and counted once.
            os.unlink(filler)
            ok = None
            end = time.time() + 30
            while time.time() < end:
                ok = decode_ack(sp.request(batch(seq, 3000,
                                                 base=seq * 3000)))
                if not ok.get("status", 0):
                    break
                time.sleep(0.3)
            assert ok.get("status", 0) == 0, ok
            acked.append(seq)
            after = totals(d)
            assert after[0] == before[0] + sum(
                3000 for s in acked if s != 1), (before, after, acked)
            # The upload works now.
            with open(tiny_elf, "rb") as f:
                status, body = d.request("PUT", "/v1/symbols?binary=tiny",
                                         body=f.read())
            assert status == 201, (status, body)
            sp.close()
            d.stop()
        # No upload temp files were left behind.
        left = [p for p in os.listdir(data / "tmp") if p.startswith("upload")] \
            if (data / "tmp").exists() else []
        assert not left, left


@pytest.fixture
def tiny_elf(tmp_path):
    src = tmp_path / "tiny.c"
    src.write_text("int hot(int x){return x*3+1;}\n"
                   "int main(int c,char**v){(void)v;return hot(c);}\n")
    out = tmp_path / "tiny"
    subprocess.run(["gcc", "-g", "-O1", "-o", str(out), str(src)],
                   check=True, timeout=300)
    return str(out)


# -- a symbol file deleted or corrupted under the daemon ------------------------

def symcache(d, bid):
    status, body = d.request("GET", "/v1/symcache/" + bid)
    assert status == 200, body
    import json
    return {e["offset"]: e["frames"] for e in json.loads(body)["addresses"]}


def pending_of(d, bid):
    st = d.wait_merged()
    for b in st["pending"]["build_ids"]:
        if b["build_id"] == bid:
            return b["pending"]
    return 0


def test_symbol_file_deleted_or_corrupted_under_the_daemon(tmp_path, tiny_elf):
    exe = tiny_elf
    bid_hex = build_id(exe)
    bid = bytes.fromhex(bid_hex)
    funcs = symbols(exe)
    hot = funcs["hot"][0]

    def push(seq, delta):
        off = vaddr_to_offset(exe, hot + delta)
        return decode_ack(sp.request(encode_batch(
            agent="sym", seq=seq, binary="tiny",
            mappings=[(0, bid, START, START + (1 << 20), 0, exe)],
            stacks=[(3, [START + off])]))), off

    # A DWARF cache of one byte: every lookup reopens the symbol file.
    with Daemon(tmp_path / "data", extra=["--dwarf-cache-size", "1"]) as d:
        sp = SPReq(d.nng_port)
        with open(exe, "rb") as f:
            good = f.read()
        assert d.request("PUT", "/v1/symbols?binary=tiny", good)[0] == 201
        ack, off0 = push(1, 0)
        assert ack.get("status", 0) == 0, ack
        d.wait_pending_zero()
        before = symcache(d, bid_hex)
        assert off0 in before
        stored = tmp_path / "data" / "symbols" / bid_hex[:2] / bid_hex
        files = sorted(p.name for p in stored.iterdir()
                       if not p.name.startswith("."))
        assert "executable" in files, files
        # Drop the persisted index too, so nothing but the file can answer.
        shutil.rmtree(tmp_path / "data" / "index", ignore_errors=True)

        for damage, seq in (("truncate", 2), ("delete", 4)):
            for name in files:
                p = stored / name
                if damage == "truncate":
                    os.truncate(p, len(good) // 3)
                elif p.exists():
                    p.unlink()
            ack, off = push(seq, 1 + seq)
            assert ack.get("status", 0) == 0, ack  # ingest is unaffected
            assert wait_for(lambda: "cannot open" in d.read_log(), 20), \
                d.read_log()
            assert pending_of(d, bid_hex) >= 1  # waits, not written wrong
            assert symcache(d, bid_hex) == before  # nothing changed
            status, body = d.request("GET", "/buildid/%s/executable"
                                     % bid_hex)
            if damage == "delete":
                assert status == 404, (status, body)
            # Re-uploading the good file repairs it; the backlog drains.
            status, body = d.request("PUT", "/v1/symbols?binary=tiny", good)
            assert status == 201, (damage, status, body)
            d.wait_pending_zero()
            after = symcache(d, bid_hex)
            assert after[off0] == before[off0]
            assert off in after, after
            assert any(f["function"] == "hot" for f in after[off]), after
            before = after
            with open(stored / "executable", "rb") as f:
                assert f.read() == good
        assert d.proc.poll() is None
        sp.close()


# -- few file descriptors: no leak, and survival when they run out -------------

def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def test_low_nofile_no_fd_leak_and_recovery(tmp_path, tiny_elf):
    import resource
    d = Daemon(tmp_path / "data").start()
    try:
        # fdod takes the hard limit at start; lower both under it.
        resource.prlimit(d.proc.pid, resource.RLIMIT_NOFILE, (128, 128))
        status, body = d.request("GET", "/metrics")
        assert b"\nprocess_max_fds 128\n" in body, body[-600:]
        with open(tiny_elf, "rb") as f:
            elf = f.read()

        def round_of_work(i):
            sp = SPReq(d.nng_port)
            ack = decode_ack(sp.request(batch(i, 50, base=i * 50)))
            assert ack.get("status", 0) == 0, ack
            sp.close()
            assert d.request("PUT", "/v1/symbols?binary=tiny", elf)[0] in \
                (200, 201)
            assert d.request("PUT", "/v1/symbols?binary=tiny",
                             b"junk" * 10)[0] == 400
            d.get("/v1/status")
            d.get("/v1/binaries/faulty")
            assert d.request("GET", "/v1/profiles/faulty?format=folded&"
                             "min_samples=1")[0] == 200
            assert d.request("GET", "/v1/profiles/nope")[0] in (404, 409)
            assert d.request("GET", "/buildid/%s/executable"
                             % build_id(tiny_elf))[0] == 200
            assert d.request("GET", "/nowhere")[0] == 404

        for i in range(1, 6):
            round_of_work(i)
        warm = fd_count(d.proc.pid)
        status, body = d.request("GET", "/metrics")
        reported = [int(float(l.split()[1])) for l in body.decode().split("\n")
                    if l.startswith("process_open_fds ")]
        assert reported and abs(reported[0] - warm) <= 3, (reported, warm)
        for i in range(6, 60):
            round_of_work(i)
        assert wait_for(lambda: fd_count(d.proc.pid) <= warm, 10), \
            (warm, fd_count(d.proc.pid))

        # Run it out of descriptors: more idle connections than it may
        # open. It keeps running and serves again once they are gone.
        socks = []
        for _ in range(200):
            for port in (d.http_port, d.nng_port):
                try:  # once it is out of descriptors, the backlog fills
                    socks.append(socket.create_connection(
                        ("127.0.0.1", port), 0.5))
                except OSError:
                    pass
        assert len(socks) > 128, len(socks)
        time.sleep(1)
        assert d.proc.poll() is None
        for s in socks:
            s.close()
        assert wait_for(lambda: _serves(d), 30), d.read_log()
        round_of_work(100)
        assert d.proc.poll() is None
        assert wait_for(lambda: fd_count(d.proc.pid) <= warm + 2, 20), \
            (warm, fd_count(d.proc.pid))
    finally:
        d.stop()


def _serves(d):
    try:
        d.get("/v1/status")
        return True
    except Exception:
        return False


# -- agent connections that stall or vanish mid-message ------------------------

def sp_handshake(port):
    s = socket.create_connection(("127.0.0.1", port), 5)
    # SP header: REQ (0x30) talking to REP.
    s.sendall(b"\x00SP\x00\x00\x30\x00\x00")
    hdr = b""
    while len(hdr) < 8:
        got = s.recv(8 - len(hdr))
        assert got, "closed during the SP handshake"
        hdr += got
    return s


def test_stalled_and_vanishing_agents_change_nothing(tmp_path):
    with Daemon(tmp_path / "data") as d:
        sp = SPReq(d.nng_port)
        ack = decode_ack(sp.request(batch(1, 10)))
        assert ack.get("status", 0) == 0
        before = totals(d)
        msg = batch(2, 500, base=1000)
        body = b"\x80\x00\x00\x01" + msg  # REQ request id, then the batch
        frame = struct.pack(">Q", len(body)) + body
        stalled = []
        for cut in (3, 8, 12, len(frame) // 2, len(frame) - 1):
            s = sp_handshake(d.nng_port)
            s.sendall(frame[:cut])
            stalled.append(s)
        # While they stall, other agents are served.
        ack = decode_ack(sp.request(batch(3, 10, base=3000)))
        assert ack.get("status", 0) == 0, ack
        # They vanish: one closes, one resets (SO_LINGER 0).
        stalled[0].close()
        s = stalled[1]
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     struct.pack("ii", 1, 0))
        s.close()
        for s in stalled[2:]:
            s.close()
        # A frame announcing more bytes than the limit is cut off.
        s = sp_handshake(d.nng_port)
        s.sendall(struct.pack(">Q", 1 << 40) + b"\x80\x00\x00\x02")
        s.settimeout(5)
        try:
            assert s.recv(100) == b""
        except (ConnectionResetError, socket.timeout):
            pass
        s.close()
        after = totals(d)
        assert after[0] == before[0] + 10, (before, after)
        # Neither batch 2 nor anything partial was stored: seq 2 is new.
        ack = decode_ack(sp.request(msg))
        assert ack.get("status", 0) == 0 and not ack.get("duplicate"), ack
        assert totals(d)[0] == before[0] + 510
        assert d.proc.poll() is None
        sp.close()


# -- uploads past --max-uploads -------------------------------------------------

def test_concurrent_uploads_are_bounded_and_reads_go_on(tmp_path, tiny_elf):
    with Daemon(tmp_path / "data", extra=["--max-uploads", "2",
                                          "--http-threads", "3"]) as d:
        slow = []
        for _ in range(2):  # two uploads whose bodies never finish
            s = socket.create_connection(("127.0.0.1", d.http_port), 5)
            s.sendall(b"PUT /v1/symbols?binary=slow HTTP/1.1\r\n"
                      b"Host: x\r\nContent-Length: 1000000\r\n\r\n" +
                      b"\x7fELF" + b"\0" * 1000)
            slow.append(s)
        time.sleep(0.5)
        with open(tiny_elf, "rb") as f:
            elf = f.read()
        status, body = d.request("PUT", "/v1/symbols?binary=tiny", elf)
        assert status == 503, (status, body)
        assert b"--max-uploads" in body and b"retry later" in body, body
        # Reads are served meanwhile.
        assert d.get("/v1/status")
        for s in slow:
            s.close()
        assert wait_for(lambda: d.request(
            "PUT", "/v1/symbols?binary=tiny", elf)[0] == 201, 20)
        assert "uploads in progress" in d.read_log()
        # Nothing of the abandoned uploads stayed behind.
        inc = tmp_path / "data" / "symbols" / ".incoming"
        assert wait_for(lambda: not any(inc.iterdir()), 10), \
            list(inc.iterdir())
    r = subprocess.run([os.environ.get("FDOD") or os.path.join(
        os.path.dirname(__file__), "..", "..", "build", "fdod"),
        "--data", str(tmp_path / "d2"), "--max-uploads", "4"],
        capture_output=True, text=True, timeout=20)
    assert r.returncode != 0 and "--max-uploads must be 1..3" in r.stderr, \
        r.stderr
