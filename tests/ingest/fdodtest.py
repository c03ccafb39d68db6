"""Helpers for integration tests that run the real fdod on loopback.

Every daemon a test starts gets free loopback ports and its own data
directory, and is stopped (SIGTERM, then SIGKILL) when the test ends.
"""
import ctypes
import json
import os
import re
import signal
import socket
import struct
import subprocess
import time
import urllib.error
import urllib.request

ROOT = os.environ.get("FDOD_ROOT") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
FDOD = os.environ.get("FDOD") or os.path.join(ROOT, "build", "fdod")
FDOCTL = os.environ.get("FDOCTL") or os.path.join(ROOT, "build", "fdoctl")


def _die_with_parent():
    # PR_SET_PDEATHSIG: if the test process dies (timeout, ^C), so does the
    # daemon it started.
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    """A running fdod. Use as a context manager."""

    def __init__(self, data, extra=(), log=None, token=None, nofile=None):
        self.token = token  # sent by request() when the daemon has --tokens
        self.nofile = nofile  # RLIMIT_NOFILE (soft and hard) for fdod
        self.data = str(data)
        self.extra = list(extra)
        self.log_path = log or os.path.join(self.data + ".log")
        self.proc = None
        self.nng_port = free_port()
        self.http_port = free_port()

    @property
    def url(self):
        return "tcp://127.0.0.1:%d" % self.nng_port

    @property
    def http(self):
        return "http://127.0.0.1:%d" % self.http_port

    def start(self, wait=True):
        assert os.path.exists(FDOD), "build fdod first (make)"
        self.logf = open(self.log_path, "ab")
        nofile = self.nofile

        def setup():
            _die_with_parent()
            if nofile:
                import resource
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        self.proc = subprocess.Popen(
            [FDOD, "--data", self.data, "--listen", self.url,
             "--http", self.http, "--workers", "2"] + self.extra,
            stdout=self.logf, stderr=self.logf, stdin=subprocess.DEVNULL,
            preexec_fn=setup)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=20):
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise AssertionError("fdod exited with %d:\n%s" %
                                     (self.proc.returncode, self.read_log()))
            try:
                self.get("/v1/status")
                return
            except (OSError, urllib.error.URLError):
                time.sleep(0.05)
        raise AssertionError("fdod did not answer in %ds:\n%s" %
                             (timeout, self.read_log()))

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("fdod did not stop on %s" % sig)
        self.logf.close()
        return self.proc.returncode

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        self.logf.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    # -- HTTP --
    def request(self, method, path, body=None, timeout=30, headers=None):
        req = urllib.request.Request(self.http + path, data=body,
                                     method=method, headers=headers or {})
        if self.token:
            req.add_header("Authorization", "Bearer " + self.token)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def get(self, path):
        status, body = self.request("GET", path)
        if status != 200:
            raise AssertionError("GET %s: %d %s" % (path, status, body))
        return json.loads(body)

    def push(self, text, timeout=30):
        """fdoctl push; returns (exit code, output)."""
        p = subprocess.run([FDOCTL, "push", "--url", self.url,
                            "--timeout", str(timeout * 1000), "-"],
                           input=text.encode(), capture_output=True,
                           timeout=timeout * 4)
        return p.returncode, (p.stdout + p.stderr).decode()

    def wait_merged(self, timeout=30):
        """Until every acknowledged batch is in the store (/v1/status does
        not wait for the merger; it reports the backlog)."""
        end = time.time() + timeout
        while time.time() < end:
            st = self.get("/v1/status")
            if st["ingest"]["unmerged"] == 0:
                return st
            time.sleep(0.05)
        raise AssertionError("the merger never caught up: %s" % st)

    def wait_pending_zero(self, timeout=30):
        """Until everything is merged and every pending address of a
        build-id with symbols is resolved (addresses of build-ids without
        symbols, libc for instance, wait for an upload that may never
        come)."""
        end = time.time() + timeout
        while time.time() < end:
            st = self.wait_merged(timeout)
            sym = st["symbolizer"]
            waiting = sum(b["pending"] for b in st["pending"]["build_ids"]
                          if b["symbols"] != "none")
            if waiting == 0 and sym["queued"] == 0 and sym["busy"] == 0:
                return st
            time.sleep(0.1)
        raise AssertionError("pending never reached 0: %s" % st)


def samples_stored(d, binary):
    """The samples stored for binary (0 when it is unknown), once every
    acknowledged batch is merged."""
    d.wait_merged()
    status, body = d.request("GET", "/v1/binaries/%s" % binary)
    if status == 404:
        return 0
    assert status == 200, body
    return json.loads(body)["samples"]


def build_id(path):
    out = subprocess.run(["readelf", "-nW", path], capture_output=True,
                         text=True, check=True, timeout=300).stdout
    for line in out.splitlines():
        if "Build ID:" in line:
            return line.split("Build ID:")[1].strip()
    raise AssertionError("no build-id in %s" % path)


def load_segments(path):
    """[(p_offset, p_vaddr, p_filesz)] of the PT_LOAD headers (ELF64 LE)."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    segs = []
    for i in range(phnum):
        p_type, _, p_offset, p_vaddr, _, p_filesz = struct.unpack_from(
            "<IIQQQQ", data, phoff + i * phentsize)
        if p_type == 1:
            segs.append((p_offset, p_vaddr, p_filesz))
    return segs


def vaddr_to_offset(path, vaddr):
    for off, va, sz in load_segments(path):
        if va <= vaddr < va + sz:
            return vaddr - va + off
    raise AssertionError("0x%x not in a PT_LOAD of %s" % (vaddr, path))


def symbols(path):
    """{name: (vaddr, size)} of the FUNC symbols."""
    out = subprocess.run(["nm", "-S", "--defined-only", path],
                         capture_output=True, text=True, check=True, timeout=300).stdout
    res = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in "tT":
            res[parts[3]] = (int(parts[0], 16), int(parts[1], 16))
    return res


# The default batch time: ten minutes before this process started, fixed,
# so that building the same batch twice gives the same bytes, as an
# agent's retry does (a resent seq with other content is a CONFLICT).
DEFAULT_T0 = int(time.time()) - 600


def batch_text(agent, seq, binary, bid, stacks, start=0x555555554000,
               limit=0x555555600000, labels=(), weight=1.0, period=1000000,
               t0=None, host="host-1", branches=()):
    """A SampleBatch in the text form; stacks = [(count, [addr...])].
    Times default to DEFAULT_T0 (older data falls to retention)."""
    if t0 is None:
        t0 = DEFAULT_T0
    lines = ["agent %s" % agent, "seq %d" % seq, "host %s" % host,
             "binary %s" % binary]
    lines += ["label %s" % l for l in labels]
    lines += ["event cpu-clock", "period %d" % period, "weight %r" % weight,
              "time %d %d" % (t0, t0 + 60),
              "mapping 0 %s %x %x 0 /usr/bin/%s" % (bid, start, limit, binary)]
    for count, addrs in stacks:
        lines.append("stack %d %s" % (count, " ".join("%x" % a for a in addrs)))
    for frm, to, count in branches:
        lines.append("branch %x %x %d" % (frm, to, count))
    return "\n".join(lines) + "\n"


# -- nng's SP protocol over TCP, REQ side, for sending arbitrary bytes -------
# Handshake: "\0SP\0" + protocol (be16; REQ=0x30, REP=0x31) + 2 zero bytes.
# Frame: be64 length + payload; a REQ payload starts with a be32 request id
# whose top bit is set, and the REP echoes it before the reply body.

class SPReq:
    """Like an nng REQ dialer: a connection fdod closes before its first
    reply (a connection cap: fdod admits few connections that have not yet
    sent an authorized batch) is dialed again and the request resent."""

    def __init__(self, port, timeout=30):
        self.port, self.timeout = port, timeout
        self._dial()
        self.next_id = 0x80000001

    def _dial(self):
        self.sock = socket.create_connection(("127.0.0.1", self.port),
                                             self.timeout)
        self.sock.sendall(b"\0SP\0\x00\x30\0\0")
        peer = self._recv_exact(8)
        assert peer[:4] == b"\0SP\0" and peer[4:6] == b"\x00\x31", peer
        self.replies = 0

    def _recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("peer closed")
            buf += chunk
        return buf

    def request(self, payload):
        rid = self.next_id
        self.next_id += 1
        body = struct.pack(">I", rid) + payload
        for attempt in range(100):
            try:
                self.sock.sendall(struct.pack(">Q", len(body)) + body)
                n, = struct.unpack(">Q", self._recv_exact(8))
                break
            except (ConnectionError, OSError):
                if self.replies or attempt == 99:
                    raise
                self.sock.close()
                time.sleep(0.1)
                self._dial()
        reply = self._recv_exact(n)
        assert struct.unpack(">I", reply[:4])[0] == rid
        self.replies += 1
        return reply[4:]

    def close(self):
        self.sock.close()


# -- a minimal protobuf encoder/decoder for fdod.proto -----------------------

def _varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field(num, wt, payload):
    return _varint(num << 3 | wt) + payload


def pb_uint(num, v):
    return _field(num, 0, _varint(v)) if v else b""


def pb_bytes(num, b):
    if isinstance(b, str):
        b = b.encode()
    return _field(num, 2, _varint(len(b)) + b) if b else b""


def pb_double(num, d):
    return _field(num, 1, struct.pack("<d", d))


def encode_batch(agent="a", seq=1, host="h", binary="b", labels=(),
                 event="cpu-clock", period=1000000, weight=1.0,
                 time_start=None, time_end=None, mappings=(),
                 stacks=(), branches=()):
    """mappings = [(index, build_id bytes, start, limit, offset, path)],
    stacks = [(count, [addr...])], branches = [(from, to, count)].
    Times default to DEFAULT_T0 (older data falls to retention)."""
    if time_start is None:
        time_start = DEFAULT_T0
    if time_end is None:
        time_end = time_start + 60
    m = [pb_uint(1, 1), pb_bytes(2, agent), pb_uint(3, seq),
         pb_bytes(4, host), pb_bytes(5, binary)]
    for k, v in labels:
        m.append(pb_bytes(6, pb_bytes(1, k) + pb_bytes(2, v)))
    m += [pb_bytes(7, event), pb_uint(8, period), pb_double(9, weight),
          pb_uint(10, time_start), pb_uint(11, time_end)]
    for idx, bid, start, limit, off, path in mappings:
        mm = (pb_uint(1, idx) + pb_bytes(2, bid) + pb_uint(3, start) +
              pb_uint(4, limit) + pb_uint(5, off) + pb_bytes(6, path))
        m.append(_field(12, 2, _varint(len(mm)) + mm))
    cache = {}
    for count, addrs in stacks:
        key = (count, tuple(addrs))
        if key not in cache:
            packed = b"".join(_varint(a) for a in addrs)
            s = pb_uint(1, count) + (_field(2, 2, _varint(len(packed)) +
                                            packed) if addrs else b"")
            cache[key] = _field(13, 2, _varint(len(s)) + s)
        m.append(cache[key])
    for frm, to, count in branches:
        b = pb_uint(1, frm) + pb_uint(2, to) + pb_uint(3, count)
        m.append(_field(14, 2, _varint(len(b)) + b))
    return b"".join(m)


def _read_varint(data, i):
    """(value, next index) of the protobuf varint at data[i]."""
    v = shift = 0
    while True:
        b = data[i]
        i += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v, i


def decode_ack(data):
    """Ack fields by number -> value (varints and strings)."""
    names = {1: "status", 2: "message", 3: "seq", 4: "duplicate",
             5: "samples_accepted", 6: "samples_dropped",
             7: "samples_unmapped", 8: "frames_unmapped",
             9: "branches_accepted", 10: "branches_unmapped",
             11: "retry_after_ms", 12: "schema_version"}
    res = {n: 0 for n in names.values()}
    res["message"] = ""
    for num, wt, v in pb_fields(data):
        if wt not in (0, 2):
            raise AssertionError("unexpected wire type %d in Ack" % wt)
        if num in names:
            res[names[num]] = v.decode(errors="replace") if wt == 2 else v
    return res


def pb_fields(data):
    """[(number, wire type, value)] of one protobuf message: varints as
    ints, the other wire types as their bytes."""
    out, i = [], 0
    while i < len(data):
        key, i = _read_varint(data, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _read_varint(data, i)
        elif wt == 2:
            n, i = _read_varint(data, i)
            v = data[i:i + n]
            i += n
        elif wt in (1, 5):
            n = 8 if wt == 1 else 4
            v, i = data[i:i + n], i + n
        else:
            raise AssertionError("unexpected wire type %d" % wt)
        out.append((num, wt, v))
    return out


# -- OpenTelemetry profiles (tests/ingest/test_otlp*.py) --

PROC = 0x7f0000000000  # where the htlhash-only mapping has the program

OTLP_SRC = r"""
#include <stdlib.h>
volatile long sink;
__attribute__((noinline)) long hot(long n)
{
	long s = 0;
	for (long i = 0; i < n; i++)
		s += i * i % 7;
	return s;
}
int main(int argc, char **argv)
{
	sink = hot(argc > 1 ? atol(argv[1]) : 10);
	return 0;
}
"""


def file_id(path):
    """The OTel file id (process.executable.build_id.htlhash): SHA-256 of
    the first and last 4096 bytes and the length (big-endian u64), cut to
    16 bytes, in hex (opentelemetry-specification profiles/mappings.md)."""
    import hashlib
    with open(path, "rb") as f:
        data = f.read()
    n = min(len(data), 4096)
    h = hashlib.sha256(data[:n] + data[len(data) - n:] +
                       struct.pack(">Q", len(data)))
    return h.hexdigest()[:32]


def pull_profile(d, binary, fmt):
    """A profile of binary as text, whatever its sample count."""
    url = "%s/v1/profiles/%s?format=%s&min_samples=1" % (d.http, binary, fmt)
    with urllib.request.urlopen(url, timeout=60) as r:
        return r.read().decode()


def metric(d, name):
    """The value of one line of /metrics (0 when absent)."""
    status, body = d.request("GET", "/metrics")
    assert status == 200
    m = re.search(r"^%s (\d+)$" % re.escape(name), body.decode(), re.M)
    return int(m.group(1)) if m else 0


def call_site(exe, caller, callee):
    """The vaddr of the call instruction in caller that calls callee."""
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", exe],
                         capture_output=True, text=True, check=True,
                         timeout=120).stdout
    body = out.split("<%s>:\n" % caller, 1)[1].split("\n\n", 1)[0]
    for line in body.splitlines():
        if "call" in line and "<%s>" % callee in line:
            return int(line.split(":")[0], 16)
    raise AssertionError("no call of %s in %s" % (callee, caller))


def ebpf_request(pb, prog, t0, outside=False):
    """An ExportProfilesServiceRequest as the eBPF profiler sends it, and
    the stacks it holds as (count, [addresses leaf first]) in the
    program's virtual addresses, callers as return addresses - 1."""
    exe, bid, syms, (p_off, p_vaddr, p_filesz) = prog
    leaf = syms["hot"] + 4
    leaf2 = syms["hot"] + 8  # sampled through the htlhash-only mapping
    # The eBPF profiler reports a caller as its return address - 1.
    caller = call_site(exe, "main", "hot") + 1
    req = pb.ExportProfilesServiceRequest()
    d = req.dictionary
    strs = ["", "samples", "count", "cpu", "nanoseconds", exe,
            "process.executable.build_id.gnu",
            "process.executable.build_id.htlhash",
            "process.executable.name", "thread.name", "host.name",
            "/container/ocp", "do_syscall_64", "[kernel.kallsyms]"]
    d.string_table.extend(strs)
    s = {v: i for i, v in enumerate(strs)}

    def attr(key, val):
        kv = d.attribute_table.add()
        kv.key_strindex = s[key]
        kv.value.string_value = val
        return len(d.attribute_table) - 1

    d.attribute_table.add()  # [0]: the zero value
    a_gnu = attr("process.executable.build_id.gnu", bid)
    a_htl = attr("process.executable.build_id.htlhash", file_id(exe))
    a_exe = attr("process.executable.name", "ocp")
    a_thr = attr("thread.name", "worker")
    d.mapping_table.add()
    m_exe = d.mapping_table.add(
        memory_start=p_vaddr, memory_limit=p_vaddr + p_filesz,
        file_offset=p_off, filename_strindex=s[exe])
    m_exe.attribute_indices.append(a_gnu)
    # The same file mapped by another process, in process addresses.
    m_htl = d.mapping_table.add(memory_start=PROC + p_vaddr,
                                memory_limit=PROC + p_vaddr + p_filesz,
                                file_offset=p_off,
                                filename_strindex=s["/container/ocp"])
    m_htl.attribute_indices.append(a_htl)
    d.function_table.add()
    d.function_table.add(name_strindex=s["do_syscall_64"])
    d.location_table.add()
    d.location_table.add(mapping_index=1,
                         address=0x7fff0000 if outside else leaf)
    d.location_table.add(mapping_index=1, address=caller)
    d.location_table.add(mapping_index=2, address=PROC + leaf2)
    # A kernel frame: symbolized by the profiler, no mapping.
    kern = d.location_table.add(address=0xffffffff81000123)
    kern.lines.add(function_index=1)
    d.stack_table.add()
    d.stack_table.add(location_indices=[1, 2])     # hot <- main
    d.stack_table.add(location_indices=[4, 1, 2])  # kernel <- hot <- main
    d.stack_table.add(location_indices=[3, 2])     # hot (by file id) <- main
    d.stack_table.add(location_indices=[4])        # kernel only
    rp = req.resource_profiles.add()
    rp.resource.attributes.add(key="host.name").value.string_value = "hostA"
    p = rp.scope_profiles.add().profiles.add()
    p.sample_type.type_strindex = s["samples"]
    p.sample_type.unit_strindex = s["count"]
    p.period_type.type_strindex = s["cpu"]
    p.period_type.unit_strindex = s["nanoseconds"]
    p.period = 50000000
    p.time_unix_nano = t0 * 10**9
    p.duration_nano = 2 * 10**9
    ts = t0 * 10**9 + 5
    for stack, n in ((1, 5), (2, 3), (3, 2), (4, 7)):
        x = p.samples.add(stack_index=stack)
        x.attribute_indices.extend([a_exe, a_thr])
        x.timestamps_unix_nano.extend([ts + i for i in range(n)])
    # The same as a native batch: absolute addresses, callers as return
    # addresses; kernel frames outside the batch's mapping.
    ret = caller + 1
    stacks = [(5, [leaf, ret]), (3, [0xffffffff81000123, leaf + 1, ret]),
              (2, [leaf2, ret])]
    return req, stacks


def native_text(prog, stacks, t0):
    exe, bid, _, (p_off, p_vaddr, p_filesz) = prog
    text = ["agent native/1", "seq 1", "host hostA", "binary ocpnative",
            "event cpu-clock", "period 50000000", "weight 1",
            "time %d %d" % (t0, t0 + 2),
            "mapping 0 %s %x %x %x %s" % (bid, p_vaddr, p_vaddr + p_filesz,
                                          p_off, exe)]
    text += ["stack %d %s" % (c, " ".join("%x" % a for a in addrs))
             for c, addrs in stacks]
    return "\n".join(text) + "\n"


def assert_same_profiles(d, a, b):
    """Once every address is symbolized: binaries a and b have the same
    folded and llvm profiles and the same weight."""
    d.wait_pending_zero()
    for fmt in ("folded", "llvm&encoding=text"):
        pa = pull_profile(d, a, fmt)
        pb = pull_profile(d, b, fmt)
        assert "hot" in pa and pa == pb, (fmt, pa, pb)
    wa = d.get("/v1/binaries/" + a)["weight_fixed"]
    wb = d.get("/v1/binaries/" + b)["weight_fixed"]
    assert wa == wb


def upload_and_push_native(d, pb, prog):
    """The program uploaded as binary ocp, the samples of an eBPF-shaped
    request pushed as a SampleBatch of binary ocpnative: the request,
    serialized, for the test to send."""
    t0 = int(time.time()) - 600
    req, stacks = ebpf_request(pb, prog, t0)
    subprocess.run([FDOCTL, "upload", "--http", d.http, "--binary", "ocp",
                    prog[0]], check=True, timeout=300)
    rc, out = d.push(native_text(prog, stacks, t0))
    assert rc == 0, out
    return req.SerializeToString()


def without_staleness(body):
    """An answer as the store fixtures, written before the staleness score
    existed, hold it: a /v1/binaries/{b} answer without the score (the
    object's last member) and a readiness answer without the rule
    min_fresh_share (both tested in test_stale.py); others as they are."""
    body = re.sub(rb',"min_fresh_share":[0-9.]+(?=,"window")', b"", body,
                  count=1)
    i = body.rfind(b',"staleness":{')
    if i < 0:
        return body
    assert body.endswith(b"}}\n"), body
    return body[:i] + b"}\n"
