"""fdod --store clickhouse:// against a server that answers what it was not
asked (docs/clickhouse.md "Profiles from any node"): ClickHouse is reached
over plain HTTP, so its answers are input like any other. A real
ClickHouse answers only the stacks a pull asks for, so this suite talks
to a small HTTP server on loopback that plays a hostile one: valid label
sets and sums, then a stacks answer of thousands of rows nobody asked
for. The pull must be refused (503, nothing of it served) and fdod must
live on; before the check, those rows were written past the batch's
arrays (aggregator/profile.c cstack_found).
"""
import http.server
import os
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "ingest"))
from fdodtest import FDOCTL, Daemon, build_id  # noqa: E402
from fdodtest import _varint as uleb  # noqa: E402  (LEB128, as RowBinary)

PROG = "int main(void) { return 0; }\n"


class Hostile(http.server.BaseHTTPRequestHandler):
    bid = b""
    bucket = 0
    stack = 0
    extra = 0
    asked = []

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        sql = self.rfile.read(n).decode(errors="replace")
        body = b""
        if sql.startswith("SELECT DISTINCT labels"):
            body = uleb(0)  # one label set: ""
        elif "sum(weight)" in sql:
            # label 0, the bucket, the stack, weight 1000, samples 10
            body = struct.pack("<IIQQQQ", 0, self.bucket, self.stack,
                               1000, 0, 10)
        elif "FROM fdod.stacks_local" in sql:
            type(self).asked.append(sql)
            for i in range(1 + self.extra):
                body += struct.pack("<Q", self.stack + i)
                body += uleb(1) + uleb(len(self.bid)) + self.bid
                body += uleb(1) + struct.pack("<Q", 0x1000 + i)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def test_stacks_not_asked_for_are_refused(tmp_path):
    src = tmp_path / "p.c"
    src.write_text(PROG)
    exe = str(tmp_path / "prog")
    subprocess.run(["gcc", "-g", "-Wl,--build-id", "-o", exe, str(src)],
                   check=True, timeout=120)
    Hostile.bid = bytes.fromhex(build_id(exe))
    Hostile.bucket = int(time.time()) // 3600 * 3600
    Hostile.stack = 0x1234567890
    Hostile.extra = 5000  # past the 4,096 ids a batch asks at most
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    url = "clickhouse://127.0.0.1:%d/fdod" % srv.server_address[1]
    try:
        with Daemon(tmp_path / "data", extra=["--store", url]) as d:
            # The build-id known on the node, so the rows get as far as
            # its frames.
            subprocess.run([FDOCTL, "upload", "--http", d.http, "--binary",
                            "prog", exe], check=True, timeout=60)
            st, body = d.request(
                "GET", "/v1/profiles/prog?format=folded&min_samples=0"
                "&min_hosts=0")
            assert Hostile.asked, "no stacks asked: %r" % body
            assert st == 503, (st, body)
            assert b"not asked for" in body, body
            # fdod lives on and answers again alike.
            assert d.request("GET", "/v1/status")[0] == 200
            Hostile.extra = 0
            st, body = d.request(
                "GET", "/v1/profiles/prog?format=folded&min_samples=0"
                "&min_hosts=0")
            assert st == 200, (st, body)
    finally:
        srv.shutdown()
