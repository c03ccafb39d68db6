"""GET /metrics on the real daemon: the Prometheus text format, and figures
that follow what the test did."""
import re
import subprocess

from fdodtest import Daemon, SPReq, batch_text, build_id, decode_ack, \
    symbols, vaddr_to_offset

LINE = re.compile(r'^[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? '
                  r'[-+0-9.eE]+(Inf)?$')


def parse(text):
    vals = {}
    for line in text.splitlines():
        if line.startswith("#"):
            assert re.match(r"^# (HELP|TYPE) [a-z_]+ ", line), line
            continue
        assert LINE.match(line), line
        name, value = line.rsplit(" ", 1)
        vals[name] = float(value)
    return vals


def test_metrics_follow_what_happened(tmp_path):
    src = tmp_path / "m.c"
    src.write_text("__attribute__((noinline)) int f(int x){return x*x;}\n"
                   "int main(int c,char**v){return f(c);}\n")
    exe = str(tmp_path / "m")
    subprocess.run(["gcc", "-O2", "-g", "-o", exe, str(src)], check=True, timeout=300)
    start = 0x555555554000
    addr = start + vaddr_to_offset(exe, symbols(exe)["f"][0] + 1)
    with Daemon(tmp_path / "data") as d:
        rc, out = d.push(batch_text("m", 1, "m", build_id(exe),
                                    [(2000, [addr])]))
        assert rc == 0, out
        assert d.push(batch_text("m", 1, "m", build_id(exe),
                                 [(2000, [addr])]))[0] == 0  # duplicate
        sp = SPReq(d.nng_port)
        assert decode_ack(sp.request(b"\xff\xff garbage"))["status"] != 0
        sp.close()
        with open(exe, "rb") as f:
            assert d.request("PUT", "/v1/symbols?binary=m", f.read())[0] \
                == 201
        assert d.request("PUT", "/v1/symbols", b"junk")[0] == 400
        d.wait_pending_zero()
        assert d.request("GET", "/v1/profiles/m?format=llvm")[0] == 200
        assert d.request("GET", "/v1/profiles/m?format=nope")[0] == 400
        status, body = d.request("GET", "/metrics")
        assert status == 200
        m = parse(body.decode())
        assert m['fdod_batches_total{result="stored"}'] == 1
        assert m['fdod_batches_total{result="duplicate"}'] == 1
        assert m['fdod_batches_total{result="refused"}'] == 1
        assert m['fdod_refused_batches_total{reason="PARSE"}'] == 1
        assert m["fdod_samples_total"] == 2000
        assert m['fdod_uploads_total{result="stored"}'] == 1
        assert m['fdod_uploads_total{result="refused"}'] == 1
        assert m['fdod_profile_requests_total{format="llvm",code="200"}'] \
            == 1
        # block inference solved f once; another format's build takes it
        # from the memo kept between pulls
        assert m["fdod_flow_memo_misses_total"] >= 1
        assert m["fdod_flow_memo_bytes"] > 0
        assert d.request("GET", "/v1/profiles/m?format=gcc")[0] == 200
        m2 = parse(d.request("GET", "/metrics")[1].decode())
        assert m2["fdod_flow_memo_hits_total"] > m["fdod_flow_memo_hits_total"]
        assert m2["fdod_flow_memo_misses_total"] == \
            m["fdod_flow_memo_misses_total"]
        assert m['fdod_profile_requests_total{format="other",code="400"}'] \
            == 1
        assert m["fdod_pending_addresses"] == 0
        assert m["fdod_symbolized_addresses_total"] >= 1
        assert m["fdod_ack_latency_seconds_count"] == 3
        buckets = [v for k, v in m.items()
                   if k.startswith("fdod_ack_latency_seconds_bucket")]
        assert buckets == sorted(buckets) and buckets[-1] == 3
        assert m["fdod_store_used_bytes"] > 0
        # One stack and one count were stored (the duplicate added none):
        # counts are runs (table countruns), this one a run of one chunk.
        assert m['fdod_store_entries{table="stacks"}'] == 1
        assert m['fdod_store_entries{table="countruns"}'] == 1
        assert m['fdod_store_entries{table="pending"}'] == 0
        assert m["fdod_dwarf_cache_misses_total"] >= 1
