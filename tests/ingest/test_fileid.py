"""OpenTelemetry file ids (process.executable.build_id.htlhash): frames a
sender keyed by a file's file id alone resolve through the uploaded file
that has it, whether the upload comes before the samples (the decoder
keys them by the GNU build-id then) or after (they wait under the file id
and are symbolized once it arrives); and a store of layout version 3,
which had no file ids, gets its symbol tree indexed at the first start
(tests/fixtures/store-v3).
"""
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from fdodtest import (FDOCTL, PROC, ROOT, Daemon,  # noqa: E402
                      ebpf_request, file_id, native_text)
from fdodtest import pull_profile as pull  # noqa: E402
from test_otlp import post  # noqa: E402
import subprocess  # noqa: E402

FIXTURE = os.path.join(ROOT, "tests", "fixtures", "store-v3")
KEEP = ["--retention", "0", "--dedup-ttl", "3650d"]


def pending_of(d, hex_id):
    st = d.wait_merged()
    for b in st["pending"]["build_ids"]:
        if b["build_id"] == hex_id:
            return b["pending"]
    return 0


def test_samples_before_the_upload_resolve_after_it(tmp_path, otlp_pb,
                                                    otlp_prog):
    exe = otlp_prog[0]
    fid = file_id(exe)
    t0 = int(time.time()) - 600
    req, stacks = ebpf_request(otlp_pb, otlp_prog, t0)
    with Daemon(tmp_path / "data") as d:
        rc, out = d.push(native_text(otlp_prog, stacks, t0))
        assert rc == 0, out
        status, ans = post(d, req.SerializeToString())
        assert status == 200, ans
        # No file has that file id yet: its frames wait under it.
        assert ans["file_ids"] == {"mappings": 1, "resolved": 0}, ans
        assert ans["samples"]["accepted"] == 10, ans
        d.wait_merged()
        assert pending_of(d, fid) == 1
        bids = d.get("/v1/binaries/ocp")["build_ids"]
        assert fid in [b["build_id"] for b in bids], bids
        subprocess.run([FDOCTL, "upload", "--http", d.http, "--binary",
                        "ocp", exe], check=True, timeout=300)
        end = time.time() + 60
        while pending_of(d, fid) and time.time() < end:
            time.sleep(0.1)
        assert pending_of(d, fid) == 0
        d.wait_pending_zero()
        for fmt in ("folded", "llvm&encoding=text"):
            a = pull(d, "ocp", fmt)
            n = pull(d, "ocpnative", fmt)
            assert "hot" in a and a == n, (fmt, a, n)
        # Now known, the same request is keyed by the GNU build-id (a new
        # request: another time range).
        req2, _ = ebpf_request(otlp_pb, otlp_prog, t0 + 100)
        status, ans = post(d, req2.SerializeToString())
        assert status == 200, ans
        assert ans["file_ids"] == {"mappings": 1, "resolved": 1}, ans


def test_version_3_store_gets_its_symbol_tree_indexed(tmp_path, otlp_pb):
    data = tmp_path / "data"
    os.makedirs(data / "store")
    shutil.copy(os.path.join(FIXTURE, "store", "data.mdb"),
                data / "store" / "data.mdb")
    hot = os.path.join(FIXTURE, "src", "hot")
    bid = "902c87aa03aa2fc4e3ed0ab8916fcb1f88885cbb"
    slot = data / "symbols" / bid[:2] / bid
    os.makedirs(slot)
    for name in ("executable", "debuginfo"):
        shutil.copy(hot, slot / name)
    with Daemon(data, extra=KEEP) as d:
        log = d.read_log()
        assert "upgraded from version 3 to 6" in log, log
        assert ("indexed 1 executables of the symbol store by their "
                "OpenTelemetry file id") in log, log
        status, body = d.request("GET", "/v1/binaries")
        with open(os.path.join(FIXTURE, "answers", "binaries.json"),
                  "rb") as f:
            assert body == f.read()
        folded = pull(d, "hot", "folded")
        with open(os.path.join(FIXTURE, "answers", "hot.folded")) as f:
            assert folded == f.read()
        # An eBPF-profiler request with hot's file id alone, in process
        # addresses: keyed by hot's GNU build-id, the same function.
        req = otlp_pb.ExportProfilesServiceRequest()
        dct = req.dictionary
        strs = ["", "samples", "count", "cpu", "nanoseconds", "/hot",
                "process.executable.build_id.htlhash",
                "process.executable.name"]
        dct.string_table.extend(strs)
        dct.attribute_table.add()
        a = dct.attribute_table.add(key_strindex=6)
        a.value.string_value = file_id(hot)
        a = dct.attribute_table.add(key_strindex=7)
        a.value.string_value = "hot"
        dct.mapping_table.add()
        m = dct.mapping_table.add(memory_start=PROC + 0x1000,
                                  memory_limit=PROC + 0x2000,
                                  file_offset=0x1000, filename_strindex=5)
        m.attribute_indices.append(1)
        dct.location_table.add()
        dct.location_table.add(mapping_index=1, address=PROC + 0x11b0)
        dct.location_table.add(mapping_index=1, address=PROC + 0x1087)
        dct.stack_table.add()
        dct.stack_table.add(location_indices=[1, 2])
        p = req.resource_profiles.add().scope_profiles.add().profiles.add()
        p.sample_type.type_strindex = 1
        p.sample_type.unit_strindex = 2
        p.period_type.type_strindex = 3
        p.period_type.unit_strindex = 4
        p.period = 1000000
        p.time_unix_nano = 1763719200 * 10**9
        p.duration_nano = 10**9
        x = p.samples.add(stack_index=1)
        x.attribute_indices.append(2)
        x.values.append(50)
        status, ans = post(d, req.SerializeToString())
        assert status == 200, ans
        assert ans["file_ids"] == {"mappings": 1, "resolved": 1}, ans
        assert ans["samples"]["accepted"] == 50, ans
        d.wait_pending_zero()
        assert pull(d, "hot", "folded") == "main;work 150\n"
        bids = d.get("/v1/binaries/hot")["build_ids"]
        assert [b["build_id"] for b in bids] == [bid], bids
        assert d.stop() == 0
    # Opened again: indexed already, nothing hashed (one log for both).
    with Daemon(data, extra=KEEP) as d:
        d.get("/v1/binaries")
        log = open(d.log_path).read()
        assert log.count("OpenTelemetry file id") == 1, log
        assert log.count("upgraded from version 3") == 1, log
