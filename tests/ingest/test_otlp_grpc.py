"""OTLP/gRPC profiles (--otlp-grpc): ProfilesService/Export into the real
fdod, with a real gRPC client.

The client is Debian's python3-grpcio calling the method by its name
(python3-grpcio has no code generator) with message classes generated
now by protoc from the project's own schemas/otlp_profiles.proto. The
request is the eBPF-profiler-shaped one of test_otlp.py; after `fdoctl
upload` its llvm and folded profiles equal those of the same samples
pushed as a SampleBatch, as over HTTP. Refusals: a bad token
(UNAUTHENTICATED), a token without scope ingest (PERMISSION_DENIED), a
cut protobuf (INVALID_ARGUMENT), a message over 16 MiB and a gzip bomb
(RESOURCE_EXHAUSTED), another method (UNIMPLEMENTED), a message that
does not come in time (DEADLINE_EXCEEDED), one call too many
(RESOURCE_EXHAUSTED); nothing is stored. The listener outlives an idle
connection and clients that vanish, and a stop answers UNAVAILABLE.
Connections: more than --otlp-grpc-connections in all or
--otlp-grpc-connections-per-peer from one address are closed as they
arrive while the others keep working, fdod's descriptors stay bounded;
a connection without the HTTP/2 preface in --http-header-timeout, or
not HTTP/2, is closed, and one without a call for --http-idle-timeout.
"""
import os
import socket
import struct
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from fdodtest import (Daemon, assert_same_profiles,  # noqa: E402
                      ebpf_request, free_port, metric, samples_stored,
                      upload_and_push_native)

grpc = pytest.importorskip(
    "grpc", reason="python3-grpcio is not installed (deploy/install-deps.sh)")

EXPORT = ("/opentelemetry.proto.collector.profiles.v1development."
          "ProfilesService/Export")
# Channels of one process share connections unless told not to.
OWN_CONNECTION = [("grpc.use_local_subchannel_pool", 1)]
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS = b"\0\0\0\x04\0\0\0\0\0"  # an empty SETTINGS frame
TOKENS = {"ingest": "ingest-token-0123456789",
          "read": "read-token-012345678901",
          "other": "other-team-token-0123456"}


class GrpcDaemon(Daemon):
    """fdod with --otlp-grpc on a free loopback port."""

    def __init__(self, data, extra=(), **kw):
        self.grpc_port = free_port()
        self.target = "127.0.0.1:%d" % self.grpc_port
        super().__init__(data, ["--otlp-grpc", self.target] + list(extra),
                         **kw)


@pytest.fixture
def daemon(tmp_path):
    with GrpcDaemon(tmp_path / "data") as d:
        yield d


def export(pb, target, body, token=None, gzip=False, timeout=60):
    """Call Export with body (bytes, sent as they are): (status code,
    details, ExportProfilesServiceResponse or None)."""
    with grpc.insecure_channel(target, OWN_CONNECTION) as ch:
        call = ch.unary_unary(
            EXPORT, request_serializer=lambda b: b,
            response_deserializer=pb.ExportProfilesServiceResponse.FromString)
        md = [("authorization", "Bearer " + token)] if token else None
        comp = grpc.Compression.Gzip if gzip else None
        try:
            resp = call(body, timeout=timeout, metadata=md, compression=comp)
            return grpc.StatusCode.OK, "", resp
        except grpc.RpcError as e:
            return e.code(), e.details(), None


def slow_call(target, delay, out):
    """A client-streaming call of Export whose one message comes after
    delay seconds: what a client that never finishes its request looks
    like to the server. Appends (code, details) to out."""
    def msgs():
        time.sleep(delay)
        yield b""
    with grpc.insecure_channel(target, OWN_CONNECTION) as ch:
        call = ch.stream_unary(EXPORT, request_serializer=lambda b: b,
                               response_deserializer=lambda b: b)
        try:
            call(msgs(), timeout=delay + 30)
            out.append((grpc.StatusCode.OK, ""))
        except grpc.RpcError as e:
            out.append((e.code(), e.details()))


def h2_cut_call(authority):
    """The bytes of an HTTP/2 connection that calls Export and sends the
    first 10 bytes of a 1,000-byte message (RFC 7540, HPACK literals)."""
    def frame(kind, flags, stream, payload):
        return (struct.pack(">I", len(payload))[1:] +
                struct.pack(">BBI", kind, flags, stream) + payload)

    def literal(name, value):  # without indexing, new name, no Huffman
        return (b"\0" + bytes([len(name)]) + name +
                bytes([len(value)]) + value)
    headers = b"".join(literal(k, v) for k, v in (
        (b":method", b"POST"), (b":scheme", b"http"),
        (b":path", EXPORT.encode()), (b":authority", authority.encode()),
        (b"content-type", b"application/grpc"), (b"te", b"trailers")))
    message = b"\0" + struct.pack(">I", 1000) + b"\x0a" * 5
    return (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, b"") +
            frame(1, 4, 1, headers) + frame(0, 0, 1, message))


def test_ebpf_profile_over_grpc_equals_the_same_samples_as_a_batch(
        daemon, otlp_pb, otlp_prog):
    body = upload_and_push_native(daemon, otlp_pb, otlp_prog)
    # grpc-encoding gzip: inflated by fdod, not by gRPC.
    code, details, resp = export(otlp_pb, daemon.target, body, gzip=True)
    assert code == grpc.StatusCode.OK, details
    assert "symbolized 7" in resp.partial_success.error_message, resp
    assert resp.partial_success.rejected_profiles == 0
    assert_same_profiles(daemon, "ocp", "ocpnative")
    # The same request again, uncompressed, then over HTTP: the same
    # batches, stored once.
    code, details, resp = export(otlp_pb, daemon.target, body)
    assert code == grpc.StatusCode.OK, details
    status, _ = daemon.request(
        "POST", "/v1development/profiles", body,
        headers={"Content-Type": "application/x-protobuf"})
    assert status == 200
    assert samples_stored(daemon, "ocp") == 10
    assert metric(daemon, 'fdod_otlp_grpc_requests_total{code="OK"}') == 2
    assert metric(daemon, 'fdod_otlp_batches_total{result="stored"}') == 1
    assert metric(daemon, 'fdod_otlp_batches_total{result="duplicate"}') == 2
    assert metric(daemon, 'fdod_otlp_samples_total{result="accepted"}') == 10


def test_tokens(tmp_path, otlp_pb, otlp_prog):
    tokfile = tmp_path / "tokens"
    tokfile.write_text("%s ingest ingest-client\n%s read read-client\n"
                       "%s ingest other-team binaries=other\n"
                       % (TOKENS["ingest"], TOKENS["read"], TOKENS["other"]))
    os.chmod(tokfile, 0o600)
    t0 = int(time.time()) - 600
    body = ebpf_request(otlp_pb, otlp_prog, t0)[0].SerializeToString()
    with GrpcDaemon(tmp_path / "data", ["--tokens", str(tokfile)],
                    token=TOKENS["read"]) as d:
        for token, want in ((None, grpc.StatusCode.UNAUTHENTICATED),
                            ("not-a-token-at-all!",
                             grpc.StatusCode.UNAUTHENTICATED),
                            (TOKENS["read"],
                             grpc.StatusCode.PERMISSION_DENIED),
                            # Scope ingest, but only for binary "other".
                            (TOKENS["other"],
                             grpc.StatusCode.PERMISSION_DENIED)):
            code, details, _ = export(otlp_pb, d.target, body, token)
            assert code == want, (token, code, details)
        assert d.wait_merged()["ingest"]["batches"] == 0
        code, details, _ = export(otlp_pb, d.target, body, TOKENS["ingest"])
        assert code == grpc.StatusCode.OK, details
        assert samples_stored(d, "ocp") == 10
        assert metric(d, 'fdod_otlp_grpc_requests_total'
                      '{code="UNAUTHENTICATED"}') == 2


def test_bad_input_is_refused_and_nothing_is_stored(daemon, otlp_pb,
                                                    otlp_prog):
    t0 = int(time.time()) - 600
    raw = ebpf_request(otlp_pb, otlp_prog, t0)[0].SerializeToString()
    cases = [
        (raw[:-3], False, grpc.StatusCode.INVALID_ARGUMENT, "or cut short"),
        # Over the 16 MiB a message may have as sent: gRPC refuses it.
        (b"\0" * (17 << 20), False, grpc.StatusCode.RESOURCE_EXHAUSTED,
         "larger than max"),
        # 100 MiB of zeros, ~100 KiB gzipped: stopped at 64 MiB.
        (b"\0" * (100 << 20), True, grpc.StatusCode.RESOURCE_EXHAUSTED,
         "inflates to more than 67108864 bytes"),
    ]
    for body, gz, want, msg in cases:
        code, details, _ = export(otlp_pb, daemon.target, body, gzip=gz)
        assert code == want and msg in details, (code, details)
    with grpc.insecure_channel(daemon.target) as ch:
        other = ch.unary_unary("/fdod.Nothing/Export")
        with pytest.raises(grpc.RpcError) as e:
            other(b"", timeout=30)
        assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
    st = daemon.wait_merged()
    assert st["ingest"]["batches"] == 0 and st["ingest"]["samples"] == 0, st
    assert daemon.get("/v1/binaries")["binaries"] == []
    assert metric(daemon, 'fdod_otlp_grpc_requests_total'
                  '{code="INVALID_ARGUMENT"}') == 1
    # gRPC's peer is the descriptor fdod handed it: logged as the client.
    assert "OTLP/gRPC profiles from 127.0.0.1 refused" in daemon.read_log()
    # The listener still serves.
    code, details, _ = export(otlp_pb, daemon.target, raw)
    assert code == grpc.StatusCode.OK, details


def test_deadline_and_call_cap(tmp_path, otlp_pb, otlp_prog):
    """--http-body-timeout bounds the wait for a call's message;
    --http-body-memory 16M allows one call at once."""
    t0 = int(time.time()) - 600
    raw = ebpf_request(otlp_pb, otlp_prog, t0)[0].SerializeToString()
    with GrpcDaemon(tmp_path / "data", ["--http-body-timeout", "2s",
                                        "--http-body-memory", "16M"]) as d:
        out = []
        slow = threading.Thread(target=slow_call, args=(d.target, 8, out))
        slow.start()
        time.sleep(0.5)
        # The slow call holds the only slot.
        code, details, _ = export(otlp_pb, d.target, raw)
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED, details
        assert "calls at once" in details
        slow.join()
        assert out[0][0] == grpc.StatusCode.DEADLINE_EXCEEDED, out
        # Its slot is free again.
        code, details, _ = export(otlp_pb, d.target, raw)
        assert code == grpc.StatusCode.OK, details
        assert metric(d, 'fdod_otlp_grpc_refused_total'
                      '{reason="timeout"}') == 1
        assert metric(d, 'fdod_otlp_grpc_refused_total{reason="calls"}') == 1


def test_idle_and_vanishing_clients(tmp_path, otlp_pb, otlp_prog):
    t0 = int(time.time()) - 600
    raw = ebpf_request(otlp_pb, otlp_prog, t0)[0].SerializeToString()
    with GrpcDaemon(tmp_path / "data", ["--http-idle-timeout", "2s"]) as d:
        idle = socket.create_connection(("127.0.0.1", d.grpc_port), 10)
        # A client that sends half of the HTTP/2 preface and goes.
        with socket.create_connection(("127.0.0.1", d.grpc_port), 10) as s:
            s.sendall(b"PRI * HTTP/2.0\r\n")
        # A client that starts an Export, sends 10 bytes of a 1,000-byte
        # message and goes.
        with socket.create_connection(("127.0.0.1", d.grpc_port), 10) as s:
            s.sendall(h2_cut_call(d.target))
            time.sleep(0.5)
        code, details, _ = export(otlp_pb, d.target, raw)
        assert code == grpc.StatusCode.OK, details
        # The idle connection is closed by fdod (no call for 2 s).
        idle.settimeout(20)
        try:
            assert idle.recv(65536) is not None
            while idle.recv(65536):
                pass
        except ConnectionResetError:
            pass
        idle.close()
        code, details, _ = export(otlp_pb, d.target, raw)
        assert code == grpc.StatusCode.OK, details
        assert samples_stored(d, "ocp") == 10


def test_stop_answers_unavailable(tmp_path, otlp_pb, otlp_prog):
    """A call waiting for its message when fdod stops gets UNAVAILABLE;
    fdod stops at once, cleanly (exit 0: under ASan, no leak)."""
    t0 = int(time.time()) - 600
    raw = ebpf_request(otlp_pb, otlp_prog, t0)[0].SerializeToString()
    d = GrpcDaemon(tmp_path / "data").start()
    for body in (raw, raw[:-3]):
        export(otlp_pb, d.target, body)
    out = []
    slow = threading.Thread(target=slow_call, args=(d.target, 20, out))
    slow.start()
    time.sleep(1)
    t = time.time()
    assert d.stop() == 0
    assert time.time() - t < 10
    slow.join()
    assert out[0][0] == grpc.StatusCode.UNAVAILABLE, out
    assert "fdod: stopped" in d.read_log()


def open_fds(d):
    return len(os.listdir("/proc/%d/fd" % d.proc.pid))


def raw_connection(port, source="127.0.0.1", send=PREFACE + SETTINGS):
    s = socket.socket()
    s.bind((source, 0))
    s.settimeout(20)
    s.connect(("127.0.0.1", port))
    if send:
        s.sendall(send)
    return s


def closed_after(s, limit=20):
    """Seconds until fdod closes s (reads what it sends meanwhile)."""
    t = time.time()
    s.settimeout(limit)
    try:
        while s.recv(65536):
            pass
    except ConnectionResetError:
        pass
    return time.time() - t


def wait_metric(d, name, want, timeout=10):
    end = time.time() + timeout
    while metric(d, name) != want and time.time() < end:
        time.sleep(0.1)
    return metric(d, name)


def test_connection_caps(tmp_path, otlp_pb, otlp_prog):
    """--otlp-grpc-connections 4, --otlp-grpc-connections-per-peer 3:
    the connection over a cap is closed as it arrives, the others keep
    working, and the descriptors fdod holds stay bounded."""
    t0 = int(time.time()) - 600
    raw = ebpf_request(otlp_pb, otlp_prog, t0)[0].SerializeToString()
    with GrpcDaemon(tmp_path / "data", ["--otlp-grpc-connections", "4",
                                        "--otlp-grpc-connections-per-peer",
                                        "3"]) as d:
        base = open_fds(d)
        chans, calls = [], []
        try:
            for _ in range(3):
                ch = grpc.insecure_channel(d.target, OWN_CONNECTION)
                chans.append(ch)
                calls.append(ch.unary_unary(
                    EXPORT, request_serializer=lambda b: b,
                    response_deserializer=lambda b: b))
                calls[-1](raw, timeout=30)
            assert wait_metric(d, "fdod_otlp_grpc_connections", 3) == 3
            # A fourth from the same address: closed at once.
            code, details, _ = export(otlp_pb, d.target, raw, timeout=10)
            assert code == grpc.StatusCode.UNAVAILABLE, (code, details)
            assert metric(d, 'fdod_otlp_grpc_connections_closed_total'
                          '{reason="peer"}') >= 1
            # Another address takes the last connection; the next one
            # from there is over the cap in all.
            other = raw_connection(d.grpc_port, "127.0.0.2")
            assert wait_metric(d, "fdod_otlp_grpc_connections", 4) == 4
            extra = raw_connection(d.grpc_port, "127.0.0.2")
            assert closed_after(extra) < 10
            assert metric(d, 'fdod_otlp_grpc_connections_closed_total'
                          '{reason="all"}') == 1
            # A flood of connections changes nothing: each is closed.
            flood = [raw_connection(d.grpc_port, "127.0.0.3", b"")
                     for _ in range(50)]
            for s in flood:
                assert closed_after(s) < 10
                s.close()
            assert open_fds(d) <= base + 2 * 4 + 4, open_fds(d)
            # The connections held keep working.
            for call in calls:
                call(raw, timeout=30)
            other.sendall(b"\0\0\0\x04\x01\0\0\0\0")  # SETTINGS ack
            other.close()
        finally:
            for ch in chans:
                ch.close()
        # Their slots are free again; fdod holds what it held before.
        assert wait_metric(d, "fdod_otlp_grpc_connections", 0) == 0
        end = time.time() + 10
        while open_fds(d) > base and time.time() < end:
            time.sleep(0.1)
        assert open_fds(d) <= base, (open_fds(d), base)
        for _ in range(5):
            code, details, _ = export(otlp_pb, d.target, raw)
            assert code == grpc.StatusCode.OK, details
        assert samples_stored(d, "ocp") == 10
        assert metric(d, 'fdod_otlp_grpc_requests_total{code="OK"}') == 11
        # A stop with a connection served and one awaiting its preface
        # is clean (exit 0: under ASan, no leak).
        held = [raw_connection(d.grpc_port),
                raw_connection(d.grpc_port, send=b"")]
        assert wait_metric(d, "fdod_otlp_grpc_connections", 2) == 2
        assert d.stop() == 0
        for s in held:
            s.close()


def test_slow_handshake_and_idle_connections(tmp_path, otlp_pb, otlp_prog):
    """--http-header-timeout bounds the wait for a connection's HTTP/2
    preface, --http-idle-timeout a connection without a call."""
    t0 = int(time.time()) - 600
    raw = ebpf_request(otlp_pb, otlp_prog, t0)[0].SerializeToString()
    with GrpcDaemon(tmp_path / "data", ["--http-header-timeout", "2s",
                                        "--http-idle-timeout", "3s"]) as d:
        half = raw_connection(d.grpc_port, send=PREFACE[:10])
        silent = raw_connection(d.grpc_port, send=b"")
        idle = raw_connection(d.grpc_port)
        http1 = raw_connection(d.grpc_port,
                               send=b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        t = time.time()
        # Not HTTP/2: closed at once.
        assert closed_after(http1) < 1.5
        # No (whole) preface within 2 s: closed then.
        closed_after(half)
        closed_after(silent)
        assert 1.5 < time.time() - t < 6, time.time() - t
        # Preface and settings, then no call: closed as idle.
        closed_after(idle)
        assert 2.5 < time.time() - t < 8, time.time() - t
        for s in (half, silent, idle, http1):
            s.close()
        assert metric(d, 'fdod_otlp_grpc_connections_closed_total'
                      '{reason="handshake"}') == 2
        assert metric(d, 'fdod_otlp_grpc_connections_closed_total'
                      '{reason="preface"}') == 1
        assert wait_metric(d, "fdod_otlp_grpc_connections", 0) == 0
        code, details, _ = export(otlp_pb, d.target, raw)
        assert code == grpc.StatusCode.OK, details
