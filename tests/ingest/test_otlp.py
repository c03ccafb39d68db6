"""POST /v1development/profiles: OTLP/HTTP profiles into the real fdod.

The client is Python with Debian's python3-protobuf, its message classes
generated now by protoc (protobuf-compiler) from the project's own
schemas/otlp_profiles.proto. The request is shaped like the
OpenTelemetry eBPF profiler's: a mapping in ELF virtual addresses with a
GNU build-id attribute, an htlhash-only mapping (the program's own file
id, as for a file in a container whose GNU build-id the profiler did not
read), samples with timestamps and no values, symbolized kernel frames, the binary named by a sample
attribute. After `fdoctl upload` of the program, its llvm and folded
profiles equal those of the same samples pushed as a SampleBatch. A
retried identical request counts once. Bad input (a cut protobuf, a
wrong content type, a gzip bomb, a huge declared body, a location
outside its mapping, an old shape) is refused with a clear error and
nothing is stored.
"""
import gzip
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from fdodtest import (FDOCTL, Daemon, build_id, load_segments,  # noqa: E402
                      samples_stored, symbols)

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
CT = "application/x-protobuf"
PROC = 0x7f0000000000  # where the htlhash-only mapping has the program


def file_id(path):
    """The OTel file id (process.executable.build_id.htlhash): SHA-256 of
    the first and last 4096 bytes and the length (big-endian u64), cut to
    16 bytes, in hex (opentelemetry-specification profiles/mappings.md)."""
    import hashlib
    import struct
    with open(path, "rb") as f:
        data = f.read()
    n = min(len(data), 4096)
    h = hashlib.sha256(data[:n] + data[len(data) - n:] +
                       struct.pack(">Q", len(data)))
    return h.hexdigest()[:32]

SRC = r"""
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


@pytest.fixture(scope="module")
def pb(tmp_path_factory):
    """The generated module of schemas/otlp_profiles.proto."""
    if not shutil.which("protoc"):
        pytest.skip("protoc is not installed (protobuf-compiler: "
                    "deploy/install-deps.sh)")
    try:
        importlib.import_module("google.protobuf")
    except ImportError:
        pytest.skip("python3-protobuf is not installed "
                    "(deploy/install-deps.sh)")
    out = tmp_path_factory.mktemp("pb")
    subprocess.run(["protoc", "-I", os.path.join(ROOT, "schemas"),
                    "--python_out", str(out), "otlp_profiles.proto"],
                   check=True, timeout=120)
    sys.path.insert(0, str(out))
    return importlib.import_module("otlp_profiles_pb2")


@pytest.fixture(scope="module")
def prog(tmp_path_factory):
    """(executable, its build-id, {name: vaddr}, its text PT_LOAD)."""
    tmp = tmp_path_factory.mktemp("prog")
    (tmp / "ocp.c").write_text(SRC)
    exe = str(tmp / "ocp")
    subprocess.run(["gcc", "-g", "-O1", "-Wl,--build-id", "-o", exe,
                    str(tmp / "ocp.c")], check=True, timeout=120)
    syms = symbols(exe)
    hot = syms["hot"][0]
    seg, = [s for s in load_segments(exe) if s[1] <= hot < s[1] + s[2]]
    return exe, build_id(exe), {k: v[0] for k, v in syms.items()}, seg


@pytest.fixture
def daemon(tmp_path):
    with Daemon(tmp_path / "data") as d:
        yield d


def post(d, body, ctype=CT, headers=None, json_answer=True):
    """(status, answer: JSON, or raw bytes) of POST /v1development/profiles."""
    r = urllib.request.Request(d.http + "/v1development/profiles",
                               data=body, method="POST")
    if ctype:
        r.add_header("Content-Type", ctype)
    if json_answer:
        r.add_header("Accept", "application/json")
    for k, v in (headers or {}).items():
        r.add_header(k, v)
    try:
        with urllib.request.urlopen(r, timeout=120) as resp:
            data = resp.read()
            return resp.status, json.loads(data) if json_answer else data
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def pull(d, binary, fmt):
    url = "%s/v1/profiles/%s?format=%s&min_samples=1" % (d.http, binary, fmt)
    with urllib.request.urlopen(url, timeout=60) as r:
        return r.read().decode()


def metric(d, name):
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


def test_ebpf_profile_equals_the_same_samples_as_a_batch(daemon, pb, prog):
    t0 = int(time.time()) - 600
    req, stacks = ebpf_request(pb, prog, t0)
    subprocess.run([FDOCTL, "upload", "--http", daemon.http, "--binary",
                    "ocp", prog[0]], check=True, timeout=300)
    rc, out = daemon.push(native_text(prog, stacks, t0))
    assert rc == 0, out
    body = req.SerializeToString()
    status, ans = post(daemon, gzip.compress(body),
                       headers={"Content-Encoding": "gzip"})
    assert status == 200, ans
    assert ans["shape"] == "v1.10"
    assert ans["samples"]["accepted"] == 10, ans
    assert ans["samples"]["unmapped"] == 7, ans
    assert ans["unmapped"]["symbolized"]["samples"] == 7, ans
    # The htlhash-only mapping is the uploaded program's file id.
    assert ans["file_ids"] == {"mappings": 1, "resolved": 1}, ans
    assert "htlhash_unknown" not in ans["unmapped"], ans
    b, = ans["batches"]
    assert b["binary"] == "ocp" and b["host"] == "hostA", b
    assert b["event"] == "cpu-clock" and b["period"] == 50000000, b
    daemon.wait_pending_zero()
    for fmt in ("folded", "llvm&encoding=text"):
        a = pull(daemon, "ocp", fmt)
        n = pull(daemon, "ocpnative", fmt)
        assert "hot" in a and a == n, (fmt, a, n)
    wa = daemon.get("/v1/binaries/ocp")["weight_fixed"]
    wb = daemon.get("/v1/binaries/ocpnative")["weight_fixed"]
    assert wa == wb
    # The protobuf answer (what OTLP exporters read): a partial success
    # naming the unmapped samples. A retry of the same request: stored
    # once.
    status, raw = post(daemon, body, json_answer=False)
    assert status == 200
    resp = pb.ExportProfilesServiceResponse.FromString(raw)
    assert "symbolized 7" in resp.partial_success.error_message, resp
    assert samples_stored(daemon, "ocp") == 10
    assert metric(daemon, 'fdod_otlp_batches_total{result="duplicate"}') == 1
    assert metric(daemon, 'fdod_otlp_samples_total{result="accepted"}') == 10
    assert metric(daemon, 'fdod_otlp_unmapped_samples_total'
                  '{reason="symbolized"}') == 7


def test_v19_shape_is_read(daemon, pb, prog):
    """A v1.8/v1.9 request (Sample's values at 2, attributes at 3)."""
    t0 = int(time.time()) - 600
    req, _ = ebpf_request(pb, prog, t0)
    old = pb.ExportProfilesServiceRequestV19()
    old.ParseFromString(req.SerializeToString())  # all but samples agree
    for rp_new, rp_old in zip(req.resource_profiles, old.resource_profiles):
        p_new = rp_new.scope_profiles[0].profiles[0]
        p_old = rp_old.scope_profiles[0].profiles[0]
        del p_old.samples[:]
        for x in p_new.samples:
            y = p_old.samples.add(stack_index=x.stack_index)
            y.attribute_indices.extend(x.attribute_indices)
            y.values.append(len(x.timestamps_unix_nano))
    status, ans = post(daemon, old.SerializeToString())
    assert status == 200, ans
    assert ans["shape"] == "v1.8" and ans["samples"]["accepted"] == 10, ans


def test_bad_input_is_refused_and_nothing_is_stored(daemon, pb, prog):
    t0 = int(time.time()) - 600
    raw = ebpf_request(pb, prog, t0)[0].SerializeToString()
    outside = ebpf_request(pb, prog, t0, outside=True)[0].SerializeToString()
    bomb = gzip.compress(b"\0" * (100 << 20), 9)
    # v1.7.0's shape: a KeyValue (key as a string) in attribute_table.
    old = bytes([0x12, 0x08, 0x32, 0x06, 0x0a, 0x01, 0x6b, 0x12, 0x01, 0x00])
    cases = [
        (raw[:-3], CT, {}, 400, "or cut short"),
        (raw, "application/json", {}, 415, "OTLP/JSON is not accepted"),
        (raw, None, {}, 415, "application/x-protobuf"),
        (bomb, CT, {"Content-Encoding": "gzip"}, 413,
         "gzip body inflates to more than 67108864 bytes"),
        (raw, CT, {"Content-Encoding": "gzip"}, 400,
         "the body is not gzip"),
        (outside, CT, {}, 400, "address 0x7fff0000 is outside its mapping"),
        (old, CT, {}, 400, "opentelemetry-proto v1.8.0 or later"),
    ]
    for body, ctype, headers, want, msg in cases:
        status, ans = post(daemon, body, ctype, headers)
        assert status == want, (ctype, headers, status, ans)
        assert msg in ans["error"], (msg, ans)
    # A body declared far larger than the route takes: 413 unread.
    import socket
    with socket.create_connection(("127.0.0.1", daemon.http_port), 30) as s:
        s.sendall(("POST /v1development/profiles HTTP/1.1\r\nHost: x\r\n"
                   "Content-Type: %s\r\nContent-Length: 2147483648\r\n\r\n"
                   % CT).encode())
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    assert data.startswith(b"HTTP/1.1 413"), data
    st = daemon.wait_merged()
    assert st["ingest"]["batches"] == 0 and st["ingest"]["samples"] == 0, st
    assert daemon.get("/v1/binaries")["binaries"] == []
    assert metric(daemon, 'fdod_otlp_requests_total{code="400"}') == 4
    assert metric(daemon, 'fdod_otlp_requests_total{code="415"}') == 2
