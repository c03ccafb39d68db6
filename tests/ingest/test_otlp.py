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
import hashlib
import json
import os
import sys
import time
import urllib.error
import urllib.request

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from fdodtest import (Daemon, assert_same_profiles,  # noqa: E402
                      ebpf_request, metric, samples_stored,
                      upload_and_push_native)

CT = "application/x-protobuf"


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


def test_ebpf_profile_equals_the_same_samples_as_a_batch(daemon, otlp_pb,
                                                        otlp_prog):
    body = upload_and_push_native(daemon, otlp_pb, otlp_prog)
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
    assert_same_profiles(daemon, "ocp", "ocpnative")
    # The protobuf answer (what OTLP exporters read): a partial success
    # naming the unmapped samples. A retry of the same request: stored
    # once.
    status, raw = post(daemon, body, json_answer=False)
    assert status == 200
    resp = otlp_pb.ExportProfilesServiceResponse.FromString(raw)
    assert "symbolized 7" in resp.partial_success.error_message, resp
    assert samples_stored(daemon, "ocp") == 10
    assert metric(daemon, 'fdod_otlp_batches_total{result="duplicate"}') == 1
    assert metric(daemon, 'fdod_otlp_samples_total{result="accepted"}') == 10
    assert metric(daemon, 'fdod_otlp_unmapped_samples_total'
                  '{reason="symbolized"}') == 7


def test_v19_shape_is_read(daemon, otlp_pb, otlp_prog):
    """A v1.8/v1.9 request (Sample's values at 2, attributes at 3)."""
    t0 = int(time.time()) - 600
    req, _ = ebpf_request(otlp_pb, otlp_prog, t0)
    old = otlp_pb.ExportProfilesServiceRequestV19()
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


def test_batches_of_a_request_have_the_seqs_of_the_docs(daemon, otlp_pb,
                                                       otlp_prog):
    """A request of three batches (three profiles): batch i's seq is the
    one docs/ingest.md "At-least-once" defines, over the inflated body
    and i, so a retry stays a duplicate across fdod versions; the retry
    (gzipped: the same inflated bytes) is three duplicates."""
    t0 = int(time.time()) - 600
    req, _ = ebpf_request(otlp_pb, otlp_prog, t0)
    sp = req.resource_profiles[0].scope_profiles[0]
    for _ in range(2):
        sp.profiles.add().CopyFrom(sp.profiles[0])
    body = req.SerializeToString()
    status, ans = post(daemon, body)
    assert status == 200 and ans["duplicates"] == 0, ans
    assert len(ans["batches"]) == 3, ans
    for i, b in enumerate(ans["batches"]):
        assert b["agent"] == ans["batches"][0]["agent"], ans
        assert b["seq"] == import_seq(body, i), (i, b)
    status, again = post(daemon, gzip.compress(body),
                         headers={"Content-Encoding": "gzip"})
    assert status == 200 and again["duplicates"] == 3, again
    assert [b["seq"] for b in again["batches"]] == \
        [b["seq"] for b in ans["batches"]], again
    assert metric(daemon, 'fdod_otlp_batches_total{result="duplicate"}') == 3


def import_seq(body, i):
    """Batch i's seq: the first 64 bits of SHA-256 over "fdod otlp seq
    v1" NUL, SHA-256(body), i in decimal, NUL; never 0."""
    h = hashlib.sha256(b"fdod otlp seq v1\0" + hashlib.sha256(body).digest()
                       + b"%d\0" % i).digest()
    return int.from_bytes(h[:8], "big") or 1


def test_bad_input_is_refused_and_nothing_is_stored(daemon, otlp_pb,
                                                    otlp_prog):
    t0 = int(time.time()) - 600
    raw = ebpf_request(otlp_pb, otlp_prog, t0)[0].SerializeToString()
    outside = ebpf_request(otlp_pb, otlp_prog, t0,
                           outside=True)[0].SerializeToString()
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
