"""bench/abuse/abuse.py — fdod under hostile clients (bench/abuse/run.sh).

Three scenes, each on a fresh fdod (build/fdod) with its own data directory
and free loopback ports, hostile clients from other loopback addresses
(127.0.0.2 and up), normal clients from 127.0.0.1:

  1. latency: 300 connections from 127.0.0.2 (150 on the HTTP port, 150 on
     the agent port; half idle, half with a request or message half sent)
     under RLIMIT_NOFILE=256; then --requests times a GET /v1/status and an
     agent push (fdoctl push) from 127.0.0.1. Prints median and max of each
     (target: <= 2 s), and how many of the 300 fdod closed within 60 s.
  2. memory before authentication: fdod with --tokens; 50 agent
     connections from 50 addresses each send a 15 MB SampleBatch with a
     wrong token. Prints fdod's anonymous RSS before, its peak while they
     send, and the difference (target: <= +64 MiB).
  3. compression bomb: a ~1 MB executable whose compressed .debug_info
     claims 1 GiB is uploaded (and, on a second fdod with
     --debug-inflate-max 0, once more for comparison, without pending
     addresses). Prints the answer and fdod's peak RSS (VmHWM; target:
     <= 300 MiB).

Plus idle CPU: fdod's CPU time over 10 s doing nothing, and its context
switches (nng's receive timeouts used to wake it every 200 ms).
"""
import argparse
import os
import resource
import select
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "ingest"))
from fdodtest import (FDOCTL, Daemon, batch_text, decode_ack,  # noqa: E402
                      pb_bytes, pb_uint)


def proc_status(pid, key):
    """A /proc/PID/status field in KiB (VmHWM, RssAnon...)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def switches(pid):
    total = 0
    for t in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/status" % (pid, t)) as f:
                for line in f:
                    if "ctxt_switches" in line:
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def connect_from(port, source):
    return socket.create_connection(("127.0.0.1", port), timeout=10,
                                    source_address=(source, 0))


def closed_count(socks, seconds):
    open_ = {s.fileno(): s for s in socks}
    n = 0
    end = time.time() + seconds
    while open_ and time.time() < end:
        ready, _, _ = select.select(list(open_), [], [], 0.5)
        for fd in ready:
            try:
                data = open_[fd].recv(65536)
            except OSError:
                data = b""
            if not data:
                n += 1
                del open_[fd]
    return n


def timed(fn):
    t0 = time.monotonic()
    fn()
    return time.monotonic() - t0


def scene_latency(tmp, requests):
    print("\n1. normal requests beside 300 idle or half-sent connections "
          "(RLIMIT_NOFILE=256)")
    extra = ["--http-header-timeout", "10s", "--http-idle-timeout", "30s",
             "--agent-auth-timeout", "30s"]
    with Daemon(os.path.join(tmp, "lat"), extra=extra, nofile=256) as d:
        hostile = []
        for i in range(150):
            s = connect_from(d.http_port, "127.0.0.2")
            if i % 2:
                s.sendall(b"GET /v1/status HTTP/1.1\r\nHost: x\r\nX-A: ")
            hostile.append(s)
        for i in range(150):
            try:
                s = connect_from(d.nng_port, "127.0.0.2")
            except OSError:
                continue
            if i % 2:
                s.sendall(b"\0SP\0\x00\x30\0\0" +
                          (15 << 20).to_bytes(8, "big") +
                          b"\x80\0\0\1" + b"x" * 6)
            hostile.append(s)
        gets, pushes = [], []
        for k in range(requests):
            gets.append(timed(lambda: d.get("/v1/status")))
            text = batch_text("bench-good", k + 1, "good", "ab" * 20,
                              [(3, [0x555555555000])])
            rc = [None]

            def push():
                rc[0] = d.push(text)[0]
            pushes.append(timed(push))
            if rc[0] != 0:
                raise SystemExit("bench/abuse: a normal push failed")
        closed = closed_count(hostile, 60)
        for s in hostile:
            s.close()
        print("   GET /v1/status   median %.3f s  max %.3f s  (target "
              "<= 2 s, %d requests)" % (statistics.median(gets), max(gets),
                                        requests))
        print("   agent push       median %.3f s  max %.3f s  (target "
              "<= 2 s)" % (statistics.median(pushes), max(pushes)))
        print("   hostile connections closed by fdod within 60 s: %d of %d"
              % (closed, len(hostile)))
        return max(max(gets), max(pushes))


def big_batch(size, token):
    """A SampleBatch of about size bytes (a large unknown field: kept by
    the decoder, so it costs memory) with a wrong token."""
    head = pb_uint(1, 1) + pb_bytes(2, "thief") + pb_uint(3, 1) + \
        pb_bytes(4, "h") + pb_bytes(5, "b") + pb_bytes(16, token)
    pad = size - len(head) - 16
    field = bytes([15 << 3 | 2])
    n = pad
    varint = bytearray()
    while True:
        b = n & 0x7f
        n >>= 7
        if n:
            varint.append(b | 0x80)
        else:
            varint.append(b)
            break
    return head + field + bytes(varint) + b"\0" * pad


def scene_memory(tmp):
    print("\n2. anonymous RSS under 50 connections each sending 15 MB "
          "without a valid token")
    tok = os.path.join(tmp, "tokens")
    with open(tok, "w") as f:
        f.write("bench-ingest-token-0123456789 ingest,read agent\n")
    os.chmod(tok, 0o600)
    with Daemon(os.path.join(tmp, "mem"), extra=["--tokens", tok],
                token="bench-ingest-token-0123456789") as d:
        d.get("/v1/status")
        time.sleep(1)
        base = proc_status(d.proc.pid, "RssAnon")
        msg = big_batch(15 << 20, "wrong-token-0123456789")
        frame = (len(msg) + 4).to_bytes(8, "big") + b"\x80\0\0\1" + msg
        peak = [base]
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                try:
                    peak[0] = max(peak[0], proc_status(d.proc.pid,
                                                       "RssAnon"))
                except OSError:
                    return
                time.sleep(0.02)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        acks = {"refused": 0, "denied": 0}

        def attacker(i):
            try:
                s = connect_from(d.nng_port, "127.0.0.%d" % (10 + i))
                s.settimeout(60)
                s.sendall(b"\0SP\0\x00\x30\0\0")
                s.recv(8)
                s.sendall(frame)
                head = s.recv(8)
                if len(head) == 8:
                    n = int.from_bytes(head, "big")
                    body = b""
                    while len(body) < n:
                        chunk = s.recv(n - len(body))
                        if not chunk:
                            break
                        body += chunk
                    if decode_ack(body[4:])["status"] == 20:
                        acks["denied"] += 1
                else:
                    acks["refused"] += 1
                s.close()
            except OSError:
                acks["refused"] += 1
        threads = [threading.Thread(target=attacker, args=(i,))
                   for i in range(50)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        took = time.monotonic() - t0
        time.sleep(0.5)
        stop.set()
        sampler.join()
        grew = (peak[0] - base) / 1024
        print("   RssAnon before %.1f MiB, peak %.1f MiB: %+.1f MiB "
              "(target <= +64 MiB)" % (base / 1024, peak[0] / 1024, grew))
        print("   of 50: %d answered DENIED, %d closed by a connection cap "
              "or timeout (%.1f s)" % (acks["denied"], acks["refused"],
                                       took))
        d.get("/v1/status")
        return grew


def bomb(tmp):
    src = os.path.join(tmp, "bomb.c")
    with open(src, "w") as f:
        f.write("static const unsigned char pad[1000000] = {1};\n"
                "int main(int c, char **v) { (void)v; "
                "return pad[c * 4096] + c; }\n")
    exe = os.path.join(tmp, "bomb")
    subprocess.run(["gcc", "-g", "-gz=zlib", "-O1", "-o", exe, src],
                   check=True, timeout=120)
    data = bytearray(open(exe, "rb").read())
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3a)

    def sh(i):
        return struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize)
    stroff = sh(shstrndx)[4]
    for i in range(1, shnum):
        name, _, flags, _, off, _, _, _, _, _ = sh(i)
        end = data.index(b"\0", stroff + name)
        if data[stroff + name:end] == b".debug_info" and flags & 0x800:
            struct.pack_into("<Q", data, off + 8, 1 << 30)
            open(exe, "wb").write(bytes(data))
            return exe
    raise SystemExit("bench/abuse: gcc did not compress .debug_info")


def scene_bomb(tmp):
    print("\n3. peak RSS during a 1 MB upload claiming 1 GiB of compressed "
          "debug data")
    exe = bomb(tmp)
    size = os.path.getsize(exe)
    with Daemon(os.path.join(tmp, "bomb-data")) as d:
        p = subprocess.run([FDOCTL, "upload", "--http", d.http, exe],
                           capture_output=True, text=True, timeout=120)
        hwm = proc_status(d.proc.pid, "VmHWM") / 1024
        answer = (p.stdout + p.stderr).strip().splitlines()[-1]
        print("   file %.2f MB; fdod answered: %s" % (size / 1e6,
                                                       answer[:160]))
        print("   fdod peak RSS (VmHWM) %.1f MiB (target <= 300 MiB)" % hwm)
        return hwm


def scene_idle(tmp):
    print("\n4. an idle fdod")
    with Daemon(os.path.join(tmp, "idle")) as d:
        d.get("/v1/status")
        time.sleep(1)
        c0, s0 = cpu_seconds(d.proc.pid), switches(d.proc.pid)
        time.sleep(10)
        c1, s1 = cpu_seconds(d.proc.pid), switches(d.proc.pid)
        print("   CPU %.2f%% of a core, %d context switches over 10 s "
              "(every thread)" % ((c1 - c0) * 10, s1 - s0))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=20)
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096 and (hard == resource.RLIM_INFINITY or hard >= 4096):
        resource.setrlimit(resource.RLIMIT_NOFILE, (4096, hard))
    with tempfile.TemporaryDirectory(prefix="fdod-bench-abuse-") as tmp:
        print("bench/abuse: fdod %s" % os.path.join(ROOT, "build", "fdod"))
        lat = scene_latency(tmp, args.requests)
        grew = scene_memory(tmp)
        hwm = scene_bomb(tmp)
        scene_idle(tmp)
        print("\nsummary: worst normal request %.3f s (<= 2 s), RSS before "
              "authentication %+.1f MiB (<= +64 MiB), peak RSS during the "
              "bomb %.1f MiB (<= 300 MiB)" % (lat, grew, hwm))


if __name__ == "__main__":
    main()
