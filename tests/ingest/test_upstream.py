"""fdod fetching missing symbols from upstream debuginfod servers
(--debuginfod-urls): a real debuginfod (elfutils) over binaries the test
builds, and fake upstreams that hang, refuse or lie.

debuginfod 0.188 listens on every interface and has no option to change
that, so every test here runs its processes and sockets in a private
network namespace that holds only a loopback interface (unshare, as root).
Where namespaces are not allowed the tests fail and say why.
"""
import ctypes
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

from fdodtest import (FDOCTL, Daemon, _die_with_parent, batch_text, build_id,
                      free_port, symbols, vaddr_to_offset)

CLONE_NEWNET = 0x40000000
START = 0x555555554000

PROG = r"""
#include <stdio.h>
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
    sink = outer((unsigned)argc + SEED);
    printf("%u\n", sink);
    return 0;
}
"""


# -- the private network namespace -------------------------------------------

@pytest.fixture
def netns():
    """Moves this thread (and so every process and socket it creates) into
    a new network namespace with only `lo` up, and back at the end."""
    if os.geteuid() != 0:
        pytest.skip("needs root for a private network namespace (CI runs "
                    "as root): debuginfod 0.188 would listen on every "
                    "interface of the host")
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    orig = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    if libc.unshare(CLONE_NEWNET) != 0:
        err = os.strerror(ctypes.get_errno())
        os.close(orig)
        pytest.fail("cannot create a private network namespace "
                    "(unshare(CLONE_NEWNET): %s): these tests need root "
                    "or CAP_SYS_ADMIN, because debuginfod 0.188 would "
                    "listen on every interface of the host" % err)
    try:
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True,
                       timeout=10)
        yield
    finally:
        if libc.setns(orig, CLONE_NEWNET) != 0:
            raise AssertionError("cannot return to the original network "
                                 "namespace: %s" %
                                 os.strerror(ctypes.get_errno()))
        os.close(orig)


# -- helpers ----------------------------------------------------------------

def wait_for(pred, timeout, what):
    end = time.time() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.time() > end:
            raise AssertionError("timed out after %ss waiting for %s" %
                                 (timeout, what))
        time.sleep(0.1)


def build(d, name, seed):
    src = d / (name + ".c")
    src.write_text(PROG.replace("SEED", str(seed)))
    exe = d / name
    subprocess.run(["gcc", "-O2", "-g", "-fno-omit-frame-pointer", "-o",
                    str(exe), str(src)], check=True, timeout=120)
    return str(exe)


def addr_of(exe, name, delta):
    return START + vaddr_to_offset(exe, symbols(exe)[name][0] + delta)


def stacks_for(exe):
    leaf = addr_of(exe, "leaf_work", 4)
    mid = addr_of(exe, "middle", 9)
    out = addr_of(exe, "outer", 12)
    return [(120, [leaf, mid, out]), (30, [mid, out]), (7, [out])]


def metrics(d):
    status, body = d.request("GET", "/metrics")
    assert status == 200
    res = {}
    for line in body.decode().splitlines():
        if line.startswith("fdod_debuginfod_"):
            name, value = line.rsplit(" ", 1)
            res[name] = float(value)
    return res


def fetches(d, result):
    return metrics(d)['fdod_debuginfod_fetches_total{result="%s"}' % result]


def pending_entry(d, bid):
    st = d.get("/v1/status")
    for b in st["pending"]["build_ids"]:
        if b["build_id"] == bid:
            return b
    return None


def symbolize_offsets(exe, offsets):
    p = subprocess.run([FDOCTL, "symbolize", "--elf", exe, "--file-offsets",
                        "--no-demangle", "--output-style=JSON"] +
                       ["0x%x" % o for o in offsets],
                       capture_output=True, text=True, check=True,
                       timeout=60)
    return {int(r["Address"], 16): r["Symbol"] for r in json.loads(p.stdout)}


def push(d, agent, seq, bid, stacks, binary="prog"):
    t0 = time.time()
    rc, out = d.push(batch_text(agent, seq, binary, bid, stacks), timeout=30)
    assert rc == 0, out
    return time.time() - t0


class Debuginfod:
    """elfutils' debuginfod over scan_dir, verbose: one log line per
    request. Only ever started inside the test's network namespace."""

    def __init__(self, tmp, scan_dir):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.log_path = str(tmp / "debuginfod.log")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("DEBUGINFOD_")}  # no federation
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            ["debuginfod", "-F", "-p", str(self.port), "-d",
             str(tmp / "debuginfod.sqlite"), "-t", "0", "-g", "0", "-v",
             str(scan_dir)],
            env=env, stdout=self.logf, stderr=self.logf,
            stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)

    def wait_indexed(self, bid, kind="executable", timeout=60):
        """Until the scan has found bid (checked with one request, which
        the request counts below leave out by build-id)."""
        def ready():
            assert self.proc.poll() is None, self.log()
            try:
                with urllib.request.urlopen("%s/buildid/%s/%s" % (
                        self.url, bid, kind), timeout=5) as r:
                    return r.status == 200
            except (OSError, urllib.error.URLError):
                return False
        wait_for(ready, timeout, "debuginfod to index %s" % bid)

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def requests(self, bid):
        """[(kind, status)] of the requests for bid, in order."""
        return re.findall(r"GET /buildid/%s/(\w+) (\d+)" % bid, self.log())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()


@pytest.fixture
def scan(tmp_path, netns):
    """Binaries on the upstream server only: `split` as a stripped
    executable plus a separate debug file, `symtab` as an executable
    without DWARF (strip -g), so no server has its debuginfo. Returns
    (debuginfod, {name: original unstripped exe})."""
    src = tmp_path / "src"
    src.mkdir()
    up = tmp_path / "upstream"
    up.mkdir()
    split = build(src, "split", 1)
    shutil.copy(split, up / "split")
    subprocess.run(["objcopy", "--only-keep-debug", split,
                    str(up / "split.debug")], check=True, timeout=60)
    subprocess.run(["strip", "--strip-debug", "--strip-unneeded",
                    str(up / "split")], check=True, timeout=60)
    symtab = build(src, "symtab", 2)
    subprocess.run(["strip", "-g", "-o", str(up / "symtab"), symtab],
                   check=True, timeout=60)
    srv = Debuginfod(tmp_path, up)
    try:
        srv.wait_indexed(build_id(split), "debuginfo")
        srv.wait_indexed(build_id(symtab), "executable")
        yield srv, {"split": split, "symtab": symtab}
    finally:
        srv.stop()


def upstream_opts(urls, timeout="10s", retry="10m", fetches=2):
    return ["--debuginfod-urls", urls, "--debuginfod-timeout", timeout,
            "--debuginfod-retry", retry, "--debuginfod-fetches",
            str(fetches)]


# -- the tests ----------------------------------------------------------------

def test_fetched_from_upstream_then_symcache_equals_symbolize(tmp_path, scan):
    srv, exes = scan
    split, symtab = exes["split"], exes["symtab"]
    bid, bid2 = build_id(split), build_id(symtab)
    before = len(srv.requests(bid)), len(srv.requests(bid2))
    with Daemon(tmp_path / "data", extra=upstream_opts(srv.url)) as d:
        push(d, "a1", 1, bid, stacks_for(split))
        push(d, "a2", 1, bid2, stacks_for(symtab), binary="other")
        wait_for(lambda: fetches(d, "ok") == 2, 60, "two fetches")
        st = d.wait_pending_zero()
        assert st["pending"]["total"] == 0, st
        # debuginfo first; then the executable, as a separate debug file
        # cannot map file offsets to addresses, or when no server had
        # debuginfo.
        assert srv.requests(bid)[before[0]:] == [("debuginfo", "200"),
                                                 ("executable", "200")]
        assert srv.requests(bid2)[before[1]:] == [("debuginfo", "404"),
                                                  ("executable", "200")]
        log = d.read_log()
        assert "fetched debuginfo of %s from %s" % (bid, srv.url) in log
        assert "fetched executable of %s from %s" % (bid, srv.url) in log
        assert "fetched executable of %s" % bid2 in log
        m = metrics(d)
        assert m['fdod_debuginfod_fetches_total{result="missing"}'] == 0
        assert m['fdod_debuginfod_fetches_total{result="failed"}'] == 0
        assert m["fdod_debuginfod_fetched_bytes_total"] > 0

        # The DWARF of the separate debug file gives what fdoctl symbolize
        # gives on the unstripped binary.
        cache = d.get("/v1/symcache/" + bid)["addresses"]
        assert len(cache) == 5
        want = symbolize_offsets(split, [e["offset"] for e in cache])
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
        # No DWARF upstream for the other one: the symbol table names the
        # functions.
        cache2 = d.get("/v1/symcache/" + bid2)["addresses"]
        names = {e["frames"][-1]["function"] for e in cache2 if e["frames"]}
        assert {"middle", "outer"} <= names, cache2
        # Stored like an upload: fdod now serves them as a debuginfod.
        for kind in ("debuginfo", "executable"):
            assert d.request("GET", "/buildid/%s/%s" % (bid2, kind))[0] \
                == (200 if kind == "executable" else 404)
        status, body = d.request("GET", "/buildid/%s/debuginfo" % bid)
        assert status == 200
        with open(str(tmp_path / "upstream" / "split.debug"), "rb") as f:
            assert body == f.read()
        # Nothing left behind in libdebuginfod's cache.
        left = [n for n in os.listdir(tmp_path / "data" / "debuginfod-client")
                if re.fullmatch(r"[0-9a-f]+", n)]
        assert left == []
        assert d.stop() == 0


def test_unknown_build_id_is_asked_once_per_retry_period(tmp_path, scan):
    srv, exes = scan
    prog = exes["split"]
    unknown = "ab" * 20
    stacks = stacks_for(prog)
    with Daemon(tmp_path / "data", extra=upstream_opts(srv.url)) as d:
        push(d, "a1", 1, unknown, stacks)
        wait_for(lambda: fetches(d, "missing") == 1, 30, "a miss")
        # More samples at new addresses: the symbolizer looks at the
        # build-id again each time; the negative cache answers.
        for seq in range(2, 7):
            push(d, "a1", seq, unknown,
                 [(5, [a + 16 * seq for a in stacks[0][1]])])
            d.wait_merged()
        wait_for(lambda: metrics(d)[
            "fdod_debuginfod_negative_cache_hits_total"] >= 5, 30,
                 "negative cache hits")
        time.sleep(1)
        assert srv.requests(unknown) == [("debuginfo", "404"),
                                         ("executable", "404")]
        assert fetches(d, "missing") == 1
        assert pending_entry(d, unknown)["upstream"] == \
            "not found upstream"
        assert "%s not found upstream" % unknown in d.read_log()
        assert d.stop() == 0
    # A restart asks again; with a short retry period fdod asks again by
    # itself when it is over, without new samples.
    with Daemon(tmp_path / "data",
                extra=upstream_opts(srv.url, retry="2s")) as d:
        wait_for(lambda: len(srv.requests(unknown)) == 4, 30, "a 2nd ask")
        t0 = time.time()
        wait_for(lambda: len(srv.requests(unknown)) == 6, 30, "a 3rd ask")
        assert 1.0 <= time.time() - t0 <= 10, time.time() - t0
        assert fetches(d, "missing") == 2
        assert d.stop() == 0


def hanging_listener():
    """A loopback port that accepts connections (the kernel's backlog) and
    never answers."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    return s


def test_slow_and_down_upstreams_time_out_and_ingest_goes_on(tmp_path,
                                                             netns):
    src = tmp_path / "src"
    src.mkdir()
    prog = build(src, "prog", 3)
    bid = build_id(prog)
    hang = hanging_listener()
    slow_url = "http://127.0.0.1:%d" % hang.getsockname()[1]
    try:
        with Daemon(tmp_path / "data",
                    extra=upstream_opts(slow_url, timeout="2s",
                                        fetches=1)) as d:
            push(d, "a1", 1, bid, stacks_for(prog))
            wait_for(lambda: (pending_entry(d, bid) or {}).get("upstream")
                     == "fetching", 20, "the fetch to start")
            t0 = time.time()
            # Ingest does not wait for the fetch: batches for the same and
            # other build-ids are acknowledged at once.
            took = [push(d, "a2", s, b, [(1, [START + 0x1000 + s])])
                    for s, b in enumerate([bid, "cd" * 20, "ef" * 20], 1)]
            assert max(took) < 5, took
            wait_for(lambda: fetches(d, "failed") == 1, 20, "the timeout")
            elapsed = time.time() - t0
            assert elapsed <= 8, elapsed
            log = d.read_log()
            assert "%s: no answer from %s within 2 s" % (bid, slow_url) \
                in log, log
            assert pending_entry(d, bid)["upstream"] == "fetch failed"
            assert d.stop() == 0
        # SIGTERM during a fetch that would wait 60 s: fdod stops at once.
        with Daemon(tmp_path / "data2",
                    extra=upstream_opts(slow_url, timeout="60s")) as d:
            push(d, "a1", 1, bid, stacks_for(prog))
            wait_for(lambda: metrics(d)[
                "fdod_debuginfod_fetches_running"] == 1, 20, "a fetch")
            t0 = time.time()
            assert d.stop() == 0
            assert time.time() - t0 < 5, time.time() - t0
    finally:
        hang.close()
    # Nothing listening: refused at once, said so in the log.
    down = "http://127.0.0.1:%d" % free_port()
    with Daemon(tmp_path / "data3", extra=upstream_opts(down)) as d:
        push(d, "a1", 1, bid, stacks_for(prog))
        wait_for(lambda: fetches(d, "failed") == 1, 20, "the failure")
        log = d.read_log()
        assert "%s: fetching debuginfo from %s failed: Connection refused" \
            % (bid, down) in log, log
        assert d.stop() == 0


def test_file_with_another_build_id_is_rejected(tmp_path, netns):
    src = tmp_path / "src"
    src.mkdir()
    prog = build(src, "prog", 4)
    liar = build(src, "liar", 5)
    bid, other = build_id(prog), build_id(liar)
    with open(liar, "rb") as f:
        liar_bytes = f.read()
    asked = []

    class Lying(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            asked.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", str(len(liar_bytes)))
            self.end_headers()
            self.wfile.write(liar_bytes)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Lying)
    th = threading.Thread(target=httpd.serve_forever, daemon=True)
    th.start()
    url = "http://127.0.0.1:%d" % httpd.server_address[1]
    try:
        with Daemon(tmp_path / "data", extra=upstream_opts(url)) as d:
            push(d, "a1", 1, bid, stacks_for(prog))
            wait_for(lambda: fetches(d, "rejected") == 1, 30, "a rejection")
            assert asked == ["/buildid/%s/debuginfo" % bid]
            log = d.read_log()
            assert "debuginfo of %s from %s/buildid/%s/debuginfo rejected: " \
                "the file carries build-id %s" % (bid, url, bid, other) \
                in log, log
            entry = pending_entry(d, bid)
            assert entry["symbols"] == "none" and entry["pending"] == 5
            assert entry["upstream"] == "rejected"
            # Neither id got a file; nothing left in the client cache.
            syms = tmp_path / "data" / "symbols"
            for b in (bid, other):
                assert not (syms / b[:2] / b).exists()
            assert os.listdir(syms / ".incoming") == []
            left = [n for n in
                    os.listdir(tmp_path / "data" / "debuginfod-client")
                    if re.fullmatch(r"[0-9a-f]+", n)]
            assert left == []
            assert fetches(d, "ok") == 0
            assert d.stop() == 0
    finally:
        httpd.shutdown()
        httpd.server_close()
